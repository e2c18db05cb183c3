// Schema, migrations, the hash-chained journal, and verification.
#include "storage/ledger.hpp"

#include <map>

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
		data TEXT NOT NULL,
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
	// snapshot of the central server's members.
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
		receipt_id TEXT PRIMARY KEY,
		seq INTEGER NOT NULL,
		token TEXT NOT NULL,
		program_id TEXT NOT NULL,
		program_version INTEGER NOT NULL,
		at_utc INTEGER NOT NULL,
		at_offset INTEGER NOT NULL,
		local_date INTEGER NOT NULL,
		available_at INTEGER NOT NULL,
		expires_at INTEGER,
		request TEXT NOT NULL,
		receipt TEXT NOT NULL,
		result TEXT NOT NULL,
		earned INTEGER NOT NULL,
		redeemed INTEGER NOT NULL,
		reversed INTEGER NOT NULL DEFAULT 0,
		returned INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
	CREATE INDEX receipts_by_member ON receipts (token, local_date);
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
	int64_t seq = 0;
	std::string token, program_id;
	int64_t program_version = 0, at_utc = 0, at_offset = 0, local_date = 0, available_at = 0;
	std::optional<int64_t> expires_at;
	std::string request, receipt, result;
	int64_t earned = 0, redeemed = 0, reversed = 0, returned = 0;
	bool operator==(const ReceiptRow &o) const
	{
		return seq == o.seq && token == o.token && program_id == o.program_id &&
		       program_version == o.program_version && at_utc == o.at_utc &&
		       at_offset == o.at_offset && local_date == o.local_date &&
		       available_at == o.available_at && expires_at == o.expires_at &&
		       request == o.request && receipt == o.receipt && result == o.result &&
		       earned == o.earned && redeemed == o.redeemed && reversed == o.reversed &&
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
		    int64_t points, const std::string &data, bool unacked)
{
	// Ordered, so that re-encoding gives back the very text that was stored.
	auto d = nlohmann::ordered_json::parse(data, nullptr, false);
	if (d.is_discarded() || !d.is_object())
		return corrupt(fmt::format("entry {}: data is not a JSON object", seq));
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
			row.receipt = d.at("receipt").dump();
			row.result = d.at("result").dump();
			row.earned = d.at("receipt").at("earned").get<int64_t>();
			row.redeemed = d.at("receipt").at("redeemed").get<int64_t>();
			if (!r.receipts.emplace(receipt_id, row).second)
				return corrupt(fmt::format("entry {}: receipt {} recorded twice", seq, receipt_id));
		} else if (kind == "refund") {
			auto it = r.receipts.find(receipt_id);
			if (it == r.receipts.end())
				return corrupt(fmt::format("entry {}: refund of unknown receipt {}", seq,
							   receipt_id));
			it->second.receipt = d.at("receipt").dump();
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
	} catch (const nlohmann::json::exception &e) {
		return corrupt(fmt::format("entry {}: data lacks a field: {}", seq, e.what()));
	}
	return Status::ok();
}

// Replays the whole journal in sequence order.
Result<Replay> replay_journal(db::Db &db, int64_t acked)
{
	auto st = db.prepare("SELECT seq, kind, receipt_id, token, program_id, program_version, "
			     "points, data FROM journal ORDER BY seq");
	if (!st)
		return st.status();
	Replay r;
	for (;;) {
		auto row = st.value().step();
		if (!row)
			return row.status();
		if (!*row)
			break;
		const db::Stmt &s = st.value();
		int64_t seq = s.int64(0);
		LOY_TRY(replay_entry(r, seq, s.text(1), s.text(2), s.text(3), s.text(4), s.int64(5),
				     s.int64(6), s.text(7), seq > acked));
	}
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
	LOY_TRY(db_.open(dir + "/ledger.db", create));
	return migrate();
}

Status Ledger::migrate()
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

Status Ledger::set_meta(const char *key, const std::string &value)
{
	auto st = db_.prepare("INSERT INTO meta (key, value) VALUES (?1, ?2) "
			      "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
	if (!st)
		return st.status();
	return st.value().bind(1, std::string_view(key)).bind(2, value).run();
}

Status Ledger::load_keys()
{
	auto tid = meta("terminal_id");
	if (!tid)
		return tid.status();
	if (!*tid)
		return Status(Code::bad_argument, fmt::format("data dir {} is not initialised: run init", dir_));
	terminal_id_ = **tid;
	auto mk = crypto::read_key_file(dir_ + "/ledger.key");
	if (!mk)
		return Status(Code::storage, mk.status().message());
	auto tk = crypto::read_key_file(dir_ + "/token.key");
	if (!tk)
		return Status(Code::storage, tk.status().message());
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

Result<int64_t> Ledger::acked_through()
{
	auto v = meta("acked_through");
	if (!v)
		return v.status();
	return *v ? static_cast<int64_t>(std::stoll(**v)) : int64_t{0};
}

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
			       "program_version, device_time, points, data, body, hash, mac) "
			       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
	if (!ins)
		return ins.status();
	auto &s = ins.value();
	s.bind(1, e.seq).bind(2, e.kind).bind(3, e.receipt_id).bind(4, e.token).bind(5, e.program_id);
	s.bind(6, e.program_version).bind(7, e.device_time).bind(8, e.points).bind(9, e.data);
	s.bind(10, e.body).bind_blob(11, e.hash.data(), e.hash.size()).bind_blob(12, e.mac.data(), e.mac.size());
	return s.run();
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
	auto ri = db_.prepare("INSERT INTO receipts (receipt_id, seq, token, program_id, program_version, "
			      "local_date, available_at, expires_at, request, receipt, result, earned, "
			      "redeemed, reversed, returned, at_utc, at_offset) VALUES "
			      "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)");
	if (!ri)
		return ri.status();
	for (const auto &[id, x] : r->receipts) {
		auto &s = ri.value();
		s.reset();
		s.bind(1, id).bind(2, x.seq).bind(3, x.token).bind(4, x.program_id).bind(5, x.program_version);
		s.bind(6, x.local_date).bind(7, x.available_at).bind(8, x.expires_at).bind(9, x.request);
		s.bind(10, x.receipt).bind(11, x.result).bind(12, x.earned).bind(13, x.redeemed);
		s.bind(14, x.reversed).bind(15, x.returned).bind(16, x.at_utc).bind(17, x.at_offset);
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
			      "device_time, points, data, body, hash, mac FROM journal ORDER BY seq");
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
		e.data = s.text(8);
		std::string body = s.text(9), hash = s.blob(10), mac = s.blob(11);
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
		Json data = Json::parse(e.data, nullptr, false);
		if (data.is_discarded()) {
			fail(e.seq, fmt::format("entry {}: data is not JSON", e.seq));
			prev = h;
			continue;
		}
		if (entry_body(e, terminal_id_, prev) != body)
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
	for (;;) {
		auto row = ms.value().step();
		if (!row)
			return row.status();
		if (!*row)
			break;
		members++;
		const auto &s = ms.value();
		MemberRow m{s.text(1), s.int64(2), s.int64(3), s.int64(4)};
		auto it = r->members.find(s.text(0));
		if (it == r->members.end() || !(it->second == m))
			fail(v.entries, fmt::format("members table differs from the journal for member {}…",
						    s.text(0).substr(0, 12)));
	}
	if (members != r->members.size())
		fail(v.entries, "members table lacks a member the journal has");
	auto rs = db_.prepare("SELECT receipt_id, seq, token, program_id, program_version, local_date, "
			      "available_at, expires_at, request, receipt, result, earned, redeemed, "
			      "reversed, returned, at_utc, at_offset FROM receipts");
	if (!rs)
		return rs.status();
	size_t receipts = 0;
	for (;;) {
		auto row = rs.value().step();
		if (!row)
			return row.status();
		if (!*row)
			break;
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
		x.receipt = s.text(9);
		x.result = s.text(10);
		x.earned = s.int64(11);
		x.redeemed = s.int64(12);
		x.reversed = s.int64(13);
		x.returned = s.int64(14);
		x.at_utc = s.int64(15);
		x.at_offset = s.int64(16);
		auto it = r->receipts.find(s.text(0));
		if (it == r->receipts.end() || !(it->second == x))
			fail(x.seq, fmt::format("receipts table differs from the journal for receipt {}",
						s.text(0)));
	}
	if (receipts != r->receipts.size())
		fail(v.entries, "receipts table lacks a receipt the journal has");
	return v;
}

} // namespace loy
