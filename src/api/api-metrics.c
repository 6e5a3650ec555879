/* SPDX-License-Identifier: MIT */
/* api-metrics.c: the Prometheus text page of GET /metrics. */
#include "api/api-metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/api-json.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/url.h"
#include "store/store.h"
#include "sync/engine.h"
#include "webhook/webhook.h"

struct page {
	struct buf *out;
	int rc;
	struct err *err;
};

/* Appends a formatted line; after the first error nothing more is appended. */
ATTR_PRINTF(2, 3)

static void put(struct page *pg, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	if (pg->rc < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* Every line is a metric name, fixed labels (a URL label of at most twice
	 * API_MAX_URL_LABEL escaped) and a number: below the buffer. */
	if (n < 0 || (size_t)n >= sizeof(line)) {
		pg->rc = err_set(pg->err, -EMSGSIZE, "metrics: line too long");
		return;
	}
	pg->rc = buf_append(pg->out, line, (size_t)n, pg->err);
}

static void head(struct page *pg, const char *name, const char *type, const char *help)
{
	put(pg, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(struct page *pg, const char *name, const char *help, uint64_t v)
{
	head(pg, name, "gauge", help);
	put(pg, "%s %" PRIu64 "\n", name, v);
}

static void counter(struct page *pg, const char *name, const char *help, uint64_t v)
{
	head(pg, name, "counter", help);
	put(pg, "%s %" PRIu64 "\n", name, v);
}

/* A label value in the text format: backslash, double quote and newline escaped. */
static void escape_label(const char *s, char *out, size_t size)
{
	size_t o = 0;

	for (; *s != '\0' && o + 3 < size; s++) {
		if (*s == '\\' || *s == '"') {
			out[o++] = '\\';
			out[o++] = *s;
		} else if (*s == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *s;
		}
	}
	out[o] = '\0';
}

/* One target's value of series k (the order of webhook_metrics' table). */
static uint64_t webhook_value(const struct webhook_target_stats *t, size_t k)
{
	switch (k) {
	case 0:
		return t->delivered;
	case 1:
		return t->failures;
	case 2:
		return t->dropped;
	default:
		return t->pending;
	}
}

/* Per webhook target, labelled with its URL without secrets. Two targets whose URLs differ only
 * there get " (2)", " (3)", ... so that every series stays unique. */
static void webhook_metrics(struct page *pg, const struct webhook_stats *w)
{
	static const struct {
		const char *name, *type, *help;
	} series[] = {
		{"calsync_webhook_delivered_total", "counter",
	         "Presence changes a webhook target accepted (2xx), by target."},
		{"calsync_webhook_failures_total", "counter",
	         "Failed webhook deliveries (connection error, time-out, non-2xx), by target."},
		{"calsync_webhook_dropped_total", "counter",
	         "Presence changes given up after retry_for or not encodable, by target."},
		{"calsync_webhook_pending", "gauge",
	         "Presence changes not yet delivered to a webhook target, by target."},
	};

	char base[WEBHOOK_MAX_TARGETS][2 * API_MAX_URL_LABEL];
	char label[WEBHOOK_MAX_TARGETS][2 * API_MAX_URL_LABEL + 8];
	size_t n = w->n < WEBHOOK_MAX_TARGETS ? w->n : WEBHOOK_MAX_TARGETS;

	for (size_t i = 0; i < n; i++) {
		char url[API_MAX_URL_LABEL];
		unsigned same = 0;

		url_redact(w->targets[i].url != NULL ? w->targets[i].url : "", url, sizeof(url));
		escape_label(url, base[i], sizeof(base[i]));
		for (size_t j = 0; j < i; j++)
			same += strcmp(base[i], base[j]) == 0;
		if (same == 0)
			(void)snprintf(label[i], sizeof(label[i]), "%s", base[i]);
		else
			(void)snprintf(label[i], sizeof(label[i]), "%s (%u)", base[i], same + 1);
	}
	for (size_t k = 0; k < sizeof(series) / sizeof(series[0]); k++) {
		head(pg, series[k].name, series[k].type, series[k].help);
		for (size_t i = 0; i < n; i++)
			put(pg, "%s{url=\"%s\"} %" PRIu64 "\n", series[k].name, label[i],
			    webhook_value(&w->targets[i], k));
	}
}

/* Per backend and state, in the order of calsync_mailboxes. */
static void backend_metrics(struct page *pg, const struct api_backend_counts *bc)
{
	static const int states[] = {STORE_MB_UNRESOLVED, STORE_MB_SYNCING, STORE_MB_LIVE,
	                             STORE_MB_PARKED};

	head(pg, "calsync_mailboxes_by_backend", "gauge",
	     "Enabled mailboxes in the store, by the backend that holds them and sync state.");
	for (int b = 0; b < API_BACKEND_COUNT; b++) {
		for (size_t k = 0; k < sizeof(states) / sizeof(states[0]); k++)
			put(pg, "calsync_mailboxes_by_backend{backend=\"%s\",state=\"%s\"} %zu\n",
			    api_backend_name((enum api_backend)b),
			    store_mb_state_name((enum store_mb_state)states[k]),
			    bc->state[b][states[k]]);
	}
}

/* Microsoft Graph and its OAuth token provider (docs/graph.md). */
static void graph_metrics(struct page *pg, const struct sync_stats *s)
{
	counter(pg, "calsync_graph_requests_total",
	        "Microsoft Graph requests sent (token requests aside).", s->graph_requests);
	counter(pg, "calsync_graph_throttled_total",
	        "Microsoft Graph throttling answers (429, 503 with Retry-After).",
	        s->graph_throttled);
	head(pg, "calsync_graph_notifications_total", "counter",
	     "Microsoft Graph change and lifecycle notifications, by result.");
	put(pg, "calsync_graph_notifications_total{result=\"accepted\"} %" PRIu64 "\n",
	    s->graph_notifications);
	put(pg, "calsync_graph_notifications_total{result=\"rejected\"} %" PRIu64 "\n",
	    s->graph_bad_notifications);
	head(pg, "calsync_token_refreshes_total", "counter",
	     "OAuth 2.0 token requests for Microsoft Graph, by result.");
	put(pg, "calsync_token_refreshes_total{result=\"ok\"} %" PRIu64 "\n",
	    s->token_refreshes_ok);
	put(pg, "calsync_token_refreshes_total{result=\"failed\"} %" PRIu64 "\n",
	    s->token_refreshes_failed);
}

int api_metrics_format(const struct api_metrics_in *in, struct buf *out, struct err *err)
{
	const struct sync_stats *s = in->stats;
	struct page pg = {.out = out, .err = err};

	head(&pg, "calsync_mailboxes", "gauge", "Mailboxes synced, by sync state.");
	put(&pg, "calsync_mailboxes{state=\"unresolved\"} %zu\n", s->unresolved);
	put(&pg, "calsync_mailboxes{state=\"syncing\"} %zu\n", s->syncing);
	put(&pg, "calsync_mailboxes{state=\"live\"} %zu\n", s->live);
	put(&pg, "calsync_mailboxes{state=\"parked\"} %zu\n", s->parked);
	if (in->backends != NULL)
		backend_metrics(&pg, in->backends);
	head(&pg, "calsync_subscriptions", "gauge", "EWS subscriptions in the store, by kind.");
	put(&pg, "calsync_subscriptions{kind=\"streaming\"} %zu\n", in->subs_streaming);
	put(&pg, "calsync_subscriptions{kind=\"pull\"} %zu\n", in->subs_pull);
	gauge(&pg, "calsync_streaming_groups", "Streaming groups (at most 200 mailboxes each).",
	      s->groups);
	gauge(&pg, "calsync_streaming_connections", "GetStreamingEvents connections open now.",
	      s->streams_open);
	gauge(&pg, "calsync_streaming_groups_backing_off",
	      "Streaming groups waiting to reconnect after errors.", s->streams_backing_off);
	gauge(&pg, "calsync_mailboxes_backing_off", "Mailboxes waiting out a back-off.",
	      s->backing_off);
	gauge(&pg, "calsync_refresh_queue_depth", "Mailboxes waiting for a request slot.",
	      s->queued);
	gauge(&pg, "calsync_ews_requests_in_flight", "Buffered EWS requests in flight.",
	      s->in_flight);

	head(&pg, "calsync_ews_requests_total", "counter",
	     "EWS requests completed, by operation and result.");
	for (int op = 0; op < SYNC_OP_COUNT; op++) {
		const char *name = sync_op_name((enum sync_op)op);

		put(&pg, "calsync_ews_requests_total{operation=\"%s\",result=\"ok\"} %" PRIu64 "\n",
		    name, s->ops[op].ok);
		put(&pg,
		    "calsync_ews_requests_total{operation=\"%s\",result=\"error\"} %" PRIu64 "\n",
		    name, s->ops[op].error);
	}
	head(&pg, "calsync_ews_request_duration_seconds", "histogram",
	     "EWS request latency, by operation.");
	for (int op = 0; op < SYNC_OP_COUNT; op++) {
		const char *name = sync_op_name((enum sync_op)op);
		const struct sync_op_stats *o = &s->ops[op];

		for (int b = 0; b < SYNC_LATENCY_BUCKETS; b++)
			put(&pg,
			    "calsync_ews_request_duration_seconds_bucket{operation=\"%s\",le=\"%g\"} "
			    "%" PRIu64 "\n",
			    name, sync_latency_bounds[b], o->latency_le[b]);
		put(&pg,
		    "calsync_ews_request_duration_seconds_bucket{operation=\"%s\",le=\"+Inf\"} "
		    "%" PRIu64 "\n",
		    name, o->latency_count);
		put(&pg, "calsync_ews_request_duration_seconds_sum{operation=\"%s\"} %.9g\n", name,
		    o->latency_sum);
		put(&pg,
		    "calsync_ews_request_duration_seconds_count{operation=\"%s\"} %" PRIu64 "\n",
		    name, o->latency_count);
	}
	counter(&pg, "calsync_ews_throttled_total",
	        "Throttling answers (ErrorServerBusy, ErrorExceededConnectionCount, ...).",
	        s->throttled);
	counter(&pg, "calsync_window_refreshes_total", "Calendar window reads completed.",
	        s->refreshes);
	counter(&pg, "calsync_presence_changes_total", "Presence changes recorded.",
	        s->presence_changes);
	if (in->graph)
		graph_metrics(&pg, s);
	gauge(&pg, "calsync_sse_clients", "Open /v1/events streams.", in->sse_clients);
	if (in->webhooks != NULL && in->webhooks->n > 0)
		webhook_metrics(&pg, in->webhooks);
	return pg.rc;
}
