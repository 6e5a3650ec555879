/* SPDX-License-Identifier: MIT */
/*
 * presence.h: one user's calendar presence at an instant, derived from the occurrences of the
 * mirrored calendar window and the admin's rules. Pure: no clock, no I/O, no globals, no
 * allocation. docs/presence.md describes the rules, the merge and the since/until/next_change
 * semantics with examples.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cal_occurrence;

/* Ordered by strength: a larger value wins a merge (PRODUCT.md: OOF > Busy > WorkingElsewhere >
 * Tentative > Free). */
enum presence_state {
	PRESENCE_FREE = 0,
	PRESENCE_TENTATIVE,
	PRESENCE_WORKING_ELSEWHERE,
	PRESENCE_BUSY,
	PRESENCE_OOF,
};

#define PRESENCE_STATE_COUNT 5

/* until_utc and next_change_utc when nothing in the calendar ends the current result. */
#define PRESENCE_NEVER INT64_MAX

/* since_utc of a free state that no counted appointment precedes: free "since forever". */
#define PRESENCE_SINCE_ALWAYS INT64_C(0)

/* A presence profile and the call-forwarding target it applies. Strings are borrowed from the
 * caller (normally the immutable struct cfg); NULL means "none". */
struct presence_profile {
	const char *name;
	const char *forward;
};

/* How one free/busy value is treated. */
struct presence_value_rule {
	bool counts; /* the value makes the user non-free */
	struct presence_profile profile;
};

/*
 * The admin's rules, a plain value struct. All pointers are borrowed and must outlive every
 * struct presence computed with them.
 *
 * value[] is indexed by enum presence_state; value[PRESENCE_FREE] is ignored because Free never
 * counts (nor do NoData and Unknown, which have no entry). An appointment with a category equal
 * to the name of a counted value's profile or of one of extra[] takes that profile and its
 * forward; see presence_compute() for the precedence.
 */
struct presence_rules {
	struct presence_value_rule value[PRESENCE_STATE_COUNT];
	const struct presence_profile *extra; /* n_extra named profiles selectable by category */
	size_t n_extra;
	bool ignore_all_day; /* all-day occurrences never count, whatever their free/busy value */
	/* An all-day occurrence counts only when its free/busy value is OOF (and OOF counts);
	 * timed occurrences are not affected. ignore_all_day wins when both are set. */
	bool all_day_oof_only;
};

/*
 * The presence at now_utc. profile, forward and subject are borrowed: from the rules, from the
 * winning occurrence, or (subject of a private item) a static "private". reason is static.
 */
struct presence {
	enum presence_state state;
	const char *profile; /* NULL when free, or when the state's profile has no name */
	const char *forward; /* NULL when free, or when the profile has no forwarding target */
	const char *subject; /* NULL when free, or when the winner has no subject */
	/* "appointment", "all-day appointment", "category" or "no appointment" */
	const char *reason;
	ptrdiff_t winner;  /* index of the winning occurrence, or -1 when free */
	int64_t since_utc; /* start of the span of this state, or PRESENCE_SINCE_ALWAYS */
	int64_t until_utc; /* first instant > now with another state, or PRESENCE_NEVER */
	/* First instant > now with another (state, profile, forward, subject), compared by
	 * content; <= until_utc, or PRESENCE_NEVER. */
	int64_t next_change_utc;
};

/*
 * The defaults: Busy ("In a meeting") and OOF ("Out of office") count; Tentative
 * ("Tentative") and WorkingElsewhere ("Working elsewhere") have profiles but do not count; no
 * forwarding targets, no extra profiles, all-day items count like any other.
 */
struct presence_rules presence_rules_default(void);

/* "free", "tentative", "working-elsewhere", "busy", "oof"; "unknown" for a value out of range. */
const char *presence_state_name(enum presence_state state);

/*
 * Computes the presence at now_utc from occ[0..n) (any order; duplicates, overlaps and
 * occurrences with start >= end, which are ignored, are fine; occ may be NULL when n is 0) and
 * writes it to *out. Never fails.
 *
 * An occurrence counts when it is not cancelled, start < end, its free/busy value has a rule
 * that counts, and it is not all-day while rules->ignore_all_day is set, nor all-day with a
 * value other than OOF while rules->all_day_oof_only is set. Its interval is the
 * half-open [start, end). Among the counted occurrences that contain now, the strongest state
 * wins; equal states go to the earliest start, then the latest end, then the smallest item_id
 * (NULL first, byte order), then the lowest index.
 *
 * The winner's profile is that of the first of its categories that equals (byte for byte) a
 * configured profile name, looking at counted values' profiles in the order OOF, Busy,
 * WorkingElsewhere, Tentative, then at extra[] in order; else its value's profile. The state is
 * always that of its free/busy value: a category selects only the profile and forward.
 *
 * Runs in O(n^2) time in the worst case (n is one mailbox's window), no allocation.
 */
void presence_compute(const struct cal_occurrence *occ, size_t n,
                      const struct presence_rules *rules, int64_t now_utc, struct presence *out);
