// The terminal's ledger: one SQLite database in the data dir holding an
// append-only journal of every points movement, hash-chained and MACed, and
// tables derived from it (members, receipts) that change in the same
// transaction as the entry that changes them.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"
#include "base/crypto.hpp"
#include "storage/keys.hpp"
#include "storage/sqlite.hpp"
#include "core/engine.hpp"

namespace loy {

inline constexpr int schema_version = 8;

// What a journal entry says. `body` is the canonical text that is hashed and
// MACed; the other fields are columns kept beside it for queries.
struct Entry {
	int64_t seq = 0;
	std::string kind;         // enroll, checkout, refund, adjust
	std::string receipt_id;   // checkout, refund
	std::string token;        // the member's keyed card hash
	std::string program_id;
	int64_t program_version = 0;
	std::string device_time;  // RFC 3339, the terminal's clock when recorded
	int64_t points = 0;       // change to the member's balance
	std::string data;         // kind-specific JSON object, kept inside body
	std::string body;         // canonical text; set by Ledger::append
	crypto::Digest hash{};    // SHA-256 of body, which names the previous hash
	crypto::Digest mac{};     // HMAC-SHA-256 of hash under the terminal's key
};

// Item of the key store saying the ledger's rows are sealed (load_keys).
inline constexpr const char *sealed_item = "ledger.sealed";

// A row of the centre's snapshot of a member (table server_members).
struct ServerMemberRow {
	std::string token, masked, tier;
	std::string next_expiry; // "" for none
	int64_t balance = 0, pending = 0, spend = 0;
	bool blocked = false;
	std::vector<std::string> segments; // the centre's targeting (names hold no newline)
	std::map<std::string, int64_t> stamps; // stamp card id → count (spec 2); may be below zero
	std::map<std::string, MembershipRun> memberships; // by membership id (spec 2)
	std::string mac; // as read; put_server_member seals it anew
};

class Ledger {
public:
	// Opens the database in `dir`, running forward migrations. The data dir
	// must exist; `create` makes the database file.
	Status open(const std::string &dir, bool create);
	db::Db &db() { return db_; }
	const std::string &dir() const { return dir_; }

	// Key–value settings of the terminal (terminal_id, store, tz, ...).
	Result<std::optional<std::string>> meta(const char *key);
	// A numeric setting; absent gives `fallback`, garbage a storage error.
	Result<int64_t> meta_int(const char *key, int64_t fallback);
	Status set_meta(const char *key, const std::string &value);

	// Takes the keys from the store and checks the settings' seals; seals
	// the rows of a ledger that comes from schema 2 (once: the key store
	// remembers it, so that a seal removed later is found, not remade).
	Status load_keys(const KeyStore &keys);
	// The keys of a terminal being made (init), before its settings exist.
	void use_keys(const crypto::Key &mac_key, const crypto::Key &token_key);

	// Seals. A row outside the journal that decides points or identity (a
	// setting, a program version, the centre's snapshot of a member)
	// carries an HMAC-SHA-256 under the ledger key over its table and its
	// fields: an edit with write access to the data dir, the keys being in
	// the HAL key store, is found where the row is read and by verify.
	std::string seal(std::string_view table, std::initializer_list<std::string_view> fields) const;
	// Code::storage naming `what` when `mac` is not the row's seal.
	Status check_seal(std::string_view table, std::initializer_list<std::string_view> fields,
			  const std::string &mac, std::string_view what) const;

	// The centre's snapshot of members: one member (`token`) or all, their
	// seals not checked (check_member_seal); written sealed.
	Result<std::vector<ServerMemberRow>> server_members(const std::string *token = nullptr);
	Status check_member_seal(const ServerMemberRow &m) const;
	Status put_server_member(const ServerMemberRow &m);
	const crypto::Key &token_key() const { return token_key_; }
	// Names this ledger apart from any other, copies of it included: 32 hex
	// digits derived from its MAC key (which it does not reveal), so a
	// data dir made again by init has another, one put back from a backup
	// the same.
	std::string ledger_id() const;
	std::string member_token(const std::string &card_digits) const;

	// Appends an entry inside the caller's transaction: sets seq (the next
	// one, gap-free), body, hash and MAC.
	Status append(Entry &e);
	// Appends, inside the caller's transaction, an entry of this terminal
	// as the centre holds it (a ledger that fell behind): `body` must be
	// exactly what this terminal writes for the entry `seq` that follows the
	// journal's last, and hash to `hash_hex`. Code::network otherwise (the
	// centre's copy is not ours: the sync fails, nothing is recorded).
	Status adopt(int64_t seq, const std::string &hash_hex, const std::string &body);
	// The kind-specific data of entry `seq`, as JSON text in its own order.
	Result<std::string> entry_data(int64_t seq);
	Result<int64_t> last_seq();
	Result<int64_t> count_entries();
	Result<int64_t> acked_through();

	struct Verdict {
		bool ok = true;
		int64_t entries = 0;
		int64_t first_bad = 0; // seq of the first bad entry, 0 when ok
		std::string problem;
	};
	// Checks SQLite's integrity, the chain, every MAC, the sequence, and the
	// derived tables against a replay of the journal.
	Result<Verdict> verify();

	// Rebuilds members' local aggregates and the receipts table from the
	// journal (a migration, and verify's reference).
	Status rebuild_derived();

private:
	Status migrate(bool create);

	db::Db db_;
	std::string dir_;
	std::string terminal_id_;
	crypto::Key mac_key_{};
	crypto::Key token_key_{};
	bool keys_loaded_ = false;

	Status seal_all();
	// Where the next entry goes: its seq, and the hash it must name.
	struct Tail {
		int64_t next_seq = 1;
		crypto::Digest prev{};
	};
	Result<Tail> journal_tail();
	// The journal row of `e` (body and hash set): its MAC, the row, the head.
	Status insert_entry(Entry &e);
	Status check_seals(const std::function<void(std::string)> &fail);
	std::string seal_member(const ServerMemberRow &m) const;
	static bool same_seal(const std::string &mac, const std::string &want);
};

// The canonical text of an entry: fixed key order, no whitespace.
std::string entry_body(const Entry &e, const std::string &terminal_id, const crypto::Digest &prev);

} // namespace loy
