/* SPDX-License-Identifier: MIT */
/*
 * discover.c: Autodiscover: GetUserSettings for a batch of mailboxes and its answer.
 */
#include "sync/engine-int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* ---- Autodiscover ------------------------------------------------------------------- */

static void discover_unlink(struct discover *d)
{
	for (struct discover **pp = &d->e->discovers; *pp; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			return;
		}
	}
}

static void on_discover_done(void *ctx, struct ews_call *call, const struct ews_result *r)
{
	struct discover *d = ctx;
	struct sync_engine *e = d->e;
	struct ews_response resp = {0};
	struct verdict v;

	e->in_flight--;
	e->account_in_flight--;
	discover_unlink(d);
	classify(r, &resp, &v);
	count_op(e, SYNC_OP_GET_USER_SETTINGS, v.cls == EWS_ERR_NONE, r->elapsed_usec);
	if (v.cls == EWS_ERR_NONE && resp.autodiscover_error &&
	    strcmp(resp.autodiscover_error, "NoError") != 0) {
		v.cls = EWS_ERR_TRANSIENT;
		snprintf(v.msg, sizeof(v.msg), "Autodiscover: %s", resp.autodiscover_error);
	}
	for (size_t i = 0; i < d->n; i++) {
		struct mb *mb = d->mbs[i];
		const struct ews_user_settings *u = NULL;

		mb->action = ACT_NONE;
		mb->call = NULL;
		if (mb->removed || e->stopping) {
			/* Removed or stopping while Autodiscover ran: only an unsubscribe is left. */
			if (mb->needs & NEED_UNSUBSCRIBE)
				mb_kick(mb);
			else if (mb->removed)
				mb_destroy(mb);
			continue;
		}
		/* UserResponses come in the order of the request's Users and name no mailbox. */
		if (v.cls == EWS_ERR_NONE && resp.n_users == d->n)
			u = &resp.users[i];
		for (size_t k = 0; v.cls == EWS_ERR_NONE && u == NULL && k < resp.n_users; k++)
			if (resp.users[k].mailbox &&
			    strcasecmp(resp.users[k].mailbox, mb->smtp) == 0)
				u = &resp.users[k];
		if (v.cls != EWS_ERR_NONE) {
			mb_failed(mb, ACT_DISCOVER, &v);
		} else if (u == NULL || (u->error_code && strcmp(u->error_code, "NoError") != 0) ||
		           (u->internal_ews_url == NULL && u->external_ews_url == NULL)) {
			struct verdict pv = {.cls = EWS_ERR_MAILBOX_PERMANENT, .back_off_ms = -1};

			snprintf(pv.msg, sizeof(pv.msg), "Autodiscover: %s%s%s",
			         u && u->error_code ? u->error_code : "no EWS URL",
			         u && u->error_message ? ": " : "",
			         u && u->error_message ? u->error_message : "");
			mb_failed(mb, ACT_DISCOVER, &pv);
			mb->needs |= NEED_DISCOVER;
		} else {
			struct err err = {0};
			const char *url =
				u->internal_ews_url ? u->internal_ews_url : u->external_ews_url;

			mb_succeeded(mb);
			mb->needs &= ~NEED_DISCOVER;
			replace_str(&mb->ews_url, url);
			replace_str(&mb->grouping, u->grouping_information);
			if (store_mailbox_set_endpoint(e->store, mb->smtp, url,
			                               u->grouping_information, &err) < 0)
				log_err("store: %s: %s", mb->smtp, err.msg);
			if (!(mb->needs & NEED_SUBSCRIBE) && mb->sub_id == NULL)
				mb->needs |= NEED_SUBSCRIBE;
		}
		mb_kick(mb);
	}
	ews_response_clear(&resp);
	free(d->mbs);
	free(d);
	dispatch(e);
}

/* One GetUserSettings for first and up to SYNC_DISCOVER_BATCH - 1 more queued mailboxes that
 * also need Autodiscover. */
int start_discover(struct sync_engine *e, struct mb *first, struct err *err)
{
	struct discover *d = xcalloc(1, sizeof(*d));
	const char *names[SYNC_DISCOVER_BATCH];
	struct ews_call_opts o = {0};
	char *url;
	int rc;

	d->e = e;
	d->mbs = xcalloc(SYNC_DISCOVER_BATCH, sizeof(*d->mbs));
	d->mbs[d->n++] = first;
	/* Take more mailboxes that need Autodiscover from the bulk queue. */
	for (struct mb **pp = &e->q_head[Q_BULK]; *pp && d->n < SYNC_DISCOVER_BATCH;) {
		struct mb *mb = *pp;

		if ((mb->needs & NEED_DISCOVER) && !(mb->needs & NEED_UNSUBSCRIBE)) {
			*pp = mb->q_next;
			if (e->q_tail[Q_BULK] == mb) {
				e->q_tail[Q_BULK] = NULL;
				for (struct mb *t = e->q_head[Q_BULK]; t; t = t->q_next)
					e->q_tail[Q_BULK] = t;
			}
			mb->queued = false;
			mb->q_next = NULL;
			mb->action = ACT_DISCOVER;
			d->mbs[d->n++] = mb;
		} else {
			pp = &mb->q_next;
		}
	}
	for (size_t i = 0; i < d->n; i++)
		names[i] = d->mbs[i]->smtp;
	url = cfg_autodiscover_url(e->cfg, first->smtp);
	rc = ews_req_get_user_settings(names, d->n, url, NULL, &e->req, err);
	if (rc == 0) {
		o.url = url;
		rc = ews_transport_post(e->transport, &o, e->req.data, e->req.len, on_discover_done,
		                        d, NULL, err);
	}
	free(url);
	if (rc < 0) {
		for (size_t i = 1; i < d->n; i++) {
			d->mbs[i]->action = ACT_NONE;
			d->mbs[i]->not_before_usec = clock_now_usec() + backoff_usec(e, 1);
			mb_kick(d->mbs[i]);
		}
		free(d->mbs);
		free(d);
		return rc;
	}
	d->next = e->discovers;
	e->discovers = d;
	e->in_flight++;
	e->account_in_flight++;
	e->stats.requests++;
	return 0;
}
