/* SPDX-License-Identifier: MIT */
/*
 * engine-mailbox.c: the mailboxes: their states and the counts of each, creating, finding,
 * adding, removing and freeing them, and making them the configured set.
 */
#include "sync/engine-int.h"

#include <stdlib.h>
#include <string.h>

void eng_replace_str(char **dst, const char *src)
{
	free(*dst);
	*dst = src ? xstrdup(src) : NULL;
}

/* ---- state counts and store state -------------------------------------------------- */

static size_t *state_count(struct sync_engine *e, enum store_mb_state st)
{
	switch (st) {
	case STORE_MB_UNRESOLVED:
		return &e->stats.unresolved;
	case STORE_MB_SYNCING:
		return &e->stats.syncing;
	case STORE_MB_LIVE:
		return &e->stats.live;
	case STORE_MB_PARKED:
		return &e->stats.parked;
	}
	return &e->stats.unresolved;
}

void mb_set_state(struct mb *mb, enum store_mb_state st, const char *reason)
{
	struct sync_engine *e = mb->e;
	struct err err = {0};

	if (mb->state == st && st != STORE_MB_PARKED)
		return;
	if (store_mailbox_set_state(e->store, mb->smtp, st, reason, &err) < 0)
		log_err("store: %s: %s", mb->smtp, err.msg);
	(*state_count(e, mb->state))--;
	(*state_count(e, st))++;
	/* Parking needs an admin; the rest is routine at 50,000 mailboxes (progress below). */
	if (st == STORE_MB_PARKED)
		log_warn("%s: parked: %s", mb->smtp, reason);
	else if (mb->state != st)
		log_debug("%s: %s", mb->smtp, store_mb_state_name(st));
	mb->state = st;
	if (st == STORE_MB_LIVE && e->stats.live == e->stats.mailboxes) {
		if (!e->all_live_logged)
			log_info("all %zu mailboxes live", e->stats.mailboxes);
		e->all_live_logged = true;
	} else if (st != STORE_MB_LIVE) {
		e->all_live_logged = false;
	}
}

/* ---- subscriptions ------------------------------------------------------------------- */

void mb_drop_subscription(struct mb *mb, bool keep_watermark)
{
	struct sync_engine *e = mb->e;
	struct err err = {0};

	free(mb->sub_id);
	mb->sub_id = NULL;
	if (!keep_watermark) {
		free(mb->watermark);
		mb->watermark = NULL;
	}
	/* A pull row with a watermark stays: its id is dead, but a restart resumes from it. */
	if ((eng_mb_push(mb) || mb->watermark == NULL) &&
	    store_subscription_delete(e->store, mb->smtp, &err) < 0)
		log_err("store: %s: %s", mb->smtp, err.msg);
	mb_ops(mb)->feed_closed(mb_bs(mb), mb);
}

/* The subscription is gone: subscribe again (resuming from the watermark unless told not to)
 * and re-read the window, because events may have been lost in between. */
void mb_resubscribe(struct mb *mb, bool drop_watermark)
{
	mb_drop_subscription(mb, !drop_watermark);
	mb->needs &= ~NEED_POLL;
	mb->needs |= NEED_SUBSCRIBE | NEED_READ;
	mb->read_due_usec = 0;
	if (mb->state == STORE_MB_LIVE)
		mb_set_state(mb, STORE_MB_SYNCING, NULL);
}

void mb_rehome(struct mb *mb, unsigned bk)
{
	struct sync_engine *e = mb->e;

	if (mb->bk == bk || bk >= e->n_bks)
		return;
	mb_cancel_call(mb);
	if (mb->sub_id != NULL || mb->watermark != NULL)
		mb_drop_subscription(mb, false);
	mb_ops(mb)->mb_drop(mb_bs(mb), mb);
	log_info("%s: served by %s from now on (was %s)", mb->smtp, e->bks[bk].ops->name,
	         mb_ops(mb)->name);
	mb->bk = bk;
	mb_ops(mb)->mb_init(mb_bs(mb), mb);
	/* A new home: a new feed and one full read, so that no change made during the move is
	 * lost. The presence and its history stay: they are the mailbox's, not the backend's. */
	mb->needs |= NEED_SUBSCRIBE | NEED_READ;
	mb->read_due_usec = 0;
}

static void on_mb_timer_closed(uv_handle_t *h)
{
	struct mb *mb = h->data;

	if (--mb->closing > 0)
		return;
	free(mb->smtp);
	free(mb->key);
	free(mb->ews_url);
	free(mb->grouping);
	free(mb->sub_id);
	free(mb->watermark);
	store_presence_clear(&mb->presence);
	free(mb);
}

/* Cancels the mailbox's request, if one is out, and drops a half-read window. An
 * Autodiscover request is not the mailbox's own (it serves a batch) and is not cancelled. */
void mb_cancel_call(struct mb *mb)
{
	struct sync_engine *e = mb->e;

	if (!mb_ops(mb)->cancel(mb_bs(mb), mb))
		return;
	mb->action = ACT_NONE;
	e->in_flight--;
}

/* Unlinks the mailbox from the engine and frees it once its timers are closed. */
void mb_destroy(struct mb *mb)
{
	struct sync_engine *e = mb->e;

	if (mb->closing)
		return;
	mb_cancel_call(mb);
	mb_ops(mb)->mb_drop(mb_bs(mb), mb);
	list_unlink(&mb->q_link);
	/* The last one takes its slot. */
	e->mbs[mb->slot] = e->mbs[--e->n_mbs];
	e->mbs[mb->slot]->slot = mb->slot;
	if (mb->hashed)
		HASH_DEL(e->by_smtp, mb);
	mb->hashed = false;
	if (!mb->removed) {
		e->stats.mailboxes--;
		(*state_count(e, mb->state))--;
	}
	mb->closing = 2;
	uv_close((uv_handle_t *)&mb->work_timer, on_mb_timer_closed);
	uv_close((uv_handle_t *)&mb->presence_timer, on_mb_timer_closed);
}

/* SMTP addresses compare without ASCII case, as the store does. */
static char *lower_dup(const char *s)
{
	char *d = xstrdup(s);

	for (char *p = d; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return d;
}

struct mb *mb_find(struct sync_engine *e, const char *smtp)
{
	char *key = lower_dup(smtp);
	struct mb *mb = NULL;

	HASH_FIND_STR(e->by_smtp, key, mb);
	free(key);
	return mb;
}

/* A mailbox from its stored row: subscription, presence and window are reused. */
static struct mb *mb_new(struct sync_engine *e, const struct store_mailbox *row)
{
	struct mb *mb = xcalloc(1, sizeof(*mb));
	struct store_subscription sub = {0};
	struct err err = {0};
	int stored_bk = eng_backend_index(e, row->backend != NULL ? row->backend : "ews");
	bool has_home;
	int rc;

	mb->e = e;
	mb->smtp = xstrdup(row->smtp);
	mb->key = lower_dup(row->smtp);
	HASH_ADD_KEYPTR(hh, e->by_smtp, mb->key, strlen(mb->key), mb);
	mb->hashed = true;
	mb->state = row->state;
	mb->has_window = row->last_refresh_utc != 0;
	uv_timer_init(e->loop, &mb->work_timer);
	uv_timer_init(e->loop, &mb->presence_timer);
	mb->work_timer.data = mb;
	mb->presence_timer.data = mb;
	/* Served where it was stored; a backend no longer configured: found again by EWS. */
	mb->forced_bk = -1;
	mb->bk = stored_bk > 0 ? (unsigned)stored_bk : 0;
	mb_ops(mb)->mb_init(mb_bs(mb), mb);
	if ((mb->bk != 0 || e->cfg->ews_url == NULL) && stored_bk >= 0 && row->ews_url) {
		mb->ews_url = xstrdup(row->ews_url);
		mb->grouping = row->grouping ? xstrdup(row->grouping) : NULL;
	}
	rc = stored_bk >= 0 ? store_subscription_get(e->store, mb->smtp, &sub, &err) : -ENOENT;
	if (rc == 0 && (sub.kind == STORE_SUB_STREAMING) == eng_mb_push(mb)) {
		mb->sub_id = sub.id;
		sub.id = NULL;
		if (sub.watermark) {
			mb->watermark = sub.watermark;
			sub.watermark = NULL;
		}
	}
	store_subscription_clear(&sub);
	rc = store_presence_get(e->store, mb->smtp, &mb->presence, &err);
	mb->has_presence = rc == 0;

	/* What it needs (a pull poll is due at once: poll_due_usec is 0). */
	has_home = mb->ews_url != NULL || (mb->bk == 0 && e->cfg->ews_url != NULL);
	mb->needs |= sync_sched_initial_needs(has_home, mb->sub_id != NULL, eng_mb_push(mb));
	if (mb->state == STORE_MB_LIVE)
		mb->state = STORE_MB_SYNCING; /* set below through the store */
	e->stats.mailboxes++;
	(*state_count(e, mb->state))++;
	if (row->state == STORE_MB_LIVE &&
	    store_mailbox_set_state(e->store, mb->smtp, STORE_MB_SYNCING, NULL, &err) < 0)
		log_err("store: %s: %s", mb->smtp, err.msg);
	if (e->n_mbs == e->cap_mbs) {
		e->cap_mbs = e->cap_mbs ? 2 * e->cap_mbs : 64;
		e->mbs = xreallocarray(e->mbs, e->cap_mbs, sizeof(*e->mbs));
	}
	mb->slot = e->n_mbs;
	e->mbs[e->n_mbs++] = mb;
	return mb;
}

/* Removes a mailbox that is no longer configured: unsubscribes it, then frees it. */
void mb_remove(struct mb *mb)
{
	struct sync_engine *e = mb->e;
	struct err err = {0};

	if (store_mailbox_remove(e->store, mb->smtp, &err) < 0)
		log_err("store: %s: %s", mb->smtp, err.msg);
	log_info("%s: removed from the configuration", mb->smtp);
	e->stats.mailboxes--;
	(*state_count(e, mb->state))--;
	mb->removed = true;
	/* A re-add while it still unsubscribes makes a new mailbox. */
	HASH_DEL(e->by_smtp, mb);
	mb->hashed = false;
	uv_timer_stop(&mb->presence_timer);
	mb_cancel_call(mb);
	mb->needs = mb->sub_id ? NEED_UNSUBSCRIBE : 0;
	mb->not_before_usec = 0;
	if (mb->needs == 0 && mb->action == ACT_NONE)
		mb_destroy(mb);
	else
		mb_kick(mb);
}

/* Adds (or re-enables) smtp in the store and starts syncing it. 0 or the store's error. */
int mb_add(struct sync_engine *e, const char *smtp, struct mb **out_mb, struct err *err)
{
	struct store_mailbox row = {0};
	struct mb *mb;
	int rc = store_mailbox_add(e->store, smtp, NULL, NULL, err);

	if (rc == 0)
		rc = store_mailbox_get(e->store, smtp, &row, err);
	if (rc < 0)
		return rc;
	mb = mb_new(e, &row);
	store_mailbox_clear(&row);
	if (e->started)
		mb_kick(mb);
	if (out_mb)
		*out_mb = mb;
	return 0;
}

/* A set of addresses, by lower-case key. */
struct name {
	char *key;
	UT_hash_handle hh;
};

static void names_add(struct name **set, const char *smtp)
{
	struct name *nm = xcalloc(1, sizeof(*nm));

	nm->key = lower_dup(smtp);
	HASH_ADD_KEYPTR(hh, *set, nm->key, strlen(nm->key), nm);
}

static bool names_has(struct name *set, const char *smtp)
{
	char *key = lower_dup(smtp);
	struct name *nm;

	HASH_FIND_STR(set, key, nm);
	free(key);
	return nm != NULL;
}

static void names_free(struct name **set)
{
	struct name *nm, *tmp;

	HASH_ITER(hh, *set, nm, tmp)
	{
		HASH_DEL(*set, nm);
		free(nm->key);
		free(nm);
	}
}

/* The configuration's pins (<mailbox backend>): a pinned mailbox served by another backend
 * moves to its own, and finds its home there. */
static void apply_pins(struct sync_engine *e, const struct cfg *cfg)
{
	for (size_t i = 0; i < cfg->n_mailboxes; i++) {
		struct mb *mb = mb_find(e, cfg->mailboxes[i]);
		enum cfg_backend b =
			cfg->mailbox_backends != NULL ? cfg->mailbox_backends[i] : CFG_BACKEND_AUTO;
		int want = b == CFG_BACKEND_AUTO ? -1 : eng_backend_index(e, cfg_backend_name(b));

		if (mb == NULL)
			continue;
		mb->forced_bk = want;
		if (want < 0 || mb->bk == (unsigned)want)
			continue;
		if (mb->action == ACT_NONE)
			mb_rehome(mb, (unsigned)want);
		if (mb->bk != 0 || e->cfg->ews_url == NULL || mb->action != ACT_NONE)
			mb->needs |= NEED_DISCOVER;
		if (e->started)
			mb_kick(mb);
	}
}

/*
 * Makes the engine's mailboxes those of cfg (and the ones added through the API): disables the
 * stored ones no longer configured and adds the new ones. One read of the stored list; only a
 * mailbox that is not already enabled in the store costs a write, so a restart with 50,000
 * mailboxes writes nothing here.
 */
int sync_mailboxes(struct sync_engine *e, const struct cfg *cfg, struct err *err)
{
	struct store_mailbox *rows = NULL;
	size_t n_rows = 0;
	struct name *configured = NULL, *stored = NULL;
	int rc = store_mailbox_list(e->store, STORE_MB_ENABLED, &rows, &n_rows, err);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n_rows; i++)
		names_add(&stored, rows[i].smtp);
	for (size_t i = 0; i < cfg->n_mailboxes; i++)
		names_add(&configured, cfg->mailboxes[i]);
	/* Stored and enabled: keep (start it if new to the engine) or disable. */
	for (size_t i = 0; i < n_rows; i++) {
		struct mb *mb = mb_find(e, rows[i].smtp);

		if (!names_has(configured, rows[i].smtp) && !rows[i].by_api) {
			if (mb)
				mb_remove(mb);
			else if (store_mailbox_remove(e->store, rows[i].smtp, err) < 0)
				log_err("store: %s: %s", rows[i].smtp, err->msg);
		} else if (mb == NULL) {
			mb = mb_new(e, &rows[i]);
			if (e->started)
				mb_kick(mb);
		}
	}
	/* Configured but not enabled in the store: add (or re-enable) and start it. */
	for (size_t i = 0; rc == 0 && i < cfg->n_mailboxes; i++) {
		const char *smtp = cfg->mailboxes[i];

		if (!names_has(stored, smtp) && mb_find(e, smtp) == NULL)
			rc = mb_add(e, smtp, NULL, err);
	}
	if (rc == 0)
		apply_pins(e, cfg);
	names_free(&configured);
	names_free(&stored);
	store_mailboxes_free(rows, n_rows);
	return rc;
}
