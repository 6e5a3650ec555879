/* SPDX-License-Identifier: MIT */
/* fuzz-config.c: libFuzzer target for cfg_parse(), offline (no files, no environment). */
#include <errno.h>
#include <stdint.h>

#include "base/err.h"
#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_warnings w = {0};
	struct err err = {0};
	struct cfg *cfg = NULL;
	int rc;

	/* A little past the limit, so that the size check is exercised too. */
	if (size > CFG_MAX_FILE + 16)
		return 0;
	rc = cfg_parse((const char *)data, size, &(struct cfg_parse_opts){.offline = true}, &cfg,
	               &w, &err);
	/* Failures name a reason; successes return a config. */
	if ((rc != 0 && (err.msg[0] == '\0' || cfg != NULL)) || (rc == 0 && cfg == NULL))
		abort();
	if (w.n > CFG_MAX_WARNINGS)
		abort();
	cfg_free(cfg);
	cfg_warnings_clear(&w);
	return 0;
}
