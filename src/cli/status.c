/* SPDX-License-Identifier: MIT */
/*
 * status.c: `calsync status`. Reads the configuration for the API's address and token, GETs
 * /v1/status and prints it as a few short tables (or as is with --json). When nothing listens on
 * the API's address the daemon is not running, and the store says what it last knew: mailbox
 * counts and the parked mailboxes with their reasons.
 */
#include "cli/status.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "api/api-json.h"
#include "api/api-status.h"
#include "base/buf.h"
#include "base/err.h"
#include "config/config.h"
#include "store/store.h"
#include "sync/engine.h"

#define EXIT_NO_STATUS 1
#define EXIT_CONFIG    2

/* The /v1/status answer: one parked list of at most API_STATUS_MAX_PARKED entries dominates. */
#define STATUS_MAX_BODY           (8u << 20)
#define STATUS_TIMEOUT_MS         10000L
#define STATUS_CONNECT_TIMEOUT_MS 5000L
/* A column of the tables is at most this wide; longer text overflows into the next column. */
#define STATUS_MAX_COLUMN 40
/* --mailboxes reads GET /v1/users this many at a time (the most the API gives). */
#define STATUS_USERS_PAGE 1000

struct args {
	const char *path;
	bool json;
	bool insecure;
	bool mailboxes;
};

static int usage(FILE *f, int status)
{
	fprintf(f,
	        "Usage: calsync status [-c FILE] [--json | --mailboxes] [--insecure]\n"
	        "\n"
	        "Shows what calsync is doing: mailboxes by state (and by backend, EWS or\n"
	        "Microsoft Graph, when <graph> is configured), parked mailboxes and why,\n"
	        "streaming groups, the last errors and webhook delivery, from the running\n"
	        "daemon's API; from the store when the daemon is not running.\n"
	        "\n"
	        "  -c, --config FILE  the configuration (default %s)\n"
	        "  --json             the API's /v1/status document as it is\n"
	        "  -m, --mailboxes    also list every mailbox: backend, state, last read\n"
	        "  --insecure         do not verify the API's TLS certificate (a self-signed one)\n"
	        "  -h, --help         this help\n"
	        "\n"
	        "Exit status: 0 reported, 1 neither the API nor the store could be read,\n"
	        "2 a configuration or usage error.\n",
	        CFG_DEFAULT_PATH);
	return status;
}

/* 0, 1 for --help (printed), or EXIT_CONFIG (printed). */
static int parse_args(int argc, char **argv, struct args *out)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},     /* long only */
		{"insecure", no_argument, NULL, 'k'}, /* long only */
		{"mailboxes", no_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+c:hm", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			out->path = optarg;
			break;
		case 'j':
			out->json = true;
			break;
		case 'k':
			out->insecure = true;
			break;
		case 'm':
			out->mailboxes = true;
			break;
		case 'h':
			(void)usage(stdout, 0);
			return 1;
		default:
			if (optopt == 'c')
				fprintf(stderr, "calsync status: option '-c' needs a file\n");
			else
				fprintf(stderr, "calsync status: unknown option '%s'\n",
				        argv[optind - 1]);
			return usage(stderr, EXIT_CONFIG);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "calsync status: unexpected argument '%s'\n", argv[optind]);
		return usage(stderr, EXIT_CONFIG);
	}
	if (out->json && out->mailboxes) {
		fprintf(stderr, "calsync status: --mailboxes is a table; for JSON, GET /v1/users "
		                "from the API\n");
		return usage(stderr, EXIT_CONFIG);
	}
	return 0;
}

/* ---- the API ------------------------------------------------------------------------------ */

struct fetch {
	struct buf body;
	long http_status;
	CURLcode curl;
	char curl_err[CURL_ERROR_SIZE];
};

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	struct fetch *f = ctx;

	/* Past the limit the transfer ends as a write error. */
	if (buf_append(&f->body, data, size * n, NULL) < 0)
		return 0;
	return size * n;
}

/* The base URL of the API: a wildcard bind address is reached on loopback. */
static void api_base(const struct cfg *cfg, char *out, size_t size)
{
	const char *host = cfg->api_host;
	bool v6;

	if (strcmp(host, "0.0.0.0") == 0)
		host = "127.0.0.1";
	else if (strcmp(host, "::") == 0)
		host = "::1";
	v6 = strchr(host, ':') != NULL;
	(void)snprintf(out, size, "http%s://%s%s%s:%u", cfg->api_tls_cert != NULL ? "s" : "",
	               v6 ? "[" : "", host, v6 ? "]" : "", cfg->api_port);
}

/* GETs url with the token. f->curl says whether a transfer happened; f->http_status its status. */
static int fetch(const char *url, const char *token, bool insecure, struct fetch *f)
{
	struct curl_slist *h = NULL;
	char *auth = NULL;
	CURL *c = curl_easy_init();

	if (c == NULL)
		return -ENOMEM;
	if (token != NULL && token[0] != '\0') {
		size_t len = strlen("Authorization: Bearer ") + strlen(token) + 1;

		auth = malloc(len);
		if (auth == NULL) {
			curl_easy_cleanup(c);
			return -ENOMEM;
		}
		(void)snprintf(auth, len, "Authorization: Bearer %s", token);
		h = curl_slist_append(h, auth);
	}
	(void)curl_easy_setopt(c, CURLOPT_URL, url);
	(void)curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	(void)curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	/* The API is local: a proxy from the environment must not be asked for it. */
	(void)curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	(void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	(void)curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, STATUS_TIMEOUT_MS);
	(void)curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, STATUS_CONNECT_TIMEOUT_MS);
	(void)curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, insecure ? 0L : 1L);
	(void)curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, insecure ? 0L : 2L);
	(void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	(void)curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
	(void)curl_easy_setopt(c, CURLOPT_ERRORBUFFER, f->curl_err);
	f->curl = curl_easy_perform(c);
	if (f->curl == CURLE_OK)
		(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f->http_status);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	if (auth != NULL) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	return 0;
}

/* ---- printing ----------------------------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : dflt;
}

static long long jint(const json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

static int width(size_t w, const char *s)
{
	size_t n = strlen(s);

	if (n > w)
		w = n;
	return (int)(w > STATUS_MAX_COLUMN ? STATUS_MAX_COLUMN : w);
}

static void print_count_line(const char *label, const json_t *m)
{
	printf("%s%lld: %lld live, %lld syncing, %lld parked, %lld unresolved\n", label,
	       jint(m, "total"), jint(m, "live"), jint(m, "syncing"), jint(m, "parked"),
	       jint(m, "unresolved"));
}

/* The counts, and in a hybrid calsync (the document has "backends") one line per backend. */
static void print_counts(const json_t *doc)
{
	const json_t *bk = json_object_get(doc, "backends");

	print_count_line("mailboxes  ", json_object_get(doc, "mailboxes"));
	for (int b = 0; bk != NULL && b < API_BACKEND_COUNT; b++) {
		const char *name = api_backend_name((enum api_backend)b);
		char label[32];

		(void)snprintf(label, sizeof(label), "  %-8s ", name);
		print_count_line(label, json_object_get(bk, name));
	}
}

/* The Graph figures, when the daemon has <graph>. */
static void print_graph(const json_t *doc)
{
	const json_t *g = json_object_get(doc, "graph");
	const json_t *nt = json_object_get(g, "notifications");
	const json_t *tk = json_object_get(g, "token_refreshes");

	if (g == NULL)
		return;
	printf("graph      %lld request%s, %lld throttled, %lld notification%s (%lld rejected), "
	       "%lld token refresh%s (%lld failed)\n",
	       jint(g, "requests"), jint(g, "requests") == 1 ? "" : "s", jint(g, "throttled"),
	       jint(nt, "accepted"), jint(nt, "accepted") == 1 ? "" : "s", jint(nt, "rejected"),
	       jint(tk, "ok"), jint(tk, "ok") == 1 ? "" : "es", jint(tk, "failed"));
}

static void print_parked(const json_t *doc)
{
	const json_t *list = json_object_get(doc, "parked");
	long long total = jint(json_object_get(doc, "mailboxes"), "parked");
	size_t n = json_array_size(list);
	int w = 0;

	if (n == 0) {
		printf("parked     none\n");
		return;
	}
	printf("\nparked (%lld)\n", total);
	for (size_t i = 0; i < n; i++)
		w = width((size_t)w, jstr(json_array_get(list, i), "smtp", ""));
	for (size_t i = 0; i < n; i++) {
		const json_t *p = json_array_get(list, i);

		/* The backend only where there are two to tell apart. */
		if (json_object_get(doc, "backends") != NULL)
			printf("  %-*s  %-5s  %s\n", w, jstr(p, "smtp", ""),
			       jstr(p, "backend", "ews"), jstr(p, "reason", ""));
		else
			printf("  %-*s  %s\n", w, jstr(p, "smtp", ""), jstr(p, "reason", ""));
	}
	if ((long long)n < total)
		printf("  ... and %lld more (calsync status --json, or GET /v1/users?state=parked)\n",
		       total - (long long)n);
}

static void print_groups(const json_t *doc)
{
	const json_t *list = json_object_get(doc, "groups");
	size_t n = json_array_size(list);
	int wk = (int)strlen("GROUP"), wa = (int)strlen("ANCHOR");

	if (n == 0) {
		printf("groups     none\n");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		wk = width((size_t)wk, jstr(json_array_get(list, i), "key", ""));
		wa = width((size_t)wa, jstr(json_array_get(list, i), "anchor", ""));
	}
	printf("\nstreaming groups (%zu)\n", n);
	printf("  %-*s  %-*s  %-10s  %s\n", wk, "GROUP", wa, "ANCHOR", "SUBSCRIBED", "HEALTH");
	for (size_t i = 0; i < n; i++) {
		const json_t *g = json_array_get(list, i);
		long long failures = jint(g, "failures");
		char subs[48], health[64];

		(void)snprintf(subs, sizeof(subs), "%lld/%lld", jint(g, "subscribed"),
		               jint(g, "members"));
		if (failures > 0)
			(void)snprintf(health, sizeof(health), "reconnecting (%lld failure%s)",
			               failures, failures == 1 ? "" : "s");
		else if (json_is_true(json_object_get(g, "connected")))
			(void)snprintf(health, sizeof(health), "ok");
		else
			(void)snprintf(health, sizeof(health), "connecting");
		printf("  %-*s  %-*s  %-10s  %s\n", wk, jstr(g, "key", ""), wa,
		       jstr(g, "anchor", ""), subs, health);
	}
}

static void print_errors(const json_t *doc)
{
	const json_t *list = json_object_get(doc, "errors");
	size_t n = json_array_size(list);
	int w = 1;

	if (n == 0) {
		printf("errors     none\n");
		return;
	}
	for (size_t i = 0; i < n; i++)
		w = width((size_t)w, jstr(json_array_get(list, i), "mailbox", "-"));
	printf("\nlast errors (%zu, newest first)\n", n);
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(list, i);

		printf("  %s  %-*s  %s: %s\n", jstr(e, "time", "-"), w, jstr(e, "mailbox", "-"),
		       jstr(e, "what", ""), jstr(e, "message", ""));
	}
}

static void print_webhooks(const json_t *doc)
{
	const json_t *list = json_object_get(doc, "webhooks");
	size_t n = json_array_size(list);
	int w = (int)strlen("URL");

	if (n == 0) {
		printf("webhooks   none\n");
		return;
	}
	for (size_t i = 0; i < n; i++)
		w = width((size_t)w, jstr(json_array_get(list, i), "url", ""));
	printf("\nwebhooks (%zu)\n", n);
	printf("  %-*s  %9s  %8s  %7s  %7s\n", w, "URL", "DELIVERED", "FAILURES", "DROPPED",
	       "PENDING");
	for (size_t i = 0; i < n; i++) {
		const json_t *t = json_array_get(list, i);

		printf("  %-*s  %9lld  %8lld  %7lld  %7lld\n", w, jstr(t, "url", ""),
		       jint(t, "delivered"), jint(t, "failures"), jint(t, "dropped"),
		       jint(t, "pending"));
	}
}

static void print_daemon(const char *base, const json_t *doc)
{
	printf("calsync status: %s\n", base);
	print_counts(doc);
	printf("activity   %lld stream%s open, %lld request%s in flight, %lld queued, %lld backing "
	       "off, %lld presence change%s\n",
	       jint(doc, "streams_open"), jint(doc, "streams_open") == 1 ? "" : "s",
	       jint(doc, "in_flight"), jint(doc, "in_flight") == 1 ? "" : "s", jint(doc, "queued"),
	       jint(doc, "backing_off"), jint(doc, "presence_changes"),
	       jint(doc, "presence_changes") == 1 ? "" : "s");
	print_graph(doc);
	print_parked(doc);
	print_groups(doc);
	print_errors(doc);
	print_webhooks(doc);
}

static int print_json(json_t *doc)
{
	char *text = json_dumps(doc, JSON_COMPACT);

	if (text == NULL) {
		fprintf(stderr, "calsync status: cannot encode the status as JSON\n");
		return EXIT_NO_STATUS;
	}
	printf("%s\n", text);
	free(text);
	return 0;
}

/* Every mailbox of users (GET /v1/users objects, by address): address, backend, state, last
 * read. */
static void print_mailboxes(const json_t *users)
{
	size_t n = json_array_size(users);
	int w = (int)strlen("MAILBOX");

	printf("\nmailboxes (%zu)\n", n);
	if (n == 0)
		return;
	for (size_t i = 0; i < n; i++)
		w = width((size_t)w, jstr(json_array_get(users, i), "smtp", ""));
	printf("  %-*s  %-7s  %-10s  %s\n", w, "MAILBOX", "BACKEND", "STATE", "LAST READ");
	for (size_t i = 0; i < n; i++) {
		const json_t *u = json_array_get(users, i);

		printf("  %-*s  %-7s  %-10s  %s\n", w, jstr(u, "smtp", ""),
		       jstr(u, "backend", "ews"), jstr(u, "state", ""),
		       jstr(u, "last_refresh", "-"));
	}
}

/* s percent-encoded for a query (RFC 3986 unreserved characters kept). */
static void query_escape(const char *s, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p != '\0' && o + 4 < size; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
}

/* Every enabled mailbox from the daemon, GET /v1/users a page at a time, into *out (a new
 * array). 0, or EXIT_NO_STATUS (printed). */
static int fetch_users(const char *base, const char *token, bool insecure, json_t **out)
{
	json_t *all = json_array();
	char after[3 * 321 + 1] = "";
	char url[600 + sizeof(after)];

	for (;;) {
		struct fetch f = {0};
		json_t *doc, *next;
		int rc;

		(void)snprintf(url, sizeof(url), "%s/v1/users?limit=%d%s%s", base,
		               STATUS_USERS_PAGE, after[0] != '\0' ? "&after=" : "", after);
		buf_init(&f.body, STATUS_MAX_BODY);
		rc = fetch(url, token, insecure, &f);
		doc = rc == 0 && f.curl == CURLE_OK && f.http_status == 200
		              ? json_loadb(f.body.data != NULL ? f.body.data : "", f.body.len, 0,
		                           NULL)
		              : NULL;
		if (!json_is_array(json_object_get(doc, "users"))) {
			fprintf(stderr, "calsync status: %s: %s\n", url,
			        rc < 0                 ? strerror(-rc)
			        : f.curl != CURLE_OK   ? curl_easy_strerror(f.curl)
			        : f.http_status != 200 ? "HTTP error"
			                               : "not a list of users");
			buf_free(&f.body);
			json_decref(doc);
			json_decref(all);
			return EXIT_NO_STATUS;
		}
		buf_free(&f.body);
		json_array_extend(all, json_object_get(doc, "users"));
		next = json_object_get(doc, "next");
		if (!json_is_string(next)) {
			json_decref(doc);
			break;
		}
		query_escape(json_string_value(next), after, sizeof(after));
		json_decref(doc);
	}
	*out = all;
	return 0;
}

static int by_smtp(const void *x, const void *y)
{
	const struct store_mailbox *a = x, *b = y;

	return strcasecmp(a->smtp, b->smtp);
}

/* The store's rows as GET /v1/users objects, by address ignoring case as the API sorts. */
static json_t *users_from_store(struct store_mailbox *mbs, size_t n)
{
	json_t *users = json_array();

	if (n > 1)
		qsort(mbs, n, sizeof(*mbs), by_smtp);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(users, api_json_user(&mbs[i], NULL));
	return users;
}

/* ---- the store, when the daemon is not running --------------------------------------------- */

static int from_store(const struct cfg *cfg, const char *why, const struct args *args)
{
	struct store *s = NULL;
	struct store_mailbox *mbs = NULL;
	struct sync_status none = {0};
	struct stat sb;
	struct err err = {0};
	size_t n = 0;
	json_t *doc, *out, *users = NULL;
	int rc;

	if (stat(cfg->store_path, &sb) != 0) {
		fprintf(stderr, "calsync status: %s, and there is no store at %s: %s\n", why,
		        cfg->store_path, strerror(errno));
		return EXIT_NO_STATUS;
	}
	rc = store_open(cfg->store_path, &s, &err);
	if (rc == 0)
		rc = store_mailbox_list(s, STORE_MB_ENABLED, &mbs, &n, &err);
	if (rc < 0) {
		fprintf(stderr, "calsync status: %s, and the store cannot be read: %s\n", why,
		        err.msg);
		store_close(s);
		return EXIT_NO_STATUS;
	}
	/* The backends as the daemon would tell them apart; its Graph figures are not stored. */
	doc = api_status_json(&(struct api_status_in){
		.mbs = mbs, .n_mbs = n, .engine = &none, .graph = cfg->graph != NULL});
	if (args->mailboxes)
		users = users_from_store(mbs, n);
	store_mailboxes_free(mbs, n);
	store_close(s);
	if (doc == NULL) {
		fprintf(stderr, "calsync status: out of memory\n");
		return EXIT_NO_STATUS;
	}
	if (args->json) {
		/* Only what the store knows: the rest of /v1/status lives in the daemon. */
		out = json_pack("{s:s, s:s, s:s, s:O, s:O}", "source", "store", "store",
		                cfg->store_path, "daemon", why, "mailboxes",
		                json_object_get(doc, "mailboxes"), "parked",
		                json_object_get(doc, "parked"));
		if (out != NULL && json_object_get(doc, "backends") != NULL)
			json_object_set(out, "backends", json_object_get(doc, "backends"));
		json_decref(doc);
		if (out == NULL) {
			fprintf(stderr, "calsync status: cannot encode the status as JSON\n");
			return EXIT_NO_STATUS;
		}
		rc = print_json(out);
		json_decref(out);
		return rc;
	}
	printf("calsync status: %s; from the store %s\n", why, cfg->store_path);
	print_counts(doc);
	print_parked(doc);
	printf("streaming groups, errors and webhooks: not known while the daemon is not running\n");
	if (users != NULL)
		print_mailboxes(users);
	json_decref(users);
	json_decref(doc);
	return 0;
}

/* ---- the command -------------------------------------------------------------------------- */

static int report(const struct cfg *cfg, const struct args *args)
{
	struct fetch f = {0};
	char base[512], url[600], why[700];
	json_error_t jerr;
	json_t *doc;
	int rc;

	if (!cfg->api_enabled)
		return from_store(cfg, "the API is disabled (<api enabled=\"false\">)", args);
	api_base(cfg, base, sizeof(base));
	(void)snprintf(url, sizeof(url), "%s/v1/status", base);
	buf_init(&f.body, STATUS_MAX_BODY);
	rc = fetch(url, cfg->api_token, args->insecure, &f);
	if (rc < 0) {
		buf_free(&f.body);
		fprintf(stderr, "calsync status: libcurl: %s\n", strerror(-rc));
		return EXIT_NO_STATUS;
	}
	if (f.curl == CURLE_COULDNT_CONNECT) {
		buf_free(&f.body);
		(void)snprintf(why, sizeof(why), "daemon not running (nothing answers on %s)",
		               base);
		return from_store(cfg, why, args);
	}
	if (f.curl != CURLE_OK) {
		fprintf(stderr, "calsync status: %s: %s%s\n", url,
		        f.curl_err[0] != '\0' ? f.curl_err : curl_easy_strerror(f.curl),
		        f.curl == CURLE_PEER_FAILED_VERIFICATION
		                ? " (for a self-signed certificate on the API, add --insecure)"
		                : "");
		buf_free(&f.body);
		return EXIT_NO_STATUS;
	}
	doc = json_loadb(f.body.data != NULL ? f.body.data : "", f.body.len, 0, &jerr);
	if (f.http_status == 401) {
		fprintf(stderr,
		        "calsync status: %s: HTTP 401: the API refused %s; the token must be the one "
		        "the running daemon read (token_file or token_env on <api> in %s)\n",
		        url, cfg->api_token != NULL ? "the token" : "a request without a token",
		        args->path);
		rc = EXIT_NO_STATUS;
	} else if (f.http_status != 200) {
		fprintf(stderr, "calsync status: %s: HTTP %ld%s%s\n", url, f.http_status,
		        doc != NULL && jstr(doc, "error", NULL) != NULL ? ": " : "",
		        doc != NULL ? jstr(doc, "error", "") : "");
		rc = EXIT_NO_STATUS;
	} else if (doc == NULL || !json_is_object(doc)) {
		fprintf(stderr, "calsync status: %s: not a JSON object: %s\n", url,
		        doc == NULL ? jerr.text : "another type");
		rc = EXIT_NO_STATUS;
	} else if (args->json) {
		/* As it is, byte for byte (it ends with a newline). */
		rc = fwrite(f.body.data, 1, f.body.len, stdout) == f.body.len ? 0 : EXIT_NO_STATUS;
	} else {
		print_daemon(base, doc);
		rc = 0;
		if (args->mailboxes) {
			json_t *users = NULL;

			fflush(stdout);
			rc = fetch_users(base, cfg->api_token, args->insecure, &users);
			if (rc == 0)
				print_mailboxes(users);
			json_decref(users);
		}
	}
	json_decref(doc);
	buf_free(&f.body);
	return rc;
}

int status_main(int argc, char **argv)
{
	struct args args = {.path = CFG_DEFAULT_PATH};
	struct cfg *cfg = NULL;
	struct err err = {0};
	int rc = parse_args(argc, argv, &args);

	if (rc != 0)
		return rc == 1 ? 0 : rc;
	rc = cfg_load(args.path, &cfg, NULL, &err);
	if (rc < 0) {
		fprintf(stderr, "calsync status: %s\n", err.msg);
		return EXIT_CONFIG;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "calsync status: curl_global_init failed\n");
		cfg_free(cfg);
		return EXIT_NO_STATUS;
	}
	rc = report(cfg, &args);
	curl_global_cleanup();
	cfg_free(cfg);
	return rc;
}
