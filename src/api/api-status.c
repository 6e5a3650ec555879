/* SPDX-License-Identifier: MIT */
/* api-status.c: GET /v1/status, the overview `calsync status` prints. */
#include "api/api-status.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api-int.h"
#include "api/api-json.h"
#include "api/api-metrics.h"
#include "base/err.h"
#include "base/log.h"
#include "base/url.h"
#include "base/xalloc.h"
#include "store/store.h"
#include "sync/engine.h"
#include "webhook/webhook.h"

/* Bytes of a well-formed UTF-8 sequence at s (len bytes left), or 0. Overlong forms and
 * surrogates pass here; jansson's own check catches those, and then text() gives ASCII. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
	size_t n;

	if (s[0] < 0x80)
		n = 1;
	else if (s[0] >= 0xc2 && s[0] < 0xe0)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] < 0xf0)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] < 0xf5)
		n = 4;
	else
		return 0;
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	}
	return n;
}

/* A string for any bytes: the engine's messages are cut to fit and quote what servers sent, so
 * they need not be UTF-8. Bad bytes become '?'. NULL stays NULL (null). */
static json_t *text(const char *s)
{
	size_t len, o = 0;
	char *copy;
	json_t *j;

	if (s == NULL)
		return json_null();
	j = json_string(s);
	if (j != NULL)
		return j;
	len = strlen(s);
	copy = xmalloc(len + 1);
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq((const unsigned char *)s + i, len - i);

		if (n == 0) {
			copy[o++] = '?';
			i++;
		} else {
			memcpy(copy + o, s + i, n);
			o += n;
			i += n;
		}
	}
	copy[o] = '\0';
	j = json_string(copy);
	if (j == NULL) {
		for (size_t i = 0; i < o; i++) {
			if ((unsigned char)copy[i] >= 0x80)
				copy[i] = '?';
		}
		j = json_string(copy);
	}
	free(copy);
	return j != NULL ? j : json_null();
}

static int by_smtp(const void *x, const void *y)
{
	const struct store_mailbox *const *a = x, *const *b = y;

	return strcasecmp((*a)->smtp, (*b)->smtp);
}

/* {"total", "live", "syncing", "parked", "unresolved"} of n mailboxes with these state counts. */
static json_t *counts_json(size_t n, const size_t *count)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I}", "total", (json_int_t)n, "live",
	                 (json_int_t)count[STORE_MB_LIVE], "syncing",
	                 (json_int_t)count[STORE_MB_SYNCING], "parked",
	                 (json_int_t)count[STORE_MB_PARKED], "unresolved",
	                 (json_int_t)count[STORE_MB_UNRESOLVED]);
}

static json_t *mailboxes_json(const struct api_status_in *in, json_t **out_parked)
{
	size_t count[API_MB_STATES] = {0};
	const struct store_mailbox **parked = xcalloc(in->n_mbs + 1, sizeof(*parked));
	size_t n_parked = 0;
	json_t *list = json_array();

	for (size_t i = 0; i < in->n_mbs; i++) {
		const struct store_mailbox *mb = &in->mbs[i];

		if ((unsigned)mb->state < API_MB_STATES)
			count[mb->state]++;
		if (mb->state == STORE_MB_PARKED)
			parked[n_parked++] = mb;
	}
	if (n_parked > 1)
		qsort(parked, n_parked, sizeof(*parked), by_smtp);
	for (size_t i = 0; i < n_parked && i < API_STATUS_MAX_PARKED; i++)
		json_array_append_new(list, json_pack("{s:o, s:s, s:o}", "smtp",
		                                      text(parked[i]->smtp), "backend",
		                                      api_backend_name(api_backend_of(parked[i])),
		                                      "reason", text(parked[i]->parked_reason)));
	free(parked);
	*out_parked = list;
	return counts_json(in->n_mbs, count);
}

/* {"ews": {...}, "graph": {...}}, each with the keys of "mailboxes". */
static json_t *backends_json(const struct api_backend_counts *bc)
{
	json_t *o = json_object();

	for (int b = 0; b < API_BACKEND_COUNT; b++)
		json_object_set_new(o, api_backend_name((enum api_backend)b),
		                    counts_json(bc->total[b], bc->state[b]));
	return o;
}

static json_t *graph_json(const struct sync_stats *s)
{
	return json_pack("{s:I, s:I, s:{s:I, s:I}, s:{s:I, s:I}}", "requests",
	                 (json_int_t)s->graph_requests, "throttled", (json_int_t)s->graph_throttled,
	                 "notifications", "accepted", (json_int_t)s->graph_notifications,
	                 "rejected", (json_int_t)s->graph_bad_notifications, "token_refreshes",
	                 "ok", (json_int_t)s->token_refreshes_ok, "failed",
	                 (json_int_t)s->token_refreshes_failed);
}

static json_t *groups_json(const struct sync_status *st)
{
	json_t *list = json_array();

	for (size_t i = 0; i < st->n_groups; i++) {
		const struct sync_group_info *g = &st->groups[i];

		json_array_append_new(list,
		                      json_pack("{s:o, s:o, s:I, s:I, s:b, s:I}", "key",
		                                text(g->key), "anchor", text(g->anchor), "members",
		                                (json_int_t)g->members, "subscribed",
		                                (json_int_t)g->subscribed, "connected",
		                                g->connected, "failures", (json_int_t)g->failures));
	}
	return list;
}

static json_t *errors_json(const struct sync_status *st)
{
	json_t *list = json_array();

	for (size_t i = 0; i < st->n_errors && i < SYNC_STATUS_ERRORS; i++) {
		const struct sync_error_info *e = &st->errors[i];

		json_array_append_new(
			list,
			json_pack("{s:o, s:o, s:o, s:o}", "time", api_json_time(e->time_utc),
		                  "mailbox", e->mailbox[0] != '\0' ? text(e->mailbox) : json_null(),
		                  "what", text(e->what), "message", text(e->message)));
	}
	return list;
}

static json_t *webhooks_json(const struct webhook_stats *w)
{
	json_t *list = json_array();

	for (size_t i = 0; w != NULL && i < w->n && i < WEBHOOK_MAX_TARGETS; i++) {
		const struct webhook_target_stats *t = &w->targets[i];
		char url[API_MAX_URL_LABEL];

		url_redact(t->url != NULL ? t->url : "", url, sizeof(url));
		json_array_append_new(list, json_pack("{s:o, s:I, s:I, s:I, s:I}", "url", text(url),
		                                      "delivered", (json_int_t)t->delivered,
		                                      "failures", (json_int_t)t->failures,
		                                      "dropped", (json_int_t)t->dropped, "pending",
		                                      (json_int_t)t->pending));
	}
	return list;
}

json_t *api_status_json(const struct api_status_in *in)
{
	const struct sync_stats *s = &in->engine->stats;
	json_t *parked = NULL;
	json_t *counts = mailboxes_json(in, &parked);
	struct api_backend_counts bc;
	json_t *doc;

	doc = json_pack("{s:o, s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:o}", "mailboxes", counts,
	                "parked", parked, "groups", groups_json(in->engine), "errors",
	                errors_json(in->engine), "streams_open", (json_int_t)s->streams_open,
	                "in_flight", (json_int_t)s->in_flight, "queued", (json_int_t)s->queued,
	                "backing_off", (json_int_t)s->backing_off, "presence_changes",
	                (json_int_t)s->presence_changes, "webhooks", webhooks_json(in->webhooks));
	if (doc == NULL)
		return NULL;
	/* Only a hybrid calsync has more than one backend to tell apart: an on-premises one's
	 * document stays as it was. */
	api_backend_count(in->mbs, in->n_mbs, &bc);
	if (in->graph || bc.total[API_BACKEND_GRAPH] > 0)
		json_object_set_new(doc, "backends", backends_json(&bc));
	if (in->graph)
		json_object_set_new(doc, "graph", graph_json(s));
	return doc;
}

enum MHD_Result api_status(struct api *a, struct MHD_Connection *c)
{
	struct sync_status st;
	struct webhook_stats ws;
	struct store_mailbox *mbs = NULL;
	struct err err = {0};
	size_t n = 0;
	json_t *doc;
	int rc;

	rc = store_mailbox_list(api_store_lock(a), STORE_MB_ENABLED, &mbs, &n, &err);
	api_store_unlock(a);
	if (rc < 0) {
		log_warn("api: store read failed: %s", err.msg);
		return api_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "store: %s", err.msg);
	}
	sync_engine_status(a->engine, &st);
	if (a->webhook != NULL)
		webhook_stats(a->webhook, &ws);
	doc = api_status_json(&(struct api_status_in){
		.mbs = mbs,
		.n_mbs = n,
		.engine = &st,
		.webhooks = a->webhook != NULL ? &ws : NULL,
		.graph = a->graph,
	});
	sync_status_clear(&st);
	store_mailboxes_free(mbs, n);
	return api_reply_json(c, MHD_HTTP_OK, doc, NULL, NULL);
}
