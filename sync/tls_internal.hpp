// The internals of the TLS layer that its two halves share: the
// terminal's (sync/tls.cpp: the stream, connecting) and the centre's
// (central/tls_server.cpp: listening, accepting). Not a public interface:
// included by those two files only.
#pragma once

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

#include "base/utf8.hpp"


namespace loy::net {

namespace detail {


using Clock = std::chrono::steady_clock;

// close_notify is one small record: the socket buffer takes it at once unless
// the peer stopped reading, and then waiting longer gains nothing.
constexpr int close_notify_timeout_ms_max = 1000;
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

inline Rng &rng()
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

inline int rng_draw(void *, unsigned char *out, size_t n)
{
	Rng &r = rng();
	std::lock_guard<std::mutex> lock(r.mu);
	return mbedtls_ctr_drbg_random(&r.drbg, out, n);
}

inline std::string mbed_error(int rc)
{
	char buf[256];
	mbedtls_strerror(rc, buf, sizeof buf);
	return buf;
}

inline Status rng_ready()
{
	int rc = rng().seed_rc;
	if (rc != 0)
		return Status(Code::internal,
			      fmt::format("tls: cannot seed the random generator: {}", mbed_error(rc)));
	return Status::ok();
}

// "127.0.0.1:8443", "[::1]:8443", "central.example:8443".
inline std::string endpoint(const std::string &host, uint16_t port)
{
	if (host.find(':') != std::string::npos && host.front() != '[')
		return fmt::format("[{}]:{}", host, port);
	return fmt::format("{}:{}", host, port);
}

// The address alone, without the port: "127.0.0.1", "::1".
inline std::string address_of(const sockaddr_storage &ss)
{
	char buf[INET6_ADDRSTRLEN] = "?";
	if (ss.ss_family == AF_INET)
		::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in *>(&ss)->sin_addr, buf, sizeof buf);
	else if (ss.ss_family == AF_INET6)
		::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6 *>(&ss)->sin6_addr, buf, sizeof buf);
	return buf;
}

inline std::string endpoint(const sockaddr_storage &ss)
{
	if (ss.ss_family == AF_INET)
		return fmt::format("{}:{}", address_of(ss), ntohs(reinterpret_cast<const sockaddr_in *>(&ss)->sin_port));
	if (ss.ss_family == AF_INET6)
		return fmt::format("[{}]:{}", address_of(ss),
				   ntohs(reinterpret_cast<const sockaddr_in6 *>(&ss)->sin6_port));
	return "?";
}

inline Clock::time_point deadline_in(int ms) { return Clock::now() + std::chrono::milliseconds(ms); }

inline bool cancelled(const std::atomic<bool> *cancel) { return cancel && cancel->load(); }

// Waits for `events` on fd until `deadline` or `cancel`: 1 ready (or an
// error condition the next call will report), 0 timed out or cancelled, -1
// poll failed (errno).
inline int wait_fd(int fd, short events, Clock::time_point deadline, const std::atomic<bool> *cancel)
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

inline int bio_send(void *ctx, const unsigned char *buf, size_t len)
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

inline int bio_recv(void *ctx, unsigned char *buf, size_t len)
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
inline const char *alert_name(unsigned char code)
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
inline std::string verify_reasons(uint32_t flags)
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

inline Status parse_certs(mbedtls_x509_crt *crt, const std::string &pem, const char *what)
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

// `verify_peer` false: a server whose clients bring no certificate (the
// dashboard's browsers); the peer is not asked for one.
inline Result<std::shared_ptr<Conf>> make_conf(int endpoint_kind, const std::string &ca_pem,
					const char *ca_what, const std::string &cert_pem,
					const std::string &key_pem, bool verify_peer = true)
{
	auto c = std::make_shared<Conf>();
	if (verify_peer)
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
	mbedtls_ssl_conf_authmode(conf, verify_peer ? MBEDTLS_SSL_VERIFY_REQUIRED : MBEDTLS_SSL_VERIFY_NONE);
	if (verify_peer)
		mbedtls_ssl_conf_ca_chain(conf, &c->ca, nullptr);
	mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_ciphersuites(conf, ciphersuites);
	return c;
}

inline std::string subject_cn(const mbedtls_x509_crt *crt)
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
inline std::string ip_literal(const std::string &host)
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
inline bool has_ip_san(const mbedtls_x509_crt *crt, const std::string &ip)
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


inline Status check_timeouts(const Timeouts &t)
{
	if (t.connect_ms <= 0 || t.io_ms <= 0 || t.handshake_ms <= 0)
		return Status(Code::bad_argument,
			      fmt::format("tls: time-outs must be positive, got connect {} ms, io {} ms, "
					  "handshake {} ms",
					  t.connect_ms, t.io_ms, t.handshake_ms));
	return Status::ok();
}

} // namespace detail

using namespace detail;

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

} // namespace loy::net
