/* SPDX-License-Identifier: MIT */
/*
 * graph-json.c: the bounded jansson load and the typed member reads the Graph readers share.
 * Every message names the object and member and says what was found, because a Graph answer
 * that calsync cannot read is reported as is and must be diagnosable from the log alone.
 */
#include "graph/graph-json-int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/iso8601.h"

int gj_load(const char *what, const char *json, size_t len, size_t max, json_t **out,
            struct err *err)
{
	json_error_t je;
	json_t *doc;

	if (len > max)
		return err_set(err, -EMSGSIZE, "%s: %zu bytes, limit %zu", what, len, max);
	if (json == NULL || len == 0)
		return err_set(err, -EPROTO, "%s: empty", what);
	doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (doc == NULL)
		return err_set(err, -EPROTO, "%s: not JSON: %s at byte %d", what, je.text,
		               je.position);
	*out = doc;
	return 0;
}

int gj_load_object(const char *what, const char *json, size_t len, size_t max, json_t **out,
                   struct err *err)
{
	json_t *doc;
	int rc = gj_load(what, json, len, max, &doc, err);

	if (rc < 0)
		return rc;
	if (!json_is_object(doc)) {
		rc = err_set(err, -EPROTO, "%s: the document is %s, not an object", what,
		             gj_kind(doc));
		json_decref(doc);
		return rc;
	}
	*out = doc;
	return 0;
}

const char *gj_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
		return "true";
	case JSON_FALSE:
		return "false";
	case JSON_NULL:
		break;
	}
	return "null";
}

/* The member, or NULL when it is absent or null. */
static const json_t *member(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return v == NULL || json_is_null(v) ? NULL : v;
}

static int wrong_type(const char *where, const char *key, const json_t *v, const char *want,
                      struct err *err)
{
	return err_set(err, -EPROTO, "%s: '%s' is %s, not %s", where, key, gj_kind(v), want);
}

int gj_string(const json_t *obj, const char *key, const char *where, const char **out,
              struct err *err)
{
	const json_t *v = member(obj, key);

	if (v != NULL && !json_is_string(v))
		return wrong_type(where, key, v, "a string", err);
	*out = v != NULL ? json_string_value(v) : NULL;
	return 0;
}

int gj_string_req(const json_t *obj, const char *key, const char *where, const char **out,
                  struct err *err)
{
	const char *s;
	int rc = gj_string(obj, key, where, &s, err);

	if (rc < 0)
		return rc;
	if (s == NULL)
		return err_set(err, -EPROTO, "%s: '%s' is missing", where, key);
	if (s[0] == '\0')
		return err_set(err, -EPROTO, "%s: '%s' is empty", where, key);
	*out = s;
	return 0;
}

int gj_instant_req(const json_t *obj, const char *key, const char *where, int64_t *out_utc,
                   struct err *err)
{
	const char *s;
	struct err perr = {0};
	int64_t t;
	int rc = gj_string_req(obj, key, where, &s, err);

	if (rc < 0)
		return rc;
	if (iso8601_parse(s, strlen(s), &t, NULL, &perr) < 0)
		return err_set(err, -EPROTO, "%s: '%s': %s", where, key, perr.msg);
	*out_utc = t;
	return 0;
}

int gj_bool(const json_t *obj, const char *key, const char *where, bool *out, bool *has,
            struct err *err)
{
	const json_t *v = member(obj, key);

	if (v != NULL && !json_is_boolean(v))
		return wrong_type(where, key, v, "true or false", err);
	*out = v != NULL && json_is_true(v);
	*has = v != NULL;
	return 0;
}

int gj_object(const json_t *obj, const char *key, const char *where, const json_t **out,
              struct err *err)
{
	const json_t *v = member(obj, key);

	if (v != NULL && !json_is_object(v))
		return wrong_type(where, key, v, "an object", err);
	*out = v;
	return 0;
}

int gj_array(const json_t *obj, const char *key, const char *where, const json_t **out,
             struct err *err)
{
	const json_t *v = member(obj, key);

	if (v != NULL && !json_is_array(v))
		return wrong_type(where, key, v, "an array", err);
	*out = v;
	return 0;
}

/* Where to cut s, which is longer than len bytes, at most len bytes in without splitting a
 * UTF-8 sequence: back over the continuation bytes that would start the rest. */
static size_t utf8_cut(const char *s, size_t len)
{
	size_t n = len;

	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

void gj_printable(const char *s, char *out, size_t size)
{
	size_t n;

	if (size == 0)
		return;
	if (s == NULL)
		s = "";
	n = strlen(s);
	if (n > size - 1)
		n = utf8_cut(s, size - 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		out[i] = c < 0x20 || c == 0x7F ? ' ' : (char)c;
	}
	out[n] = '\0';
}

void gj_where(char where[GJ_WHERE_SIZE], const char *what, size_t i, const char *id)
{
	char shown[44];

	if (id == NULL) {
		snprintf(where, GJ_WHERE_SIZE, "%s[%zu]", what, i);
		return;
	}
	gj_printable(id, shown, 41);
	snprintf(where, GJ_WHERE_SIZE, "%s[%zu] (id '%s%s')", what, i, shown,
	         strlen(id) > 40 ? "..." : "");
}

char *gj_dump(const json_t *v)
{
	return v != NULL ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}
