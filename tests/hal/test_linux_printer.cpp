// The printer on a file and on a tty: lines appended whole, fsync on flush
// only when asked (counted through the Sys table), lines it refuses, writes
// that fail or come out short, and a pseudo-terminal as the printer's line.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>

#include "hal/linux/sys.hpp"
#include "loyalty/hal.h"
#include "tmp.hpp"

using hal_test::TempDir;

namespace {

std::string slurp(const std::string &path)
{
	std::ifstream in(path, std::ios::binary);
	std::ostringstream s;
	s << in.rdbuf();
	return s.str();
}

int print(const loy_hal_printer &p, const std::string &line)
{
	return p.print_line(p.ctx, line.c_str());
}

std::atomic<int> fsyncs{0};

} // namespace

TEST_CASE("linux printer: lines appended to a file, whole")
{
	TempDir dir;
	const std::string path = dir / "receipts.txt";
	loy_hal_printer p;
	REQUIRE(loy_hal_linux_printer_open(&p, path.c_str(), 0) == 0);
	CHECK(p.version == LOY_HAL_PRINTER_VERSION);
	CHECK(print(p, "Cafe Rewards") == 0);
	CHECK(print(p, "") == 0);
	// Written at once, before any flush.
	CHECK(slurp(path) == "Cafe Rewards\n\n");
	CHECK(p.flush(p.ctx) == 0);
	loy_hal_linux_printer_close(&p);
	CHECK(p.ctx == nullptr);
	loy_hal_linux_printer_close(&p);
	struct stat st;
	REQUIRE(::stat(path.c_str(), &st) == 0);
	const mode_t mask = ::umask(0);
	::umask(mask);
	CHECK((st.st_mode & 0777) == (0640 & ~mask));

	// Opened again, it appends.
	REQUIRE(loy_hal_linux_printer_open(&p, path.c_str(), 0) == 0);
	CHECK(print(p, std::string(LOY_HAL_LINE_MAX - 1, 'x')) == 0);
	loy_hal_linux_printer_close(&p);
	CHECK(slurp(path) == "Cafe Rewards\n\n" + std::string(LOY_HAL_LINE_MAX - 1, 'x') + "\n");
}

TEST_CASE("linux printer: lines it refuses leave the file as it was")
{
	TempDir dir;
	const std::string path = dir / "receipts.txt";
	loy_hal_printer p;
	REQUIRE(loy_hal_linux_printer_open(&p, path.c_str(), 0) == 0);
	CHECK(p.print_line(p.ctx, nullptr) == LOY_HAL_E_ARGUMENT);
	CHECK(print(p, "two\nlines") == LOY_HAL_E_ARGUMENT);
	CHECK(print(p, "cr\r") == LOY_HAL_E_ARGUMENT);
	CHECK(print(p, std::string(LOY_HAL_LINE_MAX, 'x')) == LOY_HAL_E_ARGUMENT);
	loy_hal_linux_printer_close(&p);
	CHECK(slurp(path).empty());
}

TEST_CASE("linux printer: flush fsyncs a file only with LOY_HAL_PRINTER_FSYNC")
{
	TempDir dir;
	loy::hal::Sys sys = loy::hal::real_sys();
	sys.fsync = [](int fd) {
		fsyncs++;
		return ::fsync(fd);
	};
	for (unsigned flags : {0u, LOY_HAL_PRINTER_FSYNC}) {
		INFO("flags " << flags);
		fsyncs = 0;
		loy_hal_printer p;
		REQUIRE(loy::hal::printer_open(&p, (dir / "journal").c_str(), flags, sys) == 0);
		CHECK(print(p, "line") == 0);
		CHECK(fsyncs == 0);
		CHECK(p.flush(p.ctx) == 0);
		CHECK(fsyncs == (flags ? 1 : 0));
		loy_hal_linux_printer_close(&p);
	}
	sys.fsync = [](int) {
		errno = EIO;
		return -1;
	};
	loy_hal_printer p;
	REQUIRE(loy::hal::printer_open(&p, (dir / "journal").c_str(), LOY_HAL_PRINTER_FSYNC, sys) == 0);
	CHECK(p.flush(p.ctx) == LOY_HAL_E_IO);
	loy_hal_linux_printer_close(&p);
}

TEST_CASE("linux printer: short writes are finished, failed ones reported")
{
	TempDir dir;
	const std::string path = dir / "journal";
	loy::hal::Sys sys = loy::hal::real_sys();
	sys.write = [](int fd, const void *p, size_t n) -> ssize_t {
		return ::write(fd, p, n < 3 ? n : 3);
	};
	loy_hal_printer p;
	REQUIRE(loy::hal::printer_open(&p, path.c_str(), 0, sys) == 0);
	CHECK(print(p, "Earned 13 points") == 0);
	loy_hal_linux_printer_close(&p);
	CHECK(slurp(path) == "Earned 13 points\n");

	sys.write = [](int, const void *, size_t) -> ssize_t {
		errno = ENOSPC;
		return -1;
	};
	REQUIRE(loy::hal::printer_open(&p, path.c_str(), 0, sys) == 0);
	CHECK(print(p, "lost") == LOY_HAL_E_IO);
	loy_hal_linux_printer_close(&p);
}

TEST_CASE("linux printer: bad opens")
{
	TempDir dir;
	loy_hal_printer p;
	CHECK(loy_hal_linux_printer_open(&p, dir.path().c_str(), 0) == LOY_HAL_E_IO); // a directory
	CHECK(loy_hal_linux_printer_open(&p, (dir / "no/such/dir").c_str(), 0) == LOY_HAL_E_IO);
	CHECK(loy_hal_linux_printer_open(&p, (dir / "x").c_str(), 0x80) == LOY_HAL_E_ARGUMENT);
	CHECK(loy_hal_linux_printer_open(&p, "", 0) == LOY_HAL_E_ARGUMENT);
	CHECK(loy_hal_linux_printer_open(&p, nullptr, 0) == LOY_HAL_E_ARGUMENT);
	CHECK(loy_hal_linux_printer_open(nullptr, "x", 0) == LOY_HAL_E_ARGUMENT);
}

TEST_CASE("linux printer: on a tty, flush drains the line")
{
	int master = ::posix_openpt(O_RDWR | O_NOCTTY);
	REQUIRE(master >= 0);
	REQUIRE(::grantpt(master) == 0);
	REQUIRE(::unlockpt(master) == 0);
	const std::string slave = ::ptsname(master);
	loy_hal_printer p;
	REQUIRE(loy_hal_linux_printer_open(&p, slave.c_str(), 0) == 0);
	CHECK(print(p, "Total EUR 13.50") == 0);
	CHECK(p.flush(p.ctx) == 0);
	// The tty's own settings apply: a printer line usually wants CR LF.
	std::string got;
	char buf[64];
	struct pollfd pfd = {master, POLLIN, 0};
	while (got.find('\n') == std::string::npos && ::poll(&pfd, 1, 2000) == 1) {
		ssize_t n = ::read(master, buf, sizeof buf);
		if (n <= 0)
			break;
		got.append(buf, static_cast<size_t>(n));
	}
	CHECK((got == "Total EUR 13.50\r\n" || got == "Total EUR 13.50\n"));
	loy_hal_linux_printer_close(&p);
	::close(master);
}
