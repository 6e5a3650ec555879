/* SPDX-License-Identifier: MIT */
/*
 * store-sqlite.c: the SQLite store's connection: open (WAL and the pragmas), close, the ops
 * table, errors, the statement cache and the transactions (a function's own, savepoints inside a
 * write batch). Every statement is a constant in the table below, prepared once per connection
 * and run with bound parameters; the schema is created and changed only by the migrations
 * (store-sqlite-schema.c, docs/store.md).
 */
#include "store/store-sqlite-int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/xalloc.h"

#define MB_COLS                                                                               \
	"smtp, state, parked_reason, ews_url, grouping, last_refresh_utc, window_start_utc, " \
	"window_end_utc, enabled, by_api, backend"
#define OCC_COLS                                                                          \
	"item_id, change_key, uid, subject, location, organizer, categories, start_utc, " \
	"end_utc, all_day, is_cancelled, is_private, free_busy, item_type"
#define PRES_COLS \
	"state, profile, forward, subject, since_utc, until_utc, next_change_utc, updated_utc"
#define MB_ID "(SELECT id FROM mailboxes WHERE smtp = ?1)"

/* Every statement of the store (enum q in store-sqlite-int.h), prepared on first use. */
static const char *const sql[Q_COUNT_] = {
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_BEGIN_READ] = "BEGIN",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_SAVEPOINT] = "SAVEPOINT op",
	[Q_RELEASE] = "RELEASE op",
	[Q_ROLLBACK_TO] = "ROLLBACK TO op",
	[Q_USER_VERSION] = "PRAGMA user_version",
	[Q_APPLICATION_ID] = "PRAGMA application_id",
	[Q_COUNT_SCHEMA] = "SELECT count(*) FROM sqlite_schema",
	[Q_MB_ID] = "SELECT id FROM mailboxes WHERE smtp = ?1",
	[Q_MB_ADD] = "INSERT INTO mailboxes (smtp, ews_url, grouping) VALUES (?1, ?2, ?3)"
		     " ON CONFLICT (smtp) DO UPDATE SET enabled = 1,"
		     " ews_url = coalesce(excluded.ews_url, ews_url),"
		     " grouping = coalesce(excluded.grouping, grouping)",
	[Q_MB_DISABLE] = "UPDATE mailboxes SET enabled = 0 WHERE smtp = ?1",
	[Q_MB_LIST_ALL] = "SELECT " MB_COLS " FROM mailboxes ORDER BY smtp",
	[Q_MB_LIST_ENABLED] = "SELECT " MB_COLS " FROM mailboxes WHERE enabled = 1 ORDER BY smtp",
	[Q_MB_GET] = "SELECT " MB_COLS " FROM mailboxes WHERE smtp = ?1",
	[Q_MB_SET_STATE] = "UPDATE mailboxes SET state = ?2, parked_reason = ?3 WHERE smtp = ?1",
	[Q_MB_SET_ENDPOINT] = "UPDATE mailboxes SET ews_url = ?2, grouping = ?3, backend = ?4"
			      " WHERE smtp = ?1",
	[Q_MB_SET_REFRESHED] = "UPDATE mailboxes SET last_refresh_utc = ?2 WHERE smtp = ?1",
	[Q_MB_SET_BY_API] = "UPDATE mailboxes SET by_api = ?2 WHERE smtp = ?1",
	[Q_MB_SET_WINDOW] = "UPDATE mailboxes SET window_start_utc = ?2, window_end_utc = ?3"
			    " WHERE id = ?1",
	[Q_SUB_PUT] = "INSERT INTO subscriptions"
		      " (mailbox_id, kind, subscription_id, watermark, created_utc)"
		      " SELECT id, ?2, ?3, ?4, ?5 FROM mailboxes WHERE smtp = ?1"
		      " ON CONFLICT (mailbox_id) DO UPDATE SET kind = excluded.kind,"
		      " subscription_id = excluded.subscription_id,"
		      " watermark = excluded.watermark, created_utc = excluded.created_utc",
	[Q_SUB_GET] = "SELECT kind, subscription_id, watermark, created_utc FROM subscriptions"
		      " WHERE mailbox_id = " MB_ID,
	[Q_SUB_DELETE] = "DELETE FROM subscriptions WHERE mailbox_id = " MB_ID,
	[Q_SUB_COUNT] = "SELECT kind, count(*) FROM subscriptions GROUP BY kind",
	[Q_SUB_WATERMARK] = "UPDATE subscriptions SET watermark = ?2"
			    " WHERE kind = 'pull' AND mailbox_id = " MB_ID,
	[Q_OCC_BY_ID] =
		"SELECT " OCC_COLS " FROM occurrences WHERE mailbox_id = ?1 ORDER BY item_id",
	[Q_OCC_BY_START] = "SELECT " OCC_COLS " FROM occurrences WHERE mailbox_id = ?1"
			   " ORDER BY start_utc, item_id",
	[Q_OCC_PUT] = "INSERT OR REPLACE INTO occurrences (mailbox_id, " OCC_COLS ")"
		      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
	[Q_OCC_DELETE] = "DELETE FROM occurrences WHERE mailbox_id = ?1 AND item_id = ?2",
	[Q_PRES_PUT] =
		"INSERT INTO presence (mailbox_id, " PRES_COLS ")"
		" SELECT id, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 FROM mailboxes WHERE smtp = ?1"
		" ON CONFLICT (mailbox_id) DO UPDATE SET state = excluded.state,"
		" profile = excluded.profile, forward = excluded.forward,"
		" subject = excluded.subject, since_utc = excluded.since_utc,"
		" until_utc = excluded.until_utc, next_change_utc = excluded.next_change_utc,"
		" updated_utc = excluded.updated_utc",
	[Q_PRES_GET] = "SELECT " PRES_COLS " FROM presence WHERE mailbox_id = " MB_ID,
	[Q_EV_APPEND] = "INSERT INTO presence_events (mailbox_id, " PRES_COLS ", reason)"
			" SELECT id, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 FROM mailboxes"
			" WHERE smtp = ?1",
	[Q_EV_AFTER] = "SELECT e.id, m.smtp, e.state, e.profile, e.forward, e.subject, e.since_utc,"
		       " e.until_utc, e.next_change_utc, e.updated_utc, e.reason"
		       " FROM presence_events e JOIN mailboxes m ON m.id = e.mailbox_id"
		       " WHERE e.id > ?1 ORDER BY e.id LIMIT ?2",
	/* AUTOINCREMENT keeps the largest id ever handed out in sqlite_sequence, also after the
	 * newest rows were deleted; max(id) is the same as long as nothing is pruned. */
	[Q_EV_LAST_ID] = "SELECT max(coalesce((SELECT seq FROM sqlite_sequence"
			 " WHERE name = 'presence_events'), 0),"
			 " coalesce((SELECT max(id) FROM presence_events), 0))",
	[Q_HOOK_GET] = "SELECT last_id FROM webhook_cursors WHERE url = ?1",
	[Q_HOOK_SET] = "INSERT INTO webhook_cursors (url, last_id, updated_utc)"
		       " VALUES (?1, ?2, CAST(strftime('%s', 'now') AS INTEGER))"
		       " ON CONFLICT (url) DO UPDATE SET last_id = excluded.last_id,"
		       " updated_utc = excluded.updated_utc",
};

/* The index of name in names, or -1. Used only on text the schema's CHECKs allow. */
int sq_name_index(const char *const *names, size_t n, const unsigned char *name)
{
	for (size_t i = 0; i < n; i++)
		if (name != NULL && strcmp(names[i], (const char *)name) == 0)
			return (int)i;
	return -1;
}

/* ---- errors ---- */

/* SQLite result code -> negative errno. Where SQLite knows the OS error, that is the answer. */
static int map_rc(sqlite3 *db, int rc)
{
	int sys = db != NULL ? sqlite3_system_errno(db) : 0;

	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_INTERRUPT:
		return -EINTR;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_TOOBIG:
		return -EMSGSIZE;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
			return -EEXIST;
		if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
			return -ENOENT;
		return -EINVAL;
	case SQLITE_CANTOPEN:
	case SQLITE_IOERR:
		return sys > 0 ? -sys : -EIO;
	default:
		return -EIO;
	}
}

int sq_fail(struct store_sqlite *s, int rc, const char *what, struct err *err)
{
	return err_set(err, map_rc(s->db, rc), "store: %s: %s", what, sqlite3_errmsg(s->db));
}

/* ---- statements ---- */

/* The cached statement q, reset and without bindings, ready to bind. */
int sq_stmt(struct store_sqlite *s, enum q q, sqlite3_stmt **out, struct err *err)
{
	if (s->stmts[q] == NULL) {
		int rc = sqlite3_prepare_v3(s->db, sql[q], -1, SQLITE_PREPARE_PERSISTENT,
		                            &s->stmts[q], NULL);
		if (rc != SQLITE_OK)
			return sq_fail(s, rc, "prepare", err);
	}
	*out = s->stmts[q];
	return 0;
}

/* Ends a statement's use: a read statement left unreset would pin its WAL snapshot. */
void sq_stmt_done(sqlite3_stmt *st)
{
	if (st == NULL)
		return;
	(void)sqlite3_reset(st);
	(void)sqlite3_clear_bindings(st);
}

/* Binds accumulate into *rc, which stays at the first failure, so one check covers all. */
void sq_bind_text(int *rc, sqlite3_stmt *st, int i, const char *v)
{
	if (*rc != SQLITE_OK)
		return;
	if (v == NULL)
		*rc = sqlite3_bind_null(st, i);
	else
		*rc = sqlite3_bind_text(st, i, v, (int)strlen(v), SQLITE_STATIC);
}

void sq_bind_i64(int *rc, sqlite3_stmt *st, int i, int64_t v)
{
	if (*rc == SQLITE_OK)
		*rc = sqlite3_bind_int64(st, i, v);
}

/* An instant: 0 ("none") is stored as NULL, so the CLI shows what is unset. */
void sq_bind_time(int *rc, sqlite3_stmt *st, int i, int64_t v)
{
	if (*rc != SQLITE_OK)
		return;
	if (v == 0)
		*rc = sqlite3_bind_null(st, i);
	else
		*rc = sqlite3_bind_int64(st, i, v);
}

void sq_bind_blob(int *rc, sqlite3_stmt *st, int i, const char *v, size_t len)
{
	if (*rc != SQLITE_OK)
		return;
	if (v == NULL)
		*rc = sqlite3_bind_null(st, i);
	else
		*rc = sqlite3_bind_blob(st, i, v, (int)len, SQLITE_STATIC);
}

/* A text or blob column as an owned string with a NUL after its bytes, or NULL. */
char *sq_col_str(sqlite3_stmt *st, int i, size_t *out_len)
{
	const void *p;
	size_t len;

	if (sqlite3_column_type(st, i) == SQLITE_NULL) {
		if (out_len != NULL)
			*out_len = 0;
		return NULL;
	}
	p = sqlite3_column_blob(st, i);
	len = (size_t)sqlite3_column_bytes(st, i);
	if (out_len != NULL)
		*out_len = len;
	return xmemdup(p != NULL ? p : "", len);
}

static void before_write(struct store_sqlite *s);

/* Runs a write statement to completion. This is where store_test_fail_write_after strikes. */
int sq_step_write(struct store_sqlite *s, sqlite3_stmt *st, const char *what, struct err *err)
{
	int rc;

	before_write(s);
	if (s->fail_after > 0 && --s->fail_after == 0)
		return err_set(err, -EIO, "store: %s: injected write failure", what);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return sq_fail(s, rc, what, err);
	return 0;
}

/* Runs a statement without parameters (BEGIN, COMMIT, ...). */
static int run(struct store_sqlite *s, enum q q, const char *what, struct err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sq_stmt(s, q, &st, err);

	if (rc < 0)
		return rc;
	rc = sqlite3_step(st);
	sq_stmt_done(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return sq_fail(s, rc, what, err);
	return 0;
}

/* Before a write outside a batch: lets the writer open one (store_set_write_hook). */
static void before_write(struct store_sqlite *s)
{
	if (!s->batch && s->write_hook != NULL)
		s->write_hook(s->write_hook_ctx);
}

/* A function's own transaction: BEGIN IMMEDIATE (BEGIN for reads), or a savepoint in a batch. */
int sq_begin_as(struct store_sqlite *s, enum q q, struct err *err)
{
	if (q == Q_BEGIN)
		before_write(s);
	if (s->batch)
		return run(s, Q_SAVEPOINT, "savepoint", err);
	return run(s, q, "begin", err);
}

int sq_begin(struct store_sqlite *s, struct err *err)
{
	return sq_begin_as(s, Q_BEGIN, err);
}

/* Undoes the open transaction (in a batch: the function's savepoint), if SQLite has not already
 * rolled it back after the error. */
void sq_rollback(struct store_sqlite *s)
{
	if (sqlite3_get_autocommit(s->db))
		return;
	if (s->batch) {
		(void)run(s, Q_ROLLBACK_TO, "rollback", NULL);
		(void)run(s, Q_RELEASE, "release", NULL);
	} else {
		(void)run(s, Q_ROLLBACK, "rollback", NULL);
	}
}

int sq_commit(struct store_sqlite *s, struct err *err)
{
	int rc = run(s, s->batch ? Q_RELEASE : Q_COMMIT, "commit", err);

	if (rc < 0)
		sq_rollback(s);
	return rc;
}

/* ---- write batches (store.c has checked that one is open, or not) ---- */

static int sq_batch_begin(struct store *base, struct err *err)
{
	struct store_sqlite *s = sq_from(base);
	int rc = run(s, Q_BEGIN, "begin batch", err);

	if (rc == 0)
		s->batch = true;
	return rc;
}

static int sq_batch_commit(struct store *base, struct err *err)
{
	struct store_sqlite *s = sq_from(base);
	int rc;

	s->batch = false;
	/* SQLite rolls the whole transaction back itself after some errors (a full disk). */
	if (sqlite3_get_autocommit(s->db))
		return err_set(err, -EIO,
		               "store: the batch was rolled back after an earlier error");
	rc = run(s, Q_COMMIT, "commit batch", err);
	if (rc < 0 && !sqlite3_get_autocommit(s->db))
		(void)run(s, Q_ROLLBACK, "rollback", NULL);
	return rc;
}

static bool sq_in_batch(const struct store *base)
{
	return sq_from_const(base)->batch;
}

static void sq_set_write_hook(struct store *base, void (*hook)(void *ctx), void *ctx)
{
	struct store_sqlite *s = sq_from(base);

	s->write_hook = hook;
	s->write_hook_ctx = ctx;
}

/* A single integer result (PRAGMA user_version, count(*)). */
int sq_query_int(struct store_sqlite *s, enum q q, int64_t *out, struct err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sq_stmt(s, q, &st, err);

	if (rc < 0)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sq_stmt_done(st);
	if (rc != SQLITE_ROW)
		return sq_fail(s, rc, sql[q], err);
	return 0;
}

/* Runs every statement of a constant script (a migration), one prepared statement at a time. */
int sq_run_script(struct store_sqlite *s, const char *script, struct err *err)
{
	const char *p = script;

	while (*p != '\0') {
		sqlite3_stmt *st = NULL;
		const char *tail = NULL;
		int rc = sqlite3_prepare_v2(s->db, p, -1, &st, &tail);

		if (rc != SQLITE_OK)
			return sq_fail(s, rc, "migration", err);
		if (st == NULL)
			break; /* only whitespace or comments left */
		do
			rc = sqlite3_step(st);
		while (rc == SQLITE_ROW);
		(void)sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return sq_fail(s, rc, "migration", err);
		p = tail;
	}
	return 0;
}

/* Runs a bound single-row UPDATE/DELETE keyed by smtp; -ENOENT when no row matched. */
int sq_update_one(struct store_sqlite *s, sqlite3_stmt *st, int brc, const char *smtp,
                  const char *what, struct err *err)
{
	int rc;

	if (brc != SQLITE_OK) {
		rc = sq_fail(s, brc, what, err);
		goto out;
	}
	rc = sq_step_write(s, st, what, err);
	if (rc == 0 && sqlite3_changes(s->db) == 0)
		rc = err_set(err, -ENOENT, "store: %s: no mailbox '%s'", what, smtp);
out:
	sq_stmt_done(st);
	return rc;
}

/* ---- open and close ---- */

static int setup(struct store_sqlite *s, struct err *err)
{
	static const char *const pragmas[] = {
		"PRAGMA foreign_keys = ON",
		"PRAGMA synchronous = NORMAL",
		/* 16 MiB of page cache (allocated as used), so that a write batch of a few thousand
		 * occurrences does not spill pages into the WAL before its commit (bench/run). */
		"PRAGMA cache_size = -16384",
		/* A savepoint in a write batch keeps the pages it changes in a sub-journal: in
		 * memory, not in a temporary file written for every row. */
		"PRAGMA temp_store = MEMORY",
	};
	sqlite3_stmt *st = NULL;
	int rc;
	bool wal;

	(void)sqlite3_extended_result_codes(s->db, 1);
	(void)sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
	rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sq_fail(s, rc, "journal_mode", err);
	rc = sqlite3_step(st);
	wal = rc == SQLITE_ROW &&
	      sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
	(void)sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return sq_fail(s, rc, "journal_mode", err);
	if (!wal)
		return err_set(err, -ENOTSUP, "store: the database refuses WAL journal mode");
	for (size_t i = 0; i < N_ELEMS(pragmas); i++) {
		rc = sq_run_script(s, pragmas[i], err);
		if (rc < 0)
			return rc;
	}
	return sq_migrate(s, err);
}

static void sq_close(struct store *base)
{
	struct store_sqlite *s = sq_from(base);

	for (size_t i = 0; i < Q_COUNT_; i++)
		(void)sqlite3_finalize(s->stmts[i]);
	/* The last connection to close checkpoints the WAL into the database file; an open
	 * batch is rolled back. */
	(void)sqlite3_close(s->db);
	free(s);
}

static int sq_schema_version(const struct store *base)
{
	return sq_from_const(base)->version;
}

static void sq_test_fail_write_after(struct store *base, unsigned n)
{
	sq_from(base)->fail_after = n;
}

static const struct store_ops sq_ops = {
	.close = sq_close,
	.schema_version = sq_schema_version,
	.batch_begin = sq_batch_begin,
	.batch_commit = sq_batch_commit,
	.in_batch = sq_in_batch,
	.set_write_hook = sq_set_write_hook,
	.mailbox_add = sq_mailbox_add,
	.mailbox_remove = sq_mailbox_remove,
	.mailbox_list = sq_mailbox_list,
	.mailbox_get = sq_mailbox_get,
	.mailbox_set_state = sq_mailbox_set_state,
	.mailbox_set_endpoint = sq_mailbox_set_endpoint,
	.mailbox_set_by_api = sq_mailbox_set_by_api,
	.mailbox_set_refreshed = sq_mailbox_set_refreshed,
	.subscription_put = sq_subscription_put,
	.subscription_get = sq_subscription_get,
	.subscription_count = sq_subscription_count,
	.subscription_delete = sq_subscription_delete,
	.subscription_set_watermark = sq_subscription_set_watermark,
	.replace_occurrences = sq_replace_occurrences,
	.load_occurrences = sq_load_occurrences,
	.presence_put = sq_presence_put,
	.presence_get = sq_presence_get,
	.append_presence_event = sq_append_presence_event,
	.presence_record = sq_presence_record,
	.presence_events_after = sq_presence_events_after,
	.presence_events_last_id = sq_presence_events_last_id,
	.webhook_cursor_get = sq_webhook_cursor_get,
	.webhook_cursor_set = sq_webhook_cursor_set,
	.test_fail_write_after = sq_test_fail_write_after,
};

int store_sqlite_open(const char *path, struct store **out_store, struct err *err)
{
	struct store_sqlite *s = xcalloc(1, sizeof(*s));
	int rc;

	s->base.ops = &sq_ops;
	/* NOMUTEX: a connection is used by one thread at a time (store.h). */
	rc = sqlite3_open_v2(path, &s->db,
	                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
	                             SQLITE_OPEN_EXRESCODE,
	                     NULL);
	if (rc != SQLITE_OK) {
		rc = s->db != NULL ? sq_fail(s, rc, path, err)
		                   : err_set(err, -ENOMEM, "store: %s: out of memory", path);
		goto fail;
	}
	rc = setup(s, err);
	if (rc < 0) {
		(void)err_set(err, rc, "%s: %s", path, err != NULL ? err->msg : "");
		goto fail;
	}
	*out_store = &s->base;
	return 0;
fail:
	sq_close(&s->base);
	return rc;
}
