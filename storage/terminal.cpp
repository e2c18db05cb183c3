// Terminal operations: one transaction each, engine decisions recorded as
// journal entries with their derived rows.
#include "storage/terminal.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/card.hpp"
#include "core/limits.hpp"
#include "core/receipt_json.hpp"
#include "base/timeutil.hpp"
#include "storage/entry_data.hpp"
#include "storage/tzfile.hpp"

namespace loy {

using OJson = nlohmann::ordered_json;

namespace {

constexpr int64_t day_s = 86400;
constexpr size_t id_length_max = 64;      // terminal and store ids
constexpr size_t pem_bytes_max = 64 << 10; // a certificate chain or key file

Status bad(Code code, std::string msg) { return Status(code, std::move(msg)); }

bool valid_id(const std::string &s)
{
	if (s.empty() || s.size() > id_length_max)
		return false;
	for (char c : s)
		if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
			return false;
	return true;
}

std::string rfc3339_utc(int64_t utc)
{
	Timestamp t;
	t.utc_s = utc;
	return format_timestamp(t);
}

// mkdir -p, each new directory private.
Status make_dir(const std::string &dir)
{
	for (size_t pos = dir.find('/', 1); pos != std::string::npos; pos = dir.find('/', pos + 1)) {
		std::string parent = dir.substr(0, pos);
		if (::mkdir(parent.c_str(), 0700) != 0 && errno != EEXIST)
			return bad(Code::storage, fmt::format("cannot create {}: {}", parent, std::strerror(errno)));
	}
	if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) {
		struct stat st;
		if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
			return bad(Code::storage, fmt::format("data dir {} is not a directory", dir));
		return Status::ok();
	}
	return bad(Code::storage, fmt::format("cannot create data dir {}: {}", dir, std::strerror(errno)));
}

Result<std::string> read_small_file(const std::string &path, size_t size_max)
{
	std::ifstream in(path, std::ios::binary);
	if (!in)
		return bad(Code::bad_argument, fmt::format("cannot read {}: {}", path, std::strerror(errno)));
	std::ostringstream ss;
	ss << in.rdbuf();
	std::string text = ss.str();
	if (text.size() > size_max)
		return bad(Code::bad_argument, fmt::format("{} is larger than {} bytes", path, size_max));
	return text;
}

// The identity of a checkout request: a retry must name the same basket, the
// same card and the same redemption to be a replay.
std::string request_digest(const Basket &b, const std::string &token, const Redemption &r)
{
	std::string text = basket_canonical_json(b) + "\n" + token + "\n";
	if (r.kind == RedeemKind::points)
		text += fmt::format("points:{}", r.points);
	else if (r.kind == RedeemKind::reward)
		text += "reward:" + r.reward;
	else if (r.kind == RedeemKind::stamp_card)
		text += "stamp_card:" + r.reward;
	return crypto::to_hex(crypto::sha256(text));
}

// A checkout's answer as its entry keeps it ("result" in the entry's data),
// so that a retried request is answered the same. A storage format: the
// keys are those cli.md had when the format was set, and they stay so
// whatever the output becomes.
OJson checkout_entry_result(const CheckoutDone &d)
{
	OJson breakdown = OJson::array();
	for (const auto &p : d.breakdown)
		breakdown.push_back(OJson{{"rule", p.rule}, {"points", p.points}});
	OJson j;
	j["receipt_id"] = d.receipt_id;
	j["card"] = d.card;
	j["tier"] = d.tier;
	j["earned"] = d.earned;
	j["redeemed"] = d.redeemed;
	j["discount"] = d.discount;
	if (d.member_discount != 0)
		j["member_discount"] = d.member_discount; // since specification 2
	j["breakdown"] = std::move(breakdown);
	j["balance"] = d.balance ? OJson(*d.balance) : OJson(nullptr);
	j["replayed"] = d.replayed;
	j["pending"] = d.pending;
	j["eligible_spend"] = d.eligible_spend;
	j["currency"] = d.currency;
	j["available_on"] = d.available_on;
	j["expires_on"] = d.expires_on ? OJson(*d.expires_on) : OJson(nullptr);
	if (d.blocked)
		j["blocked"] = true;
	if (d.membership)
		j["membership"] = OJson{{"id", d.membership->id}, {"until", d.membership->until}};
	if (!d.stamps.empty()) { // since specification 2
		OJson stamps = OJson::array();
		for (const auto &c : d.stamps)
			stamps.push_back(OJson{{"id", c.id},
					       {"earned", c.earned},
					       {"used", c.used},
					       {"balance", c.balance ? OJson(*c.balance) : OJson(nullptr)}});
		j["stamps"] = std::move(stamps);
	}
	return j;
}

// The answer recorded by checkout_entry_result(), read back.
Result<CheckoutDone> checkout_from_entry(const std::string &entry_data, const std::string &receipt_id)
{
	try {
		const OJson j = OJson::parse(entry_data).at("result");
		CheckoutDone d;
		d.receipt_id = j.at("receipt_id").get<std::string>();
		d.card = j.at("card").get<std::string>();
		d.tier = j.at("tier").get<std::string>();
		d.earned = j.at("earned").get<int64_t>();
		d.redeemed = j.at("redeemed").get<int64_t>();
		d.discount = j.at("discount").get<int64_t>();
		d.member_discount = j.value("member_discount", int64_t{0});
		for (const auto &p : j.at("breakdown"))
			d.breakdown.push_back(
				Part{p.at("rule").get<std::string>(), p.at("points").get<int64_t>()});
		if (!j.at("balance").is_null())
			d.balance = j.at("balance").get<int64_t>();
		d.replayed = j.at("replayed").get<bool>();
		d.pending = j.at("pending").get<int64_t>();
		d.eligible_spend = j.at("eligible_spend").get<int64_t>();
		d.currency = j.at("currency").get<std::string>();
		d.available_on = j.at("available_on").get<std::string>();
		if (!j.at("expires_on").is_null())
			d.expires_on = j.at("expires_on").get<std::string>();
		d.blocked = j.value("blocked", false);
		if (j.contains("membership"))
			d.membership = MembershipShown{j["membership"].at("id").get<std::string>(),
						       j["membership"].at("until").get<std::string>()};
		if (j.contains("stamps"))
			for (const auto &c : j["stamps"]) {
				StampChange x{c.at("id").get<std::string>(), c.at("earned").get<int64_t>(),
					      c.at("used").get<int64_t>(), std::nullopt};
				if (!c.at("balance").is_null())
					x.balance = c["balance"].get<int64_t>();
				d.stamps.push_back(std::move(x));
			}
		return d;
	} catch (const OJson::exception &e) {
		return bad(Code::storage,
			   fmt::format("ledger: the recorded result of receipt {}: {}", receipt_id, e.what()));
	}
}

// What the terminal knows of a member, gathered from the derived tables.
struct MemberView {
	std::string masked;
	bool enrolled = false;
	bool synced = false;       // in the last server snapshot
	bool blocked = false;
	int64_t server_balance = 0;
	int64_t server_pending = 0;
	int64_t server_spend = 0;
	std::string server_next_expiry;
	std::vector<std::string> segments; // the snapshot's; none for a card not in it
	int64_t local_points = 0;  // unacknowledged changes
	int64_t local_spend = 0;
	// Per stamp card: the snapshot's count, and what unacknowledged entries
	// moved.
	std::map<std::string, int64_t> server_stamps, local_stamps;
	// Memberships: the snapshot's runs, and the days unacknowledged entries
	// bought (> 0, on their day) or took off (< 0), in entry order.
	std::map<std::string, MembershipRun> server_memberships;
	struct MembershipChange {
		std::string id;
		int64_t days;
		Days day;
	};
	std::vector<MembershipChange> local_memberships;
	bool known() const { return enrolled || synced; }
	int64_t qualifying() const { return server_spend + local_spend; }
	int64_t stamps_on(const std::string &card) const
	{
		auto s = server_stamps.find(card), l = local_stamps.find(card);
		return (s == server_stamps.end() ? 0 : s->second) + (l == local_stamps.end() ? 0 : l->second);
	}
	// The member's runs: the snapshot's, with the local changes applied.
	Result<std::map<std::string, MembershipRun>> memberships() const
	{
		std::map<std::string, MembershipRun> runs = server_memberships;
		for (const auto &c : local_memberships) {
			auto it = runs.find(c.id);
			if (c.days < 0) {
				if (it != runs.end())
					it->second.until += c.days;
				continue;
			}
			auto run = membership_bought(it == runs.end() ? std::nullopt : std::optional<MembershipRun>(it->second),
						     c.day, c.days);
			if (!run)
				return Status(Code::storage, "ledger: " + run.status().message());
			runs[c.id] = *run;
		}
		return runs;
	}
	// Stamps available per card: the snapshot's plus the local changes.
	std::map<std::string, int64_t> stamps() const
	{
		std::map<std::string, int64_t> out;
		for (const auto &[card, n] : server_stamps)
			out[card] += n;
		for (const auto &[card, n] : local_stamps)
			out[card] += n;
		return out;
	}
};

Result<MemberView> read_member(Ledger &ledger, const std::string &token)
{
	db::Db &db = ledger.db();
	MemberView m;
	auto st = db.prepare("SELECT masked, enrolled, local_points, local_spend FROM members WHERE token = ?1");
	if (!st)
		return st.status();
	st.value().bind(1, token);
	auto row = st.value().step();
	if (!row)
		return row.status();
	if (*row) {
		m.masked = st.value().text(0);
		m.enrolled = st.value().int64(1) != 0;
		m.local_points = st.value().int64(2);
		m.local_spend = st.value().int64(3);
	}
	auto bought = db.prepare("SELECT membership, days, local_date FROM membership_changes WHERE token = ?1 "
				 "ORDER BY seq, membership");
	if (!bought)
		return bought.status();
	bought.value().bind(1, token);
	LOY_TRY(bought.value().each([&]() -> Status {
		const auto &b = bought.value();
		m.local_memberships.push_back(MemberView::MembershipChange{b.text(0), b.int64(1), b.int64(2)});
		return Status::ok();
	}));
	auto local = db.prepare("SELECT card, local FROM member_stamps WHERE token = ?1");
	if (!local)
		return local.status();
	local.value().bind(1, token);
	LOY_TRY(local.value().each([&]() -> Status {
		m.local_stamps[local.value().text(0)] = local.value().int64(1);
		return Status::ok();
	}));
	// The centre's snapshot decides what the member may spend: its seal is
	// checked before it is used.
	auto rows = ledger.server_members(&token);
	if (!rows)
		return rows.status();
	if (!rows->empty()) {
		const ServerMemberRow &r = rows->front();
		LOY_TRY(ledger.check_member_seal(r));
		m.synced = true;
		m.server_balance = r.balance;
		m.server_pending = r.pending;
		m.server_spend = r.spend;
		m.blocked = r.blocked;
		m.server_next_expiry = r.next_expiry;
		m.segments = r.segments;
		m.server_stamps = r.stamps;
		m.server_memberships = r.memberships;
	}
	return m;
}

// The membership shown (latest_run), its end as a date.
std::optional<MembershipShown> shown(const std::map<std::string, MembershipRun> &runs)
{
	const auto *last = latest_run(runs);
	if (!last)
		return std::nullopt;
	return MembershipShown{last->first, format_date(last->second.until)};
}

// The days of each membership, summed in first-seen order, as an entry's
// `memberships` ([{"id", "days"}]).
OJson membership_days_json(const std::vector<MembershipDays> &v)
{
	OJson out = OJson::array();
	for (const auto &x : v) {
		auto it = std::find_if(out.begin(), out.end(), [&](const OJson &e) { return e["id"] == x.id; });
		if (it == out.end())
			out.push_back(OJson{{"id", x.id}, {"days", x.days}});
		else
			(*it)["days"] = (*it)["days"].get<int64_t>() + x.days;
	}
	return out;
}

Status add_membership_changes(Ledger &l, int64_t seq, const std::string &token, const OJson &days, Days day,
			      int sign)
{
	for (const auto &x : days) {
		auto ins = l.db().prepare("INSERT INTO membership_changes (seq, token, membership, days, local_date) "
					  "VALUES (?1, ?2, ?3, ?4, ?5)");
		if (!ins)
			return ins.status();
		LOY_TRY(ins.value().bind(1, seq).bind(2, token).bind(3, x["id"].get<std::string>())
				.bind(4, sign * x["days"].get<int64_t>()).bind(5, day).run());
	}
	return Status::ok();
}

// Whether the member took a stamp card's reward on this terminal on `day`.
Result<bool> stamp_reward_on(Ledger &l, const std::string &token, Days day)
{
	auto st = l.db().prepare("SELECT 1 FROM receipts WHERE token = ?1 AND local_date = ?2 AND "
				 "stamp_card IS NOT NULL LIMIT 1");
	if (!st)
		return st.status();
	st.value().bind(1, token).bind(2, day);
	auto row = st.value().step();
	if (!row)
		return row.status();
	return *row;
}

// Adds `changes` (card → stamps) to the member's unacknowledged stamps,
// each kept within what a member may hold.
Status add_local_stamps(Ledger &l, const MemberView &m, const std::string &token,
			const std::map<std::string, int64_t> &changes)
{
	for (const auto &[card, n] : changes) {
		if (n == 0)
			continue;
		LOY_TRY(check_member_total(m.stamps_on(card), n, "stamps"));
		auto up = l.db().prepare("INSERT INTO member_stamps (token, card, local) VALUES (?1, ?2, ?3) "
					 "ON CONFLICT (token, card) DO UPDATE SET local = local + excluded.local");
		if (!up)
			return up.status();
		LOY_TRY(up.value().bind(1, token).bind(2, card).bind(3, n).run());
	}
	return Status::ok();
}

struct Unacked {
	int64_t pending = 0;       // points of unacknowledged receipts not yet available
	int64_t redeemed_day = 0;  // net points redeemed on `day`
	std::optional<int64_t> next_expiry;
};

// Each sum reads one index range of the member's receipts: a checkout costs
// the same with a thousand receipts in the ledger or a million.
Result<Unacked> read_receipt_sums(Ledger &l, const std::string &token, int64_t now, Days day,
				  bool with_expiry)
{
	auto acked = l.acked_through();
	if (!acked)
		return acked.status();
	Unacked u;
	auto one = [&](const char *sql, auto bind) -> Result<std::optional<int64_t>> {
		auto st = l.db().prepare(sql);
		if (!st)
			return st.status();
		bind(st.value());
		auto row = st.value().step();
		if (!row)
			return row.status();
		if (!*row || st.value().is_null(0))
			return std::optional<int64_t>();
		return std::optional<int64_t>(st.value().int64(0));
	};
	auto pending = one("SELECT sum(earned - reversed) FROM receipts WHERE token = ?1 AND "
			   "available_at > ?2 AND available_at > at_utc AND seq > ?3",
			   [&](db::Stmt &s) { s.bind(1, token).bind(2, now).bind(3, *acked); });
	if (!pending)
		return pending.status();
	u.pending = pending->value_or(0);
	auto day_sum = one("SELECT sum(redeemed - returned) FROM receipts WHERE token = ?1 AND "
			   "local_date = ?2",
			   [&](db::Stmt &s) { s.bind(1, token).bind(2, day); });
	if (!day_sum)
		return day_sum.status();
	u.redeemed_day = day_sum->value_or(0);
	auto given = one("SELECT sum(points) FROM donations WHERE token = ?1 AND local_date = ?2",
			 [&](db::Stmt &s) { s.bind(1, token).bind(2, day); });
	if (!given)
		return given.status();
	u.redeemed_day += given->value_or(0);
	if (with_expiry) {
		auto exp = one("SELECT min(expires_at) FROM receipts WHERE token = ?1 AND "
			       "expires_at > ?2 AND earned > reversed",
			       [&](db::Stmt &s) { s.bind(1, token).bind(2, now); });
		if (!exp)
			return exp.status();
		u.next_expiry = *exp;
	}
	return u;
}

// "now" for a member's balance: the device clock, or the latest receipt's
// time when that is later (a clock set back must not make recorded sales
// look as if they were in the future), with the offset its day is read in.
Result<Timestamp> effective_now(Ledger &l, const std::string &tz, int64_t clock)
{
	Timestamp now;
	now.utc_s = clock;
	auto st = l.db().prepare("SELECT at_utc, at_offset FROM receipts ORDER BY at_utc DESC LIMIT 1");
	if (!st)
		return st.status();
	auto row = st.value().step();
	if (!row)
		return row.status();
	if (*row) {
		now.offset_s = static_cast<int32_t>(st.value().int64(1));
		if (st.value().int64(0) > clock)
			now.utc_s = st.value().int64(0);
	}
	if (!tz.empty())
		if (auto off = zone_offset(tz, now.utc_s))
			now.offset_s = *off;
	return now;
}

// A terminal reads one zone; the rest is room for tools and tests that ask
// for a few, and the bound keeps a caller naming many from growing memory.
constexpr size_t zone_cache_max = 16;

struct CachedZone {
	std::string name;
	std::shared_ptr<const Zone> zone;
};

// Zones read once per process (a tzdata update is seen after a restart).
// Only this cache is shared, under its own lock: no C library state is.
std::shared_ptr<const Zone> cached_zone(const std::string &name)
{
	static std::mutex mutex;
	static std::vector<CachedZone> cache; // oldest first
	{
		std::lock_guard<std::mutex> lock(mutex);
		for (const auto &c : cache)
			if (c.name == name)
				return c.zone;
	}
	// Read outside the lock: another thread's zone is not kept waiting on
	// this file. Two threads may read the same one; the first kept wins.
	auto loaded = load_zone(name);
	if (!loaded)
		return nullptr;
	auto zone = std::make_shared<const Zone>(std::move(loaded).value());
	std::lock_guard<std::mutex> lock(mutex);
	for (const auto &c : cache)
		if (c.name == name)
			return c.zone;
	if (cache.size() == zone_cache_max)
		cache.erase(cache.begin());
	cache.push_back({name, zone});
	return zone;
}

} // namespace

std::optional<int32_t> zone_offset(const std::string &tz, int64_t utc)
{
	if (tz.empty())
		return std::nullopt;
	if (tz == "UTC" || tz == "Z")
		return 0;
	if (tz[0] == '+' || tz[0] == '-') {
		auto t = parse_timestamp("2000-01-01T00:00:00" + tz);
		if (!t)
			return std::nullopt;
		return t->offset_s;
	}
	auto zone = cached_zone(tz);
	if (!zone)
		return std::nullopt;
	return zone->offset_at(utc);
}

Status Terminal::init(const std::string &dir, const TerminalSetup &s, int64_t now,
		      const loy_hal_keystore *keystore)
{
	if (!valid_id(s.terminal_id))
		return bad(Code::bad_argument, fmt::format("--terminal-id \"{}\": use 1 to {} letters, digits, "
							   "'-', '_' or '.'",
							   s.terminal_id, id_length_max));
	if (!valid_id(s.store))
		return bad(Code::bad_argument, fmt::format("--store \"{}\": use 1 to {} letters, digits, '-', "
							   "'_' or '.'",
							   s.store, id_length_max));
	if (!s.tz.empty() && !zone_offset(s.tz, now))
		return bad(Code::bad_argument, fmt::format("--tz \"{}\" is not a known time zone "
							   "(Europe/Budapest, UTC, +01:00)",
							   s.tz));
	bool joining = !s.server.empty() || !s.ca.empty() || !s.cert.empty() || !s.key.empty();
	if (joining && (s.server.empty() || s.ca.empty() || s.cert.empty() || s.key.empty()))
		return bad(Code::bad_argument, "joining a server needs --server, --ca, --cert and --key together");
	if (joining && s.server.rfind("https://", 0) != 0)
		return bad(Code::bad_argument, fmt::format("--server \"{}\" must be https://HOST:PORT", s.server));

	LOY_TRY(make_dir(dir));
	auto keys = KeyStore::open(keystore, dir);
	if (!keys)
		return keys.status();
	Ledger l;
	LOY_TRY(l.open(dir, true));
	auto tid = l.meta("terminal_id");
	if (!tid)
		return tid.status();
	if (*tid) {
		auto store = l.meta("store");
		if (!store)
			return store.status();
		if (**tid == s.terminal_id && store->value_or("") == s.store)
			return Status::ok();
		return bad(Code::bad_argument, fmt::format("data dir {} already belongs to terminal {} of "
							   "store {}",
							   dir, **tid, store->value_or("?")));
	}

	// Read every input before writing anything.
	crypto::Key token_key;
	if (!s.token_key.empty()) {
		auto k = crypto::read_key_file(s.token_key);
		if (!k)
			return bad(Code::bad_argument, "--token-key: " + k.status().message());
		token_key = *k;
	} else {
		auto k = crypto::random_key();
		if (!k)
			return k.status();
		token_key = *k;
	}
	auto mac_key = crypto::random_key();
	if (!mac_key)
		return mac_key.status();
	std::string pem[3];
	const std::string *paths[3] = {&s.ca, &s.cert, &s.key};
	const char *names[3] = {tls_ca_item, tls_cert_item, tls_key_item};
	if (joining) {
		for (int i = 0; i < 3; i++) {
			auto text = read_small_file(*paths[i], pem_bytes_max);
			if (!text)
				return text.status();
			if (text->find("-----BEGIN ") == std::string::npos)
				return bad(Code::bad_argument, fmt::format("{} is not a PEM file", *paths[i]));
			pem[i] = *text;
		}
		if (s.check_identity)
			LOY_TRY(s.check_identity(pem[0], pem[1], pem[2]));
	}

	// Keys and certificates first, the settings that make the dir a terminal
	// last: a crash in between leaves a dir that init can run on again.
	const KeyStore &k = **keys;
	LOY_TRY(k.put_key(ledger_key_item, *mac_key));
	LOY_TRY(k.put_key(token_key_item, token_key));
	// A new ledger has nothing acknowledged: an anchor left in a key store
	// that outlived an earlier data dir is not this ledger's.
	LOY_TRY(k.put_item(ledger_anchor_item, std::string("0 ") + std::string(64, '0') + "\n"));
	if (joining)
		for (int i = 0; i < 3; i++)
			LOY_TRY(k.put_item(names[i], pem[i]));
	l.use_keys(*mac_key, token_key);
	db::Transaction tx(l.db());
	LOY_TRY(tx.begin());
	LOY_TRY(l.set_meta("sealed", "1"));
	LOY_TRY(l.set_meta("store", s.store));
	LOY_TRY(l.set_meta("tz", s.tz));
	LOY_TRY(l.set_meta("server", s.server));
	LOY_TRY(l.set_meta("created", rfc3339_utc(now)));
	LOY_TRY(l.set_meta("acked_through", "0"));
	LOY_TRY(l.set_meta("terminal_id", s.terminal_id));
	return tx.commit();
}

Result<std::unique_ptr<Terminal>> Terminal::open(const std::string &dir, const loy_hal_keystore *keystore)
{
	struct stat st;
	if (::stat((dir + "/ledger.db").c_str(), &st) != 0)
		return bad(Code::bad_argument,
			   fmt::format("data dir {} holds no terminal: run init first", dir));
	std::unique_ptr<Terminal> t(new Terminal());
	auto keys = KeyStore::open(keystore, dir);
	if (!keys)
		return keys.status();
	t->keys_ = std::move(keys).value();
	LOY_TRY(t->ledger_.open(dir, false));
	LOY_TRY(t->ledger_.load_keys(*t->keys_));
	auto get = [&](const char *key, std::string &to) -> Status {
		auto v = t->ledger_.meta(key);
		if (!v)
			return v.status();
		to = v->value_or("");
		return Status::ok();
	};
	LOY_TRY(get("terminal_id", t->terminal_id_));
	LOY_TRY(get("store", t->store_));
	LOY_TRY(get("tz", t->tz_));
	LOY_TRY(t->load_program());
	return t;
}

Status Terminal::load_program()
{
	// Id and version in one statement, so one snapshot: a sync installing
	// another program between two reads would pair one's id with the
	// other's version.
	auto st = ledger_.db().prepare("SELECT (SELECT value FROM meta WHERE key = 'program_id'), "
				       "(SELECT mac FROM meta WHERE key = 'program_id'), "
				       "(SELECT value FROM meta WHERE key = 'program_version'), "
				       "(SELECT mac FROM meta WHERE key = 'program_version')");
	if (!st)
		return st.status();
	auto row = st.value().step();
	if (!row)
		return row.status();
	if (!*row || st.value().is_null(0))
		return Status::ok();
	const std::string id = st.value().text(0), id_mac = st.value().blob(1);
	const std::string version = st.value().text(2), version_mac = st.value().blob(3);
	st.value().reset();
	LOY_TRY(ledger_.check_seal("meta", {"program_id", id}, id_mac, "setting program_id"));
	LOY_TRY(ledger_.check_seal("meta", {"program_version", version}, version_mac, "setting program_version"));
	int64_t ver = 0;
	auto [end, ec] = std::from_chars(version.data(), version.data() + version.size(), ver);
	if (version.empty() || ec != std::errc() || end != version.data() + version.size() || ver < 1)
		return Status(Code::storage, fmt::format("ledger: program_version \"{}\" is not a number", version));
	if (program_ && program_->id == id && program_->version == ver)
		return Status::ok();
	auto p = program_version(id, ver);
	if (!p)
		return p.status();
	// The one in force until now stays at hand for refunds of its receipts.
	if (program_)
		versions_.push_back(std::move(program_));
	program_ = std::make_unique<Program>(**p);
	return Status::ok();
}

Result<const Program *> Terminal::program_version(const std::string &id, int64_t version)
{
	if (program_ && program_->id == id && program_->version == version)
		return program_.get();
	for (const auto &p : versions_)
		if (p->id == id && p->version == version)
			return p.get();
	auto doc = stored_program(id, version);
	if (!doc)
		return doc.status();
	if (!*doc)
		return bad(Code::storage, fmt::format("ledger: program {} v{} is not stored", id, version));
	auto p = parse_program(**doc);
	if (!p)
		return bad(Code::storage, fmt::format("ledger: stored program {} v{} no longer parses: {}",
						      id, version, p.status().message()));
	versions_.push_back(std::make_unique<Program>(std::move(p).value()));
	return versions_.back().get();
}

// The stored document of a program version, its seal checked; nullopt
// when that version is not stored.
Result<std::optional<std::string>> Terminal::stored_program(const std::string &id, int64_t version)
{
	auto st = ledger_.db().prepare("SELECT document, mac FROM programs WHERE id = ?1 AND version = ?2");
	if (!st)
		return st.status();
	st.value().bind(1, id).bind(2, version);
	auto row = st.value().step();
	if (!row)
		return row.status();
	if (!*row)
		return std::optional<std::string>();
	std::string doc = st.value().text(0), mac = st.value().blob(1);
	st.value().reset();
	LOY_TRY(ledger_.check_seal("programs", {id, std::to_string(version), doc}, mac,
				   fmt::format("program {} v{}", id, version)));
	return std::optional<std::string>(std::move(doc));
}

Result<bool> Terminal::install_program(const Program &p, std::string_view json, int64_t now)
{
	auto st = ledger_.db().prepare("SELECT max(version) FROM programs WHERE id = ?1");
	if (!st)
		return st.status();
	st.value().bind(1, p.id);
	auto row = st.value().step();
	if (!row)
		return row.status();
	bool loaded = true;
	if (!st.value().is_null(0)) {
		int64_t newest = st.value().int64(0);
		st.value().reset();
		// The newest version decides what may come after it: a row slipped
		// in with a huge version would lock every update out.
		auto held_doc = stored_program(p.id, newest);
		if (!held_doc)
			return held_doc.status();
		if (p.version < newest)
			return bad(Code::old_program,
				   fmt::format("program {} v{} is older than v{} already installed; a "
					       "terminal never goes back",
					       p.id, p.version, newest));
		if (p.version == newest) {
			// Same version twice is fine when it says the same thing.
			auto held = nlohmann::json::parse(held_doc->value_or(""), nullptr, false);
			if (held.is_discarded() || held != nlohmann::json::parse(json))
				return bad(Code::old_program,
					   fmt::format("program {} v{} is already installed with other "
						       "content: publish a new version",
						       p.id, p.version));
			loaded = false;
		}
	}
	if (loaded) {
		auto ins = ledger_.db().prepare(
			"INSERT INTO programs (id, version, document, loaded_at, mac) VALUES (?1, ?2, ?3, ?4, ?5)");
		if (!ins)
			return ins.status();
		const std::string mac = ledger_.seal("programs", {p.id, std::to_string(p.version), json});
		LOY_TRY(ins.value().bind(1, p.id).bind(2, p.version).bind(3, json).bind(4, rfc3339_utc(now))
				.bind_blob(5, mac.data(), mac.size())
				.run());
	}
	LOY_TRY(ledger_.set_meta("program_id", p.id));
	LOY_TRY(ledger_.set_meta("program_version", std::to_string(p.version)));
	return loaded;
}

Result<ProgramLoaded> Terminal::program_load(std::string_view json, int64_t now)
{
	auto p = parse_program(json);
	if (!p)
		return p.status();
	db::Transaction tx(ledger_.db());
	LOY_TRY(tx.begin());
	auto loaded = install_program(*p, json, now);
	if (!loaded)
		return loaded.status();
	LOY_TRY(tx.commit());
	ProgramLoaded out{p->id, p->version, p->currency, *loaded};
	program_ = std::make_unique<Program>(std::move(p).value());
	return out;
}

Result<Terminal::SyncSettings> Terminal::sync_settings()
{
	// Another handle (the command line, a second process) may have loaded
	// a newer program than this one last saw.
	LOY_TRY(load_program());
	SyncSettings s;
	s.terminal_id = terminal_id_;
	s.store = store_;
	s.ledger_id = ledger_.ledger_id();
	auto server = ledger_.meta("server");
	if (!server)
		return server.status();
	s.server = server->value_or("");
	if (program_) {
		s.program_id = program_->id;
		s.program_version = program_->version;
	}
	auto acked = ledger_.acked_through();
	if (!acked)
		return acked.status();
	s.acked_through = *acked;
	auto w = ledger_.meta_int("member_watermark", 0);
	if (!w)
		return w.status();
	s.watermark = *w;
	return s;
}

Result<std::vector<Terminal::Pending>> Terminal::unacked(int64_t after, size_t max)
{
	auto st = ledger_.db().prepare("SELECT seq, hash, body FROM journal WHERE seq > ?1 ORDER BY seq LIMIT ?2");
	if (!st)
		return st.status();
	st.value().bind(1, after).bind(2, static_cast<int64_t>(max));
	std::vector<Pending> out;
	Status st_read = st.value().each([&]() -> Status {
		std::string h = st.value().blob(1);
		out.push_back(Pending{st.value().int64(0),
				      crypto::to_hex(reinterpret_cast<const uint8_t *>(h.data()), h.size()),
				      st.value().text(2)});
		return Status::ok();
	});
	LOY_TRY(st_read);
	return out;
}

namespace {

// What the journal entries after `after`, up to `through`, moved: per
// member token the points and the qualifying spend, per (token, stamp card)
// the stamps.
struct AckedSums {
	std::map<std::string, std::pair<int64_t, int64_t>> members;
	std::map<std::pair<std::string, std::string>, int64_t> stamps;
};

Result<AckedSums> sum_acked(db::Db &db, int64_t after, int64_t through)
{
	// The spend is read from the body by SQLite's own JSON functions: a
	// sync of a busy day's thousands of entries does not build each as a
	// document. The terminal wrote these bodies; a missing field is a
	// broken ledger.
	auto st = db.prepare("SELECT token, points, kind, CASE kind "
			     "WHEN 'checkout' THEN json_extract(body, '$.data.receipt.eligible') "
			     "WHEN 'refund' THEN -json_extract(body, '$.data.spend_reversed') ELSE 0 END "
			     "FROM journal WHERE seq > ?1 AND seq <= ?2");
	if (!st)
		return st.status();
	st.value().bind(1, after).bind(2, through);
	AckedSums sums;
	Status st_read = st.value().each([&]() -> Status {
		const std::string kind = st.value().text(2);
		auto &d = sums.members[st.value().text(0)];
		if (kind == "checkout" || kind == "refund" || kind == "adjust" || kind == "donate")
			d.first += st.value().int64(1);
		if (kind == "checkout" || kind == "refund") {
			if (st.value().is_null(3))
				return Status(Code::storage, fmt::format("ledger: {} entry without its spend", kind));
			d.second += st.value().int64(3);
		}
		return Status::ok();
	});
	LOY_TRY(st_read);
	st.value().reset();
	// Stamps (spec 2): a checkout's earned less used, a refund's given back
	// less taken back; only entries that name stamps are parsed for them.
	auto ss = db.prepare(
		"SELECT j.token, json_extract(s.value, '$.id'), "
		"json_extract(s.value, '$.earned') - json_extract(s.value, '$.used') "
		"FROM journal j, json_each(j.body, '$.data.receipt.stamps') s WHERE j.seq > ?1 AND j.seq <= ?2 "
		"AND j.kind = 'checkout' AND instr(j.body, '\"stamps\":[') > 0 "
		"UNION ALL SELECT j.token, json_extract(s.value, '$.id'), "
		"json_extract(s.value, '$.returned') - json_extract(s.value, '$.reversed') "
		"FROM journal j, json_each(j.body, '$.data.stamps') s WHERE j.seq > ?1 AND j.seq <= ?2 "
		"AND j.kind = 'refund' AND instr(j.body, '\"stamps\":[') > 0");
	if (!ss)
		return ss.status();
	ss.value().bind(1, after).bind(2, through);
	LOY_TRY(ss.value().each([&]() -> Status {
		if (ss.value().is_null(1) || ss.value().is_null(2))
			return Status(Code::storage, "ledger: an entry's stamps lack their card or count");
		sums.stamps[{ss.value().text(0), ss.value().text(1)}] += ss.value().int64(2);
		return Status::ok();
	}));
	return sums;
}

} // namespace

Status Terminal::record_sync(int64_t acked_through, const std::vector<ServerMember> &members,
			     int64_t watermark, const std::optional<std::string> &program_json, int64_t now)
{
	std::optional<Program> program;
	if (program_json) {
		auto p = parse_program(*program_json);
		if (!p)
			return Status(Code::network, "sync: the server's program is invalid: " + p.status().message());
		program = std::move(p).value();
	}
	// What the entries being acknowledged moved, summed before taking the
	// write lock: journal entries never change, so a checkout need not wait
	// while thousands of them are read and parsed. (When another sync of
	// this data dir records first, the sums are made again under the lock.)
	auto before = ledger_.acked_through();
	if (!before)
		return before.status();
	std::optional<AckedSums> early;
	if (acked_through > *before) {
		auto sums = sum_acked(ledger_.db(), *before, acked_through);
		if (!sums)
			return sums.status();
		early = std::move(sums).value();
	}

	db::Transaction tx(ledger_.db());
	LOY_TRY(tx.begin());
	auto old = ledger_.acked_through();
	if (!old)
		return old.status();
	auto last = ledger_.last_seq();
	if (!last)
		return last.status();
	if (acked_through > *last)
		return Status(Code::network,
			      fmt::format("sync: the server acknowledges entry {} but this terminal has {}: "
					  "is this data dir the one the terminal id belongs to?",
					  acked_through, *last));
	if (acked_through > *old) {
		// The acknowledged entries now count in the server's balances, not
		// in the local sums.
		if (!early || *old != *before) {
			auto sums = sum_acked(ledger_.db(), *old, acked_through);
			if (!sums)
				return sums.status();
			early = std::move(sums).value();
		}
		for (const auto &[token, d] : early->members) {
			auto up = ledger_.db().prepare("UPDATE members SET local_points = local_points - ?2, "
						       "local_spend = local_spend - ?3 WHERE token = ?1");
			if (!up)
				return up.status();
			LOY_TRY(up.value().bind(1, token).bind(2, d.first).bind(3, d.second).run());
		}
		for (const auto &[key, n] : early->stamps) {
			auto up = ledger_.db().prepare("UPDATE member_stamps SET local = local - ?3 "
						       "WHERE token = ?1 AND card = ?2");
			if (!up)
				return up.status();
			LOY_TRY(up.value().bind(1, key.first).bind(2, key.second).bind(3, n).run());
		}
		LOY_TRY(ledger_.db().exec("DELETE FROM member_stamps WHERE local = 0"));
		auto gone = ledger_.db().prepare("DELETE FROM membership_changes WHERE seq <= ?1");
		if (!gone)
			return gone.status();
		LOY_TRY(gone.value().bind(1, acked_through).run());
		LOY_TRY(ledger_.set_meta("acked_through", std::to_string(acked_through)));
	}
	for (const auto &m : members) {
		ServerMemberRow row;
		row.token = m.token;
		row.masked = m.masked;
		row.balance = m.balance;
		row.pending = m.pending;
		row.spend = m.qualifying_spend;
		row.tier = m.tier;
		row.blocked = m.blocked;
		row.next_expiry = m.next_expiry;
		row.segments = m.segments;
		row.stamps = m.stamps;
		row.memberships = m.memberships;
		LOY_TRY(ledger_.put_server_member(row));
	}
	LOY_TRY(ledger_.set_meta("member_watermark", std::to_string(watermark)));
	LOY_TRY(ledger_.set_meta("last_sync", rfc3339_utc(now)));
	LOY_TRY(load_program()); // the one in force now, under the lock
	bool newer = program && (!program_ || program->id != program_->id || program->version > program_->version);
	if (newer) {
		auto loaded = install_program(*program, *program_json, now);
		if (!loaded)
			return loaded.status();
	}
	LOY_TRY(tx.commit());
	if (newer)
		program_ = std::make_unique<Program>(std::move(*program));
	return Status::ok();
}

namespace {

Status need_program(const std::unique_ptr<Program> &p)
{
	if (!p)
		return Status(Code::no_program, "no program installed: run program load FILE.json");
	return Status::ok();
}

Status upsert_member(db::Db &db, const std::string &token, const std::string &masked, int64_t enrolled,
		     int64_t points, int64_t spend)
{
	auto st = db.prepare("INSERT INTO members (token, masked, enrolled, local_points, local_spend) "
			     "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (token) DO UPDATE SET "
			     "enrolled = max(enrolled, excluded.enrolled), "
			     "local_points = local_points + excluded.local_points, "
			     "local_spend = local_spend + excluded.local_spend");
	if (!st)
		return st.status();
	return st.value().bind(1, token).bind(2, masked).bind(3, enrolled).bind(4, points).bind(5, spend).run();
}

} // namespace

Result<Enrolled> Terminal::enroll(std::string_view scan, int64_t now, std::string_view referrer)
{
	LOY_TRY(check_anchor());
	LOY_TRY(load_program());
	LOY_TRY(need_program(program_));
	auto digits = parse_card_scan(scan, program_->card);
	if (!digits)
		return digits.status();
	std::string token = ledger_.member_token(*digits), masked = mask_card(*digits);
	std::string referrer_token, referrer_masked;
	if (!referrer.empty()) {
		auto by = parse_card_scan(referrer, program_->card);
		if (!by)
			return Status(by.status().code(), "--referrer: " + by.status().message());
		referrer_token = ledger_.member_token(*by);
		referrer_masked = mask_card(*by);
	}
	db::Transaction tx(ledger_.db());
	LOY_TRY(tx.begin());
	auto m = read_member(ledger_, token);
	if (!m)
		return m.status();
	bool created = false;
	if (!m->known() || !referrer.empty()) {
		Entry e;
		e.kind = "enroll";
		e.token = token;
		e.program_id = program_->id;
		e.program_version = program_->version;
		e.device_time = rfc3339_utc(now);
		OJson data{{"masked", masked}};
		if (!referrer.empty()) {
			// The enrolment's local day starts the referral's window.
			auto at = effective_now(ledger_, tz_, now);
			if (!at)
				return at.status();
			data["referrer"] = referrer_token;
			data["referrer_masked"] = referrer_masked;
			data["local_date"] = at->local_date();
		}
		e.data = data.dump();
		LOY_TRY(ledger_.append(e));
		created = !m->known();
		LOY_TRY(upsert_member(ledger_.db(), token, masked, 1, 0, 0));
		LOY_TRY(tx.commit());
	}
	Enrolled out;
	out.card = masked;
	out.known = true;
	out.enrolled = created;
	return out;
}

Result<Donated> Terminal::donate(std::string_view scan, std::string_view charity, int64_t points, int64_t clock)
{
	LOY_TRY(check_anchor());
	LOY_TRY(load_program());
	LOY_TRY(need_program(program_));
	const Program &p = *program_;
	auto digits = parse_card_scan(scan, p.card);
	if (!digits)
		return digits.status();
	const std::string token = ledger_.member_token(*digits), masked = mask_card(*digits);
	db::Transaction tx(ledger_.db());
	LOY_TRY(tx.begin());
	auto m = read_member(ledger_, token);
	if (!m)
		return m.status();
	auto now = effective_now(ledger_, tz_, clock);
	if (!now)
		return now.status();
	const Days day = now->local_date();
	auto sums = read_receipt_sums(ledger_, token, now->utc_s, day, false);
	if (!sums)
		return sums.status();
	Member member;
	member.known = m->known();
	member.blocked = m->blocked;
	member.balance = m->server_balance + m->local_points - sums->pending;
	member.redeemed_today = sums->redeemed_day;
	LOY_TRY(check_donation(p, member, charity, points));
	LOY_TRY(check_member_total(m->server_balance + m->local_points, -points, "points"));

	Entry e;
	e.kind = "donate";
	e.token = token;
	e.program_id = p.id;
	e.program_version = p.version;
	e.device_time = rfc3339_utc(clock);
	e.points = -points;
	e.data = OJson{{"masked", masked}, {"charity", std::string(charity)}, {"local_date", day}}.dump();
	LOY_TRY(ledger_.append(e));
	auto ins = ledger_.db().prepare("INSERT INTO donations (seq, token, charity, points, local_date) "
					"VALUES (?1, ?2, ?3, ?4, ?5)");
	if (!ins)
		return ins.status();
	LOY_TRY(ins.value().bind(1, e.seq).bind(2, token).bind(3, std::string(charity)).bind(4, points)
			.bind(5, int64_t{day}).run());
	LOY_TRY(upsert_member(ledger_.db(), token, masked, 0, -points, 0));
	LOY_TRY(tx.commit());
	Donated out;
	out.card = masked;
	out.charity = std::string(charity);
	out.points = points;
	out.balance = member.balance - points;
	return out;
}

Result<CheckoutDone> Terminal::checkout(std::string_view scan, std::string_view basket_json,
					const Redemption &r, int64_t now)
{
	LOY_TRY(check_anchor());
	LOY_TRY(load_program());
	LOY_TRY(need_program(program_));
	const Program &p = *program_;
	auto digits = parse_card_scan(scan, p.card);
	if (!digits)
		return digits.status();
	auto basket = parse_basket(basket_json);
	if (!basket)
		return basket.status();
	LOY_TRY(check_basket_limits(*basket));
	const std::string token = ledger_.member_token(*digits), masked = mask_card(*digits);
	const std::string request = request_digest(*basket, token, r);

	db::Transaction tx(ledger_.db());
	LOY_TRY(tx.begin());

	// A receipt id seen before: the same request is a replay, another is a
	// mistake. Either way nothing moves.
	auto prior = ledger_.db().prepare("SELECT request, seq FROM receipts WHERE receipt_id = ?1");
	if (!prior)
		return prior.status();
	prior.value().bind(1, basket->receipt_id);
	auto row = prior.value().step();
	if (!row)
		return row.status();
	if (*row) {
		if (prior.value().text(0) != request)
			return bad(Code::receipt_conflict,
				   fmt::format("receipt {} was already recorded with another basket, card "
					       "or redemption",
					       basket->receipt_id));
		auto data = ledger_.entry_data(prior.value().int64(1));
		if (!data)
			return data.status();
		auto recorded = checkout_from_entry(*data, basket->receipt_id);
		if (!recorded)
			return recorded.status();
		CheckoutDone out = std::move(recorded).value();
		out.replayed = true;
		return out;
	}

	auto m = read_member(ledger_, token);
	if (!m)
		return m.status();
	const Days day = basket->at.local_date();
	auto sums = read_receipt_sums(ledger_, token, basket->at.utc_s, day, false);
	if (!sums)
		return sums.status();
	Member member;
	member.known = m->known();
	member.blocked = m->blocked;
	member.balance = m->server_balance + m->local_points - sums->pending;
	member.qualifying_spend = m->qualifying();
	member.redeemed_today = sums->redeemed_day;
	member.segments = m->segments;
	member.stamps = m->stamps();
	auto runs = m->memberships();
	if (!runs)
		return runs.status();
	member.memberships = std::move(runs).value();
	if (r.kind == RedeemKind::stamp_card) {
		auto taken = stamp_reward_on(ledger_, token, day);
		if (!taken)
			return taken.status();
		member.stamp_reward_today = *taken;
	}

	auto c = loy::checkout(p, *basket, member, r);
	if (!c)
		return c.status();
	// What this receipt moves, and where it takes the member, stays within
	// the bounds that keep every later sum exact, here and at the centre.
	LOY_TRY(check_receipt_points(c->earned, c->redeemed));
	LOY_TRY(check_member_total(m->server_balance + m->local_points, c->earned - c->redeemed, "points"));
	LOY_TRY(check_member_total(m->qualifying(), c->eligible, "qualifying spend"));

	const int64_t at = basket->at.utc_s;
	const int64_t available_at = at + p.pending_days * day_s;
	std::optional<int64_t> expires_at;
	if (p.expiry_days)
		expires_at = at + *p.expiry_days * day_s;
	const int64_t pending_now = p.pending_days > 0 && available_at > at ? c->earned : 0;
	const int64_t delta = c->earned - c->redeemed;

	CheckoutDone result;
	result.receipt_id = basket->receipt_id;
	result.card = masked;
	result.tier = c->tier;
	result.earned = c->earned;
	result.redeemed = c->redeemed;
	result.discount = c->discount;
	result.member_discount = c->member_discount;
	result.breakdown = c->breakdown;
	result.stamps = c->stamps;
	result.membership = shown(c->memberships);
	if (member.known)
		result.balance = member.balance + delta - pending_now;
	result.replayed = false;
	result.pending = pending_now;
	result.eligible_spend = c->eligible;
	result.currency = p.currency;
	result.available_on = format_date(Timestamp{available_at, basket->at.offset_s}.local_date());
	if (expires_at)
		result.expires_on = format_date(Timestamp{*expires_at, basket->at.offset_s}.local_date());
	result.blocked = m->blocked;

	Receipt receipt = make_receipt(*basket, *c, member, r);
	OJson data;
	data["masked"] = masked;
	data["at_utc"] = at;
	data["at_offset"] = basket->at.offset_s;
	data["local_date"] = day;
	data["available_at"] = available_at;
	data["expires_at"] = expires_at ? OJson(*expires_at) : OJson(nullptr);
	data["request"] = request;
	data["receipt"] = OJson::parse(receipt_to_json(receipt));
	data["result"] = checkout_entry_result(result);
	// The membership days bought (since specification 2; absent when none).
	const OJson bought = membership_days_json(c->memberships_bought);
	if (!bought.empty())
		data["memberships"] = bought;

	Entry e;
	e.kind = "checkout";
	e.receipt_id = basket->receipt_id;
	e.token = token;
	e.program_id = p.id;
	e.program_version = p.version;
	e.device_time = rfc3339_utc(now);
	e.points = delta;
	e.data = data.dump();
	LOY_TRY(ledger_.append(e));

	auto ins = ledger_.db().prepare(
		"INSERT INTO receipts (receipt_id, seq, last_seq, token, program_id, program_version, at_utc, "
		"at_offset, local_date, available_at, expires_at, request, earned, redeemed, stamp_card) "
		"VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)");
	if (!ins)
		return ins.status();
	auto &s = ins.value();
	s.bind(1, basket->receipt_id).bind(2, e.seq).bind(3, token).bind(4, p.id).bind(5, p.version);
	s.bind(6, at).bind(7, int64_t{basket->at.offset_s}).bind(8, day).bind(9, available_at);
	s.bind(10, expires_at).bind(11, request).bind(12, c->earned).bind(13, c->redeemed);
	if (r.kind == RedeemKind::stamp_card)
		s.bind(14, r.reward);
	else
		s.bind_null(14);
	LOY_TRY(s.run());
	LOY_TRY(upsert_member(ledger_.db(), token, masked, 0, delta, c->eligible));
	std::map<std::string, int64_t> stamps;
	for (const auto &x : c->stamps)
		stamps[x.id] += x.earned - x.used;
	LOY_TRY(add_local_stamps(ledger_, *m, token, stamps));
	LOY_TRY(add_membership_changes(ledger_, e.seq, token, bought, day, 1));
	LOY_TRY(tx.commit());
	return result;
}

namespace {

// The identity of a refund request: its lines, in a fixed order.
std::string refund_request(const std::vector<ReturnLine> &units)
{
	std::vector<std::pair<std::string, int64_t>> v;
	for (const auto &u : units)
		v.emplace_back(u.sku, u.qty);
	std::sort(v.begin(), v.end());
	OJson j = OJson::array();
	for (const auto &[sku, qty] : v)
		j.push_back(OJson::array({sku, qty}));
	return j.dump();
}

} // namespace

std::string refund_entry_data(const Receipt &after, const Refund &f, int64_t spend_reversed, const OJson &ids)
{
	OJson data;
	data["receipt"] = OJson::parse(receipt_to_json(after));
	data["reversed"] = f.points_reversed;
	data["returned"] = f.points_returned;
	data["spend_reversed"] = spend_reversed;
	data["complete"] = f.complete;
	if (!ids.empty())
		data["refund_ids"] = ids;
	// The membership days the units back take off (since specification 2).
	if (!f.memberships.empty())
		data["memberships"] = membership_days_json(f.memberships);
	// Per stamp card: the stamps taken back and those of its reward given
	// back (since specification 2; absent when none moved).
	if (!f.stamps.empty()) {
		OJson stamps = OJson::array();
		for (const auto &c : f.stamps)
			stamps.push_back(OJson{{"id", c.id}, {"reversed", c.earned}, {"returned", c.used}});
		data["stamps"] = std::move(stamps);
	}
	return data.dump();
}

Result<RefundDone> Terminal::refund(std::string_view receipt_id, const std::vector<ReturnLine> &units,
				    int64_t now, std::string_view refund_id)
{
	if (!refund_id.empty() && !valid_id(std::string(refund_id)))
		return bad(Code::bad_argument, fmt::format("refund id \"{}\": use 1 to {} letters, digits, '-', "
							   "'_' or '.'",
							   refund_id, id_length_max));
	LOY_TRY(check_anchor());
	db::Transaction tx(ledger_.db());
	LOY_TRY(tx.begin());
	auto st = ledger_.db().prepare("SELECT token, program_id, program_version, last_seq FROM receipts "
				       "WHERE receipt_id = ?1");
	if (!st)
		return st.status();
	st.value().bind(1, receipt_id);
	auto row = st.value().step();
	if (!row)
		return row.status();
	if (!*row)
		return bad(Code::unknown_receipt,
			   fmt::format("receipt {} was not recorded on this terminal", receipt_id));
	const std::string token = st.value().text(0), program_id = st.value().text(1);
	const int64_t version = st.value().int64(2);
	auto state = ledger_.entry_data(st.value().int64(3));
	if (!state)
		return state.status();
	const OJson last = OJson::parse(*state);
	// The refunds of this receipt that named an id, carried from entry to
	// entry: a retried refund (its answer lost) is answered again, and
	// moves nothing twice.
	// The refund result of cli.md, with the member's balance as it stands.
	auto answer = [&](int64_t reversed, int64_t returned, bool complete,
			  bool replayed) -> Result<RefundDone> {
		auto m = read_member(ledger_, token);
		if (!m)
			return m.status();
		auto sums = read_receipt_sums(ledger_, token, now, 0, false);
		if (!sums)
			return sums.status();
		RefundDone out;
		out.receipt_id = std::string(receipt_id);
		out.points_reversed = reversed;
		out.points_returned = returned;
		if (m->known())
			out.balance = m->server_balance + m->local_points - sums->pending;
		out.complete = complete;
		if (!refund_id.empty()) {
			out.refund_id = std::string(refund_id);
			out.replayed = replayed;
		}
		return out;
	};
	OJson ids = last.contains("refund_ids") ? last["refund_ids"] : OJson::object();
	const std::string request = refund_request(units);
	if (!refund_id.empty() && ids.contains(std::string(refund_id))) {
		const OJson &was = ids[std::string(refund_id)];
		if (was.value("request", "") != request)
			return bad(Code::receipt_conflict,
				   fmt::format("refund {} of receipt {} was already recorded with other lines",
					       refund_id, receipt_id));
		return answer(was["reversed"].get<int64_t>(), was["returned"].get<int64_t>(),
			      was["complete"].get<bool>(), true);
	}
	auto receipt = receipt_from_json(last["receipt"].dump());
	if (!receipt)
		return bad(Code::storage, fmt::format("ledger: receipt {}: {}", receipt_id,
						      receipt.status().message()));
	auto p = program_version(program_id, version);
	if (!p)
		return p.status();
	auto f = loy::refund(**p, *receipt, units);
	if (!f)
		return f.status();

	const int64_t spend_reversed = receipt->eligible - f->eligible_after;
	Receipt after = std::move(receipt).value();
	apply_refund(after, *f);
	const int64_t delta = f->points_returned - f->points_reversed;

	if (!refund_id.empty())
		ids[std::string(refund_id)] = OJson{{"request", request},
						    {"reversed", f->points_reversed},
						    {"returned", f->points_returned},
						    {"complete", f->complete}};
	Entry e;
	e.kind = "refund";
	e.receipt_id = std::string(receipt_id);
	e.token = token;
	e.program_id = program_id;
	e.program_version = version;
	e.device_time = rfc3339_utc(now);
	e.points = delta;
	e.data = refund_entry_data(after, *f, spend_reversed, ids);
	LOY_TRY(ledger_.append(e));

	auto up = ledger_.db().prepare("UPDATE receipts SET last_seq = ?2, reversed = reversed + ?3, "
				       "returned = returned + ?4 WHERE receipt_id = ?1");
	if (!up)
		return up.status();
	LOY_TRY(up.value().bind(1, receipt_id).bind(2, e.seq).bind(3, f->points_reversed)
			.bind(4, f->points_returned).run());
	LOY_TRY(upsert_member(ledger_.db(), token, "", 0, delta, -spend_reversed));
	if (!f->memberships.empty())
		LOY_TRY(add_membership_changes(ledger_, e.seq, token, membership_days_json(f->memberships),
					       after.basket.at.local_date(), -1));
	if (!f->stamps.empty()) {
		auto m = read_member(ledger_, token);
		if (!m)
			return m.status();
		std::map<std::string, int64_t> stamps;
		for (const auto &x : f->stamps)
			stamps[x.id] += x.used - x.earned;
		LOY_TRY(add_local_stamps(ledger_, *m, token, stamps));
	}

	auto out = answer(f->points_reversed, f->points_returned, f->complete, false);
	if (!out)
		return out.status();
	LOY_TRY(tx.commit());
	return out;
}

Result<BalanceView> Terminal::balance(std::string_view scan, int64_t clock)
{
	LOY_TRY(load_program());
	LOY_TRY(need_program(program_));
	const Program &p = *program_;
	auto digits = parse_card_scan(scan, p.card);
	if (!digits)
		return digits.status();
	const std::string token = ledger_.member_token(*digits), masked = mask_card(*digits);
	db::ReadTransaction snapshot(ledger_.db());
	LOY_TRY(snapshot.begin());
	auto m = read_member(ledger_, token);
	if (!m)
		return m.status();
	auto now = effective_now(ledger_, tz_, clock);
	if (!now)
		return now.status();
	auto sums = read_receipt_sums(ledger_, token, now->utc_s, now->local_date(), true);
	if (!sums)
		return sums.status();

	BalanceView out;
	out.card = masked;
	out.known = m->known();
	out.tier = p.tier_for(m->qualifying()).name;
	const int64_t available = m->server_balance + m->local_points - sums->pending;
	if (m->known())
		out.balance = available;
	out.pending = sums->pending + m->server_pending;
	out.unsynced = m->local_points;
	if (m->known() && !m->blocked)
		out.redeemable_today = std::max<int64_t>(
			0, std::min(available, p.redeem.offline_daily_cap - sums->redeemed_day));
	out.qualifying_spend = m->qualifying();
	out.segments = m->segments;
	if (m->known()) {
		auto runs = m->memberships();
		if (!runs)
			return runs.status();
		out.membership = shown(*runs);
		out.stamps = m->stamps();
		for (const auto &card : p.stamp_cards)
			out.stamps.emplace(card.id, 0);
	}
	out.blocked = m->blocked;
	if (sums->next_expiry)
		out.next_expiry = format_date(Timestamp{*sums->next_expiry, now->offset_s}.local_date());
	if (!m->server_next_expiry.empty() && (!out.next_expiry || m->server_next_expiry < *out.next_expiry))
		out.next_expiry = m->server_next_expiry;
	out.currency = p.currency;
	return out;
}

Result<StatusView> Terminal::status()
{
	LOY_TRY(load_program());
	db::ReadTransaction snapshot(ledger_.db());
	LOY_TRY(snapshot.begin());
	StatusView out;
	out.terminal_id = terminal_id_;
	out.store = store_;
	if (program_)
		out.program = StatusView::ProgramVersion{program_->id, program_->version};
	auto n = ledger_.count_entries();
	if (!n)
		return n.status();
	auto acked = ledger_.acked_through();
	if (!acked)
		return acked.status();
	out.entries = *n;
	out.unsynced = *n - *acked;
	auto last = ledger_.meta("last_sync");
	if (!last)
		return last.status();
	out.last_sync = *last;
	auto server = ledger_.meta("server");
	if (!server)
		return server.status();
	if (*server && !(*server)->empty())
		out.server = **server;
	if (!tz_.empty())
		out.tz = tz_;
	auto lacking = behind();
	if (!lacking)
		return lacking.status();
	out.behind_centre = lacking->has_value();
	return out;
}

Result<Ledger::Verdict> Terminal::verify()
{
	auto verdict = ledger_.verify();
	if (!verdict || !verdict->ok)
		return verdict;
	Ledger::Verdict v = *verdict;
	// The journal is sound in itself; whether it holds what the centre
	// acknowledged, only the anchor outside it can say.
	auto lacking = behind();
	if (!lacking)
		return lacking.status();
	if (*lacking) {
		auto last = ledger_.last_seq();
		auto head = anchor();
		if (!last)
			return last.status();
		if (!head)
			return head.status();
		v.ok = false;
		v.first_bad = *head ? std::min((*head)->seq, *last + 1) : *last + 1;
		v.problem = **lacking;
	}
	return v;
}

} // namespace loy
