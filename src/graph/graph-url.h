/* SPDX-License-Identifier: MIT */
/*
 * graph-url.h: the URLs calsync sends to Microsoft Graph, the Prefer header that goes with its
 * reads, and the links Graph answers with. Pure: strings in, owned strings out, no I/O; all
 * percent-encoding is libcurl's (curl_easy_escape), all URL parsing libcurl's CURLU parser.
 *
 * Paths. A builder returns a path relative to the version root (the base URL, by default
 * GRAPH_DEFAULT_BASE), such as "/users/alice@contoso.com/calendarView?startDateTime=...".
 * graph_url_join() makes it the absolute URL of a request; a $batch request takes the path as
 * its url as it is (graph-batch.h: relative to the version root).
 *
 * Links. @odata.nextLink and @odata.deltaLink are absolute URLs whose tokens are opaque.
 * graph_url_link() accepts one only when it stays at the base URL's scheme, host and port and
 * under its path, because the request that follows it carries the bearer token: an answer must
 * not be able to send that token elsewhere. It returns the link as a path, so that a stored
 * delta link is the same kind of string as a built request.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"

struct err;

/* Microsoft Graph v1.0 in the global cloud; national clouds and the simulator override it. */
#define GRAPH_DEFAULT_BASE "https://graph.microsoft.com/v1.0"

/* The longest URL or path built or accepted. Delta links carry a state token of a few hundred
 * bytes; the cap equals STORE_MAX_WATERMARK (store/store.h), so that a delta link the backend
 * keeps as the feed's cursor always fits the store. */
#define GRAPH_MAX_URL 4096u
/* The longest user id or userPrincipalName taken (a UPN is an address: at most 320 bytes). */
#define GRAPH_MAX_USER 1024u
/* The most events asked for per page: calendarView's $top takes 1 to 1000 (Graph's docs). */
#define GRAPH_MAX_PAGE 1000u
/* Bytes graph_url_prefer() may write, NUL included. */
#define GRAPH_PREFER_SIZE 64u

/*
 * The event properties a calendarView read asks for: only what becomes a struct
 * cal_occurrence (presence and agendas). test-graph-csdl.c checks each against
 * microsoft.graph.event in the CSDL, and that the event reader (graph-event.h) looks up no
 * top-level property outside this list.
 */
#define GRAPH_EVENT_SELECT                                                               \
	"id,changeKey,iCalUId,subject,location,organizer,categories,start,end,isAllDay," \
	"isCancelled,sensitivity,showAs,type,originalStartTimeZone"
/* What the user lookup asks for (microsoft.graph.user). */
#define GRAPH_USER_SELECT "id,mail,userPrincipalName"

/*
 * The base URL normalised into an owned *out: base NULL or "" means GRAPH_DEFAULT_BASE;
 * otherwise an absolute http or https URL with a host and no user info, query or fragment.
 * Trailing slashes are dropped ("https://graph.microsoft.com/v1.0/" becomes
 * "https://graph.microsoft.com/v1.0"). 0, or -EINVAL with err naming what is wrong.
 */
ATTR_NODISCARD int graph_url_base(const char *base, char **out, struct err *err);

/*
 * The path of a user (id or userPrincipalName) as Graph addresses it: "/users/{user}", the user
 * percent-encoded as one path segment. A userPrincipalName that starts with '$' cannot stand
 * there (Graph would read a system segment), so it is written in key form as Graph's docs ask:
 * "/users('{user}')", a quote inside doubled, then encoded. -EINVAL for an empty user, one over
 * GRAPH_MAX_USER bytes or one with a control byte.
 */
ATTR_NODISCARD int graph_url_user_path(const char *user, char **out, struct err *err);

/* The user lookup: "/users/{user}?$select=" GRAPH_USER_SELECT. Errors as graph_url_user_path. */
ATTR_NODISCARD int graph_url_user(const char *user, char **out_path, struct err *err);

/*
 * The window [start_utc, end_utc) of the user's default calendar, expanded into single
 * instances, occurrences and exceptions:
 * "/users/{user}/calendarView?startDateTime=...&endDateTime=...&$select=...&$top=N", the instants
 * as "2026-12-07T00:00:00Z" and $select GRAPH_EVENT_SELECT. top is 1..GRAPH_MAX_PAGE.
 * -EINVAL (err says why) for a bad user, top, or window (start must be before end, both within
 * the years 1 to 9999).
 */
ATTR_NODISCARD int graph_url_calendar_view(const char *user, int64_t start_utc, int64_t end_utc,
                                           unsigned top, char **out_path, struct err *err);

/*
 * The first request of a delta round over the same window:
 * "/users/{user}/calendarView/delta?startDateTime=...&endDateTime=...". Nothing else: Graph v1.0
 * takes no $select on calendarView delta (it returns what calendarView returns) and sizes its
 * pages by the Prefer header's odata.maxpagesize (graph_url_prefer), not by $top. Every later
 * request of the round, and the next round, follows the answer's link (graph_url_link), which
 * encodes the window. Errors as graph_url_calendar_view.
 */
ATTR_NODISCARD int graph_url_calendar_delta(const char *user, int64_t start_utc, int64_t end_utc,
                                            char **out_path, struct err *err);

/* "/subscriptions" (sub_id NULL) or "/subscriptions/{sub_id}", the id percent-encoded: create,
 * and renew (PATCH) or delete. -EINVAL for an empty or over-long id or a control byte. */
ATTR_NODISCARD int graph_url_subscription(const char *sub_id, char **out_path, struct err *err);

/* The resource a subscription to the user's events names: "users/{user}/events" (no leading
 * slash, as Graph's docs write it). Errors as graph_url_user_path. */
ATTR_NODISCARD int graph_url_events_resource(const char *user, char **out, struct err *err);

/* The $batch endpoint's path (POST it with graph_batch_build()'s body). */
#define GRAPH_BATCH_PATH "/$batch"

/* base (as graph_url_base returned it) and path (starting with '/') as one owned URL. */
char *graph_url_join(const char *base, const char *path);

/*
 * Checks an @odata.nextLink or @odata.deltaLink from an answer against base (as graph_url_base
 * returned it) and returns it as an owned path (*out_path starts with '/'; join it again with
 * graph_url_join or put it in a $batch request). The link must be an absolute URL that libcurl
 * parses, at most GRAPH_MAX_URL bytes, with base's scheme, host (case-insensitively) and port
 * (the scheme's default when absent), no user info, and a path (dot segments resolved, none
 * written encoded such as "%2e%2e") at or under base's path. Its query is kept byte for byte; a
 * fragment is dropped. -EPERM when it leaves base (err names where it points), -EINVAL when it
 * is no URL we take.
 */
ATTR_NODISCARD int graph_url_link(const char *base, const char *link, char **out_path,
                                  struct err *err);

/*
 * The value of the Prefer header every event read sends (one header, preferences separated by
 * ", " as RFC 7240 allows): outlook.timezone="UTC", so that start and end come as UTC (the event
 * reader refuses any other zone), and with max_page > 0 also odata.maxpagesize=max_page (the
 * page size of a delta read; capped at GRAPH_MAX_PAGE). Writes NUL-terminated text into out,
 * which must hold GRAPH_PREFER_SIZE bytes.
 */
void graph_url_prefer(unsigned max_page, char out[GRAPH_PREFER_SIZE]);
