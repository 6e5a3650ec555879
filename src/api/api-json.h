/* SPDX-License-Identifier: MIT */
/*
 * api-json.h: the JSON the HTTP API answers with (docs/api.md), built with jansson from store
 * rows. Pure. Every builder returns a new reference the caller owns; a string that is not valid
 * UTF-8 (the store's strings come from XML, so it never is) becomes null, never invalid JSON.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"

struct buf;
struct cal_occurrence;
struct err;
struct store_mailbox;
struct store_presence;
struct store_presence_event;
struct json_t;

/* The backends that hold mailboxes, as the store names them (store_mailbox.backend,
 * docs/graph.md): on-premises Exchange through EWS, Exchange Online through Microsoft Graph. */
enum api_backend {
	API_BACKEND_EWS = 0,
	API_BACKEND_GRAPH,
	API_BACKEND_COUNT,
};

/* The sync states a mailbox row can be in (enum store_mb_state, unresolved to parked). */
#define API_MB_STATES 4

/* "ews", "graph". */
const char *api_backend_name(enum api_backend b);

/* The backend that holds mb: Graph when the store says "graph", else EWS (NULL is the store's
 * default, "ews"). */
enum api_backend api_backend_of(const struct store_mailbox *mb);

/* Mailbox rows counted by backend and by sync state. */
struct api_backend_counts {
	size_t total[API_BACKEND_COUNT];
	size_t state[API_BACKEND_COUNT][API_MB_STATES]; /* by enum store_mb_state */
};

/* Counts n rows of mbs into *out (zeroed first). */
void api_backend_count(const struct store_mailbox *mbs, size_t n, struct api_backend_counts *out);

/* utc as "YYYY-MM-DDTHH:MM:SSZ", or null for 0 (the store's "none") or an instant outside years
 * 1 to 9999. */
struct json_t *api_json_time(int64_t utc);

/*
 * {"state", "profile", "forward", "subject", "since", "until", "next_change", "updated"}; p NULL
 * (no presence stored yet) gives every key null. The subject is already "private" for private
 * items in the store.
 */
struct json_t *api_json_presence(const struct store_presence *p);

/* {"smtp", "state", "backend" ("ews" or "graph"), "parked_reason", "last_refresh", "window": {"start", "end"} or null,
 * "by_api", "presence": api_json_presence(p) or null when p is NULL}. */
struct json_t *api_json_user(const struct store_mailbox *mb, const struct store_presence *p);

/*
 * One agenda entry: {"id", "start", "end", "all_day", "free_busy", "type", "cancelled",
 * "private"} and, only when the occurrence is not private, "subject", "location", "organizer"
 * and "categories". A private item never carries its subject, location, organizer or categories.
 */
struct json_t *api_json_occurrence(const struct cal_occurrence *o);

/*
 * Appends one Server-Sent Event for ev to out: "id: N\nevent: presence\ndata: {...}\n\n" with
 * the compact JSON of a docs/output.md line (cal_change_json's object, as webhook_body() dumps
 * it). 0, or -EMSGSIZE when out is full (out unchanged), or the builder's -EINVAL / -ERANGE, or
 * -ENOMEM.
 */
ATTR_NODISCARD int api_sse_append_event(struct buf *out, const struct store_presence_event *ev,
                                        struct err *err);
