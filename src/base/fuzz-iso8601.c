/* SPDX-License-Identifier: MIT */
/* fuzz-iso8601.c: libFuzzer target for iso8601_parse(); whatever parses must round-trip. */
#include <errno.h>
#include <stdint.h>

#include "base/cs-limits.h"
#include "base/err.h"
#include "base/iso8601.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err err = {0};
	char text[ISO8601_FORMAT_SIZE];
	int64_t utc;
	int64_t again;

	/* A little past the limit, so that the length check is exercised too. */
	if (size > 2 * ISO8601_MAX_LEN)
		return 0;
	if (iso8601_parse((const char *)data, size, &utc, NULL, &err) != 0) {
		if (err.code != -EINVAL || err.msg[0] == '\0')
			abort();
		return 0;
	}
	/* Out of range only near year 0001 or 9999 with a zone offset; nothing to compare then. */
	if (iso8601_format(utc, text, NULL) != 0)
		return 0;
	if (iso8601_parse(text, strlen(text), &again, NULL, NULL) != 0 || again != utc)
		abort();
	return 0;
}
