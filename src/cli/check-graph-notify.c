/* SPDX-License-Identifier: MIT */
/*
 * check-graph-notify.c: the notification endpoint of <graph><notifications>, in three steps:
 *
 *   graph-listen    whether calsync run can listen at <notifications listen>: the address is
 *                   free (then the check starts calsync's own listener there, sync/graph-listen.h,
 *                   for the steps below), or a running calsync holds it (it answers a
 *                   validation request), or something else does;
 *   graph-endpoint  the URL Microsoft Graph posts to: https, a public host, and the validation
 *                   handshake from this machine (POST url?validationToken=... must answer 200,
 *                   text/plain, the token);
 *   graph-validate  Microsoft Graph's own validation, from the internet: a subscription to a
 *                   served mailbox's events with that URL, deleted again at once.
 *
 * The handshakes are plain libcurl requests (as check-probe.c makes): they carry no secret, and
 * the one to the local listener runs unverified, because that certificate names the public host.
 */
#include "cli/check-int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "config/config.h"
#include "graph/graph-sub.h"
#include "graph/graph-url.h"
#include "sync/graph-listen.h"

/* The listener's address when <notifications> names none (as src/sync/graph-notify.c). */

/* Graph wants the validation answered within 10 seconds. */
#define CHECK_VALIDATION_TIMEOUT_MS 10000L
#define CHECK_VALIDATION_MAX_BODY   4096u

/* The check's subscription lives this long should its deletion fail. */
#define CHECK_SUB_MINUTES 60u

/* What a validation request got. */
struct vprobe {
	CURLcode res;
	long http;
	char content_type[128];
	char body[CHECK_VALIDATION_MAX_BODY + 1];
	size_t len;
	char errbuf[CURL_ERROR_SIZE];
	int64_t ms;
};

static size_t on_body(char *data, size_t size, size_t nitems, void *ctx)
{
	struct vprobe *p = ctx;
	size_t n = size * nitems;
	size_t room = CHECK_VALIDATION_MAX_BODY - p->len;

	memcpy(p->body + p->len, data, n < room ? n : room);
	p->len += n < room ? n : room;
	p->body[p->len] = '\0';
	return n;
}

/* A token as Graph's look: words, a colon, and a random part. */
static void make_token(char out[96])
{
	unsigned char r[12] = {0};
	int n;

	(void)RAND_bytes(r, sizeof(r));
	n = snprintf(out, 96, "Validation: calsync check ");
	for (size_t i = 0; i < sizeof(r) && n + 3 < 96; i++)
		n += snprintf(out + n, (size_t)(96 - n), "%02x", r[i]);
}

/* POST url?validationToken=token, empty text/plain body, as Graph sends it; verified with
 * <tls ca_file> unless verify is false. */
static void validation_probe(const struct check *c, const char *url, bool verify, const char *token,
                             struct vprobe *p)
{
	CURL *e = curl_easy_init();
	struct curl_slist *hdr = NULL;
	char *esc = e != NULL ? curl_easy_escape(e, token, 0) : NULL;
	char *full = NULL;
	const char *ct = NULL;
	int64_t start = clock_now_usec();

	memset(p, 0, sizeof(*p));
	p->res = CURLE_OUT_OF_MEMORY;
	if (e == NULL || esc == NULL)
		goto out;
	full = check_strf("%s%svalidationToken=%s", url, strchr(url, '?') != NULL ? "&" : "?", esc);
	hdr = curl_slist_append(NULL, "Content-Type: text/plain; charset=utf-8");
	(void)curl_easy_setopt(e, CURLOPT_URL, full);
	(void)curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	(void)curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(e, CURLOPT_PROXY, "");
	(void)curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	(void)curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, CHECK_VALIDATION_TIMEOUT_MS);
	(void)curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, CHECK_VALIDATION_TIMEOUT_MS);
	(void)curl_easy_setopt(e, CURLOPT_ERRORBUFFER, p->errbuf);
	(void)curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr);
	(void)curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
	(void)curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
	(void)curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	(void)curl_easy_setopt(e, CURLOPT_WRITEDATA, p);
	if (!verify) {
		(void)curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		(void)curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (c->cfg->ca_file != NULL) {
		(void)curl_easy_setopt(e, CURLOPT_CAINFO, c->cfg->ca_file);
	}
	p->res = curl_easy_perform(e);
	(void)curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &p->http);
	if (curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != NULL)
		(void)snprintf(p->content_type, sizeof(p->content_type), "%s", ct);
out:
	if (p->errbuf[0] == '\0')
		(void)snprintf(p->errbuf, sizeof(p->errbuf), "%s", curl_easy_strerror(p->res));
	check_tame(p->errbuf);
	check_tame(p->content_type);
	check_tame(p->body);
	p->ms = (clock_now_usec() - start) / USEC_PER_MSEC;
	curl_slist_free_all(hdr);
	curl_free(esc);
	free(full);
	curl_easy_cleanup(e);
}

static bool echoed(const struct vprobe *p, const char *token)
{
	return p->res == CURLE_OK && p->http == 200 &&
	       strncasecmp(p->content_type, "text/plain", 10) == 0 && strcmp(p->body, token) == 0;
}

/* What a validation request got, for a person: "HTTP 404 (text/plain, 10 bytes)". */
static void vprobe_said(const struct vprobe *p, char *out, size_t size)
{
	if (p->res != CURLE_OK)
		(void)snprintf(out, size, "%s", p->errbuf);
	else if (p->http == 200)
		(void)snprintf(out, size,
		               "HTTP 200, but not the token as text/plain (%s, %zu bytes)",
		               p->content_type[0] ? p->content_type : "no Content-Type", p->len);
	else
		(void)snprintf(out, size, "HTTP %ld (%s, %zu bytes)", p->http,
		               p->content_type[0] ? p->content_type : "no Content-Type", p->len);
}

/* The path of url after its authority: "https://host:port/graph?x" -> "/graph"; owned. As the
 * Graph backend's listener takes it. */
static char *url_path(const char *url)
{
	const char *p = strstr(url, "://");
	const char *slash = p != NULL ? strchr(p + 3, '/') : NULL;

	if (slash == NULL)
		return xstrdup("/");
	return xmemdup(slash, strcspn(slash, "?#"));
}

/* ---- graph-listen ---------------------------------------------------------------------------- */

/* Whether host:port can be bound: 0, or the negative errno bind() gave. */
static int try_bind(const char *host, unsigned port)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICHOST | AI_PASSIVE,
	};
	struct addrinfo *res = NULL;
	char service[16];
	int one = 1;
	int fd;
	int rc = 0;

	(void)snprintf(service, sizeof(service), "%u", port);
	if (getaddrinfo(host, service, &hints, &res) != 0 || res == NULL)
		return -EADDRNOTAVAIL;
	fd = socket(res->ai_family, res->ai_socktype, 0);
	if (fd < 0) {
		rc = -errno;
	} else {
		/* libmicrohttpd sets it too: a port in TIME_WAIT is free for the daemon. */
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, res->ai_addr, res->ai_addrlen) < 0)
			rc = -errno;
		(void)close(fd);
	}
	freeaddrinfo(res);
	return rc;
}

static void on_posted(void *ctx, const char *body, size_t len)
{
	/* The check's own listener: Graph's validation is answered by the listener itself; a
	 * notification of the check's short-lived subscription needs nothing. */
	(void)ctx;
	(void)body;
	(void)len;
}

/* The address and port calsync run listens on. */
static void listen_addr(const struct cfg_graph *g, const char **host, unsigned *port)
{
	*host = g->listen_host != NULL ? g->listen_host : CFG_GRAPH_LISTEN_HOST;
	*port = g->listen_host != NULL ? g->listen_port : CFG_GRAPH_LISTEN_PORT;
}

/* The address is in use: a running calsync answers a validation request there. */
static void listen_in_use(struct check *c, const char *host, unsigned port, const char *path)
{
	const struct cfg_graph *g = c->cfg->graph;
	const char *local = strcmp(host, "0.0.0.0") == 0 ? "127.0.0.1"
	                    : strcmp(host, "::") == 0    ? "::1"
	                                                 : host;
	bool v6 = strchr(local, ':') != NULL;
	char *url =
		check_strf("%s://%s%s%s:%u%s", g->notify_tls_cert_pem != NULL ? "https" : "http",
	                   v6 ? "[" : "", local, v6 ? "]" : "", port, path);
	struct vprobe p;
	struct fix f = {0};
	char token[96];
	char said[300];

	make_token(token);
	validation_probe(c, url, false, token, &p);
	if (echoed(&p, token)) {
		check_step_add(
			c, "graph-listen", NULL, ST_OK, NULL,
			"%s port %u is in use by a running calsync: %s answered a validation "
			"request",
			host, port, url);
	} else {
		vprobe_said(&p, said, sizeof(said));
		check_fix_say(
			&f,
			"calsync run cannot listen there. Find the program that holds the port, "
			"or give calsync another one in <notifications listen=\"HOST:PORT\"> "
			"(and point the reverse proxy or port forwarding at it):");
		check_fix_cmd(&f, "ss -ltnp 'sport = :%u'", port);
		check_step_add(c, "graph-listen", NULL, ST_FAIL, &f,
		               "%s port %u is in use by another program: %s did not answer a "
		               "validation request as calsync does (%s)",
		               host, port, url, said);
	}
	free(url);
}

/* Whether calsync run can listen; *out is the check's own listener, when it started one. */
static void step_listen(struct check *c, struct graph_listen **out)
{
	const struct cfg_graph *g = c->cfg->graph;
	const char *host;
	unsigned port;
	char *path = url_path(g->notify_url);
	struct fix f = {0};
	struct err err = {0};
	int rc;

	listen_addr(g, &host, &port);
	rc = try_bind(host, port);
	if (rc == 0) {
		struct graph_listen_opts o = {
			.host = host,
			.port = port,
			.path = path,
			.tls_cert_pem = g->notify_tls_cert_pem,
			.tls_key_pem = g->notify_tls_key_pem,
		};

		rc = graph_listen_start(&c->loop, &o, on_posted, NULL, out, &err);
		if (rc < 0) {
			check_fix_say(&f, "tls_cert and tls_key of <notifications> must be the PEM "
			                  "certificate (with its chain) and its unencrypted key.");
			check_step_add(c, "graph-listen", NULL, ST_FAIL, &f,
			               "calsync run cannot listen on %s port %u: %s", host, port,
			               err.msg);
		} else {
			check_step_add(
				c, "graph-listen", NULL, ST_OK, NULL,
				"%s port %u is free: calsync run can listen there (%s); the check "
				"listens there itself while it runs",
				host, port,
				g->notify_tls_cert_pem != NULL
					? "HTTPS with the configured certificate"
					: "plain HTTP: TLS must end at a reverse proxy in front of it");
		}
	} else if (rc == -EADDRINUSE) {
		listen_in_use(c, host, port, path);
	} else if (rc == -EACCES) {
		check_fix_say(&f,
		              "Ports below 1024 need CAP_NET_BIND_SERVICE: add "
		              "AmbientCapabilities=CAP_NET_BIND_SERVICE to calsync's systemd unit, "
		              "or listen on a port from 1024 on and forward 443 to it.");
		check_step_add(c, "graph-listen", NULL, ST_FAIL, &f,
		               "%s port %u: this user may not listen there (%s)", host, port,
		               strerror(-rc));
	} else {
		check_fix_say(&f,
		              "<notifications listen=\"HOST:PORT\"> must name an address of this "
		              "machine, or 0.0.0.0 for all. Its addresses:");
		check_fix_cmd(&f, "ip -brief address");
		check_step_add(c, "graph-listen", NULL, ST_FAIL, &f, "%s port %u: %s", host, port,
		               rc == -EADDRNOTAVAIL ? "not an address of this machine"
		                                    : strerror(-rc));
	}
	free(path);
}

/* ---- graph-endpoint -------------------------------------------------------------------------- */

/* Whether Microsoft cannot reach host from the internet: a loopback, private, link-local or
 * shared address, or a name without a dot. */
static bool private_host(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, host, &a4) == 1) {
		uint32_t a = ntohl(a4.s_addr);

		return (a >> 24) == 10 || (a >> 24) == 127 || (a >> 20) == 0xac1 ||
		       (a >> 16) == 0xc0a8 || (a >> 16) == 0xa9fe || (a >> 22) == (100u << 2 | 1u);
	}
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_LINKLOCAL(&a6) ||
		       (a6.s6_addr[0] & 0xfe) == 0xfc;
	return strchr(host, '.') == NULL || strcasecmp(host, "localhost") == 0;
}

/* The explanation of a validation that fails, for graph-endpoint and graph-validate. */
static void fix_endpoint(const struct check *c, struct fix *f)
{
	const struct cfg_graph *g = c->cfg->graph;
	struct url_parts u = {0};
	const char *host;
	unsigned port;
	char *path = url_path(g->notify_url);

	listen_addr(g, &host, &port);
	(void)check_url_split(g->notify_url, &u, NULL);
	check_fix_say(
		f,
		"Microsoft Graph validates the URL whenever calsync subscribes: it POSTs "
		"%s?validationToken=... from the internet and wants, within 10 seconds, HTTP "
		"200 with Content-Type text/plain and the token as the body. calsync's "
		"listener at %s port %u answers that itself, so the path from the URL to it is "
		"what must work: inbound HTTPS to %s port %ld through the firewall, to a "
		"reverse proxy or port forwarding that sends %s to %s port %u.",
		g->notify_url, host, port, u.host, u.port, path, host, port);
	check_fix_say(
		f,
		"The URL's certificate must be from a public CA (Microsoft trusts no private "
		"one) and name %s. Until then Graph refuses every subscription "
		"(ValidationError), and calsync learns of changes only from its periodic "
		"re-reads. If only this machine cannot reach its own public address (split "
		"DNS, no hairpin NAT), graph-endpoint fails but graph-validate, which is what "
		"Microsoft Graph sees, passes. Test from outside:",
		u.host);
	check_fix_cmd(f,
	              "curl -sv -X POST -H 'Content-Type: text/plain' --data '' "
	              "'%s%svalidationToken=test'",
	              g->notify_url, strchr(g->notify_url, '?') != NULL ? "&" : "?");
	free(path);
}

static void step_endpoint(struct check *c)
{
	const char *url = c->cfg->graph->notify_url;
	struct url_parts u = {0};
	struct vprobe p;
	struct fix f = {0};
	char token[96];
	char said[300];
	bool priv;

	(void)check_url_split(url, &u, NULL);
	priv = private_host(u.host);
	make_token(token);
	validation_probe(c, url, true, token, &p);
	if (!echoed(&p, token)) {
		vprobe_said(&p, said, sizeof(said));
		fix_endpoint(c, &f);
		check_step_add(c, "graph-endpoint", NULL, ST_FAIL, &f, "%s: %s from this host: %s",
		               url,
		               p.res != CURLE_OK ? "nobody answers the validation handshake"
		                                 : "the validation handshake is not answered right",
		               said);
		return;
	}
	if (priv) {
		check_fix_say(
			&f, "Microsoft Graph posts notifications from the internet. Publish the "
			    "listener under a public name (a reverse proxy, or port forwarding of "
			    "inbound HTTPS) and set <notifications url=\"https://...\"> to it.");
		check_step_add(c, "graph-endpoint", NULL, ST_WARN, &f,
		               "%s answered the validation handshake from this host in %" PRId64
		               " ms, but %s is a private address: Microsoft Graph cannot reach it "
		               "from the internet",
		               url, p.ms, u.host);
		return;
	}
	check_step_add(
		c, "graph-endpoint", NULL, ST_OK, NULL,
		"%s answered the validation handshake from this host in %" PRId64
		" ms (200, text/plain, the token); Microsoft Graph must reach it the same way "
		"from the internet (graph-validate)",
		url, p.ms);
}

/* ---- graph-validate -------------------------------------------------------------------------- */

/* DELETE /subscriptions/{id}: "" when done, else why not (owned). */
static char *delete_sub(struct check *c, const char *smtp, const char *id)
{
	struct ganswer a = {0};
	struct err err = {0};
	char *path = NULL;
	char *url;
	char *why;

	if (graph_url_subscription(id, &path, &err) < 0)
		return xstrdup(err.msg);
	url = graph_url_join(c->g->base, path);
	check_graph_call(c, "subscriptions.delete", smtp, GRAPH_REQ_SUB_DELETE, HTTP_DELETE, url,
	                 NULL, NULL, &a);
	why = xstrdup(a.v.cls == GRAPH_OK ? "" : a.v.msg);
	check_ganswer_clear(&a);
	free(url);
	free(path);
	return why;
}

/* Graph's answer to the subscription: created (then deleted) or refused. */
static void validate_report(struct check *c, const struct gmbx *m, const struct ganswer *a)
{
	const char *url = c->cfg->graph->notify_url;
	struct graph_sub sub = {0};
	struct fix f = {0};
	struct err err = {0};
	char *why;

	if (a->v.cls != GRAPH_OK) {
		if (a->v.cls == GRAPH_ACCOUNT)
			check_fix_graph_permission(c, &f, false);
		else if (a->status == 400 || a->status == 0)
			fix_endpoint(c, &f);
		else if (a->v.fix != NULL)
			check_fix_say(&f, "%s.", a->v.fix);
		check_step_add(
			c, "graph-validate", NULL, ST_FAIL, &f,
			"Microsoft Graph did not accept %s for a subscription to %s's events: "
			"%s (%s)%s",
			url, m->smtp, a->v.msg, a->v.reason, a->retried);
		return;
	}
	if (graph_sub_read(a->body, a->body_len, &sub, &err) < 0) {
		check_step_add(
			c, "graph-validate", NULL, ST_FAIL, NULL,
			"Microsoft Graph validated %s, but its subscription answer cannot be "
			"read: %s",
			url, err.msg);
		return;
	}
	why = delete_sub(c, m->smtp, sub.id);
	if (why[0] != '\0') {
		check_fix_say(&f, "No action needed: the subscription expires on its own.");
		check_step_add(c, "graph-validate", NULL, ST_WARN, &f,
		               "Microsoft Graph validated %s (subscription %s to %s's events), but "
		               "deleting it failed: %s; it expires in %u minutes",
		               url, sub.id, m->smtp, why, CHECK_SUB_MINUTES);
	} else {
		check_step_add(c, "graph-validate", NULL, ST_OK, NULL,
		               "Microsoft Graph validated %s: a subscription to %s's events was "
		               "created in %" PRId64 " ms and deleted%s",
		               url, m->smtp, a->elapsed_usec / USEC_PER_MSEC, a->retried);
	}
	free(why);
	graph_sub_clear(&sub);
}

static void step_validate(struct check *c, const struct gmbx *m)
{
	char state[33];
	unsigned char r[16] = {0};
	struct graph_sub_create sc = {
		.user = m->id,
		.notification_url = c->cfg->graph->notify_url,
		.lifecycle_url = c->cfg->graph->notify_url,
		.client_state = state,
		.now_utc = clock_now_utc(),
		.minutes = CHECK_SUB_MINUTES,
	};
	struct ganswer a = {0};
	struct err err = {0};
	char *body = NULL;
	char *path = NULL;
	char *url;

	(void)RAND_bytes(r, sizeof(r));
	for (size_t i = 0; i < sizeof(r); i++)
		(void)snprintf(state + 2 * i, 3, "%02x", r[i]);
	if (graph_sub_create_body(&sc, &body, &err) < 0 ||
	    graph_url_subscription(NULL, &path, &err) < 0) {
		check_step_add(c, "graph-validate", NULL, ST_FAIL, NULL, "%s", err.msg);
		free(body);
		return;
	}
	url = graph_url_join(c->g->base, path);
	check_graph_call(c, "subscriptions.create", m->smtp, GRAPH_REQ_SUB_CREATE, HTTP_POST, url,
	                 body, NULL, &a);
	validate_report(c, m, &a);
	check_ganswer_clear(&a);
	free(url);
	free(path);
	free(body);
}

void check_graph_notify(struct check *c, const struct gmbx *served)
{
	struct graph_listen *l = NULL;

	step_listen(c, &l);
	step_endpoint(c);
	if (c->g->token == NULL)
		check_skip(c, "graph-validate", "no access token");
	else if (served == NULL)
		check_skip(c, "graph-validate",
		           "no mailbox whose calendar Graph read to subscribe to");
	else
		step_validate(c, served);
	graph_listen_free(l);
}
