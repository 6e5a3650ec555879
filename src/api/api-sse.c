/* SPDX-License-Identifier: MIT */
/*
 * api-sse.c: GET /v1/events, presence changes as Server-Sent Events, read from the store's
 * presence_events log. Each stream runs on its connection's thread: its reader callback sends
 * what the log holds after the last id sent, then blocks on the API's condition variable until
 * api_wake() says a change was stored, the keep-alive is due or the API stops. Because the log is
 * read by id, a wake-up that comes early or twice costs one read and loses nothing.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "api/api-int.h"
#include "api/api-json.h"
#include "api/api.h"
#include "base/clock.h"
#include "base/cs-limits.h"
#include "base/err.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "store/store.h"

/* Events read from the store at once. */
#define SSE_PAGE 64u
/* Bytes libmicrohttpd asks the reader for at most. */
#define SSE_BLOCK (16u << 10)

struct sse {
	struct api *a;
	int64_t last_id;      /* the last event id queued */
	struct buf out;       /* queued, at most API_MAX_QUEUED */
	size_t off;           /* bytes of out already handed out */
	int64_t keepalive_at; /* monotonic usec */
};

/* Queues the events after last_id, as many as fit. 0 or the store's error. */
static int fill(struct sse *s)
{
	struct store_presence_event *evs = NULL;
	struct err err = {0};
	size_t n = 0;
	int rc;

	rc = store_presence_events_after(api_store_lock(s->a), s->last_id, SSE_PAGE, &evs, &n,
	                                 &err);
	api_store_unlock(s->a);
	if (rc < 0) {
		log_warn("api: event stream: store read failed, ending the stream: %s", err.msg);
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		rc = api_sse_append_event(&s->out, &evs[i], &err);
		if (rc == -EMSGSIZE && s->out.len > 0)
			break; /* the rest on the next call */
		if (rc < 0)
			log_warn("api: event stream: event %" PRId64 " skipped: %s", evs[i].id,
			         err.msg);
		s->last_id = evs[i].id;
	}
	store_presence_events_free(evs, n);
	return 0;
}

static struct timespec monotonic_ts(int64_t usec)
{
	return (struct timespec){.tv_sec = (time_t)(usec / USEC_PER_SEC),
	                         .tv_nsec = (long)(usec % USEC_PER_SEC) * 1000};
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse *s = cls;
	struct api *a = s->a;

	for (;;) {
		uint64_t seq;
		bool stopping, keepalive = false;

		if (s->off < s->out.len) {
			size_t n = s->out.len - s->off;

			if (n > max)
				n = max;
			memcpy(buf, s->out.data + s->off, n);
			s->off += n;
			if (s->off == s->out.len) {
				buf_reset(&s->out);
				s->off = 0;
			}
			s->keepalive_at = clock_now_usec() + a->keepalive_usec;
			return (ssize_t)n;
		}
		pthread_mutex_lock(&a->mu);
		stopping = a->stopping;
		seq = a->seq;
		pthread_mutex_unlock(&a->mu);
		if (stopping)
			return MHD_CONTENT_READER_END_OF_STREAM;
		/* seq was read before the store: a change stored after this read bumps it, so
		 * the wait below cannot miss it. */
		if (fill(s) < 0)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (s->out.len > 0)
			continue;
		pthread_mutex_lock(&a->mu);
		while (!a->stopping && a->seq == seq) {
			struct timespec ts = monotonic_ts(s->keepalive_at);

			if (clock_now_usec() >= s->keepalive_at) {
				keepalive = true;
				break;
			}
			(void)pthread_cond_timedwait(&a->cond, &a->mu, &ts);
		}
		pthread_mutex_unlock(&a->mu);
		if (keepalive)
			(void)buf_append(&s->out, ": keepalive\n\n", 13, NULL);
	}
}

static void sse_free(void *cls)
{
	struct sse *s = cls;

	pthread_mutex_lock(&s->a->mu);
	s->a->sse_clients--;
	pthread_mutex_unlock(&s->a->mu);
	buf_free(&s->out);
	free(s);
}

enum MHD_Result api_events(struct api *a, struct MHD_Connection *c)
{
	const char *last = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
	char after_s[32];
	struct MHD_Response *resp;
	struct err err = {0};
	struct sse *s;
	int64_t after = 0;
	bool full, stopping;
	int q, rc;

	/* Where to start: Last-Event-ID (a reconnecting EventSource sends it), else ?after=,
	 * else only what is stored from now on. An empty Last-Event-ID means none. */
	if (last != NULL && last[0] != '\0') {
		if (api_parse_int(last, 0, INT64_MAX, &after) < 0)
			return api_reply_error(c, MHD_HTTP_BAD_REQUEST,
			                       "Last-Event-ID must be an event id (a number)");
	} else if ((q = api_query(c, "after", after_s, sizeof(after_s))) != 0) {
		if (q < 0 || api_parse_int(after_s, 0, INT64_MAX, &after) < 0)
			return api_reply_error(c, MHD_HTTP_BAD_REQUEST,
			                       "after must be an event id (a number)");
	} else {
		/* The largest id ever handed out: every change stored from now on has a larger one. */
		rc = store_presence_events_last_id(api_store_lock(a), &after, &err);
		api_store_unlock(a);
		if (rc < 0)
			return api_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "store: %s",
			                       err.msg);
	}
	pthread_mutex_lock(&a->mu);
	stopping = a->stopping;
	full = a->sse_clients >= API_MAX_SSE_CLIENTS;
	if (!stopping && !full)
		a->sse_clients++;
	pthread_mutex_unlock(&a->mu);
	if (stopping)
		return api_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "calsync is stopping");
	if (full)
		return api_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		                       "too many event streams (at most %u)", API_MAX_SSE_CLIENTS);

	s = xcalloc(1, sizeof(*s));
	s->a = a;
	s->last_id = after;
	buf_init(&s->out, API_MAX_QUEUED);
	/* A comment first, so the client sees the answer's head at once, events or not. */
	(void)buf_append(&s->out, ": calsync presence events\n\n", 27, NULL);
	s->keepalive_at = clock_now_usec() + a->keepalive_usec;
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK, sse_read, s,
	                                         sse_free);
	if (resp == NULL) {
		sse_free(s);
		return MHD_NO;
	}
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	(void)MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	rc = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return (enum MHD_Result)rc;
}
