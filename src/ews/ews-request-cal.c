/* SPDX-License-Identifier: MIT */
/*
 * ews-request-cal.c: writes the calendar requests: FindItem with a CalendarView, GetItem,
 * SyncFolderItems and GetFolder of the calendar folder, and GetUserAvailability.
 */
#include "ews/ews-request.h"

#include <errno.h>
#include <limits.h>

#include "base/buf.h"
#include "base/err.h"
#include "ews/ews-request-int.h"

/* MergedFreeBusyIntervalInMinutes, enforced by the Availability service
 * (ErrorInvalidMergedFreeBusyInterval). */
#define FB_INTERVAL_MIN 5u
#define FB_INTERVAL_MAX 1440u

/* "YYYY-MM-DDTHH:MM:SS" without the 'Z', and its NUL. */
#define NAIVE_TIME_LEN 19u

/* The FindItem shape of ews-request.h; GetItem adds the last two. */
static const char *const calendar_props[] = {
	"item:Subject",
	"item:Sensitivity",
	"item:Categories",
	"calendar:Start",
	"calendar:End",
	"calendar:IsAllDayEvent",
	"calendar:LegacyFreeBusyStatus",
	"calendar:Location",
	"calendar:Organizer",
	"calendar:CalendarItemType",
	"calendar:IsCancelled",
	"calendar:UID",
	"calendar:RecurrenceId",
	"calendar:StartTimeZone",
};

#define N_FIND_PROPS    12u
#define N_GETITEM_PROPS (sizeof(calendar_props) / sizeof(calendar_props[0]))
_Static_assert(N_GETITEM_PROPS == N_FIND_PROPS + 2, "GetItem asks for two more properties");

/* m:ItemShape: IdOnly plus the first n of calendar_props. */
static void item_shape(struct ews_req_writer *w, size_t n_props)
{
	start(w, "m", "ItemShape");
	text_elem(w, "t", "BaseShape", "IdOnly");
	if (n_props > 0) {
		start(w, "t", "AdditionalProperties");
		for (size_t i = 0; i < n_props; i++) {
			start(w, "t", "FieldURI");
			attr(w, "FieldURI", calendar_props[i]);
			end(w);
		}
		end(w);
	}
	end(w);
}

int ews_req_find_calendar(const struct ews_header *h, const struct ews_find_calendar *r,
                          struct buf *out, struct err *err)
{
	static const char op[] = "FindItem";
	char start_s[ISO8601_FORMAT_SIZE];
	char end_s[ISO8601_FORMAT_SIZE];
	struct ews_req_header hd;
	struct ews_req_writer w;
	int rc;

	buf_reset(out);
	rc = ews_req_check_header(op, h, &hd, err);
	if (rc < 0)
		return rc;
	rc = ews_req_format_window(op, r->start_utc, r->end_utc, start_s, end_s, err);
	if (rc < 0)
		return rc;
	/* MaxEntriesReturned is an xs:int. */
	if (r->max_entries > INT_MAX)
		return err_set(err, -EINVAL, "%s: max_entries %u is above %d", op, r->max_entries,
		               INT_MAX);

	ews_req_begin_ews(&w, out, &hd);
	start(&w, "m", op);
	attr(&w, "Traversal", "Shallow");
	item_shape(&w, N_FIND_PROPS);
	start(&w, "m", "CalendarView");
	if (r->max_entries > 0)
		attr_uint(&w, "MaxEntriesReturned", r->max_entries);
	attr(&w, "StartDate", start_s);
	attr(&w, "EndDate", end_s);
	end(&w);
	start(&w, "m", "ParentFolderIds");
	ews_req_calendar_folder(&w);
	end(&w);
	return ews_req_finish(&w, op, err);
}

int ews_req_get_item(const struct ews_header *h, const struct ews_item_ref *ids, size_t n_ids,
                     struct buf *out, struct err *err)
{
	static const char op[] = "GetItem";
	struct ews_req_header hd;
	struct ews_req_writer w;
	int rc;

	buf_reset(out);
	rc = ews_req_check_header(op, h, &hd, err);
	if (rc < 0)
		return rc;
	if (n_ids < 1 || n_ids > EWS_MAX_GETITEM_IDS || ids == NULL)
		return err_set(err, -EINVAL, "%s: n_ids %zu is outside 1..%u", op, n_ids,
		               EWS_MAX_GETITEM_IDS);
	for (size_t i = 0; i < n_ids; i++) {
		const struct ews_item_ref *ref = &ids[i];

		if (ref->master_id != NULL) {
			/* An occurrence is named by its master alone; a second id would leave it
			 * unclear which one the caller meant. */
			if (ref->id != NULL)
				return err_set(err, -EINVAL,
				               "%s: ids[%zu] has both id and master_id", op, i);
			rc = ews_req_check_text(op, ref->master_id, false, err,
			                        "ids[%zu].master_id", i);
			if (rc < 0)
				return rc;
			/* InstanceIndex is a 1-based xs:int. */
			if (ref->instance_index < 1 || ref->instance_index > INT_MAX)
				return err_set(err, -EINVAL,
				               "%s: ids[%zu].instance_index %u is outside 1..%d",
				               op, i, ref->instance_index, INT_MAX);
		} else {
			rc = ews_req_check_text(op, ref->id, false, err, "ids[%zu].id", i);
			if (rc < 0)
				return rc;
		}
		rc = ews_req_check_text(op, ref->change_key, true, err, "ids[%zu].change_key", i);
		if (rc < 0)
			return rc;
	}

	ews_req_begin_ews(&w, out, &hd);
	start(&w, "m", op);
	item_shape(&w, N_GETITEM_PROPS);
	start(&w, "m", "ItemIds");
	for (size_t i = 0; i < n_ids; i++) {
		const struct ews_item_ref *ref = &ids[i];

		if (ref->master_id != NULL) {
			start(&w, "t", "OccurrenceItemId");
			attr(&w, "RecurringMasterId", ref->master_id);
			if (ref->change_key != NULL)
				attr(&w, "ChangeKey", ref->change_key);
			attr_uint(&w, "InstanceIndex", ref->instance_index);
		} else {
			start(&w, "t", "ItemId");
			attr(&w, "Id", ref->id);
			if (ref->change_key != NULL)
				attr(&w, "ChangeKey", ref->change_key);
		}
		end(&w);
	}
	end(&w);
	return ews_req_finish(&w, op, err);
}

int ews_req_sync_folder_items(const struct ews_header *h, const char *sync_state,
                              unsigned max_changes, struct buf *out, struct err *err)
{
	static const char op[] = "SyncFolderItems";
	struct ews_req_header hd;
	struct ews_req_writer w;
	int rc;

	buf_reset(out);
	rc = ews_req_check_header(op, h, &hd, err);
	if (rc < 0)
		return rc;
	rc = ews_req_check_text(op, sync_state, true, err, "sync_state");
	if (rc < 0)
		return rc;
	if (max_changes < 1 || max_changes > EWS_MAX_SYNC_CHANGES)
		return err_set(err, -EINVAL, "%s: max_changes %u is outside 1..%u", op, max_changes,
		               EWS_MAX_SYNC_CHANGES);

	/* Schema order: ItemShape, SyncFolderId, SyncState?, Ignore?, MaxChangesReturned,
	 * SyncScope?. SyncScope is left out: its default is NormalItems, and Exchange 2007 does
	 * not know the element. */
	ews_req_begin_ews(&w, out, &hd);
	start(&w, "m", op);
	item_shape(&w, 0);
	start(&w, "m", "SyncFolderId");
	ews_req_calendar_folder(&w);
	end(&w);
	if (sync_state != NULL)
		text_elem(&w, "m", "SyncState", sync_state);
	uint_elem(&w, "m", "MaxChangesReturned", max_changes);
	return ews_req_finish(&w, op, err);
}

static void extended_prop(struct ews_req_writer *w, const char *tag, const char *type)
{
	start(w, "t", "ExtendedFieldURI");
	attr(w, "PropertyTag", tag);
	attr(w, "PropertyType", type);
	end(w);
}

int ews_req_get_folder(const struct ews_header *h, bool commit_props, struct buf *out,
                       struct err *err)
{
	static const char op[] = "GetFolder";
	struct ews_req_header hd;
	struct ews_req_writer w;
	int rc;

	buf_reset(out);
	rc = ews_req_check_header(op, h, &hd, err);
	if (rc < 0)
		return rc;

	ews_req_begin_ews(&w, out, &hd);
	start(&w, "m", op);
	start(&w, "m", "FolderShape");
	text_elem(&w, "t", "BaseShape", "IdOnly");
	if (commit_props) {
		start(&w, "t", "AdditionalProperties");
		extended_prop(&w, "0x670A", "SystemTime"); /* PR_LOCAL_COMMIT_TIME_MAX */
		extended_prop(&w, "0x670B", "Integer");    /* PR_DELETED_COUNT_TOTAL */
		end(&w);
	}
	end(&w);
	start(&w, "m", "FolderIds");
	ews_req_calendar_folder(&w);
	end(&w);
	return ews_req_finish(&w, op, err);
}

/* The legacy t:SerializableTimeZoneTime of a zone without daylight saving time. */
static void utc_transition(struct ews_req_writer *w, const char *name)
{
	start(w, "t", name);
	text_elem(w, "t", "Bias", "0");
	text_elem(w, "t", "Time", "00:00:00");
	text_elem(w, "t", "DayOrder", "1");
	text_elem(w, "t", "Month", "1");
	text_elem(w, "t", "DayOfWeek", "Sunday");
	end(w);
}

int ews_req_get_user_availability(const struct ews_header *h, const struct ews_availability *r,
                                  struct buf *out, struct err *err)
{
	static const char op[] = "GetUserAvailability";
	char start_s[ISO8601_FORMAT_SIZE];
	char end_s[ISO8601_FORMAT_SIZE];
	struct ews_req_header hd;
	struct ews_req_writer w;
	int rc;

	buf_reset(out);
	rc = ews_req_check_header(op, h, &hd, err);
	if (rc < 0)
		return rc;
	if (r->n_mailboxes < 1 || r->n_mailboxes > EWS_MAX_AVAILABILITY_MAILBOXES ||
	    r->mailboxes == NULL)
		return err_set(err, -EINVAL, "%s: n_mailboxes %zu is outside 1..%u", op,
		               r->n_mailboxes, EWS_MAX_AVAILABILITY_MAILBOXES);
	for (size_t i = 0; i < r->n_mailboxes; i++) {
		rc = ews_req_check_text(op, r->mailboxes[i], false, err, "mailboxes[%zu]", i);
		if (rc < 0)
			return rc;
	}
	rc = ews_req_format_window(op, r->start_utc, r->end_utc, start_s, end_s, err);
	if (rc < 0)
		return rc;
	if (r->interval_min < FB_INTERVAL_MIN || r->interval_min > FB_INTERVAL_MAX)
		return err_set(err, -EINVAL, "%s: interval_min %u is outside %u..%u", op,
		               r->interval_min, FB_INTERVAL_MIN, FB_INTERVAL_MAX);
	/*
	 * The one place we write naive times. The Availability service reads TimeWindow in the
	 * request's t:TimeZone, which below is UTC, so these are the same instants; the Managed
	 * API sends TimeWindow without a zone too, and what a server whose own zone is not UTC
	 * makes of a 'Z' here is untested.
	 */
	start_s[NAIVE_TIME_LEN] = '\0';
	end_s[NAIVE_TIME_LEN] = '\0';

	/* The root is m:GetUserAvailabilityRequest; the schema mixes t: and m: children. */
	ews_req_begin_ews(&w, out, &hd);
	start(&w, "m", "GetUserAvailabilityRequest");
	start(&w, "t", "TimeZone");
	text_elem(&w, "t", "Bias", "0");
	utc_transition(&w, "StandardTime");
	utc_transition(&w, "DaylightTime");
	end(&w);
	start(&w, "m", "MailboxDataArray");
	for (size_t i = 0; i < r->n_mailboxes; i++) {
		start(&w, "t", "MailboxData");
		start(&w, "t", "Email");
		text_elem(&w, "t", "Address", r->mailboxes[i]);
		end(&w);
		text_elem(&w, "t", "AttendeeType", "Required");
		text_elem(&w, "t", "ExcludeConflicts", "false");
		end(&w);
	}
	end(&w);
	start(&w, "t", "FreeBusyViewOptions");
	start(&w, "t", "TimeWindow");
	text_elem(&w, "t", "StartTime", start_s);
	text_elem(&w, "t", "EndTime", end_s);
	end(&w);
	uint_elem(&w, "t", "MergedFreeBusyIntervalInMinutes", r->interval_min);
	text_elem(&w, "t", "RequestedView", "FreeBusyMerged");
	return ews_req_finish(&w, op, err);
}
