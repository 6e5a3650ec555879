/* SPDX-License-Identifier: MIT */
/*
 * graph-backend-int.h: what the Microsoft Graph backend's files share (docs/graph.md):
 *
 *   graph-backend.c   the ops table, open and free, a mailbox's part, stats
 *   graph-call.c      one Graph request: a slot under <graph concurrency>, the app-wide
 *                     throttle gate, the token (oauth.h), the answer's verdict, one retry on 401
 *   graph-read.c      discover (the user lookup in $batch), reads and polls as calendarView
 *                     delta rounds onto a window kept in memory
 *   graph-notify.c    subscriptions, their renewal, and the notifications the listener
 *                     (graph-listen.h) hands in
 *
 * Loop thread only, like the engine.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/list.h"
#include "graph/graph-error.h"
#include "http/http-client.h"
#include "sync/backend.h"
#include "sync/engine-int.h"

struct oauth;
struct oauth_waiter;
struct graph_listen;
struct graph_page;

/* How often a refused credential is tried again: the probe asks every GRAPH_TOKEN_PROBE_USEC,
 * the provider's back-off lets a request out at most every GRAPH_TOKEN_RETRY_MAX_USEC. */
#define GRAPH_TOKEN_PROBE_USEC     INT64_C(10000000)
#define GRAPH_TOKEN_RETRY_MAX_USEC INT64_C(60000000)

/* How often subscriptions are checked for renewal. */
#define GRAPH_RENEW_CHECK_USEC INT64_C(60000000)

struct gcall;
/* A request's end: r is the HTTP answer (NULL when it never left: no token), v its verdict. */
typedef void gcall_fn(struct gcall *c, const struct http_response *r,
                      const struct graph_verdict *v);

/* One Graph request, from its queueing to its end. */
struct gcall {
	struct sync_backend *b;
	struct list_node link;     /* in b->waiting while it waits for a slot */
	struct list_node own_link; /* in b->owned: a call no mailbox holds (freed with b) */
	enum graph_req req;
	enum http_method method;
	char *url;    /* absolute */
	char *body;   /* NULL: none */
	char *prefer; /* a Prefer header value, or NULL */
	bool retried; /* a 401 was retried once with a new token */
	bool in_slot; /* holds one of <graph concurrency> */
	char *token;  /* the token sent, for oauth_invalidate on a 401 */
	struct oauth_waiter *ow;
	struct http_call *http;
	int64_t started_usec;
	gcall_fn *done;
	void *ctx;
};

struct sync_backend {
	struct sync_engine *e;
	/* The <graph> settings used after open, copied (gc): a reload frees the configuration the
	 * backend was opened with; credentials and endpoints take effect at a restart. */
	const struct cfg_graph *g;
	struct cfg_graph gc;
	char *base; /* the Graph base URL, checked (graph_url_base) */
	struct http_client *http;
	struct oauth *oauth;
	bool stopping;

	struct list_node waiting; /* of struct gcall by link, oldest first */
	size_t in_slots;
	int64_t gate_until_usec; /* an app-wide Retry-After: nothing is sent before */
	uv_timer_t gate_timer;
	struct list_node discovers; /* of struct gdiscover, to cancel at free */
	struct list_node owned;     /* of struct gcall by own_link: calls no mailbox holds */
	/* Answers that need no request (delta mode's subscribe and unsubscribe), given from the
	 * loop soon after, never inside the op that asked. */
	struct list_node soon; /* of struct sync_backend_mb by soon_link */
	uv_timer_t soon_timer;

	/* notifications */
	struct graph_listen *listen;
	struct sync_backend_mb *by_sub; /* uthash over sub_key */
	uv_timer_t renew_timer;
	unsigned char state_key[32]; /* clientState = HMAC-SHA256(state_key, mailbox) */
	int handles_open;
	bool freeing;
	/* The credential was refused (no token): the mailboxes are parked with Entra ID's reason,
	 * and a probe asks for a token every GRAPH_TOKEN_PROBE_USEC until one is had; then every
	 * parked mailbox retries at once. */
	bool token_down;
	uv_timer_t probe_timer;
	struct oauth_waiter *probe;

	struct sync_graph_stats {
		uint64_t requests, throttled, token_errors, notifications, bad_notifications;
	} st;
};

/* A mailbox's part. */
struct sync_backend_mb {
	struct mb *mb;
	struct gcall *call;         /* the mailbox's own request (read, poll, (un)subscribe) */
	struct gcall *renew;        /* a subscription renewal */
	struct list_node soon_link; /* in b->soon: an answer due without a request */

	/* The window as the last complete delta round left it (win_ok), and where the next round
	 * starts (delta_url, absolute; NULL: a first round). */
	struct cal_occurrence *win;
	size_t n_win;
	bool win_ok;
	int64_t delta_start, delta_end;
	char *delta_url;
	/* The round in progress: the next page's URL, whether it changed anything, and for a
	 * read the window asked for. */
	bool round_read;  /* a read (answer the window) rather than a poll */
	bool round_first; /* a first round: the window starts empty */
	bool round_changed;
	int64_t read_start, read_end;

	/* notifications */
	char *sub_key; /* mb->sub_id while in b->by_sub */
	UT_hash_handle hh;
	int64_t sub_expires_utc; /* 0: unknown (resumed after a restart): renew soon */
};

/* graph-call.c */
struct gcall *gcall_new(struct sync_backend *b, enum graph_req req, enum http_method m,
                        const char *url, gcall_fn *done, void *ctx);
/* Queues c; it ends with exactly one call of its done function, unless cancelled, never
 * before gcall_start returns. */
void gcall_start(struct gcall *c);
/* No callback follows; NULL-safe. */
void gcall_cancel(struct gcall *c);
/* Frees c after its done function (done functions call it). */
void gcall_free(struct gcall *c);
/* Sends what waits, as slots and the gate allow; _soon: from the loop, never inside the caller
 * (an engine op must not see its mailbox's callback before it returns). */
void graph_pump(struct sync_backend *b);
void graph_pump_soon(struct sync_backend *b);
/* The verdict as the engine's result. */
void graph_result(const struct graph_verdict *v, struct sync_result *r);
/* A token request was refused for good (the credential): park with it, probe for recovery. */
void graph_token_refused(struct sync_backend *b);
/* A token was had: if the credential had been refused, every parked mailbox retries. */
void graph_token_back(struct sync_backend *b);
/* "users/{id}" of mb's home: the stored Graph path, or its address before discovery. */
const char *graph_user(const struct mb *mb);

/* graph-read.c */
int graph_discover(struct sync_backend *b, struct mb *const *mbs, size_t n, struct err *err);
int graph_read(struct sync_backend *b, struct mb *mb, int64_t start, int64_t end, struct err *err);
int graph_read_more(struct sync_backend *b, struct mb *mb, struct err *err);
int graph_poll(struct sync_backend *b, struct mb *mb, struct err *err);
void graph_window_clear(struct sync_backend_mb *bm);
void graph_discovers_cancel(struct sync_backend *b);

/* graph-notify.c */
int graph_notify_open(struct sync_backend *b, struct err *err);
void graph_notify_close(struct sync_backend *b);
int graph_subscribe(struct sync_backend *b, struct mb *mb, struct err *err);
int graph_unsubscribe(struct sync_backend *b, struct mb *mb, struct err *err);
void graph_feed_opened(struct sync_backend *b, struct mb *mb);
void graph_feed_closed(struct sync_backend *b, struct mb *mb);
void graph_resume(struct sync_backend *b, struct mb *mb);
bool graph_leave_home(struct sync_backend *b, struct mb *mb);
