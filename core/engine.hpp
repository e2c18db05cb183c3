// The rules engine: accrual with its breakdown, redemption checks, rewards and
// refunds (spec/program.md). Pure: balances, qualifying spend and what was
// redeemed today come in as inputs, so the terminal's ledger and the central
// server run the very same code.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/basket.hpp"
#include "core/program.hpp"
#include "base/status.hpp"

namespace loy {

// A paid membership's run (spec 2, "Paid membership"): local dates
// [from, until), days since 1970-01-01.
struct MembershipRun {
	Days from = 0;
	Days until = 0;
	bool runs_on(Days day) const { return from <= day && day < until; }
};

// Most days a membership may run past the day of the receipt that buys it.
inline constexpr int64_t membership_ahead_max = days_max;

// `days` bought on local day `day`: from the end of a run still going then,
// else from `day` (a run that starts later follows the days bought, its
// length kept). Runs past membership_ahead_max days ahead are refused.
Result<MembershipRun> membership_bought(const std::optional<MembershipRun> &run, Days day, int64_t days);

// The membership a member shows (checkout, balance): the run that ends
// last, running or not (ties: the first id); null for none.
const std::pair<const std::string, MembershipRun> *latest_run(const std::map<std::string, MembershipRun> &runs);

// What the caller knows of the member before this checkout.
struct Member {
	bool known = false;            // balance known: came in a sync or enrolled here
	bool blocked = false;          // blocked by the central server
	int64_t balance = 0;           // available now (pending points left out)
	int64_t qualifying_spend = 0;  // decides the tier
	int64_t redeemed_today = 0;    // by this member on this terminal, this local day
	std::vector<std::string> segments; // the centre's targeting; none for an unknown card
	// Stamps available per stamp card id (spec 2), known when `known` is;
	// a card missing here holds none. May be below zero.
	std::map<std::string, int64_t> stamps;
	bool stamp_reward_today = false; // took a stamp reward on this terminal, this local day
	// Memberships by id, known when `known` is; none: never had one.
	std::map<std::string, MembershipRun> memberships;
};

// Days of a membership bought (a checkout) or taken off (a refund).
struct MembershipDays {
	std::string id;
	int64_t days = 0;
};

enum class RedeemKind { none, points, reward, stamp_card };

struct Redemption {
	RedeemKind kind = RedeemKind::none;
	int64_t points = 0;            // RedeemKind::points
	std::string reward;            // RedeemKind::reward: the reward's id; stamp_card: the card's

	static Redemption none() { return {}; }
	static Redemption of_points(int64_t p) { return {RedeemKind::points, p, {}}; }
	static Redemption of_reward(std::string id) { return {RedeemKind::reward, 0, std::move(id)}; }
	static Redemption of_stamp_card(std::string id) { return {RedeemKind::stamp_card, 0, std::move(id)}; }
};

// What a checkout did to one stamp card of the member's.
struct StampChange {
	std::string id;
	int64_t earned = 0;
	int64_t used = 0;
	std::optional<int64_t> balance; // after the checkout; unknown card: none
};

struct Part {
	std::string rule;              // "base", "tier:<name>" or a campaign id
	int64_t points = 0;
};

struct Checkout {
	std::string tier;
	int64_t earned = 0;
	int64_t redeemed = 0;          // points taken
	int64_t discount = 0;          // money taken off by the redemption
	int64_t member_discount = 0;   // money taken off by the tier's member price
	int64_t eligible_before = 0;   // S0: eligible spend before the redemption
	int64_t eligible = 0;          // S: eligible spend, what earns points
	std::vector<Part> breakdown;   // sums to `earned`; `base` always first
	// The member's segments that the program's campaigns name: what a
	// refund needs to recompute the receipt as it was.
	std::vector<std::string> segments;
	// The stamp cards it touched (earned or used stamps), in program order.
	std::vector<StampChange> stamps;
	// Memberships: those running on the basket's day before it, the days
	// its lines bought (in line order), and the member's runs after it.
	std::vector<std::string> memberships_before;
	std::vector<MembershipDays> memberships_bought;
	std::map<std::string, MembershipRun> memberships;
};

// Accrual and redemption of one basket. Declines come back as a Status whose
// kind is Kind::declined and whose code names the rule.
Result<Checkout> checkout(const Program &program, const Basket &basket, const Member &member,
			  const Redemption &redemption);

// A donation of `points` to charity `charity` of the program (spec 2,
// "Charity donations"): declined, never clipped, like a redemption for
// money, without min_points; m.redeemed_today counts the member's
// redemptions and donations on this terminal that local day.
Status check_donation(const Program &program, const Member &m, std::string_view charity, int64_t points);

// What the ledger keeps of an accepted checkout to compute its refunds.
struct Receipt {
	Basket basket;
	std::string tier;
	std::vector<std::string> segments; // Checkout::segments
	bool blocked = false;          // the member earned nothing on it
	Redemption redemption;
	int64_t earned = 0;
	int64_t redeemed = 0;
	int64_t eligible = 0;          // S of the units not returned yet
	std::vector<int64_t> returned; // units returned so far, per basket line
	int64_t reversed_so_far = 0;   // points taken back by earlier refunds
	int64_t returned_so_far = 0;   // redeemed points given back by earlier refunds
	// Stamps: what the checkout did (earned, used), and what earlier
	// refunds took back (earned) and gave back (used), per card id.
	std::vector<StampChange> stamps;
	std::map<std::string, int64_t> stamps_reversed_so_far;
	bool stamps_used_returned = false;
	std::vector<std::string> memberships_before; // Checkout::memberships_before
};

struct ReturnLine {
	std::string sku;
	int64_t qty = 0;
};

struct Refund {
	int64_t points_reversed = 0;   // earned points taken back now
	int64_t points_returned = 0;   // redeemed points given back now
	std::vector<int64_t> returned; // units returned after this refund, per line
	int64_t eligible_after = 0;    // S of the units that stay (qualifying spend)
	bool complete = false;         // every unit is back
	// Per stamp card touched: `earned` the stamps taken back now, `used`
	// the stamps of its reward given back now.
	std::vector<StampChange> stamps;
	// Days taken off each membership whose units came back now.
	std::vector<MembershipDays> memberships;
};

// A refund of `units` (empty: every unit not yet returned) of a receipt
// accepted under `program` (the same version).
Result<Refund> refund(const Program &program, const Receipt &receipt,
		      const std::vector<ReturnLine> &units);

} // namespace loy
