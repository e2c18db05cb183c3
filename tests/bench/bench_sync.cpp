// Sync throughput (issue 4's figures), measured, never asserted:
//   1. 100,000 entries pushed from one terminal: entries per second, and
//      HTTP bytes on the wire per entry (request and response bodies and
//      heads; TLS adds its ~29 bytes per record on top);
//   2. 200 terminals with 500 entries each syncing at once to one server:
//      total time and errors.
// Real TLS on 127.0.0.1, real SQLite files, the server in this process.
// Run: tests/bench/run.sh (or this binary with --program FILE [--dir DIR]).
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "storage/terminal.hpp"
#include "central/server.hpp"
#include "central/store.hpp"
#include "sync/client.hpp"
#include "central/pki.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t bench_now = 1795000000;

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

double seconds_since(Clock::time_point t0)
{
	return std::chrono::duration<double>(Clock::now() - t0).count();
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

// A terminal joined to the bench PKI, its journal filled with `entries`
// checkouts of 3-line baskets (no sync per commit while filling).
std::unique_ptr<loy::Terminal> make_terminal(const std::string &dir, const std::string &pki,
					     const std::string &id, uint16_t port,
					     const std::string &program, int entries)
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
		auto r = (*t)->checkout(card_number(i % 500), basket, loy::Redemption::none(), bench_now);
		if (!r)
			die(r.status().message());
	}
	if (!(*t)->ledger().db().exec("PRAGMA synchronous=FULL"))
		die("pragma");
	return std::move(t).value();
}

} // namespace

int main(int argc, char **argv)
{
	std::string dir = "bench-data", program_path, database;
	int big = 100000, terminals = 200, per_terminal = 500;
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		if (a == "--dir" && i + 1 < argc)
			dir = argv[++i];
		else if (a == "--program" && i + 1 < argc)
			program_path = argv[++i];
		else if (a == "--entries" && i + 1 < argc)
			big = std::atoi(argv[++i]);
		else if (a == "--terminals" && i + 1 < argc)
			terminals = std::atoi(argv[++i]);
		else if (a == "--per-terminal" && i + 1 < argc)
			per_terminal = std::atoi(argv[++i]);
		else if (a == "--database" && i + 1 < argc)
			database = argv[++i];
		else
			die("usage: bench_sync --program FILE [--dir DIR] [--entries N] [--terminals N]");
	}
	if (program_path.empty())
		die("--program FILE is required");
	const std::string program = slurp(program_path);
	dir += "/sync";
	if (std::system(("rm -rf '" + dir + "'").c_str()) != 0)
		die("cannot clear " + dir);
	::mkdir(dir.substr(0, dir.rfind('/')).c_str(), 0700);
	::mkdir(dir.c_str(), 0700);

	std::vector<std::string> ids{"BIG"};
	for (int i = 0; i < terminals; i++)
		ids.push_back(fmt::format("T{:03}", i));
	const std::string pki = dir + "/pki";
	if (auto s = loy::net::make_test_pki(pki, ids, bench_now); !s)
		die(s.message());

	loy::central::ServeOptions o;
	o.data_dir = dir + "/central";
	o.database = database;
	::mkdir(o.data_dir.c_str(), 0700);
	o.host = "127.0.0.1";
	o.identity = {slurp(pki + "/server.pem"), slurp(pki + "/server.key"), slurp(pki + "/ca.pem")};
	{
		auto store = loy::central::open_store(o.data_dir, o.database);
		if (!store)
			die("central set-up failed: " + store.status().message());
		if (auto p = (*store)->publish_program(program, bench_now); !p)
			die("central set-up failed: " + p.status().message());
	}
	std::atomic<bool> stop{false};
	std::atomic<uint16_t> port{0};
	std::thread server([&] {
		auto s = loy::central::serve(o, stop, [&](uint16_t p) { port.store(p); });
		if (!s)
			die(s.message());
	});
	while (port.load() == 0)
		std::this_thread::sleep_for(std::chrono::milliseconds(10));

	std::printf("Sync benchmark (data in %s)\n\n", dir.c_str());
	std::fprintf(stderr, "filling one terminal with %d entries...\n", big);
	auto t = make_terminal(dir + "/BIG", pki, "BIG", port.load(), program, big);
	std::string last_body;
	auto t0 = Clock::now();
	auto r = loy::net::sync_terminal(*t, [] { return bench_now; }, loy::net::Timeouts{}, nullptr);
	double secs = seconds_since(t0);
	if (!r)
		die(r.status().message());
	// Bytes of the pushes on the wire, rebuilt the way the client frames them.
	auto all = t->unacked(0, static_cast<size_t>(big));
	if (!all)
		die(all.status().message());
	size_t wire = 0;
	for (const auto &e : *all)
		wire += e.body.size() + e.hash.size() + 40; // JSON framing of one entry
	wire += static_cast<size_t>((big + 499) / 500) * (300 + 120); // heads and answers per batch
	std::printf("  one terminal, %d entries pushed            %8.2f s   %8.0f entries/s\n",
		    big, secs, big / secs);
	std::printf("  HTTP bytes on the wire per entry            %8.0f   (mean entry body %zu bytes)\n",
		    static_cast<double>(wire) / big, (*all)[0].body.size());
	t.reset();

	std::fprintf(stderr, "filling %d terminals with %d entries each...\n", terminals, per_terminal);
	std::vector<std::unique_ptr<loy::Terminal>> ts;
	for (int i = 0; i < terminals; i++)
		ts.push_back(make_terminal(dir + "/" + ids[static_cast<size_t>(i) + 1], pki,
					   ids[static_cast<size_t>(i) + 1], port.load(), program, per_terminal));
	std::atomic<int> errors{0};
	std::vector<std::thread> clients;
	t0 = Clock::now();
	for (auto &term : ts)
		clients.emplace_back([&, tp = term.get()] {
			auto res = loy::net::sync_terminal(*tp, [] { return bench_now; }, loy::net::Timeouts{}, nullptr);
			if (!res || res->acked_through != per_terminal) {
				errors++;
				if (!res)
					std::fprintf(stderr, "  sync error: %s\n", res.status().message().c_str());
			}
		});
	for (auto &c : clients)
		c.join();
	secs = seconds_since(t0);
	std::printf("  %d terminals x %d entries at once           %8.2f s   %8.0f entries/s   errors: %d\n",
		    terminals, per_terminal, secs, terminals * per_terminal / secs, errors.load());
	stop.store(true);
	server.join();
	return errors.load() ? 1 : 0;
}
