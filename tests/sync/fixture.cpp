// Shared fixtures of the sync tests (see fixture.hpp).
#include "fixture.hpp"

#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace sync_test {

std::string read_file(const std::string &path)
{
	std::ifstream in(path, std::ios::binary);
	if (!in)
		throw std::runtime_error("cannot read " + path);
	std::ostringstream s;
	s << in.rdbuf();
	return s.str();
}

loy::net::ClientIdentity Pki::client(const std::string &terminal) const
{
	return {ca_pem, read_file(dir + "/" + terminal + ".pem"),
		read_file(dir + "/" + terminal + ".key")};
}

loy::net::ServerIdentity Pki::server() const
{
	return {read_file(dir + "/server.pem"), read_file(dir + "/server.key"), ca_pem};
}

namespace {

Pki make(const std::string &dir)
{
	auto st = loy::net::make_test_pki(dir, {"T1", "T2"}, static_cast<int64_t>(std::time(nullptr)));
	if (!st.is_ok())
		throw std::runtime_error("make_test_pki: " + st.message());
	Pki p;
	p.dir = dir;
	p.ca_pem = read_file(dir + "/ca.pem");
	p.ca_key = read_file(dir + "/ca.key");
	return p;
}

} // namespace

// Made once per process: the directory lives as long as the process.
const Pki &pki()
{
	static TempDir dir;
	static Pki p = make(dir.path() + "/pki");
	return p;
}

const Pki &foreign_pki()
{
	static TempDir dir;
	static Pki p = make(dir.path() + "/pki");
	return p;
}

loy::net::ServerIdentity server_identity(const loy::net::Issued &cert)
{
	return {cert.cert_pem, cert.key_pem, pki().ca_pem};
}

TestServer::TestServer(const loy::net::ServerIdentity &identity, Handler handler,
		       loy::net::Timeouts timeouts)
    : handler_(std::move(handler)), timeouts_(timeouts)
{
	auto s = loy::net::TlsServer::listen("127.0.0.1", 0, identity);
	if (!s) {
		listen_error_ = s.status().message();
		return;
	}
	server_ = std::move(s).value();
	port_ = server_->port();
	thread_ = std::thread([this] { run(); });
}

TestServer::~TestServer()
{
	stop_ = true;
	if (thread_.joinable())
		thread_.join();
}

void TestServer::run()
{
	// Short waits: the destructor's stop flag is seen within 50 ms.
	while (!stop_) {
		auto r = server_->accept(50, timeouts_);
		if (!r) {
			std::lock_guard<std::mutex> lock(mu_);
			errors_.push_back(r.status().message());
			cv_.notify_all();
			continue;
		}
		if (!*r)
			continue;
		auto stream = std::move(r).value();
		{
			std::lock_guard<std::mutex> lock(mu_);
			peer_cns_.push_back(stream->peer_cn());
			cv_.notify_all();
		}
		if (handler_)
			handler_(*stream);
	}
}

std::vector<std::string> TestServer::errors(size_t n)
{
	std::unique_lock<std::mutex> lock(mu_);
	cv_.wait_for(lock, std::chrono::seconds(5), [&] { return errors_.size() >= n; });
	return errors_;
}

std::vector<std::string> TestServer::peer_cns(size_t n)
{
	std::unique_lock<std::mutex> lock(mu_);
	cv_.wait_for(lock, std::chrono::seconds(5), [&] { return peer_cns_.size() >= n; });
	return peer_cns_;
}

} // namespace sync_test
