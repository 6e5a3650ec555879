/* SPDX-License-Identifier: MIT */
/*
 * graph-batch.h: Microsoft Graph JSON batching: the body of POST {base}/$batch (up to
 * GRAPH_BATCH_MAX requests, each with an id, a method, a url relative to the version root,
 * headers and an optional JSON body), and its answer, matched back to the requests by id.
 * Pure: jansson in and out, no I/O.
 *
 * Graph answers a batch it can parse with 200 and one entry of responses[] per request, in any
 * order, each with the id, the HTTP status, the headers and the body of that request's own
 * answer (so a 200 batch may hold 429s and 404s: classify each with graph-error.h). Graph
 * compares ids without regard to case and refuses a batch with two equal ones (400); so do we.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"

struct err;

/* Graph's limit on requests in one batch. */
#define GRAPH_BATCH_MAX 20u
/* The longest request id (ours are short counters). */
#define GRAPH_BATCH_MAX_ID 64u
/* The largest batch answer read: twenty calendarView pages of GRAPH_MAX_RESPONSE would not
 * fit, but twenty of the page sizes a batch is used for do, many times over. */
#define GRAPH_BATCH_MAX_RESPONSE (64u << 20)

struct graph_batch_header {
	const char *name;
	const char *value;
};

struct graph_batch_req {
	const char *id;     /* unique in the batch (without regard to case), 1..GRAPH_BATCH_MAX_ID
	                     * bytes of letters, digits, '-', '_' or '.' */
	const char *method; /* "GET", "POST", "PATCH", "PUT" or "DELETE" */
	const char *url;    /* a path from graph-url.h ("/users/..."): relative, never absolute */
	const struct graph_batch_header *headers;
	size_t n_headers;
	/* NULL, or a JSON object as text, embedded as the request's body. Graph needs a
	 * Content-Type with a body: "application/json" is added unless headers has one. */
	const char *body_json;
};

/*
 * The batch body for reqs[0..n) as an owned compact JSON string in *out_json. -EINVAL with err
 * naming the request for: n of 0 or over GRAPH_BATCH_MAX, a missing, malformed or repeated id,
 * another method, a url that is empty, absolute ("scheme://", "//host") or over GRAPH_MAX_URL,
 * a header without a name or value or with a control byte, or a body that is not a JSON
 * object (duplicate member names refused).
 */
ATTR_NODISCARD int graph_batch_build(const struct graph_batch_req *reqs, size_t n, char **out_json,
                                     struct err *err);

/* One request's answer. Strings owned. */
struct graph_batch_resp {
	bool found;             /* false: the batch answer had no entry for this request */
	long status;            /* the HTTP status (100..599); 0 when not found */
	int64_t retry_after_ms; /* its Retry-After header (graph_retry_after_ms), -1 when none */
	char *content_type;     /* its Content-Type header, or NULL */
	/* The body: a JSON object or array as compact JSON text (feed it to graph_page_read,
	 * graph_error_classify, ...), or for a string body (Graph's base64 of a non-JSON answer)
	 * the string itself with body_is_text set. NULL when there was none (or null). */
	char *body;
	size_t body_len;
	bool body_is_text;
	char *error; /* not found: "batch: no response for request 'x'"; else NULL */
};

/* A batch answer; resp[i] answers the request whose id was ids[i]. */
struct graph_batch_answer {
	struct graph_batch_resp *resp;
	size_t n;
	size_t n_unknown; /* entries whose id matched no request (ignored) */
};

/*
 * Reads a batch answer (len bytes) for the requests ids[0..n) into *out (zeroed first; clear it
 * with graph_batch_answer_clear() on success, on failure it is left zeroed). A request the
 * answer does not mention is not an error of the whole: its entry has found false and an
 * error. 0; -EMSGSIZE over GRAPH_BATCH_MAX_RESPONSE; -EPROTO when the answer is not a batch
 * answer: not JSON, no responses array, an entry that is not an object, without a string id,
 * without an integer status in 100..599, with headers that are not an object of strings, or
 * two entries with the same id. err says what and where.
 */
ATTR_NODISCARD int graph_batch_read(const char *json, size_t len, const char *const *ids, size_t n,
                                    struct graph_batch_answer *out, struct err *err);

/* Frees everything a holds and leaves it zeroed; NULL-safe. */
void graph_batch_answer_clear(struct graph_batch_answer *a);
