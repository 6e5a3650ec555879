/* SPDX-License-Identifier: MIT */
/*
 * test-graph-url.c: every path builder against the exact string Graph's docs write, the
 * encoding of users, the base URL's normalisation, the Prefer header, and the link check:
 * links that stay are returned as paths byte for byte, links that leave the base (another
 * host, scheme, port or path, user info, dot segments, look-alike hosts) are refused.
 */
#include "graph/graph-url.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/iso8601.h"
#include "harness.h"

#define BASE GRAPH_DEFAULT_BASE

/* What an output parameter holds before a call that must not write it. */
static char sentinel[] = "untouched";

static int64_t utc(const char *iso)
{
	int64_t t = 0;

	if (iso8601_parse(iso, strlen(iso), &t, NULL, NULL) != 0)
		harness_fail(__FILE__, __LINE__, "bad test time '%s'", iso);
	return t;
}

/* The path of a builder that must succeed, compared with want. */
static void check_path(int rc, char **got, const char *want, const struct err *err)
{
	if (rc != 0)
		fprintf(stderr, "unexpected error: %s\n", err->msg);
	CHECK_EQ(rc, 0);
	CHECK_STREQ(*got, want);
	free(*got);
	*got = NULL;
}

TEST(base_default_and_normalised)
{
	struct err err = {0};
	char *b = NULL;

	check_path(graph_url_base(NULL, &b, &err), &b, BASE, &err);
	check_path(graph_url_base("", &b, &err), &b, BASE, &err);
	check_path(graph_url_base("https://graph.microsoft.com/v1.0/", &b, &err), &b, BASE, &err);
	check_path(graph_url_base("https://graph.microsoft.com/v1.0///", &b, &err), &b, BASE, &err);
	/* A national cloud and the simulator. */
	check_path(graph_url_base("https://graph.microsoft.us/v1.0", &b, &err), &b,
	           "https://graph.microsoft.us/v1.0", &err);
	check_path(graph_url_base("http://127.0.0.1:8089/v1.0", &b, &err), &b,
	           "http://127.0.0.1:8089/v1.0", &err);
	check_path(graph_url_base("https://graph.microsoft.com", &b, &err), &b,
	           "https://graph.microsoft.com", &err);
}

TEST(base_refused)
{
	static const char *const bad[] = {
		"graph.microsoft.com/v1.0",
		"ftp://graph.microsoft.com/v1.0",
		"https://graph.microsoft.com/v1.0?x=1",
		"https://graph.microsoft.com/v1.0#frag",
		"https://user:pass@graph.microsoft.com/v1.0",
		"https://graph.microsoft.com/v 1.0",
		"javascript:alert(1)",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct err err = {0};
		char *b = sentinel;

		CHECK_EQ(graph_url_base(bad[i], &b, &err), -EINVAL);
		CHECK(b == sentinel);
		CHECK(err.msg[0] != '\0');
	}
}

TEST(user_paths)
{
	struct err err = {0};
	char *p = NULL;

	check_path(graph_url_user_path("87d349ed-44d7-43e1-9a83-5f2406dee5bd", &p, &err), &p,
	           "/users/87d349ed-44d7-43e1-9a83-5f2406dee5bd", &err);
	check_path(graph_url_user_path("AdeleV@contoso.com", &p, &err), &p,
	           "/users/AdeleV@contoso.com", &err);
	/* Every reserved character is encoded: none can end the segment or start a query. */
	check_path(graph_url_user_path("a/b?c#d e&f=g%h", &p, &err), &p,
	           "/users/a%2Fb%3Fc%23d%20e%26f%3Dg%25h", &err);
	/* A leading '$' takes the key form, its quotes doubled. */
	check_path(graph_url_user_path("$AdeleVance@contoso.com", &p, &err), &p,
	           "/users('%24AdeleVance%40contoso.com')", &err);
	check_path(graph_url_user_path("$o'neil@contoso.com", &p, &err), &p,
	           "/users('%24o%27%27neil%40contoso.com')", &err);
	/* UTF-8 is encoded byte by byte. */
	check_path(graph_url_user_path("j\xc3\xb6rg@contoso.com", &p, &err), &p,
	           "/users/j%C3%B6rg@contoso.com", &err);
}

TEST(user_refused)
{
	char long_user[GRAPH_MAX_USER + 2];
	struct err err = {0};
	char *p = sentinel;

	memset(long_user, 'a', sizeof(long_user) - 1);
	long_user[sizeof(long_user) - 1] = '\0';
	CHECK_EQ(graph_url_user_path("", &p, &err), -EINVAL);
	CHECK_EQ(graph_url_user_path(NULL, &p, &err), -EINVAL);
	CHECK_EQ(graph_url_user_path("a\nb@contoso.com", &p, &err), -EINVAL);
	CHECK(strstr(err.msg, "control byte") != NULL);
	CHECK_EQ(graph_url_user_path("a\x7f", &p, &err), -EINVAL);
	CHECK_EQ(graph_url_user_path(long_user, &p, &err), -EINVAL);
	CHECK(strstr(err.msg, "limit") != NULL);
	long_user[GRAPH_MAX_USER] = '\0';
	CHECK_EQ(graph_url_user_path(long_user, &p, &err), 0);
	free(p);
}

TEST(user_lookup)
{
	struct err err = {0};
	char *p = NULL;

	check_path(graph_url_user("AdeleV@contoso.com", &p, &err), &p,
	           "/users/AdeleV@contoso.com?$select=id%2Cmail%2CuserPrincipalName", &err);
}

TEST(calendar_view)
{
	struct err err = {0};
	char *p = NULL;

	check_path(
		graph_url_calendar_view("AdeleV@contoso.com", utc("2026-12-07T00:00:00Z"),
	                                utc("2026-12-21T00:00:00Z"), 250, &p, &err),
		&p,
		"/users/AdeleV@contoso.com/calendarView"
		"?startDateTime=2026-12-07T00%3A00%3A00Z&endDateTime=2026-12-21T00%3A00%3A00Z"
		"&$select=id%2CchangeKey%2CiCalUId%2Csubject%2Clocation%2Corganizer%2Ccategories"
		"%2Cstart%2Cend%2CisAllDay%2CisCancelled%2Csensitivity%2CshowAs%2Ctype%2CoriginalStartTimeZone"
		"&$top=250",
		&err);
	check_path(graph_url_calendar_view("u", 0, 1, 1, &p, &err), &p,
	           "/users/u/calendarView?startDateTime=1970-01-01T00%3A00%3A00Z&endDateTime="
	           "1970-01-01T00%3A00%3A01Z&$select=id%2CchangeKey%2CiCalUId%2Csubject%2Clocation"
	           "%2Corganizer%2Ccategories%2Cstart%2Cend%2CisAllDay%2CisCancelled%2Csensitivity"
	           "%2CshowAs%2Ctype%2CoriginalStartTimeZone&$top=1",
	           &err);
}

TEST(calendar_view_refused)
{
	int64_t a = utc("2026-12-07T00:00:00Z");
	struct err err = {0};
	char *p = sentinel;

	CHECK_EQ(graph_url_calendar_view("u", a, a + 60, 0, &p, &err), -EINVAL);
	CHECK_EQ(graph_url_calendar_view("u", a, a + 60, GRAPH_MAX_PAGE + 1, &p, &err), -EINVAL);
	CHECK(strstr(err.msg, "$top") != NULL);
	CHECK_EQ(graph_url_calendar_view("u", a, a, 10, &p, &err), -EINVAL);
	CHECK_EQ(graph_url_calendar_view("u", a + 1, a, 10, &p, &err), -EINVAL);
	CHECK(strstr(err.msg, "not before") != NULL);
	CHECK_EQ(graph_url_calendar_view("u", ISO8601_MIN_UTC - 1, a, 10, &p, &err), -EINVAL);
	CHECK_EQ(graph_url_calendar_view("u", a, ISO8601_MAX_UTC + 1, 10, &p, &err), -EINVAL);
	CHECK_EQ(graph_url_calendar_view("", a, a + 1, 10, &p, &err), -EINVAL);
	CHECK(p == sentinel);
	CHECK_EQ(graph_url_calendar_view("u", a, a + 1, GRAPH_MAX_PAGE, &p, &err), 0);
	free(p);
}

TEST(calendar_delta)
{
	struct err err = {0};
	char *p = NULL;

	/* No $select and no $top: Graph v1.0 takes neither on calendarView delta. */
	check_path(graph_url_calendar_delta("AdeleV@contoso.com", utc("2016-12-01T00:00:00Z"),
	                                    utc("2016-12-30T00:00:00Z"), &p, &err),
	           &p,
	           "/users/AdeleV@contoso.com/calendarView/delta"
	           "?startDateTime=2016-12-01T00%3A00%3A00Z&endDateTime=2016-12-30T00%3A00%3A00Z",
	           &err);
	p = sentinel;
	CHECK_EQ(graph_url_calendar_delta("u", 10, 10, &p, &err), -EINVAL);
	CHECK(p == sentinel);
}

TEST(subscriptions_and_resource)
{
	struct err err = {0};
	char *p = NULL;

	check_path(graph_url_subscription(NULL, &p, &err), &p, "/subscriptions", &err);
	check_path(graph_url_subscription("7f105c7d-2dc5-4530-97cd-4e7ae6534c07", &p, &err), &p,
	           "/subscriptions/7f105c7d-2dc5-4530-97cd-4e7ae6534c07", &err);
	check_path(graph_url_subscription("a/b", &p, &err), &p, "/subscriptions/a%2Fb", &err);
	p = sentinel;
	CHECK_EQ(graph_url_subscription("", &p, &err), -EINVAL);
	CHECK_EQ(graph_url_subscription("a\rb", &p, &err), -EINVAL);
	CHECK(p == sentinel);
	check_path(graph_url_events_resource("AdeleV@contoso.com", &p, &err), &p,
	           "users/AdeleV@contoso.com/events", &err);
	check_path(graph_url_events_resource("$x@y", &p, &err), &p, "users('%24x%40y')/events",
	           &err);
	p = sentinel;
	CHECK_EQ(graph_url_events_resource("", &p, &err), -EINVAL);
	CHECK(p == sentinel);
}

TEST(join)
{
	char *u = graph_url_join(BASE, "/users/u/calendarView?x=1");

	CHECK_STREQ(u, "https://graph.microsoft.com/v1.0/users/u/calendarView?x=1");
	free(u);
	u = graph_url_join(BASE, GRAPH_BATCH_PATH);
	CHECK_STREQ(u, "https://graph.microsoft.com/v1.0/$batch");
	free(u);
}

TEST(prefer)
{
	char v[GRAPH_PREFER_SIZE];

	graph_url_prefer(0, v);
	CHECK_STREQ(v, "outlook.timezone=\"UTC\"");
	graph_url_prefer(50, v);
	CHECK_STREQ(v, "outlook.timezone=\"UTC\", odata.maxpagesize=50");
	graph_url_prefer(GRAPH_MAX_PAGE + 7, v);
	CHECK_STREQ(v, "outlook.timezone=\"UTC\", odata.maxpagesize=1000");
	graph_url_prefer(4000000000u, v);
	CHECK_STREQ(v, "outlook.timezone=\"UTC\", odata.maxpagesize=1000");
}

/* A link that must be taken, and the path it must give. */
static void link_ok(const char *base, const char *link, const char *want)
{
	struct err err = {0};
	char *p = NULL;
	int rc = graph_url_link(base, link, &p, &err);

	if (rc != 0)
		fprintf(stderr, "%s: %s\n", link, err.msg);
	CHECK_EQ(rc, 0);
	CHECK_STREQ(p, want);
	free(p);
}

static void link_refused(const char *base, const char *link, int want_rc)
{
	struct err err = {0};
	char *p = sentinel;

	CHECK_EQ(graph_url_link(base, link, &p, &err), want_rc);
	CHECK(p == sentinel);
	CHECK(err.msg[0] != '\0');
}

TEST(links_taken)
{
	/* The docs' links: the token kept byte for byte. */
	link_ok(BASE,
	        "https://graph.microsoft.com/v1.0/me/calendarView/delta?$skiptoken=R0usmcCM996atia_s",
	        "/me/calendarView/delta?$skiptoken=R0usmcCM996atia_s");
	link_ok(BASE,
	        "https://graph.microsoft.com/v1.0/users/a%40b/calendarView/delta?%24deltatoken=A-_.%2B%2F%3D",
	        "/users/a%40b/calendarView/delta?%24deltatoken=A-_.%2B%2F%3D");
	/* Host case, an explicit default port, a fragment (dropped). */
	link_ok(BASE, "https://GRAPH.Microsoft.com/v1.0/x?y=1", "/x?y=1");
	link_ok(BASE, "https://graph.microsoft.com:443/v1.0/x", "/x");
	link_ok(BASE, "https://graph.microsoft.com/v1.0/x#frag", "/x");
	/* Dot segments that stay inside. */
	link_ok(BASE, "https://graph.microsoft.com/v1.0/users/../x", "/x");
	link_ok(BASE, "https://graph.microsoft.com/v1.0", "/");
	/* An encoded dot inside a name is no dot segment. */
	link_ok(BASE, "https://graph.microsoft.com/v1.0/users/john%2esmith%40x/calendarView",
	        "/users/john%2esmith%40x/calendarView");
	link_ok(BASE, "https://graph.microsoft.com/v1.0/users/%2e%2e%2e/x", "/users/%2e%2e%2e/x");
	/* The simulator's base, on a port. */
	link_ok("http://127.0.0.1:8089/v1.0", "http://127.0.0.1:8089/v1.0/users/u/calendarView?a=b",
	        "/users/u/calendarView?a=b");
	link_ok("https://graph.microsoft.com", "https://graph.microsoft.com/v1.0/x", "/v1.0/x");
}

TEST(links_refused)
{
	char long_link[GRAPH_MAX_URL + 64];

	link_refused(BASE, "https://evil.example/v1.0/me/calendarView/delta?$skiptoken=x", -EPERM);
	link_refused(BASE, "https://graph.microsoft.com.evil.example/v1.0/x", -EPERM);
	link_refused(BASE, "http://graph.microsoft.com/v1.0/x", -EPERM);
	link_refused(BASE, "https://graph.microsoft.com:8443/v1.0/x", -EPERM);
	link_refused(BASE, "https://graph.microsoft.com/beta/x", -EPERM);
	link_refused(BASE, "https://graph.microsoft.com/v1.0evil/x", -EPERM);
	link_refused(BASE, "https://graph.microsoft.com/v1.0/../beta/x", -EPERM);
	link_refused(BASE, "https://graph.microsoft.com/v1.0/%2e%2e/beta/x", -EPERM);
	link_refused(BASE, "https://graph.microsoft.com/v1.0/.%2E/beta/x", -EPERM);
	link_refused(BASE, "https://graph.microsoft.com/v1.0/x/%2e", -EPERM);
	link_refused("http://127.0.0.1:8089/v1.0", "http://127.0.0.1:8090/v1.0/x", -EPERM);
	link_refused(BASE, "https://user:pw@graph.microsoft.com/v1.0/x", -EINVAL);
	link_refused(BASE, "https://evil.example@graph.microsoft.com/v1.0/x", -EINVAL);
	link_refused(BASE, "/v1.0/me/calendarView/delta?$skiptoken=x", -EINVAL);
	link_refused(BASE, "//evil.example/v1.0/x", -EINVAL);
	link_refused(BASE, "javascript:alert(1)", -EINVAL);
	link_refused(BASE, "ftp://graph.microsoft.com/v1.0/x", -EINVAL);
	link_refused(BASE, "https://graph.microsoft.com/v1.0/x y", -EINVAL);
	link_refused(BASE, "", -EINVAL);
	link_refused(BASE, NULL, -EINVAL);
	memset(long_link, 'a', sizeof(long_link) - 1);
	memcpy(long_link, "https://graph.microsoft.com/v1.0/", 33);
	long_link[sizeof(long_link) - 1] = '\0';
	link_refused(BASE, long_link, -EINVAL);
}

TEST(built_paths_are_links)
{
	struct err err = {0};
	char *path = NULL;
	char *url;
	char *back = NULL;

	CHECK_EQ(graph_url_calendar_view("$o'neil@contoso.com", 0, 86400, 100, &path, &err), 0);
	url = graph_url_join(BASE, path);
	CHECK_EQ(graph_url_link(BASE, url, &back, &err), 0);
	CHECK_STREQ(back, path);
	free(path);
	free(url);
	free(back);
}

int main(void)
{
	RUN(base_default_and_normalised);
	RUN(base_refused);
	RUN(user_paths);
	RUN(user_refused);
	RUN(user_lookup);
	RUN(calendar_view);
	RUN(calendar_view_refused);
	RUN(calendar_delta);
	RUN(subscriptions_and_resource);
	RUN(join);
	RUN(prefer);
	RUN(links_taken);
	RUN(links_refused);
	RUN(built_paths_are_links);
	return harness_done();
}
