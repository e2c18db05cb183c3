// Accrual (spec/program.md, "Accrual" and "Tiers"): base, tier and campaign
// parts, their filters and caps, breakdown order and rounding, and overflow.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "fixture.hpp"

using namespace core_test;

namespace {

using loy::Code;

// Each test merges its own changes over the fixture's base_program (RFC 7386:
// objects merge key by key, arrays are replaced whole).
loy::Program make_program(const std::string &patch) { return program_from("{}", patch); }

loy::Member member(int64_t qualifying_spend = 0)
{
	loy::Member m;
	m.known = true;
	m.qualifying_spend = qualifying_spend;
	return m;
}

// A checkout with no redemption that must be accepted, with the invariants of
// every accepted one (fixture.hpp) and nothing redeemed.
loy::Checkout accrue(const loy::Program &p, const loy::Basket &b, const loy::Member &m)
{
	auto c = accepted(p, b, m, loy::Redemption::none());
	CHECK(c.redeemed == 0);
	CHECK(c.discount == 0);
	CHECK(c.eligible == c.eligible_before);
	return c;
}

// A row of the general accrual table: a program patch, a basket, the member's
// qualifying spend, and the expected breakdown and eligible spend.
struct Row {
	const char *name;
	const char *patch;
	std::vector<L> lines;
	const char *at;
	int64_t qualifying;
	const char *breakdown;
	int64_t eligible;
};

void run(const Row &r)
{
	INFO(r.name);
	auto p = make_program(r.patch);
	auto c = accrue(p, make_basket(r.lines, r.at), member(r.qualifying));
	CHECK(describe(c.breakdown) == r.breakdown);
	CHECK(c.eligible == r.eligible);
}

} // namespace

TEST_CASE("base = floor(S × points / per) at its boundaries", "[accrual]")
{
	struct Base {
		const char *name;
		int64_t points, per, spend, base;
	};
	const Base rows[] = {
		{"S = 0", 1, 100, 0, 0},
		{"S = per − 1", 1, 100, 99, 0},            // 99/100
		{"S = per", 1, 100, 100, 1},               // 100/100
		{"S = 2per − 1", 1, 100, 199, 1},          // 199/100 = 1.99
		{"S = 2per", 1, 100, 200, 2},
		{"3 per 250, S = per − 1", 3, 250, 249, 2}, // 747/250 = 2.988
		{"3 per 250, S = per", 3, 250, 250, 3},     // 750/250
		{"3 per 250, S = 2per − 1", 3, 250, 499, 5}, // 1497/250 = 5.988
		{"3 per 250, S = 2per", 3, 250, 500, 6},
		{"per 1", 7, 1, 13, 91},                    // 13 × 7
		{"points 0", 0, 100, 100000, 0},
	};
	for (const auto &r : rows) {
		INFO(r.name);
		Json patch = {{"earn", {{"points", r.points}, {"per", r.per}}}};
		auto p = make_program(patch.dump());
		auto c = accrue(p, make_basket({{"A", "food", 1, r.spend, 0}}), member());
		CHECK(describe(c.breakdown) == "base=" + std::to_string(r.base));
		CHECK(c.earned == r.base);
		CHECK(c.eligible == r.spend);
		CHECK(c.tier == "Member");
	}
}

TEST_CASE("excluded categories and skus earn nothing and are not in S", "[accrual]")
{
	// Campaigns that would pay for the excluded lines if they counted.
	const char *patch = R"({
		"exclude": { "categories": ["tobacco", "giftcard"], "skus": ["BAG-01"] },
		"campaigns": [
			{ "id": "tob-x2", "kind": "category_multiplier", "category": "tobacco",
			  "multiplier_pct": 200 },
			{ "id": "bag-bonus", "kind": "item_bonus", "sku": "BAG-01", "points": 10 },
			{ "id": "tob-item", "kind": "item_bonus", "category": "tobacco", "points": 3 },
			{ "id": "big", "kind": "spend_bonus", "min_spend": 1000, "points": 50 }
		]
	})";
	const Row rows[] = {
		// S = 150 (the 900 of tobacco left out): base floor(150/100) = 1;
		// big needs 1000, which 150 + 900 would have reached.
		{"excluded category", patch,
		 {{"FOOD", "food", 1, 150, 0}, {"CIG", "tobacco", 1, 900, 0}}, tuesday, 0, "base=1", 150},
		// BAG-01 is excluded by sku though its category earns: S = 150.
		{"excluded sku in an earning category", patch,
		 {{"FOOD", "food", 1, 150, 0}, {"BAG-01", "food", 2, 500, 0}}, tuesday, 0, "base=1", 150},
		// 60 + 60 would earn 1; 60 alone earns 0.
		{"excluded line does not lift S over per", patch,
		 {{"FOOD", "food", 1, 60, 0}, {"GC", "giftcard", 1, 60, 0}}, tuesday, 0, "base=0", 60},
		{"only excluded lines", patch,
		 {{"CIG", "tobacco", 2, 1000, 0}, {"GC", "giftcard", 1, 5000, 0},
		  {"BAG-01", nullptr, 1, 10, 0}},
		 tuesday, 0, "base=0", 0},
		// A line without a category is in no category: it earns.
		{"line without a category earns", patch, {{"GUM", nullptr, 1, 250, 0}}, tuesday, 0,
		 "base=2", 250},
	};
	for (const auto &r : rows)
		run(r);
}

TEST_CASE("discounts lower the net; a fully discounted line earns no spend points", "[accrual]")
{
	const char *patch = R"({
		"campaigns": [
			{ "id": "food-x2", "kind": "category_multiplier", "category": "food",
			  "multiplier_pct": 200 },
			{ "id": "free-stamp", "kind": "item_bonus", "sku": "FREE", "points": 5 }
		]
	})";
	const Row rows[] = {
		// net 2×500 − 150 = 850: base floor(850/100) = 8; food-x2
		// floor(850×100/10000) = 8.
		{"discount lowers the net", patch, {{"A", "food", 2, 500, 150}}, tuesday, 0,
		 "base=8, food-x2=8", 850},
		// net 250 − 151 = 99: one below per.
		{"discount to one below per", patch, {{"A", "food", 1, 250, 151}}, tuesday, 0, "base=0",
		 99},
		// A discount never earns: nothing paid, no base or multiplier points.
		// An item_bonus counts units sold, and a discounted unit is sold; only
		// a reward's unit is "given, not sold" (spec, Accrual 2 and 4).
		{"100% discounted line", patch, {{"FREE", "food", 1, 500, 500}}, tuesday, 0,
		 "base=0, free-stamp=5", 0},
		{"100% discounted line next to a paid one", patch,
		 {{"FREE", "food", 2, 500, 1000}, {"A", "food", 1, 300, 0}}, tuesday, 0,
		 "base=3, food-x2=3, free-stamp=10", 300},
	};
	for (const auto &r : rows)
		run(r);
}

TEST_CASE("the tier part for each tier, at and one below its threshold", "[accrual]")
{
	const char *patch = R"({ "tiers": [
		{ "name": "Member", "spend": 0, "multiplier_pct": 100 },
		{ "name": "Silver", "spend": 20000, "multiplier_pct": 125 },
		{ "name": "Gold", "spend": 50000, "multiplier_pct": 150 } ] })";
	struct TierRow {
		const char *name;
		int64_t qualifying, spend;
		const char *tier, *breakdown;
	};
	const TierRow rows[] = {
		// S = 1000: base 10; Silver floor(1000×1×25/10000) = 2 (2.5);
		// Gold floor(1000×50/10000) = 5; Member's part is 0, left out.
		{"no spend", 0, 1000, "Member", "base=10"},
		{"one below Silver", 19999, 1000, "Member", "base=10"},
		{"at Silver", 20000, 1000, "Silver", "base=10, tier:Silver=2"},
		{"one below Gold", 49999, 1000, "Silver", "base=10, tier:Silver=2"},
		{"at Gold", 50000, 1000, "Gold", "base=10, tier:Gold=5"},
		{"far above Gold", INT64_MAX, 1000, "Gold", "base=10, tier:Gold=5"},
		{"negative (refunds)", -1, 1000, "Member", "base=10"},
		// S = 399: Silver floor(399×25/10000) = 0 (0.9975), left out;
		// Gold floor(399×50/10000) = 1 (1.995).
		{"Silver part floors to 0", 20000, 399, "Silver", "base=3"},
		{"Gold part floors to 1", 50000, 399, "Gold", "base=3, tier:Gold=1"},
	};
	auto p = make_program(patch);
	for (const auto &r : rows) {
		INFO(r.name);
		auto c = accrue(p, make_basket({{"A", "food", 1, r.spend, 0}}), member(r.qualifying));
		CHECK(c.tier == r.tier);
		CHECK(describe(c.breakdown) == r.breakdown);
	}
}

TEST_CASE("an unknown card is in the lowest tier", "[accrual]")
{
	// The lowest tier asks for a spend an unknown card does not have.
	auto p = make_program(R"({ "tiers": [
		{ "name": "Basic", "spend": 1000, "multiplier_pct": 110 },
		{ "name": "Plus", "spend": 5000, "multiplier_pct": 200 } ] })");
	auto c = loy::checkout(p, make_basket({{"A", "food", 1, 1000, 0}}), loy::Member{},
			       loy::Redemption::none());
	REQUIRE(c);
	CHECK(c->tier == "Basic");
	// base 1000/100 = 10; tier floor(1000×10/10000) = 1.
	CHECK(describe(c->breakdown) == "base=10, tier:Basic=1");
	CHECK(c->earned == 11);
}

TEST_CASE("each campaign kind with each of its filters", "[accrual]")
{
	// Basket: 2 × A (food) at 500, S = 1000, base 10. What each kind adds when
	// it applies:
	struct KindRow {
		const char *name;
		Json campaign;
		int64_t points;
	};
	const KindRow kinds[] = {
		// floor(1000×1×100/10000) = 10
		{"multiplier", {{"kind", "multiplier"}, {"multiplier_pct", 200}}, 10},
		// S_food = 1000: floor(1000×200/10000) = 20
		{"category_multiplier",
		 {{"kind", "category_multiplier"}, {"category", "food"}, {"multiplier_pct", 300}},
		 20},
		{"spend_bonus", {{"kind", "spend_bonus"}, {"min_spend", 500}, {"points", 7}}, 7},
		// 2 units × 4
		{"item_bonus", {{"kind", "item_bonus"}, {"sku", "A"}, {"points", 4}}, 8},
	};
	struct FilterRow {
		const char *name;
		const char *filter;
		const char *at;
		int64_t qualifying;
		bool applies;
	};
	// 2026-11-24 is a Tuesday.
	const FilterRow filters[] = {
		{"no filter", "{}", tuesday, 0, true},
		{"from: its first day", R"({"from":"2026-11-24"})", "2026-11-24T00:00:00+01:00", 0, true},
		{"from: the day before", R"({"from":"2026-11-24"})", "2026-11-23T23:59:59+01:00", 0, false},
		// UTC is still the 23rd; the local date is the 24th.
		{"from: local date, not UTC", R"({"from":"2026-11-24"})", "2026-11-24T00:30:00+02:00", 0,
		 true},
		// UTC is already the 24th; the local date is the 23rd.
		{"from: negative offset, local day before", R"({"from":"2026-11-24"})",
		 "2026-11-23T22:00:00-05:00", 0, false},
		{"until: its last day in", R"({"until":"2026-11-25"})", "2026-11-24T23:59:59+01:00", 0,
		 true},
		{"until: the until day is out", R"({"until":"2026-11-25"})", "2026-11-25T00:00:00+01:00", 0,
		 false},
		// UTC 2026-11-25T03:30; local still the 24th.
		{"until: negative offset keeps the local day", R"({"until":"2026-11-25"})",
		 "2026-11-24T22:30:00-05:00", 0, true},
		{"from/until: a one-day window", R"({"from":"2026-11-24","until":"2026-11-25"})", tuesday, 0,
		 true},
		{"days: tue on a Tuesday", R"({"days":["tue"]})", tuesday, 0, true},
		{"days: wed on a Tuesday", R"({"days":["wed"]})", tuesday, 0, false},
		// Local Tuesday 23:30, UTC Wednesday 04:30.
		{"days: -05:00 near midnight is local tue", R"({"days":["tue"]})",
		 "2026-11-24T23:30:00-05:00", 0, true},
		{"days: -05:00 near midnight is not wed", R"({"days":["wed"]})",
		 "2026-11-24T23:30:00-05:00", 0, false},
		// Local Monday 20:00, UTC Tuesday 06:00.
		{"days: -10:00 evening is local mon", R"({"days":["mon"]})", "2026-11-23T20:00:00-10:00", 0,
		 true},
		{"days: -10:00 evening is not tue", R"({"days":["tue"]})", "2026-11-23T20:00:00-10:00", 0,
		 false},
		// Local Wednesday 00:30, UTC Tuesday 23:30.
		{"days: +01:00 after midnight is local wed", R"({"days":["wed"]})",
		 "2026-11-25T00:30:00+01:00", 0, true},
		{"days: +01:00 after midnight is not tue", R"({"days":["tue"]})",
		 "2026-11-25T00:30:00+01:00", 0, false},
		{"days: several, on a Sunday", R"({"days":["mon","sun"]})", "2026-11-29T12:00:00Z", 0, true},
		{"days: several, on a Saturday", R"({"days":["mon","sun"]})", "2026-11-28T12:00:00Z", 0,
		 false},
		{"tiers: member at the tier's threshold", R"({"tiers":["Silver"]})", tuesday, 20000, true},
		{"tiers: member one below it", R"({"tiers":["Silver"]})", tuesday, 19999, false},
		{"tiers: either tier", R"({"tiers":["Member","Silver"]})", tuesday, 0, true},
		{"min_spend: S at it", R"({"min_spend":1000})", tuesday, 0, true},
		{"min_spend: S one below it", R"({"min_spend":1001})", tuesday, 0, false},
		{"all filters hold",
		 R"({"from":"2026-11-24","until":"2026-11-25","days":["tue"],"tiers":["Silver"],"min_spend":1000})",
		 tuesday, 20000, true},
		{"all filters but the tier hold",
		 R"({"from":"2026-11-24","until":"2026-11-25","days":["tue"],"tiers":["Silver"],"min_spend":1000})",
		 tuesday, 19999, false},
	};
	for (const auto &k : kinds) {
		for (const auto &f : filters) {
			INFO(k.name << " / " << f.name);
			Json campaign = k.campaign;
			campaign["id"] = "c";
			campaign.merge_patch(Json::parse(f.filter));
			// Silver at 100% adds no tier part, so the breakdown shows the
			// campaign alone.
			Json patch = {{"tiers", Json::parse(R"([
				{ "name": "Member", "spend": 0, "multiplier_pct": 100 },
				{ "name": "Silver", "spend": 20000, "multiplier_pct": 100 }])")},
				      {"campaigns", Json::array({campaign})}};
			auto p = make_program(patch.dump());
			auto c = accrue(p, make_basket({{"A", "food", 2, 500, 0}}, f.at),
					member(f.qualifying));
			std::string want = "base=10";
			if (f.applies)
				want += ", c=" + std::to_string(k.points);
			CHECK(describe(c.breakdown) == want);
		}
	}
}

TEST_CASE("a campaign's part is clipped to its cap", "[accrual]")
{
	// Basket 2 × A (food) at 500: S = 1000, base 10. Unclipped parts:
	// multiplier 200 → 10, category 300 → 20, spend_bonus 7, item_bonus 2×4 = 8.
	struct CapRow {
		const char *name;
		const char *campaign;
		const char *breakdown;
	};
	const CapRow rows[] = {
		{"multiplier below cap", R"({"kind":"multiplier","multiplier_pct":200,"cap":11})",
		 "base=10, c=10"},
		{"multiplier at cap", R"({"kind":"multiplier","multiplier_pct":200,"cap":10})",
		 "base=10, c=10"},
		{"multiplier over cap", R"({"kind":"multiplier","multiplier_pct":200,"cap":4})",
		 "base=10, c=4"},
		{"multiplier cap 0", R"({"kind":"multiplier","multiplier_pct":200,"cap":0})", "base=10"},
		{"category over cap",
		 R"({"kind":"category_multiplier","category":"food","multiplier_pct":300,"cap":5})",
		 "base=10, c=5"},
		{"spend_bonus over cap", R"({"kind":"spend_bonus","min_spend":0,"points":7,"cap":3})",
		 "base=10, c=3"},
		{"spend_bonus cap 0", R"({"kind":"spend_bonus","min_spend":0,"points":7,"cap":0})",
		 "base=10"},
		{"item_bonus over cap", R"({"kind":"item_bonus","sku":"A","points":4,"cap":6})",
		 "base=10, c=6"},
		{"item_bonus cap 0", R"({"kind":"item_bonus","sku":"A","points":4,"cap":0})", "base=10"},
	};
	for (const auto &r : rows) {
		INFO(r.name);
		Json campaign = Json::parse(r.campaign);
		campaign["id"] = "c";
		Json patch = {{"campaigns", Json::array({campaign})}};
		auto p = make_program(patch.dump());
		auto c = accrue(p, make_basket({{"A", "food", 2, 500, 0}}), member());
		CHECK(describe(c.breakdown) == r.breakdown);
	}
}

TEST_CASE("category_multiplier multiplies S_c only", "[accrual]")
{
	const char *patch = R"({
		"exclude": { "skus": ["C"] },
		"campaigns": [ { "id": "food-x3", "kind": "category_multiplier", "category": "food",
				 "multiplier_pct": 300 } ]
	})";
	const Row rows[] = {
		// S = 1000 + 550 = 1550 → base 15; S_food = 1000 (C is excluded) →
		// floor(1000×200/10000) = 20 (over S it would be 31, with C 34).
		{"other category and excluded food line", patch,
		 {{"A", "food", 1, 1000, 0}, {"B", "drink", 1, 550, 0}, {"C", "food", 1, 700, 0}},
		 tuesday, 0, "base=15, food-x3=20", 1550},
		{"no line of the category", patch, {{"B", "drink", 1, 1550, 0}}, tuesday, 0, "base=15",
		 1550},
		// S_food = 999 → floor(999×200/10000) = 19 (19.98); S = 1549 → 15.
		{"S_c after discount", patch, {{"A", "food", 1, 1000, 1}, {"B", "drink", 1, 550, 0}},
		 tuesday, 0, "base=15, food-x3=19", 1549},
		// S_food = 333 + 668 = 1001 → floor(1001×200/10000) = 20 (20.02); per
		// line it would be 6 + 13 = 19. S = 1002 → 10.
		{"S_c summed over lines before the floor", patch,
		 {{"A", "food", 1, 333, 0}, {"B", "drink", 1, 1, 0}, {"D", "food", 2, 334, 0}}, tuesday, 0,
		 "base=10, food-x3=20", 1002},
	};
	for (const auto &r : rows)
		run(r);
}

TEST_CASE("spend_bonus at one below and at its min_spend", "[accrual]")
{
	const char *patch = R"({
		"exclude": { "categories": ["tobacco"] },
		"campaigns": [ { "id": "big", "kind": "spend_bonus", "min_spend": 3000, "points": 50 } ]
	})";
	const char *zero = R"({
		"campaigns": [ { "id": "any", "kind": "spend_bonus", "min_spend": 0, "points": 5 } ]
	})";
	const Row rows[] = {
		{"S = min_spend − 1", patch, {{"A", "food", 1, 2999, 0}}, tuesday, 0, "base=29", 2999},
		{"S = min_spend", patch, {{"A", "food", 1, 3000, 0}}, tuesday, 0, "base=30, big=50", 3000},
		{"excluded spend does not reach it", patch,
		 {{"A", "food", 1, 2999, 0}, {"CIG", "tobacco", 1, 500, 0}}, tuesday, 0, "base=29", 2999},
		{"discount takes S one below", patch, {{"A", "food", 3, 1000, 1}}, tuesday, 0, "base=29",
		 2999},
		{"several lines reach it", patch, {{"A", "food", 1, 1000, 0}, {"B", "food", 4, 500, 0}},
		 tuesday, 0, "base=30, big=50", 3000},
		{"min_spend 0 and S = 0", zero, {{"CIG", "food", 1, 0, 0}}, tuesday, 0, "base=0, any=5", 0},
	};
	for (const auto &r : rows)
		run(r);
}

TEST_CASE("item_bonus counts eligible units by sku or by category", "[accrual]")
{
	const char *by_sku = R"({
		"exclude": { "categories": ["tobacco"], "skus": ["COF-X"] },
		"campaigns": [ { "id": "stamp", "kind": "item_bonus", "sku": "COF", "points": 5 } ]
	})";
	const char *excluded_sku = R"({
		"exclude": { "skus": ["COF-X"] },
		"campaigns": [ { "id": "stamp", "kind": "item_bonus", "sku": "COF-X", "points": 5 } ]
	})";
	const char *by_category = R"({
		"exclude": { "categories": ["tobacco"], "skus": ["COF-X"] },
		"campaigns": [
			{ "id": "coffee-cat", "kind": "item_bonus", "category": "coffee", "points": 2 },
			{ "id": "tob-cat", "kind": "item_bonus", "category": "tobacco", "points": 9 }
		]
	})";
	const char *both = R"({
		"campaigns": [ { "id": "both", "kind": "item_bonus", "category": "coffee", "sku": "BUN",
				 "points": 1 } ]
	})";
	const Row rows[] = {
		// COF: 3 units × 5 = 15; TEA is another sku. S = 400 → 4.
		{"by sku, counting qty", by_sku, {{"COF", "coffee", 3, 100, 0}, {"TEA", "coffee", 1, 100, 0}},
		 tuesday, 0, "base=4, stamp=15", 400},
		// (3 + 2) × 5 = 25
		{"by sku on two lines", by_sku, {{"COF", "coffee", 3, 100, 0}, {"COF", "coffee", 2, 100, 0}},
		 tuesday, 0, "base=5, stamp=25", 500},
		{"sku not in the basket", by_sku, {{"TEA", "coffee", 1, 100, 0}}, tuesday, 0, "base=1", 100},
		{"excluded sku earns no item bonus", excluded_sku, {{"COF-X", "coffee", 2, 100, 0}}, tuesday,
		 0, "base=0", 0},
		// coffee: 3 + 1 units × 2 = 8; BUN is food. S = 800 → 8.
		{"by category, counting qty", by_category,
		 {{"COF", "coffee", 3, 100, 0}, {"TEA", "coffee", 1, 100, 0}, {"BUN", "food", 4, 100, 0}},
		 tuesday, 0, "base=8, coffee-cat=8", 800},
		// COF-X is excluded by sku: only COF's 1 unit × 2.
		{"by category, eligible lines only", by_category,
		 {{"COF", "coffee", 1, 100, 0}, {"COF-X", "coffee", 5, 100, 0}}, tuesday, 0,
		 "base=1, coffee-cat=2", 100},
		{"excluded category", by_category, {{"CIG", "tobacco", 2, 100, 0}}, tuesday, 0, "base=0", 0},
		// Category wins over sku when both are named: 2 coffee units, not 3 BUN.
		{"category and sku named: category", both,
		 {{"COF", "coffee", 2, 100, 0}, {"BUN", "food", 3, 100, 0}}, tuesday, 0, "base=5, both=2",
		 500},
	};
	for (const auto &r : rows)
		run(r);
}

TEST_CASE("parts of 0 are left out, except base", "[accrual]")
{
	// Every part is 0 at S = 39: base 0.39, tier 39×25/10000, multiplier
	// 39×50/10000, category the same, spend_bonus of 0 points, item bonus on a
	// sku not there.
	const char *patch = R"({
		"tiers": [ { "name": "Silver", "spend": 0, "multiplier_pct": 125 } ],
		"campaigns": [
			{ "id": "m", "kind": "multiplier", "multiplier_pct": 150 },
			{ "id": "cm", "kind": "category_multiplier", "category": "food",
			  "multiplier_pct": 150 },
			{ "id": "sb", "kind": "spend_bonus", "min_spend": 0, "points": 0 },
			{ "id": "ib", "kind": "item_bonus", "sku": "Z", "points": 9 }
		]
	})";
	const Row rows[] = {
		{"all parts 0", patch, {{"A", "food", 1, 39, 0}}, tuesday, 0, "base=0", 39},
		// S = 200: base 2, tier floor(200×25/10000) = 0, m floor(200×50/10000)
		// = 1, cm 1.
		{"only the tier part 0", patch, {{"A", "food", 1, 200, 0}}, tuesday, 0,
		 "base=2, m=1, cm=1", 200},
	};
	for (const auto &r : rows)
		run(r);
}

TEST_CASE("breakdown order: base, tier, campaigns in document order", "[accrual]")
{
	const char *patch = R"({
		"tiers": [ { "name": "Member", "spend": 0, "multiplier_pct": 100 },
			   { "name": "Silver", "spend": 20000, "multiplier_pct": 125 } ],
		"campaigns": [
			{ "id": "zz-first", "kind": "multiplier", "multiplier_pct": 150 },
			{ "id": "mm-sunday", "kind": "multiplier", "multiplier_pct": 200, "days": ["sun"] },
			{ "id": "aa-bonus", "kind": "spend_bonus", "min_spend": 0, "points": 3 },
			{ "id": "zero-bonus", "kind": "spend_bonus", "min_spend": 0, "points": 0 },
			{ "id": "bb-item", "kind": "item_bonus", "sku": "A", "points": 1 }
		]
	})";
	// S = 1000 on a Tuesday, Silver: base 10, tier floor(1000×25/10000) = 2,
	// zz-first floor(1000×50/10000) = 5, mm-sunday not today, aa-bonus 3,
	// zero-bonus 0 (left out), bb-item 1 × 1. earned = 21.
	auto p = make_program(patch);
	auto c = accrue(p, make_basket({{"A", "food", 1, 1000, 0}}), member(20000));
	CHECK(describe(c.breakdown) == "base=10, tier:Silver=2, zz-first=5, aa-bonus=3, bb-item=1");
	CHECK(c.earned == 21);
}

TEST_CASE("each part is floored on its own", "[accrual]")
{
	struct RoundRow {
		const char *name;
		const char *patch;
		int64_t qualifying, spend;
		const char *breakdown;
		int64_t earned;
	};
	const RoundRow rows[] = {
		// S = 250, 1 per 100, Gold 150, multiplier 150:
		// base 2.5 → 2, tier 1.25 → 1, m 1.25 → 1: earned 4; the floor of
		// the exact sum (5) would be 5.
		{"quarters", R"({
			"tiers": [ { "name": "Gold", "spend": 0, "multiplier_pct": 150 } ],
			"campaigns": [ { "id": "m", "kind": "multiplier", "multiplier_pct": 150 } ] })",
		 0, 250, "base=2, tier:Gold=1, m=1", 4},
		// S = 1000, 3 per 7, tier 133, multiplier 250:
		// base 3000/7 = 428.57 → 428; tier 1000×3×33/700 = 141.43 → 141;
		// m 1000×3×150/700 = 642.86 → 642. Sum 1211; floor of exact sum
		// (1212.86) would be 1212.
		{"sevenths", R"({
			"earn": { "points": 3, "per": 7 },
			"tiers": [ { "name": "T", "spend": 0, "multiplier_pct": 133 } ],
			"campaigns": [ { "id": "m", "kind": "multiplier", "multiplier_pct": 250 } ] })",
		 0, 1000, "base=428, tier:T=141, m=642", 1211},
		// Tier 101 at S = 9999: 9999×1×1/10000 = 0.9999 → 0, left out;
		// at S = 10000 exactly 1.
		{"tier 101 one below a point", R"({
			"tiers": [ { "name": "T", "spend": 0, "multiplier_pct": 101 } ] })",
		 0, 9999, "base=99", 99},
		{"tier 101 at a point", R"({
			"tiers": [ { "name": "T", "spend": 0, "multiplier_pct": 101 } ] })",
		 0, 10000, "base=100, tier:T=1", 101},
	};
	for (const auto &r : rows) {
		INFO(r.name);
		auto p = make_program(r.patch);
		auto c = accrue(p, make_basket({{"A", "food", 1, r.spend, 0}}), member(r.qualifying));
		CHECK(describe(c.breakdown) == r.breakdown);
		CHECK(c.earned == r.earned);
	}
}

TEST_CASE("amounts too large to compute exactly are refused as overflow", "[accrual]")
{
	struct OverflowRow {
		const char *name;
		const char *patch;
		std::vector<L> lines;
	};
	const OverflowRow rows[] = {
		// INT64_MAX × 2 / 1
		{"base", R"({ "earn": { "points": 2, "per": 1 } })", {{"A", "food", 1, INT64_MAX, 0}}},
		// 10^17 × 1 × 99900 / 100 ≈ 10^20
		{"tier part", R"({ "earn": { "points": 1, "per": 1 },
			"tiers": [ { "name": "T", "spend": 0, "multiplier_pct": 100000 } ] })",
		 {{"A", "food", 1, 100000000000000000, 0}}},
		{"multiplier part", R"({ "earn": { "points": 1, "per": 1 },
			"campaigns": [ { "id": "m", "kind": "multiplier", "multiplier_pct": 100000 } ] })",
		 {{"A", "food", 1, 100000000000000000, 0}}},
		{"category part", R"({ "earn": { "points": 1, "per": 1 },
			"campaigns": [ { "id": "c", "kind": "category_multiplier", "category": "food",
					 "multiplier_pct": 100000 } ] })",
		 {{"A", "food", 1, 100000000000000000, 0}}},
		// S × points × (pct − 100) past 128 bits: INT64_MAX² × 99900.
		{"past 128 bits", R"({ "earn": { "points": 9223372036854775807, "per": 1 },
			"tiers": [ { "name": "T", "spend": 0, "multiplier_pct": 100000 } ] })",
		 {{"A", "food", 1, INT64_MAX, 0}}},
		// 2^62 × 2 units = 2^63
		{"item bonus", R"({ "campaigns": [ { "id": "i", "kind": "item_bonus", "sku": "A",
			"points": 4611686018427387904 } ] })",
		 {{"A", "food", 2, 1, 0}}},
		// base 1 + INT64_MAX
		{"sum of the parts", R"({ "earn": { "points": 1, "per": 1 },
			"campaigns": [ { "id": "b", "kind": "spend_bonus", "min_spend": 0,
					 "points": 9223372036854775807 } ] })",
		 {{"A", "food", 1, 1, 0}}},
	};
	for (const auto &r : rows) {
		INFO(r.name);
		auto p = make_program(r.patch);
		auto c = loy::checkout(p, make_basket(r.lines), member(), loy::Redemption::none());
		REQUIRE_FALSE(c);
		CHECK(c.status().code() == Code::overflow);
		CHECK(c.status().kind() == loy::Kind::bad_input);
		CHECK_THAT(c.status().message(), Catch::Contains("too large"));
	}

	SECTION("the largest amounts that fit are exact")
	{
		// base = INT64_MAX × 1 / 1; a spend_bonus of 0 adds nothing.
		auto p = make_program(R"({ "earn": { "points": 1, "per": 1 },
			"campaigns": [ { "id": "b", "kind": "spend_bonus", "min_spend": 0, "points": 0 } ] })");
		auto c = accrue(p, make_basket({{"A", "food", 1, INT64_MAX, 0}}), member());
		CHECK(c.earned == INT64_MAX);
		CHECK(describe(c.breakdown) == "base=9223372036854775807");
		// 2^62 − 1 + 2^62 = INT64_MAX exactly: base 2^62 − 1 plus a bonus.
		auto q = make_program(R"({ "earn": { "points": 1, "per": 1 },
			"campaigns": [ { "id": "b", "kind": "spend_bonus", "min_spend": 0,
					 "points": 4611686018427387904 } ] })");
		auto d = accrue(q, make_basket({{"A", "food", 1, 4611686018427387903, 0}}), member());
		CHECK(d.earned == INT64_MAX);
	}
}
