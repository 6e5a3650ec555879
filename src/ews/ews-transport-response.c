/* SPDX-License-Identifier: MIT */
/*
 * ews-transport-response.c: the answer as libcurl hands it over. The header callback takes the
 * status line and the headers calsync uses (each reset at every status line, so that NTLM's 401
 * legs leave nothing behind; an over-long value is ignored, never truncated); the write callback
 * buffers the body up to its limit, or hands a stream's 200 body on (ews-transport-stream.c).
 */
#include "ews/ews-transport-int.h"

#include <ctype.h>
#include <errno.h>
#include <strings.h>

#include "base/clock.h"

void ews_transport_reset_response(struct ews_call *c, long status)
{
	c->status = status;
	c->offers_ntlm = false;
	ews_transport_wipe_free(c->challenge);
	c->challenge = NULL;
	buf_reset(&c->body);
	c->content_type[0] = '\0';
	c->cookie[0] = '\0';
	c->request_id[0] = '\0';
	c->echoed_id[0] = '\0';
	c->be_server[0] = '\0';
	c->cas_error[0] = '\0';
	c->retry_after[0] = '\0';
}

/* Copies a header value of n bytes into out, or leaves out empty when it is too long. */
static void capture(char out[EWS_MAX_HEADER_VALUE], const char *v, size_t n)
{
	if (n >= EWS_MAX_HEADER_VALUE) {
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

/* "X-BackEndOverrideCookie=<v>; path=/; HttpOnly": keeps <v> when it is a valid cookie value. */
static void capture_cookie(struct ews_call *c, const char *v, size_t n)
{
	static const char want[] = "X-BackEndOverrideCookie=";
	size_t end = 0;

	if (n < sizeof(want) - 1 || strncasecmp(v, want, sizeof(want) - 1) != 0)
		return;
	v += sizeof(want) - 1;
	n -= sizeof(want) - 1;
	while (end < n && v[end] != ';')
		end++;
	while (end > 0 && v[end - 1] == ' ')
		end--;
	if (ews_transport_cookie_value_ok(v, end))
		capture(c->cookie, v, end);
}

/* CURLOPT_HEADERFUNCTION: one whole header line (with its CRLF), or a status line. */
size_t ews_transport_on_header(char *data, size_t size, size_t nitems, void *userp)
{
	struct ews_call *c = userp;
	size_t len = size * nitems;
	size_t colon = 0;
	const char *v;
	size_t n;

	c->last_data_usec = clock_now_usec();
	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		long status = 0;
		size_t i = 5;
		while (i < len && data[i] != ' ')
			i++;
		while (i < len && data[i] == ' ')
			i++;
		for (size_t k = 0; k < 3 && i < len && isdigit((unsigned char)data[i]); k++, i++)
			status = status * 10 + (data[i] - '0');
		ews_transport_reset_response(c, status);
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
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	if (name_is(data, colon, "Set-Cookie"))
		capture_cookie(c, v, n);
	else if (name_is(data, colon, "request-id"))
		capture(c->request_id, v, n);
	else if (name_is(data, colon, "client-request-id"))
		capture(c->echoed_id, v, n);
	else if (name_is(data, colon, "X-BEServer"))
		capture(c->be_server, v, n);
	else if (name_is(data, colon, "X-CasErrorCode"))
		capture(c->cas_error, v, n);
	else if (name_is(data, colon, "Retry-After"))
		capture(c->retry_after, v, n);
	else if (name_is(data, colon, "Content-Type"))
		capture(c->content_type, v, n);
	else if (name_is(data, colon, "WWW-Authenticate"))
		ews_transport_capture_www_auth(c, v, n);
	return len;
}

/* CURLOPT_WRITEFUNCTION: a streaming call's 200 body goes to its chunk callback, everything
 * else into the bounded buffer. Returning CURL_WRITEFUNC_ERROR aborts the transfer. */
size_t ews_transport_on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct ews_call *c = userp;
	size_t len = size * nmemb;

	if (c->cancelled)
		return CURL_WRITEFUNC_ERROR;
	c->bytes += len;
	c->last_data_usec = clock_now_usec();
	if (c->chunk != NULL && c->status == 200)
		return ews_transport_stream_chunk(c, data, len);
	if (buf_append(&c->body, data, len, NULL) < 0) {
		c->cb_rc = err_set(&c->cb_err, -EMSGSIZE,
		                   "POST to %s: answer over the limit of %zu bytes, aborted",
		                   c->host, c->body.max);
		return CURL_WRITEFUNC_ERROR;
	}
	return len;
}
