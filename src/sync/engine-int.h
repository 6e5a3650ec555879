/* SPDX-License-Identifier: MIT */
/*
 * engine-int.h: what the pieces of the sync engine's core share (engine.h, docs/sync.md): the
 * engine, a mailbox, and the functions one piece calls in another. Backends (backend.h) read a
 * mailbox's fields from here. Loop thread only, like the engine.
 */
#pragma once

#include "sync/engine.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
/* FNV-1a: uthash's default (Jenkins) falls through between switch labels, which our
 * warnings refuse; keys are short e-mail addresses, for which FNV is as good. */
#define HASH_FUNCTION(keyptr, keylen, hashv) HASH_FNV(keyptr, keylen, hashv)
#include <uthash.h>
#include <uv.h>

#include "base/backoff.h"
#include "base/clock.h"
#include "base/cs-limits.h"
#include "base/err.h"
#include "base/list.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cal/change.h"
#include "cal/occurrence.h"
#include "cal/presence.h"
#include "config/config.h"
#include "store/store.h"
#include "sync/backend.h"
#include "sync/output.h"
#include "sync/rules.h"
#include "sync/sched.h"

#define DAY_SEC INT64_C(86400)

/* Backends one engine can hold: EWS and Microsoft Graph. */
#define SYNC_MAX_BACKENDS 2
#define MSEC              INT64_C(1000)

/* Back-off after errors that need an admin (account-level, our own request refused). */
#define SLOW_RETRY_USEC INT64_C(300000000)

/* The needs are sync/sched.h's: mb->needs is handed to sync_sched_*() as it is. */
enum need {
	NEED_DISCOVER = SYNC_NEED_DISCOVER,
	NEED_SUBSCRIBE = SYNC_NEED_SUBSCRIBE,
	NEED_READ = SYNC_NEED_READ,
	NEED_POLL = SYNC_NEED_POLL,
	NEED_UNSUBSCRIBE = SYNC_NEED_UNSUBSCRIBE,
};

enum action {
	ACT_NONE = 0,
	ACT_DISCOVER,
	ACT_SUBSCRIBE,
	ACT_READ,
	ACT_POLL,
	ACT_UNSUBSCRIBE,
};

enum queue_kind {
	Q_URGENT = 0,
	Q_BULK,
	Q_COUNT,
};

struct mb {
	struct sync_engine *e;
	char *smtp;
	char *key; /* smtp in lower case: the map's key */
	UT_hash_handle hh;
	enum store_mb_state state; /* as stored */
	char *ews_url;             /* its home as discovered; NULL: the configured one */
	char *grouping;            /* the key its feed is grouped by (streaming) */
	unsigned bk;               /* e->bks[bk] serves it now */
	int forced_bk;             /* the configuration's choice of backend, or -1: any */
	bool discover_here; /* a discover answer sent it to bk: bk finds its home, not bks[0] */
	bool rediscovered;  /* a "no such mailbox" was answered with a new discover (not a park) */
	struct sync_backend_mb *bmb; /* the backend's part: its call, pages, group */

	char *sub_id;
	char *watermark; /* pull */
	bool removed;    /* no longer configured: unsubscribe, then free */
	bool hashed;     /* in e->by_smtp (a removed one leaves it at once) */

	unsigned needs;
	enum action action;      /* in flight */
	struct list_node q_link; /* in a ready queue (linked: queued) */
	size_t slot;             /* its index in e->mbs */
	unsigned failures;
	int64_t not_before_usec;
	int64_t read_due_usec;
	int64_t burst_usec; /* first notification of the burst the pending read waits out; 0: none */
	int64_t poll_due_usec;
	int64_t safety_due_usec;
	bool read_urgent;

	/* the window of the read in progress */
	int64_t read_start_utc, read_end_utc;

	bool has_presence;
	struct store_presence presence;
	bool has_window; /* the store holds a window read */

	uv_timer_t work_timer;
	uv_timer_t presence_timer;
	int closing;
};

struct sync_engine {
	uv_loop_t *loop;
	const struct cfg *cfg;
	struct store *store;
	struct sync_output *out;

	/* The servers' side (backend.h): every configured backend and its state. bks[0] finds
	 * the home of a mailbox that no configuration pins (discover_bk). */
	struct eng_backend {
		const struct sync_backend_ops *ops;
		struct sync_backend *b;
	} bks[SYNC_MAX_BACKENDS];

	size_t n_bks;
	struct sync_rules rules;

	struct mb **mbs;
	size_t n_mbs, cap_mbs;
	struct mb *by_smtp; /* uthash map over key */
	int handles_open;   /* the engine's own libuv handles not yet closed */

	struct list_node queue[Q_COUNT]; /* the ready queues, of struct mb by q_link */
	size_t in_flight;
	size_t account_in_flight; /* requests on the service account's own budget */

	struct cs_clock clock; /* calendar time; zeroed: the real clock */

	bool started;
	bool stopping;
	void (*stop_done)(void *ctx);
	void *stop_ctx;
	uv_timer_t stop_timer;
	uv_timer_t day_timer;
	uv_idle_t dispatch_idle;
	bool dispatch_pending;
	bool all_live_logged;

	struct sync_stats stats;
	uint64_t rng;

	/* For other threads: commands in, stats out (sync_engine_command, _stats_snapshot). */
	pthread_mutex_t lock;
	pthread_cond_t cmd_done;
	struct list_node commands; /* queued, oldest first, by struct command's link */
	uv_async_t cmd_async;
	uv_timer_t stats_timer;
	struct sync_stats snapshot;
	struct sync_group_info *snap_groups; /* published with the snapshot */
	size_t n_snap_groups;
	struct sync_error_info errors[SYNC_STATUS_ERRORS]; /* a ring, under lock */
	size_t err_next, n_errors;
	bool shut;             /* commands refused */
	int64_t progress_usec; /* last progress line (0: none yet) */
	size_t progress_live;
	void (*change_hook)(void *ctx, int64_t id);
	void *change_ctx;

	/* The store batch (store_set_write_hook): opened by the first write, committed
	 * SYNC_BATCH_USEC later; the presence lines wait for the commit. */
	uv_timer_t batch_timer;
	struct pending_line *pending;
	size_t n_pending, cap_pending;
};

/* A presence change recorded in the open batch, written out once the batch is committed. */
struct pending_line {
	struct cal_change c; /* its strings point to the copies below */
	char *user, *state, *profile, *forward, *subject, *reason;
};

/* A command from another thread; freed by whichever side lets go last. */
struct command {
	enum sync_cmd cmd;
	char *smtp;
	int rc;
	struct err err;
	bool done;
	int refs;
	struct list_node link; /* in e->commands */
};

/* engine.c */
uint64_t eng_rng_next(struct sync_engine *e);
int64_t eng_jitter(struct sync_engine *e, int64_t d);
int64_t backoff_usec(struct sync_engine *e, unsigned failures);
int64_t eng_now_ms(const struct sync_engine *e);
const char *mb_url(const struct mb *mb);
uint64_t eng_usec_to_ms(int64_t usec);
bool eng_str_eq(const char *a, const char *b);

/* engine-mailbox.c */
void eng_replace_str(char **dst, const char *src);
void mb_set_state(struct mb *mb, enum store_mb_state st, const char *reason);
void mb_drop_subscription(struct mb *mb, bool keep_watermark);
void mb_resubscribe(struct mb *mb, bool drop_watermark);
void mb_cancel_call(struct mb *mb);
void mb_destroy(struct mb *mb);
struct mb *mb_find(struct sync_engine *e, const char *smtp);
void mb_remove(struct mb *mb);
int mb_add(struct sync_engine *e, const char *smtp, struct mb **out_mb, struct err *err);
int sync_mailboxes(struct sync_engine *e, const struct cfg *cfg, struct err *err);

/* engine-result.c */
void mb_failed(struct mb *mb, enum action act, const struct sync_result *v);
void mb_succeeded(struct mb *mb);

/* engine-sched.c */
bool mb_queued(const struct mb *mb);
void mb_kick(struct mb *mb);
void mb_schedule_read(struct mb *mb, int64_t delay_usec, bool urgent);
void eng_dispatch(struct sync_engine *e);

/* engine-presence.c */
void eng_batch_commit(struct sync_engine *e);
void eng_batch_open(void *ctx);
void mb_update_presence(struct mb *mb, const struct cal_occurrence *occ, size_t n, const char *why);
void mb_recompute_stored(struct mb *mb, const char *why);
void eng_arm_day_timer(struct sync_engine *e);

/* engine-command.c */
void eng_count_op(struct sync_engine *e, enum sync_op op, bool ok, int64_t elapsed_usec);
void eng_record_error(struct sync_engine *e, const char *mailbox, const char *what,
                      const char *message);
void eng_publish_stats(struct sync_engine *e);
void eng_on_stats_timer(uv_timer_t *t);
void eng_on_command(uv_async_t *h);
void eng_commands_shut(struct sync_engine *e);

/* The backend serving mb now: its operations and their state. */
static inline const struct sync_backend_ops *mb_ops(const struct mb *mb)
{
	return mb->e->bks[mb->bk].ops;
}

static inline struct sync_backend *mb_bs(const struct mb *mb)
{
	return mb->e->bks[mb->bk].b;
}

/* Whether mb's feed delivers by itself (EWS streaming, Graph notifications) rather than being
 * polled (EWS pull, Graph delta polling). */
bool eng_mb_push(const struct mb *mb);

/* Moves mb to backend bk (an index of e->bks): the old backend lets go of it (its call, group,
 * feed), the subscription is dropped, and the new one takes it. No-op when it is there. */
void mb_rehome(struct mb *mb, unsigned bk);

/* The index of the backend named name in e->bks, or -1 when it is not configured. */
int eng_backend_index(const struct sync_engine *e, const char *name);
