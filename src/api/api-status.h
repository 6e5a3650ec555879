/* SPDX-License-Identifier: MIT */
/*
 * api-status.h: the document of GET /v1/status (docs/api.md), which `calsync status` prints:
 * mailbox counts and the parked ones from the store, streaming groups, the last errors and the
 * loop's activity from the engine, and the webhook targets' counters. Pure.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct json_t;
struct store_mailbox;
struct sync_status;
struct webhook_stats;

/* Parked mailboxes listed at most; mailboxes.parked counts them all. */
#define API_STATUS_MAX_PARKED 1000u

struct api_status_in {
	const struct store_mailbox *mbs; /* the enabled mailboxes, any order */
	size_t n_mbs;
	const struct sync_status *engine;
	const struct webhook_stats *webhooks; /* NULL: no webhooks */
	bool graph;                           /* <graph> is configured (cfg->graph != NULL) */
};

/*
 * {"mailboxes": {"total", "live", "syncing", "parked", "unresolved"}, "parked": [{"smtp",
 * "backend", "reason"}] (by address, ignoring case), "groups": [{"key", "anchor", "members",
 * "subscribed", "connected", "failures"}], "errors": [{"time", "mailbox" (null for none), "what",
 * "message"}] (newest first), "streams_open", "in_flight", "queued", "backing_off",
 * "presence_changes", "webhooks": [{"url", "delivered", "failures", "dropped", "pending"}]}, then
 * in a hybrid calsync (in->graph, or a mailbox held by Graph) "backends": {"ews": {the keys of
 * "mailboxes"}, "graph": {...}}, and with in->graph "graph": {"requests", "throttled",
 * "notifications": {"accepted", "rejected"}, "token_refreshes": {"ok", "failed"}} from the
 * engine's stats. Text that is not UTF-8 has its bad bytes replaced by '?'. A new reference, or
 * NULL when out of memory.
 */
struct json_t *api_status_json(const struct api_status_in *in);
