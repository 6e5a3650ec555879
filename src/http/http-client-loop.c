/* SPDX-License-Identifier: MIT */
/*
 * http-client-loop.c: libcurl's multi interface on the libuv loop, in the way of curl's
 * docs/examples/multi-uv.c: libcurl says which sockets to watch (CURLMOPT_SOCKETFUNCTION) and
 * when to wake it (CURLMOPT_TIMERFUNCTION); one uv_poll_t per socket and one uv_timer_t hand
 * every event back with curl_multi_socket_action(), after which the finished transfers are
 * called back. A second timer, the deadline check, ends the calls that libcurl keeps waiting
 * for a connection past their timeout (it does not time out its queue).
 */
#include "http/http-client-int.h"

#include <assert.h>
#include <errno.h>

#include "base/xalloc.h"

static void handle_closed(struct http_client *c)
{
	assert(c->open_handles > 0);
	c->open_handles--;
	if (c->open_handles == 0)
		free(c);
}

static void on_sock_closed(uv_handle_t *h)
{
	struct http_sock *s = h->data;
	struct http_client *c = s->client;

	free(s);
	handle_closed(c);
}

static void on_timer_closed(uv_handle_t *h)
{
	handle_closed(h->data);
}

static void sock_close(struct http_sock *s)
{
	list_unlink(&s->link);
	(void)uv_poll_stop(&s->poll);
	uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

/* The finished transfers. A callback may free the client: then nothing more is read. */
static void after_action(struct http_client *c)
{
	CURLMsg *msg;
	int pending = 0;

	while (!c->freeing && (msg = curl_multi_info_read(c->multi, &pending)) != NULL) {
		char *priv = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		(void)curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		http_call_finish((struct http_call *)(void *)priv, msg->data.result);
	}
}

static void socket_action(struct http_client *c, curl_socket_t fd, int flags)
{
	int running = 0;
	CURLMcode mc;

	if (c->freeing)
		return;
	mc = curl_multi_socket_action(c->multi, fd, flags, &running);
	if (mc != CURLM_OK) {
		http_fail_all(c, -EIO, curl_multi_strerror(mc));
		return;
	}
	after_action(c);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct http_sock *s = p->data;
	int flags = 0;

	if (status < 0) {
		flags = CURL_CSELECT_ERR;
	} else {
		if (events & UV_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			flags |= CURL_CSELECT_OUT;
	}
	socket_action(s->client, s->fd, flags);
}

static void on_timer(uv_timer_t *timer)
{
	socket_action(timer->data, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_SOCKETFUNCTION: libcurl says what to watch on fd; socketp is our struct. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct http_client *c = userp;
	struct http_sock *s = socketp;
	int events = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			(void)curl_multi_assign(c->multi, fd, NULL);
			sock_close(s);
		}
		return 0;
	}
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		/* A closing handle for a reused fd number is no obstacle: uv_close() has already
		 * unregistered it from the loop. */
		if (uv_poll_init_socket(c->loop, &s->poll, fd) < 0) {
			free(s);
			/* libcurl then fails the multi handle; socket_action() fails every call. */
			return -1;
		}
		s->fd = fd;
		s->client = c;
		s->poll.data = s;
		list_append(&c->socks, &s->link);
		c->open_handles++;
		(void)curl_multi_assign(c->multi, fd, s);
	}
	if (what & CURL_POLL_IN)
		events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	(void)uv_poll_start(&s->poll, events, on_poll);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: one timer for the whole multi handle. A 0 timeout fires on the next
 * loop iteration: libcurl must not be called back from inside its own callback. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct http_client *c = userp;

	(void)multi;
	if (timeout_ms < 0)
		(void)uv_timer_stop(&c->timer);
	else
		(void)uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
	return 0;
}

/* Milliseconds from now until call's deadline check is due (at least 1). */
static uint64_t deadline_in_ms(const struct http_call *call, int64_t now)
{
	int64_t left = call->start_usec + call->timeout_usec - now;

	if (left < 0)
		left = 0;
	return (uint64_t)((left + 999) / 1000) + HTTP_DEADLINE_SLACK_MSEC;
}

static void on_deadline(uv_timer_t *timer);

void http_loop_watch_deadline(struct http_client *c, const struct http_call *call)
{
	uint64_t due = deadline_in_ms(call, clock_now_usec());

	if (uv_is_active((uv_handle_t *)&c->deadline) && uv_timer_get_due_in(&c->deadline) <= due)
		return;
	(void)uv_timer_start(&c->deadline, on_deadline, due, 0);
}

/* Fails the calls past their deadline, oldest first, then waits for the next one. A callback
 * may cancel any call or free the client, so the scan restarts after each one it fails. */
static void on_deadline(uv_timer_t *timer)
{
	struct http_client *c = timer->data;
	struct list_node *n;
	bool again = true;
	int64_t now = clock_now_usec();
	uint64_t next = UINT64_MAX;

	while (again && !c->freeing) {
		again = false;
		list_for_each (n, &c->calls) {
			if (http_call_check_deadline(container_of(n, struct http_call, link),
			                             now)) {
				again = true;
				break;
			}
		}
	}
	if (c->freeing)
		return;
	list_for_each (n, &c->calls) {
		uint64_t due = deadline_in_ms(container_of(n, struct http_call, link), now);
		if (due < next)
			next = due;
	}
	if (next != UINT64_MAX)
		(void)uv_timer_start(&c->deadline, on_deadline, next, 0);
}

int http_loop_init(struct http_client *c, struct err *err)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return err_set(err, -EIO, "HTTP client: curl_global_init failed");
	c->global_init = true;
	c->multi = curl_multi_init();
	if (c->multi == NULL)
		return err_set(err, -EIO, "HTTP client: curl_multi_init failed");
	(void)curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	(void)curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	(void)curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	(void)curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	/* HTTP/2 streams share a connection; HTTP/1.1 has one request per connection at a time
	 * (libcurl no longer pipelines). */
	(void)curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	(void)curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)c->max_host);
	(void)curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)c->max_total);
	/* Idle connections kept for reuse: as many as may be open. */
	(void)curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)c->max_total);
	(void)uv_timer_init(c->loop, &c->timer);
	c->timer.data = c;
	(void)uv_timer_init(c->loop, &c->deadline);
	c->deadline.data = c;
	c->open_handles += 2;
	return 0;
}

void http_loop_close(struct http_client *c)
{
	/* Closing the pooled connections may call on_curl_socket(CURL_POLL_REMOVE). */
	(void)curl_multi_cleanup(c->multi);
	c->multi = NULL;
	while (!list_empty(&c->socks))
		sock_close(container_of(list_first(&c->socks), struct http_sock, link));
	uv_close((uv_handle_t *)&c->timer, on_timer_closed);
	uv_close((uv_handle_t *)&c->deadline, on_timer_closed);
}
