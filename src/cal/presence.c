/* SPDX-License-Identifier: MIT */
/*
 * presence.c: presence as a pure function of (occurrences, rules, now).
 *
 * The calendar defines a state function S(t): the strongest state among the counted
 * occurrences that contain t. It is constant between consecutive boundaries (the starts and ends
 * of counted occurrences), so every question here is answered by evaluating S, or the full
 * result, at boundaries only. Nothing is sorted or allocated: each step scans the occurrences,
 * which keeps the code obviously correct at the price of O(n^2) for a window of n occurrences.
 */
#include "cal/presence.h"

#include <assert.h>
#include <string.h>

#include "cal/occurrence.h"

/* Shown instead of anything a private item says about itself. */
static const char private_subject[] = "private";

/* The order in which a category is matched against the per-value profile names. */
static const enum presence_state category_order[] = {
	PRESENCE_OOF,
	PRESENCE_BUSY,
	PRESENCE_WORKING_ELSEWHERE,
	PRESENCE_TENTATIVE,
};

struct presence_rules presence_rules_default(void)
{
	return (struct presence_rules){
		.value =
			{
				[PRESENCE_TENTATIVE] = {.counts = false,
	                                                .profile = {.name = "Tentative"}},
				[PRESENCE_WORKING_ELSEWHERE] =
					{.counts = false, .profile = {.name = "Working elsewhere"}},
				[PRESENCE_BUSY] = {.counts = true,
	                                           .profile = {.name = "In a meeting"}},
				[PRESENCE_OOF] = {.counts = true,
	                                          .profile = {.name = "Out of office"}},
			},
	};
}

const char *presence_state_name(enum presence_state state)
{
	switch (state) {
	case PRESENCE_FREE:
		return "free";
	case PRESENCE_TENTATIVE:
		return "tentative";
	case PRESENCE_WORKING_ELSEWHERE:
		return "working-elsewhere";
	case PRESENCE_BUSY:
		return "busy";
	case PRESENCE_OOF:
		return "oof";
	}
	return "unknown";
}

/* The state an occurrence puts its user in while it runs: PRESENCE_FREE when it does not count. */
static enum presence_state counted_state(const struct cal_occurrence *o,
                                         const struct presence_rules *rules)
{
	enum presence_state state;

	if (o->is_cancelled || o->start_utc >= o->end_utc)
		return PRESENCE_FREE;
	if (o->all_day && rules->ignore_all_day)
		return PRESENCE_FREE;
	if (o->all_day && rules->all_day_oof_only && o->free_busy != CAL_FB_OOF)
		return PRESENCE_FREE;
	switch (o->free_busy) {
	case CAL_FB_TENTATIVE:
		state = PRESENCE_TENTATIVE;
		break;
	case CAL_FB_BUSY:
		state = PRESENCE_BUSY;
		break;
	case CAL_FB_OOF:
		state = PRESENCE_OOF;
		break;
	case CAL_FB_WORKING_ELSEWHERE:
		state = PRESENCE_WORKING_ELSEWHERE;
		break;
	case CAL_FB_FREE:
	case CAL_FB_NO_DATA:
	case CAL_FB_UNKNOWN:
	default:
		return PRESENCE_FREE;
	}
	return rules->value[state].counts ? state : PRESENCE_FREE;
}

static int cmp_item_id(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

/* Whether occurrence a (in state sa) beats b (in state sb) at an instant both contain. The order
 * is total, so the winner never depends on the order of the input. */
static bool beats(const struct cal_occurrence *occ, size_t a, enum presence_state sa, size_t b,
                  enum presence_state sb)
{
	int c;

	if (sa != sb)
		return sa > sb;
	if (occ[a].start_utc != occ[b].start_utc)
		return occ[a].start_utc < occ[b].start_utc;
	if (occ[a].end_utc != occ[b].end_utc)
		return occ[a].end_utc > occ[b].end_utc;
	c = cmp_item_id(occ[a].item_id, occ[b].item_id);
	if (c != 0)
		return c < 0;
	return a < b;
}

/* The index of the winning occurrence at t, or -1 when none counts there. */
static ptrdiff_t winner_at(const struct cal_occurrence *occ, size_t n,
                           const struct presence_rules *rules, int64_t t,
                           enum presence_state *out_state)
{
	ptrdiff_t best = -1;
	enum presence_state best_state = PRESENCE_FREE;

	for (size_t i = 0; i < n; i++) {
		enum presence_state s = counted_state(&occ[i], rules);

		if (s == PRESENCE_FREE || t < occ[i].start_utc || t >= occ[i].end_utc)
			continue;
		if (best < 0 || beats(occ, i, s, (size_t)best, best_state)) {
			best = (ptrdiff_t)i;
			best_state = s;
		}
	}
	*out_state = best_state;
	return best;
}

static enum presence_state state_at(const struct cal_occurrence *occ, size_t n,
                                    const struct presence_rules *rules, int64_t t)
{
	enum presence_state s;

	(void)winner_at(occ, n, rules, t, &s);
	return s;
}

/* The smallest boundary of a counted occurrence that is > t; false when there is none. */
static bool boundary_after(const struct cal_occurrence *occ, size_t n,
                           const struct presence_rules *rules, int64_t t, int64_t *out)
{
	bool found = false;

	for (size_t i = 0; i < n; i++) {
		const int64_t b[2] = {occ[i].start_utc, occ[i].end_utc};

		if (counted_state(&occ[i], rules) == PRESENCE_FREE)
			continue;
		for (size_t k = 0; k < 2; k++) {
			if (b[k] > t && (!found || b[k] < *out)) {
				*out = b[k];
				found = true;
			}
		}
	}
	return found;
}

/* The largest boundary of a counted occurrence that is < t (or <= t when inclusive); false
 * when there is none. */
static bool boundary_before(const struct cal_occurrence *occ, size_t n,
                            const struct presence_rules *rules, int64_t t, bool inclusive,
                            int64_t *out)
{
	bool found = false;

	for (size_t i = 0; i < n; i++) {
		const int64_t b[2] = {occ[i].start_utc, occ[i].end_utc};

		if (counted_state(&occ[i], rules) == PRESENCE_FREE)
			continue;
		for (size_t k = 0; k < 2; k++) {
			bool before = inclusive ? b[k] <= t : b[k] < t;

			if (before && (!found || b[k] > *out)) {
				*out = b[k];
				found = true;
			}
		}
	}
	return found;
}

/* The profile a category of o selects, or NULL. */
static const struct presence_profile *category_profile(const struct cal_occurrence *o,
                                                       const struct presence_rules *rules)
{
	for (size_t c = 0; c < o->n_categories; c++) {
		const char *cat = o->categories[c];

		if (cat == NULL)
			continue;
		for (size_t k = 0; k < sizeof(category_order) / sizeof(category_order[0]); k++) {
			const struct presence_value_rule *v = &rules->value[category_order[k]];

			if (v->counts && v->profile.name != NULL &&
			    strcmp(v->profile.name, cat) == 0)
				return &v->profile;
		}
		for (size_t k = 0; k < rules->n_extra; k++) {
			const char *name = rules->extra[k].name;

			if (name != NULL && strcmp(name, cat) == 0)
				return &rules->extra[k];
		}
	}
	return NULL;
}

/* Fills everything but since, until and next_change from the winner w (or -1) in state s. */
static void describe(const struct cal_occurrence *occ, const struct presence_rules *rules,
                     ptrdiff_t w, enum presence_state s, struct presence *out)
{
	const struct cal_occurrence *o;
	const struct presence_profile *p;

	out->state = s;
	out->winner = w;
	if (w < 0) {
		out->profile = NULL;
		out->forward = NULL;
		out->subject = NULL;
		out->reason = "no appointment";
		return;
	}
	o = &occ[w];
	p = category_profile(o, rules);
	if (p != NULL)
		out->reason = "category";
	else if (o->all_day)
		out->reason = "all-day appointment";
	else
		out->reason = "appointment";
	if (p == NULL)
		p = &rules->value[s].profile;
	out->profile = p->name;
	out->forward = p->forward;
	out->subject = o->is_private ? private_subject : o->subject;
}

static bool str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Whether a consumer would see a change: the winner and reason are not part of it, so two
 * back-to-back meetings with the same subject are one uninterrupted presence. */
static bool same_result(const struct presence *a, const struct presence *b)
{
	return a->state == b->state && str_eq(a->profile, b->profile) &&
	       str_eq(a->forward, b->forward) && str_eq(a->subject, b->subject);
}

void presence_compute(const struct cal_occurrence *occ, size_t n,
                      const struct presence_rules *rules, int64_t now_utc, struct presence *out)
{
	struct presence r = {0};
	enum presence_state s;
	ptrdiff_t w;
	int64_t t;
	int64_t b;

	assert(rules != NULL && out != NULL && (occ != NULL || n == 0));
	w = winner_at(occ, n, rules, now_utc, &s);
	describe(occ, rules, w, s, &r);

	/*
	 * since: walk back over the segments between boundaries while they have the same state.
	 * S is constant on [b, now] for the largest boundary b <= now; if there is none, nothing
	 * counted starts at or before now and the user has been free forever. The smallest boundary
	 * is a start, so when the walk runs out of boundaries the state began there.
	 */
	r.since_utc = PRESENCE_SINCE_ALWAYS;
	if (boundary_before(occ, n, rules, now_utc, true, &t)) {
		for (;;) {
			if (!boundary_before(occ, n, rules, t, false, &b) ||
			    state_at(occ, n, rules, b) != s)
				break;
			t = b;
		}
		r.since_utc = t;
	}

	/* until and next_change: walk forward until the state changes. A change of state is a
	 * change of result, so next_change is found on the way and is never after until. */
	r.until_utc = PRESENCE_NEVER;
	r.next_change_utc = PRESENCE_NEVER;
	t = now_utc;
	while (boundary_after(occ, n, rules, t, &b)) {
		struct presence at;
		enum presence_state bs;
		ptrdiff_t bw = winner_at(occ, n, rules, b, &bs);

		if (r.next_change_utc == PRESENCE_NEVER) {
			describe(occ, rules, bw, bs, &at);
			if (!same_result(&at, &r))
				r.next_change_utc = b;
		}
		if (bs != s) {
			r.until_utc = b;
			break;
		}
		t = b;
	}
	*out = r;
}
