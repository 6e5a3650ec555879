/* SPDX-License-Identifier: MIT */
/*
 * graph-test.h: what the tests of src/graph/ share, header-only: reading a fixture of
 * tests/graph-fixtures/ ($GRAPH_FIXTURES_DIR, set by meson test) into a buffer of exactly its
 * size, and exact-size heap copies, so that AddressSanitizer catches any read past the end of
 * an input and no reader can lean on a NUL that is not part of it.
 */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "harness.h"

/* The fixture's bytes (owned), or NULL after a failed check. */
static inline char *graph_fixture(const char *name, size_t *out_len)
{
	const char *dir = getenv("GRAPH_FIXTURES_DIR");
	char path[1024];
	FILE *f;
	char *data;
	long size;

	*out_len = 0;
	if (dir == NULL) {
		harness_fail(__FILE__, __LINE__,
		             "GRAPH_FIXTURES_DIR is not set (meson test sets it)");
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (f == NULL) {
		harness_fail(__FILE__, __LINE__, "cannot open %s", path);
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) <= 0) {
		fclose(f);
		harness_fail(__FILE__, __LINE__, "cannot size %s", path);
		return NULL;
	}
	rewind(f);
	data = xmalloc((size_t)size);
	if (fread(data, 1, (size_t)size, f) != (size_t)size) {
		fclose(f);
		free(data);
		harness_fail(__FILE__, __LINE__, "cannot read %s", path);
		return NULL;
	}
	fclose(f);
	*out_len = (size_t)size;
	return data;
}

/* An exact-size copy of the first len bytes of s (owned; no NUL after them). */
static inline char *graph_copy_n(const char *s, size_t len)
{
	char *c = xmalloc(len > 0 ? len : 1);

	memcpy(c, s, len);
	return c;
}

/* The length of a JSON document without the whitespace after it. */
static inline size_t graph_doc_end(const char *s, size_t len)
{
	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' ' || s[len - 1] == '\t' ||
	                   s[len - 1] == '\r'))
		len--;
	return len;
}
