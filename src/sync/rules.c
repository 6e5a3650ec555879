/* SPDX-License-Identifier: MIT */
/* rules.c: struct cfg_presence (indexed by enum cal_fb) -> struct presence_rules (indexed by
 * enum presence_state). */
#include "sync/rules.h"

#include <stdlib.h>

#include "base/xalloc.h"
#include "cal/occurrence.h"
#include "config/config.h"

/* The free/busy values that have a presence state; Free, NoData and Unknown never count. */
static const struct {
	enum cal_fb fb;
	enum presence_state state;
} value_map[] = {
	{CAL_FB_TENTATIVE, PRESENCE_TENTATIVE},
	{CAL_FB_BUSY, PRESENCE_BUSY},
	{CAL_FB_OOF, PRESENCE_OOF},
	{CAL_FB_WORKING_ELSEWHERE, PRESENCE_WORKING_ELSEWHERE},
};

void sync_rules_init(struct sync_rules *out, const struct cfg *cfg)
{
	const struct cfg_presence *pr = &cfg->presence;
	struct sync_rules r = {0};

	for (size_t i = 0; i < sizeof(value_map) / sizeof(value_map[0]); i++) {
		const struct cfg_profile *p = &pr->state[value_map[i].fb];
		struct presence_value_rule *v = &r.rules.value[value_map[i].state];

		v->counts = (pr->count & (1u << value_map[i].fb)) != 0;
		v->profile.name = p->name;
		v->profile.forward = p->forward;
	}
	switch (pr->all_day) {
	case CFG_ALL_DAY_COUNT:
		break;
	case CFG_ALL_DAY_OOF_ONLY:
		r.rules.all_day_oof_only = true;
		break;
	case CFG_ALL_DAY_IGNORE:
		r.rules.ignore_all_day = true;
		break;
	}
	if (pr->n_categories > 0) {
		r.extra = xcalloc(pr->n_categories, sizeof(*r.extra));
		for (size_t i = 0; i < pr->n_categories; i++) {
			r.extra[i].name = pr->categories[i].name;
			r.extra[i].forward = pr->categories[i].forward;
		}
		r.rules.extra = r.extra;
		r.rules.n_extra = pr->n_categories;
	}
	*out = r;
}

void sync_rules_clear(struct sync_rules *r)
{
	if (r == NULL)
		return;
	free(r->extra);
	*r = (struct sync_rules){0};
}
