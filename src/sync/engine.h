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

/* An SMTP address with its NUL, as the store bounds it (STORE_MAX_SMTP). */
#define SYNC_SMTP_SIZE 321

struct cfg;
struct cs_clock;
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

/* The longest a burst of notifications delays a mailbox's read: the debounce restarts with each
 * notification, up to this long after the first (sync.md). */
#define SYNC_DEBOUNCE_CAP(debounce_usec) \
	((debounce_usec)*4 > INT64_C(2000000) ? (debounce_usec)*4 : INT64_C(2000000))

/* How long the store's write batch stays open: every change of that time is one transaction and
 * one WAL write, and presence lines wait at most this long for their commit (docs/sync.md). */
#define SYNC_BATCH_USEC INT64_C(20000)

/* Mailboxes per Autodiscover GetUserSettings request. */
#define SYNC_DISCOVER_BATCH 100u

/* Back-off after a transient error: doubles from the first to the last, with jitter. */
#define SYNC_RETRY_FIRST_USEC INT64_C(1000000)
#define SYNC_RETRY_MAX_USEC   INT64_C(300000000)
/* A parked mailbox (impersonation denied, no such mailbox) is retried this often. */
#define SYNC_PARKED_RETRY_USEC INT64_C(900000000)
/* SIGTERM: how long unsubscribing may take before calsync exits anyway. */
#define SYNC_SHUTDOWN_USEC INT64_C(10000000)

/* EWS operations, for the per-operation metrics. */
enum sync_op {
	SYNC_OP_GET_USER_SETTINGS = 0,
	SYNC_OP_SUBSCRIBE,
	SYNC_OP_FIND_ITEM,
	SYNC_OP_GET_EVENTS,
	SYNC_OP_UNSUBSCRIBE,
	SYNC_OP_GET_STREAMING_EVENTS,
	SYNC_OP_COUNT,
};

/* "GetUserSettings", "Subscribe", "FindItem", "GetEvents", "Unsubscribe",
 * "GetStreamingEvents". */
const char *sync_op_name(enum sync_op op);

/* Upper bounds (seconds) of the request latency histogram's buckets; +Inf is the count. */
#define SYNC_LATENCY_BUCKETS 10
extern const double sync_latency_bounds[SYNC_LATENCY_BUCKETS];

struct sync_op_stats {
	uint64_t ok;    /* answered NoError (for a stream: ended normally) */
	uint64_t error; /* anything else */
	uint64_t latency_le[SYNC_LATENCY_BUCKETS]; /* cumulative, as Prometheus wants */
	uint64_t latency_count;
	double latency_sum; /* seconds */
};

/* What the engine reports through sync_engine_stats(). */
struct sync_stats {
	size_t mailboxes;
	size_t unresolved;
	size_t syncing;
	size_t live;
	size_t parked;
	size_t groups;              /* streaming groups */
	size_t streams_open;        /* GetStreamingEvents connections open now */
	size_t in_flight;           /* buffered requests in flight */
	uint64_t requests;          /* buffered requests sent */
	uint64_t subscribes;        /* Subscribe requests sent */
	uint64_t refreshes;         /* CalendarView reads completed */
	uint64_t presence_changes;  /* presence changes recorded */
	uint64_t throttled;         /* ErrorServerBusy / ErrorExceededConnectionCount answers */
	size_t queued;              /* mailboxes waiting for a request slot (the refresh queue) */
	size_t backing_off;         /* mailboxes waiting out a back-off */
	size_t streams_backing_off; /* streaming groups waiting to reconnect after errors */
	/* Microsoft Graph (docs/graph.md) */
	uint64_t graph_requests;          /* requests sent, tokens aside */
	uint64_t graph_throttled;         /* 429 and 503 with Retry-After */
	uint64_t graph_notifications;     /* change and lifecycle notifications believed */
	uint64_t graph_bad_notifications; /* unknown subscription, wrong clientState, not JSON */
	uint64_t token_refreshes_ok;      /* OAuth token requests that got a token */
	uint64_t token_refreshes_failed;
	struct sync_op_stats ops[SYNC_OP_COUNT];
};

/* What another thread (the HTTP API) asks the loop to do. */
enum sync_cmd {
	SYNC_CMD_ADD = 0, /* add a mailbox at run time (kept in the store over restarts) */
	SYNC_CMD_REMOVE,  /* remove it: unsubscribe, disable */
	SYNC_CMD_RESYNC,  /* re-read its window now */
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
 * Injects the calendar clock (copied; NULL: the real clock, which is the default). Once started,
 * presence is recomputed for every mailbox at once and its timers rescheduled; call it again
 * whenever the time that clock reads jumps. Only the test build calls it (docs/testing.md).
 */
void sync_engine_set_clock(struct sync_engine *e, const struct cs_clock *clock);

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

/* ---- for other threads (the HTTP API); everything above is loop-thread only ---- */

/*
 * Thread-safe: runs cmd for smtp on the loop and waits for it, at most SYNC_COMMAND_USEC.
 * 0; -ENOENT for REMOVE or RESYNC of a mailbox that is not synced; -EEXIST for ADD of one that
 * is; -EINVAL for an address the configuration would refuse; -ETIMEDOUT; -ESHUTDOWN once the
 * engine is stopping. err says which.
 */
#define SYNC_COMMAND_USEC INT64_C(10000000)
ATTR_NODISCARD int sync_engine_command(struct sync_engine *e, enum sync_cmd cmd, const char *smtp,
                                       struct err *err);

/* Thread-safe: the stats as last published by the loop (every second, and after every
 * command). */
void sync_engine_stats_snapshot(struct sync_engine *e, struct sync_stats *out);

/* One streaming group as the loop last saw it (sync_engine_status). */
struct sync_group_info {
	char key[128]; /* GroupingInformation or EWS URL, cut to fit */
	char anchor[SYNC_SMTP_SIZE];
	size_t members;    /* mailboxes in the group */
	size_t subscribed; /* of them with a subscription */
	bool connected;    /* a GetStreamingEvents is open and its first status arrived */
	unsigned failures; /* consecutive failed connections (0: healthy) */
};

/* One of the last errors the engine logged, newest first in sync_engine_status. */
struct sync_error_info {
	int64_t time_utc;
	char mailbox[SYNC_SMTP_SIZE]; /* empty for a stream or the service account */
	char what[64];                /* the operation or "stream <key>" */
	char message[320];
};

#define SYNC_STATUS_ERRORS 20

/* The engine's view for `calsync status` and GET /v1/status. */
struct sync_status {
	struct sync_stats stats;
	struct sync_group_info *groups; /* owned; free with sync_status_clear */
	size_t n_groups;
	struct sync_error_info errors[SYNC_STATUS_ERRORS];
	size_t n_errors;
};

/* Thread-safe: the groups and the last errors as last published (with the stats). */
void sync_engine_status(struct sync_engine *e, struct sync_status *out);
void sync_status_clear(struct sync_status *st);

/* Loop thread: fn(ctx, id) is called on the loop after each presence change is stored, with
 * its event id (for waking Server-Sent Events clients and the webhook outbox). One hook. */
void sync_engine_set_change_hook(struct sync_engine *e, void (*fn)(void *ctx, int64_t id),
                                 void *ctx);
