/* SPDX-License-Identifier: MIT */
/*
 * output.h: presence changes as JSON lines (one object per line, jansson), to standard output
 * or appended to a file. Each line is written with one write(2) after the change was stored,
 * so a reader never sees half a line. docs/output.md describes the fields.
 */
#pragma once

#include <stdint.h>

#include "base/compat.h"

struct err;
struct json_t;
struct store_presence_event;
struct sync_output;

/* One presence change. Strings are borrowed; NULL is written as JSON null. */
struct output_change {
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
 * The change as the JSON object of one line (docs/output.md), keys in the documented order: the
 * one builder of that object, also for webhook bodies and Server-Sent Events. 0 and *out
 * (owned: json_decref() it), or -EINVAL when a string is not UTF-8 (err names the field),
 * -ERANGE when a time is outside years 1 to 9999.
 */
ATTR_NODISCARD int output_change_json(const struct output_change *c, struct json_t **out,
                                      struct err *err);

/* The change a stored presence event records: time is its updated_utc, and a since or until
 * of 0 (stored for "none") becomes PRESENCE_SINCE_ALWAYS / PRESENCE_NEVER. Strings are
 * borrowed from ev. */
void output_change_from_event(const struct store_presence_event *ev, struct output_change *out);

/*
 * Opens the output: path NULL or "-" is standard output; anything else is opened with
 * O_APPEND | O_CREAT (mode 0640). 0 and *out, or a negative errno with err naming the path.
 */
ATTR_NODISCARD int output_open(const char *path, struct sync_output **out, struct err *err);

/*
 * Writes one line: {"id":..,"time":"..Z","user":..,"state":..,"profile":..,"forward":..,
 * "subject":..,"since":"..Z"|null,"until":"..Z"|null,"reason":..}, keys in that order, times as
 * xs:dateTime in UTC with 'Z', compact, non-ASCII UTF-8 written as is. One write(2) per line,
 * repeated only after EINTR or a short write. 0, or a negative errno with err: -EINVAL when a
 * string is not valid UTF-8 (err names the field) and -ERANGE when a time is outside years 1 to
 * 9999 (nothing is written then), or the error of a failed write (-EPIPE when standard output's
 * reader went away and SIGPIPE is ignored, -ENOSPC, -EIO, -EAGAIN on a non-blocking descriptor).
 * The output stays usable: after a line that went out only in part, the next line starts with a
 * newline, so only the broken line is lost.
 */
ATTR_NODISCARD int output_write(struct sync_output *o, const struct output_change *c,
                                struct err *err);

/* Reopens a file output at the same path (after logrotate moved it; SIGHUP), creating it as
 * output_open() does. A no-op for standard output. On error (err names the path) the old file
 * stays in use. */
ATTR_NODISCARD int output_reopen(struct sync_output *o, struct err *err);

void output_close(struct sync_output *o); /* NULL-safe; never closes standard output */
