/* SPDX-License-Identifier: MIT */
/*
 * backoff.h: retry delays with jitter, for the sync engine's mailboxes and streams and for
 * webhook delivery. Pure, libc only.
 */
#pragma once

#include <stdint.h>

/* xorshift64*: the next number of *state (never 0) for jitter; not for security. */
uint64_t backoff_rng_next(uint64_t *state);

/* A delay between d/2 and d chosen by rnd, so that clients that failed together are not
 * retried together; d itself when d <= 1. */
int64_t backoff_jitter(int64_t d, uint64_t rnd);

/* Exponential back-off: first for the first failure (and for 0), doubled for each further one
 * up to max, then jittered with backoff_jitter(). */
int64_t backoff_delay(int64_t first, int64_t max, unsigned failures, uint64_t rnd);
