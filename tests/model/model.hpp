// Independent reference model of the loyalty-points rules (spec: program.md).
// Test-only code. It must NOT share code with, or be derived from, core/.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace model {

struct Part {
    std::string rule;
    long long points;
};

// A paid membership's run (spec v2): local days since 1970-01-01, [from, until).
struct Run {
    long long from = 0;
    long long until = 0;
    bool operator==(const Run& o) const { return from == o.from && until == o.until; }
};

// Days of a membership bought by one basket line, or taken off by a refund.
struct MembershipDays {
    std::string id;
    long long days = 0;
};

// State of the member before the checkout.
struct Member {
    bool known = true;              // balance known (came in last sync or enrolled here)
    bool blocked = false;
    long long balance = 0;          // available balance
    long long qualifying_spend = 0;
    long long redeemed_today = 0;   // points already redeemed today by this member on this terminal
    std::vector<std::string> segments;  // segments from the last snapshot (an unknown card: none)
    // Stamp cards (spec v2): stamps available per card id (last sync plus unacknowledged
    // local changes; may be below zero). A card missing here holds none. Meaningful only
    // when `known` (an unknown card's stamps are not known).
    std::map<std::string, long long> stamps;
    bool stamp_reward_today = false;    // took a stamp-card reward on this terminal this local day
    // Paid memberships (spec v2), per membership id: the run [from, until) in local
    // days since 1970-01-01, `until` exclusive. A membership missing here was never
    // held. Meaningful only when `known`: an unknown card's memberships are none.
    std::map<std::string, Run> memberships;
};

// At most one of them set; all empty = no redemption.
struct Redeem {
    long long points = 0;
    std::string reward;             // reward id
    std::string stamp_card;         // stamp card id (spec v2): the card's reward
};

// What a checkout did to one stamp card of the program (spec v2).
struct StampMove {
    std::string id;
    long long earned = 0;           // stamps given: eligible units sold of its sku / category
    long long used = 0;             // stamps spent on its reward (its `stamps`, or 0)
    bool balance_known = false;     // the member's stamps are known
    long long balance = 0;          // after the checkout, when known
};

struct Checkout {
    // "" when accepted, else one of: blocked, balance_unknown, below_min_points,
    // over_max_pct, reward_not_in_basket, insufficient_points, daily_cap,
    // insufficient_stamps, stamp_daily_limit ("blocked" also for a blocked card whose
    // basket buys a membership)
    std::string decline;
    std::string tier;               // tier name used
    long long earned = 0;
    long long redeemed = 0;         // points taken
    long long discount = 0;         // money taken off by the redemption
    long long eligible_spend = 0;   // S
    long long member_discount = 0;  // money taken off by the tier's discount_pct (spec v2)
    std::vector<Part> breakdown;
    // One entry per stamp card of the program, in program order (also those it
    // left untouched: earned 0, used 0). Empty when declined.
    std::vector<StampMove> stamps;
    // Paid memberships (spec v2). Empty when declined.
    // The ids running on the basket's local date before it, in program order.
    std::vector<std::string> memberships_before;
    // One entry per basket line that buys a membership, in line order: days × qty.
    std::vector<MembershipDays> memberships_bought;
    // The member's runs after the checkout (those it held, as far as known, with
    // what the basket bought).
    std::map<std::string, Run> memberships;
};

// program and basket are the JSON documents of the spec (assumed valid).
// Throws std::invalid_argument on inputs outside the model's domain
// (unknown reward or stamp card id, two redemption forms set, overflow of 64 bits, ...).
Checkout checkout(const nlohmann::json& program, const nlohmann::json& basket, const Member& m,
                  const Redeem& r);

struct Refund {
    long long points_reversed = 0;
    long long points_returned = 0;
    // Stamp cards (spec v2), per card id: stamps taken back (one per returned unit
    // that was sold) and used stamps given back (when the stamp reward's line keeps
    // no unit). Cards that moved nothing may be missing.
    std::map<std::string, long long> stamps_reversed;
    std::map<std::string, long long> stamps_used_returned;
    // Paid memberships (spec v2), per membership id: days taken off now (the
    // membership's `days` per unit of its sku returned now). Zero moves may be missing.
    std::map<std::string, long long> membership_days;
};

// Charity donations (spec v2): a donation of `points` to charity `charity` by
// member `m`. Returns "" when accepted, else one of: unknown_charity (not one of
// the program's `charities`), bad_argument (points not positive), blocked,
// balance_unknown, insufficient_points, daily_cap. `m.redeemed_today` counts the
// member's redemptions (and donations) on this terminal that local day.
std::string donate(const nlohmann::json& program, const Member& m, const std::string& charity,
                   long long points);

// A refund of a receipt accepted by checkout(). `m` is the member as it was at
// checkout: its segments decide the campaigns of the recompute; the tier is
// original.tier (its discount_pct is applied again to the remaining units); the
// memberships that ran before it are original.memberships_before.
// returned_before: sku -> units already returned by earlier refunds (empty for the first).
// returned_now:    sku -> units returned now (empty = all remaining units).
// earlier:         sum of what earlier refunds of this receipt moved.
// Returns what this refund moves. Throws std::invalid_argument when more units
// are returned than were sold (or an unknown sku is named), std::domain_error
// when nothing is left to return.
Refund refund(const nlohmann::json& program, const nlohmann::json& basket, const Member& m,
              const Redeem& r, const Checkout& original,
              const std::map<std::string, long long>& returned_before,
              const std::map<std::string, long long>& returned_now, const Refund& earlier);

}  // namespace model
