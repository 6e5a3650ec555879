/* SPDX-License-Identifier: MIT */
/* test-api-metrics.c: the Prometheus page of GET /metrics from a known stats struct. */
#include "api/api-metrics.h"

#include <errno.h>
#include <string.h>

#include "api/api-json.h"
#include "base/buf.h"
#include "base/url.h"
#include "harness.h"
#include "store/store.h"
#include "sync/engine.h"
#include "webhook/webhook.h"

static bool has_line(const char *page, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = page; (p = strstr(p, line)) != NULL; p++) {
		if ((p == page || p[-1] == '\n') && p[n] == '\n')
			return true;
	}
	return false;
}

static void fill(struct sync_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->mailboxes = 10;
	st->unresolved = 1;
	st->syncing = 2;
	st->live = 6;
	st->parked = 1;
	st->groups = 1;
	st->streams_open = 1;
	st->in_flight = 3;
	st->queued = 4;
	st->backing_off = 5;
	st->streams_backing_off = 0;
	st->throttled = 7;
	st->refreshes = 12;
	st->presence_changes = 9;
	st->ops[SYNC_OP_FIND_ITEM].ok = 12;
	st->ops[SYNC_OP_FIND_ITEM].error = 1;
	st->ops[SYNC_OP_FIND_ITEM].latency_count = 13;
	st->ops[SYNC_OP_FIND_ITEM].latency_sum = 1.5;
	for (int b = 0; b < SYNC_LATENCY_BUCKETS; b++)
		st->ops[SYNC_OP_FIND_ITEM].latency_le[b] = b < 3 ? (uint64_t)b * 4 : 13;
}

TEST(formats_every_metric)
{
	struct sync_stats st;
	struct api_metrics_in in = {
		.stats = &st, .subs_streaming = 6, .subs_pull = 0, .sse_clients = 2};
	struct buf b;
	char line[256];

	fill(&st);
	buf_init(&b, API_MAX_METRICS);
	CHECK_EQ(api_metrics_format(&in, &b, NULL), 0);
	CHECK(has_line(b.data, "# TYPE calsync_mailboxes gauge"));
	CHECK(has_line(b.data, "calsync_mailboxes{state=\"live\"} 6"));
	CHECK(has_line(b.data, "calsync_mailboxes{state=\"parked\"} 1"));
	CHECK(has_line(b.data, "calsync_mailboxes{state=\"syncing\"} 2"));
	CHECK(has_line(b.data, "calsync_mailboxes{state=\"unresolved\"} 1"));
	CHECK(has_line(b.data, "calsync_subscriptions{kind=\"streaming\"} 6"));
	CHECK(has_line(b.data, "calsync_subscriptions{kind=\"pull\"} 0"));
	CHECK(has_line(b.data, "calsync_streaming_connections 1"));
	CHECK(has_line(b.data, "calsync_refresh_queue_depth 4"));
	CHECK(has_line(b.data, "calsync_mailboxes_backing_off 5"));
	CHECK(has_line(b.data, "calsync_streaming_groups_backing_off 0"));
	CHECK(has_line(b.data, "calsync_ews_throttled_total 7"));
	CHECK(has_line(b.data, "calsync_presence_changes_total 9"));
	CHECK(has_line(b.data, "calsync_sse_clients 2"));
	CHECK(has_line(b.data, "# TYPE calsync_ews_requests_total counter"));
	CHECK(has_line(b.data,
	               "calsync_ews_requests_total{operation=\"FindItem\",result=\"ok\"} 12"));
	CHECK(has_line(b.data,
	               "calsync_ews_requests_total{operation=\"FindItem\",result=\"error\"} 1"));
	CHECK(has_line(b.data,
	               "calsync_ews_requests_total{operation=\"Subscribe\",result=\"ok\"} 0"));
	CHECK(has_line(b.data, "# TYPE calsync_ews_request_duration_seconds histogram"));
	snprintf(line, sizeof(line),
	         "calsync_ews_request_duration_seconds_bucket{operation=\"FindItem\",le=\"%g\"} 4",
	         sync_latency_bounds[1]);
	CHECK(has_line(b.data, line));
	CHECK(has_line(
		b.data,
		"calsync_ews_request_duration_seconds_bucket{operation=\"FindItem\",le=\"+Inf\"} 13"));
	CHECK(has_line(b.data,
	               "calsync_ews_request_duration_seconds_sum{operation=\"FindItem\"} 1.5"));
	CHECK(has_line(b.data,
	               "calsync_ews_request_duration_seconds_count{operation=\"FindItem\"} 13"));
	/* Every operation has its histogram. */
	for (int op = 0; op < SYNC_OP_COUNT; op++) {
		snprintf(line, sizeof(line),
		         "calsync_ews_request_duration_seconds_count{operation=\"%s\"} %d",
		         sync_op_name((enum sync_op)op), op == SYNC_OP_FIND_ITEM ? 13 : 0);
		CHECK(has_line(b.data, line));
	}
	/* No placeholders: nothing about webhooks yet. */
	CHECK(strstr(b.data, "webhook") == NULL);
	CHECK(b.data[b.len - 1] == '\n');
	buf_free(&b);
}

TEST(every_line_is_a_comment_or_a_sample)
{
	struct sync_stats st;
	struct api_metrics_in in = {.stats = &st};
	struct buf b;
	const char *p;

	fill(&st);
	buf_init(&b, API_MAX_METRICS);
	CHECK_EQ(api_metrics_format(&in, &b, NULL), 0);
	for (p = b.data; *p != '\0';) {
		const char *nl = strchr(p, '\n');
		const char *sp;

		CHECK(nl != NULL);
		if (nl == NULL)
			break;
		if (*p != '#') {
			CHECK(strncmp(p, "calsync_", 8) == 0);
			sp = memchr(p, ' ', (size_t)(nl - p));
			CHECK(sp != NULL && sp + 1 < nl);
		}
		p = nl + 1;
	}
	buf_free(&b);
}

TEST(too_small_buffer_fails_cleanly)
{
	struct sync_stats st;
	struct api_metrics_in in = {.stats = &st};
	struct buf b;

	fill(&st);
	buf_init(&b, 100);
	CHECK_EQ(api_metrics_format(&in, &b, NULL), -EMSGSIZE);
	CHECK(b.len <= 100);
	buf_free(&b);
}

TEST(webhook_counters_per_target_without_secrets)
{
	struct sync_stats st;
	struct webhook_stats ws = {
		.n = 3,
		.targets =
			{
				{.url = "https://user:pw@hooks.example:8443/presence?key=s3cret#x",
	                         .delivered = 12,
	                         .failures = 3,
	                         .dropped = 1,
	                         .pending = 4},
				{.url = "http://127.0.0.1:9000/a\"b"},
				{.url = "https://hooks.example:8443/presence?key=other",
	                         .delivered = 5},
			},
	};
	struct api_metrics_in in = {.stats = &st, .webhooks = &ws};
	struct buf b;

	fill(&st);
	buf_init(&b, API_MAX_METRICS);
	CHECK_EQ(api_metrics_format(&in, &b, NULL), 0);
	CHECK(has_line(b.data, "# TYPE calsync_webhook_delivered_total counter"));
	CHECK(has_line(b.data, "# TYPE calsync_webhook_failures_total counter"));
	CHECK(has_line(b.data, "# TYPE calsync_webhook_dropped_total counter"));
	CHECK(has_line(b.data, "# TYPE calsync_webhook_pending gauge"));
	CHECK(has_line(b.data, "calsync_webhook_delivered_total{url=\"https://hooks.example:8443/"
	                       "presence\"} 12"));
	CHECK(has_line(b.data, "calsync_webhook_failures_total{url=\"https://hooks.example:8443/"
	                       "presence\"} 3"));
	CHECK(has_line(b.data, "calsync_webhook_dropped_total{url=\"https://hooks.example:8443/"
	                       "presence\"} 1"));
	CHECK(has_line(b.data, "calsync_webhook_pending{url=\"https://hooks.example:8443/"
	                       "presence\"} 4"));
	/* A quote is escaped; the same URL twice (the query stripped) stays two series. */
	CHECK(has_line(b.data, "calsync_webhook_pending{url=\"http://127.0.0.1:9000/a\\\"b\"} 0"));
	CHECK(has_line(b.data, "calsync_webhook_delivered_total{url=\"https://hooks.example:8443/"
	                       "presence (2)\"} 5"));
	/* Secrets never appear. */
	CHECK(strstr(b.data, "s3cret") == NULL);
	CHECK(strstr(b.data, "pw@") == NULL);
	CHECK(strstr(b.data, "other") == NULL);
	buf_free(&b);
}

/* The Graph figures: only when Graph is configured, and then every one of them. */
TEST(graph_counters)
{
	struct sync_stats st;
	struct api_metrics_in in = {.stats = &st};
	struct buf b;

	fill(&st);
	st.graph_requests = 41;
	st.graph_throttled = 3;
	st.graph_notifications = 17;
	st.graph_bad_notifications = 2;
	st.token_refreshes_ok = 5;
	st.token_refreshes_failed = 1;
	buf_init(&b, API_MAX_METRICS);
	CHECK_EQ(api_metrics_format(&in, &b, NULL), 0);
	CHECK(strstr(b.data, "calsync_graph_") == NULL);
	CHECK(strstr(b.data, "calsync_token_") == NULL);
	buf_free(&b);

	in.graph = true;
	buf_init(&b, API_MAX_METRICS);
	CHECK_EQ(api_metrics_format(&in, &b, NULL), 0);
	CHECK(has_line(b.data, "# TYPE calsync_graph_requests_total counter"));
	CHECK(has_line(b.data, "calsync_graph_requests_total 41"));
	CHECK(has_line(b.data, "# TYPE calsync_graph_throttled_total counter"));
	CHECK(has_line(b.data, "calsync_graph_throttled_total 3"));
	CHECK(has_line(b.data, "# TYPE calsync_graph_notifications_total counter"));
	CHECK(has_line(b.data, "calsync_graph_notifications_total{result=\"accepted\"} 17"));
	CHECK(has_line(b.data, "calsync_graph_notifications_total{result=\"rejected\"} 2"));
	CHECK(has_line(b.data, "# TYPE calsync_token_refreshes_total counter"));
	CHECK(has_line(b.data, "calsync_token_refreshes_total{result=\"ok\"} 5"));
	CHECK(has_line(b.data, "calsync_token_refreshes_total{result=\"failed\"} 1"));
	/* The EWS metrics keep their names and values beside them. */
	CHECK(has_line(b.data, "calsync_ews_throttled_total 7"));
	CHECK(has_line(b.data, "calsync_mailboxes{state=\"live\"} 6"));
	buf_free(&b);
}

/* calsync_mailboxes keeps its one label; the backends get a gauge of their own. */
TEST(mailboxes_by_backend)
{
	static const char *const backends[] = {"ews", "graph"};
	static const char *const states[] = {"unresolved", "syncing", "live", "parked"};
	struct sync_stats st;
	struct api_backend_counts bc = {0};
	struct api_metrics_in in = {.stats = &st, .backends = &bc};
	struct buf b;
	char line[256];
	const char *p;
	size_t n = 0;

	fill(&st);
	bc.total[API_BACKEND_EWS] = 4;
	bc.state[API_BACKEND_EWS][STORE_MB_LIVE] = 3;
	bc.state[API_BACKEND_EWS][STORE_MB_PARKED] = 1;
	bc.total[API_BACKEND_GRAPH] = 6;
	bc.state[API_BACKEND_GRAPH][STORE_MB_LIVE] = 2;
	bc.state[API_BACKEND_GRAPH][STORE_MB_SYNCING] = 3;
	bc.state[API_BACKEND_GRAPH][STORE_MB_UNRESOLVED] = 1;
	buf_init(&b, API_MAX_METRICS);
	CHECK_EQ(api_metrics_format(&in, &b, NULL), 0);
	CHECK(has_line(b.data, "# TYPE calsync_mailboxes_by_backend gauge"));
	CHECK(has_line(b.data, "calsync_mailboxes_by_backend{backend=\"ews\",state=\"live\"} 3"));
	CHECK(has_line(b.data, "calsync_mailboxes_by_backend{backend=\"ews\",state=\"parked\"} 1"));
	CHECK(has_line(b.data, "calsync_mailboxes_by_backend{backend=\"graph\",state=\"live\"} 2"));
	CHECK(has_line(b.data,
	               "calsync_mailboxes_by_backend{backend=\"graph\",state=\"syncing\"} 3"));
	CHECK(has_line(b.data,
	               "calsync_mailboxes_by_backend{backend=\"graph\",state=\"unresolved\"} 1"));
	CHECK(has_line(b.data,
	               "calsync_mailboxes_by_backend{backend=\"graph\",state=\"parked\"} 0"));
	/* Every pair once, zeros too: eight series. */
	for (size_t i = 0; i < 2; i++) {
		for (size_t k = 0; k < 4; k++) {
			snprintf(line, sizeof(line),
			         "calsync_mailboxes_by_backend{backend=\"%s\",state=\"%s\"} ",
			         backends[i], states[k]);
			CHECK(strstr(b.data, line) != NULL);
		}
	}
	for (p = b.data; (p = strstr(p, "\ncalsync_mailboxes_by_backend{")) != NULL; p++)
		n++;
	CHECK_EQ(n, 8);
	/* The engine's gauge is unchanged: one label, the engine's numbers. */
	CHECK(has_line(b.data, "calsync_mailboxes{state=\"live\"} 6"));
	CHECK(strstr(b.data, "calsync_mailboxes{backend") == NULL);
	buf_free(&b);

	/* Without the store's counts there is no such gauge. */
	in.backends = NULL;
	buf_init(&b, API_MAX_METRICS);
	CHECK_EQ(api_metrics_format(&in, &b, NULL), 0);
	CHECK(strstr(b.data, "calsync_mailboxes_by_backend") == NULL);
	buf_free(&b);
}

TEST(url_label)
{
	char out[API_MAX_URL_LABEL];
	char small[12];
	char long_url[600];

	url_redact("https://a:b@h.example/p/q?x=1#f", out, sizeof(out));
	CHECK_STREQ(out, "https://h.example/p/q");
	url_redact("http://h.example", out, sizeof(out));
	CHECK_STREQ(out, "http://h.example");
	url_redact("http://h.example?t=1", out, sizeof(out));
	CHECK_STREQ(out, "http://h.example");
	/* An '@' in the path is not user info. */
	url_redact("http://h.example/a@b", out, sizeof(out));
	CHECK_STREQ(out, "http://h.example/a@b");
	/* Cut to fit, never inside a UTF-8 sequence. */
	url_redact("http://h/\xc3\xa9\xc3\xa9", small, sizeof(small));
	CHECK_STREQ(small, "http://h/\xc3\xa9");
	url_redact("http://h/ab\xc3\xa9", small, sizeof(small));
	CHECK_STREQ(small, "http://h/ab");
	memset(long_url, 'a', sizeof(long_url) - 1);
	long_url[sizeof(long_url) - 1] = '\0';
	memcpy(long_url, "http://", 7);
	url_redact(long_url, out, sizeof(out));
	CHECK_EQ(strlen(out), API_MAX_URL_LABEL - 1);
}

int main(void)
{
	RUN(formats_every_metric);
	RUN(every_line_is_a_comment_or_a_sample);
	RUN(too_small_buffer_fails_cleanly);
	RUN(webhook_counters_per_target_without_secrets);
	RUN(graph_counters);
	RUN(mailboxes_by_backend);
	RUN(url_label);
	return harness_done();
}
