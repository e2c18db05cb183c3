// The central server's store: the authoritative ledger of every terminal's
// entries, members' points as lots (earned, pending, spent oldest first,
// expired), qualifying spend over a rolling 365 days, tiers, blocked cards,
// program versions, and the report. Embedded SQLite (one file in the data
// dir) or a PostgreSQL database that many servers share; each request is
// one transaction. Applying an entry is keyed by (terminal, seq): exactly
// once, whichever server a terminal's retry reaches.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/crypto.hpp"
#include "base/status.hpp"
#include "central/admin.hpp"
#include "central/fraud.hpp"
#include "core/engine.hpp"

namespace loy::central {

// Limits of one push and one pull, with their reasons: a batch is one
// transaction (bounded lock time for other terminals), a page one response
// (bounded memory on a terminal).
inline constexpr size_t push_entries_max = 500;
inline constexpr int members_page_max = 1000;
inline constexpr int64_t qualifying_window_days = 365;

struct PushEntry {
	int64_t seq = 0;
	std::string hash; // hex
	std::string body;
};

// A push refused because it does not continue the terminal's chain. The
// server answers 409; nothing of the batch is applied.
inline constexpr Code chain_conflict = Code::receipt_conflict;

// Clock trouble, flagged in the report and never trusted: the centre keeps
// its own time for what it records. A terminal's clock is "skewed" when, at
// its last sync, it was this far from the centre's; an entry is "from the
// future" when its device time is this far past the time it arrived; the
// clock "went back" when an entry's device time is this far before the
// entry just before it.
inline constexpr int64_t clock_skew_flag_s = 300;
inline constexpr int64_t clock_back_flag_s = 60;

// Where a terminal's chain stands at the centre: the highest contiguous
// sequence held and that entry's hash (64 zeros before the first).
struct ChainHead {
	int64_t seq = 0;
	std::string hash;
};

// A page of a terminal's own entries as the centre holds them, for a
// terminal whose ledger is behind (restored from an old copy, or its WAL
// lost): GET /v1/entries.
struct EntriesPage {
	ChainHead head;
	std::vector<PushEntry> entries;
	bool more = false;
};
inline constexpr int entries_page_max = 500;

// A new member's referral as `balance` shows it (program spec 2).
struct ReferralShown {
	std::string referrer; // masked
	std::string status;   // pending, rewarded, rejected
	std::string reason;
};

struct MemberInfo {
	std::string token;
	std::string masked;
	bool known = false;
	int64_t balance = 0;          // available now
	int64_t pending = 0;
	int64_t qualifying_spend = 0;
	std::string tier;             // empty without a program
	bool blocked = false;
	std::optional<std::string> next_expiry; // UTC date
	std::vector<std::string> segments; // the back office's targeting, in name order
	std::map<std::string, int64_t> stamps; // stamp card id → stamps available (none at zero); may be < 0
	std::map<std::string, MembershipRun> memberships; // by membership id
	std::optional<ReferralShown> referral;             // balance only, not the members page
	int64_t change = 0;
};

struct MembersPage {
	std::vector<MemberInfo> members;
	int64_t watermark = 0;
	bool more = false;
};

// What `program publish` did. `published` is false when that very document
// was the newest version already (publishing it again changes nothing).
struct Published {
	std::string program;
	int64_t version = 0;
	bool published = false;
};

// A card enrolled or blocked, masked as the program shows cards.
struct MarkedCard {
	std::string card;
};

// `balance --card`: the scanned card, masked, and the member it names
// (`member.known` false when the centre has never seen it).
struct Balance {
	std::string card;
	MemberInfo member;
};

// A member's data as the centre holds it (cli.md, "The back office":
// `statement`, the GDPR export): the balance, the history of their receipts
// (a checkout, its refunds, the centre's bonuses and the donations, oldest
// first) and the lots with points left. A bonus's time is its receipt's, a
// donation's the terminal's when it recorded it (held since version 14;
// before, the start of their local day); a donation's `receipt` is its
// charity, a bonus's the reference it was paid under.
struct HistoryItem {
	int64_t at_utc = 0;
	std::string terminal, receipt, kind; // kind: checkout, refund, donation, referral, challenge
	int64_t points = 0;                   // what it did to the balance
};

struct LotItem {
	std::optional<int64_t> earned_at_utc; // the receipt's at; a bonus's: unknown
	int64_t points = 0;                   // left
	std::optional<int64_t> expires_at_utc;
};

struct Statement {
	Balance balance;
	std::vector<HistoryItem> history;
	std::vector<LotItem> lots;
};

// Points issued (earned less reversed), redeemed (less returned) and
// expired, over a store or the whole chain.
struct PointTotals {
	int64_t issued = 0;
	int64_t redeemed = 0;
	int64_t expired = 0;
	int64_t donated = 0;
	int64_t outstanding() const { return issued - redeemed - expired - donated; }
};

// What members gave one charity, and its money value at the current
// program's point_value (what the program owner pays the charity).
struct CharityReport {
	std::string charity;
	int64_t points = 0;
	int64_t value = 0;
};

struct StoreReport {
	std::string store;
	PointTotals points;
};

// The last push refused for what it held (Store::push): when, and why.
struct Refusal {
	int64_t at_utc = 0;
	std::string message;
};

// A terminal as the centre last saw it, with its clock's trouble (above).
struct TerminalReport {
	std::string terminal_id;
	std::string store;
	int64_t acked_through = 0;
	std::optional<int64_t> last_push_utc;    // never pushed: empty
	std::optional<int64_t> clock_skew_s;     // at its last sync; not measured: empty
	int64_t max_clock_skew_s = 0;
	int64_t entries_clock_back = 0;
	int64_t entries_from_future = 0;
	int64_t refused_pushes = 0;
	std::optional<Refusal> last_refusal;

	bool skewed() const { return clock_skew_s && std::abs(*clock_skew_s) > clock_skew_flag_s; }
	bool went_back() const { return entries_clock_back > 0; }
	bool future_entries() const { return entries_from_future > 0; }
};

// What a campaign gave over the report's receipts: the points of its part
// in their breakdowns, and the eligible spend of the receipts it touched,
// both as checked out (refunds are not taken off).
struct CampaignReport {
	std::string id;
	int64_t points = 0;
	int64_t spend = 0;
};

// One local day of the report's receipts.
struct DayReport {
	Days date = 0;
	int64_t receipts = 0;
	int64_t members = 0;   // with a receipt that day
	int64_t spend = 0;     // eligible, net of refunds
	PointTotals points;    // issued and redeemed (expired and donated: the totals only)
};

// Which receipts a report counts (cli.md, "The back office"): those of the
// local dates [from, until) and of one store; empty: every one. A refund
// counts on its receipt's date; a lot's expiry on the date of the receipt
// that earned it; a donation on its own date; a bonus the centre paid on
// the date of the receipt that earned it.
struct ReportQuery {
	std::optional<Days> from, until;
	std::optional<std::string> store;
};

// The back office's report: members, the chain's points, each terminal (by
// id) and each store (by name), then the KPIs of the receipts the query
// counts. Rates in basis points, floored, 0 when their divisor is 0.
struct Report {
	int64_t members = 0;
	PointTotals points;
	std::vector<TerminalReport> terminals;
	std::vector<StoreReport> stores;
	std::vector<CharityReport> donations; // by charity id
	int64_t point_value = 0;              // the current program's, money per point
	int64_t liability = 0;                // points.outstanding() × point_value
	int64_t active_members = 0;           // with a receipt counted
	int64_t repeat_members = 0;           // with two or more
	int64_t new_members = 0;              // whose first receipt ever is counted
	int64_t receipts = 0;
	int64_t spend = 0;                    // eligible, net of refunds
	int64_t average_basket = 0;           // spend / receipts, floored
	int64_t redemption_rate_bp = 0, breakage_bp = 0, repeat_rate_bp = 0;
	std::vector<CampaignReport> campaigns; // by id
	std::vector<DayReport> days;          // by date, days with receipts only
};

// A coalition partner's settlement over local dates [from, until) (program
// spec 2): points issued at its stores (earned net of refunds, the centre's
// bonuses left out) and redeemed there (net of refunds), what it owes for
// the first (issued × issue_cost), is credited for the second (redeemed ×
// redeem_credit), and the net, in minor units. The owner ("owner") has the
// stores of no partner, at rates of 0.
struct PartnerSettlement {
	std::string partner;
	int64_t issued = 0, redeemed = 0, owes = 0, credit = 0, net = 0;
};

struct Settlement {
	Days from = 0, until = 0;
	std::vector<PartnerSettlement> partners; // the program's, in its order, then the owner
};

// A back-office account (admin.hpp): its password's hash, its TOTP secret
// (base32) and the last time step a code of it was spent at (-1: none).
struct AdminAccount {
	std::string name;
	Role role = Role::viewer;
	std::string password_hash;
	std::string totp_secret;
	int64_t totp_last_step = -1;
};

// A signed-in back-office user's session: `id` the SHA-256 (hex) of the
// token in their cookie (a stolen database holds no usable cookie), the
// CSRF token their page sends back with each action.
struct Session {
	std::string id;
	std::string user;
	Role role = Role::viewer;
	std::string csrf;
	int64_t expires_at = 0;
};
inline constexpr int64_t session_lifetime_s = 8 * 3600;
// Sign-in failures in a row before an account waits, and how long.
inline constexpr int64_t sign_in_failures_max = 5;
inline constexpr int64_t sign_in_lock_s = 15 * 60;

// One line of the audit log: who did what, when.
struct AuditEntry {
	std::string user, action, detail;
	int64_t at_utc = 0;
};

// What the server and the administrative commands need of the central
// store, written once over central/sql.hpp for SQLite and PostgreSQL.
// One instance per thread (each holds one database connection).
class Store {
public:
	virtual ~Store() = default;

	// Applies a batch of a terminal's entries, exactly once each; returns the
	// head of the chain held. `chain_conflict` refuses the batch, and every
	// batch from another `ledger` than the terminal's first (a second data
	// dir with its identity); "" (a terminal from before ledger ids) is not
	// checked. `device_now`: the terminal's clock when it sent the batch.
	virtual Result<ChainHead> push(const std::string &terminal, const std::string &store,
				       const std::string &ledger, const std::vector<PushEntry> &entries,
				       int64_t now, std::optional<int64_t> device_now) = 0;
	// The terminal's entries after `after`, in order, at most `limit`; only
	// to the terminal's own ledger (chain_conflict).
	virtual Result<EntriesPage> entries_after(const std::string &terminal, const std::string &ledger,
						  int64_t after, int limit) = 0;
	virtual Result<std::optional<std::string>> program_after(const std::string &id, int64_t after) = 0;
	// Exactly version `version` of program `id`, if it was published.
	virtual Result<std::optional<std::string>> program_version(const std::string &id, int64_t version) = 0;
	virtual Result<MembersPage> members_after(int64_t watermark, int limit, int64_t now) = 0;

	// Administrative commands (cli.md); their JSON is built at the edge
	// (central/views.hpp). `document`: a program as published (spec/program.md).
	virtual Result<Published> publish_program(std::string_view document, int64_t now) = 0;
	// `referrer` (a card scan, or empty): the member who brought this card
	// (program spec 2, "Referral"), accepted or refused at once.
	virtual Result<MarkedCard> enroll(std::string_view scan, int64_t now, std::string_view referrer = {}) = 0;
	virtual Result<MarkedCard> block(std::string_view scan, int64_t now) = 0;
	// Puts the member in segment `name` (add) or takes it out; the
	// terminals learn it with the member's next change. Answers the member
	// as balance() does.
	virtual Result<Balance> segment(std::string_view scan, std::string_view name, bool add, int64_t now) = 0;
	virtual Result<Balance> balance(std::string_view scan, int64_t now) = 0;
	virtual Result<Statement> statement(std::string_view scan, int64_t now) = 0;
	// Sweeps availability and expiry up to `now` first.
	virtual Result<Report> report(const ReportQuery &q, int64_t now) = 0;
	virtual Result<Settlement> settlement(Days from, Days until) = 0;
	// The fraud flags (fraud.hpp): the rules run over the centre's data,
	// each card's flag per rule kept with when it was first seen; the cards
	// of the rules in `rules.block` blocked (the terminals learn it with
	// their next pull). Ordered by first_seen, rule, card.
	virtual Result<std::vector<FraudFlag>> fraud(const FraudRules &rules) = 0;

	// The back office's accounts (admin add/remove, each in the audit log);
	// a user added twice or removed when absent is bad input.
	virtual Status add_admin(const AdminAccount &a, int64_t now) = 0;
	virtual Status remove_admin(std::string_view name, int64_t now) = 0;
	virtual Result<std::optional<AdminAccount>> admin(std::string_view name) = 0;
	// Spends the TOTP step a sign-in's code matched: false when that step or
	// a later one was spent already (the code was used, here or at another
	// server on the same database).
	virtual Result<bool> spend_totp_step(std::string_view name, int64_t step) = 0;
	virtual Status audit(const AuditEntry &e) = 0;
	// The newest `limit` entries, newest first.
	virtual Result<std::vector<AuditEntry>> audit_log(int64_t limit) = 0;
	// Sign-in bounds: false while the account waits after too many failures
	// (true for a name that is no account: the caller fails it anyway).
	virtual Result<bool> sign_in_allowed(std::string_view name, int64_t now) = 0;
	virtual Status sign_in_failed(std::string_view name, int64_t now) = 0;
	// A session opened (the account's failures forgotten), found while it
	// lasts (with the account's role as it is now), closed.
	virtual Status open_session(const Session &s) = 0;
	virtual Result<std::optional<Session>> session(const std::string &id, int64_t now) = 0;
	virtual Status close_session(const std::string &id) = 0;
	virtual Result<MarkedCard> unblock(std::string_view scan, int64_t now) = 0;

	// The chain's card-token key: SQLite keeps it in the data dir
	// (token.key), PostgreSQL in the database, so that every centre on it
	// tokenises cards alike. Made when missing, so that a centre set up
	// without `pki init` still works.
	virtual Result<crypto::Key> token_key() = 0;
};

// Where the centre keeps its data: `database` a PostgreSQL connection URI,
// or empty for the SQLite file `dir`/central.db. The schema is created or
// migrated forward on open; a database newer than this program is refused.
Result<std::unique_ptr<Store>> open_store(const std::string &dir, const std::string &database = "");

// Whether `text` names a PostgreSQL database (postgresql:// or postgres://).
bool is_database_uri(std::string_view text);

} // namespace loy::central
