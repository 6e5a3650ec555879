/* SPDX-License-Identifier: MIT */
/*
 * fuzz-graph-batch.c: libFuzzer target for graph_batch_read() against a fixed set of request
 * ids, and graph_error_classify() on every response it finds: the answer fails cleanly or
 * reads, and every request gets either a response or its error.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/err.h"
#include "graph/graph-batch.h"
#include "graph/graph-error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ids[] = {"1", "2", "3", "sub-4", "A"};
	struct graph_batch_answer a;
	struct err err = {0};
	int rc;

	if (size > GRAPH_BATCH_MAX_RESPONSE)
		return 0;
	rc = graph_batch_read((const char *)data, size, ids, 5, &a, &err);
	if (rc != 0) {
		if ((rc != -EPROTO && rc != -EMSGSIZE) || err.code != rc || err.msg[0] == '\0' ||
		    a.resp != NULL || a.n != 0)
			abort();
		return 0;
	}
	if (a.n != 5)
		abort();
	for (size_t i = 0; i < a.n; i++) {
		struct graph_answer in = {
			.req = GRAPH_REQ_DELTA,
			.status = a.resp[i].status,
			.retry_after_ms = a.resp[i].retry_after_ms,
			.body = a.resp[i].body,
			.body_len = a.resp[i].body_len,
		};
		struct graph_verdict v;

		if (a.resp[i].found == (a.resp[i].error != NULL))
			abort();
		graph_error_classify(&in, &v);
		if ((unsigned)v.cls >= GRAPH_CLASS_COUNT || v.reason == NULL || v.msg[0] == '\0')
			abort();
	}
	graph_batch_answer_clear(&a);
	return 0;
}
