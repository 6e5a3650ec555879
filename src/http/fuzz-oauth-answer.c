/* SPDX-License-Identifier: MIT */
/*
 * fuzz-oauth-answer.c: libFuzzer target for the token endpoint's answer parser. The first byte
 * chooses the HTTP status, the rest is the body. Whatever it returns must be one of its
 * documented results; a token must be a bearer token (no byte that could end a header), and a
 * message must have no control character.
 */
#include <errno.h>
#include <stdint.h>

#include "base/err.h"
#include "http/oauth-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = {200, 200, 200, 200, 400, 401, 403, 404,
	                                408, 429, 500, 503, 302, 0,   204, 999};
	struct oauth_answer a = {0};
	struct err err = {0};
	long status;
	int rc;

	if (size < 1 || size > 2 * OAUTH_MAX_ANSWER)
		return 0;
	status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
	rc = oauth_answer_parse(status, (const char *)data + 1, size - 1, &a, &err);
	if (rc == 0) {
		size_t n = strlen(a.access_token);
		if (status != 200 || n == 0 || n > OAUTH_MAX_TOKEN || a.expires_in_sec < 1 ||
		    a.expires_in_sec > OAUTH_MAX_LIFETIME_SEC)
			abort();
		for (size_t i = 0; i < n; i++) {
			if (a.access_token[i] <= ' ' || a.access_token[i] > '~')
				abort();
		}
		oauth_answer_clear(&a);
		return 0;
	}
	if ((rc != -EACCES && rc != -EAGAIN && rc != -EPROTO) || err.code != rc ||
	    err.msg[0] == '\0' || a.access_token != NULL)
		abort();
	for (const char *p = err.msg; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			abort();
	}
	return 0;
}
