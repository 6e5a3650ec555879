/* SPDX-License-Identifier: MIT */
/* api-route.c: routing, percent-decoding, query numbers and the token check of the HTTP API. */
#include "api/api-route.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"

static const char allow_get[] = "GET, HEAD";
static const char allow_get_post[] = "GET, HEAD, POST";
static const char allow_get_delete[] = "GET, HEAD, DELETE";
static const char allow_post[] = "POST";

static bool prefix(const char *s, size_t len, const char *p, size_t *out_rest)
{
	size_t n = strlen(p);

	if (len < n || memcmp(s, p, n) != 0)
		return false;
	*out_rest = n;
	return true;
}

static bool equals(const char *s, size_t len, const char *p)
{
	return strlen(p) == len && memcmp(s, p, len) == 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int api_url_decode(const char *s, size_t len, char *out, size_t out_size, size_t *out_len,
                   struct err *err)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '%') {
			if (len - i < 3 || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
				return err_set(err, -EINVAL, "bad percent-encoding at byte %zu", i);
			c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
			if (c == '\0')
				return err_set(err, -EINVAL, "%%00 is not allowed");
		} else if (c == '\0') {
			return err_set(err, -EINVAL, "NUL byte at %zu", i);
		}
		if (o + 1 >= out_size)
			return err_set(err, -EMSGSIZE, "longer than %zu bytes",
			               out_size > 0 ? out_size - 1 : 0);
		out[o++] = c;
	}
	if (out_size == 0)
		return err_set(err, -EMSGSIZE, "no room");
	out[o] = '\0';
	*out_len = o;
	return 0;
}

int api_url_encode(const char *s, char *out, size_t out_size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		             (*p >= '0' && *p <= '9') || strchr("-._~@", *p) != NULL;

		if (o + (plain ? 1 : 3) >= out_size)
			return -EMSGSIZE;
		if (plain) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	if (out_size == 0)
		return -EMSGSIZE;
	out[o] = '\0';
	return 0;
}

int api_smtp_check(const char *smtp, struct err *err)
{
	size_t len = strlen(smtp);
	const char *at = strrchr(smtp, '@');

	if (len < 3)
		return err_set(err, -EINVAL, "not an address: too short");
	if (len > API_MAX_SMTP)
		return err_set(err, -EINVAL, "not an address: longer than %u bytes", API_MAX_SMTP);
	if (at == NULL || at == smtp || at[1] == '\0')
		return err_set(err, -EINVAL, "not an address: needs local-part@domain");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)smtp[i];

		if (c <= 0x20 || c == 0x7f || strchr("<>\"\\,;", c) != NULL)
			return err_set(err, -EINVAL, "not an address: character 0x%02x at byte %zu",
			               c, i);
	}
	return 0;
}

int api_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	int64_t v = 0;

	if (s == NULL || s[0] == '\0')
		return -EINVAL;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		if (v > (INT64_MAX - (*p - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (*p - '0');
	}
	if (v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

bool api_token_equal(const char *want, size_t want_len, const char *got, size_t got_len)
{
	/* Every byte of want is compared, whatever got is, so the time says nothing about how much
	 * of got was right; a length mismatch is folded into the same accumulator. */
	volatile unsigned char diff = got_len != want_len;

	for (size_t i = 0; i < want_len; i++) {
		unsigned char g = i < got_len ? (unsigned char)got[i] : 0;

		diff |= (unsigned char)(g ^ (unsigned char)want[i]);
	}
	return diff == 0;
}

bool api_bearer_ok(const char *want, size_t want_len, const char *authorization)
{
	const char *p;

	if (authorization == NULL || want == NULL || want_len == 0)
		return false;
	if (strncasecmp(authorization, "Bearer", 6) != 0 || authorization[6] != ' ')
		return false;
	p = authorization + 6;
	while (*p == ' ')
		p++;
	return api_token_equal(want, want_len, p, strlen(p));
}

bool api_route_changes(const struct api_route *r)
{
	return r->method == API_POST || r->method == API_DELETE;
}

static int method_of(const char *method, enum api_method *out)
{
	if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
		*out = API_GET;
	else if (strcmp(method, "POST") == 0)
		*out = API_POST;
	else if (strcmp(method, "DELETE") == 0)
		*out = API_DELETE;
	else
		return -1;
	return 0;
}

/* Whether the allow list takes m. */
static bool allows(const char *allow, int have_method, enum api_method m)
{
	if (have_method < 0)
		return false;
	switch (m) {
	case API_GET:
		return strstr(allow, "GET") != NULL;
	case API_POST:
		return strstr(allow, "POST") != NULL;
	case API_DELETE:
		return strstr(allow, "DELETE") != NULL;
	}
	return false;
}

int api_route(const char *method, const char *path, size_t len, struct api_route *out,
              struct err *err)
{
	struct api_route r = {0};
	enum api_method m = API_GET;
	int have_method = method_of(method, &m);
	size_t rest, seg_len, dec_len;
	const char *seg, *slash, *tail;
	int rc;

	if (len > API_MAX_PATH)
		return err_set(err, -ENOENT, "no such endpoint");
	if (equals(path, len, "/healthz")) {
		r.ep = API_EP_HEALTHZ;
		r.allow = allow_get;
	} else if (equals(path, len, "/readyz")) {
		r.ep = API_EP_READYZ;
		r.allow = allow_get;
	} else if (equals(path, len, "/metrics")) {
		r.ep = API_EP_METRICS;
		r.allow = allow_get;
	} else if (equals(path, len, "/v1/events")) {
		r.ep = API_EP_EVENTS;
		r.allow = allow_get;
	} else if (equals(path, len, "/v1/status")) {
		r.ep = API_EP_STATUS;
		r.allow = allow_get;
	} else if (equals(path, len, "/v1/users")) {
		r.ep = API_EP_USERS;
		r.allow = allow_get_post;
	} else if (prefix(path, len, "/v1/users/", &rest)) {
		seg = path + rest;
		slash = memchr(seg, '/', len - rest);
		seg_len = slash ? (size_t)(slash - seg) : len - rest;
		tail = slash ? slash : path + len;
		if (seg_len == 0)
			return err_set(err, -ENOENT, "no such endpoint");
		if (slash == NULL) {
			r.ep = API_EP_USER;
			r.allow = allow_get_delete;
		} else if (equals(tail, (size_t)(path + len - tail), "/presence")) {
			r.ep = API_EP_PRESENCE;
			r.allow = allow_get;
		} else if (equals(tail, (size_t)(path + len - tail), "/agenda")) {
			r.ep = API_EP_AGENDA;
			r.allow = allow_get;
		} else if (equals(tail, (size_t)(path + len - tail), "/resync")) {
			r.ep = API_EP_RESYNC;
			r.allow = allow_post;
		} else {
			return err_set(err, -ENOENT, "no such endpoint");
		}
		if (!allows(r.allow, have_method, m)) {
			out->allow = r.allow;
			return err_set(err, -EOPNOTSUPP, "method %s not allowed; allowed: %s",
			               method, r.allow);
		}
		rc = api_url_decode(seg, seg_len, r.smtp, sizeof(r.smtp), &dec_len, err);
		if (rc < 0)
			return err_set(err, rc, "user address in the path: %s",
			               err ? err->msg : "");
		for (size_t i = 0; i < dec_len; i++) {
			if ((unsigned char)r.smtp[i] < 0x20 || r.smtp[i] == 0x7f)
				return err_set(
					err, -EINVAL,
					"user address in the path: control character at byte %zu",
					i);
		}
	} else {
		return err_set(err, -ENOENT, "no such endpoint");
	}
	if (!allows(r.allow, have_method, m)) {
		out->allow = r.allow;
		return err_set(err, -EOPNOTSUPP, "method %s not allowed; allowed: %s", method,
		               r.allow);
	}
	r.method = m;
	*out = r;
	return 0;
}
