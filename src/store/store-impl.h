/* SPDX-License-Identifier: MIT */
/*
 * store-impl.h: the seam between store.h and a storage implementation. store.c checks every
 * argument against store.h's contract (the STORE_MAX_* limits, required strings, enum ranges,
 * occurrences sorted and without duplicate item_id) and then calls the implementation through
 * the struct store_ops of the store; an implementation therefore sees only valid input and does
 * only the storing. SQLite (store-sqlite*.c) is the first implementation; docs/store.md says how
 * to add another. Only store.c and the implementations include this header.
 *
 * Contract of every op (unless its comment says otherwise):
 * - Returns 0 or a negative errno, and puts the detail into the optional err (err_set). The
 *   errno values are those store.h documents for the public function of the same name: -ENOENT
 *   for an unknown mailbox (or missing row), -EBUSY when another connection holds a lock past
 *   STORE_BUSY_TIMEOUT_MS, -EIO / -ENOSPC / -EROFS / -EACCES / -ENOMEM for failures of the
 *   storage itself. out_* parameters are written only on success, and returned arrays and
 *   strings are owned by the caller and freed with store.h's *_clear / *_free functions, so
 *   they must come from xmalloc and its family.
 * - Every op that writes is atomic: on failure nothing it wrote stays. Inside a batch
 *   (batch_begin .. batch_commit) a failing op undoes only its own writes and the batch goes on.
 * - Before the first write that is not in a batch, the op calls the write hook (set_write_hook)
 *   if there is one; the hook may call batch_begin on the same store, and the write then joins
 *   that batch.
 * - Threads: a struct store is one connection and is used by one thread at a time; ops of one
 *   store are never called concurrently. Different stores opened on the same location may be
 *   used from different threads at once (the loop writes, the API and webhook threads read),
 *   and each sees what the others committed, never what is still in their batch.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* What every implementation's store begins with: embed it as the first member of the
 * implementation's own struct and cast back in the ops. */
struct store {
	const struct store_ops *ops;
};

struct store_ops {
	/* Frees the store and everything it holds; s is not NULL. Cannot fail: a batch that is
	 * still open is rolled back. */
	void (*close)(struct store *s);
	/* The schema version of the open database; STORE_SCHEMA_VERSION after a successful
	 * open. */
	int (*schema_version)(const struct store *s);

	/* Write batches (store.h). batch_begin is called only outside a batch and batch_commit
	 * only inside one (store.c answers -EINVAL otherwise); a failed commit leaves nothing of
	 * the batch and ends it. */
	int (*batch_begin)(struct store *s, struct err *err);
	int (*batch_commit)(struct store *s, struct err *err);
	bool (*in_batch)(const struct store *s);
	void (*set_write_hook)(struct store *s, void (*hook)(void *ctx), void *ctx);

	/* Mailboxes: store.h's store_mailbox_* functions, arguments checked. SMTP addresses
	 * compare ignoring ASCII case; mailbox_list sorts by smtp. */
	int (*mailbox_add)(struct store *s, const char *smtp, const char *ews_url,
	                   const char *grouping, struct err *err);
	int (*mailbox_remove)(struct store *s, const char *smtp, struct err *err);
	int (*mailbox_list)(struct store *s, enum store_mb_filter filter,
	                    struct store_mailbox **out_mbs, size_t *out_n, struct err *err);
	int (*mailbox_get)(struct store *s, const char *smtp, struct store_mailbox *out_mb,
	                   struct err *err);
	/* reason is non-NULL exactly for STORE_MB_PARKED. */
	int (*mailbox_set_state)(struct store *s, const char *smtp, enum store_mb_state st,
	                         const char *reason, struct err *err);
	int (*mailbox_set_endpoint)(struct store *s, const char *smtp, const char *backend,
	                            const char *ews_url, const char *grouping, struct err *err);
	int (*mailbox_set_by_api)(struct store *s, const char *smtp, bool by_api, struct err *err);
	int (*mailbox_set_refreshed)(struct store *s, const char *smtp, int64_t refresh_utc,
	                             struct err *err);

	/* Subscriptions: store.h's store_subscription_* functions, arguments checked (a
	 * streaming subscription has no watermark). */
	int (*subscription_put)(struct store *s, const char *smtp,
	                        const struct store_subscription *sub, struct err *err);
	int (*subscription_get)(struct store *s, const char *smtp,
	                        struct store_subscription *out_sub, struct err *err);
	int (*subscription_count)(struct store *s, size_t *out_streaming, size_t *out_pull,
	                          struct err *err);
	int (*subscription_delete)(struct store *s, const char *smtp, struct err *err);
	int (*subscription_set_watermark)(struct store *s, const char *smtp, const char *watermark,
	                                  size_t len, struct err *err);

	/*
	 * Makes sorted[0..n) the mailbox's occurrences and [window_start, window_end) its window,
	 * atomically. sorted is sorted by item_id (strcmp), without duplicates, each occurrence
	 * checked. diff is zeroed; the op fills it (store_diff_add, store_occurrence_fields_differ
	 * below) in item_id order. store.c frees it when the op fails, so the op may leave it half
	 * filled.
	 */
	int (*replace_occurrences)(struct store *s, const char *smtp, int64_t window_start_utc,
	                           int64_t window_end_utc,
	                           const struct cal_occurrence *const *sorted, size_t n,
	                           struct store_diff *diff, struct err *err);
	/* The stored occurrences sorted by start then item_id, read from one snapshot. */
	int (*load_occurrences)(struct store *s, const char *smtp, struct cal_occurrence **out_occs,
	                        size_t *out_n, struct err *err);

	/* Presence and its log: store.h's store_presence_* functions, arguments checked. Event
	 * ids are > 0, strictly increasing and never reused, also after a restart or after old
	 * events were deleted. */
	int (*presence_put)(struct store *s, const char *smtp, const struct store_presence *p,
	                    struct err *err);
	int (*presence_get)(struct store *s, const char *smtp, struct store_presence *out_p,
	                    struct err *err);
	int (*append_presence_event)(struct store *s, const char *smtp,
	                             const struct store_presence *p, const char *reason,
	                             int64_t *out_id, struct err *err);
	/* presence_put and append_presence_event in one transaction. */
	int (*presence_record)(struct store *s, const char *smtp, const struct store_presence *p,
	                       const char *reason, int64_t *out_id, struct err *err);
	/* limit is 1..STORE_MAX_EVENTS_PAGE and after_id >= 0. */
	int (*presence_events_after)(struct store *s, int64_t after_id, size_t limit,
	                             struct store_presence_event **out_evs, size_t *out_n,
	                             struct err *err);
	int (*presence_events_last_id)(struct store *s, int64_t *out_id, struct err *err);

	/* Webhook cursors: urls compare exactly, last_id >= 0. */
	int (*webhook_cursor_get)(struct store *s, const char *url, int64_t *out_last_id,
	                          struct err *err);
	int (*webhook_cursor_set)(struct store *s, const char *url, int64_t last_id,
	                          struct err *err);

	/* store_test_fail_write_after: the n-th write from now fails with -EIO as a full disk
	 * would (and must be undone like any failed write); 0 turns it off. */
	void (*test_fail_write_after)(struct store *s, unsigned n);
};

/*
 * The implementations. open gets the location store_open was given (checked against
 * STORE_MAX_PATH, not empty), creates and migrates the storage as store_open's contract says,
 * and returns 0 and an owned *out_store whose ops point to the implementation's table, or a
 * negative errno with nothing left open.
 */
ATTR_NODISCARD int store_sqlite_open(const char *path, struct store **out_store, struct err *err);

/* ---- helpers for implementations (store.c) ---- */

/* A C0 control that XML 1.0 cannot carry, so no category from Exchange contains it: store.c
 * refuses it in a category, and an implementation may use it to join categories into one
 * column (SQLite does, each category followed by it). */
#define STORE_CATEGORY_SEP '\x1f'

#define STORE_MB_STATE_COUNT (STORE_MB_PARKED + 1)
#define STORE_SUB_KIND_COUNT (STORE_SUB_STREAMING + 1)

/* The text of each state and kind, as stored: "unresolved", ...; "pull", "streaming". */
extern const char *const store_mb_state_names[STORE_MB_STATE_COUNT];
extern const char *const store_sub_kind_names[STORE_SUB_KIND_COUNT];

/* The STORE_F_* set of fields that differ between the stored a and the new b. */
unsigned store_occurrence_fields_differ(const struct cal_occurrence *a,
                                        const struct cal_occurrence *b);

/* Appends a copy of o's item_id and change_key to d as change (fields: the STORE_F_* set for
 * STORE_CHANGED, else 0) and counts it; *cap is d's capacity, 0 for an empty d. */
void store_diff_add(struct store_diff *d, size_t *cap, enum store_change change,
                    const struct cal_occurrence *o, unsigned fields);
