// The simulated link through its C table: changes on command and on a
// schedule in simulated time, flaps that are never lost, injected failures,
// a waiter woken from another thread, and a seeded random schedule watched
// to the end.
#include <catch2/catch.hpp>

#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "hal/sim/sim.hpp"

using loy::hal::sim::SimClock;
using loy::hal::sim::SimLink;

namespace {

int is_up(const loy_hal_link *l) { return l->is_up(l->ctx); }
int wait_change(const loy_hal_link *l, int timeout_ms) { return l->wait_change(l->ctx, timeout_ms); }

int64_t steady_ms()
{
	using namespace std::chrono;
	return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

} // namespace

TEST_CASE("sim link: drops and returns on command")
{
	SimLink link;
	const loy_hal_link *t = link.table();
	CHECK(t->version == LOY_HAL_LINK_VERSION);
	CHECK(is_up(t) == 1);
	CHECK(wait_change(t, 0) == 0);
	link.drop();
	CHECK(wait_change(t, 0) == 1);
	CHECK(wait_change(t, 0) == 1); // until is_up() has answered
	CHECK(is_up(t) == 0);
	CHECK(wait_change(t, 0) == 0);
	link.drop(); // no change
	CHECK(wait_change(t, 0) == 0);
	link.restore();
	CHECK(is_up(t) == 1);
	CHECK(link.changes() == 2);
}

TEST_CASE("sim link: a flap between two looks is a change")
{
	SimLink link(nullptr, true);
	const loy_hal_link *t = link.table();
	CHECK(is_up(t) == 1);
	link.flap();
	CHECK(wait_change(t, 0) == 1);
	CHECK(is_up(t) == 1);
	CHECK(link.changes() == 2);
	CHECK(wait_change(t, 0) == 0);
}

TEST_CASE("sim link: a schedule in simulated time")
{
	SimClock clock;
	SimLink link(&clock, true);
	const loy_hal_link *t = link.table();
	link.schedule(10'000, false);
	link.schedule(25'000, true);
	link.schedule(40'000, true); // already up: not a change
	const int64_t start = steady_ms();

	CHECK(is_up(t) == 1);
	CHECK(wait_change(t, 60'000) == 1);
	CHECK(clock.true_ms() == 10'000);
	CHECK(is_up(t) == 0);
	CHECK(wait_change(t, 5'000) == 0); // times out before the return
	CHECK(clock.true_ms() == 15'000);
	CHECK(wait_change(t, -1) == 1);
	CHECK(clock.true_ms() == 25'000);
	CHECK(is_up(t) == 1);
	CHECK(wait_change(t, 60'000) == 0);
	CHECK(clock.true_ms() == 85'000);
	CHECK(link.changes() == 2);
	CHECK(steady_ms() - start < 1000);
}

TEST_CASE("sim link: a schedule passed by the clock applies on the next look")
{
	SimClock clock;
	SimLink link(&clock, true);
	const loy_hal_link *t = link.table();
	CHECK(is_up(t) == 1);
	link.schedule(100, false);
	link.schedule(200, true);
	clock.advance_ms(150);
	CHECK(is_up(t) == 0);
	clock.advance_ms(100);
	CHECK(wait_change(t, 0) == 1);
	CHECK(is_up(t) == 1);
}

TEST_CASE("sim link: injected failures, then the link answers again")
{
	SimLink link;
	const loy_hal_link *t = link.table();
	link.fail_next(2);
	CHECK(is_up(t) == LOY_HAL_E_IO);
	CHECK(wait_change(t, 0) == LOY_HAL_E_IO);
	CHECK(is_up(t) == 1);
	link.fail_next(1, LOY_HAL_E_GONE);
	CHECK(wait_change(t, 0) == LOY_HAL_E_GONE);
	CHECK(wait_change(t, 0) == 0);
}

TEST_CASE("sim link: a change from another thread wakes a waiter")
{
	SECTION("in real time")
	{
		SimLink link;
		const loy_hal_link *t = link.table();
		REQUIRE(is_up(t) == 1);
		std::thread cable([&] {
			std::this_thread::sleep_for(std::chrono::milliseconds(20));
			link.drop();
		});
		const int64_t start = steady_ms();
		CHECK(wait_change(t, 10'000) == 1);
		cable.join();
		CHECK(steady_ms() - start < 5000);
		CHECK(is_up(t) == 0);
		// And a time-out in real time takes real time.
		const int64_t before = steady_ms();
		CHECK(wait_change(t, 30) == 0);
		CHECK(steady_ms() - before >= 30);
	}
	SECTION("in simulated time with no schedule and no limit")
	{
		SimClock clock;
		SimLink link(&clock, false);
		const loy_hal_link *t = link.table();
		REQUIRE(is_up(t) == 0);
		std::thread cable([&] {
			std::this_thread::sleep_for(std::chrono::milliseconds(20));
			link.restore();
		});
		CHECK(wait_change(t, -1) == 1);
		cable.join();
		CHECK(is_up(t) == 1);
	}
	SECTION("in simulated time, a schedule added while a waiter sleeps")
	{
		SimClock clock;
		SimLink link(&clock, true);
		const loy_hal_link *t = link.table();
		REQUIRE(is_up(t) == 1);
		std::thread planner([&] {
			std::this_thread::sleep_for(std::chrono::milliseconds(20));
			link.schedule(5000, false);
		});
		CHECK(wait_change(t, -1) == 1);
		planner.join();
		CHECK(clock.true_ms() == 5000);
		CHECK(is_up(t) == 0);
	}
	SECTION("is_up from one thread while another waits")
	{
		SimLink link;
		const loy_hal_link *t = link.table();
		std::thread looker([&] {
			for (int i = 0; i < 1000; i++)
				(void)is_up(t);
		});
		for (int i = 0; i < 100; i++)
			(void)wait_change(t, 0);
		looker.join();
		CHECK(is_up(t) == 1);
	}
}

TEST_CASE("sim link: a random schedule is seen change by change")
{
	const unsigned seed = Catch::rngSeed();
	INFO("replay with --rng-seed " << seed);
	std::seed_seq seq{seed, 0x11bcu};
	std::mt19937 rng(seq);
	SimClock clock;
	SimLink link(&clock, true);
	const loy_hal_link *t = link.table();
	REQUIRE(is_up(t) == 1);

	// Events at distinct times; the states a watcher must see are the
	// changes among them.
	std::vector<int> expected;
	bool state = true;
	int64_t at = 0;
	for (int i = 0; i < 300; i++) {
		at += 1 + static_cast<int64_t>(rng() % 120'000);
		bool up = rng() % 2 == 0;
		link.schedule(at, up);
		if (up != state)
			expected.push_back(up ? 1 : 0);
		state = up;
	}
	std::vector<int> seen;
	for (int i = 0; i < 10'000; i++) {
		int timeout = static_cast<int>(rng() % 200'000);
		int r = wait_change(t, timeout);
		REQUIRE(r >= 0);
		if (r == 1)
			seen.push_back(is_up(t));
		if (clock.true_ms() > at)
			break;
	}
	CHECK(seen == expected);
}
