/* SPDX-License-Identifier: MIT */
/*
 * engine-presence.c: presence: recomputing it, its timers, the store's write batches that the
 * changes wait for, and the day timer that rolls the window.
 */
#include "sync/engine-int.h"

#include <stdlib.h>
#include <string.h>

static void on_presence_timer(uv_timer_t *t);
static void on_day_timer(uv_timer_t *t);

static void arm_presence_timer(struct mb *mb)
{
	struct sync_engine *e = mb->e;
	int64_t next = mb->has_presence ? mb->presence.next_change_utc : 0;

	uv_timer_stop(&mb->presence_timer);
	if (!mb->has_presence || next <= 0 || next == PRESENCE_NEVER || clock_frozen(&e->clock))
		return;
	{
		int64_t delay_ms = next * MSEC - eng_now_ms(e);

		uv_timer_start(&mb->presence_timer, on_presence_timer,
		               delay_ms < 0 ? 0 : (uint64_t)delay_ms, 0);
	}
}

/* ---- store batches ------------------------------------------------------------------- */

/* A committed presence change goes out: the JSON line, then the hook (SSE, webhooks). */
static void emit_change(struct sync_engine *e, const struct cal_change *c)
{
	struct err err = {0};

	if (e->change_hook)
		e->change_hook(e->change_ctx, c->id);
	if (e->out && output_write(e->out, c, &err) < 0)
		log_err("output: %s", err.msg);
}

static void pending_add(struct sync_engine *e, const struct cal_change *c)
{
	struct pending_line *l;

	if (e->n_pending == e->cap_pending) {
		e->cap_pending = e->cap_pending ? e->cap_pending * 2 : 64;
		e->pending = xreallocarray(e->pending, e->cap_pending, sizeof(*e->pending));
	}
	l = &e->pending[e->n_pending++];
	l->user = xstrdup(c->user);
	l->state = xstrdup(c->state);
	l->profile = xstrdup_or_null(c->profile);
	l->forward = xstrdup_or_null(c->forward);
	l->subject = xstrdup_or_null(c->subject);
	l->reason = xstrdup_or_null(c->reason);
	l->c = *c;
	l->c.user = l->user;
	l->c.state = l->state;
	l->c.profile = l->profile;
	l->c.forward = l->forward;
	l->c.subject = l->subject;
	l->c.reason = l->reason;
}

static void pending_line_clear(struct pending_line *l)
{
	free(l->user);
	free(l->state);
	free(l->profile);
	free(l->forward);
	free(l->subject);
	free(l->reason);
}

/*
 * Commits the open batch, then writes the presence lines it holds. When the commit fails,
 * nothing of the batch is stored: its lines are dropped (they never happened for the store, the
 * API or the webhooks), and the mailboxes whose presence changed in it are re-read after a
 * back-off and record their presence again.
 */
void eng_batch_commit(struct sync_engine *e)
{
	struct err err = {0};
	int rc;

	uv_timer_stop(&e->batch_timer);
	if (!store_in_batch(e->store))
		return;
	rc = store_batch_commit(e->store, &err);
	if (rc < 0)
		log_err("store: %zu presence changes and the sync state of this moment were not saved: "
		        "%s; re-reading those mailboxes",
		        e->n_pending, err.msg);
	for (size_t i = 0; i < e->n_pending; i++) {
		const struct cal_change *c = &e->pending[i].c;

		if (rc == 0) {
			emit_change(e, c);
		} else {
			struct mb *mb = mb_find(e, c->user);

			if (mb != NULL) {
				mb->has_presence = false;
				mb_schedule_read(mb, SYNC_RETRY_FIRST_USEC, false);
			}
		}
		pending_line_clear(&e->pending[i]);
	}
	e->n_pending = 0;
}

static void on_batch_timer(uv_timer_t *t)
{
	eng_batch_commit(t->data);
}

/* store_set_write_hook: the first write after a commit opens the next batch. */
void eng_batch_open(void *ctx)
{
	struct sync_engine *e = ctx;
	struct err err = {0};

	if (store_batch_begin(e->store, &err) < 0) {
		log_warn("store: %s; writing without a batch", err.msg);
		return;
	}
	uv_timer_start(&e->batch_timer, on_batch_timer, SYNC_BATCH_USEC / 1000, 0);
}

void mb_update_presence(struct mb *mb, const struct cal_occurrence *occ, size_t n, const char *why)
{
	struct sync_engine *e = mb->e;
	struct presence p;
	struct store_presence sp = {0};
	int64_t now = sync_engine_now_utc(e);
	struct err err = {0};
	const char *reason = why;
	int64_t id = 0;

	presence_compute(occ, n, &e->rules.rules, now, &p);
	sp.state = xstrdup(presence_state_name(p.state));
	sp.profile = xstrdup_or_null(p.profile);
	sp.forward = xstrdup_or_null(p.forward);
	sp.subject = xstrdup_or_null(p.subject);
	sp.since_utc = p.since_utc;
	sp.until_utc = p.until_utc == PRESENCE_NEVER ? 0 : p.until_utc;
	sp.next_change_utc = p.next_change_utc == PRESENCE_NEVER ? 0 : p.next_change_utc;
	sp.updated_utc = now;
	if (mb->has_presence && eng_str_eq(sp.state, mb->presence.state) &&
	    eng_str_eq(sp.profile, mb->presence.profile) &&
	    eng_str_eq(sp.forward, mb->presence.forward) &&
	    eng_str_eq(sp.subject, mb->presence.subject) &&
	    sp.since_utc == mb->presence.since_utc && sp.until_utc == mb->presence.until_utc) {
		if (sp.next_change_utc != mb->presence.next_change_utc) {
			mb->presence.next_change_utc = sp.next_change_utc;
			if (store_presence_put(e->store, mb->smtp, &sp, &err) < 0)
				log_err("store: %s: %s", mb->smtp, err.msg);
		}
		store_presence_clear(&sp);
		arm_presence_timer(mb);
		return;
	}
	if (!mb->has_presence)
		reason = "initial";
	else if (strcmp(why, "timer") == 0)
		/* A start when the winning appointment began at the boundary the timer waited
		 * for; an end otherwise (also when a shorter appointment inside a longer one
		 * ends and the longer one is in force again). */
		reason = p.winner >= 0 && mb->presence.next_change_utc > 0 &&
		                         occ[p.winner].start_utc >= mb->presence.next_change_utc
		                 ? "appointment-start"
		                 : "appointment-end";
	if (store_presence_record(e->store, mb->smtp, &sp, reason, &id, &err) < 0) {
		log_err("store: %s: presence not recorded: %s", mb->smtp, err.msg);
		store_presence_clear(&sp);
		return;
	}
	e->stats.presence_changes++;
	store_presence_clear(&mb->presence);
	mb->presence = sp; /* the strings move */
	mb->has_presence = true;
	{
		struct cal_change c = {
			.id = id,
			.time_utc = now,
			.user = mb->smtp,
			.state = sp.state,
			.profile = sp.profile,
			.forward = sp.forward,
			.subject = sp.subject,
			.since_utc = sp.since_utc,
			.until_utc = p.until_utc,
			.reason = reason,
		};

		if (store_in_batch(e->store))
			pending_add(e, &c);
		else
			emit_change(e, &c);
	}
	arm_presence_timer(mb);
}

/* Recomputes presence from the stored window (a timer, a clock or a rules change). */
void mb_recompute_stored(struct mb *mb, const char *why)
{
	struct cal_occurrence *occ = NULL;
	size_t n = 0;
	struct err err = {0};

	if (!mb->has_window)
		return;
	if (store_load_occurrences(mb->e->store, mb->smtp, &occ, &n, &err) < 0) {
		log_err("store: %s: %s", mb->smtp, err.msg);
		return;
	}
	mb_update_presence(mb, occ, n, why);
	cal_occurrences_free(occ, n);
}

static void on_presence_timer(uv_timer_t *t)
{
	struct mb *mb = t->data;

	if (eng_now_ms(mb->e) < mb->presence.next_change_utc * MSEC) {
		arm_presence_timer(mb); /* the wall clock lagged the monotonic one */
		return;
	}
	mb_recompute_stored(mb, "timer");
}

void eng_arm_day_timer(struct sync_engine *e)
{
	int64_t ms = eng_now_ms(e);
	int64_t next = (ms / (DAY_SEC * MSEC) + 1) * DAY_SEC * MSEC;

	if (clock_frozen(&e->clock))
		return;
	uv_timer_start(&e->day_timer, on_day_timer, (uint64_t)(next - ms) + 1000, 0);
}

/* Midnight UTC: the window rolls forward a day. Every mailbox is re-read within the next
 * quarter of an hour (staggered), unless its safety refresh comes sooner anyway. */
static void on_day_timer(uv_timer_t *t)
{
	struct sync_engine *e = t->data;
	int64_t now = clock_now_usec();
	int64_t spread = 15 * 60 * USEC_PER_SEC;

	if (spread > e->cfg->safety_refresh_usec)
		spread = e->cfg->safety_refresh_usec;
	for (size_t i = 0; i < e->n_mbs; i++) {
		struct mb *mb = e->mbs[i];
		int64_t due = now + (int64_t)(eng_rng_next(e) % (uint64_t)spread);

		if (mb->safety_due_usec == 0 || due < mb->safety_due_usec) {
			mb->safety_due_usec = due;
			if (mb->action == ACT_NONE && !mb_queued(mb))
				mb_kick(mb);
		}
	}
	eng_arm_day_timer(e);
}
