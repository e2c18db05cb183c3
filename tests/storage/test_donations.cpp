// Donations at the till (spec/program.md v2, "Charity donations"): the
// entry, the derived table and the balance in one transaction; the day's
// cap shared with redemptions on the terminal's local day; declines that
// write nothing; verify and a rebuild from the journal covering them.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "fixture.hpp"
#include "storage/ledger.hpp"

using namespace storage_test;

namespace {

// The example program as specification 2, with two charities.
std::string charity_program(int version)
{
	Json p = Json::parse(program_json());
	p["spec"] = 2;
	p["version"] = version;
	p["charities"] = Json::array({{{"id", "red-cross"}, {"name", "Red Cross"}},
				      {{"id", "food-bank"}, {"name", "Food Bank"}}});
	return p.dump();
}

// A terminal in zone `tz` with the charity program, and card A known to it
// with `balance` points from the centre's snapshot.
std::unique_ptr<loy::Terminal> donor_terminal(const std::string &dir, const std::string &tz, int64_t balance)
{
	loy::TerminalSetup setup;
	setup.terminal_id = "T1";
	setup.store = "S1";
	setup.tz = tz;
	const int64_t now = utc_of(day_at(0), -3600);
	loy::Status s = loy::Terminal::init(dir, setup, now);
	INFO(s.message());
	REQUIRE(s.is_ok());
	auto t = open_terminal(dir);
	auto loaded = t->program_load(charity_program(8), now);
	INFO(loaded.status().message());
	REQUIRE(loaded);
	loy::Terminal::ServerMember m;
	m.token = t->ledger().member_token("6280001234567895");
	m.masked = "****7895";
	m.balance = balance;
	m.tier = "Member";
	REQUIRE(t->record_sync(0, {m}, 1, std::nullopt, now));
	return t;
}

int64_t journal_size(const std::string &dir)
{
	return RawDb(ledger_path(dir)).integer("SELECT count(*) FROM journal");
}

// 2026-11-10 at hh:mm UTC.
int64_t utc_at(int hh, int mm) { return utc_of("2026-11-10T00:00:00Z", 0) + hh * 3600 + mm * 60; }

} // namespace

TEST_CASE("a donation is one entry: the points leave the member, the charity is recorded")
{
	TempDir tmp;
	auto t = donor_terminal(tmp.data(), "", 5000);
	const int64_t now = utc_at(10, 0);
	Json d = ok_json(t->donate(card_a, "red-cross", 300, now));
	CHECK(d == Json{{"card", "****7895"}, {"charity", "red-cross"}, {"points", 300}, {"balance", 4700}});
	CHECK(balance_of(*t, card_a, now) == 4700);
	RawDb db(ledger_path(tmp.data()));
	CHECK(db.rows("SELECT kind, points, json_extract(body, '$.data.charity'), "
		      "json_extract(body, '$.data.local_date') FROM journal") ==
	      std::vector<std::vector<std::string>>{{"donate", "-300", "red-cross", "20767"}});
	CHECK(db.rows("SELECT seq, charity, points, local_date FROM donations") ==
	      std::vector<std::vector<std::string>>{{"1", "red-cross", "300", "20767"}});
	// Not acknowledged yet: counted as the terminal's own.
	CHECK(ok_json(t->balance(card_a, now))["unsynced"] == -300);
	verified(*t);
}

TEST_CASE("donations and redemptions share the day's cap; the day is the terminal's")
{
	TempDir tmp;
	// Budapest is UTC+1 in November: 23:30 UTC is the next local day.
	auto t = donor_terminal(tmp.data(), "Europe/Budapest", 50000);
	ok_json(t->donate(card_a, "red-cross", 600, utc_at(9, 0)));
	// A redemption of the same local day (a receipt's local date) counts with it.
	const L beans_20{"BEAN-1K", "beans", 20, 1890, 0};
	ok_json(t->checkout(card_a, basket("R-1", "2026-11-10T11:00:00+01:00", {beans_20}),
			    loy::Redemption::of_points(300), utc_at(10, 0)));
	// 900 of 1000: 100 more is the cap exactly, one past is declined.
	auto over = t->donate(card_a, "food-bank", 101, utc_at(12, 0));
	REQUIRE_FALSE(over);
	CHECK(over.status().code() == loy::Code::declined_daily_cap);
	ok_json(t->donate(card_a, "food-bank", 100, utc_at(12, 0)));
	auto full = t->donate(card_a, "food-bank", 1, utc_at(22, 59)); // 23:59 local
	REQUIRE_FALSE(full);
	CHECK(full.status().code() == loy::Code::declined_daily_cap);
	// 23:00 UTC is midnight in Budapest: a new day, a new cap.
	ok_json(t->donate(card_a, "food-bank", 1000, utc_at(23, 0)));
	// ...and a redemption on that day finds it spent.
	auto redeem = t->checkout(card_a, basket("R-2", "2026-11-11T09:00:00+01:00", {beans_20}),
				  loy::Redemption::of_points(100), utc_at(23, 5));
	REQUIRE_FALSE(redeem);
	CHECK(redeem.status().code() == loy::Code::declined_daily_cap);
	RawDb db(ledger_path(tmp.data()));
	CHECK(db.rows("SELECT charity, points, local_date FROM donations ORDER BY seq") ==
	      std::vector<std::vector<std::string>>{
		      {"red-cross", "600", "20767"}, {"food-bank", "100", "20767"}, {"food-bank", "1000", "20768"}});
	verified(*t);
}

TEST_CASE("a declined or refused donation writes nothing")
{
	TempDir tmp;
	auto t = donor_terminal(tmp.data(), "", 500);
	const int64_t now = utc_at(10, 0);
	const int64_t before = journal_size(tmp.data());
	struct Row {
		const char *name, *card, *charity;
		int64_t points;
		loy::Code code;
	};
	const Row rows[] = {
		{"more than the balance", card_a, "red-cross", 501, loy::Code::declined_insufficient_points},
		{"a card this terminal does not know", card_b, "red-cross", 1, loy::Code::declined_balance_unknown},
		{"a charity the program lacks", card_a, "unicef", 1, loy::Code::unknown_charity},
		{"zero points", card_a, "red-cross", 0, loy::Code::bad_argument},
		{"a card that fails its check digit", "6280001234567890", "red-cross", 1, loy::Code::bad_card},
	};
	for (const Row &r : rows) {
		CAPTURE(r.name);
		auto d = t->donate(r.card, r.charity, r.points, now);
		REQUIRE_FALSE(d);
		CHECK(d.status().code() == r.code);
		CHECK(journal_size(tmp.data()) == before);
		CHECK(RawDb(ledger_path(tmp.data())).integer("SELECT count(*) FROM donations") == 0);
	}
	CHECK(balance_of(*t, card_a, now) == 500);
	// A program of specification 1 has no charities at all.
	Json prog = Json::parse(program_json());
	prog["version"] = 9;
	REQUIRE(t->program_load(prog.dump(), now));
	auto d = t->donate(card_a, "red-cross", 1, now);
	REQUIRE_FALSE(d);
	CHECK(d.status().code() == loy::Code::unknown_charity);
	// A card the centre blocked donates nothing.
	loy::Terminal::ServerMember m;
	m.token = t->ledger().member_token("6280001234567895");
	m.masked = "****7895";
	m.balance = 500;
	m.tier = "Member";
	m.blocked = true;
	REQUIRE(t->program_load(charity_program(10), now));
	REQUIRE(t->record_sync(0, {m}, 2, std::nullopt, now));
	auto b = t->donate(card_a, "red-cross", 1, now);
	REQUIRE_FALSE(b);
	CHECK(b.status().code() == loy::Code::declined_blocked);
	CHECK(journal_size(tmp.data()) == before);
}

TEST_CASE("verify checks the donations table against the journal")
{
	struct Row {
		const char *name, *sql;
	};
	const Row rows[] = {
		{"points changed", "UPDATE donations SET points = 1"},
		{"charity changed", "UPDATE donations SET charity = 'food-bank'"},
		{"day changed", "UPDATE donations SET local_date = local_date + 1"},
		{"a row deleted", "DELETE FROM donations"},
		{"a row no entry has", "INSERT INTO donations (seq, token, charity, points, local_date) "
				       "SELECT seq + 100, token, charity, points, local_date FROM donations"},
	};
	for (const Row &r : rows) {
		CAPTURE(r.name);
		TempDir tmp;
		{
			auto t = donor_terminal(tmp.data(), "", 5000);
			ok_json(t->donate(card_a, "red-cross", 300, utc_at(10, 0)));
			verified(*t);
		}
		RawDb(ledger_path(tmp.data())).exec(r.sql);
		auto t = open_terminal(tmp.data());
		auto v = t->verify();
		REQUIRE(v);
		CHECK_FALSE(v->ok);
		CHECK_THAT(v->problem, Catch::Contains("donations"));
	}
}
