/* SPDX-License-Identifier: MIT */
/*
 * config-presence.c: <presence>, what counts for presence and what each value shows: the
 * free/busy values that count, their profiles and forwarding targets, category profiles, and
 * how all-day appointments count.
 */
#include "config/config-int.h"

#include <stdlib.h>

#include "base/xalloc.h"

/* <tentative>, <busy>, <oof>, <working_elsewhere>: count, profile, forward. */
static int presence_value(struct parser *p, xmlNode *n, enum cal_fb v)
{
	static const char *const known[] = {"count", "profile", "forward", NULL};
	struct cfg_profile *prof = &p->cfg->presence.state[v];
	bool count = (p->cfg->presence.count & (1u << v)) != 0;
	int rc;

	cfgp_check_attrs(p, n, known);
	rc = cfgp_get_bool(p, n, "count", &count);
	if (rc == 0)
		rc = cfgp_get_text(p, n, "profile", true, &prof->name);
	if (rc == 0)
		rc = cfgp_get_text(p, n, "forward", true, &prof->forward);
	if (rc != 0)
		return rc;
	if (count)
		p->cfg->presence.count |= 1u << v;
	else
		p->cfg->presence.count &= ~(1u << v);
	return 0;
}

static int el_tentative(struct parser *p, xmlNode *n)
{
	return presence_value(p, n, CAL_FB_TENTATIVE);
}

static int el_busy(struct parser *p, xmlNode *n)
{
	return presence_value(p, n, CAL_FB_BUSY);
}

static int el_oof(struct parser *p, xmlNode *n)
{
	return presence_value(p, n, CAL_FB_OOF);
}

static int el_working_elsewhere(struct parser *p, xmlNode *n)
{
	return presence_value(p, n, CAL_FB_WORKING_ELSEWHERE);
}

static int el_free(struct parser *p, xmlNode *n)
{
	return cfgp_fail(p, n,
	                 "Free appointments never count for presence; accepted here: "
	                 "<tentative>, <busy>, <oof>, <working_elsewhere>, <category>");
}

static int el_category(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"name", "forward", NULL};
	struct cfg_presence *pr = &p->cfg->presence;
	struct cfg_profile prof = {0};
	int rc;

	cfgp_check_attrs(p, n, known);
	rc = cfgp_get_text(p, n, "name", false, &prof.name);
	if (rc == 0 && prof.name == NULL)
		rc = cfgp_fail(p, n,
		               "missing attribute name (the Outlook category and profile name)");
	for (size_t i = 0; rc == 0 && i < pr->n_categories; i++) {
		if (strcmp(pr->categories[i].name, prof.name) == 0)
			rc = cfgp_fail_attr(p, n, "name", prof.name, "category given twice");
	}
	if (rc == 0 && pr->n_categories >= CFG_MAX_CATEGORIES)
		rc = cfgp_fail(p, n, "more than %u categories", CFG_MAX_CATEGORIES);
	if (rc == 0)
		rc = cfgp_get_text(p, n, "forward", true, &prof.forward);
	if (rc != 0) {
		free(prof.name);
		free(prof.forward);
		return rc;
	}
	pr->categories = xreallocarray(pr->categories, pr->n_categories + 1, sizeof(prof));
	pr->categories[pr->n_categories++] = prof;
	return 0;
}

int cfgp_el_presence(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"all_day", NULL};
	static const char *const all_day[] = {"count", "oof-only", "ignore", NULL};
	static const struct child kids[] = {
		{"tentative", el_tentative, false},
		{"busy", el_busy, false},
		{"oof", el_oof, false},
		{"working_elsewhere", el_working_elsewhere, false},
		{"free", el_free, false},
		{"category", el_category, true},
	};
	int ad = (int)p->cfg->presence.all_day;
	int rc;

	cfgp_check_attrs(p, n, known);
	rc = cfgp_get_enum(p, n, "all_day", all_day, "count, oof-only, ignore", &ad);
	if (rc != 0)
		return rc;
	p->cfg->presence.all_day = (enum cfg_all_day)ad;
	return WALK(p, n, kids);
}
