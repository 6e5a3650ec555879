/* SPDX-License-Identifier: MIT */
/*
 * api.h: the HTTP API (docs/api.md): users, presence, agendas, a Server-Sent Events stream of
 * presence changes, health, readiness and Prometheus metrics, served by libmicrohttpd on threads
 * of its own (one per connection, so that a blocked event stream stalls nobody). The API reads
 * through its own store connection and touches the loop only through the engine's thread-safe
 * functions (sync_engine_command, sync_engine_stats_snapshot, sync_engine_status), and webhook
 * delivery only through webhook_stats.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "base/compat.h"

struct api;
struct err;
struct sync_engine;
struct webhook;

/* Connections served at once (each is a thread). Past this libmicrohttpd refuses new ones. */
#define API_MAX_CONNECTIONS 64u
/* Open /v1/events streams at once; more get 503, so streams never take every connection. */
#define API_MAX_SSE_CLIENTS 32u
/* Largest request body: a POST /v1/users body is a few dozen bytes. Larger gets 413. */
#define API_MAX_BODY (64u << 10)
/* The heartbeat comment of an idle event stream. */
#define API_KEEPALIVE_USEC INT64_C(15000000)
/* An idle keep-alive connection (or one whose client stopped reading) is closed after this. */
#define API_CONNECTION_TIMEOUT_SEC 60u
/* A PEM certificate chain or key file. */
#define API_MAX_PEM (1u << 20)

struct api_opts {
	const char *host;       /* numeric IPv4 or IPv6 address to bind */
	unsigned port;          /* 0: any free port (api_port() says which) */
	const char *token;      /* bearer token; NULL: reads open, changes refused */
	const char *tls_cert;   /* PEM files: HTTPS when both are set */
	const char *tls_key;    /* (both or neither) */
	unsigned ready_live;    /* /readyz: percentage of mailboxes that must be live */
	const char *store_path; /* the API opens its own store here */
	struct sync_engine *engine;
	struct webhook *webhook; /* NULL: no webhooks; else borrowed, must outlive the API */
	int64_t keepalive_usec;  /* 0: API_KEEPALIVE_USEC (tests shorten it) */
	bool graph;              /* <graph> is configured: /v1/status and /metrics show Graph */
};

/*
 * Opens the API's store, reads the TLS files, binds and starts serving. Strings in opts are
 * copied; engine is borrowed and must outlive the API. 0 and *out_api, or a negative errno with
 * err (the address in use, a TLS file that cannot be read, the store).
 */
ATTR_NODISCARD int api_start(const struct api_opts *opts, struct api **out_api, struct err *err);

/* The port bound (the real one when opts.port was 0). */
unsigned api_port(const struct api *a);

/* Thread-safe and cheap: a presence change was stored; event streams read the store now. Call it
 * from the engine's change hook. NULL-safe. */
void api_wake(struct api *a);

/* Ends every event stream, stops serving (waiting for the connection threads) and frees a.
 * Must not be called from the loop while a request could be waiting for the loop; NULL-safe. */
void api_stop(struct api *a);
