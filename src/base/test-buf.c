/* SPDX-License-Identifier: MIT */
/* test-buf.c: struct buf grows, keeps its NUL, and never passes its maximum. */
#include "base/buf.h"

#include <errno.h>
#include <stdint.h>

#include "base/err.h"
#include "harness.h"

TEST(starts_empty_without_memory)
{
	struct buf b;

	buf_init(&b, 100);
	CHECK(b.data == NULL);
	CHECK_EQ(b.len, 0);
	CHECK_EQ(b.max, 100);
	CHECK_EQ(buf_append(&b, "", 0, NULL), 0);
	CHECK(b.data == NULL);
	buf_free(&b);
}

TEST(appends_bytes_and_keeps_nul)
{
	struct buf b;

	buf_init(&b, 100);
	CHECK_EQ(buf_append(&b, "hello", 5, NULL), 0);
	CHECK_EQ(buf_append(&b, ", world", 7, NULL), 0);
	CHECK_EQ(b.len, 12);
	CHECK_STREQ(b.data, "hello, world");
	/* Binary data with NULs counts by len, not by strlen. */
	CHECK_EQ(buf_append(&b, "\0x", 2, NULL), 0);
	CHECK_EQ(b.len, 14);
	CHECK(memcmp(b.data, "hello, world\0x", 15) == 0);
	buf_free(&b);
}

TEST(grows_by_doubling_up_to_max)
{
	struct buf b;

	buf_init(&b, 1u << 20);
	for (int i = 0; i < 100000; i++) {
		char c = (char)('a' + i % 26);

		if (buf_append(&b, &c, 1, NULL) != 0)
			break;
	}
	CHECK_EQ(b.len, 100000);
	CHECK(b.cap > b.len);
	CHECK(b.cap <= 2 * (b.len + 1));
	CHECK_EQ(b.data[99999], 'a' + 99999 % 26);
	CHECK_EQ(b.data[100000], '\0');
	buf_free(&b);
}

TEST(cap_is_honoured)
{
	struct buf b;
	struct err err = {0};

	buf_init(&b, 10);
	CHECK_EQ(buf_append(&b, "0123456789", 10, &err), 0);
	CHECK_EQ(buf_append(&b, "x", 1, &err), -EMSGSIZE);
	CHECK_EQ(err.code, -EMSGSIZE);
	CHECK(strstr(err.msg, "10 bytes") != NULL);
	/* A failed append changes nothing. */
	CHECK_EQ(b.len, 10);
	CHECK_STREQ(b.data, "0123456789");
	/* Nothing more fits, but nothing is still fine. */
	CHECK_EQ(buf_append(&b, "", 0, NULL), 0);
	/* The allocation never exceeds what the maximum can use. */
	CHECK(b.cap <= b.max + 1);
	buf_free(&b);
}

TEST(one_append_past_cap_allocates_nothing)
{
	struct buf b;

	buf_init(&b, 10);
	CHECK_EQ(buf_append(&b, "0123456789a", 11, NULL), -EMSGSIZE);
	CHECK(b.data == NULL);
	CHECK_EQ(b.len, 0);
	buf_free(&b);
}

TEST(huge_lengths_do_not_overflow)
{
	struct buf b;

	buf_init(&b, 10);
	CHECK_EQ(buf_append(&b, "ab", 2, NULL), 0);
	CHECK_EQ(buf_append(&b, "x", SIZE_MAX, NULL), -EMSGSIZE);
	CHECK_EQ(buf_append(&b, "x", SIZE_MAX - 1, NULL), -EMSGSIZE);
	CHECK_EQ(b.len, 2);
	buf_free(&b);

	/* An absurd maximum is clamped, so max + 1 cannot wrap. */
	buf_init(&b, SIZE_MAX);
	CHECK(b.max < SIZE_MAX / 2);
	buf_free(&b);
}

TEST(reset_take_and_free)
{
	struct buf b;
	char *s;

	buf_init(&b, 100);
	CHECK_EQ(buf_append(&b, "abc", 3, NULL), 0);
	buf_reset(&b);
	CHECK_EQ(b.len, 0);
	CHECK_STREQ(b.data, "");
	CHECK_EQ(buf_append(&b, "de", 2, NULL), 0);
	s = buf_take(&b);
	CHECK_STREQ(s, "de");
	CHECK(b.data == NULL);
	CHECK_EQ(b.len, 0);
	CHECK_EQ(b.max, 100);
	free(s);

	/* Taking an empty buffer still gives a string to free. */
	s = buf_take(&b);
	CHECK_STREQ(s, "");
	free(s);
	buf_free(&b);
	buf_free(&b); /* freeing twice is harmless: buf_free leaves an empty buffer */
}

int main(void)
{
	RUN(starts_empty_without_memory);
	RUN(appends_bytes_and_keeps_nul);
	RUN(grows_by_doubling_up_to_max);
	RUN(cap_is_honoured);
	RUN(one_append_past_cap_allocates_nothing);
	RUN(huge_lengths_do_not_overflow);
	RUN(reset_take_and_free);
	return harness_done();
}
