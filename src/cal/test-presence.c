/* SPDX-License-Identifier: MIT */
/*
 * test-presence.c: every presence rule on hand-made calendars, then hundreds of random calendars
 * checked minute by minute against a naive reference written here.
 */
#include "cal/presence.h"

#include "cal/occurrence.h"
#include "harness.h"

#define MINUTE INT64_C(60)
#define HOUR   (60 * MINUTE)
#define DAY    (24 * HOUR)
/* 2024-01-01T00:00:00Z, so that the instants read like a calendar. */
#define T0 INT64_C(1704067200)
/* h:m on the first day; hours past 24 run into the next days. */
#define AT(h, m) (T0 + (h)*HOUR + (m)*MINUTE)

/* occurrence.h holds char *, so the test strings are writable arrays. */
static char s_standup[] = "Standup";
static char s_review[] = "Review";
static char s_holiday[] = "Holiday";
static char s_secret[] = "Divorce lawyer";
static char s_office[] = "Office B";
static char s_boss[] = "boss@example.com";
static char s_id_a[] = "AAA";
static char s_id_b[] = "BBB";
static char s_cat_oof[] = "Out of office";
static char s_cat_tent[] = "Tentative";
static char s_cat_focus[] = "Focus";
static char s_cat_focus_lower[] = "focus";
static char s_cat_red[] = "Red category";
static char s_cat_meeting[] = "In a meeting";

static struct cal_occurrence occ(int64_t start, int64_t end, enum cal_fb fb, char *subject)
{
	return (struct cal_occurrence){
		.subject = subject,
		.start_utc = start,
		.end_utc = end,
		.free_busy = fb,
	};
}

static struct presence at(const struct cal_occurrence *o, size_t n,
                          const struct presence_rules *rules, int64_t now)
{
	struct presence p;

	presence_compute(o, n, rules, now, &p);
	return p;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

TEST(default_rules)
{
	struct presence_rules r = presence_rules_default();

	CHECK(!r.value[PRESENCE_FREE].counts);
	CHECK(!r.value[PRESENCE_TENTATIVE].counts);
	CHECK(!r.value[PRESENCE_WORKING_ELSEWHERE].counts);
	CHECK(r.value[PRESENCE_BUSY].counts);
	CHECK(r.value[PRESENCE_OOF].counts);
	CHECK_STREQ(r.value[PRESENCE_BUSY].profile.name, "In a meeting");
	CHECK_STREQ(r.value[PRESENCE_OOF].profile.name, "Out of office");
	CHECK_STREQ(r.value[PRESENCE_TENTATIVE].profile.name, "Tentative");
	CHECK_STREQ(r.value[PRESENCE_WORKING_ELSEWHERE].profile.name, "Working elsewhere");
	for (size_t i = 0; i < PRESENCE_STATE_COUNT; i++)
		CHECK(r.value[i].profile.forward == NULL);
	CHECK(r.extra == NULL);
	CHECK_EQ(r.n_extra, 0);
	CHECK(!r.ignore_all_day);
	CHECK(!r.all_day_oof_only);
}

TEST(state_names)
{
	CHECK_STREQ(presence_state_name(PRESENCE_FREE), "free");
	CHECK_STREQ(presence_state_name(PRESENCE_TENTATIVE), "tentative");
	CHECK_STREQ(presence_state_name(PRESENCE_WORKING_ELSEWHERE), "working-elsewhere");
	CHECK_STREQ(presence_state_name(PRESENCE_BUSY), "busy");
	CHECK_STREQ(presence_state_name(PRESENCE_OOF), "oof");
	CHECK_STREQ(presence_state_name((enum presence_state)42), "unknown");
	CHECK(PRESENCE_OOF > PRESENCE_BUSY && PRESENCE_BUSY > PRESENCE_WORKING_ELSEWHERE &&
	      PRESENCE_WORKING_ELSEWHERE > PRESENCE_TENTATIVE &&
	      PRESENCE_TENTATIVE > PRESENCE_FREE);
}

static void check_free_forever(const struct presence *p)
{
	CHECK_EQ(p->state, PRESENCE_FREE);
	CHECK(p->profile == NULL);
	CHECK(p->forward == NULL);
	CHECK(p->subject == NULL);
	CHECK_STREQ(p->reason, "no appointment");
	CHECK_EQ(p->winner, -1);
	CHECK_EQ(p->since_utc, PRESENCE_SINCE_ALWAYS);
	CHECK_EQ(p->until_utc, PRESENCE_NEVER);
	CHECK_EQ(p->next_change_utc, PRESENCE_NEVER);
}

TEST(empty_calendar)
{
	struct presence_rules r = presence_rules_default();
	struct presence p = at(NULL, 0, &r, T0);

	check_free_forever(&p);
	p = at(NULL, 0, &r, INT64_MIN);
	check_free_forever(&p);
	p = at(NULL, 0, &r, INT64_MAX);
	check_free_forever(&p);
}

TEST(busy_appointment)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {occ(AT(9, 0), AT(10, 0), CAL_FB_BUSY, s_standup)};
	struct presence p = at(o, N(o), &r, AT(9, 30));

	CHECK_EQ(p.state, PRESENCE_BUSY);
	CHECK_STREQ(p.profile, "In a meeting");
	CHECK(p.forward == NULL);
	CHECK_STREQ(p.subject, "Standup");
	CHECK(p.subject == s_standup); /* borrowed, not copied */
	CHECK_STREQ(p.reason, "appointment");
	CHECK_EQ(p.winner, 0);
	CHECK_EQ(p.since_utc, AT(9, 0));
	CHECK_EQ(p.until_utc, AT(10, 0));
	CHECK_EQ(p.next_change_utc, AT(10, 0));

	/* Before: free since forever, until the start. */
	p = at(o, N(o), &r, AT(8, 0));
	CHECK_EQ(p.state, PRESENCE_FREE);
	CHECK_EQ(p.since_utc, PRESENCE_SINCE_ALWAYS);
	CHECK_EQ(p.until_utc, AT(9, 0));
	CHECK_EQ(p.next_change_utc, AT(9, 0));

	/* After: free since the end, for ever. */
	p = at(o, N(o), &r, AT(11, 0));
	CHECK_EQ(p.state, PRESENCE_FREE);
	CHECK_STREQ(p.reason, "no appointment");
	CHECK_EQ(p.since_utc, AT(10, 0));
	CHECK_EQ(p.until_utc, PRESENCE_NEVER);
	CHECK_EQ(p.next_change_utc, PRESENCE_NEVER);
}

TEST(half_open_boundaries)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {occ(AT(9, 0), AT(10, 0), CAL_FB_BUSY, s_standup)};
	struct presence p = at(o, N(o), &r, AT(9, 0));

	CHECK_EQ(p.state, PRESENCE_BUSY);
	CHECK_EQ(p.since_utc, AT(9, 0));
	CHECK_EQ(p.until_utc, AT(10, 0));
	p = at(o, N(o), &r, AT(9, 0) - 1);
	CHECK_EQ(p.state, PRESENCE_FREE);
	CHECK_EQ(p.until_utc, AT(9, 0));
	CHECK_EQ(p.next_change_utc, AT(9, 0));
	p = at(o, N(o), &r, AT(10, 0) - 1);
	CHECK_EQ(p.state, PRESENCE_BUSY);
	CHECK_EQ(p.next_change_utc, AT(10, 0));
	p = at(o, N(o), &r, AT(10, 0));
	CHECK_EQ(p.state, PRESENCE_FREE);
	CHECK_EQ(p.since_utc, AT(10, 0));
}

TEST(oof_and_forward_per_value)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {
		occ(AT(0, 0), AT(24, 0), CAL_FB_OOF, s_holiday),
		occ(AT(24, 0), AT(25, 0), CAL_FB_BUSY, s_review),
	};
	struct presence p;

	r.value[PRESENCE_OOF].profile.forward = "voicemail";
	r.value[PRESENCE_BUSY].profile.forward = "+4930123";
	p = at(o, N(o), &r, AT(12, 0));
	CHECK_EQ(p.state, PRESENCE_OOF);
	CHECK_STREQ(p.profile, "Out of office");
	CHECK_STREQ(p.forward, "voicemail");
	CHECK_STREQ(p.subject, "Holiday");
	CHECK_EQ(p.until_utc, AT(24, 0));
	p = at(o, N(o), &r, AT(24, 0));
	CHECK_EQ(p.state, PRESENCE_BUSY);
	CHECK_STREQ(p.forward, "+4930123");
	CHECK_EQ(p.since_utc, AT(24, 0));
}

TEST(tentative_counts_only_when_enabled)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {occ(AT(9, 0), AT(10, 0), CAL_FB_TENTATIVE, s_standup)};
	struct presence p = at(o, N(o), &r, AT(9, 30));

	check_free_forever(&p);
	r.value[PRESENCE_TENTATIVE].counts = true;
	p = at(o, N(o), &r, AT(9, 30));
	CHECK_EQ(p.state, PRESENCE_TENTATIVE);
	CHECK_STREQ(p.profile, "Tentative");
	CHECK_EQ(p.until_utc, AT(10, 0));
}

TEST(working_elsewhere_counts_only_when_enabled)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {occ(AT(9, 0), AT(10, 0), CAL_FB_WORKING_ELSEWHERE, s_office)};
	struct presence p = at(o, N(o), &r, AT(9, 30));

	check_free_forever(&p);
	r.value[PRESENCE_WORKING_ELSEWHERE].counts = true;
	p = at(o, N(o), &r, AT(9, 30));
	CHECK_EQ(p.state, PRESENCE_WORKING_ELSEWHERE);
	CHECK_STREQ(p.profile, "Working elsewhere");
	CHECK_STREQ(p.subject, "Office B");
}

TEST(busy_and_oof_can_be_switched_off)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {
		occ(AT(9, 0), AT(10, 0), CAL_FB_BUSY, s_standup),
		occ(AT(9, 0), AT(10, 0), CAL_FB_OOF, s_holiday),
	};
	struct presence p;

	r.value[PRESENCE_OOF].counts = false;
	p = at(o, N(o), &r, AT(9, 30));
	CHECK_EQ(p.state, PRESENCE_BUSY);
	CHECK_EQ(p.winner, 0);
	r.value[PRESENCE_BUSY].counts = false;
	p = at(o, N(o), &r, AT(9, 30));
	check_free_forever(&p);
}

TEST(free_no_data_unknown_never_count)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {
		occ(AT(9, 0), AT(10, 0), CAL_FB_FREE, s_standup),
		occ(AT(9, 0), AT(10, 0), CAL_FB_NO_DATA, s_standup),
		occ(AT(9, 0), AT(10, 0), CAL_FB_UNKNOWN, s_standup),
		occ(AT(9, 0), AT(10, 0), (enum cal_fb)99, s_standup),
	};
	struct presence p;

	/* Even a rule that says Free counts is ignored. */
	r.value[PRESENCE_FREE].counts = true;
	r.value[PRESENCE_TENTATIVE].counts = true;
	r.value[PRESENCE_WORKING_ELSEWHERE].counts = true;
	p = at(o, N(o), &r, AT(9, 30));
	check_free_forever(&p);
}

TEST(cancelled_never_counts)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {
		occ(AT(9, 0), AT(10, 0), CAL_FB_OOF, s_holiday),
		occ(AT(9, 30), AT(11, 0), CAL_FB_BUSY, s_standup),
	};
	struct presence p;

	o[0].is_cancelled = true;
	p = at(o, N(o), &r, AT(9, 45));
	CHECK_EQ(p.state, PRESENCE_BUSY);
	CHECK_EQ(p.winner, 1);
	/* A cancelled item's boundaries are not boundaries: busy since 9:30, free since forever
	 * before it. */
	CHECK_EQ(p.since_utc, AT(9, 30));
	p = at(o, N(o), &r, AT(9, 0));
	CHECK_EQ(p.state, PRESENCE_FREE);
	CHECK_EQ(p.since_utc, PRESENCE_SINCE_ALWAYS);
	CHECK_EQ(p.next_change_utc, AT(9, 30));
}

TEST(empty_and_inverted_intervals_are_ignored)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {
		occ(AT(9, 0), AT(9, 0), CAL_FB_OOF, s_holiday),
		occ(AT(10, 0), AT(9, 0), CAL_FB_OOF, s_holiday),
	};

	for (int64_t t = AT(8, 0); t <= AT(11, 0); t += 15 * MINUTE) {
		struct presence p = at(o, N(o), &r, t);

		check_free_forever(&p);
	}
}

TEST(gap_between_appointments)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {
		occ(AT(13, 0), AT(14, 0), CAL_FB_BUSY, s_review),
		occ(AT(9, 0), AT(10, 0), CAL_FB_BUSY, s_standup),
	};
	struct presence p = at(o, N(o), &r, AT(11, 0));

	CHECK_EQ(p.state, PRESENCE_FREE);
	CHECK_EQ(p.since_utc, AT(10, 0));
	CHECK_EQ(p.until_utc, AT(13, 0));
	CHECK_EQ(p.next_change_utc, AT(13, 0));
	p = at(o, N(o), &r, AT(9, 30));
	CHECK_EQ(p.until_utc, AT(10, 0));
}

TEST(back_to_back_merges_since_and_until)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {
		occ(AT(10, 0), AT(11, 0), CAL_FB_BUSY, s_review),
		occ(AT(9, 0), AT(10, 0), CAL_FB_BUSY, s_standup),
		occ(AT(11, 0), AT(12, 0), CAL_FB_BUSY, s_review),
	};
	struct presence p = at(o, N(o), &r, AT(9, 30));

	CHECK_EQ(p.state, PRESENCE_BUSY);
	CHECK_STREQ(p.subject, "Standup");
	CHECK_EQ(p.since_utc, AT(9, 0));
	CHECK_EQ(p.until_utc, AT(12, 0));
	/* The subject changes at 10. */
	CHECK_EQ(p.next_change_utc, AT(10, 0));

	/* Now exactly at the shared boundary: the second one, busy since 9. */
	p = at(o, N(o), &r, AT(10, 0));
	CHECK_STREQ(p.subject, "Review");
	CHECK_EQ(p.winner, 0);
	CHECK_EQ(p.since_utc, AT(9, 0));
	CHECK_EQ(p.until_utc, AT(12, 0));
	/* 10-11 and 11-12 have the same subject and profile: one uninterrupted result. */
	CHECK_EQ(p.next_change_utc, AT(12, 0));
	p = at(o, N(o), &r, AT(11, 30));
	CHECK_EQ(p.winner, 2);
	CHECK_EQ(p.since_utc, AT(9, 0));
}

TEST(back_to_back_different_states_do_not_merge)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {
		occ(AT(9, 0), AT(10, 0), CAL_FB_BUSY, s_standup),
		occ(AT(10, 0), AT(11, 0), CAL_FB_OOF, s_standup),
	};
	struct presence p = at(o, N(o), &r, AT(9, 30));

	CHECK_EQ(p.until_utc, AT(10, 0));
	CHECK_EQ(p.next_change_utc, AT(10, 0));
	p = at(o, N(o), &r, AT(10, 30));
	CHECK_EQ(p.state, PRESENCE_OOF);
	CHECK_EQ(p.since_utc, AT(10, 0));
}

TEST(overlapping_same_state_merge)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {
		occ(AT(9, 0), AT(11, 0), CAL_FB_BUSY, s_standup),
		occ(AT(10, 0), AT(12, 0), CAL_FB_BUSY, s_review),
	};
	struct presence p = at(o, N(o), &r, AT(9, 30));

	CHECK_EQ(p.until_utc, AT(12, 0));
	/* The earlier start keeps winning until it ends at 11. */
	CHECK_EQ(p.next_change_utc, AT(11, 0));
	p = at(o, N(o), &r, AT(10, 30));
	CHECK_STREQ(p.subject, "Standup");
	p = at(o, N(o), &r, AT(11, 30));
	CHECK_STREQ(p.subject, "Review");
	CHECK_EQ(p.since_utc, AT(9, 0));
}

TEST(busy_inside_oof)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {
		occ(AT(10, 0), AT(11, 0), CAL_FB_BUSY, s_standup),
		occ(AT(8, 0), AT(18, 0), CAL_FB_OOF, s_holiday),
	};

	for (int64_t t = AT(8, 0); t < AT(18, 0); t += 30 * MINUTE) {
		struct presence p = at(o, N(o), &r, t);

		CHECK_EQ(p.state, PRESENCE_OOF);
		CHECK_STREQ(p.subject, "Holiday");
		CHECK_EQ(p.since_utc, AT(8, 0));
		CHECK_EQ(p.until_utc, AT(18, 0));
		/* The busy meeting inside never shows, so it is no change. */
		CHECK_EQ(p.next_change_utc, AT(18, 0));
	}
}

TEST(oof_inside_busy)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {
		occ(AT(9, 0), AT(12, 0), CAL_FB_BUSY, s_standup),
		occ(AT(10, 0), AT(11, 0), CAL_FB_OOF, s_holiday),
	};
	struct presence p = at(o, N(o), &r, AT(9, 30));

	CHECK_EQ(p.state, PRESENCE_BUSY);
	CHECK_EQ(p.since_utc, AT(9, 0));
	CHECK_EQ(p.until_utc, AT(10, 0));
	CHECK_EQ(p.next_change_utc, AT(10, 0));
	p = at(o, N(o), &r, AT(10, 30));
	CHECK_EQ(p.state, PRESENCE_OOF);
	CHECK_EQ(p.since_utc, AT(10, 0));
	CHECK_EQ(p.until_utc, AT(11, 0));
	p = at(o, N(o), &r, AT(11, 30));
	CHECK_EQ(p.state, PRESENCE_BUSY);
	CHECK_EQ(p.since_utc, AT(11, 0));
	CHECK_EQ(p.until_utc, AT(12, 0));
}

TEST(tentative_around_busy)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {
		occ(AT(9, 0), AT(12, 0), CAL_FB_TENTATIVE, s_review),
		occ(AT(10, 0), AT(11, 0), CAL_FB_BUSY, s_standup),
	};
	struct presence p = at(o, N(o), &r, AT(9, 30));

	/* Tentative does not count by default: free until the busy part. */
	CHECK_EQ(p.state, PRESENCE_FREE);
	CHECK_EQ(p.until_utc, AT(10, 0));
	p = at(o, N(o), &r, AT(11, 30));
	CHECK_EQ(p.state, PRESENCE_FREE);
	CHECK_EQ(p.since_utc, AT(11, 0));
	CHECK_EQ(p.until_utc, PRESENCE_NEVER);

	r.value[PRESENCE_TENTATIVE].counts = true;
	p = at(o, N(o), &r, AT(9, 30));
	CHECK_EQ(p.state, PRESENCE_TENTATIVE);
	CHECK_EQ(p.since_utc, AT(9, 0));
	CHECK_EQ(p.until_utc, AT(10, 0));
	p = at(o, N(o), &r, AT(10, 30));
	CHECK_EQ(p.state, PRESENCE_BUSY);
	CHECK_EQ(p.since_utc, AT(10, 0));
	CHECK_EQ(p.until_utc, AT(11, 0));
	p = at(o, N(o), &r, AT(11, 30));
	CHECK_EQ(p.state, PRESENCE_TENTATIVE);
	CHECK_EQ(p.since_utc, AT(11, 0));
	CHECK_EQ(p.until_utc, AT(12, 0));
}

TEST(strongest_state_wins)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {
		occ(AT(9, 0), AT(10, 0), CAL_FB_TENTATIVE, s_review),
		occ(AT(9, 0), AT(10, 0), CAL_FB_OOF, s_holiday),
		occ(AT(9, 0), AT(10, 0), CAL_FB_FREE, s_review),
		occ(AT(9, 0), AT(10, 0), CAL_FB_WORKING_ELSEWHERE, s_office),
		occ(AT(9, 0), AT(10, 0), CAL_FB_BUSY, s_standup),
	};

	static const enum presence_state expect[] = {
		PRESENCE_OOF,       PRESENCE_BUSY, PRESENCE_WORKING_ELSEWHERE,
		PRESENCE_TENTATIVE, PRESENCE_FREE,
	};

	r.value[PRESENCE_TENTATIVE].counts = true;
	r.value[PRESENCE_WORKING_ELSEWHERE].counts = true;
	/* Switch the winner off step by step: each time the next strongest takes over. */
	for (size_t k = 0; k < N(expect); k++) {
		struct presence p = at(o, N(o), &r, AT(9, 30));

		CHECK_EQ(p.state, expect[k]);
		if (p.state != PRESENCE_FREE)
			r.value[p.state].counts = false;
	}
}

TEST(equal_states_tie_break)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence late_start[] = {
		occ(AT(9, 30), AT(12, 0), CAL_FB_BUSY, s_review),
		occ(AT(9, 0), AT(10, 0), CAL_FB_BUSY, s_standup),
	};
	struct cal_occurrence same_start[] = {
		occ(AT(9, 0), AT(10, 0), CAL_FB_BUSY, s_review),
		occ(AT(9, 0), AT(11, 0), CAL_FB_BUSY, s_standup),
	};
	struct cal_occurrence same_times[] = {
		occ(AT(9, 0), AT(10, 0), CAL_FB_BUSY, s_review),
		occ(AT(9, 0), AT(10, 0), CAL_FB_BUSY, s_standup),
		occ(AT(9, 0), AT(10, 0), CAL_FB_BUSY, s_holiday),
	};
	struct presence p;

	/* Earliest start. */
	p = at(late_start, N(late_start), &r, AT(9, 45));
	CHECK_STREQ(p.subject, "Standup");
	/* Then latest end. */
	p = at(same_start, N(same_start), &r, AT(9, 30));
	CHECK_STREQ(p.subject, "Standup");
	/* Then smallest item_id, NULL first. */
	same_times[0].item_id = s_id_b;
	same_times[1].item_id = s_id_a;
	same_times[2].item_id = s_id_b;
	p = at(same_times, N(same_times), &r, AT(9, 30));
	CHECK_STREQ(p.subject, "Standup");
	same_times[0].item_id = NULL;
	p = at(same_times, N(same_times), &r, AT(9, 30));
	CHECK_STREQ(p.subject, "Review");
	/* Then the lowest index: a duplicate never makes the result depend on luck. */
	same_times[0].item_id = s_id_b;
	same_times[1].item_id = s_id_b;
	p = at(same_times, N(same_times), &r, AT(9, 30));
	CHECK_EQ(p.winner, 0);
	/* Strength beats all of them. */
	same_times[2].free_busy = CAL_FB_OOF;
	p = at(same_times, N(same_times), &r, AT(9, 30));
	CHECK_EQ(p.winner, 2);
}

TEST(duplicates_are_harmless)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {
		occ(AT(9, 0), AT(10, 0), CAL_FB_BUSY, s_standup),
		occ(AT(9, 0), AT(10, 0), CAL_FB_BUSY, s_standup),
		occ(AT(9, 0), AT(10, 0), CAL_FB_BUSY, s_standup),
	};
	struct presence p = at(o, N(o), &r, AT(9, 30));

	CHECK_EQ(p.winner, 0);
	CHECK_EQ(p.since_utc, AT(9, 0));
	CHECK_EQ(p.until_utc, AT(10, 0));
	CHECK_EQ(p.next_change_utc, AT(10, 0));
}

TEST(private_items_never_leak)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {
		occ(AT(9, 0), AT(10, 0), CAL_FB_BUSY, s_secret),
		occ(AT(10, 0), AT(11, 0), CAL_FB_BUSY, NULL),
	};
	struct presence p;

	o[0].is_private = true;
	o[0].location = s_office;
	o[0].organizer = s_boss;
	o[1].is_private = true;
	p = at(o, N(o), &r, AT(9, 30));
	CHECK_EQ(p.state, PRESENCE_BUSY);
	CHECK_STREQ(p.subject, "private");
	CHECK_STREQ(p.profile, "In a meeting");
	CHECK(p.profile != s_office && p.profile != s_boss && p.subject != s_secret);
	/* Two private meetings back to back look the same: no change at 10. */
	CHECK_EQ(p.next_change_utc, AT(11, 0));
	/* A private item without a subject is still "private". */
	p = at(o, N(o), &r, AT(10, 30));
	CHECK_STREQ(p.subject, "private");
}

TEST(null_subject)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {
		occ(AT(9, 0), AT(10, 0), CAL_FB_BUSY, NULL),
		occ(AT(10, 0), AT(11, 0), CAL_FB_BUSY, s_standup),
	};
	struct presence p = at(o, N(o), &r, AT(9, 30));

	CHECK_EQ(p.state, PRESENCE_BUSY);
	CHECK(p.subject == NULL);
	CHECK_EQ(p.next_change_utc, AT(10, 0));
	CHECK_EQ(p.until_utc, AT(11, 0));
}

TEST(all_day_items)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {
		occ(AT(0, 0), AT(24, 0), CAL_FB_OOF, s_holiday),
		occ(AT(24, 0), AT(48, 0), CAL_FB_FREE, s_review),
		occ(AT(30, 0), AT(31, 0), CAL_FB_BUSY, s_standup),
	};
	struct presence p;

	o[0].all_day = true;
	o[1].all_day = true;
	p = at(o, N(o), &r, AT(12, 0));
	CHECK_EQ(p.state, PRESENCE_OOF);
	CHECK_STREQ(p.reason, "all-day appointment");
	CHECK_EQ(p.since_utc, AT(0, 0));
	CHECK_EQ(p.until_utc, AT(24, 0));
	/* An all-day Free item never counts. */
	p = at(o, N(o), &r, AT(26, 0));
	CHECK_EQ(p.state, PRESENCE_FREE);
	CHECK_EQ(p.since_utc, AT(24, 0));
	CHECK_EQ(p.until_utc, AT(30, 0));
	/* ignore_all_day drops all-day items entirely, timed items still count. */
	r.ignore_all_day = true;
	p = at(o, N(o), &r, AT(12, 0));
	CHECK_EQ(p.state, PRESENCE_FREE);
	CHECK_EQ(p.since_utc, PRESENCE_SINCE_ALWAYS);
	CHECK_EQ(p.until_utc, AT(30, 0));
	p = at(o, N(o), &r, AT(30, 30));
	CHECK_EQ(p.state, PRESENCE_BUSY);
	CHECK_STREQ(p.reason, "appointment");
}

/* all_day_oof_only: of the all-day items only OOF ones count; timed items are untouched. */
TEST(all_day_oof_only)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {
		/* all-day, one per day: Busy, OOF, Tentative, WorkingElsewhere */
		occ(AT(0, 0), AT(24, 0), CAL_FB_BUSY, s_review),
		occ(AT(24, 0), AT(48, 0), CAL_FB_OOF, s_holiday),
		occ(AT(48, 0), AT(72, 0), CAL_FB_TENTATIVE, s_review),
		occ(AT(72, 0), AT(96, 0), CAL_FB_WORKING_ELSEWHERE, s_office),
		/* timed: Busy on day 1, Tentative on day 3 */
		occ(AT(9, 0), AT(10, 0), CAL_FB_BUSY, s_standup),
		occ(AT(50, 0), AT(51, 0), CAL_FB_TENTATIVE, s_standup),
	};
	char *cats[] = {s_cat_oof};
	struct presence p;

	for (size_t i = 0; i < 4; i++)
		o[i].all_day = true;
	r.value[PRESENCE_TENTATIVE].counts = true;
	r.value[PRESENCE_WORKING_ELSEWHERE].counts = true;

	/* Without the flag every all-day item counts. */
	p = at(o, N(o), &r, AT(12, 0));
	CHECK_EQ(p.state, PRESENCE_BUSY);
	CHECK_EQ(at(o, N(o), &r, AT(60, 0)).state, PRESENCE_TENTATIVE);
	CHECK_EQ(at(o, N(o), &r, AT(80, 0)).state, PRESENCE_WORKING_ELSEWHERE);

	r.all_day_oof_only = true;
	/* Day 1: the all-day Busy no longer counts; the timed Busy does. */
	p = at(o, N(o), &r, AT(8, 0));
	CHECK_EQ(p.state, PRESENCE_FREE);
	CHECK_EQ(p.since_utc, PRESENCE_SINCE_ALWAYS);
	CHECK_EQ(p.until_utc, AT(9, 0));
	p = at(o, N(o), &r, AT(9, 30));
	CHECK_EQ(p.state, PRESENCE_BUSY);
	CHECK_STREQ(p.reason, "appointment");
	CHECK_STREQ(p.subject, "Standup");
	CHECK_EQ(p.since_utc, AT(9, 0));
	CHECK_EQ(p.until_utc, AT(10, 0));
	/* Between the timed meeting and the all-day OOF: free. */
	p = at(o, N(o), &r, AT(12, 0));
	CHECK_EQ(p.state, PRESENCE_FREE);
	CHECK_EQ(p.since_utc, AT(10, 0));
	CHECK_EQ(p.until_utc, AT(24, 0));
	CHECK_EQ(p.next_change_utc, AT(24, 0));
	/* Day 2: the all-day OOF counts. */
	p = at(o, N(o), &r, AT(30, 0));
	CHECK_EQ(p.state, PRESENCE_OOF);
	CHECK_STREQ(p.reason, "all-day appointment");
	CHECK_STREQ(p.profile, "Out of office");
	CHECK_STREQ(p.subject, "Holiday");
	CHECK_EQ(p.since_utc, AT(24, 0));
	CHECK_EQ(p.until_utc, AT(48, 0));
	/* Day 3: the all-day Tentative does not count, the timed Tentative does. */
	p = at(o, N(o), &r, AT(49, 0));
	CHECK_EQ(p.state, PRESENCE_FREE);
	CHECK_EQ(p.since_utc, AT(48, 0));
	CHECK_EQ(p.until_utc, AT(50, 0));
	p = at(o, N(o), &r, AT(50, 30));
	CHECK_EQ(p.state, PRESENCE_TENTATIVE);
	CHECK_EQ(p.until_utc, AT(51, 0));
	/* Day 4: the all-day WorkingElsewhere does not count; nothing counts afterwards. */
	p = at(o, N(o), &r, AT(80, 0));
	CHECK_EQ(p.state, PRESENCE_FREE);
	CHECK_EQ(p.since_utc, AT(51, 0));
	CHECK_EQ(p.until_utc, PRESENCE_NEVER);
	CHECK_EQ(p.next_change_utc, PRESENCE_NEVER);

	/* A category never makes a non-counting item count, even the OOF profile's name. */
	o[0].categories = cats;
	o[0].n_categories = N(cats);
	CHECK_EQ(at(o, N(o), &r, AT(12, 0)).state, PRESENCE_FREE);
	o[0].categories = NULL;
	o[0].n_categories = 0;

	/* An all-day OOF still needs OOF to count. */
	r.value[PRESENCE_OOF].counts = false;
	CHECK_EQ(at(o, N(o), &r, AT(30, 0)).state, PRESENCE_FREE);
	r.value[PRESENCE_OOF].counts = true;

	/* A cancelled all-day OOF never counts. */
	o[1].is_cancelled = true;
	CHECK_EQ(at(o, N(o), &r, AT(30, 0)).state, PRESENCE_FREE);
	o[1].is_cancelled = false;

	/* ignore_all_day wins over all_day_oof_only: no all-day item counts. */
	r.ignore_all_day = true;
	p = at(o, N(o), &r, AT(30, 0));
	CHECK_EQ(p.state, PRESENCE_FREE);
	CHECK_EQ(p.since_utc, AT(10, 0));
	CHECK_EQ(p.until_utc, AT(50, 0));
	CHECK_EQ(at(o, N(o), &r, AT(9, 30)).state, PRESENCE_BUSY);
}

TEST(category_selects_profile)
{
	static const struct presence_profile extra[] = {
		{.name = "Focus", .forward = "+4930999"},
		{.name = NULL, .forward = "ignored"},
	};
	struct presence_rules r = presence_rules_default();
	char *cats_oof[] = {s_cat_red, s_cat_oof};
	char *cats_focus[] = {NULL, s_cat_focus, s_cat_oof};
	char *cats_lower[] = {s_cat_focus_lower};
	char *cats_tent[] = {s_cat_tent};
	struct cal_occurrence o[] = {occ(AT(9, 0), AT(10, 0), CAL_FB_BUSY, s_standup)};
	struct presence p;

	r.value[PRESENCE_OOF].profile.forward = "voicemail";
	r.extra = extra;
	r.n_extra = N(extra);

	/* A per-value profile name: its profile and forward, but the state stays busy. */
	o[0].categories = cats_oof;
	o[0].n_categories = N(cats_oof);
	p = at(o, N(o), &r, AT(9, 30));
	CHECK_EQ(p.state, PRESENCE_BUSY);
	CHECK_STREQ(p.profile, "Out of office");
	CHECK_STREQ(p.forward, "voicemail");
	CHECK_STREQ(p.reason, "category");

	/* The first matching category wins; NULL entries are skipped; extras have forwards. */
	o[0].categories = cats_focus;
	o[0].n_categories = N(cats_focus);
	p = at(o, N(o), &r, AT(9, 30));
	CHECK_STREQ(p.profile, "Focus");
	CHECK_STREQ(p.forward, "+4930999");

	/* Byte-for-byte: no case folding. */
	o[0].categories = cats_lower;
	o[0].n_categories = N(cats_lower);
	p = at(o, N(o), &r, AT(9, 30));
	CHECK_STREQ(p.profile, "In a meeting");
	CHECK_STREQ(p.reason, "appointment");

	/* The profile of a value that does not count is not configured. */
	o[0].categories = cats_tent;
	o[0].n_categories = N(cats_tent);
	p = at(o, N(o), &r, AT(9, 30));
	CHECK_STREQ(p.profile, "In a meeting");
	r.value[PRESENCE_TENTATIVE].counts = true;
	p = at(o, N(o), &r, AT(9, 30));
	CHECK_STREQ(p.profile, "Tentative");
	CHECK_EQ(p.state, PRESENCE_BUSY);

	/* A category never makes a non-counting item count. */
	o[0].categories = cats_oof;
	o[0].n_categories = N(cats_oof);
	o[0].free_busy = CAL_FB_FREE;
	p = at(o, N(o), &r, AT(9, 30));
	check_free_forever(&p);
}

TEST(category_change_is_a_change)
{
	/* No forward: the profile name alone makes the change. */
	static const struct presence_profile extra[] = {{.name = "Focus"}};
	struct presence_rules r = presence_rules_default();
	char *cats[] = {s_cat_focus};
	struct cal_occurrence o[] = {
		occ(AT(9, 0), AT(11, 0), CAL_FB_BUSY, s_standup),
		occ(AT(10, 0), AT(12, 0), CAL_FB_BUSY, s_standup),
		occ(AT(12, 0), AT(13, 0), CAL_FB_BUSY, s_standup),
	};
	struct presence p;

	r.extra = extra;
	r.n_extra = N(extra);
	o[1].categories = cats;
	o[1].n_categories = N(cats);
	p = at(o, N(o), &r, AT(9, 30));
	CHECK_EQ(p.until_utc, AT(13, 0));
	/* Same state and subject, but the profile turns to Focus when the first one ends. */
	CHECK_EQ(p.next_change_utc, AT(11, 0));
	p = at(o, N(o), &r, AT(11, 0));
	CHECK_STREQ(p.profile, "Focus");
	CHECK_EQ(p.since_utc, AT(9, 0));
	CHECK_EQ(p.next_change_utc, AT(12, 0));
}

TEST(forward_change_alone_is_a_change)
{
	struct presence_rules r = presence_rules_default();
	char *cats[] = {s_cat_meeting};
	struct cal_occurrence o[] = {
		occ(AT(9, 0), AT(10, 0), CAL_FB_BUSY, s_standup),
		occ(AT(10, 0), AT(11, 0), CAL_FB_BUSY, s_standup),
	};
	struct presence p;

	/* Two profiles share a name; the category finds OOF's first, which has a forward. */
	r.value[PRESENCE_OOF].profile.name = "In a meeting";
	r.value[PRESENCE_OOF].profile.forward = "voicemail";
	o[0].categories = cats;
	o[0].n_categories = N(cats);
	p = at(o, N(o), &r, AT(9, 30));
	CHECK_STREQ(p.profile, "In a meeting");
	CHECK_STREQ(p.forward, "voicemail");
	CHECK_EQ(p.next_change_utc, AT(10, 0));
	p = at(o, N(o), &r, AT(10, 0));
	CHECK_STREQ(p.profile, "In a meeting");
	CHECK(p.forward == NULL);
}

TEST(extreme_instants)
{
	struct presence_rules r = presence_rules_default();
	struct cal_occurrence o[] = {
		occ(INT64_MIN, AT(0, 0), CAL_FB_BUSY, s_standup),
		occ(AT(1, 0), INT64_MAX, CAL_FB_OOF, s_holiday),
	};
	struct presence p = at(o, N(o), &r, INT64_MIN);

	CHECK_EQ(p.state, PRESENCE_BUSY);
	CHECK_EQ(p.since_utc, INT64_MIN);
	CHECK_EQ(p.until_utc, AT(0, 0));
	p = at(o, N(o), &r, INT64_MAX);
	CHECK_EQ(p.state, PRESENCE_FREE);
	CHECK_EQ(p.since_utc, INT64_MAX);
	CHECK_EQ(p.until_utc, PRESENCE_NEVER);
	p = at(o, N(o), &r, INT64_MAX - 1);
	CHECK_EQ(p.state, PRESENCE_OOF);
	CHECK_EQ(p.since_utc, AT(1, 0));
	CHECK_EQ(p.until_utc, INT64_MAX);
}

/*
 * The brute-force check. A naive reference computes the result at one instant by filtering the
 * occurrences in separate passes (strongest state, then earliest start, then latest end, then
 * smallest item_id, then lowest index) instead of a comparator. Evaluated at every minute of a
 * range that starts before and ends after every boundary (all boundaries are whole minutes),
 * it gives the exact instants at which state and result change, which presence_compute must
 * reproduce for since, until and next_change.
 */

#define RANDOM_CASES   300
#define RANDOM_MAX_OCC 12
#define RANGE_START    (T0 - HOUR)
#define RANGE_MINUTES  (2 * 24 * 60 + 8 * 60)

struct ref {
	int state; /* enum presence_state */
	const char *profile;
	const char *forward;
	const char *subject;
};

static uint64_t rng_state = UINT64_C(0x9e3779b97f4a7c15);

/* xorshift64*: fixed seed, so every run checks the same calendars. */
static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(0x2545f4914f6cdd1d);
}

static int64_t rng_below(int64_t n)
{
	return (int64_t)(rng() % (uint64_t)n);
}

static int ref_state_of(const struct cal_occurrence *o, const struct presence_rules *r)
{
	static const int by_fb[] = {
		[CAL_FB_TENTATIVE] = PRESENCE_TENTATIVE,
		[CAL_FB_BUSY] = PRESENCE_BUSY,
		[CAL_FB_OOF] = PRESENCE_OOF,
		[CAL_FB_WORKING_ELSEWHERE] = PRESENCE_WORKING_ELSEWHERE,
	};
	int s = 0;

	if ((size_t)o->free_busy < N(by_fb))
		s = by_fb[o->free_busy];
	if (s == 0 || !r->value[s].counts || o->is_cancelled || o->start_utc >= o->end_utc)
		return 0;
	if (o->all_day && r->ignore_all_day)
		return 0;
	if (o->all_day && r->all_day_oof_only && s != PRESENCE_OOF)
		return 0;
	return s;
}

static struct ref ref_at(const struct cal_occurrence *o, size_t n, const struct presence_rules *r,
                         int64_t t)
{
	bool live[RANDOM_MAX_OCC] = {false};
	int best = 0;
	size_t w = 0;
	bool any = false;
	struct ref res = {0};
	const struct presence_profile *configured[4 + 8];
	size_t n_configured = 0;
	static const int order[] = {
		PRESENCE_OOF,
		PRESENCE_BUSY,
		PRESENCE_WORKING_ELSEWHERE,
		PRESENCE_TENTATIVE,
	};

	/* Pass 1: live counted items and the strongest state. */
	for (size_t i = 0; i < n; i++) {
		int s = ref_state_of(&o[i], r);

		live[i] = s != 0 && o[i].start_utc <= t && t < o[i].end_utc;
		if (live[i] && s > best)
			best = s;
	}
	for (size_t i = 0; i < n; i++)
		live[i] = live[i] && ref_state_of(&o[i], r) == best;
	/* Pass 2: the earliest start, pass 3: the latest end. */
	for (int pass = 0; pass < 2; pass++) {
		int64_t key = 0;
		bool have = false;

		for (size_t i = 0; i < n; i++) {
			int64_t k = pass == 0 ? o[i].start_utc : -o[i].end_utc;

			if (live[i] && (!have || k < key)) {
				key = k;
				have = true;
			}
		}
		for (size_t i = 0; i < n; i++)
			live[i] = live[i] && (pass == 0 ? o[i].start_utc : -o[i].end_utc) == key;
	}
	/* Pass 4: the smallest item_id (NULL first), then the lowest index. */
	for (size_t i = 0; i < n; i++) {
		if (!live[i])
			continue;
		if (!any) {
			w = i;
			any = true;
		} else if (o[w].item_id != NULL &&
		           (o[i].item_id == NULL || strcmp(o[i].item_id, o[w].item_id) < 0)) {
			w = i;
		}
	}
	if (!any)
		return res;
	res.state = best;
	res.subject = o[w].is_private ? "private" : o[w].subject;
	res.profile = r->value[best].profile.name;
	res.forward = r->value[best].profile.forward;
	for (size_t k = 0; k < N(order); k++) {
		if (r->value[order[k]].counts && r->value[order[k]].profile.name != NULL)
			configured[n_configured++] = &r->value[order[k]].profile;
	}
	for (size_t k = 0; k < r->n_extra && n_configured < N(configured); k++) {
		if (r->extra[k].name != NULL)
			configured[n_configured++] = &r->extra[k];
	}
	for (size_t c = 0; c < o[w].n_categories; c++) {
		for (size_t k = 0; k < n_configured; k++) {
			if (o[w].categories[c] != NULL &&
			    strcmp(o[w].categories[c], configured[k]->name) == 0) {
				res.profile = configured[k]->name;
				res.forward = configured[k]->forward;
				return res;
			}
		}
	}
	return res;
}

static bool ref_same(const struct ref *a, const struct ref *b)
{
	return a->state == b->state && harness_streq(a->profile, b->profile) &&
	       harness_streq(a->forward, b->forward) && harness_streq(a->subject, b->subject);
}

static char s_pool_subject[][8] = {"Sync", "1:1", "Lunch"};
static char s_pool_id[][4] = {"a", "b", "c", "d", "e"};
static char s_pool_cat[][16] = {"Focus", "In a meeting", "Out of office", "Blue"};
static char *cat_sets[][2] = {
	{s_pool_cat[0], NULL},
	{s_pool_cat[1], s_pool_cat[0]},
	{s_pool_cat[3], s_pool_cat[2]},
	{NULL, s_pool_cat[0]},
};

static void random_calendar(struct cal_occurrence *o, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		/* Half of them on whole hours, so that equal starts and ends are common. */
		int64_t start = rng_below(2) == 0 ? T0 + rng_below(2 * 24 * 60) * MINUTE
		                                  : T0 + rng_below(2 * 24) * HOUR;
		int64_t len = (rng_below(10) == 0 ? -rng_below(60) : rng_below(240)) * MINUTE;

		if (rng_below(2) == 0)
			len = rng_below(5) * HOUR;
		int64_t subj = rng_below((int64_t)N(s_pool_subject) + 1);

		o[i] = (struct cal_occurrence){
			.start_utc = start,
			.end_utc = start + len,
			.free_busy = (enum cal_fb)rng_below(CAL_FB_NO_DATA + 1),
			.is_cancelled = rng_below(10) == 0,
			.is_private = rng_below(6) == 0,
			.subject = subj < (int64_t)N(s_pool_subject) ? s_pool_subject[subj] : NULL,
			.item_id = rng_below(8) == 0 ? NULL : s_pool_id[rng_below(N(s_pool_id))],
		};
		if (rng_below(8) == 0) {
			/* A whole day, midnight to midnight. */
			o[i].all_day = true;
			o[i].start_utc = T0 + rng_below(2) * DAY;
			o[i].end_utc = o[i].start_utc + DAY;
		}
		if (rng_below(3) == 0) {
			o[i].categories = cat_sets[rng_below(N(cat_sets))];
			o[i].n_categories = 2;
		}
		/* Sometimes an exact copy of an earlier one. */
		if (i > 0 && rng_below(10) == 0)
			o[i] = o[rng_below((int64_t)i)];
	}
}

static struct presence_rules random_rules(void)
{
	static const struct presence_profile extra[] = {
		{.name = "Focus", .forward = "+4930999"},
		{.name = "Blue", .forward = NULL},
	};
	struct presence_rules r = presence_rules_default();

	for (size_t s = PRESENCE_TENTATIVE; s < PRESENCE_STATE_COUNT; s++)
		r.value[s].counts = rng_below(4) != 0;
	if (rng_below(2) == 0)
		r.value[PRESENCE_BUSY].profile.forward = "voicemail";
	if (rng_below(4) == 0)
		r.value[PRESENCE_TENTATIVE].profile.name = NULL;
	if (rng_below(2) == 0) {
		r.extra = extra;
		r.n_extra = N(extra);
	}
	r.ignore_all_day = rng_below(4) == 0;
	r.all_day_oof_only = rng_below(3) == 0;
	return r;
}

static struct ref ref_of(const struct presence *p)
{
	return (struct ref){
		.state = (int)p->state,
		.profile = p->profile,
		.forward = p->forward,
		.subject = p->subject,
	};
}

static int64_t minute(size_t i)
{
	return RANGE_START + (int64_t)i * MINUTE;
}

/* Checks presence_compute at t, which lies in minute i, against the reference arrays. */
static int check_instant(const struct cal_occurrence *o, size_t n, const struct presence_rules *r,
                         int64_t t, size_t i, const struct ref *ref, const int64_t *since,
                         const int64_t *until, const int64_t *change)
{
	struct presence p;
	struct ref got;
	int bad = 0;

	presence_compute(o, n, r, t, &p);
	got = ref_of(&p);
	bad += !ref_same(&got, &ref[i]);
	bad += p.since_utc != since[i];
	bad += p.until_utc != until[i];
	/* Exact: never later than the reference's first change, and nothing changes before it. */
	bad += p.next_change_utc != change[i];
	bad += p.next_change_utc > p.until_utc;
	bad += (p.winner >= 0) != (p.state != PRESENCE_FREE);
	if (p.winner >= 0) {
		bad += (size_t)p.winner >= n;
		bad += !(o[p.winner].start_utc <= t && t < o[p.winner].end_utc);
		bad += o[p.winner].is_private && !harness_streq(p.subject, "private");
	}
	if (bad > 0)
		harness_fail(__FILE__, __LINE__,
		             "t=%" PRId64 ": state %d/%d since %" PRId64 "/%" PRId64
		             " until %" PRId64 "/%" PRId64 " change %" PRId64 "/%" PRId64,
		             t, (int)p.state, ref[i].state, p.since_utc, since[i], p.until_utc,
		             until[i], p.next_change_utc, change[i]);
	return bad;
}

TEST(random_calendars_match_reference)
{
	static struct ref ref[RANGE_MINUTES];
	static int64_t since[RANGE_MINUTES];
	static int64_t until[RANGE_MINUTES];
	static int64_t change[RANGE_MINUTES];
	int failures = 0;
	long checked = 0;

	for (int c = 0; c < RANDOM_CASES && failures < 5; c++) {
		struct cal_occurrence o[RANDOM_MAX_OCC];
		struct cal_occurrence rev[RANDOM_MAX_OCC];
		size_t n = (size_t)rng_below(RANDOM_MAX_OCC + 1);
		struct presence_rules r = random_rules();

		random_calendar(o, n);
		for (size_t i = 0; i < n; i++)
			rev[i] = o[n - 1 - i];
		for (size_t i = 0; i < RANGE_MINUTES; i++)
			ref[i] = ref_at(o, n, &r, minute(i));
		/* The range starts and ends free, before and after every boundary. */
		CHECK_EQ(ref[0].state, PRESENCE_FREE);
		CHECK_EQ(ref[RANGE_MINUTES - 1].state, PRESENCE_FREE);
		for (size_t i = 0; i < RANGE_MINUTES; i++) {
			bool first = i == 0;

			since[i] = first ? PRESENCE_SINCE_ALWAYS
			                 : (ref[i].state == ref[i - 1].state ? since[i - 1]
			                                                     : minute(i));
		}
		for (size_t k = RANGE_MINUTES; k-- > 0;) {
			bool last = k == RANGE_MINUTES - 1;

			until[k] = last ? PRESENCE_NEVER
			                : (ref[k + 1].state != ref[k].state ? minute(k + 1)
			                                                    : until[k + 1]);
			change[k] = last ? PRESENCE_NEVER
			                 : (!ref_same(&ref[k + 1], &ref[k]) ? minute(k + 1)
			                                                    : change[k + 1]);
		}
		for (size_t i = 0; i < RANGE_MINUTES && failures < 5; i++) {
			int bad = check_instant(o, n, &r, minute(i), i, ref, since, until, change);

			checked++;
			/* Inside the minute, and in reverse input order, nothing differs; checked on
			 * every fifth minute only, to keep the sanitizer run short. */
			if (i % 5 == 0) {
				bad += check_instant(o, n, &r, minute(i) + 59, i, ref, since, until,
				                     change);
				bad += check_instant(rev, n, &r, minute(i), i, ref, since, until,
				                     change);
				checked += 2;
			}
			if (bad > 0) {
				fprintf(stderr, "case %d (n=%zu), minute %zu\n", c, n, i);
				failures++;
			}
		}
	}
	CHECK_EQ(failures, 0);
	printf("# %d random calendars, %ld instants checked\n", RANDOM_CASES, checked);
}

int main(void)
{
	RUN(default_rules);
	RUN(state_names);
	RUN(empty_calendar);
	RUN(busy_appointment);
	RUN(half_open_boundaries);
	RUN(oof_and_forward_per_value);
	RUN(tentative_counts_only_when_enabled);
	RUN(working_elsewhere_counts_only_when_enabled);
	RUN(busy_and_oof_can_be_switched_off);
	RUN(free_no_data_unknown_never_count);
	RUN(cancelled_never_counts);
	RUN(empty_and_inverted_intervals_are_ignored);
	RUN(gap_between_appointments);
	RUN(back_to_back_merges_since_and_until);
	RUN(back_to_back_different_states_do_not_merge);
	RUN(overlapping_same_state_merge);
	RUN(busy_inside_oof);
	RUN(oof_inside_busy);
	RUN(tentative_around_busy);
	RUN(strongest_state_wins);
	RUN(equal_states_tie_break);
	RUN(duplicates_are_harmless);
	RUN(private_items_never_leak);
	RUN(null_subject);
	RUN(all_day_items);
	RUN(all_day_oof_only);
	RUN(category_selects_profile);
	RUN(category_change_is_a_change);
	RUN(forward_change_alone_is_a_change);
	RUN(extreme_instants);
	RUN(random_calendars_match_reference);
	return harness_done();
}
