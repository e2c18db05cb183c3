// The sync schedule (sync/scheduler.hpp) on a simulated clock: days driven
// minute by minute or event by event (sleeping what wait_ms() says), and the
// instants at which due() turns true: nightly, restarts, the link, back-off
// and its jitter, wall-clock steps, requests during a sync, the interval,
// and check()'s refusals.
#include <catch2/catch.hpp>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "base/timeutil.hpp"
#include "sync/scheduler.hpp"

using loy::net::check;
using loy::net::schedule_day_ms;
using loy::net::schedule_wait_ms_max;
using loy::net::ScheduleConfig;
using loy::net::SyncScheduler;

namespace {

constexpr int64_t minute_ms = 60'000;
constexpr int64_t hour_ms = 60 * minute_ms;
// The terminal's zone: +01:00, so that a local/UTC mix-up moves a sync by an
// hour and shows.
constexpr int32_t offset_s = 3600;
// No run here has more syncs than this.
constexpr size_t syncs_max = 10'000;

// Wall ms of a local time; day 0 is 2026-03-10.
int64_t at(int64_t day, int64_t h, int64_t m, int64_t s = 0)
{
	return (loy::days_from_civil(2026, 3, 10) + day) * schedule_day_ms + ((h * 60 + m) * 60 + s) * 1000 -
	       int64_t{offset_s} * 1000;
}

// "day 1 23:30:00.000" for failure messages.
std::string show(int64_t wall)
{
	int64_t local = wall + int64_t{offset_s} * 1000 - loy::days_from_civil(2026, 3, 10) * schedule_day_ms;
	int64_t day = local / schedule_day_ms - (local % schedule_day_ms < 0 ? 1 : 0);
	int64_t ms = local - day * schedule_day_ms;
	char buf[64];
	std::snprintf(buf, sizeof buf, "day %lld %02lld:%02lld:%02lld.%03lld", static_cast<long long>(day),
		      static_cast<long long>(ms / hour_ms), static_cast<long long>(ms / minute_ms % 60),
		      static_cast<long long>(ms / 1000 % 60), static_cast<long long>(ms % 1000));
	return buf;
}

ScheduleConfig no_jitter()
{
	ScheduleConfig c;
	c.jitter_pct = 0;
	return c;
}

struct Sync {
	int64_t mono;
	int64_t wall;
	std::string reason;
};

// A terminal on a simulated clock. The monotonic clock starts far from the
// wall clock, so that a mix-up of the two is a failure, not a coincidence.
struct Sim {
	SyncScheduler s;
	int64_t mono = 5'000'000;
	int64_t wall;
	int32_t off = offset_s;
	std::vector<Sync> syncs;

	Sim(const ScheduleConfig &c, uint64_t seed, int64_t start_wall, bool link_up, int64_t last_success)
		: s(c, seed), wall(start_wall)
	{
		REQUIRE(check(c).is_ok());
		s.start(mono, wall, off, link_up, last_success);
	}

	void advance(int64_t ms)
	{
		mono += ms;
		wall += ms;
	}

	// Asks due(); when it says yes, records the sync and checks that it says
	// so only once.
	bool poll()
	{
		if (!s.due(mono, wall, off))
			return false;
		syncs.push_back({mono, wall, s.reason()});
		CHECK(s.running());
		CHECK_FALSE(s.due(mono, wall, off));
		return true;
	}

	// Sleeps as wait_ms() says until due() is true: the milliseconds that
	// took, or -1 when nothing was due within limit_ms.
	int64_t sleep_until_due(int64_t limit_ms)
	{
		int64_t start = mono;
		for (;;) {
			if (poll())
				return mono - start;
			int64_t w = s.wait_ms(mono, wall, off);
			REQUIRE(w >= 0);
			REQUIRE(w <= schedule_wait_ms_max);
			if (w == 0) {
				FAIL("wait_ms() is 0 at " << show(wall) << " but nothing is due");
				return -1;
			}
			if (mono - start + w > limit_ms) {
				advance(limit_ms - (mono - start));
				return poll() ? mono - start : -1;
			}
			advance(w);
		}
	}

	// Event by event until the wall clock reads `until`: each sync takes
	// sync_ms and ends as ok(index of the sync) says.
	void run_until(int64_t until, const std::function<bool(size_t)> &ok = [](size_t) { return true; },
		       int64_t sync_ms = 0)
	{
		while (wall < until) {
			if (sleep_until_due(until - wall) < 0)
				return;
			// A scheduler that syncs in a loop fails here rather than hang.
			REQUIRE(syncs.size() < syncs_max);
			advance(sync_ms);
			s.finished(ok(syncs.size() - 1), mono, wall);
		}
	}

	// Minute by minute up to (not at) `until`: due() at every step, syncs
	// instant and ok.
	void run_minutes(int64_t until)
	{
		for (; wall < until; advance(minute_ms)) {
			REQUIRE(syncs.size() < syncs_max);
			if (poll())
				s.finished(true, mono, wall);
		}
	}

	std::vector<int64_t> sync_walls() const
	{
		std::vector<int64_t> v;
		for (const Sync &x : syncs)
			v.push_back(x.wall);
		return v;
	}
};

std::string show_all(const std::vector<int64_t> &walls)
{
	std::ostringstream o;
	for (int64_t w : walls)
		o << show(w) << "; ";
	return o.str();
}

} // namespace

TEST_CASE("scheduler: a day and a half minute by minute syncs at 23:30 each night", "[scheduler]")
{
	ScheduleConfig c; // default jitter: the nightly time itself is not jittered
	Sim sim(c, 7, at(0, 10, 0), true, at(-1, 23, 31));
	CHECK(std::string(sim.s.reason()) == "nightly");
	sim.run_minutes(at(2, 12, 0));
	std::vector<int64_t> want = {at(0, 23, 30), at(1, 23, 30)};
	INFO("syncs: " << show_all(sim.sync_walls()));
	CHECK(sim.sync_walls() == want);
	for (const Sync &x : sim.syncs)
		CHECK(x.reason == "nightly");
}

TEST_CASE("scheduler: event by event the nightly sync starts on the millisecond", "[scheduler]")
{
	Sim sim(no_jitter(), 7, at(0, 10, 0), true, at(-1, 23, 31));
	CHECK(sim.s.wait_ms(sim.mono, sim.wall, sim.off) == schedule_wait_ms_max);
	sim.run_until(at(3, 0, 0), [](size_t) { return true; }, 5000);
	std::vector<int64_t> want = {at(0, 23, 30), at(1, 23, 30), at(2, 23, 30)};
	INFO("syncs: " << show_all(sim.sync_walls()));
	CHECK(sim.sync_walls() == want);
}

TEST_CASE("scheduler: restarts before and after tonight's sync", "[scheduler]")
{
	struct Row {
		const char *name;
		int64_t start;
		int64_t last_success;
		int64_t first_sync;
	};
	const Row rows[] = {
		{"10:00, synced last night", at(0, 10, 0), at(-1, 23, 31), at(0, 23, 30)},
		{"23:45, last success yesterday", at(0, 23, 45), at(-1, 23, 31), at(0, 23, 45)},
		{"23:45 after tonight's sync at 23:40", at(0, 23, 45), at(0, 23, 40), at(1, 23, 30)},
		{"00:10 after last night's sync", at(1, 0, 10), at(0, 23, 30, 20), at(1, 23, 30)},
		{"07:00 after a night missed (terminal off)", at(1, 7, 0), at(-1, 23, 31), at(1, 7, 0)},
		{"never synced", at(0, 10, 0), 0, at(0, 10, 0)},
		{"exactly at the nightly instant", at(0, 23, 30), at(-1, 23, 31), at(0, 23, 30)},
		{"a millisecond before it", at(0, 23, 30) - 1, at(-1, 23, 31), at(0, 23, 30)},
		{"last success exactly at the instant", at(0, 23, 45), at(0, 23, 30), at(1, 23, 30)},
		{"last success a millisecond before it", at(0, 23, 45), at(0, 23, 30) - 1, at(0, 23, 45)},
		{"last success later tonight (clock stepped back)", at(0, 22, 0), at(0, 23, 30, 5),
		 at(1, 23, 30)},
		{"last success a year ahead (clock was wrong)", at(0, 10, 0), at(365, 23, 30), at(1, 23, 30)},
	};
	for (const Row &r : rows) {
		INFO(r.name);
		Sim sim(no_jitter(), 1, r.start, true, r.last_success);
		sim.run_until(at(4, 0, 0));
		REQUIRE(!sim.syncs.empty());
		INFO("first sync " << show(sim.syncs[0].wall));
		CHECK(sim.syncs[0].wall == r.first_sync);
		CHECK(sim.syncs[0].reason == "nightly");
	}
}

TEST_CASE("scheduler: no nightly sync when it is off", "[scheduler]")
{
	ScheduleConfig c = no_jitter();
	c.nightly_minute = -1;
	Sim sim(c, 1, at(0, 10, 0), true, 0);
	sim.run_minutes(at(2, 10, 0));
	CHECK(sim.syncs.empty());
	CHECK(std::string(sim.s.reason()) == "none");
}

TEST_CASE("scheduler: nightly at 00:00 and at 23:59, the ends of the day", "[scheduler]")
{
	for (int minute : {0, 23 * 60 + 59}) {
		ScheduleConfig c = no_jitter();
		c.nightly_minute = minute;
		Sim sim(c, 1, at(0, 12, 0), true, at(0, 11, 0));
		sim.run_minutes(at(2, 12, 0));
		int64_t h = minute / 60, m = minute % 60;
		std::vector<int64_t> want = minute == 0 ? std::vector<int64_t>{at(1, 0, 0), at(2, 0, 0)}
							: std::vector<int64_t>{at(0, h, m), at(1, h, m)};
		INFO("minute " << minute << ", syncs: " << show_all(sim.sync_walls()));
		CHECK(sim.sync_walls() == want);
	}
}

TEST_CASE("scheduler: the link down across the nightly time, then up", "[scheduler]")
{
	Sim sim(no_jitter(), 1, at(0, 22, 0), true, at(-1, 23, 31));
	sim.s.link_changed(false, sim.mono);
	sim.run_minutes(at(1, 1, 0));
	CHECK(sim.syncs.empty());
	CHECK(std::string(sim.s.reason()) == "link-up");
	CHECK(sim.s.wait_ms(sim.mono, sim.wall, sim.off) == schedule_wait_ms_max);

	SECTION("up after midnight: the missed night syncs 15 s later, then tomorrow's")
	{
		sim.s.link_changed(true, sim.mono);
		CHECK(sim.sleep_until_due(hour_ms) == 15'000);
		CHECK(sim.syncs.back().reason == "link-up");
		sim.s.finished(true, sim.mono, sim.wall);
		sim.run_until(at(2, 12, 0));
		std::vector<int64_t> want = {at(1, 1, 0, 15), at(1, 23, 30)};
		INFO("syncs: " << show_all(sim.sync_walls()));
		CHECK(sim.sync_walls() == want);
	}
	SECTION("the link-up sync fails: the retry carries the missed night")
	{
		sim.s.link_changed(true, sim.mono);
		CHECK(sim.sleep_until_due(hour_ms) == 15'000);
		sim.s.finished(false, sim.mono, sim.wall);
		CHECK(sim.sleep_until_due(hour_ms) == 30'000);
		CHECK(sim.syncs.back().reason == "retry");
		sim.s.finished(true, sim.mono, sim.wall);
		CHECK(sim.s.failures() == 0);
		CHECK(sim.sleep_until_due(2 * schedule_day_ms) > 0);
		CHECK(sim.syncs.back().wall == at(1, 23, 30));
	}
	SECTION("a request goes through while the link is down")
	{
		sim.s.request(sim.mono);
		CHECK(sim.poll());
		CHECK(sim.syncs.back().reason == "request");
		sim.s.finished(true, sim.mono, sim.wall);
		// The request synced after the nightly instant: the night is done.
		sim.s.link_changed(true, sim.mono);
		CHECK(sim.sleep_until_due(hour_ms) == 15'000);
		sim.s.finished(true, sim.mono, sim.wall);
		sim.run_until(at(1, 23, 0));
		CHECK(sim.syncs.size() == 2);
	}
}

TEST_CASE("scheduler: up before the nightly time, the nightly sync still runs", "[scheduler]")
{
	// The link-up sync at 23:20 is before tonight's instant, so by the rule
	// ("a success at or after the instant") it does not count for tonight.
	Sim sim(no_jitter(), 1, at(0, 22, 0), false, at(-1, 23, 31));
	sim.run_minutes(at(0, 23, 20));
	CHECK(sim.syncs.empty());
	sim.s.link_changed(true, sim.mono);
	sim.run_until(at(1, 12, 0));
	std::vector<int64_t> want = {at(0, 23, 20, 15), at(0, 23, 30)};
	INFO("syncs: " << show_all(sim.sync_walls()));
	CHECK(sim.sync_walls() == want);
}

TEST_CASE("scheduler: while the link is down neither retry nor interval is due", "[scheduler]")
{
	ScheduleConfig c = no_jitter();
	c.interval_ms = 10 * minute_ms;
	Sim sim(c, 1, at(0, 22, 0), true, at(-1, 23, 31));
	sim.s.request(sim.mono);
	REQUIRE(sim.poll());
	sim.s.finished(false, sim.mono, sim.wall);
	CHECK(sim.s.failures() == 1);
	sim.s.link_changed(false, sim.mono);
	sim.run_minutes(at(1, 2, 0));
	CHECK(sim.syncs.size() == 1);

	// Up: the back-off is forgotten, the link-up sync comes first.
	sim.s.link_changed(true, sim.mono);
	CHECK(sim.s.failures() == 0);
	// Up again without a down between is no change.
	sim.advance(10'000);
	sim.s.link_changed(true, sim.mono);
	CHECK(sim.sleep_until_due(hour_ms) == 5'000);
	CHECK(sim.syncs.back().reason == "link-up");
}

TEST_CASE("scheduler: a link that comes up resets the back-off", "[scheduler]")
{
	ScheduleConfig c = no_jitter();
	c.nightly_minute = -1;
	Sim sim(c, 1, at(0, 10, 0), true, at(0, 9, 0));
	sim.s.request(sim.mono);
	REQUIRE(sim.poll());
	sim.s.finished(false, sim.mono, sim.wall);
	for (int i = 0; i < 5; i++) {
		REQUIRE(sim.sleep_until_due(schedule_day_ms) > 0);
		sim.s.finished(false, sim.mono, sim.wall);
	}
	CHECK(sim.s.failures() == 6);
	sim.s.link_changed(false, sim.mono);
	sim.advance(1000);
	sim.s.link_changed(true, sim.mono);
	CHECK(sim.s.failures() == 0);
	CHECK(sim.sleep_until_due(hour_ms) == 15'000);
	sim.s.finished(false, sim.mono, sim.wall);
	CHECK(sim.s.failures() == 1);
	CHECK(sim.sleep_until_due(hour_ms) == 30'000);
}

TEST_CASE("scheduler: back-off 30 s, 60 s, 120 s ... capped at 30 min", "[scheduler]")
{
	ScheduleConfig c = no_jitter();
	c.nightly_minute = -1;
	Sim sim(c, 1, at(0, 10, 0), true, at(0, 9, 0));
	sim.s.request(sim.mono);
	REQUIRE(sim.poll());
	sim.s.finished(false, sim.mono, sim.wall);

	const int64_t want_s[] = {30, 60, 120, 240, 480, 960, 1800, 1800, 1800};
	int n = 1;
	for (int64_t s : want_s) {
		INFO("retry after failure " << n);
		CHECK(sim.s.backoff_ms(n) == s * 1000);
		CHECK(std::string(sim.s.reason()) == "retry");
		CHECK(sim.sleep_until_due(schedule_day_ms) == s * 1000);
		CHECK(sim.syncs.back().reason == "retry");
		sim.s.finished(false, sim.mono, sim.wall);
		n++;
		CHECK(sim.s.failures() == n);
	}
	// A success ends it; nothing more is due (nightly and interval off).
	REQUIRE(sim.sleep_until_due(schedule_day_ms) == 1800'000);
	sim.s.finished(true, sim.mono, sim.wall);
	CHECK(sim.s.failures() == 0);
	CHECK(sim.sleep_until_due(schedule_day_ms) == -1);
	// And the next failure starts over at 30 s.
	sim.s.request(sim.mono);
	REQUIRE(sim.poll());
	sim.s.finished(false, sim.mono, sim.wall);
	CHECK(sim.sleep_until_due(schedule_day_ms) == 30'000);

	// However many failures: the cap, no overflow.
	CHECK(sim.s.backoff_ms(63) == 1800'000);
	CHECK(sim.s.backoff_ms(64) == 1800'000);
	CHECK(sim.s.backoff_ms(INT_MAX) == 1800'000);
}

TEST_CASE("scheduler: a busy centre's Retry-After delays the retry, within the back-off's ceiling", "[scheduler]")
{
	ScheduleConfig c = no_jitter();
	c.nightly_minute = -1;
	Sim sim(c, 1, at(0, 10, 0), true, at(0, 9, 0));
	sim.s.request(sim.mono);
	REQUIRE(sim.poll());
	sim.s.finished(false, sim.mono, sim.wall);
	// Asked for 7 s after a 30 s back-off: the back-off, the longer, stands.
	sim.s.busy(7'000, sim.mono);
	CHECK(sim.sleep_until_due(schedule_day_ms) == 30'000);
	// Asked for 100 s after a 60 s back-off: 100 s.
	sim.s.finished(false, sim.mono, sim.wall);
	sim.s.busy(100'000, sim.mono);
	CHECK(sim.sleep_until_due(schedule_day_ms) == 100'000);
	// Asked for a day: no more than retry_max_ms (30 min).
	sim.s.finished(false, sim.mono, sim.wall);
	sim.s.busy(schedule_day_ms, sim.mono);
	CHECK(sim.sleep_until_due(schedule_day_ms) == 1800'000);
	// After a success, or with nothing asked, it changes nothing.
	sim.s.finished(true, sim.mono, sim.wall);
	sim.s.busy(100'000, sim.mono);
	CHECK(sim.sleep_until_due(schedule_day_ms) == -1);
	sim.s.request(sim.mono);
	REQUIRE(sim.poll());
	sim.s.finished(false, sim.mono, sim.wall);
	sim.s.busy(0, sim.mono);
	sim.s.busy(-5, sim.mono);
	CHECK(sim.sleep_until_due(schedule_day_ms) == 30'000);
}

TEST_CASE("scheduler: a failed nightly sync retries on the back-off, not each minute", "[scheduler]")
{
	Sim sim(no_jitter(), 1, at(0, 23, 0), true, at(-1, 23, 31));
	// Fails until 23:45, then works.
	sim.run_until(at(1, 0, 0), [&sim](size_t) { return sim.wall >= at(0, 23, 45); });
	std::vector<int64_t> want = {at(0, 23, 30), at(0, 23, 30, 30), at(0, 23, 31, 30), at(0, 23, 33, 30),
				     at(0, 23, 37, 30), at(0, 23, 45, 30)};
	INFO("syncs: " << show_all(sim.sync_walls()));
	CHECK(sim.sync_walls() == want);
	CHECK(sim.syncs[0].reason == "nightly");
	CHECK(sim.syncs[1].reason == "retry");
	CHECK(sim.s.failures() == 0);
}

TEST_CASE("scheduler: jittered waits stay within their bounds, for many seeds", "[scheduler]")
{
	ScheduleConfig c;
	c.nightly_minute = -1;
	for (int pct : {1, 20, 50}) {
		c.jitter_pct = pct;
		int64_t below = 0, above = 0;
		for (uint64_t seed = 1; seed <= 200; seed++) {
			INFO("jitter " << pct << "% seed " << seed);
			Sim sim(c, seed, at(0, 10, 0), false, at(0, 9, 0));
			sim.s.link_changed(true, sim.mono);
			int64_t d = sim.sleep_until_due(hour_ms);
			CHECK(d * 100 >= c.after_link_up_ms * (100 - pct));
			CHECK(d * 100 <= c.after_link_up_ms * (100 + pct));
			sim.s.finished(false, sim.mono, sim.wall);
			for (int k = 1; k <= 8; k++) {
				int64_t nominal = sim.s.backoff_ms(k);
				d = sim.sleep_until_due(schedule_day_ms);
				INFO("failure " << k << ": waited " << d << " ms for " << nominal);
				CHECK(d * 100 >= nominal * (100 - pct));
				CHECK(d * 100 <= nominal * (100 + pct));
				below += d < nominal;
				above += d > nominal;
				sim.s.finished(false, sim.mono, sim.wall);
			}
		}
		// Spread both ways: a jitter that is never applied, or only one
		// way, fails here.
		INFO("jitter " << pct << "%: " << below << " below, " << above << " above");
		CHECK(below > 400);
		CHECK(above > 400);
	}
}

TEST_CASE("scheduler: jitter 50% of waits too short to scale stays exact", "[scheduler]")
{
	ScheduleConfig c;
	c.nightly_minute = -1;
	c.jitter_pct = 50;
	c.after_link_up_ms = 1;
	Sim sim(c, 3, at(0, 10, 0), false, at(0, 9, 0));
	sim.s.link_changed(true, sim.mono);
	CHECK(sim.sleep_until_due(hour_ms) == 1);
	sim.s.finished(true, sim.mono, sim.wall);

	c.after_link_up_ms = 0;
	Sim now(c, 3, at(0, 10, 0), false, at(0, 9, 0));
	now.s.link_changed(true, now.mono);
	CHECK(now.poll());
}

TEST_CASE("scheduler: the jitter is the seed's, and only the seed's", "[scheduler]")
{
	ScheduleConfig c;
	c.nightly_minute = -1;
	auto delays = [&c](uint64_t seed) {
		Sim sim(c, seed, at(0, 10, 0), false, at(0, 9, 0));
		std::vector<int64_t> v;
		sim.s.link_changed(true, sim.mono);
		v.push_back(sim.sleep_until_due(hour_ms));
		for (int k = 0; k < 10; k++) {
			sim.s.finished(false, sim.mono, sim.wall);
			v.push_back(sim.sleep_until_due(schedule_day_ms));
		}
		return v;
	};
	CHECK(delays(42) == delays(42));
	CHECK(delays(42) != delays(43));
	CHECK(delays(0) == delays(0));
}

TEST_CASE("scheduler: wall-clock steps back and forward", "[scheduler]")
{
	Sim sim(no_jitter(), 1, at(0, 23, 0), true, at(-1, 23, 31));
	REQUIRE(sim.sleep_until_due(hour_ms) == 30 * minute_ms);
	sim.advance(5000);
	sim.s.finished(true, sim.mono, sim.wall); // 23:30:05

	SECTION("back to 22:00 after tonight's sync: not again this evening")
	{
		sim.wall = at(0, 22, 0);
		sim.run_minutes(at(1, 12, 0));
		CHECK(sim.syncs.size() == 1);
		sim.run_until(at(2, 12, 0));
		REQUIRE(sim.syncs.size() == 2);
		CHECK(sim.syncs[1].wall == at(1, 23, 30));
	}
	SECTION("back a few milliseconds across the instant: not again")
	{
		sim.wall = at(0, 23, 30) - 3;
		sim.run_minutes(at(1, 12, 0));
		CHECK(sim.syncs.size() == 1);
	}
	SECTION("back a year (it was a year ahead): one night lost, not a year")
	{
		// The success was recorded at "day 0"; the clock now says day -365.
		sim.wall = at(-365, 10, 0);
		sim.run_until(at(-363, 12, 0));
		std::vector<int64_t> want = {at(0, 23, 30), at(-364, 23, 30)};
		INFO("syncs: " << show_all(sim.sync_walls()));
		CHECK(sim.sync_walls() == want);
	}
	SECTION("forward a day after tonight's sync: one sync, not one per minute")
	{
		sim.advance(5 * minute_ms);
		sim.wall = at(1, 23, 35);
		sim.run_minutes(at(2, 12, 0));
		std::vector<int64_t> want = {at(0, 23, 30), at(1, 23, 35)};
		INFO("syncs: " << show_all(sim.sync_walls()));
		CHECK(sim.sync_walls() == want);
		CHECK(sim.syncs[1].reason == "nightly");
	}
	SECTION("forward five days: one sync for the five nights missed")
	{
		sim.advance(hour_ms);
		sim.wall = at(6, 12, 0);
		sim.run_until(at(7, 12, 0));
		std::vector<int64_t> want = {at(0, 23, 30), at(6, 12, 0), at(6, 23, 30)};
		INFO("syncs: " << show_all(sim.sync_walls()));
		CHECK(sim.sync_walls() == want);
	}
	SECTION("forward during a sleep: noticed within a minute")
	{
		sim.advance(12 * hour_ms);
		int64_t w = sim.s.wait_ms(sim.mono, sim.wall, sim.off);
		CHECK(w == schedule_wait_ms_max);
		sim.advance(10'000);
		sim.wall = at(1, 23, 45); // the step, while the driver sleeps
		sim.advance(w - 10'000);
		CHECK(sim.poll());
		CHECK(sim.syncs.back().wall - at(1, 23, 45) <= schedule_wait_ms_max);
	}
}

TEST_CASE("scheduler: a change of UTC offset moves the nightly time with it", "[scheduler]")
{
	Sim sim(no_jitter(), 1, at(0, 12, 0), true, at(-1, 23, 31));
	sim.run_until(at(1, 3, 0));
	REQUIRE(sim.sync_walls() == std::vector<int64_t>{at(0, 23, 30)});
	// Summer time: local 23:30 comes an hour earlier in UTC.
	sim.off = offset_s + 3600;
	sim.run_until(at(2, 3, 0));
	INFO("syncs: " << show_all(sim.sync_walls()));
	REQUIRE(sim.syncs.size() == 2);
	CHECK(sim.syncs[1].wall == at(1, 23, 30) - hour_ms);
}

TEST_CASE("scheduler: requests and link changes during a sync are remembered", "[scheduler]")
{
	Sim sim(no_jitter(), 1, at(0, 23, 29), true, at(-1, 23, 31));
	REQUIRE(sim.sleep_until_due(hour_ms) == minute_ms);
	REQUIRE(sim.s.running());
	CHECK(std::string(sim.s.reason()) == "nightly");

	SECTION("requests during the sync: one more sync after it")
	{
		sim.advance(1000);
		sim.s.request(sim.mono);
		sim.advance(1000);
		sim.s.request(sim.mono);
		CHECK_FALSE(sim.s.due(sim.mono, sim.wall, sim.off));
		CHECK(std::string(sim.s.reason()) == "nightly"); // the running sync's
		CHECK(sim.s.wait_ms(sim.mono, sim.wall, sim.off) == schedule_wait_ms_max);
		sim.advance(1000);
		sim.s.finished(true, sim.mono, sim.wall);
		CHECK(sim.s.wait_ms(sim.mono, sim.wall, sim.off) == 0);
		CHECK(sim.poll());
		CHECK(sim.syncs.back().reason == "request");
		sim.s.finished(true, sim.mono, sim.wall);
		sim.run_until(at(1, 12, 0));
		CHECK(sim.syncs.size() == 2);
	}
	SECTION("a link drop and return during the sync: the link-up sync after it")
	{
		sim.advance(1000);
		sim.s.link_changed(false, sim.mono);
		sim.advance(1000);
		sim.s.link_changed(true, sim.mono);
		int64_t up = sim.mono;
		sim.advance(3000);
		sim.s.finished(false, sim.mono, sim.wall);
		CHECK(sim.sleep_until_due(hour_ms) > 0);
		CHECK(sim.syncs.back().reason == "link-up");
		CHECK(sim.mono == up + 15'000);
	}
	SECTION("a link drop during the sync: nothing after it until the link is back")
	{
		sim.s.link_changed(false, sim.mono);
		sim.advance(3000);
		sim.s.finished(false, sim.mono, sim.wall);
		sim.run_minutes(at(1, 3, 0));
		CHECK(sim.syncs.size() == 1);
		sim.s.link_changed(true, sim.mono);
		CHECK(sim.sleep_until_due(hour_ms) == 15'000);
	}
	SECTION("a request when nothing runs is due at once, and once")
	{
		sim.s.finished(true, sim.mono, sim.wall);
		sim.advance(hour_ms);
		sim.s.request(sim.mono);
		CHECK(std::string(sim.s.reason()) == "request");
		CHECK(sim.poll());
		sim.s.finished(true, sim.mono, sim.wall);
		CHECK_FALSE(sim.s.due(sim.mono, sim.wall, sim.off));
	}
}

TEST_CASE("scheduler: the interval, while the link is up", "[scheduler]")
{
	ScheduleConfig c = no_jitter();
	c.nightly_minute = -1;
	c.interval_ms = 10 * minute_ms;
	Sim sim(c, 1, at(0, 10, 0), true, at(0, 9, 0));
	int64_t t0 = sim.mono;
	// Each sync takes 5 s; the next is an interval after it ends.
	sim.run_until(at(0, 10, 40), [](size_t) { return true; }, 5000);
	std::vector<int64_t> want = {at(0, 10, 10), at(0, 10, 20, 5), at(0, 10, 30, 10)};
	INFO("syncs: " << show_all(sim.sync_walls()));
	CHECK(sim.sync_walls() == want);
	for (const Sync &x : sim.syncs)
		CHECK(x.reason == "interval");
	CHECK(sim.syncs[0].mono == t0 + 10 * minute_ms);

	SECTION("down: none; up: the link-up sync, then the interval from its end")
	{
		sim.s.link_changed(false, sim.mono);
		sim.run_minutes(at(0, 12, 0));
		CHECK(sim.syncs.size() == 3);
		sim.s.link_changed(true, sim.mono);
		sim.run_until(at(0, 12, 20), [](size_t) { return true; }, 5000);
		REQUIRE(sim.syncs.size() == 5);
		CHECK(sim.syncs[3].reason == "link-up");
		CHECK(sim.syncs[3].wall == at(0, 12, 0, 15));
		CHECK(sim.syncs[4].reason == "interval");
		CHECK(sim.syncs[4].wall == at(0, 12, 10, 20));
	}
	SECTION("a failed interval sync retries on the back-off")
	{
		sim.run_until(at(0, 11, 0), [](size_t) { return false; });
		REQUIRE(sim.syncs.size() >= 5);
		CHECK(sim.syncs[3].reason == "interval");
		CHECK(sim.syncs[4].reason == "retry");
		CHECK(sim.syncs[4].wall - sim.syncs[3].wall == 30'000);
	}
}

TEST_CASE("scheduler: check() accepts the ranges' ends and names what it refuses", "[scheduler]")
{
	CHECK(check(ScheduleConfig{}).is_ok());

	using Edit = std::function<void(ScheduleConfig &)>;
	struct Row {
		const char *name;
		Edit edit;
		std::string error; // empty: accepted
	};
	const Row rows[] = {
		{"nightly off", [](ScheduleConfig &c) { c.nightly_minute = -1; }, ""},
		{"nightly 00:00", [](ScheduleConfig &c) { c.nightly_minute = 0; }, ""},
		{"nightly 23:59", [](ScheduleConfig &c) { c.nightly_minute = 1439; }, ""},
		{"nightly 24:00", [](ScheduleConfig &c) { c.nightly_minute = 1440; },
		 "sync: nightly_minute (1440) is not -1 (off) or 0..1439"},
		{"nightly -2", [](ScheduleConfig &c) { c.nightly_minute = -2; }, "nightly_minute (-2)"},
		{"link-up at once", [](ScheduleConfig &c) { c.after_link_up_ms = 0; }, ""},
		{"link-up a day later", [](ScheduleConfig &c) { c.after_link_up_ms = schedule_day_ms; }, ""},
		{"link-up over a day", [](ScheduleConfig &c) { c.after_link_up_ms = schedule_day_ms + 1; },
		 "sync: after_link_up_ms (86400001) is not 0..86400000"},
		{"link-up negative", [](ScheduleConfig &c) { c.after_link_up_ms = -1; },
		 "after_link_up_ms (-1)"},
		{"retry_min 0", [](ScheduleConfig &c) { c.retry_min_ms = 0; },
		 "sync: retry_min_ms (0) is not 1000..86400000"},
		{"retry_min negative", [](ScheduleConfig &c) { c.retry_min_ms = -30'000; },
		 "retry_min_ms (-30000)"},
		{"retry_min 999", [](ScheduleConfig &c) { c.retry_min_ms = 999; }, "retry_min_ms (999)"},
		{"retry_min 1 s",
		 [](ScheduleConfig &c) {
			 c.retry_min_ms = 1000;
			 c.retry_max_ms = 1000;
		 },
		 ""},
		{"retry_max a day", [](ScheduleConfig &c) { c.retry_max_ms = schedule_day_ms; }, ""},
		{"retry_max over a day", [](ScheduleConfig &c) { c.retry_max_ms = schedule_day_ms + 1; },
		 "sync: retry_max_ms (86400001) is not 1000..86400000"},
		{"retry_max huge", [](ScheduleConfig &c) { c.retry_max_ms = INT64_MAX; }, "retry_max_ms ("},
		{"retry_max below retry_min", [](ScheduleConfig &c) { c.retry_max_ms = 29'999; },
		 "sync: retry_max_ms (29999) is below retry_min_ms (30000)"},
		{"retry_max equal to retry_min", [](ScheduleConfig &c) { c.retry_max_ms = 30'000; }, ""},
		{"jitter 0", [](ScheduleConfig &c) { c.jitter_pct = 0; }, ""},
		{"jitter 50", [](ScheduleConfig &c) { c.jitter_pct = 50; }, ""},
		{"jitter 51", [](ScheduleConfig &c) { c.jitter_pct = 51; },
		 "sync: jitter_pct (51) is not 0..50"},
		{"jitter -1", [](ScheduleConfig &c) { c.jitter_pct = -1; }, "jitter_pct (-1)"},
		{"interval a minute", [](ScheduleConfig &c) { c.interval_ms = 60'000; }, ""},
		{"interval a week", [](ScheduleConfig &c) { c.interval_ms = 7 * schedule_day_ms; }, ""},
		{"interval under a minute", [](ScheduleConfig &c) { c.interval_ms = 59'999; },
		 "sync: interval_ms (59999) is not 0 (off) or 60000..604800000"},
		{"interval over a week", [](ScheduleConfig &c) { c.interval_ms = 7 * schedule_day_ms + 1; },
		 "interval_ms (604800001)"},
		{"interval negative", [](ScheduleConfig &c) { c.interval_ms = -1; }, "interval_ms (-1)"},
	};
	for (const Row &r : rows) {
		INFO(r.name);
		ScheduleConfig c;
		r.edit(c);
		loy::Status st = check(c);
		INFO("got: " << st.message());
		if (r.error.empty()) {
			CHECK(st.is_ok());
		} else {
			REQUIRE_FALSE(st.is_ok());
			CHECK(st.code() == loy::Code::bad_argument);
			CHECK(st.message().find(r.error) != std::string::npos);
		}
	}
}

TEST_CASE("scheduler: huge values neither overflow nor stall", "[scheduler]")
{
	// A config that skipped check() is clamped into range.
	ScheduleConfig huge;
	huge.nightly_minute = INT_MAX;
	huge.after_link_up_ms = INT64_MAX;
	huge.retry_min_ms = INT64_MAX;
	huge.retry_max_ms = INT64_MAX;
	huge.jitter_pct = INT_MAX;
	huge.interval_ms = INT64_MAX;
	REQUIRE_FALSE(check(huge).is_ok());
	SyncScheduler s(huge, 9);
	CHECK(s.backoff_ms(1) == schedule_day_ms);
	CHECK(s.backoff_ms(INT_MAX) == schedule_day_ms);

	int64_t mono = INT64_MAX - 2 * schedule_day_ms;
	int64_t wall = at(0, 10, 0);
	s.start(mono, wall, offset_s, false, at(-1, 23, 59));
	s.link_changed(true, mono);
	int64_t w = s.wait_ms(mono, wall, offset_s);
	CHECK(w == schedule_wait_ms_max);
	CHECK_FALSE(s.due(mono, wall, offset_s));
	// The link-up wait is at most a day and a half (a day, jittered 50%).
	CHECK_FALSE(s.due(mono + schedule_day_ms / 2 - 1, wall, offset_s));
	CHECK(s.due(mono + schedule_day_ms * 3 / 2, wall, offset_s));
	s.finished(false, mono + schedule_day_ms * 3 / 2, wall);
	// Retries pushed past the end of the monotonic clock saturate: far, not
	// negative, not due.
	mono = INT64_MAX - 1000;
	w = s.wait_ms(mono, wall, offset_s);
	CHECK(w >= 1000);
	CHECK(w <= schedule_wait_ms_max);
	CHECK_FALSE(s.due(mono, wall, offset_s));
	CHECK(std::string(s.reason()) == "retry");
}
