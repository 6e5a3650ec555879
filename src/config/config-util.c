/* SPDX-License-Identifier: MIT */
/*
 * config-util.c: the parser's tools that know no section: warnings and errors naming
 * file:line and the element, attribute values (text, paths, URLs, booleans, names), durations
 * and numbers, and the walk over an element's children with its unknown and repeated ones.
 */
#include "config/config-int.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "base/err.h"
#include "base/xalloc.h"

/* -- warnings and errors ------------------------------------------------------------------- */

void cfgp_warn(struct parser *p, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (p->warn == NULL)
		return;
	if (p->warn->n >= CFG_MAX_WARNINGS) {
		p->warn->dropped++;
		return;
	}
	va_start(ap, fmt);
	(void)vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	p->warn->lines = xreallocarray(p->warn->lines, p->warn->n + 1, sizeof(char *));
	p->warn->lines[p->warn->n++] = xstrdup(line);
}

int cfgp_fail(struct parser *p, const xmlNode *n, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return err_set(p->err, -EINVAL, "%s:%ld: <%s>: %s", p->name, line_of(n), name_of(n), why);
}

int cfgp_fail_attr(struct parser *p, const xmlNode *n, const char *attr, const char *value,
                   const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return err_set(p->err, -EINVAL, "%s:%ld: <%s %s=\"%.60s\">: %s", p->name, line_of(n),
	               name_of(n), attr, value, why);
}

/* -- attributes ---------------------------------------------------------------------------- */

/* Warns about every attribute of n that is not in known (NULL-terminated). */
void cfgp_check_attrs(struct parser *p, const xmlNode *n, const char *const *known)
{
	for (const xmlAttr *a = n->properties; a != NULL; a = a->next) {
		bool ok = false;

		for (size_t i = 0; known[i] != NULL && !ok; i++)
			ok = strcmp((const char *)a->name, known[i]) == 0;
		if (!ok)
			cfgp_warn(p, "%s:%ld: unknown attribute %.60s of <%s>, ignored", p->name,
			          line_of(n), (const char *)a->name, name_of(n));
	}
}

/* The value of attribute name, borrowed until the parse ends, or NULL when absent. */
const char *cfgp_attr(struct parser *p, xmlNode *n, const char *name)
{
	xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);

	if (v == NULL)
		return NULL;
	p->tmp = xreallocarray(p->tmp, p->n_tmp + 1, sizeof(*p->tmp));
	p->tmp[p->n_tmp++] = v;
	return (const char *)v;
}

/* 1..CFG_MAX_STRING bytes without control characters (or empty when allowed). */
int cfgp_check_text(struct parser *p, xmlNode *n, const char *a, const char *v, bool empty_ok)
{
	size_t len = strlen(v);

	if (len == 0 && !empty_ok)
		return cfgp_fail_attr(p, n, a, v, "must not be empty");
	if (len > CFG_MAX_STRING)
		return cfgp_fail_attr(p, n, a, v, "longer than %u bytes", CFG_MAX_STRING);
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return cfgp_fail_attr(p, n, a, v, "contains a control character");
	}
	return 0;
}

/* Copies a text attribute, when present, into *dst (replacing the default). */
int cfgp_get_text(struct parser *p, xmlNode *n, const char *a, bool empty_ok, char **dst)
{
	const char *v = cfgp_attr(p, n, a);
	int rc;

	if (v == NULL)
		return 0;
	rc = cfgp_check_text(p, n, a, v, empty_ok);
	if (rc != 0)
		return rc;
	free(*dst);
	*dst = v[0] != '\0' ? xstrdup(v) : NULL;
	return 0;
}

char *cfgp_resolve(const struct parser *p, const char *path)
{
	size_t n;
	char *out;

	if (path[0] == '/' || p->base_dir == NULL)
		return xstrdup(path);
	n = strlen(p->base_dir) + 1 + strlen(path) + 1;
	out = xmalloc(n);
	(void)snprintf(out, n, "%s/%s", p->base_dir, path);
	return out;
}

int cfgp_get_path(struct parser *p, xmlNode *n, const char *a, char **dst)
{
	const char *v = cfgp_attr(p, n, a);
	int rc;

	if (v == NULL)
		return 0;
	rc = cfgp_check_text(p, n, a, v, false);
	if (rc != 0)
		return rc;
	free(*dst);
	*dst = cfgp_resolve(p, v);
	return 0;
}

/* An http(s) URL without spaces. */
int cfgp_get_url(struct parser *p, xmlNode *n, const char *a, char **dst)
{
	const char *v = cfgp_attr(p, n, a);
	int rc;

	if (v == NULL)
		return 0;
	rc = cfgp_check_text(p, n, a, v, false);
	if (rc != 0)
		return rc;
	if (strncasecmp(v, "https://", 8) != 0 && strncasecmp(v, "http://", 7) != 0)
		return cfgp_fail_attr(p, n, a, v,
		                      "not a URL; accepted: https://host/path (or http://)");
	if (strchr(v, ' ') != NULL)
		return cfgp_fail_attr(p, n, a, v, "a URL cannot contain spaces");
	free(*dst);
	*dst = xstrdup(v);
	return 0;
}

int cfgp_get_bool(struct parser *p, xmlNode *n, const char *a, bool *dst)
{
	const char *v = cfgp_attr(p, n, a);

	if (v == NULL)
		return 0;
	if (ascii_ieq(v, "true")) {
		*dst = true;
	} else if (ascii_ieq(v, "false")) {
		*dst = false;
	} else {
		return cfgp_fail_attr(p, n, a, v, "not a boolean; accepted: true, false");
	}
	return 0;
}

/* A value from names (NULL-terminated), any case; *dst is its index. */
int cfgp_get_enum(struct parser *p, xmlNode *n, const char *a, const char *const *names,
                  const char *accepted, int *dst)
{
	const char *v = cfgp_attr(p, n, a);

	if (v == NULL)
		return 0;
	for (int i = 0; names[i] != NULL; i++) {
		if (ascii_ieq(v, names[i])) {
			*dst = i;
			return 0;
		}
	}
	return cfgp_fail_attr(p, n, a, v, "not accepted; accepted: %s", accepted);
}

/* -- durations ----------------------------------------------------------------------------- */

static const struct {
	const char *name;
	int64_t usec;
} units[] = {{"ms", USEC / 1000}, {"s", USEC}, {"min", MINUTE}, {"h", HOUR}, {"d", DAY}};

/* Writes usec in its largest whole unit, e.g. "30min", "7d", "0s". */
void cfgp_format_duration(int64_t usec, char *out, size_t size)
{
	size_t best = 1;

	/* Every unit divides 0; "0s" reads best. */
	for (size_t i = 0; usec != 0 && i < sizeof(units) / sizeof(units[0]); i++) {
		if (usec % units[i].usec == 0)
			best = i;
	}
	(void)snprintf(out, size, "%" PRId64 "%s", usec / units[best].usec, units[best].name);
}

/*
 * "<digits><unit>" exactly: 1 to 9 digits, a unit of ms, s, min, h or d, nothing else (no sign,
 * space, fraction or bare number). 0 and *out_usec, -EINVAL with why, or -ERANGE with why when
 * the microseconds do not fit in int64_t (from 106751992d on).
 */
int cfgp_parse_duration(const char *v, int64_t *out_usec, const char **why)
{
	int64_t n = 0;
	size_t i = 0;

	while (isdigit((unsigned char)v[i]) && i < 9) {
		n = n * 10 + (v[i] - '0');
		i++;
	}
	if (i == 0) {
		*why = "not a duration; accepted: a number and a unit, e.g. 250ms, 2s, 60min, 1h, 14d";
		return -EINVAL;
	}
	if (isdigit((unsigned char)v[i])) {
		*why = "too many digits";
		return -EINVAL;
	}
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		if (strcmp(v + i, units[u].name) == 0) {
			if (n > INT64_MAX / units[u].usec) {
				*why = "too large";
				return -ERANGE;
			}
			*out_usec = n * units[u].usec;
			return 0;
		}
	}
	*why = v[i] == '\0' ? "a duration needs a unit; accepted units: ms, s, min, h, d"
	                    : "unknown unit; accepted units: ms, s, min, h, d";
	return -EINVAL;
}

int cfgp_get_num(struct parser *p, xmlNode *n, const struct num_setting *s)
{
	const char *v = cfgp_attr(p, n, s->attr);
	int64_t value = 0;
	int64_t *dst = (int64_t *)(void *)((char *)p->cfg + s->offset);
	const char *why = NULL;
	char lo[32];
	char hi[32];
	int rc;

	if (v == NULL)
		return 0;
	if (s->unit == NUM_COUNT) {
		size_t i = 0;

		while (isdigit((unsigned char)v[i]) && i < 9) {
			value = value * 10 + (v[i] - '0');
			i++;
		}
		if (i == 0 || v[i] != '\0')
			return cfgp_fail_attr(p, n, s->attr, v,
			                      "not a number; accepted: %" PRId64 " to %" PRId64,
			                      s->min, s->max);
		if (value < s->min || value > s->max)
			return cfgp_fail_attr(p, n, s->attr, v,
			                      "out of range; accepted: %" PRId64 " to %" PRId64,
			                      s->min, s->max);
		*dst = value;
		return 0;
	}
	/* -ERANGE: more than int64_t holds, so past every maximum; said as out of range. */
	rc = cfgp_parse_duration(v, &value, &why);
	if (rc != 0 && rc != -ERANGE)
		return cfgp_fail_attr(p, n, s->attr, v, "%s", why);
	if (s->unit == NUM_DAYS) {
		if (rc == 0 && value % DAY != 0)
			return cfgp_fail_attr(p, n, s->attr, v, "must be whole days, e.g. 14d");
		if (rc != 0 || value / DAY < s->min || value / DAY > s->max)
			return cfgp_fail_attr(p, n, s->attr, v,
			                      "out of range; accepted: %" PRId64 "d to %" PRId64
			                      "d",
			                      s->min, s->max);
		*dst = value / DAY;
		return 0;
	}
	if (s->unit == NUM_MINUTES && rc == 0 && value % MINUTE != 0)
		return cfgp_fail_attr(p, n, s->attr, v, "must be whole minutes, e.g. 30min");
	cfgp_format_duration(s->min, lo, sizeof(lo));
	cfgp_format_duration(s->max, hi, sizeof(hi));
	if (rc != 0 || value < s->min || value > s->max)
		return cfgp_fail_attr(p, n, s->attr, v, "out of range; accepted: %s to %s", lo, hi);
	*dst = value;
	return 0;
}

/* -- children ------------------------------------------------------------------------------ */

/* Calls each known child element's function in document order; warns about unknown ones and
 * refuses a repeated one. Text and comments are ignored. */
int cfgp_walk(struct parser *p, xmlNode *parent, const struct child *kids, size_t n_kids)
{
	long seen[MAX_CHILDREN] = {0};

	assert(n_kids <= MAX_CHILDREN);
	for (xmlNode *c = parent->children; c != NULL; c = c->next) {
		size_t i = 0;
		int rc;

		if (c->type != XML_ELEMENT_NODE)
			continue;
		while (i < n_kids && strcmp(kids[i].name, name_of(c)) != 0)
			i++;
		if (i == n_kids) {
			cfgp_warn(p, "%s:%ld: unknown element <%.60s> in <%s>, ignored", p->name,
			          line_of(c), name_of(c), name_of(parent));
			continue;
		}
		if (seen[i] != 0 && !kids[i].repeat)
			return cfgp_fail(p, c, "given twice (first at line %ld); give it once",
			                 seen[i]);
		seen[i] = line_of(c);
		rc = kids[i].fn(p, c);
		if (rc != 0)
			return rc;
	}
	return 0;
}
