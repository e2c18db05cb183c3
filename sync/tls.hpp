// Mutually authenticated TLS 1.2 over TCP (mbedTLS 2.28): the terminal's
// client side and the central server's listening side. Every wait is bounded:
// the TCP connect by Timeouts::connect_ms, the handshake and each read or
// write by Timeouts::io_ms. Certificates and keys come in as PEM text; callers
// read the files.
#pragma once

#include <atomic>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.hpp"

namespace loy::net {

// A LAN or a mobile link completes a TCP handshake well within this; longer
// means the server is down or unreachable, and a cashier should not wait.
inline constexpr int connect_timeout_ms_default = 5000;
// One TLS handshake, one read or one write of a sync batch. A terminal's
// answer may wait behind the batches of a whole chain at closing time (200
// terminals pushing at once keep one server busy for ~20 s here), and a slow
// mobile link carries a full batch: a minute covers both, and still frees
// the terminal from a dead peer.
inline constexpr int io_timeout_ms_default = 60000;

// A server's bound on one client's whole TLS handshake, from its TCP
// accept: a terminal's takes milliseconds on a LAN and a few seconds on a
// poor mobile link; a connection that says nothing for longer is a scan or
// an attack, and must give its place back soon.
inline constexpr int handshake_timeout_ms_default = 10000;

struct Timeouts {
	int connect_ms = connect_timeout_ms_default;
	int io_ms = io_timeout_ms_default;
	int handshake_ms = handshake_timeout_ms_default; // a server's, per client
	// Set by another thread, ends every wait within cancel_poll_ms (a
	// terminal stopping must not wait out a stalled server); may be null.
	const std::atomic<bool> *cancel = nullptr;
};
inline constexpr int cancel_poll_ms = 200;

// PEM text, not paths.
struct ClientIdentity {
	std::string ca_pem;   // the CA(s) the server certificate must chain to
	std::string cert_pem; // the terminal's certificate (subject CN = terminal id)
	std::string key_pem;
};

struct ServerIdentity {
	std::string cert_pem;
	std::string key_pem;
	std::string client_ca_pem; // the CA(s) client certificates must chain to
	// Off only for the back office's dashboard, whose browsers bring no
	// certificate (they sign in instead): client_ca_pem is then unused.
	bool verify_clients = true;
};

// One established, mutually authenticated TLS 1.2 connection. Owns its
// socket and its mbedTLS context; one thread at a time.
class TlsStream {
public:
	struct Impl;
	explicit TlsStream(std::unique_ptr<Impl> impl);
	TlsStream(const TlsStream &) = delete;
	TlsStream &operator=(const TlsStream &) = delete;
	~TlsStream();

	// Writes everything or fails; the whole call is bounded by io_ms.
	Status write_all(std::string_view data);
	// At most n bytes; 0 when the peer closed the connection (close_notify,
	// or a TCP close between records: the HTTP layer above frames messages by
	// Content-Length, so a close inside a message is still caught there).
	// Bounded by io_ms. Bytes given back with unread() come first.
	Result<size_t> read_some(char *buf, size_t n);
	// Bytes read past the end of one message belong to the next one on the
	// same connection: they go back here, and read_some returns them first.
	void unread(std::string bytes);
	// The subject CN of the peer's (verified) certificate.
	std::string peer_cn() const;
	// "127.0.0.1:8443": where the other end is, for messages.
	const std::string &peer() const;
	// The bound of each later read_some / write_all (Timeouts::io_ms at
	// first): a serve loop may wait longer for the next request on a kept
	// connection than for the rest of one under way.
	void set_io_timeout(int io_ms);
	int io_timeout() const;
	// close_notify (unless the connection already failed), then the socket.
	// Idempotent; the destructor calls it.
	void close();

private:
	std::unique_ptr<Impl> impl_;
};

// Whether `id` can sync as terminal `terminal_id`: each PEM parses, the key
// belongs to the certificate, which is for a TLS client and names
// terminal_id as its subject CN. (Whether it chains to a CA is the
// centre's to say: the CA given verifies the server, and a chain may issue
// terminal certificates from another.) Code::bad_argument naming the
// problem otherwise, so that a wrong file is refused at init rather than
// found out as a permanent 403 at every sync.
Status check_client_identity(const ClientIdentity &id, const std::string &terminal_id);

// Connects to host:port (a DNS name, or an IPv4 / IPv6 literal, with or
// without [brackets]), verifies the server certificate against identity.ca_pem
// and its name (dNSName / CN for a name, iPAddress SAN for a literal), and
// presents the client certificate.
Result<std::unique_ptr<TlsStream>> tls_connect(const std::string &host, uint16_t port,
					       const ClientIdentity &identity,
					       const Timeouts &timeouts);

} // namespace loy::net
