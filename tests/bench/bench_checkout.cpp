// Checkout latency on the terminal's ledger (issue 3's targets), measured,
// never asserted:
//   1. one durable checkout of a 20-line basket against one fdatasync of a
//      4 KiB write on the same file system (goal: p50 ratio ≤ 1.5);
//   2. checkout latency with 10 thousand against 1 million journal entries
//      (goal: ratio ≤ 1.3: nothing scans the journal).
// Run: tests/bench/run.sh (or this binary with --dir DIR [--large N]).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/timeutil.hpp"
#include "storage/terminal.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// Enough samples for a stable p99 without making the run long.
constexpr int sync_samples = 300;
constexpr int checkout_samples = 300;
constexpr int members = 2000;

struct Stats {
	double p50_us, p99_us, mean_us;
};

Stats stats(std::vector<double> v)
{
	std::sort(v.begin(), v.end());
	double sum = 0;
	for (double x : v)
		sum += x;
	auto at = [&](double q) { return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))]; };
	return {at(0.50), at(0.99), sum / static_cast<double>(v.size())};
}

double us_since(Clock::time_point t0)
{
	return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

[[noreturn]] void die(const std::string &what)
{
	std::fprintf(stderr, "bench: %s\n", what.c_str());
	std::exit(1);
}

Stats measure_fdatasync(const std::string &dir)
{
	std::string path = dir + "/fdatasync.probe";
	int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		die("cannot create " + path);
	std::vector<char> block(4096, 'x');
	std::vector<double> t;
	for (int i = 0; i < sync_samples; i++) {
		auto t0 = Clock::now();
		if (::pwrite(fd, block.data(), block.size(), static_cast<off_t>(i % 64) * 4096) < 0 ||
		    ::fdatasync(fd) != 0)
			die("write/fdatasync failed");
		t.push_back(us_since(t0));
	}
	::close(fd);
	::unlink(path.c_str());
	return stats(t);
}

std::string card_number(int i)
{
	// 15 digits from i, then the Luhn check digit.
	std::string d = fmt::format("6280{:011}", i);
	int sum = 0;
	for (size_t k = 0; k < d.size(); k++) {
		int x = d[d.size() - 1 - k] - '0';
		if (k % 2 == 0) {
			x *= 2;
			if (x > 9)
				x -= 9;
		}
		sum += x;
	}
	return d + static_cast<char>('0' + (10 - sum % 10) % 10);
}

// Receipt n is dated so that each member shops about once a day, as a
// store's regulars do: a ledger of a million entries spans about 500 days.
std::string basket(int64_t n, int lines)
{
	loy::Timestamp at;
	at.utc_s = 1735722000 + (n / members) * 86400 + (n % members) * 20; // from 2025-01-01 09:00Z
	at.offset_s = 3600;
	std::string s = fmt::format(R"({{"receipt_id":"B-{}","at":"{}","lines":[)", n, loy::format_timestamp(at));
	for (int i = 0; i < lines; i++)
		s += fmt::format(R"({}{{"sku":"SKU-{}","category":"{}","qty":{},"unit_price":{},"discount":{}}})",
				 i ? "," : "", i, i % 3 ? "pastry" : "coffee", 1 + i % 3, 150 + 10 * i,
				 i % 5 ? 0 : 20);
	return s + "]}";
}

struct Bench {
	std::unique_ptr<loy::Terminal> t;
	int64_t next = 1;
	std::mt19937 rng{42};

	void checkout(int lines)
	{
		std::string card = card_number(static_cast<int>(rng() % members));
		auto r = t->checkout(card, basket(next++, lines), loy::Redemption::none(), 1795000000);
		if (!r)
			die("checkout: " + r.status().message());
	}
	Stats timed(int samples, int lines)
	{
		std::vector<double> v;
		for (int i = 0; i < samples; i++) {
			auto t0 = Clock::now();
			checkout(lines);
			v.push_back(us_since(t0));
		}
		return stats(v);
	}
	// Fills the journal fast: no sync per commit. Only for building the
	// large ledger; every timed checkout runs with synchronous=FULL.
	void fill_to(int64_t entries)
	{
		if (!t->ledger().db().exec("PRAGMA synchronous=OFF").is_ok())
			die("pragma");
		auto t0 = Clock::now();
		int64_t start = next;
		while (next <= entries) {
			checkout(3);
			if (next % 100000 == 0)
				std::fprintf(stderr, "  ... %lld entries (%.0f/s)\n", static_cast<long long>(next),
					     static_cast<double>(next - start) / (us_since(t0) / 1e6));
		}
		if (!t->ledger().db().exec("PRAGMA synchronous=FULL").is_ok() ||
		    !t->ledger().db().exec("PRAGMA wal_checkpoint(TRUNCATE)").is_ok())
			die("pragma");
	}
};

Bench open_terminal(const std::string &dir, const std::string &program)
{
	std::string cmd = "rm -rf '" + dir + "'";
	if (std::system(cmd.c_str()) != 0)
		die("cannot clear " + dir);
	loy::TerminalSetup s;
	s.terminal_id = "BENCH";
	s.store = "S1";
	if (auto st = loy::Terminal::init(dir, s, 1795000000); !st)
		die(st.message());
	auto t = loy::Terminal::open(dir);
	if (!t)
		die(t.status().message());
	Bench b;
	b.t = std::move(t).value();
	if (auto r = b.t->program_load(program, 1795000000); !r)
		die(r.status().message());
	return b;
}

void row(const char *what, const Stats &s)
{
	std::printf("  %-44s p50 %8.1f us   p99 %8.1f us   mean %8.1f us\n", what, s.p50_us, s.p99_us,
		    s.mean_us);
}

} // namespace

int main(int argc, char **argv)
{
	std::string dir = "bench-data", program_path;
	int64_t large = 1000000, small = 10000;
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		if (a == "--dir" && i + 1 < argc)
			dir = argv[++i];
		else if (a == "--large" && i + 1 < argc)
			large = std::atoll(argv[++i]);
		else if (a == "--program" && i + 1 < argc)
			program_path = argv[++i];
		else
			die("usage: bench_checkout --program FILE [--dir DIR] [--large N]");
	}
	if (program_path.empty())
		die("--program FILE is required");
	std::ifstream in(program_path);
	std::stringstream ss;
	ss << in.rdbuf();
	const std::string program = ss.str();
	::mkdir(dir.c_str(), 0700);

	std::printf("Checkout benchmark (data in %s)\n\n", dir.c_str());
	Stats sync = measure_fdatasync(dir);
	row("fdatasync of 4 KiB, same file system", sync);

	Bench b = open_terminal(dir + "/ledger-a", program);
	b.fill_to(1000); // warm: statements prepared, pages cached
	Stats co = b.timed(checkout_samples, 20);
	row("checkout, 20-line basket, durable commit", co);
	std::printf("  ratio checkout / fdatasync (p50)             %.2f   (goal <= 1.5)\n\n",
		    co.p50_us / sync.p50_us);

	// Each size with a fresh fdatasync figure beside it: the cost of a sync
	// on a virtual disk drifts over minutes, and the ratio must not.
	b.fill_to(small);
	Stats sync_small = measure_fdatasync(dir);
	Stats at_small = b.timed(checkout_samples, 20);
	row(fmt::format("checkout at {} entries", small).c_str(), at_small);
	row("  fdatasync at the same time", sync_small);
	std::fprintf(stderr, "filling the journal to %lld entries...\n", static_cast<long long>(large));
	b.fill_to(large);
	Stats sync_large = measure_fdatasync(dir);
	Stats at_large = b.timed(checkout_samples, 20);
	row(fmt::format("checkout at {} entries", large).c_str(), at_large);
	row("  fdatasync at the same time", sync_large);
	std::printf("  ratio large / small (p50)                    %.2f   (goal <= 1.3)\n",
		    at_large.p50_us / at_small.p50_us);
	std::printf("  ratio large / small, each over its fdatasync %.2f\n",
		    (at_large.p50_us / sync_large.p50_us) / (at_small.p50_us / sync_small.p50_us));
	struct stat st;
	if (::stat((dir + "/ledger-a/ledger.db").c_str(), &st) == 0)
		std::printf("  ledger file at %lld entries: %.1f MiB (%.0f bytes/entry)\n",
			    static_cast<long long>(b.next - 1), static_cast<double>(st.st_size) / (1 << 20),
			    static_cast<double>(st.st_size) / static_cast<double>(b.next - 1));
	return 0;
}
