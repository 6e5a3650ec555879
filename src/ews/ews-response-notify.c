/* SPDX-License-Identifier: MIT */
/*
 * ews-response-notify.c: reads the notifications of GetEvents (m:Notification) and
 * GetStreamingEvents (m:Notifications/m:Notification, m:ConnectionStatus): each event's kind,
 * time, watermark and ids; with the names of the event kinds.
 */
#include "ews/ews-response-int.h"

#include <errno.h>
#include <stdlib.h>

#include "base/err.h"

static const char *const event_names[] = {
	[EWS_EVENT_CREATED] = "Created", [EWS_EVENT_MODIFIED] = "Modified",
	[EWS_EVENT_DELETED] = "Deleted", [EWS_EVENT_MOVED] = "Moved",
	[EWS_EVENT_COPIED] = "Copied",   [EWS_EVENT_NEWMAIL] = "NewMail",
	[EWS_EVENT_STATUS] = "Status",   [EWS_EVENT_FREEBUSY] = "FreeBusyChanged",
};

const char *ews_event_type_name(enum ews_event_type t)
{
	return name_at(NAMES(event_names), t);
}

static void event_clear(struct ews_event *e)
{
	free(e->watermark);
	free(e->item_id);
	free(e->change_key);
	free(e->folder_id);
	free(e->parent_folder_id);
	free(e->old_item_id);
	free(e->old_folder_id);
	free(e->old_parent_folder_id);
}

static void notification_clear(struct ews_notification *n)
{
	free(n->subscription_id);
	free(n->previous_watermark);
	for (size_t i = 0; i < n->n_events; i++)
		event_clear(&n->events[i]);
	free(n->events);
}

void ews_resp_notify_clear(struct ews_message *m)
{
	free(m->subscription_id);
	free(m->watermark);
	for (size_t i = 0; i < m->n_notifications; i++)
		notification_clear(&m->notifications[i]);
	free(m->notifications);
	ews_resp_strv_free(m->error_subscription_ids, m->n_error_subscription_ids);
}

static const struct {
	const char *element;
	enum ews_event_type type;
} event_elements[] = {
	{"CreatedEvent", EWS_EVENT_CREATED}, {"ModifiedEvent", EWS_EVENT_MODIFIED},
	{"DeletedEvent", EWS_EVENT_DELETED}, {"MovedEvent", EWS_EVENT_MOVED},
	{"CopiedEvent", EWS_EVENT_COPIED},   {"NewMailEvent", EWS_EVENT_NEWMAIL},
	{"StatusEvent", EWS_EVENT_STATUS},   {"FreeBusyChangedEvent", EWS_EVENT_FREEBUSY},
};

static int parse_event(const xmlNode *n, struct ews_event *e, struct err *err)
{
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		if (!ns_is(c, NS_T))
			continue;
		if (is_local(c, "Watermark")) {
			ews_resp_set_text(&e->watermark, c);
		} else if (is_local(c, "TimeStamp")) {
			if (ews_resp_get_time(c, &e->timestamp_utc, err) != 0)
				return -EPROTO;
			e->has_timestamp = true;
		} else if (is_local(c, "ItemId")) {
			ews_resp_set_attr(&e->item_id, c, "Id");
			ews_resp_set_attr(&e->change_key, c, "ChangeKey");
		} else if (is_local(c, "FolderId")) {
			ews_resp_set_attr(&e->folder_id, c, "Id");
			ews_resp_set_attr(&e->change_key, c, "ChangeKey");
		} else if (is_local(c, "ParentFolderId")) {
			ews_resp_set_attr(&e->parent_folder_id, c, "Id");
		} else if (is_local(c, "OldItemId")) {
			ews_resp_set_attr(&e->old_item_id, c, "Id");
		} else if (is_local(c, "OldFolderId")) {
			ews_resp_set_attr(&e->old_folder_id, c, "Id");
		} else if (is_local(c, "OldParentFolderId")) {
			ews_resp_set_attr(&e->old_parent_folder_id, c, "Id");
		}
	}
	return 0;
}

/* m:Notification (GetEvents), or m:Notifications/m:Notification (streaming). */
int ews_resp_notification(const xmlNode *n, struct ews_message *m, struct err *err)
{
	struct ews_notification *no;

	m->notifications = grow(m->notifications, m->n_notifications, sizeof(*m->notifications));
	no = &m->notifications[m->n_notifications++];
	*no = (struct ews_notification){0};
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		if (!ns_is(c, NS_T))
			continue;
		if (is_local(c, "SubscriptionId")) {
			ews_resp_set_text(&no->subscription_id, c);
		} else if (is_local(c, "PreviousWatermark")) {
			ews_resp_set_text(&no->previous_watermark, c);
		} else if (is_local(c, "MoreEvents")) {
			if (ews_resp_get_bool(c, &no->more_events, err) != 0)
				return -EPROTO;
		} else {
			for (size_t i = 0; i < sizeof(event_elements) / sizeof(event_elements[0]);
			     i++) {
				struct ews_event *e;

				if (!is_local(c, event_elements[i].element))
					continue;
				no->events = grow(no->events, no->n_events, sizeof(*no->events));
				e = &no->events[no->n_events++];
				*e = (struct ews_event){.type = event_elements[i].type};
				if (parse_event(c, e, err) != 0)
					return -EPROTO;
				break;
			}
		}
	}
	return 0;
}

int ews_resp_connection_status(const xmlNode *n, struct ews_message *m, struct err *err)
{
	char *s = ews_resp_text_dup(n);
	int rc = 0;

	if (s != NULL && strcmp(s, "OK") == 0)
		m->connection_status = EWS_CONN_OK;
	else if (s != NULL && strcmp(s, "Closed") == 0)
		m->connection_status = EWS_CONN_CLOSED;
	else
		rc = ews_resp_bad(err, n, "not OK or Closed: '%.40s'", s != NULL ? s : "(nil)");
	free(s);
	return rc;
}
