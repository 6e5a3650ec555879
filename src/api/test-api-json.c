/* SPDX-License-Identifier: MIT */
/*
 * test-api-json.c: the HTTP API's JSON: private items never show their details, presence and
 * users carry every key, and a presence change becomes one well-formed Server-Sent Event.
 */
#include "api/api-json.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "base/buf.h"
#include "cal/occurrence.h"
#include "harness.h"
#include "store/store.h"

/* 2025-03-03T09:00:00Z */
#define T0 INT64_C(1740992400)

static char *dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	return s;
}

TEST(private_occurrence_has_no_details)
{
	char *cats[] = {(char *)(uintptr_t) "Secret project"};
	struct cal_occurrence o = {
		.item_id = (char *)(uintptr_t) "AAMkAD1",
		.subject = (char *)(uintptr_t) "Doctor",
		.location = (char *)(uintptr_t) "Clinic",
		.organizer = (char *)(uintptr_t) "dr@example.com",
		.categories = cats,
		.n_categories = 1,
		.start_utc = T0,
		.end_utc = T0 + 3600,
		.is_private = true,
		.free_busy = CAL_FB_BUSY,
		.type = CAL_ITEM_SINGLE,
	};
	json_t *j = api_json_occurrence(&o);
	char *s;

	CHECK(j != NULL);
	CHECK(json_object_get(j, "subject") == NULL);
	CHECK(json_object_get(j, "location") == NULL);
	CHECK(json_object_get(j, "organizer") == NULL);
	CHECK(json_object_get(j, "categories") == NULL);
	CHECK(json_is_true(json_object_get(j, "private")));
	CHECK_STREQ(json_string_value(json_object_get(j, "free_busy")), "busy");
	s = dump(j);
	/* Nothing of the details anywhere in the text. */
	CHECK(strstr(s, "Doctor") == NULL);
	CHECK(strstr(s, "Clinic") == NULL);
	CHECK(strstr(s, "dr@example") == NULL);
	CHECK(strstr(s, "Secret") == NULL);
	CHECK_STREQ(
		s, "{\"id\":\"AAMkAD1\",\"start\":\"2025-03-03T09:00:00Z\",\"end\":\"2025-03-03T10:"
		   "00:00Z\",\"all_day\":false,\"free_busy\":\"busy\",\"type\":\"single\","
		   "\"cancelled\":false,\"private\":true}");
	free(s);
}

TEST(public_occurrence_has_details)
{
	char *cats[] = {(char *)(uintptr_t) "Customer visit", (char *)(uintptr_t) ""};
	struct cal_occurrence o = {
		.item_id = (char *)(uintptr_t) "AAMkAD2",
		.subject = (char *)(uintptr_t) "Standup",
		.location = NULL,
		.organizer = (char *)(uintptr_t) "boss@example.com",
		.categories = cats,
		.n_categories = 2,
		.start_utc = T0,
		.end_utc = T0 + 900,
		.all_day = false,
		.is_cancelled = true,
		.free_busy = CAL_FB_WORKING_ELSEWHERE,
		.type = CAL_ITEM_EXCEPTION,
	};
	char *s = dump(api_json_occurrence(&o));

	CHECK_STREQ(
		s, "{\"id\":\"AAMkAD2\",\"start\":\"2025-03-03T09:00:00Z\",\"end\":\"2025-03-03T09:"
		   "15:00Z\",\"all_day\":false,\"free_busy\":\"working-elsewhere\",\"type\":"
		   "\"exception\",\"cancelled\":true,\"private\":false,\"subject\":\"Standup\","
		   "\"location\":null,\"organizer\":\"boss@example.com\",\"categories\":["
		   "\"Customer visit\",\"\"]}");
	free(s);
}

TEST(invalid_utf8_becomes_null)
{
	struct cal_occurrence o = {
		.item_id = (char *)(uintptr_t) "x",
		.subject = (char *)(uintptr_t) "bad \xff",
		.start_utc = T0,
		.end_utc = T0 + 1,
	};
	json_t *j = api_json_occurrence(&o);

	CHECK(j != NULL);
	CHECK(json_is_null(json_object_get(j, "subject")));
	json_decref(j);
}

TEST(presence_nulls)
{
	struct store_presence p = {
		.state = (char *)(uintptr_t) "busy",
		.profile = (char *)(uintptr_t) "In a meeting",
		.subject = (char *)(uintptr_t) "private",
		.since_utc = T0,
		.until_utc = 0,
		.next_change_utc = T0 + 60,
		.updated_utc = T0 + 5,
	};
	char *s = dump(api_json_presence(&p));

	CHECK_STREQ(
		s,
		"{\"state\":\"busy\",\"profile\":\"In a meeting\",\"forward\":null,\"subject\":"
		"\"private\",\"since\":\"2025-03-03T09:00:00Z\",\"until\":null,"
		"\"next_change\":\"2025-03-03T09:01:00Z\",\"updated\":\"2025-03-03T09:00:05Z\"}");
	free(s);
	s = dump(api_json_presence(NULL));
	CHECK_STREQ(s,
	            "{\"state\":null,\"profile\":null,\"forward\":null,\"subject\":null,\"since\":"
	            "null,\"until\":null,\"next_change\":null,\"updated\":null}");
	free(s);
}

TEST(user_object)
{
	struct store_mailbox mb = {
		.smtp = (char *)(uintptr_t) "a@b.example",
		.state = STORE_MB_PARKED,
		.parked_reason = (char *)(uintptr_t) "ErrorNonExistentMailbox",
		.by_api = true,
	};
	char *s = dump(api_json_user(&mb, NULL));

	/* No backend stored (NULL) is the store's default: on premises. */
	CHECK_STREQ(s, "{\"smtp\":\"a@b.example\",\"state\":\"parked\",\"backend\":\"ews\","
	               "\"parked_reason\":\"ErrorNonExistentMailbox\",\"last_refresh\":null,"
	               "\"window\":null,\"by_api\":true,\"presence\":null}");
	free(s);
}

TEST(user_backend)
{
	static const char *const stored[] = {"graph", "ews", NULL};
	static const char *const shown[] = {"graph", "ews", "ews"};

	for (size_t i = 0; i < sizeof(stored) / sizeof(stored[0]); i++) {
		struct store_mailbox mb = {
			.smtp = (char *)(uintptr_t) "c@b.example",
			.state = STORE_MB_LIVE,
			.backend = (char *)(uintptr_t)stored[i],
		};
		json_t *j = api_json_user(&mb, NULL);

		CHECK(j != NULL);
		CHECK_STREQ(json_string_value(json_object_get(j, "backend")), shown[i]);
		CHECK_STREQ(json_string_value(json_object_get(j, "state")), "live");
		json_decref(j);
	}
}

TEST(backend_counts)
{
	struct store_mailbox mbs[] = {
		{.state = STORE_MB_LIVE, .backend = (char *)(uintptr_t) "graph"},
		{.state = STORE_MB_PARKED, .backend = (char *)(uintptr_t) "graph"},
		{.state = STORE_MB_LIVE, .backend = (char *)(uintptr_t) "ews"},
		{.state = STORE_MB_UNRESOLVED, .backend = NULL},
		{.state = STORE_MB_SYNCING, .backend = (char *)(uintptr_t) "graph"},
		{.state = STORE_MB_LIVE, .backend = (char *)(uintptr_t) "graph"},
	};
	struct api_backend_counts bc;

	CHECK_STREQ(api_backend_name(API_BACKEND_EWS), "ews");
	CHECK_STREQ(api_backend_name(API_BACKEND_GRAPH), "graph");
	api_backend_count(mbs, sizeof(mbs) / sizeof(mbs[0]), &bc);
	CHECK_EQ(bc.total[API_BACKEND_EWS], 2);
	CHECK_EQ(bc.total[API_BACKEND_GRAPH], 4);
	CHECK_EQ(bc.state[API_BACKEND_GRAPH][STORE_MB_LIVE], 2);
	CHECK_EQ(bc.state[API_BACKEND_GRAPH][STORE_MB_PARKED], 1);
	CHECK_EQ(bc.state[API_BACKEND_GRAPH][STORE_MB_SYNCING], 1);
	CHECK_EQ(bc.state[API_BACKEND_GRAPH][STORE_MB_UNRESOLVED], 0);
	CHECK_EQ(bc.state[API_BACKEND_EWS][STORE_MB_LIVE], 1);
	CHECK_EQ(bc.state[API_BACKEND_EWS][STORE_MB_UNRESOLVED], 1);
	CHECK_EQ(bc.state[API_BACKEND_EWS][STORE_MB_PARKED], 0);
	/* None at all: every count zeroed, whatever was there. */
	api_backend_count(NULL, 0, &bc);
	CHECK_EQ(bc.total[API_BACKEND_EWS] + bc.total[API_BACKEND_GRAPH], 0);
	CHECK_EQ(bc.state[API_BACKEND_GRAPH][STORE_MB_LIVE], 0);
}

TEST(time_range)
{
	json_t *j = api_json_time(0);

	CHECK(json_is_null(j));
	json_decref(j);
	j = api_json_time(INT64_MAX);
	CHECK(json_is_null(j));
	json_decref(j);
	j = api_json_time(T0);
	CHECK_STREQ(json_string_value(j), "2025-03-03T09:00:00Z");
	json_decref(j);
}

TEST(sse_event_format)
{
	struct store_presence_event ev = {
		.id = 42,
		.smtp = (char *)(uintptr_t) "user00001@contoso.example",
		.presence =
			{
				.state = (char *)(uintptr_t) "busy",
				.profile = (char *)(uintptr_t) "In a meeting",
				.forward = (char *)(uintptr_t) "voicemail",
				.subject = (char *)(uintptr_t) "Line 1\nLine 2",
				.since_utc = T0,
				.until_utc = T0 + 1800,
				.updated_utc = T0 + 5,
			},
		.reason = (char *)(uintptr_t) "appointment-start",
	};
	struct buf b;

	buf_init(&b, 4096);
	CHECK_EQ(api_sse_append_event(&b, &ev, NULL), 0);
	CHECK_STREQ(b.data,
	            "id: 42\nevent: presence\ndata: {\"id\":42,\"time\":\"2025-03-03T09:00:05Z\","
	            "\"user\":\"user00001@contoso.example\",\"state\":\"busy\",\"profile\":\"In a "
	            "meeting\",\"forward\":\"voicemail\",\"subject\":\"Line 1\\nLine 2\",\"since\":"
	            "\"2025-03-03T09:00:00Z\",\"until\":\"2025-03-03T09:30:00Z\",\"reason\":"
	            "\"appointment-start\"}\n\n");
	buf_free(&b);
}

TEST(sse_event_all_or_nothing)
{
	struct store_presence_event ev = {
		.id = 1,
		.smtp = (char *)(uintptr_t) "a@b",
		.presence = {.state = (char *)(uintptr_t) "free", .updated_utc = T0},
	};
	struct buf b;

	buf_init(&b, 64);
	CHECK_EQ(buf_append(&b, "x", 1, NULL), 0);
	CHECK_EQ(api_sse_append_event(&b, &ev, NULL), -EMSGSIZE);
	CHECK_EQ(b.len, 1);
	buf_free(&b);
}

int main(void)
{
	RUN(private_occurrence_has_no_details);
	RUN(public_occurrence_has_details);
	RUN(invalid_utf8_becomes_null);
	RUN(presence_nulls);
	RUN(user_object);
	RUN(user_backend);
	RUN(backend_counts);
	RUN(time_range);
	RUN(sse_event_format);
	RUN(sse_event_all_or_nothing);
	return harness_done();
}
