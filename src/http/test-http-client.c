/* SPDX-License-Identifier: MIT */
/*
 * test-http-client.c: the HTTP client against an in-process libmicrohttpd server (its own
 * threads, a port of the kernel's choice): option and request checks, methods and bodies,
 * headers in and out, Retry-After in both forms (and the HTTP-date parser on its own), the body
 * cap, timeouts (a stalled server, a full connection queue), cancel before and after sending,
 * 200 concurrent requests under a connection cap, a refused connection, DNS, freeing from a
 * callback, and TLS against a certificate made at test time: untrusted, trusted through
 * ca_file, a name it does not carry, and the insecure mode.
 */
#include "http/http-client.h"

#include <errno.h>
#include <jansson.h>
#include <sys/socket.h>
#include <uv.h>

#include "base/clock.h"
#include "calsync-config.h"
#include "harness.h"
#include "http/http-date.h"
#include "httpd.h"
#include "testcert.h"
#include "uvwait.h"

#define WAIT_MS 10000

/* -- the server's handler -------------------------------------------------------------------- */

static const char long_www_auth[] =
	"Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/"
	"authorize\", client_id=\"00000003-0000-0000-c000-000000000000\", error=\"invalid_token\", "
	"error_description=\"Lifetime validation failed, the token is expired. Lorem ipsum dolor "
	"sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et "
	"dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco.\"";

/* The fixed calendar time of the injected clock: 2026-01-01T00:00:00Z. */
#define T0_UTC INT64_C(1767225600)

static char retry_date[HTTP_DATE_SIZE];

static const char *arg(const struct httpd_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

static void echo(const struct httpd_req *r, struct httpd_resp *resp)
{
	json_t *o = json_object();
	char *text;
	const char *names[] = {"Authorization", "X-Custom",       "User-Agent",
	                       "Content-Type",  "Content-Length", "Expect"};

	json_object_set_new(o, "method", json_string(r->method));
	json_object_set_new(o, "body", json_stringn(r->body, r->body_len));
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *v = httpd_header(r, names[i]);
		json_object_set_new(o, names[i], v != NULL ? json_string(v) : json_null());
	}
	text = json_dumps(o, JSON_COMPACT);
	httpd_set_body(resp, text);
	free(text);
	json_decref(o);
	resp->content_type = "application/json; charset=utf-8";
}

static void big(const struct httpd_req *r, struct httpd_resp *resp)
{
	const char *n = arg(r, "n");
	size_t len = n != NULL ? strtoul(n, NULL, 10) : 0;

	resp->body = malloc(len + 1);
	if (resp->body == NULL)
		abort();
	memset(resp->body, 'x', len);
	resp->body[len] = '\0';
	resp->body_len = len;
	resp->chunked = arg(r, "chunked") != NULL;
}

static void handler(void *ctx, const struct httpd_req *r, struct httpd_resp *resp)
{
	(void)ctx;
	if (strcmp(r->url, "/echo") == 0) {
		echo(r, resp);
	} else if (strcmp(r->url, "/headers") == 0) {
		httpd_add_header(resp, "Location", "https://example.test/next?page=2");
		httpd_add_header(resp, "request-id", "5e2e8f5e-0001");
		httpd_add_header(resp, "Client-Request-Id", "abc-123");
		httpd_add_header(resp, "WWW-Authenticate", long_www_auth);
		httpd_add_header(resp, "Retry-After", "120");
		resp->status = 401;
		httpd_set_body(resp, "{}");
	} else if (strcmp(r->url, "/retry-date") == 0) {
		httpd_add_header(resp, "Retry-After", retry_date);
		resp->status = 503;
	} else if (strcmp(r->url, "/retry-bad") == 0) {
		httpd_add_header(resp, "Retry-After", "soon");
		resp->status = 429;
	} else if (strcmp(r->url, "/big") == 0) {
		big(r, resp);
	} else if (strcmp(r->url, "/stall") == 0) {
		resp->stall_ms = 5000;
		httpd_set_body(resp, "late");
	} else if (strcmp(r->url, "/status") == 0) {
		resp->status = (unsigned)strtoul(arg(r, "code"), NULL, 10);
		httpd_set_body(resp, "status");
	} else if (strncmp(r->url, "/n/", 3) == 0) {
		httpd_set_body(resp, r->url + 3);
	} else {
		resp->status = 404;
	}
}

/* -- the client side ------------------------------------------------------------------------- */

struct result {
	int calls; /* how often the callback ran */
	int rc;
	long status;
	char body[4096];
	size_t body_len;
	char content_type[256];
	char location[256];
	char request_id[256];
	char client_request_id[256];
	char www_auth[512];
	int64_t retry_after_ms;
	int64_t elapsed_usec;
	char msg[256];
};

static void copy(char *out, size_t size, const char *s)
{
	(void)snprintf(out, size, "%s", s != NULL ? s : "");
}

static void on_done(void *ctx, struct http_call *call, const struct http_response *r)
{
	struct result *res = ctx;

	(void)call;
	res->calls++;
	res->rc = r->rc;
	res->status = r->status;
	res->body_len = r->body_len;
	copy(res->body, sizeof(res->body), r->body);
	copy(res->content_type, sizeof(res->content_type), r->content_type);
	copy(res->location, sizeof(res->location), r->location);
	copy(res->request_id, sizeof(res->request_id), r->request_id);
	copy(res->client_request_id, sizeof(res->client_request_id), r->client_request_id);
	copy(res->www_auth, sizeof(res->www_auth), r->www_authenticate);
	res->retry_after_ms = r->retry_after_ms;
	res->elapsed_usec = r->elapsed_usec;
	copy(res->msg, sizeof(res->msg), r->err.msg);
}

static struct httpd srv;
static uv_loop_t loop;

static struct http_client *new_client(const struct http_client_opts *o)
{
	struct http_client_opts none = {0};
	struct http_client *c = NULL;
	struct err err = {0};

	if (http_client_new(&loop, o != NULL ? o : &none, &c, &err) != 0) {
		fprintf(stderr, "http_client_new: %s\n", err.msg);
		abort();
	}
	return c;
}

static void free_client(struct http_client *c)
{
	http_client_free(c);
	uvwait_drain(&loop);
}

static void url(char *out, size_t size, const char *path)
{
	(void)snprintf(out, size, "http://127.0.0.1:%d%s", srv.port, path);
}

/* Sends req to path and waits for the answer in *res. */
static void roundtrip(struct http_client *c, struct http_request *req, const char *path,
                      struct result *res)
{
	char u[256];
	struct err err = {0};
	struct http_request r = *req;
	int rc;

	url(u, sizeof(u), path);
	r.url = u;
	memset(res, 0, sizeof(*res));
	rc = http_send(c, &r, on_done, res, NULL, &err);
	CHECK_EQ(rc, 0);
	if (rc != 0) {
		fprintf(stderr, "http_send: %s\n", err.msg);
		return;
	}
	UVWAIT(&loop, WAIT_MS, res->calls > 0);
	CHECK_EQ(res->calls, 1);
}

static json_t *parse(const struct result *res)
{
	json_t *j = json_loadb(res->body, res->body_len, JSON_ALLOW_NUL, NULL);

	CHECK(j != NULL);
	return j;
}

static const char *jstr(json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

/* -- tests ----------------------------------------------------------------------------------- */

TEST(options_and_requests_checked)
{
	struct http_client *c = NULL;
	struct http_client_opts bad_ua = {.user_agent = "a\r\nX-Evil: 1"};
	struct http_client_opts neg = {.timeout_usec = -1};
	struct err err = {0};
	struct result res = {0};
	struct http_header crlf = {"X-Custom", "a\r\nX-Evil: 1"};
	struct http_header host = {"Host", "evil"};
	struct http_header badname = {"X Custom", "v"};
	struct http_request req = {.method = HTTP_GET};
	char u[128];

	CHECK_EQ(http_client_new(&loop, &bad_ua, &c, &err), -EINVAL);
	CHECK_EQ(http_client_new(&loop, &neg, &c, &err), -EINVAL);
	CHECK(c == NULL);
	c = new_client(NULL);
	url(u, sizeof(u), "/echo");
	req.url = u;
	req.headers = &crlf;
	req.n_headers = 1;
	CHECK_EQ(http_send(c, &req, on_done, &res, NULL, &err), -EINVAL);
	CHECK(strstr(err.msg, "X-Custom") != NULL);
	req.headers = &host;
	CHECK_EQ(http_send(c, &req, on_done, &res, NULL, &err), -EINVAL);
	req.headers = &badname;
	CHECK_EQ(http_send(c, &req, on_done, &res, NULL, &err), -EINVAL);
	req.n_headers = 0;
	req.bearer_token = "s3cr3t\nX";
	CHECK_EQ(http_send(c, &req, on_done, &res, NULL, &err), -EINVAL);
	CHECK(strstr(err.msg, "s3cr3t") == NULL);
	req.bearer_token = NULL;
	req.body = "x";
	req.body_len = 1;
	CHECK_EQ(http_send(c, &req, on_done, &res, NULL, &err), -EINVAL); /* GET with a body */
	req.body = NULL;
	req.body_len = 0;
	req.url = "http://user:secret@127.0.0.1/";
	CHECK_EQ(http_send(c, &req, on_done, &res, NULL, &err), -EINVAL);
	CHECK(strstr(err.msg, "secret") == NULL);
	req.url = "ftp://127.0.0.1/";
	CHECK_EQ(http_send(c, &req, on_done, &res, NULL, &err), -EINVAL);
	req.url = "not a url";
	CHECK_EQ(http_send(c, &req, on_done, &res, NULL, &err), -EINVAL);
	req.url = u;
	req.method = (enum http_method)99;
	CHECK_EQ(http_send(c, &req, on_done, &res, NULL, &err), -EINVAL);
	/* Nothing was started, so nothing calls back. */
	UVWAIT(&loop, 50, false);
	CHECK_EQ(res.calls, 0);
	CHECK_EQ(http_client_active(c), 0);
	free_client(c);
	CHECK_STREQ(http_method_name(HTTP_PATCH), "PATCH");
}

TEST(methods_and_bodies)
{
	struct http_client *c = new_client(NULL);
	static const char body[] = "{\"subject\":\"caf\xc3\xa9\",\"n\":1}";

	const enum http_method methods[] = {HTTP_POST, HTTP_PATCH, HTTP_PUT, HTTP_DELETE};
	struct http_request req = {.method = HTTP_GET};
	struct result res;
	json_t *j;

	roundtrip(c, &req, "/echo", &res);
	CHECK_EQ(res.rc, 0);
	CHECK_EQ(res.status, 200);
	CHECK_STREQ(res.content_type, "application/json; charset=utf-8");
	j = parse(&res);
	CHECK_STREQ(jstr(j, "method"), "GET");
	CHECK_STREQ(jstr(j, "body"), "");
	CHECK(jstr(j, "Content-Type") == NULL);
	CHECK(jstr(j, "Authorization") == NULL);
	CHECK_STREQ(jstr(j, "User-Agent"), "calsync/" CALSYNC_VERSION);
	json_decref(j);

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		req = (struct http_request){
			.method = methods[i], .body = body, .body_len = sizeof(body) - 1};
		roundtrip(c, &req, "/echo", &res);
		CHECK_EQ(res.rc, 0);
		CHECK_EQ(res.status, 200);
		j = parse(&res);
		CHECK_STREQ(jstr(j, "method"), http_method_name(methods[i]));
		CHECK_STREQ(jstr(j, "body"), body);
		CHECK_STREQ(jstr(j, "Content-Type"), "application/json");
		CHECK(jstr(j, "Expect") == NULL);
		json_decref(j);
	}
	/* A POST without a body sends Content-Length: 0 and no form-encoded type. */
	req = (struct http_request){.method = HTTP_POST};
	roundtrip(c, &req, "/echo", &res);
	j = parse(&res);
	CHECK_STREQ(jstr(j, "method"), "POST");
	CHECK_STREQ(jstr(j, "Content-Length"), "0");
	CHECK(jstr(j, "Content-Type") == NULL);
	json_decref(j);
	/* A DELETE without a body. */
	req = (struct http_request){.method = HTTP_DELETE};
	roundtrip(c, &req, "/echo", &res);
	j = parse(&res);
	CHECK_STREQ(jstr(j, "method"), "DELETE");
	json_decref(j);
	/* Another content type, and a body with a NUL in it. */
	req = (struct http_request){.method = HTTP_POST,
	                            .body = "a=1\0b",
	                            .body_len = 5,
	                            .content_type = "application/x-www-form-urlencoded"};
	roundtrip(c, &req, "/echo", &res);
	j = parse(&res);
	CHECK_STREQ(jstr(j, "Content-Type"), "application/x-www-form-urlencoded");
	CHECK_EQ(json_string_length(json_object_get(j, "body")), 5);
	json_decref(j);
	free_client(c);
}

TEST(statuses_are_not_errors)
{
	struct http_client *c = new_client(NULL);
	struct http_request req = {.method = HTTP_GET};
	struct result res;

	roundtrip(c, &req, "/status?code=404", &res);
	CHECK_EQ(res.rc, 0);
	CHECK_EQ(res.status, 404);
	CHECK_STREQ(res.body, "status");
	roundtrip(c, &req, "/status?code=500", &res);
	CHECK_EQ(res.rc, 0);
	CHECK_EQ(res.status, 500);
	/* A redirect is not followed; its Location is captured. */
	roundtrip(c, &req, "/status?code=302", &res);
	CHECK_EQ(res.rc, 0);
	CHECK_EQ(res.status, 302);
	free_client(c);
}

TEST(headers_in_and_out)
{
	struct http_client_opts o = {.user_agent = "calsync-test/1"};
	struct http_client *c = new_client(&o);
	struct http_header h[] = {{"X-Custom", "v1\tv2"}, {"Accept", "application/json"}};
	struct http_request req = {.method = HTTP_GET,
	                           .headers = h,
	                           .n_headers = 2,
	                           .bearer_token = "eyJ0eXAi.payload.sig"};
	struct result res;
	json_t *j;

	roundtrip(c, &req, "/echo", &res);
	j = parse(&res);
	CHECK_STREQ(jstr(j, "Authorization"), "Bearer eyJ0eXAi.payload.sig");
	CHECK_STREQ(jstr(j, "X-Custom"), "v1\tv2");
	CHECK_STREQ(jstr(j, "User-Agent"), "calsync-test/1");
	json_decref(j);

	req = (struct http_request){.method = HTTP_GET};
	roundtrip(c, &req, "/headers", &res);
	CHECK_EQ(res.rc, 0);
	CHECK_EQ(res.status, 401);
	CHECK_STREQ(res.location, "https://example.test/next?page=2");
	CHECK_STREQ(res.request_id, "5e2e8f5e-0001");
	CHECK_STREQ(res.client_request_id, "abc-123"); /* the name matched case-insensitively */
	CHECK_EQ(strlen(res.www_auth), HTTP_MAX_WWW_AUTH - 1);
	CHECK(strncmp(res.www_auth, long_www_auth, HTTP_MAX_WWW_AUTH - 1) == 0);
	CHECK_EQ(res.retry_after_ms, 120000);
	CHECK(res.elapsed_usec > 0);
	/* Absent headers are NULL. */
	roundtrip(c, &req, "/n/1", &res);
	CHECK_STREQ(res.location, "");
	CHECK_EQ(res.retry_after_ms, -1);
	free_client(c);
}

static int64_t fixed_ms(void *ctx)
{
	(void)ctx;
	return T0_UTC * 1000;
}

TEST(retry_after_http_date_on_the_injected_clock)
{
	struct cs_clock clk = {.now_ms = fixed_ms};
	struct http_client_opts o = {.clock = &clk};
	struct http_client *c = new_client(&o);
	struct http_request req = {.method = HTTP_GET};
	struct result res;

	http_date_format(T0_UTC + 30, retry_date);
	roundtrip(c, &req, "/retry-date", &res);
	CHECK_EQ(res.status, 503);
	CHECK_EQ(res.retry_after_ms, 30000);
	http_date_format(T0_UTC - 30, retry_date);
	roundtrip(c, &req, "/retry-date", &res);
	CHECK_EQ(res.retry_after_ms, 0);
	roundtrip(c, &req, "/retry-bad", &res);
	CHECK_EQ(res.status, 429);
	CHECK_EQ(res.retry_after_ms, -1);
	free_client(c);
}

TEST(http_date_forms)
{
	int64_t utc = 0;
	const int64_t want = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110) */
	const char *const good[] = {"Sun, 06 Nov 1994 08:49:37 GMT",
	                            "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"};
	const char *const bad[] = {
		"Sun, 06 Nov 1994 08:49:37 UTC",
		"Sun, 31 Feb 1994 08:49:37 GMT",
		"Sun, 06 Nov 1994 24:49:37 GMT",
		"Sun, 6 Nov 1994 08:49:37 GMT",
		"sun, 06 Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov 1994 08:49:37 GMT ",
		"Sun Nov 6 08:49:37 1994",
		"Sun, 06 Foo 1994 08:49:37 GMT",
		"",
		"Sun, 29 Feb 1900 00:00:00 GMT",
	};
	char text[HTTP_DATE_SIZE];

	for (size_t i = 0; i < 3; i++) {
		utc = 0;
		CHECK_EQ(http_date_parse(good[i], strlen(good[i]), T0_UTC, &utc), 0);
		CHECK_EQ(utc, want);
		/* Every truncation fails. */
		for (size_t n = 0; n < strlen(good[i]); n++)
			CHECK_EQ(http_date_parse(good[i], n, T0_UTC, &utc), -EINVAL);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(http_date_parse(bad[i], strlen(bad[i]), T0_UTC, &utc), -EINVAL);
	CHECK_EQ(http_date_parse("Sun, 29 Feb 2004 00:00:00 GMT", 29, T0_UTC, &utc), 0);
	/* RFC 850 two-digit years: not more than 50 years ahead of now. */
	CHECK_EQ(http_date_parse("Wednesday, 01-Jan-70 00:00:00 GMT", 33, T0_UTC, &utc), 0);
	CHECK_EQ(utc, INT64_C(3155760000)); /* 2070: 44 years ahead of 2026 */
	CHECK_EQ(http_date_parse("Tuesday, 01-Jan-80 00:00:00 GMT", 31, T0_UTC, &utc), 0);
	CHECK_EQ(utc, INT64_C(315532800)); /* 1980: 2080 would be 54 years ahead */
	http_date_format(want, text);
	CHECK_STREQ(text, "Sun, 06 Nov 1994 08:49:37 GMT");
	http_date_format(0, text);
	CHECK_STREQ(text, "Thu, 01 Jan 1970 00:00:00 GMT");
	/* Format and parse agree over a wide range, a day and a bit apart. */
	for (int64_t t = -INT64_C(2208988800); t < INT64_C(4102444800); t += 90061) {
		http_date_format(t, text);
		CHECK_EQ(http_date_parse(text, strlen(text), T0_UTC, &utc), 0);
		if (utc != t) {
			CHECK_EQ(utc, t);
			break;
		}
	}
	/* Retry-After. */
	CHECK_EQ(http_retry_after_ms("0", 1, 0), 0);
	CHECK_EQ(http_retry_after_ms(" 7 ", 3, 0), 7000);
	CHECK_EQ(http_retry_after_ms("99999999999999999999", 20, 0), HTTP_MAX_RETRY_AFTER_MS);
	CHECK_EQ(http_retry_after_ms("-1", 2, 0), -1);
	CHECK_EQ(http_retry_after_ms("1.5", 3, 0), -1);
	CHECK_EQ(http_retry_after_ms("", 0, 0), -1);
	CHECK_EQ(http_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", 29, want * 1000 - 1500),
	         1500);
	CHECK_EQ(http_retry_after_ms("Sun, 06 Nov 2094 08:49:37 GMT", 29, want * 1000),
	         HTTP_MAX_RETRY_AFTER_MS);
}

TEST(body_cap)
{
	struct http_client_opts o = {.max_response = 1024};
	struct http_client *c = new_client(&o);
	struct http_request req = {.method = HTTP_GET};
	struct result res;

	roundtrip(c, &req, "/big?n=1024", &res);
	CHECK_EQ(res.rc, 0);
	CHECK_EQ(res.body_len, 1024);
	roundtrip(c, &req, "/big?n=1025", &res);
	CHECK_EQ(res.rc, -EMSGSIZE);
	CHECK(strstr(res.msg, "127.0.0.1") != NULL);
	CHECK(strstr(res.msg, "1024") != NULL);
	/* Without Content-Length the cap holds as the body arrives. */
	roundtrip(c, &req, "/big?n=1024&chunked=1", &res);
	CHECK_EQ(res.rc, 0);
	CHECK_EQ(res.body_len, 1024);
	roundtrip(c, &req, "/big?n=300000&chunked=1", &res);
	CHECK_EQ(res.rc, -EMSGSIZE);
	CHECK(strstr(res.msg, "limit") != NULL);
	/* And the client works on after it. */
	roundtrip(c, &req, "/n/7", &res);
	CHECK_EQ(res.rc, 0);
	CHECK_STREQ(res.body, "7");
	free_client(c);
}

TEST(timeout_of_a_stalled_server)
{
	struct http_client_opts o = {.timeout_usec = 300 * USEC_PER_MSEC};
	struct http_client *c = new_client(&o);
	struct http_request req = {.method = HTTP_GET};
	struct result res;

	roundtrip(c, &req, "/stall", &res);
	CHECK_EQ(res.rc, -ETIMEDOUT);
	CHECK(strstr(res.msg, "127.0.0.1") != NULL);
	CHECK(strstr(res.msg, "300 ms") != NULL);
	CHECK(res.elapsed_usec >= 290 * USEC_PER_MSEC);
	CHECK(res.elapsed_usec < 4 * USEC_PER_SEC); /* well before the server's own 5 s */
	/* A request's own timeout beats the client's. */
	req.timeout_usec = 100 * USEC_PER_MSEC;
	roundtrip(c, &req, "/stall", &res);
	CHECK_EQ(res.rc, -ETIMEDOUT);
	CHECK(strstr(res.msg, "100 ms") != NULL);
	httpd_release(&srv);
	free_client(c);
}

TEST(queue_timeout_when_every_connection_is_busy)
{
	struct http_client_opts o = {.max_host_connections = 1, .max_total_connections = 1};
	struct http_client *c = new_client(&o);
	struct http_request stall = {.method = HTTP_GET, .timeout_usec = 5 * USEC_PER_SEC};
	struct http_request quick = {.method = HTTP_GET, .timeout_usec = 200 * USEC_PER_MSEC};
	struct result r1 = {0}, r2 = {0};
	char u1[128], u2[128];
	int before = httpd_get(&srv, &srv.requests);

	url(u1, sizeof(u1), "/stall");
	url(u2, sizeof(u2), "/n/2");
	stall.url = u1;
	quick.url = u2;
	CHECK_EQ(http_send(c, &stall, on_done, &r1, NULL, NULL), 0);
	UVWAIT(&loop, WAIT_MS, httpd_get(&srv, &srv.stalled) == 1);
	CHECK_EQ(http_send(c, &quick, on_done, &r2, NULL, NULL), 0);
	UVWAIT(&loop, WAIT_MS, r2.calls > 0);
	CHECK_EQ(r2.rc, -ETIMEDOUT);
	CHECK(strstr(r2.msg, "no connection free") != NULL);
	CHECK_EQ(r1.calls, 0);
	httpd_release(&srv);
	UVWAIT(&loop, WAIT_MS, r1.calls > 0);
	CHECK_EQ(r1.rc, 0);
	CHECK_STREQ(r1.body, "late");
	/* The quick one never reached the server. */
	CHECK_EQ(httpd_get(&srv, &srv.requests) - before, 1);
	free_client(c);
}

TEST(cancel_before_and_after_sending)
{
	struct http_client *c = new_client(NULL);
	struct http_request req = {.method = HTTP_GET};
	struct http_call *call = NULL;
	struct result r1 = {0}, r2 = {0}, r3;
	char u[128];
	int before = httpd_get(&srv, &srv.requests);

	/* Before: nothing goes out until the loop runs. */
	url(u, sizeof(u), "/n/1");
	req.url = u;
	CHECK_EQ(http_send(c, &req, on_done, &r1, &call, NULL), 0);
	CHECK_EQ(http_client_active(c), 1);
	http_call_cancel(call);
	CHECK_EQ(http_client_active(c), 0);
	roundtrip(c, &req, "/n/3", &r3);
	CHECK_EQ(r3.rc, 0);
	CHECK_EQ(r1.calls, 0);
	CHECK_EQ(httpd_get(&srv, &srv.requests) - before, 1);

	/* After: the server holds the request when it is cancelled. */
	url(u, sizeof(u), "/stall");
	call = NULL;
	CHECK_EQ(http_send(c, &req, on_done, &r2, &call, NULL), 0);
	UVWAIT(&loop, WAIT_MS, httpd_get(&srv, &srv.stalled) == 1);
	CHECK_EQ(httpd_get(&srv, &srv.stalled), 1);
	http_call_cancel(call);
	httpd_release(&srv);
	roundtrip(c, &req, "/n/4", &r3);
	CHECK_EQ(r3.rc, 0);
	CHECK_STREQ(r3.body, "4");
	UVWAIT(&loop, 100, false);
	CHECK_EQ(r2.calls, 0);
	http_call_cancel(NULL);
	free_client(c);
}

#define N_CONCURRENT 200

struct many {
	int done;
	int ok;
	int wrong;
};

struct many_item {
	struct many *m;
	int i;
};

static void on_many(void *ctx, struct http_call *call, const struct http_response *r)
{
	struct many_item *it = ctx;
	char want[16];

	(void)call;
	it->m->done++;
	(void)snprintf(want, sizeof(want), "%d", it->i);
	if (r->rc == 0 && r->status == 200 && strcmp(r->body, want) == 0)
		it->m->ok++;
	else
		it->m->wrong++;
}

TEST(many_concurrent_requests_under_a_connection_cap)
{
	struct http_client_opts o = {.max_host_connections = 4, .max_total_connections = 8};
	struct http_client *c = new_client(&o);
	static struct many_item items[N_CONCURRENT];
	struct many m = {0};
	char u[128];
	int conns_before;

	httpd_lock(&srv);
	srv.conns_max = srv.conns_open;
	srv.max_in_flight = 0;
	conns_before = srv.conns_open;
	httpd_unlock(&srv);
	for (int i = 0; i < N_CONCURRENT; i++) {
		struct http_request req = {.method = HTTP_GET, .url = u};
		items[i] = (struct many_item){.m = &m, .i = i};
		(void)snprintf(u, sizeof(u), "http://127.0.0.1:%d/n/%d", srv.port, i);
		CHECK_EQ(http_send(c, &req, on_many, &items[i], NULL, NULL), 0);
	}
	CHECK_EQ(http_client_active(c), N_CONCURRENT);
	UVWAIT(&loop, 30000, m.done == N_CONCURRENT);
	CHECK_EQ(m.done, N_CONCURRENT);
	CHECK_EQ(m.ok, N_CONCURRENT);
	CHECK_EQ(m.wrong, 0);
	CHECK(httpd_get(&srv, &srv.conns_max) - conns_before <= 4);
	CHECK(httpd_get(&srv, &srv.max_in_flight) <= 4);
	CHECK(httpd_get(&srv, &srv.max_in_flight) >= 1);
	free_client(c);
}

TEST(max_requests_bounds_the_queue)
{
	struct http_client_opts o = {.max_requests = 2};
	struct http_client *c = new_client(&o);
	struct http_request req = {.method = HTTP_GET};
	struct result r[3];
	struct err err = {0};
	char u[128];

	memset(r, 0, sizeof(r));
	url(u, sizeof(u), "/n/5");
	req.url = u;
	CHECK_EQ(http_send(c, &req, on_done, &r[0], NULL, NULL), 0);
	CHECK_EQ(http_send(c, &req, on_done, &r[1], NULL, NULL), 0);
	CHECK_EQ(http_send(c, &req, on_done, &r[2], NULL, &err), -ENOBUFS);
	UVWAIT(&loop, WAIT_MS, r[0].calls + r[1].calls == 2);
	CHECK_EQ(r[0].rc + r[1].rc, 0);
	CHECK_EQ(r[2].calls, 0);
	CHECK_EQ(http_send(c, &req, on_done, &r[2], NULL, NULL), 0);
	UVWAIT(&loop, WAIT_MS, r[2].calls == 1);
	CHECK_EQ(r[2].rc, 0);
	free_client(c);
}

TEST(connection_refused_and_dns)
{
	struct http_client_opts o = {.connect_timeout_usec = 20 * USEC_PER_SEC};
	struct http_client *c = new_client(&o);
	struct http_request req = {.method = HTTP_GET};
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	struct result res = {0};
	char u[128];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	/* A port that was free a moment ago and has no listener. */
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	CHECK_EQ(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	(void)snprintf(u, sizeof(u), "http://127.0.0.1:%d/", ntohs(sa.sin_port));
	req.url = u;
	CHECK_EQ(http_send(c, &req, on_done, &res, NULL, NULL), 0);
	UVWAIT(&loop, WAIT_MS, res.calls > 0);
	CHECK_EQ(res.rc, -ECONNREFUSED);
	CHECK_EQ(res.status, 0);
	CHECK(strstr(res.msg, "127.0.0.1") != NULL);
	CHECK(strstr(res.msg, "connect") != NULL);

	/* .invalid never resolves (RFC 6761). */
	memset(&res, 0, sizeof(res));
	req.url = "https://calsync-test.invalid/";
	CHECK_EQ(http_send(c, &req, on_done, &res, NULL, NULL), 0);
	UVWAIT(&loop, 30000, res.calls > 0);
	CHECK_EQ(res.rc, -EHOSTUNREACH);
	CHECK(strstr(res.msg, "calsync-test.invalid") != NULL);
	CHECK(strstr(res.msg, "DNS") != NULL);
	free_client(c);
}

struct chain {
	struct http_client *c;
	int done;
	int first_rc;
	char url[128];
	bool free_in_callback;
};

static void on_chain(void *ctx, struct http_call *call, const struct http_response *r)
{
	struct chain *ch = ctx;
	struct http_request req = {.method = HTTP_GET, .url = ch->url};

	(void)call;
	if (ch->done++ == 0)
		ch->first_rc = r->rc;
	if (ch->free_in_callback) {
		http_client_free(ch->c);
		/* The client is going: nothing new starts. */
		CHECK_EQ(http_send(ch->c, &req, on_chain, ch, NULL, NULL), -EIO);
		return;
	}
	if (ch->done < 3)
		CHECK_EQ(http_send(ch->c, &req, on_chain, ch, NULL, NULL), 0);
}

TEST(send_and_free_from_a_callback)
{
	struct chain ch = {0};
	struct http_request req = {.method = HTTP_GET};

	ch.c = new_client(NULL);
	url(ch.url, sizeof(ch.url), "/n/9");
	req.url = ch.url;
	CHECK_EQ(http_send(ch.c, &req, on_chain, &ch, NULL, NULL), 0);
	UVWAIT(&loop, WAIT_MS, ch.done == 3);
	CHECK_EQ(ch.done, 3);
	CHECK_EQ(ch.first_rc, 0);
	free_client(ch.c);

	/* Three requests; the first callback frees the client; the others never call back. */
	memset(&ch, 0, sizeof(ch));
	ch.c = new_client(NULL);
	ch.free_in_callback = true;
	url(ch.url, sizeof(ch.url), "/n/9");
	req.url = ch.url;
	for (int i = 0; i < 3; i++)
		CHECK_EQ(http_send(ch.c, &req, on_chain, &ch, NULL, NULL), 0);
	UVWAIT(&loop, WAIT_MS, ch.done > 0);
	UVWAIT(&loop, 200, false);
	CHECK_EQ(ch.done, 1);
	uvwait_drain(&loop);

	/* Freed with requests in flight (the server holds them): no callback either. */
	memset(&ch, 0, sizeof(ch));
	ch.c = new_client(NULL);
	req.url = ch.url;
	url(ch.url, sizeof(ch.url), "/stall");
	for (int i = 0; i < 3; i++)
		CHECK_EQ(http_send(ch.c, &req, on_chain, &ch, NULL, NULL), 0);
	UVWAIT(&loop, WAIT_MS, httpd_get(&srv, &srv.stalled) == 3);
	CHECK_EQ(httpd_get(&srv, &srv.stalled), 3);
	free_client(ch.c);
	httpd_release(&srv);
	UVWAIT(&loop, 100, false);
	CHECK_EQ(ch.done, 0);
}

/* -- TLS ------------------------------------------------------------------------------------- */

TEST(tls_verification)
{
	struct testcert ca, leaf;
	struct httpd tls;
	char ca_path[256];
	char u[128];
	struct http_request req = {.method = HTTP_GET, .url = u};
	struct result res = {0};
	struct http_client *c;
	struct http_client_opts with_ca = {0};
	struct http_client_opts insecure = {.insecure_skip_tls_verify = true};
	struct http_client_opts missing = {.ca_file = "/nonexistent/ca.pem"};

	/* Debian's libmicrohttpd is built with GnuTLS; without it this test must fail, not
	 * pass quietly. */
	CHECK(MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES);
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		return;
	testcert_make(&ca, "calsync test CA", NULL, NULL, 2048);
	testcert_make(&leaf, "localhost", "DNS:localhost", &ca, 2048);
	testcert_write_temp(ca.cert_pem, "ca.pem", ca_path, sizeof(ca_path));
	with_ca.ca_file = ca_path;
	httpd_start(&tls, leaf.cert_pem, leaf.key_pem, handler, NULL);

	/* Untrusted: the system's store does not know our CA. */
	c = new_client(NULL);
	(void)snprintf(u, sizeof(u), "https://localhost:%d/n/1", tls.port);
	CHECK_EQ(http_send(c, &req, on_done, &res, NULL, NULL), 0);
	UVWAIT(&loop, WAIT_MS, res.calls > 0);
	CHECK_EQ(res.rc, -EKEYREJECTED);
	CHECK(strstr(res.msg, "localhost") != NULL);
	CHECK(strstr(res.msg, "TLS") != NULL);
	free_client(c);

	/* Trusted through ca_file. */
	c = new_client(&with_ca);
	memset(&res, 0, sizeof(res));
	CHECK_EQ(http_send(c, &req, on_done, &res, NULL, NULL), 0);
	UVWAIT(&loop, WAIT_MS, res.calls > 0);
	CHECK_EQ(res.rc, 0);
	CHECK_EQ(res.status, 200);
	CHECK_STREQ(res.body, "1");
	/* A stalled request does not hold back another to the same host (over TLS the client
	 * may wait for a connection that could multiplex, but not for a busy HTTP/1.1 one). */
	{
		struct result slow = {0};
		(void)snprintf(u, sizeof(u), "https://localhost:%d/stall", tls.port);
		CHECK_EQ(http_send(c, &req, on_done, &slow, NULL, NULL), 0);
		UVWAIT(&loop, WAIT_MS, httpd_get(&tls, &tls.stalled) == 1);
		(void)snprintf(u, sizeof(u), "https://localhost:%d/n/3", tls.port);
		memset(&res, 0, sizeof(res));
		CHECK_EQ(http_send(c, &req, on_done, &res, NULL, NULL), 0);
		UVWAIT(&loop, WAIT_MS, res.calls > 0);
		CHECK_EQ(res.rc, 0);
		CHECK_STREQ(res.body, "3");
		CHECK_EQ(slow.calls, 0);
		httpd_release(&tls);
		UVWAIT(&loop, WAIT_MS, slow.calls > 0);
		CHECK_STREQ(slow.body, "late");
	}
	/* The right CA, but a name the certificate does not carry. */
	(void)snprintf(u, sizeof(u), "https://127.0.0.1:%d/n/2", tls.port);
	memset(&res, 0, sizeof(res));
	CHECK_EQ(http_send(c, &req, on_done, &res, NULL, NULL), 0);
	UVWAIT(&loop, WAIT_MS, res.calls > 0);
	CHECK_EQ(res.rc, -EKEYREJECTED);
	free_client(c);

	/* The insecure mode takes any certificate. */
	c = new_client(&insecure);
	memset(&res, 0, sizeof(res));
	CHECK_EQ(http_send(c, &req, on_done, &res, NULL, NULL), 0);
	UVWAIT(&loop, WAIT_MS, res.calls > 0);
	CHECK_EQ(res.rc, 0);
	CHECK_STREQ(res.body, "2");
	free_client(c);

	/* A CA file that cannot be read. */
	c = new_client(&missing);
	memset(&res, 0, sizeof(res));
	CHECK_EQ(http_send(c, &req, on_done, &res, NULL, NULL), 0);
	UVWAIT(&loop, WAIT_MS, res.calls > 0);
	CHECK_EQ(res.rc, -ENOENT);
	free_client(c);

	httpd_stop(&tls);
	testcert_remove_temp(ca_path);
	testcert_free(&leaf);
	testcert_free(&ca);
}

int main(void)
{
	uv_loop_init(&loop);
	httpd_start(&srv, NULL, NULL, handler, NULL);
	printf("# HTTP/2 in libcurl: %s; libmicrohttpd TLS: %s\n",
	       http_client_has_http2() ? "yes" : "no",
	       MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES ? "yes" : "no");
	RUN(options_and_requests_checked);
	RUN(methods_and_bodies);
	RUN(statuses_are_not_errors);
	RUN(headers_in_and_out);
	RUN(retry_after_http_date_on_the_injected_clock);
	RUN(http_date_forms);
	RUN(body_cap);
	RUN(timeout_of_a_stalled_server);
	RUN(queue_timeout_when_every_connection_is_busy);
	RUN(cancel_before_and_after_sending);
	RUN(many_concurrent_requests_under_a_connection_cap);
	RUN(max_requests_bounds_the_queue);
	RUN(connection_refused_and_dns);
	RUN(send_and_free_from_a_callback);
	RUN(tls_verification);
	httpd_stop(&srv);
	uvwait_drain(&loop);
	if (uv_loop_close(&loop) != 0) {
		fprintf(stderr, "the loop still has handles\n");
		return 1;
	}
	return harness_done();
}
