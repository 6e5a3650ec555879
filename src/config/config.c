/* SPDX-License-Identifier: MIT */
/*
 * config.c: CalendarSyncExchange.config.xml into struct cfg. libxml2 builds a tree (no network,
 * no DTD: a DOCTYPE stops the parse, no entity substitution), then one function per element
 * walks it. Every element and attribute calsync knows is listed in a table beside the function
 * that reads it, so an unknown one becomes a warning and a repeated one an error. This file
 * holds the entry points, the bounded file read, the parse, the document's top elements, the
 * checks across sections and cfg_free; each section's elements are in their own file
 * (config-int.h lists them).
 */
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "config/config-int.h"

/* -- files --------------------------------------------------------------------------------- */

/*
 * Reads the whole regular file at path, at most max bytes, into an owned buffer with a NUL
 * after the data. 0, or a negative errno: from open() or read(), -EINVAL when it is not a
 * regular file, -EMSGSIZE when it is larger than max. out_mode (may be NULL) gets its mode.
 */
int cfgp_read_whole(const char *path, size_t max, char **out_data, size_t *out_len,
                    mode_t *out_mode)
{
	struct stat st;
	char *data = NULL;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		rc = -EINVAL;
	else if ((uintmax_t)st.st_size > max)
		rc = -EMSGSIZE;
	if (rc == 0)
		data = xmalloc((size_t)st.st_size + 1);
	while (rc == 0 && len < (size_t)st.st_size) {
		ssize_t got = read(fd, data + len, (size_t)st.st_size - len);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			rc = -errno;
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	if (rc != 0) {
		free(data);
		return rc;
	}
	data[len] = '\0';
	*out_data = data;
	*out_len = len;
	if (out_mode != NULL)
		*out_mode = st.st_mode;
	return 0;
}

/* Why cfgp_read_whole() failed, for a message. */
const char *cfgp_read_problem(int rc)
{
	if (rc == -EINVAL)
		return "not a regular file";
	if (rc == -EMSGSIZE)
		return "file too large";
	return strerror(-rc);
}

/* -- the document -------------------------------------------------------------------------- */

static int el_calsync(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {NULL};
	static const struct child kids[] = {
		{"api", cfgp_el_api, false},
		{"ews", cfgp_el_ews, false},
		{"autodiscover", cfgp_el_autodiscover, false},
		{"account", cfgp_el_account, false},
		{"tls", cfgp_el_tls, false},
		{"mailboxes", cfgp_el_mailboxes, false},
		{"window", cfgp_el_window, false},
		{"sync", cfgp_el_sync, false},
		{"store", cfgp_el_store, false},
		{"presence", cfgp_el_presence, false},
		{"output", cfgp_el_output, false},
		{"webhooks", cfgp_el_webhooks, false},
		{"graph", cfgp_el_graph, false},
	};

	cfgp_check_attrs(p, n, known);
	return WALK(p, n, kids);
}

static int el_calendar_sync(struct parser *p, xmlNode *n)
{
	static const struct child kids[] = {
		{"exchange", cfgp_el_exchange, false},
		{"calsync", el_calsync, false},
	};

	return WALK(p, n, kids);
}

/* Checks that need the whole document: <ews url> against <autodiscover>; then the secrets of
 * the API, the webhooks and the account (which its authentication method decides). */
static int validate(struct parser *p)
{
	int rc;

	if (p->ews_url_set && p->autodiscover_line != 0)
		return err_set(p->err, -EINVAL,
		               "%s:%ld: <autodiscover>: give either <ews url> or <autodiscover>, "
		               "not both",
		               p->name, p->autodiscover_line);
	rc = cfgp_api_finish(p);
	if (rc == 0)
		rc = cfgp_webhooks_finish(p);
	if (rc == 0)
		rc = cfgp_account_finish(p);
	if (rc == 0)
		rc = cfgp_graph_finish(p);
	return rc;
}

struct doctype {
	bool seen;
	long line;
};

static void sax_subset(void *ctx, const xmlChar *name, const xmlChar *external_id,
                       const xmlChar *system_id)
{
	xmlParserCtxtPtr ctxt = ctx;
	struct doctype *d = ctxt->_private;

	d->seen = true;
	d->line = ctxt->input != NULL ? ctxt->input->line : 0;
	xmlStopParser(ctxt);
}

#define PARSE_OPTIONS                                                                    \
	(XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_BIG_LINES | XML_PARSE_NOERROR | \
	 XML_PARSE_NOWARNING)

static int read_doc(struct parser *p, const char *xml, size_t len, xmlDoc **out_doc)
{
	struct doctype d = {0};
	xmlParserCtxtPtr ctxt;
	xmlDoc *doc;
	int rc = 0;

	xmlInitParser();
	ctxt = xmlNewParserCtxt();
	if (ctxt == NULL) {
		fprintf(stderr, "calsync: out of memory (libxml2 parser context)\n");
		abort();
	}
	ctxt->_private = &d;
	ctxt->sax->internalSubset = sax_subset;
	doc = xmlCtxtReadMemory(ctxt, xml, (int)len, NULL, NULL, PARSE_OPTIONS);
	if (d.seen) {
		rc = err_set(p->err, -EINVAL,
		             "%s:%ld: <!DOCTYPE>: a DTD is not accepted; remove the DOCTYPE line",
		             p->name, d.line);
	} else if (doc == NULL || xmlDocGetRootElement(doc) == NULL) {
		const xmlError *e = xmlCtxtGetLastError(ctxt);
		char msg[160];
		size_t n;

		(void)snprintf(msg, sizeof(msg), "%s",
		               e != NULL && e->message != NULL ? e->message : "empty document");
		n = strlen(msg);
		while (n > 0 && space(msg[n - 1]))
			msg[--n] = '\0';
		rc = err_set(p->err, -EINVAL, "%s:%d: not well-formed XML: %s", p->name,
		             e != NULL && e->line > 0 ? e->line : 1, msg);
	}
	if (rc != 0)
		xmlFreeDoc(doc);
	else
		*out_doc = doc;
	xmlFreeParserCtxt(ctxt);
	return rc;
}

int cfg_parse(const char *xml, size_t len, const struct cfg_parse_opts *opts, struct cfg **out_cfg,
              struct cfg_warnings *warnings, struct err *err)
{
	static const struct child top[] = {{"calendar_sync", el_calendar_sync, false}};
	struct parser p = {
		.name = opts != NULL && opts->name != NULL ? opts->name : "(memory)",
		.base_dir = opts != NULL && opts->base_dir != NULL ? xstrdup(opts->base_dir) : NULL,
		.offline = opts != NULL && opts->offline,
		.warn = warnings,
		.err = err,
	};
	xmlDoc *doc = NULL;
	xmlNode *root;
	int rc;

	if (len > CFG_MAX_FILE) {
		rc = err_set(err, -EMSGSIZE, "%s: larger than %u bytes", p.name, CFG_MAX_FILE);
		goto out;
	}
	p.cfg = xcalloc(1, sizeof(*p.cfg));
	p.cfg->path = xstrdup(p.name);
	cfgp_set_defaults(p.cfg);
	rc = read_doc(&p, xml, len, &doc);
	if (rc != 0)
		goto out;
	root = xmlDocGetRootElement(doc);
	if (strcmp(name_of(root), "configuration") != 0) {
		rc = cfgp_fail(&p, root, "wrong root element; accepted: <configuration>");
		goto out;
	}
	rc = cfgp_walk(&p, root, top, 1);
	if (rc == 0)
		rc = validate(&p);
	if (rc == 0)
		cfgp_mailboxes_finish(&p);
out:
	for (size_t i = 0; i < p.n_mbx; i++)
		free(p.mbx[i].smtp);
	free(p.mbx);
	free(p.mbx_file);
	for (size_t i = 0; i < p.n_tmp; i++)
		xmlFree(p.tmp[i]);
	free(p.tmp);
	free(p.base_dir);
	xmlFreeDoc(doc);
	if (rc != 0) {
		cfg_free(p.cfg);
		return rc;
	}
	*out_cfg = p.cfg;
	return 0;
}

int cfg_load(const char *path, struct cfg **out_cfg, struct cfg_warnings *warnings, struct err *err)
{
	const char *slash = strrchr(path, '/');
	char *dir = NULL;
	char *data = NULL;
	size_t len = 0;
	int rc = cfgp_read_whole(path, CFG_MAX_FILE, &data, &len, NULL);

	if (rc != 0)
		return err_set(err, rc, "%s: cannot read: %s", path, cfgp_read_problem(rc));
	/* Relative paths inside the file start at the file's own directory. */
	if (slash == NULL)
		dir = xstrdup(".");
	else
		dir = xmemdup(path, slash == path ? 1 : (size_t)(slash - path));
	rc = cfg_parse(data, len, &(struct cfg_parse_opts){.name = path, .base_dir = dir}, out_cfg,
	               warnings, err);
	free(data);
	free(dir);
	return rc;
}

void cfg_free(struct cfg *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->ews_url);
	free(cfg->autodiscover_url);
	free(cfg->autodiscover_domain);
	free(cfg->server_version);
	free(cfg->user);
	cfgp_wipe_free(cfg->password);
	cfgp_wipe_free(cfg->token);
	free(cfg->token_scope);
	free(cfg->ca_file);
	for (size_t i = 0; i < cfg->n_mailboxes; i++)
		free(cfg->mailboxes[i]);
	free(cfg->mailboxes);
	free(cfg->mailbox_backends);
	cfgp_graph_free(cfg->graph);
	free(cfg->store_path);
	free(cfg->output_path);
	free(cfg->api_host);
	cfgp_wipe_free(cfg->api_token);
	free(cfg->api_tls_cert);
	free(cfg->api_tls_key);
	for (size_t i = 0; i < cfg->n_webhooks; i++) {
		free(cfg->webhooks[i].url);
		cfgp_wipe_free(cfg->webhooks[i].secret);
		free(cfg->webhooks[i].ca_file);
	}
	free(cfg->webhooks);
	for (size_t v = 0; v <= CAL_FB_NO_DATA; v++) {
		free(cfg->presence.state[v].name);
		free(cfg->presence.state[v].forward);
	}
	for (size_t i = 0; i < cfg->presence.n_categories; i++) {
		free(cfg->presence.categories[i].name);
		free(cfg->presence.categories[i].forward);
	}
	free(cfg->presence.categories);
	free(cfg);
}

void cfg_warnings_clear(struct cfg_warnings *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->lines[i]);
	free(w->lines);
	*w = (struct cfg_warnings){0};
}

const char *cfg_notify_name(enum cfg_notify n)
{
	return n == CFG_NOTIFY_PULL ? "EwsPull" : "EwsStream";
}
