/* SPDX-License-Identifier: MIT */
/* test-err.c: err_set() records, truncates, tolerates NULL and aliasing. */
#include "base/err.h"

#include <errno.h>

#include "harness.h"

TEST(sets_code_and_message)
{
	struct err err = {0};

	CHECK_EQ(err_set(&err, -EINVAL, "month %d is out of range", 13), -EINVAL);
	CHECK_EQ(err.code, -EINVAL);
	CHECK_STREQ(err.msg, "month 13 is out of range");
}

TEST(null_err_only_returns_code)
{
	CHECK_EQ(err_set(NULL, -EMSGSIZE, "%s", "ignored"), -EMSGSIZE);
}

TEST(long_message_is_truncated)
{
	struct err err = {0};
	char long_text[1000];

	memset(long_text, 'x', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	CHECK_EQ(err_set(&err, -EPROTO, "%s", long_text), -EPROTO);
	CHECK_EQ(strlen(err.msg), sizeof(err.msg) - 1);
	CHECK_EQ(err.msg[sizeof(err.msg) - 2], 'x');
}

TEST(arguments_may_alias_msg)
{
	struct err err = {0};

	(void)err_set(&err, -EIO, "connection reset");
	CHECK_EQ(err_set(&err, -EAGAIN, "mailbox '%s': %s", "a@b", err.msg), -EAGAIN);
	CHECK_STREQ(err.msg, "mailbox 'a@b': connection reset");
	CHECK_EQ(err.code, -EAGAIN);
}

TEST(aliasing_a_full_msg_stays_bounded)
{
	struct err err = {0};

	memset(err.msg, 'y', sizeof(err.msg) - 1);
	err.msg[sizeof(err.msg) - 1] = '\0';
	(void)err_set(&err, -EIO, "ctx: %s", err.msg);
	CHECK_EQ(strlen(err.msg), sizeof(err.msg) - 1);
	CHECK(memcmp(err.msg, "ctx: yyy", 8) == 0);
}

int main(void)
{
	RUN(sets_code_and_message);
	RUN(null_err_only_returns_code);
	RUN(long_message_is_truncated);
	RUN(arguments_may_alias_msg);
	RUN(aliasing_a_full_msg_stays_bounded);
	return harness_done();
}
