/* SPDX-License-Identifier: MIT */
/*
 * test-ews-response.c: the response reader against every response in the msdocs fixtures,
 * the five envelopes of the wire fixture, faults, every truncation of each input, DTDs and
 * entities, the depth and size limits, time zones, and values that cannot be what they claim.
 */
#include "ews/ews-response.h"

#include <dirent.h>
#include <errno.h>
#include <sys/types.h>

#include "base/cs-limits.h"
#include "base/err.h"
#include "base/iso8601.h"
#include "base/xalloc.h"
#include "harness.h"

/* --- helpers ---------------------------------------------------------------------------- */

struct parsed {
	int rc;
	struct err err;
	struct ews_response r;
};

/*
 * Parses len bytes from an exact-size heap copy, so that AddressSanitizer catches any read past
 * the end and nothing can lean on a NUL that is not part of the input. Checks the contract on
 * failure: an error code, a message, and a cleared result.
 */
static struct parsed parse_n(const char *xml, size_t len)
{
	struct parsed p = {0};
	char *copy = xmalloc(len);

	memcpy(copy, xml, len);
	/* Garbage in the result, to check that a failure clears it. */
	p.r.n_messages = 42;
	p.rc = ews_response_parse(copy, len, &p.r, &p.err);
	free(copy);
	if (p.rc != 0) {
		CHECK(p.rc == -EPROTO || p.rc == -EMSGSIZE);
		CHECK_EQ(p.err.code, p.rc);
		CHECK(p.err.msg[0] != '\0');
		CHECK(p.r.n_messages == 0 && p.r.messages == NULL && p.r.operation == NULL);
	}
	return p;
}

static struct parsed parse(const char *xml)
{
	return parse_n(xml, strlen(xml));
}

/* Parses and insists on success, printing the error otherwise. */
static struct parsed parse_ok_n(const char *what, const char *xml, size_t len)
{
	struct parsed p = parse_n(xml, len);

	if (p.rc != 0)
		fprintf(stderr, "%s: %s\n", what, p.err.msg);
	CHECK_EQ(p.rc, 0);
	return p;
}

static struct parsed parse_ok(const char *xml)
{
	return parse_ok_n("inline document", xml, strlen(xml));
}

static int64_t utc(const char *iso)
{
	int64_t t = 0;

	if (iso8601_parse(iso, strlen(iso), &t, NULL, NULL) != 0)
		harness_fail(__FILE__, __LINE__, "bad test time '%s'", iso);
	return t;
}

static bool contains(const char *haystack, const char *needle)
{
	return strstr(haystack, needle) != NULL;
}

/* Reads a fixture below $EWS_FIXTURES_DIR into an owned buffer of exactly its size. */
static char *read_fixture(const char *rel, size_t *out_len)
{
	const char *dir = getenv("EWS_FIXTURES_DIR");
	char path[1024];
	FILE *f;
	char *data;
	long size;

	if (dir == NULL) {
		harness_fail(__FILE__, __LINE__,
		             "EWS_FIXTURES_DIR is not set (meson test sets it)");
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	f = fopen(path, "rb");
	if (f == NULL) {
		harness_fail(__FILE__, __LINE__, "cannot open %s", path);
		return NULL;
	}
	CHECK(fseek(f, 0, SEEK_END) == 0);
	size = ftell(f);
	CHECK(size > 0);
	rewind(f);
	data = xmalloc((size_t)size);
	CHECK_EQ(fread(data, 1, (size_t)size, f), size);
	fclose(f);
	*out_len = (size_t)size;
	return data;
}

/* The length up to the end of the root's closing tag: what follows is only whitespace. */
static size_t document_end(const char *xml, size_t len)
{
	while (len > 0 && xml[len - 1] != '>')
		len--;
	return len;
}

/* Every proper prefix of a document fails cleanly; the whole of it parses. */
static void check_truncations(const char *what, const char *xml, size_t len)
{
	size_t end = document_end(xml, len);
	size_t failures = 0;

	for (size_t i = 0; i < end; i++) {
		struct parsed p = parse_n(xml, i);

		if (p.rc == 0) {
			if (failures++ == 0)
				fprintf(stderr, "%s: prefix of %zu bytes parsed\n", what, i);
			ews_response_clear(&p.r);
		}
	}
	CHECK_EQ(failures, 0);
	for (size_t i = end; i <= len; i++) {
		struct parsed p = parse_ok_n(what, xml, i);

		ews_response_clear(&p.r);
	}
}

/* --- msdocs ----------------------------------------------------------------------------- */

typedef void check_fn(const struct ews_response *r);

static void check_finditem_1(const struct ews_response *r)
{
	const struct ews_message *m = &r->messages[0];

	CHECK_STREQ(r->operation, "FindItem");
	CHECK_STREQ(r->server_version, "8.0.595.0");
	CHECK_EQ(m->cls, EWS_CLASS_SUCCESS);
	CHECK_STREQ(m->code, "NoError");
	CHECK_EQ(m->total_items_in_view, 10);
	CHECK(m->has_includes_last && m->includes_last_item_in_range);
	CHECK_EQ(m->n_items, 2);
	if (m->n_items == 2) {
		CHECK_STREQ(m->items[0].item_id, "AS4AUn=");
		CHECK_STREQ(m->items[0].change_key, "fsVU4==");
		CHECK(!m->items[0].is_calendar_item);
		CHECK_STREQ(m->items[1].item_id, "AS4AUM=");
		CHECK_STREQ(m->items[1].change_key, "fsVUA==");
	}
}

static void check_finditem_2(const struct ews_response *r)
{
	const struct ews_message *m = &r->messages[0];

	CHECK_STREQ(r->operation, "FindItem");
	CHECK_EQ(m->cls, EWS_CLASS_ERROR);
	CHECK_STREQ(m->code, "ErrorInvalidIdMalformed");
	CHECK_STREQ(m->text, "Id is malformed.");
	CHECK_EQ(m->n_items, 0);
	CHECK_EQ(m->total_items_in_view, -1);
	CHECK(!m->has_includes_last);
	CHECK_EQ(m->mx.back_off_ms, -1);
}

static void check_getevents_1(const struct ews_response *r)
{
	const struct ews_message *m = &r->messages[0];
	const struct ews_notification *n = m->notifications;

	CHECK_STREQ(r->operation, "GetEvents");
	CHECK_STREQ(r->server_version, "8.0.628.0");
	CHECK_STREQ(m->code, "NoError");
	CHECK_EQ(m->connection_status, EWS_CONN_NONE);
	CHECK_EQ(m->n_notifications, 1);
	if (m->n_notifications != 1)
		return;
	CHECK_STREQ(n->subscription_id, "f6bc657d-dde1-4f94-952d-143b95d6483d");
	CHECK_STREQ(n->previous_watermark, "AAAAAMAGAAAAAAAAAQ==");
	CHECK(!n->more_events);
	CHECK_EQ(n->n_events, 2);
	if (n->n_events != 2)
		return;
	CHECK_EQ(n->events[0].type, EWS_EVENT_NEWMAIL);
	CHECK_STREQ(n->events[0].watermark, "AAAAAM4GAAAAAAAAAQ==");
	CHECK(n->events[0].has_timestamp);
	CHECK_EQ(n->events[0].timestamp_utc, utc("2006-08-22T00:36:29Z"));
	CHECK_STREQ(n->events[0].item_id, "AQApAHR");
	CHECK_STREQ(n->events[0].change_key, "CQAAAA==");
	CHECK_STREQ(n->events[0].parent_folder_id, "AQApAH");
	CHECK_STREQ(n->events[1].item_id, "AQApAHRw");
	CHECK_STREQ(n->events[1].watermark, "AAAAAOQGAAAAAAAAAQ==");
	CHECK_EQ(n->events[1].timestamp_utc, utc("2006-08-22T01:00:50Z"));
}

static void check_getevents_2(const struct ews_response *r)
{
	CHECK_STREQ(r->operation, "GetEvents");
	CHECK_EQ(r->messages[0].cls, EWS_CLASS_ERROR);
	CHECK_STREQ(r->messages[0].code, "ErrorSubscriptionAccessDenied");
	CHECK_STREQ(r->messages[0].text,
	            "Access is denied. Only the subscription owner may access the subscription.");
	CHECK_EQ(r->messages[0].n_notifications, 0);
}

static void check_getitem_1(const struct ews_response *r)
{
	const struct ews_message *m = &r->messages[0];

	CHECK_STREQ(r->operation, "GetItem");
	CHECK_STREQ(r->server_version, "8.0.602.0");
	CHECK_EQ(m->n_items, 1);
	if (m->n_items != 1)
		return;
	CHECK(m->items[0].is_calendar_item);
	CHECK_STREQ(m->items[0].item_id, "ASUAd");
	CHECK_STREQ(m->items[0].change_key, "otlIqB==");
	CHECK(!m->items[0].has_start && !m->items[0].has_end);
	CHECK_EQ(m->items[0].free_busy, EWS_FB_UNKNOWN);
}

static void check_getitem_2(const struct ews_response *r)
{
	const struct ews_cal_item *it = r->messages[0].items;

	CHECK_EQ(r->messages[0].n_items, 1);
	if (r->messages[0].n_items != 1)
		return;
	CHECK_STREQ(it->item_id, "ASUAdTB");
	CHECK(it->has_start && it->has_end);
	CHECK_EQ(it->start_utc, utc("2006-06-16T00:30:00Z"));
	CHECK_EQ(it->end_utc, utc("2006-06-16T01:00:00Z"));
	CHECK_EQ(it->free_busy, EWS_FB_BUSY);
	CHECK_EQ(it->item_type, EWS_ITEM_SINGLE);
	CHECK_STREQ(it->organizer, "someone@example.com");
	CHECK_STREQ(it->subject, NULL);
}

static void check_getitem_3(const struct ews_response *r)
{
	const struct ews_cal_item *it = r->messages[0].items;

	/* The nested t:ConflictingMeetings/t:CalendarItem elements are not items of the
	 * response. */
	CHECK_EQ(r->messages[0].n_items, 1);
	if (r->messages[0].n_items != 1)
		return;
	CHECK_STREQ(it->item_id, "ASUAdT");
	CHECK_EQ(it->sensitivity, EWS_SENS_NORMAL);
	CHECK(it->has_all_day && !it->all_day);
	CHECK(it->has_cancelled && !it->is_cancelled);
	CHECK_EQ(it->start_utc, utc("2006-06-16T00:30:00Z"));
	CHECK_EQ(it->end_utc, utc("2006-06-16T01:00:00Z"));
	CHECK_EQ(it->free_busy, EWS_FB_BUSY);
	CHECK_EQ(it->item_type, EWS_ITEM_SINGLE);
	CHECK_STREQ(it->organizer, "someone@example.com");
	CHECK_STREQ(it->subject, NULL);
	CHECK_STREQ(it->location, NULL);
}

static void check_availability_1(const struct ews_response *r)
{
	const struct ews_message *m = r->messages;

	CHECK_STREQ(r->operation, "GetUserAvailability");
	CHECK_STREQ(r->server_version, "8.0.665.7");
	CHECK_EQ(r->n_messages, 2);
	if (r->n_messages != 2)
		return;
	CHECK_STREQ(m[0].code, "NoError");
	CHECK(m[0].has_free_busy_view);
	CHECK_STREQ(m[0].free_busy_view.type, "DetailedMerged");
	CHECK_STREQ(m[0].free_busy_view.merged, "000002220220000000000000");
	CHECK_EQ(m[0].free_busy_view.n_events, 3);
	if (m[0].free_busy_view.n_events == 3) {
		/* 06:00-07:00 is 13:00Z. */
		CHECK_EQ(m[0].free_busy_view.events[0].start_utc, utc("2006-10-16T13:00:00Z"));
		CHECK_EQ(m[0].free_busy_view.events[0].end_utc, utc("2006-10-16T13:30:00Z"));
		CHECK_EQ(m[0].free_busy_view.events[0].busy_type, EWS_FB_BUSY);
		CHECK_EQ(m[0].free_busy_view.events[2].start_utc, utc("2006-10-16T16:40:00Z"));
	}
	CHECK_STREQ(m[1].free_busy_view.type, "FreeBusyMerged");
	CHECK_STREQ(m[1].free_busy_view.merged, "000000001100000000000000");
	CHECK_EQ(m[1].free_busy_view.n_events, 1);
	if (m[1].free_busy_view.n_events == 1) {
		CHECK_EQ(m[1].free_busy_view.events[0].busy_type, EWS_FB_TENTATIVE);
		CHECK_EQ(m[1].free_busy_view.events[0].start_utc, utc("2006-10-16T16:00:00Z"));
		CHECK_EQ(m[1].free_busy_view.events[0].end_utc, utc("2006-10-16T17:00:00Z"));
	}
}

static void check_oof_1(const struct ews_response *r)
{
	CHECK_STREQ(r->operation, "GetUserOofSettings");
	CHECK_STREQ(r->server_version, "8.0.685.8");
	CHECK_EQ(r->messages[0].cls, EWS_CLASS_SUCCESS);
	CHECK_STREQ(r->messages[0].code, "NoError");
}

static void check_oof_2(const struct ews_response *r)
{
	CHECK(r->is_fault);
	CHECK_STREQ(r->operation, NULL);
	CHECK_STREQ(r->server_version, "8.0.685.8");
	CHECK_STREQ(r->fault.faultcode, "soap:Client");
	CHECK(r->fault.faultstring != NULL &&
	      contains(r->fault.faultstring, "AccessDeniedException: User is not mailbox owner"));
	/* The availability service's m:ErrorCode in place of e:ResponseCode. */
	CHECK_STREQ(r->fault.response_code, "-2146233088");
	CHECK_EQ(r->fault.mx.back_off_ms, -1);
}

static void check_usersettings_1(const struct ews_response *r)
{
	const struct ews_user_settings *u = r->users;

	CHECK_STREQ(r->operation, "GetUserSettings");
	CHECK_STREQ(r->server_version, NULL);
	CHECK_STREQ(r->autodiscover_error, "NoError");
	CHECK_EQ(r->n_users, 1);
	if (r->n_users != 1)
		return;
	CHECK_STREQ(u->error_code, "NoError");
	CHECK_STREQ(u->error_message, "No error.");
	CHECK_STREQ(u->redirect_target, NULL); /* i:nil="true" */
	CHECK_STREQ(u->cas_version, "14.00.0478.000");
	CHECK_STREQ(u->ews_supported_schemas, "Exchange2007, Exchange2010");
	CHECK_STREQ(u->internal_ews_url, NULL);
	CHECK_STREQ(u->grouping_information, NULL);
}

static void check_stream_subscribe(const struct ews_response *r)
{
	CHECK_STREQ(r->operation, "Subscribe");
	CHECK_STREQ(r->server_version, "15.0.785.6");
	CHECK_STREQ(
		r->messages[0].subscription_id,
		"JgBibjFwcjAzbWIyMDIubmFtcHJkMDMucHJvZC5vdXRsb29rLmNvbRAAAADwXxVesOnHS5BxUHKwAW88"
		"SHjwd1iB0Ag=");
	CHECK_STREQ(r->messages[0].watermark, NULL);
}

static void check_subscribe_1(const struct ews_response *r)
{
	CHECK_STREQ(r->operation, "Subscribe");
	CHECK_STREQ(r->messages[0].subscription_id, "39ea5d0f-f062-455e-a1e9-89c0304390f4");
	CHECK_STREQ(r->messages[0].watermark, "AAAAAHgGAAAAAAAAAQ==");
}

static void check_subscribe_2(const struct ews_response *r)
{
	CHECK_EQ(r->messages[0].cls, EWS_CLASS_ERROR);
	CHECK_STREQ(r->messages[0].code, "ErrorSubscriptionDelegateAccessNotSupported");
	CHECK_STREQ(r->messages[0].subscription_id, NULL);
}

/* The 2007-era sample with the messages namespace as the default and no prefixes. */
static void check_subscribe_4(const struct ews_response *r)
{
	CHECK_STREQ(r->operation, "Subscribe");
	CHECK_STREQ(r->messages[0].code, "NoError");
	CHECK_STREQ(r->messages[0].subscription_id, "83826921-afdf-48be-b469-628cc02b5f49");
	CHECK_STREQ(r->messages[0].watermark, "AQAAAOpvG0LURVdOhQkPOWZLPcI8EgAAAAAAAAE=");
}

static void check_sync_1(const struct ews_response *r)
{
	const struct ews_message *m = &r->messages[0];
	const struct ews_cal_item *it;

	CHECK_STREQ(r->operation, "SyncFolderItems");
	CHECK_STREQ(m->sync_state, "H4sIAAAAA=");
	CHECK(m->has_includes_last && m->includes_last_item_in_range);
	CHECK_EQ(m->n_changes, 1);
	if (m->n_changes != 1)
		return;
	CHECK_EQ(m->changes[0].type, EWS_CHANGE_CREATE);
	CHECK_STREQ(m->changes[0].item_id, "AQApAHRwA==");
	CHECK_STREQ(m->changes[0].change_key, "CwAAABYA");
	it = m->changes[0].item;
	CHECK(it != NULL);
	if (it == NULL)
		return;
	CHECK(!it->is_calendar_item); /* a t:MeetingRequest */
	CHECK_STREQ(it->subject, "Budget Q3");
	CHECK_STREQ(it->location, "Conference Room 2");
	CHECK_STREQ(it->organizer, "dpark@example.com");
	CHECK_EQ(it->sensitivity, EWS_SENS_NORMAL);
	CHECK_EQ(it->start_utc, utc("2006-08-02T17:30:00Z"));
	CHECK_EQ(it->end_utc, utc("2006-08-02T19:30:00Z"));
}

static void check_sync_2(const struct ews_response *r)
{
	const struct ews_message *m = &r->messages[0];

	CHECK_EQ(m->cls, EWS_CLASS_ERROR);
	CHECK_STREQ(m->code, "ErrorInvalidSyncStateData");
	CHECK_STREQ(m->sync_state, ""); /* present and empty */
	CHECK(m->has_includes_last && m->includes_last_item_in_range);
	CHECK_EQ(m->n_changes, 0);
}

static void check_unsubscribe_1(const struct ews_response *r)
{
	CHECK_STREQ(r->operation, "Unsubscribe");
	CHECK_EQ(r->messages[0].cls, EWS_CLASS_SUCCESS);
	CHECK_STREQ(r->messages[0].code, "NoError");
}

static void check_unsubscribe_2(const struct ews_response *r)
{
	CHECK_STREQ(r->operation, "Unsubscribe");
	CHECK_EQ(r->messages[0].cls, EWS_CLASS_ERROR);
	CHECK_STREQ(r->messages[0].code, "ErrorSubscriptionNotFound");
	CHECK_STREQ(r->messages[0].text, "The specified subscription was not found.");
}

/* Every file in msdocs/ is listed here: a response with its checks, or a request (check NULL),
 * which the reader must refuse as "not a response". A new fixture fails the test until it is
 * added. */
static const struct {
	const char *file;
	size_t n_messages;
	check_fn *check;
} msdocs[] = {
	{"calendarview-1.xml", 0, NULL},
	{"finditem-operation-0.xml", 0, NULL},
	{"finditem-operation-1.xml", 1, check_finditem_1},
	{"finditem-operation-2.xml", 1, check_finditem_2},
	{"getevents-operation-0.xml", 0, NULL},
	{"getevents-operation-1.xml", 1, check_getevents_1},
	{"getevents-operation-2.xml", 1, check_getevents_2},
	{"getitem-operation-calendar-item-0.xml", 0, NULL},
	{"getitem-operation-calendar-item-1.xml", 1, check_getitem_1},
	{"getitem-operation-calendar-item-2.xml", 1, check_getitem_2},
	{"getitem-operation-calendar-item-3.xml", 1, check_getitem_3},
	{"getstreamingevents-operation-0.xml", 0, NULL},
	{"getuseravailability-operation-0.xml", 0, NULL},
	{"getuseravailability-operation-1.xml", 2, check_availability_1},
	{"getuseroofsettings-operation-0.xml", 0, NULL},
	{"getuseroofsettings-operation-1.xml", 1, check_oof_1},
	{"getuseroofsettings-operation-2.xml", 0, check_oof_2},
	{"getusersettings-operation-soap-0.xml", 0, NULL},
	{"getusersettings-operation-soap-1.xml", 0, check_usersettings_1},
	{"how-to-add-appointments-by-using-exchange-impersonation-0.xml", 0, NULL},
	{"how-to-stream-notifications-about-mailbox-events-by-using-ews-in-exchange-0.xml", 0,
         NULL},
	{"how-to-stream-notifications-about-mailbox-events-by-using-ews-in-exchange-1.xml", 1,
         check_stream_subscribe},
	{"how-to-stream-notifications-about-mailbox-events-by-using-ews-in-exchange-2.xml", 0,
         NULL},
	{"subscribe-operation-0.xml", 0, NULL},
	{"subscribe-operation-1.xml", 1, check_subscribe_1},
	{"subscribe-operation-2.xml", 1, check_subscribe_2},
	{"subscribe-operation-4.xml", 1, check_subscribe_4},
	{"syncfolderitems-operation-0.xml", 0, NULL},
	{"syncfolderitems-operation-1.xml", 1, check_sync_1},
	{"syncfolderitems-operation-2.xml", 1, check_sync_2},
	{"unsubscribe-operation-0.xml", 0, NULL},
	{"unsubscribe-operation-1.xml", 1, check_unsubscribe_1},
	{"unsubscribe-operation-2.xml", 1, check_unsubscribe_2},
};

#define N_MSDOCS (sizeof(msdocs) / sizeof(msdocs[0]))

TEST(every_msdocs_file_is_listed)
{
	const char *dir = getenv("EWS_FIXTURES_DIR");
	char path[1024];
	DIR *d;
	const struct dirent *e;
	size_t seen = 0;

	CHECK(dir != NULL);
	if (dir == NULL)
		return;
	snprintf(path, sizeof(path), "%s/msdocs", dir);
	d = opendir(path);
	CHECK(d != NULL);
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		bool listed = false;

		if (n < 4 || strcmp(e->d_name + n - 4, ".xml") != 0)
			continue;
		for (size_t i = 0; i < N_MSDOCS; i++)
			listed = listed || strcmp(msdocs[i].file, e->d_name) == 0;
		if (!listed)
			fprintf(stderr, "msdocs/%s is not in the test's table\n", e->d_name);
		CHECK(listed);
		seen++;
	}
	closedir(d);
	CHECK_EQ(seen, N_MSDOCS);
}

TEST(msdocs_responses)
{
	size_t responses = 0;

	for (size_t i = 0; i < N_MSDOCS; i++) {
		char rel[256];
		size_t len = 0;
		char *xml;
		struct parsed p;

		if (msdocs[i].check == NULL)
			continue;
		snprintf(rel, sizeof(rel), "msdocs/%s", msdocs[i].file);
		xml = read_fixture(rel, &len);
		if (xml == NULL)
			continue;
		p = parse_ok_n(msdocs[i].file, xml, len);
		if (p.rc == 0) {
			CHECK_EQ(p.r.n_messages, msdocs[i].n_messages);
			if (p.r.n_messages == msdocs[i].n_messages)
				msdocs[i].check(&p.r);
			else
				fprintf(stderr, "%s: %zu messages\n", msdocs[i].file,
				        p.r.n_messages);
		}
		ews_response_clear(&p.r);
		free(xml);
		responses++;
	}
	CHECK_EQ(responses, 19);
}

TEST(msdocs_requests_are_not_responses)
{
	size_t requests = 0;

	for (size_t i = 0; i < N_MSDOCS; i++) {
		char rel[256];
		size_t len = 0;
		char *xml;
		struct parsed p;

		if (msdocs[i].check != NULL)
			continue;
		snprintf(rel, sizeof(rel), "msdocs/%s", msdocs[i].file);
		xml = read_fixture(rel, &len);
		if (xml == NULL)
			continue;
		p = parse_n(xml, len);
		CHECK_EQ(p.rc, -EPROTO);
		if (!contains(p.err.msg, "not an EWS or Autodiscover response"))
			fprintf(stderr, "%s: %s\n", msdocs[i].file, p.err.msg);
		CHECK(contains(p.err.msg, "not an EWS or Autodiscover response"));
		ews_response_clear(&p.r);
		free(xml);
		requests++;
	}
	CHECK_EQ(requests, N_MSDOCS - 19);
}

TEST(msdocs_truncations)
{
	size_t truncated = 0;

	for (size_t i = 0; i < N_MSDOCS; i++) {
		char rel[256];
		size_t len = 0;
		char *xml;

		if (msdocs[i].check == NULL)
			continue;
		snprintf(rel, sizeof(rel), "msdocs/%s", msdocs[i].file);
		xml = read_fixture(rel, &len);
		if (xml == NULL)
			continue;
		check_truncations(msdocs[i].file, xml, len);
		free(xml);
		truncated++;
	}
	CHECK_EQ(truncated, 19);
}

/* --- the wire fixture ------------------------------------------------------------------- */

#define WIRE_FILE "wire/getstreamingevents-stream.xmls"
#define SUB_OK    "JgBtYngxLmNvbnRvc28uZXhhbXBsZRAAAAAx2bq3ZfFxSI3OkDQ5WLkyXGbYeFh81Ag="
#define SUB_GONE  "JgBtYngxLmNvbnRvc28uZXhhbXBsZRAAAACgpH8+1+Y5TqXJcJp4s2RYXGbYeFh81Ag="
#define ITEM_ID                                                                                 \
	"AAMkADQ4ZjRlZTRjLTZjYWItNDBmNS1iMmI0LWM0ODhiZDc0MjFiNQBGAAAAAAC3s/aBR7DxQbvm8aQb9bFNB" \
	"wDN2LMCLCtnQ54fE9QHnrIuAAAAAAENAADN2LMCLCtnQ54fE9QHnrIuAAAN+N9QAAA="
#define CAL_ID                                                                                 \
	"AQMkADQ4ZjRlZTRjLTZjYWItNDBmNS1iMmI0LWM0ODhiZDc0MjFiNQAuAAADt7P2gUew8UG75vGkG/WxTQEA" \
	"zdizAiwrZ0OeHxPUB56yLgAAAgENAAAA"
#define ROOT_ID                                                                                \
	"AQMkADQ4ZjRlZTRjLTZjYWItNDBmNS1iMmI0LWM0ODhiZDc0MjFiNQAuAAADt7P2gUew8UG75vGkG/WxTQEA" \
	"zdizAiwrZ0OeHxPUB56yLgAAAgEIAAAA"

/* Cuts the body at each "</Envelope>": enough for this fixture, whose envelopes are written
 * back to back with an unprefixed root (the framer, ews-stream.c, does it properly). */
static size_t split_wire(const char *body, size_t len, const char *starts[8], size_t lens[8])
{
	static const char close[] = "</Envelope>";
	size_t n = 0;
	size_t pos = 0;

	while (pos < len && n < 8) {
		const char *end = strstr(body + pos, close);

		if (end == NULL)
			break;
		starts[n] = body + pos;
		lens[n] = (size_t)(end - (body + pos)) + strlen(close);
		pos += lens[n];
		n++;
		while (pos < len && (body[pos] == '\n' || body[pos] == ' '))
			pos++;
	}
	return n;
}

static void check_wire_common(const struct ews_response *r)
{
	CHECK_STREQ(r->operation, "GetStreamingEvents");
	CHECK_STREQ(r->server_version, "15.2.1748.10");
	CHECK(!r->is_fault);
	CHECK_EQ(r->n_messages, 1);
}

TEST(wire_envelopes)
{
	size_t len = 0;
	char *raw = read_fixture(WIRE_FILE, &len);
	char *body;
	const char *starts[8];
	size_t lens[8];
	size_t n;
	struct parsed p[5];

	if (raw == NULL)
		return;
	body = xmemdup(raw, len); /* NUL-terminated, for strstr */
	n = split_wire(body, len, starts, lens);
	CHECK_EQ(n, 5);
	if (n != 5)
		goto out;
	for (size_t i = 0; i < n; i++) {
		p[i] = parse_ok_n(WIRE_FILE, starts[i], lens[i]);
		if (p[i].rc == 0)
			check_wire_common(&p[i].r);
	}
	if (p[0].rc != 0 || p[1].rc != 0 || p[2].rc != 0 || p[3].rc != 0 || p[4].rc != 0)
		goto out_clear;

	/* 0: status OK. */
	CHECK_EQ(p[0].r.messages[0].cls, EWS_CLASS_SUCCESS);
	CHECK_STREQ(p[0].r.messages[0].code, "NoError");
	CHECK_EQ(p[0].r.messages[0].connection_status, EWS_CONN_OK);
	CHECK_EQ(p[0].r.messages[0].n_notifications, 0);

	/* 1: one notification: Created and Modified for an item, Modified for the folder. */
	{
		const struct ews_message *m = &p[1].r.messages[0];
		const struct ews_notification *no = m->notifications;

		CHECK_EQ(m->connection_status, EWS_CONN_NONE);
		CHECK_EQ(m->n_notifications, 1);
		if (m->n_notifications == 1) {
			CHECK_STREQ(no->subscription_id, SUB_OK);
			CHECK_STREQ(no->previous_watermark, NULL);
			CHECK_EQ(no->n_events, 3);
		}
		if (m->n_notifications == 1 && no->n_events == 3) {
			CHECK_EQ(no->events[0].type, EWS_EVENT_CREATED);
			CHECK_STREQ(ews_event_type_name(no->events[0].type), "Created");
			CHECK_EQ(no->events[0].timestamp_utc, utc("2026-11-27T09:14:02Z"));
			CHECK_STREQ(no->events[0].watermark, NULL);
			CHECK_STREQ(no->events[0].item_id, ITEM_ID);
			CHECK_STREQ(no->events[0].change_key,
			            "DwAAABYAAADN2LMCLCtnQ54fE9QHnrIuAAAN+O0B");
			CHECK_STREQ(no->events[0].parent_folder_id, CAL_ID);
			CHECK_EQ(no->events[1].type, EWS_EVENT_MODIFIED);
			CHECK_STREQ(no->events[1].item_id, ITEM_ID);
			CHECK_EQ(no->events[1].timestamp_utc, utc("2026-11-27T09:14:03Z"));
			CHECK_EQ(no->events[2].type, EWS_EVENT_MODIFIED);
			CHECK_STREQ(no->events[2].item_id, NULL);
			CHECK_STREQ(no->events[2].folder_id, CAL_ID);
			CHECK_STREQ(no->events[2].parent_folder_id, ROOT_ID);
		}
	}

	/* 2: heartbeat. */
	CHECK_EQ(p[2].r.messages[0].connection_status, EWS_CONN_OK);
	CHECK_EQ(p[2].r.messages[0].n_notifications, 0);

	/* 3: one subscription lost, the connection stays. */
	CHECK_EQ(p[3].r.messages[0].cls, EWS_CLASS_ERROR);
	CHECK_STREQ(p[3].r.messages[0].code, "ErrorSubscriptionNotFound");
	CHECK_STREQ(p[3].r.messages[0].text, "The specified subscription was not found.");
	CHECK_EQ(p[3].r.messages[0].n_error_subscription_ids, 1);
	if (p[3].r.messages[0].n_error_subscription_ids == 1)
		CHECK_STREQ(p[3].r.messages[0].error_subscription_ids[0], SUB_GONE);
	CHECK_EQ(p[3].r.messages[0].connection_status, EWS_CONN_OK);

	/* 4: closed. */
	CHECK_EQ(p[4].r.messages[0].cls, EWS_CLASS_SUCCESS);
	CHECK_EQ(p[4].r.messages[0].connection_status, EWS_CONN_CLOSED);

	for (size_t i = 0; i < n; i++)
		check_truncations(WIRE_FILE, starts[i], lens[i]);
out_clear:
	for (size_t i = 0; i < n; i++)
		ews_response_clear(&p[i].r);
out:
	free(body);
	free(raw);
}

/* --- faults and throttling -------------------------------------------------------------- */

#define ENV_OPEN                                                                    \
	"<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\""         \
	" xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\"" \
	" xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\">"
#define ENV_CLOSE "</s:Envelope>"
#define BODY(x)   ENV_OPEN "<s:Body>" x "</s:Body>" ENV_CLOSE

/* An operation's response with one message of class cls and code code. */
#define RESPONSE(op, cls, code, payload)                                                           \
	BODY("<m:" op "Response><m:ResponseMessages><m:" op "ResponseMessage ResponseClass=\"" cls \
	     "\"><m:ResponseCode>" code "</m:ResponseCode>" payload "</m:" op                      \
	     "ResponseMessage></m:ResponseMessages></m:" op "Response>")

/* EWS-REFERENCE.md 1.4: a real fault captured from Exchange. */
static const char fault_connection_count[] =
	"<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><s:Fault>"
	"<faultcode xmlns:a=\"http://schemas.microsoft.com/exchange/services/2006/types\">"
	"a:ErrorExceededConnectionCount</faultcode>"
	"<faultstring xml:lang=\"en-US\">You have exceeded the available concurrent connections "
	"for your account.  Try again once your other requests have completed.</faultstring>"
	"<detail>"
	"<e:ResponseCode xmlns:e=\"http://schemas.microsoft.com/exchange/services/2006/errors\">"
	"ErrorExceededConnectionCount</e:ResponseCode>"
	"<e:Message xmlns:e=\"http://schemas.microsoft.com/exchange/services/2006/errors\">"
	"You have exceeded the available concurrent connections for your account.  Try again "
	"once your other requests have completed.</e:Message>"
	"<t:MessageXml xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\">"
	"<t:Value Name=\"Policy\">MaxConcurrency</t:Value>"
	"<t:Value Name=\"MaxConcurrencyLimit\">27</t:Value>"
	"</t:MessageXml>"
	"</detail>"
	"</s:Fault></s:Body></s:Envelope>";

static const char fault_server_busy[] =
	"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
	"<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">\n"
	"  <s:Header><h:ServerVersionInfo MajorVersion=\"15\" MinorVersion=\"1\""
	" MajorBuildNumber=\"2507\" MinorBuildNumber=\"6\""
	" xmlns:h=\"http://schemas.microsoft.com/exchange/services/2006/types\"/></s:Header>\n"
	"  <s:Body><s:Fault>\n"
	"    <faultcode xmlns:a=\"http://schemas.microsoft.com/exchange/services/2006/types\">"
	"a:ErrorServerBusy</faultcode>\n"
	"    <faultstring xml:lang=\"en-US\">The server cannot service this request right now. Try"
	" again later.</faultstring>\n"
	"    <detail>\n"
	"      <e:ResponseCode xmlns:e=\"http://schemas.microsoft.com/exchange/services/2006/"
	"errors\">ErrorServerBusy</e:ResponseCode>\n"
	"      <e:Message xmlns:e=\"http://schemas.microsoft.com/exchange/services/2006/errors\">"
	"The server cannot service this request right now. Try again later.</e:Message>\n"
	"      <t:MessageXml xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\">"
	"<t:Value Name=\"BackOffMilliseconds\">29312</t:Value></t:MessageXml>\n"
	"    </detail>\n"
	"  </s:Fault></s:Body>\n"
	"</s:Envelope>\n";

static const char fault_schema[] =
	"<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><s:Fault>"
	"<faultcode xmlns:a=\"http://schemas.microsoft.com/exchange/services/2006/types\">"
	"a:ErrorSchemaValidation</faultcode>"
	"<faultstring xml:lang=\"en-US\">The request failed schema validation: The element "
	"'Subscribe' has invalid child element 'Bogus'.</faultstring>"
	"<detail>"
	"<e:ResponseCode xmlns:e=\"http://schemas.microsoft.com/exchange/services/2006/errors\">"
	"ErrorSchemaValidation</e:ResponseCode>"
	"<e:Message xmlns:e=\"http://schemas.microsoft.com/exchange/services/2006/errors\">"
	"The request failed schema validation.</e:Message>"
	"<t:MessageXml xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\">"
	"<t:LineNumber>1</t:LineNumber><t:LinePosition>412</t:LinePosition>"
	"<t:Violation>The element 'Subscribe' has invalid child element 'Bogus'.</t:Violation>"
	"</t:MessageXml>"
	"</detail>"
	"</s:Fault></s:Body></s:Envelope>";

/* An HTTP 200 ErrorInternalServerError whose inner code is the real one (EWS-REFERENCE 1.3). */
static const char message_internal_error[] = RESPONSE(
	"FindItem", "Error", "ErrorInternalServerError",
	"<m:MessageText>An internal server error occurred. The operation failed.</m:MessageText>"
	"<m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>"
	"<m:MessageXml><t:Value Name=\"InnerErrorMessageText\">The server cannot service this "
	"request right now. Try again later.</t:Value>"
	"<t:Value Name=\"InnerErrorResponseCode\">ErrorServerBusy</t:Value>"
	"<t:Value Name=\"InnerErrorDescriptiveLinkKey\">0</t:Value>"
	"<t:Value Name=\"BackOffMilliseconds\">5000</t:Value></m:MessageXml>");

static const char message_server_busy[] = RESPONSE(
	"GetEvents", "Error", "ErrorServerBusy",
	"<m:MessageXml><t:Value Name=\"BackOffMilliseconds\">30000</t:Value></m:MessageXml>");

TEST(fault_exceeded_connection_count)
{
	struct parsed p = parse_ok(fault_connection_count);

	CHECK(p.r.is_fault);
	CHECK_STREQ(p.r.operation, NULL);
	CHECK_EQ(p.r.n_messages, 0);
	CHECK_STREQ(p.r.fault.faultcode, "a:ErrorExceededConnectionCount");
	CHECK(p.r.fault.faultstring != NULL &&
	      contains(p.r.fault.faultstring, "exceeded the available concurrent connections"));
	CHECK_STREQ(p.r.fault.response_code, "ErrorExceededConnectionCount");
	CHECK(p.r.fault.message != NULL && contains(p.r.fault.message, "Try again"));
	CHECK_STREQ(p.r.fault.mx.policy, "MaxConcurrency");
	CHECK_EQ(p.r.fault.mx.max_concurrency_limit, 27);
	CHECK_EQ(p.r.fault.mx.back_off_ms, -1);
	ews_response_clear(&p.r);
	check_truncations("ErrorExceededConnectionCount fault", fault_connection_count,
	                  strlen(fault_connection_count));
}

TEST(fault_server_busy_back_off)
{
	struct parsed p = parse_ok(fault_server_busy);

	CHECK(p.r.is_fault);
	CHECK_STREQ(p.r.server_version, "15.1.2507.6");
	CHECK_STREQ(p.r.fault.faultcode, "a:ErrorServerBusy");
	CHECK_STREQ(p.r.fault.response_code, "ErrorServerBusy");
	CHECK_EQ(p.r.fault.mx.back_off_ms, 29312);
	CHECK_EQ(p.r.fault.mx.max_concurrency_limit, -1);
	CHECK_STREQ(p.r.fault.mx.policy, NULL);
	ews_response_clear(&p.r);
	check_truncations("ErrorServerBusy fault", fault_server_busy, strlen(fault_server_busy));
}

TEST(fault_schema_validation)
{
	struct parsed p = parse_ok(fault_schema);

	CHECK(p.r.is_fault);
	CHECK_STREQ(p.r.fault.faultcode, "a:ErrorSchemaValidation");
	CHECK_STREQ(p.r.fault.response_code, "ErrorSchemaValidation");
	CHECK_STREQ(p.r.fault.message, "The request failed schema validation.");
	CHECK_EQ(p.r.fault.mx.back_off_ms, -1);
	ews_response_clear(&p.r);
	check_truncations("ErrorSchemaValidation fault", fault_schema, strlen(fault_schema));
}

TEST(internal_server_error_wraps_inner_code)
{
	struct parsed p = parse_ok(message_internal_error);
	const struct ews_message *m = p.r.messages;

	CHECK(!p.r.is_fault);
	CHECK_EQ(p.r.n_messages, 1);
	if (p.rc == 0 && p.r.n_messages == 1) {
		CHECK_EQ(m->cls, EWS_CLASS_ERROR);
		CHECK_STREQ(m->code, "ErrorInternalServerError");
		CHECK_STREQ(m->text, "An internal server error occurred. The operation failed.");
		CHECK_STREQ(m->mx.inner_code, "ErrorServerBusy");
		CHECK(m->mx.inner_text != NULL &&
		      contains(m->mx.inner_text, "cannot service this request"));
		CHECK_EQ(m->mx.back_off_ms, 5000);
	}
	ews_response_clear(&p.r);
	check_truncations("ErrorInternalServerError", message_internal_error,
	                  strlen(message_internal_error));
}

TEST(message_server_busy)
{
	struct parsed p = parse_ok(message_server_busy);

	CHECK_EQ(p.r.n_messages, 1);
	if (p.r.n_messages == 1) {
		CHECK_STREQ(p.r.messages[0].code, "ErrorServerBusy");
		CHECK_EQ(p.r.messages[0].mx.back_off_ms, 30000);
		CHECK_STREQ(p.r.messages[0].mx.inner_code, NULL);
	}
	ews_response_clear(&p.r);
}

/* --- payloads --------------------------------------------------------------------------- */

static const char calendar_view[] =
	RESPONSE("FindItem", "Success", "NoError",
                 "<m:RootFolder TotalItemsInView=\"33\" IncludesLastItemInRange=\"false\"><t:Items>"
                 "<t:CalendarItem><t:ItemId Id=\"I1\" ChangeKey=\"K1\"/>"
                 "<t:Subject>Standup &amp; &lt;review&gt;</t:Subject>"
                 "<t:Sensitivity>Private</t:Sensitivity>"
                 "<t:Categories><t:String>Red</t:String><t:String>Team A</t:String></t:Categories>"
                 "<t:Start>2025-03-03T10:00:00+01:00</t:Start>"
                 "<t:End>2025-03-03T04:00:00.1234567-05:30</t:End>"
                 "<t:IsAllDayEvent>0</t:IsAllDayEvent>"
                 "<t:LegacyFreeBusyStatus>OOF</t:LegacyFreeBusyStatus>"
                 "<t:Location><![CDATA[Room <1>]]></t:Location>"
                 "<t:IsCancelled> true </t:IsCancelled>"
                 "<t:CalendarItemType>RecurringMaster</t:CalendarItemType>"
                 "<t:Organizer><t:Mailbox><t:Name>Ann Example</t:Name></t:Mailbox></t:Organizer>"
                 "<t:UID>040000008200E00074C5B7101A82E0080000000</t:UID>"
                 "<t:RecurrenceId>2025-03-03T09:00:00</t:RecurrenceId>"
                 "<t:StartTimeZone Id=\"W. Europe Standard Time\" Name=\"(UTC+01:00) Amsterdam\"/>"
                 "<t:FutureElement><t:Start>not a time, but not ours</t:Start></t:FutureElement>"
                 "</t:CalendarItem>"
                 "<t:CalendarItem><t:ItemId Id=\"I2\"/><t:Start>2025-03-03T09:00:00Z</t:Start>"
                 "<t:LegacyFreeBusyStatus>SomethingNew</t:LegacyFreeBusyStatus>"
                 "<t:Sensitivity>Confidential</t:Sensitivity>"
                 "<t:CalendarItemType>Exception</t:CalendarItemType>"
                 "<t:Organizer><t:Mailbox><t:Name>Bob</t:Name><t:EmailAddress>bob@contoso.example"
                 "</t:EmailAddress></t:Mailbox></t:Organizer>"
                 "</t:CalendarItem>"
                 "</t:Items></m:RootFolder>");

TEST(calendar_item_fields_and_time_zones)
{
	struct parsed p = parse_ok(calendar_view);
	const struct ews_message *m = p.r.messages;
	const struct ews_cal_item *it;

	if (p.rc != 0 || p.r.n_messages != 1)
		goto out;
	CHECK_EQ(m->total_items_in_view, 33);
	CHECK(m->has_includes_last && !m->includes_last_item_in_range);
	CHECK_EQ(m->n_items, 2);
	if (m->n_items != 2)
		goto out;
	it = &m->items[0];
	CHECK(it->is_calendar_item);
	CHECK_STREQ(it->item_id, "I1");
	CHECK_STREQ(it->change_key, "K1");
	CHECK_STREQ(it->subject, "Standup & <review>");
	CHECK_EQ(it->sensitivity, EWS_SENS_PRIVATE);
	CHECK_EQ(it->n_categories, 2);
	if (it->n_categories == 2) {
		CHECK_STREQ(it->categories[0], "Red");
		CHECK_STREQ(it->categories[1], "Team A");
	}
	/* +01:00 and -05:30 (with 7 fraction digits, dropped) both land on 09:00Z / 09:30Z. */
	CHECK_EQ(it->start_utc, utc("2025-03-03T09:00:00Z"));
	CHECK_EQ(it->end_utc, utc("2025-03-03T09:30:00Z"));
	CHECK(it->has_all_day && !it->all_day);
	CHECK_EQ(it->free_busy, EWS_FB_OOF);
	CHECK_STREQ(it->location, "Room <1>");
	CHECK(it->has_cancelled && it->is_cancelled);
	CHECK_EQ(it->item_type, EWS_ITEM_RECURRING_MASTER);
	CHECK_STREQ(it->organizer, "Ann Example"); /* no EmailAddress: the Name */
	CHECK_STREQ(it->uid, "040000008200E00074C5B7101A82E0080000000");
	CHECK(it->has_recurrence_id);
	CHECK_EQ(it->recurrence_id_utc, utc("2025-03-03T09:00:00Z")); /* naive is UTC */
	CHECK_STREQ(it->start_tz_id, "W. Europe Standard Time");

	it = &m->items[1];
	CHECK_STREQ(it->item_id, "I2");
	CHECK_STREQ(it->change_key, NULL);
	CHECK(it->has_start && !it->has_end && !it->has_all_day && !it->has_cancelled);
	CHECK_EQ(it->free_busy, EWS_FB_UNKNOWN); /* a value we do not know */
	CHECK_EQ(it->sensitivity, EWS_SENS_CONFIDENTIAL);
	CHECK_EQ(it->item_type, EWS_ITEM_EXCEPTION);
	CHECK_STREQ(it->organizer, "bob@contoso.example");
	CHECK_EQ(it->n_categories, 0);
out:
	ews_response_clear(&p.r);
	check_truncations("CalendarView", calendar_view, strlen(calendar_view));
}

static const char get_events[] = RESPONSE(
	"GetEvents", "Success", "NoError",
	"<m:Notification><t:SubscriptionId>S1</t:SubscriptionId>"
	"<t:PreviousWatermark>W10</t:PreviousWatermark><t:MoreEvents>true</t:MoreEvents>"
	"<t:MovedEvent><t:Watermark>W11</t:Watermark><t:TimeStamp>2025-03-03T09:00:00Z"
	"</t:TimeStamp><t:ItemId Id=\"NEW\" ChangeKey=\"CK\"/><t:ParentFolderId Id=\"DELETED\"/>"
	"<t:OldItemId Id=\"OLD\"/><t:OldParentFolderId Id=\"CAL\"/></t:MovedEvent>"
	"<t:CopiedEvent><t:Watermark>W12</t:Watermark><t:TimeStamp>2025-03-03T09:00:01Z"
	"</t:TimeStamp><t:FolderId Id=\"F2\"/><t:ParentFolderId Id=\"ROOT\"/>"
	"<t:OldFolderId Id=\"F1\"/><t:OldParentFolderId Id=\"ROOT\"/></t:CopiedEvent>"
	"<t:DeletedEvent><t:TimeStamp>2025-03-03T09:00:02Z</t:TimeStamp><t:ItemId Id=\"D\"/>"
	"<t:ParentFolderId Id=\"CAL\"/></t:DeletedEvent>"
	"<t:FreeBusyChangedEvent><t:TimeStamp>2025-03-03T09:00:03Z</t:TimeStamp>"
	"<t:ItemId Id=\"FB\"/><t:ParentFolderId Id=\"CAL\"/></t:FreeBusyChangedEvent>"
	"<t:StatusEvent><t:Watermark>W13</t:Watermark></t:StatusEvent>"
	"</m:Notification>");

TEST(get_events_event_kinds)
{
	struct parsed p = parse_ok(get_events);
	const struct ews_notification *no;

	if (p.rc != 0 || p.r.n_messages != 1 || p.r.messages[0].n_notifications != 1) {
		CHECK(false);
		goto out;
	}
	no = p.r.messages[0].notifications;
	CHECK_STREQ(no->subscription_id, "S1");
	CHECK_STREQ(no->previous_watermark, "W10");
	CHECK(no->more_events);
	CHECK_EQ(no->n_events, 5);
	if (no->n_events != 5)
		goto out;
	CHECK_EQ(no->events[0].type, EWS_EVENT_MOVED);
	CHECK_STREQ(no->events[0].item_id, "NEW");
	CHECK_STREQ(no->events[0].old_item_id, "OLD");
	CHECK_STREQ(no->events[0].parent_folder_id, "DELETED");
	CHECK_STREQ(no->events[0].old_parent_folder_id, "CAL");
	CHECK_EQ(no->events[1].type, EWS_EVENT_COPIED);
	CHECK_STREQ(no->events[1].folder_id, "F2");
	CHECK_STREQ(no->events[1].old_folder_id, "F1");
	CHECK_EQ(no->events[2].type, EWS_EVENT_DELETED);
	CHECK_STREQ(no->events[2].watermark, NULL);
	CHECK_EQ(no->events[3].type, EWS_EVENT_FREEBUSY);
	CHECK_STREQ(ews_event_type_name(no->events[3].type), "FreeBusyChanged");
	CHECK_EQ(no->events[4].type, EWS_EVENT_STATUS);
	CHECK_STREQ(no->events[4].watermark, "W13");
	CHECK(!no->events[4].has_timestamp);
out:
	ews_response_clear(&p.r);
}

static const char sync_changes[] = RESPONSE(
	"SyncFolderItems", "Success", "NoError",
	"<m:SyncState>H4sI</m:SyncState>"
	"<m:IncludesLastItemInRange>false</m:IncludesLastItemInRange><m:Changes>"
	"<t:Update><t:CalendarItem><t:ItemId Id=\"U\" ChangeKey=\"UK\"/><t:Start>"
	"2025-03-03T09:00:00Z</t:Start></t:CalendarItem></t:Update>"
	"<t:Delete><t:ItemId Id=\"D\" ChangeKey=\"DK\"/></t:Delete>"
	"<t:ReadFlagChange><t:ItemId Id=\"R\"/><t:IsRead>true</t:IsRead></t:ReadFlagChange>"
	"</m:Changes>");

TEST(sync_folder_items_changes)
{
	struct parsed p = parse_ok(sync_changes);
	const struct ews_message *m = p.r.messages;

	if (p.rc != 0 || p.r.n_messages != 1 || m->n_changes != 3) {
		CHECK(false);
		goto out;
	}
	CHECK_STREQ(m->sync_state, "H4sI");
	CHECK(m->has_includes_last && !m->includes_last_item_in_range);
	CHECK_EQ(m->changes[0].type, EWS_CHANGE_UPDATE);
	CHECK_STREQ(m->changes[0].item_id, "U");
	CHECK_STREQ(m->changes[0].change_key, "UK");
	CHECK(m->changes[0].item != NULL && m->changes[0].item->is_calendar_item);
	CHECK_EQ(m->changes[1].type, EWS_CHANGE_DELETE);
	CHECK_STREQ(m->changes[1].item_id, "D");
	CHECK(m->changes[1].item == NULL);
	CHECK_EQ(m->changes[2].type, EWS_CHANGE_READ_FLAG);
	CHECK_STREQ(ews_change_type_name(m->changes[2].type), "ReadFlagChange");
	CHECK(m->changes[2].is_read);
out:
	ews_response_clear(&p.r);
}

/* The folder probe of EWS-REFERENCE.md 8.5, with the tag in hex and in decimal. */
static const char get_folder[] = RESPONSE(
	"GetFolder", "Success", "NoError",
	"<m:Folders><t:CalendarFolder><t:FolderId Id=\"CAL\" ChangeKey=\"CK\"/>"
	"<t:DisplayName>Calendar</t:DisplayName><t:TotalCount>12</t:TotalCount>"
	"<t:ExtendedProperty><t:ExtendedFieldURI PropertyTag=\"0x670a\" "
	"PropertyType=\"SystemTime\"/><t:Value>2025-03-03T10:00:00+01:00</t:Value>"
	"</t:ExtendedProperty>"
	"<t:ExtendedProperty><t:ExtendedFieldURI PropertyTag=\"26379\" PropertyType=\"Integer\"/>"
	"<t:Value>7</t:Value></t:ExtendedProperty>"
	"<t:ExtendedProperty><t:ExtendedFieldURI PropertyTag=\"0x3001\" PropertyType=\"String\"/>"
	"<t:Value>ignored</t:Value></t:ExtendedProperty>"
	"</t:CalendarFolder></m:Folders>");

TEST(get_folder_probe)
{
	struct parsed p = parse_ok(get_folder);
	const struct ews_message *m = p.r.messages;

	if (p.rc != 0 || p.r.n_messages != 1) {
		CHECK(false);
		goto out;
	}
	CHECK_STREQ(p.r.operation, "GetFolder");
	CHECK_STREQ(m->folder_id, "CAL");
	CHECK_STREQ(m->folder_change_key, "CK");
	CHECK_EQ(m->total_count, 12);
	CHECK(m->has_commit_time);
	CHECK_EQ(m->commit_time_utc, utc("2025-03-03T09:00:00Z"));
	CHECK_EQ(m->deleted_count_total, 7);
out:
	ews_response_clear(&p.r);
}

static const char autodiscover[] =
	"<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
	"xmlns:a=\"http://schemas.microsoft.com/exchange/2010/Autodiscover\" "
	"xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\"><s:Body>"
	"<a:GetUserSettingsResponseMessage><a:Response><a:ErrorCode>NoError</a:ErrorCode>"
	"<a:ErrorMessage/><a:UserResponses>"
	"<a:UserResponse><a:ErrorCode>NoError</a:ErrorCode><a:ErrorMessage>No error."
	"</a:ErrorMessage><a:RedirectTarget i:nil=\"true\"/><a:UserSettings>"
	"<a:UserSetting i:type=\"StringSetting\"><a:Name>InternalEwsUrl</a:Name>"
	"<a:Value>https://mbx1.contoso.example/EWS/Exchange.asmx</a:Value></a:UserSetting>"
	"<a:UserSetting i:type=\"StringSetting\"><a:Name>ExternalEwsUrl</a:Name>"
	"<a:Value>https://mail.contoso.example/EWS/Exchange.asmx</a:Value></a:UserSetting>"
	"<a:UserSetting i:type=\"StringSetting\"><a:Name>GroupingInformation</a:Name>"
	"<a:Value>EMEA-DAG1</a:Value></a:UserSetting>"
	"<a:UserSetting i:type=\"StringSetting\"><a:Name>CasVersion</a:Name>"
	"<a:Value>15.02.1748.010</a:Value></a:UserSetting>"
	"</a:UserSettings></a:UserResponse>"
	"<a:UserResponse><a:ErrorCode>RedirectAddress</a:ErrorCode>"
	"<a:ErrorMessage>Redirect address.</a:ErrorMessage>"
	"<a:RedirectTarget>bob@fabrikam.example</a:RedirectTarget></a:UserResponse>"
	"</a:UserResponses></a:Response></a:GetUserSettingsResponseMessage></s:Body>"
	"</s:Envelope>";

TEST(autodiscover_users)
{
	struct parsed p = parse_ok(autodiscover);

	if (p.rc != 0 || p.r.n_users != 2) {
		CHECK(false);
		goto out;
	}
	CHECK_STREQ(p.r.operation, "GetUserSettings");
	CHECK_STREQ(p.r.autodiscover_error, "NoError");
	CHECK_EQ(p.r.n_messages, 0);
	CHECK_STREQ(p.r.users[0].internal_ews_url,
	            "https://mbx1.contoso.example/EWS/Exchange.asmx");
	CHECK_STREQ(p.r.users[0].external_ews_url,
	            "https://mail.contoso.example/EWS/Exchange.asmx");
	CHECK_STREQ(p.r.users[0].grouping_information, "EMEA-DAG1");
	CHECK_STREQ(p.r.users[0].cas_version, "15.02.1748.010");
	CHECK_STREQ(p.r.users[0].redirect_target, NULL);
	CHECK_STREQ(p.r.users[1].error_code, "RedirectAddress");
	CHECK_STREQ(p.r.users[1].redirect_target, "bob@fabrikam.example");
out:
	ews_response_clear(&p.r);
}

/* --- what must fail --------------------------------------------------------------------- */

struct bad_case {
	const char *what;
	const char *xml;
	int rc;
	const char *msg; /* a part of the message */
};

static const struct bad_case bad_cases[] = {
	{"Start not a dateTime",
         RESPONSE(
		 "GetItem", "Success", "NoError",
		 "<m:Items><t:CalendarItem><t:Start>tomorrow</t:Start></t:CalendarItem></m:Items>"),
         -EPROTO, "line 1: t:Start: not a dateTime"},
	{"End out of range",
         RESPONSE("GetItem", "Success", "NoError",
                  "<m:Items><t:CalendarItem><t:End>0001-01-01T00:00:00+01:00</t:End>"
                  "</t:CalendarItem></m:Items>"),
         -EPROTO, "t:End: dateTime out of range"},
	{"MoreEvents not a boolean",
         RESPONSE("GetEvents", "Success", "NoError",
                  "<m:Notification><t:MoreEvents>maybe</t:MoreEvents></m:Notification>"),
         -EPROTO, "t:MoreEvents: not a boolean"},
	{"BackOffMilliseconds not a number",
         RESPONSE("FindItem", "Error", "ErrorServerBusy",
                  "<m:MessageXml><t:Value Name=\"BackOffMilliseconds\">soon</t:Value>"
                  "</m:MessageXml>"),
         -EPROTO, "t:Value: not an integer"},
	{"ConnectionStatus unknown",
         RESPONSE("GetStreamingEvents", "Success", "NoError",
                  "<m:ConnectionStatus>Maybe</m:ConnectionStatus>"),
         -EPROTO, "m:ConnectionStatus: not OK or Closed"},
	{"ResponseClass unknown", RESPONSE("Unsubscribe", "Fine", "NoError", ""), -EPROTO,
         "ResponseClass"},
	{"TotalItemsInView not a number",
         RESPONSE("FindItem", "Success", "NoError", "<m:RootFolder TotalItemsInView=\"many\"/>"),
         -EPROTO, "TotalItemsInView is not an integer"},
	{"IncludesLastItemInRange not a boolean",
         RESPONSE("SyncFolderItems", "Success", "NoError",
                  "<m:IncludesLastItemInRange>yes</m:IncludesLastItemInRange>"),
         -EPROTO, "m:IncludesLastItemInRange: not a boolean"},
	{"PropertyTag not a number",
         RESPONSE("GetFolder", "Success", "NoError",
                  "<m:Folders><t:Folder><t:ExtendedProperty><t:ExtendedFieldURI "
                  "PropertyTag=\"0xZZ\"/></t:ExtendedProperty></t:Folder></m:Folders>"),
         -EPROTO, "PropertyTag"},
	{"TimeStamp on the third line",
         ENV_OPEN
         "\n<s:Body>\n<m:GetEventsResponse><m:ResponseMessages><m:GetEventsResponseMessage "
         "ResponseClass=\"Success\"><m:Notification><t:NewMailEvent><t:TimeStamp>2025-13-01"
         "T00:00:00Z</t:TimeStamp></t:NewMailEvent></m:Notification>"
         "</m:GetEventsResponseMessage></m:ResponseMessages></m:GetEventsResponse>"
         "</s:Body>" ENV_CLOSE,
         -EPROTO, "line 3: t:TimeStamp"},
	{"ServerVersionInfo not numbers",
         ENV_OPEN "<s:Header><t:ServerVersionInfo MajorVersion=\"fifteen\"/></s:Header>"
                  "<s:Body><m:UnsubscribeResponse/></s:Body>" ENV_CLOSE,
         -EPROTO, "MajorVersion"},
	{"not XML", "this is not XML", -EPROTO, "not well-formed XML"},
	{"empty", "", -EPROTO, "empty"},
	{"two roots", BODY("<m:UnsubscribeResponse/>") "<x/>", -EPROTO, "not well-formed XML"},
	{"not an envelope", "<Envelope/>", -EPROTO, "not a SOAP 1.1 Envelope"},
	{"no body", ENV_OPEN ENV_CLOSE, -EPROTO, "no Body"},
	{"empty body", BODY(""), -EPROTO, "empty"},
	{"a request", BODY("<m:GetEvents/>"), -EPROTO, "not an EWS or Autodiscover response"},
	{"undeclared entity", BODY("<m:UnsubscribeResponse>&xxe;</m:UnsubscribeResponse>"), -EPROTO,
         "not well-formed XML"},
};

TEST(impossible_values_and_garbage_fail)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct parsed p = parse(bad_cases[i].xml);

		CHECK_EQ(p.rc, bad_cases[i].rc);
		if (p.rc != bad_cases[i].rc || !contains(p.err.msg, bad_cases[i].msg))
			fprintf(stderr, "%s: rc %d, '%s' (want '%s')\n", bad_cases[i].what, p.rc,
			        p.err.msg, bad_cases[i].msg);
		CHECK(contains(p.err.msg, bad_cases[i].msg));
		ews_response_clear(&p.r);
	}
}

TEST(unknown_elements_are_ignored)
{
	struct parsed p = parse_ok(
		RESPONSE("GetItem", "Warning", "ErrorItemNotFound",
	                 "<m:Fancy><t:Start>not a time</t:Start></m:Fancy>"
	                 "<x:Ext xmlns:x=\"urn:x\"><x:Start>x</x:Start></x:Ext>"
	                 "<m:Items><t:CalendarItem><t:ItemId Id=\"A\"/><t:Whatever a=\"b\"/>"
	                 "<x:Start xmlns:x=\"urn:x\">x</x:Start></t:CalendarItem></m:Items>"));

	CHECK_EQ(p.r.n_messages, 1);
	if (p.r.n_messages == 1) {
		CHECK_EQ(p.r.messages[0].cls, EWS_CLASS_WARNING);
		CHECK_EQ(p.r.messages[0].n_items, 1);
	}
	ews_response_clear(&p.r);
}

/* --- DTDs, entities and limits ---------------------------------------------------------- */

TEST(dtd_refused_entities_not_expanded)
{
	static const char *const docs[] = {
		"<!DOCTYPE s:Envelope [<!ENTITY x \"EXPANDED\">]>" BODY(
			"<m:GetItemResponse><m:ResponseMessages><m:GetItemResponseMessage "
			"ResponseClass=\"Success\"><m:ResponseCode>&x;</m:ResponseCode>"
			"</m:GetItemResponseMessage></m:ResponseMessages></m:GetItemResponse>"),
		/* A billion laughs: stopped before a single declaration is read. */
		"<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
		"<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
		"<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">"
		"<!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">"
		"<!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">"
		"<!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">"
		"<!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">"
		"<!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">"
		"<!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">"
		"]>" BODY("<m:UnsubscribeResponse><m:X a=\"&lol9;\">&lol9;</m:X>"
	                  "</m:UnsubscribeResponse>"),
		/* External entity (XXE) and an external DTD. */
		"<!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>" BODY(
			"<m:SubscribeResponse><m:ResponseMessages><m:SubscribeResponseMessage "
			"ResponseClass=\"Success\"><m:SubscriptionId>&xxe;</m:SubscriptionId>"
			"</m:SubscribeResponseMessage></m:ResponseMessages></m:SubscribeResponse>"),
		"<!DOCTYPE s:Envelope SYSTEM \"http://127.0.0.1:1/x.dtd\">" BODY(
			"<m:UnsubscribeResponse/>"),
		"<!DOCTYPE s:Envelope>" BODY("<m:UnsubscribeResponse/>"),
	};

	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		struct parsed p = parse(docs[i]);

		CHECK_EQ(p.rc, -EPROTO);
		if (!contains(p.err.msg, "DOCTYPE"))
			fprintf(stderr, "DTD case %zu: %s\n", i, p.err.msg);
		CHECK(contains(p.err.msg, "DOCTYPE"));
		CHECK(!contains(p.err.msg, "EXPANDED") && !contains(p.err.msg, "root:"));
		ews_response_clear(&p.r);
	}
}

/* A response whose Body holds an unknown element nested so that the deepest element sits at
 * depth `depth` (the Envelope is depth 1). */
static char *nested(size_t depth)
{
	static const char head[] = ENV_OPEN "<s:Body><m:UnsubscribeResponse>";
	static const char tail[] = "</m:UnsubscribeResponse></s:Body>" ENV_CLOSE;
	size_t inner = depth - 3;
	size_t len = strlen(head) + inner * (strlen("<a>") + strlen("</a>")) + strlen(tail);
	char *s = xmalloc(len + 1);
	char *p = s;

	memcpy(p, head, strlen(head));
	p += strlen(head);
	for (size_t i = 0; i < inner; i++, p += 3)
		memcpy(p, "<a>", 3);
	for (size_t i = 0; i < inner; i++, p += 4)
		memcpy(p, "</a>", 4);
	memcpy(p, tail, strlen(tail) + 1);
	return s;
}

TEST(depth_limit)
{
	char *ok = nested(EWS_MAX_DEPTH);
	char *deep = nested(EWS_MAX_DEPTH + 1);
	char *bomb = nested(200000);
	struct parsed p;

	p = parse_ok(ok);
	CHECK_STREQ(p.r.operation, "Unsubscribe");
	ews_response_clear(&p.r);
	p = parse(deep);
	CHECK_EQ(p.rc, -EMSGSIZE);
	CHECK(contains(p.err.msg, "nested deeper than 64"));
	ews_response_clear(&p.r);
	p = parse(bomb);
	CHECK_EQ(p.rc, -EMSGSIZE);
	ews_response_clear(&p.r);
	free(ok);
	free(deep);
	free(bomb);
}

TEST(element_limit)
{
	static const char head[] = ENV_OPEN "<s:Body><m:UnsubscribeResponse>";
	static const char tail[] = "</m:UnsubscribeResponse></s:Body>" ENV_CLOSE;
	/* Three elements come before the empty ones: Envelope, Body, the response. */
	size_t n = EWS_MAX_ELEMENTS - 3 + 1;
	size_t len = strlen(head) + 4 * n + strlen(tail);
	char *s = xmalloc(len);
	char *p = s;
	struct parsed r;

	memcpy(p, head, strlen(head));
	p += strlen(head);
	for (size_t i = 0; i < n; i++, p += 4)
		memcpy(p, "<a/>", 4);
	memcpy(p, tail, strlen(tail));
	r = parse_n(s, len);
	CHECK_EQ(r.rc, -EMSGSIZE);
	{
		char want[64];

		snprintf(want, sizeof(want), "more than %u elements", EWS_MAX_ELEMENTS);
		CHECK(contains(r.err.msg, want));
	}
	ews_response_clear(&r.r);
	free(s);
}

TEST(size_limit)
{
	size_t len = (size_t)EWS_MAX_RESPONSE + 1;
	char *s = xcalloc(len, 1);
	struct ews_response r;
	struct err err = {0};

	CHECK_EQ(ews_response_parse(s, len, &r, &err), -EMSGSIZE);
	CHECK(contains(err.msg, "limit"));
	CHECK(r.messages == NULL && r.operation == NULL);
	free(s);
}

TEST(names_and_clear)
{
	struct ews_response zero = {0};

	CHECK_STREQ(ews_event_type_name(EWS_EVENT_NEWMAIL), "NewMail");
	CHECK_STREQ(ews_event_type_name((enum ews_event_type)99), NULL);
	CHECK_STREQ(ews_free_busy_name(EWS_FB_WORKING_ELSEWHERE), "WorkingElsewhere");
	CHECK_STREQ(ews_free_busy_name(EWS_FB_UNKNOWN), NULL);
	CHECK_STREQ(ews_sensitivity_name(EWS_SENS_PERSONAL), "Personal");
	CHECK_STREQ(ews_sensitivity_name(EWS_SENS_UNKNOWN), NULL);
	CHECK_STREQ(ews_item_type_name(EWS_ITEM_OCCURRENCE), "Occurrence");
	CHECK_STREQ(ews_item_type_name(EWS_ITEM_UNKNOWN), NULL);
	CHECK_STREQ(ews_change_type_name(EWS_CHANGE_CREATE), "Create");
	CHECK_STREQ(ews_response_class_name(EWS_CLASS_SUCCESS), "Success");
	CHECK_STREQ(ews_response_class_name(EWS_CLASS_ERROR), "Error");
	ews_response_clear(NULL);
	ews_response_clear(&zero);
	ews_response_clear(&zero);
	CHECK(zero.messages == NULL);
}

int main(void)
{
	RUN(every_msdocs_file_is_listed);
	RUN(msdocs_responses);
	RUN(msdocs_requests_are_not_responses);
	RUN(msdocs_truncations);
	RUN(wire_envelopes);
	RUN(fault_exceeded_connection_count);
	RUN(fault_server_busy_back_off);
	RUN(fault_schema_validation);
	RUN(internal_server_error_wraps_inner_code);
	RUN(message_server_busy);
	RUN(calendar_item_fields_and_time_zones);
	RUN(get_events_event_kinds);
	RUN(sync_folder_items_changes);
	RUN(get_folder_probe);
	RUN(autodiscover_users);
	RUN(impossible_values_and_garbage_fail);
	RUN(unknown_elements_are_ignored);
	RUN(dtd_refused_entities_not_expanded);
	RUN(depth_limit);
	RUN(element_limit);
	RUN(size_limit);
	RUN(names_and_clear);
	return harness_done();
}
