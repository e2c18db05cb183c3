// include/loyalty/schedule.h over sync/scheduler.hpp: the policy is the
// sync layer's; this file only carries it across the C boundary.
#include "loyalty/schedule.h"

#include <cstring>
#include <new>

#include "api/boundary.hpp"
#include "sync/scheduler.hpp"

struct loy_schedule {
	loy::net::SyncScheduler sched{loy::net::ScheduleConfig{}, 0};
	char errmsg[256] = "";
};

static_assert(LOY_SCHEDULE_WAIT_MS_MAX == loy::net::schedule_wait_ms_max, "one longest wait");

namespace {

using loy::net::ScheduleConfig;

constexpr size_t schedule_config_v1 = offsetof(loy_schedule_config, interval_ms) + sizeof(int64_t);

loy_schedule_config to_c(const ScheduleConfig &c)
{
	loy_schedule_config out{};
	out.size = sizeof out;
	out.nightly_minute = c.nightly_minute;
	out.after_link_up_ms = c.after_link_up_ms;
	out.retry_min_ms = c.retry_min_ms;
	out.retry_max_ms = c.retry_max_ms;
	out.jitter_pct = c.jitter_pct;
	out.interval_ms = c.interval_ms;
	return out;
}

ScheduleConfig from_c(const loy_schedule_config &c)
{
	ScheduleConfig out;
	out.nightly_minute = c.nightly_minute;
	out.after_link_up_ms = c.after_link_up_ms;
	out.retry_min_ms = c.retry_min_ms;
	out.retry_max_ms = c.retry_max_ms;
	out.jitter_pct = c.jitter_pct;
	out.interval_ms = c.interval_ms;
	return out;
}

} // namespace

extern "C" {

void loy_schedule_defaults(loy_schedule_config *c)
{
	if (c)
		*c = to_c(ScheduleConfig{});
}

loy_status loy_schedule_new(loy_schedule **out)
{
	if (!out)
		return LOY_E_BAD_ARGUMENT;
	*out = new (std::nothrow) loy_schedule;
	return *out ? LOY_OK : LOY_E_INTERNAL;
}

void loy_schedule_free(loy_schedule *s) { delete s; }

const char *loy_schedule_errmsg(const loy_schedule *s) { return s ? s->errmsg : "no schedule"; }

loy_status loy_schedule_configure(loy_schedule *s, const loy_schedule_config *c, uint64_t seed)
{
	if (!s)
		return LOY_E_BAD_ARGUMENT;
	return loy::capi::guarded(s->errmsg, [&] {
		if (!c)
			return loy::capi::fail(s->errmsg, loy::Code::bad_argument, "schedule: no configuration");
		if (c->size < schedule_config_v1)
			return loy::capi::fail(s->errmsg, loy::Code::bad_argument,
					       "loy_schedule_config.size is too small: fill it with "
					       "loy_schedule_defaults()");
		// What an older caller's struct lacks keeps its default.
		loy_schedule_config full = to_c(ScheduleConfig{});
		std::memcpy(static_cast<void *>(&full), c, c->size < sizeof full ? c->size : sizeof full);
		const ScheduleConfig config = from_c(full);
		if (auto st = loy::net::check(config); !st)
			return loy::capi::fail(s->errmsg, st);
		s->sched = loy::net::SyncScheduler(config, seed);
		return loy::capi::succeed(s->errmsg);
	});
}

void loy_schedule_start(loy_schedule *s, int64_t mono_ms, int64_t wall_ms, int32_t utc_offset_s, int link_up,
			int64_t last_success_wall_ms)
{
	if (s)
		s->sched.start(mono_ms, wall_ms, utc_offset_s, link_up != 0, last_success_wall_ms);
}

void loy_schedule_link_changed(loy_schedule *s, int up, int64_t mono_ms)
{
	if (s)
		s->sched.link_changed(up != 0, mono_ms);
}

void loy_schedule_request(loy_schedule *s, int64_t mono_ms)
{
	if (s)
		s->sched.request(mono_ms);
}

int loy_schedule_due(loy_schedule *s, int64_t mono_ms, int64_t wall_ms, int32_t utc_offset_s)
{
	return s && s->sched.due(mono_ms, wall_ms, utc_offset_s) ? 1 : 0;
}

void loy_schedule_finished(loy_schedule *s, int ok, int64_t mono_ms, int64_t wall_ms)
{
	if (s)
		s->sched.finished(ok != 0, mono_ms, wall_ms);
}

void loy_schedule_busy(loy_schedule *s, int64_t wait_ms, int64_t mono_ms)
{
	if (s)
		s->sched.busy(wait_ms, mono_ms);
}

int64_t loy_schedule_wait_ms(const loy_schedule *s, int64_t mono_ms, int64_t wall_ms, int32_t utc_offset_s)
{
	return s ? s->sched.wait_ms(mono_ms, wall_ms, utc_offset_s) : LOY_SCHEDULE_WAIT_MS_MAX;
}

const char *loy_schedule_reason(const loy_schedule *s) { return s ? s->sched.reason() : "none"; }

int loy_schedule_failures(const loy_schedule *s) { return s ? s->sched.failures() : 0; }

} // extern "C"
