/* SPDX-License-Identifier: MIT */
/*
 * http-client-int.h: the HTTP client's insides, shared by its files and by nothing else. The
 * public interface is http-client.h. The files:
 *
 *   http-client.c       the public functions: options, a client's life, send, cancel
 *   http-client-loop.c  libcurl's multi handle on the libuv loop: sockets, the timer, the
 *                       finished transfers after each action, the deadline of waiting calls
 *   http-client-easy.c  a call's easy handle: URL, method, headers, body, TLS, proxy
 *   http-client-call.c  a call's answer (status, captured headers, bounded body), its outcome
 *                       as rc and message, its done callback, freeing
 *
 * Everything runs on the loop's thread. User code (a done callback) never runs inside
 * curl_multi_socket_action(): libcurl calls back only our socket, timer, header and write
 * functions, and the done callbacks run after the action returned. So every user call
 * (send, cancel, free) may add and remove easy handles directly.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <uv.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/list.h"
#include "http/http-client.h"

/* Host names in messages are cut here so that the rest of the message fits in struct err. */
#define HTTP_HOST_IN_MSG 64u

/* The deadline check fails a call this long after its timeout, so that libcurl, which knows
 * better what timed out (connect or answer), reports first whenever it can. It catches what
 * libcurl does not time out: a transfer waiting in its queue for a connection. */
#define HTTP_DEADLINE_SLACK_MSEC 50

/* A socket libcurl asked us to watch. */
struct http_sock {
	uv_poll_t poll;
	curl_socket_t fd;
	struct http_client *client;
	struct list_node link; /* client->socks */
};

struct http_call {
	struct http_client *client;
	struct list_node link; /* client->calls, oldest first */
	CURL *easy;
	enum http_method method;
	struct curl_slist *headers; /* wiped when freed: it may hold the Authorization line */
	char *body;                 /* a copy, wiped when freed: it may hold a client secret */
	size_t body_len;
	http_done_fn *done;
	void *ctx;
	int64_t start_usec;
	int64_t timeout_usec;
	bool https;
	bool wipe_resp;    /* the request's secret_response */
	bool added;        /* in the multi handle */
	bool done_running; /* its done callback is running */

	/* The answer; the headers are reset at every status line (1xx). */
	struct buf resp;
	char content_type[HTTP_MAX_HEADER_VALUE];
	char request_id[HTTP_MAX_HEADER_VALUE];
	char client_request_id[HTTP_MAX_HEADER_VALUE];
	char retry_after[HTTP_MAX_HEADER_VALUE];
	char www_auth[HTTP_MAX_WWW_AUTH];
	char *location; /* NULL when absent */

	int cb_rc; /* why our write callback or the deadline check stopped the call */
	struct err cb_err;
	char errbuf[CURL_ERROR_SIZE];
	char host[HTTP_HOST_IN_MSG + 1];
};

struct http_client {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;    /* libcurl's */
	uv_timer_t deadline; /* calls past their timeout that libcurl did not end */
	bool global_init;
	struct list_node socks;
	struct list_node calls;
	size_t n_calls;
	unsigned in_done;      /* inside a done callback */
	bool freeing;          /* http_client_free() was called */
	bool torn_down;        /* the multi handle is gone and the handles are closing */
	bool dead;             /* the multi handle failed; every later send fails */
	unsigned open_handles; /* uv handles not yet closed; the last close frees the client */

	char *ca_file;
	char *proxy;
	char *user_agent;
	bool insecure;
	bool http2;
	int64_t connect_timeout_usec;
	int64_t timeout_usec;
	size_t max_response;
	unsigned max_host;
	unsigned max_total;
	unsigned max_requests;
	struct cs_clock clock;
};

/* -- http-client-loop.c ------------------------------------------------------------------ */

/* libcurl's global state, the multi handle wired to c->loop and the two timers. 0, or -EIO
 * with err; on failure no timer is initialised, and the caller releases the rest. */
ATTR_NODISCARD int http_loop_init(struct http_client *c, struct err *err);

/* Closes the multi handle (and with it the pooled connections' sockets) and starts closing
 * the timers; the last close callback frees c. Every call must have been destroyed. */
void http_loop_close(struct http_client *c);

/* Makes sure the deadline check runs by the time call's deadline (plus the slack) passes. */
void http_loop_watch_deadline(struct http_client *c, const struct http_call *call);

/* -- http-client-easy.c ------------------------------------------------------------------ */

/* Everything about call's easy handle: URL, method, headers, body, TLS, proxy, callbacks.
 * 0, or -EINVAL (a bad URL, header or body) or -ENOMEM with err. */
ATTR_NODISCARD int http_easy_setup(struct http_call *call, const struct http_request *req,
                                   struct err *err);

/* Whether v (NUL-terminated) may be sent as a header value: 1..max bytes of printable ASCII
 * or tab, so no line break can smuggle in another header. */
bool http_header_value_ok(const char *v, size_t max);

/* Wipes and frees a string that may hold a secret. NULL-safe. */
void http_wipe_free(char *s);

/* -- http-client-call.c ------------------------------------------------------------------ */

/* CURLOPT_HEADERFUNCTION and CURLOPT_WRITEFUNCTION; userp is the call. */
size_t http_call_on_header(char *data, size_t size, size_t nitems, void *userp);
size_t http_call_on_body(char *data, size_t size, size_t nmemb, void *userp);

/* Removes and frees call without calling it back. */
void http_call_destroy(struct http_call *call);

/* Runs call's done callback with its outcome (res: how libcurl ended it, or
 * CURLE_ABORTED_BY_CALLBACK with call->cb_rc set), then frees call. If the callback freed the
 * client, the client's teardown runs after it. */
void http_call_finish(struct http_call *call, CURLcode res);

/* Fails call with -ETIMEDOUT if it is past its deadline plus the slack (at now); true then. */
bool http_call_check_deadline(struct http_call *call, int64_t now);

/* Ends every call with rc and the message what, and marks the client dead. */
void http_fail_all(struct http_client *c, int rc, const char *what);

/* The client's end: multi handle, handles, strings (http_client_free, or after the done
 * callback it was called from). */
void http_client_teardown(struct http_client *c);
