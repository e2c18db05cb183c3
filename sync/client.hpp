// The terminal's side of a sync (sync/PROTOCOL.md): push every
// unacknowledged journal entry in batches over one TLS session, pull the
// program and the members changed since the last watermark, then record it
// all in one ledger transaction.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/status.hpp"
#include "storage/terminal.hpp"
#include "sync/tls.hpp"

namespace loy::net {

// Entries per push: one server transaction each, so other terminals wait
// for a lock no longer than one batch takes to apply.
inline constexpr size_t push_batch_entries = 500;
// Members per pull page: a bounded response, a bounded snapshot write.
inline constexpr int pull_page_members = 1000;
// A sync gives up after this many pages rather than loop on a server that
// always says "more".
inline constexpr int pull_pages_max = 100000;

struct SyncReport {
	int64_t pushed = 0;          // entries newly acknowledged
	int64_t acked_through = 0;
	int64_t members = 0;         // member records received
	int64_t program_version = 0; // in force after the sync (0: none)
};

struct Endpoint {
	std::string host;
	uint16_t port = 0;
};

// "https://HOST:PORT" (HOST may be [v6]).
Result<Endpoint> parse_server_url(const std::string &url);

// `clock`: the terminal's time (seconds since the epoch), read for each
// batch (the server measures the skew on it) and for the record.
Result<SyncReport> sync_terminal(Terminal &terminal, const std::function<int64_t()> &clock,
				 const Timeouts &timeouts,
				 const std::function<void(const std::string &)> &progress);

} // namespace loy::net
