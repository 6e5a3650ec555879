/* SPDX-License-Identifier: MIT */
/*
 * log.h: log lines to stderr. Under systemd, stderr goes to journald, which reads the syslog
 * priority from a "<N>" prefix; on a terminal we write "error: ..." instead. The level and the
 * prefix mode are the only global state in calsync (STYLE.md 6). Safe to call from any thread:
 * each line is one write(2).
 */
#pragma once

#include <stdbool.h>

#include "base/compat.h"

struct err;

/* The values are the syslog priorities that journald expects in the prefix. */
enum log_level {
	LOG_LEVEL_ERR = 3,
	LOG_LEVEL_WARNING = 4,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7,
};

enum log_prefix {
	LOG_PREFIX_AUTO,   /* "<N>" when stderr is not a terminal (the default) */
	LOG_PREFIX_ALWAYS, /* always "<N>" */
	LOG_PREFIX_NEVER,  /* always "error: " style */
};

/* Messages above level are dropped; the default is LOG_LEVEL_INFO. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
bool log_enabled(enum log_level level);
void log_set_prefix(enum log_prefix mode);

/* Parses "err", "warning", "info" or "debug" (len bytes, no NUL needed). 0 or -EINVAL. */
ATTR_NODISCARD int log_level_from_name(const char *name, size_t len, enum log_level *out_level,
                                       struct err *err);

/*
 * Applies CALSYNC_LOG_LEVEL (a level name) and CALSYNC_LOG_PREFIX ("auto", "always" or "never")
 * from the environment, when set. 0, or -EINVAL naming the bad variable; then nothing changed.
 */
ATTR_NODISCARD int log_init_from_env(struct err *err);

/* Writes one line; newlines in the message become spaces, so that one message is one journal
 * entry, and a message is cut at LOG_MAX_LINE bytes. */
void log_msg(enum log_level level, const char *fmt, ...) ATTR_PRINTF(2, 3);

#define log_err(...)   log_msg(LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
