/* SPDX-License-Identifier: MIT */
/*
 * engine.c: the sync engine (engine.h, docs/sync.md): new, start, reload, stop, free, the clock
 * and the helpers every piece uses.
 *
 * Every mailbox is a small state machine driven by what it still needs: Autodiscover, a
 * subscription, a window read, a poll (pull), an unsubscribe. mb_kick() picks the next need
 * that is due and queues the mailbox; eng_dispatch() starts queued work while fewer than
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
#include "sync/engine-int.h"
#include "sync/ews-backend.h"
#include "sync/graph-backend.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

uint64_t eng_rng_next(struct sync_engine *e)
{
	return backoff_rng_next(&e->rng);
}

/* A delay between d/2 and d: spreads retries of many mailboxes that failed together. */
int64_t eng_jitter(struct sync_engine *e, int64_t d)
{
	return backoff_jitter(d, eng_rng_next(e));
}

int64_t backoff_usec(struct sync_engine *e, unsigned failures)
{
	return backoff_delay(SYNC_RETRY_FIRST_USEC, SYNC_RETRY_MAX_USEC, failures, eng_rng_next(e));
}

/* Calendar time in milliseconds: the injected clock (sync_engine_set_clock), by default real. */
int64_t eng_now_ms(const struct sync_engine *e)
{
	return clock_now_ms(&e->clock);
}

int64_t sync_engine_now_utc(const struct sync_engine *e)
{
	int64_t ms = eng_now_ms(e);

	return ms >= 0 ? ms / MSEC : -((-ms + MSEC - 1) / MSEC);
}

bool eng_mb_push(const struct mb *mb)
{
	return mb_ops(mb)->pushes(mb_bs(mb));
}

int eng_backend_index(const struct sync_engine *e, const char *name)
{
	for (size_t i = 0; name != NULL && i < e->n_bks; i++) {
		if (strcmp(e->bks[i].ops->name, name) == 0)
			return (int)i;
	}
	return -1;
}

/* Opens every backend the configuration asks for: EWS first, since it finds the home of the
 * mailboxes no configuration pins (Autodiscover answers a mailbox moved to Exchange Online with
 * its cloud address), then Graph when <graph> is configured. */
static int open_backends(struct sync_engine *e, struct err *err)
{
	const struct sync_backend_ops *want[SYNC_MAX_BACKENDS];
	size_t n = 0;

	want[n++] = &sync_ews_backend;
	if (e->cfg->graph != NULL)
		want[n++] = &sync_graph_backend;
	for (size_t i = 0; i < n; i++) {
		int rc = want[i]->open(e, &e->bks[i].b, err);

		if (rc < 0)
			return rc;
		e->bks[i].ops = want[i];
		e->n_bks = i + 1;
	}
	return 0;
}

const char *mb_url(const struct mb *mb)
{
	return mb->ews_url ? mb->ews_url : mb->e->cfg->ews_url;
}

/* Timer delay in libuv's milliseconds, rounded up, never negative. */
uint64_t eng_usec_to_ms(int64_t usec)
{
	return usec <= 0 ? 0 : (uint64_t)((usec + 999) / 1000);
}

/* ---- presence ------------------------------------------------------------------------- */

bool eng_str_eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

int sync_engine_new(uv_loop_t *loop, const struct cfg *cfg, struct store *store,
                    struct sync_output *out, struct sync_engine **out_engine, struct err *err)
{
	struct sync_engine *e = xcalloc(1, sizeof(*e));
	int rc;

	e->loop = loop;
	e->cfg = cfg;
	e->store = store;
	e->out = out;
	e->rng = (uint64_t)clock_now_usec() | 1;
	for (int q = 0; q < Q_COUNT; q++)
		list_init(&e->queue[q]);
	list_init(&e->commands);
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
	uv_async_init(loop, &e->cmd_async, eng_on_command);
	e->cmd_async.data = e;
	uv_timer_init(loop, &e->stats_timer);
	e->stats_timer.data = e;
	uv_timer_init(loop, &e->batch_timer);
	e->batch_timer.data = e;
	e->handles_open = 6;
	store_set_write_hook(store, eng_batch_open, e);

	rc = open_backends(e, err);
	if (rc < 0)
		goto fail;
	rc = sync_mailboxes(e, cfg, err);
	if (rc < 0)
		goto fail;
	/* Other threads (webhooks, the API) start next and must not find the store locked by a
	 * batch that only the running loop would commit. */
	eng_batch_commit(e);
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
	eng_arm_day_timer(e);
	uv_timer_start(&e->stats_timer, eng_on_stats_timer, 1000, 1000);
	eng_publish_stats(e); /* readers see the mailbox counts at once, not after a second */
	for (size_t i = 0; i < e->n_mbs; i++)
		mb_kick(e->mbs[i]);
	/* Stored subscriptions are tried right away. */
	for (size_t i = 0; i < e->n_mbs; i++) {
		struct mb *mb = e->mbs[i];

		if (mb->sub_id && !(mb->needs & NEED_DISCOVER))
			mb_ops(mb)->resume(mb_bs(mb), mb);
	}
	eng_dispatch(e);
	eng_batch_commit(
		e); /* the caught-up presence is stored and announced before the loop runs */
	return 0;
}

int sync_engine_reload(struct sync_engine *e, const struct cfg *cfg, struct err *err)
{
	const struct cfg *old = e->cfg;
	int rc;

	if (!eng_str_eq(old->ews_url, cfg->ews_url) || !eng_str_eq(old->user, cfg->user) ||
	    old->auth != cfg->auth || !eng_str_eq(old->store_path, cfg->store_path) ||
	    old->notify != cfg->notify || !eng_str_eq(old->ca_file, cfg->ca_file) ||
	    !eng_str_eq(old->autodiscover_url, cfg->autodiscover_url) ||
	    !eng_str_eq(old->output_path, cfg->output_path) ||
	    (old->graph == NULL) != (cfg->graph == NULL))
		log_warn(
			"reload: server, account, TLS, store, output, notification mode and <graph> take "
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
	eng_dispatch(e);
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
	eng_arm_day_timer(e);
}

void sync_engine_stop(struct sync_engine *e, void (*done)(void *ctx), void *ctx)
{
	e->stopping = true;
	e->stop_done = done;
	e->stop_ctx = ctx;
	eng_commands_shut(e);
	uv_timer_stop(&e->day_timer);
	for (size_t i = 0; i < e->n_bks; i++)
		e->bks[i].ops->stop(e->bks[i].b);
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
	uv_timer_start(&e->stop_timer, on_stop_timer, eng_usec_to_ms(SYNC_SHUTDOWN_USEC), 0);
	eng_dispatch(e);
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
	eng_batch_commit(e);
	store_set_write_hook(e->store, NULL, NULL);
	free(e->pending);
	e->pending = NULL;
	e->stopping = true;
	while (e->n_mbs > 0) {
		struct mb *mb = e->mbs[e->n_mbs - 1];

		mb->removed = false;
		mb_destroy(mb);
	}
	for (size_t i = 0; i < e->n_bks; i++)
		e->bks[i].ops->free(e->bks[i].b);
	e->n_bks = 0;
	sync_rules_clear(&e->rules);
	free(e->mbs);
	e->mbs = NULL;
	/* The engine's memory goes with its last handle. */
	eng_commands_shut(e);
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
	for (size_t i = 0; i < e->n_bks; i++)
		e->bks[i].ops->stats(e->bks[i].b, out);
}
