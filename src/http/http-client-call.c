/* SPDX-License-Identifier: MIT */
/*
 * http-client-call.c: a call's answer and its end. The header callback keeps the headers the
 * callers read (reset at every status line, so a 100 Continue leaves nothing behind; an
 * over-long value is dropped, never truncated, except WWW-Authenticate's first bytes); the write
 * callback buffers the body up to the cap. At the end, the outcome becomes an rc and a message
 * that names the host, the done callback runs, and the call is freed.
 */
#include "http/http-client-int.h"

#include <errno.h>
#include <inttypes.h>
#include <strings.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "http/http-date.h"

static void reset_headers(struct http_call *call)
{
	call->content_type[0] = '\0';
	call->request_id[0] = '\0';
	call->client_request_id[0] = '\0';
	call->retry_after[0] = '\0';
	call->www_auth[0] = '\0';
	free(call->location);
	call->location = NULL;
	buf_reset(&call->resp);
}

/* A value of n bytes into out (size bytes), or out left empty when it does not fit. */
static void capture(char *out, size_t size, const char *v, size_t n)
{
	if (n >= size) {
		out[0] = '\0';
		return;
	}
	memcpy(out, v, n);
	out[n] = '\0';
}

static bool name_is(const char *name, size_t n, const char *want)
{
	return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

/* CURLOPT_HEADERFUNCTION: one whole header line (with its CRLF), or a status line. */
size_t http_call_on_header(char *data, size_t size, size_t nitems, void *userp)
{
	struct http_call *call = userp;
	size_t len = size * nitems;
	size_t colon = 0;
	const char *v;
	size_t n;

	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		reset_headers(call);
		return len;
	}
	while (colon < len && data[colon] != ':')
		colon++;
	if (colon == len)
		return len;
	v = data + colon + 1;
	n = len - colon - 1;
	while (n > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n > 0 &&
	       (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (name_is(data, colon, "Content-Type"))
		capture(call->content_type, sizeof(call->content_type), v, n);
	else if (name_is(data, colon, "request-id"))
		capture(call->request_id, sizeof(call->request_id), v, n);
	else if (name_is(data, colon, "client-request-id"))
		capture(call->client_request_id, sizeof(call->client_request_id), v, n);
	else if (name_is(data, colon, "Retry-After"))
		capture(call->retry_after, sizeof(call->retry_after), v, n);
	else if (name_is(data, colon, "Location") && n < HTTP_MAX_LOCATION) {
		free(call->location);
		call->location = xmemdup(v, n);
	} else if (name_is(data, colon, "WWW-Authenticate") && call->www_auth[0] == '\0')
		capture(call->www_auth, sizeof(call->www_auth), v,
		        n < sizeof(call->www_auth) ? n : sizeof(call->www_auth) - 1);
	return len;
}

/* CURLOPT_WRITEFUNCTION: the body into the bounded buffer; past the cap the transfer ends. */
size_t http_call_on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct http_call *call = userp;
	size_t len = size * nmemb;

	if (buf_append(&call->resp, data, len, NULL) < 0) {
		call->cb_rc = err_set(&call->cb_err, -EMSGSIZE,
		                      "%s %s: answer over the limit of %zu bytes, aborted",
		                      http_method_name(call->method), call->host, call->resp.max);
		return CURL_WRITEFUNC_ERROR;
	}
	return len;
}

/* rc and message for a transfer libcurl ended with the error res. */
static int classify(struct http_call *call, CURLcode res, struct err *err)
{
	const char *m = http_method_name(call->method);
	const char *h = call->host;
	const char *why = call->errbuf[0] ? call->errbuf : curl_easy_strerror(res);
	curl_off_t connected = 0;

	switch (res) {
	case CURLE_COULDNT_RESOLVE_HOST:
		return err_set(err, -EHOSTUNREACH, "%s %s: DNS: cannot resolve the host name: %s",
		               m, h, why);
	case CURLE_COULDNT_RESOLVE_PROXY:
		return err_set(err, -EHOSTUNREACH, "%s %s: DNS: cannot resolve the proxy: %s", m, h,
		               why);
	case CURLE_COULDNT_CONNECT:
		return err_set(err, -ECONNREFUSED,
		               "%s %s: cannot connect%s (refused or unreachable): %s", m, h,
		               call->client->proxy != NULL ? " through the proxy" : "", why);
	case CURLE_OPERATION_TIMEDOUT:
		(void)curl_easy_getinfo(call->easy, CURLINFO_PRETRANSFER_TIME_T, &connected);
		if (connected == 0)
			return err_set(err, -ETIMEDOUT, "%s %s: connect timed out: %s", m, h, why);
		return err_set(err, -ETIMEDOUT, "%s %s: no complete answer within %" PRId64 " ms",
		               m, h, call->timeout_usec / 1000);
	case CURLE_PEER_FAILED_VERIFICATION:
		return err_set(err, -EKEYREJECTED,
		               "%s %s: TLS: certificate not trusted (wrong or missing CA file, or "
		               "it does not name this host): %s",
		               m, h, why);
	case CURLE_SSL_CACERT_BADFILE:
		return err_set(err, -ENOENT, "%s %s: TLS: cannot read the CA file: %s", m, h, why);
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_USE_SSL_FAILED:
		return err_set(err, -EPROTO, "%s %s: TLS handshake failed: %s", m, h, why);
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return err_set(err, -ECONNRESET,
		               "%s %s: the connection was closed or reset before the answer was "
		               "whole: %s",
		               m, h, why);
	case CURLE_FILESIZE_EXCEEDED:
		return err_set(
			err, -EMSGSIZE,
			"%s %s: answer over the limit of %zu bytes (Content-Length), not read", m,
			h, call->resp.max);
	case CURLE_PROXY:
		return err_set(err, -ECONNREFUSED, "%s %s: the proxy refused the tunnel: %s", m, h,
		               why);
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_BAD_CONTENT_ENCODING:
		return err_set(err, -EPROTO, "%s %s: malformed HTTP answer: %s", m, h, why);
	case CURLE_OUT_OF_MEMORY:
		return err_set(err, -ENOMEM, "%s %s: %s", m, h, why);
	default:
		return err_set(err, -EIO, "%s %s: curl error %d: %s", m, h, (int)res, why);
	}
}

void http_call_destroy(struct http_call *call)
{
	struct http_client *c = call->client;

	if (call->added)
		(void)curl_multi_remove_handle(c->multi, call->easy);
	call->added = false;
	curl_easy_cleanup(call->easy);
	for (struct curl_slist *p = call->headers; p != NULL; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(call->headers);
	if (call->body != NULL)
		explicit_bzero(call->body, call->body_len);
	free(call->body);
	if (call->wipe_resp && call->resp.data != NULL)
		explicit_bzero(call->resp.data, call->resp.cap);
	buf_free(&call->resp);
	free(call->location);
	list_unlink(&call->link);
	c->n_calls--;
	free(call);
	if (list_empty(&c->calls) && !c->torn_down)
		(void)uv_timer_stop(&c->deadline);
}

void http_call_finish(struct http_call *call, CURLcode res)
{
	struct http_client *c = call->client;
	struct http_response r = {
		.body = call->resp.data != NULL ? call->resp.data : "",
		.body_len = call->resp.len,
		.content_type = call->content_type[0] ? call->content_type : NULL,
		.location = call->location,
		.request_id = call->request_id[0] ? call->request_id : NULL,
		.client_request_id = call->client_request_id[0] ? call->client_request_id : NULL,
		.www_authenticate = call->www_auth[0] ? call->www_auth : NULL,
		.retry_after_ms = -1,
		.elapsed_usec = clock_now_usec() - call->start_usec,
	};

	(void)curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &r.status);
	if (call->retry_after[0])
		r.retry_after_ms = http_retry_after_ms(call->retry_after, strlen(call->retry_after),
		                                       clock_now_ms(&c->clock));
	if (call->cb_rc < 0) {
		r.rc = call->cb_rc;
		r.err = call->cb_err;
	} else if (res != CURLE_OK) {
		r.rc = classify(call, res, &r.err);
	}
	log_debug("http: %s %s: rc %d, HTTP %ld, %zu bytes, %" PRId64 " ms, request-id %s",
	          http_method_name(call->method), call->host, r.rc, r.status, r.body_len,
	          r.elapsed_usec / 1000, r.request_id != NULL ? r.request_id : "-");
	if (call->added)
		(void)curl_multi_remove_handle(c->multi, call->easy);
	call->added = false;
	call->done_running = true;
	c->in_done++;
	call->done(call->ctx, call, &r);
	c->in_done--;
	http_call_destroy(call);
	if (c->freeing && c->in_done == 0)
		http_client_teardown(c);
}

bool http_call_check_deadline(struct http_call *call, int64_t now)
{
	struct http_client *c = call->client;
	const char *m = http_method_name(call->method);
	curl_off_t connected = 0;

	if (call->done_running ||
	    now - call->start_usec < call->timeout_usec + HTTP_DEADLINE_SLACK_MSEC * 1000)
		return false;
	(void)curl_easy_getinfo(call->easy, CURLINFO_PRETRANSFER_TIME_T, &connected);
	if (connected == 0)
		call->cb_rc = err_set(&call->cb_err, -ETIMEDOUT,
		                      "%s %s: no answer within %" PRId64
		                      " ms: no connection free (at most %u to a host, %u in all)",
		                      m, call->host, call->timeout_usec / 1000, c->max_host,
		                      c->max_total);
	else
		call->cb_rc = err_set(&call->cb_err, -ETIMEDOUT,
		                      "%s %s: no complete answer within %" PRId64 " ms", m,
		                      call->host, call->timeout_usec / 1000);
	http_call_finish(call, CURLE_ABORTED_BY_CALLBACK);
	return true;
}

void http_fail_all(struct http_client *c, int rc, const char *what)
{
	c->dead = true;
	while (!c->freeing && !list_empty(&c->calls)) {
		struct http_call *call =
			container_of(list_first(&c->calls), struct http_call, link);
		call->cb_rc = err_set(&call->cb_err, rc, "%s %s: %s",
		                      http_method_name(call->method), call->host, what);
		http_call_finish(call, CURLE_ABORTED_BY_CALLBACK);
	}
}
