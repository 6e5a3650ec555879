/* SPDX-License-Identifier: MIT */
/*
 * oauth-request.c: what a token request sends. The form (grant_type=client_credentials, the
 * client, the scope, and the secret or the assertion), encoded with libcurl's escaping; and for
 * a certificate credential the JWT client assertion of RFC 7523 as Microsoft's "certificate
 * credentials" page describes it: a header with the certificate's thumbprints, claims naming
 * the token endpoint as audience and the client as issuer and subject, signed with the
 * private key by OpenSSL (RS256 or PS256). The JSON is jansson's.
 */
#include "http/oauth-int.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "base/xalloc.h"

#define MIN_RSA_BITS 2048

size_t oauth_base64url(const uint8_t *in, size_t len, char *out)
{
	int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	size_t k = 0;

	for (int i = 0; i < n; i++) {
		char ch = out[i];
		if (ch == '=')
			break;
		out[k++] = ch == '+' ? '-' : ch == '/' ? '_' : ch;
	}
	out[k] = '\0';
	return k;
}

/* A PEM passphrase callback that refuses: an encrypted key fails instead of prompting. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static int thumbprints(X509 *cert, struct oauth_cert *c, struct err *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (X509_digest(cert, EVP_sha1(), md, &n) != 1 || n != 20)
		return err_set(err, -EINVAL, "OAuth: cannot hash the certificate");
	(void)oauth_base64url(md, n, c->x5t);
	if (X509_digest(cert, EVP_sha256(), md, &n) != 1 || n != 32)
		return err_set(err, -EINVAL, "OAuth: cannot hash the certificate");
	(void)oauth_base64url(md, n, c->x5t_s256);
	return 0;
}

void oauth_cert_clear(struct oauth_cert *c)
{
	EVP_PKEY_free(c->key); /* OpenSSL clears a private key's memory when it frees it */
	memset(c, 0, sizeof(*c));
}

int oauth_cert_load(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                    struct oauth_cert *c, struct err *err)
{
	BIO *b = NULL;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	int rc = 0;

	memset(c, 0, sizeof(*c));
	if (cert_len > INT32_MAX || key_len > INT32_MAX)
		return err_set(err, -EINVAL, "OAuth: certificate or key too large");
	b = BIO_new_mem_buf(cert_pem, (int)cert_len);
	if (b != NULL)
		cert = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
	BIO_free(b);
	if (cert == NULL) {
		rc = err_set(err, -EINVAL, "OAuth: the certificate is not a PEM X.509 certificate");
		goto out;
	}
	b = BIO_new_mem_buf(key_pem, (int)key_len);
	if (b != NULL)
		key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
	BIO_free(b);
	if (key == NULL) {
		rc = err_set(err, -EINVAL,
		             "OAuth: the private key is not an unencrypted PEM key (PKCS#8 or "
		             "PKCS#1; an encrypted key must be decrypted first)");
		goto out;
	}
	if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA || EVP_PKEY_get_bits(key) < MIN_RSA_BITS) {
		rc = err_set(err, -EINVAL, "OAuth: the private key must be RSA of %d bits or more",
		             MIN_RSA_BITS);
		goto out;
	}
	if (EVP_PKEY_eq(X509_get0_pubkey(cert), key) != 1) {
		rc = err_set(err, -EINVAL,
		             "OAuth: the private key does not belong to the "
		             "certificate");
		goto out;
	}
	rc = thumbprints(cert, c, err);
	if (rc == 0) {
		c->key = key;
		key = NULL;
	}
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	ERR_clear_error(); /* nothing of OpenSSL's error queue may leak into later messages */
	return rc;
}

/* json as compact text, base64url-encoded, appended to b. */
static int append_b64_json(struct buf *b, json_t *json, struct err *err)
{
	char *text = json_dumps(json, JSON_COMPACT);
	size_t n;
	char *enc;
	int rc;

	if (text == NULL)
		return err_set(err, -EIO, "OAuth: cannot write the assertion's JSON");
	n = strlen(text);
	enc = xmalloc(4 * ((n + 2) / 3) + 1);
	n = oauth_base64url((const uint8_t *)text, n, enc);
	rc = buf_append(b, enc, n, err);
	free(text);
	free(enc);
	return rc;
}

static int random_uuid(char out[37], struct err *err)
{
	unsigned char r[16];

	if (RAND_bytes(r, sizeof(r)) != 1) {
		ERR_clear_error();
		return err_set(err, -EIO, "OAuth: no random bytes for the assertion's jti");
	}
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* version 4 */
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	(void)snprintf(out, 37,
	               "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
	               r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12],
	               r[13], r[14], r[15]);
	return 0;
}

/* The signature of b's len bytes, base64url, appended after a '.'. */
static int sign(const struct oauth_cert *c, enum oauth_jwt_alg alg, struct buf *b, struct err *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	char *enc = NULL;
	int rc = -EIO;

	if (md == NULL || EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, c->key) != 1)
		goto out;
	if (alg == OAUTH_JWT_PS256 &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
		goto out;
	if (EVP_DigestSign(md, NULL, &sig_len, (const unsigned char *)b->data, b->len) != 1)
		goto out;
	sig = xmalloc(sig_len);
	if (EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)b->data, b->len) != 1)
		goto out;
	enc = xmalloc(4 * ((sig_len + 2) / 3) + 1);
	sig_len = oauth_base64url(sig, sig_len, enc);
	rc = buf_append(b, ".", 1, err);
	if (rc == 0)
		rc = buf_append(b, enc, sig_len, err);
out:
	if (rc == -EIO)
		rc = err_set(err, -EIO, "OAuth: signing the assertion failed");
	ERR_clear_error();
	EVP_MD_CTX_free(md);
	free(sig);
	free(enc);
	return rc;
}

int oauth_jwt_make(const struct oauth_cert *c, enum oauth_jwt_alg alg, const char *token_url,
                   const char *client_id, int64_t now_utc, char **out, struct err *err)
{
	char jti[37];
	json_t *header;
	json_t *claims;
	struct buf b;
	int rc;

	rc = random_uuid(jti, err);
	if (rc < 0)
		return rc;
	header =
		json_pack("{s:s, s:s, s:s, s:s}", "alg", alg == OAUTH_JWT_PS256 ? "PS256" : "RS256",
	                  "typ", "JWT", "x5t", c->x5t, "x5t#S256", c->x5t_s256);
	claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "aud", token_url, "iss",
	                   client_id, "sub", client_id, "jti", jti, "nbf", (json_int_t)now_utc,
	                   "iat", (json_int_t)now_utc, "exp",
	                   (json_int_t)(now_utc + OAUTH_ASSERTION_LIFETIME_SEC));
	buf_init(&b, 1u << 16);
	if (header == NULL || claims == NULL) {
		rc = err_set(err, -EIO, "OAuth: cannot build the assertion's JSON");
		goto out;
	}
	rc = append_b64_json(&b, header, err);
	if (rc == 0)
		rc = buf_append(&b, ".", 1, err);
	if (rc == 0)
		rc = append_b64_json(&b, claims, err);
	if (rc == 0)
		rc = sign(c, alg, &b, err);
	if (rc == 0)
		*out = buf_take(&b);
out:
	json_decref(header);
	json_decref(claims);
	buf_free(&b);
	return rc;
}

/* "&name=<value form-encoded>" (no '&' first), value wiped from libcurl's copy. */
static int field(struct buf *b, const char *name, const char *value, struct err *err)
{
	char *enc = curl_easy_escape(NULL, value, (int)strlen(value));
	int rc;

	if (enc == NULL)
		return err_set(err, -ENOMEM, "OAuth: out of memory");
	rc = b->len > 0 ? buf_append(b, "&", 1, err) : 0;
	if (rc == 0)
		rc = buf_append(b, name, strlen(name), err);
	if (rc == 0)
		rc = buf_append(b, "=", 1, err);
	if (rc == 0)
		rc = buf_append(b, enc, strlen(enc), err);
	explicit_bzero(enc, strlen(enc));
	curl_free(enc);
	return rc;
}

int oauth_form(struct buf *b, const char *client_id, const char *scope, const char *secret,
               const char *assertion, struct err *err)
{
	int rc = field(b, "grant_type", "client_credentials", err);

	if (rc == 0)
		rc = field(b, "client_id", client_id, err);
	if (rc == 0)
		rc = field(b, "scope", scope, err);
	if (rc == 0 && secret != NULL)
		rc = field(b, "client_secret", secret, err);
	if (rc == 0 && assertion != NULL)
		rc = field(b, "client_assertion_type",
		           "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", err);
	if (rc == 0 && assertion != NULL)
		rc = field(b, "client_assertion", assertion, err);
	return rc;
}
