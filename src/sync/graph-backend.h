/* SPDX-License-Identifier: MIT */
/* graph-backend.h: the Microsoft Graph backend (graph-backend-int.h, docs/graph.md). */
#pragma once

#include "sync/backend.h"

/* The subscription id of a mailbox whose changes are followed by delta polling: its feed is
 * its delta rounds, nothing on the server. */
#define GRAPH_DELTA_FEED "graph-delta"

extern const struct sync_backend_ops sync_graph_backend;
