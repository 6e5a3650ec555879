/* SPDX-License-Identifier: MIT */
/*
 * run-testclock.c: the test clock of `calsync run` (CALSYNC_TEST_CLOCK_FILE, re-read on SIGUSR2).
 * Compiled only with -Dtest_hooks=true; the default build has none of it (run-testclock.h).
 */
#include "cli/run-testclock.h"

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <uv.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "sync/engine.h"

/* Calendar time is the real clock plus offset_sec, or, when frozen, exactly frozen_utc. */
struct run_testclock {
	uv_signal_t sig_usr2;
	struct sync_engine *engine;
	int64_t offset_sec;
	bool frozen;
	int64_t frozen_utc;
};

static int64_t testclock_now_ms(void *ctx)
{
	const struct run_testclock *tc = ctx;

	if (tc->frozen)
		return tc->frozen_utc * 1000;
	return clock_now_ms(NULL) + tc->offset_sec * 1000;
}

static bool testclock_frozen(void *ctx)
{
	const struct run_testclock *tc = ctx;

	return tc->frozen;
}

/* A JSON number of seconds into *out; absent leaves it. false for anything else. */
static bool clock_seconds(const json_t *v, int64_t *out)
{
	double d;

	if (v == NULL)
		return true;
	if (!json_is_number(v))
		return false;
	d = json_number_value(v);
	if (!(d > -1e12 && d < 1e12))
		return false;
	*out = (int64_t)d;
	return true;
}

/* Reads CALSYNC_TEST_CLOCK_FILE, when set: {"offset": seconds} or {"frozen": epoch}. */
static void apply_test_clock(struct run_testclock *tc)
{
	const char *path = getenv("CALSYNC_TEST_CLOCK_FILE");
	struct cs_clock clock = {.now_ms = testclock_now_ms, .frozen = testclock_frozen, .ctx = tc};
	json_error_t jerr;
	json_t *j;
	int64_t offset = 0, frozen = 0;
	bool is_frozen = false;

	if (path == NULL || path[0] == '\0')
		return;
	j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL || !json_is_object(j)) {
		log_err("test clock %s: line %d: %s", path, jerr.line,
		        j ? "not an object" : jerr.text);
		json_decref(j);
		return;
	}
	/* Seconds, whole or not; fractions are dropped. */
	if (!clock_seconds(json_object_get(j, "offset"), &offset) ||
	    !clock_seconds(json_object_get(j, "frozen"), &frozen)) {
		log_err("test clock %s: offset and frozen must be numbers of seconds below 1e12",
		        path);
		json_decref(j);
		return;
	}
	is_frozen = json_object_get(j, "frozen") != NULL;
	json_decref(j);
	tc->offset_sec = offset;
	tc->frozen = is_frozen;
	tc->frozen_utc = frozen;
	sync_engine_set_clock(tc->engine, &clock);
	log_info("test clock: offset %lld s%s", (long long)offset, is_frozen ? ", frozen" : "");
}

static void on_usr2(uv_signal_t *h, int signum)
{
	apply_test_clock(h->data);
}

static void free_on_close(uv_handle_t *h)
{
	free(h->data);
}

int run_testclock_start(struct uv_loop_s *loop, struct sync_engine *e,
                        struct run_testclock **out_tc)
{
	struct run_testclock *tc = xcalloc(1, sizeof(*tc));
	int rc;

	tc->engine = e;
	rc = uv_signal_init(loop, &tc->sig_usr2);
	if (rc < 0) {
		free(tc);
		log_err("test clock: SIGUSR2: %s", uv_strerror(rc));
		return rc;
	}
	tc->sig_usr2.data = tc;
	rc = uv_signal_start(&tc->sig_usr2, on_usr2, SIGUSR2);
	if (rc < 0) {
		/* The loop frees tc when it has closed the handle. */
		uv_close((uv_handle_t *)&tc->sig_usr2, free_on_close);
		log_err("test clock: SIGUSR2: %s", uv_strerror(rc));
		return rc;
	}
	apply_test_clock(tc);
	*out_tc = tc;
	return 0;
}

void run_testclock_free(struct run_testclock *tc)
{
	free(tc);
}
