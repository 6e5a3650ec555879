/* SPDX-License-Identifier: MIT */
/*
 * clock.h: the two clocks. Durations and timers use monotonic microseconds (`*_usec`); calendar
 * instants use UTC seconds since the Unix epoch (`*_utc`). Never mix them (STYLE.md 6).
 */
#pragma once

#include <stdint.h>

#define USEC_PER_SEC  INT64_C(1000000)
#define USEC_PER_MSEC INT64_C(1000)

/* Monotonic time in microseconds from an arbitrary start; never jumps, never goes back. */
int64_t clock_now_usec(void);

/* Wall-clock time in whole UTC seconds since 1970-01-01T00:00:00Z; jumps when the clock is set. */
int64_t clock_now_utc(void);
