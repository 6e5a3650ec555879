/* SPDX-License-Identifier: MIT */
/*
 * ews-errors.h: the one table that says what each EWS ResponseCode means for calsync
 * (EWS-REFERENCE.md 1.6): a class the sync engine acts on, and flags for what to do besides.
 * Pure and constant.
 */
#pragma once

#include <stddef.h>

#include "base/compat.h"

enum ews_error_class {
	EWS_ERR_NONE = 0,          /* NoError */
	EWS_ERR_TRANSIENT,         /* retry with jittered exponential back-off */
	EWS_ERR_THROTTLED,         /* pause the budget: BackOffMilliseconds, else exponential */
	EWS_ERR_SUBSCRIPTION_LOST, /* resubscribe, then re-read the mailbox */
	EWS_ERR_MAILBOX_PERMANENT, /* park this mailbox, report it, retry slowly */
	EWS_ERR_ACCOUNT_PERMANENT, /* the service account's configuration: alert, stop hammering */
	EWS_ERR_CLIENT_BUG,        /* our request was wrong: do not retry the same request */
	EWS_ERR_UNKNOWN,           /* a code not in the table: treated as transient by callers */
};

/*
 * What to do besides what the class says. Each flag is acted on by the sync engine; bits 3 and
 * 9 are free (DROP_SYNC_STATE and CHECK_AFFINITY promised reactions calsync has no use for:
 * it sends no SyncFolderItems, and it sends the affinity headers and cookie on every request
 * of a streaming group, so a lost subscription is resubscribed like any other).
 */
enum ews_error_flags {
	EWS_ERRF_RESYNC = 1u << 0,            /* re-read the mailbox's window */
	EWS_ERRF_KEEP_SUBSCRIPTION = 1u << 1, /* ErrorMissedNotificationEvents: keep it */
	EWS_ERRF_DROP_WATERMARK = 1u << 2,    /* resubscribe without the stored watermark */
	EWS_ERRF_REDISCOVER = 1u << 4,        /* run Autodiscover again and regroup */
	EWS_ERRF_ALREADY_GONE = 1u << 5,      /* for Unsubscribe: success */
	/* The RequestServerVersion sent was refused. Only the configuration can fix it (`<ews
	 * version>`): the engine parks the mailbox, naming it, and a reload retries at once. */
	EWS_ERRF_FIX_VERSION = 1u << 6,
	/* The request was too big for the server: a CalendarView read is sent again in smaller
	 * pages (ews_error_shrink_entries). */
	EWS_ERRF_SHRINK = 1u << 7,
	EWS_ERRF_USE_INNER = 1u << 8, /* look at InnerErrorResponseCode first */
};

/* The first CalendarView page size after a SHRINK, when the request named none: under both
 * EWSFindCountLimit defaults (1000 items in flight per user, 250 with a restriction). */
#define EWS_SHRINK_FIRST_ENTRIES 250u
/* The smallest: the engine's 100 pages of these still hold 5,000 occurrences. */
#define EWS_SHRINK_MIN_ENTRIES 50u

/*
 * The CalendarView MaxEntriesReturned to send after an answer with EWS_ERRF_SHRINK to a request
 * that sent max_entries (0: none): EWS_SHRINK_FIRST_ENTRIES, else half, never below
 * EWS_SHRINK_MIN_ENTRIES (which a further SHRINK keeps).
 */
unsigned ews_error_shrink_entries(unsigned max_entries);

struct ews_error_info {
	const char *code;
	enum ews_error_class cls;
	unsigned flags;
};

/* The entry for a ResponseCode (len bytes, not NUL-terminated), or NULL when the code is not
 * in the table. "NoError" is in it. */
const struct ews_error_info *ews_error_lookup(const char *code, size_t len);

/* The class of a code: EWS_ERR_UNKNOWN when not in the table. */
enum ews_error_class ews_error_class_of(const char *code, size_t len);

/* "transient", "throttled", "subscription-lost", "mailbox-permanent", "account-permanent",
 * "client-bug", "unknown", "none". */
const char *ews_error_class_name(enum ews_error_class c);

/* The whole table, sorted by code, for tests and `calsync check`. */
const struct ews_error_info *ews_error_table(size_t *out_n);
