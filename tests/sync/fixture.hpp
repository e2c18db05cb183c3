// Shared fixtures of the sync tests: temporary dirs, two test PKIs (ours and
// a foreign one) made once per process, and a TLS server on a thread of its
// own that records what happened, for the test's thread to check.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "central/pki.hpp"
#include "central/tls_server.hpp"
#include "support/tmpdir.hpp"
#include "sync/tls.hpp"

namespace sync_test {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents at
// scope exit (tests/support/tmpdir.hpp).
using test_support::TempDir;

std::string read_file(const std::string &path);

// A PKI made by make_test_pki for terminals T1 and T2.
struct Pki {
	std::string dir;
	std::string ca_pem, ca_key;
	loy::net::ClientIdentity client(const std::string &terminal) const;
	loy::net::ServerIdentity server() const;
	// The CA as an issuer, for extra certificates.
	loy::net::Issued ca() const { return {ca_pem, ca_key}; }
};

const Pki &pki();
// Another CA and its certificates: nothing in it chains to pki()'s CA.
const Pki &foreign_pki();

// An issued certificate as the server's identity (client CA: pki()'s).
loy::net::ServerIdentity server_identity(const loy::net::Issued &cert);

inline constexpr int quick_io_ms = 300; // time-out tests: short, and timed
inline const loy::net::Timeouts quick{quick_io_ms, quick_io_ms};
inline const loy::net::Timeouts patient{5000, 5000};

// Listens on 127.0.0.1 (a free port) and accepts on a thread of its own until
// destroyed; each established stream goes to `handler` on that thread.
// Failed handshakes are recorded, not asserted: Catch2 asserts on the test's
// thread only.
class TestServer {
public:
	using Handler = std::function<void(loy::net::TlsStream &)>;
	TestServer(const loy::net::ServerIdentity &identity, Handler handler,
		   loy::net::Timeouts timeouts = patient);
	~TestServer();
	TestServer(const TestServer &) = delete;
	TestServer &operator=(const TestServer &) = delete;

	uint16_t port() const { return port_; }
	bool ok() const { return server_ != nullptr; }
	const std::string &listen_error() const { return listen_error_; }
	// Waits (up to 5 s) for the n-th accept error or handled connection.
	std::vector<std::string> errors(size_t n = 1);
	std::vector<std::string> peer_cns(size_t n = 1);

private:
	void run();

	std::unique_ptr<loy::net::TlsServer> server_;
	std::string listen_error_;
	Handler handler_;
	loy::net::Timeouts timeouts_;
	uint16_t port_ = 0;
	std::atomic<bool> stop_{false};
	std::mutex mu_;
	std::condition_variable cv_;
	std::vector<std::string> errors_, peer_cns_;
	std::thread thread_;
};

using Clock = std::chrono::steady_clock;
inline long long ms_since(Clock::time_point t0)
{
	return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

} // namespace sync_test
