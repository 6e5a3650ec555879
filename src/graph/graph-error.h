/* SPDX-License-Identifier: MIT */
/*
 * graph-error.h: the one reading of a Microsoft Graph answer. From the HTTP status, the
 * Retry-After the transport captured and the error body ({"error": {"code", "message",
 * "innerError": {...}}}), says what the answer means for the request that got it: a class the
 * backend acts on (struct graph_verdict), flags for what to do besides, the server's pause, and
 * "code: message" for the log. Pure and constant: no I/O, no clock. The table of codes, with
 * the reason for each choice, is in graph-error.c; graph_error_table() lists it.
 *
 * The reading, in order (Graph's docs: "errors", "throttling", "delta query", "JSON batching"):
 *
 * 1. No HTTP answer (status 0: the transport gave up: connect, TLS, timeout): TRANSIENT.
 * 2. 2xx: OK.
 * 3. 401: TOKEN, whatever the code: the bearer token was refused (InvalidAuthenticationToken,
 *    expired or not yet valid). Refresh it and retry once; a second TOKEN for the fresh token
 *    is the account's problem (the backend escalates it to ACCOUNT).
 * 4. 429: THROTTLED; back_off_ms is the Retry-After when there was one.
 * 5. Any 5xx that names a Retry-After (503 and 509 do; Graph's docs say to wait it out):
 *    THROTTLED with that pause.
 * 6. 404 to a subscription's renewal or reauthorization (GRAPH_REQ_SUB_RENEW): FEED_LOST, the
 *    subscription is gone (expired, or removed by Graph): create a new one and re-read. 404 to
 *    its deletion (GRAPH_REQ_SUB_DELETE): OK with GRAPH_VF_ALREADY_GONE.
 * 7. The error code: the innermost code of the chain that the table knows (Graph's docs: "use
 *    the most detailed one that they understand"), compared without regard to case (Graph
 *    writes "syncStateNotFound" and "SyncStateNotFound"). Its class and flags decide.
 * 8. Otherwise the status: 403 ACCOUNT; 404 MAILBOX + GONE (the user, or its calendar, is not
 *    there; for GRAPH_REQ_OTHER it is REFUSED); 410 GAP for a delta read, else REFUSED; 408,
 *    other 5xx: TRANSIENT; any other status: REFUSED.
 *
 * THROTTLED's back_off_ms is the Retry-After (at most GRAPH_MAX_RETRY_AFTER_MS), or -1 when the
 * answer named none and the caller's own back-off decides.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"

/* What the backend does with an answer. graph/ cannot see sync/backend.h; the backend maps
 * these onto enum sync_verdict (the names say which: GRAPH_MAILBOX is SYNC_MAILBOX_PERMANENT,
 * GRAPH_ACCOUNT SYNC_ACCOUNT_PERMANENT; GRAPH_TOKEN has no counterpart: refresh and retry). */
enum graph_class {
	GRAPH_OK = 0,
	GRAPH_TRANSIENT, /* retry after an exponential, jittered back-off */
	GRAPH_THROTTLED, /* wait back_off_ms when given, else back off; counts as throttling */
	GRAPH_TOKEN,     /* the access token was refused: get a new one, retry once */
	GRAPH_ACCOUNT,   /* the application's permissions or consent: park everything, alert */
	GRAPH_MAILBOX, /* this mailbox: gone, or not in the cloud (REHOME): park it, retry slowly */
	GRAPH_GAP,     /* the delta token is no longer valid: start the delta round again */
	GRAPH_FEED_LOST, /* the subscription is gone: create a new one, then re-read */
	GRAPH_REFUSED,   /* our request was wrong: do not send it again as it is */
};

#define GRAPH_CLASS_COUNT (GRAPH_REFUSED + 1)

enum graph_flags {
	GRAPH_VF_GONE = 1u << 0,         /* the user or mailbox does not exist (MAILBOX) */
	GRAPH_VF_REHOME = 1u << 1,       /* the mailbox is not served by Graph (on-premises, moved
	                                  * back, not licensed): rediscover where it lives */
	GRAPH_VF_RESYNC = 1u << 2,       /* re-read the window as well */
	GRAPH_VF_ALREADY_GONE = 1u << 3, /* a deletion found nothing to delete: a success */
};

/* Which request the answer is for: a 404 means something else for each. */
enum graph_req {
	GRAPH_REQ_OTHER = 0,
	GRAPH_REQ_USER,       /* the user lookup */
	GRAPH_REQ_READ,       /* a calendarView page */
	GRAPH_REQ_DELTA,      /* a calendarView delta page */
	GRAPH_REQ_SUB_CREATE, /* POST /subscriptions */
	GRAPH_REQ_SUB_RENEW,  /* PATCH /subscriptions/{id}, POST .../reauthorize */
	GRAPH_REQ_SUB_DELETE, /* DELETE /subscriptions/{id} */
};

/* The longest Retry-After honoured. Graph asks for seconds; one of hours is more likely a
 * misconfigured proxy than a plan, and past this the caller's own capped back-off decides. */
#define GRAPH_MAX_RETRY_AFTER_MS INT64_C(900000)
/* The largest error body read; Graph's are a few hundred bytes. A longer one is read as
 * having no code (its status decides). */
#define GRAPH_MAX_ERROR_BODY (64u << 10)

/* An answer as the transport ended it. */
struct graph_answer {
	enum graph_req req;
	long status;            /* the HTTP status; 0 when no HTTP answer arrived */
	int64_t retry_after_ms; /* graph_retry_after_ms() of the header; -1 when none */
	const char *body;       /* the body (not NUL-terminated), may be NULL */
	size_t body_len;
	const char *transport_msg; /* status 0: why the transport gave up; may be NULL */
};

struct graph_verdict {
	enum graph_class cls;
	unsigned flags;      /* enum graph_flags */
	long status;         /* the HTTP status, 0 when none */
	int64_t back_off_ms; /* THROTTLED: the server's pause; -1 when it named none */
	char code[96];       /* the code acted on (see the reading), or "" */
	char text[256];      /* the error's message, printable and cut; "" when none */
	/* For the log and a park: "code: message", "HTTP 503: message", "HTTP 404" or
	 * "transport: ...". Bounded; it holds only what the server or transport said, and calsync
	 * never sends a secret in a form Graph echoes. */
	char msg[384];
	/* Why this class, from the table or the reading (static text, never NULL). */
	const char *reason;
	/* What an operator should do, or NULL when retrying is the fix (static text). */
	const char *fix;
};

/* Reads the verdict of a into *out (always written). */
void graph_error_classify(const struct graph_answer *a, struct graph_verdict *out);

/*
 * A Retry-After header value (len bytes, not NUL-terminated) in ms: delta-seconds, optionally
 * surrounded by spaces or tabs, capped at GRAPH_MAX_RETRY_AFTER_MS. -1 for NULL, an empty
 * value, or anything else (an HTTP-date: Graph sends seconds, and the caller's back-off is the
 * safe reading of a form we do not take).
 */
int64_t graph_retry_after_ms(const char *value, size_t len);

/* "ok", "transient", "throttled", "token", "account", "mailbox", "gap", "feed-lost",
 * "refused"; "unknown" for a value outside the enum. */
const char *graph_class_name(enum graph_class c);

struct graph_error_info {
	const char *code;
	enum graph_class cls;
	unsigned flags;
	const char *reason;
};

/* The table, sorted by code without regard to ASCII case, for tests and `calsync check`. */
const struct graph_error_info *graph_error_table(size_t *out_n);

/* The entry for code (compared without regard to ASCII case), or NULL. */
const struct graph_error_info *graph_error_lookup(const char *code);
