// The system clocks: wall time agrees with the C++ clock, monotonic time never
// decreases and follows a sleep, a failing clock_gettime is
// LOY_HAL_TIME_INVALID, and close is idempotent.
#include <catch2/catch.hpp>

#include <cerrno>
#include <chrono>
#include <thread>

#include "hal/linux/sys.hpp"
#include "loyalty/hal.h"

TEST_CASE("linux clock: wall time is the system's")
{
	loy_hal_clock c;
	REQUIRE(loy_hal_linux_clock_open(&c) == 0);
	CHECK(c.version == LOY_HAL_CLOCK_VERSION);
	using namespace std::chrono;
	int64_t before = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
	int64_t wall = c.wall_ms(c.ctx);
	int64_t after = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
	CHECK(wall >= before);
	CHECK(wall <= after + 1);
	loy_hal_linux_clock_close(&c);
	CHECK(c.ctx == nullptr);
	CHECK(c.wall_ms == nullptr);
	loy_hal_linux_clock_close(&c); // a zeroed table is ignored
	loy_hal_linux_clock_close(nullptr);
}

TEST_CASE("linux clock: monotonic time never decreases and follows a sleep")
{
	loy_hal_clock c;
	REQUIRE(loy_hal_linux_clock_open(&c) == 0);
	int64_t last = c.monotonic_ms(c.ctx);
	for (int i = 0; i < 200'000; i++) {
		int64_t now = c.monotonic_ms(c.ctx);
		REQUIRE(now >= last);
		last = now;
	}
	int64_t before = c.monotonic_ms(c.ctx);
	std::this_thread::sleep_for(std::chrono::milliseconds(25));
	int64_t slept = c.monotonic_ms(c.ctx) - before;
	CHECK(slept >= 24); // whole milliseconds: a truncation each end
	CHECK(slept < 10'000);
	loy_hal_linux_clock_close(&c);
}

TEST_CASE("linux clock: a clock that cannot be read answers LOY_HAL_TIME_INVALID")
{
	loy::hal::Sys sys = loy::hal::real_sys();
	sys.clock_gettime = [](clockid_t, struct timespec *) {
		errno = EINVAL;
		return -1;
	};
	loy_hal_clock c;
	REQUIRE(loy::hal::clock_open(&c, sys) == 0);
	CHECK(c.wall_ms(c.ctx) == LOY_HAL_TIME_INVALID);
	CHECK(c.monotonic_ms(c.ctx) == LOY_HAL_TIME_INVALID);
	loy_hal_linux_clock_close(&c);
	CHECK(loy_hal_linux_clock_open(nullptr) == LOY_HAL_E_ARGUMENT);
}
