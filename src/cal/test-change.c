/* SPDX-License-Identifier: MIT */
/*
 * test-change.c: a presence change as its JSON object: the exact compact text with its keys in
 * order, every null and the instants just inside the sentinels, UTF-8 kept as is, escaping, and
 * the strings and times that are refused, each naming its field and leaving *out untouched.
 */
#include "cal/change.h"

#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/iso8601.h"
#include "cal/presence.h"
#include "harness.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* 2025-03-03T09:00:00Z */
#define T0 INT64_C(1740992400)

/* A full change; the test changes what it needs. */
static struct cal_change change(int64_t id)
{
	return (struct cal_change){
		.id = id,
		.time_utc = T0 + 5,
		.user = "user00001@contoso.example",
		.state = "busy",
		.profile = "In a meeting",
		.forward = "+49301234567",
		.subject = "Standup",
		.since_utc = T0,
		.until_utc = T0 + 1800,
		.reason = "appointment-start",
	};
}

/* The object as compact text, keys in order (owned), or NULL and a failure. */
static char *dump(const struct cal_change *c)
{
	struct err e = {0};
	json_t *j = NULL;
	char *text;
	int rc = cal_change_json(c, &j, &e);

	if (rc != 0) {
		harness_fail(__FILE__, __LINE__, "cal_change_json: %d %s", rc, e.msg);
		return NULL;
	}
	CHECK(json_is_object(j));
	CHECK_EQ(json_object_size(j), 10);
	text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	CHECK(text != NULL);
	return text;
}

TEST(exact_object)
{
	struct cal_change c = change(7);
	char *text = dump(&c);

	CHECK_STREQ(text, "{\"id\":7,\"time\":\"2025-03-03T09:00:05Z\","
	                  "\"user\":\"user00001@contoso.example\",\"state\":\"busy\","
	                  "\"profile\":\"In a meeting\",\"forward\":\"+49301234567\","
	                  "\"subject\":\"Standup\",\"since\":\"2025-03-03T09:00:00Z\","
	                  "\"until\":\"2025-03-03T09:30:00Z\",\"reason\":\"appointment-start\"}");
	free(text);
}

TEST(nulls_and_sentinels)
{
	struct cal_change none = {
		.id = 2,
		.time_utc = T0,
		.since_utc = PRESENCE_SINCE_ALWAYS,
		.until_utc = PRESENCE_NEVER,
	};
	struct cal_change edge = change(3);
	char *text;

	/* Every string NULL, free since always, for ever: every key but id and time is null. */
	text = dump(&none);
	CHECK_STREQ(text, "{\"id\":2,\"time\":\"2025-03-03T09:00:00Z\",\"user\":null,"
	                  "\"state\":null,\"profile\":null,\"forward\":null,\"subject\":null,"
	                  "\"since\":null,\"until\":null,\"reason\":null}");
	free(text);
	/* Just inside the sentinels: real times; the epoch is a real time for "time". */
	edge.time_utc = 0;
	edge.since_utc = 1;
	edge.until_utc = ISO8601_MAX_UTC;
	text = dump(&edge);
	CHECK(text != NULL && strstr(text, "\"time\":\"1970-01-01T00:00:00Z\"") != NULL);
	CHECK(text != NULL && strstr(text, "\"since\":\"1970-01-01T00:00:01Z\"") != NULL);
	CHECK(text != NULL && strstr(text, "\"until\":\"9999-12-31T23:59:59Z\"") != NULL);
	free(text);
}

TEST(utf8_stays_utf8_and_escaping)
{
	struct cal_change c = change(1);
	char *text;

	c.subject =
		"Kundentermin \303\234berlingen \342\200\224 \346\227\245\346\234\254 \360\237\232\200";
	c.profile = "Au\303\237er Haus";
	c.user = "j\xc3\xb6rg@contoso.example";
	text = dump(&c);
	/* The raw bytes, not \u escapes. */
	CHECK(text != NULL && strstr(text, c.subject) != NULL);
	CHECK(text != NULL && strstr(text, c.profile) != NULL);
	CHECK(text != NULL && strstr(text, c.user) != NULL);
	CHECK(text != NULL && strstr(text, "\\u") == NULL);
	free(text);

	c = change(1);
	c.subject = "\"Quoted\" back\\slash\nsecond line\r\ttab \x01 </script> \xe2\x80\xa8";
	c.forward = "sip:\"x\"@y";
	text = dump(&c);
	CHECK(text != NULL &&
	      strstr(text, "\"subject\":\"\\\"Quoted\\\" back\\\\slash\\nsecond "
	                   "line\\r\\ttab \\u0001 </script> \xe2\x80\xa8\"") != NULL);
	CHECK(text != NULL && strstr(text, "\"forward\":\"sip:\\\"x\\\"@y\"") != NULL);
	CHECK(text != NULL && strchr(text, '\n') == NULL && strchr(text, '\r') == NULL);
	free(text);
}

TEST(refused_strings_name_the_field)
{
	static const struct {
		const char *field;
		size_t offset;
	} fields[] = {
		{"user", offsetof(struct cal_change, user)},
		{"state", offsetof(struct cal_change, state)},
		{"profile", offsetof(struct cal_change, profile)},
		{"forward", offsetof(struct cal_change, forward)},
		{"subject", offsetof(struct cal_change, subject)},
		{"reason", offsetof(struct cal_change, reason)},
	};

	/* Not UTF-8: a lone continuation byte, a truncated sequence, an overlong '/'. */
	static const char *const bad[] = {"a\x80", "\xe2\x82", "\xc0\xaf"};
	int marker = 0;
	json_t *const untouched = (json_t *)(void *)&marker; /* garbage, must stay */

	for (size_t i = 0; i < N(fields); i++) {
		for (size_t k = 0; k < N(bad); k++) {
			struct cal_change c = change(1);
			struct err e = {0};
			json_t *j = untouched;

			*(const char **)(void *)((char *)&c + fields[i].offset) = bad[k];
			CHECK_EQ(cal_change_json(&c, &j, &e), -EINVAL);
			CHECK_EQ(e.code, -EINVAL);
			CHECK(strstr(e.msg, fields[i].field) != NULL);
			CHECK(strstr(e.msg, "UTF-8") != NULL);
			CHECK(j == untouched);
			j = untouched;
			CHECK_EQ(cal_change_json(&c, &j, NULL), -EINVAL);
			CHECK(j == untouched);
		}
	}
}

TEST(refused_times_name_the_field)
{
	static const struct {
		const char *field;
		size_t offset;
		int64_t value;
	} times[] = {
		{"time", offsetof(struct cal_change, time_utc), ISO8601_MAX_UTC + 1},
		{"time", offsetof(struct cal_change, time_utc),
	         PRESENCE_NEVER}, /* "time" has no null */
		{"time", offsetof(struct cal_change, time_utc), -INT64_C(62135596801)},
		{"since", offsetof(struct cal_change, since_utc), -INT64_C(62135596801)},
		{"since", offsetof(struct cal_change, since_utc), ISO8601_MAX_UTC + 1},
		{"until", offsetof(struct cal_change, until_utc), PRESENCE_NEVER - 1},
		{"until", offsetof(struct cal_change, until_utc), INT64_C(400000000000)},
	};

	int marker = 0;
	json_t *const untouched = (json_t *)(void *)&marker; /* garbage, must stay */

	for (size_t i = 0; i < N(times); i++) {
		struct cal_change c = change(1);
		struct err e = {0};
		json_t *j = untouched;

		*(int64_t *)(void *)((char *)&c + times[i].offset) = times[i].value;
		CHECK_EQ(cal_change_json(&c, &j, &e), -ERANGE);
		CHECK_EQ(e.code, -ERANGE);
		CHECK(strstr(e.msg, times[i].field) != NULL);
		CHECK(strstr(e.msg, "outside years 1 to 9999") != NULL);
		CHECK(j == untouched);
	}
}

int main(void)
{
	RUN(exact_object);
	RUN(nulls_and_sentinels);
	RUN(utf8_stays_utf8_and_escaping);
	RUN(refused_strings_name_the_field);
	RUN(refused_times_name_the_field);
	return harness_done();
}
