/* SPDX-License-Identifier: MIT */
/*
 * check-config.c: the config step (a summary of the loaded configuration and its warnings),
 * and the domain the fixes' sample commands name.
 */
#include "cli/check-int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/xalloc.h"
#include "config/config.h"

/* "DC=contoso,DC=example" from the service account's or the first mailbox's domain. */
char *check_domain_dn(const struct check *c)
{
	const char *d = NULL;
	struct buf b;

	if (c->cfg->user != NULL && strchr(c->cfg->user, '@') != NULL)
		d = strchr(c->cfg->user, '@') + 1;
	else if (c->n_mbx > 0)
		d = strchr(c->mbx[0].smtp, '@') + 1;
	if (d == NULL || *d == '\0')
		d = "contoso.example";
	buf_init(&b, 4 * CFG_MAX_STRING);
	while (*d != '\0') {
		const char *dot = strchr(d, '.');
		size_t len = dot != NULL ? (size_t)(dot - d) : strlen(d);

		if (b.len > 0)
			(void)buf_append(&b, ",", 1, NULL);
		(void)buf_append(&b, "DC=", 3, NULL);
		(void)buf_append(&b, d, len, NULL);
		d += len;
		if (*d == '.')
			d++;
	}
	return buf_take(&b);
}

/* "; Microsoft Graph: tenant ..., app ..., a client secret, delta every 60 s, 2 mailboxes
 * pinned to graph", or "" without <graph>. Owned. */
static char *graph_summary(const struct cfg *cfg)
{
	const struct cfg_graph *g = cfg->graph;
	size_t pinned = 0;
	char follow[CFG_MAX_STRING + 64];

	if (g == NULL)
		return xstrdup("");
	for (size_t i = 0; i < cfg->n_mailboxes; i++)
		pinned += cfg->mailbox_backends[i] == CFG_BACKEND_GRAPH;
	if (g->mode == CFG_GRAPH_NOTIFY)
		(void)snprintf(follow, sizeof(follow), "notifications to %s", g->notify_url);
	else
		(void)snprintf(follow, sizeof(follow), "delta every %" PRId64 " s",
		               g->delta_interval_usec / USEC_PER_SEC);
	return check_strf("; Microsoft Graph: tenant %s, app %s, %s, %s, %zu mailbox%s pinned to "
	                  "graph",
	                  g->tenant, g->client_id,
	                  g->client_secret != NULL ? "a client secret" : "a certificate", follow,
	                  pinned, pinned == 1 ? "" : "es");
}

void check_step_config(struct check *c, const struct cfg_warnings *w, bool given)
{
	const struct cfg *cfg = c->cfg;
	struct buf b;
	char *warns;
	char *graph;
	char sample[96] = "";

	buf_init(&b, SIZE_MAX / 4);
	for (size_t i = 0; i < w->n; i++) {
		(void)buf_append(&b, i > 0 ? "; " : "", i > 0 ? 2 : 0, NULL);
		(void)buf_append(&b, w->lines[i], strlen(w->lines[i]), NULL);
	}
	if (w->dropped > 0) {
		char more[48];
		int n = snprintf(more, sizeof(more), "; and %zu more", w->dropped);

		(void)buf_append(&b, more, (size_t)n, NULL);
	}
	warns = buf_take(&b);
	if (given)
		(void)snprintf(sample, sizeof(sample), " (checking the %zu given with --mailbox)",
		               c->n_mbx + c->n_gpinned);
	else if (cfg->n_mailboxes > c->n_mbx + c->n_gpinned && c->n_mbx + c->n_gpinned > 0)
		(void)snprintf(sample, sizeof(sample),
		               " (checking the first %zu; --mailbox to choose)",
		               c->n_mbx + c->n_gpinned);
	graph = graph_summary(cfg);
	check_step_add(c, "config", NULL, w->n > 0 || w->dropped > 0 ? ST_WARN : ST_OK, NULL,
	               "%s: %s, %s %s, %s%s%s, RequestServerVersion %s, %zu mailbox%s%s%s%s%s",
	               c->cfg_path, cfg_notify_name(cfg->notify),
	               cfg->ews_url != NULL ? "EWS" : "Autodiscover",
	               cfg->ews_url != NULL            ? cfg->ews_url
	               : cfg->autodiscover_url != NULL ? cfg->autodiscover_url
	                                               : "from the mail domain",
	               cfg->auth == EWS_AUTH_NONE ? "no <account>" : ews_auth_name(cfg->auth),
	               cfg->user != NULL ? " as " : "", cfg->user != NULL ? cfg->user : "",
	               c->version, cfg->n_mailboxes, cfg->n_mailboxes == 1 ? "" : "es", sample,
	               graph, warns[0] != '\0' ? "; warnings: " : "", warns);
	free(graph);
	free(warns);
}
