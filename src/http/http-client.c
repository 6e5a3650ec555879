/* SPDX-License-Identifier: MIT */
/*
 * http-client.c: the HTTP client's public functions: the options checked and copied, a client
 * made and freed, requests sent and cancelled. The rest is in http-client-*.c, one job each
 * (the map is atop http-client-int.h).
 *
 * This is the EWS transport's design without what only EWS needs (NTLM lanes, streaming):
 * libcurl's multi interface on the libuv loop, and libcurl's own connection cache, with its
 * per-host and total caps, shared by every request (HTTP/2 multiplexes requests over one
 * connection where the server allows it). The one thing libcurl does not do is time out a
 * transfer that waits in its queue for a connection; the deadline check does
 * (http-client-loop.c).
 */
#include "http/http-client.h"

#include <errno.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "calsync-config.h"
#include "http/http-client-int.h"

static const char *const method_names[] = {
	[HTTP_GET] = "GET",       [HTTP_POST] = "POST", [HTTP_PATCH] = "PATCH",
	[HTTP_DELETE] = "DELETE", [HTTP_PUT] = "PUT",
};

const char *http_method_name(enum http_method m)
{
	if ((size_t)m < sizeof(method_names) / sizeof(method_names[0]))
		return method_names[m];
	return "?";
}

bool http_client_has_http2(void)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

	return v != NULL && (v->features & CURL_VERSION_HTTP2) != 0;
}

static void release(struct http_client *c)
{
	free(c->ca_file);
	http_wipe_free(c->proxy); /* may hold proxy credentials */
	free(c->user_agent);
	c->ca_file = c->proxy = c->user_agent = NULL;
	if (c->global_init)
		curl_global_cleanup();
	c->global_init = false;
}

static int check_opts(const struct http_client_opts *o, struct err *err)
{
	if (o->connect_timeout_usec < 0 || o->timeout_usec < 0)
		return err_set(err, -EINVAL, "HTTP client: negative timeout");
	if (o->user_agent != NULL && !http_header_value_ok(o->user_agent, HTTP_MAX_REQUEST_HEADER))
		return err_set(err, -EINVAL, "HTTP client: bad User-Agent");
	if (o->proxy != NULL && !http_header_value_ok(o->proxy, HTTP_MAX_URL))
		return err_set(err, -EINVAL, "HTTP client: bad proxy URL");
	if (o->ca_file != NULL && o->ca_file[0] == '\0')
		return err_set(err, -EINVAL, "HTTP client: empty CA file name");
	return 0;
}

int http_client_new(struct uv_loop_s *loop, const struct http_client_opts *o,
                    struct http_client **out, struct err *err)
{
	struct http_client *c;
	char ua[64];
	int rc;

	if (loop == NULL || o == NULL || out == NULL)
		return err_set(err, -EINVAL, "HTTP client: no loop or no options");
	rc = check_opts(o, err);
	if (rc < 0)
		return rc;
	c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	list_init(&c->socks);
	list_init(&c->calls);
	c->ca_file = xstrdup_or_null(o->ca_file);
	c->proxy = xstrdup_or_null(o->proxy);
	(void)snprintf(ua, sizeof(ua), "calsync/%s", CALSYNC_VERSION);
	c->user_agent = xstrdup(o->user_agent != NULL ? o->user_agent : ua);
	c->insecure = o->insecure_skip_tls_verify;
	c->http2 = !o->disable_http2 && http_client_has_http2();
	c->connect_timeout_usec =
		o->connect_timeout_usec ? o->connect_timeout_usec : HTTP_CONNECT_TIMEOUT_USEC;
	c->timeout_usec = o->timeout_usec ? o->timeout_usec : HTTP_TIMEOUT_USEC;
	c->max_response = o->max_response ? o->max_response : HTTP_MAX_RESPONSE;
	c->max_host = o->max_host_connections ? o->max_host_connections : HTTP_MAX_HOST_CONNECTIONS;
	c->max_total =
		o->max_total_connections ? o->max_total_connections : HTTP_MAX_TOTAL_CONNECTIONS;
	if (c->max_host > c->max_total)
		c->max_host = c->max_total;
	c->max_requests = o->max_requests ? o->max_requests : HTTP_MAX_REQUESTS;
	if (o->clock != NULL)
		c->clock = *o->clock;
	rc = http_loop_init(c, err);
	if (rc < 0) {
		if (c->multi != NULL)
			(void)curl_multi_cleanup(c->multi);
		release(c);
		free(c);
		return rc;
	}
	if (c->insecure)
		log_warn("HTTP client: TLS certificate verification is OFF "
		         "(insecure_skip_tls_verify): anyone on the network path can read and "
		         "change every request, tokens included; for lab tests only");
	*out = c;
	return 0;
}

void http_client_teardown(struct http_client *c)
{
	if (c->torn_down)
		return;
	c->torn_down = true;
	http_loop_close(c); /* may free c once its handles have closed, never before it returns */
	release(c);
}

void http_client_free(struct http_client *c)
{
	struct list_node *n, *tmp;

	if (c == NULL || c->freeing)
		return;
	c->freeing = true;
	list_for_each_safe (n, tmp, &c->calls) {
		struct http_call *call = container_of(n, struct http_call, link);
		/* The call whose callback is running is freed when its callback returns. */
		if (!call->done_running)
			http_call_destroy(call);
	}
	if (c->in_done == 0)
		http_client_teardown(c);
}

struct uv_loop_s *http_client_loop(const struct http_client *c)
{
	return c->loop;
}

size_t http_client_active(const struct http_client *c)
{
	size_t n = 0;
	const struct list_node *p;

	/* A call whose callback runs has ended: it is not counted. */
	list_for_each (p, &c->calls) {
		if (!container_of_const(p, struct http_call, link)->done_running)
			n++;
	}
	return n;
}

static int check_request(const struct http_client *c, const struct http_request *req,
                         http_done_fn *done, struct err *err)
{
	if (req == NULL || done == NULL || req->url == NULL)
		return err_set(err, -EINVAL, "HTTP: missing request, URL or callback");
	if (c->freeing || c->dead)
		return err_set(err, -EIO, "HTTP: the client is %s",
		               c->dead ? "dead after a libcurl failure" : "being freed");
	if ((unsigned)req->method > HTTP_PUT)
		return err_set(err, -EINVAL, "HTTP: unknown method %d", (int)req->method);
	if (req->body == NULL && req->body_len > 0)
		return err_set(err, -EINVAL, "HTTP: body length without a body");
	if (req->body_len > INT32_MAX)
		return err_set(err, -EMSGSIZE, "HTTP: body of %zu bytes is too large",
		               req->body_len);
	if (req->method == HTTP_GET && req->body_len > 0)
		return err_set(err, -EINVAL, "HTTP: a GET with a body");
	if (req->timeout_usec < 0)
		return err_set(err, -EINVAL, "HTTP: negative timeout");
	if (c->n_calls >= c->max_requests)
		return err_set(err, -ENOBUFS, "HTTP: %zu requests under way, the limit",
		               c->n_calls);
	return 0;
}

int http_send(struct http_client *c, const struct http_request *req, http_done_fn *done, void *ctx,
              struct http_call **out_call, struct err *err)
{
	struct http_call *call;
	int rc;

	if (c == NULL)
		return err_set(err, -EINVAL, "HTTP: no client");
	rc = check_request(c, req, done, err);
	if (rc < 0)
		return rc;
	call = xcalloc(1, sizeof(*call));
	call->client = c;
	call->method = req->method;
	call->wipe_resp = req->secret_response;
	call->done = done;
	call->ctx = ctx;
	call->start_usec = clock_now_usec();
	call->timeout_usec = req->timeout_usec ? req->timeout_usec : c->timeout_usec;
	(void)snprintf(call->host, sizeof(call->host), "?");
	buf_init(&call->resp, c->max_response);
	list_append(&c->calls, &call->link);
	c->n_calls++;

	call->easy = curl_easy_init();
	if (call->easy == NULL) {
		rc = err_set(err, -EIO, "HTTP: curl_easy_init failed");
		goto fail;
	}
	rc = http_easy_setup(call, req, err);
	if (rc < 0)
		goto fail;
	if (curl_multi_add_handle(c->multi, call->easy) != CURLM_OK) {
		rc = err_set(err, -EIO, "%s %s: libcurl refused the transfer",
		             http_method_name(call->method), call->host);
		goto fail;
	}
	call->added = true;
	http_loop_watch_deadline(c, call);
	if (out_call != NULL)
		*out_call = call;
	return 0;
fail:
	http_call_destroy(call);
	return rc;
}

void http_call_cancel(struct http_call *call)
{
	if (call == NULL || call->done_running)
		return;
	http_call_destroy(call);
}
