/* SPDX-License-Identifier: MIT */
/*
 * test-oauth.c: the token provider against an in-process token endpoint (libmicrohttpd) that
 * checks every request for real: the form fields and the client secret, or the JWT client
 * assertion (header and claims decoded with jansson; alg, typ, both thumbprints against the
 * test certificate, aud, iss, sub, nbf, iat, exp against the injected clock, a jti never seen
 * before, and the RS256 or PS256 signature verified with the certificate's public key by
 * OpenSSL). Keys and certificates are made at test time. Also the pure parts: base64url,
 * the form, the answer parser with Entra's error bodies.
 */
#include "http/oauth.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/rsa.h>
#include <uv.h>

#include "base/buf.h"
#include "base/clock.h"
#include "harness.h"
#include "http/http-client.h"
#include "http/oauth-int.h"
#include "httpd.h"
#include "testcert.h"
#include "uvwait.h"

#define WAIT_MS   10000
#define TENANT    "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define CLIENT_ID "11111111-2222-3333-4444-555555555555"
#define SCOPE     "https://graph.microsoft.com/.default"
#define SECRET    "Xy7~s3cr3t.Value+/=&%"
#define MAX_JTI   64

/* -- the injected clock: the real one plus an offset the test moves ------------------------ */

static int64_t clock_offset_ms;

static int64_t test_now_ms(void *ctx)
{
	(void)ctx;
	return clock_now_ms(NULL) + __atomic_load_n(&clock_offset_ms, __ATOMIC_SEQ_CST);
}

static void move_clock(int64_t ms)
{
	__atomic_add_fetch(&clock_offset_ms, ms, __ATOMIC_SEQ_CST);
}

static const struct cs_clock test_clock = {.now_ms = test_now_ms};

/* -- the token endpoint -------------------------------------------------------------------- */

enum fail_mode {
	FAIL_NONE,
	FAIL_STATUS, /* answer fail_status with fail_body */
	FAIL_STALL,  /* hold the answer until released */
};

struct tsrv {
	struct httpd h;
	/* What it expects and does, set by the test (under h.mu). */
	const char *secret; /* NULL: a certificate credential */
	X509 *cert;
	const char *alg;
	char token_url[256];
	int fail_next; /* requests still to fail */
	enum fail_mode mode;
	unsigned fail_status;
	const char *fail_body;
	const char *retry_after;
	bool echo_secret; /* the error description repeats the secret it got */
	int64_t expires_in;
	/* What it saw. */
	int requests;
	int issued;
	int bad;
	char bad_msg[256];
	char jti[MAX_JTI][48];
	int n_jti;
	int64_t at_usec[MAX_JTI]; /* when each request came */
};

static struct tsrv ts;

static void bad(const char *what)
{
	ts.bad++;
	(void)snprintf(ts.bad_msg, sizeof(ts.bad_msg), "%s", what);
}

/* base64url (no padding) into out (NUL-terminated); the length, or -1. */
static int b64url_decode(const char *in, size_t n, unsigned char *out, size_t size)
{
	char tmp[4096];
	size_t k = 0, pad = 0;
	int len;

	if (n + 4 >= sizeof(tmp) || (n * 3) / 4 + 3 >= size)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char ch = in[i];
		if (ch == '+' || ch == '/' || ch == '=')
			return -1; /* base64, not base64url */
		tmp[k++] = ch == '-' ? '+' : ch == '_' ? '/' : ch;
	}
	while (k % 4 != 0) {
		tmp[k++] = '=';
		pad++;
	}
	tmp[k] = '\0';
	len = EVP_DecodeBlock(out, (const unsigned char *)tmp, (int)k);
	if (len < 0)
		return -1;
	len -= (int)pad;
	out[len] = '\0';
	return len;
}

static void thumb(const EVP_MD *md, char *out)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	X509_digest(ts.cert, md, d, &n);
	(void)oauth_base64url(d, n, out);
}

static bool verify_signature(const char *jwt, size_t signed_len, const char *sig_b64)
{
	unsigned char sig[1024];
	int n = b64url_decode(sig_b64, strlen(sig_b64), sig, sizeof(sig));
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	bool ok = false;

	if (n > 0 &&
	    EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, X509_get0_pubkey(ts.cert)) == 1) {
		if (strcmp(ts.alg, "PS256") == 0) {
			EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
			EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
		}
		ok = EVP_DigestVerify(md, sig, (size_t)n, (const unsigned char *)jwt, signed_len) ==
		     1;
	}
	EVP_MD_CTX_free(md);
	return ok;
}

static void check_claims(json_t *c)
{
	int64_t now = test_now_ms(NULL) / 1000;
	json_int_t nbf = json_integer_value(json_object_get(c, "nbf"));
	json_int_t iat = json_integer_value(json_object_get(c, "iat"));
	json_int_t exp = json_integer_value(json_object_get(c, "exp"));
	const char *jti = json_string_value(json_object_get(c, "jti"));

	if (!json_is_string(json_object_get(c, "aud")) ||
	    strcmp(json_string_value(json_object_get(c, "aud")), ts.token_url) != 0)
		bad("aud is not the token endpoint");
	if (!json_is_string(json_object_get(c, "iss")) ||
	    strcmp(json_string_value(json_object_get(c, "iss")), CLIENT_ID) != 0)
		bad("iss is not the client id");
	if (!json_is_string(json_object_get(c, "sub")) ||
	    strcmp(json_string_value(json_object_get(c, "sub")), CLIENT_ID) != 0)
		bad("sub is not the client id");
	if (nbf < now - 5 || nbf > now + 1 || iat != nbf)
		bad("nbf/iat not now");
	if (exp != nbf + OAUTH_ASSERTION_LIFETIME_SEC)
		bad("exp is not nbf + 10 min");
	if (jti == NULL || strlen(jti) != 36)
		bad("no jti, or not a UUID");
	for (int i = 0; jti != NULL && i < ts.n_jti; i++) {
		if (strcmp(ts.jti[i], jti) == 0)
			bad("jti seen before");
	}
	if (jti != NULL && ts.n_jti < MAX_JTI)
		(void)snprintf(ts.jti[ts.n_jti++], sizeof(ts.jti[0]), "%s", jti);
}

/* The assertion, checked for real. */
static void check_assertion(const char *jwt)
{
	const char *dot1 = strchr(jwt, '.');
	const char *dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
	unsigned char text[4096];
	json_t *hdr = NULL, *claims = NULL;
	char x5t[64], x5t256[64];
	int n;

	if (dot2 == NULL || strchr(dot2 + 1, '.') != NULL) {
		bad("the assertion is not three parts");
		return;
	}
	n = b64url_decode(jwt, (size_t)(dot1 - jwt), text, sizeof(text));
	if (n > 0)
		hdr = json_loadb((const char *)text, (size_t)n, 0, NULL);
	n = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), text, sizeof(text));
	if (n > 0)
		claims = json_loadb((const char *)text, (size_t)n, 0, NULL);
	if (hdr == NULL || claims == NULL) {
		bad("header or claims are not base64url JSON");
		goto out;
	}
	thumb(EVP_sha1(), x5t);
	thumb(EVP_sha256(), x5t256);
	if (!json_is_string(json_object_get(hdr, "alg")) ||
	    strcmp(json_string_value(json_object_get(hdr, "alg")), ts.alg) != 0)
		bad("wrong alg");
	if (!json_is_string(json_object_get(hdr, "typ")) ||
	    strcmp(json_string_value(json_object_get(hdr, "typ")), "JWT") != 0)
		bad("typ is not JWT");
	if (!json_is_string(json_object_get(hdr, "x5t")) ||
	    strcmp(json_string_value(json_object_get(hdr, "x5t")), x5t) != 0)
		bad("x5t is not the certificate's SHA-1");
	if (!json_is_string(json_object_get(hdr, "x5t#S256")) ||
	    strcmp(json_string_value(json_object_get(hdr, "x5t#S256")), x5t256) != 0)
		bad("x5t#S256 is not the certificate's SHA-256");
	check_claims(claims);
	if (!verify_signature(jwt, (size_t)(dot2 - jwt), dot2 + 1))
		bad("the signature does not verify with the certificate's key");
out:
	json_decref(hdr);
	json_decref(claims);
}

/* The form's value for name (decoded, owned), or NULL; a field given twice is bad. */
static char *form_value(const char *body, const char *name)
{
	char *copy = strdup(body);
	char *found = NULL;
	char *save = NULL;

	for (char *p = strtok_r(copy, "&", &save); p != NULL; p = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(p, '=');
		if (eq == NULL)
			continue;
		*eq = '\0';
		if (strcmp(p, name) != 0)
			continue;
		if (found != NULL) {
			bad("a field given twice");
			curl_free(found);
		}
		found = curl_easy_unescape(NULL, eq + 1, 0, NULL);
	}
	free(copy);
	if (found == NULL)
		return NULL;
	copy = strdup(found);
	curl_free(found);
	return copy;
}

static void answer_error(struct httpd_resp *resp, unsigned status, const char *body)
{
	resp->status = status;
	resp->content_type = "application/json; charset=utf-8";
	httpd_set_body(resp, body);
}

static void wrong_secret(struct httpd_resp *resp, const char *got)
{
	char body[1024];

	(void)snprintf(
		body, sizeof(body),
		"{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: Invalid "
		"client secret%s%s%s provided. Ensure the secret being sent in the request is "
		"the client secret value.\\r\\nTrace ID: 0a1b\\r\\nCorrelation ID: 2c3d\\r\\n"
		"Timestamp: 2026-01-01 00:00:00Z\",\"error_codes\":[7000215],"
		"\"trace_id\":\"0a1b\",\"correlation_id\":\"2c3d\"}",
		ts.echo_secret ? " '" : "", ts.echo_secret ? got : "", ts.echo_secret ? "'" : "");
	answer_error(resp, 401, body);
}

static void token_handler(void *ctx, const struct httpd_req *r, struct httpd_resp *resp)
{
	char path[128];
	char *f[6];
	const char *names[6] = {
		"grant_type",      "client_id", "scope", "client_secret", "client_assertion_type",
		"client_assertion"};
	char body[512];
	const char *ct = httpd_header(r, "Content-Type");

	(void)ctx;
	(void)snprintf(path, sizeof(path), "/%s/oauth2/v2.0/token", TENANT);
	httpd_lock(&ts.h);
	if (ts.requests < MAX_JTI)
		ts.at_usec[ts.requests] = clock_now_usec();
	ts.requests++;
	if (strcmp(r->method, "POST") != 0 || strcmp(r->url, path) != 0) {
		bad("not a POST to the token path");
		resp->status = 404;
		httpd_unlock(&ts.h);
		return;
	}
	if (ct == NULL || strcmp(ct, "application/x-www-form-urlencoded") != 0)
		bad("not form-encoded");
	for (int i = 0; i < 6; i++)
		f[i] = form_value(r->body, names[i]);
	if (f[0] == NULL || strcmp(f[0], "client_credentials") != 0)
		bad("grant_type");
	if (f[1] == NULL || strcmp(f[1], CLIENT_ID) != 0)
		bad("client_id");
	if (f[2] == NULL || strcmp(f[2], SCOPE) != 0)
		bad("scope");
	if (ts.fail_next > 0) {
		ts.fail_next--;
		if (ts.mode == FAIL_STALL)
			resp->stall_ms = 5000;
		if (ts.mode == FAIL_STATUS) {
			answer_error(resp, ts.fail_status, ts.fail_body);
			if (ts.retry_after != NULL)
				httpd_add_header(resp, "Retry-After", ts.retry_after);
		}
		goto out;
	}
	if (ts.secret != NULL) {
		if (f[4] != NULL || f[5] != NULL)
			bad("an assertion with a secret");
		if (f[3] == NULL || strcmp(f[3], ts.secret) != 0) {
			wrong_secret(resp, f[3] != NULL ? f[3] : "");
			goto out;
		}
	} else {
		if (f[3] != NULL)
			bad("a secret with a certificate");
		if (f[4] == NULL ||
		    strcmp(f[4], "urn:ietf:params:oauth:client-assertion-type:jwt-bearer") != 0)
			bad("client_assertion_type");
		if (f[5] == NULL)
			bad("no client_assertion");
		else
			check_assertion(f[5]);
	}
	ts.issued++;
	(void)snprintf(body, sizeof(body),
	               "{\"token_type\":\"Bearer\",\"expires_in\":%lld,\"ext_expires_in\":%lld,"
	               "\"access_token\":\"eyJ0eXAiOiJKV1Qi.tok-%d.sig\"}",
	               (long long)ts.expires_in, (long long)ts.expires_in, ts.issued);
	resp->content_type = "application/json; charset=utf-8";
	httpd_set_body(resp, body);
out:
	for (int i = 0; i < 6; i++)
		free(f[i]);
	httpd_unlock(&ts.h);
}

/* -- the client side ------------------------------------------------------------------------- */

static uv_loop_t loop;
static struct http_client *http;
static struct testcert cert;

struct got {
	int calls;
	int rc;
	char token[256];
	char msg[256];
};

static void on_token(void *ctx, int rc, const char *token, const struct err *err)
{
	struct got *g = ctx;

	g->calls++;
	g->rc = rc;
	(void)snprintf(g->token, sizeof(g->token), "%s", token != NULL ? token : "");
	(void)snprintf(g->msg, sizeof(g->msg), "%s", err != NULL ? err->msg : "");
}

static char authority[128];

/* Resets the endpoint: it expects the secret (or the certificate when secret is NULL). */
static void reset_server(const char *secret, const char *alg)
{
	httpd_lock(&ts.h);
	ts.secret = secret;
	ts.cert = cert.cert;
	ts.alg = alg;
	ts.fail_next = 0;
	ts.mode = FAIL_NONE;
	ts.retry_after = NULL;
	ts.echo_secret = false;
	ts.expires_in = 3599;
	ts.requests = 0;
	ts.issued = 0;
	ts.bad = 0;
	ts.bad_msg[0] = '\0';
	httpd_unlock(&ts.h);
	__atomic_store_n(&clock_offset_ms, 0, __ATOMIC_SEQ_CST);
}

static struct oauth_opts secret_opts(const char *secret)
{
	return (struct oauth_opts){
		.authority = authority,
		.tenant = TENANT,
		.client_id = CLIENT_ID,
		.scope = SCOPE,
		.client_secret = secret,
		.clock = &test_clock,
		.allow_http = true,
		.backoff_first_usec = 50 * USEC_PER_MSEC,
		.backoff_max_usec = 200 * USEC_PER_MSEC,
	};
}

static struct oauth *new_oauth(const struct oauth_opts *opts)
{
	struct oauth *o = NULL;
	struct err err = {0};

	if (oauth_new(http, opts, &o, &err) != 0) {
		fprintf(stderr, "oauth_new: %s\n", err.msg);
		abort();
	}
	return o;
}

static int server(const int *field)
{
	return httpd_get(&ts.h, field);
}

/* One get that must wait for a request; the callback's result in *g. */
static void get_waiting(struct oauth *o, struct got *g)
{
	const char *tok = NULL;
	struct err err = {0};

	memset(g, 0, sizeof(*g));
	CHECK_EQ(oauth_get(o, on_token, g, &tok, NULL, &err), 0);
	UVWAIT(&loop, WAIT_MS, g->calls > 0);
	CHECK_EQ(g->calls, 1);
}

static void free_oauth(struct oauth *o)
{
	oauth_free(o);
	uvwait_drain(&loop);
}

/* -- pure parts ---------------------------------------------------------------------------- */

TEST(base64url_vectors)
{
	const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	const char *const want[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
	const uint8_t odd[] = {0xfb, 0xff, 0xbf};
	char out[64];

	for (size_t i = 0; i < 7; i++) {
		CHECK_EQ(oauth_base64url((const uint8_t *)in[i], strlen(in[i]), out),
		         strlen(want[i]));
		CHECK_STREQ(out, want[i]);
	}
	/* The two characters base64 and base64url differ in: "+/+/" there, "-_-_" here. */
	CHECK_EQ(oauth_base64url(odd, 3, out), 4);
	CHECK_STREQ(out, "-_-_");
	CHECK_EQ(oauth_base64url(odd, 2, out), 3);
	CHECK_STREQ(out, "-_8");
}

TEST(form_is_encoded_by_libcurl)
{
	struct buf b;

	buf_init(&b, 4096);
	CHECK_EQ(oauth_form(&b, CLIENT_ID, SCOPE, "a+b&c=d/\xc3\xa9 ~", NULL, NULL), 0);
	CHECK_STREQ(b.data, "grant_type=client_credentials&client_id=" CLIENT_ID
	                    "&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
	                    "&client_secret=a%2Bb%26c%3Dd%2F%C3%A9%20~");
	buf_reset(&b);
	CHECK_EQ(oauth_form(&b, CLIENT_ID, SCOPE, NULL, "h.c.s", NULL), 0);
	CHECK(strstr(b.data, "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-"
	                     "assertion-type%3Ajwt-bearer&client_assertion=h.c.s") != NULL);
	CHECK(strstr(b.data, "client_secret") == NULL);
	buf_free(&b);
}

static int parse(long status, const char *body, struct oauth_answer *a, struct err *e)
{
	memset(e, 0, sizeof(*e));
	return oauth_answer_parse(status, body, strlen(body), a, e);
}

TEST(answers_with_a_token)
{
	struct oauth_answer a = {0};
	struct err e;
	static const char ok[] =
		"{\"token_type\":\"Bearer\",\"expires_in\":3599,\"ext_expires_in\":3599,"
		"\"access_token\":\"eyJ0eXAi.eyJhdWQi.c2ln-_\"}";

	CHECK_EQ(parse(200, ok, &a, &e), 0);
	CHECK_STREQ(a.access_token, "eyJ0eXAi.eyJhdWQi.c2ln-_");
	CHECK_EQ(a.expires_in_sec, 3599);
	oauth_answer_clear(&a);
	CHECK(a.access_token == NULL);
	/* expires_in as a string (Entra's v1 endpoint), absent, over a day; "bearer". */
	CHECK_EQ(parse(200,
	               "{\"token_type\":\"bearer\",\"expires_in\":\"60\",\"access_token\":\"t=\"}",
	               &a, &e),
	         0);
	CHECK_EQ(a.expires_in_sec, 60);
	oauth_answer_clear(&a);
	CHECK_EQ(parse(200, "{\"token_type\":\"Bearer\",\"access_token\":\"t\"}", &a, &e), 0);
	CHECK_EQ(a.expires_in_sec, OAUTH_DEFAULT_LIFETIME_SEC);
	oauth_answer_clear(&a);
	CHECK_EQ(parse(200,
	               "{\"token_type\":\"Bearer\",\"expires_in\":999999,\"access_token\":\"t\"}",
	               &a, &e),
	         0);
	CHECK_EQ(a.expires_in_sec, OAUTH_MAX_LIFETIME_SEC);
	oauth_answer_clear(&a);

	/* Not a token. */
	CHECK_EQ(parse(200, "{\"token_type\":\"MAC\",\"access_token\":\"t\"}", &a, &e), -EPROTO);
	CHECK_EQ(parse(200, "{\"token_type\":\"Bearer\"}", &a, &e), -EPROTO);
	CHECK_EQ(parse(200, "{\"token_type\":\"Bearer\",\"access_token\":\"a b\"}", &a, &e),
	         -EPROTO);
	CHECK_EQ(parse(200, "{\"token_type\":\"Bearer\",\"access_token\":\"a\\r\\nX: y\"}", &a, &e),
	         -EPROTO);
	CHECK_EQ(parse(200, "{\"token_type\":\"Bearer\",\"access_token\":\"\"}", &a, &e), -EPROTO);
	CHECK_EQ(parse(200, "{\"token_type\":\"Bearer\",\"access_token\":\"t\",\"expires_in\":0}",
	               &a, &e),
	         -EPROTO);
	CHECK_EQ(parse(200, "{\"token_type\":\"Bearer\",\"access_token\":\"t\",\"expires_in\":1.5}",
	               &a, &e),
	         -EPROTO);
	CHECK_EQ(parse(200,
	               "{\"token_type\":\"Bearer\",\"access_token\":\"a\",\"access_token\":\"b\"}",
	               &a, &e),
	         -EPROTO);
	CHECK_EQ(parse(200, "<html>hello</html>", &a, &e), -EPROTO);
	CHECK_EQ(parse(200, "[1]", &a, &e), -EPROTO);
	CHECK(a.access_token == NULL);
	/* Every truncation of a good answer is refused, none crashes. */
	for (size_t n = 0; n < sizeof(ok) - 1; n++) {
		CHECK_EQ(oauth_answer_parse(200, ok, n, &a, &e), -EPROTO);
		CHECK(a.access_token == NULL);
	}
}

TEST(answers_with_an_error)
{
	struct oauth_answer a = {0};
	struct err e;

	CHECK_EQ(
		parse(401,
	              "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: Invalid "
	              "client secret provided.\\r\\nTrace ID: 1\\r\\nCorrelation ID: 2\","
	              "\"error_codes\":[7000215]}",
	              &a, &e),
		-EACCES);
	CHECK(strstr(e.msg, "HTTP 401") != NULL);
	CHECK(strstr(e.msg, "invalid_client") != NULL);
	CHECK(strstr(e.msg, "AADSTS7000215: Invalid client secret provided.") != NULL);
	CHECK(strstr(e.msg, "administrator") != NULL);
	CHECK(strstr(e.msg, "Trace ID") == NULL); /* the first line only */
	CHECK(oauth_error_is_permanent(e.code));
	/* Tenant not found. */
	CHECK_EQ(parse(400,
	               "{\"error\":\"invalid_request\",\"error_description\":\"AADSTS90002: Tenant "
	               "'x' not found.\",\"error_codes\":[90002]}",
	               &a, &e),
	         -EACCES);
	CHECK(strstr(e.msg, "AADSTS90002: Tenant 'x' not found.") != NULL);
	/* The code from error_codes when the description lacks it. */
	CHECK_EQ(parse(400,
	               "{\"error\":\"invalid_scope\",\"error_description\":\"The scope is bad.\","
	               "\"error_codes\":[1002012]}",
	               &a, &e),
	         -EACCES);
	CHECK(strstr(e.msg, "invalid_scope") != NULL);
	CHECK(strstr(e.msg, "AADSTS1002012: The scope is bad.") != NULL);
	CHECK_EQ(parse(400, "{\"error\":\"unauthorized_client\"}", &a, &e), -EACCES);
	CHECK(strstr(e.msg, "unauthorized_client") != NULL);
	/* Control characters never reach the message. */
	CHECK_EQ(parse(400, "{\"error\":\"invalid_grant\",\"error_description\":\"a\\u001bb\"}", &a,
	               &e),
	         -EACCES);
	CHECK(strchr(e.msg, 0x1b) == NULL);
	/* Transient. */
	CHECK_EQ(parse(429, "{\"error\":\"temporarily_unavailable\"}", &a, &e), -EAGAIN);
	CHECK(!oauth_error_is_permanent(e.code));
	CHECK_EQ(parse(503, "<html>Service Unavailable</html>", &a, &e), -EAGAIN);
	CHECK(strstr(e.msg, "HTTP 503") != NULL);
	CHECK_EQ(parse(500, "{\"error\":\"server_error\",\"error_codes\":[50000]}", &a, &e),
	         -EAGAIN);
	CHECK(strstr(e.msg, "AADSTS50000") != NULL);
	CHECK_EQ(parse(400, "{\"error\":\"temporarily_unavailable\"}", &a, &e), -EAGAIN);
	/* Neither. */
	CHECK_EQ(parse(302, "", &a, &e), -EPROTO);
	CHECK_EQ(parse(404, "", &a, &e), -EACCES);
	CHECK(a.access_token == NULL);
}

static void write_pem_encrypted(const struct testcert *c, char **out)
{
	BIO *b = BIO_new(BIO_s_mem());
	char pass[] = "passphrase";

	if (PEM_write_bio_PrivateKey(b, c->key, EVP_aes_256_cbc(), NULL, 0, NULL, pass) != 1)
		abort();
	*out = testcert_bio_text(b);
}

TEST(options_checked)
{
	struct oauth_opts o = secret_opts(SECRET);
	struct oauth *p = NULL;
	struct err err = {0};
	struct testcert other, small;
	char *encrypted = NULL;

	o.tenant = "evil/../x";
	CHECK_EQ(oauth_new(http, &o, &p, &err), -EINVAL);
	o = secret_opts(NULL);
	CHECK_EQ(oauth_new(http, &o, &p, &err), -EINVAL); /* no credential */
	o = secret_opts(SECRET);
	o.cert_pem = cert.cert_pem;
	o.key_pem = cert.key_pem;
	CHECK_EQ(oauth_new(http, &o, &p, &err), -EINVAL); /* both */
	o = secret_opts(SECRET);
	o.allow_http = false;
	CHECK_EQ(oauth_new(http, &o, &p, &err), -EINVAL); /* an http:// authority */
	CHECK(strstr(err.msg, "https") != NULL);
	o = secret_opts(SECRET);
	o.authority = "https://user:pw@login.example/";
	CHECK_EQ(oauth_new(http, &o, &p, &err), -EINVAL);
	o = secret_opts(SECRET);
	o.scope = "";
	CHECK_EQ(oauth_new(http, &o, &p, &err), -EINVAL);
	o = secret_opts(SECRET);
	o.client_id = NULL;
	CHECK_EQ(oauth_new(http, &o, &p, &err), -EINVAL);

	/* Certificates: a key of another certificate, a small key, an encrypted one, junk. */
	testcert_make(&other, "other", NULL, NULL, 2048);
	testcert_make(&small, "small", NULL, NULL, 1024);
	write_pem_encrypted(&cert, &encrypted);
	o = secret_opts(NULL);
	o.cert_pem = cert.cert_pem;
	o.key_pem = other.key_pem;
	CHECK_EQ(oauth_new(http, &o, &p, &err), -EINVAL);
	CHECK(strstr(err.msg, "does not belong") != NULL);
	o.cert_pem = small.cert_pem;
	o.key_pem = small.key_pem;
	CHECK_EQ(oauth_new(http, &o, &p, &err), -EINVAL);
	CHECK(strstr(err.msg, "2048") != NULL);
	o.cert_pem = cert.cert_pem;
	o.key_pem = encrypted;
	CHECK_EQ(oauth_new(http, &o, &p, &err), -EINVAL); /* and no passphrase prompt */
	CHECK(strstr(err.msg, "encrypted") != NULL);
	o.cert_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
	o.key_pem = cert.key_pem;
	CHECK_EQ(oauth_new(http, &o, &p, &err), -EINVAL);
	o.cert_pem = cert.cert_pem;
	o.key_pem = NULL;
	CHECK_EQ(oauth_new(http, &o, &p, &err), -EINVAL);
	CHECK(p == NULL);
	free(encrypted);
	testcert_free(&other);
	testcert_free(&small);
}

/* -- the provider against the endpoint --------------------------------------------------- */

TEST(secret_ok_and_the_token_is_cached)
{
	struct oauth_opts opts = secret_opts(SECRET);
	struct oauth *o;
	struct oauth_status st;
	struct got g;
	const char *tok = NULL;

	reset_server(SECRET, NULL);
	o = new_oauth(&opts);
	oauth_status(o, &st);
	CHECK(!st.have_token);
	CHECK_EQ(server(&ts.requests), 0); /* nothing before the first get */
	get_waiting(o, &g);
	CHECK_EQ(g.rc, 0);
	CHECK_STREQ(g.token, "eyJ0eXAiOiJKV1Qi.tok-1.sig");
	CHECK_EQ(server(&ts.bad), 0);
	CHECK_STREQ(ts.bad_msg, "");
	/* Cached: many gets, no new request, never a callback. */
	for (int i = 0; i < 100; i++) {
		tok = NULL;
		CHECK_EQ(oauth_get(o, on_token, &g, &tok, NULL, NULL), 1);
		CHECK_STREQ(tok, "eyJ0eXAiOiJKV1Qi.tok-1.sig");
	}
	UVWAIT(&loop, 50, false);
	CHECK_EQ(g.calls, 1);
	CHECK_EQ(server(&ts.requests), 1);
	oauth_status(o, &st);
	CHECK(st.have_token);
	CHECK(!st.refreshing);
	CHECK_EQ(st.refreshes_ok, 1);
	CHECK_EQ(st.refreshes_failed, 0);
	/* 3599 s, renewed when 10% (360 s, more than 5 min) is left. */
	CHECK(st.expires_at_ms - test_now_ms(NULL) > 3590 * 1000);
	CHECK_EQ(st.expires_at_ms - st.refresh_at_ms, 359900);
	free_oauth(o);
}

TEST(concurrent_waiters_share_one_request_and_one_can_cancel)
{
	struct oauth_opts opts = secret_opts(SECRET);
	struct oauth *o;
	struct got g[20];
	struct oauth_waiter *w[20];
	const char *tok = NULL;

	reset_server(SECRET, NULL);
	o = new_oauth(&opts);
	memset(g, 0, sizeof(g));
	for (int i = 0; i < 20; i++)
		CHECK_EQ(oauth_get(o, on_token, &g[i], &tok, &w[i], NULL), 0);
	oauth_waiter_cancel(w[7]);
	oauth_waiter_cancel(NULL);
	UVWAIT(&loop, WAIT_MS, g[19].calls > 0);
	for (int i = 0; i < 20; i++) {
		CHECK_EQ(g[i].calls, i == 7 ? 0 : 1);
		if (i != 7)
			CHECK_STREQ(g[i].token, "eyJ0eXAiOiJKV1Qi.tok-1.sig");
	}
	CHECK_EQ(server(&ts.requests), 1);
	free_oauth(o);
}

static void cert_round(const char *alg, enum oauth_jwt_alg jwt_alg)
{
	struct oauth_opts opts = secret_opts(NULL);
	struct oauth *o;
	struct got g;

	reset_server(NULL, alg);
	opts.cert_pem = cert.cert_pem;
	opts.key_pem = cert.key_pem;
	opts.key_pem_len = strlen(cert.key_pem);
	opts.jwt_alg = jwt_alg;
	o = new_oauth(&opts);
	get_waiting(o, &g);
	CHECK_EQ(g.rc, 0);
	CHECK_STREQ(g.token, "eyJ0eXAiOiJKV1Qi.tok-1.sig");
	/* A second assertion, after the token is dropped, has a new jti. */
	oauth_invalidate(o, "eyJ0eXAiOiJKV1Qi.tok-1.sig");
	get_waiting(o, &g);
	CHECK_EQ(g.rc, 0);
	CHECK_STREQ(g.token, "eyJ0eXAiOiJKV1Qi.tok-2.sig");
	CHECK_EQ(server(&ts.requests), 2);
	CHECK_EQ(server(&ts.n_jti) >= 2, 1);
	CHECK_EQ(server(&ts.bad), 0);
	CHECK_STREQ(ts.bad_msg, "");
	free_oauth(o);
}

TEST(certificate_rs256_ok)
{
	cert_round("RS256", OAUTH_JWT_RS256);
}

TEST(certificate_ps256_ok)
{
	cert_round("PS256", OAUTH_JWT_PS256);
}

TEST(certificate_with_a_wrong_signature_is_caught_by_the_endpoint)
{
	struct testcert other;
	struct oauth_opts opts = secret_opts(NULL);
	struct oauth *o;
	struct got g;

	/* The endpoint knows cert; the client signs with another key and certificate. */
	testcert_make(&other, "other", NULL, NULL, 2048);
	reset_server(NULL, "RS256");
	opts.cert_pem = other.cert_pem;
	opts.key_pem = other.key_pem;
	o = new_oauth(&opts);
	get_waiting(o, &g);
	CHECK_EQ(g.rc, 0);           /* the test endpoint issues, but records what it found */
	CHECK(server(&ts.bad) >= 2); /* both thumbprints and the signature */
	free_oauth(o);
	testcert_free(&other);
}

TEST(wrong_secret_is_permanent_and_never_in_the_message)
{
	struct oauth_opts opts = secret_opts("Wr0ng-Secr3t-Value");
	struct oauth *o;
	struct oauth_status st;
	struct got g;
	struct err err = {0};
	const char *tok = NULL;

	reset_server(SECRET, NULL);
	httpd_lock(&ts.h);
	ts.echo_secret = true; /* a careless endpoint repeats it */
	httpd_unlock(&ts.h);
	opts.backoff_max_usec = 60 * USEC_PER_SEC;
	o = new_oauth(&opts);
	get_waiting(o, &g);
	CHECK_EQ(g.rc, -EACCES);
	CHECK(oauth_error_is_permanent(g.rc));
	CHECK(strstr(g.msg, "invalid_client") != NULL);
	CHECK(strstr(g.msg, "AADSTS7000215") != NULL);
	CHECK(strstr(g.msg, "127.0.0.1") != NULL);
	CHECK(strstr(g.msg, "Wr0ng-Secr3t-Value") == NULL);
	CHECK(strstr(g.msg, "Wr0ng") == NULL);
	CHECK(strstr(g.msg, "secret '***' provided") != NULL); /* scrubbed, not cut off */
	oauth_status(o, &st);
	CHECK(!st.have_token);
	CHECK_EQ(st.refreshes_failed, 1);
	CHECK_EQ(st.consecutive_failures, 1);
	CHECK(st.last_permanent);
	CHECK_EQ(st.last_rc, -EACCES);
	CHECK(strstr(st.last_error, "AADSTS7000215") != NULL);
	CHECK(strstr(st.last_error, "Wr0ng-Secr3t-Value") == NULL);
	/* A permanent failure waits the longest back-off (jittered: at least half of it). */
	CHECK(st.next_attempt_ms - test_now_ms(NULL) >= 29 * 1000);
	/* Until then a get fails at once, with the kept error, and nothing is sent. */
	CHECK_EQ(oauth_get(o, on_token, &g, &tok, NULL, &err), -EACCES);
	CHECK(strstr(err.msg, "AADSTS7000215") != NULL);
	CHECK(strstr(err.msg, "next attempt in") != NULL);
	UVWAIT(&loop, 50, false);
	CHECK_EQ(server(&ts.requests), 1);
	CHECK_EQ(g.calls, 1);
	free_oauth(o);
}

TEST(server_errors_back_off_then_recover)
{
	struct oauth_opts opts = secret_opts(SECRET);
	struct oauth *o;
	struct oauth_status st;
	struct got g;
	const char *tok = NULL;
	struct err err = {0};

	reset_server(SECRET, NULL);
	httpd_lock(&ts.h);
	ts.fail_next = 2;
	ts.mode = FAIL_STATUS;
	ts.fail_status = 500;
	ts.fail_body = "{\"error\":\"server_error\",\"error_description\":\"AADSTS50000: There "
		       "was an error issuing a token.\",\"error_codes\":[50000]}";
	httpd_unlock(&ts.h);
	o = new_oauth(&opts);
	get_waiting(o, &g);
	CHECK_EQ(g.rc, -EAGAIN);
	CHECK(!oauth_error_is_permanent(g.rc));
	CHECK(strstr(g.msg, "AADSTS50000") != NULL);
	oauth_status(o, &st);
	CHECK(!st.last_permanent);
	CHECK(st.next_attempt_ms - test_now_ms(NULL) <= 50);
	/* During the back-off a get fails at once. */
	if (st.next_attempt_ms - test_now_ms(NULL) > 5)
		CHECK_EQ(oauth_get(o, on_token, &g, &tok, NULL, &err), -EAGAIN);
	/* The timer retries: one more failure (a longer back-off), then a token. */
	UVWAIT(&loop, WAIT_MS, server(&ts.issued) == 1);
	CHECK_EQ(server(&ts.requests), 3);
	oauth_status(o, &st);
	CHECK(st.have_token);
	CHECK_EQ(st.refreshes_failed, 2);
	CHECK_EQ(st.refreshes_ok, 1);
	CHECK_EQ(st.consecutive_failures, 0);
	CHECK_EQ(st.last_rc, 0);
	CHECK_STREQ(st.last_error, "");
	/* Each retry waited its back-off: the first at least 25 ms, the second at least 50. */
	CHECK(ts.at_usec[1] - ts.at_usec[0] >= 25 * USEC_PER_MSEC);
	CHECK(ts.at_usec[2] - ts.at_usec[1] >= 50 * USEC_PER_MSEC);
	CHECK_EQ(oauth_get(o, on_token, &g, &tok, NULL, NULL), 1);
	CHECK_STREQ(tok, "eyJ0eXAiOiJKV1Qi.tok-1.sig");
	free_oauth(o);
}

TEST(timeout_is_transient)
{
	struct oauth_opts opts = secret_opts(SECRET);
	struct oauth *o;
	struct got g;

	reset_server(SECRET, NULL);
	httpd_lock(&ts.h);
	ts.fail_next = 1;
	ts.mode = FAIL_STALL;
	httpd_unlock(&ts.h);
	opts.timeout_usec = 200 * USEC_PER_MSEC;
	o = new_oauth(&opts);
	get_waiting(o, &g);
	CHECK_EQ(g.rc, -ETIMEDOUT);
	CHECK(!oauth_error_is_permanent(g.rc));
	CHECK(strstr(g.msg, "127.0.0.1") != NULL);
	httpd_release(&ts.h);
	UVWAIT(&loop, WAIT_MS, server(&ts.issued) == 1);
	CHECK_EQ(server(&ts.issued), 1);
	free_oauth(o);
}

TEST(too_many_requests_honours_retry_after)
{
	struct oauth_opts opts = secret_opts(SECRET);
	struct oauth *o;
	struct oauth_status st;
	struct got g;
	const char *tok = NULL;

	reset_server(SECRET, NULL);
	httpd_lock(&ts.h);
	ts.fail_next = 1;
	ts.mode = FAIL_STATUS;
	ts.fail_status = 429;
	ts.fail_body = "{\"error\":\"temporarily_unavailable\"}";
	ts.retry_after = "1";
	httpd_unlock(&ts.h);
	o = new_oauth(&opts); /* back-off 50..200 ms, but Retry-After says 1 s */
	get_waiting(o, &g);
	CHECK_EQ(g.rc, -EAGAIN);
	oauth_status(o, &st);
	CHECK(st.next_attempt_ms - test_now_ms(NULL) >= 500); /* 1 s from the answer on */
	CHECK_EQ(oauth_get(o, on_token, &g, &tok, NULL, NULL), -EAGAIN);
	UVWAIT(&loop, WAIT_MS, server(&ts.issued) == 1);
	CHECK_EQ(server(&ts.requests), 2);
	CHECK(ts.at_usec[1] - ts.at_usec[0] >= 950 * USEC_PER_MSEC);
	free_oauth(o);
}

TEST(renewed_before_expiry_on_the_injected_clock)
{
	struct oauth_opts opts = secret_opts(SECRET);
	struct oauth *o;
	struct got g;
	const char *tok = NULL;

	reset_server(SECRET, NULL);
	httpd_lock(&ts.h);
	ts.expires_in = 3600;
	httpd_unlock(&ts.h);
	o = new_oauth(&opts);
	get_waiting(o, &g);
	CHECK_STREQ(g.token, "eyJ0eXAiOiJKV1Qi.tok-1.sig");
	/* 3,000 s later: not yet due (renewal at 3,240 s: 10% left). */
	move_clock(3000 * 1000);
	CHECK_EQ(oauth_get(o, on_token, &g, &tok, NULL, NULL), 1);
	UVWAIT(&loop, 50, false);
	CHECK_EQ(server(&ts.requests), 1);
	/* 3,300 s: due; the old token is still handed out while the new one comes. */
	move_clock(300 * 1000);
	CHECK_EQ(oauth_get(o, on_token, &g, &tok, NULL, NULL), 1);
	CHECK_STREQ(tok, "eyJ0eXAiOiJKV1Qi.tok-1.sig");
	UVWAIT(&loop, WAIT_MS, server(&ts.issued) == 2);
	UVWAIT(&loop, WAIT_MS,
	       oauth_get(o, on_token, &g, &tok, NULL, NULL) == 1 &&
	               strcmp(tok, "eyJ0eXAiOiJKV1Qi.tok-2.sig") == 0);
	CHECK_STREQ(tok, "eyJ0eXAiOiJKV1Qi.tok-2.sig");
	CHECK_EQ(server(&ts.requests), 2);
	/* Past the new token's expiry (3,300 + 3,600 s): a get waits for a new one. */
	move_clock(3700 * 1000);
	get_waiting(o, &g);
	CHECK_EQ(g.rc, 0);
	CHECK_STREQ(g.token, "eyJ0eXAiOiJKV1Qi.tok-3.sig");
	CHECK_EQ(g.calls, 1);
	free_oauth(o);
}

TEST(renewal_timer_fires_without_a_get)
{
	struct oauth_opts opts = secret_opts(SECRET);
	struct oauth *o;
	struct got g;
	struct oauth_status st;

	reset_server(SECRET, NULL);
	httpd_lock(&ts.h);
	ts.expires_in = 1; /* renewed after half of it */
	httpd_unlock(&ts.h);
	o = new_oauth(&opts);
	get_waiting(o, &g);
	CHECK_EQ(g.rc, 0);
	UVWAIT(&loop, WAIT_MS, server(&ts.issued) >= 3);
	CHECK(server(&ts.issued) >= 3);
	CHECK(ts.at_usec[1] - ts.at_usec[0] >= 400 * USEC_PER_MSEC);
	oauth_status(o, &st);
	CHECK(st.refreshes_ok >= 2);
	CHECK_EQ(g.calls, 1);
	free_oauth(o);
}

TEST(invalidate_after_401)
{
	struct oauth_opts opts = secret_opts(SECRET);
	struct oauth *o;
	struct got g;
	const char *tok = NULL;

	reset_server(SECRET, NULL);
	o = new_oauth(&opts);
	get_waiting(o, &g);
	CHECK_STREQ(g.token, "eyJ0eXAiOiJKV1Qi.tok-1.sig");
	/* Another token (an old one) changes nothing. */
	oauth_invalidate(o, "eyJ0eXAiOiJKV1Qi.tok-0.sig");
	oauth_invalidate(o, NULL);
	CHECK_EQ(oauth_get(o, on_token, &g, &tok, NULL, NULL), 1);
	CHECK_STREQ(tok, "eyJ0eXAiOiJKV1Qi.tok-1.sig");
	/* The current one is dropped: the next get waits for a new one. */
	oauth_invalidate(o, "eyJ0eXAiOiJKV1Qi.tok-1.sig");
	get_waiting(o, &g);
	CHECK_EQ(g.rc, 0);
	CHECK_STREQ(g.token, "eyJ0eXAiOiJKV1Qi.tok-2.sig");
	/* Late 401s with the first token leave the second alone. */
	oauth_invalidate(o, "eyJ0eXAiOiJKV1Qi.tok-1.sig");
	CHECK_EQ(oauth_get(o, on_token, &g, &tok, NULL, NULL), 1);
	CHECK_STREQ(tok, "eyJ0eXAiOiJKV1Qi.tok-2.sig");
	CHECK_EQ(server(&ts.requests), 2);
	free_oauth(o);
}

struct reentrant {
	struct oauth *o;
	int calls;
	bool free_it;
	bool invalidate_it;
	char token[256];
};

static void on_reentrant(void *ctx, int rc, const char *token, const struct err *err)
{
	struct reentrant *r = ctx;
	const char *tok = NULL;

	(void)err;
	r->calls++;
	(void)snprintf(r->token, sizeof(r->token), "%s", rc == 0 ? token : "");
	if (r->invalidate_it) {
		oauth_invalidate(r->o, token);
		CHECK_EQ(oauth_get(r->o, on_reentrant, r, &tok, NULL, NULL), 0);
		r->invalidate_it = false;
	}
	if (r->free_it)
		oauth_free(r->o);
}

TEST(callbacks_may_invalidate_get_and_free)
{
	struct oauth_opts opts = secret_opts(SECRET);
	struct reentrant r[3];
	const char *tok = NULL;

	/* The first waiter invalidates and asks again; the others still get the token they
	 * waited for; the new request serves the first one again. */
	reset_server(SECRET, NULL);
	memset(r, 0, sizeof(r));
	r[0].o = r[1].o = r[2].o = new_oauth(&opts);
	r[0].invalidate_it = true;
	for (int i = 0; i < 3; i++)
		CHECK_EQ(oauth_get(r[0].o, on_reentrant, &r[i], &tok, NULL, NULL), 0);
	UVWAIT(&loop, WAIT_MS, r[0].calls == 2);
	CHECK_EQ(r[0].calls, 2);
	CHECK_STREQ(r[0].token, "eyJ0eXAiOiJKV1Qi.tok-2.sig");
	CHECK_EQ(r[1].calls, 1);
	CHECK_STREQ(r[1].token, "eyJ0eXAiOiJKV1Qi.tok-1.sig");
	CHECK_EQ(r[2].calls, 1);
	free_oauth(r[0].o);

	/* The first waiter frees the provider: the others are never called. */
	memset(r, 0, sizeof(r));
	r[0].o = r[1].o = r[2].o = new_oauth(&opts);
	r[0].free_it = true;
	for (int i = 0; i < 3; i++)
		CHECK_EQ(oauth_get(r[0].o, on_reentrant, &r[i], &tok, NULL, NULL), 0);
	UVWAIT(&loop, WAIT_MS, r[0].calls == 1);
	UVWAIT(&loop, 50, false);
	CHECK_EQ(r[0].calls, 1);
	CHECK_EQ(r[1].calls + r[2].calls, 0);
	uvwait_drain(&loop);

	/* Freed with a request in flight: no waiter is called. */
	memset(r, 0, sizeof(r));
	r[0].o = new_oauth(&opts);
	CHECK_EQ(oauth_get(r[0].o, on_reentrant, &r[0], &tok, NULL, NULL), 0);
	free_oauth(r[0].o);
	UVWAIT(&loop, 100, false);
	CHECK_EQ(r[0].calls, 0);
}

TEST(https_end_to_end)
{
	struct testcert ca, leaf;
	struct http_client *tls_http = NULL;
	char ca_path[256];
	char auth[128];
	struct http_client_opts ho = {0};
	struct oauth_opts opts = secret_opts(SECRET);
	struct oauth *o = NULL;
	struct got g = {0};
	const char *tok = NULL;

	/* The same endpoint, served over TLS with a certificate the client trusts through its
	 * CA file, and an https:// authority (no allow_http). */
	testcert_make(&ca, "calsync test CA", NULL, NULL, 2048);
	testcert_make(&leaf, "localhost", "DNS:localhost", &ca, 2048);
	testcert_write_temp(ca.cert_pem, "ca.pem", ca_path, sizeof(ca_path));
	httpd_stop(&ts.h);
	httpd_start(&ts.h, leaf.cert_pem, leaf.key_pem, token_handler, NULL);
	reset_server(SECRET, NULL);
	(void)snprintf(auth, sizeof(auth), "https://localhost:%d", ts.h.port);
	(void)snprintf(ts.token_url, sizeof(ts.token_url), "%s/%s/oauth2/v2.0/token", auth, TENANT);
	ho.ca_file = ca_path;
	CHECK_EQ(http_client_new(&loop, &ho, &tls_http, NULL), 0);
	opts.authority = auth;
	opts.allow_http = false;
	CHECK_EQ(oauth_new(tls_http, &opts, &o, NULL), 0);
	CHECK_EQ(oauth_get(o, on_token, &g, &tok, NULL, NULL), 0);
	UVWAIT(&loop, WAIT_MS, g.calls > 0);
	CHECK_EQ(g.rc, 0);
	CHECK_STREQ(g.token, "eyJ0eXAiOiJKV1Qi.tok-1.sig");
	CHECK_EQ(server(&ts.bad), 0);
	oauth_free(o);
	http_client_free(tls_http);
	uvwait_drain(&loop);
	httpd_stop(&ts.h);
	testcert_remove_temp(ca_path);
	testcert_free(&leaf);
	testcert_free(&ca);
}

int main(void)
{
	struct http_client_opts ho = {0};

	uv_loop_init(&loop);
	testcert_make(&cert, "calsync-test-app", NULL, NULL, 2048);
	httpd_start(&ts.h, NULL, NULL, token_handler, NULL);
	(void)snprintf(authority, sizeof(authority), "http://127.0.0.1:%d/", ts.h.port);
	(void)snprintf(ts.token_url, sizeof(ts.token_url),
	               "http://127.0.0.1:%d/%s/oauth2/v2.0/token", ts.h.port, TENANT);
	if (http_client_new(&loop, &ho, &http, NULL) != 0)
		return 1;
	RUN(base64url_vectors);
	RUN(form_is_encoded_by_libcurl);
	RUN(answers_with_a_token);
	RUN(answers_with_an_error);
	RUN(options_checked);
	RUN(secret_ok_and_the_token_is_cached);
	RUN(concurrent_waiters_share_one_request_and_one_can_cancel);
	RUN(certificate_rs256_ok);
	RUN(certificate_ps256_ok);
	RUN(certificate_with_a_wrong_signature_is_caught_by_the_endpoint);
	RUN(wrong_secret_is_permanent_and_never_in_the_message);
	RUN(server_errors_back_off_then_recover);
	RUN(timeout_is_transient);
	RUN(too_many_requests_honours_retry_after);
	RUN(renewed_before_expiry_on_the_injected_clock);
	RUN(renewal_timer_fires_without_a_get);
	RUN(invalidate_after_401);
	RUN(callbacks_may_invalidate_get_and_free);
	RUN(https_end_to_end);
	http_client_free(http);
	uvwait_drain(&loop);
	httpd_stop(&ts.h);
	testcert_free(&cert);
	if (uv_loop_close(&loop) != 0) {
		fprintf(stderr, "the loop still has handles\n");
		return 1;
	}
	return harness_done();
}
