/* SPDX-License-Identifier: MIT */
/* test-xalloc.c: the x*alloc family returns usable memory and aborts on overflow. */
#include "base/xalloc.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

TEST(allocates_and_copies)
{
	char *s = xstrdup("calsync");
	char *n = xstrdup_or_null(NULL);
	char *o = xstrdup_or_null("on");
	char *m = xmemdup("a\0b", 3);
	int *z = xcalloc(16, sizeof(int));
	char *p = xmalloc(0);

	CHECK_STREQ(s, "calsync");
	CHECK(n == NULL);
	CHECK_STREQ(o, "on");
	free(o);
	CHECK(memcmp(m, "a\0b\0", 4) == 0);
	for (int i = 0; i < 16; i++)
		CHECK_EQ(z[i], 0);
	/* Size 0 still gives a pointer we can free, not NULL. */
	CHECK(p != NULL);
	p = xrealloc(p, 100);
	memset(p, 'x', 100);
	z = xreallocarray(z, 32, sizeof(int));
	z[31] = 7;
	CHECK_EQ(z[31], 7);
	free(s);
	free(m);
	free(z);
	free(p);
}

/* Runs fn in a child process and reports whether it died of SIGABRT. */
static bool aborts(void (*fn)(void))
{
	pid_t pid = fork();
	int status = 0;

	if (pid < 0)
		return false;
	if (pid == 0) {
		/* The child's "out of memory" line is expected; keep it out of the test log. */
		if (freopen("/dev/null", "w", stderr) == NULL)
			_exit(3);
		fn();
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid)
		return false;
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void calloc_overflow(void)
{
	free(xcalloc(SIZE_MAX / 2, 3));
}

static void reallocarray_overflow(void)
{
	free(xreallocarray(NULL, SIZE_MAX / 8, 16));
}

static void malloc_too_big(void)
{
	free(xmalloc(SIZE_MAX));
}

static void memdup_wraps(void)
{
	free(xmemdup("", SIZE_MAX));
}

static void calloc_fine(void)
{
	free(xcalloc(4, 4));
}

TEST(aborts_on_overflow)
{
	CHECK(aborts(calloc_overflow));
	CHECK(aborts(reallocarray_overflow));
	CHECK(aborts(malloc_too_big));
	CHECK(aborts(memdup_wraps));
	/* and the fork helper itself tells a normal exit apart */
	CHECK(!aborts(calloc_fine));
}

int main(void)
{
	RUN(allocates_and_copies);
	RUN(aborts_on_overflow);
	return harness_done();
}
