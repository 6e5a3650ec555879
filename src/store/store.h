/* SPDX-License-Identifier: MIT */
/*
 * store.h: calsync's persistent state, today one SQLite database (WAL): mailboxes and their
 * sync state, subscriptions with their watermarks, the occurrences of each mailbox's window,
 * the current presence per mailbox and the append-only log of presence changes. store.c checks
 * the arguments and calls the implementation through the ops of store-impl.h; the SQLite one
 * (store-sqlite*.c) is the only code that sees sqlite3*. The schema and its migrations are
 * described in docs/store.md.
 *
 * Threads: a struct store is one SQLite connection and must be used by one thread at a time.
 * The loop thread owns the writing store; another thread (the API) opens its own store on the
 * same path to read. In WAL mode readers never block the writer and see the last committed
 * state; a second store_open() of a current database changes nothing.
 *
 * Strings are NUL-terminated UTF-8 and are checked against the STORE_MAX_* limits below before
 * anything is written; a string over its limit is refused with -EMSGSIZE. Every function that
 * can fail returns 0 or a negative errno and takes an optional struct err for the detail
 * (SQLite's message included); out_* parameters are written only on success.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"

struct err;
struct cal_occurrence;
struct store;

/* The schema version this code writes and understands (PRAGMA user_version). */
#define STORE_SCHEMA_VERSION 5

/* An SMTP address: RFC 5321 allows a 64-byte local part, '@' and a 255-byte domain. */
#define STORE_MAX_SMTP 320u
/* An EWS URL, a grouping key or a parked reason: URLs past 2 KiB break many proxies anyway. */
#define STORE_MAX_URL    2048u
#define STORE_MAX_REASON 1024u
/* ItemId, ChangeKey, UID, SubscriptionId: base64 ids are a few hundred bytes; UIDs from foreign
 * calendars can be longer, so there is headroom. */
#define STORE_MAX_ID 2048u
/* A pull watermark: base64 of a few dozen bytes in practice. */
#define STORE_MAX_WATERMARK 4096u
/* Subject, location, organizer: Exchange caps a subject at 255 characters (up to 4 bytes each);
 * locations and organizer names are shorter. */
#define STORE_MAX_TEXT 4096u
/* Categories per occurrence and bytes per category (Outlook caps a name at 255 characters). */
#define STORE_MAX_CATEGORIES 64u
#define STORE_MAX_CATEGORY   1024u
/* Occurrences in one mailbox's window: a busy room over two weeks has a few hundred. */
#define STORE_MAX_OCCURRENCES 20000u
/* Presence state name ("busy"), profile name, forwarding target. */
#define STORE_MAX_NAME 256u
/* Events returned by one store_presence_events_after() call. */
#define STORE_MAX_EVENTS_PAGE 1000u
/* The database path. */
#define STORE_MAX_PATH 4096u
/* How long a statement waits for another connection's lock before failing with -EBUSY. Only
 * checkpoints and a second writer take the lock, so waits are rare and short. */
#define STORE_BUSY_TIMEOUT_MS 5000

/*
 * Opens (creating if needed) the database at path and migrates it to STORE_SCHEMA_VERSION, each
 * migration in its own transaction. Returns 0 and an owned *out_store; -EPROTONOSUPPORT when
 * the database was written by a newer calsync (it is left untouched); -EINVAL when the file is
 * some other SQLite database; or the mapped SQLite error (-EACCES, -EBUSY, -EIO, -EBADMSG for a
 * file that is not a database, ...).
 */
ATTR_NODISCARD int store_open(const char *path, struct store **out_store, struct err *err);
void store_close(struct store *s); /* NULL-safe */

/* The schema version of the open database (STORE_SCHEMA_VERSION after a successful open). */
int store_schema_version(const struct store *s);

/*
 * Write batches. Every store function that writes is one transaction of its own, and a commit
 * costs a WAL write and two locks. A writer that makes many small changes in a row (the sync
 * engine: a few per mailbox read, thousands per second during an initial sync) batches them:
 * between store_batch_begin and store_batch_commit all writes are one transaction, and each
 * function's own transaction becomes a savepoint in it, so a failing function still undoes
 * exactly its own changes. Reads on this connection see the batch; other connections see it
 * once committed. Batches do not nest.
 *
 * store_set_write_hook: hook(ctx) is called before the first write that is not in a batch, so
 * the writer can open one there (the engine does, and commits it at the end of the event-loop
 * iteration). NULL removes it.
 */
ATTR_NODISCARD int store_batch_begin(struct store *s, struct err *err);
/* Commits the batch and ends it; on failure everything in it is rolled back (and -EIO, -ENOSPC,
 * ... says why). -EINVAL without a batch. */
ATTR_NODISCARD int store_batch_commit(struct store *s, struct err *err);
bool store_in_batch(const struct store *s);
void store_set_write_hook(struct store *s, void (*hook)(void *ctx), void *ctx);

/* ---- mailboxes ---- */

enum store_mb_state {
	STORE_MB_UNRESOLVED = 0, /* not yet resolved (Autodiscover, EWS URL) */
	STORE_MB_SYNCING,        /* subscribed or subscribing, window being read */
	STORE_MB_LIVE,           /* subscribed and window mirrored */
	STORE_MB_PARKED,         /* a per-mailbox permanent error; reason says which */
};

/* "unresolved", "syncing", "live", "parked": the text stored in the database. */
const char *store_mb_state_name(enum store_mb_state st);

/* A mailbox row. Strings are owned (store_mailbox_clear frees them) and NULL when unset.
 * Instants are UTC seconds, 0 when unset. */
struct store_mailbox {
	char *smtp; /* as first added; lookups ignore ASCII case */
	enum store_mb_state state;
	char *parked_reason; /* set only in STORE_MB_PARKED */
	char *backend;       /* which backend holds it: "ews" (the default) or "graph" */
	char *ews_url;       /* its home there: the EWS URL, or the Graph user's path */
	char *grouping;      /* GroupingInformation, or NULL (then the EWS URL groups) */
	int64_t last_refresh_utc;
	int64_t window_start_utc; /* the window of the stored occurrences */
	int64_t window_end_utc;
	bool enabled;
	bool by_api; /* added through the HTTP API: kept although the configuration omits it */
};

void store_mailbox_clear(struct store_mailbox *mb); /* frees the strings; leaves mb zeroed */
void store_mailboxes_free(struct store_mailbox *mbs, size_t n); /* NULL-safe */

/*
 * Adds a mailbox in state unresolved, or re-enables an existing one (SMTP addresses compare
 * ignoring ASCII case). ews_url and grouping may be NULL; on an existing mailbox a non-NULL
 * value replaces the stored one and NULL keeps it. 0 or -EINVAL / -EMSGSIZE / SQLite errors.
 */
ATTR_NODISCARD int store_mailbox_add(struct store *s, const char *smtp, const char *ews_url,
                                     const char *grouping, struct err *err);

/* Disables a mailbox (removed from the config or the API). Its rows stay, so the presence log
 * keeps its history and a re-add starts from the stored state. 0, or -ENOENT. */
ATTR_NODISCARD int store_mailbox_remove(struct store *s, const char *smtp, struct err *err);

enum store_mb_filter {
	STORE_MB_ALL = 0,
	STORE_MB_ENABLED,
};

/* All mailboxes (or only the enabled ones), sorted by smtp. *out_mbs is owned (free it with
 * store_mailboxes_free); it is NULL when *out_n is 0. */
ATTR_NODISCARD int store_mailbox_list(struct store *s, enum store_mb_filter filter,
                                      struct store_mailbox **out_mbs, size_t *out_n,
                                      struct err *err);

/* Fills *out_mb (owned; store_mailbox_clear frees it). 0, or -ENOENT. */
ATTR_NODISCARD int store_mailbox_get(struct store *s, const char *smtp,
                                     struct store_mailbox *out_mb, struct err *err);

/* Sets the sync state. reason is required for STORE_MB_PARKED and must be NULL otherwise
 * (-EINVAL); leaving parked clears the reason. 0, or -ENOENT. */
ATTR_NODISCARD int store_mailbox_set_state(struct store *s, const char *smtp,
                                           enum store_mb_state st, const char *reason,
                                           struct err *err);

/* Records the mailbox's home as discover found it: the backend that holds it ("ews", "graph";
 * NULL: "ews"), its URL there and its grouping (may be NULL). */
ATTR_NODISCARD int store_mailbox_set_endpoint(struct store *s, const char *smtp,
                                              const char *backend, const char *ews_url,
                                              const char *grouping, struct err *err);

/* Marks a mailbox as added (true) or no longer added (false) through the HTTP API.
 * 0, or -ENOENT. */
ATTR_NODISCARD int store_mailbox_set_by_api(struct store *s, const char *smtp, bool by_api,
                                            struct err *err);

/* Records the instant of the last successful window refresh. 0, or -ENOENT. */
ATTR_NODISCARD int store_mailbox_set_refreshed(struct store *s, const char *smtp,
                                               int64_t refresh_utc, struct err *err);

/* ---- subscriptions: at most one per mailbox ---- */

enum store_sub_kind {
	STORE_SUB_PULL = 0,
	STORE_SUB_STREAMING,
};

/* A subscription. The watermark is bytes (watermark_len of them, with a NUL after them for
 * convenience), stored and returned byte for byte; NULL for streaming or before the first. */
struct store_subscription {
	enum store_sub_kind kind;
	char *id; /* SubscriptionId */
	char *watermark;
	size_t watermark_len;
	int64_t created_utc;
};

void store_subscription_clear(struct store_subscription *sub); /* frees; leaves sub zeroed */

/* Inserts or replaces the mailbox's subscription. A streaming one must have no watermark
 * (-EINVAL). 0, or -ENOENT when the mailbox is unknown. */
ATTR_NODISCARD int store_subscription_put(struct store *s, const char *smtp,
                                          const struct store_subscription *sub, struct err *err);

/* Fills *out_sub (owned). 0, or -ENOENT when the mailbox has no subscription. */
ATTR_NODISCARD int store_subscription_get(struct store *s, const char *smtp,
                                          struct store_subscription *out_sub, struct err *err);

/* How many subscriptions are stored, by kind (one query; for metrics). 0 or SQLite errors. */
ATTR_NODISCARD int store_subscription_count(struct store *s, size_t *out_streaming,
                                            size_t *out_pull, struct err *err);

/* Deletes the mailbox's subscription; 0 also when it had none. */
ATTR_NODISCARD int store_subscription_delete(struct store *s, const char *smtp, struct err *err);

/* Replaces the watermark of the mailbox's pull subscription after a GetEvents response: one
 * cached statement and one small WAL commit. 0, or -ENOENT when there is no pull subscription. */
ATTR_NODISCARD int store_subscription_set_watermark(struct store *s, const char *smtp,
                                                    const char *watermark, size_t len,
                                                    struct err *err);

/* ---- occurrences of a mailbox's window ---- */

/* Which fields of an occurrence differ between the stored and the new version. */
enum store_field {
	STORE_F_CHANGE_KEY = 1u << 0,
	STORE_F_UID = 1u << 1,
	STORE_F_SUBJECT = 1u << 2,
	STORE_F_LOCATION = 1u << 3,
	STORE_F_ORGANIZER = 1u << 4,
	STORE_F_CATEGORIES = 1u << 5,
	STORE_F_TIMES = 1u << 6, /* start_utc or end_utc */
	STORE_F_ALL_DAY = 1u << 7,
	STORE_F_CANCELLED = 1u << 8,
	STORE_F_PRIVATE = 1u << 9,
	STORE_F_FREE_BUSY = 1u << 10,
	STORE_F_TYPE = 1u << 11,
};

enum store_change {
	STORE_ADDED = 0,
	STORE_CHANGED,
	STORE_REMOVED,
};

/* One added, changed or removed occurrence. change_key is the new one (the stored one for a
 * removal); fields is the STORE_F_* set that differs (0 for additions and removals). */
struct store_diff_entry {
	enum store_change change;
	char *item_id;
	char *change_key;
	unsigned fields;
};

/* What a replace did, entries sorted by item_id. Nothing changed when n == 0. */
struct store_diff {
	struct store_diff_entry *entries;
	size_t n;
	size_t n_added;
	size_t n_changed;
	size_t n_removed;
	size_t n_unchanged;
};

void store_diff_clear(struct store_diff *d); /* frees; leaves d zeroed; NULL-safe */

/*
 * Makes occs[0..n) the mailbox's stored occurrences and [window_start, window_end) its window, in
 * one transaction: on any error nothing changed. Occurrences are matched by item_id; one whose
 * change_key or any stored field differs is "changed" (so a ChangeKey-only change is reported
 * with fields == STORE_F_CHANGE_KEY). out_diff may be NULL; when given it is filled (owned,
 * store_diff_clear frees it) only on success. -EINVAL for a NULL or duplicate item_id, end before
 * start, a window that is empty or a category containing U+001F (the stored separator, which
 * XML cannot carry); -EMSGSIZE past a limit; -ENOENT for an unknown mailbox.
 */
ATTR_NODISCARD int store_replace_occurrences(struct store *s, const char *smtp,
                                             int64_t window_start_utc, int64_t window_end_utc,
                                             const struct cal_occurrence *occs, size_t n,
                                             struct store_diff *out_diff, struct err *err);

/* The mailbox's stored occurrences, sorted by start then item_id, as an owned array (NULL when
 * *out_n is 0) freed with cal_occurrences_free (cal/occurrence.h). 0, or -ENOENT for an unknown
 * mailbox. */
ATTR_NODISCARD int store_load_occurrences(struct store *s, const char *smtp,
                                          struct cal_occurrence **out_occs, size_t *out_n,
                                          struct err *err);

/* ---- presence ---- */

/* A mailbox's presence as the presence engine computed it. Strings owned, NULL when none;
 * state is required when writing. Instants are UTC seconds, 0 for "none" (stored as NULL). */
struct store_presence {
	char *state; /* the engine's name: "free", "busy", "oof", ... */
	char *profile;
	char *forward;
	char *subject; /* already "private" for private items: the store writes what it gets */
	int64_t since_utc;
	int64_t until_utc;
	int64_t next_change_utc;
	int64_t updated_utc;
};

void store_presence_clear(struct store_presence *p); /* frees; leaves p zeroed */

/* Inserts or replaces the mailbox's current presence. 0, or -ENOENT for an unknown mailbox. */
ATTR_NODISCARD int store_presence_put(struct store *s, const char *smtp,
                                      const struct store_presence *p, struct err *err);

/* Fills *out_p (owned). 0, or -ENOENT when the mailbox has no stored presence. */
ATTR_NODISCARD int store_presence_get(struct store *s, const char *smtp,
                                      struct store_presence *out_p, struct err *err);

/* One entry of the presence change log. */
struct store_presence_event {
	int64_t id; /* > 0, strictly increasing, never reused (also after a restart) */
	char *smtp;
	struct store_presence presence;
	char *reason; /* why it changed ("appointment-start", ...), or NULL */
};

void store_presence_events_free(struct store_presence_event *evs, size_t n); /* NULL-safe */

/* Appends a presence change to the log; *out_id (may be NULL) gets its id. */
ATTR_NODISCARD int store_append_presence_event(struct store *s, const char *smtp,
                                               const struct store_presence *p, const char *reason,
                                               int64_t *out_id, struct err *err);

/* store_presence_put and store_append_presence_event in one transaction: after a crash either
 * both the new presence and its event are stored or neither is, so a restart neither loses nor
 * repeats the change. This is what the loop calls on each change. */
ATTR_NODISCARD int store_presence_record(struct store *s, const char *smtp,
                                         const struct store_presence *p, const char *reason,
                                         int64_t *out_id, struct err *err);

/* Up to limit (1..STORE_MAX_EVENTS_PAGE) events with id > after_id, in id order, as an owned
 * array (NULL when *out_n is 0) freed with store_presence_events_free. after_id 0 reads from the
 * start: the Last-Event-ID resume of SSE. */
ATTR_NODISCARD int store_presence_events_after(struct store *s, int64_t after_id, size_t limit,
                                               struct store_presence_event **out_evs, size_t *out_n,
                                               struct err *err);

/* The largest event id ever handed out (0 for an empty log). A new webhook target starts here:
 * it gets the changes from now on. */
ATTR_NODISCARD int store_presence_events_last_id(struct store *s, int64_t *out_id, struct err *err);

/* ---- webhook cursors: the outbox is presence_events, one cursor per webhook URL ---- */

/* *out_last_id: the id of the last event delivered to (or given up for) url. 0, or -ENOENT
 * when url has no cursor yet; -EMSGSIZE for a URL over STORE_MAX_URL. */
ATTR_NODISCARD int store_webhook_cursor_get(struct store *s, const char *url, int64_t *out_last_id,
                                            struct err *err);

/* Inserts or replaces url's cursor (last_id >= 0, else -EINVAL), stamped with the wall clock. One
 * statement, one WAL commit. */
ATTR_NODISCARD int store_webhook_cursor_set(struct store *s, const char *url, int64_t last_id,
                                            struct err *err);

/* For tests only: the n-th (1-based) write statement from now fails with -EIO, as a full disk
 * would, so tests can prove that transactions roll back. 0 turns it off. */
void store_test_fail_write_after(struct store *s, unsigned n);
