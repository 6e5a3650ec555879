/* SPDX-License-Identifier: MIT */
/*
 * harness.h: the unit-test harness, header-only. A test-foo.c defines TEST(name) functions and a
 * main() that RUN()s each and returns harness_done(). Output is TAP (meson: protocol 'tap');
 * failed checks print file:line and both values on stderr and do not stop the test. A TEST that
 * executes no CHECK fails, and so does a program that RUNs no TEST: neither asserted anything.
 */
#pragma once

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/compat.h"

/* A TEST that is never RUN is an unused static function, which -Wall reports. */
#define TEST(name) static void test_##name(void)
#define RUN(name)  harness_run(#name, test_##name)

/* Checks a condition. */
#define CHECK(cond)                                                                  \
	do {                                                                         \
		harness_checks_run++;                                                \
		if (!(cond))                                                         \
			harness_fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond); \
	} while (0)

/* Compares two integers (any integer type that fits intmax_t) and prints both on failure. */
#define CHECK_EQ(a, b)                                                                           \
	do {                                                                                     \
		intmax_t harness_a_ = (a);                                                       \
		intmax_t harness_b_ = (b);                                                       \
		harness_checks_run++;                                                            \
		if (harness_a_ != harness_b_)                                                    \
			harness_fail(__FILE__, __LINE__, "CHECK_EQ(%s, %s): %jd != %jd", #a, #b, \
			             harness_a_, harness_b_);                                    \
	} while (0)

/* Compares two C strings (NULL allowed) and prints both on failure. */
#define CHECK_STREQ(a, b)                                                                         \
	do {                                                                                      \
		const char *harness_a_ = (a);                                                     \
		const char *harness_b_ = (b);                                                     \
		harness_checks_run++;                                                             \
		if (!harness_streq(harness_a_, harness_b_))                                       \
			harness_fail(__FILE__, __LINE__, "CHECK_STREQ(%s, %s): \"%s\" != \"%s\"", \
			             #a, #b, harness_a_ ? harness_a_ : "(null)",                  \
			             harness_b_ ? harness_b_ : "(null)");                         \
	} while (0)

static int harness_tests_run;
static int harness_tests_failed;
static int harness_current_failures;
/* CHECKs executed by the running TEST: a TEST that ran none asserted nothing and fails. */
static long harness_checks_run;

ATTR_PRINTF(3, 4)

static inline void harness_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	harness_current_failures++;
}

static inline bool harness_streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static inline void harness_run(const char *name, void (*fn)(void))
{
	harness_current_failures = 0;
	harness_checks_run = 0;
	fn();
	if (harness_checks_run == 0 && harness_current_failures == 0)
		harness_fail(__FILE__, __LINE__, "%s ran no CHECK", name);
	harness_tests_run++;
	if (harness_current_failures > 0)
		harness_tests_failed++;
	printf("%s %d - %s\n", harness_current_failures > 0 ? "not ok" : "ok", harness_tests_run,
	       name);
	/* Flush now: if a later test crashes, the results so far must not be lost in a buffer. */
	fflush(stdout);
	fflush(stderr);
}

/* Prints the TAP plan and returns the exit status for main(). */
static inline int harness_done(void)
{
	printf("1..%d\n", harness_tests_run);
	if (harness_tests_run == 0) {
		fprintf(stderr, "no TEST was RUN\n");
		return 1;
	}
	return harness_tests_failed > 0 ? 1 : 0;
}
