/* SPDX-License-Identifier: MIT */
/* test-api-status.c: the GET /v1/status document from known store rows, engine and webhooks. */
#include "api/api-status.h"

#include <jansson.h>
#include <string.h>

#include "harness.h"
#include "store/store.h"
#include "sync/engine.h"
#include "webhook/webhook.h"

static const char *str_at(json_t *doc, const char *path_a, size_t i, const char *key)
{
	return json_string_value(
		json_object_get(json_array_get(json_object_get(doc, path_a), i), key));
}

static json_int_t int_at(json_t *doc, const char *path_a, size_t i, const char *key)
{
	return json_integer_value(
		json_object_get(json_array_get(json_object_get(doc, path_a), i), key));
}

TEST(counts_parked_groups_errors_webhooks)
{
	static char a[] = "a@x.example", b[] = "B@x.example", c[] = "c@x.example",
		    d[] = "d@x.example", e[] = "e@x.example";
	static char gone[] = "ErrorNonExistentMailbox: gone",
		    denied[] = "ErrorImpersonateUserDenied: no";
	struct store_mailbox mbs[] = {
		{.smtp = c, .state = STORE_MB_LIVE},
		{.smtp = b, .state = STORE_MB_PARKED, .parked_reason = denied},
		{.smtp = a, .state = STORE_MB_PARKED, .parked_reason = gone},
		{.smtp = d, .state = STORE_MB_SYNCING},
		{.smtp = e, .state = STORE_MB_UNRESOLVED},
	};
	struct sync_group_info groups[2] = {
		{.key = "mbx1.contoso.example",
	         .anchor = "c@x.example",
	         .members = 2,
	         .subscribed = 2,
	         .connected = true},
		{.key = "mbx2.contoso.example",
	         .anchor = "d@x.example",
	         .members = 1,
	         .failures = 3},
	};
	struct sync_status st = {.groups = groups, .n_groups = 2, .n_errors = 2};
	struct webhook_stats ws = {
		.n = 1,
		.targets = {{.url = "https://u:p@h.example/hook?k=secret",
	                     .delivered = 7,
	                     .failures = 2,
	                     .dropped = 1,
	                     .pending = 3}},
	};
	json_t *doc, *m;
	char *dump;

	st.stats.streams_open = 1;
	st.stats.in_flight = 2;
	st.stats.queued = 3;
	st.stats.backing_off = 4;
	st.stats.presence_changes = 5;
	st.errors[0] = (struct sync_error_info){
		.time_utc = 1741006805, .what = "stream mbx2", .message = "connection reset"};
	st.errors[1] = (struct sync_error_info){.time_utc = 1741006800,
	                                        .mailbox = "B@x.example",
	                                        .what = "FindItem",
	                                        /* Cut inside a two-byte sequence: not UTF-8. */
	                                        .message = "ErrorImpersonateUserDenied: caf\xc3"};
	doc = api_status_json(
		&(struct api_status_in){.mbs = mbs, .n_mbs = 5, .engine = &st, .webhooks = &ws});
	CHECK(doc != NULL);
	if (doc == NULL)
		return;
	m = json_object_get(doc, "mailboxes");
	CHECK_EQ(json_integer_value(json_object_get(m, "total")), 5);
	CHECK_EQ(json_integer_value(json_object_get(m, "live")), 1);
	CHECK_EQ(json_integer_value(json_object_get(m, "parked")), 2);
	CHECK_EQ(json_integer_value(json_object_get(m, "syncing")), 1);
	CHECK_EQ(json_integer_value(json_object_get(m, "unresolved")), 1);
	/* Parked by address, ignoring case. */
	CHECK_EQ(json_array_size(json_object_get(doc, "parked")), 2);
	CHECK_STREQ(str_at(doc, "parked", 0, "smtp"), "a@x.example");
	CHECK_STREQ(str_at(doc, "parked", 0, "reason"), "ErrorNonExistentMailbox: gone");
	CHECK_STREQ(str_at(doc, "parked", 1, "smtp"), "B@x.example");
	CHECK_EQ(json_array_size(json_object_get(doc, "groups")), 2);
	CHECK_STREQ(str_at(doc, "groups", 1, "key"), "mbx2.contoso.example");
	CHECK_STREQ(str_at(doc, "groups", 1, "anchor"), "d@x.example");
	CHECK_EQ(int_at(doc, "groups", 1, "failures"), 3);
	CHECK_EQ(int_at(doc, "groups", 0, "members"), 2);
	CHECK(json_is_true(
		json_object_get(json_array_get(json_object_get(doc, "groups"), 0), "connected")));
	CHECK_EQ(json_array_size(json_object_get(doc, "errors")), 2);
	CHECK_STREQ(str_at(doc, "errors", 0, "time"), "2025-03-03T13:00:05Z");
	CHECK(json_is_null(
		json_object_get(json_array_get(json_object_get(doc, "errors"), 0), "mailbox")));
	CHECK_STREQ(str_at(doc, "errors", 1, "mailbox"), "B@x.example");
	CHECK_STREQ(str_at(doc, "errors", 1, "message"), "ErrorImpersonateUserDenied: caf?");
	CHECK_EQ(json_integer_value(json_object_get(doc, "streams_open")), 1);
	CHECK_EQ(json_integer_value(json_object_get(doc, "in_flight")), 2);
	CHECK_EQ(json_integer_value(json_object_get(doc, "queued")), 3);
	CHECK_EQ(json_integer_value(json_object_get(doc, "backing_off")), 4);
	CHECK_EQ(json_integer_value(json_object_get(doc, "presence_changes")), 5);
	CHECK_STREQ(str_at(doc, "webhooks", 0, "url"), "https://h.example/hook");
	CHECK_EQ(int_at(doc, "webhooks", 0, "delivered"), 7);
	CHECK_EQ(int_at(doc, "webhooks", 0, "failures"), 2);
	CHECK_EQ(int_at(doc, "webhooks", 0, "dropped"), 1);
	CHECK_EQ(int_at(doc, "webhooks", 0, "pending"), 3);
	dump = json_dumps(doc, JSON_COMPACT);
	CHECK(dump != NULL && strstr(dump, "secret") == NULL);
	free(dump);
	json_decref(doc);
}

TEST(empty)
{
	struct sync_status st = {0};
	json_t *doc = api_status_json(&(struct api_status_in){.engine = &st});
	char *dump;

	CHECK(doc != NULL);
	dump = json_dumps(doc, JSON_COMPACT);
	CHECK_STREQ(
		dump,
		"{\"mailboxes\":{\"total\":0,\"live\":0,\"syncing\":0,\"parked\":0,"
		"\"unresolved\":0},\"parked\":[],\"groups\":[],\"errors\":[],\"streams_open\":0,"
		"\"in_flight\":0,\"queued\":0,\"backing_off\":0,\"presence_changes\":0,"
		"\"webhooks\":[]}");
	free(dump);
	json_decref(doc);
}

static json_int_t count_of(json_t *doc, const char *backend, const char *key)
{
	return json_integer_value(
		json_object_get(json_object_get(json_object_get(doc, "backends"), backend), key));
}

TEST(hybrid_backends_and_graph_figures)
{
	static char a[] = "a@x.example", b[] = "b@x.example", c[] = "c@x.example",
		    d[] = "d@x.example";
	static char graph[] = "graph", ews[] = "ews";
	static char denied[] = "ErrorAccessDenied: outside the application's scope";
	struct store_mailbox mbs[] = {
		{.smtp = a, .state = STORE_MB_LIVE, .backend = graph},
		{.smtp = b, .state = STORE_MB_PARKED, .backend = graph, .parked_reason = denied},
		{.smtp = c, .state = STORE_MB_LIVE, .backend = ews},
		{.smtp = d, .state = STORE_MB_SYNCING},
	};
	struct sync_status st = {0};
	json_t *doc, *g, *keys;
	const char *key;
	json_t *v;

	st.stats.graph_requests = 12;
	st.stats.graph_throttled = 1;
	st.stats.graph_notifications = 4;
	st.stats.graph_bad_notifications = 2;
	st.stats.token_refreshes_ok = 3;
	st.stats.token_refreshes_failed = 1;
	doc = api_status_json(
		&(struct api_status_in){.mbs = mbs, .n_mbs = 4, .engine = &st, .graph = true});
	CHECK(doc != NULL);
	if (doc == NULL)
		return;
	/* The on-premises keys first, in their order, then the two new ones. */
	keys = json_array();
	json_object_foreach(doc, key, v) json_array_append_new(keys, json_string(key));
	CHECK_EQ(json_array_size(keys), 12);
	CHECK_STREQ(json_string_value(json_array_get(keys, 0)), "mailboxes");
	CHECK_STREQ(json_string_value(json_array_get(keys, 9)), "webhooks");
	CHECK_STREQ(json_string_value(json_array_get(keys, 10)), "backends");
	CHECK_STREQ(json_string_value(json_array_get(keys, 11)), "graph");
	json_decref(keys);
	CHECK_EQ(json_integer_value(json_object_get(json_object_get(doc, "mailboxes"), "total")),
	         4);
	CHECK_EQ(count_of(doc, "graph", "total"), 2);
	CHECK_EQ(count_of(doc, "graph", "live"), 1);
	CHECK_EQ(count_of(doc, "graph", "parked"), 1);
	CHECK_EQ(count_of(doc, "graph", "syncing"), 0);
	CHECK_EQ(count_of(doc, "ews", "total"), 2);
	CHECK_EQ(count_of(doc, "ews", "live"), 1);
	CHECK_EQ(count_of(doc, "ews", "syncing"), 1);
	CHECK_EQ(count_of(doc, "ews", "unresolved"), 0);
	CHECK_EQ(json_object_size(json_object_get(json_object_get(doc, "backends"), "ews")), 5);
	/* The parked one says which backend parked it. */
	CHECK_STREQ(str_at(doc, "parked", 0, "smtp"), "b@x.example");
	CHECK_STREQ(str_at(doc, "parked", 0, "backend"), "graph");
	g = json_object_get(doc, "graph");
	CHECK_EQ(json_integer_value(json_object_get(g, "requests")), 12);
	CHECK_EQ(json_integer_value(json_object_get(g, "throttled")), 1);
	CHECK_EQ(json_integer_value(
			 json_object_get(json_object_get(g, "notifications"), "accepted")),
	         4);
	CHECK_EQ(json_integer_value(
			 json_object_get(json_object_get(g, "notifications"), "rejected")),
	         2);
	CHECK_EQ(json_integer_value(json_object_get(json_object_get(g, "token_refreshes"), "ok")),
	         3);
	CHECK_EQ(json_integer_value(
			 json_object_get(json_object_get(g, "token_refreshes"), "failed")),
	         1);
	json_decref(doc);

	/* <graph> no longer configured while the store still holds mailboxes on Graph: the
	 * backends are told apart, but there are no Graph figures to show. */
	doc = api_status_json(&(struct api_status_in){.mbs = mbs, .n_mbs = 4, .engine = &st});
	CHECK(doc != NULL);
	CHECK_EQ(count_of(doc, "graph", "total"), 2);
	CHECK(json_object_get(doc, "graph") == NULL);
	json_decref(doc);

	/* On premises only: the document as before, but the parked entry names its backend. */
	mbs[1].backend = NULL;
	mbs[0].backend = ews;
	doc = api_status_json(&(struct api_status_in){.mbs = mbs, .n_mbs = 4, .engine = &st});
	CHECK(doc != NULL);
	CHECK(json_object_get(doc, "backends") == NULL);
	CHECK(json_object_get(doc, "graph") == NULL);
	CHECK_EQ(json_object_size(doc), 10);
	CHECK_STREQ(str_at(doc, "parked", 0, "backend"), "ews");
	json_decref(doc);
}

TEST(graph_configured_without_mailboxes)
{
	struct sync_status st = {0};
	json_t *doc = api_status_json(&(struct api_status_in){.engine = &st, .graph = true});
	char *dump;

	CHECK(doc != NULL);
	json_object_del(doc, "groups");
	json_object_del(doc, "errors");
	json_object_del(doc, "parked");
	json_object_del(doc, "webhooks");
	json_object_del(doc, "mailboxes");
	dump = json_dumps(doc, JSON_COMPACT);
	CHECK_STREQ(dump, "{\"streams_open\":0,\"in_flight\":0,\"queued\":0,\"backing_off\":0,"
	                  "\"presence_changes\":0,\"backends\":{\"ews\":{\"total\":0,\"live\":0,"
	                  "\"syncing\":0,\"parked\":0,\"unresolved\":0},\"graph\":{\"total\":0,"
	                  "\"live\":0,\"syncing\":0,\"parked\":0,\"unresolved\":0}},\"graph\":{"
	                  "\"requests\":0,\"throttled\":0,\"notifications\":{\"accepted\":0,"
	                  "\"rejected\":0},\"token_refreshes\":{\"ok\":0,\"failed\":0}}}");
	free(dump);
	json_decref(doc);
}

int main(void)
{
	RUN(counts_parked_groups_errors_webhooks);
	RUN(empty);
	RUN(hybrid_backends_and_graph_figures);
	RUN(graph_configured_without_mailboxes);
	return harness_done();
}
