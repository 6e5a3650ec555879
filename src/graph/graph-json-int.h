/* SPDX-License-Identifier: MIT */
/*
 * graph-json-int.h: what the Microsoft Graph readers and writers of src/graph/ share: one
 * bounded, strict way to load a JSON answer with jansson, and typed reads of an object's
 * members whose errors name the object, the member and what was found instead. Internal to
 * src/graph/ (included by nothing else). Pure: no I/O.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"

struct err;

/* The longest description of an object ("value[12] (id 'AAMk...')") a reader names. */
#define GJ_WHERE_SIZE 112

/*
 * Loads exactly len bytes as one JSON document into an owned *out (json_decref it). Refused:
 * more than max bytes (-EMSGSIZE, before any parsing), and with -EPROTO anything jansson does
 * not take as one whole document: invalid JSON or UTF-8, a duplicate member name in any object
 * (JSON_REJECT_DUPLICATES), "\u0000" in a string, or bytes after the document. what names the
 * document in err ("calendarView page").
 */
ATTR_NODISCARD int gj_load(const char *what, const char *json, size_t len, size_t max, json_t **out,
                           struct err *err);

/* Like gj_load(), and the document must be a JSON object. */
ATTR_NODISCARD int gj_load_object(const char *what, const char *json, size_t len, size_t max,
                                  json_t **out, struct err *err);

/* "an object", "an array", "a string", "a number", "true", "false", "null". */
const char *gj_kind(const json_t *v);

/*
 * Typed reads of member key of obj. where names obj in an error message. An absent member and
 * a JSON null both mean "none": *out is set to NULL (strings, objects, arrays) or *out to false
 * and *has to false (booleans). A member of any other type is -EPROTO with err naming where,
 * key and the type found. Strings are borrowed from obj.
 */
ATTR_NODISCARD int gj_string(const json_t *obj, const char *key, const char *where,
                             const char **out, struct err *err);
ATTR_NODISCARD int gj_bool(const json_t *obj, const char *key, const char *where, bool *out,
                           bool *has, struct err *err);
ATTR_NODISCARD int gj_object(const json_t *obj, const char *key, const char *where,
                             const json_t **out, struct err *err);
ATTR_NODISCARD int gj_array(const json_t *obj, const char *key, const char *where,
                            const json_t **out, struct err *err);

/* Like gj_string(), and the member must be there and be a non-empty string. */
ATTR_NODISCARD int gj_string_req(const json_t *obj, const char *key, const char *where,
                                 const char **out, struct err *err);

/* Like gj_string_req(), for an xs:dateTime / Edm.DateTimeOffset member, into UTC seconds. */
ATTR_NODISCARD int gj_instant_req(const json_t *obj, const char *key, const char *where,
                                  int64_t *out_utc, struct err *err);

/* Writes "what[i]" and, when id is not NULL, " (id 'first 40 bytes of id...')" into where. */
void gj_where(char where[GJ_WHERE_SIZE], const char *what, size_t i, const char *id);

/* Serializes v compactly into an owned string (free it), or NULL when v is NULL. */
char *gj_dump(const json_t *v);

/* Copies s into out (size bytes, NUL-terminated), for a log line or an error: control bytes
 * become spaces and a cut never splits a UTF-8 sequence. s may be NULL (out gets ""). */
void gj_printable(const char *s, char *out, size_t size);
