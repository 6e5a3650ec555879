/* SPDX-License-Identifier: MIT */
/* url.c: URLs fit to show (url.h). */
#include "base/url.h"

#include <string.h>

void url_redact(const char *url, char *out, size_t size)
{
	const char *scheme_end = strstr(url, "://");
	const char *host = scheme_end != NULL ? scheme_end + 3 : url;
	const char *auth_end = host + strcspn(host, "/?#");
	const char *at = NULL, *rest, *end;
	size_t o = 0, n;

	if (size == 0)
		return;
	for (const char *p = host; p < auth_end; p++) {
		if (*p == '@')
			at = p;
	}
	rest = at != NULL ? at + 1 : host;
	end = rest + strcspn(rest, "?#");
	/* scheme:// then the host and path without the user info. */
	n = (size_t)(host - url);
	if (n > size - 1)
		n = size - 1;
	memcpy(out, url, n);
	o = n;
	n = (size_t)(end - rest);
	if (n > size - 1 - o)
		n = size - 1 - o;
	memcpy(out + o, rest, n);
	o += n;
	/* Never end inside a UTF-8 sequence: drop continuation bytes and their lead. */
	if (o > 0 && ((unsigned char)out[o - 1] & 0x80) != 0) {
		size_t k = o;

		while (k > 0 && ((unsigned char)out[k - 1] & 0xc0) == 0x80)
			k--;
		if (k > 0 && ((unsigned char)out[k - 1] & 0xc0) == 0xc0) {
			unsigned char lead = (unsigned char)out[k - 1];
			size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;

			if (o - (k - 1) < want)
				o = k - 1;
		}
	}
	out[o] = '\0';
}
