/* SPDX-License-Identifier: MIT */
/*
 * output.h: the JSON-lines sink of presence changes: one change's object (cal/change.h) per
 * line, to standard output or appended to a file. Each line is written with one write(2) after
 * the change was stored, so a reader never sees half a line. docs/output.md describes the fields.
 */
#pragma once

#include "base/compat.h"
#include "cal/change.h"

struct err;
struct sync_output;

/*
 * Opens the output: path NULL or "-" is standard output; anything else is opened with
 * O_APPEND | O_CREAT (mode 0640). 0 and *out, or a negative errno with err naming the path.
 */
ATTR_NODISCARD int output_open(const char *path, struct sync_output **out, struct err *err);

/*
 * Writes one line: cal_change_json()'s object, {"id":..,"time":"..Z","user":..,"state":..,
 * "profile":..,"forward":..,"subject":..,"since":"..Z"|null,"until":"..Z"|null,"reason":..},
 * keys in that order, compact, non-ASCII UTF-8 written as is, then '\n'. One write(2) per line,
 * repeated only after EINTR or a short write. 0, or a negative errno with err: -EINVAL when a
 * string is not valid UTF-8 (err names the field) and -ERANGE when a time is outside years 1 to
 * 9999 (nothing is written then), or the error of a failed write (-EPIPE when standard output's
 * reader went away and SIGPIPE is ignored, -ENOSPC, -EIO, -EAGAIN on a non-blocking descriptor).
 * The output stays usable: after a line that went out only in part, the next line starts with a
 * newline, so only the broken line is lost.
 */
ATTR_NODISCARD int output_write(struct sync_output *o, const struct cal_change *c, struct err *err);

/* Reopens a file output at the same path (after logrotate moved it; SIGHUP), creating it as
 * output_open() does. A no-op for standard output. On error (err names the path) the old file
 * stays in use. */
ATTR_NODISCARD int output_reopen(struct sync_output *o, struct err *err);

void output_close(struct sync_output *o); /* NULL-safe; never closes standard output */
