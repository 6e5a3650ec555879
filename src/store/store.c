/* SPDX-License-Identifier: MIT */
/*
 * store.c: the SQLite store. The only code that sees sqlite3*. Every statement is a constant in
 * the table below, prepared once per connection and run with bound parameters; the schema is
 * created and changed only by the migrations, one transaction each (docs/store.md).
 */
#include "store/store.h"

#include <errno.h>
#include <sqlite3.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "cal/occurrence.h"

/* PRAGMA application_id of a calsync database: "CSYN". */
#define STORE_APPLICATION_ID 0x4353594e

/* Separates (terminates) categories in occurrences.categories. It is a C0 control that XML 1.0
 * cannot carry, so no category from Exchange contains it, and the column stays readable. */
#define CATEGORY_SEP '\x1f'

/*
 * The migrations: migrations[i] takes the schema from version i to i + 1 and ends by setting
 * user_version to i + 1 (checked after it ran). Append new ones; never edit a released one.
 */
static const char *const migrations[] = {
	/* 1: the initial schema. */
	"CREATE TABLE mailboxes ("
	" id INTEGER PRIMARY KEY,"
	" smtp TEXT NOT NULL UNIQUE COLLATE NOCASE,"
	" state TEXT NOT NULL DEFAULT 'unresolved'"
	"  CHECK (state IN ('unresolved', 'syncing', 'live', 'parked')),"
	" parked_reason TEXT CHECK ((state = 'parked') = (parked_reason IS NOT NULL)),"
	" ews_url TEXT,"
	" grouping TEXT,"
	" last_refresh_utc INTEGER,"
	" window_start_utc INTEGER,"
	" window_end_utc INTEGER,"
	" enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)));"
	"CREATE TABLE subscriptions ("
	" mailbox_id INTEGER PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,"
	" kind TEXT NOT NULL CHECK (kind IN ('pull', 'streaming')),"
	" subscription_id TEXT NOT NULL,"
	" watermark BLOB CHECK (watermark IS NULL OR kind = 'pull'),"
	" created_utc INTEGER NOT NULL);"
	"CREATE TABLE occurrences ("
	" mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,"
	" item_id TEXT NOT NULL,"
	" change_key TEXT,"
	" uid TEXT,"
	" subject TEXT,"
	" location TEXT,"
	" organizer TEXT,"
	" categories TEXT,"
	" start_utc INTEGER NOT NULL,"
	" end_utc INTEGER NOT NULL CHECK (end_utc >= start_utc),"
	" all_day INTEGER NOT NULL CHECK (all_day IN (0, 1)),"
	" is_cancelled INTEGER NOT NULL CHECK (is_cancelled IN (0, 1)),"
	" is_private INTEGER NOT NULL CHECK (is_private IN (0, 1)),"
	" free_busy TEXT NOT NULL CHECK (free_busy IN ('unknown', 'free', 'tentative', 'busy',"
	"  'oof', 'working-elsewhere', 'no-data')),"
	" item_type TEXT NOT NULL CHECK (item_type IN ('single', 'occurrence', 'exception')),"
	" PRIMARY KEY (mailbox_id, item_id)) WITHOUT ROWID;"
	"CREATE TABLE presence ("
	" mailbox_id INTEGER PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,"
	" state TEXT NOT NULL,"
	" profile TEXT,"
	" forward TEXT,"
	" subject TEXT,"
	" since_utc INTEGER,"
	" until_utc INTEGER,"
	" next_change_utc INTEGER,"
	" updated_utc INTEGER);"
	/* AUTOINCREMENT: ids are never reused, even after old events are pruned, so an SSE
	 * Last-Event-ID always means the same event. */
	"CREATE TABLE presence_events ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),"
	" state TEXT NOT NULL,"
	" profile TEXT,"
	" forward TEXT,"
	" subject TEXT,"
	" since_utc INTEGER,"
	" until_utc INTEGER,"
	" next_change_utc INTEGER,"
	" updated_utc INTEGER,"
	" reason TEXT);"
	"CREATE INDEX presence_events_by_mailbox ON presence_events (mailbox_id, id);"
	"PRAGMA application_id = 1129535822;"
	"PRAGMA user_version = 1;",
	/* 2: mailboxes added through the HTTP API, kept when the configuration does not list
	 * them. */
	"ALTER TABLE mailboxes ADD COLUMN by_api INTEGER NOT NULL DEFAULT 0"
	" CHECK (by_api IN (0, 1));"
	"PRAGMA user_version = 2;",
	/* 3: the webhook outbox. The outbox is presence_events itself; each webhook target keeps
	 * the id of the last event it delivered (or gave up on), so a restart resumes there. */
	"CREATE TABLE webhook_cursors ("
	" url TEXT PRIMARY KEY,"
	" last_id INTEGER NOT NULL CHECK (last_id >= 0),"
	" updated_utc INTEGER);"
	"PRAGMA user_version = 3;",
	/* 4: the same occurrences table with its CHECKs on free_busy and item_type written as OR
	 * chains. SQLite builds a temporary b-tree for every `IN (...)` list of more than two
	 * constants, on every row written: that was half of calsync's CPU during an initial sync
	 * (bench/run). Same rows, same meaning; only the table is rebuilt. */
	"CREATE TABLE occurrences_v4 ("
	" mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,"
	" item_id TEXT NOT NULL,"
	" change_key TEXT,"
	" uid TEXT,"
	" subject TEXT,"
	" location TEXT,"
	" organizer TEXT,"
	" categories TEXT,"
	" start_utc INTEGER NOT NULL,"
	" end_utc INTEGER NOT NULL CHECK (end_utc >= start_utc),"
	" all_day INTEGER NOT NULL CHECK (all_day IN (0, 1)),"
	" is_cancelled INTEGER NOT NULL CHECK (is_cancelled IN (0, 1)),"
	" is_private INTEGER NOT NULL CHECK (is_private IN (0, 1)),"
	" free_busy TEXT NOT NULL CHECK (free_busy = 'unknown' OR free_busy = 'free'"
	"  OR free_busy = 'tentative' OR free_busy = 'busy' OR free_busy = 'oof'"
	"  OR free_busy = 'working-elsewhere' OR free_busy = 'no-data'),"
	" item_type TEXT NOT NULL CHECK (item_type = 'single' OR item_type = 'occurrence'"
	"  OR item_type = 'exception'),"
	" PRIMARY KEY (mailbox_id, item_id)) WITHOUT ROWID;"
	"INSERT INTO occurrences_v4 SELECT mailbox_id, item_id, change_key, uid, subject, location,"
	" organizer, categories, start_utc, end_utc, all_day, is_cancelled, is_private, free_busy,"
	" item_type FROM occurrences;"
	"DROP TABLE occurrences;"
	"ALTER TABLE occurrences_v4 RENAME TO occurrences;"
	"PRAGMA user_version = 4;",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == STORE_SCHEMA_VERSION,
               "one migration per schema version");
_Static_assert(STORE_APPLICATION_ID == 1129535822, "the migration writes this application_id");

#define MB_COLS                                                                               \
	"smtp, state, parked_reason, ews_url, grouping, last_refresh_utc, window_start_utc, " \
	"window_end_utc, enabled, by_api"
#define OCC_COLS                                                                          \
	"item_id, change_key, uid, subject, location, organizer, categories, start_utc, " \
	"end_utc, all_day, is_cancelled, is_private, free_busy, item_type"
#define PRES_COLS \
	"state, profile, forward, subject, since_utc, until_utc, next_change_utc, updated_utc"
#define MB_ID "(SELECT id FROM mailboxes WHERE smtp = ?1)"

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
	[Q_MB_SET_ENDPOINT] = "UPDATE mailboxes SET ews_url = ?2, grouping = ?3 WHERE smtp = ?1",
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

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmts[Q_COUNT_];
	int version;
	unsigned fail_after; /* store_test_fail_write_after */
	bool batch;          /* store_batch_begin: functions use savepoints */
	void (*write_hook)(void *ctx);
	void *write_hook_ctx;
};

static const char *const mb_state_names[] = {
	[STORE_MB_UNRESOLVED] = "unresolved",
	[STORE_MB_SYNCING] = "syncing",
	[STORE_MB_LIVE] = "live",
	[STORE_MB_PARKED] = "parked",
};

static const char *const sub_kind_names[] = {
	[STORE_SUB_PULL] = "pull",
	[STORE_SUB_STREAMING] = "streaming",
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* The index of name in names, or -1. Used only on text the schema's CHECKs allow. */
static int name_index(const char *const *names, size_t n, const unsigned char *name)
{
	for (size_t i = 0; i < n; i++)
		if (name != NULL && strcmp(names[i], (const char *)name) == 0)
			return (int)i;
	return -1;
}

const char *store_mb_state_name(enum store_mb_state st)
{
	if ((unsigned)st >= N_ELEMS(mb_state_names))
		return "invalid";
	return mb_state_names[st];
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

static int sql_fail(struct store *s, int rc, const char *what, struct err *err)
{
	return err_set(err, map_rc(s->db, rc), "store: %s: %s", what, sqlite3_errmsg(s->db));
}

/* ---- statements ---- */

/* The cached statement q, reset and without bindings, ready to bind. */
static int stmt(struct store *s, enum q q, sqlite3_stmt **out, struct err *err)
{
	if (s->stmts[q] == NULL) {
		int rc = sqlite3_prepare_v3(s->db, sql[q], -1, SQLITE_PREPARE_PERSISTENT,
		                            &s->stmts[q], NULL);
		if (rc != SQLITE_OK)
			return sql_fail(s, rc, "prepare", err);
	}
	*out = s->stmts[q];
	return 0;
}

/* Ends a statement's use: a read statement left unreset would pin its WAL snapshot. */
static void stmt_done(sqlite3_stmt *st)
{
	if (st == NULL)
		return;
	(void)sqlite3_reset(st);
	(void)sqlite3_clear_bindings(st);
}

/* Binds accumulate into *rc, which stays at the first failure, so one check covers all. */
static void bind_text(int *rc, sqlite3_stmt *st, int i, const char *v)
{
	if (*rc != SQLITE_OK)
		return;
	if (v == NULL)
		*rc = sqlite3_bind_null(st, i);
	else
		*rc = sqlite3_bind_text(st, i, v, (int)strlen(v), SQLITE_STATIC);
}

static void bind_i64(int *rc, sqlite3_stmt *st, int i, int64_t v)
{
	if (*rc == SQLITE_OK)
		*rc = sqlite3_bind_int64(st, i, v);
}

/* An instant: 0 ("none") is stored as NULL, so the CLI shows what is unset. */
static void bind_time(int *rc, sqlite3_stmt *st, int i, int64_t v)
{
	if (*rc != SQLITE_OK)
		return;
	if (v == 0)
		*rc = sqlite3_bind_null(st, i);
	else
		*rc = sqlite3_bind_int64(st, i, v);
}

static void bind_blob(int *rc, sqlite3_stmt *st, int i, const char *v, size_t len)
{
	if (*rc != SQLITE_OK)
		return;
	if (v == NULL)
		*rc = sqlite3_bind_null(st, i);
	else
		*rc = sqlite3_bind_blob(st, i, v, (int)len, SQLITE_STATIC);
}

/* A text or blob column as an owned string with a NUL after its bytes, or NULL. */
static char *col_str(sqlite3_stmt *st, int i, size_t *out_len)
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

static void before_write(struct store *s);

/* Runs a write statement to completion. This is where store_test_fail_write_after strikes. */
static int step_write(struct store *s, sqlite3_stmt *st, const char *what, struct err *err)
{
	int rc;

	before_write(s);
	if (s->fail_after > 0 && --s->fail_after == 0)
		return err_set(err, -EIO, "store: %s: injected write failure", what);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return sql_fail(s, rc, what, err);
	return 0;
}

/* Runs a statement without parameters (BEGIN, COMMIT, ...). */
static int run(struct store *s, enum q q, const char *what, struct err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt(s, q, &st, err);

	if (rc < 0)
		return rc;
	rc = sqlite3_step(st);
	stmt_done(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return sql_fail(s, rc, what, err);
	return 0;
}

/* Before a write outside a batch: lets the writer open one (store_set_write_hook). */
static void before_write(struct store *s)
{
	if (!s->batch && s->write_hook != NULL)
		s->write_hook(s->write_hook_ctx);
}

/* A function's own transaction: BEGIN IMMEDIATE (BEGIN for reads), or a savepoint in a batch. */
static int begin_as(struct store *s, enum q q, struct err *err)
{
	if (q == Q_BEGIN)
		before_write(s);
	if (s->batch)
		return run(s, Q_SAVEPOINT, "savepoint", err);
	return run(s, q, "begin", err);
}

static int begin(struct store *s, struct err *err)
{
	return begin_as(s, Q_BEGIN, err);
}

/* Undoes the open transaction (in a batch: the function's savepoint), if SQLite has not already
 * rolled it back after the error. */
static void rollback(struct store *s)
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

static int commit(struct store *s, struct err *err)
{
	int rc = run(s, s->batch ? Q_RELEASE : Q_COMMIT, "commit", err);

	if (rc < 0)
		rollback(s);
	return rc;
}

int store_batch_begin(struct store *s, struct err *err)
{
	int rc;

	if (s->batch)
		return err_set(err, -EINVAL, "store: a batch is already open");
	rc = run(s, Q_BEGIN, "begin batch", err);
	if (rc == 0)
		s->batch = true;
	return rc;
}

int store_batch_commit(struct store *s, struct err *err)
{
	int rc;

	if (!s->batch)
		return err_set(err, -EINVAL, "store: no batch is open");
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

bool store_in_batch(const struct store *s)
{
	return s->batch;
}

void store_set_write_hook(struct store *s, void (*hook)(void *ctx), void *ctx)
{
	s->write_hook = hook;
	s->write_hook_ctx = ctx;
}

/* A single integer result (PRAGMA user_version, count(*)). */
static int query_int(struct store *s, enum q q, int64_t *out, struct err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = stmt(s, q, &st, err);

	if (rc < 0)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	stmt_done(st);
	if (rc != SQLITE_ROW)
		return sql_fail(s, rc, sql[q], err);
	return 0;
}

/* Runs every statement of a constant script (a migration), one prepared statement at a time. */
static int run_script(struct store *s, const char *script, struct err *err)
{
	const char *p = script;

	while (*p != '\0') {
		sqlite3_stmt *st = NULL;
		const char *tail = NULL;
		int rc = sqlite3_prepare_v2(s->db, p, -1, &st, &tail);

		if (rc != SQLITE_OK)
			return sql_fail(s, rc, "migration", err);
		if (st == NULL)
			break; /* only whitespace or comments left */
		do
			rc = sqlite3_step(st);
		while (rc == SQLITE_ROW);
		(void)sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return sql_fail(s, rc, "migration", err);
		p = tail;
	}
	return 0;
}

/* ---- input checks ---- */

/* 0 when v is NULL (and optional) or at most max bytes; "required" also means non-empty. */
static int check_str(const char *v, size_t max, bool required, const char *what, struct err *err)
{
	size_t n;

	if (v == NULL)
		return required ? err_set(err, -EINVAL, "store: %s missing", what) : 0;
	n = strnlen(v, (size_t)max + 1);
	if (n > max)
		return err_set(err, -EMSGSIZE, "store: %s longer than %zu bytes", what,
		               (size_t)max);
	if (required && n == 0)
		return err_set(err, -EINVAL, "store: %s empty", what);
	return 0;
}

static int check_smtp(const char *smtp, struct err *err)
{
	return check_str(smtp, STORE_MAX_SMTP, true, "SMTP address", err);
}

/* ---- open, migrate, close ---- */

static int migrate(struct store *s, struct err *err)
{
	int64_t v = 0;
	int64_t n = 0;
	int rc = query_int(s, Q_USER_VERSION, &v, err);

	if (rc < 0)
		return rc;
	if (v > STORE_SCHEMA_VERSION)
		return err_set(
			err, -EPROTONOSUPPORT,
			"store: database schema version %lld is newer than this calsync knows "
			"(%d); run a newer calsync or restore a backup",
			(long long)v, STORE_SCHEMA_VERSION);
	if (v > 0) {
		rc = query_int(s, Q_APPLICATION_ID, &n, err);
		if (rc < 0)
			return rc;
		if (n != STORE_APPLICATION_ID)
			return err_set(err, -EINVAL,
			               "store: not a calsync database (application_id %lld)",
			               (long long)n);
	} else {
		rc = query_int(s, Q_COUNT_SCHEMA, &n, err);
		if (rc < 0)
			return rc;
		if (n > 0)
			return err_set(
				err, -EINVAL,
				"store: not a calsync database (it has tables but no version)");
	}
	for (int target = (int)v + 1; target <= STORE_SCHEMA_VERSION; target++) {
		rc = begin(s, err);
		if (rc < 0)
			return rc;
		/* Another process may have migrated between our read and our lock. */
		rc = query_int(s, Q_USER_VERSION, &v, err);
		if (rc < 0)
			goto fail;
		if (v >= target) {
			rc = commit(s, err);
			if (rc < 0)
				return rc;
			continue;
		}
		rc = run_script(s, migrations[target - 1], err);
		if (rc < 0)
			goto fail;
		rc = query_int(s, Q_USER_VERSION, &v, err);
		if (rc < 0)
			goto fail;
		if (v != target) {
			rc = err_set(err, -EPROTO, "store: migration %d set user_version %lld",
			             target, (long long)v);
			goto fail;
		}
		rc = commit(s, err);
		if (rc < 0)
			return rc;
	}
	s->version = STORE_SCHEMA_VERSION;
	return 0;
fail:
	rollback(s);
	return rc;
}

static int setup(struct store *s, struct err *err)
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
		return sql_fail(s, rc, "journal_mode", err);
	rc = sqlite3_step(st);
	wal = rc == SQLITE_ROW &&
	      sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
	(void)sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return sql_fail(s, rc, "journal_mode", err);
	if (!wal)
		return err_set(err, -ENOTSUP, "store: the database refuses WAL journal mode");
	for (size_t i = 0; i < N_ELEMS(pragmas); i++) {
		rc = run_script(s, pragmas[i], err);
		if (rc < 0)
			return rc;
	}
	return migrate(s, err);
}

int store_open(const char *path, struct store **out_store, struct err *err)
{
	struct store *s;
	int rc = check_str(path, STORE_MAX_PATH, true, "database path", err);

	if (rc < 0)
		return rc;
	s = xcalloc(1, sizeof(*s));
	/* NOMUTEX: a connection is used by one thread at a time (store.h). */
	rc = sqlite3_open_v2(path, &s->db,
	                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
	                             SQLITE_OPEN_EXRESCODE,
	                     NULL);
	if (rc != SQLITE_OK) {
		rc = s->db != NULL ? sql_fail(s, rc, path, err)
		                   : err_set(err, -ENOMEM, "store: %s: out of memory", path);
		goto fail;
	}
	rc = setup(s, err);
	if (rc < 0) {
		(void)err_set(err, rc, "%s: %s", path, err != NULL ? err->msg : "");
		goto fail;
	}
	*out_store = s;
	return 0;
fail:
	store_close(s);
	return rc;
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < Q_COUNT_; i++)
		(void)sqlite3_finalize(s->stmts[i]);
	/* The last connection to close checkpoints the WAL into the database file. */
	(void)sqlite3_close(s->db);
	free(s);
}

int store_schema_version(const struct store *s)
{
	return s->version;
}

void store_test_fail_write_after(struct store *s, unsigned n)
{
	s->fail_after = n;
}

/* ---- mailboxes ---- */

void store_mailbox_clear(struct store_mailbox *mb)
{
	free(mb->smtp);
	free(mb->parked_reason);
	free(mb->ews_url);
	free(mb->grouping);
	*mb = (struct store_mailbox){0};
}

void store_mailboxes_free(struct store_mailbox *mbs, size_t n)
{
	if (mbs == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_mailbox_clear(&mbs[i]);
	free(mbs);
}

static int row_to_mailbox(sqlite3_stmt *st, struct store_mailbox *mb, struct err *err)
{
	int state = name_index(mb_state_names, N_ELEMS(mb_state_names), sqlite3_column_text(st, 1));

	if (state < 0)
		return err_set(err, -EBADMSG, "store: mailbox with an unknown state");
	*mb = (struct store_mailbox){
		.smtp = col_str(st, 0, NULL),
		.state = (enum store_mb_state)state,
		.parked_reason = col_str(st, 2, NULL),
		.ews_url = col_str(st, 3, NULL),
		.grouping = col_str(st, 4, NULL),
		.last_refresh_utc = sqlite3_column_int64(st, 5),
		.window_start_utc = sqlite3_column_int64(st, 6),
		.window_end_utc = sqlite3_column_int64(st, 7),
		.enabled = sqlite3_column_int(st, 8) != 0,
		.by_api = sqlite3_column_int(st, 9) != 0,
	};
	return 0;
}

/* Runs a bound single-row UPDATE/DELETE keyed by smtp; -ENOENT when no row matched. */
static int update_one(struct store *s, sqlite3_stmt *st, int brc, const char *smtp,
                      const char *what, struct err *err)
{
	int rc;

	if (brc != SQLITE_OK) {
		rc = sql_fail(s, brc, what, err);
		goto out;
	}
	rc = step_write(s, st, what, err);
	if (rc == 0 && sqlite3_changes(s->db) == 0)
		rc = err_set(err, -ENOENT, "store: %s: no mailbox '%s'", what, smtp);
out:
	stmt_done(st);
	return rc;
}

int store_mailbox_add(struct store *s, const char *smtp, const char *ews_url, const char *grouping,
                      struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = check_smtp(smtp, err);

	if (rc == 0)
		rc = check_str(ews_url, STORE_MAX_URL, false, "EWS URL", err);
	if (rc == 0)
		rc = check_str(grouping, STORE_MAX_URL, false, "grouping", err);
	if (rc == 0)
		rc = stmt(s, Q_MB_ADD, &st, err);
	if (rc < 0)
		return rc;
	bind_text(&brc, st, 1, smtp);
	bind_text(&brc, st, 2, ews_url);
	bind_text(&brc, st, 3, grouping);
	return update_one(s, st, brc, smtp, "add mailbox", err);
}

/* Runs q, an UPDATE of the mailbox smtp (?1), with v as ?2 when bind is given (bind_i64 or
 * bind_time). 0, or -ENOENT when no mailbox matched. */
static int update_mailbox(struct store *s, enum q q, const char *smtp,
                          void (*bind)(int *, sqlite3_stmt *, int, int64_t), int64_t v,
                          const char *what, struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = check_smtp(smtp, err);

	if (rc == 0)
		rc = stmt(s, q, &st, err);
	if (rc < 0)
		return rc;
	bind_text(&brc, st, 1, smtp);
	if (bind != NULL)
		bind(&brc, st, 2, v);
	return update_one(s, st, brc, smtp, what, err);
}

int store_mailbox_remove(struct store *s, const char *smtp, struct err *err)
{
	return update_mailbox(s, Q_MB_DISABLE, smtp, NULL, 0, "remove mailbox", err);
}

int store_mailbox_list(struct store *s, enum store_mb_filter filter, struct store_mailbox **out_mbs,
                       size_t *out_n, struct err *err)
{
	struct store_mailbox *mbs = NULL;
	size_t n = 0;
	size_t cap = 0;
	sqlite3_stmt *st = NULL;
	int rc = stmt(s, filter == STORE_MB_ENABLED ? Q_MB_LIST_ENABLED : Q_MB_LIST_ALL, &st, err);

	if (rc < 0)
		return rc;
	for (;;) {
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW)
			break;
		if (n == cap) {
			cap = cap > 0 ? cap * 2 : 64;
			mbs = xreallocarray(mbs, cap, sizeof(*mbs));
		}
		if (row_to_mailbox(st, &mbs[n], err) < 0) {
			rc = -EBADMSG;
			break;
		}
		n++;
	}
	if (rc != SQLITE_DONE) {
		if (rc != -EBADMSG)
			rc = sql_fail(s, rc, "list mailboxes", err);
		stmt_done(st);
		store_mailboxes_free(mbs, n);
		return rc;
	}
	stmt_done(st);
	if (n == 0) {
		free(mbs);
		mbs = NULL;
	}
	*out_mbs = mbs;
	*out_n = n;
	return 0;
}

int store_mailbox_get(struct store *s, const char *smtp, struct store_mailbox *out_mb,
                      struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = check_smtp(smtp, err);

	if (rc == 0)
		rc = stmt(s, Q_MB_GET, &st, err);
	if (rc < 0)
		return rc;
	bind_text(&brc, st, 1, smtp);
	if (brc != SQLITE_OK) {
		rc = sql_fail(s, brc, "get mailbox", err);
		goto out;
	}
	brc = sqlite3_step(st);
	if (brc == SQLITE_ROW)
		rc = row_to_mailbox(st, out_mb, err);
	else if (brc == SQLITE_DONE)
		rc = err_set(err, -ENOENT, "store: no mailbox '%s'", smtp);
	else
		rc = sql_fail(s, brc, "get mailbox", err);
out:
	stmt_done(st);
	return rc;
}

int store_mailbox_set_state(struct store *s, const char *smtp, enum store_mb_state state,
                            const char *reason, struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = check_smtp(smtp, err);

	if (rc < 0)
		return rc;
	if ((unsigned)state >= N_ELEMS(mb_state_names))
		return err_set(err, -EINVAL, "store: invalid mailbox state %d", (int)state);
	if ((state == STORE_MB_PARKED) != (reason != NULL))
		return err_set(err, -EINVAL, "store: a reason goes with parked, and only with it");
	if (reason != NULL)
		rc = check_str(reason, STORE_MAX_REASON, true, "parked reason", err);
	if (rc == 0)
		rc = stmt(s, Q_MB_SET_STATE, &st, err);
	if (rc < 0)
		return rc;
	bind_text(&brc, st, 1, smtp);
	bind_text(&brc, st, 2, mb_state_names[state]);
	bind_text(&brc, st, 3, reason);
	return update_one(s, st, brc, smtp, "set mailbox state", err);
}

int store_mailbox_set_endpoint(struct store *s, const char *smtp, const char *ews_url,
                               const char *grouping, struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = check_smtp(smtp, err);

	if (rc == 0)
		rc = check_str(ews_url, STORE_MAX_URL, true, "EWS URL", err);
	if (rc == 0)
		rc = check_str(grouping, STORE_MAX_URL, false, "grouping", err);
	if (rc == 0)
		rc = stmt(s, Q_MB_SET_ENDPOINT, &st, err);
	if (rc < 0)
		return rc;
	bind_text(&brc, st, 1, smtp);
	bind_text(&brc, st, 2, ews_url);
	bind_text(&brc, st, 3, grouping);
	return update_one(s, st, brc, smtp, "set mailbox endpoint", err);
}

int store_mailbox_set_refreshed(struct store *s, const char *smtp, int64_t refresh_utc,
                                struct err *err)
{
	return update_mailbox(s, Q_MB_SET_REFRESHED, smtp, bind_time, refresh_utc,
	                      "set mailbox refreshed", err);
}

int store_mailbox_set_by_api(struct store *s, const char *smtp, bool by_api, struct err *err)
{
	return update_mailbox(s, Q_MB_SET_BY_API, smtp, bind_i64, by_api ? 1 : 0,
	                      "set mailbox by_api", err);
}

/* ---- subscriptions ---- */

void store_subscription_clear(struct store_subscription *sub)
{
	free(sub->id);
	free(sub->watermark);
	*sub = (struct store_subscription){0};
}

int store_subscription_put(struct store *s, const char *smtp, const struct store_subscription *sub,
                           struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = check_smtp(smtp, err);

	if (rc == 0)
		rc = check_str(sub->id, STORE_MAX_ID, true, "subscription id", err);
	if (rc < 0)
		return rc;
	if ((unsigned)sub->kind >= N_ELEMS(sub_kind_names))
		return err_set(err, -EINVAL, "store: invalid subscription kind %d", (int)sub->kind);
	if (sub->kind == STORE_SUB_STREAMING && sub->watermark != NULL)
		return err_set(err, -EINVAL, "store: a streaming subscription has no watermark");
	if (sub->watermark != NULL && sub->watermark_len > STORE_MAX_WATERMARK)
		return err_set(err, -EMSGSIZE, "store: watermark longer than %u bytes",
		               STORE_MAX_WATERMARK);
	rc = stmt(s, Q_SUB_PUT, &st, err);
	if (rc < 0)
		return rc;
	bind_text(&brc, st, 1, smtp);
	bind_text(&brc, st, 2, sub_kind_names[sub->kind]);
	bind_text(&brc, st, 3, sub->id);
	bind_blob(&brc, st, 4, sub->watermark, sub->watermark_len);
	bind_i64(&brc, st, 5, sub->created_utc);
	return update_one(s, st, brc, smtp, "put subscription", err);
}

int store_subscription_get(struct store *s, const char *smtp, struct store_subscription *out_sub,
                           struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = check_smtp(smtp, err);
	int kind;

	if (rc == 0)
		rc = stmt(s, Q_SUB_GET, &st, err);
	if (rc < 0)
		return rc;
	bind_text(&brc, st, 1, smtp);
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc == SQLITE_DONE) {
		rc = err_set(err, -ENOENT, "store: mailbox '%s' has no subscription", smtp);
	} else if (brc != SQLITE_ROW) {
		rc = sql_fail(s, brc, "get subscription", err);
	} else {
		kind = name_index(sub_kind_names, N_ELEMS(sub_kind_names),
		                  sqlite3_column_text(st, 0));
		if (kind < 0) {
			rc = err_set(err, -EBADMSG, "store: subscription of an unknown kind");
		} else {
			*out_sub = (struct store_subscription){
				.kind = (enum store_sub_kind)kind,
				.id = col_str(st, 1, NULL),
				.created_utc = sqlite3_column_int64(st, 3),
			};
			out_sub->watermark = col_str(st, 2, &out_sub->watermark_len);
		}
	}
	stmt_done(st);
	return rc;
}

int store_subscription_delete(struct store *s, const char *smtp, struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = check_smtp(smtp, err);

	if (rc == 0)
		rc = stmt(s, Q_SUB_DELETE, &st, err);
	if (rc < 0)
		return rc;
	bind_text(&brc, st, 1, smtp);
	if (brc == SQLITE_OK)
		rc = step_write(s, st, "delete subscription", err);
	else
		rc = sql_fail(s, brc, "delete subscription", err);
	stmt_done(st);
	return rc;
}

int store_subscription_count(struct store *s, size_t *out_streaming, size_t *out_pull,
                             struct err *err)
{
	sqlite3_stmt *st = NULL;
	size_t streaming = 0, pull = 0;
	int rc = stmt(s, Q_SUB_COUNT, &st, err);

	if (rc < 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *kind = sqlite3_column_text(st, 0);
		size_t n = (size_t)sqlite3_column_int64(st, 1);

		if (kind && strcmp((const char *)kind, "streaming") == 0)
			streaming = n;
		else
			pull = n;
	}
	rc = rc == SQLITE_DONE ? 0 : sql_fail(s, rc, "count subscriptions", err);
	stmt_done(st);
	if (rc == 0) {
		*out_streaming = streaming;
		*out_pull = pull;
	}
	return rc;
}

int store_subscription_set_watermark(struct store *s, const char *smtp, const char *watermark,
                                     size_t len, struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = check_smtp(smtp, err);

	if (rc < 0)
		return rc;
	if (watermark == NULL || len > STORE_MAX_WATERMARK)
		return err_set(err, watermark == NULL ? -EINVAL : -EMSGSIZE,
		               "store: watermark missing or longer than %u bytes",
		               STORE_MAX_WATERMARK);
	rc = stmt(s, Q_SUB_WATERMARK, &st, err);
	if (rc < 0)
		return rc;
	bind_text(&brc, st, 1, smtp);
	bind_blob(&brc, st, 2, watermark, len);
	rc = update_one(s, st, brc, smtp, "set watermark", err);
	if (rc == -ENOENT)
		rc = err_set(err, -ENOENT, "store: mailbox '%s' has no pull subscription", smtp);
	return rc;
}

/* ---- occurrences ---- */

void store_diff_clear(struct store_diff *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->n; i++) {
		free(d->entries[i].item_id);
		free(d->entries[i].change_key);
	}
	free(d->entries);
	*d = (struct store_diff){0};
}

static int check_occurrence(const struct cal_occurrence *o, struct err *err)
{
	int rc = check_str(o->item_id, STORE_MAX_ID, true, "occurrence item_id", err);

	if (rc == 0)
		rc = check_str(o->change_key, STORE_MAX_ID, false, "occurrence change_key", err);
	if (rc == 0)
		rc = check_str(o->uid, STORE_MAX_ID, false, "occurrence uid", err);
	if (rc == 0)
		rc = check_str(o->subject, STORE_MAX_TEXT, false, "occurrence subject", err);
	if (rc == 0)
		rc = check_str(o->location, STORE_MAX_TEXT, false, "occurrence location", err);
	if (rc == 0)
		rc = check_str(o->organizer, STORE_MAX_TEXT, false, "occurrence organizer", err);
	if (rc < 0)
		return rc;
	if (o->n_categories > STORE_MAX_CATEGORIES)
		return err_set(err, -EMSGSIZE, "store: occurrence with more than %u categories",
		               STORE_MAX_CATEGORIES);
	for (size_t i = 0; i < o->n_categories; i++) {
		rc = check_str(o->categories[i], STORE_MAX_CATEGORY, false, "category", err);
		if (rc < 0)
			return rc;
		if (o->categories[i] == NULL || strchr(o->categories[i], CATEGORY_SEP) != NULL)
			return err_set(err, -EINVAL,
			               "store: category missing or containing U+001F");
	}
	if (o->end_utc < o->start_utc)
		return err_set(err, -EINVAL, "store: occurrence ends before it starts");
	if ((unsigned)o->free_busy >= N_ELEMS(cal_fb_names) ||
	    (unsigned)o->type >= N_ELEMS(cal_item_type_names))
		return err_set(err, -EINVAL, "store: occurrence with an invalid free/busy or type");
	return 0;
}

/* Categories as one string, each one followed by CATEGORY_SEP; NULL when there are none. */
static char *categories_join(const struct cal_occurrence *o)
{
	size_t len = 0;
	size_t off = 0;
	char *p;

	if (o->n_categories == 0)
		return NULL;
	for (size_t i = 0; i < o->n_categories; i++)
		len += strlen(o->categories[i]) + 1;
	p = xmalloc(len + 1);
	for (size_t i = 0; i < o->n_categories; i++) {
		size_t n = strlen(o->categories[i]);

		memcpy(p + off, o->categories[i], n);
		off += n;
		p[off++] = CATEGORY_SEP;
	}
	p[off] = '\0';
	return p;
}

static void categories_split(const char *p, size_t len, struct cal_occurrence *o)
{
	size_t n = 0;
	size_t start = 0;

	for (size_t i = 0; i < len; i++)
		n += p[i] == CATEGORY_SEP;
	if (n == 0)
		return;
	o->categories = xcalloc(n, sizeof(*o->categories));
	for (size_t i = 0; i < len; i++) {
		if (p[i] != CATEGORY_SEP)
			continue;
		o->categories[o->n_categories++] = xmemdup(p + start, i - start);
		start = i + 1;
	}
}

static int row_to_occurrence(sqlite3_stmt *st, struct cal_occurrence *o, struct err *err)
{
	int fb = name_index(cal_fb_names, N_ELEMS(cal_fb_names), sqlite3_column_text(st, 12));
	int type = name_index(cal_item_type_names, N_ELEMS(cal_item_type_names),
	                      sqlite3_column_text(st, 13));
	const char *cats = (const char *)sqlite3_column_text(st, 6);

	if (fb < 0 || type < 0)
		return err_set(err, -EBADMSG, "store: occurrence with unknown free/busy or type");
	*o = (struct cal_occurrence){
		.item_id = col_str(st, 0, NULL),
		.change_key = col_str(st, 1, NULL),
		.uid = col_str(st, 2, NULL),
		.subject = col_str(st, 3, NULL),
		.location = col_str(st, 4, NULL),
		.organizer = col_str(st, 5, NULL),
		.start_utc = sqlite3_column_int64(st, 7),
		.end_utc = sqlite3_column_int64(st, 8),
		.all_day = sqlite3_column_int(st, 9) != 0,
		.is_cancelled = sqlite3_column_int(st, 10) != 0,
		.is_private = sqlite3_column_int(st, 11) != 0,
		.free_busy = (enum cal_fb)fb,
		.type = (enum cal_item_type)type,
	};
	if (cats != NULL)
		categories_split(cats, (size_t)sqlite3_column_bytes(st, 6), o);
	return 0;
}

/* Reads the occurrences of mailbox id through q into an owned array. */
static int read_occurrences(struct store *s, enum q q, int64_t id, struct cal_occurrence **out,
                            size_t *out_n, struct err *err)
{
	struct cal_occurrence *occs = NULL;
	size_t n = 0;
	size_t cap = 0;
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = stmt(s, q, &st, err);

	if (rc < 0)
		return rc;
	bind_i64(&brc, st, 1, id);
	if (brc != SQLITE_OK) {
		rc = sql_fail(s, brc, "read occurrences", err);
		goto out;
	}
	for (;;) {
		brc = sqlite3_step(st);
		if (brc != SQLITE_ROW)
			break;
		if (n == cap) {
			cap = cap > 0 ? cap * 2 : 32;
			occs = xreallocarray(occs, cap, sizeof(*occs));
		}
		rc = row_to_occurrence(st, &occs[n], err);
		if (rc < 0)
			goto out;
		n++;
	}
	if (brc != SQLITE_DONE)
		rc = sql_fail(s, brc, "read occurrences", err);
out:
	stmt_done(st);
	if (rc < 0) {
		cal_occurrences_free(occs, n);
		return rc;
	}
	if (n == 0) {
		free(occs);
		occs = NULL;
	}
	*out = occs;
	*out_n = n;
	return 0;
}

static int mailbox_id(struct store *s, const char *smtp, int64_t *out_id, struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = stmt(s, Q_MB_ID, &st, err);

	if (rc < 0)
		return rc;
	bind_text(&brc, st, 1, smtp);
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc == SQLITE_ROW)
		*out_id = sqlite3_column_int64(st, 0);
	else if (brc == SQLITE_DONE)
		rc = err_set(err, -ENOENT, "store: no mailbox '%s'", smtp);
	else
		rc = sql_fail(s, brc, "mailbox id", err);
	stmt_done(st);
	return rc;
}

static bool str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static unsigned fields_differ(const struct cal_occurrence *a, const struct cal_occurrence *b)
{
	unsigned f = 0;
	bool cats = a->n_categories == b->n_categories;

	for (size_t i = 0; cats && i < a->n_categories; i++)
		cats = str_eq(a->categories[i], b->categories[i]);
	f |= str_eq(a->change_key, b->change_key) ? 0 : STORE_F_CHANGE_KEY;
	f |= str_eq(a->uid, b->uid) ? 0 : STORE_F_UID;
	f |= str_eq(a->subject, b->subject) ? 0 : STORE_F_SUBJECT;
	f |= str_eq(a->location, b->location) ? 0 : STORE_F_LOCATION;
	f |= str_eq(a->organizer, b->organizer) ? 0 : STORE_F_ORGANIZER;
	f |= cats ? 0 : STORE_F_CATEGORIES;
	f |= a->start_utc == b->start_utc && a->end_utc == b->end_utc ? 0 : STORE_F_TIMES;
	f |= a->all_day == b->all_day ? 0 : STORE_F_ALL_DAY;
	f |= a->is_cancelled == b->is_cancelled ? 0 : STORE_F_CANCELLED;
	f |= a->is_private == b->is_private ? 0 : STORE_F_PRIVATE;
	f |= a->free_busy == b->free_busy ? 0 : STORE_F_FREE_BUSY;
	f |= a->type == b->type ? 0 : STORE_F_TYPE;
	return f;
}

static int cmp_occ_ptr(const void *a, const void *b)
{
	const struct cal_occurrence *const *x = a;
	const struct cal_occurrence *const *y = b;

	return strcmp((*x)->item_id, (*y)->item_id);
}

static int occ_put(struct store *s, int64_t id, const struct cal_occurrence *o, struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	char *cats = categories_join(o);
	int rc = stmt(s, Q_OCC_PUT, &st, err);

	if (rc < 0)
		goto out;
	bind_i64(&brc, st, 1, id);
	bind_text(&brc, st, 2, o->item_id);
	bind_text(&brc, st, 3, o->change_key);
	bind_text(&brc, st, 4, o->uid);
	bind_text(&brc, st, 5, o->subject);
	bind_text(&brc, st, 6, o->location);
	bind_text(&brc, st, 7, o->organizer);
	bind_text(&brc, st, 8, cats);
	bind_i64(&brc, st, 9, o->start_utc);
	bind_i64(&brc, st, 10, o->end_utc);
	bind_i64(&brc, st, 11, o->all_day);
	bind_i64(&brc, st, 12, o->is_cancelled);
	bind_i64(&brc, st, 13, o->is_private);
	bind_text(&brc, st, 14, cal_fb_names[o->free_busy]);
	bind_text(&brc, st, 15, cal_item_type_names[o->type]);
	if (brc == SQLITE_OK)
		rc = step_write(s, st, "write occurrence", err);
	else
		rc = sql_fail(s, brc, "write occurrence", err);
	stmt_done(st);
out:
	free(cats);
	return rc;
}

static int occ_delete(struct store *s, int64_t id, const char *item_id, struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = stmt(s, Q_OCC_DELETE, &st, err);

	if (rc < 0)
		return rc;
	bind_i64(&brc, st, 1, id);
	bind_text(&brc, st, 2, item_id);
	if (brc == SQLITE_OK)
		rc = step_write(s, st, "delete occurrence", err);
	else
		rc = sql_fail(s, brc, "delete occurrence", err);
	stmt_done(st);
	return rc;
}

static void diff_add(struct store_diff *d, size_t *cap, enum store_change change,
                     const struct cal_occurrence *o, unsigned fields)
{
	if (d->n == *cap) {
		*cap = *cap > 0 ? *cap * 2 : 16;
		d->entries = xreallocarray(d->entries, *cap, sizeof(*d->entries));
	}
	d->entries[d->n++] = (struct store_diff_entry){
		.change = change,
		.item_id = xstrdup(o->item_id),
		.change_key = o->change_key != NULL ? xstrdup(o->change_key) : NULL,
		.fields = fields,
	};
	if (change == STORE_ADDED)
		d->n_added++;
	else if (change == STORE_CHANGED)
		d->n_changed++;
	else
		d->n_removed++;
}

/* The merge of the stored rows (sorted by item_id) with the new ones (sorted the same way). */
static int replace_rows(struct store *s, int64_t id, const struct cal_occurrence *old, size_t n_old,
                        const struct cal_occurrence *const *nw, size_t n_new, struct store_diff *d,
                        struct err *err)
{
	size_t i = 0;
	size_t j = 0;
	size_t cap = 0;
	int rc = 0;

	while (rc == 0 && (i < n_old || j < n_new)) {
		int c = i == n_old ? 1 : j == n_new ? -1 : strcmp(old[i].item_id, nw[j]->item_id);

		if (c < 0) {
			rc = occ_delete(s, id, old[i].item_id, err);
			diff_add(d, &cap, STORE_REMOVED, &old[i], 0);
			i++;
		} else if (c > 0) {
			rc = occ_put(s, id, nw[j], err);
			diff_add(d, &cap, STORE_ADDED, nw[j], 0);
			j++;
		} else {
			unsigned f = fields_differ(&old[i], nw[j]);

			if (f != 0) {
				rc = occ_put(s, id, nw[j], err);
				diff_add(d, &cap, STORE_CHANGED, nw[j], f);
			} else {
				d->n_unchanged++;
			}
			i++;
			j++;
		}
	}
	return rc;
}

int store_replace_occurrences(struct store *s, const char *smtp, int64_t window_start_utc,
                              int64_t window_end_utc, const struct cal_occurrence *occs, size_t n,
                              struct store_diff *out_diff, struct err *err)
{
	const struct cal_occurrence **sorted = NULL;
	struct cal_occurrence *old = NULL;
	size_t n_old = 0;
	struct store_diff d = {0};
	sqlite3_stmt *st = NULL;
	int64_t id = 0;
	int brc = SQLITE_OK;
	int rc = check_smtp(smtp, err);

	if (rc < 0)
		return rc;
	if (window_end_utc <= window_start_utc)
		return err_set(err, -EINVAL, "store: mailbox '%s': empty window", smtp);
	if (n > STORE_MAX_OCCURRENCES)
		return err_set(err, -EMSGSIZE, "store: mailbox '%s': %zu occurrences, limit %u",
		               smtp, n, STORE_MAX_OCCURRENCES);
	for (size_t i = 0; i < n; i++) {
		rc = check_occurrence(&occs[i], err);
		if (rc < 0)
			return err_set(err, rc, "mailbox '%s': %s", smtp,
			               err != NULL ? err->msg : "");
	}
	sorted = xcalloc(n, sizeof(*sorted));
	for (size_t i = 0; i < n; i++)
		sorted[i] = &occs[i];
	qsort(sorted, n, sizeof(*sorted), cmp_occ_ptr);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(sorted[i - 1]->item_id, sorted[i]->item_id) == 0) {
			rc = err_set(err, -EINVAL, "store: mailbox '%s': duplicate item_id", smtp);
			goto out;
		}
	}

	rc = begin(s, err);
	if (rc < 0)
		goto out;
	rc = mailbox_id(s, smtp, &id, err);
	if (rc == 0)
		rc = read_occurrences(s, Q_OCC_BY_ID, id, &old, &n_old, err);
	if (rc == 0)
		rc = replace_rows(s, id, old, n_old, sorted, n, &d, err);
	if (rc == 0)
		rc = stmt(s, Q_MB_SET_WINDOW, &st, err);
	if (rc == 0) {
		bind_i64(&brc, st, 1, id);
		bind_i64(&brc, st, 2, window_start_utc);
		bind_i64(&brc, st, 3, window_end_utc);
		if (brc == SQLITE_OK)
			rc = step_write(s, st, "set window", err);
		else
			rc = sql_fail(s, brc, "set window", err);
		stmt_done(st);
	}
	if (rc == 0)
		rc = commit(s, err);
	else
		rollback(s);
out:
	free(sorted);
	cal_occurrences_free(old, n_old);
	if (rc == 0 && out_diff != NULL)
		*out_diff = d;
	else
		store_diff_clear(&d);
	return rc;
}

int store_load_occurrences(struct store *s, const char *smtp, struct cal_occurrence **out_occs,
                           size_t *out_n, struct err *err)
{
	int64_t id = 0;
	int rc = check_smtp(smtp, err);

	/* One read transaction (deferred: it takes no write lock), so the id and the rows come from
	 * the same snapshot. */
	if (rc == 0)
		rc = begin_as(s, Q_BEGIN_READ, err);
	if (rc < 0)
		return rc;
	rc = mailbox_id(s, smtp, &id, err);
	if (rc == 0)
		rc = read_occurrences(s, Q_OCC_BY_START, id, out_occs, out_n, err);
	rollback(s);
	return rc;
}

/* ---- presence ---- */

void store_presence_clear(struct store_presence *p)
{
	free(p->state);
	free(p->profile);
	free(p->forward);
	free(p->subject);
	*p = (struct store_presence){0};
}

void store_presence_events_free(struct store_presence_event *evs, size_t n)
{
	if (evs == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(evs[i].smtp);
		free(evs[i].reason);
		store_presence_clear(&evs[i].presence);
	}
	free(evs);
}

static int check_presence(const struct store_presence *p, struct err *err)
{
	int rc = check_str(p->state, STORE_MAX_NAME, true, "presence state", err);

	if (rc == 0)
		rc = check_str(p->profile, STORE_MAX_NAME, false, "presence profile", err);
	if (rc == 0)
		rc = check_str(p->forward, STORE_MAX_SMTP, false, "presence forward", err);
	if (rc == 0)
		rc = check_str(p->subject, STORE_MAX_TEXT, false, "presence subject", err);
	return rc;
}

/* Binds smtp and the presence as ?1..?9, the layout of Q_PRES_PUT and Q_EV_APPEND. */
static void bind_presence(int *brc, sqlite3_stmt *st, const char *smtp,
                          const struct store_presence *p)
{
	bind_text(brc, st, 1, smtp);
	bind_text(brc, st, 2, p->state);
	bind_text(brc, st, 3, p->profile);
	bind_text(brc, st, 4, p->forward);
	bind_text(brc, st, 5, p->subject);
	bind_time(brc, st, 6, p->since_utc);
	bind_time(brc, st, 7, p->until_utc);
	bind_time(brc, st, 8, p->next_change_utc);
	bind_time(brc, st, 9, p->updated_utc);
}

static void row_to_presence(sqlite3_stmt *st, int c, struct store_presence *p)
{
	*p = (struct store_presence){
		.state = col_str(st, c, NULL),
		.profile = col_str(st, c + 1, NULL),
		.forward = col_str(st, c + 2, NULL),
		.subject = col_str(st, c + 3, NULL),
		.since_utc = sqlite3_column_int64(st, c + 4),
		.until_utc = sqlite3_column_int64(st, c + 5),
		.next_change_utc = sqlite3_column_int64(st, c + 6),
		.updated_utc = sqlite3_column_int64(st, c + 7),
	};
}

static int presence_put(struct store *s, const char *smtp, const struct store_presence *p,
                        struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = stmt(s, Q_PRES_PUT, &st, err);

	if (rc < 0)
		return rc;
	bind_presence(&brc, st, smtp, p);
	return update_one(s, st, brc, smtp, "put presence", err);
}

static int event_append(struct store *s, const char *smtp, const struct store_presence *p,
                        const char *reason, int64_t *out_id, struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = stmt(s, Q_EV_APPEND, &st, err);

	if (rc < 0)
		return rc;
	bind_presence(&brc, st, smtp, p);
	bind_text(&brc, st, 10, reason);
	rc = update_one(s, st, brc, smtp, "append presence event", err);
	if (rc == 0 && out_id != NULL)
		*out_id = sqlite3_last_insert_rowid(s->db);
	return rc;
}

int store_presence_put(struct store *s, const char *smtp, const struct store_presence *p,
                       struct err *err)
{
	int rc = check_smtp(smtp, err);

	if (rc == 0)
		rc = check_presence(p, err);
	if (rc < 0)
		return rc;
	return presence_put(s, smtp, p, err);
}

int store_presence_get(struct store *s, const char *smtp, struct store_presence *out_p,
                       struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = check_smtp(smtp, err);

	if (rc == 0)
		rc = stmt(s, Q_PRES_GET, &st, err);
	if (rc < 0)
		return rc;
	bind_text(&brc, st, 1, smtp);
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc == SQLITE_ROW)
		row_to_presence(st, 0, out_p);
	else if (brc == SQLITE_DONE)
		rc = err_set(err, -ENOENT, "store: mailbox '%s' has no presence", smtp);
	else
		rc = sql_fail(s, brc, "get presence", err);
	stmt_done(st);
	return rc;
}

int store_append_presence_event(struct store *s, const char *smtp, const struct store_presence *p,
                                const char *reason, int64_t *out_id, struct err *err)
{
	int rc = check_smtp(smtp, err);

	if (rc == 0)
		rc = check_presence(p, err);
	if (rc == 0)
		rc = check_str(reason, STORE_MAX_REASON, false, "presence reason", err);
	if (rc < 0)
		return rc;
	return event_append(s, smtp, p, reason, out_id, err);
}

int store_presence_record(struct store *s, const char *smtp, const struct store_presence *p,
                          const char *reason, int64_t *out_id, struct err *err)
{
	int64_t id = 0;
	int rc = check_smtp(smtp, err);

	if (rc == 0)
		rc = check_presence(p, err);
	if (rc == 0)
		rc = check_str(reason, STORE_MAX_REASON, false, "presence reason", err);
	if (rc == 0)
		rc = begin(s, err);
	if (rc < 0)
		return rc;
	rc = presence_put(s, smtp, p, err);
	if (rc == 0)
		rc = event_append(s, smtp, p, reason, &id, err);
	if (rc == 0)
		rc = commit(s, err);
	else
		rollback(s);
	if (rc == 0 && out_id != NULL)
		*out_id = id;
	return rc;
}

int store_presence_events_after(struct store *s, int64_t after_id, size_t limit,
                                struct store_presence_event **out_evs, size_t *out_n,
                                struct err *err)
{
	struct store_presence_event *evs;
	size_t n = 0;
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc;

	if (limit == 0 || limit > STORE_MAX_EVENTS_PAGE || after_id < 0)
		return err_set(err, -EINVAL, "store: events after %lld: limit %zu not in 1..%u",
		               (long long)after_id, limit, STORE_MAX_EVENTS_PAGE);
	rc = stmt(s, Q_EV_AFTER, &st, err);
	if (rc < 0)
		return rc;
	evs = xcalloc(limit, sizeof(*evs));
	bind_i64(&brc, st, 1, after_id);
	bind_i64(&brc, st, 2, (int64_t)limit);
	/* The statement's LIMIT bounds the rows; n < limit guards the array all the same. */
	while (brc == SQLITE_OK && n < limit) {
		brc = sqlite3_step(st);
		if (brc != SQLITE_ROW)
			break;
		evs[n].id = sqlite3_column_int64(st, 0);
		evs[n].smtp = col_str(st, 1, NULL);
		row_to_presence(st, 2, &evs[n].presence);
		evs[n].reason = col_str(st, 10, NULL);
		n++;
		brc = SQLITE_OK;
	}
	if (brc != SQLITE_OK && brc != SQLITE_DONE)
		rc = sql_fail(s, brc, "read presence events", err);
	stmt_done(st);
	if (rc < 0 || n == 0) {
		store_presence_events_free(evs, n);
		evs = NULL;
		n = 0;
	}
	if (rc == 0) {
		*out_evs = evs;
		*out_n = n;
	}
	return rc;
}

/* ---- webhook cursors ---- */

int store_presence_events_last_id(struct store *s, int64_t *out_id, struct err *err)
{
	int64_t id = 0;
	int rc = query_int(s, Q_EV_LAST_ID, &id, err);

	if (rc == 0)
		*out_id = id;
	return rc;
}

int store_webhook_cursor_get(struct store *s, const char *url, int64_t *out_last_id,
                             struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = check_str(url, STORE_MAX_URL, true, "webhook URL", err);

	if (rc == 0)
		rc = stmt(s, Q_HOOK_GET, &st, err);
	if (rc < 0)
		return rc;
	bind_text(&brc, st, 1, url);
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc == SQLITE_ROW)
		*out_last_id = sqlite3_column_int64(st, 0);
	else if (brc == SQLITE_DONE)
		rc = err_set(err, -ENOENT, "store: no cursor for webhook '%s'", url);
	else
		rc = sql_fail(s, brc, "get webhook cursor", err);
	stmt_done(st);
	return rc;
}

int store_webhook_cursor_set(struct store *s, const char *url, int64_t last_id, struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = check_str(url, STORE_MAX_URL, true, "webhook URL", err);

	if (rc == 0 && last_id < 0)
		rc = err_set(err, -EINVAL, "store: webhook cursor %lld is negative",
		             (long long)last_id);
	if (rc == 0)
		rc = stmt(s, Q_HOOK_SET, &st, err);
	if (rc < 0)
		return rc;
	bind_text(&brc, st, 1, url);
	bind_i64(&brc, st, 2, last_id);
	if (brc != SQLITE_OK)
		rc = sql_fail(s, brc, "set webhook cursor", err);
	else
		rc = step_write(s, st, "set webhook cursor", err);
	stmt_done(st);
	return rc;
}
