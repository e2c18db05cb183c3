// The terminal's side of a sync (sync/PROTOCOL.md): push every
// unacknowledged journal entry in batches over one TLS session, pull the
// program and the members changed since the last watermark, then record it
// all in one ledger transaction.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.hpp"
#include "storage/terminal.hpp"
#include "sync/http.hpp"
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
// A ledger behind the centre takes its entries back this many a request.
inline constexpr int64_t recover_page_entries = 500;
// ... and at most this many in one sync (a year of a busy till): a centre
// claiming more is refused rather than fill the terminal's disk.
inline constexpr int64_t recover_entries_max = 1000000;

struct SyncReport {
	int64_t pushed = 0;          // entries newly acknowledged
	int64_t acked_through = 0;
	int64_t members = 0;         // member records received
	int64_t program_version = 0; // in force after the sync (0: none)
	// A ledger that was behind the centre (Terminal::Recovery).
	int64_t recovered = 0, rebased = 0, dropped = 0;
};

// One page of the members' snapshot as the server answers GET /v1/members,
// every field typed and within what a member may hold (core/limits.hpp): a
// faulty or hostile centre cannot put a balance on the terminal that would
// overflow its sums. Errors are Code::network (the sync fails, exit 5).
struct MembersPage {
	std::vector<Terminal::ServerMember> members;
	int64_t watermark = 0;
	bool more = false;
};
Result<MembersPage> parse_members_page(std::string_view body);
Result<MembersPage> read_members_page(const nlohmann::json &doc);

// Where the centre's copy of this terminal's chain stands, as a push or an
// entries answer says ("acked_through", "hash"), and a page of the
// terminal's own entries as GET /v1/entries answers (a ledger behind the
// centre takes them back). Typed and bounded; errors are Code::network.
Result<Terminal::ChainHead> read_head(const nlohmann::json &answer, const char *what);
struct EntriesPage {
	Terminal::ChainHead head;
	std::vector<Terminal::Pending> entries;
	bool more = false;
};
Result<EntriesPage> parse_entries_page(std::string_view body);
Result<EntriesPage> read_entries_page(const nlohmann::json &answer);

// `clock`: the terminal's time (seconds since the epoch), read for each
// batch (the server measures the skew on it) and for the record.
// `busy_ms`, when given: after a failure, how long a busy centre asked the
// terminal to wait (its 503's Retry-After, at most a day); 0 otherwise.
Result<SyncReport> sync_terminal(Terminal &terminal, const std::function<int64_t()> &clock,
				 const Timeouts &timeouts,
				 const std::function<void(const std::string &)> &progress,
				 int64_t *busy_ms = nullptr);

} // namespace loy::net
