/* SPDX-License-Identifier: MIT */
/*
 * graph-batch.c: the $batch request body and the reading of its answer (graph-batch.h). The
 * body is built as a jansson tree, so that no string of a request can break out of its place;
 * the answer is read as strictly as a page (graph-json-int.h) and matched back by id.
 */
#include "graph/graph-batch.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "graph/graph-error.h"
#include "graph/graph-json-int.h"
#include "graph/graph-url.h"

static const char *const methods[] = {"GET", "POST", "PATCH", "PUT", "DELETE"};

static bool id_ok(const char *id)
{
	size_t n = id != NULL ? strlen(id) : 0;

	if (n == 0 || n > GRAPH_BATCH_MAX_ID)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

/* Text with no control byte (and, for a url, no space either). */
static bool text_ok(const char *s, bool no_space)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7F || (no_space && *p == ' '))
			return false;
	}
	return true;
}

static int check_req(const struct graph_batch_req *reqs, size_t i, struct err *err)
{
	const struct graph_batch_req *r = &reqs[i];
	bool method = false;
	size_t n;

	if (!id_ok(r->id))
		return err_set(err, -EINVAL,
		               "batch request %zu: the id must be 1 to %u letters, digits, "
		               "'-', '_' or '.'",
		               i, GRAPH_BATCH_MAX_ID);
	for (size_t k = 0; k < i; k++) {
		if (strcasecmp(reqs[k].id, r->id) == 0)
			return err_set(err, -EINVAL,
			               "batch request %zu: id '%s' is taken by request %zu", i,
			               r->id, k);
	}
	for (size_t k = 0; k < sizeof(methods) / sizeof(methods[0]); k++)
		method = method || (r->method != NULL && strcmp(r->method, methods[k]) == 0);
	if (!method)
		return err_set(err, -EINVAL,
		               "batch request '%s': method must be GET, POST, PATCH, PUT "
		               "or DELETE",
		               r->id);
	n = r->url != NULL ? strlen(r->url) : 0;
	if (n == 0 || n > GRAPH_MAX_URL || strstr(r->url, "://") != NULL ||
	    strncmp(r->url, "//", 2) == 0 || !text_ok(r->url, true))
		return err_set(err, -EINVAL,
		               "batch request '%s': url must be a path relative to the "
		               "version root",
		               r->id);
	for (size_t h = 0; h < r->n_headers; h++) {
		const struct graph_batch_header *hd = &r->headers[h];

		if (hd->name == NULL || hd->name[0] == '\0' || hd->value == NULL ||
		    !text_ok(hd->name, true) || strchr(hd->name, ':') != NULL ||
		    !text_ok(hd->value, false))
			return err_set(err, -EINVAL, "batch request '%s': header %zu is malformed",
			               r->id, h);
		for (size_t k = 0; k < h; k++) {
			if (strcasecmp(r->headers[k].name, hd->name) == 0)
				return err_set(err, -EINVAL,
				               "batch request '%s': header '%s' twice", r->id,
				               hd->name);
		}
	}
	return 0;
}

/* Sets o[key] to the string value: -1 when either is not valid UTF-8 (jansson refuses it). */
static int put(json_t *o, const char *key, const char *value)
{
	return json_object_set_new(o, key, json_string(value));
}

/* r's body as a JSON object into o, with a Content-Type in headers unless it has one. */
static int put_body(json_t *o, json_t *headers, const struct graph_batch_req *r, bool has_type,
                    struct err *err)
{
	json_error_t je;
	json_t *body = json_loads(r->body_json, JSON_REJECT_DUPLICATES, &je);

	if (!json_is_object(body)) {
		err_set(err, -EINVAL, "batch request '%s': the body is not a JSON object%s%s",
		        r->id, body == NULL ? ": " : "", body == NULL ? je.text : "");
		json_decref(body);
		return -EINVAL;
	}
	if (!has_type && put(headers, "Content-Type", "application/json") < 0) {
		json_decref(body);
		return -EINVAL;
	}
	return json_object_set_new(o, "body", body) < 0 ? -EINVAL : 0;
}

/* One request as a JSON object into *out; -EINVAL with err when it cannot be one. */
static int req_json(const struct graph_batch_req *r, json_t **out, struct err *err)
{
	json_t *o = json_object();
	json_t *headers = json_object();
	bool has_type = false;
	int rc = 0;

	if (put(o, "id", r->id) < 0 || put(o, "method", r->method) < 0 || put(o, "url", r->url) < 0)
		rc = err_set(err, -EINVAL, "batch request %.64s: not UTF-8", r->id);
	for (size_t h = 0; h < r->n_headers && rc == 0; h++) {
		if (put(headers, r->headers[h].name, r->headers[h].value) < 0)
			rc = err_set(err, -EINVAL, "batch request '%s': header %zu is not UTF-8",
			             r->id, h);
		has_type = has_type || strcasecmp(r->headers[h].name, "Content-Type") == 0;
	}
	if (rc == 0 && r->body_json != NULL)
		rc = put_body(o, headers, r, has_type, err);
	if (rc == 0 && json_object_size(headers) > 0) {
		rc = json_object_set_new(o, "headers", headers) < 0 ? -EINVAL : 0;
		headers = NULL;
	}
	json_decref(headers);
	if (rc < 0) {
		json_decref(o);
		return rc;
	}
	*out = o;
	return 0;
}

int graph_batch_build(const struct graph_batch_req *reqs, size_t n, char **out_json,
                      struct err *err)
{
	json_t *root;
	json_t *arr;
	char *s;

	if (n == 0 || n > GRAPH_BATCH_MAX)
		return err_set(err, -EINVAL, "batch: %zu requests, must be 1 to %u", n,
		               GRAPH_BATCH_MAX);
	for (size_t i = 0; i < n; i++) {
		int rc = check_req(reqs, i, err);

		if (rc < 0)
			return rc;
	}
	root = json_object();
	arr = json_array();
	json_object_set_new(root, "requests", arr);
	for (size_t i = 0; i < n; i++) {
		json_t *o;
		int rc = req_json(&reqs[i], &o, err);

		if (rc < 0) {
			json_decref(root);
			return rc;
		}
		json_array_append_new(arr, o);
	}
	s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (s == NULL) {
		fputs("calsync: out of memory (json_dumps)\n", stderr);
		abort();
	}
	*out_json = s;
	return 0;
}

/* The first of ids[0..n) equal to id without regard to case, or n. */
static size_t match(const char *const *ids, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++) {
		if (ids[i] != NULL && strcasecmp(ids[i], id) == 0)
			return i;
	}
	return n;
}

/* The headers Graph's answer for one request carries that we use: Retry-After, Content-Type. */
static int read_headers(const json_t *entry, const char *where, struct graph_batch_resp *r,
                        struct err *err)
{
	/* json_object_get() hands out a mutable pointer, which json_object_foreach needs. */
	json_t *headers = json_object_get(entry, "headers");
	const char *name;
	json_t *v;

	if (headers == NULL || json_is_null(headers))
		return 0;
	if (!json_is_object(headers))
		return err_set(err, -EPROTO, "%s: 'headers' is %s, not an object", where,
		               gj_kind(headers));
	json_object_foreach(headers, name, v)
	{
		if (!json_is_string(v))
			return err_set(err, -EPROTO, "%s: header '%.64s' is %s, not a string",
			               where, name, gj_kind(v));
		if (strcasecmp(name, "Retry-After") == 0)
			r->retry_after_ms =
				graph_retry_after_ms(json_string_value(v), json_string_length(v));
		else if (strcasecmp(name, "Content-Type") == 0 && r->content_type == NULL)
			r->content_type = xstrdup(json_string_value(v));
	}
	return 0;
}

/* One entry of responses[] into r (which is its request's slot, not yet found). */
static int read_entry(const json_t *entry, const char *where, struct graph_batch_resp *r,
                      struct err *err)
{
	const json_t *status = json_object_get(entry, "status");
	const json_t *body = json_object_get(entry, "body");
	json_int_t s;
	int rc;

	if (!json_is_integer(status))
		return err_set(err, -EPROTO, "%s: 'status' is %s, not an integer", where,
		               status != NULL ? gj_kind(status) : "missing");
	s = json_integer_value(status);
	if (s < 100 || s > 599)
		return err_set(err, -EPROTO, "%s: 'status' %lld is no HTTP status", where,
		               (long long)s);
	*r = (struct graph_batch_resp){.found = true, .status = (long)s, .retry_after_ms = -1};
	rc = read_headers(entry, where, r, err);
	if (rc < 0)
		return rc;
	if (json_is_string(body)) {
		r->body = xmemdup(json_string_value(body), json_string_length(body));
		r->body_len = json_string_length(body);
		r->body_is_text = true;
	} else if (body != NULL && !json_is_null(body)) {
		r->body = gj_dump(body);
		if (r->body == NULL) {
			fputs("calsync: out of memory (json_dumps)\n", stderr);
			abort();
		}
		r->body_len = strlen(r->body);
	}
	return 0;
}

static int read_responses(const json_t *arr, const char *const *ids, size_t n,
                          struct graph_batch_answer *out, struct err *err)
{
	for (size_t i = 0; i < json_array_size(arr); i++) {
		const json_t *entry = json_array_get(arr, i);
		char where[GJ_WHERE_SIZE];
		const char *id;
		size_t k;
		int rc;

		gj_where(where, "batch responses", i, NULL);
		if (!json_is_object(entry))
			return err_set(err, -EPROTO, "%s: %s, not an object", where,
			               gj_kind(entry));
		rc = gj_string_req(entry, "id", where, &id, err);
		if (rc < 0)
			return rc;
		gj_where(where, "batch responses", i, id);
		k = match(ids, n, id);
		if (k < n && out->resp[k].found)
			return err_set(err, -EPROTO, "%s: a second response for request '%.64s'",
			               where, ids[k]);
		if (k == n) {
			struct graph_batch_resp ignored = {0};

			/* Checked all the same: an answer we cannot read is refused whole. */
			rc = read_entry(entry, where, &ignored, err);
			free(ignored.body);
			free(ignored.content_type);
			if (rc < 0)
				return rc;
			out->n_unknown++;
			continue;
		}
		rc = read_entry(entry, where, &out->resp[k], err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int graph_batch_read(const char *json, size_t len, const char *const *ids, size_t n,
                     struct graph_batch_answer *out, struct err *err)
{
	const char *what = "batch answer";
	const json_t *arr;
	json_t *doc;
	int rc;

	*out = (struct graph_batch_answer){0};
	rc = gj_load_object(what, json, len, GRAPH_BATCH_MAX_RESPONSE, &doc, err);
	if (rc < 0)
		return rc;
	rc = gj_array(doc, "responses", what, &arr, err);
	if (rc == 0 && arr == NULL)
		rc = err_set(err, -EPROTO, "%s: no 'responses' array", what);
	if (rc == 0) {
		out->resp = xcalloc(n, sizeof(*out->resp));
		out->n = n;
		for (size_t i = 0; i < n; i++)
			out->resp[i].retry_after_ms = -1;
		rc = read_responses(arr, ids, n, out, err);
	}
	json_decref(doc);
	if (rc < 0) {
		graph_batch_answer_clear(out);
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		char msg[160];

		if (out->resp[i].found)
			continue;
		snprintf(msg, sizeof(msg), "batch: no response for request '%.64s'",
		         ids[i] != NULL ? ids[i] : "");
		out->resp[i].error = xstrdup(msg);
	}
	return 0;
}

void graph_batch_answer_clear(struct graph_batch_answer *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->n; i++) {
		free(a->resp[i].content_type);
		free(a->resp[i].body);
		free(a->resp[i].error);
	}
	free(a->resp);
	*a = (struct graph_batch_answer){0};
}
