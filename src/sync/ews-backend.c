/* SPDX-License-Identifier: MIT */
/*
 * ews-backend.c: the EWS backend's table (backend.h) and a mailbox's own requests: Subscribe,
 * the FindItem CalendarView pages of a read, Unsubscribe, with the headers and call options of
 * its group; their answers read by ews_verdict_of_result() and handed to the engine.
 */
#include "sync/ews-backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "config/config.h"
#include "sync/ews-backend-int.h"
#include "sync/ews-convert.h"

/* ---- verdicts -------------------------------------------------------------------------- */

/* The engine's reading of an EWS verdict. */
void sync_ews_result(const struct sync_engine *e, const struct ews_verdict *v,
                     struct sync_result *out)
{
	memset(out, 0, sizeof(*out));
	switch (v->cls) {
	case EWS_ERR_NONE:
		out->verdict = SYNC_OK;
		break;
	case EWS_ERR_TRANSIENT:
		out->verdict = SYNC_TRANSIENT;
		break;
	case EWS_ERR_THROTTLED:
		out->verdict = SYNC_THROTTLED;
		break;
	case EWS_ERR_SUBSCRIPTION_LOST:
		/* ErrorMissedNotificationEvents keeps the subscription: only events were lost. */
		out->verdict = (v->flags & EWS_ERRF_KEEP_SUBSCRIPTION) ? SYNC_GAP : SYNC_FEED_LOST;
		break;
	case EWS_ERR_MAILBOX_PERMANENT:
		out->verdict = SYNC_MAILBOX_PERMANENT;
		break;
	case EWS_ERR_ACCOUNT_PERMANENT:
		out->verdict = SYNC_ACCOUNT_PERMANENT;
		break;
	case EWS_ERR_CLIENT_BUG:
		out->verdict = SYNC_REFUSED;
		break;
	case EWS_ERR_UNKNOWN:
	default:
		out->verdict = SYNC_UNKNOWN;
		break;
	}
	if (v->flags & EWS_ERRF_RESYNC)
		out->flags |= SYNC_RF_RESYNC;
	if (v->flags & EWS_ERRF_DROP_WATERMARK)
		out->flags |= SYNC_RF_DROP_CURSOR;
	if (v->flags & EWS_ERRF_REDISCOVER)
		out->flags |= SYNC_RF_REDISCOVER;
	if (v->flags & EWS_ERRF_ALREADY_GONE)
		out->flags |= SYNC_RF_GONE;
	out->back_off_ms = v->back_off_ms;
	snprintf(out->msg, sizeof(out->msg), "%s", v->msg);
	if (v->cls != EWS_ERR_NONE && (v->flags & EWS_ERRF_FIX_VERSION)) {
		/* Only the configuration fixes it: park (a reload retries parked mailboxes now). */
		snprintf(
			out->msg, sizeof(out->msg),
			"%s (RequestServerVersion %s refused: set <ews version=\"...\"> to one the "
			"server accepts, see calsync check, then reload)",
			v->msg, e->cfg->server_version);
		out->verdict = SYNC_MAILBOX_PERMANENT;
	}
}

/* ---- the backend and its mailboxes ------------------------------------------------------ */

static int ews_open(struct sync_engine *e, struct sync_backend **out, struct err *err)
{
	struct sync_backend *b = xcalloc(1, sizeof(*b));
	const struct cfg *cfg = e->cfg;
	struct ews_transport_opts to = {0};
	size_t streams = cfg->n_mailboxes / SYNC_GROUP_MAX + 32;
	int rc;

	b->e = e;
	list_init(&b->groups);
	list_init(&b->discovers);
	buf_init(&b->req, REQUEST_MAX);
	to.auth = cfg->auth;
	to.user = cfg->user;
	to.password = cfg->password;
	to.token = cfg->token; /* NULL with oauth: each call brings its own */
	to.ca_file = cfg->ca_file;
	to.insecure_skip_tls_verify = cfg->insecure_skip_tls_verify;
	to.idle_timeout_usec = cfg->stream_watchdog_usec;
	/* Every streaming group holds a connection; buffered calls need their own. */
	to.max_host_connections = (unsigned)(streams + SYNC_MAX_IN_FLIGHT + 8);
	to.max_total_connections = to.max_host_connections + 16;
	rc = ews_transport_new(e->loop, &to, &b->transport, err);
	if (rc < 0) {
		buf_free(&b->req);
		free(b);
		return rc;
	}
	rc = sync_ews_tokens_open(b, err);
	if (rc < 0) {
		ews_transport_free(b->transport);
		buf_free(&b->req);
		free(b);
		return rc;
	}
	*out = b;
	return 0;
}

static void ews_free(struct sync_backend *b)
{
	sync_ews_groups_free(b);
	sync_ews_calls_cancel(b);
	ews_transport_free(b->transport);
	sync_ews_discovers_free(b);
	buf_free(&b->req);
	sync_ews_tokens_free_backend(b);
}

static void free_page(struct sync_backend_mb *bm)
{
	for (size_t i = 0; i < bm->n_page_items; i++)
		ews_cal_item_clear(&bm->page_items[i]);
	free(bm->page_items);
	bm->page_items = NULL;
	bm->n_page_items = 0;
	bm->pages = 0;
}

static void ews_mb_init(struct sync_backend *b, struct mb *mb)
{
	mb->bmb = xcalloc(1, sizeof(*mb->bmb));
}

/* Cancels the mailbox's buffered call, if one is out, and drops a half-read window. An
 * Autodiscover call is not the mailbox's own (it serves a batch) and has no call here. */
static bool ews_cancel(struct sync_backend *b, struct mb *mb)
{
	struct sync_backend_mb *bm = mb->bmb;

	if (bm->call == NULL)
		return false;
	sync_ews_call_cancel(bm->call);
	bm->call = NULL;
	free_page(bm);
	return true;
}

static void ews_mb_drop(struct sync_backend *b, struct mb *mb)
{
	struct sync_backend_mb *bm = mb->bmb;

	if (bm == NULL)
		return;
	ews_cancel(b, mb);
	free_page(bm);
	sync_ews_group_leave(mb);
	free(bm->cookie);
	free(bm);
	mb->bmb = NULL;
}

/* ---- requests ---------------------------------------------------------------------------- */

void sync_ews_header(const struct mb *mb, struct ews_header *h, const char *impersonate)
{
	memset(h, 0, sizeof(*h));
	h->version = mb->e->cfg->server_version;
	h->impersonate = impersonate;
	h->id_type = mb->e->cfg->id_type;
	h->tz_utc = true;
}

void sync_ews_opts(const struct mb *mb, struct ews_call_opts *o)
{
	const struct group *g = mb->bmb->group;

	memset(o, 0, sizeof(*o));
	if (g && g->n_members > 0) {
		sync_ews_group_call_opts(g, o);
	} else {
		o->url = mb_url(mb);
		o->anchor_mailbox = mb->smtp;
	}
}

static void on_call_done(void *ctx, struct ews_call *call, const struct ews_result *r);

/* Posts the request in b->req as the mailbox's one buffered call. */
int sync_ews_post(struct sync_backend *b, struct mb *mb, enum sync_op op,
                  const struct ews_call_opts *o, struct err *err)
{
	struct sync_backend_mb *bm = mb->bmb;
	int rc = sync_ews_call(b, o, b->req.data, b->req.len, on_call_done, mb, &bm->call, err);

	if (rc < 0)
		bm->call = NULL;
	else
		bm->op = op;
	return rc;
}

static int ews_subscribe(struct sync_backend *b, struct mb *mb, struct err *err)
{
	struct sync_engine *e = mb->e;
	struct ews_header h;
	struct ews_call_opts o;
	struct ews_subscribe s = {.streaming = sync_ews_streaming(e)};
	int64_t minutes = 3 * e->cfg->pull_interval_usec / (60 * USEC_PER_SEC);
	int rc;

	if (sync_ews_streaming(e) && mb->bmb->group == NULL)
		sync_ews_group_join(b, mb);
	if (!sync_ews_streaming(e)) {
		s.watermark = mb->watermark;
		s.timeout_min = (unsigned)(minutes < 10 ? 10 : minutes > 1440 ? 1440 : minutes);
	}
	sync_ews_header(mb, &h, mb->smtp);
	h.tz_utc = false;
	rc = ews_req_subscribe(&h, &s, &b->req, err);
	if (rc < 0)
		return rc;
	sync_ews_opts(mb, &o);
	return sync_ews_post(b, mb, SYNC_OP_SUBSCRIBE, &o, err);
}

static int ews_unsubscribe(struct sync_backend *b, struct mb *mb, struct err *err)
{
	struct ews_header h;
	struct ews_call_opts o;
	int rc;

	sync_ews_header(mb, &h, mb->smtp);
	h.tz_utc = false;
	rc = ews_req_unsubscribe(&h, mb->sub_id, &b->req, err);
	if (rc < 0)
		return rc;
	sync_ews_opts(mb, &o);
	return sync_ews_post(b, mb, SYNC_OP_UNSUBSCRIBE, &o, err);
}

static int read_page(struct sync_backend *b, struct mb *mb, struct err *err)
{
	struct sync_backend_mb *bm = mb->bmb;
	struct ews_header h;
	struct ews_call_opts o;
	struct ews_find_calendar fc = {
		.start_utc = bm->page_start_utc,
		.end_utc = bm->read_end_utc,
		.max_entries = bm->page_max,
	};
	int rc;

	sync_ews_header(mb, &h, mb->smtp);
	rc = ews_req_find_calendar(&h, &fc, &b->req, err);
	if (rc < 0)
		return rc;
	sync_ews_opts(mb, &o);
	return sync_ews_post(b, mb, SYNC_OP_FIND_ITEM, &o, err);
}

static int ews_read(struct sync_backend *b, struct mb *mb, int64_t start_utc, int64_t end_utc,
                    struct err *err)
{
	struct sync_backend_mb *bm = mb->bmb;

	free_page(bm);
	bm->page_start_utc = start_utc;
	bm->read_end_utc = end_utc;
	return read_page(b, mb, err);
}

static int ews_read_more(struct sync_backend *b, struct mb *mb, struct err *err)
{
	int rc = read_page(b, mb, err);

	if (rc < 0)
		free_page(mb->bmb);
	return rc;
}

/* ---- answers ----------------------------------------------------------------------------- */

/* Collects one CalendarView page; returns true when another page is needed. */
static bool collect_page(struct mb *mb, struct ews_response *resp)
{
	struct sync_backend_mb *bm = mb->bmb;
	struct ews_message *m = &resp->messages[0];
	int64_t last_start = INT64_MIN;

	if (m->n_items > 0) {
		bm->page_items = xreallocarray(bm->page_items, bm->n_page_items + m->n_items,
		                               sizeof(*bm->page_items));
		memcpy(bm->page_items + bm->n_page_items, m->items, m->n_items * sizeof(*m->items));
		bm->n_page_items += m->n_items;
		for (size_t i = 0; i < m->n_items; i++)
			if (m->items[i].has_start && m->items[i].start_utc > last_start)
				last_start = m->items[i].start_utc;
		free(m->items); /* the strings now belong to page_items */
		m->items = NULL;
		m->n_items = 0;
	}
	bm->pages++;
	if (!m->has_includes_last || m->includes_last_item_in_range)
		return false;
	if (last_start <= bm->page_start_utc || bm->pages >= READ_MAX_PAGES) {
		log_warn("%s: CalendarView cut at %u pages; the window is truncated", mb->smtp,
		         bm->pages);
		return false;
	}
	/* The next page starts at the last start seen; its items come again and are dropped as
	 * duplicates by the conversion. */
	bm->page_start_utc = last_start;
	return true;
}

/* What a successful answer brought, for the engine (a borrows from resp and *occ). */
static void read_answer(struct mb *mb, struct ews_response *resp, struct sync_answer *a,
                        struct cal_occurrence **occ, char *why, size_t why_size)
{
	struct sync_backend_mb *bm = mb->bmb;
	struct err err = {0};

	switch (bm->op) {
	case SYNC_OP_SUBSCRIBE:
		a->sub_id = resp->messages[0].subscription_id;
		a->watermark = resp->messages[0].watermark;
		break;
	case SYNC_OP_GET_EVENTS:
		sync_ews_poll_answer(resp, a);
		break;
	case SYNC_OP_FIND_ITEM:
		if (collect_page(mb, resp)) {
			a->more_pages = true;
			break;
		}
		if (sync_items_to_occurrences(bm->page_items, bm->n_page_items, occ, &a->n_occ,
		                              NULL, &err) < 0) {
			snprintf(why, why_size, "%s", err.msg);
			a->window_error = why;
		}
		a->occ = *occ;
		free_page(bm);
		break;
	default:
		break;
	}
}

static void on_call_done(void *ctx, struct ews_call *call, const struct ews_result *r)
{
	struct mb *mb = ctx;
	struct sync_backend_mb *bm = mb->bmb;
	struct sync_engine *e = mb->e;
	struct ews_response resp;
	struct ews_verdict v;
	struct sync_result res;
	struct sync_answer a = {0};
	struct cal_occurrence *occ = NULL;
	char why[sizeof(((struct err *)0)->msg)];

	bm->call = NULL;
	/* retry_after: struct ews_result does not carry the Retry-After header yet. */
	ews_verdict_of_result(r, NULL, &resp, &v);
	sync_ews_result(e, &v, &res);
	sync_count_op(e, bm->op, v.cls == EWS_ERR_NONE, r->elapsed_usec);
	free(bm->cookie);
	bm->cookie = NULL;
	if (v.cls == EWS_ERR_NONE && !sync_engine_stopping(e)) {
		read_answer(mb, &resp, &a, &occ, why, sizeof(why));
		/* The group's affinity cookie, taken by feed_opened once the answer is stored. */
		if (bm->op == SYNC_OP_SUBSCRIBE && a.sub_id && r->backend_cookie)
			bm->cookie = xstrdup(r->backend_cookie);
	} else if (v.cls != EWS_ERR_NONE && bm->op == SYNC_OP_FIND_ITEM) {
		free_page(bm);
		if ((v.flags & EWS_ERRF_SHRINK) && !sync_engine_stopping(e)) {
			/* The answer was too big (EWSFindCountLimit, a timeout): smaller pages from
			 * now. */
			bm->page_max = ews_error_shrink_entries(bm->page_max);
			log_info("%s: read: %s; CalendarView pages of %u from now", mb->smtp,
			         v.code, bm->page_max);
		}
	}
	/* The engine may free mb (and bm) here. */
	sync_mb_done(mb, &res, &a);
	cal_occurrences_free(occ, a.n_occ);
	ews_response_clear(&resp);
}

static bool ews_pushes(const struct sync_backend *b)
{
	return sync_ews_streaming(b->e);
}

static int64_t ews_poll_interval(const struct sync_backend *b)
{
	return b->e->cfg->pull_interval_usec;
}

const struct sync_backend_ops sync_ews_backend = {
	.name = "ews",
	.pushes = ews_pushes,
	.poll_interval_usec = ews_poll_interval,
	.open = ews_open,
	.free = ews_free,
	.mb_init = ews_mb_init,
	.mb_drop = ews_mb_drop,
	.discover = sync_ews_discover,
	.subscribe = ews_subscribe,
	.unsubscribe = ews_unsubscribe,
	.read = ews_read,
	.read_more = ews_read_more,
	.poll = sync_ews_poll,
	.cancel = ews_cancel,
	.feed_opened = sync_ews_feed_opened,
	.feed_closed = sync_ews_feed_closed,
	.resume = sync_ews_resume,
	.leave_home = sync_ews_leave_home,
	.stop = sync_ews_stop,
	.stats = sync_ews_stats,
	.groups = sync_ews_groups,
};

bool sync_ews_streaming(const struct sync_engine *e)
{
	return e->cfg->notify == CFG_NOTIFY_STREAM;
}
