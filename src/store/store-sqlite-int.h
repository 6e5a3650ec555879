/* SPDX-License-Identifier: MIT */
/*
 * store-sqlite-int.h: what the files of the SQLite store share: the connection (struct
 * store_sqlite), the names of its cached statements, the statement and transaction helpers of
 * store-sqlite.c, and the ops each concern's file provides for the table in store-sqlite.c.
 * Internal names carry the prefix sq_. Only store-sqlite*.c include this header; they are the
 * only code that sees sqlite3*.
 */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store-impl.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* The statements, each a constant in sq_sql (store-sqlite.c), prepared once per connection. */
enum q {
	Q_BEGIN,
	Q_BEGIN_READ,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_SAVEPOINT,
	Q_RELEASE,
	Q_ROLLBACK_TO,
	Q_USER_VERSION,
	Q_APPLICATION_ID,
	Q_COUNT_SCHEMA,
	Q_MB_ID,
	Q_MB_ADD,
	Q_MB_DISABLE,
	Q_MB_LIST_ALL,
	Q_MB_LIST_ENABLED,
	Q_MB_GET,
	Q_MB_SET_STATE,
	Q_MB_SET_ENDPOINT,
	Q_MB_SET_REFRESHED,
	Q_MB_SET_BY_API,
	Q_MB_SET_WINDOW,
	Q_SUB_PUT,
	Q_SUB_GET,
	Q_SUB_DELETE,
	Q_SUB_COUNT,
	Q_SUB_WATERMARK,
	Q_OCC_BY_ID,
	Q_OCC_BY_START,
	Q_OCC_PUT,
	Q_OCC_DELETE,
	Q_PRES_PUT,
	Q_PRES_GET,
	Q_EV_APPEND,
	Q_EV_AFTER,
	Q_EV_LAST_ID,
	Q_HOOK_GET,
	Q_HOOK_SET,
	Q_COUNT_,
};

/* One connection. base comes first: the ops get &base and cast back (sq_from). */
struct store_sqlite {
	struct store base;
	sqlite3 *db;
	sqlite3_stmt *stmts[Q_COUNT_];
	int version;
	unsigned fail_after; /* store_test_fail_write_after */
	bool batch;          /* store_batch_begin: functions use savepoints */
	void (*write_hook)(void *ctx);
	void *write_hook_ctx;
};

static inline struct store_sqlite *sq_from(struct store *s)
{
	return (struct store_sqlite *)s;
}

static inline const struct store_sqlite *sq_from_const(const struct store *s)
{
	return (const struct store_sqlite *)s;
}

/* ---- store-sqlite.c: errors, statements, transactions ---- */

/* Sets err from SQLite's result rc and message ("store: what: ..."); returns the mapped negative
 * errno. */
int sq_fail(struct store_sqlite *s, int rc, const char *what, struct err *err);

/* The cached statement q, reset and without bindings, ready to bind. */
int sq_stmt(struct store_sqlite *s, enum q q, sqlite3_stmt **out, struct err *err);
/* Ends a statement's use: a read statement left unreset would pin its WAL snapshot. */
void sq_stmt_done(sqlite3_stmt *st);

/* Binds accumulate into *rc, which stays at the first failure, so one check covers all. Text
 * and blobs are bound without a copy: they must live until the statement is done. */
void sq_bind_text(int *rc, sqlite3_stmt *st, int i, const char *v);
void sq_bind_i64(int *rc, sqlite3_stmt *st, int i, int64_t v);
/* An instant: 0 ("none") is stored as NULL, so the CLI shows what is unset. */
void sq_bind_time(int *rc, sqlite3_stmt *st, int i, int64_t v);
void sq_bind_blob(int *rc, sqlite3_stmt *st, int i, const char *v, size_t len);
/* A text or blob column as an owned string with a NUL after its bytes, or NULL. */
char *sq_col_str(sqlite3_stmt *st, int i, size_t *out_len);
/* The index of name in names, or -1. Used only on text the schema's CHECKs allow. */
int sq_name_index(const char *const *names, size_t n, const unsigned char *name);

/* Runs a write statement to completion; calls the write hook first, and is where
 * store_test_fail_write_after strikes. */
int sq_step_write(struct store_sqlite *s, sqlite3_stmt *st, const char *what, struct err *err);
/* Runs a bound single-row UPDATE/DELETE/INSERT keyed by smtp (brc: the bind result) and ends
 * the statement; -ENOENT when no row matched. */
int sq_update_one(struct store_sqlite *s, sqlite3_stmt *st, int brc, const char *smtp,
                  const char *what, struct err *err);
/* A single integer result (PRAGMA user_version, count(*)). */
int sq_query_int(struct store_sqlite *s, enum q q, int64_t *out, struct err *err);
/* Runs every statement of a constant script (a migration), one prepared statement at a time. */
int sq_run_script(struct store_sqlite *s, const char *script, struct err *err);

/* A function's own transaction: BEGIN IMMEDIATE (Q_BEGIN) or BEGIN (Q_BEGIN_READ, for reads of
 * several statements), or a savepoint in a batch. sq_begin is sq_begin_as(Q_BEGIN). */
int sq_begin_as(struct store_sqlite *s, enum q q, struct err *err);
int sq_begin(struct store_sqlite *s, struct err *err);
/* Commits the function's transaction (releases its savepoint); rolls it back on failure. */
int sq_commit(struct store_sqlite *s, struct err *err);
/* Undoes the open transaction (in a batch: the function's savepoint), if SQLite has not already
 * rolled it back after the error. */
void sq_rollback(struct store_sqlite *s);

/* ---- store-sqlite-schema.c ---- */

/* Refuses a newer or foreign database, runs the missing migrations (each in its own
 * transaction) and sets s->version. */
int sq_migrate(struct store_sqlite *s, struct err *err);

/* ---- the ops, by file (store-impl.h says what each must do) ---- */

/* store-sqlite-mailbox.c */
int sq_mailbox_add(struct store *s, const char *smtp, const char *ews_url, const char *grouping,
                   struct err *err);
int sq_mailbox_remove(struct store *s, const char *smtp, struct err *err);
int sq_mailbox_list(struct store *s, enum store_mb_filter filter, struct store_mailbox **out_mbs,
                    size_t *out_n, struct err *err);
int sq_mailbox_get(struct store *s, const char *smtp, struct store_mailbox *out_mb,
                   struct err *err);
int sq_mailbox_set_state(struct store *s, const char *smtp, enum store_mb_state st,
                         const char *reason, struct err *err);
int sq_mailbox_set_endpoint(struct store *s, const char *smtp, const char *backend,
                            const char *ews_url, const char *grouping, struct err *err);
int sq_mailbox_set_by_api(struct store *s, const char *smtp, bool by_api, struct err *err);
int sq_mailbox_set_refreshed(struct store *s, const char *smtp, int64_t refresh_utc,
                             struct err *err);
int sq_subscription_put(struct store *s, const char *smtp, const struct store_subscription *sub,
                        struct err *err);
int sq_subscription_get(struct store *s, const char *smtp, struct store_subscription *out_sub,
                        struct err *err);
int sq_subscription_count(struct store *s, size_t *out_streaming, size_t *out_pull,
                          struct err *err);
int sq_subscription_delete(struct store *s, const char *smtp, struct err *err);
int sq_subscription_set_watermark(struct store *s, const char *smtp, const char *watermark,
                                  size_t len, struct err *err);

/* store-sqlite-occurrence.c */
int sq_replace_occurrences(struct store *s, const char *smtp, int64_t window_start_utc,
                           int64_t window_end_utc, const struct cal_occurrence *const *sorted,
                           size_t n, struct store_diff *diff, struct err *err);
int sq_load_occurrences(struct store *s, const char *smtp, struct cal_occurrence **out_occs,
                        size_t *out_n, struct err *err);

/* store-sqlite-presence.c */
int sq_presence_put(struct store *s, const char *smtp, const struct store_presence *p,
                    struct err *err);
int sq_presence_get(struct store *s, const char *smtp, struct store_presence *out_p,
                    struct err *err);
int sq_append_presence_event(struct store *s, const char *smtp, const struct store_presence *p,
                             const char *reason, int64_t *out_id, struct err *err);
int sq_presence_record(struct store *s, const char *smtp, const struct store_presence *p,
                       const char *reason, int64_t *out_id, struct err *err);
int sq_presence_events_after(struct store *s, int64_t after_id, size_t limit,
                             struct store_presence_event **out_evs, size_t *out_n, struct err *err);
int sq_presence_events_last_id(struct store *s, int64_t *out_id, struct err *err);

/* store-sqlite-webhook.c */
int sq_webhook_cursor_get(struct store *s, const char *url, int64_t *out_last_id, struct err *err);
int sq_webhook_cursor_set(struct store *s, const char *url, int64_t last_id, struct err *err);
