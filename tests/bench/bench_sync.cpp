// Sync throughput, measured, never asserted (issue 12's figures):
//   1. one terminal's N entries (100,000) pushed over TLS: entries per
//      second, and bytes per entry on the wire (TLS included, counted by
//      the balancer) and in each push encoding;
//   2. a chain's night: T terminals (2,000) of E entries (250) each, at
//      most C syncing at once, through S server processes (1, then 2) on
//      one database: aggregate entries per second, errors, 503s, and every
//      member's balance checked against what the tills recorded.
// Each scenario on the SQLite store, and on PostgreSQL when --database
// names a server. The servers are the real loyalty-central processes
// behind a TCP balancer in this process; the terminals are this process's
// threads, each its own ledger on disk.
// Run: tests/bench/run.sh (which starts PostgreSQL with fsync on).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/crypto.hpp"
#include "central/pki.hpp"
#include "central/sql.hpp"
#include "central/store.hpp"
#include "storage/terminal.hpp"
#include "sync/client.hpp"

extern char **environ;

namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t bench_now = 1795000000;
constexpr int cards = 500;

[[noreturn]] void die(const std::string &what)
{
	std::fprintf(stderr, "bench: %s\n", what.c_str());
	std::exit(1);
}

std::string slurp(const std::string &path)
{
	std::ifstream in(path, std::ios::binary);
	if (!in)
		die("cannot read " + path);
	std::stringstream ss;
	ss << in.rdbuf();
	return ss.str();
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void run(const std::string &cmd)
{
	if (std::system(cmd.c_str()) != 0)
		die("failed: " + cmd);
}

std::string card_number(int i)
{
	std::string d = fmt::format("6280{:011}", i);
	int sum = 0;
	for (size_t k = 0; k < d.size(); k++) {
		int x = d[d.size() - 1 - k] - '0';
		if (k % 2 == 0 && (x *= 2) > 9)
			x -= 9;
		sum += x;
	}
	return d + static_cast<char>('0' + (10 - sum % 10) % 10);
}

uint16_t free_port()
{
	int s = ::socket(AF_INET, SOCK_STREAM, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t n = sizeof a;
	if (::bind(s, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 ||
	    ::getsockname(s, reinterpret_cast<sockaddr *>(&a), &n) != 0)
		die("no free port");
	::close(s);
	return ntohs(a.sin_port);
}

int connect_to(uint16_t port)
{
	int s = ::socket(AF_INET, SOCK_STREAM, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	if (::connect(s, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
		::close(s);
		return -1;
	}
	return s;
}

// A TCP balancer in front of the servers, as a chain's would be: each
// connection to the next server in turn; the bytes both ways counted.
class Balancer {
public:
	// On `port` (the one the terminals were set up with), to `ups`.
	Balancer(uint16_t port, std::vector<uint16_t> ups) : ups_(std::move(ups))
	{
		fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
		int one = 1;
		::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		sockaddr_in a{};
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a.sin_port = htons(port);
		if (::bind(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 || ::listen(fd_, 4096) != 0)
			die("balancer: cannot listen");
		thread_ = std::thread([this] { loop(); });
	}
	~Balancer()
	{
		::shutdown(fd_, SHUT_RDWR);
		::close(fd_);
		thread_.join();
	}
	uint64_t bytes() const { return bytes_.load(); }
	void reset() { bytes_ = 0; }

private:
	void loop()
	{
		for (size_t k = 0;; k++) {
			int c = ::accept(fd_, nullptr, nullptr);
			if (c < 0)
				return;
			int u = connect_to(ups_[k % ups_.size()]);
			if (u < 0) {
				::close(c);
				continue;
			}
			// Bytes on as they come, as a TCP proxy's (HAProxy's, say): with
			// Nagle's delay here a batch's last segment waits for the
			// server's delayed ACK, 40 ms a push.
			int one = 1;
			::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			::setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			std::thread([this, c, u] { pump(c, u); }).detach();
		}
	}
	void pump(int c, int u)
	{
		std::thread back([this, c, u] { copy(u, c); });
		copy(c, u);
		back.join();
		::close(c);
		::close(u);
	}
	void copy(int from, int to)
	{
		char buf[65536];
		for (;;) {
			ssize_t n = ::read(from, buf, sizeof buf);
			if (n <= 0)
				break;
			bytes_ += static_cast<uint64_t>(n);
			for (ssize_t off = 0; off < n;) {
				ssize_t w = ::write(to, buf + off, static_cast<size_t>(n - off));
				if (w <= 0)
					goto done;
				off += w;
			}
		}
	done:
		::shutdown(to, SHUT_WR);
	}

	std::vector<uint16_t> ups_;
	int fd_ = -1;
	std::atomic<uint64_t> bytes_{0};
	std::thread thread_;
};

struct Options {
	std::string dir = "bench-data", program_path, database, central;
	int big = 100000, terminals = 2000, per_terminal = 250, concurrency = 48;
};

// A fresh place for one scenario's centre: a data dir and, on PostgreSQL,
// a database of its own on the server --database names.
struct Centre {
	std::string dir, database;
};

Centre new_centre(const Options &o, const std::string &kind, const std::string &name)
{
	Centre c{o.dir + "/" + name, ""};
	run(fmt::format("rm -rf '{}' && mkdir -p '{}'", c.dir, c.dir));
	if (kind == "postgresql") {
		auto admin = loy::central::sql::open_postgresql(o.database);
		if (!admin)
			die(admin.status().message());
		const std::string db = "bench_" + name;
		if (!(*admin)->exec("DROP DATABASE IF EXISTS " + db) || !(*admin)->exec("CREATE DATABASE " + db))
			die("cannot create database " + db);
		c.database = o.database.substr(0, o.database.rfind('/') + 1) + db;
	}
	return c;
}

// The chain's token key is the one the bench's PKI gave the terminals:
// put where the centre keeps it (store.hpp, token_key) before it makes one.
void adopt_token_key(const Centre &c, const std::string &pki)
{
	auto key = loy::crypto::read_key_file(pki + "/token.key");
	if (!key)
		die(key.status().message());
	if (c.database.empty()) {
		if (auto s = loy::crypto::write_key_file(c.dir + "/token.key", *key); !s)
			die(s.message());
		return;
	}
	auto store = loy::central::open_store(c.dir, c.database); // the schema
	if (!store)
		die(store.status().message());
	auto conn = loy::central::sql::open_postgresql(c.database);
	if (!conn || !(*conn)->exec("INSERT INTO meta (key, value) VALUES ('token_key', ?1)",
				    {loy::crypto::to_hex(key->data(), key->size())}))
		die("cannot set the token key");
}

// `count` loyalty-central serve processes on the centre, listening.
std::vector<pid_t> start_servers(const Options &o, const Centre &c, const std::string &pki,
				 const std::vector<uint16_t> &ports)
{
	std::vector<pid_t> pids;
	for (uint16_t port : ports) {
		std::vector<std::string> args{o.central, "--data-dir", c.dir};
		if (!c.database.empty())
			args.insert(args.end(), {"--database", c.database});
		args.insert(args.end(), {"serve", "--listen", fmt::format("127.0.0.1:{}", port), "--cert",
					 pki + "/server.pem", "--key", pki + "/server.key", "--client-ca", pki + "/ca.pem"});
		std::vector<char *> argv;
		for (auto &a : args)
			argv.push_back(a.data());
		argv.push_back(nullptr);
		// Each server's log in the centre's dir.
		posix_spawn_file_actions_t files;
		posix_spawn_file_actions_init(&files);
		const std::string log = fmt::format("{}/serve-{}.log", c.dir, port);
		posix_spawn_file_actions_addopen(&files, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
		pid_t pid = 0;
		const int rc = posix_spawn(&pid, o.central.c_str(), &files, nullptr, argv.data(), environ);
		posix_spawn_file_actions_destroy(&files);
		if (rc != 0)
			die("cannot start " + o.central);
		pids.push_back(pid);
	}
	for (uint16_t port : ports) {
		const auto t0 = Clock::now();
		int s = -1;
		while ((s = connect_to(port)) < 0) {
			if (seconds_since(t0) > 30)
				die(fmt::format("no server listening on {}", port));
			std::this_thread::sleep_for(std::chrono::milliseconds(20));
		}
		::close(s);
	}
	return pids;
}

void stop_servers(const std::vector<pid_t> &pids)
{
	for (pid_t p : pids)
		::kill(p, SIGTERM);
	for (pid_t p : pids)
		::waitpid(p, nullptr, 0);
}

// A terminal joined to the bench PKI, its journal filled with `entries`
// checkouts of 3-line baskets (no sync per commit while filling); what each
// card earned added to `earned`.
void make_terminal(const std::string &dir, const std::string &pki, const std::string &id, uint16_t port,
		   const std::string &program, int entries, std::map<int, int64_t> *earned)
{
	loy::TerminalSetup s;
	s.terminal_id = id;
	s.store = "S-" + std::to_string(std::hash<std::string>()(id) % 20);
	s.server = fmt::format("https://127.0.0.1:{}", port);
	s.ca = pki + "/ca.pem";
	s.cert = pki + "/" + id + ".pem";
	s.key = pki + "/" + id + ".key";
	s.token_key = pki + "/token.key";
	if (auto st = loy::Terminal::init(dir, s, bench_now); !st)
		die(st.message());
	auto t = loy::Terminal::open(dir);
	if (!t)
		die(t.status().message());
	if (auto r = (*t)->program_load(program, bench_now); !r)
		die(r.status().message());
	if (!(*t)->ledger().db().exec("PRAGMA synchronous=OFF"))
		die("pragma");
	for (int i = 0; i < entries; i++) {
		std::string basket = fmt::format(
			R"({{"receipt_id":"{}-{}","at":"2026-11-24T10:15:00+01:00","lines":[)"
			R"({{"sku":"COF-01","category":"coffee","qty":2,"unit_price":350}},)"
			R"({{"sku":"CRS-02","category":"pastry","qty":1,"unit_price":250}},)"
			R"({{"sku":"BEAN-1K","category":"beans","qty":1,"unit_price":1890}}]}})",
			id, i);
		const int card = (i * 7 + static_cast<int>(std::hash<std::string>()(id) % cards)) % cards;
		auto r = (*t)->checkout(card_number(card), basket, loy::Redemption::none(), bench_now);
		if (!r)
			die(r.status().message());
		(*earned)[card] += r->earned;
	}
	if (!(*t)->ledger().db().exec("PRAGMA synchronous=FULL"))
		die("pragma");
}

// Every card's balance at the centre against what the tills recorded.
int wrong_balances(const Centre &c, const std::map<int, int64_t> &earned)
{
	auto store = loy::central::open_store(c.dir, c.database);
	if (!store)
		die(store.status().message());
	int wrong = 0;
	for (const auto &[card, points] : earned) {
		auto b = (*store)->balance(card_number(card), bench_now);
		if (!b || b->member.balance != points)
			wrong++;
	}
	return wrong;
}

struct Outcome {
	double seconds = 0;
	int errors = 0, wrong = 0;
	int64_t busy = 0;
};

// One scenario of the chain's night: the template terminals copied, all
// synced, at most `concurrency` at a time, a 503's Retry-After honoured.
Outcome chain_night(const Options &o, const std::string &kind, int servers, const std::string &pki,
		    const std::string &program, const std::string &templates, uint16_t lb_port,
		    const std::vector<std::string> &ids, const std::map<int, int64_t> &earned)
{
	const std::string name = fmt::format("{}_{}servers", kind, servers);
	Centre c = new_centre(o, kind, name);
	std::vector<uint16_t> ports;
	for (int i = 0; i < servers; i++)
		ports.push_back(free_port());
	adopt_token_key(c, pki);
	{
		auto store = loy::central::open_store(c.dir, c.database);
		if (!store || !(*store)->publish_program(program, bench_now))
			die("central set-up failed");
	}
	auto pids = start_servers(o, c, pki, ports);
	Balancer lb(lb_port, ports);
	const std::string tdir = o.dir + "/terminals-" + name;
	run(fmt::format("rm -rf '{}' && cp -a '{}' '{}'", tdir, templates, tdir));
	std::vector<std::unique_ptr<loy::Terminal>> ts;
	for (const auto &id : ids) {
		auto t = loy::Terminal::open(tdir + "/" + id);
		if (!t)
			die(t.status().message());
		ts.push_back(std::move(t).value());
	}
	Outcome out;
	std::atomic<size_t> next{0};
	std::atomic<int> errors{0};
	std::atomic<int64_t> busy{0};
	std::mutex log;
	auto t0 = Clock::now();
	std::vector<std::thread> pool;
	for (int w = 0; w < o.concurrency; w++)
		pool.emplace_back([&] {
			for (size_t i; (i = next++) < ts.size();) {
				for (;;) {
					int64_t wait_ms = 0;
					auto r = loy::net::sync_terminal(*ts[i], [] { return bench_now; }, loy::net::Timeouts{},
									 nullptr, &wait_ms);
					if (r && r->acked_through == o.per_terminal)
						break;
					if (!r && wait_ms > 0) {
						busy++;
						std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
						continue;
					}
					errors++;
					std::lock_guard<std::mutex> g(log);
					std::fprintf(stderr, "  sync error: %s\n",
						     r ? "not everything acknowledged" : r.status().message().c_str());
					break;
				}
			}
		});
	for (auto &th : pool)
		th.join();
	out.seconds = seconds_since(t0);
	out.errors = errors.load();
	out.busy = busy.load();
	stop_servers(pids);
	out.wrong = wrong_balances(c, earned);
	run(fmt::format("rm -rf '{}'", tdir));
	return out;
}

} // namespace

int main(int argc, char **argv)
{
	Options o;
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		auto next = [&]() -> std::string {
			if (i + 1 >= argc)
				die(a + " needs a value");
			return argv[++i];
		};
		if (a == "--dir")
			o.dir = next();
		else if (a == "--program")
			o.program_path = next();
		else if (a == "--entries")
			o.big = std::stoi(next());
		else if (a == "--terminals")
			o.terminals = std::stoi(next());
		else if (a == "--per-terminal")
			o.per_terminal = std::stoi(next());
		else if (a == "--concurrency")
			o.concurrency = std::stoi(next());
		else if (a == "--database")
			o.database = next();
		else if (a == "--central")
			o.central = next();
		else
			die("usage: bench_sync --program FILE --central PATH [--dir DIR] [--database URI] [--entries N] "
			    "[--terminals N] [--per-terminal N] [--concurrency N]");
	}
	if (o.program_path.empty() || o.central.empty())
		die("--program FILE and --central PATH (loyalty-central) are required");
	::signal(SIGPIPE, SIG_IGN);
	const std::string program = slurp(o.program_path);
	o.dir += "/sync";
	run(fmt::format("rm -rf '{}' && mkdir -p '{}'", o.dir, o.dir));
	std::vector<std::string> kinds{"sqlite"};
	if (!o.database.empty())
		kinds.push_back("postgresql");

	std::vector<std::string> ids;
	for (int i = 0; i < o.terminals; i++)
		ids.push_back(fmt::format("T{:04}", i));
	std::vector<std::string> all = ids;
	all.push_back("BIG");
	const std::string pki = o.dir + "/pki";
	std::fprintf(stderr, "issuing %zu terminal certificates...\n", all.size());
	// Issued from the real time, as test_till's: mbedTLS judges a
	// certificate at time(). Nothing measured depends on the day (the
	// entries and the centre run on bench_now).
	if (auto s = loy::net::make_test_pki(pki, all, static_cast<int64_t>(std::time(nullptr))); !s)
		die(s.message());

	std::setvbuf(stdout, nullptr, _IOLBF, 0); // figures as they come
	std::printf("Sync benchmark (data in %s; %s)\n\n", o.dir.c_str(),
		    o.database.empty() ? "SQLite only: no --database" : "SQLite and PostgreSQL");

	// 1. One terminal.
	std::fprintf(stderr, "filling one terminal with %d entries...\n", o.big);
	std::map<int, int64_t> big_earned;
	// Every terminal is set up with the balancer's address; each scenario
	// puts a balancer there in front of its servers.
	const uint16_t lb_port = free_port();
	make_terminal(o.dir + "/BIG-template", pki, "BIG", lb_port, program, o.big, &big_earned);
	std::map<std::string, double> one;
	for (const auto &kind : kinds) {
		Centre c = new_centre(o, kind, kind + "_one");
		adopt_token_key(c, pki);
		{
			auto store = loy::central::open_store(c.dir, c.database);
			if (!store || !(*store)->publish_program(program, bench_now))
				die("central set-up failed");
		}
		const uint16_t port = free_port();
		auto pids = start_servers(o, c, pki, {port});
		Balancer lb(lb_port, {port});
		run(fmt::format("rm -rf '{0}/BIG' && cp -a '{0}/BIG-template' '{0}/BIG'", o.dir));
		auto t = loy::Terminal::open(o.dir + "/BIG");
		if (!t)
			die(t.status().message());
		lb.reset();
		auto t0 = Clock::now();
		auto r = loy::net::sync_terminal(**t, [] { return bench_now; }, loy::net::Timeouts{}, nullptr);
		const double secs = seconds_since(t0);
		if (!r || r->acked_through != o.big)
			die("one terminal's sync failed: " + (r ? std::string("not all acknowledged") : r.status().message()));
		one[kind] = o.big / secs;
		const double wire = static_cast<double>(lb.bytes()) / o.big;
		stop_servers(pids);
		const int wrong = wrong_balances(c, big_earned);
		std::printf("  one terminal, %d entries, %-10s  %7.2f s  %8.0f entries/s  %6.0f bytes/entry on the "
			    "wire (TLS)  wrong balances: %d\n",
			    o.big, kind.c_str(), secs, one[kind], wire, wrong);
	}
	if (one.count("postgresql"))
		std::printf("  PostgreSQL / SQLite, one terminal:            %.2f\n", one["postgresql"] / one["sqlite"]);
	// What each encoding puts in an HTTP body, per entry, for these entries.
	{
		auto t = loy::Terminal::open(o.dir + "/BIG-template");
		auto all_entries = (*t)->unacked(0, 500);
		if (!all_entries)
			die(all_entries.status().message());
		double v1 = 0, v2 = 0;
		for (const auto &e : *all_entries) {
			v1 += static_cast<double>(
				nlohmann::json{{"seq", e.seq}, {"hash", e.hash}, {"body", e.body}}.dump().size() + 1);
			v2 += static_cast<double>(std::to_string(e.seq).size() + 1 + e.hash.size() + 1 + e.body.size() + 1);
		}
		const double n = static_cast<double>(all_entries->size());
		std::printf("  push body per entry: version 1 %.0f bytes, version 2 %.0f bytes (%.0f%%), entry text "
			    "%zu bytes\n",
			    v1 / n, v2 / n, 100.0 * (v2 - v1) / v1,
			    (*all_entries)[0].body.size());
	}

	// 2. A chain's night.
	std::fprintf(stderr, "filling %d terminals with %d entries each...\n", o.terminals, o.per_terminal);
	const std::string templates = o.dir + "/terminals-template";
	::mkdir(templates.c_str(), 0700);
	std::map<int, int64_t> earned;
	for (const auto &id : ids)
		make_terminal(templates + "/" + id, pki, id, lb_port, program, o.per_terminal, &earned);
	std::printf("\n  chain night: %d terminals x %d entries, at most %d syncing at once\n", o.terminals,
		    o.per_terminal, o.concurrency);
	std::map<std::string, double> rate;
	int failures = 0;
	for (const auto &kind : kinds)
		for (int servers : kind == "sqlite" ? std::vector<int>{1} : std::vector<int>{1, 2}) {
			Outcome r = chain_night(o, kind, servers, pki, program, templates, lb_port, ids, earned);
			const double per_s = static_cast<double>(o.terminals) * o.per_terminal / r.seconds;
			rate[fmt::format("{}{}", kind, servers)] = per_s;
			failures += r.errors + r.wrong;
			std::printf("  %-10s %d server%s  %7.2f s  %8.0f entries/s  errors: %d  503 answers: %lld  wrong "
				    "balances: %d\n",
				    kind.c_str(), servers, servers == 1 ? " " : "s", r.seconds, per_s, r.errors,
				    static_cast<long long>(r.busy), r.wrong);
		}
	if (rate.count("postgresql2")) {
		std::printf("  PostgreSQL 2 servers / 1 server:               %.2f\n", rate["postgresql2"] / rate["postgresql1"]);
		std::printf("  PostgreSQL 2 servers / SQLite 1 server:        %.2f\n", rate["postgresql2"] / rate["sqlite1"]);
	}
	return failures ? 1 : 0;
}
