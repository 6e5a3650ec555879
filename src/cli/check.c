/* SPDX-License-Identifier: MIT */
/*
 * check.c: `calsync check [-c FILE] [--mailbox SMTP ...] [--json]`: the command line and the
 * order of the steps. Tests, against the real server and in this order, what calsync needs:
 * the configuration; DNS, TCP and TLS to the Autodiscover and EWS hosts and the authentication
 * methods they offer (check-net.c); Autodiscover (check-mailbox.c); whether the configured
 * authentication works and the server's version (check-auth.c); for each sample mailbox a
 * CalendarView read and a Subscribe/Unsubscribe round trip, impersonating it (check-mailbox.c);
 * and what throttling answers were seen (check-throttle.c); then, with <graph>, Microsoft Graph:
 * the token, the mailboxes in Exchange Online and the notification endpoint (check-graph*.c).
 * Every failure says what it means and prints the commands that fix it (check-fix.c,
 * check-graph-fix.c, docs/check.md).
 * A person gets one line per step; --json gives tools one document (check-report.c).
 *
 * It is a command, not the daemon: it runs one call at a time on a private libuv loop with the
 * daemon's transport (check-call.c), and probes the server with a plain libcurl easy handle
 * only where it needs what the transport does not expose (check-probe.c). Passwords and tokens
 * are never printed.
 *
 * Extended Protection: with auth "ntlm" over HTTPS the transport binds its NTLM login to the
 * server certificate it sees. To tell what a 401 means, and whether the server requires the
 * binding at all, the check logs in once more with libcurl's own NTLM, which sends no channel
 * binding (curl 7.88): refused with the binding but accepted without it means the certificate
 * calsync sees is not the server's (TLS terminated in between); accepted with it and refused
 * without it means Extended Protection is on and calsync copes with it.
 */
#include "cli/check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "cli/check-int.h"
#include "config/config.h"

/* Mailboxes checked when --mailbox is not given: enough to see impersonation and its scope
 * work, few enough to be quick on a 50,000-mailbox configuration. */
#define CHECK_SAMPLE 3u

/* The largest request the check writes: GetUserSettings for 100 mailboxes is ~10 KB. */
#define CHECK_MAX_REQUEST (1u << 20)

/* ---- command line ---------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: calsync check [-c FILE] [--mailbox SMTP ...] [--json]\n"
	        "\n"
	        "Tests the configuration against the real Exchange server: DNS, TCP and TLS,\n"
	        "authentication, the server version, impersonation and subscriptions of sample\n"
	        "mailboxes, throttling; with <graph>, Microsoft Graph too: the token, each\n"
	        "cloud mailbox's permissions, the notification endpoint. Prints the commands\n"
	        "that fix what fails.\n"
	        "\n"
	        "  -c, --config FILE   the configuration (default %s)\n"
	        "  -m, --mailbox SMTP  a mailbox to check (repeatable; default: the first %u\n"
	        "                      configured ones, and the first %u pinned to Graph)\n"
	        "  --json              one JSON document instead of lines\n"
	        "  -h, --help          this help\n"
	        "\n"
	        "Exit status: 0 nothing failed, 1 a check failed, 2 a configuration or usage error.\n",
	        CFG_DEFAULT_PATH, CHECK_SAMPLE, CHECK_SAMPLE);
}

static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr,
	        "calsync check: %s '%s'\nTry 'calsync check --help' for more information.\n", what,
	        arg);
	return EXIT_CONFIG;
}

/* Plain ASCII local@domain, as <mailboxes> accepts. */
static bool smtp_ok(const char *s)
{
	size_t len = strlen(s);
	const char *at = strchr(s, '@');

	if (len < 3 || len > 254 || at == NULL || at == s || at[1] == '\0' ||
	    strchr(at + 1, '@') != NULL)
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

struct args {
	const char *path;
	bool json;
	const char **mailboxes;
	size_t n_mailboxes;
};

/* 0, 1 for --help (printed), or EXIT_CONFIG. */
static int parse_args(int argc, char **argv, struct args *out)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = NULL;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 1;
		} else if (strcmp(a, "--json") == 0) {
			out->json = true;
			continue;
		} else if (strncmp(a, "--config=", 9) == 0) {
			out->path = a + 9;
			continue;
		} else if (strncmp(a, "--mailbox=", 10) == 0) {
			v = a + 10;
		} else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0 ||
		           strcmp(a, "-m") == 0 || strcmp(a, "--mailbox") == 0) {
			if (i + 1 >= argc)
				return usage_error("option needs an argument", a);
			if (a[1] == 'c' || a[2] == 'c') {
				out->path = argv[++i];
				continue;
			}
			v = argv[++i];
		} else {
			return usage_error(a[0] == '-' ? "unknown option" : "unexpected argument",
			                   a);
		}
		if (!smtp_ok(v))
			return usage_error("not a mailbox address (local@domain)", v);
		out->mailboxes[out->n_mailboxes++] = v;
	}
	if (out->path == NULL)
		out->path = CFG_DEFAULT_PATH;
	return 0;
}

static void run_checks(struct check *c)
{
	bool ad = c->cfg->ews_url == NULL;
	char *ad_url =
		ad ? cfg_autodiscover_url(c->cfg, c->n_mbx > 0 ? c->mbx[0].smtp : NULL) : NULL;
	const char *first = ad ? ad_url : c->cfg->ews_url;
	bool ok;

	if (ad && ad_url == NULL) {
		struct fix f = {0};

		check_fix_say(&f,
		              "Configure <autodiscover url=\"...\"> or <ews url=\"...\">, or give "
		              "--mailbox SMTP.");
		check_step_add(
			c, "autodiscover", NULL, ST_FAIL, &f,
			"no domain to find the Autodiscover host from (no <autodiscover>, no "
			"account with a domain, no mailbox)");
		ok = false;
	} else {
		ok = check_endpoint(c, first, ad ? ROLE_AUTODISCOVER : ROLE_EWS);
		if (!ok && ad)
			check_skip(c, "autodiscover", "the Autodiscover host cannot be reached");
	}
	if (ok && ad) {
		ok = check_autodiscover(c, ad_url);
		if (ok && !check_same_endpoint(ad_url, c->ews_url))
			ok = check_endpoint(c, c->ews_url, ROLE_EWS);
	} else if (ok) {
		c->ews_url = xstrdup(c->cfg->ews_url);
		for (size_t i = 0; i < c->n_mbx; i++)
			c->mbx[i].url = xstrdup(c->ews_url);
	}
	if (!ok) {
		check_skip(c, "authentication", "the server cannot be reached");
		check_skip(c, "ews-version", "the server cannot be reached");
	}
	if (ok)
		ok = check_authentication(c);
	if (ok) {
		check_mailboxes(c);
	} else {
		check_skip(c, "impersonation", "an earlier check failed");
		check_skip(c, "subscription", "an earlier check failed");
	}
	check_throttling(c);
	free(ad_url);
}

/* The pin of smtp in the configuration (CFG_BACKEND_AUTO for one it does not list). */
static enum cfg_backend pin_of(const struct cfg *cfg, const char *smtp)
{
	for (size_t i = 0; i < cfg->n_mailboxes; i++)
		if (strcasecmp(cfg->mailboxes[i], smtp) == 0)
			return cfg->mailbox_backends[i];
	return CFG_BACKEND_AUTO;
}

static void add_sample(struct check *c, const char *smtp, enum cfg_backend pin)
{
	if (pin == CFG_BACKEND_GRAPH) {
		c->gpinned[c->n_gpinned++] = smtp;
		return;
	}
	c->mbx[c->n_mbx].smtp = smtp;
	c->mbx[c->n_mbx++].pinned = pin == CFG_BACKEND_EWS;
}

/* The sample: the mailboxes --mailbox names, else the first CHECK_SAMPLE configured ones that
 * EWS may serve and the first CHECK_SAMPLE pinned to Graph. */
static void pick_sample(struct check *c, const struct args *args)
{
	const struct cfg *cfg = c->cfg;
	size_t max = args->n_mailboxes > 0 ? args->n_mailboxes : CHECK_SAMPLE;

	c->mbx = xcalloc(max, sizeof(*c->mbx));
	c->gpinned = xcalloc(max, sizeof(*c->gpinned));
	if (args->n_mailboxes > 0) {
		for (size_t i = 0; i < args->n_mailboxes; i++)
			add_sample(c, args->mailboxes[i], pin_of(cfg, args->mailboxes[i]));
		return;
	}
	for (size_t i = 0; i < cfg->n_mailboxes; i++) {
		bool graph = cfg->mailbox_backends[i] == CFG_BACKEND_GRAPH;

		if ((graph && c->n_gpinned < max) || (!graph && c->n_mbx < max))
			add_sample(c, cfg->mailboxes[i], cfg->mailbox_backends[i]);
		if (c->n_mbx == max && (c->n_gpinned == max || cfg->graph == NULL))
			break;
	}
}

/* The transport every EWS request of the check goes through, on c's private loop. */
static int open_transport(struct check *c, const struct cfg *cfg, struct err *err)
{
	struct ews_transport_opts topts = {
		.auth = cfg->auth,
		.user = cfg->user,
		.password = cfg->password,
		.token = cfg->token,
		.ca_file = cfg->ca_file,
		.insecure_skip_tls_verify = cfg->insecure_skip_tls_verify,
		.connect_timeout_usec = CHECK_CONNECT_TIMEOUT_USEC,
		.timeout_usec = CHECK_CALL_TIMEOUT_USEC,
		.max_host_connections = 4,
		.max_total_connections = 8,
	};

	(void)uv_loop_init(&c->loop);
	c->loop_ready = true;
	(void)uv_prepare_init(&c->loop, &c->wait_wake);
	c->wait_wake.data = c;
	uv_unref((uv_handle_t *)&c->wait_wake);
	(void)uv_timer_init(&c->loop, &c->wait_deadline);
	c->wait_deadline.data = c;
	uv_unref((uv_handle_t *)&c->wait_deadline);
	return ews_transport_new(&c->loop, &topts, &c->t, err);
}

/* Before the loop computes how long to sleep: an answer that came in a timer callback (libuv
 * runs the due timers first, and libcurl may finish a transfer there) set the flag already, or
 * the deadline passed; sleeping now would wait for an event that never comes while any other
 * handle (the check's own notification listener) keeps the loop alive. */
static void on_wait_wake(uv_prepare_t *h)
{
	struct check *c = h->data;

	if (*c->wait_flag || c->wait_expired)
		uv_stop(&c->loop);
}

static void on_wait_deadline(uv_timer_t *h)
{
	struct check *c = h->data;

	c->wait_expired = true;
}

int check_wait(struct check *c, const bool *done, int64_t timeout_usec)
{
	int rc = 0;

	c->wait_flag = done;
	c->wait_expired = false;
	(void)uv_prepare_start(&c->wait_wake, on_wait_wake);
	(void)uv_timer_start(&c->wait_deadline, on_wait_deadline,
	                     (uint64_t)((timeout_usec + USEC_PER_MSEC - 1) / USEC_PER_MSEC), 0);
	while (!*done && rc == 0) {
		/* The two handles are unreferenced: 0 means nothing else is alive. */
		if (uv_run(&c->loop, UV_RUN_ONCE) == 0 && !*done)
			rc = -EIO;
		else if (!*done && c->wait_expired)
			rc = -ETIMEDOUT;
	}
	(void)uv_prepare_stop(&c->wait_wake);
	(void)uv_timer_stop(&c->wait_deadline);
	c->wait_flag = NULL;
	return rc;
}

static void check_clear(struct check *c)
{
	check_graph_clear(c);
	if (c->ews_token != NULL)
		explicit_bzero(c->ews_token, strlen(c->ews_token));
	free(c->ews_token);
	ews_transport_free(c->t);
	if (c->loop_ready) {
		uv_close((uv_handle_t *)&c->wait_wake, NULL);
		uv_close((uv_handle_t *)&c->wait_deadline, NULL);
		(void)uv_run(&c->loop, UV_RUN_DEFAULT);
		(void)uv_loop_close(&c->loop);
	}
	check_report_clear(c);
	for (size_t i = 0; i < c->n_mbx; i++) {
		free(c->mbx[i].url);
		free(c->mbx[i].ad_error);
		free(c->mbx[i].cloud);
	}
	free(c->mbx);
	free(c->gpinned);
	free(c->account);
	free(c->dc);
	free(c->ews_url);
	buf_free(&c->req);
}

int check_main(int argc, char **argv)
{
	struct check c = {0};
	struct args args = {0};
	struct cfg *cfg = NULL;
	struct cfg_warnings warnings = {0};
	struct err err = {0};
	int status = 0;
	int rc;

	args.mailboxes = xcalloc((size_t)argc, sizeof(*args.mailboxes));
	rc = parse_args(argc, argv, &args);
	if (rc != 0) {
		free(args.mailboxes);
		return rc == 1 ? EXIT_SUCCESS : rc;
	}
	c.json = args.json;
	c.cfg_path = args.path;
	c.tty = isatty(STDERR_FILENO) == 1;
	c.thr.max_back_off_ms = -1;
	c.thr.concurrency_limit = -1;
	c.thr.hanging_limit = -1;
	buf_init(&c.req, CHECK_MAX_REQUEST);
	if (!c.json)
		printf("calsync check: %s\n", c.cfg_path);

	rc = cfg_load(args.path, &cfg, &warnings, &err);
	if (rc == 0)
		rc = open_transport(&c, cfg, &err);
	if (rc != 0) {
		struct fix f = {0};

		check_fix_say(&f,
		              "Fix the file; `calsync run -c FILE --check-config` checks it alone. "
		              "docs/configuration.md describes every element.");
		check_step_add(&c, "config", NULL, ST_FAIL, &f, "%s", err.msg);
		status = check_finish(&c, EXIT_CONFIG);
		goto out;
	}
	c.cfg = cfg;
	c.version = cfg->server_version != NULL ? cfg->server_version : EWS_DEFAULT_VERSION;
	pick_sample(&c, &args);
	c.account = check_ps_quote(cfg->user != NULL ? cfg->user : "svc-calsync");
	c.dc = check_domain_dn(&c);
	check_step_config(&c, &warnings, args.n_mailboxes > 0);
	if (cfg->token_oauth && cfg->graph != NULL)
		check_ews_token(&c);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK) {
		/* Every mailbox checked pinned to Graph: nothing here is EWS's to serve. */
		if (c.n_mbx == 0 && c.n_gpinned > 0)
			check_skip(&c, "ews",
			           "every mailbox checked is pinned to Microsoft Graph "
			           "(<mailbox backend=\"graph\">)");
		else
			run_checks(&c);
		if (cfg->graph != NULL)
			check_graph(&c);
		curl_global_cleanup();
	} else {
		check_step_add(&c, "tcp", NULL, ST_FAIL, NULL, "libcurl failed to start");
	}
	for (size_t i = 0; i < c.n_steps; i++)
		if (c.steps[i].status == ST_FAIL)
			status = EXIT_CHECK_FAILED;
	status = check_finish(&c, status);
out:
	check_clear(&c);
	cfg_warnings_clear(&warnings);
	cfg_free(cfg);
	free(args.mailboxes);
	return status;
}
