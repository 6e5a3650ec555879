/* SPDX-License-Identifier: MIT */
/*
 * ews-transport-stream.c: streaming calls (GetStreamingEvents). Each piece of a 200 body goes to
 * the call's chunk callback as it arrives, nothing buffered, and instead of a total timeout an
 * idle check ends a stream that received nothing for its idle time.
 */
#include "ews/ews-transport-int.h"

#include "base/clock.h"

/* How often the idle check of streams runs (on_itimer): a stream's idle timeout fires up to this
 * late. */
#define IDLE_CHECK_MS 1000u

size_t ews_transport_stream_chunk(struct ews_call *c, const char *data, size_t len)
{
	int rc = c->chunk(c->ctx, data, len, &c->cb_err);

	if (rc < 0) {
		c->cb_rc = rc;
		return CURL_WRITEFUNC_ERROR;
	}
	/* The chunk callback may have cancelled its own call. */
	return c->cancelled ? CURL_WRITEFUNC_ERROR : len;
}

/*
 * Once a second while streams are open: a stream that received nothing (not even a heartbeat)
 * for its idle_sec ends with the idle timeout. libcurl's own low-speed check would do the same,
 * but it wakes the loop once a second for every stream: 250 wakeups a second for 50,000
 * mailboxes, which was most of calsync's CPU when idle (bench/run). One sweep costs one.
 */
static void on_itimer(uv_timer_t *timer)
{
	struct ews_transport *t = timer->data;
	int64_t now = clock_now_usec();
	bool streams = false;
	struct ews_call *c = t->calls;

	while (c != NULL) {
		if (c->chunk == NULL || !c->added || c->done_running || c->cancelled) {
			c = c->next;
			continue;
		}
		if (now - c->last_data_usec < c->idle_sec * USEC_PER_SEC) {
			streams = true;
			c = c->next;
			continue;
		}
		/* The done callback may post or cancel other calls: start over afterwards. */
		ews_transport_call_finish(c, CURLE_OPERATION_TIMEDOUT);
		c = t->calls;
		streams = false;
	}
	if (!streams)
		(void)uv_timer_stop(&t->itimer);
}

void ews_transport_stream_watch(struct ews_transport *t)
{
	if (!uv_is_active((uv_handle_t *)&t->itimer))
		(void)uv_timer_start(&t->itimer, on_itimer, IDLE_CHECK_MS, IDLE_CHECK_MS);
}
