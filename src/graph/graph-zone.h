/* SPDX-License-Identifier: MIT */
/*
 * graph-zone.h: wall-clock times in a named time zone, for Graph's all-day events. Graph writes
 * an all-day event as midnight to midnight labelled "UTC" whatever the Prefer header asks (by
 * design: all-day events float), and names the zone it was made in in originalStartTimeZone, a
 * Windows name ("W. Europe Standard Time") or an IANA one ("Europe/Berlin"). EWS gives the same
 * event as the UTC instants of those local midnights; so does calsync for both backends. ICU
 * (a Debian library) maps Windows names to IANA zones (CLDR's table) and does the conversion.
 */
#pragma once

#include <stdint.h>

#include "base/compat.h"

/* The UTC instant (seconds) of the wall time wall (seconds since 1970 as if it were UTC, e.g.
 * 2026-12-21T00:00:00) in zone. 0 and *out; -ENOENT when zone is neither a Windows zone name
 * ICU knows nor an IANA zone id; -EINVAL when wall is out of ICU's range. */
ATTR_NODISCARD int graph_zone_wall_to_utc(const char *zone, int64_t wall, int64_t *out);
