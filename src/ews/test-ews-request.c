/* SPDX-License-Identifier: MIT */
/*
 * test-ews-request.c: every request ews-request.c writes is well-formed, has the envelope and
 * header calsync means to send, and validates against the EWS schema of Exchange 2019
 * ($EWS_SCHEMA_DIR/messages.xsd): each header element and the body's operation element as a
 * document of its own, which is how Exchange checks them. Escaping round-trips exactly, and
 * every bad argument is refused before anything is written.
 */
#include "ews/ews-request.h"

#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlschemas.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "base/buf.h"
#include "base/err.h"
#include "harness.h"

#define NS_SOAP "http://schemas.xmlsoap.org/soap/envelope/"
#define NS_M    "http://schemas.microsoft.com/exchange/services/2006/messages"
#define NS_T    "http://schemas.microsoft.com/exchange/services/2006/types"
#define NS_A    "http://schemas.microsoft.com/exchange/2010/Autodiscover"
#define NS_WSA  "http://www.w3.org/2005/08/addressing"

#define X(s) ((const xmlChar *)(s))

/* Big enough for every request here; the largest (GetItem of 100 ids) is about 10 kB. */
#define OUT_MAX (1u << 20)

/* 2025-03-03T00:00:00Z and a week later. */
#define MONDAY_UTC INT64_C(1740960000)
#define WEEK       (7 * 86400)

/* Markup characters, "]]>", and 2-, 3- and 4-byte UTF-8 (ü, €, an emoji, 例). */
#define WEIRD "x<&>\"'\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80\xe4\xbe\x8b]]>@contoso.example"
/* Whitespace that XML parsers normalise unless it was written as character references. */
#define SPACES "a\tb\nc\r\nd  e\r"

static xmlSchemaPtr schema;
static char schema_error[512];
static int n_valid; /* elements that validated, reported at the end */

/* The header variants every EWS operation is written with. */
static const struct ews_header headers[] = {
	{0},
	{.version = "Exchange2010_SP1", .impersonate = "alice@contoso.example"},
	{.version = "Exchange2013",
         .impersonate = "bob@contoso.example",
         .id_type = EWS_ID_PRIMARY_SMTP,
         .tz_utc = true},
	{.version = "Exchange2016",
         .impersonate = "carol@ad.contoso.example",
         .id_type = EWS_ID_PRINCIPAL,
         .tz_utc = true},
	{.version = "V2017_07_11", .tz_utc = true},
	{.version = EWS_DEFAULT_VERSION, .impersonate = WEIRD},
};

#define N_HEADERS (sizeof(headers) / sizeof(headers[0]))

static void collect_schema_error(void *ctx, xmlErrorPtr e)
{
	if (schema_error[0] == '\0' && e != NULL && e->message != NULL)
		(void)snprintf(schema_error, sizeof(schema_error), "line %d: %s", e->line,
		               e->message);
}

/* Validates doc against messages.xsd; on failure schema_error holds the first error. */
static bool doc_validates(xmlDocPtr doc)
{
	xmlSchemaValidCtxtPtr v = xmlSchemaNewValidCtxt(schema);
	int rc;

	schema_error[0] = '\0';
	xmlSchemaSetValidStructuredErrors(v, collect_schema_error, NULL);
	rc = xmlSchemaValidateDoc(v, doc);
	xmlSchemaFreeValidCtxt(v);
	if (rc == 0)
		n_valid++;
	return rc == 0;
}

/*
 * Validates one element as a document of its own: the element is copied out (libxml2 declares
 * the namespaces it uses on the copy), written out as text and parsed again, so that what is
 * validated is exactly what a server would see.
 */
static bool validates(xmlNodePtr el)
{
	xmlDocPtr copy = xmlNewDoc(X("1.0"));
	xmlChar *text = NULL;
	xmlDocPtr doc;
	bool ok;
	int len = 0;

	xmlDocSetRootElement(copy, xmlDocCopyNode(el, copy, 1));
	xmlDocDumpMemory(copy, &text, &len);
	xmlFreeDoc(copy);
	doc = xmlReadMemory((const char *)text, len, "element.xml", NULL, XML_PARSE_NONET);
	xmlFree(text);
	if (doc == NULL) {
		(void)snprintf(schema_error, sizeof(schema_error), "copy does not parse");
		return false;
	}
	ok = doc_validates(doc);
	xmlFreeDoc(doc);
	return ok;
}

/* validates(), printing the schema's complaint on failure. */
static bool validates_or_say(xmlNodePtr el)
{
	if (validates(el))
		return true;
	fprintf(stderr, "<%s> does not validate: %s\n", el != NULL ? (const char *)el->name : "",
	        schema_error);
	return false;
}

static xmlNodePtr elem_from(xmlNodePtr n)
{
	while (n != NULL && n->type != XML_ELEMENT_NODE)
		n = n->next;
	return n;
}

static xmlNodePtr first_child(xmlNodePtr n)
{
	return n != NULL ? elem_from(n->children) : NULL;
}

static xmlNodePtr next_elem(xmlNodePtr n)
{
	return n != NULL ? elem_from(n->next) : NULL;
}

static bool is(xmlNodePtr n, const char *ns, const char *name)
{
	return n != NULL && n->ns != NULL && strcmp((const char *)n->ns->href, ns) == 0 &&
	       strcmp((const char *)n->name, name) == 0;
}

static int count_ns_decls(xmlNodePtr n)
{
	int count = 0;

	for (xmlNsPtr ns = n->nsDef; ns != NULL; ns = ns->next)
		count++;
	return count;
}

static bool declares(xmlNodePtr n, const char *prefix, const char *href)
{
	for (xmlNsPtr ns = n->nsDef; ns != NULL; ns = ns->next) {
		if (ns->prefix != NULL && strcmp((const char *)ns->prefix, prefix) == 0 &&
		    strcmp((const char *)ns->href, href) == 0)
			return true;
	}
	return false;
}

/* Namespace declarations below the root: there must be none. */
static int inner_ns_decls(xmlNodePtr n)
{
	int count = 0;

	for (xmlNodePtr c = first_child(n); c != NULL; c = next_elem(c))
		count += count_ns_decls(c) + inner_ns_decls(c);
	return count;
}

static bool content_is(xmlNodePtr n, const char *want)
{
	xmlChar *got = xmlNodeGetContent(n);
	bool same = got != NULL && strcmp((const char *)got, want) == 0;

	if (!same)
		fprintf(stderr, "content \"%s\", want \"%s\"\n",
		        got != NULL ? (char *)got : "(null)", want);
	xmlFree(got);
	return same;
}

static bool attr_is(xmlNodePtr n, const char *name, const char *want)
{
	xmlChar *got = xmlGetNoNsProp(n, X(name));
	bool same = got != NULL && strcmp((const char *)got, want) == 0;

	if (!same)
		fprintf(stderr, "@%s \"%s\", want \"%s\"\n", name,
		        got != NULL ? (char *)got : "(null)", want);
	xmlFree(got);
	return same;
}

static xmlDocPtr parse(const struct buf *out)
{
	if (out->data == NULL || out->len == 0)
		return NULL;
	return xmlReadMemory(out->data, (int)out->len, "request.xml", NULL, XML_PARSE_NONET);
}

static xmlXPathObjectPtr xp_eval(xmlDocPtr doc, const char *expr)
{
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	xmlXPathObjectPtr obj;

	(void)xmlXPathRegisterNs(ctx, X("s"), X(NS_SOAP));
	(void)xmlXPathRegisterNs(ctx, X("m"), X(NS_M));
	(void)xmlXPathRegisterNs(ctx, X("t"), X(NS_T));
	(void)xmlXPathRegisterNs(ctx, X("a"), X(NS_A));
	(void)xmlXPathRegisterNs(ctx, X("wsa"), X(NS_WSA));
	obj = xmlXPathEvalExpression(X(expr), ctx);
	xmlXPathFreeContext(ctx);
	return obj;
}

/* string(expr) == want; prints both on a mismatch. */
static bool xp_eq(xmlDocPtr doc, const char *expr, const char *want)
{
	char full[512];
	xmlXPathObjectPtr obj;
	bool same;

	(void)snprintf(full, sizeof(full), "string(%s)", expr);
	obj = xp_eval(doc, full);
	same = obj != NULL && obj->type == XPATH_STRING &&
	       strcmp((const char *)obj->stringval, want) == 0;
	if (!same)
		fprintf(stderr, "%s = \"%s\", want \"%s\"\n", full,
		        obj != NULL && obj->stringval != NULL ? (char *)obj->stringval : "(error)",
		        want);
	xmlXPathFreeObject(obj);
	return same;
}

static int xp_count(xmlDocPtr doc, const char *expr)
{
	char full[512];
	xmlXPathObjectPtr obj;
	int n = -1;

	(void)snprintf(full, sizeof(full), "count(%s)", expr);
	obj = xp_eval(doc, full);
	if (obj != NULL && obj->type == XPATH_NUMBER)
		n = (int)obj->floatval;
	xmlXPathFreeObject(obj);
	return n;
}

static const char *id_elem(enum ews_id_type t)
{
	switch (t) {
	case EWS_ID_SMTP:
		return "SmtpAddress";
	case EWS_ID_PRIMARY_SMTP:
		return "PrimarySmtpAddress";
	case EWS_ID_PRINCIPAL:
		return "PrincipalName";
	}
	return "?";
}

/* Checks s:Header against h (NULL = defaults) and validates each of its elements. */
static void check_header(xmlNodePtr header, const struct ews_header *h)
{
	xmlNodePtr n = first_child(header);
	xmlNodePtr leaf;

	CHECK(is(n, NS_T, "RequestServerVersion"));
	CHECK(attr_is(n, "Version",
	              h != NULL && h->version != NULL ? h->version : EWS_DEFAULT_VERSION));
	CHECK(validates_or_say(n));
	n = next_elem(n);
	if (h != NULL && h->impersonate != NULL) {
		CHECK(is(n, NS_T, "ExchangeImpersonation"));
		CHECK(is(first_child(n), NS_T, "ConnectingSID"));
		leaf = first_child(first_child(n));
		CHECK(is(leaf, NS_T, id_elem(h->id_type)));
		CHECK(next_elem(leaf) == NULL);
		CHECK(content_is(leaf, h->impersonate));
		CHECK(validates_or_say(n));
		n = next_elem(n);
	}
	if (h != NULL && h->tz_utc) {
		CHECK(is(n, NS_T, "TimeZoneContext"));
		CHECK(is(first_child(n), NS_T, "TimeZoneDefinition"));
		CHECK(attr_is(first_child(n), "Id", "UTC"));
		CHECK(validates_or_say(n));
		n = next_elem(n);
	}
	CHECK(n == NULL);
}

/*
 * The common checks of an EWS request: rc is 0, out parses, the envelope is s:Envelope with
 * s:, m: and t: declared on it and nowhere else, s:Header matches h, and s:Body holds exactly
 * one m:<op> that validates. Returns the parsed document (caller frees) or NULL. On any failure
 * the request is printed, since the check's own line says little.
 */
static xmlDocPtr check_ews(int rc, const struct buf *out, const struct ews_header *h,
                           const char *op)
{
	static const char decl[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
	int failures = harness_current_failures;
	xmlDocPtr doc;
	xmlNodePtr root;
	xmlNodePtr body;
	xmlNodePtr el;

	CHECK_EQ(rc, 0);
	doc = parse(out);
	CHECK(doc != NULL);
	if (rc != 0 || doc == NULL)
		goto out;
	CHECK(out->len > sizeof(decl) && memcmp(out->data, decl, sizeof(decl) - 1) == 0);
	root = xmlDocGetRootElement(doc);
	CHECK(is(root, NS_SOAP, "Envelope"));
	CHECK_EQ(count_ns_decls(root), 3);
	CHECK(declares(root, "s", NS_SOAP));
	CHECK(declares(root, "m", NS_M));
	CHECK(declares(root, "t", NS_T));
	CHECK_EQ(inner_ns_decls(root), 0);
	CHECK(is(first_child(root), NS_SOAP, "Header"));
	check_header(first_child(root), h);
	body = next_elem(first_child(root));
	CHECK(is(body, NS_SOAP, "Body"));
	CHECK(next_elem(body) == NULL);
	el = first_child(body);
	CHECK(is(el, NS_M, op));
	CHECK(next_elem(el) == NULL);
	CHECK(el == NULL || validates_or_say(el));
out:
	if (harness_current_failures != failures)
		fprintf(stderr, "request was:\n%.*s\n", (int)out->len,
		        out->data != NULL ? out->data : "");
	return doc;
}

/* n owned strings "<prefix><i, 5 digits><suffix>". */
static char **make_ids(size_t n, const char *prefix, const char *suffix)
{
	char **ids = calloc(n, sizeof(*ids));

	for (size_t i = 0; i < n; i++) {
		ids[i] = malloc(64);
		(void)snprintf(ids[i], 64, "%s%05zu%s", prefix, i, suffix);
	}
	return ids;
}

static void free_ids(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

/* The t:EventType values of a Subscribe, joined by spaces. */
static bool event_types_are(xmlDocPtr doc, const char *want)
{
	xmlXPathObjectPtr obj = xp_eval(doc, "//t:EventTypes/t:EventType");
	char got[256] = "";
	size_t len = 0;
	bool same;

	for (int i = 0; obj != NULL && obj->nodesetval != NULL && i < obj->nodesetval->nodeNr;
	     i++) {
		xmlChar *s = xmlNodeGetContent(obj->nodesetval->nodeTab[i]);

		len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%s", i > 0 ? " " : "",
		                        (const char *)s);
		xmlFree(s);
	}
	xmlXPathFreeObject(obj);
	same = strcmp(got, want) == 0;
	if (!same)
		fprintf(stderr, "event types \"%s\", want \"%s\"\n", got, want);
	return same;
}

TEST(subscribe_pull_and_streaming)
{
	static const struct {
		struct ews_subscribe r;
		const char *events;
	} cases[] = {
		{{.timeout_min = 30},
	         "CreatedEvent DeletedEvent ModifiedEvent MovedEvent CopiedEvent FreeBusyChangedEvent"},
		{{.timeout_min = 1440, .watermark = "AAAAAGUhAAAAAAAAAQ==", .events = 0x7f},
	         "CreatedEvent DeletedEvent ModifiedEvent MovedEvent CopiedEvent NewMailEvent "
	         "FreeBusyChangedEvent"},
		{{.timeout_min = 1, .watermark = WEIRD, .events = EWS_EV_MODIFIED},
	         "ModifiedEvent"},
		{{.streaming = true}, NULL},
		{{.streaming = true, .events = EWS_EV_FREEBUSY}, "FreeBusyChangedEvent"},
	};
	struct buf out;

	buf_init(&out, OUT_MAX);
	for (size_t i = 0; i < N_HEADERS; i++) {
		for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
			const struct ews_subscribe *r = &cases[k].r;
			xmlDocPtr doc = check_ews(ews_req_subscribe(&headers[i], r, &out, NULL),
			                          &out, &headers[i], "Subscribe");
			const char *req = r->streaming ? "m:StreamingSubscriptionRequest"
			                               : "m:PullSubscriptionRequest";
			char path[128];

			if (doc == NULL)
				continue;
			(void)snprintf(path, sizeof(path), "/s:Envelope/s:Body/m:Subscribe/%s",
			               req);
			CHECK_EQ(xp_count(doc, path), 1);
			CHECK(xp_eq(doc, "//t:FolderIds/t:DistinguishedFolderId/@Id", "calendar"));
			CHECK(event_types_are(doc, cases[k].events != NULL ? cases[k].events
			                                                   : cases[0].events));
			CHECK(xp_eq(doc, "//t:Watermark",
			            r->watermark != NULL ? r->watermark : ""));
			CHECK_EQ(xp_count(doc, "//t:Watermark"), r->watermark != NULL);
			CHECK_EQ(xp_count(doc, "//t:Timeout"), !r->streaming);
			if (!r->streaming) {
				char t[16];

				(void)snprintf(t, sizeof(t), "%u", r->timeout_min);
				CHECK(xp_eq(doc, "//t:Timeout", t));
			}
			xmlFreeDoc(doc);
		}
	}
	/* A NULL header means the defaults. */
	xmlFreeDoc(check_ews(ews_req_subscribe(NULL, &cases[0].r, &out, NULL), &out, NULL,
	                     "Subscribe"));
	buf_free(&out);
}

TEST(get_events)
{
	struct buf out;

	buf_init(&out, OUT_MAX);
	for (size_t i = 0; i < N_HEADERS; i++) {
		xmlDocPtr doc =
			check_ews(ews_req_get_events(&headers[i], "SUB-1", "WM-10", &out, NULL),
		                  &out, &headers[i], "GetEvents");

		if (doc == NULL)
			continue;
		CHECK(xp_eq(doc, "/s:Envelope/s:Body/m:GetEvents/m:SubscriptionId", "SUB-1"));
		CHECK(xp_eq(doc, "/s:Envelope/s:Body/m:GetEvents/m:Watermark", "WM-10"));
		xmlFreeDoc(doc);
	}
	xmlFreeDoc(check_ews(ews_req_get_events(NULL, WEIRD, SPACES, &out, NULL), &out, NULL,
	                     "GetEvents"));
	buf_free(&out);
}

TEST(get_streaming_events_1_and_200_ids)
{
	static const size_t counts[] = {1, 2, EWS_MAX_STREAM_IDS};
	static const unsigned timeouts[] = {1, 30};
	char **ids = make_ids(EWS_MAX_STREAM_IDS, "JgBzdWItJXp1LWlk=", "");
	struct buf out;

	buf_init(&out, OUT_MAX);
	for (size_t i = 0; i < N_HEADERS; i++) {
		for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
			unsigned timeout = timeouts[c % 2];
			int rc = ews_req_get_streaming_events(&headers[i], (const char *const *)ids,
			                                      counts[c], timeout, &out, NULL);
			xmlDocPtr doc = check_ews(rc, &out, &headers[i], "GetStreamingEvents");
			char t[16];

			if (doc == NULL)
				continue;
			CHECK_EQ(xp_count(doc, "/s:Envelope/s:Body/m:GetStreamingEvents/"
			                       "m:SubscriptionIds/t:SubscriptionId"),
			         counts[c]);
			CHECK(xp_eq(doc, "//t:SubscriptionId[last()]", ids[counts[c] - 1]));
			(void)snprintf(t, sizeof(t), "%u", timeout);
			CHECK(xp_eq(doc,
			            "/s:Envelope/s:Body/m:GetStreamingEvents/m:ConnectionTimeout",
			            t));
			xmlFreeDoc(doc);
		}
	}
	free_ids(ids, EWS_MAX_STREAM_IDS);
	buf_free(&out);
}

TEST(unsubscribe)
{
	struct buf out;

	buf_init(&out, OUT_MAX);
	for (size_t i = 0; i < N_HEADERS; i++) {
		xmlDocPtr doc = check_ews(ews_req_unsubscribe(&headers[i], "SUB-1", &out, NULL),
		                          &out, &headers[i], "Unsubscribe");

		if (doc == NULL)
			continue;
		CHECK(xp_eq(doc, "/s:Envelope/s:Body/m:Unsubscribe/m:SubscriptionId", "SUB-1"));
		xmlFreeDoc(doc);
	}
	buf_free(&out);
}

TEST(find_calendar_view)
{
	static const struct ews_find_calendar cases[] = {
		{.start_utc = MONDAY_UTC, .end_utc = MONDAY_UTC + WEEK},
		{.start_utc = MONDAY_UTC - 86400, .end_utc = MONDAY_UTC + 1, .max_entries = 500},
		{.start_utc = 0, .end_utc = 1, .max_entries = 1},
	};
	static const char *const starts[] = {"2025-03-03T00:00:00Z", "2025-03-02T00:00:00Z",
	                                     "1970-01-01T00:00:00Z"};
	static const char *const ends[] = {"2025-03-10T00:00:00Z", "2025-03-03T00:00:01Z",
	                                   "1970-01-01T00:00:01Z"};
	static const char *const maxes[] = {"", "500", "1"};
	struct buf out;

	buf_init(&out, OUT_MAX);
	for (size_t i = 0; i < N_HEADERS; i++) {
		for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
			xmlDocPtr doc =
				check_ews(ews_req_find_calendar(&headers[i], &cases[k], &out, NULL),
			                  &out, &headers[i], "FindItem");

			if (doc == NULL)
				continue;
			CHECK(xp_eq(doc, "//m:FindItem/@Traversal", "Shallow"));
			CHECK(xp_eq(doc, "//m:FindItem/m:ItemShape/t:BaseShape", "IdOnly"));
			CHECK_EQ(xp_count(doc, "//m:ItemShape/t:AdditionalProperties/t:FieldURI"),
			         12);
			CHECK_EQ(xp_count(doc, "//t:FieldURI[@FieldURI='calendar:UID']"), 1);
			CHECK_EQ(xp_count(doc, "//t:FieldURI[@FieldURI='calendar:RecurrenceId']"),
			         0);
			CHECK(xp_eq(doc, "//m:CalendarView/@StartDate", starts[k]));
			CHECK(xp_eq(doc, "//m:CalendarView/@EndDate", ends[k]));
			CHECK(xp_eq(doc, "//m:CalendarView/@MaxEntriesReturned", maxes[k]));
			CHECK(xp_eq(doc, "//m:ParentFolderIds/t:DistinguishedFolderId/@Id",
			            "calendar"));
			xmlFreeDoc(doc);
		}
	}
	buf_free(&out);
}

TEST(get_item_ids_and_occurrences)
{
	static const struct ews_item_ref mixed[] = {
		{.id = "AAMkAD1="},
		{.id = "AAMkAD2=", .change_key = "DwAAABYA"},
		{.master_id = "AAMkMASTER=", .instance_index = 3},
		{.master_id = "AAMkMASTER=", .instance_index = 1, .change_key = "DwAAABYB"},
	};
	struct ews_item_ref many[EWS_MAX_GETITEM_IDS];
	char **ids = make_ids(EWS_MAX_GETITEM_IDS, "AAMkAGI2TG93AAA=", "");
	struct buf out;

	for (size_t i = 0; i < EWS_MAX_GETITEM_IDS; i++)
		many[i] = (struct ews_item_ref){.id = ids[i]};
	buf_init(&out, OUT_MAX);
	for (size_t i = 0; i < N_HEADERS; i++) {
		xmlDocPtr doc = check_ews(ews_req_get_item(&headers[i], mixed, 4, &out, NULL), &out,
		                          &headers[i], "GetItem");

		if (doc == NULL)
			continue;
		CHECK(xp_eq(doc, "//m:GetItem/m:ItemShape/t:BaseShape", "IdOnly"));
		CHECK_EQ(xp_count(doc, "//m:ItemShape/t:AdditionalProperties/t:FieldURI"), 14);
		CHECK_EQ(xp_count(doc, "//t:FieldURI[@FieldURI='calendar:RecurrenceId']"), 1);
		CHECK_EQ(xp_count(doc, "//t:FieldURI[@FieldURI='calendar:StartTimeZone']"), 1);
		CHECK_EQ(xp_count(doc, "//m:GetItem/m:ItemIds/*"), 4);
		CHECK(xp_eq(doc, "//m:ItemIds/*[1]/@Id", "AAMkAD1="));
		CHECK_EQ(xp_count(doc, "//m:ItemIds/*[1]/@ChangeKey"), 0);
		CHECK(xp_eq(doc, "//m:ItemIds/t:ItemId[2]/@ChangeKey", "DwAAABYA"));
		CHECK(xp_eq(doc, "//m:ItemIds/*[3][self::t:OccurrenceItemId]/@RecurringMasterId",
		            "AAMkMASTER="));
		CHECK(xp_eq(doc, "//m:ItemIds/*[3]/@InstanceIndex", "3"));
		CHECK_EQ(xp_count(doc, "//m:ItemIds/*[3]/@ChangeKey"), 0);
		CHECK(xp_eq(doc, "//m:ItemIds/*[4]/@ChangeKey", "DwAAABYB"));
		CHECK(xp_eq(doc, "//m:ItemIds/*[4]/@InstanceIndex", "1"));
		xmlFreeDoc(doc);
	}
	for (size_t n = 1; n <= EWS_MAX_GETITEM_IDS; n += EWS_MAX_GETITEM_IDS - 1) {
		xmlDocPtr doc = check_ews(ews_req_get_item(NULL, many, n, &out, NULL), &out, NULL,
		                          "GetItem");

		if (doc == NULL)
			continue;
		CHECK_EQ(xp_count(doc, "//m:ItemIds/t:ItemId"), n);
		CHECK(xp_eq(doc, "//m:ItemIds/t:ItemId[last()]/@Id", ids[n - 1]));
		xmlFreeDoc(doc);
	}
	free_ids(ids, EWS_MAX_GETITEM_IDS);
	buf_free(&out);
}

TEST(sync_folder_items)
{
	static const struct {
		const char *state;
		unsigned max;
	} cases[] = {{NULL, 512}, {"H4sIAAAAAAAEAO29B2AcSZ=", 1}, {WEIRD SPACES, 100}};
	struct buf out;

	buf_init(&out, OUT_MAX);
	for (size_t i = 0; i < N_HEADERS; i++) {
		for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
			int rc = ews_req_sync_folder_items(&headers[i], cases[k].state,
			                                   cases[k].max, &out, NULL);
			xmlDocPtr doc = check_ews(rc, &out, &headers[i], "SyncFolderItems");
			char max[16];

			if (doc == NULL)
				continue;
			CHECK(xp_eq(doc, "//m:SyncFolderItems/m:ItemShape/t:BaseShape", "IdOnly"));
			CHECK_EQ(xp_count(doc, "//m:ItemShape/t:AdditionalProperties"), 0);
			CHECK(xp_eq(doc, "//m:SyncFolderId/t:DistinguishedFolderId/@Id",
			            "calendar"));
			CHECK_EQ(xp_count(doc, "//m:SyncFolderItems/m:SyncState"),
			         cases[k].state != NULL);
			if (cases[k].state != NULL)
				CHECK(xp_eq(doc, "//m:SyncFolderItems/m:SyncState",
				            cases[k].state));
			(void)snprintf(max, sizeof(max), "%u", cases[k].max);
			CHECK(xp_eq(doc, "//m:SyncFolderItems/m:MaxChangesReturned", max));
			xmlFreeDoc(doc);
		}
	}
	buf_free(&out);
}

TEST(get_folder_with_and_without_commit_props)
{
	struct buf out;

	buf_init(&out, OUT_MAX);
	for (size_t i = 0; i < N_HEADERS; i++) {
		for (int props = 0; props <= 1; props++) {
			xmlDocPtr doc =
				check_ews(ews_req_get_folder(&headers[i], props, &out, NULL), &out,
			                  &headers[i], "GetFolder");

			if (doc == NULL)
				continue;
			CHECK(xp_eq(doc, "//m:GetFolder/m:FolderShape/t:BaseShape", "IdOnly"));
			CHECK_EQ(xp_count(doc, "//t:AdditionalProperties/t:ExtendedFieldURI"),
			         props ? 2 : 0);
			if (props) {
				CHECK(xp_eq(doc, "//t:ExtendedFieldURI[1]/@PropertyTag", "0x670A"));
				CHECK(xp_eq(doc, "//t:ExtendedFieldURI[1]/@PropertyType",
				            "SystemTime"));
				CHECK(xp_eq(doc, "//t:ExtendedFieldURI[2]/@PropertyTag", "0x670B"));
				CHECK(xp_eq(doc, "//t:ExtendedFieldURI[2]/@PropertyType",
				            "Integer"));
			}
			CHECK(xp_eq(doc, "//m:FolderIds/t:DistinguishedFolderId/@Id", "calendar"));
			xmlFreeDoc(doc);
		}
	}
	buf_free(&out);
}

TEST(get_user_availability)
{
	char **boxes = make_ids(EWS_MAX_AVAILABILITY_MAILBOXES, "user", "@contoso.example");
	const struct ews_availability cases[] = {
		{.mailboxes = (const char *const *)boxes,
	         .n_mailboxes = 1,
	         .start_utc = MONDAY_UTC,
	         .end_utc = MONDAY_UTC + 86400,
	         .interval_min = 15},
		{.mailboxes = (const char *const *)boxes,
	         .n_mailboxes = EWS_MAX_AVAILABILITY_MAILBOXES,
	         .start_utc = MONDAY_UTC + 9 * 3600 + 30 * 60,
	         .end_utc = MONDAY_UTC + 42 * 86400,
	         .interval_min = 5},
		{.mailboxes = (const char *const *)boxes,
	         .n_mailboxes = 2,
	         .start_utc = MONDAY_UTC,
	         .end_utc = MONDAY_UTC + 1,
	         .interval_min = 1440},
	};
	static const char *const starts[] = {"2025-03-03T00:00:00", "2025-03-03T09:30:00",
	                                     "2025-03-03T00:00:00"};
	static const char *const ends[] = {"2025-03-04T00:00:00", "2025-04-14T00:00:00",
	                                   "2025-03-03T00:00:01"};
	struct buf out;

	buf_init(&out, OUT_MAX);
	for (size_t i = 0; i < N_HEADERS; i++) {
		for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
			int rc = ews_req_get_user_availability(&headers[i], &cases[k], &out, NULL);
			xmlDocPtr doc =
				check_ews(rc, &out, &headers[i], "GetUserAvailabilityRequest");
			char interval[16];

			if (doc == NULL)
				continue;
			CHECK(xp_eq(doc, "//m:GetUserAvailabilityRequest/t:TimeZone/t:Bias", "0"));
			CHECK(xp_eq(doc, "//t:TimeZone/t:StandardTime/t:Bias", "0"));
			CHECK(xp_eq(doc, "//t:TimeZone/t:DaylightTime/t:Bias", "0"));
			CHECK_EQ(xp_count(doc, "//m:MailboxDataArray/t:MailboxData"),
			         cases[k].n_mailboxes);
			CHECK(xp_eq(doc, "//t:MailboxData[last()]/t:Email/t:Address",
			            boxes[cases[k].n_mailboxes - 1]));
			CHECK(xp_eq(doc, "//t:MailboxData[1]/t:AttendeeType", "Required"));
			CHECK(xp_eq(doc, "//t:FreeBusyViewOptions/t:TimeWindow/t:StartTime",
			            starts[k]));
			CHECK(xp_eq(doc, "//t:FreeBusyViewOptions/t:TimeWindow/t:EndTime",
			            ends[k]));
			(void)snprintf(interval, sizeof(interval), "%u", cases[k].interval_min);
			CHECK(xp_eq(doc,
			            "//t:FreeBusyViewOptions/t:MergedFreeBusyIntervalInMinutes",
			            interval));
			CHECK(xp_eq(doc, "//t:FreeBusyViewOptions/t:RequestedView",
			            "FreeBusyMerged"));
			xmlFreeDoc(doc);
		}
	}
	free_ids(boxes, EWS_MAX_AVAILABILITY_MAILBOXES);
	buf_free(&out);
}

/* Autodiscover is not in the EWS schema: its structure is checked by XPath. */
static xmlDocPtr check_autodiscover(int rc, const struct buf *out, size_t n, const char *to,
                                    const char *version)
{
	static const char *const settings[] = {"InternalEwsUrl", "ExternalEwsUrl",
	                                       "GroupingInformation", "CasVersion",
	                                       "EwsSupportedSchemas"};
	static const char req[] = "/s:Envelope/s:Body/a:GetUserSettingsRequestMessage/a:Request";
	int failures = harness_current_failures;
	char path[256];
	xmlDocPtr doc;
	xmlNodePtr root;

	CHECK_EQ(rc, 0);
	doc = parse(out);
	CHECK(doc != NULL);
	if (rc != 0 || doc == NULL)
		goto out;
	root = xmlDocGetRootElement(doc);
	CHECK(is(root, NS_SOAP, "Envelope"));
	CHECK_EQ(count_ns_decls(root), 3);
	CHECK(declares(root, "s", NS_SOAP));
	CHECK(declares(root, "a", NS_A));
	CHECK(declares(root, "wsa", NS_WSA));
	CHECK_EQ(inner_ns_decls(root), 0);
	CHECK_EQ(xp_count(doc, "/s:Envelope/*"), 2);
	CHECK_EQ(xp_count(doc, "/s:Envelope/s:Header/*"), 3);
	CHECK(xp_eq(doc, "/s:Envelope/s:Header/*[1][self::a:RequestedServerVersion]", version));
	CHECK(xp_eq(doc, "/s:Envelope/s:Header/*[2][self::wsa:Action]",
	            NS_A "/Autodiscover/GetUserSettings"));
	CHECK(xp_eq(doc, "/s:Envelope/s:Header/*[3][self::wsa:To]", to));
	CHECK_EQ(xp_count(doc, "/s:Envelope/s:Body/*"), 1);
	(void)snprintf(path, sizeof(path), "%s/a:Users/a:User/a:Mailbox", req);
	CHECK_EQ(xp_count(doc, path), n);
	(void)snprintf(path, sizeof(path), "%s/a:RequestedSettings/a:Setting", req);
	CHECK_EQ(xp_count(doc, path), 5);
	for (size_t i = 0; i < 5; i++) {
		(void)snprintf(path, sizeof(path), "%s/a:RequestedSettings/a:Setting[%zu]", req,
		               i + 1);
		CHECK(xp_eq(doc, path, settings[i]));
	}
out:
	if (harness_current_failures != failures)
		fprintf(stderr, "request was:\n%.*s\n", (int)out->len,
		        out->data != NULL ? out->data : "");
	return doc;
}

TEST(autodiscover_get_user_settings)
{
	static const char to[] =
		"https://autodiscover.contoso.example/autodiscover/autodiscover.svc";
	char **boxes = make_ids(100, "user", "@contoso.example");
	struct buf out;
	xmlDocPtr doc;

	buf_init(&out, OUT_MAX);
	doc = check_autodiscover(
		ews_req_get_user_settings((const char *const *)boxes, 1, to, NULL, &out, NULL),
		&out, 1, to, "Exchange2013");
	CHECK(doc == NULL || xp_eq(doc, "//a:User/a:Mailbox", boxes[0]));
	xmlFreeDoc(doc);
	doc = check_autodiscover(ews_req_get_user_settings((const char *const *)boxes, 100,
	                                                   "https://x/a?b=1&c=<2>", "Exchange2016",
	                                                   &out, NULL),
	                         &out, 100, "https://x/a?b=1&c=<2>", "Exchange2016");
	CHECK(doc == NULL || xp_eq(doc, "//a:User[100]/a:Mailbox", boxes[99]));
	xmlFreeDoc(doc);
	free_ids(boxes, 100);
	buf_free(&out);
}

/* Markup, "]]>", non-ASCII and whitespace come back exactly, in elements and attributes. */
TEST(escaping_round_trips)
{
	static const char *const values[] = {WEIRD, SPACES, WEIRD SPACES};
	struct buf out;

	buf_init(&out, OUT_MAX);
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		const char *v = values[i];
		struct ews_header h = {.impersonate = v};
		struct ews_item_ref refs[] = {{.id = v, .change_key = v},
		                              {.master_id = v, .instance_index = 2}};
		xmlDocPtr doc;

		/* check_ews() compares the impersonated address already. */
		doc = check_ews(ews_req_sync_folder_items(&h, v, 10, &out, NULL), &out, &h,
		                "SyncFolderItems");
		CHECK(doc == NULL || xp_eq(doc, "//m:SyncState", v));
		xmlFreeDoc(doc);
		doc = check_ews(ews_req_get_item(&h, refs, 2, &out, NULL), &out, &h, "GetItem");
		CHECK(doc == NULL || xp_eq(doc, "//t:ItemId/@Id", v));
		CHECK(doc == NULL || xp_eq(doc, "//t:ItemId/@ChangeKey", v));
		CHECK(doc == NULL || xp_eq(doc, "//t:OccurrenceItemId/@RecurringMasterId", v));
		xmlFreeDoc(doc);
		doc = check_ews(ews_req_get_streaming_events(&h, &v, 1, 30, &out, NULL), &out, &h,
		                "GetStreamingEvents");
		CHECK(doc == NULL || xp_eq(doc, "//t:SubscriptionId", v));
		xmlFreeDoc(doc);
		doc = check_autodiscover(ews_req_get_user_settings(&v, 1, v, v, &out, NULL), &out,
		                         1, v, v);
		CHECK(doc == NULL || xp_eq(doc, "//a:Mailbox", v));
		xmlFreeDoc(doc);
	}
	buf_free(&out);
}

/* Checks a refusal: the code, err naming the argument, and out left empty. */
static void check_fails(int rc, const struct err *err, const struct buf *out, int code,
                        const char *word, int line)
{
	int failures = harness_current_failures;

	CHECK_EQ(rc, code);
	CHECK_EQ(err->code, code);
	CHECK(strstr(err->msg, word) != NULL);
	CHECK_EQ(out->len, 0);
	if (harness_current_failures != failures)
		fprintf(stderr, "  (case at line %d: \"%s\", want \"%s\")\n", line, err->msg, word);
}

#define FAILS(call, code, word)                                            \
	do {                                                               \
		err = (struct err){0};                                     \
		check_fails((call), &err, &out, (code), (word), __LINE__); \
	} while (0)

TEST(bad_arguments_are_refused)
{
	static const char *const one[] = {"SUB-1"};
	static const char *const empty_second[] = {"SUB-1", ""};
	static const struct ews_item_ref no_id[] = {{.change_key = "CK"}};
	static const struct ews_item_ref both[] = {
		{.id = "A", .master_id = "M", .instance_index = 1}};
	static const struct ews_item_ref index0[] = {{.master_id = "M"}};
	static const struct ews_item_ref empty_ck[] = {{.id = "A", .change_key = ""}};
	char **ids = make_ids(EWS_MAX_STREAM_IDS + 1, "SUB-", "");
	const char *const *cids = (const char *const *)ids;
	struct ews_item_ref refs[EWS_MAX_GETITEM_IDS + 1];
	struct ews_availability av = {.mailboxes = one,
	                              .n_mailboxes = 1,
	                              .start_utc = MONDAY_UTC,
	                              .end_utc = MONDAY_UTC + 3600,
	                              .interval_min = 30};
	struct ews_availability av_bad;
	struct ews_find_calendar fc = {.start_utc = MONDAY_UTC, .end_utc = MONDAY_UTC + 3600};
	struct ews_find_calendar fc_bad;
	struct ews_header h;
	struct err err;
	struct buf out;

	for (size_t i = 0; i < EWS_MAX_GETITEM_IDS + 1; i++)
		refs[i] = (struct ews_item_ref){.id = "A"};
	buf_init(&out, OUT_MAX);

	/* The header. */
	h = (struct ews_header){.version = ""};
	FAILS(ews_req_unsubscribe(&h, "S", &out, &err), -EINVAL, "version");
	h = (struct ews_header){.version = "Exchange2019"};
	FAILS(ews_req_unsubscribe(&h, "S", &out, &err), -EINVAL, "Exchange2019");
	h = (struct ews_header){.impersonate = ""};
	FAILS(ews_req_unsubscribe(&h, "S", &out, &err), -EINVAL, "impersonate");
	h = (struct ews_header){.impersonate = "a@b", .id_type = (enum ews_id_type)3};
	FAILS(ews_req_unsubscribe(&h, "S", &out, &err), -EINVAL, "id_type");

	/* Subscribe. */
	FAILS(ews_req_subscribe(NULL, &(struct ews_subscribe){0}, &out, &err), -EINVAL,
	      "timeout_min");
	FAILS(ews_req_subscribe(NULL, &(struct ews_subscribe){.timeout_min = 1441}, &out, &err),
	      -EINVAL, "timeout_min");
	FAILS(ews_req_subscribe(NULL, &(struct ews_subscribe){.timeout_min = 5, .watermark = ""},
	                        &out, &err),
	      -EINVAL, "watermark");
	FAILS(ews_req_subscribe(NULL, &(struct ews_subscribe){.timeout_min = 5, .events = 1u << 7},
	                        &out, &err),
	      -EINVAL, "events");
	FAILS(ews_req_subscribe(NULL, &(struct ews_subscribe){.streaming = true, .watermark = "W"},
	                        &out, &err),
	      -EINVAL, "watermark");
	/* Streaming and FreeBusyChangedEvent need Exchange2010_SP1. */
	h = (struct ews_header){.version = "Exchange2010"};
	FAILS(ews_req_subscribe(&h, &(struct ews_subscribe){.streaming = true}, &out, &err),
	      -EINVAL, "Exchange2010_SP1");
	FAILS(ews_req_subscribe(&h, &(struct ews_subscribe){.timeout_min = 5}, &out, &err), -EINVAL,
	      "Exchange2010_SP1");
	CHECK_EQ(ews_req_subscribe(
			 &h, &(struct ews_subscribe){.timeout_min = 5, .events = EWS_EV_CREATED},
			 &out, NULL),
	         0);
	FAILS(ews_req_get_streaming_events(&h, one, 1, 30, &out, &err), -EINVAL,
	      "Exchange2010_SP1");

	/* GetEvents, Unsubscribe. */
	FAILS(ews_req_get_events(NULL, "", "W", &out, &err), -EINVAL, "subscription_id");
	FAILS(ews_req_get_events(NULL, "S", NULL, &out, &err), -EINVAL, "watermark");
	FAILS(ews_req_unsubscribe(NULL, NULL, &out, &err), -EINVAL, "subscription_id");
	FAILS(ews_req_unsubscribe(NULL, "", &out, &err), -EINVAL, "subscription_id");

	/* GetStreamingEvents: 0 and 201 ids, timeouts 0 and 31, an empty id. */
	FAILS(ews_req_get_streaming_events(NULL, cids, 0, 30, &out, &err), -EINVAL, "n_ids");
	FAILS(ews_req_get_streaming_events(NULL, cids, EWS_MAX_STREAM_IDS + 1, 30, &out, &err),
	      -EINVAL, "n_ids");
	FAILS(ews_req_get_streaming_events(NULL, NULL, 1, 30, &out, &err), -EINVAL, "n_ids");
	FAILS(ews_req_get_streaming_events(NULL, cids, 1, 0, &out, &err), -EINVAL, "timeout_min");
	FAILS(ews_req_get_streaming_events(NULL, cids, 1, 31, &out, &err), -EINVAL, "timeout_min");
	FAILS(ews_req_get_streaming_events(NULL, empty_second, 2, 30, &out, &err), -EINVAL,
	      "ids[1]");

	/* FindItem. */
	fc_bad = fc;
	fc_bad.end_utc = fc.start_utc;
	FAILS(ews_req_find_calendar(NULL, &fc_bad, &out, &err), -EINVAL, "start_utc");
	fc_bad.end_utc = fc.start_utc - 1;
	FAILS(ews_req_find_calendar(NULL, &fc_bad, &out, &err), -EINVAL, "start_utc");
	fc_bad = fc;
	fc_bad.end_utc = INT64_MAX;
	FAILS(ews_req_find_calendar(NULL, &fc_bad, &out, &err), -EINVAL, "end_utc");
	fc_bad = fc;
	fc_bad.start_utc = INT64_MIN;
	FAILS(ews_req_find_calendar(NULL, &fc_bad, &out, &err), -EINVAL, "start_utc");
	fc_bad = fc;
	fc_bad.max_entries = 1u << 31;
	FAILS(ews_req_find_calendar(NULL, &fc_bad, &out, &err), -EINVAL, "max_entries");

	/* GetItem. */
	FAILS(ews_req_get_item(NULL, refs, 0, &out, &err), -EINVAL, "n_ids");
	FAILS(ews_req_get_item(NULL, refs, EWS_MAX_GETITEM_IDS + 1, &out, &err), -EINVAL, "n_ids");
	FAILS(ews_req_get_item(NULL, no_id, 1, &out, &err), -EINVAL, "ids[0].id");
	FAILS(ews_req_get_item(NULL, both, 1, &out, &err), -EINVAL, "master_id");
	FAILS(ews_req_get_item(NULL, index0, 1, &out, &err), -EINVAL, "instance_index");
	FAILS(ews_req_get_item(NULL, empty_ck, 1, &out, &err), -EINVAL, "change_key");

	/* SyncFolderItems. */
	FAILS(ews_req_sync_folder_items(NULL, NULL, 0, &out, &err), -EINVAL, "max_changes");
	FAILS(ews_req_sync_folder_items(NULL, NULL, 513, &out, &err), -EINVAL, "max_changes");
	FAILS(ews_req_sync_folder_items(NULL, "", 512, &out, &err), -EINVAL, "sync_state");

	/* GetUserAvailability. */
	av_bad = av;
	av_bad.n_mailboxes = 0;
	FAILS(ews_req_get_user_availability(NULL, &av_bad, &out, &err), -EINVAL, "n_mailboxes");
	av_bad.n_mailboxes = EWS_MAX_AVAILABILITY_MAILBOXES + 1;
	FAILS(ews_req_get_user_availability(NULL, &av_bad, &out, &err), -EINVAL, "n_mailboxes");
	av_bad = av;
	av_bad.mailboxes = empty_second;
	av_bad.n_mailboxes = 2;
	FAILS(ews_req_get_user_availability(NULL, &av_bad, &out, &err), -EINVAL, "mailboxes[1]");
	av_bad = av;
	av_bad.end_utc = av.start_utc;
	FAILS(ews_req_get_user_availability(NULL, &av_bad, &out, &err), -EINVAL, "start_utc");
	av_bad = av;
	av_bad.interval_min = 4;
	FAILS(ews_req_get_user_availability(NULL, &av_bad, &out, &err), -EINVAL, "interval_min");
	av_bad.interval_min = 1441;
	FAILS(ews_req_get_user_availability(NULL, &av_bad, &out, &err), -EINVAL, "interval_min");

	/* GetUserSettings. */
	FAILS(ews_req_get_user_settings(one, 0, "https://x", NULL, &out, &err), -EINVAL,
	      "n_mailboxes");
	FAILS(ews_req_get_user_settings(cids, 101, "https://x", NULL, &out, &err), -EINVAL,
	      "n_mailboxes");
	FAILS(ews_req_get_user_settings(one, 1, "", NULL, &out, &err), -EINVAL, "to_url");
	FAILS(ews_req_get_user_settings(one, 1, NULL, NULL, &out, &err), -EINVAL, "to_url");
	FAILS(ews_req_get_user_settings(one, 1, "https://x", "", &out, &err), -EINVAL, "version");
	FAILS(ews_req_get_user_settings(empty_second, 2, "https://x", NULL, &out, &err), -EINVAL,
	      "mailboxes[1]");

	free_ids(ids, EWS_MAX_STREAM_IDS + 1);
	buf_free(&out);
}

/* Text XML cannot carry is refused, not written: control characters, broken UTF-8, overlong
 * forms, surrogates, U+FFFE. */
TEST(text_xml_cannot_carry_is_refused)
{
	static const char *const bad[] = {
		"a\x01z",       "a\x1fz",       "\x7f\x80",         "a\xc3",
		"a\xc3(",       "\xc0\xaf",     "\xe0\x80\xaf",     "\xed\xa0\x80",
		"\xef\xbf\xbe", "\xef\xbf\xbf", "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80",
		"\xff",
	};
	static const char *const good[] = {"\x7f", "\xc2\x80", "\xef\xbf\xbd", "\xf4\x8f\xbf\xbf",
	                                   "\xee\x80\x80"};
	struct buf out;
	struct err err;

	buf_init(&out, OUT_MAX);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ews_header h = {.impersonate = bad[i]};

		FAILS(ews_req_unsubscribe(NULL, bad[i], &out, &err), -EINVAL, "subscription_id");
		FAILS(ews_req_unsubscribe(&h, "S", &out, &err), -EINVAL, "impersonate");
		FAILS(ews_req_get_user_settings(&bad[i], 1, "https://x", NULL, &out, &err), -EINVAL,
		      "mailboxes[0]");
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		xmlDocPtr doc = check_ews(ews_req_unsubscribe(NULL, good[i], &out, NULL), &out,
		                          NULL, "Unsubscribe");

		CHECK(doc == NULL || xp_eq(doc, "//m:SubscriptionId", good[i]));
		xmlFreeDoc(doc);
	}
	buf_free(&out);
}

/* A request exactly as long as the buffer's maximum fits; one byte less gives -EMSGSIZE. Large
 * requests pass libxml2's 4 kB output buffer several times. */
TEST(buffer_maximum_is_respected)
{
	char **ids = make_ids(EWS_MAX_STREAM_IDS, "JgBzdWItJXp1LWlk=", "");
	const char *const *cids = (const char *const *)ids;
	struct ews_find_calendar fc = {.start_utc = MONDAY_UTC, .end_utc = MONDAY_UTC + WEEK};
	struct ews_availability av = {.mailboxes = cids,
	                              .n_mailboxes = 100,
	                              .start_utc = MONDAY_UTC,
	                              .end_utc = MONDAY_UTC + WEEK,
	                              .interval_min = 30};
	struct ews_item_ref ref = {.id = "A"};
	struct buf big;
	struct buf out;
	struct err err;
	char *full;
	size_t len;

	buf_init(&big, OUT_MAX);
	CHECK_EQ(
		ews_req_get_streaming_events(&headers[1], cids, EWS_MAX_STREAM_IDS, 30, &big, NULL),
		0);
	len = big.len;
	CHECK(len > 3 * 4000);
	full = buf_take(&big);
	buf_init(&out, len);
	CHECK_EQ(
		ews_req_get_streaming_events(&headers[1], cids, EWS_MAX_STREAM_IDS, 30, &out, NULL),
		0);
	CHECK_EQ(out.len, len);
	CHECK(out.len == len && memcmp(out.data, full, len) == 0);
	buf_free(&out);
	buf_init(&out, len - 1);
	FAILS(ews_req_get_streaming_events(&headers[1], cids, EWS_MAX_STREAM_IDS, 30, &out, &err),
	      -EMSGSIZE, "GetStreamingEvents");
	buf_free(&out);
	free(full);

	/* Every operation honours a small maximum. */
	buf_init(&out, 100);
	FAILS(ews_req_subscribe(NULL, &(struct ews_subscribe){.timeout_min = 5}, &out, &err),
	      -EMSGSIZE, "100 bytes");
	FAILS(ews_req_get_events(NULL, "S", "W", &out, &err), -EMSGSIZE, "100 bytes");
	FAILS(ews_req_get_streaming_events(NULL, cids, 1, 30, &out, &err), -EMSGSIZE, "100 bytes");
	FAILS(ews_req_unsubscribe(NULL, "S", &out, &err), -EMSGSIZE, "100 bytes");
	FAILS(ews_req_find_calendar(NULL, &fc, &out, &err), -EMSGSIZE, "100 bytes");
	FAILS(ews_req_get_item(NULL, &ref, 1, &out, &err), -EMSGSIZE, "100 bytes");
	FAILS(ews_req_sync_folder_items(NULL, NULL, 1, &out, &err), -EMSGSIZE, "100 bytes");
	FAILS(ews_req_get_folder(NULL, true, &out, &err), -EMSGSIZE, "100 bytes");
	FAILS(ews_req_get_user_availability(NULL, &av, &out, &err), -EMSGSIZE, "100 bytes");
	FAILS(ews_req_get_user_settings(cids, 1, "https://x", NULL, &out, &err), -EMSGSIZE,
	      "100 bytes");
	buf_free(&out);
	free_ids(ids, EWS_MAX_STREAM_IDS);
}

/* out is reset first: what it held before does not leak into the request. */
TEST(output_is_reset_first)
{
	struct buf out;
	struct buf fresh;

	buf_init(&out, OUT_MAX);
	buf_init(&fresh, OUT_MAX);
	CHECK_EQ(buf_append(&out, "garbage", 7, NULL), 0);
	CHECK_EQ(ews_req_unsubscribe(NULL, "S", &out, NULL), 0);
	CHECK_EQ(ews_req_unsubscribe(NULL, "S", &fresh, NULL), 0);
	CHECK_EQ(out.len, fresh.len);
	CHECK_STREQ(out.data, fresh.data);
	CHECK_EQ(ews_req_get_events(NULL, "S", "W", &out, NULL), 0);
	CHECK(strstr(out.data, "Unsubscribe") == NULL);
	buf_free(&out);
	buf_free(&fresh);
}

/*
 * The validator bites: Microsoft's GetStreamingEvents sample puts SubscriptionId in the
 * messages namespace, which the schema (and Exchange) reject. With the namespace fixed, the same
 * document validates, so the namespace is the only thing wrong with it.
 */
TEST(version_lookup)
{
	CHECK_STREQ(ews_version_known("Exchange2013_SP1"), "Exchange2013_SP1");
	CHECK_STREQ(ews_version_known("V2017_07_11"), "V2017_07_11");
	CHECK(ews_version_known("Exchange2019") == NULL);
	CHECK(ews_version_known("exchange2013_sp1") == NULL);
	CHECK(ews_version_known(NULL) == NULL);
	CHECK(ews_version_streams("Exchange2010_SP1"));
	CHECK(ews_version_streams("Exchange2016"));
	CHECK(!ews_version_streams("Exchange2010"));
	CHECK(!ews_version_streams("Exchange2007_SP1"));
	CHECK(!ews_version_streams("Exchange2019"));
}

TEST(validator_rejects_msdocs_getstreamingevents_sample)
{
	const char *dir = getenv("EWS_FIXTURES_DIR");
	char path[1024];
	xmlDocPtr doc;
	xmlNodePtr op;
	xmlNodePtr id;
	xmlNsPtr t;

	CHECK(dir != NULL);
	if (dir == NULL)
		return;
	(void)snprintf(path, sizeof(path), "%s/msdocs/getstreamingevents-operation-0.xml", dir);
	doc = xmlReadFile(path, NULL, XML_PARSE_NONET);
	CHECK(doc != NULL);
	if (doc == NULL)
		return;
	/* The sample has no s:Header: s:Body is the root's only child. */
	op = first_child(first_child(xmlDocGetRootElement(doc)));
	CHECK(is(op, NS_M, "GetStreamingEvents"));
	CHECK(!validates(op));
	CHECK(strstr(schema_error, "SubscriptionId") != NULL);
	id = first_child(first_child(op));
	CHECK(is(id, NS_M, "SubscriptionId"));
	t = xmlNewNs(op, X(NS_T), X("t"));
	xmlSetNs(id, t);
	CHECK(validates(op));
	xmlFreeDoc(doc);
}

int main(void)
{
	const char *dir = getenv("EWS_SCHEMA_DIR");
	char path[1024];
	xmlSchemaParserCtxtPtr pctx;

	if (dir == NULL) {
		printf("Bail out! EWS_SCHEMA_DIR is not set (run under meson test)\n");
		return 1;
	}
	(void)snprintf(path, sizeof(path), "%s/messages.xsd", dir);
	pctx = xmlSchemaNewParserCtxt(path);
	schema = xmlSchemaParse(pctx);
	xmlSchemaFreeParserCtxt(pctx);
	if (schema == NULL) {
		printf("Bail out! cannot load %s\n", path);
		return 1;
	}

	RUN(subscribe_pull_and_streaming);
	RUN(get_events);
	RUN(get_streaming_events_1_and_200_ids);
	RUN(unsubscribe);
	RUN(find_calendar_view);
	RUN(get_item_ids_and_occurrences);
	RUN(sync_folder_items);
	RUN(get_folder_with_and_without_commit_props);
	RUN(get_user_availability);
	RUN(autodiscover_get_user_settings);
	RUN(escaping_round_trips);
	RUN(bad_arguments_are_refused);
	RUN(text_xml_cannot_carry_is_refused);
	RUN(buffer_maximum_is_respected);
	RUN(output_is_reset_first);
	RUN(version_lookup);
	RUN(validator_rejects_msdocs_getstreamingevents_sample);

	printf("# %d elements validated against messages.xsd\n", n_valid);
	xmlSchemaFree(schema);
	xmlCleanupParser();
	return harness_done();
}
