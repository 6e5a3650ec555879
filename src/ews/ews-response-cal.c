/* SPDX-License-Identifier: MIT */
/*
 * ews-response-cal.c: reads what the calendar operations answer: the items of FindItem
 * (m:RootFolder) and GetItem (m:Items), the changes of SyncFolderItems, the folder GetFolder
 * reads with its two change-probe properties, and GetUserAvailability's free/busy views; with
 * the names of their enumerations.
 */
#include "ews/ews-response-int.h"

#include <errno.h>
#include <stdlib.h>

#include "base/err.h"

/* MAPI property tags of the two folder properties GetFolder asks for (EWS-REFERENCE.md 8.5). */
#define TAG_LOCAL_COMMIT_TIME_MAX 0x670A
#define TAG_DELETED_COUNT_TOTAL   0x670B

static const char *const free_busy_names[] = {
	[EWS_FB_UNKNOWN] = NULL,
	[EWS_FB_FREE] = "Free",
	[EWS_FB_TENTATIVE] = "Tentative",
	[EWS_FB_BUSY] = "Busy",
	[EWS_FB_OOF] = "OOF",
	[EWS_FB_WORKING_ELSEWHERE] = "WorkingElsewhere",
	[EWS_FB_NO_DATA] = "NoData",
};

static const char *const sensitivity_names[] = {
	[EWS_SENS_UNKNOWN] = NULL,
	[EWS_SENS_NORMAL] = "Normal",
	[EWS_SENS_PERSONAL] = "Personal",
	[EWS_SENS_PRIVATE] = "Private",
	[EWS_SENS_CONFIDENTIAL] = "Confidential",
};

static const char *const item_type_names[] = {
	[EWS_ITEM_UNKNOWN] = NULL,
	[EWS_ITEM_SINGLE] = "Single",
	[EWS_ITEM_OCCURRENCE] = "Occurrence",
	[EWS_ITEM_EXCEPTION] = "Exception",
	[EWS_ITEM_RECURRING_MASTER] = "RecurringMaster",
};

static const char *const change_names[] = {
	[EWS_CHANGE_CREATE] = "Create",
	[EWS_CHANGE_UPDATE] = "Update",
	[EWS_CHANGE_DELETE] = "Delete",
	[EWS_CHANGE_READ_FLAG] = "ReadFlagChange",
};

const char *ews_free_busy_name(enum ews_free_busy fb)
{
	return name_at(NAMES(free_busy_names), fb);
}

const char *ews_sensitivity_name(enum ews_sensitivity s)
{
	return name_at(NAMES(sensitivity_names), s);
}

const char *ews_item_type_name(enum ews_item_type t)
{
	return name_at(NAMES(item_type_names), t);
}

const char *ews_change_type_name(enum ews_change_type t)
{
	return name_at(NAMES(change_names), t);
}

void ews_cal_item_clear(struct ews_cal_item *it)
{
	free(it->item_id);
	free(it->change_key);
	free(it->subject);
	free(it->location);
	free(it->organizer);
	free(it->uid);
	free(it->start_tz_id);
	ews_resp_strv_free(it->categories, it->n_categories);
}

/* The changes of a SyncFolderItems answer, and each change's item. */
static void changes_clear(struct ews_sync_change *changes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(changes[i].item_id);
		free(changes[i].change_key);
		if (changes[i].item != NULL)
			ews_cal_item_clear(changes[i].item);
		free(changes[i].item);
	}
	free(changes);
}

void ews_resp_cal_clear(struct ews_message *m)
{
	for (size_t i = 0; i < m->n_items; i++)
		ews_cal_item_clear(&m->items[i]);
	free(m->items);
	free(m->sync_state);
	changes_clear(m->changes, m->n_changes);
	free(m->folder_id);
	free(m->folder_change_key);
	free(m->free_busy_view.type);
	free(m->free_busy_view.merged);
	free(m->free_busy_view.events);
}

/* t:Organizer/t:Mailbox: the SMTP address, else the display name. */
static void parse_organizer(const xmlNode *n, struct ews_cal_item *it)
{
	for (const xmlNode *mb = first_el(n); mb != NULL; mb = after_el(mb)) {
		char *email = NULL;
		char *name = NULL;

		if (!is_el(mb, NS_T, "Mailbox"))
			continue;
		for (const xmlNode *c = first_el(mb); c != NULL; c = after_el(c)) {
			if (is_el(c, NS_T, "EmailAddress"))
				ews_resp_set_text(&email, c);
			else if (is_el(c, NS_T, "Name"))
				ews_resp_set_text(&name, c);
		}
		free(it->organizer);
		if (email != NULL && email[0] != '\0') {
			it->organizer = email;
			free(name);
		} else {
			it->organizer = name;
			free(email);
		}
	}
}

/* A t:CalendarItem, or another item kind (t:Message, t:MeetingRequest, ...), read the same
 * way: what it does not have stays absent. */
static int parse_item(const xmlNode *n, struct ews_cal_item *it, struct err *err)
{
	it->is_calendar_item = is_local(n, "CalendarItem");
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		int rc = 0;

		if (!ns_is(c, NS_T))
			continue;
		if (is_local(c, "ItemId")) {
			ews_resp_set_attr(&it->item_id, c, "Id");
			ews_resp_set_attr(&it->change_key, c, "ChangeKey");
		} else if (is_local(c, "Subject")) {
			ews_resp_set_text(&it->subject, c);
		} else if (is_local(c, "Location")) {
			ews_resp_set_text(&it->location, c);
		} else if (is_local(c, "UID")) {
			ews_resp_set_text(&it->uid, c);
		} else if (is_local(c, "Organizer")) {
			parse_organizer(c, it);
		} else if (is_local(c, "StartTimeZone")) {
			ews_resp_set_attr(&it->start_tz_id, c, "Id");
		} else if (is_local(c, "Start")) {
			rc = ews_resp_get_time(c, &it->start_utc, err);
			it->has_start = rc == 0;
		} else if (is_local(c, "End")) {
			rc = ews_resp_get_time(c, &it->end_utc, err);
			it->has_end = rc == 0;
		} else if (is_local(c, "RecurrenceId")) {
			rc = ews_resp_get_time(c, &it->recurrence_id_utc, err);
			it->has_recurrence_id = rc == 0;
		} else if (is_local(c, "IsAllDayEvent")) {
			rc = ews_resp_get_bool(c, &it->all_day, err);
			it->has_all_day = rc == 0;
		} else if (is_local(c, "IsCancelled")) {
			rc = ews_resp_get_bool(c, &it->is_cancelled, err);
			it->has_cancelled = rc == 0;
		} else if (is_local(c, "LegacyFreeBusyStatus")) {
			it->free_busy = ews_resp_enum_of(c, NAMES(free_busy_names));
		} else if (is_local(c, "Sensitivity")) {
			it->sensitivity = ews_resp_enum_of(c, NAMES(sensitivity_names));
		} else if (is_local(c, "CalendarItemType")) {
			it->item_type = ews_resp_enum_of(c, NAMES(item_type_names));
		} else if (is_local(c, "Categories")) {
			ews_resp_strv_free(it->categories, it->n_categories);
			it->categories = NULL;
			it->n_categories = 0;
			for (const xmlNode *v = first_el(c); v != NULL; v = after_el(v)) {
				if (is_el(v, NS_T, "String"))
					ews_resp_push_str(&it->categories, &it->n_categories, v);
			}
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Every item element of an m:Items or t:Items container. */
int ews_resp_items(const xmlNode *n, struct ews_message *m, struct err *err)
{
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		struct ews_cal_item *it;

		if (!ns_is(c, NS_T))
			continue;
		m->items = grow(m->items, m->n_items, sizeof(*m->items));
		it = &m->items[m->n_items++];
		*it = (struct ews_cal_item){0};
		if (parse_item(c, it, err) != 0)
			return -EPROTO;
	}
	return 0;
}

/* FindItem's m:RootFolder: the paging attributes and t:Items. */
int ews_resp_root_folder(const xmlNode *n, struct ews_message *m, struct err *err)
{
	bool has_total = false;

	if (ews_resp_attr_int64(n, "TotalItemsInView", &m->total_items_in_view, &has_total, err) !=
	            0 ||
	    ews_resp_attr_bool(n, "IncludesLastItemInRange", &m->includes_last_item_in_range,
	                       &m->has_includes_last, err) != 0)
		return -EPROTO;
	if (!has_total)
		m->total_items_in_view = -1;
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		if (is_el(c, NS_T, "Items") && ews_resp_items(c, m, err) != 0)
			return -EPROTO;
	}
	return 0;
}

/* SyncFolderItems' m:Changes. */
int ews_resp_changes(const xmlNode *n, struct ews_message *m, struct err *err)
{
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		struct ews_sync_change *ch;
		enum ews_change_type type;

		if (!ns_is(c, NS_T))
			continue;
		if (is_local(c, "Create"))
			type = EWS_CHANGE_CREATE;
		else if (is_local(c, "Update"))
			type = EWS_CHANGE_UPDATE;
		else if (is_local(c, "Delete"))
			type = EWS_CHANGE_DELETE;
		else if (is_local(c, "ReadFlagChange"))
			type = EWS_CHANGE_READ_FLAG;
		else
			continue;
		m->changes = grow(m->changes, m->n_changes, sizeof(*m->changes));
		ch = &m->changes[m->n_changes++];
		*ch = (struct ews_sync_change){.type = type};
		for (const xmlNode *d = first_el(c); d != NULL; d = after_el(d)) {
			if (!ns_is(d, NS_T))
				continue;
			if (is_local(d, "ItemId")) {
				ews_resp_set_attr(&ch->item_id, d, "Id");
				ews_resp_set_attr(&ch->change_key, d, "ChangeKey");
			} else if (is_local(d, "IsRead")) {
				if (ews_resp_get_bool(d, &ch->is_read, err) != 0)
					return -EPROTO;
			} else if ((type == EWS_CHANGE_CREATE || type == EWS_CHANGE_UPDATE) &&
			           ch->item == NULL) {
				ch->item = xcalloc(1, sizeof(*ch->item));
				if (parse_item(d, ch->item, err) != 0)
					return -EPROTO;
				free(ch->item_id);
				free(ch->change_key);
				ch->item_id = ch->item->item_id ? xstrdup(ch->item->item_id) : NULL;
				ch->change_key =
					ch->item->change_key ? xstrdup(ch->item->change_key) : NULL;
			}
		}
	}
	return 0;
}

/* "0x670A" or "26378": PropertyTag may be written in hex or in decimal. */
static bool parse_tag(const char *s, int64_t *out)
{
	size_t len = strlen(s);
	int64_t v = 0;

	ews_resp_trim(&s, &len);
	if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		if (len > 2 + 8)
			return false;
		for (size_t i = 2; i < len; i++) {
			char c = s[i];
			int d;

			if (c >= '0' && c <= '9')
				d = c - '0';
			else if (c >= 'a' && c <= 'f')
				d = c - 'a' + 10;
			else if (c >= 'A' && c <= 'F')
				d = c - 'A' + 10;
			else
				return false;
			v = v * 16 + d;
		}
		*out = v;
		return true;
	}
	return ews_resp_parse_int64(s, len, out) && *out >= 0;
}

/* t:ExtendedProperty of a folder: PR_LOCAL_COMMIT_TIME_MAX and PR_DELETED_COUNT_TOTAL. */
static int parse_extended_property(const xmlNode *n, struct ews_message *m, struct err *err)
{
	int64_t tag = -1;

	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		if (is_el(c, NS_T, "ExtendedFieldURI")) {
			char *s = ews_resp_attr_dup(c, "PropertyTag");
			bool ok = s == NULL || parse_tag(s, &tag);

			if (!ok)
				(void)ews_resp_bad(err, c, "PropertyTag is not a number: '%.40s'",
				                   s);
			free(s);
			if (!ok)
				return -EPROTO;
		} else if (is_el(c, NS_T, "Value")) {
			if (tag == TAG_LOCAL_COMMIT_TIME_MAX) {
				if (ews_resp_get_time(c, &m->commit_time_utc, err) != 0)
					return -EPROTO;
				m->has_commit_time = true;
			} else if (tag == TAG_DELETED_COUNT_TOTAL) {
				if (ews_resp_get_int64(c, &m->deleted_count_total, err) != 0)
					return -EPROTO;
			}
		}
	}
	return 0;
}

/* GetFolder's m:Folders: the first folder (calsync asks for one). */
int ews_resp_folders(const xmlNode *n, struct ews_message *m, struct err *err)
{
	const xmlNode *f = first_el(n);

	while (f != NULL && !ns_is(f, NS_T))
		f = after_el(f);
	if (f == NULL)
		return 0;
	for (const xmlNode *c = first_el(f); c != NULL; c = after_el(c)) {
		if (!ns_is(c, NS_T))
			continue;
		if (is_local(c, "FolderId")) {
			ews_resp_set_attr(&m->folder_id, c, "Id");
			ews_resp_set_attr(&m->folder_change_key, c, "ChangeKey");
		} else if (is_local(c, "TotalCount")) {
			if (ews_resp_get_int64(c, &m->total_count, err) != 0)
				return -EPROTO;
		} else if (is_local(c, "ExtendedProperty")) {
			if (parse_extended_property(c, m, err) != 0)
				return -EPROTO;
		}
	}
	return 0;
}

/* A t:CalendarEvent of a free/busy view. Its times may be naive: read as UTC, which is what
 * calsync asks for. */
static int parse_fb_event(const xmlNode *n, struct ews_free_busy_view *v, struct err *err)
{
	struct ews_fb_event *e;

	v->events = grow(v->events, v->n_events, sizeof(*v->events));
	e = &v->events[v->n_events++];
	*e = (struct ews_fb_event){0};
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		if (is_el(c, NS_T, "StartTime")) {
			if (ews_resp_get_time(c, &e->start_utc, err) != 0)
				return -EPROTO;
		} else if (is_el(c, NS_T, "EndTime")) {
			if (ews_resp_get_time(c, &e->end_utc, err) != 0)
				return -EPROTO;
		} else if (is_el(c, NS_T, "BusyType")) {
			e->busy_type = ews_resp_enum_of(c, NAMES(free_busy_names));
		}
	}
	return 0;
}

/* GetUserAvailability's m:FreeBusyView. */
static int parse_free_busy_view(const xmlNode *n, struct ews_message *m, struct err *err)
{
	struct ews_free_busy_view *v = &m->free_busy_view;

	m->has_free_busy_view = true;
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		if (!ns_is(c, NS_T))
			continue;
		if (is_local(c, "FreeBusyViewType")) {
			ews_resp_set_text(&v->type, c);
		} else if (is_local(c, "MergedFreeBusy")) {
			ews_resp_set_text(&v->merged, c);
		} else if (is_local(c, "CalendarEventArray")) {
			for (const xmlNode *ev = first_el(c); ev != NULL; ev = after_el(ev)) {
				if (is_el(ev, NS_T, "CalendarEvent") &&
				    parse_fb_event(ev, v, err) != 0)
					return -EPROTO;
			}
		}
	}
	return 0;
}

/* A GetUserAvailability m:FreeBusyResponse: its m:ResponseMessage and m:FreeBusyView. */
int ews_resp_free_busy_response(const xmlNode *n, struct ews_message *m, struct err *err)
{
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		if (is_el(c, NS_M, "ResponseMessage")) {
			if (ews_resp_message(c, m, err) != 0)
				return -EPROTO;
		} else if (is_el(c, NS_M, "FreeBusyView")) {
			if (parse_free_busy_view(c, m, err) != 0)
				return -EPROTO;
		}
	}
	return 0;
}
