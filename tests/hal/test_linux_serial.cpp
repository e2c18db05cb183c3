// The serial reader on a pseudo-terminal (the master plays the scanner), and
// its line decoder on its own: scans of the CLI contract, CR LF handling,
// scans split across writes and several in one, lines too long or with bytes
// no scan holds, time-outs, the scanner going away, and the line's settings
// restored on close.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "hal/linux/decode.hpp"
#include "hal/linux/sys.hpp"
#include "loyalty/hal.h"
#include "tmp.hpp"

using hal_test::read_scan;
using loy::hal::Decoded;
using loy::hal::LineDecoder;

namespace {

int64_t steady_ms()
{
	using namespace std::chrono;
	return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

// A pseudo-terminal: the test writes to the master what a scanner would
// send; the reader opens the slave.
struct Pty {
	int master = -1;
	std::string slave;
	Pty()
	{
		master = ::posix_openpt(O_RDWR | O_NOCTTY);
		REQUIRE(master >= 0);
		REQUIRE(::grantpt(master) == 0);
		REQUIRE(::unlockpt(master) == 0);
		slave = ::ptsname(master);
	}
	~Pty()
	{
		if (master >= 0)
			::close(master);
	}
	void send(const std::string &bytes) const
	{
		REQUIRE(::write(master, bytes.data(), bytes.size()) ==
			static_cast<ssize_t>(bytes.size()));
	}
};

struct Reader {
	loy_hal_card_reader table{};
	explicit Reader(const std::string &path, int baud = 9600)
	{
		REQUIRE(loy_hal_linux_serial_open(&table, path.c_str(), baud) == 0);
	}
	~Reader() { loy_hal_linux_serial_close(&table); }
};

// Every scan and failure the decoder makes of `bytes`.
std::vector<std::string> decode(const std::string &bytes)
{
	LineDecoder d;
	std::vector<std::string> out;
	for (char c : bytes) {
		Decoded r = d.feed(c);
		if (r == Decoded::scan)
			out.push_back(d.scan());
		else if (r == Decoded::bad_scan)
			out.push_back("<bad>");
	}
	return out;
}

} // namespace

TEST_CASE("serial decoder: lines to scans")
{
	using V = std::vector<std::string>;
	struct Row {
		const char *name;
		std::string bytes;
		V scans;
	};
	const std::string longest(LOY_HAL_SCAN_MAX - 1, '7');
	const Row rows[] = {
		{"CR LF", "6280001234567895\r\n", V{"6280001234567895"}},
		{"LF", "6280001234567895\n", V{"6280001234567895"}},
		{"CR", "6280001234567895\r", V{"6280001234567895"}},
		{"LF CR", "6280001234567895\n\r", V{"6280001234567895"}},
		{"track 2", ";6280001234567895=2812?\r\n", V{";6280001234567895=2812?"}},
		{"QR", "LOYALTY:6280001234567895\r\n", V{"LOYALTY:6280001234567895"}},
		{"spaces kept", "6280 0012 3456 7895\r\n", V{"6280 0012 3456 7895"}},
		{"empty lines skipped", "\r\n\r\n\n", V{}},
		{"no terminator yet", "6280001234567895", V{}},
		{"two in one", "1\r\n2\n", V{"1", "2"}},
		{"the longest scan", longest + "\r\n", V{longest}},
		{"one byte too long", longest + "7\r\n" + "1\r\n", V{"<bad>", "1"}},
		{"a control byte", "\x02" "6280001234567895\x03\r\n", V{"<bad>"}},
		{"a byte past ASCII", "62800\xff\r\n9\n", V{"<bad>", "9"}},
		{"a NUL", std::string("628\0" "00\r\n", 8), V{"<bad>"}},
	};
	for (const Row &row : rows) {
		INFO(row.name);
		CHECK(decode(row.bytes) == row.scans);
	}
}

TEST_CASE("serial reader: a scan written to the master is read from the slave")
{
	Pty pty;
	Reader reader(pty.slave);
	const loy_hal_card_reader *t = &reader.table;
	CHECK(t->version == LOY_HAL_CARD_READER_VERSION);
	pty.send("6280001234567895\r\n");
	auto got = read_scan(t, 2000);
	CHECK(got.rc == 1);
	CHECK(got.text == "6280001234567895");
}

TEST_CASE("serial reader: time-out when nothing comes")
{
	Pty pty;
	Reader reader(pty.slave, 115200);
	const int64_t start = steady_ms();
	CHECK(read_scan(&reader.table, 50).rc == 0);
	const int64_t waited = steady_ms() - start;
	CHECK(waited >= 45);
	CHECK(waited < 5000);
	CHECK(read_scan(&reader.table, 0).rc == 0);
	// Half a scan is not a scan yet, and is kept for the next read.
	pty.send("62800012");
	CHECK(read_scan(&reader.table, 50).rc == 0);
	pty.send("34567895\r\n");
	CHECK(read_scan(&reader.table, 2000).text == "6280001234567895");
}

TEST_CASE("serial reader: several scans in one write come one per read")
{
	Pty pty;
	Reader reader(pty.slave);
	pty.send("6280001234567895\r\n;6280001234567895=2812?\r\n\r\nLOYALTY:6280001234567895\n");
	CHECK(read_scan(&reader.table, 2000).text == "6280001234567895");
	CHECK(read_scan(&reader.table, 2000).text == ";6280001234567895=2812?");
	CHECK(read_scan(&reader.table, 2000).text == "LOYALTY:6280001234567895");
	CHECK(read_scan(&reader.table, 0).rc == 0);
}

TEST_CASE("serial reader: bad scans are dropped, the next one is read")
{
	Pty pty;
	Reader reader(pty.slave);
	pty.send(std::string(LOY_HAL_SCAN_MAX, '1') + "\r\n6280001234567895\r\n");
	CHECK(read_scan(&reader.table, 2000).rc == LOY_HAL_E_BAD_SCAN);
	CHECK(read_scan(&reader.table, 2000).text == "6280001234567895");
	// Too long for the caller's buffer.
	pty.send("6280001234567895\r\n");
	CHECK(read_scan(&reader.table, 2000, 16).rc == LOY_HAL_E_BAD_SCAN);
	char buf[8];
	CHECK(reader.table.read_scan(reader.table.ctx, buf, 0, 0) == LOY_HAL_E_ARGUMENT);
	CHECK(reader.table.read_scan(reader.table.ctx, nullptr, 8, 0) == LOY_HAL_E_ARGUMENT);
}

TEST_CASE("serial reader: the scanner going away is LOY_HAL_E_GONE")
{
	Pty pty;
	Reader reader(pty.slave);
	pty.send("6280001234567895\r\n");
	::close(pty.master);
	pty.master = -1;
	// What was sent before the hang-up may or may not be readable; after
	// it, the reader reports the device gone.
	auto first = read_scan(&reader.table, 2000);
	CHECK((first.rc == 1 || first.rc == LOY_HAL_E_GONE));
	if (first.rc == 1)
		CHECK(read_scan(&reader.table, 2000).rc == LOY_HAL_E_GONE);
}

TEST_CASE("serial reader: a failing poll or read is reported")
{
	Pty pty;
	loy::hal::Sys sys = loy::hal::real_sys();
	sys.poll = [](struct pollfd *, nfds_t, int) {
		errno = ENOMEM;
		return -1;
	};
	loy_hal_card_reader r;
	REQUIRE(loy::hal::serial_open(&r, pty.slave.c_str(), 9600, sys) == 0);
	CHECK(read_scan(&r, 100).rc == LOY_HAL_E_IO);
	loy_hal_linux_serial_close(&r);

	sys = loy::hal::real_sys();
	sys.read = [](int, void *, size_t) -> ssize_t {
		errno = EBADF;
		return -1;
	};
	REQUIRE(loy::hal::serial_open(&r, pty.slave.c_str(), 9600, sys) == 0);
	pty.send("1\r\n");
	CHECK(read_scan(&r, 2000).rc == LOY_HAL_E_IO);
	loy_hal_linux_serial_close(&r);
}

TEST_CASE("serial reader: raw mode while open, the line's settings back after close")
{
	Pty pty;
	// Our own descriptor on the slave, to look at its settings.
	int fd = ::open(pty.slave.c_str(), O_RDWR | O_NOCTTY);
	REQUIRE(fd >= 0);
	struct termios before, during, after;
	REQUIRE(::tcgetattr(fd, &before) == 0);
	REQUIRE((before.c_lflag & ICANON) != 0); // a fresh pty is cooked
	{
		Reader reader(pty.slave, 19200);
		REQUIRE(::tcgetattr(fd, &during) == 0);
		CHECK((during.c_lflag & (ICANON | ECHO)) == 0);
		CHECK(cfgetispeed(&during) == B19200);
	}
	REQUIRE(::tcgetattr(fd, &after) == 0);
	CHECK(after.c_lflag == before.c_lflag);
	CHECK(after.c_iflag == before.c_iflag);
	CHECK(after.c_oflag == before.c_oflag);
	CHECK(after.c_cflag == before.c_cflag);
	::close(fd);
}

TEST_CASE("serial reader: bad opens")
{
	Pty pty;
	loy_hal_card_reader r;
	CHECK(loy_hal_linux_serial_open(&r, pty.slave.c_str(), 12345) == LOY_HAL_E_ARGUMENT);
	CHECK(loy_hal_linux_serial_open(&r, "/dev/null", 9600) == LOY_HAL_E_ARGUMENT); // not a tty
	CHECK(loy_hal_linux_serial_open(&r, "/nonexistent/ttyS9", 9600) == LOY_HAL_E_IO);
	CHECK(loy_hal_linux_serial_open(&r, "", 9600) == LOY_HAL_E_ARGUMENT);
	CHECK(loy_hal_linux_serial_open(nullptr, pty.slave.c_str(), 9600) == LOY_HAL_E_ARGUMENT);
	// 0 keeps the line's speed.
	REQUIRE(loy_hal_linux_serial_open(&r, pty.slave.c_str(), 0) == 0);
	loy_hal_linux_serial_close(&r);
	CHECK(r.ctx == nullptr);
	loy_hal_linux_serial_close(&r);
}
