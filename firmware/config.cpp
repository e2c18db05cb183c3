// The configuration file: one table of keys drives the parser, the checks
// between keys and the formatter, so that a key cannot be parsed without
// being written back, nor documented without being parsed.
#include "firmware/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <utility>

#include "base/utf8.hpp"

namespace loy::fw {

const char *type_name(ReaderType t) noexcept
{
	switch (t) {
	case ReaderType::none: return "none";
	case ReaderType::evdev: return "evdev";
	case ReaderType::serial: return "serial";
	case ReaderType::sim: return "sim";
	}
	return "?";
}

const char *type_name(PrinterType t) noexcept
{
	switch (t) {
	case PrinterType::standard_output: return "stdout";
	case PrinterType::file: return "file";
	case PrinterType::none: return "none";
	case PrinterType::sim: return "sim";
	}
	return "?";
}

const char *type_name(LinkType t) noexcept
{
	switch (t) {
	case LinkType::kernel: return "kernel";
	case LinkType::up: return "up";
	case LinkType::sim: return "sim";
	}
	return "?";
}

const char *type_name(ClockType t) noexcept
{
	switch (t) {
	case ClockType::system: return "system";
	case ClockType::sim: return "sim";
	}
	return "?";
}

bool operator==(const ReaderConfig &a, const ReaderConfig &b) noexcept
{
	return a.type == b.type && a.device == b.device && a.grab == b.grab && a.baud == b.baud;
}

bool operator==(const PrinterConfig &a, const PrinterConfig &b) noexcept
{
	return a.type == b.type && a.path == b.path && a.fsync == b.fsync;
}

bool operator==(const LinkConfig &a, const LinkConfig &b) noexcept
{
	return a.type == b.type && a.interface == b.interface;
}

bool operator==(const ClockConfig &a, const ClockConfig &b) noexcept
{
	if (a.type != b.type || a.speed != b.speed || a.start.has_value() != b.start.has_value())
		return false;
	return !a.start || (a.start->utc_s == b.start->utc_s && a.start->offset_s == b.start->offset_s);
}

bool operator==(const PosConfig &a, const PosConfig &b) noexcept
{
	return a.socket == b.socket && a.mode == b.mode;
}

bool operator==(const SyncConfig &a, const SyncConfig &b) noexcept
{
	const loy_schedule_config &x = a.schedule, &y = b.schedule;
	return x.nightly_minute == y.nightly_minute && a.nightly_spread_ms == b.nightly_spread_ms &&
	       x.after_link_up_ms == y.after_link_up_ms && x.retry_min_ms == y.retry_min_ms &&
	       x.retry_max_ms == y.retry_max_ms && x.jitter_pct == y.jitter_pct && x.interval_ms == y.interval_ms &&
	       a.connect_timeout_ms == b.connect_timeout_ms && a.io_timeout_ms == b.io_timeout_ms;
}

bool operator==(const DisplayConfig &a, const DisplayConfig &b) noexcept
{
	return a.width == b.width;
}

bool operator==(const TerminalConfig &a, const TerminalConfig &b) noexcept
{
	return a.reader == b.reader && a.printer == b.printer && a.link == b.link &&
	       a.clock == b.clock && a.pos == b.pos && a.sync == b.sync && a.display == b.display;
}

namespace {

// Limits of single keys. Each is a judgement, written here with its reason.
//
// A retry more often than once a second hammers a server that is down for
// every terminal of a store at once.
constexpr int64_t retry_ms_min = 1'000;
// A periodic sync is a TLS handshake and a transaction on the server: more
// often than once a minute per terminal loads it for nothing.
constexpr int64_t interval_ms_min = 60'000;
// The range LOYALTY_SYNC_TIMEOUT_MS takes on the command line.
constexpr int64_t timeout_ms_max = 600'000;
// The nightly spread: whole minutes, at most six hours (a window longer than
// that is a second schedule, not a spread).
constexpr int64_t nightly_spread_ms_max = 6 * 3600'000;
constexpr int jitter_pct_max = 50;
constexpr int speed_max = 100'000;
constexpr int width_min = 24;
constexpr int width_max = 80;
// An error message quotes at most this much of a value.
constexpr size_t shown_bytes_max = 60;

constexpr const char *duration_hint = "(use 500ms, 30s, 10m, 2h)";

// A value as an error message quotes it: as written, cut short when long
// (at a character boundary, so the message stays UTF-8).
std::string shown(std::string_view v)
{
	if (v.size() <= shown_bytes_max)
		return "\"" + std::string(v) + "\"";
	return "\"" + std::string(v.substr(0, utf8_prefix(v, shown_bytes_max))) + "...\"";
}

// A value as the file writes it when it is free text.
std::string quoted(std::string_view v)
{
	std::string out = "\"";
	for (char ch : v) {
		if (ch == '"' || ch == '\\')
			out += '\\';
		out += ch;
	}
	return out + "\"";
}

bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }
bool is_space(char ch) { return ch == ' ' || ch == '\t'; }

std::string_view trim(std::string_view s)
{
	while (!s.empty() && is_space(s.front()))
		s.remove_prefix(1);
	while (!s.empty() && is_space(s.back()))
		s.remove_suffix(1);
	return s;
}

// Decimal digits only (no sign, no space); a value past `cap` saturates at
// cap + 1, so that a hundred digits are "too large" rather than wrapped.
bool parse_uint(std::string_view s, int64_t cap, int64_t *out)
{
	if (s.empty())
		return false;
	int64_t v = 0;
	for (char ch : s) {
		if (!is_digit(ch))
			return false;
		if (v <= cap)
			v = v * 10 + (ch - '0');
	}
	*out = v > cap ? cap + 1 : v;
	return true;
}

std::string format_duration(int64_t ms)
{
	if (ms == 0)
		return "0s";
	if (ms % 3'600'000 == 0)
		return std::to_string(ms / 3'600'000) + "h";
	if (ms % 60'000 == 0)
		return std::to_string(ms / 60'000) + "m";
	if (ms % 1'000 == 0)
		return std::to_string(ms / 1'000) + "s";
	return std::to_string(ms) + "ms";
}

// "" or what is wrong with `v` as a duration between min_ms and max_ms.
std::string parse_duration(std::string_view v, int64_t min_ms, int64_t max_ms, int64_t *out)
{
	if (v.size() > 1 && v[0] == '-' && is_digit(v[1]))
		return shown(v) + " is negative";
	size_t digits = 0;
	while (digits < v.size() && is_digit(v[digits]))
		digits++;
	if (digits == 0)
		return shown(v) + " is not a duration " + duration_hint;
	std::string_view unit = v.substr(digits);
	if (unit.empty())
		return shown(v) + " has no unit " + duration_hint;
	int64_t unit_ms;
	if (unit == "ms")
		unit_ms = 1;
	else if (unit == "s")
		unit_ms = 1'000;
	else if (unit == "m")
		unit_ms = 60'000;
	else if (unit == "h")
		unit_ms = 3'600'000;
	else
		return shown(v) + " is not a duration " + duration_hint;
	int64_t n = 0;
	(void)parse_uint(v.substr(0, digits), duration_ms_max, &n);
	// n is at most duration_ms_max + 1, so this cannot overflow.
	int64_t ms = n * unit_ms;
	if (ms > duration_ms_max)
		return shown(v) + " is more than 7 days (168h)";
	if (ms < min_ms)
		return shown(v) + " is less than " + format_duration(min_ms);
	if (ms > max_ms)
		return shown(v) + " is more than " + format_duration(max_ms);
	*out = ms;
	return "";
}

std::string parse_bool(std::string_view v, bool *out)
{
	if (v == "yes" || v == "true" || v == "on" || v == "1")
		*out = true;
	else if (v == "no" || v == "false" || v == "off" || v == "0")
		*out = false;
	else
		return shown(v) + " is not yes or no (yes, no, true, false, on, off, 1, 0)";
	return "";
}

std::string bool_text(bool b) { return b ? "yes" : "no"; }

std::string parse_int(std::string_view v, int min, int max, int *out)
{
	int64_t n = 0;
	if (!parse_uint(v, max, &n) || n < min || n > max)
		return shown(v) + " is not a whole number from " + std::to_string(min) + " to " +
		       std::to_string(max);
	*out = static_cast<int>(n);
	return "";
}

// One of the type words of a section, in the order of its enum.
template <class E, size_t N>
std::string parse_type(std::string_view v, const std::array<E, N> &all, E *out)
{
	std::string known;
	for (E e : all) {
		if (v == type_name(e)) {
			*out = e;
			return "";
		}
		known += known.empty() ? "" : ", ";
		known += type_name(e);
	}
	return shown(v) + " is not one of " + known;
}

constexpr std::array<ReaderType, 4> reader_types = {ReaderType::none, ReaderType::evdev,
						     ReaderType::serial, ReaderType::sim};
constexpr std::array<PrinterType, 4> printer_types = {
	PrinterType::standard_output, PrinterType::file, PrinterType::none, PrinterType::sim};
constexpr std::array<LinkType, 3> link_types = {LinkType::kernel, LinkType::up, LinkType::sim};
constexpr std::array<ClockType, 2> clock_types = {ClockType::system, ClockType::sim};

// A device or printer: absolute, because the terminal runs as a service
// whose working directory is nobody's choice.
std::string parse_abs_path(std::string_view v, std::string *out)
{
	if (v.empty())
		return "is empty (write an absolute path)";
	if (v[0] != '/')
		return shown(v) + " is not an absolute path";
	if (v.size() > path_bytes_max)
		return shown(v) + " is " + std::to_string(v.size()) + " bytes, more than " +
		       std::to_string(path_bytes_max);
	*out = std::string(v);
	return "";
}

std::string socket_too_long(std::string_view path)
{
	return shown(path) + " is " + std::to_string(path.size()) + " bytes, more than the " +
	       std::to_string(socket_path_bytes_max) + " of a unix socket path";
}

std::string parse_baud(std::string_view v, int *out)
{
	static const int rates[] = {0, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400};
	int64_t n = 0;
	if (parse_uint(v, 230400, &n))
		for (int r : rates)
			if (n == r) {
				*out = r;
				return "";
			}
	return shown(v) + " is not a standard speed (1200, 2400, 4800, 9600, 19200, 38400, 57600, "
			  "115200, 230400; 0 keeps the line's)";
}

std::string parse_interface(std::string_view v, std::string *out)
{
	bool ok = v.size() <= interface_bytes_max && v != "." && v != "..";
	for (char ch : v)
		ok = ok && (is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			    ch == '-' || ch == '_' || ch == '.');
	if (!ok)
		return shown(v) + " is not an interface name (at most 15 letters, digits, '-', '_', "
				  "'.'; \"\" for any)";
	*out = std::string(v);
	return "";
}

std::string parse_start(std::string_view v, std::optional<Timestamp> *out)
{
	Result<Timestamp> t = parse_timestamp(v);
	if (!t)
		return t.status().message();
	// The HAL's wall clock counts milliseconds from the epoch.
	if (t->utc_s < 0)
		return shown(v) + " is before 1970";
	*out = *t;
	return "";
}

std::string parse_mode(std::string_view v, unsigned *out)
{
	bool octal = v.size() == 4 && v[0] == '0';
	for (char ch : v)
		octal = octal && ch >= '0' && ch <= '7';
	if (!octal)
		return shown(v) + " is not an octal mode like 0660";
	unsigned m = 0;
	for (char ch : v)
		m = m * 8 + static_cast<unsigned>(ch - '0');
	// The terminal itself must read and write its socket.
	if (m < 0600)
		return shown(v) + " does not let the owner read and write (0600 to 0777)";
	*out = m;
	return "";
}

std::string format_mode(unsigned m)
{
	std::string s = "0000";
	for (size_t i = 4; i-- > 1; m /= 8)
		s[i] = static_cast<char>('0' + m % 8);
	return s;
}

std::string parse_nightly(std::string_view v, int *out)
{
	if (v == "off") {
		*out = -1;
		return "";
	}
	size_t colon = v.find(':');
	int64_t h = 0, m = 0;
	if (colon == std::string_view::npos || colon < 1 || colon > 2 || v.size() != colon + 3 ||
	    !parse_uint(v.substr(0, colon), 23, &h) || !parse_uint(v.substr(colon + 1), 59, &m) ||
	    h > 23 || m > 59)
		return shown(v) + " is not a time of day HH:MM (00:00 to 23:59) or off";
	*out = static_cast<int>(h * 60 + m);
	return "";
}

std::string format_nightly(int minute)
{
	if (minute < 0)
		return "off";
	std::string s = "00:00";
	s[0] = static_cast<char>('0' + minute / 600);
	s[1] = static_cast<char>('0' + minute / 60 % 10);
	s[3] = static_cast<char>('0' + minute % 60 / 10);
	s[4] = static_cast<char>('0' + minute % 10);
	return s;
}

std::string parse_jitter(std::string_view v, int *out)
{
	if (v.empty() || v.back() != '%')
		return shown(v) + " is not a percentage like 20%";
	int64_t n = 0;
	if (!parse_uint(v.substr(0, v.size() - 1), jitter_pct_max, &n) || n > jitter_pct_max)
		return shown(v) + " is not a percentage from 0% to 50%";
	*out = static_cast<int>(n);
	return "";
}

using Opt = std::optional<std::string>;

struct Key {
	const char *section;
	const char *name;
	// One line, for format_config() and so for terminal.conf: what the key
	// does and when to change it.
	const char *doc;
	// Stores the (unquoted) value; "" or what is wrong with it.
	std::string (*set)(TerminalConfig &c, std::string_view v);
	// The value as the file writes it; nullopt when unset.
	Opt (*get)(const TerminalConfig &c);
	// Whether the key means anything with the section's type; null: always.
	bool (*used)(const TerminalConfig &c) = nullptr;
	const char *used_with = nullptr; // "evdev or serial", for the error
	// Written, commented out, for a key that is unset.
	const char *example = nullptr;
};

const Key keys[] = {
	{"reader", "type",
	 "none (scans come via the POS), evdev (USB wedge scanner), serial, or sim",
	 [](TerminalConfig &c, std::string_view v) { return parse_type(v, reader_types, &c.reader.type); },
	 [](const TerminalConfig &c) -> Opt { return type_name(c.reader.type); }},
	{"reader", "device",
	 "evdev, serial: the scanner's device; a /dev/*/by-id/ link survives replugging",
	 [](TerminalConfig &c, std::string_view v) { return parse_abs_path(v, &c.reader.device); },
	 [](const TerminalConfig &c) -> Opt {
		 return c.reader.device.empty() ? Opt() : quoted(c.reader.device);
	 },
	 [](const TerminalConfig &c) {
		 return c.reader.type == ReaderType::evdev || c.reader.type == ReaderType::serial;
	 },
	 "evdev or serial", "\"/dev/input/by-id/usb-Scanner-event-kbd\""},
	{"reader", "grab",
	 "evdev: scans reach this program only; no lets them also type at a console",
	 [](TerminalConfig &c, std::string_view v) { return parse_bool(v, &c.reader.grab); },
	 [](const TerminalConfig &c) -> Opt { return bool_text(c.reader.grab); },
	 [](const TerminalConfig &c) { return c.reader.type == ReaderType::evdev; }, "evdev"},
	{"reader", "baud",
	 "serial: the scanner's speed (see its manual); 0 keeps the line's setting",
	 [](TerminalConfig &c, std::string_view v) { return parse_baud(v, &c.reader.baud); },
	 [](const TerminalConfig &c) -> Opt { return std::to_string(c.reader.baud); },
	 [](const TerminalConfig &c) { return c.reader.type == ReaderType::serial; }, "serial"},

	{"printer", "type", "stdout, file (a file, or a receipt printer's tty), none, or sim",
	 [](TerminalConfig &c, std::string_view v) {
		 return parse_type(v, printer_types, &c.printer.type);
	 },
	 [](const TerminalConfig &c) -> Opt { return type_name(c.printer.type); }},
	{"printer", "path", "file: the file (made with mode 0640) or the receipt printer's tty",
	 [](TerminalConfig &c, std::string_view v) { return parse_abs_path(v, &c.printer.path); },
	 [](const TerminalConfig &c) -> Opt {
		 return c.printer.path.empty() ? Opt() : quoted(c.printer.path);
	 },
	 [](const TerminalConfig &c) { return c.printer.type == PrinterType::file; }, "file",
	 "\"/dev/usb/lp0\""},
	{"printer", "fsync", "file: sync after each receipt; yes keeps receipts on power loss, wears flash",
	 [](TerminalConfig &c, std::string_view v) { return parse_bool(v, &c.printer.fsync); },
	 [](const TerminalConfig &c) -> Opt { return bool_text(c.printer.fsync); },
	 [](const TerminalConfig &c) { return c.printer.type == PrinterType::file; }, "file"},

	{"link", "type", "kernel (netlink); up where the link cannot be watched (always up); sim",
	 [](TerminalConfig &c, std::string_view v) { return parse_type(v, link_types, &c.link.type); },
	 [](const TerminalConfig &c) -> Opt { return type_name(c.link.type); }},
	{"link", "interface", "kernel: the interface that counts, e.g. \"eth0\"; \"\" = any but loopback",
	 [](TerminalConfig &c, std::string_view v) { return parse_interface(v, &c.link.interface); },
	 [](const TerminalConfig &c) -> Opt { return quoted(c.link.interface); },
	 [](const TerminalConfig &c) { return c.link.type == LinkType::kernel; }, "kernel"},

	{"clock", "type", "system; sim for demos and tests: time begins at start and runs at speed",
	 [](TerminalConfig &c, std::string_view v) { return parse_type(v, clock_types, &c.clock.type); },
	 [](const TerminalConfig &c) -> Opt { return type_name(c.clock.type); }},
	{"clock", "start", "sim: when simulated time begins (RFC 3339); unset = the system time",
	 [](TerminalConfig &c, std::string_view v) { return parse_start(v, &c.clock.start); },
	 [](const TerminalConfig &c) -> Opt {
		 return c.clock.start ? Opt(format_timestamp(*c.clock.start)) : Opt();
	 },
	 [](const TerminalConfig &c) { return c.clock.type == ClockType::sim; }, "sim",
	 "2026-11-23T08:00:00+01:00"},
	{"clock", "speed", "sim: simulated seconds per real second, 1 to 100000, to fast-forward days",
	 [](TerminalConfig &c, std::string_view v) { return parse_int(v, 1, speed_max, &c.clock.speed); },
	 [](const TerminalConfig &c) -> Opt { return std::to_string(c.clock.speed); },
	 [](const TerminalConfig &c) { return c.clock.type == ClockType::sim; }, "sim"},

	{"pos", "socket", "Where the POS program connects; relative = in the data dir; 107 bytes at most",
	 [](TerminalConfig &c, std::string_view v) {
		 if (v.empty())
			 return std::string("is empty (write a path)");
		 if (v.size() > socket_path_bytes_max)
			 return socket_too_long(v);
		 c.pos.socket = std::string(v);
		 return std::string();
	 },
	 [](const TerminalConfig &c) -> Opt { return quoted(c.pos.socket); }},
	{"pos", "mode", "Its permissions: 0660 lets the POS program's group in, 0600 the owner only",
	 [](TerminalConfig &c, std::string_view v) { return parse_mode(v, &c.pos.mode); },
	 [](const TerminalConfig &c) -> Opt { return format_mode(c.pos.mode); }},

	{"sync", "nightly", "The daily sync at HH:MM terminal time, or off; best after closing time",
	 [](TerminalConfig &c, std::string_view v) { return parse_nightly(v, &c.sync.schedule.nightly_minute); },
	 [](const TerminalConfig &c) -> Opt { return format_nightly(c.sync.schedule.nightly_minute); }},
	{"sync", "nightly_spread",
	 "Each terminal's own minute in this window after nightly, or off",
	 [](TerminalConfig &c, std::string_view v) {
		 if (v == "off") {
			 c.sync.nightly_spread_ms = 0;
			 return std::string();
		 }
		 std::string err = parse_duration(v, 60'000, nightly_spread_ms_max, &c.sync.nightly_spread_ms);
		 if (err.empty() && c.sync.nightly_spread_ms % 60'000 != 0)
			 return std::string("must be whole minutes (1m to 6h), or off");
		 return err;
	 },
	 [](const TerminalConfig &c) -> Opt {
		 return c.sync.nightly_spread_ms == 0 ? "off" : format_duration(c.sync.nightly_spread_ms);
	 }},
	{"sync", "after_link_up", "Sync this long after the link comes back; longer if the link flaps",
	 [](TerminalConfig &c, std::string_view v) {
		 return parse_duration(v, 0, duration_ms_max, &c.sync.schedule.after_link_up_ms);
	 },
	 [](const TerminalConfig &c) -> Opt { return format_duration(c.sync.schedule.after_link_up_ms); }},
	{"sync", "retry_min", "The wait before retrying a failed sync (1s or more)",
	 [](TerminalConfig &c, std::string_view v) {
		 return parse_duration(v, retry_ms_min, duration_ms_max, &c.sync.schedule.retry_min_ms);
	 },
	 [](const TerminalConfig &c) -> Opt { return format_duration(c.sync.schedule.retry_min_ms); }},
	{"sync", "retry_max", "The longest wait between retries; raise it to spare a struggling server",
	 [](TerminalConfig &c, std::string_view v) {
		 return parse_duration(v, retry_ms_min, duration_ms_max, &c.sync.schedule.retry_max_ms);
	 },
	 [](const TerminalConfig &c) -> Opt { return format_duration(c.sync.schedule.retry_max_ms); }},
	{"sync", "jitter", "Spread each wait by up to this (0% to 50%) so terminals do not sync at once",
	 [](TerminalConfig &c, std::string_view v) { return parse_jitter(v, &c.sync.schedule.jitter_pct); },
	 [](const TerminalConfig &c) -> Opt { return std::to_string(c.sync.schedule.jitter_pct) + "%"; }},
	{"sync", "interval", "Also sync this often (1m or more), or off: only nightly and after link-up",
	 [](TerminalConfig &c, std::string_view v) {
		 if (v == "off") {
			 c.sync.schedule.interval_ms = 0;
			 return std::string();
		 }
		 return parse_duration(v, interval_ms_min, duration_ms_max, &c.sync.schedule.interval_ms);
	 },
	 [](const TerminalConfig &c) -> Opt {
		 return c.sync.schedule.interval_ms == 0 ? "off" : format_duration(c.sync.schedule.interval_ms);
	 }},
	{"sync", "connect_timeout", "Give up connecting after this (10m at most); raise it on a slow link",
	 [](TerminalConfig &c, std::string_view v) {
		 return parse_duration(v, 1, timeout_ms_max, &c.sync.connect_timeout_ms);
	 },
	 [](const TerminalConfig &c) -> Opt { return format_duration(c.sync.connect_timeout_ms); }},
	{"sync", "io_timeout", "Give up when a read or write stalls this long (10m at most)",
	 [](TerminalConfig &c, std::string_view v) {
		 return parse_duration(v, 1, timeout_ms_max, &c.sync.io_timeout_ms);
	 },
	 [](const TerminalConfig &c) -> Opt { return format_duration(c.sync.io_timeout_ms); }},

	{"display", "width", "Columns of a receipt line, 24 to 80: what the printer's paper holds",
	 [](TerminalConfig &c, std::string_view v) {
		 return parse_int(v, width_min, width_max, &c.display.width);
	 },
	 [](const TerminalConfig &c) -> Opt { return std::to_string(c.display.width); }},
};
constexpr size_t key_count = sizeof keys / sizeof keys[0];

struct Section {
	const char *name;
	const char *doc;
};

const Section sections[] = {
	{"reader", "The card scanner wired to the terminal, if any."},
	{"printer", "Where receipt lines go."},
	{"link", "How the terminal learns that the network is back, to sync then."},
	{"clock", "The wall clock of receipts and of the nightly sync."},
	{"pos", "The local socket the POS application talks to."},
	{"sync", "When to sync with the central server. Durations: 500ms, 30s, 10m, 2h."},
	{"display", "The receipt layout."},
};
constexpr size_t section_count = sizeof sections / sizeof sections[0];

const char header[] =
	"# loyalty-terminal configuration: DATA_DIR/terminal.conf, or --config FILE.\n"
	"# Every key is optional; one left out takes the value written here. Lines\n"
	"# \"#key = value\" are keys the chosen type does not use, or that are unset.\n"
	"# Comments start with # or ;. Quote a value that holds \" #\" or \" ;\".\n"
	"# The configuration in force: loyalty-terminal --data-dir D run --print-config\n";

std::string section_type(const TerminalConfig &c, std::string_view section)
{
	if (section == "reader")
		return type_name(c.reader.type);
	if (section == "printer")
		return type_name(c.printer.type);
	if (section == "link")
		return type_name(c.link.type);
	if (section == "clock")
		return type_name(c.clock.type);
	return "";
}

size_t key_index(std::string_view section, std::string_view name)
{
	for (size_t i = 0; i < key_count; i++)
		if (section == keys[i].section && name == keys[i].name)
			return i;
	return key_count;
}

// Where each key was set: 0 = not in the file.
using KeyLines = std::array<size_t, key_count>;

// The length of the UTF-8 sequence at s[i], or 0 when it is not one
// (overlong forms, surrogates and code points past U+10FFFF included).
size_t utf8_sequence(std::string_view s, size_t i)
{
	auto at = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
	unsigned char b = at(i);
	if (b < 0x80)
		return 1;
	size_t n;
	unsigned lo = 0x80, hi = 0xBF; // the second byte's range
	if (b >= 0xC2 && b <= 0xDF) {
		n = 2;
	} else if (b >= 0xE0 && b <= 0xEF) {
		n = 3;
		if (b == 0xE0)
			lo = 0xA0;
		else if (b == 0xED)
			hi = 0x9F;
	} else if (b >= 0xF0 && b <= 0xF4) {
		n = 4;
		if (b == 0xF0)
			lo = 0x90;
		else if (b == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (i + n > s.size() || at(i + 1) < lo || at(i + 1) > hi)
		return 0;
	for (size_t k = 2; k < n; k++)
		if (at(i + k) < 0x80 || at(i + k) > 0xBF)
			return 0;
	return n;
}

// "" or what is wrong with the bytes of a line: not UTF-8, or a control
// character a text editor would not show.
std::string check_line_bytes(std::string_view line)
{
	for (size_t i = 0; i < line.size();) {
		auto b = static_cast<unsigned char>(line[i]);
		if ((b < 0x20 && b != '\t') || b == 0x7F) {
			static const char hex[] = "0123456789abcdef";
			return std::string("a control character (0x") + hex[b >> 4] + hex[b & 15] + ")";
		}
		size_t n = utf8_sequence(line, i);
		if (n == 0)
			return "not UTF-8";
		i += n;
	}
	return "";
}

bool starts_comment(char ch) { return ch == '#' || ch == ';'; }

// The value after '=': unquoted, its comment cut. "" or what is wrong.
std::string lex_value(std::string_view rest, std::string *out)
{
	rest = trim(rest);
	out->clear();
	if (rest.empty() || starts_comment(rest[0]))
		return "";
	if (rest[0] != '"') {
		size_t end = rest.size();
		for (size_t i = 1; i < rest.size(); i++)
			if (starts_comment(rest[i]) && is_space(rest[i - 1])) {
				end = i;
				break;
			}
		*out = std::string(trim(rest.substr(0, end)));
		return "";
	}
	size_t i = 1;
	for (; i < rest.size() && rest[i] != '"'; i++) {
		if (rest[i] != '\\') {
			*out += rest[i];
			continue;
		}
		if (i + 1 < rest.size() && (rest[i + 1] == '"' || rest[i + 1] == '\\')) {
			*out += rest[++i];
			continue;
		}
		return "a \\ in a quoted value that is not \\\" or \\\\";
	}
	if (i == rest.size())
		return "a quoted value without its closing quote";
	std::string_view after = trim(rest.substr(i + 1));
	if (!after.empty() && !starts_comment(after[0]))
		return "text after the closing quote: " + shown(after);
	return "";
}

Status parse(std::string_view text, const std::string &name, TerminalConfig *out, KeyLines *lines)
{
	auto error = [&](size_t line, const std::string &what) {
		return Status(Code::bad_argument,
			      name + (line ? " line " + std::to_string(line) : std::string()) + ": " +
				      what);
	};
	if (text.size() > config_bytes_max)
		return error(0, std::to_string(text.size()) + " bytes, more than the " +
					std::to_string(config_bytes_max) + " a configuration may have");
	// Editors on Windows start a UTF-8 file with a byte order mark.
	if (text.substr(0, 3) == "\xEF\xBB\xBF")
		text.remove_prefix(3);

	TerminalConfig c;
	lines->fill(0);
	std::array<size_t, section_count> section_lines{};
	const char *section = nullptr;
	size_t line_no = 0;
	while (!text.empty()) {
		line_no++;
		size_t nl = text.find('\n');
		std::string_view raw = text.substr(0, nl);
		text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
		if (!raw.empty() && raw.back() == '\r')
			raw.remove_suffix(1);
		if (raw.find('\0') != std::string_view::npos)
			return error(line_no, "a NUL byte: this is not a text file");
		if (std::string bad = check_line_bytes(raw); !bad.empty())
			return error(line_no, bad);
		std::string_view line = trim(raw);
		if (line.empty() || starts_comment(line[0]))
			continue;

		if (line[0] == '[') {
			size_t close = line.find(']');
			std::string_view after =
				close == std::string_view::npos ? "" : trim(line.substr(close + 1));
			if (close == std::string_view::npos ||
			    (!after.empty() && !starts_comment(after[0])))
				return error(line_no, "expected [section], got " + shown(line));
			std::string_view sname = trim(line.substr(1, close - 1));
			size_t s = 0;
			while (s < section_count && sname != sections[s].name)
				s++;
			if (s == section_count) {
				std::string known;
				for (const Section &k : sections)
					known += std::string(known.empty() ? "" : ", ") + k.name;
				return error(line_no, "unknown section [" + std::string(sname) +
							      "] (known: " + known + ")");
			}
			if (section_lines[s])
				return error(line_no, "section [" + std::string(sname) +
							      "] again (first at line " +
							      std::to_string(section_lines[s]) + ")");
			section_lines[s] = line_no;
			section = sections[s].name;
			continue;
		}

		size_t eq = line.find('=');
		if (eq == std::string_view::npos || trim(line.substr(0, eq)).empty())
			return error(line_no, "expected [section] or key = value, got " + shown(line));
		std::string key(trim(line.substr(0, eq)));
		if (!section)
			return error(line_no, "key \"" + key + "\" before any [section]");
		size_t k = key_index(section, key);
		std::string where = "[" + std::string(section) + "] " + key + ": ";
		if (k == key_count) {
			std::string known;
			for (const Key &d : keys)
				if (std::string_view(d.section) == section)
					known += std::string(known.empty() ? "" : ", ") + d.name;
			return error(line_no, "[" + std::string(section) + "] unknown key " + shown(key) +
						      " (known: " + known + ")");
		}
		if ((*lines)[k])
			return error(line_no, where + "set twice (first at line " +
						      std::to_string((*lines)[k]) + ")");
		(*lines)[k] = line_no;
		std::string value;
		if (std::string bad = lex_value(line.substr(eq + 1), &value); !bad.empty())
			return error(line_no, where + bad);
		if (std::string bad = keys[k].set(c, value); !bad.empty())
			return error(line_no, where + bad);
	}

	// Checks between keys, once every key of the file is known: a key may
	// come before the type that makes it meaningful.
	for (size_t k = 0; k < key_count; k++) {
		const Key &d = keys[k];
		if ((*lines)[k] && d.used && !d.used(c))
			return error((*lines)[k], std::string("[") + d.section + "] " + d.name +
							  ": only used with type = " + d.used_with +
							  " (type is " + section_type(c, d.section) + ")");
	}
	auto needs = [&](const char *sec, const char *key, const char *what) {
		size_t type_line = (*lines)[key_index(sec, "type")];
		return error(type_line, std::string("[") + sec + "] type: " + section_type(c, sec) +
						" needs " + key + " = " + what);
	};
	if ((c.reader.type == ReaderType::evdev || c.reader.type == ReaderType::serial) &&
	    c.reader.device.empty())
		return needs("reader", "device", "PATH");
	if (c.printer.type == PrinterType::file && c.printer.path.empty())
		return needs("printer", "path", "PATH");
	if (c.sync.schedule.retry_max_ms < c.sync.schedule.retry_min_ms) {
		size_t max_line = (*lines)[key_index("sync", "retry_max")];
		if (max_line)
			return error(max_line, "[sync] retry_max: " + format_duration(c.sync.schedule.retry_max_ms) +
						       " is less than retry_min (" +
						       format_duration(c.sync.schedule.retry_min_ms) + ")");
		return error((*lines)[key_index("sync", "retry_min")],
			     "[sync] retry_min: " + format_duration(c.sync.schedule.retry_min_ms) +
				     " is more than retry_max (" + format_duration(c.sync.schedule.retry_max_ms) +
				     ")");
	}
	*out = std::move(c);
	return Status::ok();
}

// A relative socket is in the data dir; the result must fit sun_path.
Status resolve_socket(TerminalConfig *c, const std::string &data_dir, const std::string &name,
		      size_t line)
{
	std::string &s = c->pos.socket;
	if (!s.empty() && s[0] != '/' && !data_dir.empty())
		s = data_dir + (data_dir.back() == '/' ? "" : "/") + s;
	if (s.size() <= socket_path_bytes_max)
		return Status::ok();
	std::string where = line ? name + " line " + std::to_string(line) : name;
	return Status(Code::bad_argument,
		      where + ": [pos] socket: " + socket_too_long(s) +
			      (line ? "" : "; set a shorter one (an absolute path)"));
}

} // namespace

Result<TerminalConfig> parse_config(std::string_view text, const std::string &name)
{
	TerminalConfig c;
	KeyLines lines;
	LOY_TRY(parse(text, name, &c, &lines));
	return c;
}

Result<TerminalConfig> load_config(const std::string &path, bool missing_ok, const std::string &data_dir)
{
	TerminalConfig c;
	KeyLines lines{};
	int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int err = errno;
		if (err != ENOENT || !missing_ok)
			return Status(Code::bad_argument, path + ": " + std::strerror(err));
	} else {
		struct stat st;
		if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
			::close(fd);
			return Status(Code::bad_argument, path + ": not a regular file");
		}
		// One byte past the limit, to tell a file at the limit from a longer one.
		std::string text(config_bytes_max + 1, '\0');
		size_t got = 0;
		while (got < text.size()) {
			ssize_t n = ::read(fd, &text[got], text.size() - got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				int err = errno;
				::close(fd);
				return Status(Code::storage, path + ": " + std::strerror(err));
			}
			if (n == 0)
				break;
			got += static_cast<size_t>(n);
		}
		::close(fd);
		text.resize(got);
		if (got > config_bytes_max)
			return Status(Code::bad_argument, path + ": more than the " +
								  std::to_string(config_bytes_max) +
								  " bytes a configuration may have");
		LOY_TRY(parse(text, path, &c, &lines));
	}
	LOY_TRY(resolve_socket(&c, data_dir, path, lines[key_index("pos", "socket")]));
	return c;
}

std::string format_config(const TerminalConfig &c)
{
	std::string out = header;
	for (const Section &s : sections) {
		out += std::string("\n[") + s.name + "]\n# " + s.doc + "\n";
		for (const Key &k : keys) {
			if (std::string_view(k.section) != s.name)
				continue;
			Opt v = k.get(c);
			bool live = v && (!k.used || k.used(c));
			assert(v || k.example);
			out += std::string("# ") + k.doc + "\n";
			if (!live)
				out += "#";
			out += std::string(k.name) + " = " + (v ? *v : std::string(k.example)) + "\n";
		}
	}
	return out;
}

} // namespace loy::fw
