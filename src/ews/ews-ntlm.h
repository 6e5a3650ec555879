/* SPDX-License-Identifier: MIT */
/*
 * ews-ntlm.h: NTLMv2 message construction with channel binding (MS-NLMP), for Exchange servers
 * with Extended Protection for Authentication. libcurl keeps doing HTTP and TLS; this module
 * only builds the NEGOTIATE and AUTHENTICATE messages and parses the CHALLENGE, with OpenSSL for
 * the hashes. Nothing here logs; the password and the keys derived from it are wiped when freed.
 *
 * OpenSSL runs in a private library context that a struct ews_ntlm_crypto owns (the transport
 * makes one; tests make their own). One struct ews_ntlm is one handshake on one TCP connection:
 *
 *   cr = ews_ntlm_crypto_new();                         once, before any handshake
 *   n = ews_ntlm_new(cr, "CONTOSO\\svc", password, &err);
 *   ews_ntlm_negotiate_header(n, &h1, &err);          -> "Authorization: <h1>" on leg 1
 *   ... the 401 answer carries "WWW-Authenticate: NTLM <base64 CHALLENGE>" ...
 *   ews_channel_bindings_md5(cr, cert_der, cert_len, cbt, &err);  the connection's server cert
 *   ews_ntlm_authenticate_header(n, www_auth, cbt, "HTTP/host", &h3, &err);  -> leg 3
 *   ews_ntlm_free(n);
 *   ews_ntlm_crypto_free(cr);                           after the last handshake is freed
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"

struct err;
struct ews_ntlm;
struct ews_ntlm_crypto;

/* The longest NTLM message we build or accept (bytes, before base64). */
#define EWS_NTLM_MAX_MESSAGE 4096u

/*
 * OpenSSL for NTLM: a library context of its own with the default and legacy providers (MD4 is
 * legacy) and MD4, MD5 and HMAC fetched from it, so that the global context libcurl uses is
 * never changed. Never NULL: when OpenSSL cannot provide them, the object remembers why, and
 * every function below that needs it fails with -ENOTSUP and that reason. Read-only once made,
 * so any number of handshakes may share it; it must outlive them all.
 */
ATTR_NODISCARD struct ews_ntlm_crypto *ews_ntlm_crypto_new(void);

/* Unloads the providers and frees the context. NULL is allowed. */
void ews_ntlm_crypto_free(struct ews_ntlm_crypto *cr);

/*
 * A handshake for user ("DOMAIN\\user", or a UPN "user@domain" sent with an empty domain, as
 * Windows does) and password (UTF-8). NULL with err set on a malformed user name.
 * (err->code: -EINVAL for an empty user or domain part, invalid UTF-8 or more than 256 UTF-16
 * code units in a name or the password; -ENOTSUP when OpenSSL's legacy provider, which has MD4,
 * cannot be loaded into cr.) Only NTOWFv2 of the password is kept. n borrows cr, which must
 * outlive it.
 */
ATTR_NODISCARD struct ews_ntlm *ews_ntlm_new(const struct ews_ntlm_crypto *cr, const char *user,
                                             const char *password, struct err *err);

/* Wipes the password and derived keys and frees n. NULL is allowed. */
void ews_ntlm_free(struct ews_ntlm *n);

/* Leg 1: *header = "NTLM <base64 NEGOTIATE>" (malloc'd; caller frees). Remembers the message for
 * the MIC. */
ATTR_NODISCARD int ews_ntlm_negotiate_header(struct ews_ntlm *n, char **header, struct err *err);

/*
 * Leg 3. www_authenticate is the value of the 401's WWW-Authenticate header ("NTLM <base64>", the
 * scheme matched case-insensitively). cbt is the 16-byte MD5 of the channel bindings (see
 * ews_channel_bindings_md5), or NULL over plain HTTP (then the AV_PAIR carries 16 zero bytes, as
 * Windows sends without TLS). spn is the target name, "HTTP/<host>", sent as MsvAvTargetName (may
 * be NULL). On success *header = "NTLM <base64 AUTHENTICATE>" (malloc'd). NTLMv2 only, with a MIC.
 * -EPROTO with err naming what is wrong when the challenge is malformed.
 * Also -EINVAL before leg 1 or for an SPN that is not UTF-8, -EMSGSIZE when the AUTHENTICATE would
 * exceed EWS_NTLM_MAX_MESSAGE, -ENOTSUP/-EIO when OpenSSL fails. *header is set only on success.
 */
ATTR_NODISCARD int ews_ntlm_authenticate_header(struct ews_ntlm *n, const char *www_authenticate,
                                                const uint8_t cbt[16], const char *spn,
                                                char **header, struct err *err);

/*
 * The channel-binding token for a TLS server certificate (DER): MD5 of the GSS channel-bindings
 * structure (all zero addresses) whose application data is "tls-server-end-point:" followed by
 * the certificate's hash (RFC 5929 section 4.1: SHA-256 when the certificate's signature hash is
 * MD5 or SHA-1, else that hash).
 * 0; -EPROTO when cert_der is not exactly one DER certificate; -ENOTSUP when its signature has
 * no such hash (Ed25519), or when cr is unusable. The hashes come from cr. out is written only
 * on success.
 */
ATTR_NODISCARD int ews_channel_bindings_md5(const struct ews_ntlm_crypto *cr,
                                            const uint8_t *cert_der, size_t cert_len,
                                            uint8_t out[16], struct err *err);
