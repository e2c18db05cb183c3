// The terminal's operations on its ledger: set-up, program versions,
// enrolment, checkout, refund, balance, status and verification. Each one is
// one SQLite transaction: all of it is recorded, or nothing. Rules come from
// core/; this file only gathers the member's state, calls the engine and
// records what it decided.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/engine.hpp"
#include "core/program.hpp"
#include "storage/ledger.hpp"
#include "storage/results.hpp"

namespace loy {

struct TerminalSetup {
	std::string terminal_id;
	std::string store;
	std::string tz;        // IANA zone or ±hh:mm; empty: the receipts' own offsets
	// Joining a central server (all or none):
	std::string server;    // https://HOST:PORT
	std::string ca;        // paths of PEM files, copied into the data dir
	std::string cert;
	std::string key;
	std::string token_key; // the chain's card-token key; made here when empty
	// Checks the PEM texts of ca, cert and key before anything is written
	// (the sync layer's: the key matches, the CN is terminal_id); none:
	// not checked.
	std::function<Status(const std::string &ca_pem, const std::string &cert_pem, const std::string &key_pem)>
		check_identity;
};

class Terminal {
public:
	// Makes a data dir a terminal's: keys, settings, an empty ledger.
	// Initialising again with the same terminal id and store changes nothing.
	// The keys go to `keys` (a HAL key store the caller keeps alive), or
	// with NULL to files in the data dir.
	static Status init(const std::string &dir, const TerminalSetup &setup, int64_t now_utc,
			   const loy_hal_keystore *keys = nullptr);
	static Result<std::unique_ptr<Terminal>> open(const std::string &dir,
						      const loy_hal_keystore *keys = nullptr);

	// Every result holds the figures of cli.md's object for that command
	// (storage/results.hpp); its JSON is the C API's (api/results.hpp).
	Result<ProgramLoaded> program_load(std::string_view json, int64_t now_utc);
	// `referrer` (a card scan, or empty): the member who brought this one
	// (program spec 2, "Referral"); the centre decides whether it counts.
	// A card known here already is not enrolled again, but a referral
	// named for it is recorded, for the centre to refuse with its reason.
	Result<Enrolled> enroll(std::string_view scan, int64_t now_utc, std::string_view referrer = {});
	// Points from the member to one of the program's charities (spec 2),
	// checked as a redemption for money is; the local day is the
	// terminal's clock in its zone.
	Result<Donated> donate(std::string_view scan, std::string_view charity, int64_t points, int64_t now_utc);
	// A receipt id recorded before answers the recorded result (replayed)
	// for the same request, receipt_conflict for another.
	Result<CheckoutDone> checkout(std::string_view scan, std::string_view basket_json,
				      const Redemption &redemption, int64_t now_utc);
	// `refund_id` (optional) names the refund: the same id again with the
	// same lines answers the recorded refund (replayed) and moves nothing;
	// with other lines it is receipt_conflict.
	Result<RefundDone> refund(std::string_view receipt_id, const std::vector<ReturnLine> &units,
				  int64_t now_utc, std::string_view refund_id = {});
	Result<BalanceView> balance(std::string_view scan, int64_t now_utc);
	Result<StatusView> status();
	// ok == false is a result, not an error: the caller decides the exit.
	Result<Ledger::Verdict> verify();

	Ledger &ledger() { return ledger_; }
	// The zone given at init (IANA name or ±hh:mm), "" for none. Set at
	// open and never changed: readable from any thread.
	const std::string &tz() const { return tz_; }
	const KeyStore &keys() const { return *keys_; }

	// For a sync (sync/client.cpp): what to push, and recording what came back.
	struct Pending {
		int64_t seq;
		std::string hash; // hex
		std::string body;
	};
	struct SyncSettings {
		std::string terminal_id, store, server, program_id;
		// Ledger::ledger_id: the centre refuses a second data dir that claims
		// the terminal's identity (a clone), while a copy of this one put
		// back is taken as behind and recovered.
		std::string ledger_id;
		int64_t program_version = 0;
		int64_t acked_through = 0;
		int64_t watermark = 0;
	};
	struct ServerMember {
		std::string token, masked, tier, next_expiry;
		int64_t balance = 0, pending = 0, qualifying_spend = 0;
		bool blocked = false;
		std::vector<std::string> segments;
		std::map<std::string, int64_t> stamps; // stamp card id → count (spec 2)
		std::map<std::string, MembershipRun> memberships; // by id (spec 2)
	};
	Result<SyncSettings> sync_settings();
	Result<std::vector<Pending>> unacked(int64_t after, size_t max);
	// One transaction: the acknowledgement, the members' snapshot, the
	// watermark, a newer program. All of a sync's results or none.
	Status record_sync(int64_t acked_through, const std::vector<ServerMember> &members,
			   int64_t watermark, const std::optional<std::string> &program_json, int64_t now);

	// A ledger behind the centre: restored from an old copy, or its WAL
	// lost (sync/PROTOCOL.md, "A ledger behind the centre"). The anchor is
	// the centre's head of this terminal's chain, kept in the key store
	// (outside the database) after every sync.
	struct ChainHead {
		int64_t seq = 0;
		std::string hash; // hex
	};
	Status put_anchor(const ChainHead &head);
	Result<std::optional<ChainHead>> anchor(); // none before the first sync
	// ok, or Code::storage naming what the ledger lacks of what the centre
	// acknowledged: enrolment, checkout and refund are refused until a sync
	// recovers it (the balances would be the old copy's).
	Status check_anchor();
	// What the ledger lacks of what the centre acknowledged, if anything.
	Result<std::optional<std::string>> behind();
	// The hash (hex) of entry `seq` of the journal, 64 zeros for 0, "" when
	// the journal has no such entry.
	Result<std::string> entry_hash(int64_t seq);
	// A program version the entries taken back name, kept for refunds of
	// their receipts (the one in force does not change). Whether it is held.
	Result<bool> has_program_version(const std::string &id, int64_t version);
	Status keep_program_version(std::string_view json, int64_t now);
	// Stages the centre's copies of this terminal's entries, a page at a
	// time (`first` empties the stage).
	Status stage_recovery(const std::vector<Pending> &entries, bool first);
	struct Recovery {
		int64_t recovered = 0; // entries taken back from the centre
		int64_t rebased = 0;   // entries recorded here since, recorded again after them
		int64_t dropped = 0;   // ... or not, because the centre had them (rebased.dropped says why)
	};
	// One transaction: the journal from `fork` on is replaced by the staged
	// entries (which must run from `fork` to the centre's `head`), the
	// entries it held from there are kept in `rebased` and recorded again
	// after them, and the derived tables are rebuilt; the entries taken
	// back count as unacknowledged until record_sync. Nothing is recorded
	// when any of it fails.
	Result<Recovery> recover(int64_t fork, const ChainHead &head, int64_t now);

private:
	Terminal() = default;
	// Takes the program in force from the ledger when another handle (a
	// sync on another thread, another process) installed a newer one.
	Status load_program();
	// Installs a program version inside the caller's transaction.
	Result<bool> install_program(const Program &p, std::string_view json, int64_t now);
	Result<const Program *> program_version(const std::string &id, int64_t version);
	Result<std::optional<std::string>> stored_program(const std::string &id, int64_t version);

	std::unique_ptr<KeyStore> keys_;
	Ledger ledger_;
	std::string terminal_id_, store_, tz_;
	bool anchor_ok_ = false; // checked once good: appends cannot undo it
	std::unique_ptr<Program> program_;               // the version in force
	std::vector<std::unique_ptr<Program>> versions_; // older ones, read for refunds
};

// The UTC offset in seconds of zone `tz` (IANA name or ±hh:mm) at `utc`;
// nullopt when the zone is unknown. Zones are read from their files
// (storage/tzfile.hpp), never through TZ and tzset.
std::optional<int32_t> zone_offset(const std::string &tz, int64_t utc);

} // namespace loy
