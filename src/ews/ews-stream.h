/* SPDX-License-Identifier: MIT */
/*
 * ews-stream.h: cuts a GetStreamingEvents response body into whole SOAP envelopes, with a
 * libxml2 push parser that tracks element depth. Works whatever the root's prefix (Exchange
 * 2013+ writes an unprefixed <Envelope xmlns="...soap/envelope/">), whatever lies between
 * documents (whitespace, a BOM, an XML declaration) and wherever the input is split. Pure:
 * no I/O; never loads DTDs or external entities.
 */
#pragma once

#include <stddef.h>

#include "base/compat.h"

struct err;
struct ews_stream;

/*
 * Called once per complete envelope, in order. xml/len are exactly the envelope's bytes (from
 * its '<' to the end of its closing tag), valid only during the call. offset is the byte offset
 * of the envelope's first byte in the whole input. Returns 0 to go on, or a negative errno to
 * stop: ews_stream_feed() then returns that value and the stream is dead. It must not feed,
 * finish or free its own stream (to stop, it returns an error).
 */
typedef int ews_envelope_fn(void *ctx, const char *xml, size_t len, size_t offset);

/* A new framer; envelopes larger than max_envelope bytes are an error. Never NULL. */
struct ews_stream *ews_stream_new(size_t max_envelope, ews_envelope_fn *fn, void *ctx);

/*
 * Feeds the next len bytes of the body. 0, or -EMSGSIZE (an envelope over max_envelope),
 * -EPROTO (not well-formed XML; err names the byte offset), or the callback's error. After an
 * error the stream is dead: later calls return the same error.
 */
ATTR_NODISCARD int ews_stream_feed(struct ews_stream *s, const char *data, size_t len,
                                   struct err *err);

/* The body has ended. 0 when it ended between envelopes, -EPROTO when inside one (a
 * connection cut mid-message: err names the offset where that envelope began). */
ATTR_NODISCARD int ews_stream_finish(struct ews_stream *s, struct err *err);

/* Bytes fed so far. */
size_t ews_stream_offset(const struct ews_stream *s);

void ews_stream_free(struct ews_stream *s); /* NULL-safe */
