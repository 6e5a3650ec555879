/* SPDX-License-Identifier: MIT */
/*
 * ews-pull.c: EWS pull notifications: a mailbox's GetEvents poll from its watermark, and what its
 * answer says (the newest watermark, whether anything changed, whether more events wait).
 */
#include "sync/ews-backend-int.h"

#include <string.h>

int sync_ews_poll(struct sync_backend *b, struct mb *mb, struct err *err)
{
	struct ews_header h;
	struct ews_call_opts o;
	int rc;

	sync_ews_header(mb, &h, mb->smtp);
	h.tz_utc = false;
	rc = ews_req_get_events(&h, mb->sub_id, mb->watermark, &b->req, err);
	if (rc < 0)
		return rc;
	sync_ews_opts(mb, &o);
	return sync_ews_post(b, mb, SYNC_OP_GET_EVENTS, &o, err);
}

void sync_ews_poll_answer(const struct ews_response *resp, struct sync_answer *a)
{
	const struct ews_message *m = &resp->messages[0];

	for (size_t n = 0; n < m->n_notifications; n++) {
		const struct ews_notification *no = &m->notifications[n];

		a->more = a->more || no->more_events;
		for (size_t k = 0; k < no->n_events; k++) {
			if (no->events[k].watermark)
				a->watermark = no->events[k].watermark;
			a->changed = a->changed || no->events[k].type != EWS_EVENT_STATUS;
		}
	}
}
