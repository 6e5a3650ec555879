/* SPDX-License-Identifier: MIT */
/*
 * test-store.c: the store interface (store.h), for every implementation: every call, the
 * occurrence diff, rollback on failure, byte-exact watermarks, event ids, webhook cursors, a
 * writer and a reader connection, write batches. Only store.h is used, so the same tests run
 * against each implementation in backends[] below; what only SQLite does (migrations, the file
 * header) is tested in test-store-sqlite.c.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test-store.h"

/*
 * The implementations under test. make gives each test a fresh, empty location for store_open
 * (t->path) and remove deletes it afterwards; a second implementation adds its line (for example
 * one that creates a scratch PostgreSQL database and puts its URL in t->path). main runs every
 * test once per implementation, or only for the one named by CALSYNC_TEST_STORE.
 */
static const struct test_backend {
	const char *name;
	void (*make)(struct tmp *t);
	void (*remove)(struct tmp *t);
} backends[] = {
	{.name = "sqlite", .make = sqlite_tmp_make, .remove = sqlite_tmp_remove},
};

/* The implementation the tests run against now (main sets it). */
static const struct test_backend *backend = &backends[0];

static void tmp_make(struct tmp *t)
{
	backend->make(t);
}

static void tmp_remove(struct tmp *t)
{
	backend->remove(t);
}

/* The diff entry for item_id, or NULL. */
static const struct store_diff_entry *diff_find(const struct store_diff *d, const char *item_id)
{
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->entries[i].item_id, item_id) == 0)
			return &d->entries[i];
	return NULL;
}

static double now_sec(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

TEST(open_creates_migrates_and_reopens)
{
	struct tmp t;
	struct store *s = NULL;
	struct store_mailbox mb = {0};
	struct err e = {0};

	tmp_make(&t);
	CHECK_EQ(store_open(t.path, &s, &e), 0);
	CHECK(s != NULL);
	CHECK_EQ(store_schema_version(s), STORE_SCHEMA_VERSION);
	CHECK_EQ(store_mailbox_add(s, "a@example.com", NULL, NULL, &e), 0);
	store_close(s);

	s = open_ok(t.path);
	CHECK_EQ(store_schema_version(s), STORE_SCHEMA_VERSION);
	CHECK_EQ(store_mailbox_get(s, "a@example.com", &mb, &e), 0);
	CHECK_STREQ(mb.smtp, "a@example.com");
	store_mailbox_clear(&mb);
	store_close(s);
	store_close(NULL);
	tmp_remove(&t);
}

TEST(mailboxes)
{
	struct tmp t;
	struct store *s;
	struct store_mailbox mb = {0};
	struct store_mailbox *mbs = NULL;
	size_t n = 99;
	struct err e = {0};
	char long_smtp[STORE_MAX_SMTP + 2];

	tmp_make(&t);
	s = open_ok(t.path);
	CHECK_EQ(store_mailbox_list(s, STORE_MB_ALL, &mbs, &n, &e), 0);
	CHECK_EQ(n, 0);
	CHECK(mbs == NULL);

	CHECK_EQ(store_mailbox_add(s, "Bob@Example.com", "https://ex1/EWS/Exchange.asmx", NULL, &e),
	         0);
	CHECK_EQ(store_mailbox_add(s, "alice@example.com", NULL, "grp-1", &e), 0);
	CHECK_EQ(store_mailbox_get(s, "bob@example.COM", &mb, &e), 0); /* ASCII case ignored */
	CHECK_STREQ(mb.smtp, "Bob@Example.com");
	CHECK_EQ(mb.state, STORE_MB_UNRESOLVED);
	CHECK_STREQ(mb.ews_url, "https://ex1/EWS/Exchange.asmx");
	CHECK_STREQ(mb.backend, "ews");
	CHECK(mb.grouping == NULL);
	CHECK(mb.parked_reason == NULL);
	CHECK(mb.enabled);
	CHECK_EQ(mb.last_refresh_utc, 0);
	store_mailbox_clear(&mb);

	CHECK_EQ(store_mailbox_set_state(s, "alice@example.com", STORE_MB_PARKED,
	                                 "ErrorImpersonateUserDenied", &e),
	         0);
	CHECK_EQ(store_mailbox_set_endpoint(s, "alice@example.com", NULL, "https://ex2/EWS", "g2",
	                                    &e),
	         0);
	CHECK_EQ(store_mailbox_set_refreshed(s, "alice@example.com", 1700000000, &e), 0);
	CHECK_EQ(store_mailbox_get(s, "alice@example.com", &mb, &e), 0);
	CHECK_EQ(mb.state, STORE_MB_PARKED);
	CHECK_STREQ(mb.parked_reason, "ErrorImpersonateUserDenied");
	CHECK_STREQ(mb.ews_url, "https://ex2/EWS");
	CHECK_STREQ(mb.grouping, "g2");
	CHECK_EQ(mb.last_refresh_utc, 1700000000);
	store_mailbox_clear(&mb);

	/* A mailbox moved to Exchange Online: its backend and home there; a third is refused. */
	CHECK_EQ(store_mailbox_set_endpoint(s, "alice@example.com", "graph", "users/alice", NULL,
	                                    &e),
	         0);
	CHECK_EQ(store_mailbox_get(s, "alice@example.com", &mb, &e), 0);
	CHECK_STREQ(mb.backend, "graph");
	CHECK_STREQ(mb.ews_url, "users/alice");
	CHECK(mb.grouping == NULL);
	store_mailbox_clear(&mb);
	CHECK_EQ(store_mailbox_set_endpoint(s, "alice@example.com", "imap", "x", NULL, &e),
	         -EINVAL);
	CHECK(strstr(e.msg, "unknown backend 'imap'") != NULL);
	CHECK_EQ(store_mailbox_set_endpoint(s, "alice@example.com", NULL, "https://ex2/EWS", "g2",
	                                    &e),
	         0);

	/* Leaving parked clears the reason; a reason without parked is refused. */
	CHECK_EQ(store_mailbox_set_state(s, "alice@example.com", STORE_MB_LIVE, NULL, &e), 0);
	CHECK_EQ(store_mailbox_set_state(s, "alice@example.com", STORE_MB_LIVE, "x", &e), -EINVAL);
	CHECK_EQ(store_mailbox_set_state(s, "alice@example.com", STORE_MB_PARKED, NULL, &e),
	         -EINVAL);
	CHECK_EQ(store_mailbox_set_state(s, "alice@example.com", (enum store_mb_state)17, NULL, &e),
	         -EINVAL);
	CHECK_EQ(store_mailbox_get(s, "alice@example.com", &mb, &e), 0);
	CHECK_EQ(mb.state, STORE_MB_LIVE);
	CHECK(mb.parked_reason == NULL);
	store_mailbox_clear(&mb);

	/* Remove disables; the list can skip disabled ones; re-adding enables and keeps state. */
	CHECK_EQ(store_mailbox_remove(s, "ALICE@example.com", &e), 0);
	CHECK_EQ(store_mailbox_list(s, STORE_MB_ENABLED, &mbs, &n, &e), 0);
	CHECK_EQ(n, 1);
	CHECK_STREQ(mbs[0].smtp, "Bob@Example.com");
	store_mailboxes_free(mbs, n);
	CHECK_EQ(store_mailbox_list(s, STORE_MB_ALL, &mbs, &n, &e), 0);
	CHECK_EQ(n, 2);
	CHECK_STREQ(mbs[0].smtp, "alice@example.com"); /* sorted, ignoring case */
	CHECK(!mbs[0].enabled);
	CHECK(mbs[1].enabled);
	store_mailboxes_free(mbs, n);
	CHECK_EQ(store_mailbox_add(s, "alice@example.com", NULL, NULL, &e), 0);
	CHECK_EQ(store_mailbox_get(s, "alice@example.com", &mb, &e), 0);
	CHECK(mb.enabled);
	CHECK_EQ(mb.state, STORE_MB_LIVE);
	CHECK_STREQ(mb.ews_url, "https://ex2/EWS"); /* NULL kept the stored value */
	store_mailbox_clear(&mb);

	/* Unknown mailboxes and bad input. */
	CHECK_EQ(store_mailbox_get(s, "nobody@example.com", &mb, &e), -ENOENT);
	CHECK(strstr(e.msg, "nobody@example.com") != NULL);
	CHECK_EQ(store_mailbox_remove(s, "nobody@example.com", &e), -ENOENT);
	CHECK_EQ(store_mailbox_set_state(s, "nobody@example.com", STORE_MB_LIVE, NULL, &e),
	         -ENOENT);
	CHECK_EQ(store_mailbox_set_refreshed(s, "nobody@example.com", 1, &e), -ENOENT);
	CHECK_EQ(store_mailbox_add(s, NULL, NULL, NULL, &e), -EINVAL);
	CHECK_EQ(store_mailbox_add(s, "", NULL, NULL, &e), -EINVAL);
	memset(long_smtp, 'a', sizeof(long_smtp) - 1);
	long_smtp[sizeof(long_smtp) - 1] = '\0';
	CHECK_EQ(store_mailbox_add(s, long_smtp, NULL, NULL, &e), -EMSGSIZE);
	long_smtp[STORE_MAX_SMTP] = '\0'; /* exactly at the limit */
	CHECK_EQ(store_mailbox_add(s, long_smtp, NULL, NULL, NULL), 0);
	CHECK_STREQ(store_mb_state_name(STORE_MB_PARKED), "parked");
	store_close(s);
	tmp_remove(&t);
}

TEST(subscriptions_and_byte_exact_watermarks)
{
	struct tmp t;
	struct store *s;
	struct store_subscription sub = {0};
	struct err e = {0};
	/* Not UTF-8, with NULs and trailing spaces: whatever Exchange sends comes back. */
	static const char wm[] = "AQAAAB\0\xff\xfe/+=\n  ";
	char big[STORE_MAX_WATERMARK + 1];

	tmp_make(&t);
	s = open_ok(t.path);
	CHECK_EQ(store_mailbox_add(s, "p@example.com", NULL, NULL, &e), 0);
	CHECK_EQ(store_subscription_get(s, "p@example.com", &sub, &e), -ENOENT);
	{
		size_t streaming = 9, pull = 9;

		CHECK_EQ(store_subscription_count(s, &streaming, &pull, &e), 0);
		CHECK(streaming == 0 && pull == 0);
	}
	CHECK_EQ(store_subscription_put(s, "p@example.com",
	                                &(struct store_subscription){.kind = STORE_SUB_PULL,
	                                                             .id = (char[]){"sub-1"},
	                                                             .created_utc = 1700000000},
	                                &e),
	         0);
	CHECK_EQ(store_mailbox_add(s, "q@example.com", NULL, NULL, &e), 0);
	CHECK_EQ(store_mailbox_add(s, "r@example.com", NULL, NULL, &e), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(store_subscription_put(
				 s, i ? "r@example.com" : "q@example.com",
				 &(struct store_subscription){.kind = STORE_SUB_STREAMING,
		                                              .id = (char[]){"sub-s"},
		                                              .created_utc = 1700000000},
				 &e),
		         0);
	{
		size_t streaming = 0, pull = 0;

		CHECK_EQ(store_subscription_count(s, &streaming, &pull, &e), 0);
		CHECK(streaming == 2 && pull == 1);
	}
	CHECK_EQ(store_subscription_delete(s, "q@example.com", &e), 0);
	CHECK_EQ(store_subscription_delete(s, "r@example.com", &e), 0);
	CHECK_EQ(store_subscription_get(s, "p@example.com", &sub, &e), 0);
	CHECK_EQ(sub.kind, STORE_SUB_PULL);
	CHECK_STREQ(sub.id, "sub-1");
	CHECK(sub.watermark == NULL);
	CHECK_EQ(sub.created_utc, 1700000000);
	store_subscription_clear(&sub);

	CHECK_EQ(store_subscription_set_watermark(s, "p@example.com", wm, sizeof(wm) - 1, &e), 0);
	CHECK_EQ(store_subscription_get(s, "p@example.com", &sub, &e), 0);
	CHECK_EQ(sub.watermark_len, sizeof(wm) - 1);
	CHECK(sub.watermark != NULL && memcmp(sub.watermark, wm, sizeof(wm) - 1) == 0);
	CHECK_EQ(sub.watermark[sub.watermark_len], '\0');
	store_subscription_clear(&sub);
	/* An empty watermark is a watermark, not "none". */
	CHECK_EQ(store_subscription_set_watermark(s, "p@example.com", "", 0, &e), 0);
	CHECK_EQ(store_subscription_get(s, "p@example.com", &sub, &e), 0);
	CHECK(sub.watermark != NULL);
	CHECK_EQ(sub.watermark_len, 0);
	store_subscription_clear(&sub);
	memset(big, 'w', sizeof(big));
	CHECK_EQ(store_subscription_set_watermark(s, "p@example.com", big, sizeof(big), &e),
	         -EMSGSIZE);
	CHECK_EQ(store_subscription_set_watermark(s, "p@example.com", big, sizeof(big) - 1, &e), 0);

	/* Replacing with a streaming subscription drops the watermark; it takes none. */
	CHECK_EQ(store_subscription_put(s, "p@example.com",
	                                &(struct store_subscription){.kind = STORE_SUB_STREAMING,
	                                                             .id = (char[]){"sub-2"},
	                                                             .watermark = (char[]){"x"},
	                                                             .watermark_len = 1},
	                                &e),
	         -EINVAL);
	CHECK_EQ(store_subscription_put(s, "p@example.com",
	                                &(struct store_subscription){.kind = STORE_SUB_STREAMING,
	                                                             .id = (char[]){"sub-2"}},
	                                &e),
	         0);
	CHECK_EQ(store_subscription_get(s, "p@example.com", &sub, &e), 0);
	CHECK_EQ(sub.kind, STORE_SUB_STREAMING);
	CHECK_STREQ(sub.id, "sub-2");
	CHECK(sub.watermark == NULL);
	store_subscription_clear(&sub);
	CHECK_EQ(store_subscription_set_watermark(s, "p@example.com", "w", 1, &e), -ENOENT);

	CHECK_EQ(store_subscription_put(s, "nobody@example.com",
	                                &(struct store_subscription){.id = (char[]){"x"}}, &e),
	         -ENOENT);
	CHECK_EQ(store_subscription_put(s, "p@example.com", &(struct store_subscription){0}, &e),
	         -EINVAL);
	CHECK_EQ(store_subscription_delete(s, "p@example.com", &e), 0);
	CHECK_EQ(store_subscription_delete(s, "p@example.com", &e), 0);
	CHECK_EQ(store_subscription_get(s, "p@example.com", &sub, &e), -ENOENT);
	store_close(s);
	tmp_remove(&t);
}

TEST(occurrences_round_trip)
{
	struct tmp t;
	struct store *s;
	struct cal_occurrence in[3];
	struct cal_occurrence *out = NULL;
	size_t n = 0;
	struct store_mailbox mb = {0};
	struct err e = {0};

	tmp_make(&t);
	s = open_ok(t.path);
	CHECK_EQ(store_mailbox_add(s, "r@example.com", NULL, NULL, &e), 0);

	/* Every field set, non-ASCII text, categories including an empty one. */
	in[0] = occ("AAMk-1", "CK1", 1700003600, 1700007200);
	set_str(&in[0].uid, "040000008200E00074C5B7101A82E008");
	set_str(&in[0].subject, "Besprechung über Größen – 会议 🗓");
	set_str(&in[0].location, "Raum Zürich");
	set_str(&in[0].organizer, "Zoë Ørsted");
	add_category(&in[0], "Rot");
	add_category(&in[0], "");
	add_category(&in[0], "Vacances d'été, ☀");
	in[0].all_day = false;
	in[0].is_private = true;
	in[0].free_busy = CAL_FB_OOF;
	in[0].type = CAL_ITEM_EXCEPTION;
	/* Every optional field NULL, no categories. */
	in[1] = occ("AAMk-2", NULL, 1700000000, 1700086400);
	in[1].all_day = true;
	in[1].is_cancelled = true;
	in[1].free_busy = CAL_FB_UNKNOWN;
	in[1].type = CAL_ITEM_OCCURRENCE;
	/* Zero length, as Exchange allows. */
	in[2] = occ("AAMk-0", "CK0", 1700003600, 1700003600);
	in[2].free_busy = CAL_FB_WORKING_ELSEWHERE;

	CHECK_EQ(store_replace_occurrences(s, "r@example.com", 1699990000, 1701000000, in, 3, NULL,
	                                   &e),
	         0);
	CHECK_EQ(store_load_occurrences(s, "R@example.com", &out, &n, &e), 0);
	CHECK_EQ(n, 3);
	if (n == 3) {
		/* Sorted by start, then item_id. */
		CHECK(occ_equal(&out[0], &in[1]));
		CHECK(occ_equal(&out[1], &in[2]));
		CHECK(occ_equal(&out[2], &in[0]));
		CHECK_EQ(out[2].n_categories, 3);
	}
	cal_occurrences_free(out, n);
	CHECK_EQ(store_mailbox_get(s, "r@example.com", &mb, &e), 0);
	CHECK_EQ(mb.window_start_utc, 1699990000);
	CHECK_EQ(mb.window_end_utc, 1701000000);
	store_mailbox_clear(&mb);

	/* An empty window mirror loads as no array. */
	CHECK_EQ(store_replace_occurrences(s, "r@example.com", 1, 2, NULL, 0, NULL, &e), 0);
	CHECK_EQ(store_load_occurrences(s, "r@example.com", &out, &n, &e), 0);
	CHECK_EQ(n, 0);
	CHECK(out == NULL);
	CHECK_EQ(store_load_occurrences(s, "nobody@example.com", &out, &n, &e), -ENOENT);
	occs_clear(in, 3);
	store_close(s);
	tmp_remove(&t);
}

TEST(occurrences_bad_input_is_refused)
{
	struct tmp t;
	struct store *s;
	struct cal_occurrence in[2];
	struct store_diff d = {0};
	struct err e = {0};

	tmp_make(&t);
	s = open_ok(t.path);
	CHECK_EQ(store_mailbox_add(s, "r@example.com", NULL, NULL, &e), 0);
	in[0] = occ("A", "1", 10, 20);
	in[1] = occ("A", "2", 30, 40);
	CHECK_EQ(store_replace_occurrences(s, "r@example.com", 0, 100, in, 2, &d, &e), -EINVAL);
	CHECK(strstr(e.msg, "duplicate") != NULL);
	CHECK(d.entries == NULL);
	set_str(&in[1].item_id, "B");
	CHECK_EQ(store_replace_occurrences(s, "r@example.com", 100, 100, in, 2, &d, &e), -EINVAL);
	CHECK_EQ(store_replace_occurrences(s, "nobody@example.com", 0, 100, in, 2, &d, &e),
	         -ENOENT);
	in[1].end_utc = 29;
	CHECK_EQ(store_replace_occurrences(s, "r@example.com", 0, 100, in, 2, &d, &e), -EINVAL);
	in[1].end_utc = 40;
	add_category(&in[1], "a\x1f"
	                     "b");
	CHECK_EQ(store_replace_occurrences(s, "r@example.com", 0, 100, in, 2, &d, &e), -EINVAL);
	cal_occurrence_clear(&in[1]);
	in[1] = occ("B", "2", 30, 40);
	in[1].free_busy = (enum cal_fb)42;
	CHECK_EQ(store_replace_occurrences(s, "r@example.com", 0, 100, in, 2, &d, &e), -EINVAL);
	in[1].free_busy = CAL_FB_FREE;
	in[1].subject = xmalloc(STORE_MAX_TEXT + 2);
	memset(in[1].subject, 's', STORE_MAX_TEXT + 1);
	in[1].subject[STORE_MAX_TEXT + 1] = '\0';
	CHECK_EQ(store_replace_occurrences(s, "r@example.com", 0, 100, in, 2, &d, &e), -EMSGSIZE);
	set_str(&in[1].item_id, NULL);
	CHECK_EQ(store_replace_occurrences(s, "r@example.com", 0, 100, in, 2, &d, &e), -EINVAL);
	CHECK_EQ(store_replace_occurrences(s, "r@example.com", 0, 100, in,
	                                   STORE_MAX_OCCURRENCES + 1, &d, &e),
	         -EMSGSIZE);
	occs_clear(in, 2);
	store_close(s);
	tmp_remove(&t);
}

TEST(occurrences_diff)
{
	struct tmp t;
	struct store *s;
	struct cal_occurrence in[4];
	struct store_diff d = {0};
	const struct store_diff_entry *x;
	struct err e = {0};

	tmp_make(&t);
	s = open_ok(t.path);
	CHECK_EQ(store_mailbox_add(s, "d@example.com", NULL, NULL, &e), 0);
	in[0] = occ("keep", "k1", 100, 200);
	in[1] = occ("move", "m1", 300, 400);
	in[2] = occ("gone", "g1", 500, 600);
	in[3] = occ("ck-only", "c1", 700, 800);
	add_category(&in[0], "Blau");

	CHECK_EQ(store_replace_occurrences(s, "d@example.com", 0, 1000, in, 4, &d, &e), 0);
	CHECK_EQ(d.n, 4);
	CHECK_EQ(d.n_added, 4);
	CHECK_EQ(d.n_unchanged, 0);
	x = diff_find(&d, "gone");
	CHECK(x != NULL && x->change == STORE_ADDED && strcmp(x->change_key, "g1") == 0);
	store_diff_clear(&d);

	/* The same input again: nothing changed. */
	CHECK_EQ(store_replace_occurrences(s, "d@example.com", 0, 1000, in, 4, &d, &e), 0);
	CHECK_EQ(d.n, 0);
	CHECK_EQ(d.n_unchanged, 4);
	CHECK(d.entries == NULL);
	store_diff_clear(&d);

	/* Move one, drop one, change only the ChangeKey of one, add one, keep one. */
	in[1].start_utc = 310;
	set_str(&in[1].change_key, "m2");
	set_str(&in[1].subject, "moved");
	set_str(&in[3].change_key, "c2");
	cal_occurrence_clear(&in[2]);
	in[2] = occ("new", "n1", 900, 950);
	CHECK_EQ(store_replace_occurrences(s, "d@example.com", 0, 1000, in, 4, &d, &e), 0);
	CHECK_EQ(d.n, 4);
	CHECK_EQ(d.n_added, 1);
	CHECK_EQ(d.n_changed, 2);
	CHECK_EQ(d.n_removed, 1);
	CHECK_EQ(d.n_unchanged, 1);
	x = diff_find(&d, "move");
	CHECK(x != NULL && x->change == STORE_CHANGED);
	if (x != NULL) {
		CHECK_EQ(x->fields, STORE_F_CHANGE_KEY | STORE_F_TIMES | STORE_F_SUBJECT);
		CHECK_STREQ(x->change_key, "m2");
	}
	x = diff_find(&d, "ck-only");
	CHECK(x != NULL && x->change == STORE_CHANGED && x->fields == STORE_F_CHANGE_KEY);
	x = diff_find(&d, "gone");
	CHECK(x != NULL && x->change == STORE_REMOVED && strcmp(x->change_key, "g1") == 0);
	x = diff_find(&d, "new");
	CHECK(x != NULL && x->change == STORE_ADDED);
	CHECK(diff_find(&d, "keep") == NULL);
	/* Entries are sorted by item_id. */
	for (size_t i = 1; i < d.n; i++)
		CHECK(strcmp(d.entries[i - 1].item_id, d.entries[i].item_id) < 0);
	store_diff_clear(&d);

	/* A change the ChangeKey does not show (same key, other category) is still seen. */
	add_category(&in[0], "Grün");
	CHECK_EQ(store_replace_occurrences(s, "d@example.com", 0, 1000, in, 4, &d, &e), 0);
	CHECK_EQ(d.n, 1);
	CHECK(d.n == 1 && d.entries[0].fields == STORE_F_CATEGORIES);
	store_diff_clear(&d);

	/* Everything removed. */
	CHECK_EQ(store_replace_occurrences(s, "d@example.com", 0, 1000, NULL, 0, &d, &e), 0);
	CHECK_EQ(d.n_removed, 4);
	store_diff_clear(&d);
	store_diff_clear(NULL);
	occs_clear(in, 4);
	store_close(s);
	tmp_remove(&t);
}

TEST(replace_is_all_or_nothing)
{
	struct tmp t;
	struct store *s;
	struct cal_occurrence in[3];
	struct cal_occurrence next[3];
	struct cal_occurrence *out = NULL;
	struct store_mailbox mb = {0};
	struct store_diff d = {0};
	size_t n = 0;
	struct err e = {0};

	tmp_make(&t);
	s = open_ok(t.path);
	CHECK_EQ(store_mailbox_add(s, "x@example.com", NULL, NULL, &e), 0);
	in[0] = occ("a", "1", 100, 200);
	in[1] = occ("b", "1", 300, 400);
	in[2] = occ("c", "1", 500, 600);
	CHECK_EQ(store_replace_occurrences(s, "x@example.com", 0, 1000, in, 3, NULL, &e), 0);

	/* Remove a, change b, add d: three writes, then the window. Fail at each one in turn. */
	next[0] = occ("b", "2", 300, 450);
	next[1] = occ("c", "1", 500, 600);
	next[2] = occ("d", "1", 700, 800);
	for (unsigned k = 1; k <= 4; k++) {
		store_test_fail_write_after(s, k);
		CHECK_EQ(store_replace_occurrences(s, "x@example.com", 50, 2000, next, 3, &d, &e),
		         -EIO);
		CHECK(strstr(e.msg, "injected") != NULL);
		CHECK(d.entries == NULL && d.n == 0);
		CHECK_EQ(store_load_occurrences(s, "x@example.com", &out, &n, &e), 0);
		CHECK_EQ(n, 3);
		for (size_t i = 0; i < n && n == 3; i++)
			CHECK(occ_equal(&out[i], &in[i]));
		cal_occurrences_free(out, n);
		CHECK_EQ(store_mailbox_get(s, "x@example.com", &mb, &e), 0);
		CHECK_EQ(mb.window_start_utc, 0);
		CHECK_EQ(mb.window_end_utc, 1000);
		store_mailbox_clear(&mb);
	}
	store_test_fail_write_after(s, 0);
	CHECK_EQ(store_replace_occurrences(s, "x@example.com", 50, 2000, next, 3, &d, &e), 0);
	CHECK_EQ(d.n_removed + d.n_changed + d.n_added, 3);
	store_diff_clear(&d);
	CHECK_EQ(store_load_occurrences(s, "x@example.com", &out, &n, &e), 0);
	CHECK_EQ(n, 3);
	for (size_t i = 0; i < n && n == 3; i++)
		CHECK(occ_equal(&out[i], &next[i]));
	cal_occurrences_free(out, n);
	occs_clear(in, 3);
	occs_clear(next, 3);
	store_close(s);
	tmp_remove(&t);
}

TEST(presence_and_events)
{
	struct tmp t;
	struct store *s;
	struct store_presence p = {0};
	struct store_presence_event *evs = NULL;
	size_t n = 0;
	int64_t id1 = 0;
	int64_t id2 = 0;
	int64_t id3 = 0;
	struct err e = {0};
	struct store_presence busy = {
		.state = (char[]){"busy"},
		.profile = (char[]){"Meeting"},
		.forward = (char[]){"+49 30 1234"},
		.subject = (char[]){"Planung – Q3"},
		.since_utc = 1700000000,
		.until_utc = 1700003600,
		.next_change_utc = 1700003600,
		.updated_utc = 1700000001,
	};
	struct store_presence free_ = {.state = (char[]){"free"}, .updated_utc = 1700003601};

	tmp_make(&t);
	s = open_ok(t.path);
	CHECK_EQ(store_mailbox_add(s, "u@example.com", NULL, NULL, &e), 0);
	CHECK_EQ(store_mailbox_add(s, "v@example.com", NULL, NULL, &e), 0);
	CHECK_EQ(store_presence_get(s, "u@example.com", &p, &e), -ENOENT);
	CHECK_EQ(store_presence_put(s, "u@example.com", &busy, &e), 0);
	CHECK_EQ(store_presence_get(s, "u@example.com", &p, &e), 0);
	CHECK_STREQ(p.state, "busy");
	CHECK_STREQ(p.profile, "Meeting");
	CHECK_STREQ(p.forward, "+49 30 1234");
	CHECK_STREQ(p.subject, "Planung – Q3");
	CHECK_EQ(p.since_utc, 1700000000);
	CHECK_EQ(p.until_utc, 1700003600);
	CHECK_EQ(p.next_change_utc, 1700003600);
	CHECK_EQ(p.updated_utc, 1700000001);
	store_presence_clear(&p);
	/* Replacing with NULLs and "none" instants. */
	CHECK_EQ(store_presence_put(s, "u@example.com", &free_, &e), 0);
	CHECK_EQ(store_presence_get(s, "u@example.com", &p, &e), 0);
	CHECK_STREQ(p.state, "free");
	CHECK(p.profile == NULL && p.subject == NULL);
	CHECK_EQ(p.until_utc, 0);
	store_presence_clear(&p);
	CHECK_EQ(store_presence_put(s, "nobody@example.com", &free_, &e), -ENOENT);
	CHECK_EQ(store_presence_put(s, "u@example.com", &(struct store_presence){0}, &e), -EINVAL);

	CHECK_EQ(store_append_presence_event(s, "u@example.com", &busy, "appointment-start", &id1,
	                                     &e),
	         0);
	CHECK_EQ(store_presence_record(s, "v@example.com", &busy, NULL, &id2, &e), 0);
	CHECK(id1 > 0);
	CHECK(id2 > id1);
	CHECK_EQ(store_append_presence_event(s, "nobody@example.com", &busy, NULL, &id3, &e),
	         -ENOENT);
	/* record is atomic: the event write fails, so the presence is not stored either. */
	store_test_fail_write_after(s, 2);
	CHECK_EQ(store_presence_record(s, "u@example.com", &busy, "x", &id3, &e), -EIO);
	CHECK_EQ(store_presence_get(s, "u@example.com", &p, &e), 0);
	CHECK_STREQ(p.state, "free");
	store_presence_clear(&p);
	store_close(s);

	/* Ids keep increasing after a restart, and the log is read in order from any id. */
	s = open_ok(t.path);
	CHECK_EQ(store_presence_record(s, "u@example.com", &free_, "appointment-end", &id3, &e), 0);
	CHECK(id3 > id2);
	CHECK_EQ(store_presence_get(s, "v@example.com", &p, &e), 0);
	CHECK_STREQ(p.state, "busy");
	store_presence_clear(&p);
	CHECK_EQ(store_presence_events_after(s, 0, 100, &evs, &n, &e), 0);
	CHECK_EQ(n, 3);
	if (n == 3) {
		CHECK_EQ(evs[0].id, id1);
		CHECK_STREQ(evs[0].smtp, "u@example.com");
		CHECK_STREQ(evs[0].reason, "appointment-start");
		CHECK_STREQ(evs[0].presence.subject, "Planung – Q3");
		CHECK_EQ(evs[0].presence.until_utc, 1700003600);
		CHECK_EQ(evs[1].id, id2);
		CHECK_STREQ(evs[1].smtp, "v@example.com");
		CHECK(evs[1].reason == NULL);
		CHECK_EQ(evs[2].id, id3);
		CHECK_STREQ(evs[2].presence.state, "free");
	}
	store_presence_events_free(evs, n);
	CHECK_EQ(store_presence_events_after(s, id1, 1, &evs, &n, &e), 0);
	CHECK_EQ(n, 1);
	CHECK(n == 1 && evs[0].id == id2);
	store_presence_events_free(evs, n);
	CHECK_EQ(store_presence_events_after(s, id3, 10, &evs, &n, &e), 0);
	CHECK_EQ(n, 0);
	CHECK(evs == NULL);
	CHECK_EQ(store_presence_events_after(s, 0, 0, &evs, &n, &e), -EINVAL);
	CHECK_EQ(store_presence_events_after(s, 0, STORE_MAX_EVENTS_PAGE + 1, &evs, &n, &e),
	         -EINVAL);
	store_close(s);
	tmp_remove(&t);
}

TEST(webhook_cursors)
{
	struct tmp t;
	struct store *s;
	struct store *r;
	struct err e = {0};
	struct store_presence busy = {.state = (char[]){"busy"}};
	int64_t id1 = 0;
	int64_t id2 = 0;
	int64_t v = -1;
	char long_url[STORE_MAX_URL + 2];

	tmp_make(&t);
	s = open_ok(t.path);
	/* An empty log: a new target starts at 0. */
	CHECK_EQ(store_presence_events_last_id(s, &v, &e), 0);
	CHECK_EQ(v, 0);
	CHECK_EQ(store_mailbox_add(s, "u@example.com", NULL, NULL, &e), 0);
	CHECK_EQ(store_presence_record(s, "u@example.com", &busy, NULL, &id1, &e), 0);
	CHECK_EQ(store_presence_record(s, "u@example.com", &busy, NULL, &id2, &e), 0);
	CHECK_EQ(store_presence_events_last_id(s, &v, &e), 0);
	CHECK_EQ(v, id2);

	v = 77;
	CHECK_EQ(store_webhook_cursor_get(s, "http://a.example/hook", &v, &e), -ENOENT);
	CHECK_EQ(v, 77); /* not written on failure */
	CHECK_EQ(store_webhook_cursor_set(s, "http://a.example/hook", id1, &e), 0);
	CHECK_EQ(store_webhook_cursor_set(s, "http://b.example/hook", 0, &e), 0);
	CHECK_EQ(store_webhook_cursor_get(s, "http://a.example/hook", &v, &e), 0);
	CHECK_EQ(v, id1);
	CHECK_EQ(store_webhook_cursor_set(s, "http://a.example/hook", id2, &e), 0);
	CHECK_EQ(store_webhook_cursor_get(s, "http://a.example/hook", &v, &e), 0);
	CHECK_EQ(v, id2);
	CHECK_EQ(store_webhook_cursor_get(s, "http://b.example/hook", &v, &e), 0);
	CHECK_EQ(v, 0);
	/* URLs are compared exactly. */
	CHECK_EQ(store_webhook_cursor_get(s, "http://A.example/hook", &v, &e), -ENOENT);
	CHECK_EQ(store_webhook_cursor_set(s, "http://a.example/hook", -1, &e), -EINVAL);
	CHECK_EQ(store_webhook_cursor_set(s, NULL, 1, &e), -EINVAL);
	CHECK_EQ(store_webhook_cursor_set(s, "", 1, &e), -EINVAL);
	memset(long_url, 'x', sizeof(long_url) - 1);
	long_url[sizeof(long_url) - 1] = '\0';
	CHECK_EQ(store_webhook_cursor_set(s, long_url, 1, &e), -EMSGSIZE);
	CHECK_EQ(store_webhook_cursor_get(s, long_url, &v, &e), -EMSGSIZE);
	store_test_fail_write_after(s, 1);
	CHECK_EQ(store_webhook_cursor_set(s, "http://a.example/hook", 1, &e), -EIO);
	CHECK_EQ(store_webhook_cursor_get(s, "http://a.example/hook", &v, &e), 0);
	CHECK_EQ(v, id2);

	/* Another connection (the webhook thread's) sees the cursor and the log. */
	r = open_ok(t.path);
	CHECK_EQ(store_webhook_cursor_get(r, "http://a.example/hook", &v, &e), 0);
	CHECK_EQ(v, id2);
	store_close(r);
	store_close(s);

	tmp_remove(&t);
}

TEST(writer_and_reader_connections)
{
	struct tmp t;
	struct store *w;
	struct store *r;
	struct cal_occurrence in[2];
	struct cal_occurrence *out = NULL;
	struct store_mailbox *mbs = NULL;
	struct store_presence p = {0};
	size_t n = 0;
	int64_t id = 0;
	struct err e = {0};

	tmp_make(&t);
	w = open_ok(t.path);
	r = open_ok(t.path); /* a second open of a current database: fine, changes nothing */
	CHECK_EQ(store_schema_version(r), STORE_SCHEMA_VERSION);
	CHECK_EQ(store_mailbox_add(w, "m@example.com", NULL, NULL, &e), 0);
	CHECK_EQ(store_mailbox_list(r, STORE_MB_ALL, &mbs, &n, &e), 0);
	CHECK_EQ(n, 1);
	store_mailboxes_free(mbs, n);

	in[0] = occ("a", "1", 100, 200);
	in[1] = occ("b", "1", 300, 400);
	CHECK_EQ(store_replace_occurrences(w, "m@example.com", 0, 1000, in, 2, NULL, &e), 0);
	CHECK_EQ(store_load_occurrences(r, "m@example.com", &out, &n, &e), 0);
	CHECK_EQ(n, 2);
	cal_occurrences_free(out, n);
	/* Reads take no lock the writer waits for: writes interleave with reads freely. */
	for (int i = 0; i < 20; i++) {
		in[0].end_utc = 200 + i;
		CHECK_EQ(store_replace_occurrences(w, "m@example.com", 0, 1000, in, 2, NULL, &e),
		         0);
		CHECK_EQ(store_load_occurrences(r, "m@example.com", &out, &n, &e), 0);
		CHECK(n == 2 && out[0].end_utc == 200 + i);
		cal_occurrences_free(out, n);
	}
	CHECK_EQ(store_presence_record(w, "m@example.com",
	                               &(struct store_presence){.state = (char[]){"busy"}}, NULL,
	                               &id, &e),
	         0);
	CHECK_EQ(store_presence_get(r, "m@example.com", &p, &e), 0);
	CHECK_STREQ(p.state, "busy");
	store_presence_clear(&p);
	occs_clear(in, 2);
	store_close(r);
	store_close(w);
	tmp_remove(&t);
}

static int hook_calls;

static void open_batch(void *ctx)
{
	struct store *s = ctx;
	struct err e = {0};

	hook_calls++;
	CHECK_EQ(store_batch_begin(s, &e), 0);
}

/* A batch is one transaction: another connection sees none of it until the commit, then all of
 * it; a function that fails inside it undoes only its own changes; the write hook opens it. */
TEST(write_batches)
{
	struct tmp t;
	struct store *w;
	struct store *r;
	struct cal_occurrence in[2];
	struct cal_occurrence *out = NULL;
	struct store_mailbox mb = {0};
	size_t n = 0;
	int64_t id = 0;
	int64_t last = 0;
	struct err e = {0};

	tmp_make(&t);
	w = open_ok(t.path);
	r = open_ok(t.path);
	CHECK_EQ(store_batch_commit(w, &e), -EINVAL);
	CHECK_EQ(store_mailbox_add(w, "a@example.com", NULL, NULL, &e), 0);

	CHECK_EQ(store_batch_begin(w, &e), 0);
	CHECK(store_in_batch(w));
	CHECK_EQ(store_batch_begin(w, &e), -EINVAL);
	CHECK_EQ(store_mailbox_add(w, "b@example.com", NULL, NULL, &e), 0);
	CHECK_EQ(store_mailbox_set_state(w, "a@example.com", STORE_MB_LIVE, NULL, &e), 0);
	in[0] = occ("x", "1", 100, 200);
	in[1] = occ("y", "1", 300, 400);
	CHECK_EQ(store_replace_occurrences(w, "a@example.com", 0, 1000, in, 2, NULL, &e), 0);
	CHECK_EQ(store_presence_record(w, "a@example.com",
	                               &(struct store_presence){.state = (char[]){"busy"}}, NULL,
	                               &id, &e),
	         0);
	/* The writer reads its own batch. */
	CHECK_EQ(store_load_occurrences(w, "a@example.com", &out, &n, &e), 0);
	CHECK_EQ(n, 2);
	cal_occurrences_free(out, n);
	/* A failing function undoes its own writes only (the second row write fails). */
	in[0].end_utc = 250;
	store_test_fail_write_after(w, 2);
	CHECK(store_replace_occurrences(w, "a@example.com", 0, 2000, in, 2, NULL, &e) < 0);
	store_test_fail_write_after(w, 0);
	CHECK(store_in_batch(w));
	/* Nothing is visible to the other connection yet. */
	CHECK_EQ(store_mailbox_get(r, "b@example.com", &mb, &e), -ENOENT);
	CHECK_EQ(store_load_occurrences(r, "a@example.com", &out, &n, &e), 0);
	CHECK_EQ(n, 0);
	cal_occurrences_free(out, n);
	CHECK_EQ(store_presence_events_last_id(r, &last, &e), 0);
	CHECK_EQ(last, 0);

	CHECK_EQ(store_batch_commit(w, &e), 0);
	CHECK(!store_in_batch(w));
	CHECK_EQ(store_mailbox_get(r, "b@example.com", &mb, &e), 0);
	store_mailbox_clear(&mb);
	CHECK_EQ(store_mailbox_get(r, "a@example.com", &mb, &e), 0);
	CHECK_EQ(mb.state, STORE_MB_LIVE);
	CHECK_EQ(mb.window_end_utc, 1000); /* the failed replace left the first one */
	store_mailbox_clear(&mb);
	CHECK_EQ(store_load_occurrences(r, "a@example.com", &out, &n, &e), 0);
	CHECK(n == 2 && out[0].end_utc == 200);
	cal_occurrences_free(out, n);
	CHECK_EQ(store_presence_events_last_id(r, &last, &e), 0);
	CHECK_EQ(last, id);

	/* The hook opens a batch at the first write, not at reads; later writes join it. */
	hook_calls = 0;
	store_set_write_hook(w, open_batch, w);
	CHECK_EQ(store_load_occurrences(w, "a@example.com", &out, &n, &e), 0);
	cal_occurrences_free(out, n);
	CHECK_EQ(hook_calls, 0);
	CHECK(!store_in_batch(w));
	CHECK_EQ(store_mailbox_set_state(w, "b@example.com", STORE_MB_SYNCING, NULL, &e), 0);
	CHECK_EQ(store_mailbox_add(w, "c@example.com", NULL, NULL, &e), 0);
	CHECK_EQ(hook_calls, 1);
	CHECK(store_in_batch(w));
	CHECK_EQ(store_mailbox_get(r, "c@example.com", &mb, &e), -ENOENT);
	CHECK_EQ(store_batch_commit(w, &e), 0);
	CHECK_EQ(store_mailbox_get(r, "c@example.com", &mb, &e), 0);
	store_mailbox_clear(&mb);
	store_set_write_hook(w, NULL, NULL);
	CHECK_EQ(store_mailbox_add(w, "d@example.com", NULL, NULL, &e), 0);
	CHECK_EQ(hook_calls, 1);
	CHECK(!store_in_batch(w));

	occs_clear(in, 2);
	store_close(r);
	store_close(w);
	tmp_remove(&t);
}

TEST(performance_sanity)
{
	enum {
		MAILBOXES = 2000,
		OCCS = 20
	};
	struct tmp t;
	struct store *s;
	struct cal_occurrence in[OCCS];
	struct store_diff d = {0};
	char smtp[64];
	char id[64];
	double t0;
	double t_add;
	double t_first;
	double t_same;
	double t_change;
	double t_wm;
	int fails = 0;

	tmp_make(&t);
	s = open_ok(t.path);
	for (int j = 0; j < OCCS; j++) {
		(void)snprintf(id, sizeof(id), "AAMkADk5NjYxLTE0ZjItNDcx-item-%02d", j);
		in[j] = occ(id, "DwAAABYAAAA", 1700000000 + j * 3600, 1700001800 + j * 3600);
		set_str(&in[j].subject, "Weekly sync with the team");
		set_str(&in[j].organizer, "Someone Important");
		add_category(&in[j], "Blue category");
	}
	t0 = now_sec();
	for (int i = 0; i < MAILBOXES; i++) {
		(void)snprintf(smtp, sizeof(smtp), "user%05d@example.com", i);
		fails +=
			store_mailbox_add(s, smtp, "https://ex/EWS/Exchange.asmx", NULL, NULL) != 0;
	}
	t_add = now_sec() - t0;
	t0 = now_sec();
	for (int i = 0; i < MAILBOXES; i++) {
		(void)snprintf(smtp, sizeof(smtp), "user%05d@example.com", i);
		fails += store_replace_occurrences(s, smtp, 1699990000, 1701000000, in, OCCS, NULL,
		                                   NULL) != 0;
	}
	t_first = now_sec() - t0;
	t0 = now_sec();
	for (int i = 0; i < MAILBOXES; i++) {
		(void)snprintf(smtp, sizeof(smtp), "user%05d@example.com", i);
		fails += store_replace_occurrences(s, smtp, 1699990000, 1701000000, in, OCCS, &d,
		                                   NULL) != 0;
		fails += d.n != 0;
		store_diff_clear(&d);
	}
	t_same = now_sec() - t0;
	in[5].end_utc += 600;
	t0 = now_sec();
	for (int i = 0; i < MAILBOXES; i++) {
		(void)snprintf(smtp, sizeof(smtp), "user%05d@example.com", i);
		fails += store_replace_occurrences(s, smtp, 1699990000, 1701000000, in, OCCS, &d,
		                                   NULL) != 0;
		fails += d.n != 1;
		store_diff_clear(&d);
	}
	t_change = now_sec() - t0;
	for (int i = 0; i < MAILBOXES; i++) {
		(void)snprintf(smtp, sizeof(smtp), "user%05d@example.com", i);
		fails += store_subscription_put(s, smtp,
		                                &(struct store_subscription){.id = (char[]){"s"},
		                                                             .created_utc = 1},
		                                NULL) != 0;
	}
	t0 = now_sec();
	for (int i = 0; i < MAILBOXES; i++) {
		(void)snprintf(smtp, sizeof(smtp), "user%05d@example.com", i);
		fails += store_subscription_set_watermark(s, smtp, "AQAAAAAAAAAAAAAAAAAA", 20,
		                                          NULL) != 0;
	}
	t_wm = now_sec() - t0;
	CHECK_EQ(fails, 0);
	/* Printed, not asserted: machines differ too much for a threshold. */
	printf("# %d mailboxes added: %.3f s\n", MAILBOXES, t_add);
	printf("# %d x %d occurrences, first replace: %.3f s (%.0f us/mailbox)\n", MAILBOXES, OCCS,
	       t_first, t_first / MAILBOXES * 1e6);
	printf("# unchanged replace: %.3f s (%.0f us/mailbox)\n", t_same, t_same / MAILBOXES * 1e6);
	printf("# one-change replace: %.3f s (%.0f us/mailbox)\n", t_change,
	       t_change / MAILBOXES * 1e6);
	printf("# watermark update: %.0f us each\n", t_wm / MAILBOXES * 1e6);
	occs_clear(in, OCCS);
	store_close(s);
	tmp_remove(&t);
}

int main(void)
{
	const char *only = getenv("CALSYNC_TEST_STORE");
	size_t ran = 0;

	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		if (only != NULL && only[0] != '\0' && strcmp(only, backends[i].name) != 0)
			continue;
		backend = &backends[i];
		ran++;
		printf("# store implementation: %s\n", backend->name);
		RUN(open_creates_migrates_and_reopens);
		RUN(mailboxes);
		RUN(subscriptions_and_byte_exact_watermarks);
		RUN(occurrences_round_trip);
		RUN(occurrences_bad_input_is_refused);
		RUN(occurrences_diff);
		RUN(replace_is_all_or_nothing);
		RUN(presence_and_events);
		RUN(webhook_cursors);
		RUN(writer_and_reader_connections);
		RUN(write_batches);
		RUN(performance_sanity);
	}
	if (ran == 0) {
		fprintf(stderr, "CALSYNC_TEST_STORE=%s: no such store implementation\n", only);
		return 1;
	}
	return harness_done();
}
