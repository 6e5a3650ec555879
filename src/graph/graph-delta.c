/* SPDX-License-Identifier: MIT */
/*
 * graph-delta.c: a delta page applied onto a window of occurrences (graph_delta_apply in
 * graph-event.h). The window's ids are sorted once per page and each of the page's ids is
 * found by binary search, so a page costs O((n + page) log n) and a round of pages never
 * compares every pair. Nothing is copied: the window's occurrences stay where they are and
 * the page's are moved in.
 */
#include "graph/graph-event.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "cal/occurrence.h"

/* An occurrence of the window by id, with its place. */
struct slot {
	const char *id;
	size_t index;
};

/* By id, then by place, so that the first of equal ids sorts first. */
static int cmp_slot(const void *a, const void *b)
{
	const struct slot *x = a;
	const struct slot *y = b;
	int c = strcmp(x->id, y->id);

	if (c != 0)
		return c;
	return (x->index > y->index) - (x->index < y->index);
}

/* The first slot of id in sorted[0..n), or n when there is none. */
static size_t find(const struct slot *sorted, size_t n, const char *id)
{
	size_t lo = 0;
	size_t hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(sorted[mid].id, id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && strcmp(sorted[lo].id, id) == 0 ? lo : n;
}

/* What happens to each occurrence of the window. */
enum fate {
	KEEP = 0,
	DROP,    /* removed, or a second copy of an id (the window's ids should be unique) */
	REPLACE, /* by page->occ[with[i]] */
};

/* Marks the window's occurrences that id's upsert or removal touches; returns the first one's
 * place, or n when the window does not hold id. */
static size_t mark(const struct slot *sorted, size_t n, const char *id, enum fate *fate,
                   enum fate first_fate)
{
	size_t k = find(sorted, n, id);

	if (k == n)
		return n;
	fate[sorted[k].index] = first_fate;
	for (size_t j = k + 1; j < n && strcmp(sorted[j].id, id) == 0; j++)
		fate[sorted[j].index] = DROP;
	return sorted[k].index;
}

int graph_delta_apply(struct cal_occurrence **occs, size_t *n, struct graph_page *page, size_t max,
                      struct err *err)
{
	struct cal_occurrence *old = *occs;
	size_t n_old = *n;
	struct slot *sorted = xcalloc(n_old, sizeof(*sorted));
	enum fate *fate = xcalloc(n_old, sizeof(*fate));
	size_t *with = xcalloc(n_old, sizeof(*with));
	bool *is_new = xcalloc(page->n_occ, sizeof(*is_new));
	struct cal_occurrence *win;
	size_t n_win = 0, j = 0;

	for (size_t i = 0; i < n_old; i++)
		sorted[i] = (struct slot){.id = old[i].item_id != NULL ? old[i].item_id : "",
		                          .index = i};
	qsort(sorted, n_old, sizeof(*sorted), cmp_slot);
	for (size_t r = 0; r < page->n_removed; r++)
		(void)mark(sorted, n_old, page->removed[r], fate, DROP);
	for (size_t u = 0; u < page->n_occ; u++) {
		size_t at = mark(sorted, n_old, page->occ[u].item_id, fate, REPLACE);

		is_new[u] = at == n_old;
		if (!is_new[u])
			with[at] = u;
	}
	for (size_t i = 0; i < n_old; i++)
		n_win += fate[i] != DROP;
	for (size_t u = 0; u < page->n_occ; u++)
		n_win += is_new[u];
	if (n_win > max) {
		free(sorted);
		free(fate);
		free(with);
		free(is_new);
		return err_set(err, -EMSGSIZE,
		               "Graph delta: the window would hold %zu events, limit %zu", n_win,
		               max);
	}
	win = n_win > 0 ? xcalloc(n_win, sizeof(*win)) : NULL;
	for (size_t i = 0; i < n_old; i++) {
		if (fate[i] == KEEP) {
			win[j++] = old[i];
			continue;
		}
		cal_occurrence_clear(&old[i]);
		if (fate[i] == REPLACE)
			win[j++] = page->occ[with[i]];
	}
	for (size_t u = 0; u < page->n_occ; u++) {
		if (is_new[u])
			win[j++] = page->occ[u];
	}
	/* The page's occurrences now belong to the window; its removals are spent. */
	free(page->occ);
	page->occ = NULL;
	page->n_occ = 0;
	for (size_t r = 0; r < page->n_removed; r++)
		free(page->removed[r]);
	free(page->removed);
	page->removed = NULL;
	page->n_removed = 0;
	free(old);
	free(sorted);
	free(fate);
	free(with);
	free(is_new);
	*occs = win;
	*n = n_win;
	return 0;
}
