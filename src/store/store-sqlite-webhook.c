/* SPDX-License-Identifier: MIT */
/*
 * store-sqlite-webhook.c: the SQLite store's webhook cursors. The outbox is presence_events;
 * each webhook URL keeps the id of the last event it delivered or gave up on.
 */
#include "store/store-sqlite-int.h"

#include <errno.h>

#include "base/err.h"

int sq_webhook_cursor_get(struct store *base, const char *url, int64_t *out_last_id,
                          struct err *err)
{
	struct store_sqlite *s = sq_from(base);
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = sq_stmt(s, Q_HOOK_GET, &st, err);

	if (rc < 0)
		return rc;
	sq_bind_text(&brc, st, 1, url);
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc == SQLITE_ROW)
		*out_last_id = sqlite3_column_int64(st, 0);
	else if (brc == SQLITE_DONE)
		rc = err_set(err, -ENOENT, "store: no cursor for webhook '%s'", url);
	else
		rc = sq_fail(s, brc, "get webhook cursor", err);
	sq_stmt_done(st);
	return rc;
}

int sq_webhook_cursor_set(struct store *base, const char *url, int64_t last_id, struct err *err)
{
	struct store_sqlite *s = sq_from(base);
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = sq_stmt(s, Q_HOOK_SET, &st, err);

	if (rc < 0)
		return rc;
	sq_bind_text(&brc, st, 1, url);
	sq_bind_i64(&brc, st, 2, last_id);
	if (brc != SQLITE_OK)
		rc = sq_fail(s, brc, "set webhook cursor", err);
	else
		rc = sq_step_write(s, st, "set webhook cursor", err);
	sq_stmt_done(st);
	return rc;
}
