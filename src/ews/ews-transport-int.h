/* SPDX-License-Identifier: MIT */
/*
 * ews-transport-int.h: the transport's insides, shared by its files and by nothing else. The
 * public interface is ews-transport.h; the overview is atop ews-transport.c. The files:
 *
 *   ews-transport.c           the public functions: options, a transport's life, post, cancel
 *   ews-transport-loop.c      libcurl's multi handle on the libuv loop: sockets, the timer,
 *                             the finished transfers after each action
 *   ews-transport-call.c      a call's life: the queue of calls waiting for a lane, dispatch,
 *                             the done callback, freeing
 *   ews-transport-lane.c      lanes (one-connection caches), checkout and return, and the NTLM
 *                             legs with the channel binding from the TLS session
 *   ews-transport-easy.c      the easy handle: URL, headers, TLS, proxy, and each leg's
 *                             authentication, body and timeout
 *   ews-transport-response.c  the answer as it arrives: the status, the headers we capture,
 *                             the bounded body
 *   ews-transport-stream.c    streaming calls: the body handed on as it arrives, the idle check
 *   ews-transport-outcome.c   rc and message for how a call ended
 *
 * Everything here runs on the loop's thread. "Outside libcurl" means not inside
 * curl_multi_socket_action() (t->in_curl == 0), where easy handles may be added and removed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <uv.h>

#include "base/buf.h"
#include "base/err.h"
#include "ews/ews-ntlm.h"
#include "ews/ews-transport.h"

struct ews_ntlm;
struct ews_ntlm_crypto;

/* "https://" + a DNS name (at most 253) or a bracketed IPv6 address + ":65535". */
#define EWS_MAX_ORIGIN 288u

/* Host names in messages are cut here so that the rest of the message fits in struct err. */
#define EWS_HOST_IN_MSG 64u

/* libcurl reuses an idle connection for this long (CURLOPT_MAXAGE_CONN, set explicitly), which
 * is under IIS's 120 s idle timeout. A lane idle for longer has no authenticated connection. */
#define EWS_MAX_IDLE_SEC 118L

/* The longest WWW-Authenticate value with an NTLM CHALLENGE we keep: "NTLM " and the base64 of
 * the largest message ews-ntlm accepts. A longer one is not a challenge we could answer. */
#define EWS_MAX_NTLM_HEADER (5u + 4u * ((EWS_NTLM_MAX_MESSAGE + 2u) / 3u))

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
	char *token;           /* BEARER: this call's own token (a copy, wiped), or NULL */
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
	char retry_after[EWS_MAX_HEADER_VALUE];

	int cb_rc; /* why our write callback, or the handshake, stopped the call */
	struct err cb_err;
	char errbuf[CURL_ERROR_SIZE];
	char host[EWS_HOST_IN_MSG + 1];
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

/* -- ews-transport-loop.c --------------------------------------------------------------------- */

/* libcurl's global state, the multi handle wired to t->loop and the three timers. 0, or -EIO
 * with err; on failure no timer is initialised, and the caller releases the rest. */
ATTR_NODISCARD int ews_transport_loop_init(struct ews_transport *t, struct err *err);

/* Closes the multi handle (and with it the pooled connections' sockets) and starts closing the
 * timers; with t->freeing set, the last close callback frees t. Every call must have been
 * destroyed. */
void ews_transport_loop_close(struct ews_transport *t);

/* -- ews-transport-call.c --------------------------------------------------------------------- */

/* Appends c to the queue of calls waiting for a lane. */
void ews_transport_queue_add(struct ews_call *c);

/* Arms the queue timer for the next queued call whose time is up (or whose start failed). */
void ews_transport_queue_arm(struct ews_transport *t);

/* Gives free lanes to waiting calls, oldest first. Never runs a callback. Inside libcurl it only
 * notes that it is needed (after_action runs it). */
void ews_transport_dispatch(struct ews_transport *t);

/* Removes and frees c without calling it back. Never inside libcurl while c is in the multi. */
void ews_transport_call_destroy(struct ews_call *c);

/* Runs c's done callback with its outcome (res: how libcurl ended it, or
 * CURLE_ABORTED_BY_CALLBACK with c->cb_rc set), then frees c. Outside libcurl only. */
void ews_transport_call_finish(struct ews_call *c, CURLcode res);

/* Marks t dead and finishes every call with rc and the message what (cancelled ones are only
 * freed). */
void ews_transport_fail_all(struct ews_transport *t, int rc, const char *what);

/* -- ews-transport-lane.c --------------------------------------------------------------------- */

/* A free lane for c, or NULL when c must wait for one; the caller then checks it out with
 * ews_transport_lane_checkout(). Outside libcurl only. */
struct lane *ews_transport_lane_pick(struct ews_transport *t, const struct ews_call *c);

/* Checks lane l out for c and sends c's first request on it (an NTLM leg 1 when c needs a
 * handshake). Outside libcurl only. 0, or a negative errno with err; then l is free again. */
ATTR_NODISCARD int ews_transport_lane_checkout(struct ews_call *c, struct lane *l, struct err *err);

/* Gives c's lane back; c must not be in the multi handle. conn_ok false: the connection may be
 * gone or half-used (an error, a cancel), so it is no longer known to be authenticated. */
void ews_transport_lane_release(struct ews_call *c, bool conn_ok);

/* After one request of c ended with res: true when another leg follows (it has been started),
 * false when c is finished (c->cb_rc may say why). Keeps the lane's idea of its connection
 * current. Outside libcurl only. */
bool ews_transport_next_leg(struct ews_call *c, CURLcode res);

/* A WWW-Authenticate value of n bytes: notes an NTLM offer, and on leg 1's 401 keeps the
 * CHALLENGE and the channel binding of the connection it came on. */
void ews_transport_capture_www_auth(struct ews_call *c, const char *v, size_t n);

/* -- ews-transport-easy.c --------------------------------------------------------------------- */

/* Everything about c's easy handle that is the same on every leg, and a copy of the len bytes of
 * body. 0, or -EINVAL (a bad URL or header value) or -ENOMEM with err. */
ATTR_NODISCARD int ews_transport_setup_easy(struct ews_call *c, const struct ews_call_opts *o,
                                            const char *body, size_t len, struct err *err);

/* Puts c into the multi handle for its next request: leg, with the Authorization value auth (or
 * none), on its lane's connection. Outside libcurl only. 0, or a negative errno with err. */
ATTR_NODISCARD int ews_transport_leg_start(struct ews_call *c, enum leg leg, const char *auth,
                                           struct err *err);

/* A value we may put into a request header: 1..EWS_MAX_REQUEST_HEADER printable ASCII bytes, so
 * no line break can smuggle in another header. */
bool ews_transport_header_value_ok(const char *v);

/* An RFC 6265 cookie-octet string of 1..EWS_MAX_HEADER_VALUE - 1 bytes. */
bool ews_transport_cookie_value_ok(const char *v, size_t n);

/* Wipes and frees a string that may hold a secret. NULL-safe. */
void ews_transport_wipe_free(char *s);

/* Wipes and frees a header list that may hold an Authorization line, and sets *l to NULL. */
void ews_transport_wipe_slist(struct curl_slist **l);

/* -- ews-transport-response.c ----------------------------------------------------------------- */

/* Forgets the current response (at each status line: NTLM's 401 legs, 100 Continue). */
void ews_transport_reset_response(struct ews_call *c, long status);

/* CURLOPT_HEADERFUNCTION and CURLOPT_WRITEFUNCTION; userp is the call. */
size_t ews_transport_on_header(char *data, size_t size, size_t nitems, void *userp);
size_t ews_transport_on_body(char *data, size_t size, size_t nmemb, void *userp);

/* -- ews-transport-stream.c ------------------------------------------------------------------- */

/* A piece of a streaming call's 200 body, for its chunk callback. The write callback's answer:
 * len to go on, or CURL_WRITEFUNC_ERROR when the callback failed (c->cb_rc) or cancelled c. */
size_t ews_transport_stream_chunk(struct ews_call *c, const char *data, size_t len);

/* Runs the idle check of streams, once a second, unless it runs already. */
void ews_transport_stream_watch(struct ews_transport *t);

/* -- ews-transport-outcome.c ------------------------------------------------------------------ */

/* rc and message for an HTTP answer that arrived whole: 0 for one that carries EWS data. */
int ews_transport_classify_status(struct ews_call *c, struct err *err);

/* rc and message for a transfer libcurl ended with the error res. */
int ews_transport_classify_curl(struct ews_call *c, CURLcode res, struct err *err);
