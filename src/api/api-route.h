/* SPDX-License-Identifier: MIT */
/*
 * api-route.h: the pure request pieces of the HTTP API (docs/api.md): which endpoint a method
 * and a raw (still percent-encoded) path name, percent-decoding, query numbers and addresses, and
 * the constant-time bearer token check. No I/O, no libmicrohttpd.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"

struct err;

/* A decoded SMTP address from a path or a query: RFC 5321's 64 + 1 + 255 bytes, as the store's
 * STORE_MAX_SMTP. */
#define API_MAX_SMTP 320u

/* A raw path longer than this is not one of ours: the longest is /v1/users/{smtp}/presence with
 * every byte of the address percent-encoded. */
#define API_MAX_PATH 2048u

enum api_endpoint {
	API_EP_HEALTHZ = 0, /* /healthz */
	API_EP_READYZ,      /* /readyz */
	API_EP_METRICS,     /* /metrics */
	API_EP_USERS,       /* /v1/users */
	API_EP_USER,        /* /v1/users/{smtp} */
	API_EP_PRESENCE,    /* /v1/users/{smtp}/presence */
	API_EP_AGENDA,      /* /v1/users/{smtp}/agenda */
	API_EP_RESYNC,      /* /v1/users/{smtp}/resync */
	API_EP_EVENTS,      /* /v1/events */
	API_EP_STATUS,      /* /v1/status */
};

enum api_method {
	API_GET = 0, /* HEAD is routed as GET; libmicrohttpd drops the body */
	API_POST,
	API_DELETE,
};

struct api_route {
	enum api_endpoint ep;
	enum api_method method;
	char smtp[API_MAX_SMTP + 1]; /* decoded {smtp}, "" for endpoints without one */
	const char *allow;           /* the Allow header's value for the endpoint (static) */
};

/*
 * Routes method and the raw path (len bytes, no query, no NUL needed). 0 and *out; -ENOENT for
 * an unknown path (404); -EINVAL for a bad percent-encoding or an address with a NUL or a control
 * character (400); -EMSGSIZE for an address over API_MAX_SMTP (400); -EOPNOTSUPP for a method
 * the endpoint does not take (405: out->allow is set, nothing else is). err says which.
 */
ATTR_NODISCARD int api_route(const char *method, const char *path, size_t len,
                             struct api_route *out, struct err *err);

/* True when the route changes state (POST, DELETE): those always need the token. */
bool api_route_changes(const struct api_route *r);

/*
 * Percent-decodes len bytes of s into out (out_size bytes, NUL-terminated). '+' stays '+'.
 * 0 and *out_len; -EINVAL for '%' not followed by two hex digits or a decoded NUL; -EMSGSIZE
 * when the result does not fit.
 */
ATTR_NODISCARD int api_url_decode(const char *s, size_t len, char *out, size_t out_size,
                                  size_t *out_len, struct err *err);

/* Percent-encodes s for a path segment (everything but A-Z a-z 0-9 - . _ ~ @) into out (out_size
 * bytes, NUL-terminated). 0, or -EMSGSIZE when it does not fit. */
ATTR_NODISCARD int api_url_encode(const char *s, char *out, size_t out_size);

/*
 * A plausible SMTP address as the API accepts it: 3 to API_MAX_SMTP bytes, one '@' with text on
 * both sides, no space, control character, '<', '>', '"', '\\', ',' or ';'. The engine
 * checks further. 0 or -EINVAL with err.
 */
ATTR_NODISCARD int api_smtp_check(const char *smtp, struct err *err);

/* A decimal integer in [min, max] (no sign, no space). 0 and *out, or -EINVAL. */
ATTR_NODISCARD int api_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

/*
 * The Authorization header against the configured token: "Bearer <token>" (the scheme in any
 * case, one or more spaces) with the token compared in constant time for a given configured
 * token (the time depends on want's length only). authorization may be NULL.
 */
bool api_bearer_ok(const char *want, size_t want_len, const char *authorization);

/* Constant-time equality of got[0..got_len) and want[0..want_len); time depends on want_len. */
bool api_token_equal(const char *want, size_t want_len, const char *got, size_t got_len);
