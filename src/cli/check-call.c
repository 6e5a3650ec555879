/* SPDX-License-Identifier: MIT */
/*
 * check-call.c: one EWS call of `calsync check`, on the daemon's transport (ews-transport.h)
 * and response reader (ews-response.h), run to completion on check's private libuv loop: the
 * transport's callback sets a flag the loop waits for. A throttled answer is retried once.
 * A streaming call (GetStreamingEvents) runs until its first envelope.
 */
#include "cli/check-int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/cs-limits.h"
#include "base/xalloc.h"
#include "config/config.h"
#include "ews/ews-stream.h"

void check_answer_clear(struct answer *a)
{
	ews_response_clear(&a->resp);
	free(a->cookie);
	memset(a, 0, sizeof(*a));
}

/* After the verdict is read: the first message, whether an EWS answer was read, and why not. */
static void answer_index(struct answer *a)
{
	const struct ews_verdict *v = &a->v;

	a->answered = v->origin != EWS_VERDICT_TRANSPORT && v->origin != EWS_VERDICT_UNREADABLE;
	if (a->answered && !a->resp.is_fault && a->resp.n_messages > 0)
		a->msg = &a->resp.messages[0];
	if (v->origin == EWS_VERDICT_UNREADABLE)
		(void)snprintf(a->why, sizeof(a->why), "the answer cannot be read: %s", v->msg);
	else
		(void)snprintf(a->why, sizeof(a->why), "%s", v->msg);
}

void check_answer_fail(struct answer *a, int rc, long http_status, const char *msg)
{
	struct ews_verdict_in in = {
		.rc = rc < 0 ? rc : -EIO,
		.http_status = http_status,
		.transport_msg = msg,
	};

	ews_verdict_read(&in, &a->v);
	answer_index(a);
}

/* One envelope of a stream, as an answer that arrived with HTTP 200. */
static void answer_of_envelope(struct answer *a, const char *xml, size_t len)
{
	struct err perr = {0};
	struct ews_verdict_in in = {.http_status = 200};

	if (ews_response_parse(xml, len, &a->resp, &perr) == 0)
		in.resp = &a->resp;
	else
		in.parse_msg = perr.msg;
	ews_verdict_read(&in, &a->v);
	answer_index(a);
}

static void answer_fill(struct answer *a, const struct ews_result *r)
{
	a->elapsed_usec = r->elapsed_usec;
	if (r->backend_cookie != NULL)
		a->cookie = xstrdup(r->backend_cookie);
	/* struct ews_result carries no Retry-After yet: the verdict reads none. */
	ews_verdict_of_result(r, NULL, &a->resp, &a->v);
	answer_index(a);
}

struct pending {
	bool done;
	struct answer *a;
};

static void on_call_done(void *ctx, struct ews_call *call, const struct ews_result *r)
{
	struct pending *p = ctx;

	(void)call;
	answer_fill(p->a, r);
	p->done = true;
}

/* What a failed check_wait() means for an answer. */
static const char *wait_failed(int rc)
{
	return rc == -ETIMEDOUT ? "no answer within the check's deadline"
	                        : "the transport stopped without an answer";
}

/* POSTs c->req with o and waits for the answer. */
static void post(struct check *c, const struct ews_call_opts *o, struct answer *a)
{
	struct pending p = {.a = a};
	struct ews_call *call = NULL;
	struct err err = {0};
	struct ews_call_opts oo = *o;
	int rc;

	memset(a, 0, sizeof(*a));
	if (oo.bearer_token == NULL)
		oo.bearer_token = c->ews_token;
	if (ews_transport_post(c->t, &oo, c->req.data, c->req.len, on_call_done, &p, &call, &err) <
	    0) {
		check_answer_fail(a, err.code, 0, err.msg);
		return;
	}
	rc = check_wait(c, &p.done, CHECK_WAIT_USEC);
	if (rc < 0) {
		ews_transport_cancel(call);
		check_answer_fail(a, rc, 0, wait_failed(rc));
	}
}

/* post() and note throttling; a throttled answer is retried once after its back-off. */
void check_call(struct check *c, const char *op, const char *mailbox, const struct ews_call_opts *o,
                struct answer *a)
{
	char first[sizeof(a->v.code)];
	int64_t back;

	post(c, o, a);
	back = check_throttle_note(c, op, mailbox, a);
	if (back < 0)
		return;
	(void)snprintf(first, sizeof(first), "%s",
	               ews_verdict_is(&a->v, "http-503") ? "HTTP 503" : a->v.code);
	check_answer_clear(a);
	uv_sleep((unsigned)back);
	post(c, o, a);
	(void)check_throttle_note(c, op, mailbox, a);
	(void)snprintf(a->retried, sizeof(a->retried), " (after %s, retried %" PRId64 " ms later)",
	               first, back);
}

struct ews_header check_header(const struct check *c, const char *impersonate, bool tz_utc)
{
	return (struct ews_header){
		.version = c->version,
		.impersonate = impersonate,
		.id_type = c->cfg->id_type,
		.tz_utc = tz_utc,
	};
}

bool check_answer_ok(const struct answer *a)
{
	return a->v.cls == EWS_ERR_NONE && a->msg != NULL;
}

/* GetStreamingEvents until its first envelope. */
struct stream_probe {
	struct ews_call *call;
	struct ews_stream *framer;
	bool done;
	bool got;
	struct answer first; /* the first envelope */
	struct answer end;   /* the done callback's, when the call ended without one */
	int64_t start_usec;
	int64_t first_usec;
};

static int sp_on_envelope(void *ctx, const char *xml, size_t len, size_t offset)
{
	struct stream_probe *sp = ctx;

	(void)offset;
	if (sp->got)
		return -ECANCELED; /* cancelled below: stop the framer too */
	sp->got = true;
	sp->first_usec = clock_now_usec();
	answer_of_envelope(&sp->first, xml, len);
	/* Enough: cancelling inside the chunk callback is allowed; done then never fires. */
	ews_transport_cancel(sp->call);
	sp->call = NULL;
	sp->done = true;
	return 0;
}

static int sp_on_chunk(void *ctx, const char *data, size_t len, struct err *err)
{
	struct stream_probe *sp = ctx;

	return ews_stream_feed(sp->framer, data, len, err);
}

static void sp_on_done(void *ctx, struct ews_call *call, const struct ews_result *r)
{
	struct stream_probe *sp = ctx;

	(void)call;
	sp->call = NULL;
	sp->done = true;
	if (r->http_status == 200 && r->rc == 0) {
		/* The stream ended (Closed) before a whole envelope came: as good as none. */
		check_answer_fail(&sp->end, -EPROTO, 200,
		                  "the stream ended without a whole envelope");
		return;
	}
	answer_fill(&sp->end, r);
}

/* The first envelope (or the failure) of a stream on sub_id, in *a. */
void check_stream_first(struct check *c, const struct mbx *m, const struct ews_call_opts *base,
                        struct answer *a, int64_t *out_first_ms)
{
	struct stream_probe sp = {0};
	struct ews_call_opts o = *base;

	if (o.bearer_token == NULL)
		o.bearer_token = c->ews_token;
	struct err err = {0};
	int rc;

	o.chunk_fn = sp_on_chunk;
	o.idle_timeout_usec = CHECK_STREAM_IDLE_USEC;
	o.timeout_usec = CHECK_STREAM_CAP_USEC;
	sp.framer = ews_stream_new(EWS_MAX_ENVELOPE, sp_on_envelope, &sp);
	sp.start_usec = clock_now_usec();
	memset(a, 0, sizeof(*a));
	if (ews_transport_post(c->t, &o, c->req.data, c->req.len, sp_on_done, &sp, &sp.call, &err) <
	    0) {
		check_answer_fail(a, err.code, 0, err.msg);
	} else if ((rc = check_wait(c, &sp.done, CHECK_WAIT_USEC)) < 0) {
		ews_transport_cancel(sp.call);
		check_answer_fail(a, rc, 0, wait_failed(rc));
	} else if (sp.got) {
		*a = sp.first;
		memset(&sp.first, 0, sizeof(sp.first));
		*out_first_ms = (sp.first_usec - sp.start_usec) / USEC_PER_MSEC;
	} else {
		*a = sp.end;
		memset(&sp.end, 0, sizeof(sp.end));
	}
	ews_stream_free(sp.framer);
	check_answer_clear(&sp.first);
	check_answer_clear(&sp.end);
	(void)check_throttle_note(c, "GetStreamingEvents", m->smtp, a);
}
