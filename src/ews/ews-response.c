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
 */
#include "ews/ews-response.h"

#include <errno.h>
#include <inttypes.h>
#include <libxml/SAX2.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdarg.h>

#include "base/cs-limits.h"
#include "base/err.h"
#include "base/iso8601.h"
#include "base/xalloc.h"

#define NS_SOAP "http://schemas.xmlsoap.org/soap/envelope/"
#define NS_M    "http://schemas.microsoft.com/exchange/services/2006/messages"
#define NS_T    "http://schemas.microsoft.com/exchange/services/2006/types"
#define NS_XSI  "http://www.w3.org/2001/XMLSchema-instance"
/* Microsoft's Autodiscover samples carry the docs' https:// rewrite of this namespace (the
 * fixtures keep it); a server sends http://. Both mean the same service. */
#define NS_AD       "http://schemas.microsoft.com/exchange/2010/Autodiscover"
#define NS_AD_HTTPS "https://schemas.microsoft.com/exchange/2010/Autodiscover"

/* MAPI property tags of the two folder properties GetFolder asks for (EWS-REFERENCE.md 8.5). */
#define TAG_LOCAL_COMMIT_TIME_MAX 0x670A
#define TAG_DELETED_COUNT_TOTAL   0x670B

/* The elements we count and how deep they nest, kept in the parser context while it reads. */
struct limits {
	size_t elements;
	unsigned depth;
	int rc;       /* 0, or -EMSGSIZE / -EPROTO once the parse was stopped */
	char why[96]; /* what stopped it */
	long line;
};

/* --- names and enums -------------------------------------------------------------------- */

static const char *name_at(const char *const *names, size_t n, unsigned i)
{
	return i < n ? names[i] : NULL;
}

static const char *const event_names[] = {
	[EWS_EVENT_CREATED] = "Created", [EWS_EVENT_MODIFIED] = "Modified",
	[EWS_EVENT_DELETED] = "Deleted", [EWS_EVENT_MOVED] = "Moved",
	[EWS_EVENT_COPIED] = "Copied",   [EWS_EVENT_NEWMAIL] = "NewMail",
	[EWS_EVENT_STATUS] = "Status",   [EWS_EVENT_FREEBUSY] = "FreeBusyChanged",
};

static const char *const free_busy_names[] = {
	[EWS_FB_UNKNOWN] = NULL,
	[EWS_FB_FREE] = "Free",
	[EWS_FB_TENTATIVE] = "Tentative",
	[EWS_FB_BUSY] = "Busy",
	[EWS_FB_OOF] = "OOF",
	[EWS_FB_WORKING_ELSEWHERE] = "WorkingElsewhere",
	[EWS_FB_NO_DATA] = "NoData",
};

static const char *const sensitivity_names[] = {
	[EWS_SENS_UNKNOWN] = NULL,
	[EWS_SENS_NORMAL] = "Normal",
	[EWS_SENS_PERSONAL] = "Personal",
	[EWS_SENS_PRIVATE] = "Private",
	[EWS_SENS_CONFIDENTIAL] = "Confidential",
};

static const char *const item_type_names[] = {
	[EWS_ITEM_UNKNOWN] = NULL,
	[EWS_ITEM_SINGLE] = "Single",
	[EWS_ITEM_OCCURRENCE] = "Occurrence",
	[EWS_ITEM_EXCEPTION] = "Exception",
	[EWS_ITEM_RECURRING_MASTER] = "RecurringMaster",
};

static const char *const class_names[] = {
	[EWS_CLASS_SUCCESS] = "Success",
	[EWS_CLASS_WARNING] = "Warning",
	[EWS_CLASS_ERROR] = "Error",
};

static const char *const change_names[] = {
	[EWS_CHANGE_CREATE] = "Create",
	[EWS_CHANGE_UPDATE] = "Update",
	[EWS_CHANGE_DELETE] = "Delete",
	[EWS_CHANGE_READ_FLAG] = "ReadFlagChange",
};

#define NAMES(a) (a), sizeof(a) / sizeof((a)[0])

const char *ews_event_type_name(enum ews_event_type t)
{
	return name_at(NAMES(event_names), t);
}

const char *ews_free_busy_name(enum ews_free_busy fb)
{
	return name_at(NAMES(free_busy_names), fb);
}

const char *ews_sensitivity_name(enum ews_sensitivity s)
{
	return name_at(NAMES(sensitivity_names), s);
}

const char *ews_item_type_name(enum ews_item_type t)
{
	return name_at(NAMES(item_type_names), t);
}

const char *ews_change_type_name(enum ews_change_type t)
{
	return name_at(NAMES(change_names), t);
}

const char *ews_response_class_name(enum ews_response_class c)
{
	return name_at(NAMES(class_names), c);
}

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

/* --- freeing ---------------------------------------------------------------------------- */

static void mx_clear(struct ews_message_xml *mx)
{
	free(mx->inner_code);
	free(mx->inner_text);
	free(mx->policy);
}

static void event_clear(struct ews_event *e)
{
	free(e->watermark);
	free(e->item_id);
	free(e->change_key);
	free(e->folder_id);
	free(e->parent_folder_id);
	free(e->old_item_id);
	free(e->old_folder_id);
	free(e->old_parent_folder_id);
}

static void notification_clear(struct ews_notification *n)
{
	free(n->subscription_id);
	free(n->previous_watermark);
	for (size_t i = 0; i < n->n_events; i++)
		event_clear(&n->events[i]);
	free(n->events);
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void ews_cal_item_clear(struct ews_cal_item *it)
{
	free(it->item_id);
	free(it->change_key);
	free(it->subject);
	free(it->location);
	free(it->organizer);
	free(it->uid);
	free(it->start_tz_id);
	strv_free(it->categories, it->n_categories);
}

static void message_clear(struct ews_message *m)
{
	free(m->code);
	free(m->text);
	mx_clear(&m->mx);
	free(m->subscription_id);
	free(m->watermark);
	for (size_t i = 0; i < m->n_notifications; i++)
		notification_clear(&m->notifications[i]);
	free(m->notifications);
	strv_free(m->error_subscription_ids, m->n_error_subscription_ids);
	for (size_t i = 0; i < m->n_items; i++)
		ews_cal_item_clear(&m->items[i]);
	free(m->items);
	free(m->sync_state);
	for (size_t i = 0; i < m->n_changes; i++) {
		free(m->changes[i].item_id);
		free(m->changes[i].change_key);
		if (m->changes[i].item != NULL)
			ews_cal_item_clear(m->changes[i].item);
		free(m->changes[i].item);
	}
	free(m->changes);
	free(m->folder_id);
	free(m->folder_change_key);
	free(m->free_busy_view.type);
	free(m->free_busy_view.merged);
	free(m->free_busy_view.events);
}

static void user_clear(struct ews_user_settings *u)
{
	free(u->mailbox);
	free(u->error_code);
	free(u->error_message);
	free(u->redirect_target);
	free(u->internal_ews_url);
	free(u->external_ews_url);
	free(u->grouping_information);
	free(u->cas_version);
	free(u->ews_supported_schemas);
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
	for (size_t i = 0; i < r->n_users; i++)
		user_clear(&r->users[i]);
	free(r->users);
	*r = (struct ews_response){0};
}

/* --- tree helpers ----------------------------------------------------------------------- */

/*
 * Makes room for element n of an array that only ever grows through this function: the
 * capacity is implied (the next power of two at or above n), so no struct needs a cap field.
 * Counts are bounded by EWS_MAX_ELEMENTS, far from any overflow.
 */
static void *grow(void *arr, size_t n, size_t size)
{
	if (n != 0 && (n & (n - 1)) != 0)
		return arr;
	return xreallocarray(arr, n == 0 ? 1 : 2 * n, size);
}

static bool ns_is(const xmlNode *n, const char *ns)
{
	return n->ns != NULL && n->ns->href != NULL && strcmp((const char *)n->ns->href, ns) == 0;
}

static bool is_local(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

/* An element called name in namespace ns. */
static bool is_el(const xmlNode *n, const char *ns, const char *name)
{
	return is_local(n, name) && ns_is(n, ns);
}

static bool is_ad_ns(const xmlNode *n)
{
	return ns_is(n, NS_AD) || ns_is(n, NS_AD_HTTPS);
}

static const xmlNode *next_el(const xmlNode *n)
{
	while (n != NULL && n->type != XML_ELEMENT_NODE)
		n = n->next;
	return n;
}

static const xmlNode *first_el(const xmlNode *parent)
{
	return next_el(parent->children);
}

static const xmlNode *after_el(const xmlNode *n)
{
	return next_el(n->next);
}

/* The element as it was written, "t:Start", for messages. */
static void written_name(const xmlNode *n, char *out, size_t size)
{
	if (n->ns != NULL && n->ns->prefix != NULL)
		snprintf(out, size, "%s:%s", (const char *)n->ns->prefix, (const char *)n->name);
	else
		snprintf(out, size, "%s", (const char *)n->name);
}

ATTR_PRINTF(3, 4)

static int bad(struct err *err, const xmlNode *n, const char *fmt, ...)
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
static char *text_dup(const xmlNode *n)
{
	return is_nil(n) ? NULL : chain_dup(n->children);
}

/* Replaces *slot by the text of n: a repeated element wins over an earlier one. */
static void set_text(char **slot, const xmlNode *n)
{
	free(*slot);
	*slot = text_dup(n);
}

/* The value of n's unqualified attribute name (owned), or NULL when there is none. */
static char *attr_dup(const xmlNode *n, const char *name)
{
	const xmlAttr *a = xmlHasNsProp(n, (const xmlChar *)name, NULL);

	if (a == NULL || a->type != XML_ATTRIBUTE_NODE)
		return NULL;
	return chain_dup(a->children);
}

static void set_attr(char **slot, const xmlNode *n, const char *name)
{
	free(*slot);
	*slot = attr_dup(n, name);
}

static bool xml_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Trims the XML whitespace around a value, as xs:boolean, xs:int and xs:dateTime allow. */
static void trim(const char **s, size_t *len)
{
	while (*len > 0 && xml_space((*s)[0])) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && xml_space((*s)[*len - 1]))
		(*len)--;
}

/* xs:long in decimal: an optional sign and 1 to 18 digits, which cannot overflow. */
static bool parse_int64(const char *s, size_t len, int64_t *out)
{
	bool neg = false;
	int64_t v = 0;

	trim(&s, &len);
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
static int get_int64(const xmlNode *n, int64_t *out, struct err *err)
{
	char *s = text_dup(n);
	bool ok = s != NULL && parse_int64(s, strlen(s), out);

	if (!ok)
		(void)bad(err, n, "not an integer: '%.40s'", s != NULL ? s : "(nil)");
	free(s);
	return ok ? 0 : -EPROTO;
}

static int attr_int64(const xmlNode *n, const char *name, int64_t *out, bool *out_has,
                      struct err *err)
{
	char *s = attr_dup(n, name);
	bool ok = s == NULL || parse_int64(s, strlen(s), out);

	if (!ok)
		(void)bad(err, n, "attribute %s is not an integer: '%.40s'", name, s);
	else if (out_has != NULL)
		*out_has = s != NULL;
	free(s);
	return ok ? 0 : -EPROTO;
}

static bool parse_bool(const char *s, size_t len, bool *out)
{
	trim(&s, &len);
	if ((len == 4 && memcmp(s, "true", 4) == 0) || (len == 1 && s[0] == '1'))
		*out = true;
	else if ((len == 5 && memcmp(s, "false", 5) == 0) || (len == 1 && s[0] == '0'))
		*out = false;
	else
		return false;
	return true;
}

static int get_bool(const xmlNode *n, bool *out, struct err *err)
{
	char *s = text_dup(n);
	bool ok = s != NULL && parse_bool(s, strlen(s), out);

	if (!ok)
		(void)bad(err, n, "not a boolean: '%.40s'", s != NULL ? s : "(nil)");
	free(s);
	return ok ? 0 : -EPROTO;
}

static int attr_bool(const xmlNode *n, const char *name, bool *out, bool *out_has, struct err *err)
{
	char *s = attr_dup(n, name);
	bool ok = s == NULL || parse_bool(s, strlen(s), out);

	if (!ok)
		(void)bad(err, n, "attribute %s is not a boolean: '%.40s'", name, s);
	else if (out_has != NULL)
		*out_has = s != NULL;
	free(s);
	return ok ? 0 : -EPROTO;
}

/*
 * An xs:dateTime, with or without a zone (naive times are UTC: calsync asks in UTC), as UTC
 * seconds within what iso8601_format() can print back.
 */
static int get_time(const xmlNode *n, int64_t *out, struct err *err)
{
	char *s = text_dup(n);
	const char *p = s;
	size_t len = s != NULL ? strlen(s) : 0;
	struct err perr = {0};
	int64_t utc;
	int rc = -EPROTO;

	trim(&p, &len);
	if (s == NULL)
		(void)bad(err, n, "not a dateTime: nil");
	else if (len > ISO8601_MAX_LEN)
		(void)bad(err, n, "not a dateTime: %zu bytes", len);
	else if (iso8601_parse(p, len, &utc, NULL, &perr) != 0)
		(void)bad(err, n, "not a dateTime: %s", perr.msg);
	else if (utc < ISO8601_MIN_UTC || utc > ISO8601_MAX_UTC)
		(void)bad(err, n, "dateTime out of range: '%.40s'", p);
	else
		rc = 0;
	if (rc == 0)
		*out = utc;
	free(s);
	return rc;
}

/* An element holding one of the names of a table's enumeration: its index, or 0 (UNKNOWN) for
 * a value calsync does not know, which a newer server may well send. */
static unsigned enum_of(const xmlNode *n, const char *const *names, size_t count)
{
	char *s = text_dup(n);
	unsigned i = s != NULL ? name_index(names, count, s) : 0;

	free(s);
	return i;
}

/* --- message parts ---------------------------------------------------------------------- */

/* m:MessageXml (or t:MessageXml in a fault): the t:Value pairs calsync acts on. */
static int parse_message_xml(const xmlNode *n, struct ews_message_xml *mx, struct err *err)
{
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		char *name;
		int rc = 0;

		if (!is_local(c, "Value"))
			continue;
		name = attr_dup(c, "Name");
		if (name == NULL)
			continue;
		if (strcmp(name, "BackOffMilliseconds") == 0)
			rc = get_int64(c, &mx->back_off_ms, err);
		else if (strcmp(name, "MaxConcurrencyLimit") == 0)
			rc = get_int64(c, &mx->max_concurrency_limit, err);
		else if (strcmp(name, "InnerErrorResponseCode") == 0)
			set_text(&mx->inner_code, c);
		else if (strcmp(name, "InnerErrorMessageText") == 0)
			set_text(&mx->inner_text, c);
		else if (strcmp(name, "Policy") == 0)
			set_text(&mx->policy, c);
		free(name);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static const struct {
	const char *element;
	enum ews_event_type type;
} event_elements[] = {
	{"CreatedEvent", EWS_EVENT_CREATED}, {"ModifiedEvent", EWS_EVENT_MODIFIED},
	{"DeletedEvent", EWS_EVENT_DELETED}, {"MovedEvent", EWS_EVENT_MOVED},
	{"CopiedEvent", EWS_EVENT_COPIED},   {"NewMailEvent", EWS_EVENT_NEWMAIL},
	{"StatusEvent", EWS_EVENT_STATUS},   {"FreeBusyChangedEvent", EWS_EVENT_FREEBUSY},
};

static int parse_event(const xmlNode *n, struct ews_event *e, struct err *err)
{
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		if (!ns_is(c, NS_T))
			continue;
		if (is_local(c, "Watermark")) {
			set_text(&e->watermark, c);
		} else if (is_local(c, "TimeStamp")) {
			if (get_time(c, &e->timestamp_utc, err) != 0)
				return -EPROTO;
			e->has_timestamp = true;
		} else if (is_local(c, "ItemId")) {
			set_attr(&e->item_id, c, "Id");
			set_attr(&e->change_key, c, "ChangeKey");
		} else if (is_local(c, "FolderId")) {
			set_attr(&e->folder_id, c, "Id");
			set_attr(&e->change_key, c, "ChangeKey");
		} else if (is_local(c, "ParentFolderId")) {
			set_attr(&e->parent_folder_id, c, "Id");
		} else if (is_local(c, "OldItemId")) {
			set_attr(&e->old_item_id, c, "Id");
		} else if (is_local(c, "OldFolderId")) {
			set_attr(&e->old_folder_id, c, "Id");
		} else if (is_local(c, "OldParentFolderId")) {
			set_attr(&e->old_parent_folder_id, c, "Id");
		}
	}
	return 0;
}

/* m:Notification (GetEvents), or m:Notifications/m:Notification (streaming). */
static int parse_notification(const xmlNode *n, struct ews_message *m, struct err *err)
{
	struct ews_notification *no;

	m->notifications = grow(m->notifications, m->n_notifications, sizeof(*m->notifications));
	no = &m->notifications[m->n_notifications++];
	*no = (struct ews_notification){0};
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		if (!ns_is(c, NS_T))
			continue;
		if (is_local(c, "SubscriptionId")) {
			set_text(&no->subscription_id, c);
		} else if (is_local(c, "PreviousWatermark")) {
			set_text(&no->previous_watermark, c);
		} else if (is_local(c, "MoreEvents")) {
			if (get_bool(c, &no->more_events, err) != 0)
				return -EPROTO;
		} else {
			for (size_t i = 0; i < sizeof(event_elements) / sizeof(event_elements[0]);
			     i++) {
				struct ews_event *e;

				if (!is_local(c, event_elements[i].element))
					continue;
				no->events = grow(no->events, no->n_events, sizeof(*no->events));
				e = &no->events[no->n_events++];
				*e = (struct ews_event){.type = event_elements[i].type};
				if (parse_event(c, e, err) != 0)
					return -EPROTO;
				break;
			}
		}
	}
	return 0;
}

static void push_str(char ***v, size_t *n, const xmlNode *c)
{
	*v = grow(*v, *n, sizeof(**v));
	(*v)[(*n)++] = text_dup(c);
}

/* t:Organizer/t:Mailbox: the SMTP address, else the display name. */
static void parse_organizer(const xmlNode *n, struct ews_cal_item *it)
{
	for (const xmlNode *mb = first_el(n); mb != NULL; mb = after_el(mb)) {
		char *email = NULL;
		char *name = NULL;

		if (!is_el(mb, NS_T, "Mailbox"))
			continue;
		for (const xmlNode *c = first_el(mb); c != NULL; c = after_el(c)) {
			if (is_el(c, NS_T, "EmailAddress"))
				set_text(&email, c);
			else if (is_el(c, NS_T, "Name"))
				set_text(&name, c);
		}
		free(it->organizer);
		if (email != NULL && email[0] != '\0') {
			it->organizer = email;
			free(name);
		} else {
			it->organizer = name;
			free(email);
		}
	}
}

/* A t:CalendarItem, or another item kind (t:Message, t:MeetingRequest, ...), read the same
 * way: what it does not have stays absent. */
static int parse_item(const xmlNode *n, struct ews_cal_item *it, struct err *err)
{
	it->is_calendar_item = is_local(n, "CalendarItem");
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		int rc = 0;

		if (!ns_is(c, NS_T))
			continue;
		if (is_local(c, "ItemId")) {
			set_attr(&it->item_id, c, "Id");
			set_attr(&it->change_key, c, "ChangeKey");
		} else if (is_local(c, "Subject")) {
			set_text(&it->subject, c);
		} else if (is_local(c, "Location")) {
			set_text(&it->location, c);
		} else if (is_local(c, "UID")) {
			set_text(&it->uid, c);
		} else if (is_local(c, "Organizer")) {
			parse_organizer(c, it);
		} else if (is_local(c, "StartTimeZone")) {
			set_attr(&it->start_tz_id, c, "Id");
		} else if (is_local(c, "Start")) {
			rc = get_time(c, &it->start_utc, err);
			it->has_start = rc == 0;
		} else if (is_local(c, "End")) {
			rc = get_time(c, &it->end_utc, err);
			it->has_end = rc == 0;
		} else if (is_local(c, "RecurrenceId")) {
			rc = get_time(c, &it->recurrence_id_utc, err);
			it->has_recurrence_id = rc == 0;
		} else if (is_local(c, "IsAllDayEvent")) {
			rc = get_bool(c, &it->all_day, err);
			it->has_all_day = rc == 0;
		} else if (is_local(c, "IsCancelled")) {
			rc = get_bool(c, &it->is_cancelled, err);
			it->has_cancelled = rc == 0;
		} else if (is_local(c, "LegacyFreeBusyStatus")) {
			it->free_busy = enum_of(c, NAMES(free_busy_names));
		} else if (is_local(c, "Sensitivity")) {
			it->sensitivity = enum_of(c, NAMES(sensitivity_names));
		} else if (is_local(c, "CalendarItemType")) {
			it->item_type = enum_of(c, NAMES(item_type_names));
		} else if (is_local(c, "Categories")) {
			strv_free(it->categories, it->n_categories);
			it->categories = NULL;
			it->n_categories = 0;
			for (const xmlNode *v = first_el(c); v != NULL; v = after_el(v)) {
				if (is_el(v, NS_T, "String"))
					push_str(&it->categories, &it->n_categories, v);
			}
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Every item element of an m:Items or t:Items container. */
static int parse_items(const xmlNode *n, struct ews_message *m, struct err *err)
{
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		struct ews_cal_item *it;

		if (!ns_is(c, NS_T))
			continue;
		m->items = grow(m->items, m->n_items, sizeof(*m->items));
		it = &m->items[m->n_items++];
		*it = (struct ews_cal_item){0};
		if (parse_item(c, it, err) != 0)
			return -EPROTO;
	}
	return 0;
}

/* FindItem's m:RootFolder: the paging attributes and t:Items. */
static int parse_root_folder(const xmlNode *n, struct ews_message *m, struct err *err)
{
	bool has_total = false;

	if (attr_int64(n, "TotalItemsInView", &m->total_items_in_view, &has_total, err) != 0 ||
	    attr_bool(n, "IncludesLastItemInRange", &m->includes_last_item_in_range,
	              &m->has_includes_last, err) != 0)
		return -EPROTO;
	if (!has_total)
		m->total_items_in_view = -1;
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		if (is_el(c, NS_T, "Items") && parse_items(c, m, err) != 0)
			return -EPROTO;
	}
	return 0;
}

/* SyncFolderItems' m:Changes. */
static int parse_changes(const xmlNode *n, struct ews_message *m, struct err *err)
{
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		struct ews_sync_change *ch;
		enum ews_change_type type;

		if (!ns_is(c, NS_T))
			continue;
		if (is_local(c, "Create"))
			type = EWS_CHANGE_CREATE;
		else if (is_local(c, "Update"))
			type = EWS_CHANGE_UPDATE;
		else if (is_local(c, "Delete"))
			type = EWS_CHANGE_DELETE;
		else if (is_local(c, "ReadFlagChange"))
			type = EWS_CHANGE_READ_FLAG;
		else
			continue;
		m->changes = grow(m->changes, m->n_changes, sizeof(*m->changes));
		ch = &m->changes[m->n_changes++];
		*ch = (struct ews_sync_change){.type = type};
		for (const xmlNode *d = first_el(c); d != NULL; d = after_el(d)) {
			if (!ns_is(d, NS_T))
				continue;
			if (is_local(d, "ItemId")) {
				set_attr(&ch->item_id, d, "Id");
				set_attr(&ch->change_key, d, "ChangeKey");
			} else if (is_local(d, "IsRead")) {
				if (get_bool(d, &ch->is_read, err) != 0)
					return -EPROTO;
			} else if ((type == EWS_CHANGE_CREATE || type == EWS_CHANGE_UPDATE) &&
			           ch->item == NULL) {
				ch->item = xcalloc(1, sizeof(*ch->item));
				if (parse_item(d, ch->item, err) != 0)
					return -EPROTO;
				free(ch->item_id);
				free(ch->change_key);
				ch->item_id = ch->item->item_id ? xstrdup(ch->item->item_id) : NULL;
				ch->change_key =
					ch->item->change_key ? xstrdup(ch->item->change_key) : NULL;
			}
		}
	}
	return 0;
}

/* "0x670A" or "26378": PropertyTag may be written in hex or in decimal. */
static bool parse_tag(const char *s, int64_t *out)
{
	size_t len = strlen(s);
	int64_t v = 0;

	trim(&s, &len);
	if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		if (len > 2 + 8)
			return false;
		for (size_t i = 2; i < len; i++) {
			char c = s[i];
			int d;

			if (c >= '0' && c <= '9')
				d = c - '0';
			else if (c >= 'a' && c <= 'f')
				d = c - 'a' + 10;
			else if (c >= 'A' && c <= 'F')
				d = c - 'A' + 10;
			else
				return false;
			v = v * 16 + d;
		}
		*out = v;
		return true;
	}
	return parse_int64(s, len, out) && *out >= 0;
}

/* t:ExtendedProperty of a folder: PR_LOCAL_COMMIT_TIME_MAX and PR_DELETED_COUNT_TOTAL. */
static int parse_extended_property(const xmlNode *n, struct ews_message *m, struct err *err)
{
	int64_t tag = -1;

	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		if (is_el(c, NS_T, "ExtendedFieldURI")) {
			char *s = attr_dup(c, "PropertyTag");
			bool ok = s == NULL || parse_tag(s, &tag);

			if (!ok)
				(void)bad(err, c, "PropertyTag is not a number: '%.40s'", s);
			free(s);
			if (!ok)
				return -EPROTO;
		} else if (is_el(c, NS_T, "Value")) {
			if (tag == TAG_LOCAL_COMMIT_TIME_MAX) {
				if (get_time(c, &m->commit_time_utc, err) != 0)
					return -EPROTO;
				m->has_commit_time = true;
			} else if (tag == TAG_DELETED_COUNT_TOTAL) {
				if (get_int64(c, &m->deleted_count_total, err) != 0)
					return -EPROTO;
			}
		}
	}
	return 0;
}

/* GetFolder's m:Folders: the first folder (calsync asks for one). */
static int parse_folders(const xmlNode *n, struct ews_message *m, struct err *err)
{
	const xmlNode *f = first_el(n);

	while (f != NULL && !ns_is(f, NS_T))
		f = after_el(f);
	if (f == NULL)
		return 0;
	for (const xmlNode *c = first_el(f); c != NULL; c = after_el(c)) {
		if (!ns_is(c, NS_T))
			continue;
		if (is_local(c, "FolderId")) {
			set_attr(&m->folder_id, c, "Id");
			set_attr(&m->folder_change_key, c, "ChangeKey");
		} else if (is_local(c, "TotalCount")) {
			if (get_int64(c, &m->total_count, err) != 0)
				return -EPROTO;
		} else if (is_local(c, "ExtendedProperty")) {
			if (parse_extended_property(c, m, err) != 0)
				return -EPROTO;
		}
	}
	return 0;
}

/* A t:CalendarEvent of a free/busy view. Its times may be naive: read as UTC, which is what
 * calsync asks for. */
static int parse_fb_event(const xmlNode *n, struct ews_free_busy_view *v, struct err *err)
{
	struct ews_fb_event *e;

	v->events = grow(v->events, v->n_events, sizeof(*v->events));
	e = &v->events[v->n_events++];
	*e = (struct ews_fb_event){0};
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		if (is_el(c, NS_T, "StartTime")) {
			if (get_time(c, &e->start_utc, err) != 0)
				return -EPROTO;
		} else if (is_el(c, NS_T, "EndTime")) {
			if (get_time(c, &e->end_utc, err) != 0)
				return -EPROTO;
		} else if (is_el(c, NS_T, "BusyType")) {
			e->busy_type = enum_of(c, NAMES(free_busy_names));
		}
	}
	return 0;
}

/* GetUserAvailability's m:FreeBusyView. */
static int parse_free_busy_view(const xmlNode *n, struct ews_message *m, struct err *err)
{
	struct ews_free_busy_view *v = &m->free_busy_view;

	m->has_free_busy_view = true;
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		if (!ns_is(c, NS_T))
			continue;
		if (is_local(c, "FreeBusyViewType")) {
			set_text(&v->type, c);
		} else if (is_local(c, "MergedFreeBusy")) {
			set_text(&v->merged, c);
		} else if (is_local(c, "CalendarEventArray")) {
			for (const xmlNode *ev = first_el(c); ev != NULL; ev = after_el(ev)) {
				if (is_el(ev, NS_T, "CalendarEvent") &&
				    parse_fb_event(ev, v, err) != 0)
					return -EPROTO;
			}
		}
	}
	return 0;
}

static int parse_message(const xmlNode *n, struct ews_message *m, struct err *err);

/* A GetUserAvailability m:FreeBusyResponse: its m:ResponseMessage and m:FreeBusyView. */
static int parse_free_busy_response(const xmlNode *n, struct ews_message *m, struct err *err)
{
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		if (is_el(c, NS_M, "ResponseMessage")) {
			if (parse_message(c, m, err) != 0)
				return -EPROTO;
		} else if (is_el(c, NS_M, "FreeBusyView")) {
			if (parse_free_busy_view(c, m, err) != 0)
				return -EPROTO;
		}
	}
	return 0;
}

static int parse_connection_status(const xmlNode *n, struct ews_message *m, struct err *err)
{
	char *s = text_dup(n);
	int rc = 0;

	if (s != NULL && strcmp(s, "OK") == 0)
		m->connection_status = EWS_CONN_OK;
	else if (s != NULL && strcmp(s, "Closed") == 0)
		m->connection_status = EWS_CONN_CLOSED;
	else
		rc = bad(err, n, "not OK or Closed: '%.40s'", s != NULL ? s : "(nil)");
	free(s);
	return rc;
}

/* One m:<Op>ResponseMessage (or a bare m:ResponseMessage): the common ResponseMessageType
 * fields and whatever payload the operation adds. */
static int parse_message(const xmlNode *n, struct ews_message *m, struct err *err)
{
	char *cls = attr_dup(n, "ResponseClass");
	int rc = 0;

	if (cls != NULL && strcmp(cls, "Success") == 0)
		m->cls = EWS_CLASS_SUCCESS;
	else if (cls != NULL && strcmp(cls, "Warning") == 0)
		m->cls = EWS_CLASS_WARNING;
	else if (cls != NULL && strcmp(cls, "Error") == 0)
		m->cls = EWS_CLASS_ERROR;
	else
		rc = bad(err, n, "ResponseClass is not Success, Warning or Error: '%.40s'",
		         cls != NULL ? cls : "(absent)");
	free(cls);
	if (rc != 0)
		return rc;

	for (const xmlNode *c = first_el(n); c != NULL && rc == 0; c = after_el(c)) {
		/* Exchange writes these two containers' children in the messages namespace,
		 * where the schema says types: match them by local name only. */
		if (is_local(c, "Notification")) {
			rc = parse_notification(c, m, err);
		} else if (is_local(c, "Notifications")) {
			for (const xmlNode *d = first_el(c); d != NULL && rc == 0;
			     d = after_el(d)) {
				if (is_local(d, "Notification"))
					rc = parse_notification(d, m, err);
			}
		} else if (is_local(c, "ErrorSubscriptionIds")) {
			for (const xmlNode *d = first_el(c); d != NULL; d = after_el(d)) {
				if (is_local(d, "SubscriptionId"))
					push_str(&m->error_subscription_ids,
					         &m->n_error_subscription_ids, d);
			}
		} else if (is_local(c, "MessageXml")) {
			rc = parse_message_xml(c, &m->mx, err);
		} else if (!ns_is(c, NS_M)) {
			continue;
		} else if (is_local(c, "ResponseCode")) {
			set_text(&m->code, c);
		} else if (is_local(c, "MessageText")) {
			set_text(&m->text, c);
		} else if (is_local(c, "SubscriptionId")) {
			set_text(&m->subscription_id, c);
		} else if (is_local(c, "Watermark")) {
			set_text(&m->watermark, c);
		} else if (is_local(c, "ConnectionStatus")) {
			rc = parse_connection_status(c, m, err);
		} else if (is_local(c, "RootFolder")) {
			rc = parse_root_folder(c, m, err);
		} else if (is_local(c, "Items")) {
			rc = parse_items(c, m, err);
		} else if (is_local(c, "SyncState")) {
			set_text(&m->sync_state, c);
		} else if (is_local(c, "IncludesLastItemInRange")) {
			rc = get_bool(c, &m->includes_last_item_in_range, err);
			m->has_includes_last = rc == 0;
		} else if (is_local(c, "Changes")) {
			rc = parse_changes(c, m, err);
		} else if (is_local(c, "Folders")) {
			rc = parse_folders(c, m, err);
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
				if (ns_is(d, NS_M) && parse_message(d, new_message(r), err) != 0)
					return -EPROTO;
			}
		} else if (is_local(c, "ResponseMessage")) {
			if (parse_message(c, new_message(r), err) != 0)
				return -EPROTO;
		} else if (is_local(c, "FreeBusyResponseArray")) {
			for (const xmlNode *d = first_el(c); d != NULL; d = after_el(d)) {
				if (is_el(d, NS_M, "FreeBusyResponse") &&
				    parse_free_busy_response(d, new_message(r), err) != 0)
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
			set_text(&f->faultcode, c);
		} else if (is_local(c, "faultstring")) {
			set_text(&f->faultstring, c);
		} else if (is_local(c, "detail")) {
			for (const xmlNode *d = first_el(c); d != NULL; d = after_el(d)) {
				if (is_local(d, "ResponseCode")) {
					set_text(&f->response_code, d);
				} else if (is_local(d, "ErrorCode")) {
					set_text(&error_code, d);
				} else if (is_local(d, "Message")) {
					set_text(&f->message, d);
				} else if (is_local(d, "MessageXml")) {
					if (parse_message_xml(d, &f->mx, err) != 0) {
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

/* Where a UserSetting calsync keeps goes, or NULL for the many it does not. */
static char **setting_slot(struct ews_user_settings *u, const char *name)
{
	if (strcmp(name, "InternalEwsUrl") == 0)
		return &u->internal_ews_url;
	if (strcmp(name, "ExternalEwsUrl") == 0)
		return &u->external_ews_url;
	if (strcmp(name, "GroupingInformation") == 0)
		return &u->grouping_information;
	if (strcmp(name, "CasVersion") == 0)
		return &u->cas_version;
	if (strcmp(name, "EwsSupportedSchemas") == 0)
		return &u->ews_supported_schemas;
	return NULL;
}

static void parse_user_setting(const xmlNode *n, struct ews_user_settings *u)
{
	char *name = NULL;
	const xmlNode *value = NULL;
	char **slot;

	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		if (is_local(c, "Name") && is_ad_ns(c))
			set_text(&name, c);
		else if (is_local(c, "Value") && is_ad_ns(c))
			value = c;
	}
	slot = name != NULL && value != NULL ? setting_slot(u, name) : NULL;
	if (slot != NULL)
		set_text(slot, value);
	free(name);
}

static void parse_user_response(const xmlNode *n, struct ews_response *r)
{
	struct ews_user_settings *u;

	r->users = grow(r->users, r->n_users, sizeof(*r->users));
	u = &r->users[r->n_users++];
	*u = (struct ews_user_settings){0};
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		if (!is_ad_ns(c))
			continue;
		if (is_local(c, "ErrorCode")) {
			set_text(&u->error_code, c);
		} else if (is_local(c, "ErrorMessage")) {
			set_text(&u->error_message, c);
		} else if (is_local(c, "RedirectTarget")) {
			set_text(&u->redirect_target, c);
		} else if (is_local(c, "UserSettings")) {
			for (const xmlNode *s = first_el(c); s != NULL; s = after_el(s)) {
				if (is_local(s, "UserSetting") && is_ad_ns(s))
					parse_user_setting(s, u);
			}
		}
	}
}

/* a:GetUserSettingsResponseMessage/a:Response. */
static void parse_user_settings(const xmlNode *n, struct ews_response *r)
{
	for (const xmlNode *resp = first_el(n); resp != NULL; resp = after_el(resp)) {
		if (!is_local(resp, "Response") || !is_ad_ns(resp))
			continue;
		for (const xmlNode *c = first_el(resp); c != NULL; c = after_el(c)) {
			if (!is_ad_ns(c))
				continue;
			if (is_local(c, "ErrorCode")) {
				set_text(&r->autodiscover_error, c);
			} else if (is_local(c, "UserResponses")) {
				for (const xmlNode *u = first_el(c); u != NULL; u = after_el(u)) {
					if (is_local(u, "UserResponse") && is_ad_ns(u))
						parse_user_response(u, r);
				}
			}
		}
	}
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

		if (attr_int64(n, parts[i], &v, &has, err) != 0)
			return -EPROTO;
		if (!has)
			break;
		if (v < 0)
			return bad(err, n, "%s is negative", parts[i]);
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
		return bad(err, body, "empty: no response in it");
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
				parse_user_settings(op, r);
			return 0;
		}
	}
	return bad(err, op, "not an EWS or Autodiscover response (a request?)");
}

static int walk(const xmlDoc *doc, struct ews_response *r, struct err *err)
{
	const xmlNode *root = xmlDocGetRootElement(doc);
	const xmlNode *body = NULL;

	if (root == NULL)
		return err_set(err, -EPROTO, "no root element");
	if (!is_el(root, NS_SOAP, "Envelope"))
		return bad(err, root, "not a SOAP 1.1 Envelope");
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
		return bad(err, root, "no Body");
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
		size_t n;
		char msg[160];

		snprintf(msg, sizeof(msg), "%s",
		         e != NULL && e->message != NULL ? e->message : "unknown error");
		n = strlen(msg);
		while (n > 0 && xml_space(msg[n - 1]))
			msg[--n] = '\0';
		rc = err_set(err, -EPROTO, "line %d: not well-formed XML: %s", e ? e->line : 0,
		             msg);
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
