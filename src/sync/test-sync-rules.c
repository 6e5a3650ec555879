/* SPDX-License-Identifier: MIT */
/*
 * test-sync-rules.c: configurations parsed with cfg_parse turned into presence rules: the
 * defaults, every free/busy value (the two enums are indexed differently), empty profiles, the
 * three all-day modes, category profiles, the full example file, and presence_compute end to end
 * with category profiles, forwards and the all-day modes.
 */
#include "sync/rules.h"

#include "base/err.h"
#include "base/xalloc.h"
#include "cal/occurrence.h"
#include "cal/presence.h"
#include "config/config.h"
#include "harness.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define HOUR INT64_C(3600)
#define DAY  (24 * HOUR)
/* 2025-03-03T00:00:00Z, a Monday. */
#define T0       INT64_C(1740960000)
#define AT(h, m) (T0 + (h)*HOUR + (m)*INT64_C(60))

#define CALSYNC(x) \
	"<configuration><calendar_sync><calsync>\n" x "\n</calsync></calendar_sync></configuration>"

/* Parses xml from an exact-size heap copy; aborts on failure (the XML is the test's own). */
static struct cfg *parse(const char *xml)
{
	size_t len = strlen(xml);
	char *copy = xmalloc(len);
	struct cfg *cfg = NULL;
	struct err e = {0};
	int rc;

	memcpy(copy, xml, len);
	rc = cfg_parse(copy, len, &(struct cfg_parse_opts){.name = "calsync.xml", .offline = true},
	               &cfg, NULL, &e);
	free(copy);
	if (rc != 0) {
		fprintf(stderr, "cfg_parse: %d %s\n", rc, e.msg);
		abort();
	}
	return cfg;
}

/* Reads a fixture below $EWS_FIXTURES_DIR into an owned, NUL-terminated buffer, or NULL. */
static char *read_fixture(const char *rel)
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
	rewind(f);
	if (size <= 0) {
		fclose(f);
		harness_fail(__FILE__, __LINE__, "empty %s", path);
		return NULL;
	}
	data = xmalloc((size_t)size + 1);
	CHECK(fread(data, 1, (size_t)size, f) == (size_t)size);
	data[size] = '\0';
	fclose(f);
	return data;
}

static struct cal_occurrence occ(int64_t start, int64_t end, enum cal_fb fb, const char *subject)
{
	return (struct cal_occurrence){
		/* occurrence.h holds char *; presence_compute never writes through it. */
		.subject = (char *)(uintptr_t)subject,
		.start_utc = start,
		.end_utc = end,
		.free_busy = fb,
	};
}

static struct presence at(const struct cal_occurrence *o, size_t n, const struct sync_rules *r,
                          int64_t now)
{
	struct presence p;

	presence_compute(o, n, &r->rules, now, &p);
	return p;
}

TEST(defaults_match_presence_defaults)
{
	struct cfg *cfg = parse("<configuration/>");
	struct presence_rules def = presence_rules_default();
	struct sync_rules r;

	sync_rules_init(&r, cfg);
	for (size_t s = 0; s < PRESENCE_STATE_COUNT; s++) {
		CHECK_EQ(r.rules.value[s].counts, def.value[s].counts);
		CHECK_STREQ(r.rules.value[s].profile.name, def.value[s].profile.name);
		CHECK_STREQ(r.rules.value[s].profile.forward, NULL);
	}
	CHECK(!r.rules.value[PRESENCE_FREE].counts);
	CHECK(r.rules.value[PRESENCE_FREE].profile.name == NULL);
	CHECK(r.rules.extra == NULL && r.extra == NULL);
	CHECK_EQ(r.rules.n_extra, 0);
	CHECK(!r.rules.ignore_all_day);
	CHECK(!r.rules.all_day_oof_only);
	/* Borrowed from the cfg, not copied. */
	CHECK(r.rules.value[PRESENCE_BUSY].profile.name == cfg->presence.state[CAL_FB_BUSY].name);
	CHECK(r.rules.value[PRESENCE_TENTATIVE].profile.name ==
	      cfg->presence.state[CAL_FB_TENTATIVE].name);
	sync_rules_clear(&r);
	cfg_free(cfg);
}

TEST(every_value)
{
	struct cfg *cfg =
		parse(CALSYNC("<presence>\n"
	                      "  <tentative count='true' profile='Maybe' forward='t-fwd'/>\n"
	                      "  <busy count='false' profile='' forward='b-fwd'/>\n"
	                      "  <oof profile='Away' forward='o-fwd'/>\n"
	                      "  <working_elsewhere count='true' profile='Remote'/>\n"
	                      "</presence>"));
	struct sync_rules r;
	const struct presence_value_rule *v = r.rules.value;

	sync_rules_init(&r, cfg);
	CHECK(!v[PRESENCE_FREE].counts);
	CHECK(v[PRESENCE_FREE].profile.name == NULL && v[PRESENCE_FREE].profile.forward == NULL);

	CHECK(v[PRESENCE_TENTATIVE].counts);
	CHECK_STREQ(v[PRESENCE_TENTATIVE].profile.name, "Maybe");
	CHECK_STREQ(v[PRESENCE_TENTATIVE].profile.forward, "t-fwd");

	CHECK(!v[PRESENCE_BUSY].counts);
	CHECK_STREQ(v[PRESENCE_BUSY].profile.name, NULL); /* profile="" is none */
	CHECK_STREQ(v[PRESENCE_BUSY].profile.forward, "b-fwd");

	CHECK(v[PRESENCE_OOF].counts); /* the default */
	CHECK_STREQ(v[PRESENCE_OOF].profile.name, "Away");
	CHECK_STREQ(v[PRESENCE_OOF].profile.forward, "o-fwd");

	CHECK(v[PRESENCE_WORKING_ELSEWHERE].counts);
	CHECK_STREQ(v[PRESENCE_WORKING_ELSEWHERE].profile.name, "Remote");
	CHECK_STREQ(v[PRESENCE_WORKING_ELSEWHERE].profile.forward, NULL);
	sync_rules_clear(&r);
	cfg_free(cfg);
}

/* Each value alone: a count bit lands on its own state and on no other. */
TEST(each_count_bit_alone)
{
	static const struct {
		const char *xml;
		enum presence_state state;
	} cases[] = {
		{CALSYNC("<presence><tentative count='true'/><busy count='false'/><oof count='false'/>"
	                 "</presence>"),
	         PRESENCE_TENTATIVE},
		{CALSYNC("<presence><oof count='false'/></presence>"), PRESENCE_BUSY},
		{CALSYNC("<presence><busy count='false'/></presence>"), PRESENCE_OOF},
		{CALSYNC("<presence><working_elsewhere count='true'/><busy count='false'/>"
	                 "<oof count='false'/></presence>"),
	         PRESENCE_WORKING_ELSEWHERE},
	};

	for (size_t i = 0; i < N(cases); i++) {
		struct cfg *cfg = parse(cases[i].xml);
		struct sync_rules r;

		sync_rules_init(&r, cfg);
		for (size_t s = 0; s < PRESENCE_STATE_COUNT; s++)
			CHECK_EQ(r.rules.value[s].counts, s == cases[i].state);
		sync_rules_clear(&r);
		cfg_free(cfg);
	}
}

TEST(all_day_modes)
{
	static const struct {
		const char *xml;
		bool ignore;
		bool oof_only;
	} cases[] = {
		{CALSYNC("<presence/>"), false, false},
		{CALSYNC("<presence all_day='count'/>"), false, false},
		{CALSYNC("<presence all_day='oof-only'/>"), false, true},
		{CALSYNC("<presence all_day='ignore'/>"), true, false},
	};

	for (size_t i = 0; i < N(cases); i++) {
		struct cfg *cfg = parse(cases[i].xml);
		struct sync_rules r;

		sync_rules_init(&r, cfg);
		CHECK_EQ(r.rules.ignore_all_day, cases[i].ignore);
		CHECK_EQ(r.rules.all_day_oof_only, cases[i].oof_only);
		sync_rules_clear(&r);
		cfg_free(cfg);
	}
}

TEST(categories)
{
	struct cfg *cfg =
		parse(CALSYNC("<presence>\n"
	                      "  <category name='Customer visit' forward='+49307654321'/>\n"
	                      "  <category name='Do not disturb'/>\n"
	                      "  <category name='Focus' forward='voicemail'/>\n"
	                      "</presence>"));
	struct sync_rules r;

	sync_rules_init(&r, cfg);
	CHECK_EQ(r.rules.n_extra, 3);
	CHECK(r.rules.extra == r.extra);
	if (r.rules.n_extra == 3) {
		CHECK_STREQ(r.rules.extra[0].name, "Customer visit");
		CHECK_STREQ(r.rules.extra[0].forward, "+49307654321");
		CHECK_STREQ(r.rules.extra[1].name, "Do not disturb");
		CHECK_STREQ(r.rules.extra[1].forward, NULL);
		CHECK_STREQ(r.rules.extra[2].name, "Focus");
		CHECK_STREQ(r.rules.extra[2].forward, "voicemail");
		for (size_t i = 0; i < 3; i++) {
			CHECK(r.rules.extra[i].name == cfg->presence.categories[i].name);
			CHECK(r.rules.extra[i].forward == cfg->presence.categories[i].forward);
		}
	}
	sync_rules_clear(&r);
	CHECK(r.extra == NULL && r.rules.extra == NULL && r.rules.n_extra == 0);
	CHECK(r.rules.value[PRESENCE_BUSY].profile.name == NULL);
	sync_rules_clear(&r); /* twice is fine */
	sync_rules_clear(NULL);
	cfg_free(cfg);
}

TEST(full_example_file)
{
	char *xml = read_fixture("config/full.xml");
	struct cfg *cfg;
	struct sync_rules r;
	const struct presence_value_rule *v = r.rules.value;

	if (xml == NULL)
		return;
	cfg = parse(xml);
	sync_rules_init(&r, cfg);
	CHECK(v[PRESENCE_TENTATIVE].counts);
	CHECK_STREQ(v[PRESENCE_TENTATIVE].profile.name, "Maybe busy");
	CHECK(v[PRESENCE_BUSY].counts);
	CHECK_STREQ(v[PRESENCE_BUSY].profile.name, "In a meeting");
	CHECK_STREQ(v[PRESENCE_BUSY].profile.forward, "voicemail");
	CHECK(v[PRESENCE_OOF].counts);
	CHECK_STREQ(v[PRESENCE_OOF].profile.name, "Out of office");
	CHECK_STREQ(v[PRESENCE_OOF].profile.forward, "+49301234567");
	CHECK(v[PRESENCE_WORKING_ELSEWHERE].counts);
	CHECK_STREQ(v[PRESENCE_WORKING_ELSEWHERE].profile.name, "Remote");
	CHECK(r.rules.all_day_oof_only);
	CHECK(!r.rules.ignore_all_day);
	CHECK_EQ(r.rules.n_extra, 2);
	if (r.rules.n_extra == 2) {
		CHECK_STREQ(r.rules.extra[0].name, "Customer visit");
		CHECK_STREQ(r.rules.extra[0].forward, "+49307654321");
		CHECK_STREQ(r.rules.extra[1].name, "Do not disturb");
		CHECK_STREQ(r.rules.extra[1].forward, NULL);
	}
	sync_rules_clear(&r);
	cfg_free(cfg);
	free(xml);
}

static const char end_to_end_xml[] =
	CALSYNC("<presence all_day='oof-only'>\n"
                "  <tentative count='true' profile='Maybe busy'/>\n"
                "  <busy profile='In a meeting' forward='voicemail'/>\n"
                "  <oof forward='+49301234567'/>\n"
                "  <working_elsewhere count='true' profile='Remote' forward='+49309999'/>\n"
                "  <category name='Customer visit' forward='+49307654321'/>\n"
                "  <category name='Do not disturb'/>\n"
                "</presence>");

TEST(end_to_end_with_presence_compute)
{
	struct cfg *cfg = parse(end_to_end_xml);
	char cat_visit[] = "Customer visit";
	char cat_dnd[] = "Do not disturb";
	char cat_maybe[] = "Maybe busy";
	char cat_other[] = "Red category";
	char *visit[] = {cat_other, cat_visit};
	char *dnd[] = {cat_dnd};
	char *maybe[] = {cat_maybe};
	struct cal_occurrence o[] = {
		occ(AT(9, 0), AT(10, 0), CAL_FB_BUSY, "Standup"),            /* 0 */
		occ(AT(10, 0), AT(11, 0), CAL_FB_BUSY, "At Contoso"),        /* 1: Customer visit */
		occ(AT(11, 0), AT(12, 0), CAL_FB_BUSY, "Deep work"),         /* 2: Do not disturb */
		occ(AT(13, 0), AT(14, 0), CAL_FB_TENTATIVE, "Maybe"),        /* 3 */
		occ(AT(14, 0), AT(15, 0), CAL_FB_WORKING_ELSEWHERE, "Home"), /* 4: Maybe busy */
		occ(AT(24, 0), AT(48, 0), CAL_FB_BUSY, "Conference"),        /* 5: all-day Busy */
		occ(AT(48, 0), AT(72, 0), CAL_FB_OOF, "Holiday"),            /* 6: all-day OOF */
		occ(AT(30, 0), AT(31, 0), CAL_FB_FREE, "Lunch"),             /* 7 */
	};
	struct sync_rules r;
	struct presence p;

	o[1].categories = visit;
	o[1].n_categories = N(visit);
	o[2].categories = dnd;
	o[2].n_categories = N(dnd);
	o[4].categories = maybe;
	o[4].n_categories = N(maybe);
	o[5].all_day = true;
	o[6].all_day = true;
	sync_rules_init(&r, cfg);

	p = at(o, N(o), &r, AT(9, 30));
	CHECK_EQ(p.state, PRESENCE_BUSY);
	CHECK_STREQ(p.profile, "In a meeting");
	CHECK_STREQ(p.forward, "voicemail");
	CHECK_STREQ(p.reason, "appointment");
	CHECK_EQ(p.next_change_utc, AT(10, 0));
	CHECK_EQ(p.until_utc, AT(12, 0));

	/* A category profile and its forward come through; the state stays busy. */
	p = at(o, N(o), &r, AT(10, 30));
	CHECK_EQ(p.state, PRESENCE_BUSY);
	CHECK_STREQ(p.profile, "Customer visit");
	CHECK_STREQ(p.forward, "+49307654321");
	CHECK_STREQ(p.reason, "category");
	CHECK_STREQ(p.subject, "At Contoso");
	CHECK_EQ(p.since_utc, AT(9, 0));

	/* A category profile without a forward has none, even on a Busy item with one. */
	p = at(o, N(o), &r, AT(11, 30));
	CHECK_STREQ(p.profile, "Do not disturb");
	CHECK(p.forward == NULL);

	/* Tentative counts with its own profile. */
	p = at(o, N(o), &r, AT(13, 30));
	CHECK_EQ(p.state, PRESENCE_TENTATIVE);
	CHECK_STREQ(p.profile, "Maybe busy");
	CHECK(p.forward == NULL);

	/* A category equal to a counted value's profile name selects that profile. */
	p = at(o, N(o), &r, AT(14, 30));
	CHECK_EQ(p.state, PRESENCE_WORKING_ELSEWHERE);
	CHECK_STREQ(p.profile, "Maybe busy");
	CHECK(p.forward == NULL);
	CHECK_STREQ(p.reason, "category");

	/* oof-only: the all-day Busy does not count, the all-day OOF does, with the OOF profile
	 * (its default name) and the configured forward. */
	p = at(o, N(o), &r, AT(36, 0));
	CHECK_EQ(p.state, PRESENCE_FREE);
	CHECK_EQ(p.since_utc, AT(15, 0));
	CHECK_EQ(p.until_utc, AT(48, 0));
	p = at(o, N(o), &r, AT(60, 0));
	CHECK_EQ(p.state, PRESENCE_OOF);
	CHECK_STREQ(p.profile, "Out of office");
	CHECK_STREQ(p.forward, "+49301234567");
	CHECK_STREQ(p.reason, "all-day appointment");
	CHECK_EQ(p.since_utc, AT(48, 0));
	CHECK_EQ(p.until_utc, AT(72, 0));
	sync_rules_clear(&r);
	cfg_free(cfg);

	/* The same calendar with all_day='count' and 'ignore'. */
	{
		static const char *const xml[] = {
			CALSYNC("<presence all_day='count'/>"),
			CALSYNC("<presence all_day='ignore'/>"),
		};

		for (size_t i = 0; i < N(xml); i++) {
			cfg = parse(xml[i]);
			sync_rules_init(&r, cfg);
			p = at(o, N(o), &r, AT(36, 0));
			CHECK_EQ(p.state, i == 0 ? PRESENCE_BUSY : PRESENCE_FREE);
			p = at(o, N(o), &r, AT(60, 0));
			CHECK_EQ(p.state, i == 0 ? PRESENCE_OOF : PRESENCE_FREE);
			/* Timed items count either way. */
			CHECK_EQ(at(o, N(o), &r, AT(9, 30)).state, PRESENCE_BUSY);
			sync_rules_clear(&r);
			cfg_free(cfg);
		}
	}
}

int main(void)
{
	RUN(defaults_match_presence_defaults);
	RUN(every_value);
	RUN(each_count_bit_alone);
	RUN(all_day_modes);
	RUN(categories);
	RUN(full_example_file);
	RUN(end_to_end_with_presence_compute);
	return harness_done();
}
