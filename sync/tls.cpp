// TLS 1.2 with mutual authentication over mbedTLS 2.28, on non-blocking
// sockets behind our own BIO callbacks: every wait is a poll(2) with a
// deadline, so no peer can hold a terminal or a server thread for longer than
// the time-outs say. mbedTLS 2.28 cannot match an IP address against a
// certificate, so that check is done here after the handshake.
#include "sync/tls.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdint>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "core/utf8.hpp"

namespace loy::net {

namespace {

using Clock = std::chrono::steady_clock;

// The kernel keeps this many completed TCP handshakes while the accept
// thread is busy in a TLS handshake: a chain's terminals tend to sync in a
// burst at closing time, and a SYN dropped on a full queue waits a second or
// more to be sent again (measured: 1,100 connections took 16 s at 64).
constexpr int listen_backlog = 4096;
// close_notify is one small record: the socket buffer takes it at once unless
// the peer stopped reading, and then waiting longer gains nothing.
constexpr int close_notify_timeout_ms_max = 1000;
// After a failed accept(2) (out of descriptors with no handshake to drop):
// the connection waits in the backlog, and retrying at once would spin.
constexpr int accept_error_pause_ms = 50;
// Connections taken from the backlog per wake of the accept loop: a burst
// drained at once, the handshakes under way still served between bursts.
constexpr int accepts_per_wake_max = 256;
// Forward-secret AEAD suites only; ECDSA for our own PKI, RSA for a chain that
// brings its own. mbedTLS keeps the pointer: static storage.
const int ciphersuites[] = {
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	0,
};

// One generator per process, seeded once from the kernel's entropy. Streams
// on several threads draw from it, hence the mutex (mbedTLS has its own only
// when built with MBEDTLS_THREADING_C, which a cross build may lack). Never
// freed: a stream on another thread may still draw while the process exits.
struct Rng {
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	std::mutex mu;
	int seed_rc = 0;
};

Rng &rng()
{
	static Rng *r = [] {
		auto *p = new Rng;
		mbedtls_entropy_init(&p->entropy);
		mbedtls_ctr_drbg_init(&p->drbg);
		static const char personal[] = "loyalty-sync-tls";
		p->seed_rc = mbedtls_ctr_drbg_seed(&p->drbg, mbedtls_entropy_func, &p->entropy,
						   reinterpret_cast<const unsigned char *>(personal),
						   sizeof personal - 1);
		return p;
	}();
	return *r;
}

int rng_draw(void *, unsigned char *out, size_t n)
{
	Rng &r = rng();
	std::lock_guard<std::mutex> lock(r.mu);
	return mbedtls_ctr_drbg_random(&r.drbg, out, n);
}

std::string mbed_error(int rc)
{
	char buf[256];
	mbedtls_strerror(rc, buf, sizeof buf);
	return buf;
}

Status rng_ready()
{
	int rc = rng().seed_rc;
	if (rc != 0)
		return Status(Code::internal,
			      fmt::format("tls: cannot seed the random generator: {}", mbed_error(rc)));
	return Status::ok();
}

// "127.0.0.1:8443", "[::1]:8443", "central.example:8443".
std::string endpoint(const std::string &host, uint16_t port)
{
	if (host.find(':') != std::string::npos && host.front() != '[')
		return fmt::format("[{}]:{}", host, port);
	return fmt::format("{}:{}", host, port);
}

// The address alone, without the port: "127.0.0.1", "::1".
std::string address_of(const sockaddr_storage &ss)
{
	char buf[INET6_ADDRSTRLEN] = "?";
	if (ss.ss_family == AF_INET)
		::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in *>(&ss)->sin_addr, buf, sizeof buf);
	else if (ss.ss_family == AF_INET6)
		::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6 *>(&ss)->sin6_addr, buf, sizeof buf);
	return buf;
}

std::string endpoint(const sockaddr_storage &ss)
{
	if (ss.ss_family == AF_INET)
		return fmt::format("{}:{}", address_of(ss), ntohs(reinterpret_cast<const sockaddr_in *>(&ss)->sin_port));
	if (ss.ss_family == AF_INET6)
		return fmt::format("[{}]:{}", address_of(ss),
				   ntohs(reinterpret_cast<const sockaddr_in6 *>(&ss)->sin6_port));
	return "?";
}

Clock::time_point deadline_in(int ms) { return Clock::now() + std::chrono::milliseconds(ms); }

bool cancelled(const std::atomic<bool> *cancel) { return cancel && cancel->load(); }

// Waits for `events` on fd until `deadline` or `cancel`: 1 ready (or an
// error condition the next call will report), 0 timed out or cancelled, -1
// poll failed (errno).
int wait_fd(int fd, short events, Clock::time_point deadline, const std::atomic<bool> *cancel)
{
	for (;;) {
		if (cancelled(cancel))
			return 0;
		auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
		long long ms = left.count() < 0 ? 0 : left.count();
		if (cancel)
			ms = std::min<long long>(ms, cancel_poll_ms);
		pollfd p{fd, events, 0};
		int rc = ::poll(&p, 1, static_cast<int>(ms));
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return -1;
		if (rc > 0)
			return 1;
		if (Clock::now() >= deadline)
			return 0;
	}
}

// The BIO under one mbedTLS context: a non-blocking socket and the deadline of
// the operation in progress (a handshake, a write_all, a read_some).
struct Bio {
	int fd = -1;
	Clock::time_point deadline;
	int err = 0; // errno of the last socket failure, for messages
	// The server's handshakes run side by side on the accept thread: there
	// the BIO returns WANT_READ / WANT_WRITE instead of waiting.
	bool nonblocking = false;
	const std::atomic<bool> *cancel = nullptr;
};

int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
	auto *b = static_cast<Bio *>(ctx);
	for (;;) {
		// MSG_NOSIGNAL: a peer that went away is an error value, not SIGPIPE.
		ssize_t n = ::send(b->fd, buf, len, MSG_NOSIGNAL);
		if (n >= 0)
			return static_cast<int>(n); // n <= len, and mbedTLS passes at most a record
		if (errno == EINTR)
			continue;
		if ((errno == EAGAIN || errno == EWOULDBLOCK) && b->nonblocking)
			return MBEDTLS_ERR_SSL_WANT_WRITE;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int w = wait_fd(b->fd, POLLOUT, b->deadline, b->cancel);
			if (w > 0)
				continue;
			if (w == 0)
				return MBEDTLS_ERR_SSL_TIMEOUT;
		}
		b->err = errno;
		return errno == EPIPE || errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET
							     : MBEDTLS_ERR_NET_SEND_FAILED;
	}
}

int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
	auto *b = static_cast<Bio *>(ctx);
	for (;;) {
		ssize_t n = ::recv(b->fd, buf, len, 0);
		if (n >= 0)
			return static_cast<int>(n);
		if (errno == EINTR)
			continue;
		if ((errno == EAGAIN || errno == EWOULDBLOCK) && b->nonblocking)
			return MBEDTLS_ERR_SSL_WANT_READ;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int w = wait_fd(b->fd, POLLIN, b->deadline, b->cancel);
			if (w > 0)
				continue;
			if (w == 0)
				return MBEDTLS_ERR_SSL_TIMEOUT;
		}
		b->err = errno;
		return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_RECV_FAILED;
	}
}

// The alerts a refused handshake usually carries, by their RFC 5246 names.
const char *alert_name(unsigned char code)
{
	switch (code) {
	case 0: return "close_notify";
	case 10: return "unexpected_message";
	case 20: return "bad_record_mac";
	case 40: return "handshake_failure";
	case 42: return "bad_certificate";
	case 43: return "unsupported_certificate";
	case 44: return "certificate_revoked";
	case 45: return "certificate_expired";
	case 46: return "certificate_unknown";
	case 47: return "illegal_parameter";
	case 48: return "unknown_ca";
	case 49: return "access_denied";
	case 50: return "decode_error";
	case 51: return "decrypt_error";
	case 70: return "protocol_version";
	case 71: return "insufficient_security";
	case 80: return "internal_error";
	case 116: return "certificate_required";
	default: return "unknown alert";
	}
}

// The verify result flags, one reason after another: "the certificate is not
// correctly signed by the trusted CA; ...".
std::string verify_reasons(uint32_t flags)
{
	char buf[1024];
	int n = mbedtls_x509_crt_verify_info(buf, sizeof buf, "", flags);
	std::string out;
	if (n <= 0)
		return fmt::format("verify flags {:#x}", flags);
	std::string_view text(buf, static_cast<size_t>(n));
	while (!text.empty()) {
		size_t eol = text.find('\n');
		std::string_view line = text.substr(0, eol);
		if (!line.empty()) {
			if (!out.empty())
				out += "; ";
			out += line;
		}
		if (eol == std::string_view::npos)
			break;
		text.remove_prefix(eol + 1);
	}
	return out;
}

// Certificates, key and config of one side, shared read-only by every
// context set up from it (mbedtls_ssl_config is not changed after setup).
struct Conf {
	mbedtls_ssl_config conf;
	mbedtls_x509_crt ca;
	mbedtls_x509_crt own;
	mbedtls_pk_context key;

	Conf()
	{
		mbedtls_ssl_config_init(&conf);
		mbedtls_x509_crt_init(&ca);
		mbedtls_x509_crt_init(&own);
		mbedtls_pk_init(&key);
	}
	Conf(const Conf &) = delete;
	Conf &operator=(const Conf &) = delete;
	~Conf()
	{
		mbedtls_ssl_config_free(&conf);
		mbedtls_x509_crt_free(&ca);
		mbedtls_x509_crt_free(&own);
		mbedtls_pk_free(&key);
	}
};

Status parse_certs(mbedtls_x509_crt *crt, const std::string &pem, const char *what)
{
	if (pem.empty())
		return Status(Code::bad_argument, fmt::format("tls: {}: no PEM text given", what));
	// PEM input must include its terminating NUL in the length.
	int rc = mbedtls_x509_crt_parse(crt, reinterpret_cast<const unsigned char *>(pem.c_str()),
					pem.size() + 1);
	if (rc < 0)
		return Status(Code::bad_argument,
			      fmt::format("tls: {}: not a PEM certificate: {}", what, mbed_error(rc)));
	if (rc > 0)
		return Status(Code::bad_argument,
			      fmt::format("tls: {}: {} of the certificates could not be parsed", what,
					  rc));
	return Status::ok();
}

Result<std::shared_ptr<Conf>> make_conf(int endpoint_kind, const std::string &ca_pem,
					const char *ca_what, const std::string &cert_pem,
					const std::string &key_pem)
{
	auto c = std::make_shared<Conf>();
	LOY_TRY(parse_certs(&c->ca, ca_pem, ca_what));
	LOY_TRY(parse_certs(&c->own, cert_pem, "own certificate"));
	if (key_pem.empty())
		return Status(Code::bad_argument, "tls: private key: no PEM text given");
	int rc = mbedtls_pk_parse_key(&c->key, reinterpret_cast<const unsigned char *>(key_pem.c_str()),
				      key_pem.size() + 1, nullptr, 0);
	if (rc != 0)
		return Status(Code::bad_argument,
			      fmt::format("tls: private key: not a PEM key: {}", mbed_error(rc)));
	if ((rc = mbedtls_pk_check_pair(&c->own.pk, &c->key)) != 0)
		return Status(Code::bad_argument,
			      fmt::format("tls: the private key does not belong to the certificate: {}",
					  mbed_error(rc)));
	// The peer would refuse it (or, for a server, mbedTLS would find no
	// usable suite): say so now, in words. Every suite we offer signs with
	// this key (ECDHE), hence digitalSignature.
	bool server = endpoint_kind == MBEDTLS_SSL_IS_SERVER;
	const char *purpose = server ? MBEDTLS_OID_SERVER_AUTH : MBEDTLS_OID_CLIENT_AUTH;
	size_t purpose_bytes = server ? MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)
				      : MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH);
	if (mbedtls_x509_crt_check_extended_key_usage(&c->own, purpose, purpose_bytes) != 0)
		return Status(Code::bad_argument,
			      fmt::format("tls: own certificate is not for a TLS {} (its "
					  "extendedKeyUsage lacks {})",
					  server ? "server" : "client",
					  server ? "serverAuth" : "clientAuth"));
	if (mbedtls_x509_crt_check_key_usage(&c->own, MBEDTLS_X509_KU_DIGITAL_SIGNATURE) != 0)
		return Status(Code::bad_argument, "tls: own certificate's keyUsage lacks "
						  "digitalSignature, which the handshake needs");

	mbedtls_ssl_config *conf = &c->conf;
	rc = mbedtls_ssl_config_defaults(conf, endpoint_kind, MBEDTLS_SSL_TRANSPORT_STREAM,
					 MBEDTLS_SSL_PRESET_DEFAULT);
	if (rc == 0)
		rc = mbedtls_ssl_conf_own_cert(conf, &c->own, &c->key);
	if (rc != 0)
		return Status(Code::internal, fmt::format("tls: config: {}", mbed_error(rc)));
	mbedtls_ssl_conf_rng(conf, rng_draw, nullptr);
	// Both sides prove who they are: the server the terminal's CA chain, the
	// terminal its client certificate.
	mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_ca_chain(conf, &c->ca, nullptr);
	mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_ciphersuites(conf, ciphersuites);
	return c;
}

std::string subject_cn(const mbedtls_x509_crt *crt)
{
	if (crt == nullptr)
		return {};
	constexpr size_t cn_oid_bytes = MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN);
	for (const mbedtls_x509_name *n = &crt->subject; n != nullptr; n = n->next)
		if (n->oid.p != nullptr && n->oid.len == cn_oid_bytes &&
		    std::memcmp(n->oid.p, MBEDTLS_OID_AT_CN, cn_oid_bytes) == 0)
			return std::string(reinterpret_cast<const char *>(n->val.p), n->val.len);
	return {};
}

// An IPv4 or IPv6 literal ("127.0.0.1", "::1", "[::1]"): its bytes in
// network order, as an iPAddress SAN holds them. Empty for a DNS name.
std::string ip_literal(const std::string &host)
{
	in_addr a4;
	if (::inet_pton(AF_INET, host.c_str(), &a4) == 1)
		return std::string(reinterpret_cast<const char *>(&a4), sizeof a4);
	in6_addr a6;
	if (::inet_pton(AF_INET6, host.c_str(), &a6) == 1)
		return std::string(reinterpret_cast<const char *>(&a6), sizeof a6);
	return {};
}

// RFC 6125 6.2.1: an IP reference identity matches only an iPAddress entry of
// the subjectAltName, never the CN. mbedTLS 2.28 keeps every SAN entry with
// its context tag ([7] for iPAddress) but matches only dNSName ones.
bool has_ip_san(const mbedtls_x509_crt *crt, const std::string &ip)
{
	constexpr int ip_tag = MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_IP_ADDRESS;
	if (crt == nullptr)
		return false;
	for (const mbedtls_x509_sequence *s = &crt->subject_alt_names; s != nullptr; s = s->next)
		if (s->buf.p != nullptr && s->buf.tag == ip_tag && s->buf.len == ip.size() &&
		    std::memcmp(s->buf.p, ip.data(), ip.size()) == 0)
			return true;
	return false;
}

} // namespace

struct TlsStream::Impl {
	std::shared_ptr<const Conf> conf; // outlives ssl: declared first, destroyed last
	mbedtls_ssl_context ssl;
	Bio bio;
	int io_ms = io_timeout_ms_default;
	std::string peer;      // "127.0.0.1:8443"
	std::string peer_address; // "127.0.0.1": whose handshakes a server counts
	std::string peer_role; // "server" or "client": whose certificate we verify
	std::string peer_cn;
	std::string pending; // given back by unread()
	bool established = false, failed = false, eof = false, closed = false;
	bool want_write = false; // a server handshake in progress waits to send

	Impl() { mbedtls_ssl_init(&ssl); }
	Impl(const Impl &) = delete;
	Impl &operator=(const Impl &) = delete;
	~Impl()
	{
		mbedtls_ssl_free(&ssl);
		if (bio.fd >= 0)
			::close(bio.fd);
	}

	std::string refused(unsigned char alert) const
	{
		return fmt::format("the {} refused the handshake with alert {} ({}), e.g. it does "
				   "not trust our certificate",
				   peer_role, alert_name(alert), alert);
	}

	// A peer that refuses our certificate sends an alert and closes while we
	// may still be sending our last flight: the send fails, and the reason
	// waits unread in the socket. Its first bytes are then a plaintext alert
	// record: type 21, version 3.x, length 2, level, description.
	std::optional<unsigned char> unread_alert() const
	{
		unsigned char rec[7];
		ssize_t n = ::recv(bio.fd, rec, sizeof rec, MSG_DONTWAIT | MSG_PEEK);
		if (n == static_cast<ssize_t>(sizeof rec) && rec[0] == 21 && rec[1] == 3 &&
		    rec[3] == 0 && rec[4] == 2 && rec[5] == 2)
			return rec[6];
		return std::nullopt;
	}

	// What went wrong, for "tls: handshake with X failed: ..." and the like.
	std::string describe(int rc) const
	{
		if (rc == MBEDTLS_ERR_SSL_TIMEOUT && cancelled(bio.cancel))
			return "cancelled: the terminal is stopping";
		if (rc == MBEDTLS_ERR_SSL_TIMEOUT)
			return fmt::format("timed out after {} ms", io_ms);
		std::string what = mbed_error(rc);
		// Why the peer's certificate was refused, when it was.
		uint32_t flags = established ? 0 : mbedtls_ssl_get_verify_result(&ssl);
		if (flags != 0 && flags != UINT32_MAX)
			return fmt::format("{} ({} certificate: {})", what, peer_role,
					   verify_reasons(flags));
		if (rc == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE && ssl.in_msg != nullptr)
			return fmt::format("{}: {}", what, refused(ssl.in_msg[1]));
		if (rc == MBEDTLS_ERR_NET_CONN_RESET || rc == MBEDTLS_ERR_NET_SEND_FAILED ||
		    rc == MBEDTLS_ERR_NET_RECV_FAILED) {
			if (!established)
				if (auto alert = unread_alert())
					return refused(*alert);
			if (bio.err != 0)
				return fmt::format("{}: {}", what, std::strerror(bio.err));
		}
		if (rc == MBEDTLS_ERR_SSL_CONN_EOF)
			return fmt::format("{}: the {} closed the connection", what, peer_role);
		return what;
	}

	Status handshake()
	{
		bio.deadline = deadline_in(io_ms);
		for (;;) {
			int rc = mbedtls_ssl_handshake(&ssl);
			if (rc == 0)
				break;
			// Our BIO waits instead of returning WANT_*; mbedTLS may still ask
			// to be called again, within the same deadline.
			if ((rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) &&
			    Clock::now() < bio.deadline)
				continue;
			if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
				rc = MBEDTLS_ERR_SSL_TIMEOUT;
			return handshake_failed(rc);
		}
		finish();
		return Status::ok();
	}

	void finish()
	{
		peer_cn = subject_cn(mbedtls_ssl_get_peer_cert(&ssl));
		established = true;
		bio.nonblocking = false;
	}

	Status handshake_failed(int rc)
	{
		failed = true;
		return Status(Code::network,
			      fmt::format("tls: handshake with {} failed: {}", peer, describe(rc)));
	}

	Status broken(const char *op) const
	{
		return Status(Code::network,
			      fmt::format("tls: cannot {} {}: the connection {}", op, peer,
					  closed ? "is closed" : "failed before"));
	}
};

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

Status check_timeouts(const Timeouts &t)
{
	if (t.connect_ms <= 0 || t.io_ms <= 0 || t.handshake_ms <= 0)
		return Status(Code::bad_argument,
			      fmt::format("tls: time-outs must be positive, got connect {} ms, io {} ms, "
					  "handshake {} ms",
					  t.connect_ms, t.io_ms, t.handshake_ms));
	return Status::ok();
}

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

struct TlsServer::Impl {
	std::shared_ptr<const Conf> conf;
	int fd = -1;
	uint16_t port = 0;
	// Accepted connections whose handshake is under way, each with its own
	// deadline (bio.deadline).
	std::vector<std::unique_ptr<TlsStream::Impl>> handshakes;

	Impl() = default;
	Impl(const Impl &) = delete;
	Impl &operator=(const Impl &) = delete;
	~Impl()
	{
		if (fd >= 0)
			::close(fd);
	}
};

TlsServer::TlsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) { assert(impl_); }

TlsServer::~TlsServer() = default;

uint16_t TlsServer::port() const { return impl_->port; }

int TlsServer::fd() const { return impl_->fd; }

Result<std::unique_ptr<TlsServer>> TlsServer::listen(const std::string &host, uint16_t port,
						     const ServerIdentity &identity)
{
	LOY_TRY(rng_ready());
	std::string name = host;
	if (name.size() >= 2 && name.front() == '[' && name.back() == ']')
		name = name.substr(1, name.size() - 2);
	std::string where = endpoint(name.empty() ? "*" : name, port);
	auto conf = make_conf(MBEDTLS_SSL_IS_SERVER, identity.client_ca_pem, "client CA certificate",
			      identity.cert_pem, identity.key_pem);
	LOY_TRY(conf);

	addrinfo hints{};
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	addrinfo *list = nullptr;
	int rc = ::getaddrinfo(name.empty() ? nullptr : name.c_str(), std::to_string(port).c_str(),
			       &hints, &list);
	if (rc != 0)
		return Status(Code::network, fmt::format("tls: cannot resolve {}: {}", where,
							 rc == EAI_SYSTEM ? std::strerror(errno)
									  : ::gai_strerror(rc)));
	auto impl = std::make_unique<Impl>();
	impl->conf = *conf;
	std::string why = "no address";
	for (addrinfo *ai = list; ai != nullptr && impl->fd < 0; ai = ai->ai_next) {
		int s = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				 ai->ai_protocol);
		if (s < 0) {
			why = std::strerror(errno);
			continue;
		}
		// A restarted server must not wait out the old connections' TIME_WAIT.
		int one = 1;
		::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (::bind(s, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(s, listen_backlog) != 0) {
			why = std::strerror(errno);
			::close(s);
			continue;
		}
		impl->fd = s;
	}
	::freeaddrinfo(list);
	if (impl->fd < 0)
		return Status(Code::network, fmt::format("tls: cannot listen on {}: {}", where, why));

	sockaddr_storage ss{};
	socklen_t len = sizeof ss;
	if (::getsockname(impl->fd, reinterpret_cast<sockaddr *>(&ss), &len) != 0)
		return Status(Code::network,
			      fmt::format("tls: listening on {}: {}", where, std::strerror(errno)));
	impl->port = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port)
					      : ntohs(reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
	return std::make_unique<TlsServer>(std::move(impl));
}

namespace {

// One step of a server handshake: done (0), more to wait for (1), or a
// failure (the mbedTLS error).
int handshake_step(TlsStream::Impl &h)
{
	int rc = mbedtls_ssl_handshake(&h.ssl);
	if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
		h.want_write = rc == MBEDTLS_ERR_SSL_WANT_WRITE;
		return 1;
	}
	return rc;
}

std::unique_ptr<TlsStream::Impl> take(std::vector<std::unique_ptr<TlsStream::Impl>> &v, size_t i)
{
	auto h = std::move(v[i]);
	v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
	return h;
}

} // namespace

// The handshakes of several clients proceed side by side on this thread,
// each as its bytes arrive: a client that connects and stays silent (a port
// scan, a stalled link) holds up neither the other terminals nor the caller's
// stop flag, and fails alone when its io_ms are spent.
Result<std::unique_ptr<TlsStream>> TlsServer::accept(int wait_ms, const Timeouts &timeouts)
{
	LOY_TRY(check_timeouts(timeouts));
	Impl &srv = *impl_;
	auto &hs = srv.handshakes;
	Clock::time_point deadline = deadline_in(std::max(wait_ms, 0));
	std::vector<pollfd> fds;
	for (;;) {
		Clock::time_point now = Clock::now();
		for (size_t i = 0; i < hs.size(); i++)
			if (now >= hs[i]->bio.deadline)
				return take(hs, i)->handshake_failed(MBEDTLS_ERR_SSL_TIMEOUT);

		// Always listening: a full table makes room (below), so that the
		// kernel's backlog never fills with good terminals waiting behind
		// silent connections.
		fds.clear();
		fds.push_back({srv.fd, POLLIN, 0});
		Clock::time_point wake = deadline;
		for (const auto &h : hs) {
			fds.push_back({h->bio.fd, static_cast<short>(h->want_write ? POLLOUT : POLLIN), 0});
			wake = std::min(wake, h->bio.deadline);
		}
		auto left = std::chrono::ceil<std::chrono::milliseconds>(wake - now).count();
		int rc = ::poll(fds.data(), fds.size(), static_cast<int>(std::max<long long>(left, 0)));
		if (rc < 0 && errno != EINTR)
			return Status(Code::network, fmt::format("tls: waiting for connections on port "
								 "{}: {}",
								 srv.port, std::strerror(errno)));
		const size_t first = 1;
		for (size_t i = 0; rc > 0 && i < hs.size(); i++) {
			if (fds[first + i].revents == 0)
				continue;
			int step = handshake_step(*hs[i]);
			if (step == 0) {
				auto h = take(hs, i);
				h->finish();
				return std::make_unique<TlsStream>(std::move(h));
			}
			if (step < 0)
				return take(hs, i)->handshake_failed(step);
		}

		// Every connection waiting, up to a bound: accepting one per wake
		// lets a burst overflow the kernel's backlog, and a terminal's SYN
		// dropped there waits a second or more to be sent again.
		for (int k = 0; rc > 0 && fds[0].revents != 0 && k < accepts_per_wake_max; k++) {
			sockaddr_storage ss{};
			socklen_t len = sizeof ss;
			int c = ::accept4(srv.fd, reinterpret_cast<sockaddr *>(&ss), &len,
					  SOCK_NONBLOCK | SOCK_CLOEXEC);
			// EAGAIN, ECONNABORTED: the client gave up between poll and
			// accept; nothing arrived after all. Out of descriptors: the
			// oldest handshake gives its own back.
			const int err = errno;
			if (c < 0 && (err == EMFILE || err == ENFILE) && !hs.empty()) {
				take(hs, 0);
				continue;
			}
			if (c < 0 && (err == EAGAIN || err == EWOULDBLOCK))
				break;
			if (c < 0 && err != EINTR && err != ECONNABORTED) {
				// The connection stays in the backlog: do not spin on it.
				std::this_thread::sleep_for(std::chrono::milliseconds(accept_error_pause_ms));
				return Status(Code::network, fmt::format("tls: accept on port {}: {}",
									 srv.port, std::strerror(err)));
			}
			if (c < 0)
				continue;
			std::string address = address_of(ss);
			if (std::count_if(hs.begin(), hs.end(), [&](const auto &h) { return h->peer_address == address; }) >=
			    static_cast<std::ptrdiff_t>(handshakes_per_address_max)) {
				::close(c); // that address holds its share already
				continue;
			}
			if (hs.size() >= handshakes_in_progress_max)
				take(hs, 0); // the oldest, closed: a real client is done long before
			int one = 1;
			::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			auto h = std::make_unique<TlsStream::Impl>();
			h->bio.fd = c;
			h->bio.nonblocking = true;
			h->bio.deadline = deadline_in(std::min(timeouts.handshake_ms, timeouts.io_ms));
			h->conf = srv.conf;
			h->io_ms = timeouts.io_ms;
			h->peer = endpoint(ss);
			h->peer_address = std::move(address);
			h->peer_role = "client";
			int r = mbedtls_ssl_setup(&h->ssl, &h->conf->conf);
			if (r != 0)
				return Status(Code::internal, fmt::format("tls: set-up for {}: {}", h->peer, mbed_error(r)));
			mbedtls_ssl_set_bio(&h->ssl, &h->bio, bio_send, bio_recv, nullptr);
			hs.push_back(std::move(h));
		}
		if (Clock::now() >= deadline)
			return std::unique_ptr<TlsStream>();
	}
}

} // namespace loy::net
