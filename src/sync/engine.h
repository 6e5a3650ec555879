/* SPDX-License-Identifier: MIT */
/*
 * engine.h: the sync engine. Keeps every configured mailbox's calendar window mirrored in the
 * store through streaming or pull notifications, and turns it into presence changes at the
 * moment an appointment starts, ends or changes. Runs on one libuv loop; docs/sync.md describes
 * the state machine, the streaming groups, back-off and what a restart does.
 *
 * Single-threaded: every function must be called on the loop's thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"

struct cfg;
struct err;
struct store;
struct sync_engine;
struct sync_output;
struct uv_loop_s;

/* Most streaming subscriptions per GetStreamingEvents connection (EWS-REFERENCE 4.7). */
#define SYNC_GROUP_MAX 200u

/* Buffered EWS requests in flight at once, over all budgets. The per-budget cap is the
 * configuration's concurrency. */
#define SYNC_MAX_IN_FLIGHT 48u

/* Mailboxes per Autodiscover GetUserSettings request. */
#define SYNC_DISCOVER_BATCH 100u

/* Back-off after a transient error: doubles from the first to the last, with jitter. */
#define SYNC_RETRY_FIRST_USEC INT64_C(1000000)
#define SYNC_RETRY_MAX_USEC   INT64_C(300000000)
/* A parked mailbox (impersonation denied, no such mailbox) is retried this often. */
#define SYNC_PARKED_RETRY_USEC INT64_C(900000000)
/* SIGTERM: how long unsubscribing may take before calsync exits anyway. */
#define SYNC_SHUTDOWN_USEC INT64_C(10000000)

/* What the engine reports through sync_engine_stats(). */
struct sync_stats {
	size_t mailboxes;
	size_t unresolved;
	size_t syncing;
	size_t live;
	size_t parked;
	size_t groups;             /* streaming groups */
	size_t streams_open;       /* GetStreamingEvents connections open now */
	size_t in_flight;          /* buffered requests in flight */
	uint64_t requests;         /* buffered requests sent */
	uint64_t subscribes;       /* Subscribe requests sent */
	uint64_t refreshes;        /* CalendarView reads completed */
	uint64_t presence_changes; /* presence changes recorded */
	uint64_t throttled;        /* ErrorServerBusy / ErrorExceededConnectionCount answers */
};

/*
 * A new engine on loop, for cfg (borrowed; must outlive the engine or be replaced with
 * sync_engine_reload), writing to store (borrowed, opened by the caller) and out (borrowed;
 * may be NULL). Loads the stored mailboxes and presence, adds the configured mailboxes and
 * disables the stored ones no longer configured. Nothing is sent until sync_engine_start().
 * 0 and *out_engine, or a negative errno with err.
 */
ATTR_NODISCARD int sync_engine_new(struct uv_loop_s *loop, const struct cfg *cfg,
                                   struct store *store, struct sync_output *out,
                                   struct sync_engine **out_engine, struct err *err);

/* Starts syncing: presence timers from the stored presence at once, then Autodiscover,
 * subscriptions and window reads in the background with bounded concurrency. */
ATTR_NODISCARD int sync_engine_start(struct sync_engine *e, struct err *err);

/*
 * Applies a newly loaded configuration (SIGHUP): added mailboxes start syncing, removed ones
 * are unsubscribed and disabled, changed presence rules recompute every mailbox's presence,
 * changed timings apply to what is scheduled next. Settings that need a restart (server, account,
 * TLS, store, notification mode) are kept and each is logged as a warning. The engine borrows
 * cfg from now on; the caller frees the old one after this returns. 0 or a negative errno.
 */
ATTR_NODISCARD int sync_engine_reload(struct sync_engine *e, const struct cfg *cfg,
                                      struct err *err);

/*
 * Clock shift for tests (docs/testing.md): calendar time is the real UTC clock plus offset_sec,
 * or, when frozen, exactly frozen_utc. Presence is recomputed for every mailbox at once and its
 * timers rescheduled. Never called in production.
 */
void sync_engine_set_clock(struct sync_engine *e, int64_t offset_sec, bool frozen,
                           int64_t frozen_utc);

/* Calendar time as the engine sees it (UTC seconds). */
int64_t sync_engine_now_utc(const struct sync_engine *e);

/*
 * Begins a clean shutdown: stops new work, unsubscribes every subscription (at most
 * SYNC_SHUTDOWN_USEC), closes streams and timers, then calls done(ctx) from the loop. After done
 * the caller may free the engine.
 */
void sync_engine_stop(struct sync_engine *e, void (*done)(void *ctx), void *ctx);

/* Closes the engine's libuv handles; the loop must run once more before uv_loop_close().
 * NULL-safe. */
void sync_engine_free(struct sync_engine *e);

void sync_engine_stats(const struct sync_engine *e, struct sync_stats *out);
