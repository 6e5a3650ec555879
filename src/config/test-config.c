/* SPDX-License-Identifier: MIT */
/*
 * test-config.c: the product's minimal file in every spelling, the full example, every default,
 * one test per invalid file (each message names file:line and the element), warnings for
 * unknown elements, and every truncation of the full example.
 */
#include "config/config.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/xalloc.h"
#include "ews/ews-request.h"
#include "harness.h"

#define USEC   INT64_C(1000000)
#define MINUTE (60 * USEC)

/* The PRODUCT.md file with Object="<object>" and the <advise> element open-closed or empty. */
static char *product_file(const char *object, bool empty_element)
{
	char *xml = xmalloc(512);

	(void)snprintf(xml, 512,
	               "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
	               "<configuration>\n"
	               "  <calendar_sync>\n"
	               "    <exchange>\n"
	               "      <events>\n"
	               "        <advise Object=\"%s\"%s\n"
	               "      </events>\n"
	               "    </exchange>\n"
	               "  </calendar_sync>\n"
	               "</configuration>\n",
	               object, empty_element ? "/>" : "></advise>");
	return xml;
}

/* Parses from an exact-size heap copy, so that ASan catches a read past the end. */
static int parse(const char *xml, bool offline, struct cfg **out, struct cfg_warnings *w,
                 struct err *err)
{
	size_t len = strlen(xml);
	char *copy = xmalloc(len);
	int rc;

	memcpy(copy, xml, len);
	rc = cfg_parse(copy, len,
	               &(struct cfg_parse_opts){.name = "calsync.xml", .offline = offline}, out, w,
	               err);
	free(copy);
	return rc;
}

static const char *fixtures(void)
{
	const char *d = getenv("EWS_FIXTURES_DIR");

	return d != NULL ? d : "tests/fixtures";
}

static char *fixture_path(const char *name)
{
	size_t n = strlen(fixtures()) + strlen(name) + 16;
	char *p = xmalloc(n);

	(void)snprintf(p, n, "%s/config/%s", fixtures(), name);
	return p;
}

static bool contains(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

TEST(product_file_every_spelling)
{
	static const char *const stream[] = {"EwsStream", "EWSStream", "EWStream", "ewsstream",
	                                     "EWSSTREAM", "ewstream",  "eWsStReAm"};
	static const char *const pull[] = {"EwsPull", "EWSPull", "ewspull", "EWSPULL", "eWsPuLl"};

	for (size_t i = 0; i < sizeof(stream) / sizeof(stream[0]) * 2; i++) {
		char *xml = product_file(stream[i / 2], i % 2 == 0);
		struct cfg_warnings w = {0};
		struct cfg *cfg = NULL;

		CHECK_EQ(parse(xml, false, &cfg, &w, NULL), 0);
		CHECK(cfg != NULL && cfg->notify == CFG_NOTIFY_STREAM);
		CHECK_EQ(w.n, 0);
		cfg_free(cfg);
		cfg_warnings_clear(&w);
		free(xml);
	}
	for (size_t i = 0; i < sizeof(pull) / sizeof(pull[0]) * 2; i++) {
		char *xml = product_file(pull[i / 2], i % 2 == 0);
		struct cfg *cfg = NULL;

		CHECK_EQ(parse(xml, false, &cfg, NULL, NULL), 0);
		CHECK(cfg != NULL && cfg->notify == CFG_NOTIFY_PULL);
		cfg_free(cfg);
		free(xml);
	}
	CHECK_STREQ(cfg_notify_name(CFG_NOTIFY_STREAM), "EwsStream");
	CHECK_STREQ(cfg_notify_name(CFG_NOTIFY_PULL), "EwsPull");
}

TEST(minimal_fixture_and_defaults)
{
	char *path = fixture_path("minimal.xml");
	struct cfg_warnings w = {0};
	struct err err = {0};
	struct cfg *cfg = NULL;
	const struct cfg_presence *pr;

	CHECK_EQ(cfg_load(path, &cfg, &w, &err), 0);
	CHECK_EQ(w.n, 0);
	if (cfg == NULL) {
		fprintf(stderr, "%s\n", err.msg);
		free(path);
		return;
	}
	CHECK_STREQ(cfg->path, path);
	CHECK_EQ(cfg->notify, CFG_NOTIFY_STREAM);
	CHECK_STREQ(cfg->ews_url, NULL);
	CHECK_STREQ(cfg->autodiscover_url, NULL);
	CHECK_STREQ(cfg->autodiscover_domain, NULL);
	CHECK_STREQ(cfg->server_version, EWS_DEFAULT_VERSION);
	CHECK_EQ(cfg->id_type, EWS_ID_SMTP);
	CHECK_STREQ(cfg->user, NULL);
	CHECK_EQ(cfg->auth, EWS_AUTH_NONE);
	CHECK_STREQ(cfg->password, NULL);
	CHECK_STREQ(cfg->token, NULL);
	CHECK_STREQ(cfg->ca_file, NULL);
	CHECK(!cfg->insecure_skip_tls_verify);
	CHECK_EQ(cfg->n_mailboxes, 0);
	CHECK_EQ(cfg->window_past_days, 1);
	CHECK_EQ(cfg->window_ahead_days, 14);
	CHECK_EQ(cfg->debounce_usec, USEC / 4);
	CHECK_EQ(cfg->safety_refresh_usec, 60 * MINUTE);
	CHECK_EQ(cfg->pull_interval_usec, 60 * USEC);
	CHECK_EQ(cfg->stream_timeout_usec, 30 * MINUTE);
	CHECK_EQ(cfg->stream_watchdog_usec, 90 * USEC);
	CHECK_EQ(cfg->concurrency, 8);
	CHECK_STREQ(cfg->store_path, "/var/lib/calsync/calsync.db");
	CHECK_STREQ(cfg->output_path, NULL);
	pr = &cfg->presence;
	CHECK_EQ(pr->count, (1u << CAL_FB_BUSY) | (1u << CAL_FB_OOF));
	CHECK_EQ(pr->all_day, CFG_ALL_DAY_COUNT);
	CHECK_STREQ(pr->state[CAL_FB_TENTATIVE].name, "Tentative");
	CHECK_STREQ(pr->state[CAL_FB_BUSY].name, "In a meeting");
	CHECK_STREQ(pr->state[CAL_FB_OOF].name, "Out of office");
	CHECK_STREQ(pr->state[CAL_FB_WORKING_ELSEWHERE].name, "Working elsewhere");
	CHECK_STREQ(pr->state[CAL_FB_FREE].name, NULL);
	for (size_t v = 0; v <= CAL_FB_NO_DATA; v++)
		CHECK_STREQ(pr->state[v].forward, NULL);
	CHECK_EQ(pr->n_categories, 0);
	cfg_free(cfg);
	cfg_warnings_clear(&w);
	free(path);
}

TEST(empty_configuration_is_valid)
{
	struct cfg *cfg = NULL;

	CHECK_EQ(parse("<configuration/>", false, &cfg, NULL, NULL), 0);
	CHECK(cfg != NULL && cfg->notify == CFG_NOTIFY_STREAM);
	cfg_free(cfg);
}

TEST(full_example)
{
	char *path = fixture_path("full.xml");
	char *ca = fixture_path("contoso-ca.pem");
	char *mbfile = fixture_path("mailboxes.txt");
	char expect[1024];
	struct cfg_warnings w = {0};
	struct err err = {0};
	struct cfg *cfg = NULL;
	const struct cfg_presence *pr;

	CHECK_EQ(setenv("CALSYNC_TEST_PASSWORD", "s3cret", 1), 0);
	CHECK_EQ(setenv("CALSYNC_TEST_API_TOKEN", "t0ken", 1), 0);
	CHECK_EQ(cfg_load(path, &cfg, &w, &err), 0);
	if (cfg == NULL) {
		fprintf(stderr, "%s\n", err.msg);
		goto out;
	}
	CHECK_EQ(cfg->notify, CFG_NOTIFY_PULL);
	CHECK_STREQ(cfg->ews_url, "https://mail.contoso.example/EWS/Exchange.asmx");
	CHECK_STREQ(cfg->server_version, "Exchange2016");
	CHECK_EQ(cfg->id_type, EWS_ID_PRIMARY_SMTP);
	CHECK_STREQ(cfg->user, "svc-calsync@contoso.example");
	CHECK_EQ(cfg->auth, EWS_AUTH_NTLM);
	CHECK_STREQ(cfg->password, "s3cret");
	CHECK_STREQ(cfg->ca_file, ca);
	CHECK(!cfg->insecure_skip_tls_verify);
	CHECK_EQ(cfg->n_mailboxes, 5);
	if (cfg->n_mailboxes == 5) {
		CHECK_STREQ(cfg->mailboxes[0], "alice@contoso.example");
		CHECK_STREQ(cfg->mailboxes[1], "bob@contoso.example");
		CHECK_STREQ(cfg->mailboxes[2], "carol@contoso.example");
		CHECK_STREQ(cfg->mailboxes[3], "dave@contoso.example");
		CHECK_STREQ(cfg->mailboxes[4], "erin.o'neil@sales.contoso.example");
	}
	CHECK_EQ(cfg->window_past_days, 2);
	CHECK_EQ(cfg->window_ahead_days, 30);
	CHECK_EQ(cfg->debounce_usec, 5 * USEC);
	CHECK_EQ(cfg->safety_refresh_usec, 120 * MINUTE);
	CHECK_EQ(cfg->pull_interval_usec, 30 * USEC);
	CHECK_EQ(cfg->stream_timeout_usec, 20 * MINUTE);
	CHECK_EQ(cfg->concurrency, 12);
	CHECK_STREQ(cfg->store_path, "/var/lib/calsync/contoso.db");
	CHECK_STREQ(cfg->output_path, "/var/log/calsync/presence.jsonl");
	CHECK(cfg->api_enabled);
	CHECK_STREQ(cfg->api_host, "::1");
	CHECK_EQ(cfg->api_port, 9745);
	CHECK_STREQ(cfg->api_token, "t0ken");
	CHECK_EQ(cfg->api_ready_live, 80);
	CHECK(cfg->api_tls_cert == NULL && cfg->api_tls_key == NULL);
	pr = &cfg->presence;
	CHECK_EQ(pr->count, (1u << CAL_FB_TENTATIVE) | (1u << CAL_FB_BUSY) | (1u << CAL_FB_OOF) |
	                            (1u << CAL_FB_WORKING_ELSEWHERE));
	CHECK_EQ(pr->all_day, CFG_ALL_DAY_OOF_ONLY);
	CHECK_STREQ(pr->state[CAL_FB_TENTATIVE].name, "Maybe busy");
	CHECK_STREQ(pr->state[CAL_FB_TENTATIVE].forward, NULL);
	CHECK_STREQ(pr->state[CAL_FB_BUSY].forward, "voicemail");
	CHECK_STREQ(pr->state[CAL_FB_OOF].forward, "+49301234567");
	CHECK_STREQ(pr->state[CAL_FB_WORKING_ELSEWHERE].name, "Remote");
	CHECK_EQ(pr->n_categories, 2);
	if (pr->n_categories == 2) {
		CHECK_STREQ(pr->categories[0].name, "Customer visit");
		CHECK_STREQ(pr->categories[0].forward, "+49307654321");
		CHECK_STREQ(pr->categories[1].name, "Do not disturb");
		CHECK_STREQ(pr->categories[1].forward, NULL);
	}
	/* Bob is listed inline and again in the file. */
	CHECK_EQ(w.n, 1);
	(void)snprintf(expect, sizeof(expect),
	               "%s:6: mailbox 'Bob@contoso.example' already listed at %s:18, ignored",
	               mbfile, path);
	if (w.n == 1)
		CHECK_STREQ(w.lines[0], expect);
out:
	cfg_free(cfg);
	cfg_warnings_clear(&w);
	CHECK_EQ(unsetenv("CALSYNC_TEST_PASSWORD"), 0);
	free(path);
	free(ca);
	free(mbfile);
}

TEST(every_truncation_of_the_full_example)
{
	char *path = fixture_path("full.xml");
	char *dir = fixture_path("");
	FILE *f = fopen(path, "rb");
	char data[8192];
	size_t len = 0;
	size_t ok = 0;

	CHECK(f != NULL);
	if (f == NULL)
		goto out;
	len = fread(data, 1, sizeof(data), f);
	fclose(f);
	CHECK(len > 0 && len < sizeof(data));
	CHECK_EQ(setenv("CALSYNC_TEST_PASSWORD", "s3cret", 1), 0);
	for (size_t n = 0; n <= len; n++) {
		char *copy = xmalloc(n);
		struct cfg_warnings w = {0};
		struct err err = {0};
		struct cfg *cfg = NULL;
		int rc;

		memcpy(copy, data, n);
		rc = cfg_parse(copy, n,
		               &(struct cfg_parse_opts){.name = "full.xml", .base_dir = dir}, &cfg,
		               &w, &err);
		if (rc == 0) {
			ok++;
			CHECK(cfg != NULL);
		} else {
			CHECK_EQ(rc, -EINVAL);
			CHECK(cfg == NULL);
			CHECK(strncmp(err.msg, "full.xml:", 9) == 0);
		}
		cfg_free(cfg);
		cfg_warnings_clear(&w);
		free(copy);
	}
	/* Only the whole file and the file without its last newline(s) parse. */
	CHECK(ok >= 1 && ok <= 2);
	CHECK_EQ(unsetenv("CALSYNC_TEST_PASSWORD"), 0);
out:
	free(path);
	free(dir);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[4096];
	size_t n;

	buf_init(&b, 1u << 20);
	if (f == NULL)
		return buf_take(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		CHECK_EQ(buf_append(&b, chunk, n, NULL), 0);
	fclose(f);
	return buf_take(&b);
}

/* docs/configuration.md shows the full example as it is, so the docs cannot drift from it. */
TEST(docs_show_the_examples)
{
	char *full = fixture_path("full.xml");
	char *minimal = fixture_path("minimal.xml");
	char *docs = fixture_path("../../../docs/configuration.md");
	char *full_text = slurp(full);
	char *minimal_text = slurp(minimal);
	char *docs_text = slurp(docs);

	CHECK(full_text[0] != '\0' && minimal_text[0] != '\0');
	CHECK(contains(docs_text, full_text));
	CHECK(contains(docs_text, minimal_text));
	free(full);
	free(minimal);
	free(docs);
	free(full_text);
	free(minimal_text);
	free(docs_text);
}

TEST(unknown_elements_and_attributes_warn)
{
	const char *xml =
		"<configuration>\n"
		"  <other_product/>\n"
		"  <calendar_sync>\n"
		"    <exchange><events><advise Object=\"EwsPull\" Interval=\"5\"/></events>\n"
		"    <server/></exchange>\n"
		"    <calsync><window ahead=\"7d\" behind=\"1d\"/><plugins/></calsync>\n"
		"  </calendar_sync>\n"
		"</configuration>\n";
	struct cfg_warnings w = {0};
	struct cfg *cfg = NULL;

	CHECK_EQ(parse(xml, false, &cfg, &w, NULL), 0);
	CHECK(cfg != NULL && cfg->notify == CFG_NOTIFY_PULL && cfg->window_ahead_days == 7);
	CHECK_EQ(w.n, 5);
	if (w.n == 5) {
		CHECK_STREQ(
			w.lines[0],
			"calsync.xml:2: unknown element <other_product> in <configuration>, ignored");
		CHECK_STREQ(w.lines[1],
		            "calsync.xml:4: unknown attribute Interval of <advise>, ignored");
		CHECK_STREQ(w.lines[2],
		            "calsync.xml:5: unknown element <server> in <exchange>, ignored");
		CHECK_STREQ(w.lines[3],
		            "calsync.xml:6: unknown attribute behind of <window>, ignored");
		CHECK_STREQ(w.lines[4],
		            "calsync.xml:6: unknown element <plugins> in <calsync>, ignored");
	}
	cfg_free(cfg);
	cfg_warnings_clear(&w);
	/* A NULL warnings pointer is fine. */
	CHECK_EQ(parse(xml, false, &cfg, NULL, NULL), 0);
	cfg_free(cfg);
}

TEST(warnings_are_capped)
{
	struct buf b;
	struct cfg_warnings w = {0};
	struct cfg *cfg = NULL;

	buf_init(&b, 1u << 20);
	CHECK_EQ(buf_append(&b, "<configuration>", 15, NULL), 0);
	for (int i = 0; i < 100; i++)
		CHECK_EQ(buf_append(&b, "<x/>", 4, NULL), 0);
	CHECK_EQ(buf_append(&b, "</configuration>", 16, NULL), 0);
	CHECK_EQ(parse(b.data, false, &cfg, &w, NULL), 0);
	CHECK_EQ(w.n, CFG_MAX_WARNINGS);
	CHECK_EQ(w.dropped, 100 - CFG_MAX_WARNINGS);
	cfg_free(cfg);
	cfg_warnings_clear(&w);
	buf_free(&b);
}

TEST(insecure_tls_warns)
{
	struct cfg_warnings w = {0};
	struct cfg *cfg = NULL;

	CHECK_EQ(parse("<configuration><calendar_sync><calsync>\n"
	               "<tls insecure_skip_tls_verify=\"TRUE\"/>\n"
	               "</calsync></calendar_sync></configuration>",
	               false, &cfg, &w, NULL),
	         0);
	CHECK(cfg != NULL && cfg->insecure_skip_tls_verify);
	CHECK_EQ(w.n, 1);
	if (w.n == 1)
		CHECK(contains(w.lines[0], "calsync.xml:2:") &&
		      contains(w.lines[0], "NOT verified"));
	cfg_free(cfg);
	cfg_warnings_clear(&w);
}

/* A scratch directory with the files a test writes; removed by scratch_done(). */
struct scratch {
	char dir[64];
	char path[4][128];
	size_t n;
};

static const char *scratch_file(struct scratch *s, const char *name, const char *text, int mode)
{
	char *p;
	FILE *f;

	if (s->n == sizeof(s->path) / sizeof(s->path[0]))
		abort();
	p = s->path[s->n++];
	if (s->dir[0] == '\0') {
		(void)snprintf(s->dir, sizeof(s->dir), "/tmp/test-config-XXXXXX");
		CHECK(mkdtemp(s->dir) != NULL);
	}
	(void)snprintf(p, sizeof(s->path[0]), "%s/%s", s->dir, name);
	f = fopen(p, "w");
	CHECK(f != NULL);
	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
	CHECK_EQ(chmod(p, (mode_t)mode), 0);
	return p;
}

static void scratch_done(struct scratch *s)
{
	for (size_t i = 0; i < s->n; i++)
		(void)unlink(s->path[i]);
	if (s->dir[0] != '\0')
		(void)rmdir(s->dir);
}

TEST(secret_and_mailbox_files)
{
	struct scratch s = {0};
	struct cfg_warnings w = {0};
	struct err err = {0};
	struct cfg *cfg = NULL;
	struct cfg_parse_opts o = {.name = "calsync.xml"};
	const char *xml = "<configuration><calendar_sync><calsync>\n"
			  "<account user='u' auth='BASIC' password_file='pw'/>\n"
			  "<mailboxes file='mb.txt'/>\n"
			  "</calsync></calendar_sync></configuration>";

	(void)scratch_file(&s, "pw", "p4ss\r\n", 0604);
	(void)scratch_file(&s, "mb.txt",
	                   "a@b.example\r\n  # comment\n\n\tc@d.example  \nA@B.EXAMPLE", 0644);
	o.base_dir = s.dir;
	CHECK_EQ(cfg_parse(xml, strlen(xml), &o, &cfg, &w, &err), 0);
	if (cfg != NULL) {
		CHECK_EQ(cfg->auth, EWS_AUTH_BASIC);
		CHECK_STREQ(cfg->password, "p4ss");
		CHECK_EQ(cfg->n_mailboxes, 2);
		CHECK_STREQ(cfg->mailboxes[0], "a@b.example");
		CHECK_STREQ(cfg->mailboxes[1], "c@d.example");
	}
	/* The world-readable password file, then the duplicate at line 5 of the mailbox file. */
	CHECK_EQ(w.n, 2);
	if (w.n == 2) {
		CHECK(contains(w.lines[0], "calsync.xml:2: <account password_file>"));
		CHECK(contains(w.lines[0], "readable by everyone"));
		CHECK(contains(w.lines[1], "/mb.txt:5: mailbox 'A@B.EXAMPLE' already listed at "));
		CHECK(contains(w.lines[1], "/mb.txt:1, ignored"));
	}
	cfg_free(cfg);
	cfg_warnings_clear(&w);
	cfg = NULL;
	/* A password file of two lines is refused, without echoing it. */
	(void)scratch_file(&s, "pw2", "p4ss\nmore\n", 0600);
	xml = "<configuration><calendar_sync><calsync>\n"
	      "<account user='u' password_file='pw2'/>\n"
	      "</calsync></calendar_sync></configuration>";
	CHECK_EQ(cfg_parse(xml, strlen(xml), &o, &cfg, NULL, &err), -EINVAL);
	CHECK(cfg == NULL);
	CHECK(contains(err.msg, "calsync.xml:2: <account password_file=\"pw2\">: must hold the "
	                        "secret on one line"));
	CHECK(!contains(err.msg, "p4ss"));
	scratch_done(&s);
}

TEST(webhooks)
{
	struct scratch s = {0};
	struct cfg_warnings w = {0};
	struct err err = {0};
	struct cfg *cfg = NULL;
	struct buf b;
	const char *xml;
	char *many;
	struct cfg_parse_opts o = {.name = "calsync.xml"};
	const char *ok = "<configuration><calendar_sync><calsync>\n"
			 "<webhooks>\n"
			 "<webhook url='https://hooks.example/presence' secret_file='hook.key'\n"
			 "         retry_for='3s' ca_file='hooks-ca.pem' colour='blue'/>\n"
			 "<webhook url='http://127.0.0.1:9000/' secret_env='CALSYNC_TEST_HOOK'/>\n"
			 "<webhook url='https://other.example/'/>\n"
			 "</webhooks>\n"
			 "</calsync></calendar_sync></configuration>";

	(void)scratch_file(&s, "hook.key", "k3y\n", 0600);
	o.base_dir = s.dir;
	CHECK_EQ(setenv("CALSYNC_TEST_HOOK", "env-k3y", 1), 0);
	CHECK_EQ(cfg_parse(ok, strlen(ok), &o, &cfg, &w, &err), 0);
	CHECK(cfg != NULL && cfg->n_webhooks == 3);
	if (cfg != NULL && cfg->n_webhooks == 3) {
		char ca[600];

		(void)snprintf(ca, sizeof(ca), "%s/hooks-ca.pem", s.dir);
		CHECK_STREQ(cfg->webhooks[0].url, "https://hooks.example/presence");
		CHECK_STREQ(cfg->webhooks[0].secret, "k3y");
		CHECK_STREQ(cfg->webhooks[0].ca_file, ca);
		CHECK_EQ(cfg->webhooks[0].retry_for_usec, 3 * USEC);
		CHECK_STREQ(cfg->webhooks[1].url, "http://127.0.0.1:9000/");
		CHECK_STREQ(cfg->webhooks[1].secret, "env-k3y");
		CHECK(cfg->webhooks[1].ca_file == NULL);
		CHECK_EQ(cfg->webhooks[1].retry_for_usec, 24 * 60 * MINUTE);
		CHECK(cfg->webhooks[2].secret == NULL);
	}
	CHECK_EQ(w.n, 1);
	if (w.n == 1)
		CHECK_STREQ(w.lines[0],
		            "calsync.xml:4: unknown attribute colour of <webhook>, ignored");
	cfg_free(cfg);
	cfg_warnings_clear(&w);
	cfg = NULL;
	/* No <webhooks>, or an empty one: none. */
	CHECK_EQ(parse("<configuration><calendar_sync><calsync><webhooks/></calsync>"
	               "</calendar_sync></configuration>",
	               false, &cfg, NULL, &err),
	         0);
	CHECK(cfg != NULL && cfg->n_webhooks == 0 && cfg->webhooks == NULL);
	cfg_free(cfg);
	cfg = NULL;
	/* Offline (the fuzzer) reads no secret. */
	CHECK_EQ(parse("<configuration><calendar_sync><calsync><webhooks><webhook "
	               "url='https://a.example/' secret_file='/nonexistent'/></webhooks></calsync>"
	               "</calendar_sync></configuration>",
	               true, &cfg, NULL, &err),
	         0);
	CHECK(cfg != NULL && cfg->n_webhooks == 1 && cfg->webhooks[0].secret == NULL);
	cfg_free(cfg);
	cfg = NULL;
	/* At most CFG_MAX_WEBHOOKS. */
	buf_init(&b, 1u << 20);
	xml = "<configuration><calendar_sync><calsync><webhooks>\n";
	CHECK_EQ(buf_append(&b, xml, strlen(xml), NULL), 0);
	for (unsigned i = 0; i <= CFG_MAX_WEBHOOKS; i++) {
		char line[64];
		int len =
			snprintf(line, sizeof(line), "<webhook url='https://h%u.example/'/>\n", i);

		CHECK_EQ(buf_append(&b, line, (size_t)len, NULL), 0);
	}
	xml = "</webhooks></calsync></calendar_sync></configuration>";
	CHECK_EQ(buf_append(&b, xml, strlen(xml) + 1, NULL), 0);
	many = buf_take(&b);
	CHECK_EQ(parse(many, false, &cfg, NULL, &err), -EINVAL);
	CHECK(contains(err.msg, "calsync.xml:18: <webhook>: more than 16 webhooks"));
	free(many);
	CHECK_EQ(unsetenv("CALSYNC_TEST_HOOK"), 0);
	scratch_done(&s);
}

TEST(bad_address_in_mailbox_file_names_its_line)
{
	struct scratch s = {0};
	struct err err = {0};
	struct cfg *cfg = NULL;
	const char *mb = scratch_file(&s, "mb.txt", "a@b.example\n# fine\nnot-an-address\n", 0644);
	const char *xml = "<configuration><calendar_sync><calsync>\n"
			  "<mailboxes file='mb.txt'/>\n"
			  "</calsync></calendar_sync></configuration>";
	char expect[512];

	CHECK_EQ(cfg_parse(xml, strlen(xml),
	                   &(struct cfg_parse_opts){.name = "calsync.xml", .base_dir = s.dir}, &cfg,
	                   NULL, &err),
	         -EINVAL);
	CHECK(cfg == NULL);
	(void)snprintf(expect, sizeof(expect),
	               "%s:3: 'not-an-address' is not a mailbox address: no '@' (<mailboxes file> "
	               "at calsync.xml:2)",
	               mb);
	CHECK_STREQ(err.msg, expect);
	scratch_done(&s);
}

TEST(load_errors)
{
	struct err err = {0};
	struct cfg *cfg = NULL;
	char *dir = fixture_path("");

	CHECK_EQ(cfg_load("/nonexistent/calsync.xml", &cfg, NULL, &err), -ENOENT);
	CHECK(contains(err.msg, "/nonexistent/calsync.xml: cannot read: No such file"));
	CHECK_EQ(cfg_load(dir, &cfg, NULL, &err), -EINVAL);
	CHECK(contains(err.msg, "not a regular file"));
	CHECK_EQ(cfg_parse("<configuration/>", CFG_MAX_FILE + 1, NULL, &cfg, NULL, &err),
	         -EMSGSIZE);
	CHECK(cfg == NULL);
	free(dir);
}

TEST(offline_reads_no_files)
{
	struct cfg *cfg = NULL;
	struct err err = {0};

	CHECK_EQ(parse("<configuration><calendar_sync><calsync>"
	               "<account user='u' password_file='/nonexistent'/>"
	               "<mailboxes file='/nonexistent'/></calsync></calendar_sync></configuration>",
	               true, &cfg, NULL, &err),
	         0);
	CHECK(cfg != NULL && cfg->password == NULL && cfg->n_mailboxes == 0);
	cfg_free(cfg);
}

/* Every accepted RequestServerVersion is one the request writer accepts too. */
TEST(versions_agree_with_the_request_writer)
{
	static const char *const versions[] = {
		"Exchange2010_SP1", "Exchange2010_SP2", "Exchange2012", "Exchange2013",
		"Exchange2013_SP1", "Exchange2015",     "Exchange2016", "V2015_10_05",
		"V2016_01_06",      "V2016_04_13",      "V2016_07_13",  "V2016_10_10",
		"V2017_01_07",      "V2017_04_14",      "V2017_07_11",
	};

	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		char xml[256];
		struct cfg *cfg = NULL;
		struct buf out;

		(void)snprintf(xml, sizeof(xml),
		               "<configuration><calendar_sync><calsync><ews version='%s'/>"
		               "</calsync></calendar_sync></configuration>",
		               versions[i]);
		CHECK_EQ(parse(xml, false, &cfg, NULL, NULL), 0);
		if (cfg == NULL)
			continue;
		buf_init(&out, 1u << 16);
		CHECK_EQ(ews_req_unsubscribe(&(struct ews_header){.version = cfg->server_version},
		                             "S", &out, NULL),
		         0);
		buf_free(&out);
		cfg_free(cfg);
	}
}

/* -- one test per invalid file ------------------------------------------------------------- */

/* calsync's own element on line 2 of an otherwise empty document. */
#define OWN(x) \
	"<configuration><calendar_sync><calsync>\n" x "\n</calsync></calendar_sync></configuration>"

struct bad {
	const char *name;
	const char *xml;
	const char *msg;  /* the message starts with this */
	const char *also; /* and contains this, when not NULL */
};

static const struct bad bad_cases[] = {
	{"not_xml", "hello", "calsync.xml:1: not well-formed XML: ", NULL},
	{"empty_file", "", "calsync.xml:1: not well-formed XML: ", NULL},
	{"unclosed", "<configuration>\n<calendar_sync>\n", "calsync.xml:", "not well-formed XML"},
	{"wrong_root", "<?xml version='1.0'?>\n<config/>",
         "calsync.xml:2: <config>: wrong root element; accepted: <configuration>", NULL},
	{"doctype_refused",
         "<?xml version='1.0'?>\n<!DOCTYPE configuration [<!ENTITY x 'y'>]>\n<configuration/>",
         "calsync.xml:2: <!DOCTYPE>: a DTD is not accepted", NULL},
	{"doctype_external_refused",
         "<!DOCTYPE configuration SYSTEM 'http://example/x.dtd'>\n<configuration/>",
         "calsync.xml:1: <!DOCTYPE>", NULL},
	{"bad_object",
         "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<configuration>\n  <calendar_sync>\n"
         "    <exchange>\n      <events>\n        <advise Object=\"EwsPoll\"></advise>\n"
         "      </events>\n    </exchange>\n  </calendar_sync>\n</configuration>\n",
         "calsync.xml:6: <advise Object=\"EwsPoll\">: unknown notification mode; accepted: "
         "EwsStream, EWSStream, EWStream, EwsPull, EWSPull (any case)",
         NULL},
	{"empty_object",
         "<configuration><calendar_sync><exchange><events>\n<advise Object=''/>"
         "</events></exchange></calendar_sync></configuration>",
         "calsync.xml:2: <advise Object=\"\">: unknown notification mode", NULL},
	{"missing_object",
         "<configuration><calendar_sync><exchange><events>\n<advise/>"
         "</events></exchange></calendar_sync></configuration>",
         "calsync.xml:2: <advise>: missing attribute Object", NULL},
	{"advise_twice",
         "<configuration><calendar_sync><exchange><events>\n<advise Object='EwsPull'/>\n"
         "<advise Object='EwsStream'/></events></exchange></calendar_sync></configuration>",
         "calsync.xml:3: <advise>: given twice (first at line 2)", NULL},
	{"inline_password", OWN("<account user='u' password='hunter2'/>"),
         "calsync.xml:2: <account>: an inline password is refused", "password_file="},
	{"inline_token", OWN("<account auth='bearer' token='abc'/>"),
         "calsync.xml:2: <account>: an inline token is refused", "token_env="},
	{"password_file_and_env", OWN("<account user='u' password_file='a' password_env='B'/>"),
         "calsync.xml:2: <account>: give one of password_file and password_env", NULL},
	{"unknown_auth", OWN("<account auth='kerberos'/>"),
         "calsync.xml:2: <account auth=\"kerberos\">: unknown authentication; accepted: basic, "
         "ntlm, negotiate, bearer, none",
         NULL},
	{"ntlm_without_password", OWN("<account user='u'/>"),
         "calsync.xml:2: <account auth=\"ntlm\">: needs user and one of password_file", NULL},
	{"basic_without_user", OWN("<account auth='basic' password_env='X'/>"),
         "calsync.xml:2: <account auth=\"basic\">: needs user", NULL},
	{"bearer_without_token", OWN("<account auth='bearer'/>"),
         "calsync.xml:2: <account auth=\"bearer\">: needs one of token_file, token_env and oauth=\"graph\"",
         NULL},
	{"token_with_ntlm", OWN("<account user='u' password_env='P' token_env='T'/>"),
         "calsync.xml:2: <account auth=\"ntlm\">: a token is only used with auth=\"bearer\"", NULL},
	{"password_with_bearer", OWN("<account auth='bearer' token_env='T' password_env='P'/>"),
         "calsync.xml:2: <account auth=\"bearer\">: a password is not used", NULL},
	{"password_env_unset",
         OWN("<account user='u' password_env='CALSYNC_TEST_UNSET_VARIABLE'/>"),
         "calsync.xml:2: <account password_env=\"CALSYNC_TEST_UNSET_VARIABLE\">: the environment "
         "variable is not set",
         NULL},
	{"password_env_bad_name", OWN("<account user='u' password_env='A=B'/>"),
         "calsync.xml:2: <account password_env=\"A=B\">: not an environment variable name", NULL},
	{"password_file_missing", OWN("<account user='u' password_file='/nonexistent/pw'/>"),
         "calsync.xml:2: <account password_file=\"/nonexistent/pw\">: cannot read /nonexistent/pw",
         NULL},
	{"password_file_is_a_directory", OWN("<account user='u' password_file='/'/>"),
         "calsync.xml:2: <account password_file=\"/\">: cannot read /: not a regular file", NULL},
	{"empty_user", OWN("<account user=''/>"),
         "calsync.xml:2: <account user=\"\">: must not be empty", NULL},
	{"control_character", OWN("<presence><busy profile='a&#9;b'/></presence>"),
         "calsync.xml:2: <busy profile=\"a\tb\">: contains a control character", NULL},
	{"bad_url", OWN("<ews url='ftp://mail.contoso.example/EWS'/>"),
         "calsync.xml:2: <ews url=\"ftp://mail.contoso.example/EWS\">: not a URL", NULL},
	{"url_with_space", OWN("<ews url='https://a b/'/>"),
         "calsync.xml:2: <ews url=\"https://a b/\">: a URL cannot contain spaces", NULL},
	{"unknown_version", OWN("<ews version='Exchange2019'/>"),
         "calsync.xml:2: <ews version=\"Exchange2019\">: unknown RequestServerVersion; accepted: "
         "Exchange2010_SP1",
         NULL},
	{"version_too_old", OWN("<ews version='Exchange2010'/>"),
         "calsync.xml:2: <ews version=\"Exchange2010\">: unknown RequestServerVersion", NULL},
	{"bad_impersonation", OWN("<ews impersonation='Sid'/>"),
         "calsync.xml:2: <ews impersonation=\"Sid\">: not accepted; accepted: SmtpAddress, "
         "PrimarySmtpAddress, PrincipalName",
         NULL},
	{"url_and_autodiscover",
         OWN("<ews url='https://a/EWS/Exchange.asmx'/>\n<autodiscover domain='a.example'/>"),
         "calsync.xml:3: <autodiscover>: give either <ews url> or <autodiscover>", NULL},
	{"bad_autodiscover_domain", OWN("<autodiscover domain='a@b'/>"),
         "calsync.xml:2: <autodiscover domain=\"a@b\">: not a domain", NULL},
	{"bad_bool", OWN("<tls insecure_skip_tls_verify='yes'/>"),
         "calsync.xml:2: <tls insecure_skip_tls_verify=\"yes\">: not a boolean; accepted: true, "
         "false",
         NULL},
	{"pull_interval_in_ms", OWN("<sync pull_interval='500ms'/>"),
         "calsync.xml:2: <sync pull_interval=\"500ms\">: out of range; accepted: 5s to 1h", NULL},
	{"debounce_out_of_range", OWN("<sync debounce='10min'/>"),
         "calsync.xml:2: <sync debounce=\"10min\">: out of range; accepted: 0s to 5min", NULL},
	{"duration_without_unit", OWN("<sync debounce='2'/>"),
         "calsync.xml:2: <sync debounce=\"2\">: a duration needs a unit; accepted units: ms, s, min, "
         "h, d",
         NULL},
	{"duration_with_space", OWN("<sync debounce='2 s'/>"),
         "calsync.xml:2: <sync debounce=\"2 s\">: unknown unit", NULL},
	{"duration_negative", OWN("<sync debounce='-1s'/>"),
         "calsync.xml:2: <sync debounce=\"-1s\">: not a duration", NULL},
	{"duration_fraction", OWN("<sync debounce='1.5s'/>"),
         "calsync.xml:2: <sync debounce=\"1.5s\">: unknown unit", NULL},
	{"duration_bad_unit", OWN("<sync debounce='2sec'/>"),
         "calsync.xml:2: <sync debounce=\"2sec\">: unknown unit", NULL},
	{"duration_upper_case_unit", OWN("<sync debounce='2S'/>"),
         "calsync.xml:2: <sync debounce=\"2S\">: unknown unit", NULL},
	{"duration_too_many_digits", OWN("<sync debounce='9999999999s'/>"),
         "calsync.xml:2: <sync debounce=\"9999999999s\">: too many digits", NULL},
	{"duration_empty", OWN("<sync debounce=''/>"),
         "calsync.xml:2: <sync debounce=\"\">: not a duration", NULL},
	/* 213503986d is 2^64 + 3.7 days in microseconds: it must not wrap into the range. */
	{"duration_overflows_int64", OWN("<sync safety_refresh='213503986d'/>"),
         "calsync.xml:2: <sync safety_refresh=\"213503986d\">: out of range; accepted: 5min to 7d",
         NULL},
	{"duration_largest_overflows_int64", OWN("<sync debounce='999999999d'/>"),
         "calsync.xml:2: <sync debounce=\"999999999d\">: out of range; accepted: 0s to 5min", NULL},
	{"minutes_overflow_int64", OWN("<sync stream_timeout='999999999d'/>"),
         "calsync.xml:2: <sync stream_timeout=\"999999999d\">: out of range; accepted: 1min to "
         "30min",
         NULL},
	{"days_overflow_int64", OWN("<window ahead='999999999d'/>"),
         "calsync.xml:2: <window ahead=\"999999999d\">: out of range; accepted: 1d to 366d", NULL},
	{"safety_refresh_too_short", OWN("<sync safety_refresh='1min'/>"),
         "calsync.xml:2: <sync safety_refresh=\"1min\">: out of range; accepted: 5min to 7d", NULL},
	{"pull_interval_too_short", OWN("<sync pull_interval='1s'/>"),
         "calsync.xml:2: <sync pull_interval=\"1s\">: out of range; accepted: 5s to 1h", NULL},
	{"stream_timeout_too_long", OWN("<sync stream_timeout='31min'/>"),
         "calsync.xml:2: <sync stream_timeout=\"31min\">: out of range; accepted: 1min to 30min",
         NULL},
	{"stream_timeout_zero", OWN("<sync stream_timeout='0min'/>"),
         "calsync.xml:2: <sync stream_timeout=\"0min\">: out of range", NULL},
	{"stream_timeout_not_whole_minutes", OWN("<sync stream_timeout='90s'/>"),
         "calsync.xml:2: <sync stream_timeout=\"90s\">: must be whole minutes", NULL},
	{"concurrency_too_high", OWN("<sync concurrency='28'/>"),
         "calsync.xml:2: <sync concurrency=\"28\">: out of range; accepted: 1 to 27", NULL},
	{"concurrency_zero", OWN("<sync concurrency='0'/>"),
         "calsync.xml:2: <sync concurrency=\"0\">: out of range; accepted: 1 to 27", NULL},
	{"concurrency_not_a_number", OWN("<sync concurrency='8x'/>"),
         "calsync.xml:2: <sync concurrency=\"8x\">: not a number; accepted: 1 to 27", NULL},
	{"window_ahead_zero", OWN("<window ahead='0d'/>"),
         "calsync.xml:2: <window ahead=\"0d\">: out of range; accepted: 1d to 366d", NULL},
	{"window_past_too_long", OWN("<window past='32d'/>"),
         "calsync.xml:2: <window past=\"32d\">: out of range; accepted: 0d to 31d", NULL},
	{"window_not_whole_days", OWN("<window past='12h'/>"),
         "calsync.xml:2: <window past=\"12h\">: must be whole days", NULL},
	{"sync_twice", OWN("<sync/>\n<sync/>"),
         "calsync.xml:3: <sync>: given twice (first at line 2)", NULL},
	{"bad_inline_mailbox", OWN("<mailboxes><mailbox>not-an-address</mailbox></mailboxes>"),
         "calsync.xml:2: <mailbox>: 'not-an-address' is not a mailbox address: no '@'", NULL},
	{"mailbox_two_ats", OWN("<mailboxes><mailbox>a@b@c</mailbox></mailboxes>"),
         "calsync.xml:2: <mailbox>: 'a@b@c' is not a mailbox address", NULL},
	{"mailbox_bad_domain", OWN("<mailboxes><mailbox>a@b..c</mailbox></mailboxes>"),
         "calsync.xml:2: <mailbox>: 'a@b..c' is not a mailbox address: not a valid domain", NULL},
	{"mailbox_no_domain", OWN("<mailboxes><mailbox>a@</mailbox></mailboxes>"),
         "calsync.xml:2: <mailbox>: 'a@' is not a mailbox address: no domain", NULL},
	{"mailbox_empty", OWN("<mailboxes><mailbox> </mailbox></mailboxes>"),
         "calsync.xml:2: <mailbox>: '' is not a mailbox address: no '@'", NULL},
	{"mailbox_file_missing", OWN("<mailboxes file='/nonexistent/mailboxes.txt'/>"),
         "calsync.xml:2: <mailboxes file=\"/nonexistent/mailboxes.txt\">: cannot read /nonexistent/mailboxes.txt",
         NULL},
	{"mailbox_file_is_a_directory", OWN("<mailboxes file='/'/>"),
         "calsync.xml:2: <mailboxes file=\"/\">: cannot read /: not a regular file", NULL},
	{"presence_free", OWN("<presence><free count='true'/></presence>"),
         "calsync.xml:2: <free>: Free appointments never count for presence", NULL},
	{"presence_bad_count", OWN("<presence><tentative count='maybe'/></presence>"),
         "calsync.xml:2: <tentative count=\"maybe\">: not a boolean", NULL},
	{"presence_bad_all_day", OWN("<presence all_day='sometimes'/>"),
         "calsync.xml:2: <presence all_day=\"sometimes\">: not accepted; accepted: count, oof-only, "
         "ignore",
         NULL},
	{"category_without_name", OWN("<presence><category forward='x'/></presence>"),
         "calsync.xml:2: <category>: missing attribute name", NULL},
	{"category_twice", OWN("<presence><category name='A'/>\n<category name='A'/></presence>"),
         "calsync.xml:3: <category name=\"A\">: category given twice", NULL},
	{"api_listen_no_port", OWN("<api listen='127.0.0.1'/>"),
         "calsync.xml:2: <api listen=\"127.0.0.1\">: not accepted; accepted: HOST:PORT", NULL},
	{"api_listen_name", OWN("<api listen='localhost:8745'/>"),
         "calsync.xml:2: <api listen=\"localhost:8745\">: not accepted; accepted: HOST:PORT with a "
         "numeric address",
         NULL},
	{"api_listen_port_too_big", OWN("<api listen='127.0.0.1:65536'/>"),
         "calsync.xml:2: <api listen=\"127.0.0.1:65536\">: not accepted", NULL},
	{"api_listen_bad_v6", OWN("<api listen='[::1:80'/>"),
         "calsync.xml:2: <api listen=\"[::1:80\">: not accepted", NULL},
	{"api_inline_token", OWN("<api token='hunter2'/>"),
         "calsync.xml:2: <api>: an inline token is refused", NULL},
	{"api_cert_without_key", OWN("<api tls_cert='c.pem'/>"),
         "calsync.xml:2: <api>: give both tls_cert and tls_key, or neither", NULL},
	{"api_ready_live_too_high", OWN("<api ready_live='101'/>"),
         "calsync.xml:2: <api ready_live=\"101\">: out of range; accepted: 0 to 100", NULL},
	{"webhook_without_url", OWN("<webhooks><webhook secret_env='X'/></webhooks>"),
         "calsync.xml:2: <webhook>: missing attribute url", NULL},
	{"webhook_bad_url", OWN("<webhooks><webhook url='ftp://hook.example/'/></webhooks>"),
         "calsync.xml:2: <webhook url=\"ftp://hook.example/\">: not a URL", NULL},
	{"webhook_url_twice",
         OWN("<webhooks><webhook url='https://h.example/a'/>\n"
             "<webhook url='https://h.example/a'/></webhooks>"),
         "calsync.xml:3: <webhook url=\"https://h.example/a\">: given twice (first at line 2)",
         NULL},
	{"webhook_inline_secret",
         OWN("<webhooks><webhook url='https://h.example/' secret='hunter2'/></webhooks>"),
         "calsync.xml:2: <webhook>: an inline secret is refused", "secret_env=\"CALSYNC_SECRET\""},
	{"webhook_secret_file_and_env",
         OWN("<webhooks><webhook url='https://h.example/' secret_file='s' "
             "secret_env='S'/></webhooks>"),
         "calsync.xml:2: <webhook>: give one of secret_file and secret_env", NULL},
	{"webhook_secret_env_unset",
         OWN("<webhooks><webhook url='https://h.example/' "
             "secret_env='CALSYNC_TEST_UNSET_VARIABLE'/></webhooks>"),
         "calsync.xml:2: <webhook secret_env=\"CALSYNC_TEST_UNSET_VARIABLE\">: the environment "
         "variable is not set",
         NULL},
	{"webhook_secret_file_missing",
         OWN("<webhooks><webhook url='https://h.example/' "
             "secret_file='/nonexistent/s'/></webhooks>"),
         "calsync.xml:2: <webhook secret_file=\"/nonexistent/s\">: cannot read /nonexistent/s",
         NULL},
	{"webhook_retry_for_no_unit",
         OWN("<webhooks><webhook url='https://h.example/' retry_for='10'/></webhooks>"),
         "calsync.xml:2: <webhook retry_for=\"10\">: a duration needs a unit", NULL},
	{"webhook_retry_for_zero",
         OWN("<webhooks><webhook url='https://h.example/' retry_for='0s'/></webhooks>"),
         "calsync.xml:2: <webhook retry_for=\"0s\">: out of range; accepted: 1s to 30d", NULL},
	{"webhook_retry_for_too_long",
         OWN("<webhooks><webhook url='https://h.example/' retry_for='31d'/></webhooks>"),
         "calsync.xml:2: <webhook retry_for=\"31d\">: out of range; accepted: 1s to 30d", NULL},
	/* 213503983d is 2^64 + 0.7 days in microseconds. */
	{"webhook_retry_for_overflows_int64",
         OWN("<webhooks><webhook url='https://h.example/' retry_for='213503983d'/></webhooks>"),
         "calsync.xml:2: <webhook retry_for=\"213503983d\">: out of range; accepted: 1s to 30d",
         NULL},
	{"webhook_empty_ca_file",
         OWN("<webhooks><webhook url='https://h.example/' ca_file=''/></webhooks>"),
         "calsync.xml:2: <webhook ca_file=\"\">: must not be empty", NULL},
	{"webhooks_twice", OWN("<webhooks/>\n<webhooks/>"),
         "calsync.xml:3: <webhooks>: given twice (first at line 2)", NULL},
	{"store_empty_path", OWN("<store path=''/>"),
         "calsync.xml:2: <store path=\"\">: must not be empty", NULL},
};

static const struct bad *current_bad;

static void run_bad(void)
{
	const struct bad *b = current_bad;
	struct cfg_warnings w = {0};
	struct err err = {0};
	struct cfg *cfg = NULL;

	CHECK_EQ(parse(b->xml, false, &cfg, &w, &err), -EINVAL);
	CHECK(cfg == NULL);
	CHECK_EQ(err.code, -EINVAL);
	if (strncmp(err.msg, b->msg, strlen(b->msg)) != 0)
		harness_fail(__FILE__, __LINE__, "%s: message \"%s\" does not start with \"%s\"",
		             b->name, err.msg, b->msg);
	if (b->also != NULL && !contains(err.msg, b->also))
		harness_fail(__FILE__, __LINE__, "%s: message \"%s\" lacks \"%s\"", b->name,
		             err.msg, b->also);
	/* Never echo a secret. */
	CHECK(!contains(err.msg, "hunter2"));
	cfg_free(cfg);
	cfg_warnings_clear(&w);
}

TEST(autodiscover_url_prefers_configuration_then_account_then_mailbox)
{
	char user[] = "svc@acct.example", domain[] = "dom.example",
	     url[] = "https://ad.example/x.svc";
	struct cfg cfg = {0};
	char *u;

	CHECK(cfg_autodiscover_url(&cfg, NULL) == NULL);
	CHECK(cfg_autodiscover_url(&cfg, "no-at-sign") == NULL);
	u = cfg_autodiscover_url(&cfg, "anna@mbx.example");
	CHECK_STREQ(u, "https://autodiscover.mbx.example/autodiscover/autodiscover.svc");
	free(u);
	cfg.user = user;
	u = cfg_autodiscover_url(&cfg, "anna@mbx.example");
	CHECK_STREQ(u, "https://autodiscover.acct.example/autodiscover/autodiscover.svc");
	free(u);
	cfg.autodiscover_domain = domain;
	u = cfg_autodiscover_url(&cfg, NULL);
	CHECK_STREQ(u, "https://autodiscover.dom.example/autodiscover/autodiscover.svc");
	free(u);
	cfg.autodiscover_url = url;
	u = cfg_autodiscover_url(&cfg, "anna@mbx.example");
	CHECK_STREQ(u, "https://ad.example/x.svc");
	free(u);
}

int main(void)
{
	RUN(product_file_every_spelling);
	RUN(minimal_fixture_and_defaults);
	RUN(empty_configuration_is_valid);
	RUN(full_example);
	RUN(every_truncation_of_the_full_example);
	RUN(docs_show_the_examples);
	RUN(unknown_elements_and_attributes_warn);
	RUN(warnings_are_capped);
	RUN(insecure_tls_warns);
	RUN(secret_and_mailbox_files);
	RUN(webhooks);
	RUN(bad_address_in_mailbox_file_names_its_line);
	RUN(load_errors);
	RUN(offline_reads_no_files);
	RUN(versions_agree_with_the_request_writer);
	RUN(autodiscover_url_prefers_configuration_then_account_then_mailbox);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		current_bad = &bad_cases[i];
		harness_run(bad_cases[i].name, run_bad);
	}
	return harness_done();
}
