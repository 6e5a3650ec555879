/* SPDX-License-Identifier: MIT */
/*
 * engine-sched.c: scheduling: the ready queues (base/list.h: O(1) in and out), what a mailbox
 * needs next (mb_kick) and starting it through the backend (mb_start), Autodiscover batches,
 * and dispatch under the in-flight caps.
 */
#include "sync/engine-int.h"

static void on_dispatch_idle(uv_idle_t *h);

/* ---- ready queues and dispatch ----------------------------------------------------- */

static void enqueue(struct mb *mb, enum queue_kind q)
{
	struct sync_engine *e = mb->e;

	if (mb_queued(mb))
		return;
	list_append(&e->queue[q], &mb->q_link);
	if (!e->dispatch_pending) {
		e->dispatch_pending = true;
		uv_idle_start(&e->dispatch_idle, on_dispatch_idle);
	}
}

static struct mb *dequeue(struct sync_engine *e)
{
	for (int q = 0; q < Q_COUNT; q++) {
		struct list_node *n = list_pop(&e->queue[q]);

		if (n != NULL)
			return container_of(n, struct mb, q_link);
	}
	return NULL;
}

/* The mailbox at the head of queue q, or NULL. */
static const struct mb *queue_first(const struct sync_engine *e, enum queue_kind q)
{
	const struct list_node *n = list_first(&e->queue[q]);

	return n != NULL ? container_of_const(n, struct mb, q_link) : NULL;
}

bool mb_queued(const struct mb *mb)
{
	return list_linked(&mb->q_link);
}

/* ---- per-mailbox scheduling ---------------------------------------------------------- */

static void on_work_timer(uv_timer_t *t)
{
	mb_kick(t->data);
}

static void arm_work_timer(struct mb *mb, int64_t due_usec)
{
	int64_t now = clock_now_usec();

	uv_timer_start(&mb->work_timer, on_work_timer, eng_usec_to_ms(due_usec - now), 0);
}

/* The mailbox as sync/sched.c's pure decisions see it. */
static void mb_sched_in(const struct mb *mb, struct sync_sched_in *in)
{
	*in = (struct sync_sched_in){
		.needs = mb->needs,
		.started = mb->e->started,
		.stopping = mb->e->stopping || mb->removed,
		.not_before_usec = mb->not_before_usec,
		.read_due_usec = mb->read_due_usec,
		.read_urgent = mb->read_urgent,
		.poll_due_usec = mb->poll_due_usec,
		.safety_due_usec = mb->safety_due_usec,
	};
}

/*
 * Does what sync_sched_next decides: queues the mailbox for its most important due need, or
 * arms its timer for the first need that becomes due. Safe to call any time.
 */
void mb_kick(struct mb *mb)
{
	int64_t now = clock_now_usec();
	struct sync_sched_in in;
	struct sync_sched_out out;

	if (mb->action != ACT_NONE || mb_queued(mb) || mb->closing)
		return;
	uv_timer_stop(&mb->work_timer);
	mb_sched_in(mb, &in);
	sync_sched_next(&in, now, &out);
	if (out.safety_read) {
		mb->needs |= NEED_READ;
		mb->read_due_usec = now;
		mb->read_urgent = false;
	}
	if (out.ready)
		enqueue(mb, out.urgent ? Q_URGENT : Q_BULK);
	else if (out.due_usec != INT64_MAX)
		arm_work_timer(mb, out.due_usec);
}

/*
 * A notification said the mailbox changed: read it once no notification came for the debounce,
 * but at most SYNC_DEBOUNCE_CAP after the first one of the burst. So a burst (Outlook saving a
 * meeting sends several events within a second) costs one read, and a single change is read
 * after the debounce alone. A read already due earlier for another reason stays due.
 */
void mb_schedule_read(struct mb *mb, int64_t delay_usec, bool urgent)
{
	int64_t now = clock_now_usec();
	int64_t due = now + delay_usec;

	if (!(mb->needs & NEED_READ)) {
		mb->read_due_usec = due;
		mb->burst_usec = urgent ? now : 0;
	} else if (urgent && mb->burst_usec != 0 && mb->read_due_usec > now) {
		int64_t cap = mb->burst_usec + SYNC_DEBOUNCE_CAP(delay_usec);

		mb->read_due_usec = due < cap ? due : cap;
		if (mb->read_due_usec < now)
			mb->read_due_usec = now;
	} else if (due < mb->read_due_usec) {
		mb->read_due_usec = due;
	}
	mb->needs |= NEED_READ;
	mb->read_urgent = mb->read_urgent || urgent;
	if (mb->action == ACT_NONE && !mb_queued(mb))
		mb_kick(mb);
}

/* The window of a read started now: from midnight UTC past days ago to now + ahead days. */
static void window_now(const struct sync_engine *e, int64_t *start, int64_t *end)
{
	int64_t now = sync_engine_now_utc(e);
	int64_t midnight = now - ((now % DAY_SEC) + DAY_SEC) % DAY_SEC;

	*start = midnight - e->cfg->window_past_days * DAY_SEC;
	*end = now + e->cfg->window_ahead_days * DAY_SEC;
}

/* The backend that finds mb's home: the configured one; the one a discover answer sent it to;
 * else the first (EWS Autodiscover, which answers a mailbox that moved to the cloud with its
 * cloud address). */
static unsigned discoverer(const struct mb *mb)
{
	if (mb->forced_bk >= 0)
		return (unsigned)mb->forced_bk;
	return mb->discover_here ? mb->bk : 0;
}

/* Takes up to max more queued mailboxes that need Autodiscover from the bulk queue into mbs,
 * marking them as discovering; returns how many. */
static size_t take_discovers(struct sync_engine *e, const struct mb *first, struct mb **mbs,
                             size_t max)
{
	struct list_node *pos, *tmp;
	size_t n = 0;

	list_for_each_safe (pos, tmp, &e->queue[Q_BULK]) {
		struct mb *mb = container_of(pos, struct mb, q_link);

		if (n == max)
			break;
		if ((mb->needs & NEED_DISCOVER) && !(mb->needs & NEED_UNSUBSCRIBE) &&
		    discoverer(mb) == first->bk) {
			mb_rehome(mb, first->bk);
			list_unlink(&mb->q_link);
			mb->action = ACT_DISCOVER;
			mbs[n++] = mb;
		}
	}
	return n;
}

/* One discover request for first and up to SYNC_DISCOVER_BATCH - 1 more queued mailboxes that
 * also need it, on the service account's own budget. */
static int start_discover(struct sync_engine *e, struct mb *first, struct err *err)
{
	struct mb *mbs[SYNC_DISCOVER_BATCH];
	size_t n = 1;
	int rc;

	mbs[0] = first;
	n += take_discovers(e, first, mbs + 1, SYNC_DISCOVER_BATCH - 1);
	rc = mb_ops(first)->discover(mb_bs(first), mbs, n, err);
	if (rc < 0) {
		for (size_t i = 1; i < n; i++) {
			mbs[i]->action = ACT_NONE;
			mbs[i]->not_before_usec = clock_now_usec() + backoff_usec(e, 1);
			mb_kick(mbs[i]);
		}
		return rc;
	}
	e->in_flight++;
	e->account_in_flight++;
	e->stats.requests++;
	return 0;
}

/* A request of the mailbox is out (rc 0): it holds a slot until its answer. */
static int sent(struct mb *mb, int rc)
{
	if (rc == 0) {
		mb->e->in_flight++;
		mb->e->stats.requests++;
	}
	return rc;
}

/* Starts the mailbox's most important need. 0, or an error that is logged and retried. */
static int mb_start(struct mb *mb)
{
	struct sync_engine *e = mb->e;
	const struct sync_backend_ops *bk = mb_ops(mb);
	struct err err = {0};
	struct sync_sched_in in;
	enum sync_step step;
	int rc = 0;

	mb_sched_in(mb, &in);
	step = sync_sched_start(&in);
	if (step == SYNC_STEP_UNSUBSCRIBE) {
		mb->action = ACT_UNSUBSCRIBE;
		if (mb->sub_id == NULL) {
			mb->action = ACT_NONE;
			mb->needs &= ~NEED_UNSUBSCRIBE;
			return 0;
		}
		rc = sent(mb, bk->unsubscribe(mb_bs(mb), mb, &err));
	} else if (step == SYNC_STEP_NONE) {
		return 0;
	} else if (step == SYNC_STEP_DISCOVER) {
		mb->action = ACT_DISCOVER;
		if (bk->leave_home(mb_bs(mb), mb))
			mb_drop_subscription(mb, true);
		mb_rehome(mb, discoverer(mb));
		rc = start_discover(e, mb, &err);
	} else if (step == SYNC_STEP_SUBSCRIBE) {
		mb->action = ACT_SUBSCRIBE;
		rc = sent(mb, bk->subscribe(mb_bs(mb), mb, &err));
		if (rc == 0)
			e->stats.subscribes++;
		if (mb->state == STORE_MB_UNRESOLVED)
			mb_set_state(mb, STORE_MB_SYNCING, NULL);
	} else if (step == SYNC_STEP_READ) {
		mb->action = ACT_READ;
		mb->needs &= ~NEED_READ;
		mb->read_urgent = false;
		window_now(e, &mb->read_start_utc, &mb->read_end_utc);
		rc = sent(mb, bk->read(mb_bs(mb), mb, mb->read_start_utc, mb->read_end_utc, &err));
	} else if (step == SYNC_STEP_POLL) {
		mb->action = ACT_POLL;
		rc = sent(mb, bk->poll(mb_bs(mb), mb, &err));
	}
	if (rc < 0) {
		log_err("%s: cannot send: %s", mb->smtp, err.msg);
		mb->action = ACT_NONE;
		mb->failures++;
		mb->not_before_usec = clock_now_usec() + backoff_usec(e, mb->failures);
	}
	return rc;
}

/* ---- dispatch ------------------------------------------------------------------------ */

void eng_dispatch(struct sync_engine *e)
{
	while (e->in_flight < SYNC_MAX_IN_FLIGHT) {
		struct mb *mb;

		const struct mb *bulk = queue_first(e, Q_BULK);

		if (bulk && (bulk->needs & NEED_DISCOVER) && queue_first(e, Q_URGENT) == NULL &&
		    e->account_in_flight >= (size_t)e->cfg->concurrency)
			break; /* Autodiscover is charged to the service account: its own cap */
		mb = dequeue(e);
		if (mb == NULL)
			break;
		if (mb->closing)
			continue;
		if (mb_start(mb) < 0 || mb->action == ACT_NONE)
			mb_kick(mb);
	}
	if (e->stopping && e->in_flight == 0 && list_empty(&e->queue[Q_URGENT]) &&
	    list_empty(&e->queue[Q_BULK]) && e->stop_done) {
		void (*done)(void *) = e->stop_done;

		e->stop_done = NULL;
		uv_timer_stop(&e->stop_timer);
		log_info("unsubscribed; stopping");
		done(e->stop_ctx);
	}
}

static void on_dispatch_idle(uv_idle_t *h)
{
	struct sync_engine *e = h->data;

	uv_idle_stop(h);
	e->dispatch_pending = false;
	eng_dispatch(e);
}
