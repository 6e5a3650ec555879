/* SPDX-License-Identifier: MIT */
/* api-json.c: store rows as the HTTP API's JSON, and presence changes as Server-Sent Events. */
#include "api/api-json.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/iso8601.h"
#include "base/xalloc.h"
#include "cal/occurrence.h"
#include "store/store.h"
#include "webhook/webhook.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* A string, or null for NULL or text that is not UTF-8. */
static json_t *str(const char *s)
{
	json_t *j;

	if (s == NULL)
		return json_null();
	j = json_string(s);
	return j != NULL ? j : json_null();
}

_Static_assert(STORE_MB_PARKED + 1 == API_MB_STATES, "API_MB_STATES counts enum store_mb_state");

const char *api_backend_name(enum api_backend b)
{
	return b == API_BACKEND_GRAPH ? "graph" : "ews";
}

enum api_backend api_backend_of(const struct store_mailbox *mb)
{
	return mb->backend != NULL && strcmp(mb->backend, "graph") == 0 ? API_BACKEND_GRAPH
	                                                                : API_BACKEND_EWS;
}

void api_backend_count(const struct store_mailbox *mbs, size_t n, struct api_backend_counts *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		enum api_backend b = api_backend_of(&mbs[i]);

		out->total[b]++;
		if ((unsigned)mbs[i].state < API_MB_STATES)
			out->state[b][mbs[i].state]++;
	}
}

json_t *api_json_time(int64_t utc)
{
	char buf[ISO8601_FORMAT_SIZE];

	if (utc == 0 || iso8601_format(utc, buf, NULL) != 0)
		return json_null();
	return json_string(buf);
}

json_t *api_json_presence(const struct store_presence *p)
{
	static const struct store_presence none = {0};

	if (p == NULL)
		p = &none;
	return json_pack(
		"{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "state", str(p->state), "profile",
		str(p->profile), "forward", str(p->forward), "subject", str(p->subject), "since",
		api_json_time(p->since_utc), "until", api_json_time(p->until_utc), "next_change",
		api_json_time(p->next_change_utc), "updated", api_json_time(p->updated_utc));
}

json_t *api_json_user(const struct store_mailbox *mb, const struct store_presence *p)
{
	json_t *window = json_null();

	if (mb->window_start_utc != 0 || mb->window_end_utc != 0)
		window = json_pack("{s:o, s:o}", "start", api_json_time(mb->window_start_utc),
		                   "end", api_json_time(mb->window_end_utc));
	return json_pack(
		"{s:o, s:s, s:s, s:o, s:o, s:o, s:b, s:o}", "smtp", str(mb->smtp), "state",
		store_mb_state_name(mb->state), "backend", api_backend_name(api_backend_of(mb)),
		"parked_reason", str(mb->parked_reason), "last_refresh",
		api_json_time(mb->last_refresh_utc), "window", window, "by_api", (int)mb->by_api,
		"presence", p != NULL ? api_json_presence(p) : json_null());
}

json_t *api_json_occurrence(const struct cal_occurrence *o)
{
	const char *fb = (unsigned)o->free_busy < N_ELEMS(cal_fb_names) ? cal_fb_names[o->free_busy]
	                                                                : "unknown";
	const char *type = (unsigned)o->type < N_ELEMS(cal_item_type_names)
	                           ? cal_item_type_names[o->type]
	                           : "single";
	json_t *j, *cats;

	j = json_pack("{s:o, s:o, s:o, s:b, s:s, s:s, s:b, s:b}", "id", str(o->item_id), "start",
	              api_json_time(o->start_utc), "end", api_json_time(o->end_utc), "all_day",
	              (int)o->all_day, "free_busy", fb, "type", type, "cancelled",
	              (int)o->is_cancelled, "private", (int)o->is_private);
	if (j == NULL || o->is_private)
		return j;
	/* Details only for items that are not private: a private item's subject, location,
	 * organizer and categories never leave calsync. */
	cats = json_array();
	for (size_t i = 0; i < o->n_categories; i++)
		json_array_append_new(cats, str(o->categories[i]));
	json_object_set_new(j, "subject", str(o->subject));
	json_object_set_new(j, "location", str(o->location));
	json_object_set_new(j, "organizer", str(o->organizer));
	json_object_set_new(j, "categories", cats);
	return j;
}

int api_sse_append_event(struct buf *out, const struct store_presence_event *ev, struct err *err)
{
	char *data = NULL, *text;
	char head[64];
	size_t head_len, data_len = 0;
	int n, rc;

	/* The same object as a docs/output.md line: exactly a webhook body. Compact JSON has no raw
	 * newline (one inside a string is escaped), so the object is one data: line, as SSE
	 * requires. */
	rc = webhook_body(ev, &data, &data_len, err);
	if (rc != 0)
		return rc;
	n = snprintf(head, sizeof(head), "id: %" PRId64 "\nevent: presence\ndata: ", ev->id);
	head_len = (size_t)n;
	/* One append, so that a full buffer takes all of the event or none of it. */
	text = xmalloc(head_len + data_len + 2);
	memcpy(text, head, head_len);
	memcpy(text + head_len, data, data_len);
	memcpy(text + head_len + data_len, "\n\n", 2);
	rc = buf_append(out, text, head_len + data_len + 2, err);
	free(text);
	free(data);
	return rc;
}
