/* SPDX-License-Identifier: MIT */
/* buf.c: growable byte buffer with a hard maximum. */
#include "base/buf.h"

#include <errno.h>
#include <stdint.h>

#include "base/err.h"
#include "base/xalloc.h"

/* Small enough not to matter for tiny buffers, large enough to skip the first few doublings. */
#define BUF_MIN_ALLOC 64u

void buf_init(struct buf *b, size_t max)
{
	/* Keeps max + 1 (for the NUL) and the doubling below far from overflow; no real limit is
	 * anywhere near this. */
	if (max > PTRDIFF_MAX / 2)
		max = PTRDIFF_MAX / 2;
	*b = (struct buf){.max = max};
}

int buf_append(struct buf *b, const void *data, size_t len, struct err *err)
{
	size_t need;
	size_t cap;

	if (len > b->max - b->len)
		return err_set(err, -EMSGSIZE,
		               "buffer limit of %zu bytes exceeded (have %zu, adding %zu)", b->max,
		               b->len, len);
	if (len == 0)
		return 0;
	need = b->len + len + 1;
	if (need > b->cap) {
		/* Double, but never allocate more than the maximum could ever use. */
		cap = b->cap > BUF_MIN_ALLOC ? b->cap : BUF_MIN_ALLOC;
		while (cap < need)
			cap *= 2;
		if (cap > b->max + 1)
			cap = b->max + 1;
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

char *buf_take(struct buf *b)
{
	char *s = b->data != NULL ? b->data : xstrdup("");

	buf_init(b, b->max);
	return s;
}

void buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b, b->max);
}
