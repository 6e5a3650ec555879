/* SPDX-License-Identifier: MIT */
/*
 * cs-limits.h: every hard limit on untrusted data, in one place, each with the reason for its
 * size (STYLE.md 5). Named cs-limits.h so that it never shadows the system <limits.h>.
 */
#pragma once

/* Largest EWS response body we read: a FindItem/CalendarView page of a busy mailbox is well under
 * this, and a page of this size still parses in tens of milliseconds. */
#define EWS_MAX_RESPONSE (32u << 20)

/* Largest single streaming notification envelope, for the daemon and `calsync check` alike: real
 * ones are a few kilobytes, and one holding a few hundred events stays far below this. */
#define EWS_MAX_ENVELOPE (4u << 20)

/* Unsent bytes per API client before we drop it, so a slow reader cannot make us buffer forever. */
#define API_MAX_QUEUED (1u << 20)

/* Longest xs:dateTime we parse. The longest form we accept is 35 bytes (9 fraction digits and a
 * numeric zone); anything much longer is not a timestamp, and the cap keeps error paths cheap. */
#define ISO8601_MAX_LEN 64u

/* Fraction-of-second digits we accept. .NET writes at most 7 (100 ns ticks); 9 is nanoseconds. */
#define ISO8601_MAX_FRACTION_DIGITS 9u

/* One log line, prefix included. Longer messages are cut, because a single write(2) per line keeps
 * lines from two threads whole, and journald caps a line anyway (LineMax=48K by default). */
#define LOG_MAX_LINE 4096u
