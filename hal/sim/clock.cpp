// The simulated clock: true time, and a device clock that drifts from it,
// whose wall time can be set while its monotonic time only ever advances.
#include <cassert>

#include "hal/sim/sim.hpp"

namespace loy::hal::sim {

namespace {
constexpr int64_t ppm_scale = 1'000'000;
}

SimClock::SimClock(int64_t wall_ms, int64_t monotonic_ms)
	: wall_ms_(wall_ms), monotonic_ms_(monotonic_ms)
{
	table_.version = LOY_HAL_CLOCK_VERSION;
	table_.wall_ms = wall_cb;
	table_.monotonic_ms = monotonic_cb;
	table_.ctx = this;
}

void SimClock::advance_ms(int64_t ms)
{
	assert(ms >= 0 && ms <= step_ms_max);
	std::lock_guard lock(mu_);
	true_ms_ += ms;
	int64_t scaled = ms * (ppm_scale + drift_ppm_) + carry_;
	int64_t device_ms = scaled / ppm_scale;
	carry_ = scaled % ppm_scale;
	assert(device_ms >= 0 && carry_ >= 0);
	wall_ms_ += device_ms;
	monotonic_ms_ += device_ms;
}

void SimClock::set_wall_ms(int64_t wall_ms)
{
	std::lock_guard lock(mu_);
	wall_ms_ = wall_ms;
}

void SimClock::jump_ms(int64_t delta_ms)
{
	assert(delta_ms >= -step_ms_max && delta_ms <= step_ms_max);
	std::lock_guard lock(mu_);
	wall_ms_ += delta_ms;
}

void SimClock::set_drift_ppm(int64_t ppm)
{
	assert(ppm >= -drift_ppm_max && ppm <= drift_ppm_max);
	std::lock_guard lock(mu_);
	drift_ppm_ = ppm;
}

void SimClock::set_broken(bool broken)
{
	std::lock_guard lock(mu_);
	broken_ = broken;
}

int64_t SimClock::wall_ms() const
{
	std::lock_guard lock(mu_);
	return broken_ ? LOY_HAL_TIME_INVALID : wall_ms_;
}

int64_t SimClock::monotonic_ms() const
{
	std::lock_guard lock(mu_);
	return broken_ ? LOY_HAL_TIME_INVALID : monotonic_ms_;
}

int64_t SimClock::true_ms() const
{
	std::lock_guard lock(mu_);
	return true_ms_;
}

int64_t SimClock::wall_cb(void *ctx) { return static_cast<SimClock *>(ctx)->wall_ms(); }

int64_t SimClock::monotonic_cb(void *ctx) { return static_cast<SimClock *>(ctx)->monotonic_ms(); }

} // namespace loy::hal::sim
