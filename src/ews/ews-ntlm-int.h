/* SPDX-License-Identifier: MIT */
/*
 * ews-ntlm-int.h: the building blocks of the NTLM module, shared by its files (ews-ntlm.c: the
 * handshake and its messages; ews-ntlm-challenge.c: the CHALLENGE parser and base64;
 * ews-ntlm-crypto.c: OpenSSL, the hashes and the channel bindings; ews-ntlm-text.c: UTF-8 to
 * UTF-16LE) and exposed for its unit test and fuzzer. Nothing else includes this file.
 * Randomness and the clock are parameters here, so that tests can check every byte against
 * MS-NLMP's worked examples and independent implementations.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"

struct err;
struct ews_ntlm;
struct ews_ntlm_crypto;

/* Every NTLM message starts with these 8 bytes, "NTLMSSP" and its NUL. */
#define EWS_NTLM_SIGNATURE "NTLMSSP"

/*
 * Longest user name and domain, and password, in UTF-16 code units. Windows caps a UPN at 256
 * characters and a password at 256 (LSA); a DNS domain is at most 255. They also keep the
 * AUTHENTICATE message well under EWS_NTLM_MAX_MESSAGE.
 */
#define EWS_NTLM_NAME_MAX_UNITS     256u
#define EWS_NTLM_PASSWORD_MAX_UNITS 256u

/* Little-endian fields, as every number in an NTLM message is. */
static inline void ews_ntlm_put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void ews_ntlm_put32(uint8_t *p, uint32_t v)
{
	ews_ntlm_put16(p, v & 0xffffu);
	ews_ntlm_put16(p + 2, v >> 16);
}

static inline void ews_ntlm_put64(uint8_t *p, uint64_t v)
{
	ews_ntlm_put32(p, (uint32_t)v);
	ews_ntlm_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t ews_ntlm_get16(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static inline uint32_t ews_ntlm_get32(const uint8_t *p)
{
	return ews_ntlm_get16(p) | ews_ntlm_get16(p + 2) << 16;
}

static inline uint64_t ews_ntlm_get64(const uint8_t *p)
{
	return (uint64_t)ews_ntlm_get32(p) | (uint64_t)ews_ntlm_get32(p + 4) << 32;
}

/* NegotiateFlags (MS-NLMP 2.2.2.5), the ones this module names. */
#define EWS_NTLM_NEGOTIATE_UNICODE     0x00000001u
#define EWS_NTLM_NEGOTIATE_OEM         0x00000002u
#define EWS_NTLM_REQUEST_TARGET        0x00000004u
#define EWS_NTLM_NEGOTIATE_SIGN        0x00000010u
#define EWS_NTLM_NEGOTIATE_SEAL        0x00000020u
#define EWS_NTLM_NEGOTIATE_NTLM        0x00000200u
#define EWS_NTLM_NEGOTIATE_ALWAYS_SIGN 0x00008000u
#define EWS_NTLM_NEGOTIATE_EXTENDED_SS 0x00080000u
#define EWS_NTLM_NEGOTIATE_TARGET_INFO 0x00800000u
#define EWS_NTLM_NEGOTIATE_VERSION     0x02000000u
#define EWS_NTLM_NEGOTIATE_128         0x20000000u
#define EWS_NTLM_NEGOTIATE_KEY_EXCH    0x40000000u
#define EWS_NTLM_NEGOTIATE_56          0x80000000u

/* What our NEGOTIATE asks for (0xa2888205); see docs/ntlm.md for why these and no others. */
#define EWS_NTLM_CLIENT_FLAGS                                                                   \
	(EWS_NTLM_NEGOTIATE_UNICODE | EWS_NTLM_REQUEST_TARGET | EWS_NTLM_NEGOTIATE_NTLM |       \
	 EWS_NTLM_NEGOTIATE_ALWAYS_SIGN | EWS_NTLM_NEGOTIATE_EXTENDED_SS |                      \
	 EWS_NTLM_NEGOTIATE_TARGET_INFO | EWS_NTLM_NEGOTIATE_VERSION | EWS_NTLM_NEGOTIATE_128 | \
	 EWS_NTLM_NEGOTIATE_56)

/* AvId values (MS-NLMP 2.2.2.1). */
#define EWS_NTLM_AV_EOL              0u
#define EWS_NTLM_AV_NB_COMPUTER      1u
#define EWS_NTLM_AV_NB_DOMAIN        2u
#define EWS_NTLM_AV_DNS_COMPUTER     3u
#define EWS_NTLM_AV_DNS_DOMAIN       4u
#define EWS_NTLM_AV_DNS_TREE         5u
#define EWS_NTLM_AV_FLAGS            6u
#define EWS_NTLM_AV_TIMESTAMP        7u
#define EWS_NTLM_AV_SINGLE_HOST      8u
#define EWS_NTLM_AV_TARGET_NAME      9u
#define EWS_NTLM_AV_CHANNEL_BINDINGS 10u

/* MsvAvFlags bit: the AUTHENTICATE message carries a MIC. */
#define EWS_NTLM_AV_FLAG_MIC 0x00000002u

/* Sizes of the messages we build. */
#define EWS_NTLM_NEGOTIATE_LEN   40u /* header only: no domain or workstation is sent */
#define EWS_NTLM_AUTH_MIC_OFFSET 72u /* after the 64-byte fixed header and the Version */
#define EWS_NTLM_AUTH_HEADER_LEN 88u /* where the payload of our AUTHENTICATE starts */

/* Length of an NTLMv2 NtChallengeResponse whose blob carries av_len bytes of AV pairs:
 * NTProofStr (16), the 28-byte blob header, the AV pairs, and 4 trailing zero bytes. */
#define EWS_NTLM_V2_RESPONSE_LEN(av_len) (16u + 28u + (av_len) + 4u)

/* A parsed CHALLENGE message. The pointers borrow from the message passed to the parser. */
struct ews_ntlm_challenge {
	uint32_t flags;
	uint8_t server_challenge[8];
	const uint8_t *target_name; /* TargetName bytes (UTF-16LE with UNICODE), maybe empty */
	size_t target_name_len;
	const uint8_t *target_info; /* the AV pairs, MsvAvEOL included; never empty */
	size_t target_info_len;
	size_t n_av_pairs;  /* AV pairs before MsvAvEOL */
	bool has_timestamp; /* MsvAvTimestamp was present */
	uint64_t timestamp; /* its value: 100 ns ticks since 1601-01-01 UTC (FILETIME) */
	uint32_t av_flags;  /* MsvAvFlags, 0 when absent */
};

/*
 * Parses and validates a CHALLENGE message (MS-NLMP 2.2.1.2) of len bytes: the signature and
 * type, every (length, offset) field against the message and the header, the UNICODE flag, and
 * the TargetInfo AV pairs (each inside the list, MsvAvEOL last with length 0, nothing after it,
 * MsvAvTimestamp 8 bytes and MsvAvFlags 4 bytes at most once each, name pairs even-sized).
 * 0, or -EPROTO with err naming the first problem; *out is written only on success.
 */
ATTR_NODISCARD int ews_ntlm_parse_challenge(const uint8_t *msg, size_t len,
                                            struct ews_ntlm_challenge *out, struct err *err);

/*
 * UTF-8 (len bytes) to UTF-16LE, in a malloc'd buffer the caller frees (and wipes, if secret).
 * With upper, characters are uppercased as NTOWFv2 needs: ASCII, Latin-1, Latin Extended-A,
 * Greek and Cyrillic, one code unit to one; others are kept (see docs/ntlm.md). what names the
 * string in errors, which never quote it. -EINVAL for invalid UTF-8 (overlong forms, surrogates,
 * above U+10FFFF, truncated) or more than max_units code units.
 */
ATTR_NODISCARD int ews_ntlm_utf16le(const char *s, size_t len, bool upper, size_t max_units,
                                    const char *what, uint8_t **out, size_t *out_len,
                                    struct err *err);

/* One piece of the data an HMAC is computed over. */
struct ews_ntlm_part {
	const uint8_t *p;
	size_t len;
};

/* HMAC_MD5(key, the concatenation of the n parts) into out. 0, or -ENOTSUP (cr unusable, or
 * OpenSSL failed). */
ATTR_NODISCARD int ews_ntlm_hmac_md5(const struct ews_ntlm_crypto *cr, const uint8_t *key,
                                     size_t key_len, const struct ews_ntlm_part *parts, size_t n,
                                     uint8_t out[16], struct err *err);

/* len random bytes from cr's OpenSSL context into out. 0, -ENOTSUP (cr unusable) or -EIO. */
ATTR_NODISCARD int ews_ntlm_random(const struct ews_ntlm_crypto *cr, uint8_t *out, size_t len,
                                   struct err *err);

/* NTOWFv2 (MS-NLMP 3.3.2) = HMAC_MD5(MD4(UTF-16LE(password)), UTF-16LE(UPPER(user) + domain)),
 * all three UTF-8. 0, -EINVAL (bad UTF-8, or a name or password over its cap above) or
 * -ENOTSUP (no MD4 in cr). */
ATTR_NODISCARD int ews_ntlm_ntowfv2(const struct ews_ntlm_crypto *cr, const char *password,
                                    const char *user, const char *domain, uint8_t out[16],
                                    struct err *err);

/*
 * The NTLMv2 NtChallengeResponse (MS-NLMP 3.3.2) for response key key: out receives NTProofStr
 * followed by the blob (temp) with the given timestamp, client challenge and av_len bytes of AV
 * pairs (used as given, MsvAvEOL included), EWS_NTLM_V2_RESPONSE_LEN(av_len) bytes in all;
 * out_cap must be at least that. session_base_key = HMAC_MD5(key, NTProofStr).
 */
ATTR_NODISCARD int ews_ntlm_v2_response(const struct ews_ntlm_crypto *cr, const uint8_t key[16],
                                        const uint8_t server_challenge[8],
                                        const uint8_t client_challenge[8], uint64_t timestamp,
                                        const uint8_t *av, size_t av_len, uint8_t *out,
                                        size_t out_cap, uint8_t session_base_key[16],
                                        struct err *err);

/* The LMv2 response: HMAC_MD5(key, server_challenge + client_challenge) + client_challenge. */
ATTR_NODISCARD int ews_ntlm_lmv2_response(const struct ews_ntlm_crypto *cr, const uint8_t key[16],
                                          const uint8_t server_challenge[8],
                                          const uint8_t client_challenge[8], uint8_t out[24],
                                          struct err *err);

/* What ews_ntlm_build_authenticate takes besides the challenge. */
struct ews_ntlm_auth_opts {
	const uint8_t *cbt;              /* 16 bytes, or NULL for 16 zero bytes */
	const char *spn;                 /* MsvAvTargetName (UTF-8), or NULL/"" for none */
	const uint8_t *client_challenge; /* 8 bytes */
	uint64_t now_filetime;           /* the blob's time when the challenge has no timestamp */
};

/*
 * Leg 3 on raw bytes: the AUTHENTICATE message answering the CHALLENGE msg (len bytes), in a
 * malloc'd *out of *out_len bytes, MIC included. n must have built its NEGOTIATE. 0, -EINVAL
 * (no NEGOTIATE yet, bad SPN), -EPROTO (bad challenge), -EMSGSIZE (over EWS_NTLM_MAX_MESSAGE),
 * -ENOTSUP (crypto unavailable).
 */
ATTR_NODISCARD int ews_ntlm_build_authenticate(struct ews_ntlm *n, const uint8_t *msg, size_t len,
                                               const struct ews_ntlm_auth_opts *opts, uint8_t **out,
                                               size_t *out_len, struct err *err);

/*
 * Strict base64 (RFC 4648 alphabet, padded, length a multiple of 4, no whitespace) of len
 * characters into out (cap bytes). 0 with *out_len the decoded length, or -EPROTO.
 */
ATTR_NODISCARD int ews_ntlm_base64_decode(const char *s, size_t len, uint8_t *out, size_t cap,
                                          size_t *out_len, struct err *err);
