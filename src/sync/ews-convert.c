/* SPDX-License-Identifier: MIT */
/*
 * ews-convert.c: CalendarView items (struct ews_cal_item) to mirrored occurrences (struct
 * cal_occurrence). Duplicates are found by sorting the ItemIds, so a full window of
 * STORE_MAX_OCCURRENCES items costs O(n log n), not O(n^2) string comparisons.
 */
#include "sync/ews-convert.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "cal/occurrence.h"
#include "ews/ews-response.h"
#include "store/store.h"

/* An item that passed every rule but the duplicate check, and its place in the input. */
struct candidate {
	const char *item_id;
	size_t index;
};

/* Whether the item is one a CalendarView mirror keeps, duplicates aside. */
static bool is_wanted(const struct ews_cal_item *it)
{
	return it->is_calendar_item && it->item_type != EWS_ITEM_RECURRING_MASTER &&
	       it->item_id != NULL && it->item_id[0] != '\0' && it->has_start && it->has_end &&
	       it->end_utc >= it->start_utc;
}

/* By ItemId, then by input position, so the first of equal ids sorts first. */
static int cmp_candidate(const void *a, const void *b)
{
	const struct candidate *x = a;
	const struct candidate *y = b;
	int c = strcmp(x->item_id, y->item_id);

	if (c != 0)
		return c;
	return (x->index > y->index) - (x->index < y->index);
}

static enum cal_fb map_free_busy(enum ews_free_busy fb)
{
	switch (fb) {
	case EWS_FB_FREE:
		return CAL_FB_FREE;
	case EWS_FB_TENTATIVE:
		return CAL_FB_TENTATIVE;
	case EWS_FB_BUSY:
		return CAL_FB_BUSY;
	case EWS_FB_OOF:
		return CAL_FB_OOF;
	case EWS_FB_WORKING_ELSEWHERE:
		return CAL_FB_WORKING_ELSEWHERE;
	case EWS_FB_NO_DATA:
		return CAL_FB_NO_DATA;
	case EWS_FB_UNKNOWN:
	default:
		return CAL_FB_UNKNOWN;
	}
}

static enum cal_item_type map_item_type(enum ews_item_type t)
{
	switch (t) {
	case EWS_ITEM_OCCURRENCE:
		return CAL_ITEM_OCCURRENCE;
	case EWS_ITEM_EXCEPTION:
		return CAL_ITEM_EXCEPTION;
	case EWS_ITEM_SINGLE:
	case EWS_ITEM_UNKNOWN:
	case EWS_ITEM_RECURRING_MASTER:
	default:
		return CAL_ITEM_SINGLE;
	}
}

static void convert_one(const struct ews_cal_item *it, struct cal_occurrence *o)
{
	size_t n_cats = 0;

	*o = (struct cal_occurrence){
		.item_id = xstrdup(it->item_id),
		.change_key = xstrdup_or_null(it->change_key),
		.uid = xstrdup_or_null(it->uid),
		.subject = xstrdup_or_null(it->subject),
		.location = xstrdup_or_null(it->location),
		.organizer = xstrdup_or_null(it->organizer),
		.start_utc = it->start_utc,
		.end_utc = it->end_utc,
		.all_day = it->has_all_day && it->all_day,
		.is_cancelled = it->has_cancelled && it->is_cancelled,
		.is_private = it->sensitivity == EWS_SENS_PRIVATE ||
	                      it->sensitivity == EWS_SENS_CONFIDENTIAL,
		.free_busy = map_free_busy(it->free_busy),
		.type = map_item_type(it->item_type),
	};
	/* A category without text (xsi:nil) is no category; the store refuses NULL ones. */
	for (size_t c = 0; c < it->n_categories; c++)
		n_cats += it->categories[c] != NULL;
	if (n_cats == 0)
		return;
	o->categories = xcalloc(n_cats, sizeof(*o->categories));
	for (size_t c = 0; c < it->n_categories; c++) {
		if (it->categories[c] != NULL)
			o->categories[o->n_categories++] = xstrdup(it->categories[c]);
	}
}

int sync_items_to_occurrences(const struct ews_cal_item *items, size_t n,
                              struct cal_occurrence **out_occs, size_t *out_n, size_t *out_skipped,
                              struct err *err)
{
	struct candidate *cand;
	bool *keep;
	size_t n_cand = 0;
	size_t n_keep = 0;
	struct cal_occurrence *occs = NULL;

	if (n > STORE_MAX_OCCURRENCES)
		return err_set(err, -EMSGSIZE, "CalendarView: %zu items, limit %u", n,
		               STORE_MAX_OCCURRENCES);
	cand = xcalloc(n, sizeof(*cand));
	keep = xcalloc(n, sizeof(*keep));
	for (size_t i = 0; i < n; i++) {
		if (is_wanted(&items[i]))
			cand[n_cand++] =
				(struct candidate){.item_id = items[i].item_id, .index = i};
	}
	qsort(cand, n_cand, sizeof(*cand), cmp_candidate);
	for (size_t k = 0; k < n_cand; k++) {
		if (k == 0 || strcmp(cand[k].item_id, cand[k - 1].item_id) != 0) {
			keep[cand[k].index] = true;
			n_keep++;
		}
	}
	if (n_keep > 0) {
		size_t j = 0;

		occs = xcalloc(n_keep, sizeof(*occs));
		for (size_t i = 0; i < n; i++) {
			if (keep[i])
				convert_one(&items[i], &occs[j++]);
		}
	}
	free(cand);
	free(keep);
	*out_occs = occs;
	*out_n = n_keep;
	if (out_skipped != NULL)
		*out_skipped = n - n_keep;
	return 0;
}
