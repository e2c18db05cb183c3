// Program specification 2 at the till (spec/program.md, "Member price" and
// "Segments"): the member price off each eligible line, floored per line,
// before the redemption and every part; segment filters on campaigns; and
// refunds that recompute both as the checkout had them.
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

// Spec 2, three tiers: Gold takes 10 % off, Silver 5 %, Member nothing.
const char *const tiers = R"({ "spec": 2, "tiers": [
	{ "name": "Member", "spend": 0, "multiplier_pct": 100 },
	{ "name": "Silver", "spend": 20000, "multiplier_pct": 100, "discount_pct": 5 },
	{ "name": "Gold", "spend": 50000, "multiplier_pct": 100, "discount_pct": 10 } ],
	"exclude": { "categories": ["tobacco"] } })";

loy::Program make_program(const std::string &patch) { return program_from(tiers, patch); }

loy::Member member(int64_t qualifying_spend, std::vector<std::string> segments = {})
{
	loy::Member m;
	m.known = true;
	m.balance = 100000;
	m.qualifying_spend = qualifying_spend;
	m.segments = std::move(segments);
	return m;
}

constexpr int64_t gold = 50000, silver = 20000;

} // namespace

TEST_CASE("the member price comes off each eligible line, floored per line", "[member_price]")
{
	struct Row {
		const char *name;
		std::vector<L> lines;
		int64_t qualifying;
		bool blocked;
		int64_t member_discount, eligible;
		const char *breakdown;
	};
	const Row rows[] = {
		{"Gold: 10 % of 2000", {{"A", "food", 2, 1000, 0}}, gold, false, 200, 1800, "base=18"},
		// 999 × 5 % = 49.95 and 1001 × 5 % = 50.05: 49 + 50, not 100.
		{"Silver: each line floored", {{"A", "food", 1, 999, 0}, {"B", "food", 1, 1001, 0}}, silver, false, 99,
		 1901, "base=19"},
		{"below Silver: no member price", {{"A", "food", 2, 1000, 0}}, silver - 1, false, 0, 2000, "base=20"},
		{"an excluded line keeps its price", {{"A", "food", 1, 1000, 0}, {"C", "tobacco", 1, 1000, 0}}, gold,
		 false, 100, 900, "base=9"},
		// The line's own discount first: net 1000 − 1 = 999, less floor(99.9).
		{"after the line's discount", {{"A", "food", 1, 1000, 1}}, gold, false, 99, 900, "base=9"},
		{"a blocked card: none, and no points", {{"A", "food", 2, 1000, 0}}, gold, true, 0, 2000, "base=0"},
		{"a line of 9 at 10 %: 0 off", {{"A", "food", 1, 9, 0}}, gold, false, 0, 9, "base=0"},
	};
	auto p = make_program("{}");
	for (const Row &r : rows) {
		INFO(r.name);
		auto m = member(r.qualifying);
		m.blocked = r.blocked;
		auto c = accepted(p, make_basket(r.lines), m, Redemption::none());
		CHECK(c.member_discount == r.member_discount);
		CHECK(c.eligible == r.eligible);
		CHECK(c.eligible_before == r.eligible);
		CHECK(describe(c.breakdown) == r.breakdown);
	}
}

TEST_CASE("a 100 % member price leaves nothing to earn on", "[member_price]")
{
	auto p = make_program(R"({ "tiers": [
		{ "name": "Member", "spend": 0, "multiplier_pct": 100, "discount_pct": 100 } ] })");
	auto c = accepted(p, make_basket({{"A", "food", 3, 333, 0}}), member(0), Redemption::none());
	CHECK(c.member_discount == 999);
	CHECK(c.eligible == 0);
	CHECK(c.earned == 0);
	// An unknown card is in the lowest tier: it pays the member price too.
	auto unknown = loy::checkout(p, make_basket({{"A", "food", 1, 500, 0}}), loy::Member{}, Redemption::none());
	REQUIRE(unknown);
	CHECK(unknown->member_discount == 500);
}

TEST_CASE("the redemption's limits count on the member price", "[member_price]")
{
	// Gold: 2000 − 200 = 1800 = S0; max_pct 50 lets 900 points through, not 901.
	auto p = make_program(R"({ "redeem": { "point_value": 1, "min_points": 0, "max_pct": 50,
		"offline_daily_cap": 1000000 } })");
	const auto basket = make_basket({{"A", "food", 2, 1000, 0}});
	auto ok = accepted(p, basket, member(gold), Redemption::of_points(900));
	CHECK(ok.eligible_before == 1800);
	CHECK(ok.discount == 900);
	CHECK(ok.eligible == 900);
	CHECK(describe(ok.breakdown) == "base=9");
	auto over = loy::checkout(p, basket, member(gold), Redemption::of_points(901));
	REQUIRE_FALSE(over);
	CHECK(over.status().code() == Code::declined_max_pct);
}

TEST_CASE("a refund recomputes the member price for the units that stay", "[member_price]")
{
	// Gold, spend_bonus 50 from 2000: 3 × 800 = 2400 − 240 = 2160 earns
	// base 21 + 50. One unit back: 1600 − 160 = 1440 earns 14, no bonus.
	auto p = make_program(R"({ "campaigns": [
		{ "id": "big", "kind": "spend_bonus", "min_spend": 2000, "points": 50 } ] })");
	auto basket = make_basket({{"A", "food", 3, 800, 0}});
	const auto m = member(gold);
	auto c = accepted(p, basket, m, Redemption::none());
	CHECK(c.member_discount == 240);
	CHECK(c.earned == 71);
	auto rc = loy::make_receipt(basket, c, m, Redemption::none());
	auto f = loy::refund(p, rc, {{"A", 1}});
	REQUIRE(f);
	CHECK(f->points_reversed == 71 - 14);
	CHECK(f->eligible_after == 1440);
	// The tier is the receipt's, whatever the member's is now: the same
	// recompute from its JSON form.
	auto back = loy::receipt_from_json(loy::receipt_to_json(rc));
	REQUIRE(back);
	auto g = loy::refund(p, *back, {{"A", 1}});
	REQUIRE(g);
	CHECK(g->points_reversed == f->points_reversed);
}

TEST_CASE("a segment filter: a campaign for members of its segments only", "[segments]")
{
	auto p = make_program(R"({ "campaigns": [
		{ "id": "welcome-back", "kind": "spend_bonus", "min_spend": 1000, "points": 100,
		  "segments": ["lapsed", "new"] },
		{ "id": "nobody", "kind": "spend_bonus", "min_spend": 0, "points": 7, "segments": [] },
		{ "id": "everyone", "kind": "spend_bonus", "min_spend": 0, "points": 1 } ] })");
	struct Row {
		const char *name;
		std::vector<std::string> segments;
		const char *breakdown;
	};
	const Row rows[] = {
		{"in one of them", {"lapsed"}, "base=10, welcome-back=100, everyone=1"},
		{"in the other, among more", {"coffee", "new"}, "base=10, welcome-back=100, everyone=1"},
		{"in none of them", {"coffee"}, "base=10, everyone=1"},
		{"in no segment", {}, "base=10, everyone=1"},
		{"a name matches exactly", {"Lapsed", "lapsed "}, "base=10, everyone=1"},
	};
	const auto basket = make_basket({{"A", "food", 1, 1000, 0}});
	for (const Row &r : rows) {
		INFO(r.name);
		auto c = accepted(p, basket, member(0, r.segments), Redemption::none());
		CHECK(describe(c.breakdown) == r.breakdown);
	}
	// An unknown card is in no segment.
	auto unknown = loy::checkout(p, basket, loy::Member{}, Redemption::none());
	REQUIRE(unknown);
	CHECK(describe(unknown->breakdown) == "base=10, everyone=1");
}

TEST_CASE("a refund recomputes a targeted campaign with the segments of the checkout", "[segments]")
{
	// 3 × 500 earns base 15 + 100 (min_spend 1000); one unit back leaves
	// 1000, still above: only base goes down. Without the receipt's
	// segments the bonus would be taken back too.
	auto p = make_program(R"({ "campaigns": [
		{ "id": "vip-bonus", "kind": "spend_bonus", "min_spend": 1000, "points": 100, "segments": ["vip"] } ] })");
	auto basket = make_basket({{"A", "food", 3, 500, 0}});
	const auto m = member(0, {"vip", "coffee"});
	auto c = accepted(p, basket, m, Redemption::none());
	CHECK(c.earned == 115);
	CHECK(c.segments == std::vector<std::string>{"vip"}); // only those the program names
	auto rc = loy::make_receipt(basket, c, m, Redemption::none());
	auto back = loy::receipt_from_json(loy::receipt_to_json(rc));
	REQUIRE(back);
	CHECK(back->segments == std::vector<std::string>{"vip"});
	auto f = loy::refund(p, *back, {{"A", 1}});
	REQUIRE(f);
	CHECK(f->points_reversed == 5);
	auto g = loy::refund(p, *back, {{"A", 2}});
	REQUIRE(g);
	CHECK(g->points_reversed == 15 + 100 - 5);
}
