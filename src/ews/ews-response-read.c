/* SPDX-License-Identifier: MIT */
/*
 * ews-response-read.c: reads the value of one node of a parsed response: its text or an
 * attribute (xsi:nil is absent), an xs:long, xs:boolean or xs:dateTime, a name of an
 * enumeration; and the error message that names a node whose value cannot be what it claims.
 */
#include "ews/ews-response-int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/cs-limits.h"
#include "base/err.h"
#include "base/iso8601.h"

/* The index of s in names, or 0 (each table's UNKNOWN) when it is not there. Values are
 * matched exactly, as the schema's enumerations are case-sensitive. */
static unsigned name_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 1; i < n; i++) {
		if (names[i] != NULL && strcmp(names[i], s) == 0)
			return (unsigned)i;
	}
	return 0;
}

void ews_resp_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* The element as it was written, "t:Start", for messages. */
static void written_name(const xmlNode *n, char *out, size_t size)
{
	if (n->ns != NULL && n->ns->prefix != NULL)
		snprintf(out, size, "%s:%s", (const char *)n->ns->prefix, (const char *)n->name);
	else
		snprintf(out, size, "%s", (const char *)n->name);
}

int ews_resp_bad(struct err *err, const xmlNode *n, const char *fmt, ...)
{
	char name[64];
	char what[160];
	va_list ap;

	written_name(n, name, sizeof(name));
	va_start(ap, fmt);
	(void)vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return err_set(err, -EPROTO, "line %ld: %s: %s", xmlGetLineNo(n), name, what);
}

/* The text of a chain of sibling nodes (an element's or an attribute's children), joined.
 * Usually there is one text node; CDATA sections are merged into text by XML_PARSE_NOCDATA. */
static char *chain_dup(const xmlNode *first)
{
	size_t len = 0;
	char *s;

	if (first != NULL && first->next == NULL && first->type == XML_TEXT_NODE)
		return xstrdup((const char *)first->content);
	for (const xmlNode *c = first; c != NULL; c = c->next) {
		if (c->type == XML_TEXT_NODE)
			len += strlen((const char *)c->content);
	}
	s = xmalloc(len + 1);
	len = 0;
	for (const xmlNode *c = first; c != NULL; c = c->next) {
		if (c->type == XML_TEXT_NODE) {
			size_t l = strlen((const char *)c->content);

			memcpy(s + len, c->content, l);
			len += l;
		}
	}
	s[len] = '\0';
	return s;
}

/* xsi:nil="true" (Autodiscover writes <RedirectTarget i:nil="true"/>): the value is absent. */
static bool is_nil(const xmlNode *n)
{
	const xmlAttr *a;
	char *v;
	bool nil;

	if (n->properties == NULL)
		return false;
	a = xmlHasNsProp(n, (const xmlChar *)"nil", (const xmlChar *)NS_XSI);
	if (a == NULL || a->type != XML_ATTRIBUTE_NODE)
		return false;
	v = chain_dup(a->children);
	nil = strcmp(v, "true") == 0 || strcmp(v, "1") == 0;
	free(v);
	return nil;
}

/* An element's text (owned), or NULL when it is marked nil. */
char *ews_resp_text_dup(const xmlNode *n)
{
	return is_nil(n) ? NULL : chain_dup(n->children);
}

/* Replaces *slot by the text of n: a repeated element wins over an earlier one. */
void ews_resp_set_text(char **slot, const xmlNode *n)
{
	free(*slot);
	*slot = ews_resp_text_dup(n);
}

/* The value of n's unqualified attribute name (owned), or NULL when there is none. */
char *ews_resp_attr_dup(const xmlNode *n, const char *name)
{
	const xmlAttr *a = xmlHasNsProp(n, (const xmlChar *)name, NULL);

	if (a == NULL || a->type != XML_ATTRIBUTE_NODE)
		return NULL;
	return chain_dup(a->children);
}

void ews_resp_set_attr(char **slot, const xmlNode *n, const char *name)
{
	free(*slot);
	*slot = ews_resp_attr_dup(n, name);
}

static bool xml_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Trims the XML whitespace around a value, as xs:boolean, xs:int and xs:dateTime allow. */
void ews_resp_trim(const char **s, size_t *len)
{
	while (*len > 0 && xml_space((*s)[0])) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && xml_space((*s)[*len - 1]))
		(*len)--;
}

/* xs:long in decimal: an optional sign and 1 to 18 digits, which cannot overflow. */
bool ews_resp_parse_int64(const char *s, size_t len, int64_t *out)
{
	bool neg = false;
	int64_t v = 0;

	ews_resp_trim(&s, &len);
	if (len > 0 && (s[0] == '-' || s[0] == '+')) {
		neg = s[0] == '-';
		s++;
		len--;
	}
	if (len == 0 || len > 18)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = neg ? -v : v;
	return true;
}

/* The element's text as a number; -EPROTO naming the element when it is not one. */
int ews_resp_get_int64(const xmlNode *n, int64_t *out, struct err *err)
{
	char *s = ews_resp_text_dup(n);
	bool ok = s != NULL && ews_resp_parse_int64(s, strlen(s), out);

	if (!ok)
		(void)ews_resp_bad(err, n, "not an integer: '%.40s'", s != NULL ? s : "(nil)");
	free(s);
	return ok ? 0 : -EPROTO;
}

int ews_resp_attr_int64(const xmlNode *n, const char *name, int64_t *out, bool *out_has,
                        struct err *err)
{
	char *s = ews_resp_attr_dup(n, name);
	bool ok = s == NULL || ews_resp_parse_int64(s, strlen(s), out);

	if (!ok)
		(void)ews_resp_bad(err, n, "attribute %s is not an integer: '%.40s'", name, s);
	else if (out_has != NULL)
		*out_has = s != NULL;
	free(s);
	return ok ? 0 : -EPROTO;
}

static bool parse_bool(const char *s, size_t len, bool *out)
{
	ews_resp_trim(&s, &len);
	if ((len == 4 && memcmp(s, "true", 4) == 0) || (len == 1 && s[0] == '1'))
		*out = true;
	else if ((len == 5 && memcmp(s, "false", 5) == 0) || (len == 1 && s[0] == '0'))
		*out = false;
	else
		return false;
	return true;
}

int ews_resp_get_bool(const xmlNode *n, bool *out, struct err *err)
{
	char *s = ews_resp_text_dup(n);
	bool ok = s != NULL && parse_bool(s, strlen(s), out);

	if (!ok)
		(void)ews_resp_bad(err, n, "not a boolean: '%.40s'", s != NULL ? s : "(nil)");
	free(s);
	return ok ? 0 : -EPROTO;
}

int ews_resp_attr_bool(const xmlNode *n, const char *name, bool *out, bool *out_has,
                       struct err *err)
{
	char *s = ews_resp_attr_dup(n, name);
	bool ok = s == NULL || parse_bool(s, strlen(s), out);

	if (!ok)
		(void)ews_resp_bad(err, n, "attribute %s is not a boolean: '%.40s'", name, s);
	else if (out_has != NULL)
		*out_has = s != NULL;
	free(s);
	return ok ? 0 : -EPROTO;
}

/*
 * An xs:dateTime, with or without a zone (naive times are UTC: calsync asks in UTC), as UTC
 * seconds within what iso8601_format() can print back.
 */
int ews_resp_get_time(const xmlNode *n, int64_t *out, struct err *err)
{
	char *s = ews_resp_text_dup(n);
	const char *p = s;
	size_t len = s != NULL ? strlen(s) : 0;
	struct err perr = {0};
	int64_t utc;
	int rc = -EPROTO;

	ews_resp_trim(&p, &len);
	if (s == NULL)
		(void)ews_resp_bad(err, n, "not a dateTime: nil");
	else if (len > ISO8601_MAX_LEN)
		(void)ews_resp_bad(err, n, "not a dateTime: %zu bytes", len);
	else if (iso8601_parse(p, len, &utc, NULL, &perr) != 0)
		(void)ews_resp_bad(err, n, "not a dateTime: %s", perr.msg);
	else if (utc < ISO8601_MIN_UTC || utc > ISO8601_MAX_UTC)
		(void)ews_resp_bad(err, n, "dateTime out of range: '%.40s'", p);
	else
		rc = 0;
	if (rc == 0)
		*out = utc;
	free(s);
	return rc;
}

/* An element holding one of the names of a table's enumeration: its index, or 0 (UNKNOWN) for
 * a value calsync does not know, which a newer server may well send. */
unsigned ews_resp_enum_of(const xmlNode *n, const char *const *names, size_t count)
{
	char *s = ews_resp_text_dup(n);
	unsigned i = s != NULL ? name_index(names, count, s) : 0;

	free(s);
	return i;
}

void ews_resp_push_str(char ***v, size_t *n, const xmlNode *c)
{
	*v = grow(*v, *n, sizeof(**v));
	(*v)[(*n)++] = ews_resp_text_dup(c);
}
