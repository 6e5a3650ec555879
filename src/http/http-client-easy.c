/* SPDX-License-Identifier: MIT */
/*
 * http-client-easy.c: a call's easy handle: the URL (its host kept for messages), the method,
 * the headers (checked: no line break can smuggle in another one), the body, TLS, the proxy
 * and the callbacks.
 */
#include "http/http-client-int.h"

#include <errno.h>
#include <strings.h>

#include "base/xalloc.h"

/* TCP keep-alive for pooled connections. */
#define TCP_KEEPIDLE_SEC  60L
#define TCP_KEEPINTVL_SEC 20L
/* An idle connection is reused for this long; Azure front doors close idle ones after a few
 * minutes, so a connection older than this is more likely dead than alive. */
#define HTTP_MAX_IDLE_SEC 110L

void http_wipe_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

bool http_header_value_ok(const char *v, size_t max)
{
	size_t n = strlen(v);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];
		if ((ch < 0x20 && ch != '\t') || ch > 0x7e)
			return false;
	}
	return true;
}

/* An RFC 9110 token: 1*tchar. */
static bool token_ok(const char *s)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";

	if (s == NULL || s[0] == '\0' || strlen(s) > 64)
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		bool alnum = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		             (*p >= '0' && *p <= '9');
		if (!alnum && strchr(extra, *p) == NULL)
			return false;
	}
	return true;
}

/* The URL into the handle; the host is kept for messages. Credentials in it are refused. */
static int set_url(struct http_call *call, const char *url, struct err *err)
{
	const char *m = http_method_name(call->method);
	CURLU *u;
	char *user = NULL;
	char *host = NULL;
	char *scheme = NULL;
	int rc = 0;

	if (url[0] == '\0' || strlen(url) > HTTP_MAX_URL)
		return err_set(err, -EINVAL, "%s: no URL, or one over %u bytes", m, HTTP_MAX_URL);
	u = curl_url();
	if (u == NULL)
		return err_set(err, -ENOMEM, "%s: curl_url failed", m);
	/* The URL goes into a message only once we know it holds no user:password@. */
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
		rc = err_set(err, -EINVAL, "%s: malformed URL", m);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
		rc = err_set(err, -EINVAL, "%s: the URL holds credentials", m);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0)) {
		rc = err_set(err, -EINVAL, "%s: URL '%.128s' is not http:// or https://", m, url);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		rc = err_set(err, -EINVAL, "%s: URL '%.128s' has no host", m, url);
		goto out;
	}
	(void)snprintf(call->host, sizeof(call->host), "%s", host);
	call->https = strcmp(scheme, "https") == 0;
	if (curl_easy_setopt(call->easy, CURLOPT_URL, url) != CURLE_OK)
		rc = err_set(err, -EINVAL, "%s: libcurl refused the URL '%.128s'", m, url);
out:
	curl_free(user);
	curl_free(host);
	curl_free(scheme);
	curl_url_cleanup(u);
	return rc;
}

static int append(struct http_call *call, const char *line, struct err *err)
{
	struct curl_slist *l = curl_slist_append(call->headers, line);

	if (l == NULL)
		return err_set(err, -ENOMEM, "%s %s: out of memory", http_method_name(call->method),
		               call->host);
	call->headers = l;
	return 0;
}

/* "name: value" into the header list; the line is wiped after libcurl copied it. */
static int add_header(struct http_call *call, const char *name, const char *value, struct err *err)
{
	char line[HTTP_MAX_REQUEST_HEADER + 96];
	int rc;

	if (!http_header_value_ok(value, HTTP_MAX_REQUEST_HEADER))
		return err_set(err, -EINVAL,
		               "%s %s: bad %s value (empty, over %u bytes, or not printable ASCII)",
		               http_method_name(call->method), call->host, name,
		               HTTP_MAX_REQUEST_HEADER);
	(void)snprintf(line, sizeof(line), "%s: %s", name, value);
	rc = append(call, line, err);
	explicit_bzero(line, sizeof(line));
	return rc;
}

/* The caller's headers, a bearer token and the body's type. */
static int set_headers(struct http_call *call, const struct http_request *req, struct err *err)
{
	static const char *const reserved[] = {"Host", "Content-Length", "Transfer-Encoding",
	                                       "Connection", "Expect"};
	const char *m = http_method_name(call->method);
	int rc = 0;

	if (req->n_headers > HTTP_MAX_REQUEST_HEADERS || (req->n_headers > 0 && !req->headers))
		return err_set(err, -EINVAL, "%s %s: more than %u headers, or none given", m,
		               call->host, HTTP_MAX_REQUEST_HEADERS);
	for (size_t i = 0; i < req->n_headers && rc == 0; i++) {
		const struct http_header *h = &req->headers[i];
		if (!token_ok(h->name) || h->value == NULL)
			return err_set(err, -EINVAL, "%s %s: bad header name or no value", m,
			               call->host);
		for (size_t k = 0; k < sizeof(reserved) / sizeof(reserved[0]); k++) {
			if (strcasecmp(h->name, reserved[k]) == 0)
				return err_set(err, -EINVAL, "%s %s: header %s is libcurl's to set",
				               m, call->host, reserved[k]);
		}
		if (req->bearer_token != NULL && strcasecmp(h->name, "Authorization") == 0)
			return err_set(err, -EINVAL, "%s %s: Authorization and a bearer token", m,
			               call->host);
		rc = add_header(call, h->name, h->value, err);
	}
	if (rc == 0 && req->bearer_token != NULL) {
		char value[HTTP_MAX_REQUEST_HEADER + 8];
		if (!http_header_value_ok(req->bearer_token, HTTP_MAX_REQUEST_HEADER) ||
		    strchr(req->bearer_token, ' ') != NULL || strchr(req->bearer_token, '\t'))
			return err_set(err, -EINVAL, "%s %s: bad bearer token", m, call->host);
		(void)snprintf(value, sizeof(value), "Bearer %s", req->bearer_token);
		rc = add_header(call, "Authorization", value, err);
		explicit_bzero(value, sizeof(value));
	}
	if (rc == 0 && req->body != NULL)
		rc = add_header(call, "Content-Type",
		                req->content_type != NULL ? req->content_type : "application/json",
		                err);
	else if (rc == 0)
		rc = append(call, "Content-Type:", err); /* not libcurl's form-encoded default */
	/* No "Expect: 100-continue" round trip before a large body. */
	if (rc == 0)
		rc = append(call, "Expect:", err);
	if (rc == 0)
		(void)curl_easy_setopt(call->easy, CURLOPT_HTTPHEADER, call->headers);
	return rc;
}

static void set_method_and_body(struct http_call *call, const struct http_request *req)
{
	CURL *e = call->easy;

	if (req->method != HTTP_GET && req->method != HTTP_POST)
		(void)curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, http_method_name(req->method));
	/* A GET, or a DELETE without a body, goes without one; every other request sends its
	 * body, or Content-Length: 0. */
	if (req->method == HTTP_GET || (req->method == HTTP_DELETE && req->body == NULL)) {
		(void)curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
		return;
	}
	call->body = xmalloc(req->body_len + 1);
	if (req->body_len > 0)
		memcpy(call->body, req->body, req->body_len);
	call->body[req->body_len] = '\0';
	call->body_len = req->body_len;
	(void)curl_easy_setopt(e, CURLOPT_POST, 1L);
	(void)curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body);
	(void)curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
}

/* TLS, the proxy, timeouts, limits and the callbacks: the same for every call. */
static void set_common(struct http_call *call)
{
	struct http_client *c = call->client;
	CURL *e = call->easy;

	/* Never verbose: its trace would show the Authorization header. */
	(void)curl_easy_setopt(e, CURLOPT_VERBOSE, 0L);
	(void)curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(e, CURLOPT_PRIVATE, call);
	(void)curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf);
	(void)curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	(void)curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	(void)curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
	                       c->http2 ? (long)CURL_HTTP_VERSION_2TLS
	                                : (long)CURL_HTTP_VERSION_1_1);
	/* Over TLS, wait for a connection being set up that may multiplex (its ALPN answer
	 * decides) rather than open another one. Never for http://: there libcurl learns only
	 * from the first answer that the connection cannot multiplex, and a slow first answer
	 * would hold back every other request to the host. */
	if (c->http2 && call->https)
		(void)curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	(void)curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
	/* gzip and friends; the body cap applies to the decoded bytes. */
	(void)curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	(void)curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	(void)curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, TCP_KEEPIDLE_SEC);
	(void)curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, TCP_KEEPINTVL_SEC);
	(void)curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, HTTP_MAX_IDLE_SEC);
	(void)curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	                       (long)((c->connect_timeout_usec + 999) / 1000));
	(void)curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)((call->timeout_usec + 999) / 1000));

	/* TLS: verified unless the caller asked for the insecure mode; TLS 1.2 at least. */
	(void)curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	(void)curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
	(void)curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c->insecure ? 0L : 2L);
	if (c->ca_file != NULL)
		(void)curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);

	/* "" keeps libcurl from reading http_proxy and friends from the environment. */
	(void)curl_easy_setopt(e, CURLOPT_PROXY, c->proxy != NULL ? c->proxy : "");
	if (c->proxy != NULL) {
		(void)curl_easy_setopt(e, CURLOPT_HTTPPROXYTUNNEL, 1L);
		(void)curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	}

	(void)curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_response);
	(void)curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_call_on_header);
	(void)curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
	(void)curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_call_on_body);
	(void)curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
}

int http_easy_setup(struct http_call *call, const struct http_request *req, struct err *err)
{
	int rc = set_url(call, req->url, err);

	if (rc == 0)
		rc = set_headers(call, req, err);
	if (rc < 0)
		return rc;
	set_method_and_body(call, req);
	set_common(call);
	return 0;
}
