/* SPDX-License-Identifier: MIT */
/*
 * http-client.h: an asynchronous HTTP client for JSON REST calls (Microsoft Graph, the OAuth
 * token endpoint) on the daemon's libuv loop. libcurl's multi interface is driven by the loop
 * (one uv_poll_t per socket, one uv_timer_t, as in curl's docs/examples/multi-uv.c); nothing
 * blocks. Bodies are buffered whole, up to a hard cap. HTTP/2 is used over TLS when libcurl
 * has it and the server offers it (ALPN), HTTP/1.1 otherwise.
 *
 * Security: TLS is verified unless the caller says otherwise (and then a warning is logged);
 * the proxy comes only from the options, never from the environment; redirects are never
 * followed; a bearer token is copied into the request, never logged, never put into an error
 * message, and wiped when the request ends; request bodies are wiped too (a token request
 * carries a client secret). libcurl's verbose output is never turned on.
 *
 * Single-threaded: every function must be called on the loop's thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"
#include "base/err.h"

struct uv_loop_s;
struct cs_clock;
struct http_client;
struct http_call;

/* Defaults for the zero values of struct http_client_opts. */
#define HTTP_CONNECT_TIMEOUT_USEC  INT64_C(30000000)  /* TCP + TLS handshake */
#define HTTP_TIMEOUT_USEC          INT64_C(100000000) /* a whole request; Graph's own is 100 s */
#define HTTP_MAX_RESPONSE          (16u << 20)        /* a Graph page of 1,000 events fits */
#define HTTP_MAX_HOST_CONNECTIONS  16u
#define HTTP_MAX_TOTAL_CONNECTIONS 64u
#define HTTP_MAX_REQUESTS          8192u /* in flight and waiting for a connection */

/* Longest URL and longest request header value we send; Graph's @odata.nextLink and
 * deltaLink URLs are under 2 KiB, and so is every header but Authorization, whose app-only
 * access token is 1.5-3 KiB (OAUTH_MAX_TOKEN fits). */
#define HTTP_MAX_URL             8192u
#define HTTP_MAX_REQUEST_HEADER  8192u
#define HTTP_MAX_REQUEST_HEADERS 32u
/* Longest response header values we capture. Location may be a long URL; the others are ids,
 * dates and types well under 256 bytes. A longer value is dropped, except WWW-Authenticate,
 * whose first HTTP_MAX_WWW_AUTH - 1 bytes are kept (its scheme and realm come first). */
#define HTTP_MAX_HEADER_VALUE 256u
#define HTTP_MAX_LOCATION     HTTP_MAX_URL
#define HTTP_MAX_WWW_AUTH     257u

/* The client's configuration. Strings are copied by http_client_new(); zero values mean the
 * defaults above. */
struct http_client_opts {
	const char *ca_file; /* PEM file of the CAs to trust; NULL = the system's store */
	/* Turns off TLS certificate and host name verification, with a warning in the log. For
	 * lab tests only: anyone on the path can then read the tokens. */
	bool insecure_skip_tls_verify;
	/* An HTTP proxy, "http://host:port"; NULL = a direct connection. http_proxy and friends
	 * in the environment are never used. Requests always go through a CONNECT tunnel, so the
	 * proxy never sees a header. The proxy URL is never put into an error message. */
	const char *proxy;
	const char *user_agent; /* NULL = "calsync/<version>" */
	int64_t connect_timeout_usec;
	int64_t timeout_usec; /* per request, unless the request sets its own */
	size_t max_response;  /* body cap; a longer answer fails with -EMSGSIZE */
	/* Connections libcurl keeps to one host and in all (CURLMOPT_MAX_HOST_CONNECTIONS,
	 * CURLMOPT_MAX_TOTAL_CONNECTIONS); requests past them wait in libcurl's queue for a
	 * connection (with HTTP/2, for a stream on one), and fail with -ETIMEDOUT when their
	 * timeout passes first. */
	unsigned max_host_connections;
	unsigned max_total_connections;
	/* Requests started and not yet ended; http_send() past it fails with -ENOBUFS. Bounds
	 * the memory of libcurl's queue. */
	unsigned max_requests;
	bool disable_http2; /* HTTP/1.1 only, even where libcurl and the server have HTTP/2 */
	/* The clock an HTTP-date in Retry-After is read against; NULL = the real clock. */
	const struct cs_clock *clock;
};

enum http_method {
	HTTP_GET,
	HTTP_POST,
	HTTP_PATCH,
	HTTP_DELETE,
	HTTP_PUT,
};

/* "GET", "POST", ... */
const char *http_method_name(enum http_method m);

struct http_header {
	const char *name;  /* an RFC 9110 token; not Host, Content-Length, Transfer-Encoding,
	                    * Connection, nor Authorization when bearer_token is set */
	const char *value; /* printable ASCII (and tab), at most HTTP_MAX_REQUEST_HEADER bytes */
};

/* One request. Everything is copied by http_send(). */
struct http_request {
	enum http_method method;
	const char *url; /* absolute http:// or https://, no user:password@ */
	const struct http_header *headers;
	size_t n_headers; /* at most HTTP_MAX_REQUEST_HEADERS */
	/* The body: body_len bytes (may contain NULs), sent with content_type. A POST, PUT or
	 * PATCH without one sends Content-Length: 0; a GET must have none. */
	const char *body;
	size_t body_len;
	const char *content_type; /* NULL with a body: "application/json" */
	/* Sent as "Authorization: Bearer <token>"; NULL = none. 1..HTTP_MAX_REQUEST_HEADER
	 * printable ASCII bytes. */
	const char *bearer_token;
	int64_t timeout_usec; /* 0 = the client's */
	bool secret_response; /* the answer holds a secret (a token): wipe its body at the end */
};

/*
 * What a request ended with, for the done callback. Strings are borrowed: valid only during the
 * callback; header values are NULL when the header was absent (or too long).
 *
 * rc is 0 when an HTTP answer arrived whole, whatever its status: the status is the caller's to
 * read. Otherwise it is a negative errno and err.msg names the host and what failed:
 *   -EHOSTUNREACH  the host name (or the proxy's) did not resolve
 *   -ECONNREFUSED  the connection was refused or the host unreachable (or the proxy refused)
 *   -ETIMEDOUT     connect timeout, or no whole answer within the request's timeout (also
 *                  when it waited that long for a connection, all being busy at the caps)
 *   -EKEYREJECTED  the server's certificate was not trusted or does not name the host
 *   -ENOENT        the CA file cannot be read
 *   -EPROTO        the TLS handshake failed, or the answer was not valid HTTP
 *   -ECONNRESET    the connection was closed or reset before the answer was whole
 *   -EMSGSIZE      the body passed max_response; the request was aborted there
 *   -ENOMEM, -EIO  anything else (out of memory, a libcurl failure)
 * status and the headers are filled in whenever a response arrived, also on errors.
 */
struct http_response {
	int rc;
	long status;      /* 0 when no HTTP response arrived */
	const char *body; /* NUL-terminated (not counted in body_len), may be empty, never NULL */
	size_t body_len;
	const char *content_type;
	const char *location;
	const char *request_id;        /* request-id */
	const char *client_request_id; /* client-request-id as the server returned it */
	const char *www_authenticate;  /* the first one's first HTTP_MAX_WWW_AUTH - 1 bytes */
	/* Retry-After (delta-seconds or an HTTP-date against the client's clock) in
	 * milliseconds, 0 for a date in the past; -1 when absent or malformed. */
	int64_t retry_after_ms;
	int64_t elapsed_usec; /* from http_send() to the end */
	struct err err;       /* the detail when rc != 0 */
};

/*
 * Fires exactly once per request that was not cancelled, from the loop, never from inside
 * http_send(). call is finished: it is freed when the callback returns. The callback may send
 * new requests, cancel other calls, and free the client (http_client_free(): then no other
 * callback of this client fires).
 */
typedef void http_done_fn(void *ctx, struct http_call *call, const struct http_response *r);

/*
 * A new client on loop. 0 and *out, or -EINVAL (a bad option: a negative timeout, a User-Agent
 * with a control character) or -EIO (libcurl failed to start). Strings in opts are copied.
 */
ATTR_NODISCARD int http_client_new(struct uv_loop_s *loop, const struct http_client_opts *opts,
                                   struct http_client **out, struct err *err);

/*
 * Cancels every request without calling its callback, closes every connection and starts
 * closing the client's libuv handles; the memory is released by their close callbacks, so the
 * loop must run once more (uv_run) before uv_loop_close(). NULL-safe. May be called from inside
 * one of the client's done callbacks.
 */
void http_client_free(struct http_client *c);

/*
 * Starts a request. 0 and *out_call (borrowed: valid until its done callback returns or it is
 * cancelled; out_call may be NULL), or -EINVAL (a missing or malformed URL, a bad header name or
 * value, a body on a GET, an unknown method), -EMSGSIZE (a body over INT32_MAX bytes), -ENOBUFS
 * (max_requests reached) or -EIO (libcurl failed); on error nothing was started and done never
 * fires.
 */
ATTR_NODISCARD int http_send(struct http_client *c, const struct http_request *req,
                             http_done_fn *done, void *ctx, struct http_call **out_call,
                             struct err *err);

/*
 * Stops a request: its callback never fires. Whatever was sent or half-received is dropped
 * (the connection is closed if the answer was under way). A no-op inside the call's own done
 * callback and for NULL. After it returns call must not be used.
 */
void http_call_cancel(struct http_call *call);

/* The loop the client runs on. */
struct uv_loop_s *http_client_loop(const struct http_client *c);

/* Requests started and not yet ended or cancelled. */
size_t http_client_active(const struct http_client *c);

/* Whether libcurl can speak HTTP/2 (then requests over TLS offer it). */
bool http_client_has_http2(void);
