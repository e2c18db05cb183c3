/*
 * test_schedule.c - the sync schedule of include/loyalty/schedule.h from C,
 * as a POS application running its own loop drives it: defaults, a refused
 * configuration named, and a simulated day (nightly, request, link down and
 * up, a failure and its retry) on fixed clocks. Built against the build
 * tree's static and shared libraries.
 */
#include <loyalty/schedule.h>

#include <stdio.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (cond) {                                                                  \
			passed++;                                                            \
		} else {                                                                     \
			failed++;                                                            \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
		}                                                                            \
	} while (0)

/* 2026-06-01T12:00:00Z; Budapest is at +02:00 then. */
#define NOON_MS INT64_C(1780315200000)
#define OFFSET_S 7200
#define MINUTE_MS INT64_C(60000)
#define HOUR_MS (60 * MINUTE_MS)

static void defaults(void)
{
	loy_schedule_config c;
	memset(&c, 0xA5, sizeof c);
	loy_schedule_defaults(&c);
	CHECK(c.size == sizeof c);
	CHECK(c.nightly_minute == 23 * 60 + 30);
	CHECK(c.after_link_up_ms == 15000);
	CHECK(c.retry_min_ms == 30000);
	CHECK(c.retry_max_ms == 30 * MINUTE_MS);
	CHECK(c.jitter_pct == 20);
	CHECK(c.interval_ms == 0);
}

static void refusals(void)
{
	loy_schedule *s = NULL;
	CHECK(loy_schedule_new(&s) == LOY_OK && s != NULL);
	CHECK(loy_schedule_new(NULL) == LOY_E_BAD_ARGUMENT);
	loy_schedule_config c;
	loy_schedule_defaults(&c);
	c.retry_max_ms = 1000; /* below retry_min_ms */
	CHECK(loy_schedule_configure(s, &c, 1) == LOY_E_BAD_ARGUMENT);
	CHECK(strstr(loy_schedule_errmsg(s), "retry_max_ms") != NULL);
	loy_schedule_defaults(&c);
	c.jitter_pct = 51;
	CHECK(loy_schedule_configure(s, &c, 1) == LOY_E_BAD_ARGUMENT);
	CHECK(strstr(loy_schedule_errmsg(s), "jitter") != NULL);
	c.size = 0; /* a struct never filled */
	CHECK(loy_schedule_configure(s, &c, 1) == LOY_E_BAD_ARGUMENT);
	CHECK(strstr(loy_schedule_errmsg(s), "loy_schedule_defaults") != NULL);
	CHECK(loy_schedule_configure(s, NULL, 1) == LOY_E_BAD_ARGUMENT);
	/* A success clears the message. */
	loy_schedule_defaults(&c);
	CHECK(loy_schedule_configure(s, &c, 1) == LOY_OK);
	CHECK(strcmp(loy_schedule_errmsg(s), "") == 0);
	loy_schedule_free(s);
	loy_schedule_free(NULL);
	/* No handle: nothing due, the longest wait. */
	CHECK(loy_schedule_due(NULL, 0, NOON_MS, 0) == 0);
	CHECK(loy_schedule_wait_ms(NULL, 0, NOON_MS, 0) == LOY_SCHEDULE_WAIT_MS_MAX);
}

/* Every wait within bounds while a day passes minute by minute; returns how
 * many syncs were due. */
static int run_until(loy_schedule *s, int64_t *mono, int64_t *wall, int64_t until_wall, int ok)
{
	int syncs = 0;
	while (*wall < until_wall) {
		int64_t w = loy_schedule_wait_ms(s, *mono, *wall, OFFSET_S);
		CHECK(w >= 0 && w <= LOY_SCHEDULE_WAIT_MS_MAX);
		if (loy_schedule_due(s, *mono, *wall, OFFSET_S)) {
			syncs++;
			loy_schedule_finished(s, ok, *mono, *wall);
		}
		*mono += MINUTE_MS;
		*wall += MINUTE_MS;
	}
	return syncs;
}

static void a_day(void)
{
	loy_schedule *s = NULL;
	CHECK(loy_schedule_new(&s) == LOY_OK);
	loy_schedule_config c;
	loy_schedule_defaults(&c);
	c.jitter_pct = 0; /* waits exact */
	CHECK(loy_schedule_configure(s, &c, 42) == LOY_OK);
	int64_t mono = 0, wall = NOON_MS;
	/* Synced at noon: nothing until 23:30 local = 21:30Z. */
	loy_schedule_start(s, mono, wall, OFFSET_S, 1, NOON_MS);
	CHECK(loy_schedule_due(s, mono, wall, OFFSET_S) == 0);
	CHECK(run_until(s, &mono, &wall, NOON_MS + 9 * HOUR_MS + 29 * MINUTE_MS, 1) == 0);
	CHECK(run_until(s, &mono, &wall, NOON_MS + 9 * HOUR_MS + 31 * MINUTE_MS, 1) == 1);
	/* Once a night: the rest of the night and the next day until 21:29Z. */
	CHECK(run_until(s, &mono, &wall, NOON_MS + 33 * HOUR_MS + 29 * MINUTE_MS, 1) == 0);
	CHECK(run_until(s, &mono, &wall, NOON_MS + 33 * HOUR_MS + 31 * MINUTE_MS, 1) == 1);

	/* A request is due at once, even with the link down, and says why. */
	loy_schedule_link_changed(s, 0, mono);
	loy_schedule_request(s, mono);
	CHECK(loy_schedule_due(s, mono, wall, OFFSET_S) == 1);
	CHECK(strcmp(loy_schedule_reason(s), "request") == 0);
	loy_schedule_finished(s, 1, mono, wall);
	/* Down: tomorrow's night passes without a sync. */
	CHECK(run_until(s, &mono, &wall, wall + 24 * HOUR_MS, 1) == 0);
	CHECK(strcmp(loy_schedule_reason(s), "link-up") == 0);
	/* Up: the missed night is synced once, after_link_up_ms later. */
	loy_schedule_link_changed(s, 1, mono);
	CHECK(loy_schedule_due(s, mono + 14999, wall, OFFSET_S) == 0);
	CHECK(loy_schedule_due(s, mono + 15000, wall, OFFSET_S) == 1);
	mono += 15000;
	/* It fails: a retry after retry_min_ms, counted. */
	loy_schedule_finished(s, 0, mono, wall);
	CHECK(loy_schedule_failures(s) == 1);
	CHECK(strcmp(loy_schedule_reason(s), "retry") == 0);
	CHECK(loy_schedule_due(s, mono + 29999, wall, OFFSET_S) == 0);
	CHECK(loy_schedule_due(s, mono + 30000, wall, OFFSET_S) == 1);
	mono += 30000;
	/* It fails again, and the centre was busy: 90 s, not the 60 s back-off. */
	loy_schedule_finished(s, 0, mono, wall);
	loy_schedule_busy(s, 90000, mono);
	CHECK(loy_schedule_due(s, mono + 89999, wall, OFFSET_S) == 0);
	CHECK(loy_schedule_due(s, mono + 90000, wall, OFFSET_S) == 1);
	loy_schedule_finished(s, 1, mono + 90000, wall);
	CHECK(loy_schedule_failures(s) == 0);
	loy_schedule_busy(NULL, 1000, mono); /* a null handle is ignored */
	loy_schedule_free(s);
}

int main(void)
{
	defaults();
	refusals();
	a_day();
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 && passed > 0 ? 0 : 1;
}
