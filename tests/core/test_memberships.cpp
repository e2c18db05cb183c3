// Program specification 2, "Paid membership", in the engine: a line of a
// membership's sku buys days (and counts for nothing else), the run starts on
// the receipt's day or at the end of one still running, its part
// `membership:<id>` while it runs (`until` exclusive), the blocked card's
// decline, and refunds that shorten it and recompute the receipt's points.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "base/timeutil.hpp"
#include "core/receipt_json.hpp"
#include "fixture.hpp"

using namespace core_test;

namespace {

using loy::Code;
using loy::Days;
using loy::MembershipRun;
using loy::Redemption;

// Plus doubles the points for 30 days a unit; Max triples them for 7.
const char *const plans = R"({ "spec": 2,
	"memberships": [
		{ "id": "plus", "sku": "MEM-PLUS", "days": 30, "multiplier_pct": 200 },
		{ "id": "max", "sku": "MEM-MAX", "days": 7, "multiplier_pct": 300 } ],
	"stamp_cards": [ { "id": "any", "category": "member", "stamps": 5, "reward_sku": "COF" } ] })";

loy::Program program() { return program_from(plans, "{}"); }

const Days tue = loy::days_from_civil(2026, 11, 24); // the fixture's basket day

loy::Member member(std::map<std::string, MembershipRun> runs = {})
{
	loy::Member m;
	m.known = true;
	m.balance = 1000;
	m.memberships = std::move(runs);
	return m;
}

const L coffee{"COF", "coffee", 2, 500, 0};        // 10.00: 10 base points
const L plus_unit{"MEM-PLUS", "member", 1, 4900, 0};
const L two_plus{"MEM-PLUS", "member", 2, 4900, 0};
const L max_unit{"MEM-MAX", "member", 1, 1500, 0};

std::string runs_text(const std::map<std::string, MembershipRun> &runs)
{
	std::string s;
	for (const auto &[id, r] : runs)
		s += (s.empty() ? "" : ", ") + id + "[" + std::to_string(r.from - tue) + "," + std::to_string(r.until - tue) +
		     ")";
	return s;
}

} // namespace

TEST_CASE("memberships: bought, extended, and earning while they run", "[memberships]")
{
	const loy::Program p = program();
	struct Row {
		const char *name;
		std::vector<L> lines;
		loy::Member m;
		const char *breakdown;
		const char *runs; // days relative to the basket's
	};
	loy::Member unknown;
	unknown.memberships = {{"plus", MembershipRun{tue - 5, tue + 5}}}; // not known: ignored
	const Row rows[] = {
		{"no membership", {coffee}, member(), "base=10", ""},
		{"bought with the basket: counts for its other lines at once", {coffee, plus_unit}, member(),
		 "base=10, membership:plus=10", "plus[0,30)"},
		{"two units buy twice the days", {two_plus}, member(), "base=0", "plus[0,60)"},
		{"running: extended from its end", {plus_unit}, member({{"plus", {tue - 10, tue + 3}}}), "base=0",
		 "plus[-10,33)"},
		{"ended yesterday: a new run from today", {coffee, plus_unit}, member({{"plus", {tue - 31, tue}}}),
		 "base=10, membership:plus=10", "plus[0,30)"},
		{"its last day: still running", {coffee}, member({{"plus", {tue - 29, tue + 1}}}),
		 "base=10, membership:plus=10", "plus[-29,1)"},
		{"until is exclusive: over on that day", {coffee}, member({{"plus", {tue - 30, tue}}}), "base=10",
		 "plus[-30,0)"},
		{"not started yet (bought ahead): not running", {coffee}, member({{"plus", {tue + 1, tue + 31}}}),
		 "base=10", "plus[1,31)"},
		{"bought before a run that starts later: from today, counting, the later days after",
		 {coffee, plus_unit}, member({{"plus", {tue + 10, tue + 40}}}), "base=10, membership:plus=10",
		 "plus[0,60)"},
		{"two memberships: one part each, in program order", {coffee, max_unit},
		 member({{"plus", {tue - 1, tue + 9}}}), "base=10, membership:plus=10, membership:max=20",
		 "max[0,7), plus[-1,9)"},
		{"an unknown card's memberships are not known", {coffee}, unknown, "base=10", ""},
	};
	for (const Row &r : rows) {
		INFO(r.name);
		auto c = accepted(p, make_basket(r.lines), r.m, Redemption::none());
		CHECK(describe(c.breakdown) == r.breakdown);
		CHECK(runs_text(c.memberships) == r.runs);
	}
}

TEST_CASE("a membership's line earns and counts for nothing", "[memberships]")
{
	const loy::Program p = program_from(plans, R"({ "tiers": [ { "name": "Member", "spend": 0,
		"multiplier_pct": 100, "discount_pct": 10 } ],
		"campaigns": [ { "id": "cat", "kind": "item_bonus", "category": "member", "points": 7 } ] })");
	auto c = accepted(p, make_basket({plus_unit}), member(), Redemption::none());
	CHECK(c.eligible == 0);
	CHECK(c.member_discount == 0);
	CHECK(describe(c.breakdown) == "base=0");
	CHECK(c.stamps.empty()); // the stamp card counts the line's category
	REQUIRE(c.memberships_bought.size() == 1);
	CHECK(c.memberships_bought[0].id == "plus");
	CHECK(c.memberships_bought[0].days == 30);
	// Nor can points pay for it: there is no eligible spend to take them off.
	auto paid = loy::checkout(p, make_basket({plus_unit}), member(), Redemption::of_points(100));
	REQUIRE_FALSE(paid);
	CHECK(paid.status().code() == Code::declined_max_pct);
}

TEST_CASE("a blocked card cannot buy a membership", "[memberships]")
{
	const loy::Program p = program();
	loy::Member blocked = member();
	blocked.blocked = true;
	auto c = loy::checkout(p, make_basket({coffee, plus_unit}), blocked, Redemption::none());
	REQUIRE_FALSE(c);
	CHECK(c.status().code() == Code::declined_blocked);
	CHECK(c.status().message().find("plus") != std::string::npos);
	// Without the membership line the sale goes through, earning nothing.
	CHECK(accepted(p, make_basket({coffee}), blocked, Redemption::none()).earned == 0);
}

TEST_CASE("a membership bought for longer than a century ahead is refused", "[memberships]")
{
	const loy::Program p = program();
	const L many{"MEM-PLUS", "member", 1220, 4900, 0}; // 36,600 days: the bound exactly
	CHECK(accepted(p, make_basket({many}), member(), Redemption::none()).memberships.at("plus").until ==
	      tue + 36600);
	auto over = loy::checkout(p, make_basket({many}), member({{"plus", {tue - 1, tue + 1}}}), Redemption::none());
	REQUIRE_FALSE(over);
	CHECK(over.status().code() == Code::bad_basket);
}

TEST_CASE("refunds shorten the membership and recompute the receipt", "[memberships]")
{
	const loy::Program p = program();
	struct Step {
		std::vector<loy::ReturnLine> units;
		int64_t reversed;
		const char *days; // "plus-30"
	};
	struct Row {
		const char *name;
		std::vector<L> lines;
		loy::Member m;
		std::vector<Step> steps;
	};
	const Row rows[] = {
		{"the membership returned: its part goes with it", {coffee, plus_unit}, member(),
		 {{{{"MEM-PLUS", 1}}, 10, "plus-30"}}},
		{"one of two units back: still bought, the part stays", {coffee, two_plus}, member(),
		 {{{{"MEM-PLUS", 1}}, 0, "plus-30"}, {{{"MEM-PLUS", 1}}, 10, "plus-30"}}},
		{"ran before the receipt: the part stays without the unit", {coffee, plus_unit},
		 member({{"plus", {tue - 3, tue + 2}}}), {{{{"MEM-PLUS", 1}}, 0, "plus-30"}}},
		{"coffee back: its points and the part go, the days stay", {coffee, plus_unit}, member(),
		 {{{{"COF", 2}}, 20, ""}}},
		{"everything back at once", {coffee, plus_unit, max_unit}, member(), {{{}, 40, "plus-30, max-7"}}},
	};
	for (const Row &r : rows) {
		INFO(r.name);
		const loy::Basket b = make_basket(r.lines);
		auto c = accepted(p, b, r.m, Redemption::none());
		loy::Receipt rc = loy::make_receipt(b, c, r.m, Redemption::none());
		// The receipt keeps what ran before it, read back from its JSON.
		auto back = loy::receipt_from_json(loy::receipt_to_json(rc));
		REQUIRE(back);
		CHECK(back->memberships_before == c.memberships_before);
		rc = std::move(back).value();
		for (const Step &s : r.steps) {
			auto f = loy::refund(p, rc, s.units);
			INFO(f.status().message());
			REQUIRE(f);
			CHECK(f->points_reversed == s.reversed);
			std::string days;
			for (const auto &d : f->memberships)
				days += (days.empty() ? "" : ", ") + d.id + "-" + std::to_string(d.days);
			CHECK(days == s.days);
			loy::apply_refund(rc, *f);
		}
	}
}

TEST_CASE("membership_bought: from the day, or from the end of a run still going", "[memberships]")
{
	auto r = loy::membership_bought(std::nullopt, 100, 30);
	REQUIRE(r);
	CHECK((r->from == 100 && r->until == 130));
	r = loy::membership_bought(MembershipRun{90, 101}, 100, 30);
	REQUIRE(r);
	CHECK((r->from == 90 && r->until == 131));
	r = loy::membership_bought(MembershipRun{90, 100}, 100, 30); // ended: until is exclusive
	REQUIRE(r);
	CHECK((r->from == 100 && r->until == 130));
	r = loy::membership_bought(MembershipRun{110, 120}, 100, 30); // starts later: its 10 days follow
	REQUIRE(r);
	CHECK((r->from == 100 && r->until == 140));
	CHECK_FALSE(loy::membership_bought(MembershipRun{0, 36600 + 100}, 100, 1));
	CHECK_FALSE(loy::membership_bought(std::nullopt, 100, -1));
}
