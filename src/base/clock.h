/* SPDX-License-Identifier: MIT */
/*
 * clock.h: the two clocks, and the injectable calendar clock. Durations and timers use monotonic microseconds (`*_usec`); calendar
 * instants use UTC seconds since the Unix epoch (`*_utc`). Never mix them (STYLE.md 6).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define USEC_PER_SEC  INT64_C(1000000)
#define USEC_PER_MSEC INT64_C(1000)

/* Monotonic time in microseconds from an arbitrary start; never jumps, never goes back. */
int64_t clock_now_usec(void);

/* Wall-clock time in whole UTC seconds since 1970-01-01T00:00:00Z; jumps when the clock is set. */
int64_t clock_now_utc(void);

/*
 * An injected calendar clock: what the engine calls "now" for presence, its timers and the day
 * roll-over. A zeroed struct (or NULL) is the real clock. Tests supply another (the test build's
 * CALSYNC_TEST_CLOCK_FILE, src/cli/run-testclock.c), so nothing in the default build can move
 * the daemon's idea of time.
 */
struct cs_clock {
	/* Calendar time in milliseconds since the Unix epoch, UTC. NULL: the real clock. */
	int64_t (*now_ms)(void *ctx);
	/* True while the clock stands still: waiting for calendar time would wait forever, so
	 * callers arm no timer for it. NULL: never frozen. */
	bool (*frozen)(void *ctx);
	void *ctx;
};

/* Calendar milliseconds from c (NULL or a zeroed c: the real wall clock). */
int64_t clock_now_ms(const struct cs_clock *c);

/* Whether c stands still (false for NULL or the real clock). */
bool clock_frozen(const struct cs_clock *c);
