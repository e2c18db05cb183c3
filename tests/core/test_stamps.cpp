// Program specification 2, "Stamp cards", in the engine: stamps per eligible
// unit sold (of a sku, or of a category), the card's reward at its
// `stamps`-th stamp, its declines, and refunds under the recompute rule
// (sold units back first, the used stamps back with the reward's line).
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

// A coffee card of 5 stamps (its reward a coffee), a pastry card counting
// the category, and tobacco excluded.
const char *const cards = R"({ "spec": 2,
	"exclude": { "categories": ["tobacco"] },
	"stamp_cards": [
		{ "id": "coffee-card", "sku": "COF", "stamps": 5, "reward_sku": "COF", "expiry_days": 180 },
		{ "id": "pastry-card", "category": "pastry", "stamps": 3, "reward_sku": "CRS" },
		{ "id": "smoke-card", "sku": "TAB", "stamps": 1, "reward_sku": "TAB" } ],
	"rewards": [ { "id": "free-coffee", "cost": 10, "sku": "COF" } ] })";

loy::Program program() { return program_from(cards, "{}"); }

loy::Member member(int64_t coffee, int64_t pastry = 0)
{
	loy::Member m;
	m.known = true;
	m.balance = 1000;
	m.stamps = {{"coffee-card", coffee}, {"pastry-card", pastry}};
	return m;
}

const L coffee{"COF", "coffee", 2, 300, 0};
const L croissant{"CRS", "pastry", 3, 200, 0};
const L muffin{"MUF", "pastry", 1, 250, 0};
const L tobacco{"TAB", "tobacco", 4, 900, 0};

// The stamp changes as text: "coffee-card+2-0=7, pastry-card+4-0=4".
std::string stamps_text(const std::vector<loy::StampChange> &v)
{
	std::string s;
	for (const auto &c : v) {
		if (!s.empty())
			s += ", ";
		s += c.id + "+" + std::to_string(c.earned) + "-" + std::to_string(c.used);
		if (c.balance)
			s += "=" + std::to_string(*c.balance);
	}
	return s;
}

} // namespace

TEST_CASE("stamps: one per eligible unit sold of the card's sku or category", "[stamps]")
{
	const loy::Program p = program();
	struct Row {
		const char *name;
		std::vector<L> lines;
		loy::Member m;
		Redemption r;
		const char *stamps;
	};
	loy::Member unknown;
	loy::Member blocked = member(2);
	blocked.blocked = true;
	const Row rows[] = {
		{"coffee and pastries", {coffee, croissant, muffin}, member(2, 1), Redemption::none(),
		 "coffee-card+2-0=4, pastry-card+4-0=5"},
		{"nothing of a card: not touched", {muffin}, member(2), Redemption::none(), "pastry-card+1-0=1"},
		{"an excluded category earns no stamp", {tobacco}, member(0), Redemption::none(), ""},
		{"a unit given by a points reward earns none", {coffee}, member(0), Redemption::of_reward("free-coffee"),
		 "coffee-card+1-0=1"},
		{"the 5th stamp held: the card's reward, its unit given", {coffee}, member(5),
		 Redemption::of_stamp_card("coffee-card"), "coffee-card+1-5=1"},
		{"more than enough: the rest stays", {coffee}, member(12), Redemption::of_stamp_card("coffee-card"),
		 "coffee-card+1-5=8"},
		{"an unknown card earns stamps, balance unknown", {coffee}, unknown, Redemption::none(), "coffee-card+2-0"},
		{"a blocked card gets none", {coffee, croissant}, blocked, Redemption::none(), ""},
		{"a debt is paid back by the next stamps", {coffee}, member(-3), Redemption::none(), "coffee-card+2-0=-1"},
	};
	for (const Row &r : rows) {
		INFO(r.name);
		auto c = checkout_ok(p, make_basket(r.lines), r.m, r.r);
		CHECK(stamps_text(c.stamps) == r.stamps);
	}
}

TEST_CASE("a stamp reward takes one unit price off, like a reward, and earns on the rest", "[stamps]")
{
	const loy::Program p = program();
	// 2 coffees at 3.00: one is given; 3.00 eligible earns 3 points.
	auto c = checkout_ok(p, make_basket({coffee}), member(5), Redemption::of_stamp_card("coffee-card"));
	CHECK(c.discount == 300);
	CHECK(c.redeemed == 0);
	CHECK(c.eligible == 300);
	CHECK(describe(c.breakdown) == "base=3");
	// The points balance is not touched: a member in debt takes it too.
	loy::Member broke = member(5);
	broke.balance = -50;
	CHECK(checkout_ok(p, make_basket({coffee}), broke, Redemption::of_stamp_card("coffee-card")).discount == 300);
}

TEST_CASE("a stamp reward's declines", "[stamps]")
{
	const loy::Program p = program();
	struct Row {
		const char *name;
		std::vector<L> lines;
		loy::Member m;
		const char *card;
		Code code;
	};
	loy::Member unknown;
	loy::Member blocked = member(9);
	blocked.blocked = true;
	loy::Member taken = member(9);
	taken.stamp_reward_today = true;
	const Row rows[] = {
		{"one stamp short of the 5th", {coffee}, member(4), "coffee-card", Code::declined_insufficient_stamps},
		{"below zero", {coffee}, member(-2), "coffee-card", Code::declined_insufficient_stamps},
		{"no stamps of that card at all", {croissant}, loy::Member{true, false, 0, 0, 0, {}, {}, false, {}},
		 "pastry-card", Code::declined_insufficient_stamps},
		{"the reward's sku not in the basket", {croissant}, member(9), "coffee-card",
		 Code::declined_reward_not_in_basket},
		{"blocked", {coffee}, blocked, "coffee-card", Code::declined_blocked},
		{"stamps not known here", {coffee}, unknown, "coffee-card", Code::declined_balance_unknown},
		{"a stamp reward taken here today", {coffee}, taken, "coffee-card", Code::declined_stamp_daily_limit},
		{"a card the program lacks: bad input first", {coffee}, blocked, "tea-card", Code::unknown_stamp_card},
	};
	for (const Row &r : rows) {
		INFO(r.name);
		auto c = loy::checkout(p, make_basket(r.lines), r.m, Redemption::of_stamp_card(r.card));
		REQUIRE_FALSE(c);
		CHECK(c.status().code() == r.code);
	}
	check_refused(loy::checkout(p, make_basket({coffee}), member(4), Redemption::of_stamp_card("coffee-card"))
			      .status(),
		      Code::declined_insufficient_stamps, "stamp card \"coffee-card\": 5 stamps needed, 4 available",
		      nullptr);
}

TEST_CASE("refunds take back the stamps of units sold, and give the used stamps back with the line",
	  "[stamps]")
{
	const loy::Program p = program();
	const L three_coffees{"COF", "coffee", 3, 300, 0};
	struct Step {
		std::vector<loy::ReturnLine> units;
		const char *stamps; // taken back (+) and used given back (-)
	};
	struct Row {
		const char *name;
		std::vector<L> lines;
		Redemption r;
		const char *at_checkout;
		std::vector<Step> steps;
	};
	const Row rows[] = {
		{"plain: one stamp a unit",
		 {three_coffees, croissant},
		 Redemption::none(),
		 "coffee-card+3-0=8, pastry-card+3-0=3",
		 {{{{"COF", 1}}, "coffee-card+1-0"}, {{{"CRS", 3}}, "pastry-card+3-0"}, {{}, "coffee-card+2-0"}}},
		// 3 coffees, one given: 2 stamps. Sold units go back first: the
		// 1st and 2nd take a stamp each, the 3rd (the given one) gives
		// the 5 used stamps back.
		{"the stamp reward's line",
		 {three_coffees},
		 Redemption::of_stamp_card("coffee-card"),
		 "coffee-card+2-5=2",
		 {{{{"COF", 1}}, "coffee-card+1-0"}, {{{"COF", 1}}, "coffee-card+1-0"}, {{{"COF", 1}}, "coffee-card+0-5"}}},
		{"the stamp reward's receipt refunded whole",
		 {three_coffees, muffin},
		 Redemption::of_stamp_card("coffee-card"),
		 "coffee-card+2-5=2, pastry-card+1-0=1",
		 {{{}, "coffee-card+2-5, pastry-card+1-0"}}},
		{"other lines back: the used stamps stay used",
		 {three_coffees, croissant},
		 Redemption::of_stamp_card("coffee-card"),
		 "coffee-card+2-5=2, pastry-card+3-0=3",
		 {{{{"CRS", 3}}, "pastry-card+3-0"}, {{{"COF", 2}}, "coffee-card+2-0"}, {{}, "coffee-card+0-5"}}},
	};
	for (const Row &r : rows) {
		INFO(r.name);
		const loy::Member m = member(5);
		auto b = make_basket(r.lines);
		auto c = checkout_ok(p, b, m, r.r);
		CHECK(stamps_text(c.stamps) == r.at_checkout);
		loy::Receipt rc = loy::make_receipt(b, c, m, r.r);
		// Through the ledger's JSON and back, as a terminal keeps it.
		std::map<std::string, int64_t> net;
		for (const auto &s : c.stamps)
			net[s.id] += s.earned - s.used;
		for (const Step &s : r.steps) {
			auto back = loy::receipt_from_json(loy::receipt_to_json(rc));
			INFO(back.status().message());
			REQUIRE(back);
			rc = *back;
			auto f = loy::refund(p, rc, s.units);
			INFO(f.status().message());
			REQUIRE(f);
			CHECK(stamps_text(f->stamps) == s.stamps);
			for (const auto &x : f->stamps)
				net[x.id] -= x.earned - x.used;
			loy::apply_refund(rc, *f);
		}
		// Refunded whole: every stamp moved back exactly.
		for (const auto &[id, n] : net) {
			INFO(id);
			CHECK(n == 0);
		}
	}
}

TEST_CASE("a blocked card's receipt moves no stamps back", "[stamps]")
{
	const loy::Program p = program();
	loy::Member m = member(5);
	m.blocked = true;
	auto b = make_basket({coffee});
	auto c = checkout_ok(p, b, m, Redemption::none());
	loy::Receipt rc = loy::make_receipt(b, c, m, Redemption::none());
	auto f = loy::refund(p, rc, {});
	REQUIRE(f);
	CHECK(f->stamps.empty());
}

TEST_CASE("a receipt's stamps read back from the ledger are checked", "[stamps]")
{
	const loy::Program p = program();
	auto b = make_basket({coffee});
	auto c = checkout_ok(p, b, member(5), Redemption::of_stamp_card("coffee-card"));
	Json good = Json::parse(loy::receipt_to_json(loy::make_receipt(b, c, member(5),
									Redemption::of_stamp_card("coffee-card"))));
	REQUIRE(loy::receipt_from_json(good.dump()));
	struct Row {
		const char *name;
		void (*change)(Json &);
		const char *holds;
	};
	const Row rows[] = {
		{"used below zero", [](Json &j) { j["stamps"][0]["used"] = -1; }, "used"},
		{"more taken back than earned", [](Json &j) { j["stamps"][0]["reversed_so_far"] = 2; }, "reversed_so_far"},
		{"no id", [](Json &j) { j["stamps"][0].erase("id"); }, "id"},
		{"the used stamps' flag missing", [](Json &j) { j.erase("stamps_used_returned"); }, "stamps_used_returned"},
		{"stamps not a list", [](Json &j) { j["stamps"] = 3; }, "stamps"},
	};
	for (const Row &r : rows) {
		INFO(r.name);
		Json j = good;
		r.change(j);
		auto back = loy::receipt_from_json(j.dump());
		REQUIRE_FALSE(back);
		CHECK(back.status().code() == Code::bad_json);
		CHECK_THAT(back.status().message(), Catch::Contains(r.holds));
	}
}
