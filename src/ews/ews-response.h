/* SPDX-License-Identifier: MIT */
/*
 * ews-response.h: parses one EWS response envelope (or an Autodiscover GetUserSettings
 * answer, or a SOAP fault) into plain C structures. Elements are matched by namespace where
 * Exchange is consistent and by local name where it is not (streaming m:Notification,
 * m:ErrorSubscriptionIds/m:SubscriptionId, fault detail). Parsing is bounded (input size,
 * element depth, element count), never loads DTDs or external entities, and any malformed
 * input gives a clear error, never a crash. Pure: no I/O.
 *
 * All strings in the structures are owned, NUL-terminated UTF-8, or NULL when the element
 * was absent. Times are UTC seconds; a has_* flag says whether the element was present.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"

struct err;

/* Deepest element nesting we accept; real responses stay under 15. */
#define EWS_MAX_DEPTH 64u

/* Most elements in one response. A 1,000-item CalendarView page has about 20,000; ten times
 * that leaves room for large pages while stopping a flood of empty elements before the tree
 * costs hundreds of MB (libxml2 needs about 120 bytes per node). */
#define EWS_MAX_ELEMENTS 200000u

enum ews_response_class {
	EWS_CLASS_SUCCESS = 0,
	EWS_CLASS_WARNING,
	EWS_CLASS_ERROR,
};

const char *ews_response_class_name(enum ews_response_class c); /* "Success", "Warning", "Error" */

/* t:Value pairs of m:MessageXml (or t:MessageXml in a fault detail) that calsync acts on. */
struct ews_message_xml {
	int64_t back_off_ms;           /* BackOffMilliseconds, -1 when absent */
	char *inner_code;              /* InnerErrorResponseCode */
	char *inner_text;              /* InnerErrorMessageText */
	char *policy;                  /* Policy (e.g. "MaxConcurrency") */
	int64_t max_concurrency_limit; /* MaxConcurrencyLimit, -1 when absent */
};

enum ews_event_type {
	EWS_EVENT_CREATED = 0,
	EWS_EVENT_MODIFIED,
	EWS_EVENT_DELETED,
	EWS_EVENT_MOVED,
	EWS_EVENT_COPIED,
	EWS_EVENT_NEWMAIL,
	EWS_EVENT_STATUS,
	EWS_EVENT_FREEBUSY,
};

/* "Created", "Modified", ... as calsync decode prints them. */
const char *ews_event_type_name(enum ews_event_type t);

struct ews_event {
	enum ews_event_type type;
	bool has_timestamp;
	int64_t timestamp_utc;
	char *watermark; /* pull events and StatusEvent; streaming events carry none */
	char *item_id;   /* t:ItemId/@Id, or NULL for a folder event */
	char *change_key;
	char *folder_id; /* t:FolderId/@Id for a folder event */
	char *parent_folder_id;
	char *old_item_id; /* Moved/Copied */
	char *old_folder_id;
	char *old_parent_folder_id;
};

/* One m:Notification (GetEvents) or m:Notification inside m:Notifications (streaming). */
struct ews_notification {
	char *subscription_id;
	char *previous_watermark; /* pull only */
	bool more_events;         /* pull only */
	struct ews_event *events;
	size_t n_events;
};

/* LegacyFreeBusyStatus (also BusyType in availability). */
enum ews_free_busy {
	EWS_FB_UNKNOWN = 0, /* absent or a value we do not know */
	EWS_FB_FREE,
	EWS_FB_TENTATIVE,
	EWS_FB_BUSY,
	EWS_FB_OOF,
	EWS_FB_WORKING_ELSEWHERE,
	EWS_FB_NO_DATA,
};

const char *ews_free_busy_name(enum ews_free_busy fb); /* "Busy", ...; NULL for UNKNOWN */

enum ews_sensitivity {
	EWS_SENS_UNKNOWN = 0,
	EWS_SENS_NORMAL,
	EWS_SENS_PERSONAL,
	EWS_SENS_PRIVATE,
	EWS_SENS_CONFIDENTIAL,
};

const char *ews_sensitivity_name(enum ews_sensitivity s);

enum ews_item_type {
	EWS_ITEM_UNKNOWN = 0,
	EWS_ITEM_SINGLE,
	EWS_ITEM_OCCURRENCE,
	EWS_ITEM_EXCEPTION,
	EWS_ITEM_RECURRING_MASTER,
};

const char *ews_item_type_name(enum ews_item_type t);

/* A t:CalendarItem (FindItem, GetItem, SyncFolderItems). Also used for other item kinds a
 * calendar folder may hold (t:MeetingRequest, ...), with is_calendar_item false. */
struct ews_cal_item {
	bool is_calendar_item;
	char *item_id;
	char *change_key;
	char *subject;
	char *location;
	char *organizer; /* Organizer/Mailbox/EmailAddress, else its Name */
	char *uid;
	char *start_tz_id; /* StartTimeZone/@Id */
	bool has_start, has_end, has_recurrence_id;
	int64_t start_utc;
	int64_t end_utc;
	int64_t recurrence_id_utc;
	bool has_all_day, all_day;
	bool has_cancelled, is_cancelled;
	enum ews_free_busy free_busy;
	enum ews_sensitivity sensitivity;
	enum ews_item_type item_type;
	char **categories;
	size_t n_categories;
};

enum ews_change_type {
	EWS_CHANGE_CREATE = 0,
	EWS_CHANGE_UPDATE,
	EWS_CHANGE_DELETE,
	EWS_CHANGE_READ_FLAG,
};

const char *ews_change_type_name(enum ews_change_type t); /* "Create", ... */

struct ews_sync_change {
	enum ews_change_type type;
	char *item_id; /* also set for Create/Update, from the item */
	char *change_key;
	struct ews_cal_item *item; /* Create/Update; NULL otherwise */
	bool is_read;              /* ReadFlagChange */
};

struct ews_fb_event {
	int64_t start_utc; /* naive times are read as UTC (calsync asks in UTC) */
	int64_t end_utc;
	enum ews_free_busy busy_type;
};

struct ews_free_busy_view {
	char *type;   /* FreeBusyViewType, e.g. "FreeBusyMerged" */
	char *merged; /* MergedFreeBusy digits, or NULL */
	struct ews_fb_event *events;
	size_t n_events;
};

enum ews_connection_status {
	EWS_CONN_NONE = 0, /* no ConnectionStatus element */
	EWS_CONN_OK,
	EWS_CONN_CLOSED,
};

/* One ResponseMessage (for GetUserAvailability: one FreeBusyResponse). */
struct ews_message {
	enum ews_response_class cls;
	char *code; /* ResponseCode, e.g. "NoError" */
	char *text; /* MessageText */
	struct ews_message_xml mx;

	/* Subscribe */
	char *subscription_id;
	char *watermark;

	/* GetEvents, GetStreamingEvents */
	struct ews_notification *notifications;
	size_t n_notifications;
	enum ews_connection_status connection_status;
	char **error_subscription_ids;
	size_t n_error_subscription_ids;

	/* FindItem (RootFolder), GetItem (Items) */
	struct ews_cal_item *items;
	size_t n_items;
	bool has_includes_last, includes_last_item_in_range; /* FindItem and SyncFolderItems */
	int64_t total_items_in_view;                         /* -1 when absent */

	/* SyncFolderItems */
	char *sync_state;
	struct ews_sync_change *changes;
	size_t n_changes;

	/* GetFolder */
	char *folder_id;
	char *folder_change_key;
	int64_t total_count;  /* -1 when absent */
	bool has_commit_time; /* PR_LOCAL_COMMIT_TIME_MAX (0x670A) */
	int64_t commit_time_utc;
	int64_t deleted_count_total; /* PR_DELETED_COUNT_TOTAL (0x670B), -1 when absent */

	/* GetUserAvailability */
	bool has_free_busy_view;
	struct ews_free_busy_view free_busy_view;
};

/* A SOAP fault (HTTP 500 with an XML body). */
struct ews_fault {
	char *faultcode; /* e.g. "a:ErrorSchemaValidation", as sent */
	char *faultstring;
	char *response_code; /* detail/e:ResponseCode (or e:ErrorCode), e.g. "ErrorServerBusy" */
	char *message;       /* detail/e:Message */
	struct ews_message_xml mx;
};

/* One user of an Autodiscover GetUserSettings answer. */
struct ews_user_settings {
	char *mailbox;
	char *error_code; /* "NoError", "InvalidUser", ... */
	char *error_message;
	char *redirect_target;
	char *internal_ews_url;
	char *external_ews_url;
	char *grouping_information;
	char *cas_version;
	char *ews_supported_schemas;
};

struct ews_response {
	char *operation; /* "FindItem" for m:FindItemResponse, "GetUserSettings", NULL for a fault */
	char *server_version; /* "15.2.1748.10" from ServerVersionInfo, or NULL */
	bool is_fault;
	struct ews_fault fault;
	struct ews_message *messages;
	size_t n_messages;
	char *autodiscover_error; /* request-level ErrorCode of GetUserSettings */
	struct ews_user_settings *users;
	size_t n_users;
};

/*
 * Parses one envelope of len bytes. 0, or -EMSGSIZE (over EWS_MAX_RESPONSE, EWS_MAX_DEPTH or
 * EWS_MAX_ELEMENTS), or -EPROTO (not XML, not a SOAP envelope, or a known element with a value
 * that cannot be what it claims, such as a Start that is not a dateTime; err says which and
 * where: "line 3: t:Start: ..."). On error *out is left cleared. An EWS error inside a
 * well-formed response is not a parse error: it is reported in the messages.
 */
ATTR_NODISCARD int ews_response_parse(const char *xml, size_t len, struct ews_response *out,
                                      struct err *err);

/* Frees the strings one calendar item owns (for items a caller moved out of a response). */
void ews_cal_item_clear(struct ews_cal_item *it);

/* Frees everything r owns and zeroes it; NULL-safe and safe on a zeroed struct. */
void ews_response_clear(struct ews_response *r);
