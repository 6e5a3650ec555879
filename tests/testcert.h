/* SPDX-License-Identifier: MIT */
/*
 * testcert.h: keys and certificates made at test time with OpenSSL, never committed. Header-only,
 * for the unit tests: an RSA key, a certificate signed by itself (a CA) or by a CA, with subject
 * alternative names, as X509/EVP_PKEY and as PEM text; and temporary files to hand to code that
 * wants a path. Every failure aborts: a test cannot go on without its certificate.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/compat.h"

struct testcert {
	EVP_PKEY *key;
	X509 *cert;
	char *key_pem; /* PKCS#8, unencrypted */
	char *cert_pem;
};

static inline void testcert_die(const char *what)
{
	fprintf(stderr, "testcert: %s failed\n", what);
	abort();
}

static inline char *testcert_bio_text(BIO *b)
{
	char *data = NULL;
	long n = BIO_get_mem_data(b, &data);
	char *out = malloc((size_t)n + 1);

	if (out == NULL)
		testcert_die("malloc");
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	BIO_free(b);
	return out;
}

static inline void testcert_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL || X509_add_ext(cert, ext, -1) != 1)
		testcert_die("X509_add_ext");
	X509_EXTENSION_free(ext);
}

/*
 * A new RSA key (bits) and a certificate for it, named cn, valid from an hour ago for a day;
 * signed by ca (NULL: by itself, as a CA). san: "DNS:localhost,IP:127.0.0.1" or NULL.
 */
static inline void testcert_make(struct testcert *tc, const char *cn, const char *san,
                                 const struct testcert *ca, unsigned bits)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	BIO *b;
	static long serial = 1;

	memset(tc, 0, sizeof(*tc));
	tc->key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	if (tc->key == NULL || x == NULL || name == NULL)
		testcert_die("EVP_PKEY_Q_keygen");
	(void)X509_set_version(x, 2);
	(void)ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	(void)X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	(void)X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	(void)X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1,
	                                 -1, 0);
	(void)X509_set_subject_name(x, name);
	(void)X509_set_issuer_name(x, ca != NULL ? X509_get_subject_name(ca->cert) : name);
	X509_NAME_free(name);
	if (X509_set_pubkey(x, tc->key) != 1)
		testcert_die("X509_set_pubkey");
	testcert_ext(x, ca != NULL ? ca->cert : x, NID_basic_constraints,
	             ca != NULL ? "critical,CA:FALSE" : "critical,CA:TRUE");
	testcert_ext(x, ca != NULL ? ca->cert : x, NID_key_usage,
	             ca != NULL ? "critical,digitalSignature,keyEncipherment"
	                        : "critical,keyCertSign,cRLSign,digitalSignature");
	testcert_ext(x, ca != NULL ? ca->cert : x, NID_subject_key_identifier, "hash");
	if (san != NULL)
		testcert_ext(x, ca != NULL ? ca->cert : x, NID_subject_alt_name, san);
	if (X509_sign(x, ca != NULL ? ca->key : tc->key, EVP_sha256()) <= 0)
		testcert_die("X509_sign");
	tc->cert = x;

	b = BIO_new(BIO_s_mem());
	if (b == NULL || PEM_write_bio_PrivateKey(b, tc->key, NULL, NULL, 0, NULL, NULL) != 1)
		testcert_die("PEM_write_bio_PrivateKey");
	tc->key_pem = testcert_bio_text(b);
	b = BIO_new(BIO_s_mem());
	if (b == NULL || PEM_write_bio_X509(b, x) != 1)
		testcert_die("PEM_write_bio_X509");
	tc->cert_pem = testcert_bio_text(b);
}

static inline void testcert_free(struct testcert *tc)
{
	EVP_PKEY_free(tc->key);
	X509_free(tc->cert);
	free(tc->key_pem);
	free(tc->cert_pem);
	memset(tc, 0, sizeof(*tc));
}

/* text into a new file under a new temporary directory; its path into path (size bytes). */
static inline void testcert_write_temp(const char *text, const char *basename, char *path,
                                       size_t size)
{
	char dir[] = "/tmp/calsync-test-XXXXXX";
	FILE *f;

	if (mkdtemp(dir) == NULL)
		testcert_die("mkdtemp");
	(void)snprintf(path, size, "%s/%s", dir, basename);
	f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		testcert_die("writing a temporary file");
}

/* Removes a file testcert_write_temp() made, and its directory. */
static inline void testcert_remove_temp(const char *path)
{
	char dir[4096];
	char *slash;

	(void)snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	(void)unlink(path);
	if (slash != NULL) {
		*slash = '\0';
		(void)rmdir(dir);
	}
}
