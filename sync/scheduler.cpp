// The sync schedule: nightly, link-up, retry with back-off, interval, request.
#include "sync/scheduler.hpp"

#include <algorithm>
#include <cassert>
#include <climits>

#include <fmt/format.h>

#include "core/arith.hpp"

namespace loy::net {

namespace {

constexpr int64_t never_ms = INT64_MAX;
constexpr int nightly_minute_last = 24 * 60 - 1;

// Times come from the caller (a clock set to anything, a test at the edge of
// int64): saturating sums keep a silly input from becoming undefined
// behaviour, and a saturated time is simply "never" or "long ago".
int64_t sat_add(int64_t a, int64_t b)
{
	auto r = add_checked(a, b);
	return r ? *r : (b > 0 ? INT64_MAX : INT64_MIN);
}

int64_t sat_sub(int64_t a, int64_t b)
{
	auto r = sub_checked(a, b);
	return r ? *r : (b < 0 ? INT64_MAX : INT64_MIN);
}

int64_t sat_mul(int64_t a, int64_t b)
{
	auto r = mul_checked(a, b);
	return r ? *r : ((a < 0) != (b < 0) ? INT64_MIN : INT64_MAX);
}

// Rounds toward minus infinity, so that the night of an instant before 1970
// (a clock never set) is still the one it falls in.
int64_t floor_div(int64_t a, int64_t d)
{
	assert(d > 0);
	int64_t q = a / d;
	if (a % d < 0)
		q--;
	return q;
}

Status bad(std::string msg) { return Status(Code::bad_argument, "sync: " + std::move(msg)); }

uint64_t splitmix64(uint64_t &state)
{
	uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

// Uniform in [0, n]: rejection of the low values that a plain modulo would
// make more likely (OpenBSD's arc4random_uniform).
uint64_t uniform(uint64_t &state, uint64_t n)
{
	if (n == UINT64_MAX)
		return splitmix64(state);
	uint64_t range = n + 1;
	uint64_t threshold = (UINT64_MAX - range + 1) % range;
	for (;;) {
		uint64_t x = splitmix64(state);
		if (x >= threshold)
			return x % range;
	}
}

} // namespace

Status check(const ScheduleConfig &c)
{
	if (c.nightly_minute < -1 || c.nightly_minute > nightly_minute_last)
		return bad(fmt::format("nightly_minute ({}) is not -1 (off) or 0..{}", c.nightly_minute,
				       nightly_minute_last));
	if (c.after_link_up_ms < 0 || c.after_link_up_ms > schedule_after_link_up_ms_max)
		return bad(fmt::format("after_link_up_ms ({}) is not 0..{}", c.after_link_up_ms,
				       schedule_after_link_up_ms_max));
	if (c.retry_min_ms < schedule_retry_ms_min || c.retry_min_ms > schedule_retry_ms_max)
		return bad(fmt::format("retry_min_ms ({}) is not {}..{}", c.retry_min_ms,
				       schedule_retry_ms_min, schedule_retry_ms_max));
	if (c.retry_max_ms < schedule_retry_ms_min || c.retry_max_ms > schedule_retry_ms_max)
		return bad(fmt::format("retry_max_ms ({}) is not {}..{}", c.retry_max_ms,
				       schedule_retry_ms_min, schedule_retry_ms_max));
	if (c.retry_max_ms < c.retry_min_ms)
		return bad(fmt::format("retry_max_ms ({}) is below retry_min_ms ({})", c.retry_max_ms,
				       c.retry_min_ms));
	if (c.jitter_pct < 0 || c.jitter_pct > schedule_jitter_pct_max)
		return bad(fmt::format("jitter_pct ({}) is not 0..{}", c.jitter_pct,
				       schedule_jitter_pct_max));
	if (c.interval_ms != 0 &&
	    (c.interval_ms < schedule_interval_ms_min || c.interval_ms > schedule_interval_ms_max))
		return bad(fmt::format("interval_ms ({}) is not 0 (off) or {}..{}", c.interval_ms,
				       schedule_interval_ms_min, schedule_interval_ms_max));
	return Status::ok();
}

SyncScheduler::SyncScheduler(const ScheduleConfig &c, uint64_t seed) : cfg_(c), rng_(seed)
{
	// The same ranges as check(), so that every sum below stays far from
	// int64's ends whatever the caller passed.
	cfg_.nightly_minute = std::clamp(cfg_.nightly_minute, -1, nightly_minute_last);
	cfg_.after_link_up_ms = std::clamp(cfg_.after_link_up_ms, int64_t{0}, schedule_after_link_up_ms_max);
	cfg_.retry_max_ms = std::clamp(cfg_.retry_max_ms, schedule_retry_ms_min, schedule_retry_ms_max);
	cfg_.retry_min_ms = std::clamp(cfg_.retry_min_ms, schedule_retry_ms_min, cfg_.retry_max_ms);
	cfg_.jitter_pct = std::clamp(cfg_.jitter_pct, 0, schedule_jitter_pct_max);
	if (cfg_.interval_ms <= 0)
		cfg_.interval_ms = 0;
	else
		cfg_.interval_ms =
			std::clamp(cfg_.interval_ms, schedule_interval_ms_min, schedule_interval_ms_max);
	assert(check(cfg_).is_ok());
}

int64_t SyncScheduler::backoff_ms(int failures) const
{
	// Doubling stops at the cap, so the loop ends within 64 turns however
	// many failures there were, and nothing shifts past 63 bits.
	int64_t v = cfg_.retry_min_ms;
	for (int i = 1; i < failures && v < cfg_.retry_max_ms; i++)
		v = v > cfg_.retry_max_ms / 2 ? cfg_.retry_max_ms : v * 2;
	return std::min(v, cfg_.retry_max_ms);
}

int64_t SyncScheduler::jittered(int64_t nominal_ms)
{
	if (nominal_ms <= 0 || cfg_.jitter_pct == 0)
		return std::max(nominal_ms, int64_t{0});
	// nominal × j / 100 rounded down, without the product: the result stays
	// inside [1 - j%, 1 + j%] of the nominal, never below half of it.
	int64_t span = nominal_ms / 100 * cfg_.jitter_pct + nominal_ms % 100 * cfg_.jitter_pct / 100;
	auto r = static_cast<int64_t>(uniform(rng_, static_cast<uint64_t>(span) * 2));
	return nominal_ms - span + r;
}

namespace {

// Night k begins at the k-th nightly instant; an instant belongs to the
// night that began last.
int64_t night_of(int64_t wall_ms, int32_t utc_offset_s, int nightly_minute)
{
	int64_t local = sat_add(wall_ms, int64_t{utc_offset_s} * 1000);
	return floor_div(sat_sub(local, int64_t{nightly_minute} * 60'000), schedule_day_ms);
}

// The nightly instant that begins night k, in UTC wall ms.
int64_t night_start(int64_t k, int32_t utc_offset_s, int nightly_minute)
{
	int64_t local = sat_add(sat_mul(k, schedule_day_ms), int64_t{nightly_minute} * 60'000);
	return sat_sub(local, int64_t{utc_offset_s} * 1000);
}

} // namespace

int64_t SyncScheduler::nightly_last(int64_t wall_ms, int32_t utc_offset_s) const
{
	int64_t last = last_success_wall_ms_;
	if (last <= 0 || last <= wall_ms || cfg_.nightly_minute < 0)
		return last;
	// A success in the future: the clock stepped back since (or was ahead
	// then). Believed for the night that begins next, no further.
	int64_t k = night_of(wall_ms, utc_offset_s, cfg_.nightly_minute);
	return std::min(last, night_start(sat_add(k, 1), utc_offset_s, cfg_.nightly_minute));
}

SyncScheduler::Next SyncScheduler::next(int64_t mono_ms, int64_t wall_ms, int32_t utc_offset_s) const
{
	if (request_)
		return {"request", 0};
	if (!link_up_)
		return {"link-up", never_ms};
	// The syncs below would run into the sync that ends these waits, which
	// covers them.
	if (link_up_pending_)
		return {"link-up", sat_sub(link_up_at_ms_, mono_ms)};
	if (failures_ > 0)
		return {"retry", sat_sub(retry_at_ms_, mono_ms)};

	Next best{"none", never_ms};
	if (int minute = cfg_.nightly_minute; minute >= 0) {
		int64_t last = nightly_last(wall_ms, utc_offset_s);
		int64_t now_night = night_of(wall_ms, utc_offset_s, minute);
		int64_t last_night = last <= 0 ? INT64_MIN : night_of(last, utc_offset_s, minute);
		if (last_night < now_night) {
			best = {"nightly", 0};
		} else {
			int64_t next_start = night_start(sat_add(last_night, 1), utc_offset_s, minute);
			best = {"nightly", sat_sub(next_start, wall_ms)};
		}
	}
	if (cfg_.interval_ms > 0) {
		int64_t w = sat_sub(interval_at_ms_, mono_ms);
		if (w < best.wait_ms)
			best = {"interval", w};
	}
	return best;
}

void SyncScheduler::start(int64_t mono_ms, int64_t wall_ms, int32_t utc_offset_s, bool link_up,
			  int64_t last_success_wall_ms)
{
	started_ = true;
	link_up_ = link_up;
	running_ = false;
	request_ = false;
	link_up_pending_ = false;
	failures_ = 0;
	last_success_wall_ms_ = last_success_wall_ms;
	if (cfg_.interval_ms > 0)
		interval_at_ms_ = sat_add(mono_ms, jittered(cfg_.interval_ms));
	utc_offset_s_ = utc_offset_s;
	last_success_wall_ms_ = nightly_last(wall_ms, utc_offset_s);
	reason_ = next(mono_ms, wall_ms, utc_offset_s).reason;
}

void SyncScheduler::link_changed(bool up, int64_t mono_ms)
{
	assert(started_);
	if (up == link_up_)
		return;
	link_up_ = up;
	link_up_pending_ = up;
	if (up) {
		link_up_at_ms_ = sat_add(mono_ms, jittered(cfg_.after_link_up_ms));
		// The failures were the link's; the server may be fine.
		failures_ = 0;
	}
	if (!running_)
		reason_ = request_ ? "request" : "link-up";
}

void SyncScheduler::request(int64_t mono_ms)
{
	assert(started_);
	(void)mono_ms;
	request_ = true;
	if (!running_)
		reason_ = "request";
}

bool SyncScheduler::due(int64_t mono_ms, int64_t wall_ms, int32_t utc_offset_s)
{
	assert(started_);
	if (!started_ || running_)
		return false;
	utc_offset_s_ = utc_offset_s;
	// Made to stick: re-derived later, the next nightly instant would move
	// on with the clock and the sync would never be due.
	last_success_wall_ms_ = nightly_last(wall_ms, utc_offset_s);
	Next n = next(mono_ms, wall_ms, utc_offset_s);
	reason_ = n.reason;
	if (n.wait_ms > 0)
		return false;
	running_ = true;
	// The sync that starts now answers these; one asked for while it runs
	// gives one more.
	request_ = false;
	link_up_pending_ = false;
	return true;
}

void SyncScheduler::finished(bool ok, int64_t mono_ms, int64_t wall_ms)
{
	assert(running_);
	if (!running_)
		return;
	running_ = false;
	if (ok) {
		failures_ = 0;
		// A clock at or before the epoch would read as "never synced" and
		// sync again at once, in a loop.
		last_success_wall_ms_ = std::max(wall_ms, int64_t{1});
	} else {
		if (failures_ < INT_MAX)
			failures_++;
		retry_at_ms_ = sat_add(mono_ms, jittered(backoff_ms(failures_)));
	}
	if (cfg_.interval_ms > 0)
		interval_at_ms_ = sat_add(mono_ms, jittered(cfg_.interval_ms));
	reason_ = next(mono_ms, wall_ms, utc_offset_s_).reason;
}

void SyncScheduler::busy(int64_t wait_ms, int64_t mono_ms)
{
	if (running_ || failures_ == 0 || wait_ms <= 0)
		return;
	const int64_t at = sat_add(mono_ms, std::min(wait_ms, cfg_.retry_max_ms));
	retry_at_ms_ = std::max(retry_at_ms_, at);
}

int64_t SyncScheduler::wait_ms(int64_t mono_ms, int64_t wall_ms, int32_t utc_offset_s) const
{
	assert(started_);
	if (!started_ || running_)
		return schedule_wait_ms_max;
	return std::clamp(next(mono_ms, wall_ms, utc_offset_s).wait_ms, int64_t{0}, schedule_wait_ms_max);
}

} // namespace loy::net
