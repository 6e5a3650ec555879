/* SPDX-License-Identifier: MIT */
/*
 * fuzz-graph-event.c: libFuzzer target for graph_page_read() (both kinds) and
 * graph_delta_apply(): a page fails cleanly or reads, and a delta page read is applied onto an
 * empty window and then again onto the window it made (every upsert replaced in place).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/err.h"
#include "cal/occurrence.h"
#include "graph/graph-event.h"
#include "graph/graph-url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int rc, const struct graph_page *p, const struct err *err)
{
	if (rc == 0)
		return;
	/* The contract: a known error, a message, and a cleared page. */
	if ((rc != -EPROTO && rc != -EMSGSIZE && rc != -EPERM) || err->code != rc ||
	    err->msg[0] == '\0' || p->occ != NULL || p->removed != NULL || p->next_path != NULL ||
	    p->delta_path != NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cal_occurrence *win = NULL;
	size_t n = 0;
	struct graph_page p;
	struct err err = {0};
	int rc;

	/* Past the limit only the length check runs; larger inputs teach the fuzzer nothing. */
	if (size > GRAPH_MAX_RESPONSE)
		return 0;
	rc = graph_page_read((const char *)data, size, GRAPH_PAGE_VIEW, GRAPH_DEFAULT_BASE, &p,
	                     &err);
	check(rc, &p, &err);
	if (rc == 0 && p.n_removed != 0)
		abort();
	graph_page_clear(&p);
	err = (struct err){0};
	rc = graph_page_read((const char *)data, size, GRAPH_PAGE_DELTA, GRAPH_DEFAULT_BASE, &p,
	                     &err);
	check(rc, &p, &err);
	if (rc == 0) {
		/* Applied twice: the second replaces every upsert in place. */
		size_t ups = p.n_occ;

		if (graph_delta_apply(&win, &n, &p, GRAPH_MAX_OCCURRENCES, &err) != 0 || n != ups)
			abort();
		graph_page_clear(&p);
		rc = graph_page_read((const char *)data, size, GRAPH_PAGE_DELTA, GRAPH_DEFAULT_BASE,
		                     &p, &err);
		if (rc != 0 || graph_delta_apply(&win, &n, &p, GRAPH_MAX_OCCURRENCES, &err) != 0 ||
		    n != ups)
			abort();
	}
	graph_page_clear(&p);
	cal_occurrences_free(win, n);
	return 0;
}
