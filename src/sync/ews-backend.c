/* SPDX-License-Identifier: MIT */
/*
 * ews-backend.c: the EWS requests of one mailbox (Subscribe, FindItem pages, GetEvents,
 * Unsubscribe), reading their answers and what they mean.
 */
#include "sync/engine-int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static void on_call_done(void *ctx, struct ews_call *call, const struct ews_result *r);

/*
 * Classifies a finished buffered call: a transport error, a SOAP fault, or the first response
 * message. On success (cls NONE) *resp holds the parsed answer.
 */
void classify(const struct ews_result *r, struct ews_response *resp, struct verdict *v)
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

/* ---- the actions --------------------------------------------------------------------- */

void mb_free_page(struct mb *mb)
{
	for (size_t i = 0; i < mb->n_page_items; i++)
		ews_cal_item_clear(&mb->page_items[i]);
	free(mb->page_items);
	mb->page_items = NULL;
	mb->n_page_items = 0;
	mb->pages = 0;
}

/* Cancels the mailbox's buffered call, if one is out, and drops a half-read window. An
 * Autodiscover call is not the mailbox's own (it serves a batch) and has no mb->call. */
void mb_cancel_call(struct mb *mb)
{
	if (mb->call == NULL)
		return;
	ews_transport_cancel(mb->call);
	mb->call = NULL;
	mb->action = ACT_NONE;
	mb->e->in_flight--;
	mb_free_page(mb);
}

int post(struct mb *mb, const struct ews_call_opts *o, struct err *err)
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

void mb_header(const struct mb *mb, struct ews_header *h, const char *impersonate)
{
	memset(h, 0, sizeof(*h));
	h->version = mb->e->cfg->server_version;
	h->impersonate = impersonate;
	h->id_type = mb->e->cfg->id_type;
	h->tz_utc = true;
}

void mb_opts(const struct mb *mb, struct ews_call_opts *o)
{
	memset(o, 0, sizeof(*o));
	if (mb->group && mb->group->n_members > 0) {
		group_call_opts(mb->group, o);
	} else {
		o->url = mb_url(mb);
		o->anchor_mailbox = mb->smtp;
	}
}

int start_read_page(struct mb *mb, struct err *err)
{
	struct ews_header h;
	struct ews_call_opts o;
	struct ews_find_calendar fc = {
		.start_utc = mb->page_start_utc,
		.end_utc = mb->read_end_utc,
	};
	int rc;

	mb_header(mb, &h, mb->smtp);
	rc = ews_req_find_calendar(&h, &fc, &mb->e->req, err);
	if (rc < 0)
		return rc;
	mb_opts(mb, &o);
	return post(mb, &o, err);
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
		store_occurrences_free(occ, n);
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
	store_occurrences_free(occ, n);
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
