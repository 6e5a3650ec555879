/* SPDX-License-Identifier: MIT */
/*
 * graph-read.c: finding a mailbox in Exchange Online and reading its window (docs/graph.md
 * "Reading").
 *
 * discover looks the users up, 20 to a $batch. A window is read as calendarView delta rounds:
 * the first round of a window (startDateTime/endDateTime, every page up to the deltaLink)
 * builds it from nothing; later rounds start at the kept deltaLink and bring only what changed
 * (upserts and @removed), applied onto the window kept in memory (graph_delta_apply). A read
 * answers the window; a poll (delta mode) answers whether the round changed anything. The
 * window of a round reaches one day past the end asked for, so that the read window, whose end
 * moves with the clock, stays inside it for a day; a new start (a new day) or an end past it
 * starts a first round again, as does a 410 (the delta token expired) or a cancelled first round.
 */
#include "sync/graph-backend-int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "cal/occurrence.h"
#include "graph/graph-batch.h"
#include "graph/graph-event.h"
#include "graph/graph-url.h"
#include "http/oauth.h"
#include "store/store.h"

_Static_assert(GRAPH_MAX_OCCURRENCES == STORE_MAX_OCCURRENCES,
               "a window Graph reads must fit in the store");
_Static_assert(GRAPH_MAX_URL <= STORE_MAX_WATERMARK, "a delta link must fit in the store");

/* Events per page of a round (Prefer: odata.maxpagesize). */
#define GRAPH_PAGE_SIZE 500u

void graph_window_clear(struct sync_backend_mb *bm)
{
	cal_occurrences_free(bm->win, bm->n_win);
	bm->win = NULL;
	bm->n_win = 0;
	bm->win_ok = false;
	free(bm->delta_url);
	bm->delta_url = NULL;
}

/* ---- discover ---------------------------------------------------------------------------- */

/* One $batch of user lookups for up to GRAPH_BATCH_MAX mailboxes of a discover. */
struct gdiscover {
	struct sync_backend *b;
	struct list_node link; /* in b->discovers */
	struct mb **mbs;
	size_t n;
	struct sync_home *homes;
	char **ids;     /* the users' ids: the homes' urls point at them */
	size_t pending; /* batches not yet answered */
	struct gcall **calls;
	size_t n_calls;
};

static void discover_free(struct gdiscover *d)
{
	list_unlink(&d->link);
	for (size_t i = 0; i < d->n; i++)
		free(d->ids[i]);
	free(d->ids);
	free(d->homes);
	free(d->mbs);
	free(d->calls);
	free(d);
}

/* Mailbox i's home from its answer in the batch; true when Graph refused the app (403). */
static bool home_from(struct gdiscover *d, size_t i, const struct graph_batch_resp *rs)
{
	struct sync_home *h = &d->homes[i];
	struct graph_verdict v;
	struct graph_answer a = {
		.req = GRAPH_REQ_USER,
		.status = rs->found ? rs->status : 0,
		.retry_after_ms = rs->retry_after_ms,
		.body = rs->body,
		.body_len = rs->body_len,
		.transport_msg = rs->error,
	};
	struct graph_user u = {0};
	struct err err = {0};

	graph_error_classify(&a, &v);
	if (v.cls == GRAPH_OK && graph_user_read(rs->body, rs->body_len, &u, &err) == 0) {
		d->ids[i] = u.id;
		u.id = NULL;
		h->url = d->ids[i];
		graph_user_clear(&u);
		return false;
	}
	if (v.cls == GRAPH_ACCOUNT && v.status == 403) {
		/* The lookup needs User.Read.All, which calsync does not require: without it the
		 * address itself is the user's key (its userPrincipalName), and the first read says
		 * whether Calendars.Read is granted. */
		d->ids[i] = xstrdup(d->mbs[i]->smtp);
		h->url = d->ids[i];
		return true;
	}
	if (v.cls == GRAPH_OK) {
		v.cls = GRAPH_TRANSIENT;
		(void)snprintf(v.msg, sizeof(v.msg), "user lookup: %.400s", err.msg);
	}
	graph_result(&v, &h->res);
	if (v.cls == GRAPH_MAILBOX && (v.flags & GRAPH_VF_GONE))
		(void)snprintf(h->res.msg, sizeof(h->res.msg),
		               "%.160s: not a user of the tenant (%.300s)", d->mbs[i]->smtp, v.msg);
	return false;
}

static void discover_ended(struct gdiscover *d)
{
	struct sync_result ok = {.verdict = SYNC_OK, .back_off_ms = -1};

	if (--d->pending > 0)
		return;
	sync_discovered(d->b->e, d->mbs, d->n, &ok, d->homes);
	discover_free(d);
}

static void on_batch(struct gcall *c, const struct http_response *r, const struct graph_verdict *v)
{
	struct gdiscover *d = c->ctx;
	size_t first = 0, n = 0;
	char idbuf[GRAPH_BATCH_MAX][24];
	const char *ids[GRAPH_BATCH_MAX];
	struct graph_batch_answer ans = {0};
	struct err err = {0};

	for (size_t k = 0; k < d->n_calls; k++) {
		if (d->calls[k] == c) {
			first = k * GRAPH_BATCH_MAX;
			d->calls[k] = NULL;
		}
	}
	n = d->n - first < GRAPH_BATCH_MAX ? d->n - first : GRAPH_BATCH_MAX;
	for (size_t i = 0; i < n; i++) {
		(void)snprintf(idbuf[i], sizeof(idbuf[i]), "%zu", i);
		ids[i] = idbuf[i];
	}
	if (v->cls == GRAPH_OK && graph_batch_read(r->body, r->body_len, ids, n, &ans, &err) == 0) {
		for (size_t i = 0; i < n; i++)
			home_from(d, first + i, &ans.resp[i]);
		graph_batch_answer_clear(&ans);
	} else {
		struct sync_result res;

		graph_result(v, &res);
		if (v->cls == GRAPH_OK) {
			res.verdict = SYNC_TRANSIENT;
			(void)snprintf(res.msg, sizeof(res.msg), "$batch: %.400s", err.msg);
		}
		for (size_t i = 0; i < n; i++)
			d->homes[first + i].res = res;
	}
	gcall_free(c);
	discover_ended(d);
}

/* The $batch body of mailboxes [first, first + n) of d. */
static int batch_body(struct gdiscover *d, size_t first, size_t n, char **out, struct err *err)
{
	struct graph_batch_req reqs[GRAPH_BATCH_MAX];
	char idbuf[GRAPH_BATCH_MAX][24];
	char *paths[GRAPH_BATCH_MAX] = {0};
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		(void)snprintf(idbuf[i], sizeof(idbuf[i]), "%zu", i);
		rc = graph_url_user(d->mbs[first + i]->smtp, &paths[i], err);
		reqs[i] =
			(struct graph_batch_req){.id = idbuf[i], .method = "GET", .url = paths[i]};
	}
	if (rc == 0)
		rc = graph_batch_build(reqs, n, out, err);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	return rc;
}

int graph_discover(struct sync_backend *b, struct mb *const *mbs, size_t n, struct err *err)
{
	struct gdiscover *d = xcalloc(1, sizeof(*d));
	char *url = graph_url_join(b->base, GRAPH_BATCH_PATH);

	d->b = b;
	d->n = n;
	d->mbs = xcalloc(n, sizeof(*d->mbs));
	memcpy(d->mbs, mbs, n * sizeof(*mbs));
	d->homes = xcalloc(n, sizeof(*d->homes));
	d->ids = xcalloc(n, sizeof(*d->ids));
	d->n_calls = (n + GRAPH_BATCH_MAX - 1) / GRAPH_BATCH_MAX;
	d->calls = xcalloc(d->n_calls, sizeof(*d->calls));
	for (size_t k = 0; k < d->n_calls; k++) {
		size_t first = k * GRAPH_BATCH_MAX;
		size_t m = n - first < GRAPH_BATCH_MAX ? n - first : GRAPH_BATCH_MAX;
		char *body = NULL;
		int rc = batch_body(d, first, m, &body, err);

		if (rc < 0) {
			for (size_t j = 0; j < k; j++)
				gcall_cancel(d->calls[j]);
			free(url);
			discover_free(d);
			return rc;
		}
		d->calls[k] = gcall_new(b, GRAPH_REQ_OTHER, HTTP_POST, url, on_batch, d);
		d->calls[k]->body = body;
	}
	free(url);
	list_append(&b->discovers, &d->link);
	d->pending = d->n_calls;
	for (size_t k = 0; k < d->n_calls; k++)
		gcall_start(d->calls[k]);
	return 0;
}

void graph_discovers_cancel(struct sync_backend *b)
{
	while (!list_empty(&b->discovers)) {
		struct gdiscover *d = container_of(b->discovers.next, struct gdiscover, link);

		for (size_t k = 0; k < d->n_calls; k++)
			gcall_cancel(d->calls[k]);
		discover_free(d);
	}
}

/* ---- delta rounds ------------------------------------------------------------------------ */

static int start_page(struct sync_backend *b, struct mb *mb, const char *url, struct err *err);

/* The occurrences of the window [start, end) among bm's, as a borrowed array (owned
 * container): the store is handed exactly the window it was asked for. */
static struct cal_occurrence *in_window(const struct sync_backend_mb *bm, size_t *out_n)
{
	struct cal_occurrence *v = bm->n_win > 0 ? xcalloc(bm->n_win, sizeof(*v)) : NULL;
	size_t n = 0;

	for (size_t i = 0; i < bm->n_win; i++) {
		const struct cal_occurrence *o = &bm->win[i];

		if (o->end_utc > bm->read_start && o->start_utc < bm->read_end)
			v[n++] = *o;
	}
	*out_n = n;
	return v;
}

/* The round ended with its deltaLink: answer the read (the window) or the poll. */
static void round_done(struct mb *mb)
{
	struct sync_backend_mb *bm = mb->bmb;
	struct sync_result ok = {.verdict = SYNC_OK, .back_off_ms = -1};
	struct sync_answer a = {0};
	struct cal_occurrence *v = NULL;

	if (bm->round_read) {
		v = in_window(bm, &a.n_occ);
		a.occ = v;
	} else {
		a.changed = bm->round_changed;
	}
	sync_mb_done(mb, &ok, &a);
	free(v);
}

static void round_failed(struct mb *mb, const struct graph_verdict *v, const char *why)
{
	struct sync_backend_mb *bm = mb->bmb;
	struct sync_result r;

	graph_result(v, &r);
	if (why != NULL) {
		r.verdict = SYNC_TRANSIENT;
		(void)snprintf(r.msg, sizeof(r.msg), "calendarView delta: %.400s", why);
	}
	/* A first round half done, or a token Graph no longer knows: start from nothing. */
	if (bm->round_first || v->cls == GRAPH_GAP)
		graph_window_clear(bm);
	if (v->cls == GRAPH_GAP) {
		r.verdict = SYNC_GAP;
		r.flags |= SYNC_RF_RESYNC;
	}
	sync_mb_done(mb, &r, NULL);
}

static void on_page(struct gcall *c, const struct http_response *r, const struct graph_verdict *v)
{
	struct mb *mb = c->ctx;
	struct sync_backend *b = c->b;
	struct sync_backend_mb *bm = mb->bmb;
	struct graph_page page = {0};
	struct err err = {0};
	char *next = NULL;

	bm->call = NULL;
	gcall_free(c);
	if (v->cls != GRAPH_OK) {
		round_failed(mb, v, NULL);
		return;
	}
	if (graph_page_read(r->body, r->body_len, GRAPH_PAGE_DELTA, b->base, &page, &err) < 0) {
		round_failed(mb, v, err.msg);
		return;
	}
	/* Before the page is applied: applying moves its entries into the window. */
	if (page.n_occ > 0 || page.n_removed > 0 || bm->round_first)
		bm->round_changed = true;
	if (graph_delta_apply(&bm->win, &bm->n_win, &page, GRAPH_MAX_OCCURRENCES, &err) < 0) {
		graph_page_clear(&page);
		round_failed(mb, v, err.msg);
		return;
	}
	if (page.next_path != NULL)
		next = graph_url_join(b->base, page.next_path);
	else if (page.delta_path != NULL) {
		free(bm->delta_url);
		bm->delta_url = graph_url_join(b->base, page.delta_path);
		bm->win_ok = true;
	}
	graph_page_clear(&page);
	if (next == NULL && !bm->win_ok) {
		struct graph_verdict bad = *v;

		round_failed(mb, &bad, "a page with neither @odata.nextLink nor @odata.deltaLink");
		return;
	}
	if (next == NULL) {
		round_done(mb);
		return;
	}
	bm->win_ok = false; /* until the round's deltaLink */
	if (start_page(b, mb, next, &err) < 0) {
		struct graph_verdict bad = *v;

		round_failed(mb, &bad, err.msg);
	}
	free(next);
}

static int start_page(struct sync_backend *b, struct mb *mb, const char *url, struct err *err)
{
	struct gcall *c = gcall_new(b, GRAPH_REQ_DELTA, HTTP_GET, url, on_page, mb);

	c->prefer = xmalloc(GRAPH_PREFER_SIZE);
	graph_url_prefer(GRAPH_PAGE_SIZE, c->prefer);
	mb->bmb->call = c;
	gcall_start(c);
	return 0;
}

/* Starts a round for mb: from the kept deltaLink when it covers [start, end), else a first
 * one. */
static int start_round(struct sync_backend *b, struct mb *mb, int64_t start, int64_t end,
                       struct err *err)
{
	struct sync_backend_mb *bm = mb->bmb;
	char *path = NULL;
	char *url;
	int rc;

	bm->read_start = start;
	bm->read_end = end;
	bm->round_changed = false;
	if (bm->win_ok && bm->delta_url != NULL && bm->delta_start == start &&
	    bm->delta_end >= end) {
		bm->round_first = false;
		return start_page(b, mb, bm->delta_url, err);
	}
	graph_window_clear(bm);
	bm->round_first = true;
	bm->delta_start = start;
	bm->delta_end = end - end % 86400 + 2 * 86400;
	rc = graph_url_calendar_delta(graph_user(mb), bm->delta_start, bm->delta_end, &path, err);
	if (rc < 0)
		return rc;
	url = graph_url_join(b->base, path);
	free(path);
	rc = start_page(b, mb, url, err);
	free(url);
	return rc;
}

int graph_read(struct sync_backend *b, struct mb *mb, int64_t start, int64_t end, struct err *err)
{
	mb->bmb->round_read = true;
	return start_round(b, mb, start, end, err);
}

int graph_read_more(struct sync_backend *b, struct mb *mb, struct err *err)
{
	/* A round follows its pages itself: a read never answers more_pages. */
	return err_set(err, -EINVAL, "graph: read_more without a page");
}

int graph_poll(struct sync_backend *b, struct mb *mb, struct err *err)
{
	struct sync_backend_mb *bm = mb->bmb;
	int64_t start = bm->win_ok ? bm->delta_start : bm->read_start;
	int64_t end = bm->win_ok ? bm->read_end : bm->read_end;

	bm->round_read = false;
	if (!bm->win_ok || start == 0) {
		/* Nothing read yet: a poll starts the window, and says it changed. */
		int64_t now = sync_engine_now_utc(b->e);

		start = now - now % 86400 - b->e->cfg->window_past_days * 86400;
		end = now + b->e->cfg->window_ahead_days * 86400;
	}
	return start_round(b, mb, start, end, err);
}
