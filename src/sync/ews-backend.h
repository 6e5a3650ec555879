/* SPDX-License-Identifier: MIT */
/*
 * ews-backend.h: the EWS backend (backend.h) over Exchange Web Services: Autodiscover
 * (discover.c), Subscribe, FindItem CalendarView pages and Unsubscribe (ews-backend.c), streaming
 * groups (ews-stream-groups.c) and GetEvents polling (ews-pull.c). docs/sync.md describes it.
 */
#pragma once

#include "sync/backend.h"

extern const struct sync_backend_ops sync_ews_backend;
