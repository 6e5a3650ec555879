/* SPDX-License-Identifier: MIT */
/* err.c: formatting of struct err. */
#include "base/err.h"

#include <stdarg.h>

int err_set(struct err *err, int code, const char *fmt, ...)
{
	char tmp[sizeof(err->msg)];
	va_list ap;

	if (err == NULL)
		return code;
	/* Format into a copy first: the arguments may alias err->msg (see err.h). */
	va_start(ap, fmt);
	(void)vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	memcpy(err->msg, tmp, strlen(tmp) + 1);
	err->code = code;
	return code;
}
