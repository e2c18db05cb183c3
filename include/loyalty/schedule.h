/*
 * schedule.h - when a terminal syncs, for a POS application that runs its
 * own loop (the reference till, firmware/till.cpp, runs on it).
 *
 * Each night at a set local time, soon after the link comes back, on
 * request, and again after a failure with exponential back-off and jitter.
 * Policy only: no threads, no I/O, no clock reads. The caller passes the
 * times in and asks what to do:
 *
 *     loy_schedule *s;
 *     loy_schedule_new(&s);
 *     loy_schedule_config c;
 *     loy_schedule_defaults(&c);
 *     c.nightly_minute = 23 * 60 + 15; ...
 *     if (loy_schedule_configure(s, &c, seed) != LOY_OK) puts(loy_schedule_errmsg(s));
 *     loy_schedule_start(s, mono, wall, offset, link_up, last_sync_ms);
 *     for (;;) {
 *         if (loy_schedule_due(s, mono, wall, offset)) {
 *             ok = loy_terminal_sync(t, ...) == LOY_OK;
 *             loy_schedule_finished(s, ok, mono, wall);
 *             if (!ok)
 *                 loy_schedule_busy(s, loy_terminal_retry_after_ms(t), mono);
 *         }
 *         sleep at most loy_schedule_wait_ms(s, mono, wall, offset), waking on
 *         a link change (loy_schedule_link_changed) or a request
 *         (loy_schedule_request);
 *     }
 *
 * Times in milliseconds: `mono` from a clock that never jumps (waits,
 * back-off), `wall` since the epoch in UTC, and `utc_offset_s` the local
 * offset at `wall` (loy_terminal_utc_offset) for the nightly time of day.
 *
 * The nightly rule: a night missed while the terminal was off or the link
 * down is synced once, as soon as possible; a restart after tonight's sync
 * does not repeat it; a wall clock stepped forward makes at most one sync,
 * and one stepped back repeats no night. A request is due at once, whatever
 * the link; otherwise nothing is due while the link is down.
 *
 * A handle is used from one thread at a time.
 */
#ifndef LOYALTY_SCHEDULE_H
#define LOYALTY_SCHEDULE_H

#include <stdint.h>

#include "loyalty/loyalty.h"

#ifdef __cplusplus
extern "C" {
#endif

/** \brief Longest a caller sleeps between two loy_schedule_due() calls (a clock step is seen within it). */
#define LOY_SCHEDULE_WAIT_MS_MAX 60000

/**
 * \brief When to sync. Filled by loy_schedule_defaults() (its size set),
 * then changed where it differs; a field out of range is refused by
 * loy_schedule_configure(), naming it. Fields are only ever appended: those
 * an older caller's struct lacks take their defaults.
 */
typedef struct loy_schedule_config {
	size_t size;              /**< sizeof(loy_schedule_config) */
	int nightly_minute;       /**< minutes after local midnight, 0..1439; -1: no nightly sync (default 23:30) */
	int64_t after_link_up_ms; /**< a sync this long after the link comes back, 0..1 day (default 15 s) */
	int64_t retry_min_ms;     /**< first retry after a failure, 1 s..1 day (default 30 s) */
	int64_t retry_max_ms;     /**< the back-off never waits longer, retry_min_ms..1 day (default 30 min) */
	int jitter_pct;           /**< each wait scaled by a random factor in [1 - j%, 1 + j%], 0..50 (default 20) */
	int64_t interval_ms;      /**< >0: also sync this often while the link is up, 1 min..7 days; 0: off (default) */
} loy_schedule_config;

/** \brief Fills `c` (its size set) with the defaults. */
LOY_API void loy_schedule_defaults(loy_schedule_config *c);

typedef struct loy_schedule loy_schedule;

/** \brief A schedule with the default configuration; LOY_E_INTERNAL when out of memory. */
LOY_API loy_status loy_schedule_new(loy_schedule **out);
LOY_API void loy_schedule_free(loy_schedule *s);
/** \brief What the last call that failed said; "" after one that succeeded. */
LOY_API const char *loy_schedule_errmsg(const loy_schedule *s);

/**
 * \brief Takes a configuration and the jitter's seed (the same seed replays
 * the same waits). Refused (LOY_E_BAD_ARGUMENT, the schedule unchanged) when
 * a field is out of range. Call loy_schedule_start() after it.
 */
LOY_API loy_status loy_schedule_configure(loy_schedule *s, const loy_schedule_config *c, uint64_t seed);

/**
 * \brief The state at start. `last_success_wall_ms`: when the ledger last
 * synced (0 or less: never). A link up at start is not a link that came up:
 * no link-up sync.
 */
LOY_API void loy_schedule_start(loy_schedule *s, int64_t mono_ms, int64_t wall_ms, int32_t utc_offset_s,
				int link_up, int64_t last_success_wall_ms);

/** \brief The link went up (1) or down (0); only a change counts. */
LOY_API void loy_schedule_link_changed(loy_schedule *s, int up, int64_t mono_ms);

/** \brief Someone asks for a sync now; during a sync, one more after it. */
LOY_API void loy_schedule_request(loy_schedule *s, int64_t mono_ms);

/** \brief 1 at most once per due sync (run it, then call loy_schedule_finished()); 0 otherwise. */
LOY_API int loy_schedule_due(loy_schedule *s, int64_t mono_ms, int64_t wall_ms, int32_t utc_offset_s);

/** \brief The sync that loy_schedule_due() started ended, well (1) or not (0). */
LOY_API void loy_schedule_finished(loy_schedule *s, int ok, int64_t mono_ms, int64_t wall_ms);

/**
 * \brief After a failed sync, the centre was busy and asked to be left alone
 * for `wait_ms` (loy_terminal_retry_after_ms()): the retry comes no sooner,
 * and no later than the back-off's ceiling (retry_max_ms). 0 changes nothing.
 */
LOY_API void loy_schedule_busy(loy_schedule *s, int64_t wait_ms, int64_t mono_ms);

/** \brief How long the caller may sleep before asking again: 0..LOY_SCHEDULE_WAIT_MS_MAX. */
LOY_API int64_t loy_schedule_wait_ms(const loy_schedule *s, int64_t mono_ms, int64_t wall_ms,
				     int32_t utc_offset_s);

/**
 * \brief Why the running sync started, or why the next one will: "request",
 * "link-up", "retry", "nightly", "interval" or "none".
 */
LOY_API const char *loy_schedule_reason(const loy_schedule *s);

/** \brief Failed syncs in a row. */
LOY_API int loy_schedule_failures(const loy_schedule *s);

#ifdef __cplusplus
}
#endif

#endif /* LOYALTY_SCHEDULE_H */
