/* SPDX-License-Identifier: MIT */
/* backoff.c: retry delays with jitter (backoff.h). */
#include "base/backoff.h"

uint64_t backoff_rng_next(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * UINT64_C(2685821657736338717);
}

int64_t backoff_jitter(int64_t d, uint64_t rnd)
{
	if (d <= 1)
		return d;
	return d / 2 + (int64_t)(rnd % (uint64_t)(d / 2));
}

int64_t backoff_delay(int64_t first, int64_t max, unsigned failures, uint64_t rnd)
{
	int64_t d = first;

	for (unsigned i = 1; i < failures && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	return backoff_jitter(d, rnd);
}
