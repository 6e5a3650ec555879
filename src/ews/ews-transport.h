/* SPDX-License-Identifier: MIT */
/*
 * ews-transport.h: HTTP for the EWS client. POSTs SOAP bodies with libcurl's multi interface,
 * driven by the daemon's libuv loop (one uv_poll_t per socket, one uv_timer_t; callbacks never
 * block). One transport holds one set of credentials (the service account) and a pool of
 * HTTP/1.1 keep-alive connections in "lanes": a call holds one connection of its own from its
 * first request to its last, which NTLM needs (it authenticates a connection, not a request),
 * and a later call reuses an authenticated connection without a new handshake. NTLM is
 * calsync's own (ews-ntlm.h), NTLMv2 with the channel binding of the connection's TLS
 * certificate, so that it passes Exchange's Extended Protection. TLS is verified unless the
 * caller says otherwise, loudly. Credentials, tokens and NTLM messages are copied, never
 * logged, never put in an error message, and libcurl's verbose output is never turned on.
 *
 * A call is either buffered (the whole body, at most max_response bytes, handed to the done
 * callback) or streaming (each piece of a 200 body handed to a chunk callback as it arrives,
 * nothing buffered, an idle watchdog instead of a total timeout: GetStreamingEvents).
 *
 * Single-threaded: every function must be called on the loop's thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"
#include "base/err.h"
#include "ews/ews-types.h"

struct uv_loop_s;
struct ews_transport;
struct ews_call;

/* Defaults for the zero values of the options below. */
#define EWS_TRANSPORT_CONNECT_TIMEOUT_USEC INT64_C(30000000)  /* TCP + TLS handshake */
#define EWS_TRANSPORT_TIMEOUT_USEC         INT64_C(120000000) /* a whole buffered call */
/* Streaming: no byte for this long means a dead connection. The Managed API's socket timeout
 * is twice its 45 s heartbeat expectation (EWS-REFERENCE 4.3). libcurl checks it once a second
 * against a speed averaged over the last few seconds, so it fires up to ~5 s late. */
#define EWS_TRANSPORT_IDLE_TIMEOUT_USEC INT64_C(90000000)
/* Connections kept to one host and in all. Each open GetStreamingEvents holds one for its whole
 * life, so this must exceed the streaming groups per host plus the in-flight buffered calls;
 * calls past the cap wait in the transport, oldest first, for a free connection, and fail with
 * -ETIMEDOUT if their timeout passes first. */
#define EWS_TRANSPORT_MAX_HOST_CONNECTIONS  64u
#define EWS_TRANSPORT_MAX_TOTAL_CONNECTIONS 256u

/* Longest response header value we capture (X-BackEndOverrideCookie, request-id, X-BEServer,
 * ...). Real ones are under 100 bytes; a longer one is ignored, never truncated. */
#define EWS_MAX_HEADER_VALUE 256u

/* Longest value the caller may put into a request header (anchor mailbox, cookie, id). */
#define EWS_MAX_REQUEST_HEADER 1024u

/* "none", "basic", "ntlm", "negotiate", "bearer". */
const char *ews_auth_name(enum ews_auth a);

/* 0 and *out, or -EINVAL for a name that is not one of the above (len bytes, no NUL needed). */
ATTR_NODISCARD int ews_auth_from_name(const char *name, size_t len, enum ews_auth *out,
                                      struct err *err);

/* The transport's configuration. Strings are copied by ews_transport_new(); zero values mean
 * the defaults above. */
struct ews_transport_opts {
	enum ews_auth auth;
	const char *user;     /* BASIC, NTLM, NEGOTIATE: "DOMAIN\\user" or a UPN */
	const char *password; /* BASIC, NTLM, NEGOTIATE (its NTLM fallback) */
	/* BEARER: the token of every call that brings none of its own; NULL = every call must
	 * bring one (ews_call_opts.bearer_token, a token that expires: OAuth). */
	const char *token;
	const char *ca_file; /* PEM file of the CAs to trust; NULL = the system's store */
	/* Turns off TLS certificate and host name verification. For lab tests only: anyone on the
	 * path can then read the credentials. */
	bool insecure_skip_tls_verify;
	/* An HTTP proxy, "http://host:port"; NULL = a direct connection. The environment's
	 * http_proxy/https_proxy/no_proxy are never used: a daemon takes its proxy from its
	 * configuration. The proxy URL is never put into an error message. */
	const char *proxy;
	const char *user_agent; /* NULL = "calsync/<version>" */
	int64_t connect_timeout_usec;
	int64_t timeout_usec;      /* buffered calls */
	int64_t idle_timeout_usec; /* streaming calls; rounded up to whole seconds */
	size_t max_response;       /* buffered body limit, 0 = EWS_MAX_RESPONSE */
	unsigned max_host_connections;
	unsigned max_total_connections;
};

/*
 * What a call ended with, for the done callback. Strings are borrowed: valid only during the
 * callback, NULL when absent.
 *
 * rc is 0 when an answer that carries EWS data arrived: HTTP 200 (for a streaming call: its body
 * ended normally), or HTTP 500 with an XML body (a SOAP fault, for ews_response_parse). Every
 * other outcome is a negative errno and err.msg says what happened and what it usually means:
 *   -EACCES       HTTP 401 after the handshake (credentials refused; with NTLM over HTTPS also
 *                 Extended Protection refusing the channel binding, as when something between
 *                 terminates TLS), 403, 456 (account locked); at most one NTLM handshake per
 *                 call
 *   -EAGAIN       HTTP 503: the server is queueing or unavailable; back off
 *   -EPROTO       another HTTP status (a redirect, never followed; 4xx), a malformed HTTP
 *                 answer, or a failed TLS handshake
 *   -EIO          HTTP 5xx without an XML body, or another transport failure (-ENOMEM: memory)
 *   -ETIMEDOUT    connect, total (buffered) or idle (streaming) timeout, or no connection free
 *                 (all at the cap) within the call's timeout
 *   -ECONNREFUSED, -EHOSTUNREACH, -ECONNRESET   the network (ECONNRESET: cut mid-answer)
 *   -EKEYREJECTED the server's TLS certificate was not trusted (wrong or missing CA file, or a
 *                 host name that the certificate does not name)
 *   -ENOENT       the CA file cannot be read
 *   -EMSGSIZE     the body passed max_response; the call was aborted there
 *   the chunk callback's own negative errno, with its err message
 * http_status and the headers are filled in whenever a response arrived, also on errors.
 */
struct ews_result {
	int rc;
	long http_status; /* 0 when no HTTP response arrived */
	/* The body: a buffered call's, or a streaming call's non-200 answer (a SOAP fault, an error
	 * page), at most max_response bytes; NUL-terminated, may be empty, never NULL. */
	const char *body;
	size_t body_len;
	const char *content_type;
	const char *backend_cookie;    /* X-BackEndOverrideCookie value from Set-Cookie */
	const char *request_id;        /* request-id */
	const char *client_request_id; /* the id this call sent (never NULL) */
	const char *echoed_request_id; /* client-request-id as the server returned it */
	const char *be_server;         /* X-BEServer: the mailbox server that answered */
	const char *cas_error_code;    /* X-CasErrorCode: the front end could not proxy */
	/* Retry-After as the server wrote it (RFC 9110 10.2.3: delta-seconds, or an HTTP-date),
	 * of the last response, whatever its status: IIS or a load balancer sends it with a 503.
	 * Not interpreted here: ews_verdict_of_result() reads it into back_off_ms. */
	const char *retry_after;
	uint64_t bytes;       /* body bytes received (a streaming call: all of them) */
	long new_connections; /* connections this call opened; 0 = it reused one */
	int64_t elapsed_usec;
	struct err err; /* the detail when rc != 0 */
};

/*
 * Streaming calls: one piece of a 200 body, in order, as it arrives; data is valid only during
 * the call. Return 0 to go on, or a negative errno (with err set) to abort the call; the done
 * callback then gets that rc and message. May call ews_transport_cancel() on this call (then
 * the done callback does not fire) and ews_transport_post().
 */
typedef int ews_chunk_fn(void *ctx, const char *data, size_t len, struct err *err);

/*
 * Fires exactly once per call that was not cancelled, from the loop, never from inside
 * ews_transport_post(). call is finished: it is freed when the callback returns. The callback
 * may post new calls and cancel other calls, but must not free the transport.
 */
typedef void ews_done_fn(void *ctx, struct ews_call *call, const struct ews_result *r);

/* One call's options; strings are copied by ews_transport_post(). */
struct ews_call_opts {
	const char *url;               /* http:// or https://, no user:password@ */
	const char *anchor_mailbox;    /* X-AnchorMailbox; NULL = none */
	bool prefer_affinity;          /* X-PreferServerAffinity: true */
	const char *backend_cookie;    /* sent as Cookie: X-BackEndOverrideCookie=<value> */
	const char *client_request_id; /* client-request-id; NULL = a fresh random UUID */
	const char *soap_action;       /* SOAPAction; NULL = none (EWS needs none) */
	/* Buffered: the whole call, 0 = the transport's. Streaming: 0 = none (the default), else
	 * a cap on the whole stream, e.g. ConnectionTimeout + 90 s (EWS-REFERENCE 4.3). */
	int64_t timeout_usec;
	int64_t idle_timeout_usec; /* streaming: 0 = the transport's */
	ews_chunk_fn *chunk_fn;    /* non-NULL makes the call streaming */
	/* BEARER only: this call's access token, overriding the transport's (copied, wiped when
	 * the call ends, never logged). The caller takes a fresh one per call from its token
	 * provider; after a 401 it invalidates that token and posts again with a new one. */
	const char *bearer_token;
};

/*
 * A new transport on loop. 0 and *out_t, or -EINVAL (an inconsistent option: NTLM without a
 * user, an empty BEARER token, a token with a line break, ...) or -EIO (libcurl failed to
 * start). Strings in opts are copied.
 */
ATTR_NODISCARD int ews_transport_new(struct uv_loop_s *loop, const struct ews_transport_opts *opts,
                                     struct ews_transport **out_t, struct err *err);

/*
 * Cancels every call without calling its callbacks, closes every connection and starts closing
 * the transport's libuv handles; the memory is released by their close callbacks, so the loop
 * must run once more (uv_run) before uv_loop_close(). NULL-safe. Must not be called from inside
 * a chunk or done callback of this transport.
 */
void ews_transport_free(struct ews_transport *t);

/*
 * POSTs len bytes of body (copied) with Content-Type text/xml; charset=utf-8. 0 and *out_call
 * (borrowed: valid until its done callback returns or it is cancelled; may be NULL if the
 * caller does not need it), or -EINVAL (a missing or bad URL, a header value with a control
 * character or over EWS_MAX_REQUEST_HEADER bytes, a bearer_token without BEARER or with a
 * control character, BEARER with no token at all), -EMSGSIZE (a body over INT32_MAX) or -EIO;
 * on error nothing was started and done never fires. The request goes out from the loop.
 */
ATTR_NODISCARD int ews_transport_post(struct ews_transport *t, const struct ews_call_opts *o,
                                      const char *body, size_t len, ews_done_fn *done, void *ctx,
                                      struct ews_call **out_call, struct err *err);

/*
 * Stops a call: its callbacks never fire again and its connection is closed (a half-read
 * response cannot be reused). Safe inside the call's own chunk callback and inside other calls'
 * callbacks; a no-op inside its own done callback. After it returns call must not be used.
 */
void ews_transport_cancel(struct ews_call *call);

/* Calls started and not yet finished or cancelled. */
size_t ews_transport_active(const struct ews_transport *t);
