// The terminal's operations on its ledger: set-up, program versions,
// enrolment, checkout, refund, balance, status and verification. Each one is
// one SQLite transaction: all of it is recorded, or nothing. Rules come from
// core/; this file only gathers the member's state, calls the engine and
// records what it decided.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/engine.hpp"
#include "core/program.hpp"
#include "storage/ledger.hpp"

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
};

class Terminal {
public:
	// Makes a data dir a terminal's: keys, settings, an empty ledger.
	// Initialising again with the same terminal id and store changes nothing.
	static Status init(const std::string &dir, const TerminalSetup &setup, int64_t now_utc);
	static Result<std::unique_ptr<Terminal>> open(const std::string &dir);

	// Every result is the JSON object of cli.md for that command.
	Result<std::string> program_load(std::string_view json, int64_t now_utc);
	Result<std::string> enroll(std::string_view scan, int64_t now_utc);
	Result<std::string> checkout(std::string_view scan, std::string_view basket_json,
				     const Redemption &redemption, int64_t now_utc);
	Result<std::string> refund(std::string_view receipt_id, const std::vector<ReturnLine> &units,
				   int64_t now_utc);
	Result<std::string> balance(std::string_view scan, int64_t now_utc);
	Result<std::string> status();
	// ok == false is a result, not an error: the caller decides the exit.
	Result<Ledger::Verdict> verify();

	Ledger &ledger() { return ledger_; }

private:
	Terminal() = default;
	Status load_program();
	Result<const Program *> program_version(const std::string &id, int64_t version);

	Ledger ledger_;
	std::string terminal_id_, store_, tz_;
	std::unique_ptr<Program> program_;               // the version in force
	std::vector<std::unique_ptr<Program>> versions_; // older ones, read for refunds
};

// The UTC offset in seconds of zone `tz` (IANA name or ±hh:mm) at `utc`;
// nullopt when the zone is unknown.
std::optional<int32_t> zone_offset(const std::string &tz, int64_t utc);

} // namespace loy
