/* SPDX-License-Identifier: MIT */
/*
 * test-webhook.c: the pure parts of webhook delivery: the signature against RFC 4231's
 * HMAC-SHA256 vectors, the request body (the docs/output.md object) and the back-off schedule.
 * Delivery itself is tested end to end in tests/webhook/.
 */
#include "webhook/webhook.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "harness.h"
#include "store/store.h"

TEST(signature_rfc4231)
{
	char sig[WEBHOOK_SIGNATURE_SIZE];
	const char *data = "what do ya want for nothing?";
	char key3[21];
	char data3[51];

	/* RFC 4231 test case 2: key "Jefe". */
	CHECK_EQ(webhook_signature("Jefe", data, strlen(data), sig), 0);
	CHECK_STREQ(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	/* Test case 3 with a key that is text: 20 bytes 0xaa, data 50 bytes 0xdd. */
	memset(key3, 0xaa, 20);
	key3[20] = '\0';
	memset(data3, 0xdd, 50);
	data3[50] = '\0';
	CHECK_EQ(webhook_signature(key3, data3, 50, sig), 0);
	CHECK_STREQ(sig, "sha256=773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
	/* Only len bytes of the body count. */
	CHECK_EQ(webhook_signature("Jefe", "what do ya want for nothing?!!", strlen(data), sig), 0);
	CHECK_STREQ(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	CHECK_EQ(strlen(sig), WEBHOOK_SIGNATURE_SIZE - 1);
}

TEST(body_is_the_output_object)
{
	struct store_presence_event busy = {
		.id = 42,
		.smtp = (char[]){"user00001@contoso.example"},
		.presence =
			{
				.state = (char[]){"busy"},
				.profile = (char[]){"In a meeting"},
				.forward = (char[]){"voicemail"},
				.subject = (char[]){"Überlingen \"Q3\"\n"},
				.since_utc = 1741006800, /* 2025-03-03T13:00:00Z */
				.until_utc = 1741008600,
				.next_change_utc = 1741008600,
				.updated_utc = 1741006805,
			},
		.reason = (char[]){"appointment-start"},
	};
	struct store_presence_event free_ = {
		.id = 43,
		.smtp = (char[]){"user00001@contoso.example"},
		.presence = {.state = (char[]){"free"}, .updated_utc = 1741008600},
	};
	char *body = NULL;
	size_t len = 0;
	struct err err = {0};

	CHECK_EQ(webhook_body(&busy, &body, &len, &err), 0);
	CHECK_STREQ(body, "{\"id\":42,\"time\":\"2025-03-03T13:00:05Z\","
	                  "\"user\":\"user00001@contoso.example\",\"state\":\"busy\","
	                  "\"profile\":\"In a meeting\",\"forward\":\"voicemail\","
	                  "\"subject\":\"Überlingen \\\"Q3\\\"\\n\","
	                  "\"since\":\"2025-03-03T13:00:00Z\",\"until\":\"2025-03-03T13:30:00Z\","
	                  "\"reason\":\"appointment-start\"}");
	CHECK_EQ(len, strlen(body));
	free(body);
	body = NULL;
	/* Nothing set is null, and a since or until of 0 ("none") is null too. */
	CHECK_EQ(webhook_body(&free_, &body, &len, &err), 0);
	CHECK_STREQ(body, "{\"id\":43,\"time\":\"2025-03-03T13:30:00Z\","
	                  "\"user\":\"user00001@contoso.example\",\"state\":\"free\","
	                  "\"profile\":null,\"forward\":null,\"subject\":null,\"since\":null,"
	                  "\"until\":null,\"reason\":null}");
	free(body);
	body = NULL;
	/* Not UTF-8, or a time iso8601 cannot write: refused, nothing returned. */
	free_.presence.subject = (char[]){"\xff\xfe"};
	CHECK_EQ(webhook_body(&free_, &body, &len, &err), -EINVAL);
	CHECK(body == NULL);
	free_.presence.subject = NULL;
	free_.presence.until_utc = INT64_C(400000000000);
	CHECK_EQ(webhook_body(&free_, &body, &len, &err), -ERANGE);
	CHECK(strstr(err.msg, "until") != NULL);
	CHECK(body == NULL);
}

TEST(backoff_doubles_to_five_minutes_with_jitter)
{
	int64_t d = WEBHOOK_RETRY_FIRST_USEC;

	for (unsigned f = 1; f <= 20; f++) {
		int64_t lo = webhook_backoff_usec(f, 0);
		int64_t hi = webhook_backoff_usec(f, UINT64_MAX);

		CHECK_EQ(lo, d / 2);
		CHECK(hi < d && hi >= d / 2);
		for (uint64_t r = 1; r < 1000000; r = r * 7 + 3) {
			int64_t v = webhook_backoff_usec(f, r);

			CHECK(v >= d / 2 && v < d);
		}
		d = d * 2 > WEBHOOK_RETRY_MAX_USEC ? WEBHOOK_RETRY_MAX_USEC : d * 2;
	}
	/* 1 s, 2 s, 4 s, ... 256 s, then 5 min for good. */
	CHECK_EQ(webhook_backoff_usec(1, 0), 500000);
	CHECK_EQ(webhook_backoff_usec(2, 0), 1000000);
	CHECK_EQ(webhook_backoff_usec(9, 0), 128000000);
	CHECK_EQ(webhook_backoff_usec(10, 0), 150000000);
	CHECK_EQ(webhook_backoff_usec(1000, 0), 150000000);
	/* failures 0 (not used) behaves like the first retry. */
	CHECK_EQ(webhook_backoff_usec(0, 0), 500000);
}

int main(void)
{
	RUN(signature_rfc4231);
	RUN(body_is_the_output_object);
	RUN(backoff_doubles_to_five_minutes_with_jitter);
	return harness_done();
}
