/* SPDX-License-Identifier: MIT */
/*
 * oauth.h: access tokens from Microsoft Entra ID by the OAuth 2.0 client credentials grant
 * (RFC 6749 4.4) on the v2.0 token endpoint, for Microsoft Graph and for EWS "bearer" on
 * Exchange Server with Hybrid Modern Authentication. The application proves itself with a
 * client secret or with a certificate: a JWT client assertion (RFC 7523) signed with its
 * private key.
 *
 * One provider holds one token (one tenant, client and scope). It is fetched on first demand,
 * cached, and renewed before it expires (a timer), so that requests rarely wait; one token
 * request is in flight at a time and every waiter is answered when it ends. Failed requests
 * are retried with exponential back-off and jitter (honouring Retry-After); the last error is
 * kept for oauth_status(). Tokens, the secret and the key are never logged nor put into a
 * message, and are wiped when freed.
 *
 * Time: every decision (expiry, refresh, back-off) and the assertion's claims use the
 * injectable calendar clock (struct cs_clock, the real clock by default). A wall clock that
 * jumps back makes a token look valid for longer; the server then answers 401 and the caller's
 * oauth_invalidate() repairs it.
 *
 * Single-threaded: every function must be called on the loop's thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"
#include "base/err.h"

struct cs_clock;
struct http_client;
struct oauth;
struct oauth_waiter;

#define OAUTH_DEFAULT_AUTHORITY "https://login.microsoftonline.com"
/* Defaults for the zero values of struct oauth_opts. */
#define OAUTH_REFRESH_MARGIN_USEC INT64_C(300000000) /* 5 min */
#define OAUTH_TIMEOUT_USEC        INT64_C(30000000)
#define OAUTH_BACKOFF_FIRST_USEC  INT64_C(1000000)
#define OAUTH_BACKOFF_MAX_USEC    INT64_C(300000000)
/* The longest Retry-After honoured; a longer one is cut to this. */
#define OAUTH_MAX_RETRY_AFTER_USEC INT64_C(3600000000)
/* The client assertion is valid for this long (Microsoft: "5-10 minutes after nbf at most"). */
#define OAUTH_ASSERTION_LIFETIME_SEC 600

/* Longest access token we accept: Entra's app-only tokens are 1.5-3 KiB. It fits into one
 * request header with "Bearer " (HTTP_MAX_REQUEST_HEADER). */
#define OAUTH_MAX_TOKEN 8000u
/* Longest token endpoint answer we read. */
#define OAUTH_MAX_ANSWER (64u << 10)
/* A token lifetime (expires_in) is cut to [1 s, a day]; without one, an hour is assumed. */
#define OAUTH_MAX_LIFETIME_SEC     86400
#define OAUTH_DEFAULT_LIFETIME_SEC 3600

/* How the client assertion is signed. Both put the certificate's SHA-1 (x5t) and SHA-256
 * (x5t#S256) thumbprints into the JWT header. RS256 (RSASSA-PKCS1-v1_5) is what every Entra
 * tenant and AD FS accept; PS256 (RSASSA-PSS) is what Microsoft's current documentation and
 * MSAL use against Entra ID. */
enum oauth_jwt_alg {
	OAUTH_JWT_RS256,
	OAUTH_JWT_PS256,
};

/* A provider's configuration. Strings are copied by oauth_new(); zero values mean the
 * defaults. Exactly one of client_secret and (cert_pem, key_pem) must be given. */
struct oauth_opts {
	/* "https://login.microsoftonline.com" (national clouds: login.microsoftonline.us, ...);
	 * NULL = OAUTH_DEFAULT_AUTHORITY. No trailing path but an optional '/'. */
	const char *authority;
	const char *tenant;    /* a tenant id (GUID) or a verified domain name */
	const char *client_id; /* the application (client) id */
	/* "https://graph.microsoft.com/.default"; for EWS with Hybrid Modern Authentication
	 * "https://<exchange host>/.default". */
	const char *scope;
	const char *client_secret;
	/* The certificate registered with the application and its RSA private key (at least
	 * 2048 bits, unencrypted PKCS#8 or PKCS#1), as PEM text of the given lengths (0 = up to
	 * the NUL). The caller reads them from files; only the parsed key is kept. */
	const char *cert_pem;
	size_t cert_pem_len;
	const char *key_pem;
	size_t key_pem_len;
	enum oauth_jwt_alg jwt_alg;
	/* A token is renewed when less than max(refresh_margin, a tenth of its lifetime)
	 * remains, but never before half of its lifetime has passed. */
	int64_t refresh_margin_usec;
	int64_t timeout_usec; /* of one token request */
	/* Back-off after a failed token request: first, doubled per further failure up to max,
	 * jittered. A permanent failure (one an administrator must fix) waits max at once. */
	int64_t backoff_first_usec;
	int64_t backoff_max_usec;
	const struct cs_clock *clock; /* NULL = the real clock */
	/* Lets the authority be http:// (the token request then carries the secret in the
	 * clear). For tests only. */
	bool allow_http;
};

/* What oauth_status() reports. Times are calendar milliseconds (UTC), 0 when none. */
struct oauth_status {
	bool have_token;
	bool refreshing; /* a token request is in flight */
	int64_t expires_at_ms;
	int64_t refresh_at_ms;
	uint64_t refreshes_ok;
	uint64_t refreshes_failed;
	unsigned consecutive_failures;
	int last_rc;         /* of the last failure since the last success; 0 = none */
	bool last_permanent; /* an administrator must fix it */
	char last_error[256];
	int64_t next_attempt_ms; /* the retry after a failure */
};

/*
 * A token request's end, for a waiter: rc 0 and the token (borrowed: valid only during the
 * call; copy it or put it into a request, which copies it), or a negative errno, token NULL and
 * err naming the endpoint's host and what failed:
 *   -EACCES   permanent: the endpoint refused the credentials or the request (invalid_client,
 *             unauthorized_client, invalid_scope, an unknown tenant, ...); an administrator
 *             must act. The message has the OAuth error, the AADSTS code and its description.
 *   -EAGAIN   the endpoint is busy or failing (HTTP 429, 5xx, temporarily_unavailable)
 *   -EPROTO   the answer was not a token (malformed JSON, no access_token, not Bearer)
 *   the HTTP client's negative errno: DNS, connect, TLS, timeout (http-client.h)
 * The waiter is finished when the callback starts: it must not be cancelled from inside it.
 * The callback may call any oauth_* function, oauth_free() included.
 */
typedef void oauth_token_fn(void *ctx, int rc, const char *token, const struct err *err);

/*
 * A new provider whose token requests go through http (which must outlive it). 0 and *out, or
 * -EINVAL (a missing or malformed option, both or neither credential, a key or certificate
 * that cannot be read, is not RSA, is under 2048 bits, or do not belong together, an http://
 * authority without allow_http). Nothing is requested until the first oauth_get().
 */
ATTR_NODISCARD int oauth_new(struct http_client *http, const struct oauth_opts *opts,
                             struct oauth **out, struct err *err);

/* Cancels the token request and every waiter (none is called), wipes the token and the
 * credentials. NULL-safe; may be called from inside a waiter's callback. The timer closes
 * asynchronously: the loop must run once more before uv_loop_close(). */
void oauth_free(struct oauth *o);

/*
 * A token, without ever calling cb synchronously:
 *   1  a valid token is cached: *out_token (borrowed: valid until control returns to the
 *      loop or the next oauth_* call) and cb is never called. If it is due for renewal, a
 *      renewal starts in the background.
 *   0  a token request is under way (started now, or shared with other waiters): cb fires
 *      exactly once, from the loop, unless oauth_waiter_cancel(*out_w) comes first.
 *   <0 no token now, and cb is never called: the last request failed and the next attempt
 *      is not due yet (the kept rc and message, with when it is due), or a request could not
 *      be started (the HTTP client's rc). -EACCES: permanent (oauth_error_is_permanent).
 * out_w may be NULL when the caller never cancels.
 */
ATTR_NODISCARD int oauth_get(struct oauth *o, oauth_token_fn *cb, void *ctx, const char **out_token,
                             struct oauth_waiter **out_w, struct err *err);

/* Forgets a waiter: its callback never fires. NULL-safe; not from inside its own callback. */
void oauth_waiter_cancel(struct oauth_waiter *w);

/*
 * The server answered 401 to a request that carried token: if it is still the cached token,
 * it is dropped, so that the next oauth_get() requests a new one; a token already replaced is
 * left alone (many requests may fail with the same old token).
 */
void oauth_invalidate(struct oauth *o, const char *token);

/* The provider's state, for status pages and logs (no token in it). */
void oauth_status(const struct oauth *o, struct oauth_status *out);

/* Whether a failure's rc is one that an administrator must fix (-EACCES). */
bool oauth_error_is_permanent(int rc);
