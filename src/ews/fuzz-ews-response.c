/* SPDX-License-Identifier: MIT */
/* fuzz-ews-response.c: libFuzzer target for ews_response_parse(); it fails cleanly or parses. */
#include <errno.h>
#include <stdint.h>

#include "base/cs-limits.h"
#include "base/err.h"
#include "ews/ews-response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ews_response r;
	struct err err = {0};
	int rc;

	/* Past the limit only the length check runs; larger inputs teach the fuzzer nothing. */
	if (size > EWS_MAX_RESPONSE)
		return 0;
	rc = ews_response_parse((const char *)data, size, &r, &err);
	if (rc != 0) {
		/* The contract: a known error, a message, and a cleared result. */
		if ((rc != -EPROTO && rc != -EMSGSIZE) || err.code != rc || err.msg[0] == '\0' ||
		    r.messages != NULL || r.users != NULL || r.operation != NULL)
			abort();
		return 0;
	}
	/* Exactly one of: a fault, an EWS operation, an Autodiscover answer. */
	if (r.is_fault == (r.operation != NULL))
		abort();
	ews_response_clear(&r);
	return 0;
}
