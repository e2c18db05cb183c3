// The centre's half of the TLS layer (the terminal's is sync/tls.hpp): a
// listening socket whose accepted connections are mutually authenticated
// TlsStreams, with the pre-authentication bounds of sync/PROTOCOL.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/status.hpp"
#include "sync/tls.hpp"

namespace loy::net {

// Handshakes one server carries at once. Each holds a socket and mbedTLS's
// buffers (~40 KB): 1,024 cost ~40 MB and outlast any flood of silent
// connections that eviction does not already clear.
inline constexpr size_t handshakes_in_progress_max = 1024;
// From one client address: a store's terminals behind one NAT sync at their
// own minutes, far fewer than this at once.
inline constexpr size_t handshakes_per_address_max = 64;

class TlsServer {
public:
	struct Impl;
	explicit TlsServer(std::unique_ptr<Impl> impl);
	TlsServer(const TlsServer &) = delete;
	TlsServer &operator=(const TlsServer &) = delete;
	~TlsServer();

	// Binds host:port (port 0 picks a free one) and listens. Accepted
	// connections must present a certificate from identity.client_ca_pem.
	static Result<std::unique_ptr<TlsServer>> listen(const std::string &host, uint16_t port,
							 const ServerIdentity &identity);
	uint16_t port() const;
	// Waits up to `wait_ms` for a connection whose handshake completes
	// (each handshake bounded by timeouts.handshake_ms from its TCP accept).
	// Silent or slow clients cannot lock the port: at most
	// handshakes_per_address_max handshakes from one address are carried
	// (one more is closed at once), and past handshakes_in_progress_max in
	// all the oldest is dropped for the newest, which a real terminal
	// completes in milliseconds. Returns
	// nullptr (not an error) when none completed in time, so a serve loop
	// can check a stop flag. Handshakes proceed side by side across calls: a
	// client that connects and says nothing delays no other, and its
	// time-out comes back from a later call as an error naming the peer
	// (as does any failed handshake); the server goes on listening.
	// One thread calls accept (the handshakes use the server's key); the
	// streams may outlive the server and be served on other threads.
	Result<std::unique_ptr<TlsStream>> accept(int wait_ms, const Timeouts &timeouts);
	int fd() const;

private:
	std::unique_ptr<Impl> impl_;
};

} // namespace loy::net
