/* SPDX-License-Identifier: MIT */
/*
 * webhook.h: delivers every presence change as a JSON POST to the configured webhook URLs. The
 * outbox is the store's presence_events log; each target keeps a persisted cursor (the id of the
 * last event it delivered or gave up), so delivery is at-least-once, in log order (and so in order
 * per user), and survives a restart. One thread per process, with its own store connection and
 * libcurl handle, delivers to the targets one after the other. docs/webhooks.md describes the
 * request, the signature and the retry rules.
 *
 * Threads: webhook_start and webhook_stop are called by the owner (the main thread);
 * webhook_wake and webhook_stats may be called from any thread.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"

struct cfg_webhook;
struct err;
struct store_presence_event;
struct webhook;

/* Most targets: CFG_MAX_WEBHOOKS (checked in webhook.c). */
#define WEBHOOK_MAX_TARGETS 16u
/* Events read from the store per target per pass. */
#define WEBHOOK_BATCH 100u
/* Back-off after a failed delivery: doubles from the first to the last, with jitter (d/2..d). */
#define WEBHOOK_RETRY_FIRST_USEC INT64_C(1000000)
#define WEBHOOK_RETRY_MAX_USEC   INT64_C(300000000)
/* One POST, connection included, may take at most this long. */
#define WEBHOOK_TIMEOUT_USEC         INT64_C(10000000)
#define WEBHOOK_CONNECT_TIMEOUT_USEC INT64_C(5000000)
/* The response body is read and thrown away; a longer one ends the transfer (a failure). */
#define WEBHOOK_MAX_RESPONSE (64u << 10)
/* "sha256=" and 64 hex digits and a NUL. */
#define WEBHOOK_SIGNATURE_SIZE 72

struct webhook_opts {
	const char *store_path;            /* opened again by the thread (WAL: reads never block) */
	const struct cfg_webhook *targets; /* copied; the caller may free them after start */
	size_t n_targets;                  /* 1..WEBHOOK_MAX_TARGETS */
};

/* One target's counters. url is borrowed from the struct webhook (valid until webhook_stop). */
struct webhook_target_stats {
	const char *url;
	uint64_t delivered; /* events answered 2xx */
	uint64_t failures;  /* failed attempts (connection error, time-out, non-2xx) */
	uint64_t dropped;   /* events given up after retry_for, or that could not be encoded */
	uint64_t pending;   /* events in the log after the target's cursor */
	int64_t cursor;     /* the id of the last event delivered or given up */
};

struct webhook_stats {
	size_t n;
	struct webhook_target_stats targets[WEBHOOK_MAX_TARGETS];
};

/*
 * Opens the store, loads each target's cursor (a target without one starts at the newest event
 * id and gets the changes from now on; that cursor is stored at once) and starts the delivery
 * thread. 0 and *out, or a negative errno with err (store errors, -EINVAL for no or too many
 * targets, -EIO when libcurl or the thread cannot start).
 */
ATTR_NODISCARD int webhook_start(const struct webhook_opts *o, struct webhook **out,
                                 struct err *err);

/* Thread-safe, cheap, never blocks for long: new events are in the store; deliver them now
 * (a target waiting out a back-off keeps waiting). */
void webhook_wake(struct webhook *w);

/* Stops the thread promptly (a POST in flight is aborted; its event stays pending) and frees w.
 * NULL-safe. */
void webhook_stop(struct webhook *w);

/* Thread-safe: a snapshot of every target's counters. */
void webhook_stats(struct webhook *w, struct webhook_stats *out);

/* ---- pure helpers, exposed for tests ---- */

/*
 * The request body for ev: the object of a docs/output.md line, compact, keys in that order
 * ({"id":..,"time":..,"user":..,"state":..,"profile":..,"forward":..,"subject":..,"since":..,
 * "until":..,"reason":..}), without a newline. time is the event's updated_utc; a since or until
 * of 0 (none) is null. 0 and an owned *out_body, or -EINVAL (a string is not UTF-8) / -ERANGE (a
 * time outside years 1..9999) with err.
 */
ATTR_NODISCARD int webhook_body(const struct store_presence_event *ev, char **out_body,
                                size_t *out_len, struct err *err);

/* "sha256=" and the lower-case hex HMAC-SHA256 of body under secret, into out. 0, or -EIO when
 * OpenSSL fails. */
ATTR_NODISCARD int webhook_signature(const char *secret, const char *body, size_t len,
                                     char out[WEBHOOK_SIGNATURE_SIZE]);

/* The delay before retry number failures (1 for the first retry) with jitter: a value between
 * d/2 and d, where d doubles from WEBHOOK_RETRY_FIRST_USEC up to WEBHOOK_RETRY_MAX_USEC. rnd is
 * a random number (any value). */
int64_t webhook_backoff_usec(unsigned failures, uint64_t rnd);
