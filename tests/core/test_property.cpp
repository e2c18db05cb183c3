// Property test of the rules engine: seeded random programs (half of them of
// spec 2: member prices, segments, stamp cards, paid memberships), baskets,
// members (with stamps and membership runs), redemptions (points, rewards,
// stamp cards) and refund sequences, and donations, run through the engine and
// through the independent model (tests/model), plus invariants of
// spec/program.md that hold whatever the inputs. `--rng-seed N` replays a run; a failure prints the seed,
// the documents of the failing case and a shrunk copy of it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/basket.hpp"
#include "core/engine.hpp"
#include "core/program.hpp"
#include "core/receipt_json.hpp"
#include "model/model.hpp"

using nlohmann::json;

namespace {

// Cases per property: enough to hit every decline and every campaign filter
// many times over, few enough for about two seconds for the whole file in a
// Debug build (CI also runs it under qemu).
constexpr int checkout_cases = 2500;
constexpr int refund_cases = 1500;
constexpr int redemption_cases = 1500;
constexpr int empty_lists_cases = 500;
// Paid memberships (v2): checkouts and refunds under programs that all have
// memberships, and donations.
constexpr int membership_checkout_cases = 1000;
constexpr int membership_refund_cases = 700;
constexpr int donation_cases = 4000;
// Cases run under each random program.
constexpr int cases_per_program = 4;
// Failing cases reported in full per property before it stops looking.
constexpr int failures_reported_max = 3;
// The model refuses some inputs (an unknown reward id, 64-bit overflow); those
// cases are skipped, and must stay rare or the property checks little.
constexpr double skipped_share_max = 0.05;
// Candidates tried when shrinking a failing case.
constexpr int shrink_budget = 3000;

// ---------------------------------------------------------------- generator

class Gen {
public:
	explicit Gen(std::seed_seq &seq) : rng_(seq) {}

	int64_t range(int64_t lo, int64_t hi)
	{
		return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
	}
	bool chance(int pct) { return range(0, 99) < pct; }
	template <class T> const T &pick(const std::vector<T> &v)
	{
		return v[static_cast<size_t>(range(0, static_cast<int64_t>(v.size()) - 1))];
	}

private:
	std::mt19937_64 rng_;
};

// Each property draws from its own stream, so adding cases to one does not
// change the others; all of them replay from Catch's --rng-seed.
std::seed_seq seed_for(unsigned salt)
{
	return std::seed_seq{Catch::rngSeed(), salt};
}

// A small pool, so that skus repeat across lines and meet the campaigns,
// exclusions and rewards that name them.
const std::vector<std::string> skus = {"A", "B", "C", "D", "E", "F"};
const std::vector<std::string> sku_category = {"coffee", "coffee", "pastry",
						"food",   "tobacco", "gift"};
const std::vector<std::string> categories = {"coffee", "pastry", "food", "tobacco", "gift"};
const std::vector<std::string> tier_names = {"Member", "Silver", "Gold", "Platinum"};
// Segments (spec v2) of campaigns and members.
const std::vector<std::string> segment_pool = {"lapsed", "vip", "new"};
const char *const day_names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

// Civil dates written independently of base/timeutil (Howard Hinnant's
// algorithms), to place campaign windows around the basket's local date.
int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2 ? 1 : 0;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const int64_t yoe = y - era * 400;
	const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

std::string date_text(int64_t z)
{
	z += 719468;
	const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	const int64_t doe = z - era * 146097;
	const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const int64_t mp = (5 * doy + 2) / 153;
	const int64_t d = doy - (153 * mp + 2) / 5 + 1;
	const int64_t m = mp < 10 ? mp + 3 : mp - 9;
	const int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);
	return fmt::format("{:04}-{:02}-{:02}", y, m, d);
}

// A week starting on a Monday, one across a year's end, one across a leap day.
int64_t gen_anchor(Gen &g)
{
	switch (g.range(0, 2)) {
	case 0:
		return days_from_civil(2026, 3, 2);
	case 1:
		return days_from_civil(2025, 12, 28);
	default:
		return days_from_civil(2028, 2, 26);
	}
}

// The basket's `at`: a local date of the anchor's week, mostly an hour either
// side of midnight, in any offset from −12:00 to +14:00.
std::string gen_at(Gen &g, int64_t local_day)
{
	int64_t sec;
	switch (g.range(0, 4)) {
	case 0:
	case 1:
		sec = g.range(23 * 3600, 86399);
		break;
	case 2:
	case 3:
		sec = g.range(0, 3599);
		break;
	default:
		sec = g.range(0, 86399);
		break;
	}
	std::string text = fmt::format("{}T{:02}:{:02}:{:02}", date_text(local_day), sec / 3600,
				       sec / 60 % 60, sec % 60);
	if (g.chance(10))
		text += fmt::format(".{:03}", g.range(0, 999));
	const int64_t offset_min = g.range(-48, 56) * 15;
	if (offset_min == 0 && g.chance(50))
		return text + "Z";
	const int64_t a = offset_min < 0 ? -offset_min : offset_min;
	return text + fmt::format("{}{:02}:{:02}", offset_min < 0 ? '-' : '+', a / 60, a % 60);
}

// 1–3 distinct names of the segment pool, in random order.
json gen_segments(Gen &g)
{
	std::vector<std::string> pool = segment_pool;
	for (size_t i = pool.size() - 1; i > 0; i--)
		std::swap(pool[i], pool[static_cast<size_t>(g.range(0, static_cast<int64_t>(i)))]);
	return json(std::vector<std::string>(pool.begin(), pool.begin() + g.range(1, 3)));
}

// v2: campaigns may carry `segments`.
json gen_campaign(Gen &g, size_t i, int64_t anchor, const json &tiers, bool empty_lists, bool v2)
{
	static const char *const kinds[] = {"multiplier", "category_multiplier", "spend_bonus",
					    "item_bonus"};
	const std::string kind = kinds[g.range(0, 3)];
	json c = {{"id", fmt::format("c{}", i)}, {"kind", kind}};
	if (kind == "multiplier") {
		c["multiplier_pct"] = g.range(100, 400);
	} else if (kind == "category_multiplier") {
		c["category"] = g.pick(categories);
		c["multiplier_pct"] = g.range(100, 400);
	} else if (kind == "spend_bonus") {
		c["points"] = g.range(0, 200);
		c["min_spend"] = g.chance(20) ? 0 : g.range(0, 20000);
	} else {
		c["points"] = g.range(0, 20);
		const int64_t by = g.range(0, 9);
		if (by < 6 || by == 9)
			c["sku"] = g.pick(skus);
		if (by >= 6)
			c["category"] = g.pick(categories);
	}
	std::optional<int64_t> from;
	if (g.chance(30)) {
		from = anchor + g.range(-3, 9);
		c["from"] = date_text(*from);
	}
	if (g.chance(30))
		c["until"] = date_text(from ? *from + g.range(1, 6) : anchor + g.range(-2, 10));
	if (g.chance(30)) {
		json days = json::array();
		const int64_t mask = empty_lists && g.chance(50) ? 0 : g.range(1, 127);
		for (int d = 0; d < 7; d++)
			if (mask & (int64_t{1} << d))
				days.push_back(day_names[d]);
		c["days"] = days;
	}
	if (g.chance(25)) {
		json names = json::array();
		if (empty_lists && g.chance(50))
			c["tiers"] = names; // []
		while (!c.contains("tiers") && names.empty())
			for (const auto &t : tiers)
				if (g.chance(50))
					names.push_back(t["name"]);
		if (!c.contains("tiers"))
			c["tiers"] = names;
	}
	if (kind != "spend_bonus" && g.chance(20))
		c["min_spend"] = g.range(0, 20000);
	if (g.chance(30))
		c["cap"] = g.range(0, 300);
	// Segments: absent, empty (no one) or 1–3 names.
	if (v2 && g.chance(empty_lists ? 50 : 40))
		c["segments"] = (empty_lists ? g.chance(50) : g.chance(10)) ? json::array() : gen_segments(g);
	return c;
}

// Paid memberships (v2) of a program: 1–3, each with a sku the baskets sell
// only as a membership ("M0" …), days 1–400 (often short), multiplier 100–400.
json gen_memberships(Gen &g)
{
	json ms = json::array();
	const int64_t n = g.range(1, 3);
	for (int64_t i = 0; i < n; i++)
		ms.push_back({{"id", fmt::format("m{}", i)},
			      {"sku", fmt::format("M{}", i)},
			      {"days", g.chance(20) ? g.range(1, 3) : g.range(1, 400)},
			      {"multiplier_pct", g.chance(10) ? 100 : g.range(101, 400)}});
	return ms;
}

// `memberships`: the program is of spec 2 and has paid memberships.
json gen_program(Gen &g, int64_t anchor, bool empty_lists, bool memberships = false)
{
	json p = {{"program", "prop"},
		  {"version", 1},
		  {"currency", "EUR"},
		  {"card", {{"check", "luhn"}, {"min_length", 8}, {"max_length", 19}}},
		  {"earn", {{"points", g.range(1, 10)}, {"per", g.range(1, g.chance(25) ? 10 : 500)}}}};
	if (g.chance(80)) {
		json cats = json::array(), sk = json::array();
		for (const auto &c : categories)
			if (g.chance(15))
				cats.push_back(c);
		for (const auto &s : skus)
			if (g.chance(10))
				sk.push_back(s);
		json ex = json::object();
		if (!cats.empty() || g.chance(50))
			ex["categories"] = cats;
		if (!sk.empty() || g.chance(50))
			ex["skus"] = sk;
		p["exclude"] = ex;
	}
	// Half the programs may use the v2 keys of this test: a tier's
	// `discount_pct` (member price) and a campaign's `segments`.
	const bool v2 = memberships || g.chance(50);
	bool uses_v2 = false;
	json tiers = json::array();
	int64_t spend = g.chance(80) ? 0 : g.range(1, 5000);
	const int64_t ntiers = g.range(1, 4);
	for (int64_t i = 0; i < ntiers; i++) {
		json t = {{"name", tier_names[static_cast<size_t>(i)]},
			  {"spend", spend},
			  {"multiplier_pct", g.range(100, 300)}};
		if (v2) {
			// absent, 0, 100, or in between (mostly small, as retailers do)
			const int64_t way = g.range(0, 9);
			if (way >= 2) {
				t["discount_pct"] = way == 2   ? 0
						    : way == 3 ? 100
						    : way < 6  ? g.range(1, 99)
							       : g.range(1, 30);
				uses_v2 = true;
			}
		}
		tiers.push_back(t);
		spend += g.range(1, 40000);
	}
	p["tiers"] = tiers;
	const int64_t ncamp = g.range(0, 6);
	if (ncamp > 0 || g.chance(50)) {
		json camps = json::array();
		for (int64_t i = 0; i < ncamp; i++)
			camps.push_back(gen_campaign(g, static_cast<size_t>(i), anchor, tiers,
						     empty_lists, v2));
		for (const auto &c : camps)
			uses_v2 = uses_v2 || c.contains("segments");
		p["campaigns"] = camps;
	}
	// Stamp cards (v2): 0–3 of them, on a sku or a category of the baskets'
	// pools, their reward mostly the card's own sku, sometimes one never sold.
	if (v2) {
		const int64_t ncards = g.range(0, 3);
		if (ncards > 0 || g.chance(20)) {
			json cards = json::array();
			std::vector<std::string> pool = skus;
			pool.push_back("Z"); // never sold
			for (int64_t i = 0; i < ncards; i++) {
				json c = {{"id", fmt::format("s{}", i)}};
				const bool by_sku = g.chance(65);
				if (by_sku)
					c["sku"] = g.pick(skus);
				else
					c["category"] = g.pick(categories);
				c["stamps"] = g.chance(25) ? 1 : g.range(2, 12);
				c["reward_sku"] = by_sku && g.chance(60) ? c["sku"] : json(g.pick(pool));
				if (g.chance(30))
					c["expiry_days"] = g.range(1, 365);
				cards.push_back(c);
			}
			p["stamp_cards"] = cards;
			uses_v2 = true;
		}
	}
	// Paid memberships (v2): always when asked, else on a share of the v2 programs.
	if (memberships || (v2 && g.chance(30))) {
		p["memberships"] = gen_memberships(g);
		uses_v2 = true;
	}
	// A document that uses a v2 key must say so; one that does not may, too.
	if (uses_v2 || (v2 && g.chance(30)))
		p["spec"] = 2;
	p["redeem"] = {{"point_value", g.range(1, 5)},
		       {"min_points", g.chance(20) ? 0 : g.range(0, 200)},
		       {"max_pct", g.chance(20) ? 100 : g.range(0, 100)},
		       {"offline_daily_cap", g.chance(10) ? 0 : g.range(0, 5000)}};
	const int64_t nrewards = g.range(0, 3);
	if (nrewards > 0 || g.chance(50)) {
		json rewards = json::array();
		std::vector<std::string> pool = skus;
		pool.push_back("Z"); // never sold
		for (int64_t i = 0; i < nrewards; i++)
			rewards.push_back({{"id", fmt::format("r{}", i)},
					   {"cost", g.range(1, 1500)},
					   {"sku", g.pick(pool)}});
		p["rewards"] = rewards;
	}
	if (g.chance(30))
		p["expiry_days"] = g.range(0, 365);
	if (g.chance(30))
		p["pending_days"] = g.range(0, 30);
	return p;
}

json gen_basket(Gen &g, int64_t anchor, const json &program)
{
	// A sku mostly keeps one price in a basket, so equal nets (and ties in the
	// largest remainder) are common.
	std::vector<int64_t> price_of;
	for (size_t k = 0; k < skus.size(); k++)
		price_of.push_back(g.chance(8) ? 0 : g.chance(30) ? 100 * g.range(1, 9) : g.range(0, 5000));
	json lines = json::array();
	const int64_t n = g.range(1, 12);
	for (int64_t i = 0; i < n; i++) {
		const size_t k = static_cast<size_t>(g.range(0, static_cast<int64_t>(skus.size()) - 1));
		json l = {{"sku", skus[k]}};
		const int64_t c = g.range(0, 99);
		if (c < 85)
			l["category"] = sku_category[k];
		else if (c < 95)
			l["category"] = g.pick(categories);
		const int64_t qty = g.range(1, 5);
		const int64_t price = g.chance(70) ? price_of[k] : g.chance(8) ? 0 : g.range(0, 5000);
		l["qty"] = qty;
		l["unit_price"] = price;
		const int64_t d = g.range(0, 99);
		const int64_t discount = d < 60 ? 0 : d < 65 ? qty * price : g.range(0, qty * price);
		if (discount > 0 || g.chance(50))
			l["discount"] = discount;
		lines.push_back(l);
	}
	// A twin of a line in another category: the largest remainder must break
	// the tie between them, and category campaigns see which way it went.
	if (g.chance(30)) {
		json twin = lines[static_cast<size_t>(g.range(0, n - 1))];
		twin["category"] = g.pick(categories);
		lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(g.range(0, n)), twin);
	}
	// Paid memberships (v2): 1–2 lines buying one (1–3 units) anywhere in the
	// basket, sometimes the same membership twice, in a category of the pool
	// (stamp cards and item bonuses by category must not count them).
	const json ms = program.value("memberships", json::array());
	if (!ms.empty() && g.chance(45)) {
		const int64_t nm = g.range(1, 2);
		for (int64_t i = 0; i < nm; i++) {
			const json &x = ms[static_cast<size_t>(g.range(0, static_cast<int64_t>(ms.size()) - 1))];
			const int64_t qty = g.range(1, 3);
			const int64_t price = g.chance(10) ? 0 : g.range(100, 9000);
			json l = {{"sku", x["sku"]}, {"qty", qty}, {"unit_price", price}};
			if (g.chance(70))
				l["category"] = g.pick(categories);
			if (g.chance(20))
				l["discount"] = g.range(0, qty * price);
			lines.insert(lines.begin() +
					     static_cast<std::ptrdiff_t>(g.range(0, static_cast<int64_t>(lines.size()))),
				     l);
		}
	}
	return {{"receipt_id", "R-1"}, {"at", gen_at(g, anchor + g.range(0, 6))}, {"lines", lines}};
}

bool listed(const json &obj, const char *key, const json &value)
{
	if (!obj.contains(key))
		return false;
	const json &list = obj.at(key);
	return std::find(list.begin(), list.end(), value) != list.end();
}

// S0 of the spec, written out here only to aim redemptions near its limits:
// each eligible line's net less its member price (`discount_pct`).
int64_t eligible_spend(const json &program, const json &basket, int64_t discount_pct)
{
	const json ex = program.value("exclude", json::object());
	int64_t s = 0;
	for (const auto &l : basket["lines"]) {
		if (listed(ex, "skus", l["sku"]) ||
		    (l.contains("category") && listed(ex, "categories", l["category"])))
			continue;
		const int64_t net = l["qty"].get<int64_t>() * l["unit_price"].get<int64_t>() -
				    l.value("discount", int64_t{0});
		s += net - net * discount_pct / 100;
	}
	return s;
}

// The discount_pct of the tier a qualifying spend reaches (the lowest tier when none).
int64_t tier_discount_pct(const json &program, long long qualifying_spend)
{
	const json &tiers = program["tiers"];
	const json *best = &tiers[0];
	for (const auto &t : tiers)
		if (t["spend"].get<long long>() <= qualifying_spend)
			best = &t;
	return best->value("discount_pct", int64_t{0});
}

// One random case: documents, member, redemption and (for the refund property)
// the refunds that follow.
struct Case {
	// Several cases share one program, parsed by the engine once: generating
	// and parsing documents is most of the time this test takes.
	std::shared_ptr<const json> program;
	std::shared_ptr<const loy::Program> parsed; // null: parse *program
	json basket;
	model::Member member;
	model::Redeem redeem;
	// Units returned per sku by each refund; an empty map returns every unit left.
	std::vector<std::map<std::string, long long>> refunds;
};

// What a property needs of its cases: any checkout, an accepted-looking points
// redemption, refunds to follow, or campaigns whose days, tiers or segments list is empty.
enum class Want { any, points, refunds, empty_lists };

// The basket's local date, days since 1970-01-01 (its `at` starts with it).
int64_t basket_day(const json &basket)
{
	const std::string at = basket["at"];
	return days_from_civil(std::stoll(at.substr(0, 4)), std::stoll(at.substr(5, 2)),
			       std::stoll(at.substr(8, 2)));
}

// Runs of the program's memberships (v2), placed around the basket's local
// date: none, ended (some on the day before, i.e. `until` = the day), running
// (from the day, or ending the day after), or starting later. Given to
// unknown cards too: the engine must take them as none.
void gen_runs(Gen &g, Case &k)
{
	const int64_t day = basket_day(k.basket);
	for (const auto &x : k.program->value("memberships", json::array())) {
		const int64_t way = g.range(0, 9);
		int64_t from = 0, until = 0;
		if (way <= 1) {
			continue; // never held
		} else if (way <= 3) { // ended
			until = day - (g.chance(40) ? 0 : g.range(1, 400));
			from = until - g.range(1, 400);
		} else if (way <= 7) { // running on the day
			from = g.chance(20) ? day : day - g.range(1, 400);
			until = g.chance(20) ? day + 1 : day + g.range(1, 400);
		} else { // starting later
			from = day + (g.chance(30) ? 1 : g.range(1, 100));
			until = from + g.range(1, 400);
		}
		k.member.memberships[x["id"].get<std::string>()] = {from, until};
	}
}

void gen_member(Gen &g, Case &k, Want want)
{
	const json &prog = *k.program;
	// "Friendly" members pass every check unless the numbers say otherwise, so
	// that accepted redemptions are common; the rest hit every decline.
	const bool any = want == Want::any || want == Want::empty_lists;
	const bool friendly = !any || g.chance(50);
	model::Member &m = k.member;
	m.known = friendly || g.chance(80);
	m.blocked = want == Want::points ? false : friendly ? g.chance(3) : g.chance(12);
	const json &tiers = prog["tiers"];
	if (g.chance(30)) {
		const json &t = tiers[static_cast<size_t>(g.range(0, static_cast<int64_t>(tiers.size()) - 1))];
		m.qualifying_spend = std::max<long long>(0, t["spend"].get<long long>() + g.range(-1, 1));
	} else {
		m.qualifying_spend = g.range(0, 100000);
	}
	m.balance = g.range(0, 10000);
	m.redeemed_today = g.range(0, 3000);
	// Segments from the snapshot: an unknown card is in none.
	if (m.known && g.chance(50))
		m.segments = gen_segments(g).get<std::vector<std::string>>();

	// Stamps per card (v2), known only with the balance: none, 0, exactly or one
	// short of the card's `stamps`, more, or a debt below zero.
	const json cards = prog.value("stamp_cards", json::array());
	if (m.known)
		for (const auto &c : cards) {
			const int64_t need = c["stamps"];
			const int64_t way = g.range(0, 9);
			if (way == 0)
				continue; // the card holds none: absent
			m.stamps[c["id"]] = way == 1   ? 0
					    : way == 2 ? need
					    : way == 3 ? need - 1
					    : way == 4 ? -g.range(1, 20)
					    : way == 5 ? need + g.range(1, 20)
						       : g.range(0, 2 * need);
		}
	m.stamp_reward_today = g.chance(friendly ? 10 : 25);
	gen_runs(g, k);
	// A stamp card's reward on some checkouts of a program that has cards.
	if (want != Want::points && !cards.empty() && g.chance(30)) {
		if (g.chance(3)) {
			k.redeem.stamp_card = "no-such-card";
			return;
		}
		const json &c = cards[static_cast<size_t>(g.range(0, static_cast<int64_t>(cards.size()) - 1))];
		const std::string id = c["id"];
		const int64_t need = c["stamps"];
		k.redeem.stamp_card = id;
		if (friendly) {
			if (m.known)
				m.stamps[id] = g.chance(25) ? need : need + g.range(0, 20);
			m.stamp_reward_today = g.chance(5);
		} else if (m.known && g.chance(30)) {
			m.stamps[id] = need - g.range(0, 1); // the boundary
		}
		return;
	}

	const json &rd = prog["redeem"];
	const int64_t pv = rd["point_value"], min_points = rd["min_points"], max_pct = rd["max_pct"],
		      cap = rd["offline_daily_cap"];
	const bool has_rewards = prog.contains("rewards") && !prog["rewards"].empty();
	int64_t kind = g.range(0, 99); // < 25 none, < 65 points, < 98 reward, else unknown reward
	if (want == Want::points)
		kind = 30;
	if (kind >= 65 && kind < 98 && !has_rewards)
		kind = g.chance(50) ? 0 : 30;

	int64_t cost = 0;
	if (kind < 25) {
		return;
	} else if (kind < 65) {
		const int64_t pct = m.blocked ? 0 : tier_discount_pct(prog, m.qualifying_spend);
		const int64_t limit = eligible_spend(prog, k.basket, pct) * max_pct / 100 / pv;
		const int64_t lo = std::max<int64_t>(1, min_points);
		const int64_t way = g.range(0, 9);
		if (friendly && limit >= lo && way < 7)
			cost = g.range(lo, std::min(limit, lo + 2000));
		else if (way == 7)
			cost = std::max<int64_t>(1, limit + g.range(0, 1)); // the max_pct boundary
		else if (way == 8)
			cost = std::max<int64_t>(1, min_points - g.range(0, 1)); // the min_points one
		else
			cost = g.range(1, 2000);
		k.redeem.points = cost;
	} else if (kind < 98) {
		const json &rw = prog["rewards"][static_cast<size_t>(
			g.range(0, static_cast<int64_t>(prog["rewards"].size()) - 1))];
		k.redeem.reward = rw["id"];
		cost = rw["cost"];
	} else {
		k.redeem.reward = "no-such-reward";
		return;
	}
	if (friendly) {
		m.balance = g.chance(15) ? cost : cost + g.range(0, 5000); // exactly enough, or more
		if (cost > cap)
			m.redeemed_today = g.range(0, 10);
		else if (g.chance(15))
			m.redeemed_today = cap - cost; // exactly at the cap
		else
			m.redeemed_today = g.range(0, cap - cost);
	} else if (g.chance(20)) {
		m.balance = cost - g.range(0, 1);
	}
}

// Refunds of 1–3 random parts of what is left (a sku or two, some of its
// units), then of everything left. The first part often returns units of the
// reward's sku, which may empty the line the reward was given on.
void gen_refunds(Gen &g, Case &k)
{
	std::map<std::string, long long> left;
	for (const auto &l : k.basket["lines"])
		left[l["sku"].get<std::string>()] += l["qty"].get<long long>();
	std::string reward_sku;
	for (const auto &rw : k.program->value("rewards", json::array()))
		if (rw["id"] == k.redeem.reward)
			reward_sku = rw["sku"];
	for (const auto &c : k.program->value("stamp_cards", json::array()))
		if (c["id"] == k.redeem.stamp_card)
			reward_sku = c["reward_sku"];
	const int64_t steps = g.range(1, 3);
	for (int64_t s = 0; s < steps; s++) {
		std::vector<std::string> open;
		for (const auto &kv : left)
			if (kv.second > 0)
				open.push_back(kv.first);
		if (open.empty())
			break;
		std::map<std::string, long long> step;
		const int64_t nskus = g.range(1, 2);
		for (int64_t i = 0; i < nskus; i++) {
			auto r = left.find(reward_sku);
			const bool to_reward = s == 0 && i == 0 && r != left.end() && r->second > 0 &&
					       g.chance(50);
			const std::string sku = to_reward ? reward_sku : g.pick(open);
			if (step.count(sku))
				continue;
			step[sku] = g.range(1, left[sku]);
			left[sku] -= step[sku];
		}
		k.refunds.push_back(step);
	}
	k.refunds.push_back({});
}

// A program and the date its campaigns' windows are placed around.
struct World {
	int64_t anchor = 0;
	std::shared_ptr<const json> program;
	std::shared_ptr<const loy::Program> parsed;
};

World gen_world(Gen &g, Want want, bool memberships)
{
	World w;
	w.anchor = gen_anchor(g);
	w.program = std::make_shared<const json>(
		gen_program(g, w.anchor, want == Want::empty_lists, memberships));
	auto p = loy::parse_program(w.program->dump());
	if (p)
		w.parsed = std::make_shared<const loy::Program>(*p);
	return w; // a refused program is reported by run_checkout
}

Case gen_case(Gen &g, const World &w, Want want)
{
	Case k;
	k.program = w.program;
	k.parsed = w.parsed;
	k.basket = gen_basket(g, w.anchor, *w.program);
	gen_member(g, k, want);
	if (want == Want::refunds)
		gen_refunds(g, k);
	return k;
}

std::string describe(const Case &k)
{
	std::ostringstream os;
	os << "program: " << k.program->dump() << "\nbasket: " << k.basket.dump()
	   << "\nmember: known=" << k.member.known << " blocked=" << k.member.blocked
	   << " balance=" << k.member.balance << " qualifying_spend=" << k.member.qualifying_spend
	   << " redeemed_today=" << k.member.redeemed_today
	   << " segments=" << json(k.member.segments).dump()
	   << " stamps=" << json(k.member.stamps).dump()
	   << " stamp_reward_today=" << k.member.stamp_reward_today << " memberships=";
	for (const auto &kv : k.member.memberships)
		os << kv.first << "[" << date_text(kv.second.from) << "," << date_text(kv.second.until) << ") ";
	os << "\nredeem: ";
	if (k.redeem.points)
		os << k.redeem.points << " points";
	else if (!k.redeem.reward.empty())
		os << "reward " << k.redeem.reward;
	else if (!k.redeem.stamp_card.empty())
		os << "stamp card " << k.redeem.stamp_card;
	else
		os << "none";
	if (!k.refunds.empty()) {
		os << "\nrefunds:";
		for (const auto &step : k.refunds) {
			os << " [";
			if (step.empty())
				os << "all left";
			for (const auto &kv : step)
				os << ' ' << kv.first << "×" << kv.second;
			os << " ]";
		}
	}
	return os.str();
}

// ---------------------------------------------------------------- running both

loy::Member to_engine(const model::Member &m)
{
	loy::Member e;
	e.known = m.known;
	e.blocked = m.blocked;
	e.balance = m.balance;
	e.qualifying_spend = m.qualifying_spend;
	e.redeemed_today = m.redeemed_today;
	e.segments = m.segments;
	for (const auto &kv : m.stamps)
		e.stamps[kv.first] = kv.second;
	e.stamp_reward_today = m.stamp_reward_today;
	for (const auto &kv : m.memberships)
		e.memberships[kv.first] = loy::MembershipRun{kv.second.from, kv.second.until};
	return e;
}

loy::Redemption to_engine(const model::Redeem &r)
{
	if (r.points != 0)
		return loy::Redemption::of_points(r.points);
	if (!r.reward.empty())
		return loy::Redemption::of_reward(r.reward);
	if (!r.stamp_card.empty())
		return loy::Redemption::of_stamp_card(r.stamp_card);
	return loy::Redemption::none();
}

loy::Code decline_code(const std::string &d)
{
	static const std::map<std::string, loy::Code> codes = {
		{"blocked", loy::Code::declined_blocked},
		{"balance_unknown", loy::Code::declined_balance_unknown},
		{"below_min_points", loy::Code::declined_min_points},
		{"over_max_pct", loy::Code::declined_max_pct},
		{"reward_not_in_basket", loy::Code::declined_reward_not_in_basket},
		{"insufficient_points", loy::Code::declined_insufficient_points},
		{"daily_cap", loy::Code::declined_daily_cap},
		{"insufficient_stamps", loy::Code::declined_insufficient_stamps},
		{"stamp_daily_limit", loy::Code::declined_stamp_daily_limit},
	};
	auto it = codes.find(d);
	return it == codes.end() ? loy::Code::internal : it->second;
}

template <class P> std::string parts_text(const std::vector<P> &parts)
{
	std::string s;
	for (const auto &p : parts)
		s += fmt::format("{}{}={}", s.empty() ? "" : " ", p.rule, p.points);
	return "[" + s + "]";
}

// Property 2, on any accepted checkout: the breakdown starts with base, sums to
// `earned`, every other part is positive and names a rule once.
std::string breakdown_problems(const loy::Checkout &c)
{
	std::string why;
	if (c.breakdown.empty() || c.breakdown.front().rule != "base")
		why += "breakdown does not start with base; ";
	int64_t sum = 0;
	std::vector<std::string> seen;
	for (size_t i = 0; i < c.breakdown.size(); i++) {
		const loy::Part &p = c.breakdown[i];
		sum += p.points;
		if (p.points < 0 || (i > 0 && p.points == 0))
			why += fmt::format("part {} has {} points; ", p.rule, p.points);
		if (std::find(seen.begin(), seen.end(), p.rule) != seen.end())
			why += fmt::format("rule {} appears twice; ", p.rule);
		seen.push_back(p.rule);
	}
	if (sum != c.earned)
		why += fmt::format("breakdown sums to {}, earned is {}; ", sum, c.earned);
	if (c.earned < 0)
		why += fmt::format("earned {} is negative; ", c.earned);
	if (c.eligible < 0 || c.discount < 0 || c.redeemed < 0)
		why += "a negative amount; ";
	return why;
}

std::string sorted(std::vector<std::string> v)
{
	std::sort(v.begin(), v.end());
	return json(v).dump();
}

// The segments the checkout decides with: an unknown card is in none.
std::vector<std::string> member_segments(const model::Member &m)
{
	return m.known ? m.segments : std::vector<std::string>{};
}

// The segments a checkout records (for its receipt's refunds) need not be all
// the member's, but they must be the member's and select the same campaigns.
std::string segments_problems(const json &program, const std::vector<std::string> &recorded,
			      const std::vector<std::string> &member)
{
	std::string why;
	for (const auto &x : recorded)
		if (std::find(member.begin(), member.end(), x) == member.end())
			why += fmt::format("the checkout records segment {}, not the member's {}; ", x,
					   sorted(member));
	auto in_any = [](const json &c, const std::vector<std::string> &segs) {
		return std::any_of(segs.begin(), segs.end(),
				   [&](const std::string &x) { return listed(c, "segments", x); });
	};
	for (const auto &c : program.value("campaigns", json::array()))
		if (c.contains("segments") && in_any(c, recorded) != in_any(c, member))
			why += fmt::format("the checkout's segments {} and the member's {} differ for "
					   "campaign {}; ",
					   sorted(recorded), sorted(member), c["id"].get<std::string>());
	return why;
}

// A checkout's stamp changes as text, the cards it touched (earned or used
// stamps) in program order: "s0+2-0=7 s1+1-5" (no balance: the stamps are not known).
std::string stamps_text(const std::vector<loy::StampChange> &v)
{
	std::string s;
	for (const auto &c : v) {
		s += fmt::format("{}{}+{}-{}", s.empty() ? "" : " ", c.id, c.earned, c.used);
		if (c.balance)
			s += fmt::format("={}", *c.balance);
	}
	return "[" + s + "]";
}

std::string stamps_text(const std::vector<model::StampMove> &v)
{
	std::string s;
	for (const auto &c : v) {
		if (c.earned == 0 && c.used == 0)
			continue;
		s += fmt::format("{}{}+{}-{}", s.empty() ? "" : " ", c.id, c.earned, c.used);
		if (c.balance_known)
			s += fmt::format("={}", c.balance);
	}
	return "[" + s + "]";
}

// A refund's stamp moves as text, per card id: "s0-2+0 s1-0+5" (taken back, used given back).
std::string refund_stamps_text(const std::vector<loy::StampChange> &v)
{
	std::map<std::string, std::pair<int64_t, int64_t>> by_id;
	std::string dup;
	for (const auto &c : v) {
		if (by_id.count(c.id))
			dup = " (" + c.id + " twice)";
		by_id[c.id] = {c.earned, c.used};
	}
	std::string s;
	for (const auto &kv : by_id)
		if (kv.second.first != 0 || kv.second.second != 0)
			s += fmt::format("{}{}-{}+{}", s.empty() ? "" : " ", kv.first, kv.second.first,
					 kv.second.second);
	return "[" + s + "]" + dup;
}

std::string refund_stamps_text(const model::Refund &r)
{
	std::map<std::string, std::pair<long long, long long>> by_id;
	for (const auto &kv : r.stamps_reversed)
		by_id[kv.first].first = kv.second;
	for (const auto &kv : r.stamps_used_returned)
		by_id[kv.first].second = kv.second;
	std::string s;
	for (const auto &kv : by_id)
		if (kv.second.first != 0 || kv.second.second != 0)
			s += fmt::format("{}{}-{}+{}", s.empty() ? "" : " ", kv.first, kv.second.first,
					 kv.second.second);
	return "[" + s + "]";
}

// Paid memberships (v2) as text: bought days in line order "m0+365 m1+30",
// runs by id "m0[20500,20865)", days taken off by id "m0-365".
std::string days_text(const std::vector<loy::MembershipDays> &v, const char *sign)
{
	std::string s;
	for (const auto &x : v)
		s += fmt::format("{}{}{}{}", s.empty() ? "" : " ", x.id, sign, x.days);
	return "[" + s + "]";
}

std::string days_text(const std::vector<model::MembershipDays> &v, const char *sign)
{
	std::string s;
	for (const auto &x : v)
		s += fmt::format("{}{}{}{}", s.empty() ? "" : " ", x.id, sign, x.days);
	return "[" + s + "]";
}

// Days taken off by a refund, summed per id (the engine lists one entry per
// line, so an id may come twice), zero moves left out.
std::string refund_days_text(const std::vector<loy::MembershipDays> &v)
{
	std::map<std::string, int64_t> by_id;
	for (const auto &x : v)
		by_id[x.id] += x.days;
	std::string s;
	for (const auto &kv : by_id)
		if (kv.second != 0)
			s += fmt::format("{}{}-{}", s.empty() ? "" : " ", kv.first, kv.second);
	return "[" + s + "]";
}

std::string refund_days_text(const std::map<std::string, long long> &m)
{
	std::string s;
	for (const auto &kv : m)
		if (kv.second != 0)
			s += fmt::format("{}{}-{}", s.empty() ? "" : " ", kv.first, kv.second);
	return "[" + s + "]";
}

std::string runs_text(const std::map<std::string, loy::MembershipRun> &m)
{
	std::string s;
	for (const auto &kv : m)
		s += fmt::format("{}{}[{},{})", s.empty() ? "" : " ", kv.first, kv.second.from, kv.second.until);
	return "[" + s + "]";
}

std::string runs_text(const std::map<std::string, model::Run> &m)
{
	std::string s;
	for (const auto &kv : m)
		s += fmt::format("{}{}[{},{})", s.empty() ? "" : " ", kv.first, kv.second.from, kv.second.until);
	return "[" + s + "]";
}

// One case through the engine and the model.
struct Run {
	std::shared_ptr<const loy::Program> program;
	std::optional<loy::Basket> basket;
	bool skipped = false;   // the model refuses the input
	model::Checkout m;
	std::optional<loy::Result<loy::Checkout>> e;
	std::string diff;       // empty when the engine agrees with the model and the invariants hold

	bool accepted() const { return e && e->is_ok() && m.decline.empty(); }
};

Run run_checkout(const Case &k)
{
	Run run;
	run.program = k.parsed;
	if (!run.program) {
		auto p = loy::parse_program(k.program->dump());
		if (!p) {
			run.diff = "the engine refused the generated program: " + p.status().message();
			return run;
		}
		run.program = std::make_shared<const loy::Program>(*p);
	}
	auto b = loy::parse_basket(k.basket.dump());
	if (!b) {
		run.diff = "the engine refused the generated basket: " + b.status().message();
		return run;
	}
	run.basket = *b;
	run.e = loy::checkout(*run.program, *run.basket, to_engine(k.member), to_engine(k.redeem));
	try {
		run.m = model::checkout(*k.program, k.basket, k.member, k.redeem);
	} catch (const std::exception &) {
		run.skipped = true;
		// The one refusal generated on purpose: the engine names it too.
		if (k.redeem.reward == "no-such-reward" && run.e->status().code() != loy::Code::unknown_reward)
			run.diff = fmt::format("an unknown reward gave {}, not unknown_reward",
					       loy::code_name(run.e->status().code()));
		if (k.redeem.stamp_card == "no-such-card" &&
		    run.e->status().code() != loy::Code::unknown_stamp_card)
			run.diff = fmt::format("an unknown stamp card gave {}, not unknown_stamp_card",
					       loy::code_name(run.e->status().code()));
		return run;
	}

	const loy::Result<loy::Checkout> &e = *run.e;
	std::string &why = run.diff;
	if (!run.m.decline.empty()) {
		const loy::Code want = decline_code(run.m.decline);
		if (e.is_ok())
			why += fmt::format("the engine accepted, the model declined: {}; ", run.m.decline);
		else if (e.status().code() != want)
			why += fmt::format("the engine said {} ({}), the model declined: {}; ",
					   loy::code_name(e.status().code()), e.status().message(),
					   run.m.decline);
		return run;
	}
	if (!e.is_ok()) {
		why += fmt::format("the engine said {} ({}), the model accepted; ",
				   loy::code_name(e.status().code()), e.status().message());
		return run;
	}
	const loy::Checkout &c = *e;
	auto field = [&](const char *name, const auto &engine, const auto &mod) {
		if (!(engine == mod))
			why += fmt::format("{}: engine {}, model {}; ", name, engine, mod);
	};
	field("tier", c.tier, run.m.tier);
	field("earned", c.earned, static_cast<int64_t>(run.m.earned));
	field("redeemed", c.redeemed, static_cast<int64_t>(run.m.redeemed));
	field("discount", c.discount, static_cast<int64_t>(run.m.discount));
	field("eligible spend S", c.eligible, static_cast<int64_t>(run.m.eligible_spend));
	field("member_discount", c.member_discount, static_cast<int64_t>(run.m.member_discount));
	why += segments_problems(*k.program, c.segments, member_segments(k.member));
	field("breakdown", parts_text(c.breakdown), parts_text(run.m.breakdown));
	field("stamps", stamps_text(c.stamps), stamps_text(run.m.stamps));
	field("memberships_before", sorted(c.memberships_before), sorted(run.m.memberships_before));
	field("memberships_bought", days_text(c.memberships_bought, "+"),
	      days_text(run.m.memberships_bought, "+"));
	field("memberships after", runs_text(c.memberships), runs_text(run.m.memberships));
	why += breakdown_problems(c);
	return run;
}

// Property 3: the refunds of an accepted checkout, step by step against the
// model, then their totals; and a single full refund of the same receipt.
std::string run_refunds(const Case &k, bool *skipped, bool *applicable)
{
	Run run = run_checkout(k);
	*skipped = run.skipped;
	*applicable = false;
	if (run.skipped || !run.diff.empty() || !run.accepted())
		return run.diff;
	*applicable = true;
	const loy::Program &p = *run.program;
	const loy::Basket &b = *run.basket;
	const loy::Checkout &c = run.e->value();
	const loy::Member em = to_engine(k.member);
	const loy::Redemption er = to_engine(k.redeem);

	std::string why;
	{
		auto f = loy::refund(p, loy::make_receipt(b, c, em, er), {});
		if (!f)
			return "a full refund was refused: " + f.status().message();
		if (f->points_reversed != c.earned || f->points_returned != c.redeemed || !f->complete)
			why += fmt::format("a single full refund moved {} earned and {} redeemed points "
					   "(complete {}), the checkout earned {} and redeemed {}; ",
					   f->points_reversed, f->points_returned, f->complete, c.earned,
					   c.redeemed);
		// Every stamp the checkout gave is taken back, every stamp it used given back.
		std::vector<loy::StampChange> all;
		for (const auto &x : c.stamps)
			all.push_back({x.id, x.earned, x.used, std::nullopt});
		if (refund_stamps_text(f->stamps) != refund_stamps_text(all))
			why += fmt::format("a single full refund moved stamps {}, the checkout {}; ",
					   refund_stamps_text(f->stamps), refund_stamps_text(all));
		// Every membership day the checkout bought is taken off.
		if (refund_days_text(f->memberships) != refund_days_text(c.memberships_bought))
			why += fmt::format("a single full refund took off membership days {}, the checkout "
					   "bought {}; ",
					   refund_days_text(f->memberships), refund_days_text(c.memberships_bought));
	}

	loy::Receipt rc = loy::make_receipt(b, c, em, er);
	// The receipt keeps the checkout's segments: its refunds recompute with them.
	if (sorted(rc.segments) != sorted(c.segments))
		why += fmt::format("the receipt's segments {} are not the checkout's {}; ",
				   sorted(rc.segments), sorted(c.segments));
	std::vector<int64_t> left(b.lines.size());
	for (size_t i = 0; i < b.lines.size(); i++)
		left[i] = b.lines[i].qty;
	std::map<std::string, long long> before;
	model::Refund earlier;
	int64_t reversed = 0, returned = 0;
	std::vector<loy::StampChange> stamps_moved; // summed over the refunds
	std::vector<loy::MembershipDays> days_moved; // summed over the refunds
	for (size_t s = 0; s < k.refunds.size(); s++) {
		const auto &step = k.refunds[s];
		std::vector<loy::ReturnLine> units;
		std::map<std::string, long long> taken = step;
		if (step.empty()) {
			for (size_t i = 0; i < b.lines.size(); i++)
				taken[b.lines[i].sku] += left[i];
		}
		for (const auto &kv : step)
			units.push_back(loy::ReturnLine{kv.first, kv.second});
		// Units come off the lines of their sku, first line first.
		for (const auto &kv : taken) {
			long long n = kv.second;
			for (size_t i = 0; i < b.lines.size() && n > 0; i++) {
				if (b.lines[i].sku != kv.first)
					continue;
				const int64_t t = std::min<int64_t>(n, left[i]);
				left[i] -= t;
				n -= t;
			}
		}
		const bool complete = std::all_of(left.begin(), left.end(), [](int64_t u) { return u == 0; });
		const std::string at = fmt::format("refund {}: ", s + 1);

		auto f = loy::refund(p, rc, units);
		model::Refund m;
		bool model_nothing_left = false;
		try {
			m = model::refund(*k.program, k.basket, k.member, k.redeem, run.m, before, step, earlier);
		} catch (const std::domain_error &) {
			model_nothing_left = true;
		} catch (const std::exception &) {
			*skipped = true;
			return why;
		}
		if (model_nothing_left) {
			// Earlier parts returned every unit: the full refund has nothing left.
			if (f || f.status().code() != loy::Code::declined_already_refunded)
				why += at + "nothing was left to refund, yet the engine did not decline it; ";
			break;
		}
		if (!f) {
			why += at + "refused: " + f.status().message() + "; ";
			break;
		}
		if (f->points_reversed != m.points_reversed || f->points_returned != m.points_returned)
			why += at + fmt::format("moved reversed {} returned {}, the model {} and {}; ",
						f->points_reversed, f->points_returned,
						m.points_reversed, m.points_returned);
		if (refund_stamps_text(f->stamps) != refund_stamps_text(m))
			why += at + fmt::format("moved stamps {}, the model {}; ", refund_stamps_text(f->stamps),
						refund_stamps_text(m));
		if (refund_days_text(f->memberships) != refund_days_text(m.membership_days))
			why += at + fmt::format("took off membership days {}, the model {}; ",
						refund_days_text(f->memberships),
						refund_days_text(m.membership_days));
		for (const auto &x : f->memberships) {
			if (x.days < 0)
				why += at + "negative membership days; ";
			days_moved.push_back(x);
		}
		if (f->points_reversed < 0 || f->points_returned < 0)
			why += at + "a negative move; ";
		for (const auto &x : f->stamps) {
			if (x.earned < 0 || x.used < 0)
				why += at + "a negative stamp move; ";
			stamps_moved.push_back({x.id, x.earned, x.used, std::nullopt});
		}
		for (size_t i = 0; i < b.lines.size(); i++)
			if (f->returned.size() != b.lines.size() ||
			    f->returned[i] != b.lines[i].qty - left[i]) {
				why += at + "units returned per line are not first line first; ";
				break;
			}
		if (f->complete != complete)
			why += at + fmt::format("complete is {}, expected {}; ", f->complete, complete);
		reversed += f->points_reversed;
		returned += f->points_returned;
		loy::apply_refund(rc, *f);
		earlier.points_reversed += m.points_reversed;
		earlier.points_returned += m.points_returned;
		for (const auto &kv : m.stamps_reversed)
			earlier.stamps_reversed[kv.first] += kv.second;
		for (const auto &kv : m.stamps_used_returned)
			earlier.stamps_used_returned[kv.first] += kv.second;
		for (const auto &kv : taken)
			before[kv.first] += kv.second;
		if (!why.empty())
			break;
	}
	if (why.empty() && (reversed != c.earned || returned != c.redeemed))
		why += fmt::format("the refunds moved {} earned and {} redeemed points in all, the "
				   "checkout earned {} and redeemed {}; ",
				   reversed, returned, c.earned, c.redeemed);
	if (why.empty()) {
		std::map<std::string, std::pair<int64_t, int64_t>> sum;
		for (const auto &x : stamps_moved) {
			sum[x.id].first += x.earned;
			sum[x.id].second += x.used;
		}
		std::vector<loy::StampChange> total, given;
		for (const auto &kv : sum)
			total.push_back({kv.first, kv.second.first, kv.second.second, std::nullopt});
		for (const auto &x : c.stamps)
			given.push_back({x.id, x.earned, x.used, std::nullopt});
		if (refund_stamps_text(total) != refund_stamps_text(given))
			why += fmt::format("the refunds moved stamps {} in all, the checkout {}; ",
					   refund_stamps_text(total), refund_stamps_text(given));
		if (refund_days_text(days_moved) != refund_days_text(c.memberships_bought))
			why += fmt::format("the refunds took off membership days {} in all, the checkout "
					   "bought {}; ",
					   refund_days_text(days_moved), refund_days_text(c.memberships_bought));
	}
	return why;
}

// Property 4: an accepted points-for-money redemption of D lowers S by exactly D
// (S = S0 − D), never raises a part of the breakdown, and lowers each part by
// at most what D would have earned at that part's rate, rounded up — except a
// campaign whose min_spend S0 met and S no longer does, which may go whole.
std::string run_redemption(const Case &k, bool *skipped, bool *applicable)
{
	Run run = run_checkout(k);
	*skipped = run.skipped;
	*applicable = false;
	if (run.skipped || !run.diff.empty() || !run.accepted() || k.redeem.points == 0)
		return run.diff;
	*applicable = true;
	const loy::Program &p = *run.program;
	const loy::Checkout &c = run.e->value();
	auto none = loy::checkout(p, *run.basket, to_engine(k.member), loy::Redemption::none());
	if (!none)
		return "the same checkout without the redemption failed: " + none.status().message();
	const loy::Checkout &c0 = *none;

	std::string why = breakdown_problems(c0);
	const int64_t d = k.redeem.points * p.redeem.point_value;
	if (c.discount != d)
		why += fmt::format("discount {} is not D = {}; ", c.discount, d);
	if (c.eligible_before != c0.eligible || c.eligible != c0.eligible - d)
		why += fmt::format("S {} is not S0 {} − D {}; ", c.eligible, c0.eligible, d);
	if (c.tier != c0.tier)
		why += "the redemption changed the tier; ";

	// ceil(D × earn.points × (pct − 100) / (earn.per × 100))
	auto rate_bound = [&](int64_t pct) {
		const int64_t num = d * p.earn.points * (pct - 100), den = p.earn.per * 100;
		return (num + den - 1) / den;
	};
	auto points_of = [](const loy::Checkout &x, const std::string &rule) -> int64_t {
		for (const auto &part : x.breakdown)
			if (part.rule == rule)
				return part.points;
		return 0;
	};
	int64_t bound_sum = 0;
	for (const auto &part : c.breakdown)
		if (part.points > points_of(c0, part.rule))
			why += fmt::format("the redemption raised {} from {} to {}; ", part.rule,
					   points_of(c0, part.rule), part.points);
	for (const auto &part : c0.breakdown) {
		const int64_t drop = part.points - points_of(c, part.rule);
		int64_t bound = 0;
		if (part.rule == "base") {
			bound = rate_bound(200);
			const int64_t simple = d * p.earn.points / p.earn.per + 1;
			if (drop > simple)
				why += fmt::format("base fell by {}, more than floor(D×points/per)+1 = {}; ",
						   drop, simple);
		} else if (part.rule.rfind("tier:", 0) == 0) {
			bound = rate_bound(p.find_tier(c.tier)->multiplier_pct);
		} else if (part.rule.rfind("membership:", 0) == 0) {
			// A paid membership's part: a multiplier of its own (v2).
			const loy::Membership *ms = p.find_membership(part.rule.substr(11));
			if (!ms) {
				why += "unknown membership " + part.rule + "; ";
				continue;
			}
			bound = rate_bound(ms->multiplier_pct);
		} else {
			const loy::Campaign *camp = nullptr;
			for (const auto &x : p.campaigns)
				if (x.id == part.rule)
					camp = &x;
			if (!camp) {
				why += "unknown rule " + part.rule + "; ";
				continue;
			}
			if (camp->min_spend && c.eligible < *camp->min_spend)
				bound = part.points;
			else if (camp->kind == loy::CampaignKind::multiplier ||
				 camp->kind == loy::CampaignKind::category_multiplier)
				bound = rate_bound(camp->multiplier_pct);
		}
		if (drop > bound)
			why += fmt::format("{} fell by {}, more than its bound {}; ", part.rule, drop, bound);
		bound_sum += bound;
	}
	if (c0.earned - c.earned > bound_sum)
		why += fmt::format("earned fell by {}, more than the parts' bounds {}; ",
				   c0.earned - c.earned, bound_sum);
	return why;
}

// ---------------------------------------------------------------- shrinking

// Smaller variants of a case: a campaign, line, reward, filter or exclusion
// fewer, or plainer numbers.
std::vector<Case> smaller(const Case &k)
{
	std::vector<Case> out;
	auto with = [&](const std::function<void(Case &)> &f) {
		Case c = k;
		f(c);
		out.push_back(std::move(c));
	};
	auto with_program = [&](const std::function<void(json &)> &f) {
		json p = *k.program;
		f(p);
		Case c = k;
		c.program = std::make_shared<const json>(std::move(p));
		c.parsed = nullptr;
		out.push_back(std::move(c));
	};
	const json &prog = *k.program;
	if (prog.contains("campaigns")) {
		const size_t n = prog["campaigns"].size();
		for (size_t i = 0; i < n; i++)
			with_program([i](json &p) { p["campaigns"].erase(i); });
		for (size_t i = 0; i < n; i++)
			for (const char *key : {"from", "until", "days", "tiers", "min_spend", "cap"})
				if (prog["campaigns"][i].contains(key) &&
				    !(std::string(key) == "min_spend" &&
				      prog["campaigns"][i]["kind"] == "spend_bonus"))
					with_program([i, key](json &p) { p["campaigns"][i].erase(key); });
	}
	if (prog.contains("campaigns"))
		for (size_t i = 0; i < prog["campaigns"].size(); i++)
			if (prog["campaigns"][i].contains("segments"))
				with_program([i](json &p) { p["campaigns"][i].erase("segments"); });
	for (size_t i = 0; i < prog["tiers"].size(); i++)
		if (prog["tiers"][i].contains("discount_pct"))
			with_program([i](json &p) { p["tiers"][i].erase("discount_pct"); });
	if (!k.member.segments.empty())
		with([](Case &c) { c.member.segments.clear(); });
	if (prog.contains("stamp_cards"))
		for (size_t i = 0; i < prog["stamp_cards"].size(); i++)
			if (prog["stamp_cards"][i]["id"] != k.redeem.stamp_card)
				with_program([i](json &p) { p["stamp_cards"].erase(i); });
	if (!k.member.stamps.empty())
		with([](Case &c) { c.member.stamps.clear(); });
	if (k.member.stamp_reward_today)
		with([](Case &c) { c.member.stamp_reward_today = false; });
	if (prog.contains("memberships"))
		for (size_t i = 0; i < prog["memberships"].size(); i++)
			with_program([i](json &p) { p["memberships"].erase(i); });
	for (const auto &kv : k.member.memberships)
		with([id = kv.first](Case &c) { c.member.memberships.erase(id); });
	const size_t nlines = k.basket["lines"].size();
	if (nlines > 1)
		for (size_t i = 0; i < nlines; i++)
			with([i](Case &c) { c.basket["lines"].erase(i); });
	for (size_t i = 0; i < nlines; i++) {
		const json &l = k.basket["lines"][i];
		if (l.value("discount", int64_t{0}) != 0)
			with([i](Case &c) { c.basket["lines"][i].erase("discount"); });
		if (l["qty"].get<int64_t>() > 1)
			with([i](Case &c) {
				json &x = c.basket["lines"][i];
				x["qty"] = 1;
				if (x.value("discount", int64_t{0}) > x["unit_price"].get<int64_t>())
					x["discount"] = x["unit_price"];
			});
	}
	if (prog.contains("rewards"))
		for (size_t i = 0; i < prog["rewards"].size(); i++)
			if (prog["rewards"][i]["id"] != k.redeem.reward)
				with_program([i](json &p) { p["rewards"].erase(i); });
	if (prog.contains("exclude"))
		with_program([](json &p) { p.erase("exclude"); });
	if (prog["tiers"].size() > 1)
		with_program([](json &p) { p["tiers"].erase(p["tiers"].size() - 1); });
	if (k.member.qualifying_spend != 0)
		with([](Case &c) { c.member.qualifying_spend = 0; });
	if (k.member.redeemed_today != 0)
		with([](Case &c) { c.member.redeemed_today = 0; });
	if (!k.redeem.reward.empty() || k.redeem.points != 0 || !k.redeem.stamp_card.empty())
		with([](Case &c) { c.redeem = model::Redeem(); });
	for (size_t i = 0; i + 1 < k.refunds.size(); i++)
		with([i](Case &c) { c.refunds.erase(c.refunds.begin() + static_cast<std::ptrdiff_t>(i)); });
	return out;
}

Case shrink(Case k, const std::function<bool(const Case &)> &fails)
{
	int budget = shrink_budget;
	for (bool progress = true; progress && budget > 0;) {
		progress = false;
		for (const Case &c : smaller(k)) {
			if (--budget < 0)
				break;
			if (fails(c)) {
				k = c;
				progress = true;
				break;
			}
		}
	}
	return k;
}

// Runs `n` cases of a property; a failing case is reported with its documents,
// shrunk, and counted; the model's refusals are counted and must stay rare.
void check_property(unsigned salt, int n, Want want,
		    const std::function<std::string(const Case &, bool *, bool *)> &prop,
		    int *applicable_out = nullptr, bool memberships = false)
{
	const unsigned seed = Catch::rngSeed();
	INFO("replay with --rng-seed " << seed);
	std::seed_seq seq = seed_for(salt);
	Gen g(seq);
	int skipped = 0, applicable = 0, failures = 0;
	World w;
	for (int i = 0; i < n && failures < failures_reported_max; i++) {
		if (i % cases_per_program == 0)
			w = gen_world(g, want, memberships);
		const Case k = gen_case(g, w, want);
		bool skip = false, app = false;
		const std::string why = prop(k, &skip, &app);
		skipped += skip ? 1 : 0;
		applicable += app ? 1 : 0;
		if (why.empty())
			continue;
		failures++;
		const Case small = shrink(k, [&](const Case &c) {
			bool s = false, a = false;
			return !prop(c, &s, &a).empty() && !s;
		});
		bool s = false, a = false;
		const std::string small_why = prop(small, &s, &a);
		INFO("case " << i << " of seed " << seed << ":\n" << describe(k) << "\ngives: " << why);
		INFO("shrunk to:\n" << describe(small));
		FAIL_CHECK(small_why);
	}
	INFO("skipped " << skipped << " of " << n << " cases the model refuses");
	CHECK(skipped <= static_cast<int>(skipped_share_max * n));
	if (applicable_out)
		*applicable_out = applicable;
}

} // namespace

TEST_CASE("engine and model agree on every checkout", "[property]")
{
	std::map<loy::Code, int> outcomes;
	int member_priced = 0, targeted = 0, targeted_missed = 0;
	int stamped = 0, stamp_rewards = 0, stamp_rewards_tried = 0;
	check_property(1, checkout_cases, Want::any, [&](const Case &k, bool *skipped, bool *app) {
		Run run = run_checkout(k);
		*skipped = run.skipped;
		*app = !run.skipped;
		if (!run.skipped && run.e)
			outcomes[run.e->status().code()]++;
		if (!run.skipped && !k.redeem.stamp_card.empty())
			stamp_rewards_tried++;
		if (run.accepted()) {
			member_priced += run.m.member_discount > 0 ? 1 : 0;
			stamp_rewards += k.redeem.stamp_card.empty() ? 0 : 1;
			stamped += std::any_of(run.m.stamps.begin(), run.m.stamps.end(),
					       [](const model::StampMove &x) { return x.earned > 0; })
					   ? 1
					   : 0;
			// Campaigns with `segments`: given (in the breakdown), and
			// withheld from a member in none of their segments.
			const auto segs = member_segments(k.member);
			for (const auto &c : k.program->value("campaigns", json::array())) {
				if (!c.contains("segments"))
					continue;
				const bool in = std::any_of(segs.begin(), segs.end(),
							    [&](const std::string &x) { return listed(c, "segments", x); });
				const bool given = std::any_of(run.m.breakdown.begin(), run.m.breakdown.end(),
							       [&](const model::Part &x) { return x.rule == c["id"]; });
				targeted += given ? 1 : 0;
				targeted_missed += in ? 0 : 1;
			}
		}
		return run.diff;
	});
	// The v2 keys are exercised: member prices taken, targeted campaigns given and not.
	INFO("member priced " << member_priced << ", targeted campaigns given " << targeted
			      << ", out of the member's segments " << targeted_missed);
	CHECK(member_priced > checkout_cases / 20);
	CHECK(targeted > checkout_cases / 50);
	CHECK(targeted_missed > checkout_cases / 50);
	// Stamp cards (v2): stamps earned, and the cards' rewards tried and taken.
	INFO("stamps earned on " << stamped << ", stamp rewards tried " << stamp_rewards_tried
				 << ", taken " << stamp_rewards);
	CHECK(stamped > checkout_cases / 10);
	CHECK(stamp_rewards_tried > checkout_cases / 20);
	CHECK(stamp_rewards > checkout_cases / 100);
	// The generator reaches every outcome, or the agreement above means little.
	using loy::Code;
	for (Code o : {Code::ok, Code::declined_blocked, Code::declined_balance_unknown,
		       Code::declined_min_points, Code::declined_max_pct,
		       Code::declined_reward_not_in_basket, Code::declined_insufficient_points,
		       Code::declined_daily_cap, Code::declined_insufficient_stamps,
		       Code::declined_stamp_daily_limit}) {
		INFO("outcome " << loy::code_name(o));
		CHECK(outcomes[o] > 0);
	}
	CHECK(outcomes[Code::ok] > checkout_cases / 3);
}

// The spec: a campaign applies "only when all its filters hold", and no day or
// tier is in an empty list; an empty `segments` list "matches no one". Apart from the property above, so that a failure
// here (the engine once read `"tiers": []` as every tier) hides nothing else.
TEST_CASE("a campaign whose days, tiers or segments list is empty applies to nothing",
	  "[property]")
{
	check_property(4, empty_lists_cases, Want::empty_lists,
		       [](const Case &k, bool *skipped, bool *app) {
			       Run run = run_checkout(k);
			       *skipped = run.skipped;
			       *app = !run.skipped;
			       return run.diff;
		       });
}

TEST_CASE("refunds give back exactly what was earned and redeemed", "[property]")
{
	int applicable = 0, stamp_receipts = 0, stamp_reward_receipts = 0;
	check_property(
		2, refund_cases, Want::refunds,
		[&](const Case &k, bool *skipped, bool *app) {
			std::string why = run_refunds(k, skipped, app);
			if (*app && k.program->contains("stamp_cards") && !(*k.program)["stamp_cards"].empty())
				stamp_receipts++;
			if (*app && !k.redeem.stamp_card.empty())
				stamp_reward_receipts++;
			return why;
		},
		&applicable);
	CHECK(applicable > refund_cases / 2);
	// Receipts of programs with stamp cards, and of stamp cards' rewards, are refunded.
	INFO("stamp card receipts refunded " << stamp_receipts << ", of a stamp reward "
					     << stamp_reward_receipts);
	CHECK(stamp_receipts > refund_cases / 10);
	CHECK(stamp_reward_receipts > refund_cases / 50);
}

TEST_CASE("a points redemption lowers S by D and the points by at most D's worth",
	  "[property]")
{
	int applicable = 0;
	check_property(3, redemption_cases, Want::points, run_redemption, &applicable);
	CHECK(applicable > redemption_cases / 2);
}

// Paid memberships (v2): every program has 1–3 memberships; baskets buy them
// (often), members hold runs that ended, run or start later. Engine and model
// agree on the decline, the points and breakdown (membership parts), the
// memberships running before, those bought and the runs after.
TEST_CASE("engine and model agree on checkouts with paid memberships", "[property]")
{
	std::map<loy::Code, int> outcomes;
	int bought = 0, extended = 0, after_ended = 0, over_later = 0, by_unknown = 0;
	int part_running = 0, part_bought = 0, blocked_buyer = 0, bought_redeeming = 0, twice = 0;
	check_property(
		5, membership_checkout_cases, Want::any,
		[&](const Case &k, bool *skipped, bool *app) {
			Run run = run_checkout(k);
			*skipped = run.skipped;
			*app = !run.skipped;
			if (run.skipped || !run.e)
				return run.diff;
			outcomes[run.e->status().code()]++;
			bool buys = false;
			for (const auto &l : k.basket["lines"])
				buys = buys || l["sku"].get<std::string>()[0] == 'M';
			if (buys && k.member.blocked && run.m.decline == "blocked")
				blocked_buyer++;
			if (!run.accepted())
				return run.diff;
			const int64_t day = basket_day(k.basket);
			const model::Checkout &m = run.m;
			std::map<std::string, int> times;
			for (const auto &x : m.memberships_bought) {
				times[x.id]++;
				auto held = k.member.memberships.find(x.id);
				const bool has = k.member.known && held != k.member.memberships.end();
				if (has && held->second.until <= day)
					after_ended++;
				if (has && held->second.from > day)
					over_later++;
			}
			for (const auto &kv : times) {
				twice += kv.second > 1 ? 1 : 0;
				if (std::find(m.memberships_before.begin(), m.memberships_before.end(), kv.first) !=
				    m.memberships_before.end())
					extended++;
			}
			if (!m.memberships_bought.empty()) {
				bought++;
				by_unknown += k.member.known ? 0 : 1;
				bought_redeeming += k.redeem.points != 0 || !k.redeem.reward.empty() ||
							    !k.redeem.stamp_card.empty()
						    ? 1
						    : 0;
			}
			for (const auto &part : m.breakdown) {
				if (part.rule.rfind("membership:", 0) != 0)
					continue;
				const std::string id = part.rule.substr(11);
				if (times.count(id) &&
				    std::find(m.memberships_before.begin(), m.memberships_before.end(), id) ==
					    m.memberships_before.end())
					part_bought++;
				else
					part_running++;
			}
			return run.diff;
		},
		nullptr, true);
	INFO("bought " << bought << ", extending a running one " << extended << ", after an ended one "
		       << after_ended << ", over one starting later " << over_later << ", by an unknown card "
		       << by_unknown << ", one membership on two lines " << twice << ", with a redemption "
		       << bought_redeeming << "; membership parts of a running one " << part_running
		       << ", of one bought on the receipt " << part_bought << "; blocked buyers declined "
		       << blocked_buyer);
	const int n = membership_checkout_cases;
	CHECK(bought > n / 10);
	CHECK(extended > n / 50);
	CHECK(after_ended > n / 100);
	CHECK(over_later > n / 200);
	CHECK(by_unknown > 0); // rare: an unknown card that redeems is declined
	CHECK(twice > n / 200);
	CHECK(bought_redeeming > n / 50);
	CHECK(part_running > n / 10);
	CHECK(part_bought > n / 50);
	CHECK(blocked_buyer > n / 200);
	using loy::Code;
	for (Code o : {Code::ok, Code::declined_blocked, Code::declined_balance_unknown,
		       Code::declined_min_points, Code::declined_max_pct,
		       Code::declined_reward_not_in_basket, Code::declined_insufficient_points,
		       Code::declined_daily_cap, Code::declined_insufficient_stamps,
		       Code::declined_stamp_daily_limit}) {
		INFO("outcome " << loy::code_name(o));
		CHECK(outcomes[o] > 0);
	}
}

// Paid memberships (v2): refunds in random parts of receipts that bought
// memberships or ran under them: points against the model's recompute (a
// membership runs while a unit of its sku remains or it ran before the
// receipt), and the days taken off per membership.
TEST_CASE("refunds of receipts with paid memberships agree with the model", "[property]")
{
	int applicable = 0, buying = 0, days_partly = 0, running_before = 0, kept_by_unit = 0;
	check_property(
		6, membership_refund_cases, Want::refunds,
		[&](const Case &k, bool *skipped, bool *app) {
			std::string why = run_refunds(k, skipped, app);
			if (!*app || *skipped)
				return why;
			std::map<std::string, int64_t> sold; // membership units on the receipt
			for (const auto &l : k.basket["lines"])
				if (l["sku"].get<std::string>()[0] == 'M')
					sold[l["sku"]] += l["qty"].get<int64_t>();
			if (!sold.empty())
				buying++;
			bool before = false;
			for (const auto &kv : k.member.memberships)
				before = before || (k.member.known && kv.second.from <= basket_day(k.basket) &&
						    basket_day(k.basket) < kv.second.until);
			running_before += before ? 1 : 0;
			// A part of the refunds (not the last) returns some of a
			// membership's units, or keeps all of them while others go back.
			std::map<std::string, int64_t> back;
			for (size_t s = 0; s + 1 < k.refunds.size(); s++)
				for (const auto &kv : k.refunds[s]) {
					back[kv.first] += kv.second;
					if (sold.count(kv.first))
						days_partly++;
				}
			for (const auto &kv : sold)
				if (k.refunds.size() > 1 && back[kv.first] < kv.second)
					kept_by_unit++;
			return why;
		},
		&applicable, true);
	INFO("refunded " << applicable << ", buying memberships " << buying << ", under a membership "
			 << "that ran before " << running_before << ", parts returning membership units "
			 << days_partly << ", membership units kept while others go back " << kept_by_unit);
	const int n = membership_refund_cases;
	CHECK(applicable > n / 2);
	CHECK(buying > n / 10);
	CHECK(running_before > n / 5);
	CHECK(days_partly > n / 20);
	CHECK(kept_by_unit > n / 20);
}

// Charity donations (v2): random programs with 0–3 charities, members (known or
// not, blocked, balances, what they redeemed today) and points around the
// limits (0, negative, the balance exactly, the daily cap exactly): the
// engine's check_donation gives the model's outcome.
TEST_CASE("engine and model agree on donations", "[property]")
{
	const unsigned seed = Catch::rngSeed();
	INFO("replay with --rng-seed " << seed);
	std::seed_seq seq = seed_for(7);
	Gen g(seq);
	std::map<loy::Code, int> outcomes;
	int at_balance = 0, at_cap = 0, failures = 0;
	json prog;
	std::optional<loy::Program> parsed;
	for (int i = 0; i < donation_cases && failures < failures_reported_max; i++) {
		if (i % 20 == 0) {
			prog = gen_program(g, gen_anchor(g), false);
			const int64_t nc = g.range(0, 3);
			if (nc > 0 || g.chance(30)) {
				json cs = json::array();
				for (int64_t c = 0; c < nc; c++)
					cs.push_back({{"id", fmt::format("ch{}", c)}, {"name", fmt::format("Charity {}", c)}});
				prog["charities"] = cs;
				prog["spec"] = 2;
			}
			auto p = loy::parse_program(prog.dump());
			REQUIRE(p);
			parsed = *p;
		}
		model::Member m;
		m.known = g.chance(85);
		m.blocked = g.chance(12);
		m.balance = g.chance(10) ? 0 : g.range(0, 10000);
		const int64_t cap = prog["redeem"]["offline_daily_cap"];
		m.redeemed_today = g.chance(30) ? 0 : g.chance(20) ? cap : g.range(0, 3000);
		const json cs = prog.value("charities", json::array());
		const std::string charity = !cs.empty() && g.chance(85)
						    ? cs[static_cast<size_t>(g.range(0, static_cast<int64_t>(cs.size()) - 1))]["id"]
							      .get<std::string>()
						    : g.chance(50) ? "no-such-charity" : "c0";
		int64_t points = 0;
		switch (g.range(0, 9)) {
		case 0: points = 0; break;
		case 1: points = -g.range(1, 100); break;
		case 2: points = m.balance; break;
		case 3: points = m.balance + 1; break;
		case 4: points = cap - m.redeemed_today; break;
		case 5: points = cap - m.redeemed_today + 1; break;
		default: points = g.range(1, 3000); break;
		}
		const std::string want = model::donate(prog, m, charity, points);
		const loy::Status got = loy::check_donation(*parsed, to_engine(m), charity, points);
		outcomes[got.code()]++;
		if (want.empty() && points == m.balance)
			at_balance++;
		if (want.empty() && m.redeemed_today + points == cap)
			at_cap++;
		static const std::map<std::string, loy::Code> extra = {
			{"", loy::Code::ok},
			{"unknown_charity", loy::Code::unknown_charity},
			{"bad_argument", loy::Code::bad_argument},
		};
		const loy::Code expected = extra.count(want) ? extra.at(want) : decline_code(want);
		if (got.code() != expected) {
			failures++;
			FAIL_CHECK(fmt::format("donation case {}: program {}\nmember known={} blocked={} balance={} "
					       "redeemed_today={}, charity {}, points {}: engine {} ({}), model {}",
					       i, prog.dump(), m.known, m.blocked, m.balance, m.redeemed_today,
					       charity, points, loy::code_name(got.code()), got.message(),
					       want.empty() ? "ok" : want));
		}
	}
	INFO("accepted at the balance exactly " << at_balance << ", at the daily cap exactly " << at_cap);
	CHECK(at_balance > 0);
	CHECK(at_cap > 0);
	using loy::Code;
	for (Code o : {Code::ok, Code::unknown_charity, Code::bad_argument, Code::declined_blocked,
		       Code::declined_balance_unknown, Code::declined_insufficient_points,
		       Code::declined_daily_cap}) {
		INFO("outcome " << loy::code_name(o));
		CHECK(outcomes[o] > 20);
	}
}
