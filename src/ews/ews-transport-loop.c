/* SPDX-License-Identifier: MIT */
/*
 * ews-transport-loop.c: libcurl's multi interface on the libuv loop, in the way of curl's
 * docs/examples/multi-uv.c: libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION)
 * and when to wake it (CURLMOPT_TIMERFUNCTION); we watch them with one uv_poll_t per socket and
 * one uv_timer_t and hand every event back with curl_multi_socket_action(). After each action
 * come the work that could not be done inside libcurl and the finished transfers.
 */
#include "ews/ews-transport-int.h"

#include <assert.h>
#include <errno.h>

#include "base/xalloc.h"

static void handle_closed(struct ews_transport *t)
{
	assert(t->open_handles > 0);
	t->open_handles--;
	if (t->freeing && t->open_handles == 0)
		free(t);
}

static void on_sock_closed(uv_handle_t *h)
{
	struct sock *s = h->data;
	struct ews_transport *t = s->t;

	free(s);
	handle_closed(t);
}

static void on_timer_closed(uv_handle_t *h)
{
	handle_closed(h->data);
}

static void sock_close(struct sock *s)
{
	struct ews_transport *t = s->t;

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		t->socks = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	(void)uv_poll_stop(&s->poll);
	uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

/* Work that could not be done inside libcurl, and the finished transfers. */
static void after_action(struct ews_transport *t)
{
	CURLMsg *msg;
	int pending = 0;

	while ((msg = curl_multi_info_read(t->multi, &pending)) != NULL) {
		struct ews_call *c;
		char *priv = NULL;
		CURLcode res = msg->data.result;

		if (msg->msg != CURLMSG_DONE)
			continue;
		(void)curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		c = (struct ews_call *)(void *)priv;
		if (c->cancelled) {
			ews_transport_call_destroy(c);
			continue;
		}
		if (ews_transport_next_leg(c, res))
			continue;
		ews_transport_call_finish(c, res);
	}
	if (t->reap_needed) {
		struct ews_call *c = t->calls;
		t->reap_needed = false;
		while (c != NULL) {
			struct ews_call *next = c->next;
			if (c->cancelled)
				ews_transport_call_destroy(c);
			c = next;
		}
	}
	if (t->dispatch_needed)
		ews_transport_dispatch(t);
}

static void socket_action(struct ews_transport *t, curl_socket_t fd, int flags)
{
	int running = 0;
	CURLMcode mc;

	t->in_curl++;
	mc = curl_multi_socket_action(t->multi, fd, flags, &running);
	t->in_curl--;
	if (mc != CURLM_OK) {
		ews_transport_fail_all(t, -EIO, curl_multi_strerror(mc));
		return;
	}
	after_action(t);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct sock *s = p->data;
	int flags = 0;

	if (status < 0) {
		flags = CURL_CSELECT_ERR;
	} else {
		if (events & UV_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			flags |= CURL_CSELECT_OUT;
	}
	socket_action(s->t, s->fd, flags);
}

static void on_timer(uv_timer_t *timer)
{
	socket_action(timer->data, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_SOCKETFUNCTION: libcurl says what to watch on fd; socketp is our struct sock. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct ews_transport *t = userp;
	struct sock *s = socketp;
	int events = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			(void)curl_multi_assign(t->multi, fd, NULL);
			sock_close(s);
		}
		return 0;
	}
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		/* A closing handle for a reused fd number is no obstacle: uv_close() has already
		 * unregistered it from the loop. */
		if (uv_poll_init_socket(t->loop, &s->poll, fd) < 0) {
			free(s);
			/* libcurl then marks the whole multi handle dead; socket_action() reports it
			 * and fails every call. It cannot happen unless libuv is out of memory. */
			return -1;
		}
		s->fd = fd;
		s->t = t;
		s->poll.data = s;
		s->next = t->socks;
		if (t->socks != NULL)
			t->socks->prev = s;
		t->socks = s;
		t->open_handles++;
		(void)curl_multi_assign(t->multi, fd, s);
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
	struct ews_transport *t = userp;

	(void)multi;
	if (timeout_ms < 0)
		(void)uv_timer_stop(&t->timer);
	else
		(void)uv_timer_start(&t->timer, on_timer, (uint64_t)timeout_ms, 0);
	return 0;
}

int ews_transport_loop_init(struct ews_transport *t, struct err *err)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return err_set(err, -EIO, "transport: curl_global_init failed");
	t->global_init = true;
	t->multi = curl_multi_init();
	if (t->multi == NULL)
		return err_set(err, -EIO, "transport: curl_multi_init failed");
	(void)curl_multi_setopt(t->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	(void)curl_multi_setopt(t->multi, CURLMOPT_SOCKETDATA, t);
	(void)curl_multi_setopt(t->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	(void)curl_multi_setopt(t->multi, CURLMOPT_TIMERDATA, t);
	/* HTTP/1.1 only, one request per connection at a time: NTLM authenticates connections. */
	(void)curl_multi_setopt(t->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
	/* Every transfer uses a lane's cache, and libcurl applies this cap to each cache: one
	 * idle connection per lane. The connection caps are the lanes' (ews_transport_lane_pick). */
	(void)curl_multi_setopt(t->multi, CURLMOPT_MAXCONNECTS, 1L);
	(void)uv_timer_init(t->loop, &t->timer);
	t->timer.data = t;
	(void)uv_timer_init(t->loop, &t->qtimer);
	t->qtimer.data = t;
	(void)uv_timer_init(t->loop, &t->itimer);
	t->itimer.data = t;
	uv_unref((uv_handle_t *)&t->itimer); /* a check, not work: never keeps the loop alive */
	t->open_handles += 3;
	return 0;
}

void ews_transport_loop_close(struct ews_transport *t)
{
	/* Closing the pooled connections may call on_curl_socket(CURL_POLL_REMOVE). */
	(void)curl_multi_cleanup(t->multi);
	t->multi = NULL;
	while (t->socks != NULL)
		sock_close(t->socks);
	uv_close((uv_handle_t *)&t->timer, on_timer_closed);
	uv_close((uv_handle_t *)&t->qtimer, on_timer_closed);
	uv_close((uv_handle_t *)&t->itimer, on_timer_closed);
}
