/* SPDX-License-Identifier: MIT */
/*
 * rules.h: the presence rules of a loaded configuration (struct cfg_presence) as the presence
 * engine's struct presence_rules. The strings stay borrowed from the cfg, so a struct
 * sync_rules must be freed before (or with) the cfg it was made from.
 */
#pragma once

#include "cal/presence.h"

struct cfg;

struct sync_rules {
	struct presence_rules rules;
	struct presence_profile *extra; /* owned array behind rules.extra */
};

/* Fills *out from cfg: count bits, profiles and forwards per value (Tentative, Busy, OOF and
 * WorkingElsewhere; value[PRESENCE_FREE] stays zero), all-day handling (CFG_ALL_DAY_OOF_ONLY
 * sets all_day_oof_only, CFG_ALL_DAY_IGNORE sets ignore_all_day) and the category profiles as
 * extra[], in file order. Never fails (allocation failure aborts, as xalloc does). */
void sync_rules_init(struct sync_rules *out, const struct cfg *cfg);

void sync_rules_clear(struct sync_rules *r); /* NULL-safe; frees; leaves r zeroed */
