/* SPDX-License-Identifier: MIT */
/*
 * config-sync.c: how calsync follows changes and where they go. The product's element
 * (<exchange><events><advise Object>: streaming or pull), <window> and <sync> (read through the
 * table of numeric settings), <store> and <output>.
 */
#include "config/config-int.h"

#include <stdlib.h>

/* -- the product's elements ---------------------------------------------------------------- */

static int el_advise(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"Object", NULL};
	static const char *const stream[] = {"EwsStream", "EWSStream", "EWStream"};
	static const char *const pull[] = {"EwsPull", "EWSPull"};
	const char *v;

	cfgp_check_attrs(p, n, known);
	v = cfgp_attr(p, n, "Object");
	if (v == NULL)
		return cfgp_fail(p, n, "missing attribute Object; accepted: EwsStream, EwsPull");
	for (size_t i = 0; i < sizeof(stream) / sizeof(stream[0]); i++) {
		if (ascii_ieq(v, stream[i])) {
			p->cfg->notify = CFG_NOTIFY_STREAM;
			return 0;
		}
	}
	for (size_t i = 0; i < sizeof(pull) / sizeof(pull[0]); i++) {
		if (ascii_ieq(v, pull[i])) {
			p->cfg->notify = CFG_NOTIFY_PULL;
			return 0;
		}
	}
	return cfgp_fail_attr(
		p, n, "Object", v,
		"unknown notification mode; accepted: EwsStream, EWSStream, EWStream, "
		"EwsPull, EWSPull (any case)");
}

static int el_events(struct parser *p, xmlNode *n)
{
	static const struct child kids[] = {{"advise", el_advise, false}};

	return WALK(p, n, kids);
}

int cfgp_el_exchange(struct parser *p, xmlNode *n)
{
	static const struct child kids[] = {{"events", el_events, false}};

	return WALK(p, n, kids);
}

/* -- timing, store, output ----------------------------------------------------------------- */

int cfgp_el_window(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"past", "ahead", NULL};

	cfgp_check_attrs(p, n, known);
	return cfgp_get_nums(p, n);
}

int cfgp_el_sync(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"debounce",
	                                    "safety_refresh",
	                                    "pull_interval",
	                                    "stream_timeout",
	                                    "stream_watchdog",
	                                    "concurrency",
	                                    NULL};

	cfgp_check_attrs(p, n, known);
	return cfgp_get_nums(p, n);
}

int cfgp_el_store(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"path", NULL};

	cfgp_check_attrs(p, n, known);
	return cfgp_get_path(p, n, "path", &p->cfg->store_path);
}

int cfgp_el_output(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"path", NULL};
	const char *v = cfgp_attr(p, n, "path");

	cfgp_check_attrs(p, n, known);
	if (v != NULL && strcmp(v, "-") == 0) {
		free(p->cfg->output_path);
		p->cfg->output_path = NULL;
		return 0;
	}
	return cfgp_get_path(p, n, "path", &p->cfg->output_path);
}
