// Parsing and validating a program document (spec/program.md, "Program
// document"). Every failure names the field from the document's root.
#include "core/program.hpp"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "base/json_reader.hpp"
#include "base/utf8.hpp"

namespace loy {

namespace {

constexpr int64_t money_max = INT64_MAX;
constexpr int64_t points_max = INT64_MAX;

using Keys = std::initializer_list<std::string_view>;

// Every key of an object must be one a specification up to the document's
// `spec` defines: `v1`'s always, `v2`'s from "spec": 2. Anything else is
// refused, so that no till runs a program it would follow only in part.
Status known_keys(const JsonReader &r, int spec, Keys v1, Keys v2 = {})
{
	if (!r.node().is_object())
		return Status::ok(); // the field's own check names it
	for (auto it = r.node().begin(); it != r.node().end(); ++it) {
		const std::string &key = it.key();
		if (std::find(v1.begin(), v1.end(), key) != v1.end())
			continue;
		if (std::find(v2.begin(), v2.end(), key) != v2.end()) {
			if (spec >= 2)
				continue;
			return r.field_error(key.c_str(), "is a key of specification 2: the document must say "
							  "\"spec\": 2");
		}
		// The key as a message can show it: a few dozen bytes of UTF-8.
		std::string shown = utf8_scrub(key.substr(0, name_length_max));
		if (key.size() > name_length_max)
			shown += "...";
		return r.field_error(shown.c_str(),
				     fmt::format("is not a key of the program specification (up to version {}): a "
						 "till does not take a program it cannot follow",
						 program_spec_max));
	}
	return Status::ok();
}

// A required string of 1 to `length_max` bytes (ids, skus, names).
Result<std::string> nonempty(const JsonReader &r, const char *key, size_t length_max)
{
	auto v = r.string(key, length_max);
	if (!v)
		return v.status();
	if (v->empty())
		return r.field_error(key, "must not be empty");
	return v;
}

Result<std::vector<std::string>> string_list(const JsonReader &r, size_t size_max)
{
	auto n = r.array_size(size_max);
	if (!n)
		return n.status();
	std::vector<std::string> out;
	for (size_t i = 0; i < *n; i++) {
		auto s = r.element(i).as_string(name_length_max);
		if (!s)
			return s.status();
		out.push_back(*s);
	}
	return out;
}

Result<CardRule> parse_card(const JsonReader &r, int spec)
{
	LOY_TRY(r.expect_object());
	LOY_TRY(known_keys(r, spec, {"check", "min_length", "max_length"}));
	CardRule card;
	auto check = r.string("check", name_length_max);
	if (!check)
		return check.status();
	if (*check == "luhn")
		card.check = CardCheck::luhn;
	else if (*check == "ean13")
		card.check = CardCheck::ean13;
	else if (*check == "none")
		card.check = CardCheck::none;
	else
		return r.field_error("check", fmt::format("\"{}\" is unknown (luhn, ean13, none)", *check));
	auto min = r.integer("min_length", 1, card_length_max);
	if (!min)
		return min.status();
	auto max = r.integer("max_length", 1, card_length_max);
	if (!max)
		return max.status();
	if (*max < *min)
		return r.field_error("max_length", fmt::format("must be at least min_length ({}), got {}",
								*min, *max));
	card.min_length = static_cast<int>(*min);
	card.max_length = static_cast<int>(*max);
	return card;
}

Result<Tier> parse_tier(const JsonReader &r, int spec)
{
	LOY_TRY(r.expect_object());
	LOY_TRY(known_keys(r, spec, {"name", "spend", "multiplier_pct"}, {"discount_pct"}));
	Tier t;
	auto name = r.string("name", name_length_max);
	if (!name)
		return name.status();
	t.name = *name;
	auto spend = r.integer("spend", 0, money_max);
	if (!spend)
		return spend.status();
	t.spend = *spend;
	// Below 100 would make the tier part negative, and `earned` with it.
	auto pct = r.integer("multiplier_pct", 100, pct_max);
	if (!pct)
		return pct.status();
	t.multiplier_pct = *pct;
	auto discount = r.opt_integer("discount_pct", 0, 100);
	if (!discount)
		return discount.status();
	t.discount_pct = discount->value_or(0);
	return t;
}

Result<uint8_t> parse_days(const JsonReader &r)
{
	static const char *const names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
	auto n = r.array_size(7 * 4);
	if (!n)
		return n.status();
	uint8_t mask = 0;
	for (size_t i = 0; i < *n; i++) {
		auto e = r.element(i);
		auto s = e.as_string(name_length_max);
		if (!s)
			return s.status();
		std::string lower = *s;
		std::transform(lower.begin(), lower.end(), lower.begin(),
			       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
		int found = -1;
		for (int d = 0; d < 7; d++)
			if (lower == names[d])
				found = d;
		if (found < 0)
			return e.error(fmt::format("\"{}\" is not a day (mon, tue, wed, thu, fri, sat, sun)", *s));
		mask = static_cast<uint8_t>(mask | (1u << found));
	}
	return mask;
}

Result<std::optional<Days>> opt_date(const JsonReader &r, const char *key)
{
	auto s = r.opt_string(key, name_length_max);
	if (!s)
		return s.status();
	if (!*s)
		return std::optional<Days>();
	auto d = parse_date(**s);
	if (!d)
		return r.field_error(key, fmt::format("must be a date YYYY-MM-DD, got \"{}\"", **s));
	return std::optional<Days>(*d);
}

Result<Campaign> parse_campaign(const JsonReader &r, const std::vector<Tier> &tiers, int spec)
{
	LOY_TRY(r.expect_object());
	LOY_TRY(known_keys(r, spec,
			   {"id", "kind", "multiplier_pct", "category", "sku", "points", "from", "until", "days",
			    "tiers", "min_spend", "cap"},
			   {"segments"}));
	Campaign c;
	auto id = r.string("id", name_length_max);
	if (!id)
		return id.status();
	c.id = *id;
	if (c.id == "base" || c.id.rfind("tier:", 0) == 0)
		return r.field_error("id", fmt::format("\"{}\" is reserved for the breakdown", c.id));
	auto kind = r.string("kind", name_length_max);
	if (!kind)
		return kind.status();
	if (*kind == "multiplier")
		c.kind = CampaignKind::multiplier;
	else if (*kind == "category_multiplier")
		c.kind = CampaignKind::category_multiplier;
	else if (*kind == "spend_bonus")
		c.kind = CampaignKind::spend_bonus;
	else if (*kind == "item_bonus")
		c.kind = CampaignKind::item_bonus;
	else
		return r.field_error("kind", fmt::format("\"{}\" is unknown (multiplier, "
							 "category_multiplier, spend_bonus, item_bonus)",
							 *kind));

	switch (c.kind) {
	case CampaignKind::multiplier:
	case CampaignKind::category_multiplier: {
		auto pct = r.integer("multiplier_pct", 100, pct_max);
		if (!pct)
			return pct.status();
		c.multiplier_pct = *pct;
		if (c.kind == CampaignKind::category_multiplier) {
			auto cat = r.string("category", name_length_max);
			if (!cat)
				return cat.status();
			c.category = *cat;
		}
		break;
	}
	case CampaignKind::spend_bonus: {
		auto pts = r.integer("points", 0, points_max);
		if (!pts)
			return pts.status();
		c.points = *pts;
		if (!r.has("min_spend"))
			return r.field_error("min_spend", "is missing");
		break;
	}
	case CampaignKind::item_bonus: {
		auto pts = r.integer("points", 0, points_max);
		if (!pts)
			return pts.status();
		c.points = *pts;
		auto cat = r.opt_string("category", name_length_max);
		if (!cat)
			return cat.status();
		auto sku = r.opt_string("sku", name_length_max);
		if (!sku)
			return sku.status();
		if (!*cat && !*sku)
			return r.field_error("sku", "is missing (an item_bonus names a sku or a category)");
		// When it names a category, the category decides (spec: "or category,
		// when it names category").
		if (*cat)
			c.category = **cat;
		else
			c.sku = **sku;
		break;
	}
	}

	auto from = opt_date(r, "from");
	if (!from)
		return from.status();
	c.from = *from;
	auto until = opt_date(r, "until");
	if (!until)
		return until.status();
	c.until = *until;
	if (c.from && c.until && *c.until <= *c.from)
		return r.field_error("until", fmt::format("must be after from ({}), got {}",
							  format_date(*c.from), format_date(*c.until)));
	if (r.has("days")) {
		auto days = parse_days(r.child("days"));
		if (!days)
			return days.status();
		c.weekdays = *days;
	}
	if (r.has("tiers")) {
		auto list = string_list(r.child("tiers"), program_tiers_max);
		if (!list)
			return list.status();
		for (size_t i = 0; i < list->size(); i++) {
			const auto &name = (*list)[i];
			bool known = std::any_of(tiers.begin(), tiers.end(),
						 [&](const Tier &t) { return t.name == name; });
			if (!known)
				return r.child("tiers").element(i).error(
					fmt::format("\"{}\" is not a tier of this program", name));
		}
		c.tiers = *list;
	}
	if (r.has("segments")) {
		auto list = string_list(r.child("segments"), program_segments_max);
		if (!list)
			return list.status();
		c.segments = *list;
	}
	auto min_spend = r.opt_integer("min_spend", 0, money_max);
	if (!min_spend)
		return min_spend.status();
	c.min_spend = *min_spend;
	auto cap = r.opt_integer("cap", 0, points_max);
	if (!cap)
		return cap.status();
	c.cap = *cap;
	return c;
}

Result<Redeem> parse_redeem(const JsonReader &r, int spec)
{
	LOY_TRY(r.expect_object());
	LOY_TRY(known_keys(r, spec, {"point_value", "min_points", "max_pct", "offline_daily_cap"}));
	Redeem d;
	auto pv = r.integer("point_value", 1, money_max);
	if (!pv)
		return pv.status();
	d.point_value = *pv;
	auto minp = r.integer("min_points", 0, points_max);
	if (!minp)
		return minp.status();
	d.min_points = *minp;
	// Over 100 would take more off a line than it costs.
	auto maxpct = r.integer("max_pct", 0, 100);
	if (!maxpct)
		return maxpct.status();
	d.max_pct = *maxpct;
	auto cap = r.integer("offline_daily_cap", 0, points_max);
	if (!cap)
		return cap.status();
	d.offline_daily_cap = *cap;
	return d;
}

Result<Reward> parse_reward(const JsonReader &r, int spec)
{
	LOY_TRY(r.expect_object());
	LOY_TRY(known_keys(r, spec, {"id", "cost", "sku"}));
	Reward w;
	auto id = r.string("id", name_length_max);
	if (!id)
		return id.status();
	w.id = *id;
	auto cost = r.integer("cost", 1, points_max);
	if (!cost)
		return cost.status();
	w.cost = *cost;
	auto sku = r.string("sku", name_length_max);
	if (!sku)
		return sku.status();
	w.sku = *sku;
	return w;
}

// An optional list of `key` (at most `size_max`), each element parsed by
// `parse` and its id refused when `taken` already names something of the
// program: the sections whose ids are shared (campaigns, stamp cards,
// charities, ...).
template <class T, class Parse, class Taken>
Status parse_id_list(const JsonReader &root, const char *key, size_t size_max, const Program &p, Parse parse,
		     Taken taken, std::vector<T> &out)
{
	if (!root.has(key))
		return Status::ok();
	auto list = root.child(key);
	auto n = list.array_size(size_max);
	if (!n)
		return n.status();
	for (size_t i = 0; i < *n; i++) {
		auto x = parse(list.element(i), p.spec);
		if (!x)
			return x.status();
		if (taken(x->id))
			return list.element(i).field_error(
				"id", fmt::format("\"{}\" is a duplicate: ids are one a campaign, stamp card, charity or membership",
						  x->id));
		out.push_back(std::move(x).value());
	}
	return Status::ok();
}

Result<StampCard> parse_stamp_card(const JsonReader &r, int spec)
{
	LOY_TRY(r.expect_object());
	LOY_TRY(known_keys(r, spec, {}, {"id", "sku", "category", "stamps", "reward_sku", "expiry_days"}));
	StampCard c;
	auto id = r.string("id", name_length_max);
	if (!id)
		return id.status();
	c.id = *id;
	const bool by_sku = r.has("sku"), by_category = r.has("category");
	if (by_sku == by_category)
		return r.field_error(by_sku ? "category" : "sku",
				     by_sku ? "cannot be given with sku: a stamp card counts one or the other"
					    : "is missing: a stamp card counts units of a sku or of a category");
	auto what = nonempty(r, by_sku ? "sku" : "category", name_length_max);
	if (!what)
		return what.status();
	(by_sku ? c.sku : c.category) = *what;
	auto stamps = r.integer("stamps", 1, stamps_max);
	if (!stamps)
		return stamps.status();
	c.stamps = *stamps;
	auto reward = nonempty(r, "reward_sku", name_length_max);
	if (!reward)
		return reward.status();
	c.reward_sku = *reward;
	auto expiry = r.opt_integer("expiry_days", 1, days_max);
	if (!expiry)
		return expiry.status();
	c.expiry_days = *expiry;
	return c;
}

Result<Membership> parse_membership(const JsonReader &r, int spec)
{
	LOY_TRY(r.expect_object());
	LOY_TRY(known_keys(r, spec, {}, {"id", "sku", "days", "multiplier_pct"}));
	Membership m;
	auto id = r.string("id", name_length_max);
	if (!id)
		return id.status();
	m.id = *id;
	auto sku = nonempty(r, "sku", name_length_max);
	if (!sku)
		return sku.status();
	m.sku = *sku;
	auto days = r.integer("days", 1, days_max);
	if (!days)
		return days.status();
	m.days = *days;
	auto pct = r.integer("multiplier_pct", 100, pct_max);
	if (!pct)
		return pct.status();
	m.multiplier_pct = *pct;
	return m;
}

Result<Referral> parse_referral(const JsonReader &r, int spec)
{
	LOY_TRY(r.expect_object());
	LOY_TRY(known_keys(r, spec, {},
			   {"referrer_points", "referee_points", "min_spend", "window_days", "max_per_referrer"}));
	Referral x;
	auto referrer = r.integer("referrer_points", 0, points_max);
	auto referee = r.integer("referee_points", 0, points_max);
	auto min_spend = r.opt_integer("min_spend", 0, money_max);
	auto window = r.integer("window_days", 1, days_max);
	auto most = r.opt_integer("max_per_referrer", 0, INT64_MAX);
	for (const Status &st : {referrer.status(), referee.status(), min_spend.status(), window.status(),
				 most.status()})
		if (!st)
			return st;
	x.referrer_points = *referrer;
	x.referee_points = *referee;
	x.min_spend = min_spend->value_or(0);
	x.window_days = *window;
	x.max_per_referrer = *most;
	return x;
}

Result<Challenge> parse_challenge(const JsonReader &r, int spec)
{
	LOY_TRY(r.expect_object());
	LOY_TRY(known_keys(r, spec, {},
			   {"id", "kind", "count", "points", "min_spend", "from", "until", "window_days"}));
	Challenge c;
	auto id = r.string("id", name_length_max);
	if (!id)
		return id.status();
	c.id = *id;
	auto kind = r.string("kind", name_length_max);
	if (!kind)
		return kind.status();
	if (*kind == "visits")
		c.kind = ChallengeKind::visits;
	else if (*kind == "categories")
		c.kind = ChallengeKind::categories;
	else if (*kind == "spend")
		c.kind = ChallengeKind::spend;
	else
		return r.field_error("kind", fmt::format("\"{}\" is not a challenge kind (visits, categories, spend)",
							 utf8_scrub(*kind)));
	auto count = r.integer("count", 1, c.kind == ChallengeKind::spend ? money_max : days_max);
	auto points = r.integer("points", 0, points_max);
	auto min_spend = r.opt_integer("min_spend", 0, money_max);
	auto window = r.opt_integer("window_days", 1, days_max);
	for (const Status &st : {count.status(), points.status(), min_spend.status(), window.status()})
		if (!st)
			return st;
	c.count = *count;
	c.points = *points;
	c.min_spend = min_spend->value_or(1);
	c.window_days = *window;
	if (!r.has("from"))
		return r.field_error("from", "is missing: a challenge runs between two dates");
	if (!r.has("until"))
		return r.field_error("until", "is missing: a challenge runs between two dates");
	auto from = opt_date(r, "from");
	if (!from)
		return from.status();
	auto until = opt_date(r, "until");
	if (!until)
		return until.status();
	c.from = **from;
	c.until = **until;
	if (c.until <= c.from)
		return r.field_error("until", fmt::format("must be after from ({}), got {}", format_date(c.from),
							  format_date(c.until)));
	if (c.until - c.from > days_max)
		return r.field_error("until", fmt::format("runs more than {} days after from", days_max));
	return c;
}

Result<Partner> parse_partner(const JsonReader &r, int spec)
{
	LOY_TRY(r.expect_object());
	LOY_TRY(known_keys(r, spec, {}, {"id", "name", "stores", "issue_cost", "redeem_credit"}));
	Partner x;
	auto id = r.string("id", name_length_max);
	if (!id)
		return id.status();
	if (*id == "owner")
		return r.field_error("id", "\"owner\" names the program owner in settlements: a partner needs another");
	x.id = *id;
	auto name = nonempty(r, "name", charity_name_bytes_max);
	if (!name)
		return name.status();
	x.name = *name;
	auto stores = string_list(r.child("stores"), partner_stores_max);
	if (!stores)
		return stores.status();
	for (const auto &st : *stores)
		if (st.empty() || st.size() > name_length_max)
			return r.field_error("stores", fmt::format("a store id must be 1 to {} bytes", name_length_max));
	x.stores = std::move(stores).value();
	auto issue = r.integer("issue_cost", 0, partner_rate_max);
	auto credit = r.integer("redeem_credit", 0, partner_rate_max);
	for (const Status &st : {issue.status(), credit.status()})
		if (!st)
			return st;
	x.issue_cost = *issue;
	x.redeem_credit = *credit;
	return x;
}

Result<Charity> parse_charity(const JsonReader &r, int spec)
{
	LOY_TRY(r.expect_object());
	LOY_TRY(known_keys(r, spec, {}, {"id", "name"}));
	Charity c;
	auto id = r.string("id", name_length_max);
	if (!id)
		return id.status();
	c.id = *id;
	auto name = nonempty(r, "name", charity_name_bytes_max);
	if (!name)
		return name.status();
	c.name = *name;
	return c;
}

Result<Program> parse_program_json(const JsonReader &root)
{
	LOY_TRY(root.expect_object());
	Program p;
	// The specification first: what keys may be there depends on it.
	auto spec = root.opt_integer("spec", 1, INT64_MAX);
	if (!spec)
		return spec.status();
	if (spec->value_or(1) > program_spec_max)
		return root.field_error("spec", fmt::format("is {}: this build follows the program specification "
							    "up to version {}, and does not take a program it "
							    "cannot follow",
							    **spec, program_spec_max));
	p.spec = static_cast<int>(spec->value_or(1));
	LOY_TRY(known_keys(root, p.spec,
			   {"spec", "program", "version", "currency", "card", "earn", "exclude", "tiers",
			    "campaigns", "redeem", "rewards", "expiry_days", "pending_days"},
			   {"stamp_cards", "memberships", "referral", "challenges", "charities", "partners"}));
	auto id = root.string("program", name_length_max);
	if (!id)
		return id.status();
	p.id = *id;
	auto version = root.integer("version", 1, program_version_max);
	if (!version)
		return version.status();
	p.version = *version;
	auto currency = root.string("currency", 3);
	if (!currency)
		return currency.status();
	if (currency->size() != 3 || !std::all_of(currency->begin(), currency->end(),
						   [](char ch) { return ch >= 'A' && ch <= 'Z'; }))
		return root.field_error("currency", fmt::format("must be an ISO 4217 code such as "
								"\"EUR\", got \"{}\"", *currency));
	p.currency = *currency;

	auto card = parse_card(root.child("card"), p.spec);
	if (!card)
		return card.status();
	p.card = *card;

	auto earn = root.child("earn");
	LOY_TRY(earn.expect_object());
	LOY_TRY(known_keys(earn, p.spec, {"points", "per"}));
	auto ep = earn.integer("points", 0, points_max);
	if (!ep)
		return ep.status();
	auto per = earn.integer("per", 1, money_max);
	if (!per)
		return per.status();
	p.earn = Earn{*ep, *per};

	if (root.has("exclude")) {
		auto ex = root.child("exclude");
		LOY_TRY(ex.expect_object());
		LOY_TRY(known_keys(ex, p.spec, {"categories", "skus"}));
		if (ex.has("categories")) {
			auto cats = string_list(ex.child("categories"), program_excludes_max);
			if (!cats)
				return cats.status();
			p.exclude_categories = *cats;
		}
		if (ex.has("skus")) {
			auto skus = string_list(ex.child("skus"), program_excludes_max);
			if (!skus)
				return skus.status();
			p.exclude_skus = *skus;
		}
	}

	auto tiers = root.child("tiers");
	auto ntiers = tiers.array_size(program_tiers_max);
	if (!ntiers)
		return ntiers.status();
	if (*ntiers == 0)
		return tiers.error("must hold at least one tier");
	for (size_t i = 0; i < *ntiers; i++) {
		auto t = parse_tier(tiers.element(i), p.spec);
		if (!t)
			return t.status();
		for (const auto &prev : p.tiers)
			if (prev.name == t->name)
				return tiers.element(i).field_error(
					"name", fmt::format("\"{}\" is a duplicate", t->name));
		if (!p.tiers.empty() && t->spend <= p.tiers.back().spend)
			return tiers.element(i).field_error(
				"spend", fmt::format("must be above the previous tier's ({}): tiers "
						     "are sorted by spend, got {}",
						     p.tiers.back().spend, t->spend));
		p.tiers.push_back(*t);
	}

	if (root.has("campaigns")) {
		auto camps = root.child("campaigns");
		auto n = camps.array_size(program_campaigns_max);
		if (!n)
			return n.status();
		std::set<std::string> ids;
		for (size_t i = 0; i < *n; i++) {
			auto c = parse_campaign(camps.element(i), p.tiers, p.spec);
			if (!c)
				return c.status();
			if (!ids.insert(c->id).second)
				return camps.element(i).field_error(
					"id", fmt::format("\"{}\" is a duplicate", c->id));
			p.campaigns.push_back(*c);
		}
	}

	auto redeem = parse_redeem(root.child("redeem"), p.spec);
	if (!redeem)
		return redeem.status();
	p.redeem = *redeem;

	if (root.has("rewards")) {
		auto rws = root.child("rewards");
		auto n = rws.array_size(program_rewards_max);
		if (!n)
			return n.status();
		std::set<std::string> ids;
		for (size_t i = 0; i < *n; i++) {
			auto w = parse_reward(rws.element(i), p.spec);
			if (!w)
				return w.status();
			if (!ids.insert(w->id).second)
				return rws.element(i).field_error(
					"id", fmt::format("\"{}\" is a duplicate", w->id));
			p.rewards.push_back(*w);
		}
	}

	// Ids name one thing each across the program's campaigns, stamp cards,
	// charities, memberships (and, as they come, challenges, partners).
	auto id_taken = [&p](const std::string &name) {
		return p.find_charity(name) || p.find_stamp_card(name) || p.find_membership(name) ||
		       std::any_of(p.partners.begin(), p.partners.end(), [&](const Partner &x) { return x.id == name; }) ||
		       std::any_of(p.challenges.begin(), p.challenges.end(),
				   [&](const Challenge &x) { return x.id == name; }) ||
		       std::any_of(p.campaigns.begin(), p.campaigns.end(),
				   [&](const Campaign &x) { return x.id == name; });
	};
	LOY_TRY(parse_id_list(root, "stamp_cards", program_stamp_cards_max, p, parse_stamp_card, id_taken,
			      p.stamp_cards));
	LOY_TRY(parse_id_list(root, "charities", program_charities_max, p, parse_charity, id_taken, p.charities));
	LOY_TRY(parse_id_list(root, "memberships", program_memberships_max, p, parse_membership, id_taken,
			      p.memberships));
	LOY_TRY(parse_id_list(root, "partners", program_partners_max, p, parse_partner, id_taken, p.partners));
	LOY_TRY(parse_id_list(root, "challenges", program_challenges_max, p, parse_challenge, id_taken,
			      p.challenges));
	// A store belongs to one partner at most.
	std::set<std::string> owned;
	for (size_t i = 0; i < p.partners.size(); i++)
		for (const auto &st : p.partners[i].stores)
			if (!owned.insert(st).second)
				return root.child("partners").element(i).field_error(
					"stores", fmt::format("store \"{}\" is named twice: a store belongs to one partner "
							      "at most",
							      st));
	if (root.has("referral")) {
		auto referral = parse_referral(root.child("referral"), p.spec);
		if (!referral)
			return referral.status();
		p.referral = *referral;
	}
	// A membership's sku buys it and nothing else: not a second
	// membership's, nor one a reward or a stamp card gives away.
	for (size_t i = 0; i < p.memberships.size(); i++) {
		const std::string &sku = p.memberships[i].sku;
		const bool clash =
			p.membership_of_sku(sku) != &p.memberships[i] ||
			std::any_of(p.rewards.begin(), p.rewards.end(), [&](const Reward &w) { return w.sku == sku; }) ||
			std::any_of(p.stamp_cards.begin(), p.stamp_cards.end(),
				    [&](const StampCard &c) { return c.reward_sku == sku; });
		if (clash)
			return root.child("memberships").element(i).field_error(
				"sku", fmt::format("\"{}\" is another membership's, or a reward's, or a stamp card's "
						   "reward_sku: a membership's sku buys it alone",
						   sku));
	}

	// 0, like an absent field, means points never expire.
	auto expiry = root.opt_integer("expiry_days", 0, days_max);
	if (!expiry)
		return expiry.status();
	if (*expiry && **expiry > 0)
		p.expiry_days = *expiry;
	auto pending = root.opt_integer("pending_days", 0, days_max);
	if (!pending)
		return pending.status();
	p.pending_days = pending->value_or(0);
	return p;
}

} // namespace

bool Program::excluded(std::string_view sku, std::string_view category) const
{
	return std::find(exclude_skus.begin(), exclude_skus.end(), sku) != exclude_skus.end() ||
	       std::find(exclude_categories.begin(), exclude_categories.end(), category) !=
		       exclude_categories.end();
}

const Tier &Program::tier_for(int64_t qualifying_spend) const
{
	assert(!tiers.empty());
	const Tier *best = &tiers.front();
	for (const auto &t : tiers)
		if (t.spend <= qualifying_spend)
			best = &t;
	return *best;
}

const Tier *Program::find_tier(std::string_view name) const
{
	for (const auto &t : tiers)
		if (t.name == name)
			return &t;
	return nullptr;
}

const Reward *Program::find_reward(std::string_view reward_id) const
{
	for (const auto &w : rewards)
		if (w.id == reward_id)
			return &w;
	return nullptr;
}

const StampCard *Program::find_stamp_card(std::string_view card_id) const
{
	for (const auto &c : stamp_cards)
		if (c.id == card_id)
			return &c;
	return nullptr;
}

const Partner *Program::partner_of_store(std::string_view store) const
{
	for (const auto &x : partners)
		for (const auto &st : x.stores)
			if (st == store)
				return &x;
	return nullptr;
}

const Membership *Program::find_membership(std::string_view membership_id) const
{
	for (const auto &m : memberships)
		if (m.id == membership_id)
			return &m;
	return nullptr;
}

const Membership *Program::membership_of_sku(std::string_view sku) const
{
	for (const auto &m : memberships)
		if (m.sku == sku)
			return &m;
	return nullptr;
}

const Charity *Program::find_charity(std::string_view charity_id) const
{
	for (const auto &c : charities)
		if (c.id == charity_id)
			return &c;
	return nullptr;
}

Result<Program> parse_program(std::string_view text)
{
	if (text.size() > program_json_bytes_max)
		return Status(Code::bad_program,
			      fmt::format("program: document is {} bytes, at most {} allowed",
					  text.size(), program_json_bytes_max));
	auto doc = json_parse(text, Code::bad_program, "program");
	if (!doc)
		return doc.status();
	auto p = parse_program_json(JsonReader(*doc, "", Code::bad_program));
	if (!p)
		return p.status().prefixed("program: ");
	return p;
}

int currency_exponent(std::string_view c) noexcept
{
	static const char *const zero[] = {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW",
					   "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"};
	static const char *const three[] = {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"};
	for (const char *z : zero)
		if (c == z)
			return 0;
	for (const char *t : three)
		if (c == t)
			return 3;
	return 2;
}

std::string format_money(int64_t amount, std::string_view currency)
{
	const int exp = currency_exponent(currency);
	// In unsigned so that INT64_MIN has a magnitude.
	uint64_t mag = amount < 0 ? 0 - static_cast<uint64_t>(amount) : static_cast<uint64_t>(amount);
	const char *sign = amount < 0 ? "-" : "";
	if (exp == 0)
		return fmt::format("{} {}{}", currency, sign, mag);
	uint64_t unit = exp == 3 ? 1000 : 100;
	return fmt::format("{} {}{}.{:0{}}", currency, sign, mag / unit, mag % unit, exp);
}

} // namespace loy
