/* SPDX-License-Identifier: MIT */
/*
 * oauth.c: the token provider (oauth.h). State: at most one cached token with its expiry and
 * renewal time, at most one token request in flight, the waiters of that request, and after a
 * failure the kept error and the time of the next attempt. One timer wakes the provider for
 * the renewal or the retry, whichever is due first.
 *
 * Invariant: waiters exist only while a request is in flight. Waiters are answered from the
 * request's done callback, after the token (or the failure) has been recorded, from a list
 * detached first: a waiter's callback may get, cancel other waiters, invalidate, or free the
 * provider.
 */
#include "http/oauth.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <uv.h>

#include "base/backoff.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/list.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "http/http-client.h"
#include "http/oauth-int.h"

_Static_assert(OAUTH_MAX_TOKEN + 7 <= HTTP_MAX_REQUEST_HEADER,
               "a token must fit into an Authorization header");

/* Longest tenant, client id, scope and authority we take. */
#define MAX_NAME 256u
#define MAX_URL  1024u

struct oauth_waiter {
	struct list_node link;
	oauth_token_fn *fn;
	void *ctx;
};

struct oauth {
	struct http_client *http;
	uv_timer_t *timer; /* freed by its close callback */
	struct cs_clock clock;

	char *token_url;
	char *host; /* the token endpoint's, for messages */
	char *client_id;
	char *scope;
	char *secret;
	struct oauth_cert cert;
	bool use_cert;
	enum oauth_jwt_alg alg;
	int64_t margin_ms;
	int64_t timeout_usec;
	int64_t backoff_first_ms;
	int64_t backoff_max_ms;

	char *token;
	int64_t expires_at_ms;
	int64_t refresh_at_ms;
	struct http_call *call;
	struct list_node waiters;

	uint64_t ok, failed;
	unsigned failures; /* consecutive */
	int last_rc;
	struct err last_err;
	int64_t next_attempt_ms; /* meaningful while failures > 0 */
	uint64_t rng;

	unsigned in_callbacks; /* waiters being answered */
	bool free_pending;     /* oauth_free() from inside a waiter's callback */
};

static void wipe_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static int64_t now_ms(const struct oauth *o)
{
	return clock_now_ms(&o->clock);
}

bool oauth_error_is_permanent(int rc)
{
	return rc == -EACCES;
}

/* -- options --------------------------------------------------------------------------------- */

static bool name_ok(const char *s, size_t max, const char *allowed_punct)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		             (ch >= '0' && ch <= '9');
		if (!alnum && strchr(allowed_punct, ch) == NULL)
			return false;
	}
	return true;
}

/* The token endpoint's URL and host from the authority and the tenant. */
static int endpoint(struct oauth *o, const struct oauth_opts *opts, struct err *err)
{
	const char *a = opts->authority != NULL ? opts->authority : OAUTH_DEFAULT_AUTHORITY;
	size_t n = strlen(a);
	const char *host;
	size_t host_len;
	char url[MAX_URL + MAX_NAME + 32];

	while (n > 0 && a[n - 1] == '/')
		n--;
	if (strncmp(a, "https://", 8) == 0)
		host = a + 8;
	else if (strncmp(a, "http://", 7) == 0 && opts->allow_http)
		host = a + 7;
	else
		return err_set(err, -EINVAL, "OAuth: the authority must be an https:// URL");
	host_len = strcspn(host, "/?#@");
	if (n > MAX_URL || host_len == 0 || host[host_len] == '?' || host[host_len] == '#' ||
	    host[host_len] == '@' || strcspn(a, "?#@ \t\r\n") < n)
		return err_set(err, -EINVAL, "OAuth: malformed authority URL");
	(void)snprintf(url, sizeof(url), "%.*s/%s/oauth2/v2.0/token", (int)n, a, opts->tenant);
	o->token_url = xstrdup(url);
	o->host = xmemdup(host, host_len < 64 ? host_len : 64);
	return 0;
}

static int check_opts(const struct oauth_opts *opts, struct err *err)
{
	bool has_secret = opts->client_secret != NULL && opts->client_secret[0] != '\0';
	bool has_cert = opts->cert_pem != NULL || opts->key_pem != NULL;

	/* A tenant id or domain goes into the URL's path: nothing that could leave it. */
	if (!name_ok(opts->tenant, MAX_NAME, "-._"))
		return err_set(err, -EINVAL, "OAuth: missing or malformed tenant");
	if (!name_ok(opts->client_id, MAX_NAME, "-._"))
		return err_set(err, -EINVAL, "OAuth: missing or malformed client id");
	if (!name_ok(opts->scope, MAX_URL, "-._~:/?#[]@!$&'()*+,;=% "))
		return err_set(err, -EINVAL, "OAuth: missing or malformed scope");
	if (has_secret == has_cert)
		return err_set(err, -EINVAL,
		               "OAuth: give either a client secret or a certificate and key");
	if (has_cert && (opts->cert_pem == NULL || opts->key_pem == NULL))
		return err_set(err, -EINVAL, "OAuth: a certificate needs its private key");
	if ((unsigned)opts->jwt_alg > OAUTH_JWT_PS256)
		return err_set(err, -EINVAL, "OAuth: unknown JWT algorithm");
	if (opts->refresh_margin_usec < 0 || opts->timeout_usec < 0 ||
	    opts->backoff_first_usec < 0 || opts->backoff_max_usec < 0)
		return err_set(err, -EINVAL, "OAuth: negative duration");
	return 0;
}

static void release(struct oauth *o)
{
	free(o->token_url);
	free(o->host);
	free(o->client_id);
	free(o->scope);
	wipe_free(o->secret);
	wipe_free(o->token);
	oauth_cert_clear(&o->cert);
	free(o);
}

static void on_timer_closed(uv_handle_t *h)
{
	free(h);
}

static void on_timer(uv_timer_t *t);

int oauth_new(struct http_client *http, const struct oauth_opts *opts, struct oauth **out,
              struct err *err)
{
	struct oauth *o;
	int rc;

	if (http == NULL || opts == NULL || out == NULL)
		return err_set(err, -EINVAL, "OAuth: no HTTP client or no options");
	rc = check_opts(opts, err);
	if (rc < 0)
		return rc;
	o = xcalloc(1, sizeof(*o));
	o->http = http;
	list_init(&o->waiters);
	if (opts->clock != NULL)
		o->clock = *opts->clock;
	rc = endpoint(o, opts, err);
	if (rc == 0 && opts->cert_pem != NULL) {
		rc = oauth_cert_load(opts->cert_pem,
		                     opts->cert_pem_len ? opts->cert_pem_len
		                                        : strlen(opts->cert_pem),
		                     opts->key_pem,
		                     opts->key_pem_len ? opts->key_pem_len : strlen(opts->key_pem),
		                     &o->cert, err);
		o->use_cert = true;
	}
	if (rc < 0) {
		release(o);
		return rc;
	}
	o->client_id = xstrdup(opts->client_id);
	o->scope = xstrdup(opts->scope);
	o->secret = xstrdup_or_null(o->use_cert ? NULL : opts->client_secret);
	o->alg = opts->jwt_alg;
	o->margin_ms = (opts->refresh_margin_usec ? opts->refresh_margin_usec
	                                          : OAUTH_REFRESH_MARGIN_USEC) /
	               1000;
	o->timeout_usec = opts->timeout_usec ? opts->timeout_usec : OAUTH_TIMEOUT_USEC;
	o->backoff_first_ms =
		(opts->backoff_first_usec ? opts->backoff_first_usec : OAUTH_BACKOFF_FIRST_USEC) /
		1000;
	o->backoff_max_ms =
		(opts->backoff_max_usec ? opts->backoff_max_usec : OAUTH_BACKOFF_MAX_USEC) / 1000;
	if (o->backoff_max_ms < o->backoff_first_ms)
		o->backoff_max_ms = o->backoff_first_ms;
	if (RAND_bytes((unsigned char *)&o->rng, sizeof(o->rng)) != 1 || o->rng == 0)
		o->rng = (uint64_t)clock_now_usec() | 1;
	o->timer = xcalloc(1, sizeof(*o->timer));
	(void)uv_timer_init(http_client_loop(http), o->timer);
	o->timer->data = o;
	/* A renewal is no reason to keep a loop alive that has nothing else to do. */
	uv_unref((uv_handle_t *)o->timer);
	*out = o;
	return 0;
}

void oauth_free(struct oauth *o)
{
	if (o == NULL || o->free_pending)
		return;
	if (o->in_callbacks > 0) {
		o->free_pending = true; /* the answering loop finishes the job */
		return;
	}
	http_call_cancel(o->call);
	o->call = NULL;
	while (!list_empty(&o->waiters))
		oauth_waiter_cancel(
			container_of(list_first(&o->waiters), struct oauth_waiter, link));
	uv_close((uv_handle_t *)o->timer, on_timer_closed);
	release(o);
}

/* -- the token request ----------------------------------------------------------------------- */

/* Replaces every occurrence of the secret in s by "***": a message must never carry it, even
 * if a server echoed it. */
static void scrub(const struct oauth *o, char *s)
{
	size_t n = o->secret != NULL ? strlen(o->secret) : 0;
	char *p;

	if (n < 4)
		return;
	while ((p = strstr(s, o->secret)) != NULL) {
		memcpy(p, "***", 3);
		memmove(p + 3, p + n, strlen(p + n) + 1);
	}
}

/* Schedules the timer for the renewal, or for the retry after a failure. While a request is in
 * flight there is nothing to wake for: its answer arms the timer again. */
static void arm(struct oauth *o)
{
	int64_t due = INT64_MAX;
	int64_t now = now_ms(o);

	if (o->free_pending)
		return;
	if (o->call == NULL && o->token != NULL)
		due = o->refresh_at_ms;
	/* A failed renewal, or a failed first request, is retried after its back-off. */
	if (o->call == NULL && o->failures > 0 && (o->token == NULL || due < o->next_attempt_ms))
		due = o->next_attempt_ms;
	if (due == INT64_MAX) {
		(void)uv_timer_stop(o->timer);
		return;
	}
	(void)uv_timer_start(o->timer, on_timer, (uint64_t)(due > now ? due - now : 0), 0);
}

static void record_failure(struct oauth *o, int rc, const struct err *e, int64_t retry_after_ms)
{
	int64_t now = now_ms(o);
	int64_t delay;

	o->failed++;
	o->failures++;
	o->last_rc = rc;
	o->last_err = *e;
	scrub(o, o->last_err.msg);
	if (oauth_error_is_permanent(rc))
		delay = backoff_delay(o->backoff_max_ms, o->backoff_max_ms, 1,
		                      backoff_rng_next(&o->rng));
	else
		delay = backoff_delay(o->backoff_first_ms, o->backoff_max_ms, o->failures,
		                      backoff_rng_next(&o->rng));
	if (retry_after_ms > OAUTH_MAX_RETRY_AFTER_USEC / 1000)
		retry_after_ms = OAUTH_MAX_RETRY_AFTER_USEC / 1000;
	if (retry_after_ms > delay)
		delay = retry_after_ms;
	o->next_attempt_ms = now + delay;
	log_debug("OAuth: token for client %s from %s failed (%u in a row), next attempt in "
	          "%" PRId64 " ms: %s",
	          o->client_id, o->host, o->failures, delay, o->last_err.msg);
}

static void record_token(struct oauth *o, struct oauth_answer *a)
{
	int64_t now = now_ms(o);
	int64_t life = a->expires_in_sec * 1000;
	int64_t margin = o->margin_ms > life / 10 ? o->margin_ms : life / 10;

	if (margin > life / 2)
		margin = life / 2;
	wipe_free(o->token);
	o->token = a->access_token;
	a->access_token = NULL;
	o->expires_at_ms = now + life;
	o->refresh_at_ms = o->expires_at_ms - margin;
	o->ok++;
	o->failures = 0;
	o->last_rc = 0;
	o->last_err = (struct err){0};
	o->next_attempt_ms = 0;
	log_debug("OAuth: token for client %s from %s, valid for %" PRId64 " s", o->client_id,
	          o->host, a->expires_in_sec);
}

/* Answers every waiter: rc 0 and the token, or the failure. Copies of both are handed out, so
 * that a callback that invalidates the token or fails a new request changes nothing for the
 * waiters after it. */
static void answer_waiters(struct oauth *o, int rc, const struct err *failure)
{
	struct list_node batch;
	char *token = rc == 0 ? xstrdup(o->token) : NULL;
	struct err copy = failure != NULL ? *failure : (struct err){0};
	const struct err *e = &copy;

	list_init(&batch);
	while (!list_empty(&o->waiters)) {
		struct list_node *n = list_pop(&o->waiters);
		list_append(&batch, n);
	}
	o->in_callbacks++;
	while (!list_empty(&batch)) {
		struct oauth_waiter *w = container_of(list_pop(&batch), struct oauth_waiter, link);
		oauth_token_fn *fn = w->fn;
		void *ctx = w->ctx;

		free(w);
		if (!o->free_pending)
			fn(ctx, rc, token, rc == 0 ? NULL : e);
	}
	o->in_callbacks--;
	wipe_free(token);
	if (o->free_pending && o->in_callbacks == 0) {
		o->free_pending = false;
		oauth_free(o);
	}
}

static void on_answer(void *ctx, struct http_call *call, const struct http_response *r)
{
	struct oauth *o = ctx;
	struct oauth_answer a = {0};
	struct err e = {0};
	int rc = r->rc;

	(void)call;
	o->call = NULL;
	if (rc == 0)
		rc = oauth_answer_parse(r->status, r->body, r->body_len, &a, &e);
	else
		e = r->err;
	if (rc == 0) {
		record_token(o, &a);
	} else {
		(void)err_set(&e, rc, "OAuth token from %s: %s", o->host, e.msg);
		record_failure(o, rc, &e, r->retry_after_ms > 0 ? r->retry_after_ms : 0);
	}
	oauth_answer_clear(&a);
	arm(o);
	answer_waiters(o, rc, &o->last_err);
}

/* Sends a token request. 0, or a negative errno with err (nothing was sent). */
static int start_request(struct oauth *o, struct err *err)
{
	struct buf form;
	char *assertion = NULL;
	int rc = 0;

	buf_init(&form, 1u << 16);
	if (o->use_cert)
		rc = oauth_jwt_make(&o->cert, o->alg, o->token_url, o->client_id, now_ms(o) / 1000,
		                    &assertion, err);
	if (rc == 0)
		rc = oauth_form(&form, o->client_id, o->scope, o->secret, assertion, err);
	if (rc == 0) {
		struct http_header accept = {"Accept", "application/json"};
		struct http_request req = {
			.method = HTTP_POST,
			.url = o->token_url,
			.headers = &accept,
			.n_headers = 1,
			.body = form.data,
			.body_len = form.len,
			.content_type = "application/x-www-form-urlencoded",
			.timeout_usec = o->timeout_usec,
			.secret_response = true,
		};
		rc = http_send(o->http, &req, on_answer, o, &o->call, err);
	}
	if (form.data != NULL)
		explicit_bzero(form.data, form.len);
	buf_free(&form);
	wipe_free(assertion);
	if (rc < 0)
		(void)err_set(err, rc, "OAuth token from %s: %s", o->host, err ? err->msg : "");
	return rc;
}

/* A renewal or retry nobody waits for: a failure to start is a failed attempt. */
static void start_background(struct oauth *o)
{
	struct err e = {0};
	int rc = start_request(o, &e);

	if (rc < 0)
		record_failure(o, rc, &e, 0);
	arm(o);
}

static void on_timer(uv_timer_t *t)
{
	struct oauth *o = t->data;
	int64_t now = now_ms(o);

	if (o->call != NULL)
		return;
	if (o->failures > 0 && now < o->next_attempt_ms) {
		arm(o);
		return;
	}
	if ((o->token != NULL && now >= o->refresh_at_ms) || (o->token == NULL && o->failures > 0))
		start_background(o);
	else
		arm(o);
}

/* -- the API --------------------------------------------------------------------------------- */

int oauth_get(struct oauth *o, oauth_token_fn *cb, void *ctx, const char **out_token,
              struct oauth_waiter **out_w, struct err *err)
{
	int64_t now = now_ms(o);
	struct oauth_waiter *w;
	int rc;

	if (cb == NULL || out_token == NULL)
		return err_set(err, -EINVAL, "OAuth: no callback or no token pointer");
	if (o->token != NULL && now >= o->expires_at_ms) {
		wipe_free(o->token);
		o->token = NULL;
	}
	if (o->token != NULL) {
		if (now >= o->refresh_at_ms && o->call == NULL &&
		    (o->failures == 0 || now >= o->next_attempt_ms))
			start_background(o);
		*out_token = o->token;
		return 1;
	}
	if (o->call == NULL) {
		if (o->failures > 0 && now < o->next_attempt_ms)
			return err_set(err, o->last_rc,
			               "no token, next attempt in %" PRId64 " ms: %s",
			               o->next_attempt_ms - now, o->last_err.msg);
		rc = start_request(o, err);
		if (rc < 0) {
			struct err e = {0};
			(void)err_set(&e, rc, "%s",
			              err != NULL ? err->msg : "token request failed");
			record_failure(o, rc, &e, 0);
			arm(o);
			return rc;
		}
		arm(o);
	}
	w = xcalloc(1, sizeof(*w));
	w->fn = cb;
	w->ctx = ctx;
	list_append(&o->waiters, &w->link);
	if (out_w != NULL)
		*out_w = w;
	return 0;
}

void oauth_waiter_cancel(struct oauth_waiter *w)
{
	if (w == NULL)
		return;
	list_unlink(&w->link);
	free(w);
}

void oauth_invalidate(struct oauth *o, const char *token)
{
	if (o->token == NULL || token == NULL || strcmp(o->token, token) != 0)
		return;
	wipe_free(o->token);
	o->token = NULL;
	o->expires_at_ms = 0;
	o->refresh_at_ms = 0;
	arm(o);
}

void oauth_status(const struct oauth *o, struct oauth_status *st)
{
	int64_t now = now_ms(o);
	bool have = o->token != NULL && now < o->expires_at_ms;

	*st = (struct oauth_status){
		.have_token = have,
		.refreshing = o->call != NULL,
		.expires_at_ms = have ? o->expires_at_ms : 0,
		.refresh_at_ms = have ? o->refresh_at_ms : 0,
		.refreshes_ok = o->ok,
		.refreshes_failed = o->failed,
		.consecutive_failures = o->failures,
		.last_rc = o->last_rc,
		.last_permanent = oauth_error_is_permanent(o->last_rc),
		.next_attempt_ms = o->failures > 0 ? o->next_attempt_ms : 0,
	};
	(void)snprintf(st->last_error, sizeof(st->last_error), "%s", o->last_err.msg);
}
