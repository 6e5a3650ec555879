/* SPDX-License-Identifier: MIT */
/*
 * discover.c: the EWS backend's discover (backend.h): one Autodiscover GetUserSettings for a
 * batch of mailboxes, as the service account, and each mailbox's home from its answer (the EWS
 * URL, internal first, and GroupingInformation).
 */
#include "sync/ews-backend-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xalloc.h"
#include "config/config.h"

/* A GetUserSettings in flight. */
struct discover {
	struct sync_backend *b;
	struct mb **mbs;
	size_t n;
	struct list_node link; /* in b->discovers */
};

/* The answer for mailbox i of d: UserResponses come in the order of the request's Users and name
 * no mailbox, so by position when the counts agree, else by the mailbox they name. */
static const struct ews_user_settings *user_of(const struct discover *d,
                                               const struct ews_response *resp, size_t i)
{
	if (resp->n_users == d->n)
		return &resp->users[i];
	for (size_t k = 0; k < resp->n_users; k++)
		if (resp->users[k].mailbox &&
		    strcasecmp(resp->users[k].mailbox, d->mbs[i]->smtp) == 0)
			return &resp->users[k];
	return NULL;
}

/* Mailbox i's home, or why it has none (the mailbox is parked). A mailbox moved to Exchange
 * Online is a mail user on premises: Autodiscover answers RedirectAddress with its cloud
 * address, and the mailbox is Graph's. */
static void home_of(const struct discover *d, const struct ews_response *resp, size_t i,
                    struct sync_home *h)
{
	const struct ews_user_settings *u = user_of(d, resp, i);

	if (u != NULL && u->error_code != NULL && strcmp(u->error_code, "RedirectAddress") == 0 &&
	    u->redirect_target != NULL && cfg_is_cloud_address(u->redirect_target)) {
		h->backend = "graph";
		(void)snprintf(h->res.msg, sizeof(h->res.msg),
		               "Autodiscover: moved to Exchange Online (RedirectAddress %.200s)",
		               u->redirect_target);
		return;
	}
	if (u == NULL || (u->error_code && strcmp(u->error_code, "NoError") != 0) ||
	    (u->internal_ews_url == NULL && u->external_ews_url == NULL)) {
		h->res.verdict = SYNC_MAILBOX_PERMANENT;
		h->res.back_off_ms = -1;
		snprintf(h->res.msg, sizeof(h->res.msg), "Autodiscover: %s%s%s",
		         u && u->error_code ? u->error_code : "no EWS URL",
		         u && u->error_message ? ": " : "",
		         u && u->error_message ? u->error_message : "");
		return;
	}
	h->url = u->internal_ews_url ? u->internal_ews_url : u->external_ews_url;
	h->grouping = u->grouping_information;
}

static void on_discover_done(void *ctx, struct ews_call *call, const struct ews_result *r)
{
	struct discover *d = ctx;
	struct sync_engine *e = d->b->e;
	struct ews_response resp;
	struct ews_verdict v;
	struct sync_result res;
	struct sync_home *homes = xcalloc(d->n, sizeof(*homes));

	list_unlink(&d->link);
	/* retry_after: struct ews_result does not carry the Retry-After header yet. */
	ews_verdict_of_result(r, NULL, &resp, &v);
	/* A request-level Autodiscover ErrorCode still counts as an answered request. */
	sync_count_op(e, SYNC_OP_GET_USER_SETTINGS,
	              v.cls == EWS_ERR_NONE || v.origin == EWS_VERDICT_AUTODISCOVER,
	              r->elapsed_usec);
	sync_ews_result(e, &v, &res);
	if (res.verdict == SYNC_OK)
		for (size_t i = 0; i < d->n; i++)
			home_of(d, &resp, i, &homes[i]);
	sync_discovered(e, d->mbs, d->n, &res, homes);
	free(homes);
	ews_response_clear(&resp);
	free(d->mbs);
	free(d);
}

int sync_ews_discover(struct sync_backend *b, struct mb *const *mbs, size_t n, struct err *err)
{
	struct discover *d = xcalloc(1, sizeof(*d));
	const char *names[SYNC_DISCOVER_BATCH];
	struct ews_call_opts o = {0};
	char *url;
	int rc;

	d->b = b;
	d->mbs = xcalloc(SYNC_DISCOVER_BATCH, sizeof(*d->mbs));
	for (size_t i = 0; i < n && i < SYNC_DISCOVER_BATCH; i++) {
		d->mbs[d->n++] = mbs[i];
		names[i] = mbs[i]->smtp;
	}
	url = cfg_autodiscover_url(b->e->cfg, mbs[0]->smtp);
	rc = ews_req_get_user_settings(names, d->n, url, NULL, &b->req, err);
	if (rc == 0) {
		o.url = url;
		rc = sync_ews_call(b, &o, b->req.data, b->req.len, on_discover_done, d, NULL, err);
	}
	free(url);
	if (rc < 0) {
		free(d->mbs);
		free(d);
		return rc;
	}
	list_push(&b->discovers, &d->link);
	return 0;
}

void sync_ews_discovers_free(struct sync_backend *b)
{
	for (struct list_node *n; (n = list_pop(&b->discovers)) != NULL;) {
		struct discover *d = container_of(n, struct discover, link);

		free(d->mbs);
		free(d);
	}
}
