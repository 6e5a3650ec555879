/* SPDX-License-Identifier: MIT */
/*
 * ews-transport-call.c: a call's life after ews_transport_post(): waiting in the queue, oldest
 * first, for a free lane (dispatch, and the queue timer that fails the ones whose time is up),
 * and its end: detached from libcurl, the queue and its lane in one place, its done callback
 * run with its outcome, freed.
 */
#include "ews/ews-transport-int.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>

#include "base/clock.h"
#include "base/log.h"

static void call_unlink(struct ews_call *c)
{
	struct ews_transport *t = c->t;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		t->calls = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	t->n_calls--;
}

void ews_transport_queue_add(struct ews_call *c)
{
	struct ews_transport *t = c->t;

	c->queued = true;
	c->qnext = NULL;
	if (t->queue_tail != NULL)
		t->queue_tail->qnext = c;
	else
		t->queue_head = c;
	t->queue_tail = c;
}

static void queue_remove(struct ews_call *c)
{
	struct ews_transport *t = c->t;
	struct ews_call *prev = NULL;

	for (struct ews_call *p = t->queue_head; p != NULL && p != c; p = p->qnext)
		prev = p;
	if (prev != NULL)
		prev->qnext = c->qnext;
	else
		t->queue_head = c->qnext;
	if (t->queue_tail == c)
		t->queue_tail = prev;
	c->qnext = NULL;
	c->queued = false;
}

/* Takes c out of the multi handle, the wait queue and its lane; conn_ok says whether its
 * lane's connection is still good for an authenticated reuse. */
static void call_detach(struct ews_call *c, bool conn_ok)
{
	if (c->added)
		(void)curl_multi_remove_handle(c->t->multi, c->easy);
	c->added = false;
	if (c->queued)
		queue_remove(c);
	if (c->lane != NULL)
		ews_transport_lane_release(c, conn_ok);
}

/* Removes and frees c. Never inside libcurl (t->in_curl == 0) while it is in the multi. */
void ews_transport_call_destroy(struct ews_call *c)
{
	assert(!c->added || c->t->in_curl == 0);
	/* Removed mid-transfer, libcurl closes the connection: a half-read answer cannot be
	 * reused. */
	call_detach(c, false);
	curl_easy_cleanup(c->easy);
	curl_slist_free_all(c->headers);
	ews_transport_wipe_slist(&c->leg_headers);
	free(c->req);
	ews_ntlm_free(c->ntlm);
	ews_transport_wipe_free(c->challenge);
	ews_transport_wipe_free(c->token);
	buf_free(&c->body);
	call_unlink(c);
	free(c);
}

/*
 * Runs c's done callback with its outcome, then frees c. Outside libcurl only. The lane goes
 * back first, so that a call posted from the callback can reuse its connection.
 */
void ews_transport_call_finish(struct ews_call *c, CURLcode res)
{
	struct ews_transport *t = c->t;
	struct ews_result r = {
		.http_status = c->status,
		.body = c->body.data != NULL ? c->body.data : "",
		.body_len = c->body.len,
		.content_type = c->content_type[0] ? c->content_type : NULL,
		.backend_cookie = c->cookie[0] ? c->cookie : NULL,
		.request_id = c->request_id[0] ? c->request_id : NULL,
		.client_request_id = c->client_request_id,
		.echoed_request_id = c->echoed_id[0] ? c->echoed_id : NULL,
		.be_server = c->be_server[0] ? c->be_server : NULL,
		.cas_error_code = c->cas_error[0] ? c->cas_error : NULL,
		.retry_after = c->retry_after[0] ? c->retry_after : NULL,
		.bytes = c->bytes,
		.elapsed_usec = clock_now_usec() - c->start_usec,
	};

	(void)curl_easy_getinfo(c->easy, CURLINFO_NUM_CONNECTS, &r.new_connections);
	r.new_connections += c->prior_connects;
	if (c->cb_rc < 0) {
		r.rc = c->cb_rc;
		r.err = c->cb_err;
	} else if (res == CURLE_OK) {
		r.rc = ews_transport_classify_status(c, &r.err);
	} else {
		r.rc = ews_transport_classify_curl(c, res, &r.err);
	}
	log_debug("ews: POST to %s: rc %d, HTTP %ld, %" PRIu64 " bytes, %" PRId64
	          " ms, %ld new connections, request-id %s, client-request-id %s",
	          c->host, r.rc, r.http_status, r.bytes, r.elapsed_usec / 1000, r.new_connections,
	          r.request_id != NULL ? r.request_id : "-", c->client_request_id);
	/* From here a cancel of c (from another callback) is a no-op. */
	c->done_running = true;
	call_detach(c, res == CURLE_OK);
	ews_transport_dispatch(t);
	t->in_done++;
	c->done(c->ctx, c, &r);
	t->in_done--;
	ews_transport_call_destroy(c);
}

/* Finishes a call that never reached libcurl's end, with rc and a message. */
static void call_fail(struct ews_call *c, int rc, const char *what)
{
	c->cb_rc = err_set(&c->cb_err, rc, "POST to %s: %s", c->host, what);
	ews_transport_call_finish(c, CURLE_ABORTED_BY_CALLBACK);
}

void ews_transport_fail_all(struct ews_transport *t, int rc, const char *what)
{
	t->dead = true;
	while (t->calls != NULL) {
		struct ews_call *c = t->calls;
		if (c->cancelled)
			ews_transport_call_destroy(c);
		else
			call_fail(c, rc, what);
	}
}

/* When the next queued call times out, or 0 when one must be failed now; -1: none. */
static int64_t queue_next_usec(const struct ews_transport *t, int64_t now)
{
	int64_t next = -1;

	for (const struct ews_call *c = t->queue_head; c != NULL; c = c->qnext) {
		int64_t at;
		if (c->start_failed)
			return 0;
		if (c->timeout_usec <= 0)
			continue;
		at = c->start_usec + c->timeout_usec - now;
		if (at < 0)
			at = 0;
		if (next < 0 || at < next)
			next = at;
	}
	return next;
}

static void on_qtimer(uv_timer_t *timer);

void ews_transport_queue_arm(struct ews_transport *t)
{
	int64_t next;

	if (t->freeing)
		return;
	next = queue_next_usec(t, clock_now_usec());
	if (next < 0)
		(void)uv_timer_stop(&t->qtimer);
	else
		(void)uv_timer_start(&t->qtimer, on_qtimer, (uint64_t)((next + 999) / 1000), 0);
}

/* Gives free lanes to waiting calls, oldest first. Never runs a callback. */
void ews_transport_dispatch(struct ews_transport *t)
{
	struct ews_call *c;
	struct ews_call *next;
	int64_t now;

	if (t->in_curl > 0 || t->freeing || t->dead) {
		t->dispatch_needed = t->in_curl > 0;
		return;
	}
	t->dispatch_needed = false;
	now = clock_now_usec();
	for (c = t->queue_head; c != NULL; c = next) {
		struct lane *l;

		next = c->qnext;
		/* One whose time is up waits for the queue timer, which says so. */
		if (c->start_failed ||
		    (c->timeout_usec > 0 && now - c->start_usec >= c->timeout_usec))
			continue;
		l = ews_transport_lane_pick(t, c);
		if (l == NULL)
			continue;
		queue_remove(c);
		if (ews_transport_lane_checkout(c, l, &c->cb_err) < 0) {
			c->cb_rc = c->cb_err.code;
			c->start_failed = true;
			ews_transport_queue_add(c);
		}
	}
	ews_transport_queue_arm(t);
}

static void on_qtimer(uv_timer_t *timer)
{
	struct ews_transport *t = timer->data;

	for (;;) {
		int64_t now = clock_now_usec();
		struct ews_call *c = t->queue_head;

		while (c != NULL && !c->start_failed &&
		       !(c->timeout_usec > 0 && now - c->start_usec >= c->timeout_usec))
			c = c->qnext;
		if (c == NULL)
			break;
		if (!c->start_failed)
			c->cb_rc =
				err_set(&c->cb_err, -ETIMEDOUT,
			                "POST to %s: no connection free within %" PRId64
			                " ms (at most %u to a host, %u in all, all busy)",
			                c->host, c->timeout_usec / 1000, t->max_host, t->max_total);
		ews_transport_call_finish(c, CURLE_ABORTED_BY_CALLBACK);
	}
	ews_transport_queue_arm(t);
}
