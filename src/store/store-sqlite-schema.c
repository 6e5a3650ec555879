/* SPDX-License-Identifier: MIT */
/*
 * store-sqlite-schema.c: the SQLite store's schema: the migrations that create and change it,
 * one transaction each, and the checks on open that refuse a newer calsync's or a foreign
 * database (docs/store.md, "Migrations").
 */
#include "store/store-sqlite-int.h"

#include <errno.h>

#include "base/err.h"

/* PRAGMA application_id of a calsync database: "CSYN". */
#define STORE_APPLICATION_ID 0x4353594e

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
	/* 5: the backend that holds each mailbox (hybrid Exchange: on-premises EWS or Exchange
	 * Online through Microsoft Graph), so that a restart serves a moved mailbox where it is. */
	"ALTER TABLE mailboxes ADD COLUMN backend TEXT NOT NULL DEFAULT 'ews'"
	" CHECK (backend = 'ews' OR backend = 'graph');"
	"PRAGMA user_version = 5;",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == STORE_SCHEMA_VERSION,
               "one migration per schema version");
_Static_assert(STORE_APPLICATION_ID == 1129535822, "the migration writes this application_id");

int sq_migrate(struct store_sqlite *s, struct err *err)
{
	int64_t v = 0;
	int64_t n = 0;
	int rc = sq_query_int(s, Q_USER_VERSION, &v, err);

	if (rc < 0)
		return rc;
	if (v > STORE_SCHEMA_VERSION)
		return err_set(
			err, -EPROTONOSUPPORT,
			"store: database schema version %lld is newer than this calsync knows "
			"(%d); run a newer calsync or restore a backup",
			(long long)v, STORE_SCHEMA_VERSION);
	if (v > 0) {
		rc = sq_query_int(s, Q_APPLICATION_ID, &n, err);
		if (rc < 0)
			return rc;
		if (n != STORE_APPLICATION_ID)
			return err_set(err, -EINVAL,
			               "store: not a calsync database (application_id %lld)",
			               (long long)n);
	} else {
		rc = sq_query_int(s, Q_COUNT_SCHEMA, &n, err);
		if (rc < 0)
			return rc;
		if (n > 0)
			return err_set(
				err, -EINVAL,
				"store: not a calsync database (it has tables but no version)");
	}
	for (int target = (int)v + 1; target <= STORE_SCHEMA_VERSION; target++) {
		rc = sq_begin(s, err);
		if (rc < 0)
			return rc;
		/* Another process may have migrated between our read and our lock. */
		rc = sq_query_int(s, Q_USER_VERSION, &v, err);
		if (rc < 0)
			goto fail;
		if (v >= target) {
			rc = sq_commit(s, err);
			if (rc < 0)
				return rc;
			continue;
		}
		rc = sq_run_script(s, migrations[target - 1], err);
		if (rc < 0)
			goto fail;
		rc = sq_query_int(s, Q_USER_VERSION, &v, err);
		if (rc < 0)
			goto fail;
		if (v != target) {
			rc = err_set(err, -EPROTO, "store: migration %d set user_version %lld",
			             target, (long long)v);
			goto fail;
		}
		rc = sq_commit(s, err);
		if (rc < 0)
			return rc;
	}
	s->version = STORE_SCHEMA_VERSION;
	return 0;
fail:
	sq_rollback(s);
	return rc;
}
