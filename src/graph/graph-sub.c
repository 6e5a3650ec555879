/* SPDX-License-Identifier: MIT */
/*
 * graph-sub.c: subscription bodies and answers, notification collections, the validation
 * handshake and the clientState compare (graph-sub.h). Bodies are jansson trees; URLs are
 * parsed and the validation token decoded by libcurl.
 */
#include "graph/graph-sub.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/iso8601.h"
#include "base/xalloc.h"
#include "graph/graph-json-int.h"
#include "graph/graph-schema.h"
#include "graph/graph-url.h"

/* microsoft.graph.subscription */
#define P_ID            "id"
#define P_CHANGE_TYPE   "changeType"
#define P_NOTIFY_URL    "notificationUrl"
#define P_LIFECYCLE_URL "lifecycleNotificationUrl"
#define P_RESOURCE      "resource"
#define P_EXPIRATION    "expirationDateTime"
#define P_CLIENT_STATE  "clientState"
/* microsoft.graph.changeNotification and changeNotificationCollection */
#define P_SUBSCRIPTION_ID "subscriptionId"
#define P_TENANT_ID       "tenantId"
#define P_RESOURCE_DATA   "resourceData"
#define P_SUB_EXPIRATION  "subscriptionExpirationDateTime"
#define P_LIFECYCLE_EVENT "lifecycleEvent"
#define P_VALUE           "value"

/* What every subscription calsync makes asks for. */
#define CHANGE_TYPES     "created,updated,deleted"
#define VALIDATION_PARAM "validationToken"

static const struct graph_schema_prop schema[] = {
	{"subscription", P_ID, "Edm.String"},
	{"subscription", P_CHANGE_TYPE, "Edm.String"},
	{"subscription", P_NOTIFY_URL, "Edm.String"},
	{"subscription", P_LIFECYCLE_URL, "Edm.String"},
	{"subscription", P_RESOURCE, "Edm.String"},
	{"subscription", P_EXPIRATION, "Edm.DateTimeOffset"},
	{"subscription", P_CLIENT_STATE, "Edm.String"},
	{"changeNotificationCollection", P_VALUE, "Collection(graph.changeNotification)"},
	{"changeNotification", P_SUBSCRIPTION_ID, "Edm.Guid"},
	{"changeNotification", P_CLIENT_STATE, "Edm.String"},
	{"changeNotification", P_TENANT_ID, "Edm.Guid"},
	{"changeNotification", P_RESOURCE, "Edm.String"},
	{"changeNotification", P_CHANGE_TYPE, "graph.changeType"},
	{"changeNotification", P_RESOURCE_DATA, "graph.resourceData"},
	{"changeNotification", P_SUB_EXPIRATION, "Edm.DateTimeOffset"},
	{"changeNotification", P_LIFECYCLE_EVENT, "graph.lifecycleEventType"},
	/* resourceData is an open type: its members (here the event's id) are not declared. */
	{"resourceData", P_ID, "(open)"},
};

static const struct graph_schema_enum enums[] = {
	{"changeType", "created", GRAPH_CHANGE_CREATED},
	{"changeType", "updated", GRAPH_CHANGE_UPDATED},
	{"changeType", "deleted", GRAPH_CHANGE_DELETED},
	{"lifecycleEventType", "missed", GRAPH_LIFECYCLE_MISSED},
	{"lifecycleEventType", "subscriptionRemoved", GRAPH_LIFECYCLE_SUBSCRIPTION_REMOVED},
	{"lifecycleEventType", "reauthorizationRequired", GRAPH_LIFECYCLE_REAUTHORIZATION_REQUIRED},
};

#define N_ENUMS (sizeof(enums) / sizeof(enums[0]))

const struct graph_schema_prop *graph_sub_schema(size_t *out_n)
{
	*out_n = sizeof(schema) / sizeof(schema[0]);
	return schema;
}

const struct graph_schema_enum *graph_sub_enums(size_t *out_n)
{
	*out_n = N_ENUMS;
	return enums;
}

static int map_enum(const char *type, const char *s, int dflt, int unknown)
{
	if (s == NULL)
		return dflt;
	for (size_t i = 0; i < N_ENUMS; i++) {
		if (strcmp(enums[i].type, type) == 0 && strcmp(enums[i].member, s) == 0)
			return enums[i].value;
	}
	return unknown;
}

/* ---- subscription bodies and answers ------------------------------------------------------ */

static int check_minutes(unsigned minutes, struct err *err)
{
	if (minutes < 1 || minutes > GRAPH_SUB_MAX_MINUTES)
		return err_set(err, -EINVAL,
		               "Graph subscription: lifetime %u minutes, must be 1 to %u", minutes,
		               GRAPH_SUB_MAX_MINUTES);
	return 0;
}

/* now + minutes as "YYYY-MM-DDTHH:MM:SSZ". */
static int expiration(int64_t now_utc, unsigned minutes, char out[ISO8601_FORMAT_SIZE],
                      struct err *err)
{
	int rc = check_minutes(minutes, err);

	if (rc == 0 && (now_utc > ISO8601_MAX_UTC || now_utc < ISO8601_MIN_UTC ||
	                iso8601_format(now_utc + (int64_t)minutes * 60, out, NULL) < 0))
		rc = err_set(err, -EINVAL,
		             "Graph subscription: now is outside the years 1 to 9999");
	return rc;
}

/* A notification URL: an https (or, allowed, http) URL libcurl parses, with a host. */
static int check_url(const char *what, const char *url, bool allow_http, struct err *err)
{
	CURLU *u;
	char *scheme = NULL;
	char *host = NULL;
	bool ok;

	if (url == NULL || strlen(url) > GRAPH_MAX_URL)
		return err_set(err, -EINVAL, "Graph subscription: %s missing or over %u bytes",
		               what, GRAPH_MAX_URL);
	u = curl_url();
	if (u == NULL) {
		fputs("calsync: out of memory (curl_url)\n", stderr);
		abort();
	}
	ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	     curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	     curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0] != '\0' &&
	     (strcmp(scheme, "https") == 0 || (allow_http && strcmp(scheme, "http") == 0));
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	if (!ok)
		return err_set(err, -EINVAL, "Graph subscription: %s is not an %s URL with a host",
		               what, allow_http ? "http(s)" : "https");
	return 0;
}

static int check_client_state(const char *s, struct err *err)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > GRAPH_SUB_MAX_CLIENT_STATE)
		return err_set(err, -EINVAL,
		               "Graph subscription: clientState must be 1 to %u bytes",
		               GRAPH_SUB_MAX_CLIENT_STATE);
	for (size_t i = 0; i < n; i++) {
		if (s[i] < 0x20 || s[i] > 0x7E)
			return err_set(err, -EINVAL,
			               "Graph subscription: clientState must be "
			               "printable ASCII");
	}
	return 0;
}

/* o as compact JSON into *out (o is consumed). */
static int dump(json_t *o, char **out)
{
	char *s = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	if (s == NULL) {
		fputs("calsync: out of memory (json_dumps)\n", stderr);
		abort();
	}
	*out = s;
	return 0;
}

int graph_sub_create_body(const struct graph_sub_create *c, char **out_json, struct err *err)
{
	char expires[ISO8601_FORMAT_SIZE];
	char *resource = NULL;
	json_t *o;
	int rc = graph_url_events_resource(c->user, &resource, err);

	if (rc == 0)
		rc = check_url("notificationUrl", c->notification_url, c->allow_http, err);
	if (rc == 0 && c->lifecycle_url != NULL)
		rc = check_url("lifecycleNotificationUrl", c->lifecycle_url, c->allow_http, err);
	if (rc == 0)
		rc = check_client_state(c->client_state, err);
	if (rc == 0)
		rc = expiration(c->now_utc, c->minutes, expires, err);
	if (rc < 0) {
		free(resource);
		return rc;
	}
	o = json_object();
	rc |= json_object_set_new(o, P_CHANGE_TYPE, json_string(CHANGE_TYPES));
	rc |= json_object_set_new(o, P_NOTIFY_URL, json_string(c->notification_url));
	if (c->lifecycle_url != NULL)
		rc |= json_object_set_new(o, P_LIFECYCLE_URL, json_string(c->lifecycle_url));
	rc |= json_object_set_new(o, P_RESOURCE, json_string(resource));
	rc |= json_object_set_new(o, P_EXPIRATION, json_string(expires));
	rc |= json_object_set_new(o, P_CLIENT_STATE, json_string(c->client_state));
	free(resource);
	if (rc != 0) {
		json_decref(o);
		return err_set(err, -EINVAL, "Graph subscription: a URL is not UTF-8");
	}
	return dump(o, out_json);
}

int graph_sub_renew_body(int64_t now_utc, unsigned minutes, char **out_json, struct err *err)
{
	char expires[ISO8601_FORMAT_SIZE];
	json_t *o;
	int rc = expiration(now_utc, minutes, expires, err);

	if (rc < 0)
		return rc;
	o = json_object();
	json_object_set_new(o, P_EXPIRATION, json_string(expires));
	return dump(o, out_json);
}

int graph_sub_read(const char *json, size_t len, struct graph_sub *out, struct err *err)
{
	const char *what = "subscription";
	const char *id, *resource, *change_type, *client_state;
	int64_t expires;
	json_t *doc;
	int rc = gj_load_object(what, json, len, GRAPH_MAX_NOTIFICATION, &doc, err);

	if (rc < 0)
		return rc;
	rc = gj_string_req(doc, P_ID, what, &id, err);
	if (rc == 0)
		rc = gj_instant_req(doc, P_EXPIRATION, what, &expires, err);
	if (rc == 0)
		rc = gj_string(doc, P_RESOURCE, what, &resource, err);
	if (rc == 0)
		rc = gj_string(doc, P_CHANGE_TYPE, what, &change_type, err);
	if (rc == 0)
		rc = gj_string(doc, P_CLIENT_STATE, what, &client_state, err);
	if (rc == 0)
		*out = (struct graph_sub){
			.id = xstrdup(id),
			.resource = xstrdup_or_null(resource),
			.change_type = xstrdup_or_null(change_type),
			.client_state = xstrdup_or_null(client_state),
			.expires_utc = expires,
		};
	json_decref(doc);
	return rc;
}

void graph_sub_clear(struct graph_sub *s)
{
	if (s == NULL)
		return;
	free(s->id);
	free(s->resource);
	free(s->change_type);
	free(s->client_state);
	*s = (struct graph_sub){0};
}

/* ---- notifications ------------------------------------------------------------------------ */

/* The strings of one notification, borrowed from the document. */
struct note_strings {
	const char *sub_id, *client_state, *tenant_id, *resource, *change, *lifecycle, *res_id;
};

static int read_note_strings(const json_t *e, const char *where, struct note_strings *s,
                             struct err *err)
{
	const json_t *data;
	char what[GJ_WHERE_SIZE + 16];
	int rc = gj_string_req(e, P_SUBSCRIPTION_ID, where, &s->sub_id, err);

	if (rc == 0)
		rc = gj_string(e, P_CLIENT_STATE, where, &s->client_state, err);
	if (rc == 0)
		rc = gj_string(e, P_TENANT_ID, where, &s->tenant_id, err);
	if (rc == 0)
		rc = gj_string(e, P_RESOURCE, where, &s->resource, err);
	if (rc == 0)
		rc = gj_string(e, P_CHANGE_TYPE, where, &s->change, err);
	if (rc == 0)
		rc = gj_string(e, P_LIFECYCLE_EVENT, where, &s->lifecycle, err);
	if (rc == 0)
		rc = gj_object(e, P_RESOURCE_DATA, where, &data, err);
	if (rc == 0 && data != NULL) {
		snprintf(what, sizeof(what), "%s: %s", where, P_RESOURCE_DATA);
		rc = gj_string(data, P_ID, what, &s->res_id, err);
	}
	return rc;
}

static int read_note(const json_t *e, size_t i, struct graph_notification *out, struct err *err)
{
	char where[GJ_WHERE_SIZE];
	struct note_strings s = {0};
	int64_t expires = 0;
	int rc;

	gj_where(where, "value", i, NULL);
	if (!json_is_object(e))
		return err_set(err, -EPROTO, "%s: %s, not a notification object", where,
		               gj_kind(e));
	rc = read_note_strings(e, where, &s, err);
	if (rc == 0 && s.lifecycle == NULL && s.change == NULL)
		rc = err_set(err, -EPROTO, "%s: neither '%s' nor '%s'", where, P_CHANGE_TYPE,
		             P_LIFECYCLE_EVENT);
	if (rc == 0 && json_object_get(e, P_SUB_EXPIRATION) != NULL &&
	    !json_is_null(json_object_get(e, P_SUB_EXPIRATION)))
		rc = gj_instant_req(e, P_SUB_EXPIRATION, where, &expires, err);
	if (rc < 0)
		return rc;
	*out = (struct graph_notification){
		.subscription_id = xstrdup(s.sub_id),
		.client_state = xstrdup_or_null(s.client_state),
		.tenant_id = xstrdup_or_null(s.tenant_id),
		.resource = xstrdup_or_null(s.resource),
		.resource_id = xstrdup_or_null(s.res_id),
		.change = (enum graph_change)map_enum("changeType", s.change, GRAPH_CHANGE_NONE,
	                                              GRAPH_CHANGE_UNKNOWN),
		.lifecycle = (enum graph_lifecycle)map_enum("lifecycleEventType", s.lifecycle,
	                                                    GRAPH_LIFECYCLE_NONE,
	                                                    GRAPH_LIFECYCLE_UNKNOWN),
		.sub_expires_utc = expires,
	};
	return 0;
}

int graph_notifications_read(const char *json, size_t len, struct graph_notifications *out,
                             struct err *err)
{
	const char *what = "change notifications";
	const json_t *value;
	json_t *doc;
	size_t n;
	int rc;

	*out = (struct graph_notifications){0};
	rc = gj_load_object(what, json, len, GRAPH_MAX_NOTIFICATION, &doc, err);
	if (rc < 0)
		return rc;
	rc = gj_array(doc, P_VALUE, what, &value, err);
	if (rc == 0 && value == NULL)
		rc = err_set(err, -EPROTO, "%s: no '%s' array", what, P_VALUE);
	n = rc == 0 ? json_array_size(value) : 0;
	if (n > GRAPH_MAX_NOTIFICATIONS)
		rc = err_set(err, -EMSGSIZE, "%s: %zu notifications, limit %u", what, n,
		             GRAPH_MAX_NOTIFICATIONS);
	if (rc == 0)
		out->v = xcalloc(n, sizeof(*out->v));
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = read_note(json_array_get(value, i), i, &out->v[i], err);
		if (rc == 0)
			out->n++;
		else
			rc = err_set(err, rc, "%s: %s", what, err != NULL ? err->msg : "bad entry");
	}
	json_decref(doc);
	if (rc < 0)
		graph_notifications_clear(out);
	return rc;
}

void graph_notifications_clear(struct graph_notifications *ns)
{
	if (ns == NULL)
		return;
	for (size_t i = 0; i < ns->n; i++) {
		struct graph_notification *x = &ns->v[i];

		free(x->subscription_id);
		free(x->client_state);
		free(x->tenant_id);
		free(x->resource);
		free(x->resource_id);
	}
	free(ns->v);
	*ns = (struct graph_notifications){0};
}

bool graph_sub_client_state_equal(const char *expected, const char *got, size_t got_len)
{
	size_t n;
	volatile unsigned char diff;

	if (expected == NULL || got == NULL)
		return false;
	n = strlen(expected);
	diff = n != got_len;
	/* Every byte of got is looked at, whatever the outcome; past expected's end it is
	 * compared with NUL, which a clientState never holds (check_client_state). */
	for (size_t i = 0; i < got_len; i++) {
		unsigned char e = (unsigned char)expected[i < n ? i : n];

		diff |= (unsigned char)((unsigned char)got[i] ^ e);
	}
	return diff == 0;
}

/* ---- the validation handshake ------------------------------------------------------------- */

/* The raw (still encoded) value of the validationToken parameter, borrowed from query. */
static int find_token(const char *query, size_t len, const char **out, size_t *out_len,
                      struct err *err)
{
	const size_t key_len = strlen(VALIDATION_PARAM "=");
	const char *found = NULL;
	size_t found_len = 0;
	size_t i = 0;

	while (i <= len) {
		size_t end = i;

		while (end < len && query[end] != '&')
			end++;
		if (end - i >= key_len && memcmp(query + i, VALIDATION_PARAM "=", key_len) == 0) {
			if (found != NULL)
				return err_set(err, -EINVAL, "Graph validation: two %s parameters",
				               VALIDATION_PARAM);
			found = query + i + key_len;
			found_len = end - i - key_len;
		}
		i = end + 1;
	}
	if (found == NULL)
		return -ENOENT;
	*out = found;
	*out_len = found_len;
	return 0;
}

int graph_sub_validation_token(const char *query, size_t len, char **out_token, struct err *err)
{
	const char *raw;
	size_t raw_len;
	char *plus;
	char *dec;
	int dec_len = 0;
	int rc;

	if (query == NULL || len > GRAPH_MAX_VALIDATION_QUERY)
		return err_set(err, -EINVAL, "Graph validation: query missing or over %u bytes",
		               GRAPH_MAX_VALIDATION_QUERY);
	rc = find_token(query, len, &raw, &raw_len, err);
	if (rc < 0)
		return rc;
	/* Form encoding: '+' is a space. A '+' of the token itself arrives as %2B. */
	plus = xmemdup(raw, raw_len);
	for (size_t i = 0; i < raw_len; i++) {
		if (plus[i] == '+')
			plus[i] = ' ';
	}
	dec = curl_easy_unescape(NULL, plus, (int)raw_len, &dec_len);
	free(plus);
	if (dec == NULL) {
		fputs("calsync: out of memory (curl_easy_unescape)\n", stderr);
		abort();
	}
	rc = dec_len == 0 || (size_t)dec_len > GRAPH_MAX_VALIDATION_TOKEN ? -EINVAL : 0;
	for (int i = 0; i < dec_len && rc == 0; i++) {
		unsigned char c = (unsigned char)dec[i];

		if (c < 0x20 || c == 0x7F)
			rc = -EINVAL;
	}
	if (rc == 0)
		*out_token = xmemdup(dec, (size_t)dec_len);
	curl_free(dec);
	if (rc < 0)
		return err_set(err, rc,
		               "Graph validation: the token must be 1 to %u bytes without "
		               "control bytes",
		               GRAPH_MAX_VALIDATION_TOKEN);
	return 0;
}
