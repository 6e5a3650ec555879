/* SPDX-License-Identifier: MIT */
/*
 * api-users.c: /v1/users and /v1/users/{smtp}[/presence|/agenda|/resync]. Reads go to the API's
 * store; adding, removing and resyncing go to the loop through sync_engine_command().
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api-int.h"
#include "api/api-json.h"
#include "api/api-route.h"
#include "base/err.h"
#include "base/iso8601.h"
#include "base/log.h"
#include "cal/occurrence.h"
#include "store/store.h"
#include "sync/engine.h"

/* Users per page of GET /v1/users: the default and the most a client may ask for. */
#define USERS_PAGE_DEFAULT 100
#define USERS_PAGE_MAX     1000

static int state_from_name(const char *s, enum store_mb_state *out)
{
	for (int st = STORE_MB_UNRESOLVED; st <= STORE_MB_PARKED; st++) {
		if (strcmp(s, store_mb_state_name((enum store_mb_state)st)) == 0) {
			*out = (enum store_mb_state)st;
			return 0;
		}
	}
	return -EINVAL;
}

static int backend_from_name(const char *s, enum api_backend *out)
{
	for (int b = 0; b < API_BACKEND_COUNT; b++) {
		if (strcmp(s, api_backend_name((enum api_backend)b)) == 0) {
			*out = (enum api_backend)b;
			return 0;
		}
	}
	return -EINVAL;
}

static int by_smtp(const void *x, const void *y)
{
	const struct store_mailbox *a = x, *b = y;

	return strcasecmp(a->smtp, b->smtp);
}

/* A store error as a reply: 503, since the store is the API's only source. */
static enum MHD_Result store_failed(struct MHD_Connection *c, const struct err *err)
{
	log_warn("api: store read failed: %s", err->msg);
	return api_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "store: %s", err->msg);
}

enum MHD_Result api_users_list(struct api *a, struct MHD_Connection *c)
{
	char state_s[32], backend_s[32], limit_s[32], after[API_MAX_SMTP + 1];
	enum store_mb_state want = STORE_MB_LIVE;
	enum api_backend want_bk = API_BACKEND_EWS;
	struct store_mailbox *mbs = NULL;
	struct store *s;
	struct err err = {0};
	bool filter = false, filter_bk = false;
	int64_t limit = USERS_PAGE_DEFAULT;
	size_t n = 0, taken = 0;
	const char *last = NULL;
	json_t *users, *next = NULL;
	enum MHD_Result reply;
	int has_after, q, rc;

	q = api_query(c, "state", state_s, sizeof(state_s));
	if (q < 0 || (q > 0 && state_from_name(state_s, &want) < 0))
		return api_reply_error(c, MHD_HTTP_BAD_REQUEST,
		                       "state must be live, syncing, parked or unresolved");
	filter = q > 0;
	q = api_query(c, "backend", backend_s, sizeof(backend_s));
	if (q < 0 || (q > 0 && backend_from_name(backend_s, &want_bk) < 0))
		return api_reply_error(c, MHD_HTTP_BAD_REQUEST, "backend must be ews or graph");
	filter_bk = q > 0;
	q = api_query(c, "limit", limit_s, sizeof(limit_s));
	if (q < 0 || (q > 0 && api_parse_int(limit_s, 1, USERS_PAGE_MAX, &limit) < 0))
		return api_reply_error(c, MHD_HTTP_BAD_REQUEST, "limit must be 1 to %d",
		                       USERS_PAGE_MAX);
	has_after = api_query(c, "after", after, sizeof(after));
	if (has_after < 0)
		return api_reply_error(
			c, MHD_HTTP_BAD_REQUEST,
			"after must be a percent-encoded address of at most %u bytes",
			API_MAX_SMTP);

	s = api_store_lock(a);
	rc = store_mailbox_list(s, STORE_MB_ENABLED, &mbs, &n, &err);
	if (rc < 0) {
		api_store_unlock(a);
		return store_failed(c, &err);
	}
	/* Our own order, so that `after` pages exactly whatever order the store returned. */
	if (n > 1)
		qsort(mbs, n, sizeof(*mbs), by_smtp);
	users = json_array();
	for (size_t i = 0; i < n; i++) {
		struct store_presence p = {0};
		bool have_p;

		if (has_after > 0 && strcasecmp(mbs[i].smtp, after) <= 0)
			continue;
		if (filter && mbs[i].state != want)
			continue;
		if (filter_bk && api_backend_of(&mbs[i]) != want_bk)
			continue;
		if (taken == (size_t)limit) {
			next = json_string(last);
			break;
		}
		have_p = store_presence_get(s, mbs[i].smtp, &p, NULL) == 0;
		json_array_append_new(users, api_json_user(&mbs[i], have_p ? &p : NULL));
		store_presence_clear(&p);
		last = mbs[i].smtp;
		taken++;
	}
	api_store_unlock(a);
	reply = api_reply_json(
		c, MHD_HTTP_OK,
		json_pack("{s:o, s:o}", "users", users, "next", next != NULL ? next : json_null()),
		NULL, NULL);
	store_mailboxes_free(mbs, n);
	return reply;
}

/* Loads an enabled mailbox (locked store). 0, 404 or 503 already replied (*out_reply set). */
static int load_user(struct api *a, struct store *s, struct MHD_Connection *c, const char *smtp,
                     struct store_mailbox *out_mb, enum MHD_Result *out_reply)
{
	struct err err = {0};
	int rc = store_mailbox_get(s, smtp, out_mb, &err);

	if (rc == 0 && out_mb->enabled)
		return 0;
	store_mailbox_clear(out_mb);
	api_store_unlock(a);
	if (rc == 0 || rc == -ENOENT)
		*out_reply = api_reply_error(c, MHD_HTTP_NOT_FOUND, "no such user: %s", smtp);
	else
		*out_reply = store_failed(c, &err);
	return -1;
}

enum MHD_Result api_user_get(struct api *a, struct MHD_Connection *c, const struct api_route *r)
{
	struct store *s = api_store_lock(a);
	struct store_mailbox mb = {0};
	struct store_presence p = {0};
	enum MHD_Result reply;
	json_t *j;
	bool have_p;

	if (load_user(a, s, c, r->smtp, &mb, &reply) < 0)
		return reply;
	have_p = store_presence_get(s, mb.smtp, &p, NULL) == 0;
	api_store_unlock(a);
	j = api_json_user(&mb, have_p ? &p : NULL);
	store_presence_clear(&p);
	store_mailbox_clear(&mb);
	return api_reply_json(c, MHD_HTTP_OK, j, NULL, NULL);
}

enum MHD_Result api_user_presence(struct api *a, struct MHD_Connection *c,
                                  const struct api_route *r)
{
	struct store *s = api_store_lock(a);
	struct store_mailbox mb = {0};
	struct store_presence p = {0};
	struct err err = {0};
	enum MHD_Result reply;
	json_t *j, *pres;
	int rc;

	if (load_user(a, s, c, r->smtp, &mb, &reply) < 0)
		return reply;
	rc = store_presence_get(s, mb.smtp, &p, &err);
	api_store_unlock(a);
	if (rc < 0 && rc != -ENOENT) {
		store_mailbox_clear(&mb);
		return store_failed(c, &err);
	}
	/* No presence yet (the first read is still running): every field null. */
	j = json_pack("{s:s?}", "user", mb.smtp);
	pres = api_json_presence(rc == 0 ? &p : NULL);
	if (j != NULL && json_object_update(j, pres) < 0) {
		json_decref(j);
		j = NULL;
	}
	json_decref(pres);
	store_presence_clear(&p);
	store_mailbox_clear(&mb);
	return api_reply_json(c, MHD_HTTP_OK, j, NULL, NULL);
}

/* The time query key, or def when absent. 0, or -1 after replying 400. */
static int time_arg(struct MHD_Connection *c, const char *key, int64_t def, int64_t *out,
                    enum MHD_Result *out_reply)
{
	char v[64];
	struct err err = {0};
	int q = api_query(c, key, v, sizeof(v));

	if (q == 0) {
		*out = def;
		return 0;
	}
	if (q > 0 && iso8601_parse(v, strlen(v), out, NULL, &err) == 0)
		return 0;
	*out_reply = api_reply_error(c, MHD_HTTP_BAD_REQUEST,
	                             "%s must be an ISO 8601 date-time such as "
	                             "2025-03-03T09:00:00Z%s%s",
	                             key, q > 0 ? ": " : "", q > 0 ? err.msg : "");
	return -1;
}

enum MHD_Result api_user_agenda(struct api *a, struct MHD_Connection *c, const struct api_route *r)
{
	struct store *s;
	struct store_mailbox mb = {0};
	struct cal_occurrence *occs = NULL;
	struct err err = {0};
	enum MHD_Result reply;
	int64_t from, to;
	size_t n = 0;
	json_t *list, *j;
	int rc;

	s = api_store_lock(a);
	if (load_user(a, s, c, r->smtp, &mb, &reply) < 0)
		return reply;
	rc = store_load_occurrences(s, mb.smtp, &occs, &n, &err);
	api_store_unlock(a);
	if (rc < 0 && rc != -ENOENT) {
		store_mailbox_clear(&mb);
		return store_failed(c, &err);
	}
	if (time_arg(c, "from", mb.window_start_utc, &from, &reply) < 0 ||
	    time_arg(c, "to", mb.window_end_utc, &to, &reply) < 0)
		goto out;
	if ((from != 0 || to != 0) && from >= to) {
		reply = api_reply_error(c, MHD_HTTP_BAD_REQUEST, "from must be before to");
		goto out;
	}
	list = json_array();
	for (size_t i = 0; i < n; i++) {
		/* [from, to) overlaps [start, end). */
		if (occs[i].start_utc < to && occs[i].end_utc > from)
			json_array_append_new(list, api_json_occurrence(&occs[i]));
	}
	j = json_pack("{s:s?, s:o, s:o, s:{s:o, s:o}, s:o}", "user", mb.smtp, "from",
	              api_json_time(from), "to", api_json_time(to), "window", "start",
	              api_json_time(mb.window_start_utc), "end", api_json_time(mb.window_end_utc),
	              "occurrences", list);
	reply = api_reply_json(c, MHD_HTTP_OK, j, NULL, NULL);
out:
	cal_occurrences_free(occs, n);
	store_mailbox_clear(&mb);
	return reply;
}

/* sync_engine_command's result as a reply status (0 for success). */
static unsigned command_status(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case -ENOENT:
		return MHD_HTTP_NOT_FOUND;
	case -EEXIST:
		return MHD_HTTP_CONFLICT;
	case -EINVAL:
	case -EMSGSIZE:
		return MHD_HTTP_BAD_REQUEST;
	case -ETIMEDOUT:
	case -ESHUTDOWN:
		return MHD_HTTP_SERVICE_UNAVAILABLE;
	default:
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
}

static int command(struct api *a, enum sync_cmd cmd, const char *smtp, struct MHD_Connection *c,
                   enum MHD_Result *out_reply)
{
	struct err err = {0};
	int rc = sync_engine_command(a->engine, cmd, smtp, &err);

	if (rc == 0)
		return 0;
	if (err.msg[0] == '\0')
		snprintf(err.msg, sizeof(err.msg), "%s: %s", smtp, strerror(-rc));
	*out_reply = api_reply_error(c, command_status(rc), "%s", err.msg);
	return -1;
}

enum MHD_Result api_user_add(struct api *a, struct MHD_Connection *c, const struct api_req *rq)
{
	json_error_t jerr;
	json_t *body, *v;
	char smtp[API_MAX_SMTP + 1];
	char loc[3 * API_MAX_SMTP + 16];
	struct store_mailbox mb = {0};
	struct err err = {0};
	enum MHD_Result reply;
	json_t *j;
	int rc;

	if (rq->body.len == 0)
		return api_reply_error(c, MHD_HTTP_BAD_REQUEST,
		                       "the body must be a JSON object {\"smtp\": \"address\"}");
	body = json_loadb(rq->body.data, rq->body.len, JSON_REJECT_DUPLICATES, &jerr);
	if (body == NULL)
		return api_reply_error(c, MHD_HTTP_BAD_REQUEST, "the body is not JSON: %s",
		                       jerr.text);
	v = json_object_get(body, "smtp");
	if (!json_is_object(body) || !json_is_string(v) ||
	    json_string_length(v) != strlen(json_string_value(v)) ||
	    json_string_length(v) >= sizeof(smtp)) {
		json_decref(body);
		return api_reply_error(
			c, MHD_HTTP_BAD_REQUEST,
			"the body must be a JSON object {\"smtp\": \"address\"} with "
			"an address of at most %u bytes",
			API_MAX_SMTP);
	}
	memcpy(smtp, json_string_value(v), json_string_length(v) + 1);
	json_decref(body);
	if (api_smtp_check(smtp, &err) < 0)
		return api_reply_error(c, MHD_HTTP_BAD_REQUEST, "%s", err.msg);
	if (command(a, SYNC_CMD_ADD, smtp, c, &reply) < 0)
		return reply;
	log_info("api: added mailbox '%s'", smtp);
	rc = store_mailbox_get(api_store_lock(a), smtp, &mb, NULL);
	api_store_unlock(a);
	j = rc == 0 ? api_json_user(&mb, NULL) : json_pack("{s:s}", "smtp", smtp);
	store_mailbox_clear(&mb);
	memcpy(loc, "/v1/users/", 10);
	if (api_url_encode(smtp, loc + 10, sizeof(loc) - 10) < 0)
		loc[10] = '\0';
	return api_reply_json(c, MHD_HTTP_CREATED, j, MHD_HTTP_HEADER_LOCATION, loc);
}

enum MHD_Result api_user_remove(struct api *a, struct MHD_Connection *c, const struct api_route *r)
{
	struct MHD_Response *resp;
	enum MHD_Result reply;

	if (command(a, SYNC_CMD_REMOVE, r->smtp, c, &reply) < 0)
		return reply;
	log_info("api: removed mailbox '%s'", r->smtp);
	resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	reply = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, resp);
	MHD_destroy_response(resp);
	return reply;
}

enum MHD_Result api_user_resync(struct api *a, struct MHD_Connection *c, const struct api_route *r)
{
	enum MHD_Result reply;

	if (command(a, SYNC_CMD_RESYNC, r->smtp, c, &reply) < 0)
		return reply;
	return api_reply_json(
		c, MHD_HTTP_ACCEPTED,
		json_pack("{s:s, s:s}", "smtp", r->smtp, "status", "resync scheduled"), NULL, NULL);
}
