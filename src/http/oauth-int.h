/* SPDX-License-Identifier: MIT */
/*
 * oauth-int.h: the token provider's insides, shared by its files (and by its tests and fuzz
 * target), by nothing else. The public interface is oauth.h. The files:
 *
 *   oauth.c          the provider: options, the cached token, waiters, renewal, back-off
 *   oauth-request.c  the token request: the form, the certificate and the JWT client assertion
 *   oauth-answer.c   the token endpoint's answer: a token, or an error and what it means
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/compat.h"
#include "base/err.h"
#include "http/oauth.h"

/* The base64url of a SHA-1 (27 characters) and of a SHA-256 (43), and their NUL. */
#define OAUTH_X5T_SIZE      28u
#define OAUTH_X5T_S256_SIZE 44u

/* -- oauth-request.c ---------------------------------------------------------------------- */

/* A certificate credential: the private key and the certificate's thumbprints. */
struct oauth_cert {
	struct evp_pkey_st *key;
	char x5t[OAUTH_X5T_SIZE];
	char x5t_s256[OAUTH_X5T_S256_SIZE];
};

/*
 * The certificate and key PEM texts into c: 0, or -EINVAL with a message that names what is
 * wrong (never a byte of the key). The key must be RSA of at least 2048 bits and belong to the
 * certificate; an encrypted key is refused (never a passphrase prompt).
 */
ATTR_NODISCARD int oauth_cert_load(const char *cert_pem, size_t cert_len, const char *key_pem,
                                   size_t key_len, struct oauth_cert *c, struct err *err);

/* Frees the key. NULL-safe, and safe on a zeroed struct. */
void oauth_cert_clear(struct oauth_cert *c);

/*
 * A signed JWT client assertion (RFC 7523) for client_id, whose audience is token_url, issued
 * at now_utc: header {"alg","typ":"JWT","x5t","x5t#S256"}, claims aud, iss, sub, jti (a random
 * UUID), nbf, iat, exp (now + OAUTH_ASSERTION_LIFETIME_SEC). 0 and *out (owned; wipe and free),
 * or -EIO (OpenSSL or the random source failed).
 */
ATTR_NODISCARD int oauth_jwt_make(const struct oauth_cert *c, enum oauth_jwt_alg alg,
                                  const char *token_url, const char *client_id, int64_t now_utc,
                                  char **out, struct err *err);

/* base64url without padding (RFC 4648 5) of len bytes into out, which must hold
 * 4 * ((len + 2) / 3) + 1 bytes; returns the length written (NUL not counted). */
size_t oauth_base64url(const uint8_t *in, size_t len, char *out);

/*
 * The form body of a token request, form-encoded with libcurl's escaping, into b (wiped by the
 * caller): grant_type, client_id, scope, and client_secret, or client_assertion_type and
 * client_assertion (assertion). 0 or -ENOMEM/-EMSGSIZE.
 */
ATTR_NODISCARD int oauth_form(struct buf *b, const char *client_id, const char *scope,
                              const char *secret, const char *assertion, struct err *err);

/* -- oauth-answer.c ----------------------------------------------------------------------- */

/* A parsed answer. access_token is owned (wipe and free: oauth_answer_clear). */
struct oauth_answer {
	char *access_token;
	int64_t expires_in_sec;
};

/*
 * The token endpoint's answer (HTTP status and len bytes of body, any bytes): 0 and a token
 * in *out, or -EACCES (permanent), -EAGAIN (transient) or -EPROTO (not a token answer) with a
 * message: the HTTP status, the OAuth error, the AADSTS code and the first line of the
 * description, cleaned of control characters. *out is written only on success.
 */
ATTR_NODISCARD int oauth_answer_parse(long status, const char *body, size_t len,
                                      struct oauth_answer *out, struct err *err);

/* Wipes and frees the token. */
void oauth_answer_clear(struct oauth_answer *a);
