/* SPDX-License-Identifier: MIT */
/*
 * graph-listen.h: the HTTPS endpoint Microsoft Graph POSTs change and lifecycle notifications
 * to (docs/graph.md "Change notifications"). libmicrohttpd serves it on its own thread: it
 * answers the validation handshake itself (a POST with ?validationToken=... is answered 200
 * text/plain with the token, within Graph's 10 s), and hands every other POST's body to the
 * loop through a uv_async_t, answering 202 at once (Graph wants an answer within 3 s and
 * retries what it does not get). Reading the body, checking clientState and acting on it is
 * the loop's (graph-notify.c): nothing here trusts a notification.
 *
 * Bounded: a body over GRAPH_LISTEN_MAX_BODY is refused with 413; while more than
 * GRAPH_LISTEN_MAX_QUEUED bytes wait for the loop, POSTs are refused with 503 and Retry-After
 * (Graph delivers them again later); a connection limit and an idle timeout.
 */
#pragma once

#include <stddef.h>

#include "base/compat.h"
#include "base/err.h"

struct uv_loop_s;
struct graph_listen;

#define GRAPH_LISTEN_MAX_BODY        (1u << 20)  /* Graph's collections are far smaller */
#define GRAPH_LISTEN_MAX_QUEUED      (16u << 20) /* bytes waiting for the loop */
#define GRAPH_LISTEN_MAX_TOKEN       1024u       /* validationToken, decoded */
#define GRAPH_LISTEN_MAX_CONNECTIONS 256u
#define GRAPH_LISTEN_TIMEOUT_SEC     30u

struct graph_listen_opts {
	const char *host; /* numeric address */
	unsigned port;    /* 0: any free port (graph_listen_port says which) */
	const char *path; /* the URL path Graph posts to, e.g. "/graph"; others answer 404 */
	/* PEM contents of the certificate and key; both NULL: plain HTTP (behind a proxy that
	 * terminates TLS) */
	const char *tls_cert_pem;
	const char *tls_key_pem;
};

/* Called on the loop's thread for each POSTed body (len bytes, NUL-terminated; borrowed for
 * the call), oldest first. */
typedef void graph_listen_fn(void *ctx, const char *body, size_t len);

/* Starts listening. 0 and *out, or a negative errno with err naming the address or what in the
 * certificate libmicrohttpd refused. */
ATTR_NODISCARD int graph_listen_start(struct uv_loop_s *loop, const struct graph_listen_opts *o,
                                      graph_listen_fn *fn, void *ctx, struct graph_listen **out,
                                      struct err *err);

unsigned graph_listen_port(const struct graph_listen *l);

/* Counters for metrics: bodies handed to the loop, validations answered, POSTs refused. */
struct graph_listen_stats {
	unsigned long long posts;
	unsigned long long validations;
	unsigned long long refused;
};

void graph_listen_stats(struct graph_listen *l, struct graph_listen_stats *out);

/* Stops serving (joins libmicrohttpd's thread), drops what waits, and frees l once its loop
 * handle is closed. No callback follows. NULL-safe. */
void graph_listen_free(struct graph_listen *l);
