/* SPDX-License-Identifier: MIT */
/*
 * graph-error.c: the table of Graph error codes and the reading of an answer (graph-error.h).
 *
 * Graph's codes come from its layers: Graph's own ("generalException", "syncStateNotFound"),
 * Microsoft Entra's directory ("Authorization_RequestDenied", "Request_ResourceNotFound") and
 * Exchange Online behind the Outlook APIs (EWS-style "ErrorAccessDenied", "ErrorItemNotFound",
 * and "MailboxNotEnabledForRESTAPI"). Choices that are not read off a doc directly:
 *
 * - ErrorAccessDenied is ACCOUNT, not MAILBOX: Exchange answers it both when the application
 *   lacks Calendars.Read (or its admin consent) and when an application access policy or an
 *   RBAC for Applications scope leaves the mailbox out; the codes are the same, and both are
 *   the tenant admin's to fix. The fix names both.
 * - MailboxNotEnabledForRESTAPI and MailboxNotSupportedForRESTAPI are MAILBOX + REHOME: the
 *   mailbox is not one Exchange Online serves (on-premises in a hybrid, moved back, inactive or
 *   unlicensed). Rediscovery finds out whether it lives on an on-premises Exchange now.
 * - 404 codes (ResourceNotFound, ErrorItemNotFound, ErrorInvalidUser, ...) are MAILBOX + GONE
 *   for the requests that name a mailbox; for a subscription's renewal the reading turns any
 *   404 into FEED_LOST before the table is asked (graph-error.h, step 6).
 * - ValidationError (Graph could not validate the notificationUrl) is REFUSED, not ACCOUNT:
 *   only subscribing fails, reads go on, and the fix is the endpoint's, named in the reason.
 * - ExtensionError is not in the table: Graph wraps many unrelated Exchange failures in it, so
 *   the status decides.
 *
 * The table is sorted by code without regard to ASCII case (what strcasecmp orders), which
 * test-graph-error.c checks, so a lookup is a binary search.
 */
#include "graph/graph-error.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "graph/graph-json-int.h"

#define ENTRY(c, k, f, r)                                                  \
	{                                                                  \
		.code = (c), .cls = GRAPH_##k, .flags = (f), .reason = (r) \
	}
#define GONE   GRAPH_VF_GONE
#define REHOME GRAPH_VF_REHOME
#define RESYNC GRAPH_VF_RESYNC

static const struct graph_error_info table[] = {
	ENTRY("accessDenied", ACCOUNT, 0, "Graph refused the application access"),
	ENTRY("activityLimitReached", THROTTLED, 0, "the application or user was throttled"),
	ENTRY("ApplicationThrottled", THROTTLED, 0,
              "the application's or the mailbox's request limit (MailboxConcurrency) "
              "was reached"),
	ENTRY("Authorization_RequestDenied", ACCOUNT, 0,
              "Microsoft Entra refused the application: a permission or its admin "
              "consent is missing"),
	ENTRY("BadRequest", REFUSED, 0, "Graph could not take the request as calsync wrote it"),
	ENTRY("ErrorAccessDenied", ACCOUNT, 0,
              "Exchange Online refused the application: no Calendars.Read application permission "
              "with admin consent, or an application access policy or RBAC scope "
              "excludes the mailbox"),
	ENTRY("ErrorInternalServerError", TRANSIENT, 0, "Exchange Online failed internally"),
	ENTRY("ErrorInternalServerTransientError", TRANSIENT, 0,
              "Exchange Online failed for a moment"),
	ENTRY("ErrorInvalidIdMalformed", REFUSED, 0,
              "an id calsync sent is not one Exchange takes"),
	ENTRY("ErrorInvalidRequest", REFUSED, 0, "Exchange Online could not take the request"),
	ENTRY("ErrorInvalidSyncStateData", GAP, 0,
              "the mailbox no longer understands the delta token"),
	ENTRY("ErrorInvalidUser", MAILBOX, GONE, "Exchange Online has no such user"),
	ENTRY("ErrorItemNotFound", MAILBOX, GONE,
              "the mailbox or its calendar is not in the Exchange Online store"),
	ENTRY("ErrorMailboxMoveInProgress", TRANSIENT, REHOME | RESYNC,
              "the mailbox is being moved; afterwards it may live elsewhere"),
	ENTRY("ErrorMailboxStoreUnavailable", TRANSIENT, 0,
              "the mailbox's database is not reachable for a moment"),
	ENTRY("ErrorNonExistentMailbox", MAILBOX, GONE, "the user has no mailbox"),
	ENTRY("ErrorServerBusy", THROTTLED, 0, "Exchange Online is busy"),
	ENTRY("ErrorTimeoutExpired", TRANSIENT, 0, "Exchange Online ran out of time"),
	ENTRY("generalException", TRANSIENT, 0, "Graph failed without saying why"),
	ENTRY("InvalidAuthenticationToken", TOKEN, 0,
              "the access token was refused (expired, not yet valid or malformed)"),
	ENTRY("invalidRequest", REFUSED, 0, "Graph could not take the request as calsync wrote it"),
	ENTRY("itemNotFound", MAILBOX, GONE, "Graph found no such user or calendar"),
	ENTRY("MailboxNotEnabledForRESTAPI", MAILBOX, REHOME,
              "the mailbox is not in Exchange Online: on-premises, inactive, soft-deleted or "
              "unlicensed"),
	ENTRY("MailboxNotSupportedForRESTAPI", MAILBOX, REHOME,
              "the mailbox is not one Graph serves (on-premises or of an unsupported kind)"),
	ENTRY("Request_BadRequest", REFUSED, 0, "the directory could not take the request"),
	ENTRY("Request_ResourceNotFound", MAILBOX, GONE, "the directory has no such user"),
	ENTRY("Request_UnsupportedQuery", REFUSED, 0, "the directory does not support the query"),
	ENTRY("ResourceNotFound", MAILBOX, GONE, "Graph found no such user or mailbox"),
	ENTRY("resyncRequired", GAP, 0, "the delta token is no longer valid: sync again"),
	ENTRY("serviceNotAvailable", TRANSIENT, 0, "Graph is not available for a moment"),
	ENTRY("syncStateNotFound", GAP, 0,
              "the delta token's sync state expired or was dropped: sync again"),
	ENTRY("throttledRequest", THROTTLED, 0, "too many requests"),
	ENTRY("TooManyRequests", THROTTLED, 0, "too many requests"),
	ENTRY("unauthenticated", TOKEN, 0, "the request carried no token Graph accepts"),
	ENTRY("UnknownError", TRANSIENT, 0, "Graph failed without saying why"),
	ENTRY("ValidationError", REFUSED, 0,
              "Graph could not validate the notification URL: it must be reachable from Microsoft "
              "Graph over HTTPS and echo the validationToken within 10 seconds"),
};

#define N_TABLE (sizeof(table) / sizeof(table[0]))

/* The deepest innerError chain followed. */
#define MAX_INNER 8

const struct graph_error_info *graph_error_table(size_t *out_n)
{
	*out_n = N_TABLE;
	return table;
}

const struct graph_error_info *graph_error_lookup(const char *code)
{
	size_t lo = 0;
	size_t hi = N_TABLE;

	if (code == NULL || code[0] == '\0')
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcasecmp(code, table[mid].code);

		if (c == 0)
			return &table[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const char *graph_class_name(enum graph_class c)
{
	static const char *const names[GRAPH_CLASS_COUNT] = {
		[GRAPH_OK] = "ok",
		[GRAPH_TRANSIENT] = "transient",
		[GRAPH_THROTTLED] = "throttled",
		[GRAPH_TOKEN] = "token",
		[GRAPH_ACCOUNT] = "account",
		[GRAPH_MAILBOX] = "mailbox",
		[GRAPH_GAP] = "gap",
		[GRAPH_FEED_LOST] = "feed-lost",
		[GRAPH_REFUSED] = "refused",
	};

	return (unsigned)c < GRAPH_CLASS_COUNT ? names[c] : "unknown";
}

int64_t graph_retry_after_ms(const char *value, size_t len)
{
	size_t i = 0;
	int64_t secs = 0;
	bool digits = false;

	if (value == NULL)
		return -1;
	while (i < len && (value[i] == ' ' || value[i] == '\t'))
		i++;
	for (; i < len && value[i] >= '0' && value[i] <= '9'; i++) {
		digits = true;
		/* Past the cap the value no longer matters; stop before it can overflow. */
		if (secs <= GRAPH_MAX_RETRY_AFTER_MS / 1000)
			secs = secs * 10 + (value[i] - '0');
	}
	while (i < len && (value[i] == ' ' || value[i] == '\t'))
		i++;
	if (!digits || i != len)
		return -1;
	if (secs > GRAPH_MAX_RETRY_AFTER_MS / 1000)
		return GRAPH_MAX_RETRY_AFTER_MS;
	return secs * 1000;
}

/* What an operator does about a class, or NULL when retrying is the fix. */
static const char *fix_of(enum graph_class cls, unsigned flags)
{
	switch (cls) {
	case GRAPH_ACCOUNT:
		return "grant the application the Microsoft Graph application permission "
		       "Calendars.Read and an administrator's consent for the tenant; if an "
		       "application access policy or Exchange RBAC for Applications limits the "
		       "application, include this mailbox in its scope";
	case GRAPH_MAILBOX:
		if (flags & GRAPH_VF_REHOME)
			return "the mailbox is not in Exchange Online: calsync looks for it again; if "
			       "it should be in the cloud, check that the user has an Exchange Online "
			       "license and an active mailbox";
		return "check that the user exists in the tenant and has an Exchange Online "
		       "mailbox, or remove it from the configuration";
	case GRAPH_REFUSED:
		return "calsync sent a request Graph refuses: report it with this message";
	case GRAPH_OK:
	case GRAPH_TRANSIENT:
	case GRAPH_THROTTLED:
	case GRAPH_TOKEN:
	case GRAPH_GAP:
	case GRAPH_FEED_LOST:
		break;
	}
	return NULL;
}

/* The code, message and innerError codes of an error body (borrowed from doc). */
struct body {
	const char *codes[MAX_INNER + 1]; /* codes[0] the outer one */
	size_t n_codes;
	const char *message;
};

static const json_t *inner_of(const json_t *e)
{
	const json_t *in = json_object_get(e, "innerError");

	if (in == NULL)
		in = json_object_get(e, "innererror");
	return json_is_object(in) ? in : NULL;
}

/* Reads what it can of the body; a body that is no Graph error leaves b empty. */
static json_t *read_body(const struct graph_answer *a, struct body *b)
{
	json_t *doc = NULL;
	const json_t *e;
	const json_t *m;

	*b = (struct body){0};
	if (a->body == NULL || gj_load_object("error body", a->body, a->body_len,
	                                      GRAPH_MAX_ERROR_BODY, &doc, NULL) < 0)
		return NULL;
	e = json_object_get(doc, "error");
	if (json_is_string(e)) {
		b->codes[b->n_codes++] = json_string_value(e);
		return doc;
	}
	if (!json_is_object(e))
		return doc;
	m = json_object_get(e, "message");
	b->message = json_is_string(m) ? json_string_value(m) : NULL;
	for (const json_t *x = e; x != NULL && b->n_codes <= MAX_INNER; x = inner_of(x)) {
		const json_t *c = json_object_get(x, "code");

		if (json_is_string(c) && json_string_value(c)[0] != '\0')
			b->codes[b->n_codes++] = json_string_value(c);
	}
	return doc;
}

static void set(struct graph_verdict *v, enum graph_class cls, unsigned flags, const char *reason)
{
	v->cls = cls;
	v->flags = flags;
	v->reason = reason;
	v->fix = fix_of(cls, flags);
}

/* Steps 6 to 8 of the reading (graph-error.h). */
static void by_code_and_status(const struct graph_answer *a, const struct body *b,
                               struct graph_verdict *v)
{
	const struct graph_error_info *known = NULL;
	long s = a->status;

	if (s == 404 && a->req == GRAPH_REQ_SUB_RENEW) {
		set(v, GRAPH_FEED_LOST, GRAPH_VF_RESYNC, "the subscription no longer exists");
		return;
	}
	if (s == 404 && a->req == GRAPH_REQ_SUB_DELETE) {
		set(v, GRAPH_OK, GRAPH_VF_ALREADY_GONE, "the subscription was already gone");
		return;
	}
	for (size_t i = b->n_codes; i > 0 && known == NULL; i--) {
		known = graph_error_lookup(b->codes[i - 1]);
		if (known != NULL)
			gj_printable(b->codes[i - 1], v->code, sizeof(v->code));
	}
	if (known != NULL)
		set(v, known->cls, known->flags, known->reason);
	else if (s == 403)
		set(v, GRAPH_ACCOUNT, 0, "HTTP 403: the application may not do this");
	else if (s == 404 && a->req != GRAPH_REQ_OTHER)
		set(v, GRAPH_MAILBOX, GRAPH_VF_GONE, "HTTP 404: no such user or mailbox");
	else if (s == 410 && a->req == GRAPH_REQ_DELTA)
		set(v, GRAPH_GAP, 0, "HTTP 410: the delta token is gone: sync again");
	else if (s == 408 || (s >= 500 && s <= 599))
		set(v, GRAPH_TRANSIENT, 0, "a server error or timeout: retry later");
	else
		set(v, GRAPH_REFUSED, 0, "an answer calsync has no reading for");
}

static void format_msg(struct graph_verdict *v)
{
	if (v->code[0] != '\0' && v->text[0] != '\0')
		snprintf(v->msg, sizeof(v->msg), "%s: %s", v->code, v->text);
	else if (v->code[0] != '\0')
		snprintf(v->msg, sizeof(v->msg), "%s (HTTP %ld)", v->code, v->status);
	else if (v->text[0] != '\0')
		snprintf(v->msg, sizeof(v->msg), "HTTP %ld: %s", v->status, v->text);
	else
		snprintf(v->msg, sizeof(v->msg), "HTTP %ld", v->status);
}

void graph_error_classify(const struct graph_answer *a, struct graph_verdict *out)
{
	struct body b;
	json_t *doc;

	*out = (struct graph_verdict){.status = a->status, .back_off_ms = -1};
	if (a->status <= 0) {
		char why[256];

		set(out, GRAPH_TRANSIENT, 0, "no answer from Graph: retry later");
		gj_printable(a->transport_msg != NULL ? a->transport_msg : "no answer", why,
		             sizeof(why));
		snprintf(out->msg, sizeof(out->msg), "transport: %s", why);
		return;
	}
	if (a->status >= 200 && a->status <= 299) {
		set(out, GRAPH_OK, 0, "success");
		snprintf(out->msg, sizeof(out->msg), "HTTP %ld", a->status);
		return;
	}
	doc = read_body(a, &b);
	if (b.n_codes > 0)
		gj_printable(b.codes[0], out->code, sizeof(out->code));
	gj_printable(b.message, out->text, sizeof(out->text));
	if (a->status == 401)
		set(out, GRAPH_TOKEN, 0, "HTTP 401: the access token was refused");
	else if (a->status == 429 || (a->status >= 500 && a->retry_after_ms >= 0))
		set(out, GRAPH_THROTTLED, 0, "throttled: wait for the Retry-After, then retry");
	else
		by_code_and_status(a, &b, out);
	if (out->cls == GRAPH_THROTTLED && a->retry_after_ms >= 0)
		out->back_off_ms = a->retry_after_ms > GRAPH_MAX_RETRY_AFTER_MS
		                           ? GRAPH_MAX_RETRY_AFTER_MS
		                           : a->retry_after_ms;
	format_msg(out);
	json_decref(doc);
}
