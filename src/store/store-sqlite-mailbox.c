/* SPDX-License-Identifier: MIT */
/*
 * store-sqlite-mailbox.c: the SQLite store's mailboxes (add, disable, list, get, the state and
 * endpoint updates) and their subscriptions with the byte-exact pull watermark.
 */
#include "store/store-sqlite-int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/xalloc.h"

/* ---- mailboxes ---- */

static int row_to_mailbox(sqlite3_stmt *st, struct store_mailbox *mb, struct err *err)
{
	int state = sq_name_index(store_mb_state_names, N_ELEMS(store_mb_state_names),
	                          sqlite3_column_text(st, 1));

	if (state < 0)
		return err_set(err, -EBADMSG, "store: mailbox with an unknown state");
	*mb = (struct store_mailbox){
		.smtp = sq_col_str(st, 0, NULL),
		.state = (enum store_mb_state)state,
		.parked_reason = sq_col_str(st, 2, NULL),
		.ews_url = sq_col_str(st, 3, NULL),
		.grouping = sq_col_str(st, 4, NULL),
		.last_refresh_utc = sqlite3_column_int64(st, 5),
		.window_start_utc = sqlite3_column_int64(st, 6),
		.window_end_utc = sqlite3_column_int64(st, 7),
		.enabled = sqlite3_column_int(st, 8) != 0,
		.by_api = sqlite3_column_int(st, 9) != 0,
		.backend = sq_col_str(st, 10, NULL),
	};
	return 0;
}

int sq_mailbox_add(struct store *base, const char *smtp, const char *ews_url, const char *grouping,
                   struct err *err)
{
	struct store_sqlite *s = sq_from(base);
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = sq_stmt(s, Q_MB_ADD, &st, err);

	if (rc < 0)
		return rc;
	sq_bind_text(&brc, st, 1, smtp);
	sq_bind_text(&brc, st, 2, ews_url);
	sq_bind_text(&brc, st, 3, grouping);
	return sq_update_one(s, st, brc, smtp, "add mailbox", err);
}

/* Runs q, an UPDATE of the mailbox smtp (?1), with v as ?2 when bind is given (sq_bind_i64 or
 * sq_bind_time). 0, or -ENOENT when no mailbox matched. */
static int update_mailbox(struct store_sqlite *s, enum q q, const char *smtp,
                          void (*bind)(int *, sqlite3_stmt *, int, int64_t), int64_t v,
                          const char *what, struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = sq_stmt(s, q, &st, err);

	if (rc < 0)
		return rc;
	sq_bind_text(&brc, st, 1, smtp);
	if (bind != NULL)
		bind(&brc, st, 2, v);
	return sq_update_one(s, st, brc, smtp, what, err);
}

int sq_mailbox_remove(struct store *base, const char *smtp, struct err *err)
{
	return update_mailbox(sq_from(base), Q_MB_DISABLE, smtp, NULL, 0, "remove mailbox", err);
}

int sq_mailbox_list(struct store *base, enum store_mb_filter filter, struct store_mailbox **out_mbs,
                    size_t *out_n, struct err *err)
{
	struct store_sqlite *s = sq_from(base);
	struct store_mailbox *mbs = NULL;
	size_t n = 0;
	size_t cap = 0;
	sqlite3_stmt *st = NULL;
	int rc = sq_stmt(s, filter == STORE_MB_ENABLED ? Q_MB_LIST_ENABLED : Q_MB_LIST_ALL, &st,
	                 err);

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
			rc = sq_fail(s, rc, "list mailboxes", err);
		sq_stmt_done(st);
		store_mailboxes_free(mbs, n);
		return rc;
	}
	sq_stmt_done(st);
	if (n == 0) {
		free(mbs);
		mbs = NULL;
	}
	*out_mbs = mbs;
	*out_n = n;
	return 0;
}

int sq_mailbox_get(struct store *base, const char *smtp, struct store_mailbox *out_mb,
                   struct err *err)
{
	struct store_sqlite *s = sq_from(base);
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = sq_stmt(s, Q_MB_GET, &st, err);

	if (rc < 0)
		return rc;
	sq_bind_text(&brc, st, 1, smtp);
	if (brc != SQLITE_OK) {
		rc = sq_fail(s, brc, "get mailbox", err);
		goto out;
	}
	brc = sqlite3_step(st);
	if (brc == SQLITE_ROW)
		rc = row_to_mailbox(st, out_mb, err);
	else if (brc == SQLITE_DONE)
		rc = err_set(err, -ENOENT, "store: no mailbox '%s'", smtp);
	else
		rc = sq_fail(s, brc, "get mailbox", err);
out:
	sq_stmt_done(st);
	return rc;
}

int sq_mailbox_set_state(struct store *base, const char *smtp, enum store_mb_state state,
                         const char *reason, struct err *err)
{
	struct store_sqlite *s = sq_from(base);
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = sq_stmt(s, Q_MB_SET_STATE, &st, err);

	if (rc < 0)
		return rc;
	sq_bind_text(&brc, st, 1, smtp);
	sq_bind_text(&brc, st, 2, store_mb_state_names[state]);
	sq_bind_text(&brc, st, 3, reason);
	return sq_update_one(s, st, brc, smtp, "set mailbox state", err);
}

int sq_mailbox_set_endpoint(struct store *base, const char *smtp, const char *backend,
                            const char *ews_url, const char *grouping, struct err *err)
{
	struct store_sqlite *s = sq_from(base);
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = sq_stmt(s, Q_MB_SET_ENDPOINT, &st, err);

	if (rc < 0)
		return rc;
	sq_bind_text(&brc, st, 1, smtp);
	sq_bind_text(&brc, st, 2, ews_url);
	sq_bind_text(&brc, st, 3, grouping);
	sq_bind_text(&brc, st, 4, backend);
	return sq_update_one(s, st, brc, smtp, "set mailbox endpoint", err);
}

int sq_mailbox_set_refreshed(struct store *base, const char *smtp, int64_t refresh_utc,
                             struct err *err)
{
	return update_mailbox(sq_from(base), Q_MB_SET_REFRESHED, smtp, sq_bind_time, refresh_utc,
	                      "set mailbox refreshed", err);
}

int sq_mailbox_set_by_api(struct store *base, const char *smtp, bool by_api, struct err *err)
{
	return update_mailbox(sq_from(base), Q_MB_SET_BY_API, smtp, sq_bind_i64, by_api ? 1 : 0,
	                      "set mailbox by_api", err);
}

/* ---- subscriptions ---- */

int sq_subscription_put(struct store *base, const char *smtp, const struct store_subscription *sub,
                        struct err *err)
{
	struct store_sqlite *s = sq_from(base);
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = sq_stmt(s, Q_SUB_PUT, &st, err);

	if (rc < 0)
		return rc;
	sq_bind_text(&brc, st, 1, smtp);
	sq_bind_text(&brc, st, 2, store_sub_kind_names[sub->kind]);
	sq_bind_text(&brc, st, 3, sub->id);
	sq_bind_blob(&brc, st, 4, sub->watermark, sub->watermark_len);
	sq_bind_i64(&brc, st, 5, sub->created_utc);
	return sq_update_one(s, st, brc, smtp, "put subscription", err);
}

int sq_subscription_get(struct store *base, const char *smtp, struct store_subscription *out_sub,
                        struct err *err)
{
	struct store_sqlite *s = sq_from(base);
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int kind;
	int rc = sq_stmt(s, Q_SUB_GET, &st, err);

	if (rc < 0)
		return rc;
	sq_bind_text(&brc, st, 1, smtp);
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc == SQLITE_DONE) {
		rc = err_set(err, -ENOENT, "store: mailbox '%s' has no subscription", smtp);
	} else if (brc != SQLITE_ROW) {
		rc = sq_fail(s, brc, "get subscription", err);
	} else {
		kind = sq_name_index(store_sub_kind_names, N_ELEMS(store_sub_kind_names),
		                     sqlite3_column_text(st, 0));
		if (kind < 0) {
			rc = err_set(err, -EBADMSG, "store: subscription of an unknown kind");
		} else {
			*out_sub = (struct store_subscription){
				.kind = (enum store_sub_kind)kind,
				.id = sq_col_str(st, 1, NULL),
				.created_utc = sqlite3_column_int64(st, 3),
			};
			out_sub->watermark = sq_col_str(st, 2, &out_sub->watermark_len);
		}
	}
	sq_stmt_done(st);
	return rc;
}

int sq_subscription_delete(struct store *base, const char *smtp, struct err *err)
{
	struct store_sqlite *s = sq_from(base);
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = sq_stmt(s, Q_SUB_DELETE, &st, err);

	if (rc < 0)
		return rc;
	sq_bind_text(&brc, st, 1, smtp);
	if (brc == SQLITE_OK)
		rc = sq_step_write(s, st, "delete subscription", err);
	else
		rc = sq_fail(s, brc, "delete subscription", err);
	sq_stmt_done(st);
	return rc;
}

int sq_subscription_count(struct store *base, size_t *out_streaming, size_t *out_pull,
                          struct err *err)
{
	struct store_sqlite *s = sq_from(base);
	sqlite3_stmt *st = NULL;
	size_t streaming = 0, pull = 0;
	int rc = sq_stmt(s, Q_SUB_COUNT, &st, err);

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
	rc = rc == SQLITE_DONE ? 0 : sq_fail(s, rc, "count subscriptions", err);
	sq_stmt_done(st);
	if (rc == 0) {
		*out_streaming = streaming;
		*out_pull = pull;
	}
	return rc;
}

int sq_subscription_set_watermark(struct store *base, const char *smtp, const char *watermark,
                                  size_t len, struct err *err)
{
	struct store_sqlite *s = sq_from(base);
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = sq_stmt(s, Q_SUB_WATERMARK, &st, err);

	if (rc < 0)
		return rc;
	sq_bind_text(&brc, st, 1, smtp);
	sq_bind_blob(&brc, st, 2, watermark, len);
	rc = sq_update_one(s, st, brc, smtp, "set watermark", err);
	if (rc == -ENOENT)
		rc = err_set(err, -ENOENT, "store: mailbox '%s' has no pull subscription", smtp);
	return rc;
}
