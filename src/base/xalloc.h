/* SPDX-License-Identifier: MIT */
/*
 * xalloc.h: allocation that never returns NULL. On OOM, or on a size that overflows or exceeds
 * PTRDIFF_MAX, it prints one line to stderr and aborts. That is safe only because every size
 * that comes from the network or a file is checked against a limit in cs-limits.h first.
 */
#pragma once

#include <stddef.h>

#include "base/compat.h"

/* All return owned memory, freed with free(). A size of 0 still returns a unique pointer. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size); /* zeroed; n * size is checked for overflow */
void *xrealloc(void *p, size_t size);
void *xreallocarray(void *p, size_t n, size_t size); /* n * size is checked for overflow */
char *xstrdup(const char *s);
char *xstrdup_or_null(const char *s);     /* NULL stays NULL */
char *xmemdup(const void *p, size_t len); /* copies len bytes and appends a NUL */
