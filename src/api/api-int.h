/* SPDX-License-Identifier: MIT */
/*
 * api-int.h: what the API's own files share (api.c, api-users.c, api-sse.c): the layout of
 * struct api, one request's state and the reply helpers. Not for use outside src/api/.
 *
 * Threads: every request runs on its connection's thread. The store connection is shared under
 * store_mu (a struct store is one SQLite connection, one thread at a time). Event streams wait on
 * cond under mu for seq to move, which api_wake() does from the loop.
 */
#pragma once

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api-route.h"
#include "base/buf.h"
#include "base/compat.h"

struct json_t;
struct store;
struct sync_engine;
struct webhook;

struct api {
	struct MHD_Daemon *mhd;
	struct sync_engine *engine;
	struct webhook *webhook; /* NULL: no webhooks */
	bool graph;              /* <graph> is configured: Graph figures in /v1/status, /metrics */
	char *token;             /* NULL: none configured */
	size_t token_len;
	unsigned ready_live;
	int64_t keepalive_usec;
	char *tls_cert_pem;
	char *tls_key_pem;
	unsigned port;

	pthread_mutex_t store_mu;
	struct store *store;

	pthread_mutex_t mu;
	pthread_cond_t cond; /* on CLOCK_MONOTONIC */
	uint64_t seq;        /* bumped by api_wake */
	bool stopping;
	size_t sse_clients;
};

/* One request: its body, collected up to API_MAX_BODY. */
struct api_req {
	struct buf body;
	bool too_large;
};

/* Replies with json (taken; NULL replies 500) and status; hdr/val add one header when hdr is
 * not NULL. */
enum MHD_Result api_reply_json(struct MHD_Connection *c, unsigned status, struct json_t *json,
                               const char *hdr, const char *val);

/* Replies {"error": message} with status. */
enum MHD_Result api_reply_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
	ATTR_PRINTF(3, 4);

/* A query argument percent-decoded into out (size bytes). 1 when present, 0 when absent, -1 when
 * it does not decode (a reply is then needed). */
int api_query(struct MHD_Connection *c, const char *key, char *out, size_t size);

/* The store, locked; api_store_unlock gives it back. */
struct store *api_store_lock(struct api *a);
void api_store_unlock(struct api *a);

/* The handlers. */
enum MHD_Result api_users_list(struct api *a, struct MHD_Connection *c);
enum MHD_Result api_user_get(struct api *a, struct MHD_Connection *c, const struct api_route *r);
enum MHD_Result api_user_presence(struct api *a, struct MHD_Connection *c,
                                  const struct api_route *r);
enum MHD_Result api_user_agenda(struct api *a, struct MHD_Connection *c, const struct api_route *r);
enum MHD_Result api_user_add(struct api *a, struct MHD_Connection *c, const struct api_req *rq);
enum MHD_Result api_user_remove(struct api *a, struct MHD_Connection *c, const struct api_route *r);
enum MHD_Result api_user_resync(struct api *a, struct MHD_Connection *c, const struct api_route *r);
enum MHD_Result api_events(struct api *a, struct MHD_Connection *c);
enum MHD_Result api_status(struct api *a, struct MHD_Connection *c);
