/* SPDX-License-Identifier: MIT */
/*
 * store-sqlite-occurrence.c: the SQLite store's occurrences: replacing a mailbox's window as a
 * merge of the stored rows with the new ones (writing only what changed, reporting the diff),
 * and loading them back. Categories are one column, each followed by STORE_CATEGORY_SEP.
 */
#include "store/store-sqlite-int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "cal/occurrence.h"

/* Categories as one string, each one followed by STORE_CATEGORY_SEP; NULL when there are none. */
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
		p[off++] = STORE_CATEGORY_SEP;
	}
	p[off] = '\0';
	return p;
}

static void categories_split(const char *p, size_t len, struct cal_occurrence *o)
{
	size_t n = 0;
	size_t start = 0;

	for (size_t i = 0; i < len; i++)
		n += p[i] == STORE_CATEGORY_SEP;
	if (n == 0)
		return;
	o->categories = xcalloc(n, sizeof(*o->categories));
	for (size_t i = 0; i < len; i++) {
		if (p[i] != STORE_CATEGORY_SEP)
			continue;
		o->categories[o->n_categories++] = xmemdup(p + start, i - start);
		start = i + 1;
	}
}

static int row_to_occurrence(sqlite3_stmt *st, struct cal_occurrence *o, struct err *err)
{
	int fb = sq_name_index(cal_fb_names, N_ELEMS(cal_fb_names), sqlite3_column_text(st, 12));
	int type = sq_name_index(cal_item_type_names, N_ELEMS(cal_item_type_names),
	                         sqlite3_column_text(st, 13));
	const char *cats = (const char *)sqlite3_column_text(st, 6);

	if (fb < 0 || type < 0)
		return err_set(err, -EBADMSG, "store: occurrence with unknown free/busy or type");
	*o = (struct cal_occurrence){
		.item_id = sq_col_str(st, 0, NULL),
		.change_key = sq_col_str(st, 1, NULL),
		.uid = sq_col_str(st, 2, NULL),
		.subject = sq_col_str(st, 3, NULL),
		.location = sq_col_str(st, 4, NULL),
		.organizer = sq_col_str(st, 5, NULL),
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
static int read_occurrences(struct store_sqlite *s, enum q q, int64_t id,
                            struct cal_occurrence **out, size_t *out_n, struct err *err)
{
	struct cal_occurrence *occs = NULL;
	size_t n = 0;
	size_t cap = 0;
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = sq_stmt(s, q, &st, err);

	if (rc < 0)
		return rc;
	sq_bind_i64(&brc, st, 1, id);
	if (brc != SQLITE_OK) {
		rc = sq_fail(s, brc, "read occurrences", err);
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
		rc = sq_fail(s, brc, "read occurrences", err);
out:
	sq_stmt_done(st);
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

static int mailbox_id(struct store_sqlite *s, const char *smtp, int64_t *out_id, struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = sq_stmt(s, Q_MB_ID, &st, err);

	if (rc < 0)
		return rc;
	sq_bind_text(&brc, st, 1, smtp);
	if (brc == SQLITE_OK)
		brc = sqlite3_step(st);
	if (brc == SQLITE_ROW)
		*out_id = sqlite3_column_int64(st, 0);
	else if (brc == SQLITE_DONE)
		rc = err_set(err, -ENOENT, "store: no mailbox '%s'", smtp);
	else
		rc = sq_fail(s, brc, "mailbox id", err);
	sq_stmt_done(st);
	return rc;
}

static int occ_put(struct store_sqlite *s, int64_t id, const struct cal_occurrence *o,
                   struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	char *cats = categories_join(o);
	int rc = sq_stmt(s, Q_OCC_PUT, &st, err);

	if (rc < 0)
		goto out;
	sq_bind_i64(&brc, st, 1, id);
	sq_bind_text(&brc, st, 2, o->item_id);
	sq_bind_text(&brc, st, 3, o->change_key);
	sq_bind_text(&brc, st, 4, o->uid);
	sq_bind_text(&brc, st, 5, o->subject);
	sq_bind_text(&brc, st, 6, o->location);
	sq_bind_text(&brc, st, 7, o->organizer);
	sq_bind_text(&brc, st, 8, cats);
	sq_bind_i64(&brc, st, 9, o->start_utc);
	sq_bind_i64(&brc, st, 10, o->end_utc);
	sq_bind_i64(&brc, st, 11, o->all_day);
	sq_bind_i64(&brc, st, 12, o->is_cancelled);
	sq_bind_i64(&brc, st, 13, o->is_private);
	sq_bind_text(&brc, st, 14, cal_fb_names[o->free_busy]);
	sq_bind_text(&brc, st, 15, cal_item_type_names[o->type]);
	if (brc == SQLITE_OK)
		rc = sq_step_write(s, st, "write occurrence", err);
	else
		rc = sq_fail(s, brc, "write occurrence", err);
	sq_stmt_done(st);
out:
	free(cats);
	return rc;
}

static int occ_delete(struct store_sqlite *s, int64_t id, const char *item_id, struct err *err)
{
	sqlite3_stmt *st = NULL;
	int brc = SQLITE_OK;
	int rc = sq_stmt(s, Q_OCC_DELETE, &st, err);

	if (rc < 0)
		return rc;
	sq_bind_i64(&brc, st, 1, id);
	sq_bind_text(&brc, st, 2, item_id);
	if (brc == SQLITE_OK)
		rc = sq_step_write(s, st, "delete occurrence", err);
	else
		rc = sq_fail(s, brc, "delete occurrence", err);
	sq_stmt_done(st);
	return rc;
}

/* The merge of the stored rows (sorted by item_id) with the new ones (sorted the same way). */
static int replace_rows(struct store_sqlite *s, int64_t id, const struct cal_occurrence *old,
                        size_t n_old, const struct cal_occurrence *const *nw, size_t n_new,
                        struct store_diff *d, struct err *err)
{
	size_t i = 0;
	size_t j = 0;
	size_t cap = 0;
	int rc = 0;

	while (rc == 0 && (i < n_old || j < n_new)) {
		int c = i == n_old ? 1 : j == n_new ? -1 : strcmp(old[i].item_id, nw[j]->item_id);

		if (c < 0) {
			rc = occ_delete(s, id, old[i].item_id, err);
			store_diff_add(d, &cap, STORE_REMOVED, &old[i], 0);
			i++;
		} else if (c > 0) {
			rc = occ_put(s, id, nw[j], err);
			store_diff_add(d, &cap, STORE_ADDED, nw[j], 0);
			j++;
		} else {
			unsigned f = store_occurrence_fields_differ(&old[i], nw[j]);

			if (f != 0) {
				rc = occ_put(s, id, nw[j], err);
				store_diff_add(d, &cap, STORE_CHANGED, nw[j], f);
			} else {
				d->n_unchanged++;
			}
			i++;
			j++;
		}
	}
	return rc;
}

int sq_replace_occurrences(struct store *base, const char *smtp, int64_t window_start_utc,
                           int64_t window_end_utc, const struct cal_occurrence *const *sorted,
                           size_t n, struct store_diff *d, struct err *err)
{
	struct store_sqlite *s = sq_from(base);
	struct cal_occurrence *old = NULL;
	size_t n_old = 0;
	sqlite3_stmt *st = NULL;
	int64_t id = 0;
	int brc = SQLITE_OK;
	int rc = sq_begin(s, err);

	if (rc < 0)
		return rc;
	rc = mailbox_id(s, smtp, &id, err);
	if (rc == 0)
		rc = read_occurrences(s, Q_OCC_BY_ID, id, &old, &n_old, err);
	if (rc == 0)
		rc = replace_rows(s, id, old, n_old, sorted, n, d, err);
	if (rc == 0)
		rc = sq_stmt(s, Q_MB_SET_WINDOW, &st, err);
	if (rc == 0) {
		sq_bind_i64(&brc, st, 1, id);
		sq_bind_i64(&brc, st, 2, window_start_utc);
		sq_bind_i64(&brc, st, 3, window_end_utc);
		if (brc == SQLITE_OK)
			rc = sq_step_write(s, st, "set window", err);
		else
			rc = sq_fail(s, brc, "set window", err);
		sq_stmt_done(st);
	}
	if (rc == 0)
		rc = sq_commit(s, err);
	else
		sq_rollback(s);
	cal_occurrences_free(old, n_old);
	return rc;
}

int sq_load_occurrences(struct store *base, const char *smtp, struct cal_occurrence **out_occs,
                        size_t *out_n, struct err *err)
{
	struct store_sqlite *s = sq_from(base);
	int64_t id = 0;
	/* One read transaction (deferred: it takes no write lock), so the id and the rows come from
	 * the same snapshot. */
	int rc = sq_begin_as(s, Q_BEGIN_READ, err);

	if (rc < 0)
		return rc;
	rc = mailbox_id(s, smtp, &id, err);
	if (rc == 0)
		rc = read_occurrences(s, Q_OCC_BY_START, id, out_occs, out_n, err);
	sq_rollback(s);
	return rc;
}
