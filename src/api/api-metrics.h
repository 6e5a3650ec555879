/* SPDX-License-Identifier: MIT */
/*
 * api-metrics.h: GET /metrics in the Prometheus text format (version 0.0.4) from the engine's
 * stats and a few counts of the API's own. Pure; docs/api.md lists every metric.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "base/compat.h"

struct api_backend_counts;
struct buf;
struct err;
struct sync_stats;
struct webhook_stats;

/* Largest /metrics page: about 40 series per operation, far below this. */
#define API_MAX_METRICS (256u << 10)
/* A webhook URL as a label or in /v1/status: longer ones are cut (at a UTF-8 boundary). */
#define API_MAX_URL_LABEL 256u

struct api_metrics_in {
	const struct sync_stats *stats; /* the engine's last published stats */
	size_t subs_streaming;          /* subscriptions in the store, by kind */
	size_t subs_pull;
	size_t sse_clients;                   /* open /v1/events streams */
	const struct webhook_stats *webhooks; /* NULL or none: no webhook metrics */
	/* The enabled mailboxes in the store by backend and state; NULL: no
	 * calsync_mailboxes_by_backend. */
	const struct api_backend_counts *backends;
	bool graph; /* <graph> is configured: the Graph and token metrics */
};

/* Appends the whole page to out. 0, or -EMSGSIZE when out's maximum is too small. */
ATTR_NODISCARD int api_metrics_format(const struct api_metrics_in *in, struct buf *out,
                                      struct err *err);
