/* SPDX-License-Identifier: MIT */
/*
 * fuzz-api-route.c: libFuzzer target for the HTTP API's request pieces: api_route() on a raw
 * path, api_url_decode() and the bearer check. Whatever routes must carry a decoded address
 * that re-encodes and decodes to itself.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "api/api-route.h"
#include "base/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = {"GET", "HEAD", "POST", "DELETE", "PUT"};
	struct api_route r = {0};
	struct err err = {0};
	char enc[3 * API_MAX_SMTP + 1], dec[API_MAX_SMTP + 1], text[API_MAX_PATH + 2];
	size_t len;
	int rc;

	/* A little past the limit, so that the length check is exercised too. */
	if (size < 1 || size > API_MAX_PATH + 1)
		return 0;
	rc = api_route(methods[data[0] % 5], (const char *)data + 1, size - 1, &r, &err);
	if (rc != 0 && rc != -ENOENT && rc != -EINVAL && rc != -EMSGSIZE && rc != -EOPNOTSUPP)
		abort();
	if (rc == -EOPNOTSUPP && r.allow == NULL)
		abort();
	if (rc == 0 && r.smtp[0] != '\0') {
		if (api_url_encode(r.smtp, enc, sizeof(enc)) != 0 ||
		    api_url_decode(enc, strlen(enc), dec, sizeof(dec), &len, NULL) != 0 ||
		    strcmp(dec, r.smtp) != 0)
			abort();
	}
	(void)api_url_decode((const char *)data, size, dec, sizeof(dec), &len, NULL);
	memcpy(text, data, size);
	text[size] = '\0';
	(void)api_bearer_ok("token", 5, text);
	(void)api_smtp_check(text, NULL);
	return 0;
}
