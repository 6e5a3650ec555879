/* SPDX-License-Identifier: MIT */
/*
 * check-graph.c: the Microsoft Graph steps of `calsync check`, run when the configuration has
 * <graph>, after the EWS steps (whose Autodiscover says which mailboxes moved to Exchange
 * Online):
 *
 *   graph-token     a token from Entra ID with the configured credential, through the token
 *                   provider the daemon uses (http/oauth.h), on check's loop
 *   graph-mailbox   per Graph mailbox: the user lookup (GET /users/{address}) and a calendarView
 *                   read of today ($top=1), read by the daemon's readers and error verdict
 *   graph-listen, graph-endpoint, graph-validate   the notification endpoint
 *                   (check-graph-notify.c, only with <notifications>)
 *   graph-throttle  the throttling answers seen (check-graph-call.c)
 *
 * The Graph sample: the mailboxes pinned to Graph (<mailbox backend="graph">), those
 * Autodiscover says are in Exchange Online, and, where nothing says where a mailbox lives
 * (<ews url>, or no Autodiscover answer), the EWS sample too: then the step reports whether
 * Graph serves it. Secrets and tokens are never printed.
 */
#include "cli/check-int.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "base/iso8601.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cal/occurrence.h"
#include "config/config.h"
#include "graph/graph-event.h"
#include "graph/graph-url.h"
#include "http/oauth.h"

/* The largest answer a check call reads: a user, one event, a subscription. */
#define CHECK_GRAPH_MAX_RESPONSE (1u << 20)

/* ---- the sample ------------------------------------------------------------------------------ */

bool check_is_cloud_address(const char *addr)
{
	return cfg_is_cloud_address(addr);
}

static void graph_sample(struct check *c)
{
	struct graph_check *g = c->g;

	g->m = xcalloc(c->n_gpinned + c->n_mbx + 1, sizeof(*g->m));
	for (size_t i = 0; i < c->n_gpinned; i++)
		g->m[g->n++] = (struct gmbx){.smtp = c->gpinned[i], .why = GWHY_PINNED};
	for (size_t i = 0; i < c->n_mbx; i++) {
		const struct mbx *m = &c->mbx[i];
		struct gmbx gm = {.smtp = m->smtp, .ews = m};

		if (m->pinned)
			continue;
		if (m->cloud != NULL) {
			gm.why = GWHY_CLOUD;
			gm.cloud = m->cloud;
		} else if (c->cfg->ews_url != NULL || m->url == NULL) {
			gm.why = GWHY_PROBE;
		} else {
			continue; /* Autodiscover found it on premises */
		}
		g->m[g->n++] = gm;
	}
}

/* ---- graph-token ----------------------------------------------------------------------------- */

/* base64url (padding optional) of s[0..n) into an owned NUL-terminated buffer, or NULL. */
static char *b64url_decode(const char *s, size_t n, size_t *out_len)
{
	char *out = xmalloc(n + 1);
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t k = 0;

	for (size_t i = 0; i < n && s[i] != '='; i++) {
		char ch = s[i];
		int v = ch >= 'A' && ch <= 'Z'   ? ch - 'A'
		        : ch >= 'a' && ch <= 'z' ? ch - 'a' + 26
		        : ch >= '0' && ch <= '9' ? ch - '0' + 52
		        : ch == '-'              ? 62
		        : ch == '_'              ? 63
		                                 : -1;

		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[k++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[k] = '\0';
	*out_len = k;
	return out;
}

/* The application roles an access token carries ("Calendars.Read, User.Read.All"), read from
 * its JWT payload, into out; "" when it is no JWT or has none. Graph's tokens are JWTs today,
 * but Microsoft calls them opaque: this is for the report, never a decision. */
static void token_roles(const char *token, char *out, size_t size)
{
	const char *dot1 = strchr(token, '.');
	const char *dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
	size_t len = 0;
	char *payload =
		dot2 != NULL ? b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &len) : NULL;
	json_t *j = payload != NULL ? json_loadb(payload, len, 0, NULL) : NULL;
	json_t *roles = json_object_get(j, "roles");
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; json_is_array(roles) && i < json_array_size(roles); i++) {
		const char *r = json_string_value(json_array_get(roles, i));
		int n;

		if (r == NULL)
			continue;
		n = snprintf(out + used, size - used, "%s%s", used > 0 ? ", " : "", r);
		if (n < 0 || (size_t)n >= size - used)
			break;
		used += (size_t)n;
	}
	check_tame(out);
	json_decref(j);
	if (payload != NULL) {
		explicit_bzero(payload, len);
		free(payload);
	}
}

struct token_wait {
	bool done;
	int rc;
	char *token;
	struct err err;
};

static void on_token(void *ctx, int rc, const char *token, const struct err *err)
{
	struct token_wait *w = ctx;

	w->done = true;
	w->rc = rc;
	if (rc == 0)
		w->token = xstrdup(token);
	else if (err != NULL)
		w->err = *err;
}

/* What the token step says about the credential: "a client secret" or "the certificate
 * (SHA-1 ..., x5t#S256 ...)". */
static void credential_name(const struct cfg_graph *gc, char *out, size_t size)
{
	char sha1[41], s256[44];

	if (gc->client_secret != NULL)
		(void)snprintf(out, size, "a client secret");
	else if (check_cert_thumbprints(gc->cert_pem, sha1, s256))
		(void)snprintf(out, size, "the certificate %s (x5t#S256 %s)", sha1, s256);
	else
		(void)snprintf(out, size, "the certificate");
}

/* Asks the provider for a token and waits. rc 0 and w->token, or the failure in w. */
static void get_token(struct check *c, struct oauth *o, struct token_wait *w)
{
	const char *cached = NULL;
	struct oauth_waiter *ow = NULL;
	struct err err = {0};
	int rc = oauth_get(o, on_token, w, &cached, &ow, &err);

	if (rc == 1) {
		w->rc = 0;
		w->token = xstrdup(cached);
	} else if (rc < 0) {
		w->rc = rc;
		w->err = err;
	} else if ((rc = check_wait(c, &w->done, CHECK_WAIT_USEC)) < 0) {
		oauth_waiter_cancel(ow);
		w->rc = rc;
		(void)err_set(&w->err, rc, "%s",
		              rc == -ETIMEDOUT
		                      ? "the token request got no answer within the check's "
		                        "deadline"
		                      : "the token request stopped without an answer");
	}
}

static bool graph_token(struct check *c)
{
	const struct cfg_graph *gc = c->cfg->graph;
	struct oauth_opts oo = {
		.authority = gc->authority,
		.tenant = gc->tenant,
		.client_id = gc->client_id,
		.scope = gc->scope,
		.client_secret = gc->client_secret,
		.cert_pem = gc->cert_pem,
		.key_pem = gc->key_pem,
		.timeout_usec = CHECK_CALL_TIMEOUT_USEC,
		.allow_http = cfg_is_loopback_http(gc->authority),
	};
	struct oauth *o = NULL;
	struct oauth_status st = {0};
	struct token_wait w = {0};
	struct fix f = {0};
	struct err err = {0};
	char cred[160];
	char roles[256];
	int64_t start = clock_now_usec();

	credential_name(gc, cred, sizeof(cred));
	if (oauth_new(c->g->http, &oo, &o, &err) < 0) {
		check_fix_say(&f,
		              "<certificate cert=\"...\" key=\"...\"> must name the certificate "
		              "registered with the app and its RSA private key (2048 bits or more, "
		              "unencrypted PEM), which belong together.");
		check_step_add(c, "graph-token", NULL, ST_FAIL, &f,
		               "the credential cannot be used: %s", err.msg);
		return false;
	}
	get_token(c, o, &w);
	oauth_status(o, &st);
	oauth_free(o);
	if (w.rc != 0) {
		enum status s;

		if (w.rc == -EAGAIN)
			check_graph_note_token_busy(c, w.err.msg);
		s = check_fix_graph_token(c, &f, w.rc, w.err.msg);
		check_step_add(c, "graph-token", NULL, s, &f, "app %s in tenant %s with %s: %s",
		               gc->client_id, gc->tenant, cred, w.err.msg);
		return false;
	}
	c->g->answers++;
	c->g->token = w.token;
	token_roles(w.token, roles, sizeof(roles));
	check_step_add(c, "graph-token", NULL, ST_OK, NULL,
	               "token for app %s in tenant %s with %s in %" PRId64 " ms, valid for %" PRId64
	               " min; roles in it: %s",
	               gc->client_id, gc->tenant, cred, (clock_now_usec() - start) / USEC_PER_MSEC,
	               st.expires_at_ms > 0 ? (st.expires_at_ms - clock_now_ms(NULL)) / 60000 : 0,
	               roles[0] != '\0' ? roles
	                                : "none (with RBAC for Applications, Exchange Online holds "
	                                  "the grant)");
	return true;
}

/* ---- graph-mailbox --------------------------------------------------------------------------- */

/* The step for an answer of m that is not OK, to op ("user lookup", "calendarView"). */
static void mailbox_refused(struct check *c, const struct gmbx *m, const char *op,
                            const struct ganswer *a, bool lookup)
{
	const struct graph_verdict *v = &a->v;
	bool rest_off = v->cls == GRAPH_MAILBOX && (v->flags & GRAPH_VF_REHOME);
	bool gone = v->cls == GRAPH_MAILBOX && (v->flags & GRAPH_VF_GONE);
	enum status st = ST_FAIL;
	struct fix f = {0};
	const char *what = "";

	if (m->why == GWHY_PROBE && (rest_off || gone)) {
		check_step_add(c, "graph-mailbox", m->smtp, ST_OK, NULL,
		               rest_off
		                       ? "on premises: Microsoft Graph does not serve it (%s: %s); "
		                         "EWS does"
		                       : "not a user of the tenant (%s: %s): EWS serves it",
		               op, v->msg);
		return;
	}
	if (v->cls == GRAPH_ACCOUNT) {
		check_fix_graph_permission(c, &f, lookup);
	} else if (v->cls == GRAPH_MAILBOX) {
		check_fix_graph_mailbox(c, &f, m, v);
		what = rest_off && m->why == GWHY_PINNED
		               ? "on premises, but <mailbox backend=\"graph\"> pins it to Microsoft "
		                 "Graph: "
		       : rest_off
		               ? "not in Exchange Online, although Autodiscover says it moved there: "
		               : "not a user of the tenant: ";
	} else if (v->cls == GRAPH_TOKEN) {
		check_fix_say(
			&f,
			"Graph refused a fresh token: it is for another audience. The scope "
			"(<endpoints scope=\"%s\">) must be the Graph host's (%s) + /.default, "
			"in the same cloud as the authority.",
			c->cfg->graph->scope, c->g->base);
	} else if (v->cls == GRAPH_THROTTLED) {
		st = ST_WARN;
		check_fix_say(&f,
		              "Exchange Online is throttling the application: see graph-throttle.");
	} else if (v->cls == GRAPH_TRANSIENT && a->status == 0) {
		check_fix_graph_network(c, &f, a->rc, c->g->base);
	} else if (v->cls == GRAPH_TRANSIENT) {
		st = ST_WARN;
		check_fix_say(&f, "Graph failed for a moment; calsync retries. Check again later.");
	} else {
		check_fix_say(&f, "%s.", v->fix != NULL ? v->fix : v->reason);
	}
	check_step_add(c, "graph-mailbox", m->smtp, st, &f, "%s%s: %s (%s)%s", what, op, v->msg,
	               v->reason, a->retried);
}

/* The user lookup: 0 and *u, or the step is added. */
static int lookup_user(struct check *c, const struct gmbx *m, struct graph_user *u)
{
	struct ganswer a = {0};
	struct err err = {0};
	char *path = NULL;
	char *url;
	int rc;

	if (graph_url_user(m->smtp, &path, &err) < 0) {
		check_step_add(c, "graph-mailbox", m->smtp, ST_FAIL, NULL, "%s", err.msg);
		return -EINVAL;
	}
	url = graph_url_join(c->g->base, path);
	check_graph_call(c, "users.get", m->smtp, GRAPH_REQ_USER, HTTP_GET, url, NULL, NULL, &a);
	rc = a.v.cls == GRAPH_OK ? graph_user_read(a.body, a.body_len, u, &err) : -EACCES;
	if (a.v.cls == GRAPH_OK && rc < 0)
		check_step_add(c, "graph-mailbox", m->smtp, ST_FAIL, NULL,
		               "the user lookup's answer cannot be read: %s", err.msg);
	else if (rc < 0)
		mailbox_refused(c, m, "user lookup", &a, true);
	check_ganswer_clear(&a);
	free(url);
	free(path);
	return rc;
}

/* The step for a mailbox whose calendar Graph read: detail is what was read. */
static void mailbox_served(struct check *c, struct gmbx *m, const char *detail)
{
	struct fix f = {0};

	m->served = true;
	if (m->why != GWHY_PROBE) {
		check_step_add(c, "graph-mailbox", m->smtp, ST_OK, NULL, "%s", detail);
		return;
	}
	check_fix_say(
		&f,
		"Pin it to Microsoft Graph in <mailboxes>: <mailbox backend=\"graph\">%s"
		"</mailbox>%s",
		m->smtp,
		c->cfg->ews_url != NULL
			? "; or remove <ews url>, so that Autodiscover finds each mailbox's "
			  "home (it answers RedirectAddress for a mailbox in Exchange Online)."
			: ".");
	if (c->cfg->ews_url != NULL) {
		check_step_add(c, "graph-mailbox", m->smtp, ST_WARN, &f,
		               "in Exchange Online: %s; but with <ews url> calsync serves every "
		               "mailbox that is not pinned through EWS",
		               detail);
		return;
	}
	check_fix_say(&f, "And check that Exchange on premises knows it as a remote mailbox:");
	check_fix_cmd(&f, "Get-RemoteMailbox -Identity '%s' | fl RemoteRoutingAddress", m->smtp);
	check_step_add(c, "graph-mailbox", m->smtp, ST_WARN, &f,
	               "in Exchange Online: %s; but Autodiscover did not say so (%s), so calsync "
	               "run cannot find it there",
	               detail,
	               m->ews != NULL && m->ews->ad_error != NULL ? m->ews->ad_error : "no answer");
}

/* calendarView of today ($top=1) for the user id. */
static void read_calendar(struct check *c, struct gmbx *m, const struct graph_user *u)
{
	int64_t now = clock_now_utc();
	int64_t day = now - ((now % DAY_SEC) + DAY_SEC) % DAY_SEC;
	struct graph_page page = {0};
	struct ganswer a = {0};
	struct err err = {0};
	char prefer[GRAPH_PREFER_SIZE];
	char from[ISO8601_FORMAT_SIZE] = "";
	char *path = NULL;
	char *url;
	char *detail;

	if (graph_url_calendar_view(u->id, day, day + DAY_SEC, 1, &path, &err) < 0) {
		check_step_add(c, "graph-mailbox", m->smtp, ST_FAIL, NULL, "%s", err.msg);
		return;
	}
	graph_url_prefer(0, prefer);
	url = graph_url_join(c->g->base, path);
	check_graph_call(c, "calendarView", m->smtp, GRAPH_REQ_READ, HTTP_GET, url, NULL, prefer,
	                 &a);
	(void)iso8601_format(day, from, NULL);
	if (a.v.cls != GRAPH_OK) {
		mailbox_refused(c, m, "calendarView", &a, false);
	} else if (graph_page_read(a.body, a.body_len, GRAPH_PAGE_VIEW, c->g->base, &page, &err) <
	           0) {
		check_step_add(c, "graph-mailbox", m->smtp, ST_FAIL, NULL,
		               "calendarView: the answer cannot be read: %s", err.msg);
	} else {
		detail = check_strf("user %s (mail %s, UPN %s); calendarView of %.10s: %s%s", u->id,
		                    u->mail != NULL ? u->mail : "none",
		                    u->upn != NULL ? u->upn : "none", from,
		                    page.n_occ == 0  ? "no event"
		                    : page.next_path ? "1 event, more follow"
		                                     : "1 event",
		                    a.retried);
		mailbox_served(c, m, detail);
		free(detail);
	}
	graph_page_clear(&page);
	check_ganswer_clear(&a);
	free(url);
	free(path);
}

static void graph_mailboxes(struct check *c)
{
	struct graph_check *g = c->g;

	if (g->n == 0) {
		check_skip(c, "graph-mailbox",
		           c->n_mbx > 0 ? "Autodiscover found every sample mailbox on premises; "
		                          "name one in Exchange Online with --mailbox"
		                        : "no mailbox to check; name one with --mailbox");
		return;
	}
	for (size_t i = 0; i < g->n; i++) {
		struct gmbx *m = &g->m[i];
		struct graph_user u = {0};

		if (lookup_user(c, m, &u) == 0) {
			m->id = xstrdup(u.id);
			read_calendar(c, m, &u);
		}
		graph_user_clear(&u);
	}
}

/* ---- EWS with Hybrid Modern Authentication -------------------------------------------------- */

void check_ews_token(struct check *c)
{
	const struct cfg_graph *gc = c->cfg->graph;
	struct http_client_opts ho = {
		.ca_file = c->cfg->ca_file,
		.insecure_skip_tls_verify = c->cfg->insecure_skip_tls_verify,
		.connect_timeout_usec = CHECK_CONNECT_TIMEOUT_USEC,
		.timeout_usec = CHECK_CALL_TIMEOUT_USEC,
	};
	struct oauth_opts oo = {
		.authority = gc->authority,
		.tenant = gc->tenant,
		.client_id = gc->client_id,
		.scope = c->cfg->token_scope,
		.client_secret = gc->client_secret,
		.cert_pem = gc->cert_pem,
		.key_pem = gc->key_pem,
		.timeout_usec = CHECK_CALL_TIMEOUT_USEC,
		.allow_http = cfg_is_loopback_http(gc->authority),
	};
	struct http_client *http = NULL;
	struct oauth *o = NULL;
	struct token_wait w = {0};
	struct fix f = {0};
	struct err err = {0};

	if (http_client_new(&c->loop, &ho, &http, &err) < 0 || oauth_new(http, &oo, &o, &err) < 0) {
		check_step_add(c, "ews-token", NULL, ST_FAIL, NULL, "no token for EWS: %s",
		               err.msg);
		http_client_free(http);
		return;
	}
	get_token(c, o, &w);
	oauth_free(o);
	http_client_free(http);
	if (w.rc != 0) {
		check_fix_say(
			&f,
			"EWS with Hybrid Modern Authentication takes its token from Entra ID "
			"with <graph>'s app registration and the scope %s; the app needs the "
			"Office 365 Exchange Online application permission full_access_as_app "
			"with admin consent, and the EWS host must be a service principal name "
			"of Office 365 Exchange Online (docs/graph.md).",
			c->cfg->token_scope);
		check_step_add(c, "ews-token", NULL, ST_FAIL, &f, "no token for EWS (%s): %s",
		               c->cfg->token_scope, w.err.msg);
		return;
	}
	c->ews_token = w.token;
	check_step_add(c, "ews-token", NULL, ST_OK, NULL, "a token for EWS (%s) from Entra ID",
	               c->cfg->token_scope);
}

/* ---- the driver ------------------------------------------------------------------------------ */

static int open_http(struct check *c, struct err *err)
{
	struct http_client_opts ho = {
		.ca_file = c->cfg->ca_file,
		.insecure_skip_tls_verify = c->cfg->insecure_skip_tls_verify,
		.connect_timeout_usec = CHECK_CONNECT_TIMEOUT_USEC,
		.timeout_usec = CHECK_CALL_TIMEOUT_USEC,
		.max_response = CHECK_GRAPH_MAX_RESPONSE,
		.max_host_connections = 4,
		.max_total_connections = 8,
	};
	int rc = graph_url_base(c->cfg->graph->base_url, &c->g->base, err);

	return rc < 0 ? rc : http_client_new(&c->loop, &ho, &c->g->http, err);
}

void check_graph(struct check *c)
{
	const struct gmbx *served = NULL;
	enum log_level level = log_get_level();
	struct err err = {0};

	/* The listener and the HTTP client log at info as the daemon's parts; the steps say it. */
	if (level == LOG_LEVEL_INFO)
		log_set_level(LOG_LEVEL_WARNING);
	c->g = xcalloc(1, sizeof(*c->g));
	c->g->thr.max_retry_after_ms = -1;
	graph_sample(c);
	if (open_http(c, &err) < 0) {
		check_step_add(c, "graph-token", NULL, ST_FAIL, NULL, "%s", err.msg);
		log_set_level(level);
		return;
	}
	if (graph_token(c))
		graph_mailboxes(c);
	else
		check_skip(c, "graph-mailbox", "no access token");
	for (size_t i = 0; i < c->g->n && served == NULL; i++)
		if (c->g->m[i].served)
			served = &c->g->m[i];
	if (c->cfg->graph->mode == CFG_GRAPH_NOTIFY)
		check_graph_notify(c, served);
	check_graph_throttling(c);
	log_set_level(level);
}

void check_graph_clear(struct check *c)
{
	struct graph_check *g = c->g;

	if (g == NULL)
		return;
	http_client_free(g->http);
	if (g->token != NULL) {
		explicit_bzero(g->token, strlen(g->token));
		free(g->token);
	}
	for (size_t i = 0; i < g->n; i++)
		free(g->m[i].id);
	free(g->m);
	free(g->base);
	free(g);
	c->g = NULL;
}
