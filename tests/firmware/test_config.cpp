// The terminal's configuration file (firmware/config.hpp) as tables: every
// default, every type, the syntax it accepts, every error with its exact
// message, the limits at their boundaries, the round trip through
// format_config(), the documented example, and load_config() on real files.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "firmware/config.hpp"
#include "support/tmpdir.hpp"

using loy::Code;
using loy::fw::ClockType;
using loy::fw::format_config;
using loy::fw::LinkType;
using loy::fw::load_config;
using loy::fw::parse_config;
using loy::fw::PrinterType;
using loy::fw::ReaderType;
using loy::fw::TerminalConfig;

namespace {

const std::string conf = "terminal.conf";

// The message of a refused text, or "(accepted)".
std::string error_of(const std::string &text)
{
	auto r = parse_config(text, conf);
	if (r.is_ok())
		return "(accepted)";
	CHECK(r.status().code() == Code::bad_argument);
	return r.status().message();
}

TerminalConfig parsed(const std::string &text)
{
	auto r = parse_config(text, conf);
	INFO("text:\n" << text << "\nerror: " << r.status().message());
	REQUIRE(r.is_ok());
	return *r;
}

loy::Timestamp timestamp(const char *text)
{
	auto t = loy::parse_timestamp(text);
	REQUIRE(t.is_ok());
	return *t;
}

std::string read_file(const std::string &path)
{
	std::ifstream in(path, std::ios::binary);
	REQUIRE(in.good());
	std::ostringstream s;
	s << in.rdbuf();
	return s.str();
}

void write_file(const std::string &path, const std::string &text)
{
	std::ofstream out(path, std::ios::binary);
	out << text;
	REQUIRE(out.good());
}

struct TempDir : test_support::TempDir {
	TempDir() : test_support::TempDir("loy-fw") {}
};

// Every key of the file, section by section, as the brief of the format lists
// them: the example must show each one.
const std::vector<std::string> &all_keys()
{
	static const std::vector<std::string> k = {
		"[reader]", "type", "device", "grab", "baud",
		"[printer]", "type", "path", "fsync",
		"[link]", "type", "interface",
		"[clock]", "type", "start", "speed",
		"[pos]", "socket", "mode",
		"[sync]", "nightly", "nightly_spread", "after_link_up", "retry_min", "retry_max", "jitter", "interval",
		"connect_timeout", "io_timeout",
		"[display]", "width",
	};
	return k;
}

} // namespace

TEST_CASE("defaults: what a terminal without terminal.conf runs with", "[config]")
{
	const TerminalConfig c;
	CHECK(c.reader.type == ReaderType::none);
	CHECK(c.reader.device.empty());
	CHECK(c.reader.grab == true);
	CHECK(c.reader.baud == 0);
	CHECK(c.printer.type == PrinterType::standard_output);
	CHECK(c.printer.path.empty());
	CHECK(c.printer.fsync == false);
	CHECK(c.link.type == LinkType::kernel);
	CHECK(c.link.interface.empty());
	CHECK(c.clock.type == ClockType::system);
	CHECK(!c.clock.start.has_value());
	CHECK(c.clock.speed == 1);
	CHECK(c.pos.socket == "pos.sock");
	CHECK(c.pos.mode == 0660u);
	CHECK(c.sync.schedule.nightly_minute == 23 * 60 + 30);
	CHECK(c.sync.nightly_spread_ms == 30 * 60'000);
	CHECK(c.sync.schedule.after_link_up_ms == 15'000);
	CHECK(c.sync.schedule.retry_min_ms == 30'000);
	CHECK(c.sync.schedule.retry_max_ms == 30 * 60'000);
	CHECK(c.sync.schedule.jitter_pct == 20);
	CHECK(c.sync.schedule.interval_ms == 0);
	CHECK(c.sync.connect_timeout_ms == 5'000);
	CHECK(c.sync.io_timeout_ms == 60'000);
	CHECK(c.display.width == 40);

	// Nothing, comments, blank lines and empty sections all mean the defaults.
	for (const char *text :
	     {"", "\n\n", "# nothing\n; still nothing\n", "[reader]\n[sync]\n\n[display]\n",
	      "   \t\n  # indented\n", "[pos]"}) {
		INFO(text);
		CHECK(parsed(text) == c);
	}
}

TEST_CASE("types: each section's types and the keys they take", "[config]")
{
	using Check = std::function<bool(const TerminalConfig &)>;
	struct Row {
		const char *text;
		Check check;
	};
	const std::vector<Row> rows = {
		{"[reader]\ntype = none\n",
		 [](const TerminalConfig &c) { return c.reader.type == ReaderType::none; }},
		{"[reader]\ntype = evdev\ndevice = /dev/input/event3\n",
		 [](const TerminalConfig &c) {
			 return c.reader.type == ReaderType::evdev && c.reader.device == "/dev/input/event3" &&
				c.reader.grab;
		 }},
		{"[reader]\ntype = evdev\ndevice = /dev/input/event3\ngrab = no\n",
		 [](const TerminalConfig &c) { return !c.reader.grab; }},
		{"[reader]\ntype = serial\ndevice = /dev/ttyACM0\n",
		 [](const TerminalConfig &c) {
			 return c.reader.type == ReaderType::serial && c.reader.device == "/dev/ttyACM0" &&
				c.reader.baud == 0;
		 }},
		{"[reader]\ntype = serial\ndevice = /dev/ttyS0\nbaud = 9600\n",
		 [](const TerminalConfig &c) { return c.reader.baud == 9600; }},
		{"[reader]\ntype = serial\ndevice = /dev/ttyS0\nbaud = 0\n",
		 [](const TerminalConfig &c) { return c.reader.baud == 0; }},
		{"[reader]\ntype = sim\n",
		 [](const TerminalConfig &c) { return c.reader.type == ReaderType::sim; }},

		{"[printer]\ntype = stdout\n",
		 [](const TerminalConfig &c) { return c.printer.type == PrinterType::standard_output; }},
		{"[printer]\ntype = file\npath = /dev/usb/lp0\n",
		 [](const TerminalConfig &c) {
			 return c.printer.type == PrinterType::file && c.printer.path == "/dev/usb/lp0" &&
				!c.printer.fsync;
		 }},
		{"[printer]\ntype = file\npath = /var/lib/loyalty/receipts.txt\nfsync = yes\n",
		 [](const TerminalConfig &c) { return c.printer.fsync; }},
		{"[printer]\ntype = none\n",
		 [](const TerminalConfig &c) { return c.printer.type == PrinterType::none; }},
		{"[printer]\ntype = sim\n",
		 [](const TerminalConfig &c) { return c.printer.type == PrinterType::sim; }},

		{"[link]\ntype = kernel\n",
		 [](const TerminalConfig &c) {
			 return c.link.type == LinkType::kernel && c.link.interface.empty();
		 }},
		{"[link]\ninterface = eth0\n", [](const TerminalConfig &c) { return c.link.interface == "eth0"; }},
		{"[link]\ninterface = \"\"\n", [](const TerminalConfig &c) { return c.link.interface.empty(); }},
		{"[link]\ninterface = enp0s31f6.100\n",
		 [](const TerminalConfig &c) { return c.link.interface == "enp0s31f6.100"; }},
		{"[link]\ntype = up\n", [](const TerminalConfig &c) { return c.link.type == LinkType::up; }},
		{"[link]\ntype = sim\n", [](const TerminalConfig &c) { return c.link.type == LinkType::sim; }},

		{"[clock]\ntype = system\n",
		 [](const TerminalConfig &c) { return c.clock.type == ClockType::system; }},
		{"[clock]\ntype = sim\n",
		 [](const TerminalConfig &c) {
			 return c.clock.type == ClockType::sim && !c.clock.start && c.clock.speed == 1;
		 }},
		{"[clock]\ntype = sim\nstart = 2026-11-23T08:00:00+01:00\nspeed = 60\n",
		 [](const TerminalConfig &c) {
			 return c.clock.start && c.clock.start->utc_s == 1'795'417'200 &&
				c.clock.start->offset_s == 3600 && c.clock.speed == 60;
		 }},

		{"[pos]\nsocket = /run/loyalty/pos.sock\nmode = 0600\n",
		 [](const TerminalConfig &c) {
			 return c.pos.socket == "/run/loyalty/pos.sock" && c.pos.mode == 0600u;
		 }},
		{"[pos]\nmode = 0777\n", [](const TerminalConfig &c) { return c.pos.mode == 0777u; }},

		{"[sync]\nnightly = off\n", [](const TerminalConfig &c) { return c.sync.schedule.nightly_minute == -1; }},
		{"[sync]\nnightly = 00:00\n", [](const TerminalConfig &c) { return c.sync.schedule.nightly_minute == 0; }},
		{"[sync]\nnightly = 7:05\n", [](const TerminalConfig &c) { return c.sync.schedule.nightly_minute == 425; }},
		{"[sync]\nnightly = 23:59\n",
		 [](const TerminalConfig &c) { return c.sync.schedule.nightly_minute == 1439; }},
		{"[sync]\nafter_link_up = 500ms\nretry_min = 2s\nretry_max = 2h\njitter = 0%\n"
		 "interval = 10m\nconnect_timeout = 3s\nio_timeout = 2m\n",
		 [](const TerminalConfig &c) {
			 return c.sync.schedule.after_link_up_ms == 500 && c.sync.schedule.retry_min_ms == 2'000 &&
				c.sync.schedule.retry_max_ms == 7'200'000 && c.sync.schedule.jitter_pct == 0 &&
				c.sync.schedule.interval_ms == 600'000 && c.sync.connect_timeout_ms == 3'000 &&
				c.sync.io_timeout_ms == 120'000;
		 }},
		{"[sync]\nafter_link_up = 0s\ninterval = off\n",
		 [](const TerminalConfig &c) {
			 return c.sync.schedule.after_link_up_ms == 0 && c.sync.schedule.interval_ms == 0;
		 }},

		{"[display]\nwidth = 32\n", [](const TerminalConfig &c) { return c.display.width == 32; }},
	};
	for (const Row &row : rows) {
		INFO(row.text);
		CHECK(row.check(parsed(row.text)));
	}
	CHECK(std::string(loy::fw::type_name(PrinterType::standard_output)) == "stdout");
	CHECK(std::string(loy::fw::type_name(ReaderType::serial)) == "serial");
	CHECK(std::string(loy::fw::type_name(LinkType::up)) == "up");
	CHECK(std::string(loy::fw::type_name(ClockType::sim)) == "sim");
}

TEST_CASE("booleans: every spelling", "[config]")
{
	for (const char *yes : {"yes", "true", "on", "1"})
		CHECK(parsed(std::string("[printer]\ntype = file\npath = /x\nfsync = ") + yes).printer.fsync);
	for (const char *no : {"no", "false", "off", "0"})
		CHECK(!parsed(std::string("[reader]\ntype = evdev\ndevice = /x\ngrab = ") + no).reader.grab);
}

TEST_CASE("syntax: quotes, comments, spaces, line ends", "[config]")
{
	struct Row {
		const char *name;
		std::string text; // the [pos] socket line and what follows it
		std::string socket;
	};
	const std::vector<Row> rows = {
		{"plain", "socket = a.sock", "a.sock"},
		{"spaces and tabs around", " \t socket\t=\t a b.sock \t", "a b.sock"},
		{"no spaces", "socket=a.sock", "a.sock"},
		{"# comment after a space", "socket = a.sock # the POS", "a.sock"},
		{"; comment after a tab", "socket = a.sock\t; the POS", "a.sock"},
		{"# inside a word is text", "socket = a#b;c.sock", "a#b;c.sock"},
		{"quoted # and ;", "socket = \"a # b ; c\"", "a # b ; c"},
		{"quoted, then a comment", "socket = \"a.sock\"   # the POS", "a.sock"},
		{"quoted, comment glued", "socket = \"a.sock\"#x", "a.sock"},
		{"quoted spaces kept", "socket = \"  a  \"", "  a  "},
		{"quoted escapes", "socket = \"a\\\"b\\\\c\"", "a\"b\\c"},
		{"= in a value", "socket = a=b", "a=b"},
		{"CRLF line end", "socket = a.sock\r", "a.sock"},
		{"UTF-8", "socket = caf\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x98\x80.sock", "caf\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x98\x80.sock"},
	};
	for (const Row &row : rows) {
		INFO(row.name);
		CHECK(parsed("[pos]\n" + row.text + "\n").pos.socket == row.socket);
	}
	// Headers: spaces inside and out, a comment after; a byte order mark; no
	// final newline; CRLF throughout; a quoted type word.
	CHECK(parsed("  [ display ]  # receipts\nwidth = 30").display.width == 30);
	CHECK(parsed("\xEF\xBB\xBF[display]\nwidth = 30\n").display.width == 30);
	CHECK(parsed("# a\r\n[display]\r\n\r\nwidth = 30\r\n").display.width == 30);
	CHECK(parsed("[reader]\ntype = \"sim\"\n").reader.type == ReaderType::sim);
	// A key may come before the type that makes it meaningful.
	CHECK(parsed("[reader]\ndevice = /dev/ttyS0\nbaud = 115200\ntype = serial\n").reader.baud ==
	      115200);
}

TEST_CASE("errors: the brief's example, word for word", "[config]")
{
	CHECK(error_of("# Sync settings\n[sync]\nnightly = 22:00\n\nretry_min = 10s\n; slower\n"
		       "retry_max = 10x\n") ==
	      "terminal.conf line 7: [sync] retry_max: \"10x\" is not a duration (use 500ms, 30s, "
	      "10m, 2h)");
	// Messages name the file as given.
	auto r = parse_config("[nope]\n", "/etc/loyalty/t.conf");
	REQUIRE(!r.is_ok());
	CHECK(r.status().message().rfind("/etc/loyalty/t.conf line 1: ", 0) == 0);
}

TEST_CASE("errors: structure of the file", "[config]")
{
	struct Row {
		const char *name;
		std::string text;
		std::string message; // after "terminal.conf "
	};
	const std::vector<Row> rows = {
		{"unknown section", "[reader]\n[foo]\n",
		 "line 2: unknown section [foo] (known: reader, printer, link, clock, pos, sync, "
		 "display)"},
		{"section names are lower case", "[Reader]\n",
		 "line 1: unknown section [Reader] (known: reader, printer, link, clock, pos, sync, "
		 "display)"},
		{"unknown key", "[reader]\ntyp = evdev\n",
		 "line 2: [reader] unknown key \"typ\" (known: type, device, grab, baud)"},
		{"key of another section", "[reader]\nwidth = 40\n",
		 "line 2: [reader] unknown key \"width\" (known: type, device, grab, baud)"},
		{"key names are lower case", "[display]\nWidth = 40\n",
		 "line 2: [display] unknown key \"Width\" (known: width)"},
		{"key twice", "[sync]\nretry_min = 10s\n# again\nretry_min = 20s\n",
		 "line 4: [sync] retry_min: set twice (first at line 2)"},
		{"key twice, same value", "[display]\nwidth = 40\nwidth = 40\n",
		 "line 3: [display] width: set twice (first at line 2)"},
		{"section twice", "[sync]\n[pos]\n[sync]\n", "line 3: section [sync] again (first at line 1)"},
		{"key before any section", "# hello\ntype = evdev\n",
		 "line 2: key \"type\" before any [section]"},
		{"no =", "[reader]\ntype evdev\n",
		 "line 2: expected [section] or key = value, got \"type evdev\""},
		{"no key", "[reader]\n = evdev\n",
		 "line 2: expected [section] or key = value, got \"= evdev\""},
		{"header without ]", "[reader\n", "line 1: expected [section], got \"[reader\""},
		{"text after a header", "[reader] type = none\n",
		 "line 1: expected [section], got \"[reader] type = none\""},
		{"unterminated quote", "[pos]\nsocket = \"pos.sock\n",
		 "line 2: [pos] socket: a quoted value without its closing quote"},
		{"text after a quote", "[pos]\nsocket = \"a\" b\n",
		 "line 2: [pos] socket: text after the closing quote: \"b\""},
		{"unknown escape", "[pos]\nsocket = \"a\\nb\"\n",
		 "line 2: [pos] socket: a \\ in a quoted value that is not \\\" or \\\\"},
		{"NUL byte", std::string("[pos]\nsocket = a\0b\n", 19),
		 "line 2: a NUL byte: this is not a text file"},
		{"NUL in a comment", std::string("[pos]\n\n# \0\n", 11),
		 "line 3: a NUL byte: this is not a text file"},
		{"control character", "[pos]\nsocket = a\x1b[2Jb\n", "line 2: a control character (0x1b)"},
		{"DEL", "[pos]\n# \x7f\n", "line 2: a control character (0x7f)"},
		{"lone CR", "[pos]\r\rsocket = a\n", "line 1: a control character (0x0d)"},
		{"Latin-1, not UTF-8", "[pos]\n\nsocket = caf\xe9\n", "line 3: not UTF-8"},
		{"overlong UTF-8", "[pos]\nsocket = \xc0\xaf\n", "line 2: not UTF-8"},
		{"UTF-8 surrogate", "[pos]\nsocket = \xed\xa0\x80\n", "line 2: not UTF-8"},
		{"UTF-8 cut short", "[pos]\nsocket = \xe2\x82\n", "line 2: not UTF-8"},
		{"past U+10FFFF", "[pos]\nsocket = \xf4\x90\x80\x80\n", "line 2: not UTF-8"},
		{"the first error wins", "[reader]\ntype = usb\n[foo]\n",
		 "line 2: [reader] type: \"usb\" is not one of none, evdev, serial, sim"},
	};
	for (const Row &row : rows) {
		INFO(row.name);
		CHECK(error_of(row.text) == "terminal.conf " + row.message);
	}
}

TEST_CASE("errors: bad values, key by key", "[config]")
{
	const std::string dur = " (use 500ms, 30s, 10m, 2h)";
	const std::string long_path = "/" + std::string(4095, 'a');
	struct Row {
		const char *section;
		std::string line;    // the key's line, line 2 of the file
		std::string message; // after "terminal.conf line 2: [section] "
	};
	const std::vector<Row> rows = {
		{"reader", "type = usb", "type: \"usb\" is not one of none, evdev, serial, sim"},
		{"reader", "type = Evdev", "type: \"Evdev\" is not one of none, evdev, serial, sim"},
		{"reader", "type =", "type: \"\" is not one of none, evdev, serial, sim"},
		{"reader", "device = dev/input/event0",
		 "device: \"dev/input/event0\" is not an absolute path"},
		{"reader", "device = \"\"", "device: is empty (write an absolute path)"},
		{"reader", "device = " + long_path,
		 "device: \"/" + std::string(59, 'a') + "...\" is 4096 bytes, more than 4095"},
		{"reader", "grab = maybe",
		 "grab: \"maybe\" is not yes or no (yes, no, true, false, on, off, 1, 0)"},
		{"reader", "grab = Yes", "grab: \"Yes\" is not yes or no (yes, no, true, false, on, off, 1, 0)"},
		{"reader", "baud = 9601",
		 "baud: \"9601\" is not a standard speed (1200, 2400, 4800, 9600, 19200, 38400, 57600, "
		 "115200, 230400; 0 keeps the line's)"},
		{"reader", "baud = 460800",
		 "baud: \"460800\" is not a standard speed (1200, 2400, 4800, 9600, 19200, 38400, "
		 "57600, 115200, 230400; 0 keeps the line's)"},
		{"reader", "baud = -9600",
		 "baud: \"-9600\" is not a standard speed (1200, 2400, 4800, 9600, 19200, 38400, 57600, "
		 "115200, 230400; 0 keeps the line's)"},

		{"printer", "type = lp", "type: \"lp\" is not one of stdout, file, none, sim"},
		{"printer", "path = receipts.txt", "path: \"receipts.txt\" is not an absolute path"},
		{"printer", "fsync = sometimes",
		 "fsync: \"sometimes\" is not yes or no (yes, no, true, false, on, off, 1, 0)"},

		{"link", "type = wifi", "type: \"wifi\" is not one of kernel, up, sim"},
		{"link", "interface = eth0:1",
		 "interface: \"eth0:1\" is not an interface name (at most 15 letters, digits, '-', '_', "
		 "'.'; \"\" for any)"},
		{"link", "interface = abcdefghijklmnop",
		 "interface: \"abcdefghijklmnop\" is not an interface name (at most 15 letters, digits, "
		 "'-', '_', '.'; \"\" for any)"},
		{"link", "interface = ..",
		 "interface: \"..\" is not an interface name (at most 15 letters, digits, '-', '_', '.'; "
		 "\"\" for any)"},

		{"clock", "type = ntp", "type: \"ntp\" is not one of system, sim"},
		{"clock", "start = 2026-11-23T08:00:00",
		 "start: \"2026-11-23T08:00:00\" is not an RFC 3339 time with an offset "
		 "(2026-11-24T10:15:00+01:00)"},
		{"clock", "start = tomorrow",
		 "start: \"tomorrow\" is not an RFC 3339 time with an offset (2026-11-24T10:15:00+01:00)"},
		{"clock", "start = 1969-12-31T23:59:59Z", "start: \"1969-12-31T23:59:59Z\" is before 1970"},
		{"clock", "speed = 0", "speed: \"0\" is not a whole number from 1 to 100000"},
		{"clock", "speed = 100001", "speed: \"100001\" is not a whole number from 1 to 100000"},
		{"clock", "speed = 1.5", "speed: \"1.5\" is not a whole number from 1 to 100000"},
		{"clock", "speed = +2", "speed: \"+2\" is not a whole number from 1 to 100000"},
		{"clock", "speed = 99999999999999999999999",
		 "speed: \"99999999999999999999999\" is not a whole number from 1 to 100000"},

		{"pos", "socket = \"\"", "socket: is empty (write a path)"},
		{"pos", "socket = /" + std::string(107, 's'),
		 "socket: \"/" + std::string(59, 's') +
			 "...\" is 108 bytes, more than the 107 of a unix socket path"},
		{"pos", "mode = 660", "mode: \"660\" is not an octal mode like 0660"},
		{"pos", "mode = 0680", "mode: \"0680\" is not an octal mode like 0660"},
		{"pos", "mode = 01777", "mode: \"01777\" is not an octal mode like 0660"},
		{"pos", "mode = rw-rw----", "mode: \"rw-rw----\" is not an octal mode like 0660"},
		{"pos", "mode = 0577", "mode: \"0577\" does not let the owner read and write (0600 to 0777)"},
		{"pos", "mode = 0440", "mode: \"0440\" does not let the owner read and write (0600 to 0777)"},

		{"sync", "nightly = 24:00",
		 "nightly: \"24:00\" is not a time of day HH:MM (00:00 to 23:59) or off"},
		{"sync", "nightly = 23:60",
		 "nightly: \"23:60\" is not a time of day HH:MM (00:00 to 23:59) or off"},
		{"sync", "nightly = 7:5", "nightly: \"7:5\" is not a time of day HH:MM (00:00 to 23:59) or off"},
		{"sync", "nightly = 2330", "nightly: \"2330\" is not a time of day HH:MM (00:00 to 23:59) or off"},
		{"sync", "nightly = never",
		 "nightly: \"never\" is not a time of day HH:MM (00:00 to 23:59) or off"},
		{"sync", "after_link_up = 10x", "after_link_up: \"10x\" is not a duration" + dur},
		{"sync", "after_link_up = 15", "after_link_up: \"15\" has no unit" + dur},
		{"sync", "after_link_up = -5s", "after_link_up: \"-5s\" is negative"},
		{"sync", "after_link_up = 15 s", "after_link_up: \"15 s\" is not a duration" + dur},
		{"sync", "after_link_up = 1.5s", "after_link_up: \"1.5s\" is not a duration" + dur},
		{"sync", "after_link_up = 2d", "after_link_up: \"2d\" is not a duration" + dur},
		{"sync", "after_link_up = s", "after_link_up: \"s\" is not a duration" + dur},
		{"sync", "after_link_up = 15S", "after_link_up: \"15S\" is not a duration" + dur},
		{"sync", "after_link_up = off", "after_link_up: \"off\" is not a duration" + dur},
		{"sync", "after_link_up = 169h", "after_link_up: \"169h\" is more than 7 days (168h)"},
		{"sync", "after_link_up = 604800001ms",
		 "after_link_up: \"604800001ms\" is more than 7 days (168h)"},
		{"sync", "after_link_up = 99999999999999999999999h",
		 "after_link_up: \"99999999999999999999999h\" is more than 7 days (168h)"},
		{"sync", "retry_min = 999ms", "retry_min: \"999ms\" is less than 1s"},
		{"sync", "retry_min = 0s", "retry_min: \"0s\" is less than 1s"},
		{"sync", "retry_max = 10x", "retry_max: \"10x\" is not a duration" + dur},
		{"sync", "jitter = 20", "jitter: \"20\" is not a percentage like 20%"},
		{"sync", "jitter = 51%", "jitter: \"51%\" is not a percentage from 0% to 50%"},
		{"sync", "jitter = -1%", "jitter: \"-1%\" is not a percentage from 0% to 50%"},
		{"sync", "jitter = %", "jitter: \"%\" is not a percentage from 0% to 50%"},
		{"sync", "interval = 0s", "interval: \"0s\" is less than 1m"},
		{"sync", "nightly_spread = 0s", "nightly_spread: \"0s\" is less than 1m"},
		{"sync", "nightly_spread = 90s", "nightly_spread: must be whole minutes (1m to 6h), or off"},
		{"sync", "nightly_spread = 7h", "nightly_spread: \"7h\" is more than 6h"},
		{"sync", "interval = 59s", "interval: \"59s\" is less than 1m"},
		{"sync", "interval = never", "interval: \"never\" is not a duration" + dur},
		{"sync", "connect_timeout = 0ms", "connect_timeout: \"0ms\" is less than 1ms"},
		{"sync", "connect_timeout = 11m", "connect_timeout: \"11m\" is more than 10m"},
		{"sync", "io_timeout = 601s", "io_timeout: \"601s\" is more than 10m"},
		{"sync", "io_timeout = 1h", "io_timeout: \"1h\" is more than 10m"},

		{"display", "width = 23", "width: \"23\" is not a whole number from 24 to 80"},
		{"display", "width = 81", "width: \"81\" is not a whole number from 24 to 80"},
		{"display", "width = forty", "width: \"forty\" is not a whole number from 24 to 80"},
	};
	for (const Row &row : rows) {
		std::string text = std::string("[") + row.section + "]\n" + row.line + "\n";
		INFO(text);
		CHECK(error_of(text) ==
		      std::string("terminal.conf line 2: [") + row.section + "] " + row.message);
	}
}

TEST_CASE("errors: keys that do not fit the type, and keys a type needs", "[config]")
{
	struct Row {
		const char *name;
		std::string text;
		std::string message; // after "terminal.conf "
	};
	const std::vector<Row> rows = {
		{"device without a reader", "[reader]\ndevice = /dev/ttyS0\n",
		 "line 2: [reader] device: only used with type = evdev or serial (type is none)"},
		{"device with sim", "[reader]\ntype = sim\ndevice = /dev/ttyS0\n",
		 "line 3: [reader] device: only used with type = evdev or serial (type is sim)"},
		{"grab before a serial type", "[reader]\ngrab = no\ntype = serial\ndevice = /dev/ttyS0\n",
		 "line 2: [reader] grab: only used with type = evdev (type is serial)"},
		{"baud with evdev", "[reader]\ntype = evdev\ndevice = /dev/input/event0\nbaud = 9600\n",
		 "line 4: [reader] baud: only used with type = serial (type is evdev)"},
		{"printer path with stdout", "[printer]\npath = /dev/usb/lp0\n",
		 "line 2: [printer] path: only used with type = file (type is stdout)"},
		{"fsync with none", "[printer]\ntype = none\nfsync = yes\n",
		 "line 3: [printer] fsync: only used with type = file (type is none)"},
		{"interface with up", "[link]\ntype = up\ninterface = eth0\n",
		 "line 3: [link] interface: only used with type = kernel (type is up)"},
		{"start with the system clock", "[clock]\nstart = 2026-11-23T08:00:00+01:00\n",
		 "line 2: [clock] start: only used with type = sim (type is system)"},
		{"speed with the system clock", "[clock]\ntype = system\nspeed = 10\n",
		 "line 3: [clock] speed: only used with type = sim (type is system)"},
		{"evdev without device", "[reader]\ntype = evdev\ngrab = yes\n",
		 "line 2: [reader] type: evdev needs device = PATH"},
		{"serial without device", "[reader]\n\ntype = serial\n",
		 "line 3: [reader] type: serial needs device = PATH"},
		{"file printer without path", "[printer]\ntype = file\nfsync = yes\n",
		 "line 2: [printer] type: file needs path = PATH"},
		{"retry_max under the default retry_min", "[sync]\nretry_max = 10s\n",
		 "line 2: [sync] retry_max: 10s is less than retry_min (30s)"},
		{"retry_min over the default retry_max", "[sync]\nretry_min = 1h\n",
		 "line 2: [sync] retry_min: 1h is more than retry_max (30m)"},
		{"retry_max under retry_min, both set", "[sync]\nretry_max = 1m\nretry_min = 2m\n",
		 "line 2: [sync] retry_max: 1m is less than retry_min (2m)"},
	};
	for (const Row &row : rows) {
		INFO(row.name);
		CHECK(error_of(row.text) == "terminal.conf " + row.message);
	}
	// Equal is fine.
	CHECK(parsed("[sync]\nretry_min = 5m\nretry_max = 5m\n").sync.schedule.retry_max_ms == 300'000);
}

TEST_CASE("limits: each range at its boundaries", "[config]")
{
	struct Row {
		std::string text;
		bool ok;
	};
	const std::vector<Row> rows = {
		{"[sync]\nafter_link_up = 168h", true},
		{"[sync]\nafter_link_up = 10080m", true},
		{"[sync]\nafter_link_up = 604800s", true},
		{"[sync]\nafter_link_up = 604800000ms", true},
		{"[sync]\nafter_link_up = 604800001ms", false},
		{"[sync]\nafter_link_up = 0ms", true},
		{"[sync]\nretry_min = 1s\nretry_max = 1s", true},
		{"[sync]\nretry_min = 999ms", false},
		{"[sync]\nretry_max = 168h", true},
		{"[sync]\nretry_max = 169h", false},
		{"[sync]\ninterval = 1m", true},
		{"[sync]\nnightly_spread = 1m", true},
		{"[sync]\nnightly_spread = 6h", true},
		{"[sync]\nnightly_spread = off", true},
		{"[sync]\ninterval = 59999ms", false},
		{"[sync]\ninterval = 168h", true},
		{"[sync]\nconnect_timeout = 1ms\nio_timeout = 1ms", true},
		{"[sync]\nconnect_timeout = 10m\nio_timeout = 600000ms", true},
		{"[sync]\nio_timeout = 600001ms", false},
		{"[sync]\njitter = 0%", true},
		{"[sync]\njitter = 50%", true},
		{"[sync]\njitter = 51%", false},
		{"[sync]\nnightly = 00:00", true},
		{"[sync]\nnightly = 23:59", true},
		{"[sync]\nnightly = 24:00", false},
		{"[display]\nwidth = 24", true},
		{"[display]\nwidth = 80", true},
		{"[display]\nwidth = 23", false},
		{"[display]\nwidth = 81", false},
		{"[clock]\ntype = sim\nspeed = 1", true},
		{"[clock]\ntype = sim\nspeed = 100000", true},
		{"[clock]\ntype = sim\nspeed = 100001", false},
		{"[clock]\ntype = sim\nstart = 1970-01-01T00:00:00Z", true},
		{"[clock]\ntype = sim\nstart = 1970-01-01T00:59:59+01:00", false},
		{"[pos]\nmode = 0600", true},
		{"[pos]\nmode = 0577", false},
		{"[pos]\nmode = 0777", true},
		{"[pos]\nsocket = /" + std::string(106, 's'), true},
		{"[pos]\nsocket = /" + std::string(107, 's'), false},
		{"[link]\ninterface = abcdefghijklmno", true},
		{"[link]\ninterface = abcdefghijklmnop", false},
		{"[reader]\ntype = serial\ndevice = /x\nbaud = 1200", true},
		{"[reader]\ntype = serial\ndevice = /x\nbaud = 230400", true},
		{"[reader]\ntype = serial\ndevice = /x\nbaud = 600", false},
		{"[reader]\ntype = evdev\ndevice = /" + std::string(4094, 'd'), true},
		{"[reader]\ntype = evdev\ndevice = /" + std::string(4095, 'd'), false},
	};
	for (const Row &row : rows) {
		INFO(row.text);
		CHECK(parse_config(row.text, conf).is_ok() == row.ok);
	}
	for (int baud : {1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400})
		CHECK(parsed("[reader]\ntype = serial\ndevice = /x\nbaud = " + std::to_string(baud))
			      .reader.baud == baud);

	// The file: 64 KiB is a file, one byte more is not.
	std::string text = "[display]\nwidth = 30\n";
	std::string at_limit = text + std::string(loy::fw::config_bytes_max - text.size() - 1, '#') + "\n";
	REQUIRE(at_limit.size() == 65536);
	CHECK(parsed(at_limit).display.width == 30);
	CHECK(error_of(at_limit + "\n") ==
	      "terminal.conf: 65537 bytes, more than the 65536 a configuration may have");
}

TEST_CASE("round trip: parse_config(format_config(c)) == c", "[config]")
{
	TerminalConfig a;
	a.reader.type = ReaderType::evdev;
	a.reader.device = "/dev/input/by-id/usb-Foo Bar #1 ;x-event-kbd";
	a.reader.grab = false;
	a.printer.type = PrinterType::file;
	a.printer.path = "/var/log/loyalty/receipts \"main\" \\ caf\xc3\xa9.txt";
	a.printer.fsync = true;
	a.link.type = LinkType::kernel;
	a.link.interface = "wlan0";
	a.clock.type = ClockType::sim;
	a.clock.start = timestamp("2026-11-23T08:00:00+01:00");
	a.clock.speed = 3600;
	a.pos.socket = "/run/loyalty/pos ;1.sock";
	a.pos.mode = 0600;
	a.sync.schedule.nightly_minute = -1;
	a.sync.schedule.after_link_up_ms = 0;
	a.sync.schedule.retry_min_ms = 1'500;
	a.sync.schedule.retry_max_ms = 2 * 3'600'000;
	a.sync.schedule.jitter_pct = 0;
	a.sync.schedule.interval_ms = 90'000;
	a.sync.connect_timeout_ms = 250;
	a.sync.io_timeout_ms = 600'000;
	a.display.width = 24;

	TerminalConfig b;
	b.reader.type = ReaderType::serial;
	b.reader.device = "/dev/ttyACM0";
	b.reader.baud = 115200;
	b.printer.type = PrinterType::none;
	b.link.type = LinkType::up;
	b.clock.type = ClockType::system;
	b.pos.socket = "sub dir/pos.sock";
	b.pos.mode = 0777;
	b.sync.schedule.nightly_minute = 7 * 60 + 5;
	b.sync.schedule.after_link_up_ms = loy::fw::duration_ms_max;
	b.sync.schedule.retry_min_ms = 1'000;
	b.sync.schedule.retry_max_ms = loy::fw::duration_ms_max;
	b.sync.schedule.jitter_pct = 50;
	b.sync.schedule.interval_ms = loy::fw::duration_ms_max;
	b.sync.connect_timeout_ms = 1;
	b.sync.io_timeout_ms = 1;
	b.display.width = 80;

	TerminalConfig sims;
	sims.reader.type = ReaderType::sim;
	sims.printer.type = PrinterType::sim;
	sims.link.type = LinkType::sim;
	sims.clock.type = ClockType::sim; // start unset: written commented out
	sims.clock.start.reset();
	sims.sync.schedule.nightly_minute = 0;

	TerminalConfig zulu;
	zulu.clock.type = ClockType::sim;
	zulu.clock.start = timestamp("2030-02-28T23:59:59Z");
	zulu.reader.type = ReaderType::serial;
	zulu.reader.device = "/dev/ttyS0";
	zulu.printer.type = PrinterType::standard_output;

	// Every section of `a` differs from the defaults, so that a key the
	// formatter forgot would show.
	const TerminalConfig d;
	CHECK(a.reader != d.reader);
	CHECK(a.printer != d.printer);
	CHECK(a.link != d.link);
	CHECK(a.clock != d.clock);
	CHECK(a.pos != d.pos);
	CHECK(a.sync != d.sync);
	CHECK(a.display != d.display);

	int i = 0;
	for (const TerminalConfig &c : {d, a, b, sims, zulu}) {
		std::string text = format_config(c);
		INFO("config " << i++ << ":\n" << text);
		TerminalConfig back = parsed(text);
		CHECK(back == c);
		CHECK(format_config(back) == text);
	}

	// The formatted text writes what it says.
	std::string text = format_config(a);
	CHECK(text.find("\ntype = evdev\n") != std::string::npos);
	CHECK(text.find("\ndevice = \"/dev/input/by-id/usb-Foo Bar #1 ;x-event-kbd\"\n") !=
	      std::string::npos);
	CHECK(text.find("\ngrab = no\n") != std::string::npos);
	CHECK(text.find("\n#baud = 0\n") != std::string::npos);
	CHECK(text.find("\nstart = 2026-11-23T08:00:00+01:00\n") != std::string::npos);
	CHECK(text.find("\nnightly = off\n") != std::string::npos);
	CHECK(text.find("\nretry_min = 1500ms\n") != std::string::npos);
	CHECK(text.find("\nretry_max = 2h\n") != std::string::npos);
	CHECK(text.find("\ninterval = 90s\n") != std::string::npos);
	CHECK(text.find("\nio_timeout = 10m\n") != std::string::npos);
	CHECK(text.find("\nmode = 0600\n") != std::string::npos);
	CHECK(format_config(b).find("\nnightly = 07:05\n") != std::string::npos);
	CHECK(format_config(b).find("\nafter_link_up = 168h\n") != std::string::npos);
	CHECK(format_config(sims).find("\n#start = ") != std::string::npos);
}

TEST_CASE("the example terminal.conf: every key, the defaults, in step with the code",
	  "[config]")
{
	const std::string example = read_file(LOYALTY_TERMINAL_CONF);
	// firmware/terminal.conf is format_config() of the defaults: when this
	// fails, write the "expected" text below into the file.
	INFO("expected:\n" << format_config(TerminalConfig{}));
	CHECK(example == format_config(TerminalConfig{}));
	CHECK(parsed(example) == TerminalConfig{});

	// Every key is there, with a one-line comment just above it.
	std::istringstream in(example);
	std::vector<std::string> lines;
	for (std::string l; std::getline(in, l);)
		lines.push_back(l);
	size_t at = 0;
	for (const std::string &key : all_keys()) {
		INFO(key);
		bool found = false;
		for (; at < lines.size() && !found; at++) {
			const std::string &l = lines[at];
			if (key[0] == '[')
				found = l == key;
			else
				found = l.rfind(key + " = ", 0) == 0 || l.rfind("#" + key + " = ", 0) == 0;
			if (found && key[0] != '[') {
				REQUIRE(at > 0);
				CHECK(lines[at - 1].rfind("# ", 0) == 0);
			}
		}
		CHECK(found);
	}
	// And nothing past 80 columns, for an integrator's terminal.
	for (const std::string &l : lines) {
		INFO(l);
		CHECK(l.size() <= 80);
	}
}

TEST_CASE("load_config: a file, a missing one, and the socket in the data dir", "[config]")
{
	TempDir dir;
	const std::string path = dir / "terminal.conf";

	SECTION("missing, allowed: the defaults, socket in the data dir")
	{
		auto r = load_config(path, true, dir.path());
		REQUIRE(r.is_ok());
		TerminalConfig want;
		want.pos.socket = dir / "pos.sock";
		CHECK(*r == want);
		// A data dir written with a slash at its end gives the same path.
		auto slash = load_config(path, true, dir.path() + "/");
		REQUIRE(slash.is_ok());
		CHECK(slash->pos.socket == dir / "pos.sock");
	}
	SECTION("missing, not allowed: an error naming the path")
	{
		auto r = load_config(path, false, dir.path());
		REQUIRE(!r.is_ok());
		CHECK(r.status().code() == Code::bad_argument);
		CHECK(r.status().message() == path + ": No such file or directory");
	}
	SECTION("a file: parsed, errors named by its path")
	{
		write_file(path, "[display]\nwidth = 32\n[pos]\nsocket = run/pos.sock\n");
		auto r = load_config(path, false, dir.path());
		REQUIRE(r.is_ok());
		CHECK(r->display.width == 32);
		CHECK(r->pos.socket == dir / "run/pos.sock");

		write_file(path, "[display]\nwidth = 320\n");
		auto bad = load_config(path, true, dir.path());
		REQUIRE(!bad.is_ok());
		CHECK(bad.status().message() ==
		      path + " line 2: [display] width: \"320\" is not a whole number from 24 to 80");
	}
	SECTION("an absolute socket stays as it is")
	{
		write_file(path, "[pos]\nsocket = /run/loyalty/pos.sock\n");
		auto r = load_config(path, false, dir.path());
		REQUIRE(r.is_ok());
		CHECK(r->pos.socket == "/run/loyalty/pos.sock");
	}
	SECTION("a socket too long once in the data dir")
	{
		const std::string deep = dir / std::string(100, 'd');
		const std::string deep_conf = dir / "deep.conf";
		write_file(deep_conf, "# long\n[pos]\nsocket = pos.sock\n");
		auto r = load_config(deep_conf, false, deep);
		REQUIRE(!r.is_ok());
		std::string joined = deep + "/pos.sock";
		CHECK(r.status().message().rfind(deep_conf + " line 3: [pos] socket: \"", 0) == 0);
		CHECK(r.status().message().find("\" is " + std::to_string(joined.size()) +
						" bytes, more than the 107 of a unix socket path") !=
		      std::string::npos);
		// The default too, when no file says where the socket is.
		auto d = load_config(dir / "none.conf", true, deep);
		REQUIRE(!d.is_ok());
		CHECK(d.status().message().rfind(dir / "none.conf: [pos] socket: \"", 0) == 0);
		CHECK(d.status().message().find("; set a shorter one (an absolute path)") !=
		      std::string::npos);
	}
	SECTION("not a regular file")
	{
		auto r = load_config(dir.path(), false, dir.path());
		REQUIRE(!r.is_ok());
		CHECK(r.status().message() == dir.path() + ": not a regular file");
	}
	SECTION("a file over 64 KiB")
	{
		write_file(path, std::string(loy::fw::config_bytes_max + 1, '\n'));
		auto r = load_config(path, true, dir.path());
		REQUIRE(!r.is_ok());
		CHECK(r.status().message() ==
		      path + ": more than the 65536 bytes a configuration may have");
		write_file(path, std::string(loy::fw::config_bytes_max, '\n'));
		CHECK(load_config(path, true, dir.path()).is_ok());
	}
}
