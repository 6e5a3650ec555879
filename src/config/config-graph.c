/* SPDX-License-Identifier: MIT */
/*
 * config-graph.c: <graph>, Microsoft Graph for the mailboxes in Exchange Online: the app
 * registration (tenant, client id, a client secret from a file or the environment, or a
 * certificate and its key from files), the authority and Graph URLs (national clouds, tests),
 * and how changes are followed (<delta interval>, or <notifications> with calsync's own
 * listener). docs/graph.md describes every setting.
 */
#include "config/config-int.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "base/err.h"
#include "base/xalloc.h"

/* Defaults and ranges (docs/graph.md "Settings"). Graph allows a subscription on events to live
 * at most 10,080 minutes (7 days); a short one costs a renewal a day. */
#define DELTA_INTERVAL_DEFAULT (60 * USEC)
#define DELTA_INTERVAL_MIN     (10 * USEC)
#define DELTA_INTERVAL_MAX     (24 * HOUR)
#define SUBSCRIPTION_DEFAULT   (3 * DAY)
#define SUBSCRIPTION_MIN       (1 * HOUR)
#define SUBSCRIPTION_MAX       (10080 * MINUTE)
#define RENEW_BEFORE_DEFAULT   (12 * HOUR)
#define RENEW_BEFORE_MIN       (5 * MINUTE)
#define CONCURRENCY_DEFAULT    32
#define CONCURRENCY_MAX        512

/* A GUID (8-4-4-4-12 hex digits), as Entra ID writes tenant and client ids. */
static bool is_guid(const char *s)
{
	static const size_t groups[] = {8, 4, 4, 4, 12};

	for (size_t g = 0; g < 5; g++) {
		for (size_t i = 0; i < groups[g]; i++, s++) {
			if (!isxdigit((unsigned char)*s))
				return false;
		}
		if (*s != (g < 4 ? '-' : '\0'))
			return false;
		s++;
	}
	return true;
}

/* A tenant: its GUID or a domain of it (contoso.onmicrosoft.com). */
static bool is_tenant(const char *s)
{
	size_t n = strlen(s);

	if (is_guid(s))
		return true;
	if (n == 0 || n > 253 || strchr(s, '.') == NULL || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.')
			return false;
	}
	return true;
}

/* A duration attribute a of n, when present, into *dst, within [min, max]. */
static int get_duration(struct parser *p, xmlNode *n, const char *a, int64_t min, int64_t max,
                        int64_t *dst)
{
	const char *v = cfgp_attr(p, n, a);
	const char *why = NULL;
	char lo[32], hi[32];
	int64_t usec;

	if (v == NULL)
		return 0;
	cfgp_format_duration(min, lo, sizeof(lo));
	cfgp_format_duration(max, hi, sizeof(hi));
	if (cfgp_parse_duration(v, &usec, &why) != 0)
		return cfgp_fail_attr(p, n, a, v, "%s; accepted: a duration from %s to %s", why, lo,
		                      hi);
	if (usec < min || usec > max)
		return cfgp_fail_attr(p, n, a, v, "out of range; accepted: %s to %s", lo, hi);
	*dst = usec;
	return 0;
}

/* A URL without a trailing '/': the base URLs are joined with "/path". */
static int get_base_url(struct parser *p, xmlNode *n, const char *a, char **dst)
{
	int rc = cfgp_get_url(p, n, a, dst);
	size_t len;

	if (rc != 0 || *dst == NULL)
		return rc;
	len = strlen(*dst);
	while (len > 0 && (*dst)[len - 1] == '/')
		(*dst)[--len] = '\0';
	return 0;
}

static int el_secret(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"file", "env", "value", NULL};

	cfgp_check_attrs(p, n, known);
	return cfgp_get_secret(p, n, "value", "file", "env", &p->graph_secret_src);
}

/* A certificate and key attribute pair (PEM files): both or neither; read unless offline. */
static int read_pem_pair(struct parser *p, xmlNode *n, const char *ca, const char *ka,
                         char **cert_pem, char **key_pem)
{
	char *cert = NULL, *key = NULL;
	int rc;

	rc = cfgp_get_path(p, n, ca, &cert);
	if (rc == 0)
		rc = cfgp_get_path(p, n, ka, &key);
	if (rc == 0 && (cert == NULL) != (key == NULL))
		rc = cfgp_fail(p, n, "give both %s and %s (PEM files), or neither", ca, ka);
	if (rc == 0 && cert != NULL && !p->offline) {
		rc = cfgp_read_pem(p, n, ca, cert, cert_pem);
		if (rc == 0)
			rc = cfgp_read_pem(p, n, ka, key, key_pem);
	}
	free(cert);
	free(key);
	return rc;
}

/* <certificate cert="graph.crt" key="graph.key">: the app's certificate credential. */
static int el_certificate(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"cert", "key", NULL};
	struct cfg_graph *g = p->cfg->graph;
	int rc;

	cfgp_check_attrs(p, n, known);
	rc = read_pem_pair(p, n, "cert", "key", &g->cert_pem, &g->key_pem);
	if (rc == 0 && cfgp_attr(p, n, "cert") == NULL)
		rc = cfgp_fail(p, n, "give both cert and key (PEM files)");
	return rc;
}

static int el_delta(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"interval", NULL};

	cfgp_check_attrs(p, n, known);
	return get_duration(p, n, "interval", DELTA_INTERVAL_MIN, DELTA_INTERVAL_MAX,
	                    &p->cfg->graph->delta_interval_usec);
}

static int el_notifications(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"listen",   "url",          "tls_cert", "tls_key",
	                                    "lifetime", "renew_before", NULL};
	struct cfg_graph *g = p->cfg->graph;
	int rc;

	cfgp_check_attrs(p, n, known);
	g->mode = CFG_GRAPH_NOTIFY;
	rc = cfgp_get_listen(p, n, "listen", &g->listen_host, &g->listen_port);
	if (rc == 0 && g->listen_host == NULL) {
		g->listen_host = xstrdup(CFG_GRAPH_LISTEN_HOST);
		g->listen_port = CFG_GRAPH_LISTEN_PORT;
	}
	if (rc == 0)
		rc = cfgp_get_url(p, n, "url", &g->notify_url);
	if (rc == 0 && g->notify_url == NULL)
		rc = cfgp_fail(
			p, n,
			"url is required: the https:// URL at which Microsoft Graph reaches "
			"this listener, e.g. url=\"https://calsync.contoso.com:8443/graph\"");
	if (rc == 0 && strncasecmp(g->notify_url, "https://", 8) != 0)
		rc = cfgp_fail_attr(p, n, "url", g->notify_url,
		                    "Microsoft Graph delivers notifications only to https:// URLs");
	if (rc == 0)
		rc = read_pem_pair(p, n, "tls_cert", "tls_key", &g->notify_tls_cert_pem,
		                   &g->notify_tls_key_pem);
	if (rc == 0)
		rc = get_duration(p, n, "lifetime", SUBSCRIPTION_MIN, SUBSCRIPTION_MAX,
		                  &g->subscription_usec);
	if (rc == 0)
		rc = get_duration(p, n, "renew_before", RENEW_BEFORE_MIN, SUBSCRIPTION_MAX / 2,
		                  &g->renew_before_usec);
	if (rc == 0 && g->renew_before_usec >= g->subscription_usec)
		rc = cfgp_fail(p, n, "renew_before must be shorter than lifetime");
	return rc;
}

static int el_endpoints(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"authority", "graph", "scope", NULL};
	struct cfg_graph *g = p->cfg->graph;
	int rc;

	cfgp_check_attrs(p, n, known);
	rc = get_base_url(p, n, "authority", &g->authority);
	if (rc == 0)
		rc = get_base_url(p, n, "graph", &g->base_url);
	if (rc == 0)
		rc = cfgp_get_text(p, n, "scope", false, &g->scope);
	return rc;
}

/* The scope of a client-credentials token for base: "https://host[:port]/.default". */
static char *default_scope(const char *base)
{
	const char *host = strstr(base, "://");
	const char *end = host != NULL ? strchr(host + 3, '/') : NULL;
	size_t n = end != NULL ? (size_t)(end - base) : strlen(base);
	char *s = xmalloc(n + sizeof("/.default"));

	memcpy(s, base, n);
	memcpy(s + n, "/.default", sizeof("/.default"));
	return s;
}

int cfgp_el_graph(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"tenant", "client_id", "concurrency", NULL};
	static const struct child kids[] = {
		{"secret", el_secret, false},       {"certificate", el_certificate, false},
		{"delta", el_delta, false},         {"notifications", el_notifications, false},
		{"endpoints", el_endpoints, false},
	};
	struct cfg_graph *g = xcalloc(1, sizeof(*g));
	const char *v;
	int rc;

	p->cfg->graph = g;
	p->graph = n;
	g->mode = CFG_GRAPH_DELTA;
	g->delta_interval_usec = DELTA_INTERVAL_DEFAULT;
	g->subscription_usec = SUBSCRIPTION_DEFAULT;
	g->renew_before_usec = RENEW_BEFORE_DEFAULT;
	g->concurrency = CONCURRENCY_DEFAULT;
	cfgp_check_attrs(p, n, known);
	rc = cfgp_get_text(p, n, "tenant", false, &g->tenant);
	if (rc == 0 && (g->tenant == NULL || !is_tenant(g->tenant)))
		rc = g->tenant == NULL
		             ? cfgp_fail(p, n,
		                         "tenant is required: the directory (tenant) id, or "
		                         "a domain such as contoso.onmicrosoft.com")
		             : cfgp_fail_attr(p, n, "tenant", g->tenant,
		                              "not a tenant id (a GUID) or domain");
	if (rc == 0)
		rc = cfgp_get_text(p, n, "client_id", false, &g->client_id);
	if (rc == 0 && (g->client_id == NULL || !is_guid(g->client_id)))
		rc = cfgp_fail(p, n,
		               "client_id must be the app registration's application "
		               "(client) id, a GUID");
	v = rc == 0 ? cfgp_attr(p, n, "concurrency") : NULL;
	if (v != NULL) {
		char *end;
		long c = strtol(v, &end, 10);

		if (!isdigit((unsigned char)v[0]) || *end != '\0' || c < 1 || c > CONCURRENCY_MAX)
			rc = cfgp_fail_attr(p, n, "concurrency", v, "accepted: 1 to %d",
			                    CONCURRENCY_MAX);
		else
			g->concurrency = c;
	}
	if (rc == 0)
		rc = WALK(p, n, kids);
	if (rc != 0)
		return rc;
	if (g->authority == NULL)
		g->authority = xstrdup(CFG_GRAPH_AUTHORITY);
	if (g->base_url == NULL)
		g->base_url = xstrdup(CFG_GRAPH_BASE_URL);
	if (g->scope == NULL)
		g->scope = default_scope(g->base_url);
	return 0;
}

int cfgp_graph_finish(struct parser *p)
{
	struct cfg_graph *g = p->cfg->graph;
	const struct secret_src *src = &p->graph_secret_src;
	int rc = 0;

	if (g == NULL) {
		for (size_t i = 0; i < p->n_mbx; i++) {
			if (p->mbx[i].backend == CFG_BACKEND_GRAPH)
				return err_set(
					p->err, -EINVAL,
					"%s:%ld: <mailbox backend=\"graph\">: %s is pinned to "
					"Microsoft Graph, but there is no <graph>",
					p->mbx[i].file, p->mbx[i].line, p->mbx[i].smtp);
		}
		return 0;
	}
	if (src->attr != NULL && g->cert_pem != NULL)
		return cfgp_fail(p, p->graph, "give a <secret> or a <certificate>, not both");
	if (src->attr == NULL && g->cert_pem == NULL && !p->offline)
		return cfgp_fail(p, p->graph,
		                 "no credential: add <secret file=\"graph-secret\"/> (or env=) or "
		                 "<certificate cert=\"graph.crt\" key=\"graph.key\"/>");
	if (src->attr != NULL && !p->offline)
		rc = src->is_file ? cfgp_read_secret_file(p, p->graph, src->attr, src->value,
		                                          &g->client_secret)
		                  : cfgp_read_secret_env(p, p->graph, src->attr, src->value,
		                                         &g->client_secret);
	return rc;
}

void cfgp_graph_free(struct cfg_graph *g)
{
	if (g == NULL)
		return;
	free(g->tenant);
	free(g->client_id);
	cfgp_wipe_free(g->client_secret);
	free(g->cert_pem);
	cfgp_wipe_free(g->key_pem);
	free(g->authority);
	free(g->base_url);
	free(g->scope);
	free(g->listen_host);
	free(g->notify_url);
	free(g->notify_tls_cert_pem);
	cfgp_wipe_free(g->notify_tls_key_pem);
	free(g);
}

bool cfg_is_cloud_address(const char *addr)
{
	static const char *const suffixes[] = {
		".mail.onmicrosoft.com",
		".mail.onmicrosoft.us",
		".mail.partner.onmschina.cn",
	};
	size_t n = strlen(addr);

	if (strchr(addr, '@') == NULL)
		return false;
	for (size_t k = 0; k < sizeof(suffixes) / sizeof(suffixes[0]); k++) {
		size_t m = strlen(suffixes[k]);

		if (n > m && strcasecmp(addr + n - m, suffixes[k]) == 0)
			return true;
	}
	return false;
}

bool cfg_is_loopback_http(const char *url)
{
	static const char *const ok[] = {"http://127.0.0.1", "http://[::1]", "http://localhost"};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		size_t n = strlen(ok[i]);

		if (strncmp(url, ok[i], n) == 0 &&
		    (url[n] == ':' || url[n] == '/' || url[n] == '\0'))
			return true;
	}
	return false;
}

const char *cfg_backend_name(enum cfg_backend b)
{
	return b == CFG_BACKEND_EWS ? "ews" : b == CFG_BACKEND_GRAPH ? "graph" : "auto";
}

const char *cfg_graph_mode_name(enum cfg_graph_mode m)
{
	return m == CFG_GRAPH_NOTIFY ? "notifications" : "delta";
}
