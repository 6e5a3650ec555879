/* SPDX-License-Identifier: MIT */
/*
 * ews-stream.c: cuts a GetStreamingEvents body into envelopes. libxml2's push parser checks
 * each document and counts element depth; this file decides where documents begin and hands
 * out the bytes of each root element.
 *
 * How the bytes of an envelope are found. test-ews-stream.c checks all of this at every split
 * point of its inputs, and a check at run time turns any breach into -EPROTO, never wrong bytes.
 * - Between documents we skip whitespace and UTF-8 byte-order marks ourselves. The first other
 *   byte starts a document, and a freshly reset push parser sees the document from that byte
 *   on, so xmlByteConsumed() counts bytes from the document's start.
 * - Those counts are raw input bytes because libxml2 never converts the input: BOMs never
 *   reach it, each document is declared UTF-8 before its first byte (so libxml2 guesses no
 *   encoding), and XML_PARSE_IGNORE_ENC makes it ignore encoding="..." in a declaration.
 *   EWS is UTF-8; anything else fails as bad UTF-8.
 * - The root's end: libxml2 calls endElementNs for the root just after it has consumed the
 *   '>' of the end tag (or the "/>" of an empty root), so xmlByteConsumed() in that callback
 *   is the exact end. The callback stops the parser, so whatever follows in the same push is
 *   never parsed as part of this document. A push parser parses as far as it can on every
 *   push and cannot finish the root before its last '>' arrives, so the end always lies in
 *   the slice being pushed, and the envelope is handed out during the feed that completes it.
 * - The root's start: a document may open with an XML declaration, comments or processing
 *   instructions. When startElementNs reports the root, libxml2 stands inside or at the end of
 *   its start tag. A start tag holds no '<' but its first byte (an attribute value must escape
 *   it, or the document is rejected), so the last '<' before that point is the root's start.
 *
 * Bytes are pushed in slices that double within a document, up to what the size limit still
 * allows. Bytes after a root's end in the same slice are pushed again to the next document, so
 * the doubling keeps that rework below the size of the envelope just finished: O(n) overall.
 * The only bytes held here are those of the current document that arrived in earlier feeds.
 */
#include "ews/ews-stream.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>

#include "base/err.h"
#include "base/xalloc.h"

/*
 * The first slice of a document, and the most pushed at once. Small first slices waste little
 * when envelopes are small (a heartbeat is about 1 KiB); larger ones cut the per-call cost.
 */
#define SLICE_MIN 1024u
#define SLICE_MAX (64u << 10)

/*
 * One parser context serves document after document, but its name dictionary keeps every
 * element and attribute name it has seen, and the server chooses those names. Past this much
 * dictionary memory the context is replaced, so a long connection cannot grow it forever.
 */
#define DICT_MAX (256u << 10)

/*
 * Deepest element nesting accepted. libxml2 enforces its own limit (256) only when it builds a
 * tree, and we give it SAX callbacks alone, so without this an endless nest would make its
 * tag stacks grow up to the size limit. Real envelopes stay under 15 levels.
 */
#define MAX_DEPTH 256u

/* A held buffer bigger than this is freed after its envelope, rather than kept for the next. */
#define HELD_KEEP (64u << 10)

/* libxml2's messages are cut to this many bytes, so that our context fits in struct err. */
#define XML_MSG_MAX 120u

enum stream_state {
	STREAM_BETWEEN, /* between documents: skipping whitespace and BOMs */
	STREAM_IN_DOC,  /* inside a document: bytes go to libxml2 */
};

struct ews_stream {
	ews_envelope_fn *fn;
	void *ctx;
	size_t max;
	xmlParserCtxtPtr xml; /* NULL before the first document and after a retirement */
	size_t offset;        /* bytes fed before the current call: the offset of its data[0] */
	int dead;             /* 0, or the error that every later call returns */
	struct err dead_err;  /* that error's detail, handed out again */
	bool in_callback;     /* the envelope callback is running: no re-entry */
	enum stream_state state;
	unsigned bom_len; /* bytes of a UTF-8 BOM matched so far, between documents */
	size_t bom_start; /* where that BOM began */
	/* The current document, in offsets from the start of the input. */
	size_t doc_start;
	size_t pushed;     /* end of the bytes pushed to libxml2 */
	size_t depth;      /* open elements */
	bool root_seen;    /* startElementNs reported the root: root_mark is set */
	size_t root_mark;  /* libxml2's position inside the root's start tag */
	bool root_known;   /* root_start is set */
	size_t root_start; /* the root's '<' */
	bool root_done;    /* endElementNs closed the root: root_end is set */
	size_t root_end;   /* one past the root's last '>' */
	/* The first libxml2 error (or a refused DTD) in this document. */
	bool xml_failed;
	size_t xml_pos;
	char xml_msg[XML_MSG_MAX];
	/* Bytes of the current document from earlier feeds: [held_start, held_start + held_len). */
	char *held;
	size_t held_len;
	size_t held_cap;
	size_t held_start;
};

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* Where libxml2 stands, as an offset into the whole input. */
static size_t xml_position(const struct ews_stream *s)
{
	long n = xmlByteConsumed(s->xml);

	/* Never below the document's start, never past what it was given. */
	if (n < 0 || (size_t)n > s->pushed - s->doc_start)
		return s->pushed;
	return s->doc_start + (size_t)n;
}

static void record_failure(struct ews_stream *s, const char *msg)
{
	size_t n;

	if (s->xml_failed)
		return;
	s->xml_failed = true;
	s->xml_pos = xml_position(s);
	(void)snprintf(s->xml_msg, sizeof(s->xml_msg), "%s", msg != NULL ? msg : "(no message)");
	/* libxml2 ends its messages with a newline. */
	n = strlen(s->xml_msg);
	while (n > 0 && (s->xml_msg[n - 1] == '\n' || s->xml_msg[n - 1] == ' '))
		s->xml_msg[--n] = '\0';
}

static void on_start(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri,
                     int nb_namespaces, const xmlChar **namespaces, int nb_attributes,
                     int nb_defaulted, const xmlChar **attributes)
{
	struct ews_stream *s = ctx;

	if (s->depth == 0) {
		s->root_seen = true;
		s->root_mark = xml_position(s);
	}
	if (++s->depth > MAX_DEPTH) {
		record_failure(s, "elements nested too deep");
		xmlStopParser(s->xml);
	}
}

static void on_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
	struct ews_stream *s = ctx;

	assert(s->depth > 0);
	if (--s->depth > 0)
		return;
	s->root_done = true;
	s->root_end = xml_position(s);
	/* The next bytes belong to the next document: they must not be parsed as this one's. */
	xmlStopParser(s->xml);
}

/* A DOCTYPE is never legitimate in EWS, and refusing it here means no entity is declared. */
static void on_doctype(void *ctx, const xmlChar *name, const xmlChar *external_id,
                       const xmlChar *system_id)
{
	struct ews_stream *s = ctx;

	record_failure(s, "document type declaration refused");
	xmlStopParser(s->xml);
}

/* Warnings (say, a relative namespace URI) are harmless; errors mean not well-formed. */
static void on_error(void *ctx, xmlErrorPtr error)
{
	struct ews_stream *s = ctx;

	if (error == NULL || error->level < XML_ERR_ERROR)
		return;
	record_failure(s, error->message);
}

/* Readies a parser for a document that starts at offset at. */
static void doc_begin(struct ews_stream *s, size_t at)
{
	if (s->xml == NULL) {
		xmlSAXHandler sax = {
			.initialized = XML_SAX2_MAGIC,
			.startElementNs = on_start,
			.endElementNs = on_end,
			.internalSubset = on_doctype,
			.serror = on_error,
		};

		/* No initial bytes: given some, libxml2 would guess an encoding from them. */
		s->xml = xmlCreatePushParserCtxt(&sax, s, NULL, 0, NULL);
		if (s->xml == NULL) {
			fputs("calsync: out of memory (libxml2 parser)\n", stderr);
			abort();
		}
	} else if (xmlCtxtResetPush(s->xml, NULL, 0, NULL, NULL) != 0) {
		fputs("calsync: out of memory (libxml2 parser reset)\n", stderr);
		abort();
	}
	/* Without XML_PARSE_NOENT, DTDLOAD and HUGE: no entity substitution, no external DTD,
	 * and libxml2's own limits on text sizes stay on. */
	(void)xmlCtxtUseOptions(s->xml, XML_PARSE_NONET | XML_PARSE_IGNORE_ENC);
	/* Said outright, because a new context would otherwise guess the encoding from the first
	 * four bytes: "<\0?\0" would switch it to UTF-16 and "<\0\0\0" to UCS-4, and converted
	 * input breaks the byte counts this file relies on. */
	if (xmlSwitchEncoding(s->xml, XML_CHAR_ENCODING_UTF8) != 0) {
		fputs("calsync: libxml2 refused UTF-8\n", stderr);
		abort();
	}
	s->state = STREAM_IN_DOC;
	s->doc_start = at;
	s->pushed = at;
	s->depth = 0;
	s->root_seen = false;
	s->root_known = false;
	s->root_done = false;
	s->xml_failed = false;
	s->held_len = 0;
	s->held_start = at;
}

/* Drops held bytes before offset keep; an empty hold then starts at keep. */
static void hold_drop_before(struct ews_stream *s, size_t keep)
{
	size_t drop;

	if (keep <= s->held_start)
		return;
	drop = min_size(keep - s->held_start, s->held_len);
	if (drop == s->held_len) {
		s->held_len = 0;
		s->held_start = keep;
		return;
	}
	memmove(s->held, s->held + drop, s->held_len - drop);
	s->held_len -= drop;
	s->held_start += drop;
}

static void hold_append(struct ews_stream *s, const char *p, size_t n)
{
	size_t need = s->held_len + n;

	/* The size limit is enforced before bytes are pushed, so the hold never passes it. */
	assert(need <= s->max);
	if (need > s->held_cap) {
		size_t cap = s->held_cap < 4096 ? 4096 : s->held_cap;

		while (cap < need)
			cap *= 2;
		cap = min_size(cap, s->max);
		s->held = xrealloc(s->held, cap);
		s->held_cap = cap;
	}
	if (n > 0)
		memcpy(s->held + s->held_len, p, n);
	s->held_len = need;
}

/* The byte at offset pos of the current document: in data, or held from an earlier feed. */
static char doc_byte(const struct ews_stream *s, const char *data, size_t pos)
{
	if (pos >= s->offset)
		return data[pos - s->offset];
	assert(pos >= s->held_start && pos - s->held_start < s->held_len);
	return s->held[pos - s->held_start];
}

/* Between documents: skips whitespace and BOMs from data[*io_i] and starts the next document. */
static int skip_between(struct ews_stream *s, const char *data, size_t len, size_t *io_i,
                        struct err *err)
{
	static const unsigned char bom[3] = {0xef, 0xbb, 0xbf};
	size_t i;

	for (i = *io_i; i < len; i++) {
		unsigned char c = (unsigned char)data[i];

		if (s->bom_len > 0) {
			if (c != bom[s->bom_len])
				return err_set(err, -EPROTO, "broken byte-order mark at byte %zu",
				               s->bom_start);
			s->bom_len = (s->bom_len + 1) % 3;
			continue;
		}
		if (c == bom[0]) {
			s->bom_len = 1;
			s->bom_start = s->offset + i;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		/* Every document starts with '<' (a declaration, comment, PI or the root). libxml2
		 * would say "Document is empty" here, which misleads. */
		if (c != '<')
			return err_set(err, -EPROTO,
			               "byte %zu (0x%02x) between envelopes is not '<'",
			               s->offset + i, (unsigned)c);
		doc_begin(s, s->offset + i);
		break;
	}
	*io_i = i;
	return 0;
}

/* The root's start tag was reported at root_mark: its '<' is the last one before that. */
static int find_root_start(struct ews_stream *s, const char *data, struct err *err)
{
	size_t pos = s->root_mark;

	while (pos > s->doc_start) {
		pos--;
		if (doc_byte(s, data, pos) == '<') {
			s->root_start = pos;
			s->root_known = true;
			return 0;
		}
	}
	return err_set(err, -EPROTO, "document at byte %zu: no '<' before its root element",
	               s->doc_start);
}

/* Hands out the finished envelope; the bytes after it (data from *io_i on) are left to parse. */
static int deliver(struct ews_stream *s, const char *data, size_t slice_start, size_t *io_i,
                   struct err *err)
{
	size_t end = s->root_end;
	size_t n;
	const char *xml;
	int rc;

	if (end <= slice_start || end > s->pushed || doc_byte(s, data, end - 1) != '>')
		return err_set(err, -EPROTO,
		               "envelope at byte %zu: parser reported its end at byte %zu, "
		               "outside the bytes just read",
		               s->root_start, end);
	n = end - s->root_start;
	assert(n <= s->max);
	if (s->root_start >= s->offset) {
		/* The whole envelope arrived in this feed: no copy. */
		xml = data + (s->root_start - s->offset);
	} else {
		hold_drop_before(s, s->root_start);
		hold_append(s, data, end - s->offset);
		xml = s->held;
	}
	s->state = STREAM_BETWEEN;
	*io_i = end - s->offset;
	s->in_callback = true;
	rc = s->fn(s->ctx, xml, n, s->root_start);
	s->in_callback = false;
	s->held_len = 0;
	if (s->held_cap > HELD_KEEP) {
		free(s->held);
		s->held = NULL;
		s->held_cap = 0;
	}
	if (xmlDictGetUsage(s->xml->dict) > DICT_MAX) {
		xmlFreeParserCtxt(s->xml);
		s->xml = NULL;
	}
	if (rc != 0) {
		assert(rc < 0);
		return err_set(err, rc, "envelope at byte %zu: the handler failed: %s",
		               s->root_end - n, strerror(-rc));
	}
	return 0;
}

/* Inside a document: pushes the next slice of data from *io_i on. */
static int push_slice(struct ews_stream *s, const char *data, size_t len, size_t *io_i,
                      struct err *err)
{
	size_t slice_start = s->pushed;
	size_t base = s->root_known ? s->root_start : s->doc_start;
	size_t used = s->pushed - base;
	size_t slice;
	size_t n;
	int rc;

	assert(s->pushed == s->offset + *io_i);
	/* Until the root's start tag is read, whatever precedes it counts against the limit
	 * too, so that nothing is ever held without bound. */
	if (used >= s->max)
		return err_set(err, -EMSGSIZE, "envelope at byte %zu is larger than %zu bytes",
		               base, s->max);
	/* The slice doubles with what this document has had, within [SLICE_MIN, SLICE_MAX]. */
	slice = s->pushed - s->doc_start;
	slice = slice < SLICE_MIN ? SLICE_MIN : min_size(slice, SLICE_MAX);
	n = min_size(min_size(len - *io_i, s->max - used), slice);
	/* Counted before the call: the callbacks check positions against it. */
	s->pushed += n;
	rc = xmlParseChunk(s->xml, data + *io_i, (int)n, 0);
	*io_i += n;
	if (s->xml_failed)
		return err_set(err, -EPROTO,
		               "not well-formed XML at byte %zu (document at byte %zu): %s",
		               s->xml_pos, s->doc_start, s->xml_msg);
	if (rc != 0 && !s->root_done)
		return err_set(err, -EPROTO,
		               "not well-formed XML in the document at byte %zu (libxml2 error %d)",
		               s->doc_start, rc);
	if (s->root_seen && !s->root_known) {
		rc = find_root_start(s, data, err);
		if (rc != 0)
			return rc;
	}
	if (s->root_done)
		return deliver(s, data, slice_start, io_i, err);
	return 0;
}

struct ews_stream *ews_stream_new(size_t max_envelope, ews_envelope_fn *fn, void *ctx)
{
	struct ews_stream *s = xcalloc(1, sizeof(*s));

	assert(fn != NULL);
	/* Idempotent; libxml2 wants it before first use. */
	xmlInitParser();
	s->fn = fn;
	s->ctx = ctx;
	s->max = max_envelope;
	s->state = STREAM_BETWEEN;
	return s;
}

/* Marks the stream dead with e's error and hands it to the caller. */
static int die(struct ews_stream *s, const struct err *e, struct err *err)
{
	s->dead = e->code;
	s->dead_err = *e;
	if (err != NULL)
		*err = *e;
	return e->code;
}

/* A dead stream answers every call with the error that killed it. */
static int replay(const struct ews_stream *s, struct err *err)
{
	if (err != NULL)
		*err = s->dead_err;
	return s->dead;
}

int ews_stream_feed(struct ews_stream *s, const char *data, size_t len, struct err *err)
{
	struct err e = {0};
	size_t i = 0;
	int rc;

	assert(!s->in_callback);
	if (s->dead != 0)
		return replay(s, err);
	if (len == 0)
		return 0;
	while (i < len) {
		if (s->state == STREAM_BETWEEN)
			rc = skip_between(s, data, len, &i, &e);
		else
			rc = push_slice(s, data, len, &i, &e);
		if (rc != 0)
			return die(s, &e, err);
	}
	if (s->state == STREAM_IN_DOC) {
		/* Keep what the document still needs from this feed: from its root's '<' once
		 * that is known, else from its first byte. */
		size_t keep = s->root_known ? s->root_start : s->doc_start;
		size_t from = keep > s->offset ? keep - s->offset : 0;

		hold_drop_before(s, keep);
		hold_append(s, data + from, len - from);
	}
	s->offset += len;
	return 0;
}

int ews_stream_finish(struct ews_stream *s, struct err *err)
{
	struct err e = {0};

	assert(!s->in_callback);
	if (s->dead != 0)
		return replay(s, err);
	if (s->state == STREAM_IN_DOC) {
		(void)err_set(&e, -EPROTO,
		              "the body ended inside the envelope that began at byte %zu",
		              s->root_known ? s->root_start : s->doc_start);
		return die(s, &e, err);
	}
	if (s->bom_len > 0) {
		(void)err_set(&e, -EPROTO, "the body ended inside a byte-order mark at byte %zu",
		              s->bom_start);
		return die(s, &e, err);
	}
	return 0;
}

size_t ews_stream_offset(const struct ews_stream *s)
{
	return s->offset;
}

void ews_stream_free(struct ews_stream *s)
{
	if (s == NULL)
		return;
	assert(!s->in_callback);
	if (s->xml != NULL)
		xmlFreeParserCtxt(s->xml);
	free(s->held);
	free(s);
}
