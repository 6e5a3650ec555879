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

/* What to do besides what the class says. */
enum ews_error_flags {
	EWS_ERRF_RESYNC = 1u << 0,            /* re-read the mailbox's window */
	EWS_ERRF_KEEP_SUBSCRIPTION = 1u << 1, /* ErrorMissedNotificationEvents: keep it */
	EWS_ERRF_DROP_WATERMARK = 1u << 2,    /* resubscribe without the stored watermark */
	EWS_ERRF_DROP_SYNC_STATE = 1u << 3,   /* full SyncFolderItems without SyncState */
	EWS_ERRF_REDISCOVER = 1u << 4,        /* run Autodiscover again and regroup */
	EWS_ERRF_ALREADY_GONE = 1u << 5,      /* for Unsubscribe: success */
	EWS_ERRF_VERSION_DOWN = 1u << 6,      /* step RequestServerVersion down one */
	EWS_ERRF_SHRINK = 1u << 7,            /* smaller batch, window or fewer parallel requests */
	EWS_ERRF_USE_INNER = 1u << 8,         /* look at InnerErrorResponseCode first */
	EWS_ERRF_CHECK_AFFINITY = 1u << 9,    /* may mean lost affinity (headers, cookie) */
};

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
