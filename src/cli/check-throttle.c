/* SPDX-License-Identifier: MIT */
/*
 * check-throttle.c: the throttling answers `calsync check` saw (ErrorServerBusy and its
 * BackOffMilliseconds, EWSMaxConcurrency, HangingConnectionLimit, EWSMaxSubscriptions, HTTP
 * 503, ...), noted as each call ends, and the throttling step that reports them at the end.
 */
#include "cli/check-int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

/* A throttled answer is retried once, after its BackOffMilliseconds (capped), else after 1 s. */
#define CHECK_MAX_BACK_OFF_MS     10000
#define CHECK_DEFAULT_BACK_OFF_MS 1000

/* Exchange's defaults for the throttling settings calsync meets (EWS-REFERENCE 1.7). */
#define EX_DEFAULT_MAX_CONCURRENCY   27
#define EX_DEFAULT_HANGING_LIMIT     10
#define EX_DEFAULT_MAX_SUBSCRIPTIONS 5000

/*
 * Notes a throttling answer, if a is one. Returns how long to wait before one retry, or -1
 * when a is not a throttling answer worth retrying.
 */
int64_t check_throttle_note(struct check *c, const char *op, const char *mailbox,
                            const struct answer *a)
{
	struct throttle *t = &c->thr;
	int64_t back = -1;
	const char *what = NULL;
	int64_t limit = a->mx != NULL ? a->mx->max_concurrency_limit : -1;

	if (a->http != 0 && a->rc != -EACCES)
		c->answers++; /* Exchange, not IIS's 401, answered */
	if (a->rc == -EAGAIN) {
		t->other++;
		what = "HTTP 503";
		back = CHECK_DEFAULT_BACK_OFF_MS;
	} else if (check_is_code(a, "ErrorServerBusy")) {
		int64_t ms = a->mx != NULL ? a->mx->back_off_ms : -1;

		t->server_busy++;
		if (ms > t->max_back_off_ms)
			t->max_back_off_ms = ms;
		what = "ErrorServerBusy";
		back = ms < 0 ? CHECK_DEFAULT_BACK_OFF_MS : ms;
	} else if (check_is_code(a, "ErrorExceededConnectionCount")) {
		if (check_str_is(op, "GetStreamingEvents")) {
			t->hanging++;
			if (limit >= 0)
				t->hanging_limit = limit;
			what = "ErrorExceededConnectionCount (HangingConnectionLimit)";
		} else {
			t->concurrency++;
			if (limit >= 0)
				t->concurrency_limit = limit;
			what = "ErrorExceededConnectionCount (EWSMaxConcurrency)";
			back = CHECK_DEFAULT_BACK_OFF_MS;
		}
	} else if (check_is_code(a, "ErrorExceededSubscriptionCount")) {
		t->subscriptions++;
		what = "ErrorExceededSubscriptionCount (EWSMaxSubscriptions)";
	} else if (check_is_code(a, "ErrorTooManyObjectsOpened")) {
		t->other++;
		what = "ErrorTooManyObjectsOpened";
		back = CHECK_DEFAULT_BACK_OFF_MS;
	} else if (limit >= 0) {
		t->concurrency++;
		t->concurrency_limit = limit;
		what = "MaxConcurrencyLimit";
	}
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
