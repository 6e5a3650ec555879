/* SPDX-License-Identifier: MIT */
/* test-log.c: log lines carry the right prefix, respect the level, and stay one line each. */
#include "base/log.h"

#include <errno.h>
#include <unistd.h>

#include "base/cs-limits.h"
#include "base/err.h"
#include "harness.h"

/* Runs fn with stderr sent to a temporary file and returns what fn wrote there, as a string that
 * is valid until the next call. */
static char *capture_stderr(void (*fn)(void))
{
	static char out[3 * LOG_MAX_LINE];
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	size_t n;

	if (tmp == NULL || saved < 0)
		abort();
	fflush(stderr);
	if (dup2(fileno(tmp), STDERR_FILENO) < 0)
		abort();
	fn();
	if (dup2(saved, STDERR_FILENO) < 0)
		abort();
	close(saved);
	rewind(tmp);
	n = fread(out, 1, sizeof(out) - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
	return out;
}

static void log_each_level(void)
{
	log_err("mailbox '%s': sync failed", "a@b");
	log_warn("retrying in %ds", 30);
	log_info("started");
	log_debug("details");
}

TEST(journald_prefixes)
{
	log_set_prefix(LOG_PREFIX_ALWAYS);
	log_set_level(LOG_LEVEL_DEBUG);
	CHECK_STREQ(capture_stderr(log_each_level), "<3>mailbox 'a@b': sync failed\n"
	                                            "<4>retrying in 30s\n"
	                                            "<6>started\n"
	                                            "<7>details\n");
}

TEST(terminal_labels)
{
	log_set_prefix(LOG_PREFIX_NEVER);
	log_set_level(LOG_LEVEL_DEBUG);
	CHECK_STREQ(capture_stderr(log_each_level), "error: mailbox 'a@b': sync failed\n"
	                                            "warning: retrying in 30s\n"
	                                            "started\n"
	                                            "debug: details\n");
}

TEST(level_filters)
{
	log_set_prefix(LOG_PREFIX_ALWAYS);
	log_set_level(LOG_LEVEL_WARNING);
	CHECK(log_enabled(LOG_LEVEL_ERR));
	CHECK(!log_enabled(LOG_LEVEL_INFO));
	CHECK_STREQ(capture_stderr(log_each_level), "<3>mailbox 'a@b': sync failed\n"
	                                            "<4>retrying in 30s\n");
	log_set_level(LOG_LEVEL_INFO);
}

static void log_multiline(void)
{
	log_info("line one\nline two\r\n");
}

TEST(one_message_one_line)
{
	log_set_prefix(LOG_PREFIX_ALWAYS);
	CHECK_STREQ(capture_stderr(log_multiline), "<6>line one line two  \n");
}

static void log_huge(void)
{
	static char big[2 * LOG_MAX_LINE];

	memset(big, 'x', sizeof(big) - 1);
	log_info("%s", big);
}

TEST(long_message_is_cut)
{
	char *out;

	log_set_prefix(LOG_PREFIX_ALWAYS);
	out = capture_stderr(log_huge);
	CHECK_EQ(strlen(out), LOG_MAX_LINE - 1);
	CHECK(strncmp(out, "<6>xxx", 6) == 0);
	CHECK_EQ(out[strlen(out) - 1], '\n');
}

TEST(level_names)
{
	enum log_level level = LOG_LEVEL_INFO;
	struct err err = {0};

	CHECK_EQ(log_level_from_name("debug", 5, &level, NULL), 0);
	CHECK_EQ(level, LOG_LEVEL_DEBUG);
	CHECK_EQ(log_level_from_name("warning", 7, &level, NULL), 0);
	CHECK_EQ(level, LOG_LEVEL_WARNING);
	/* The length counts, not a NUL. */
	CHECK_EQ(log_level_from_name("errx", 3, &level, NULL), 0);
	CHECK_EQ(level, LOG_LEVEL_ERR);
	CHECK_EQ(log_level_from_name("loud", 4, &level, &err), -EINVAL);
	CHECK_EQ(level, LOG_LEVEL_ERR);
	CHECK(strstr(err.msg, "'loud'") != NULL);
}

TEST(environment)
{
	struct err err = {0};

	log_set_level(LOG_LEVEL_INFO);
	setenv("CALSYNC_LOG_LEVEL", "debug", 1);
	setenv("CALSYNC_LOG_PREFIX", "never", 1);
	CHECK_EQ(log_init_from_env(&err), 0);
	CHECK_EQ(log_get_level(), LOG_LEVEL_DEBUG);
	CHECK_STREQ(capture_stderr(log_multiline), "line one line two  \n");

	setenv("CALSYNC_LOG_LEVEL", "verbose", 1);
	CHECK_EQ(log_init_from_env(&err), -EINVAL);
	CHECK(strstr(err.msg, "CALSYNC_LOG_LEVEL") != NULL);
	CHECK_EQ(log_init_from_env(NULL), -EINVAL);

	setenv("CALSYNC_LOG_LEVEL", "err", 1);
	setenv("CALSYNC_LOG_PREFIX", "sometimes", 1);
	CHECK_EQ(log_init_from_env(&err), -EINVAL);
	CHECK(strstr(err.msg, "CALSYNC_LOG_PREFIX") != NULL);
	/* A rejected environment changes nothing. */
	CHECK_EQ(log_get_level(), LOG_LEVEL_DEBUG);

	unsetenv("CALSYNC_LOG_LEVEL");
	unsetenv("CALSYNC_LOG_PREFIX");
	log_set_level(LOG_LEVEL_INFO);
}

int main(void)
{
	RUN(journald_prefixes);
	RUN(terminal_labels);
	RUN(level_filters);
	RUN(one_message_one_line);
	RUN(long_message_is_cut);
	RUN(level_names);
	RUN(environment);
	return harness_done();
}
