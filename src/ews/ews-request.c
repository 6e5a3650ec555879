/* SPDX-License-Identifier: MIT */
/*
 * ews-request.c: writes the EWS and Autodiscover requests calsync sends, with libxml2's
 * xmlTextWriter, so that every escape is libxml2's and never ours. The shapes follow the
 * validated skeletons of EWS-REFERENCE.md; test-ews-request.c validates each one against the
 * schema in data/ews-schema.
 *
 * Every function first checks all of its arguments (so that a bad one never reaches the wire,
 * where Exchange would answer ErrorSchemaValidation at best), then streams the document into
 * the caller's struct buf through a libxml2 output callback, which stops appending at the
 * buffer's maximum.
 *
 * This file holds the writer, the envelope and SOAP header, and the argument checks every
 * operation shares; the operations' bodies are in ews-request-notify.c, ews-request-cal.c and
 * ews-request-autod.c (ews-request-int.h).
 */
#include "ews/ews-request.h"

#include <errno.h>
#include <libxml/xmlIO.h>
#include <libxml/xmlwriter.h>
#include <stdarg.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/iso8601.h"
#include "ews/ews-request-int.h"

/*
 * t:ExchangeVersionType of the Exchange 2019 schema, oldest first. We refuse anything else:
 * Exchange would answer an unknown value with ErrorSchemaValidation, which the version
 * step-down (EWS-REFERENCE 1.2) does not handle.
 */
static const char *const exchange_versions[] = {
	"Exchange2007",     "Exchange2007_SP1", "Exchange2009", "Exchange2010",
	"Exchange2010_SP1", "Exchange2010_SP2", "Exchange2012", "Exchange2013",
	"Exchange2013_SP1", "Exchange2015",     "Exchange2016", "V2015_10_05",
	"V2016_01_06",      "V2016_04_13",      "V2016_07_13",  "V2016_10_10",
	"V2017_01_07",      "V2017_04_14",      "V2017_07_11",
};

#define N_VERSIONS (sizeof(exchange_versions) / sizeof(exchange_versions[0]))

/* The first version with streaming notifications and FreeBusyChangedEvent (EWS-REFERENCE 1.2). */
#define VERSION_STREAMING "Exchange2010_SP1"

/* With no header at all: the default version, no impersonation, no TimeZoneContext. */
static const struct ews_header no_header;

/*
 * libxml2's output callback. Past the maximum we keep consuming and dropping bytes instead of
 * failing: a failing callback makes libxml2 print an I/O error on stderr, and ews_req_finish()
 * discards the request anyway.
 */
static int sink_write(void *ctx, const char *data, int len)
{
	struct ews_req_writer *w = ctx;

	if (len > 0 && !w->overflow && buf_append(w->out, data, (size_t)len, NULL) != 0)
		w->overflow = true;
	return len;
}

/* Starts the document and the s:Envelope with its namespace declarations: EWS requests declare
 * s:, m: and t:, Autodiscover requests s:, a: and wsa:, all on the root. */
void ews_req_begin(struct ews_req_writer *w, struct buf *out, bool autodiscover)
{
	xmlOutputBufferPtr ob;

	*w = (struct ews_req_writer){.out = out};
	buf_reset(out);
	ob = xmlOutputBufferCreateIO(sink_write, NULL, w, NULL);
	if (ob == NULL) {
		w->rc = -ENOMEM;
		return;
	}
	w->x = xmlNewTextWriter(ob); /* owns ob from here on */
	if (w->x == NULL) {
		(void)xmlOutputBufferClose(ob);
		w->rc = -ENOMEM;
		return;
	}
	check_xml(w, xmlTextWriterStartDocument(w->x, "1.0", "UTF-8", NULL));
	start(w, "s", "Envelope");
	attr(w, "xmlns:s", NS_SOAP);
	if (autodiscover) {
		attr(w, "xmlns:a", NS_A);
		attr(w, "xmlns:wsa", NS_WSA);
	} else {
		attr(w, "xmlns:m", NS_M);
		attr(w, "xmlns:t", NS_T);
	}
}

/* Closes every open element and the document, flushes, and frees the writer. On failure the
 * partial request is dropped. */
int ews_req_finish(struct ews_req_writer *w, const char *op, struct err *err)
{
	if (w->x != NULL) {
		if (w->rc == 0)
			check_xml(w, xmlTextWriterEndDocument(w->x));
		if (w->rc == 0)
			check_xml(w, xmlTextWriterFlush(w->x));
		xmlFreeTextWriter(w->x);
		w->x = NULL;
	}
	if (w->rc == 0 && !w->overflow)
		return 0;
	buf_reset(w->out);
	if (w->rc == 0)
		return err_set(err, -EMSGSIZE, "%s: the request does not fit in %zu bytes", op,
		               w->out->max);
	return err_set(err, w->rc, "%s: libxml2 could not write the request", op);
}

/* Writes s:Header and opens s:Body. */
void ews_req_begin_ews(struct ews_req_writer *w, struct buf *out, const struct ews_req_header *hd)
{
	ews_req_begin(w, out, false);
	start(w, "s", "Header");
	start(w, "t", "RequestServerVersion");
	attr(w, "Version", hd->version);
	end(w);
	if (hd->impersonate != NULL) {
		start(w, "t", "ExchangeImpersonation");
		start(w, "t", "ConnectingSID");
		text_elem(w, "t", hd->id_elem, hd->impersonate);
		end(w);
		end(w);
	}
	if (hd->tz_utc) {
		start(w, "t", "TimeZoneContext");
		start(w, "t", "TimeZoneDefinition");
		attr(w, "Id", "UTC");
		end(w);
		end(w);
	}
	end(w);
	start(w, "s", "Body");
}

/*
 * NULL when s can be sent: not NULL, not empty, valid UTF-8 (no overlong forms, surrogates or
 * values past U+10FFFF), and only characters XML 1.0 allows (no control characters but tab,
 * LF and CR). Otherwise a phrase that completes "<argument> ...". libxml2 escapes markup but
 * would pass these through, and the server would reject the whole document.
 */
static const char *text_problem(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (s == NULL)
		return "is missing";
	if (*p == '\0')
		return "is empty";
	while (*p != '\0') {
		uint32_t c;
		size_t n;

		if (*p < 0x80) {
			c = *p;
			n = 1;
		} else if ((*p & 0xe0) == 0xc0) {
			c = *p & 0x1fu;
			n = 2;
		} else if ((*p & 0xf0) == 0xe0) {
			c = *p & 0x0fu;
			n = 3;
		} else if ((*p & 0xf8) == 0xf0) {
			c = *p & 0x07u;
			n = 4;
		} else {
			return "is not valid UTF-8";
		}
		/* A NUL ends this loop too, as it is no continuation byte. */
		for (size_t i = 1; i < n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return "is not valid UTF-8";
			c = c << 6 | (p[i] & 0x3fu);
		}
		if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
		    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return "is not valid UTF-8";
		if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0xfffe || c == 0xffff)
			return "holds a character XML cannot carry";
		p += n;
	}
	return NULL;
}

/* text_problem() for an optional value: NULL is fine, "" is not. */
static const char *opt_text_problem(const char *s)
{
	return s == NULL ? NULL : text_problem(s);
}

/* 0 when s can be sent (optional: NULL is fine too), else -EINVAL with err naming the
 * operation and the argument; name_fmt formats the argument's name, such as "ids[3].id". */
int ews_req_check_text(const char *op, const char *s, bool optional, struct err *err,
                       const char *name_fmt, ...)
{
	const char *why = optional ? opt_text_problem(s) : text_problem(s);
	char name[64];
	va_list ap;

	if (why == NULL)
		return 0;
	va_start(ap, name_fmt);
	(void)vsnprintf(name, sizeof(name), name_fmt, ap);
	va_end(ap);
	return err_set(err, -EINVAL, "%s: %s %s", op, name, why);
}

/* The index of version in exchange_versions, or N_VERSIONS. */
static size_t version_index(const char *version)
{
	size_t i;

	for (i = 0; i < N_VERSIONS; i++) {
		if (strcmp(version, exchange_versions[i]) == 0)
			break;
	}
	return i;
}

int ews_req_check_header(const char *op, const struct ews_header *h, struct ews_req_header *out_hd,
                         struct err *err)
{
	static const char *const id_elems[] = {
		[EWS_ID_SMTP] = "SmtpAddress",
		[EWS_ID_PRIMARY_SMTP] = "PrimarySmtpAddress",
		[EWS_ID_PRINCIPAL] = "PrincipalName",
	};
	const char *version;
	size_t i;
	int rc;

	if (h == NULL)
		h = &no_header;
	version = h->version != NULL ? h->version : EWS_DEFAULT_VERSION;
	i = version_index(version);
	if (i == N_VERSIONS)
		return err_set(err, -EINVAL,
		               "%s: header version '%.64s' is no RequestServerVersion", op,
		               version);
	rc = ews_req_check_text(op, h->impersonate, true, err, "header impersonate");
	if (rc < 0)
		return rc;
	if ((unsigned)h->id_type >= sizeof(id_elems) / sizeof(id_elems[0]))
		return err_set(err, -EINVAL, "%s: header id_type %d is unknown", op,
		               (int)h->id_type);
	*out_hd = (struct ews_req_header){
		.version = exchange_versions[i],
		.impersonate = h->impersonate,
		.id_elem = id_elems[h->id_type],
		.tz_utc = h->tz_utc,
		.version_index = i,
	};
	return 0;
}

const char *ews_version_known(const char *version)
{
	size_t i = version != NULL ? version_index(version) : N_VERSIONS;

	return i < N_VERSIONS ? exchange_versions[i] : NULL;
}

bool ews_version_streams(const char *version)
{
	return ews_version_known(version) != NULL &&
	       version_index(version) >= version_index(VERSION_STREAMING);
}

int ews_req_check_streaming(const char *op, const struct ews_req_header *hd, struct err *err)
{
	if (hd->version_index < version_index(VERSION_STREAMING))
		return err_set(err, -EINVAL,
		               "%s: header version %s predates streaming (%s or later)", op,
		               hd->version, VERSION_STREAMING);
	return 0;
}

/* A time as xs:dateTime in UTC with 'Z', or -EINVAL naming the argument. */
static int format_time(const char *op, const char *name, int64_t utc, char out[ISO8601_FORMAT_SIZE],
                       struct err *err)
{
	if (iso8601_format(utc, out, NULL) != 0)
		return err_set(err, -EINVAL, "%s: %s %lld is outside years 1 to 9999", op, name,
		               (long long)utc);
	return 0;
}

/* Both ends of a [start, end) window, formatted, with start < end. */
int ews_req_format_window(const char *op, int64_t start_utc, int64_t end_utc,
                          char start[ISO8601_FORMAT_SIZE], char end_[ISO8601_FORMAT_SIZE],
                          struct err *err)
{
	int rc;

	rc = format_time(op, "start_utc", start_utc, start, err);
	if (rc < 0)
		return rc;
	rc = format_time(op, "end_utc", end_utc, end_, err);
	if (rc < 0)
		return rc;
	if (start_utc >= end_utc)
		return err_set(err, -EINVAL, "%s: start_utc %s is not before end_utc %s", op, start,
		               end_);
	return 0;
}

void ews_req_calendar_folder(struct ews_req_writer *w)
{
	start(w, "t", "DistinguishedFolderId");
	attr(w, "Id", "calendar");
	end(w);
}
