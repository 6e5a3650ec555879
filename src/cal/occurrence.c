/* SPDX-License-Identifier: MIT */
/* occurrence.c: the names of the occurrence enums, one table for the store and the API, and
 * the occurrence's free functions. */
#include "cal/occurrence.h"

#include <stdlib.h>

const char *const cal_fb_names[CAL_FB_COUNT] = {
	[CAL_FB_UNKNOWN] = "unknown",
	[CAL_FB_FREE] = "free",
	[CAL_FB_TENTATIVE] = "tentative",
	[CAL_FB_BUSY] = "busy",
	[CAL_FB_OOF] = "oof",
	[CAL_FB_WORKING_ELSEWHERE] = "working-elsewhere",
	[CAL_FB_NO_DATA] = "no-data",
};

const char *const cal_item_type_names[CAL_ITEM_TYPE_COUNT] = {
	[CAL_ITEM_SINGLE] = "single",
	[CAL_ITEM_OCCURRENCE] = "occurrence",
	[CAL_ITEM_EXCEPTION] = "exception",
};

void cal_occurrence_clear(struct cal_occurrence *o)
{
	free(o->item_id);
	free(o->change_key);
	free(o->uid);
	free(o->subject);
	free(o->location);
	free(o->organizer);
	for (size_t i = 0; i < o->n_categories; i++)
		free(o->categories[i]);
	free(o->categories);
	*o = (struct cal_occurrence){0};
}

void cal_occurrences_free(struct cal_occurrence *occs, size_t n)
{
	if (occs == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		cal_occurrence_clear(&occs[i]);
	free(occs);
}
