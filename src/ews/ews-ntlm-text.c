/* SPDX-License-Identifier: MIT */
/*
 * ews-ntlm-text.c: the NTLM module's text, UTF-8 to UTF-16LE, with the uppercasing NTOWFv2
 * needs (docs/ntlm.md). Pure.
 */
#include <errno.h>
#include <stdbool.h>

#include <openssl/crypto.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "ews/ews-ntlm-int.h"

/* Decodes the UTF-8 sequence at s (n bytes left): its length, or 0 when it is invalid. */
static size_t utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
	uint32_t c = s[0];
	size_t len;
	uint32_t min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		min = 0x80;
		c &= 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		min = 0x800;
		c &= 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		min = 0x10000;
		c &= 0x07;
	} else {
		return 0; /* a continuation byte, an overlong 2-byte lead, or beyond U+10FFFF */
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/*
 * Uppercase for NTOWFv2, one UTF-16 unit to one, as Windows does (it never lengthens a name).
 * This is Unicode's simple uppercase mapping for the blocks where a user name is likely to have
 * letters: ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic. Elsewhere characters are kept,
 * and a few ambiguous ones here are too (U+00B5, U+0131, U+017F), so such a user name must be
 * given in uppercase to authenticate (docs/ntlm.md).
 */
static uint32_t upcase(uint32_t c)
{
	if (c >= 'a' && c <= 'z')
		return c - 0x20;
	if (c >= 0xe0 && c <= 0xfe && c != 0xf7)
		return c - 0x20;
	if (c == 0xff)
		return 0x178;
	/* Latin Extended-A: pairs, uppercase first, except where the pairs start on odd. */
	if ((c >= 0x100 && c <= 0x12f) || (c >= 0x132 && c <= 0x137) || (c >= 0x14a && c <= 0x177))
		return (c & 1) ? c - 1 : c;
	if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
		return (c & 1) ? c : c - 1;
	/* Greek. */
	if (c == 0x3ac)
		return 0x386;
	if (c >= 0x3ad && c <= 0x3af)
		return c - 0x25;
	if (c == 0x3c2)
		return 0x3a3;
	if (c >= 0x3b1 && c <= 0x3cb)
		return c - 0x20;
	if (c == 0x3cc)
		return 0x38c;
	if (c == 0x3cd || c == 0x3ce)
		return c - 0x3f;
	/* Cyrillic. */
	if (c >= 0x430 && c <= 0x44f)
		return c - 0x20;
	if (c >= 0x450 && c <= 0x45f)
		return c - 0x50;
	if ((c >= 0x460 && c <= 0x481) || (c >= 0x48a && c <= 0x4bf) || (c >= 0x4d0 && c <= 0x52f))
		return (c & 1) ? c - 1 : c;
	if (c >= 0x4c1 && c <= 0x4ce)
		return (c & 1) ? c : c - 1;
	if (c == 0x4cf)
		return 0x4c0;
	return c;
}

int ews_ntlm_utf16le(const char *s, size_t len, bool upper, size_t max_units, const char *what,
                     uint8_t **out, size_t *out_len, struct err *err)
{
	const uint8_t *u = (const uint8_t *)s;
	/* Each UTF-8 byte gives at most one code unit (a 4-byte sequence gives two). */
	uint8_t *buf = xmalloc(len * 2 + 1);
	size_t units = 0;

	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = utf8_decode(u + i, len - i, &cp);

		if (n == 0) {
			OPENSSL_cleanse(buf, len * 2 + 1);
			free(buf);
			return err_set(err, -EINVAL, "NTLM: the %s is not valid UTF-8", what);
		}
		i += n;
		if (cp >= 0x10000) {
			cp -= 0x10000;
			ews_ntlm_put16(buf + 2 * units++, 0xd800 | cp >> 10);
			ews_ntlm_put16(buf + 2 * units++, 0xdc00 | (cp & 0x3ff));
		} else {
			ews_ntlm_put16(buf + 2 * units++, upper ? upcase(cp) : cp);
		}
	}
	if (units > max_units) {
		OPENSSL_cleanse(buf, len * 2 + 1);
		free(buf);
		return err_set(err, -EINVAL, "NTLM: the %s is longer than %zu UTF-16 code units",
		               what, max_units);
	}
	*out = buf;
	*out_len = 2 * units;
	return 0;
}
