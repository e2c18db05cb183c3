// Command-line conventions shared by the two programs (spec/cli.md):
// "--name value" options after a command, --json anywhere, one error line
// on stderr and with --json one error object on stdout, the exit code of
// the status's kind, inputs from a file or "-" for stdin. Program plumbing
// only: no rule lives here.
#pragma once

#include <signal.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <initializer_list>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/utf8.hpp"

namespace loy::cli {

using Json = nlohmann::ordered_json;

// Baskets and programs are small documents; a bound keeps a wrong path or a
// runaway pipe from filling memory.
inline constexpr size_t input_bytes_max = 4 << 20;

struct Args {
	std::string data_dir;
	std::string database; // loyalty-central only: --database URI
	bool json = false;
	std::vector<std::string> words;                 // command and positionals
	std::vector<std::pair<std::string, std::string>> opts; // --name value, in order
	std::string error;
};

// Options that take no value.
inline bool is_flag(const std::string &name)
{
	return name == "json" || name == "help" || name == "print-config";
}

inline Args parse_args(int argc, char **argv)
{
	Args a;
	// --json decides the shape of every error, even one in the arguments.
	for (int i = 1; i < argc; i++)
		if (std::strcmp(argv[i], "--json") == 0)
			a.json = true;
	for (int i = 1; i < argc; i++) {
		std::string s = argv[i];
		if (s.size() > 2 && s.compare(0, 2, "--") == 0) {
			std::string name = s.substr(2), value;
			auto eq = name.find('=');
			if (eq != std::string::npos) {
				value = name.substr(eq + 1);
				name = name.substr(0, eq);
			} else if (!is_flag(name)) {
				// A value never starts with "--": that is the next option.
				if (i + 1 >= argc || std::strncmp(argv[i + 1], "--", 2) == 0) {
					a.error = "--" + name + " needs a value";
					return a;
				}
				value = argv[++i];
			}
			if (name == "json")
				a.json = true;
			else if (name == "data-dir")
				a.data_dir = value;
			else if (name == "database")
				a.database = value;
			else
				a.opts.emplace_back(name, value);
		} else {
			a.words.push_back(s);
		}
	}
	return a;
}

// LOYALTY_CLOCK_OFFSET_S: both programs' wall clock runs this many seconds
// ahead of the system clock (behind when negative), for tests and demos of
// another day: receipts' time, pending points, expiry, the nightly sync
// and the centre's clock checks all follow it, while timers keep the
// monotonic clock. Certificates stay with the system clock (mbedTLS judges
// their validity at time(), and `pki init` issues them from it): they are
// about the real day, not a rehearsed one. Unset or empty: the system
// clock. A test suite sets one offset for every program it starts, so that
// they share one shifted timeline.
inline constexpr const char *clock_offset_env = "LOYALTY_CLOCK_OFFSET_S";
// A century either way reaches any day a test needs and keeps every
// timestamp within RFC 3339's four-digit years.
inline constexpr int64_t clock_offset_s_max = 100LL * 366 * 86400;

struct Cli {
	Args args;
	int64_t clock_offset_s = 0;

	// The programs' wall clock, seconds since the epoch.
	int64_t now_utc() const { return static_cast<int64_t>(std::time(nullptr)) + clock_offset_s; }

	// The one failure line on stderr and, with --json, the error object on
	// stdout, for the error `code` (its name in cli.md); returns the exit
	// code its kind gives, which the program says (the two programs map
	// their statuses each through their own API).
	int fail(const char *code, int exit_code, const std::string &message) const
	{
		// One line of UTF-8, whatever the message quotes (a newline in an
		// input, SQLite's integrity report, a byte that is not UTF-8).
		std::string line = loy::utf8_scrub(message);
		for (char &ch : line)
			if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f)
				ch = ' ';
		std::fprintf(stderr, "error: %s: %s\n", code, line.c_str());
		if (args.json) {
			Json err{{"error", {{"code", code}, {"message", line}}}};
			std::printf("%s\n", err.dump().c_str());
		}
		return exit_code;
	}
	int bad_args(const std::string &message) const { return fail("bad_argument", 2, message); }
	int internal(const std::string &message) const { return fail("internal", 1, message); }

	const std::string *opt(const char *name) const
	{
		const std::string *found = nullptr;
		for (const auto &o : args.opts)
			if (o.first == name)
				found = &o.second;
		return found;
	}
	std::vector<std::string> all(const char *name) const
	{
		std::vector<std::string> v;
		for (const auto &o : args.opts)
			if (o.first == name)
				v.push_back(o.second);
		return v;
	}
	// Refuses options the command does not take: a typo must not be ignored.
	bool only(std::initializer_list<const char *> allowed, std::string *bad) const
	{
		for (const auto &o : args.opts) {
			bool ok = false;
			for (const char *a : allowed)
				ok = ok || o.first == a;
			if (!ok) {
				*bad = "--" + o.first;
				return false;
			}
		}
		return true;
	}
};

// Reads at most input_bytes_max bytes: /dev/zero or an endless pipe is
// refused past the limit, in bounded memory.
inline bool read_input(const std::string &path, std::string *out, std::string *error)
{
	std::ifstream file;
	std::istream *in = &std::cin;
	if (path != "-") {
		file.open(path, std::ios::binary);
		if (!file) {
			*error = "cannot read " + path + ": " + std::strerror(errno);
			return false;
		}
		in = &file;
	}
	out->clear();
	char buf[1 << 16];
	while (out->size() <= input_bytes_max) {
		in->read(buf, sizeof buf);
		std::streamsize n = in->gcount();
		if (n <= 0)
			break;
		out->append(buf, static_cast<size_t>(n));
	}
	if (out->size() > input_bytes_max) {
		*error = (path == "-" ? std::string("standard input") : path) + " is larger than " +
			 std::to_string(input_bytes_max) + " bytes, the most a document may hold";
		out->clear();
		return false;
	}
	if (in->bad()) {
		*error = "cannot read " + (path == "-" ? std::string("standard input") : path) + ": a read failed";
		return false;
	}
	return true;
}

// A decimal integer written plainly: an optional '-' and digits, nothing
// else (no blanks, no '+', no 0x); false past 64 bits.
inline bool parse_i64(const std::string &s, int64_t *out)
{
	const char *p = s.c_str();
	const char *digits = *p == '-' ? p + 1 : p;
	if (*digits == '\0' || std::strspn(digits, "0123456789") != std::strlen(digits))
		return false;
	char *end = nullptr;
	errno = 0;
	long long v = std::strtoll(p, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

// A label and a value, aligned for a cashier's screen.
inline void print_line(const char *label, const std::string &value)
{
	std::printf("  %-22s %s\n", label, value.c_str());
}

// "argument 3 is not valid UTF-8: R-?": the bad bytes shown as '?'.
inline std::string fmt_arg_not_utf8(int i, const char *arg)
{
	std::string shown;
	for (const char *p = arg; *p && shown.size() < 40; p++)
		shown += *p >= 0x20 && *p < 0x7f ? *p : '?';
	return "argument " + std::to_string(i) + " is not valid UTF-8: " + shown;
}

// The checks every command line passes before its command runs: arguments
// parse, --help, a command, --data-dir (or, for a program that keeps its
// data in a database, --database), the clock offset. An exit code to
// return now, or -1 to go on.
inline int check_command_line(Cli &c, int argc, char **argv, const char *usage, bool takes_database = false)
{
	c.args = parse_args(argc, argv);
	for (int i = 1; i < argc; i++)
		if (!loy::utf8_valid(argv[i]))
			return c.bad_args(fmt_arg_not_utf8(i, argv[i]));
	if (!c.args.error.empty())
		return c.bad_args(c.args.error);
	if (const char *v = std::getenv(clock_offset_env); v && *v) {
		int64_t s = 0;
		if (!parse_i64(v, &s) || s < -clock_offset_s_max || s > clock_offset_s_max)
			return c.bad_args(std::string(clock_offset_env) + " must be whole seconds within ±" +
					  std::to_string(clock_offset_s_max) + ", got \"" + v + "\"");
		c.clock_offset_s = s;
	}
	for (const auto &o : c.args.opts)
		if (o.first == "help") {
			std::fputs(usage, stdout);
			return 0;
		}
	if (c.args.words.empty())
		return c.bad_args("no command given (--help lists them)");
	if (!takes_database && !c.args.database.empty())
		return c.bad_args("--database is an option of loyalty-central, not of this program");
	if (c.args.data_dir.empty() && c.args.database.empty())
		return c.bad_args(takes_database ? "--data-dir DIR or --database URI is required"
						 : "--data-dir DIR is required");
	return -1;
}

// Prints a result object for --json, or calls `human` to print it for a cashier.
template <class F> int print_result(const Cli &c, const Json &r, F &&human)
{
	if (c.args.json)
		std::printf("%s\n", r.dump().c_str());
	else
		human(r);
	return 0;
}

// A long-running command (serve, run) stops on SIGTERM or SIGINT: the flag
// is set and the program finishes what it has in hand. SIGPIPE is ignored:
// a peer that went away is an error value, not a death.
inline std::atomic<bool> stop_requested{false};

inline void on_stop_signal(int) { stop_requested.store(true); }

inline const std::atomic<bool> &stop_on_signals()
{
	struct sigaction sa {};
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, nullptr);
	sigaction(SIGINT, &sa, nullptr);
	signal(SIGPIPE, SIG_IGN);
	return stop_requested;
}

} // namespace loy::cli
