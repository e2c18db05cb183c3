// Schema, migrations, the hash-chained journal, and verification.
#include "storage/ledger.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace loy {

using Json = nlohmann::json;

namespace {

// Forward migrations, in order: migrations[i] takes the schema from version
// i to i + 1. Never edit one that has shipped; add the next.
const char *const migrations[] = {
	// 0 → 1: the journal, settings and program versions.
	R"sql(
	CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
	CREATE TABLE journal (
		seq INTEGER PRIMARY KEY,
		kind TEXT NOT NULL,
		receipt_id TEXT,
		token TEXT,
		program_id TEXT,
		program_version INTEGER,
		device_time TEXT NOT NULL,
		points INTEGER NOT NULL,
		body TEXT NOT NULL,
		hash BLOB NOT NULL,
		mac BLOB NOT NULL);
	CREATE TABLE programs (
		id TEXT NOT NULL,
		version INTEGER NOT NULL,
		document TEXT NOT NULL,
		loaded_at TEXT NOT NULL,
		PRIMARY KEY (id, version)) WITHOUT ROWID;
	)sql",
	// 1 → 2: tables derived from the journal, so that a checkout reads a
	// member's state by key instead of scanning the journal; and the last
	// snapshot of the central server's members. A receipt's row is small:
	// its basket and results stay in the journal entries it names (seq: the
	// checkout, last_seq: the latest entry that changed it).
	R"sql(
	CREATE TABLE members (
		token TEXT PRIMARY KEY,
		masked TEXT NOT NULL,
		enrolled INTEGER NOT NULL DEFAULT 0,
		local_points INTEGER NOT NULL DEFAULT 0,
		local_spend INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
	CREATE TABLE server_members (
		token TEXT PRIMARY KEY,
		masked TEXT,
		balance INTEGER NOT NULL DEFAULT 0,
		pending INTEGER NOT NULL DEFAULT 0,
		spend INTEGER NOT NULL DEFAULT 0,
		tier TEXT,
		blocked INTEGER NOT NULL DEFAULT 0,
		next_expiry TEXT) WITHOUT ROWID;
	CREATE TABLE receipts (
		receipt_id TEXT NOT NULL UNIQUE,
		seq INTEGER NOT NULL,
		last_seq INTEGER NOT NULL,
		token TEXT NOT NULL,
		program_id TEXT NOT NULL,
		program_version INTEGER NOT NULL,
		at_utc INTEGER NOT NULL,
		at_offset INTEGER NOT NULL,
		local_date INTEGER NOT NULL,
		available_at INTEGER NOT NULL,
		expires_at INTEGER,
		request TEXT NOT NULL,
		earned INTEGER NOT NULL,
		redeemed INTEGER NOT NULL,
		reversed INTEGER NOT NULL DEFAULT 0,
		returned INTEGER NOT NULL DEFAULT 0);
	CREATE INDEX receipts_by_member ON receipts (token, local_date);
	CREATE INDEX receipts_by_available ON receipts (token, available_at);
	CREATE INDEX receipts_by_expiry ON receipts (token, expires_at);
	CREATE INDEX receipts_by_time ON receipts (at_utc);
	)sql",
};
static_assert(std::size(migrations) == schema_version, "one migration per schema version");

Status corrupt(const std::string &what) { return Status(Code::storage, "ledger: " + what); }

// A member's aggregates and a receipt's row as the journal says they are.
struct MemberRow {
	std::string masked;
	int64_t enrolled = 0;
	int64_t local_points = 0;
	int64_t local_spend = 0;
	bool operator==(const MemberRow &o) const
	{
		return masked == o.masked && enrolled == o.enrolled && local_points == o.local_points &&
		       local_spend == o.local_spend;
	}
};

struct ReceiptRow {
	int64_t seq = 0, last_seq = 0;
	std::string token, program_id;
	int64_t program_version = 0, at_utc = 0, at_offset = 0, local_date = 0, available_at = 0;
	std::optional<int64_t> expires_at;
	std::string request;
	int64_t earned = 0, redeemed = 0, reversed = 0, returned = 0;
	bool operator==(const ReceiptRow &o) const
	{
		return seq == o.seq && last_seq == o.last_seq && token == o.token && program_id == o.program_id &&
		       program_version == o.program_version && at_utc == o.at_utc &&
		       at_offset == o.at_offset && local_date == o.local_date &&
		       available_at == o.available_at && expires_at == o.expires_at &&
		       request == o.request && earned == o.earned && redeemed == o.redeemed && reversed == o.reversed &&
		       returned == o.returned;
	}
};

struct Replay {
	std::map<std::string, MemberRow> members;
	std::map<std::string, ReceiptRow> receipts;
};

// Applies one entry to the replayed state. `unacked`: the entry counts in
// the members' local aggregates (the server has not acknowledged it).
Status replay_entry(Replay &r, int64_t seq, const std::string &kind, const std::string &receipt_id,
		    const std::string &token, const std::string &program_id, int64_t program_version,
		    int64_t points, const std::string &body, bool unacked)
{
	auto doc = Json::parse(body, nullptr, false);
	if (doc.is_discarded() || !doc.is_object() || !doc.contains("data") || !doc["data"].is_object())
		return corrupt(fmt::format("entry {}: body is not an entry", seq));
	const Json &d = doc["data"];
	try {
		if (kind == "enroll") {
			auto &m = r.members[token];
			m.masked = d.at("masked").get<std::string>();
			m.enrolled = 1;
		} else if (kind == "checkout") {
			auto &m = r.members[token];
			if (m.masked.empty())
				m.masked = d.at("masked").get<std::string>();
			if (unacked) {
				m.local_points += points;
				m.local_spend += d.at("receipt").at("eligible").get<int64_t>();
			}
			ReceiptRow row;
			row.seq = seq;
			row.last_seq = seq;
			row.token = token;
			row.program_id = program_id;
			row.program_version = program_version;
			row.at_utc = d.at("at_utc").get<int64_t>();
			row.at_offset = d.at("at_offset").get<int64_t>();
			row.local_date = d.at("local_date").get<int64_t>();
			row.available_at = d.at("available_at").get<int64_t>();
			if (!d.at("expires_at").is_null())
				row.expires_at = d.at("expires_at").get<int64_t>();
			row.request = d.at("request").get<std::string>();
			row.earned = d.at("receipt").at("earned").get<int64_t>();
			row.redeemed = d.at("receipt").at("redeemed").get<int64_t>();
			if (!r.receipts.emplace(receipt_id, row).second)
				return corrupt(fmt::format("entry {}: receipt {} recorded twice", seq, receipt_id));
		} else if (kind == "refund") {
			auto it = r.receipts.find(receipt_id);
			if (it == r.receipts.end())
				return corrupt(fmt::format("entry {}: refund of unknown receipt {}", seq,
							   receipt_id));
			it->second.last_seq = seq;
			it->second.reversed += d.at("reversed").get<int64_t>();
			it->second.returned += d.at("returned").get<int64_t>();
			if (unacked) {
				auto &m = r.members[token];
				m.local_points += points;
				m.local_spend -= d.at("spend_reversed").get<int64_t>();
			}
		} else if (kind == "adjust") {
			if (unacked)
				r.members[token].local_points += points;
		} else {
			return corrupt(fmt::format("entry {}: unknown kind \"{}\"", seq, kind));
		}
	} catch (const Json::exception &e) {
		return corrupt(fmt::format("entry {}: data lacks a field: {}", seq, e.what()));
	}
	return Status::ok();
}

// Replays the whole journal in sequence order.
Result<Replay> replay_journal(db::Db &db, int64_t acked)
{
	auto st = db.prepare("SELECT seq, kind, receipt_id, token, program_id, program_version, "
			     "points, body FROM journal ORDER BY seq");
	if (!st)
		return st.status();
	Replay r;
	Status st_read = st.value().each([&]() -> Status {
		const db::Stmt &s = st.value();
		int64_t seq = s.int64(0);
		LOY_TRY(replay_entry(r, seq, s.text(1), s.text(2), s.text(3), s.text(4), s.int64(5),
				     s.int64(6), s.text(7), seq > acked));
		return Status::ok();
	});
	LOY_TRY(st_read);
	return r;
}

} // namespace

std::string entry_body(const Entry &e, const std::string &terminal_id, const crypto::Digest &prev)
{
	// nlohmann's ordered_json keeps insertion order: the body's bytes are
	// fixed by this function alone.
	nlohmann::ordered_json doc;
	doc["v"] = 1;
	doc["terminal"] = terminal_id;
	doc["seq"] = e.seq;
	doc["kind"] = e.kind;
	doc["device_time"] = e.device_time;
	doc["token"] = e.token;
	doc["receipt"] = e.receipt_id;
	doc["program"] = e.program_id;
	doc["program_version"] = e.program_version;
	doc["points"] = e.points;
	doc["data"] = nlohmann::ordered_json::parse(e.data);
	doc["prev"] = crypto::to_hex(prev);
	return doc.dump();
}

Status Ledger::open(const std::string &dir, bool create)
{
	dir_ = dir;
	const std::string path = dir + "/ledger.db";
	if (create) {
		// SQLite makes the file with the umask's mode, and its -wal and -shm
		// take the same: make it private first.
		int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return corrupt(fmt::format("cannot create {}: {}", path, std::strerror(errno)));
		::close(fd);
	}
	LOY_TRY(db_.open(path, create));
	return migrate(create);
}

Status Ledger::migrate(bool create)
{
	auto st = db_.prepare("PRAGMA user_version");
	if (!st)
		return st.status();
	auto row = st.value().step();
	if (!row)
		return row.status();
	int64_t version = st.value().int64(0);
	if (version > schema_version)
		return corrupt(fmt::format("schema version {} is newer than this program's {}: "
					   "update the terminal software",
					   version, schema_version));
	if (version == schema_version)
		return Status::ok();
	// An empty file where a ledger should be is damage, not a new terminal:
	// making a fresh schema there would hide the loss.
	if (version == 0 && !create)
		return corrupt(fmt::format("{}/ledger.db holds no ledger (emptied or replaced?)", dir_));
	db::Transaction tx(db_);
	LOY_TRY(tx.begin());
	for (int64_t v = version; v < schema_version; v++) {
		LOY_TRY(db_.exec(migrations[v]));
		if (v + 1 == 2)
			LOY_TRY(rebuild_derived());
	}
	LOY_TRY(db_.exec(fmt::format("PRAGMA user_version = {}", schema_version).c_str()));
	return tx.commit();
}

Result<std::optional<std::string>> Ledger::meta(const char *key)
{
	auto st = db_.prepare("SELECT value FROM meta WHERE key = ?1");
	if (!st)
		return st.status();
	st.value().bind(1, std::string_view(key));
	auto row = st.value().step();
	if (!row)
		return row.status();
	if (!*row)
		return std::optional<std::string>();
	return std::optional<std::string>(st.value().text(0));
}

Result<int64_t> Ledger::meta_int(const char *key, int64_t fallback)
{
	auto v = meta(key);
	if (!v)
		return v.status();
	if (!*v)
		return fallback;
	const std::string &text = **v;
	errno = 0;
	char *end = nullptr;
	long long n = std::strtoll(text.c_str(), &end, 10);
	if (text.empty() || errno != 0 || *end != '\0')
		return corrupt(fmt::format("setting {} holds \"{}\", not a number", key, text));
	return static_cast<int64_t>(n);
}

Status Ledger::set_meta(const char *key, const std::string &value)
{
	auto st = db_.prepare("INSERT INTO meta (key, value) VALUES (?1, ?2) "
			      "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
	if (!st)
		return st.status();
	return st.value().bind(1, std::string_view(key)).bind(2, value).run();
}

Status Ledger::load_keys(const KeyStore &keys)
{
	auto tid = meta("terminal_id");
	if (!tid)
		return tid.status();
	if (!*tid)
		return Status(Code::bad_argument, fmt::format("data dir {} is not initialised: run init", dir_));
	terminal_id_ = **tid;
	auto mk = keys.key(ledger_key_item);
	if (!mk)
		return mk.status();
	auto tk = keys.key(token_key_item);
	if (!tk)
		return tk.status();
	mac_key_ = *mk;
	token_key_ = *tk;
	keys_loaded_ = true;
	return Status::ok();
}

std::string Ledger::member_token(const std::string &card_digits) const
{
	assert(keys_loaded_);
	return crypto::to_hex(crypto::hmac_sha256(token_key_, card_digits));
}

Result<std::string> Ledger::entry_data(int64_t seq)
{
	auto st = db_.prepare("SELECT body FROM journal WHERE seq = ?1");
	if (!st)
		return st.status();
	st.value().bind(1, seq);
	auto row = st.value().step();
	if (!row)
		return row.status();
	if (!*row)
		return corrupt(fmt::format("entry {} is missing", seq));
	auto doc = nlohmann::ordered_json::parse(st.value().text(0), nullptr, false);
	if (doc.is_discarded() || !doc.is_object() || !doc.contains("data"))
		return corrupt(fmt::format("entry {}: body is not an entry", seq));
	return doc["data"].dump();
}

Result<int64_t> Ledger::last_seq()
{
	auto st = db_.prepare("SELECT coalesce(max(seq), 0) FROM journal");
	if (!st)
		return st.status();
	auto row = st.value().step();
	if (!row)
		return row.status();
	return st.value().int64(0);
}

Result<int64_t> Ledger::count_entries() { return last_seq(); }

Result<int64_t> Ledger::acked_through() { return meta_int("acked_through", 0); }

Status Ledger::append(Entry &e)
{
	assert(keys_loaded_);
	auto st = db_.prepare("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1");
	if (!st)
		return st.status();
	auto row = st.value().step();
	if (!row)
		return row.status();
	crypto::Digest prev{};
	int64_t seq = 1;
	if (*row) {
		seq = st.value().int64(0) + 1;
		std::string h = st.value().blob(1);
		if (h.size() != prev.size())
			return corrupt(fmt::format("entry {} has a malformed hash", seq - 1));
		std::copy(h.begin(), h.end(), prev.begin());
	}
	e.seq = seq;
	e.body = entry_body(e, terminal_id_, prev);
	e.hash = crypto::sha256(e.body);
	e.mac = crypto::hmac_sha256(mac_key_, std::string_view(reinterpret_cast<const char *>(e.hash.data()),
								 e.hash.size()));
	auto ins = db_.prepare("INSERT INTO journal (seq, kind, receipt_id, token, program_id, "
			       "program_version, device_time, points, body, hash, mac) "
			       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
	if (!ins)
		return ins.status();
	auto &s = ins.value();
	s.bind(1, e.seq).bind(2, e.kind).bind(3, e.receipt_id).bind(4, e.token).bind(5, e.program_id);
	s.bind(6, e.program_version).bind(7, e.device_time).bind(8, e.points).bind(9, e.body);
	s.bind_blob(10, e.hash.data(), e.hash.size()).bind_blob(11, e.mac.data(), e.mac.size());
	LOY_TRY(s.run());
	// The head of the chain, kept apart from it: entries cut off the end of
	// the journal leave a shorter chain that is consistent in itself.
	return set_meta("head", std::to_string(e.seq));
}

Status Ledger::rebuild_derived()
{
	auto acked = acked_through();
	if (!acked)
		return acked.status();
	auto r = replay_journal(db_, *acked);
	if (!r)
		return r.status();
	LOY_TRY(db_.exec("DELETE FROM members; DELETE FROM receipts;"));
	auto mi = db_.prepare("INSERT INTO members (token, masked, enrolled, local_points, local_spend) "
			      "VALUES (?1, ?2, ?3, ?4, ?5)");
	if (!mi)
		return mi.status();
	for (const auto &[token, m] : r->members) {
		mi.value().reset();
		LOY_TRY(mi.value().bind(1, token).bind(2, m.masked).bind(3, m.enrolled)
				.bind(4, m.local_points).bind(5, m.local_spend).run());
	}
	auto ri = db_.prepare("INSERT INTO receipts (receipt_id, seq, last_seq, token, program_id, "
			      "program_version, local_date, available_at, expires_at, request, earned, "
			      "redeemed, reversed, returned, at_utc, at_offset) VALUES "
			      "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)");
	if (!ri)
		return ri.status();
	for (const auto &[id, x] : r->receipts) {
		auto &s = ri.value();
		s.reset();
		s.bind(1, id).bind(2, x.seq).bind(3, x.last_seq).bind(4, x.token).bind(5, x.program_id);
		s.bind(6, x.program_version).bind(7, x.local_date).bind(8, x.available_at);
		s.bind(9, x.expires_at).bind(10, x.request).bind(11, x.earned).bind(12, x.redeemed);
		s.bind(13, x.reversed).bind(14, x.returned).bind(15, x.at_utc).bind(16, x.at_offset);
		LOY_TRY(s.run());
	}
	return Status::ok();
}

Result<Ledger::Verdict> Ledger::verify()
{
	assert(keys_loaded_);
	Verdict v;
	auto fail = [&v](int64_t seq, std::string problem) {
		if (v.ok) {
			v.ok = false;
			v.first_bad = seq;
			v.problem = std::move(problem);
		}
	};

	// One snapshot for every check: another process may be writing.
	db::ReadTransaction snapshot(db_);
	LOY_TRY(snapshot.begin());

	// SQLite's own view of the file first: a damaged page explains the rest.
	{
		auto st = db_.prepare("PRAGMA integrity_check");
		if (!st)
			return st.status();
		auto row = st.value().step();
		if (!row)
			return row.status();
		if (*row && st.value().text(0) != "ok")
			fail(0, "SQLite integrity check: " + st.value().text(0));
	}

	auto st = db_.prepare("SELECT seq, kind, receipt_id, token, program_id, program_version, "
			      "device_time, points, body, hash, mac FROM journal ORDER BY seq");
	if (!st)
		return st.status();
	crypto::Digest prev{};
	int64_t expect = 1;
	for (;;) {
		auto row = st.value().step();
		if (!row)
			return row.status();
		if (!*row)
			break;
		const auto &s = st.value();
		Entry e;
		e.seq = s.int64(0);
		e.kind = s.text(1);
		e.receipt_id = s.text(2);
		e.token = s.text(3);
		e.program_id = s.text(4);
		e.program_version = s.int64(5);
		e.device_time = s.text(6);
		e.points = s.int64(7);
		std::string body = s.text(8), hash = s.blob(9), mac = s.blob(10);
		v.entries++;
		if (e.seq != expect) {
			fail(expect, fmt::format("sequence gap: entry {} is missing (next is {})", expect, e.seq));
			expect = e.seq;
		}
		expect++;
		crypto::Digest h{}, m{};
		if (hash.size() != h.size() || mac.size() != m.size()) {
			fail(e.seq, fmt::format("entry {}: malformed hash or MAC", e.seq));
			continue;
		}
		std::copy(hash.begin(), hash.end(), h.begin());
		std::copy(mac.begin(), mac.end(), m.begin());
		// The body is rebuilt from the columns and the previous hash; its data
		// part is taken from the body itself, in its own key order.
		auto doc = nlohmann::ordered_json::parse(body, nullptr, false);
		if (doc.is_discarded() || !doc.is_object() || !doc.contains("data")) {
			fail(e.seq, fmt::format("entry {}: body is not an entry", e.seq));
			prev = h;
			continue;
		}
		std::string rebuilt;
		try {
			e.data = doc["data"].dump();
			rebuilt = entry_body(e, terminal_id_, prev);
		} catch (const nlohmann::json::exception &) {
			// A column holding bytes that are not UTF-8 text.
			fail(e.seq, fmt::format("entry {}: a column holds bytes that are not text", e.seq));
			prev = h;
			continue;
		}
		if (rebuilt != body)
			fail(e.seq, fmt::format("entry {}: columns or chain link differ from the hashed body",
						e.seq));
		else if (!crypto::equal(crypto::sha256(body), h))
			fail(e.seq, fmt::format("entry {}: hash does not match its body", e.seq));
		else if (!crypto::equal(crypto::hmac_sha256(mac_key_,
							    std::string_view(reinterpret_cast<const char *>(h.data()),
									     h.size())),
					m))
			fail(e.seq, fmt::format("entry {}: MAC does not match (forged or wrong key)", e.seq));
		prev = h;
	}

	// The head kept apart from the chain: a journal cut short ends early.
	auto head = meta_int("head", -1);
	if (!head)
		return head.status();
	const int64_t last = expect - 1;
	if (*head >= 0 && *head != last)
		fail(std::min(*head, last) + 1,
		     *head > last ? fmt::format("entries {} to {} are missing from the end of the journal",
						last + 1, *head)
				  : fmt::format("entries after {} were added outside the ledger", *head));

	// Derived tables against a replay of the journal.
	auto acked = acked_through();
	if (!acked)
		return acked.status();
	auto r = replay_journal(db_, *acked);
	if (!r) {
		if (r.status().code() != Code::storage)
			return r.status();
		fail(v.entries, r.status().message());
		return v;
	}
	auto ms = db_.prepare("SELECT token, masked, enrolled, local_points, local_spend FROM members");
	if (!ms)
		return ms.status();
	size_t members = 0;
	Status ms_read = ms.value().each([&]() -> Status {
		members++;
		const auto &s = ms.value();
		MemberRow m{s.text(1), s.int64(2), s.int64(3), s.int64(4)};
		auto it = r->members.find(s.text(0));
		if (it == r->members.end() || !(it->second == m))
			fail(v.entries, fmt::format("members table differs from the journal for member {}…",
						    s.text(0).substr(0, 12)));
		return Status::ok();
	});
	LOY_TRY(ms_read);
	if (members != r->members.size())
		fail(v.entries, "members table lacks a member the journal has");
	auto rs = db_.prepare("SELECT receipt_id, seq, token, program_id, program_version, local_date, "
			      "available_at, expires_at, request, last_seq, earned, redeemed, "
			      "reversed, returned, at_utc, at_offset FROM receipts");
	if (!rs)
		return rs.status();
	size_t receipts = 0;
	std::set<std::string> in_table;
	Status rs_read = rs.value().each([&]() -> Status {
		receipts++;
		const auto &s = rs.value();
		ReceiptRow x;
		x.seq = s.int64(1);
		x.token = s.text(2);
		x.program_id = s.text(3);
		x.program_version = s.int64(4);
		x.local_date = s.int64(5);
		x.available_at = s.int64(6);
		if (!s.is_null(7))
			x.expires_at = s.int64(7);
		x.request = s.text(8);
		x.last_seq = s.int64(9);
		x.earned = s.int64(10);
		x.redeemed = s.int64(11);
		x.reversed = s.int64(12);
		x.returned = s.int64(13);
		x.at_utc = s.int64(14);
		x.at_offset = s.int64(15);
		in_table.insert(s.text(0));
		auto it = r->receipts.find(s.text(0));
		if (it == r->receipts.end() || !(it->second == x))
			fail(x.seq, fmt::format("receipts table differs from the journal for receipt {}",
						s.text(0)));
		return Status::ok();
	});
	LOY_TRY(rs_read);
	if (receipts != r->receipts.size())
		for (const auto &[id, x] : r->receipts)
			if (!in_table.count(id)) {
				fail(x.seq, fmt::format("receipts table lacks receipt {} of entry {}", id, x.seq));
				break;
			}
	return v;
}

} // namespace loy
