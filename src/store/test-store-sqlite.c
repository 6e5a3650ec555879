/* SPDX-License-Identifier: MIT */
/*
 * test-store-sqlite.c: what only the SQLite implementation does: the file header (user_version,
 * application_id), the migrations from each older schema, refusing a newer or foreign database,
 * and event ids that survive deleting the log behind the store's back. The interface itself is
 * tested in test-store.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "test-store.h"

static void tmp_make(struct tmp *t)
{
	sqlite_tmp_make(t);
}

static void tmp_remove(struct tmp *t)
{
	sqlite_tmp_remove(t);
}

/* Overwrites 4 big-endian bytes of the database header (user_version is at 60, application_id
 * at 68), as another program would; the store must be closed. */
static void poke_header(const char *path, long off, uint32_t v)
{
	unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
	                      (unsigned char)(v >> 8), (unsigned char)v};
	int fd = open(path, O_WRONLY);

	if (fd < 0 || pwrite(fd, b, sizeof(b), off) != (ssize_t)sizeof(b)) {
		perror("poke_header");
		abort();
	}
	(void)close(fd);
}

static uint32_t peek_header(const char *path, long off)
{
	unsigned char b[4] = {0};
	int fd = open(path, O_RDONLY);

	if (fd < 0 || pread(fd, b, sizeof(b), off) != (ssize_t)sizeof(b)) {
		perror("peek_header");
		abort();
	}
	(void)close(fd);
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* The header says what a backup tool sees: our version and application id. */
TEST(header_has_version_and_application_id)
{
	struct tmp t;
	struct store *s = NULL;
	struct err e = {0};

	tmp_make(&t);
	s = open_ok(t.path);
	CHECK_EQ(store_mailbox_add(s, "a@example.com", NULL, NULL, &e), 0);
	store_close(s);
	CHECK_EQ(peek_header(t.path, 60), STORE_SCHEMA_VERSION);
	CHECK_EQ(peek_header(t.path, 68), 0x4353594e);
	tmp_remove(&t);
}

/* A version 1 database (before by_api) is migrated on open and keeps its rows. */
TEST(version_1_database_is_migrated)
{
	struct tmp t;
	struct store *s = NULL;
	struct store_mailbox mb = {0};
	struct err e = {0};
	sqlite3 *db = NULL;

	tmp_make(&t);
	s = open_ok(t.path);
	CHECK_EQ(store_mailbox_add(s, "old@example.com", NULL, NULL, &e), 0);
	store_close(s);
	/* Turn it back into what version 1 wrote. */
	CHECK_EQ(sqlite3_open(t.path, &db), SQLITE_OK);
	CHECK_EQ(
		sqlite3_exec(db,
	                     "DROP TABLE webhook_cursors; ALTER TABLE mailboxes DROP COLUMN by_api;"
	                     " ALTER TABLE mailboxes DROP COLUMN backend;"
	                     " PRAGMA user_version = 1;",
	                     NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	CHECK_EQ(peek_header(t.path, 60), 1);

	s = open_ok(t.path);
	CHECK_EQ(store_schema_version(s), STORE_SCHEMA_VERSION);
	CHECK_EQ(store_mailbox_get(s, "old@example.com", &mb, &e), 0);
	CHECK(mb.enabled && !mb.by_api);
	CHECK_STREQ(mb.backend, "ews"); /* version 5: every mailbox that was is on premises */
	store_mailbox_clear(&mb);
	CHECK_EQ(store_mailbox_set_by_api(s, "OLD@example.com", true, &e), 0);
	CHECK_EQ(store_mailbox_get(s, "old@example.com", &mb, &e), 0);
	CHECK(mb.by_api);
	store_mailbox_clear(&mb);
	CHECK_EQ(store_mailbox_set_by_api(s, "old@example.com", false, &e), 0);
	CHECK_EQ(store_mailbox_get(s, "old@example.com", &mb, &e), 0);
	CHECK(!mb.by_api);
	store_mailbox_clear(&mb);
	CHECK_EQ(store_mailbox_set_by_api(s, "nobody@example.com", true, &e), -ENOENT);
	store_close(s);
	CHECK_EQ(peek_header(t.path, 60), STORE_SCHEMA_VERSION);
	tmp_remove(&t);
}

/* A version 2 database (before webhook_cursors) is migrated on open and keeps its log. */
TEST(version_2_database_is_migrated)
{
	struct tmp t;
	struct store *s = NULL;
	struct err e = {0};
	sqlite3 *db = NULL;
	int64_t id = 0;
	int64_t last = -1;

	tmp_make(&t);
	s = open_ok(t.path);
	CHECK_EQ(store_mailbox_add(s, "old@example.com", NULL, NULL, &e), 0);
	CHECK_EQ(store_presence_record(s, "old@example.com",
	                               &(struct store_presence){.state = (char[]){"busy"}}, NULL,
	                               &id, &e),
	         0);
	store_close(s);
	/* Turn it back into what version 2 wrote. */
	CHECK_EQ(sqlite3_open(t.path, &db), SQLITE_OK);
	CHECK_EQ(sqlite3_exec(
			 db,
			 "DROP TABLE webhook_cursors; ALTER TABLE mailboxes DROP COLUMN backend;"
			 " PRAGMA user_version = 2;",
			 NULL, NULL, NULL),
	         SQLITE_OK);
	sqlite3_close(db);
	CHECK_EQ(peek_header(t.path, 60), 2);

	s = open_ok(t.path);
	CHECK_EQ(store_schema_version(s), STORE_SCHEMA_VERSION);
	CHECK_EQ(store_presence_events_last_id(s, &last, &e), 0);
	CHECK_EQ(last, id);
	CHECK_EQ(store_webhook_cursor_get(s, "https://hook.example/", &last, &e), -ENOENT);
	CHECK_EQ(store_webhook_cursor_set(s, "https://hook.example/", id, &e), 0);
	CHECK_EQ(store_webhook_cursor_get(s, "https://hook.example/", &last, &e), 0);
	CHECK_EQ(last, id);
	store_close(s);
	CHECK_EQ(peek_header(t.path, 60), STORE_SCHEMA_VERSION);
	tmp_remove(&t);
}

/* Counts the opcodes named op in the program of sql (EXPLAIN). */
static int explain_count(sqlite3 *db, const char *sql, const char *op)
{
	char q[512];
	sqlite3_stmt *st = NULL;
	int n = 0;

	CHECK((size_t)snprintf(q, sizeof(q), "EXPLAIN %s", sql) < sizeof(q));
	CHECK_EQ(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		n += strcmp((const char *)sqlite3_column_text(st, 1), op) == 0;
	sqlite3_finalize(st);
	return n;
}

/* A version 3 database (occurrences with `IN (...)` CHECKs) is migrated on open and keeps its
 * occurrences; afterwards writing an occurrence builds no temporary b-tree, and the CHECKs still
 * refuse what they refused before. */
TEST(version_3_database_is_migrated)
{
#define PUT(values)                                                                                \
	"INSERT INTO occurrences (mailbox_id, item_id, start_utc, end_utc, all_day, is_cancelled," \
	" is_private, free_busy, item_type) VALUES (1, 'x', 1, 2, 0, 0, 0, " values ")"
	struct tmp t;
	struct store *s = NULL;
	struct cal_occurrence in[2];
	struct cal_occurrence *out = NULL;
	size_t n = 0;
	struct err e = {0};
	sqlite3 *db = NULL;

	tmp_make(&t);
	s = open_ok(t.path);
	CHECK_EQ(store_mailbox_add(s, "old@example.com", NULL, NULL, &e), 0);
	in[0] = occ("AAMk-1", "CK1", 1700003600, 1700007200);
	set_str(&in[0].subject, "Standup");
	in[0].free_busy = CAL_FB_WORKING_ELSEWHERE;
	in[0].type = CAL_ITEM_EXCEPTION;
	in[1] = occ("AAMk-2", NULL, 1700000000, 1700086400);
	in[1].free_busy = CAL_FB_NO_DATA;
	in[1].type = CAL_ITEM_OCCURRENCE;
	CHECK_EQ(store_replace_occurrences(s, "old@example.com", 1699990000, 1701000000, in, 2,
	                                   NULL, &e),
	         0);
	store_close(s);
	/* Turn it back into what version 3 wrote: the table of migration 1. */
	CHECK_EQ(sqlite3_open(t.path, &db), SQLITE_OK);
	CHECK_EQ(
		sqlite3_exec(
			db,
			"CREATE TABLE occ3 ("
			" mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,"
			" item_id TEXT NOT NULL, change_key TEXT, uid TEXT, subject TEXT,"
			" location TEXT, organizer TEXT, categories TEXT,"
			" start_utc INTEGER NOT NULL,"
			" end_utc INTEGER NOT NULL CHECK (end_utc >= start_utc),"
			" all_day INTEGER NOT NULL CHECK (all_day IN (0, 1)),"
			" is_cancelled INTEGER NOT NULL CHECK (is_cancelled IN (0, 1)),"
			" is_private INTEGER NOT NULL CHECK (is_private IN (0, 1)),"
			" free_busy TEXT NOT NULL CHECK (free_busy IN ('unknown', 'free',"
			"  'tentative', 'busy', 'oof', 'working-elsewhere', 'no-data')),"
			" item_type TEXT NOT NULL CHECK (item_type IN ('single', 'occurrence',"
			"  'exception')),"
			" PRIMARY KEY (mailbox_id, item_id)) WITHOUT ROWID;"
			"INSERT INTO occ3 SELECT * FROM occurrences; DROP TABLE occurrences;"
			"ALTER TABLE occ3 RENAME TO occurrences; ALTER TABLE mailboxes DROP COLUMN backend;"
			" PRAGMA user_version = 3;",
			NULL, NULL, NULL),
		SQLITE_OK);
	CHECK(explain_count(db, PUT("'busy', 'single'"), "OpenEphemeral") >
	      0); /* what version 3 cost */
	sqlite3_close(db);
	CHECK_EQ(peek_header(t.path, 60), 3);

	s = open_ok(t.path);
	CHECK_EQ(store_schema_version(s), STORE_SCHEMA_VERSION);
	CHECK_EQ(store_load_occurrences(s, "old@example.com", &out, &n, &e), 0);
	CHECK_EQ(n, 2u);
	for (size_t i = 0; i < n && n == 2; i++)
		CHECK(occ_equal(&out[i], &in[1 - i])); /* by start */
	cal_occurrences_free(out, n);
	store_close(s);

	CHECK_EQ(sqlite3_open(t.path, &db), SQLITE_OK);
	CHECK_EQ(explain_count(db, PUT("'busy', 'single'"), "OpenEphemeral"), 0);
	/* The rewritten CHECKs refuse the same values. */
	CHECK_EQ(sqlite3_exec(db, PUT("'maybe', 'single'"), NULL, NULL, NULL), SQLITE_CONSTRAINT);
	CHECK_EQ(sqlite3_exec(db, PUT("'busy', 'series'"), NULL, NULL, NULL), SQLITE_CONSTRAINT);
	CHECK_EQ(sqlite3_exec(db, PUT("'no-data', 'exception'"), NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	occs_clear(in, 2);
	tmp_remove(&t);
#undef PUT
}

TEST(newer_or_foreign_database_is_refused)
{
	struct tmp t;
	struct store *s = NULL;
	struct err e = {0};
	FILE *f;

	tmp_make(&t);
	s = open_ok(t.path);
	store_close(s);
	s = NULL;

	poke_header(t.path, 60, 99);
	CHECK_EQ(store_open(t.path, &s, &e), -EPROTONOSUPPORT);
	CHECK(s == NULL);
	CHECK(strstr(e.msg, "newer") != NULL);
	CHECK(strstr(e.msg, "99") != NULL);
	CHECK_EQ(peek_header(t.path, 60), 99); /* left untouched */

	poke_header(t.path, 60, STORE_SCHEMA_VERSION);
	poke_header(t.path, 68, 0x12345678);
	CHECK_EQ(store_open(t.path, &s, &e), -EINVAL);
	CHECK(strstr(e.msg, "not a calsync database") != NULL);
	tmp_remove(&t);

	/* A file that is not SQLite at all. */
	tmp_make(&t);
	f = fopen(t.path, "w");
	CHECK(f != NULL);
	for (int i = 0; i < 200; i++)
		fputs("this is not a database. ", f);
	fclose(f);
	CHECK_EQ(store_open(t.path, &s, &e), -EBADMSG);
	CHECK(s == NULL);
	tmp_remove(&t);

	/* A path that cannot be created. */
	CHECK(store_open("/nonexistent-dir/x/calsync.db", &s, &e) < 0);
	CHECK(s == NULL);
	CHECK(store_open("", &s, &e) == -EINVAL);
}

/* The last event id survives deleting the newest events: ids are never reused (AUTOINCREMENT). */
TEST(event_ids_survive_deleting_the_log)
{
	struct tmp t;
	struct store *s;
	struct err e = {0};
	struct store_presence busy = {.state = (char[]){"busy"}};
	int64_t id2 = 0;
	int64_t v = -1;
	sqlite3 *db = NULL;

	tmp_make(&t);
	s = open_ok(t.path);
	CHECK_EQ(store_mailbox_add(s, "u@example.com", NULL, NULL, &e), 0);
	CHECK_EQ(store_presence_record(s, "u@example.com", &busy, NULL, NULL, &e), 0);
	CHECK_EQ(store_presence_record(s, "u@example.com", &busy, NULL, &id2, &e), 0);
	CHECK_EQ(store_webhook_cursor_set(s, "http://b.example/hook", 0, &e), 0);
	store_close(s);

	CHECK_EQ(sqlite3_open(t.path, &db), SQLITE_OK);
	CHECK_EQ(sqlite3_exec(db, "DELETE FROM presence_events", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	s = open_ok(t.path);
	CHECK_EQ(store_presence_events_last_id(s, &v, &e), 0);
	CHECK_EQ(v, id2);
	CHECK_EQ(store_webhook_cursor_get(s, "http://b.example/hook", &v, &e), 0);
	CHECK_EQ(v, 0);
	store_close(s);
	tmp_remove(&t);
}

int main(void)
{
	RUN(header_has_version_and_application_id);
	RUN(version_1_database_is_migrated);
	RUN(version_2_database_is_migrated);
	RUN(version_3_database_is_migrated);
	RUN(newer_or_foreign_database_is_refused);
	RUN(event_ids_survive_deleting_the_log);
	return harness_done();
}
