// Interop with another TLS stack, the openssl command: our client against
// `openssl s_server`, our server against `openssl s_client`, and `openssl
// verify` on make_test_pki's certificates. Skipped with a warning when the
// openssl command is absent (Debian package openssl).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "fixture.hpp"
#include "sync/tls.hpp"

using namespace sync_test;
using loy::net::tls_connect;
using loy::net::TlsStream;

namespace {

// Every openssl run is bounded: a hung one fails the test instead of CI.
constexpr int openssl_run_s = 20;
constexpr int server_start_ms = 5000;
constexpr int port_attempts = 5;

bool have_openssl() { return std::system("command -v openssl >/dev/null 2>&1") == 0; }

#define SKIP_WITHOUT_OPENSSL()                                                                     \
	do {                                                                                       \
		if (!have_openssl()) {                                                             \
			WARN("the openssl command is not installed (Debian package openssl): "    \
			     "interop not tested");                                                \
			SUCCEED();                                                                 \
			return;                                                                    \
		}                                                                                  \
	} while (0)

bool contains(const std::string &s, const std::string &part) { return s.find(part) != std::string::npos; }

// A port that was free a moment ago (openssl binds it itself).
uint16_t free_port()
{
	int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
	socklen_t len = sizeof a;
	REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) == 0);
	::close(fd);
	return ntohs(a.sin_port);
}

// A shell command's output (stdout and stderr) and exit status.
struct Run {
	std::string out;
	int status = -1;
};

Run run(const std::string &command)
{
	Run r;
	std::string full = "timeout " + std::to_string(openssl_run_s) + " " + command + " 2>&1";
	FILE *p = ::popen(full.c_str(), "r");
	REQUIRE(p != nullptr);
	char buf[4096];
	size_t n;
	while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
		r.out.append(buf, n);
	int st = ::pclose(p);
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return r;
}

// `openssl s_server` on 127.0.0.1, started and stopped by this process (by
// its pid only).
class SServer {
public:
	explicit SServer(std::vector<std::string> args)
	{
		for (int attempt = 0; attempt < port_attempts && pid_ < 0; attempt++)
			start(args);
	}
	~SServer() { stop(); }
	SServer(const SServer &) = delete;
	SServer &operator=(const SServer &) = delete;

	bool ok() const { return pid_ > 0; }
	uint16_t port() const { return port_; }
	const std::string &output() const { return out_; }

private:
	void start(const std::vector<std::string> &extra)
	{
		port_ = free_port();
		std::vector<std::string> args = {"openssl", "s_server", "-accept",
						 "127.0.0.1:" + std::to_string(port_)};
		args.insert(args.end(), extra.begin(), extra.end());
		int pipefd[2];
		REQUIRE(::pipe2(pipefd, O_CLOEXEC) == 0);
		pid_t pid = ::fork();
		REQUIRE(pid >= 0);
		if (pid == 0) {
			::dup2(pipefd[1], 1);
			::dup2(pipefd[1], 2);
			int devnull = ::open("/dev/null", O_RDONLY);
			::dup2(devnull, 0);
			std::vector<char *> argv;
			for (auto &a : args)
				argv.push_back(a.data());
			argv.push_back(nullptr);
			::execvp("openssl", argv.data());
			::_exit(127);
		}
		::close(pipefd[1]);
		fd_ = pipefd[0];
		pid_ = pid;
		// Ready once it says ACCEPT.
		auto deadline = Clock::now() + std::chrono::milliseconds(server_start_ms);
		while (!contains(out_, "ACCEPT") && Clock::now() < deadline) {
			pollfd p{fd_, POLLIN, 0};
			if (::poll(&p, 1, 100) <= 0)
				continue;
			char buf[1024];
			ssize_t n = ::read(fd_, buf, sizeof buf);
			if (n <= 0)
				break; // exited: the port was taken, say
			out_.append(buf, static_cast<size_t>(n));
		}
		if (!contains(out_, "ACCEPT"))
			stop();
	}

	void stop()
	{
		if (pid_ > 0) {
			::kill(pid_, SIGTERM);
			::waitpid(pid_, nullptr, 0);
			pid_ = -1;
		}
		if (fd_ >= 0) {
			::close(fd_);
			fd_ = -1;
		}
	}

	pid_t pid_ = -1;
	int fd_ = -1;
	uint16_t port_ = 0;
	std::string out_;
};

std::vector<std::string> s_server_args(const Pki &server_pki, const Pki &client_ca)
{
	const std::string &d = server_pki.dir;
	return {"-cert", d + "/server.pem", "-key", d + "/server.key", "-CAfile", client_ca.dir + "/ca.pem",
		"-Verify", "1", "-verify_return_error", "-www"};
}

std::string get_page(TlsStream &s)
{
	REQUIRE(s.write_all("GET / HTTP/1.0\r\n\r\n"));
	std::string page;
	char buf[4096];
	for (;;) {
		auto r = s.read_some(buf, sizeof buf);
		REQUIRE(r);
		if (*r == 0)
			break;
		page.append(buf, *r);
	}
	return page;
}

} // namespace

TEST_CASE("interop: our client against openssl s_server", "[interop]")
{
	SKIP_WITHOUT_OPENSSL();
	SServer server(s_server_args(pki(), pki()));
	INFO(server.output());
	REQUIRE(server.ok());

	for (const char *host : {"127.0.0.1", "localhost"}) {
		INFO(host);
		auto c = tls_connect(host, server.port(), pki().client("T1"), patient);
		INFO((c ? "" : c.status().message()));
		REQUIRE(c);
		CHECK((*c)->peer_cn() == "localhost");
		std::string page = get_page(**c);
		CHECK(page.rfind("HTTP/1.0 200 ok\r\n", 0) == 0);
		CHECK(contains(page, "TLSv1.2"));
		CHECK(contains(page, "ECDHE-ECDSA"));
	}

	SECTION("a client certificate s_server does not trust")
	{
		loy::net::ClientIdentity id = foreign_pki().client("T1");
		id.ca_pem = pki().ca_pem;
		auto c = tls_connect("127.0.0.1", server.port(), id, patient);
		bool refused = !c;
		if (c) {
			(void)(*c)->write_all("GET / HTTP/1.0\r\n\r\n");
			char b[64];
			auto r = (*c)->read_some(b, sizeof b);
			refused = !r || *r == 0;
		}
		CHECK(refused);
		if (!c) {
			INFO(c.status().message());
			CHECK(contains(c.status().message(), "the server refused the handshake with alert"));
		}
	}
}

TEST_CASE("interop: openssl s_server with a certificate our client does not trust", "[interop]")
{
	SKIP_WITHOUT_OPENSSL();
	SServer server(s_server_args(foreign_pki(), pki()));
	INFO(server.output());
	REQUIRE(server.ok());
	auto c = tls_connect("127.0.0.1", server.port(), pki().client("T1"), patient);
	REQUIRE(!c);
	INFO(c.status().message());
	CHECK(contains(c.status().message(), "X509 - Certificate verification failed"));
	CHECK(contains(c.status().message(), "not correctly signed by the trusted CA"));
}

TEST_CASE("interop: openssl s_client against our server", "[interop]")
{
	SKIP_WITHOUT_OPENSSL();
	TestServer server(pki().server(), [](TlsStream &s) {
		std::string got;
		char buf[256];
		while (got.find('\n') == std::string::npos) {
			auto r = s.read_some(buf, sizeof buf);
			if (!r || *r == 0)
				return;
			got.append(buf, *r);
		}
		if (got == "PING\n")
			(void)s.write_all("PONG\n");
		s.close();
	});
	REQUIRE(server.ok());
	const std::string d = pki().dir;
	std::string connect = "openssl s_client -connect 127.0.0.1:" + std::to_string(server.port()) +
			      " -CAfile " + d + "/ca.pem -verify_return_error -quiet";

	SECTION("with a terminal's certificate, checking the IP address")
	{
		Run r = run("sh -c \"printf 'PING\\n' | " + connect + " -verify_ip 127.0.0.1 -cert " + d +
			    "/T2.pem -key " + d + "/T2.key\"");
		INFO(r.out);
		CHECK(r.status == 0);
		CHECK(contains(r.out, "PONG"));
		CHECK(server.peer_cns(1) == std::vector<std::string>{"T2"});
	}
	SECTION("checking the host name")
	{
		Run r = run("sh -c \"printf 'PING\\n' | " + connect + " -verify_hostname localhost -cert " +
			    d + "/T1.pem -key " + d + "/T1.key\"");
		INFO(r.out);
		CHECK(r.status == 0);
		CHECK(contains(r.out, "PONG"));
	}
	SECTION("s_client refuses a name the certificate does not have")
	{
		Run r = run("sh -c \"printf 'PING\\n' | " + connect + " -verify_hostname central.example -cert " +
			    d + "/T1.pem -key " + d + "/T1.key\"");
		INFO(r.out);
		CHECK(!contains(r.out, "PONG"));
		CHECK(contains(r.out, "hostname mismatch"));
	}
	SECTION("without a client certificate")
	{
		Run r = run("sh -c \"printf 'PING\\n' | " + connect + "\"");
		INFO(r.out);
		CHECK(!contains(r.out, "PONG"));
		auto errors = server.errors();
		REQUIRE(errors.size() == 1);
		INFO(errors[0]);
		CHECK(contains(errors[0], "tls: handshake with 127.0.0.1:"));
		CHECK(server.peer_cns(0).empty());
	}
	SECTION("with a server's certificate as its client certificate")
	{
		Run r = run("sh -c \"printf 'PING\\n' | " + connect + " -cert " + d + "/server.pem -key " +
			    d + "/server.key\"");
		INFO(r.out);
		CHECK(!contains(r.out, "PONG"));
		auto errors = server.errors();
		REQUIRE(errors.size() == 1);
		INFO(errors[0]);
		CHECK(contains(errors[0], "(client certificate: Usage does not match the extendedKeyUsage"));
	}
	SECTION("with a certificate from a foreign CA")
	{
		const std::string f = foreign_pki().dir;
		Run r = run("sh -c \"printf 'PING\\n' | " + connect + " -cert " + f + "/T1.pem -key " + f +
			    "/T1.key\"");
		INFO(r.out);
		CHECK(!contains(r.out, "PONG"));
		auto errors = server.errors();
		REQUIRE(errors.size() == 1);
		INFO(errors[0]);
		CHECK(contains(errors[0], "client certificate: The certificate is not correctly signed by the trusted CA"));
	}
}

TEST_CASE("interop: openssl verify accepts make_test_pki's certificates", "[interop]")
{
	SKIP_WITHOUT_OPENSSL();
	const std::string d = pki().dir;
	struct Row {
		std::string args;
		bool ok;
	};
	const Row rows[] = {
		{"-purpose sslserver -verify_hostname localhost " + d + "/server.pem", true},
		{"-purpose sslserver -verify_ip 127.0.0.1 " + d + "/server.pem", true},
		{"-purpose sslserver -verify_ip 127.0.0.2 " + d + "/server.pem", false},
		{"-purpose sslclient " + d + "/T1.pem", true},
		{"-purpose sslserver " + d + "/T1.pem", false},
		{"-purpose sslclient " + d + "/server.pem", false},
	};
	for (const Row &row : rows) {
		Run r = run("openssl verify -x509_strict -CAfile " + d + "/ca.pem " + row.args);
		INFO(row.args << "\n" << r.out);
		CHECK((r.status == 0) == row.ok);
	}
	Run text = run("openssl x509 -noout -text -in " + d + "/server.pem");
	INFO(text.out);
	CHECK(contains(text.out, "DNS:localhost, IP Address:127.0.0.1"));
	CHECK(contains(text.out, "TLS Web Server Authentication"));
	CHECK(contains(text.out, "ecdsa-with-SHA256"));
	CHECK(contains(text.out, "NIST CURVE: P-256"));
	Run ca = run("openssl x509 -noout -text -in " + d + "/ca.pem");
	CHECK(contains(ca.out, "CA:TRUE, pathlen:0"));
}
