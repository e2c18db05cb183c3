// The rules engine: accrual with its breakdown, redemption checks, rewards and
// refunds (spec/program.md). Pure: balances, qualifying spend and what was
// redeemed today come in as inputs, so the terminal's ledger and the central
// server run the very same code.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/basket.hpp"
#include "core/program.hpp"
#include "base/status.hpp"

namespace loy {

// What the caller knows of the member before this checkout.
struct Member {
	bool known = false;            // balance known: came in a sync or enrolled here
	bool blocked = false;          // blocked by the central server
	int64_t balance = 0;           // available now (pending points left out)
	int64_t qualifying_spend = 0;  // decides the tier
	int64_t redeemed_today = 0;    // by this member on this terminal, this local day
	std::vector<std::string> segments; // the centre's targeting; none for an unknown card
};

enum class RedeemKind { none, points, reward };

struct Redemption {
	RedeemKind kind = RedeemKind::none;
	int64_t points = 0;            // RedeemKind::points
	std::string reward;            // RedeemKind::reward: the reward's id

	static Redemption none() { return {}; }
	static Redemption of_points(int64_t p) { return {RedeemKind::points, p, {}}; }
	static Redemption of_reward(std::string id) { return {RedeemKind::reward, 0, std::move(id)}; }
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
};

// A refund of `units` (empty: every unit not yet returned) of a receipt
// accepted under `program` (the same version).
Result<Refund> refund(const Program &program, const Receipt &receipt,
		      const std::vector<ReturnLine> &units);

} // namespace loy
