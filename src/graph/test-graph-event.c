/* SPDX-License-Identifier: MIT */
/*
 * test-graph-event.c: the page reader against the calendarView and delta fixtures (every
 * field of every event, skips, links), a whole delta round and the next round applied onto a
 * window, every truncation of each fixture, time zones, wrong types naming the entry and the
 * property, duplicates (first wins in a view, last in a delta), enum values calsync does not
 * know, limits, and the user lookup.
 */
#include "graph/graph-event.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/iso8601.h"
#include "base/xalloc.h"
#include "cal/occurrence.h"
#include "graph-test.h"
#include "graph/graph-url.h"
#include "harness.h"

#define BASE GRAPH_DEFAULT_BASE

static int64_t utc(const char *iso)
{
	int64_t t = 0;

	if (iso8601_parse(iso, strlen(iso), &t, NULL, NULL) != 0)
		harness_fail(__FILE__, __LINE__, "bad test time '%s'", iso);
	return t;
}

/* Reads len bytes from an exact-size copy; checks the failure contract. */
static int read_n(const char *json, size_t len, enum graph_page_kind kind, struct graph_page *p,
                  struct err *err)
{
	char *copy = graph_copy_n(json, len);
	int rc;

	*err = (struct err){0};
	p->n_occ = 42;
	rc = graph_page_read(copy, len, kind, BASE, p, err);
	free(copy);
	if (rc != 0) {
		CHECK(rc == -EPROTO || rc == -EMSGSIZE || rc == -EPERM);
		CHECK_EQ(err->code, rc);
		CHECK(err->msg[0] != '\0');
		CHECK(p->occ == NULL && p->n_occ == 0 && p->removed == NULL && p->n_removed == 0);
		CHECK(p->next_path == NULL && p->delta_path == NULL);
	}
	return rc;
}

static int read_str(const char *json, enum graph_page_kind kind, struct graph_page *p,
                    struct err *err)
{
	return read_n(json, strlen(json), kind, p, err);
}

/* Reads a fixture that must parse. */
static int read_fixture(const char *name, enum graph_page_kind kind, struct graph_page *p)
{
	struct err err;
	size_t len;
	char *json = graph_fixture(name, &len);
	int rc;

	if (json == NULL)
		return -ENOENT;
	rc = read_n(json, len, kind, p, &err);
	if (rc != 0)
		fprintf(stderr, "%s: %s\n", name, err.msg);
	CHECK_EQ(rc, 0);
	free(json);
	return rc;
}

/* A page of one event: the members of ev between braces. */
static int read_one(const char *ev, enum graph_page_kind kind, struct graph_page *p,
                    struct err *err)
{
	char json[4096];

	snprintf(json, sizeof(json), "{\"value\":[{%s}]}", ev);
	return read_str(json, kind, p, err);
}

#define WHEN                                                                             \
	"\"start\":{\"dateTime\":\"2026-12-07T09:00:00.0000000\",\"timeZone\":\"UTC\"}," \
	"\"end\":{\"dateTime\":\"2026-12-07T10:00:00.0000000\",\"timeZone\":\"UTC\"}"

static const struct cal_occurrence *find(const struct cal_occurrence *occ, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(occ[i].item_id, id) == 0)
			return &occ[i];
	}
	return NULL;
}

TEST(calendar_view_fixture)
{
	struct graph_page p;
	const struct cal_occurrence *o;

	if (read_fixture("calendarview-page.json", GRAPH_PAGE_VIEW, &p) != 0)
		return;
	CHECK_EQ(p.n_occ, 6);
	CHECK_EQ(p.n_skipped, 1); /* the series master */
	CHECK_EQ(p.n_removed, 0);
	CHECK(p.delta_path == NULL);
	CHECK_STREQ(
		p.next_path,
		"/users/48d31887-5fad-4d73-a9f5-3c356e68a038/calendarView?startDateTime=2019-04-"
		"01T00%3A00%3A00Z&endDateTime=2019-04-30T00%3A00%3A00Z&%24select=id%2CchangeKey%2C"
		"iCalUId%2Csubject%2Clocation%2Corganizer%2Ccategories%2Cstart%2Cend%2CisAllDay%2C"
		"isCancelled%2Csensitivity%2CshowAs%2Ctype&%24top=8&%24skip=8");
	CHECK(find(p.occ, p.n_occ, "AAMkAGUzYRgWAAA=") == NULL);

	o = &p.occ[0];
	CHECK_STREQ(o->item_id,
	            "AAMkAGVmMDEzMTM4LTZmYWUtNDdkNC1hMDZiLTU1OGY5OTZhYmY4OABGAAAAAAAiQ8W967"
	            "B7TKBjgx9rVEURBwAiIsqMbYjsT5e-T7KzowPTAAAAAAENAAAiIsqMbYjsT5e-T7Kzo"
	            "wPTAAAa_WKzAAA=");
	CHECK_STREQ(o->change_key, "IiLKjG2I7E+Xv0+ys6MD0wAEd5/kNQ==");
	CHECK_STREQ(o->uid,
	            "040000008200E00074C5B7101A82E00800000000D3D70B8A6A17D701000000000000000010"
	            "00000074665914A06C3F49BB4B7D7EEE4304DA");
	CHECK_STREQ(o->subject, "New Product Regulations Touchpoint");
	CHECK_STREQ(o->location, "Conf Room Rainier");
	CHECK_STREQ(o->organizer, "engineering@M365x214355.onmicrosoft.com");
	CHECK_EQ(o->n_categories, 0);
	CHECK(o->categories == NULL);
	CHECK_EQ(o->start_utc, utc("2019-04-03T17:00:00Z"));
	CHECK_EQ(o->end_utc, utc("2019-04-03T17:30:00Z"));
	CHECK(!o->all_day && !o->is_cancelled && !o->is_private);
	CHECK_EQ(o->free_busy, CAL_FB_BUSY);
	CHECK_EQ(o->type, CAL_ITEM_SINGLE);

	o = &p.occ[1];
	CHECK_STREQ(o->item_id, "AAMkAGUzYAgI1ru1JMcAAEYAAAAAlNFb2CNPe0ucP9you");
	CHECK_EQ(o->type, CAL_ITEM_OCCURRENCE);
	CHECK_EQ(o->free_busy, CAL_FB_TENTATIVE);
	CHECK(o->is_private);
	CHECK(o->location == NULL); /* "" */
	CHECK_EQ(o->n_categories, 2);
	CHECK_STREQ(o->categories[0], "Blue category");
	CHECK_STREQ(o->categories[1], "Red category");

	o = &p.occ[2];
	CHECK_EQ(o->type, CAL_ITEM_EXCEPTION);
	CHECK_EQ(o->free_busy, CAL_FB_OOF);
	CHECK_STREQ(o->location, "Microsoft Teams Meeting");
	CHECK_EQ(o->start_utc, utc("2019-04-16T20:30:00Z"));

	o = &p.occ[3];
	CHECK_STREQ(o->item_id, "AAMkADAGu0AABIGYDZAAA=");
	CHECK(o->all_day);
	CHECK(o->is_private); /* confidential */
	CHECK_EQ(o->free_busy, CAL_FB_WORKING_ELSEWHERE);
	CHECK(o->location == NULL);   /* null */
	CHECK_EQ(o->n_categories, 1); /* the null one is dropped */
	CHECK_STREQ(o->categories[0], "Holiday");
	CHECK_EQ(o->end_utc - o->start_utc, 86400);

	o = &p.occ[4];
	CHECK(o->is_cancelled);
	CHECK(!o->is_private); /* personal */
	CHECK_EQ(o->free_busy, CAL_FB_FREE);

	o = &p.occ[5];
	CHECK_EQ(o->free_busy, CAL_FB_UNKNOWN);
	graph_page_clear(&p);
	CHECK(p.occ == NULL && p.n_occ == 0);
	graph_page_clear(NULL);
}

TEST(delta_round_and_next_round)
{
	static const char *const pages[] = {"delta-1.json", "delta-2.json", "delta-3.json"};
	static const char *const next[] = {
		"/me/calendarView/delta?$skiptoken=R0usmcCM996atia_s",
		"/me/calendarView/delta?$skiptoken=R0usmci39OQxqJrxK4",
		NULL,
	};
	struct cal_occurrence *win = NULL;
	size_t n = 0;
	struct graph_page p;
	struct err err = {0};

	for (size_t i = 0; i < 3; i++) {
		if (read_fixture(pages[i], GRAPH_PAGE_DELTA, &p) != 0)
			return;
		CHECK_STREQ(p.next_path, next[i]);
		CHECK_EQ(graph_delta_apply(&win, &n, &p, GRAPH_MAX_OCCURRENCES, &err), 0);
		CHECK(p.occ == NULL && p.n_occ == 0);
		if (i == 2)
			CHECK_STREQ(p.delta_path,
			            "/me/calendarView/delta?$deltatoken=R0usmcMDNGg0J1E");
		else
			CHECK(p.delta_path == NULL);
		graph_page_clear(&p);
	}
	CHECK_EQ(n, 5);
	CHECK_STREQ(win[0].subject, "Plan shopping list");
	CHECK_STREQ(win[4].subject, "Rest!");
	CHECK_STREQ(win[4].location, "Home");
	CHECK_STREQ(win[4].organizer, "samanthab@contoso.onmicrosoft.com");
	/* Absent in the docs' shortened events: the defaults. */
	CHECK_EQ(win[0].free_busy, CAL_FB_UNKNOWN);
	CHECK_EQ(win[0].type, CAL_ITEM_SINGLE);
	CHECK(win[0].change_key == NULL && win[0].uid == NULL && !win[0].is_private);

	if (read_fixture("delta-next.json", GRAPH_PAGE_DELTA, &p) == 0) {
		CHECK_EQ(p.n_removed, 1);
		CHECK_STREQ(p.removed[0],
		            "AAMkADk0MGFkODE3LWE4MmYtNDRhOS04OGQLkRkXbBznTvAADb6ytyAAA=");
		CHECK_EQ(p.n_occ, 1);
		CHECK_STREQ(p.delta_path, "/me/calendarView/delta?$deltatoken=R0usmcFuQtZdtpk4");
		/* The removal names an event the window does not hold: a no-op. */
		CHECK_EQ(graph_delta_apply(&win, &n, &p, GRAPH_MAX_OCCURRENCES, &err), 0);
		CHECK(p.removed == NULL && p.n_removed == 0);
		graph_page_clear(&p);
		CHECK_EQ(n, 6);
		CHECK_STREQ(win[5].subject, "Attend service");
		CHECK_STREQ(win[5].location, "Chapel of Saint Ignatius");
		CHECK_EQ(win[5].start_utc, utc("2016-12-25T06:00:00Z"));
	}
	cal_occurrences_free(win, n);
}

/* Every proper prefix of a fixture fails cleanly; with its trailing whitespace cut, it reads. */
static size_t check_truncations(const char *name, enum graph_page_kind kind)
{
	size_t len;
	char *json = graph_fixture(name, &len);
	size_t end, parsed = 0;

	if (json == NULL)
		return 0;
	end = graph_doc_end(json, len);
	for (size_t i = 0; i <= len; i++) {
		struct graph_page p;
		struct err err;
		int rc = read_n(json, i, kind, &p, &err);

		if (rc == 0) {
			parsed++;
			graph_page_clear(&p);
		}
		if (i < end && rc == 0)
			fprintf(stderr, "%s: a prefix of %zu bytes parsed\n", name, i);
	}
	CHECK_EQ(parsed, len - end + 1);
	free(json);
	return len;
}

TEST(truncations)
{
	size_t bytes = 0;

	bytes += check_truncations("calendarview-page.json", GRAPH_PAGE_VIEW);
	bytes += check_truncations("delta-1.json", GRAPH_PAGE_DELTA);
	bytes += check_truncations("delta-2.json", GRAPH_PAGE_DELTA);
	bytes += check_truncations("delta-3.json", GRAPH_PAGE_DELTA);
	bytes += check_truncations("delta-next.json", GRAPH_PAGE_DELTA);
	/* Count what the loops covered, so that a missing fixture cannot pass quietly. */
	CHECK(bytes > 10000);
}

TEST(time_zones)
{
	static const char *const utc_zones[] = {"UTC", "Etc/UTC", "Coordinated Universal Time"};
	struct graph_page p;
	struct err err;
	char ev[512];

	for (size_t i = 0; i < 3; i++) {
		snprintf(ev, sizeof(ev),
		         "\"id\":\"a\",\"start\":{\"dateTime\":\"2026-12-07T09:00:00.1234567\","
		         "\"timeZone\":\"%s\"},\"end\":{\"dateTime\":\"2026-12-07T10:00:00Z\","
		         "\"timeZone\":\"UTC\"}",
		         utc_zones[i]);
		CHECK_EQ(read_one(ev, GRAPH_PAGE_VIEW, &p, &err), 0);
		CHECK_EQ(p.n_occ, 1);
		CHECK_EQ(p.n_occ == 1 ? p.occ[0].start_utc : 0, utc("2026-12-07T09:00:00Z"));
		graph_page_clear(&p);
	}
	CHECK_EQ(
		read_one("\"id\":\"AAMk1\",\"start\":{\"dateTime\":\"2026-12-07T09:00:00.0000000\","
	                 "\"timeZone\":\"Pacific Standard Time\"},\"end\":{\"dateTime\":\"2026-12-"
	                 "07T10:00:00.0000000\",\"timeZone\":\"Pacific Standard Time\"}",
	                 GRAPH_PAGE_VIEW, &p, &err),
		-EPROTO);
	CHECK(strstr(err.msg, "value[0] (id 'AAMk1')") != NULL);
	CHECK(strstr(err.msg, "'Pacific Standard Time' is not UTC") != NULL);
	CHECK(strstr(err.msg, "start") != NULL);
	CHECK_EQ(read_one("\"id\":\"a\",\"start\":{\"dateTime\":\"2026-12-07T09:00:00+02:00\","
	                  "\"timeZone\":\"UTC\"},\"end\":{\"dateTime\":\"2026-12-07T10:00:00\","
	                  "\"timeZone\":\"UTC\"}",
	                  GRAPH_PAGE_VIEW, &p, &err),
	         -EPROTO);
	CHECK(strstr(err.msg, "offset") != NULL);
	CHECK_EQ(read_one("\"id\":\"a\",\"start\":{\"dateTime\":\"2026-12-07T09:00:00\"},"
	                  "\"end\":{\"dateTime\":\"2026-12-07T10:00:00\",\"timeZone\":\"UTC\"}",
	                  GRAPH_PAGE_VIEW, &p, &err),
	         -EPROTO);
	CHECK(strstr(err.msg, "'timeZone' is missing") != NULL);
	CHECK_EQ(read_one("\"id\":\"a\",\"start\":{\"dateTime\":\"2026-13-07T09:00:00\","
	                  "\"timeZone\":\"UTC\"},\"end\":{\"dateTime\":\"2026-12-07T10:00:00\","
	                  "\"timeZone\":\"UTC\"}",
	                  GRAPH_PAGE_VIEW, &p, &err),
	         -EPROTO);
	CHECK(strstr(err.msg, "dateTime") != NULL);
}

/* Graph writes all-day events as "UTC" midnights whatever their zone; calsync gives the
 * instants of the midnights in originalStartTimeZone, as EWS does. */
TEST(all_day_in_its_zone)
{
	static const struct {
		const char *zone;
		const char *day, *next;  /* the midnights Graph writes */
		const char *start, *end; /* what calsync keeps */
	} cases[] = {
		{"Eastern Standard Time", "2026-12-21", "2026-12-23", "2026-12-21T05:00:00Z",
	         "2026-12-23T05:00:00Z"},
		{"W. Europe Standard Time", "2026-07-01", "2026-07-02", "2026-06-30T22:00:00Z",
	         "2026-07-01T22:00:00Z"},
		{"Europe/Berlin", "2026-01-10", "2026-01-11", "2026-01-09T23:00:00Z",
	         "2026-01-10T23:00:00Z"},
		/* Over a change of offset: the day is 23 hours long. */
		{"W. Europe Standard Time", "2026-03-29", "2026-03-30", "2026-03-28T23:00:00Z",
	         "2026-03-29T22:00:00Z"},
		{"Tokyo Standard Time", "2026-05-05", "2026-05-06", "2026-05-04T15:00:00Z",
	         "2026-05-05T15:00:00Z"},
		/* UTC, and a zone nobody knows: the midnights as written. */
		{"UTC", "2026-12-24", "2026-12-25", "2026-12-24T00:00:00Z", "2026-12-25T00:00:00Z"},
		{"Mars Standard Time", "2026-12-24", "2026-12-25", "2026-12-24T00:00:00Z",
	         "2026-12-25T00:00:00Z"},
	};
	struct graph_page p;
	struct err err;
	char ev[768];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(ev, sizeof(ev),
		         "\"id\":\"d\",\"isAllDay\":true,\"originalStartTimeZone\":\"%s\","
		         "\"start\":{\"dateTime\":\"%sT00:00:00.0000000\",\"timeZone\":\"UTC\"},"
		         "\"end\":{\"dateTime\":\"%sT00:00:00.0000000\",\"timeZone\":\"UTC\"}",
		         cases[i].zone, cases[i].day, cases[i].next);
		CHECK_EQ(read_one(ev, GRAPH_PAGE_VIEW, &p, &err), 0);
		CHECK_EQ(p.n_occ, 1);
		if (p.n_occ == 1) {
			if (p.occ[0].start_utc != utc(cases[i].start) ||
			    p.occ[0].end_utc != utc(cases[i].end))
				harness_fail(__FILE__, __LINE__, "%s %s: %lld..%lld", cases[i].zone,
				             cases[i].day, (long long)p.occ[0].start_utc,
				             (long long)p.occ[0].end_utc);
			CHECK(p.occ[0].all_day);
		}
		graph_page_clear(&p);
	}
	/* An event that is not all-day is never moved by its original zone. */
	CHECK_EQ(read_one("\"id\":\"t\",\"originalStartTimeZone\":\"Tokyo Standard Time\","
	                  "\"start\":{\"dateTime\":\"2026-12-07T09:00:00\",\"timeZone\":\"UTC\"},"
	                  "\"end\":{\"dateTime\":\"2026-12-07T10:00:00\",\"timeZone\":\"UTC\"}",
	                  GRAPH_PAGE_VIEW, &p, &err),
	         0);
	CHECK_EQ(p.n_occ == 1 ? p.occ[0].start_utc : 0, utc("2026-12-07T09:00:00Z"));
	graph_page_clear(&p);
}

/* An occurrence's iCalUId carries its date; the series' UID (EWS's) has it zeroed. */
TEST(series_uid_of_an_occurrence)
{
	struct graph_page p;
	struct err err;

	CHECK_EQ(read_one("\"id\":\"o\",\"type\":\"occurrence\",\"iCalUId\":\"040000008200E00074C5"
	                  "B7101A82E00807EA0C0B00000000000000000000000000000000100000008E31F362\","
	                  "\"start\":{\"dateTime\":\"2026-12-07T09:00:00\",\"timeZone\":\"UTC\"},"
	                  "\"end\":{\"dateTime\":\"2026-12-07T10:00:00\",\"timeZone\":\"UTC\"}",
	                  GRAPH_PAGE_VIEW, &p, &err),
	         0);
	CHECK_STREQ(p.n_occ == 1 ? p.occ[0].uid : "",
	            "040000008200E00074C5B7101A82E0080000000000000000000000000000"
	            "000000000000100000008E31F362");
	graph_page_clear(&p);
	/* Not a GlobalObjectId (an event made elsewhere): kept. */
	CHECK_EQ(read_one("\"id\":\"o\",\"iCalUId\":\"abc@example.org\","
	                  "\"start\":{\"dateTime\":\"2026-12-07T09:00:00\",\"timeZone\":\"UTC\"},"
	                  "\"end\":{\"dateTime\":\"2026-12-07T10:00:00\",\"timeZone\":\"UTC\"}",
	                  GRAPH_PAGE_VIEW, &p, &err),
	         0);
	CHECK_STREQ(p.n_occ == 1 ? p.occ[0].uid : "", "abc@example.org");
	graph_page_clear(&p);
}

TEST(wrong_types)
{
	static const struct {
		const char *ev;
		const char *says;
	} cases[] = {
		{"\"id\":7", "'id' is a number, not a string"},
		{"\"id\":\"\"", "'id' is empty"},
		{"\"subject\":\"x\"", "'id' is missing"},
		{"\"id\":\"e1\",\"subject\":12," WHEN, "value[0] (id 'e1'): 'subject' is a number"},
		{"\"id\":\"e1\",\"isAllDay\":\"true\"," WHEN,
	         "'isAllDay' is a string, not true or false"},
		{"\"id\":\"e1\",\"isCancelled\":1," WHEN, "'isCancelled' is a number"},
		{"\"id\":\"e1\",\"categories\":\"Red\"," WHEN,
	         "'categories' is a string, not an array"},
		{"\"id\":\"e1\",\"categories\":[\"a\",3]," WHEN, "'categories'[1] is a number"},
		{"\"id\":\"e1\",\"location\":\"Room\"," WHEN,
	         "'location' is a string, not an object"},
		{"\"id\":\"e1\",\"location\":{\"displayName\":[]}," WHEN,
	         "e1'): location: 'displayName' is an array"},
		{"\"id\":\"e1\",\"organizer\":{\"emailAddress\":{\"address\":false}}," WHEN,
	         "organizer.emailAddress: 'address' is false"},
		{"\"id\":\"e1\",\"organizer\":{\"emailAddress\":\"a@b\"}," WHEN,
	         "organizer: 'emailAddress' is a string"},
		{"\"id\":\"e1\",\"start\":\"2026-12-07T09:00:00\"",
	         "'start' is a string, not an object"},
		{"\"id\":\"e1\",\"type\":3," WHEN, "'type' is a number"},
		{"\"id\":\"e1\",\"showAs\":{}," WHEN, "'showAs' is an object"},
		{"\"id\":\"e1\",\"sensitivity\":true," WHEN, "'sensitivity' is true"},
		/* Checked even where the entry would be skipped. */
		{"\"id\":\"e1\",\"type\":\"seriesMaster\",\"subject\":1," WHEN,
	         "'subject' is a number"},
		{"\"id\":\"e1\",\"subject\":1", "'subject' is a number"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct graph_page p;
		struct err err;

		CHECK_EQ(read_one(cases[i].ev, GRAPH_PAGE_VIEW, &p, &err), -EPROTO);
		if (strstr(err.msg, cases[i].says) == NULL)
			fprintf(stderr, "case %zu: '%s' does not say '%s'\n", i, err.msg,
			        cases[i].says);
		CHECK(strstr(err.msg, cases[i].says) != NULL);
		CHECK(strncmp(err.msg, "calendarView page: value[0]", 27) == 0);
	}
}

#define BOTH_LINKS                                                                  \
	"{\"value\":[],\"@odata.nextLink\":\"https://graph.microsoft.com/v1.0/a\"," \
	"\"@odata.deltaLink\":\"https://graph.microsoft.com/v1.0/b\"}"

TEST(documents_that_are_no_page)
{
	static const char *const bad[] = {
		"[]",
		"{}",
		"{\"value\":{}}",
		"{\"value\":[1]}",
		"{\"value\":[null]}",
		"{\"value\":[],\"value\":[]}",
		"{\"value\":[]} x",
		"{\"value\":[{\"id\":\"a\\u0000b\"}]}",
		"{\"value\":[{\"id\":\"\xff\"}]}",
		"{\"value\":[],\"@odata.nextLink\":3}",
		"",
		BOTH_LINKS,
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct graph_page p;
		struct err err;

		CHECK_EQ(read_str(bad[i], GRAPH_PAGE_DELTA, &p, &err), -EPROTO);
	}
}

TEST(links_must_stay)
{
	struct graph_page p;
	struct err err;

	CHECK_EQ(read_str("{\"value\":[],\"@odata.nextLink\":\"https://evil.example/v1.0/me/"
	                  "calendarView/delta?$skiptoken=x\"}",
	                  GRAPH_PAGE_DELTA, &p, &err),
	         -EPERM);
	CHECK(strstr(err.msg, "evil.example") != NULL);
	CHECK_EQ(
		read_str(
			"{\"value\":[],\"@odata.deltaLink\":\"http://graph.microsoft.com/v1.0/x\"}",
			GRAPH_PAGE_DELTA, &p, &err),
		-EPERM);
	CHECK_EQ(read_str("{\"value\":[],\"@odata.deltaLink\":\"/v1.0/x\"}", GRAPH_PAGE_DELTA, &p,
	                  &err),
	         -EPROTO);
	CHECK_EQ(read_str("{\"value\":[],\"@odata.deltaLink\":null}", GRAPH_PAGE_DELTA, &p, &err),
	         0);
	CHECK(p.delta_path == NULL);
	graph_page_clear(&p);
}

TEST(skips)
{
	struct graph_page p;
	struct err err;

	CHECK_EQ(
		read_one("\"id\":\"m\",\"type\":\"seriesMaster\"," WHEN, GRAPH_PAGE_VIEW, &p, &err),
		0);
	CHECK_EQ(p.n_occ, 0);
	CHECK_EQ(p.n_skipped, 1);
	graph_page_clear(&p);
	CHECK_EQ(read_one("\"id\":\"a\",\"end\":{\"dateTime\":\"2026-12-07T10:00:00\","
	                  "\"timeZone\":\"UTC\"}",
	                  GRAPH_PAGE_VIEW, &p, &err),
	         0);
	CHECK_EQ(p.n_skipped, 1);
	graph_page_clear(&p);
	CHECK_EQ(read_one("\"id\":\"a\",\"start\":null,\"end\":null", GRAPH_PAGE_VIEW, &p, &err),
	         0);
	CHECK_EQ(p.n_skipped, 1);
	graph_page_clear(&p);
	/* End before start is skipped; end equal to start is kept (as in the EWS conversion). */
	CHECK_EQ(read_one("\"id\":\"a\",\"start\":{\"dateTime\":\"2026-12-07T10:00:00\","
	                  "\"timeZone\":\"UTC\"},\"end\":{\"dateTime\":\"2026-12-07T09:00:00\","
	                  "\"timeZone\":\"UTC\"}",
	                  GRAPH_PAGE_VIEW, &p, &err),
	         0);
	CHECK_EQ(p.n_skipped, 1);
	graph_page_clear(&p);
	CHECK_EQ(read_one("\"id\":\"a\",\"start\":{\"dateTime\":\"2026-12-07T10:00:00\","
	                  "\"timeZone\":\"UTC\"},\"end\":{\"dateTime\":\"2026-12-07T10:00:00\","
	                  "\"timeZone\":\"UTC\"}",
	                  GRAPH_PAGE_VIEW, &p, &err),
	         0);
	CHECK_EQ(p.n_occ, 1);
	CHECK_EQ(p.n_skipped, 0);
	graph_page_clear(&p);
}

TEST(unknown_values)
{
	struct graph_page p;
	struct err err;

	CHECK_EQ(read_one("\"id\":\"a\",\"showAs\":\"elsewhere\",\"type\":\"unknownFutureValue\","
	                  "\"sensitivity\":\"secret\",\"futureProperty\":{\"x\":[1,2]}," WHEN,
	                  GRAPH_PAGE_VIEW, &p, &err),
	         0);
	CHECK_EQ(p.n_occ, 1);
	if (p.n_occ == 1) {
		CHECK_EQ(p.occ[0].free_busy, CAL_FB_UNKNOWN);
		CHECK_EQ(p.occ[0].type, CAL_ITEM_SINGLE);
		CHECK(p.occ[0].is_private);
		CHECK(p.occ[0].subject == NULL);
	}
	graph_page_clear(&p);
	/* Null is absent: not private, no organizer. */
	CHECK_EQ(read_one("\"id\":\"a\",\"sensitivity\":null,\"organizer\":{\"emailAddress\":"
	                  "{\"address\":\"\"}},\"subject\":\"\"," WHEN,
	                  GRAPH_PAGE_VIEW, &p, &err),
	         0);
	if (p.n_occ == 1) {
		CHECK(!p.occ[0].is_private);
		CHECK(p.occ[0].organizer == NULL);
		CHECK_STREQ(p.occ[0].subject, "");
	}
	graph_page_clear(&p);
}

/* The page of entries "id:kind" (kind 'u' upsert with subject kind+index, 'r' removed). */
static int read_entries(const char *spec, enum graph_page_kind kind, struct graph_page *p,
                        struct err *err)
{
	char json[8192];
	size_t n = (size_t)snprintf(json, sizeof(json), "{\"value\":[");
	size_t i = 0;

	for (const char *s = spec; *s != '\0'; s += 3, i++) {
		if (s[1] == 'u')
			n += (size_t)snprintf(json + n, sizeof(json) - n,
			                      "%s{\"id\":\"%c\",\"subject\":\"u%zu\"," WHEN "}",
			                      i > 0 ? "," : "", s[0], i);
		else
			n += (size_t)snprintf(
				json + n, sizeof(json) - n,
				"%s{\"id\":\"%c\",\"@removed\":{\"reason\":\"deleted\"}}",
				i > 0 ? "," : "", s[0]);
		if (s[2] == '\0')
			s--;
	}
	snprintf(json + n, sizeof(json) - n, "]}");
	return read_str(json, kind, p, err);
}

TEST(duplicates)
{
	struct graph_page p;
	struct err err;

	/* A view: the first of an id wins. */
	CHECK_EQ(read_entries("au bu au", GRAPH_PAGE_VIEW, &p, &err), 0);
	CHECK_EQ(p.n_occ, 2);
	CHECK_EQ(p.n_skipped, 1);
	CHECK_STREQ(p.occ[0].item_id, "a");
	CHECK_STREQ(p.occ[0].subject, "u0");
	CHECK_STREQ(p.occ[1].item_id, "b");
	graph_page_clear(&p);
	/* A delta: the last wins, upsert or removal, and the page keeps its order. */
	CHECK_EQ(read_entries("au bu au", GRAPH_PAGE_DELTA, &p, &err), 0);
	CHECK_EQ(p.n_occ, 2);
	CHECK_STREQ(p.occ[0].item_id, "b");
	CHECK_STREQ(p.occ[1].item_id, "a");
	CHECK_STREQ(p.occ[1].subject, "u2");
	graph_page_clear(&p);
	CHECK_EQ(read_entries("au ar", GRAPH_PAGE_DELTA, &p, &err), 0);
	CHECK_EQ(p.n_occ, 0);
	CHECK_EQ(p.n_removed, 1);
	CHECK_EQ(p.n_skipped, 1);
	graph_page_clear(&p);
	CHECK_EQ(read_entries("ar au", GRAPH_PAGE_DELTA, &p, &err), 0);
	CHECK_EQ(p.n_occ, 1);
	CHECK_EQ(p.n_removed, 0);
	graph_page_clear(&p);
	/* A view has no removals. */
	CHECK_EQ(read_entries("au ar", GRAPH_PAGE_VIEW, &p, &err), -EPROTO);
	CHECK(strstr(err.msg, "@removed") != NULL);
	/* "@removed" of a wrong type. */
	CHECK_EQ(read_one("\"id\":\"a\",\"@removed\":\"deleted\"", GRAPH_PAGE_DELTA, &p, &err),
	         -EPROTO);
	CHECK_EQ(read_one("\"id\":\"a\",\"@removed\":{\"reason\":1}", GRAPH_PAGE_DELTA, &p, &err),
	         -EPROTO);
	CHECK_EQ(read_one("\"id\":\"a\",\"@removed\":{}", GRAPH_PAGE_DELTA, &p, &err), 0);
	CHECK_EQ(p.n_removed, 1);
	graph_page_clear(&p);
}

/* A window "a b c" of occurrences with those ids and subjects "w". */
static struct cal_occurrence *window_of(const char *ids, size_t *n)
{
	size_t len = strlen(ids);
	struct cal_occurrence *w = xcalloc(len, sizeof(*w));

	*n = 0;
	for (size_t i = 0; i < len; i += 2) {
		char id[2] = {ids[i], '\0'};

		w[*n] = (struct cal_occurrence){.item_id = xstrdup(id), .subject = xstrdup("w")};
		(*n)++;
	}
	return w;
}

static void check_ids(const struct cal_occurrence *w, size_t n, const char *want)
{
	char got[64] = "";
	size_t k = 0;

	for (size_t i = 0; i < n && k + 2 < sizeof(got); i++) {
		got[k++] = w[i].item_id[0];
		got[k++] = i + 1 < n ? ' ' : '\0';
	}
	got[k] = '\0';
	CHECK_STREQ(got, want);
}

TEST(delta_apply)
{
	struct cal_occurrence *w;
	size_t n;
	struct graph_page p;
	struct err err = {0};

	/* Replace keeps the place, new ones follow in the page's order, removals drop. */
	w = window_of("a b c d", &n);
	CHECK_EQ(read_entries("cu xu br yu", GRAPH_PAGE_DELTA, &p, &err), 0);
	CHECK_EQ(graph_delta_apply(&w, &n, &p, 100, &err), 0);
	check_ids(w, n, "a c d x y");
	CHECK_STREQ(w[1].subject, "u0");
	CHECK_STREQ(w[0].subject, "w");
	graph_page_clear(&p);
	/* Over the limit: nothing changes. */
	CHECK_EQ(read_entries("pu qu", GRAPH_PAGE_DELTA, &p, &err), 0);
	CHECK_EQ(graph_delta_apply(&w, &n, &p, 6, &err), -EMSGSIZE);
	CHECK(strstr(err.msg, "limit 6") != NULL);
	check_ids(w, n, "a c d x y");
	CHECK_EQ(p.n_occ, 2);
	CHECK_EQ(graph_delta_apply(&w, &n, &p, 7, &err), 0);
	check_ids(w, n, "a c d x y p q");
	graph_page_clear(&p);
	/* Everything removed: an empty window. */
	CHECK_EQ(read_entries("ar cr dr xr yr pr qr zr", GRAPH_PAGE_DELTA, &p, &err), 0);
	CHECK_EQ(graph_delta_apply(&w, &n, &p, 7, &err), 0);
	CHECK_EQ(n, 0);
	CHECK(w == NULL);
	graph_page_clear(&p);
	/* Onto an empty window. */
	CHECK_EQ(read_entries("bu", GRAPH_PAGE_DELTA, &p, &err), 0);
	CHECK_EQ(graph_delta_apply(&w, &n, &p, 7, &err), 0);
	check_ids(w, n, "b");
	graph_page_clear(&p);
	cal_occurrences_free(w, n);
	/* A window with a repeated id: one copy is replaced, the other dropped. */
	w = window_of("a b a", &n);
	CHECK_EQ(read_entries("au", GRAPH_PAGE_DELTA, &p, &err), 0);
	CHECK_EQ(graph_delta_apply(&w, &n, &p, 7, &err), 0);
	check_ids(w, n, "a b");
	CHECK_STREQ(w[0].subject, "u0");
	graph_page_clear(&p);
	cal_occurrences_free(w, n);
}

TEST(delta_apply_large)
{
	size_t n = GRAPH_MAX_OCCURRENCES;
	struct cal_occurrence *w = xcalloc(n, sizeof(*w));
	struct graph_page p = {0};
	struct err err = {0};
	char id[32];

	for (size_t i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "id-%08zu", (i * 7919) % n);
		w[i].item_id = xstrdup(id);
	}
	/* Half of a 1000-event page replaces, half removes. */
	p.occ = xcalloc(500, sizeof(*p.occ));
	p.removed = xcalloc(500, sizeof(*p.removed));
	for (size_t i = 0; i < 500; i++) {
		snprintf(id, sizeof(id), "id-%08zu", i);
		p.occ[p.n_occ++].item_id = xstrdup(id);
		snprintf(id, sizeof(id), "id-%08zu", 10000 + i);
		p.removed[p.n_removed++] = xstrdup(id);
	}
	CHECK_EQ(graph_delta_apply(&w, &n, &p, GRAPH_MAX_OCCURRENCES, &err), 0);
	CHECK_EQ(n, GRAPH_MAX_OCCURRENCES - 500);
	graph_page_clear(&p);
	cal_occurrences_free(w, n);
}

TEST(limits)
{
	size_t n = GRAPH_MAX_OCCURRENCES + 1;
	size_t len = 12 + n * 3;
	char *json = xmalloc(len + 1);
	size_t k = 0;
	struct graph_page p;
	struct err err;

	k += (size_t)snprintf(json, len + 1, "{\"value\":[");
	for (size_t i = 0; i < n; i++) {
		memcpy(json + k, i + 1 < n ? "{}," : "{}", i + 1 < n ? 3 : 2);
		k += i + 1 < n ? 3 : 2;
	}
	memcpy(json + k, "]}", 2);
	k += 2;
	CHECK_EQ(read_n(json, k, GRAPH_PAGE_VIEW, &p, &err), -EMSGSIZE);
	CHECK(strstr(err.msg, "limit 20000") != NULL);
	free(json);
	json = xmalloc(GRAPH_MAX_RESPONSE + 1);
	memset(json, ' ', GRAPH_MAX_RESPONSE + 1);
	memcpy(json, "{\"value\":[]}", 12);
	CHECK_EQ(read_n(json, GRAPH_MAX_RESPONSE + 1, GRAPH_PAGE_VIEW, &p, &err), -EMSGSIZE);
	CHECK_EQ(read_n(json, GRAPH_MAX_RESPONSE, GRAPH_PAGE_VIEW, &p, &err), 0);
	graph_page_clear(&p);
	free(json);
}

TEST(user)
{
	struct graph_user u = {0};
	struct err err = {0};
	size_t len;
	char *json = graph_fixture("user.json", &len);

	if (json != NULL) {
		CHECK_EQ(graph_user_read(json, len, &u, &err), 0);
		CHECK_STREQ(u.id, "87d349ed-44d7-43e1-9a83-5f2406dee5bd");
		CHECK_STREQ(u.mail, "AdeleV@contoso.com");
		CHECK_STREQ(u.upn, "AdeleV@contoso.com");
		graph_user_clear(&u);
		for (size_t i = 0; i < graph_doc_end(json, len); i++) {
			char *c = graph_copy_n(json, i);

			CHECK(graph_user_read(c, i, &u, &err) < 0);
			free(c);
		}
		free(json);
	}
	CHECK_EQ(graph_user_read("{\"id\":\"x\",\"mail\":null}", 22, &u, &err), 0);
	CHECK(u.mail == NULL && u.upn == NULL);
	graph_user_clear(&u);
	CHECK_EQ(graph_user_read("{\"mail\":\"a@b\"}", 14, &u, &err), -EPROTO);
	CHECK(strstr(err.msg, "'id' is missing") != NULL);
	CHECK_EQ(graph_user_read("{\"id\":\"x\",\"mail\":5}", 19, &u, &err), -EPROTO);
	CHECK(u.id == NULL);
	graph_user_clear(NULL);
}

int main(void)
{
	RUN(calendar_view_fixture);
	RUN(delta_round_and_next_round);
	RUN(truncations);
	RUN(time_zones);
	RUN(all_day_in_its_zone);
	RUN(series_uid_of_an_occurrence);
	RUN(wrong_types);
	RUN(documents_that_are_no_page);
	RUN(links_must_stay);
	RUN(skips);
	RUN(unknown_values);
	RUN(duplicates);
	RUN(delta_apply);
	RUN(delta_apply_large);
	RUN(limits);
	RUN(user);
	return harness_done();
}
