/* SPDX-License-Identifier: MIT */
/*
 * check-graph-call.c: one Microsoft Graph call of `calsync check`, on the HTTP client the Graph
 * backend uses (http/http-client.h), run to completion on check's private libuv loop; its
 * reading is the backend's (graph_error_classify). A throttled answer (429, or a 5xx with
 * Retry-After) is noted and retried once after its Retry-After, as for EWS (check-call.c).
 * Also the graph-throttle step that reports what was seen.
 */
#include "cli/check-int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/xalloc.h"
#include "config/config.h"

/* A throttled answer is retried once, after its Retry-After (capped), else after 1 s. */
#define CHECK_GRAPH_MAX_BACK_OFF_MS     10000
#define CHECK_GRAPH_DEFAULT_BACK_OFF_MS 1000

/* Exchange Online's limits for an application (Graph's throttling docs, "Outlook service
 * limits"): per application and mailbox. */
#define EXO_CONCURRENT_PER_MAILBOX 4
#define EXO_REQUESTS_PER_10_MIN    "10,000"

void check_ganswer_clear(struct ganswer *a)
{
	free(a->body);
	memset(a, 0, sizeof(*a));
}

struct gpending {
	bool done;
	struct ganswer *a;
};

static void on_done(void *ctx, struct http_call *call, const struct http_response *r)
{
	struct gpending *p = ctx;
	struct ganswer *a = p->a;

	(void)call;
	a->rc = r->rc;
	a->status = r->rc == 0 ? r->status : 0;
	a->body = xmemdup(r->body, r->body_len);
	a->body_len = r->body_len;
	(void)snprintf(a->content_type, sizeof(a->content_type), "%s",
	               r->content_type != NULL ? r->content_type : "");
	a->retry_after_ms = r->retry_after_ms;
	a->elapsed_usec = r->elapsed_usec;
	if (r->rc != 0)
		(void)snprintf(a->why, sizeof(a->why), "%s", r->err.msg);
	p->done = true;
}

/* The verdict of a, as the Graph backend reads an answer. */
static void read_verdict(struct ganswer *a, enum graph_req req)
{
	struct graph_answer ga = {
		.req = req,
		.status = a->status,
		.retry_after_ms = a->retry_after_ms,
		.body = a->body,
		.body_len = a->body_len,
		.transport_msg = a->why,
	};

	graph_error_classify(&ga, &a->v);
}

static void send_one(struct check *c, enum graph_req req, enum http_method method, const char *url,
                     const char *body, const char *prefer, struct ganswer *a)
{
	struct http_header h[2] = {{"Accept", "application/json"}, {"Prefer", prefer}};
	struct http_request rq = {
		.method = method,
		.url = url,
		.headers = h,
		.n_headers = prefer != NULL ? 2 : 1,
		.body = body,
		.body_len = body != NULL ? strlen(body) : 0,
		.bearer_token = c->g->token,
	};
	struct gpending p = {.a = a};
	struct http_call *call = NULL;
	struct err err = {0};
	int rc;

	memset(a, 0, sizeof(*a));
	a->retry_after_ms = -1;
	if (http_send(c->g->http, &rq, on_done, &p, &call, &err) < 0) {
		a->rc = err.code < 0 ? err.code : -EIO;
		(void)snprintf(a->why, sizeof(a->why), "%s", err.msg);
	} else if ((rc = check_wait(c, &p.done, CHECK_WAIT_USEC)) < 0) {
		http_call_cancel(call); /* on_done never ran: a is as memset above */
		a->rc = rc;
		(void)snprintf(a->why, sizeof(a->why), "%s",
		               rc == -ETIMEDOUT ? "no answer within the check's deadline"
		                                : "the HTTP client stopped without an answer");
	}
	if (a->body == NULL)
		a->body = xstrdup("");
	check_tame(a->why);
	read_verdict(a, req);
}

static void note_first(struct gthrottle *t, const char *what, const char *op, const char *mailbox)
{
	if (t->first[0] == '\0')
		(void)snprintf(t->first, sizeof(t->first), "%s on %s%s%s", what, op,
		               mailbox != NULL ? " for " : "", mailbox != NULL ? mailbox : "");
}

/* Notes a throttling answer; returns the pause before one retry, or -1 when a is none. */
static int64_t note(struct check *c, const char *op, const char *mailbox, const struct ganswer *a)
{
	struct gthrottle *t = &c->g->thr;
	const struct graph_verdict *v = &a->v;
	char what[128];
	int64_t back;

	if (a->status != 0)
		c->g->answers++;
	if (v->cls != GRAPH_THROTTLED)
		return -1;
	if (a->status == 429)
		t->n429++;
	else
		t->n5xx++;
	if (v->back_off_ms > t->max_retry_after_ms)
		t->max_retry_after_ms = v->back_off_ms;
	(void)snprintf(what, sizeof(what), "HTTP %ld%s%s", a->status, v->code[0] ? " " : "",
	               v->code);
	note_first(t, what, op, mailbox);
	back = v->back_off_ms >= 0 ? v->back_off_ms : CHECK_GRAPH_DEFAULT_BACK_OFF_MS;
	return back > CHECK_GRAPH_MAX_BACK_OFF_MS ? CHECK_GRAPH_MAX_BACK_OFF_MS : back;
}

void check_graph_call(struct check *c, const char *op, const char *mailbox, enum graph_req req,
                      enum http_method method, const char *url, const char *body,
                      const char *prefer, struct ganswer *a)
{
	char first[sizeof(a->v.code) + 16];
	int64_t back;

	send_one(c, req, method, url, body, prefer, a);
	back = note(c, op, mailbox, a);
	if (back < 0)
		return;
	(void)snprintf(first, sizeof(first), "%s",
	               a->v.code[0] != '\0' ? a->v.code
	               : a->status == 429   ? "HTTP 429"
	                                    : "HTTP 5xx");
	check_ganswer_clear(a);
	uv_sleep((unsigned)back);
	send_one(c, req, method, url, body, prefer, a);
	(void)note(c, op, mailbox, a);
	(void)snprintf(a->retried, sizeof(a->retried), " (after %s, retried %" PRId64 " ms later)",
	               first, back);
}

void check_graph_note_token_busy(struct check *c, const char *msg)
{
	struct gthrottle *t = &c->g->thr;

	if (strstr(msg, "HTTP 429") != NULL)
		t->n429++;
	else if (strstr(msg, "HTTP 5") != NULL)
		t->n5xx++;
	else
		return;
	note_first(t, strstr(msg, "HTTP 429") != NULL ? "HTTP 429" : "HTTP 5xx",
	           "the token request", NULL);
}

/* ---- graph-throttle -------------------------------------------------------------------------- */

void check_graph_throttling(struct check *c)
{
	const struct gthrottle *t = &c->g->thr;
	struct fix f = {0};
	char after[64] = "";

	if (t->n429 == 0 && t->n5xx == 0) {
		if (c->g->answers == 0) {
			check_skip(c, "graph-throttle", "no Graph request was answered");
			return;
		}
		check_step_add(
			c, "graph-throttle", NULL, ST_OK, NULL,
			"no throttling answer from Microsoft Graph (Exchange Online allows an "
			"application %d requests at a time and %s per 10 minutes per "
			"mailbox)",
			EXO_CONCURRENT_PER_MAILBOX, EXO_REQUESTS_PER_10_MIN);
		return;
	}
	if (t->max_retry_after_ms >= 0)
		(void)snprintf(after, sizeof(after), " (Retry-After up to %" PRId64 " s)",
		               (t->max_retry_after_ms + 999) / 1000);
	check_fix_say(
		&f,
		"Nothing in the tenant raises Exchange Online's limits for an application (%d requests "
		"at a time and %s per 10 minutes per mailbox). calsync sends a mailbox at most %d "
		"requests at a time and waits as Retry-After asks, so it catches up on its own. If "
		"it persists, another program may be using the same app registration (%s), or lower "
		"<graph concurrency=\"...\"> (now %" PRId64 ").",
		EXO_CONCURRENT_PER_MAILBOX, EXO_REQUESTS_PER_10_MIN, EXO_CONCURRENT_PER_MAILBOX,
		c->cfg->graph->client_id, c->cfg->graph->concurrency);
	check_step_add(c, "graph-throttle", NULL, ST_WARN, &f,
	               "throttled (first: %s): HTTP 429 %u time%s, a 5xx with Retry-After %u "
	               "time%s%s",
	               t->first, t->n429, t->n429 == 1 ? "" : "s", t->n5xx, t->n5xx == 1 ? "" : "s",
	               after);
}
