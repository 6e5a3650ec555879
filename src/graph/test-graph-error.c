/* SPDX-License-Identifier: MIT */
/*
 * test-graph-error.c: the error table (sorted, found without regard to case), Retry-After, and
 * the reading of answers: each step of graph-error.h with the error bodies of
 * tests/graph-fixtures/, inner codes, bodies that are not Graph errors, the bounded and
 * printable message, and every truncation of each fixture (still a verdict, never a crash).
 */
#include "graph/graph-error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "graph-test.h"
#include "harness.h"

/* The verdict of an answer with body text (NULL: none). */
static struct graph_verdict classify(enum graph_req req, long status, int64_t retry_after_ms,
                                     const char *body)
{
	struct graph_verdict v;
	size_t len = body != NULL ? strlen(body) : 0;
	char *copy = body != NULL ? graph_copy_n(body, len) : NULL;
	struct graph_answer a = {
		.req = req,
		.status = status,
		.retry_after_ms = retry_after_ms,
		.body = copy,
		.body_len = len,
	};

	graph_error_classify(&a, &v);
	free(copy);
	/* Whatever the answer, the verdict is complete. */
	CHECK((unsigned)v.cls < GRAPH_CLASS_COUNT);
	CHECK(v.reason != NULL);
	CHECK(v.msg[0] != '\0');
	return v;
}

/* The verdict of a fixture's body. */
static struct graph_verdict classify_fixture(enum graph_req req, long status, int64_t ra,
                                             const char *name)
{
	struct graph_verdict v = {0};
	size_t len;
	char *body = graph_fixture(name, &len);
	struct graph_answer a = {.req = req, .status = status, .retry_after_ms = ra};

	if (body == NULL)
		return v;
	a.body = body;
	a.body_len = len;
	graph_error_classify(&a, &v);
	free(body);
	return v;
}

TEST(table_sorted_and_found)
{
	size_t n;
	const struct graph_error_info *t = graph_error_table(&n);
	char lower[96];
	char upper[96];

	CHECK(n >= 30);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(t[i].code);

		CHECK(len < sizeof(lower));
		if (i > 0)
			CHECK(strcasecmp(t[i - 1].code, t[i].code) < 0);
		CHECK(graph_error_lookup(t[i].code) == &t[i]);
		for (size_t k = 0; k <= len; k++) {
			lower[k] = (char)(t[i].code[k] >= 'A' && t[i].code[k] <= 'Z'
			                          ? t[i].code[k] + 32
			                          : t[i].code[k]);
			upper[k] = (char)(t[i].code[k] >= 'a' && t[i].code[k] <= 'z'
			                          ? t[i].code[k] - 32
			                          : t[i].code[k]);
		}
		CHECK(graph_error_lookup(lower) == &t[i]);
		CHECK(graph_error_lookup(upper) == &t[i]);
		CHECK(t[i].reason != NULL && t[i].reason[0] != '\0');
		CHECK((unsigned)t[i].cls < GRAPH_CLASS_COUNT && t[i].cls != GRAPH_OK);
	}
	CHECK(graph_error_lookup("NoSuchCode") == NULL);
	CHECK(graph_error_lookup("") == NULL);
	CHECK(graph_error_lookup(NULL) == NULL);
	CHECK(graph_error_lookup("syncStateNotFoundX") == NULL);
	CHECK(graph_error_lookup("syncStateNotFoun") == NULL);
}

TEST(class_names)
{
	static const char *const want[GRAPH_CLASS_COUNT] = {
		"ok",      "transient", "throttled", "token",   "account",
		"mailbox", "gap",       "feed-lost", "refused",
	};

	for (int c = 0; c < (int)GRAPH_CLASS_COUNT; c++)
		CHECK_STREQ(graph_class_name((enum graph_class)c), want[c]);
	CHECK_STREQ(graph_class_name((enum graph_class)GRAPH_CLASS_COUNT), "unknown");
	CHECK_STREQ(graph_class_name((enum graph_class) - 1), "unknown");
}

TEST(retry_after)
{
	CHECK_EQ(graph_retry_after_ms("3", 1), 3000);
	CHECK_EQ(graph_retry_after_ms("0", 1), 0);
	CHECK_EQ(graph_retry_after_ms(" 10\t", 4), 10000);
	CHECK_EQ(graph_retry_after_ms("900", 3), GRAPH_MAX_RETRY_AFTER_MS);
	CHECK_EQ(graph_retry_after_ms("901", 3), GRAPH_MAX_RETRY_AFTER_MS);
	CHECK_EQ(graph_retry_after_ms("99999999999999999999999", 23), GRAPH_MAX_RETRY_AFTER_MS);
	/* Only len bytes count. */
	CHECK_EQ(graph_retry_after_ms("12x", 2), 12000);
	CHECK_EQ(graph_retry_after_ms("", 0), -1);
	CHECK_EQ(graph_retry_after_ms("  ", 2), -1);
	CHECK_EQ(graph_retry_after_ms("-1", 2), -1);
	CHECK_EQ(graph_retry_after_ms("1.5", 3), -1);
	CHECK_EQ(graph_retry_after_ms("3 s", 3), -1);
	CHECK_EQ(graph_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", 29), -1);
	CHECK_EQ(graph_retry_after_ms(NULL, 0), -1);
}

TEST(no_answer_and_success)
{
	struct graph_answer a = {.status = 0, .retry_after_ms = -1, .transport_msg = "timed out\n"};
	struct graph_verdict v;

	graph_error_classify(&a, &v);
	CHECK_EQ(v.cls, GRAPH_TRANSIENT);
	CHECK_STREQ(v.msg, "transport: timed out ");
	a.transport_msg = NULL;
	graph_error_classify(&a, &v);
	CHECK_STREQ(v.msg, "transport: no answer");
	v = classify(GRAPH_REQ_READ, 200, -1, "{\"value\": []}");
	CHECK_EQ(v.cls, GRAPH_OK);
	CHECK_EQ(v.flags, 0);
	v = classify(GRAPH_REQ_SUB_CREATE, 201, -1, NULL);
	CHECK_EQ(v.cls, GRAPH_OK);
	v = classify(GRAPH_REQ_SUB_DELETE, 204, -1, NULL);
	CHECK_EQ(v.cls, GRAPH_OK);
	CHECK_EQ(v.back_off_ms, -1);
}

TEST(fixtures)
{
	struct graph_verdict v;

	v = classify_fixture(GRAPH_REQ_READ, 401, -1, "error-invalid-token.json");
	CHECK_EQ(v.cls, GRAPH_TOKEN);
	CHECK_STREQ(v.code, "InvalidAuthenticationToken");
	CHECK_STREQ(v.msg, "InvalidAuthenticationToken: Lifetime validation failed, the token is "
	                   "expired.");
	CHECK(v.fix == NULL);

	v = classify_fixture(GRAPH_REQ_READ, 403, -1, "error-access-denied.json");
	CHECK_EQ(v.cls, GRAPH_ACCOUNT);
	CHECK_STREQ(v.code, "ErrorAccessDenied");
	CHECK(v.fix != NULL && strstr(v.fix, "Calendars.Read") != NULL);
	CHECK(strstr(v.fix, "consent") != NULL &&
	      strstr(v.fix, "application access policy") != NULL);
	CHECK(strstr(v.fix, "RBAC") != NULL);

	v = classify_fixture(GRAPH_REQ_READ, 404, -1, "error-mailbox-not-enabled.json");
	CHECK_EQ(v.cls, GRAPH_MAILBOX);
	CHECK_EQ(v.flags, GRAPH_VF_REHOME);
	CHECK(v.fix != NULL && strstr(v.fix, "license") != NULL);

	v = classify_fixture(GRAPH_REQ_USER, 404, -1, "error-resource-not-found.json");
	CHECK_EQ(v.cls, GRAPH_MAILBOX);
	CHECK_EQ(v.flags, GRAPH_VF_GONE);
	CHECK_STREQ(v.msg, "ResourceNotFound: Resource could not be discovered.");

	/* Graph writes this code capitalised; the table has the docs' casing. */
	v = classify_fixture(GRAPH_REQ_DELTA, 410, -1, "error-sync-state-not-found.json");
	CHECK_EQ(v.cls, GRAPH_GAP);
	CHECK_STREQ(v.code, "SyncStateNotFound");

	v = classify_fixture(GRAPH_REQ_READ, 429, 3000, "error-throttled.json");
	CHECK_EQ(v.cls, GRAPH_THROTTLED);
	CHECK_EQ(v.back_off_ms, 3000);
	CHECK_STREQ(v.code, "ApplicationThrottled");

	/* A code not in the table: the status decides. */
	v = classify_fixture(GRAPH_REQ_OTHER, 416, -1, "error-docs.json");
	CHECK_EQ(v.cls, GRAPH_REFUSED);
	CHECK_STREQ(v.msg, "invalidRange: Uploaded fragment overlaps with existing data.");
}

TEST(statuses_first)
{
	struct graph_verdict v;
	const char *busy = "{\"error\":{\"code\":\"serviceNotAvailable\",\"message\":\"busy\"}}";
	const char *gone = "{\"error\":{\"code\":\"syncStateNotFound\",\"message\":\"x\"}}";

	/* 401 is TOKEN whatever the code says. */
	v = classify(GRAPH_REQ_READ, 401, -1, gone);
	CHECK_EQ(v.cls, GRAPH_TOKEN);
	v = classify(GRAPH_REQ_READ, 401, -1, NULL);
	CHECK_EQ(v.cls, GRAPH_TOKEN);
	CHECK_STREQ(v.msg, "HTTP 401");
	/* 429 is THROTTLED, with or without a pause. */
	v = classify(GRAPH_REQ_READ, 429, -1, NULL);
	CHECK_EQ(v.cls, GRAPH_THROTTLED);
	CHECK_EQ(v.back_off_ms, -1);
	v = classify(GRAPH_REQ_READ, 429, GRAPH_MAX_RETRY_AFTER_MS * 3, NULL);
	CHECK_EQ(v.back_off_ms, GRAPH_MAX_RETRY_AFTER_MS);
	/* 5xx: THROTTLED with a Retry-After, else TRANSIENT. */
	v = classify(GRAPH_REQ_READ, 503, 10000, busy);
	CHECK_EQ(v.cls, GRAPH_THROTTLED);
	CHECK_EQ(v.back_off_ms, 10000);
	v = classify(GRAPH_REQ_READ, 509, 0, NULL);
	CHECK_EQ(v.cls, GRAPH_THROTTLED);
	CHECK_EQ(v.back_off_ms, 0);
	v = classify(GRAPH_REQ_READ, 503, -1, busy);
	CHECK_EQ(v.cls, GRAPH_TRANSIENT);
	CHECK_EQ(v.back_off_ms, -1);
	CHECK_STREQ(v.msg, "serviceNotAvailable: busy");
	v = classify(GRAPH_REQ_READ, 500, -1, NULL);
	CHECK_EQ(v.cls, GRAPH_TRANSIENT);
	v = classify(GRAPH_REQ_READ, 504, -1, "<html>gateway</html>");
	CHECK_EQ(v.cls, GRAPH_TRANSIENT);
	CHECK_STREQ(v.msg, "HTTP 504");
	/* A 4xx with a Retry-After is not throttling. */
	v = classify(GRAPH_REQ_READ, 400, 5000, NULL);
	CHECK_EQ(v.cls, GRAPH_REFUSED);
	CHECK_EQ(v.back_off_ms, -1);
}

TEST(subscription_404s)
{
	const char *nf =
		"{\"error\":{\"code\":\"ResourceNotFound\",\"message\":\"The object was not "
		"found.\"}}";
	struct graph_verdict v;

	v = classify(GRAPH_REQ_SUB_RENEW, 404, -1, nf);
	CHECK_EQ(v.cls, GRAPH_FEED_LOST);
	CHECK(v.flags & GRAPH_VF_RESYNC);
	v = classify(GRAPH_REQ_SUB_RENEW, 404, -1, NULL);
	CHECK_EQ(v.cls, GRAPH_FEED_LOST);
	v = classify(GRAPH_REQ_SUB_DELETE, 404, -1, nf);
	CHECK_EQ(v.cls, GRAPH_OK);
	CHECK_EQ(v.flags, GRAPH_VF_ALREADY_GONE);
	/* Creating one for a mailbox that is not there: the mailbox is gone. */
	v = classify(GRAPH_REQ_SUB_CREATE, 404, -1, nf);
	CHECK_EQ(v.cls, GRAPH_MAILBOX);
	CHECK_EQ(v.flags, GRAPH_VF_GONE);
}

TEST(status_fallbacks)
{
	struct graph_verdict v;

	v = classify(GRAPH_REQ_READ, 403, -1, NULL);
	CHECK_EQ(v.cls, GRAPH_ACCOUNT);
	CHECK(v.fix != NULL);
	v = classify(GRAPH_REQ_READ, 404, -1, NULL);
	CHECK_EQ(v.cls, GRAPH_MAILBOX);
	CHECK_EQ(v.flags, GRAPH_VF_GONE);
	v = classify(GRAPH_REQ_OTHER, 404, -1, NULL);
	CHECK_EQ(v.cls, GRAPH_REFUSED);
	v = classify(GRAPH_REQ_DELTA, 410, -1, NULL);
	CHECK_EQ(v.cls, GRAPH_GAP);
	v = classify(GRAPH_REQ_READ, 410, -1, NULL);
	CHECK_EQ(v.cls, GRAPH_REFUSED);
	v = classify(GRAPH_REQ_READ, 408, -1, NULL);
	CHECK_EQ(v.cls, GRAPH_TRANSIENT);
	v = classify(GRAPH_REQ_READ, 400, -1, NULL);
	CHECK_EQ(v.cls, GRAPH_REFUSED);
	CHECK(v.fix != NULL);
	v = classify(GRAPH_REQ_READ, 302, -1, NULL);
	CHECK_EQ(v.cls, GRAPH_REFUSED);
	/* A known code wins over the status, wherever it is in the chain. */
	v = classify(GRAPH_REQ_READ, 400, -1,
	             "{\"error\":{\"code\":\"ErrorInvalidUser\",\"message\":\"The requested user "
	             "'x@y' is invalid.\"}}");
	CHECK_EQ(v.cls, GRAPH_MAILBOX);
	CHECK_EQ(v.flags, GRAPH_VF_GONE);
	v = classify(
		GRAPH_REQ_READ, 500, -1,
		"{\"error\":{\"code\":\"ErrorMailboxMoveInProgress\",\"message\":\"moving\"}}");
	CHECK_EQ(v.cls, GRAPH_TRANSIENT);
	CHECK_EQ(v.flags, GRAPH_VF_REHOME | GRAPH_VF_RESYNC);
	v = classify(
		GRAPH_REQ_SUB_CREATE, 400, -1,
		"{\"error\":{\"code\":\"ValidationError\",\"message\":\"Subscription validation "
		"request failed. Notification endpoint must respond with 200 OK to validation "
		"request.\"}}");
	CHECK_EQ(v.cls, GRAPH_REFUSED);
	CHECK(strstr(v.reason, "validationToken") != NULL);
}

TEST(inner_codes)
{
	struct graph_verdict v;

	/* The innermost known code is the one acted on... */
	v = classify(
		GRAPH_REQ_DELTA, 400, -1,
		"{\"error\":{\"code\":\"BadRequest\",\"message\":\"m\",\"innerError\":{\"code\":"
		"\"resyncRequired\",\"innerError\":{\"code\":\"someDetailWeDoNotKnow\"}}}}");
	CHECK_EQ(v.cls, GRAPH_GAP);
	CHECK_STREQ(v.code, "resyncRequired");
	CHECK_STREQ(v.msg, "resyncRequired: m");
	/* ...OData's spelling too... */
	v = classify(GRAPH_REQ_READ, 500, -1,
	             "{\"error\":{\"code\":\"generalException\",\"innererror\":{\"code\":"
	             "\"ErrorServerBusy\"}}}");
	CHECK_EQ(v.cls, GRAPH_THROTTLED);
	CHECK_EQ(v.back_off_ms, -1);
	/* ...and an unknown one is passed over for a known outer one. */
	v = classify(
		GRAPH_REQ_READ, 503, -1,
		"{\"error\":{\"code\":\"serviceNotAvailable\",\"innerError\":{\"code\":\"x\"}}}");
	CHECK_EQ(v.cls, GRAPH_TRANSIENT);
	CHECK_STREQ(v.code, "serviceNotAvailable");
	/* An innerError that is no object ends the chain. */
	v = classify(GRAPH_REQ_READ, 403, -1,
	             "{\"error\":{\"code\":\"accessDenied\",\"innerError\":\"resyncRequired\"}}");
	CHECK_EQ(v.cls, GRAPH_ACCOUNT);
}

TEST(odd_bodies)
{
	char big[GRAPH_MAX_ERROR_BODY + 64];
	struct graph_verdict v;

	/* The token endpoint's shape: error as a string. */
	v = classify(GRAPH_REQ_OTHER, 400, -1, "{\"error\":\"invalid_grant\"}");
	CHECK_STREQ(v.code, "invalid_grant");
	CHECK_EQ(v.cls, GRAPH_REFUSED);
	v = classify(GRAPH_REQ_READ, 403, -1, "not json");
	CHECK_EQ(v.cls, GRAPH_ACCOUNT);
	CHECK_STREQ(v.msg, "HTTP 403");
	v = classify(GRAPH_REQ_READ, 403, -1, "[1,2]");
	CHECK_EQ(v.cls, GRAPH_ACCOUNT);
	v = classify(GRAPH_REQ_READ, 403, -1, "{\"error\":{\"code\":7,\"message\":[]}}");
	CHECK_STREQ(v.code, "");
	CHECK_STREQ(v.msg, "HTTP 403");
	v = classify(GRAPH_REQ_READ, 404, -1, "{\"error\":{\"message\":\"gone\"}}");
	CHECK_STREQ(v.msg, "HTTP 404: gone");
	/* Duplicate members make it unreadable, as everywhere in graph/. */
	v = classify(GRAPH_REQ_READ, 410, -1,
	             "{\"error\":{\"code\":\"syncStateNotFound\",\"code\":\"x\"}}");
	CHECK_EQ(v.cls, GRAPH_REFUSED);
	/* A body over the cap is not read: the status decides. */
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "{\"error\":{\"code\":\"syncStateNotFound\"}}", 38);
	v = classify(GRAPH_REQ_READ, 410, -1, big);
	CHECK_EQ(v.cls, GRAPH_REFUSED);
	CHECK_STREQ(v.code, "");
}

TEST(message_printable_and_bounded)
{
	char body[2048];
	struct graph_verdict v;

	v = classify(GRAPH_REQ_READ, 400, -1,
	             "{\"error\":{\"code\":\"BadRequest\",\"message\":\"line1\\nline2\\u0007\\u007f"
	             "\"}}");
	CHECK_STREQ(v.text, "line1 line2  ");
	CHECK_STREQ(v.msg, "BadRequest: line1 line2  ");
	/* A long message is cut, on a UTF-8 boundary (here a 3-byte character). */
	{
		size_t n = (size_t)snprintf(body, sizeof(body),
		                            "{\"error\":{\"code\":\"BadRequest\",\"message\":\"");

		while (n < 1500) {
			memcpy(body + n, "\xe2\x82\xac", 3);
			n += 3;
		}
		memcpy(body + n, "\"}}", 4);
	}
	v = classify(GRAPH_REQ_READ, 400, -1, body);
	CHECK(strlen(v.text) < sizeof(v.text));
	CHECK(strlen(v.text) % 3 == 0);
	CHECK(strlen(v.msg) < sizeof(v.msg));
	CHECK(strncmp(v.msg, "BadRequest: \xe2\x82\xac", 15) == 0);
}

/* Every prefix of a fixture still gives a complete verdict (the whole: the fixture's). */
static void check_truncations(const char *name, long status, enum graph_class whole)
{
	size_t len;
	char *body = graph_fixture(name, &len);
	size_t end = body != NULL ? graph_doc_end(body, len) : 0;
	size_t wrong = 0;

	for (size_t i = 0; i <= len && body != NULL; i++) {
		char *copy = graph_copy_n(body, i);
		struct graph_answer a = {.req = GRAPH_REQ_DELTA,
		                         .status = status,
		                         .retry_after_ms = -1,
		                         .body = copy,
		                         .body_len = i};
		struct graph_verdict v;

		graph_error_classify(&a, &v);
		free(copy);
		if ((unsigned)v.cls >= GRAPH_CLASS_COUNT || v.reason == NULL || v.msg[0] == '\0')
			wrong++;
		/* A prefix is no document: only the status reads it. */
		if (i < end && v.code[0] != '\0')
			wrong++;
		if (i >= end && v.cls != whole)
			wrong++;
	}
	CHECK_EQ(wrong, 0);
	free(body);
}

TEST(truncations)
{
	check_truncations("error-invalid-token.json", 401, GRAPH_TOKEN);
	check_truncations("error-access-denied.json", 403, GRAPH_ACCOUNT);
	check_truncations("error-mailbox-not-enabled.json", 404, GRAPH_MAILBOX);
	check_truncations("error-resource-not-found.json", 404, GRAPH_MAILBOX);
	check_truncations("error-sync-state-not-found.json", 410, GRAPH_GAP);
	check_truncations("error-throttled.json", 429, GRAPH_THROTTLED);
	check_truncations("error-docs.json", 416, GRAPH_REFUSED);
}

int main(void)
{
	RUN(table_sorted_and_found);
	RUN(class_names);
	RUN(retry_after);
	RUN(no_answer_and_success);
	RUN(fixtures);
	RUN(statuses_first);
	RUN(subscription_404s);
	RUN(status_fallbacks);
	RUN(inner_codes);
	RUN(odd_bodies);
	RUN(message_printable_and_bounded);
	RUN(truncations);
	return harness_done();
}
