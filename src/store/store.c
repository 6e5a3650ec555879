/* SPDX-License-Identifier: MIT */
/*
 * store.c: store.h's functions, for every implementation. Opening picks the implementation from
 * the location; every other function checks its arguments against store.h's contract and calls
 * the store's ops (store-impl.h). The value structs' clear and free functions, and the diff
 * helpers every implementation shares, live here too. No storage code: see store-sqlite*.c.
 */
#include "store/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "cal/occurrence.h"
#include "store/store-impl.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

const char *const store_mb_state_names[STORE_MB_STATE_COUNT] = {
	[STORE_MB_UNRESOLVED] = "unresolved",
	[STORE_MB_SYNCING] = "syncing",
	[STORE_MB_LIVE] = "live",
	[STORE_MB_PARKED] = "parked",
};

const char *const store_sub_kind_names[STORE_SUB_KIND_COUNT] = {
	[STORE_SUB_PULL] = "pull",
	[STORE_SUB_STREAMING] = "streaming",
};

const char *store_mb_state_name(enum store_mb_state st)
{
	if ((unsigned)st >= N_ELEMS(store_mb_state_names))
		return "invalid";
	return store_mb_state_names[st];
}

/* ---- input checks ---- */

/* 0 when v is NULL (and optional) or at most max bytes; "required" also means non-empty. */
static int check_str(const char *v, size_t max, bool required, const char *what, struct err *err)
{
	size_t n;

	if (v == NULL)
		return required ? err_set(err, -EINVAL, "store: %s missing", what) : 0;
	n = strnlen(v, (size_t)max + 1);
	if (n > max)
		return err_set(err, -EMSGSIZE, "store: %s longer than %zu bytes", what,
		               (size_t)max);
	if (required && n == 0)
		return err_set(err, -EINVAL, "store: %s empty", what);
	return 0;
}

static int check_smtp(const char *smtp, struct err *err)
{
	return check_str(smtp, STORE_MAX_SMTP, true, "SMTP address", err);
}

/* ---- open and close: the one place that picks an implementation ---- */

/*
 * The implementations, by the scheme that starts a location. A location that starts with no
 * listed scheme is a file path, for the default (scheme NULL, the last entry). A second
 * implementation adds its line above SQLite's, for example {"postgresql://", store_pg_open};
 * today every location is a SQLite file path, as it always was.
 */
static const struct store_backend {
	const char *scheme;
	int (*open)(const char *where, struct store **out_store, struct err *err);
} backends[] = {
	{.scheme = NULL, .open = store_sqlite_open},
};

static const struct store_backend *backend_for(const char *where)
{
	for (size_t i = 0; i < N_ELEMS(backends); i++)
		if (backends[i].scheme == NULL ||
		    strncmp(where, backends[i].scheme, strlen(backends[i].scheme)) == 0)
			return &backends[i];
	return &backends[N_ELEMS(backends) - 1];
}

int store_open(const char *path, struct store **out_store, struct err *err)
{
	int rc = check_str(path, STORE_MAX_PATH, true, "database path", err);

	if (rc < 0)
		return rc;
	return backend_for(path)->open(path, out_store, err);
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	s->ops->close(s);
}

int store_schema_version(const struct store *s)
{
	return s->ops->schema_version(s);
}

void store_test_fail_write_after(struct store *s, unsigned n)
{
	s->ops->test_fail_write_after(s, n);
}

/* ---- write batches ---- */

int store_batch_begin(struct store *s, struct err *err)
{
	if (s->ops->in_batch(s))
		return err_set(err, -EINVAL, "store: a batch is already open");
	return s->ops->batch_begin(s, err);
}

int store_batch_commit(struct store *s, struct err *err)
{
	if (!s->ops->in_batch(s))
		return err_set(err, -EINVAL, "store: no batch is open");
	return s->ops->batch_commit(s, err);
}

bool store_in_batch(const struct store *s)
{
	return s->ops->in_batch(s);
}

void store_set_write_hook(struct store *s, void (*hook)(void *ctx), void *ctx)
{
	s->ops->set_write_hook(s, hook, ctx);
}

/* ---- mailboxes ---- */

void store_mailbox_clear(struct store_mailbox *mb)
{
	free(mb->smtp);
	free(mb->parked_reason);
	free(mb->backend);
	free(mb->ews_url);
	free(mb->grouping);
	*mb = (struct store_mailbox){0};
}

void store_mailboxes_free(struct store_mailbox *mbs, size_t n)
{
	if (mbs == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_mailbox_clear(&mbs[i]);
	free(mbs);
}

int store_mailbox_add(struct store *s, const char *smtp, const char *ews_url, const char *grouping,
                      struct err *err)
{
	int rc = check_smtp(smtp, err);

	if (rc == 0)
		rc = check_str(ews_url, STORE_MAX_URL, false, "EWS URL", err);
	if (rc == 0)
		rc = check_str(grouping, STORE_MAX_URL, false, "grouping", err);
	if (rc < 0)
		return rc;
	return s->ops->mailbox_add(s, smtp, ews_url, grouping, err);
}

int store_mailbox_remove(struct store *s, const char *smtp, struct err *err)
{
	int rc = check_smtp(smtp, err);

	if (rc < 0)
		return rc;
	return s->ops->mailbox_remove(s, smtp, err);
}

int store_mailbox_list(struct store *s, enum store_mb_filter filter, struct store_mailbox **out_mbs,
                       size_t *out_n, struct err *err)
{
	return s->ops->mailbox_list(s, filter, out_mbs, out_n, err);
}

int store_mailbox_get(struct store *s, const char *smtp, struct store_mailbox *out_mb,
                      struct err *err)
{
	int rc = check_smtp(smtp, err);

	if (rc < 0)
		return rc;
	return s->ops->mailbox_get(s, smtp, out_mb, err);
}

int store_mailbox_set_state(struct store *s, const char *smtp, enum store_mb_state state,
                            const char *reason, struct err *err)
{
	int rc = check_smtp(smtp, err);

	if (rc < 0)
		return rc;
	if ((unsigned)state >= N_ELEMS(store_mb_state_names))
		return err_set(err, -EINVAL, "store: invalid mailbox state %d", (int)state);
	if ((state == STORE_MB_PARKED) != (reason != NULL))
		return err_set(err, -EINVAL, "store: a reason goes with parked, and only with it");
	if (reason != NULL)
		rc = check_str(reason, STORE_MAX_REASON, true, "parked reason", err);
	if (rc < 0)
		return rc;
	return s->ops->mailbox_set_state(s, smtp, state, reason, err);
}

int store_mailbox_set_endpoint(struct store *s, const char *smtp, const char *backend,
                               const char *ews_url, const char *grouping, struct err *err)
{
	int rc = check_smtp(smtp, err);

	if (backend == NULL)
		backend = "ews";
	if (rc == 0 && strcmp(backend, "ews") != 0 && strcmp(backend, "graph") != 0)
		rc = err_set(err, -EINVAL, "store: unknown backend '%.32s'", backend);
	if (rc == 0)
		rc = check_str(ews_url, STORE_MAX_URL, true, "EWS URL", err);
	if (rc == 0)
		rc = check_str(grouping, STORE_MAX_URL, false, "grouping", err);
	if (rc < 0)
		return rc;
	return s->ops->mailbox_set_endpoint(s, smtp, backend, ews_url, grouping, err);
}

int store_mailbox_set_refreshed(struct store *s, const char *smtp, int64_t refresh_utc,
                                struct err *err)
{
	int rc = check_smtp(smtp, err);

	if (rc < 0)
		return rc;
	return s->ops->mailbox_set_refreshed(s, smtp, refresh_utc, err);
}

int store_mailbox_set_by_api(struct store *s, const char *smtp, bool by_api, struct err *err)
{
	int rc = check_smtp(smtp, err);

	if (rc < 0)
		return rc;
	return s->ops->mailbox_set_by_api(s, smtp, by_api, err);
}

/* ---- subscriptions ---- */

void store_subscription_clear(struct store_subscription *sub)
{
	free(sub->id);
	free(sub->watermark);
	*sub = (struct store_subscription){0};
}

int store_subscription_put(struct store *s, const char *smtp, const struct store_subscription *sub,
                           struct err *err)
{
	int rc = check_smtp(smtp, err);

	if (rc == 0)
		rc = check_str(sub->id, STORE_MAX_ID, true, "subscription id", err);
	if (rc < 0)
		return rc;
	if ((unsigned)sub->kind >= N_ELEMS(store_sub_kind_names))
		return err_set(err, -EINVAL, "store: invalid subscription kind %d", (int)sub->kind);
	if (sub->kind == STORE_SUB_STREAMING && sub->watermark != NULL)
		return err_set(err, -EINVAL, "store: a streaming subscription has no watermark");
	if (sub->watermark != NULL && sub->watermark_len > STORE_MAX_WATERMARK)
		return err_set(err, -EMSGSIZE, "store: watermark longer than %u bytes",
		               STORE_MAX_WATERMARK);
	return s->ops->subscription_put(s, smtp, sub, err);
}

int store_subscription_get(struct store *s, const char *smtp, struct store_subscription *out_sub,
                           struct err *err)
{
	int rc = check_smtp(smtp, err);

	if (rc < 0)
		return rc;
	return s->ops->subscription_get(s, smtp, out_sub, err);
}

int store_subscription_delete(struct store *s, const char *smtp, struct err *err)
{
	int rc = check_smtp(smtp, err);

	if (rc < 0)
		return rc;
	return s->ops->subscription_delete(s, smtp, err);
}

int store_subscription_count(struct store *s, size_t *out_streaming, size_t *out_pull,
                             struct err *err)
{
	return s->ops->subscription_count(s, out_streaming, out_pull, err);
}

int store_subscription_set_watermark(struct store *s, const char *smtp, const char *watermark,
                                     size_t len, struct err *err)
{
	int rc = check_smtp(smtp, err);

	if (rc < 0)
		return rc;
	if (watermark == NULL || len > STORE_MAX_WATERMARK)
		return err_set(err, watermark == NULL ? -EINVAL : -EMSGSIZE,
		               "store: watermark missing or longer than %u bytes",
		               STORE_MAX_WATERMARK);
	return s->ops->subscription_set_watermark(s, smtp, watermark, len, err);
}

/* ---- occurrences ---- */

void store_diff_clear(struct store_diff *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->n; i++) {
		free(d->entries[i].item_id);
		free(d->entries[i].change_key);
	}
	free(d->entries);
	*d = (struct store_diff){0};
}

static int check_occurrence(const struct cal_occurrence *o, struct err *err)
{
	int rc = check_str(o->item_id, STORE_MAX_ID, true, "occurrence item_id", err);

	if (rc == 0)
		rc = check_str(o->change_key, STORE_MAX_ID, false, "occurrence change_key", err);
	if (rc == 0)
		rc = check_str(o->uid, STORE_MAX_ID, false, "occurrence uid", err);
	if (rc == 0)
		rc = check_str(o->subject, STORE_MAX_TEXT, false, "occurrence subject", err);
	if (rc == 0)
		rc = check_str(o->location, STORE_MAX_TEXT, false, "occurrence location", err);
	if (rc == 0)
		rc = check_str(o->organizer, STORE_MAX_TEXT, false, "occurrence organizer", err);
	if (rc < 0)
		return rc;
	if (o->n_categories > STORE_MAX_CATEGORIES)
		return err_set(err, -EMSGSIZE, "store: occurrence with more than %u categories",
		               STORE_MAX_CATEGORIES);
	for (size_t i = 0; i < o->n_categories; i++) {
		rc = check_str(o->categories[i], STORE_MAX_CATEGORY, false, "category", err);
		if (rc < 0)
			return rc;
		if (o->categories[i] == NULL ||
		    strchr(o->categories[i], STORE_CATEGORY_SEP) != NULL)
			return err_set(err, -EINVAL,
			               "store: category missing or containing U+001F");
	}
	if (o->end_utc < o->start_utc)
		return err_set(err, -EINVAL, "store: occurrence ends before it starts");
	if ((unsigned)o->free_busy >= N_ELEMS(cal_fb_names) ||
	    (unsigned)o->type >= N_ELEMS(cal_item_type_names))
		return err_set(err, -EINVAL, "store: occurrence with an invalid free/busy or type");
	return 0;
}

static bool str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

unsigned store_occurrence_fields_differ(const struct cal_occurrence *a,
                                        const struct cal_occurrence *b)
{
	unsigned f = 0;
	bool cats = a->n_categories == b->n_categories;

	for (size_t i = 0; cats && i < a->n_categories; i++)
		cats = str_eq(a->categories[i], b->categories[i]);
	f |= str_eq(a->change_key, b->change_key) ? 0 : STORE_F_CHANGE_KEY;
	f |= str_eq(a->uid, b->uid) ? 0 : STORE_F_UID;
	f |= str_eq(a->subject, b->subject) ? 0 : STORE_F_SUBJECT;
	f |= str_eq(a->location, b->location) ? 0 : STORE_F_LOCATION;
	f |= str_eq(a->organizer, b->organizer) ? 0 : STORE_F_ORGANIZER;
	f |= cats ? 0 : STORE_F_CATEGORIES;
	f |= a->start_utc == b->start_utc && a->end_utc == b->end_utc ? 0 : STORE_F_TIMES;
	f |= a->all_day == b->all_day ? 0 : STORE_F_ALL_DAY;
	f |= a->is_cancelled == b->is_cancelled ? 0 : STORE_F_CANCELLED;
	f |= a->is_private == b->is_private ? 0 : STORE_F_PRIVATE;
	f |= a->free_busy == b->free_busy ? 0 : STORE_F_FREE_BUSY;
	f |= a->type == b->type ? 0 : STORE_F_TYPE;
	return f;
}

void store_diff_add(struct store_diff *d, size_t *cap, enum store_change change,
                    const struct cal_occurrence *o, unsigned fields)
{
	if (d->n == *cap) {
		*cap = *cap > 0 ? *cap * 2 : 16;
		d->entries = xreallocarray(d->entries, *cap, sizeof(*d->entries));
	}
	d->entries[d->n++] = (struct store_diff_entry){
		.change = change,
		.item_id = xstrdup(o->item_id),
		.change_key = o->change_key != NULL ? xstrdup(o->change_key) : NULL,
		.fields = fields,
	};
	if (change == STORE_ADDED)
		d->n_added++;
	else if (change == STORE_CHANGED)
		d->n_changed++;
	else
		d->n_removed++;
}

static int cmp_occ_ptr(const void *a, const void *b)
{
	const struct cal_occurrence *const *x = a;
	const struct cal_occurrence *const *y = b;

	return strcmp((*x)->item_id, (*y)->item_id);
}

int store_replace_occurrences(struct store *s, const char *smtp, int64_t window_start_utc,
                              int64_t window_end_utc, const struct cal_occurrence *occs, size_t n,
                              struct store_diff *out_diff, struct err *err)
{
	const struct cal_occurrence **sorted = NULL;
	struct store_diff d = {0};
	int rc = check_smtp(smtp, err);

	if (rc < 0)
		return rc;
	if (window_end_utc <= window_start_utc)
		return err_set(err, -EINVAL, "store: mailbox '%s': empty window", smtp);
	if (n > STORE_MAX_OCCURRENCES)
		return err_set(err, -EMSGSIZE, "store: mailbox '%s': %zu occurrences, limit %u",
		               smtp, n, STORE_MAX_OCCURRENCES);
	for (size_t i = 0; i < n; i++) {
		rc = check_occurrence(&occs[i], err);
		if (rc < 0)
			return err_set(err, rc, "mailbox '%s': %s", smtp,
			               err != NULL ? err->msg : "");
	}
	sorted = xcalloc(n, sizeof(*sorted));
	for (size_t i = 0; i < n; i++)
		sorted[i] = &occs[i];
	qsort(sorted, n, sizeof(*sorted), cmp_occ_ptr);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(sorted[i - 1]->item_id, sorted[i]->item_id) == 0) {
			rc = err_set(err, -EINVAL, "store: mailbox '%s': duplicate item_id", smtp);
			goto out;
		}
	}
	rc = s->ops->replace_occurrences(s, smtp, window_start_utc, window_end_utc, sorted, n, &d,
	                                 err);
out:
	free(sorted);
	if (rc == 0 && out_diff != NULL)
		*out_diff = d;
	else
		store_diff_clear(&d);
	return rc;
}

int store_load_occurrences(struct store *s, const char *smtp, struct cal_occurrence **out_occs,
                           size_t *out_n, struct err *err)
{
	int rc = check_smtp(smtp, err);

	if (rc < 0)
		return rc;
	return s->ops->load_occurrences(s, smtp, out_occs, out_n, err);
}

/* ---- presence ---- */

void store_presence_clear(struct store_presence *p)
{
	free(p->state);
	free(p->profile);
	free(p->forward);
	free(p->subject);
	*p = (struct store_presence){0};
}

void store_presence_events_free(struct store_presence_event *evs, size_t n)
{
	if (evs == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(evs[i].smtp);
		free(evs[i].reason);
		store_presence_clear(&evs[i].presence);
	}
	free(evs);
}

/* The mailbox, the presence and (when with_reason) the reason of an event, checked. */
static int check_presence(const char *smtp, const struct store_presence *p, bool with_reason,
                          const char *reason, struct err *err)
{
	int rc = check_smtp(smtp, err);

	if (rc == 0)
		rc = check_str(p->state, STORE_MAX_NAME, true, "presence state", err);
	if (rc == 0)
		rc = check_str(p->profile, STORE_MAX_NAME, false, "presence profile", err);
	if (rc == 0)
		rc = check_str(p->forward, STORE_MAX_SMTP, false, "presence forward", err);
	if (rc == 0)
		rc = check_str(p->subject, STORE_MAX_TEXT, false, "presence subject", err);
	if (rc == 0 && with_reason)
		rc = check_str(reason, STORE_MAX_REASON, false, "presence reason", err);
	return rc;
}

int store_presence_put(struct store *s, const char *smtp, const struct store_presence *p,
                       struct err *err)
{
	int rc = check_presence(smtp, p, false, NULL, err);

	if (rc < 0)
		return rc;
	return s->ops->presence_put(s, smtp, p, err);
}

int store_presence_get(struct store *s, const char *smtp, struct store_presence *out_p,
                       struct err *err)
{
	int rc = check_smtp(smtp, err);

	if (rc < 0)
		return rc;
	return s->ops->presence_get(s, smtp, out_p, err);
}

int store_append_presence_event(struct store *s, const char *smtp, const struct store_presence *p,
                                const char *reason, int64_t *out_id, struct err *err)
{
	int rc = check_presence(smtp, p, true, reason, err);

	if (rc < 0)
		return rc;
	return s->ops->append_presence_event(s, smtp, p, reason, out_id, err);
}

int store_presence_record(struct store *s, const char *smtp, const struct store_presence *p,
                          const char *reason, int64_t *out_id, struct err *err)
{
	int rc = check_presence(smtp, p, true, reason, err);

	if (rc < 0)
		return rc;
	return s->ops->presence_record(s, smtp, p, reason, out_id, err);
}

int store_presence_events_after(struct store *s, int64_t after_id, size_t limit,
                                struct store_presence_event **out_evs, size_t *out_n,
                                struct err *err)
{
	if (limit == 0 || limit > STORE_MAX_EVENTS_PAGE || after_id < 0)
		return err_set(err, -EINVAL, "store: events after %lld: limit %zu not in 1..%u",
		               (long long)after_id, limit, STORE_MAX_EVENTS_PAGE);
	return s->ops->presence_events_after(s, after_id, limit, out_evs, out_n, err);
}

int store_presence_events_last_id(struct store *s, int64_t *out_id, struct err *err)
{
	return s->ops->presence_events_last_id(s, out_id, err);
}

/* ---- webhook cursors ---- */

int store_webhook_cursor_get(struct store *s, const char *url, int64_t *out_last_id,
                             struct err *err)
{
	int rc = check_str(url, STORE_MAX_URL, true, "webhook URL", err);

	if (rc < 0)
		return rc;
	return s->ops->webhook_cursor_get(s, url, out_last_id, err);
}

int store_webhook_cursor_set(struct store *s, const char *url, int64_t last_id, struct err *err)
{
	int rc = check_str(url, STORE_MAX_URL, true, "webhook URL", err);

	if (rc == 0 && last_id < 0)
		rc = err_set(err, -EINVAL, "store: webhook cursor %lld is negative",
		             (long long)last_id);
	if (rc < 0)
		return rc;
	return s->ops->webhook_cursor_set(s, url, last_id, err);
}
