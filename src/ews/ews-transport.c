/* SPDX-License-Identifier: MIT */
/*
 * ews-transport.c: the transport's public functions: the options checked and copied, a
 * transport made and freed, calls posted and cancelled. The rest is in ews-transport-*.c, one
 * job each (the map is atop ews-transport-int.h).
 *
 * In short: libcurl's multi interface runs on the libuv loop (ews-transport-loop.c). Connections
 * live in lanes, one connection cache each, and a call holds its lane from its first request
 * to its last, which NTLM needs: it authenticates a connection, not a request
 * (ews-transport-lane.c).
 *
 * NTLM (auth "ntlm", and the NTLM fallback of "negotiate") is ours, not libcurl's, because
 * libcurl 7.88 sends no channel binding (curl issue #12511) and Exchange 2019 CU14 and later
 * refuse NTLM over HTTPS without one (Extended Protection). ews-ntlm.h builds the messages, with
 * an OpenSSL context the transport owns (t->crypto); ews-transport-lane.c sends them.
 *
 * Re-entrancy is the one subtle part. User code runs inside libcurl only in the chunk callback
 * (a streaming call's write callback). There libcurl forbids removing or adding easy handles,
 * so ews_transport_cancel() and ews_transport_post() only mark the call there, and the work is
 * done right after curl_multi_socket_action() returns (after_action). Done callbacks run from
 * the loop, outside libcurl, so they may do anything but free the transport.
 */
#include "ews/ews-transport.h"

#include <assert.h>
#include <errno.h>
#include <sys/random.h>

#include "base/clock.h"
#include "base/cs-limits.h"
#include "base/xalloc.h"
#include "calsync-config.h"
#include "ews/ews-transport-int.h"

static const char *const auth_names[] = {
	[EWS_AUTH_NONE] = "none",           [EWS_AUTH_BASIC] = "basic",   [EWS_AUTH_NTLM] = "ntlm",
	[EWS_AUTH_NEGOTIATE] = "negotiate", [EWS_AUTH_BEARER] = "bearer",
};

const char *ews_auth_name(enum ews_auth a)
{
	if ((size_t)a < sizeof(auth_names) / sizeof(auth_names[0]))
		return auth_names[a];
	return "unknown";
}

int ews_auth_from_name(const char *name, size_t len, enum ews_auth *out, struct err *err)
{
	for (size_t i = 0; i < sizeof(auth_names) / sizeof(auth_names[0]); i++) {
		if (strlen(auth_names[i]) == len && memcmp(auth_names[i], name, len) == 0) {
			*out = (enum ews_auth)i;
			return 0;
		}
	}
	return err_set(err, -EINVAL,
	               "unknown authentication '%.*s' (basic, ntlm, negotiate, bearer or none)",
	               (int)(len > 32 ? 32 : len), name);
}

static void new_request_id(struct ews_transport *t, char out[37])
{
	uint8_t b[16];

	if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
		/* No entropy yet (early boot): the id only has to be unique enough for log
		 * correlation, so time and a counter do. */
		uint64_t x = (uint64_t)clock_now_usec() ^ ((uint64_t)clock_now_utc() << 20);
		uint64_t y = ++t->id_counter * UINT64_C(0x9e3779b97f4a7c15);
		memcpy(b, &x, 8);
		memcpy(b + 8, &y, 8);
	}
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	(void)snprintf(out, 37,
	               "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
	               b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	               b[13], b[14], b[15]);
}

static void transport_release(struct ews_transport *t)
{
	ews_transport_wipe_free(t->user);
	ews_transport_wipe_free(t->password);
	ews_transport_wipe_free(t->token);
	free(t->ca_file);
	ews_transport_wipe_free(t->proxy); /* may hold proxy credentials */
	free(t->user_agent);
	t->user = t->password = t->token = t->ca_file = t->proxy = t->user_agent = NULL;
	for (unsigned i = 0; i < t->n_lanes; i++)
		(void)curl_share_cleanup(t->lanes[i].share);
	free(t->lanes);
	t->lanes = NULL;
	t->n_lanes = 0;
	ews_ntlm_crypto_free(t->crypto); /* after the calls, whose handshakes borrow it */
	t->crypto = NULL;
	if (t->global_init)
		curl_global_cleanup();
	t->global_init = false;
}

static int check_secret(const char *what, const char *s, struct err *err)
{
	if (s == NULL)
		return 0;
	for (const char *p = s; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return err_set(err, -EINVAL,
			               "transport: the %s contains a control character", what);
	}
	return 0;
}

/*
 * The OpenSSL context of our NTLM, when the options can use it (ntlm, or negotiate's NTLM
 * fallback, with a user and a password), in *out, else NULL. It also checks that ews-ntlm
 * accepts the user name, so that a bad one fails here and not at the first handshake.
 */
static int ntlm_crypto(const struct ews_transport_opts *o, struct ews_ntlm_crypto **out,
                       struct err *err)
{
	struct err e = {0};
	struct ews_ntlm_crypto *cr;
	struct ews_ntlm *n;

	*out = NULL;
	if (o->user == NULL || o->password == NULL ||
	    (o->auth != EWS_AUTH_NTLM && o->auth != EWS_AUTH_NEGOTIATE))
		return 0;
	cr = ews_ntlm_crypto_new();
	n = ews_ntlm_new(cr, o->user, o->password, &e);
	if (n == NULL) {
		ews_ntlm_crypto_free(cr);
		return err_set(err, -EINVAL, "transport: NTLM cannot use this user name: %s",
		               e.msg);
	}
	ews_ntlm_free(n);
	*out = cr;
	return 0;
}

int ews_transport_new(struct uv_loop_s *loop, const struct ews_transport_opts *o,
                      struct ews_transport **out_t, struct err *err)
{
	struct ews_transport *t;
	struct ews_ntlm_crypto *crypto = NULL;
	char ua[64];
	int rc;

	if (loop == NULL || o == NULL)
		return err_set(err, -EINVAL, "transport: no loop or no options");
	if ((o->auth == EWS_AUTH_BASIC || o->auth == EWS_AUTH_NTLM) &&
	    (o->user == NULL || o->user[0] == '\0' || o->password == NULL))
		return err_set(err, -EINVAL, "transport: %s needs a user and a password",
		               ews_auth_name(o->auth));
	if (o->auth == EWS_AUTH_BEARER && o->token != NULL && o->token[0] == '\0')
		return err_set(err, -EINVAL, "transport: bearer needs a token");
	if ((unsigned)o->auth > EWS_AUTH_BEARER)
		return err_set(err, -EINVAL, "transport: unknown authentication %d", (int)o->auth);
	if (o->connect_timeout_usec < 0 || o->timeout_usec < 0 || o->idle_timeout_usec < 0)
		return err_set(err, -EINVAL, "transport: negative timeout");
	rc = check_secret("user", o->user, err);
	if (rc == 0)
		rc = check_secret("password", o->password, err);
	if (rc == 0)
		rc = check_secret("token", o->token, err);
	if (rc == 0 && o->user_agent != NULL && !ews_transport_header_value_ok(o->user_agent))
		rc = err_set(err, -EINVAL, "transport: bad User-Agent");
	if (rc == 0)
		rc = ntlm_crypto(o, &crypto, err);
	if (rc < 0)
		return rc;

	t = xcalloc(1, sizeof(*t));
	t->loop = loop;
	t->crypto = crypto;
	t->auth = o->auth;
	t->user = xstrdup_or_null(o->user);
	t->password = xstrdup_or_null(o->password);
	t->token = xstrdup_or_null(o->token);
	t->ca_file = xstrdup_or_null(o->ca_file);
	t->proxy = xstrdup_or_null(o->proxy);
	(void)snprintf(ua, sizeof(ua), "calsync/%s", CALSYNC_VERSION);
	t->user_agent = xstrdup(o->user_agent != NULL ? o->user_agent : ua);
	t->insecure = o->insecure_skip_tls_verify;
	t->connect_timeout_usec = o->connect_timeout_usec ? o->connect_timeout_usec
	                                                  : EWS_TRANSPORT_CONNECT_TIMEOUT_USEC;
	t->timeout_usec = o->timeout_usec ? o->timeout_usec : EWS_TRANSPORT_TIMEOUT_USEC;
	t->idle_timeout_usec =
		o->idle_timeout_usec ? o->idle_timeout_usec : EWS_TRANSPORT_IDLE_TIMEOUT_USEC;
	t->max_response = o->max_response ? o->max_response : EWS_MAX_RESPONSE;
	t->max_host = o->max_host_connections ? o->max_host_connections
	                                      : EWS_TRANSPORT_MAX_HOST_CONNECTIONS;
	t->max_total = o->max_total_connections ? o->max_total_connections
	                                        : EWS_TRANSPORT_MAX_TOTAL_CONNECTIONS;
	t->lanes = xcalloc(t->max_total, sizeof(*t->lanes));

	rc = ews_transport_loop_init(t, err);
	if (rc < 0)
		goto fail;
	*out_t = t;
	return 0;
fail:
	if (t->multi != NULL)
		(void)curl_multi_cleanup(t->multi);
	transport_release(t);
	free(t);
	return rc;
}

void ews_transport_free(struct ews_transport *t)
{
	if (t == NULL)
		return;
	assert(t->in_curl == 0 && t->in_done == 0);
	/* No queued call may start now; the handles close asynchronously, so t lives on. */
	t->freeing = true;
	while (t->calls != NULL)
		ews_transport_call_destroy(t->calls);
	ews_transport_loop_close(t);
	transport_release(t); /* the lanes' caches close their idle connections */
}

size_t ews_transport_active(const struct ews_transport *t)
{
	return t->n_calls;
}

int ews_transport_post(struct ews_transport *t, const struct ews_call_opts *o, const char *body,
                       size_t len, ews_done_fn *done, void *ctx, struct ews_call **out_call,
                       struct err *err)
{
	struct ews_call *c;
	struct lane *l = NULL;
	int rc;

	if (t == NULL || o == NULL || done == NULL || (body == NULL && len > 0))
		return err_set(err, -EINVAL, "POST: missing transport, options, body or callback");
	if (t->dead)
		return err_set(err, -EIO, "POST: the transport failed earlier");
	if (len > INT32_MAX)
		return err_set(err, -EMSGSIZE, "POST: body of %zu bytes is too large", len);
	if (o->timeout_usec < 0 || o->idle_timeout_usec < 0)
		return err_set(err, -EINVAL, "POST: negative timeout");
	if (o->client_request_id != NULL && !ews_transport_header_value_ok(o->client_request_id))
		return err_set(err, -EINVAL, "POST: bad client-request-id");
	if (o->bearer_token != NULL && (t->auth != EWS_AUTH_BEARER || o->bearer_token[0] == '\0' ||
	                                check_secret("token", o->bearer_token, err) < 0))
		return err_set(err, -EINVAL, "POST: a bad bearer token, or one without bearer");
	if (t->auth == EWS_AUTH_BEARER && t->token == NULL && o->bearer_token == NULL)
		return err_set(err, -EINVAL, "POST: bearer needs a token (the call has none)");

	c = xcalloc(1, sizeof(*c));
	c->t = t;
	c->done = done;
	c->chunk = o->chunk_fn;
	c->ctx = ctx;
	c->token = xstrdup_or_null(o->bearer_token);
	c->start_usec = clock_now_usec();
	c->timeout_usec = o->timeout_usec;
	if (c->timeout_usec == 0 && o->chunk_fn == NULL)
		c->timeout_usec = t->timeout_usec;
	c->idle_sec = o->idle_timeout_usec ? o->idle_timeout_usec : t->idle_timeout_usec;
	c->idle_sec = (c->idle_sec + 999999) / 1000000;
	if (o->client_request_id != NULL)
		(void)snprintf(c->client_request_id, sizeof(c->client_request_id), "%s",
		               o->client_request_id);
	else
		new_request_id(t, c->client_request_id);
	(void)snprintf(c->host, sizeof(c->host), "?");
	buf_init(&c->body, t->max_response);
	c->next = t->calls;
	if (t->calls != NULL)
		t->calls->prev = c;
	t->calls = c;
	t->n_calls++;

	c->easy = curl_easy_init();
	if (c->easy == NULL) {
		rc = err_set(err, -EIO, "POST: curl_easy_init failed");
		goto fail;
	}
	rc = ews_transport_setup_easy(c, o, body, len, err);
	if (rc < 0)
		goto fail;
	/* Inside libcurl (a chunk callback) no handle may be added: the call waits for
	 * after_action. Otherwise it starts now if a lane is free, else it waits for one. */
	if (t->in_curl == 0)
		l = ews_transport_lane_pick(t, c);
	if (l != NULL) {
		rc = ews_transport_lane_checkout(c, l, err);
		if (rc < 0)
			goto fail;
	} else {
		ews_transport_queue_add(c);
		if (t->in_curl > 0)
			t->dispatch_needed = true;
		ews_transport_queue_arm(t);
	}
	if (out_call != NULL)
		*out_call = c;
	return 0;
fail:
	ews_transport_call_destroy(c);
	return rc;
}

void ews_transport_cancel(struct ews_call *c)
{
	struct ews_transport *t;

	if (c == NULL || c->cancelled || c->done_running)
		return;
	t = c->t;
	c->cancelled = true;
	if (t->in_curl > 0 && c->added) {
		/* Inside libcurl (a chunk callback): on_body refuses further data and the handle
		 * is removed right after the action. */
		t->reap_needed = true;
		return;
	}
	ews_transport_call_destroy(c);
	ews_transport_dispatch(t);
}
