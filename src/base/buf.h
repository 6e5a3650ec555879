/* SPDX-License-Identifier: MIT */
/*
 * buf.h: a growable byte buffer with a hard maximum, for data whose size the network decides.
 * A plain value struct: read data and len directly, change them only through buf_*().
 */
#pragma once

#include <stddef.h>

#include "base/compat.h"

struct err;

/*
 * data holds len bytes followed by a NUL (not counted in len), so text can be passed to APIs that
 * want a C string; the bytes themselves may contain NULs. data is NULL until the first non-empty
 * append. len never exceeds max.
 */
struct buf {
	char *data;
	size_t len;
	size_t cap; /* bytes allocated, including the NUL */
	size_t max;
};

/* Starts an empty buffer that will hold at most max bytes (at most PTRDIFF_MAX / 2). Allocates
 * nothing. */
void buf_init(struct buf *b, size_t max);

/* Appends len bytes. 0, or -EMSGSIZE when the result would exceed max; then b is unchanged. Aborts
 * on OOM, like xmalloc. */
ATTR_NODISCARD int buf_append(struct buf *b, const void *data, size_t len, struct err *err);

/* Empties b but keeps its memory for reuse. */
void buf_reset(struct buf *b);

/* Returns the contents as an owned, NUL-terminated string (never NULL, even when empty) and leaves
 * b empty; its max is kept. The caller frees the result. */
char *buf_take(struct buf *b);

/* Frees the memory and leaves b empty, ready for reuse with the same max. */
void buf_free(struct buf *b);
