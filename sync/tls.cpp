// TLS 1.2 with mutual authentication over mbedTLS 2.28, on non-blocking
// sockets behind our own BIO callbacks: every wait is a poll(2) with a
// deadline, so no peer can hold a terminal or a server thread for longer than
// the time-outs say. mbedTLS 2.28 cannot match an IP address against a
// certificate, so that check is done here after the handshake. This file is
// the terminal's half (the stream, connecting); the centre's is
// central/tls_server.cpp.
#include "sync/tls.hpp"
#include "sync/tls_internal.hpp"

namespace loy::net {

TlsStream::TlsStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) { assert(impl_); }

TlsStream::~TlsStream() { close(); }

Status TlsStream::write_all(std::string_view data)
{
	Impl &s = *impl_;
	if (s.closed || s.failed)
		return s.broken("write to");
	s.bio.deadline = deadline_in(s.io_ms);
	const auto *p = reinterpret_cast<const unsigned char *>(data.data());
	size_t done = 0;
	while (done < data.size()) {
		int rc = mbedtls_ssl_write(&s.ssl, p + done, data.size() - done);
		if (rc >= 0) {
			done += static_cast<size_t>(rc);
			continue;
		}
		if ((rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) &&
		    Clock::now() < s.bio.deadline)
			continue;
		if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
			rc = MBEDTLS_ERR_SSL_TIMEOUT;
		// A record may be half sent: the stream cannot be used again.
		s.failed = true;
		return Status(Code::network, fmt::format("tls: write to {} failed after {} of {} "
							 "bytes: {}",
							 s.peer, done, data.size(), s.describe(rc)));
	}
	return Status::ok();
}

Result<size_t> TlsStream::read_some(char *buf, size_t n)
{
	Impl &s = *impl_;
	assert(n > 0);
	if (!s.pending.empty()) {
		size_t k = std::min(n, s.pending.size());
		std::memcpy(buf, s.pending.data(), k);
		s.pending.erase(0, k);
		return k;
	}
	if (s.eof)
		return size_t{0};
	if (s.closed || s.failed)
		return s.broken("read from");
	s.bio.deadline = deadline_in(s.io_ms);
	for (;;) {
		int rc = mbedtls_ssl_read(&s.ssl, reinterpret_cast<unsigned char *>(buf), n);
		if (rc > 0)
			return static_cast<size_t>(rc);
		if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
			s.eof = true;
			return size_t{0};
		}
		if ((rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) &&
		    Clock::now() < s.bio.deadline)
			continue;
		if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
			rc = MBEDTLS_ERR_SSL_TIMEOUT;
		s.failed = true;
		return Status(Code::network,
			      fmt::format("tls: read from {} failed: {}", s.peer, s.describe(rc)));
	}
}

void TlsStream::unread(std::string bytes)
{
	impl_->pending.insert(0, bytes);
}

std::string TlsStream::peer_cn() const { return impl_->peer_cn; }

const std::string &TlsStream::peer() const { return impl_->peer; }

void TlsStream::set_io_timeout(int io_ms)
{
	assert(io_ms > 0);
	impl_->io_ms = io_ms;
}

int TlsStream::io_timeout() const { return impl_->io_ms; }

void TlsStream::close()
{
	Impl &s = *impl_;
	if (s.closed)
		return;
	s.closed = true;
	if (s.established && !s.failed) {
		s.bio.deadline = deadline_in(std::min(s.io_ms, close_notify_timeout_ms_max));
		// Best effort: the peer has what it needs or learns from the TCP close.
		(void)mbedtls_ssl_close_notify(&s.ssl);
	}
	if (s.bio.fd >= 0) {
		::shutdown(s.bio.fd, SHUT_RDWR);
		::close(s.bio.fd);
		s.bio.fd = -1;
	}
}

namespace {

// A non-blocking TCP connection to the first address of `host` that answers
// within the connect deadline (one deadline for all of them).
Result<int> tcp_connect(const std::string &host, bool numeric, uint16_t port,
			const std::string &where, int connect_ms, const std::atomic<bool> *cancel)
{
	addrinfo hints{};
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (numeric ? AI_NUMERICHOST : 0);
	addrinfo *list = nullptr;
	// Name resolution is the resolver's own time-out, not ours.
	int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list);
	if (rc != 0)
		return Status(Code::network, fmt::format("tls: cannot resolve {}: {}", host,
							 rc == EAI_SYSTEM ? std::strerror(errno)
									  : ::gai_strerror(rc)));
	Clock::time_point deadline = deadline_in(connect_ms);
	std::string why = "no address";
	int fd = -1;
	for (addrinfo *ai = list; ai != nullptr && fd < 0; ai = ai->ai_next) {
		int s = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				 ai->ai_protocol);
		if (s < 0) {
			why = std::strerror(errno);
			continue;
		}
		int err = 0;
		if (::connect(s, ai->ai_addr, ai->ai_addrlen) != 0) {
			err = errno;
			if (err == EINPROGRESS) {
				int w = wait_fd(s, POLLOUT, deadline, cancel);
				if (w == 0) {
					::close(s);
					why = cancelled(cancel) ? std::string("cancelled: the terminal is stopping")
								: fmt::format("timed out after {} ms", connect_ms);
					break;
				}
				socklen_t len = sizeof err;
				if (w < 0)
					err = errno;
				else if (::getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
					err = errno;
			}
		}
		if (err != 0) {
			why = std::strerror(err);
			::close(s);
			continue;
		}
		fd = s;
	}
	::freeaddrinfo(list);
	if (fd < 0)
		return Status(Code::network, fmt::format("tls: cannot connect to {}: {}", where, why));
	// Requests and answers are small and wait on each other: no Nagle delay.
	int one = 1;
	::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

} // namespace

Status check_client_identity(const ClientIdentity &id, const std::string &terminal_id)
{
	auto conf = make_conf(MBEDTLS_SSL_IS_CLIENT, id.ca_pem, "CA certificate", id.cert_pem, id.key_pem);
	LOY_TRY(conf);
	const std::string cn = subject_cn(&(*conf)->own);
	if (cn != terminal_id)
		return Status(Code::bad_argument,
			      fmt::format("tls: the certificate is for terminal \"{}\" (its subject CN), not \"{}\": "
					  "the centre would refuse every push",
					  utf8_scrub(cn), terminal_id));
	return Status::ok();
}

Result<std::unique_ptr<TlsStream>> tls_connect(const std::string &host, uint16_t port,
					       const ClientIdentity &identity,
					       const Timeouts &timeouts)
{
	LOY_TRY(check_timeouts(timeouts));
	std::string name = host;
	if (name.size() >= 2 && name.front() == '[' && name.back() == ']')
		name = name.substr(1, name.size() - 2);
	if (name.empty())
		return Status(Code::bad_argument, "tls: no server host name given");
	LOY_TRY(rng_ready());
	std::string ip = ip_literal(name);
	std::string where = endpoint(name, port);

	auto conf = make_conf(MBEDTLS_SSL_IS_CLIENT, identity.ca_pem, "CA certificate",
			      identity.cert_pem, identity.key_pem);
	LOY_TRY(conf);
	auto fd = tcp_connect(name, !ip.empty(), port, where, timeouts.connect_ms, timeouts.cancel);
	LOY_TRY(fd);

	auto impl = std::make_unique<TlsStream::Impl>();
	impl->bio.fd = *fd;
	impl->bio.cancel = timeouts.cancel;
	impl->conf = *conf;
	impl->io_ms = timeouts.io_ms;
	impl->peer = where;
	impl->peer_role = "server";
	int rc = mbedtls_ssl_setup(&impl->ssl, &impl->conf->conf);
	// An IP literal is not a server name (RFC 6066 3): no SNI, and the
	// address is checked against the iPAddress SANs below instead.
	if (rc == 0 && ip.empty())
		rc = mbedtls_ssl_set_hostname(&impl->ssl, name.c_str());
	if (rc != 0)
		return Status(Code::internal, fmt::format("tls: set-up for {}: {}", where, mbed_error(rc)));
	mbedtls_ssl_set_bio(&impl->ssl, &impl->bio, bio_send, bio_recv, nullptr);
	LOY_TRY(impl->handshake());
	if (!ip.empty() && !has_ip_san(mbedtls_ssl_get_peer_cert(&impl->ssl), ip)) {
		impl->failed = true;
		return Status(Code::network,
			      fmt::format("tls: handshake with {} failed: the server certificate "
					  "(CN \"{}\") is not valid for {}: no such iPAddress in its "
					  "subjectAltName",
					  where, impl->peer_cn, name));
	}
	return std::make_unique<TlsStream>(std::move(impl));
}

} // namespace loy::net
