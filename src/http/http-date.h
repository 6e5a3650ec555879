/* SPDX-License-Identifier: MIT */
/*
 * http-date.h: the HTTP-date of RFC 9110 5.6.7 (IMF-fixdate, and the obsolete RFC 850 and
 * asctime forms a recipient must accept) and the Retry-After header (10.2.3). Pure, libc only.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"

/* "Sun, 06 Nov 1994 08:49:37 GMT" and its NUL. */
#define HTTP_DATE_SIZE 30u

/* Longest Retry-After we honour: a day. A later date or a larger number is cut to this. */
#define HTTP_MAX_RETRY_AFTER_MS INT64_C(86400000)

/*
 * len bytes of s (no NUL needed) as an HTTP-date: 0 and *out_utc (UTC seconds since the
 * epoch), or -EINVAL for anything else (a wrong day or month name, a field out of range, a day
 * the month does not have, a zone other than GMT, trailing bytes). A two-digit RFC 850 year
 * is read as the nearest year that is not more than 50 years ahead of now_utc (RFC 9110).
 */
ATTR_NODISCARD int http_date_parse(const char *s, size_t len, int64_t now_utc, int64_t *out_utc);

/* utc as an IMF-fixdate into out; years 0..9999 (others are clamped to that range). */
void http_date_format(int64_t utc, char out[HTTP_DATE_SIZE]);

/*
 * A Retry-After value of len bytes (surrounding blanks allowed) as milliseconds from now_ms
 * (calendar milliseconds, UTC): delta-seconds, or an HTTP-date (0 when it has passed), at most
 * HTTP_MAX_RETRY_AFTER_MS; -1 when it is neither.
 */
int64_t http_retry_after_ms(const char *v, size_t len, int64_t now_ms);
