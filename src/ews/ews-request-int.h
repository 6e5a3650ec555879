/* SPDX-License-Identifier: MIT */
/*
 * ews-request-int.h: what the files of the request writer share, and nothing else includes.
 * ews-request.c writes the envelope, the SOAP header (RequestServerVersion, impersonation,
 * time zone) and checks every argument; ews-request-notify.c, ews-request-cal.c and
 * ews-request-autod.c write their operations' bodies between ews_req_begin_ews() (or
 * ews_req_begin()) and ews_req_finish().
 *
 * The element writers below are static inline and keep short names, so that a request's code
 * reads like the XML it produces; the functions the files share carry the prefix ews_req_.
 */
#pragma once

#include <errno.h>
#include <libxml/xmlwriter.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/compat.h"
#include "base/iso8601.h"
#include "ews/ews-request.h"

struct buf;
struct err;

#define NS_SOAP "http://schemas.xmlsoap.org/soap/envelope/"
#define NS_M    "http://schemas.microsoft.com/exchange/services/2006/messages"
#define NS_T    "http://schemas.microsoft.com/exchange/services/2006/types"
#define NS_A    "http://schemas.microsoft.com/exchange/2010/Autodiscover"
#define NS_WSA  "http://www.w3.org/2005/08/addressing"

/* libxml2 takes const xmlChar * (unsigned char); the cast keeps the const. */
#define X(s) ((const xmlChar *)(s))

/*
 * One request being written. Errors are sticky: after the first failed libxml2 call every
 * helper does nothing, and ews_req_finish() reports the error once, so that the writers read
 * like the XML they produce.
 */
struct ews_req_writer {
	xmlTextWriterPtr x;
	struct buf *out;
	int rc;
	bool overflow; /* the output passed out->max */
};

/* Records a failed libxml2 call. With a sink that never fails, the writer fails only when it
 * cannot allocate. */
static inline void check_xml(struct ews_req_writer *w, int libxml_rc)
{
	if (libxml_rc < 0 && w->rc == 0)
		w->rc = -ENOMEM;
}

static inline void start(struct ews_req_writer *w, const char *prefix, const char *name)
{
	if (w->rc == 0)
		check_xml(w, xmlTextWriterStartElementNS(w->x, X(prefix), X(name), NULL));
}

static inline void end(struct ews_req_writer *w)
{
	if (w->rc == 0)
		check_xml(w, xmlTextWriterEndElement(w->x));
}

static inline void attr(struct ews_req_writer *w, const char *name, const char *value)
{
	if (w->rc == 0)
		check_xml(w, xmlTextWriterWriteAttribute(w->x, X(name), X(value)));
}

static inline void attr_uint(struct ews_req_writer *w, const char *name, unsigned value)
{
	char s[16];

	(void)snprintf(s, sizeof(s), "%u", value);
	attr(w, name, s);
}

/* <prefix:name>text</prefix:name>, with text escaped by libxml2. */
static inline void text_elem(struct ews_req_writer *w, const char *prefix, const char *name,
                             const char *text)
{
	start(w, prefix, name);
	if (w->rc == 0)
		check_xml(w, xmlTextWriterWriteString(w->x, X(text)));
	end(w);
}

static inline void uint_elem(struct ews_req_writer *w, const char *prefix, const char *name,
                             unsigned value)
{
	char s[16];

	(void)snprintf(s, sizeof(s), "%u", value);
	text_elem(w, prefix, name, s);
}

/* The validated header values, ready to write. */
struct ews_req_header {
	const char *version;
	const char *impersonate;
	const char *id_elem;
	bool tz_utc;
	size_t version_index;
};

/* Starts the document and the s:Envelope with its namespace declarations: EWS requests declare
 * s:, m: and t:, Autodiscover requests s:, a: and wsa:, all on the root. Resets out. */
void ews_req_begin(struct ews_req_writer *w, struct buf *out, bool autodiscover);

/* ews_req_begin(), then the s:Header of hd, and opens s:Body. */
void ews_req_begin_ews(struct ews_req_writer *w, struct buf *out, const struct ews_req_header *hd);

/* Closes every open element and the document, flushes, and frees the writer: 0, or -EMSGSIZE
 * (out's maximum passed) or -ENOMEM with err naming op; on failure out is reset. */
int ews_req_finish(struct ews_req_writer *w, const char *op, struct err *err);

/* 0 when s can be sent (optional: NULL is fine too; never ""), else -EINVAL with err naming
 * the operation and the argument; name_fmt formats the argument's name, such as "ids[3].id". */
ATTR_PRINTF(5, 6)
int ews_req_check_text(const char *op, const char *s, bool optional, struct err *err,
                       const char *name_fmt, ...);

/* 0 and *out_hd, the validated h (NULL = the defaults), or -EINVAL naming op. */
int ews_req_check_header(const char *op, const struct ews_header *h, struct ews_req_header *out_hd,
                         struct err *err);

/* 0 when hd's version has streaming notifications (Exchange2010_SP1+), else -EINVAL. */
int ews_req_check_streaming(const char *op, const struct ews_req_header *hd, struct err *err);

/* Both ends of a [start, end) window as xs:dateTime in UTC with 'Z', with start < end: 0, or
 * -EINVAL naming op and the argument. */
int ews_req_format_window(const char *op, int64_t start_utc, int64_t end_utc,
                          char start[ISO8601_FORMAT_SIZE], char end_[ISO8601_FORMAT_SIZE],
                          struct err *err);

/* t:DistinguishedFolderId Id="calendar". */
void ews_req_calendar_folder(struct ews_req_writer *w);
