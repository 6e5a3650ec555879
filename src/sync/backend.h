/* SPDX-License-Identifier: MIT */
/*
 * backend.h: the seam between the sync engine's core and the server it talks to.
 *
 * The core (engine*.c) keeps every mailbox's state machine, its scheduling and back-off, the
 * debounce and safety refresh, presence, and the store's copy of each mailbox's home,
 * subscription and window. It never names a server's wire types: what it asks of the server
 * goes through a struct sync_backend_ops, and what the server says comes back through the
 * sync_* callbacks at the end of this header, in backend-neutral terms (struct sync_result).
 * EWS (ews-backend.c, ews-stream-groups.c, ews-pull.c, discover.c) is the first backend; a
 * Microsoft Graph one (calendarView/delta reads, change notifications or delta polling) would
 * be a second table of the same operations. docs/sync.md says where to add one.
 *
 * A mailbox's part of the work:
 *
 *   discover      find its home (EWS: Autodiscover's EWS URL and GroupingInformation), for a
 *                 batch of mailboxes at once, on the service account's own budget
 *   subscribe     open its change feed (EWS: Subscribe, streaming or pull; for streaming the
 *                 mailbox joins a group, whose connection feed_opened (re)opens)
 *   read          read its calendar window, in as many requests (pages) as the server needs
 *   poll          ask a pull feed what changed since its cursor (EWS: GetEvents)
 *   unsubscribe   close its change feed
 *
 * Contract. Everything runs on the engine's loop thread. The engine sets mb->action and calls at
 * most one request op per mailbox at a time (discover: one op for the whole batch); an op
 * returns 0 when the request is out, or a negative errno with err (the engine logs it and backs
 * off). A request that is out ends with exactly one call of sync_mb_done() (discover:
 * sync_discovered()), unless the engine cancelled it first (cancel, mb_drop, free). A backend
 * reads the mailbox's fields (struct mb in engine-int.h: smtp, sub_id, watermark, its home
 * ews_url and grouping, the engine's cfg and loop) but changes engine state only through the
 * callbacks below.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"
#include "sync/engine.h"

struct cal_occurrence;
struct err;
struct mb;
struct sync_backend;    /* a backend's state for one engine */
struct sync_backend_mb; /* a backend's state for one mailbox (its call, pages, group) */

/* What an answer means for the mailbox that asked: the class decides the engine's reaction
 * (docs/sync.md "Errors and back-off"). */
enum sync_verdict {
	SYNC_OK = 0,
	SYNC_TRANSIENT, /* retry after an exponential, jittered back-off */
	SYNC_THROTTLED, /* the budget is spent: wait back_off_ms when given, else back off */
	SYNC_FEED_LOST, /* the change feed is gone: open it again, then re-read */
	SYNC_GAP,       /* the feed lives but missed changes: re-read the window */
	SYNC_MAILBOX_PERMANENT, /* only an admin can fix this mailbox: park it, retry slowly */
	SYNC_ACCOUNT_PERMANENT, /* the service account's credentials or rights: retry slowly */
	SYNC_REFUSED,           /* the server refused our request as wrong: retry slowly */
	SYNC_UNKNOWN,           /* not classified: treated as transient */
};

/* What to do besides what the verdict says. */
enum sync_result_flags {
	SYNC_RF_RESYNC = 1u << 0, /* re-read the window as well */
	SYNC_RF_DROP_CURSOR =
		1u << 1,              /* reopen the feed from scratch, not from the stored cursor */
	SYNC_RF_REDISCOVER = 1u << 2, /* the mailbox moved: find its home again */
	SYNC_RF_GONE = 1u << 3,       /* unsubscribe: the feed was already gone (a success) */
};

/* The outcome of one request. What only the backend can act on stays in it (EWS: SHRINK asks
 * for smaller CalendarView pages from then on; FIX_VERSION becomes SYNC_MAILBOX_PERMANENT with
 * the fix in msg). */
struct sync_result {
	enum sync_verdict verdict;
	unsigned flags;      /* enum sync_result_flags */
	int64_t back_off_ms; /* the server's pause for THROTTLED, -1 when it named none */
	char msg[512];       /* for the log, the status's last errors and a park: "code: text" */
};

/* What a request answered besides its verdict; every field is borrowed for the callback. */
struct sync_answer {
	/* subscribe */
	const char *sub_id; /* the feed's id; NULL when the answer had none (a failure) */
	/* subscribe, poll: a pull feed's newest cursor to resume from (EWS: the watermark), or
	 * NULL when the answer gave none */
	const char *watermark;
	/* poll */
	bool changed; /* an event other than a heartbeat: the mailbox changed */
	bool more;    /* more events wait: poll again at once */
	/* read */
	bool more_pages;                  /* another page is needed: the engine calls read_more */
	const struct cal_occurrence *occ; /* the last page: the whole window */
	size_t n_occ;
	const char *window_error; /* the last page: why the window could not be made, or NULL */
};

/* One mailbox's home as discover found it. */
struct sync_home {
	/* The backend that holds the mailbox, when not the one that discovered it: a mailbox that
	 * EWS Autodiscover answers with a cloud address is Graph's ("graph"). The engine moves the
	 * mailbox there, and that backend discovers it again. NULL: the discovering one. */
	const char *backend;
	const char *url;      /* where its requests go; NULL when not found (res says why) */
	const char *grouping; /* the key its feed is grouped by (may be NULL) */
	struct sync_result res;
};

struct sync_backend_ops {
	const char *name; /* "ews", "graph": the store's and the status's name of the backend */

	/* Whether this backend's feeds deliver by themselves (EWS streaming, Graph change
	 * notifications), so that the engine never polls them, or are polled (EWS pull, Graph
	 * delta polling). Fixed for the backend's life. */
	bool (*pushes)(const struct sync_backend *b);
	/* How long after a poll the next one is due (a feed that is polled: EWS pull's
	 * <sync pull_interval>, Graph's <delta interval>). */
	int64_t (*poll_interval_usec)(const struct sync_backend *b);

	/* The backend's state for e (its transport, request buffer, groups). 0 or -errno. */
	int (*open)(struct sync_engine *e, struct sync_backend **out, struct err *err);
	/* After every mailbox was dropped: frees what is left; nothing calls back any more. */
	void (*free)(struct sync_backend *b);

	/* A new mailbox (mb->bmb is set), and one going away: cancels its call, leaves its
	 * group, frees mb->bmb. No callback follows. */
	void (*mb_init)(struct sync_backend *b, struct mb *mb);
	void (*mb_drop)(struct sync_backend *b, struct mb *mb);

	/* The requests (see the contract above). */
	int (*discover)(struct sync_backend *b, struct mb *const *mbs, size_t n, struct err *err);
	int (*subscribe)(struct sync_backend *b, struct mb *mb, struct err *err);
	int (*unsubscribe)(struct sync_backend *b, struct mb *mb, struct err *err);
	int (*read)(struct sync_backend *b, struct mb *mb, int64_t start_utc, int64_t end_utc,
	            struct err *err);
	/* The next page of the read whose answer said more_pages; on error the read is dropped. */
	int (*read_more)(struct sync_backend *b, struct mb *mb, struct err *err);
	int (*poll)(struct sync_backend *b, struct mb *mb, struct err *err);
	/* Cancels the mailbox's request (not a discover batch) and drops a half-read window:
	 * true when one was out. No callback follows. */
	bool (*cancel)(struct sync_backend *b, struct mb *mb);

	/* The change feed's delivery. feed_opened: the subscribe answer is stored (mb->sub_id):
	 * start delivering its events. feed_closed: mb->sub_id was dropped; the feed is opened
	 * again soon. resume: at start, a stored feed (mb->sub_id) is delivered right away.
	 * leave_home: before a rediscovery, detaches the mailbox from where its feed lived; true
	 * when it was attached (the engine then drops the subscription). stop: shutdown closes
	 * every delivery connection. */
	void (*feed_opened)(struct sync_backend *b, struct mb *mb);
	void (*feed_closed)(struct sync_backend *b, struct mb *mb);
	void (*resume)(struct sync_backend *b, struct mb *mb);
	bool (*leave_home)(struct sync_backend *b, struct mb *mb);
	void (*stop)(struct sync_backend *b);

	/* Status: the backend's counters into st (groups, streams_open); its groups as an owned
	 * array (*out, NULL when none) of the returned count, with how many of them wait to
	 * reconnect after errors in *backing_off. */
	void (*stats)(const struct sync_backend *b, struct sync_stats *st);
	size_t (*groups)(const struct sync_backend *b, struct sync_group_info **out,
	                 size_t *backing_off);
};

/* ---- the engine's callbacks, for backends ---------------------------------------------- */

/* The mailbox's request (mb->action) ended: r says how, a what it answered (for SYNC_OK). */
void sync_mb_done(struct mb *mb, const struct sync_result *r, const struct sync_answer *a);

/* A discover batch ended: r is the batch's verdict; when SYNC_OK, homes[i] is mbs[i]'s. */
void sync_discovered(struct sync_engine *e, struct mb *const *mbs, size_t n,
                     const struct sync_result *r, const struct sync_home *homes);

/* The feed says the mailbox changed (a hint, never data): read it after the debounce. */
void sync_mb_changed(struct mb *mb);

/* Changes may have been missed: re-read. now: at once, urgently (the feed said so and lives);
 * else after the debounce with bulk priority (the delivery broke and is being reopened). */
void sync_mb_gap(struct mb *mb, bool now);

/* The mailbox's feed broke outside a request (a stream's per-subscription error): subscribe
 * again and re-read. flags: SYNC_RF_DROP_CURSOR, SYNC_RF_REDISCOVER (gone or moved). */
void sync_mb_feed_lost(struct mb *mb, unsigned flags);

/* What parked mb is gone (the app's credential works again): retry it now, not after the
 * parked retry. No-op for a mailbox that is not parked. */
void sync_mb_unpark(struct mb *mb);

/* A delivery connection was throttled (it backs off itself): counted in the stats. */
void sync_note_throttled(struct sync_engine *e);

/* Keeps an error for `calsync status` (mailbox NULL for a stream or the service account). */
void sync_note_error(struct sync_engine *e, const char *mailbox, const char *what,
                     const char *message);

/* Counts one finished request of op: its result and, unless a stream, its latency. */
void sync_count_op(struct sync_engine *e, enum sync_op op, bool ok, int64_t elapsed_usec);

/* The engine's jittered exponential back-off after failures consecutive failures. */
int64_t sync_backoff_usec(struct sync_engine *e, unsigned failures);

/* Whether the engine is shutting down (only unsubscribes go out). */
bool sync_engine_stopping(const struct sync_engine *e);
