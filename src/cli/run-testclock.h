/* SPDX-License-Identifier: MIT */
/*
 * run-testclock.h: the test clock of `calsync run`, in the test build only. Built with
 * -Dtest_hooks=true (run-testclock.c), calendar time comes from the JSON file named by
 * CALSYNC_TEST_CLOCK_FILE and is re-read on SIGUSR2 (docs/testing.md). In the default build
 * these are empty inline functions: the binary holds no code or string of the test clock, and
 * the engine keeps the real clock.
 */
#pragma once

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

#endif
