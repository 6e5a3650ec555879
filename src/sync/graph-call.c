/* SPDX-License-Identifier: MIT */
/*
 * graph-call.c: one Microsoft Graph request (graph-backend-int.h). A call waits for one of
 * <graph concurrency> slots and for the app-wide throttle gate (a 429 that names no mailbox's
 * limit holds every request until its Retry-After), then for a token, then goes out. Its answer
 * is classified (graph/graph-error.h); a 401 drops the token and is retried once with a new one.
 */
#include "sync/graph-backend-int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "http/oauth.h"

struct gcall *gcall_new(struct sync_backend *b, enum graph_req req, enum http_method m,
                        const char *url, gcall_fn *done, void *ctx)
{
	struct gcall *c = xcalloc(1, sizeof(*c));

	c->b = b;
	c->req = req;
	c->method = m;
	c->url = xstrdup(url);
	c->done = done;
	c->ctx = ctx;
	return c;
}

void gcall_free(struct gcall *c)
{
	if (c == NULL)
		return;
	if (c->in_slot)
		c->b->in_slots--;
	list_unlink(&c->own_link);
	free(c->url);
	free(c->body);
	free(c->prefer);
	if (c->token != NULL)
		explicit_bzero(c->token, strlen(c->token));
	free(c->token);
	free(c);
}

void gcall_cancel(struct gcall *c)
{
	struct sync_backend *b;

	if (c == NULL)
		return;
	b = c->b;
	list_unlink(&c->link);
	if (c->ow != NULL)
		oauth_waiter_cancel(c->ow);
	if (c->http != NULL)
		http_call_cancel(c->http);
	gcall_free(c);
	if (!b->freeing)
		graph_pump_soon(b);
}

/* Ends c with a verdict made here (no HTTP answer): the token could not be had. */
static void end_without_answer(struct gcall *c, enum graph_class cls, const char *msg)
{
	struct graph_verdict v = {.cls = cls, .back_off_ms = -1, .reason = msg};

	(void)snprintf(v.msg, sizeof(v.msg), "%s", msg);
	c->done(c, NULL, &v);
}

static void on_http_done(void *ctx, struct http_call *call, const struct http_response *r);

static void send_with(struct gcall *c, const char *token)
{
	struct sync_backend *b = c->b;
	struct http_header h[2];
	size_t nh = 0;
	struct err err = {0};
	struct http_request rq = {
		.method = c->method,
		.url = c->url,
		.body = c->body,
		.body_len = c->body != NULL ? strlen(c->body) : 0,
		.bearer_token = token,
	};

	if (c->prefer != NULL)
		h[nh++] = (struct http_header){"Prefer", c->prefer};
	rq.headers = h;
	rq.n_headers = nh;
	free(c->token);
	c->token = xstrdup(token);
	c->started_usec = clock_now_usec();
	b->st.requests++;
	if (http_send(b->http, &rq, on_http_done, c, &c->http, &err) < 0) {
		c->http = NULL;
		end_without_answer(c, GRAPH_TRANSIENT, err.msg);
	}
}

static void on_token(void *ctx, int rc, const char *token, const struct err *err)
{
	struct gcall *c = ctx;

	c->ow = NULL;
	if (rc < 0) {
		c->b->st.token_errors++;
		if (oauth_error_is_permanent(rc))
			graph_token_refused(c->b);
		end_without_answer(c,
		                   oauth_error_is_permanent(rc) ? GRAPH_ACCOUNT : GRAPH_TRANSIENT,
		                   err != NULL ? err->msg : "no token");
		return;
	}
	graph_token_back(c->b);
	send_with(c, token);
}

/* c holds a slot: get its token and send it. */
static void go(struct gcall *c)
{
	const char *token = NULL;
	struct err err = {0};
	int rc = oauth_get(c->b->oauth, on_token, c, &token, &c->ow, &err);

	if (rc == 1) {
		c->ow = NULL;
		graph_token_back(c->b);
		send_with(c, token);
	} else if (rc < 0) {
		c->ow = NULL;
		c->b->st.token_errors++;
		if (oauth_error_is_permanent(rc))
			graph_token_refused(c->b);
		end_without_answer(
			c, oauth_error_is_permanent(rc) ? GRAPH_ACCOUNT : GRAPH_TRANSIENT, err.msg);
	}
}

static void on_gate(uv_timer_t *t)
{
	graph_pump(t->data);
}

void graph_pump_soon(struct sync_backend *b)
{
	int64_t wait = b->gate_until_usec - clock_now_usec();

	uv_timer_start(&b->gate_timer, on_gate, wait > 0 ? eng_usec_to_ms(wait) : 0, 0);
}

void graph_pump(struct sync_backend *b)
{
	int64_t now = clock_now_usec();

	if (b->gate_until_usec > now) {
		uv_timer_start(&b->gate_timer, on_gate, eng_usec_to_ms(b->gate_until_usec - now),
		               0);
		return;
	}
	while (!list_empty(&b->waiting) && b->in_slots < (size_t)b->g->concurrency) {
		struct gcall *c = container_of(list_pop(&b->waiting), struct gcall, link);

		c->in_slot = true;
		b->in_slots++;
		go(c);
	}
}

void gcall_start(struct gcall *c)
{
	list_append(&c->b->waiting, &c->link);
	graph_pump_soon(c->b);
}

static void on_http_done(void *ctx, struct http_call *call, const struct http_response *r)
{
	struct gcall *c = ctx;
	struct sync_backend *b = c->b;
	struct graph_verdict v;
	struct graph_answer a = {
		.req = c->req,
		.status = r->rc == 0 ? r->status : 0,
		.retry_after_ms = r->retry_after_ms,
		.body = r->body,
		.body_len = r->body_len,
		.transport_msg = r->rc != 0 ? r->err.msg : NULL,
	};

	c->http = NULL;
	graph_error_classify(&a, &v);
	if (v.cls == GRAPH_TOKEN && !c->retried) {
		/* The token was refused (expired early, revoked): a new one, once. */
		c->retried = true;
		oauth_invalidate(b->oauth, c->token);
		go(c);
		return;
	}
	if (v.cls == GRAPH_ACCOUNT && v.status == 403) {
		/* The token's roles are those consented when it was issued: after an admin grants
		 * consent, only a new token carries them. */
		oauth_invalidate(b->oauth, c->token);
	}
	if (v.cls == GRAPH_THROTTLED) {
		b->st.throttled++;
		sync_note_throttled(b->e);
		/* An app-wide limit holds every request, not only this mailbox's. */
		if (strcmp(v.code, "ApplicationThrottled") == 0 && v.back_off_ms > 0)
			b->gate_until_usec = clock_now_usec() + v.back_off_ms * 1000;
	}
	c->done(c, r, &v);
	if (!b->freeing)
		graph_pump(b);
}

void graph_result(const struct graph_verdict *v, struct sync_result *r)
{
	*r = (struct sync_result){.back_off_ms = -1};
	(void)snprintf(r->msg, sizeof(r->msg), "%s%s%s", v->msg, v->fix != NULL ? "; " : "",
	               v->fix != NULL ? v->fix : "");
	switch (v->cls) {
	case GRAPH_OK:
		r->verdict = SYNC_OK;
		if (v->flags & GRAPH_VF_ALREADY_GONE)
			r->flags |= SYNC_RF_GONE;
		break;
	case GRAPH_THROTTLED:
		r->verdict = SYNC_THROTTLED;
		r->back_off_ms = v->back_off_ms;
		break;
	case GRAPH_TOKEN:
		r->verdict = SYNC_ACCOUNT_PERMANENT;
		break;
	case GRAPH_ACCOUNT:
		/* Graph said 403 for this mailbox (the app lacks Calendars.Read, or an access
		 * policy leaves the mailbox out), or Entra ID refused the app's credential (no
		 * token): park it with the reason; a token had again unparks it at once. */
		r->verdict = SYNC_MAILBOX_PERMANENT;
		break;
	case GRAPH_MAILBOX:
		/* A mailbox that Graph does not serve (back on premises) is found again at
		 * once; one that does not exist is parked. */
		r->verdict = (v->flags & GRAPH_VF_REHOME) ? SYNC_TRANSIENT : SYNC_MAILBOX_PERMANENT;
		break;
	case GRAPH_GAP:
		r->verdict = SYNC_GAP;
		r->flags |= SYNC_RF_DROP_CURSOR;
		break;
	case GRAPH_FEED_LOST:
		r->verdict = SYNC_FEED_LOST;
		break;
	case GRAPH_REFUSED:
		r->verdict = SYNC_REFUSED;
		break;
	case GRAPH_TRANSIENT:
	default:
		r->verdict = SYNC_TRANSIENT;
		break;
	}
	if (v->flags & GRAPH_VF_REHOME)
		r->flags |= SYNC_RF_REDISCOVER;
	if (v->flags & GRAPH_VF_RESYNC)
		r->flags |= SYNC_RF_RESYNC;
}

const char *graph_user(const struct mb *mb)
{
	return mb->ews_url != NULL ? mb->ews_url : mb->smtp;
}

static void on_probe_token(void *ctx, int rc, const char *token, const struct err *err)
{
	struct sync_backend *b = ctx;

	b->probe = NULL;
	if (rc == 0)
		graph_token_back(b);
}

static void on_probe(uv_timer_t *t)
{
	struct sync_backend *b = t->data;
	const char *token = NULL;
	struct err err = {0};
	int rc;

	if (!b->token_down || b->probe != NULL || b->stopping)
		return;
	rc = oauth_get(b->oauth, on_probe_token, b, &token, &b->probe, &err);
	if (rc == 1) {
		b->probe = NULL;
		graph_token_back(b);
	} else if (rc < 0) {
		b->probe = NULL;
	}
}

void graph_token_refused(struct sync_backend *b)
{
	if (b->token_down)
		return;
	b->token_down = true;
	log_err("graph: Entra ID refuses the app's credential; the Graph mailboxes are parked until "
	        "a token is had again (tried every %d s)",
	        (int)(GRAPH_TOKEN_PROBE_USEC / 1000000));
	uv_timer_start(&b->probe_timer, on_probe, GRAPH_TOKEN_PROBE_USEC / 1000,
	               GRAPH_TOKEN_PROBE_USEC / 1000);
}

void graph_token_back(struct sync_backend *b)
{
	if (!b->token_down)
		return;
	b->token_down = false;
	uv_timer_stop(&b->probe_timer);
	log_info("graph: a token again: the parked Graph mailboxes retry now");
	for (size_t i = 0; i < b->e->n_mbs; i++) {
		struct mb *mb = b->e->mbs[i];

		if (mb->bmb != NULL && mb_bs(mb) == b)
			sync_mb_unpark(mb);
	}
}
