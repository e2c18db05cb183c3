// Refunds (spec/program.md, "Refunds and voids"): sequences of partial and full
// refunds with the points they move, their errors, and the receipt's JSON form.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "core/receipt_json.hpp"
#include "fixture.hpp"

using namespace core_test;

namespace {

using loy::Code;
using loy::Redemption;
using loy::ReturnLine;

// What this file's programs add to the fixture's base_program; each test
// merges its own changes over both (RFC 7386).
const char *const defaults = R"({
	"exclude": { "categories": ["tobacco"] },
	"rewards": [ { "id": "free-coffee", "cost": 300, "sku": "COF" } ]
})";

loy::Program make_program(const std::string &patch = "{}") { return program_from(defaults, patch); }

loy::Member known(int64_t qualifying = 0)
{
	loy::Member m;
	m.known = true;
	m.balance = 1000000;
	m.qualifying_spend = qualifying;
	return m;
}

loy::Member blocked()
{
	loy::Member m = known();
	m.blocked = true;
	return m;
}

// The receipt of an accepted checkout.
loy::Receipt sale(const loy::Program &p, const std::vector<L> &lines, const loy::Member &m,
		  const Redemption &r)
{
	auto b = make_basket(lines);
	return loy::make_receipt(b, checkout_ok(p, b, m, r), m, r);
}

struct Step {
	std::vector<ReturnLine> units; // empty: everything not yet returned
	int64_t reversed;
	int64_t returned;
	std::vector<int64_t> after;    // units returned per line after this step
	bool complete;
};

struct Row {
	const char *name;
	const char *patch;
	std::vector<L> lines;
	loy::Member member;
	Redemption redemption;
	int64_t earned, redeemed;
	std::vector<Step> steps;
};

// Runs a row's refunds in turn on its receipt, and checks that a receipt
// refunded in full has moved back exactly what the checkout moved.
void run(const Row &r)
{
	INFO(r.name);
	auto p = make_program(r.patch);
	auto rc = sale(p, r.lines, r.member, r.redemption);
	CHECK(rc.earned == r.earned);
	CHECK(rc.redeemed == r.redeemed);
	int64_t reversed = 0, returned = 0;
	for (size_t i = 0; i < r.steps.size(); i++) {
		const Step &s = r.steps[i];
		INFO("step " << i + 1);
		auto f = loy::refund(p, rc, s.units);
		INFO(f.status().message());
		REQUIRE(f);
		CHECK(f->points_reversed == s.reversed);
		CHECK(f->points_returned == s.returned);
		CHECK(f->returned == s.after);
		CHECK(f->complete == s.complete);
		reversed += f->points_reversed;
		returned += f->points_returned;
		loy::apply_refund(rc, *f);
		CHECK(rc.reversed_so_far == reversed);
		CHECK(rc.returned_so_far == returned);
	}
	if (!r.steps.empty() && r.steps.back().complete) {
		CHECK(reversed == r.earned);
		CHECK(returned == r.redeemed);
		auto again = loy::refund(p, rc, {});
		REQUIRE_FALSE(again);
		CHECK(again.status().code() == Code::declined_already_refunded);
	}
}

const Redemption coffee = Redemption::of_reward("free-coffee");

} // namespace

TEST_CASE("full refunds give back exactly what the checkout moved", "[refund]")
{
	// S0 = 700 + 1301 = 2001; 500 points off: S = 1501, earned 15.
	const std::vector<L> lines = {{"COF", "coffee", 2, 350, 0}, {"CAKE", "pastry", 1, 1301, 0}};
	const Row rows[] = {
		{"every unit, none named", "{}", lines, known(), Redemption::of_points(500), 15, 500,
		 {{{}, 15, 500, {2, 1}, true}}},
		{"every unit, each named", "{}", lines, known(), Redemption::of_points(500), 15, 500,
		 {{{{"COF", 2}, {"CAKE", 1}}, 15, 500, {2, 1}, true}}},
		// Reward: S = 2001 − 350 = 1651 → 16.
		{"a reward receipt", "{}", lines, known(), coffee, 16, 300, {{{}, 16, 300, {2, 1}, true}}},
		{"no redemption", "{}", lines, known(), Redemption::none(), 20, 0,
		 {{{}, 20, 0, {2, 1}, true}}},
	};
	for (const auto &r : rows)
		run(r);
}

TEST_CASE("partial refunds, step by step", "[refund]")
{
	const char *big = R"({ "campaigns": [
		{ "id": "big", "kind": "spend_bonus", "min_spend": 3000, "points": 50 } ] })";
	const char *per_cent = R"({ "earn": { "points": 1, "per": 1 } })";
	const Row rows[] = {
		// S = 3500: 35 + big 50 = 85. One A back: S = 2500 < 3000, earns 25,
		// so 85 − 25 = 60 go back, the bonus with them.
		{"spend_bonus threshold no longer met", big,
		 {{"A", "food", 2, 1000, 0}, {"B", "food", 1, 1500, 0}}, known(), Redemption::none(), 85, 0,
		 {{{{"A", 1}}, 60, 0, {1, 0}, false}, {{}, 25, 0, {2, 1}, true}}},
		// S = 4500: 45 + 50 = 95. A back: 3500 → 85, 10 back. A back: 2500 →
		// 25, 70 in all so 60 now. The rest: 25.
		{"spend_bonus kept while its threshold holds", big,
		 {{"A", "food", 2, 1000, 0}, {"B", "food", 1, 1500, 0}, {"C", "food", 1, 1000, 0}}, known(),
		 Redemption::none(), 95, 0,
		 {{{{"A", 1}}, 10, 0, {1, 0, 0}, false},
		  {{{"A", 1}}, 60, 0, {2, 0, 0}, false},
		  {{}, 25, 0, {2, 1, 1}, true}}},
		// 1 point per cent. 3 × 1000 − 250 = 2750. Two units stay and keep
		// floor(250 × 2 / 3) = 166: 2000 − 166 = 1834, so 916 back. One stays
		// with floor(250 / 3) = 83: 917, 1833 in all so 917 now. The rest 917.
		{"discount kept floor(discount × remaining / qty)", per_cent, {{"A", "food", 3, 1000, 250}},
		 known(), Redemption::none(), 2750, 0,
		 {{{{"A", 1}}, 916, 0, {1}, false},
		  {{{"A", 1}}, 917, 0, {2}, false},
		  {{}, 917, 0, {3}, true}}},
		// S0 = 3000, 100 points off: S = 2900, earned 29.
		// 1 back: S0' = 2000, floor(100 × 1000 / 3000) = 33 returned; 67 stay:
		// S = 1933 → 19, 10 back.
		// 1 more: S0' = 1000, floor(100 × 2000 / 3000) = 66, 33 now; 34 stay:
		// S = 966 → 9, 20 in all so 10 now.
		// The rest: 100 − 66 = 34 and 29 − 20 = 9.
		{"redeemed points returned in proportion, floored", "{}", {{"A", "food", 3, 1000, 0}},
		 known(), Redemption::of_points(100), 29, 100,
		 {{{{"A", 1}}, 10, 33, {1}, false},
		  {{{"A", 1}}, 10, 33, {2}, false},
		  {{}, 9, 34, {3}, true}}},
		// S0 = 1400 + 601 = 2001 (T excluded); 400 points off spread: A
		// floor(400×1400/2001) = 279 (rem 1721), B 120 (rem 280), the 1 left
		// to A: 1120 + 481 = 1601 → 16.
		// B back: S0' = 1400, floor(400 × 601 / 2001) = 120 returned; 280
		// stay: S = 1120 → 11, 5 back.
		// T back (excluded): S0' unchanged, nothing moves.
		// 1 A back: S0' = 700, floor(400 × 1301 / 2001) = 260, 140 now; 140
		// stay: S = 560 → 5, 11 in all so 6 now.
		// The rest: 400 − 260 = 140, 16 − 11 = 5.
		{"redemption spread again over what stays; excluded lines move nothing", "{}",
		 {{"A", "food", 2, 700, 0}, {"B", "food", 1, 601, 0}, {"T", "tobacco", 1, 999, 0}}, known(),
		 Redemption::of_points(400), 16, 400,
		 {{{{"B", 1}}, 5, 120, {0, 1, 0}, false},
		  {{{"T", 1}}, 0, 0, {0, 1, 1}, false},
		  {{{"A", 1}}, 6, 140, {1, 1, 1}, false},
		  {{}, 5, 140, {2, 1, 1}, true}}},
		// 1 point per cent: S = 200 + 500 + 600 = 1300. Three A: the first
		// line's 2, then 1 of the third: S = 500 + 400 = 900, 400 back. Two
		// A: the third line's last 2: S = 500, 400 back. The rest 500.
		{"sku on two lines: the first line first", per_cent,
		 {{"A", "food", 2, 100, 0}, {"B", "food", 1, 500, 0}, {"A", "food", 3, 200, 0}}, known(),
		 Redemption::none(), 1300, 0,
		 {{{{"A", 3}}, 400, 0, {2, 0, 1}, false},
		  {{{"A", 2}}, 400, 0, {2, 0, 3}, false},
		  {{}, 500, 0, {2, 1, 3}, true}}},
		// Gold 150 kept from the receipt: 2000 → 20 + 10 = 30; 1000 → 10 + 5.
		{"the receipt's tier", R"({ "tiers": [
			{ "name": "Member", "spend": 0, "multiplier_pct": 100 },
			{ "name": "Gold", "spend": 50000, "multiplier_pct": 150 } ] })",
		 {{"A", "food", 2, 1000, 0}}, known(50000), Redemption::none(), 30, 0,
		 {{{{"A", 1}}, 15, 0, {1}, false}, {{}, 15, 0, {2}, true}}},
		{"a blocked card's receipt moves nothing", "{}", {{"A", "food", 2, 1000, 0}}, blocked(),
		 Redemption::none(), 0, 0, {{{{"A", 1}}, 0, 0, {1}, false}, {{}, 0, 0, {2}, true}}},
	};
	for (const auto &r : rows)
		run(r);
}

TEST_CASE("a reward stays while its line keeps a unit", "[refund]")
{
	const char *patch = R"({ "earn": { "points": 1, "per": 1 }, "campaigns": [
		{ "id": "stamp", "kind": "item_bonus", "sku": "COF", "points": 10 } ] })";
	const Row rows[] = {
		// S0 = 1050 + 500 = 1550; the reward takes 350: S = 1200, stamp
		// (3 − 1 given) × 10 = 20: earned 1220.
		// 1 COF back: 2 stay, one still given: S = 700 − 350 + 500 = 850,
		// stamp 10: 860, 360 back; floor(300 × 350 / 1550) = 67 returned.
		// 1 more: 1 stays, given: S = 500, stamp 0: 720 in all, 360 now;
		// floor(300 × 700 / 1550) = 135, 68 now.
		// The last COF (the free one) back: no reward left, S = 500: nothing
		// more reversed; floor(300 × 1050 / 1550) = 203, 68 now.
		// The cake: 500 reversed, 300 − 203 = 97 returned.
		{"reward on the only line of its sku", patch,
		 {{"COF", "coffee", 3, 350, 0}, {"CAKE", "pastry", 1, 500, 0}}, known(), coffee, 1220, 300,
		 {{{{"COF", 1}}, 360, 67, {1, 0}, false},
		  {{{"COF", 1}}, 360, 68, {2, 0}, false},
		  {{{"COF", 1}}, 0, 68, {3, 0}, false},
		  {{}, 500, 97, {3, 1}, true}}},
		// The reward is on the first COF line, which the refund empties
		// first: the free unit goes back. Before: S = 1050 − 350 = 700,
		// stamp (1 − 1 + 2) × 10 = 20: 720. After: 700 + stamp 20 = 720,
		// nothing reversed; floor(300 × 350 / 1050) = 100 returned.
		{"the rewarded line refunded first", patch,
		 {{"COF", "coffee", 1, 350, 0}, {"COF", "coffee", 2, 350, 0}}, known(), coffee, 720, 300,
		 {{{{"COF", 1}}, 0, 100, {1, 0}, false}, {{}, 720, 200, {1, 2}, true}}},
	};
	for (const auto &r : rows)
		run(r);
}

TEST_CASE("refunds that are refused", "[refund]")
{
	// 1 point per cent; A is sold 2 + 3 = 5 times on two lines.
	auto p = make_program(R"({ "earn": { "points": 1, "per": 1 } })");
	const std::vector<L> lines = {
		{"A", "food", 2, 100, 0}, {"B", "food", 1, 500, 0}, {"A", "food", 3, 200, 0}};
	struct ErrRow {
		const char *name;
		std::vector<std::vector<ReturnLine>> before; // refunds accepted first
		std::vector<ReturnLine> units;
		Code code;
		const char *says;
	};
	const ErrRow rows[] = {
		{"unknown sku", {}, {{"Z-404", 1}}, Code::bad_refund, "Z-404"},
		{"qty 0", {}, {{"A", 0}}, Code::bad_refund, "positive"},
		{"negative qty", {}, {{"B", -1}}, Code::bad_refund, "-1"},
		{"more than sold, sku on two lines", {}, {{"A", 6}}, Code::bad_refund, "sold 5"},
		{"more than sold, one line", {}, {{"B", 2}}, Code::bad_refund, "sold 1"},
		{"a bad entry after a good one", {}, {{"B", 1}, {"Z-404", 1}}, Code::bad_refund, "Z-404"},
		{"units already returned", {{{"A", 4}}}, {{"A", 2}}, Code::declined_already_refunded,
		 "only 1"},
		{"the same units named twice", {}, {{"A", 3}, {"A", 3}},
		 Code::declined_already_refunded, "only 2"},
		{"more than sold after a refund is still more than sold", {{{"A", 4}}}, {{"A", 6}},
		 Code::bad_refund, "sold 5"},
		{"fully refunded, none named", {std::vector<ReturnLine>{}}, {},
		 Code::declined_already_refunded, "R-1"},
		{"fully refunded, units named", {std::vector<ReturnLine>{}}, {{"B", 1}},
		 Code::declined_already_refunded, "R-1"},
		{"fully refunded unit by unit", {{{"A", 5}, {"B", 1}}}, {},
		 Code::declined_already_refunded, "R-1"},
	};
	for (const auto &r : rows) {
		INFO(r.name);
		auto rc = sale(p, lines, known(), Redemption::none());
		for (const auto &units : r.before) {
			auto f = loy::refund(p, rc, units);
			INFO(f.status().message());
			REQUIRE(f);
			loy::apply_refund(rc, *f);
		}
		auto f = loy::refund(p, rc, r.units);
		REQUIRE_FALSE(f);
		CHECK(f.status().code() == r.code);
		CHECK(f.status().kind() == loy::kind_of(r.code));
		CHECK_THAT(f.status().message(), Catch::Contains(r.says));
	}

	SECTION("the boundary rows that pass")
	{
		auto rc = sale(p, lines, known(), Redemption::none());
		// Exactly what was sold of A: 1300 − 500 = 800 back.
		auto f = loy::refund(p, rc, {{"A", 5}});
		REQUIRE(f);
		CHECK(f->points_reversed == 800);
		CHECK(f->returned == std::vector<int64_t>{2, 0, 3});
		// After 4 of A, the last one.
		auto g = loy::refund(p, rc, {{"A", 4}});
		REQUIRE(g);
		loy::apply_refund(rc, *g);
		auto h = loy::refund(p, rc, {{"A", 1}});
		REQUIRE(h);
		CHECK(h->returned == std::vector<int64_t>{2, 0, 3});
	}
}

namespace {

void check_same(const loy::Receipt &a, const loy::Receipt &b)
{
	CHECK(loy::basket_canonical_json(a.basket) == loy::basket_canonical_json(b.basket));
	CHECK(a.basket.at.utc_s == b.basket.at.utc_s);
	CHECK(a.basket.at.offset_s == b.basket.at.offset_s);
	CHECK(a.tier == b.tier);
	CHECK(a.blocked == b.blocked);
	CHECK(a.redemption.kind == b.redemption.kind);
	CHECK(a.redemption.points == b.redemption.points);
	CHECK(a.redemption.reward == b.redemption.reward);
	CHECK(a.earned == b.earned);
	CHECK(a.redeemed == b.redeemed);
	CHECK(a.returned == b.returned);
	CHECK(a.reversed_so_far == b.reversed_so_far);
	CHECK(a.returned_so_far == b.returned_so_far);
}

// The receipt of the spread row above after its first refund: earned 16,
// redeemed 400, returned [0, 1, 0], 5 reversed and 120 returned so far.
loy::Receipt spread_receipt(const loy::Program &p)
{
	auto rc = sale(p, {{"A", "food", 2, 700, 0}, {"B", "food", 1, 601, 0}, {"T", "tobacco", 1, 999, 0}},
		       known(), Redemption::of_points(400));
	auto f = loy::refund(p, rc, {{"B", 1}});
	REQUIRE(f);
	loy::apply_refund(rc, *f);
	REQUIRE(rc.reversed_so_far == 5);
	REQUIRE(rc.returned_so_far == 120);
	return rc;
}

} // namespace

TEST_CASE("a receipt survives its JSON form", "[refund]")
{
	auto p = make_program(R"({ "tiers": [
		{ "name": "Member", "spend": 0, "multiplier_pct": 100 },
		{ "name": "Gold", "spend": 50000, "multiplier_pct": 150 } ] })");
	struct TripRow {
		const char *name;
		loy::Receipt receipt;
	};
	const TripRow rows[] = {
		{"points, after a partial refund", spread_receipt(p)},
		{"reward, Gold",
		 sale(p, {{"COF", "coffee", 3, 350, 0}, {"CAKE", "pastry", 1, 500, 10}}, known(50000),
		      coffee)},
		{"blocked, no redemption", sale(p, {{"A", nullptr, 1, 1000, 0}}, blocked(), Redemption::none())},
	};
	for (const auto &r : rows) {
		INFO(r.name);
		std::string text = loy::receipt_to_json(r.receipt);
		auto back = loy::receipt_from_json(text);
		INFO(back.status().message());
		REQUIRE(back);
		check_same(r.receipt, *back);
		CHECK(loy::receipt_to_json(*back) == text);
		// And it refunds the same.
		auto a = loy::refund(p, r.receipt, {});
		auto b = loy::refund(p, *back, {});
		REQUIRE(a);
		REQUIRE(b);
		CHECK(a->points_reversed == b->points_reversed);
		CHECK(a->points_returned == b->points_returned);
		CHECK(a->returned == b->returned);
	}
}

TEST_CASE("receipt_from_json refuses documents that cannot be a receipt", "[refund]")
{
	auto p = make_program();
	const std::string good = loy::receipt_to_json(spread_receipt(p));
	struct BadRow {
		const char *name;
		const char *patch; // merged over the good document; null: `text` as is
		const char *text;
		bool ok;
		const char *says;
	};
	const BadRow rows[] = {
		{"the good document", "{}", nullptr, true, ""},
		{"reversed_so_far = earned", R"({"reversed_so_far":16})", nullptr, true, ""},
		{"returned_so_far = redeemed", R"({"returned_so_far":400})", nullptr, true, ""},
		{"every unit returned", R"({"returned":[2,1,1]})", nullptr, true, ""},
		{"not JSON", nullptr, "{\"basket\":", false, "not valid JSON"},
		{"not an object", nullptr, "[]", false, "must be an object"},
		{"returned longer than the lines", R"({"returned":[0,1,0,0]})", nullptr, false,
		 "receipt.returned has 4 entries for 3"},
		{"returned shorter than the lines", R"({"returned":[0,1]})", nullptr, false,
		 "receipt.returned has 2 entries for 3"},
		{"returned above its line's qty", R"({"returned":[3,1,0]})", nullptr, false,
		 "receipt.returned[0]"},
		{"returned negative", R"({"returned":[0,-1,0]})", nullptr, false, "receipt.returned[1]"},
		{"returned missing", R"({"returned":null})", nullptr, false, "receipt.returned"},
		{"reversed_so_far above earned", R"({"reversed_so_far":17})", nullptr, false, "receipt"},
		{"returned_so_far above redeemed", R"({"returned_so_far":401})", nullptr, false, "receipt"},
		{"earned negative", R"({"earned":-1})", nullptr, false, "receipt.earned"},
		{"earned a string", R"({"earned":"16"})", nullptr, false, "receipt.earned"},
		{"redeemed missing", R"({"redeemed":null})", nullptr, false, "receipt.redeemed"},
		{"basket missing", R"({"basket":null})", nullptr, false, "receipt.basket"},
		{"basket line with qty 0",
		 R"({"basket":{"lines":[{"sku":"A","qty":0,"unit_price":1}]}})", nullptr, false, "qty"},
		{"tier missing", R"({"tier":null})", nullptr, false, "receipt.tier"},
		{"blocked not true or false", R"({"blocked":"no"})", nullptr, false, "receipt.blocked"},
		{"redemption of 0 points", R"({"redemption":{"points":0}})", nullptr, false,
		 "receipt.redemption.points"},
	};
	for (const auto &r : rows) {
		INFO(r.name);
		std::string text;
		if (r.patch)
			text = merge_patch(good, r.patch);
		else
			text = r.text;
		auto back = loy::receipt_from_json(text);
		if (r.ok) {
			INFO(back.status().message());
			CHECK(back);
			continue;
		}
		REQUIRE_FALSE(back);
		CHECK(back.status().code() == Code::bad_json);
		CHECK_THAT(back.status().message(), Catch::Contains(r.says));
	}
}
