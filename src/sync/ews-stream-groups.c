/* SPDX-License-Identifier: MIT */
/*
 * ews-stream-groups.c: EWS streaming groups and their GetStreamingEvents connections (the
 * feed's delivery, backend.h): joining and leaving a group, connecting, reading the envelopes of
 * a stream, retiring a replaced connection, reconnecting after errors.
 */
#include "sync/ews-backend-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "config/config.h"
#include "ews/ews-errors.h"
#include "ews/ews-stream.h"

static void group_connect(struct group *g);
static void group_disconnect(struct group *g);

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

static void group_free(struct group *g)
{
	group_disconnect(g);
	g->closing = true;
	uv_close((uv_handle_t *)&g->timer, on_group_closed);
}

static void group_unlink(struct group *g)
{
	list_unlink(&g->link);
	g->b->n_groups--;
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
		sync_ews_call_cancel(c->call);
		c->call = NULL;
		g->b->streams_open--;
	}
	ews_stream_free(c->framer);
	c->framer = NULL;
	if (c->retiring) {
		list_unlink(&c->link);
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
	list_push(&g->retiring, &c->link);
	uv_timer_start(&c->timer, on_retire_timer, eng_usec_to_ms(STREAM_RETIRE_USEC), 0);
}

/* Closes every connection of the group at once. */
static void group_disconnect(struct group *g)
{
	if (g->cur)
		conn_free(g->cur);
	for (struct list_node *n; (n = list_first(&g->retiring)) != NULL;)
		conn_free(container_of(n, struct conn, link));
}

static void on_group_timer(uv_timer_t *t)
{
	group_connect(t->data);
}

static void group_schedule(struct group *g, int64_t delay_usec)
{
	if (g->closing || sync_engine_stopping(g->e))
		return;
	uv_timer_start(&g->timer, on_group_timer, eng_usec_to_ms(delay_usec), 0);
}

void sync_ews_group_join(struct sync_backend *b, struct mb *mb)
{
	struct sync_engine *e = b->e;
	struct group *g = NULL;
	const char *key = mb->grouping ? mb->grouping : mb_url(mb);
	struct list_node *pos;

	list_for_each (pos, &b->groups) {
		struct group *it = container_of(pos, struct group, link);

		if (strcmp(it->key, key) == 0 && it->n_members < SYNC_GROUP_MAX) {
			g = it;
			break;
		}
	}
	if (g == NULL) {
		g = xcalloc(1, sizeof(*g));
		g->b = b;
		g->e = e;
		g->key = xstrdup(key);
		g->url = xstrdup(mb_url(mb));
		g->anchor = xstrdup(mb->smtp);
		g->members = xcalloc(SYNC_GROUP_MAX, sizeof(*g->members));
		list_init(&g->retiring);
		uv_timer_init(e->loop, &g->timer);
		g->timer.data = g;
		list_push(&b->groups, &g->link);
		b->n_groups++;
	}
	mb->bmb->group = g;
	mb->bmb->group_slot = g->n_members;
	g->members[g->n_members++] = mb;
}

void sync_ews_group_leave(struct mb *mb)
{
	struct sync_backend_mb *bm = mb->bmb;
	struct group *g = bm->group;

	if (g == NULL)
		return;
	g->members[bm->group_slot] = g->members[--g->n_members];
	g->members[bm->group_slot]->bmb->group_slot = bm->group_slot;
	bm->group = NULL;
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
void sync_ews_group_call_opts(const struct group *g, struct ews_call_opts *o)
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
	delay = g->failures == 1 ? 0 : sync_backoff_usec(e, g->failures - 1);
	{
		char what[64];

		snprintf(what, sizeof(what), "stream %.56s", g->key);
		sync_note_error(e, NULL, what, why);
	}
	log_warn("stream %s (anchor %s): %s; reconnecting in %.1f s", g->key, g->anchor, why,
	         (double)delay / 1e6);
	if (reread)
		for (size_t i = 0; i < g->n_members; i++)
			if (g->members[i]->sub_id)
				sync_mb_gap(g->members[i], false);
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
				sync_mb_gap(mb, true);
			continue;
		}
		log_info("%s: stream: %s for its subscription", mb->smtp, m->code ? m->code : "?");
		/* Leaving the group happens when Autodiscover starts, never inside the stream's
		 * own callback (that could free the group and its framer under us). */
		sync_mb_feed_lost(mb,
		                  ((flags & EWS_ERRF_DROP_WATERMARK) ? SYNC_RF_DROP_CURSOR : 0) |
		                          ((flags & EWS_ERRF_REDISCOVER) ? SYNC_RF_REDISCOVER : 0));
	}
}

static int on_stream_envelope(void *ctx, const char *xml, size_t len, size_t offset)
{
	struct conn *c = ctx;
	struct group *g = c->g;
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
				sync_mb_changed(mb);
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
	g->b->streams_open--;
	if (r->rc == 0 && r->http_status == 200 && ews_stream_finish(c->framer, &err) < 0)
		closed = false;
	eng_count_op(e, SYNC_OP_GET_STREAMING_EVENTS, r->rc == 0 && r->http_status == 200 && closed,
	             r->elapsed_usec);
	conn_free(c);
	if (sync_engine_stopping(e) || retiring)
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
			sync_note_throttled(e);
			g->failures++;
			group_schedule(g, back_off_ms > 0 ? back_off_ms * 1000
			                                  : sync_backoff_usec(e, g->failures));
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

	if (sync_engine_stopping(e) || g->closing)
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
		&h, ids, n, (unsigned)(e->cfg->stream_timeout_usec / (60 * USEC_PER_SEC)),
		&g->b->req, &err);
	if (rc < 0) {
		log_err("stream %s: cannot write GetStreamingEvents: %s", g->key, err.msg);
		return;
	}
	sync_ews_group_call_opts(g, &o);
	o.chunk_fn = on_stream_chunk;
	o.timeout_usec = e->cfg->stream_timeout_usec + 90 * USEC_PER_SEC;
	o.idle_timeout_usec = e->cfg->stream_watchdog_usec;
	c = xcalloc(1, sizeof(*c));
	c->g = g;
	uv_timer_init(e->loop, &c->timer);
	c->timer.data = c;
	c->framer = ews_stream_new(EWS_MAX_ENVELOPE, on_stream_envelope, c);
	g->cur = c;
	rc = sync_ews_call(g->b, &o, g->b->req.data, g->b->req.len, on_stream_done, c, &c->call,
	                   &err);
	if (rc < 0) {
		c->call = NULL;
		conn_free(c);
		log_err("stream %s: %s", g->key, err.msg);
		g->failures++;
		group_schedule(g, sync_backoff_usec(e, g->failures));
		return;
	}
	g->b->streams_open++;
	log_debug("stream %s: connecting %zu subscriptions as %s", g->key, n, h.impersonate);
}

/* ---- the feed's delivery (backend.h) ----------------------------------------------------- */

void sync_ews_feed_opened(struct sync_backend *b, struct mb *mb)
{
	struct sync_backend_mb *bm = mb->bmb;
	struct group *g = bm->group;

	if (g && g->cookie == NULL && bm->cookie) {
		g->cookie = bm->cookie;
		bm->cookie = NULL;
	}
	if (g) {
		g->dirty = true;
		group_schedule(g, GROUP_SETTLE_USEC);
	}
}

void sync_ews_feed_closed(struct sync_backend *b, struct mb *mb)
{
	struct group *g = mb->bmb->group;

	if (g) {
		g->dirty = true;
		group_schedule(g, GROUP_SETTLE_USEC);
	}
}

void sync_ews_resume(struct sync_backend *b, struct mb *mb)
{
	if (!sync_ews_streaming(b->e) || mb->bmb->group != NULL)
		return;
	sync_ews_group_join(b, mb);
	mb->bmb->group->dirty = true;
	group_schedule(mb->bmb->group, 0);
}

bool sync_ews_leave_home(struct sync_backend *b, struct mb *mb)
{
	if (mb->bmb->group == NULL)
		return false;
	sync_ews_group_leave(mb);
	return true;
}

void sync_ews_stop(struct sync_backend *b)
{
	struct list_node *pos;

	list_for_each (pos, &b->groups) {
		struct group *g = container_of(pos, struct group, link);

		uv_timer_stop(&g->timer);
		group_disconnect(g);
	}
}

void sync_ews_groups_free(struct sync_backend *b)
{
	for (struct list_node *n; (n = list_pop(&b->groups)) != NULL;) {
		struct group *g = container_of(n, struct group, link);

		group_disconnect(g);
		group_free(g);
	}
}

void sync_ews_stats(const struct sync_backend *b, struct sync_stats *st)
{
	st->groups = b->n_groups;
	st->streams_open = b->streams_open;
}

size_t sync_ews_groups(const struct sync_backend *b, struct sync_group_info **out,
                       size_t *backing_off)
{
	struct sync_group_info *gi = NULL;
	const struct list_node *pos;
	size_t n = 0;

	list_for_each (pos, &b->groups) {
		const struct group *g = container_of_const(pos, struct group, link);

		*backing_off += g->failures > 0 && g->cur == NULL;
	}
	if (b->n_groups > 0)
		gi = xcalloc(b->n_groups, sizeof(*gi));
	list_for_each (pos, &b->groups) {
		const struct group *g = container_of_const(pos, struct group, link);

		if (n == b->n_groups)
			break;
		snprintf(gi[n].key, sizeof(gi[n].key), "%s", g->key);
		snprintf(gi[n].anchor, sizeof(gi[n].anchor), "%s", g->anchor);
		gi[n].members = g->n_members;
		for (size_t i = 0; i < g->n_members; i++)
			gi[n].subscribed += g->members[i]->sub_id != NULL;
		gi[n].connected = g->cur != NULL && g->cur->connected;
		gi[n].failures = g->failures;
		n++;
	}
	*out = gi;
	return n;
}
