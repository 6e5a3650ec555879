/* SPDX-License-Identifier: MIT */
/*
 * ews-response.c: reads one EWS response envelope, a SOAP fault or an Autodiscover
 * GetUserSettings answer into struct ews_response.
 *
 * libxml2 builds a tree (xmlCtxtReadMemory, no network, no DTD, no entity substitution), and
 * a walk over that tree fills the structures. The parser's SAX callbacks are wrapped to count
 * elements and depth, so an oversized or deeply nested document is stopped while it is being
 * read, before its tree can grow, and a DOCTYPE stops the parse before its internal subset
 * is even read. Unknown elements are skipped; a known element whose value cannot be what it
 * claims (a Start that is not a dateTime) fails the whole parse with its line and name.
 *
 * This file reads the envelope, the SOAP fault and what every ResponseMessage has (class,
 * code, text, MessageXml), and hands each payload element to the reader of its concern
 * (ews-response-int.h).
 */
#include "ews/ews-response.h"

#include <errno.h>
#include <inttypes.h>
#include <libxml/SAX2.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/cs-limits.h"
#include "base/err.h"
#include "base/xalloc.h"
#include "ews/ews-response-int.h"

/* The elements we count and how deep they nest, kept in the parser context while it reads. */
struct limits {
	size_t elements;
	unsigned depth;
	int rc;       /* 0, or -EMSGSIZE / -EPROTO once the parse was stopped */
	char why[96]; /* what stopped it */
	long line;
};

static const char *const class_names[] = {
	[EWS_CLASS_SUCCESS] = "Success",
	[EWS_CLASS_WARNING] = "Warning",
	[EWS_CLASS_ERROR] = "Error",
};

const char *ews_response_class_name(enum ews_response_class c)
{
	return name_at(NAMES(class_names), c);
}

/* --- freeing ---------------------------------------------------------------------------- */

static void mx_clear(struct ews_message_xml *mx)
{
	free(mx->inner_code);
	free(mx->inner_text);
	free(mx->policy);
}

static void message_clear(struct ews_message *m)
{
	free(m->code);
	free(m->text);
	mx_clear(&m->mx);
	ews_resp_notify_clear(m);
	ews_resp_cal_clear(m);
}

void ews_response_clear(struct ews_response *r)
{
	if (r == NULL)
		return;
	free(r->operation);
	free(r->server_version);
	free(r->fault.faultcode);
	free(r->fault.faultstring);
	free(r->fault.response_code);
	free(r->fault.message);
	mx_clear(&r->fault.mx);
	for (size_t i = 0; i < r->n_messages; i++)
		message_clear(&r->messages[i]);
	free(r->messages);
	free(r->autodiscover_error);
	ews_resp_users_clear(r);
	*r = (struct ews_response){0};
}

/* --- message parts ---------------------------------------------------------------------- */

/* m:MessageXml (or t:MessageXml in a fault): the t:Value pairs calsync acts on. */
int ews_resp_message_xml(const xmlNode *n, struct ews_message_xml *mx, struct err *err)
{
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		char *name;
		int rc = 0;

		if (!is_local(c, "Value"))
			continue;
		name = ews_resp_attr_dup(c, "Name");
		if (name == NULL)
			continue;
		if (strcmp(name, "BackOffMilliseconds") == 0)
			rc = ews_resp_get_int64(c, &mx->back_off_ms, err);
		else if (strcmp(name, "MaxConcurrencyLimit") == 0)
			rc = ews_resp_get_int64(c, &mx->max_concurrency_limit, err);
		else if (strcmp(name, "InnerErrorResponseCode") == 0)
			ews_resp_set_text(&mx->inner_code, c);
		else if (strcmp(name, "InnerErrorMessageText") == 0)
			ews_resp_set_text(&mx->inner_text, c);
		else if (strcmp(name, "Policy") == 0)
			ews_resp_set_text(&mx->policy, c);
		free(name);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* One m:<Op>ResponseMessage (or a bare m:ResponseMessage): the common ResponseMessageType
 * fields and whatever payload the operation adds. */
int ews_resp_message(const xmlNode *n, struct ews_message *m, struct err *err)
{
	char *cls = ews_resp_attr_dup(n, "ResponseClass");
	int rc = 0;

	if (cls != NULL && strcmp(cls, "Success") == 0)
		m->cls = EWS_CLASS_SUCCESS;
	else if (cls != NULL && strcmp(cls, "Warning") == 0)
		m->cls = EWS_CLASS_WARNING;
	else if (cls != NULL && strcmp(cls, "Error") == 0)
		m->cls = EWS_CLASS_ERROR;
	else
		rc = ews_resp_bad(err, n, "ResponseClass is not Success, Warning or Error: '%.40s'",
		                  cls != NULL ? cls : "(absent)");
	free(cls);
	if (rc != 0)
		return rc;

	for (const xmlNode *c = first_el(n); c != NULL && rc == 0; c = after_el(c)) {
		/* Exchange writes these two containers' children in the messages namespace,
		 * where the schema says types: match them by local name only. */
		if (is_local(c, "Notification")) {
			rc = ews_resp_notification(c, m, err);
		} else if (is_local(c, "Notifications")) {
			for (const xmlNode *d = first_el(c); d != NULL && rc == 0;
			     d = after_el(d)) {
				if (is_local(d, "Notification"))
					rc = ews_resp_notification(d, m, err);
			}
		} else if (is_local(c, "ErrorSubscriptionIds")) {
			for (const xmlNode *d = first_el(c); d != NULL; d = after_el(d)) {
				if (is_local(d, "SubscriptionId"))
					ews_resp_push_str(&m->error_subscription_ids,
					                  &m->n_error_subscription_ids, d);
			}
		} else if (is_local(c, "MessageXml")) {
			rc = ews_resp_message_xml(c, &m->mx, err);
		} else if (!ns_is(c, NS_M)) {
			continue;
		} else if (is_local(c, "ResponseCode")) {
			ews_resp_set_text(&m->code, c);
		} else if (is_local(c, "MessageText")) {
			ews_resp_set_text(&m->text, c);
		} else if (is_local(c, "SubscriptionId")) {
			ews_resp_set_text(&m->subscription_id, c);
		} else if (is_local(c, "Watermark")) {
			ews_resp_set_text(&m->watermark, c);
		} else if (is_local(c, "ConnectionStatus")) {
			rc = ews_resp_connection_status(c, m, err);
		} else if (is_local(c, "RootFolder")) {
			rc = ews_resp_root_folder(c, m, err);
		} else if (is_local(c, "Items")) {
			rc = ews_resp_items(c, m, err);
		} else if (is_local(c, "SyncState")) {
			ews_resp_set_text(&m->sync_state, c);
		} else if (is_local(c, "IncludesLastItemInRange")) {
			rc = ews_resp_get_bool(c, &m->includes_last_item_in_range, err);
			m->has_includes_last = rc == 0;
		} else if (is_local(c, "Changes")) {
			rc = ews_resp_changes(c, m, err);
		} else if (is_local(c, "Folders")) {
			rc = ews_resp_folders(c, m, err);
		}
	}
	return rc;
}

static struct ews_message *new_message(struct ews_response *r)
{
	struct ews_message *m;

	r->messages = grow(r->messages, r->n_messages, sizeof(*r->messages));
	m = &r->messages[r->n_messages++];
	*m = (struct ews_message){
		.mx = {.back_off_ms = -1, .max_concurrency_limit = -1},
		.total_items_in_view = -1,
		.total_count = -1,
		.deleted_count_total = -1,
	};
	return m;
}

/* m:<Op>Response: its messages, in order. Most operations wrap them in m:ResponseMessages;
 * the availability operations have a bare m:ResponseMessage, or one per m:FreeBusyResponse. */
static int parse_operation(const xmlNode *n, struct ews_response *r, struct err *err)
{
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		if (!ns_is(c, NS_M))
			continue;
		if (is_local(c, "ResponseMessages")) {
			for (const xmlNode *d = first_el(c); d != NULL; d = after_el(d)) {
				if (ns_is(d, NS_M) && ews_resp_message(d, new_message(r), err) != 0)
					return -EPROTO;
			}
		} else if (is_local(c, "ResponseMessage")) {
			if (ews_resp_message(c, new_message(r), err) != 0)
				return -EPROTO;
		} else if (is_local(c, "FreeBusyResponseArray")) {
			for (const xmlNode *d = first_el(c); d != NULL; d = after_el(d)) {
				if (is_el(d, NS_M, "FreeBusyResponse") &&
				    ews_resp_free_busy_response(d, new_message(r), err) != 0)
					return -EPROTO;
			}
		}
	}
	return 0;
}

/* s:Fault: faultcode, faultstring (unqualified) and the detail, whose children Exchange
 * writes in the errors namespace (the availability service in messages): match by name. */
static int parse_fault(const xmlNode *n, struct ews_response *r, struct err *err)
{
	struct ews_fault *f = &r->fault;
	char *error_code = NULL;

	r->is_fault = true;
	f->mx = (struct ews_message_xml){.back_off_ms = -1, .max_concurrency_limit = -1};
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		if (is_local(c, "faultcode")) {
			ews_resp_set_text(&f->faultcode, c);
		} else if (is_local(c, "faultstring")) {
			ews_resp_set_text(&f->faultstring, c);
		} else if (is_local(c, "detail")) {
			for (const xmlNode *d = first_el(c); d != NULL; d = after_el(d)) {
				if (is_local(d, "ResponseCode")) {
					ews_resp_set_text(&f->response_code, d);
				} else if (is_local(d, "ErrorCode")) {
					ews_resp_set_text(&error_code, d);
				} else if (is_local(d, "Message")) {
					ews_resp_set_text(&f->message, d);
				} else if (is_local(d, "MessageXml")) {
					if (ews_resp_message_xml(d, &f->mx, err) != 0) {
						free(error_code);
						return -EPROTO;
					}
				}
			}
		}
	}
	if (f->response_code == NULL) {
		f->response_code = error_code;
		error_code = NULL;
	}
	free(error_code);
	return 0;
}

/* ServerVersionInfo's "15.2.1748.10": the numbers that are there, in order, stopping at the
 * first one that is missing. Any prefix and namespace (Exchange 2013+ writes it unprefixed). */
static int parse_server_version(const xmlNode *n, struct ews_response *r, struct err *err)
{
	static const char *const parts[] = {"MajorVersion", "MinorVersion", "MajorBuildNumber",
	                                    "MinorBuildNumber"};
	char out[4 * 20 + 4] = "";
	size_t len = 0;

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		int64_t v;
		bool has = false;

		if (ews_resp_attr_int64(n, parts[i], &v, &has, err) != 0)
			return -EPROTO;
		if (!has)
			break;
		if (v < 0)
			return ews_resp_bad(err, n, "%s is negative", parts[i]);
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%" PRId64,
		                        i > 0 ? "." : "", v);
	}
	free(r->server_version);
	r->server_version = len > 0 ? xstrdup(out) : NULL;
	return 0;
}

/* Copies name without its suffix ("FindItemResponse" -> "FindItem"), if it ends in suffix. */
static char *strip_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name);
	size_t s = strlen(suffix);

	if (n <= s || strcmp(name + n - s, suffix) != 0)
		return NULL;
	return xmemdup(name, n - s);
}

static int parse_body(const xmlNode *body, struct ews_response *r, struct err *err)
{
	const xmlNode *op = first_el(body);

	if (op == NULL)
		return ews_resp_bad(err, body, "empty: no response in it");
	if (is_el(op, NS_SOAP, "Fault"))
		return parse_fault(op, r, err);
	if (ns_is(op, NS_M)) {
		r->operation = strip_suffix((const char *)op->name, "Response");
		if (r->operation != NULL)
			return parse_operation(op, r, err);
	} else if (is_ad_ns(op)) {
		r->operation = strip_suffix((const char *)op->name, "ResponseMessage");
		if (r->operation != NULL) {
			if (strcmp(r->operation, "GetUserSettings") == 0)
				ews_resp_user_settings(op, r);
			return 0;
		}
	}
	return ews_resp_bad(err, op, "not an EWS or Autodiscover response (a request?)");
}

static int walk(const xmlDoc *doc, struct ews_response *r, struct err *err)
{
	const xmlNode *root = xmlDocGetRootElement(doc);
	const xmlNode *body = NULL;

	if (root == NULL)
		return err_set(err, -EPROTO, "no root element");
	if (!is_el(root, NS_SOAP, "Envelope"))
		return ews_resp_bad(err, root, "not a SOAP 1.1 Envelope");
	for (const xmlNode *c = first_el(root); c != NULL; c = after_el(c)) {
		if (is_el(c, NS_SOAP, "Header")) {
			for (const xmlNode *h = first_el(c); h != NULL; h = after_el(h)) {
				if (is_local(h, "ServerVersionInfo") &&
				    parse_server_version(h, r, err) != 0)
					return -EPROTO;
			}
		} else if (is_el(c, NS_SOAP, "Body") && body == NULL) {
			body = c;
		}
	}
	if (body == NULL)
		return ews_resp_bad(err, root, "no Body");
	return parse_body(body, r, err);
}

/* --- the bounded parse ------------------------------------------------------------------ */

/*
 * libxml2's own handlers, wrapped. They are the SAX2 tree builders that xmlNewParserCtxt()
 * installs; we count before passing on, and stop the parser at the first limit crossed.
 */
ATTR_PRINTF(4, 5)

static void limit_stop(xmlParserCtxtPtr ctxt, struct limits *l, int rc, const char *fmt, ...)
{
	va_list ap;

	l->rc = rc;
	va_start(ap, fmt);
	(void)vsnprintf(l->why, sizeof(l->why), fmt, ap);
	va_end(ap);
	l->line = ctxt->input != NULL ? ctxt->input->line : 0;
	xmlStopParser(ctxt);
}

static void sax_start(void *ctx, const xmlChar *localname, const xmlChar *prefix,
                      const xmlChar *uri, int nb_namespaces, const xmlChar **namespaces,
                      int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
	xmlParserCtxtPtr ctxt = ctx;
	struct limits *l = ctxt->_private;

	if (++l->elements > EWS_MAX_ELEMENTS) {
		limit_stop(ctxt, l, -EMSGSIZE, "more than %u elements", EWS_MAX_ELEMENTS);
		return;
	}
	if (++l->depth > EWS_MAX_DEPTH) {
		limit_stop(ctxt, l, -EMSGSIZE, "elements nested deeper than %u", EWS_MAX_DEPTH);
		return;
	}
	xmlSAX2StartElementNs(ctx, localname, prefix, uri, nb_namespaces, namespaces, nb_attributes,
	                      nb_defaulted, attributes);
}

static void sax_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
	xmlParserCtxtPtr ctxt = ctx;
	struct limits *l = ctxt->_private;

	l->depth--;
	xmlSAX2EndElementNs(ctx, localname, prefix, uri);
}

/* A DOCTYPE is never part of an EWS response, and its internal subset is where entity
 * bombs live: stop before the parser reads a single declaration. */
static void sax_subset(void *ctx, const xmlChar *name, const xmlChar *external_id,
                       const xmlChar *system_id)
{
	xmlParserCtxtPtr ctxt = ctx;

	limit_stop(ctxt, ctxt->_private, -EPROTO, "a DOCTYPE (DTD) is not allowed");
}

/*
 * NONET: never fetch anything. NOBLANKS drops indentation-only text (an element whose whole
 * content is blank keeps it). NOCDATA merges CDATA into text. COMPACT and BIG_LINES: smaller
 * nodes, and line numbers past 65535 for messages. Never NOENT, DTDLOAD or HUGE.
 */
#define PARSE_OPTIONS                                                                   \
	(XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOCDATA | XML_PARSE_COMPACT | \
	 XML_PARSE_BIG_LINES | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

static int read_doc(const char *xml, size_t len, xmlDoc **out_doc, struct err *err)
{
	struct limits l = {0};
	xmlParserCtxtPtr ctxt;
	xmlDoc *doc;
	int rc = 0;

	/* Idempotent; libxml2 wants it before first use (its globals, the threads case). */
	xmlInitParser();
	ctxt = xmlNewParserCtxt();
	if (ctxt == NULL) {
		fprintf(stderr, "calsync: out of memory (libxml2 parser context)\n");
		abort();
	}
	ctxt->_private = &l;
	ctxt->sax->startElementNs = sax_start;
	ctxt->sax->endElementNs = sax_end;
	ctxt->sax->internalSubset = sax_subset;
	doc = xmlCtxtReadMemory(ctxt, xml, (int)len, NULL, NULL, PARSE_OPTIONS);
	if (l.rc != 0) {
		rc = err_set(err, l.rc, "line %ld: %s", l.line, l.why);
	} else if (doc == NULL) {
		const xmlError *e = xmlCtxtGetLastError(ctxt);
		char msg[160];
		const char *p = msg;
		size_t n;

		snprintf(msg, sizeof(msg), "%s",
		         e != NULL && e->message != NULL ? e->message : "unknown error");
		/* libxml2's messages end in a line break. */
		n = strlen(msg);
		ews_resp_trim(&p, &n);
		rc = err_set(err, -EPROTO, "line %d: not well-formed XML: %.*s", e ? e->line : 0,
		             (int)n, p);
	} else if (doc->intSubset != NULL || doc->extSubset != NULL) {
		/* Unreachable while sax_subset stops the parse; kept as the rule itself. */
		rc = err_set(err, -EPROTO, "a DOCTYPE (DTD) is not allowed");
	}
	if (rc != 0) {
		xmlFreeDoc(doc);
		doc = NULL;
	}
	xmlFreeParserCtxt(ctxt);
	if (rc == 0)
		*out_doc = doc;
	return rc;
}

int ews_response_parse(const char *xml, size_t len, struct ews_response *out, struct err *err)
{
	struct ews_response r = {0};
	xmlDoc *doc = NULL;
	int rc;

	*out = (struct ews_response){0};
	if (len > EWS_MAX_RESPONSE)
		return err_set(err, -EMSGSIZE, "response of %zu bytes, limit %u", len,
		               EWS_MAX_RESPONSE);
	if (len == 0)
		return err_set(err, -EPROTO, "empty response");
	rc = read_doc(xml, len, &doc, err);
	if (rc != 0)
		return rc;
	rc = walk(doc, &r, err);
	xmlFreeDoc(doc);
	if (rc != 0) {
		ews_response_clear(&r);
		return rc;
	}
	*out = r;
	return 0;
}
