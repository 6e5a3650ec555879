/* SPDX-License-Identifier: MIT */
/*
 * fuzz-http-date.c: libFuzzer target for the HTTP-date parser and Retry-After. Whatever parses
 * must format back to an IMF-fixdate that parses to the same instant; Retry-After stays in its
 * range.
 */
#include <errno.h>
#include <stdint.h>

#include "http/http-date.h"

#define NOW_UTC INT64_C(1767225600) /* 2026-01-01 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[HTTP_DATE_SIZE];
	int64_t utc, again, ms;

	if (size > 128)
		return 0;
	ms = http_retry_after_ms((const char *)data, size, NOW_UTC * 1000);
	if (ms < -1 || ms > HTTP_MAX_RETRY_AFTER_MS)
		abort();
	if (http_date_parse((const char *)data, size, NOW_UTC, &utc) != 0)
		return 0;
	http_date_format(utc, text);
	if (http_date_parse(text, strlen(text), NOW_UTC, &again) != 0 || again != utc)
		abort();
	return 0;
}
