// Program specification 2, "Charity donations": a member gives points to one
// of the program's charities, declined (never clipped) as a redemption for
// money is: balance known, points at most the balance, card not blocked, and
// counted with the day's redemptions against offline_daily_cap; no
// min_points.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include "fixture.hpp"

using namespace core_test;

namespace {

using loy::Code;

// Two charities; a cap of 1000 a day and a min_points a donation ignores.
const char *const charities = R"({ "spec": 2,
	"charities": [ { "id": "red-cross", "name": "Red Cross" },
		       { "id": "food-bank", "name": "The Food Bank of the Town" } ],
	"redeem": { "point_value": 2, "min_points": 500, "max_pct": 50, "offline_daily_cap": 1000 } })";

loy::Member member(int64_t balance, int64_t redeemed_today)
{
	loy::Member m;
	m.known = true;
	m.balance = balance;
	m.redeemed_today = redeemed_today;
	return m;
}

} // namespace

TEST_CASE("a program's charities are read by id", "[donations]")
{
	const loy::Program p = program_from(charities, "{}");
	REQUIRE(p.charities.size() == 2);
	REQUIRE(p.find_charity("food-bank"));
	CHECK(p.find_charity("food-bank")->name == "The Food Bank of the Town");
	CHECK_FALSE(p.find_charity("Food-Bank"));
	CHECK_FALSE(p.find_charity(""));
	// A program without the section has none.
	CHECK(program_from("{}", "{}").charities.empty());
}

TEST_CASE("a donation is declined as a redemption for money, never clipped", "[donations]")
{
	const loy::Program p = program_from(charities, "{}");
	struct Row {
		const char *name;
		loy::Member m;
		const char *charity;
		int64_t points;
		bool ok;
		Code code;
	};
	loy::Member blocked = member(5000, 0);
	blocked.blocked = true;
	loy::Member unknown = member(5000, 0);
	unknown.known = false;
	loy::Member blocked_unknown = unknown;
	blocked_unknown.blocked = true;
	const Row rows[] = {
		{"one point: no min_points", member(10, 0), "red-cross", 1, true, Code::ok},
		{"the whole balance", member(700, 0), "food-bank", 700, true, Code::ok},
		{"one past the balance", member(700, 0), "food-bank", 701, false, Code::declined_insufficient_points},
		{"a balance below zero", member(-5, 0), "red-cross", 1, false, Code::declined_insufficient_points},
		{"up to the cap with the day's redemptions", member(5000, 400), "red-cross", 600, true, Code::ok},
		{"one past the cap", member(5000, 400), "red-cross", 601, false, Code::declined_daily_cap},
		{"the cap already reached", member(5000, 1000), "red-cross", 1, false, Code::declined_daily_cap},
		// Within the cap and the balance, far past max_pct of any basket:
		// a donation has no basket.
		{"no max_pct", member(5000, 0), "red-cross", 1000, true, Code::ok},
		{"blocked", blocked, "red-cross", 1, false, Code::declined_blocked},
		{"balance unknown", unknown, "red-cross", 1, false, Code::declined_balance_unknown},
		{"blocked and unknown: blocked first, as a redemption", blocked_unknown, "red-cross", 1, false,
		 Code::declined_blocked},
		// Bad input before any decline: the request itself is wrong.
		{"a charity the program lacks", blocked, "unicef", 1, false, Code::unknown_charity},
		{"a charity's name is not its id", member(5000, 0), "Red Cross", 1, false, Code::unknown_charity},
		{"zero points", member(5000, 0), "red-cross", 0, false, Code::bad_argument},
		{"negative points", member(5000, 0), "red-cross", -10, false, Code::bad_argument},
		// Sums that would overflow are a decline, not a wrap.
		{"the day's sum past 64 bits", member(INT64_MAX, INT64_MAX - 5), "red-cross", 10, false,
		 Code::declined_daily_cap},
	};
	for (const Row &r : rows) {
		INFO(r.name);
		const loy::Status s = loy::check_donation(p, r.m, r.charity, r.points);
		CHECK(static_cast<bool>(s) == r.ok);
		if (!r.ok) {
			CHECK(s.code() == r.code);
			CHECK_FALSE(s.message().empty());
		}
	}
}

TEST_CASE("a declined donation names its figures", "[donations]")
{
	const loy::Program p = program_from(charities, "{}");
	check_refused(loy::check_donation(p, member(700, 0), "red-cross", 701), Code::declined_insufficient_points,
		      "701 points to give, 700 available", nullptr);
	check_refused(loy::check_donation(p, member(5000, 400), "red-cross", 601), Code::declined_daily_cap,
		      "601 points today", "cap of 1000 (400 already");
	check_refused(loy::check_donation(p, member(5000, 0), "unicef", 1), Code::unknown_charity,
		      "charity \"unicef\" is not in program", nullptr);
}
