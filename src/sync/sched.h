/* SPDX-License-Identifier: MIT */
/*
 * sched.h: what a mailbox does next and when, as pure functions of a plain description of its
 * state and an injected "now" (monotonic microseconds). The engine builds a sync_sched_in from
 * its mailbox, asks, and acts on the answer: queue the mailbox, arm its work timer, or leave it.
 * No I/O, no clock, no engine or EWS types, so the mailbox state machine is unit-tested
 * (test-sync-sched.c) the way the presence engine is.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* What a mailbox still needs: the bits of sync_sched_in.needs. */
enum sync_need {
	SYNC_NEED_DISCOVER = 1u << 0,    /* Autodiscover: its EWS endpoint is unknown */
	SYNC_NEED_SUBSCRIBE = 1u << 1,   /* a notification subscription */
	SYNC_NEED_READ = 1u << 2,        /* a read of its calendar window */
	SYNC_NEED_POLL = 1u << 3,        /* pull mode: a GetEvents on its subscription */
	SYNC_NEED_UNSUBSCRIBE = 1u << 4, /* removed or shutting down: drop its subscription */
};

/* A step of the mailbox state machine, in the order of importance of the needs. */
enum sync_step {
	SYNC_STEP_NONE = 0, /* nothing to do and nothing to wait for */
	SYNC_STEP_BACKOFF,  /* backing off after errors: ask again at due_usec */
	SYNC_STEP_UNSUBSCRIBE,
	SYNC_STEP_DISCOVER,
	SYNC_STEP_SUBSCRIBE,
	SYNC_STEP_READ,
	SYNC_STEP_POLL,
};

/* The mailbox as the scheduler sees it. Times are monotonic microseconds (clock_now_usec). */
struct sync_sched_in {
	unsigned needs;          /* enum sync_need bits */
	bool started;            /* the engine has started (before that, only unsubscribing runs) */
	bool stopping;           /* the engine stops or the mailbox was removed: only unsubscribe */
	int64_t not_before_usec; /* back-off: no step before this; 0 or past: none */
	int64_t read_due_usec;   /* when the pending read is due (with SYNC_NEED_READ) */
	bool read_urgent;        /* the pending read follows a notification */
	int64_t poll_due_usec;   /* when the next GetEvents is due (with SYNC_NEED_POLL) */
	int64_t safety_due_usec; /* when the safety refresh re-reads the window; 0: not scheduled */
};

/* The decision. */
struct sync_sched_out {
	enum sync_step step; /* the step that is due now, or the first one that becomes due */
	/*
	 * ready: queue the mailbox now (urgent: in the urgent queue, ahead of bulk work). Else,
	 * when due_usec is not INT64_MAX, arm the mailbox's timer for due_usec and ask again then;
	 * INT64_MAX (with SYNC_STEP_NONE): wait for an event.
	 */
	bool ready;
	bool urgent;
	int64_t due_usec;
	/* The safety refresh is due and no read was pending: the caller records a read due now,
	 * not urgent (adds SYNC_NEED_READ, read_due_usec = now, read_urgent = false). */
	bool safety_read;
};

/*
 * Decides what the mailbox waits for: always writes all of *out. In order: a stopping mailbox
 * only unsubscribes (at once, back-off or not); nothing runs before the engine starts; a
 * back-off defers everything; then unsubscribe, Autodiscover and subscribe are queued at once
 * (bulk), a due read (urgent when it follows a notification) or a due poll (urgent) is queued,
 * and otherwise the timer waits for the earliest of the pending read, the poll and the safety
 * refresh (a refresh already due is the pending read); a read wins a tie. A timer's due_usec is
 * always in the future.
 */
void sync_sched_next(const struct sync_sched_in *in, int64_t now_usec, struct sync_sched_out *out);

/*
 * The step a mailbox taken from a ready queue starts: its most important need, whether or not
 * that one is due (a mailbox queued for its poll reads first when a read is pending too), only
 * unsubscribing when stopping. SYNC_STEP_NONE when there is nothing to start.
 */
enum sync_step sync_sched_start(const struct sync_sched_in *in);

/*
 * What a newly configured mailbox needs: Autodiscover unless an endpoint is known (configured
 * or stored for it), a subscription unless one is stored (a stored one is tried; the server says
 * when it is gone), in pull mode with a stored subscription a poll (due at once: the caller
 * leaves poll_due_usec 0), and always a read. Returns enum sync_need bits.
 */
unsigned sync_sched_initial_needs(bool endpoint_known, bool has_subscription, bool streaming);

/* A name for logs and tests: "none", "backoff", "unsubscribe", ... */
const char *sync_step_name(enum sync_step step);
