/* SPDX-License-Identifier: MIT */
/*
 * err.h: the human-readable detail of a failure. Functions that can fail return 0 or a negative
 * errno and take an optional last parameter `struct err *err` (may be NULL) for the message.
 */
#pragma once

#include "base/compat.h"

/* code is the negative errno that was returned; msg is always NUL-terminated and is truncated,
 * never overflowed, when the message is longer. */
struct err {
	int code;
	char msg[256];
};

/*
 * Records code and the formatted message in err, if err is not NULL, and returns code, so that
 * `return err_set(err, -EINVAL, "...");` reports and fails in one line. The arguments may point
 * into err->msg itself, which lets a caller add context: err_set(err, rc, "mailbox '%s': %s",
 * smtp, err->msg).
 */
int err_set(struct err *err, int code, const char *fmt, ...) ATTR_PRINTF(3, 4);
