// Redemption (spec/program.md, "Balance and redemption" and accrual step 2):
// every decline and its boundary, the order of the checks, the largest-remainder
// spread of points for money, rewards, and what both do to the points earned.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "fixture.hpp"

using namespace core_test;

namespace {

using loy::Code;
using loy::Redemption;

// What this file's programs change in the fixture's base_program; each test
// merges its own changes over both (RFC 7386).
const char *const defaults = R"({
	"exclude": { "categories": ["tobacco"] },
	"redeem": { "min_points": 100, "max_pct": 50, "offline_daily_cap": 2000 },
	"rewards": [ { "id": "free-coffee", "cost": 300, "sku": "COF-01" },
		     { "id": "free-cig", "cost": 100, "sku": "CIG" } ]
})";

loy::Program make_program(const std::string &patch = "{}") { return program_from(defaults, patch); }

// S0 = 700 + 1301 = 2001 (the tobacco line is excluded); with max_pct 50 the
// most money a redemption may take is floor(2001 × 50 / 100) = 1000 (1000.5).
const std::vector<L> with_coffee = {{"COF-01", "coffee", 2, 350, 0},
				    {"CAKE", "pastry", 1, 1301, 0},
				    {"CIG", "tobacco", 1, 5000, 0}};
const std::vector<L> without_coffee = {{"TEA", "coffee", 2, 350, 0},
				       {"CAKE", "pastry", 1, 1301, 0},
				       {"CIG", "tobacco", 1, 5000, 0}};

struct M {
	bool known = true;
	bool blocked = false;
	int64_t balance = 5000;
	int64_t today = 0;
};

loy::Member member(const M &m)
{
	loy::Member out;
	out.known = m.known;
	out.blocked = m.blocked;
	out.balance = m.balance;
	out.redeemed_today = m.today;
	return out;
}

M blocked() { return {true, true, 5000, 0}; }
M unknown() { return {false, false, 0, 0}; }
M balance(int64_t b) { return {true, false, b, 0}; }
M today(int64_t t) { return {true, false, 5000, t}; }

// One row of the decline tables: Code::ok means accepted.
struct Row {
	const char *name;
	M member;
	Redemption redemption;
	bool coffee;
	Code code;
};

void run(const loy::Program &p, const Row &r)
{
	INFO(r.name);
	auto b = make_basket(r.coffee ? with_coffee : without_coffee);
	auto c = loy::checkout(p, b, member(r.member), r.redemption);
	if (r.code == Code::ok) {
		INFO(c.status().message());
		REQUIRE(c);
		if (r.redemption.kind == loy::RedeemKind::points) {
			CHECK(c->redeemed == r.redemption.points);
			CHECK(c->discount == r.redemption.points); // point_value 1
		} else {
			CHECK(c->redeemed == 300);
			CHECK(c->discount == 350); // one COF-01 unit
		}
		CHECK(c->eligible_before == 2001);
		CHECK(c->eligible == 2001 - c->discount);
		return;
	}
	REQUIRE_FALSE(c);
	CHECK(loy::code_name(c.status().code()) == std::string(loy::code_name(r.code)));
	CHECK(c.status().kind() == loy::kind_of(r.code));
	const bool decline = r.code != Code::bad_argument && r.code != Code::unknown_reward;
	CHECK(c.status().kind() == (decline ? loy::Kind::declined : loy::Kind::bad_input));
	CHECK_FALSE(c.status().message().empty());
}

const Redemption coffee = Redemption::of_reward("free-coffee");

Redemption pts(int64_t p) { return Redemption::of_points(p); }

} // namespace

TEST_CASE("each decline, and the boundary row that passes", "[redeem]")
{
	// min_points 100, max D 1000, cap 2000, balance 5000 unless the row says.
	const Row rows[] = {
		{"blocked, points", blocked(), pts(100), true, Code::declined_blocked},
		{"blocked, reward", blocked(), coffee, true, Code::declined_blocked},
		{"balance unknown, points", unknown(), pts(100), true, Code::declined_balance_unknown},
		{"balance unknown, reward", unknown(), coffee, true, Code::declined_balance_unknown},
		{"min_points: one below", M{}, pts(99), true, Code::declined_min_points},
		{"min_points: at", M{}, pts(100), true, Code::ok},
		// D = 1000 = floor(2001 × 50 / 100)
		{"max_pct: D at the limit", M{}, pts(1000), true, Code::ok},
		{"max_pct: one point over", M{}, pts(1001), true, Code::declined_max_pct},
		{"reward sku not in the basket", M{}, coffee, false, Code::declined_reward_not_in_basket},
		{"reward sku in the basket", M{}, coffee, true, Code::ok},
		{"balance: points = balance", balance(500), pts(500), true, Code::ok},
		{"balance: one over", balance(499), pts(500), true, Code::declined_insufficient_points},
		{"balance: negative", balance(-50), pts(100), true, Code::declined_insufficient_points},
		{"balance: reward cost = balance", balance(300), coffee, true, Code::ok},
		{"balance: reward cost one over", balance(299), coffee, true,
		 Code::declined_insufficient_points},
		// 1700 + 300 = 2000 = cap
		{"daily cap: at", today(1700), pts(300), true, Code::ok},
		{"daily cap: one over", today(1700), pts(301), true, Code::declined_daily_cap},
		{"daily cap: reward at", today(1700), coffee, true, Code::ok},
		{"daily cap: reward one over", today(1701), coffee, true, Code::declined_daily_cap},
		{"daily cap: today + points past int64", today(INT64_MAX), pts(100), true,
		 Code::declined_daily_cap},
	};
	auto p = make_program();
	for (const auto &r : rows)
		run(p, r);
}

TEST_CASE("a row failing two checks gets the earlier one", "[redeem]")
{
	const Row rows[] = {
		{"bad points before blocked", blocked(), pts(0), true, Code::bad_argument},
		{"negative points before unknown", unknown(), pts(-5), true, Code::bad_argument},
		{"unknown reward before blocked", blocked(), Redemption::of_reward("nope"), true,
		 Code::unknown_reward},
		{"unknown reward before reward not in basket", M{}, Redemption::of_reward("nope"), false,
		 Code::unknown_reward},
		{"blocked before unknown", {false, true, 0, 0}, pts(100), true, Code::declined_blocked},
		{"unknown before min_points", unknown(), pts(50), true, Code::declined_balance_unknown},
		{"min_points before balance", balance(10), pts(50), true, Code::declined_min_points},
		{"min_points before daily cap", today(1990), pts(50), true, Code::declined_min_points},
		{"max_pct before balance", balance(100), pts(1500), true, Code::declined_max_pct},
		{"max_pct before daily cap", today(1500), pts(1001), true, Code::declined_max_pct},
		{"reward not in basket before balance", balance(0), coffee, false,
		 Code::declined_reward_not_in_basket},
		{"reward not in basket before daily cap", today(2000), coffee, false,
		 Code::declined_reward_not_in_basket},
		{"balance before daily cap", {true, false, 100, 1900}, pts(200), true,
		 Code::declined_insufficient_points},
	};
	auto p = make_program();
	for (const auto &r : rows)
		run(p, r);
}

TEST_CASE("bad redemption requests", "[redeem]")
{
	auto p = make_program();
	auto b = make_basket(with_coffee);
	struct BadRow {
		const char *name;
		Redemption redemption;
		Code code;
		const char *says;
	};
	const BadRow rows[] = {
		{"redeem 0", pts(0), Code::bad_argument, "positive"},
		{"redeem −1", pts(-1), Code::bad_argument, "-1"},
		{"redeem INT64_MIN", pts(INT64_MIN), Code::bad_argument, "positive"},
		{"unknown reward", Redemption::of_reward("free-tea"), Code::unknown_reward, "free-tea"},
	};
	for (const auto &r : rows) {
		INFO(r.name);
		auto c = loy::checkout(p, b, member(M{}), r.redemption);
		REQUIRE_FALSE(c);
		CHECK(c.status().code() == r.code);
		CHECK(c.status().kind() == loy::Kind::bad_input);
		CHECK_THAT(c.status().message(), Catch::Contains(r.says));
	}
}

TEST_CASE("a blocked card earns nothing, and may still buy", "[redeem]")
{
	auto p = make_program();
	auto b = make_basket(with_coffee);
	loy::Member m = member(blocked());
	// Without a redemption: accepted, nothing earned, base 0 alone.
	auto c = accepted(p, b, m, Redemption::none());
	CHECK(c.earned == 0);
	CHECK(describe(c.breakdown) == "base=0");
	CHECK(c.redeemed == 0);
	CHECK(c.discount == 0);
	CHECK(c.eligible == 2001);
	CHECK(c.tier == "Member");
	// With one: declined, points and rewards alike.
	for (const auto &r : {pts(100), coffee}) {
		auto d = loy::checkout(p, b, m, r);
		REQUIRE_FALSE(d);
		CHECK(d.status().code() == Code::declined_blocked);
		CHECK(d.status().kind() == loy::Kind::declined);
	}
}

TEST_CASE("an unknown card earns without redeeming", "[redeem]")
{
	// None of the redemption checks apply when nothing is redeemed.
	auto p = make_program();
	auto c = accepted(p, make_basket(with_coffee), member(unknown()), Redemption::none());
	CHECK(c.earned == 20); // floor(2001 / 100)
}

TEST_CASE("min_points and max_pct do not apply to rewards", "[redeem]")
{
	auto p = make_program(R"({ "redeem": { "min_points": 1000, "max_pct": 0 } })");
	auto c = accepted(p, make_basket(with_coffee), member(M{}), coffee);
	CHECK(c.redeemed == 300);
	CHECK(c.discount == 350);
	// And they still apply to points: max_pct 0 allows no money at all.
	auto d = loy::checkout(p, make_basket(with_coffee), member(M{}), pts(1000));
	REQUIRE_FALSE(d);
	CHECK(d.status().code() == Code::declined_max_pct);
}

TEST_CASE("points for money are spread by largest remainder", "[redeem]")
{
	// 1 point per cent, and one category campaign of ×2 per line, so each
	// campaign part shows its line's net after the spread: floor(S_c × 100 /
	// 100) = S_c.
	auto p = make_program(R"({
		"earn": { "points": 1, "per": 1 },
		"redeem": { "point_value": 1, "min_points": 0, "max_pct": 100,
			    "offline_daily_cap": 1000000 },
		"campaigns": [
			{ "id": "cat-a", "kind": "category_multiplier", "category": "a", "multiplier_pct": 200 },
			{ "id": "cat-b", "kind": "category_multiplier", "category": "b", "multiplier_pct": 200 },
			{ "id": "cat-c", "kind": "category_multiplier", "category": "c", "multiplier_pct": 200 }
		]
	})");
	struct SpreadRow {
		const char *name;
		std::vector<L> lines;
		int64_t points;
		int64_t before; // S0
		const char *breakdown;
	};
	const SpreadRow rows[] = {
		// D = 200 over 100/100/100: each floor(200×100/300) = 66, remainder
		// 200 each; 2 left over go to the two earliest: a 33, b 33, c 34.
		{"three-way tie: earlier lines first",
		 {{"A", "a", 1, 100, 0}, {"B", "b", 1, 100, 0}, {"C", "c", 1, 100, 0}}, 200, 300,
		 "base=100, cat-a=33, cat-b=33, cat-c=34"},
		// The same with an excluded line among them: it takes no share and
		// keeps its 100 out of S.
		{"excluded line takes no share",
		 {{"A", "a", 1, 100, 0}, {"X", "tobacco", 1, 100, 0}, {"B", "b", 1, 100, 0},
		  {"C", "c", 1, 100, 0}},
		 200, 300, "base=100, cat-a=33, cat-b=33, cat-c=34"},
		// D = 7 over 200/300/500: 1.4 → 1 (rem 400), 2.1 → 2 (rem 100), 3.5 →
		// 3 (rem 500); the 1 left goes to c, the largest remainder.
		{"largest remainder wins",
		 {{"A", "a", 1, 200, 0}, {"B", "b", 1, 300, 0}, {"C", "c", 1, 500, 0}}, 7, 1000,
		 "base=993, cat-a=199, cat-b=298, cat-c=496"},
		// D = 6 over 100/200/100 after an excluded line of 1000: 1 (rem 200),
		// 3 (rem 0), 1 (rem 200); the 1 left goes to a, the earlier of the tie.
		{"tie between non-adjacent lines, excluded line first",
		 {{"X", "tobacco", 1, 1000, 0}, {"A", "a", 1, 100, 0}, {"B", "b", 2, 100, 0},
		  {"C", "c", 1, 100, 0}},
		 6, 400, "base=394, cat-a=98, cat-b=197, cat-c=99"},
		// D = 100 over 100/300: exactly 25 and 75.
		{"exact shares", {{"A", "a", 1, 100, 0}, {"B", "b", 3, 100, 0}}, 100, 400,
		 "base=300, cat-a=75, cat-b=225"},
		// D = 1 over 0/100/100: 0 (rem 0), 0 (rem 100), 0 (rem 100); b takes it.
		{"a fully discounted line takes nothing",
		 {{"A", "a", 1, 100, 100}, {"B", "b", 1, 100, 0}, {"C", "c", 1, 100, 0}}, 1, 200,
		 "base=199, cat-b=99, cat-c=100"},
		// D = S0: every line to 0.
		{"everything", {{"A", "a", 1, 100, 0}, {"B", "b", 2, 150, 0}}, 400, 400, "base=0"},
	};
	for (const auto &r : rows) {
		INFO(r.name);
		auto c = accepted(p, make_basket(r.lines), member(M{true, false, 5000000, 0}), pts(r.points));
		CHECK(c.eligible_before == r.before);
		CHECK(c.eligible == r.before - r.points);
		CHECK(c.discount == r.points);
		CHECK(c.redeemed == r.points);
		CHECK(describe(c.breakdown) == r.breakdown);
	}
}

TEST_CASE("points earned on what was paid: S after the redemption", "[redeem]")
{
	auto p = make_program(R"({
		"redeem": { "min_points": 0 },
		"campaigns": [ { "id": "big", "kind": "spend_bonus", "min_spend": 2000, "points": 50 } ]
	})");
	struct EarnRow {
		const char *name;
		Redemption redemption;
		int64_t eligible;
		const char *breakdown;
	};
	const EarnRow rows[] = {
		// S0 = 2001: base 20, and S ≥ 2000.
		{"no redemption", Redemption::none(), 2001, "base=20, big=50"},
		// S = 2000: still at min_spend.
		{"1 point", pts(1), 2000, "base=20, big=50"},
		// S = 1999: one below min_spend, base floor(19.99) = 19.
		{"2 points", pts(2), 1999, "base=19"},
		// S = 1501
		{"500 points", pts(500), 1501, "base=15"},
	};
	for (const auto &r : rows) {
		INFO(r.name);
		auto c = accepted(p, make_basket(with_coffee), member(M{}), r.redemption);
		CHECK(c.eligible_before == 2001);
		CHECK(c.eligible == r.eligible);
		CHECK(describe(c.breakdown) == r.breakdown);
	}
}

TEST_CASE("a reward takes one unit price off the first line of its sku", "[redeem]")
{
	auto p = make_program(R"({
		"redeem": { "offline_daily_cap": 1000000 },
		"campaigns": [ { "id": "stamp", "kind": "item_bonus", "sku": "COF-01", "points": 5 } ]
	})");
	struct RewardRow {
		const char *name;
		std::vector<L> lines;
		Redemption reward;
		int64_t discount, before, eligible;
		const char *breakdown;
	};
	const RewardRow rows[] = {
		// 700 + 1301 − 350 = 1651 → 16; stamp: 2 units, 1 given → 5.
		{"discount is one unit price",
		 {{"COF-01", "coffee", 2, 350, 0}, {"CAKE", "pastry", 1, 1301, 0}}, coffee, 350, 2001, 1651,
		 "base=16, stamp=5"},
		// The one unit is given: no stamp at all.
		{"the given unit earns no item bonus",
		 {{"COF-01", "coffee", 1, 350, 0}, {"CAKE", "pastry", 1, 1301, 0}}, coffee, 350, 1651, 1301,
		 "base=13"},
		// Net 350 − 200 = 150 < one unit price: the reward takes only 150.
		{"line discounted below one unit price gives its net",
		 {{"COF-01", "coffee", 1, 350, 200}, {"CAKE", "pastry", 1, 1301, 0}}, coffee, 150, 1451, 1301,
		 "base=13"},
		// Net 700 − 200 = 500 ≥ 350: the full unit price; 150 stays.
		{"line discounted, still above one unit price",
		 {{"COF-01", "coffee", 2, 350, 200}, {"CAKE", "pastry", 1, 1301, 0}}, coffee, 350, 1801, 1451,
		 "base=14, stamp=5"},
		// The first COF-01 line (300) loses its unit; the second keeps its
		// stamp: S = 350 + 1301 = 1651.
		{"sku on two lines: the first",
		 {{"COF-01", "coffee", 1, 300, 0}, {"COF-01", "coffee", 1, 350, 0},
		  {"CAKE", "pastry", 1, 1301, 0}},
		 coffee, 300, 1951, 1651, "base=16, stamp=5"},
		// A reward on an excluded line: money off, S unchanged.
		{"reward on an excluded line",
		 {{"CIG", "tobacco", 2, 500, 0}, {"CAKE", "pastry", 1, 1301, 0}},
		 Redemption::of_reward("free-cig"), 500, 1301, 1301, "base=13"},
	};
	for (const auto &r : rows) {
		INFO(r.name);
		auto c = accepted(p, make_basket(r.lines), member(M{}), r.reward);
		const loy::Reward *w = p.find_reward(r.reward.reward);
		REQUIRE(w);
		CHECK(c.redeemed == w->cost);
		CHECK(c.discount == r.discount);
		CHECK(c.eligible_before == r.before);
		CHECK(c.eligible == r.eligible);
		CHECK(describe(c.breakdown) == r.breakdown);
	}
}

TEST_CASE("redemption with a point worth more than one minor unit", "[redeem]")
{
	// point_value 5; S0 = 2001, so D may be at most 1000.
	auto p = make_program(R"({ "redeem": { "point_value": 5, "min_points": 150, "max_pct": 50,
					       "offline_daily_cap": 1000000 } })");
	struct ValueRow {
		const char *name;
		int64_t points;
		Code code;
		int64_t discount, eligible;
		const char *breakdown;
	};
	const ValueRow rows[] = {
		// min_points counts points, not money: 149 points (745) is below.
		{"149 points: below min_points", 149, Code::declined_min_points, 0, 0, ""},
		// D = 150 × 5 = 750, S = 1251 → 12
		{"150 points", 150, Code::ok, 750, 1251, "base=12"},
		// D = 199 × 5 = 995, S = 1006 → 10
		{"199 points", 199, Code::ok, 995, 1006, "base=10"},
		// D = 200 × 5 = 1000 = the limit, S = 1001 → 10
		{"200 points: D at the limit", 200, Code::ok, 1000, 1001, "base=10"},
		// D = 1005
		{"201 points: over", 201, Code::declined_max_pct, 0, 0, ""},
		// points × point_value past int64: over any limit, not an overflow.
		{"points × point_value past int64", INT64_MAX / 2, Code::declined_max_pct, 0, 0, ""},
	};
	for (const auto &r : rows) {
		INFO(r.name);
		auto c = loy::checkout(p, make_basket(with_coffee), member(balance(INT64_MAX)),
				       pts(r.points));
		if (r.code != Code::ok) {
			REQUIRE_FALSE(c);
			CHECK(c.status().code() == r.code);
			CHECK(c.status().kind() == loy::Kind::declined);
			continue;
		}
		INFO(c.status().message());
		REQUIRE(c);
		CHECK(c->redeemed == r.points);
		CHECK(c->discount == r.discount);
		CHECK(c->eligible == r.eligible);
		CHECK(describe(c->breakdown) == r.breakdown);
	}
}
