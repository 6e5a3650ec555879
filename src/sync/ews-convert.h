/* SPDX-License-Identifier: MIT */
/*
 * ews-convert.h: the calendar items of a CalendarView answer (ews-response) turned into the
 * occurrences calsync mirrors (cal/occurrence.h, what the store and the presence engine use).
 * Pure: no I/O, no clock.
 */
#pragma once

#include <stddef.h>

#include "base/compat.h"

struct cal_occurrence;
struct ews_cal_item;
struct err;

/*
 * Converts items[0..n) into an owned array *out_occs of *out_n occurrences (NULL when 0; free it
 * with cal_occurrences_free()). Skipped, because a CalendarView mirror has no use for them:
 * items that are not calendar items, recurring masters, and items without an ItemId (or with an
 * empty one), Start or End, or with End before Start (End equal to Start is kept). A second item
 * with the same ItemId is skipped too: of the items that pass the other rules, the first in
 * items[] wins. *out_skipped (may be NULL) counts what was skipped (n - *out_n), so the caller
 * can log it. The occurrences keep the order of items[].
 *
 * Mapping: Sensitivity Private or Confidential sets is_private; LegacyFreeBusyStatus maps
 * one to one onto enum cal_fb (absent: CAL_FB_UNKNOWN, which never counts); CalendarItemType
 * Occurrence and Exception map onto theirs, everything else onto CAL_ITEM_SINGLE; an absent
 * IsAllDayEvent or IsCancelled is false. Strings are copied; a NULL category (xsi:nil) is
 * dropped, because the store refuses it. String lengths are not checked here: the store
 * checks them against its STORE_MAX_* limits when the occurrences are written.
 *
 * Returns 0, or -EMSGSIZE with err when n exceeds STORE_MAX_OCCURRENCES.
 */
ATTR_NODISCARD int sync_items_to_occurrences(const struct ews_cal_item *items, size_t n,
                                             struct cal_occurrence **out_occs, size_t *out_n,
                                             size_t *out_skipped, struct err *err);
