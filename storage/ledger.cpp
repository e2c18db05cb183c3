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
	// 2 → 3: a seal (HMAC under the ledger key) on each row outside the
	// journal that decides points or identity. The rows of a ledger that
	// had none are sealed when its keys are loaded (Ledger::load_keys).
	R"sql(
	ALTER TABLE meta ADD COLUMN mac BLOB;
	ALTER TABLE programs ADD COLUMN mac BLOB;
	ALTER TABLE server_members ADD COLUMN mac BLOB;
	)sql",
	// 3 → 4: a ledger behind the centre (Terminal::recover). `recovery`
	// stages the terminal's own entries as the centre sends them back, a
	// page at a time; `rebased` keeps each entry that was recorded after
	// the ledger fell behind, as it was (its MAC still checks), with the
	// entry that records it again or why it was not.
	R"sql(
	CREATE TABLE recovery (
		seq INTEGER PRIMARY KEY,
		hash TEXT NOT NULL,
		body TEXT NOT NULL);
	CREATE TABLE rebased (
		id INTEGER PRIMARY KEY,
		old_seq INTEGER NOT NULL,
		body TEXT NOT NULL,
		hash BLOB NOT NULL,
		mac BLOB NOT NULL,
		rebased_at TEXT NOT NULL,
		new_seq INTEGER,
		dropped TEXT);
	)sql",
	// 4 → 5: the segments of each member of the centre's snapshot (names
	// one a line), sealed with the row once it has any.
	R"sql(
	ALTER TABLE server_members ADD COLUMN segments TEXT NOT NULL DEFAULT '';
	)sql",
	// 5 → 6: donations to charities (program spec 2), derived from their
	// journal entries: what a member gave on a local day counts with the
	// day's redemptions against the offline cap.
	R"sql(
	CREATE TABLE donations (
		seq INTEGER PRIMARY KEY,
		token TEXT NOT NULL,
		charity TEXT NOT NULL,
		points INTEGER NOT NULL,
		local_date INTEGER NOT NULL);
	CREATE INDEX donations_by_member ON donations (token, local_date);
	)sql",
	// 6 → 7: stamp cards (program spec 2). The centre's count per card of
	// each member of its snapshot (a JSON object; sealed with the row once
	// it has any), the stamps this terminal's unacknowledged
	// entries moved, and on each receipt the stamp card whose reward it
	// took (one a member per local day on a terminal).
	R"sql(
	ALTER TABLE server_members ADD COLUMN stamps TEXT NOT NULL DEFAULT '';
	CREATE TABLE member_stamps (
		token TEXT NOT NULL,
		card TEXT NOT NULL,
		local INTEGER NOT NULL,
		PRIMARY KEY (token, card)) WITHOUT ROWID;
	ALTER TABLE receipts ADD COLUMN stamp_card TEXT;
	)sql",
	// 7 → 8: paid memberships (program spec 2). Each member's runs in the
	// centre's snapshot (a JSON object; sealed with the row once it has
	// any), and the days this terminal's unacknowledged entries bought
	// (> 0, on the receipt's local day) or took off (< 0), in entry order.
	R"sql(
	ALTER TABLE server_members ADD COLUMN memberships TEXT NOT NULL DEFAULT '';
	CREATE TABLE membership_changes (
		seq INTEGER NOT NULL,
		token TEXT NOT NULL,
		membership TEXT NOT NULL,
		days INTEGER NOT NULL,
		local_date INTEGER NOT NULL,
		PRIMARY KEY (seq, membership)) WITHOUT ROWID;
	CREATE INDEX membership_changes_by_member ON membership_changes (token, seq);
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
	std::string stamp_card; // the stamp card whose reward it took; "" for none
	bool operator==(const ReceiptRow &o) const
	{
		return seq == o.seq && last_seq == o.last_seq && token == o.token && program_id == o.program_id &&
		       program_version == o.program_version && at_utc == o.at_utc &&
		       at_offset == o.at_offset && local_date == o.local_date &&
		       available_at == o.available_at && expires_at == o.expires_at &&
		       request == o.request && earned == o.earned && redeemed == o.redeemed && reversed == o.reversed &&
		       returned == o.returned && stamp_card == o.stamp_card;
	}
};

struct DonationRow {
	std::string token, charity;
	int64_t points = 0, local_date = 0;
	bool operator==(const DonationRow &o) const
	{
		return token == o.token && charity == o.charity && points == o.points && local_date == o.local_date;
	}
};

struct Replay {
	std::map<std::string, MemberRow> members;
	std::map<std::string, ReceiptRow> receipts;
	std::map<int64_t, DonationRow> donations; // by the entry's seq
	// Unacknowledged membership days, by (seq, membership id).
	struct MembershipChange {
		std::string token;
		int64_t days = 0, local_date = 0;
		bool operator==(const MembershipChange &o) const
		{
			return token == o.token && days == o.days && local_date == o.local_date;
		}
	};
	std::map<std::pair<int64_t, std::string>, MembershipChange> memberships;
	// (token, stamp card) → the stamps unacknowledged entries moved; none
	// kept at zero.
	std::map<std::pair<std::string, std::string>, int64_t> stamps;
	void add_stamps(const std::string &token, const std::string &card, int64_t n)
	{
		auto &v = stamps[{token, card}];
		v += n;
		if (v == 0)
			stamps.erase({token, card});
	}
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
			const Json &redemption = d.at("receipt").at("redemption");
			if (redemption.is_object() && redemption.contains("stamp_card"))
				row.stamp_card = redemption["stamp_card"].get<std::string>();
			if (unacked && d.contains("memberships"))
				for (const auto &x : d["memberships"])
					r.memberships[{seq, x.at("id").get<std::string>()}] = Replay::MembershipChange{
						token, x.at("days").get<int64_t>(), row.local_date};
			if (unacked && d.at("receipt").contains("stamps"))
				for (const auto &x : d["receipt"]["stamps"])
					r.add_stamps(token, x.at("id").get<std::string>(),
						     x.at("earned").get<int64_t>() - x.at("used").get<int64_t>());
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
				if (d.contains("memberships"))
					for (const auto &x : d["memberships"])
						r.memberships[{seq, x.at("id").get<std::string>()}] =
							Replay::MembershipChange{token, -x.at("days").get<int64_t>(),
										 it->second.local_date};
				if (d.contains("stamps"))
					for (const auto &x : d["stamps"])
						r.add_stamps(token, x.at("id").get<std::string>(),
							     x.at("returned").get<int64_t>() -
								     x.at("reversed").get<int64_t>());
			}
		} else if (kind == "adjust") {
			if (unacked)
				r.members[token].local_points += points;
		} else if (kind == "donate") {
			auto &m = r.members[token];
			if (m.masked.empty())
				m.masked = d.at("masked").get<std::string>();
			if (unacked)
				m.local_points += points;
			r.donations[seq] = DonationRow{token, d.at("charity").get<std::string>(), -points,
						       d.at("local_date").get<int64_t>()};
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
	// The derived tables of schema 2 are built from the journal once every
	// step's SQL has run: the rebuild reads settings as the newest schema
	// has them.
	bool rebuild = false;
	for (int64_t v = version; v < schema_version; v++) {
		LOY_TRY(db_.exec(migrations[v]));
		rebuild = rebuild || v + 1 == 2;
	}
	if (rebuild)
		LOY_TRY(rebuild_derived());
	LOY_TRY(db_.exec(fmt::format("PRAGMA user_version = {}", schema_version).c_str()));
	return tx.commit();
}

Result<std::optional<std::string>> Ledger::meta(const char *key)
{
	auto st = db_.prepare("SELECT value, mac FROM meta WHERE key = ?1");
	if (!st)
		return st.status();
	st.value().bind(1, std::string_view(key));
	auto row = st.value().step();
	if (!row)
		return row.status();
	if (!*row)
		return std::optional<std::string>();
	std::string value = st.value().text(0), mac = st.value().blob(1);
	st.value().reset();
	// Before the keys are loaded (the terminal id, to find them) the seal
	// cannot be checked; load_keys checks it once they are.
	if (keys_loaded_)
		LOY_TRY(check_seal("meta", {key, value}, mac, fmt::format("setting {}", key)));
	return std::optional<std::string>(std::move(value));
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
	assert(keys_loaded_);
	const std::string mac = seal("meta", {key, value});
	auto st = db_.prepare("INSERT INTO meta (key, value, mac) VALUES (?1, ?2, ?3) "
			      "ON CONFLICT (key) DO UPDATE SET value = excluded.value, mac = excluded.mac");
	if (!st)
		return st.status();
	return st.value().bind(1, std::string_view(key)).bind(2, value).bind_blob(3, mac.data(), mac.size()).run();
}

std::string Ledger::ledger_id() const
{
	assert(keys_loaded_);
	const crypto::Digest d = crypto::hmac_sha256(mac_key_, std::string_view("loyalty ledger id"));
	return crypto::to_hex(d.data(), 16);
}

std::string Ledger::seal(std::string_view table, std::initializer_list<std::string_view> fields) const
{
	assert(keys_loaded_);
	// Each field with its length: no two rows give the same text.
	std::string text(table);
	for (std::string_view f : fields)
		text += fmt::format("|{}:{}", f.size(), f);
	const crypto::Digest d = crypto::hmac_sha256(mac_key_, text);
	return std::string(d.begin(), d.end());
}

// Compared in constant time, as MACs are.
bool Ledger::same_seal(const std::string &mac, const std::string &want)
{
	if (mac.size() != want.size())
		return false;
	unsigned char diff = 0;
	for (size_t i = 0; i < mac.size(); i++)
		diff = static_cast<unsigned char>(diff | (mac[i] ^ want[i]));
	return diff == 0;
}

Status Ledger::check_seal(std::string_view table, std::initializer_list<std::string_view> fields,
			  const std::string &mac, std::string_view what) const
{
	if (same_seal(mac, seal(table, fields)))
		return Status::ok();
	return corrupt(fmt::format("{} does not match its seal: changed outside the program, or the keys are "
				   "another terminal's",
				   what));
}

void Ledger::use_keys(const crypto::Key &mac_key, const crypto::Key &token_key)
{
	mac_key_ = mac_key;
	token_key_ = token_key;
	keys_loaded_ = true;
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
	use_keys(*mk, *tk);
	// A ledger sealed once stays sealed: the key store remembers it, so
	// that removing the seals (or the schema version) is found, not remade.
	auto marked = keys.has(sealed_item);
	if (!marked)
		return marked.status();
	auto sealed = db_.prepare("SELECT 1 FROM meta WHERE key = 'sealed'");
	if (!sealed)
		return sealed.status();
	auto row = sealed.value().step();
	if (!row)
		return row.status();
	const bool has_seals = *row;
	sealed.value().reset();
	if (!has_seals && *marked)
		return corrupt("the ledger's seals are gone though the key store says it was sealed: its "
			       "settings, programs or the centre's snapshot were changed outside the program");
	if (!has_seals)
		LOY_TRY(seal_all());
	if (!*marked)
		LOY_TRY(keys.put_item(sealed_item, "1\n"));
	// The terminal id was read before the key: its seal is checked now.
	auto checked = meta("terminal_id");
	if (!checked)
		return checked.status();
	return Status::ok();
}

// Seals every row of a ledger from schema 2 (rows written before seals
// existed are trusted as they are, once), in one transaction.
Status Ledger::seal_all()
{
	db::Transaction tx(db_);
	LOY_TRY(tx.begin());
	auto again = db_.prepare("SELECT 1 FROM meta WHERE key = 'sealed'");
	if (!again)
		return again.status();
	auto row = again.value().step();
	if (!row)
		return row.status();
	if (*row)
		return Status::ok(); // another process sealed it meanwhile
	again.value().reset();
	struct Table {
		const char *select, *update;
		int fields;
	};
	const Table tables[] = {
		{"SELECT key, value FROM meta", "UPDATE meta SET mac = ?2 WHERE key = ?1", 2},
		{"SELECT id, version, document FROM programs",
		 "UPDATE programs SET mac = ?2 WHERE id = ?1 AND version = ?3", 3},
	};
	for (const Table &t : tables) {
		std::vector<std::vector<std::string>> rows;
		auto st = db_.prepare(t.select);
		if (!st)
			return st.status();
		auto &r = st.value();
		LOY_TRY(r.each([&]() -> Status {
			std::vector<std::string> v;
			for (int i = 0; i < t.fields; i++)
				v.push_back(r.text(i));
			rows.push_back(std::move(v));
			return Status::ok();
		}));
		for (const auto &v : rows) {
			auto up = db_.prepare(t.update);
			if (!up)
				return up.status();
			const std::string mac = t.fields == 2 ? seal("meta", {v[0], v[1]})
							      : seal("programs", {v[0], v[1], v[2]});
			up.value().bind(1, v[0]).bind_blob(2, mac.data(), mac.size());
			if (t.fields == 3)
				up.value().bind(3, v[1]);
			LOY_TRY(up.value().run());
		}
	}
	auto members = server_members();
	if (!members)
		return members.status();
	for (const auto &m : *members) {
		auto up = db_.prepare("UPDATE server_members SET mac = ?2 WHERE token = ?1");
		if (!up)
			return up.status();
		const std::string mac = seal_member(m);
		LOY_TRY(up.value().bind(1, m.token).bind_blob(2, mac.data(), mac.size()).run());
	}
	LOY_TRY(set_meta("sealed", "1"));
	return tx.commit();
}

namespace {

std::string segments_text(const std::vector<std::string> &names)
{
	std::string out;
	for (const auto &n : names)
		out += (out.empty() ? "" : "\n") + n;
	return out;
}

// A member's stamps as the snapshot row keeps them: a JSON object of
// stamp card id → count, in id order; "" for none.
std::string stamps_text(const std::map<std::string, int64_t> &stamps)
{
	if (stamps.empty())
		return {};
	nlohmann::json j = nlohmann::json::object();
	for (const auto &[id, n] : stamps)
		j[id] = n;
	return j.dump();
}

// The row's text read back; anything else is damage.
Result<std::map<std::string, int64_t>> stamps_of(const std::string &text)
{
	std::map<std::string, int64_t> out;
	if (text.empty())
		return out;
	auto j = nlohmann::json::parse(text, nullptr, false);
	if (j.is_discarded() || !j.is_object())
		return corrupt("server_members: a member's stamps are not a JSON object");
	for (const auto &[id, n] : j.items()) {
		if (!n.is_number_integer())
			return corrupt(fmt::format("server_members: the stamps of card \"{}\" are not a count", id));
		out[id] = n.get<int64_t>();
	}
	return out;
}

// A member's membership runs as the snapshot row keeps them: a JSON object
// of id → [from, until] (days since 1970-01-01); "" for none.
std::string memberships_text(const std::map<std::string, MembershipRun> &runs)
{
	if (runs.empty())
		return {};
	nlohmann::json j = nlohmann::json::object();
	for (const auto &[id, run] : runs)
		j[id] = nlohmann::json::array({run.from, run.until});
	return j.dump();
}

Result<std::map<std::string, MembershipRun>> memberships_of(const std::string &text)
{
	std::map<std::string, MembershipRun> out;
	if (text.empty())
		return out;
	auto j = nlohmann::json::parse(text, nullptr, false);
	if (j.is_discarded() || !j.is_object())
		return corrupt("server_members: a member's memberships are not a JSON object");
	for (const auto &[id, run] : j.items()) {
		if (!run.is_array() || run.size() != 2 || !run[0].is_number_integer() || !run[1].is_number_integer())
			return corrupt(fmt::format("server_members: membership \"{}\" is not [from, until]", id));
		out[id] = MembershipRun{run[0].get<int64_t>(), run[1].get<int64_t>()};
	}
	return out;
}

std::vector<std::string> segments_of(const std::string &text)
{
	std::vector<std::string> out;
	for (size_t at = 0; at < text.size();) {
		size_t end = text.find('\n', at);
		if (end == std::string::npos)
			end = text.size();
		out.push_back(text.substr(at, end - at));
		at = end + 1;
	}
	return out;
}

} // namespace

std::string Ledger::seal_member(const ServerMemberRow &m) const
{
	const std::string balance = std::to_string(m.balance), pending = std::to_string(m.pending),
			  spend = std::to_string(m.spend);
	// A row of a member in no segment seals as before schema 5, one
	// without stamps as before schema 7, one without memberships as before
	// schema 8.
	const std::string segments = segments_text(m.segments);
	if (!m.memberships.empty())
		return seal("server_members", {m.token, m.masked, balance, pending, spend, m.tier, m.blocked ? "1" : "0",
					       m.next_expiry, segments, stamps_text(m.stamps),
					       memberships_text(m.memberships)});
	if (!m.stamps.empty())
		return seal("server_members", {m.token, m.masked, balance, pending, spend, m.tier,
					       m.blocked ? "1" : "0", m.next_expiry, segments, stamps_text(m.stamps)});
	if (m.segments.empty())
		return seal("server_members",
			    {m.token, m.masked, balance, pending, spend, m.tier, m.blocked ? "1" : "0", m.next_expiry});
	return seal("server_members", {m.token, m.masked, balance, pending, spend, m.tier, m.blocked ? "1" : "0",
				       m.next_expiry, segments});
}

Result<std::vector<ServerMemberRow>> Ledger::server_members(const std::string *token)
{
	auto st = db_.prepare(token ? "SELECT token, coalesce(masked, ''), balance, pending, spend, coalesce(tier, ''), "
				      "blocked, coalesce(next_expiry, ''), mac, segments, stamps, memberships FROM server_members "
				      "WHERE token = ?1"
				    : "SELECT token, coalesce(masked, ''), balance, pending, spend, coalesce(tier, ''), "
				      "blocked, coalesce(next_expiry, ''), mac, segments, stamps, memberships FROM server_members "
				      "ORDER BY token");
	if (!st)
		return st.status();
	if (token)
		st.value().bind(1, *token);
	std::vector<ServerMemberRow> out;
	auto &r = st.value();
	LOY_TRY(r.each([&]() -> Status {
		ServerMemberRow m;
		m.token = r.text(0);
		m.masked = r.text(1);
		m.balance = r.int64(2);
		m.pending = r.int64(3);
		m.spend = r.int64(4);
		m.tier = r.text(5);
		m.blocked = r.int64(6) != 0;
		m.next_expiry = r.text(7);
		m.mac = r.blob(8);
		m.segments = segments_of(r.text(9));
		auto stamps = stamps_of(r.text(10));
		if (!stamps)
			return stamps.status();
		m.stamps = std::move(stamps).value();
		auto runs = memberships_of(r.text(11));
		if (!runs)
			return runs.status();
		m.memberships = std::move(runs).value();
		out.push_back(std::move(m));
		return Status::ok();
	}));
	return out;
}

Status Ledger::put_server_member(const ServerMemberRow &m)
{
	auto up = db_.prepare(
		"INSERT INTO server_members (token, masked, balance, pending, spend, tier, blocked, "
		"next_expiry, mac, segments, stamps, memberships) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
		"?11, ?12) "
		"ON CONFLICT (token) DO "
		"UPDATE SET masked = excluded.masked, balance = excluded.balance, pending = excluded.pending, "
		"spend = excluded.spend, tier = excluded.tier, blocked = excluded.blocked, "
		"next_expiry = excluded.next_expiry, mac = excluded.mac, segments = excluded.segments, "
		"stamps = excluded.stamps, memberships = excluded.memberships");
	if (!up)
		return up.status();
	auto &s = up.value();
	const std::string mac = seal_member(m);
	s.bind(1, m.token).bind(2, m.masked).bind(3, m.balance).bind(4, m.pending);
	s.bind(5, m.spend).bind(6, m.tier).bind(7, int64_t{m.blocked});
	if (m.next_expiry.empty())
		s.bind_null(8);
	else
		s.bind(8, m.next_expiry);
	s.bind_blob(9, mac.data(), mac.size());
	s.bind(10, segments_text(m.segments));
	s.bind(11, stamps_text(m.stamps));
	s.bind(12, memberships_text(m.memberships));
	return s.run();
}

// Every sealed row against its seal; each broken one named.
Status Ledger::check_seals(const std::function<void(std::string)> &fail)
{
	auto meta_rows = db_.prepare("SELECT key, value, mac FROM meta ORDER BY key");
	if (!meta_rows)
		return meta_rows.status();
	auto &m = meta_rows.value();
	LOY_TRY(m.each([&]() -> Status {
		const std::string key = m.text(0);
		if (Status s = check_seal("meta", {key, m.text(1)}, m.blob(2), fmt::format("setting {}", key)); !s)
			fail(s.message());
		return Status::ok();
	}));
	auto programs = db_.prepare("SELECT id, version, document, mac FROM programs ORDER BY id, version");
	if (!programs)
		return programs.status();
	auto &p = programs.value();
	LOY_TRY(p.each([&]() -> Status {
		const std::string id = p.text(0), version = p.text(1);
		if (Status s = check_seal("programs", {id, version, p.text(2)}, p.blob(3),
					  fmt::format("program {} v{}", id, version));
		    !s)
			fail(s.message());
		return Status::ok();
	}));
	auto members = server_members();
	if (!members) {
		// A snapshot row whose stamps or memberships are not their format
		// is damage to report, not a failure to read the ledger.
		if (members.status().message().rfind("ledger: server_members:", 0) == 0) {
			fail(members.status().message());
			return Status::ok();
		}
		return members.status();
	}
	for (const auto &row : *members)
		if (Status s = check_member_seal(row); !s)
			fail(s.message());
	return Status::ok();
}

Status Ledger::check_member_seal(const ServerMemberRow &m) const
{
	if (same_seal(m.mac, seal_member(m)))
		return Status::ok();
	return corrupt(fmt::format("the centre's snapshot of member {} does not match its seal: changed "
				   "outside the program, or the keys are another terminal's",
				   m.masked.empty() ? std::string("(no card shown)") : m.masked));
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
	auto tail = journal_tail();
	if (!tail)
		return tail.status();
	e.seq = tail->next_seq;
	e.body = entry_body(e, terminal_id_, tail->prev);
	e.hash = crypto::sha256(e.body);
	return insert_entry(e);
}

Result<Ledger::Tail> Ledger::journal_tail()
{
	auto st = db_.prepare("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1");
	if (!st)
		return st.status();
	auto row = st.value().step();
	if (!row)
		return row.status();
	Tail t;
	if (*row) {
		t.next_seq = st.value().int64(0) + 1;
		std::string h = st.value().blob(1);
		if (h.size() != t.prev.size())
			return corrupt(fmt::format("entry {} has a malformed hash", t.next_seq - 1));
		std::copy(h.begin(), h.end(), t.prev.begin());
	}
	return t;
}

Status Ledger::insert_entry(Entry &e)
{
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

Status Ledger::adopt(int64_t seq, const std::string &hash_hex, const std::string &body)
{
	assert(keys_loaded_);
	auto tail = journal_tail();
	if (!tail)
		return tail.status();
	const int64_t next = tail->next_seq;
	const crypto::Digest &prev = tail->prev;
	auto refuse = [&](const std::string &why) {
		return Status(Code::network, fmt::format("sync: the centre's entry {} of this terminal {}", seq, why));
	};
	if (seq != next)
		return refuse(fmt::format("does not follow entry {}", next - 1));
	const crypto::Digest hash = crypto::sha256(body);
	if (crypto::to_hex(hash) != hash_hex)
		return refuse("does not match its hash");
	// The body must be exactly what this terminal would have written for
	// the entry: then verify's check of columns against body holds, and the
	// centre cannot slip in anything that is not one of our entries.
	auto doc = nlohmann::ordered_json::parse(body, nullptr, false);
	if (doc.is_discarded() || !doc.is_object())
		return refuse("is not an entry");
	Entry e;
	try {
		if (doc.at("v") != 1 || doc.at("terminal") != terminal_id_ || doc.at("seq") != seq)
			return refuse("is not an entry of this terminal");
		e.seq = seq;
		e.kind = doc.at("kind").get<std::string>();
		e.device_time = doc.at("device_time").get<std::string>();
		e.token = doc.at("token").get<std::string>();
		e.receipt_id = doc.at("receipt").get<std::string>();
		e.program_id = doc.at("program").get<std::string>();
		e.program_version = doc.at("program_version").get<int64_t>();
		e.points = doc.at("points").get<int64_t>();
		e.data = doc.at("data").dump();
		if (!doc.at("data").is_object() || entry_body(e, terminal_id_, prev) != body)
			return refuse("is not in this terminal's form, or does not continue its chain");
	} catch (const nlohmann::json::exception &) {
		return refuse("lacks a field of an entry or has one of the wrong type");
	}
	e.body = body;
	e.hash = hash;
	return insert_entry(e);
}

Status Ledger::rebuild_derived()
{
	auto acked = acked_through();
	if (!acked)
		return acked.status();
	auto r = replay_journal(db_, *acked);
	if (!r)
		return r.status();
	LOY_TRY(db_.exec("DELETE FROM members; DELETE FROM receipts; DELETE FROM donations; "
			 "DELETE FROM member_stamps; DELETE FROM membership_changes;"));
	auto mc = db_.prepare("INSERT INTO membership_changes (seq, token, membership, days, local_date) "
			      "VALUES (?1, ?2, ?3, ?4, ?5)");
	if (!mc)
		return mc.status();
	for (const auto &[key, x] : r->memberships) {
		mc.value().reset();
		LOY_TRY(mc.value().bind(1, key.first).bind(2, x.token).bind(3, key.second).bind(4, x.days)
				.bind(5, x.local_date).run());
	}
	auto si = db_.prepare("INSERT INTO member_stamps (token, card, local) VALUES (?1, ?2, ?3)");
	if (!si)
		return si.status();
	for (const auto &[key, n] : r->stamps) {
		si.value().reset();
		LOY_TRY(si.value().bind(1, key.first).bind(2, key.second).bind(3, n).run());
	}
	auto di = db_.prepare("INSERT INTO donations (seq, token, charity, points, local_date) "
			      "VALUES (?1, ?2, ?3, ?4, ?5)");
	if (!di)
		return di.status();
	for (const auto &[seq, x] : r->donations) {
		di.value().reset();
		LOY_TRY(di.value().bind(1, seq).bind(2, x.token).bind(3, x.charity).bind(4, x.points)
				.bind(5, x.local_date).run());
	}
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
			      "redeemed, reversed, returned, at_utc, at_offset, stamp_card) VALUES "
			      "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)");
	if (!ri)
		return ri.status();
	for (const auto &[id, x] : r->receipts) {
		auto &s = ri.value();
		s.reset();
		s.bind(1, id).bind(2, x.seq).bind(3, x.last_seq).bind(4, x.token).bind(5, x.program_id);
		s.bind(6, x.program_version).bind(7, x.local_date).bind(8, x.available_at);
		s.bind(9, x.expires_at).bind(10, x.request).bind(11, x.earned).bind(12, x.redeemed);
		s.bind(13, x.reversed).bind(14, x.returned).bind(15, x.at_utc).bind(16, x.at_offset);
		if (x.stamp_card.empty())
			s.bind_null(17);
		else
			s.bind(17, x.stamp_card);
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
	LOY_TRY(st.value().each([&]() -> Status {
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
			return Status::ok();
		}
		std::copy(hash.begin(), hash.end(), h.begin());
		std::copy(mac.begin(), mac.end(), m.begin());
		// The body is rebuilt from the columns and the previous hash; its data
		// part is taken from the body itself, in its own key order.
		auto doc = nlohmann::ordered_json::parse(body, nullptr, false);
		if (doc.is_discarded() || !doc.is_object() || !doc.contains("data")) {
			fail(e.seq, fmt::format("entry {}: body is not an entry", e.seq));
			prev = h;
			return Status::ok();
		}
		std::string rebuilt;
		try {
			e.data = doc["data"].dump();
			rebuilt = entry_body(e, terminal_id_, prev);
		} catch (const nlohmann::json::exception &) {
			// A column holding bytes that are not UTF-8 text.
			fail(e.seq, fmt::format("entry {}: a column holds bytes that are not text", e.seq));
			prev = h;
			return Status::ok();
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
		return Status::ok();
	}));

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
	// The sealed rows: settings, program versions, the centre's snapshot.
	// The replay below reads settings, so a broken seal is the verdict.
	LOY_TRY(check_seals([&](std::string problem) { fail(0, std::move(problem)); }));
	if (!v.ok)
		return v;
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
			      "reversed, returned, at_utc, at_offset, coalesce(stamp_card, '') FROM receipts");
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
		x.stamp_card = s.text(16);
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
	auto ds = db_.prepare("SELECT seq, token, charity, points, local_date FROM donations ORDER BY seq");
	if (!ds)
		return ds.status();
	size_t donations = 0;
	Status ds_read = ds.value().each([&]() -> Status {
		donations++;
		const auto &s = ds.value();
		DonationRow x{s.text(1), s.text(2), s.int64(3), s.int64(4)};
		auto it = r->donations.find(s.int64(0));
		if (it == r->donations.end() || !(it->second == x))
			fail(s.int64(0), fmt::format("donations table differs from the journal at entry {}", s.int64(0)));
		return Status::ok();
	});
	LOY_TRY(ds_read);
	if (donations != r->donations.size())
		fail(v.entries, "donations table lacks a donation the journal has");
	auto ss = db_.prepare("SELECT token, card, local FROM member_stamps WHERE local != 0");
	if (!ss)
		return ss.status();
	size_t stamp_rows = 0;
	Status ss_read = ss.value().each([&]() -> Status {
		stamp_rows++;
		const auto &s = ss.value();
		auto it = r->stamps.find({s.text(0), s.text(1)});
		if (it == r->stamps.end() || it->second != s.int64(2))
			fail(v.entries, fmt::format("member_stamps table differs from the journal for member {}…, "
						    "stamp card {}",
						    s.text(0).substr(0, 12), s.text(1)));
		return Status::ok();
	});
	LOY_TRY(ss_read);
	if (stamp_rows != r->stamps.size())
		fail(v.entries, "member_stamps table lacks stamps the journal has");
	auto cs = db_.prepare("SELECT seq, token, membership, days, local_date FROM membership_changes");
	if (!cs)
		return cs.status();
	size_t change_rows = 0;
	Status cs_read = cs.value().each([&]() -> Status {
		change_rows++;
		const auto &s = cs.value();
		auto it = r->memberships.find({s.int64(0), s.text(2)});
		if (it == r->memberships.end() ||
		    !(it->second == Replay::MembershipChange{s.text(1), s.int64(3), s.int64(4)}))
			fail(s.int64(0), fmt::format("membership_changes table differs from the journal at entry {}",
						     s.int64(0)));
		return Status::ok();
	});
	LOY_TRY(cs_read);
	if (change_rows != r->memberships.size())
		fail(v.entries, "membership_changes table lacks a membership the journal bought or refunded");
	return v;
}

} // namespace loy
