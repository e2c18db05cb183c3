// Checkout latency while a sync runs (the till's promise in firmware/till.hpp:
// "a checkout never waits for the network"), measured, never asserted:
//   1. baseline: durable checkouts of 20-line baskets, no sync running;
//   2. during a sync that pushes a backlog of unacknowledged entries in
//      batches of 500 to a real central server (TLS on 127.0.0.1, in this
//      process), then pulls and records the result;
//   3. during a sync that hangs in its TLS handshake on a server that accepts
//      TCP and never answers, until its io time-out.
// One terminal with two handles on its data dir, as the till has them: the
// loop's (checkouts, on this thread) and the syncer's (on its own thread).
// Run: tests/bench/run.sh (or this binary with --program FILE [--dir DIR] [--backlog N]).
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <loyalty/loyalty.h>

#include "base/timeutil.hpp"
#include "storage/terminal.hpp"
#include "central/server.hpp"
#include "central/store.hpp"
#include "central/pki.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// The ledger's clock: fixed, so that the program's campaign dates and the
// receipts' days do not depend on when the bench runs.
constexpr int64_t bench_now = 1795000000;
// Enough samples for a p99 that is not the maximum.
constexpr int baseline_samples = 500;
constexpr int fdatasync_samples = 300;
// Untimed checkouts first: statements prepared, pages cached.
constexpr int warm_samples = 50;
constexpr int members = 2000;
constexpr int basket_lines = 20;
// Short, so the hanging sync ends in seconds; the till's default is 60 s,
// which only makes case 3 longer, not different.
constexpr int hang_connect_ms = 1000;
constexpr int hang_io_ms = 3000;
// How often the mute server's accept loop looks at its stop flag.
constexpr int mute_poll_ms = 100;

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

std::string card_number(int i)
{
	// 15 digits from i, then the Luhn check digit.
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

// Receipt n, 20 lines as bench_checkout.cpp builds them, dated in the days
// before bench_now: a receipt every 5 s of the shop's day.
std::string basket(int64_t n)
{
	loy::Timestamp at;
	at.utc_s = bench_now - 3 * 86400 + n * 5;
	at.offset_s = 3600;
	std::string s = fmt::format(R"({{"receipt_id":"TILL-{}","at":"{}","lines":[)", n, loy::format_timestamp(at));
	for (int i = 0; i < basket_lines; i++)
		s += fmt::format(R"({}{{"sku":"SKU-{}","category":"{}","qty":{},"unit_price":{},"discount":{}}})",
				 i ? "," : "", i, i % 3 ? "pastry" : "coffee", 1 + i % 3, 150 + 10 * i,
				 i % 5 ? 0 : 20);
	return s + "]}";
}

int64_t fixed_clock(void *) { return bench_now; }

// One checkout's interval, in ms since the bench started.
struct Sample {
	double start_ms, end_ms;
	bool failed = false;
	double ms() const { return end_ms - start_ms; }
};

struct Stats {
	size_t n = 0, failed = 0;
	double p50 = 0, p90 = 0, p99 = 0, max = 0;
};

Stats stats(const std::vector<Sample> &samples)
{
	std::vector<double> v;
	Stats r;
	for (const auto &s : samples) {
		v.push_back(s.ms());
		r.failed += s.failed;
	}
	r.n = v.size();
	if (v.empty())
		return r;
	std::sort(v.begin(), v.end());
	auto at = [&](double q) { return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))]; };
	r.p50 = at(0.50);
	r.p90 = at(0.90);
	r.p99 = at(0.99);
	r.max = v.back();
	return r;
}

void row(const std::string &what, const Stats &s)
{
	std::printf("  %-34s n %5zu   p50 %7.2f   p90 %7.2f   p99 %7.2f   max %8.2f ms", what.c_str(), s.n,
		    s.p50, s.p90, s.p99, s.max);
	// A failed checkout is in the figures too: it is how long the cashier
	// waited before the till refused the sale.
	if (s.failed)
		std::printf("   FAILED %zu", s.failed);
	std::printf("\n");
}

void ratio_row(const Stats &s, const Stats &base)
{
	if (s.n == 0)
		return;
	std::printf("  %-34s           %7.2f   %7.2f   %7.2f   %8.2f x baseline\n", "", s.p50 / base.p50,
		    s.p90 / base.p90, s.p99 / base.p99, s.max / base.max);
}

// The till's two handles on one data dir, and the checkouts of its loop.
struct Till {
	loy_terminal *main = make();
	loy_terminal *syncs = make();
	static loy_terminal *make()
	{
		loy_terminal *t = nullptr;
		(void)loy_terminal_new(&t);
		return t;
	}
	Clock::time_point t0 = Clock::now();
	int64_t next = 1;
	std::mt19937 rng{42};
	int failures = 0;
	std::string first_failure;

	~Till()
	{
		loy_terminal_free(main);
		loy_terminal_free(syncs);
	}
	Till() = default;
	Till(const Till &) = delete;
	Till &operator=(const Till &) = delete;

	double now_ms() const { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

	// A checkout as the till's loop makes one: the C API on the loop's
	// handle. A failure is counted, not fatal: a checkout that times out on
	// the ledger's lock during a sync is one of the things measured.
	Sample checkout()
	{
		const std::string card = card_number(static_cast<int>(rng() % members));
		const std::string b = basket(next++);
		Sample s;
		s.start_ms = now_ms();
		loy_status st = loy_terminal_checkout(main, card.c_str(), b.data(), b.size(), nullptr);
		s.end_ms = now_ms();
		s.failed = st != LOY_OK;
		if (s.failed && failures++ == 0)
			first_failure = fmt::format("{}: {}", loy_errstr(st), loy_terminal_errmsg(main));
		return s;
	}
	std::vector<Sample> timed(int samples)
	{
		std::vector<Sample> v;
		for (int i = 0; i < samples; i++)
			v.push_back(checkout());
		return v;
	}
};

// A sync on the syncer's handle, on its own thread, as the till's sync_loop
// runs one; the progress lines are stamped to find its phases afterwards.
struct SyncRun {
	loy_status st = LOY_OK;
	std::string message;
	double start_ms = 0, end_ms = 0;
	std::vector<std::pair<double, std::string>> steps;
	std::atomic<bool> done{false};
	std::thread thread;

	void start(Till &till)
	{
		thread = std::thread([this, &till] {
			start_ms = till.now_ms();
			struct Ctx {
				SyncRun *run;
				Till *till;
			} ctx{this, &till};
			st = loy_terminal_sync(
				till.syncs,
				[](const char *line, void *p) {
					auto *c = static_cast<Ctx *>(p);
					c->run->steps.emplace_back(c->till->now_ms(), line);
				},
				&ctx);
			message = st == LOY_OK ? loy_terminal_result_json(till.syncs) : loy_terminal_errmsg(till.syncs);
			end_ms = till.now_ms();
			done.store(true);
		});
	}
	// The loop's checkouts, back to back until the sync has returned.
	std::vector<Sample> checkouts_until_done(Till &till)
	{
		std::vector<Sample> v;
		while (!done.load())
			v.push_back(till.checkout());
		thread.join();
		return v;
	}
};

// A server that accepts TCP and never answers: the sync's TLS handshake
// waits on it until its io time-out.
struct MuteServer {
	int fd = -1;
	std::vector<int> conns;
	std::atomic<bool> stop{false};
	std::thread thread;

	void listen_on(uint16_t port)
	{
		fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			die("mute server: no socket");
		int one = 1;
		// The central server held this port a moment ago.
		::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		sockaddr_in a{};
		a.sin_family = AF_INET;
		a.sin_port = htons(port);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0)
			die(fmt::format("mute server: cannot listen on 127.0.0.1:{}", port));
		thread = std::thread([this] {
			while (!stop.load()) {
				pollfd p{fd, POLLIN, 0};
				if (::poll(&p, 1, mute_poll_ms) == 1) {
					int c = ::accept(fd, nullptr, nullptr);
					if (c >= 0)
						conns.push_back(c);
				}
			}
		});
	}
	~MuteServer()
	{
		stop.store(true);
		if (thread.joinable())
			thread.join();
		for (int c : conns)
			::close(c);
		if (fd >= 0)
			::close(fd);
	}
};

// Fills the journal with `entries` unacknowledged checkouts, fast: its own
// connection with no sync per commit (the C API keeps synchronous=FULL, and
// the backlog is not what is measured). The till's handles see them at once.
void fill_backlog(const std::string &dir, Till &till, int entries)
{
	auto t = loy::Terminal::open(dir);
	if (!t)
		die(t.status().message());
	if (!(*t)->ledger().db().exec("PRAGMA synchronous=OFF"))
		die("pragma");
	for (int i = 0; i < entries; i++) {
		const std::string card = card_number(static_cast<int>(till.rng() % members));
		auto r = (*t)->checkout(card, basket(till.next++), loy::Redemption::none(), bench_now);
		if (!r)
			die(r.status().message());
	}
	// Back to durable, and the WAL folded into the file, so that case 2 does
	// not pay for the fill's checkpoint.
	if (!(*t)->ledger().db().exec("PRAGMA synchronous=FULL") ||
	    !(*t)->ledger().db().exec("PRAGMA wal_checkpoint(TRUNCATE)"))
		die("pragma");
}

// The disk's own cost of a durable commit, for reading the figures: on a
// virtual disk it changes between runs by more than anything measured here.
Stats measure_fdatasync(const std::string &dir)
{
	const std::string path = dir + "/fdatasync.probe";
	int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		die("cannot create " + path);
	std::vector<char> block(4096, 'x');
	std::vector<Sample> v;
	const Clock::time_point t0 = Clock::now();
	auto ms = [&] { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); };
	for (int i = 0; i < fdatasync_samples; i++) {
		Sample s;
		s.start_ms = ms();
		if (::pwrite(fd, block.data(), block.size(), static_cast<off_t>(i % 64) * 4096) < 0 ||
		    ::fdatasync(fd) != 0)
			die("write/fdatasync failed");
		s.end_ms = ms();
		v.push_back(s);
	}
	::close(fd);
	::unlink(path.c_str());
	return stats(v);
}

void check(loy_terminal *t, loy_status st, const char *what)
{
	if (st != LOY_OK)
		die(fmt::format("{}: {}: {}", what, loy_errstr(st), loy_terminal_errmsg(t)));
}

} // namespace

int main(int argc, char **argv)
{
	std::string dir = "bench-data", program_path;
	int backlog = 20000;
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		if (a == "--dir" && i + 1 < argc)
			dir = argv[++i];
		else if (a == "--program" && i + 1 < argc)
			program_path = argv[++i];
		else if (a == "--backlog" && i + 1 < argc)
			backlog = std::atoi(argv[++i]);
		else
			die("usage: bench_till --program FILE [--dir DIR] [--backlog N]");
	}
	if (program_path.empty())
		die("--program FILE is required");
	const std::string program = slurp(program_path);
	::mkdir(dir.c_str(), 0700);
	dir += "/till";
	if (std::system(("rm -rf '" + dir + "'").c_str()) != 0)
		die("cannot clear " + dir);
	::mkdir(dir.c_str(), 0700);

	// TLS checks certificates against the system's clock, not the ledger's.
	const std::string pki = dir + "/pki";
	if (auto s = loy::net::make_test_pki(pki, {"TILL"}, static_cast<int64_t>(std::time(nullptr))); !s)
		die(s.message());
	loy::central::ServeOptions o;
	o.data_dir = dir + "/central";
	::mkdir(o.data_dir.c_str(), 0700);
	o.host = "127.0.0.1";
	o.identity = {slurp(pki + "/server.pem"), slurp(pki + "/server.key"), slurp(pki + "/ca.pem")};
	{
		auto store = loy::central::open_store(o.data_dir);
		if (!store || !(*store)->publish_program(program, bench_now))
			die("central set-up failed");
	}
	std::atomic<bool> stop{false};
	std::atomic<uint16_t> port{0};
	std::thread server([&] {
		auto s = loy::central::serve(o, stop, [&](uint16_t p, uint16_t) { port.store(p); });
		if (!s)
			die(s.message());
	});
	while (port.load() == 0)
		std::this_thread::sleep_for(std::chrono::milliseconds(10));

	Till till;
	if (!till.main || !till.syncs)
		die("out of memory");
	const std::string ledger = dir + "/terminal";
	const std::string server_url = fmt::format("https://127.0.0.1:{}", port.load());
	const std::string ca = pki + "/ca.pem", cert = pki + "/TILL.pem", key = pki + "/TILL.key",
			  token_key = pki + "/token.key";
	loy_terminal_setup setup = LOY_INIT(loy_terminal_setup);
	setup.terminal_id = "TILL";
	setup.store = "S1";
	setup.server = server_url.c_str();
	setup.ca = ca.c_str();
	setup.cert = cert.c_str();
	setup.key = key.c_str();
	setup.token_key = token_key.c_str();
	loy_terminal_set_clock(till.main, fixed_clock, nullptr);
	loy_terminal_set_clock(till.syncs, fixed_clock, nullptr);
	check(till.main, loy_terminal_init(till.main, ledger.c_str(), &setup), "init");
	check(till.main, loy_terminal_program_load(till.main, program.data(), program.size()), "program");
	check(till.syncs, loy_terminal_open(till.syncs, ledger.c_str()), "open the sync handle");

	std::printf("Checkout latency during a sync (data in %s)\n", dir.c_str());
	std::printf("  One terminal, two handles on its ledger as firmware/till.cpp has them:\n"
		    "  checkouts of %d-line baskets on this thread, back to back, each a durable\n"
		    "  commit (synchronous=FULL); a sync on another thread. Per case: checkouts\n"
		    "  timed (n), p50/p90/p99/max in ms, and each over the baseline's. Row 0 is\n"
		    "  the disk alone, which changes from run to run. The central server runs in\n"
		    "  this process, on the same disk and CPUs.\n\n",
		    basket_lines);

	std::fprintf(stderr, "filling the journal with %d unacknowledged entries...\n", backlog);
	fill_backlog(ledger, till, backlog);
	row("0. fdatasync of 4 KiB, same disk", measure_fdatasync(dir));
	till.timed(warm_samples);

	// 1. No sync.
	const Stats base = stats(till.timed(baseline_samples));
	row("1. baseline, no sync", base);

	// 2. A sync pushing the backlog, recording the answer.
	SyncRun push;
	push.start(till);
	const std::vector<Sample> during = push.checkouts_until_done(till);
	const Stats during_stats = stats(during);
	row(fmt::format("2. during a push of {}", backlog), during_stats);
	ratio_row(during_stats, base);
	const double sync_ms = push.end_ms - push.start_ms;
	if (push.st != LOY_OK) {
		std::printf("     the sync failed after %.0f ms: %s: %s\n", sync_ms, loy_errstr(push.st),
			    push.message.c_str());
	} else {
		// Phases from the progress lines: handshake until the first push is
		// answered, pushes, pulls, then the session's close and record_sync's
		// transaction until the call returns.
		double first_push = push.start_ms, last_push = push.start_ms, last_pull = push.start_ms;
		for (const auto &[at, line] : push.steps) {
			if (line.rfind("pushed", 0) == 0) {
				if (first_push == push.start_ms)
					first_push = at;
				last_push = at;
			}
			last_pull = at;
		}
		std::printf("     sync %s in %.0f ms, %zu checkouts meanwhile\n", push.message.c_str(), sync_ms,
			    during.size());
		std::printf("     phases: handshake + first batch %.0f ms, other batches %.0f ms, pull %.0f ms,\n"
			    "     close + record %.0f ms\n",
			    first_push - push.start_ms, last_push - first_push, last_pull - last_push,
			    push.end_ms - last_pull);
		std::vector<Sample> in_record, before_record;
		for (const auto &s : during)
			(s.end_ms > last_pull ? in_record : before_record).push_back(s);
		row("   while pushing and pulling", stats(before_record));
		ratio_row(stats(before_record), base);
		row("   overlapping close + record", stats(in_record));
		ratio_row(stats(in_record), base);
		// The checkouts that waited: far beyond anything the baseline saw.
		// Those before the first of them ran while the sync had not yet
		// taken the ledger's write lock.
		const double slow_ms = 2 * base.max;
		size_t normal_first = 0;
		while (normal_first < in_record.size() && in_record[normal_first].ms() <= slow_ms)
			normal_first++;
		if (normal_first == in_record.size()) {
			std::printf("     no checkout in close + record took over %.0f ms (2x the baseline's max)\n", slow_ms);
		} else {
			std::printf("     in close + record, %zu checkouts as usual for its first %.0f ms; then, over %.0f ms:\n",
				    normal_first, in_record[normal_first].start_ms - last_pull, slow_ms);
			for (size_t i = normal_first; i < in_record.size(); i++)
				if (in_record[i].ms() > slow_ms)
					std::printf("       one took %.0f ms, from %.0f ms into close + record to %+.0f ms after the sync returned%s\n",
						    in_record[i].ms(), in_record[i].start_ms - last_pull,
						    in_record[i].end_ms - push.end_ms, in_record[i].failed ? ", FAILED" : "");
		}
	}

	// 3. A sync hanging in its handshake: the central server goes, a mute
	// one takes its port (the terminal's server is in its settings).
	stop.store(true);
	server.join();
	{
		MuteServer mute;
		mute.listen_on(port.load());
		loy_terminal_set_sync_timeouts(till.syncs, hang_connect_ms, hang_io_ms);
		SyncRun hang;
		hang.start(till);
		const std::vector<Sample> hung = hang.checkouts_until_done(till);
		const Stats hung_stats = stats(hung);
		row("3. during a sync hung on TLS", hung_stats);
		ratio_row(hung_stats, base);
		std::printf("     sync returned %s after %.0f ms (io time-out %d ms): %s\n", loy_errstr(hang.st),
			    hang.end_ms - hang.start_ms, hang_io_ms, hang.message.c_str());
	}

	// The disk's sync cost drifts over minutes: a second baseline shows how
	// much of the ratios above is drift.
	const Stats again = stats(till.timed(baseline_samples));
	row("4. baseline again, no sync", again);
	ratio_row(again, base);
	if (till.failures)
		std::printf("  checkouts that failed: %d; the first: %s\n", till.failures, till.first_failure.c_str());

	loy_terminal_free(till.main);
	loy_terminal_free(till.syncs);
	till.main = till.syncs = nullptr;
	if (std::system(("rm -rf '" + dir + "'").c_str()) != 0)
		die("cannot remove " + dir);
	return 0;
}
