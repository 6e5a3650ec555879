/* SPDX-License-Identifier: MIT */
/* test-sync-sched.c: the mailbox scheduling decision, every step and edge, on a fixed now. */
#include "sync/sched.h"

#include "base/clock.h"
#include "harness.h"

#define NOW  (INT64_C(1000) * USEC_PER_SEC)
#define SEC  USEC_PER_SEC
#define NONE INT64_MAX

/* A started mailbox with nothing to do. */
static struct sync_sched_in idle(void)
{
	return (struct sync_sched_in){.started = true};
}

static struct sync_sched_out next(const struct sync_sched_in *in)
{
	struct sync_sched_out out;

	/* Garbage in, so that a field the function forgets to write shows. */
	memset(&out, 0x5a, sizeof(out));
	sync_sched_next(in, NOW, &out);
	return out;
}

/* The decision is queue-now (ready) in the given queue, for step. */
#define CHECK_READY(o, st, urg)                                           \
	do {                                                              \
		struct sync_sched_out o_ = (o);                           \
		CHECK_STREQ(sync_step_name(o_.step), sync_step_name(st)); \
		CHECK(o_.ready);                                          \
		CHECK_EQ(o_.urgent, (urg));                               \
		CHECK_EQ(o_.due_usec, NOW);                               \
	} while (0)

/* The decision is a timer at due for step. */
#define CHECK_WAIT(o, st, due)                                            \
	do {                                                              \
		struct sync_sched_out o_ = (o);                           \
		CHECK_STREQ(sync_step_name(o_.step), sync_step_name(st)); \
		CHECK(!o_.ready);                                         \
		CHECK(!o_.urgent);                                        \
		CHECK_EQ(o_.due_usec, (due));                             \
	} while (0)

TEST(nothing_to_do)
{
	struct sync_sched_in in = idle();
	struct sync_sched_out o = next(&in);

	CHECK_WAIT(o, SYNC_STEP_NONE, NONE);
	CHECK(!o.safety_read);
	CHECK_EQ(sync_sched_start(&in), SYNC_STEP_NONE);
}

TEST(not_started_does_nothing)
{
	struct sync_sched_in in = idle();

	in.started = false;
	in.needs = SYNC_NEED_DISCOVER | SYNC_NEED_SUBSCRIBE | SYNC_NEED_READ;
	CHECK_WAIT(next(&in), SYNC_STEP_NONE, NONE);
	/* Unsubscribing is not a start-up step either, unless stopping (below). */
	in.needs = SYNC_NEED_UNSUBSCRIBE;
	CHECK_WAIT(next(&in), SYNC_STEP_NONE, NONE);
}

TEST(stopping_only_unsubscribes)
{
	struct sync_sched_in in = idle();

	in.stopping = true;
	in.needs = SYNC_NEED_SUBSCRIBE | SYNC_NEED_READ | SYNC_NEED_POLL;
	in.poll_due_usec = NOW - SEC;
	CHECK_WAIT(next(&in), SYNC_STEP_NONE, NONE);
	CHECK_EQ(sync_sched_start(&in), SYNC_STEP_NONE);
	in.needs |= SYNC_NEED_UNSUBSCRIBE;
	CHECK_READY(next(&in), SYNC_STEP_UNSUBSCRIBE, false);
	CHECK_EQ(sync_sched_start(&in), SYNC_STEP_UNSUBSCRIBE);
}

TEST(stopping_ignores_backoff_and_start)
{
	struct sync_sched_in in = idle();

	/* Shutdown has a deadline: a mailbox in back-off unsubscribes now, as does one removed
	 * before the engine started. */
	in.stopping = true;
	in.started = false;
	in.not_before_usec = NOW + 300 * SEC;
	in.needs = SYNC_NEED_UNSUBSCRIBE;
	CHECK_READY(next(&in), SYNC_STEP_UNSUBSCRIBE, false);
}

TEST(backoff_not_yet_due)
{
	struct sync_sched_in in = idle();

	in.needs = SYNC_NEED_UNSUBSCRIBE | SYNC_NEED_READ;
	in.read_due_usec = NOW - SEC;
	in.not_before_usec = NOW + 30 * SEC;
	CHECK_WAIT(next(&in), SYNC_STEP_BACKOFF, NOW + 30 * SEC);
	/* Back-off wins even over a read that is due later still. */
	in.needs = SYNC_NEED_READ;
	in.read_due_usec = NOW + 60 * SEC;
	CHECK_WAIT(next(&in), SYNC_STEP_BACKOFF, NOW + 30 * SEC);
}

TEST(backoff_due_exactly_now_is_over)
{
	struct sync_sched_in in = idle();

	in.needs = SYNC_NEED_READ;
	in.read_due_usec = NOW;
	in.not_before_usec = NOW;
	CHECK_READY(next(&in), SYNC_STEP_READ, false);
	in.not_before_usec = NOW - 1;
	CHECK_READY(next(&in), SYNC_STEP_READ, false);
}

TEST(parked_waits_for_its_retry)
{
	struct sync_sched_in in = idle();

	/* What mb_failed leaves for a permanent mailbox error: subscribe and read again after the
	 * parked retry interval. */
	in.needs = SYNC_NEED_SUBSCRIBE | SYNC_NEED_READ;
	in.not_before_usec = NOW + 3600 * SEC;
	CHECK_WAIT(next(&in), SYNC_STEP_BACKOFF, NOW + 3600 * SEC);
	in.not_before_usec = NOW - SEC;
	CHECK_READY(next(&in), SYNC_STEP_SUBSCRIBE, false);
}

TEST(priorities_unsubscribe_discover_subscribe)
{
	struct sync_sched_in in = idle();

	in.needs = SYNC_NEED_UNSUBSCRIBE | SYNC_NEED_DISCOVER | SYNC_NEED_SUBSCRIBE |
	           SYNC_NEED_READ | SYNC_NEED_POLL;
	in.read_due_usec = NOW - SEC;
	in.read_urgent = true;
	in.poll_due_usec = NOW - SEC;
	CHECK_READY(next(&in), SYNC_STEP_UNSUBSCRIBE, false);
	CHECK_EQ(sync_sched_start(&in), SYNC_STEP_UNSUBSCRIBE);
	in.needs &= ~(unsigned)SYNC_NEED_UNSUBSCRIBE;
	CHECK_READY(next(&in), SYNC_STEP_DISCOVER, false);
	CHECK_EQ(sync_sched_start(&in), SYNC_STEP_DISCOVER);
	in.needs &= ~(unsigned)SYNC_NEED_DISCOVER;
	CHECK_READY(next(&in), SYNC_STEP_SUBSCRIBE, false);
	CHECK_EQ(sync_sched_start(&in), SYNC_STEP_SUBSCRIBE);
	in.needs &= ~(unsigned)SYNC_NEED_SUBSCRIBE;
	CHECK_READY(next(&in), SYNC_STEP_READ, true);
	CHECK_EQ(sync_sched_start(&in), SYNC_STEP_READ);
	in.needs &= ~(unsigned)SYNC_NEED_READ;
	CHECK_READY(next(&in), SYNC_STEP_POLL, true);
	CHECK_EQ(sync_sched_start(&in), SYNC_STEP_POLL);
}

TEST(setup_steps_do_not_wait_for_due_times)
{
	struct sync_sched_in in = idle();

	/* Discover and subscribe have no due time: they go as soon as back-off allows. */
	in.needs = SYNC_NEED_DISCOVER | SYNC_NEED_READ;
	in.read_due_usec = NOW + 60 * SEC;
	CHECK_READY(next(&in), SYNC_STEP_DISCOVER, false);
	in.needs = SYNC_NEED_SUBSCRIBE;
	CHECK_READY(next(&in), SYNC_STEP_SUBSCRIBE, false);
}

TEST(read_due_goes_by_urgency)
{
	struct sync_sched_in in = idle();

	in.needs = SYNC_NEED_READ;
	in.read_due_usec = NOW;
	in.read_urgent = false;
	CHECK_READY(next(&in), SYNC_STEP_READ, false);
	in.read_urgent = true;
	CHECK_READY(next(&in), SYNC_STEP_READ, true);
	/* A read due long ago (0: "at once", as a resubscribe leaves it) is due. */
	in.read_due_usec = 0;
	CHECK_READY(next(&in), SYNC_STEP_READ, true);
}

TEST(read_pending_waits_for_its_debounce)
{
	struct sync_sched_in in = idle();

	in.needs = SYNC_NEED_READ;
	in.read_due_usec = NOW + 2 * SEC;
	in.read_urgent = true;
	CHECK_WAIT(next(&in), SYNC_STEP_READ, NOW + 2 * SEC);
}

TEST(poll_due_is_urgent)
{
	struct sync_sched_in in = idle();

	in.needs = SYNC_NEED_POLL;
	in.poll_due_usec = NOW;
	CHECK_READY(next(&in), SYNC_STEP_POLL, true);
	in.poll_due_usec = NOW + 5 * SEC;
	CHECK_WAIT(next(&in), SYNC_STEP_POLL, NOW + 5 * SEC);
}

TEST(poll_due_while_read_waits)
{
	struct sync_sched_in in = idle();

	/* The poll is due, the debounced read is not: the mailbox is queued for its poll, and what
	 * a dequeued mailbox starts is its most important need, the read. */
	in.needs = SYNC_NEED_READ | SYNC_NEED_POLL;
	in.read_due_usec = NOW + 2 * SEC;
	in.poll_due_usec = NOW - SEC;
	CHECK_READY(next(&in), SYNC_STEP_POLL, true);
	CHECK_EQ(sync_sched_start(&in), SYNC_STEP_READ);
}

TEST(earliest_of_read_poll_and_refresh)
{
	struct sync_sched_in in = idle();

	in.needs = SYNC_NEED_READ | SYNC_NEED_POLL;
	in.read_due_usec = NOW + 3 * SEC;
	in.poll_due_usec = NOW + 2 * SEC;
	in.safety_due_usec = NOW + 600 * SEC;
	CHECK_WAIT(next(&in), SYNC_STEP_POLL, NOW + 2 * SEC);
	in.poll_due_usec = NOW + 4 * SEC;
	CHECK_WAIT(next(&in), SYNC_STEP_READ, NOW + 3 * SEC);
	/* A tie goes to the read, which is checked first when the timer fires. */
	in.poll_due_usec = NOW + 3 * SEC;
	CHECK_WAIT(next(&in), SYNC_STEP_READ, NOW + 3 * SEC);
	/* The safety refresh, when it comes first, is a read too. */
	in.needs = SYNC_NEED_POLL;
	in.safety_due_usec = NOW + 1 * SEC;
	CHECK_WAIT(next(&in), SYNC_STEP_READ, NOW + 1 * SEC);
	CHECK(!next(&in).safety_read);
}

TEST(refresh_due_becomes_a_read)
{
	struct sync_sched_in in = idle();
	struct sync_sched_out o;

	in.safety_due_usec = NOW - SEC;
	o = next(&in);
	CHECK_READY(o, SYNC_STEP_READ, false);
	CHECK(o.safety_read);
	/* In pull mode too, and ahead of a due poll; never urgent. */
	in.needs = SYNC_NEED_POLL;
	in.poll_due_usec = NOW - SEC;
	in.read_urgent = true; /* stale: there is no pending read */
	in.safety_due_usec = NOW;
	o = next(&in);
	CHECK_READY(o, SYNC_STEP_READ, false);
	CHECK(o.safety_read);
}

TEST(refresh_not_scheduled_or_not_due)
{
	struct sync_sched_in in = idle();

	in.safety_due_usec = 0; /* not scheduled: no timer at all */
	CHECK_WAIT(next(&in), SYNC_STEP_NONE, NONE);
	in.safety_due_usec = NOW + 900 * SEC;
	CHECK_WAIT(next(&in), SYNC_STEP_READ, NOW + 900 * SEC);
	CHECK(!next(&in).safety_read);
}

TEST(refresh_due_with_read_already_due)
{
	struct sync_sched_in in = idle();
	struct sync_sched_out o;

	/* A pending read covers the refresh: it keeps its own urgency, no second read. */
	in.needs = SYNC_NEED_READ;
	in.read_due_usec = NOW - SEC;
	in.read_urgent = true;
	in.safety_due_usec = NOW - 2 * SEC;
	o = next(&in);
	CHECK_READY(o, SYNC_STEP_READ, true);
	CHECK(!o.safety_read);
}

TEST(refresh_overdue_while_read_waits)
{
	struct sync_sched_in in = idle();
	struct sync_sched_out o;

	/* The refresh came due during a notification's debounce. The pending read is the refresh
	 * (it re-arms the refresh when it finishes), so the timer waits for the read: a due time in
	 * the past would fire the timer at once, again and again, until the read is due. */
	in.needs = SYNC_NEED_READ;
	in.read_due_usec = NOW + 2 * SEC;
	in.read_urgent = true;
	in.safety_due_usec = NOW - SEC;
	o = next(&in);
	CHECK_WAIT(o, SYNC_STEP_READ, NOW + 2 * SEC);
	CHECK(!o.safety_read);
	/* Due exactly now counts as overdue too; with a poll later than the read, still the read. */
	in.needs |= SYNC_NEED_POLL;
	in.poll_due_usec = NOW + 5 * SEC;
	in.safety_due_usec = NOW;
	CHECK_WAIT(next(&in), SYNC_STEP_READ, NOW + 2 * SEC);
}

TEST(setup_steps_before_refresh)
{
	struct sync_sched_in in = idle();
	struct sync_sched_out o;

	in.needs = SYNC_NEED_SUBSCRIBE;
	in.safety_due_usec = NOW - SEC;
	o = next(&in);
	CHECK_READY(o, SYNC_STEP_SUBSCRIBE, false);
	CHECK(!o.safety_read);
}

TEST(initial_needs)
{
	unsigned all = SYNC_NEED_DISCOVER | SYNC_NEED_SUBSCRIBE | SYNC_NEED_READ;

	/* Nothing known: Autodiscover, subscribe, read, in either mode. */
	CHECK_EQ(sync_sched_initial_needs(false, false, true), all);
	CHECK_EQ(sync_sched_initial_needs(false, false, false), all);
	/* A known endpoint (configured <ews url>, or stored from an earlier Autodiscover). */
	CHECK_EQ(sync_sched_initial_needs(true, false, true), SYNC_NEED_SUBSCRIBE | SYNC_NEED_READ);
	CHECK_EQ(sync_sched_initial_needs(true, false, false),
	         SYNC_NEED_SUBSCRIBE | SYNC_NEED_READ);
	/* A stored subscription is tried: streaming needs only the read, pull polls it too. */
	CHECK_EQ(sync_sched_initial_needs(true, true, true), SYNC_NEED_READ);
	CHECK_EQ(sync_sched_initial_needs(true, true, false), SYNC_NEED_POLL | SYNC_NEED_READ);
	/* Needs discover although a subscription is stored (no endpoint kept for it). */
	CHECK_EQ(sync_sched_initial_needs(false, true, true), SYNC_NEED_DISCOVER | SYNC_NEED_READ);
	CHECK_EQ(sync_sched_initial_needs(false, true, false),
	         SYNC_NEED_DISCOVER | SYNC_NEED_POLL | SYNC_NEED_READ);
}

TEST(new_pull_mailbox_with_stored_subscription)
{
	struct sync_sched_in in = idle();

	/* The poll is due at once (poll_due_usec 0) and so is the read (read_due_usec 0): the read
	 * is queued first, in bulk, and started first. */
	in.needs = sync_sched_initial_needs(true, true, false);
	CHECK_READY(next(&in), SYNC_STEP_READ, false);
	CHECK_EQ(sync_sched_start(&in), SYNC_STEP_READ);
	/* After the read, the poll. */
	in.needs &= ~(unsigned)SYNC_NEED_READ;
	CHECK_READY(next(&in), SYNC_STEP_POLL, true);
	CHECK_EQ(sync_sched_start(&in), SYNC_STEP_POLL);
}

/* The invariants of one decision (see below); the number broken. */
static int broken(const struct sync_sched_in *in)
{
	struct sync_sched_out o = next(in);
	enum sync_step st = sync_sched_start(in);
	int bad = 0;

	if (o.ready ? o.due_usec != NOW : o.due_usec != NONE && o.due_usec <= NOW)
		bad++;
	if ((o.step == SYNC_STEP_NONE) != (o.due_usec == NONE))
		bad++;
	if (in->stopping && o.step != SYNC_STEP_NONE && o.step != SYNC_STEP_UNSUBSCRIBE)
		bad++;
	if (o.safety_read && !(o.ready && o.step == SYNC_STEP_READ))
		bad++;
	/* The steps are in order of importance: a queued mailbox starts its step or a more
	 * important one (a safety read is not a need yet when sync_sched_start looks). */
	if (o.ready && !o.safety_read && (st == SYNC_STEP_NONE || st > o.step))
		bad++;
	return bad;
}

/*
 * Invariants over every combination of needs, flags and due times around now: a timer is never
 * armed for the past (it would fire at once, forever), a queued decision is due now, a stopping
 * mailbox only ever unsubscribes, and a queued mailbox starts the step it was queued for or a
 * more important need.
 */
TEST(invariants_over_all_states)
{
	static const int64_t offsets[] = {-SEC, 0, SEC, 2 * SEC};
	int bad = 0;

	/* needs (32) x started, stopping, read_urgent (8) x not_before, read, poll (4 each) x
	 * safety (0, or 4 offsets). */
	for (unsigned i = 0; i < 32u * 8 * 4 * 4 * 4 * 5; i++) {
		unsigned k = i;
		struct sync_sched_in in = {0};
		unsigned flags, sd;

		in.needs = k % 32;
		k /= 32;
		flags = k % 8;
		k /= 8;
		in.started = flags & 1;
		in.stopping = flags & 2;
		in.read_urgent = flags & 4;
		in.not_before_usec = NOW + offsets[k % 4];
		k /= 4;
		in.read_due_usec = NOW + offsets[k % 4];
		k /= 4;
		in.poll_due_usec = NOW + offsets[k % 4];
		k /= 4;
		sd = k % 5;
		in.safety_due_usec = sd == 0 ? 0 : NOW + offsets[sd - 1];
		bad += broken(&in);
	}
	CHECK_EQ(bad, 0);
}

TEST(step_names)
{
	CHECK_STREQ(sync_step_name(SYNC_STEP_NONE), "none");
	CHECK_STREQ(sync_step_name(SYNC_STEP_BACKOFF), "backoff");
	CHECK_STREQ(sync_step_name(SYNC_STEP_UNSUBSCRIBE), "unsubscribe");
	CHECK_STREQ(sync_step_name(SYNC_STEP_DISCOVER), "discover");
	CHECK_STREQ(sync_step_name(SYNC_STEP_SUBSCRIBE), "subscribe");
	CHECK_STREQ(sync_step_name(SYNC_STEP_READ), "read");
	CHECK_STREQ(sync_step_name(SYNC_STEP_POLL), "poll");
	CHECK_STREQ(sync_step_name((enum sync_step)99), "?");
}

int main(void)
{
	RUN(nothing_to_do);
	RUN(not_started_does_nothing);
	RUN(stopping_only_unsubscribes);
	RUN(stopping_ignores_backoff_and_start);
	RUN(backoff_not_yet_due);
	RUN(backoff_due_exactly_now_is_over);
	RUN(parked_waits_for_its_retry);
	RUN(priorities_unsubscribe_discover_subscribe);
	RUN(setup_steps_do_not_wait_for_due_times);
	RUN(read_due_goes_by_urgency);
	RUN(read_pending_waits_for_its_debounce);
	RUN(poll_due_is_urgent);
	RUN(poll_due_while_read_waits);
	RUN(earliest_of_read_poll_and_refresh);
	RUN(refresh_due_becomes_a_read);
	RUN(refresh_not_scheduled_or_not_due);
	RUN(refresh_due_with_read_already_due);
	RUN(refresh_overdue_while_read_waits);
	RUN(setup_steps_before_refresh);
	RUN(initial_needs);
	RUN(new_pull_mailbox_with_stored_subscription);
	RUN(invariants_over_all_states);
	RUN(step_names);
	return harness_done();
}
