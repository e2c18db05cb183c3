// Fraud signals (cli.md v2, `fraud`): the rules' thresholds, read from the
// centre's configuration, and the flags they raise. The store computes the
// flags (Store::fraud); this header holds what both it and the programs
// need of them.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "base/status.hpp"

namespace loy::central {

// The configuration file in the data dir: {"fraud": {RULE: {...}}}.
inline constexpr const char *central_config_file = "central.json";
inline constexpr size_t central_config_bytes_max = 64 * 1024;

// Each rule's threshold and window, the defaults cli.md gives, and whether
// a card it flags is blocked at once (`"block": true`; off by default).
struct FraudRules {
	// till_velocity: more than `receipts` receipts of one card at one
	// terminal within `minutes` of their `at` (a cashier's own card).
	int64_t till_receipts = 20, till_minutes = 60;
	// redeem_spread: redemptions of one card at `stores` or more stores on
	// one local day.
	int64_t spread_stores = 3;
	// refund_loop: `receipts` or more receipts of one card that earned
	// points and were refunded in full within `days` of their `at`.
	int64_t loop_receipts = 3, loop_days = 7;
	// referral_burst: `cards` or more new cards referred by one referrer
	// within `hours`.
	int64_t burst_cards = 5, burst_hours = 24;
	// negative_balance: a balance or a stamp count driven below zero by
	// offline spending (raised as the centre applies the entries).
	std::set<std::string> block; // the rules whose flagged cards are blocked
};

// The rules' names, in the order the configuration and the docs list them.
inline constexpr const char *fraud_rule_names[] = {"till_velocity", "redeem_spread", "refund_loop", "referral_burst",
						   "negative_balance"};

// The rules from the configuration's text: every key named in an error
// (`fraud.till_velocity.receipts must be ...`), unknown keys refused;
// empty text gives the defaults.
Result<FraudRules> parse_fraud_rules(std::string_view config_text);

// One card's flag under one rule: the card masked, what was seen, and when
// first (UTC seconds).
struct FraudFlag {
	std::string card;
	std::string rule;
	std::string detail;
	int64_t first_seen = 0;
};

} // namespace loy::central
