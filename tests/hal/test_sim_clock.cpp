// The simulated clock through its C table: advancing, drift in ppm with no
// fraction lost, wall time jumps that leave monotonic time alone, a dead
// clock, and a seeded random walk that monotonic time survives.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <random>
#include <thread>

#include "hal/sim/sim.hpp"

using loy::hal::sim::SimClock;

namespace {

int64_t wall(const loy_hal_clock *c) { return c->wall_ms(c->ctx); }
int64_t mono(const loy_hal_clock *c) { return c->monotonic_ms(c->ctx); }

} // namespace

TEST_CASE("sim clock: a table of version 1 over the object")
{
	SimClock clock(1'000'000, 500);
	const loy_hal_clock *t = clock.table();
	CHECK(t->version == LOY_HAL_CLOCK_VERSION);
	CHECK(wall(t) == 1'000'000);
	CHECK(mono(t) == 500);
	clock.advance_ms(250);
	CHECK(wall(t) == 1'000'250);
	CHECK(mono(t) == 750);
	CHECK(clock.true_ms() == 250);
	clock.advance_ms(0);
	CHECK(mono(t) == 750);
}

TEST_CASE("sim clock: drift scales both clocks, fractions carried")
{
	struct Row {
		int64_t ppm;
		int64_t steps, step_ms; // true time passes in `steps` steps of `step_ms`
		int64_t device_ms;      // what the device counts
	};
	const Row rows[] = {
		{0, 1, 1000, 1000},
		{100, 1, 1'000'000, 1'000'100},
		{-100, 1, 1'000'000, 999'900},
		{50, 1, 10'000, 10'000}, // half a millisecond carried
		{50, 2, 10'000, 20'001}, // without the carry, 20'000
		{1, 1000, 1000, 1'000'001}, // a millionth per step adds up
		{-1, 1000, 1000, 999'999},
		{SimClock::drift_ppm_max, 1, 1000, 1100},
		{-SimClock::drift_ppm_max, 1, 1000, 900},
		{-SimClock::drift_ppm_max, 1, 1, 0}, // 0.9 ms carried
		{-SimClock::drift_ppm_max, 10, 1, 9},
	};
	for (const Row &row : rows) {
		INFO("ppm " << row.ppm << ", " << row.steps << " x " << row.step_ms << " ms");
		SimClock clock(0, 0);
		clock.set_drift_ppm(row.ppm);
		for (int64_t i = 0; i < row.steps; i++)
			clock.advance_ms(row.step_ms);
		CHECK(mono(clock.table()) == row.device_ms);
		CHECK(wall(clock.table()) == row.device_ms);
		CHECK(clock.true_ms() == row.steps * row.step_ms);
	}
}

TEST_CASE("sim clock: the longest step with the largest drift does not overflow")
{
	SimClock clock(0, 0);
	clock.set_drift_ppm(SimClock::drift_ppm_max);
	clock.advance_ms(SimClock::step_ms_max);
	CHECK(mono(clock.table()) == SimClock::step_ms_max / 10 * 11);
}

TEST_CASE("sim clock: wall time jumps back and forward, monotonic time does not")
{
	SimClock clock(1'767'225'600'000, 10);
	const loy_hal_clock *t = clock.table();
	clock.advance_ms(1000);
	clock.jump_ms(-86'400'000); // a cashier sets yesterday's date
	CHECK(wall(t) == 1'767'225'601'000 - 86'400'000);
	CHECK(mono(t) == 1010);
	clock.jump_ms(+3'600'000); // NTP corrects forward
	CHECK(wall(t) == 1'767'225'601'000 - 86'400'000 + 3'600'000);
	CHECK(mono(t) == 1010);
	clock.set_wall_ms(0); // an RTC that lost its battery
	CHECK(wall(t) == 0);
	CHECK(mono(t) == 1010);
	clock.advance_ms(5);
	CHECK(wall(t) == 5);
	CHECK(mono(t) == 1015);
}

TEST_CASE("sim clock: a dead clock answers LOY_HAL_TIME_INVALID until repaired")
{
	SimClock clock(100, 200);
	clock.set_broken(true);
	CHECK(wall(clock.table()) == LOY_HAL_TIME_INVALID);
	CHECK(mono(clock.table()) == LOY_HAL_TIME_INVALID);
	clock.advance_ms(10);
	clock.set_broken(false);
	CHECK(wall(clock.table()) == 110);
	CHECK(mono(clock.table()) == 210);
}

TEST_CASE("sim clock: random steps, jumps and drift never take monotonic time back")
{
	const unsigned seed = Catch::rngSeed();
	INFO("replay with --rng-seed " << seed);
	std::seed_seq seq{seed, 0x5c10c4u};
	std::mt19937_64 rng(seq);
	SimClock clock(1'767'225'600'000, 0);
	const loy_hal_clock *t = clock.table();
	int64_t last_mono = mono(t);
	// Wall minus monotonic changes only by a jump or a set.
	int64_t offset = wall(t) - last_mono;
	for (int i = 0; i < 20'000; i++) {
		INFO("step " << i);
		switch (rng() % 4) {
		case 0:
		case 1:
			clock.advance_ms(static_cast<int64_t>(rng() % 100'000));
			break;
		case 2: {
			int64_t delta = static_cast<int64_t>(rng() % 172'800'001) - 86'400'000;
			clock.jump_ms(delta);
			offset += delta;
			break;
		}
		default:
			clock.set_drift_ppm(static_cast<int64_t>(rng() % 2001) - 1000);
			break;
		}
		int64_t m = mono(t);
		REQUIRE(m >= last_mono);
		REQUIRE(wall(t) - m == offset);
		last_mono = m;
	}
}

TEST_CASE("sim clock: read from another thread while it advances, monotonic time holds")
{
	SimClock clock(0, 0);
	std::atomic<bool> stop{false};
	std::atomic<bool> went_back{false};
	std::thread reader([&] {
		int64_t last = 0;
		while (!stop) {
			int64_t m = mono(clock.table());
			if (m < last)
				went_back = true;
			last = m;
		}
	});
	for (int i = 0; i < 100'000; i++) {
		clock.advance_ms(1);
		if (i % 1000 == 0)
			clock.jump_ms(-500);
	}
	stop = true;
	reader.join();
	CHECK_FALSE(went_back);
	CHECK(mono(clock.table()) == 100'000);
}
