// Accrual, redemption and refunds, step by step as spec/program.md numbers
// them. Every product goes through arith.hpp: exact, or refused as overflow.
#include "core/engine.hpp"

#include <algorithm>
#include <numeric>

#include <fmt/format.h>

#include "core/arith.hpp"

namespace loy {

namespace {

// One basket line as the accrual sees it: the units still counted, their net
// after any redemption, and the units given by a reward.
struct Work {
	const Line *line;
	int64_t qty;
	int64_t net;
	bool eligible;
	int64_t given;
};

Status overflow(const char *what)
{
	return Status(Code::overflow, fmt::format("{} is too large to compute exactly", what));
}

// Lines at `remaining` units each, keeping the part of their discount that
// belongs to the units that stay: floor(discount × remaining / qty).
Result<std::vector<Work>> work_lines(const Program &p, const Basket &b,
				     const std::vector<int64_t> &remaining)
{
	assert(remaining.size() == b.lines.size());
	std::vector<Work> w;
	w.reserve(b.lines.size());
	for (size_t i = 0; i < b.lines.size(); i++) {
		const Line &l = b.lines[i];
		int64_t units = remaining[i];
		assert(units >= 0 && units <= l.qty);
		int64_t net = l.net();
		if (units != l.qty) {
			auto disc = mul_div_floor(l.discount, units, 1, l.qty);
			if (!disc)
				return overflow("a line's remaining discount");
			net = units * l.unit_price - *disc;
		}
		// A membership's line buys days: it earns and counts for nothing.
		const bool eligible = !p.excluded(l.sku, l.category) && !p.membership_of_sku(l.sku);
		w.push_back(Work{&l, units, net, eligible, 0});
	}
	return w;
}

// The member price (a tier's discount_pct), right after step 1: each
// eligible line's net lowered by floor(net × pct / 100). Returns the money
// taken off.
Result<int64_t> member_price(std::vector<Work> &w, const Tier &tier)
{
	int64_t off = 0;
	if (tier.discount_pct == 0)
		return off;
	for (auto &x : w) {
		if (!x.eligible)
			continue;
		auto take = mul_div_floor(x.net, tier.discount_pct, 1, 100);
		if (!take)
			return overflow("a line's member price");
		x.net -= *take;
		off += *take; // at most the basket's total, checked at parse
	}
	return off;
}

int64_t eligible_sum(const std::vector<Work> &w)
{
	int64_t s = 0;
	for (const auto &x : w)
		if (x.eligible)
			s += x.net; // bounded by the basket total, checked at parse
	return s;
}

// Spreads `amount` of money over the eligible lines in proportion to their
// net, by largest remainder: floor shares first, then one unit each to the
// largest remainders, ties to the earlier line.
Status spread(std::vector<Work> &w, int64_t amount)
{
	int64_t total = eligible_sum(w);
	assert(amount >= 0 && amount <= total);
	if (amount == 0)
		return Status::ok();
	struct Share {
		size_t index;
		int64_t rem;
	};
	std::vector<Share> shares;
	int64_t given = 0;
	for (size_t i = 0; i < w.size(); i++) {
		if (!w[i].eligible)
			continue;
		auto qr = mul_div(amount, w[i].net, 1, total);
		if (!qr)
			return overflow("the redemption's share of a line");
		w[i].net -= qr->quot;
		given += qr->quot;
		shares.push_back(Share{i, qr->rem});
	}
	int64_t left = amount - given;
	assert(left >= 0 && static_cast<size_t>(left) <= shares.size());
	std::stable_sort(shares.begin(), shares.end(),
			 [](const Share &a, const Share &b) { return a.rem > b.rem; });
	for (int64_t k = 0; k < left; k++) {
		Work &x = w[shares[static_cast<size_t>(k)].index];
		assert(x.net > 0);
		x.net -= 1;
	}
	return Status::ok();
}

// The reward's one unit off the first line of its sku; returns the money
// actually taken off (a line discounted below one unit price gives less).
int64_t give_reward(std::vector<Work> &w, size_t line)
{
	Work &x = w[line];
	int64_t take = std::min(x.line->unit_price, x.net);
	x.net -= take;
	x.given = 1;
	return take;
}

std::optional<size_t> first_line_with(const Basket &b, const std::string &sku)
{
	for (size_t i = 0; i < b.lines.size(); i++)
		if (b.lines[i].sku == sku)
			return i;
	return std::nullopt;
}

// The stamps the member holds on card `id` before the checkout (none when
// the card is missing).
int64_t held_stamps(const Member &m, const std::string &id)
{
	auto it = m.stamps.find(id);
	return it == m.stamps.end() ? 0 : it->second;
}

// The stamps a card gives on `w`: its eligible units not given away.
Result<int64_t> stamp_units(const StampCard &card, const std::vector<Work> &w)
{
	int64_t units = 0;
	for (const auto &x : w) {
		if (!x.eligible || !card.counts(x.line->sku, x.line->category))
			continue;
		auto u = add_checked(units, x.qty - x.given);
		if (!u)
			return overflow("a stamp card's stamps");
		units = *u;
	}
	return units;
}

bool in_segments(const Campaign &c, const std::vector<std::string> &segments)
{
	if (!c.segments)
		return true;
	return std::any_of(c.segments->begin(), c.segments->end(), [&](const std::string &name) {
		return std::find(segments.begin(), segments.end(), name) != segments.end();
	});
}

bool applies(const Campaign &c, const Timestamp &at, const std::string &tier, int64_t spend,
	     const std::vector<std::string> &segments)
{
	if (!in_segments(c, segments))
		return false;
	Days day = at.local_date();
	if (c.from && day < *c.from)
		return false;
	if (c.until && day >= *c.until)
		return false;
	if (!(c.weekdays & (1u << at.local_weekday())))
		return false;
	if (c.tiers && std::find(c.tiers->begin(), c.tiers->end(), tier) == c.tiers->end())
		return false;
	if (c.min_spend && spend < *c.min_spend)
		return false;
	return true;
}

// floor(spend × earn.points × (pct − 100) / (earn.per × 100)); the two
// floors in a row equal the one floor of the whole quotient.
std::optional<int64_t> extra(const Earn &earn, int64_t spend, int64_t pct)
{
	auto q = mul_div_floor(spend, earn.points, pct - 100, earn.per);
	if (!q)
		return std::nullopt;
	return *q / 100;
}

// Step 4 and 5 of the accrual: the breakdown of the points earned on `w`,
// with a part for each membership of `running` (ids), after the campaigns.
Result<std::vector<Part>> earn(const Program &p, const Tier &tier, const std::vector<Work> &w,
			       const Timestamp &at, const std::vector<std::string> &segments,
			       const std::vector<std::string> &running)
{
	const int64_t s = eligible_sum(w);
	std::vector<Part> parts;
	auto base = mul_div_floor(s, p.earn.points, 1, p.earn.per);
	if (!base)
		return overflow("the base points");
	parts.push_back(Part{"base", *base});
	auto tp = extra(p.earn, s, tier.multiplier_pct);
	if (!tp)
		return overflow("the tier points");
	if (*tp > 0)
		parts.push_back(Part{"tier:" + tier.name, *tp});

	for (const auto &c : p.campaigns) {
		if (!applies(c, at, tier.name, s, segments))
			continue;
		int64_t pts = 0;
		switch (c.kind) {
		case CampaignKind::multiplier: {
			auto v = extra(p.earn, s, c.multiplier_pct);
			if (!v)
				return overflow("a multiplier campaign's points");
			pts = *v;
			break;
		}
		case CampaignKind::category_multiplier: {
			int64_t sc = 0;
			for (const auto &x : w)
				if (x.eligible && x.line->category == c.category)
					sc += x.net;
			auto v = extra(p.earn, sc, c.multiplier_pct);
			if (!v)
				return overflow("a category campaign's points");
			pts = *v;
			break;
		}
		case CampaignKind::spend_bonus:
			// Its min_spend is the threshold, already checked as a filter.
			pts = c.points;
			break;
		case CampaignKind::item_bonus: {
			int64_t units = 0;
			for (const auto &x : w) {
				if (!x.eligible)
					continue;
				bool match = c.category.empty() ? x.line->sku == c.sku
								: x.line->category == c.category;
				if (match)
					units += x.qty - x.given;
			}
			auto v = mul_checked(c.points, units);
			if (!v)
				return overflow("an item bonus");
			pts = *v;
			break;
		}
		}
		if (c.cap && pts > *c.cap)
			pts = *c.cap;
		if (pts > 0)
			parts.push_back(Part{c.id, pts});
	}
	for (const auto &ms : p.memberships) {
		if (std::find(running.begin(), running.end(), ms.id) == running.end())
			continue;
		auto v = extra(p.earn, s, ms.multiplier_pct);
		if (!v)
			return overflow("a membership's points");
		if (*v > 0)
			parts.push_back(Part{"membership:" + ms.id, *v});
	}
	return parts;
}

// The ids of the program's memberships that run on `day`, in program order.
std::vector<std::string> running_on(const Program &p, const std::map<std::string, MembershipRun> &runs, Days day)
{
	std::vector<std::string> out;
	for (const auto &ms : p.memberships) {
		auto it = runs.find(ms.id);
		if (it != runs.end() && it->second.runs_on(day))
			out.push_back(ms.id);
	}
	return out;
}

Result<int64_t> sum_parts(const std::vector<Part> &parts)
{
	int64_t total = 0;
	for (const auto &part : parts) {
		auto t = add_checked(total, part.points);
		if (!t)
			return overflow("the points earned");
		total = *t;
	}
	return total;
}

Status declined(Code code, std::string message) { return Status(code, std::move(message)); }

} // namespace

const std::pair<const std::string, MembershipRun> *latest_run(const std::map<std::string, MembershipRun> &runs)
{
	const std::pair<const std::string, MembershipRun> *last = nullptr;
	for (const auto &x : runs)
		if (!last || x.second.until > last->second.until)
			last = &x;
	return last;
}

Result<MembershipRun> membership_bought(const std::optional<MembershipRun> &run, Days day, int64_t days)
{
	MembershipRun out{day, day};
	if (run && run->runs_on(day))
		out = *run;
	else if (run && run->from > day)
		// A run that starts later (a receipt from before it, pushed late):
		// the days bought run from this receipt's day, the later run's
		// after them, so that the purchase counts for its receipt.
		out.until = day + (run->until - run->from);
	if (days < 0 || days > membership_ahead_max || out.until - day > membership_ahead_max - days)
		return Status(Code::bad_basket, fmt::format("the membership would run past {} days after the "
							    "receipt's day",
							    membership_ahead_max));
	out.until += days;
	return out;
}

Result<Checkout> checkout(const Program &p, const Basket &b, const Member &m, const Redemption &r)
{
	const Tier &tier = p.tier_for(m.qualifying_spend);
	std::vector<int64_t> all(b.lines.size());
	for (size_t i = 0; i < b.lines.size(); i++)
		all[i] = b.lines[i].qty;
	auto lines = work_lines(p, b, all);
	if (!lines)
		return lines.status();
	std::vector<Work> w = std::move(lines).value();

	Checkout out;
	out.tier = tier.name;
	// The member price comes off before anything else counts (a blocked
	// card has none).
	if (!m.blocked) {
		auto off = member_price(w, tier);
		if (!off)
			return off.status();
		out.member_discount = *off;
	}
	out.eligible_before = eligible_sum(w);
	for (const auto &c : p.campaigns)
		if (c.segments)
			for (const auto &name : *c.segments)
				if (std::find(m.segments.begin(), m.segments.end(), name) != m.segments.end() &&
				    std::find(out.segments.begin(), out.segments.end(), name) == out.segments.end())
					out.segments.push_back(name);

	// Bad requests first: they are the caller's mistakes, not the member's.
	const Reward *reward = nullptr;
	const StampCard *card = nullptr;
	if (r.kind == RedeemKind::stamp_card) {
		card = p.find_stamp_card(r.reward);
		if (!card)
			return Status(Code::unknown_stamp_card,
				      fmt::format("stamp card \"{}\" is not in program {} v{}", r.reward, p.id,
						  p.version));
	}
	if (r.kind == RedeemKind::points && r.points <= 0)
		return Status(Code::bad_argument,
			      fmt::format("points to redeem must be positive, got {}", r.points));
	if (r.kind == RedeemKind::reward) {
		reward = p.find_reward(r.reward);
		if (!reward)
			return Status(Code::unknown_reward,
				      fmt::format("reward \"{}\" is not in program {} v{}", r.reward,
						  p.id, p.version));
	}

	// Memberships the basket buys (spec 2): not by a blocked card, so that
	// the POS does not sell it.
	const Days day = b.at.local_date();
	if (m.known)
		out.memberships = m.memberships;
	out.memberships_before = running_on(p, out.memberships, day);
	for (const auto &l : b.lines) {
		const Membership *ms = p.membership_of_sku(l.sku);
		if (!ms)
			continue;
		if (m.blocked)
			return declined(Code::declined_blocked,
					fmt::format("the card is blocked: it cannot buy membership \"{}\"", ms->id));
		auto days = mul_checked(ms->days, l.qty);
		if (!days)
			return overflow("a membership's days");
		auto it = out.memberships.find(ms->id);
		auto run = membership_bought(it == out.memberships.end() ? std::nullopt
									 : std::optional<MembershipRun>(it->second),
					     day, *days);
		if (!run)
			return run.status();
		out.memberships[ms->id] = *run;
		out.memberships_bought.push_back(MembershipDays{ms->id, *days});
	}

	// The checks of "Balance and redemption", in the spec's order.
	int64_t points = r.kind == RedeemKind::points ? r.points : reward ? reward->cost : 0;
	int64_t money = 0;
	std::optional<size_t> reward_line;
	if (r.kind != RedeemKind::none) {
		if (m.blocked)
			return declined(Code::declined_blocked, "the card is blocked: it cannot redeem");
		if (!m.known)
			return declined(Code::declined_balance_unknown,
					"the card's balance is not known on this terminal "
					"(not in the last sync, not enrolled here): it can earn, not redeem");
		if (card) {
			// Stamp cards (spec 2): the basket's local day is the
			// terminal's bound, one stamp reward a day.
			reward_line = first_line_with(b, card->reward_sku);
			if (!reward_line)
				return declined(Code::declined_reward_not_in_basket,
						fmt::format("stamp card \"{}\" needs sku {} in the basket", card->id,
							    card->reward_sku));
			const int64_t have = held_stamps(m, card->id);
			if (have < card->stamps)
				return declined(Code::declined_insufficient_stamps,
						fmt::format("stamp card \"{}\": {} stamps needed, {} available", card->id,
							    card->stamps, std::max<int64_t>(have, 0)));
			if (m.stamp_reward_today)
				return declined(Code::declined_stamp_daily_limit,
						fmt::format("stamp card \"{}\": a stamp reward was taken on this terminal "
							    "today already",
							    card->id));
		} else if (r.kind == RedeemKind::points) {
			if (points < p.redeem.min_points)
				return declined(Code::declined_min_points,
						fmt::format("{} points is below the minimum of {}", points,
							    p.redeem.min_points));
			auto limit = mul_div_floor(out.eligible_before, p.redeem.max_pct, 1, 100);
			assert(limit);
			auto d = mul_checked(points, p.redeem.point_value);
			if (!d || *d > *limit)
				return declined(Code::declined_max_pct,
						fmt::format("{} points are worth more than {}% of the "
							    "eligible spend ({} of {} at most)",
							    points, p.redeem.max_pct, *limit,
							    out.eligible_before));
			money = *d;
		} else {
			reward_line = first_line_with(b, reward->sku);
			if (!reward_line)
				return declined(Code::declined_reward_not_in_basket,
						fmt::format("reward \"{}\" needs sku {} in the basket",
							    reward->id, reward->sku));
		}
		if (!card && points > m.balance)
			return declined(Code::declined_insufficient_points,
					fmt::format("{} points needed, {} available", points,
						    std::max<int64_t>(m.balance, 0)));
		auto today = add_checked(m.redeemed_today, points);
		if (!card && (!today || *today > p.redeem.offline_daily_cap))
			return declined(Code::declined_daily_cap,
					fmt::format("{} points today would pass the offline daily cap of "
						    "{} ({} already redeemed)",
						    points, p.redeem.offline_daily_cap,
						    m.redeemed_today));
	}

	// Step 2: the redemption lowers the eligible lines' net.
	if (r.kind == RedeemKind::points)
		LOY_TRY(spread(w, money));
	else if (reward_line)
		money = give_reward(w, *reward_line);
	out.redeemed = points;
	out.discount = money;
	out.eligible = eligible_sum(w);

	// Stamps: one per eligible unit sold (a blocked card gets none), and
	// the reward's stamps used.
	if (!m.blocked) {
		for (const auto &sc : p.stamp_cards) {
			auto earned = stamp_units(sc, w);
			if (!earned)
				return earned.status();
			const int64_t used = card == &sc ? sc.stamps : 0;
			if (*earned == 0 && used == 0)
				continue;
			StampChange change{sc.id, *earned, used, std::nullopt};
			if (m.known) {
				auto after = add_checked(held_stamps(m, sc.id), *earned - used);
				if (!after)
					return overflow("a stamp card's balance");
				change.balance = *after;
			}
			out.stamps.push_back(std::move(change));
		}
	}

	if (m.blocked) {
		// A blocked card earns nothing; the sale itself still goes through.
		out.breakdown.push_back(Part{"base", 0});
		return out;
	}
	// A membership bought on this receipt already counts for its lines.
	auto parts = earn(p, tier, w, b.at, m.segments, running_on(p, out.memberships, day));
	if (!parts)
		return parts.status();
	auto total = sum_parts(*parts);
	if (!total)
		return total.status();
	out.breakdown = std::move(parts).value();
	out.earned = *total;
	return out;
}

Status check_donation(const Program &p, const Member &m, std::string_view charity, int64_t points)
{
	if (!p.find_charity(charity))
		return Status(Code::unknown_charity,
			      fmt::format("charity \"{}\" is not in program {} v{}", charity, p.id, p.version));
	if (points <= 0)
		return Status(Code::bad_argument, fmt::format("points to donate must be positive, got {}", points));
	if (m.blocked)
		return declined(Code::declined_blocked, "the card is blocked: it cannot donate");
	if (!m.known)
		return declined(Code::declined_balance_unknown,
				"the card's balance is not known on this terminal (not in the last sync, not "
				"enrolled here): it cannot donate");
	if (points > m.balance)
		return declined(Code::declined_insufficient_points,
				fmt::format("{} points to give, {} available", points, std::max<int64_t>(m.balance, 0)));
	auto today = add_checked(m.redeemed_today, points);
	if (!today || *today > p.redeem.offline_daily_cap)
		return declined(Code::declined_daily_cap,
				fmt::format("{} points today would pass the offline daily cap of {} ({} already "
					    "redeemed or given)",
					    points, p.redeem.offline_daily_cap, m.redeemed_today));
	return Status::ok();
}

Result<Refund> refund(const Program &p, const Receipt &rc, const std::vector<ReturnLine> &units)
{
	const Basket &b = rc.basket;
	std::vector<int64_t> returned = rc.returned;
	if (returned.empty())
		returned.assign(b.lines.size(), 0);
	if (returned.size() != b.lines.size())
		return Status(Code::internal, "receipt: returned units do not match its lines");

	int64_t left_before = 0;
	for (size_t i = 0; i < b.lines.size(); i++)
		left_before += b.lines[i].qty - returned[i];
	if (left_before == 0)
		return declined(Code::declined_already_refunded,
				fmt::format("receipt {}: every unit was already refunded", b.receipt_id));

	if (units.empty()) {
		for (size_t i = 0; i < b.lines.size(); i++)
			returned[i] = b.lines[i].qty;
	}
	for (const auto &u : units) {
		if (u.qty <= 0)
			return Status(Code::bad_refund,
				      fmt::format("refund of {}: units must be positive, got {}", u.sku,
						  u.qty));
		int64_t sold = 0, back = 0;
		for (size_t i = 0; i < b.lines.size(); i++)
			if (b.lines[i].sku == u.sku) {
				sold += b.lines[i].qty;
				back += returned[i];
			}
		if (sold == 0)
			return Status(Code::bad_refund,
				      fmt::format("sku {} is not on receipt {}", u.sku, b.receipt_id));
		if (u.qty > sold)
			return Status(Code::bad_refund,
				      fmt::format("{} units of {} returned, receipt {} sold {}", u.qty,
						  u.sku, b.receipt_id, sold));
		if (u.qty > sold - back)
			return declined(Code::declined_already_refunded,
					fmt::format("{} units of {} returned, only {} of {} sold are "
						    "not refunded yet",
						    u.qty, u.sku, sold - back, sold));
		int64_t todo = u.qty;
		for (size_t i = 0; i < b.lines.size() && todo > 0; i++) {
			if (b.lines[i].sku != u.sku)
				continue;
			int64_t take = std::min(todo, b.lines[i].qty - returned[i]);
			returned[i] += take;
			todo -= take;
		}
		assert(todo == 0);
	}

	std::vector<int64_t> full(b.lines.size()), remaining(b.lines.size());
	bool complete = true;
	for (size_t i = 0; i < b.lines.size(); i++) {
		full[i] = b.lines[i].qty;
		remaining[i] = b.lines[i].qty - returned[i];
		complete = complete && remaining[i] == 0;
	}

	int64_t earned_after = 0, eligible_after = 0, returned_total = rc.redeemed;
	std::map<std::string, int64_t> stamps_after; // of the units that stay
	const StampCard *used_card = nullptr;
	if (rc.redemption.kind == RedeemKind::stamp_card) {
		used_card = p.find_stamp_card(rc.redemption.reward);
		if (!used_card)
			return Status(Code::internal, fmt::format("receipt {}: stamp card {} is not in program v{}",
								  b.receipt_id, rc.redemption.reward, p.version));
	}
	if (!complete) {
		auto all = work_lines(p, b, full);
		if (!all)
			return all.status();
		auto rest = work_lines(p, b, remaining);
		if (!rest)
			return rest.status();
		std::vector<Work> whole = std::move(all).value();
		std::vector<Work> w = std::move(rest).value();
		// The receipt's tier, for its member price and its points.
		const Tier *tier = nullptr;
		if (!rc.blocked) {
			tier = p.find_tier(rc.tier);
			if (!tier)
				return Status(Code::internal,
					      fmt::format("receipt {}: tier {} is not in program v{}",
							  b.receipt_id, rc.tier, p.version));
			LOY_TRY(member_price(whole, *tier).status());
			LOY_TRY(member_price(w, *tier).status());
		}
		const int64_t s0 = eligible_sum(whole);
		const int64_t s0_rest = eligible_sum(w);
		returned_total = 0;
		if (s0 > 0) {
			auto q = mul_div_floor(rc.redeemed, s0 - s0_rest, 1, s0);
			if (!q)
				return overflow("the redeemed points given back");
			returned_total = *q;
		}
		// The redemption that stays on the remaining units.
		if (rc.redemption.kind == RedeemKind::points) {
			auto money = mul_checked(rc.redeemed - returned_total, p.redeem.point_value);
			if (!money)
				return overflow("the redemption that stays");
			LOY_TRY(spread(w, std::min(*money, s0_rest)));
		} else if (rc.redemption.kind == RedeemKind::reward) {
			const Reward *reward = p.find_reward(rc.redemption.reward);
			if (!reward)
				return Status(Code::internal,
					      fmt::format("receipt {}: reward {} is not in program v{}",
							  b.receipt_id, rc.redemption.reward, p.version));
			auto line = first_line_with(b, reward->sku);
			if (line && remaining[*line] > 0)
				give_reward(w, *line);
		} else if (used_card) {
			// The given unit stays while its line keeps one: the sold
			// units go back first.
			auto line = first_line_with(b, used_card->reward_sku);
			if (line && remaining[*line] > 0)
				give_reward(w, *line);
		}
		eligible_after = eligible_sum(w);
		if (!rc.blocked)
			for (const auto &sc : rc.stamps) {
				const StampCard *c = p.find_stamp_card(sc.id);
				if (!c)
					return Status(Code::internal,
						      fmt::format("receipt {}: stamp card {} is not in program v{}",
								  b.receipt_id, sc.id, p.version));
				auto kept = stamp_units(*c, w);
				if (!kept)
					return kept.status();
				stamps_after[sc.id] = *kept;
			}
		if (tier) {
			// A membership runs for the rest if it ran before the receipt
			// or one of its units stays on it.
			std::vector<std::string> running = rc.memberships_before;
			for (size_t i = 0; i < b.lines.size(); i++) {
				const Membership *ms = p.membership_of_sku(b.lines[i].sku);
				if (ms && remaining[i] > 0 &&
				    std::find(running.begin(), running.end(), ms->id) == running.end())
					running.push_back(ms->id);
			}
			auto parts = earn(p, *tier, w, b.at, rc.segments, running);
			if (!parts)
				return parts.status();
			auto total = sum_parts(*parts);
			if (!total)
				return total.status();
			earned_after = *total;
		}
	}

	Refund out;
	out.points_reversed = std::max<int64_t>(0, rc.earned - earned_after - rc.reversed_so_far);
	out.points_returned = std::max<int64_t>(0, returned_total - rc.returned_so_far);
	out.returned = std::move(returned);
	out.eligible_after = eligible_after;
	out.complete = complete;
	for (const auto &sc : rc.stamps) {
		auto before = rc.stamps_reversed_so_far.find(sc.id);
		const int64_t reversed = std::max<int64_t>(
			0, sc.earned - stamps_after[sc.id] -
				   (before == rc.stamps_reversed_so_far.end() ? 0 : before->second));
		int64_t used_back = 0;
		if (sc.used > 0 && !rc.stamps_used_returned && used_card && used_card->id == sc.id) {
			auto line = first_line_with(b, used_card->reward_sku);
			if (!line || out.returned[*line] == b.lines[*line].qty)
				used_back = sc.used;
		}
		if (reversed > 0 || used_back > 0)
			out.stamps.push_back(StampChange{sc.id, reversed, used_back, std::nullopt});
	}
	// The membership units back now shorten it by their days.
	for (size_t i = 0; i < b.lines.size(); i++) {
		const Membership *ms = p.membership_of_sku(b.lines[i].sku);
		const int64_t back = out.returned[i] - (rc.returned.empty() ? 0 : rc.returned[i]);
		if (!ms || back <= 0)
			continue;
		auto days = mul_checked(ms->days, back);
		if (!days)
			return overflow("a membership's days");
		out.memberships.push_back(MembershipDays{ms->id, *days});
	}
	return out;
}

} // namespace loy
