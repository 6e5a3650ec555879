/* SPDX-License-Identifier: MIT */
/*
 * graph-backend.c: the Microsoft Graph backend's table of operations (sync/backend.h), its
 * state for one engine, and a mailbox's part (graph-backend-int.h lists the other files).
 */
#include "sync/graph-backend.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "graph/graph-url.h"
#include "http/oauth.h"
#include "sync/graph-backend-int.h"

static void on_handle_closed(uv_handle_t *h)
{
	struct sync_backend *b = h->data;

	if (--b->handles_open == 0)
		free(b);
}

static void graph_free(struct sync_backend *b)
{
	if (b == NULL)
		return;
	b->freeing = true;
	graph_discovers_cancel(b);
	while (!list_empty(&b->waiting))
		gcall_cancel(container_of(b->waiting.next, struct gcall, link));
	while (!list_empty(&b->owned))
		gcall_cancel(container_of(b->owned.next, struct gcall, own_link));
	graph_notify_close(b);
	oauth_waiter_cancel(b->probe);
	b->probe = NULL;
	oauth_free(b->oauth);
	http_client_free(b->http);
	free(b->base);
	free(b->gc.notify_url);
	b->gc.notify_url = NULL;
	uv_close((uv_handle_t *)&b->gate_timer, on_handle_closed);
	uv_close((uv_handle_t *)&b->soon_timer, on_handle_closed);
	uv_close((uv_handle_t *)&b->probe_timer, on_handle_closed);
}

static int open_token(struct sync_backend *b, struct err *err)
{
	const struct cfg_graph *g = b->g;
	struct oauth_opts o = {
		.authority = g->authority,
		.tenant = g->tenant,
		.client_id = g->client_id,
		.scope = g->scope,
		.client_secret = g->client_secret,
		.cert_pem = g->cert_pem,
		.key_pem = g->key_pem,
		.allow_http = cfg_is_loopback_http(g->authority),
		/* A refused credential is tried once a minute: the parked mailboxes wait for it. */
		.backoff_max_usec = GRAPH_TOKEN_RETRY_MAX_USEC,
	};

	return oauth_new(b->http, &o, &b->oauth, err);
}

static int graph_open(struct sync_engine *e, struct sync_backend **out, struct err *err)
{
	struct sync_backend *b = xcalloc(1, sizeof(*b));
	const struct cfg_graph *g = e->cfg->graph;
	struct http_client_opts ho = {
		.ca_file = e->cfg->ca_file,
		.insecure_skip_tls_verify = e->cfg->insecure_skip_tls_verify,
		.max_host_connections = (unsigned)g->concurrency,
		.max_total_connections = (unsigned)g->concurrency + 8,
	};
	int rc;

	json_object_seed(0); /* jansson's hash seed, once, before any thread races for it */
	b->e = e;
	b->g = g;
	list_init(&b->waiting);
	list_init(&b->discovers);
	list_init(&b->owned);
	list_init(&b->soon);
	uv_timer_init(e->loop, &b->gate_timer);
	uv_timer_init(e->loop, &b->soon_timer);
	uv_timer_init(e->loop, &b->probe_timer);
	b->gate_timer.data = b;
	b->soon_timer.data = b;
	b->probe_timer.data = b;
	b->handles_open = 3;
	rc = graph_url_base(g->base_url, &b->base, err);
	if (rc == 0)
		rc = http_client_new(e->loop, &ho, &b->http, err);
	if (rc == 0)
		rc = open_token(b, err);
	if (rc == 0)
		rc = graph_notify_open(b, err);
	if (rc < 0) {
		graph_free(b);
		return rc;
	}
	log_info("graph: tenant %s, %s, %s", g->tenant, b->base, cfg_graph_mode_name(g->mode));
	b->gc = (struct cfg_graph){
		.mode = g->mode,
		.delta_interval_usec = g->delta_interval_usec,
		.renew_before_usec = g->renew_before_usec,
		.subscription_usec = g->subscription_usec,
		.concurrency = g->concurrency,
		.notify_url = g->notify_url != NULL ? xstrdup(g->notify_url) : NULL,
	};
	b->g = &b->gc;
	*out = b;
	return 0;
}

static bool graph_pushes(const struct sync_backend *b)
{
	return b->g->mode == CFG_GRAPH_NOTIFY;
}

static int64_t graph_poll_interval(const struct sync_backend *b)
{
	return b->g->delta_interval_usec;
}

static void graph_mb_init(struct sync_backend *b, struct mb *mb)
{
	mb->bmb = xcalloc(1, sizeof(*mb->bmb));
	mb->bmb->mb = mb;
}

static bool graph_cancel(struct sync_backend *b, struct mb *mb)
{
	struct sync_backend_mb *bm = mb->bmb;
	bool had = bm->call != NULL || list_linked(&bm->soon_link);

	gcall_cancel(bm->call);
	bm->call = NULL;
	list_unlink(&bm->soon_link);
	/* A first round cut short leaves no window; a later one is redone from its link. */
	if (bm->round_first)
		graph_window_clear(bm);
	return had;
}

static void graph_mb_drop(struct sync_backend *b, struct mb *mb)
{
	struct sync_backend_mb *bm = mb->bmb;

	if (bm == NULL)
		return;
	graph_cancel(b, mb);
	gcall_cancel(bm->renew);
	bm->renew = NULL;
	graph_leave_home(b, mb);
	graph_window_clear(bm);
	free(bm);
	mb->bmb = NULL;
}

/* ---- answers without a request ----------------------------------------------------------- */

static void on_soon(uv_timer_t *t)
{
	struct sync_backend *b = t->data;

	while (!list_empty(&b->soon)) {
		struct sync_backend_mb *bm =
			container_of(list_pop(&b->soon), struct sync_backend_mb, soon_link);
		struct sync_result ok = {.verdict = SYNC_OK, .back_off_ms = -1};
		struct sync_answer a = {.sub_id = GRAPH_DELTA_FEED};

		sync_mb_done(bm->mb, &ok, &a);
	}
}

/* Answers mb's op OK from the loop, soon: delta mode's feed is its rounds, nothing to open or
 * close on the server. */
static int answer_soon(struct sync_backend *b, struct mb *mb)
{
	list_append(&b->soon, &mb->bmb->soon_link);
	uv_timer_start(&b->soon_timer, on_soon, 0, 0);
	return 0;
}

static int graph_subscribe_op(struct sync_backend *b, struct mb *mb, struct err *err)
{
	return graph_pushes(b) ? graph_subscribe(b, mb, err) : answer_soon(b, mb);
}

static int graph_unsubscribe_op(struct sync_backend *b, struct mb *mb, struct err *err)
{
	return graph_pushes(b) ? graph_unsubscribe(b, mb, err) : answer_soon(b, mb);
}

static void graph_stop(struct sync_backend *b)
{
	b->stopping = true;
}

static void graph_stats(const struct sync_backend *b, struct sync_stats *st)
{
	struct oauth_status os;

	oauth_status(b->oauth, &os);
	st->graph_requests += b->st.requests;
	st->graph_throttled += b->st.throttled;
	st->graph_notifications += b->st.notifications;
	st->graph_bad_notifications += b->st.bad_notifications;
	st->token_refreshes_ok += os.refreshes_ok;
	st->token_refreshes_failed += os.refreshes_failed;
}

static size_t graph_groups(const struct sync_backend *b, struct sync_group_info **out,
                           size_t *backing_off)
{
	*out = NULL;
	return 0;
}

const struct sync_backend_ops sync_graph_backend = {
	.name = "graph",
	.pushes = graph_pushes,
	.poll_interval_usec = graph_poll_interval,
	.open = graph_open,
	.free = graph_free,
	.mb_init = graph_mb_init,
	.mb_drop = graph_mb_drop,
	.discover = graph_discover,
	.subscribe = graph_subscribe_op,
	.unsubscribe = graph_unsubscribe_op,
	.read = graph_read,
	.read_more = graph_read_more,
	.poll = graph_poll,
	.cancel = graph_cancel,
	.feed_opened = graph_feed_opened,
	.feed_closed = graph_feed_closed,
	.resume = graph_resume,
	.leave_home = graph_leave_home,
	.stop = graph_stop,
	.stats = graph_stats,
	.groups = graph_groups,
};
