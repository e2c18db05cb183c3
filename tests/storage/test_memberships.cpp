// Paid memberships at the terminal (spec/program.md v2, "Paid membership"):
// a member's runs are the centre's snapshot (sealed with its row) with the
// days this terminal's unacknowledged entries bought or took off applied in
// entry order; the local days go when the centre acknowledges their entries;
// rebuilt from the journal and checked by verify.
#include <catch2/catch.hpp>

#include <string>
#include <tuple>
#include <vector>

#include "base/timeutil.hpp"
#include "fixture.hpp"
#include "storage/ledger.hpp"

using namespace storage_test;

namespace {

std::string plus_program()
{
	Json p = Json::parse(program_json());
	p["spec"] = 2;
	p["version"] = 8;
	p["memberships"] = Json::array(
		{{{"id", "plus"}, {"sku", "MEM-PLUS"}, {"days", 30}, {"multiplier_pct", 200}}});
	return p.dump();
}

const int64_t now0 = utc_of(day_at(0));
const loy::Days day0 = loy::parse_date(day_at(0).substr(0, 10)).value();

loy::Terminal::ServerMember snapshot(loy::Terminal &t, std::optional<loy::MembershipRun> plus)
{
	loy::Terminal::ServerMember m;
	m.token = t.ledger().member_token(card_a);
	m.masked = "****7895";
	m.balance = 100;
	m.tier = "Member";
	if (plus)
		m.memberships["plus"] = *plus;
	return m;
}

Json membership_of(loy::Terminal &t, int64_t now) { return ok_json(t.balance(card_a, now))["membership"]; }

std::string date(loy::Days d) { return loy::format_date(d); }

} // namespace

TEST_CASE("the snapshot's runs with the unacknowledged days applied are the member's memberships")
{
	TempDir tmp;
	auto t = make_terminal(tmp.data());
	REQUIRE(t->program_load(plus_program(), now0));
	// The centre says Plus runs until day0 + 5.
	REQUIRE(t->record_sync(0, {snapshot(*t, loy::MembershipRun{day0 - 25, day0 + 5})}, 1, std::nullopt, now0));
	CHECK(membership_of(*t, now0) == Json{{"id", "plus"}, {"until", date(day0 + 5)}});
	// Bought on day 1 while running: 30 days from its end.
	const L plus{"MEM-PLUS", "membership", 1, 4900, 0};
	Json c = ok_json(t->checkout(card_a, basket("R-1", day_at(1), {plus}), loy::Redemption::none(),
				     utc_of(day_at(1))));
	CHECK(c["membership"] == Json{{"id", "plus"}, {"until", date(day0 + 35)}});
	RawDb db(ledger_path(tmp.data()));
	CHECK(db.rows("SELECT seq, membership, days FROM membership_changes") ==
	      std::vector<std::vector<std::string>>{{"1", "plus", "30"}});
	CHECK(db.text("SELECT json_extract(body, '$.data.memberships') FROM journal WHERE seq = 1") ==
	      R"([{"id":"plus","days":30}])");
	verified(*t);
	// The centre acknowledges it and sends the run it made of it: no local
	// days left, the snapshot alone.
	REQUIRE(t->record_sync(1, {snapshot(*t, loy::MembershipRun{day0 - 25, day0 + 35})}, 2, std::nullopt,
			       utc_of(day_at(2))));
	CHECK(db.integer("SELECT count(*) FROM membership_changes") == 0);
	CHECK(membership_of(*t, utc_of(day_at(2))) == Json{{"id", "plus"}, {"until", date(day0 + 35)}});
	// A refund after the acknowledgement: 30 days off, locally until the next one.
	ok_json(t->refund("R-1", {}, utc_of(day_at(2), 300)));
	CHECK(db.rows("SELECT seq, membership, days FROM membership_changes") ==
	      std::vector<std::vector<std::string>>{{"2", "plus", "-30"}});
	CHECK(membership_of(*t, utc_of(day_at(2), 600)) == Json{{"id", "plus"}, {"until", date(day0 + 5)}});
	verified(*t);
	// Tampered with: verify names the table; a rebuild puts it right.
	db.exec("UPDATE membership_changes SET days = -3");
	auto v = t->verify();
	REQUIRE(v);
	CHECK_FALSE(v->ok);
	CHECK(v->problem.find("membership_changes") != std::string::npos);
	REQUIRE(t->ledger().rebuild_derived());
	verified(*t);
	// The snapshot's runs are sealed.
	db.exec(R"(UPDATE server_members SET memberships = '{"plus":[0,999999]}')");
	auto b = t->balance(card_a, utc_of(day_at(3)));
	REQUIRE_FALSE(b);
	CHECK(b.status().code() == loy::Code::storage);
}

TEST_CASE("a snapshot row whose stamps or memberships are not their format is damage, named")
{
	TempDir tmp;
	auto t = make_terminal(tmp.data());
	REQUIRE(t->program_load(plus_program(), now0));
	REQUIRE(t->record_sync(0, {snapshot(*t, loy::MembershipRun{day0 - 25, day0 + 5})}, 1, std::nullopt, now0));
	verified(*t);
	RawDb db(ledger_path(tmp.data()));
	const std::string good = db.text("SELECT memberships FROM server_members");
	for (const auto &[column, text, names] : std::vector<std::tuple<std::string, std::string, std::string>>{
		     {"memberships", "not json", "memberships are not a JSON object"},
		     {"memberships", "[1, 2]", "memberships are not a JSON object"},
		     {"memberships", R"({"plus":[1]})", "membership \"plus\" is not [from, until]"},
		     {"memberships", R"({"plus":["a","b"]})", "membership \"plus\" is not [from, until]"},
		     {"stamps", "{", "stamps are not a JSON object"},
		     {"stamps", R"({"coffee-card":"six"})", "the stamps of card \"coffee-card\" are not a count"},
	     }) {
		INFO(column << " = " << text);
		db.exec("UPDATE server_members SET " + column + " = '" + text + "'");
		auto b = t->balance(card_a, now0);
		REQUIRE_FALSE(b);
		CHECK(b.status().code() == loy::Code::storage);
		CHECK_THAT(b.status().message(), Catch::Contains(names));
		auto v = t->verify();
		REQUIRE(v);
		CHECK_FALSE(v->ok);
		db.exec("UPDATE server_members SET stamps = '', memberships = '" + good + "'");
		verified(*t);
	}
}
