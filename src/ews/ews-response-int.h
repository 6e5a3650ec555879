/* SPDX-License-Identifier: MIT */
/*
 * ews-response-int.h: what the files of the response reader share, and nothing else includes.
 * ews-response.c reads the envelope, the SOAP fault and the common ResponseMessage fields and
 * owns the bounded libxml2 parse; ews-response-read.c reads one node's typed value;
 * ews-response-cal.c, ews-response-notify.c and ews-response-autod.c read their operations'
 * payloads into the structures of ews-response.h.
 *
 * Every reader takes the node it reads and, when it can fail, returns 0 or -EPROTO with err
 * naming the node and its line (ews_resp_bad). Strings they store are owned; a repeated element
 * replaces an earlier one. Internal names carry the prefix ews_resp_ (ews_response_ is the
 * module's public API); the node predicates below are static inline and keep short names.
 */
#pragma once

#include <libxml/tree.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/compat.h"
#include "base/xalloc.h"
#include "ews/ews-response.h"

struct err;

#define NS_SOAP "http://schemas.xmlsoap.org/soap/envelope/"
#define NS_M    "http://schemas.microsoft.com/exchange/services/2006/messages"
#define NS_T    "http://schemas.microsoft.com/exchange/services/2006/types"
#define NS_XSI  "http://www.w3.org/2001/XMLSchema-instance"
/* Microsoft's Autodiscover samples carry the docs' https:// rewrite of this namespace (the
 * fixtures keep it); a server sends http://. Both mean the same service. */
#define NS_AD       "http://schemas.microsoft.com/exchange/2010/Autodiscover"
#define NS_AD_HTTPS "https://schemas.microsoft.com/exchange/2010/Autodiscover"

/* A name table and its length, for name_at() and ews_resp_enum_of(). */
#define NAMES(a) (a), sizeof(a) / sizeof((a)[0])

static inline const char *name_at(const char *const *names, size_t n, unsigned i)
{
	return i < n ? names[i] : NULL;
}

/*
 * Makes room for element n of an array that only ever grows through this function: the
 * capacity is implied (the next power of two at or above n), so no struct needs a cap field.
 * Counts are bounded by EWS_MAX_ELEMENTS, far from any overflow.
 */
static inline void *grow(void *arr, size_t n, size_t size)
{
	if (n != 0 && (n & (n - 1)) != 0)
		return arr;
	return xreallocarray(arr, n == 0 ? 1 : 2 * n, size);
}

static inline bool ns_is(const xmlNode *n, const char *ns)
{
	return n->ns != NULL && n->ns->href != NULL && strcmp((const char *)n->ns->href, ns) == 0;
}

static inline bool is_local(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

/* An element called name in namespace ns. */
static inline bool is_el(const xmlNode *n, const char *ns, const char *name)
{
	return is_local(n, name) && ns_is(n, ns);
}

static inline bool is_ad_ns(const xmlNode *n)
{
	return ns_is(n, NS_AD) || ns_is(n, NS_AD_HTTPS);
}

static inline const xmlNode *next_el(const xmlNode *n)
{
	while (n != NULL && n->type != XML_ELEMENT_NODE)
		n = n->next;
	return n;
}

static inline const xmlNode *first_el(const xmlNode *parent)
{
	return next_el(parent->children);
}

static inline const xmlNode *after_el(const xmlNode *n)
{
	return next_el(n->next);
}

/* --- ews-response-read.c: one node's value ---------------------------------------------- */

/* Always -EPROTO, with err "line N: t:Start: <fmt>" naming n as it was written. */
ATTR_PRINTF(3, 4) int ews_resp_bad(struct err *err, const xmlNode *n, const char *fmt, ...);

/* An element's text (owned), or NULL when it is marked xsi:nil. */
char *ews_resp_text_dup(const xmlNode *n);

/* Replaces *slot by the text of n: a repeated element wins over an earlier one. */
void ews_resp_set_text(char **slot, const xmlNode *n);

/* The value of n's unqualified attribute name (owned), or NULL when there is none. */
char *ews_resp_attr_dup(const xmlNode *n, const char *name);

void ews_resp_set_attr(char **slot, const xmlNode *n, const char *name);

/* Trims the XML whitespace around a value, as xs:boolean, xs:int and xs:dateTime allow. */
void ews_resp_trim(const char **s, size_t *len);

/* xs:long in decimal: an optional sign and 1 to 18 digits, which cannot overflow. */
bool ews_resp_parse_int64(const char *s, size_t len, int64_t *out);

/* The element's text as a number / boolean / xs:dateTime (naive times are UTC, within what
 * iso8601_format() can print back): 0, or -EPROTO naming the element. */
int ews_resp_get_int64(const xmlNode *n, int64_t *out, struct err *err);
int ews_resp_get_bool(const xmlNode *n, bool *out, struct err *err);
int ews_resp_get_time(const xmlNode *n, int64_t *out, struct err *err);

/* An optional attribute as a number / boolean: 0 (*out_has, when not NULL, says whether it was
 * there; *out is written only when it was), or -EPROTO naming the element. */
int ews_resp_attr_int64(const xmlNode *n, const char *name, int64_t *out, bool *out_has,
                        struct err *err);
int ews_resp_attr_bool(const xmlNode *n, const char *name, bool *out, bool *out_has,
                       struct err *err);

/* An element holding one of the names of a table's enumeration: its index, or 0 (UNKNOWN) for
 * a value calsync does not know, which a newer server may well send. */
unsigned ews_resp_enum_of(const xmlNode *n, const char *const *names, size_t count);

/* Appends the text of c to the string vector (*v, *n). */
void ews_resp_push_str(char ***v, size_t *n, const xmlNode *c);

/* Frees n strings and the vector; NULL-safe. */
void ews_resp_strv_free(char **v, size_t n);

/* --- ews-response.c: the common parts ------------------------------------------------------ */

/* One m:<Op>ResponseMessage (or a bare m:ResponseMessage) into m: the common fields, and the
 * payload through the readers below. */
int ews_resp_message(const xmlNode *n, struct ews_message *m, struct err *err);

/* m:MessageXml (or t:MessageXml in a fault): the t:Value pairs calsync acts on. */
int ews_resp_message_xml(const xmlNode *n, struct ews_message_xml *mx, struct err *err);

/* --- ews-response-cal.c: FindItem, GetItem, SyncFolderItems, GetFolder, availability ------- */

int ews_resp_items(const xmlNode *n, struct ews_message *m, struct err *err); /* m:Items */
int ews_resp_root_folder(const xmlNode *n, struct ews_message *m, struct err *err);
int ews_resp_changes(const xmlNode *n, struct ews_message *m, struct err *err);
int ews_resp_folders(const xmlNode *n, struct ews_message *m, struct err *err);
int ews_resp_free_busy_response(const xmlNode *n, struct ews_message *m, struct err *err);

/* Frees what those readers stored in m (items, changes, SyncState, folder, free/busy view). */
void ews_resp_cal_clear(struct ews_message *m);

/* --- ews-response-notify.c: Subscribe, GetEvents, GetStreamingEvents ---------------------- */

/* One m:Notification, appended to m's notifications. */
int ews_resp_notification(const xmlNode *n, struct ews_message *m, struct err *err);

/* m:ConnectionStatus: OK or Closed, else -EPROTO. */
int ews_resp_connection_status(const xmlNode *n, struct ews_message *m, struct err *err);

/* Frees m's subscription id, watermark, notifications and ErrorSubscriptionIds. */
void ews_resp_notify_clear(struct ews_message *m);

/* --- ews-response-autod.c: Autodiscover GetUserSettings ----------------------------------- */

/* a:GetUserSettingsResponseMessage: the request-level ErrorCode and each user's settings. */
void ews_resp_user_settings(const xmlNode *n, struct ews_response *r);

/* Frees r's users. */
void ews_resp_users_clear(struct ews_response *r);
