/* SPDX-License-Identifier: MIT */
/*
 * check-mailbox.c: the mailbox steps: autodiscover (GetUserSettings for the sample mailboxes,
 * each one's EWS URL), impersonation (the CalendarView read calsync run makes, impersonating
 * the mailbox) and subscription (Subscribe, GetStreamingEvents or GetEvents, Unsubscribe).
 */
#include "cli/check-int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "base/iso8601.h"
#include "base/xalloc.h"
#include "config/config.h"

/* Pull subscriptions made by the check are unsubscribed at once; should that fail, they expire
 * after this many minutes without a GetEvents. */
#define CHECK_PULL_TIMEOUT_MIN 10u

/* Mailboxes per Autodiscover GetUserSettings (the request's own maximum). */
#define CHECK_AUTODISCOVER_BATCH 100u

/* SOAPAction of Autodiscover's GetUserSettings (WCF dispatches on it). */
#define GUS_ACTION \
	"http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings"

/* ---- Autodiscover ---------------------------------------------------------------------------- */

/* A GetUserSettings answer that gives no URL at all: adds the failing step and returns true. */
static bool ad_refused(struct check *c, const char *ad_url, const struct answer *a)
{
	struct fix f = {0};
	char *why = NULL;

	if (!a->answered) {
		if (ews_verdict_is_auth(&a->v) && a->v.http_status == 401 &&
		    check_ntlm_over_tls(c, ad_url))
			why = check_explain_ntlm_401(c, ad_url, a->v.http_status, ROLE_AUTODISCOVER,
			                             &f);
		else if (ews_verdict_is_auth(&a->v))
			check_fix_auth(c, &f, a->v.http_status, ROLE_AUTODISCOVER);
		check_step_add(c, "autodiscover", NULL, ST_FAIL, &f, "GetUserSettings: %s%s",
		               why != NULL ? why : a->why, a->retried);
		free(why);
		return true;
	}
	if (a->v.cls != EWS_ERR_NONE) {
		check_step_add(c, "autodiscover", NULL, ST_FAIL, NULL,
		               "GetUserSettings: Autodiscover answered %s%s",
		               a->v.origin == EWS_VERDICT_AUTODISCOVER ? a->v.code : a->v.msg,
		               a->retried);
		return true;
	}
	return false;
}

/* The URLs of one batch's users (names[i] is c->mbx[at + i], or the service account as self);
 * first_url gets the first one found. Returns how many mailboxes got one. */
static size_t ad_users(struct check *c, const char *const *names, size_t n, size_t at,
                       const char *self, const struct answer *a, char first_url[256])
{
	size_t n_ok = 0;

	for (size_t i = 0; i < n; i++) {
		const struct ews_user_settings *us = NULL;
		const char *url;

		/* UserResponses come in the order of the request's Users. */
		if (a->resp.n_users == n)
			us = &a->resp.users[i];
		for (size_t k = 0; us == NULL && k < a->resp.n_users; k++)
			if (a->resp.users[k].mailbox != NULL &&
			    strcasecmp(a->resp.users[k].mailbox, names[i]) == 0)
				us = &a->resp.users[k];
		url = us == NULL                     ? NULL
		      : us->internal_ews_url != NULL ? us->internal_ews_url
		                                     : us->external_ews_url;
		if (us != NULL && us->error_code != NULL && strcmp(us->error_code, "NoError") != 0)
			url = NULL;
		if (url != NULL && first_url[0] == '\0')
			(void)snprintf(first_url, 256, "%s", url);
		if (self != NULL)
			continue;
		if (us != NULL && check_str_is(us->error_code, "RedirectAddress") &&
		    us->redirect_target != NULL && check_is_cloud_address(us->redirect_target))
			c->mbx[at + i].cloud = xstrdup(us->redirect_target);
		if (url != NULL) {
			c->mbx[at + i].url = xstrdup(url);
			n_ok++;
		} else {
			c->mbx[at + i].ad_error = check_strf(
				"%s%s%s",
				us != NULL && us->error_code ? us->error_code : "no EWS URL",
				us != NULL && us->error_message ? ": " : "",
				us != NULL && us->error_message ? us->error_message : "");
		}
	}
	return n_ok;
}

bool check_autodiscover(struct check *c, const char *ad_url)
{
	const char *names[CHECK_AUTODISCOVER_BATCH];
	const char *self = NULL;
	size_t n_ok = 0;
	size_t n_cloud = 0;
	char cloud[64] = "";
	char first_url[256] = "";
	struct err err = {0};

	if (c->n_mbx == 0 && c->cfg->user != NULL && strchr(c->cfg->user, '@') != NULL)
		self = c->cfg->user; /* the service account has a mailbox (PRODUCT.md) */
	if (c->n_mbx == 0 && self == NULL) {
		struct fix f = {0};

		check_fix_say(&f, "Give a mailbox to look up (--mailbox SMTP), list mailboxes in "
		                  "<mailboxes>, or configure <ews url=\"...\">.");
		check_step_add(c, "autodiscover", NULL, ST_FAIL, &f,
		               "no mailbox to ask Autodiscover about");
		return false;
	}
	for (size_t at = 0; at < (self != NULL ? 1 : c->n_mbx); at += CHECK_AUTODISCOVER_BATCH) {
		size_t n = self != NULL ? 1 : c->n_mbx - at;
		struct ews_call_opts o = {.url = ad_url, .soap_action = GUS_ACTION};
		struct answer a;

		if (n > CHECK_AUTODISCOVER_BATCH)
			n = CHECK_AUTODISCOVER_BATCH;
		for (size_t i = 0; i < n; i++)
			names[i] = self != NULL ? self : c->mbx[at + i].smtp;
		if (ews_req_get_user_settings(names, n, ad_url, NULL, &c->req, &err) < 0) {
			check_step_add(c, "autodiscover", NULL, ST_FAIL, NULL, "%s", err.msg);
			return false;
		}
		check_call(c, "GetUserSettings", NULL, &o, &a);
		if (ad_refused(c, ad_url, &a)) {
			check_answer_clear(&a);
			return false;
		}
		n_ok += ad_users(c, names, n, at, self, &a, first_url);
		check_answer_clear(&a);
	}
	for (size_t i = 0; i < c->n_mbx; i++)
		n_cloud += c->mbx[i].cloud != NULL;
	if (first_url[0] == '\0' && n_cloud == c->n_mbx && n_cloud > 0 && c->cfg->graph != NULL) {
		struct fix f = {0};

		check_fix_say(&f, "To check EWS too, name an on-premises mailbox with --mailbox.");
		check_step_add(c, "autodiscover", NULL, ST_WARN, &f,
		               "every sample mailbox is in Exchange Online (RedirectAddress): no "
		               "EWS URL to check EWS with; Microsoft Graph serves them");
		return false;
	}
	if (first_url[0] == '\0') {
		struct fix f = {0};

		check_fix_say(&f,
		              "Check the mailboxes' addresses, or configure <ews url=\"...\">:");
		check_fix_cmd(&f,
		              "Get-ClientAccessService | fl Name,AutoDiscoverServiceInternalUri");
		check_step_add(c, "autodiscover", NULL, ST_FAIL, &f, "%s gave no EWS URL for %s",
		               ad_url,
		               self != NULL    ? self
		               : c->n_mbx == 1 ? c->mbx[0].smtp
		                               : "any sample mailbox");
		return false;
	}
	c->ews_url = xstrdup(first_url);
	if (n_cloud > 0)
		(void)snprintf(cloud, sizeof(cloud), "; %zu in Exchange Online (RedirectAddress)",
		               n_cloud);
	if (self != NULL)
		check_step_add(c, "autodiscover", NULL, ST_OK, NULL,
		               "EWS URL %s (for the service account)", first_url);
	else
		check_step_add(c, "autodiscover", NULL, ST_OK, NULL,
		               "EWS URL %s for %zu of %zu mailbox%s%s", first_url, n_ok, c->n_mbx,
		               c->n_mbx == 1 ? "" : "es", cloud);
	return true;
}

/* ---- per mailbox ----------------------------------------------------------------------------- */

static void check_impersonation(struct check *c, const struct mbx *m, bool *out_ok)
{
	struct ews_header h = check_header(c, m->smtp, true);
	struct ews_call_opts o = {.url = m->url, .anchor_mailbox = m->smtp};
	int64_t now = clock_now_utc();
	int64_t midnight = now - ((now % DAY_SEC) + DAY_SEC) % DAY_SEC;
	struct ews_find_calendar fc = {
		.start_utc = midnight - c->cfg->window_past_days * DAY_SEC,
		.end_utc = now + c->cfg->window_ahead_days * DAY_SEC,
	};
	char from[ISO8601_FORMAT_SIZE] = "";
	char to[ISO8601_FORMAT_SIZE] = "";
	struct answer a;
	struct err err = {0};

	*out_ok = false;
	if (ews_req_find_calendar(&h, &fc, &c->req, &err) < 0) {
		check_step_add(c, "impersonation", m->smtp, ST_FAIL, NULL, "%s", err.msg);
		return;
	}
	check_call(c, "FindItem", m->smtp, &o, &a);
	if (!check_answer_ok(&a)) {
		check_step_error(c, "impersonation", m->smtp, "FindItem", &a);
		check_answer_clear(&a);
		return;
	}
	(void)iso8601_format(fc.start_utc, from, NULL);
	(void)iso8601_format(fc.end_utc, to, NULL);
	check_step_add(c, "impersonation", m->smtp, ST_OK, NULL,
	               "CalendarView read %zu appointment%s from %.10s to %.10s%s", a.msg->n_items,
	               a.msg->n_items == 1 ? "" : "s", from, to, a.retried);
	*out_ok = true;
	check_answer_clear(&a);
}

/* The call between Subscribe and Unsubscribe: GetStreamingEvents until its first envelope
 * (*first_ms: how long it took), or one GetEvents from the watermark wm. */
static void sub_middle(struct check *c, const struct mbx *m, const struct ews_header *h,
                       const struct ews_call_opts *o, const char *id, const char *wm,
                       struct answer *mid, int64_t *first_ms)
{
	struct err err = {0};

	if (c->cfg->notify == CFG_NOTIFY_STREAM) {
		const char *ids[1] = {id};

		if (ews_req_get_streaming_events(h, ids, 1, 1, &c->req, &err) == 0)
			check_stream_first(c, m, o, mid, first_ms);
		else
			check_answer_fail(mid, err.code, 0, err.msg);
	} else if (wm != NULL && ews_req_get_events(h, id, wm, &c->req, &err) == 0) {
		check_call(c, "GetEvents", m->smtp, o, mid);
	} else {
		check_answer_fail(mid, -EPROTO, 0,
		                  wm == NULL ? "Subscribe gave no watermark" : err.msg);
	}
}

/* The subscription step from the middle call's answer and Unsubscribe's. */
static void sub_report(struct check *c, const struct mbx *m, const struct answer *mid,
                       const struct answer *un, int64_t first_ms, bool cookie)
{
	bool streaming = c->cfg->notify == CFG_NOTIFY_STREAM;
	char middle[200] = "";
	struct fix f = {0};

	if (!check_answer_ok(mid)) {
		const char *op = streaming ? "GetStreamingEvents" : "GetEvents";

		if (streaming && !mid->answered && mid->v.rc == -ETIMEDOUT) {
			check_fix_say(
				&f,
				"Exchange sends the first envelope of a stream at once. A proxy, "
				"load balancer or TLS inspection between calsync and Exchange that "
				"buffers answers holds it back: let /EWS/Exchange.asmx pass unbuffered, "
				"or use <advise Object=\"EwsPull\">.");
			check_step_add(c, "subscription", m->smtp, ST_FAIL, &f,
			               "GetStreamingEvents: no envelope within %" PRId64 " s: %s",
			               CHECK_STREAM_IDLE_USEC / USEC_PER_SEC, mid->why);
		} else {
			check_step_error(c, "subscription", m->smtp, op, mid);
		}
	} else if (!check_answer_ok(un)) {
		if (streaming)
			check_fix_say(&f,
			              "No action needed: Exchange drops a streaming subscription "
			              "without a connection on its own (after about 30 minutes).");
		else
			check_fix_say(
				&f,
				"No action needed: the pull subscription expires on its own after "
				"%u minutes.",
				CHECK_PULL_TIMEOUT_MIN);
		check_step_add(c, "subscription", m->smtp, ST_WARN, &f,
		               "Subscribe and %s worked, but Unsubscribe failed: %s",
		               streaming ? "GetStreamingEvents" : "GetEvents", un->why);
	} else {
		if (streaming)
			(void)snprintf(middle, sizeof(middle),
			               "GetStreamingEvents (first envelope after %" PRId64 " ms)",
			               first_ms);
		else
			(void)snprintf(middle, sizeof(middle), "GetEvents");
		check_step_add(c, "subscription", m->smtp, ST_OK, NULL,
		               "%s subscription: Subscribe, %s, Unsubscribe%s",
		               streaming ? "streaming" : "pull", middle,
		               cookie ? " (with the affinity cookie Subscribe set)" : "");
	}
}

/* Subscribe, the middle call, Unsubscribe (whatever happened in between). */
static void check_subscription(struct check *c, const struct mbx *m)
{
	bool streaming = c->cfg->notify == CFG_NOTIFY_STREAM;
	struct ews_header h = check_header(c, m->smtp, false);
	struct ews_subscribe s = {.streaming = streaming,
	                          .timeout_min = streaming ? 0 : CHECK_PULL_TIMEOUT_MIN};
	struct ews_call_opts o = {
		.url = m->url, .anchor_mailbox = m->smtp, .prefer_affinity = true};
	struct answer a;
	struct answer mid = {0};
	struct answer un = {0};
	struct err err = {0};
	char *id = NULL;
	char *wm = NULL;
	char *cookie = NULL;
	int64_t first_ms = -1;

	if (ews_req_subscribe(&h, &s, &c->req, &err) < 0) {
		check_step_add(c, "subscription", m->smtp, ST_FAIL, NULL, "%s", err.msg);
		return;
	}
	check_call(c, "Subscribe", m->smtp, &o, &a);
	if (!check_answer_ok(&a) || a.msg->subscription_id == NULL) {
		if (check_answer_ok(&a))
			check_step_add(c, "subscription", m->smtp, ST_FAIL, NULL,
			               "Subscribe (%s): NoError without a SubscriptionId",
			               streaming ? "streaming" : "pull");
		else
			check_step_error(c, "subscription", m->smtp,
			                 streaming ? "Subscribe (streaming)" : "Subscribe (pull)",
			                 &a);
		check_answer_clear(&a);
		return;
	}
	id = xstrdup(a.msg->subscription_id);
	wm = a.msg->watermark != NULL ? xstrdup(a.msg->watermark) : NULL;
	cookie = a.cookie != NULL ? xstrdup(a.cookie) : NULL;
	check_answer_clear(&a);
	/* The rest goes to the mailbox server that holds the subscription (EWS-REFERENCE 4.4). */
	o.backend_cookie = cookie;
	sub_middle(c, m, &h, &o, id, wm, &mid, &first_ms);
	if (ews_req_unsubscribe(&h, id, &c->req, &err) == 0)
		check_call(c, "Unsubscribe", m->smtp, &o, &un);
	else
		check_answer_fail(&un, err.code, 0, err.msg);
	sub_report(c, m, &mid, &un, first_ms, cookie != NULL);
	check_answer_clear(&mid);
	check_answer_clear(&un);
	free(id);
	free(wm);
	free(cookie);
}

/* Autodiscover says m moved to Exchange Online: Graph's, if calsync has <graph>. */
static void in_the_cloud(struct check *c, const struct mbx *m)
{
	struct fix f = {0};

	if (c->cfg->graph != NULL) {
		check_step_add(c, "impersonation", m->smtp, ST_SKIP, NULL,
		               "not run: in Exchange Online (Autodiscover: RedirectAddress %s): "
		               "Microsoft Graph serves it (graph-mailbox below)",
		               m->cloud);
		check_step_add(c, "subscription", m->smtp, ST_SKIP, NULL,
		               "not run: served by Microsoft Graph");
		return;
	}
	check_fix_say(&f, "calsync serves mailboxes in Exchange Online through Microsoft Graph: "
	                  "register an application in Entra ID and configure <graph> "
	                  "(docs/graph.md).");
	check_step_add(c, "impersonation", m->smtp, ST_FAIL, &f,
	               "in Exchange Online (Autodiscover: RedirectAddress %s), and the "
	               "configuration has no <graph>: calsync cannot serve it",
	               m->cloud);
	check_step_add(c, "subscription", m->smtp, ST_SKIP, NULL,
	               "not run: the calendar cannot be read");
}

void check_mailboxes(struct check *c)
{
	if (c->n_mbx == 0) {
		struct fix f = {0};

		check_fix_say(
			&f, "Give one with --mailbox SMTP, or list the mailboxes in <mailboxes>.");
		check_step_add(c, "impersonation", NULL, ST_WARN, &f,
		               "no mailbox to test impersonation with");
		check_skip(c, "subscription", "no mailbox");
		return;
	}
	for (size_t i = 0; i < c->n_mbx; i++) {
		struct mbx *m = &c->mbx[i];
		bool ok = false;

		check_progress(c, i, m->smtp);
		if (m->url == NULL && m->cloud != NULL) {
			in_the_cloud(c, m);
			check_progress(c, i + 1, NULL);
			continue;
		}
		if (m->url == NULL) {
			struct fix f = {0};

			check_fix_mailbox(c, &f, m->smtp);
			check_step_add(c, "impersonation", m->smtp, ST_FAIL, &f,
			               "Autodiscover found no EWS URL: %s",
			               m->ad_error != NULL ? m->ad_error : "no answer");
		} else {
			check_impersonation(c, m, &ok);
		}
		if (ok)
			check_subscription(c, m);
		else
			check_step_add(c, "subscription", m->smtp, ST_SKIP, NULL,
			               "not run: the calendar cannot be read");
		check_progress(c, i + 1, NULL);
	}
}
