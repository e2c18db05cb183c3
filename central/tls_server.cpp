// The centre's half of the TLS layer: listening, and accepting with the
// handshakes of many clients side by side on one thread, each bounded in
// time, per client address and in all (tls_server.hpp).
#include "central/tls_server.hpp"
#include "sync/tls_internal.hpp"

namespace loy::net {

namespace {

// The kernel keeps this many completed TCP handshakes while the accept
// thread is busy in a TLS handshake: a chain's terminals tend to sync in a
// burst at closing time, and a SYN dropped on a full queue waits a second or
// more to be sent again (measured: 1,100 connections took 16 s at 64).
constexpr int listen_backlog = 4096;

// After a failed accept(2) (out of descriptors with no handshake to drop):
// the connection waits in the backlog, and retrying at once would spin.
constexpr int accept_error_pause_ms = 50;

// Connections taken from the backlog per wake of the accept loop: a burst
// drained at once, the handshakes under way still served between bursts.
constexpr int accepts_per_wake_max = 256;

} // namespace

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
			      identity.cert_pem, identity.key_pem, identity.verify_clients);
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
