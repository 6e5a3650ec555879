/* SPDX-License-Identifier: MIT */
/*
 * test-ews-transport.c: the transport without a real server. Option and header validation,
 * and, against a tiny HTTP/1.1 server on the same libuv loop (canned answers, whole or in timed
 * pieces), what the transport sends and captures, keep-alive, the size limit, streaming with a
 * cancel and a post from inside the chunk callback, timeouts, the HTTP status mapping, and the
 * Retry-After header as the verdict reads it. The end-to-end tests against ews-sim are in
 * tests/ews/test_transport.py.
 */
#include "ews/ews-transport.h"

#include <errno.h>
#include <strings.h>
#include <uv.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "ews/ews-response.h"
#include "ews/ews-verdict.h"
#include "harness.h"

/* -- a tiny HTTP server on the test's loop --------------------------------------------------- */

struct srv;

struct srv_conn {
	uv_tcp_t tcp;
	struct srv *srv;
	struct buf in;
	bool closing;
	struct srv_conn *next;
};

struct srv {
	uv_loop_t *loop;
	uv_tcp_t listener;
	int port;
	int accepted;
	int requests;
	int eofs; /* connections the client closed */
	char last_request[8192];
	/* What to answer: pieces written PIECE_MS apart (to the first request only when
	 * pieces_once), else one whole response, else nothing. */
	bool pieces_once;
	const char *response;
	const char *const *pieces;
	size_t n_pieces;
	const char *const *cur; /* the pieces being written */
	size_t n_cur;
	size_t next_piece;
	uv_timer_t piece_timer;
	struct srv_conn *streaming;
	struct srv_conn *conns;
};

#define PIECE_MS 5

/* The first case-insensitive occurrence of needle in the NUL-terminated s, or NULL. */
static const char *find_ci(const char *s, const char *needle)
{
	size_t n = strlen(needle);

	for (; *s != '\0'; s++) {
		if (strncasecmp(s, needle, n) == 0)
			return s;
	}
	return NULL;
}

static void conn_closed(uv_handle_t *h)
{
	struct srv_conn *c = h->data;

	buf_free(&c->in);
	free(c);
}

static void conn_close(struct srv_conn *c)
{
	struct srv_conn **p = &c->srv->conns;

	if (c->closing)
		return;
	c->closing = true;
	while (*p != c)
		p = &(*p)->next;
	*p = c->next;
	if (c->srv->streaming == c)
		c->srv->streaming = NULL;
	uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void write_done(uv_write_t *w, int status)
{
	(void)status;
	free(w->data);
	free(w);
}

static void conn_write(struct srv_conn *c, const char *s)
{
	uv_write_t *w;
	uv_buf_t b;

	if (c->closing)
		return;
	w = xcalloc(1, sizeof(*w));
	w->data = xstrdup(s);
	b = uv_buf_init(w->data, (unsigned)strlen(s));
	if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, write_done) < 0) {
		free(w->data);
		free(w);
	}
}

static void on_piece(uv_timer_t *timer)
{
	struct srv *s = timer->data;

	if (s->streaming == NULL || s->next_piece >= s->n_cur) {
		s->streaming = NULL;
		uv_timer_stop(timer);
		return;
	}
	conn_write(s->streaming, s->cur[s->next_piece++]);
}

/* Answers every whole request (headers plus Content-Length bytes) in c->in. */
static void serve_requests(struct srv_conn *c)
{
	struct srv *s = c->srv;

	for (;;) {
		const char *end = c->in.len > 0 ? strstr(c->in.data, "\r\n\r\n") : NULL;
		const char *cl;
		size_t head, body = 0, total;

		if (end == NULL)
			return;
		head = (size_t)(end - c->in.data) + 4;
		cl = find_ci(c->in.data, "\r\nContent-Length:");
		if (cl != NULL && cl < end)
			body = strtoul(cl + 17, NULL, 10);
		total = head + body;
		if (c->in.len < total)
			return;
		s->requests++;
		(void)snprintf(s->last_request, sizeof(s->last_request), "%.*s", (int)total,
		               c->in.data);
		memmove(c->in.data, c->in.data + total, c->in.len - total);
		c->in.len -= total;
		c->in.data[c->in.len] = '\0';
		if (s->pieces != NULL && s->streaming == NULL) {
			s->cur = s->pieces;
			s->n_cur = s->n_pieces;
			if (s->pieces_once)
				s->pieces = NULL;
			s->streaming = c;
			s->next_piece = 0;
			uv_timer_start(&s->piece_timer, on_piece, PIECE_MS, PIECE_MS);
		} else if (s->response != NULL) {
			conn_write(c, s->response);
		}
	}
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	(void)h;
	b->base = xmalloc(suggested);
	b->len = suggested;
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *b)
{
	struct srv_conn *c = stream->data;

	if (n < 0) {
		c->srv->eofs++;
		conn_close(c);
	} else if (n > 0 && buf_append(&c->in, b->base, (size_t)n, NULL) == 0) {
		serve_requests(c);
	}
	free(b->base);
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct srv *s = listener->data;
	struct srv_conn *c;

	if (status < 0)
		return;
	c = xcalloc(1, sizeof(*c));
	c->srv = s;
	buf_init(&c->in, 1u << 20);
	uv_tcp_init(s->loop, &c->tcp);
	c->tcp.data = c;
	c->next = s->conns;
	s->conns = c;
	if (uv_accept(listener, (uv_stream_t *)&c->tcp) == 0) {
		s->accepted++;
		uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
	} else {
		conn_close(c);
	}
}

static void srv_start(struct srv *s, uv_loop_t *loop)
{
	struct sockaddr_in addr;
	struct sockaddr_storage bound;
	int len = sizeof(bound);

	*s = (struct srv){.loop = loop};
	uv_ip4_addr("127.0.0.1", 0, &addr);
	uv_tcp_init(loop, &s->listener);
	s->listener.data = s;
	CHECK_EQ(uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0), 0);
	CHECK_EQ(uv_listen((uv_stream_t *)&s->listener, 16, on_connection), 0);
	uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
	s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
	uv_timer_init(loop, &s->piece_timer);
	s->piece_timer.data = s;
}

static void srv_stop(struct srv *s)
{
	while (s->conns != NULL)
		conn_close(s->conns);
	uv_close((uv_handle_t *)&s->listener, NULL);
	uv_close((uv_handle_t *)&s->piece_timer, NULL);
}

/* -- fixture --------------------------------------------------------------------------------- */

struct fx {
	uv_loop_t loop;
	uv_timer_t guard;
	struct srv srv;
	struct ews_transport *t;
	char url[128];
	int done_calls;
	int stop_after; /* done callbacks before the loop stops */
	struct ews_result last;
	char body[4096];
	char cookie[EWS_MAX_HEADER_VALUE];
	char request_id[EWS_MAX_HEADER_VALUE];
	char echoed[EWS_MAX_HEADER_VALUE];
	char be_server[EWS_MAX_HEADER_VALUE];
	char retry_after[EWS_MAX_HEADER_VALUE];
	/* streaming */
	struct buf chunks;
	int n_chunks;
	struct ews_call *call;
	bool cancel_in_chunk;
	bool post_in_chunk;
	bool timed_out;
};

static void on_guard(uv_timer_t *t)
{
	struct fx *f = t->data;

	f->timed_out = true;
	uv_stop(&f->loop);
}

static void fx_init(struct fx *f, const struct ews_transport_opts *o)
{
	struct err err = {0};
	struct ews_transport_opts none = {0};

	memset(f, 0, sizeof(*f));
	uv_loop_init(&f->loop);
	srv_start(&f->srv, &f->loop);
	uv_timer_init(&f->loop, &f->guard);
	f->guard.data = f;
	buf_init(&f->chunks, 1u << 20);
	(void)snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/EWS/Exchange.asmx",
	               f->srv.port);
	CHECK_EQ(ews_transport_new(&f->loop, o != NULL ? o : &none, &f->t, &err), 0);
	f->stop_after = 1;
}

/* Runs the loop until stop_after done callbacks ran, or 10 s passed. */
static void fx_run(struct fx *f)
{
	uv_timer_start(&f->guard, on_guard, 10000, 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	uv_timer_stop(&f->guard);
	CHECK(!f->timed_out);
}

static void fx_fini(struct fx *f)
{
	ews_transport_free(f->t);
	srv_stop(&f->srv);
	uv_close((uv_handle_t *)&f->guard, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	CHECK_EQ(uv_loop_close(&f->loop), 0);
	buf_free(&f->chunks);
}

static void copy_opt(char *out, size_t size, const char *s)
{
	(void)snprintf(out, size, "%s", s != NULL ? s : "");
}

static void on_done(void *ctx, struct ews_call *call, const struct ews_result *r)
{
	struct fx *f = ctx;

	(void)call;
	f->done_calls++;
	f->last = *r;
	/* The strings are borrowed: keep copies for the checks. */
	copy_opt(f->body, sizeof(f->body), r->body);
	copy_opt(f->cookie, sizeof(f->cookie), r->backend_cookie);
	copy_opt(f->request_id, sizeof(f->request_id), r->request_id);
	copy_opt(f->echoed, sizeof(f->echoed), r->echoed_request_id);
	copy_opt(f->be_server, sizeof(f->be_server), r->be_server);
	copy_opt(f->retry_after, sizeof(f->retry_after), r->retry_after);
	f->last.body = f->body;
	/* NULL stays NULL, so that the checks can tell "absent" from "empty". */
	f->last.retry_after = r->retry_after != NULL ? f->retry_after : NULL;
	f->last.client_request_id = NULL;
	if (f->done_calls >= f->stop_after)
		uv_stop(&f->loop);
}

static int post(struct fx *f, const struct ews_call_opts *o, const char *body)
{
	struct err err = {0};
	struct ews_call_opts def = {.url = f->url};

	return ews_transport_post(f->t, o != NULL ? o : &def, body, strlen(body), on_done, f,
	                          &f->call, &err);
}

static const char OK_XML[] = "HTTP/1.1 200 OK\r\n"
			     "Content-Type: text/xml; charset=utf-8\r\n"
			     "Set-Cookie: exchangecookie=abc; path=/\r\n"
			     "Set-Cookie: X-BackEndOverrideCookie=exch01.contoso.example~42; "
			     "path=/; HttpOnly\r\n"
			     "request-id: 11111111-2222-3333-4444-555555555555\r\n"
			     "client-request-id: echo-1\r\n"
			     "X-BEServer: EXCH01\r\n"
			     "Content-Length: 9\r\n"
			     "\r\n"
			     "<x>ok</x>";

/* -- tests ----------------------------------------------------------------------------------- */

TEST(auth_names)
{
	enum ews_auth a = EWS_AUTH_NONE;
	struct err err = {0};

	for (int i = EWS_AUTH_NONE; i <= EWS_AUTH_BEARER; i++) {
		const char *n = ews_auth_name((enum ews_auth)i);
		CHECK_EQ(ews_auth_from_name(n, strlen(n), &a, NULL), 0);
		CHECK_EQ(a, i);
	}
	CHECK_EQ(ews_auth_from_name("kerberos", 8, &a, &err), -EINVAL);
	CHECK(strstr(err.msg, "kerberos") != NULL);
}

TEST(new_checks_its_options)
{
	uv_loop_t loop;
	struct ews_transport *t = NULL;
	struct err err = {0};
	struct ews_transport_opts ntlm = {.auth = EWS_AUTH_NTLM, .password = "pw"};
	struct ews_transport_opts bearer = {.auth = EWS_AUTH_BEARER, .token = ""};
	struct ews_transport_opts bad_pw = {
		.auth = EWS_AUTH_BASIC, .user = "u", .password = "se\ncret"};
	struct ews_transport_opts bad_ua = {.user_agent = "x\r\nEvil: 1"};

	uv_loop_init(&loop);
	CHECK_EQ(ews_transport_new(&loop, &ntlm, &t, &err), -EINVAL);
	CHECK(strstr(err.msg, "ntlm needs a user") != NULL);
	CHECK_EQ(ews_transport_new(&loop, &bearer, &t, &err), -EINVAL);
	CHECK_EQ(ews_transport_new(&loop, &bad_pw, &t, &err), -EINVAL);
	CHECK(strstr(err.msg, "password") != NULL);
	CHECK(strstr(err.msg, "se") == NULL); /* never the secret itself */
	CHECK_EQ(ews_transport_new(&loop, &bad_ua, &t, &err), -EINVAL);
	CHECK(t == NULL);
	ews_transport_free(NULL);
	CHECK_EQ(uv_loop_close(&loop), 0);
}

TEST(post_refuses_bad_urls_and_headers)
{
	struct fx f;
	struct err err = {0};
	struct ews_call *call = NULL;
	struct ews_call_opts o = {.url = "https://svc:hunter2@ews.example/EWS/Exchange.asmx"};

	fx_init(&f, NULL);
	CHECK_EQ(ews_transport_post(f.t, &o, "x", 1, on_done, &f, &call, &err), -EINVAL);
	CHECK(strstr(err.msg, "credentials") != NULL);
	CHECK(strstr(err.msg, "hunter2") == NULL);
	o.url = NULL;
	CHECK_EQ(ews_transport_post(f.t, &o, "x", 1, on_done, &f, &call, &err), -EINVAL);
	o.url = "ftp://ews.example/";
	CHECK_EQ(ews_transport_post(f.t, &o, "x", 1, on_done, &f, &call, &err), -EINVAL);
	o.url = f.url;
	o.anchor_mailbox = "a@b\r\nX-Evil: 1";
	CHECK_EQ(ews_transport_post(f.t, &o, "x", 1, on_done, &f, &call, &err), -EINVAL);
	CHECK(strstr(err.msg, "X-AnchorMailbox") != NULL);
	o.anchor_mailbox = NULL;
	o.backend_cookie = "a; b=c";
	CHECK_EQ(ews_transport_post(f.t, &o, "x", 1, on_done, &f, &call, &err), -EINVAL);
	o.backend_cookie = NULL;
	o.client_request_id = "";
	CHECK_EQ(ews_transport_post(f.t, &o, "x", 1, on_done, &f, &call, &err), -EINVAL);
	o.client_request_id = NULL;
	o.soap_action = "a\"b";
	CHECK_EQ(ews_transport_post(f.t, &o, "x", 1, on_done, &f, &call, &err), -EINVAL);
	CHECK_EQ(ews_transport_active(f.t), 0);
	/* A failed post never calls back. */
	uv_run(&f.loop, UV_RUN_NOWAIT);
	CHECK_EQ(f.done_calls, 0);
	fx_fini(&f);
}

TEST(sends_headers_and_captures_the_answer)
{
	struct fx f;
	struct ews_transport_opts to = {.user_agent = "calsync-test/1"};
	struct ews_call_opts o = {0};

	fx_init(&f, &to);
	o.url = f.url;
	o.anchor_mailbox = "anchor@contoso.example";
	o.prefer_affinity = true;
	o.backend_cookie = "exch02.contoso.example~7";
	o.client_request_id = "echo-1";
	o.soap_action = "urn:test";
	f.srv.response = OK_XML;
	CHECK_EQ(post(&f, &o, "<soap/>"), 0);
	CHECK_EQ(ews_transport_active(f.t), 1);
	CHECK_EQ(f.done_calls, 0); /* never from inside post */
	fx_run(&f);
	CHECK_EQ(f.done_calls, 1);
	CHECK_EQ(f.last.rc, 0);
	CHECK_EQ(f.last.http_status, 200);
	CHECK_STREQ(f.body, "<x>ok</x>");
	CHECK_EQ(f.last.body_len, 9);
	CHECK_STREQ(f.cookie, "exch01.contoso.example~42");
	CHECK_STREQ(f.request_id, "11111111-2222-3333-4444-555555555555");
	CHECK_STREQ(f.echoed, "echo-1");
	CHECK_STREQ(f.be_server, "EXCH01");
	CHECK(f.last.retry_after == NULL);
	CHECK_EQ(f.last.new_connections, 1);
	CHECK_EQ(ews_transport_active(f.t), 0);

	const char *rq = f.srv.last_request;
	CHECK(strncmp(rq, "POST /EWS/Exchange.asmx HTTP/1.1\r\n", 34) == 0);
	CHECK(strstr(rq, "\r\nContent-Type: text/xml; charset=utf-8\r\n") != NULL);
	CHECK(strstr(rq, "\r\nX-AnchorMailbox: anchor@contoso.example\r\n") != NULL);
	CHECK(strstr(rq, "\r\nX-PreferServerAffinity: true\r\n") != NULL);
	CHECK(strstr(rq, "\r\nCookie: X-BackEndOverrideCookie=exch02.contoso.example~7\r\n") !=
	      NULL);
	CHECK(strstr(rq, "\r\nclient-request-id: echo-1\r\n") != NULL);
	CHECK(strstr(rq, "\r\nreturn-client-request-id: true\r\n") != NULL);
	CHECK(strstr(rq, "\r\nSOAPAction: \"urn:test\"\r\n") != NULL);
	CHECK(strstr(rq, "\r\nUser-Agent: calsync-test/1\r\n") != NULL);
	CHECK(strstr(rq, "Expect:") == NULL);
	CHECK(strstr(rq, "\r\n\r\n<soap/>") != NULL);
	fx_fini(&f);
}

/* A bearer transport without a token of its own: each call brings one (a token provider's,
 * which changes), a call without one is refused, and a token is only for bearer. */
TEST(per_call_bearer_token)
{
	struct fx f;
	struct err err = {0};
	struct ews_transport_opts to = {.auth = EWS_AUTH_BEARER};
	struct ews_call_opts o = {0};

	fx_init(&f, &to);
	o.url = f.url;
	f.srv.response = OK_XML;
	CHECK_EQ(ews_transport_post(f.t, &o, "x", 1, on_done, &f, NULL, &err), -EINVAL);
	CHECK(strstr(err.msg, "token") != NULL);
	o.bearer_token = "eyJ.bad\r\nX-Evil: 1";
	CHECK_EQ(ews_transport_post(f.t, &o, "x", 1, on_done, &f, NULL, &err), -EINVAL);
	CHECK(strstr(err.msg, "Evil") == NULL);
	o.bearer_token = "eyJ.first";
	CHECK_EQ(post(&f, &o, "<a/>"), 0);
	fx_run(&f);
	CHECK_EQ(f.last.rc, 0);
	CHECK(strstr(f.srv.last_request, "\r\nAuthorization: Bearer eyJ.first\r\n") != NULL);
	/* The next call takes the token it is given, on the same connection. */
	o.bearer_token = "eyJ.second";
	f.stop_after = 2;
	CHECK_EQ(post(&f, &o, "<b/>"), 0);
	fx_run(&f);
	CHECK_EQ(f.last.rc, 0);
	CHECK(strstr(f.srv.last_request, "\r\nAuthorization: Bearer eyJ.second\r\n") != NULL);
	CHECK(strstr(f.srv.last_request, "eyJ.first") == NULL);
	/* A 401 to a bearer call: -EACCES naming the token's refusal, never the token. */
	f.srv.response = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\n"
			 "Content-Length: 0\r\n\r\n";
	f.stop_after = 3;
	CHECK_EQ(post(&f, &o, "<c/>"), 0);
	fx_run(&f);
	CHECK_EQ(f.last.rc, -EACCES);
	CHECK_EQ(f.last.http_status, 401);
	CHECK(strstr(f.last.err.msg, "bearer token") != NULL);
	CHECK(strstr(f.last.err.msg, "eyJ") == NULL);
	fx_fini(&f);

	/* Without bearer, a call's token is refused. */
	fx_init(&f, NULL);
	o.url = f.url;
	o.bearer_token = "eyJ.x";
	CHECK_EQ(ews_transport_post(f.t, &o, "x", 1, on_done, &f, NULL, &err), -EINVAL);
	fx_fini(&f);
}

TEST(keeps_the_connection_alive)
{
	struct fx f;

	fx_init(&f, NULL);
	f.srv.response = OK_XML;
	CHECK_EQ(post(&f, NULL, "<a/>"), 0);
	fx_run(&f);
	CHECK_EQ(f.last.new_connections, 1);
	f.stop_after = 2;
	CHECK_EQ(post(&f, NULL, "<b/>"), 0);
	fx_run(&f);
	CHECK_EQ(f.last.rc, 0);
	CHECK_EQ(f.last.new_connections, 0);
	CHECK_EQ(f.srv.accepted, 1);
	CHECK_EQ(f.srv.requests, 2);
	/* A fresh UUIDv4 when the caller gives no client-request-id. */
	CHECK(strstr(f.srv.last_request, "\r\nclient-request-id: ") != NULL);
	fx_fini(&f);
}

TEST(size_limit)
{
	static const char *const chunked[] = {
		"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n",
		"10\r\n0123456789abcdef\r\n",
		"10\r\n0123456789abcdef\r\n",
		"0\r\n\r\n",
	};
	struct fx f;
	struct ews_transport_opts to = {.max_response = 20};

	/* Content-Length over the limit: refused before the body is read. */
	fx_init(&f, &to);
	f.srv.response = "HTTP/1.1 200 OK\r\nContent-Length: 21\r\n\r\n012345678901234567890";
	CHECK_EQ(post(&f, NULL, "<a/>"), 0);
	fx_run(&f);
	CHECK_EQ(f.last.rc, -EMSGSIZE);
	CHECK(strstr(f.last.err.msg, "20 bytes") != NULL);
	fx_fini(&f);

	/* Chunked, no length known: aborted when the 21st byte arrives. */
	fx_init(&f, &to);
	f.srv.pieces = chunked;
	f.srv.n_pieces = 4;
	CHECK_EQ(post(&f, NULL, "<a/>"), 0);
	fx_run(&f);
	CHECK_EQ(f.last.rc, -EMSGSIZE);
	CHECK(f.last.body_len <= 20);
	fx_fini(&f);

	/* Exactly at the limit is fine. */
	fx_init(&f, &to);
	f.srv.response = "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n01234567890123456789";
	CHECK_EQ(post(&f, NULL, "<a/>"), 0);
	fx_run(&f);
	CHECK_EQ(f.last.rc, 0);
	CHECK_EQ(f.last.body_len, 20);
	fx_fini(&f);
}

static const char *const STREAM[] = {
	("HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\n"
         "Transfer-Encoding: chunked\r\n\r\n"),
	"5\r\n<Env>\r\n",
	"6\r\n</Env>\r\n",
	"5\r\n<Env>\r\n",
	"6\r\n</Env>\r\n",
	"0\r\n\r\n",
};

static int on_chunk(void *ctx, const char *data, size_t len, struct err *err)
{
	struct fx *f = ctx;

	f->n_chunks++;
	if (buf_append(&f->chunks, data, len, err) < 0)
		return -EMSGSIZE;
	if (f->cancel_in_chunk && f->n_chunks == 2) {
		ews_transport_cancel(f->call);
		f->call = NULL;
		uv_stop(&f->loop);
	}
	if (f->post_in_chunk && f->n_chunks == 1) {
		/* libcurl forbids adding a handle here: the transport defers it. */
		CHECK_EQ(post(f, NULL, "<second/>"), 0);
	}
	return 0;
}

TEST(streaming_delivers_pieces)
{
	struct fx f;
	struct ews_call_opts o = {0};

	fx_init(&f, NULL);
	o.url = f.url;
	o.chunk_fn = on_chunk;
	f.srv.pieces = STREAM;
	f.srv.n_pieces = 6;
	CHECK_EQ(post(&f, &o, "<stream/>"), 0);
	fx_run(&f);
	CHECK_EQ(f.last.rc, 0);
	CHECK_EQ(f.last.http_status, 200);
	CHECK_EQ(f.chunks.len, 22);
	CHECK(f.chunks.data != NULL && strcmp(f.chunks.data, "<Env></Env><Env></Env>") == 0);
	CHECK(f.n_chunks >= 2);       /* pieces 5 ms apart arrive as separate reads */
	CHECK_EQ(f.last.body_len, 0); /* nothing buffered */
	CHECK_EQ(f.last.bytes, 22);
	fx_fini(&f);
}

TEST(streaming_cancel_inside_the_chunk_callback)
{
	struct fx f;
	struct ews_call_opts o = {0};

	fx_init(&f, NULL);
	o.url = f.url;
	o.chunk_fn = on_chunk;
	f.cancel_in_chunk = true;
	f.srv.pieces = STREAM;
	f.srv.n_pieces = 6;
	CHECK_EQ(post(&f, &o, "<stream/>"), 0);
	fx_run(&f);
	CHECK_EQ(f.done_calls, 0);
	CHECK_EQ(ews_transport_active(f.t), 0);
	/* The half-read connection was closed, not kept for reuse. */
	f.stop_after = 1;
	f.srv.pieces = NULL;
	f.srv.response = OK_XML;
	CHECK_EQ(post(&f, NULL, "<after/>"), 0);
	fx_run(&f);
	CHECK_EQ(f.last.rc, 0);
	CHECK_EQ(f.last.new_connections, 1);
	CHECK_EQ(f.srv.eofs, 1);
	fx_fini(&f);
}

TEST(streaming_post_inside_the_chunk_callback)
{
	struct fx f;
	struct ews_call_opts o = {0};

	fx_init(&f, NULL);
	o.url = f.url;
	o.chunk_fn = on_chunk;
	f.post_in_chunk = true;
	f.stop_after = 2;
	f.srv.pieces = STREAM;
	f.srv.n_pieces = 6;
	f.srv.pieces_once = true;
	f.srv.response = OK_XML;
	CHECK_EQ(post(&f, &o, "<stream/>"), 0);
	fx_run(&f);
	CHECK_EQ(f.done_calls, 2);
	CHECK_EQ(f.last.rc, 0);
	CHECK_EQ(ews_transport_active(f.t), 0);
	fx_fini(&f);
}

TEST(streaming_non_200_is_buffered)
{
	struct fx f;
	struct ews_call_opts o = {0};

	fx_init(&f, NULL);
	o.url = f.url;
	o.chunk_fn = on_chunk;
	f.srv.response = "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/xml\r\n"
			 "Content-Length: 8\r\n\r\n<fault/>";
	CHECK_EQ(post(&f, &o, "<stream/>"), 0);
	fx_run(&f);
	CHECK_EQ(f.last.rc, 0); /* a SOAP fault is an EWS answer */
	CHECK_EQ(f.last.http_status, 500);
	CHECK_STREQ(f.body, "<fault/>");
	CHECK_EQ(f.n_chunks, 0);
	fx_fini(&f);
}

TEST(status_mapping)
{
	static const struct {
		const char *response;
		int rc;
		long status;
		const char *says;
	} cases[] = {
		{"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n", -EACCES, 401,
	         "HTTP 401"},
		{"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", -EACCES, 403, "403"},
		{"HTTP/1.1 456 Locked\r\nContent-Length: 0\r\n\r\n", -EACCES, 456, "locked"},
		{"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", -EAGAIN, 503, "back off"},
		{"HTTP/1.1 302 Found\r\nLocation: http://x/ews/genericerrorpage.htm\r\n"
	         "Content-Length: 0\r\n\r\n",
	         -EPROTO, 302, "genericerrorpage"},
		{"HTTP/1.1 500 Error\r\nContent-Type: text/html\r\nContent-Length: 3\r\n\r\nbad",
	         -EIO, 500, "without a SOAP body"},
		{"HTTP/1.1 500 Error\r\nContent-Type: text/xml\r\nContent-Length: 3\r\n\r\n<a>", 0,
	         500, ""},
		{"HTTP/1.1 415 Unsupported\r\nContent-Length: 0\r\n\r\n", -EPROTO, 415, "415"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fx f;
		fx_init(&f, NULL);
		f.srv.response = cases[i].response;
		CHECK_EQ(post(&f, NULL, "<a/>"), 0);
		fx_run(&f);
		CHECK_EQ(f.last.rc, cases[i].rc);
		CHECK_EQ(f.last.http_status, cases[i].status);
		CHECK(strstr(f.last.err.msg, cases[i].says) != NULL);
		fx_fini(&f);
	}
}

/* Retry-After is captured as written, from the last response only, and read by the verdict:
 * an HTTP 503 with one is throttling with the server's pause. */
TEST(captures_retry_after)
{
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
				   "Content-Type: text/html\r\n"
				   "retry-after:  120 \r\n"
				   "Content-Length: 4\r\n"
				   "\r\n"
				   "busy";
	static const char date[] = "HTTP/1.1 503 Service Unavailable\r\n"
				   "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
				   "Content-Length: 0\r\n"
				   "\r\n";
	/* An interim 100 Continue's headers are not the answer's (every status line resets). */
	static const char interim[] = "HTTP/1.1 100 Continue\r\n"
				      "Retry-After: 7\r\n"
				      "\r\n"
				      "HTTP/1.1 200 OK\r\n"
				      "Content-Type: text/xml\r\n"
				      "Content-Length: 4\r\n"
				      "\r\n"
				      "<a/>";
	char longer[EWS_MAX_HEADER_VALUE + 128];
	struct ews_response resp;
	struct ews_verdict v;
	struct fx f;

	fx_init(&f, NULL);
	f.srv.response = busy;
	CHECK_EQ(post(&f, NULL, "<a/>"), 0);
	fx_run(&f);
	CHECK_EQ(f.last.rc, -EAGAIN);
	CHECK_EQ(f.last.http_status, 503);
	CHECK(f.last.retry_after != NULL);
	CHECK_STREQ(f.retry_after, "120");
	ews_verdict_of_result(&f.last, NULL, &resp, &v);
	CHECK_EQ(v.cls, EWS_ERR_THROTTLED);
	CHECK_STREQ(v.code, "http-503");
	CHECK_EQ(v.back_off_ms, 120000);
	ews_response_clear(&resp);
	/* A caller's value wins over the header. */
	ews_verdict_of_result(&f.last, "3", &resp, &v);
	CHECK_EQ(v.back_off_ms, 3000);
	ews_response_clear(&resp);
	fx_fini(&f);

	/* An HTTP-date is kept as written; the verdict reads no pause from it. */
	fx_init(&f, NULL);
	f.srv.response = date;
	CHECK_EQ(post(&f, NULL, "<a/>"), 0);
	fx_run(&f);
	CHECK_STREQ(f.retry_after, "Wed, 21 Oct 2015 07:28:00 GMT");
	ews_verdict_of_result(&f.last, NULL, &resp, &v);
	CHECK_EQ(v.cls, EWS_ERR_THROTTLED);
	CHECK_EQ(v.back_off_ms, -1);
	ews_response_clear(&resp);
	fx_fini(&f);

	fx_init(&f, NULL);
	f.srv.response = interim;
	CHECK_EQ(post(&f, NULL, "<a/>"), 0);
	fx_run(&f);
	CHECK_EQ(f.last.rc, 0);
	CHECK_EQ(f.last.http_status, 200);
	CHECK(f.last.retry_after == NULL);
	fx_fini(&f);

	/* Over EWS_MAX_HEADER_VALUE: ignored, never truncated into another number. */
	(void)snprintf(longer, sizeof(longer),
	               "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1%0*d\r\n"
	               "Content-Length: 0\r\n\r\n",
	               (int)EWS_MAX_HEADER_VALUE, 0);
	fx_init(&f, NULL);
	f.srv.response = longer;
	CHECK_EQ(post(&f, NULL, "<a/>"), 0);
	fx_run(&f);
	CHECK_EQ(f.last.rc, -EAGAIN);
	CHECK(f.last.retry_after == NULL);
	fx_fini(&f);
}

TEST(timeouts)
{
	struct fx f;
	struct ews_call_opts o = {0};

	/* The server reads the request and never answers. */
	fx_init(&f, NULL);
	o.url = f.url;
	o.timeout_usec = 200000;
	CHECK_EQ(post(&f, &o, "<a/>"), 0);
	fx_run(&f);
	CHECK_EQ(f.last.rc, -ETIMEDOUT);
	CHECK(strstr(f.last.err.msg, "within 200 ms") != NULL);
	CHECK(f.last.elapsed_usec >= 190000);
	fx_fini(&f);

	/* The same on a reused connection: still not a connect timeout. */
	fx_init(&f, NULL);
	o.url = f.url;
	f.srv.response = OK_XML;
	CHECK_EQ(post(&f, &o, "<a/>"), 0);
	fx_run(&f);
	CHECK_EQ(f.last.rc, 0);
	f.srv.response = NULL;
	f.stop_after = 2;
	CHECK_EQ(post(&f, &o, "<b/>"), 0);
	fx_run(&f);
	CHECK_EQ(f.last.rc, -ETIMEDOUT);
	CHECK_EQ(f.last.new_connections, 0);
	CHECK(strstr(f.last.err.msg, "within 200 ms") != NULL);
	fx_fini(&f);

	/* A stream that goes quiet after its head: the idle watchdog ends it. */
	fx_init(&f, NULL);
	o.url = f.url;
	o.timeout_usec = 0;
	o.idle_timeout_usec = 1000000;
	o.chunk_fn = on_chunk;
	f.srv.pieces = STREAM;
	f.srv.n_pieces = 2;
	CHECK_EQ(post(&f, &o, "<stream/>"), 0);
	fx_run(&f);
	CHECK_EQ(f.last.rc, -ETIMEDOUT);
	CHECK(strstr(f.last.err.msg, "stream idle") != NULL);
	CHECK_EQ(f.chunks.len, 5);
	fx_fini(&f);
}

TEST(connection_refused_and_free_with_calls_in_flight)
{
	struct fx f;
	struct ews_call_opts o = {0};
	char url[128];
	int port;

	fx_init(&f, NULL);
	/* The listener's port once it is closed refuses connections. */
	port = f.srv.port;
	srv_stop(&f.srv);
	uv_run(&f.loop, UV_RUN_NOWAIT);
	srv_start(&f.srv, &f.loop);
	(void)snprintf(url, sizeof(url), "http://127.0.0.1:%d/EWS/Exchange.asmx", port);
	(void)snprintf(f.url, sizeof(f.url), "http://127.0.0.1:%d/EWS/Exchange.asmx", f.srv.port);
	o.url = url;
	CHECK_EQ(post(&f, &o, "<a/>"), 0);
	fx_run(&f);
	CHECK_EQ(f.last.rc, -ECONNREFUSED);
	CHECK(strstr(f.last.err.msg, "cannot connect") != NULL);

	/* Calls still in flight when the transport goes: no callback, nothing leaked. */
	f.done_calls = 0;
	CHECK_EQ(post(&f, NULL, "<never/>"), 0);
	CHECK_EQ(post(&f, NULL, "<never/>"), 0);
	uv_run(&f.loop, UV_RUN_NOWAIT);
	CHECK_EQ(ews_transport_active(f.t), 2);
	fx_fini(&f);
	CHECK_EQ(f.done_calls, 0);
}

int main(void)
{
	RUN(auth_names);
	RUN(new_checks_its_options);
	RUN(post_refuses_bad_urls_and_headers);
	RUN(sends_headers_and_captures_the_answer);
	RUN(per_call_bearer_token);
	RUN(keeps_the_connection_alive);
	RUN(size_limit);
	RUN(streaming_delivers_pieces);
	RUN(streaming_cancel_inside_the_chunk_callback);
	RUN(streaming_post_inside_the_chunk_callback);
	RUN(streaming_non_200_is_buffered);
	RUN(status_mapping);
	RUN(captures_retry_after);
	RUN(timeouts);
	RUN(connection_refused_and_free_with_calls_in_flight);
	return harness_done();
}
