/* SPDX-License-Identifier: MIT */
/*
 * test-sync-ews-convert.c: CalendarView items to occurrences: every field, every skip rule, every
 * enum mapping, private and confidential, duplicates (against a naive reference on a large
 * random input), the size limit, a real Exchange GetItem answer from the msdocs fixtures and a
 * CalendarView answer, both parsed by ews_response_parse, and a round trip through the store.
 */
#include "sync/ews-convert.h"

#include <errno.h>
#include <unistd.h>

#include "base/err.h"
#include "base/iso8601.h"
#include "base/xalloc.h"
#include "cal/occurrence.h"
#include "cal/presence.h"
#include "ews/ews-response.h"
#include "harness.h"
#include "store/store.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* 2025-03-03T09:00:00Z */
#define T0 INT64_C(1740992400)

/* ews_cal_item holds char *, so the test strings are writable arrays. */
static char s_id_a[] = "AAMkAD-A";
static char s_id_b[] = "AAMkAD-B";
static char s_id_c[] = "AAMkAD-C";
static char s_id_empty[] = "";
static char s_ck[] = "DwAAABYA";
static char s_uid[] = "040000008200E00074C5B7101A82E008";
static char s_subject[] = "Kundentermin \303\234berlingen"; /* UTF-8 */
static char s_subject2[] = "Standup";
static char s_location[] = "Room 4.01";
static char s_organizer[] = "ann@contoso.example";
static char s_tz[] = "W. Europe Standard Time";
static char s_cat_red[] = "Red category";
static char s_cat_visit[] = "Customer visit";

/* A complete, valid single appointment. */
static struct ews_cal_item item(char *id, int64_t start, int64_t end)
{
	return (struct ews_cal_item){
		.is_calendar_item = true,
		.item_id = id,
		.has_start = true,
		.has_end = true,
		.start_utc = start,
		.end_utc = end,
		.free_busy = EWS_FB_BUSY,
		.sensitivity = EWS_SENS_NORMAL,
		.item_type = EWS_ITEM_SINGLE,
	};
}

struct conv {
	int rc;
	struct err err;
	struct cal_occurrence *occs;
	size_t n;
	size_t skipped;
};

static struct conv convert(const struct ews_cal_item *items, size_t n)
{
	struct conv c = {0};

	c.skipped = 4242; /* garbage: must be overwritten */
	c.rc = sync_items_to_occurrences(items, n, &c.occs, &c.n, &c.skipped, &c.err);
	if (c.rc != 0)
		fprintf(stderr, "sync_items_to_occurrences: %d %s\n", c.rc, c.err.msg);
	CHECK_EQ(c.rc, 0);
	CHECK((c.n == 0) == (c.occs == NULL));
	if (c.rc == 0)
		CHECK_EQ(c.n + c.skipped, n);
	return c;
}

static void conv_free(struct conv *c)
{
	cal_occurrences_free(c->occs, c->n);
	*c = (struct conv){0};
}

static int64_t utc(const char *iso)
{
	int64_t t = 0;

	if (iso8601_parse(iso, strlen(iso), &t, NULL, NULL) != 0)
		harness_fail(__FILE__, __LINE__, "bad test time '%s'", iso);
	return t;
}

/* ---- the simple cases ---- */

TEST(empty_input)
{
	struct cal_occurrence *occs = (struct cal_occurrence *)&occs; /* garbage */
	size_t n = 99;
	size_t skipped = 99;

	CHECK_EQ(sync_items_to_occurrences(NULL, 0, &occs, &n, &skipped, NULL), 0);
	CHECK(occs == NULL);
	CHECK_EQ(n, 0);
	CHECK_EQ(skipped, 0);
	/* out_skipped may be NULL. */
	n = 99;
	CHECK_EQ(sync_items_to_occurrences(NULL, 0, &occs, &n, NULL, NULL), 0);
	CHECK(occs == NULL);
	CHECK_EQ(n, 0);
}

TEST(every_field_is_copied)
{
	char *cats[] = {s_cat_red, s_cat_visit};
	struct ews_cal_item it = item(s_id_a, T0, T0 + 1800);
	struct conv c;
	const struct cal_occurrence *o;

	it.change_key = s_ck;
	it.uid = s_uid;
	it.subject = s_subject;
	it.location = s_location;
	it.organizer = s_organizer;
	it.start_tz_id = s_tz;
	it.has_recurrence_id = true;
	it.recurrence_id_utc = T0;
	it.has_all_day = true;
	it.all_day = false;
	it.has_cancelled = true;
	it.is_cancelled = false;
	it.free_busy = EWS_FB_OOF;
	it.item_type = EWS_ITEM_OCCURRENCE;
	it.categories = cats;
	it.n_categories = N(cats);
	c = convert(&it, 1);
	CHECK_EQ(c.n, 1);
	CHECK_EQ(c.skipped, 0);
	if (c.n != 1)
		goto out;
	o = &c.occs[0];
	CHECK_STREQ(o->item_id, s_id_a);
	CHECK_STREQ(o->change_key, s_ck);
	CHECK_STREQ(o->uid, s_uid);
	CHECK_STREQ(o->subject, s_subject);
	CHECK_STREQ(o->location, s_location);
	CHECK_STREQ(o->organizer, s_organizer);
	/* Copies, not borrowed pointers. */
	CHECK(o->item_id != s_id_a && o->change_key != s_ck && o->uid != s_uid);
	CHECK(o->subject != s_subject && o->location != s_location && o->organizer != s_organizer);
	CHECK_EQ(o->start_utc, T0);
	CHECK_EQ(o->end_utc, T0 + 1800);
	CHECK(!o->all_day);
	CHECK(!o->is_cancelled);
	CHECK(!o->is_private);
	CHECK_EQ(o->free_busy, CAL_FB_OOF);
	CHECK_EQ(o->type, CAL_ITEM_OCCURRENCE);
	CHECK_EQ(o->n_categories, 2);
	if (o->n_categories == 2) {
		CHECK(o->categories != cats);
		CHECK_STREQ(o->categories[0], s_cat_red);
		CHECK_STREQ(o->categories[1], s_cat_visit);
		CHECK(o->categories[0] != s_cat_red && o->categories[1] != s_cat_visit);
	}
out:
	conv_free(&c);
}

TEST(absent_strings_stay_null)
{
	struct ews_cal_item it = item(s_id_a, T0, T0 + 60);
	struct conv c = convert(&it, 1);

	CHECK_EQ(c.n, 1);
	if (c.n == 1) {
		CHECK_STREQ(c.occs[0].item_id, s_id_a);
		CHECK(c.occs[0].change_key == NULL);
		CHECK(c.occs[0].uid == NULL);
		CHECK(c.occs[0].subject == NULL);
		CHECK(c.occs[0].location == NULL);
		CHECK(c.occs[0].organizer == NULL);
		CHECK(c.occs[0].categories == NULL);
		CHECK_EQ(c.occs[0].n_categories, 0);
	}
	conv_free(&c);
}

TEST(flags_true_and_absent)
{
	struct ews_cal_item items[] = {
		item(s_id_a, T0, T0 + 86400),
		item(s_id_b, T0, T0 + 86400),
		item(s_id_c, T0, T0 + 86400),
	};
	struct conv c;

	/* Present and true. */
	items[0].has_all_day = items[0].all_day = true;
	items[0].has_cancelled = items[0].is_cancelled = true;
	/* Absent: false, whatever the value field says. */
	items[1].all_day = true;
	items[1].is_cancelled = true;
	/* Present and false. */
	items[2].has_all_day = items[2].has_cancelled = true;
	c = convert(items, N(items));
	CHECK_EQ(c.n, 3);
	if (c.n == 3) {
		CHECK(c.occs[0].all_day && c.occs[0].is_cancelled);
		CHECK(!c.occs[1].all_day && !c.occs[1].is_cancelled);
		CHECK(!c.occs[2].all_day && !c.occs[2].is_cancelled);
	}
	conv_free(&c);
}

/* ---- skip rules ---- */

/* Converts one valid item after breaking it with fn, and one untouched item after it. */
static void check_skipped(const char *what, void (*fn)(struct ews_cal_item *))
{
	struct ews_cal_item items[] = {item(s_id_a, T0, T0 + 60), item(s_id_b, T0, T0 + 60)};
	struct conv c;

	fn(&items[0]);
	c = convert(items, N(items));
	if (c.n != 1)
		fprintf(stderr, "skip rule '%s': %zu occurrences\n", what, c.n);
	CHECK_EQ(c.n, 1);
	CHECK_EQ(c.skipped, 1);
	if (c.n == 1)
		CHECK_STREQ(c.occs[0].item_id, s_id_b);
	conv_free(&c);
}

static void break_not_calendar_item(struct ews_cal_item *it)
{
	it->is_calendar_item = false; /* a t:MeetingRequest in the calendar folder */
}

static void break_recurring_master(struct ews_cal_item *it)
{
	it->item_type = EWS_ITEM_RECURRING_MASTER;
}

static void break_no_item_id(struct ews_cal_item *it)
{
	it->item_id = NULL;
}

static void break_empty_item_id(struct ews_cal_item *it)
{
	it->item_id = s_id_empty;
}

static void break_no_start(struct ews_cal_item *it)
{
	it->has_start = false;
}

static void break_no_end(struct ews_cal_item *it)
{
	it->has_end = false;
}

static void break_no_start_no_end(struct ews_cal_item *it)
{
	it->has_start = it->has_end = false;
}

static void break_end_before_start(struct ews_cal_item *it)
{
	it->end_utc = it->start_utc - 1;
}

TEST(skip_rules)
{
	check_skipped("not a calendar item", break_not_calendar_item);
	check_skipped("recurring master", break_recurring_master);
	check_skipped("no ItemId", break_no_item_id);
	check_skipped("empty ItemId", break_empty_item_id);
	check_skipped("no Start", break_no_start);
	check_skipped("no End", break_no_end);
	check_skipped("no Start and no End", break_no_start_no_end);
	check_skipped("End before Start", break_end_before_start);
}

TEST(zero_length_and_extreme_times_are_kept)
{
	struct ews_cal_item items[] = {
		item(s_id_a, T0, T0), /* End == Start: kept (presence ignores it) */
		item(s_id_b, INT64_MIN, INT64_MAX),
		item(s_id_c, -1, 0),
	};
	struct conv c = convert(items, N(items));

	CHECK_EQ(c.n, 3);
	CHECK_EQ(c.skipped, 0);
	if (c.n == 3) {
		CHECK_EQ(c.occs[0].start_utc, T0);
		CHECK_EQ(c.occs[0].end_utc, T0);
		CHECK_EQ(c.occs[1].start_utc, INT64_MIN);
		CHECK_EQ(c.occs[1].end_utc, INT64_MAX);
		CHECK_EQ(c.occs[2].start_utc, -1);
		CHECK_EQ(c.occs[2].end_utc, 0);
	}
	conv_free(&c);
}

TEST(everything_skipped_gives_null)
{
	struct ews_cal_item items[] = {item(NULL, T0, T0 + 60), item(s_id_a, T0, T0 - 60)};
	struct cal_occurrence *occs = (struct cal_occurrence *)&occs;
	size_t n = 99;
	size_t skipped = 0;

	items[1].item_type = EWS_ITEM_RECURRING_MASTER;
	CHECK_EQ(sync_items_to_occurrences(items, N(items), &occs, &n, &skipped, NULL), 0);
	CHECK(occs == NULL);
	CHECK_EQ(n, 0);
	CHECK_EQ(skipped, 2);
}

/* ---- mappings ---- */

TEST(free_busy_mapping)
{
	static const struct {
		enum ews_free_busy in;
		enum cal_fb out;
	} map[] = {
		{EWS_FB_UNKNOWN, CAL_FB_UNKNOWN},
		{EWS_FB_FREE, CAL_FB_FREE},
		{EWS_FB_TENTATIVE, CAL_FB_TENTATIVE},
		{EWS_FB_BUSY, CAL_FB_BUSY},
		{EWS_FB_OOF, CAL_FB_OOF},
		{EWS_FB_WORKING_ELSEWHERE, CAL_FB_WORKING_ELSEWHERE},
		{EWS_FB_NO_DATA, CAL_FB_NO_DATA},
		{(enum ews_free_busy)77, CAL_FB_UNKNOWN}, /* never produced; still safe */
	};
	struct ews_cal_item items[N(map)];
	char ids[N(map)][8];
	struct conv c;

	for (size_t i = 0; i < N(map); i++) {
		(void)snprintf(ids[i], sizeof(ids[i]), "fb%zu", i);
		items[i] = item(ids[i], T0, T0 + 60);
		items[i].free_busy = map[i].in;
	}
	c = convert(items, N(items));
	CHECK_EQ(c.n, N(map));
	for (size_t i = 0; i < c.n && c.n == N(map); i++) {
		CHECK_STREQ(c.occs[i].item_id, ids[i]);
		CHECK_EQ(c.occs[i].free_busy, map[i].out);
	}
	conv_free(&c);
}

TEST(item_type_mapping)
{
	static const struct {
		enum ews_item_type in;
		enum cal_item_type out;
	} map[] = {
		{EWS_ITEM_UNKNOWN, CAL_ITEM_SINGLE},
		{EWS_ITEM_SINGLE, CAL_ITEM_SINGLE},
		{EWS_ITEM_OCCURRENCE, CAL_ITEM_OCCURRENCE},
		{EWS_ITEM_EXCEPTION, CAL_ITEM_EXCEPTION},
		{(enum ews_item_type)77, CAL_ITEM_SINGLE},
	};
	struct ews_cal_item items[N(map)];
	char ids[N(map)][8];
	struct conv c;

	for (size_t i = 0; i < N(map); i++) {
		(void)snprintf(ids[i], sizeof(ids[i]), "t%zu", i);
		items[i] = item(ids[i], T0, T0 + 60);
		items[i].item_type = map[i].in;
	}
	c = convert(items, N(items));
	CHECK_EQ(c.n, N(map));
	for (size_t i = 0; i < c.n && c.n == N(map); i++)
		CHECK_EQ(c.occs[i].type, map[i].out);
	conv_free(&c);
}

TEST(private_and_confidential)
{
	static const struct {
		enum ews_sensitivity in;
		bool is_private;
	} map[] = {
		{EWS_SENS_UNKNOWN, false},     {EWS_SENS_NORMAL, false},
		{EWS_SENS_PERSONAL, false},    {EWS_SENS_PRIVATE, true},
		{EWS_SENS_CONFIDENTIAL, true}, {(enum ews_sensitivity)77, false},
	};
	struct ews_cal_item items[N(map)];
	char ids[N(map)][8];
	struct conv c;
	struct presence p;
	struct presence_rules r = presence_rules_default();

	for (size_t i = 0; i < N(map); i++) {
		(void)snprintf(ids[i], sizeof(ids[i]), "s%zu", i);
		items[i] = item(ids[i], T0 + (int64_t)i * 3600, T0 + (int64_t)i * 3600 + 60);
		items[i].sensitivity = map[i].in;
		items[i].subject = s_subject;
	}
	c = convert(items, N(items));
	CHECK_EQ(c.n, N(map));
	for (size_t i = 0; i < c.n && c.n == N(map); i++) {
		CHECK_EQ(c.occs[i].is_private, map[i].is_private);
		/* The subject is still mirrored; the presence engine hides it. */
		CHECK_STREQ(c.occs[i].subject, s_subject);
		presence_compute(c.occs, c.n, &r, items[i].start_utc, &p);
		CHECK_EQ(p.state, PRESENCE_BUSY);
		CHECK_STREQ(p.subject, map[i].is_private ? "private" : s_subject);
	}
	conv_free(&c);
}

TEST(null_categories_are_dropped)
{
	char *cats[] = {NULL, s_cat_red, NULL, s_cat_visit};
	char *only_null[] = {NULL, NULL};
	struct ews_cal_item items[] = {item(s_id_a, T0, T0 + 60), item(s_id_b, T0, T0 + 60)};
	struct conv c;

	items[0].categories = cats;
	items[0].n_categories = N(cats);
	items[1].categories = only_null;
	items[1].n_categories = N(only_null);
	c = convert(items, N(items));
	CHECK_EQ(c.n, 2);
	if (c.n == 2) {
		CHECK_EQ(c.occs[0].n_categories, 2);
		if (c.occs[0].n_categories == 2) {
			CHECK_STREQ(c.occs[0].categories[0], s_cat_red);
			CHECK_STREQ(c.occs[0].categories[1], s_cat_visit);
		}
		CHECK_EQ(c.occs[1].n_categories, 0);
		CHECK(c.occs[1].categories == NULL);
	}
	conv_free(&c);
}

/* ---- duplicates ---- */

TEST(duplicates_first_wins)
{
	struct ews_cal_item items[] = {
		item(s_id_a, T0, T0 + 60),          item(s_id_b, T0, T0 + 60),
		item(s_id_a, T0 + 600, T0 + 660),   item(s_id_c, T0, T0 + 60),
		item(s_id_b, T0 + 1200, T0 + 1260), item(s_id_a, T0 + 1800, T0 + 1860),
	};
	struct conv c;

	items[0].subject = s_subject;
	items[2].subject = s_subject2;
	c = convert(items, N(items));
	CHECK_EQ(c.n, 3);
	CHECK_EQ(c.skipped, 3);
	if (c.n == 3) {
		/* Input order is kept, and each id keeps its first item. */
		CHECK_STREQ(c.occs[0].item_id, s_id_a);
		CHECK_STREQ(c.occs[0].subject, s_subject);
		CHECK_EQ(c.occs[0].start_utc, T0);
		CHECK_STREQ(c.occs[1].item_id, s_id_b);
		CHECK_EQ(c.occs[1].start_utc, T0);
		CHECK_STREQ(c.occs[2].item_id, s_id_c);
	}
	conv_free(&c);
}

TEST(duplicate_of_a_skipped_item_is_kept)
{
	/* The first A is a recurring master (skipped on its own account), so the occurrence with
	 * the same id is the first that counts and is kept. */
	struct ews_cal_item items[] = {
		item(s_id_a, T0, T0 + 60),
		item(s_id_a, T0 + 600, T0 + 660),
		item(s_id_a, T0 + 1200, T0 + 1260),
	};
	struct conv c;

	items[0].item_type = EWS_ITEM_RECURRING_MASTER;
	items[1].item_type = EWS_ITEM_OCCURRENCE;
	c = convert(items, N(items));
	CHECK_EQ(c.n, 1);
	CHECK_EQ(c.skipped, 2);
	if (c.n == 1) {
		CHECK_EQ(c.occs[0].start_utc, T0 + 600);
		CHECK_EQ(c.occs[0].type, CAL_ITEM_OCCURRENCE);
	}
	conv_free(&c);
}

static uint64_t rng_state = UINT64_C(0x853c49e6748fea9b);

/* xorshift64*: fixed seed, so every run checks the same input. */
static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(0x2545f4914f6cdd1d);
}

TEST(many_duplicates_match_naive_reference)
{
	enum {
		N_ITEMS = 5000,
		N_IDS = 1500
	};

	static char ids[N_IDS][16];
	static struct ews_cal_item items[N_ITEMS];
	static bool want[N_ITEMS];
	size_t n_want = 0;
	size_t j = 0;
	int bad = 0;
	struct conv c;

	for (size_t i = 0; i < N_IDS; i++)
		(void)snprintf(ids[i], sizeof(ids[i]), "id-%zu", i);
	for (size_t i = 0; i < N_ITEMS; i++) {
		items[i] = item(ids[rng() % N_IDS], T0 + (int64_t)i, T0 + (int64_t)i + 60);
		if (rng() % 7 == 0)
			items[i].item_type = EWS_ITEM_RECURRING_MASTER;
		if (rng() % 11 == 0)
			items[i].end_utc = items[i].start_utc - 1;
	}
	/* Naive: keep an item that passes the rules and has no earlier kept item with its id. */
	for (size_t i = 0; i < N_ITEMS; i++) {
		bool ok = items[i].item_type != EWS_ITEM_RECURRING_MASTER &&
		          items[i].end_utc >= items[i].start_utc;

		for (size_t k = 0; ok && k < i; k++)
			ok = !(want[k] && strcmp(items[k].item_id, items[i].item_id) == 0);
		want[i] = ok;
		n_want += ok;
	}
	c = convert(items, N_ITEMS);
	CHECK_EQ(c.n, n_want);
	CHECK_EQ(c.skipped, N_ITEMS - n_want);
	for (size_t i = 0; i < N_ITEMS && c.n == n_want; i++) {
		if (!want[i])
			continue;
		/* start_utc identifies the input item. */
		bad += strcmp(c.occs[j].item_id, items[i].item_id) != 0;
		bad += c.occs[j].start_utc != items[i].start_utc;
		j++;
	}
	CHECK_EQ(bad, 0);
	printf("# %d items, %zu kept\n", N_ITEMS, n_want);
	conv_free(&c);
}

/* ---- the limit ---- */

TEST(too_many_items)
{
	struct ews_cal_item *items = xcalloc(STORE_MAX_OCCURRENCES + 1, sizeof(*items));
	struct cal_occurrence *occs = (struct cal_occurrence *)&items; /* garbage, must stay */
	size_t n = 99;
	size_t skipped = 98;
	struct err e = {0};

	CHECK_EQ(sync_items_to_occurrences(items, STORE_MAX_OCCURRENCES + 1, &occs, &n, &skipped,
	                                   &e),
	         -EMSGSIZE);
	CHECK_EQ(e.code, -EMSGSIZE);
	CHECK(strstr(e.msg, "20001") != NULL);
	CHECK(strstr(e.msg, "20000") != NULL);
	CHECK(occs == (struct cal_occurrence *)&items);
	CHECK_EQ(n, 99);
	CHECK_EQ(skipped, 98);
	/* Without err too. */
	CHECK_EQ(sync_items_to_occurrences(items, STORE_MAX_OCCURRENCES + 1, &occs, &n, NULL, NULL),
	         -EMSGSIZE);

	/* Exactly the limit is fine (all these zeroed items are skipped). */
	CHECK_EQ(sync_items_to_occurrences(items, STORE_MAX_OCCURRENCES, &occs, &n, &skipped, &e),
	         0);
	CHECK(occs == NULL);
	CHECK_EQ(n, 0);
	CHECK_EQ(skipped, STORE_MAX_OCCURRENCES);
	free(items);
}

/* ---- parsed responses ---- */

/* Reads a fixture below $EWS_FIXTURES_DIR into an owned buffer of exactly its size. */
static char *read_fixture(const char *rel, size_t *out_len)
{
	const char *dir = getenv("EWS_FIXTURES_DIR");
	char path[1024];
	FILE *f;
	char *data;
	long size;

	if (dir == NULL) {
		harness_fail(__FILE__, __LINE__,
		             "EWS_FIXTURES_DIR is not set (meson test sets it)");
		return NULL;
	}
	(void)snprintf(path, sizeof(path), "%s/%s", dir, rel);
	f = fopen(path, "rb");
	if (f == NULL) {
		harness_fail(__FILE__, __LINE__, "cannot open %s", path);
		return NULL;
	}
	CHECK(fseek(f, 0, SEEK_END) == 0);
	size = ftell(f);
	CHECK(size > 0);
	rewind(f);
	data = xmalloc(size > 0 ? (size_t)size : 1);
	CHECK(size > 0 && fread(data, 1, (size_t)size, f) == (size_t)size);
	fclose(f);
	*out_len = size > 0 ? (size_t)size : 0;
	return data;
}

static int parse(const char *xml, size_t len, struct ews_response *r)
{
	struct err e = {0};
	int rc = ews_response_parse(xml, len, r, &e);

	if (rc != 0)
		fprintf(stderr, "ews_response_parse: %d %s\n", rc, e.msg);
	CHECK_EQ(rc, 0);
	return rc;
}

/*
 * A GetItem answer of a real Exchange server (Microsoft's documentation, msdocs fixture): one
 * calendar item with every default property, whose t:ConflictingMeetings hold two more
 * t:CalendarItem elements that are not items of the answer.
 */
TEST(msdocs_get_item_fixture)
{
	size_t len = 0;
	char *xml = read_fixture("msdocs/getitem-operation-calendar-item-3.xml", &len);
	struct ews_response r = {0};
	struct conv c = {0};
	const struct cal_occurrence *o;

	if (xml == NULL || parse(xml, len, &r) != 0 || r.n_messages != 1)
		goto out;
	CHECK_EQ(r.messages[0].n_items, 1);
	c = convert(r.messages[0].items, r.messages[0].n_items);
	CHECK_EQ(c.n, 1);
	CHECK_EQ(c.skipped, 0);
	if (c.n != 1)
		goto out;
	o = &c.occs[0];
	CHECK_STREQ(o->item_id, "ASUAdT");
	CHECK_STREQ(o->change_key, "otlIqB==");
	CHECK(o->subject == NULL); /* the item has no t:Subject */
	CHECK(o->location == NULL);
	CHECK(o->uid == NULL);
	CHECK_STREQ(o->organizer, "someone@example.com");
	CHECK_EQ(o->start_utc, utc("2006-06-16T00:30:00Z"));
	CHECK_EQ(o->end_utc, utc("2006-06-16T01:00:00Z"));
	CHECK(!o->all_day);
	CHECK(!o->is_cancelled);
	CHECK(!o->is_private); /* Sensitivity Normal */
	CHECK_EQ(o->free_busy, CAL_FB_BUSY);
	CHECK_EQ(o->type, CAL_ITEM_SINGLE);
	CHECK_EQ(o->n_categories, 0);
out:
	conv_free(&c);
	ews_response_clear(&r);
	free(xml);
}

/*
 * A CalendarView answer in the shape of EWS-REFERENCE.md section 7 (the msdocs fixtures hold
 * only the CalendarView request, calendarview-1.xml): a recurring master (which Exchange does not
 * return with CalendarView, but a mirror must not trust that), occurrences and an exception of
 * it, a meeting request, a private all-day OOF, a confidential cancelled meeting, an item without
 * times, one ending before it starts, and an occurrence repeated at a page boundary.
 */
#define NS_SOAP "http://schemas.xmlsoap.org/soap/envelope/"
#define NS_M    "http://schemas.microsoft.com/exchange/services/2006/messages"
#define NS_T    "http://schemas.microsoft.com/exchange/services/2006/types"

static const char calendar_view[] =
	"<?xml version=\"1.0\" encoding=\"utf-8\"?>"
	"<s:Envelope xmlns:s=\"" NS_SOAP "\"><s:Header>"
	"<h:ServerVersionInfo MajorVersion=\"15\" MinorVersion=\"2\" MajorBuildNumber=\"1748\" "
	"MinorBuildNumber=\"10\" xmlns:h=\"" NS_T "\"/></s:Header>"
	"<s:Body><m:FindItemResponse xmlns:m=\"" NS_M "\" xmlns:t=\"" NS_T "\">"
	"<m:ResponseMessages><m:FindItemResponseMessage ResponseClass=\"Success\">"
	"<m:ResponseCode>NoError</m:ResponseCode>"
	"<m:RootFolder TotalItemsInView=\"10\" IncludesLastItemInRange=\"true\"><t:Items>"
	/* 0: a recurring master: skipped */
	"<t:CalendarItem><t:ItemId Id=\"MASTER\" ChangeKey=\"CK-MASTER\"/>"
	"<t:Subject>Standup</t:Subject><t:Sensitivity>Normal</t:Sensitivity>"
	"<t:Start>2025-03-03T09:00:00Z</t:Start><t:End>2025-03-03T09:15:00Z</t:End>"
	"<t:IsAllDayEvent>false</t:IsAllDayEvent>"
	"<t:LegacyFreeBusyStatus>Busy</t:LegacyFreeBusyStatus>"
	"<t:IsCancelled>false</t:IsCancelled>"
	"<t:CalendarItemType>RecurringMaster</t:CalendarItemType>"
	"</t:CalendarItem>"
	/* 1: an occurrence, in +01:00 */
	"<t:CalendarItem><t:ItemId Id=\"OCC1\" ChangeKey=\"CK-OCC1\"/>"
	"<t:Subject>Standup</t:Subject><t:Sensitivity>Normal</t:Sensitivity>"
	"<t:Categories><t:String>Team A</t:String></t:Categories>"
	"<t:Start>2025-03-03T10:00:00+01:00</t:Start><t:End>2025-03-03T10:15:00+01:00</t:End>"
	"<t:IsAllDayEvent>false</t:IsAllDayEvent>"
	"<t:LegacyFreeBusyStatus>Busy</t:LegacyFreeBusyStatus>"
	"<t:IsCancelled>false</t:IsCancelled>"
	"<t:CalendarItemType>Occurrence</t:CalendarItemType>"
	"<t:UID>040000008200E00074C5B7101A82E0080000000001</t:UID>"
	"</t:CalendarItem>"
	/* 2: an exception of the series, moved and turned Tentative */
	"<t:CalendarItem><t:ItemId Id=\"EXC2\" ChangeKey=\"CK-EXC2\"/>"
	"<t:Subject>Standup (moved)</t:Subject><t:Sensitivity>Normal</t:Sensitivity>"
	"<t:Start>2025-03-04T11:00:00Z</t:Start><t:End>2025-03-04T11:15:00Z</t:End>"
	"<t:IsAllDayEvent>false</t:IsAllDayEvent>"
	"<t:LegacyFreeBusyStatus>Tentative</t:LegacyFreeBusyStatus>"
	"<t:IsCancelled>false</t:IsCancelled>"
	"<t:CalendarItemType>Exception</t:CalendarItemType>"
	"</t:CalendarItem>"
	/* 3: a meeting request in the calendar folder: skipped */
	"<t:MeetingRequest><t:ItemId Id=\"MR\" ChangeKey=\"CK-MR\"/>"
	"<t:Subject>Please come</t:Subject>"
	"<t:Start>2025-03-05T09:00:00Z</t:Start><t:End>2025-03-05T10:00:00Z</t:End>"
	"</t:MeetingRequest>"
	/* 4: a private all-day OOF with a UTF-8 subject, a location and an organizer */
	"<t:CalendarItem><t:ItemId Id=\"HOL\" ChangeKey=\"CK-HOL\"/>"
	"<t:Subject>Urlaub \303\234berlingen</t:Subject>"
	"<t:Sensitivity>Private</t:Sensitivity>"
	"<t:Start>2025-03-06T00:00:00Z</t:Start><t:End>2025-03-07T00:00:00Z</t:End>"
	"<t:IsAllDayEvent>true</t:IsAllDayEvent>"
	"<t:LegacyFreeBusyStatus>OOF</t:LegacyFreeBusyStatus>"
	"<t:Location>Bodensee</t:Location>"
	"<t:IsCancelled>false</t:IsCancelled>"
	"<t:CalendarItemType>Single</t:CalendarItemType>"
	"<t:Organizer><t:Mailbox><t:Name>Ann</t:Name>"
	"<t:EmailAddress>ann@contoso.example</t:EmailAddress></t:Mailbox></t:Organizer>"
	"</t:CalendarItem>"
	/* 5: a confidential, cancelled meeting */
	"<t:CalendarItem><t:ItemId Id=\"CANC\" ChangeKey=\"CK-CANC\"/>"
	"<t:Subject>Board</t:Subject><t:Sensitivity>Confidential</t:Sensitivity>"
	"<t:Start>2025-03-03T14:00:00Z</t:Start><t:End>2025-03-03T15:00:00Z</t:End>"
	"<t:IsAllDayEvent>false</t:IsAllDayEvent>"
	"<t:LegacyFreeBusyStatus>Busy</t:LegacyFreeBusyStatus>"
	"<t:IsCancelled>true</t:IsCancelled>"
	"<t:CalendarItemType>Single</t:CalendarItemType>"
	"</t:CalendarItem>"
	/* 6: no times: skipped */
	"<t:CalendarItem><t:ItemId Id=\"NOTIME\" ChangeKey=\"CK-NOTIME\"/>"
	"<t:Subject>?</t:Subject>"
	"</t:CalendarItem>"
	/* 7: End before Start: skipped */
	"<t:CalendarItem><t:ItemId Id=\"BACKWARDS\" ChangeKey=\"CK-BACKWARDS\"/>"
	"<t:Start>2025-03-03T12:00:00Z</t:Start><t:End>2025-03-03T11:00:00Z</t:End>"
	"</t:CalendarItem>"
	/* 8: item 1 again (a page boundary): skipped */
	"<t:CalendarItem><t:ItemId Id=\"OCC1\" ChangeKey=\"CK-OCC1\"/>"
	"<t:Subject>Standup</t:Subject>"
	"<t:Start>2025-03-03T09:00:00Z</t:Start><t:End>2025-03-03T09:15:00Z</t:End>"
	"<t:CalendarItemType>Occurrence</t:CalendarItemType>"
	"</t:CalendarItem>"
	/* 9: the bare minimum: no free/busy, no flags, no type */
	"<t:CalendarItem><t:ItemId Id=\"BARE\" ChangeKey=\"CK-BARE\"/>"
	"<t:Start>2025-03-03T16:00:00Z</t:Start><t:End>2025-03-03T16:30:00Z</t:End>"
	"</t:CalendarItem>"
	"</t:Items></m:RootFolder></m:FindItemResponseMessage></m:ResponseMessages>"
	"</m:FindItemResponse></s:Body></s:Envelope>";

TEST(calendar_view_response)
{
	struct ews_response r = {0};
	struct conv c = {0};
	const struct cal_occurrence *o;
	struct presence_rules rules = presence_rules_default();
	struct presence p;

	if (parse(calendar_view, strlen(calendar_view), &r) != 0 || r.n_messages != 1)
		goto out;
	CHECK_EQ(r.messages[0].n_items, 10);
	c = convert(r.messages[0].items, r.messages[0].n_items);
	CHECK_EQ(c.n, 5);
	CHECK_EQ(c.skipped, 5);
	if (c.n != 5)
		goto out;
	o = c.occs;
	CHECK_STREQ(o[0].item_id, "OCC1");
	CHECK_STREQ(o[0].change_key, "CK-OCC1");
	CHECK_STREQ(o[0].subject, "Standup");
	CHECK_STREQ(o[0].uid, "040000008200E00074C5B7101A82E0080000000001");
	CHECK_EQ(o[0].start_utc, utc("2025-03-03T09:00:00Z"));
	CHECK_EQ(o[0].end_utc, utc("2025-03-03T09:15:00Z"));
	CHECK_EQ(o[0].type, CAL_ITEM_OCCURRENCE);
	CHECK_EQ(o[0].free_busy, CAL_FB_BUSY);
	CHECK_EQ(o[0].n_categories, 1);
	if (o[0].n_categories == 1)
		CHECK_STREQ(o[0].categories[0], "Team A");

	CHECK_STREQ(o[1].item_id, "EXC2");
	CHECK_EQ(o[1].type, CAL_ITEM_EXCEPTION);
	CHECK_EQ(o[1].free_busy, CAL_FB_TENTATIVE);

	CHECK_STREQ(o[2].item_id, "HOL");
	CHECK_STREQ(o[2].subject, "Urlaub \303\234berlingen");
	CHECK_STREQ(o[2].location, "Bodensee");
	CHECK_STREQ(o[2].organizer, "ann@contoso.example");
	CHECK(o[2].is_private);
	CHECK(o[2].all_day);
	CHECK_EQ(o[2].free_busy, CAL_FB_OOF);
	CHECK_EQ(o[2].type, CAL_ITEM_SINGLE);

	CHECK_STREQ(o[3].item_id, "CANC");
	CHECK(o[3].is_private);
	CHECK(o[3].is_cancelled);

	CHECK_STREQ(o[4].item_id, "BARE");
	CHECK_EQ(o[4].free_busy, CAL_FB_UNKNOWN);
	CHECK_EQ(o[4].type, CAL_ITEM_SINGLE);
	CHECK(!o[4].all_day && !o[4].is_cancelled && !o[4].is_private);
	CHECK(o[4].change_key != NULL && o[4].subject == NULL);

	/* What the presence engine makes of it. */
	presence_compute(c.occs, c.n, &rules, utc("2025-03-03T09:05:00Z"), &p);
	CHECK_EQ(p.state, PRESENCE_BUSY);
	CHECK_STREQ(p.subject, "Standup");
	CHECK_EQ(p.until_utc, utc("2025-03-03T09:15:00Z"));
	/* The cancelled board meeting and the unknown-status item never count. */
	presence_compute(c.occs, c.n, &rules, utc("2025-03-03T14:30:00Z"), &p);
	CHECK_EQ(p.state, PRESENCE_FREE);
	CHECK_EQ(p.until_utc, utc("2025-03-06T00:00:00Z"));
	presence_compute(c.occs, c.n, &rules, utc("2025-03-06T12:00:00Z"), &p);
	CHECK_EQ(p.state, PRESENCE_OOF);
	CHECK_STREQ(p.subject, "private");
	CHECK_STREQ(p.reason, "all-day appointment");
	rules.all_day_oof_only = true;
	presence_compute(c.occs, c.n, &rules, utc("2025-03-06T12:00:00Z"), &p);
	CHECK_EQ(p.state, PRESENCE_OOF);
out:
	conv_free(&c);
	ews_response_clear(&r);
}

/* The converted occurrences are what the store accepts, and come back equal. */
TEST(store_round_trip)
{
	char dir[256];
	char path[300];
	const char *base = getenv("TMPDIR");
	struct ews_response r = {0};
	struct conv c = {0};
	struct store *s = NULL;
	struct cal_occurrence *back = NULL;
	size_t n_back = 0;
	struct err e = {0};

	(void)snprintf(dir, sizeof(dir), "%s/test-sync-ews-convert-XXXXXX",
	               base != NULL && base[0] != '\0' ? base : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		abort();
	}
	(void)snprintf(path, sizeof(path), "%s/calsync.db", dir);
	if (parse(calendar_view, strlen(calendar_view), &r) != 0 || r.n_messages != 1)
		goto out;
	c = convert(r.messages[0].items, r.messages[0].n_items);
	CHECK_EQ(store_open(path, &s, &e), 0);
	if (s == NULL)
		goto out;
	CHECK_EQ(store_mailbox_add(s, "user00001@contoso.example", NULL, NULL, &e), 0);
	CHECK_EQ(store_replace_occurrences(s, "user00001@contoso.example",
	                                   utc("2025-03-03T00:00:00Z"), utc("2025-03-10T00:00:00Z"),
	                                   c.occs, c.n, NULL, &e),
	         0);
	if (e.msg[0] != '\0')
		fprintf(stderr, "store: %s\n", e.msg);
	CHECK_EQ(store_load_occurrences(s, "user00001@contoso.example", &back, &n_back, &e), 0);
	CHECK_EQ(n_back, c.n);
	/* The store sorts by start then item_id; match by item_id. */
	for (size_t i = 0; i < n_back && n_back == c.n; i++) {
		const struct cal_occurrence *a = NULL;
		const struct cal_occurrence *b = &back[i];

		for (size_t k = 0; k < c.n; k++) {
			if (strcmp(c.occs[k].item_id, b->item_id) == 0)
				a = &c.occs[k];
		}
		CHECK(a != NULL);
		if (a == NULL)
			continue;
		CHECK_STREQ(a->change_key, b->change_key);
		CHECK_STREQ(a->uid, b->uid);
		CHECK_STREQ(a->subject, b->subject);
		CHECK_STREQ(a->location, b->location);
		CHECK_STREQ(a->organizer, b->organizer);
		CHECK_EQ(a->n_categories, b->n_categories);
		for (size_t k = 0; k < a->n_categories && a->n_categories == b->n_categories; k++)
			CHECK_STREQ(a->categories[k], b->categories[k]);
		CHECK_EQ(a->start_utc, b->start_utc);
		CHECK_EQ(a->end_utc, b->end_utc);
		CHECK_EQ(a->all_day, b->all_day);
		CHECK_EQ(a->is_cancelled, b->is_cancelled);
		CHECK_EQ(a->is_private, b->is_private);
		CHECK_EQ(a->free_busy, b->free_busy);
		CHECK_EQ(a->type, b->type);
	}
out:
	cal_occurrences_free(back, n_back);
	store_close(s);
	conv_free(&c);
	ews_response_clear(&r);
	{
		static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
		char p[320];

		for (size_t i = 0; i < N(suffixes); i++) {
			(void)snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
			(void)unlink(p);
		}
		(void)rmdir(dir);
	}
}

int main(void)
{
	RUN(empty_input);
	RUN(every_field_is_copied);
	RUN(absent_strings_stay_null);
	RUN(flags_true_and_absent);
	RUN(skip_rules);
	RUN(zero_length_and_extreme_times_are_kept);
	RUN(everything_skipped_gives_null);
	RUN(free_busy_mapping);
	RUN(item_type_mapping);
	RUN(private_and_confidential);
	RUN(null_categories_are_dropped);
	RUN(duplicates_first_wins);
	RUN(duplicate_of_a_skipped_item_is_kept);
	RUN(many_duplicates_match_naive_reference);
	RUN(too_many_items);
	RUN(msdocs_get_item_fixture);
	RUN(calendar_view_response);
	RUN(store_round_trip);
	return harness_done();
}
