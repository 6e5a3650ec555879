/* SPDX-License-Identifier: MIT */
/*
 * config-mailbox.c: the mailboxes to follow. Inline <mailbox> elements and a mailbox file (one
 * address per line), each address checked (also for the API, cfg_address_problem), and the
 * merged list with later duplicates dropped.
 */
#include "config/config-int.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "base/err.h"
#include "base/xalloc.h"

static bool atext(unsigned char c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL);
}

static bool has_dot_dot(const char *s, size_t len)
{
	for (size_t i = 1; i < len; i++) {
		if (s[i] == '.' && s[i - 1] == '.')
			return true;
	}
	return false;
}

/* NULL when s (len bytes) is a plain ASCII address local@domain, else why not. */
static const char *address_problem(const char *s, size_t len)
{
	const char *at = memchr(s, '@', len);
	size_t local;
	size_t label = 0;

	if (len > 254)
		return "longer than 254 bytes";
	if (at == NULL)
		return "no '@'";
	local = (size_t)(at - s);
	if (local == 0 || local > 64)
		return "the part before '@' must have 1 to 64 characters";
	for (size_t i = 0; i < local; i++) {
		if (!atext((unsigned char)s[i]))
			return "a character not allowed before '@'";
	}
	if (s[0] == '.' || s[local - 1] == '.' || has_dot_dot(s, local))
		return "misplaced '.' before '@'";
	if (local + 1 == len)
		return "no domain after '@'";
	for (size_t i = local + 1; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)s[i] : '.';

		if (c == '.') {
			if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-')
				return "not a valid domain after '@'";
			label = 0;
		} else if (isalnum(c) || c == '-') {
			label++;
		} else {
			return "a character not allowed in the domain";
		}
	}
	return NULL;
}

static int add_mailbox(struct parser *p, const char *s, size_t len, enum cfg_backend backend,
                       const char *file, long line)
{
	if (p->n_mbx >= CFG_MAX_MAILBOXES)
		return err_set(p->err, -EINVAL, "%s:%ld: more than %u mailboxes", file, line,
		               CFG_MAX_MAILBOXES);
	p->mbx = xreallocarray(p->mbx, p->n_mbx + 1, sizeof(*p->mbx));
	p->mbx[p->n_mbx] = (struct mbx){.smtp = xmemdup(s, len),
	                                .backend = backend,
	                                .file = file,
	                                .line = line,
	                                .order = p->n_mbx};
	p->n_mbx++;
	return 0;
}

static int el_mailbox(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"backend", NULL};
	static const char *const backends[] = {"auto", "ews", "graph", NULL};
	xmlChar *text = xmlNodeGetContent(n);
	const char *s = (const char *)text;
	size_t len;
	const char *why;
	int backend = CFG_BACKEND_AUTO;
	int rc;

	cfgp_check_attrs(p, n, known);
	rc = cfgp_get_enum(p, n, "backend", backends, "auto, ews, graph", &backend);
	if (rc != 0) {
		xmlFree(text);
		return rc;
	}
	if (text == NULL)
		return cfgp_fail(p, n,
		                 "empty; accepted: an e-mail address, e.g. alice@contoso.example");
	p->tmp = xreallocarray(p->tmp, p->n_tmp + 1, sizeof(*p->tmp));
	p->tmp[p->n_tmp++] = text;
	len = strlen(s);
	while (len > 0 && space(s[0])) {
		s++;
		len--;
	}
	while (len > 0 && space(s[len - 1]))
		len--;
	why = address_problem(s, len);
	if (why != NULL)
		return cfgp_fail(p, n, "'%.*s' is not a mailbox address: %s",
		                 (int)(len > 60 ? 60 : len), s, why);
	return add_mailbox(p, s, len, (enum cfg_backend)backend, p->name, line_of(n));
}

/* One address per line; blank lines and lines starting with '#' are skipped. */
static int read_mailbox_file(struct parser *p, xmlNode *n, const char *path)
{
	char *data = NULL;
	size_t len = 0;
	long line = 0;
	int rc;

	p->mbx_file = cfgp_resolve(p, path);
	rc = cfgp_read_whole(p->mbx_file, CFG_MAX_MAILBOX_FILE, &data, &len, NULL);
	if (rc != 0)
		return cfgp_fail_attr(p, n, "file", path, "cannot read %s: %s", p->mbx_file,
		                      cfgp_read_problem(rc));
	for (size_t pos = 0; pos < len && rc == 0;) {
		const char *eol = memchr(data + pos, '\n', len - pos);
		size_t end = eol != NULL ? (size_t)(eol - data) : len;
		const char *s = data + pos;
		size_t l = end - pos;
		const char *why;

		line++;
		pos = end + 1;
		while (l > 0 && space(s[0])) {
			s++;
			l--;
		}
		while (l > 0 && space(s[l - 1]))
			l--;
		if (l == 0 || s[0] == '#')
			continue;
		why = address_problem(s, l);
		if (why != NULL)
			rc = err_set(
				p->err, -EINVAL,
				"%s:%ld: '%.*s' is not a mailbox address: %s (<mailboxes file> at "
				"%s:%ld)",
				p->mbx_file, line, (int)(l > 60 ? 60 : l), s, why, p->name,
				line_of(n));
		else
			rc = add_mailbox(p, s, l, CFG_BACKEND_AUTO, p->mbx_file, line);
	}
	free(data);
	return rc;
}

int cfgp_el_mailboxes(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"file", NULL};
	static const struct child kids[] = {{"mailbox", el_mailbox, true}};
	const char *file;
	int rc;

	cfgp_check_attrs(p, n, known);
	rc = WALK(p, n, kids);
	if (rc != 0)
		return rc;
	file = cfgp_attr(p, n, "file");
	if (file == NULL)
		return 0;
	rc = cfgp_check_text(p, n, "file", file, false);
	if (rc != 0 || p->offline)
		return rc;
	return read_mailbox_file(p, n, file);
}

static int mbx_cmp(const void *a, const void *b)
{
	const struct mbx *x = a;
	const struct mbx *y = b;
	int c = strcasecmp(x->smtp, y->smtp);

	if (c != 0)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int mbx_order_cmp(const void *a, const void *b)
{
	const struct mbx *x = a;
	const struct mbx *y = b;

	return x->order < y->order ? -1 : x->order > y->order;
}

/* Drops later duplicates (compared without case) with a warning, keeping the list order. */
void cfgp_mailboxes_finish(struct parser *p)
{
	size_t kept = 0;

	/* qsort() wants a non-NULL array even for no elements. */
	if (p->n_mbx == 0)
		return;
	qsort(p->mbx, p->n_mbx, sizeof(*p->mbx), mbx_cmp);
	for (size_t i = 1, first = 0; i < p->n_mbx; i++) {
		if (strcasecmp(p->mbx[i].smtp, p->mbx[first].smtp) != 0) {
			first = i;
			continue;
		}
		cfgp_warn(p, "%s:%ld: mailbox '%s' already listed at %s:%ld, ignored",
		          p->mbx[i].file, p->mbx[i].line, p->mbx[i].smtp, p->mbx[first].file,
		          p->mbx[first].line);
		free(p->mbx[i].smtp);
		p->mbx[i].smtp = NULL;
	}
	qsort(p->mbx, p->n_mbx, sizeof(*p->mbx), mbx_order_cmp);
	p->cfg->mailboxes = xcalloc(p->n_mbx, sizeof(char *));
	p->cfg->mailbox_backends = xcalloc(p->n_mbx, sizeof(enum cfg_backend));
	for (size_t i = 0; i < p->n_mbx; i++) {
		if (p->mbx[i].smtp != NULL) {
			p->cfg->mailbox_backends[kept] = p->mbx[i].backend;
			p->cfg->mailboxes[kept++] = p->mbx[i].smtp;
		}
	}
	p->cfg->n_mailboxes = kept;
	free(p->mbx);
	p->mbx = NULL;
	p->n_mbx = 0;
}

const char *cfg_address_problem(const char *smtp)
{
	return address_problem(smtp, strlen(smtp));
}
