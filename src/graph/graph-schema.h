/* SPDX-License-Identifier: MIT */
/*
 * graph-schema.h: how src/graph/ names what it reads and writes of Microsoft Graph's schema, as
 * data, so that test-graph-csdl.c can check every name against Graph's CSDL
 * (../shared/graph-schema/v1.0-metadata.xml): each property on its type with its EDM type, and
 * each enum member calsync maps, and that every member of those enums is mapped. Each module
 * lists its own (graph_event_schema(), graph_sub_schema(), ...). Plain constant data.
 */
#pragma once

/* A property a reader looks up or a writer writes. */
struct graph_schema_prop {
	const char *type; /* its type in namespace microsoft.graph: "event", "dateTimeTimeZone" */
	const char *name; /* "showAs" */
	/* The CSDL Type attribute, with the namespace alias as the CSDL writes it: "Edm.String",
	 * "graph.freeBusyStatus", "Collection(Edm.String)". */
	const char *edm;
};

/* An enum member a reader maps, and what it maps it onto. */
struct graph_schema_enum {
	const char *type;   /* the CSDL EnumType in microsoft.graph: "freeBusyStatus" */
	const char *member; /* "workingElsewhere" */
	int value;          /* the calsync value it becomes (an enum cal_fb, a bool, ...) */
};
