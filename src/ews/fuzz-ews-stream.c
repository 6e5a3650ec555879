/* SPDX-License-Identifier: MIT */
/*
 * fuzz-ews-stream.c: libFuzzer target for the stream framer. The first two bytes choose a split
 * point, the rest is a response body. Fed whole and in two parts it must give the same result
 * and the same envelopes, each exactly the input's bytes at its offset.
 */
#include <errno.h>
#include <stdint.h>

#include "base/err.h"
#include "ews/ews-stream.h"

#define FUZZ_MAX_INPUT    (64u << 10)
#define FUZZ_MAX_ENVELOPE 4096u /* small, so that the size limit is reached too */

struct run {
	const char *in;
	size_t size;
	size_t n;
	uint64_t digest; /* of every envelope's (offset, len), in order */
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check(void *ctx, const char *xml, size_t len, size_t offset)
{
	struct run *r = ctx;

	if (len < 4 || len > FUZZ_MAX_ENVELOPE || offset > r->size || len > r->size - offset ||
	    memcmp(xml, r->in + offset, len) != 0 || xml[0] != '<' || xml[len - 1] != '>')
		abort();
	r->n++;
	r->digest = (r->digest ^ offset) * 0x100000001b3u;
	r->digest = (r->digest ^ len) * 0x100000001b3u;
	return 0;
}

static int feed(struct run *r, size_t cut)
{
	struct err err = {0};
	struct ews_stream *s = ews_stream_new(FUZZ_MAX_ENVELOPE, check, r);
	int rc = ews_stream_feed(s, r->in, cut, &err);

	if (rc == 0)
		rc = ews_stream_feed(s, r->in + cut, r->size - cut, &err);
	if (rc == 0)
		rc = ews_stream_finish(s, &err);
	if (rc != 0 && (rc != err.code || err.msg[0] == '\0' || (rc != -EPROTO && rc != -EMSGSIZE)))
		abort();
	ews_stream_free(s);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run whole;
	struct run split;

	if (size < 2 || size > FUZZ_MAX_INPUT)
		return 0;
	whole = (struct run){.in = (const char *)data + 2, .size = size - 2};
	split = whole;
	if (feed(&whole, whole.size) != feed(&split, ((size_t)data[0] << 8 | data[1]) % (size - 1)))
		abort();
	if (whole.n != split.n || whole.digest != split.digest)
		abort();
	return 0;
}
