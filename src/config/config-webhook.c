/* SPDX-License-Identifier: MIT */
/*
 * config-webhook.c: <webhooks>, the targets that receive every presence change: URL (one
 * cursor per URL, so each only once), secret, CA file, how long an event is retried.
 */
#include "config/config-int.h"

#include <errno.h>
#include <stdlib.h>

#include "base/xalloc.h"

/* <webhook url="..." secret_file="..." | secret_env="..." retry_for="24h" ca_file="..."/> */
static int el_webhook(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"url",       "secret_file", "secret_env", "secret",
	                                    "retry_for", "ca_file",     NULL};
	struct cfg *c = p->cfg;
	struct cfg_webhook *h;
	const char *v;
	const char *why = NULL;
	char lo[32];
	char hi[32];
	int rc;

	cfgp_check_attrs(p, n, known);
	if (c->n_webhooks >= CFG_MAX_WEBHOOKS)
		return cfgp_fail(p, n, "more than %u webhooks; give at most %u", CFG_MAX_WEBHOOKS,
		                 CFG_MAX_WEBHOOKS);
	if (cfgp_attr(p, n, "url") == NULL)
		return cfgp_fail(p, n,
		                 "missing attribute url; accepted: https://host/path (or http://)");
	c->webhooks = xreallocarray(c->webhooks, c->n_webhooks + 1, sizeof(*c->webhooks));
	h = &c->webhooks[c->n_webhooks];
	*h = (struct cfg_webhook){.retry_for_usec = WEBHOOK_RETRY_FOR_DEFAULT};
	p->hook_nodes[c->n_webhooks] = n;
	p->hook_secret_src[c->n_webhooks] = (struct secret_src){0};
	c->n_webhooks++;
	rc = cfgp_get_url(p, n, "url", &h->url);
	if (rc != 0)
		return rc;
	/* The store keeps one cursor per URL: two targets with one URL would share it. */
	for (size_t i = 0; i + 1 < c->n_webhooks; i++) {
		if (strcmp(c->webhooks[i].url, h->url) == 0)
			return cfgp_fail_attr(p, n, "url", h->url,
			                      "given twice (first at line %ld)",
			                      line_of(p->hook_nodes[i]));
	}
	rc = cfgp_get_secret(p, n, "secret", "secret_file", "secret_env",
	                     &p->hook_secret_src[c->n_webhooks - 1]);
	if (rc == 0)
		rc = cfgp_get_path(p, n, "ca_file", &h->ca_file);
	if (rc != 0)
		return rc;
	v = cfgp_attr(p, n, "retry_for");
	if (v == NULL)
		return 0;
	/* -ERANGE: more than int64_t holds, so past the maximum; said as out of range. */
	rc = cfgp_parse_duration(v, &h->retry_for_usec, &why);
	if (rc != 0 && rc != -ERANGE)
		return cfgp_fail_attr(p, n, "retry_for", v, "%s", why);
	cfgp_format_duration(WEBHOOK_RETRY_FOR_MIN, lo, sizeof(lo));
	cfgp_format_duration(WEBHOOK_RETRY_FOR_MAX, hi, sizeof(hi));
	if (rc != 0 || h->retry_for_usec < WEBHOOK_RETRY_FOR_MIN ||
	    h->retry_for_usec > WEBHOOK_RETRY_FOR_MAX)
		return cfgp_fail_attr(p, n, "retry_for", v, "out of range; accepted: %s to %s", lo,
		                      hi);
	return 0;
}

int cfgp_el_webhooks(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {NULL};
	static const struct child kids[] = {
		{"webhook", el_webhook, true},
	};

	cfgp_check_attrs(p, n, known);
	return WALK(p, n, kids);
}

/* Reads each webhook's secret, after the whole document was checked. */
int cfgp_webhooks_finish(struct parser *p)
{
	for (size_t i = 0; i < p->cfg->n_webhooks && !p->offline; i++) {
		const struct secret_src *src = &p->hook_secret_src[i];
		char **dst = &p->cfg->webhooks[i].secret;
		int rc;

		if (src->attr == NULL)
			continue;
		rc = src->is_file ? cfgp_read_secret_file(p, p->hook_nodes[i], src->attr,
		                                          src->value, dst)
		                  : cfgp_read_secret_env(p, p->hook_nodes[i], src->attr, src->value,
		                                         dst);
		if (rc != 0)
			return rc;
	}
	return 0;
}
