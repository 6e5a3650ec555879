/* SPDX-License-Identifier: MIT */
/*
 * test-graph-batch.c: the $batch body (read back with jansson: ids, methods, relative urls,
 * headers, bodies, the Content-Type Graph needs) and every request it refuses; the batch
 * answers of tests/graph-fixtures/ matched back by id in any order, each response's verdict
 * and page, missing and unknown ids, answers that are no batch answer, and every truncation.
 */
#include "graph/graph-batch.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "cal/occurrence.h"
#include "graph-test.h"
#include "graph/graph-error.h"
#include "graph/graph-event.h"
#include "graph/graph-url.h"
#include "harness.h"

static const struct graph_batch_header prefer[] = {
	{"Prefer", "outlook.timezone=\"UTC\", odata.maxpagesize=100"},
};

static const struct graph_batch_header typed[] = {
	{"content-type", "application/json; charset=utf-8"},
};

TEST(build)
{
	const struct graph_batch_req reqs[] = {
		{.id = "1",
	         .method = "GET",
	         .url = "/users/AdeleV%40contoso.com/calendarView/delta?startDateTime=2016-12-01T00%3A"
	                "00%3A00Z&endDateTime=2016-12-30T00%3A00%3A00Z",
	         .headers = prefer,
	         .n_headers = 1},
		{.id = "sub-2",
	         .method = "PATCH",
	         .url = "/subscriptions/7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
	         .body_json = "{\"expirationDateTime\":\"2016-11-22T18:23:45Z\"}"},
		{.id = "3",
	         .method = "POST",
	         .url = "/subscriptions",
	         .headers = typed,
	         .n_headers = 1,
	         .body_json = "{\"changeType\":\"created\"}"},
		{.id = "4", .method = "DELETE", .url = "/subscriptions/x"},
	};
	struct err err = {0};
	char *body = NULL;
	json_t *doc;
	json_t *r;

	CHECK_EQ(graph_batch_build(reqs, 4, &body, &err), 0);
	doc = body != NULL ? json_loads(body, JSON_REJECT_DUPLICATES, NULL) : NULL;
	CHECK(doc != NULL);
	CHECK_EQ(json_object_size(doc), 1);
	CHECK_EQ(json_array_size(json_object_get(doc, "requests")), 4);
	r = json_array_get(json_object_get(doc, "requests"), 0);
	CHECK_STREQ(json_string_value(json_object_get(r, "id")), "1");
	CHECK_STREQ(json_string_value(json_object_get(r, "method")), "GET");
	CHECK_STREQ(json_string_value(json_object_get(r, "url")), reqs[0].url);
	CHECK_STREQ(json_string_value(json_object_get(json_object_get(r, "headers"), "Prefer")),
	            prefer[0].value);
	CHECK(json_object_get(r, "body") == NULL);
	r = json_array_get(json_object_get(doc, "requests"), 1);
	/* A body gets the Content-Type Graph requires with one. */
	CHECK_STREQ(
		json_string_value(json_object_get(json_object_get(r, "headers"), "Content-Type")),
		"application/json");
	CHECK_STREQ(json_string_value(
			    json_object_get(json_object_get(r, "body"), "expirationDateTime")),
	            "2016-11-22T18:23:45Z");
	r = json_array_get(json_object_get(doc, "requests"), 2);
	/* ...unless it has one, in any case. */
	CHECK_EQ(json_object_size(json_object_get(r, "headers")), 1);
	CHECK_STREQ(
		json_string_value(json_object_get(json_object_get(r, "headers"), "content-type")),
		typed[0].value);
	r = json_array_get(json_object_get(doc, "requests"), 3);
	CHECK(json_object_get(r, "headers") == NULL);
	CHECK_EQ(json_object_size(r), 3);
	json_decref(doc);
	free(body);
}

TEST(build_limits)
{
	struct graph_batch_req reqs[GRAPH_BATCH_MAX + 1];
	char ids[GRAPH_BATCH_MAX + 1][8];
	struct err err = {0};
	char *body = NULL;

	for (size_t i = 0; i <= GRAPH_BATCH_MAX; i++) {
		snprintf(ids[i], sizeof(ids[i]), "%zu", i);
		reqs[i] = (struct graph_batch_req){.id = ids[i], .method = "GET", .url = "/me"};
	}
	CHECK_EQ(graph_batch_build(reqs, GRAPH_BATCH_MAX, &body, &err), 0);
	free(body);
	body = NULL;
	CHECK_EQ(graph_batch_build(reqs, GRAPH_BATCH_MAX + 1, &body, &err), -EINVAL);
	CHECK(strstr(err.msg, "1 to 20") != NULL);
	CHECK_EQ(graph_batch_build(reqs, 0, &body, &err), -EINVAL);
	CHECK(body == NULL);
}

TEST(build_refused)
{
	static const struct graph_batch_header colon[] = {{"Pre:fer", "x"}};
	static const struct graph_batch_header ctl[] = {{"Prefer", "a\r\nX-Injected: 1"}};
	static const struct graph_batch_header twice[] = {{"Prefer", "a"}, {"prefer", "b"}};
	static const struct graph_batch_header noval[] = {{"Prefer", NULL}};
	static const struct graph_batch_header utf[] = {{"Prefer", "\xff"}};

	static const struct {
		struct graph_batch_req r;
		const char *says;
	} cases[] = {
		{{.id = "", .method = "GET", .url = "/me"}, "the id"},
		{{.id = NULL, .method = "GET", .url = "/me"}, "the id"},
		{{.id = "a b", .method = "GET", .url = "/me"}, "the id"},
		{{.id = "1", .method = "get", .url = "/me"}, "method"},
		{{.id = "1", .method = "HEAD", .url = "/me"}, "method"},
		{{.id = "1", .method = NULL, .url = "/me"}, "method"},
		{{.id = "1", .method = "GET", .url = ""}, "relative"},
		{{.id = "1", .method = "GET", .url = NULL}, "relative"},
		{{.id = "1", .method = "GET", .url = "https://evil.example/v1.0/me"}, "relative"},
		{{.id = "1", .method = "GET", .url = "//evil.example/me"}, "relative"},
		{{.id = "1", .method = "GET", .url = "/me x"}, "relative"},
		{{.id = "1", .method = "GET", .url = "/me\n"}, "relative"},
		{{.id = "1", .method = "GET", .url = "/me\xff"}, "UTF-8"},
		{{.id = "1", .method = "GET", .url = "/me", .headers = colon, .n_headers = 1},
	         "malformed"},
		{{.id = "1", .method = "GET", .url = "/me", .headers = ctl, .n_headers = 1},
	         "malformed"},
		{{.id = "1", .method = "GET", .url = "/me", .headers = noval, .n_headers = 1},
	         "malformed"},
		{{.id = "1", .method = "GET", .url = "/me", .headers = twice, .n_headers = 2},
	         "twice"},
		{{.id = "1", .method = "GET", .url = "/me", .headers = utf, .n_headers = 1},
	         "UTF-8"},
		{{.id = "1", .method = "POST", .url = "/me", .body_json = "[1]"},
	         "not a JSON object"},
		{{.id = "1", .method = "POST", .url = "/me", .body_json = "{"},
	         "not a JSON object"},
		{{.id = "1", .method = "POST", .url = "/me", .body_json = "{\"a\":1,\"a\":2}"},
	         "not a JSON object"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct err err = {0};
		char *body = NULL;

		CHECK_EQ(graph_batch_build(&cases[i].r, 1, &body, &err), -EINVAL);
		CHECK(body == NULL);
		if (strstr(err.msg, cases[i].says) == NULL)
			fprintf(stderr, "case %zu: '%s'\n", i, err.msg);
		CHECK(strstr(err.msg, cases[i].says) != NULL);
	}
	{
		/* Ids are compared without regard to case, as Graph does. */
		const struct graph_batch_req two[] = {
			{.id = "a", .method = "GET", .url = "/me"},
			{.id = "A", .method = "GET", .url = "/me"},
		};
		struct err err = {0};
		char *body = NULL;

		CHECK_EQ(graph_batch_build(two, 2, &body, &err), -EINVAL);
		CHECK(strstr(err.msg, "taken") != NULL);
	}
}

/* Reads a fixture as the answer to ids. */
static int read_fixture(const char *name, const char *const *ids, size_t n,
                        struct graph_batch_answer *a, struct err *err)
{
	size_t len;
	char *json = graph_fixture(name, &len);
	int rc;

	if (json == NULL)
		return -ENOENT;
	rc = graph_batch_read(json, len, ids, n, a, err);
	free(json);
	return rc;
}

static struct graph_verdict verdict_of(const struct graph_batch_resp *r)
{
	struct graph_answer a = {
		.req = GRAPH_REQ_READ,
		.status = r->status,
		.retry_after_ms = r->retry_after_ms,
		.body = r->body,
		.body_len = r->body_len,
	};
	struct graph_verdict v;

	graph_error_classify(&a, &v);
	return v;
}

TEST(read_docs_answer)
{
	static const char *const ids[] = {"1", "2", "3", "4", "5", "6"};
	struct graph_batch_answer a;
	struct err err = {0};
	json_t *body;

	if (read_fixture("batch-answer.json", ids, 6, &a, &err) != 0) {
		CHECK(false);
		return;
	}
	CHECK_EQ(a.n, 6);
	CHECK_EQ(a.n_unknown, 0);
	for (size_t i = 0; i < 5; i++) {
		CHECK(a.resp[i].found);
		CHECK(a.resp[i].error == NULL);
		CHECK(a.resp[i].body != NULL && !a.resp[i].body_is_text);
		CHECK_EQ(a.resp[i].retry_after_ms, -1);
	}
	CHECK_EQ(a.resp[0].status, 200);
	CHECK_EQ(a.resp[1].status, 403);
	CHECK_EQ(a.resp[2].status, 403);
	CHECK_EQ(a.resp[3].status, 405);
	CHECK_EQ(a.resp[4].status, 200);
	CHECK_STREQ(a.resp[1].content_type, "application/json");
	body = json_loadb(a.resp[4].body, a.resp[4].body_len, JSON_REJECT_DUPLICATES, NULL);
	CHECK_EQ(json_integer_value(json_object_get(body, "@odata.count")), 36);
	json_decref(body);
	CHECK_EQ(verdict_of(&a.resp[2]).cls, GRAPH_ACCOUNT);
	CHECK_STREQ(verdict_of(&a.resp[2]).code, "Authorization_RequestDenied");
	CHECK_EQ(verdict_of(&a.resp[1]).cls, GRAPH_ACCOUNT); /* code "": the 403 decides */
	CHECK_EQ(verdict_of(&a.resp[3]).cls, GRAPH_REFUSED);
	/* The request the answer does not mention. */
	CHECK(!a.resp[5].found);
	CHECK_EQ(a.resp[5].status, 0);
	CHECK_STREQ(a.resp[5].error, "batch: no response for request '6'");
	graph_batch_answer_clear(&a);
	CHECK(a.resp == NULL && a.n == 0);
	graph_batch_answer_clear(NULL);
}

TEST(read_throttled_answer)
{
	static const char *const ids[] = {"2", "1"};
	struct graph_batch_answer a;
	struct graph_page p;
	struct graph_verdict v;
	struct err err = {0};

	if (read_fixture("batch-throttled.json", ids, 2, &a, &err) != 0) {
		CHECK(false);
		return;
	}
	v = verdict_of(&a.resp[0]);
	CHECK_EQ(v.cls, GRAPH_THROTTLED);
	CHECK_EQ(v.back_off_ms, 3000);
	CHECK_STREQ(v.code, "ApplicationThrottled");
	/* The 200's body is a calendarView page like any other. */
	CHECK_EQ(a.resp[1].status, 200);
	CHECK_EQ(graph_page_read(a.resp[1].body, a.resp[1].body_len, GRAPH_PAGE_VIEW,
	                         GRAPH_DEFAULT_BASE, &p, &err),
	         0);
	CHECK_EQ(p.n_occ, 1);
	CHECK_STREQ(p.n_occ == 1 ? p.occ[0].subject : NULL, "Prepare food");
	graph_page_clear(&p);
	graph_batch_answer_clear(&a);
}

static int read_str(const char *json, const char *const *ids, size_t n,
                    struct graph_batch_answer *a, struct err *err)
{
	char *copy = graph_copy_n(json, strlen(json));
	int rc = graph_batch_read(copy, strlen(json), ids, n, a, err);

	free(copy);
	if (rc != 0) {
		CHECK(rc == -EPROTO || rc == -EMSGSIZE);
		CHECK(a->resp == NULL && a->n == 0);
		CHECK(err->msg[0] != '\0');
	}
	return rc;
}

TEST(read_matching)
{
	static const char *const ids[] = {"Sub-1", "2"};
	struct graph_batch_answer a;
	struct err err = {0};

	/* Ids match without regard to case; unknown ones are counted; a string body is text. */
	CHECK_EQ(read_str("{\"responses\":[{\"id\":\"x\",\"status\":200},{\"id\":\"sub-1\","
	                  "\"status\":204,\"headers\":{\"RETRY-AFTER\":\"7\"},\"body\":\"aGk=\"},"
	                  "{\"id\":\"2\",\"status\":503,\"body\":null}]}",
	                  ids, 2, &a, &err),
	         0);
	CHECK_EQ(a.n_unknown, 1);
	CHECK_EQ(a.resp[0].status, 204);
	CHECK_EQ(a.resp[0].retry_after_ms, 7000);
	CHECK(a.resp[0].body_is_text);
	CHECK_STREQ(a.resp[0].body, "aGk=");
	CHECK_EQ(a.resp[0].body_len, 4);
	CHECK(a.resp[1].found && a.resp[1].body == NULL);
	graph_batch_answer_clear(&a);
	/* No requests at all: every entry is unknown. */
	CHECK_EQ(read_str("{\"responses\":[{\"id\":\"x\",\"status\":200}]}", NULL, 0, &a, &err), 0);
	CHECK_EQ(a.n_unknown, 1);
	graph_batch_answer_clear(&a);
}

TEST(read_refused)
{
	static const char *const ids[] = {"1", "2"};

	static const struct {
		const char *json;
		const char *says;
	} cases[] = {
		{"[]", "not an object"},
		{"{}", "no 'responses'"},
		{"{\"responses\":{}}", "not an array"},
		{"{\"responses\":[7]}", "responses[0]: a number"},
		{"{\"responses\":[{\"status\":200}]}", "'id' is missing"},
		{"{\"responses\":[{\"id\":1,\"status\":200}]}", "'id' is a number"},
		{"{\"responses\":[{\"id\":\"1\"}]}", "'status' is missing"},
		{"{\"responses\":[{\"id\":\"1\",\"status\":\"200\"}]}", "'status' is a string"},
		{"{\"responses\":[{\"id\":\"1\",\"status\":99}]}", "no HTTP status"},
		{"{\"responses\":[{\"id\":\"1\",\"status\":600}]}", "no HTTP status"},
		{"{\"responses\":[{\"id\":\"1\",\"status\":200.5}]}", "not an integer"},
		{"{\"responses\":[{\"id\":\"1\",\"status\":200,\"headers\":[]}]}",
	         "'headers' is an array"},
		{"{\"responses\":[{\"id\":\"1\",\"status\":200,\"headers\":{\"Retry-After\":3}}]}",
	         "header 'Retry-After' is a number"},
		{"{\"responses\":[{\"id\":\"x\",\"status\":0}]}", "no HTTP status"},
		{"{\"responses\":[{\"id\":\"1\",\"status\":200},{\"id\":\"1\",\"status\":200}]}",
	         "a second response for request '1'"},
		{"{\"responses\":[],\"responses\":[]}", "not JSON"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct graph_batch_answer a;
		struct err err = {0};

		CHECK_EQ(read_str(cases[i].json, ids, 2, &a, &err), -EPROTO);
		if (strstr(err.msg, cases[i].says) == NULL)
			fprintf(stderr, "case %zu: '%s'\n", i, err.msg);
		CHECK(strstr(err.msg, cases[i].says) != NULL);
	}
}

static size_t check_truncations(const char *name, const char *const *ids, size_t n)
{
	size_t len;
	char *json = graph_fixture(name, &len);
	size_t end, parsed = 0;

	if (json == NULL)
		return 0;
	end = graph_doc_end(json, len);
	for (size_t i = 0; i <= len; i++) {
		char *c = graph_copy_n(json, i);
		struct graph_batch_answer a;
		struct err err = {0};
		int rc = graph_batch_read(c, i, ids, n, &a, &err);

		free(c);
		if (rc == 0) {
			parsed++;
			graph_batch_answer_clear(&a);
		} else {
			CHECK(a.resp == NULL && err.msg[0] != '\0');
		}
	}
	CHECK_EQ(parsed, len - end + 1);
	free(json);
	return len;
}

TEST(truncations)
{
	static const char *const ids[] = {"1", "2", "3", "4", "5"};
	size_t bytes = check_truncations("batch-answer.json", ids, 5);

	bytes += check_truncations("batch-throttled.json", ids, 2);
	CHECK(bytes > 5000);
}

int main(void)
{
	RUN(build);
	RUN(build_limits);
	RUN(build_refused);
	RUN(read_docs_answer);
	RUN(read_throttled_answer);
	RUN(read_matching);
	RUN(read_refused);
	RUN(truncations);
	return harness_done();
}
