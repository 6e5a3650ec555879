/* SPDX-License-Identifier: MIT */
/*
 * occurrence.h: one appointment instance of a mailbox's calendar window, as calsync mirrors
 * it (a single appointment, or one occurrence or exception of a recurring series, expanded by
 * Exchange's CalendarView). Plain value struct shared by the presence engine, the store and
 * the API; no dependency on EWS.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* LegacyFreeBusyStatus of an appointment. */
enum cal_fb {
	CAL_FB_UNKNOWN = 0, /* absent or a value calsync does not know: never counts */
	CAL_FB_FREE,
	CAL_FB_TENTATIVE,
	CAL_FB_BUSY,
	CAL_FB_OOF,
	CAL_FB_WORKING_ELSEWHERE,
	CAL_FB_NO_DATA,
};

enum cal_item_type {
	CAL_ITEM_SINGLE = 0,
	CAL_ITEM_OCCURRENCE,
	CAL_ITEM_EXCEPTION,
};

#define CAL_FB_COUNT        (CAL_FB_NO_DATA + 1)
#define CAL_ITEM_TYPE_COUNT (CAL_ITEM_EXCEPTION + 1)

/* The names the store writes and the API shows, indexed by the enums: "free", "busy",
 * "working-elsewhere", "no-data", ...; "single", "occurrence", "exception". */
extern const char *const cal_fb_names[CAL_FB_COUNT];
extern const char *const cal_item_type_names[CAL_ITEM_TYPE_COUNT];

/*
 * Strings are owned, NUL-terminated UTF-8, or NULL when Exchange sent none. Instants are UTC
 * seconds, start < end (an all-day event runs midnight to midnight in the zone it was created
 * in, which Exchange already gives as UTC instants).
 */
struct cal_occurrence {
	char *item_id; /* EWS ItemId of the occurrence (unique within the mailbox) */
	char *change_key;
	char *uid; /* iCalendar UID, shared by all instances of a series */
	char *subject;
	char *location;
	char *organizer;
	char **categories;
	size_t n_categories;
	int64_t start_utc;
	int64_t end_utc;
	bool all_day;
	bool is_cancelled;
	bool is_private; /* Sensitivity Private (or Confidential): never expose details */
	enum cal_fb free_busy;
	enum cal_item_type type;
};

/* Frees o's strings and categories and leaves o zeroed. */
void cal_occurrence_clear(struct cal_occurrence *o);
/* Clears occs[0..n) and frees the array; NULL-safe. The store's loads and the EWS conversion
 * return arrays that are freed with it. */
void cal_occurrences_free(struct cal_occurrence *occs, size_t n);
