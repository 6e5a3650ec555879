/* SPDX-License-Identifier: MIT */
/*
 * uvwait.h: runs a libuv loop until a condition holds or a deadline passes, for the unit tests;
 * header-only. A ticking timer makes every uv_run(UV_RUN_ONCE) return within TICK_MS, so the
 * condition is checked even when nothing else happens on the loop. No sleeping: the loop waits
 * for events.
 *
 *	UVWAIT(loop, 5000, done_count == 3);
 *	CHECK_EQ(done_count, 3);
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#define UVWAIT_TICK_MS 5

struct uvwait {
	uv_loop_t *loop;
	uv_timer_t tick;
	uint64_t deadline_ms;
	bool closed;
};

static inline void uvwait_on_tick(uv_timer_t *t)
{
	(void)t;
}

static inline void uvwait_on_closed(uv_handle_t *h)
{
	((struct uvwait *)h->data)->closed = true;
}

static inline void uvwait_begin(struct uvwait *w, uv_loop_t *loop, unsigned ms)
{
	w->loop = loop;
	w->closed = false;
	uv_update_time(loop);
	w->deadline_ms = uv_now(loop) + ms;
	uv_timer_init(loop, &w->tick);
	w->tick.data = w;
	uv_timer_start(&w->tick, uvwait_on_tick, UVWAIT_TICK_MS, UVWAIT_TICK_MS);
}

/* One loop iteration; false once the deadline has passed. */
static inline bool uvwait_step(struct uvwait *w)
{
	uv_update_time(w->loop);
	if (uv_now(w->loop) >= w->deadline_ms)
		return false;
	uv_run(w->loop, UV_RUN_ONCE);
	return true;
}

static inline void uvwait_end(struct uvwait *w)
{
	uv_close((uv_handle_t *)&w->tick, uvwait_on_closed);
	while (!w->closed)
		uv_run(w->loop, UV_RUN_NOWAIT);
}

#define UVWAIT(loop, ms, cond)                          \
	do {                                            \
		struct uvwait uvw_;                     \
		uvwait_begin(&uvw_, (loop), (ms));      \
		while (!(cond) && uvwait_step(&uvw_)) { \
		}                                       \
		uvwait_end(&uvw_);                      \
	} while (0)

/* Runs the loop until only handles closing remain to finish (after a free). */
static inline void uvwait_drain(uv_loop_t *loop)
{
	for (int i = 0; i < 100 && uv_run(loop, UV_RUN_NOWAIT) != 0; i++) {
	}
}
