/* SPDX-License-Identifier: MIT */
/*
 * store-sqlite-presence.c: the SQLite store's presence: the current presence per mailbox and the
 * append-only log of its changes (presence_events), whose AUTOINCREMENT ids are never reused.
 */
#include "store/store-sqlite-int.h"

#include <errno.h>

#include "base/err.h"
#include "base/xalloc.h"

/* Binds smtp and the presence as ?1..?9, the layout of Q_PRES_PUT and Q_EV_APPEND. */
static void bind_presence(int *brc, sqlite3_stmt *st, const char *smtp,
                          const struct store_presence *p)
{
	sq_bind_text(brc, st, 1, smtp);
	sq_bind_text(brc, st, 2, p->state);
	sq_bind_text(brc, st, 3, p->profile);
	sq_bind_text(brc, st, 4, p->forward);
	sq_bind_text(brc, st, 5, p->subject);
	sq_bind_time(brc, st, 6, p->since_utc);
	sq_bind_time(brc, st, 7, p->until_utc);
	sq_bind_time(brc, st, 8, p->next_change_utc);
	sq_bind_time(brc, st, 9, p->updated_utc);
}

static void row_to_presence(sqlite3_stmt *st, int c, struct store_presence *p)
{
	*p = (struct store_presence){
		.state = sq_col_str(st, c, NULL),
		.profile = sq_col_str(st, c + 1, NULL),
		.forward = sq_col_str(st, c + 2, NULL),
		.subject = sq_col_str(st, c + 3, NULL),
		.since_utc = sqlite3_column_int64(st, c + 4),
		.until_utc = sqlite3_column_int64(st, c + 5),
		.next_change_utc = sqlite3_column_int64(st, c + 6),
		.updated_utc = sqlite3_column_int64(st, c + 7),
	};
}

static int presence_put(struct store_sqlite *s, const char *smtp, const struct store_presence *p,
                        struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = sq_stmt(s, Q_PRES_PUT, &st, err);

	if (rc < 0)
		return rc;
	bind_presence(&brc, st, smtp, p);
	return sq_update_one(s, st, brc, smtp, "put presence", err);
}

static int event_append(struct store_sqlite *s, const char *smtp, const struct store_presence *p,
                        const char *reason, int64_t *out_id, struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = sq_stmt(s, Q_EV_APPEND, &st, err);

	if (rc < 0)
		return rc;
	bind_presence(&brc, st, smtp, p);
	sq_bind_text(&brc, st, 10, reason);
	rc = sq_update_one(s, st, brc, smtp, "append presence event", err);
	if (rc == 0 && out_id != NULL)
		*out_id = sqlite3_last_insert_rowid(s->db);
	return rc;
}

int sq_presence_put(struct store *base, const char *smtp, const struct store_presence *p,
                    struct err *err)
{
	return presence_put(sq_from(base), smtp, p, err);
}

int sq_presence_get(struct store *base, const char *smtp, struct store_presence *out_p,
                    struct err *err)
{
	struct store_sqlite *s = sq_from(base);
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = sq_stmt(s, Q_PRES_GET, &st, err);

	if (rc < 0)
		return rc;
	sq_bind_text(&brc, st, 1, smtp);
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc == SQLITE_ROW)
		row_to_presence(st, 0, out_p);
	else if (brc == SQLITE_DONE)
		rc = err_set(err, -ENOENT, "store: mailbox '%s' has no presence", smtp);
	else
		rc = sq_fail(s, brc, "get presence", err);
	sq_stmt_done(st);
	return rc;
}

int sq_append_presence_event(struct store *base, const char *smtp, const struct store_presence *p,
                             const char *reason, int64_t *out_id, struct err *err)
{
	return event_append(sq_from(base), smtp, p, reason, out_id, err);
}

int sq_presence_record(struct store *base, const char *smtp, const struct store_presence *p,
                       const char *reason, int64_t *out_id, struct err *err)
{
	struct store_sqlite *s = sq_from(base);
	int64_t id = 0;
	int rc = sq_begin(s, err);

	if (rc < 0)
		return rc;
	rc = presence_put(s, smtp, p, err);
	if (rc == 0)
		rc = event_append(s, smtp, p, reason, &id, err);
	if (rc == 0)
		rc = sq_commit(s, err);
	else
		sq_rollback(s);
	if (rc == 0 && out_id != NULL)
		*out_id = id;
	return rc;
}

int sq_presence_events_after(struct store *base, int64_t after_id, size_t limit,
                             struct store_presence_event **out_evs, size_t *out_n, struct err *err)
{
	struct store_sqlite *s = sq_from(base);
	struct store_presence_event *evs;
	size_t n = 0;
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc;

	rc = sq_stmt(s, Q_EV_AFTER, &st, err);
	if (rc < 0)
		return rc;
	evs = xcalloc(limit, sizeof(*evs));
	sq_bind_i64(&brc, st, 1, after_id);
	sq_bind_i64(&brc, st, 2, (int64_t)limit);
	/* The statement's LIMIT bounds the rows; n < limit guards the array all the same. */
	while (brc == SQLITE_OK && n < limit) {
		brc = sqlite3_step(st);
		if (brc != SQLITE_ROW)
			break;
		evs[n].id = sqlite3_column_int64(st, 0);
		evs[n].smtp = sq_col_str(st, 1, NULL);
		row_to_presence(st, 2, &evs[n].presence);
		evs[n].reason = sq_col_str(st, 10, NULL);
		n++;
		brc = SQLITE_OK;
	}
	if (brc != SQLITE_OK && brc != SQLITE_DONE)
		rc = sq_fail(s, brc, "read presence events", err);
	sq_stmt_done(st);
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

int sq_presence_events_last_id(struct store *base, int64_t *out_id, struct err *err)
{
	struct store_sqlite *s = sq_from(base);
	int64_t id = 0;
	int rc = sq_query_int(s, Q_EV_LAST_ID, &id, err);

	if (rc == 0)
		*out_id = id;
	return rc;
}
