/* SPDX-License-Identifier: MIT */
/* log.c: leveled log lines on stderr, with journald priority prefixes. */
#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <unistd.h>

#include "base/cs-limits.h"
#include "base/err.h"

/* Atomic because the API thread logs too, and a reload may change the level. */
static atomic_int log_level = LOG_LEVEL_INFO;
static atomic_int log_prefix_mode = LOG_PREFIX_AUTO;

static const struct {
	const char *name;
	const char *label; /* what a terminal sees before the message */
	enum log_level level;
} log_levels[] = {
	{.name = "err", .label = "error: ", .level = LOG_LEVEL_ERR},
	{.name = "warning", .label = "warning: ", .level = LOG_LEVEL_WARNING},
	{.name = "info", .label = "", .level = LOG_LEVEL_INFO},
	{.name = "debug", .label = "debug: ", .level = LOG_LEVEL_DEBUG},
};

void log_set_level(enum log_level level)
{
	atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

bool log_enabled(enum log_level level)
{
	return (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

void log_set_prefix(enum log_prefix mode)
{
	atomic_store_explicit(&log_prefix_mode, (int)mode, memory_order_relaxed);
}

int log_level_from_name(const char *name, size_t len, enum log_level *out_level, struct err *err)
{
	for (size_t i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++) {
		if (strlen(log_levels[i].name) == len &&
		    memcmp(log_levels[i].name, name, len) == 0) {
			*out_level = log_levels[i].level;
			return 0;
		}
	}
	return err_set(err, -EINVAL, "unknown log level '%.*s' (use err, warning, info or debug)",
	               (int)(len < 32 ? len : 32), name);
}

int log_init_from_env(struct err *err)
{
	const char *level_name = getenv("CALSYNC_LOG_LEVEL");
	const char *prefix_name = getenv("CALSYNC_LOG_PREFIX");
	enum log_level level = log_get_level();
	enum log_prefix mode = (enum log_prefix)atomic_load(&log_prefix_mode);
	struct err level_err;

	if (level_name != NULL &&
	    log_level_from_name(level_name, strlen(level_name), &level, &level_err) < 0)
		return err_set(err, -EINVAL, "CALSYNC_LOG_LEVEL: %s", level_err.msg);
	if (prefix_name != NULL) {
		if (strcmp(prefix_name, "auto") == 0)
			mode = LOG_PREFIX_AUTO;
		else if (strcmp(prefix_name, "always") == 0)
			mode = LOG_PREFIX_ALWAYS;
		else if (strcmp(prefix_name, "never") == 0)
			mode = LOG_PREFIX_NEVER;
		else
			return err_set(
				err, -EINVAL,
				"CALSYNC_LOG_PREFIX: unknown value (use auto, always or never)");
	}
	log_set_level(level);
	log_set_prefix(mode);
	return 0;
}

static const char *log_label(enum log_level level)
{
	for (size_t i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++) {
		if (log_levels[i].level == level)
			return log_levels[i].label;
	}
	return "";
}

static bool log_use_prefix(void)
{
	int mode = atomic_load_explicit(&log_prefix_mode, memory_order_relaxed);

	/* Asked per line rather than cached: it is one cheap ioctl, and logs are not a hot path. */
	return mode == LOG_PREFIX_ALWAYS || (mode == LOG_PREFIX_AUTO && !isatty(STDERR_FILENO));
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[LOG_MAX_LINE];
	size_t head;
	size_t len;
	size_t room;
	int n;
	va_list ap;

	if (!log_enabled(level))
		return;
	if (log_use_prefix())
		n = snprintf(line, sizeof(line), "<%d>", (int)level);
	else
		n = snprintf(line, sizeof(line), "%s", log_label(level));
	head = n > 0 ? (size_t)n : 0;

	/* Leave one byte for the newline; vsnprintf needs the other for its NUL. */
	room = sizeof(line) - head - 1;
	va_start(ap, fmt);
	n = vsnprintf(line + head, room, fmt, ap);
	va_end(ap);
	len = n < 0 ? 0 : (size_t)n;
	if (len > room - 1)
		len = room - 1;
	len += head;
	for (size_t i = head; i < len; i++) {
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	}
	line[len++] = '\n';

	for (size_t off = 0; off < len;) {
		ssize_t w = write(STDERR_FILENO, line + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* nowhere left to report it */
		off += (size_t)w;
	}
}
