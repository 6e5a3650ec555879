/* SPDX-License-Identifier: MIT */
/*
 * ews-ntlm.c: NTLMv2 with channel binding (MS-NLMP), for Exchange's Extended Protection. We
 * build NEGOTIATE and AUTHENTICATE and parse CHALLENGE; libcurl carries them in HTTP headers.
 * docs/ntlm.md explains the design; test-ews-ntlm.c checks it against the spec's examples.
 *
 * Choices, each also in docs/ntlm.md:
 * - No key exchange, signing or sealing: HTTP authentication uses none of them, so the
 *   ExportedSessionKey is the SessionBaseKey and no EncryptedRandomSessionKey is sent.
 * - A MIC always, with MsvAvFlags bit 0x2, MsvAvChannelBindings always (zeros without TLS),
 *   MsvAvTargetName when the caller gives an SPN: what Windows sends to an EPA server.
 * - The only secret kept is NTOWFv2 (the password is hashed in ews_ntlm_new and wiped).
 * - OpenSSL runs in a private library context with the default and legacy providers (MD4 is
 *   legacy), so that the global context libcurl uses is never changed.
 */
#include "ews/ews-ntlm.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/xalloc.h"
#include "ews/ews-ntlm-int.h"

/*
 * Longest user name and domain, and password, in UTF-16 code units. Windows caps a UPN at 256
 * characters and a password at 256 (LSA); a DNS domain is at most 255. They also keep the
 * AUTHENTICATE message well under EWS_NTLM_MAX_MESSAGE.
 */
#define NAME_MAX_UNITS     256u
#define PASSWORD_MAX_UNITS 256u

/* Longest SPN (MsvAvTargetName), in UTF-16 code units: "HTTP/" and a DNS name of 255. */
#define SPN_MAX_UNITS 300u

/* The fixed part of a CHALLENGE: up to TargetInfoFields (48), and with the Version (56). */
#define CHALLENGE_MIN_LEN     48u
#define CHALLENGE_VERSION_END 56u

/* FILETIME of the Unix epoch, in 100 ns ticks since 1601-01-01. */
#define FILETIME_UNIX_EPOCH UINT64_C(116444736000000000)
#define FILETIME_PER_SEC    UINT64_C(10000000)

/*
 * The Version structure (MS-NLMP 2.2.2.10) we send: 10.0, build 0, NTLMSSP_REVISION_W2K3 (15).
 * It is "used for debugging purposes only"; build 0 says we are not a Windows release.
 */
static const uint8_t client_version[8] = {10, 0, 0, 0, 0, 0, 0, 15};

static const uint8_t ntlmssp_signature[8] = {'N', 'T', 'L', 'M', 'S', 'S', 'P', '\0'};

struct ews_ntlm {
	uint8_t response_key[16]; /* NTOWFv2: the one secret held, wiped at free */
	uint8_t *user16;          /* UTF-16LE, as sent */
	size_t user16_len;
	uint8_t *domain16; /* UTF-16LE, maybe empty */
	size_t domain16_len;
	uint8_t negotiate[EWS_NTLM_NEGOTIATE_LEN]; /* kept for the MIC */
	bool negotiate_built;
};

/* ---- little-endian fields ---- */

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v & 0xffffu);
	put16(p + 2, v >> 16);
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get16(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t get32(const uint8_t *p)
{
	return get16(p) | get16(p + 2) << 16;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* A security buffer field (Len, MaxLen, Offset) at p. */
static void put_field(uint8_t *p, size_t len, size_t offset)
{
	put16(p, (uint32_t)len);
	put16(p + 2, (uint32_t)len);
	put32(p + 4, (uint32_t)offset);
}

/* ---- OpenSSL, in a private library context ---- */

static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;

/* Written once under crypto_once, read-only afterwards. */
static struct {
	OSSL_LIB_CTX *ctx;
	EVP_MD *md4;
	EVP_MD *md5;
	EVP_MAC *hmac;
	const char *error; /* non-NULL when the context is unusable */
} crypto;

static void crypto_init(void)
{
	ERR_set_mark();
	crypto.ctx = OSSL_LIB_CTX_new();
	if (crypto.ctx == NULL) {
		crypto.error = "OpenSSL: cannot create a library context";
		goto out;
	}
	/* Loaded providers stay loaded for the life of the process, as the context does. */
	if (OSSL_PROVIDER_load(crypto.ctx, "default") == NULL) {
		crypto.error = "OpenSSL: the default provider cannot be loaded";
		goto out;
	}
	if (OSSL_PROVIDER_load(crypto.ctx, "legacy") == NULL) {
		crypto.error =
			"OpenSSL: the legacy provider (MD4, which NTLM needs) cannot be loaded; "
			"is ossl-modules/legacy.so installed?";
		goto out;
	}
	crypto.md4 = EVP_MD_fetch(crypto.ctx, "MD4", NULL);
	crypto.md5 = EVP_MD_fetch(crypto.ctx, "MD5", NULL);
	crypto.hmac = EVP_MAC_fetch(crypto.ctx, "HMAC", NULL);
	if (crypto.md4 == NULL || crypto.md5 == NULL || crypto.hmac == NULL)
		crypto.error = "OpenSSL: MD4, MD5 or HMAC is not available";
out:
	/* Our failures must not linger in the thread's error queue for libcurl to report. */
	ERR_pop_to_mark();
}

static int crypto_ready(struct err *err)
{
	if (pthread_once(&crypto_once, crypto_init) != 0)
		return err_set(err, -ENOTSUP, "NTLM: pthread_once failed");
	if (crypto.error != NULL)
		return err_set(err, -ENOTSUP, "NTLM: %s", crypto.error);
	return 0;
}

struct part {
	const uint8_t *p;
	size_t len;
};

/* HMAC_MD5(key, the concatenation of the n parts). */
static int hmac_md5(const uint8_t *key, size_t key_len, const struct part *parts, size_t n,
                    uint8_t out[16], struct err *err)
{
	static char md5_name[] = "MD5";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, md5_name, 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *ctx;
	size_t out_len = 0;
	bool ok;
	int rc = crypto_ready(err);

	if (rc < 0)
		return rc;
	ERR_set_mark();
	ctx = EVP_MAC_CTX_new(crypto.hmac);
	ok = ctx != NULL && EVP_MAC_init(ctx, key, key_len, params) == 1;
	for (size_t i = 0; ok && i < n; i++)
		ok = EVP_MAC_update(ctx, parts[i].p, parts[i].len) == 1;
	ok = ok && EVP_MAC_final(ctx, out, &out_len, 16) == 1 && out_len == 16;
	EVP_MAC_CTX_free(ctx); /* wipes the key schedule */
	ERR_pop_to_mark();
	if (!ok)
		return err_set(err, -ENOTSUP, "NTLM: HMAC-MD5 failed in OpenSSL");
	return 0;
}

static int digest(const EVP_MD *md, const uint8_t *data, size_t len, uint8_t *out,
                  unsigned int *out_len, struct err *err)
{
	int ok;

	ERR_set_mark();
	ok = EVP_Digest(data, len, out, out_len, md, NULL);
	ERR_pop_to_mark();
	if (ok != 1)
		return err_set(err, -ENOTSUP, "NTLM: %s failed in OpenSSL", EVP_MD_get0_name(md));
	return 0;
}

/* ---- UTF-8 to UTF-16LE ---- */

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
			put16(buf + 2 * units++, 0xd800 | cp >> 10);
			put16(buf + 2 * units++, 0xdc00 | (cp & 0x3ff));
		} else {
			put16(buf + 2 * units++, upper ? upcase(cp) : cp);
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

/* ---- NTOWFv2 and the responses (MS-NLMP 3.3.2) ---- */

/* NTOWFv2 from the UTF-16LE password and UPPER(user) + domain. */
static int ntowfv2_utf16(const uint8_t *pw16, size_t pw16_len, const uint8_t *ud16, size_t ud16_len,
                         uint8_t out[16], struct err *err)
{
	uint8_t nt_hash[EVP_MAX_MD_SIZE];
	unsigned int nt_len = 0;
	int rc = crypto_ready(err);

	if (rc == 0)
		rc = digest(crypto.md4, pw16, pw16_len, nt_hash, &nt_len, err);
	if (rc == 0)
		rc = hmac_md5(nt_hash, 16, &(struct part){ud16, ud16_len}, 1, out, err);
	OPENSSL_cleanse(nt_hash, sizeof(nt_hash));
	return rc;
}

/* NTOWFv2 from UTF-8; user is uppercased here. */
static int ntowfv2_utf8(const char *password, const char *user, const char *domain, uint8_t out[16],
                        struct err *err)
{
	uint8_t *pw16 = NULL;
	uint8_t *u16 = NULL;
	uint8_t *d16 = NULL;
	uint8_t *ud16 = NULL;
	size_t pw16_len = 0;
	size_t u16_len = 0;
	size_t d16_len = 0;
	int rc;

	rc = ews_ntlm_utf16le(password, strlen(password), false, PASSWORD_MAX_UNITS, "password",
	                      &pw16, &pw16_len, err);
	if (rc == 0)
		rc = ews_ntlm_utf16le(user, strlen(user), true, NAME_MAX_UNITS, "user name", &u16,
		                      &u16_len, err);
	if (rc == 0)
		rc = ews_ntlm_utf16le(domain, strlen(domain), false, NAME_MAX_UNITS, "domain", &d16,
		                      &d16_len, err);
	if (rc == 0) {
		ud16 = xmalloc(u16_len + d16_len + 1);
		memcpy(ud16, u16, u16_len);
		memcpy(ud16 + u16_len, d16, d16_len);
		rc = ntowfv2_utf16(pw16, pw16_len, ud16, u16_len + d16_len, out, err);
	}
	if (pw16 != NULL)
		OPENSSL_cleanse(pw16, pw16_len);
	free(pw16);
	free(u16);
	free(d16);
	free(ud16);
	return rc;
}

int ews_ntlm_ntowfv2(const char *password, const char *user, const char *domain, uint8_t out[16],
                     struct err *err)
{
	return ntowfv2_utf8(password, user, domain, out, err);
}

int ews_ntlm_v2_response(const uint8_t key[16], const uint8_t server_challenge[8],
                         const uint8_t client_challenge[8], uint64_t timestamp, const uint8_t *av,
                         size_t av_len, uint8_t *out, size_t out_cap, uint8_t session_base_key[16],
                         struct err *err)
{
	uint8_t *temp = out + 16;
	size_t temp_len = 28 + av_len + 4;
	int rc;

	assert(out_cap >= EWS_NTLM_V2_RESPONSE_LEN(av_len));
	(void)out_cap;
	/* The blob (NTLMv2_CLIENT_CHALLENGE, 2.2.2.7), and 4 zero bytes after the AV pairs, which
	 * 3.3.2's temp has and the 4.2.4 example shows. */
	memset(temp, 0, temp_len);
	temp[0] = 1; /* RespType */
	temp[1] = 1; /* HiRespType */
	put64(temp + 8, timestamp);
	memcpy(temp + 16, client_challenge, 8);
	memcpy(temp + 28, av, av_len);

	/* NTProofStr = HMAC_MD5(key, ServerChallenge + temp) goes before temp. */
	rc = hmac_md5(key, 16, (const struct part[]){{server_challenge, 8}, {temp, temp_len}}, 2,
	              out, err);
	if (rc == 0)
		rc = hmac_md5(key, 16, &(struct part){out, 16}, 1, session_base_key, err);
	return rc;
}

int ews_ntlm_lmv2_response(const uint8_t key[16], const uint8_t server_challenge[8],
                           const uint8_t client_challenge[8], uint8_t out[24], struct err *err)
{
	int rc = hmac_md5(key, 16,
	                  (const struct part[]){{server_challenge, 8}, {client_challenge, 8}}, 2,
	                  out, err);

	if (rc == 0)
		memcpy(out + 16, client_challenge, 8);
	return rc;
}

/* ---- CHALLENGE ---- */

/*
 * A (Len, MaxLen, Offset) field at hdr of a message of len bytes whose payload may start at
 * payload_min. MaxLen is ignored, as receivers may. The bytes must lie inside the message and
 * outside the header; an empty field's offset must still be inside the message.
 */
static int challenge_field(const uint8_t *msg, size_t len, size_t at, size_t payload_min,
                           const char *name, const uint8_t **out, size_t *out_len, struct err *err)
{
	size_t flen = get16(msg + at);
	size_t off = get32(msg + at + 4);

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
		id = get16(av + pos);
		vlen = get16(av + pos + 2);
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
			c->av_flags = get32(v);
			break;
		case EWS_NTLM_AV_TIMESTAMP:
			if (vlen != 8 || c->has_timestamp)
				return err_set(err, -EPROTO,
				               "NTLM CHALLENGE: TargetInfo MsvAvTimestamp is %s",
				               c->has_timestamp ? "repeated" : "not 8 bytes long");
			c->has_timestamp = true;
			c->timestamp = get64(v);
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
	if (len < 12 || memcmp(msg, ntlmssp_signature, 8) != 0)
		return err_set(err, -EPROTO, "NTLM CHALLENGE: no NTLMSSP signature");
	if (get32(msg + 8) != 2)
		return err_set(err, -EPROTO, "NTLM CHALLENGE: message type %u, not 2",
		               (unsigned)get32(msg + 8));
	if (len < CHALLENGE_MIN_LEN)
		return err_set(err, -EPROTO,
		               "NTLM CHALLENGE: %zu bytes, shorter than its %u-byte header", len,
		               CHALLENGE_MIN_LEN);
	c.flags = get32(msg + 20);
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

/* "NTLM " + base64(msg), malloc'd. */
static char *ntlm_header(const uint8_t *msg, size_t len)
{
	size_t b64_len = (len + 2) / 3 * 4;
	char *h = xmalloc(5 + b64_len + 1);

	memcpy(h, "NTLM ", 5);
	(void)EVP_EncodeBlock((unsigned char *)h + 5, msg, (int)len); /* NUL-terminates */
	return h;
}

/*
 * The token of a WWW-Authenticate value "NTLM <base64>": the scheme in any case, spaces or tabs
 * around the token, and trailing CR/LF tolerated.
 */
static int challenge_token(const char *v, const char **tok, size_t *tok_len, struct err *err)
{
	const char *p = v;
	const char *start;

	while (*p == ' ' || *p == '\t')
		p++;
	if (strncasecmp(p, "NTLM", 4) != 0 || (p[4] != ' ' && p[4] != '\t' && p[4] != '\0'))
		return err_set(err, -EPROTO, "NTLM: WWW-Authenticate is not an NTLM challenge");
	p += 4;
	while (*p == ' ' || *p == '\t')
		p++;
	start = p;
	while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
		p++;
	*tok = start;
	*tok_len = (size_t)(p - start);
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	if (*p != '\0')
		return err_set(err, -EPROTO, "NTLM: WWW-Authenticate has more than one token");
	if (*tok_len == 0)
		return err_set(err, -EPROTO, "NTLM: WWW-Authenticate 'NTLM' carries no CHALLENGE");
	return 0;
}

/* ---- the handshake ---- */

struct ews_ntlm *ews_ntlm_new(const char *user, const char *password, struct err *err)
{
	struct ews_ntlm *n;
	const char *bs;
	const char *name;
	char *domain;
	int rc;

	if (user == NULL || password == NULL) {
		(void)err_set(err, -EINVAL, "NTLM: no user name or password");
		return NULL;
	}
	/* "DOMAIN\user" splits; a UPN "user@domain" or a bare name goes with an empty domain. */
	bs = strchr(user, '\\');
	name = bs != NULL ? bs + 1 : user;
	domain = bs != NULL ? xmemdup(user, (size_t)(bs - user)) : xstrdup("");
	if (*name == '\0' || (bs != NULL && bs == user)) {
		free(domain);
		(void)err_set(
			err, -EINVAL,
			"NTLM: the user name has an empty part; use 'DOMAIN\\user' or 'user@domain'");
		return NULL;
	}
	n = xcalloc(1, sizeof(*n));
	rc = ews_ntlm_utf16le(name, strlen(name), false, NAME_MAX_UNITS, "user name", &n->user16,
	                      &n->user16_len, err);
	if (rc == 0)
		rc = ews_ntlm_utf16le(domain, strlen(domain), false, NAME_MAX_UNITS, "domain",
		                      &n->domain16, &n->domain16_len, err);
	if (rc == 0)
		rc = ntowfv2_utf8(password, name, domain, n->response_key, err);
	free(domain);
	if (rc < 0) {
		ews_ntlm_free(n);
		return NULL;
	}
	return n;
}

void ews_ntlm_free(struct ews_ntlm *n)
{
	if (n == NULL)
		return;
	OPENSSL_cleanse(n->response_key, sizeof(n->response_key));
	free(n->user16);
	free(n->domain16);
	OPENSSL_cleanse(n, sizeof(*n));
	free(n);
}

int ews_ntlm_negotiate_header(struct ews_ntlm *n, char **header, struct err *err)
{
	uint8_t *m = n->negotiate;

	/* NEGOTIATE (2.2.1.1): no domain or workstation, so both fields are empty and point at the
	 * end of the message, where their payload would be. */
	memset(m, 0, EWS_NTLM_NEGOTIATE_LEN);
	memcpy(m, ntlmssp_signature, 8);
	put32(m + 8, 1);
	put32(m + 12, EWS_NTLM_CLIENT_FLAGS);
	put_field(m + 16, 0, EWS_NTLM_NEGOTIATE_LEN);
	put_field(m + 24, 0, EWS_NTLM_NEGOTIATE_LEN);
	memcpy(m + 32, client_version, 8);
	n->negotiate_built = true;
	*header = ntlm_header(m, EWS_NTLM_NEGOTIATE_LEN);
	(void)err;
	return 0;
}

static void av_put(uint8_t *p, size_t *pos, uint32_t id, const uint8_t *v, size_t len)
{
	put16(p + *pos, id);
	put16(p + *pos + 2, (uint32_t)len);
	if (len > 0)
		memcpy(p + *pos + 4, v, len);
	*pos += 4 + len;
}

/*
 * The AV pairs for our blob: the server's, in order, minus the ones we set ourselves, then
 * MsvAvFlags (the server's bits and MIC-present), MsvAvChannelBindings, MsvAvTargetName (when
 * spn16_len > 0) and MsvAvEOL. With out NULL only the length is computed.
 */
static size_t client_av_pairs(const struct ews_ntlm_challenge *c, const uint8_t cbt[16],
                              const uint8_t *spn16, size_t spn16_len, uint8_t *out)
{
	uint8_t flags[4];
	size_t pos = 0;

	for (size_t at = 0; at + 4 <= c->target_info_len;) {
		uint32_t id = get16(c->target_info + at);
		size_t vlen = get16(c->target_info + at + 2);

		if (id == EWS_NTLM_AV_EOL)
			break;
		if (id != EWS_NTLM_AV_FLAGS && id != EWS_NTLM_AV_CHANNEL_BINDINGS &&
		    id != EWS_NTLM_AV_TARGET_NAME) {
			if (out != NULL)
				memcpy(out + pos, c->target_info + at, 4 + vlen);
			pos += 4 + vlen;
		}
		at += 4 + vlen;
	}
	if (out == NULL)
		return pos + (4 + 4) + (4 + 16) + (spn16_len > 0 ? 4 + spn16_len : 0) + 4;
	put32(flags, c->av_flags | EWS_NTLM_AV_FLAG_MIC);
	av_put(out, &pos, EWS_NTLM_AV_FLAGS, flags, 4);
	av_put(out, &pos, EWS_NTLM_AV_CHANNEL_BINDINGS, cbt, 16);
	if (spn16_len > 0)
		av_put(out, &pos, EWS_NTLM_AV_TARGET_NAME, spn16, spn16_len);
	av_put(out, &pos, EWS_NTLM_AV_EOL, NULL, 0);
	return pos;
}

int ews_ntlm_build_authenticate(struct ews_ntlm *n, const uint8_t *msg, size_t len,
                                const struct ews_ntlm_auth_opts *opts, uint8_t **out,
                                size_t *out_len, struct err *err)
{
	static const uint8_t zero_cbt[16];
	struct ews_ntlm_challenge c;
	uint8_t session_key[16] = {0};
	uint8_t *spn16 = NULL;
	size_t spn16_len = 0;
	uint8_t *av = NULL;
	uint8_t *m = NULL;
	size_t av_len, nt_len, total, pos;
	size_t lm_off, nt_off;
	int rc;

	if (!n->negotiate_built)
		return err_set(err, -EINVAL, "NTLM: AUTHENTICATE requested before NEGOTIATE");
	rc = ews_ntlm_parse_challenge(msg, len, &c, err);
	if (rc < 0)
		return rc;
	if (opts->spn != NULL && opts->spn[0] != '\0') {
		rc = ews_ntlm_utf16le(opts->spn, strlen(opts->spn), false, SPN_MAX_UNITS, "SPN",
		                      &spn16, &spn16_len, err);
		if (rc < 0)
			return rc;
	}
	av_len = client_av_pairs(&c, opts->cbt != NULL ? opts->cbt : zero_cbt, spn16, spn16_len,
	                         NULL);
	nt_len = EWS_NTLM_V2_RESPONSE_LEN(av_len);
	total = EWS_NTLM_AUTH_HEADER_LEN + n->domain16_len + n->user16_len + 24 + nt_len;
	if (total > EWS_NTLM_MAX_MESSAGE) {
		rc = err_set(err, -EMSGSIZE, "NTLM: AUTHENTICATE would be %zu bytes, limit %u",
		             total, EWS_NTLM_MAX_MESSAGE);
		goto out;
	}
	av = xmalloc(av_len);
	(void)client_av_pairs(&c, opts->cbt != NULL ? opts->cbt : zero_cbt, spn16, spn16_len, av);

	/* AUTHENTICATE (2.2.1.3): the header with the Version and a zero MIC, then the payload
	 * in the order domain, user, workstation (empty), LM, NT, session key (empty). */
	m = xcalloc(1, total);
	memcpy(m, ntlmssp_signature, 8);
	put32(m + 8, 3);
	pos = EWS_NTLM_AUTH_HEADER_LEN;
	put_field(m + 28, n->domain16_len, pos);
	memcpy(m + pos, n->domain16, n->domain16_len);
	pos += n->domain16_len;
	put_field(m + 36, n->user16_len, pos);
	memcpy(m + pos, n->user16, n->user16_len);
	pos += n->user16_len;
	put_field(m + 44, 0, pos);
	lm_off = pos;
	put_field(m + 12, 24, lm_off);
	pos += 24;
	nt_off = pos;
	put_field(m + 20, nt_len, nt_off);
	pos += nt_len;
	put_field(m + 52, 0, pos);
	assert(pos == total);
	put32(m + 60, c.flags & EWS_NTLM_CLIENT_FLAGS);
	if (c.flags & EWS_NTLM_NEGOTIATE_VERSION)
		memcpy(m + 64, client_version, 8);

	/* The blob's time is the server's when it sent one, so that clock skew cannot fail us. */
	rc = ews_ntlm_v2_response(n->response_key, c.server_challenge, opts->client_challenge,
	                          c.has_timestamp ? c.timestamp : opts->now_filetime, av, av_len,
	                          m + nt_off, nt_len, session_key, err);
	/* With MsvAvTimestamp the LmChallengeResponse is Z(24) (3.1.5.1.2); xcalloc zeroed it. */
	if (rc == 0 && !c.has_timestamp)
		rc = ews_ntlm_lmv2_response(n->response_key, c.server_challenge,
		                            opts->client_challenge, m + lm_off, err);
	/* MIC = HMAC_MD5(ExportedSessionKey, NEGOTIATE + CHALLENGE + AUTHENTICATE with a zero
	 * MIC); without key exchange the ExportedSessionKey is the SessionBaseKey. */
	if (rc == 0)
		rc = hmac_md5(session_key, 16,
		              (const struct part[]){{n->negotiate, EWS_NTLM_NEGOTIATE_LEN},
		                                    {msg, len},
		                                    {m, total}},
		              3, m + EWS_NTLM_AUTH_MIC_OFFSET, err);
	if (rc == 0) {
		*out = m;
		*out_len = total;
		m = NULL;
	}
out:
	OPENSSL_cleanse(session_key, sizeof(session_key));
	free(m);
	free(av);
	free(spn16);
	return rc;
}

int ews_ntlm_authenticate_header(struct ews_ntlm *n, const char *www_authenticate,
                                 const uint8_t cbt[16], const char *spn, char **header,
                                 struct err *err)
{
	uint8_t chal[EWS_NTLM_MAX_MESSAGE];
	uint8_t client_challenge[8];
	const char *tok = NULL;
	size_t tok_len = 0, chal_len = 0, auth_len = 0;
	uint8_t *auth = NULL;
	int rc;

	rc = challenge_token(www_authenticate, &tok, &tok_len, err);
	if (rc < 0)
		return rc;
	if (tok_len > (EWS_NTLM_MAX_MESSAGE + 2) / 3 * 4)
		return err_set(err, -EPROTO,
		               "NTLM CHALLENGE: %zu base64 characters, limit %u bytes", tok_len,
		               EWS_NTLM_MAX_MESSAGE);
	rc = ews_ntlm_base64_decode(tok, tok_len, chal, sizeof(chal), &chal_len, err);
	if (rc < 0)
		return rc;
	rc = crypto_ready(err);
	if (rc < 0)
		return rc;
	ERR_set_mark();
	if (RAND_bytes_ex(crypto.ctx, client_challenge, sizeof(client_challenge), 0) != 1) {
		ERR_pop_to_mark();
		return err_set(err, -EIO, "NTLM: OpenSSL has no random bytes");
	}
	ERR_pop_to_mark();
	rc = ews_ntlm_build_authenticate(
		n, chal, chal_len,
		&(struct ews_ntlm_auth_opts){
			.cbt = cbt,
			.spn = spn,
			.client_challenge = client_challenge,
			.now_filetime =
				(uint64_t)clock_now_utc() * FILETIME_PER_SEC + FILETIME_UNIX_EPOCH,
		},
		&auth, &auth_len, err);
	if (rc < 0)
		return rc;
	*header = ntlm_header(auth, auth_len);
	free(auth);
	return 0;
}

/* ---- channel bindings (RFC 5929, MS-NLMP 3.1.5.1.2 via GSS-API RFC 2744) ---- */

int ews_channel_bindings_md5(const uint8_t *cert_der, size_t cert_len, uint8_t out[16],
                             struct err *err)
{
	static const char prefix[] = "tls-server-end-point:";
	const unsigned char *p = cert_der;
	uint8_t bindings[20 + sizeof(prefix) - 1 + EVP_MAX_MD_SIZE];
	uint8_t md5[EVP_MAX_MD_SIZE];
	unsigned int hash_len = 0;
	unsigned int md5_len = 0;
	EVP_MD *md = NULL;
	X509 *x = NULL;
	int mdnid = NID_undef;
	int pknid = NID_undef;
	int secbits = 0;
	uint32_t sig_flags = 0;
	size_t app_len;
	int rc = crypto_ready(err);

	if (rc < 0)
		return rc;
	if (cert_len == 0 || cert_len > LONG_MAX)
		return err_set(err, -EPROTO, "channel binding: certificate of %zu bytes", cert_len);
	ERR_set_mark();
	x = d2i_X509(NULL, &p, (long)cert_len);
	if (x == NULL || p != cert_der + cert_len) {
		rc = err_set(err, -EPROTO, "channel binding: the certificate is not one DER X.509");
		goto out;
	}
	/* RFC 5929 4.1: the hash of the certificate's signature, but SHA-256 for MD5 and SHA-1.
	 * X509_get_signature_info also sees through RSA-PSS to its hash. */
	if (X509_get_signature_info(x, &mdnid, &pknid, &secbits, &sig_flags) != 1 ||
	    mdnid == NID_undef) {
		rc = err_set(err, -ENOTSUP,
		             "channel binding: the certificate's signature has no hash RFC 5929 "
		             "defines (e.g. Ed25519)");
		goto out;
	}
	if (mdnid == NID_md5 || mdnid == NID_sha1)
		mdnid = NID_sha256;
	md = EVP_MD_fetch(crypto.ctx, OBJ_nid2sn(mdnid), NULL);
	if (md == NULL) {
		rc = err_set(err, -ENOTSUP, "channel binding: hash %s is not available",
		             OBJ_nid2sn(mdnid));
		goto out;
	}
	/* gss_channel_bindings_struct, flattened: initiator address type and length, acceptor
	 * address type and length (all 0), application data length, application data. */
	memset(bindings, 0, 20);
	memcpy(bindings + 20, prefix, sizeof(prefix) - 1);
	rc = digest(md, cert_der, cert_len, bindings + 20 + sizeof(prefix) - 1, &hash_len, err);
	if (rc < 0)
		goto out;
	app_len = sizeof(prefix) - 1 + hash_len;
	put32(bindings + 16, (uint32_t)app_len);
	rc = digest(crypto.md5, bindings, 20 + app_len, md5, &md5_len, err);
	if (rc == 0)
		memcpy(out, md5, 16);
out:
	EVP_MD_free(md);
	X509_free(x);
	ERR_pop_to_mark();
	return rc;
}
