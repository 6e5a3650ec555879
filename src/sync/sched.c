/* SPDX-License-Identifier: MIT */
/*
 * sched.c: the mailbox scheduling decision (sched.h): which need comes next and when. Pure:
 * everything it knows arrives in struct sync_sched_in and the now it is given.
 */
#include "sync/sched.h"

#include <stddef.h>

static void set(struct sync_sched_out *out, enum sync_step step, bool ready, bool urgent,
                int64_t due_usec)
{
	out->step = step;
	out->ready = ready;
	out->urgent = urgent;
	out->due_usec = due_usec;
}

void sync_sched_next(const struct sync_sched_in *in, int64_t now_usec, struct sync_sched_out *out)
{
	unsigned needs = in->needs;
	int64_t read_due = in->read_due_usec;
	bool read_urgent = in->read_urgent;
	int64_t due = INT64_MAX;
	enum sync_step step = SYNC_STEP_NONE;

	set(out, SYNC_STEP_NONE, false, false, INT64_MAX);
	out->safety_read = false;
	/* Shutting down or removed: unsubscribe, however the mailbox was backing off. */
	if (in->stopping) {
		if (needs & SYNC_NEED_UNSUBSCRIBE)
			set(out, SYNC_STEP_UNSUBSCRIBE, true, false, now_usec);
		return;
	}
	if (!in->started)
		return;
	if (now_usec < in->not_before_usec) {
		set(out, SYNC_STEP_BACKOFF, false, false, in->not_before_usec);
		return;
	}
	/* The steps that put the mailbox in a state to read go first, as bulk work. */
	if (needs & SYNC_NEED_UNSUBSCRIBE) {
		set(out, SYNC_STEP_UNSUBSCRIBE, true, false, now_usec);
		return;
	}
	if (needs & SYNC_NEED_DISCOVER) {
		set(out, SYNC_STEP_DISCOVER, true, false, now_usec);
		return;
	}
	if (needs & SYNC_NEED_SUBSCRIBE) {
		set(out, SYNC_STEP_SUBSCRIBE, true, false, now_usec);
		return;
	}
	/* The safety refresh turns into an ordinary read, due now, unless one is pending. */
	if (in->safety_due_usec != 0 && in->safety_due_usec <= now_usec &&
	    !(needs & SYNC_NEED_READ)) {
		out->safety_read = true;
		needs |= SYNC_NEED_READ;
		read_due = now_usec;
		read_urgent = false;
	}
	if (needs & SYNC_NEED_READ) {
		if (read_due <= now_usec) {
			set(out, SYNC_STEP_READ, true, read_urgent, now_usec);
			return;
		}
		due = read_due;
		step = SYNC_STEP_READ;
	}
	if (needs & SYNC_NEED_POLL) {
		if (in->poll_due_usec <= now_usec) {
			set(out, SYNC_STEP_POLL, true, true, now_usec);
			return;
		}
		if (in->poll_due_usec < due) {
			due = in->poll_due_usec;
			step = SYNC_STEP_POLL;
		}
	}
	/* A refresh already due here has a read pending (above), which is the refresh: only a
	 * future one is a time to wake for. A past due time would fire the timer at once, over and
	 * over, until the pending read came due. */
	if (in->safety_due_usec > now_usec && in->safety_due_usec < due) {
		due = in->safety_due_usec;
		step = SYNC_STEP_READ;
	}
	set(out, step, false, false, due);
}

enum sync_step sync_sched_start(const struct sync_sched_in *in)
{
	if (in->needs & SYNC_NEED_UNSUBSCRIBE)
		return SYNC_STEP_UNSUBSCRIBE;
	if (in->stopping)
		return SYNC_STEP_NONE;
	if (in->needs & SYNC_NEED_DISCOVER)
		return SYNC_STEP_DISCOVER;
	if (in->needs & SYNC_NEED_SUBSCRIBE)
		return SYNC_STEP_SUBSCRIBE;
	if (in->needs & SYNC_NEED_READ)
		return SYNC_STEP_READ;
	if (in->needs & SYNC_NEED_POLL)
		return SYNC_STEP_POLL;
	return SYNC_STEP_NONE;
}

unsigned sync_sched_initial_needs(bool endpoint_known, bool has_subscription, bool streaming)
{
	unsigned needs = SYNC_NEED_READ;

	if (!endpoint_known)
		needs |= SYNC_NEED_DISCOVER;
	if (!has_subscription)
		needs |= SYNC_NEED_SUBSCRIBE;
	else if (!streaming)
		needs |= SYNC_NEED_POLL;
	return needs;
}

const char *sync_step_name(enum sync_step step)
{
	static const char *const names[] = {
		[SYNC_STEP_NONE] = "none",
		[SYNC_STEP_BACKOFF] = "backoff",
		[SYNC_STEP_UNSUBSCRIBE] = "unsubscribe",
		[SYNC_STEP_DISCOVER] = "discover",
		[SYNC_STEP_SUBSCRIBE] = "subscribe",
		[SYNC_STEP_READ] = "read",
		[SYNC_STEP_POLL] = "poll",
	};

	if ((unsigned)step >= sizeof(names) / sizeof(names[0]))
		return "?";
	return names[step];
}
