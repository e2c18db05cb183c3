// Stamp cards at the terminal (spec/program.md v2, "Stamp cards"): the
// member's stamps are the centre's snapshot (sealed with its row) plus what
// this terminal's unacknowledged entries moved, changed in the entry's
// transaction, handed over to the snapshot when the centre acknowledges the
// entries, rebuilt from the journal and checked by verify.
#include <catch2/catch.hpp>

#include "fixture.hpp"
#include "storage/ledger.hpp"

using namespace storage_test;

namespace {

// The example program as specification 2 with a coffee card of 3 stamps.
std::string stamp_program(int version)
{
	Json p = Json::parse(program_json());
	p["spec"] = 2;
	p["version"] = version;
	p["stamp_cards"] = Json::array({{{"id", "coffee-card"},
					  {"sku", "COF-01"},
					  {"stamps", 3},
					  {"reward_sku", "COF-01"},
					  {"expiry_days", 180}}});
	return p.dump();
}

const int64_t now0 = utc_of(day_at(0));

// Card A in the centre's snapshot with `stamps` coffee stamps.
loy::Terminal::ServerMember snapshot_member(loy::Terminal &t, int64_t stamps)
{
	loy::Terminal::ServerMember m;
	m.token = t.ledger().member_token(card_a);
	m.masked = "****7895";
	m.balance = 100;
	m.tier = "Member";
	if (stamps != 0)
		m.stamps["coffee-card"] = stamps;
	return m;
}

std::unique_ptr<loy::Terminal> stamp_terminal(const std::string &dir, int64_t stamps)
{
	auto t = make_terminal(dir);
	auto loaded = t->program_load(stamp_program(8), now0);
	INFO(loaded.status().message());
	REQUIRE(loaded);
	REQUIRE(t->record_sync(0, {snapshot_member(*t, stamps)}, 1, std::nullopt, now0));
	return t;
}

Json stamps_of(loy::Terminal &t, int64_t now) { return ok_json(t.balance(card_a, now))["stamps"]; }

std::string coffees(const std::string &id, int day, int64_t qty)
{
	return basket(id, day_at(day), {L{"COF-01", "coffee", qty, 350, 0}});
}

} // namespace

TEST_CASE("the snapshot's stamps plus the unacknowledged entries' are what a member holds")
{
	TempDir tmp;
	auto t = stamp_terminal(tmp.data(), 2);
	CHECK(stamps_of(*t, now0) == Json{{"coffee-card", 2}});
	// One more stamp: the reward becomes possible, on the snapshot's two.
	Json c = ok_json(t->checkout(card_a, coffees("R-1", 1, 1), loy::Redemption::none(), utc_of(day_at(1))));
	CHECK(c["stamps"] == Json::parse(R"([{"id":"coffee-card","earned":1,"used":0,"balance":3}])"));
	c = ok_json(t->checkout(card_a, coffees("R-2", 2, 1), loy::Redemption::of_stamp_card("coffee-card"),
				utc_of(day_at(2))));
	CHECK(c["stamps"] == Json::parse(R"([{"id":"coffee-card","earned":0,"used":3,"balance":0}])"));
	RawDb db(ledger_path(tmp.data()));
	CHECK(db.rows("SELECT card, local FROM member_stamps") ==
	      std::vector<std::vector<std::string>>{{"coffee-card", "-2"}});
	CHECK(db.rows("SELECT receipt_id, coalesce(stamp_card, '-') FROM receipts ORDER BY seq") ==
	      std::vector<std::vector<std::string>>{{"R-1", "-"}, {"R-2", "coffee-card"}});
	verified(*t);

	// The centre acknowledges the first entry only, and sends its count
	// with it (2 + 1): the local change left is the reward's −3.
	const int64_t later = utc_of(day_at(3));
	auto sync_1 = t->record_sync(1, {snapshot_member(*t, 3)}, 2, std::nullopt, later);
	INFO(sync_1.message());
	REQUIRE(sync_1);
	CHECK(db.rows("SELECT card, local FROM member_stamps") ==
	      std::vector<std::vector<std::string>>{{"coffee-card", "-3"}});
	CHECK(stamps_of(*t, later) == Json{{"coffee-card", 0}});
	// Both acknowledged, another till's stamps spent too: the centre's −1
	// is all there is, and no local row is left.
	REQUIRE(t->record_sync(2, {snapshot_member(*t, -1)}, 3, std::nullopt, later));
	CHECK(db.integer("SELECT count(*) FROM member_stamps") == 0);
	CHECK(stamps_of(*t, later) == Json{{"coffee-card", -1}});
	auto short_of = t->checkout(card_a, coffees("R-3", 3, 1), loy::Redemption::of_stamp_card("coffee-card"),
				    later);
	REQUIRE_FALSE(short_of);
	CHECK(short_of.status().code() == loy::Code::declined_insufficient_stamps);
	verified(*t);
}

TEST_CASE("a refund's stamps are in its entry and in the member's count")
{
	TempDir tmp;
	auto t = stamp_terminal(tmp.data(), 3);
	ok_json(t->checkout(card_a, coffees("R-1", 1, 2), loy::Redemption::of_stamp_card("coffee-card"),
			    utc_of(day_at(1))));
	CHECK(stamps_of(*t, utc_of(day_at(1))) == Json{{"coffee-card", 1}});
	ok_json(t->refund("R-1", {}, utc_of(day_at(1), 120)));
	// The sold unit's stamp taken back, the reward's three given back.
	RawDb db(ledger_path(tmp.data()));
	CHECK(db.text("SELECT json_extract(body, '$.data.stamps') FROM journal WHERE kind = 'refund'") ==
	      R"([{"id":"coffee-card","reversed":1,"returned":3}])");
	CHECK(stamps_of(*t, utc_of(day_at(1), 180)) == Json{{"coffee-card", 3}});
	// Acknowledged with the centre's count of the same: nothing local left.
	REQUIRE(t->record_sync(2, {snapshot_member(*t, 3)}, 2, std::nullopt, utc_of(day_at(2))));
	CHECK(db.integer("SELECT count(*) FROM member_stamps") == 0);
	verified(*t);
}

TEST_CASE("the snapshot's stamps are sealed, the derived ones checked against the journal")
{
	TempDir tmp;
	auto t = stamp_terminal(tmp.data(), 5);
	ok_json(t->checkout(card_a, coffees("R-1", 1, 1), loy::Redemption::none(), utc_of(day_at(1))));
	verified(*t);
	{
		RawDb db(ledger_path(tmp.data()));
		db.exec(R"(UPDATE server_members SET stamps = '{"coffee-card":50}')");
	}
	auto b = t->balance(card_a, utc_of(day_at(1)));
	REQUIRE_FALSE(b);
	CHECK(b.status().code() == loy::Code::storage);
	auto v = t->verify();
	REQUIRE(v);
	CHECK_FALSE(v->ok);
	{
		RawDb db(ledger_path(tmp.data()));
		db.exec(R"(UPDATE server_members SET stamps = '{"coffee-card":5}')");
	}
	verified(*t);
	{
		RawDb db(ledger_path(tmp.data()));
		db.exec("UPDATE member_stamps SET local = 9");
	}
	v = t->verify();
	REQUIRE(v);
	CHECK_FALSE(v->ok);
	CHECK(v->problem.find("member_stamps") != std::string::npos);
	// A rebuild from the journal puts it right.
	REQUIRE(t->ledger().rebuild_derived());
	verified(*t);
	CHECK(stamps_of(*t, utc_of(day_at(1))) == Json{{"coffee-card", 6}});
}

TEST_CASE("schema 6 gains stamps, its snapshot's seals unchanged")
{
	TempDir tmp;
	std::vector<std::vector<std::string>> snapshot;
	std::string before;
	{
		auto t = make_terminal(tmp.data());
		build_mixed_ledger(*t, 6);
		loy::Terminal::ServerMember m;
		m.token = t->ledger().member_token(card_a);
		m.masked = "****7895";
		m.balance = 40;
		m.tier = "Member";
		m.segments = {"lapsed"};
		REQUIRE(t->record_sync(0, {m}, 7, std::nullopt, now0));
		before = *as_text(t->balance(card_a, utc_of(day_at(40))));
	}
	const char *const rows = "SELECT token, masked, balance, segments, mac FROM server_members";
	snapshot = RawDb(ledger_path(tmp.data())).rows(rows);
	RawDb(ledger_path(tmp.data()))
		.exec("BEGIN; ALTER TABLE server_members DROP COLUMN stamps; DROP TABLE member_stamps; "
		      "ALTER TABLE receipts DROP COLUMN stamp_card; ALTER TABLE server_members DROP COLUMN memberships; "
		      "DROP TABLE membership_changes; PRAGMA user_version = 6; COMMIT;");
	auto t = open_terminal(tmp.data());
	RawDb db(ledger_path(tmp.data()));
	CHECK(db.integer("PRAGMA user_version") == loy::schema_version);
	CHECK(db.rows(rows) == snapshot);
	CHECK(*as_text(t->balance(card_a, utc_of(day_at(40)))) == before);
	verified(*t);
}
