/* SPDX-License-Identifier: MIT */
/*
 * change.h: one presence change and its JSON object (docs/output.md), the one format of a
 * change wherever it leaves calsync: a JSON line of the output, a webhook body, a Server-Sent
 * Event. Pure: no I/O, no store, no clock.
 */
#pragma once

#include <stdint.h>

#include "base/compat.h"

struct err;
struct json_t;

/* One presence change. Strings are borrowed; NULL is written as JSON null. */
struct cal_change {
	int64_t id;        /* the store's event id (strictly increasing, never reused) */
	int64_t time_utc;  /* when calsync saw the change, on its clock */
	const char *user;  /* SMTP address */
	const char *state; /* "free", "tentative", "working-elsewhere", "busy", "oof" */
	const char *profile;
	const char *forward;
	const char *subject; /* "private" for private items */
	int64_t since_utc;   /* 0 (PRESENCE_SINCE_ALWAYS): written as null */
	int64_t until_utc;   /* INT64_MAX (PRESENCE_NEVER): written as null */
	const char *reason;  /* "initial", "calendar-changed", "appointment-start", ... */
};

/*
 * The change as its JSON object: {"id", "time", "user", "state", "profile", "forward",
 * "subject", "since", "until", "reason"}, keys in that order (dump it with JSON_PRESERVE_ORDER),
 * times as xs:dateTime in UTC with 'Z', since and until null at their sentinels. 0 and *out
 * (owned: json_decref() it), or -EINVAL when a string is not valid UTF-8 (err names the field),
 * -ERANGE when a time is outside years 1 to 9999 (err names it); *out is untouched on error.
 */
ATTR_NODISCARD int cal_change_json(const struct cal_change *c, struct json_t **out,
                                   struct err *err);
