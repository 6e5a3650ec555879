/* SPDX-License-Identifier: MIT */
/*
 * run.c: `calsync run`. Loads the configuration, opens the store and the output, and runs the
 * sync engine on a libuv loop until SIGTERM or SIGINT. SIGHUP reloads the configuration and
 * reopens a file output. SIGUSR2 is ignored, except in the test build, where it re-reads the test
 * clock (run-testhooks.c).
 */
#include "cli/run.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "api/api.h"
#include "base/err.h"
#include "base/log.h"
#include "cli/run-testhooks.h"
#include "config/config.h"
#include "store/store.h"
#include "sync/engine.h"
#include "sync/output.h"
#include "webhook/webhook.h"

#define EXIT_CONFIG 2

struct run {
	uv_loop_t loop;
	uv_signal_t sig_term, sig_int, sig_hup;
	struct cfg *cfg;
	const char *cfg_path;
	struct store *store;
	struct sync_output *out;
	struct sync_engine *engine;
	struct api *api;                 /* NULL when <api enabled="false"> */
	struct webhook *webhook;         /* NULL without <webhook> targets */
	struct run_testclock *testclock; /* NULL unless built with -Dtest_hooks=true */
	bool stopping;
	int status;
};

static void print_warnings(const struct cfg_warnings *w)
{
	for (size_t i = 0; i < w->n; i++)
		fprintf(stderr, "calsync: warning: %s\n", w->lines[i]);
	if (w->dropped > 0)
		fprintf(stderr, "calsync: warning: %zu more warnings not shown\n", w->dropped);
}

/* Loads the configuration and prints its warnings. 0 or the error, already printed. */
static int load_config(const char *path, struct cfg **out_cfg)
{
	struct cfg_warnings w = {0};
	struct err err = {0};
	int rc = cfg_load(path, out_cfg, &w, &err);

	print_warnings(&w);
	cfg_warnings_clear(&w);
	if (rc < 0)
		fprintf(stderr, "calsync: %s\n", err.msg);
	return rc;
}

/* The engine stored a presence change: event streams and webhook delivery read it now. The
 * engine has one hook; this is it, for every consumer. */
static void on_change(void *ctx, int64_t id)
{
	struct run *r = ctx;

	if (r->api != NULL)
		api_wake(r->api);
	webhook_wake(r->webhook);
}

static bool str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

/* The API is started once; a reload that changes <api> says that it needs a restart. */
static void warn_api_reload(const struct cfg *old, const struct cfg *new)
{
	if (old->api_enabled != new->api_enabled || str_differs(old->api_host, new->api_host) ||
	    old->api_port != new->api_port || str_differs(old->api_token, new->api_token) ||
	    str_differs(old->api_tls_cert, new->api_tls_cert) ||
	    str_differs(old->api_tls_key, new->api_tls_key) ||
	    old->api_ready_live != new->api_ready_live)
		log_warn("api: <api> changed; the running API keeps its settings until a restart");
}

/* Starts the HTTP API when configured, and logs where it listens. 0 or -1 (printed). */
static int start_api(struct run *r)
{
	const struct cfg *c = r->cfg;
	bool v6 = strchr(c->api_host, ':') != NULL;
	struct api_opts o = {
		.host = c->api_host,
		.port = c->api_port,
		.token = c->api_token,
		.tls_cert = c->api_tls_cert,
		.tls_key = c->api_tls_key,
		.ready_live = (unsigned)c->api_ready_live,
		.store_path = c->store_path,
		.engine = r->engine,
		.webhook = r->webhook,
		/* The engine opens its backends once: a <graph> added on reload waits for a
		 * restart, and so does the API's view of it. */
		.graph = c->graph != NULL,
	};
	struct err err = {0};

	if (!c->api_enabled)
		return 0;
	/* The test build only (docs/testing.md): a shorter keep-alive than 15 s. */
	o.keepalive_usec = run_testhooks_sse_keepalive_usec();
	if (api_start(&o, &r->api, &err) < 0) {
		fprintf(stderr, "calsync: %s\n", err.msg);
		return -1;
	}
	log_info("api: listening on http%s://%s%s%s:%u%s", c->api_tls_cert ? "s" : "",
	         v6 ? "[" : "", c->api_host, v6 ? "]" : "", api_port(r->api),
	         c->api_token ? "" : " (no token: read-only)");
	return 0;
}

static bool webhook_differs(const struct cfg_webhook *a, const struct cfg_webhook *b)
{
	return strcmp(a->url, b->url) != 0 || str_differs(a->secret, b->secret) ||
	       str_differs(a->ca_file, b->ca_file) || a->retry_for_usec != b->retry_for_usec;
}

/* The webhook targets are set at start; a reload that changes them says so. */
static void warn_webhooks_reload(const struct cfg *old, const struct cfg *new)
{
	bool changed = old->n_webhooks != new->n_webhooks;

	for (size_t i = 0; !changed && i < old->n_webhooks; i++)
		changed = webhook_differs(&old->webhooks[i], &new->webhooks[i]);
	if (changed)
		log_warn("webhook: <webhooks> changed; delivery keeps the old targets until a "
		         "restart");
}

/* Starts webhook delivery when targets are configured. 0 or -1 (printed). */
static int start_webhooks(struct run *r)
{
	const struct cfg *c = r->cfg;
	struct webhook_opts o = {
		.store_path = c->store_path,
		.targets = c->webhooks,
		.n_targets = c->n_webhooks,
	};
	struct err err = {0};

	if (c->n_webhooks == 0)
		return 0;
	if (webhook_start(&o, &r->webhook, &err) < 0) {
		fprintf(stderr, "calsync: %s\n", err.msg);
		return -1;
	}
	log_info("webhook: delivering presence changes to %zu target%s", c->n_webhooks,
	         c->n_webhooks == 1 ? "" : "s");
	return 0;
}

static void stopped(void *ctx)
{
	struct run *r = ctx;

	uv_stop(&r->loop);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct run *r = h->data;

	switch (signum) {
	case SIGTERM:
	case SIGINT:
		if (r->stopping) {
			log_warn("second %s: exiting without unsubscribing", strsignal(signum));
			uv_stop(&r->loop);
			return;
		}
		log_info("%s: unsubscribing and exiting", strsignal(signum));
		r->stopping = true;
		sync_engine_stop(r->engine, stopped, r);
		return;
	case SIGHUP: {
		struct cfg *cfg = NULL;
		struct err err = {0};

		log_info("SIGHUP: reloading %s", r->cfg_path);
		if (load_config(r->cfg_path, &cfg) < 0) {
			log_err("reload failed; the running configuration stays in force");
			return;
		}
		if (sync_engine_reload(r->engine, cfg, &err) < 0) {
			log_err("reload failed: %s; the running configuration stays in force",
			        err.msg);
			cfg_free(cfg);
			return;
		}
		warn_api_reload(r->cfg, cfg);
		warn_webhooks_reload(r->cfg, cfg);
		cfg_free(r->cfg);
		r->cfg = cfg;
		if (output_reopen(r->out, &err) < 0)
			log_err("%s", err.msg);
		return;
	}
	}
}

static void close_walk(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static int usage(FILE *f, int status)
{
	fprintf(f, "Usage: calsync run [-c FILE] [--check-config]\n"
	           "\n"
	           "Mirrors the configured mailboxes' calendars and writes presence changes.\n"
	           "\n"
	           "  -c, --config FILE  the configuration (default " CFG_DEFAULT_PATH ")\n"
	           "  --check-config     validate the configuration and exit\n"
	           "  -h, --help         print this help\n");
	return status;
}

static int start_signal(struct run *r, uv_signal_t *h, int signum)
{
	int rc = uv_signal_init(&r->loop, h);

	if (rc == 0) {
		h->data = r;
		rc = uv_signal_start(h, on_signal, signum);
	}
	return rc;
}

static int run_daemon(struct run *r)
{
	struct err err = {0};
	int rc;

	rc = store_open(r->cfg->store_path, &r->store, &err);
	if (rc < 0) {
		fprintf(stderr, "calsync: store %s: %s\n", r->cfg->store_path, err.msg);
		return EXIT_FAILURE;
	}
	rc = output_open(r->cfg->output_path, &r->out, &err);
	if (rc < 0) {
		fprintf(stderr, "calsync: %s\n", err.msg);
		return EXIT_FAILURE;
	}
	rc = uv_loop_init(&r->loop);
	if (rc < 0) {
		fprintf(stderr, "calsync: libuv: %s\n", uv_strerror(rc));
		return EXIT_FAILURE;
	}
	rc = sync_engine_new(&r->loop, r->cfg, r->store, r->out, &r->engine, &err);
	if (rc < 0) {
		fprintf(stderr, "calsync: %s\n", err.msg);
		r->status = EXIT_FAILURE;
		goto out;
	}
	if (start_signal(r, &r->sig_term, SIGTERM) < 0 ||
	    start_signal(r, &r->sig_int, SIGINT) < 0 || start_signal(r, &r->sig_hup, SIGHUP) < 0) {
		fprintf(stderr, "calsync: cannot install signal handlers\n");
		r->status = EXIT_FAILURE;
		goto out;
	}
	/* Webhooks first: the API reports their counters (and stops before them). */
	if (start_webhooks(r) < 0 || start_api(r) < 0) {
		r->status = EXIT_FAILURE;
		goto out;
	}
	sync_engine_set_change_hook(r->engine, on_change, r);
	if (run_testclock_start(&r->loop, r->engine, &r->testclock) < 0) {
		r->status = EXIT_FAILURE;
		goto out;
	}
	rc = sync_engine_start(r->engine, &err);
	if (rc < 0) {
		fprintf(stderr, "calsync: %s\n", err.msg);
		r->status = EXIT_FAILURE;
		goto out;
	}
	log_info("calsync running: %zu mailboxes, %s, store %s", r->cfg->n_mailboxes,
	         cfg_notify_name(r->cfg->notify), r->cfg->store_path);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	r->status = 0;
out:
	/* The loop has stopped: no change hook runs any more, and a request waiting in
	 * sync_engine_command gets its answer (or its time-out) before api_stop returns. */
	if (r->engine != NULL)
		sync_engine_set_change_hook(r->engine, NULL, NULL);
	api_stop(r->api);
	r->api = NULL;
	webhook_stop(r->webhook);
	r->webhook = NULL;
	sync_engine_free(r->engine);
	r->engine = NULL;
	uv_walk(&r->loop, close_walk, NULL);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&r->loop) != 0)
		log_warn("libuv loop still had handles at exit");
	run_testclock_free(r->testclock);
	return r->status;
}

int run_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check-config", no_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct run r = {.cfg_path = CFG_DEFAULT_PATH};
	struct err err = {0};
	bool check_only = false;
	int c, status;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			r.cfg_path = optarg;
			break;
		case 'C':
			check_only = true;
			break;
		case 'h':
			return usage(stdout, 0);
		default:
			if (optopt == 'c')
				fprintf(stderr, "calsync run: option '-c' needs a file\n");
			else
				fprintf(stderr, "calsync run: unknown option '%s'\n",
				        argv[optind - 1]);
			return usage(stderr, EXIT_CONFIG);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "calsync run: unexpected argument '%s'\n", argv[optind]);
		return usage(stderr, EXIT_CONFIG);
	}
	if (log_init_from_env(&err) < 0) {
		fprintf(stderr, "calsync: %s\n", err.msg);
		return EXIT_CONFIG;
	}
	if (load_config(r.cfg_path, &r.cfg) < 0)
		return EXIT_CONFIG;
	if (check_only) {
		printf("%s: valid: %s, %zu mailboxes, %s %s, store %s\n", r.cfg_path,
		       cfg_notify_name(r.cfg->notify), r.cfg->n_mailboxes,
		       r.cfg->ews_url ? "server" : "autodiscover",
		       r.cfg->ews_url            ? r.cfg->ews_url
		       : r.cfg->autodiscover_url ? r.cfg->autodiscover_url
		                                 : "(from the domain)",
		       r.cfg->store_path);
		cfg_free(r.cfg);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	/* Harmless when sent by habit; the test build's handler replaces this. */
	signal(SIGUSR2, SIG_IGN);
	status = run_daemon(&r);
	output_close(r.out);
	store_close(r.store);
	cfg_free(r.cfg);
	return status;
}
