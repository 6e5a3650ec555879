/* SPDX-License-Identifier: MIT */
/*
 * test-ews-errors.c: the ResponseCode table. The expected list below is written from
 * EWS-REFERENCE.md 1.6, table by table and row by row, plus the codes its notes name; the
 * table must hold exactly these codes, sorted, each with the class and flags given here.
 */
#include "ews/ews-errors.h"

#include <stdbool.h>

#include "base/xalloc.h"

#include "harness.h"

#define TRANSIENT    EWS_ERR_TRANSIENT
#define THROTTLED    EWS_ERR_THROTTLED
#define SUB_LOST     EWS_ERR_SUBSCRIPTION_LOST
#define MAILBOX_PERM EWS_ERR_MAILBOX_PERMANENT
#define ACCOUNT_PERM EWS_ERR_ACCOUNT_PERMANENT
#define CLIENT_BUG   EWS_ERR_CLIENT_BUG

struct expect {
	const char *code;
	enum ews_error_class cls;
	unsigned flags;
};

static const struct expect expected[] = {
	/* 1.6 Throttling and transient errors */
	{"ErrorServerBusy", THROTTLED, 0},
	{"ErrorExceededConnectionCount", THROTTLED, 0},
	{"ErrorExceededSubscriptionCount", MAILBOX_PERM, 0},
	{"ErrorTooManyObjectsOpened", THROTTLED, 0},
	{"ErrorInternalServerTransientError", TRANSIENT, 0},
	{"ErrorTimeoutExpired", TRANSIENT, EWS_ERRF_SHRINK},
	{"ErrorMailboxStoreUnavailable", TRANSIENT, 0},
	{"ErrorMailboxFailover", TRANSIENT, 0},
	{"ErrorConnectionFailed", TRANSIENT, 0},
	{"ErrorADUnavailable", TRANSIENT, 0},
	{"ErrorInsufficientResources", TRANSIENT, 0},
	{"ErrorMailboxMoveInProgress", TRANSIENT, EWS_ERRF_REDISCOVER | EWS_ERRF_RESYNC},
	{"ErrorInternalServerError", TRANSIENT, EWS_ERRF_USE_INNER},
	/* 1.6 Impersonation, identity and access */
	{"ErrorImpersonateUserDenied", MAILBOX_PERM, 0},
	{"ErrorImpersonationDenied", ACCOUNT_PERM, 0},
	{"ErrorImpersonationFailed", TRANSIENT, 0},
	{"ErrorInvalidExchangeImpersonationHeaderData", CLIENT_BUG, 0},
	{"ErrorNonExistentMailbox", MAILBOX_PERM, EWS_ERRF_REDISCOVER},
	{"ErrorNonPrimarySmtpAddress", CLIENT_BUG, EWS_ERRF_REDISCOVER},
	{"ErrorAccessDenied", MAILBOX_PERM, 0},
	{"ErrorInvalidServerVersion", CLIENT_BUG, EWS_ERRF_FIX_VERSION},
	{"ErrorIncorrectSchemaVersion", CLIENT_BUG, EWS_ERRF_FIX_VERSION},
	{"ErrorInvalidSchemaVersionForMailboxVersion", CLIENT_BUG, EWS_ERRF_FIX_VERSION},
	{"ErrorSchemaValidation", CLIENT_BUG, 0},
	/* 1.6 Notifications */
	{"ErrorInvalidSubscription", SUB_LOST, EWS_ERRF_RESYNC | EWS_ERRF_ALREADY_GONE},
	{"ErrorSubscriptionNotFound", SUB_LOST, EWS_ERRF_RESYNC | EWS_ERRF_ALREADY_GONE},
	{"ErrorExpiredSubscription", SUB_LOST, EWS_ERRF_RESYNC | EWS_ERRF_ALREADY_GONE},
	{"ErrorInvalidWatermark", SUB_LOST, EWS_ERRF_DROP_WATERMARK | EWS_ERRF_RESYNC},
	{"ErrorMissedNotificationEvents", SUB_LOST, EWS_ERRF_KEEP_SUBSCRIPTION | EWS_ERRF_RESYNC},
	{"ErrorReadEventsFailed", SUB_LOST, EWS_ERRF_REDISCOVER | EWS_ERRF_RESYNC},
	{"ErrorEventNotFound", SUB_LOST, EWS_ERRF_DROP_WATERMARK | EWS_ERRF_RESYNC},
	{"ErrorSubscriptionAccessDenied", SUB_LOST, EWS_ERRF_RESYNC},
	{"ErrorSubscriptionDelegateAccessNotSupported", CLIENT_BUG, 0},
	{"ErrorInvalidSubscriptionRequest", CLIENT_BUG, 0},
	{"ErrorInvalidPullSubscriptionId", CLIENT_BUG, 0},
	{"ErrorNewEventStreamConnectionOpened", EWS_ERR_NONE, EWS_ERRF_KEEP_SUBSCRIPTION},
	{"ErrorProxiedSubscriptionCallFailure", TRANSIENT, 0},
	{"ErrorProxyRequestNotAllowed", SUB_LOST, EWS_ERRF_REDISCOVER | EWS_ERRF_RESYNC},
	{"ErrorSubscriptionUnsubscribed", SUB_LOST, EWS_ERRF_RESYNC | EWS_ERRF_ALREADY_GONE},
	/* 1.6 Sync, calendar view and availability */
	{"ErrorInvalidSyncStateData", CLIENT_BUG, EWS_ERRF_RESYNC},
	{"ErrorSyncFolderNotFound", MAILBOX_PERM, 0},
	{"ErrorFolderNotFound", MAILBOX_PERM, 0},
	{"ErrorCalendarViewRangeTooBig", CLIENT_BUG, 0},
	{"ErrorCalendarFolderIsInvalidForCalendarView", CLIENT_BUG, 0},
	{"ErrorExceededFindCountLimit", THROTTLED, EWS_ERRF_SHRINK},
	{"ErrorItemNotFound", EWS_ERR_NONE, EWS_ERRF_RESYNC},
	{"ErrorMailboxDataArrayTooBig", CLIENT_BUG, 0},
	{"ErrorTimeIntervalTooBig", CLIENT_BUG, 0},
	{"ErrorInvalidMergedFreeBusyInterval", CLIENT_BUG, 0},
	{"ErrorNoFreeBusyAccess", MAILBOX_PERM, 0},
	{"ErrorFreeBusyGenerationFailed", MAILBOX_PERM, 0},
	{"ErrorMailRecipientNotFound", MAILBOX_PERM, 0},
	/* Named in the notes: 1.3 (NoError), 1.1 (SOAPAction), 9 (RequestedView None) */
	{"NoError", EWS_ERR_NONE, 0},
	{"ErrorInvalidRequest", CLIENT_BUG, 0},
	{"ErrorInvalidFreeBusyViewType", CLIENT_BUG, 0},
};

#define N_EXPECTED (sizeof(expected) / sizeof(expected[0]))

TEST(table_is_sorted_and_unique)
{
	size_t n = 0;
	const struct ews_error_info *t = ews_error_table(&n);

	CHECK(n > 0);
	for (size_t i = 1; i < n; i++) {
		/* Strictly ascending: sorted, and no code twice. */
		if (strcmp(t[i - 1].code, t[i].code) >= 0)
			harness_fail(__FILE__, __LINE__, "%s before %s", t[i - 1].code, t[i].code);
	}
}

TEST(every_reference_code_with_its_class_and_flags)
{
	for (size_t i = 0; i < N_EXPECTED; i++) {
		const struct expect *e = &expected[i];
		const struct ews_error_info *info = ews_error_lookup(e->code, strlen(e->code));

		if (info == NULL) {
			harness_fail(__FILE__, __LINE__, "%s is missing", e->code);
			continue;
		}
		CHECK_STREQ(info->code, e->code);
		if (info->cls != e->cls || info->flags != e->flags)
			harness_fail(__FILE__, __LINE__, "%s: class %s flags %#x, want %s %#x",
			             e->code, ews_error_class_name(info->cls), info->flags,
			             ews_error_class_name(e->cls), e->flags);
		CHECK_EQ(ews_error_class_of(e->code, strlen(e->code)), e->cls);
	}
}

TEST(nothing_but_the_reference_codes)
{
	size_t n = 0;
	const struct ews_error_info *t = ews_error_table(&n);

	/* The expected list itself names each code once. */
	for (size_t i = 0; i < N_EXPECTED; i++)
		for (size_t j = i + 1; j < N_EXPECTED; j++)
			CHECK(strcmp(expected[i].code, expected[j].code) != 0);
	CHECK_EQ(n, N_EXPECTED);
	for (size_t i = 0; i < n; i++) {
		bool found = false;

		for (size_t j = 0; j < N_EXPECTED; j++)
			found = found || strcmp(t[i].code, expected[j].code) == 0;
		if (!found)
			harness_fail(__FILE__, __LINE__, "%s is not in the expected list",
			             t[i].code);
	}
}

/* Every code is a value of ResponseCodeType in messages.xsd, so none is misspelt. */
TEST(every_code_is_in_the_schema)
{
	const char *dir = getenv("EWS_SCHEMA_DIR");
	char path[4096];
	char chunk[4096];
	char *xsd = NULL;
	size_t len = 0;
	size_t got;
	size_t n = 0;
	const struct ews_error_info *t = ews_error_table(&n);
	FILE *f;

	CHECK(dir != NULL);
	if (dir == NULL)
		return;
	(void)snprintf(path, sizeof(path), "%s/messages.xsd", dir);
	f = fopen(path, "rb");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		xsd = xrealloc(xsd, len + got + 1);
		memcpy(xsd + len, chunk, got);
		len += got;
		xsd[len] = '\0';
	}
	fclose(f);
	CHECK(xsd != NULL && strstr(xsd, "name=\"ResponseCodeType\"") != NULL);
	CHECK(n > 0);
	for (size_t i = 0; xsd != NULL && i < n; i++) {
		char value[128];

		(void)snprintf(value, sizeof(value), "value=\"%s\"", t[i].code);
		if (strstr(xsd, value) == NULL)
			harness_fail(__FILE__, __LINE__, "%s is not in messages.xsd", t[i].code);
	}
	free(xsd);
}

TEST(lookup_reads_exactly_len_bytes)
{
	/* Codes inside larger text, as the response reader has them: no NUL after them. */
	static const char text[] = "ErrorServerBusyErrorItemNotFoundXNoError";
	const struct ews_error_info *info;
	char *exact = xmemdup("ErrorServerBusy", 15);

	info = ews_error_lookup(text, 15);
	CHECK(info != NULL && strcmp(info->code, "ErrorServerBusy") == 0);
	info = ews_error_lookup(text + 15, 17);
	CHECK(info != NULL && strcmp(info->code, "ErrorItemNotFound") == 0);
	CHECK(ews_error_lookup(text + 15, 18) == NULL);
	CHECK(ews_error_lookup(text + 33, 7) != NULL);
	/* A prefix or an extension of a code is not that code. */
	CHECK(ews_error_lookup(text, 14) == NULL);
	CHECK(ews_error_lookup(text, 16) == NULL);
	CHECK(ews_error_lookup("ErrorInvalidSubscriptionRequest", 24) != NULL);
	CHECK_EQ(ews_error_lookup("ErrorInvalidSubscriptionRequest", 24)->cls,
	         EWS_ERR_SUBSCRIPTION_LOST);
	/* Byte for byte: case and embedded NULs matter. */
	CHECK(ews_error_lookup("errorserverbusy", 15) == NULL);
	CHECK(ews_error_lookup("NoError\0", 8) == NULL);
	CHECK(ews_error_lookup(exact, 15) != NULL);
	free(exact);
}

TEST(unknown_codes)
{
	CHECK(ews_error_lookup("ErrorSomethingNew", 17) == NULL);
	CHECK_EQ(ews_error_class_of("ErrorSomethingNew", 17), EWS_ERR_UNKNOWN);
	CHECK(ews_error_lookup("", 0) == NULL);
	CHECK(ews_error_lookup(NULL, 0) == NULL);
	CHECK_EQ(ews_error_class_of(NULL, 0), EWS_ERR_UNKNOWN);
	/* Before the first entry and after the last. */
	CHECK(ews_error_lookup("A", 1) == NULL);
	CHECK(ews_error_lookup("Z", 1) == NULL);
	CHECK(ews_error_lookup("\xff", 1) == NULL);
}

TEST(every_entry_is_found_at_every_length)
{
	size_t n = 0;
	const struct ews_error_info *t = ews_error_table(&n);

	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(t[i].code);

		CHECK(ews_error_lookup(t[i].code, len) == &t[i]);
		/* Every proper prefix is unknown (no code is a prefix of another here). */
		for (size_t k = 1; k < len; k++) {
			const struct ews_error_info *p = ews_error_lookup(t[i].code, k);

			if (p != NULL && strlen(p->code) != k)
				harness_fail(__FILE__, __LINE__, "%.*s found %s", (int)k, t[i].code,
				             p->code);
		}
	}
}

TEST(class_names)
{
	CHECK_STREQ(ews_error_class_name(EWS_ERR_NONE), "none");
	CHECK_STREQ(ews_error_class_name(EWS_ERR_TRANSIENT), "transient");
	CHECK_STREQ(ews_error_class_name(EWS_ERR_THROTTLED), "throttled");
	CHECK_STREQ(ews_error_class_name(EWS_ERR_SUBSCRIPTION_LOST), "subscription-lost");
	CHECK_STREQ(ews_error_class_name(EWS_ERR_MAILBOX_PERMANENT), "mailbox-permanent");
	CHECK_STREQ(ews_error_class_name(EWS_ERR_ACCOUNT_PERMANENT), "account-permanent");
	CHECK_STREQ(ews_error_class_name(EWS_ERR_CLIENT_BUG), "client-bug");
	CHECK_STREQ(ews_error_class_name(EWS_ERR_UNKNOWN), "unknown");
	CHECK_STREQ(ews_error_class_name((enum ews_error_class)99), "unknown");
}

/* Flags that contradict each other, or the class, never appear together. */
TEST(flags_are_consistent)
{
	size_t n = 0;
	const struct ews_error_info *t = ews_error_table(&n);

	for (size_t i = 0; i < n; i++) {
		unsigned f = t[i].flags;

		/* Only the flags the engine acts on (ews-errors.h). */
		if ((f & ~(unsigned)(EWS_ERRF_RESYNC | EWS_ERRF_KEEP_SUBSCRIPTION |
		                     EWS_ERRF_DROP_WATERMARK | EWS_ERRF_REDISCOVER |
		                     EWS_ERRF_ALREADY_GONE | EWS_ERRF_FIX_VERSION |
		                     EWS_ERRF_SHRINK | EWS_ERRF_USE_INNER)) != 0)
			harness_fail(__FILE__, __LINE__, "%s: flags %#x", t[i].code, f);
		if ((f & EWS_ERRF_FIX_VERSION) && t[i].cls != EWS_ERR_CLIENT_BUG)
			harness_fail(__FILE__, __LINE__, "%s: a version fix, not a client bug",
			             t[i].code);
		if ((f & EWS_ERRF_KEEP_SUBSCRIPTION) && (f & EWS_ERRF_DROP_WATERMARK))
			harness_fail(__FILE__, __LINE__, "%s keeps and drops", t[i].code);
		if ((f & EWS_ERRF_ALREADY_GONE) && t[i].cls != EWS_ERR_SUBSCRIPTION_LOST)
			harness_fail(__FILE__, __LINE__, "%s: gone but not lost", t[i].code);
		if ((f & EWS_ERRF_DROP_WATERMARK) && t[i].cls != EWS_ERR_SUBSCRIPTION_LOST)
			harness_fail(__FILE__, __LINE__, "%s: new watermark, old subscription",
			             t[i].code);
		if (t[i].cls == EWS_ERR_UNKNOWN)
			harness_fail(__FILE__, __LINE__, "%s: class unknown in the table",
			             t[i].code);
	}
	CHECK_EQ(ews_error_lookup("NoError", 7)->flags, 0);
}

/* The CalendarView page after a SHRINK: a first size under EWSFindCountLimit, then halves. */
TEST(shrink_entries)
{
	CHECK_EQ(ews_error_shrink_entries(0), EWS_SHRINK_FIRST_ENTRIES);
	CHECK_EQ(ews_error_shrink_entries(250), 125);
	CHECK_EQ(ews_error_shrink_entries(125), 62);
	CHECK_EQ(ews_error_shrink_entries(62), EWS_SHRINK_MIN_ENTRIES);
	CHECK_EQ(ews_error_shrink_entries(EWS_SHRINK_MIN_ENTRIES), EWS_SHRINK_MIN_ENTRIES);
	CHECK_EQ(ews_error_shrink_entries(1), EWS_SHRINK_MIN_ENTRIES);
	CHECK_EQ(ews_error_shrink_entries(1000), 500);
	CHECK(EWS_SHRINK_FIRST_ENTRIES < 250 + 1 && EWS_SHRINK_MIN_ENTRIES > 0);
}

int main(void)
{
	RUN(table_is_sorted_and_unique);
	RUN(every_reference_code_with_its_class_and_flags);
	RUN(nothing_but_the_reference_codes);
	RUN(every_code_is_in_the_schema);
	RUN(lookup_reads_exactly_len_bytes);
	RUN(unknown_codes);
	RUN(every_entry_is_found_at_every_length);
	RUN(class_names);
	RUN(flags_are_consistent);
	RUN(shrink_entries);
	return harness_done();
}
