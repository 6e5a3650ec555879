/* SPDX-License-Identifier: MIT */
/* xalloc.c: allocation that aborts on failure. */
#include "base/xalloc.h"

#include <stdint.h>

ATTR_NORETURN static void xalloc_die(const char *what, size_t n, size_t size)
{
	/* No log_*() here: logging may itself need memory, and this must not fail. */
	fprintf(stderr, "calsync: out of memory: %s(%zu, %zu)\n", what, n, size);
	abort();
}

/* Rejects sizes above PTRDIFF_MAX ourselves: pointer differences inside such an object would
 * overflow, and sanitizers report them as errors instead of returning NULL. */
static size_t xalloc_size(const char *what, size_t n, size_t size)
{
	if (size != 0 && n > PTRDIFF_MAX / size)
		xalloc_die(what, n, size);
	/* malloc(0) may return NULL, which we could not tell from failure. */
	return n * size == 0 ? 1 : n * size;
}

void *xmalloc(size_t size)
{
	void *p = malloc(xalloc_size("xmalloc", 1, size));

	if (p == NULL)
		xalloc_die("xmalloc", 1, size);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(1, xalloc_size("xcalloc", n, size));

	if (p == NULL)
		xalloc_die("xcalloc", n, size);
	return p;
}

void *xrealloc(void *p, size_t size)
{
	return xreallocarray(p, 1, size);
}

void *xreallocarray(void *p, size_t n, size_t size)
{
	void *q = realloc(p, xalloc_size("xreallocarray", n, size));

	if (q == NULL)
		xalloc_die("xreallocarray", n, size);
	return q;
}

char *xstrdup(const char *s)
{
	return xmemdup(s, strlen(s));
}

char *xstrdup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

char *xmemdup(const void *p, size_t len)
{
	char *s;

	if (len == SIZE_MAX)
		xalloc_die("xmemdup", 1, len);
	s = xmalloc(len + 1);
	if (len > 0)
		memcpy(s, p, len);
	s[len] = '\0';
	return s;
}
