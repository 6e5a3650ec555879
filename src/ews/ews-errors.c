/* SPDX-License-Identifier: MIT */
/*
 * ews-errors.c: the ResponseCode table. Every code of EWS-REFERENCE.md 1.6 and the codes its
 * notes name (1.1, 5, 9), with the class and flags that the reference's "Reaction" column asks
 * for. docs/ews-client-stream-errors.md explains each choice that is not read off directly:
 *
 * - ErrorMissedNotificationEvents is subscription-lost + KEEP_SUBSCRIPTION + RESYNC, not
 *   transient: events are gone, so the mailbox must be re-read, and a caller that looks only
 *   at the class then does too much (resubscribes) rather than too little (misses changes).
 * - ErrorNewEventStreamConnectionOpened and ErrorItemNotFound are class "none": neither is a
 *   failure to retry. The first says a newer connection took over the subscriptions (end the
 *   old one quietly, never reconnect it); the second that an item went away (RESYNC confirms).
 * - Subscription codes that Unsubscribe may treat as success carry ALREADY_GONE (section 5).
 * - A refused RequestServerVersion carries FIX_VERSION: the configured version is the fix, not
 *   a guess at another (ErrorIncorrectSchemaVersion can even mean "too old").
 * - SHRINK is only where calsync has a size to shrink: the CalendarView page of a read
 *   (ErrorExceededFindCountLimit, ErrorTimeoutExpired). Codes of requests calsync never sends
 *   (SyncFolderItems, GetUserAvailability), of a window it cannot exceed (at most 398 days,
 *   ErrorCalendarViewRangeTooBig's limit is two years) or of parallelism it does not have (one
 *   request per mailbox's budget at a time) carry their class only.
 *
 * The table is sorted by code in byte order (what memcmp and strcmp give), which
 * test-ews-errors.c checks, so lookups are a binary search.
 */
#include "ews/ews-errors.h"

/*
 * Table shorthand, so that each code is one row like the reference's: ENTRY(code, class, flags)
 * with the class and flag names shorn of their EWS_ERR_ and EWS_ERRF_ prefixes.
 */
#define ENTRY(c, k, f)                                        \
	{                                                     \
		.code = (c), .cls = EWS_ERR_##k, .flags = (f) \
	}
#define RESYNC            EWS_ERRF_RESYNC
#define KEEP_SUBSCRIPTION EWS_ERRF_KEEP_SUBSCRIPTION
#define DROP_WATERMARK    EWS_ERRF_DROP_WATERMARK
#define REDISCOVER        EWS_ERRF_REDISCOVER
#define ALREADY_GONE      EWS_ERRF_ALREADY_GONE
#define FIX_VERSION       EWS_ERRF_FIX_VERSION
#define SHRINK            EWS_ERRF_SHRINK
#define USE_INNER         EWS_ERRF_USE_INNER

static const struct ews_error_info table[] = {
	ENTRY("ErrorADUnavailable", TRANSIENT, 0),
	ENTRY("ErrorAccessDenied", MAILBOX_PERMANENT, 0),
	ENTRY("ErrorCalendarFolderIsInvalidForCalendarView", CLIENT_BUG, 0),
	/* calsync's window (at most 398 days) is under the limit (two years). */
	ENTRY("ErrorCalendarViewRangeTooBig", CLIENT_BUG, 0),
	ENTRY("ErrorConnectionFailed", TRANSIENT, 0),
	/* The subscription is deleted with the event: a new one must start without a watermark. */
	ENTRY("ErrorEventNotFound", SUBSCRIPTION_LOST, DROP_WATERMARK | RESYNC),
	/* EWSMaxConcurrency, or HangingConnectionLimit for GetStreamingEvents. calsync has one
	 * request per budget at a time (a group's stream on a member's budget of its own): backing
	 * off is all it can do. */
	ENTRY("ErrorExceededConnectionCount", THROTTLED, 0),
	/* EWSFindCountLimit: items in flight per user. With one request per mailbox at a time,
	 * that is one CalendarView answer too big: smaller pages. */
	ENTRY("ErrorExceededFindCountLimit", THROTTLED, SHRINK),
	/* EWSMaxSubscriptions is charged to the impersonated mailbox: stale subscriptions on that
	 * mailbox must expire or be cleaned up, so retrying soon cannot help. */
	ENTRY("ErrorExceededSubscriptionCount", MAILBOX_PERMANENT, 0),
	ENTRY("ErrorExpiredSubscription", SUBSCRIPTION_LOST, RESYNC | ALREADY_GONE),
	ENTRY("ErrorFolderNotFound", MAILBOX_PERMANENT, 0),
	ENTRY("ErrorFreeBusyGenerationFailed", MAILBOX_PERMANENT, 0),
	ENTRY("ErrorImpersonateUserDenied", MAILBOX_PERMANENT, 0),
	ENTRY("ErrorImpersonationDenied", ACCOUNT_PERMANENT, 0),
	/* "Transient-to-fatal": back off; the caller alerts when it keeps coming. */
	ENTRY("ErrorImpersonationFailed", TRANSIENT, 0),
	ENTRY("ErrorIncorrectSchemaVersion", CLIENT_BUG, FIX_VERSION),
	ENTRY("ErrorInsufficientResources", TRANSIENT, 0),
	/* The outer code of a wrapped one (an HTTP 200 ErrorInternalServerError can carry
	 * ErrorServerBusy); transient when there is no inner code. */
	ENTRY("ErrorInternalServerError", TRANSIENT, USE_INNER),
	ENTRY("ErrorInternalServerTransientError", TRANSIENT, 0),
	ENTRY("ErrorInvalidExchangeImpersonationHeaderData", CLIENT_BUG, 0),
	ENTRY("ErrorInvalidFreeBusyViewType", CLIENT_BUG, 0),
	ENTRY("ErrorInvalidMergedFreeBusyInterval", CLIENT_BUG, 0),
	ENTRY("ErrorInvalidPullSubscriptionId", CLIENT_BUG, 0),
	ENTRY("ErrorInvalidRequest", CLIENT_BUG, 0),
	ENTRY("ErrorInvalidSchemaVersionForMailboxVersion", CLIENT_BUG, FIX_VERSION),
	ENTRY("ErrorInvalidServerVersion", CLIENT_BUG, FIX_VERSION),
	ENTRY("ErrorInvalidSubscription", SUBSCRIPTION_LOST, RESYNC | ALREADY_GONE),
	/* Several mailboxes (or public folders) in one subscription. */
	ENTRY("ErrorInvalidSubscriptionRequest", CLIENT_BUG, 0),
	/* A SyncFolderItems answer (calsync sends none): the stored SyncState is bad. */
	ENTRY("ErrorInvalidSyncStateData", CLIENT_BUG, RESYNC),
	ENTRY("ErrorInvalidWatermark", SUBSCRIPTION_LOST, DROP_WATERMARK | RESYNC),
	/* A normal race (moved or deleted since the notification): the item is gone, and
	 * SyncFolderItems confirms it. Not a failure. */
	ENTRY("ErrorItemNotFound", NONE, RESYNC),
	ENTRY("ErrorMailRecipientNotFound", MAILBOX_PERMANENT, 0),
	/* More than 100 mailboxes in one GetUserAvailability (calsync sends none; the request
	 * writer refuses more than EWS_MAX_AVAILABILITY_MAILBOXES). */
	ENTRY("ErrorMailboxDataArrayTooBig", CLIENT_BUG, 0),
	ENTRY("ErrorMailboxFailover", TRANSIENT, 0),
	/* Retry later; the mailbox then lives elsewhere and its subscription is gone. */
	ENTRY("ErrorMailboxMoveInProgress", TRANSIENT, REDISCOVER | RESYNC),
	ENTRY("ErrorMailboxStoreUnavailable", TRANSIENT, 0),
	ENTRY("ErrorMissedNotificationEvents", SUBSCRIPTION_LOST, KEEP_SUBSCRIPTION | RESYNC),
	/* A newer connection now streams these subscriptions: end this one quietly and do not
	 * reconnect it, or the two connections would take the subscriptions back and forth. */
	ENTRY("ErrorNewEventStreamConnectionOpened", NONE, KEEP_SUBSCRIPTION),
	ENTRY("ErrorNoFreeBusyAccess", MAILBOX_PERMANENT, 0),
	/* Also what a mailbox that moved to Exchange Online answers on premises: Autodiscover
	 * then says where it is (RedirectAddress). */
	ENTRY("ErrorNonExistentMailbox", MAILBOX_PERMANENT, REDISCOVER),
	/* We sent an alias: re-send with the primary address the response names (or that a new
	 * Autodiscover gives), never the same request. */
	ENTRY("ErrorNonPrimarySmtpAddress", CLIENT_BUG, REDISCOVER),
	ENTRY("ErrorProxiedSubscriptionCallFailure", TRANSIENT, 0),
	ENTRY("ErrorProxyRequestNotAllowed", SUBSCRIPTION_LOST, REDISCOVER | RESYNC),
	ENTRY("ErrorReadEventsFailed", SUBSCRIPTION_LOST, REDISCOVER | RESYNC),
	ENTRY("ErrorSchemaValidation", CLIENT_BUG, 0),
	ENTRY("ErrorServerBusy", THROTTLED, 0),
	/* Only the creating account may use a subscription (say, IDs stored under another
	 * service account): a new subscription, made by this account, fixes it. */
	ENTRY("ErrorSubscriptionAccessDenied", SUBSCRIPTION_LOST, RESYNC),
	/* Subscriptions need impersonation, not delegate access. */
	ENTRY("ErrorSubscriptionDelegateAccessNotSupported", CLIENT_BUG, 0),
	/* Also what lost affinity looks like (EWS-REFERENCE 4.4): a resubscribe with the group's
	 * headers and cookie puts the subscription where the group's requests go. */
	ENTRY("ErrorSubscriptionNotFound", SUBSCRIPTION_LOST, RESYNC | ALREADY_GONE),
	ENTRY("ErrorSubscriptionUnsubscribed", SUBSCRIPTION_LOST, RESYNC | ALREADY_GONE),
	ENTRY("ErrorSyncFolderNotFound", MAILBOX_PERMANENT, 0),
	/* GetUserAvailability's window (calsync sends none). */
	ENTRY("ErrorTimeIntervalTooBig", CLIENT_BUG, 0),
	/* May also mean the request was too big: a read tries smaller pages. */
	ENTRY("ErrorTimeoutExpired", TRANSIENT, SHRINK),
	/* Usually too many parallel requests: back off as for ErrorServerBusy (calsync has one
	 * request per budget at a time, so it has none fewer to send). */
	ENTRY("ErrorTooManyObjectsOpened", THROTTLED, 0),
	ENTRY("NoError", NONE, 0),
};

/* Orders (code, len) against a table entry the way strcmp orders two strings. */
static int compare(const char *code, size_t len, const char *entry)
{
	size_t n = strlen(entry);
	int c = memcmp(code, entry, len < n ? len : n);

	if (c != 0)
		return c;
	if (len == n)
		return 0;
	return len < n ? -1 : 1;
}

const struct ews_error_info *ews_error_lookup(const char *code, size_t len)
{
	size_t lo = 0;
	size_t hi = sizeof(table) / sizeof(table[0]);

	/* No code is empty, and memcmp must not see a NULL pointer even for zero bytes. */
	if (code == NULL || len == 0)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = compare(code, len, table[mid].code);

		if (c == 0)
			return &table[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

enum ews_error_class ews_error_class_of(const char *code, size_t len)
{
	const struct ews_error_info *info = ews_error_lookup(code, len);

	return info != NULL ? info->cls : EWS_ERR_UNKNOWN;
}

const char *ews_error_class_name(enum ews_error_class c)
{
	switch (c) {
	case EWS_ERR_NONE:
		return "none";
	case EWS_ERR_TRANSIENT:
		return "transient";
	case EWS_ERR_THROTTLED:
		return "throttled";
	case EWS_ERR_SUBSCRIPTION_LOST:
		return "subscription-lost";
	case EWS_ERR_MAILBOX_PERMANENT:
		return "mailbox-permanent";
	case EWS_ERR_ACCOUNT_PERMANENT:
		return "account-permanent";
	case EWS_ERR_CLIENT_BUG:
		return "client-bug";
	case EWS_ERR_UNKNOWN:
		break;
	}
	/* Also for a value outside the enum: whatever it is, we do not know it. */
	return "unknown";
}

unsigned ews_error_shrink_entries(unsigned max_entries)
{
	unsigned half = max_entries / 2;

	if (max_entries == 0)
		return EWS_SHRINK_FIRST_ENTRIES;
	return half > EWS_SHRINK_MIN_ENTRIES ? half : EWS_SHRINK_MIN_ENTRIES;
}

const struct ews_error_info *ews_error_table(size_t *out_n)
{
	*out_n = sizeof(table) / sizeof(table[0]);
	return table;
}
