/* SPDX-License-Identifier: MIT */
/*
 * graph-url.c: Graph request paths, the Prefer header of reads, and the check of the links an
 * answer hands back. Every byte that did not come from this file is percent-encoded by
 * curl_easy_escape() (which leaves only RFC 3986's unreserved characters), and every URL that
 * came from outside is parsed by libcurl's CURLU, never by hand. The OData query grammar takes
 * the encoded forms of what we write ("%2C" for the commas of $select, "%3A" in an instant).
 */
#include "graph/graph-url.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/iso8601.h"
#include "base/xalloc.h"

/* The query keys are ours and fixed, so they are written as Graph's docs write them. */
#define Q_START  "startDateTime="
#define Q_END    "&endDateTime="
#define Q_SELECT "$select="
#define Q_TOP    "&$top="

/* s percent-encoded, owned. libcurl returns NULL only when out of memory, which we treat the
 * way xmalloc does. */
static char *escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, (int)strlen(s));
	char *copy;

	if (e == NULL) {
		fputs("calsync: out of memory (curl_easy_escape)\n", stderr);
		abort();
	}
	copy = xstrdup(e);
	curl_free(e);
	return copy;
}

/* An identifier we put into a path: not empty, at most max bytes, no control byte. */
static int check_id(const char *what, const char *s, size_t max, struct err *err)
{
	size_t n;

	if (s == NULL || s[0] == '\0')
		return err_set(err, -EINVAL, "%s: empty", what);
	n = strlen(s);
	if (n > max)
		return err_set(err, -EINVAL, "%s: %zu bytes, limit %zu", what, n, max);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7F)
			return err_set(err, -EINVAL, "%s: control byte 0x%02x at offset %zu", what,
			               c, i);
	}
	return 0;
}

static int add(struct buf *b, const char *s, struct err *err)
{
	int rc = buf_append(b, s, strlen(s), err);

	if (rc < 0)
		return err_set(err, rc, "Graph URL: longer than %u bytes", GRAPH_MAX_URL);
	return 0;
}

static int add_escaped(struct buf *b, const char *s, struct err *err)
{
	char *e = escape(s);
	int rc = add(b, e, err);

	free(e);
	return rc;
}

/* A path segment: escaped as a query value is, but with '@' kept (RFC 3986 allows it in a
 * segment), since Graph's own examples and clients write /users/alice@contoso.com. */
static int add_segment(struct buf *b, const char *s, struct err *err)
{
	char *e = escape(s);
	char *w = e;
	int rc;

	for (const char *r = e; *r != '\0'; r++) {
		if (r[0] == '%' && r[1] == '4' && r[2] == '0') {
			*w++ = '@';
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	rc = add(b, e, err);
	free(e);
	return rc;
}

/* "/users/{user}" or "/users('{user}')" into b (see graph-url.h). */
static int add_user(struct buf *b, const char *user, struct err *err)
{
	int rc = check_id("Graph user", user, GRAPH_MAX_USER, err);
	struct buf lit;
	char *quoted;

	if (rc < 0)
		return rc;
	if (user[0] != '$') {
		rc = add(b, "/users/", err);
		return rc < 0 ? rc : add_segment(b, user, err);
	}
	/* The OData key form: a string literal whose quotes are doubled. */
	buf_init(&lit, 2 * GRAPH_MAX_USER);
	for (const char *p = user; *p != '\0' && rc == 0; p++)
		rc = buf_append(&lit, *p == '\'' ? "''" : p, *p == '\'' ? 2 : 1, err);
	quoted = buf_take(&lit);
	if (rc == 0)
		rc = add(b, "/users('", err);
	if (rc == 0)
		rc = add_escaped(b, quoted, err);
	if (rc == 0)
		rc = add(b, "')", err);
	free(quoted);
	return rc;
}

/* The window as "startDateTime=...&endDateTime=..." (after a '?' the caller wrote). */
static int add_window(struct buf *b, int64_t start_utc, int64_t end_utc, struct err *err)
{
	char start[ISO8601_FORMAT_SIZE];
	char end[ISO8601_FORMAT_SIZE];
	int rc;

	if (start_utc >= end_utc)
		return err_set(err, -EINVAL,
		               "Graph calendar window: start %lld is not before end %lld",
		               (long long)start_utc, (long long)end_utc);
	if (iso8601_format(start_utc, start, NULL) < 0 || iso8601_format(end_utc, end, NULL) < 0)
		return err_set(err, -EINVAL, "Graph calendar window: outside the years 1 to 9999");
	rc = add(b, Q_START, err);
	if (rc == 0)
		rc = add_escaped(b, start, err);
	if (rc == 0)
		rc = add(b, Q_END, err);
	if (rc == 0)
		rc = add_escaped(b, end, err);
	return rc;
}

/* Finishes a builder: the path into *out on success, nothing on failure. */
static int finish(struct buf *b, int rc, char **out)
{
	if (rc < 0) {
		buf_free(b);
		return rc;
	}
	*out = buf_take(b);
	return 0;
}

int graph_url_user_path(const char *user, char **out, struct err *err)
{
	struct buf b;

	buf_init(&b, GRAPH_MAX_URL);
	return finish(&b, add_user(&b, user, err), out);
}

int graph_url_user(const char *user, char **out_path, struct err *err)
{
	struct buf b;
	int rc;

	buf_init(&b, GRAPH_MAX_URL);
	rc = add_user(&b, user, err);
	if (rc == 0)
		rc = add(&b, "?" Q_SELECT, err);
	if (rc == 0)
		rc = add_escaped(&b, GRAPH_USER_SELECT, err);
	return finish(&b, rc, out_path);
}

int graph_url_calendar_view(const char *user, int64_t start_utc, int64_t end_utc, unsigned top,
                            char **out_path, struct err *err)
{
	char top_s[16];
	struct buf b;
	int rc;

	if (top < 1 || top > GRAPH_MAX_PAGE)
		return err_set(err, -EINVAL, "Graph calendarView: $top %u, must be 1 to %u", top,
		               GRAPH_MAX_PAGE);
	snprintf(top_s, sizeof(top_s), "%u", top);
	buf_init(&b, GRAPH_MAX_URL);
	rc = add_user(&b, user, err);
	if (rc == 0)
		rc = add(&b, "/calendarView?", err);
	if (rc == 0)
		rc = add_window(&b, start_utc, end_utc, err);
	if (rc == 0)
		rc = add(&b, "&" Q_SELECT, err);
	if (rc == 0)
		rc = add_escaped(&b, GRAPH_EVENT_SELECT, err);
	if (rc == 0)
		rc = add(&b, Q_TOP, err);
	if (rc == 0)
		rc = add(&b, top_s, err);
	return finish(&b, rc, out_path);
}

int graph_url_calendar_delta(const char *user, int64_t start_utc, int64_t end_utc, char **out_path,
                             struct err *err)
{
	struct buf b;
	int rc;

	buf_init(&b, GRAPH_MAX_URL);
	rc = add_user(&b, user, err);
	if (rc == 0)
		rc = add(&b, "/calendarView/delta?", err);
	if (rc == 0)
		rc = add_window(&b, start_utc, end_utc, err);
	return finish(&b, rc, out_path);
}

int graph_url_subscription(const char *sub_id, char **out_path, struct err *err)
{
	struct buf b;
	int rc;

	buf_init(&b, GRAPH_MAX_URL);
	rc = add(&b, "/subscriptions", err);
	if (rc == 0 && sub_id != NULL) {
		rc = check_id("Graph subscription id", sub_id, GRAPH_MAX_USER, err);
		if (rc == 0)
			rc = add(&b, "/", err);
		if (rc == 0)
			rc = add_escaped(&b, sub_id, err);
	}
	return finish(&b, rc, out_path);
}

int graph_url_events_resource(const char *user, char **out, struct err *err)
{
	struct buf b;
	int rc;

	buf_init(&b, GRAPH_MAX_URL);
	rc = add_user(&b, user, err);
	if (rc == 0)
		rc = add(&b, "/events", err);
	if (rc < 0) {
		buf_free(&b);
		return rc;
	}
	/* The resource is written without the leading slash. */
	{
		char *path = buf_take(&b);

		*out = xstrdup(path + 1);
		free(path);
	}
	return 0;
}

char *graph_url_join(const char *base, const char *path)
{
	size_t nb = strlen(base);
	size_t np = strlen(path);
	char *url = xmalloc(nb + np + 1);

	memcpy(url, base, nb);
	memcpy(url + nb, path, np + 1);
	return url;
}

void graph_url_prefer(unsigned max_page, char out[GRAPH_PREFER_SIZE])
{
	if (max_page > GRAPH_MAX_PAGE)
		max_page = GRAPH_MAX_PAGE;
	if (max_page == 0)
		snprintf(out, GRAPH_PREFER_SIZE, "outlook.timezone=\"UTC\"");
	else
		snprintf(out, GRAPH_PREFER_SIZE, "outlook.timezone=\"UTC\", odata.maxpagesize=%u",
		         max_page);
}

/* ---- URLs from outside: the configured base, and links in answers ------------------------ */

/* The parts of a URL that are compared, as libcurl's parser gives them (each curl_free'd). */
struct parts {
	char *scheme;
	char *host;
	char *port; /* the scheme's default when the URL names none */
	char *path; /* dot segments resolved */
	char *query;
	char *url; /* the whole URL, normalised */
	bool has_user;
	bool has_fragment;
};

static void parts_free(struct parts *p)
{
	curl_free(p->scheme);
	curl_free(p->host);
	curl_free(p->port);
	curl_free(p->path);
	curl_free(p->query);
	curl_free(p->url);
	*p = (struct parts){0};
}

/* The part, or NULL when the URL has none (or, for the port, when the scheme has no default). */
static char *get(CURLU *u, CURLUPart what, unsigned flags)
{
	char *s = NULL;

	if (curl_url_get(u, what, &s, flags) != CURLUE_OK)
		return NULL;
	return s;
}

static int parse(const char *what, const char *url, struct parts *p, struct err *err)
{
	CURLU *u = curl_url();
	CURLUcode uc;
	char *user;
	char *fragment;

	if (u == NULL) {
		fputs("calsync: out of memory (curl_url)\n", stderr);
		abort();
	}
	uc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (uc != CURLUE_OK) {
		curl_url_cleanup(u);
		return err_set(err, -EINVAL, "%s: not a URL (%s)", what, curl_url_strerror(uc));
	}
	*p = (struct parts){
		.scheme = get(u, CURLUPART_SCHEME, 0),
		.host = get(u, CURLUPART_HOST, 0),
		.port = get(u, CURLUPART_PORT, CURLU_DEFAULT_PORT),
		.path = get(u, CURLUPART_PATH, 0),
		.query = get(u, CURLUPART_QUERY, 0),
		.url = get(u, CURLUPART_URL, 0),
	};
	user = get(u, CURLUPART_USER, 0);
	fragment = get(u, CURLUPART_FRAGMENT, 0);
	p->has_user = user != NULL;
	p->has_fragment = fragment != NULL;
	curl_free(user);
	curl_free(fragment);
	curl_url_cleanup(u);
	if (p->scheme == NULL || p->host == NULL || p->host[0] == '\0' || p->path == NULL ||
	    p->url == NULL || p->port == NULL ||
	    (strcmp(p->scheme, "https") != 0 && strcmp(p->scheme, "http") != 0)) {
		parts_free(p);
		return err_set(err, -EINVAL, "%s: not an http or https URL with a host", what);
	}
	if (p->has_user) {
		parts_free(p);
		return err_set(err, -EINVAL, "%s: a URL with user info", what);
	}
	return 0;
}

/* The length of s without its trailing slashes. */
static size_t trim_slashes(const char *s)
{
	size_t n = strlen(s);

	while (n > 0 && s[n - 1] == '/')
		n--;
	return n;
}

int graph_url_base(const char *base, char **out, struct err *err)
{
	struct parts p;
	int rc;

	if (base == NULL || base[0] == '\0')
		base = GRAPH_DEFAULT_BASE;
	if (strlen(base) > GRAPH_MAX_URL)
		return err_set(err, -EINVAL, "Graph base URL: longer than %u bytes", GRAPH_MAX_URL);
	rc = parse("Graph base URL", base, &p, err);
	if (rc < 0)
		return rc;
	if (p.query != NULL || p.has_fragment) {
		parts_free(&p);
		return err_set(err, -EINVAL, "Graph base URL: has a query or fragment");
	}
	*out = xmemdup(p.url, trim_slashes(p.url));
	parts_free(&p);
	return 0;
}

/* Whether a segment of path is a dot segment written encoded ("%2e", ".%2E", "%2e%2e"): dot
 * segments are resolved before the path is compared, but an encoded one could be resolved by
 * the server after the check. An encoded dot inside a name ("john%2esmith") is harmless. */
static bool has_encoded_dot_segment(const char *path)
{
	const char *seg = path;

	while (*seg != '\0') {
		size_t len = strcspn(seg, "/");
		size_t dots = 0;
		bool encoded = false;
		bool only_dots = len > 0;

		for (size_t i = 0; i < len && only_dots;) {
			if (seg[i] == '.') {
				dots++;
				i++;
			} else if (len - i >= 3 && seg[i] == '%' && seg[i + 1] == '2' &&
			           (seg[i + 2] == 'e' || seg[i + 2] == 'E')) {
				dots++;
				encoded = true;
				i += 3;
			} else {
				only_dots = false;
			}
		}
		if (only_dots && encoded && dots <= 2)
			return true;
		seg += len;
		if (*seg == '/')
			seg++;
	}
	return false;
}

/* Whether the link's origin is base's: the same scheme, host and port. */
static int same_origin(const struct parts *b, const struct parts *l, struct err *err)
{
	if (strcmp(b->scheme, l->scheme) != 0 || strcasecmp(b->host, l->host) != 0 ||
	    strcmp(b->port, l->port) != 0)
		return err_set(
			err, -EPERM,
			"Graph link: points at %.8s://%.100s:%.8s, not the configured %s://%s:%s",
			l->scheme, l->host, l->port, b->scheme, b->host, b->port);
	return 0;
}

int graph_url_link(const char *base, const char *link, char **out_path, struct err *err)
{
	struct parts b = {0};
	struct parts l = {0};
	size_t bp;
	const char *rest;
	struct buf out;
	int rc;

	if (link == NULL || strlen(link) > GRAPH_MAX_URL)
		return err_set(err, -EINVAL, "Graph link: missing or longer than %u bytes",
		               GRAPH_MAX_URL);
	rc = parse("Graph base URL", base, &b, err);
	if (rc < 0)
		return rc;
	rc = parse("Graph link", link, &l, err);
	if (rc == 0)
		rc = same_origin(&b, &l, err);
	bp = rc == 0 ? trim_slashes(b.path) : 0;
	if (rc == 0 &&
	    (strncmp(l.path, b.path, bp) != 0 || (l.path[bp] != '/' && l.path[bp] != '\0') ||
	     has_encoded_dot_segment(l.path)))
		rc = err_set(err, -EPERM, "Graph link: path %.100s is not under %.100s", l.path,
		             b.path);
	if (rc == 0) {
		rest = l.path[bp] == '\0' ? "/" : l.path + bp;
		buf_init(&out, GRAPH_MAX_URL);
		rc = add(&out, rest, err);
		if (rc == 0 && l.query != NULL)
			rc = add(&out, "?", err);
		if (rc == 0 && l.query != NULL)
			rc = add(&out, l.query, err);
		rc = finish(&out, rc, out_path);
	}
	parts_free(&b);
	parts_free(&l);
	return rc;
}
