/* SPDX-License-Identifier: MIT */
/*
 * ews-transport-outcome.c: how a call ended, as the done callback's rc and a message that names
 * the host and says what the outcome usually means (the table in ews-transport.h).
 */
#include "ews/ews-transport-int.h"

#include <errno.h>
#include <inttypes.h>

#include "base/clock.h"

static bool is_xml(const char *content_type)
{
	return strstr(content_type, "xml") != NULL;
}

/* Why our NTLM handshake ended in a 401, as far as the client can tell. */
static const char *ntlm_refused_why(const struct ews_call *c)
{
	if (c->new_conn_leg3)
		return "the connection closed between the NTLM legs (a proxy or load balancer that "
		       "does not keep it)";
	if (!c->https)
		return "wrong user or password, or a locked or expired account";
	if (c->cbt_kind == CBT_CERT)
		return "wrong user or password, a locked account, or Extended Protection refusing "
		       "the channel binding (TLS terminated in between)";
	return "wrong user or password, a locked account, or Extended Protection (no channel "
	       "binding: libcurl's TLS is not OpenSSL)";
}

/* rc and message for an HTTP answer that arrived whole. */
int ews_transport_classify_status(struct ews_call *c, struct err *err)
{
	const char *h = c->host;
	long st = c->status;
	char *loc = NULL;

	if (st == 200)
		return 0;
	if (st == 500 && is_xml(c->content_type) && c->body.len > 0)
		return 0; /* a SOAP fault: the caller parses it */
	if (st == 401) {
		if (c->t->auth == EWS_AUTH_BEARER)
			return err_set(err, -EACCES,
			               "POST to %s: HTTP 401: the server refused the bearer token "
			               "(expired, for another audience, or bearer not enabled)",
			               h);
		if (c->our_ntlm && c->leg == LEG_AUTHENTICATE)
			return err_set(err, -EACCES,
			               "POST to %s: HTTP 401: authentication (%s) failed: %s", h,
			               ews_auth_name(c->t->auth), ntlm_refused_why(c));
		return err_set(
			err, -EACCES,
			"POST to %s: HTTP 401: authentication (%s) failed: wrong user or "
			"password, a locked or expired account, a method the server does not "
			"offer, or Extended Protection requiring channel binding",
			h, ews_auth_name(c->t->auth));
	}
	if (st == 403)
		return err_set(
			err, -EACCES,
			"POST to %s: HTTP 403: forbidden (EWS disabled for the account, or an "
			"IIS restriction such as Require SSL)",
			h);
	if (st == 456)
		return err_set(err, -EACCES, "POST to %s: HTTP 456: the account is locked out", h);
	if (st == 503)
		return err_set(
			err, -EAGAIN,
			"POST to %s: HTTP 503: the server is busy or EWS requests are queueing; "
			"back off",
			h);
	if (st >= 300 && st < 400) {
		(void)curl_easy_getinfo(c->easy, CURLINFO_REDIRECT_URL, &loc);
		return err_set(
			err, -EPROTO,
			"POST to %s: HTTP %ld redirect to '%.96s', not followed (a redirect to "
			"genericerrorpage.htm means an outage)",
			h, st, loc != NULL ? loc : "");
	}
	if (st >= 500)
		return err_set(err, -EIO, "POST to %s: HTTP %ld without a SOAP body%s%s", h, st,
		               c->cas_error[0] ? ": the front end could not proxy, X-CasErrorCode "
		                               : ": an opaque server error",
		               c->cas_error);
	if (st == 0)
		return err_set(err, -EPROTO, "POST to %s: no HTTP status in the answer", h);
	return err_set(err, -EPROTO,
	               "POST to %s: HTTP %ld: the server rejected the request (404: wrong EWS URL; "
	               "415: wrong Content-Type)",
	               h, st);
}

/* rc and message for a transfer libcurl ended with an error. */
int ews_transport_classify_curl(struct ews_call *c, CURLcode res, struct err *err)
{
	const char *h = c->host;
	const char *why = c->errbuf[0] ? c->errbuf : curl_easy_strerror(res);
	curl_off_t connected = 0;

	switch (res) {
	case CURLE_COULDNT_RESOLVE_HOST:
		return err_set(err, -EHOSTUNREACH, "POST to %s: cannot resolve the host name: %s",
		               h, why);
	case CURLE_COULDNT_RESOLVE_PROXY:
		return err_set(err, -EHOSTUNREACH, "POST to %s: cannot resolve the proxy: %s", h,
		               why);
	case CURLE_COULDNT_CONNECT:
		return err_set(err, -ECONNREFUSED,
		               "POST to %s: cannot connect%s (refused or unreachable): %s", h,
		               c->t->proxy != NULL ? " through the proxy" : "", why);
	case CURLE_OPERATION_TIMEDOUT:
		/* Pre-transfer is the moment the request could go out: never reached means we never
		 * got a connection (to the server, or through the proxy). */
		(void)curl_easy_getinfo(c->easy, CURLINFO_PRETRANSFER_TIME_T, &connected);
		if (connected == 0)
			return err_set(err, -ETIMEDOUT, "POST to %s: connect timed out: %s", h,
			               why);
		if (c->chunk != NULL &&
		    (c->timeout_usec == 0 || clock_now_usec() - c->start_usec < c->timeout_usec))
			return err_set(err, -ETIMEDOUT,
			               "POST to %s: stream idle: nothing received for %" PRId64
			               " s, the connection is presumed dead",
			               h, c->idle_sec);
		return err_set(err, -ETIMEDOUT,
		               "POST to %s: no complete answer within %" PRId64 " ms: %s", h,
		               c->timeout_usec / 1000, why);
	case CURLE_PEER_FAILED_VERIFICATION:
		return err_set(
			err, -EKEYREJECTED,
			"POST to %s: TLS certificate not trusted (wrong or missing CA file, or "
			"the certificate does not name this host): %s",
			h, why);
	case CURLE_SSL_CACERT_BADFILE:
		return err_set(err, -ENOENT, "POST to %s: cannot read the CA file: %s", h, why);
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_USE_SSL_FAILED:
		return err_set(err, -EPROTO, "POST to %s: TLS handshake failed: %s", h, why);
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return err_set(
			err, -ECONNRESET,
			"POST to %s: the connection was closed or reset before the answer was "
			"complete: %s",
			h, why);
	case CURLE_FILESIZE_EXCEEDED:
		return err_set(err, -EMSGSIZE,
		               "POST to %s: answer over the limit of %zu bytes (Content-Length), "
		               "aborted",
		               h, c->body.max);
	case CURLE_PROXY:
		return err_set(err, -ECONNREFUSED, "POST to %s: the proxy refused the tunnel: %s",
		               h, why);
	case CURLE_AUTH_ERROR:
	case CURLE_LOGIN_DENIED:
		return err_set(err, -EACCES,
		               "POST to %s: authentication (%s) failed in the client: %s", h,
		               ews_auth_name(c->t->auth), why);
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
		return err_set(err, -EPROTO, "POST to %s: malformed HTTP answer: %s", h, why);
	case CURLE_OUT_OF_MEMORY:
		return err_set(err, -ENOMEM, "POST to %s: %s", h, why);
	default:
		return err_set(err, -EIO, "POST to %s: curl error %d: %s", h, (int)res, why);
	}
}
