/* SPDX-License-Identifier: MIT */
/*
 * run-testhooks.h: what `calsync run` does for the integration tests only, in the test build
 * only. Built with -Dtest_hooks=true (run-testhooks.c), calendar time comes from the JSON file
 * named by CALSYNC_TEST_CLOCK_FILE and is re-read on SIGUSR2, and CALSYNC_TEST_SSE_KEEPALIVE_MS
 * shortens the event stream's keep-alive (docs/testing.md). In the default build these are
 * empty inline functions: the binary holds no code or string of either hook, and the engine
 * keeps the real clock.
 */
#pragma once

#include <stdint.h>

#include "calsync-config.h"

struct run_testclock;
struct sync_engine;
struct uv_loop_s;

#if CALSYNC_TEST_HOOKS

/*
 * Gives e the test clock: reads CALSYNC_TEST_CLOCK_FILE now when it is set, and again on every
 * SIGUSR2 (which it handles on loop). *out_tc is the caller's, to free with run_testclock_free
 * after e is freed and loop's handles are closed. 0, or a negative errno from libuv, printed.
 */
int run_testclock_start(struct uv_loop_s *loop, struct sync_engine *e,
                        struct run_testclock **out_tc);

/* NULL-safe; only once the signal handle is closed (uv_walk + uv_run after the engine). */
void run_testclock_free(struct run_testclock *tc);

/* CALSYNC_TEST_SSE_KEEPALIVE_MS as microseconds when it is a number of ms in 1..3600000, else 0
 * (the API's default of 15 s). */
int64_t run_testhooks_sse_keepalive_usec(void);

#else

static inline int run_testclock_start(struct uv_loop_s *loop, struct sync_engine *e,
                                      struct run_testclock **out_tc)
{
	*out_tc = NULL;
	return 0;
}

static inline void run_testclock_free(struct run_testclock *tc)
{
}

static inline int64_t run_testhooks_sse_keepalive_usec(void)
{
	return 0;
}

#endif
