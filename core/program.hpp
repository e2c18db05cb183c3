// The program document of spec/program.md as a typed, validated value. A
// document either parses whole or is refused whole with a message naming the
// field, so the version in force stays in force.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"
#include "base/timeutil.hpp"

namespace loy {

// Limits on what a program document may hold. They bound memory and work per
// checkout, and keep every product of the accrual formulas far from 2^127.
inline constexpr size_t program_json_bytes_max = 1 << 20;
inline constexpr size_t program_tiers_max = 64;
inline constexpr size_t program_campaigns_max = 1024;
inline constexpr size_t program_rewards_max = 1024;
inline constexpr size_t program_charities_max = 256;
inline constexpr size_t charity_name_bytes_max = 200;
inline constexpr size_t program_stamp_cards_max = 64;
inline constexpr size_t program_memberships_max = 64;
inline constexpr size_t program_partners_max = 256;
inline constexpr size_t program_challenges_max = 64;
inline constexpr size_t partner_stores_max = 10000;
inline constexpr int64_t partner_rate_max = 1000000; // minor units a point
inline constexpr int64_t stamps_max = 1000000;     // stamps a card's reward may need
inline constexpr size_t program_excludes_max = 4096;
inline constexpr size_t name_length_max = 64;  // ids, skus, categories, tier names
inline constexpr int64_t pct_max = 100000;      // ×1000 is more than any program means
inline constexpr int64_t days_max = 36600;      // expiry and pending: a century
inline constexpr int card_length_max = 32;
// Program versions go up to 2^53 - 1: every JSON reader (a JavaScript
// dashboard, a POS in C#) holds that exactly; room for a version per second
// for 285 million years, or a date-time stamp like 202612011530.
inline constexpr int64_t program_version_max = (int64_t{1} << 53) - 1;
// The newest specification (program.md) this build follows. A document
// needing a newer one, or holding a key no specification up to this one
// defines, is refused: a till never applies a program it cannot follow.
inline constexpr int program_spec_max = 2;
inline constexpr size_t program_segments_max = 64; // names a campaign targets

enum class CardCheck { luhn, ean13, none };

struct CardRule {
	CardCheck check = CardCheck::luhn;
	int min_length = 8;
	int max_length = 19;
};

struct Earn {
	int64_t points = 1;
	int64_t per = 100;
};

struct Tier {
	std::string name;
	int64_t spend = 0;
	int64_t multiplier_pct = 100;
	int64_t discount_pct = 0;         // member price (spec 2): off each eligible line
};

enum class CampaignKind { multiplier, category_multiplier, spend_bonus, item_bonus };

struct Campaign {
	std::string id;
	CampaignKind kind = CampaignKind::multiplier;
	int64_t multiplier_pct = 100;     // multiplier, category_multiplier
	std::string category;             // category_multiplier; item_bonus when named
	std::string sku;                  // item_bonus
	int64_t points = 0;               // spend_bonus, item_bonus
	// Filters: all must hold for the campaign to apply.
	std::optional<Days> from;         // local date, inclusive
	std::optional<Days> until;        // local date, exclusive
	uint8_t weekdays = 0x7f;          // bit 0 = Monday … bit 6 = Sunday; 0: no day
	// Absent: every tier. Present, a member's tier must be in it, so an
	// empty list matches no one (like an empty `days`).
	std::optional<std::vector<std::string>> tiers;
	// Absent: every member. Present (spec 2), the member must be in one of
	// these segments; an empty list matches no one.
	std::optional<std::vector<std::string>> segments;
	std::optional<int64_t> min_spend; // spend_bonus: required, its threshold
	std::optional<int64_t> cap;       // most points it adds to one receipt
};

struct Redeem {
	int64_t point_value = 1;          // money per point, minor units
	int64_t min_points = 0;
	int64_t max_pct = 100;            // of the eligible spend
	int64_t offline_daily_cap = 0;
};

struct Reward {
	std::string id;
	int64_t cost = 0;                 // points
	std::string sku;
};

// A charity members give points to at the till (spec 2, "Charity donations").
struct Charity {
	std::string id;
	std::string name;
};

// A stamp card (spec 2, "Stamp cards"): each eligible unit sold of `sku`
// (or of `category` when it names one) gives a stamp; `stamps` of them buy
// one unit of `reward_sku`.
struct StampCard {
	std::string id;
	std::string sku;                  // one of sku or category is set
	std::string category;
	int64_t stamps = 1;
	std::string reward_sku;
	std::optional<int64_t> expiry_days; // run by the central server; absent: never
	bool counts(const std::string &line_sku, const std::string &line_category) const
	{
		return category.empty() ? line_sku == sku : line_category == category;
	}
};

// A paid membership (spec 2, "Paid membership"): a basket line of `sku`
// buys `days` a unit; while it runs the member earns as under a multiplier
// of `multiplier_pct`.
struct Membership {
	std::string id;
	std::string sku;
	int64_t days = 1;
	int64_t multiplier_pct = 100;
};

// Referral (spec 2, "Referral (central)"): decided by the central server;
// the terminal records who referred a card at its enrolment.
struct Referral {
	int64_t referrer_points = 0;
	int64_t referee_points = 0;
	int64_t min_spend = 0;
	int64_t window_days = 1;
	std::optional<int64_t> max_per_referrer; // absent: no limit
};

// A coalition partner (spec 2, "Coalition partners (central)"): the stores
// it owns, what it pays a point its customers earn there (`issue_cost`) and
// what it is paid a point they spend there (`redeem_credit`), in minor units.
struct Partner {
	std::string id;
	std::string name;
	std::vector<std::string> stores;
	int64_t issue_cost = 0;
	int64_t redeem_credit = 0;
};

// A challenge (spec 2, "Challenges (central)"), decided by the central
// server: in each window of `window_days` from `from` (absent: one window)
// to `until` (exclusive), a member whose receipts reach `count` earns
// `points` once.
enum class ChallengeKind { visits, categories, spend };
struct Challenge {
	std::string id;
	ChallengeKind kind = ChallengeKind::visits;
	int64_t count = 1;
	int64_t points = 0;
	int64_t min_spend = 1; // visits: a day counts with a receipt of S >= min_spend
	Days from = 0, until = 0;
	std::optional<int64_t> window_days;
	// The first day of the window holding `day`; none outside [from, until).
	std::optional<Days> window_of(Days day) const
	{
		if (day < from || day >= until)
			return std::nullopt;
		return window_days ? from + (day - from) / *window_days * *window_days : from;
	}
	// The day after the window starting at `start`'s last (the last ends at until).
	Days window_end(Days start) const { return window_days ? std::min(until, start + *window_days) : until; }
};

struct Program {
	int spec = 1;                     // the specification it needs
	std::string id;
	int64_t version = 0;
	std::string currency;
	CardRule card;
	Earn earn;
	std::vector<std::string> exclude_categories;
	std::vector<std::string> exclude_skus;
	std::vector<Tier> tiers;          // sorted by spend, at least one
	std::vector<Campaign> campaigns;
	Redeem redeem;
	std::vector<Reward> rewards;
	std::vector<Charity> charities;
	std::vector<StampCard> stamp_cards;
	std::vector<Membership> memberships;
	std::optional<Referral> referral;
	std::vector<Partner> partners;
	std::vector<Challenge> challenges;
	std::optional<int64_t> expiry_days; // absent or 0 in the document: never expire
	int64_t pending_days = 0;

	bool excluded(std::string_view sku, std::string_view category) const;
	const Tier &tier_for(int64_t qualifying_spend) const;
	const Tier *find_tier(std::string_view name) const;
	const Reward *find_reward(std::string_view reward_id) const;
	const Charity *find_charity(std::string_view charity_id) const;
	const StampCard *find_stamp_card(std::string_view card_id) const;
	const Membership *find_membership(std::string_view membership_id) const;
	// The partner that owns `store`; none: the program owner's.
	const Partner *partner_of_store(std::string_view store) const;
	// The membership a line of `sku` buys, if any.
	const Membership *membership_of_sku(std::string_view sku) const;
};

Result<Program> parse_program(std::string_view json_text);

// Minor-unit exponent of an ISO 4217 currency (EUR 2, HUF 2, JPY 0, VND 0,
// BHD 3), for display only: the engine never needs it.
int currency_exponent(std::string_view currency) noexcept;

// "EUR 13.50", "EUR -0.05", "JPY 1350": for receipts and displays.
std::string format_money(int64_t amount, std::string_view currency);

} // namespace loy
