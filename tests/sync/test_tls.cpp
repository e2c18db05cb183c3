// TLS on 127.0.0.1 with certificates from make_test_pki: mutual
// authentication, every refusal (foreign CA either way, wrong name, missing IP
// address, wrong key usage, expiry, bad PEM), the time-outs (timed), and
// several HTTP request/response pairs over one connection.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>
#include <string>
#include <thread>

#include "fixture.hpp"
#include "sync/http.hpp"
#include "central/pki.hpp"
#include "central/tls_server.hpp"
#include "sync/tls.hpp"

using namespace sync_test;
using loy::Code;
using loy::net::CertRole;
using loy::net::CertSpec;
using loy::net::tls_connect;
using loy::net::TlsStream;

namespace {

int64_t now() { return static_cast<int64_t>(std::time(nullptr)); }

CertSpec server_spec(std::string cn, std::vector<std::string> dns, std::vector<std::string> ips)
{
	CertSpec s;
	s.role = CertRole::server;
	s.cn = std::move(cn);
	s.dns_names = std::move(dns);
	s.ip_addresses = std::move(ips);
	s.not_before_utc = now() - 3600;
	s.not_after_utc = now() + 86400;
	return s;
}

loy::net::Issued issue(const CertSpec &spec, const loy::net::Issued &ca)
{
	auto r = loy::net::issue_certificate(spec, &ca);
	REQUIRE(r);
	return *r;
}

// Reads until `n` bytes or the end of the stream.
std::string read_n(TlsStream &s, size_t n)
{
	std::string out;
	char buf[4096];
	while (out.size() < n) {
		auto r = s.read_some(buf, std::min(sizeof buf, n - out.size()));
		if (!r || *r == 0)
			break;
		out.append(buf, *r);
	}
	return out;
}

// Echo: answers "ping" with "pong", until the client is done.
void ping_pong(TlsStream &s)
{
	if (read_n(s, 4) == "ping")
		(void)s.write_all("pong");
}

bool contains(const std::string &s, const std::string &part) { return s.find(part) != std::string::npos; }

// A TCP listener that never accepts nor answers: the kernel completes the
// TCP handshake, then nothing.
struct SilentListener {
	int fd = -1;
	uint16_t port = 0;
	explicit SilentListener(int backlog = 8)
	{
		fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		sockaddr_in a{};
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
		REQUIRE(::listen(fd, backlog) == 0);
		socklen_t len = sizeof a;
		REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) == 0);
		port = ntohs(a.sin_port);
	}
	~SilentListener() { ::close(fd); }
};

} // namespace

TEST_CASE("tls: a terminal and the server authenticate each other", "[tls]")
{
	std::string server_saw;
	TestServer server(pki().server(), [&](TlsStream &s) {
		server_saw = s.peer_cn();
		ping_pong(s);
	});
	REQUIRE(server.ok());

	for (const char *host : {"127.0.0.1", "localhost"}) {
		INFO(host);
		auto c = tls_connect(host, server.port(), pki().client("T1"), patient);
		INFO((c ? "" : c.status().message()));
		REQUIRE(c);
		TlsStream &s = **c;
		CHECK(s.peer_cn() == "localhost");
		REQUIRE(s.write_all("ping"));
		CHECK(read_n(s, 4) == "pong");
		s.close();
	}
	CHECK(server.peer_cns(2) == std::vector<std::string>{"T1", "T1"});

	// Another terminal is another CN: what the server authorises on.
	auto c = tls_connect("127.0.0.1", server.port(), pki().client("T2"), patient);
	REQUIRE(c);
	REQUIRE((*c)->write_all("ping"));
	CHECK(read_n(**c, 4) == "pong");
	CHECK(server.peer_cns(3).back() == "T2");
}

TEST_CASE("tls: a client certificate from a foreign CA is refused", "[tls]")
{
	TestServer server(pki().server(), ping_pong);
	REQUIRE(server.ok());
	// It trusts our server, but its own certificate is the foreign CA's.
	loy::net::ClientIdentity id = foreign_pki().client("T1");
	id.ca_pem = pki().ca_pem;
	auto c = tls_connect("127.0.0.1", server.port(), id, patient);
	bool refused = !c;
	if (c) {
		// TLS 1.2: the client may finish before the server's verdict
		// arrives; then its first read learns it.
		(void)(*c)->write_all("ping");
		char b[8];
		auto r = (*c)->read_some(b, sizeof b);
		refused = !r || *r == 0;
	}
	CHECK(refused);
	auto errors = server.errors();
	REQUIRE(errors.size() == 1);
	INFO(errors[0]);
	CHECK(contains(errors[0], "tls: handshake with 127.0.0.1:"));
	CHECK(contains(errors[0], "X509 - Certificate verification failed"));
	CHECK(contains(errors[0], "client certificate: The certificate is not correctly signed by the trusted CA"));
	CHECK(server.peer_cns(0).empty());
	if (!c) {
		INFO(c.status().message());
		CHECK(c.status().code() == Code::network);
		CHECK(contains(c.status().message(), "tls: handshake with 127.0.0.1:"));
		CHECK(contains(c.status().message(), "the server refused the handshake with alert "
						     "unknown_ca (48)"));
	}
}

TEST_CASE("tls: a server certificate from a CA the client does not trust is refused", "[tls]")
{
	loy::net::ServerIdentity id = foreign_pki().server();
	id.client_ca_pem = pki().ca_pem;
	TestServer server(id, ping_pong);
	REQUIRE(server.ok());
	auto c = tls_connect("127.0.0.1", server.port(), pki().client("T1"), patient);
	REQUIRE(!c);
	INFO(c.status().message());
	CHECK(c.status().code() == Code::network);
	CHECK(contains(c.status().message(),
		       "tls: handshake with 127.0.0.1:" + std::to_string(server.port()) +
			       " failed: X509 - Certificate verification failed"));
	CHECK(contains(c.status().message(),
		       "(server certificate: The certificate is not correctly signed by the trusted CA)"));
	// The server learns the terminal walked away.
	auto errors = server.errors();
	REQUIRE(errors.size() == 1);
	CHECK(contains(errors[0], "handshake with 127.0.0.1:"));
}

TEST_CASE("tls: the server's name is checked: DNS names and IP addresses", "[tls]")
{
	const loy::net::Issued ca = pki().ca();
	struct Row {
		const char *name;
		CertSpec spec;
		const char *host;
		const char *error; // nullptr: accepted
	};
	const Row rows[] = {
		{"the test PKI's server, by name", server_spec("localhost", {"localhost"}, {"127.0.0.1"}),
		 "localhost", nullptr},
		{"the test PKI's server, by address",
		 server_spec("localhost", {"localhost"}, {"127.0.0.1"}), "127.0.0.1", nullptr},
		{"another name, by name", server_spec("other.example", {"other.example"}, {"127.0.0.1"}),
		 "localhost", "Common Name (CN) does not match"},
		{"another name, by address",
		 server_spec("other.example", {"other.example"}, {"127.0.0.1"}), "127.0.0.1", nullptr},
		{"no IP address, by name", server_spec("localhost", {"localhost"}, {}), "localhost",
		 nullptr},
		{"no IP address, by address", server_spec("localhost", {"localhost"}, {}), "127.0.0.1",
		 "is not valid for 127.0.0.1: no such iPAddress"},
		{"CN is the address but no IP SAN", server_spec("127.0.0.1", {"localhost"}, {}),
		 "127.0.0.1", "is not valid for 127.0.0.1"},
		{"another address only", server_spec("localhost", {"localhost"}, {"127.0.0.2", "::1"}),
		 "127.0.0.1", "is not valid for 127.0.0.1"},
		{"the address among others",
		 server_spec("localhost", {"a.example", "localhost"}, {"10.0.0.1", "::1", "127.0.0.1"}),
		 "127.0.0.1", nullptr},
	};
	for (const Row &row : rows) {
		INFO(row.name);
		TestServer server(server_identity(issue(row.spec, ca)), ping_pong);
		REQUIRE(server.ok());
		auto c = tls_connect(row.host, server.port(), pki().client("T1"), patient);
		if (row.error == nullptr) {
			INFO((c ? "" : c.status().message()));
			REQUIRE(c);
			REQUIRE((*c)->write_all("ping"));
			CHECK(read_n(**c, 4) == "pong");
		} else {
			REQUIRE(!c);
			INFO(c.status().message());
			CHECK(c.status().code() == Code::network);
			CHECK(contains(c.status().message(), "tls: handshake with "));
			CHECK(contains(c.status().message(), row.error));
		}
	}
}

TEST_CASE("tls: certificates for the wrong purpose or out of date are refused", "[tls]")
{
	const loy::net::Issued ca = pki().ca();
	SECTION("a client certificate as the server's")
	{
		CertSpec s = server_spec("localhost", {"localhost"}, {"127.0.0.1"});
		s.role = CertRole::client;
		auto server = loy::net::TlsServer::listen("127.0.0.1", 0, server_identity(issue(s, ca)));
		REQUIRE(!server);
		CHECK(server.status().code() == Code::bad_argument);
		CHECK(server.status().message() == "tls: own certificate is not for a TLS server (its "
						   "extendedKeyUsage lacks serverAuth)");
	}
	SECTION("the server's certificate as a client's")
	{
		// Refused before connecting; interop shows a server refusing it
		// on the wire (test_interop.cpp).
		loy::net::ServerIdentity srv = pki().server();
		loy::net::ClientIdentity id{pki().ca_pem, srv.cert_pem, srv.key_pem};
		auto c = tls_connect("localhost", 9, id, patient);
		REQUIRE(!c);
		CHECK(c.status().code() == Code::bad_argument);
		CHECK(c.status().message() == "tls: own certificate is not for a TLS client (its "
					      "extendedKeyUsage lacks clientAuth)");
	}
	SECTION("an expired server certificate")
	{
		CertSpec s = server_spec("localhost", {"localhost"}, {"127.0.0.1"});
		s.not_before_utc = now() - 10 * 86400;
		s.not_after_utc = now() - 86400;
		TestServer server(server_identity(issue(s, ca)), ping_pong);
		auto c = tls_connect("localhost", server.port(), pki().client("T1"), patient);
		REQUIRE(!c);
		INFO(c.status().message());
		CHECK(contains(c.status().message(), "The certificate validity has expired"));
	}
}

TEST_CASE("tls: unusable PEM is a bad argument, named", "[tls]")
{
	const auto good = pki().client("T1");
	struct Row {
		const char *name;
		loy::net::ClientIdentity id;
		const char *error;
	};
	const Row rows[] = {
		{"no CA", {"", good.cert_pem, good.key_pem}, "tls: CA certificate: no PEM text"},
		{"garbage CA", {"not a certificate", good.cert_pem, good.key_pem},
		 "tls: CA certificate: not a PEM certificate"},
		{"garbage certificate", {good.ca_pem, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", good.key_pem},
		 "tls: own certificate: not a PEM certificate"},
		{"no key", {good.ca_pem, good.cert_pem, ""}, "tls: private key: no PEM text"},
		{"garbage key", {good.ca_pem, good.cert_pem, "key"}, "tls: private key: not a PEM key"},
		{"another's key", {good.ca_pem, good.cert_pem, pki().client("T2").key_pem},
		 "does not belong to the certificate"},
	};
	for (const Row &row : rows) {
		INFO(row.name);
		// Port 9 (discard): the PEM is checked before any connection.
		auto c = tls_connect("127.0.0.1", 9, row.id, patient);
		REQUIRE(!c);
		INFO(c.status().message());
		CHECK(c.status().code() == Code::bad_argument);
		CHECK(contains(c.status().message(), row.error));
	}
	loy::net::ServerIdentity srv = pki().server();
	srv.client_ca_pem = "garbage";
	auto s = loy::net::TlsServer::listen("127.0.0.1", 0, srv);
	REQUIRE(!s);
	CHECK(s.status().code() == Code::bad_argument);
	CHECK(contains(s.status().message(), "tls: client CA certificate: not a PEM certificate"));

	auto t = tls_connect("127.0.0.1", 9, good, loy::net::Timeouts{0, 100});
	REQUIRE(!t);
	CHECK(t.status().code() == Code::bad_argument);
}

TEST_CASE("tls: unreachable servers fail fast and named", "[tls]")
{
	SECTION("nothing listens")
	{
		int port;
		{
			SilentListener l; // a port that was free a moment ago
			port = l.port;
		}
		auto c = tls_connect("127.0.0.1", static_cast<uint16_t>(port), pki().client("T1"), quick);
		REQUIRE(!c);
		CHECK(c.status().code() == Code::network);
		CHECK(c.status().message() == "tls: cannot connect to 127.0.0.1:" + std::to_string(port) +
						      ": Connection refused");
	}
	SECTION("an unknown host name")
	{
		auto c = tls_connect("no-such-host.invalid", 8443, pki().client("T1"), quick);
		REQUIRE(!c);
		CHECK(c.status().code() == Code::network);
		CHECK(contains(c.status().message(), "tls: cannot resolve no-such-host.invalid"));
	}
}

TEST_CASE("tls: a server that accepts TCP but never answers: the client gives up in time", "[tls]")
{
	SilentListener l;
	auto t0 = Clock::now();
	auto c = tls_connect("127.0.0.1", l.port, pki().client("T1"), quick);
	auto elapsed = ms_since(t0);
	REQUIRE(!c);
	INFO(c.status().message());
	CHECK(c.status().code() == Code::network);
	CHECK(c.status().message() == "tls: handshake with 127.0.0.1:" + std::to_string(l.port) +
					      " failed: timed out after 300 ms");
	CHECK(elapsed >= quick_io_ms - 5);
	CHECK(elapsed < 2 * quick_io_ms);
	WARN("client handshake time-out of " << quick_io_ms << " ms took " << elapsed << " ms");
}

TEST_CASE("tls: a TCP connect that gets no answer gives up in time", "[tls]")
{
	// A full accept queue: Linux drops further SYNs, so the next connect
	// hangs as towards a host that is down.
	SilentListener l(0);
	std::vector<int> fillers;
	for (int i = 0; i < 4; i++) {
		int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		sockaddr_in a{};
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a.sin_port = htons(l.port);
		(void)::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a);
		fillers.push_back(fd);
	}
	std::this_thread::sleep_for(std::chrono::milliseconds(50));
	loy::net::Timeouts t{quick_io_ms, 5000};
	auto t0 = Clock::now();
	auto c = tls_connect("127.0.0.1", l.port, pki().client("T1"), t);
	auto elapsed = ms_since(t0);
	for (int fd : fillers)
		::close(fd);
	REQUIRE(!c);
	INFO(c.status().message());
	CHECK(c.status().message() == "tls: cannot connect to 127.0.0.1:" + std::to_string(l.port) +
					      ": timed out after 300 ms");
	CHECK(elapsed >= quick_io_ms - 5);
	CHECK(elapsed < 2 * quick_io_ms);
	WARN("TCP connect time-out of " << quick_io_ms << " ms took " << elapsed << " ms");
}

TEST_CASE("tls: the server's accept is bounded too", "[tls]")
{
	auto server = loy::net::TlsServer::listen("127.0.0.1", 0, pki().server());
	REQUIRE(server);
	CHECK((*server)->fd() >= 0);

	// Nothing arrives: nullptr, not an error, after about wait_ms.
	auto t0 = Clock::now();
	auto none = (*server)->accept(100, quick);
	auto elapsed = ms_since(t0);
	REQUIRE(none);
	CHECK(*none == nullptr);
	CHECK(elapsed >= 95);
	CHECK(elapsed < 200);

	// A client that connects and says nothing: the handshake times out.
	int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((*server)->port());
	REQUIRE(::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
	t0 = Clock::now();
	auto mute = (*server)->accept(1000, quick);
	elapsed = ms_since(t0);
	::close(fd);
	REQUIRE(!mute);
	INFO(mute.status().message());
	CHECK(contains(mute.status().message(), "tls: handshake with 127.0.0.1:"));
	CHECK(contains(mute.status().message(), "failed: timed out after 300 ms"));
	CHECK(elapsed < 2 * quick_io_ms);
	WARN("server handshake time-out of " << quick_io_ms << " ms took " << elapsed << " ms");
}

TEST_CASE("tls: a silent client holds up neither other handshakes nor the accept loop", "[tls]")
{
	auto server = loy::net::TlsServer::listen("127.0.0.1", 0, pki().server());
	REQUIRE(server);
	const loy::net::Timeouts t{5000, 2000};

	// A port scanner: connects, says nothing. Accepted first.
	int silent = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((*server)->port());
	REQUIRE(::connect(silent, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
	auto t0 = Clock::now();
	auto first = (*server)->accept(100, t);
	REQUIRE(first);
	CHECK(*first == nullptr); // its handshake is under way, not done
	CHECK(ms_since(t0) < 200); // the stop flag is seen on time

	// A terminal meanwhile gets through at once.
	std::string client_error;
	std::thread terminal([&] {
		auto c = tls_connect("127.0.0.1", (*server)->port(), pki().client("T1"), patient);
		if (!c)
			client_error = c.status().message();
		else
			(void)(*c)->write_all("ping");
	});
	std::unique_ptr<TlsStream> got;
	std::vector<std::string> errors;
	while (!got && ms_since(t0) < 5000) {
		auto r = (*server)->accept(50, t);
		if (!r)
			errors.push_back(r.status().message());
		else if (*r)
			got = std::move(r).value();
	}
	terminal.join();
	CHECK(client_error.empty());
	REQUIRE(got);
	CHECK(got->peer_cn() == "T1");
	CHECK(errors.empty()); // the silent one has not timed out yet
	auto t_terminal = ms_since(t0);
	CHECK(t_terminal < 2000);
	char b[8];
	auto r = got->read_some(b, 4);
	REQUIRE(r);
	CHECK(std::string(b, *r) == "ping");

	// The silent one fails on its own clock.
	while (errors.empty() && ms_since(t0) < 5000) {
		auto e = (*server)->accept(50, t);
		if (!e)
			errors.push_back(e.status().message());
	}
	auto t_silent = ms_since(t0);
	::close(silent);
	REQUIRE(errors.size() == 1);
	CHECK(contains(errors[0], "failed: timed out after 2000 ms"));
	CHECK(t_silent >= 1995);
	CHECK(t_silent < 3000);
	WARN("terminal served after " << t_terminal << " ms; the silent client's handshake failed after "
				       << t_silent << " ms");
}

TEST_CASE("tls: reads and writes are bounded; a closed peer reads as 0", "[tls]")
{
	std::atomic<bool> release{false};
	TestServer server(pki().server(), [&](TlsStream &s) {
		// Reads nothing until released, then closes.
		while (!release)
			std::this_thread::sleep_for(std::chrono::milliseconds(5));
		s.close();
	});
	// Set on every way out of the test, before the server joins its thread.
	struct Release {
		std::atomic<bool> &flag;
		~Release() { flag = true; }
	} guard{release};
	REQUIRE(server.ok());

	// The handshake at its own pace (seconds under qemu), then short bounds.
	auto c = tls_connect("127.0.0.1", server.port(), pki().client("T1"), patient);
	REQUIRE(c);
	TlsStream &s = **c;
	s.set_io_timeout(quick_io_ms);
	SECTION("a read with nothing coming")
	{
		char b[16];
		auto t0 = Clock::now();
		auto r = s.read_some(b, sizeof b);
		auto elapsed = ms_since(t0);
		REQUIRE(!r);
		CHECK(r.status().code() == Code::network);
		CHECK(r.status().message() == "tls: read from 127.0.0.1:" + std::to_string(server.port()) +
						      " failed: timed out after 300 ms");
		CHECK(elapsed < 2 * quick_io_ms);
		// A stream that failed stays failed.
		CHECK(!s.write_all("x"));
	}
	SECTION("a write the peer never reads")
	{
		// More than the socket buffers of both ends hold.
		std::string big(64 << 20, 'x');
		auto t0 = Clock::now();
		auto w = s.write_all(big);
		auto elapsed = ms_since(t0);
		REQUIRE(!w);
		INFO(w.message());
		CHECK(contains(w.message(), "failed after"));
		CHECK(contains(w.message(), "timed out after 300 ms"));
		CHECK(elapsed < 2 * quick_io_ms);
	}
	SECTION("the peer closes")
	{
		release = true;
		char b[16];
		auto r = s.read_some(b, sizeof b);
		REQUIRE(r);
		CHECK(*r == 0);
		// Writing into a closed connection is an error, not SIGPIPE.
		bool failed = false;
		for (int i = 0; i < 50 && !failed; i++) {
			failed = !s.write_all(std::string(4096, 'y'));
			std::this_thread::sleep_for(std::chrono::milliseconds(5));
		}
		CHECK(failed);
	}
}

TEST_CASE("tls: several HTTP request/response pairs over one stream", "[tls][http]")
{
	// The reference shape of a serve loop: requests until the client closes.
	TestServer server(pki().server(), [](TlsStream &s) {
		for (;;) {
			auto req = loy::net::read_next_request(s);
			if (!req || !*req)
				return;
			loy::net::Response res;
			res.headers = {{"X-Peer", s.peer_cn()}};
			res.body = (*req)->method + " " + (*req)->target + " " +
				   std::to_string((*req)->body.size());
			if (!loy::net::write_response(s, res))
				return;
		}
	});
	REQUIRE(server.ok());
	auto c = tls_connect("localhost", server.port(), pki().client("T2"), patient);
	REQUIRE(c);
	TlsStream &s = **c;
	auto request = [](std::string target, std::string body) {
		return loy::net::Request{"POST", std::move(target), {{"Host", "localhost"}}, std::move(body)};
	};

	// One after the other, as the terminal sends its batches.
	for (int i = 0; i < 5; i++) {
		REQUIRE(write_request(s, request("/batch/" + std::to_string(i), std::string(100u * static_cast<size_t>(i), 'e'))));
		auto res = loy::net::read_response(s);
		REQUIRE(res);
		CHECK(res->status == 200);
		CHECK(res->header("x-peer") == "T2");
		CHECK(res->body == "POST /batch/" + std::to_string(i) + " " + std::to_string(100 * i));
	}
	// Pipelined: three in one write, answered in order.
	std::string wire;
	for (int i = 0; i < 3; i++)
		wire += format_request(request("/p/" + std::to_string(i), "abc"));
	REQUIRE(s.write_all(wire));
	for (int i = 0; i < 3; i++) {
		auto res = loy::net::read_response(s);
		REQUIRE(res);
		CHECK(res->body == "POST /p/" + std::to_string(i) + " 3");
	}
	// A body of a few MiB, many records each way.
	std::string big(3 << 20, 'z');
	REQUIRE(write_request(s, request("/big", big)));
	auto res = loy::net::read_response(s);
	REQUIRE(res);
	CHECK(res->body == "POST /big " + std::to_string(big.size()));

	// One TLS session throughout.
	CHECK(server.peer_cns(1).size() == 1);
	s.close();
}

TEST_CASE("tls: the HTTP helpers report a peer that closes mid-message", "[tls][http]")
{
	TestServer server(pki().server(), [](TlsStream &s) {
		(void)s.write_all("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
		s.close();
	});
	REQUIRE(server.ok());
	auto c = tls_connect("127.0.0.1", server.port(), pki().client("T1"), patient);
	REQUIRE(c);
	auto res = loy::net::read_response(**c);
	REQUIRE(!res);
	CHECK(res.status().code() == Code::network);
	CHECK(contains(res.status().message(), "closed the connection in the middle of a response"));
}

TEST_CASE("tls: the HTTP helpers report a malformed message with its peer", "[tls][http]")
{
	TestServer server(pki().server(), [](TlsStream &s) {
		(void)s.write_all("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
		char b[16];
		(void)s.read_some(b, sizeof b);
	});
	REQUIRE(server.ok());
	auto c = tls_connect("127.0.0.1", server.port(), pki().client("T1"), patient);
	REQUIRE(c);
	auto res = loy::net::read_response(**c);
	REQUIRE(!res);
	INFO(res.status().message());
	CHECK(contains(res.status().message(), "Transfer-Encoding \"chunked\" is not supported"));
	CHECK(contains(res.status().message(), "(in a response from 127.0.0.1:"));
}

TEST_CASE("tls: a kept connection's bounds: idle is closed quietly, a slow request is cut", "[tls][http]")
{
	// A serve loop with the centre's kind of bounds, short: 300 ms for the
	// next request's first byte, 600 ms for a request whole.
	std::mutex mu;
	std::vector<std::string> outcomes;
	TestServer server(pki().server(), [&](TlsStream &s) {
		for (;;) {
			auto req = loy::net::read_next_request(s, nullptr, loy::net::RequestBounds{300, 600});
			std::lock_guard<std::mutex> lock(mu);
			if (!req) {
				outcomes.push_back("error: " + req.status().message());
				return;
			}
			if (!*req) {
				outcomes.push_back("closed");
				return;
			}
			outcomes.push_back("request " + (*req)->target);
			loy::net::Response res;
			if (!loy::net::write_response(s, res))
				return;
		}
	});
	REQUIRE(server.ok());
	auto outcome = [&](size_t n) {
		for (int i = 0; i < 500; i++) {
			{
				std::lock_guard<std::mutex> lock(mu);
				if (outcomes.size() >= n)
					return outcomes[n - 1];
			}
			std::this_thread::sleep_for(std::chrono::milliseconds(10));
		}
		return std::string("(none)");
	};
	const loy::net::Request get{"GET", "/a", {{"Host", "localhost"}}, ""};

	SECTION("a request, then silence: answered, then closed by the server")
	{
		auto c = tls_connect("localhost", server.port(), pki().client("T1"), patient);
		REQUIRE(c);
		REQUIRE(write_request(**c, get));
		REQUIRE(loy::net::read_response(**c));
		CHECK(outcome(1) == "request /a");
		CHECK(outcome(2) == "closed");
		char b[16];
		auto r = (*c)->read_some(b, sizeof b);
		CHECK((!r || *r == 0)); // the server's close reaches the client
	}
	SECTION("a request sent a byte at a time past its bound: cut")
	{
		auto c = tls_connect("localhost", server.port(), pki().client("T1"), patient);
		REQUIRE(c);
		const std::string wire = format_request(get);
		auto answered = [&] {
			std::lock_guard<std::mutex> lock(mu);
			return !outcomes.empty();
		};
		for (size_t i = 0; i < wire.size() && !answered(); i++) {
			if (!(*c)->write_all(wire.substr(i, 1)))
				break;
			std::this_thread::sleep_for(std::chrono::milliseconds(100));
		}
		INFO(outcome(1));
		CHECK(contains(outcome(1), "took more than 600 ms to send a request"));
	}
}

TEST_CASE("tls: one accept thread, a thread per connection, clients in parallel", "[tls][http]")
{
	// The shape of the central server: streams outlive accept() and are
	// served on threads of their own, while clients connect from several
	// threads (one shared random generator, one shared server config).
	constexpr int clients = 8;
	constexpr int requests_per_client = 20;
	auto server = loy::net::TlsServer::listen("127.0.0.1", 0, pki().server());
	REQUIRE(server);
	std::atomic<bool> stop{false};
	std::atomic<int> served{0};
	std::vector<std::thread> workers;
	std::mutex workers_mu;
	std::thread acceptor([&] {
		while (!stop) {
			auto r = (*server)->accept(50, patient);
			if (!r || !*r)
				continue;
			std::shared_ptr<TlsStream> s(std::move(r).value());
			std::lock_guard<std::mutex> lock(workers_mu);
			workers.emplace_back([s, &served] {
				for (;;) {
					auto req = loy::net::read_next_request(*s);
					if (!req || !*req)
						return;
					loy::net::Response res;
					res.body = s->peer_cn() + ":" + (*req)->body;
					if (!loy::net::write_response(*s, res))
						return;
					served++;
				}
			});
		}
	});

	std::vector<std::string> failures(clients);
	std::vector<std::thread> threads;
	for (int i = 0; i < clients; i++)
		threads.emplace_back([&, i] {
			const char *terminal = i % 2 ? "T1" : "T2";
			auto c = tls_connect("127.0.0.1", (*server)->port(), pki().client(terminal), patient);
			if (!c) {
				failures[static_cast<size_t>(i)] = c.status().message();
				return;
			}
			for (int k = 0; k < requests_per_client; k++) {
				std::string body = std::to_string(i) + "/" + std::to_string(k);
				loy::net::Request req{"POST", "/x", {{"Host", "localhost"}}, body};
				if (auto w = write_request(**c, req); !w) {
					failures[static_cast<size_t>(i)] = w.message();
					return;
				}
				auto res = loy::net::read_response(**c);
				if (!res || res->body != std::string(terminal) + ":" + body) {
					failures[static_cast<size_t>(i)] =
						res ? "wrong answer " + res->body : res.status().message();
					return;
				}
			}
		});
	for (auto &t : threads)
		t.join();
	stop = true;
	acceptor.join();
	for (auto &w : workers)
		w.join();
	for (int i = 0; i < clients; i++) {
		INFO("client " << i);
		CHECK(failures[static_cast<size_t>(i)].empty());
	}
	CHECK(served == clients * requests_per_client);
}
