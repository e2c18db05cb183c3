// The system clocks: CLOCK_REALTIME for wall time, CLOCK_MONOTONIC for
// intervals (it does not count time suspended, as time-outs should not).
#include <new>

#include "hal/linux/sys.hpp"

namespace loy::hal {

namespace {

struct LinuxClock {
	Sys sys;
};

int64_t read_ms(const Sys &sys, clockid_t id)
{
	struct timespec ts {};
	if (sys.clock_gettime(id, &ts) != 0)
		return LOY_HAL_TIME_INVALID;
	return static_cast<int64_t>(ts.tv_sec) * 1000 + static_cast<int64_t>(ts.tv_nsec) / 1000000;
}

int64_t wall_ms(void *ctx) { return read_ms(static_cast<LinuxClock *>(ctx)->sys, CLOCK_REALTIME); }

int64_t monotonic_ms(void *ctx)
{
	return read_ms(static_cast<LinuxClock *>(ctx)->sys, CLOCK_MONOTONIC);
}

} // namespace

int clock_open(loy_hal_clock *out, const Sys &sys)
{
	if (!out)
		return LOY_HAL_E_ARGUMENT;
	*out = {};
	auto *c = new (std::nothrow) LinuxClock{sys};
	if (!c)
		return LOY_HAL_E_IO;
	out->version = LOY_HAL_CLOCK_VERSION;
	out->wall_ms = wall_ms;
	out->monotonic_ms = monotonic_ms;
	out->ctx = c;
	return 0;
}

} // namespace loy::hal

extern "C" int loy_hal_linux_clock_open(loy_hal_clock *out)
{
	return loy::hal::clock_open(out, loy::hal::real_sys());
}

extern "C" void loy_hal_linux_clock_close(loy_hal_clock *clock)
{
	if (!clock)
		return;
	delete static_cast<loy::hal::LinuxClock *>(clock->ctx);
	*clock = {};
}
