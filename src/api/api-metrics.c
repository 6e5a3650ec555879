/* SPDX-License-Identifier: MIT */
/* api-metrics.c: the Prometheus text page of GET /metrics. */
#include "api/api-metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "base/buf.h"
#include "base/err.h"
#include "sync/engine.h"

struct page {
	struct buf *out;
	int rc;
	struct err *err;
};

/* Appends a formatted line; after the first error nothing more is appended. */
ATTR_PRINTF(2, 3)

static void put(struct page *pg, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	if (pg->rc < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* Every line is a metric name, fixed labels and a number: far below the buffer. */
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

int api_metrics_format(const struct api_metrics_in *in, struct buf *out, struct err *err)
{
	const struct sync_stats *s = in->stats;
	struct page pg = {.out = out, .err = err};

	head(&pg, "calsync_mailboxes", "gauge", "Mailboxes synced, by sync state.");
	put(&pg, "calsync_mailboxes{state=\"unresolved\"} %zu\n", s->unresolved);
	put(&pg, "calsync_mailboxes{state=\"syncing\"} %zu\n", s->syncing);
	put(&pg, "calsync_mailboxes{state=\"live\"} %zu\n", s->live);
	put(&pg, "calsync_mailboxes{state=\"parked\"} %zu\n", s->parked);
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
	gauge(&pg, "calsync_sse_clients", "Open /v1/events streams.", in->sse_clients);
	return pg.rc;
}
