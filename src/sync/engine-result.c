/* SPDX-License-Identifier: MIT */
/*
 * engine-result.c: what the backend's answers do to a mailbox (backend.h's callbacks): a
 * verdict's back-off, parking or resubscription, a stored subscription, poll cursor, window and
 * home, and the hints of a change feed.
 */
#include "sync/engine-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Applies a failed verdict to the mailbox: what its class prescribes (docs/sync.md). */
void mb_failed(struct mb *mb, enum action act, const struct sync_result *v)
{
	struct sync_engine *e = mb->e;
	int64_t now = clock_now_usec();
	static const char *const act_names[] = {"-",    "Autodiscover", "Subscribe",
	                                        "read", "GetEvents",    "Unsubscribe"};

	mb->failures++;
	if (v->verdict != SYNC_GAP)
		eng_record_error(e, mb->smtp, act_names[act], v->msg);
	switch (v->verdict) {
	case SYNC_THROTTLED:
		e->stats.throttled++;
		mb->not_before_usec = now + (v->back_off_ms > 0 ? v->back_off_ms * 1000
		                                                : backoff_usec(e, mb->failures));
		log_warn("%s: %s: %s; backing off", mb->smtp, act_names[act], v->msg);
		break;
	case SYNC_GAP:
		mb_schedule_read(mb, 0, true);
		mb->failures = 0;
		break;
	case SYNC_FEED_LOST:
		log_info("%s: %s: %s; subscribing again", mb->smtp, act_names[act], v->msg);
		mb_resubscribe(mb, v->flags & SYNC_RF_DROP_CURSOR);
		mb->failures = 0;
		break;
	case SYNC_MAILBOX_PERMANENT:
		if ((v->flags & SYNC_RF_REDISCOVER) && e->cfg->ews_url == NULL &&
		    !mb->rediscovered) {
			/* It may have moved (to Exchange Online): find it again before parking it. */
			log_info("%s: %s: %s; looking it up again", mb->smtp, act_names[act],
			         v->msg);
			mb->rediscovered = true;
			mb->needs |= NEED_DISCOVER | NEED_SUBSCRIBE | NEED_READ;
			mb->not_before_usec = now + backoff_usec(e, 1);
			break;
		}
		mb_set_state(mb, STORE_MB_PARKED, v->msg);
		mb->not_before_usec = now + eng_jitter(e, SYNC_PARKED_RETRY_USEC);
		mb->needs |= NEED_SUBSCRIBE | NEED_READ;
		mb->needs &= ~NEED_POLL;
		break;
	case SYNC_ACCOUNT_PERMANENT:
	case SYNC_REFUSED:
		log_err("%s: %s: %s (%s); retrying in %d s", mb->smtp, act_names[act], v->msg,
		        v->verdict == SYNC_REFUSED ? "calsync's request was refused"
		                                   : "the service account's configuration",
		        (int)(SLOW_RETRY_USEC / USEC_PER_SEC));
		mb->not_before_usec = now + eng_jitter(e, SLOW_RETRY_USEC);
		break;
	default:
		mb->not_before_usec = now + backoff_usec(e, mb->failures);
		log_warn("%s: %s: %s; retry %u", mb->smtp, act_names[act], v->msg, mb->failures);
		break;
	}
	if ((v->flags & SYNC_RF_REDISCOVER) && e->cfg->ews_url == NULL)
		mb->needs |= NEED_DISCOVER;
	else if ((v->flags & SYNC_RF_REDISCOVER) && mb->bk != 0 && mb->forced_bk < 0)
		mb_rehome(mb, 0); /* no Autodiscover: the configured EWS URL is its home */
	if ((v->flags & SYNC_RF_RESYNC) && v->verdict != SYNC_MAILBOX_PERMANENT)
		mb->needs |= NEED_READ;
}

void mb_succeeded(struct mb *mb)
{
	mb->failures = 0;
	mb->not_before_usec = 0;
	if (mb->state == STORE_MB_PARKED)
		mb_set_state(mb, mb->has_window ? STORE_MB_SYNCING : STORE_MB_UNRESOLVED, NULL);
}

static void finish_unsubscribe(struct mb *mb, const struct sync_result *v)
{
	struct sync_engine *e = mb->e;
	struct err err = {0};

	mb->needs &= ~NEED_UNSUBSCRIBE;
	if (v->verdict == SYNC_OK || (v->flags & SYNC_RF_GONE) || v->verdict == SYNC_FEED_LOST ||
	    v->verdict == SYNC_GAP) {
		free(mb->sub_id);
		mb->sub_id = NULL;
		/* A pull row keeps its watermark so that a restart resumes from it. */
		if ((eng_mb_push(mb) || mb->removed) &&
		    store_subscription_delete(e->store, mb->smtp, &err) < 0)
			log_err("store: %s: %s", mb->smtp, err.msg);
	} else {
		log_warn("%s: Unsubscribe: %s", mb->smtp, v->msg);
	}
}

static void finish_subscribe(struct mb *mb, const struct sync_answer *a)
{
	struct sync_engine *e = mb->e;
	struct store_subscription sub = {0};
	struct err err = {0};

	if (a->sub_id == NULL) {
		struct sync_result v = {.verdict = SYNC_TRANSIENT, .back_off_ms = -1};

		snprintf(v.msg, sizeof(v.msg), "Subscribe answer without a SubscriptionId");
		mb_failed(mb, ACT_SUBSCRIBE, &v);
		return;
	}
	eng_replace_str(&mb->sub_id, a->sub_id);
	if (!eng_mb_push(mb) && a->watermark)
		eng_replace_str(&mb->watermark, a->watermark);
	mb->needs &= ~NEED_SUBSCRIBE;
	sub.kind = eng_mb_push(mb) ? STORE_SUB_STREAMING : STORE_SUB_PULL;
	sub.id = mb->sub_id;
	sub.watermark = eng_mb_push(mb) ? NULL : mb->watermark;
	sub.watermark_len = sub.watermark ? strlen(sub.watermark) : 0;
	sub.created_utc = sync_engine_now_utc(e);
	if (store_subscription_put(e->store, mb->smtp, &sub, &err) < 0)
		log_err("store: %s: %s", mb->smtp, err.msg);
	if (eng_mb_push(mb)) {
		mb_ops(mb)->feed_opened(mb_bs(mb), mb);
	} else {
		mb->needs |= NEED_POLL;
		mb->poll_due_usec = clock_now_usec() + mb_ops(mb)->poll_interval_usec(mb_bs(mb));
	}
	/* Subscribed first, read second: a change between the two is seen by both at worst. */
	if (!(mb->needs & NEED_READ)) {
		mb->needs |= NEED_READ;
		mb->read_due_usec = 0;
	}
}

static void finish_poll(struct mb *mb, const struct sync_answer *a)
{
	struct sync_engine *e = mb->e;
	const char *wm = a->watermark;
	struct err err = {0};

	if (wm && (mb->watermark == NULL || strcmp(wm, mb->watermark) != 0)) {
		eng_replace_str(&mb->watermark, wm);
		if (store_subscription_set_watermark(e->store, mb->smtp, wm, strlen(wm), &err) < 0)
			log_err("store: %s: %s", mb->smtp, err.msg);
	}
	if (a->changed)
		mb_schedule_read(mb, e->cfg->debounce_usec, true);
	mb->poll_due_usec =
		clock_now_usec() + (a->more ? 0 : mb_ops(mb)->poll_interval_usec(mb_bs(mb)));
}

static void finish_read(struct mb *mb, const struct sync_answer *a)
{
	struct sync_engine *e = mb->e;
	struct store_diff diff = {0};
	struct err err = {0};
	int64_t now = clock_now_usec();

	if (a->window_error != NULL ||
	    store_replace_occurrences(e->store, mb->smtp, mb->read_start_utc, mb->read_end_utc,
	                              a->occ, a->n_occ, &diff, &err) < 0) {
		struct sync_result v = {.verdict = SYNC_TRANSIENT, .back_off_ms = -1};

		snprintf(v.msg, sizeof(v.msg), "storing the window: %s",
		         a->window_error != NULL ? a->window_error : err.msg);
		mb->needs |= NEED_READ;
		mb->read_due_usec = 0;
		mb_failed(mb, ACT_READ, &v);
		return;
	}
	e->stats.refreshes++;
	mb->has_window = true;
	if (store_mailbox_set_refreshed(e->store, mb->smtp, sync_engine_now_utc(e), &err) < 0)
		log_err("store: %s: %s", mb->smtp, err.msg);
	if (diff.n > 0)
		log_debug("%s: window read: %zu added, %zu changed, %zu removed", mb->smtp,
		          diff.n_added, diff.n_changed, diff.n_removed);
	store_diff_clear(&diff);
	mb->safety_due_usec = now + eng_jitter(e, e->cfg->safety_refresh_usec) / 2 +
	                      e->cfg->safety_refresh_usec / 2;
	mb_update_presence(mb, a->occ, a->n_occ, "calendar-changed");
	mb->rediscovered = false;
	if (!(mb->needs & (NEED_SUBSCRIBE | NEED_DISCOVER)) && mb->sub_id)
		mb_set_state(mb, STORE_MB_LIVE, NULL);
}

/* A page of the read came and another is needed: ask for it. */
static void read_more(struct mb *mb)
{
	struct sync_engine *e = mb->e;
	struct err err = {0};

	mb->action = ACT_READ;
	if (mb_ops(mb)->read_more(mb_bs(mb), mb, &err) < 0) {
		mb->action = ACT_NONE;
		mb->needs |= NEED_READ;
		log_err("%s: %s", mb->smtp, err.msg);
		return;
	}
	e->in_flight++;
	e->stats.requests++;
}

void sync_mb_done(struct mb *mb, const struct sync_result *r, const struct sync_answer *a)
{
	struct sync_engine *e = mb->e;
	enum action act = mb->action;

	mb->action = ACT_NONE;
	e->in_flight--;
	if (act == ACT_UNSUBSCRIBE) {
		finish_unsubscribe(mb, r);
	} else if (e->stopping) {
		/* nothing: shutdown only unsubscribes */
	} else if (r->verdict != SYNC_OK) {
		if (act == ACT_READ)
			mb->needs |= NEED_READ;
		mb_failed(mb, act, r);
	} else {
		mb_succeeded(mb);
		switch (act) {
		case ACT_SUBSCRIBE:
			finish_subscribe(mb, a);
			break;
		case ACT_POLL:
			finish_poll(mb, a);
			break;
		case ACT_READ:
			if (a->more_pages)
				read_more(mb);
			else
				finish_read(mb, a);
			break;
		default:
			break;
		}
	}
	if ((mb->removed || e->stopping) && mb->action == ACT_NONE &&
	    !(mb->needs & NEED_UNSUBSCRIBE)) {
		if (mb->removed)
			mb_destroy(mb);
	} else {
		mb_kick(mb);
	}
	eng_dispatch(e);
}

/* One mailbox of a discover batch: its home, or why it has none. */
static void discovered_one(struct mb *mb, const struct sync_result *r, const struct sync_home *h)
{
	struct sync_engine *e = mb->e;
	struct err err = {0};

	if (r->verdict != SYNC_OK) {
		mb_failed(mb, ACT_DISCOVER, r);
	} else if (h->backend != NULL && strcmp(h->backend, mb_ops(mb)->name) != 0) {
		int bk = eng_backend_index(e, h->backend);

		if (bk < 0 || mb->forced_bk >= 0) {
			struct sync_result park = {.verdict = SYNC_MAILBOX_PERMANENT,
			                           .back_off_ms = -1};

			(void)snprintf(
				park.msg, sizeof(park.msg), "%.400s; %s",
				h->res.msg[0] ? h->res.msg : "the mailbox is elsewhere",
				bk < 0 ? "that backend is not configured"
				       : "but the configuration pins the mailbox to this backend");
			mb_failed(mb, ACT_DISCOVER, &park);
			mb->needs |= NEED_DISCOVER;
		} else {
			mb_succeeded(mb);
			log_info("%s: %s", mb->smtp, h->res.msg[0] ? h->res.msg : "moved");
			mb_rehome(mb, (unsigned)bk);
			mb->needs |= NEED_DISCOVER; /* its new backend finds its home there */
			mb->discover_here = true;
		}
	} else if (h->url == NULL) {
		mb_failed(mb, ACT_DISCOVER, &h->res);
		mb->needs |= NEED_DISCOVER;
	} else {
		mb_succeeded(mb);
		mb->needs &= ~NEED_DISCOVER;
		mb->discover_here = false;
		eng_replace_str(&mb->ews_url, h->url);
		eng_replace_str(&mb->grouping, h->grouping);
		if (store_mailbox_set_endpoint(e->store, mb->smtp, mb_ops(mb)->name, h->url,
		                               h->grouping, &err) < 0)
			log_err("store: %s: %s", mb->smtp, err.msg);
		if (!(mb->needs & NEED_SUBSCRIBE) && mb->sub_id == NULL)
			mb->needs |= NEED_SUBSCRIBE;
	}
	mb_kick(mb);
}

void sync_discovered(struct sync_engine *e, struct mb *const *mbs, size_t n,
                     const struct sync_result *r, const struct sync_home *homes)
{
	e->in_flight--;
	e->account_in_flight--;
	for (size_t i = 0; i < n; i++) {
		struct mb *mb = mbs[i];

		mb->action = ACT_NONE;
		if (mb->removed || e->stopping) {
			/* Removed or stopping while Autodiscover ran: only an unsubscribe is left. */
			if (mb->needs & NEED_UNSUBSCRIBE)
				mb_kick(mb);
			else if (mb->removed)
				mb_destroy(mb);
			continue;
		}
		discovered_one(mb, r, &homes[i]);
	}
	eng_dispatch(e);
}

void sync_mb_changed(struct mb *mb)
{
	mb_schedule_read(mb, mb->e->cfg->debounce_usec, true);
}

void sync_mb_gap(struct mb *mb, bool now)
{
	if (now)
		mb_schedule_read(mb, 0, true);
	else
		mb_schedule_read(mb, mb->e->cfg->debounce_usec, false);
}

void sync_mb_feed_lost(struct mb *mb, unsigned flags)
{
	mb_resubscribe(mb, flags & SYNC_RF_DROP_CURSOR);
	/* Leaving the group happens when Autodiscover starts, never inside the stream's own
	 * callback (that could free the group and its framer under us). */
	if ((flags & SYNC_RF_REDISCOVER) && mb->e->cfg->ews_url == NULL)
		mb->needs |= NEED_DISCOVER;
	mb_kick(mb);
}

void sync_mb_unpark(struct mb *mb)
{
	if (mb->state != STORE_MB_PARKED || mb->removed)
		return;
	mb->not_before_usec = 0;
	mb_kick(mb);
}

void sync_note_throttled(struct sync_engine *e)
{
	e->stats.throttled++;
}

bool sync_engine_stopping(const struct sync_engine *e)
{
	return e->stopping;
}

void sync_note_error(struct sync_engine *e, const char *mailbox, const char *what,
                     const char *message)
{
	eng_record_error(e, mailbox, what, message);
}

void sync_count_op(struct sync_engine *e, enum sync_op op, bool ok, int64_t elapsed_usec)
{
	eng_count_op(e, op, ok, elapsed_usec);
}

int64_t sync_backoff_usec(struct sync_engine *e, unsigned failures)
{
	return backoff_usec(e, failures);
}
