/* SPDX-License-Identifier: MIT */
/*
 * fuzz-graph-notify.c: libFuzzer target for what Graph POSTs to calsync:
 * graph_notifications_read() on the body, and graph_sub_validation_token() on the same bytes
 * taken as a query string. Each fails cleanly or reads.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "graph/graph-sub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct graph_notifications ns;
	struct err err = {0};
	char *token = NULL;
	int rc;

	if (size > GRAPH_MAX_NOTIFICATION)
		return 0;
	rc = graph_notifications_read((const char *)data, size, &ns, &err);
	if (rc != 0) {
		if ((rc != -EPROTO && rc != -EMSGSIZE) || err.code != rc || err.msg[0] == '\0' ||
		    ns.v != NULL || ns.n != 0)
			abort();
	} else {
		for (size_t i = 0; i < ns.n; i++) {
			if (ns.v[i].subscription_id == NULL ||
			    !graph_sub_client_state_equal(ns.v[i].subscription_id,
			                                  ns.v[i].subscription_id,
			                                  strlen(ns.v[i].subscription_id)))
				abort();
		}
		graph_notifications_clear(&ns);
	}
	rc = graph_sub_validation_token((const char *)data, size, &token, &err);
	if (rc == 0) {
		size_t n = strlen(token);

		if (n == 0 || n > GRAPH_MAX_VALIDATION_TOKEN)
			abort();
		free(token);
	} else if (rc != -ENOENT && rc != -EINVAL) {
		abort();
	}
	return 0;
}
