/* SPDX-License-Identifier: MIT */
/*
 * check-throttle.c: the throttling answers `calsync check` saw (ErrorServerBusy and its
 * BackOffMilliseconds, EWSMaxConcurrency, HangingConnectionLimit, EWSMaxSubscriptions, HTTP
 * 503, ...), noted as each call ends, and the throttling step that reports them at the end.
 */
#include "cli/check-int.h"

#include <inttypes.h>
#include <stdio.h>

/* A throttled answer is retried once, after its BackOffMilliseconds (capped), else after 1 s. */
#define CHECK_MAX_BACK_OFF_MS     10000
#define CHECK_DEFAULT_BACK_OFF_MS 1000

/* Exchange's defaults for the throttling settings calsync meets (EWS-REFERENCE 1.7). */
#define EX_DEFAULT_MAX_CONCURRENCY   27
#define EX_DEFAULT_HANGING_LIMIT     10
#define EX_DEFAULT_MAX_SUBSCRIPTIONS 5000

/* The pause the server asked for (BackOffMilliseconds, else Retry-After), else 1 s. */
static int64_t hint(const struct ews_verdict *v)
{
	return v->back_off_ms >= 0 ? v->back_off_ms : CHECK_DEFAULT_BACK_OFF_MS;
}

/* Which throttling answer the verdict v is, counted in t: its name for the report, NULL when
 * it is none; *back is the pause before one retry, -1 for none. */
static const char *classify(struct throttle *t, const char *op, const struct ews_verdict *v,
                            int64_t *back)
{
	int64_t limit = v->max_concurrency_limit;

	*back = -1;
	if (ews_verdict_is(v, "http-503")) {
		t->other++;
		*back = hint(v);
		return "HTTP 503";
	}
	if (ews_verdict_is(v, "ErrorServerBusy")) {
		t->server_busy++;
		if (v->back_off_ms > t->max_back_off_ms)
			t->max_back_off_ms = v->back_off_ms;
		*back = hint(v);
		return "ErrorServerBusy";
	}
	if (ews_verdict_is(v, "ErrorExceededConnectionCount")) {
		if (check_str_is(op, "GetStreamingEvents")) {
			t->hanging++;
			if (limit >= 0)
				t->hanging_limit = limit;
			return "ErrorExceededConnectionCount (HangingConnectionLimit)";
		}
		t->concurrency++;
		if (limit >= 0)
			t->concurrency_limit = limit;
		*back = CHECK_DEFAULT_BACK_OFF_MS;
		return "ErrorExceededConnectionCount (EWSMaxConcurrency)";
	}
	if (ews_verdict_is(v, "ErrorExceededSubscriptionCount")) {
		t->subscriptions++;
		return "ErrorExceededSubscriptionCount (EWSMaxSubscriptions)";
	}
	if (v->cls == EWS_ERR_THROTTLED) { /* ErrorTooManyObjectsOpened and the like */
		t->other++;
		*back = hint(v);
		return v->code;
	}
	if (limit >= 0) {
		t->concurrency++;
		t->concurrency_limit = limit;
		return "MaxConcurrencyLimit";
	}
	return NULL;
}

int64_t check_throttle_note(struct check *c, const char *op, const char *mailbox,
                            const struct answer *a)
{
	struct throttle *t = &c->thr;
	int64_t back;
	const char *what;

	if (a->v.http_status != 0 && !ews_verdict_is_auth(&a->v))
		c->answers++; /* Exchange, not IIS's 401, answered */
	what = classify(t, op, &a->v, &back);
	if (what != NULL && t->first[0] == '\0')
		(void)snprintf(t->first, sizeof(t->first), "%s on %s%s%s", what, op,
		               mailbox != NULL ? " for " : "", mailbox != NULL ? mailbox : "");
	if (back > CHECK_MAX_BACK_OFF_MS)
		back = CHECK_MAX_BACK_OFF_MS;
	return back;
}

/* ---- throttling ------------------------------------------------------------------------------ */

void check_throttling(struct check *c)
{
	const struct throttle *t = &c->thr;
	struct fix f = {0};
	char conc[96];
	char hang[96];
	char subs[96];
	char busy[96] = "";
	bool seen = t->server_busy || t->concurrency || t->hanging || t->subscriptions || t->other;

	if (c->answers == 0) {
		check_skip(c, "throttling", "no EWS request was answered");
		return;
	}
	if (t->concurrency && t->concurrency_limit >= 0)
		(void)snprintf(
			conc, sizeof(conc),
			"EWSMaxConcurrency observed (%u answer%s, MaxConcurrencyLimit %" PRId64 ")",
			t->concurrency, t->concurrency == 1 ? "" : "s", t->concurrency_limit);
	else if (t->concurrency)
		(void)snprintf(conc, sizeof(conc), "EWSMaxConcurrency observed (%u answer%s)",
		               t->concurrency, t->concurrency == 1 ? "" : "s");
	else
		(void)snprintf(conc, sizeof(conc), "EWSMaxConcurrency not observed (default %d)",
		               EX_DEFAULT_MAX_CONCURRENCY);
	if (t->hanging && t->hanging_limit >= 0)
		(void)snprintf(hang, sizeof(hang),
		               "HangingConnectionLimit observed (%u answer%s, limit %" PRId64 ")",
		               t->hanging, t->hanging == 1 ? "" : "s", t->hanging_limit);
	else if (t->hanging)
		(void)snprintf(hang, sizeof(hang), "HangingConnectionLimit observed (%u answer%s)",
		               t->hanging, t->hanging == 1 ? "" : "s");
	else
		(void)snprintf(hang, sizeof(hang),
		               "HangingConnectionLimit not observed (default %d)",
		               EX_DEFAULT_HANGING_LIMIT);
	if (t->subscriptions)
		(void)snprintf(subs, sizeof(subs), "EWSMaxSubscriptions observed (%u answer%s)",
		               t->subscriptions, t->subscriptions == 1 ? "" : "s");
	else
		(void)snprintf(subs, sizeof(subs), "EWSMaxSubscriptions not observed (default %d)",
		               EX_DEFAULT_MAX_SUBSCRIPTIONS);
	if (t->server_busy && t->max_back_off_ms >= 0)
		(void)snprintf(busy, sizeof(busy),
		               "; ErrorServerBusy %u time%s (BackOffMilliseconds up to %" PRId64
		               ")",
		               t->server_busy, t->server_busy == 1 ? "" : "s", t->max_back_off_ms);
	else if (t->server_busy)
		(void)snprintf(busy, sizeof(busy), "; ErrorServerBusy %u time%s", t->server_busy,
		               t->server_busy == 1 ? "" : "s");
	if (t->other)
		(void)snprintf(busy + strlen(busy), sizeof(busy) - strlen(busy),
		               "; %u other busy answer%s", t->other, t->other == 1 ? "" : "s");
	if (!seen) {
		check_step_add(c, "throttling", NULL, ST_OK, NULL,
		               "no throttling answer: %s; %s; %s", conc, hang, subs);
		return;
	}
	check_fix_throttling(c, &f, t->hanging > 0);
	check_step_add(c, "throttling", NULL, ST_WARN, &f, "throttled (first: %s): %s; %s; %s%s",
	               t->first, conc, hang, subs, busy);
}
