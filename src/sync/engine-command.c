/* SPDX-License-Identifier: MIT */
/*
 * engine-command.c: what other threads see and ask: commands from the API thread, the stats
 * snapshot, the status with groups and last errors, and the per-operation counters.
 */
#include "sync/engine-int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- small helpers --------------------------------------------------------------------- */

const double sync_latency_bounds[SYNC_LATENCY_BUCKETS] = {0.01, 0.025, 0.05, 0.1, 0.25,
                                                          0.5,  1,     2.5,  5,   10};

const char *sync_op_name(enum sync_op op)
{
	static const char *const names[SYNC_OP_COUNT] = {
		"GetUserSettings", "Subscribe",   "FindItem",
		"GetEvents",       "Unsubscribe", "GetStreamingEvents",
	};

	return (unsigned)op < SYNC_OP_COUNT ? names[op] : "unknown";
}

/* Counts one finished request of op: its result and, for buffered calls, its latency. */
void eng_count_op(struct sync_engine *e, enum sync_op op, bool ok, int64_t elapsed_usec)
{
	struct sync_op_stats *o = &e->stats.ops[op];
	double sec = (double)elapsed_usec / 1e6;

	if (ok)
		o->ok++;
	else
		o->error++;
	if (op == SYNC_OP_GET_STREAMING_EVENTS)
		return; /* a stream's life is not a latency */
	for (size_t i = 0; i < SYNC_LATENCY_BUCKETS; i++)
		if (sec <= sync_latency_bounds[i])
			o->latency_le[i]++;
	o->latency_count++;
	o->latency_sum += sec;
}

/* Keeps the last SYNC_STATUS_ERRORS errors for `calsync status` (the log has them all). */
void eng_record_error(struct sync_engine *e, const char *mailbox, const char *what,
                      const char *message)
{
	struct sync_error_info *x;

	pthread_mutex_lock(&e->lock);
	x = &e->errors[e->err_next];
	e->err_next = (e->err_next + 1) % SYNC_STATUS_ERRORS;
	if (e->n_errors < SYNC_STATUS_ERRORS)
		e->n_errors++;
	x->time_utc = sync_engine_now_utc(e);
	snprintf(x->mailbox, sizeof(x->mailbox), "%s", mailbox ? mailbox : "");
	snprintf(x->what, sizeof(x->what), "%s", what);
	snprintf(x->message, sizeof(x->message), "%s", message);
	pthread_mutex_unlock(&e->lock);
}

/* ---- other threads: commands and stats ---------------------------------------------- */

void eng_publish_stats(struct sync_engine *e)
{
	struct sync_stats st = e->stats;
	int64_t now = clock_now_usec();
	struct sync_group_info *gi = NULL;
	size_t n;

	st.in_flight = e->in_flight;
	for (size_t i = 0; i < e->n_mbs; i++) {
		st.queued += mb_queued(e->mbs[i]);
		st.backing_off += e->mbs[i]->not_before_usec > now;
	}
	n = 0;
	for (size_t i = 0; i < e->n_bks; i++) {
		struct sync_group_info *more = NULL;
		size_t k;

		e->bks[i].ops->stats(e->bks[i].b, &st);
		k = e->bks[i].ops->groups(e->bks[i].b, &more, &st.streams_backing_off);
		if (k > 0) {
			gi = xreallocarray(gi, n + k, sizeof(*gi));
			memcpy(gi + n, more, k * sizeof(*gi));
			n += k;
		}
		free(more);
	}
	pthread_mutex_lock(&e->lock);
	e->snapshot = st;
	free(e->snap_groups);
	e->snap_groups = gi;
	e->n_snap_groups = n;
	pthread_mutex_unlock(&e->lock);
}

/*
 * While mailboxes are still being synced (the first start, a reload that adds many), says how
 * far it got: every 2 s on a terminal, every 10 s in a log.
 */
static void report_progress(struct sync_engine *e)
{
	const struct sync_stats *st = &e->stats;
	int64_t now = clock_now_usec();
	int64_t every = isatty(STDERR_FILENO) ? 2 * USEC_PER_SEC : 10 * USEC_PER_SEC;
	size_t pending = st->syncing + st->unresolved;
	double rate;

	if (pending == 0 || !log_enabled(LOG_LEVEL_INFO)) {
		e->progress_usec = 0;
		return;
	}
	if (e->progress_usec == 0) {
		e->progress_usec = now;
		e->progress_live = st->live;
		return;
	}
	if (now - e->progress_usec < every)
		return;
	rate = (double)(st->live - (st->live < e->progress_live ? st->live : e->progress_live)) /
	       ((double)(now - e->progress_usec) / 1e6);
	log_info("syncing: %zu of %zu mailboxes live, %zu syncing, %zu unresolved, %zu parked "
	         "(%.0f/s)",
	         st->live, st->mailboxes, st->syncing, st->unresolved, st->parked, rate);
	e->progress_usec = now;
	e->progress_live = st->live;
}

void eng_on_stats_timer(uv_timer_t *t)
{
	eng_publish_stats(t->data);
	report_progress(t->data);
}

/* Drops one reference; the caller holds e->lock. */
static void command_release(struct command *c)
{
	if (--c->refs > 0)
		return;
	free(c->smtp);
	free(c);
}

static int command_add(struct sync_engine *e, struct command *c)
{
	const char *why = cfg_address_problem(c->smtp);
	struct mb *mb;
	int rc;

	if (why != NULL)
		return err_set(&c->err, -EINVAL, "'%.100s' is not a mailbox address: %s", c->smtp,
		               why);
	if (mb_find(e, c->smtp) != NULL)
		return err_set(&c->err, -EEXIST, "%s is already synced", c->smtp);
	rc = mb_add(e, c->smtp, &mb, &c->err);
	if (rc == 0)
		rc = store_mailbox_set_by_api(e->store, mb->smtp, true, &c->err);
	if (rc == 0)
		log_info("%s: added through the API", mb->smtp);
	return rc;
}

static int run_command(struct sync_engine *e, struct command *c)
{
	struct mb *mb;
	int rc;

	if (c->cmd == SYNC_CMD_ADD)
		return command_add(e, c);
	mb = mb_find(e, c->smtp);
	if (mb == NULL)
		return err_set(&c->err, -ENOENT, "%.100s is not synced", c->smtp);
	if (c->cmd == SYNC_CMD_RESYNC) {
		log_info("%s: re-read asked for through the API", mb->smtp);
		mb_schedule_read(mb, 0, true);
		return 0;
	}
	rc = store_mailbox_set_by_api(e->store, mb->smtp, false, &c->err);
	if (rc < 0)
		return rc;
	mb_remove(mb);
	return 0;
}

void eng_on_command(uv_async_t *h)
{
	struct sync_engine *e = h->data;

	for (;;) {
		struct list_node *n;
		struct command *c;

		pthread_mutex_lock(&e->lock);
		n = list_pop(&e->commands);
		pthread_mutex_unlock(&e->lock);
		if (n == NULL)
			break;
		c = container_of(n, struct command, link);
		if (e->stopping)
			c->rc = err_set(&c->err, -ESHUTDOWN, "calsync is stopping");
		else
			c->rc = run_command(e, c);
		eng_dispatch(e);
		eng_batch_commit(e); /* the caller may read the store once we answer */
		eng_publish_stats(e);
		pthread_mutex_lock(&e->lock);
		c->done = true;
		pthread_cond_broadcast(&e->cmd_done);
		command_release(c);
		pthread_mutex_unlock(&e->lock);
	}
}

int sync_engine_command(struct sync_engine *e, enum sync_cmd cmd, const char *smtp, struct err *err)
{
	struct command *c = xcalloc(1, sizeof(*c));
	struct timespec deadline;
	int rc;

	c->cmd = cmd;
	c->smtp = xstrdup(smtp);
	c->refs = 2;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += SYNC_COMMAND_USEC / USEC_PER_SEC;
	pthread_mutex_lock(&e->lock);
	if (e->shut) {
		pthread_mutex_unlock(&e->lock);
		free(c->smtp);
		free(c);
		return err_set(err, -ESHUTDOWN, "calsync is stopping");
	}
	list_append(&e->commands, &c->link);
	/* Under the lock: the loop closes the async handle only after setting shut under it. */
	uv_async_send(&e->cmd_async);
	while (!c->done) {
		if (pthread_cond_timedwait(&e->cmd_done, &e->lock, &deadline) == ETIMEDOUT)
			break;
	}
	if (c->done) {
		rc = c->rc;
		if (err && rc < 0)
			*err = c->err;
	} else {
		rc = err_set(err, -ETIMEDOUT, "the sync engine did not answer within %d s",
		             (int)(SYNC_COMMAND_USEC / USEC_PER_SEC));
	}
	command_release(c);
	pthread_mutex_unlock(&e->lock);
	return rc;
}

void sync_engine_status(struct sync_engine *e, struct sync_status *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&e->lock);
	out->stats = e->snapshot;
	if (e->n_snap_groups > 0) {
		out->groups = xcalloc(e->n_snap_groups, sizeof(*out->groups));
		memcpy(out->groups, e->snap_groups, e->n_snap_groups * sizeof(*out->groups));
		out->n_groups = e->n_snap_groups;
	}
	for (size_t i = 0; i < e->n_errors; i++) {
		size_t k = (e->err_next + SYNC_STATUS_ERRORS - 1 - i) % SYNC_STATUS_ERRORS;

		out->errors[out->n_errors++] = e->errors[k];
	}
	pthread_mutex_unlock(&e->lock);
}

void sync_status_clear(struct sync_status *st)
{
	free(st->groups);
	memset(st, 0, sizeof(*st));
}

void sync_engine_stats_snapshot(struct sync_engine *e, struct sync_stats *out)
{
	pthread_mutex_lock(&e->lock);
	*out = e->snapshot;
	pthread_mutex_unlock(&e->lock);
}

void sync_engine_set_change_hook(struct sync_engine *e, void (*fn)(void *ctx, int64_t id),
                                 void *ctx)
{
	e->change_hook = fn;
	e->change_ctx = ctx;
}

/* No more commands: pending ones get -ESHUTDOWN. */
void eng_commands_shut(struct sync_engine *e)
{
	pthread_mutex_lock(&e->lock);
	e->shut = true;
	for (struct list_node *n; (n = list_pop(&e->commands)) != NULL;) {
		struct command *c = container_of(n, struct command, link);

		c->rc = err_set(&c->err, -ESHUTDOWN, "calsync is stopping");
		c->done = true;
		command_release(c);
	}
	pthread_cond_broadcast(&e->cmd_done);
	pthread_mutex_unlock(&e->lock);
}
