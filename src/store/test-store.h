/* SPDX-License-Identifier: MIT */
/*
 * test-store.h: what test-store.c (the store interface) and test-store-sqlite.c (the SQLite
 * implementation's own behaviour) share: a fresh SQLite location per test, opening a store
 * that must open, and building and comparing occurrences. Header-only, for tests.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "cal/occurrence.h"
#include "harness.h"
#include "store/store.h"

/* A location for one test: for SQLite a fresh directory (dir) and the database path in it
 * (path), removed with the database and its WAL files afterwards. path is what store_open
 * gets; another implementation fills it with its own location (a URL) and may leave dir empty. */
struct tmp {
	char dir[256];
	char path[300];
};

static inline void sqlite_tmp_make(struct tmp *t)
{
	const char *base = getenv("TMPDIR");

	(void)snprintf(t->dir, sizeof(t->dir), "%s/test-store-XXXXXX",
	               base != NULL && base[0] != '\0' ? base : "/tmp");
	if (mkdtemp(t->dir) == NULL) {
		perror("mkdtemp");
		abort();
	}
	(void)snprintf(t->path, sizeof(t->path), "%s/calsync.db", t->dir);
}

static inline void sqlite_tmp_remove(struct tmp *t)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	char p[320];

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		(void)snprintf(p, sizeof(p), "%s%s", t->path, suffixes[i]);
		(void)unlink(p);
	}
	(void)rmdir(t->dir);
}

static inline struct store *open_ok(const char *path)
{
	struct store *s = NULL;
	struct err e = {0};
	int rc = store_open(path, &s, &e);

	if (rc != 0) {
		fprintf(stderr, "store_open: %d %s\n", rc, e.msg);
		abort();
	}
	return s;
}

static inline struct cal_occurrence occ(const char *item_id, const char *change_key, int64_t start,
                                        int64_t end)
{
	return (struct cal_occurrence){
		.item_id = xstrdup(item_id),
		.change_key = change_key != NULL ? xstrdup(change_key) : NULL,
		.start_utc = start,
		.end_utc = end,
		.free_busy = CAL_FB_BUSY,
	};
}

static inline void set_str(char **field, const char *v)
{
	free(*field);
	*field = v != NULL ? xstrdup(v) : NULL;
}

static inline void add_category(struct cal_occurrence *o, const char *c)
{
	o->categories = xreallocarray(o->categories, o->n_categories + 1, sizeof(*o->categories));
	o->categories[o->n_categories++] = xstrdup(c);
}

static inline void occs_clear(struct cal_occurrence *o, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cal_occurrence_clear(&o[i]);
}

static inline bool occ_equal(const struct cal_occurrence *a, const struct cal_occurrence *b)
{
	if (!harness_streq(a->item_id, b->item_id) ||
	    !harness_streq(a->change_key, b->change_key) || !harness_streq(a->uid, b->uid) ||
	    !harness_streq(a->subject, b->subject) || !harness_streq(a->location, b->location) ||
	    !harness_streq(a->organizer, b->organizer))
		return false;
	if (a->n_categories != b->n_categories)
		return false;
	for (size_t i = 0; i < a->n_categories; i++)
		if (!harness_streq(a->categories[i], b->categories[i]))
			return false;
	return a->start_utc == b->start_utc && a->end_utc == b->end_utc &&
	       a->all_day == b->all_day && a->is_cancelled == b->is_cancelled &&
	       a->is_private == b->is_private && a->free_busy == b->free_busy && a->type == b->type;
}
