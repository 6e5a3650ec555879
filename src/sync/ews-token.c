/* SPDX-License-Identifier: MIT */
/*
 * ews-token.c: every EWS call of the backend (buffered ones, Autodiscover, GetStreamingEvents)
 * goes out through sync_ews_call(). With <account auth="bearer" oauth="graph"> the backend has
 * its own OAuth client-credentials provider (http/oauth.h, <graph>'s app registration, the
 * scope of the on-premises EWS host: Hybrid Modern Authentication), and each call carries the
 * provider's current token (ews_call_opts.bearer_token):
 *   - a cached token: the call goes out at once;
 *   - none yet: the call keeps a copy of its request and waits for the token request that is
 *     under way (one for all waiting calls); it goes out when the token arrives;
 *   - the token request failed: the call ends with -EACCES (permanent: an AADSTS error an
 *     administrator must fix; the verdict makes it SYNC_ACCOUNT_PERMANENT) or -EIO (transient),
 *     and the message of the token endpoint; the provider backs off before it asks again;
 *   - HTTP 401 to a call's token (expired early, revoked): the token is invalidated and the
 *     call goes again, once, with a new one.
 * A streaming connection takes the token current when it connects; a reconnect takes a fresh
 * one. Without oauth a call is handed to the transport as it is. Tokens are copies, wiped when
 * dropped, never logged.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "config/config.h"
#include "http/http-client.h"
#include "http/oauth.h"
#include "sync/ews-backend-int.h"

/* One logical call: one transport call, or two after a 401, or none while it waits. */
struct sync_ews_call {
	struct sync_backend *b;
	struct list_node link;  /* in b->calls */
	struct list_node dlink; /* in b->deferred: its token failed inside sync_ews_call() */
	struct ews_call *call;  /* on the wire, or NULL */
	struct oauth_waiter *ow;
	ews_done_fn *done;
	ews_chunk_fn *chunk; /* streaming: the caller's */
	void *ctx;
	/* oauth: the request, kept to send once a token is there and again after a 401 */
	struct ews_call_opts o; /* its strings point at the copies below */
	char *url, *anchor, *cookie, *crid, *soap;
	char *body;
	size_t len;
	char *token; /* the token the call carries now */
	bool retried;
	bool in_done;
	int fail_rc;
	struct err fail_err;
};

static void wipe_free(char *s)
{
	if (s != NULL)
		explicit_bzero(s, strlen(s));
	free(s);
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static void call_free(struct sync_ews_call *c)
{
	list_unlink(&c->link);
	list_unlink(&c->dlink);
	free(c->url);
	free(c->anchor);
	free(c->cookie);
	free(c->crid);
	free(c->soap);
	free(c->body);
	wipe_free(c->token);
	free(c);
}

/* Runs the caller's done callback with r, then frees c. */
static void finish(struct sync_ews_call *c, struct ews_call *call, const struct ews_result *r)
{
	c->in_done = true;
	c->done(c->ctx, call, r);
	call_free(c);
}

/* Ends c without an EWS answer: its token could not be had, or it could not be posted. */
static void end_without_answer(struct sync_ews_call *c, int rc, const struct err *why)
{
	struct ews_result r = {
		.rc = oauth_error_is_permanent(rc) ? -EACCES : -EIO,
		.body = "",
		.client_request_id = "",
	};

	(void)snprintf(r.err.msg, sizeof(r.err.msg), "EWS bearer token: %.230s",
	               why != NULL && why->msg[0] != '\0' ? why->msg : "none");
	finish(c, NULL, &r);
}

static void on_done(void *ctx, struct ews_call *call, const struct ews_result *r);

/* The transport hands one ctx to both callbacks: the caller's chunk callback gets its own. It
 * may cancel c; nothing touches c after it returns. */
static int on_chunk(void *ctx, const char *data, size_t len, struct err *err)
{
	struct sync_ews_call *c = ctx;

	return c->chunk(c->ctx, data, len, err);
}

/* Posts c with token. 0, or the transport's error (nothing was sent). */
static int post_with(struct sync_ews_call *c, const char *token, struct err *err)
{
	struct sync_backend *b = c->b;
	struct ews_call_opts o = c->o;
	int rc;

	if (token != NULL) {
		wipe_free(c->token);
		c->token = xstrdup(token);
		o.bearer_token = c->token;
	}
	rc = ews_transport_post(b->transport, &o, c->body, c->len, on_done, c, &c->call, err);
	if (rc < 0)
		c->call = NULL;
	return rc;
}

static void on_token(void *ctx, int rc, const char *token, const struct err *err)
{
	struct sync_ews_call *c = ctx;
	struct err perr = {0};

	c->ow = NULL;
	if (rc < 0) {
		c->b->token_errors++;
		end_without_answer(c, rc, err);
		return;
	}
	rc = post_with(c, token, &perr);
	if (rc < 0)
		end_without_answer(c, rc, &perr);
}

/* Takes a token for c and sends it, or waits for one. 0: sent or waiting; else the error and
 * whether it was the token's (*token_failed) or the transport's. */
static int acquire(struct sync_ews_call *c, bool *token_failed, struct err *err)
{
	const char *token = NULL;
	int rc = oauth_get(c->b->oauth, on_token, c, &token, &c->ow, err);

	*token_failed = false;
	if (rc == 1) {
		c->ow = NULL;
		return post_with(c, token, err);
	}
	if (rc == 0)
		return 0;
	c->ow = NULL;
	c->b->token_errors++;
	*token_failed = true;
	return rc;
}

static void on_done(void *ctx, struct ews_call *call, const struct ews_result *r)
{
	struct sync_ews_call *c = ctx;
	struct sync_backend *b = c->b;

	c->call = NULL;
	if (b->oauth != NULL && r->http_status == 401 && !c->retried) {
		/* The token was refused (expired on the server's clock, revoked): a new one,
		 * once. Many calls may fail with the same old token; the provider drops it once. */
		struct err err = {0};
		bool token_failed;
		int rc;

		c->retried = true;
		b->token_retries++;
		log_info("EWS: HTTP 401 to a bearer token; asking for a new one");
		oauth_invalidate(b->oauth, c->token);
		rc = acquire(c, &token_failed, &err);
		if (rc < 0)
			end_without_answer(c, token_failed ? rc : -EIO, &err);
		return;
	}
	finish(c, call, r);
}

static void on_deferred(uv_timer_t *t)
{
	struct sync_backend *b = t->data;

	for (struct list_node *n; (n = list_pop(&b->deferred)) != NULL;) {
		struct sync_ews_call *c = container_of(n, struct sync_ews_call, dlink);

		end_without_answer(c, c->fail_rc, &c->fail_err);
	}
}

static void keep_request(struct sync_ews_call *c, const struct ews_call_opts *o, const char *body,
                         size_t len)
{
	c->o = *o;
	c->o.url = c->url = dup_or_null(o->url);
	c->o.anchor_mailbox = c->anchor = dup_or_null(o->anchor_mailbox);
	c->o.backend_cookie = c->cookie = dup_or_null(o->backend_cookie);
	c->o.client_request_id = c->crid = dup_or_null(o->client_request_id);
	c->o.soap_action = c->soap = dup_or_null(o->soap_action);
	c->o.bearer_token = NULL;
	c->body = xmalloc(len + 1);
	if (len > 0)
		memcpy(c->body, body, len);
	c->body[len] = '\0';
	c->len = len;
}

int sync_ews_call(struct sync_backend *b, const struct ews_call_opts *o, const char *body,
                  size_t len, ews_done_fn *done, void *ctx, struct sync_ews_call **out,
                  struct err *err)
{
	struct sync_ews_call *c = xcalloc(1, sizeof(*c));
	bool token_failed = false;
	int rc;

	c->b = b;
	c->done = done;
	c->chunk = o->chunk_fn;
	c->ctx = ctx;
	if (b->oauth == NULL) {
		struct ews_call_opts po = *o;

		po.chunk_fn = o->chunk_fn != NULL ? on_chunk : NULL;
		rc = ews_transport_post(b->transport, &po, body, len, on_done, c, &c->call, err);
	} else {
		keep_request(c, o, body, len);
		c->o.chunk_fn = o->chunk_fn != NULL ? on_chunk : NULL;
		rc = acquire(c, &token_failed, err);
		if (rc < 0 && token_failed) {
			/* The provider is backing off: the call ends from the loop, as if the
			 * token request had just failed again. */
			c->fail_rc = rc;
			c->fail_err = *err;
			list_append(&b->deferred, &c->dlink);
			uv_timer_start(&b->deferred_timer, on_deferred, 0, 0);
			rc = 0;
		}
	}
	if (rc < 0) {
		call_free(c);
		return rc;
	}
	list_append(&b->calls, &c->link);
	if (out != NULL)
		*out = c;
	return 0;
}

void sync_ews_call_cancel(struct sync_ews_call *c)
{
	if (c == NULL || c->in_done)
		return;
	if (c->ow != NULL)
		oauth_waiter_cancel(c->ow);
	if (c->call != NULL)
		ews_transport_cancel(c->call);
	call_free(c);
}

int sync_ews_tokens_open(struct sync_backend *b, struct err *err)
{
	const struct cfg *cfg = b->e->cfg;
	const struct cfg_graph *g = cfg->graph;
	struct http_client_opts ho = {
		.ca_file = cfg->ca_file,
		.insecure_skip_tls_verify = cfg->insecure_skip_tls_verify,
		.max_host_connections = 2,
		.max_total_connections = 4,
	};
	struct oauth_opts oo = {0};
	int rc;

	list_init(&b->calls);
	list_init(&b->deferred);
	if (!cfg->token_oauth)
		return 0;
	if (g == NULL)
		return err_set(err, -EINVAL, "EWS oauth: no <graph> app registration");
	oo = (struct oauth_opts){
		.authority = g->authority,
		.tenant = g->tenant,
		.client_id = g->client_id,
		.scope = cfg->token_scope,
		.client_secret = g->client_secret,
		.cert_pem = g->cert_pem,
		.key_pem = g->key_pem,
		.allow_http = cfg_is_loopback_http(g->authority),
	};
	rc = http_client_new(b->e->loop, &ho, &b->http, err);
	if (rc == 0)
		rc = oauth_new(b->http, &oo, &b->oauth, err);
	if (rc < 0) {
		oauth_free(b->oauth);
		b->oauth = NULL;
		http_client_free(b->http);
		b->http = NULL;
		return rc;
	}
	uv_timer_init(b->e->loop, &b->deferred_timer);
	b->deferred_timer.data = b;
	log_info("EWS: bearer tokens from tenant %s for %s", g->tenant, cfg->token_scope);
	return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

void sync_ews_calls_cancel(struct sync_backend *b)
{
	while (!list_empty(&b->calls))
		sync_ews_call_cancel(container_of(b->calls.next, struct sync_ews_call, link));
}

/* Frees the provider and its HTTP client, then b (after the loop ran once more, when the
 * backend has a timer). */
void sync_ews_tokens_free_backend(struct sync_backend *b)
{
	if (b->oauth == NULL) {
		free(b);
		return;
	}
	oauth_free(b->oauth);
	b->oauth = NULL;
	http_client_free(b->http);
	b->http = NULL;
	uv_close((uv_handle_t *)&b->deferred_timer, on_timer_closed);
}
