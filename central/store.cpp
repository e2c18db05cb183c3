// The central store: applying pushed entries exactly once, points as lots,
// sweeps for availability and expiry, and the administrative commands.
#include "central/store.hpp"

#include <sys/stat.h>

#include <map>
#include <mutex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/card.hpp"
#include "core/program.hpp"
#include "base/json_reader.hpp"
#include "core/limits.hpp"
#include "base/timeutil.hpp"
#include "base/utf8.hpp"
#include "base/crypto.hpp"
#include "storage/sqlite.hpp"

namespace loy::central {

using Json = nlohmann::json;

// What a terminal's entries name a member by, and show of the card.
constexpr size_t member_token_hex_bytes = 64;
constexpr size_t masked_card_bytes_max = 32;

namespace {

constexpr int64_t day_s = 86400;
const std::string zero_hash(64, '0');
// The centre's writers are its worker threads and the administrative
// commands. Threads of one server take turns on this mutex (fair, no
// polling); another process waits on SQLite's busy handler, long enough for
// every worker's batch ahead of it.
constexpr int central_busy_timeout_ms = 60000;
std::mutex write_mutex;

const char *const schema_v1 = R"sql(
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
const char *const schema_v2 = R"sql(
ALTER TABLE terminals ADD COLUMN clock_skew_s INTEGER;
ALTER TABLE terminals ADD COLUMN entries_back INTEGER NOT NULL DEFAULT 0;
ALTER TABLE terminals ADD COLUMN entries_future INTEGER NOT NULL DEFAULT 0;
ALTER TABLE terminals ADD COLUMN last_device_time INTEGER;
)sql";
// Version 3: the ledger each terminal pushes from (store.hpp, push), and
// the pushes refused, flagged in the report.
const char *const schema_v3 = R"sql(
ALTER TABLE terminals ADD COLUMN ledger TEXT;
ALTER TABLE terminals ADD COLUMN refused_pushes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE terminals ADD COLUMN last_refusal TEXT;
ALTER TABLE terminals ADD COLUMN last_refusal_at INTEGER;
)sql";
constexpr int schema_version = 3;

Status bad(Code code, std::string msg) { return Status(code, std::move(msg)); }

// Runs a statement expected to give one integer (0 when NULL or no row).
Result<int64_t> scalar(db::Db &db, std::string_view sql, const std::vector<std::string> &text_args,
		       const std::vector<int64_t> &int_args = {})
{
	auto st = db.prepare(sql);
	if (!st)
		return st.status();
	int i = 1;
	for (const auto &a : text_args)
		st.value().bind(i++, a);
	for (auto a : int_args)
		st.value().bind(i++, a);
	auto row = st.value().step();
	if (!row)
		return row.status();
	if (!*row || st.value().is_null(0))
		return int64_t{0};
	return st.value().int64(0);
}

Status run(db::Db &db, std::string_view sql, const std::vector<std::string> &text_args,
	   const std::vector<int64_t> &int_args = {})
{
	auto st = db.prepare(sql);
	if (!st)
		return st.status();
	int i = 1;
	for (const auto &a : text_args)
		st.value().bind(i++, a);
	for (auto a : int_args)
		st.value().bind(i++, a);
	return st.value().run();
}

std::string utc_date(int64_t utc) { return format_date(Timestamp{utc, 0}.local_date()); }

class SqliteStore final : public Store {
public:
	Status open(const std::string &dir);

	Result<ChainHead> push(const std::string &terminal, const std::string &store, const std::string &ledger,
			       const std::vector<PushEntry> &entries, int64_t now,
			       std::optional<int64_t> device_now) override;
	Result<EntriesPage> entries_after(const std::string &terminal, const std::string &ledger, int64_t after,
					  int limit) override;
	Result<std::optional<std::string>> program_after(const std::string &id, int64_t after) override;
	Result<std::optional<std::string>> program_version(const std::string &id, int64_t version) override;
	Result<MembersPage> members_after(int64_t watermark, int limit, int64_t now) override;
	Result<Published> publish_program(std::string_view document, int64_t now) override;
	Result<MarkedCard> enroll(std::string_view scan, int64_t now) override;
	Result<MarkedCard> block(std::string_view scan, int64_t now) override;
	Result<Balance> balance(std::string_view scan, int64_t now) override;
	Result<Report> report(int64_t now) override;
	Status ensure_token_key() override;

private:
	Status migrate();
	Result<const Program *> current_program();
	Result<std::pair<std::string, std::string>> card_token(std::string_view scan);
	Status check_member_bounds(const std::string &token, int64_t seq);
	// chain_conflict when the terminal's entries came from another ledger.
	Status check_ledger(const std::string &terminal, const std::string &ledger);
	Result<ChainHead> apply_batch(const std::string &terminal, const std::string &store, const std::string &ledger,
				      const std::vector<PushEntry> &entries, int64_t now,
				      std::optional<int64_t> device_now);
	// A refused batch, in a transaction of its own (the batch's rolled back).
	Status note_refusal(const std::string &terminal, const std::string &store, const std::string &why,
			    int64_t now);
	Status apply(const std::string &terminal, const std::string &store, int64_t seq,
		     const std::string &body, int64_t now);
	Status touch(const std::string &token);
	Status consume(const std::string &token, int64_t points, int64_t at);
	Status sweep(int64_t now);
	Result<MemberInfo> member_info(const std::string &token, int64_t now);
	// Returns the masked card.
	Result<std::string> mark_member(std::string_view scan, const char *update_sql);

	db::Db db_;
	std::string dir_;
	crypto::Key token_key_{};
	bool have_token_key_ = false;
	std::unique_ptr<Program> program_;
};

} // namespace

Result<std::unique_ptr<Store>> open_store(const std::string &dir)
{
	auto s = std::make_unique<SqliteStore>();
	LOY_TRY(s->open(dir));
	return std::unique_ptr<Store>(std::move(s));
}

Status SqliteStore::open(const std::string &dir)
{
	dir_ = dir;
	LOY_TRY(db_.open(dir + "/central.db", true, central_busy_timeout_ms));
	return migrate();
}

Status SqliteStore::migrate()
{
	auto v = scalar(db_, "PRAGMA user_version", {});
	if (!v)
		return v.status();
	if (*v > schema_version)
		return bad(Code::storage, fmt::format("central: schema version {} is newer than this program's {}",
						      *v, schema_version));
	if (*v == schema_version)
		return Status::ok();
	std::lock_guard<std::mutex> writer(write_mutex);
	db::Transaction tx(db_);
	LOY_TRY(tx.begin());
	// Another process may have migrated it while this one waited for the lock.
	auto again = scalar(db_, "PRAGMA user_version", {});
	if (!again)
		return again.status();
	if (*again < 1)
		LOY_TRY(db_.exec(schema_v1));
	if (*again < 2)
		LOY_TRY(db_.exec(schema_v2));
	if (*again < 3)
		LOY_TRY(db_.exec(schema_v3));
	LOY_TRY(db_.exec(fmt::format("PRAGMA user_version = {}", schema_version).c_str()));
	return tx.commit();
}

Status SqliteStore::ensure_token_key()
{
	if (have_token_key_)
		return Status::ok();
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
	have_token_key_ = true;
	return Status::ok();
}

Result<const Program *> SqliteStore::current_program()
{
	auto st = db_.prepare("SELECT document, version FROM programs ORDER BY published_at DESC, version "
			      "DESC LIMIT 1");
	if (!st)
		return st.status();
	auto row = st.value().step();
	if (!row)
		return row.status();
	if (!*row)
		return static_cast<const Program *>(nullptr);
	if (program_ && program_->version == st.value().int64(1))
		return program_.get();
	auto p = parse_program(st.value().text(0));
	if (!p)
		return bad(Code::storage, "central: stored program no longer parses: " + p.status().message());
	program_ = std::make_unique<Program>(std::move(p).value());
	return program_.get();
}

Result<std::pair<std::string, std::string>> SqliteStore::card_token(std::string_view scan)
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
	LOY_TRY(ensure_token_key());
	return std::make_pair(crypto::to_hex(crypto::hmac_sha256(token_key_, *digits)), mask_card(*digits));
}

Status SqliteStore::touch(const std::string &token)
{
	return run(db_,
		   "INSERT INTO members (token, change) VALUES (?1, "
		   "(SELECT coalesce(max(change), 0) + 1 FROM members)) "
		   "ON CONFLICT (token) DO UPDATE SET change = (SELECT max(change) + 1 FROM members)",
		   {token});
}

Status SqliteStore::consume(const std::string &token, int64_t points, int64_t at)
{
	// Oldest points first: those already available and expiring soonest.
	auto st = db_.prepare("SELECT id, remaining FROM lots WHERE token = ?1 AND remaining > 0 AND "
			      "(expires_at IS NULL OR expires_at > ?2) "
			      "ORDER BY (available_at <= ?2) DESC, coalesce(expires_at, 9223372036854775807), id");
	if (!st)
		return st.status();
	st.value().bind(1, token).bind(2, at);
	std::vector<std::pair<int64_t, int64_t>> takes;
	int64_t left = points;
	// The rows past the last one taken are passed over: SQLite has sorted
	// them all before the first came back anyway.
	Status read = st.value().each([&]() -> Status {
		if (left <= 0)
			return Status::ok();
		int64_t take = std::min(left, st.value().int64(1));
		takes.emplace_back(st.value().int64(0), take);
		left -= take;
		return Status::ok();
	});
	LOY_TRY(read);
	for (const auto &[id, take] : takes)
		LOY_TRY(run(db_, "UPDATE lots SET remaining = remaining - ?1 WHERE id = ?2", {}, {take, id}));
	// Spent beyond what the centre knew of (terminals offline apart): owed,
	// and paid back by the next points earned.
	if (left > 0)
		LOY_TRY(run(db_, "UPDATE members SET debt = debt + ?2 WHERE token = ?1", {token}, {left}));
	return Status::ok();
}

namespace {

// A new lot of points; pays back the member's debt first.
Status add_lot(db::Db &db, const std::string &token, const std::string &store, const std::string &terminal,
	       const std::string &receipt, int64_t available_at, std::optional<int64_t> expires_at,
	       int64_t points)
{
	if (points <= 0)
		return Status::ok();
	auto debt = scalar(db, "SELECT debt FROM members WHERE token = ?1", {token});
	if (!debt)
		return debt.status();
	int64_t pay = std::min(points, *debt);
	if (pay > 0)
		LOY_TRY(run(db, "UPDATE members SET debt = debt - ?2 WHERE token = ?1", {token}, {pay}));
	auto st = db.prepare("INSERT INTO lots (token, store, terminal_id, receipt_id, available_at, "
			     "expires_at, points, remaining) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
	if (!st)
		return st.status();
	st.value().bind(1, token).bind(2, store).bind(3, terminal).bind(4, receipt).bind(5, available_at);
	st.value().bind(6, expires_at).bind(7, points).bind(8, points - pay);
	return st.value().run();
}

} // namespace

// After an entry: the member's points (lots left) and spend stay within
// member_total_max, so that no sum over a member, nor a snapshot the
// terminals take, can overflow. Each entry moves at most receipt_points_max,
// so the sums below are exact while the bound held before it.
Status SqliteStore::check_member_bounds(const std::string &token, int64_t seq)
{
	auto net = scalar(db_, "SELECT (SELECT coalesce(sum(remaining), 0) FROM lots WHERE token = ?1) - "
			       "(SELECT coalesce(max(debt), 0) FROM members WHERE token = ?1)",
			  {token});
	if (!net)
		return net.status();
	auto total_spend = scalar(db_, "SELECT sum(eligible) FROM receipts WHERE token = ?1", {token});
	if (!total_spend)
		return total_spend.status();
	const int64_t points = *net, spend = *total_spend;
	auto outside = [](int64_t v) { return v > member_total_max || v < -member_total_max; };
	if (outside(points) || outside(spend))
		return bad(Code::bad_argument, fmt::format("entry {}: it would take the member's {} to {}, past the "
							   "{} a member may hold",
							   seq, outside(points) ? "points" : "spend",
							   outside(points) ? points : spend, member_total_max));
	return Status::ok();
}

Status SqliteStore::apply(const std::string &terminal, const std::string &store, int64_t seq,
		    const std::string &body, int64_t now)
{
	auto parsed = json_parse(body, Code::bad_argument, "entry");
	const Json e = parsed ? std::move(parsed).value() : Json();
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
		// A member token is an HMAC-SHA-256 in hex, a masked card a few
		// characters: anything else would reach every terminal's snapshot.
		if (token.size() != member_token_hex_bytes ||
		    token.find_first_not_of("0123456789abcdef") != std::string::npos)
			return bad(Code::bad_argument, fmt::format("entry {}: the member token is not 64 hex digits", seq));
		LOY_TRY(touch(token));
		if (d.contains("masked")) {
			const std::string masked = d.at("masked").get<std::string>();
			if (masked.empty() || masked.size() > masked_card_bytes_max || !utf8_valid(masked))
				return bad(Code::bad_argument,
					   fmt::format("entry {}: masked must be 1 to {} bytes of UTF-8", seq,
						       masked_card_bytes_max));
			LOY_TRY(run(db_, "UPDATE members SET masked = ?2 WHERE token = ?1", {token, masked}));
		}
		if (kind == "enroll") {
			LOY_TRY(run(db_, "UPDATE members SET enrolled = 1 WHERE token = ?1", {token}));
		} else if (kind == "checkout") {
			const Json &r = d.at("receipt");
			const int64_t at = num(d, "at_utc", time_min_s, time_max_s);
			std::optional<int64_t> expires;
			if (!d.at("expires_at").is_null())
				expires = num(d, "expires_at", time_min_s, time_max_s);
			// A terminal records a receipt once; a second checkout under its
			// id is a forged or broken entry, refused as such (not a
			// storage failure the terminal would retry for ever).
			auto seen = scalar(db_, "SELECT count(*) FROM receipts WHERE terminal_id = ?1 AND receipt_id = ?2",
					   {terminal, receipt}, {});
			if (!seen)
				return seen.status();
			if (*seen > 0)
				return bad(Code::bad_argument, fmt::format("entry {}: receipt {} of terminal {} was checked "
									   "out already",
									   seq, receipt, terminal));
			auto st = db_.prepare("INSERT INTO receipts (terminal_id, receipt_id, token, store, at_utc, "
					      "eligible, earned, redeemed, expires_at) VALUES "
					      "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
			if (!st)
				return st.status();
			st.value().bind(1, terminal).bind(2, receipt).bind(3, token).bind(4, store).bind(5, at);
			st.value().bind(6, num(r, "eligible", 0, money_max)).bind(7, num(r, "earned", 0, receipt_points_max));
			st.value().bind(8, num(r, "redeemed", 0, receipt_points_max)).bind(9, expires);
			LOY_TRY(st.value().run());
			LOY_TRY(consume(token, num(r, "redeemed", 0, receipt_points_max), at));
			// Without pending_days the points are available at once, even on
			// a receipt stamped ahead of this server's clock.
			int64_t available = num(d, "available_at", time_min_s, time_max_s);
			if (available <= at)
				available = 0;
			LOY_TRY(add_lot(db_, token, store, terminal, receipt, available, expires,
					num(r, "earned", 0, receipt_points_max)));
		} else if (kind == "refund") {
			const int64_t reversed = num(d, "reversed", 0, receipt_points_max);
			const int64_t returned = num(d, "returned", 0, receipt_points_max);
			LOY_TRY(run(db_,
				    "UPDATE receipts SET eligible = eligible - ?4, reversed = reversed + ?5, "
				    "returned = returned + ?6 WHERE terminal_id = ?1 AND receipt_id = ?2 AND token = ?3",
				    {terminal, receipt, token},
				    {num(d, "spend_reversed", 0, money_max), reversed, returned}));
			// A refund takes back at most what its receipt had, and only
			// from the member the receipt is of.
			auto owned = scalar(db_, "SELECT count(*) FROM receipts WHERE terminal_id = ?1 AND "
						 "receipt_id = ?2 AND token = ?3",
					    {terminal, receipt, token}, {});
			if (!owned)
				return owned.status();
			if (*owned != 1)
				return bad(Code::bad_argument,
					   fmt::format("entry {}: refunds receipt {}, which is no checkout of this member "
						       "by this terminal",
						       seq, receipt));
			auto spend_left = scalar(db_, "SELECT eligible FROM receipts WHERE terminal_id = ?1 AND "
						      "receipt_id = ?2 AND token = ?3",
						 {terminal, receipt, token}, {});
			if (!spend_left)
				return spend_left.status();
			if (*spend_left < 0)
				return bad(Code::bad_argument,
					   fmt::format("entry {}: refunds more spend than receipt {} of this member had",
						       seq, receipt));
			// Taken back from the receipt's own points first, then oldest first.
			auto lot = db_.prepare("SELECT id, remaining FROM lots WHERE terminal_id = ?1 AND "
					       "receipt_id = ?2 AND token = ?3 AND remaining > 0 ORDER BY id LIMIT 1");
			if (!lot)
				return lot.status();
			lot.value().bind(1, terminal).bind(2, receipt).bind(3, token);
			auto row = lot.value().step();
			if (!row)
				return row.status();
			int64_t left = reversed;
			if (*row) {
				int64_t take = std::min(left, lot.value().int64(1));
				int64_t id = lot.value().int64(0);
				lot.value().reset();
				LOY_TRY(run(db_, "UPDATE lots SET remaining = remaining - ?1 WHERE id = ?2", {},
					    {take, id}));
				left -= take;
			}
			LOY_TRY(consume(token, left, now));
			auto expires = db_.prepare("SELECT expires_at FROM receipts WHERE terminal_id = ?1 AND "
						   "receipt_id = ?2");
			if (!expires)
				return expires.status();
			expires.value().bind(1, terminal).bind(2, receipt);
			row = expires.value().step();
			if (!row)
				return row.status();
			std::optional<int64_t> exp;
			if (*row && !expires.value().is_null(0))
				exp = expires.value().int64(0);
			LOY_TRY(add_lot(db_, token, store, terminal, receipt, now, exp, returned));
		} else if (kind == "adjust") {
			int64_t points = num(e, "points", -receipt_points_max, receipt_points_max);
			if (points > 0)
				LOY_TRY(add_lot(db_, token, store, terminal, receipt, now, std::nullopt, points));
			else
				LOY_TRY(consume(token, -points, now));
		} else {
			return bad(Code::bad_argument, fmt::format("entry {}: unknown kind \"{}\"", seq, kind));
		}
		LOY_TRY(check_member_bounds(token, seq));
	} catch (const FieldError &f) {
		return bad(Code::bad_argument, fmt::format("entry {}: {}", seq, f.message));
	} catch (const Json::exception &ex) {
		return bad(Code::bad_argument, fmt::format("entry {}: a field is missing or of the wrong type: {}", seq,
							   json_exception_text(ex)));
	}
	return Status::ok();
}

Status SqliteStore::check_ledger(const std::string &terminal, const std::string &ledger)
{
	if (ledger.empty())
		return Status::ok(); // a terminal from before ledger ids
	auto st = db_.prepare("SELECT ledger FROM terminals WHERE terminal_id = ?1");
	if (!st)
		return st.status();
	st.value().bind(1, terminal);
	auto row = st.value().step();
	if (!row)
		return row.status();
	if (*row && !st.value().is_null(0) && st.value().text(0) != ledger)
		return bad(chain_conflict, fmt::format("terminal {} pushes from another ledger than before (a second "
						       "data dir with its identity?): its entries are refused",
						       terminal));
	return Status::ok();
}

Result<ChainHead> SqliteStore::push(const std::string &terminal, const std::string &store, const std::string &ledger,
				    const std::vector<PushEntry> &entries, int64_t now,
				    std::optional<int64_t> device_now)
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

Status SqliteStore::note_refusal(const std::string &terminal, const std::string &store, const std::string &why,
				 int64_t now)
{
	std::lock_guard<std::mutex> writer(write_mutex);
	return run(db_,
		   "INSERT INTO terminals (terminal_id, store, last_hash, refused_pushes, last_refusal, "
		   "last_refusal_at) VALUES (?1, ?2, ?3, 1, ?4, ?5) ON CONFLICT (terminal_id) DO UPDATE SET "
		   "refused_pushes = refused_pushes + 1, last_refusal = excluded.last_refusal, "
		   "last_refusal_at = excluded.last_refusal_at",
		   {terminal, store, zero_hash, utf8_scrub(why.substr(0, refusal_bytes_max))}, {now});
}

Result<ChainHead> SqliteStore::apply_batch(const std::string &terminal, const std::string &store,
					   const std::string &ledger, const std::vector<PushEntry> &entries,
					   int64_t now, std::optional<int64_t> device_now)
{
	if (entries.size() > push_entries_max)
		return bad(Code::bad_argument, fmt::format("push: {} entries, at most {} per batch",
							   entries.size(), push_entries_max));
	std::lock_guard<std::mutex> writer(write_mutex);
	db::Transaction tx(db_);
	LOY_TRY(tx.begin());
	LOY_TRY(check_ledger(terminal, ledger));
	auto st = db_.prepare("SELECT acked_through, last_hash, last_device_time FROM terminals WHERE terminal_id = ?1");
	if (!st)
		return st.status();
	st.value().bind(1, terminal);
	auto row = st.value().step();
	if (!row)
		return row.status();
	int64_t acked = 0;
	std::string last_hash = zero_hash;
	std::optional<int64_t> last_device;
	if (*row) {
		acked = st.value().int64(0);
		last_hash = st.value().text(1);
		if (!st.value().is_null(2))
			last_device = st.value().int64(2);
	}
	st.value().reset();
	int64_t back = 0, future = 0;
	for (const auto &e : entries) {
		if (e.seq <= acked) {
			auto held = db_.prepare("SELECT hash FROM entries WHERE terminal_id = ?1 AND seq = ?2");
			if (!held)
				return held.status();
			held.value().bind(1, terminal).bind(2, e.seq);
			auto r = held.value().step();
			if (!r)
				return r.status();
			if (!*r || held.value().text(0) != e.hash)
				return bad(chain_conflict, fmt::format("push: entry {} of {} differs from the one "
								       "already held",
								       e.seq, terminal));
			continue;
		}
		if (e.seq != acked + 1)
			return bad(chain_conflict, fmt::format("push: entry {} of {} leaves a gap after {}", e.seq,
							       terminal, acked));
		if (crypto::to_hex(crypto::sha256(e.body)) != e.hash)
			return bad(chain_conflict, fmt::format("push: entry {} of {}: hash does not match its body",
							       e.seq, terminal));
		auto parsed = json_parse(e.body, Code::bad_argument, "entry");
		const Json b = parsed ? std::move(parsed).value() : Json();
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
		LOY_TRY(apply(terminal, store, e.seq, e.body, now));
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
		auto ins = db_.prepare("INSERT INTO entries (terminal_id, seq, hash, kind, token, receipt_id, "
				       "points, device_time, received_at, body) VALUES "
				       "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
		if (!ins)
			return ins.status();
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
		auto &s = ins.value();
		s.bind(1, terminal).bind(2, e.seq).bind(3, e.hash).bind(4, text_of("kind"));
		s.bind(5, text_of("token")).bind(6, text_of("receipt")).bind(7, points);
		s.bind(8, text_of("device_time")).bind(9, now).bind(10, e.body);
		LOY_TRY(s.run());
		acked = e.seq;
		last_hash = e.hash;
	}
	// The skew at this sync: the terminal's clock when it sent the batch
	// against ours when it arrived (the network adds well under a second).
	std::optional<int64_t> skew;
	if (device_now)
		skew = *device_now - now;
	auto up = db_.prepare(
		"INSERT INTO terminals (terminal_id, store, acked_through, last_hash, last_push, max_skew_s, "
		"clock_skew_s, entries_back, entries_future, last_device_time, ledger) "
		"VALUES (?1, ?2, ?3, ?4, ?5, abs(coalesce(?6, 0)), ?6, ?7, ?8, ?9, nullif(?10, '')) "
		"ON CONFLICT (terminal_id) DO UPDATE SET "
		"store = excluded.store, acked_through = excluded.acked_through, "
		"ledger = coalesce(ledger, excluded.ledger), "
		"last_hash = excluded.last_hash, last_push = excluded.last_push, "
		"max_skew_s = max(max_skew_s, excluded.max_skew_s), "
		"clock_skew_s = coalesce(excluded.clock_skew_s, clock_skew_s), "
		"entries_back = entries_back + excluded.entries_back, "
		"entries_future = entries_future + excluded.entries_future, "
		"last_device_time = coalesce(excluded.last_device_time, last_device_time)");
	if (!up)
		return up.status();
	up.value().bind(1, terminal).bind(2, store).bind(3, acked).bind(4, last_hash).bind(5, now);
	if (skew)
		up.value().bind(6, *skew);
	up.value().bind(7, back).bind(8, future);
	if (last_device)
		up.value().bind(9, *last_device);
	// The ledger a terminal syncs from is fixed by its first entries (an
	// empty push after init fixes nothing: the data dir may be made again).
	if (!entries.empty())
		up.value().bind(10, ledger);
	LOY_TRY(up.value().run());
	LOY_TRY(tx.commit());
	return ChainHead{acked, last_hash};
}

Result<EntriesPage> SqliteStore::entries_after(const std::string &terminal, const std::string &ledger, int64_t after,
					      int limit)
{
	// One snapshot: the head and the page agree even while the terminal's
	// other connection pushes.
	db::ReadTransaction snapshot(db_);
	LOY_TRY(snapshot.begin());
	LOY_TRY(check_ledger(terminal, ledger));
	EntriesPage page;
	page.head.hash = zero_hash;
	auto head = db_.prepare("SELECT acked_through, last_hash FROM terminals WHERE terminal_id = ?1");
	if (!head)
		return head.status();
	head.value().bind(1, terminal);
	auto row = head.value().step();
	if (!row)
		return row.status();
	if (*row) {
		page.head.seq = head.value().int64(0);
		page.head.hash = head.value().text(1);
	}
	auto st = db_.prepare("SELECT seq, hash, body FROM entries WHERE terminal_id = ?1 AND seq > ?2 "
			      "ORDER BY seq LIMIT ?3");
	if (!st)
		return st.status();
	st.value().bind(1, terminal).bind(2, after).bind(3, int64_t{limit} + 1);
	LOY_TRY(st.value().each([&]() -> Status {
		if (page.entries.size() == static_cast<size_t>(limit)) {
			page.more = true;
			return Status::ok();
		}
		page.entries.push_back(PushEntry{st.value().int64(0), st.value().text(1), st.value().text(2)});
		return Status::ok();
	}));
	return page;
}

Result<std::optional<std::string>> SqliteStore::program_after(const std::string &id, int64_t after)
{
	auto st = id.empty() ? db_.prepare("SELECT document FROM programs WHERE version > ?2 AND ?1 = '' "
					   "ORDER BY published_at DESC, version DESC LIMIT 1")
			     : db_.prepare("SELECT document FROM programs WHERE id = ?1 AND version > ?2 "
					   "ORDER BY version DESC LIMIT 1");
	if (!st)
		return st.status();
	st.value().bind(1, id).bind(2, after);
	auto row = st.value().step();
	if (!row)
		return row.status();
	if (!*row)
		return std::optional<std::string>();
	return std::optional<std::string>(st.value().text(0));
}

Result<std::optional<std::string>> SqliteStore::program_version(const std::string &id, int64_t version)
{
	auto st = db_.prepare("SELECT document FROM programs WHERE id = ?1 AND version = ?2");
	if (!st)
		return st.status();
	st.value().bind(1, id).bind(2, version);
	auto row = st.value().step();
	if (!row)
		return row.status();
	if (!*row)
		return std::optional<std::string>();
	return std::optional<std::string>(st.value().text(0));
}

Status SqliteStore::sweep(int64_t now)
{
	auto last = scalar(db_, "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'sweep_at'", {});
	if (!last)
		return last.status();
	// Expiry runs every time: points pushed late may be past their date
	// already. Availability is looked for in (last sweep, now] only.
	std::vector<std::string> tokens;
	auto av = db_.prepare("SELECT DISTINCT token FROM lots WHERE available_at > ?1 AND available_at <= ?2 "
			      "AND remaining > 0");
	if (!av)
		return av.status();
	av.value().bind(1, *last).bind(2, now);
	Status av_read = av.value().each([&]() -> Status {
		tokens.push_back(av.value().text(0));
		return Status::ok();
	});
	LOY_TRY(av_read);
	auto ex = db_.prepare("SELECT DISTINCT token FROM lots WHERE remaining > 0 AND expires_at <= ?1");
	if (!ex)
		return ex.status();
	ex.value().bind(1, now);
	Status ex_read = ex.value().each([&]() -> Status {
		tokens.push_back(ex.value().text(0));
		return Status::ok();
	});
	LOY_TRY(ex_read);
	LOY_TRY(run(db_, "UPDATE lots SET expired = expired + remaining, remaining = 0 "
			 "WHERE remaining > 0 AND expires_at <= ?1",
		    {}, {now}));
	for (const auto &t : tokens)
		LOY_TRY(touch(t));
	if (now <= *last)
		return Status::ok();
	return run(db_, "INSERT INTO meta (key, value) VALUES ('sweep_at', ?1) "
			"ON CONFLICT (key) DO UPDATE SET value = excluded.value",
		   {std::to_string(now)});
}

Result<MemberInfo> SqliteStore::member_info(const std::string &token, int64_t now)
{
	MemberInfo m;
	m.token = token;
	auto st = db_.prepare("SELECT masked, blocked, debt, change FROM members WHERE token = ?1");
	if (!st)
		return st.status();
	st.value().bind(1, token);
	auto row = st.value().step();
	if (!row)
		return row.status();
	int64_t debt = 0;
	if (*row) {
		m.known = true;
		m.masked = st.value().text(0);
		m.blocked = st.value().int64(1) != 0;
		debt = st.value().int64(2);
		m.change = st.value().int64(3);
	}
	st.value().reset();
	auto avail = scalar(db_, "SELECT sum(remaining) FROM lots WHERE token = ?1 AND available_at <= ?2 "
				 "AND (expires_at IS NULL OR expires_at > ?2)",
			    {token}, {now});
	if (!avail)
		return avail.status();
	auto pending = scalar(db_, "SELECT sum(remaining) FROM lots WHERE token = ?1 AND available_at > ?2 "
				   "AND (expires_at IS NULL OR expires_at > ?2)",
			      {token}, {now});
	if (!pending)
		return pending.status();
	auto spend = scalar(db_, "SELECT sum(eligible) FROM receipts WHERE token = ?1 AND at_utc > ?2",
			    {token}, {now - qualifying_window_days * day_s});
	if (!spend)
		return spend.status();
	m.balance = *avail - debt;
	m.pending = *pending;
	m.qualifying_spend = *spend;
	auto next = db_.prepare("SELECT min(expires_at) FROM lots WHERE token = ?1 AND remaining > 0 AND "
				"expires_at > ?2");
	if (!next)
		return next.status();
	next.value().bind(1, token).bind(2, now);
	row = next.value().step();
	if (!row)
		return row.status();
	if (*row && !next.value().is_null(0))
		m.next_expiry = utc_date(next.value().int64(0));
	next.value().reset();
	auto p = current_program();
	if (!p)
		return p.status();
	if (*p)
		m.tier = (*p)->tier_for(m.qualifying_spend).name;
	return m;
}

Result<MembersPage> SqliteStore::members_after(int64_t watermark, int limit, int64_t now)
{
	if (limit <= 0 || limit > members_page_max)
		limit = members_page_max;
	std::lock_guard<std::mutex> writer(write_mutex);
	db::Transaction tx(db_);
	LOY_TRY(tx.begin());
	LOY_TRY(sweep(now));
	auto st = db_.prepare("SELECT token FROM members WHERE change > ?1 ORDER BY change LIMIT ?2");
	if (!st)
		return st.status();
	st.value().bind(1, watermark).bind(2, int64_t{limit} + 1);
	std::vector<std::string> tokens;
	Status st_read = st.value().each([&]() -> Status {
		tokens.push_back(st.value().text(0));
		return Status::ok();
	});
	LOY_TRY(st_read);
	st.value().reset();
	MembersPage page;
	page.watermark = watermark;
	page.more = tokens.size() > static_cast<size_t>(limit);
	if (page.more)
		tokens.pop_back();
	for (const auto &t : tokens) {
		auto m = member_info(t, now);
		if (!m)
			return m.status();
		page.watermark = std::max(page.watermark, m->change);
		page.members.push_back(std::move(m).value());
	}
	LOY_TRY(tx.commit());
	return page;
}

Result<Published> SqliteStore::publish_program(std::string_view document, int64_t now)
{
	auto p = parse_program(document);
	if (!p)
		return p.status();
	std::lock_guard<std::mutex> writer(write_mutex);
	db::Transaction tx(db_);
	LOY_TRY(tx.begin());
	auto newest = db_.prepare("SELECT version, document FROM programs WHERE id = ?1 ORDER BY version DESC LIMIT 1");
	if (!newest)
		return newest.status();
	newest.value().bind(1, p->id);
	auto row = newest.value().step();
	if (!row)
		return row.status();
	bool published = true;
	if (*row) {
		int64_t v = newest.value().int64(0);
		if (p->version < v || (p->version == v && Json::parse(newest.value().text(1)) != Json::parse(document)))
			return bad(Code::old_program,
				   fmt::format("program {} v{} is not newer than v{} already published", p->id,
					       p->version, v));
		published = p->version > v;
	}
	newest.value().reset();
	if (published) {
		auto ins = db_.prepare("INSERT INTO programs (id, version, document, published_at) VALUES "
				       "(?1, ?2, ?3, ?4)");
		if (!ins)
			return ins.status();
		Timestamp t;
		t.utc_s = now;
		// Published order; the version breaks ties within a second.
		LOY_TRY(ins.value().bind(1, p->id).bind(2, p->version).bind(3, document)
				.bind(4, fmt::format("{}#{:020}", format_timestamp(t), p->version)).run());
	}
	LOY_TRY(tx.commit());
	return Published{p->id, p->version, published};
}

// Enrolling and blocking: one flag set on the member, a new change number,
// one transaction.
Result<std::string> SqliteStore::mark_member(std::string_view scan, const char *update_sql)
{
	auto card = card_token(scan);
	if (!card)
		return card.status();
	std::lock_guard<std::mutex> writer(write_mutex);
	db::Transaction tx(db_);
	LOY_TRY(tx.begin());
	LOY_TRY(touch(card->first));
	LOY_TRY(run(db_, update_sql, {card->first, card->second}));
	LOY_TRY(tx.commit());
	return card->second;
}

Result<MarkedCard> SqliteStore::enroll(std::string_view scan, int64_t)
{
	auto masked = mark_member(scan, "UPDATE members SET enrolled = 1, masked = ?2 WHERE token = ?1");
	if (!masked)
		return masked.status();
	return MarkedCard{std::move(masked).value()};
}

Result<MarkedCard> SqliteStore::block(std::string_view scan, int64_t)
{
	auto masked = mark_member(scan, "UPDATE members SET blocked = 1, masked = coalesce(masked, ?2) "
					"WHERE token = ?1");
	if (!masked)
		return masked.status();
	return MarkedCard{std::move(masked).value()};
}

Result<Balance> SqliteStore::balance(std::string_view scan, int64_t now)
{
	auto card = card_token(scan);
	if (!card)
		return card.status();
	auto m = member_info(card->first, now);
	if (!m)
		return m.status();
	return Balance{card->second, std::move(m).value()};
}

Result<Report> SqliteStore::report(int64_t now)
{
	{
		std::lock_guard<std::mutex> writer(write_mutex);
		db::Transaction tx(db_);
		LOY_TRY(tx.begin());
		LOY_TRY(sweep(now));
		LOY_TRY(tx.commit());
	}
	Report report;
	auto members = scalar(db_, "SELECT count(*) FROM members", {});
	if (!members)
		return members.status();
	report.members = *members;
	std::map<std::string, PointTotals> stores;
	auto rs = db_.prepare("SELECT store, sum(earned - reversed), sum(redeemed - returned) FROM receipts "
			      "GROUP BY store");
	if (!rs)
		return rs.status();
	Status rs_read = rs.value().each([&]() -> Status {
		auto &s = stores[rs.value().text(0)];
		s.issued = rs.value().int64(1);
		s.redeemed = rs.value().int64(2);
		return Status::ok();
	});
	LOY_TRY(rs_read);
	auto ls = db_.prepare("SELECT store, sum(expired) FROM lots GROUP BY store");
	if (!ls)
		return ls.status();
	Status ls_read = ls.value().each([&]() -> Status {
		stores[ls.value().text(0)].expired = ls.value().int64(1);
		return Status::ok();
	});
	LOY_TRY(ls_read);
	for (const auto &[name, s] : stores) {
		report.points.issued += s.issued;
		report.points.redeemed += s.redeemed;
		report.points.expired += s.expired;
		report.stores.push_back(StoreReport{name, s});
	}
	auto ts = db_.prepare("SELECT terminal_id, store, acked_through, last_push, max_skew_s, clock_skew_s, "
			      "entries_back, entries_future, refused_pushes, last_refusal, last_refusal_at "
			      "FROM terminals ORDER BY terminal_id");
	if (!ts)
		return ts.status();
	Status ts_read = ts.value().each([&]() -> Status {
		const auto &s = ts.value();
		TerminalReport t;
		t.terminal_id = s.text(0);
		t.store = s.text(1);
		t.acked_through = s.int64(2);
		if (!s.is_null(3))
			t.last_push_utc = s.int64(3);
		t.max_clock_skew_s = s.int64(4);
		if (!s.is_null(5))
			t.clock_skew_s = s.int64(5);
		t.entries_clock_back = s.int64(6);
		t.entries_from_future = s.int64(7);
		t.refused_pushes = s.int64(8);
		if (!s.is_null(9))
			t.last_refusal = Refusal{s.int64(10), s.text(9)};
		report.terminals.push_back(std::move(t));
		return Status::ok();
	});
	LOY_TRY(ts_read);
	return report;
}

} // namespace loy::central
