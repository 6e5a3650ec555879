/* SPDX-License-Identifier: MIT */
/*
 * ews-transport-easy.c: a call's easy handle. What is the same on every leg is set once, at
 * post: the URL (its host and origin kept for messages, the SPN and lanes), the headers, TLS,
 * the proxy, the callbacks and the body. What changes per leg is set when the leg starts: the
 * time left, the authentication (libcurl's own, or our NTLM's Authorization header) and the
 * body (none on NTLM's first leg).
 */
#include "ews/ews-transport-int.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>

#include "base/clock.h"
#include "base/xalloc.h"

/* Longest URL we accept; EWS and Autodiscover URLs are well under 200 bytes. */
#define EWS_MAX_URL 2048u

/* TCP keep-alive for idle pooled connections and quiet streams (EWS-REFERENCE 4.3). */
#define TCP_KEEPIDLE_SEC  60L
#define TCP_KEEPINTVL_SEC 20L

void ews_transport_wipe_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void ews_transport_wipe_slist(struct curl_slist **l)
{
	for (struct curl_slist *p = *l; p != NULL; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(*l);
	*l = NULL;
}

/* A value we may put into a request header: 1..EWS_MAX_REQUEST_HEADER printable ASCII bytes, so
 * no line break can smuggle in another header. */
bool ews_transport_header_value_ok(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > EWS_MAX_REQUEST_HEADER)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];
		if (ch < 0x20 || ch > 0x7e)
			return false;
	}
	return true;
}

/* RFC 6265 cookie-octet: printable ASCII without space, '"', ',', ';' and '\'. */
bool ews_transport_cookie_value_ok(const char *v, size_t n)
{
	if (n == 0 || n >= EWS_MAX_HEADER_VALUE)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];
		if (ch <= 0x20 || ch > 0x7e || ch == '"' || ch == ',' || ch == ';' || ch == '\\')
			return false;
	}
	return true;
}

/*
 * Sets up the URL and keeps its host (for messages and the SPN) and its origin (for lanes);
 * rejects credentials in the URL.
 */
static int set_url(struct ews_call *c, const char *url, struct err *err)
{
	CURLU *u;
	char *part = NULL;
	char *port = NULL;
	char *scheme = NULL;
	int rc = 0;
	int n;

	if (url == NULL || url[0] == '\0')
		return err_set(err, -EINVAL, "POST: no URL");
	if (strlen(url) > EWS_MAX_URL)
		return err_set(err, -EINVAL, "POST: URL over %u bytes", EWS_MAX_URL);
	u = curl_url();
	if (u == NULL)
		return err_set(err, -ENOMEM, "POST: curl_url failed");
	/* The URL is printed in messages only once we know it holds no user:password@. */
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
		rc = err_set(err, -EINVAL, "POST: malformed URL");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK) {
		rc = err_set(err, -EINVAL, "POST: the URL holds credentials; pass them as options");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0)) {
		rc = err_set(err, -EINVAL, "POST: URL '%.128s' is not http:// or https://", url);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &part, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		rc = err_set(err, -EINVAL, "POST: URL '%.128s' has no host", url);
		goto out;
	}
	c->https = strcmp(scheme, "https") == 0;
	(void)snprintf(c->host, sizeof(c->host), "%s", part);
	n = snprintf(c->origin, sizeof(c->origin), "%s://%s:%s", scheme, part, port);
	if (n < 0 || (size_t)n >= sizeof(c->origin)) {
		rc = err_set(err, -EINVAL, "POST: the host name in '%.128s' is too long", url);
		goto out;
	}
	(void)snprintf(c->spn, sizeof(c->spn), "HTTP/%s", part);
	if (curl_easy_setopt(c->easy, CURLOPT_URL, url) != CURLE_OK)
		rc = err_set(err, -EINVAL, "POST: libcurl refused the URL '%.128s'", url);
out:
	curl_free(part);
	curl_free(port);
	curl_free(scheme);
	curl_url_cleanup(u);
	return rc;
}

static int add_header(struct ews_call *c, const char *name, const char *value, struct err *err)
{
	char line[EWS_MAX_REQUEST_HEADER + 64];
	struct curl_slist *l;

	if (!ews_transport_header_value_ok(value))
		return err_set(err, -EINVAL,
		               "POST: bad %s value (empty, over %u bytes, or not printable ASCII)",
		               name, EWS_MAX_REQUEST_HEADER);
	(void)snprintf(line, sizeof(line), "%s: %s", name, value);
	l = curl_slist_append(c->headers, line);
	if (l == NULL)
		return err_set(err, -ENOMEM, "POST: out of memory");
	c->headers = l;
	return 0;
}

/* Everything about c's easy handle that is the same on every leg; the authentication, the
 * body and the lane are set per leg. */
int ews_transport_setup_easy(struct ews_call *c, const struct ews_call_opts *o, const char *body,
                             size_t len, struct err *err)
{
	struct ews_transport *t = c->t;
	CURL *e = c->easy;
	char cookie[EWS_MAX_HEADER_VALUE + 32];
	char quoted[EWS_MAX_REQUEST_HEADER + 3];
	int rc;

	rc = set_url(c, o->url, err);
	if (rc < 0)
		return rc;
	/* Never verbose: its trace would show the Authorization headers. */
	(void)curl_easy_setopt(e, CURLOPT_VERBOSE, 0L);
	(void)curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(e, CURLOPT_PRIVATE, c);
	(void)curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
	(void)curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	(void)curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	(void)curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	(void)curl_easy_setopt(e, CURLOPT_USERAGENT, t->user_agent);
	(void)curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	(void)curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, TCP_KEEPIDLE_SEC);
	(void)curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, TCP_KEEPINTVL_SEC);
	(void)curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, EWS_MAX_IDLE_SEC);
	(void)curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	                       (long)((t->connect_timeout_usec + 999) / 1000));

	/* TLS: verified unless the caller asked for the insecure mode, TLS 1.2 at least. */
	(void)curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	(void)curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, t->insecure ? 0L : 1L);
	(void)curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, t->insecure ? 0L : 2L);
	if (t->ca_file != NULL)
		(void)curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file);

	/* "" stops libcurl from reading http_proxy and friends from the environment. A proxy is
	 * always used as a CONNECT tunnel, for plain HTTP too: one client connection is then one
	 * server connection, which NTLM needs, and the proxy sees no EWS headers. Over a tunnel
	 * TLS still ends at the server, so the channel binding is the server's certificate. */
	(void)curl_easy_setopt(e, CURLOPT_PROXY, t->proxy != NULL ? t->proxy : "");
	if (t->proxy != NULL) {
		(void)curl_easy_setopt(e, CURLOPT_HTTPPROXYTUNNEL, 1L);
		(void)curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	}

	rc = add_header(c, "Content-Type", "text/xml; charset=utf-8", err);
	/* No "Expect: 100-continue" round trip for large bodies. */
	if (rc == 0) {
		struct curl_slist *l = curl_slist_append(c->headers, "Expect:");
		if (l == NULL)
			return err_set(err, -ENOMEM, "POST: out of memory");
		c->headers = l;
	}
	if (rc == 0 && o->anchor_mailbox != NULL)
		rc = add_header(c, "X-AnchorMailbox", o->anchor_mailbox, err);
	if (rc == 0 && o->prefer_affinity)
		rc = add_header(c, "X-PreferServerAffinity", "true", err);
	if (rc == 0)
		rc = add_header(c, "client-request-id", c->client_request_id, err);
	if (rc == 0)
		rc = add_header(c, "return-client-request-id", "true", err);
	if (rc == 0 && o->soap_action != NULL) {
		if (!ews_transport_header_value_ok(o->soap_action) ||
		    strchr(o->soap_action, '"') != NULL)
			return err_set(err, -EINVAL, "POST: bad SOAPAction value");
		(void)snprintf(quoted, sizeof(quoted), "\"%s\"", o->soap_action);
		rc = add_header(c, "SOAPAction", quoted, err);
	}
	if (rc < 0)
		return rc;
	if (o->backend_cookie != NULL) {
		if (!ews_transport_cookie_value_ok(o->backend_cookie, strlen(o->backend_cookie)))
			return err_set(err, -EINVAL, "POST: bad X-BackEndOverrideCookie value");
		(void)snprintf(cookie, sizeof(cookie), "X-BackEndOverrideCookie=%s",
		               o->backend_cookie);
		(void)curl_easy_setopt(e, CURLOPT_COOKIE, cookie);
	}

	c->req = xmalloc(len + 1);
	if (len > 0)
		memcpy(c->req, body, len);
	c->req[len] = '\0';
	c->req_len = len;
	(void)curl_easy_setopt(e, CURLOPT_POST, 1L);

	(void)curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, ews_transport_on_header);
	(void)curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
	(void)curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, ews_transport_on_body);
	(void)curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
	if (c->chunk == NULL) {
		/* A stream lasts up to ConnectionTimeout (30 min): no total timeout, but the idle
		 * check (on_itimer) ends it when nothing arrived for idle_sec seconds. A cap, if the
		 * caller set one, is set per leg (ews_transport_leg_start). */
		(void)curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->max_response);
	}
	return 0;
}

/* A copy of c's headers plus "Authorization: <auth>". */
static int leg_headers(struct ews_call *c, const char *auth, struct err *err)
{
	struct curl_slist *l = NULL;
	struct buf line;
	int rc = 0;

	ews_transport_wipe_slist(&c->leg_headers);
	for (struct curl_slist *p = c->headers; p != NULL && rc == 0; p = p->next) {
		struct curl_slist *n = curl_slist_append(l, p->data);
		if (n == NULL)
			rc = err_set(err, -ENOMEM, "POST to %s: out of memory", c->host);
		else
			l = n;
	}
	buf_init(&line, EWS_MAX_NTLM_HEADER + 32);
	if (rc == 0 && (buf_append(&line, "Authorization: ", 15, NULL) < 0 ||
	                buf_append(&line, auth, strlen(auth), NULL) < 0))
		rc = err_set(err, -EMSGSIZE, "POST to %s: NTLM message too long", c->host);
	if (rc == 0) {
		struct curl_slist *n = curl_slist_append(l, line.data);
		if (n == NULL)
			rc = err_set(err, -ENOMEM, "POST to %s: out of memory", c->host);
		else
			l = n;
	}
	if (line.data != NULL)
		explicit_bzero(line.data, line.len);
	buf_free(&line);
	c->leg_headers = l;
	if (rc < 0)
		ews_transport_wipe_slist(&c->leg_headers);
	return rc;
}

/* libcurl's own authentication for a call that does not use ours. */
static void set_auth(struct ews_call *c)
{
	struct ews_transport *t = c->t;
	CURL *e = c->easy;
	unsigned long method = CURLAUTH_NONE;
	const char *user = NULL;
	const char *password = NULL;

	if (!c->our_ntlm) {
		switch (t->auth) {
		case EWS_AUTH_BASIC:
			method = CURLAUTH_BASIC;
			user = t->user;
			password = t->password;
			break;
		case EWS_AUTH_NEGOTIATE:
			/* GSS-API takes the Kerberos ticket from the process's credential cache;
			 * libcurl tries only with a user name set, and never needs the password. */
			method = CURLAUTH_NEGOTIATE;
			user = t->user != NULL ? t->user : "";
			break;
		case EWS_AUTH_BEARER:
			method = CURLAUTH_BEARER;
			(void)curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER,
			                       c->token != NULL ? c->token : t->token);
			break;
		case EWS_AUTH_NTLM:
		case EWS_AUTH_NONE:
			break;
		}
	}
	(void)curl_easy_setopt(e, CURLOPT_HTTPAUTH, method);
	(void)curl_easy_setopt(e, CURLOPT_USERNAME, user);
	(void)curl_easy_setopt(e, CURLOPT_PASSWORD, password);
}

/*
 * Puts c into the multi handle for its next request: leg (with the Authorization value auth,
 * or none), on its lane's connection. Outside libcurl only. 0, or a negative errno with err.
 */
int ews_transport_leg_start(struct ews_call *c, enum leg leg, const char *auth, struct err *err)
{
	struct ews_transport *t = c->t;
	CURL *e = c->easy;
	long nc = 0;
	int rc = 0;

	assert(t->in_curl == 0 && c->lane != NULL);
	if (c->added) {
		(void)curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &nc);
		c->prior_connects += nc;
		(void)curl_multi_remove_handle(t->multi, e);
		c->added = false;
	}
	if (c->timeout_usec > 0) {
		int64_t left = c->timeout_usec - (clock_now_usec() - c->start_usec);
		if (left <= 0)
			return err_set(err, -ETIMEDOUT,
			               "POST to %s: no complete answer within %" PRId64 " ms",
			               c->host, c->timeout_usec / 1000);
		(void)curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)((left + 999) / 1000));
	}
	set_auth(c);
	if (auth != NULL)
		rc = leg_headers(c, auth, err);
	else
		ews_transport_wipe_slist(&c->leg_headers);
	if (rc < 0)
		return rc;
	(void)curl_easy_setopt(e, CURLOPT_HTTPHEADER,
	                       c->leg_headers != NULL ? c->leg_headers : c->headers);
	/* NTLM's first leg goes without the body, as libcurl's own NTLM sends it: the server
	 * answers it with a 401 in any case. */
	if (leg == LEG_NEGOTIATE) {
		(void)curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
		(void)curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	} else {
		(void)curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->req);
		(void)curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->req_len);
	}
	c->leg = leg;
	ews_transport_reset_response(c, 0);
	c->bytes = 0;
	c->errbuf[0] = '\0';
	if (curl_multi_add_handle(t->multi, e) != CURLM_OK)
		return err_set(err, -EIO, "POST to %s: libcurl refused the transfer", c->host);
	c->added = true;
	c->last_data_usec = clock_now_usec();
	if (c->chunk != NULL)
		ews_transport_stream_watch(t);
	return 0;
}
