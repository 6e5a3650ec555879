/* SPDX-License-Identifier: MIT */
/*
 * test-graph-csdl.c: src/graph/ against Microsoft Graph's own schema, the CSDL of v1.0
 * ($GRAPH_SCHEMA_DIR/v1.0-metadata.xml, the team's copy in ../shared/graph-schema; meson test
 * sets the variable). Every property a reader looks up or a writer writes exists on its type
 * (or a base type: event -> outlookItem -> entity) with the EDM type we expect; every name in
 * GRAPH_EVENT_SELECT and GRAPH_USER_SELECT exists, and the $select asks for exactly what the
 * event reader reads; every enum member we map exists, and every member of those enums is
 * mapped. The CSDL is read with libxml2 without network access or entity substitution.
 */
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph-event.h"
#include "graph/graph-schema.h"
#include "graph/graph-sub.h"
#include "graph/graph-url.h"
#include "harness.h"

/* The schema of namespace microsoft.graph, alias graph (the CSDL has several). */
static xmlNodePtr schema;

static bool is(xmlNodePtr n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, (const xmlChar *)name) == 0;
}

/* Whether n's attribute equals value. */
static bool attr_is(xmlNodePtr n, const char *attr, const char *value)
{
	xmlChar *v = xmlGetProp(n, (const xmlChar *)attr);
	bool eq = v != NULL && xmlStrcmp(v, (const xmlChar *)value) == 0;

	xmlFree(v);
	return eq;
}

/* The attribute as an owned C string (free), or NULL. */
static char *attr_dup(xmlNodePtr n, const char *attr)
{
	xmlChar *v = xmlGetProp(n, (const xmlChar *)attr);
	char *s = v != NULL ? strdup((const char *)v) : NULL;

	xmlFree(v);
	return s;
}

/* The EntityType or ComplexType (kind NULL), or the EnumType (kind "EnumType"), named name. */
static xmlNodePtr find_type(const char *kind, const char *name)
{
	for (xmlNodePtr n = schema != NULL ? schema->children : NULL; n != NULL; n = n->next) {
		bool kind_ok =
			kind != NULL ? is(n, kind) : is(n, "EntityType") || is(n, "ComplexType");

		if (kind_ok && attr_is(n, "Name", name))
			return n;
	}
	return NULL;
}

/* The Type of property prop of type (or of its base types), owned, or NULL. */
static char *prop_type(const char *type, const char *prop)
{
	xmlNodePtr t = find_type(NULL, type);

	for (int depth = 0; t != NULL && depth < 16; depth++) {
		char *base;

		for (xmlNodePtr p = t->children; p != NULL; p = p->next) {
			if (is(p, "Property") && attr_is(p, "Name", prop))
				return attr_dup(p, "Type");
		}
		base = attr_dup(t, "BaseType");
		if (base == NULL || strncmp(base, "graph.", 6) != 0) {
			free(base);
			return NULL;
		}
		t = find_type(NULL, base + 6);
		free(base);
	}
	return NULL;
}

static bool load(xmlDocPtr *out)
{
	const char *dir = getenv("GRAPH_SCHEMA_DIR");
	char path[1024];
	xmlDocPtr doc;

	if (dir == NULL) {
		harness_fail(__FILE__, __LINE__,
		             "GRAPH_SCHEMA_DIR is not set (meson test sets it)");
		return false;
	}
	snprintf(path, sizeof(path), "%s/v1.0-metadata.xml", dir);
	/* No network, no entity substitution, no DTD loading: XML_PARSE_NONET alone. */
	doc = xmlReadFile(path, NULL, XML_PARSE_NONET);
	if (doc == NULL) {
		harness_fail(__FILE__, __LINE__, "cannot read the Graph CSDL %s", path);
		return false;
	}
	for (xmlNodePtr ds = xmlDocGetRootElement(doc)->children; ds != NULL; ds = ds->next) {
		if (!is(ds, "DataServices"))
			continue;
		for (xmlNodePtr s = ds->children; s != NULL; s = s->next) {
			if (is(s, "Schema") && attr_is(s, "Namespace", "microsoft.graph"))
				schema = s;
		}
	}
	if (schema == NULL) {
		harness_fail(__FILE__, __LINE__, "%s has no schema microsoft.graph", path);
		xmlFreeDoc(doc);
		return false;
	}
	*out = doc;
	return true;
}

/* Checks one property of a table. */
static void check_prop(const struct graph_schema_prop *p)
{
	char *type;

	if (strcmp(p->edm, "(open)") == 0) {
		xmlNodePtr t = find_type(NULL, p->type);

		CHECK(t != NULL && attr_is(t, "OpenType", "true"));
		return;
	}
	type = prop_type(p->type, p->name);
	if (type == NULL || strcmp(type, p->edm) != 0)
		fprintf(stderr, "%s.%s: the CSDL has %s, we expect %s\n", p->type, p->name,
		        type != NULL ? type : "no such property", p->edm);
	CHECK_STREQ(type, p->edm);
	free(type);
}

static void check_props(const struct graph_schema_prop *t, size_t n, size_t at_least)
{
	CHECK(n >= at_least);
	for (size_t i = 0; i < n; i++)
		check_prop(&t[i]);
}

TEST(event_reader_properties)
{
	size_t n;
	const struct graph_schema_prop *t = graph_event_schema(&n);

	check_props(t, n, 20);
	/* event's inheritance is what the table assumes. */
	CHECK(attr_is(find_type(NULL, "event"), "BaseType", "graph.outlookItem"));
	CHECK(attr_is(find_type(NULL, "outlookItem"), "BaseType", "graph.entity"));
}

TEST(subscription_properties)
{
	size_t n;
	const struct graph_schema_prop *t = graph_sub_schema(&n);

	check_props(t, n, 15);
}

/* Whether a table entry is a property of event itself (its type is event or a base of it). */
static bool on_event(const struct graph_schema_prop *p)
{
	return strcmp(p->type, "event") == 0 || strcmp(p->type, "outlookItem") == 0 ||
	       strcmp(p->type, "entity") == 0;
}

/* Splits a $select list; calls fn for each name. Returns the count. */
static size_t each_selected(const char *list, void (*fn)(const char *name, void *ctx), void *ctx)
{
	char name[64];
	size_t count = 0;

	for (const char *s = list; *s != '\0';) {
		size_t k = strcspn(s, ",");

		CHECK(k > 0 && k < sizeof(name));
		memcpy(name, s, k < sizeof(name) ? k : sizeof(name) - 1);
		name[k < sizeof(name) ? k : sizeof(name) - 1] = '\0';
		fn(name, ctx);
		count++;
		s += k;
		if (*s == ',')
			s++;
	}
	return count;
}

static void selected_on_event(const char *name, void *ctx)
{
	size_t n;
	const struct graph_schema_prop *t = graph_event_schema(&n);
	char *type = prop_type("event", name);
	bool read = false;

	if (type == NULL)
		fprintf(stderr, "$select names %s, which microsoft.graph.event does not have\n",
		        name);
	CHECK(type != NULL);
	free(type);
	for (size_t i = 0; i < n; i++)
		read = read || (on_event(&t[i]) && strcmp(t[i].name, name) == 0);
	if (!read)
		fprintf(stderr, "$select asks for %s, which the event reader does not read\n",
		        name);
	CHECK(read);
	(void)ctx;
}

static void selected_on_user(const char *name, void *ctx)
{
	char *type = prop_type("user", name);

	CHECK_STREQ(type, "Edm.String");
	free(type);
	(void)ctx;
}

/* Whether name is one of the comma-separated list. */
static bool in_list(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *s = list; *s != '\0';) {
		size_t k = strcspn(s, ",");

		if (k == n && strncmp(s, name, n) == 0)
			return true;
		s += k;
		if (*s == ',')
			s++;
	}
	return false;
}

TEST(select_lists)
{
	size_t n;
	const struct graph_schema_prop *t = graph_event_schema(&n);

	CHECK_EQ(each_selected(GRAPH_EVENT_SELECT, selected_on_event, NULL), 15);
	CHECK_EQ(each_selected(GRAPH_USER_SELECT, selected_on_user, NULL), 3);
	/* Every property the reader reads on the event is asked for. */
	for (size_t i = 0; i < n; i++) {
		if (!on_event(&t[i]))
			continue;
		if (!in_list(GRAPH_EVENT_SELECT, t[i].name))
			fprintf(stderr,
			        "the reader reads event.%s, which $select does not ask for\n",
			        t[i].name);
		CHECK(in_list(GRAPH_EVENT_SELECT, t[i].name));
	}
	CHECK(!in_list(GRAPH_EVENT_SELECT, "body"));
	CHECK(in_list(GRAPH_EVENT_SELECT, "type"));
}

/* Checks an enum table: each member exists, and each CSDL member of each enum is mapped. */
static void check_enums(const struct graph_schema_enum *e, size_t n, size_t n_types)
{
	size_t types = 0;

	for (size_t i = 0; i < n; i++) {
		xmlNodePtr t = find_type("EnumType", e[i].type);
		bool found = false;

		for (xmlNodePtr m = t != NULL ? t->children : NULL; m != NULL; m = m->next)
			found = found || (is(m, "Member") && attr_is(m, "Name", e[i].member));
		if (!found)
			fprintf(stderr, "%s has no member %s\n", e[i].type, e[i].member);
		CHECK(found);
		if (i > 0 && strcmp(e[i - 1].type, e[i].type) == 0)
			continue;
		/* The first entry of an enum: every member of it in the CSDL is mapped. */
		types++;
		for (xmlNodePtr m = t != NULL ? t->children : NULL; m != NULL; m = m->next) {
			char *name;
			bool mapped = false;

			if (!is(m, "Member"))
				continue;
			name = attr_dup(m, "Name");
			for (size_t k = 0; k < n; k++)
				mapped = mapped || (strcmp(e[k].type, e[i].type) == 0 &&
				                    strcmp(e[k].member, name) == 0);
			if (!mapped)
				fprintf(stderr, "%s.%s is not mapped\n", e[i].type, name);
			CHECK(mapped);
			free(name);
		}
	}
	CHECK_EQ(types, n_types);
}

TEST(enums)
{
	size_t n;
	const struct graph_schema_enum *e = graph_event_enums(&n);

	check_enums(e, n, 3); /* freeBusyStatus, sensitivity, eventType */
	e = graph_sub_enums(&n);
	check_enums(e, n, 2); /* changeType, lifecycleEventType */
}

/* Every property of a table whose type is an enum has its enum mapped. */
static void check_enum_props(const struct graph_schema_prop *t, size_t n,
                             const struct graph_schema_enum *e, size_t ne)
{
	for (size_t i = 0; i < n; i++) {
		bool mapped = false;

		if (strncmp(t[i].edm, "graph.", 6) != 0 ||
		    find_type("EnumType", t[i].edm + 6) == NULL)
			continue;
		for (size_t k = 0; k < ne; k++)
			mapped = mapped || strcmp(e[k].type, t[i].edm + 6) == 0;
		if (!mapped)
			fprintf(stderr, "%s.%s is an enum nobody maps\n", t[i].type, t[i].name);
		CHECK(mapped);
	}
}

TEST(enum_properties_are_mapped)
{
	size_t n, ne;
	const struct graph_schema_prop *t = graph_event_schema(&n);
	const struct graph_schema_enum *e = graph_event_enums(&ne);

	check_enum_props(t, n, e, ne);
	t = graph_sub_schema(&n);
	e = graph_sub_enums(&ne);
	check_enum_props(t, n, e, ne);
}

/* The CSDL was found and read: without it nothing else can be checked, and that is a failure,
 * never a skip. */
static xmlDocPtr doc;

TEST(csdl_loads)
{
	CHECK(load(&doc));
}

int main(void)
{
	RUN(csdl_loads);
	if (doc == NULL)
		return harness_done();
	RUN(event_reader_properties);
	RUN(subscription_properties);
	RUN(select_lists);
	RUN(enums);
	RUN(enum_properties_are_mapped);
	xmlFreeDoc(doc);
	xmlCleanupParser();
	return harness_done();
}
