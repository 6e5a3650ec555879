/* SPDX-License-Identifier: MIT */
/*
 * ews-verdict.h: the one reading of an EWS answer. From what the transport ended with (its rc,
 * the HTTP status, a Retry-After) and the parsed response or SOAP fault, says what the answer
 * means for the caller: the class of ews-errors.h that decides the reaction (none, transient,
 * throttled, subscription lost, mailbox or account permanent, client bug, unknown), the
 * table's flags for what to do besides (re-read, rediscover, fix the version, ...), the server's
 * back-off hint, and the code and reason to report. It is meant for both the daemon and
 * `calsync check` (which each had a reading of their own), so that they cannot disagree.
 * Pure: no I/O, no clock.
 *
 * The reading, in order (EWS-REFERENCE.md 1.3 to 1.6; where the daemon and check disagreed,
 * the daemon's reading is kept unless the reference says otherwise, as noted):
 *
 * - No EWS answer (rc < 0, see struct ews_result): -EACCES (401 after the handshake, 403, 456)
 *   is ACCOUNT_PERMANENT with code "access-denied": the service account's credentials or
 *   rights, which retrying soon cannot fix (reference 1.5: alert). -EAGAIN (HTTP 503) is
 *   THROTTLED with code "http-503" and back_off_ms from Retry-After when there is one: the
 *   reference (1.5, from Microsoft's throttling guidance) says IIS is queueing EWS requests,
 *   "stop sending for a while, back off exponentially", and a Retry-After is the server's
 *   pause just like BackOffMilliseconds. (The daemon read 503 as TRANSIENT, check as
 *   throttling. Without a Retry-After the daemon's delay is the same either way, exponential
 *   per mailbox; what changes is that it counts as throttled and a Retry-After is honoured.)
 *   Every other transport failure (network, TLS, timeouts, other HTTP statuses, a body over
 *   the limit) is TRANSIENT with code "transport", as the daemon has it.
 * - An answer that is not a readable EWS envelope is TRANSIENT, code "bad-response".
 * - A SOAP fault (HTTP 500 with XML): its detail's ResponseCode (or the Availability service's
 *   ErrorCode). When the detail has neither, the faultcode's local part is the code if it is
 *   an EWS one ("a:ErrorServerBusy": starts with "Error"), as check read it: the reference
 *   (1.4) shows Exchange writing the code there in the types namespace. (The daemon read such
 *   a fault as "bad-response", TRANSIENT.) A SOAP faultcode such as "s:Server" names no EWS
 *   code: TRANSIENT, "bad-response", as the daemon had it. The text is the detail's Message,
 *   else the faultstring.
 * - Otherwise the first ResponseMessage (the daemon's and check's reading both; batch callers
 *   look at the other messages themselves). A message without a ResponseCode is NoError unless
 *   its class is Error. A Warning is class NONE, as in the daemon: its payload is used;
 *   warning says so, for a caller that wants to treat the items as failed (reference 1.3).
 * - An Autodiscover GetUserSettings answer is NoError, unless its request-level ErrorCode is
 *   another value: TRANSIENT with that code (the daemon's reading; per-user ErrorCodes are the
 *   caller's to read).
 * - A code whose entry has USE_INNER (ErrorInternalServerError) is replaced by its
 *   InnerErrorResponseCode when the table knows that one (reference 1.3: the inner code is the
 *   real one; an HTTP 200 ErrorInternalServerError can wrap ErrorServerBusy). An unknown inner
 *   code leaves the outer one, TRANSIENT, as the daemon had it; ews_verdict_is() matches it.
 * - The class and flags are the table's; a code not in the table is EWS_ERR_UNKNOWN, which
 *   callers treat as transient.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ews/ews-errors.h"

struct ews_message;
struct ews_response;
struct ews_result;

/* The longest Retry-After honoured, in ms. Exchange asks for its pauses in BackOffMilliseconds;
 * a Retry-After comes from IIS or a load balancer, and one of hours is a misconfiguration more
 * likely than a plan: past this the caller's own back-off, capped as well, decides. */
#define EWS_VERDICT_MAX_RETRY_AFTER_MS INT64_C(900000)

/* Where the verdict was read. */
enum ews_verdict_origin {
	EWS_VERDICT_TRANSPORT = 0, /* no EWS answer: rc says why */
	EWS_VERDICT_UNREADABLE,    /* an answer that is no readable EWS envelope */
	EWS_VERDICT_FAULT,         /* a SOAP fault */
	EWS_VERDICT_MESSAGE,       /* the first ResponseMessage */
	EWS_VERDICT_AUTODISCOVER,  /* a GetUserSettings answer's request-level ErrorCode */
};

/* What the transport ended with, and the answer when it could be read. */
struct ews_verdict_in {
	int rc;                          /* struct ews_result's: 0 when an EWS answer arrived */
	long http_status;                /* 0 when no HTTP answer arrived */
	const char *transport_msg;       /* the transport's err.msg when rc < 0; may be NULL */
	const char *retry_after;         /* the Retry-After header's value, or NULL */
	const struct ews_response *resp; /* the parsed answer (rc 0), or NULL */
	const char *parse_msg;           /* rc 0 and resp NULL: why it could not be read */
};

/* The verdict. Strings are copies (truncated, always NUL-terminated), "" when absent. */
struct ews_verdict {
	enum ews_error_class cls; /* what to do; EWS_ERR_NONE: the answer is usable */
	unsigned flags;           /* enum ews_error_flags of the code acted on */
	enum ews_verdict_origin origin;
	int rc;           /* the transport's rc */
	long http_status; /* the HTTP status, 0 when none */
	bool warning;     /* the message's ResponseClass was Warning (cls is NONE) */
	/* The server's pause: BackOffMilliseconds, else Retry-After (at most
	 * EWS_VERDICT_MAX_RETRY_AFTER_MS); -1 when it named none. Only THROTTLED asks for it. */
	int64_t back_off_ms;
	int64_t max_concurrency_limit; /* MessageXml's MaxConcurrencyLimit, -1 when absent */
	/* The code acted on: an EWS ResponseCode (the inner one when it replaced the outer), or
	 * "access-denied", "http-503", "transport", "bad-response". */
	char code[96];
	char response_code[96]; /* the code as the answer gave it (the outer one), or "" */
	char inner_code[96];    /* InnerErrorResponseCode under a USE_INNER code, or "" */
	char text[256];         /* the server's MessageText / Message / faultstring, or "" */
	char msg[320];          /* for logs and reports: "code: text", or the transport's reason */
};

/* Reads the verdict of in into *out (always written). */
void ews_verdict_read(const struct ews_verdict_in *in, struct ews_verdict *out);

/*
 * A finished buffered call: parses r's body into *resp when r->rc is 0 (resp is zeroed first
 * and is the caller's to ews_response_clear() either way) and reads the verdict into *out.
 * retry_after overrides the call's Retry-After header; NULL takes r->retry_after, the header
 * the transport captured, which is what a caller normally wants. This is what the daemon's
 * classify() did.
 */
void ews_verdict_of_result(const struct ews_result *r, const char *retry_after,
                           struct ews_response *resp, struct ews_verdict *out);

/* One ResponseMessage read on its own (a stream's message with ErrorSubscriptionIds, one
 * message of a batch): the same reading as the first message of an answer, into *out. */
void ews_verdict_of_message(const struct ews_message *m, struct ews_verdict *out);

/* Whether the answer carried code: as the code acted on, as the outer code, or as the inner
 * code of an ErrorInternalServerError (what check's is_code() asked). */
bool ews_verdict_is(const struct ews_verdict *v, const char *code);

/* Whether the transport refused the credentials or the account (HTTP 401, 403, 456). */
bool ews_verdict_is_auth(const struct ews_verdict *v);

/* "transport", "unreadable", "fault", "message", "autodiscover". */
const char *ews_verdict_origin_name(enum ews_verdict_origin o);
