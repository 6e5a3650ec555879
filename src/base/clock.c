/* SPDX-License-Identifier: MIT */
/* clock.c: monotonic and wall-clock time, and the injectable calendar clock's default. */
#include "base/clock.h"

#include <stdlib.h>
#include <time.h>

static struct timespec clock_read(clockid_t id)
{
	struct timespec ts;

	/* Fails only for an invalid clock id, which would be a bug here. */
	if (clock_gettime(id, &ts) != 0)
		abort();
	return ts;
}

int64_t clock_now_usec(void)
{
	struct timespec ts = clock_read(CLOCK_MONOTONIC);

	return (int64_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

int64_t clock_now_utc(void)
{
	return (int64_t)clock_read(CLOCK_REALTIME).tv_sec;
}

int64_t clock_now_ms(const struct cs_clock *c)
{
	struct timespec ts;

	if (c != NULL && c->now_ms != NULL)
		return c->now_ms(c->ctx);
	ts = clock_read(CLOCK_REALTIME);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool clock_frozen(const struct cs_clock *c)
{
	return c != NULL && c->frozen != NULL && c->frozen(c->ctx);
}
