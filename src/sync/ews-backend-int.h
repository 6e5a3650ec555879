/* SPDX-License-Identifier: MIT */
/*
 * ews-backend-int.h: what the files of the EWS backend share (ews-backend.c, ews-stream-groups.c,
 * ews-pull.c, discover.c): its state, a mailbox's part, a streaming group and its connections.
 * Loop thread only, like the engine.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"
#include "base/list.h"
#include "ews/ews-request.h"
#include "ews/ews-response.h"
#include "ews/ews-transport.h"
#include "ews/ews-verdict.h"
#include "sync/backend.h"
#include "sync/engine-int.h"

/* A streaming group waits this long after its last membership change before it (re)connects,
 * so that an initial sync of 200 subscriptions costs one connection, not 200. */
#define GROUP_SETTLE_USEC INT64_C(500000)
/* How long a replaced streaming connection may go on delivering what the server wrote to it
 * before the takeover. */
#define STREAM_RETIRE_USEC INT64_C(10000000)
/* Largest request body calsync writes (a GetStreamingEvents with 200 ids is ~60 KB). */
#define REQUEST_MAX (1u << 20)
/* Most CalendarView pages per read: a window with more than 100,000 occurrences is refused. */
#define READ_MAX_PAGES 100u

struct conn;
struct discover;
struct group;
struct http_client;
struct oauth;
struct sync_ews_call;

/* The EWS backend of one engine. */
struct sync_backend {
	struct sync_engine *e;
	struct ews_transport *transport;
	struct buf req;          /* the request being written */
	struct list_node groups; /* of struct group by link, newest first */
	size_t n_groups;
	size_t streams_open;        /* GetStreamingEvents connections open now */
	struct list_node discovers; /* Autodiscover calls in flight, by struct discover's link */

	/* ews-token.c: every call, and with oauth="graph" the bearer tokens' provider */
	struct list_node calls;    /* of struct sync_ews_call */
	struct list_node deferred; /* calls whose token failed inside sync_ews_call() */
	uv_timer_t deferred_timer; /* ends them from the loop (oauth only) */
	struct http_client *http;  /* oauth only: the token endpoint's client */
	struct oauth *oauth;       /* NULL: the transport's own credentials */
	uint64_t token_errors;     /* calls that could not get a token */
	uint64_t token_retries;    /* calls sent again after a 401 to their token */
};

/* A mailbox's EWS part. */
struct sync_backend_mb {
	struct sync_ews_call *call; /* its buffered request, or NULL */
	enum sync_op op;            /* what call is */
	char *cookie;               /* the last Subscribe answer's X-BackEndOverrideCookie */

	/* the read in progress: CalendarView pages */
	struct ews_cal_item *page_items;
	size_t n_page_items;
	unsigned pages;
	int64_t read_end_utc, page_start_utc;
	unsigned page_max; /* MaxEntriesReturned, 0 = none; SHRINK lowers it for good */

	struct group *group; /* streaming */
	size_t group_slot;
};

struct group {
	struct sync_backend *b;
	struct sync_engine *e;
	char *key;
	char *url;
	char *anchor; /* X-AnchorMailbox of every request of the group: its first member */
	char *cookie;
	struct mb **members;
	size_t n_members;
	struct list_node link; /* in b->groups */

	struct conn *cur;          /* the current GetStreamingEvents connection, or NULL */
	struct list_node retiring; /* earlier ones still draining, by struct conn's link */
	bool dirty; /* the set of subscribed members changed since the connection started */
	unsigned failures;
	uv_timer_t timer;
	bool closing;
};

/*
 * One GetStreamingEvents connection of a group. When the group's subscriptions change it opens
 * a new connection and the old one retires: it is still read until the server has moved every
 * id to the new one (ErrorNewEventStreamConnectionOpened, then Closed), so no event already
 * written to it is lost, and it is cut after STREAM_RETIRE_USEC at most.
 */
struct conn {
	struct group *g;
	struct sync_ews_call *call;
	struct ews_stream *framer;
	bool connected;  /* a status OK arrived */
	bool got_closed; /* ConnectionStatus Closed arrived */
	bool retiring;
	struct list_node link; /* in g->retiring */
	uv_timer_t timer;      /* retiring: the cut-off */
};

/* ews-backend.c */
/* Whether EWS change feeds are streaming subscriptions (EwsStream), not pull ones (EwsPull). */
bool sync_ews_streaming(const struct sync_engine *e);

void sync_ews_result(const struct sync_engine *e, const struct ews_verdict *v,
                     struct sync_result *out);
void sync_ews_header(const struct mb *mb, struct ews_header *h, const char *impersonate);
void sync_ews_opts(const struct mb *mb, struct ews_call_opts *o);
int sync_ews_post(struct sync_backend *b, struct mb *mb, enum sync_op op,
                  const struct ews_call_opts *o, struct err *err);

/* ews-stream-groups.c */
void sync_ews_group_join(struct sync_backend *b, struct mb *mb);
void sync_ews_group_leave(struct mb *mb);
void sync_ews_group_call_opts(const struct group *g, struct ews_call_opts *o);
void sync_ews_groups_free(struct sync_backend *b);
void sync_ews_feed_opened(struct sync_backend *b, struct mb *mb);
void sync_ews_feed_closed(struct sync_backend *b, struct mb *mb);
void sync_ews_resume(struct sync_backend *b, struct mb *mb);
bool sync_ews_leave_home(struct sync_backend *b, struct mb *mb);
void sync_ews_stop(struct sync_backend *b);
void sync_ews_stats(const struct sync_backend *b, struct sync_stats *st);
size_t sync_ews_groups(const struct sync_backend *b, struct sync_group_info **out,
                       size_t *backing_off);

/* ews-pull.c */
int sync_ews_poll(struct sync_backend *b, struct mb *mb, struct err *err);
void sync_ews_poll_answer(const struct ews_response *resp, struct sync_answer *a);

/* ews-token.c */
/* Opens the token provider when the configuration asks for oauth (else only the lists). */
int sync_ews_tokens_open(struct sync_backend *b, struct err *err);
/* Frees the provider and then b itself (from a close callback when a timer must close). */
void sync_ews_tokens_free_backend(struct sync_backend *b);
/* ews_transport_post() with the current bearer token when oauth (waiting for one if needed,
 * a 401 retried once with a new one); done fires exactly once unless cancelled, never from
 * inside this call. *out (may be NULL) is valid until done returns or it is cancelled. */
int sync_ews_call(struct sync_backend *b, const struct ews_call_opts *o, const char *body,
                  size_t len, ews_done_fn *done, void *ctx, struct sync_ews_call **out,
                  struct err *err);
/* Its callbacks never fire. NULL-safe; a no-op inside its own done callback; safe inside its
 * chunk callback. */
void sync_ews_call_cancel(struct sync_ews_call *c);
/* Cancels every call (the backend is being freed). */
void sync_ews_calls_cancel(struct sync_backend *b);

/* discover.c */
int sync_ews_discover(struct sync_backend *b, struct mb *const *mbs, size_t n, struct err *err);
void sync_ews_discovers_free(struct sync_backend *b);
