/* SPDX-License-Identifier: MIT */
/*
 * graph-event.c: a calendarView or delta page into occurrences and removals, and the user
 * lookup (graph-event.h). Every property name the reader uses is a P_ macro below, and the
 * same macros make graph_event_schema(), the list test-graph-csdl.c checks against the CSDL.
 * Duplicates are found by sorting the ids, so a page costs O(n log n).
 */
#include "graph/graph-event.h"
#include "graph/graph-zone.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/iso8601.h"
#include "base/xalloc.h"
#include "cal/occurrence.h"
#include "graph/graph-json-int.h"
#include "graph/graph-schema.h"
#include "graph/graph-url.h"

/* microsoft.graph.event and the types it holds (every top-level one is in GRAPH_EVENT_SELECT). */
#define P_ID           "id"
#define P_CHANGE_KEY   "changeKey"
#define P_ICALUID      "iCalUId"
#define P_SUBJECT      "subject"
#define P_LOCATION     "location"
#define P_ORGANIZER    "organizer"
#define P_CATEGORIES   "categories"
#define P_START        "start"
#define P_END          "end"
#define P_IS_ALL_DAY   "isAllDay"
#define P_IS_CANCELLED "isCancelled"
#define P_SENSITIVITY  "sensitivity"
#define P_SHOW_AS      "showAs"
#define P_TYPE         "type"
#define P_ORIG_ZONE    "originalStartTimeZone"
#define P_DATE_TIME    "dateTime"     /* dateTimeTimeZone */
#define P_TIME_ZONE    "timeZone"     /* dateTimeTimeZone */
#define P_DISPLAY_NAME "displayName"  /* location */
#define P_EMAIL        "emailAddress" /* recipient */
#define P_ADDRESS      "address"      /* emailAddress */
/* microsoft.graph.user */
#define P_MAIL "mail"
#define P_UPN  "userPrincipalName"
/* OData annotations: not properties of the CSDL. */
#define A_REMOVED    "@removed"
#define A_REASON     "reason"
#define A_NEXT_LINK  "@odata.nextLink"
#define A_DELTA_LINK "@odata.deltaLink"

static const struct graph_schema_prop schema[] = {
	{"entity", P_ID, "Edm.String"},
	{"outlookItem", P_CHANGE_KEY, "Edm.String"},
	{"outlookItem", P_CATEGORIES, "Collection(Edm.String)"},
	{"event", P_ICALUID, "Edm.String"},
	{"event", P_SUBJECT, "Edm.String"},
	{"event", P_LOCATION, "graph.location"},
	{"event", P_ORGANIZER, "graph.recipient"},
	{"event", P_START, "graph.dateTimeTimeZone"},
	{"event", P_END, "graph.dateTimeTimeZone"},
	{"event", P_IS_ALL_DAY, "Edm.Boolean"},
	{"event", P_IS_CANCELLED, "Edm.Boolean"},
	{"event", P_SENSITIVITY, "graph.sensitivity"},
	{"event", P_SHOW_AS, "graph.freeBusyStatus"},
	{"event", P_TYPE, "graph.eventType"},
	{"event", P_ORIG_ZONE, "Edm.String"},
	{"dateTimeTimeZone", P_DATE_TIME, "Edm.String"},
	{"dateTimeTimeZone", P_TIME_ZONE, "Edm.String"},
	{"location", P_DISPLAY_NAME, "Edm.String"},
	{"recipient", P_EMAIL, "graph.emailAddress"},
	{"emailAddress", P_ADDRESS, "Edm.String"},
	{"user", P_MAIL, "Edm.String"},
	{"user", P_UPN, "Edm.String"},
};

/* A type value that means "skip": a series master, which a calendarView mirror never keeps. */
#define TYPE_SKIP (-1)
/* sensitivity: whether it makes the occurrence private. */
#define NOT_PRIVATE 0
#define PRIVATE     1

static const struct graph_schema_enum enums[] = {
	{"freeBusyStatus", "unknown", CAL_FB_UNKNOWN},
	{"freeBusyStatus", "free", CAL_FB_FREE},
	{"freeBusyStatus", "tentative", CAL_FB_TENTATIVE},
	{"freeBusyStatus", "busy", CAL_FB_BUSY},
	{"freeBusyStatus", "oof", CAL_FB_OOF},
	{"freeBusyStatus", "workingElsewhere", CAL_FB_WORKING_ELSEWHERE},
	{"sensitivity", "normal", NOT_PRIVATE},
	{"sensitivity", "personal", NOT_PRIVATE},
	{"sensitivity", "private", PRIVATE},
	{"sensitivity", "confidential", PRIVATE},
	{"eventType", "singleInstance", CAL_ITEM_SINGLE},
	{"eventType", "occurrence", CAL_ITEM_OCCURRENCE},
	{"eventType", "exception", CAL_ITEM_EXCEPTION},
	{"eventType", "seriesMaster", TYPE_SKIP},
};

#define N_ENUMS (sizeof(enums) / sizeof(enums[0]))

const struct graph_schema_prop *graph_event_schema(size_t *out_n)
{
	*out_n = sizeof(schema) / sizeof(schema[0]);
	return schema;
}

const struct graph_schema_enum *graph_event_enums(size_t *out_n)
{
	*out_n = N_ENUMS;
	return enums;
}

/* The mapped value of member s of enum type, or dflt when s is NULL or not a member. */
static int map_enum(const char *type, const char *s, int dflt)
{
	if (s == NULL)
		return dflt;
	for (size_t i = 0; i < N_ENUMS; i++) {
		if (strcmp(enums[i].type, type) == 0 && strcmp(enums[i].member, s) == 0)
			return enums[i].value;
	}
	return dflt;
}

/* One entry of value[], read. */
enum entry_kind {
	ENTRY_SKIP = 0,
	ENTRY_UPSERT,
	ENTRY_REMOVE,
};

struct entry {
	enum entry_kind kind;
	struct cal_occurrence occ; /* UPSERT: owned; REMOVE: only item_id */
};

/* The zones that are UTC under another name (graph-event.h). */
static bool is_utc_zone(const char *tz)
{
	return strcmp(tz, "UTC") == 0 || strcmp(tz, "Etc/UTC") == 0 ||
	       strcmp(tz, "Coordinated Universal Time") == 0;
}

/* start or end: *has false when absent or null. */
static int read_when(const json_t *ev, const char *key, const char *where, int64_t *out, bool *has,
                     struct err *err)
{
	const json_t *dt;
	const char *s;
	const char *tz;
	char what[GJ_WHERE_SIZE + 16];
	bool no_zone = false;
	struct err perr = {0};
	size_t len;
	int rc = gj_object(ev, key, where, &dt, err);

	*has = false;
	if (rc < 0 || dt == NULL)
		return rc;
	snprintf(what, sizeof(what), "%s: %s", where, key);
	rc = gj_string_req(dt, P_DATE_TIME, what, &s, err);
	if (rc == 0)
		rc = gj_string_req(dt, P_TIME_ZONE, what, &tz, err);
	if (rc < 0)
		return rc;
	if (!is_utc_zone(tz)) {
		char shown[64];

		gj_printable(tz, shown, sizeof(shown));
		return err_set(err, -EPROTO,
		               "%s: timeZone '%s' is not UTC (calsync asks for Prefer: "
		               "outlook.timezone=\"UTC\")",
		               what, shown);
	}
	len = strlen(s);
	if (iso8601_parse(s, len, out, &no_zone, &perr) < 0)
		return err_set(err, -EPROTO, "%s: dateTime: %s", what, perr.msg);
	if (!no_zone && s[len - 1] != 'Z')
		return err_set(err, -EPROTO, "%s: dateTime has a UTC offset, but timeZone is %s",
		               what, tz);
	*has = true;
	return 0;
}

/* The categories, validated, into o (nothing allocated on failure). */
static int read_categories(const json_t *ev, const char *where, struct cal_occurrence *o,
                           struct err *err)
{
	const json_t *cats;
	size_t n = 0;
	int rc = gj_array(ev, P_CATEGORIES, where, &cats, err);

	if (rc < 0 || cats == NULL)
		return rc;
	for (size_t i = 0; i < json_array_size(cats); i++) {
		const json_t *c = json_array_get(cats, i);

		if (json_is_string(c))
			n++;
		else if (!json_is_null(c))
			return err_set(err, -EPROTO, "%s: '%s'[%zu] is %s, not a string", where,
			               P_CATEGORIES, i, gj_kind(c));
	}
	if (n == 0)
		return 0;
	o->categories = xcalloc(n, sizeof(*o->categories));
	for (size_t i = 0; i < json_array_size(cats); i++) {
		const json_t *c = json_array_get(cats, i);

		if (json_is_string(c))
			o->categories[o->n_categories++] = xstrdup(json_string_value(c));
	}
	return 0;
}

/* s copied, or NULL for NULL and (when empty_is_none) "". */
static char *copy(const char *s, bool empty_is_none)
{
	if (s == NULL || (empty_is_none && s[0] == '\0'))
		return NULL;
	return xstrdup(s);
}

/* The strings of an event, borrowed from the document. */
struct strings {
	const char *change_key;
	const char *uid;
	const char *subject;
	const char *location;
	const char *organizer;
	const char *sensitivity;
	const char *show_as;
	const char *type;
};

static int read_strings(const json_t *ev, const char *where, struct strings *s, struct err *err)
{
	const json_t *loc;
	const json_t *org;
	const json_t *ea = NULL;
	char what[GJ_WHERE_SIZE + 16];
	int rc;

	*s = (struct strings){0};
	rc = gj_string(ev, P_CHANGE_KEY, where, &s->change_key, err);
	if (rc == 0)
		rc = gj_string(ev, P_ICALUID, where, &s->uid, err);
	if (rc == 0)
		rc = gj_string(ev, P_SUBJECT, where, &s->subject, err);
	if (rc == 0)
		rc = gj_string(ev, P_SENSITIVITY, where, &s->sensitivity, err);
	if (rc == 0)
		rc = gj_string(ev, P_SHOW_AS, where, &s->show_as, err);
	if (rc == 0)
		rc = gj_string(ev, P_TYPE, where, &s->type, err);
	if (rc == 0)
		rc = gj_object(ev, P_LOCATION, where, &loc, err);
	if (rc == 0 && loc != NULL) {
		snprintf(what, sizeof(what), "%s: %s", where, P_LOCATION);
		rc = gj_string(loc, P_DISPLAY_NAME, what, &s->location, err);
	}
	if (rc == 0)
		rc = gj_object(ev, P_ORGANIZER, where, &org, err);
	if (rc == 0 && org != NULL) {
		snprintf(what, sizeof(what), "%s: %s", where, P_ORGANIZER);
		rc = gj_object(org, P_EMAIL, what, &ea, err);
	}
	if (rc == 0 && ea != NULL) {
		snprintf(what, sizeof(what), "%s: %s.%s", where, P_ORGANIZER, P_EMAIL);
		rc = gj_string(ea, P_ADDRESS, what, &s->organizer, err);
	}
	return rc;
}

/* An all-day event's midnights, which Graph writes as "UTC" whatever the zone (graph-zone.h),
 * as the instants of the midnights in the zone it was made in, as EWS gives them. A zone that
 * is UTC, absent or unknown keeps them as they are. */
static void local_midnights(const json_t *ev, int64_t *start, int64_t *end)
{
	const json_t *z = json_object_get(ev, P_ORIG_ZONE);
	const char *zone = json_is_string(z) ? json_string_value(z) : NULL;
	int64_t s, e;

	if (zone == NULL || is_utc_zone(zone))
		return;
	if (graph_zone_wall_to_utc(zone, *start, &s) == 0 &&
	    graph_zone_wall_to_utc(zone, *end, &e) == 0 && s <= e) {
		*start = s;
		*end = e;
	}
}

/* The class id that starts an Outlook GlobalObjectId in hex, the form Exchange's iCalUId has. */
#define GOID_PREFIX "040000008200E00074C5B7101A82E008"
#define GOID_DATE   32u /* hex offset of the instance date (YYYY MM DD, 4 bytes) */

/* Graph's iCalUId is the occurrence's GlobalObjectId, with its instance date; EWS's UID (and
 * cal_occurrence.uid, shared by a series) is the CleanGlobalObjectId, the same with the date
 * zeroed. Any other form is kept as it is. */
static char *series_uid(const char *uid)
{
	char *u = copy(uid, false);

	if (u != NULL && strlen(u) >= GOID_DATE + 8 &&
	    strncasecmp(u, GOID_PREFIX, strlen(GOID_PREFIX)) == 0)
		memset(u + GOID_DATE, '0', 8);
	return u;
}

/* An event that is not a removal into *e. */
static int read_upsert(const json_t *ev, const char *id, const char *where, struct entry *e,
                       struct err *err)
{
	struct strings s;
	bool all_day, cancelled, has_start, has_end, has;
	int64_t start = 0, end = 0;
	int type;
	int rc = read_strings(ev, where, &s, err);

	if (rc == 0)
		rc = gj_bool(ev, P_IS_ALL_DAY, where, &all_day, &has, err);
	if (rc == 0)
		rc = gj_bool(ev, P_IS_CANCELLED, where, &cancelled, &has, err);
	if (rc == 0)
		rc = read_when(ev, P_START, where, &start, &has_start, err);
	if (rc == 0)
		rc = read_when(ev, P_END, where, &end, &has_end, err);
	if (rc < 0)
		return rc;
	/* Categories before the decision to skip, so that a malformed entry is an error even
	 * when it would be skipped. */
	rc = read_categories(ev, where, &e->occ, err);
	if (rc < 0)
		return rc;
	type = map_enum("eventType", s.type, CAL_ITEM_SINGLE);
	if (type == TYPE_SKIP || !has_start || !has_end || end < start) {
		cal_occurrence_clear(&e->occ);
		e->kind = ENTRY_SKIP;
		return 0;
	}
	e->occ.item_id = xstrdup(id);
	e->occ.change_key = copy(s.change_key, false);
	e->occ.uid = series_uid(s.uid);
	e->occ.subject = copy(s.subject, false);
	e->occ.location = copy(s.location, true);
	e->occ.organizer = copy(s.organizer, true);
	if (all_day)
		local_midnights(ev, &start, &end);
	e->occ.start_utc = start;
	e->occ.end_utc = end;
	e->occ.all_day = all_day;
	e->occ.is_cancelled = cancelled;
	/* Absent is normal; a value we cannot classify is private. */
	e->occ.is_private =
		s.sensitivity != NULL && map_enum("sensitivity", s.sensitivity, PRIVATE) == PRIVATE;
	e->occ.free_busy = (enum cal_fb)map_enum("freeBusyStatus", s.show_as, CAL_FB_UNKNOWN);
	e->occ.type = (enum cal_item_type)type;
	e->kind = ENTRY_UPSERT;
	return 0;
}

/* value[i] into *e (zeroed first); on failure nothing is left to free. */
static int read_entry(const json_t *ev, size_t i, enum graph_page_kind kind, struct entry *e,
                      struct err *err)
{
	char where[GJ_WHERE_SIZE];
	const json_t *removed;
	const char *id;
	const char *reason;
	int rc;

	*e = (struct entry){0};
	gj_where(where, "value", i, NULL);
	if (!json_is_object(ev))
		return err_set(err, -EPROTO, "%s: %s, not an event object", where, gj_kind(ev));
	rc = gj_string_req(ev, P_ID, where, &id, err);
	if (rc < 0)
		return rc;
	gj_where(where, "value", i, id);
	rc = gj_object(ev, A_REMOVED, where, &removed, err);
	if (rc < 0)
		return rc;
	if (removed == NULL)
		return read_upsert(ev, id, where, e, err);
	if (kind != GRAPH_PAGE_DELTA)
		return err_set(err, -EPROTO, "%s: '%s' in a calendarView page", where, A_REMOVED);
	rc = gj_string(removed, A_REASON, where, &reason, err);
	if (rc < 0)
		return rc;
	e->kind = ENTRY_REMOVE;
	e->occ.item_id = xstrdup(id);
	return 0;
}

/* An entry that became an upsert or a removal, and its place in value[]. */
struct candidate {
	const char *id;
	size_t index;
};

/* By id, then by position, so that the first of equal ids sorts first. */
static int cmp_candidate(const void *a, const void *b)
{
	const struct candidate *x = a;
	const struct candidate *y = b;
	int c = strcmp(x->id, y->id);

	if (c != 0)
		return c;
	return (x->index > y->index) - (x->index < y->index);
}

/* Moves the entries that win (graph-event.h, "Duplicates") into out, in value[]'s order. */
static void collect(struct entry *entries, size_t n, enum graph_page_kind kind,
                    struct graph_page *out)
{
	struct candidate *cand = xcalloc(n, sizeof(*cand));
	bool *keep = xcalloc(n, sizeof(*keep));
	size_t n_cand = 0, n_up = 0, n_rm = 0;

	for (size_t i = 0; i < n; i++) {
		if (entries[i].kind != ENTRY_SKIP)
			cand[n_cand++] =
				(struct candidate){.id = entries[i].occ.item_id, .index = i};
	}
	qsort(cand, n_cand, sizeof(*cand), cmp_candidate);
	for (size_t k = 0; k < n_cand; k++) {
		bool first = k == 0 || strcmp(cand[k].id, cand[k - 1].id) != 0;
		bool last = k + 1 == n_cand || strcmp(cand[k].id, cand[k + 1].id) != 0;

		if (kind == GRAPH_PAGE_DELTA ? last : first) {
			keep[cand[k].index] = true;
			n_up += entries[cand[k].index].kind == ENTRY_UPSERT;
			n_rm += entries[cand[k].index].kind == ENTRY_REMOVE;
		}
	}
	if (n_up > 0)
		out->occ = xcalloc(n_up, sizeof(*out->occ));
	if (n_rm > 0)
		out->removed = xcalloc(n_rm, sizeof(*out->removed));
	for (size_t i = 0; i < n; i++) {
		if (!keep[i])
			continue;
		if (entries[i].kind == ENTRY_UPSERT) {
			out->occ[out->n_occ++] = entries[i].occ;
		} else {
			out->removed[out->n_removed++] = entries[i].occ.item_id;
		}
		entries[i] = (struct entry){0};
	}
	out->n_skipped = n - n_up - n_rm;
	free(cand);
	free(keep);
}

/* @odata.nextLink and @odata.deltaLink, checked against base, into out. */
static int read_links(const json_t *doc, const char *what, const char *base, struct graph_page *out,
                      struct err *err)
{
	const char *next;
	const char *delta;
	int rc = gj_string(doc, A_NEXT_LINK, what, &next, err);

	if (rc == 0)
		rc = gj_string(doc, A_DELTA_LINK, what, &delta, err);
	if (rc < 0)
		return rc;
	if (next != NULL && delta != NULL)
		return err_set(err, -EPROTO, "%s: both '%s' and '%s'", what, A_NEXT_LINK,
		               A_DELTA_LINK);
	if (next != NULL)
		rc = graph_url_link(base, next, &out->next_path, err);
	if (delta != NULL)
		rc = graph_url_link(base, delta, &out->delta_path, err);
	/* A link that is no URL we take is a protocol error of the answer; one that leaves the
	 * base keeps its -EPERM. */
	if (rc < 0)
		return err_set(err, rc == -EPERM ? rc : -EPROTO, "%s: %s", what,
		               err != NULL ? err->msg : "bad link");
	return 0;
}

/* value[] into out; on failure out may hold links (the caller clears it). */
static int read_value(const json_t *doc, const char *what, enum graph_page_kind kind,
                      struct graph_page *out, struct err *err)
{
	const json_t *value;
	struct entry *entries;
	size_t n;
	int rc = gj_array(doc, "value", what, &value, err);

	if (rc < 0)
		return rc;
	if (value == NULL)
		return err_set(err, -EPROTO, "%s: no 'value' array", what);
	n = json_array_size(value);
	if (n > GRAPH_MAX_OCCURRENCES)
		return err_set(err, -EMSGSIZE, "%s: %zu events, limit %u", what, n,
		               GRAPH_MAX_OCCURRENCES);
	entries = xcalloc(n, sizeof(*entries));
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = read_entry(json_array_get(value, i), i, kind, &entries[i], err);
	if (rc == 0)
		collect(entries, n, kind, out);
	for (size_t i = 0; i < n; i++)
		cal_occurrence_clear(&entries[i].occ);
	free(entries);
	if (rc < 0)
		return err_set(err, rc, "%s: %s", what, err != NULL ? err->msg : "bad event");
	return 0;
}

int graph_page_read(const char *json, size_t len, enum graph_page_kind kind, const char *base,
                    struct graph_page *out, struct err *err)
{
	const char *what =
		kind == GRAPH_PAGE_DELTA ? "calendarView delta page" : "calendarView page";
	json_t *doc;
	int rc;

	*out = (struct graph_page){0};
	rc = gj_load_object(what, json, len, GRAPH_MAX_RESPONSE, &doc, err);
	if (rc < 0)
		return rc;
	rc = read_links(doc, what, base, out, err);
	if (rc == 0)
		rc = read_value(doc, what, kind, out, err);
	json_decref(doc);
	if (rc < 0)
		graph_page_clear(out);
	return rc;
}

void graph_page_clear(struct graph_page *p)
{
	if (p == NULL)
		return;
	cal_occurrences_free(p->occ, p->n_occ);
	for (size_t i = 0; i < p->n_removed; i++)
		free(p->removed[i]);
	free(p->removed);
	free(p->next_path);
	free(p->delta_path);
	*p = (struct graph_page){0};
}

int graph_user_read(const char *json, size_t len, struct graph_user *out, struct err *err)
{
	const char *what = "user";
	const char *id;
	const char *mail;
	const char *upn;
	json_t *doc;
	int rc = gj_load_object(what, json, len, GRAPH_MAX_RESPONSE, &doc, err);

	if (rc < 0)
		return rc;
	rc = gj_string_req(doc, P_ID, what, &id, err);
	if (rc == 0)
		rc = gj_string(doc, P_MAIL, what, &mail, err);
	if (rc == 0)
		rc = gj_string(doc, P_UPN, what, &upn, err);
	if (rc == 0)
		*out = (struct graph_user){
			.id = xstrdup(id),
			.mail = copy(mail, true),
			.upn = copy(upn, true),
		};
	json_decref(doc);
	return rc;
}

void graph_user_clear(struct graph_user *u)
{
	if (u == NULL)
		return;
	free(u->id);
	free(u->mail);
	free(u->upn);
	*u = (struct graph_user){0};
}
