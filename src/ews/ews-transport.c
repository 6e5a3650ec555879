/* SPDX-License-Identifier: MIT */
/*
 * ews-transport.c: libcurl's multi interface on the libuv loop, in the way of curl's
 * docs/examples/multi-uv.c: libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION)
 * and when to wake it (CURLMOPT_TIMERFUNCTION); we watch them with one uv_poll_t per socket and
 * one uv_timer_t and hand every event back with curl_multi_socket_action().
 *
 * Connections live in lanes. A lane is a CURLSH that shares only its connection cache, and the
 * multi handle keeps at most one idle connection per cache (CURLMOPT_MAXCONNECTS 1), so a lane
 * holds at most one connection. A call checks a lane out for its whole life (HTTP/1.1, one
 * request per connection at a time; a stream holds its lane until it ends) and gives it back
 * when it finishes. No other transfer can be handed the lane's connection meanwhile, which is
 * what NTLM needs: its legs run on one connection, and a later call on that lane reuses the
 * authenticated connection without a handshake. The connection caps are counted in lanes.
 *
 * NTLM (auth "ntlm", and the NTLM fallback of "negotiate") is ours, not libcurl's, because
 * libcurl 7.88 sends no channel binding (curl issue #12511) and Exchange 2019 CU14 and later
 * refuse NTLM over HTTPS without one (Extended Protection). ews-ntlm.h builds the messages;
 * here leg 1 goes out with "Authorization: NTLM <NEGOTIATE>" and an empty body, and the 401
 * that carries the CHALLENGE also yields the server certificate of that same connection, read
 * from libcurl's SSL* in the header callback; leg 3 carries the AUTHENTICATE with the channel
 * binding token and the real body. Plain http:// binds to nothing (16 zero bytes).
 *
 * Re-entrancy is the one subtle part. User code runs inside libcurl only in the chunk callback
 * (a streaming call's write callback). There libcurl forbids removing or adding easy handles,
 * so ews_transport_cancel() and ews_transport_post() only mark the call there, and the work is
 * done right after curl_multi_socket_action() returns (after_action). Done callbacks run from
 * the loop, outside libcurl, so they may do anything but free the transport.
 */
#include "ews/ews-transport.h"

#include <assert.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <strings.h>
#include <sys/random.h>
#include <uv.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/cs-limits.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "calsync-config.h"
#include "ews/ews-ntlm.h"

/* Longest URL we accept; EWS and Autodiscover URLs are well under 200 bytes. */
#define EWS_MAX_URL 2048u

/* "https://" + a DNS name (at most 253) or a bracketed IPv6 address + ":65535". */
#define EWS_MAX_ORIGIN 288u

/* Host names in messages are cut here so that the rest of the message fits in struct err. */
#define HOST_IN_MSG 64u

/* TCP keep-alive for idle pooled connections and quiet streams (EWS-REFERENCE 4.3). */
#define TCP_KEEPIDLE_SEC  60L
#define TCP_KEEPINTVL_SEC 20L

/* libcurl reuses an idle connection for this long (CURLOPT_MAXAGE_CONN, set explicitly), which
 * is under IIS's 120 s idle timeout. A lane idle for longer has no authenticated connection. */
#define MAX_IDLE_SEC 118L

/* The longest WWW-Authenticate value with an NTLM CHALLENGE we keep: "NTLM " and the base64 of
 * the largest message ews-ntlm accepts. A longer one is not a challenge we could answer. */
#define NTLM_MAX_HEADER (5u + 4u * ((EWS_NTLM_MAX_MESSAGE + 2u) / 3u))

/* A socket libcurl asked us to watch. */
struct sock {
	uv_poll_t poll;
	curl_socket_t fd;
	struct ews_transport *t;
	struct sock *prev, *next;
};

/* One connection slot: a connection cache of its own (see the top of the file). */
struct lane {
	CURLSH *share;
	struct ews_call *call;       /* the call that holds it; NULL when free */
	char origin[EWS_MAX_ORIGIN]; /* its connection's scheme://host:port; "" = none yet */
	bool authed;                 /* our NTLM handshake succeeded on its connection */
	int64_t idle_since_usec;     /* when it was last given back */
};

/* Which request of the call is on the wire. */
enum leg {
	LEG_PLAIN,        /* no Authorization from us: libcurl's method, or an NTLM-authenticated
	                   * connection */
	LEG_NEGOTIATE,    /* NTLM leg 1: NEGOTIATE, empty body; the answer carries the CHALLENGE */
	LEG_AUTHENTICATE, /* NTLM leg 3: AUTHENTICATE with the real body */
};

/* What leg 3's channel binding was made from. */
enum cbt {
	CBT_NONE,        /* plain HTTP: 16 zero bytes, as Windows sends */
	CBT_CERT,        /* the server certificate of the connection that sent the CHALLENGE */
	CBT_UNAVAILABLE, /* HTTPS, but libcurl's TLS backend gave no certificate: zeros */
};

struct ews_call {
	struct ews_transport *t;
	struct ews_call *prev, *next; /* all calls */
	struct ews_call *qnext;       /* the queue of calls waiting for a lane */
	CURL *easy;
	struct curl_slist *headers;     /* every leg's */
	struct curl_slist *leg_headers; /* the headers plus this leg's Authorization */
	char *req;                      /* the body (a copy), sent on every leg but NTLM's first */
	size_t req_len;
	ews_done_fn *done;
	ews_chunk_fn *chunk;
	void *ctx;
	int64_t last_data_usec; /* a stream's: when its leg started or last received a byte */
	struct lane *lane;      /* NULL while queued */
	bool queued;            /* waiting for a lane */
	bool start_failed;      /* libcurl refused it at dispatch: fail it from the queue timer */
	bool added;             /* in the multi handle */
	bool cancelled;         /* cancelled from inside libcurl: remove after the action */
	bool done_running;      /* its done callback is running */
	bool https;
	bool our_ntlm;       /* this call authenticates with ews-ntlm (set when its lane is
	                      * assigned) */
	bool ntlm_retry;     /* NEGOTIATE: the NTLM fallback runs */
	bool new_conn_leg3;  /* leg 3 went out on another connection than leg 1 */
	bool plain_resend;   /* leg 1 got a non-401 answer; the request went again as is */
	unsigned handshakes; /* NTLM handshakes started; at most one per call */
	enum leg leg;
	enum cbt cbt_kind;
	uint8_t cbt[16];
	struct ews_ntlm *ntlm; /* the handshake between leg 1 and leg 3 */
	char *challenge;       /* leg 1's "NTLM <base64>", NULL until seen */
	bool offers_ntlm;      /* the current response offered WWW-Authenticate: NTLM */
	long prior_connects;   /* connections opened by the legs before the current one */
	int64_t start_usec;
	int64_t idle_sec;     /* streaming: the idle window (on_itimer), whole seconds */
	int64_t timeout_usec; /* buffered: the total; streaming: 0 or the caller's cap */

	/* The current response; reset at every status line (NTLM's 401 legs, 100 Continue). */
	long status;
	struct buf body;
	uint64_t bytes;
	char content_type[EWS_MAX_HEADER_VALUE];
	char cookie[EWS_MAX_HEADER_VALUE];
	char request_id[EWS_MAX_HEADER_VALUE];
	char echoed_id[EWS_MAX_HEADER_VALUE];
	char be_server[EWS_MAX_HEADER_VALUE];
	char cas_error[EWS_MAX_HEADER_VALUE];

	int cb_rc; /* why our write callback, or the handshake, stopped the call */
	struct err cb_err;
	char errbuf[CURL_ERROR_SIZE];
	char host[HOST_IN_MSG + 1];
	char spn[EWS_MAX_ORIGIN]; /* "HTTP/<host>", MsvAvTargetName */
	char origin[EWS_MAX_ORIGIN];
	char client_request_id[EWS_MAX_REQUEST_HEADER + 1];
};

struct ews_transport {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	uv_timer_t qtimer; /* queued calls: deadlines and failed starts */
	uv_timer_t itimer; /* streams: the idle check, once a second while there are any */
	bool timer_init;
	bool global_init;
	struct sock *socks;
	struct ews_call *calls;
	size_t n_calls;
	struct ews_call *queue_head, *queue_tail;
	struct lane *lanes; /* max_total of them; a lane's share is made when first used */
	unsigned n_lanes;   /* lanes made so far */
	unsigned max_host;
	unsigned max_total;
	unsigned in_curl; /* inside curl_multi_socket_action() */
	unsigned in_done; /* inside a done callback */
	bool reap_needed;
	bool dispatch_needed; /* a lane was given back or a call queued inside libcurl */
	bool dead;            /* the multi handle failed; every later post fails */
	bool ntlm_fallback;   /* NEGOTIATE failed once and NTLM worked: use NTLM from now on */
	bool freeing;
	unsigned open_handles; /* uv handles not yet closed; the last close frees t */
	uint64_t id_counter;   /* new_request_id's fallback when there is no entropy */

	enum ews_auth auth;
	char *user;
	char *password;
	char *token;
	char *ca_file;
	char *proxy;
	char *user_agent;
	/* OpenSSL for our NTLM; NULL unless the options can use it (ntlm_crypto). Every
	 * call's handshake borrows it. */
	struct ews_ntlm_crypto *crypto;
	bool insecure;
	int64_t connect_timeout_usec;
	int64_t timeout_usec;
	int64_t idle_timeout_usec;
	size_t max_response;
};

static const char *const auth_names[] = {
	[EWS_AUTH_NONE] = "none",           [EWS_AUTH_BASIC] = "basic",   [EWS_AUTH_NTLM] = "ntlm",
	[EWS_AUTH_NEGOTIATE] = "negotiate", [EWS_AUTH_BEARER] = "bearer",
};

const char *ews_auth_name(enum ews_auth a)
{
	if ((size_t)a < sizeof(auth_names) / sizeof(auth_names[0]))
		return auth_names[a];
	return "unknown";
}

int ews_auth_from_name(const char *name, size_t len, enum ews_auth *out, struct err *err)
{
	for (size_t i = 0; i < sizeof(auth_names) / sizeof(auth_names[0]); i++) {
		if (strlen(auth_names[i]) == len && memcmp(auth_names[i], name, len) == 0) {
			*out = (enum ews_auth)i;
			return 0;
		}
	}
	return err_set(err, -EINVAL,
	               "unknown authentication '%.*s' (basic, ntlm, negotiate, bearer or none)",
	               (int)(len > 32 ? 32 : len), name);
}

/* -- small helpers --------------------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static void wipe_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* A value we may put into a request header: 1..EWS_MAX_REQUEST_HEADER printable ASCII bytes, so
 * no line break can smuggle in another header. */
static bool header_value_ok(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > EWS_MAX_REQUEST_HEADER)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];
		if (ch < 0x20 || ch > 0x7e)
			return false;
	}
	return true;
}

/* RFC 6265 cookie-octet: printable ASCII without space, '"', ',', ';' and '\'. */
static bool cookie_value_ok(const char *v, size_t n)
{
	if (n == 0 || n >= EWS_MAX_HEADER_VALUE)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];
		if (ch <= 0x20 || ch > 0x7e || ch == '"' || ch == ',' || ch == ';' || ch == '\\')
			return false;
	}
	return true;
}

static void new_request_id(struct ews_transport *t, char out[37])
{
	uint8_t b[16];

	if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
		/* No entropy yet (early boot): the id only has to be unique enough for log
		 * correlation, so time and a counter do. */
		uint64_t x = (uint64_t)clock_now_usec() ^ ((uint64_t)clock_now_utc() << 20);
		uint64_t y = ++t->id_counter * UINT64_C(0x9e3779b97f4a7c15);
		memcpy(b, &x, 8);
		memcpy(b + 8, &y, 8);
	}
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	(void)snprintf(out, 37,
	               "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
	               b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	               b[13], b[14], b[15]);
}

/* -- sockets and the timer ------------------------------------------------------------------- */

static void handle_closed(struct ews_transport *t)
{
	assert(t->open_handles > 0);
	t->open_handles--;
	if (t->freeing && t->open_handles == 0)
		free(t);
}

static void on_sock_closed(uv_handle_t *h)
{
	struct sock *s = h->data;
	struct ews_transport *t = s->t;

	free(s);
	handle_closed(t);
}

/* How often the idle check of streams runs (on_itimer): a stream's idle timeout fires up to this
 * late. */
#define IDLE_CHECK_MS 1000u

static void on_itimer(uv_timer_t *timer);

static void on_timer_closed(uv_handle_t *h)
{
	handle_closed(h->data);
}

static void sock_close(struct sock *s)
{
	struct ews_transport *t = s->t;

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		t->socks = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	(void)uv_poll_stop(&s->poll);
	uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static void after_action(struct ews_transport *t);
static void fail_all(struct ews_transport *t, int rc, const char *what);

static void socket_action(struct ews_transport *t, curl_socket_t fd, int flags)
{
	int running = 0;
	CURLMcode mc;

	t->in_curl++;
	mc = curl_multi_socket_action(t->multi, fd, flags, &running);
	t->in_curl--;
	if (mc != CURLM_OK) {
		fail_all(t, -EIO, curl_multi_strerror(mc));
		return;
	}
	after_action(t);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct sock *s = p->data;
	int flags = 0;

	if (status < 0) {
		flags = CURL_CSELECT_ERR;
	} else {
		if (events & UV_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			flags |= CURL_CSELECT_OUT;
	}
	socket_action(s->t, s->fd, flags);
}

static void on_timer(uv_timer_t *timer)
{
	socket_action(timer->data, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_SOCKETFUNCTION: libcurl says what to watch on fd; socketp is our struct sock. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct ews_transport *t = userp;
	struct sock *s = socketp;
	int events = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			(void)curl_multi_assign(t->multi, fd, NULL);
			sock_close(s);
		}
		return 0;
	}
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		/* A closing handle for a reused fd number is no obstacle: uv_close() has already
		 * unregistered it from the loop. */
		if (uv_poll_init_socket(t->loop, &s->poll, fd) < 0) {
			free(s);
			/* libcurl then marks the whole multi handle dead; socket_action() reports it
			 * and fails every call. It cannot happen unless libuv is out of memory. */
			return -1;
		}
		s->fd = fd;
		s->t = t;
		s->poll.data = s;
		s->next = t->socks;
		if (t->socks != NULL)
			t->socks->prev = s;
		t->socks = s;
		t->open_handles++;
		(void)curl_multi_assign(t->multi, fd, s);
	}
	if (what & CURL_POLL_IN)
		events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	(void)uv_poll_start(&s->poll, events, on_poll);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: one timer for the whole multi handle. A 0 timeout fires on the next
 * loop iteration: libcurl must not be called back from inside its own callback. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct ews_transport *t = userp;

	(void)multi;
	if (timeout_ms < 0)
		(void)uv_timer_stop(&t->timer);
	else
		(void)uv_timer_start(&t->timer, on_timer, (uint64_t)timeout_ms, 0);
	return 0;
}

/* -- lanes ----------------------------------------------------------------------------------- */

static void wipe_slist(struct curl_slist **l)
{
	for (struct curl_slist *p = *l; p != NULL; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(*l);
	*l = NULL;
}

/* A lane whose connection is authenticated and young enough for libcurl to reuse it. */
static bool lane_fresh(const struct lane *l, int64_t now)
{
	return l->authed && now - l->idle_since_usec < MAX_IDLE_SEC * USEC_PER_SEC;
}

static CURLSH *share_new(void)
{
	CURLSH *sh = curl_share_init();

	if (sh != NULL &&
	    curl_share_setopt(sh, CURLSHOPT_SHARE, (long)CURL_LOCK_DATA_CONNECT) != CURLSHE_OK) {
		(void)curl_share_cleanup(sh);
		sh = NULL;
	}
	return sh;
}

/*
 * A free lane for c, or NULL when c must wait. In order: a free lane whose connection goes to
 * c's origin (an authenticated one first, then the one used last); else, below the host cap, a
 * lane without a connection, a new lane below the total cap, or the free lane idle the longest,
 * whose connection to another origin is closed.
 */
static struct lane *lane_pick(struct ews_transport *t, const struct ews_call *c)
{
	struct lane *best = NULL;
	struct lane *empty = NULL;
	struct lane *other = NULL;
	unsigned same = 0;
	int64_t now = clock_now_usec();

	for (unsigned i = 0; i < t->n_lanes; i++) {
		struct lane *l = &t->lanes[i];

		if (strcmp(l->origin, c->origin) == 0) {
			same++;
			if (l->call != NULL)
				continue;
			if (best == NULL || (lane_fresh(l, now) && !lane_fresh(best, now)) ||
			    (lane_fresh(l, now) == lane_fresh(best, now) &&
			     l->idle_since_usec > best->idle_since_usec))
				best = l;
		} else if (l->call == NULL && l->origin[0] == '\0') {
			if (empty == NULL)
				empty = l;
		} else if (l->call == NULL) {
			if (other == NULL || l->idle_since_usec < other->idle_since_usec)
				other = l;
		}
	}
	if (best != NULL)
		return best;
	if (same >= t->max_host)
		return NULL;
	if (empty != NULL)
		return empty;
	if (t->n_lanes < t->max_total) {
		struct lane *l = &t->lanes[t->n_lanes];
		l->share = share_new();
		if (l->share == NULL)
			return NULL;
		t->n_lanes++;
		return l;
	}
	if (other != NULL) {
		/* A free lane holds no easy handle (lane_release detached it), so its cache can go,
		 * closing the idle connection, and the cap stays a cap. */
		CURLSH *sh = share_new();
		if (sh == NULL || curl_share_cleanup(other->share) != CURLSHE_OK) {
			if (sh != NULL)
				(void)curl_share_cleanup(sh);
			return NULL;
		}
		other->share = sh;
		other->origin[0] = '\0';
		other->authed = false;
		return other;
	}
	return NULL;
}

/*
 * Gives c's lane back; c must not be in the multi handle. conn_ok false: the connection may be
 * gone or half-used (an error, a cancel), so it is no longer known to be authenticated.
 */
static void lane_release(struct ews_call *c, bool conn_ok)
{
	struct lane *l = c->lane;

	assert(!c->added);
	(void)curl_easy_setopt(c->easy, CURLOPT_SHARE, NULL);
	if (!conn_ok)
		l->authed = false;
	l->call = NULL;
	l->idle_since_usec = clock_now_usec();
	c->lane = NULL;
	c->t->dispatch_needed = true;
}

/* -- calls ----------------------------------------------------------------------------------- */

static void call_unlink(struct ews_call *c)
{
	struct ews_transport *t = c->t;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		t->calls = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	t->n_calls--;
}

static void queue_add(struct ews_call *c)
{
	struct ews_transport *t = c->t;

	c->queued = true;
	c->qnext = NULL;
	if (t->queue_tail != NULL)
		t->queue_tail->qnext = c;
	else
		t->queue_head = c;
	t->queue_tail = c;
}

static void queue_remove(struct ews_call *c)
{
	struct ews_transport *t = c->t;
	struct ews_call *prev = NULL;

	for (struct ews_call *p = t->queue_head; p != NULL && p != c; p = p->qnext)
		prev = p;
	if (prev != NULL)
		prev->qnext = c->qnext;
	else
		t->queue_head = c->qnext;
	if (t->queue_tail == c)
		t->queue_tail = prev;
	c->qnext = NULL;
	c->queued = false;
}

/* Takes c out of the multi handle, the wait queue and its lane; conn_ok says whether its
 * lane's connection is still good for an authenticated reuse. */
static void call_detach(struct ews_call *c, bool conn_ok)
{
	if (c->added)
		(void)curl_multi_remove_handle(c->t->multi, c->easy);
	c->added = false;
	if (c->queued)
		queue_remove(c);
	if (c->lane != NULL)
		lane_release(c, conn_ok);
}

/* Removes and frees c. Never inside libcurl (t->in_curl == 0) while it is in the multi. */
static void call_destroy(struct ews_call *c)
{
	assert(!c->added || c->t->in_curl == 0);
	/* Removed mid-transfer, libcurl closes the connection: a half-read answer cannot be
	 * reused. */
	call_detach(c, false);
	curl_easy_cleanup(c->easy);
	curl_slist_free_all(c->headers);
	wipe_slist(&c->leg_headers);
	free(c->req);
	ews_ntlm_free(c->ntlm);
	wipe_free(c->challenge);
	buf_free(&c->body);
	call_unlink(c);
	free(c);
}

static void reset_response(struct ews_call *c, long status)
{
	c->status = status;
	c->offers_ntlm = false;
	wipe_free(c->challenge);
	c->challenge = NULL;
	buf_reset(&c->body);
	c->content_type[0] = '\0';
	c->cookie[0] = '\0';
	c->request_id[0] = '\0';
	c->echoed_id[0] = '\0';
	c->be_server[0] = '\0';
	c->cas_error[0] = '\0';
}

/* Copies a header value of n bytes into out, or leaves out empty when it is too long. */
static void capture(char out[EWS_MAX_HEADER_VALUE], const char *v, size_t n)
{
	if (n >= EWS_MAX_HEADER_VALUE) {
		out[0] = '\0';
		return;
	}
	memcpy(out, v, n);
	out[n] = '\0';
}

static bool name_is(const char *name, size_t n, const char *want)
{
	return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

/* "X-BackEndOverrideCookie=<v>; path=/; HttpOnly": keeps <v> when it is a valid cookie value. */
static void capture_cookie(struct ews_call *c, const char *v, size_t n)
{
	static const char want[] = "X-BackEndOverrideCookie=";
	size_t end = 0;

	if (n < sizeof(want) - 1 || strncasecmp(v, want, sizeof(want) - 1) != 0)
		return;
	v += sizeof(want) - 1;
	n -= sizeof(want) - 1;
	while (end < n && v[end] != ';')
		end++;
	while (end > 0 && v[end - 1] == ' ')
		end--;
	if (cookie_value_ok(v, end))
		capture(c->cookie, v, end);
}

/*
 * The channel binding token of the connection the current response arrives on: its server
 * certificate, taken from libcurl's OpenSSL session while the connection is attached to this
 * transfer (here, in the header callback of the 401 that carries the CHALLENGE). Another TLS
 * backend gives no certificate: the token stays zeros, which a server that requires channel
 * binding refuses, and the 401's message says why.
 */
static void capture_cbt(struct ews_call *c)
{
	struct curl_tlssessioninfo *ti = NULL;
	X509 *cert;
	unsigned char *der = NULL;
	int len;

	c->cbt_kind = CBT_UNAVAILABLE;
	memset(c->cbt, 0, sizeof(c->cbt));
	if (curl_easy_getinfo(c->easy, CURLINFO_TLS_SSL_PTR, &ti) != CURLE_OK || ti == NULL ||
	    ti->backend != CURLSSLBACKEND_OPENSSL || ti->internals == NULL)
		return;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	cert = SSL_get1_peer_certificate((const SSL *)ti->internals);
#else
	cert = SSL_get_peer_certificate((const SSL *)ti->internals);
#endif
	if (cert == NULL)
		return;
	len = i2d_X509(cert, &der);
	if (len > 0 && ews_channel_bindings_md5(c->t->crypto, der, (size_t)len, c->cbt, NULL) == 0)
		c->cbt_kind = CBT_CERT;
	OPENSSL_free(der);
	X509_free(cert);
}

/* A WWW-Authenticate value: notes an NTLM offer, and on leg 1's 401 keeps the CHALLENGE. */
static void capture_www_auth(struct ews_call *c, const char *v, size_t n)
{
	if (n < 4 || strncasecmp(v, "NTLM", 4) != 0 || (n > 4 && v[4] != ' '))
		return;
	c->offers_ntlm = true;
	if (c->leg != LEG_NEGOTIATE || c->status != 401 || n <= 5 || c->challenge != NULL ||
	    n >= NTLM_MAX_HEADER)
		return;
	c->challenge = xmalloc(n + 1);
	memcpy(c->challenge, v, n);
	c->challenge[n] = '\0';
	if (c->https)
		capture_cbt(c);
}

/* CURLOPT_HEADERFUNCTION: one whole header line (with its CRLF), or a status line. */
static size_t on_header(char *data, size_t size, size_t nitems, void *userp)
{
	struct ews_call *c = userp;
	size_t len = size * nitems;
	size_t colon = 0;
	const char *v;
	size_t n;

	c->last_data_usec = clock_now_usec();
	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		long status = 0;
		size_t i = 5;
		while (i < len && data[i] != ' ')
			i++;
		while (i < len && data[i] == ' ')
			i++;
		for (size_t k = 0; k < 3 && i < len && isdigit((unsigned char)data[i]); k++, i++)
			status = status * 10 + (data[i] - '0');
		reset_response(c, status);
		return len;
	}
	while (colon < len && data[colon] != ':')
		colon++;
	if (colon == len)
		return len;
	v = data + colon + 1;
	n = len - colon - 1;
	while (n > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	if (name_is(data, colon, "Set-Cookie"))
		capture_cookie(c, v, n);
	else if (name_is(data, colon, "request-id"))
		capture(c->request_id, v, n);
	else if (name_is(data, colon, "client-request-id"))
		capture(c->echoed_id, v, n);
	else if (name_is(data, colon, "X-BEServer"))
		capture(c->be_server, v, n);
	else if (name_is(data, colon, "X-CasErrorCode"))
		capture(c->cas_error, v, n);
	else if (name_is(data, colon, "Content-Type"))
		capture(c->content_type, v, n);
	else if (name_is(data, colon, "WWW-Authenticate"))
		capture_www_auth(c, v, n);
	return len;
}

/* CURLOPT_WRITEFUNCTION: a streaming call's 200 body goes to its chunk callback, everything
 * else into the bounded buffer. Returning CURL_WRITEFUNC_ERROR aborts the transfer. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct ews_call *c = userp;
	size_t len = size * nmemb;
	int rc;

	if (c->cancelled)
		return CURL_WRITEFUNC_ERROR;
	c->bytes += len;
	c->last_data_usec = clock_now_usec();
	if (c->chunk != NULL && c->status == 200) {
		rc = c->chunk(c->ctx, data, len, &c->cb_err);
		if (rc < 0) {
			c->cb_rc = rc;
			return CURL_WRITEFUNC_ERROR;
		}
		/* The chunk callback may have cancelled its own call. */
		return c->cancelled ? CURL_WRITEFUNC_ERROR : len;
	}
	if (buf_append(&c->body, data, len, NULL) < 0) {
		c->cb_rc = err_set(&c->cb_err, -EMSGSIZE,
		                   "POST to %s: answer over the limit of %zu bytes, aborted",
		                   c->host, c->body.max);
		return CURL_WRITEFUNC_ERROR;
	}
	return len;
}

/* -- outcome --------------------------------------------------------------------------------- */

static bool is_xml(const char *content_type)
{
	return strstr(content_type, "xml") != NULL;
}

/* Why our NTLM handshake ended in a 401, as far as the client can tell. */
static const char *ntlm_refused_why(const struct ews_call *c)
{
	if (c->new_conn_leg3)
		return "the connection closed between the NTLM legs (a proxy or load balancer that "
		       "does not keep it)";
	if (!c->https)
		return "wrong user or password, or a locked or expired account";
	if (c->cbt_kind == CBT_CERT)
		return "wrong user or password, a locked account, or Extended Protection refusing "
		       "the channel binding (TLS terminated in between)";
	return "wrong user or password, a locked account, or Extended Protection (no channel "
	       "binding: libcurl's TLS is not OpenSSL)";
}

/* rc and message for an HTTP answer that arrived whole. */
static int classify_status(struct ews_call *c, struct err *err)
{
	const char *h = c->host;
	long st = c->status;
	char *loc = NULL;

	if (st == 200)
		return 0;
	if (st == 500 && is_xml(c->content_type) && c->body.len > 0)
		return 0; /* a SOAP fault: the caller parses it */
	if (st == 401) {
		if (c->t->auth == EWS_AUTH_BEARER)
			return err_set(err, -EACCES,
			               "POST to %s: HTTP 401: the server refused the bearer token "
			               "(expired, for another audience, or bearer not enabled)",
			               h);
		if (c->our_ntlm && c->leg == LEG_AUTHENTICATE)
			return err_set(err, -EACCES,
			               "POST to %s: HTTP 401: authentication (%s) failed: %s", h,
			               ews_auth_name(c->t->auth), ntlm_refused_why(c));
		return err_set(
			err, -EACCES,
			"POST to %s: HTTP 401: authentication (%s) failed: wrong user or "
			"password, a locked or expired account, a method the server does not "
			"offer, or Extended Protection requiring channel binding",
			h, ews_auth_name(c->t->auth));
	}
	if (st == 403)
		return err_set(
			err, -EACCES,
			"POST to %s: HTTP 403: forbidden (EWS disabled for the account, or an "
			"IIS restriction such as Require SSL)",
			h);
	if (st == 456)
		return err_set(err, -EACCES, "POST to %s: HTTP 456: the account is locked out", h);
	if (st == 503)
		return err_set(
			err, -EAGAIN,
			"POST to %s: HTTP 503: the server is busy or EWS requests are queueing; "
			"back off",
			h);
	if (st >= 300 && st < 400) {
		(void)curl_easy_getinfo(c->easy, CURLINFO_REDIRECT_URL, &loc);
		return err_set(
			err, -EPROTO,
			"POST to %s: HTTP %ld redirect to '%.96s', not followed (a redirect to "
			"genericerrorpage.htm means an outage)",
			h, st, loc != NULL ? loc : "");
	}
	if (st >= 500)
		return err_set(err, -EIO, "POST to %s: HTTP %ld without a SOAP body%s%s", h, st,
		               c->cas_error[0] ? ": the front end could not proxy, X-CasErrorCode "
		                               : ": an opaque server error",
		               c->cas_error);
	if (st == 0)
		return err_set(err, -EPROTO, "POST to %s: no HTTP status in the answer", h);
	return err_set(err, -EPROTO,
	               "POST to %s: HTTP %ld: the server rejected the request (404: wrong EWS URL; "
	               "415: wrong Content-Type)",
	               h, st);
}

/* rc and message for a transfer libcurl ended with an error. */
static int classify_curl(struct ews_call *c, CURLcode res, struct err *err)
{
	const char *h = c->host;
	const char *why = c->errbuf[0] ? c->errbuf : curl_easy_strerror(res);
	curl_off_t connected = 0;

	switch (res) {
	case CURLE_COULDNT_RESOLVE_HOST:
		return err_set(err, -EHOSTUNREACH, "POST to %s: cannot resolve the host name: %s",
		               h, why);
	case CURLE_COULDNT_RESOLVE_PROXY:
		return err_set(err, -EHOSTUNREACH, "POST to %s: cannot resolve the proxy: %s", h,
		               why);
	case CURLE_COULDNT_CONNECT:
		return err_set(err, -ECONNREFUSED,
		               "POST to %s: cannot connect%s (refused or unreachable): %s", h,
		               c->t->proxy != NULL ? " through the proxy" : "", why);
	case CURLE_OPERATION_TIMEDOUT:
		/* Pre-transfer is the moment the request could go out: never reached means we never
		 * got a connection (to the server, or through the proxy). */
		(void)curl_easy_getinfo(c->easy, CURLINFO_PRETRANSFER_TIME_T, &connected);
		if (connected == 0)
			return err_set(err, -ETIMEDOUT, "POST to %s: connect timed out: %s", h,
			               why);
		if (c->chunk != NULL &&
		    (c->timeout_usec == 0 || clock_now_usec() - c->start_usec < c->timeout_usec))
			return err_set(err, -ETIMEDOUT,
			               "POST to %s: stream idle: nothing received for %" PRId64
			               " s, the connection is presumed dead",
			               h, c->idle_sec);
		return err_set(err, -ETIMEDOUT,
		               "POST to %s: no complete answer within %" PRId64 " ms: %s", h,
		               c->timeout_usec / 1000, why);
	case CURLE_PEER_FAILED_VERIFICATION:
		return err_set(
			err, -EKEYREJECTED,
			"POST to %s: TLS certificate not trusted (wrong or missing CA file, or "
			"the certificate does not name this host): %s",
			h, why);
	case CURLE_SSL_CACERT_BADFILE:
		return err_set(err, -ENOENT, "POST to %s: cannot read the CA file: %s", h, why);
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_USE_SSL_FAILED:
		return err_set(err, -EPROTO, "POST to %s: TLS handshake failed: %s", h, why);
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return err_set(
			err, -ECONNRESET,
			"POST to %s: the connection was closed or reset before the answer was "
			"complete: %s",
			h, why);
	case CURLE_FILESIZE_EXCEEDED:
		return err_set(err, -EMSGSIZE,
		               "POST to %s: answer over the limit of %zu bytes (Content-Length), "
		               "aborted",
		               h, c->body.max);
	case CURLE_PROXY:
		return err_set(err, -ECONNREFUSED, "POST to %s: the proxy refused the tunnel: %s",
		               h, why);
	case CURLE_AUTH_ERROR:
	case CURLE_LOGIN_DENIED:
		return err_set(err, -EACCES,
		               "POST to %s: authentication (%s) failed in the client: %s", h,
		               ews_auth_name(c->t->auth), why);
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
		return err_set(err, -EPROTO, "POST to %s: malformed HTTP answer: %s", h, why);
	case CURLE_OUT_OF_MEMORY:
		return err_set(err, -ENOMEM, "POST to %s: %s", h, why);
	default:
		return err_set(err, -EIO, "POST to %s: curl error %d: %s", h, (int)res, why);
	}
}

static void dispatch(struct ews_transport *t);

/*
 * Runs c's done callback with its outcome, then frees c. Outside libcurl only. The lane goes
 * back first, so that a call posted from the callback can reuse its connection.
 */
static void call_finish(struct ews_call *c, CURLcode res)
{
	struct ews_transport *t = c->t;
	struct ews_result r = {
		.http_status = c->status,
		.body = c->body.data != NULL ? c->body.data : "",
		.body_len = c->body.len,
		.content_type = c->content_type[0] ? c->content_type : NULL,
		.backend_cookie = c->cookie[0] ? c->cookie : NULL,
		.request_id = c->request_id[0] ? c->request_id : NULL,
		.client_request_id = c->client_request_id,
		.echoed_request_id = c->echoed_id[0] ? c->echoed_id : NULL,
		.be_server = c->be_server[0] ? c->be_server : NULL,
		.cas_error_code = c->cas_error[0] ? c->cas_error : NULL,
		.bytes = c->bytes,
		.elapsed_usec = clock_now_usec() - c->start_usec,
	};

	(void)curl_easy_getinfo(c->easy, CURLINFO_NUM_CONNECTS, &r.new_connections);
	r.new_connections += c->prior_connects;
	if (c->cb_rc < 0) {
		r.rc = c->cb_rc;
		r.err = c->cb_err;
	} else if (res == CURLE_OK) {
		r.rc = classify_status(c, &r.err);
	} else {
		r.rc = classify_curl(c, res, &r.err);
	}
	log_debug("ews: POST to %s: rc %d, HTTP %ld, %" PRIu64 " bytes, %" PRId64
	          " ms, %ld new connections, request-id %s, client-request-id %s",
	          c->host, r.rc, r.http_status, r.bytes, r.elapsed_usec / 1000, r.new_connections,
	          r.request_id != NULL ? r.request_id : "-", c->client_request_id);
	/* From here a cancel of c (from another callback) is a no-op. */
	c->done_running = true;
	call_detach(c, res == CURLE_OK);
	dispatch(t);
	t->in_done++;
	c->done(c->ctx, c, &r);
	t->in_done--;
	call_destroy(c);
}

/* A copy of c's headers plus "Authorization: <auth>". */
static int leg_headers(struct ews_call *c, const char *auth, struct err *err)
{
	struct curl_slist *l = NULL;
	struct buf line;
	int rc = 0;

	wipe_slist(&c->leg_headers);
	for (struct curl_slist *p = c->headers; p != NULL && rc == 0; p = p->next) {
		struct curl_slist *n = curl_slist_append(l, p->data);
		if (n == NULL)
			rc = err_set(err, -ENOMEM, "POST to %s: out of memory", c->host);
		else
			l = n;
	}
	buf_init(&line, NTLM_MAX_HEADER + 32);
	if (rc == 0 && (buf_append(&line, "Authorization: ", 15, NULL) < 0 ||
	                buf_append(&line, auth, strlen(auth), NULL) < 0))
		rc = err_set(err, -EMSGSIZE, "POST to %s: NTLM message too long", c->host);
	if (rc == 0) {
		struct curl_slist *n = curl_slist_append(l, line.data);
		if (n == NULL)
			rc = err_set(err, -ENOMEM, "POST to %s: out of memory", c->host);
		else
			l = n;
	}
	if (line.data != NULL)
		explicit_bzero(line.data, line.len);
	buf_free(&line);
	c->leg_headers = l;
	if (rc < 0)
		wipe_slist(&c->leg_headers);
	return rc;
}

/* libcurl's own authentication for a call that does not use ours. */
static void set_auth(struct ews_call *c)
{
	struct ews_transport *t = c->t;
	CURL *e = c->easy;
	unsigned long method = CURLAUTH_NONE;
	const char *user = NULL;
	const char *password = NULL;

	if (!c->our_ntlm) {
		switch (t->auth) {
		case EWS_AUTH_BASIC:
			method = CURLAUTH_BASIC;
			user = t->user;
			password = t->password;
			break;
		case EWS_AUTH_NEGOTIATE:
			/* GSS-API takes the Kerberos ticket from the process's credential cache;
			 * libcurl tries only with a user name set, and never needs the password. */
			method = CURLAUTH_NEGOTIATE;
			user = t->user != NULL ? t->user : "";
			break;
		case EWS_AUTH_BEARER:
			method = CURLAUTH_BEARER;
			(void)curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, t->token);
			break;
		case EWS_AUTH_NTLM:
		case EWS_AUTH_NONE:
			break;
		}
	}
	(void)curl_easy_setopt(e, CURLOPT_HTTPAUTH, method);
	(void)curl_easy_setopt(e, CURLOPT_USERNAME, user);
	(void)curl_easy_setopt(e, CURLOPT_PASSWORD, password);
}

/*
 * Puts c into the multi handle for its next request: leg (with the Authorization value auth,
 * or none), on its lane's connection. Outside libcurl only. 0, or a negative errno with err.
 */
static int leg_start(struct ews_call *c, enum leg leg, const char *auth, struct err *err)
{
	struct ews_transport *t = c->t;
	CURL *e = c->easy;
	long nc = 0;
	int rc = 0;

	assert(t->in_curl == 0 && c->lane != NULL);
	if (c->added) {
		(void)curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &nc);
		c->prior_connects += nc;
		(void)curl_multi_remove_handle(t->multi, e);
		c->added = false;
	}
	if (c->timeout_usec > 0) {
		int64_t left = c->timeout_usec - (clock_now_usec() - c->start_usec);
		if (left <= 0)
			return err_set(err, -ETIMEDOUT,
			               "POST to %s: no complete answer within %" PRId64 " ms",
			               c->host, c->timeout_usec / 1000);
		(void)curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)((left + 999) / 1000));
	}
	set_auth(c);
	if (auth != NULL)
		rc = leg_headers(c, auth, err);
	else
		wipe_slist(&c->leg_headers);
	if (rc < 0)
		return rc;
	(void)curl_easy_setopt(e, CURLOPT_HTTPHEADER,
	                       c->leg_headers != NULL ? c->leg_headers : c->headers);
	/* NTLM's first leg goes without the body, as libcurl's own NTLM sends it: the server
	 * answers it with a 401 in any case. */
	if (leg == LEG_NEGOTIATE) {
		(void)curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
		(void)curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	} else {
		(void)curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->req);
		(void)curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->req_len);
	}
	c->leg = leg;
	reset_response(c, 0);
	c->bytes = 0;
	c->errbuf[0] = '\0';
	if (curl_multi_add_handle(t->multi, e) != CURLM_OK)
		return err_set(err, -EIO, "POST to %s: libcurl refused the transfer", c->host);
	c->added = true;
	c->last_data_usec = clock_now_usec();
	if (c->chunk != NULL && !uv_is_active((uv_handle_t *)&t->itimer))
		(void)uv_timer_start(&t->itimer, on_itimer, IDLE_CHECK_MS, IDLE_CHECK_MS);
	return 0;
}

/* Leg 1 of an NTLM handshake on c's lane. */
static int ntlm_begin(struct ews_call *c, struct err *err)
{
	char *hdr = NULL;
	int rc;

	c->handshakes++;
	c->cbt_kind = c->https ? CBT_UNAVAILABLE : CBT_NONE;
	ews_ntlm_free(c->ntlm);
	c->ntlm = ews_ntlm_new(c->t->crypto, c->t->user, c->t->password, err);
	if (c->ntlm == NULL)
		return err->code < 0 ? err->code : -EINVAL;
	rc = ews_ntlm_negotiate_header(c->ntlm, &hdr, err);
	if (rc == 0)
		rc = leg_start(c, LEG_NEGOTIATE, hdr, err);
	wipe_free(hdr);
	return rc;
}

/* Leg 3: AUTHENTICATE for the CHALLENGE leg 1 brought, with the channel binding. */
static int ntlm_finish(struct ews_call *c, struct err *err)
{
	char *hdr = NULL;
	struct err e = {0};
	int rc;

	rc = ews_ntlm_authenticate_header(
		c->ntlm, c->challenge, c->cbt_kind == CBT_CERT ? c->cbt : NULL, c->spn, &hdr, &e);
	/* The keys derived from the password are needed no longer. */
	ews_ntlm_free(c->ntlm);
	c->ntlm = NULL;
	if (rc < 0)
		return err_set(err, rc, "POST to %s: the server's NTLM challenge: %s", c->host,
		               e.msg);
	rc = leg_start(c, LEG_AUTHENTICATE, hdr, err);
	wipe_free(hdr);
	return rc;
}

/*
 * After one request of c ended: whether another leg follows (then it is started), or c is
 * finished. Keeps the lane's idea of its connection current. Outside libcurl only.
 */
static bool next_leg(struct ews_call *c, CURLcode res)
{
	struct ews_transport *t = c->t;
	struct lane *l = c->lane;
	long nc = 0;
	int rc = 1;

	(void)curl_easy_getinfo(c->easy, CURLINFO_NUM_CONNECTS, &nc);
	if (nc > 0)
		l->authed = false; /* a new connection: nothing authenticated it yet */
	if (res != CURLE_OK) {
		l->authed = false;
		return false;
	}
	switch (c->leg) {
	case LEG_PLAIN:
		if (c->status != 401)
			return false;
		l->authed = false;
		if (!c->offers_ntlm || c->handshakes > 0 || c->t->user == NULL ||
		    c->t->password == NULL)
			return false;
		if (!c->our_ntlm) {
			/* libcurl 7.88 does not fall back from Negotiate to NTLM when GSS-API
			 * cannot make a token (no Kerberos ticket): the call ends with the 401. */
			if (t->auth != EWS_AUTH_NEGOTIATE)
				return false;
			c->our_ntlm = true;
			c->ntlm_retry = true;
			log_debug("ews: POST to %s: Negotiate refused, trying NTLM", c->host);
		} else {
			log_debug(
				"ews: POST to %s: the connection is not authenticated (any more), "
				"NTLM handshake",
				c->host);
		}
		rc = ntlm_begin(c, &c->cb_err);
		break;
	case LEG_NEGOTIATE:
		if (c->status == 401 && c->challenge != NULL) {
			rc = ntlm_finish(c, &c->cb_err);
		} else if (c->status == 401) {
			rc = err_set(&c->cb_err, -EACCES,
			             "POST to %s: HTTP 401: the server did not answer NTLM's first "
			             "message with a challenge (NTLM not enabled, or a proxy in "
			             "between strips it)",
			             c->host);
		} else if (!c->plain_resend) {
			/* Not asked to authenticate: the request goes again as it is, once. */
			c->plain_resend = true;
			rc = leg_start(c, LEG_PLAIN, NULL, &c->cb_err);
		} else {
			return false;
		}
		break;
	case LEG_AUTHENTICATE:
		if (nc > 0)
			c->new_conn_leg3 = true;
		if (c->status != 401) {
			l->authed = true;
			if (c->ntlm_retry && !t->ntlm_fallback) {
				t->ntlm_fallback = true;
				log_debug(
					"ews: Negotiate failed and NTLM worked: using NTLM from now on");
			}
		}
		return false;
	}
	if (rc < 0) {
		c->cb_rc = rc;
		return false;
	}
	return true;
}

/* Finishes a call that never reached libcurl's end, with rc and a message. */
static void call_fail(struct ews_call *c, int rc, const char *what)
{
	c->cb_rc = err_set(&c->cb_err, rc, "POST to %s: %s", c->host, what);
	call_finish(c, CURLE_ABORTED_BY_CALLBACK);
}

static void fail_all(struct ews_transport *t, int rc, const char *what)
{
	t->dead = true;
	while (t->calls != NULL) {
		struct ews_call *c = t->calls;
		if (c->cancelled)
			call_destroy(c);
		else
			call_fail(c, rc, what);
	}
}

/* -- waiting for a lane ---------------------------------------------------------------------- */

/* Starts c on lane l. On failure l is free again and err says why. */
static int call_start(struct ews_call *c, struct lane *l, struct err *err)
{
	struct ews_transport *t = c->t;
	int rc;

	l->call = c;
	c->lane = l;
	if (strcmp(l->origin, c->origin) != 0) {
		(void)snprintf(l->origin, sizeof(l->origin), "%s", c->origin);
		l->authed = false;
	}
	c->our_ntlm =
		t->auth == EWS_AUTH_NTLM || (t->auth == EWS_AUTH_NEGOTIATE && t->ntlm_fallback &&
	                                     t->user != NULL && t->password != NULL);
	(void)curl_easy_setopt(c->easy, CURLOPT_SHARE, l->share);
	if (c->our_ntlm && !lane_fresh(l, clock_now_usec()))
		rc = ntlm_begin(c, err);
	else
		rc = leg_start(c, LEG_PLAIN, NULL, err);
	if (rc < 0 && c->added) {
		(void)curl_multi_remove_handle(t->multi, c->easy);
		c->added = false;
	}
	if (rc < 0)
		lane_release(c, true);
	return rc;
}

/* When the next queued call times out, or 0 when one must be failed now; -1: none. */
static int64_t queue_next_usec(const struct ews_transport *t, int64_t now)
{
	int64_t next = -1;

	for (const struct ews_call *c = t->queue_head; c != NULL; c = c->qnext) {
		int64_t at;
		if (c->start_failed)
			return 0;
		if (c->timeout_usec <= 0)
			continue;
		at = c->start_usec + c->timeout_usec - now;
		if (at < 0)
			at = 0;
		if (next < 0 || at < next)
			next = at;
	}
	return next;
}

static void on_qtimer(uv_timer_t *timer);

static void queue_arm(struct ews_transport *t)
{
	int64_t next;

	if (t->freeing)
		return;
	next = queue_next_usec(t, clock_now_usec());
	if (next < 0)
		(void)uv_timer_stop(&t->qtimer);
	else
		(void)uv_timer_start(&t->qtimer, on_qtimer, (uint64_t)((next + 999) / 1000), 0);
}

/* Gives free lanes to waiting calls, oldest first. Never runs a callback. */
static void dispatch(struct ews_transport *t)
{
	struct ews_call *c;
	struct ews_call *next;
	int64_t now;

	if (t->in_curl > 0 || t->freeing || t->dead) {
		t->dispatch_needed = t->in_curl > 0;
		return;
	}
	t->dispatch_needed = false;
	now = clock_now_usec();
	for (c = t->queue_head; c != NULL; c = next) {
		struct lane *l;

		next = c->qnext;
		/* One whose time is up waits for the queue timer, which says so. */
		if (c->start_failed ||
		    (c->timeout_usec > 0 && now - c->start_usec >= c->timeout_usec))
			continue;
		l = lane_pick(t, c);
		if (l == NULL)
			continue;
		queue_remove(c);
		if (call_start(c, l, &c->cb_err) < 0) {
			c->cb_rc = c->cb_err.code;
			c->start_failed = true;
			queue_add(c);
		}
	}
	queue_arm(t);
}

/* Fails the queued calls whose time is up or whose start failed, one at a time: each done
 * callback may cancel or post others. */
/*
 * Once a second while streams are open: a stream that received nothing (not even a heartbeat)
 * for its idle_sec ends with the idle timeout. libcurl's own low-speed check would do the same,
 * but it wakes the loop once a second for every stream: 250 wakeups a second for 50,000
 * mailboxes, which was most of calsync's CPU when idle (bench/run). One sweep costs one.
 */
static void on_itimer(uv_timer_t *timer)
{
	struct ews_transport *t = timer->data;
	int64_t now = clock_now_usec();
	bool streams = false;
	struct ews_call *c = t->calls;

	while (c != NULL) {
		if (c->chunk == NULL || !c->added || c->done_running || c->cancelled) {
			c = c->next;
			continue;
		}
		if (now - c->last_data_usec < c->idle_sec * USEC_PER_SEC) {
			streams = true;
			c = c->next;
			continue;
		}
		/* The done callback may post or cancel other calls: start over afterwards. */
		call_finish(c, CURLE_OPERATION_TIMEDOUT);
		c = t->calls;
		streams = false;
	}
	if (!streams)
		(void)uv_timer_stop(&t->itimer);
}

static void on_qtimer(uv_timer_t *timer)
{
	struct ews_transport *t = timer->data;

	for (;;) {
		int64_t now = clock_now_usec();
		struct ews_call *c = t->queue_head;

		while (c != NULL && !c->start_failed &&
		       !(c->timeout_usec > 0 && now - c->start_usec >= c->timeout_usec))
			c = c->qnext;
		if (c == NULL)
			break;
		if (!c->start_failed)
			c->cb_rc =
				err_set(&c->cb_err, -ETIMEDOUT,
			                "POST to %s: no connection free within %" PRId64
			                " ms (at most %u to a host, %u in all, all busy)",
			                c->host, c->timeout_usec / 1000, t->max_host, t->max_total);
		call_finish(c, CURLE_ABORTED_BY_CALLBACK);
	}
	queue_arm(t);
}

/* Work that could not be done inside libcurl, and the finished transfers. */
static void after_action(struct ews_transport *t)
{
	CURLMsg *msg;
	int pending = 0;

	while ((msg = curl_multi_info_read(t->multi, &pending)) != NULL) {
		struct ews_call *c;
		char *priv = NULL;
		CURLcode res = msg->data.result;

		if (msg->msg != CURLMSG_DONE)
			continue;
		(void)curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		c = (struct ews_call *)(void *)priv;
		if (c->cancelled) {
			call_destroy(c);
			continue;
		}
		if (next_leg(c, res))
			continue;
		call_finish(c, res);
	}
	if (t->reap_needed) {
		struct ews_call *c = t->calls;
		t->reap_needed = false;
		while (c != NULL) {
			struct ews_call *next = c->next;
			if (c->cancelled)
				call_destroy(c);
			c = next;
		}
	}
	if (t->dispatch_needed)
		dispatch(t);
}

/* -- the transport --------------------------------------------------------------------------- */

static void transport_release(struct ews_transport *t)
{
	wipe_free(t->user);
	wipe_free(t->password);
	wipe_free(t->token);
	free(t->ca_file);
	wipe_free(t->proxy); /* may hold proxy credentials */
	free(t->user_agent);
	t->user = t->password = t->token = t->ca_file = t->proxy = t->user_agent = NULL;
	for (unsigned i = 0; i < t->n_lanes; i++)
		(void)curl_share_cleanup(t->lanes[i].share);
	free(t->lanes);
	t->lanes = NULL;
	t->n_lanes = 0;
	ews_ntlm_crypto_free(t->crypto); /* after the calls, whose handshakes borrow it */
	t->crypto = NULL;
	if (t->global_init)
		curl_global_cleanup();
	t->global_init = false;
}

static int check_secret(const char *what, const char *s, struct err *err)
{
	if (s == NULL)
		return 0;
	for (const char *p = s; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return err_set(err, -EINVAL,
			               "transport: the %s contains a control character", what);
	}
	return 0;
}

/*
 * The OpenSSL context of our NTLM, when the options can use it (ntlm, or negotiate's NTLM
 * fallback, with a user and a password), in *out, else NULL. It also checks that ews-ntlm
 * accepts the user name, so that a bad one fails here and not at the first handshake.
 */
static int ntlm_crypto(const struct ews_transport_opts *o, struct ews_ntlm_crypto **out,
                       struct err *err)
{
	struct err e = {0};
	struct ews_ntlm_crypto *cr;
	struct ews_ntlm *n;

	*out = NULL;
	if (o->user == NULL || o->password == NULL ||
	    (o->auth != EWS_AUTH_NTLM && o->auth != EWS_AUTH_NEGOTIATE))
		return 0;
	cr = ews_ntlm_crypto_new();
	n = ews_ntlm_new(cr, o->user, o->password, &e);
	if (n == NULL) {
		ews_ntlm_crypto_free(cr);
		return err_set(err, -EINVAL, "transport: NTLM cannot use this user name: %s",
		               e.msg);
	}
	ews_ntlm_free(n);
	*out = cr;
	return 0;
}

int ews_transport_new(struct uv_loop_s *loop, const struct ews_transport_opts *o,
                      struct ews_transport **out_t, struct err *err)
{
	struct ews_transport *t;
	struct ews_ntlm_crypto *crypto = NULL;
	char ua[64];
	int rc;

	if (loop == NULL || o == NULL)
		return err_set(err, -EINVAL, "transport: no loop or no options");
	if ((o->auth == EWS_AUTH_BASIC || o->auth == EWS_AUTH_NTLM) &&
	    (o->user == NULL || o->user[0] == '\0' || o->password == NULL))
		return err_set(err, -EINVAL, "transport: %s needs a user and a password",
		               ews_auth_name(o->auth));
	if (o->auth == EWS_AUTH_BEARER && (o->token == NULL || o->token[0] == '\0'))
		return err_set(err, -EINVAL, "transport: bearer needs a token");
	if ((unsigned)o->auth > EWS_AUTH_BEARER)
		return err_set(err, -EINVAL, "transport: unknown authentication %d", (int)o->auth);
	if (o->connect_timeout_usec < 0 || o->timeout_usec < 0 || o->idle_timeout_usec < 0)
		return err_set(err, -EINVAL, "transport: negative timeout");
	rc = check_secret("user", o->user, err);
	if (rc == 0)
		rc = check_secret("password", o->password, err);
	if (rc == 0)
		rc = check_secret("token", o->token, err);
	if (rc == 0 && o->user_agent != NULL && !header_value_ok(o->user_agent))
		rc = err_set(err, -EINVAL, "transport: bad User-Agent");
	if (rc == 0)
		rc = ntlm_crypto(o, &crypto, err);
	if (rc < 0)
		return rc;

	t = xcalloc(1, sizeof(*t));
	t->loop = loop;
	t->crypto = crypto;
	t->auth = o->auth;
	t->user = dup_or_null(o->user);
	t->password = dup_or_null(o->password);
	t->token = dup_or_null(o->token);
	t->ca_file = dup_or_null(o->ca_file);
	t->proxy = dup_or_null(o->proxy);
	(void)snprintf(ua, sizeof(ua), "calsync/%s", CALSYNC_VERSION);
	t->user_agent = xstrdup(o->user_agent != NULL ? o->user_agent : ua);
	t->insecure = o->insecure_skip_tls_verify;
	t->connect_timeout_usec = o->connect_timeout_usec ? o->connect_timeout_usec
	                                                  : EWS_TRANSPORT_CONNECT_TIMEOUT_USEC;
	t->timeout_usec = o->timeout_usec ? o->timeout_usec : EWS_TRANSPORT_TIMEOUT_USEC;
	t->idle_timeout_usec =
		o->idle_timeout_usec ? o->idle_timeout_usec : EWS_TRANSPORT_IDLE_TIMEOUT_USEC;
	t->max_response = o->max_response ? o->max_response : EWS_MAX_RESPONSE;
	t->max_host = o->max_host_connections ? o->max_host_connections
	                                      : EWS_TRANSPORT_MAX_HOST_CONNECTIONS;
	t->max_total = o->max_total_connections ? o->max_total_connections
	                                        : EWS_TRANSPORT_MAX_TOTAL_CONNECTIONS;
	t->lanes = xcalloc(t->max_total, sizeof(*t->lanes));

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		rc = err_set(err, -EIO, "transport: curl_global_init failed");
		goto fail;
	}
	t->global_init = true;
	t->multi = curl_multi_init();
	if (t->multi == NULL) {
		rc = err_set(err, -EIO, "transport: curl_multi_init failed");
		goto fail;
	}
	(void)curl_multi_setopt(t->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	(void)curl_multi_setopt(t->multi, CURLMOPT_SOCKETDATA, t);
	(void)curl_multi_setopt(t->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	(void)curl_multi_setopt(t->multi, CURLMOPT_TIMERDATA, t);
	/* HTTP/1.1 only, one request per connection at a time: NTLM authenticates connections. */
	(void)curl_multi_setopt(t->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
	/* Every transfer uses a lane's cache, and libcurl applies this cap to each cache: one
	 * idle connection per lane. The connection caps are the lanes' (lane_pick). */
	(void)curl_multi_setopt(t->multi, CURLMOPT_MAXCONNECTS, 1L);
	(void)uv_timer_init(loop, &t->timer);
	t->timer.data = t;
	(void)uv_timer_init(loop, &t->qtimer);
	t->qtimer.data = t;
	(void)uv_timer_init(loop, &t->itimer);
	t->itimer.data = t;
	uv_unref((uv_handle_t *)&t->itimer); /* a check, not work: never keeps the loop alive */
	t->timer_init = true;
	t->open_handles += 3;
	*out_t = t;
	return 0;
fail:
	if (t->multi != NULL)
		(void)curl_multi_cleanup(t->multi);
	transport_release(t);
	free(t);
	return rc;
}

void ews_transport_free(struct ews_transport *t)
{
	if (t == NULL)
		return;
	assert(t->in_curl == 0 && t->in_done == 0);
	/* No queued call may start now; the handles close asynchronously, so t lives on. */
	t->freeing = true;
	while (t->calls != NULL)
		call_destroy(t->calls);
	/* Closing the pooled connections may call on_curl_socket(CURL_POLL_REMOVE). */
	(void)curl_multi_cleanup(t->multi);
	t->multi = NULL;
	while (t->socks != NULL)
		sock_close(t->socks);
	transport_release(t); /* the lanes' caches close their idle connections */
	uv_close((uv_handle_t *)&t->timer, on_timer_closed);
	uv_close((uv_handle_t *)&t->qtimer, on_timer_closed);
	uv_close((uv_handle_t *)&t->itimer, on_timer_closed);
}

size_t ews_transport_active(const struct ews_transport *t)
{
	return t->n_calls;
}

/*
 * Sets up the URL and keeps its host (for messages and the SPN) and its origin (for lanes);
 * rejects credentials in the URL.
 */
static int set_url(struct ews_call *c, const char *url, struct err *err)
{
	CURLU *u;
	char *part = NULL;
	char *port = NULL;
	char *scheme = NULL;
	int rc = 0;
	int n;

	if (url == NULL || url[0] == '\0')
		return err_set(err, -EINVAL, "POST: no URL");
	if (strlen(url) > EWS_MAX_URL)
		return err_set(err, -EINVAL, "POST: URL over %u bytes", EWS_MAX_URL);
	u = curl_url();
	if (u == NULL)
		return err_set(err, -ENOMEM, "POST: curl_url failed");
	/* The URL is printed in messages only once we know it holds no user:password@. */
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
		rc = err_set(err, -EINVAL, "POST: malformed URL");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK) {
		rc = err_set(err, -EINVAL, "POST: the URL holds credentials; pass them as options");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0)) {
		rc = err_set(err, -EINVAL, "POST: URL '%.128s' is not http:// or https://", url);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &part, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		rc = err_set(err, -EINVAL, "POST: URL '%.128s' has no host", url);
		goto out;
	}
	c->https = strcmp(scheme, "https") == 0;
	(void)snprintf(c->host, sizeof(c->host), "%s", part);
	n = snprintf(c->origin, sizeof(c->origin), "%s://%s:%s", scheme, part, port);
	if (n < 0 || (size_t)n >= sizeof(c->origin)) {
		rc = err_set(err, -EINVAL, "POST: the host name in '%.128s' is too long", url);
		goto out;
	}
	(void)snprintf(c->spn, sizeof(c->spn), "HTTP/%s", part);
	if (curl_easy_setopt(c->easy, CURLOPT_URL, url) != CURLE_OK)
		rc = err_set(err, -EINVAL, "POST: libcurl refused the URL '%.128s'", url);
out:
	curl_free(part);
	curl_free(port);
	curl_free(scheme);
	curl_url_cleanup(u);
	return rc;
}

static int add_header(struct ews_call *c, const char *name, const char *value, struct err *err)
{
	char line[EWS_MAX_REQUEST_HEADER + 64];
	struct curl_slist *l;

	if (!header_value_ok(value))
		return err_set(err, -EINVAL,
		               "POST: bad %s value (empty, over %u bytes, or not printable ASCII)",
		               name, EWS_MAX_REQUEST_HEADER);
	(void)snprintf(line, sizeof(line), "%s: %s", name, value);
	l = curl_slist_append(c->headers, line);
	if (l == NULL)
		return err_set(err, -ENOMEM, "POST: out of memory");
	c->headers = l;
	return 0;
}

/* Everything about c's easy handle that is the same on every leg; the authentication, the
 * body and the lane are set per leg. */
static int setup_easy(struct ews_call *c, const struct ews_call_opts *o, const char *body,
                      size_t len, struct err *err)
{
	struct ews_transport *t = c->t;
	CURL *e = c->easy;
	char cookie[EWS_MAX_HEADER_VALUE + 32];
	char quoted[EWS_MAX_REQUEST_HEADER + 3];
	int rc;

	rc = set_url(c, o->url, err);
	if (rc < 0)
		return rc;
	/* Never verbose: its trace would show the Authorization headers. */
	(void)curl_easy_setopt(e, CURLOPT_VERBOSE, 0L);
	(void)curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(e, CURLOPT_PRIVATE, c);
	(void)curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
	(void)curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	(void)curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	(void)curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	(void)curl_easy_setopt(e, CURLOPT_USERAGENT, t->user_agent);
	(void)curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	(void)curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, TCP_KEEPIDLE_SEC);
	(void)curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, TCP_KEEPINTVL_SEC);
	(void)curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, MAX_IDLE_SEC);
	(void)curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	                       (long)((t->connect_timeout_usec + 999) / 1000));

	/* TLS: verified unless the caller asked for the insecure mode, TLS 1.2 at least. */
	(void)curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	(void)curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, t->insecure ? 0L : 1L);
	(void)curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, t->insecure ? 0L : 2L);
	if (t->ca_file != NULL)
		(void)curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file);

	/* "" stops libcurl from reading http_proxy and friends from the environment. A proxy is
	 * always used as a CONNECT tunnel, for plain HTTP too: one client connection is then one
	 * server connection, which NTLM needs, and the proxy sees no EWS headers. Over a tunnel
	 * TLS still ends at the server, so the channel binding is the server's certificate. */
	(void)curl_easy_setopt(e, CURLOPT_PROXY, t->proxy != NULL ? t->proxy : "");
	if (t->proxy != NULL) {
		(void)curl_easy_setopt(e, CURLOPT_HTTPPROXYTUNNEL, 1L);
		(void)curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	}

	rc = add_header(c, "Content-Type", "text/xml; charset=utf-8", err);
	/* No "Expect: 100-continue" round trip for large bodies. */
	if (rc == 0) {
		struct curl_slist *l = curl_slist_append(c->headers, "Expect:");
		if (l == NULL)
			return err_set(err, -ENOMEM, "POST: out of memory");
		c->headers = l;
	}
	if (rc == 0 && o->anchor_mailbox != NULL)
		rc = add_header(c, "X-AnchorMailbox", o->anchor_mailbox, err);
	if (rc == 0 && o->prefer_affinity)
		rc = add_header(c, "X-PreferServerAffinity", "true", err);
	if (rc == 0)
		rc = add_header(c, "client-request-id", c->client_request_id, err);
	if (rc == 0)
		rc = add_header(c, "return-client-request-id", "true", err);
	if (rc == 0 && o->soap_action != NULL) {
		if (!header_value_ok(o->soap_action) || strchr(o->soap_action, '"') != NULL)
			return err_set(err, -EINVAL, "POST: bad SOAPAction value");
		(void)snprintf(quoted, sizeof(quoted), "\"%s\"", o->soap_action);
		rc = add_header(c, "SOAPAction", quoted, err);
	}
	if (rc < 0)
		return rc;
	if (o->backend_cookie != NULL) {
		if (!cookie_value_ok(o->backend_cookie, strlen(o->backend_cookie)))
			return err_set(err, -EINVAL, "POST: bad X-BackEndOverrideCookie value");
		(void)snprintf(cookie, sizeof(cookie), "X-BackEndOverrideCookie=%s",
		               o->backend_cookie);
		(void)curl_easy_setopt(e, CURLOPT_COOKIE, cookie);
	}

	c->req = xmalloc(len + 1);
	if (len > 0)
		memcpy(c->req, body, len);
	c->req[len] = '\0';
	c->req_len = len;
	(void)curl_easy_setopt(e, CURLOPT_POST, 1L);

	(void)curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	(void)curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
	(void)curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	(void)curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
	if (c->chunk == NULL) {
		/* A stream lasts up to ConnectionTimeout (30 min): no total timeout, but the idle
		 * check (on_itimer) ends it when nothing arrived for idle_sec seconds. A cap, if the
		 * caller set one, is set per leg (leg_start). */
		(void)curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->max_response);
	}
	return 0;
}

int ews_transport_post(struct ews_transport *t, const struct ews_call_opts *o, const char *body,
                       size_t len, ews_done_fn *done, void *ctx, struct ews_call **out_call,
                       struct err *err)
{
	struct ews_call *c;
	struct lane *l = NULL;
	int rc;

	if (t == NULL || o == NULL || done == NULL || (body == NULL && len > 0))
		return err_set(err, -EINVAL, "POST: missing transport, options, body or callback");
	if (t->dead)
		return err_set(err, -EIO, "POST: the transport failed earlier");
	if (len > INT32_MAX)
		return err_set(err, -EMSGSIZE, "POST: body of %zu bytes is too large", len);
	if (o->timeout_usec < 0 || o->idle_timeout_usec < 0)
		return err_set(err, -EINVAL, "POST: negative timeout");
	if (o->client_request_id != NULL && !header_value_ok(o->client_request_id))
		return err_set(err, -EINVAL, "POST: bad client-request-id");

	c = xcalloc(1, sizeof(*c));
	c->t = t;
	c->done = done;
	c->chunk = o->chunk_fn;
	c->ctx = ctx;
	c->start_usec = clock_now_usec();
	c->timeout_usec = o->timeout_usec;
	if (c->timeout_usec == 0 && o->chunk_fn == NULL)
		c->timeout_usec = t->timeout_usec;
	c->idle_sec = o->idle_timeout_usec ? o->idle_timeout_usec : t->idle_timeout_usec;
	c->idle_sec = (c->idle_sec + 999999) / 1000000;
	if (o->client_request_id != NULL)
		(void)snprintf(c->client_request_id, sizeof(c->client_request_id), "%s",
		               o->client_request_id);
	else
		new_request_id(t, c->client_request_id);
	(void)snprintf(c->host, sizeof(c->host), "?");
	buf_init(&c->body, t->max_response);
	c->next = t->calls;
	if (t->calls != NULL)
		t->calls->prev = c;
	t->calls = c;
	t->n_calls++;

	c->easy = curl_easy_init();
	if (c->easy == NULL) {
		rc = err_set(err, -EIO, "POST: curl_easy_init failed");
		goto fail;
	}
	rc = setup_easy(c, o, body, len, err);
	if (rc < 0)
		goto fail;
	/* Inside libcurl (a chunk callback) no handle may be added: the call waits for
	 * after_action. Otherwise it starts now if a lane is free, else it waits for one. */
	if (t->in_curl == 0)
		l = lane_pick(t, c);
	if (l != NULL) {
		rc = call_start(c, l, err);
		if (rc < 0)
			goto fail;
	} else {
		queue_add(c);
		if (t->in_curl > 0)
			t->dispatch_needed = true;
		queue_arm(t);
	}
	if (out_call != NULL)
		*out_call = c;
	return 0;
fail:
	call_destroy(c);
	return rc;
}

void ews_transport_cancel(struct ews_call *c)
{
	struct ews_transport *t;

	if (c == NULL || c->cancelled || c->done_running)
		return;
	t = c->t;
	c->cancelled = true;
	if (t->in_curl > 0 && c->added) {
		/* Inside libcurl (a chunk callback): on_body refuses further data and the handle
		 * is removed right after the action. */
		t->reap_needed = true;
		return;
	}
	call_destroy(c);
	dispatch(t);
}
