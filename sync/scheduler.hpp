// When the terminal syncs: each night at a set local time, soon after the
// link comes back, on request, and again after a failure with exponential
// back-off and jitter. Policy only: no threads, no I/O, no clock reads. The
// caller passes the times in and asks what to do, so that a firmware thread
// can drive it and a test can drive a whole simulated day in microseconds.
#pragma once

#include <cstdint>

#include "base/status.hpp"

namespace loy::net {

inline constexpr int64_t schedule_day_ms = 24 * 60 * 60'000LL;
// Longest a driver sleeps between two due() calls: a wall-clock step (NTP,
// an operator) is noticed within a minute, whatever the next sync's time.
inline constexpr int64_t schedule_wait_ms_max = 60'000;
// A link-up sync is "soon": a delay longer than a day would be a schedule of
// its own.
inline constexpr int64_t schedule_after_link_up_ms_max = schedule_day_ms;
// Thousands of terminals retry against one server: a floor keeps a failing
// server from being hammered, and a ceiling of a day keeps a terminal from
// going quiet for longer than a night.
inline constexpr int64_t schedule_retry_ms_min = 1'000;
inline constexpr int64_t schedule_retry_ms_max = schedule_day_ms;
// The periodic sync, when on: at most once a minute (the server's load), at
// least once a week (a longer period is a typo for a shorter one).
inline constexpr int64_t schedule_interval_ms_min = 60'000;
inline constexpr int64_t schedule_interval_ms_max = 7 * schedule_day_ms;
inline constexpr int schedule_jitter_pct_max = 50;

struct ScheduleConfig {
	int nightly_minute = 23 * 60 + 30;   // minutes after local midnight 0..1439; -1: no nightly sync
	int64_t after_link_up_ms = 15'000;   // a sync this long after the link comes back up
	int64_t retry_min_ms = 30'000;       // first retry after a failure
	int64_t retry_max_ms = 30 * 60'000;  // the back-off never waits longer
	int jitter_pct = 20;                 // each wait is scaled by a random factor in [1 - j%, 1 + j%]; 0..50
	int64_t interval_ms = 0;             // >0: also sync this often while the link is up; 0: off
};

// Checks each field against its range (the constants above); the message
// names the field: "sync: retry_max_ms (1000) is below retry_min_ms (30000)".
Status check(const ScheduleConfig &c);

// Which sync is due, and when. Times in milliseconds: `mono` from a clock
// that never jumps (waits, back-off), `wall` since the epoch in UTC plus
// `utc_offset_s` for the nightly time of day.
//
// The nightly rule: night k begins at the k-th nightly instant (local
// midnight + nightly_minute, in the offset of the call). The nightly sync is
// due when the last success belongs to an earlier night than now, so a
// night missed while the terminal was off or the link down is synced once,
// as soon as possible, and a restart after tonight's sync does not repeat it.
// A wall clock that steps forward makes at most one sync (one success covers
// every night up to now). A success the clock now places in the future
// (it stepped back) is believed for one night at most: it is pulled back to
// the next nightly instant, so a step back after tonight's sync does not
// repeat it, and a clock that was a year ahead costs one night, not a year.
//
// What gates what: a request is due at once, whatever the link. Otherwise
// nothing is due while the link is down. After the link comes up, only the
// link-up sync (after_link_up_ms) is awaited; after a failure, only the
// retry. The nightly and interval syncs wait behind those, since the sync
// that ends the wait covers them.
class SyncScheduler {
public:
	// seed: the jitter's PRNG (splitmix64), so that a run can be replayed.
	// A config that skipped check() is clamped into range rather than
	// trusted, so that no wait can overflow.
	SyncScheduler(const ScheduleConfig &c, uint64_t seed);

	// The state at start. last_success_wall_ms: when the ledger last synced
	// (0 or less: never). A link that is up at start is not a link that came
	// up: no link-up sync, so that a restart after tonight's sync does not
	// sync again. Resets everything but the PRNG.
	void start(int64_t mono_ms, int64_t wall_ms, int32_t utc_offset_s, bool link_up,
		   int64_t last_success_wall_ms);
	// Only a change counts: up while up is ignored. Up schedules the link-up
	// sync and resets the back-off; down forgets a pending link-up sync.
	void link_changed(bool up, int64_t mono_ms);
	// Someone (the POS, an operator) asks for a sync now. During a sync: one
	// more sync after it.
	void request(int64_t mono_ms);
	// True at most once per due sync; the caller then runs it and must call
	// finished(). False while a sync runs.
	bool due(int64_t mono_ms, int64_t wall_ms, int32_t utc_offset_s);
	void finished(bool ok, int64_t mono_ms, int64_t wall_ms);
	// After a failed sync: the centre was busy and asked for `wait_ms`
	// (its 503's Retry-After). The retry comes no sooner than that, nor
	// later than the back-off would have it (retry_max_ms at most).
	void busy(int64_t wait_ms, int64_t mono_ms);
	// Milliseconds the caller may sleep before asking due() again: 0 ..
	// schedule_wait_ms_max. The caller also wakes on link changes, requests
	// and finished() (while a sync runs this is the maximum).
	int64_t wait_ms(int64_t mono_ms, int64_t wall_ms, int32_t utc_offset_s) const;

	// For logs and status: while a sync runs, why it started; otherwise why
	// the next one will, as of the last call: "request", "link-up" (also
	// while the link is down: the next sync waits for it), "retry",
	// "nightly", "interval", or "none".
	const char *reason() const { return reason_; }
	// Failed syncs in a row (saturates).
	int failures() const { return failures_; }
	bool running() const { return running_; }

	// The back-off before retry number `failures` (1 = the first), before
	// jitter: retry_min_ms × 2^(failures - 1), at most retry_max_ms.
	int64_t backoff_ms(int failures) const;

private:
	struct Next {
		const char *reason;
		int64_t wait_ms; // ≤ 0: due now; INT64_MAX: not until something happens
	};
	Next next(int64_t mono_ms, int64_t wall_ms, int32_t utc_offset_s) const;
	int64_t nightly_last(int64_t wall_ms, int32_t utc_offset_s) const;
	int64_t jittered(int64_t nominal_ms);

	ScheduleConfig cfg_;
	uint64_t rng_;
	bool started_ = false;
	bool link_up_ = false;
	bool running_ = false;
	bool request_ = false;
	bool link_up_pending_ = false;
	int64_t link_up_at_ms_ = 0;     // mono, when link_up_pending_
	int failures_ = 0;
	int64_t retry_at_ms_ = 0;       // mono, when failures_ > 0
	int64_t interval_at_ms_ = 0;    // mono, when interval_ms > 0
	int64_t last_success_wall_ms_ = 0;
	int32_t utc_offset_s_ = 0;      // the last one passed in, for reason() after finished()
	const char *reason_ = "none";
};

} // namespace loy::net
