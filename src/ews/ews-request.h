/* SPDX-License-Identifier: MIT */
/*
 * ews-request.h: writes the EWS requests calsync sends, as complete SOAP 1.1 envelopes, with
 * libxml2's xmlTextWriter (which does the escaping). Every request validates against the EWS
 * schema Exchange 2019 serves (data/ews-schema; test-ews-request.c checks each one). Times are
 * written in UTC with 'Z', except GetUserAvailability's TimeWindow (see there). Pure: no I/O.
 *
 * All functions return 0 and append the request to out (which they reset first), or -EINVAL
 * with err naming the bad argument (an empty id, 201 subscription ids, a timeout out of range),
 * or -EMSGSIZE when out's maximum is too small. out is unchanged on error only in the sense
 * that its contents are then meaningless; callers reset it before reuse.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"
#include "ews/ews-types.h"

struct buf;
struct err;

/* RequestServerVersion written when ews_header.version is NULL. */
#define EWS_DEFAULT_VERSION "Exchange2013_SP1"

/* Most subscription ids in one GetStreamingEvents (Microsoft's guidance, EWS-REFERENCE 4.7). */
#define EWS_MAX_STREAM_IDS 200u

/* Most mailboxes in one GetUserAvailability (ErrorMailboxDataArrayTooBig above it). */
#define EWS_MAX_AVAILABILITY_MAILBOXES 100u

/* Most changes one SyncFolderItems may ask for (schema: 1..512). */
#define EWS_MAX_SYNC_CHANGES 512u

/* Most ids in one GetItem; Microsoft advises batches of about 10 (EWS-REFERENCE 8.1). */
#define EWS_MAX_GETITEM_IDS 100u

/*
 * The schema's spelling of a RequestServerVersion value (static, so a caller may keep it), or
 * NULL when the EWS schema Exchange 2019 serves does not know it.
 */
const char *ews_version_known(const char *version);

/* Whether a known RequestServerVersion has streaming notifications and FreeBusyChangedEvent
 * (Exchange2010_SP1 or later). */
bool ews_version_streams(const char *version);

/* The SOAP header of an EWS request. */
struct ews_header {
	const char *version;     /* RequestServerVersion, NULL = EWS_DEFAULT_VERSION */
	const char *impersonate; /* mailbox to impersonate, NULL = none */
	enum ews_id_type id_type;
	bool tz_utc; /* add TimeZoneContext Id="UTC" */
};

/* Event types to subscribe to (t:EventType values). */
enum ews_event_bits {
	EWS_EV_CREATED = 1u << 0,
	EWS_EV_DELETED = 1u << 1,
	EWS_EV_MODIFIED = 1u << 2,
	EWS_EV_MOVED = 1u << 3,
	EWS_EV_COPIED = 1u << 4,
	EWS_EV_NEWMAIL = 1u << 5,
	EWS_EV_FREEBUSY = 1u << 6,
};

/* What calsync subscribes to by default: everything that can change a calendar. */
#define EWS_EV_CALENDAR                                                                     \
	(EWS_EV_CREATED | EWS_EV_DELETED | EWS_EV_MODIFIED | EWS_EV_MOVED | EWS_EV_COPIED | \
	 EWS_EV_FREEBUSY)

struct ews_subscribe {
	bool streaming;        /* StreamingSubscriptionRequest, else PullSubscriptionRequest */
	unsigned events;       /* ews_event_bits, 0 = EWS_EV_CALENDAR */
	const char *watermark; /* pull only: resume from here; NULL = a fresh subscription */
	unsigned timeout_min;  /* pull only: 1..1440 minutes */
};

/* Subscribe to the (impersonated) mailbox's calendar folder. */
ATTR_NODISCARD int ews_req_subscribe(const struct ews_header *h, const struct ews_subscribe *r,
                                     struct buf *out, struct err *err);

ATTR_NODISCARD int ews_req_get_events(const struct ews_header *h, const char *subscription_id,
                                      const char *watermark, struct buf *out, struct err *err);

/* ids: 1..EWS_MAX_STREAM_IDS subscription ids; timeout_min: ConnectionTimeout, 1..30. */
ATTR_NODISCARD int ews_req_get_streaming_events(const struct ews_header *h, const char *const *ids,
                                                size_t n_ids, unsigned timeout_min, struct buf *out,
                                                struct err *err);

ATTR_NODISCARD int ews_req_unsubscribe(const struct ews_header *h, const char *subscription_id,
                                       struct buf *out, struct err *err);

/*
 * FindItem with a CalendarView over [start_utc, end_utc) of the calendar folder, with the item
 * shape calsync needs for presence and the agenda in one call: ItemId/ChangeKey, Subject,
 * Sensitivity, Categories, Start, End, IsAllDayEvent, LegacyFreeBusyStatus, Location,
 * Organizer, CalendarItemType, IsCancelled, UID. max_entries 0 omits MaxEntriesReturned.
 */
struct ews_find_calendar {
	int64_t start_utc;
	int64_t end_utc;
	unsigned max_entries;
};

ATTR_NODISCARD int ews_req_find_calendar(const struct ews_header *h,
                                         const struct ews_find_calendar *r, struct buf *out,
                                         struct err *err);

/* An item id for GetItem: an ItemId (change_key may be NULL), or, when master_id is set, the
 * instance_index-th occurrence of that recurring master (t:OccurrenceItemId). */
struct ews_item_ref {
	const char *id;
	const char *change_key;
	const char *master_id;
	unsigned instance_index; /* 1-based */
};

/* GetItem of 1..EWS_MAX_GETITEM_IDS calendar items, with the FindItem shape plus RecurrenceId
 * and StartTimeZone. */
ATTR_NODISCARD int ews_req_get_item(const struct ews_header *h, const struct ews_item_ref *ids,
                                    size_t n_ids, struct buf *out, struct err *err);

/* SyncFolderItems of the calendar folder, IdOnly; sync_state NULL = a full first sync;
 * max_changes 1..EWS_MAX_SYNC_CHANGES. */
ATTR_NODISCARD int ews_req_sync_folder_items(const struct ews_header *h, const char *sync_state,
                                             unsigned max_changes, struct buf *out,
                                             struct err *err);

/* GetFolder of the calendar folder; with commit_props, also PR_LOCAL_COMMIT_TIME_MAX (0x670A)
 * and PR_DELETED_COUNT_TOTAL (0x670B), the cheap "did anything change" probe. */
ATTR_NODISCARD int ews_req_get_folder(const struct ews_header *h, bool commit_props,
                                      struct buf *out, struct err *err);

/* GetUserAvailabilityRequest (FreeBusyMerged view) for 1..EWS_MAX_AVAILABILITY_MAILBOXES
 * mailboxes over [start_utc, end_utc), interval 5..1440 minutes; sent with a UTC t:TimeZone,
 * and with the TimeWindow as UTC times without 'Z', which the server reads in that zone. */
struct ews_availability {
	const char *const *mailboxes;
	size_t n_mailboxes;
	int64_t start_utc;
	int64_t end_utc;
	unsigned interval_min;
};

ATTR_NODISCARD int ews_req_get_user_availability(const struct ews_header *h,
                                                 const struct ews_availability *r, struct buf *out,
                                                 struct err *err);

/*
 * Autodiscover SOAP GetUserSettings for 1..100 mailboxes, asking for InternalEwsUrl,
 * ExternalEwsUrl, GroupingInformation, CasVersion and EwsSupportedSchemas. to_url is the
 * Autodiscover endpoint (wsa:To); version the a:RequestedServerVersion (NULL = "Exchange2013").
 * Not an EWS schema document: its shape follows EWS-REFERENCE.md 10.
 */
ATTR_NODISCARD int ews_req_get_user_settings(const char *const *mailboxes, size_t n_mailboxes,
                                             const char *to_url, const char *version,
                                             struct buf *out, struct err *err);
