// The central server's request loop: TLS on one accepting thread, a bounded
// queue of connections, worker threads each with its own store connection.
// A stop request ends accepting, lets every request in hand finish, and
// returns.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "base/status.hpp"
#include "central/store.hpp"
#include "sync/http.hpp"
#include "sync/tls.hpp"

namespace loy::central {

// Workers serve connections at once; more wait in the queue. Enough for a
// store chain's nightly burst on a small server, bounded so that a flood
// cannot exhaust threads or file descriptors.
inline constexpr int serve_workers = 16;
inline constexpr size_t serve_queue_max = 1024;
// How often the accept loop looks at the stop flag.
inline constexpr int accept_poll_ms = 200;

struct ServeOptions {
	std::string data_dir;
	std::string database; // PostgreSQL URI; empty: SQLite in data_dir
	std::string host;
	uint16_t port = 0;
	net::ServerIdentity identity;
	net::Timeouts timeouts;
	// The centre's time (seconds since the epoch): terminals' clock checks,
	// the members' snapshot. Empty: the system clock. (Certificates are
	// judged by mbedTLS at the system clock.)
	std::function<int64_t()> clock;
};

// One request of the sync protocol from terminal `cn` (its certificate's
// CN), answered from `store` at the centre's time `now`: what each worker
// does per request; tests and the fuzz target call it directly.
net::Response handle_request(Store &store, const net::Request &req, const std::string &cn, int64_t now);

// Runs until `stop` is set. `listening` is called once with the bound port.
Status serve(const ServeOptions &options, const std::atomic<bool> &stop,
	     const std::function<void(uint16_t)> &listening);

} // namespace loy::central
