/* SPDX-License-Identifier: MIT */
/*
 * graph-event.h: what Microsoft Graph answers about a mailbox's calendar, read into calsync's
 * structs: a calendarView or calendarView delta page into occurrences (cal/occurrence.h, what
 * every backend produces) and removed ids, the application of a delta page onto a window,
 * and the user lookup. Pure: no I/O, no clock.
 *
 * The reading of one event of value[] (names as in microsoft.graph.event):
 *
 *   id -> item_id, changeKey -> change_key, iCalUId -> uid, subject, location.displayName ->
 *   location, organizer.emailAddress.address -> organizer, categories, start and end
 *   (dateTimeTimeZone) -> start_utc and end_utc, isAllDay -> all_day, isCancelled ->
 *   is_cancelled, sensitivity private or confidential -> is_private, showAs -> free_busy,
 *   type singleInstance, occurrence, exception -> enum cal_item_type.
 *
 * - start and end must be in UTC: timeZone "UTC" (what Graph writes for the Prefer header
 *   graph_url_prefer() sends), or "Etc/UTC" or "Coordinated Universal Time" (the IANA name
 *   and the Windows display name of the same zone), with a dateTime of up to 9 fraction digits
 *   (Graph writes 7) and no offset other than "Z". Any other zone is an error naming the
 *   event and the zone: calsync never converts local times.
 * - Skipped and counted in n_skipped (a window has no use for them): type seriesMaster, an
 *   event without start or end, one whose end is before its start, and a second entry with the
 *   same id (see "Duplicates").
 * - Absent and null mean "none": strings become NULL, booleans false, showAs CAL_FB_UNKNOWN
 *   (which never counts), type CAL_ITEM_SINGLE. An empty location.displayName or organizer
 *   address is NULL too: Graph writes a location object with "" for an event that has none,
 *   where EWS writes nothing. A null category is dropped.
 * - Enum values calsync does not know: showAs -> CAL_FB_UNKNOWN; type -> CAL_ITEM_SINGLE; a
 *   sensitivity other than normal or personal -> is_private (never expose what we cannot
 *   classify).
 * - Unknown properties are ignored. A known property of the wrong JSON type is an error
 *   naming the entry (value[i] and its id) and the property.
 * - A delta entry {"id": ..., "@removed": {"reason": "deleted" | "changed"}} is a removal,
 *   whatever the reason (Graph also reports events that left the window this way). A
 *   calendarView page (GRAPH_PAGE_VIEW) has no removals: one is an error.
 *
 * Duplicates. Within a calendarView page the first entry with an id wins, as in the EWS
 * conversion (sync/ews-convert.c). Within a delta page the last one wins, whether an upsert or
 * a removal, because a later entry reports a later change; across delta pages
 * graph_delta_apply() does the same, page after page.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "base/compat.h"

struct cal_occurrence;
struct err;
struct graph_schema_enum;
struct graph_schema_prop;

/* The most occurrences in a page and in a window. Equal to STORE_MAX_OCCURRENCES
 * (store/store.h), which src/graph/ may not include: the backend checks the two agree. */
#define GRAPH_MAX_OCCURRENCES 20000u
/* The largest answer body read: as EWS_MAX_RESPONSE, a page far larger than Graph's 1000
 * events at most still parses in tens of milliseconds. */
#define GRAPH_MAX_RESPONSE (32u << 20)

enum graph_page_kind {
	GRAPH_PAGE_VIEW = 0, /* a calendarView page: no removals; the first of an id wins */
	GRAPH_PAGE_DELTA,    /* a calendarView delta page: removals; the last of an id wins */
};

/* A page read. Everything is owned; the ids of occ[] and removed[] are unique and disjoint. */
struct graph_page {
	struct cal_occurrence *occ; /* events to keep or upsert, in the page's order */
	size_t n_occ;
	char **removed; /* delta: ids to drop from the window */
	size_t n_removed;
	/* @odata.nextLink (more pages follow) and @odata.deltaLink (the round is complete; keep it
	 * for the next round) as paths checked by graph_url_link(); NULL when absent. */
	char *next_path;
	char *delta_path;
	size_t n_skipped; /* entries of value[] that became neither (see above) */
};

/*
 * Reads len bytes of an answer into *out (zeroed first; clear it with graph_page_clear() on
 * success; on failure it is left zeroed). base is the base URL (graph_url_base()) the links
 * must stay at. 0; -EMSGSIZE for more than GRAPH_MAX_RESPONSE bytes or GRAPH_MAX_OCCURRENCES
 * entries; -EPERM for a link that leaves base; -EPROTO for anything else that is not a page
 * (not JSON, no value array, an entry that is not an event, a wrong type, a zone that is not
 * UTC, both links). err says what and where.
 */
ATTR_NODISCARD int graph_page_read(const char *json, size_t len, enum graph_page_kind kind,
                                   const char *base, struct graph_page *out, struct err *err);

/* Frees everything p holds and leaves it zeroed; NULL-safe. */
void graph_page_clear(struct graph_page *p);

/*
 * Applies a delta page onto a window: *occs (owned, *n entries, ids unique; NULL and 0 for an
 * empty window) loses every occurrence whose id page->removed names and every one page->occ
 * replaces; a replaced occurrence keeps its place, new ones follow in the page's order.
 * Removals of ids the window does not hold are no-ops (Graph reports events outside the
 * window so). page's occurrences are moved into the window and its removals consumed (page
 * then holds neither; its links stay). O((n + page) log n).
 *
 * 0; -EMSGSIZE with err when the window would exceed max occurrences, and then neither *occs
 * nor page changes.
 */
ATTR_NODISCARD int graph_delta_apply(struct cal_occurrence **occs, size_t *n,
                                     struct graph_page *page, size_t max, struct err *err);

/* The user lookup's answer (GRAPH_USER_SELECT). Strings owned; id is never NULL. */
struct graph_user {
	char *id;   /* the directory object id (a GUID): stable across renames */
	char *mail; /* the primary SMTP address, NULL when the user has none */
	char *upn;  /* userPrincipalName */
};

/* Reads a user answer into *out (written only on success). 0, -EMSGSIZE, or -EPROTO when it
 * is not a user object with a non-empty id. */
ATTR_NODISCARD int graph_user_read(const char *json, size_t len, struct graph_user *out,
                                   struct err *err);

/* Frees u's strings and leaves it zeroed; NULL-safe. */
void graph_user_clear(struct graph_user *u);

/* What the readers above look up, and the enum members they map (graph-schema.h). */
const struct graph_schema_prop *graph_event_schema(size_t *out_n);
const struct graph_schema_enum *graph_event_enums(size_t *out_n);
