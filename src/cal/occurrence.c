/* SPDX-License-Identifier: MIT */
/* occurrence.c: the names of the occurrence enums, one table for the store and the API. */
#include "cal/occurrence.h"

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
