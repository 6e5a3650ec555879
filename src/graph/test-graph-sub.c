/* SPDX-License-Identifier: MIT */
/*
 * test-graph-sub.c: the subscription create and renew bodies (read back with jansson) and what
 * they refuse, the subscription answer, the change and lifecycle notification fixtures and
 * every truncation of them, entries that are no notification, the clientState compare, and the
 * validation handshake's decoding and limits.
 */
#include "graph/graph-sub.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/iso8601.h"
#include "graph-test.h"
#include "harness.h"

static int64_t utc(const char *iso)
{
	int64_t t = 0;

	if (iso8601_parse(iso, strlen(iso), &t, NULL, NULL) != 0)
		harness_fail(__FILE__, __LINE__, "bad test time '%s'", iso);
	return t;
}

static const char *member(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static struct graph_sub_create good(void)
{
	return (struct graph_sub_create){
		.user = "AdeleV@contoso.com",
		.notification_url = "https://calsync.contoso.com/graph/notify?tenant=contoso",
		.lifecycle_url = "https://calsync.contoso.com/graph/lifecycle",
		.client_state = "c2VjcmV0IGNsaWVudCBzdGF0ZQ",
		.now_utc = utc("2026-12-07T10:00:00Z"),
		.minutes = GRAPH_SUB_MAX_MINUTES,
	};
}

TEST(create_body)
{
	struct graph_sub_create c = good();
	struct err err = {0};
	char *body = NULL;
	json_t *o;

	CHECK_EQ(graph_sub_create_body(&c, &body, &err), 0);
	o = body != NULL ? json_loads(body, JSON_REJECT_DUPLICATES, NULL) : NULL;
	CHECK(o != NULL);
	CHECK_EQ(json_object_size(o), 6);
	CHECK_STREQ(member(o, "changeType"), "created,updated,deleted");
	CHECK_STREQ(member(o, "notificationUrl"), c.notification_url);
	CHECK_STREQ(member(o, "lifecycleNotificationUrl"), c.lifecycle_url);
	CHECK_STREQ(member(o, "resource"), "users/AdeleV@contoso.com/events");
	/* 10,080 minutes: seven days later. */
	CHECK_STREQ(member(o, "expirationDateTime"), "2026-12-14T10:00:00Z");
	CHECK_STREQ(member(o, "clientState"), c.client_state);
	json_decref(o);
	free(body);

	c.lifecycle_url = NULL;
	c.minutes = 60;
	c.allow_http = true;
	c.notification_url = "http://127.0.0.1:8745/graph/notify";
	CHECK_EQ(graph_sub_create_body(&c, &body, &err), 0);
	o = json_loads(body, 0, NULL);
	CHECK_EQ(json_object_size(o), 5);
	CHECK(json_object_get(o, "lifecycleNotificationUrl") == NULL);
	CHECK_STREQ(member(o, "expirationDateTime"), "2026-12-07T11:00:00Z");
	json_decref(o);
	free(body);
}

TEST(create_refused)
{
	char state[GRAPH_SUB_MAX_CLIENT_STATE + 2];

	struct {
		struct graph_sub_create c;
		const char *says;
	} cases[16];

	size_t n = 0;

	memset(state, 'a', sizeof(state) - 1);
	state[sizeof(state) - 1] = '\0';
	for (size_t i = 0; i < 16; i++)
		cases[i].c = good();
	cases[n].c.user = "";
	cases[n++].says = "user";
	cases[n].c.notification_url = "http://calsync.contoso.com/notify";
	cases[n++].says = "not an https URL";
	cases[n].c.notification_url = "ftp://calsync.contoso.com/notify";
	cases[n++].says = "notificationUrl";
	cases[n].c.notification_url = "calsync.contoso.com/notify";
	cases[n++].says = "notificationUrl";
	cases[n].c.notification_url = NULL;
	cases[n++].says = "notificationUrl";
	cases[n].c.lifecycle_url = "https://a b/";
	cases[n++].says = "lifecycleNotificationUrl";
	cases[n].c.client_state = "";
	cases[n++].says = "clientState";
	cases[n].c.client_state = NULL;
	cases[n++].says = "clientState";
	cases[n].c.client_state = state;
	cases[n++].says = "1 to 128";
	cases[n].c.client_state = "tab\there";
	cases[n++].says = "printable ASCII";
	cases[n].c.client_state = "caf\xc3\xa9";
	cases[n++].says = "printable ASCII";
	cases[n].c.minutes = 0;
	cases[n++].says = "lifetime";
	cases[n].c.minutes = GRAPH_SUB_MAX_MINUTES + 1;
	cases[n++].says = "lifetime";
	cases[n].c.now_utc = ISO8601_MAX_UTC;
	cases[n++].says = "years";
	for (size_t i = 0; i < n; i++) {
		struct err err = {0};
		char *body = NULL;

		CHECK_EQ(graph_sub_create_body(&cases[i].c, &body, &err), -EINVAL);
		CHECK(body == NULL);
		if (strstr(err.msg, cases[i].says) == NULL)
			fprintf(stderr, "case %zu: '%s'\n", i, err.msg);
		CHECK(strstr(err.msg, cases[i].says) != NULL);
	}
	{
		struct graph_sub_create c = good();
		struct err err = {0};
		char *body = NULL;

		state[GRAPH_SUB_MAX_CLIENT_STATE] = '\0';
		c.client_state = state;
		CHECK_EQ(graph_sub_create_body(&c, &body, &err), 0);
		free(body);
	}
}

TEST(renew_body)
{
	struct err err = {0};
	char *body = NULL;

	CHECK_EQ(graph_sub_renew_body(utc("2016-11-20T18:23:45Z"), 4230, &body, &err), 0);
	CHECK_STREQ(body, "{\"expirationDateTime\":\"2016-11-23T16:53:45Z\"}");
	free(body);
	body = NULL;
	CHECK_EQ(graph_sub_renew_body(0, 0, &body, &err), -EINVAL);
	CHECK_EQ(graph_sub_renew_body(0, GRAPH_SUB_MAX_MINUTES + 1, &body, &err), -EINVAL);
	CHECK(body == NULL);
}

TEST(subscription_answer)
{
	struct graph_sub s = {0};
	struct err err = {0};
	size_t len;
	char *json = graph_fixture("subscription.json", &len);
	size_t end;

	if (json == NULL)
		return;
	CHECK_EQ(graph_sub_read(json, len, &s, &err), 0);
	CHECK_STREQ(s.id, "7f105c7d-2dc5-4530-97cd-4e7ae6534c07");
	CHECK_STREQ(s.resource, "users/87d349ed-44d7-43e1-9a83-5f2406dee5bd/events");
	CHECK_STREQ(s.change_type, "created,updated,deleted");
	CHECK_STREQ(s.client_state, "secretClientValue");
	CHECK_EQ(s.expires_utc, utc("2016-11-20T18:23:45Z"));
	graph_sub_clear(&s);
	end = graph_doc_end(json, len);
	for (size_t i = 0; i < end; i++) {
		char *c = graph_copy_n(json, i);

		CHECK(graph_sub_read(c, i, &s, &err) < 0);
		CHECK(s.id == NULL);
		free(c);
	}
	free(json);
	CHECK_EQ(graph_sub_read("{\"id\":\"x\"}", 10, &s, &err), -EPROTO);
	CHECK(strstr(err.msg, "expirationDateTime") != NULL);
	CHECK_EQ(graph_sub_read("{\"id\":\"x\",\"expirationDateTime\":\"soon\"}", 38, &s, &err),
	         -EPROTO);
	CHECK_EQ(graph_sub_read("{\"expirationDateTime\":\"2016-11-20T18:23:45Z\"}", 45, &s, &err),
	         -EPROTO);
	graph_sub_clear(NULL);
}

static int read_notes(const char *json, size_t len, struct graph_notifications *ns, struct err *err)
{
	char *c = graph_copy_n(json, len);
	int rc;

	ns->n = 42;
	rc = graph_notifications_read(c, len, ns, err);
	free(c);
	if (rc != 0) {
		CHECK(rc == -EPROTO || rc == -EMSGSIZE);
		CHECK(ns->v == NULL && ns->n == 0);
		CHECK(err->msg[0] != '\0');
	}
	return rc;
}

TEST(change_notifications)
{
	struct graph_notifications ns;
	struct err err = {0};
	size_t len;
	char *json = graph_fixture("notify-change.json", &len);

	if (json == NULL)
		return;
	CHECK_EQ(read_notes(json, len, &ns, &err), 0);
	free(json);
	CHECK_EQ(ns.n, 3);
	if (ns.n != 3)
		return;
	CHECK_STREQ(ns.v[0].subscription_id, "7f105c7d-2dc5-4530-97cd-4e7ae6534c07");
	CHECK_STREQ(ns.v[0].client_state, "secretClientValue");
	CHECK_STREQ(ns.v[0].tenant_id, "84bd8158-6d4d-4958-8b9f-9d6445542f95");
	CHECK_STREQ(ns.v[0].resource,
	            "Users/87d349ed-44d7-43e1-9a83-5f2406dee5bd/Events/AAMkADVxUAAA=");
	CHECK_STREQ(ns.v[0].resource_id, "AAMkADVxUAAA=");
	CHECK_EQ(ns.v[0].change, GRAPH_CHANGE_UPDATED);
	CHECK_EQ(ns.v[0].lifecycle, GRAPH_LIFECYCLE_NONE);
	CHECK_EQ(ns.v[0].sub_expires_utc, utc("2016-11-20T18:23:45Z"));
	CHECK_EQ(ns.v[1].change, GRAPH_CHANGE_DELETED);
	CHECK_EQ(ns.v[2].change, GRAPH_CHANGE_CREATED);
	CHECK_STREQ(ns.v[2].client_state, "anotherSecretValue");
	graph_notifications_clear(&ns);
	CHECK(ns.v == NULL && ns.n == 0);
	graph_notifications_clear(NULL);
}

TEST(lifecycle_notifications)
{
	struct graph_notifications ns;
	struct err err = {0};
	size_t len;
	char *json = graph_fixture("notify-lifecycle.json", &len);

	if (json == NULL)
		return;
	CHECK_EQ(read_notes(json, len, &ns, &err), 0);
	free(json);
	CHECK_EQ(ns.n, 3);
	if (ns.n != 3)
		return;
	CHECK_EQ(ns.v[0].lifecycle, GRAPH_LIFECYCLE_REAUTHORIZATION_REQUIRED);
	CHECK_EQ(ns.v[1].lifecycle, GRAPH_LIFECYCLE_MISSED);
	CHECK_EQ(ns.v[2].lifecycle, GRAPH_LIFECYCLE_SUBSCRIPTION_REMOVED);
	CHECK_EQ(ns.v[0].change, GRAPH_CHANGE_NONE);
	CHECK(ns.v[0].resource == NULL && ns.v[0].resource_id == NULL);
	CHECK_EQ(ns.v[0].sub_expires_utc, utc("2019-03-20T11:00:00Z"));
	graph_notifications_clear(&ns);
}

TEST(notifications_odd)
{
	static const struct {
		const char *json;
		int rc;
		const char *says;
	} cases[] = {
		{"{\"value\":[{\"subscriptionId\":\"s\",\"changeType\":\"moved\"}]}", 0, NULL},
		{"{\"value\":[{\"subscriptionId\":\"s\",\"lifecycleEvent\":\"x\"}]}", 0, NULL},
		{"{\"value\":[],\"validationTokens\":[\"eyJ0\"]}", 0, NULL},
		{"{\"value\":[{\"changeType\":\"created\"}]}", -EPROTO,
	         "'subscriptionId' is missing"},
		{"{\"value\":[{\"subscriptionId\":\"s\"}]}", -EPROTO, "neither"},
		{"{\"value\":[{\"subscriptionId\":\"s\",\"changeType\":1}]}", -EPROTO,
	         "'changeType' is a number"},
		{"{\"value\":[{\"subscriptionId\":\"s\",\"changeType\":\"created\",\"resourceData\":"
	         "[]}]}",
	         -EPROTO, "'resourceData' is an array"},
		{"{\"value\":[{\"subscriptionId\":\"s\",\"changeType\":\"created\",\"resourceData\":"
	         "{\"id\":5}}]}",
	         -EPROTO, "resourceData: 'id' is a number"},
		{"{\"value\":[{\"subscriptionId\":\"s\",\"changeType\":\"created\","
	         "\"subscriptionExpirationDateTime\":\"tomorrow\"}]}",
	         -EPROTO, "subscriptionExpirationDateTime"},
		{"{\"value\":[\"s\"]}", -EPROTO, "value[0]: a string"},
		{"{\"value\":{}}", -EPROTO, "not an array"},
		{"{}", -EPROTO, "no 'value'"},
		{"[]", -EPROTO, "not an object"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct graph_notifications ns;
		struct err err = {0};

		CHECK_EQ(read_notes(cases[i].json, strlen(cases[i].json), &ns, &err), cases[i].rc);
		if (cases[i].rc == 0 && i == 0)
			CHECK_EQ(ns.v[0].change, GRAPH_CHANGE_UNKNOWN);
		if (cases[i].rc == 0 && i == 1)
			CHECK_EQ(ns.v[0].lifecycle, GRAPH_LIFECYCLE_UNKNOWN);
		if (cases[i].says != NULL && strstr(err.msg, cases[i].says) == NULL)
			fprintf(stderr, "case %zu: '%s'\n", i, err.msg);
		CHECK(cases[i].says == NULL || strstr(err.msg, cases[i].says) != NULL);
		graph_notifications_clear(&ns);
	}
}

TEST(notifications_limits)
{
	size_t n = GRAPH_MAX_NOTIFICATIONS + 1;
	char *json = xmalloc(16 + n * 3);
	size_t k = (size_t)snprintf(json, 16, "{\"value\":[");
	struct graph_notifications ns;
	struct err err = {0};

	for (size_t i = 0; i < n; i++) {
		memcpy(json + k, i + 1 < n ? "{}," : "{}", i + 1 < n ? 3 : 2);
		k += i + 1 < n ? 3 : 2;
	}
	memcpy(json + k, "]}", 2);
	CHECK_EQ(read_notes(json, k + 2, &ns, &err), -EMSGSIZE);
	free(json);
	json = xmalloc(GRAPH_MAX_NOTIFICATION + 1);
	memset(json, ' ', GRAPH_MAX_NOTIFICATION + 1);
	memcpy(json, "{\"value\":[]}", 12);
	CHECK_EQ(read_notes(json, GRAPH_MAX_NOTIFICATION + 1, &ns, &err), -EMSGSIZE);
	CHECK_EQ(read_notes(json, GRAPH_MAX_NOTIFICATION, &ns, &err), 0);
	graph_notifications_clear(&ns);
	free(json);
}

static size_t check_truncations(const char *name)
{
	size_t len;
	char *json = graph_fixture(name, &len);
	size_t end, parsed = 0;

	if (json == NULL)
		return 0;
	end = graph_doc_end(json, len);
	for (size_t i = 0; i <= len; i++) {
		struct graph_notifications ns;
		struct err err = {0};

		if (read_notes(json, i, &ns, &err) == 0) {
			parsed++;
			graph_notifications_clear(&ns);
		}
	}
	CHECK_EQ(parsed, len - end + 1);
	free(json);
	return len;
}

TEST(truncations)
{
	size_t bytes = check_truncations("notify-change.json");

	bytes += check_truncations("notify-lifecycle.json");
	CHECK(bytes > 2000);
}

TEST(client_state_compare)
{
	const char *secret = "secretClientValue";

	CHECK(graph_sub_client_state_equal(secret, "secretClientValue", 17));
	CHECK(!graph_sub_client_state_equal(secret, "secretClientValuf", 17));
	CHECK(!graph_sub_client_state_equal(secret, "xecretClientValue", 17));
	CHECK(!graph_sub_client_state_equal(secret, "secretClientValue", 16));
	CHECK(!graph_sub_client_state_equal(secret, "secretClientValueX", 18));
	/* got_len counts, not a NUL: an embedded NUL is a different value. */
	CHECK(!graph_sub_client_state_equal(secret, "secretClientValue\0", 18));
	CHECK(!graph_sub_client_state_equal(secret, "", 0));
	CHECK(!graph_sub_client_state_equal(NULL, "a", 1));
	CHECK(!graph_sub_client_state_equal(secret, NULL, 0));
	CHECK(graph_sub_client_state_equal("", "", 0));
}

static int token_of(const char *query, char **out, struct err *err)
{
	char *c = graph_copy_n(query, strlen(query));
	int rc = graph_sub_validation_token(c, strlen(query), out, err);

	free(c);
	return rc;
}

TEST(validation_token)
{
	char big[GRAPH_MAX_VALIDATION_QUERY + 8];
	struct err err = {0};
	char *t = NULL;

	/* As Graph sends it: form-encoded, '+' for spaces. */
	CHECK_EQ(token_of("validationToken=Validation%3a+Testing+client+application+reachability+"
	                  "for+subscription+Request-Id%3a+b7f9fe9a-5f5b-4e4d-a0a6-0c0e7dc3eb8a",
	                  &t, &err),
	         0);
	CHECK_STREQ(t, "Validation: Testing client application reachability for subscription "
	               "Request-Id: b7f9fe9a-5f5b-4e4d-a0a6-0c0e7dc3eb8a");
	free(t);
	/* Among other parameters of the notificationUrl; %2B is a plus. */
	CHECK_EQ(token_of("tenant=contoso&validationToken=a%2Bb%20c&x=1", &t, &err), 0);
	CHECK_STREQ(t, "a+b c");
	free(t);
	t = NULL;
	CHECK_EQ(token_of("tenant=contoso", &t, &err), -ENOENT);
	CHECK_EQ(token_of("", &t, &err), -ENOENT);
	CHECK_EQ(token_of("validationTokenX=a&xvalidationToken=b", &t, &err), -ENOENT);
	CHECK_EQ(token_of("validationToken=a&validationToken=b", &t, &err), -EINVAL);
	CHECK(strstr(err.msg, "two") != NULL);
	CHECK_EQ(token_of("validationToken=", &t, &err), -EINVAL);
	CHECK_EQ(token_of("validationToken=a%0Ab", &t, &err), -EINVAL);
	CHECK_EQ(token_of("validationToken=a%00b", &t, &err), -EINVAL);
	CHECK_EQ(token_of("validationToken=a%7Fb", &t, &err), -EINVAL);
	CHECK(t == NULL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "validationToken=", 16);
	big[16 + GRAPH_MAX_VALIDATION_TOKEN + 1] = '\0';
	CHECK_EQ(token_of(big, &t, &err), -EINVAL);
	big[16 + GRAPH_MAX_VALIDATION_TOKEN] = '\0';
	CHECK_EQ(token_of(big, &t, &err), 0);
	CHECK_EQ(t != NULL ? strlen(t) : 0, GRAPH_MAX_VALIDATION_TOKEN);
	free(t);
	t = NULL;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_EQ(graph_sub_validation_token(big, sizeof(big) - 1, &t, &err), -EINVAL);
	CHECK(strstr(err.msg, "query") != NULL);
	CHECK_EQ(graph_sub_validation_token(NULL, 0, &t, &err), -EINVAL);
}

int main(void)
{
	RUN(create_body);
	RUN(create_refused);
	RUN(renew_body);
	RUN(subscription_answer);
	RUN(change_notifications);
	RUN(lifecycle_notifications);
	RUN(notifications_odd);
	RUN(notifications_limits);
	RUN(truncations);
	RUN(client_state_compare);
	RUN(validation_token);
	return harness_done();
}
