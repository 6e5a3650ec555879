/* SPDX-License-Identifier: MIT */
/*
 * graph-notify.c: Graph change notifications (docs/graph.md "Change notifications").
 *
 * Each mailbox has one subscription on users/{id}/events (created, updated, deleted), posted to
 * calsync's listener (graph-listen.h) for both change and lifecycle notifications. Its
 * clientState is HMAC-SHA256 of the mailbox under a key derived from the app's credential, so
 * that it survives a restart without being stored, and a notification for a known subscription
 * is believed only with the right one (compared in constant time). Notifications are hints:
 * a change reads the mailbox after the debounce; "missed" re-reads at once;
 * "subscriptionRemoved" subscribes again and re-reads; "reauthorizationRequired" renews at
 * once. Subscriptions are renewed renew_before their expiry, and at once after a restart
 * (which also finds the ones Graph dropped: 404, subscribe again).
 */
#include "sync/graph-backend-int.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "graph/graph-sub.h"
#include "graph/graph-url.h"
#include "sync/graph-listen.h"

/* mb's clientState: 64 hex digits. */
static void client_state(const struct sync_backend *b, const struct mb *mb, char out[65])
{
	unsigned char mac[32];
	unsigned int len = 0;

	(void)HMAC(EVP_sha256(), b->state_key, sizeof(b->state_key), (const unsigned char *)mb->key,
	           strlen(mb->key), mac, &len);
	for (size_t i = 0; i < 32; i++)
		(void)snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

static unsigned lifetime_minutes(const struct sync_backend *b)
{
	return (unsigned)(b->g->subscription_usec / INT64_C(60000000));
}

static struct mb *by_sub(struct sync_backend *b, const char *id)
{
	struct sync_backend_mb *bm = NULL;

	HASH_FIND_STR(b->by_sub, id, bm);
	return bm != NULL ? bm->mb : NULL;
}

/* ---- subscribe, unsubscribe ------------------------------------------------------------- */

static void on_created(struct gcall *c, const struct http_response *r,
                       const struct graph_verdict *v)
{
	struct mb *mb = c->ctx;
	struct sync_result res;
	struct sync_answer a = {0};
	struct graph_sub s = {0};
	struct err err = {0};

	mb->bmb->call = NULL;
	graph_result(v, &res);
	if (v->cls == GRAPH_OK && graph_sub_read(r->body, r->body_len, &s, &err) < 0) {
		res.verdict = SYNC_TRANSIENT;
		(void)snprintf(res.msg, sizeof(res.msg), "subscription answer: %.400s", err.msg);
	}
	gcall_free(c);
	if (res.verdict == SYNC_OK) {
		mb->bmb->sub_expires_utc = s.expires_utc;
		a.sub_id = s.id;
	}
	sync_mb_done(mb, &res, &a);
	graph_sub_clear(&s);
}

int graph_subscribe(struct sync_backend *b, struct mb *mb, struct err *err)
{
	char state[65];
	char *body = NULL, *path = NULL, *url;
	struct graph_sub_create sc = {
		.user = graph_user(mb),
		.notification_url = b->g->notify_url,
		.lifecycle_url = b->g->notify_url,
		.client_state = state,
		.now_utc = sync_engine_now_utc(b->e),
		.minutes = lifetime_minutes(b),
	};
	struct gcall *c;
	int rc;

	client_state(b, mb, state);
	rc = graph_sub_create_body(&sc, &body, err);
	explicit_bzero(state, sizeof(state));
	if (rc == 0)
		rc = graph_url_subscription(NULL, &path, err);
	if (rc < 0) {
		free(body);
		return rc;
	}
	url = graph_url_join(b->base, path);
	free(path);
	c = gcall_new(b, GRAPH_REQ_SUB_CREATE, HTTP_POST, url, on_created, mb);
	free(url);
	c->body = body;
	mb->bmb->call = c;
	gcall_start(c);
	return 0;
}

static void on_deleted(struct gcall *c, const struct http_response *r,
                       const struct graph_verdict *v)
{
	struct mb *mb = c->ctx;
	struct sync_result res;

	mb->bmb->call = NULL;
	graph_result(v, &res);
	gcall_free(c);
	sync_mb_done(mb, &res, NULL);
}

int graph_unsubscribe(struct sync_backend *b, struct mb *mb, struct err *err)
{
	char *path = NULL, *url;
	struct gcall *c;
	int rc = graph_url_subscription(mb->sub_id, &path, err);

	if (rc < 0)
		return rc;
	url = graph_url_join(b->base, path);
	free(path);
	c = gcall_new(b, GRAPH_REQ_SUB_DELETE, HTTP_DELETE, url, on_deleted, mb);
	free(url);
	mb->bmb->call = c;
	gcall_start(c);
	return 0;
}

/* ---- the subscription map, renewal ------------------------------------------------------- */

void graph_feed_opened(struct sync_backend *b, struct mb *mb)
{
	struct sync_backend_mb *bm = mb->bmb;

	if (!b->g || b->g->mode != CFG_GRAPH_NOTIFY || mb->sub_id == NULL || bm->sub_key != NULL)
		return;
	bm->sub_key = xstrdup(mb->sub_id);
	HASH_ADD_KEYPTR(hh, b->by_sub, bm->sub_key, strlen(bm->sub_key), bm);
}

void graph_feed_closed(struct sync_backend *b, struct mb *mb)
{
	(void)graph_leave_home(b, mb);
}

bool graph_leave_home(struct sync_backend *b, struct mb *mb)
{
	struct sync_backend_mb *bm = mb->bmb;

	if (bm == NULL || bm->sub_key == NULL)
		return false;
	HASH_DELETE(hh, b->by_sub, bm);
	free(bm->sub_key);
	bm->sub_key = NULL;
	gcall_cancel(bm->renew);
	bm->renew = NULL;
	return true;
}

static void renew_one(struct sync_backend *b, struct mb *mb);

static void on_old_deleted(struct gcall *c, const struct http_response *r,
                           const struct graph_verdict *v)
{
	if (v->cls != GRAPH_OK)
		log_debug("graph: deleting a subscription of before the restart: %s", v->msg);
	gcall_free(c);
}

/*
 * A subscription stored before a restart is not resumed but replaced: while calsync was down,
 * Graph's POSTs to it failed, and Graph holds its later notifications back behind a growing
 * retry interval (up to 30 minutes, for up to 4 hours), so resuming it would leave the mailbox
 * deaf for that long. The old one is deleted, the engine subscribes again and re-reads.
 */
void graph_resume(struct sync_backend *b, struct mb *mb)
{
	char *path = NULL, *url;
	struct err err = {0};

	if (b->g->mode != CFG_GRAPH_NOTIFY || mb->sub_id == NULL)
		return;
	if (graph_url_subscription(mb->sub_id, &path, &err) == 0) {
		struct gcall *c;

		url = graph_url_join(b->base, path);
		free(path);
		c = gcall_new(b, GRAPH_REQ_SUB_DELETE, HTTP_DELETE, url, on_old_deleted, NULL);
		free(url);
		list_append(&b->owned, &c->own_link);
		gcall_start(c);
	}
	sync_mb_feed_lost(mb, 0);
}

static void on_renewed(struct gcall *c, const struct http_response *r,
                       const struct graph_verdict *v)
{
	struct mb *mb = c->ctx;
	struct sync_backend *b = c->b;
	struct sync_backend_mb *bm = mb->bmb;
	struct graph_sub s = {0};
	struct err err = {0};

	bm->renew = NULL;
	gcall_free(c);
	if (v->cls == GRAPH_OK && graph_sub_read(r->body, r->body_len, &s, &err) == 0) {
		bm->sub_expires_utc = s.expires_utc;
		graph_sub_clear(&s);
		return;
	}
	if (v->cls == GRAPH_FEED_LOST || v->cls == GRAPH_MAILBOX) {
		log_info("%s: graph: subscription gone (%s); subscribing again", mb->smtp, v->msg);
		sync_mb_feed_lost(mb, (v->flags & GRAPH_VF_REHOME) ? SYNC_RF_REDISCOVER : 0);
		return;
	}
	sync_note_error(b->e, mb->smtp, "renew subscription",
	                v->cls == GRAPH_OK ? err.msg : v->msg);
	log_warn("%s: graph: renewing the subscription: %s; retried at the next check", mb->smtp,
	         v->cls == GRAPH_OK ? err.msg : v->msg);
}

static void renew_one(struct sync_backend *b, struct mb *mb)
{
	struct sync_backend_mb *bm = mb->bmb;
	char *body = NULL, *path = NULL, *url;
	struct err err = {0};

	if (bm->renew != NULL || bm->sub_key == NULL)
		return;
	if (graph_sub_renew_body(sync_engine_now_utc(b->e), lifetime_minutes(b), &body, &err) < 0 ||
	    graph_url_subscription(bm->sub_key, &path, &err) < 0) {
		free(body);
		log_err("%s: graph: renewal: %s", mb->smtp, err.msg);
		return;
	}
	url = graph_url_join(b->base, path);
	free(path);
	bm->renew = gcall_new(b, GRAPH_REQ_SUB_RENEW, HTTP_PATCH, url, on_renewed, mb);
	free(url);
	bm->renew->body = body;
	gcall_start(bm->renew);
}

static void on_renew_timer(uv_timer_t *t)
{
	struct sync_backend *b = t->data;
	int64_t due = sync_engine_now_utc(b->e) + b->g->renew_before_usec / INT64_C(1000000);
	struct sync_backend_mb *bm, *tmp;

	if (b->stopping)
		return;
	HASH_ITER(hh, b->by_sub, bm, tmp)
	{
		if (bm->sub_expires_utc <= due)
			renew_one(b, bm->mb);
	}
}

/* ---- notifications ----------------------------------------------------------------------- */

static void one_notification(struct sync_backend *b, const struct graph_notification *n)
{
	struct mb *mb = by_sub(b, n->subscription_id);
	char want[65];
	bool ok;

	if (mb == NULL) {
		b->st.bad_notifications++;
		log_debug("graph: a notification for subscription %.64s, which no mailbox has",
		          n->subscription_id);
		return;
	}
	client_state(b, mb, want);
	ok = n->client_state != NULL &&
	     graph_sub_client_state_equal(want, n->client_state, strlen(n->client_state));
	explicit_bzero(want, sizeof(want));
	if (!ok) {
		b->st.bad_notifications++;
		log_warn("%s: graph: a notification with a wrong clientState, ignored (forged, or "
		         "from before a change of the app's credential)",
		         mb->smtp);
		return;
	}
	b->st.notifications++;
	switch (n->lifecycle) {
	case GRAPH_LIFECYCLE_NONE:
		sync_mb_changed(mb);
		break;
	case GRAPH_LIFECYCLE_REAUTHORIZATION_REQUIRED:
		mb->bmb->sub_expires_utc = 0;
		renew_one(b, mb);
		break;
	case GRAPH_LIFECYCLE_SUBSCRIPTION_REMOVED:
		log_info("%s: graph: subscription removed by Graph; subscribing again", mb->smtp);
		sync_mb_feed_lost(mb, 0);
		break;
	case GRAPH_LIFECYCLE_MISSED:
	case GRAPH_LIFECYCLE_UNKNOWN:
	default:
		log_info("%s: graph: notifications were missed; reading again", mb->smtp);
		sync_mb_gap(mb, true);
		break;
	}
}

static void on_posted(void *ctx, const char *body, size_t len)
{
	struct sync_backend *b = ctx;
	struct graph_notifications ns = {0};
	struct err err = {0};

	if (b->stopping)
		return;
	if (graph_notifications_read(body, len, &ns, &err) < 0) {
		b->st.bad_notifications++;
		log_warn(
			"graph: a POST to the notification endpoint that is not a notification: %s",
			err.msg);
		return;
	}
	for (size_t i = 0; i < ns.n; i++)
		one_notification(b, &ns.v[i]);
	graph_notifications_clear(&ns);
}

/* ---- open, close ------------------------------------------------------------------------- */

/* The path of url after its authority: "https://host:port/graph?x" -> "/graph". */
static char *url_path(const char *url)
{
	const char *p = strstr(url, "://");
	const char *slash = p != NULL ? strchr(p + 3, '/') : NULL;
	size_t n;

	if (slash == NULL)
		return xstrdup("/");
	n = strcspn(slash, "?#");
	return xmemdup(slash, n);
}

/* The clientState key: SHA-256 of a label and the app's credential. */
static void derive_key(struct sync_backend *b)
{
	const char *cred = b->g->client_secret != NULL ? b->g->client_secret : b->g->key_pem;
	static const char label[] = "calsync graph clientState v1";
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int len = 0;

	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(md, label, sizeof(label) - 1) != 1 ||
	    EVP_DigestUpdate(md, cred != NULL ? cred : "", cred != NULL ? strlen(cred) : 0) != 1 ||
	    EVP_DigestFinal_ex(md, b->state_key, &len) != 1) {
		fprintf(stderr, "calsync: OpenSSL cannot compute SHA-256\n");
		abort();
	}
	EVP_MD_CTX_free(md);
}

int graph_notify_open(struct sync_backend *b, struct err *err)
{
	const struct cfg_graph *g = b->g;
	struct graph_listen_opts o = {
		.host = g->listen_host != NULL ? g->listen_host : CFG_GRAPH_LISTEN_HOST,
		.port = g->listen_host != NULL ? g->listen_port : CFG_GRAPH_LISTEN_PORT,
		.tls_cert_pem = g->notify_tls_cert_pem,
		.tls_key_pem = g->notify_tls_key_pem,
	};
	char *path;
	int rc;

	uv_timer_init(b->e->loop, &b->renew_timer);
	b->renew_timer.data = b;
	b->handles_open++;
	if (g->mode != CFG_GRAPH_NOTIFY)
		return 0;
	derive_key(b);
	path = url_path(g->notify_url);
	o.path = path;
	rc = graph_listen_start(b->e->loop, &o, on_posted, b, &b->listen, err);
	free(path);
	if (rc < 0)
		return rc;
	uv_timer_start(&b->renew_timer, on_renew_timer, GRAPH_RENEW_CHECK_USEC / 1000,
	               GRAPH_RENEW_CHECK_USEC / 1000);
	return 0;
}

static void on_renew_closed(uv_handle_t *h)
{
	struct sync_backend *b = h->data;

	if (--b->handles_open == 0)
		free(b);
}

void graph_notify_close(struct sync_backend *b)
{
	struct sync_backend_mb *bm, *tmp;

	graph_listen_free(b->listen);
	b->listen = NULL;
	HASH_ITER(hh, b->by_sub, bm, tmp)
	{
		HASH_DELETE(hh, b->by_sub, bm);
		free(bm->sub_key);
		bm->sub_key = NULL;
	}
	explicit_bzero(b->state_key, sizeof(b->state_key));
	if (uv_is_active((uv_handle_t *)&b->renew_timer) || b->renew_timer.loop != NULL)
		uv_close((uv_handle_t *)&b->renew_timer, on_renew_closed);
}
