// The central store: applying pushed entries exactly once, points as lots,
// sweeps for availability and expiry, and the administrative commands,
// written once over central/sql.hpp for SQLite and PostgreSQL.
//
// A push is one transaction in three steps: lock and read what the batch
// touches (the terminal's row, then its members' rows in token order, so
// that two pushes never wait on each other in a cycle), apply the entries
// in memory one after the other (the rules below), and write what changed
// in a few set statements (COPY and unnest on PostgreSQL). Member change
// numbers, the watermark terminals pull by, are taken last, under one
// counter row held to the commit: they become visible in the order they
// were given, so a terminal's watermark never passes a change still being
// written.
#include "central/store.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <system_error>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/crypto.hpp"
#include "base/json_reader.hpp"
#include "base/timeutil.hpp"
#include "base/utf8.hpp"
#include "central/sql.hpp"
#include "core/arith.hpp"
#include "core/card.hpp"
#include "core/limits.hpp"
#include "core/program.hpp"

namespace loy::central {

using Json = nlohmann::json;
using sql::Dialect;
using sql::Param;
using sql::Params;

// What a terminal's entries name a member by, and show of the card.
constexpr size_t member_token_hex_bytes = 64;
constexpr size_t masked_card_bytes_max = 32;

bool is_database_uri(std::string_view text)
{
	return text.rfind("postgresql://", 0) == 0 || text.rfind("postgres://", 0) == 0;
}

namespace {

constexpr int64_t day_s = 86400;
// A push of at least this many entries is checked on two threads.
constexpr size_t parallel_check_entries_min = 64;
const std::string zero_hash(64, '0');
// SQLite's writers are a server's worker threads and the administrative
// commands. Threads of one server take turns on this mutex (fair, no
// polling); another process waits on SQLite's busy handler, long enough for
// every worker's batch ahead of it. PostgreSQL locks rows instead.
constexpr int central_busy_timeout_ms = 60000;
std::mutex sqlite_write_mutex;
// A transaction PostgreSQL chose as a deadlock's or a serialisation's
// victim is run again, after a short random pause, at most this often.
constexpr int transaction_attempts = 8;

// The SQLite schema, version by version (PRAGMA user_version).
const char *const sqlite_v1 = R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE programs (
	id TEXT NOT NULL,
	version INTEGER NOT NULL,
	document TEXT NOT NULL,
	published_at TEXT NOT NULL,
	PRIMARY KEY (id, version));
CREATE TABLE terminals (
	terminal_id TEXT PRIMARY KEY,
	store TEXT NOT NULL,
	acked_through INTEGER NOT NULL DEFAULT 0,
	last_hash TEXT NOT NULL,
	last_push INTEGER,
	max_skew_s INTEGER NOT NULL DEFAULT 0);
CREATE TABLE entries (
	terminal_id TEXT NOT NULL,
	seq INTEGER NOT NULL,
	hash TEXT NOT NULL,
	kind TEXT NOT NULL,
	token TEXT,
	receipt_id TEXT,
	points INTEGER NOT NULL,
	device_time TEXT,
	received_at INTEGER NOT NULL,
	body TEXT NOT NULL,
	PRIMARY KEY (terminal_id, seq));
CREATE TABLE members (
	token TEXT PRIMARY KEY,
	masked TEXT,
	enrolled INTEGER NOT NULL DEFAULT 0,
	blocked INTEGER NOT NULL DEFAULT 0,
	debt INTEGER NOT NULL DEFAULT 0,
	change INTEGER NOT NULL);
CREATE INDEX members_by_change ON members (change);
CREATE TABLE lots (
	id INTEGER PRIMARY KEY,
	token TEXT NOT NULL,
	store TEXT NOT NULL,
	terminal_id TEXT,
	receipt_id TEXT,
	available_at INTEGER NOT NULL,
	expires_at INTEGER,
	points INTEGER NOT NULL,
	remaining INTEGER NOT NULL,
	expired INTEGER NOT NULL DEFAULT 0);
CREATE INDEX lots_by_member ON lots (token, expires_at);
CREATE INDEX lots_by_receipt ON lots (terminal_id, receipt_id);
CREATE INDEX lots_by_available ON lots (available_at);
CREATE INDEX lots_by_expiry ON lots (expires_at) WHERE remaining > 0;
CREATE TABLE receipts (
	terminal_id TEXT NOT NULL,
	receipt_id TEXT NOT NULL,
	token TEXT NOT NULL,
	store TEXT NOT NULL,
	at_utc INTEGER NOT NULL,
	eligible INTEGER NOT NULL,
	earned INTEGER NOT NULL,
	redeemed INTEGER NOT NULL,
	reversed INTEGER NOT NULL DEFAULT 0,
	returned INTEGER NOT NULL DEFAULT 0,
	expires_at INTEGER,
	PRIMARY KEY (terminal_id, receipt_id));
CREATE INDEX receipts_by_member ON receipts (token, at_utc);
)sql";
// Version 2: the terminals' clocks (store.hpp, "Clock trouble").
const char *const sqlite_v2 = R"sql(
ALTER TABLE terminals ADD COLUMN clock_skew_s INTEGER;
ALTER TABLE terminals ADD COLUMN entries_back INTEGER NOT NULL DEFAULT 0;
ALTER TABLE terminals ADD COLUMN entries_future INTEGER NOT NULL DEFAULT 0;
ALTER TABLE terminals ADD COLUMN last_device_time INTEGER;
)sql";
// Version 3: the ledger each terminal pushes from (store.hpp, push), and
// the pushes refused, flagged in the report.
const char *const sqlite_v3 = R"sql(
ALTER TABLE terminals ADD COLUMN ledger TEXT;
ALTER TABLE terminals ADD COLUMN refused_pushes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE terminals ADD COLUMN last_refusal TEXT;
ALTER TABLE terminals ADD COLUMN last_refusal_at INTEGER;
)sql";
// Version 4: the counters behind member change numbers and lot ids, taken
// in a statement of their own (file header) instead of max() + 1.
const char *const sqlite_v4 = R"sql(
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO counters SELECT 'member_change', coalesce(max(change), 0) FROM members;
INSERT INTO counters SELECT 'lot_id', coalesce(max(id), 0) FROM lots;
)sql";
// Version 5: each member's points (its lots' remaining) and spend (its
// receipts' eligible) kept on its row, so that a push reads what it
// touches, not a member's history.
const char *const sqlite_v5 = R"sql(
ALTER TABLE members ADD COLUMN points INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN spend INTEGER NOT NULL DEFAULT 0;
UPDATE members SET
	points = coalesce((SELECT sum(remaining) FROM lots WHERE lots.token = members.token), 0),
	spend = coalesce((SELECT sum(eligible) FROM receipts WHERE receipts.token = members.token), 0);
)sql";
// Version 6: what a pull tells of a member read without its history:
// each member's eligible spend a UTC day (the qualifying window is whole
// days but for the one it starts in), its live lots by expiry and its
// pending ones by availability (a lot spent to 0 is history; one
// available at once, available_at 0, is never pending). Lots are no
// longer looked up by receipt: that index only cost each insert.
const char *const sqlite_v6 = R"sql(
CREATE TABLE spend_days (
	token TEXT NOT NULL,
	day INTEGER NOT NULL,
	eligible INTEGER NOT NULL,
	PRIMARY KEY (token, day)
) WITHOUT ROWID;
INSERT INTO spend_days SELECT token, CASE WHEN at_utc >= 0 THEN at_utc / 86400 ELSE (at_utc + 1) / 86400 - 1 END,
	sum(eligible) FROM receipts GROUP BY 1, 2;
DROP INDEX lots_by_member;
CREATE INDEX lots_by_member ON lots (token, expires_at) WHERE remaining > 0;
DROP INDEX lots_by_receipt;
DROP INDEX lots_by_available;
CREATE INDEX lots_by_available ON lots (available_at) WHERE remaining > 0 AND available_at > 0;
CREATE INDEX lots_pending ON lots (token, available_at) WHERE remaining > 0 AND available_at > 0;
)sql";
// Version 7: the segments the back office puts members in (program.md v2,
// "Segments"), sent to the terminals with each member.
const char *const sqlite_v7 = R"sql(
CREATE TABLE member_segments (
	token TEXT NOT NULL,
	name TEXT NOT NULL,
	PRIMARY KEY (token, name)
) WITHOUT ROWID;
)sql";
// Version 8: members' donations to the program's charities (program.md v2,
// "Charity donations"), one row per terminal entry, for the report.
const char *const sqlite_v8 = R"sql(
CREATE TABLE donations (
	terminal_id TEXT NOT NULL,
	seq INTEGER NOT NULL,
	token TEXT NOT NULL,
	store TEXT NOT NULL,
	charity TEXT NOT NULL,
	points INTEGER NOT NULL,
	local_date INTEGER NOT NULL,
	PRIMARY KEY (terminal_id, seq)
) WITHOUT ROWID;
)sql";
// Version 9: stamp cards (program.md v2, "Stamp cards"). A member's stamps
// on a card are lots, one per receipt that gave them (or per refund that
// gave a reward's stamps back), taken oldest first and expiring with the
// card's expiry_days; what is spent beyond them is the card's debt, paid
// back by the next stamps.
const char *const sqlite_v9 = R"sql(
CREATE TABLE stamp_lots (
	id INTEGER PRIMARY KEY,
	token TEXT NOT NULL,
	card TEXT NOT NULL,
	terminal_id TEXT NOT NULL,
	receipt_id TEXT NOT NULL,
	at_utc INTEGER NOT NULL,
	expires_at INTEGER,
	stamps INTEGER NOT NULL,
	remaining INTEGER NOT NULL,
	expired INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX stamp_lots_by_member ON stamp_lots (token, card, at_utc) WHERE remaining > 0;
CREATE INDEX stamp_lots_by_expiry ON stamp_lots (expires_at) WHERE remaining > 0;
CREATE TABLE stamp_debts (
	token TEXT NOT NULL,
	card TEXT NOT NULL,
	debt INTEGER NOT NULL,
	PRIMARY KEY (token, card)
) WITHOUT ROWID;
)sql";
// Version 10: paid memberships (program.md v2, "Paid membership"): each
// member's run of each membership, local dates [from, until) in days since
// 1970-01-01, extended and shortened by the entries as they are applied.
const char *const sqlite_v10 = R"sql(
CREATE TABLE memberships (
	token TEXT NOT NULL,
	membership TEXT NOT NULL,
	from_day INTEGER NOT NULL,
	until_day INTEGER NOT NULL,
	PRIMARY KEY (token, membership)
) WITHOUT ROWID;
)sql";
// Version 11: referrals (program.md v2, "Referral (central)"): one per new
// card, its referrer, the enrolment's local day, its status and why, and
// the receipt that earned it; the bonus points paid, per beneficiary, for
// the report; and each receipt's local date (the referral's window).
const char *const sqlite_v11 = R"sql(
CREATE TABLE referrals (
	token TEXT PRIMARY KEY,
	referrer TEXT NOT NULL,
	referrer_masked TEXT NOT NULL,
	enrolled_day INTEGER NOT NULL,
	status TEXT NOT NULL,
	reason TEXT NOT NULL,
	terminal_id TEXT,
	receipt_id TEXT
) WITHOUT ROWID;
CREATE INDEX referrals_by_referrer ON referrals (referrer, status);
CREATE TABLE bonuses (
	id INTEGER PRIMARY KEY,
	kind TEXT NOT NULL,
	ref TEXT NOT NULL,
	token TEXT NOT NULL,
	store TEXT NOT NULL,
	points INTEGER NOT NULL,
	reversed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX bonuses_by_ref ON bonuses (kind, ref);
ALTER TABLE receipts ADD COLUMN local_date INTEGER;
)sql";
// Version 12: challenges (program.md v2, "Challenges (central)"): each
// receipt's categories with eligible spend left, and each member's award
// per challenge window (paid with the receipt that completed it, or undone).
const char *const sqlite_v12 = R"sql(
CREATE TABLE receipt_categories (
	terminal_id TEXT NOT NULL,
	receipt_id TEXT NOT NULL,
	category TEXT NOT NULL,
	PRIMARY KEY (terminal_id, receipt_id, category)
) WITHOUT ROWID;
CREATE TABLE challenge_awards (
	token TEXT NOT NULL,
	challenge TEXT NOT NULL,
	window_start INTEGER NOT NULL,
	status TEXT NOT NULL,
	terminal_id TEXT,
	receipt_id TEXT,
	PRIMARY KEY (token, challenge, window_start)
) WITHOUT ROWID;
CREATE INDEX receipts_by_member_day ON receipts (token, local_date);
)sql";
// Version 13: the back office's KPIs (cli.md, "The back office"): the
// points each campaign gave a receipt (its breakdown's parts) and the
// receipt's eligible spend then, and the local
// date of the receipt each bonus was paid with (NULL before: counted only
// in a report over every date).
const char *const sqlite_v13 = R"sql(
CREATE TABLE receipt_campaigns (
	terminal_id TEXT NOT NULL,
	receipt_id TEXT NOT NULL,
	campaign TEXT NOT NULL,
	points INTEGER NOT NULL,
	spend INTEGER NOT NULL,
	PRIMARY KEY (terminal_id, receipt_id, campaign)
) WITHOUT ROWID;
ALTER TABLE bonuses ADD COLUMN local_date INTEGER;
CREATE INDEX receipts_by_day ON receipts (local_date);
)sql";
// Version 14: fraud signals (cli.md v2, `fraud`): each card's flag per rule
// with when it was first seen, and the times the rules and a member's
// statement look at (a receipt's refund in full, a referral's enrolment, a
// donation, a bonus's receipt; NULL before: not looked at).
const char *const sqlite_v14 = R"sql(
CREATE TABLE fraud_flags (
	token TEXT NOT NULL,
	rule TEXT NOT NULL,
	detail TEXT NOT NULL,
	first_seen INTEGER NOT NULL,
	PRIMARY KEY (token, rule)
) WITHOUT ROWID;
ALTER TABLE receipts ADD COLUMN refunded_at INTEGER;
ALTER TABLE referrals ADD COLUMN enrolled_at INTEGER;
ALTER TABLE donations ADD COLUMN at_utc INTEGER;
ALTER TABLE bonuses ADD COLUMN at_utc INTEGER;
CREATE INDEX referrals_by_enrolment ON referrals (referrer, enrolled_at);
)sql";
// Version 15: the back office's accounts (admin.hpp: the password's hash,
// the TOTP secret and the last step a code was spent at, failed sign-ins),
// their sessions (by the SHA-256 of the cookie's token) and the audit log of
// what was done, by whom, when.
const char *const sqlite_v15 = R"sql(
CREATE TABLE admins (
	name TEXT PRIMARY KEY,
	role TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	totp_secret TEXT NOT NULL,
	totp_last_step INTEGER NOT NULL DEFAULT -1,
	created_at INTEGER NOT NULL,
	failed_logins INTEGER NOT NULL DEFAULT 0,
	locked_until INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE sessions (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	csrf TEXT NOT NULL,
	expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE audit (
	id INTEGER PRIMARY KEY,
	at_utc INTEGER NOT NULL,
	name TEXT NOT NULL,
	action TEXT NOT NULL,
	detail TEXT NOT NULL
);
)sql";
const char *const sqlite_migrations[] = {sqlite_v1,  sqlite_v2,  sqlite_v3,  sqlite_v4,  sqlite_v5,
					 sqlite_v6,  sqlite_v7,  sqlite_v8,  sqlite_v9,  sqlite_v10,
					 sqlite_v11, sqlite_v12, sqlite_v13, sqlite_v14, sqlite_v15};

// The PostgreSQL schema, version by version (meta 'schema_version'): the
// same tables, 64-bit integers, byte-order ("C") text keys so that lists
// come out in the order SQLite gives, and a sequence for lot ids (which
// needs no lock held to the commit).
const char *const postgresql_v1 = R"sql(
CREATE TABLE programs (
	id TEXT COLLATE "C" NOT NULL,
	version BIGINT NOT NULL,
	document TEXT NOT NULL,
	published_at TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (id, version));
CREATE TABLE terminals (
	terminal_id TEXT COLLATE "C" PRIMARY KEY,
	store TEXT COLLATE "C" NOT NULL,
	acked_through BIGINT NOT NULL DEFAULT 0,
	last_hash TEXT NOT NULL,
	last_push BIGINT,
	max_skew_s BIGINT NOT NULL DEFAULT 0,
	clock_skew_s BIGINT,
	entries_back BIGINT NOT NULL DEFAULT 0,
	entries_future BIGINT NOT NULL DEFAULT 0,
	last_device_time BIGINT,
	ledger TEXT,
	refused_pushes BIGINT NOT NULL DEFAULT 0,
	last_refusal TEXT,
	last_refusal_at BIGINT);
CREATE TABLE entries (
	terminal_id TEXT COLLATE "C" NOT NULL,
	seq BIGINT NOT NULL,
	hash TEXT NOT NULL,
	kind TEXT NOT NULL,
	token TEXT,
	receipt_id TEXT COLLATE "C",
	points BIGINT NOT NULL,
	device_time TEXT,
	received_at BIGINT NOT NULL,
	body TEXT NOT NULL,
	PRIMARY KEY (terminal_id, seq));
CREATE TABLE members (
	token TEXT COLLATE "C" PRIMARY KEY,
	masked TEXT,
	enrolled BIGINT NOT NULL DEFAULT 0,
	blocked BIGINT NOT NULL DEFAULT 0,
	debt BIGINT NOT NULL DEFAULT 0,
	change BIGINT NOT NULL);
CREATE INDEX members_by_change ON members (change);
CREATE TABLE lots (
	id BIGINT PRIMARY KEY,
	token TEXT COLLATE "C" NOT NULL,
	store TEXT COLLATE "C" NOT NULL,
	terminal_id TEXT COLLATE "C",
	receipt_id TEXT COLLATE "C",
	available_at BIGINT NOT NULL,
	expires_at BIGINT,
	points BIGINT NOT NULL,
	remaining BIGINT NOT NULL,
	expired BIGINT NOT NULL DEFAULT 0);
CREATE INDEX lots_by_member ON lots (token, expires_at);
CREATE INDEX lots_by_receipt ON lots (terminal_id, receipt_id);
CREATE INDEX lots_by_available ON lots (available_at);
CREATE INDEX lots_by_expiry ON lots (expires_at) WHERE remaining > 0;
CREATE TABLE receipts (
	terminal_id TEXT COLLATE "C" NOT NULL,
	receipt_id TEXT COLLATE "C" NOT NULL,
	token TEXT COLLATE "C" NOT NULL,
	store TEXT COLLATE "C" NOT NULL,
	at_utc BIGINT NOT NULL,
	eligible BIGINT NOT NULL,
	earned BIGINT NOT NULL,
	redeemed BIGINT NOT NULL,
	reversed BIGINT NOT NULL DEFAULT 0,
	returned BIGINT NOT NULL DEFAULT 0,
	expires_at BIGINT,
	PRIMARY KEY (terminal_id, receipt_id));
CREATE INDEX receipts_by_member ON receipts (token, at_utc);
CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO counters VALUES ('member_change', 0);
CREATE SEQUENCE lot_ids;
)sql";
// Version 2: as SQLite's version 5.
const char *const postgresql_v2 = R"sql(
ALTER TABLE members ADD COLUMN points BIGINT NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN spend BIGINT NOT NULL DEFAULT 0;
UPDATE members SET
	points = coalesce((SELECT sum(remaining) FROM lots WHERE lots.token = members.token), 0),
	spend = coalesce((SELECT sum(eligible) FROM receipts WHERE receipts.token = members.token), 0);
)sql";
// Version 3: as SQLite's version 6.
const char *const postgresql_v3 = R"sql(
CREATE TABLE spend_days (
	token TEXT COLLATE "C" NOT NULL,
	day BIGINT NOT NULL,
	eligible BIGINT NOT NULL,
	PRIMARY KEY (token, day)
);
INSERT INTO spend_days SELECT token, CASE WHEN at_utc >= 0 THEN at_utc / 86400 ELSE (at_utc + 1) / 86400 - 1 END,
	sum(eligible) FROM receipts GROUP BY 1, 2;
DROP INDEX lots_by_member;
CREATE INDEX lots_by_member ON lots (token, expires_at) WHERE remaining > 0;
DROP INDEX lots_by_receipt;
DROP INDEX lots_by_available;
CREATE INDEX lots_by_available ON lots (available_at) WHERE remaining > 0 AND available_at > 0;
CREATE INDEX lots_pending ON lots (token, available_at) WHERE remaining > 0 AND available_at > 0;
)sql";
// Version 4: as SQLite's version 7.
const char *const postgresql_v4 = R"sql(
CREATE TABLE member_segments (
	token TEXT COLLATE "C" NOT NULL,
	name TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (token, name)
);
)sql";
// Version 5: as SQLite's version 8.
const char *const postgresql_v5 = R"sql(
CREATE TABLE donations (
	terminal_id TEXT COLLATE "C" NOT NULL,
	seq BIGINT NOT NULL,
	token TEXT COLLATE "C" NOT NULL,
	store TEXT COLLATE "C" NOT NULL,
	charity TEXT COLLATE "C" NOT NULL,
	points BIGINT NOT NULL,
	local_date BIGINT NOT NULL,
	PRIMARY KEY (terminal_id, seq)
);
)sql";
// Version 6: as SQLite's version 9.
const char *const postgresql_v6 = R"sql(
CREATE TABLE stamp_lots (
	id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	token TEXT COLLATE "C" NOT NULL,
	card TEXT COLLATE "C" NOT NULL,
	terminal_id TEXT COLLATE "C" NOT NULL,
	receipt_id TEXT COLLATE "C" NOT NULL,
	at_utc BIGINT NOT NULL,
	expires_at BIGINT,
	stamps BIGINT NOT NULL,
	remaining BIGINT NOT NULL,
	expired BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX stamp_lots_by_member ON stamp_lots (token, card, at_utc) WHERE remaining > 0;
CREATE INDEX stamp_lots_by_expiry ON stamp_lots (expires_at) WHERE remaining > 0;
CREATE TABLE stamp_debts (
	token TEXT COLLATE "C" NOT NULL,
	card TEXT COLLATE "C" NOT NULL,
	debt BIGINT NOT NULL,
	PRIMARY KEY (token, card)
);
)sql";
// Version 7: as SQLite's version 10.
const char *const postgresql_v7 = R"sql(
CREATE TABLE memberships (
	token TEXT COLLATE "C" NOT NULL,
	membership TEXT COLLATE "C" NOT NULL,
	from_day BIGINT NOT NULL,
	until_day BIGINT NOT NULL,
	PRIMARY KEY (token, membership)
);
)sql";
// Version 8: as SQLite's version 11.
const char *const postgresql_v8 = R"sql(
CREATE TABLE referrals (
	token TEXT COLLATE "C" PRIMARY KEY,
	referrer TEXT COLLATE "C" NOT NULL,
	referrer_masked TEXT NOT NULL,
	enrolled_day BIGINT NOT NULL,
	status TEXT NOT NULL,
	reason TEXT NOT NULL,
	terminal_id TEXT COLLATE "C",
	receipt_id TEXT COLLATE "C"
);
CREATE INDEX referrals_by_referrer ON referrals (referrer, status);
CREATE TABLE bonuses (
	id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	kind TEXT NOT NULL,
	ref TEXT COLLATE "C" NOT NULL,
	token TEXT COLLATE "C" NOT NULL,
	store TEXT COLLATE "C" NOT NULL,
	points BIGINT NOT NULL,
	reversed BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX bonuses_by_ref ON bonuses (kind, ref);
ALTER TABLE receipts ADD COLUMN local_date BIGINT;
)sql";
// Version 9: as SQLite's version 12.
const char *const postgresql_v9 = R"sql(
CREATE TABLE receipt_categories (
	terminal_id TEXT COLLATE "C" NOT NULL,
	receipt_id TEXT COLLATE "C" NOT NULL,
	category TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (terminal_id, receipt_id, category)
);
CREATE TABLE challenge_awards (
	token TEXT COLLATE "C" NOT NULL,
	challenge TEXT COLLATE "C" NOT NULL,
	window_start BIGINT NOT NULL,
	status TEXT NOT NULL,
	terminal_id TEXT COLLATE "C",
	receipt_id TEXT COLLATE "C",
	PRIMARY KEY (token, challenge, window_start)
);
CREATE INDEX receipts_by_member_day ON receipts (token, local_date);
)sql";
// Version 10: as SQLite's version 13.
const char *const postgresql_v10 = R"sql(
CREATE TABLE receipt_campaigns (
	terminal_id TEXT COLLATE "C" NOT NULL,
	receipt_id TEXT COLLATE "C" NOT NULL,
	campaign TEXT COLLATE "C" NOT NULL,
	points BIGINT NOT NULL,
	spend BIGINT NOT NULL,
	PRIMARY KEY (terminal_id, receipt_id, campaign)
);
ALTER TABLE bonuses ADD COLUMN local_date BIGINT;
CREATE INDEX receipts_by_day ON receipts (local_date);
)sql";
// Version 11: as SQLite's version 14.
const char *const postgresql_v11 = R"sql(
CREATE TABLE fraud_flags (
	token TEXT COLLATE "C" NOT NULL,
	rule TEXT COLLATE "C" NOT NULL,
	detail TEXT NOT NULL,
	first_seen BIGINT NOT NULL,
	PRIMARY KEY (token, rule)
);
ALTER TABLE receipts ADD COLUMN refunded_at BIGINT;
ALTER TABLE referrals ADD COLUMN enrolled_at BIGINT;
ALTER TABLE donations ADD COLUMN at_utc BIGINT;
ALTER TABLE bonuses ADD COLUMN at_utc BIGINT;
CREATE INDEX referrals_by_enrolment ON referrals (referrer, enrolled_at);
)sql";
// Version 12: as SQLite's version 15.
const char *const postgresql_v12 = R"sql(
CREATE TABLE admins (
	name TEXT COLLATE "C" PRIMARY KEY,
	role TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	totp_secret TEXT NOT NULL,
	totp_last_step BIGINT NOT NULL DEFAULT -1,
	created_at BIGINT NOT NULL,
	failed_logins BIGINT NOT NULL DEFAULT 0,
	locked_until BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE sessions (
	id TEXT COLLATE "C" PRIMARY KEY,
	name TEXT COLLATE "C" NOT NULL,
	csrf TEXT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE TABLE audit (
	id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	at_utc BIGINT NOT NULL,
	name TEXT NOT NULL,
	action TEXT NOT NULL,
	detail TEXT NOT NULL
);
)sql";
const char *const postgresql_migrations[] = {postgresql_v1, postgresql_v2,  postgresql_v3,  postgresql_v4,
					     postgresql_v5, postgresql_v6,  postgresql_v7,  postgresql_v8,
					     postgresql_v9, postgresql_v10, postgresql_v11, postgresql_v12};
// Taken by whichever centre migrates, so that servers started together
// migrate once; and by whichever sweeps (one sweep at a time is enough).
constexpr int64_t migrate_lock = 0x6c6f79616c747931; // "loyalty1"
constexpr int64_t sweep_lock = 0x6c6f79616c747932;

Status bad(Code code, std::string msg) { return Status(code, std::move(msg)); }

std::string utc_date(int64_t utc) { return format_date(Timestamp{utc, 0}.local_date()); }

// The UTC day of a moment (days since 1970-01-01, rounded down), as
// spend_days keys it.
int64_t utc_day(int64_t utc) { return utc >= 0 ? utc / day_s : (utc + 1) / day_s - 1; }

// A batch's view of what it touches (file header), read under lock and
// written back when every entry applied.
struct Lot {
	int64_t id = 0; // provisional (new_lot_id_base + n) until written
	std::string token, store, terminal, receipt;
	int64_t available_at = 0;
	std::optional<int64_t> expires_at;
	int64_t points = 0, remaining = 0;
	bool is_new = false, changed = false;
};
constexpr int64_t new_lot_id_base = int64_t{1} << 62;

struct Member {
	std::optional<std::string> masked;
	int64_t enrolled = 0;
	int64_t debt = 0;
	int64_t points = 0;         // sum of its lots' remaining points
	int64_t spend = 0;          // sum of its receipts' eligible spend
	// The lots this batch may take points from (remaining > 0 when read),
	// indexes into Batch::lots: read only for a member whose entries spend
	// or give back points (and the lots the batch adds).
	std::vector<size_t> lots;
	bool lots_read = false;
	int64_t touched = 0;        // order of its last change in the batch; 0: none
};

struct Receipt {
	std::string token, store;
	int64_t at_utc = 0, eligible = 0, earned = 0, redeemed = 0, reversed = 0, returned = 0;
	int64_t eligible_at_checkout = 0; // a new receipt's
	std::optional<int64_t> expires_at, refunded_at; // refunded_at: in full, by the terminal's clock
	std::optional<int64_t> local_date, available_at; // available_at: of this batch's only
	// A new receipt's campaign parts (its breakdown but base, tier and
	// membership), for the report.
	std::vector<std::pair<std::string, int64_t>> campaigns;
	bool is_new = false, changed = false;
};

// A breakdown part that is a campaign's (program.md, "Earning": the others
// are base, tier:<name> and membership:<id>).
bool is_campaign_part(const std::string &rule)
{
	return rule != "base" && rule.rfind("tier:", 0) != 0 && rule.rfind("membership:", 0) != 0;
}

// A member's gift of points to a charity (a terminal's "donate" entry).
struct Donation {
	int64_t seq = 0;
	std::string token, store, charity;
	int64_t points = 0, local_date = 0, at_utc = 0;
};

// A new card's referral (referrals table), as the batch reads and changes it.
struct ReferralRow {
	std::string referrer, referrer_masked;
	int64_t enrolled_day = 0;
	int64_t enrolled_at = 0; // a new one's (UTC), by the terminal's clock
	std::string status, reason; // pending, rewarded, rejected
	std::optional<std::string> terminal, receipt; // the receipt that earned it
	bool is_new = false, changed = false;
};

// A fraud signal the batch raised (fraud_flags), kept if the card has none
// of its rule yet.
struct FlagRow {
	std::string token, rule, detail;
	int64_t first_seen = 0;
};

struct Batch {
	std::map<std::string, ReferralRow> referrals; // by the new card's token
	std::vector<FlagRow> flags;
	std::map<std::string, Member> members;
	std::vector<Donation> donations;
	std::vector<Lot> lots;
	std::map<std::string, Receipt> receipts; // this terminal's, by receipt id
	std::map<std::pair<std::string, int64_t>, int64_t> spend_days; // (token, UTC day): eligible added
	int64_t touches = 0;
};

class SqlStore final : public Store {
public:
	Status open(const std::string &dir, const std::string &database);

	Result<ChainHead> push(const std::string &terminal, const std::string &store, const std::string &ledger,
			       const std::vector<PushEntry> &entries, int64_t now,
			       std::optional<int64_t> device_now) override;
	Result<EntriesPage> entries_after(const std::string &terminal, const std::string &ledger, int64_t after,
					  int limit) override;
	Result<std::optional<std::string>> program_after(const std::string &id, int64_t after) override;
	Result<std::optional<std::string>> program_version(const std::string &id, int64_t version) override;
	Result<MembersPage> members_after(int64_t watermark, int limit, int64_t now) override;
	Result<Published> publish_program(std::string_view document, int64_t now) override;
	Result<MarkedCard> enroll(std::string_view scan, int64_t now, std::string_view referrer) override;
	Result<MarkedCard> block(std::string_view scan, int64_t now) override;
	Result<Balance> segment(std::string_view scan, std::string_view name, bool add, int64_t now) override;
	Result<Balance> balance(std::string_view scan, int64_t now) override;
	Result<Statement> statement(std::string_view scan, int64_t now) override;
	Result<Report> report(const ReportQuery &q, int64_t now) override;
	Result<std::vector<FraudFlag>> fraud(const FraudRules &rules) override;
	Status add_admin(const AdminAccount &a, int64_t now) override;
	Status remove_admin(std::string_view name, int64_t now) override;
	Result<std::optional<AdminAccount>> admin(std::string_view name) override;
	Result<bool> spend_totp_step(std::string_view name, int64_t step) override;
	Status audit(const AuditEntry &e) override;
	Result<std::vector<AuditEntry>> audit_log(int64_t limit) override;
	Result<bool> sign_in_allowed(std::string_view name, int64_t now) override;
	Status sign_in_failed(std::string_view name, int64_t now) override;
	Status open_session(const Session &s) override;
	Result<std::optional<Session>> session(const std::string &id, int64_t now) override;
	Status close_session(const std::string &id) override;
	Result<MarkedCard> unblock(std::string_view scan, int64_t now) override;
	Result<Settlement> settlement(Days from, Days until) override;
	Result<crypto::Key> token_key() override;

private:
	bool pg() const { return c_->dialect() == Dialect::postgresql; }
	std::string in(int n) const { return sql::in_list(c_->dialect(), n); }
	const char *for_update() const { return sql::for_update(c_->dialect()); }
	// SQLite: this process's writers take turns (above); PostgreSQL: none.
	std::unique_lock<std::mutex> writer()
	{
		return pg() ? std::unique_lock<std::mutex>() : std::unique_lock<std::mutex>(sqlite_write_mutex);
	}
	// `body` in a writing transaction, run again when the database chose it
	// as a victim; committed when it succeeds.
	template <class F> auto transact(F &&body) -> decltype(body());

	Status migrate();
	Result<int64_t> scalar(std::string_view sql, const Params &params = {});
	Result<const Program *> current_program();
	Result<std::pair<std::string, std::string>> card_token(std::string_view scan);

	Result<ChainHead> apply_batch(const std::string &terminal, const std::string &store, const std::string &ledger,
				      const std::vector<PushEntry> &entries, int64_t now,
				      std::optional<int64_t> device_now);
	// A refused batch, in a transaction of its own (the batch's rolled back).
	Status note_refusal(const std::string &terminal, const std::string &store, const std::string &why,
			    int64_t now);
	// Inserts the members missing and, unless the caller's own SELECT does
	// (load_batch), locks them all, in token order.
	Status lock_members(const std::vector<std::string> &sorted_tokens, bool lock = true);
	// `spenders`: the tokens among `tokens` whose lots the entries may take
	// points from (redemptions, refunds, adjustments).
	Status load_batch(Batch &b, const std::string &terminal, const std::vector<std::string> &tokens,
			  const std::vector<std::string> &spenders, const std::vector<std::string> &receipts);
	Status apply(Batch &b, const std::string &terminal, const std::string &store, int64_t seq, const Json &e,
		     int64_t now);
	Status write_batch(Batch &b, const std::string &terminal);
	// Stamps (spec 2), inside apply's transaction with the member's row
	// locked: an entry's stamp changes, a lot given (paying the card's debt
	// first), stamps taken (the receipt's own lot first when named, then
	// oldest first, the rest owed).
	Status apply_stamps(const std::string &terminal, const std::string &token, const std::string &receipt,
			    const std::string &kind, const Json &e, int64_t at, int64_t now);
	Status give_stamps(const std::string &token, const std::string &card, const std::string &terminal,
			   const std::string &receipt, int64_t at, std::optional<int64_t> expires, int64_t n);
	Status take_stamps(const std::string &token, const std::string &card, int64_t n, int64_t at,
			   const std::string *terminal = nullptr, const std::string *receipt = nullptr);
	// Referrals (spec 2): an enrolment naming a referrer is accepted or
	// refused at once, with its reason; the new member's first receipt of
	// S >= min_spend in the window pays both bonuses (lots in the batch, a
	// row each in bonuses), and a refund that takes it below gives them back
	// and looks for the next qualifying receipt.
	Status refer(Batch &b, const std::string &token, bool was_known, const std::string &referrer,
		     const std::string &referrer_masked, int64_t day, int64_t at);
	Status referral_checkout(Batch &b, const std::string &terminal, const std::string &token,
				 const std::string &receipt);
	Status referral_refund(Batch &b, const std::string &terminal, const std::string &token,
			       const std::string &receipt, int64_t now);
	Result<bool> pay_referral(Batch &b, const std::string &token, ReferralRow &x, const std::string &terminal,
				  const std::string &receipt, const Receipt &r);
	Result<int64_t> rewarded_referrals(const Batch &b, const std::string &referrer);
	Status write_referrals(const Batch &b);
	// Challenges (spec 2): after a receipt or its refund, each challenge's
	// window holding the receipt's day is counted again from the member's
	// receipts in it (net of refunds); completed, its points are paid once,
	// dated the receipt that completed it; no longer complete, given back.
	Status challenges_after(Batch &b, const std::string &terminal, const std::string &token,
				const std::string &receipt, const Json &e, int64_t now);
	// The categories of a receipt's lines left that count for a categories
	// challenge (receipt_categories).
	Status keep_categories(const std::string &terminal, const std::string &receipt, const Json &e,
			       const Program &program);
	// The program version an entry names, parsed once (none: not published here).
	Result<const Program *> entry_program(const Json &e);
	// Memberships (spec 2), likewise: the days an entry bought (from its
	// receipt's local day) or took off.
	Status apply_memberships(const std::string &token, const std::string &kind, const Json &e, int64_t day);
	// When stamps that card `card` of the entry's program gave at `at` expire.
	Result<std::optional<int64_t>> stamp_expiry(const Json &e, const std::string &card, int64_t at);
	Result<std::map<std::string, std::map<std::string, int64_t>>> member_stamps(const std::vector<std::string> &tokens,
										 int64_t now);
	// New change numbers for `tokens`, in that order, set on their rows.
	Status touch(const std::vector<std::string> &tokens);
	Result<std::vector<int64_t>> take_counter(const char *name, int64_t n);
	Status sweep(int64_t now);
	Result<std::vector<MemberInfo>> member_info(const std::vector<std::string> &tokens, int64_t now);
	// Returns the masked card.
	Result<std::string> mark_member(std::string_view scan, const char *update_sql);

	std::unique_ptr<sql::Conn> c_;
	std::string dir_;
	std::optional<crypto::Key> token_key_;
	std::unique_ptr<Program> program_;
	// Program versions entries named (their stamp cards' expiry), parsed once.
	std::map<std::pair<std::string, int64_t>, std::unique_ptr<Program>> versions_;
};

template <class F> auto SqlStore::transact(F &&body) -> decltype(body())
{
	for (int attempt = 1;; attempt++) {
		auto lock = writer();
		sql::Transaction tx(*c_);
		LOY_TRY(tx.begin());
		auto result = body();
		if (result) {
			Status committed = tx.commit();
			if (committed)
				return result;
			if (!c_->retryable() || attempt == transaction_attempts)
				return committed;
		} else if (!c_->retryable() || attempt == transaction_attempts) {
			return result;
		}
		// Rolled back here; the other transaction goes first.
		thread_local std::minstd_rand jitter(std::random_device{}());
		std::this_thread::sleep_for(std::chrono::milliseconds(1 + jitter() % (5u * static_cast<unsigned>(attempt))));
	}
}

} // namespace

Result<std::unique_ptr<Store>> open_store(const std::string &dir, const std::string &database)
{
	auto s = std::make_unique<SqlStore>();
	LOY_TRY(s->open(dir, database));
	return std::unique_ptr<Store>(std::move(s));
}

Status SqlStore::open(const std::string &dir, const std::string &database)
{
	dir_ = dir;
	if (database.empty()) {
		auto c = sql::open_sqlite(dir + "/central.db", central_busy_timeout_ms);
		if (!c)
			return c.status();
		c_ = std::move(c).value();
	} else {
		if (!is_database_uri(database))
			return bad(Code::bad_argument, "--database must be a PostgreSQL URI (postgresql://...)");
		auto c = sql::open_postgresql(database);
		if (!c)
			return c.status();
		c_ = std::move(c).value();
	}
	return migrate();
}

Result<int64_t> SqlStore::scalar(std::string_view sql, const Params &params)
{
	auto rows = c_->query(sql, params);
	if (!rows)
		return rows.status();
	return rows->empty() ? int64_t{0} : rows->int64(0, 0);
}

Status SqlStore::migrate()
{
	const bool postgres = pg();
	const auto *const steps = postgres ? postgresql_migrations : sqlite_migrations;
	const int newest = postgres ? static_cast<int>(std::size(postgresql_migrations))
				    : static_cast<int>(std::size(sqlite_migrations));
	auto version = [&]() -> Result<int64_t> {
		return postgres ? scalar("SELECT CAST(value AS BIGINT) FROM meta WHERE key = 'schema_version'")
				: scalar("PRAGMA user_version");
	};
	auto check = [&](int64_t v) -> Status {
		if (v > newest)
			return bad(Code::storage, fmt::format("central: schema version {} is newer than this "
							      "program's {}",
							      v, newest));
		return Status::ok();
	};
	if (!postgres) {
		auto v = version();
		if (!v)
			return v.status();
		LOY_TRY(check(*v));
		if (*v == newest)
			return Status::ok();
	}
	return transact([&]() -> Status {
		if (postgres) {
			LOY_TRY(c_->exec("SELECT pg_advisory_xact_lock(?1)", {migrate_lock}));
			LOY_TRY(c_->script("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT "
					   "NULL)"));
		}
		// Another process may have migrated it while this one waited.
		auto v = version();
		if (!v)
			return v.status();
		LOY_TRY(check(*v));
		for (int64_t i = *v; i < newest; i++)
			LOY_TRY(c_->script(steps[i]));
		if (*v == newest)
			return Status::ok();
		if (postgres)
			return c_->exec("INSERT INTO meta (key, value) VALUES ('schema_version', ?1) "
					"ON CONFLICT (key) DO UPDATE SET value = excluded.value",
					{std::to_string(newest)});
		return c_->script(fmt::format("PRAGMA user_version = {}", newest));
	});
}

Result<crypto::Key> SqlStore::token_key()
{
	if (token_key_)
		return *token_key_;
	if (pg()) {
		// The first centre to need one makes it; every other reads that one.
		auto k = crypto::random_key();
		if (!k)
			return k.status();
		auto rows = transact([&]() -> Result<sql::Rows> {
			LOY_TRY(c_->exec("INSERT INTO meta (key, value) VALUES ('token_key', ?1) ON CONFLICT (key) "
					 "DO NOTHING",
					 {crypto::to_hex(k->data(), k->size())}));
			return c_->query("SELECT value FROM meta WHERE key = 'token_key'");
		});
		if (!rows)
			return rows.status();
		crypto::Key key{};
		if (rows->empty() || !crypto::from_hex(rows->text(0, 0), key.data(), key.size()))
			return bad(Code::storage, "central: the database's token key is not 64 hex digits");
		token_key_ = key;
		return key;
	}
	const std::string path = dir_ + "/token.key";
	struct stat st;
	if (::stat(path.c_str(), &st) != 0) {
		auto k = crypto::random_key();
		if (!k)
			return k.status();
		LOY_TRY(crypto::write_key_file(path, *k));
	}
	auto k = crypto::read_key_file(path);
	if (!k)
		return bad(Code::storage, k.status().message());
	token_key_ = *k;
	return *k;
}

Result<const Program *> SqlStore::current_program()
{
	auto rows = c_->query("SELECT document, version FROM programs ORDER BY published_at DESC, version DESC "
			      "LIMIT 1");
	if (!rows)
		return rows.status();
	if (rows->empty())
		return static_cast<const Program *>(nullptr);
	if (program_ && program_->version == rows->int64(0, 1))
		return program_.get();
	auto p = parse_program(rows->text(0, 0));
	if (!p)
		return bad(Code::storage, "central: stored program no longer parses: " + p.status().message());
	program_ = std::make_unique<Program>(std::move(p).value());
	return program_.get();
}

Result<std::pair<std::string, std::string>> SqlStore::card_token(std::string_view scan)
{
	auto p = current_program();
	if (!p)
		return p.status();
	// Before any program, cards are checked by the spec's defaults (Luhn, 8
	// to 19 digits), so that members can be enrolled while rules are drafted.
	const CardRule rule = *p ? (*p)->card : CardRule{};
	auto digits = parse_card_scan(scan, rule);
	if (!digits)
		return digits.status();
	auto key = token_key();
	if (!key)
		return key.status();
	return std::make_pair(crypto::to_hex(crypto::hmac_sha256(*key, *digits)), mask_card(*digits));
}

Result<std::vector<int64_t>> SqlStore::take_counter(const char *name, int64_t n)
{
	std::vector<int64_t> out;
	if (n <= 0)
		return out;
	auto top = scalar("UPDATE counters SET value = value + ?2 WHERE name = ?1 RETURNING value", {name, n});
	if (!top)
		return top.status();
	for (int64_t i = n - 1; i >= 0; i--)
		out.push_back(*top - i);
	return out;
}

Status SqlStore::touch(const std::vector<std::string> &tokens)
{
	auto changes = take_counter("member_change", static_cast<int64_t>(tokens.size()));
	if (!changes)
		return changes.status();
	std::vector<Params> rows;
	for (size_t i = 0; i < tokens.size(); i++)
		rows.push_back({tokens[i], (*changes)[i]});
	return c_->update_many("members", {"token"}, {"change"}, rows);
}

Status SqlStore::lock_members(const std::vector<std::string> &sorted_tokens, bool lock)
{
	if (sorted_tokens.empty())
		return Status::ok();
	// A new member's row waits at change 0 (no pull sees it) until touched.
	std::vector<Params> rows;
	for (const auto &t : sorted_tokens)
		rows.push_back({t});
	for (auto &r : rows)
		r.emplace_back(int64_t{0});
	LOY_TRY(c_->insert_many("members", {"token", "change"}, rows, "ON CONFLICT (token) DO NOTHING"));
	if (!pg() || !lock)
		return Status::ok();
	return c_->exec(fmt::format("SELECT token FROM members WHERE token {} ORDER BY token{}", in(1), for_update()),
			{Param::list(sorted_tokens)});
}

// A member's points may go, oldest first: those already available and
// expiring soonest; what is spent beyond them (terminals offline apart) is
// owed, and paid back by the next points earned.
Status consume(Batch &b, Member &m, int64_t points, int64_t at)
{
	if (points <= 0)
		return Status::ok();
	if (!m.lots_read)
		return bad(Code::internal, "central: a member's lots were not read before spending them");
	std::vector<size_t> order;
	for (size_t i : m.lots) {
		const Lot &l = b.lots[i];
		if (l.remaining > 0 && (!l.expires_at || *l.expires_at > at))
			order.push_back(i);
	}
	auto key = [&](size_t i) {
		const Lot &l = b.lots[i];
		return std::make_tuple(l.available_at <= at ? 0 : 1, l.expires_at.value_or(INT64_MAX), l.id);
	};
	std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return key(x) < key(y); });
	int64_t left = points;
	for (size_t i : order) {
		if (left <= 0)
			break;
		Lot &l = b.lots[i];
		const int64_t take = std::min(left, l.remaining);
		l.remaining -= take;
		l.changed = true;
		m.points -= take;
		left -= take;
	}
	if (left > 0)
		m.debt += left;
	return Status::ok();
}

// A bonus the centre paid, given back: from its own lot first (its
// `receipt` key, and `terminal` when given), then oldest first.
Status take_back(Batch &b, Member &m, const std::string *terminal, const std::string &receipt, int64_t points,
		 int64_t now)
{
	int64_t left = points;
	for (size_t i : m.lots) {
		Lot &l = b.lots[i];
		if (left > 0 && l.receipt == receipt && (!terminal || l.terminal == *terminal) && l.remaining > 0) {
			const int64_t take = std::min(left, l.remaining);
			l.remaining -= take;
			l.changed = true;
			m.points -= take;
			left -= take;
		}
	}
	m.touched = ++b.touches;
	return consume(b, m, left, now);
}

// A new lot of points; pays back the member's debt first.
void add_lot(Batch &b, const std::string &token, const std::string &store, const std::string &terminal,
	     const std::string &receipt, int64_t available_at, std::optional<int64_t> expires_at, int64_t points)
{
	if (points <= 0)
		return;
	Member &m = b.members[token];
	const int64_t pay = std::min(points, m.debt);
	m.debt -= pay;
	Lot l;
	l.id = new_lot_id_base + static_cast<int64_t>(b.lots.size());
	l.token = token;
	l.store = store;
	l.terminal = terminal;
	l.receipt = receipt;
	l.available_at = available_at;
	l.expires_at = expires_at;
	l.points = points;
	l.remaining = points - pay;
	l.is_new = true;
	m.points += l.remaining;
	m.lots.push_back(b.lots.size());
	b.lots.push_back(std::move(l));
}

// After an entry: the member's points (lots left) and spend stay within
// member_total_max, so that no sum over a member, nor a snapshot the
// terminals take, can overflow. Each entry moves at most receipt_points_max,
// so the sums below are exact while the bound held before it.
Status check_member_bounds(const Member &m, int64_t seq)
{
	const int64_t points = m.points - m.debt;
	const int64_t spend = m.spend;
	auto outside = [](int64_t v) { return v > member_total_max || v < -member_total_max; };
	if (outside(points) || outside(spend))
		return bad(Code::bad_argument, fmt::format("entry {}: it would take the member's {} to {}, past the "
							   "{} a member may hold",
							   seq, outside(points) ? "points" : "spend",
							   outside(points) ? points : spend, member_total_max));
	return Status::ok();
}

Status SqlStore::load_batch(Batch &b, const std::string &terminal, const std::vector<std::string> &tokens,
			    const std::vector<std::string> &spenders, const std::vector<std::string> &receipts)
{
	LOY_TRY(lock_members(tokens, false));
	if (!tokens.empty()) {
		const Param list = Param::list(tokens);
		auto ms = c_->query(fmt::format("SELECT token, masked, enrolled, debt, points, spend FROM members WHERE "
						"token {} ORDER BY token{}",
						in(1), for_update()),
				    {list});
		if (!ms)
			return ms.status();
		for (size_t r = 0; r < ms->size(); r++) {
			Member &m = b.members[ms->text(r, 0)];
			if (!ms->is_null(r, 1))
				m.masked = ms->text(r, 1);
			m.enrolled = ms->int64(r, 2);
			m.debt = ms->int64(r, 3);
			m.points = ms->int64(r, 4);
			m.spend = ms->int64(r, 5);
		}
		for (const auto &t : spenders)
			b.members[t].lots_read = true;
		auto ls = c_->query(fmt::format("SELECT id, token, store, terminal_id, receipt_id, available_at, "
						"expires_at, points, remaining FROM lots WHERE token {} AND remaining > 0",
						in(1)),
				    {Param::list(spenders)});
		if (!ls)
			return ls.status();
		for (size_t r = 0; r < ls->size(); r++) {
			Lot l;
			l.id = ls->int64(r, 0);
			l.token = ls->text(r, 1);
			l.store = ls->text(r, 2);
			l.terminal = ls->text(r, 3);
			l.receipt = ls->text(r, 4);
			l.available_at = ls->int64(r, 5);
			l.expires_at = ls->optional_int64(r, 6);
			l.points = ls->int64(r, 7);
			l.remaining = ls->int64(r, 8);
			b.members[l.token].lots.push_back(b.lots.size());
			b.lots.push_back(std::move(l));
		}
		// Lots in id order, as the rules take them on a tie.
		for (auto &[token, m] : b.members)
			std::sort(m.lots.begin(), m.lots.end(),
				  [&](size_t x, size_t y) { return b.lots[x].id < b.lots[y].id; });
	}
	if (!receipts.empty()) {
		auto rs = c_->query(fmt::format("SELECT receipt_id, token, store, at_utc, eligible, earned, redeemed, "
						"reversed, returned, expires_at, local_date, refunded_at FROM receipts WHERE "
						"terminal_id = ?1 "
						"AND receipt_id {}",
						in(2)),
				    {terminal, Param::list(receipts)});
		if (!rs)
			return rs.status();
		for (size_t r = 0; r < rs->size(); r++) {
			Receipt &x = b.receipts[rs->text(r, 0)];
			x.token = rs->text(r, 1);
			x.store = rs->text(r, 2);
			x.at_utc = rs->int64(r, 3);
			x.eligible = rs->int64(r, 4);
			x.earned = rs->int64(r, 5);
			x.redeemed = rs->int64(r, 6);
			x.reversed = rs->int64(r, 7);
			x.returned = rs->int64(r, 8);
			x.expires_at = rs->optional_int64(r, 9);
			x.local_date = rs->optional_int64(r, 10);
			x.refunded_at = rs->optional_int64(r, 11);
		}
	}
	return Status::ok();
}

Status SqlStore::apply(Batch &b, const std::string &terminal, const std::string &store, int64_t seq, const Json &e,
		       int64_t now)
{
	if (!e.is_object())
		return bad(Code::bad_argument, fmt::format("entry {}: body is not JSON", seq));
	// Every amount within the bounds a terminal checks before it records
	// (core/limits.hpp): a terminal that did not, or a forged entry, is
	// refused here before any sum could overflow.
	struct FieldError {
		std::string message;
	};
	auto num = [](const Json &obj, const char *key, int64_t min, int64_t max) {
		const Json &v = obj.at(key);
		if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX))
			throw FieldError{fmt::format("{} must be an integer, got {}", key, json_excerpt(v))};
		const int64_t x = v.get<int64_t>();
		if (x < min || x > max)
			throw FieldError{fmt::format("{} is {}, outside {} to {}", key, x, min, max)};
		return x;
	};
	try {
		const std::string kind = e.at("kind").get<std::string>();
		const std::string token = e.at("token").get<std::string>();
		const std::string receipt = e.at("receipt").get<std::string>();
		const Json &d = e.at("data");
		// When the terminal says it recorded the entry (the fraud rules'
		// clock); this server's when it says nothing readable.
		int64_t recorded = now;
		if (auto it = e.find("device_time"); it != e.end() && it->is_string())
			if (auto t = parse_timestamp(it->get<std::string>()))
				recorded = t->utc_s;
		// A member token is an HMAC-SHA-256 in hex, a masked card a few
		// characters: anything else would reach every terminal's snapshot.
		if (token.size() != member_token_hex_bytes ||
		    token.find_first_not_of("0123456789abcdef") != std::string::npos)
			return bad(Code::bad_argument, fmt::format("entry {}: the member token is not 64 hex digits", seq));
		auto found = b.members.find(token);
		if (found == b.members.end())
			return bad(Code::internal, fmt::format("entry {}: its member was not read first", seq));
		Member &m = found->second;
		m.touched = ++b.touches;
		const bool was_known = m.masked.has_value() || m.enrolled != 0;
		if (d.contains("masked")) {
			const std::string masked = d.at("masked").get<std::string>();
			if (masked.empty() || masked.size() > masked_card_bytes_max || !utf8_valid(masked))
				return bad(Code::bad_argument,
					   fmt::format("entry {}: masked must be 1 to {} bytes of UTF-8", seq,
						       masked_card_bytes_max));
			m.masked = masked;
		}
		if (kind == "enroll") {
			m.enrolled = 1;
			if (d.contains("referrer")) {
				const std::string referrer = d.at("referrer").get<std::string>();
				const std::string by = d.at("referrer_masked").get<std::string>();
				if (referrer.size() != member_token_hex_bytes ||
				    referrer.find_first_not_of("0123456789abcdef") != std::string::npos ||
				    by.empty() || by.size() > masked_card_bytes_max || !utf8_valid(by))
					return bad(Code::bad_argument, fmt::format("entry {}: the referrer is not a member "
										   "token with its masked card",
										   seq));
				LOY_TRY(refer(b, token, was_known, referrer, by,
					      num(d, "local_date", time_min_s / day_s, time_max_s / day_s), recorded));
			}
		} else if (kind == "checkout") {
			const Json &r = d.at("receipt");
			const int64_t at = num(d, "at_utc", time_min_s, time_max_s);
			std::optional<int64_t> expires;
			if (!d.at("expires_at").is_null())
				expires = num(d, "expires_at", time_min_s, time_max_s);
			// A terminal records a receipt once; a second checkout under its
			// id is a forged or broken entry, refused as such (not a
			// storage failure the terminal would retry for ever).
			if (b.receipts.count(receipt))
				return bad(Code::bad_argument, fmt::format("entry {}: receipt {} of terminal {} was checked "
									   "out already",
									   seq, receipt, terminal));
			Receipt x;
			x.token = token;
			x.store = store;
			x.at_utc = at;
			x.eligible = num(r, "eligible", 0, money_max);
			x.eligible_at_checkout = x.eligible;
			x.earned = num(r, "earned", 0, receipt_points_max);
			x.redeemed = num(r, "redeemed", 0, receipt_points_max);
			x.expires_at = expires;
			if (d.contains("local_date"))
				x.local_date = num(d, "local_date", time_min_s / day_s, time_max_s / day_s);
			// The campaigns' parts as the terminal's answer gave them, for the
			// report: at most one per campaign, each within a receipt's points.
			if (d.contains("result") && d.at("result").contains("breakdown")) {
				const Json &parts = d.at("result").at("breakdown");
				if (!parts.is_array() || parts.size() > program_campaigns_max + 3)
					throw FieldError{fmt::format("breakdown must be an array of at most {} parts",
								     program_campaigns_max + 3)};
				for (const Json &part : parts) {
					const std::string rule = part.at("rule").get<std::string>();
					// An id, or "membership:" and an id.
					if (rule.empty() || rule.size() > name_length_max + 16 || !utf8_valid(rule))
						throw FieldError{fmt::format("a breakdown rule must be 1 to {} bytes of UTF-8",
									     name_length_max + 16)};
					const int64_t points = num(part, "points", 0, receipt_points_max);
					if (!is_campaign_part(rule) || points == 0)
						continue;
					if (std::any_of(x.campaigns.begin(), x.campaigns.end(),
							[&](const auto &c) { return c.first == rule; }))
						throw FieldError{fmt::format("breakdown names {} twice", rule)};
					x.campaigns.emplace_back(rule, points);
				}
			}
			x.is_new = true;
			m.spend += x.eligible;
			b.spend_days[{token, utc_day(at)}] += x.eligible;
			b.receipts.emplace(receipt, x);
			const int64_t owed = m.debt;
			LOY_TRY(consume(b, m, x.redeemed, at));
			if (m.debt > owed)
				b.flags.push_back(FlagRow{token, "negative_balance",
							  fmt::format("receipt {} at terminal {} redeemed {} points, {} more "
								      "than the card held",
								      receipt, terminal, x.redeemed, m.debt - owed),
							  at});
			// Without pending_days the points are available at once, even on
			// a receipt stamped ahead of this server's clock.
			int64_t available = num(d, "available_at", time_min_s, time_max_s);
			if (available <= at)
				available = 0;
			add_lot(b, token, store, terminal, receipt, available, expires, x.earned);
			b.receipts[receipt].available_at = available;
			LOY_TRY(apply_stamps(terminal, token, receipt, kind, e, at, now));
			LOY_TRY(referral_checkout(b, terminal, token, receipt));
			LOY_TRY(challenges_after(b, terminal, token, receipt, e, now));
			if (d.contains("memberships"))
				LOY_TRY(apply_memberships(token, kind, e,
							  num(d, "local_date", time_min_s / day_s, time_max_s / day_s)));
		} else if (kind == "refund") {
			const int64_t reversed = num(d, "reversed", 0, receipt_points_max);
			const int64_t returned = num(d, "returned", 0, receipt_points_max);
			const int64_t spend_reversed = num(d, "spend_reversed", 0, money_max);
			// A refund takes back at most what its receipt had, and only
			// from the member the receipt is of.
			auto it = b.receipts.find(receipt);
			if (it == b.receipts.end() || it->second.token != token)
				return bad(Code::bad_argument,
					   fmt::format("entry {}: refunds receipt {}, which is no checkout of this member "
						       "by this terminal",
						       seq, receipt));
			Receipt &x = it->second;
			if (d.value("complete", false) && !x.refunded_at)
				x.refunded_at = recorded;
			x.eligible -= spend_reversed;
			x.reversed += reversed;
			x.returned += returned;
			x.changed = true;
			m.spend -= spend_reversed;
			b.spend_days[{token, utc_day(x.at_utc)}] -= spend_reversed;
			if (x.eligible < 0)
				return bad(Code::bad_argument,
					   fmt::format("entry {}: refunds more spend than receipt {} of this member had",
						       seq, receipt));
			// Taken back from the receipt's own points first, then oldest first.
			int64_t left = reversed;
			for (size_t i : m.lots) {
				Lot &l = b.lots[i];
				if (l.terminal == terminal && l.receipt == receipt && l.remaining > 0) {
					const int64_t take = std::min(left, l.remaining);
					l.remaining -= take;
					l.changed = true;
					m.points -= take;
					left -= take;
					break;
				}
			}
			LOY_TRY(consume(b, m, left, now));
			add_lot(b, token, store, terminal, receipt, now, x.expires_at, returned);
			LOY_TRY(apply_stamps(terminal, token, receipt, kind, e, x.at_utc, now));
			if (d.contains("memberships"))
				LOY_TRY(apply_memberships(token, kind, e, 0));
			LOY_TRY(referral_refund(b, terminal, token, receipt, now));
			LOY_TRY(challenges_after(b, terminal, token, receipt, e, now));
		} else if (kind == "donate") {
			// The till checked the program's charity and the member's
			// balance; here the points leave the member as a redemption's do.
			const int64_t points = -num(e, "points", -receipt_points_max, -1);
			const std::string charity = d.at("charity").get<std::string>();
			if (charity.empty() || charity.size() > name_length_max || !utf8_valid(charity))
				return bad(Code::bad_argument, fmt::format("entry {}: charity must be 1 to {} bytes of UTF-8",
									   seq, name_length_max));
			const int64_t day = num(d, "local_date", time_min_s / day_s, time_max_s / day_s);
			const int64_t owed = m.debt;
			LOY_TRY(consume(b, m, points, now));
			if (m.debt > owed)
				b.flags.push_back(FlagRow{token, "negative_balance",
							  fmt::format("a donation at terminal {} gave {} points, {} more than "
								      "the card held",
								      terminal, points, m.debt - owed),
							  recorded});
			b.donations.push_back(Donation{seq, token, store, charity, points, day, recorded});
		} else if (kind == "adjust") {
			int64_t points = num(e, "points", -receipt_points_max, receipt_points_max);
			if (points > 0)
				add_lot(b, token, store, terminal, receipt, now, std::nullopt, points);
			else
				LOY_TRY(consume(b, m, -points, now));
		} else {
			return bad(Code::bad_argument, fmt::format("entry {}: unknown kind \"{}\"", seq, kind));
		}
		LOY_TRY(check_member_bounds(m, seq));
	} catch (const FieldError &f) {
		return bad(Code::bad_argument, fmt::format("entry {}: {}", seq, f.message));
	} catch (const Json::exception &ex) {
		return bad(Code::bad_argument, fmt::format("entry {}: a field is missing or of the wrong type: {}", seq,
							   json_exception_text(ex)));
	}
	return Status::ok();
}

Result<int64_t> SqlStore::rewarded_referrals(const Batch &b, const std::string &referrer)
{
	auto rows = c_->query("SELECT token FROM referrals WHERE referrer = ?1 AND status = 'rewarded'", {referrer});
	if (!rows)
		return rows.status();
	int64_t n = 0;
	for (size_t r = 0; r < rows->size(); r++)
		n += b.referrals.count(rows->text(r, 0)) ? 0 : 1; // the batch's own rows counted below
	for (const auto &[token, x] : b.referrals)
		n += x.referrer == referrer && x.status == "rewarded" ? 1 : 0;
	return n;
}

Status SqlStore::refer(Batch &b, const std::string &token, bool was_known, const std::string &referrer,
		       const std::string &referrer_masked, int64_t day, int64_t at)
{
	// A card's first referral decides; one named again is not a new one.
	if (b.referrals.count(token))
		return Status::ok();
	auto p = current_program();
	if (!p)
		return p.status();
	ReferralRow x;
	x.referrer = referrer;
	x.referrer_masked = referrer_masked;
	x.enrolled_day = day;
	x.enrolled_at = at;
	x.is_new = true;
	auto reject = [&](std::string why) {
		x.status = "rejected";
		x.reason = std::move(why);
	};
	const Member *by = b.members.count(referrer) ? &b.members.at(referrer) : nullptr;
	if (!*p || !(*p)->referral) {
		reject("the program in force has no referral");
	} else if (referrer == token) {
		reject("a card cannot refer itself");
	} else if (was_known) {
		reject("the card was known to the chain before this enrolment");
	} else if (!by || (!by->masked && !by->enrolled)) {
		reject("the referrer is not a known member");
	} else {
		auto blocked = scalar("SELECT count(*) FROM members WHERE token = ?1 AND blocked = 1", {referrer});
		if (!blocked)
			return blocked.status();
		auto n = rewarded_referrals(b, referrer);
		if (!n)
			return n.status();
		const Referral &rule = *(*p)->referral;
		if (*blocked)
			reject("the referrer's card is blocked");
		else if (rule.max_per_referrer && *n >= *rule.max_per_referrer)
			reject(fmt::format("the referrer has {} rewarded referrals, the program's most", *n));
		else {
			x.status = "pending";
			x.reason = fmt::format("waiting for a first receipt of at least {} within {} days of {}",
					       rule.min_spend, rule.window_days, format_date(day));
		}
	}
	b.referrals.emplace(token, std::move(x));
	return Status::ok();
}

Result<bool> SqlStore::pay_referral(Batch &b, const std::string &token, ReferralRow &x, const std::string &terminal,
				    const std::string &receipt, const Receipt &r)
{
	auto p = current_program();
	if (!p)
		return p.status();
	if (!*p || !(*p)->referral || !r.local_date || x.status != "pending")
		return false;
	const Referral &rule = *(*p)->referral;
	const int64_t into = *r.local_date - x.enrolled_day;
	if (into < 0 || into >= rule.window_days || r.eligible < rule.min_spend)
		return false;
	auto n = rewarded_referrals(b, x.referrer);
	if (!n)
		return n.status();
	if (rule.max_per_referrer && *n >= *rule.max_per_referrer) {
		x.status = "rejected";
		x.reason = fmt::format("the referrer reached the program's {} rewarded referrals first",
				       *rule.max_per_referrer);
		x.changed = true;
		return false;
	}
	if (!b.members.count(x.referrer))
		return bad(Code::internal, "central: a referrer was not read before its bonus");
	// Points earned on that receipt: its pending days and expiry.
	const int64_t available = r.available_at.value_or(0);
	const std::string ref = "referral:" + receipt;
	add_lot(b, token, r.store, terminal, ref, available, r.expires_at, rule.referee_points);
	add_lot(b, x.referrer, r.store, terminal, ref, available, r.expires_at, rule.referrer_points);
	b.members[token].touched = ++b.touches;
	b.members[x.referrer].touched = ++b.touches;
	for (const auto &[who, points] : {std::make_pair(token, rule.referee_points),
					  std::make_pair(x.referrer, rule.referrer_points)})
		if (points > 0)
			LOY_TRY(c_->exec("INSERT INTO bonuses (kind, ref, token, store, points, local_date, at_utc) VALUES "
					 "('referral', ?1, ?2, ?3, ?4, ?5, ?6)",
					 {token, who, r.store, points, *r.local_date, r.at_utc}));
	x.status = "rewarded";
	x.reason = fmt::format("receipt {} of terminal {}", receipt, terminal);
	x.terminal = terminal;
	x.receipt = receipt;
	x.changed = true;
	return true;
}

Status SqlStore::referral_checkout(Batch &b, const std::string &terminal, const std::string &token,
				   const std::string &receipt)
{
	auto it = b.referrals.find(token);
	if (it == b.referrals.end())
		return Status::ok();
	return pay_referral(b, token, it->second, terminal, receipt, b.receipts.at(receipt)).status();
}

Status SqlStore::referral_refund(Batch &b, const std::string &terminal, const std::string &token,
				 const std::string &receipt, int64_t now)
{
	auto it = b.referrals.find(token);
	if (it == b.referrals.end() || it->second.status != "rewarded" || it->second.terminal != terminal ||
	    it->second.receipt != receipt)
		return Status::ok();
	auto p = current_program();
	if (!p)
		return p.status();
	const Receipt &r = b.receipts.at(receipt);
	if (!*p || !(*p)->referral || r.eligible >= (*p)->referral->min_spend)
		return Status::ok();
	ReferralRow &x = it->second;
	// Both bonuses back: from their own lots first, then oldest first.
	const std::string ref = "referral:" + receipt;
	auto paid = c_->query("SELECT token, points - reversed FROM bonuses WHERE kind = 'referral' AND ref = ?1 AND "
			      "points > reversed",
			      {token});
	if (!paid)
		return paid.status();
	for (size_t row = 0; row < paid->size(); row++) {
		LOY_TRY(take_back(b, b.members[paid->text(row, 0)], &terminal, ref, paid->int64(row, 1), now));
	}
	LOY_TRY(c_->exec("UPDATE bonuses SET reversed = points WHERE kind = 'referral' AND ref = ?1", {token}));
	x.status = "pending";
	x.terminal.reset();
	x.receipt.reset();
	x.changed = true;
	// The next qualifying receipt in the window earns them instead: this
	// batch's receipts as they stand, the others as the centre holds them.
	struct Candidate {
		int64_t at;
		std::string terminal, receipt;
		Receipt r;
	};
	std::vector<Candidate> found;
	for (const auto &[id, rc] : b.receipts)
		if (rc.token == token && id != receipt)
			found.push_back(Candidate{rc.at_utc, terminal, id, rc});
	auto others = c_->query("SELECT terminal_id, receipt_id, store, at_utc, eligible, expires_at, local_date FROM "
				"receipts WHERE token = ?1 AND local_date IS NOT NULL",
				{token});
	if (!others)
		return others.status();
	for (size_t row = 0; row < others->size(); row++) {
		if (others->text(row, 0) == terminal && b.receipts.count(others->text(row, 1)))
			continue; // as this batch has it
		Receipt rc;
		rc.token = token;
		rc.store = others->text(row, 2);
		rc.at_utc = others->int64(row, 3);
		rc.eligible = others->int64(row, 4);
		rc.expires_at = others->optional_int64(row, 5);
		rc.local_date = others->optional_int64(row, 6);
		found.push_back(Candidate{rc.at_utc, others->text(row, 0), others->text(row, 1), rc});
	}
	std::sort(found.begin(), found.end(), [](const Candidate &a, const Candidate &c) {
		return std::tie(a.at, a.terminal, a.receipt) < std::tie(c.at, c.terminal, c.receipt);
	});
	for (const Candidate &c : found) {
		auto paid_now = pay_referral(b, token, x, c.terminal, c.receipt, c.r);
		if (!paid_now)
			return paid_now.status();
		if (*paid_now)
			break;
	}
	if (x.status == "pending")
		x.reason = fmt::format("its bonuses were taken back with a refund of receipt {}; waiting for another "
				       "receipt of at least {} in the window",
				       receipt, (*p)->referral->min_spend);
	return Status::ok();
}

Status SqlStore::write_referrals(const Batch &b)
{
	for (const auto &[token, x] : b.referrals) {
		if (!x.is_new && !x.changed)
			continue;
		LOY_TRY(c_->exec("INSERT INTO referrals (token, referrer, referrer_masked, enrolled_day, status, reason, "
				 "terminal_id, receipt_id, enrolled_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON "
				 "CONFLICT (token) DO UPDATE SET status = excluded.status, reason = excluded.reason, "
				 "terminal_id = excluded.terminal_id, receipt_id = excluded.receipt_id",
				 {token, x.referrer, x.referrer_masked, x.enrolled_day, x.status, x.reason, x.terminal,
				  x.receipt, x.enrolled_at}));
	}
	return Status::ok();
}

Result<const Program *> SqlStore::entry_program(const Json &e)
{
	const auto key = std::make_pair(e.at("program").get<std::string>(), e.at("program_version").get<int64_t>());
	auto it = versions_.find(key);
	if (it == versions_.end()) {
		auto rows = c_->query("SELECT document FROM programs WHERE id = ?1 AND version = ?2",
				      {key.first, key.second});
		if (!rows)
			return rows.status();
		std::unique_ptr<Program> p;
		if (!rows->empty()) {
			auto parsed = parse_program(rows->text(0, 0));
			if (!parsed)
				return bad(Code::storage, "central: stored program no longer parses: " +
								  parsed.status().message());
			p = std::make_unique<Program>(std::move(parsed).value());
		}
		it = versions_.emplace(key, std::move(p)).first;
	}
	return static_cast<const Program *>(it->second.get());
}

Status SqlStore::keep_categories(const std::string &terminal, const std::string &receipt, const Json &e,
				 const Program &program)
{
	const Json &rc = e.at("data").at("receipt");
	std::set<std::string> categories;
	auto named = entry_program(e);
	if (!named)
		return named.status();
	const Program &rules = *named ? **named : program;
	const Json &lines = rc.at("basket").at("lines");
	const Json *returned = rc.contains("returned") && rc["returned"].is_array() ? &rc["returned"] : nullptr;
	for (size_t i = 0; i < lines.size(); i++) {
		const Json &l = lines[i];
		const std::string sku = l.at("sku").get<std::string>();
		const std::string category = l.value("category", std::string());
		const int64_t qty = l.at("qty").get<int64_t>();
		const int64_t back = returned && i < returned->size() ? (*returned)[i].get<int64_t>() : 0;
		if (category.empty() || qty - back <= 0 || rules.excluded(sku, category) || rules.membership_of_sku(sku))
			continue;
		categories.insert(category);
	}
	LOY_TRY(c_->exec("DELETE FROM receipt_categories WHERE terminal_id = ?1 AND receipt_id = ?2", {terminal, receipt}));
	for (const auto &c : categories)
		LOY_TRY(c_->exec("INSERT INTO receipt_categories (terminal_id, receipt_id, category) VALUES (?1, ?2, ?3)",
				 {terminal, receipt, c}));
	return Status::ok();
}

Status SqlStore::challenges_after(Batch &b, const std::string &terminal, const std::string &token,
				  const std::string &receipt, const Json &e, int64_t now)
{
	auto p = current_program();
	if (!p)
		return p.status();
	const Receipt &r = b.receipts.at(receipt);
	if (!*p || (*p)->challenges.empty() || !r.local_date)
		return Status::ok();
	const Program &program = **p;
	// The receipt's categories with eligible spend left, kept when a
	// `categories` challenge counts them: its lines as the entry has them
	// after it, under the entry's program.
	const bool by_category = std::any_of(program.challenges.begin(), program.challenges.end(),
					     [](const Challenge &ch) { return ch.kind == ChallengeKind::categories; });
	if (by_category)
		LOY_TRY(keep_categories(terminal, receipt, e, program));
	auto blocked = scalar("SELECT count(*) FROM members WHERE token = ?1 AND blocked = 1", {token});
	if (!blocked)
		return blocked.status();
	for (const Challenge &ch : program.challenges) {
		auto start = ch.window_of(*r.local_date);
		if (!start)
			continue;
		const Days end = ch.window_end(*start);
		// The member's receipts in the window: the batch's as they stand,
		// the others as the centre holds them.
		struct Seen {
			int64_t at;
			std::string terminal, receipt, store;
			int64_t eligible, day, available;
			std::optional<int64_t> expires;
		};
		std::vector<Seen> seen;
		for (const auto &[id, x] : b.receipts)
			if (x.token == token && x.local_date && *x.local_date >= *start && *x.local_date < end)
				seen.push_back(Seen{x.at_utc, terminal, id, x.store, x.eligible, *x.local_date,
						    x.available_at.value_or(0), x.expires_at});
		auto rows = c_->query("SELECT terminal_id, receipt_id, store, at_utc, eligible, local_date, expires_at FROM "
				      "receipts WHERE token = ?1 AND local_date >= ?2 AND local_date < ?3",
				      {token, *start, end});
		if (!rows)
			return rows.status();
		for (size_t k = 0; k < rows->size(); k++) {
			if (rows->text(k, 0) == terminal && b.receipts.count(rows->text(k, 1)))
				continue;
			seen.push_back(Seen{rows->int64(k, 3), rows->text(k, 0), rows->text(k, 1), rows->text(k, 2),
					    rows->int64(k, 4), rows->int64(k, 5), 0, rows->optional_int64(k, 6)});
		}
		std::sort(seen.begin(), seen.end(), [](const Seen &x, const Seen &y) {
			return std::tie(x.at, x.terminal, x.receipt) < std::tie(y.at, y.terminal, y.receipt);
		});
		// Count in time order: the receipt that reaches `count` completes it.
		const Seen *completing = nullptr;
		std::set<int64_t> days;
		std::set<std::string> kinds;
		int64_t spend = 0;
		for (const Seen &x : seen) {
			int64_t reached = 0;
			if (ch.kind == ChallengeKind::visits) {
				if (x.eligible >= ch.min_spend)
					days.insert(x.day);
				reached = static_cast<int64_t>(days.size());
			} else if (ch.kind == ChallengeKind::categories) {
				if (x.eligible > 0) {
					auto cs = c_->query("SELECT category FROM receipt_categories WHERE terminal_id = ?1 AND "
							    "receipt_id = ?2",
							    {x.terminal, x.receipt});
					if (!cs)
						return cs.status();
					for (size_t k = 0; k < cs->size(); k++)
						kinds.insert(cs->text(k, 0));
				}
				reached = static_cast<int64_t>(kinds.size());
			} else {
				spend += x.eligible; // each within money_max: no overflow over a window's receipts
				reached = spend;
			}
			if (reached >= ch.count) {
				completing = &x;
				break;
			}
		}
		auto award = c_->query("SELECT status FROM challenge_awards WHERE token = ?1 AND challenge = ?2 AND "
				       "window_start = ?3",
				       {token, ch.id, *start});
		if (!award)
			return award.status();
		const bool paid = !award->empty() && award->text(0, 0) == "paid";
		const std::string ref = token + ":" + ch.id + ":" + std::to_string(*start);
		const std::string lot_ref = "challenge:" + ch.id + ":" + std::to_string(*start);
		Member &m = b.members[token];
		if (completing && !paid && !*blocked) {
			add_lot(b, token, completing->store, completing->terminal, lot_ref, completing->available,
				completing->expires, ch.points);
			m.touched = ++b.touches;
			if (ch.points > 0)
				LOY_TRY(c_->exec("INSERT INTO bonuses (kind, ref, token, store, points, local_date, at_utc) "
						 "VALUES ('challenge', ?1, ?2, ?3, ?4, ?5, ?6)",
						 {ref, token, completing->store, ch.points, completing->day, completing->at}));
			LOY_TRY(c_->exec("INSERT INTO challenge_awards (token, challenge, window_start, status, terminal_id, "
					 "receipt_id) VALUES (?1, ?2, ?3, 'paid', ?4, ?5) ON CONFLICT (token, challenge, "
					 "window_start) DO UPDATE SET status = 'paid', terminal_id = excluded.terminal_id, "
					 "receipt_id = excluded.receipt_id",
					 {token, ch.id, *start, completing->terminal, completing->receipt}));
		} else if (!completing && paid) {
			// No longer complete: the points it paid go back (what the
			// bonuses row holds: the program may have changed since).
			auto owed = c_->query("SELECT points - reversed FROM bonuses WHERE kind = 'challenge' AND ref = ?1 "
					      "AND points > reversed",
					      {ref});
			if (!owed)
				return owed.status();
			int64_t points = 0;
			for (size_t row = 0; row < owed->size(); row++)
				points += owed->int64(row, 0); // one unreversed row per award: no overflow
			LOY_TRY(take_back(b, m, nullptr, lot_ref, points, now));
			LOY_TRY(c_->exec("UPDATE bonuses SET reversed = points WHERE kind = 'challenge' AND ref = ?1", {ref}));
			LOY_TRY(c_->exec("UPDATE challenge_awards SET status = 'undone' WHERE token = ?1 AND challenge = ?2 AND "
					 "window_start = ?3",
					 {token, ch.id, *start}));
		}
	}
	return Status::ok();
}

Result<std::optional<int64_t>> SqlStore::stamp_expiry(const Json &e, const std::string &card, int64_t at)
{
	auto named = entry_program(e);
	if (!named)
		return named.status();
	// A program the centre never published (a terminal's own program
	// load): its stamps do not expire here.
	const StampCard *sc = *named ? (*named)->find_stamp_card(card) : nullptr;
	if (!sc || !sc->expiry_days)
		return std::optional<int64_t>();
	return std::optional<int64_t>(at + *sc->expiry_days * day_s);
}

Status SqlStore::give_stamps(const std::string &token, const std::string &card, const std::string &terminal,
			     const std::string &receipt, int64_t at, std::optional<int64_t> expires, int64_t n)
{
	if (n <= 0)
		return Status::ok();
	auto owed = c_->query("SELECT debt FROM stamp_debts WHERE token = ?1 AND card = ?2", {token, card});
	if (!owed)
		return owed.status();
	const int64_t pay = owed->empty() ? 0 : std::min(n, owed->int64(0, 0));
	if (pay > 0)
		LOY_TRY(c_->exec("UPDATE stamp_debts SET debt = debt - ?3 WHERE token = ?1 AND card = ?2",
				 {token, card, pay}));
	return c_->exec("INSERT INTO stamp_lots (token, card, terminal_id, receipt_id, at_utc, expires_at, stamps, "
			"remaining) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
			{token, card, terminal, receipt, at, expires, n, n - pay});
}

Status SqlStore::take_stamps(const std::string &token, const std::string &card, int64_t n, int64_t at,
			     const std::string *terminal, const std::string *receipt)
{
	int64_t left = n;
	auto take_from = [&](const sql::Rows &lots) -> Status {
		for (size_t r = 0; r < lots.size() && left > 0; r++) {
			const int64_t take = std::min(left, lots.int64(r, 1));
			left -= take;
			LOY_TRY(c_->exec("UPDATE stamp_lots SET remaining = remaining - ?2 WHERE id = ?1",
					 {lots.int64(r, 0), take}));
		}
		return Status::ok();
	};
	if (left > 0 && terminal && receipt) {
		auto own = c_->query("SELECT id, remaining FROM stamp_lots WHERE token = ?1 AND card = ?2 AND "
				     "remaining > 0 AND terminal_id = ?3 AND receipt_id = ?4 ORDER BY id",
				     {token, card, *terminal, *receipt});
		if (!own)
			return own.status();
		LOY_TRY(take_from(*own));
	}
	if (left > 0) {
		auto lots = c_->query("SELECT id, remaining FROM stamp_lots WHERE token = ?1 AND card = ?2 AND "
				      "remaining > 0 AND (expires_at IS NULL OR expires_at > ?3) ORDER BY at_utc, id",
				      {token, card, at});
		if (!lots)
			return lots.status();
		LOY_TRY(take_from(*lots));
	}
	if (left <= 0)
		return Status::ok();
	// Stamps used that the card no longer held (spent at another till
	// offline), not those a refund takes back.
	if (!terminal)
		LOY_TRY(c_->exec("INSERT INTO fraud_flags (token, rule, detail, first_seen) VALUES (?1, "
				 "'negative_balance', ?2, ?3) ON CONFLICT (token, rule) DO NOTHING",
				 {token, fmt::format("{} stamps of card {} used beyond what the card held", left, card),
				  at}));
	return c_->exec("INSERT INTO stamp_debts (token, card, debt) VALUES (?1, ?2, ?3) ON CONFLICT (token, card) "
			"DO UPDATE SET debt = stamp_debts.debt + excluded.debt",
			{token, card, left});
}

Status SqlStore::apply_stamps(const std::string &terminal, const std::string &token, const std::string &receipt,
			      const std::string &kind, const Json &e, int64_t at, int64_t now)
{
	const Json &d = e.at("data");
	const Json *list = nullptr;
	if (kind == "checkout" && d.at("receipt").contains("stamps"))
		list = &d["receipt"]["stamps"];
	else if (kind == "refund" && d.contains("stamps"))
		list = &d["stamps"];
	if (!list)
		return Status::ok();
	if (!list->is_array() || list->size() > program_stamp_cards_max)
		return bad(Code::bad_argument, fmt::format("entry {}: stamps must be a list of at most {} stamp cards",
							   e.at("seq").get<int64_t>(), program_stamp_cards_max));
	const int64_t seq = e.at("seq").get<int64_t>();
	auto count = [&](const Json &x, const char *key) -> Result<int64_t> {
		const Json &v = x.at(key);
		if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > receipt_points_max)
			return bad(Code::bad_argument, fmt::format("entry {}: stamps' {} must be 0 to {}", seq, key,
								   receipt_points_max));
		return v.get<int64_t>();
	};
	for (const Json &x : *list) {
		if (!x.is_object())
			return bad(Code::bad_argument, fmt::format("entry {}: a stamp change is not an object", seq));
		const std::string card = x.at("id").get<std::string>();
		if (card.empty() || card.size() > name_length_max || !utf8_valid(card))
			return bad(Code::bad_argument, fmt::format("entry {}: a stamp card id must be 1 to {} bytes "
								   "of UTF-8",
								   seq, name_length_max));
		if (kind == "checkout") {
			auto earned = count(x, "earned"), used = count(x, "used");
			if (!earned || !used)
				return !earned ? earned.status() : used.status();
			LOY_TRY(take_stamps(token, card, *used, at));
			auto expires = stamp_expiry(e, card, at);
			if (!expires)
				return expires.status();
			LOY_TRY(give_stamps(token, card, terminal, receipt, at, *expires, *earned));
		} else {
			// Taken back from the receipt's own stamps first; a reward's
			// stamps given back count as of the receipt refunded.
			auto reversed = count(x, "reversed"), returned = count(x, "returned");
			if (!reversed || !returned)
				return !reversed ? reversed.status() : returned.status();
			LOY_TRY(take_stamps(token, card, *reversed, now, &terminal, &receipt));
			auto expires = stamp_expiry(e, card, at);
			if (!expires)
				return expires.status();
			LOY_TRY(give_stamps(token, card, terminal, receipt, at, *expires, *returned));
		}
	}
	return Status::ok();
}

Status SqlStore::apply_memberships(const std::string &token, const std::string &kind, const Json &e, int64_t day)
{
	const int64_t seq = e.at("seq").get<int64_t>();
	const Json &list = e.at("data").at("memberships");
	if (!list.is_array() || list.size() > program_memberships_max)
		return bad(Code::bad_argument, fmt::format("entry {}: memberships must be a list of at most {}", seq,
							   program_memberships_max));
	for (const Json &x : list) {
		const std::string id = x.at("id").get<std::string>();
		if (id.empty() || id.size() > name_length_max || !utf8_valid(id))
			return bad(Code::bad_argument, fmt::format("entry {}: a membership id must be 1 to {} bytes of "
								   "UTF-8",
								   seq, name_length_max));
		const Json &v = x.at("days");
		if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > membership_ahead_max)
			return bad(Code::bad_argument, fmt::format("entry {}: membership days must be 1 to {}", seq,
								   membership_ahead_max));
		const int64_t days = v.get<int64_t>();
		auto row = c_->query("SELECT from_day, until_day FROM memberships WHERE token = ?1 AND membership = ?2",
				     {token, id});
		if (!row)
			return row.status();
		std::optional<MembershipRun> run;
		if (!row->empty())
			run = MembershipRun{row->int64(0, 0), row->int64(0, 1)};
		if (kind == "refund") {
			// The units back shorten the run they bought.
			if (!run)
				return bad(Code::bad_argument, fmt::format("entry {}: refunds days of membership {}, which "
									   "this member never had",
									   seq, id));
			run->until -= days;
		} else {
			auto bought = membership_bought(run, day, days);
			if (!bought)
				return bad(Code::bad_argument, fmt::format("entry {}: {}", seq, bought.status().message()));
			run = *bought;
		}
		LOY_TRY(c_->exec("INSERT INTO memberships (token, membership, from_day, until_day) VALUES (?1, ?2, ?3, ?4) "
				 "ON CONFLICT (token, membership) DO UPDATE SET from_day = excluded.from_day, "
				 "until_day = excluded.until_day",
				 {token, id, run->from, run->until}));
	}
	return Status::ok();
}

Result<std::map<std::string, std::map<std::string, int64_t>>>
SqlStore::member_stamps(const std::vector<std::string> &tokens, int64_t now)
{
	std::map<std::string, std::map<std::string, int64_t>> out;
	const Param list = Param::list(tokens);
	auto rows = c_->query(fmt::format("SELECT token, card, sum(remaining) FROM stamp_lots WHERE token {0} AND "
					  "remaining > 0 AND (expires_at IS NULL OR expires_at > ?2) GROUP BY token, card "
					  "UNION ALL SELECT token, card, -debt FROM stamp_debts WHERE token {0} AND debt > 0",
					  in(1)),
			      {list, now});
	if (!rows)
		return rows.status();
	for (size_t r = 0; r < rows->size(); r++)
		out[rows->text(r, 0)][rows->text(r, 1)] += rows->int64(r, 2);
	for (auto &[token, cards] : out)
		for (auto it = cards.begin(); it != cards.end();)
			it = it->second == 0 ? cards.erase(it) : std::next(it);
	return out;
}

Status SqlStore::write_batch(Batch &b, const std::string &terminal)
{
	// Lot ids: PostgreSQL's sequence, SQLite's counter.
	std::vector<size_t> fresh;
	for (size_t i = 0; i < b.lots.size(); i++)
		if (b.lots[i].is_new)
			fresh.push_back(i);
	std::vector<int64_t> ids;
	if (!fresh.empty()) {
		if (pg()) {
			auto rows = c_->query("SELECT nextval('lot_ids') FROM generate_series(1, ?1)",
					      {static_cast<int64_t>(fresh.size())});
			if (!rows)
				return rows.status();
			for (size_t r = 0; r < rows->size(); r++)
				ids.push_back(rows->int64(r, 0));
			std::sort(ids.begin(), ids.end());
		} else {
			auto taken = take_counter("lot_id", static_cast<int64_t>(fresh.size()));
			if (!taken)
				return taken.status();
			ids = std::move(taken).value();
		}
		if (ids.size() != fresh.size())
			return bad(Code::storage, "central: the database gave too few lot ids");
	}
	std::vector<Params> inserts, updates;
	for (size_t k = 0; k < fresh.size(); k++) {
		const Lot &l = b.lots[fresh[k]];
		inserts.push_back({ids[k], l.token, l.store, l.terminal, l.receipt, l.available_at, l.expires_at,
				   l.points, l.remaining});
	}
	for (const Lot &l : b.lots)
		if (!l.is_new && l.changed)
			updates.push_back({l.id, l.remaining});
	LOY_TRY(c_->insert_many("lots",
				{"id", "token", "store", "terminal_id", "receipt_id", "available_at", "expires_at",
				 "points", "remaining"},
				inserts));
	LOY_TRY(c_->update_many("lots", {"id"}, {"remaining"}, updates));
	inserts.clear();
	updates.clear();
	for (const auto &[id, x] : b.receipts) {
		if (x.is_new)
			inserts.push_back({terminal, id, x.token, x.store, x.at_utc, x.eligible, x.earned, x.redeemed,
					   x.reversed, x.returned, x.expires_at, x.local_date, x.refunded_at});
		else if (x.changed)
			updates.push_back({terminal, id, x.eligible, x.reversed, x.returned, x.refunded_at});
	}
	LOY_TRY(c_->insert_many("receipts",
				{"terminal_id", "receipt_id", "token", "store", "at_utc", "eligible", "earned",
				 "redeemed", "reversed", "returned", "expires_at", "local_date", "refunded_at"},
				inserts));
	LOY_TRY(c_->update_many("receipts", {"terminal_id", "receipt_id"},
				{"eligible", "reversed", "returned", "refunded_at"}, updates));
	inserts.clear();
	for (const auto &[id, x] : b.receipts)
		for (const auto &[campaign, points] : x.campaigns)
			inserts.push_back({terminal, id, campaign, points, x.eligible_at_checkout});
	LOY_TRY(c_->insert_many("receipt_campaigns", {"terminal_id", "receipt_id", "campaign", "points", "spend"},
				inserts));
	inserts.clear();
	for (const auto &[key, eligible] : b.spend_days)
		if (eligible != 0)
			inserts.push_back({key.first, key.second, eligible});
	std::vector<Params> gifts;
	for (const Donation &x : b.donations)
		gifts.push_back({terminal, x.seq, x.token, x.store, x.charity, x.points, x.local_date, x.at_utc});
	LOY_TRY(c_->insert_many("donations",
				{"terminal_id", "seq", "token", "store", "charity", "points", "local_date", "at_utc"},
				gifts));
	LOY_TRY(c_->insert_many("spend_days", {"token", "day", "eligible"}, inserts,
				"ON CONFLICT (token, day) DO UPDATE SET eligible = spend_days.eligible + excluded.eligible"));
	LOY_TRY(write_referrals(b));
	std::vector<Params> flags;
	for (const FlagRow &f : b.flags)
		flags.push_back({f.token, f.rule, f.detail, f.first_seen});
	LOY_TRY(c_->insert_many("fraud_flags", {"token", "rule", "detail", "first_seen"}, flags,
				"ON CONFLICT (token, rule) DO NOTHING"));
	// The members touched, in the order of their last change in the batch.
	std::vector<std::pair<int64_t, const std::string *>> touched;
	for (const auto &[token, m] : b.members)
		if (m.touched)
			touched.emplace_back(m.touched, &token);
	std::sort(touched.begin(), touched.end());
	// Their change numbers last (the file header), in the same statement.
	auto changes = take_counter("member_change", static_cast<int64_t>(touched.size()));
	if (!changes)
		return changes.status();
	updates.clear();
	for (size_t i = 0; i < touched.size(); i++) {
		const Member &m = b.members[*touched[i].second];
		updates.push_back({*touched[i].second, m.masked, m.enrolled, m.debt, m.points, m.spend, (*changes)[i]});
	}
	return c_->update_many("members", {"token"}, {"masked", "enrolled", "debt", "points", "spend", "change"},
			       updates);
}

Result<ChainHead> SqlStore::push(const std::string &terminal, const std::string &store, const std::string &ledger,
				 const std::vector<PushEntry> &entries, int64_t now, std::optional<int64_t> device_now)
{
	auto head = apply_batch(terminal, store, ledger, entries, now, device_now);
	// Refused for what it holds (not for a busy or failing store): that
	// terminal's syncs fail until someone looks, so the report says so.
	if (!head && (head.status().code() == Code::bad_argument || head.status().code() == chain_conflict)) {
		Status noted = note_refusal(terminal, store, head.status().message(), now);
		if (!noted)
			std::fprintf(stderr, "loyalty-central: cannot record a refused push of %s: %s\n",
				     terminal.c_str(), noted.message().c_str());
	}
	return head;
}

// The refusal kept for the report: its message names the entry and the
// field within a few hundred bytes; a longer one is cut there.
constexpr size_t refusal_bytes_max = 500;

Status SqlStore::note_refusal(const std::string &terminal, const std::string &store, const std::string &why,
			      int64_t now)
{
	return transact([&]() -> Status {
		return c_->exec("INSERT INTO terminals (terminal_id, store, last_hash, refused_pushes, last_refusal, "
				"last_refusal_at) VALUES (?1, ?2, ?3, 1, ?4, ?5) ON CONFLICT (terminal_id) DO UPDATE SET "
				"refused_pushes = terminals.refused_pushes + 1, last_refusal = excluded.last_refusal, "
				"last_refusal_at = excluded.last_refusal_at",
				{terminal, store, zero_hash, utf8_scrub(why.substr(0, refusal_bytes_max)), now});
	});
}

Result<ChainHead> SqlStore::apply_batch(const std::string &terminal, const std::string &store,
					const std::string &ledger, const std::vector<PushEntry> &entries, int64_t now,
					std::optional<int64_t> device_now)
{
	if (entries.size() > push_entries_max)
		return bad(Code::bad_argument, fmt::format("push: {} entries, at most {} per batch",
							   entries.size(), push_entries_max));
	// What can be checked without the database, once, before any retry:
	// each entry's hash and JSON, a large batch's in two halves at once
	// (a terminal's push waits on this; the database is idle meanwhile).
	std::vector<Json> bodies(entries.size());
	std::vector<char> hash_ok(entries.size());
	auto check = [&](size_t from, size_t to) {
		for (size_t i = from; i < to; i++) {
			hash_ok[i] = crypto::to_hex(crypto::sha256(entries[i].body)) == entries[i].hash;
			auto parsed = json_parse(entries[i].body, Code::bad_argument, "entry");
			if (parsed)
				bodies[i] = std::move(parsed).value();
		}
	};
	const size_t half = entries.size() >= parallel_check_entries_min ? entries.size() / 2 : 0;
	std::thread other;
	if (half > 0) {
		try {
			other = std::thread(check, half, entries.size());
		} catch (const std::system_error &) {
			// No thread to be had (a process at its limit): all here.
		}
	}
	check(0, other.joinable() ? half : entries.size());
	if (other.joinable())
		other.join();
	return transact([&]() -> Result<ChainHead> {
		// The terminal's row, locked: its pushes, to whichever server, go
		// one at a time.
		LOY_TRY(c_->exec("INSERT INTO terminals (terminal_id, store, last_hash) VALUES (?1, ?2, ?3) "
				 "ON CONFLICT (terminal_id) DO NOTHING",
				 {terminal, store, zero_hash}));
		auto head = c_->query(fmt::format("SELECT acked_through, last_hash, last_device_time, ledger FROM "
						  "terminals WHERE terminal_id = ?1{}",
						  for_update()),
				      {terminal});
		if (!head)
			return head.status();
		if (head->empty())
			return bad(Code::internal, "push: the terminal's row vanished");
		int64_t acked = head->int64(0, 0);
		std::string last_hash = head->text(0, 1);
		std::optional<int64_t> last_device = head->optional_int64(0, 2);
		if (!ledger.empty() && !head->is_null(0, 3) && head->text(0, 3) != ledger)
			return bad(chain_conflict, fmt::format("terminal {} pushes from another ledger than before (a "
							       "second data dir with its identity?): its entries are "
							       "refused",
							       terminal));
		// What the new entries touch, read (and locked) before any applies.
		std::set<std::string> tokens, spenders, receipts;
		std::vector<int64_t> held_seqs;
		for (size_t i = 0; i < entries.size(); i++) {
			if (entries[i].seq <= acked) {
				held_seqs.push_back(entries[i].seq);
				continue;
			}
			const Json &b = bodies[i];
			auto text = [&b](const char *key) {
				auto it = b.is_object() ? b.find(key) : b.end();
				return b.is_object() && it != b.end() && it->is_string() ? it->get<std::string>() : "";
			};
			const std::string token = text("token");
			if (token.size() != member_token_hex_bytes)
				continue; // refused when it is applied
			tokens.insert(token);
			receipts.insert(text("receipt"));
			// Whose points the batch may take: a refund's, an adjustment's,
			// a redemption's (the rest only add lots).
			const std::string kind = text("kind");
			bool spends = kind == "refund" || kind == "adjust" || kind == "donate";
			if (kind == "checkout") {
				auto d = b.find("data");
				const Json *r = d != b.end() && d->is_object() && d->contains("receipt") ? &d->at("receipt")
													   : nullptr;
				spends = !r || !r->is_object() || !r->contains("redeemed") || r->at("redeemed") != 0;
			}
			if (spends)
				spenders.insert(token);
			// An enrolment's referrer: read, and its lots too (a bonus may
			// be paid or taken back in this batch).
			if (kind == "enroll") {
				auto d = b.find("data");
				if (d != b.end() && d->is_object() && d->contains("referrer") && d->at("referrer").is_string()) {
					const std::string by = d->at("referrer").get<std::string>();
					if (by.size() == member_token_hex_bytes) {
						tokens.insert(by);
						spenders.insert(by);
					}
				}
			}
		}
		// The referrals of the batch's members, and their referrers.
		Batch batch;
		if (!tokens.empty()) {
			auto rr = c_->query(fmt::format("SELECT token, referrer, referrer_masked, enrolled_day, status, "
							"reason, terminal_id, receipt_id FROM referrals WHERE token {}",
							in(1)),
					    {Param::list(std::vector<std::string>(tokens.begin(), tokens.end()))});
			if (!rr)
				return rr.status();
			for (size_t r = 0; r < rr->size(); r++) {
				ReferralRow x;
				x.referrer = rr->text(r, 1);
				x.referrer_masked = rr->text(r, 2);
				x.enrolled_day = rr->int64(r, 3);
				x.status = rr->text(r, 4);
				x.reason = rr->text(r, 5);
				if (!rr->is_null(r, 6))
					x.terminal = rr->text(r, 6);
				if (!rr->is_null(r, 7))
					x.receipt = rr->text(r, 7);
				if (x.status != "rejected") {
					tokens.insert(x.referrer);
					spenders.insert(x.referrer);
					spenders.insert(rr->text(r, 0));
				}
				batch.referrals.emplace(rr->text(r, 0), std::move(x));
			}
		}
		std::map<int64_t, std::string> held;
		if (!held_seqs.empty()) {
			auto rows = c_->query(fmt::format("SELECT seq, hash FROM entries WHERE terminal_id = ?1 AND seq {}",
							  in(2)),
					      {terminal, Param::list(held_seqs)});
			if (!rows)
				return rows.status();
			for (size_t r = 0; r < rows->size(); r++)
				held[rows->int64(r, 0)] = rows->text(r, 1);
		}
		LOY_TRY(load_batch(batch, terminal, {tokens.begin(), tokens.end()}, {spenders.begin(), spenders.end()},
				   {receipts.begin(), receipts.end()}));

		std::vector<Params> rows;
		int64_t back = 0, future = 0;
		for (size_t i = 0; i < entries.size(); i++) {
			const PushEntry &e = entries[i];
			if (e.seq <= acked) {
				auto it = held.find(e.seq);
				if (it == held.end() || it->second != e.hash)
					return bad(chain_conflict, fmt::format("push: entry {} of {} differs from the one "
									       "already held",
									       e.seq, terminal));
				continue;
			}
			if (e.seq != acked + 1)
				return bad(chain_conflict, fmt::format("push: entry {} of {} leaves a gap after {}", e.seq,
								       terminal, acked));
			if (!hash_ok[i])
				return bad(chain_conflict, fmt::format("push: entry {} of {}: hash does not match its "
								       "body",
								       e.seq, terminal));
			const Json &b = bodies[i];
			auto field_is = [&b](const char *key, const Json &want) {
				auto it = b.find(key);
				return it != b.end() && *it == want;
			};
			auto text_of = [&b](const char *key) {
				auto it = b.find(key);
				return it != b.end() && it->is_string() ? it->get<std::string>() : std::string();
			};
			if (!b.is_object() || !field_is("terminal", terminal) || !field_is("seq", e.seq))
				return bad(Code::bad_argument, fmt::format("push: entry {} is not an entry of terminal {}",
									   e.seq, terminal));
			if (!field_is("prev", last_hash))
				return bad(chain_conflict, fmt::format("push: entry {} of {} does not continue the hash "
								       "chain",
								       e.seq, terminal));
			LOY_TRY(apply(batch, terminal, store, e.seq, b, now));
			// The terminal's clock, flagged, never trusted: an entry stamped
			// after it arrived, or before the entry it follows. (An entry
			// recorded offline hours ago is not a skew: it is old.)
			if (auto device = parse_timestamp(text_of("device_time"))) {
				if (device->utc_s > now + clock_skew_flag_s)
					future++;
				if (last_device && device->utc_s < *last_device - clock_back_flag_s)
					back++;
				last_device = device->utc_s;
			}
			// The entry's own fields, typed: apply() checked what its kind
			// uses; the rest (points beside an enrolment, say) must still be
			// a 64-bit integer within bounds, or the entry is refused.
			int64_t points = 0;
			if (auto it = b.find("points"); it != b.end()) {
				if (!it->is_number_integer() || (it->is_number_unsigned() && it->get<uint64_t>() > INT64_MAX) ||
				    it->get<int64_t>() < -receipt_points_max || it->get<int64_t>() > receipt_points_max)
					return bad(Code::bad_argument,
						   fmt::format("push: entry {}: points must be an integer within ±{}", e.seq,
							       receipt_points_max));
				points = it->get<int64_t>();
			}
			rows.push_back({terminal, e.seq, e.hash, text_of("kind"), text_of("token"), text_of("receipt"),
					points, text_of("device_time"), now, e.body});
			acked = e.seq;
			last_hash = e.hash;
		}
		LOY_TRY(c_->insert_many("entries",
					{"terminal_id", "seq", "hash", "kind", "token", "receipt_id", "points",
					 "device_time", "received_at", "body"},
					rows));
		// The skew at this sync: the terminal's clock when it sent the batch
		// against ours when it arrived (the network adds well under a second).
		std::optional<int64_t> skew;
		if (device_now)
			skew = *device_now - now;
		// The ledger a terminal syncs from is fixed by its first entries (an
		// empty push after init fixes nothing: the data dir may be made again).
		LOY_TRY(c_->exec("UPDATE terminals SET store = ?2, acked_through = ?3, last_hash = ?4, last_push = ?5, "
				 "max_skew_s = CASE WHEN abs(coalesce(?6, 0)) > max_skew_s THEN abs(coalesce(?6, 0)) "
				 "ELSE max_skew_s END, "
				 "clock_skew_s = coalesce(?6, clock_skew_s), entries_back = entries_back + ?7, "
				 "entries_future = entries_future + ?8, "
				 "last_device_time = coalesce(?9, last_device_time), "
				 "ledger = coalesce(ledger, ?10) WHERE terminal_id = ?1",
				 {terminal, store, acked, last_hash, now, skew, back, future, last_device,
				  entries.empty() || ledger.empty() ? std::optional<std::string>()
								    : std::optional<std::string>(ledger)}));
		LOY_TRY(write_batch(batch, terminal));
		return ChainHead{acked, last_hash};
	});
}

Result<EntriesPage> SqlStore::entries_after(const std::string &terminal, const std::string &ledger, int64_t after,
					    int limit)
{
	// One snapshot: the head and the page agree even while the terminal's
	// other connection pushes.
	return transact([&]() -> Result<EntriesPage> {
		auto head = c_->query("SELECT acked_through, last_hash, ledger FROM terminals WHERE terminal_id = ?1",
				      {terminal});
		if (!head)
			return head.status();
		EntriesPage page;
		page.head.hash = zero_hash;
		if (!head->empty()) {
			if (!ledger.empty() && !head->is_null(0, 2) && head->text(0, 2) != ledger)
				return bad(chain_conflict, fmt::format("terminal {} pushes from another ledger than "
								       "before (a second data dir with its identity?): "
								       "its entries are refused",
								       terminal));
			page.head.seq = head->int64(0, 0);
			page.head.hash = head->text(0, 1);
		}
		auto rows = c_->query("SELECT seq, hash, body FROM entries WHERE terminal_id = ?1 AND seq > ?2 AND "
				      "seq <= ?3 ORDER BY seq LIMIT ?4",
				      {terminal, after, page.head.seq, int64_t{limit} + 1});
		if (!rows)
			return rows.status();
		for (size_t r = 0; r < rows->size(); r++) {
			if (page.entries.size() == static_cast<size_t>(limit)) {
				page.more = true;
				break;
			}
			page.entries.push_back(PushEntry{rows->int64(r, 0), rows->text(r, 1), rows->text(r, 2)});
		}
		return page;
	});
}

Result<std::optional<std::string>> SqlStore::program_after(const std::string &id, int64_t after)
{
	auto rows = id.empty() ? c_->query("SELECT document FROM programs WHERE version > ?1 "
					   "ORDER BY published_at DESC, version DESC LIMIT 1",
					   {after})
			       : c_->query("SELECT document FROM programs WHERE id = ?1 AND version > ?2 "
					   "ORDER BY version DESC LIMIT 1",
					   {id, after});
	if (!rows)
		return rows.status();
	if (rows->empty())
		return std::optional<std::string>();
	return std::optional<std::string>(rows->text(0, 0));
}

Result<std::optional<std::string>> SqlStore::program_version(const std::string &id, int64_t version)
{
	auto rows = c_->query("SELECT document FROM programs WHERE id = ?1 AND version = ?2", {id, version});
	if (!rows)
		return rows.status();
	if (rows->empty())
		return std::optional<std::string>();
	return std::optional<std::string>(rows->text(0, 0));
}

Status SqlStore::sweep(int64_t now)
{
	// One sweep at a time is enough: another centre's covers this moment.
	if (pg()) {
		auto got = c_->query("SELECT pg_try_advisory_xact_lock(?1)", {sweep_lock});
		if (!got)
			return got.status();
		if (got->empty() || got->text(0, 0) != "t")
			return Status::ok();
	}
	auto last = scalar("SELECT CAST(value AS BIGINT) FROM meta WHERE key = 'sweep_at'");
	if (!last)
		return last.status();
	// Expiry runs every time: points pushed late may be past their date
	// already. Availability is looked for in (last sweep, now] only.
	// Two selects, each on its index (one with OR scans every lot).
	auto due = c_->query("SELECT token FROM lots WHERE available_at > ?1 AND available_at <= ?2 AND remaining > 0 "
			     "AND available_at > 0 "
			     "UNION SELECT token FROM lots WHERE remaining > 0 AND expires_at <= ?2 "
			     "UNION SELECT token FROM stamp_lots WHERE remaining > 0 AND expires_at <= ?2",
			     {*last, now});
	if (!due)
		return due.status();
	std::vector<std::string> tokens;
	for (size_t r = 0; r < due->size(); r++)
		tokens.push_back(due->text(r, 0));
	std::sort(tokens.begin(), tokens.end());
	if (!tokens.empty()) {
		LOY_TRY(lock_members(tokens));
		LOY_TRY(c_->exec(fmt::format("UPDATE members SET points = points - coalesce((SELECT sum(remaining) "
					     "FROM lots WHERE lots.token = members.token AND remaining > 0 AND "
					     "expires_at <= ?1), 0) WHERE token {}",
					     in(2)),
				 {now, Param::list(tokens)}));
		LOY_TRY(c_->exec(fmt::format("UPDATE lots SET expired = expired + remaining, remaining = 0 "
					     "WHERE remaining > 0 AND expires_at <= ?1 AND token {}",
					     in(2)),
				 {now, Param::list(tokens)}));
		LOY_TRY(c_->exec(fmt::format("UPDATE stamp_lots SET expired = expired + remaining, remaining = 0 "
					     "WHERE remaining > 0 AND expires_at <= ?1 AND token {}",
					     in(2)),
				 {now, Param::list(tokens)}));
		LOY_TRY(touch(tokens));
	}
	if (now <= *last)
		return Status::ok();
	return c_->exec("INSERT INTO meta (key, value) VALUES ('sweep_at', ?1) "
			"ON CONFLICT (key) DO UPDATE SET value = excluded.value",
			{std::to_string(now)});
}

Result<std::vector<MemberInfo>> SqlStore::member_info(const std::vector<std::string> &tokens, int64_t now)
{
	// Read off the member's row and a few index entries each, never its
	// history (a pull asks this of every member changed): points held on
	// the row less those pending or expired but not yet swept, the next
	// expiry one index entry, the qualifying spend a sum of days.
	std::map<std::string, MemberInfo> found;
	for (const auto &t : tokens)
		found[t].token = t;
	const Param list = Param::list(tokens);
	auto ms = c_->query(fmt::format("SELECT token, masked, blocked, points - debt, change, enrolled FROM members "
					"WHERE token {}",
					in(1)),
			    {list});
	if (!ms)
		return ms.status();
	for (size_t r = 0; r < ms->size(); r++) {
		MemberInfo &m = found[ms->text(r, 0)];
		// A row only named (a referrer no entry showed) is no member yet.
		m.known = !ms->is_null(r, 1) || ms->int64(r, 5) != 0 || ms->int64(r, 4) != 0;
		m.masked = ms->text(r, 1);
		m.blocked = ms->int64(r, 2) != 0;
		m.balance = ms->int64(r, 3);
		m.change = ms->int64(r, 4);
	}
	auto ls = c_->query(fmt::format("SELECT token, 1, sum(remaining) FROM lots WHERE token {0} AND remaining > 0 "
					"AND available_at > ?2 AND available_at > 0 AND (expires_at IS NULL OR expires_at > ?2) "
					"GROUP BY token "
					"UNION ALL SELECT token, 0, sum(remaining) FROM lots WHERE token {0} AND "
					"remaining > 0 AND expires_at <= ?2 GROUP BY token",
					in(1)),
			    {list, now});
	if (!ls)
		return ls.status();
	for (size_t r = 0; r < ls->size(); r++) {
		MemberInfo &m = found[ls->text(r, 0)];
		const int64_t points = ls->int64(r, 2);
		m.balance -= points;
		if (ls->int64(r, 1) == 1)
			m.pending += points;
	}
	auto xs = c_->query(fmt::format("SELECT list.value, (SELECT expires_at FROM lots WHERE lots.token = list.value "
					"AND remaining > 0 AND expires_at > ?2 ORDER BY expires_at LIMIT 1) FROM {}",
					sql::list_table(c_->dialect(), 1)),
			    {list, now});
	if (!xs)
		return xs.status();
	for (size_t r = 0; r < xs->size(); r++)
		if (!xs->is_null(r, 1))
			found[xs->text(r, 0)].next_expiry = utc_date(xs->int64(r, 1));
	// The window's whole days from spend_days, the day it starts in from
	// that day's receipts.
	const int64_t from = now - qualifying_window_days * day_s;
	const int64_t first_day = utc_day(from);
	auto ss = c_->query(fmt::format("SELECT token, sum(eligible) FROM spend_days WHERE token {0} AND day > ?2 "
					"GROUP BY token UNION ALL SELECT token, sum(eligible) FROM receipts WHERE token {0} "
					"AND at_utc > ?3 AND at_utc < ?4 GROUP BY token",
					in(1)),
			    {list, first_day, from, (first_day + 1) * day_s});
	if (!ss)
		return ss.status();
	for (size_t r = 0; r < ss->size(); r++)
		found[ss->text(r, 0)].qualifying_spend += ss->int64(r, 1);
	auto gs = c_->query(fmt::format("SELECT token, name FROM member_segments WHERE token {} ORDER BY token, name",
					in(1)),
			    {list});
	if (!gs)
		return gs.status();
	for (size_t r = 0; r < gs->size(); r++)
		found[gs->text(r, 0)].segments.push_back(gs->text(r, 1));
	auto stamps = member_stamps(tokens, now);
	if (!stamps)
		return stamps.status();
	for (auto &[token, cards] : *stamps)
		found[token].stamps = std::move(cards);
	auto runs = c_->query(fmt::format("SELECT token, membership, from_day, until_day FROM memberships WHERE token {}",
					  in(1)),
			      {list});
	if (!runs)
		return runs.status();
	for (size_t r = 0; r < runs->size(); r++)
		found[runs->text(r, 0)].memberships[runs->text(r, 1)] = MembershipRun{runs->int64(r, 2), runs->int64(r, 3)};
	auto p = current_program();
	if (!p)
		return p.status();
	std::vector<MemberInfo> out;
	for (const auto &t : tokens) {
		MemberInfo m = found[t];
		if (*p)
			m.tier = (*p)->tier_for(m.qualifying_spend).name;
		out.push_back(std::move(m));
	}
	return out;
}

Result<MembersPage> SqlStore::members_after(int64_t watermark, int limit, int64_t now)
{
	if (limit <= 0 || limit > members_page_max)
		limit = members_page_max;
	return transact([&]() -> Result<MembersPage> {
		LOY_TRY(sweep(now));
		auto rows = c_->query("SELECT token FROM members WHERE change > ?1 ORDER BY change LIMIT ?2",
				      {watermark, int64_t{limit} + 1});
		if (!rows)
			return rows.status();
		std::vector<std::string> tokens;
		for (size_t r = 0; r < rows->size(); r++)
			tokens.push_back(rows->text(r, 0));
		MembersPage page;
		page.watermark = watermark;
		page.more = tokens.size() > static_cast<size_t>(limit);
		if (page.more)
			tokens.pop_back();
		auto info = member_info(tokens, now);
		if (!info)
			return info.status();
		for (auto &m : *info) {
			page.watermark = std::max(page.watermark, m.change);
			page.members.push_back(std::move(m));
		}
		return page;
	});
}

Result<Published> SqlStore::publish_program(std::string_view document, int64_t now)
{
	auto p = parse_program(document);
	if (!p)
		return p.status();
	return transact([&]() -> Result<Published> {
		// Publishers of one program go one at a time (a second centre's
		// publish of the same version waits, then finds it).
		if (pg())
			LOY_TRY(c_->exec("SELECT pg_advisory_xact_lock(?1)", {migrate_lock}));
		auto newest = c_->query("SELECT version, document FROM programs WHERE id = ?1 ORDER BY version DESC "
					"LIMIT 1",
					{p->id});
		if (!newest)
			return newest.status();
		bool published = true;
		if (!newest->empty()) {
			int64_t v = newest->int64(0, 0);
			if (p->version < v ||
			    (p->version == v && Json::parse(newest->text(0, 1)) != Json::parse(document)))
				return bad(Code::old_program,
					   fmt::format("program {} v{} is not newer than v{} already published", p->id,
						       p->version, v));
			published = p->version > v;
		}
		if (published) {
			Timestamp t;
			t.utc_s = now;
			// Published order; the version breaks ties within a second.
			LOY_TRY(c_->exec("INSERT INTO programs (id, version, document, published_at) VALUES "
					 "(?1, ?2, ?3, ?4)",
					 {p->id, p->version, std::string(document),
					  fmt::format("{}#{:020}", format_timestamp(t), p->version)}));
		}
		return Published{p->id, p->version, published};
	});
}

// Enrolling and blocking: one flag set on the member, a new change number,
// one transaction.
Result<std::string> SqlStore::mark_member(std::string_view scan, const char *update_sql)
{
	auto card = card_token(scan);
	if (!card)
		return card.status();
	return transact([&]() -> Result<std::string> {
		LOY_TRY(lock_members({card->first}));
		LOY_TRY(c_->exec(update_sql, {card->first, card->second}));
		LOY_TRY(touch({card->first}));
		return card->second;
	});
}

Result<MarkedCard> SqlStore::enroll(std::string_view scan, int64_t now, std::string_view referrer)
{
	if (referrer.empty()) {
		auto masked = mark_member(scan, "UPDATE members SET enrolled = 1, masked = ?2 WHERE token = ?1");
		if (!masked)
			return masked.status();
		return MarkedCard{std::move(masked).value()};
	}
	auto card = card_token(scan);
	if (!card)
		return card.status();
	auto by = card_token(referrer);
	if (!by)
		return Status(by.status().code(), "--referrer: " + by.status().message());
	auto done = transact([&]() -> Status {
		// As a terminal's enrolment entry is applied, on the centre's day.
		std::vector<std::string> both{card->first, by->first};
		std::sort(both.begin(), both.end());
		both.erase(std::unique(both.begin(), both.end()), both.end());
		Batch b;
		LOY_TRY(load_batch(b, "", both, both, {}));
		auto rr = c_->query("SELECT status FROM referrals WHERE token = ?1", {card->first});
		if (!rr)
			return rr.status();
		if (!rr->empty())
			b.referrals[card->first].status = rr->text(0, 0); // decided already
		const Member &m = b.members[card->first];
		const bool was_known = m.masked.has_value() || m.enrolled != 0;
		LOY_TRY(refer(b, card->first, was_known, by->first, by->second, utc_day(now), now));
		LOY_TRY(write_referrals(b));
		LOY_TRY(c_->exec("UPDATE members SET enrolled = 1, masked = ?2 WHERE token = ?1",
				 {card->first, card->second}));
		return touch({card->first});
	});
	if (!done)
		return done;
	return MarkedCard{card->second};
}

Result<MarkedCard> SqlStore::block(std::string_view scan, int64_t)
{
	auto masked = mark_member(scan, "UPDATE members SET blocked = 1, masked = coalesce(masked, ?2) "
					"WHERE token = ?1");
	if (!masked)
		return masked.status();
	return MarkedCard{std::move(masked).value()};
}

Result<MarkedCard> SqlStore::unblock(std::string_view scan, int64_t)
{
	auto masked = mark_member(scan, "UPDATE members SET blocked = 0, masked = coalesce(masked, ?2) "
					"WHERE token = ?1");
	if (!masked)
		return masked.status();
	return MarkedCard{std::move(masked).value()};
}

Result<Balance> SqlStore::segment(std::string_view scan, std::string_view name, bool add, int64_t now)
{
	LOY_TRY(check_segment_name(name));
	auto card = card_token(scan);
	if (!card)
		return card.status();
	const std::string token = card->first;
	Status done = transact([&]() -> Status {
		LOY_TRY(lock_members({token}));
		if (!add) {
			LOY_TRY(c_->exec("DELETE FROM member_segments WHERE token = ?1 AND name = ?2",
					 {token, std::string(name)}));
		} else {
			auto held = c_->query("SELECT name FROM member_segments WHERE token = ?1", {token});
			if (!held)
				return held.status();
			bool in = false;
			for (size_t r = 0; r < held->size(); r++)
				in = in || held->text(r, 0) == name;
			if (in)
				return Status::ok();
			if (held->size() >= member_segments_max)
				return bad(Code::bad_argument, fmt::format("card {} is in {} segments already, the most a "
									   "member can be in",
									   card->second, member_segments_max));
			LOY_TRY(c_->exec("INSERT INTO member_segments (token, name) VALUES (?1, ?2)",
					 {token, std::string(name)}));
		}
		// The masked card for a member first seen here, as block() does.
		LOY_TRY(c_->exec("UPDATE members SET masked = coalesce(masked, ?2) WHERE token = ?1",
				 {token, card->second}));
		return touch({token});
	});
	if (!done)
		return done;
	auto m = member_info({token}, now);
	if (!m)
		return m.status();
	return Balance{card->second, std::move(m->front())};
}

Result<Balance> SqlStore::balance(std::string_view scan, int64_t now)
{
	auto card = card_token(scan);
	if (!card)
		return card.status();
	auto m = member_info({card->first}, now);
	if (!m)
		return m.status();
	MemberInfo info = std::move(m->front());
	auto rr = c_->query("SELECT referrer_masked, status, reason FROM referrals WHERE token = ?1", {card->first});
	if (!rr)
		return rr.status();
	if (!rr->empty())
		info.referral = ReferralShown{rr->text(0, 0), rr->text(0, 1), rr->text(0, 2)};
	// Every stamp card of the program in force, held or not.
	auto p = current_program();
	if (!p)
		return p.status();
	if (info.known && *p)
		for (const auto &sc : (*p)->stamp_cards)
			info.stamps.emplace(sc.id, 0);
	return Balance{card->second, std::move(info)};
}

Result<Statement> SqlStore::statement(std::string_view scan, int64_t now)
{
	auto b = balance(scan, now);
	if (!b)
		return b.status();
	Statement out{std::move(b).value(), {}, {}};
	if (!out.balance.member.known)
		return out;
	const std::string token = out.balance.member.token;
	auto rs = c_->query("SELECT at_utc, terminal_id, receipt_id, earned - redeemed, returned - reversed, "
			    "coalesce(refunded_at, at_utc) FROM receipts WHERE token = ?1 ORDER BY at_utc, terminal_id, "
			    "receipt_id",
			    {token});
	if (!rs)
		return rs.status();
	for (size_t r = 0; r < rs->size(); r++) {
		out.history.push_back(
			HistoryItem{rs->int64(r, 0), rs->text(r, 1), rs->text(r, 2), "checkout", rs->int64(r, 3)});
		if (rs->int64(r, 4) != 0)
			out.history.push_back(
				HistoryItem{rs->int64(r, 5), rs->text(r, 1), rs->text(r, 2), "refund", rs->int64(r, 4)});
	}
	// The centre's bonuses, at the receipt's time they were paid with.
	auto bs = c_->query("SELECT kind, points - reversed, ref, coalesce(at_utc, local_date * 86400, 0) FROM bonuses "
			    "WHERE token = ?1 ORDER BY id",
			    {token});
	if (!bs)
		return bs.status();
	for (size_t r = 0; r < bs->size(); r++)
		if (bs->int64(r, 1) != 0)
			out.history.push_back(HistoryItem{bs->int64(r, 3), "", bs->text(r, 2), bs->text(r, 0), bs->int64(r, 1)});
	auto ds = c_->query("SELECT terminal_id, seq, charity, points, coalesce(at_utc, local_date * 86400) FROM "
			    "donations WHERE token = ?1",
			    {token});
	if (!ds)
		return ds.status();
	for (size_t r = 0; r < ds->size(); r++)
		out.history.push_back(
			HistoryItem{ds->int64(r, 4), ds->text(r, 0), ds->text(r, 2), "donation", -ds->int64(r, 3)});
	std::stable_sort(out.history.begin(), out.history.end(),
			 [](const HistoryItem &x, const HistoryItem &y) { return x.at_utc < y.at_utc; });
	auto ls = c_->query("SELECT receipts.at_utc, lots.remaining, lots.expires_at FROM lots LEFT JOIN receipts ON "
			    "receipts.terminal_id = lots.terminal_id AND receipts.receipt_id = lots.receipt_id WHERE "
			    "lots.token = ?1 AND lots.remaining > 0 ORDER BY lots.expires_at IS NULL, lots.expires_at, lots.id",
			    {token});
	if (!ls)
		return ls.status();
	for (size_t r = 0; r < ls->size(); r++)
		out.lots.push_back(LotItem{ls->optional_int64(r, 0), ls->int64(r, 1), ls->optional_int64(r, 2)});
	return out;
}

namespace {

// The local date a receipt counts on (columns of `table`): the one its
// terminal recorded, or for one pushed before version 11 its UTC day; a row
// of no receipt (a left join's), `none`.
std::string receipt_day(const char *table, const char *none = "NULL")
{
	return fmt::format("coalesce({0}.local_date, CASE WHEN {0}.at_utc >= 0 THEN {0}.at_utc / 86400 WHEN "
			   "{0}.at_utc < 0 THEN ({0}.at_utc + 1) / 86400 - 1 ELSE {1} END)",
			   table, none);
}

// floor(part × 10000 / whole) in basis points; 0 when whole is 0.
Result<int64_t> basis_points(int64_t part, int64_t whole, const char *what)
{
	if (whole <= 0 || part <= 0)
		return int64_t{0};
	auto bp = mul_div_floor(part, 10000, 1, whole);
	if (!bp)
		return bad(Code::overflow, fmt::format("report: {} is too large to compute exactly", what));
	return *bp;
}

} // namespace

Result<Settlement> SqlStore::settlement(Days from, Days until)
{
	auto p = current_program();
	if (!p)
		return p.status();
	// A receipt counts on its local date, and so do its refunds; one the
	// centre holds no local date of (pushed before version 11) on its UTC day.
	auto rows = c_->query(fmt::format("SELECT store, sum(earned - reversed), sum(redeemed - returned) FROM receipts "
					  "WHERE {0} >= ?1 AND {0} < ?2 GROUP BY store",
					  receipt_day("receipts")),
			      {from, until});
	if (!rows)
		return rows.status();
	Settlement out;
	out.from = from;
	out.until = until;
	if (*p)
		for (const auto &x : (*p)->partners)
			out.partners.push_back(PartnerSettlement{x.id});
	out.partners.push_back(PartnerSettlement{"owner"});
	for (size_t r = 0; r < rows->size(); r++) {
		const Partner *x = *p ? (*p)->partner_of_store(rows->text(r, 0)) : nullptr;
		PartnerSettlement &s = x ? out.partners[static_cast<size_t>(x - (*p)->partners.data())] : out.partners.back();
		s.issued += rows->int64(r, 1);
		s.redeemed += rows->int64(r, 2);
	}
	for (size_t i = 0; i + 1 < out.partners.size(); i++) {
		PartnerSettlement &s = out.partners[i];
		const Partner &x = (*p)->partners[i];
		auto owes = mul_checked(s.issued, x.issue_cost), credit = mul_checked(s.redeemed, x.redeem_credit);
		if (!owes || !credit)
			return bad(Code::overflow, fmt::format("settlement: partner {}'s sums are too large to compute exactly",
							       x.id));
		s.owes = *owes;
		s.credit = *credit;
		s.net = *credit - *owes; // each within 10^15 × 10^6
	}
	return out;
}

Result<Report> SqlStore::report(const ReportQuery &q, int64_t now)
{
	LOY_TRY(transact([&]() -> Status { return sweep(now); }));
	Report report;
	auto members = scalar("SELECT count(*) FROM members");
	if (!members)
		return members.status();
	report.members = *members;
	// ?1, ?2: the dates [from, until); ?3: the store ('' for all); ?4: the
	// date of rows the centre holds none of (bonuses and their lots from
	// before version 13), counted only when every date is.
	constexpr int64_t day_lo = time_min_s / day_s - 1, day_hi = time_max_s / day_s + 1;
	const bool ranged = q.from || q.until;
	const Params range{q.from.value_or(day_lo), q.until.value_or(day_hi), q.store.value_or(""),
			   ranged ? day_hi : day_lo};
	const std::string day = receipt_day("receipts");
	const std::string counted = fmt::format("{0} >= ?1 AND {0} < ?2 AND (?3 = '' OR receipts.store = ?3)", day);
	std::map<std::string, PointTotals> stores;
	auto rs = c_->query(fmt::format("SELECT store, sum(earned - reversed), sum(redeemed - returned), count(*), "
					"sum(eligible) FROM receipts WHERE {} GROUP BY store",
					counted),
			    range);
	if (!rs)
		return rs.status();
	for (size_t r = 0; r < rs->size(); r++) {
		auto &s = stores[rs->text(r, 0)];
		s.issued = rs->int64(r, 1);
		s.redeemed = rs->int64(r, 2);
		report.receipts += rs->int64(r, 3);
		report.spend += rs->int64(r, 4);
	}
	// Bonuses the centre paid (referrals, challenges) are points issued too,
	// at the store of the receipt that earned them.
	auto bs = c_->query("SELECT store, sum(points - reversed) FROM bonuses WHERE coalesce(local_date, ?4) >= ?1 AND "
			    "coalesce(local_date, ?4) < ?2 AND (?3 = '' OR store = ?3) GROUP BY store",
			    range);
	if (!bs)
		return bs.status();
	for (size_t r = 0; r < bs->size(); r++)
		stores[bs->text(r, 0)].issued += bs->int64(r, 1);
	// A lot's expiry counts on the date of the receipt that earned it.
	const std::string lot_day = receipt_day("receipts", "?4");
	auto ls = c_->query(fmt::format("SELECT lots.store, sum(lots.expired) FROM lots LEFT JOIN receipts ON "
					"receipts.terminal_id = lots.terminal_id AND receipts.receipt_id = lots.receipt_id "
					"WHERE lots.expired > 0 AND {0} >= ?1 AND {0} < ?2 AND (?3 = '' OR lots.store = ?3) "
					"GROUP BY lots.store",
					lot_day),
			    range);
	if (!ls)
		return ls.status();
	for (size_t r = 0; r < ls->size(); r++)
		stores[ls->text(r, 0)].expired = ls->int64(r, 1);
	const char *gift = "local_date >= ?1 AND local_date < ?2 AND (?3 = '' OR store = ?3)";
	auto ds = c_->query(fmt::format("SELECT store, sum(points) FROM donations WHERE {} GROUP BY store", gift),
			    range);
	if (!ds)
		return ds.status();
	for (size_t r = 0; r < ds->size(); r++)
		stores[ds->text(r, 0)].donated = ds->int64(r, 1);
	for (const auto &[name, s] : stores) {
		report.points.issued += s.issued;
		report.points.redeemed += s.redeemed;
		report.points.expired += s.expired;
		report.points.donated += s.donated;
		report.stores.push_back(StoreReport{name, s});
	}
	auto program = current_program();
	if (!program)
		return program.status();
	report.point_value = *program ? (*program)->redeem.point_value : 0;
	auto cs = c_->query(fmt::format("SELECT charity, sum(points) FROM donations WHERE {} GROUP BY charity "
					"ORDER BY charity",
					gift),
			    range);
	if (!cs)
		return cs.status();
	for (size_t r = 0; r < cs->size(); r++) {
		// A point value may be any amount of money: the product is
		// checked, as every sum of money is.
		CharityReport c{cs->text(r, 0), cs->int64(r, 1), 0};
		auto value = mul_checked(c.points, report.point_value);
		if (!value)
			return bad(Code::storage, fmt::format("central: charity {}'s donations ({} points) are worth "
							      "more than 64 bits hold",
							      c.charity, c.points));
		c.value = *value;
		report.donations.push_back(std::move(c));
	}
	auto liability = mul_checked(report.points.outstanding(), report.point_value);
	if (!liability)
		return bad(Code::overflow, fmt::format("report: the liability of {} points is more than 64 bits hold",
						       report.points.outstanding()));
	report.liability = *liability;

	// Members: active (a receipt counted), repeat (two or more), new (their
	// first receipt, at the store when one is asked for, is counted).
	auto am = c_->query(fmt::format("SELECT count(*), coalesce(sum(CASE WHEN n >= 2 THEN 1 ELSE 0 END), 0) FROM "
					"(SELECT token, count(*) AS n FROM receipts WHERE {} GROUP BY token) "
					"AS active",
					counted),
			    range);
	if (!am)
		return am.status();
	report.active_members = am->int64(0, 0);
	report.repeat_members = am->int64(0, 1);
	auto nm = c_->query(fmt::format("SELECT count(*) FROM (SELECT token, min({}) AS first FROM receipts WHERE "
					"(?3 = '' OR receipts.store = ?3) GROUP BY token) AS firsts WHERE "
					"first >= ?1 AND first < ?2",
					day),
			    range);
	if (!nm)
		return nm.status();
	report.new_members = nm->int64(0, 0);
	report.average_basket = report.receipts ? report.spend / report.receipts : 0;
	auto rate = basis_points(report.points.redeemed, report.points.issued, "the redemption rate");
	if (!rate)
		return rate.status();
	report.redemption_rate_bp = *rate;
	rate = basis_points(report.points.expired, report.points.issued, "the breakage");
	if (!rate)
		return rate.status();
	report.breakage_bp = *rate;
	rate = basis_points(report.repeat_members, report.active_members, "the repeat rate");
	if (!rate)
		return rate.status();
	report.repeat_rate_bp = *rate;

	auto cp = c_->query(fmt::format("SELECT campaign, sum(receipt_campaigns.points), sum(receipt_campaigns.spend) "
					"FROM receipt_campaigns JOIN receipts ON receipts.terminal_id = "
					"receipt_campaigns.terminal_id AND receipts.receipt_id = receipt_campaigns.receipt_id "
					"WHERE {} GROUP BY campaign ORDER BY campaign",
					counted),
			    range);
	if (!cp)
		return cp.status();
	for (size_t r = 0; r < cp->size(); r++)
		report.campaigns.push_back(CampaignReport{cp->text(r, 0), cp->int64(r, 1), cp->int64(r, 2)});

	// The series by day: the receipts', then the bonuses paid with them.
	std::map<Days, DayReport> days;
	auto dr = c_->query(fmt::format("SELECT {0}, count(*), count(DISTINCT token), sum(eligible), "
					"sum(earned - reversed), sum(redeemed - returned) FROM receipts WHERE {1} "
					"GROUP BY {0}",
					day, counted),
			    range);
	if (!dr)
		return dr.status();
	for (size_t r = 0; r < dr->size(); r++) {
		DayReport &d = days[dr->int64(r, 0)];
		d.date = dr->int64(r, 0);
		d.receipts = dr->int64(r, 1);
		d.members = dr->int64(r, 2);
		d.spend = dr->int64(r, 3);
		d.points.issued = dr->int64(r, 4);
		d.points.redeemed = dr->int64(r, 5);
	}
	auto db = c_->query("SELECT local_date, sum(points - reversed) FROM bonuses WHERE local_date >= ?1 AND "
			    "local_date < ?2 AND (?3 = '' OR store = ?3) GROUP BY local_date",
			    range);
	if (!db)
		return db.status();
	for (size_t r = 0; r < db->size(); r++) {
		DayReport &d = days[db->int64(r, 0)];
		d.date = db->int64(r, 0);
		d.points.issued += db->int64(r, 1);
	}
	for (auto &[date, d] : days)
		report.days.push_back(d);

	auto ts = c_->query("SELECT terminal_id, store, acked_through, last_push, max_skew_s, clock_skew_s, "
			    "entries_back, entries_future, refused_pushes, last_refusal, last_refusal_at "
			    "FROM terminals ORDER BY terminal_id");
	if (!ts)
		return ts.status();
	for (size_t r = 0; r < ts->size(); r++) {
		TerminalReport t;
		t.terminal_id = ts->text(r, 0);
		t.store = ts->text(r, 1);
		t.acked_through = ts->int64(r, 2);
		t.last_push_utc = ts->optional_int64(r, 3);
		t.max_clock_skew_s = ts->int64(r, 4);
		t.clock_skew_s = ts->optional_int64(r, 5);
		t.entries_clock_back = ts->int64(r, 6);
		t.entries_from_future = ts->int64(r, 7);
		t.refused_pushes = ts->int64(r, 8);
		if (!ts->is_null(r, 9))
			t.last_refusal = Refusal{ts->int64(r, 10), ts->text(r, 9)};
		report.terminals.push_back(std::move(t));
	}
	return report;
}

// The flags of the rules that run over the centre's data (negative_balance
// is raised as entries are applied), each card's first under each rule.
Result<std::vector<FraudFlag>> SqlStore::fraud(const FraudRules &rules)
{
	std::vector<FlagRow> found;
	auto first_per_card = [&](const std::string &rule, const sql::Rows &rows, auto detail) {
		// rows: token, time, ... ordered by token then time: a card's first.
		for (size_t r = 0; r < rows.size(); r++)
			if (r == 0 || rows.text(r, 0) != rows.text(r - 1, 0))
				found.push_back(FlagRow{rows.text(r, 0), rule, detail(r), rows.int64(r, 1)});
	};
	// till_velocity: a window of `minutes` over each card's receipts at each
	// terminal (the offsets are the configuration's numbers, checked there).
	auto tv = c_->query(fmt::format("SELECT token, at_utc, terminal_id, n FROM (SELECT token, terminal_id, at_utc, "
					"count(*) OVER (PARTITION BY token, terminal_id ORDER BY at_utc RANGE BETWEEN {} "
					"PRECEDING AND CURRENT ROW) AS n FROM receipts) AS w WHERE n > ?1 "
					"ORDER BY token, at_utc, terminal_id",
					rules.till_minutes * 60),
			    {rules.till_receipts});
	if (!tv)
		return tv.status();
	first_per_card("till_velocity", *tv, [&](size_t r) {
		return fmt::format("{} receipts at terminal {} within {} minutes", tv->int64(r, 3), tv->text(r, 2),
				   rules.till_minutes);
	});
	// redeem_spread: the days a card redeemed at enough stores, then when
	// the last of them was reached (the n-th store's first redemption).
	const std::string day = receipt_day("receipts");
	auto days = c_->query(fmt::format("SELECT token, {0}, store, min(at_utc) FROM receipts WHERE redeemed > 0 AND "
					  "token IN (SELECT token FROM receipts WHERE redeemed > 0 GROUP BY token, {0} "
					  "HAVING count(DISTINCT store) >= ?1) GROUP BY token, {0}, store "
					  "ORDER BY token, {0}, 4",
					  day),
			      {rules.spread_stores});
	if (!days)
		return days.status();
	for (size_t r = 0; r < days->size();) {
		size_t end = r;
		while (end < days->size() && days->text(end, 0) == days->text(r, 0) &&
		       days->int64(end, 1) == days->int64(r, 1))
			end++;
		const size_t stores = end - r;
		if (stores >= static_cast<size_t>(rules.spread_stores)) {
			const size_t nth = r + static_cast<size_t>(rules.spread_stores) - 1;
			const std::string &token = days->text(r, 0);
			const int64_t at = days->int64(nth, 3);
			auto same = std::find_if(found.begin(), found.end(), [&](const FlagRow &f) {
				return f.token == token && f.rule == "redeem_spread";
			});
			std::string detail = fmt::format("redemptions at {} stores on {}", stores,
							 format_date(days->int64(r, 1)));
			if (same == found.end())
				found.push_back(FlagRow{token, "redeem_spread", std::move(detail), at});
			else if (at < same->first_seen)
				*same = FlagRow{token, "redeem_spread", std::move(detail), at};
		}
		r = end;
	}
	// refund_loop: receipts that earned points and were refunded in full
	// within `days` of their at; flagged at the refund that makes `receipts`.
	auto loops = c_->query("SELECT token, refunded_at, receipt_id, terminal_id FROM receipts WHERE refunded_at IS "
			       "NOT NULL AND earned > 0 AND refunded_at - at_utc <= ?1 ORDER BY token, refunded_at",
			       {rules.loop_days * day_s});
	if (!loops)
		return loops.status();
	for (size_t r = 0; r < loops->size();) {
		size_t end = r;
		while (end < loops->size() && loops->text(end, 0) == loops->text(r, 0))
			end++;
		if (end - r >= static_cast<size_t>(rules.loop_receipts)) {
			const size_t nth = r + static_cast<size_t>(rules.loop_receipts) - 1;
			found.push_back(FlagRow{loops->text(r, 0), "refund_loop",
						fmt::format("{} receipts earning points refunded in full within {} days, "
							    "the last {} at terminal {}",
							    end - r, rules.loop_days, loops->text(end - 1, 2),
							    loops->text(end - 1, 3)),
						loops->int64(nth, 1)});
		}
		r = end;
	}
	// referral_burst: a window of `hours` over each referrer's new cards.
	auto burst = c_->query(fmt::format("SELECT referrer, enrolled_at, n FROM (SELECT referrer, enrolled_at, count(*) "
					   "OVER (PARTITION BY referrer ORDER BY enrolled_at RANGE BETWEEN {} PRECEDING "
					   "AND CURRENT ROW) AS n FROM referrals WHERE enrolled_at IS NOT NULL) AS w "
					   "WHERE n >= ?1 ORDER BY referrer, enrolled_at",
					   rules.burst_hours * 3600),
			       {rules.burst_cards});
	if (!burst)
		return burst.status();
	first_per_card("referral_burst", *burst, [&](size_t r) {
		return fmt::format("{} new cards referred within {} hours", burst->int64(r, 2), rules.burst_hours);
	});

	std::vector<FraudFlag> out;
	Status done = transact([&]() -> Status {
		std::vector<Params> rows;
		for (const FlagRow &f : found)
			rows.push_back({f.token, f.rule, f.detail, f.first_seen});
		LOY_TRY(c_->insert_many("fraud_flags", {"token", "rule", "detail", "first_seen"}, rows,
					"ON CONFLICT (token, rule) DO NOTHING"));
		auto all = c_->query("SELECT fraud_flags.token, coalesce(members.masked, '(unknown card)'), rule, detail, "
				     "first_seen, coalesce(members.blocked, 0) FROM fraud_flags LEFT JOIN members ON "
				     "members.token = fraud_flags.token ORDER BY first_seen, rule, 2, fraud_flags.token");
		if (!all)
			return all.status();
		std::set<std::string> to_block;
		out.clear();
		for (size_t r = 0; r < all->size(); r++) {
			out.push_back(FraudFlag{all->text(r, 1), all->text(r, 2), all->text(r, 3), all->int64(r, 4)});
			if (rules.block.count(all->text(r, 2)) && all->int64(r, 5) == 0)
				to_block.insert(all->text(r, 0));
		}
		if (to_block.empty())
			return Status::ok();
		const std::vector<std::string> tokens(to_block.begin(), to_block.end()); // sorted: no lock cycles
		LOY_TRY(lock_members(tokens));
		std::vector<Params> blocked;
		for (const auto &t : tokens)
			blocked.push_back({t, int64_t{1}});
		LOY_TRY(c_->update_many("members", {"token"}, {"blocked"}, blocked));
		return touch(tokens);
	});
	if (!done)
		return done;
	return out;
}

Status SqlStore::add_admin(const AdminAccount &a, int64_t now)
{
	return transact([&]() -> Status {
		auto n = scalar("SELECT count(*) FROM admins WHERE name = ?1", {a.name});
		if (!n)
			return n.status();
		if (*n > 0)
			return bad(Code::bad_argument, fmt::format("admin: user {} exists already", a.name));
		LOY_TRY(c_->exec("INSERT INTO admins (name, role, password_hash, totp_secret, created_at) VALUES (?1, ?2, "
				 "?3, ?4, ?5)",
				 {a.name, std::string(role_name(a.role)), a.password_hash, a.totp_secret, now}));
		return c_->exec("INSERT INTO audit (at_utc, name, action, detail) VALUES (?1, '(command line)', "
				"'admin add', ?2)",
				{now, fmt::format("user {} as {}", a.name, role_name(a.role))});
	});
}

Status SqlStore::remove_admin(std::string_view name, int64_t now)
{
	return transact([&]() -> Status {
		auto gone = c_->query("DELETE FROM admins WHERE name = ?1 RETURNING name", {std::string(name)});
		if (!gone)
			return gone.status();
		if (gone->empty())
			return bad(Code::bad_argument, fmt::format("admin: there is no user {}", name));
		return c_->exec("INSERT INTO audit (at_utc, name, action, detail) VALUES (?1, '(command line)', "
				"'admin remove', ?2)",
				{now, fmt::format("user {}", name)});
	});
}

Result<std::optional<AdminAccount>> SqlStore::admin(std::string_view name)
{
	auto rows = c_->query("SELECT name, role, password_hash, totp_secret, totp_last_step FROM admins WHERE name = ?1",
			      {std::string(name)});
	if (!rows)
		return rows.status();
	if (rows->empty())
		return std::optional<AdminAccount>();
	auto role = parse_role(rows->text(0, 1));
	if (!role)
		return bad(Code::storage, fmt::format("central: user {} has no role the centre knows", name));
	return std::optional<AdminAccount>(
		AdminAccount{rows->text(0, 0), *role, rows->text(0, 2), rows->text(0, 3), rows->int64(0, 4)});
}

Result<bool> SqlStore::spend_totp_step(std::string_view name, int64_t step)
{
	return transact([&]() -> Result<bool> {
		auto rows = c_->query("UPDATE admins SET totp_last_step = ?2 WHERE name = ?1 AND totp_last_step < ?2 "
				      "RETURNING name",
				      {std::string(name), step});
		if (!rows)
			return rows.status();
		return !rows->empty();
	});
}

Status SqlStore::audit(const AuditEntry &e)
{
	return transact([&]() -> Status {
		return c_->exec("INSERT INTO audit (at_utc, name, action, detail) VALUES (?1, ?2, ?3, ?4)",
				{e.at_utc, e.user, e.action, e.detail});
	});
}

Result<std::vector<AuditEntry>> SqlStore::audit_log(int64_t limit)
{
	auto rows = c_->query("SELECT at_utc, name, action, detail FROM audit ORDER BY id DESC LIMIT ?1", {limit});
	if (!rows)
		return rows.status();
	std::vector<AuditEntry> out;
	for (size_t r = 0; r < rows->size(); r++)
		out.push_back(AuditEntry{rows->text(r, 1), rows->text(r, 2), rows->text(r, 3), rows->int64(r, 0)});
	return out;
}

Result<bool> SqlStore::sign_in_allowed(std::string_view name, int64_t now)
{
	auto locked = c_->query("SELECT locked_until FROM admins WHERE name = ?1", {std::string(name)});
	if (!locked)
		return locked.status();
	return locked->empty() || locked->int64(0, 0) <= now;
}

Status SqlStore::sign_in_failed(std::string_view name, int64_t now)
{
	return transact([&]() -> Status {
		// Past the bound the account waits: each further failure restarts it.
		return c_->exec("UPDATE admins SET failed_logins = failed_logins + 1, locked_until = CASE WHEN "
				"failed_logins + 1 >= ?3 THEN ?2 ELSE locked_until END WHERE name = ?1",
				{std::string(name), now + sign_in_lock_s, sign_in_failures_max});
	});
}

Status SqlStore::open_session(const Session &x)
{
	return transact([&]() -> Status {
		LOY_TRY(c_->exec("UPDATE admins SET failed_logins = 0, locked_until = 0 WHERE name = ?1", {x.user}));
		LOY_TRY(c_->exec("DELETE FROM sessions WHERE expires_at <= ?1", {x.expires_at - session_lifetime_s}));
		return c_->exec("INSERT INTO sessions (id, name, csrf, expires_at) VALUES (?1, ?2, ?3, ?4)",
				{x.id, x.user, x.csrf, x.expires_at});
	});
}

Result<std::optional<Session>> SqlStore::session(const std::string &id, int64_t now)
{
	auto rows = c_->query("SELECT sessions.name, csrf, expires_at, role FROM sessions JOIN admins ON admins.name = "
			      "sessions.name WHERE id = ?1 AND expires_at > ?2",
			      {id, now});
	if (!rows)
		return rows.status();
	if (rows->empty())
		return std::optional<Session>();
	auto role = parse_role(rows->text(0, 3));
	if (!role)
		return std::optional<Session>();
	return std::optional<Session>(Session{id, rows->text(0, 0), *role, rows->text(0, 1), rows->int64(0, 2)});
}

Status SqlStore::close_session(const std::string &id)
{
	return transact([&]() -> Status { return c_->exec("DELETE FROM sessions WHERE id = ?1", {id}); });
}

} // namespace loy::central
