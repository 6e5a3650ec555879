/* SPDX-License-Identifier: MIT */
/* <graph> and <mailbox backend>: defaults, every setting, credentials from files and the
 * environment, and each refusal with its file:line and element. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "config/config.h"
#include "harness.h"

#define TENANT "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define CLIENT "00000000-1111-2222-3333-444444444444"

/* A failed precondition ends the test (in a TEST's void body). */
#define REQUIRE(c)              \
	do {                    \
		CHECK(c);       \
		if (!(c))       \
			return; \
	} while (0)

static char dir[64];

static void put(const char *name, const char *text, int mode)
{
	char path[128];
	FILE *f;

	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	REQUIRE(f != NULL);
	fputs(text, f);
	fclose(f);
	CHECK_EQ(chmod(path, (mode_t)mode), 0);
}

static void drop(const char *name)
{
	char path[128];

	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	(void)unlink(path);
}

/* Parses <calsync> content inside a complete document, relative paths from dir. */
static int parse(const char *inner, struct cfg **out, struct cfg_warnings *w, struct err *err)
{
	size_t n = strlen(inner) + 128;
	char *xml = xmalloc(n);
	int rc;
	struct cfg_parse_opts o = {.name = "calsync.xml", .base_dir = dir};

	(void)snprintf(xml, n,
	               "<configuration><calendar_sync><calsync>\n%s\n"
	               "</calsync></calendar_sync></configuration>",
	               inner);
	rc = cfg_parse(xml, strlen(xml), &o, out, w, err);
	free(xml);
	return rc;
}

TEST(no_graph_is_ews_only)
{
	struct cfg *cfg = NULL;
	struct err err = {0};

	CHECK_EQ(parse("<mailboxes><mailbox>a@b.example</mailbox></mailboxes>", &cfg, NULL, &err),
	         0);
	REQUIRE(cfg != NULL);
	CHECK(cfg->graph == NULL);
	CHECK_EQ(cfg->n_mailboxes, 1u);
	CHECK_EQ(cfg->mailbox_backends[0], CFG_BACKEND_AUTO);
	cfg_free(cfg);
}

TEST(secret_file_and_defaults)
{
	struct cfg *cfg = NULL;
	struct err err = {0};
	const struct cfg_graph *g;

	put("graph-secret", "s3cr3t~value\n", 0600);
	CHECK_EQ(parse("<graph tenant='" TENANT "' client_id='" CLIENT "'>"
	               "<secret file='graph-secret'/></graph>",
	               &cfg, NULL, &err),
	         0);
	REQUIRE(cfg != NULL && cfg->graph != NULL);
	g = cfg->graph;
	CHECK_STREQ(g->tenant, TENANT);
	CHECK_STREQ(g->client_id, CLIENT);
	CHECK_STREQ(g->client_secret, "s3cr3t~value");
	CHECK(g->cert_pem == NULL);
	CHECK_STREQ(g->authority, "https://login.microsoftonline.com");
	CHECK_STREQ(g->base_url, "https://graph.microsoft.com/v1.0");
	CHECK_STREQ(g->scope, "https://graph.microsoft.com/.default");
	CHECK_EQ(g->mode, CFG_GRAPH_DELTA);
	CHECK_EQ(g->delta_interval_usec, INT64_C(60000000));
	CHECK_EQ(g->concurrency, 32);
	cfg_free(cfg);
	drop("graph-secret");
}

TEST(every_setting)
{
	struct cfg *cfg = NULL;
	struct err err = {0};
	const struct cfg_graph *g;

	put("g.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", 0644);
	put("g.key", "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", 0600);
	CHECK_EQ(
		parse("<graph tenant='contoso.onmicrosoft.com' client_id='" CLIENT "'"
	              " concurrency='8'>"
	              "<certificate cert='g.crt' key='g.key'/>"
	              "<endpoints authority='http://127.0.0.1:9/' graph='http://127.0.0.1:9/v1.0/'/>"
	              "<notifications listen='0.0.0.0:8443' url='https://calsync.example:8443/g'"
	              " tls_cert='g.crt' tls_key='g.key' lifetime='2d' renew_before='6h'/>"
	              "</graph>\n"
	              "<mailboxes><mailbox backend='graph'>a@b.example</mailbox>"
	              "<mailbox backend='EWS'>c@b.example</mailbox>"
	              "<mailbox>d@b.example</mailbox></mailboxes>",
	              &cfg, NULL, &err),
		0);
	if (cfg == NULL)
		fprintf(stderr, "%s\n", err.msg);
	REQUIRE(cfg != NULL && cfg->graph != NULL);
	g = cfg->graph;
	CHECK(g->client_secret == NULL);
	CHECK(strstr(g->cert_pem, "BEGIN CERTIFICATE") != NULL);
	CHECK(strstr(g->key_pem, "BEGIN PRIVATE KEY") != NULL);
	CHECK_STREQ(g->authority, "http://127.0.0.1:9");
	CHECK_STREQ(g->base_url, "http://127.0.0.1:9/v1.0");
	CHECK_STREQ(g->scope, "http://127.0.0.1:9/.default");
	CHECK_EQ(g->mode, CFG_GRAPH_NOTIFY);
	CHECK_STREQ(g->listen_host, "0.0.0.0");
	CHECK_EQ(g->listen_port, 8443u);
	CHECK_STREQ(g->notify_url, "https://calsync.example:8443/g");
	CHECK(strstr(g->notify_tls_cert_pem, "BEGIN CERTIFICATE") != NULL);
	CHECK(strstr(g->notify_tls_key_pem, "BEGIN PRIVATE KEY") != NULL);
	CHECK_EQ(g->subscription_usec, INT64_C(2) * 86400 * 1000000);
	CHECK_EQ(g->renew_before_usec, INT64_C(6) * 3600 * 1000000);
	CHECK_EQ(g->concurrency, 8);
	REQUIRE(cfg->n_mailboxes == 3);
	CHECK_EQ(cfg->mailbox_backends[0], CFG_BACKEND_GRAPH);
	CHECK_EQ(cfg->mailbox_backends[1], CFG_BACKEND_EWS);
	CHECK_EQ(cfg->mailbox_backends[2], CFG_BACKEND_AUTO);
	CHECK_STREQ(cfg_backend_name(CFG_BACKEND_GRAPH), "graph");
	CHECK_STREQ(cfg_graph_mode_name(g->mode), "notifications");
	cfg_free(cfg);
	drop("g.crt");
	drop("g.key");
}

TEST(secret_from_environment)
{
	struct cfg *cfg = NULL;
	struct err err = {0};

	REQUIRE(setenv("CALSYNC_TEST_GRAPH_SECRET", "from-env", 1) == 0);
	CHECK_EQ(parse("<graph tenant='" TENANT "' client_id='" CLIENT "'>"
	               "<secret env='CALSYNC_TEST_GRAPH_SECRET'/><delta interval='5min'/></graph>",
	               &cfg, NULL, &err),
	         0);
	REQUIRE(cfg != NULL && cfg->graph != NULL);
	CHECK_STREQ(cfg->graph->client_secret, "from-env");
	CHECK_EQ(cfg->graph->delta_interval_usec, INT64_C(300000000));
	cfg_free(cfg);
	(void)unsetenv("CALSYNC_TEST_GRAPH_SECRET");
}

struct bad {
	const char *inner;
	const char *msg; /* a part of the error */
};

static const struct bad bad_cases[] = {
	{"<graph client_id='" CLIENT "'><secret file='s'/></graph>", "tenant is required"},
	{"<graph tenant='nodot' client_id='" CLIENT "'/>", "not a tenant id"},
	{"<graph tenant='" TENANT "' client_id='abc'/>", "client_id must be"},
	{"<graph tenant='" TENANT "' client_id='" CLIENT "'/>", "no credential"},
	{"<graph tenant='" TENANT "' client_id='" CLIENT "'><secret value='x'/></graph>",
         "an inline value is refused"},
	{"<graph tenant='" TENANT "' client_id='" CLIENT "'><secret file='missing'/></graph>",
         "cannot read"},
	{"<graph tenant='" TENANT "' client_id='" CLIENT "'><secret file='s'/>"
         "<certificate cert='s'/></graph>",
         "give both cert and key"},
	{"<graph tenant='" TENANT "' client_id='" CLIENT "'><certificate cert='s' key='s'/>"
         "</graph>",
         "not a PEM file"},
	{"<graph tenant='" TENANT "' client_id='" CLIENT "'><secret file='s'/>"
         "<delta interval='1s'/></graph>",
         "out of range"},
	{"<graph tenant='" TENANT "' client_id='" CLIENT "'><secret file='s'/>"
         "<delta interval='soon'/></graph>",
         "accepted: a duration"},
	{"<graph tenant='" TENANT "' client_id='" CLIENT "'><secret file='s'/>"
         "<notifications listen='0.0.0.0:8443'/></graph>",
         "url is required"},
	{"<graph tenant='" TENANT "' client_id='" CLIENT "'><secret file='s'/>"
         "<notifications url='http://x.example/g'/></graph>",
         "only to https:// URLs"},
	{"<graph tenant='" TENANT "' client_id='" CLIENT "'><secret file='s'/>"
         "<notifications url='https://x.example/g' lifetime='8d'/></graph>",
         "out of range"},
	{"<graph tenant='" TENANT "' client_id='" CLIENT "'><secret file='s'/>"
         "<notifications url='https://x.example/g' lifetime='2h' renew_before='3h'/></graph>",
         "renew_before must be shorter"},
	{"<graph tenant='" TENANT "' client_id='" CLIENT "'><secret file='s'/>"
         "<notifications url='https://x.example/g' listen='somewhere'/></graph>",
         "<notifications listen=\"somewhere\">"},
	{"<graph tenant='" TENANT "' client_id='" CLIENT "' concurrency='0'><secret file='s'/>"
         "</graph>",
         "accepted: 1 to 512"},
	{"<graph tenant='" TENANT "' client_id='" CLIENT "'><secret file='s'/>"
         "<endpoints graph='ftp://x'/></graph>",
         "<endpoints graph="},
	{"<mailboxes><mailbox backend='cloud'>a@b.example</mailbox></mailboxes>",
         "accepted: auto, ews, graph"},
	{"<ews url='https://mail.contoso.example/EWS/Exchange.asmx'/><account auth='bearer' oauth='graph'/>",
         "calsync.xml:2: <account oauth=\"graph\">: needs a <graph> section"},
	{"<ews url='https://mail.contoso.example/EWS/Exchange.asmx'/><account auth='bearer' oauth='graph' token_file='s'/><graph tenant='" TENANT
         "' client_id='" CLIENT "'><secret file='s'/></graph>",
         "give either oauth or token_file, not both"},
	{"<ews url='https://mail.contoso.example/EWS/Exchange.asmx'/><account auth='bearer' oauth='graph' token_env='TOK'/><graph tenant='" TENANT
         "' client_id='" CLIENT "'><secret file='s'/></graph>",
         "give either oauth or token_env, not both"},
	{"<ews url='https://mail.contoso.example/EWS/Exchange.asmx'/><account auth='bearer' oauth='entra'/><graph tenant='" TENANT
         "' client_id='" CLIENT "'><secret file='s'/></graph>",
         "<account oauth=\"entra\">: unknown token provider; accepted: graph"},
	{"<ews url='https://mail.contoso.example/EWS/Exchange.asmx'/><account auth='ntlm' user='u' password_file='s' oauth='graph'/><graph tenant='" TENANT
         "' client_id='" CLIENT "'><secret file='s'/></graph>",
         "<account oauth=\"graph\">: needs auth=\"bearer\""},
	{"<ews url='https://mail.contoso.example/EWS/Exchange.asmx'/><account auth='bearer' token_file='s' scope='https://x.example/.default'/>",
         "<account scope>: only used with oauth=\"graph\""},
	{"<ews url='https://mail.contoso.example/EWS/Exchange.asmx'/><account auth='bearer' oauth='graph' scope='mail.contoso.example'/><graph tenant='" TENANT
         "' client_id='" CLIENT "'><secret file='s'/></graph>",
         "<account scope=\"mail.contoso.example\">: not a scope"},
	{"<account auth='bearer' oauth='graph'/><graph tenant='" TENANT "' client_id='" CLIENT
         "'><secret file='s'/></graph>",
         "set scope=\"https://<EWS host>/.default\""},
};

/* <account auth="bearer" oauth="graph">: EWS tokens from <graph>'s app registration, for the
 * EWS host's scope (or the Autodiscover host's, or the one given). */
TEST(ews_bearer_from_graph)
{
	static const struct {
		const char *ews;
		const char *account;
		const char *scope;
	} cases[] = {
		{"<ews url='https://mail.contoso.example/EWS/Exchange.asmx'/>",
	         "<account auth='bearer' oauth='graph'/>", "https://mail.contoso.example/.default"},
		{"<ews url='http://127.0.0.1:8443/EWS/Exchange.asmx'/>",
	         "<account auth='Bearer' oauth='graph'/>", "http://127.0.0.1:8443/.default"},
		{"<autodiscover domain='contoso.example'/>",
	         "<account auth='bearer' oauth='graph'/>",
	         "https://autodiscover.contoso.example/.default"},
		{"<ews url='https://mail.contoso.example/EWS/Exchange.asmx'/>",
	         "<account auth='bearer' oauth='graph' scope='https://ews.contoso.example/.default'/>",
	         "https://ews.contoso.example/.default"},
	};

	put("s", "secret\n", 0600);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cfg *cfg = NULL;
		struct err err = {0};
		char inner[1024];

		(void)snprintf(inner, sizeof(inner),
		               "%s%s<graph tenant='" TENANT "' client_id='" CLIENT "'>"
		               "<secret file='s'/></graph>",
		               cases[i].ews, cases[i].account);
		CHECK_EQ(parse(inner, &cfg, NULL, &err), 0);
		if (cfg == NULL) {
			harness_fail(__FILE__, __LINE__, "case %zu: %s", i, err.msg);
			continue;
		}
		CHECK_EQ(cfg->auth, EWS_AUTH_BEARER);
		CHECK(cfg->token_oauth);
		CHECK(cfg->token == NULL);
		CHECK_STREQ(cfg->token_scope, cases[i].scope);
		/* Graph keeps its own scope. */
		CHECK_STREQ(cfg->graph->scope, "https://graph.microsoft.com/.default");
		cfg_free(cfg);
	}
	drop("s");
}

/* The static token stays for bearer without oauth. */
TEST(ews_bearer_static_token_stays)
{
	struct cfg *cfg = NULL;
	struct err err = {0};

	put("tok", "eyJ.static\n", 0600);
	CHECK_EQ(parse("<ews url='https://mail.contoso.example/EWS/Exchange.asmx'/>"
	               "<account auth='bearer' token_file='tok'/>",
	               &cfg, NULL, &err),
	         0);
	REQUIRE(cfg != NULL);
	CHECK(!cfg->token_oauth);
	CHECK(cfg->token_scope == NULL);
	CHECK_STREQ(cfg->token, "eyJ.static");
	cfg_free(cfg);
	drop("tok");
}

TEST(refusals_name_the_place)
{
	put("s", "secret\n", 0600);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct cfg *cfg = NULL;
		struct err err = {0};
		int rc = parse(bad_cases[i].inner, &cfg, NULL, &err);

		CHECK_EQ(rc, -EINVAL);
		CHECK(cfg == NULL);
		CHECK(strncmp(err.msg, "calsync.xml:", 12) == 0);
		if (strstr(err.msg, bad_cases[i].msg) == NULL)
			harness_fail(__FILE__, __LINE__, "case %zu: '%s' lacks '%s'", i, err.msg,
			             bad_cases[i].msg);
		/* The secret never appears in a message. */
		CHECK(strstr(err.msg, "secret\n") == NULL);
		cfg_free(cfg);
	}
	drop("s");
}

TEST(cloud_addresses_and_loopback)
{
	CHECK(cfg_is_cloud_address("alice@contoso.mail.onmicrosoft.com"));
	CHECK(cfg_is_cloud_address("Bob@Fabrikam.MAIL.onmicrosoft.us"));
	CHECK(cfg_is_cloud_address("c@x.mail.partner.onmschina.cn"));
	CHECK(!cfg_is_cloud_address("alice@contoso.onmicrosoft.com")); /* a tenant domain */
	CHECK(!cfg_is_cloud_address("alice@contoso.example"));
	CHECK(!cfg_is_cloud_address("mail.onmicrosoft.com"));
	CHECK(cfg_is_loopback_http("http://127.0.0.1:8080/x"));
	CHECK(cfg_is_loopback_http("http://[::1]/"));
	CHECK(cfg_is_loopback_http("http://localhost"));
	CHECK(!cfg_is_loopback_http("http://127.0.0.10/"));
	CHECK(!cfg_is_loopback_http("http://localhost.evil.example/"));
	CHECK(!cfg_is_loopback_http("https://127.0.0.1/"));
}

TEST(notifications_listen_by_default_on_8443)
{
	struct cfg *cfg = NULL;
	struct err err = {0};

	put("s", "secret\n", 0600);
	CHECK_EQ(parse("<graph tenant='" TENANT "' client_id='" CLIENT "'><secret file='s'/>"
	               "<notifications url='https://calsync.example/g'/></graph>",
	               &cfg, NULL, &err),
	         0);
	REQUIRE(cfg != NULL && cfg->graph != NULL);
	CHECK_STREQ(cfg->graph->listen_host, "0.0.0.0");
	CHECK_EQ(cfg->graph->listen_port, 8443u);
	cfg_free(cfg);
	drop("s");
}

int main(void)
{
	(void)snprintf(dir, sizeof(dir), "/tmp/test-config-graph-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(no_graph_is_ews_only);
	RUN(secret_file_and_defaults);
	RUN(every_setting);
	RUN(secret_from_environment);
	RUN(ews_bearer_from_graph);
	RUN(ews_bearer_static_token_stays);
	RUN(refusals_name_the_place);
	RUN(cloud_addresses_and_loopback);
	RUN(notifications_listen_by_default_on_8443);
	(void)rmdir(dir);
	return harness_done();
}
