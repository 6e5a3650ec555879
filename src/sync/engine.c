/* SPDX-License-Identifier: MIT */
/*
 * engine.c: the sync engine (engine.h, docs/sync.md).
 *
 * Every mailbox is a small state machine driven by what it still needs: Autodiscover, a
 * subscription, a window read, a poll (pull), an unsubscribe. mb_kick() picks the next need
 * that is due and queues the mailbox; dispatch() starts queued work while fewer than
 * SYNC_MAX_IN_FLIGHT buffered requests are out, event-driven work (reads after a notification,
 * polls) before bulk work (initial sync, safety refreshes). A mailbox has at most one buffered
 * request in flight, so one slow or failing mailbox holds one slot and never stalls the rest;
 * each failure pushes only that mailbox's not_before back (its budget: with impersonation
 * Exchange charges the impersonated mailbox).
 *
 * Streaming mailboxes are kept in groups of at most SYNC_GROUP_MAX that share a grouping key
 * (Autodiscover's GroupingInformation, else the EWS URL). Each group subscribes with its anchor
 * mailbox in X-AnchorMailbox, X-PreferServerAffinity and the X-BackEndOverrideCookie the first
 * answer set, and holds one GetStreamingEvents connection impersonating its anchor.
 *
 * Presence is recomputed from the mailbox's occurrences after every read, and at the next
 * instant it can change by a per-mailbox timer, from the store, with no Exchange call.
 */
#include "sync/engine.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
/* FNV-1a: uthash's default (Jenkins) falls through between switch labels, which our
 * warnings refuse; keys are short e-mail addresses, for which FNV is as good. */
#define HASH_FUNCTION(keyptr, keylen, hashv) HASH_FNV(keyptr, keylen, hashv)
#include <uthash.h>
#include <uv.h>

#include "base/backoff.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/cs-limits.h"
#include "base/err.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cal/occurrence.h"
#include "cal/presence.h"
#include "config/config.h"
#include "ews/ews-errors.h"
#include "ews/ews-request.h"
#include "ews/ews-response.h"
#include "ews/ews-stream.h"
#include "ews/ews-transport.h"
#include "store/store.h"
#include "sync/convert.h"
#include "sync/output.h"
#include "sync/rules.h"
#include "sync/sched.h"

#define DAY_SEC INT64_C(86400)
#define MSEC    INT64_C(1000)

/* A streaming group waits this long after its last membership change before it (re)connects,
 * so that an initial sync of 200 subscriptions costs one connection, not 200. */
#define GROUP_SETTLE_USEC INT64_C(500000)
/* How long a replaced streaming connection may go on delivering what the server wrote to it
 * before the takeover. */
#define STREAM_RETIRE_USEC INT64_C(10000000)
/* Largest request body calsync writes (a GetStreamingEvents with 200 ids is ~60 KB). */
#define REQUEST_MAX (1u << 20)
/* Most CalendarView pages per read: a window with more than 100,000 occurrences is refused. */
#define READ_MAX_PAGES 100u
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

struct group;
struct conn;

struct mb {
	struct sync_engine *e;
	char *smtp;
	char *key; /* smtp in lower case: the map's key */
	UT_hash_handle hh;
	enum store_mb_state state; /* as stored */
	char *ews_url;             /* NULL: the configured one */
	char *grouping;            /* the group key */
	struct group *group;
	size_t group_slot;

	char *sub_id;
	char *watermark; /* pull */
	bool removed;    /* no longer configured: unsubscribe, then free */
	bool hashed;     /* in e->by_smtp (a removed one leaves it at once) */

	unsigned needs;
	enum action action; /* in flight */
	struct ews_call *call;
	struct mb *q_next; /* in a ready queue */
	bool queued;
	unsigned failures;
	int64_t not_before_usec;
	int64_t read_due_usec;
	int64_t burst_usec; /* first notification of the burst the pending read waits out; 0: none */
	int64_t poll_due_usec;
	int64_t safety_due_usec;
	bool read_urgent;

	/* the read in progress: CalendarView pages */
	struct ews_cal_item *page_items;
	size_t n_page_items;
	unsigned pages;
	int64_t read_start_utc, read_end_utc, page_start_utc;
	unsigned page_max; /* MaxEntriesReturned, 0 = none; SHRINK lowers it for good */

	bool has_presence;
	struct store_presence presence;
	bool has_window; /* the store holds a window read */

	uv_timer_t work_timer;
	uv_timer_t presence_timer;
	int closing;
};

struct group {
	struct sync_engine *e;
	char *key;
	char *url;
	char *anchor; /* X-AnchorMailbox of every request of the group: its first member */
	char *cookie;
	struct mb **members;
	size_t n_members;
	struct group *next;

	struct conn *cur;      /* the current GetStreamingEvents connection, or NULL */
	struct conn *retiring; /* earlier ones still draining */
	bool dirty; /* the set of subscribed members changed since the connection started */
	unsigned failures;
	uv_timer_t timer;
	bool closing;
};

/*
 * One GetStreamingEvents connection of a group. When the group's subscriptions change it opens
 * a new connection and the old one retires: it is still read until the server has moved every
 * id to the new one (ErrorNewEventStreamConnectionOpened, then Closed), so no event already
 * written to it is lost, and it is cut after STREAM_RETIRE_USEC at most.
 */
struct conn {
	struct group *g;
	struct ews_call *call;
	struct ews_stream *framer;
	bool connected;  /* a status OK arrived */
	bool got_closed; /* ConnectionStatus Closed arrived */
	bool retiring;
	struct conn *next; /* in g->retiring */
	uv_timer_t timer;  /* retiring: the cut-off */
};

struct sync_engine {
	uv_loop_t *loop;
	const struct cfg *cfg;
	struct store *store;
	struct sync_output *out;
	struct ews_transport *transport;
	struct sync_rules rules;

	struct mb **mbs;
	size_t n_mbs, cap_mbs;
	struct mb *by_smtp; /* uthash map over key */
	struct group *groups;
	struct discover *discovers; /* Autodiscover calls in flight */
	int handles_open;           /* the engine's own libuv handles not yet closed */

	struct mb *q_head[Q_COUNT], *q_tail[Q_COUNT];
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

	struct buf req;
	struct sync_stats stats;
	uint64_t rng;

	/* For other threads: commands in, stats out (sync_engine_command, _stats_snapshot). */
	pthread_mutex_t lock;
	pthread_cond_t cmd_done;
	struct command *commands; /* queued, oldest first */
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
	struct output_change c; /* its strings point to the copies below */
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
	struct command *next;
};

static void mb_kick(struct mb *mb);
static void dispatch(struct sync_engine *e);
static void on_dispatch_idle(uv_idle_t *h);
static void group_schedule(struct group *g, int64_t delay_usec);
static void group_leave(struct mb *mb);
static void mb_update_presence(struct mb *mb, const struct cal_occurrence *occ, size_t n,
                               const char *why);

/* ---- small helpers --------------------------------------------------------------------- */

const double sync_latency_bounds[SYNC_LATENCY_BUCKETS] = {0.01, 0.025, 0.05, 0.1, 0.25,
                                                          0.5,  1,     2.5,  5,   10};

const char *sync_op_name(enum sync_op op)
{
	static const char *const names[SYNC_OP_COUNT] = {
		"GetUserSettings", "Subscribe",   "FindItem",
		"GetEvents",       "Unsubscribe", "GetStreamingEvents",
	};

	return (unsigned)op < SYNC_OP_COUNT ? names[op] : "unknown";
}

/* Counts one finished request of op: its result and, for buffered calls, its latency. */
static void count_op(struct sync_engine *e, enum sync_op op, bool ok, int64_t elapsed_usec)
{
	struct sync_op_stats *o = &e->stats.ops[op];
	double sec = (double)elapsed_usec / 1e6;

	if (ok)
		o->ok++;
	else
		o->error++;
	if (op == SYNC_OP_GET_STREAMING_EVENTS)
		return; /* a stream's life is not a latency */
	for (size_t i = 0; i < SYNC_LATENCY_BUCKETS; i++)
		if (sec <= sync_latency_bounds[i])
			o->latency_le[i]++;
	o->latency_count++;
	o->latency_sum += sec;
}

static uint64_t rng_next(struct sync_engine *e)
{
	return backoff_rng_next(&e->rng);
}

/* A delay between d/2 and d: spreads retries of many mailboxes that failed together. */
static int64_t jitter(struct sync_engine *e, int64_t d)
{
	return backoff_jitter(d, rng_next(e));
}

static int64_t backoff_usec(struct sync_engine *e, unsigned failures)
{
	return backoff_delay(SYNC_RETRY_FIRST_USEC, SYNC_RETRY_MAX_USEC, failures, rng_next(e));
}

static void replace_str(char **dst, const char *src)
{
	free(*dst);
	*dst = src ? xstrdup(src) : NULL;
}

/* Calendar time in milliseconds: the injected clock (sync_engine_set_clock), by default real. */
static int64_t now_ms(const struct sync_engine *e)
{
	return clock_now_ms(&e->clock);
}

int64_t sync_engine_now_utc(const struct sync_engine *e)
{
	int64_t ms = now_ms(e);

	return ms >= 0 ? ms / MSEC : -((-ms + MSEC - 1) / MSEC);
}

static bool is_stream(const struct sync_engine *e)
{
	return e->cfg->notify == CFG_NOTIFY_STREAM;
}

static const char *mb_url(const struct mb *mb)
{
	return mb->ews_url ? mb->ews_url : mb->e->cfg->ews_url;
}

/* Timer delay in libuv's milliseconds, rounded up, never negative. */
static uint64_t usec_to_ms(int64_t usec)
{
	return usec <= 0 ? 0 : (uint64_t)((usec + 999) / 1000);
}

/* Keeps the last SYNC_STATUS_ERRORS errors for `calsync status` (the log has them all). */
static void record_error(struct sync_engine *e, const char *mailbox, const char *what,
                         const char *message)
{
	struct sync_error_info *x;

	pthread_mutex_lock(&e->lock);
	x = &e->errors[e->err_next];
	e->err_next = (e->err_next + 1) % SYNC_STATUS_ERRORS;
	if (e->n_errors < SYNC_STATUS_ERRORS)
		e->n_errors++;
	x->time_utc = sync_engine_now_utc(e);
	snprintf(x->mailbox, sizeof(x->mailbox), "%s", mailbox ? mailbox : "");
	snprintf(x->what, sizeof(x->what), "%s", what);
	snprintf(x->message, sizeof(x->message), "%s", message);
	pthread_mutex_unlock(&e->lock);
}

/* ---- state counts and store state -------------------------------------------------- */

static size_t *state_count(struct sync_engine *e, enum store_mb_state st)
{
	switch (st) {
	case STORE_MB_UNRESOLVED:
		return &e->stats.unresolved;
	case STORE_MB_SYNCING:
		return &e->stats.syncing;
	case STORE_MB_LIVE:
		return &e->stats.live;
	case STORE_MB_PARKED:
		return &e->stats.parked;
	}
	return &e->stats.unresolved;
}

static void mb_set_state(struct mb *mb, enum store_mb_state st, const char *reason)
{
	struct sync_engine *e = mb->e;
	struct err err = {0};

	if (mb->state == st && st != STORE_MB_PARKED)
		return;
	if (store_mailbox_set_state(e->store, mb->smtp, st, reason, &err) < 0)
		log_err("store: %s: %s", mb->smtp, err.msg);
	(*state_count(e, mb->state))--;
	(*state_count(e, st))++;
	/* Parking needs an admin; the rest is routine at 50,000 mailboxes (progress below). */
	if (st == STORE_MB_PARKED)
		log_warn("%s: parked: %s", mb->smtp, reason);
	else if (mb->state != st)
		log_debug("%s: %s", mb->smtp, store_mb_state_name(st));
	mb->state = st;
	if (st == STORE_MB_LIVE && e->stats.live == e->stats.mailboxes) {
		if (!e->all_live_logged)
			log_info("all %zu mailboxes live", e->stats.mailboxes);
		e->all_live_logged = true;
	} else if (st != STORE_MB_LIVE) {
		e->all_live_logged = false;
	}
}

/* ---- ready queues and dispatch ----------------------------------------------------- */

static void enqueue(struct mb *mb, enum queue_kind q)
{
	struct sync_engine *e = mb->e;

	if (mb->queued)
		return;
	mb->queued = true;
	mb->q_next = NULL;
	if (e->q_tail[q])
		e->q_tail[q]->q_next = mb;
	else
		e->q_head[q] = mb;
	e->q_tail[q] = mb;
	if (!e->dispatch_pending) {
		e->dispatch_pending = true;
		uv_idle_start(&e->dispatch_idle, on_dispatch_idle);
	}
}

static struct mb *dequeue(struct sync_engine *e)
{
	for (int q = 0; q < Q_COUNT; q++) {
		struct mb *mb = e->q_head[q];

		if (mb == NULL)
			continue;
		e->q_head[q] = mb->q_next;
		if (e->q_head[q] == NULL)
			e->q_tail[q] = NULL;
		mb->q_next = NULL;
		mb->queued = false;
		return mb;
	}
	return NULL;
}

/* ---- per-mailbox scheduling ---------------------------------------------------------- */

static void on_work_timer(uv_timer_t *t)
{
	mb_kick(t->data);
}

static void arm_work_timer(struct mb *mb, int64_t due_usec)
{
	int64_t now = clock_now_usec();

	uv_timer_start(&mb->work_timer, on_work_timer, usec_to_ms(due_usec - now), 0);
}

/* The mailbox as sync/sched.c's pure decisions see it. */
static void mb_sched_in(const struct mb *mb, struct sync_sched_in *in)
{
	*in = (struct sync_sched_in){
		.needs = mb->needs,
		.started = mb->e->started,
		.stopping = mb->e->stopping || mb->removed,
		.not_before_usec = mb->not_before_usec,
		.read_due_usec = mb->read_due_usec,
		.read_urgent = mb->read_urgent,
		.poll_due_usec = mb->poll_due_usec,
		.safety_due_usec = mb->safety_due_usec,
	};
}

/*
 * Does what sync_sched_next decides: queues the mailbox for its most important due need, or
 * arms its timer for the first need that becomes due. Safe to call any time.
 */
static void mb_kick(struct mb *mb)
{
	int64_t now = clock_now_usec();
	struct sync_sched_in in;
	struct sync_sched_out out;

	if (mb->action != ACT_NONE || mb->queued || mb->closing)
		return;
	uv_timer_stop(&mb->work_timer);
	mb_sched_in(mb, &in);
	sync_sched_next(&in, now, &out);
	if (out.safety_read) {
		mb->needs |= NEED_READ;
		mb->read_due_usec = now;
		mb->read_urgent = false;
	}
	if (out.ready)
		enqueue(mb, out.urgent ? Q_URGENT : Q_BULK);
	else if (out.due_usec != INT64_MAX)
		arm_work_timer(mb, out.due_usec);
}

/*
 * A notification said the mailbox changed: read it once no notification came for the debounce,
 * but at most SYNC_DEBOUNCE_CAP after the first one of the burst. So a burst (Outlook saving a
 * meeting sends several events within a second) costs one read, and a single change is read
 * after the debounce alone. A read already due earlier for another reason stays due.
 */
static void mb_schedule_read(struct mb *mb, int64_t delay_usec, bool urgent)
{
	int64_t now = clock_now_usec();
	int64_t due = now + delay_usec;

	if (!(mb->needs & NEED_READ)) {
		mb->read_due_usec = due;
		mb->burst_usec = urgent ? now : 0;
	} else if (urgent && mb->burst_usec != 0 && mb->read_due_usec > now) {
		int64_t cap = mb->burst_usec + SYNC_DEBOUNCE_CAP(delay_usec);

		mb->read_due_usec = due < cap ? due : cap;
		if (mb->read_due_usec < now)
			mb->read_due_usec = now;
	} else if (due < mb->read_due_usec) {
		mb->read_due_usec = due;
	}
	mb->needs |= NEED_READ;
	mb->read_urgent = mb->read_urgent || urgent;
	if (mb->action == ACT_NONE && !mb->queued)
		mb_kick(mb);
}

/* ---- subscriptions ------------------------------------------------------------------- */

static void mb_drop_subscription(struct mb *mb, bool keep_watermark)
{
	struct sync_engine *e = mb->e;
	struct err err = {0};

	free(mb->sub_id);
	mb->sub_id = NULL;
	if (!keep_watermark) {
		free(mb->watermark);
		mb->watermark = NULL;
	}
	/* A pull row with a watermark stays: its id is dead, but a restart resumes from it. */
	if ((is_stream(e) || mb->watermark == NULL) &&
	    store_subscription_delete(e->store, mb->smtp, &err) < 0)
		log_err("store: %s: %s", mb->smtp, err.msg);
	if (mb->group)
		mb->group->dirty = true;
}

/* The subscription is gone: subscribe again (resuming from the watermark unless told not to)
 * and re-read the window, because events may have been lost in between. */
static void mb_resubscribe(struct mb *mb, bool drop_watermark)
{
	mb_drop_subscription(mb, !drop_watermark);
	mb->needs &= ~NEED_POLL;
	mb->needs |= NEED_SUBSCRIBE | NEED_READ;
	mb->read_due_usec = 0;
	if (mb->state == STORE_MB_LIVE)
		mb_set_state(mb, STORE_MB_SYNCING, NULL);
	if (mb->group)
		group_schedule(mb->group, GROUP_SETTLE_USEC);
}

/* ---- groups ------------------------------------------------------------------------------ */

static void group_free(struct group *g);

static void on_group_closed(uv_handle_t *h)
{
	struct group *g = h->data;

	free(g->key);
	free(g->url);
	free(g->anchor);
	free(g->cookie);
	free(g->members);
	free(g);
}

static void group_disconnect(struct group *g);

static void group_free(struct group *g)
{
	group_disconnect(g);
	g->closing = true;
	uv_close((uv_handle_t *)&g->timer, on_group_closed);
}

static void group_unlink(struct group *g)
{
	struct sync_engine *e = g->e;

	for (struct group **pp = &e->groups; *pp; pp = &(*pp)->next) {
		if (*pp == g) {
			*pp = g->next;
			e->stats.groups--;
			return;
		}
	}
}

static void on_conn_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Cancels the connection's call (unless it finished) and frees it. */
static void conn_free(struct conn *c)
{
	struct group *g = c->g;

	if (c->call) {
		ews_transport_cancel(c->call);
		c->call = NULL;
		g->e->stats.streams_open--;
	}
	ews_stream_free(c->framer);
	c->framer = NULL;
	if (c->retiring) {
		for (struct conn **pp = &g->retiring; *pp; pp = &(*pp)->next) {
			if (*pp == c) {
				*pp = c->next;
				break;
			}
		}
	} else if (g->cur == c) {
		g->cur = NULL;
	}
	uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_retire_timer(uv_timer_t *t)
{
	struct conn *c = t->data;

	log_debug("stream %s: cutting a replaced connection", c->g->key);
	conn_free(c);
}

/* The current connection makes way for a new one but is read on until it ends. */
static void group_retire(struct group *g)
{
	struct conn *c = g->cur;

	if (c == NULL)
		return;
	g->cur = NULL;
	c->retiring = true;
	c->next = g->retiring;
	g->retiring = c;
	uv_timer_start(&c->timer, on_retire_timer, usec_to_ms(STREAM_RETIRE_USEC), 0);
}

/* Closes every connection of the group at once. */
static void group_disconnect(struct group *g)
{
	if (g->cur)
		conn_free(g->cur);
	while (g->retiring)
		conn_free(g->retiring);
}

static void group_connect(struct group *g);

static void on_group_timer(uv_timer_t *t)
{
	group_connect(t->data);
}

static void group_schedule(struct group *g, int64_t delay_usec)
{
	if (g->closing || g->e->stopping)
		return;
	uv_timer_start(&g->timer, on_group_timer, usec_to_ms(delay_usec), 0);
}

static void group_join(struct sync_engine *e, struct mb *mb)
{
	struct group *g;
	const char *key = mb->grouping ? mb->grouping : mb_url(mb);

	for (g = e->groups; g; g = g->next)
		if (strcmp(g->key, key) == 0 && g->n_members < SYNC_GROUP_MAX)
			break;
	if (g == NULL) {
		g = xcalloc(1, sizeof(*g));
		g->e = e;
		g->key = xstrdup(key);
		g->url = xstrdup(mb_url(mb));
		g->anchor = xstrdup(mb->smtp);
		g->members = xcalloc(SYNC_GROUP_MAX, sizeof(*g->members));
		uv_timer_init(e->loop, &g->timer);
		g->timer.data = g;
		g->next = e->groups;
		e->groups = g;
		e->stats.groups++;
	}
	mb->group = g;
	mb->group_slot = g->n_members;
	g->members[g->n_members++] = mb;
}

static void group_leave(struct mb *mb)
{
	struct group *g = mb->group;

	if (g == NULL)
		return;
	g->members[mb->group_slot] = g->members[--g->n_members];
	g->members[mb->group_slot]->group_slot = mb->group_slot;
	mb->group = NULL;
	if (g->n_members == 0) {
		group_disconnect(g);
		group_unlink(g);
		group_free(g);
		return;
	}
	/* The impersonated member may have been this one. */
	g->dirty = true;
	group_schedule(g, GROUP_SETTLE_USEC);
}

static struct mb *group_find_sub(struct group *g, const char *sub_id)
{
	if (sub_id == NULL)
		return NULL;
	for (size_t i = 0; i < g->n_members; i++)
		if (g->members[i]->sub_id && strcmp(g->members[i]->sub_id, sub_id) == 0)
			return g->members[i];
	return NULL;
}

/* The call options every request of a streaming mailbox carries: its group's anchor and
 * affinity cookie, so that Subscribe, GetStreamingEvents and Unsubscribe reach the backend that
 * holds the subscriptions. */
static void group_call_opts(const struct group *g, struct ews_call_opts *o)
{
	o->url = g->url;
	o->anchor_mailbox = g->anchor;
	o->prefer_affinity = true;
	o->backend_cookie = g->cookie;
}

static void group_fail(struct group *g, bool reread, const char *why)
{
	struct sync_engine *e = g->e;
	int64_t delay;

	g->failures++;
	delay = g->failures == 1 ? 0 : backoff_usec(e, g->failures - 1);
	{
		char what[64];

		snprintf(what, sizeof(what), "stream %.56s", g->key);
		record_error(e, NULL, what, why);
	}
	log_warn("stream %s (anchor %s): %s; reconnecting in %.1f s", g->key, g->anchor, why,
	         (double)delay / 1e6);
	if (reread)
		for (size_t i = 0; i < g->n_members; i++)
			if (g->members[i]->sub_id)
				mb_schedule_read(g->members[i], e->cfg->debounce_usec, false);
	group_schedule(g, delay);
}

/* Per-subscription errors of a stream message. */
static void group_sub_errors(struct group *g, const struct ews_message *m)
{
	const struct ews_error_info *info =
		m->code ? ews_error_lookup(m->code, strlen(m->code)) : NULL;
	enum ews_error_class cls = info ? info->cls : EWS_ERR_UNKNOWN;
	unsigned flags = info ? info->flags : 0;

	for (size_t i = 0; i < m->n_error_subscription_ids; i++) {
		struct mb *mb = group_find_sub(g, m->error_subscription_ids[i]);

		if (mb == NULL)
			continue;
		if (flags & EWS_ERRF_KEEP_SUBSCRIPTION) {
			/* ErrorMissedNotificationEvents: the subscription lives; events were lost.
			 * ErrorNewEventStreamConnectionOpened: another connection took it over. */
			if (cls != EWS_ERR_NONE)
				mb_schedule_read(mb, 0, true);
			continue;
		}
		log_info("%s: stream: %s for its subscription", mb->smtp, m->code ? m->code : "?");
		mb_resubscribe(mb, flags & EWS_ERRF_DROP_WATERMARK);
		/* Leaving the group happens when Autodiscover starts, never inside the stream's
		 * own callback (that could free the group and its framer under us). */
		if ((flags & EWS_ERRF_REDISCOVER) && mb->e->cfg->ews_url == NULL)
			mb->needs |= NEED_DISCOVER;
		mb_kick(mb);
	}
}

static int on_stream_envelope(void *ctx, const char *xml, size_t len, size_t offset)
{
	struct conn *c = ctx;
	struct group *g = c->g;
	struct sync_engine *e = g->e;
	struct ews_response resp = {0};
	struct err err = {0};

	if (ews_response_parse(xml, len, &resp, &err) < 0) {
		log_warn("stream %s: envelope at byte %zu: %s", g->key, offset, err.msg);
		return 0; /* one bad envelope: the next re-read covers it */
	}
	for (size_t i = 0; i < resp.n_messages; i++) {
		const struct ews_message *m = &resp.messages[i];

		if (m->cls != EWS_CLASS_SUCCESS) {
			group_sub_errors(g, m);
		} else if (!c->connected) {
			c->connected = true;
			if (!c->retiring)
				g->failures = 0;
		}
		for (size_t n = 0; n < m->n_notifications; n++) {
			const struct ews_notification *no = &m->notifications[n];
			struct mb *mb = group_find_sub(g, no->subscription_id);
			bool changed = false;

			for (size_t k = 0; k < no->n_events; k++)
				changed = changed || no->events[k].type != EWS_EVENT_STATUS;
			if (mb && changed)
				mb_schedule_read(mb, e->cfg->debounce_usec, true);
		}
		if (m->connection_status == EWS_CONN_CLOSED)
			c->got_closed = true;
	}
	ews_response_clear(&resp);
	return 0;
}

static int on_stream_chunk(void *ctx, const char *data, size_t len, struct err *err)
{
	struct conn *c = ctx;

	return ews_stream_feed(c->framer, data, len, err);
}

static void on_stream_done(void *ctx, struct ews_call *call, const struct ews_result *r)
{
	struct conn *c = ctx;
	struct group *g = c->g;
	struct sync_engine *e = g->e;
	bool was_connected = c->connected;
	bool closed = c->got_closed;
	bool retiring = c->retiring;
	struct err err = {0};
	char why[sizeof(r->err.msg) + 64];

	c->call = NULL;
	e->stats.streams_open--;
	if (r->rc == 0 && r->http_status == 200 && ews_stream_finish(c->framer, &err) < 0)
		closed = false;
	count_op(e, SYNC_OP_GET_STREAMING_EVENTS, r->rc == 0 && r->http_status == 200 && closed,
	         r->elapsed_usec);
	conn_free(c);
	if (e->stopping || retiring)
		return;
	if (r->rc == 0 && r->http_status == 200 && closed) {
		/* Closed: the connection's lifetime ended, or every id was refused (handled per id).
		 * Reconnect at once; nothing was lost. */
		g->failures = 0;
		group_schedule(g, 0);
		return;
	}
	if (r->rc == 0 && r->http_status != 200) {
		struct ews_response resp = {0};
		const char *code = NULL;
		int64_t back_off_ms = -1;

		if (ews_response_parse(r->body, r->body_len, &resp, &err) == 0 && resp.is_fault) {
			code = resp.fault.response_code;
			back_off_ms = resp.fault.mx.back_off_ms;
		}
		snprintf(why, sizeof(why), "HTTP %ld %s", r->http_status, code ? code : "");
		if (code && ews_error_class_of(code, strlen(code)) == EWS_ERR_THROTTLED) {
			e->stats.throttled++;
			g->failures++;
			group_schedule(g, back_off_ms > 0 ? back_off_ms * 1000
			                                  : backoff_usec(e, g->failures));
			log_warn("stream %s: %s; backing off", g->key, why);
			ews_response_clear(&resp);
			return;
		}
		ews_response_clear(&resp);
		group_fail(g, was_connected, why);
		return;
	}
	if (r->rc == 0)
		snprintf(why, sizeof(why), "ended without Closed");
	else
		snprintf(why, sizeof(why), "%s", r->err.msg);
	/* Dropped, cut or silent: events in flight may be lost, so re-read every member once the
	 * stream is back. */
	group_fail(g, was_connected, why);
}

static void group_connect(struct group *g)
{
	struct sync_engine *e = g->e;
	const char *ids[SYNC_GROUP_MAX];
	size_t n = 0;
	struct ews_header h = {0};
	struct ews_call_opts o = {0};
	struct err err = {0};
	const char *impersonate = NULL;
	struct conn *c;
	int rc;

	if (e->stopping || g->closing)
		return;

	for (size_t i = 0; i < g->n_members; i++) {
		if (g->members[i]->sub_id == NULL)
			continue;
		/* The connection is charged to the impersonated mailbox's budget
		 * (HangingConnectionLimit): one subscribed member of this group, so every group
		 * uses a different budget. A parked member (impersonation denied) has none. */
		if (impersonate == NULL)
			impersonate = g->members[i]->smtp;
		ids[n++] = g->members[i]->sub_id;
	}
	if (g->cur && !g->dirty)
		return;
	group_retire(g);
	g->dirty = false;
	if (n == 0)
		return;
	h.version = e->cfg->server_version;
	h.impersonate = impersonate;
	h.id_type = e->cfg->id_type;
	rc = ews_req_get_streaming_events(
		&h, ids, n, (unsigned)(e->cfg->stream_timeout_usec / (60 * USEC_PER_SEC)), &e->req,
		&err);
	if (rc < 0) {
		log_err("stream %s: cannot write GetStreamingEvents: %s", g->key, err.msg);
		return;
	}
	group_call_opts(g, &o);
	o.chunk_fn = on_stream_chunk;
	o.timeout_usec = e->cfg->stream_timeout_usec + 90 * USEC_PER_SEC;
	o.idle_timeout_usec = e->cfg->stream_watchdog_usec;
	c = xcalloc(1, sizeof(*c));
	c->g = g;
	uv_timer_init(e->loop, &c->timer);
	c->timer.data = c;
	c->framer = ews_stream_new(EWS_MAX_ENVELOPE, on_stream_envelope, c);
	g->cur = c;
	rc = ews_transport_post(e->transport, &o, e->req.data, e->req.len, on_stream_done, c,
	                        &c->call, &err);
	if (rc < 0) {
		c->call = NULL;
		conn_free(c);
		log_err("stream %s: %s", g->key, err.msg);
		g->failures++;
		group_schedule(g, backoff_usec(e, g->failures));
		return;
	}
	e->stats.streams_open++;
	log_debug("stream %s: connecting %zu subscriptions as %s", g->key, n, h.impersonate);
}

/* ---- results --------------------------------------------------------------------------- */

/* What one answer means for the mailbox that sent it. */
struct verdict {
	enum ews_error_class cls;
	unsigned flags;
	int64_t back_off_ms;
	char code[96];
	char msg[320];
};

/*
 * Classifies a finished buffered call: a transport error, a SOAP fault, or the first response
 * message. On success (cls NONE) *resp holds the parsed answer.
 */
static void classify(const struct ews_result *r, struct ews_response *resp, struct verdict *v)
{
	struct err err = {0};
	const char *code = NULL, *text = NULL, *inner = NULL;
	const struct ews_message_xml *mx = NULL;

	memset(v, 0, sizeof(*v));
	v->back_off_ms = -1;
	if (r->rc < 0) {
		v->cls = r->rc == -EACCES ? EWS_ERR_ACCOUNT_PERMANENT : EWS_ERR_TRANSIENT;
		snprintf(v->code, sizeof(v->code), "%s",
		         r->rc == -EACCES ? "access-denied" : "transport");
		snprintf(v->msg, sizeof(v->msg), "%s", r->err.msg);
		return;
	}
	if (ews_response_parse(r->body, r->body_len, resp, &err) < 0) {
		v->cls = EWS_ERR_TRANSIENT;
		snprintf(v->code, sizeof(v->code), "bad-response");
		snprintf(v->msg, sizeof(v->msg), "HTTP %ld: %s", r->http_status, err.msg);
		return;
	}
	if (resp->is_fault) {
		code = resp->fault.response_code;
		text = resp->fault.message ? resp->fault.message : resp->fault.faultstring;
		mx = &resp->fault.mx;
	} else if (resp->n_messages > 0) {
		code = resp->messages[0].code;
		text = resp->messages[0].text;
		mx = &resp->messages[0].mx;
		if (resp->messages[0].cls != EWS_CLASS_ERROR && code == NULL)
			code = "NoError";
	} else if (resp->operation && strcmp(resp->operation, "GetUserSettings") == 0) {
		code = "NoError";
	}
	if (code == NULL) {
		v->cls = EWS_ERR_TRANSIENT;
		snprintf(v->code, sizeof(v->code), "bad-response");
		snprintf(v->msg, sizeof(v->msg), "HTTP %ld without a response code",
		         r->http_status);
		return;
	}
	if (mx) {
		v->back_off_ms = mx->back_off_ms;
		inner = mx->inner_code;
	}
	{
		const struct ews_error_info *info = ews_error_lookup(code, strlen(code));

		if (info && (info->flags & EWS_ERRF_USE_INNER) && inner) {
			const struct ews_error_info *ii = ews_error_lookup(inner, strlen(inner));

			if (ii) {
				info = ii;
				code = inner;
			}
		}
		v->cls = info ? info->cls : EWS_ERR_UNKNOWN;
		v->flags = info ? info->flags : 0;
	}
	if (resp->n_messages > 0 && !resp->is_fault && resp->messages[0].cls == EWS_CLASS_WARNING)
		v->cls = EWS_ERR_NONE;
	snprintf(v->code, sizeof(v->code), "%s", code);
	snprintf(v->msg, sizeof(v->msg), "%s%s%s", code, text ? ": " : "", text ? text : "");
}

/* Applies a failed verdict to the mailbox: what the error table prescribes. */
static void mb_failed(struct mb *mb, enum action act, const struct verdict *v)
{
	struct sync_engine *e = mb->e;
	int64_t now = clock_now_usec();
	static const char *const act_names[] = {"-",    "Autodiscover", "Subscribe",
	                                        "read", "GetEvents",    "Unsubscribe"};
	char why[sizeof(v->msg) + 192];
	enum ews_error_class cls = v->cls;

	snprintf(why, sizeof(why), "%s", v->msg);
	if (v->flags & EWS_ERRF_FIX_VERSION) {
		/* Only the configuration fixes it: park (a reload retries parked mailboxes now). */
		snprintf(
			why, sizeof(why),
			"%s (RequestServerVersion %s refused: set <ews version=\"...\"> to one the "
			"server accepts, see calsync check, then reload)",
			v->msg, e->cfg->server_version);
		cls = EWS_ERR_MAILBOX_PERMANENT;
	}
	mb->failures++;
	if (!(v->cls == EWS_ERR_SUBSCRIPTION_LOST && (v->flags & EWS_ERRF_KEEP_SUBSCRIPTION)))
		record_error(e, mb->smtp, act_names[act], why);
	switch (cls) {
	case EWS_ERR_THROTTLED:
		e->stats.throttled++;
		mb->not_before_usec = now + (v->back_off_ms > 0 ? v->back_off_ms * 1000
		                                                : backoff_usec(e, mb->failures));
		log_warn("%s: %s: %s; backing off", mb->smtp, act_names[act], v->msg);
		break;
	case EWS_ERR_SUBSCRIPTION_LOST:
		if (v->flags & EWS_ERRF_KEEP_SUBSCRIPTION) {
			mb_schedule_read(mb, 0, true);
			mb->failures = 0;
		} else {
			log_info("%s: %s: %s; subscribing again", mb->smtp, act_names[act], v->msg);
			mb_resubscribe(mb, v->flags & EWS_ERRF_DROP_WATERMARK);
			mb->failures = 0;
		}
		break;
	case EWS_ERR_MAILBOX_PERMANENT:
		mb_set_state(mb, STORE_MB_PARKED, why);
		mb->not_before_usec = now + jitter(e, SYNC_PARKED_RETRY_USEC);
		mb->needs |= NEED_SUBSCRIBE | NEED_READ;
		mb->needs &= ~NEED_POLL;
		break;
	case EWS_ERR_ACCOUNT_PERMANENT:
	case EWS_ERR_CLIENT_BUG:
		log_err("%s: %s: %s (%s); retrying in %d s", mb->smtp, act_names[act], v->msg,
		        v->cls == EWS_ERR_CLIENT_BUG ? "calsync's request was refused"
		                                     : "the service account's configuration",
		        (int)(SLOW_RETRY_USEC / USEC_PER_SEC));
		mb->not_before_usec = now + jitter(e, SLOW_RETRY_USEC);
		break;
	default:
		mb->not_before_usec = now + backoff_usec(e, mb->failures);
		log_warn("%s: %s: %s; retry %u", mb->smtp, act_names[act], v->msg, mb->failures);
		break;
	}
	if ((v->flags & EWS_ERRF_REDISCOVER) && e->cfg->ews_url == NULL)
		mb->needs |= NEED_DISCOVER;
	if ((v->flags & EWS_ERRF_RESYNC) && v->cls != EWS_ERR_MAILBOX_PERMANENT)
		mb->needs |= NEED_READ;
	if ((v->flags & EWS_ERRF_SHRINK) && act == ACT_READ) {
		/* The answer was too big (EWSFindCountLimit, a timeout): smaller pages from now. */
		mb->page_max = ews_error_shrink_entries(mb->page_max);
		log_info("%s: read: %s; CalendarView pages of %u from now", mb->smtp, v->code,
		         mb->page_max);
	}
}

static void mb_succeeded(struct mb *mb)
{
	mb->failures = 0;
	mb->not_before_usec = 0;
	if (mb->state == STORE_MB_PARKED)
		mb_set_state(mb, mb->has_window ? STORE_MB_SYNCING : STORE_MB_UNRESOLVED, NULL);
}

/* ---- the actions --------------------------------------------------------------------- */

static void mb_free_page(struct mb *mb)
{
	for (size_t i = 0; i < mb->n_page_items; i++)
		ews_cal_item_clear(&mb->page_items[i]);
	free(mb->page_items);
	mb->page_items = NULL;
	mb->n_page_items = 0;
	mb->pages = 0;
}

static void mb_destroy(struct mb *mb);

/* Cancels the mailbox's buffered call, if one is out, and drops a half-read window. An
 * Autodiscover call is not the mailbox's own (it serves a batch) and has no mb->call. */
static void mb_cancel_call(struct mb *mb)
{
	if (mb->call == NULL)
		return;
	ews_transport_cancel(mb->call);
	mb->call = NULL;
	mb->action = ACT_NONE;
	mb->e->in_flight--;
	mb_free_page(mb);
}

static void on_call_done(void *ctx, struct ews_call *call, const struct ews_result *r);

static int post(struct mb *mb, const struct ews_call_opts *o, struct err *err)
{
	struct sync_engine *e = mb->e;
	int rc = ews_transport_post(e->transport, o, e->req.data, e->req.len, on_call_done, mb,
	                            &mb->call, err);

	if (rc == 0) {
		e->in_flight++;
		e->stats.requests++;
	}
	return rc;
}

static void mb_header(const struct mb *mb, struct ews_header *h, const char *impersonate)
{
	memset(h, 0, sizeof(*h));
	h->version = mb->e->cfg->server_version;
	h->impersonate = impersonate;
	h->id_type = mb->e->cfg->id_type;
	h->tz_utc = true;
}

static void mb_opts(const struct mb *mb, struct ews_call_opts *o)
{
	memset(o, 0, sizeof(*o));
	if (mb->group && mb->group->n_members > 0) {
		group_call_opts(mb->group, o);
	} else {
		o->url = mb_url(mb);
		o->anchor_mailbox = mb->smtp;
	}
}

/* The window of a read started now: from midnight UTC past days ago to now + ahead days. */
static void window_now(const struct sync_engine *e, int64_t *start, int64_t *end)
{
	int64_t now = sync_engine_now_utc(e);
	int64_t midnight = now - ((now % DAY_SEC) + DAY_SEC) % DAY_SEC;

	*start = midnight - e->cfg->window_past_days * DAY_SEC;
	*end = now + e->cfg->window_ahead_days * DAY_SEC;
}

static int start_read_page(struct mb *mb, struct err *err)
{
	struct ews_header h;
	struct ews_call_opts o;
	struct ews_find_calendar fc = {
		.start_utc = mb->page_start_utc,
		.end_utc = mb->read_end_utc,
		.max_entries = mb->page_max,
	};
	int rc;

	mb_header(mb, &h, mb->smtp);
	rc = ews_req_find_calendar(&h, &fc, &mb->e->req, err);
	if (rc < 0)
		return rc;
	mb_opts(mb, &o);
	return post(mb, &o, err);
}

static int start_discover(struct sync_engine *e, struct mb *first, struct err *err);

/* Starts the mailbox's most important need. 0, or an error that is logged and retried. */
static int mb_start(struct mb *mb)
{
	struct sync_engine *e = mb->e;
	struct ews_header h;
	struct ews_call_opts o;
	struct err err = {0};
	struct sync_sched_in in;
	enum sync_step step;
	int rc = 0;

	mb_sched_in(mb, &in);
	step = sync_sched_start(&in);
	if (step == SYNC_STEP_UNSUBSCRIBE) {
		mb->action = ACT_UNSUBSCRIBE;
		if (mb->sub_id == NULL) {
			mb->action = ACT_NONE;
			mb->needs &= ~NEED_UNSUBSCRIBE;
			return 0;
		}
		mb_header(mb, &h, mb->smtp);
		h.tz_utc = false;
		rc = ews_req_unsubscribe(&h, mb->sub_id, &e->req, &err);
		if (rc == 0) {
			mb_opts(mb, &o);
			rc = post(mb, &o, &err);
		}
	} else if (step == SYNC_STEP_NONE) {
		return 0;
	} else if (step == SYNC_STEP_DISCOVER) {
		mb->action = ACT_DISCOVER;
		if (mb->group) {
			mb_drop_subscription(mb, true);
			group_leave(mb);
		}
		rc = start_discover(e, mb, &err);
	} else if (step == SYNC_STEP_SUBSCRIBE) {
		struct ews_subscribe s = {.streaming = is_stream(e)};
		int64_t minutes = 3 * e->cfg->pull_interval_usec / (60 * USEC_PER_SEC);

		mb->action = ACT_SUBSCRIBE;
		if (is_stream(e) && mb->group == NULL)
			group_join(e, mb);
		if (!is_stream(e)) {
			s.watermark = mb->watermark;
			s.timeout_min = (unsigned)(minutes < 10     ? 10
			                           : minutes > 1440 ? 1440
			                                            : minutes);
		}
		mb_header(mb, &h, mb->smtp);
		h.tz_utc = false;
		rc = ews_req_subscribe(&h, &s, &e->req, &err);
		if (rc == 0) {
			mb_opts(mb, &o);
			rc = post(mb, &o, &err);
			if (rc == 0)
				e->stats.subscribes++;
		}
		if (mb->state == STORE_MB_UNRESOLVED)
			mb_set_state(mb, STORE_MB_SYNCING, NULL);
	} else if (step == SYNC_STEP_READ) {
		mb->action = ACT_READ;
		mb->needs &= ~NEED_READ;
		mb->read_urgent = false;
		mb_free_page(mb);
		window_now(e, &mb->read_start_utc, &mb->read_end_utc);
		mb->page_start_utc = mb->read_start_utc;
		rc = start_read_page(mb, &err);
	} else if (step == SYNC_STEP_POLL) {
		mb->action = ACT_POLL;
		mb_header(mb, &h, mb->smtp);
		h.tz_utc = false;
		rc = ews_req_get_events(&h, mb->sub_id, mb->watermark, &e->req, &err);
		if (rc == 0) {
			mb_opts(mb, &o);
			rc = post(mb, &o, &err);
		}
	}
	if (rc < 0) {
		log_err("%s: cannot send: %s", mb->smtp, err.msg);
		mb->action = ACT_NONE;
		mb->call = NULL;
		mb->failures++;
		mb->not_before_usec = clock_now_usec() + backoff_usec(e, mb->failures);
	}
	return rc;
}

static void finish_unsubscribe(struct mb *mb, const struct verdict *v)
{
	struct sync_engine *e = mb->e;
	struct err err = {0};

	mb->needs &= ~NEED_UNSUBSCRIBE;
	if (v->cls == EWS_ERR_NONE || (v->flags & EWS_ERRF_ALREADY_GONE) ||
	    v->cls == EWS_ERR_SUBSCRIPTION_LOST) {
		free(mb->sub_id);
		mb->sub_id = NULL;
		/* A pull row keeps its watermark so that a restart resumes from it. */
		if ((is_stream(e) || mb->removed) &&
		    store_subscription_delete(e->store, mb->smtp, &err) < 0)
			log_err("store: %s: %s", mb->smtp, err.msg);
	} else {
		log_warn("%s: Unsubscribe: %s", mb->smtp, v->msg);
	}
}

static void finish_subscribe(struct mb *mb, const struct ews_result *r,
                             const struct ews_response *resp)
{
	struct sync_engine *e = mb->e;
	const struct ews_message *m = &resp->messages[0];
	struct store_subscription sub = {0};
	struct err err = {0};

	if (m->subscription_id == NULL) {
		struct verdict v = {.cls = EWS_ERR_TRANSIENT, .back_off_ms = -1};

		snprintf(v.msg, sizeof(v.msg), "Subscribe answer without a SubscriptionId");
		mb_failed(mb, ACT_SUBSCRIBE, &v);
		return;
	}
	replace_str(&mb->sub_id, m->subscription_id);
	if (!is_stream(e) && m->watermark)
		replace_str(&mb->watermark, m->watermark);
	mb->needs &= ~NEED_SUBSCRIBE;
	sub.kind = is_stream(e) ? STORE_SUB_STREAMING : STORE_SUB_PULL;
	sub.id = mb->sub_id;
	sub.watermark = is_stream(e) ? NULL : mb->watermark;
	sub.watermark_len = sub.watermark ? strlen(sub.watermark) : 0;
	sub.created_utc = sync_engine_now_utc(e);
	if (store_subscription_put(e->store, mb->smtp, &sub, &err) < 0)
		log_err("store: %s: %s", mb->smtp, err.msg);
	if (is_stream(e)) {
		if (mb->group && mb->group->cookie == NULL && r->backend_cookie)
			mb->group->cookie = xstrdup(r->backend_cookie);
		if (mb->group) {
			mb->group->dirty = true;
			group_schedule(mb->group, GROUP_SETTLE_USEC);
		}
	} else {
		mb->needs |= NEED_POLL;
		mb->poll_due_usec = clock_now_usec() + e->cfg->pull_interval_usec;
	}
	/* Subscribed first, read second: a change between the two is seen by both at worst. */
	if (!(mb->needs & NEED_READ)) {
		mb->needs |= NEED_READ;
		mb->read_due_usec = 0;
	}
}

static void finish_poll(struct mb *mb, const struct ews_response *resp)
{
	struct sync_engine *e = mb->e;
	const struct ews_message *m = &resp->messages[0];
	const char *wm = NULL;
	bool changed = false, more = false;
	struct err err = {0};

	for (size_t n = 0; n < m->n_notifications; n++) {
		const struct ews_notification *no = &m->notifications[n];

		more = more || no->more_events;
		for (size_t k = 0; k < no->n_events; k++) {
			if (no->events[k].watermark)
				wm = no->events[k].watermark;
			changed = changed || no->events[k].type != EWS_EVENT_STATUS;
		}
	}
	if (wm && (mb->watermark == NULL || strcmp(wm, mb->watermark) != 0)) {
		replace_str(&mb->watermark, wm);
		if (store_subscription_set_watermark(e->store, mb->smtp, wm, strlen(wm), &err) < 0)
			log_err("store: %s: %s", mb->smtp, err.msg);
	}
	if (changed)
		mb_schedule_read(mb, e->cfg->debounce_usec, true);
	mb->poll_due_usec = clock_now_usec() + (more ? 0 : e->cfg->pull_interval_usec);
}

/* Collects one CalendarView page; returns true when another page is needed. */
static bool collect_page(struct mb *mb, struct ews_response *resp)
{
	struct ews_message *m = &resp->messages[0];
	int64_t last_start = INT64_MIN;

	if (m->n_items > 0) {
		mb->page_items = xreallocarray(mb->page_items, mb->n_page_items + m->n_items,
		                               sizeof(*mb->page_items));
		memcpy(mb->page_items + mb->n_page_items, m->items, m->n_items * sizeof(*m->items));
		mb->n_page_items += m->n_items;
		for (size_t i = 0; i < m->n_items; i++)
			if (m->items[i].has_start && m->items[i].start_utc > last_start)
				last_start = m->items[i].start_utc;
		free(m->items); /* the strings now belong to page_items */
		m->items = NULL;
		m->n_items = 0;
	}
	mb->pages++;
	if (!m->has_includes_last || m->includes_last_item_in_range)
		return false;
	if (last_start <= mb->page_start_utc || mb->pages >= READ_MAX_PAGES) {
		log_warn("%s: CalendarView cut at %u pages; the window is truncated", mb->smtp,
		         mb->pages);
		return false;
	}
	/* The next page starts at the last start seen; its items come again and are dropped as
	 * duplicates by the conversion. */
	mb->page_start_utc = last_start;
	return true;
}

static void finish_read(struct mb *mb)
{
	struct sync_engine *e = mb->e;
	struct cal_occurrence *occ = NULL;
	size_t n = 0, skipped = 0;
	struct store_diff diff = {0};
	struct err err = {0};
	int64_t now = clock_now_usec();

	if (sync_items_to_occurrences(mb->page_items, mb->n_page_items, &occ, &n, &skipped, &err) <
	            0 ||
	    store_replace_occurrences(e->store, mb->smtp, mb->read_start_utc, mb->read_end_utc, occ,
	                              n, &diff, &err) < 0) {
		struct verdict v = {.cls = EWS_ERR_TRANSIENT, .back_off_ms = -1};

		snprintf(v.msg, sizeof(v.msg), "storing the window: %s", err.msg);
		mb_free_page(mb);
		cal_occurrences_free(occ, n);
		mb->needs |= NEED_READ;
		mb->read_due_usec = 0;
		mb_failed(mb, ACT_READ, &v);
		return;
	}
	mb_free_page(mb);
	e->stats.refreshes++;
	mb->has_window = true;
	if (store_mailbox_set_refreshed(e->store, mb->smtp, sync_engine_now_utc(e), &err) < 0)
		log_err("store: %s: %s", mb->smtp, err.msg);
	if (diff.n > 0)
		log_debug("%s: window read: %zu added, %zu changed, %zu removed", mb->smtp,
		          diff.n_added, diff.n_changed, diff.n_removed);
	store_diff_clear(&diff);
	mb->safety_due_usec =
		now + jitter(e, e->cfg->safety_refresh_usec) / 2 + e->cfg->safety_refresh_usec / 2;
	mb_update_presence(mb, occ, n, "calendar-changed");
	cal_occurrences_free(occ, n);
	if (!(mb->needs & (NEED_SUBSCRIBE | NEED_DISCOVER)) && mb->sub_id)
		mb_set_state(mb, STORE_MB_LIVE, NULL);
}

static void on_call_done(void *ctx, struct ews_call *call, const struct ews_result *r)
{
	struct mb *mb = ctx;
	struct sync_engine *e = mb->e;
	struct ews_response resp = {0};
	struct verdict v;
	enum action act = mb->action;

	mb->call = NULL;
	mb->action = ACT_NONE;
	e->in_flight--;
	classify(r, &resp, &v);
	{
		static const enum sync_op ops[] = {
			[ACT_NONE] = SYNC_OP_FIND_ITEM,
			[ACT_DISCOVER] = SYNC_OP_GET_USER_SETTINGS,
			[ACT_SUBSCRIBE] = SYNC_OP_SUBSCRIBE,
			[ACT_READ] = SYNC_OP_FIND_ITEM,
			[ACT_POLL] = SYNC_OP_GET_EVENTS,
			[ACT_UNSUBSCRIBE] = SYNC_OP_UNSUBSCRIBE,
		};

		count_op(e, ops[act], v.cls == EWS_ERR_NONE, r->elapsed_usec);
	}
	if (act == ACT_UNSUBSCRIBE) {
		finish_unsubscribe(mb, &v);
	} else if (e->stopping) {
		/* nothing: shutdown only unsubscribes */
	} else if (v.cls != EWS_ERR_NONE) {
		if (act == ACT_READ)
			mb_free_page(mb);
		if (act == ACT_READ)
			mb->needs |= NEED_READ;
		mb_failed(mb, act, &v);
	} else {
		mb_succeeded(mb);
		switch (act) {
		case ACT_SUBSCRIBE:
			finish_subscribe(mb, r, &resp);
			break;
		case ACT_POLL:
			finish_poll(mb, &resp);
			break;
		case ACT_READ:
			if (collect_page(mb, &resp)) {
				struct err err = {0};

				mb->action = ACT_READ;
				if (start_read_page(mb, &err) < 0) {
					mb->action = ACT_NONE;
					mb_free_page(mb);
					mb->needs |= NEED_READ;
					log_err("%s: %s", mb->smtp, err.msg);
				}
			} else {
				finish_read(mb);
			}
			break;
		default:
			break;
		}
	}
	ews_response_clear(&resp);
	if ((mb->removed || e->stopping) && mb->action == ACT_NONE &&
	    !(mb->needs & NEED_UNSUBSCRIBE)) {
		if (mb->removed)
			mb_destroy(mb);
	} else {
		mb_kick(mb);
	}
	dispatch(e);
}

/* ---- Autodiscover ------------------------------------------------------------------- */

struct discover {
	struct sync_engine *e;
	struct mb **mbs;
	size_t n;
	struct discover *next;
};

static void discover_unlink(struct discover *d)
{
	for (struct discover **pp = &d->e->discovers; *pp; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			return;
		}
	}
}

static void on_discover_done(void *ctx, struct ews_call *call, const struct ews_result *r)
{
	struct discover *d = ctx;
	struct sync_engine *e = d->e;
	struct ews_response resp = {0};
	struct verdict v;

	e->in_flight--;
	e->account_in_flight--;
	discover_unlink(d);
	classify(r, &resp, &v);
	count_op(e, SYNC_OP_GET_USER_SETTINGS, v.cls == EWS_ERR_NONE, r->elapsed_usec);
	if (v.cls == EWS_ERR_NONE && resp.autodiscover_error &&
	    strcmp(resp.autodiscover_error, "NoError") != 0) {
		v.cls = EWS_ERR_TRANSIENT;
		snprintf(v.msg, sizeof(v.msg), "Autodiscover: %s", resp.autodiscover_error);
	}
	for (size_t i = 0; i < d->n; i++) {
		struct mb *mb = d->mbs[i];
		const struct ews_user_settings *u = NULL;

		mb->action = ACT_NONE;
		mb->call = NULL;
		if (mb->removed || e->stopping) {
			/* Removed or stopping while Autodiscover ran: only an unsubscribe is left. */
			if (mb->needs & NEED_UNSUBSCRIBE)
				mb_kick(mb);
			else if (mb->removed)
				mb_destroy(mb);
			continue;
		}
		/* UserResponses come in the order of the request's Users and name no mailbox. */
		if (v.cls == EWS_ERR_NONE && resp.n_users == d->n)
			u = &resp.users[i];
		for (size_t k = 0; v.cls == EWS_ERR_NONE && u == NULL && k < resp.n_users; k++)
			if (resp.users[k].mailbox &&
			    strcasecmp(resp.users[k].mailbox, mb->smtp) == 0)
				u = &resp.users[k];
		if (v.cls != EWS_ERR_NONE) {
			mb_failed(mb, ACT_DISCOVER, &v);
		} else if (u == NULL || (u->error_code && strcmp(u->error_code, "NoError") != 0) ||
		           (u->internal_ews_url == NULL && u->external_ews_url == NULL)) {
			struct verdict pv = {.cls = EWS_ERR_MAILBOX_PERMANENT, .back_off_ms = -1};

			snprintf(pv.msg, sizeof(pv.msg), "Autodiscover: %s%s%s",
			         u && u->error_code ? u->error_code : "no EWS URL",
			         u && u->error_message ? ": " : "",
			         u && u->error_message ? u->error_message : "");
			mb_failed(mb, ACT_DISCOVER, &pv);
			mb->needs |= NEED_DISCOVER;
		} else {
			struct err err = {0};
			const char *url =
				u->internal_ews_url ? u->internal_ews_url : u->external_ews_url;

			mb_succeeded(mb);
			mb->needs &= ~NEED_DISCOVER;
			replace_str(&mb->ews_url, url);
			replace_str(&mb->grouping, u->grouping_information);
			if (store_mailbox_set_endpoint(e->store, mb->smtp, url,
			                               u->grouping_information, &err) < 0)
				log_err("store: %s: %s", mb->smtp, err.msg);
			if (!(mb->needs & NEED_SUBSCRIBE) && mb->sub_id == NULL)
				mb->needs |= NEED_SUBSCRIBE;
		}
		mb_kick(mb);
	}
	ews_response_clear(&resp);
	free(d->mbs);
	free(d);
	dispatch(e);
}

/* One GetUserSettings for first and up to SYNC_DISCOVER_BATCH - 1 more queued mailboxes that
 * also need Autodiscover. */
static int start_discover(struct sync_engine *e, struct mb *first, struct err *err)
{
	struct discover *d = xcalloc(1, sizeof(*d));
	const char *names[SYNC_DISCOVER_BATCH];
	struct ews_call_opts o = {0};
	char *url;
	int rc;

	d->e = e;
	d->mbs = xcalloc(SYNC_DISCOVER_BATCH, sizeof(*d->mbs));
	d->mbs[d->n++] = first;
	/* Take more mailboxes that need Autodiscover from the bulk queue. */
	for (struct mb **pp = &e->q_head[Q_BULK]; *pp && d->n < SYNC_DISCOVER_BATCH;) {
		struct mb *mb = *pp;

		if ((mb->needs & NEED_DISCOVER) && !(mb->needs & NEED_UNSUBSCRIBE)) {
			*pp = mb->q_next;
			if (e->q_tail[Q_BULK] == mb) {
				e->q_tail[Q_BULK] = NULL;
				for (struct mb *t = e->q_head[Q_BULK]; t; t = t->q_next)
					e->q_tail[Q_BULK] = t;
			}
			mb->queued = false;
			mb->q_next = NULL;
			mb->action = ACT_DISCOVER;
			d->mbs[d->n++] = mb;
		} else {
			pp = &mb->q_next;
		}
	}
	for (size_t i = 0; i < d->n; i++)
		names[i] = d->mbs[i]->smtp;
	url = cfg_autodiscover_url(e->cfg, first->smtp);
	rc = ews_req_get_user_settings(names, d->n, url, NULL, &e->req, err);
	if (rc == 0) {
		o.url = url;
		rc = ews_transport_post(e->transport, &o, e->req.data, e->req.len, on_discover_done,
		                        d, NULL, err);
	}
	free(url);
	if (rc < 0) {
		for (size_t i = 1; i < d->n; i++) {
			d->mbs[i]->action = ACT_NONE;
			d->mbs[i]->not_before_usec = clock_now_usec() + backoff_usec(e, 1);
			mb_kick(d->mbs[i]);
		}
		free(d->mbs);
		free(d);
		return rc;
	}
	d->next = e->discovers;
	e->discovers = d;
	e->in_flight++;
	e->account_in_flight++;
	e->stats.requests++;
	return 0;
}

/* ---- dispatch ------------------------------------------------------------------------ */

static void dispatch(struct sync_engine *e)
{
	while (e->in_flight < SYNC_MAX_IN_FLIGHT) {
		struct mb *mb;

		if (e->q_head[Q_BULK] && (e->q_head[Q_BULK]->needs & NEED_DISCOVER) &&
		    e->q_head[Q_URGENT] == NULL &&
		    e->account_in_flight >= (size_t)e->cfg->concurrency)
			break; /* Autodiscover is charged to the service account: its own cap */
		mb = dequeue(e);
		if (mb == NULL)
			break;
		if (mb->closing)
			continue;
		if (mb_start(mb) < 0 || mb->action == ACT_NONE)
			mb_kick(mb);
	}
	if (e->stopping && e->in_flight == 0 && e->q_head[Q_URGENT] == NULL &&
	    e->q_head[Q_BULK] == NULL && e->stop_done) {
		void (*done)(void *) = e->stop_done;

		e->stop_done = NULL;
		uv_timer_stop(&e->stop_timer);
		log_info("unsubscribed; stopping");
		done(e->stop_ctx);
	}
}

static void on_dispatch_idle(uv_idle_t *h)
{
	struct sync_engine *e = h->data;

	uv_idle_stop(h);
	e->dispatch_pending = false;
	dispatch(e);
}

/* ---- presence ------------------------------------------------------------------------- */

static bool str_eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static void on_presence_timer(uv_timer_t *t);

static void arm_presence_timer(struct mb *mb)
{
	struct sync_engine *e = mb->e;
	int64_t next = mb->has_presence ? mb->presence.next_change_utc : 0;

	uv_timer_stop(&mb->presence_timer);
	if (!mb->has_presence || next <= 0 || next == PRESENCE_NEVER || clock_frozen(&e->clock))
		return;
	{
		int64_t delay_ms = next * MSEC - now_ms(e);

		uv_timer_start(&mb->presence_timer, on_presence_timer,
		               delay_ms < 0 ? 0 : (uint64_t)delay_ms, 0);
	}
}

/*
 * Recomputes the mailbox's presence from occ at the engine's now. A change of state, profile,
 * forward, subject, since or until is stored with its event and written as one output line.
 */
static struct mb *mb_find(struct sync_engine *e, const char *smtp);

/* ---- store batches ------------------------------------------------------------------- */

/* A committed presence change goes out: the JSON line, then the hook (SSE, webhooks). */
static void emit_change(struct sync_engine *e, const struct output_change *c)
{
	struct err err = {0};

	if (e->change_hook)
		e->change_hook(e->change_ctx, c->id);
	if (e->out && output_write(e->out, c, &err) < 0)
		log_err("output: %s", err.msg);
}

static void pending_add(struct sync_engine *e, const struct output_change *c)
{
	struct pending_line *l;

	if (e->n_pending == e->cap_pending) {
		e->cap_pending = e->cap_pending ? e->cap_pending * 2 : 64;
		e->pending = xreallocarray(e->pending, e->cap_pending, sizeof(*e->pending));
	}
	l = &e->pending[e->n_pending++];
	l->user = xstrdup(c->user);
	l->state = xstrdup(c->state);
	l->profile = xstrdup_or_null(c->profile);
	l->forward = xstrdup_or_null(c->forward);
	l->subject = xstrdup_or_null(c->subject);
	l->reason = xstrdup_or_null(c->reason);
	l->c = *c;
	l->c.user = l->user;
	l->c.state = l->state;
	l->c.profile = l->profile;
	l->c.forward = l->forward;
	l->c.subject = l->subject;
	l->c.reason = l->reason;
}

static void pending_line_clear(struct pending_line *l)
{
	free(l->user);
	free(l->state);
	free(l->profile);
	free(l->forward);
	free(l->subject);
	free(l->reason);
}

/*
 * Commits the open batch, then writes the presence lines it holds. When the commit fails,
 * nothing of the batch is stored: its lines are dropped (they never happened for the store, the
 * API or the webhooks), and the mailboxes whose presence changed in it are re-read after a
 * back-off and record their presence again.
 */
static void batch_commit(struct sync_engine *e)
{
	struct err err = {0};
	int rc;

	uv_timer_stop(&e->batch_timer);
	if (!store_in_batch(e->store))
		return;
	rc = store_batch_commit(e->store, &err);
	if (rc < 0)
		log_err("store: %zu presence changes and the sync state of this moment were not saved: "
		        "%s; re-reading those mailboxes",
		        e->n_pending, err.msg);
	for (size_t i = 0; i < e->n_pending; i++) {
		const struct output_change *c = &e->pending[i].c;

		if (rc == 0) {
			emit_change(e, c);
		} else {
			struct mb *mb = mb_find(e, c->user);

			if (mb != NULL) {
				mb->has_presence = false;
				mb_schedule_read(mb, SYNC_RETRY_FIRST_USEC, false);
			}
		}
		pending_line_clear(&e->pending[i]);
	}
	e->n_pending = 0;
}

static void on_batch_timer(uv_timer_t *t)
{
	batch_commit(t->data);
}

/* store_set_write_hook: the first write after a commit opens the next batch. */
static void batch_open(void *ctx)
{
	struct sync_engine *e = ctx;
	struct err err = {0};

	if (store_batch_begin(e->store, &err) < 0) {
		log_warn("store: %s; writing without a batch", err.msg);
		return;
	}
	uv_timer_start(&e->batch_timer, on_batch_timer, SYNC_BATCH_USEC / 1000, 0);
}

static void mb_update_presence(struct mb *mb, const struct cal_occurrence *occ, size_t n,
                               const char *why)
{
	struct sync_engine *e = mb->e;
	struct presence p;
	struct store_presence sp = {0};
	int64_t now = sync_engine_now_utc(e);
	struct err err = {0};
	const char *reason = why;
	int64_t id = 0;

	presence_compute(occ, n, &e->rules.rules, now, &p);
	sp.state = xstrdup(presence_state_name(p.state));
	sp.profile = xstrdup_or_null(p.profile);
	sp.forward = xstrdup_or_null(p.forward);
	sp.subject = xstrdup_or_null(p.subject);
	sp.since_utc = p.since_utc;
	sp.until_utc = p.until_utc == PRESENCE_NEVER ? 0 : p.until_utc;
	sp.next_change_utc = p.next_change_utc == PRESENCE_NEVER ? 0 : p.next_change_utc;
	sp.updated_utc = now;
	if (mb->has_presence && str_eq(sp.state, mb->presence.state) &&
	    str_eq(sp.profile, mb->presence.profile) && str_eq(sp.forward, mb->presence.forward) &&
	    str_eq(sp.subject, mb->presence.subject) && sp.since_utc == mb->presence.since_utc &&
	    sp.until_utc == mb->presence.until_utc) {
		if (sp.next_change_utc != mb->presence.next_change_utc) {
			mb->presence.next_change_utc = sp.next_change_utc;
			if (store_presence_put(e->store, mb->smtp, &sp, &err) < 0)
				log_err("store: %s: %s", mb->smtp, err.msg);
		}
		store_presence_clear(&sp);
		arm_presence_timer(mb);
		return;
	}
	if (!mb->has_presence)
		reason = "initial";
	else if (strcmp(why, "timer") == 0)
		/* A start when the winning appointment began at the boundary the timer waited
		 * for; an end otherwise (also when a shorter appointment inside a longer one
		 * ends and the longer one is in force again). */
		reason = p.winner >= 0 && mb->presence.next_change_utc > 0 &&
		                         occ[p.winner].start_utc >= mb->presence.next_change_utc
		                 ? "appointment-start"
		                 : "appointment-end";
	if (store_presence_record(e->store, mb->smtp, &sp, reason, &id, &err) < 0) {
		log_err("store: %s: presence not recorded: %s", mb->smtp, err.msg);
		store_presence_clear(&sp);
		return;
	}
	e->stats.presence_changes++;
	store_presence_clear(&mb->presence);
	mb->presence = sp; /* the strings move */
	mb->has_presence = true;
	{
		struct output_change c = {
			.id = id,
			.time_utc = now,
			.user = mb->smtp,
			.state = sp.state,
			.profile = sp.profile,
			.forward = sp.forward,
			.subject = sp.subject,
			.since_utc = sp.since_utc,
			.until_utc = p.until_utc,
			.reason = reason,
		};

		if (store_in_batch(e->store))
			pending_add(e, &c);
		else
			emit_change(e, &c);
	}
	arm_presence_timer(mb);
}

/* Recomputes presence from the stored window (a timer, a clock or a rules change). */
static void mb_recompute_stored(struct mb *mb, const char *why)
{
	struct cal_occurrence *occ = NULL;
	size_t n = 0;
	struct err err = {0};

	if (!mb->has_window)
		return;
	if (store_load_occurrences(mb->e->store, mb->smtp, &occ, &n, &err) < 0) {
		log_err("store: %s: %s", mb->smtp, err.msg);
		return;
	}
	mb_update_presence(mb, occ, n, why);
	cal_occurrences_free(occ, n);
}

static void on_presence_timer(uv_timer_t *t)
{
	struct mb *mb = t->data;

	if (now_ms(mb->e) < mb->presence.next_change_utc * MSEC) {
		arm_presence_timer(mb); /* the wall clock lagged the monotonic one */
		return;
	}
	mb_recompute_stored(mb, "timer");
}

/* ---- mailboxes: create, remove, free ---------------------------------------------------- */

static void on_mb_timer_closed(uv_handle_t *h)
{
	struct mb *mb = h->data;

	if (--mb->closing > 0)
		return;
	free(mb->smtp);
	free(mb->key);
	free(mb->ews_url);
	free(mb->grouping);
	free(mb->sub_id);
	free(mb->watermark);
	store_presence_clear(&mb->presence);
	free(mb);
}

/* Unlinks the mailbox from the engine and frees it once its timers are closed. */
static void mb_destroy(struct mb *mb)
{
	struct sync_engine *e = mb->e;

	if (mb->closing)
		return;
	mb_cancel_call(mb);
	mb_free_page(mb);
	group_leave(mb);
	if (mb->queued) {
		for (int q = 0; q < Q_COUNT; q++) {
			struct mb *prev = NULL;

			for (struct mb *it = e->q_head[q]; it; prev = it, it = it->q_next) {
				if (it != mb)
					continue;
				if (prev)
					prev->q_next = it->q_next;
				else
					e->q_head[q] = it->q_next;
				if (e->q_tail[q] == it)
					e->q_tail[q] = prev;
				break;
			}
		}
		mb->queued = false;
	}
	/* From the end: sync_engine_free destroys the last one, in O(1). */
	for (size_t i = e->n_mbs; i-- > 0;) {
		if (e->mbs[i] == mb) {
			e->mbs[i] = e->mbs[--e->n_mbs];
			break;
		}
	}
	if (mb->hashed)
		HASH_DEL(e->by_smtp, mb);
	mb->hashed = false;
	if (!mb->removed) {
		e->stats.mailboxes--;
		(*state_count(e, mb->state))--;
	}
	mb->closing = 2;
	uv_close((uv_handle_t *)&mb->work_timer, on_mb_timer_closed);
	uv_close((uv_handle_t *)&mb->presence_timer, on_mb_timer_closed);
}

/* SMTP addresses compare without ASCII case, as the store does. */
static char *lower_dup(const char *s)
{
	char *d = xstrdup(s);

	for (char *p = d; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return d;
}

static struct mb *mb_find(struct sync_engine *e, const char *smtp)
{
	char *key = lower_dup(smtp);
	struct mb *mb = NULL;

	HASH_FIND_STR(e->by_smtp, key, mb);
	free(key);
	return mb;
}

/* A mailbox from its stored row: subscription, presence and window are reused. */
static struct mb *mb_new(struct sync_engine *e, const struct store_mailbox *row)
{
	struct mb *mb = xcalloc(1, sizeof(*mb));
	struct store_subscription sub = {0};
	struct err err = {0};
	int rc;

	mb->e = e;
	mb->smtp = xstrdup(row->smtp);
	mb->key = lower_dup(row->smtp);
	HASH_ADD_KEYPTR(hh, e->by_smtp, mb->key, strlen(mb->key), mb);
	mb->hashed = true;
	mb->state = row->state;
	mb->has_window = row->last_refresh_utc != 0;
	uv_timer_init(e->loop, &mb->work_timer);
	uv_timer_init(e->loop, &mb->presence_timer);
	mb->work_timer.data = mb;
	mb->presence_timer.data = mb;
	if (e->cfg->ews_url == NULL && row->ews_url) {
		mb->ews_url = xstrdup(row->ews_url);
		mb->grouping = row->grouping ? xstrdup(row->grouping) : NULL;
	}
	rc = store_subscription_get(e->store, mb->smtp, &sub, &err);
	if (rc == 0 && (sub.kind == STORE_SUB_STREAMING) == is_stream(e)) {
		mb->sub_id = sub.id;
		sub.id = NULL;
		if (sub.watermark) {
			mb->watermark = sub.watermark;
			sub.watermark = NULL;
		}
	}
	store_subscription_clear(&sub);
	rc = store_presence_get(e->store, mb->smtp, &mb->presence, &err);
	mb->has_presence = rc == 0;

	/* What it needs (a pull poll is due at once: poll_due_usec is 0). */
	mb->needs |= sync_sched_initial_needs(e->cfg->ews_url != NULL || mb->ews_url != NULL,
	                                      mb->sub_id != NULL, is_stream(e));
	if (mb->state == STORE_MB_LIVE)
		mb->state = STORE_MB_SYNCING; /* set below through the store */
	e->stats.mailboxes++;
	(*state_count(e, mb->state))++;
	if (row->state == STORE_MB_LIVE &&
	    store_mailbox_set_state(e->store, mb->smtp, STORE_MB_SYNCING, NULL, &err) < 0)
		log_err("store: %s: %s", mb->smtp, err.msg);
	if (e->n_mbs == e->cap_mbs) {
		e->cap_mbs = e->cap_mbs ? 2 * e->cap_mbs : 64;
		e->mbs = xreallocarray(e->mbs, e->cap_mbs, sizeof(*e->mbs));
	}
	e->mbs[e->n_mbs++] = mb;
	return mb;
}

/* Removes a mailbox that is no longer configured: unsubscribes it, then frees it. */
static void mb_remove(struct mb *mb)
{
	struct sync_engine *e = mb->e;
	struct err err = {0};

	if (store_mailbox_remove(e->store, mb->smtp, &err) < 0)
		log_err("store: %s: %s", mb->smtp, err.msg);
	log_info("%s: removed from the configuration", mb->smtp);
	e->stats.mailboxes--;
	(*state_count(e, mb->state))--;
	mb->removed = true;
	/* A re-add while it still unsubscribes makes a new mailbox. */
	HASH_DEL(e->by_smtp, mb);
	mb->hashed = false;
	uv_timer_stop(&mb->presence_timer);
	mb_cancel_call(mb);
	mb->needs = mb->sub_id ? NEED_UNSUBSCRIBE : 0;
	mb->not_before_usec = 0;
	if (mb->needs == 0 && mb->action == ACT_NONE)
		mb_destroy(mb);
	else
		mb_kick(mb);
}

/* Adds (or re-enables) smtp in the store and starts syncing it. 0 or the store's error. */
static int mb_add(struct sync_engine *e, const char *smtp, struct mb **out_mb, struct err *err)
{
	struct store_mailbox row = {0};
	struct mb *mb;
	int rc = store_mailbox_add(e->store, smtp, NULL, NULL, err);

	if (rc == 0)
		rc = store_mailbox_get(e->store, smtp, &row, err);
	if (rc < 0)
		return rc;
	mb = mb_new(e, &row);
	store_mailbox_clear(&row);
	if (e->started)
		mb_kick(mb);
	if (out_mb)
		*out_mb = mb;
	return 0;
}

/* A set of addresses, by lower-case key. */
struct name {
	char *key;
	UT_hash_handle hh;
};

static void names_add(struct name **set, const char *smtp)
{
	struct name *nm = xcalloc(1, sizeof(*nm));

	nm->key = lower_dup(smtp);
	HASH_ADD_KEYPTR(hh, *set, nm->key, strlen(nm->key), nm);
}

static bool names_has(struct name *set, const char *smtp)
{
	char *key = lower_dup(smtp);
	struct name *nm;

	HASH_FIND_STR(set, key, nm);
	free(key);
	return nm != NULL;
}

static void names_free(struct name **set)
{
	struct name *nm, *tmp;

	HASH_ITER(hh, *set, nm, tmp)
	{
		HASH_DEL(*set, nm);
		free(nm->key);
		free(nm);
	}
}

/*
 * Makes the engine's mailboxes those of cfg (and the ones added through the API): disables the
 * stored ones no longer configured and adds the new ones. One read of the stored list; only a
 * mailbox that is not already enabled in the store costs a write, so a restart with 50,000
 * mailboxes writes nothing here.
 */
static int sync_mailboxes(struct sync_engine *e, const struct cfg *cfg, struct err *err)
{
	struct store_mailbox *rows = NULL;
	size_t n_rows = 0;
	struct name *configured = NULL, *stored = NULL;
	int rc = store_mailbox_list(e->store, STORE_MB_ENABLED, &rows, &n_rows, err);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n_rows; i++)
		names_add(&stored, rows[i].smtp);
	for (size_t i = 0; i < cfg->n_mailboxes; i++)
		names_add(&configured, cfg->mailboxes[i]);
	/* Stored and enabled: keep (start it if new to the engine) or disable. */
	for (size_t i = 0; i < n_rows; i++) {
		struct mb *mb = mb_find(e, rows[i].smtp);

		if (!names_has(configured, rows[i].smtp) && !rows[i].by_api) {
			if (mb)
				mb_remove(mb);
			else if (store_mailbox_remove(e->store, rows[i].smtp, err) < 0)
				log_err("store: %s: %s", rows[i].smtp, err->msg);
		} else if (mb == NULL) {
			mb = mb_new(e, &rows[i]);
			if (e->started)
				mb_kick(mb);
		}
	}
	/* Configured but not enabled in the store: add (or re-enable) and start it. */
	for (size_t i = 0; rc == 0 && i < cfg->n_mailboxes; i++) {
		const char *smtp = cfg->mailboxes[i];

		if (!names_has(stored, smtp) && mb_find(e, smtp) == NULL)
			rc = mb_add(e, smtp, NULL, err);
	}
	names_free(&configured);
	names_free(&stored);
	store_mailboxes_free(rows, n_rows);
	return rc;
}

/* ---- other threads: commands and stats ---------------------------------------------- */

static void publish_stats(struct sync_engine *e)
{
	struct sync_stats st = e->stats;
	int64_t now = clock_now_usec();

	st.in_flight = e->in_flight;
	for (size_t i = 0; i < e->n_mbs; i++) {
		st.queued += e->mbs[i]->queued;
		st.backing_off += e->mbs[i]->not_before_usec > now;
	}
	struct sync_group_info *gi = NULL;
	size_t n = 0;

	for (struct group *g = e->groups; g; g = g->next)
		st.streams_backing_off += g->failures > 0 && g->cur == NULL;
	if (e->stats.groups > 0)
		gi = xcalloc(e->stats.groups, sizeof(*gi));
	for (struct group *g = e->groups; g && n < e->stats.groups; g = g->next, n++) {
		snprintf(gi[n].key, sizeof(gi[n].key), "%s", g->key);
		snprintf(gi[n].anchor, sizeof(gi[n].anchor), "%s", g->anchor);
		gi[n].members = g->n_members;
		for (size_t i = 0; i < g->n_members; i++)
			gi[n].subscribed += g->members[i]->sub_id != NULL;
		gi[n].connected = g->cur != NULL && g->cur->connected;
		gi[n].failures = g->failures;
	}
	pthread_mutex_lock(&e->lock);
	e->snapshot = st;
	free(e->snap_groups);
	e->snap_groups = gi;
	e->n_snap_groups = n;
	pthread_mutex_unlock(&e->lock);
}

/*
 * While mailboxes are still being synced (the first start, a reload that adds many), says how
 * far it got: every 2 s on a terminal, every 10 s in a log.
 */
static void report_progress(struct sync_engine *e)
{
	const struct sync_stats *st = &e->stats;
	int64_t now = clock_now_usec();
	int64_t every = isatty(STDERR_FILENO) ? 2 * USEC_PER_SEC : 10 * USEC_PER_SEC;
	size_t pending = st->syncing + st->unresolved;
	double rate;

	if (pending == 0 || !log_enabled(LOG_LEVEL_INFO)) {
		e->progress_usec = 0;
		return;
	}
	if (e->progress_usec == 0) {
		e->progress_usec = now;
		e->progress_live = st->live;
		return;
	}
	if (now - e->progress_usec < every)
		return;
	rate = (double)(st->live - (st->live < e->progress_live ? st->live : e->progress_live)) /
	       ((double)(now - e->progress_usec) / 1e6);
	log_info("syncing: %zu of %zu mailboxes live, %zu syncing, %zu unresolved, %zu parked "
	         "(%.0f/s)",
	         st->live, st->mailboxes, st->syncing, st->unresolved, st->parked, rate);
	e->progress_usec = now;
	e->progress_live = st->live;
}

static void on_stats_timer(uv_timer_t *t)
{
	publish_stats(t->data);
	report_progress(t->data);
}

/* Drops one reference; the caller holds e->lock. */
static void command_release(struct command *c)
{
	if (--c->refs > 0)
		return;
	free(c->smtp);
	free(c);
}

static int command_add(struct sync_engine *e, struct command *c)
{
	const char *why = cfg_address_problem(c->smtp);
	struct mb *mb;
	int rc;

	if (why != NULL)
		return err_set(&c->err, -EINVAL, "'%.100s' is not a mailbox address: %s", c->smtp,
		               why);
	if (mb_find(e, c->smtp) != NULL)
		return err_set(&c->err, -EEXIST, "%s is already synced", c->smtp);
	rc = mb_add(e, c->smtp, &mb, &c->err);
	if (rc == 0)
		rc = store_mailbox_set_by_api(e->store, mb->smtp, true, &c->err);
	if (rc == 0)
		log_info("%s: added through the API", mb->smtp);
	return rc;
}

static int run_command(struct sync_engine *e, struct command *c)
{
	struct mb *mb;
	int rc;

	if (c->cmd == SYNC_CMD_ADD)
		return command_add(e, c);
	mb = mb_find(e, c->smtp);
	if (mb == NULL)
		return err_set(&c->err, -ENOENT, "%.100s is not synced", c->smtp);
	if (c->cmd == SYNC_CMD_RESYNC) {
		log_info("%s: re-read asked for through the API", mb->smtp);
		mb_schedule_read(mb, 0, true);
		return 0;
	}
	rc = store_mailbox_set_by_api(e->store, mb->smtp, false, &c->err);
	if (rc < 0)
		return rc;
	mb_remove(mb);
	return 0;
}

static void on_command(uv_async_t *h)
{
	struct sync_engine *e = h->data;

	for (;;) {
		struct command *c;

		pthread_mutex_lock(&e->lock);
		c = e->commands;
		if (c)
			e->commands = c->next;
		pthread_mutex_unlock(&e->lock);
		if (c == NULL)
			break;
		if (e->stopping)
			c->rc = err_set(&c->err, -ESHUTDOWN, "calsync is stopping");
		else
			c->rc = run_command(e, c);
		dispatch(e);
		batch_commit(e); /* the caller may read the store once we answer */
		publish_stats(e);
		pthread_mutex_lock(&e->lock);
		c->done = true;
		pthread_cond_broadcast(&e->cmd_done);
		command_release(c);
		pthread_mutex_unlock(&e->lock);
	}
}

int sync_engine_command(struct sync_engine *e, enum sync_cmd cmd, const char *smtp, struct err *err)
{
	struct command *c = xcalloc(1, sizeof(*c));
	struct timespec deadline;
	int rc;

	c->cmd = cmd;
	c->smtp = xstrdup(smtp);
	c->refs = 2;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += SYNC_COMMAND_USEC / USEC_PER_SEC;
	pthread_mutex_lock(&e->lock);
	if (e->shut) {
		pthread_mutex_unlock(&e->lock);
		free(c->smtp);
		free(c);
		return err_set(err, -ESHUTDOWN, "calsync is stopping");
	}
	{
		struct command **pp = &e->commands;

		while (*pp)
			pp = &(*pp)->next;
		*pp = c;
	}
	/* Under the lock: the loop closes the async handle only after setting shut under it. */
	uv_async_send(&e->cmd_async);
	while (!c->done) {
		if (pthread_cond_timedwait(&e->cmd_done, &e->lock, &deadline) == ETIMEDOUT)
			break;
	}
	if (c->done) {
		rc = c->rc;
		if (err && rc < 0)
			*err = c->err;
	} else {
		rc = err_set(err, -ETIMEDOUT, "the sync engine did not answer within %d s",
		             (int)(SYNC_COMMAND_USEC / USEC_PER_SEC));
	}
	command_release(c);
	pthread_mutex_unlock(&e->lock);
	return rc;
}

void sync_engine_status(struct sync_engine *e, struct sync_status *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&e->lock);
	out->stats = e->snapshot;
	if (e->n_snap_groups > 0) {
		out->groups = xcalloc(e->n_snap_groups, sizeof(*out->groups));
		memcpy(out->groups, e->snap_groups, e->n_snap_groups * sizeof(*out->groups));
		out->n_groups = e->n_snap_groups;
	}
	for (size_t i = 0; i < e->n_errors; i++) {
		size_t k = (e->err_next + SYNC_STATUS_ERRORS - 1 - i) % SYNC_STATUS_ERRORS;

		out->errors[out->n_errors++] = e->errors[k];
	}
	pthread_mutex_unlock(&e->lock);
}

void sync_status_clear(struct sync_status *st)
{
	free(st->groups);
	memset(st, 0, sizeof(*st));
}

void sync_engine_stats_snapshot(struct sync_engine *e, struct sync_stats *out)
{
	pthread_mutex_lock(&e->lock);
	*out = e->snapshot;
	pthread_mutex_unlock(&e->lock);
}

void sync_engine_set_change_hook(struct sync_engine *e, void (*fn)(void *ctx, int64_t id),
                                 void *ctx)
{
	e->change_hook = fn;
	e->change_ctx = ctx;
}

/* No more commands: pending ones get -ESHUTDOWN. */
static void commands_shut(struct sync_engine *e)
{
	pthread_mutex_lock(&e->lock);
	e->shut = true;
	while (e->commands) {
		struct command *c = e->commands;

		e->commands = c->next;
		c->rc = err_set(&c->err, -ESHUTDOWN, "calsync is stopping");
		c->done = true;
		command_release(c);
	}
	pthread_cond_broadcast(&e->cmd_done);
	pthread_mutex_unlock(&e->lock);
}

/* ---- the engine ----------------------------------------------------------------------------- */

static void on_day_timer(uv_timer_t *t);

static void arm_day_timer(struct sync_engine *e)
{
	int64_t ms = now_ms(e);
	int64_t next = (ms / (DAY_SEC * MSEC) + 1) * DAY_SEC * MSEC;

	if (clock_frozen(&e->clock))
		return;
	uv_timer_start(&e->day_timer, on_day_timer, (uint64_t)(next - ms) + 1000, 0);
}

/* Midnight UTC: the window rolls forward a day. Every mailbox is re-read within the next
 * quarter of an hour (staggered), unless its safety refresh comes sooner anyway. */
static void on_day_timer(uv_timer_t *t)
{
	struct sync_engine *e = t->data;
	int64_t now = clock_now_usec();
	int64_t spread = 15 * 60 * USEC_PER_SEC;

	if (spread > e->cfg->safety_refresh_usec)
		spread = e->cfg->safety_refresh_usec;
	for (size_t i = 0; i < e->n_mbs; i++) {
		struct mb *mb = e->mbs[i];
		int64_t due = now + (int64_t)(rng_next(e) % (uint64_t)spread);

		if (mb->safety_due_usec == 0 || due < mb->safety_due_usec) {
			mb->safety_due_usec = due;
			if (mb->action == ACT_NONE && !mb->queued)
				mb_kick(mb);
		}
	}
	arm_day_timer(e);
}

int sync_engine_new(uv_loop_t *loop, const struct cfg *cfg, struct store *store,
                    struct sync_output *out, struct sync_engine **out_engine, struct err *err)
{
	struct sync_engine *e = xcalloc(1, sizeof(*e));
	struct ews_transport_opts to = {0};
	size_t streams = cfg->n_mailboxes / SYNC_GROUP_MAX + 32;
	int rc;

	e->loop = loop;
	e->cfg = cfg;
	e->store = store;
	e->out = out;
	e->rng = (uint64_t)clock_now_usec() | 1;
	buf_init(&e->req, REQUEST_MAX);
	sync_rules_init(&e->rules, cfg);
	uv_timer_init(loop, &e->stop_timer);
	uv_timer_init(loop, &e->day_timer);
	uv_idle_init(loop, &e->dispatch_idle);
	e->stop_timer.data = e;
	e->day_timer.data = e;
	e->dispatch_idle.data = e;
	{
		pthread_condattr_t ca;

		pthread_mutex_init(&e->lock, NULL);
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&e->cmd_done, &ca);
		pthread_condattr_destroy(&ca);
	}
	uv_async_init(loop, &e->cmd_async, on_command);
	e->cmd_async.data = e;
	uv_timer_init(loop, &e->stats_timer);
	e->stats_timer.data = e;
	uv_timer_init(loop, &e->batch_timer);
	e->batch_timer.data = e;
	e->handles_open = 6;
	store_set_write_hook(store, batch_open, e);

	to.auth = cfg->auth;
	to.user = cfg->user;
	to.password = cfg->password;
	to.token = cfg->token;
	to.ca_file = cfg->ca_file;
	to.insecure_skip_tls_verify = cfg->insecure_skip_tls_verify;
	to.idle_timeout_usec = cfg->stream_watchdog_usec;
	/* Every streaming group holds a connection; buffered calls need their own. */
	to.max_host_connections = (unsigned)(streams + SYNC_MAX_IN_FLIGHT + 8);
	to.max_total_connections = to.max_host_connections + 16;
	rc = ews_transport_new(loop, &to, &e->transport, err);
	if (rc < 0)
		goto fail;
	rc = sync_mailboxes(e, cfg, err);
	if (rc < 0)
		goto fail;
	/* Other threads (webhooks, the API) start next and must not find the store locked by a
	 * batch that only the running loop would commit. */
	batch_commit(e);
	*out_engine = e;
	return 0;
fail:
	sync_engine_free(e);
	return rc;
}

static void on_stop_timer(uv_timer_t *t)
{
	struct sync_engine *e = t->data;
	void (*done)(void *) = e->stop_done;
	size_t left = 0;

	for (size_t i = 0; i < e->n_mbs; i++)
		left += e->mbs[i]->sub_id != NULL;
	log_warn("shutdown: %zu subscriptions not unsubscribed in time; Exchange expires them",
	         left);
	e->stop_done = NULL;
	if (done)
		done(e->stop_ctx);
}

int sync_engine_start(struct sync_engine *e, struct err *err)
{
	/* The stored presence is served at once; boundaries passed while calsync was down are
	 * caught up from the stored windows, with no Exchange call. */
	for (size_t i = 0; i < e->n_mbs; i++)
		mb_recompute_stored(e->mbs[i], "timer");
	e->started = true;
	arm_day_timer(e);
	uv_timer_start(&e->stats_timer, on_stats_timer, 1000, 1000);
	publish_stats(e); /* readers see the mailbox counts at once, not after a second */
	for (size_t i = 0; i < e->n_mbs; i++)
		mb_kick(e->mbs[i]);
	/* Stored streaming subscriptions are tried right away. */
	if (is_stream(e)) {
		for (size_t i = 0; i < e->n_mbs; i++) {
			struct mb *mb = e->mbs[i];

			if (mb->sub_id && !(mb->needs & NEED_DISCOVER) && mb->group == NULL) {
				group_join(e, mb);
				mb->group->dirty = true;
				group_schedule(mb->group, 0);
			}
		}
	}
	dispatch(e);
	batch_commit(e); /* the caught-up presence is stored and announced before the loop runs */
	return 0;
}

int sync_engine_reload(struct sync_engine *e, const struct cfg *cfg, struct err *err)
{
	const struct cfg *old = e->cfg;
	int rc;

	if (!str_eq(old->ews_url, cfg->ews_url) || !str_eq(old->user, cfg->user) ||
	    old->auth != cfg->auth || !str_eq(old->store_path, cfg->store_path) ||
	    old->notify != cfg->notify || !str_eq(old->ca_file, cfg->ca_file) ||
	    !str_eq(old->autodiscover_url, cfg->autodiscover_url) ||
	    !str_eq(old->output_path, cfg->output_path))
		log_warn("reload: server, account, TLS, store, output and notification mode take "
		         "effect only after a restart");
	/* Keep what needs a restart by pointing at the new cfg only for what the engine rereads:
	 * the transport copied its settings, the store and output stay open. */
	e->cfg = cfg;
	sync_rules_clear(&e->rules);
	sync_rules_init(&e->rules, cfg);
	rc = sync_mailboxes(e, cfg, err);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < e->n_mbs; i++) {
		struct mb *mb = e->mbs[i];

		if (mb->state == STORE_MB_PARKED) {
			mb->not_before_usec = 0; /* a config change retries parked mailboxes now */
			mb_kick(mb);
		}
		mb_recompute_stored(mb, "config");
	}
	dispatch(e);
	log_info("reloaded: %zu mailboxes", e->stats.mailboxes);
	return 0;
}

void sync_engine_set_clock(struct sync_engine *e, const struct cs_clock *clock)
{
	e->clock = clock != NULL ? *clock : (struct cs_clock){0};
	if (!e->started)
		return;
	for (size_t i = 0; i < e->n_mbs; i++)
		mb_recompute_stored(e->mbs[i], "clock");
	uv_timer_stop(&e->day_timer);
	arm_day_timer(e);
}

void sync_engine_stop(struct sync_engine *e, void (*done)(void *ctx), void *ctx)
{
	e->stopping = true;
	e->stop_done = done;
	e->stop_ctx = ctx;
	commands_shut(e);
	uv_timer_stop(&e->day_timer);
	for (struct group *g = e->groups; g; g = g->next) {
		uv_timer_stop(&g->timer);
		group_disconnect(g);
	}
	for (size_t i = 0; i < e->n_mbs; i++) {
		struct mb *mb = e->mbs[i];

		uv_timer_stop(&mb->presence_timer);
		uv_timer_stop(&mb->work_timer);
		if (mb->action != ACT_UNSUBSCRIBE)
			mb_cancel_call(mb); /* an Unsubscribe already out is what stopping wants */
		mb->needs = mb->sub_id ? NEED_UNSUBSCRIBE : 0;
		mb->not_before_usec = 0;
		mb_kick(mb);
	}
	uv_timer_start(&e->stop_timer, on_stop_timer, usec_to_ms(SYNC_SHUTDOWN_USEC), 0);
	dispatch(e);
}

static void on_engine_handle_closed(uv_handle_t *h)
{
	struct sync_engine *e = h->data;

	if (--e->handles_open == 0) {
		pthread_cond_destroy(&e->cmd_done);
		pthread_mutex_destroy(&e->lock);
		free(e->snap_groups);
		free(e);
	}
}

void sync_engine_free(struct sync_engine *e)
{
	if (e == NULL)
		return;
	batch_commit(e);
	store_set_write_hook(e->store, NULL, NULL);
	free(e->pending);
	e->pending = NULL;
	e->stopping = true;
	/* Empty the ready queues at once: unlinking each of 50,000 queued mailboxes from a list
	 * walked from its head took half a minute (bench/run). */
	for (int q = 0; q < Q_COUNT; q++) {
		for (struct mb *it = e->q_head[q]; it; it = it->q_next)
			it->queued = false;
		e->q_head[q] = e->q_tail[q] = NULL;
	}
	while (e->n_mbs > 0) {
		struct mb *mb = e->mbs[e->n_mbs - 1];

		mb->removed = false;
		mb_destroy(mb);
	}
	while (e->groups) {
		struct group *g = e->groups;

		e->groups = g->next;
		group_disconnect(g);
		group_free(g);
	}
	ews_transport_free(e->transport);
	while (e->discovers) {
		struct discover *d = e->discovers;

		e->discovers = d->next;
		free(d->mbs);
		free(d);
	}
	sync_rules_clear(&e->rules);
	buf_free(&e->req);
	free(e->mbs);
	e->mbs = NULL;
	/* The engine's memory goes with its last handle. */
	commands_shut(e);
	uv_close((uv_handle_t *)&e->cmd_async, on_engine_handle_closed);
	uv_close((uv_handle_t *)&e->stats_timer, on_engine_handle_closed);
	uv_close((uv_handle_t *)&e->stop_timer, on_engine_handle_closed);
	uv_close((uv_handle_t *)&e->day_timer, on_engine_handle_closed);
	uv_close((uv_handle_t *)&e->dispatch_idle, on_engine_handle_closed);
	uv_close((uv_handle_t *)&e->batch_timer, on_engine_handle_closed);
}

void sync_engine_stats(const struct sync_engine *e, struct sync_stats *out)
{
	*out = e->stats;
	out->in_flight = e->in_flight;
}
