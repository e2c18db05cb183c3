// What the terminal's operations answer, as values: the figures of
// spec/cli.md's objects, with no text format. The JSON is built from them at
// the C API's edge (api/results.hpp), in one place per object; a field that
// cli.md writes as null is an empty optional here.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/engine.hpp"

namespace loy {

// program load: the version in force after it.
struct ProgramLoaded {
	std::string program; // the program's id
	int64_t version = 0;
	std::string currency;
	bool loaded = false; // false: that version was installed already, with the same content
};

// donate: points given to a charity, and the member's balance after it.
struct Donated {
	std::string card; // masked
	std::string charity;
	int64_t points = 0;
	std::optional<int64_t> balance;
};

// enroll: the card is known on this terminal from now on.
struct Enrolled {
	std::string card;     // masked
	bool known = true;    // always, after an enrolment
	bool enrolled = false; // false: it was known already, nothing recorded
};

// checkout: what the receipt earned and redeemed, and the member after it.
// A member's membership as checkout and balance show it: the one whose
// run ends last, whether or not it runs on a given day.
struct MembershipShown {
	std::string id;
	std::string until; // YYYY-MM-DD, exclusive
};

struct CheckoutDone {
	std::string receipt_id;
	std::string card; // masked
	std::string tier;
	int64_t earned = 0;
	int64_t redeemed = 0;
	int64_t discount = 0;
	int64_t member_discount = 0;   // the tier's member price, money
	std::vector<Part> breakdown;   // in the engine's order
	std::optional<int64_t> balance; // none for an unknown card
	// The stamp cards it touched, in program order; a balance after it
	// when the member's stamps are known.
	std::vector<StampChange> stamps;
	std::optional<MembershipShown> membership; // after it; none: the member never had one
	bool replayed = false;          // the recorded answer to the same request
	int64_t pending = 0;            // of `earned`, not yet available
	int64_t eligible_spend = 0;
	std::string currency;
	std::string available_on;               // YYYY-MM-DD, the receipt's local date
	std::optional<std::string> expires_on;  // none: the program's points do not expire
	bool blocked = false;                   // the centre blocked the card (shown only when set)
};

// refund: the points it moved, and the member after it.
struct RefundDone {
	std::string receipt_id;
	int64_t points_reversed = 0;
	int64_t points_returned = 0;
	std::optional<int64_t> balance; // none for an unknown card
	bool complete = false;
	// A refund under the POS's own id names it, and whether this is the
	// recorded answer; a refund without one says neither.
	std::optional<std::string> refund_id;
	bool replayed = false;
};

// balance: a member as this terminal knows it.
struct BalanceView {
	std::string card; // masked
	bool known = false;
	std::string tier;
	std::optional<int64_t> balance; // none for an unknown card
	int64_t pending = 0;
	int64_t unsynced = 0;
	int64_t redeemable_today = 0;
	int64_t qualifying_spend = 0;
	bool blocked = false;
	std::optional<std::string> next_expiry; // YYYY-MM-DD
	std::vector<std::string> segments;      // the last snapshot's
	// Stamps available per stamp card: each card of the program in force,
	// and any other the member holds stamps on; none for an unknown card.
	std::map<std::string, int64_t> stamps;
	std::optional<MembershipShown> membership;
	std::string currency;
};

// status: the terminal and its ledger.
struct StatusView {
	struct ProgramVersion {
		std::string id;
		int64_t version = 0;
	};
	std::string terminal_id;
	std::string store;
	std::optional<ProgramVersion> program; // none before the first program load
	int64_t entries = 0;
	int64_t unsynced = 0;
	std::optional<std::string> last_sync; // RFC 3339, UTC
	std::optional<std::string> server;    // none for a terminal of its own
	std::optional<std::string> tz;        // none: the receipts' own offsets
	bool behind_centre = false;
};

} // namespace loy
