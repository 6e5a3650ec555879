/* SPDX-License-Identifier: MIT */
/*
 * ews-ntlm-challenge.c: the parser of the server's CHALLENGE (MS-NLMP 2.2.1.2), which trusts
 * nothing, and the strict base64 it arrives in. Pure.
 */
#include <errno.h>
#include <stdbool.h>

#include <openssl/evp.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "ews/ews-ntlm-int.h"
#include "ews/ews-ntlm.h"

/* The fixed part of a CHALLENGE: up to TargetInfoFields (48), and with the Version (56). */
#define CHALLENGE_MIN_LEN     48u
#define CHALLENGE_VERSION_END 56u

/*
 * A (Len, MaxLen, Offset) field at hdr of a message of len bytes whose payload may start at
 * payload_min. MaxLen is ignored, as receivers may. The bytes must lie inside the message and
 * outside the header; an empty field's offset must still be inside the message.
 */
static int challenge_field(const uint8_t *msg, size_t len, size_t at, size_t payload_min,
                           const char *name, const uint8_t **out, size_t *out_len, struct err *err)
{
	size_t flen = ews_ntlm_get16(msg + at);
	size_t off = ews_ntlm_get32(msg + at + 4);

	if (off > len)
		return err_set(err, -EPROTO,
		               "NTLM CHALLENGE: %s offset %zu is past the end (%zu bytes)", name,
		               off, len);
	if (flen > len - off)
		return err_set(
			err, -EPROTO,
			"NTLM CHALLENGE: %s (%zu bytes at offset %zu) runs past the end (%zu bytes)",
			name, flen, off, len);
	if (flen > 0 && off < payload_min)
		return err_set(err, -EPROTO,
		               "NTLM CHALLENGE: %s at offset %zu overlaps the %zu-byte header",
		               name, off, payload_min);
	*out = msg + off;
	*out_len = flen;
	return 0;
}

static const char *av_name(uint32_t id)
{
	static const char *const names[] = {
		"MsvAvEOL",
		"MsvAvNbComputerName",
		"MsvAvNbDomainName",
		"MsvAvDnsComputerName",
		"MsvAvDnsDomainName",
		"MsvAvDnsTreeName",
		"MsvAvFlags",
		"MsvAvTimestamp",
		"MsvAvSingleHost",
		"MsvAvTargetName",
		"MsvAvChannelBindings",
	};

	return id < sizeof(names) / sizeof(names[0]) ? names[id] : "AV pair";
}

/* Walks the TargetInfo AV pairs, filling the AV fields of c. */
static int parse_av_pairs(const uint8_t *av, size_t len, struct ews_ntlm_challenge *c,
                          struct err *err)
{
	bool seen_flags = false;
	size_t pos = 0;

	c->n_av_pairs = 0;
	c->has_timestamp = false;
	c->timestamp = 0;
	c->av_flags = 0;
	for (;;) {
		uint32_t id;
		size_t vlen;
		const uint8_t *v;

		if (len - pos < 4)
			return err_set(
				err, -EPROTO,
				"NTLM CHALLENGE: TargetInfo ends at byte %zu without MsvAvEOL",
				pos);
		id = ews_ntlm_get16(av + pos);
		vlen = ews_ntlm_get16(av + pos + 2);
		v = av + pos + 4;
		if (vlen > len - pos - 4)
			return err_set(
				err, -EPROTO,
				"NTLM CHALLENGE: TargetInfo %s (id %u) at byte %zu claims %zu bytes, "
				"%zu are left",
				av_name(id), (unsigned)id, pos, vlen, len - pos - 4);
		pos += 4 + vlen;
		if (id == EWS_NTLM_AV_EOL) {
			if (vlen != 0)
				return err_set(
					err, -EPROTO,
					"NTLM CHALLENGE: TargetInfo MsvAvEOL has length %zu, not 0",
					vlen);
			if (pos != len)
				return err_set(
					err, -EPROTO,
					"NTLM CHALLENGE: TargetInfo has %zu bytes after MsvAvEOL",
					len - pos);
			return 0;
		}
		c->n_av_pairs++;
		switch (id) {
		case EWS_NTLM_AV_NB_COMPUTER:
		case EWS_NTLM_AV_NB_DOMAIN:
		case EWS_NTLM_AV_DNS_COMPUTER:
		case EWS_NTLM_AV_DNS_DOMAIN:
		case EWS_NTLM_AV_DNS_TREE:
		case EWS_NTLM_AV_TARGET_NAME:
			if (vlen % 2 != 0)
				return err_set(
					err, -EPROTO,
					"NTLM CHALLENGE: TargetInfo %s has odd length %zu for UTF-16",
					av_name(id), vlen);
			break;
		case EWS_NTLM_AV_FLAGS:
			if (vlen != 4 || seen_flags)
				return err_set(err, -EPROTO,
				               "NTLM CHALLENGE: TargetInfo MsvAvFlags is %s",
				               seen_flags ? "repeated" : "not 4 bytes long");
			seen_flags = true;
			c->av_flags = ews_ntlm_get32(v);
			break;
		case EWS_NTLM_AV_TIMESTAMP:
			if (vlen != 8 || c->has_timestamp)
				return err_set(err, -EPROTO,
				               "NTLM CHALLENGE: TargetInfo MsvAvTimestamp is %s",
				               c->has_timestamp ? "repeated" : "not 8 bytes long");
			c->has_timestamp = true;
			c->timestamp = ews_ntlm_get64(v);
			break;
		default:
			break;
		}
	}
}

int ews_ntlm_parse_challenge(const uint8_t *msg, size_t len, struct ews_ntlm_challenge *out,
                             struct err *err)
{
	struct ews_ntlm_challenge c = {0};
	size_t header;
	int rc;

	if (len > EWS_NTLM_MAX_MESSAGE)
		return err_set(err, -EPROTO, "NTLM CHALLENGE: %zu bytes, limit %u", len,
		               EWS_NTLM_MAX_MESSAGE);
	if (len < 12 || memcmp(msg, EWS_NTLM_SIGNATURE, 8) != 0)
		return err_set(err, -EPROTO, "NTLM CHALLENGE: no NTLMSSP signature");
	if (ews_ntlm_get32(msg + 8) != 2)
		return err_set(err, -EPROTO, "NTLM CHALLENGE: message type %u, not 2",
		               (unsigned)ews_ntlm_get32(msg + 8));
	if (len < CHALLENGE_MIN_LEN)
		return err_set(err, -EPROTO,
		               "NTLM CHALLENGE: %zu bytes, shorter than its %u-byte header", len,
		               CHALLENGE_MIN_LEN);
	c.flags = ews_ntlm_get32(msg + 20);
	memcpy(c.server_challenge, msg + 24, 8);
	/* With NEGOTIATE_VERSION the 8-byte Version follows the fields and the payload cannot
	 * start before it. */
	header = CHALLENGE_MIN_LEN;
	if (c.flags & EWS_NTLM_NEGOTIATE_VERSION) {
		header = CHALLENGE_VERSION_END;
		if (len < header)
			return err_set(
				err, -EPROTO,
				"NTLM CHALLENGE: %zu bytes, but NEGOTIATE_VERSION needs a %u-byte "
				"header",
				len, CHALLENGE_VERSION_END);
	}
	if (!(c.flags & EWS_NTLM_NEGOTIATE_UNICODE))
		return err_set(err, -EPROTO,
		               "NTLM CHALLENGE: the server did not accept UNICODE (flags 0x%08x)",
		               (unsigned)c.flags);
	rc = challenge_field(msg, len, 12, header, "TargetName", &c.target_name, &c.target_name_len,
	                     err);
	if (rc < 0)
		return rc;
	rc = challenge_field(msg, len, 40, header, "TargetInfo", &c.target_info, &c.target_info_len,
	                     err);
	if (rc < 0)
		return rc;
	if (c.target_info_len == 0)
		return err_set(
			err, -EPROTO,
			"NTLM CHALLENGE: no TargetInfo, which NTLMv2 with channel binding needs");
	rc = parse_av_pairs(c.target_info, c.target_info_len, &c, err);
	if (rc < 0)
		return rc;
	*out = c;
	return 0;
}

/* ---- base64 ---- */

static bool b64_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '+' || ch == '/';
}

int ews_ntlm_base64_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *out_len,
                           struct err *err)
{
	size_t pad = 0;
	size_t n;
	int got;

	if (len == 0 || len % 4 != 0)
		return err_set(err, -EPROTO, "NTLM: base64 of %zu characters, not a multiple of 4",
		               len);
	if (s[len - 1] == '=')
		pad = s[len - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < len - pad; i++) {
		if (!b64_char(s[i]))
			return err_set(err, -EPROTO, "NTLM: invalid base64 character at %zu", i);
	}
	n = len / 4 * 3 - pad;
	if (n > cap)
		return err_set(err, -EPROTO, "NTLM: base64 decodes to %zu bytes, limit %zu", n,
		               cap);
	if (len > INT32_MAX)
		return err_set(err, -EPROTO, "NTLM: base64 too long");
	{
		/* EVP_DecodeBlock writes len / 4 * 3 bytes, the padding's zero bytes included. */
		uint8_t *tmp = xmalloc(len / 4 * 3);

		got = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)len);
		if (got == (int)(len / 4 * 3))
			memcpy(out, tmp, n);
		free(tmp);
	}
	if (got != (int)(len / 4 * 3))
		return err_set(err, -EPROTO, "NTLM: invalid base64");
	*out_len = n;
	return 0;
}
