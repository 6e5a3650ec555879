/* SPDX-License-Identifier: MIT */
/*
 * config-defaults.c: every default of struct cfg. The numeric settings are one table (element,
 * attribute, unit, default, range, field), which also drives reading them; the strings, enums
 * and presence profiles are set beside it.
 */
#include "config/config-int.h"

#include "base/xalloc.h"
#include "ews/ews-request.h"

#define DEFAULT_STORE_PATH "/var/lib/calsync/calsync.db"

static const struct num_setting num_settings[] = {
	{"window", "past", NUM_DAYS, 1, 0, 31, offsetof(struct cfg, window_past_days)},
	{"window", "ahead", NUM_DAYS, 14, 1, 366, offsetof(struct cfg, window_ahead_days)},
	{"sync", "debounce", NUM_DURATION, USEC / 4, 0, 5 * MINUTE,
         offsetof(struct cfg, debounce_usec)},
	{"sync", "safety_refresh", NUM_DURATION, 60 * MINUTE, 5 * MINUTE, 7 * DAY,
         offsetof(struct cfg, safety_refresh_usec)},
	{"sync", "pull_interval", NUM_DURATION, 60 * USEC, 5 * USEC, HOUR,
         offsetof(struct cfg, pull_interval_usec)},
	/* Exchange ends a streaming connection after at most 30 minutes (ConnectionTimeout). */
	{"sync", "stream_timeout", NUM_MINUTES, 30 * MINUTE, MINUTE, 30 * MINUTE,
         offsetof(struct cfg, stream_timeout_usec)},
	/* Silence on a streaming connection that counts as a dead one. Exchange sends a heartbeat
	 * every 45 s; the Managed API waits twice that. */
	{"sync", "stream_watchdog", NUM_DURATION, 90 * USEC, 5 * USEC, 30 * MINUTE,
         offsetof(struct cfg, stream_watchdog_usec)},
	/* EWSMaxConcurrency is 27 by default; 8 leaves room for other clients of the account. */
	{"sync", "concurrency", NUM_COUNT, 8, 1, 27, offsetof(struct cfg, concurrency)},
	{"api", "ready_live", NUM_COUNT, 90, 0, 100, offsetof(struct cfg, api_ready_live)},
};

#define N_NUM_SETTINGS (sizeof(num_settings) / sizeof(num_settings[0]))

/* Default presence profile per free/busy value; Free, Unknown and NoData have none. */
static const char *const default_profiles[CAL_FB_NO_DATA + 1] = {
	[CAL_FB_TENTATIVE] = "Tentative",
	[CAL_FB_BUSY] = "In a meeting",
	[CAL_FB_OOF] = "Out of office",
	[CAL_FB_WORKING_ELSEWHERE] = "Working elsewhere",
};

#define DEFAULT_COUNT ((1u << CAL_FB_BUSY) | (1u << CAL_FB_OOF))

void cfgp_set_defaults(struct cfg *cfg)
{
	for (size_t i = 0; i < N_NUM_SETTINGS; i++)
		*(int64_t *)(void *)((char *)cfg + num_settings[i].offset) = num_settings[i].def;
	cfg->notify = CFG_NOTIFY_STREAM;
	cfg->server_version = xstrdup(EWS_DEFAULT_VERSION);
	cfg->id_type = EWS_ID_SMTP;
	cfg->auth = EWS_AUTH_NONE;
	cfg->store_path = xstrdup(DEFAULT_STORE_PATH);
	cfg->api_enabled = true;
	cfg->api_host = xstrdup(CFG_DEFAULT_API_HOST);
	cfg->api_port = CFG_DEFAULT_API_PORT;
	cfg->presence.count = DEFAULT_COUNT;
	cfg->presence.all_day = CFG_ALL_DAY_COUNT;
	for (size_t v = 0; v <= CAL_FB_NO_DATA; v++) {
		if (default_profiles[v] != NULL)
			cfg->presence.state[v].name = xstrdup(default_profiles[v]);
	}
}

/* Reads every numeric attribute of element n from the table. */
int cfgp_get_nums(struct parser *p, xmlNode *n)
{
	for (size_t i = 0; i < N_NUM_SETTINGS; i++) {
		if (strcmp(num_settings[i].elem, name_of(n)) == 0) {
			int rc = cfgp_get_num(p, n, &num_settings[i]);

			if (rc != 0)
				return rc;
		}
	}
	return 0;
}
