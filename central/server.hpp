// The central server's request loop: TLS on one accepting thread, a bounded
// queue of connections, worker threads each with its own store connection.
// A stop request ends accepting, lets every request in hand finish, and
// returns.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "base/status.hpp"
#include "central/dashboard.hpp"
#include "central/store.hpp"
#include "sync/http.hpp"
#include "sync/tls.hpp"

namespace loy::central {

// Workers serve connections at once (each with its own database
// connection); a few more wait in the queue, enough to keep the workers
// busy between two requests. Past that the server is busy: a connection is
// answered 503 with Retry-After by the refuser (one thread, its own bounded
// queue; past that, closed), so that a chain's nightly burst is spread over
// minutes instead of timing out behind a queue (sync/PROTOCOL.md, "Busy").
inline constexpr int serve_workers = 16;
inline constexpr size_t serve_waiting_max = 64;
inline constexpr size_t serve_refusing_max = 256;
// What a busy server asks a terminal to wait, in seconds: the base, plus up
// to as much again at random so that refused terminals do not return
// together. A store that cannot serve (its database down) answers 503 too.
inline constexpr int serve_retry_after_s = 5;
// How often the accept loop looks at the stop flag.
inline constexpr int accept_poll_ms = 200;
inline constexpr int admin_workers = 8;

struct ServeOptions {
	std::string data_dir;
	std::string database; // PostgreSQL URI; empty: SQLite in data_dir
	std::string host;
	uint16_t port = 0;
	net::ServerIdentity identity;
	net::Timeouts timeouts;
	int workers = serve_workers;
	size_t waiting_max = serve_waiting_max;
	int retry_after_s = serve_retry_after_s;
	// The dashboard (dashboard.hpp), when admin_port is set: HTTPS with the
	// same certificate, no client certificate asked for; a few workers of
	// its own, so that a busy night of terminals never locks the back
	// office out (nor the other way round).
	std::string admin_host;
	std::optional<uint16_t> admin_port;
	DashboardOptions dashboard;
	// The centre's time (seconds since the epoch): terminals' clock checks,
	// the members' snapshot. Empty: the system clock. (Certificates are
	// judged by mbedTLS at the system clock.)
	std::function<int64_t()> clock;
};

// One request of the sync protocol from terminal `cn` (its certificate's
// CN), answered from `store` at the centre's time `now`: what each worker
// does per request; tests and the fuzz target call it directly.
net::Response handle_request(Store &store, const net::Request &req, const std::string &cn, int64_t now);

// Runs until `stop` is set. `listening` is called once with the bound port
// (and the dashboard's, 0 when there is none).
Status serve(const ServeOptions &options, const std::atomic<bool> &stop,
	     const std::function<void(uint16_t, uint16_t)> &listening);

} // namespace loy::central
