/* SPDX-License-Identifier: MIT */
/*
 * iso8601.h: xs:dateTime as EWS writes it, to and from UTC seconds since the Unix epoch. Pure:
 * no locale, no time zone database, no libc time functions.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"

struct err;

/* Bytes iso8601_format() writes: "YYYY-MM-DDTHH:MM:SSZ" and a NUL. */
#define ISO8601_FORMAT_SIZE 21

/* The instants iso8601_format() can write: 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z. */
#define ISO8601_MIN_UTC INT64_C(-62135596800)
#define ISO8601_MAX_UTC INT64_C(253402300799)

/*
 * Parses exactly len bytes of s; no NUL is needed, and any byte after the timestamp (a NUL too)
 * is an error. The accepted form is
 *
 *     YYYY-MM-DDTHH:MM:SS[.fraction][Z | +HH:MM | -HH:MM]
 *
 * with a year of exactly four digits from 0001, a real Gregorian date, hour 00-23, minute and
 * second 00-59 (no 24:00:00, no leap second), 1 to ISO8601_MAX_FRACTION_DIGITS fraction digits,
 * which are dropped, and a zone offset of at most 14:00. 'T' and 'Z' are upper case only.
 * Without a zone the time is taken as UTC and *out_no_zone is set to true.
 *
 * Returns 0 and writes *out_utc and (when not NULL) *out_no_zone, or returns -EINVAL, writes
 * nothing, and err names what is wrong and at which byte offset.
 */
ATTR_NODISCARD int iso8601_parse(const char *s, size_t len, int64_t *out_utc, bool *out_no_zone,
                                 struct err *err);

/* Writes utc as "YYYY-MM-DDTHH:MM:SSZ" with a NUL into out and returns 0, or returns -ERANGE and
 * leaves out untouched when utc is outside [ISO8601_MIN_UTC, ISO8601_MAX_UTC]. */
ATTR_NODISCARD int iso8601_format(int64_t utc, char out[ISO8601_FORMAT_SIZE], struct err *err);
