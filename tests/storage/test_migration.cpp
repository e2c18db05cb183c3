// Schema migration: schema 1 rebuilt on open with the same balances and rows,
// a failed rebuild changes nothing, a newer schema is refused.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "base/status.hpp"
#include "fixture.hpp"
#include "storage/ledger.hpp"
#include "storage/terminal.hpp"

using namespace storage_test;
using loy::Code;

namespace {

// What schema 2 added, dropped: the file is then what a schema-1 terminal
// wrote (the journal, settings and programs).
// A ledger as schema 2 left it: no seals, and a key store that never
// sealed one.
void downgrade_to_v2(const std::string &dir)
{
	RawDb db(ledger_path(dir));
	db.exec("BEGIN; DROP TABLE recovery; DROP TABLE rebased; "
		"DELETE FROM meta WHERE key = 'sealed'; ALTER TABLE meta DROP COLUMN mac; "
		"ALTER TABLE programs DROP COLUMN mac; ALTER TABLE server_members DROP COLUMN mac; "
		"ALTER TABLE server_members DROP COLUMN segments; DROP TABLE donations; "
		"ALTER TABLE server_members DROP COLUMN stamps; DROP TABLE member_stamps; "
		"ALTER TABLE receipts DROP COLUMN stamp_card; "
		"ALTER TABLE server_members DROP COLUMN memberships; DROP TABLE membership_changes; PRAGMA user_version = 2; COMMIT;");
	std::remove((dir + "/" + loy::sealed_item).c_str());
}

void downgrade_to_v1(const std::string &dir)
{
	downgrade_to_v2(dir);
	RawDb db(ledger_path(dir));
	db.exec("BEGIN; DROP TABLE members; DROP TABLE server_members; DROP TABLE receipts; "
		"PRAGMA user_version = 1; COMMIT;");
	REQUIRE(db.integer("SELECT count(*) FROM sqlite_master WHERE name IN ('members', 'server_members', "
			   "'receipts', 'receipts_by_member', 'receipts_by_time')") == 0);
}

struct Derived {
	std::vector<std::vector<std::string>> members, receipts, server_members, indexes;
};

Derived derived(const std::string &dir)
{
	RawDb db(ledger_path(dir));
	return {db.rows("SELECT * FROM members ORDER BY token"),
		db.rows("SELECT * FROM receipts ORDER BY receipt_id"),
		db.rows("SELECT * FROM server_members ORDER BY token"),
		db.rows("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
			"ORDER BY name")};
}

} // namespace

TEST_CASE("schema 1 is migrated: derived tables rebuilt, balances unchanged")
{
	TempDir tmp;
	const int64_t now = utc_of(day_at(40));
	std::vector<int64_t> balances;
	std::vector<std::string> balance_json;
	{
		auto t = make_terminal(tmp.data());
		build_mixed_ledger(*t, 36);
		// And a member seen only at a checkout (not enrolled).
		ok_json(t->checkout(luhn_complete("628000999999999"), basket("R-x", day_at(37), {coffee}),
				    loy::Redemption::none(), utc_of(day_at(37))));
		for (const char *card : {card_a, card_b, card_c}) {
			balances.push_back(balance_of(*t, card, now));
			balance_json.push_back(*as_text(t->balance(card, now)));
		}
	}
	const Derived before = derived(tmp.data());
	REQUIRE(before.members.size() == 4);
	REQUIRE(before.receipts.size() == 37);
	const auto journal_before = RawDb(ledger_path(tmp.data())).rows("SELECT * FROM journal ORDER BY seq");

	downgrade_to_v1(tmp.data());
	{
		auto t = loy::Terminal::open(tmp.data());
		INFO(t.status().message());
		REQUIRE(t);
		RawDb db(ledger_path(tmp.data()));
		CHECK(db.integer("PRAGMA user_version") == loy::schema_version);
	}
	const Derived after = derived(tmp.data());
	CHECK(after.members == before.members);
	CHECK(after.receipts == before.receipts);
	CHECK(after.server_members.empty());
	CHECK(after.indexes == before.indexes);
	CHECK(RawDb(ledger_path(tmp.data())).rows("SELECT * FROM journal ORDER BY seq") == journal_before);

	auto t = open_terminal(tmp.data());
	const auto v = verified(*t);
	INFO(v.problem);
	CHECK(v.entries == static_cast<int64_t>(journal_before.size()));
	const char *const cards[] = {card_a, card_b, card_c};
	for (size_t i = 0; i < 3; i++) {
		CAPTURE(cards[i]);
		CHECK(balance_of(*t, cards[i], now) == balances[i]);
		CHECK(*as_text(t->balance(cards[i], now)) == balance_json[i]);
	}
	// The rebuilt receipts serve retries and refunds as the originals did.
	Json replay = ok_json(t->checkout(card_a, basket("R-0", day_at(0), {coffee, pastry}),
					  loy::Redemption::none(), now));
	CHECK(replay["replayed"] == true);
	ok_json(t->refund("R-3", {}, now));
	CHECK(t->refund("R-7", {}, now).status().code() == Code::declined_already_refunded);
	verified(*t);
}

TEST_CASE("a migration that cannot rebuild changes nothing")
{
	TempDir tmp;
	{
		auto t = make_terminal(tmp.data());
		build_mixed_ledger(*t, 6);
	}
	downgrade_to_v1(tmp.data());
	{
		RawDb db(ledger_path(tmp.data()));
		// A refund whose data lost its fields: the replay cannot use it.
		db.exec("UPDATE journal SET body = json_set(body, '$.data', json('{}')) WHERE seq = "
			"(SELECT min(seq) FROM journal WHERE kind = 'refund')");
	}
	const auto schema = RawDb(ledger_path(tmp.data())).rows("SELECT * FROM sqlite_master ORDER BY name");
	auto t = loy::Terminal::open(tmp.data());
	INFO(t.status().message());
	CHECK(t.status().code() == Code::storage);
	RawDb db(ledger_path(tmp.data()));
	CHECK(db.integer("PRAGMA user_version") == 1);
	CHECK(db.rows("SELECT * FROM sqlite_master ORDER BY name") == schema);
}

TEST_CASE("a schema newer than the program's is refused")
{
	for (int version : {loy::schema_version + 1, 1000}) {
		CAPTURE(version);
		TempDir tmp;
		make_terminal(tmp.data());
		RawDb(ledger_path(tmp.data())).exec("PRAGMA user_version = " + std::to_string(version));
		const auto before = RawDb(ledger_path(tmp.data())).rows("SELECT * FROM sqlite_master ORDER BY name");
		auto t = loy::Terminal::open(tmp.data());
		INFO(t.status().message());
		CHECK(t.status().code() == Code::storage);
		CHECK(t.status().message().find("newer") != std::string::npos);
		RawDb db(ledger_path(tmp.data()));
		CHECK(db.integer("PRAGMA user_version") == version);
		CHECK(db.rows("SELECT * FROM sqlite_master ORDER BY name") == before);
	}
}

TEST_CASE("schema 2 is sealed once; seals removed afterwards are found, not remade")
{
	TempDir tmp;
	const int64_t now = utc_of(day_at(40));
	std::vector<std::string> balances;
	{
		auto t = make_terminal(tmp.data());
		build_mixed_ledger(*t, 12);
		for (const char *card : {card_a, card_b, card_c})
			balances.push_back(*as_text(t->balance(card, now)));
	}
	downgrade_to_v2(tmp.data());
	{
		RawDb db(ledger_path(tmp.data()));
		REQUIRE(db.integer("PRAGMA user_version") == 2);
	}
	{
		auto t = loy::Terminal::open(tmp.data());
		INFO(t.status().message());
		REQUIRE(t);
		std::vector<std::string> after;
		for (const char *card : {card_a, card_b, card_c})
			after.push_back(*as_text(t.value()->balance(card, now)));
		CHECK(after == balances);
		auto v = t.value()->verify();
		REQUIRE(v);
		CHECK(v->ok);
		RawDb db(ledger_path(tmp.data()));
		CHECK(db.integer("PRAGMA user_version") == loy::schema_version);
		CHECK(db.integer("SELECT count(*) FROM meta WHERE mac IS NULL") == 0);
		CHECK(db.integer("SELECT count(*) FROM programs WHERE mac IS NULL") == 0);
	}
	CHECK(file_exists(tmp.data() + "/" + loy::sealed_item));
	// Stripping the seals again, to edit rows and have them sealed anew, is
	// refused: the key store remembers that this ledger was sealed.
	{
		RawDb db(ledger_path(tmp.data()));
		db.exec("BEGIN; DELETE FROM meta WHERE key = 'sealed'; UPDATE meta SET mac = NULL; "
			"UPDATE meta SET value = 'S9' WHERE key = 'store'; COMMIT;");
	}
	auto t = loy::Terminal::open(tmp.data());
	REQUIRE_FALSE(t);
	CHECK(t.status().code() == loy::Code::storage);
	CHECK_THAT(t.status().message(), Catch::Contains("seals are gone"));
}

TEST_CASE("schema 3 gains the recovery tables, its ledger unchanged")
{
	TempDir tmp;
	const int64_t now = utc_of(day_at(40));
	std::vector<std::string> balances;
	{
		auto t = make_terminal(tmp.data());
		build_mixed_ledger(*t, 12);
		for (const char *card : {card_a, card_b, card_c})
			balances.push_back(*as_text(t->balance(card, now)));
	}
	const auto journal = RawDb(ledger_path(tmp.data())).rows("SELECT * FROM journal ORDER BY seq");
	RawDb(ledger_path(tmp.data())).exec("BEGIN; DROP TABLE recovery; DROP TABLE rebased; "
					    "ALTER TABLE server_members DROP COLUMN segments; DROP TABLE donations; "
		"ALTER TABLE server_members DROP COLUMN stamps; DROP TABLE member_stamps; "
		"ALTER TABLE receipts DROP COLUMN stamp_card; "
		"ALTER TABLE server_members DROP COLUMN memberships; DROP TABLE membership_changes; "
					    "PRAGMA user_version = 3; COMMIT;");
	auto t = loy::Terminal::open(tmp.data());
	INFO(t.status().message());
	REQUIRE(t);
	RawDb db(ledger_path(tmp.data()));
	CHECK(db.integer("PRAGMA user_version") == loy::schema_version);
	CHECK(db.integer("SELECT count(*) FROM sqlite_master WHERE name IN ('recovery', 'rebased')") == 2);
	CHECK(db.rows("SELECT * FROM journal ORDER BY seq") == journal);
	std::vector<std::string> after;
	for (const char *card : {card_a, card_b, card_c})
		after.push_back(*as_text(t.value()->balance(card, now)));
	CHECK(after == balances);
	verified(**t);
}

TEST_CASE("schema 4 gains the members' segments, its snapshot's seals unchanged")
{
	TempDir tmp;
	const int64_t now = utc_of(day_at(40));
	std::vector<std::string> balances;
	{
		auto t = make_terminal(tmp.data());
		build_mixed_ledger(*t, 12);
		// A snapshot from the centre, sealed as schema 4 sealed it.
		loy::Terminal::ServerMember m;
		m.token = t->ledger().member_token("6280001234567897");
		m.masked = "****7897";
		m.balance = 40;
		m.tier = "Member";
		REQUIRE(t->record_sync(0, {m}, 7, std::nullopt, now));
		for (const char *card : {card_a, card_b, card_c})
			balances.push_back(*as_text(t->balance(card, now)));
	}
	const char *const rows = "SELECT token, masked, balance, mac FROM server_members ORDER BY token";
	const auto snapshot = RawDb(ledger_path(tmp.data())).rows(rows);
	REQUIRE(snapshot.size() == 1);
	RawDb(ledger_path(tmp.data())).exec("BEGIN; ALTER TABLE server_members DROP COLUMN segments; "
					    "DROP TABLE donations; "
		"ALTER TABLE server_members DROP COLUMN stamps; DROP TABLE member_stamps; "
		"ALTER TABLE receipts DROP COLUMN stamp_card; "
		"ALTER TABLE server_members DROP COLUMN memberships; DROP TABLE membership_changes; PRAGMA user_version = 4; COMMIT;");
	auto t = loy::Terminal::open(tmp.data());
	INFO(t.status().message());
	REQUIRE(t);
	RawDb db(ledger_path(tmp.data()));
	CHECK(db.integer("PRAGMA user_version") == loy::schema_version);
	CHECK(db.rows(rows) == snapshot);
	CHECK(db.integer("SELECT count(*) FROM server_members WHERE segments = ''") == 1);
	std::vector<std::string> after;
	for (const char *card : {card_a, card_b, card_c})
		after.push_back(*as_text(t.value()->balance(card, now)));
	CHECK(after == balances);
	verified(**t);
}
