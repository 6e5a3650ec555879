/* SPDX-License-Identifier: MIT */
/*
 * ews-ntlm-crypto.c: the NTLM module's OpenSSL. A struct ews_ntlm_crypto owns a private library
 * context with the default and legacy providers (MD4 is legacy), so that the global context
 * libcurl uses is never changed; on it sit HMAC-MD5, NTOWFv2, the NTLMv2 and LMv2 responses
 * (MS-NLMP 3.3.2) and the channel-binding token of a TLS certificate (RFC 5929). OpenSSL errors
 * we cause are popped from the thread's error queue, so that libcurl never reports them.
 */
#include "ews/ews-ntlm.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "ews/ews-ntlm-int.h"

/* Written by ews_ntlm_crypto_new, read-only afterwards. */
struct ews_ntlm_crypto {
	OSSL_LIB_CTX *ctx;
	OSSL_PROVIDER *default_provider;
	OSSL_PROVIDER *legacy_provider;
	EVP_MD *md4;
	EVP_MD *md5;
	EVP_MAC *hmac;
	const char *error; /* non-NULL when the context is unusable */
};

struct ews_ntlm_crypto *ews_ntlm_crypto_new(void)
{
	struct ews_ntlm_crypto *cr = xcalloc(1, sizeof(*cr));

	ERR_set_mark();
	cr->ctx = OSSL_LIB_CTX_new();
	if (cr->ctx == NULL) {
		cr->error = "OpenSSL: cannot create a library context";
		goto out;
	}
	cr->default_provider = OSSL_PROVIDER_load(cr->ctx, "default");
	if (cr->default_provider == NULL) {
		cr->error = "OpenSSL: the default provider cannot be loaded";
		goto out;
	}
	cr->legacy_provider = OSSL_PROVIDER_load(cr->ctx, "legacy");
	if (cr->legacy_provider == NULL) {
		cr->error =
			"OpenSSL: the legacy provider (MD4, which NTLM needs) cannot be loaded; "
			"is ossl-modules/legacy.so installed?";
		goto out;
	}
	cr->md4 = EVP_MD_fetch(cr->ctx, "MD4", NULL);
	cr->md5 = EVP_MD_fetch(cr->ctx, "MD5", NULL);
	cr->hmac = EVP_MAC_fetch(cr->ctx, "HMAC", NULL);
	if (cr->md4 == NULL || cr->md5 == NULL || cr->hmac == NULL)
		cr->error = "OpenSSL: MD4, MD5 or HMAC is not available";
out:
	/* Our failures must not linger in the thread's error queue for libcurl to report. */
	ERR_pop_to_mark();
	return cr;
}

void ews_ntlm_crypto_free(struct ews_ntlm_crypto *cr)
{
	if (cr == NULL)
		return;
	/* The fetched algorithms hold the providers, and the providers the context. */
	EVP_MAC_free(cr->hmac);
	EVP_MD_free(cr->md5);
	EVP_MD_free(cr->md4);
	if (cr->legacy_provider != NULL)
		(void)OSSL_PROVIDER_unload(cr->legacy_provider);
	if (cr->default_provider != NULL)
		(void)OSSL_PROVIDER_unload(cr->default_provider);
	OSSL_LIB_CTX_free(cr->ctx);
	free(cr);
}

static int crypto_ready(const struct ews_ntlm_crypto *cr, struct err *err)
{
	if (cr->error != NULL)
		return err_set(err, -ENOTSUP, "NTLM: %s", cr->error);
	return 0;
}

int ews_ntlm_hmac_md5(const struct ews_ntlm_crypto *cr, const uint8_t *key, size_t key_len,
                      const struct ews_ntlm_part *parts, size_t n, uint8_t out[16], struct err *err)
{
	/* OSSL_PARAM wants a char *; OpenSSL only reads it. */
	char md5_name[] = "MD5";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, md5_name, 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *ctx;
	size_t out_len = 0;
	bool ok;
	int rc = crypto_ready(cr, err);

	if (rc < 0)
		return rc;
	ERR_set_mark();
	ctx = EVP_MAC_CTX_new(cr->hmac);
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

int ews_ntlm_random(const struct ews_ntlm_crypto *cr, uint8_t *out, size_t len, struct err *err)
{
	int rc = crypto_ready(cr, err);

	if (rc < 0)
		return rc;
	ERR_set_mark();
	if (RAND_bytes_ex(cr->ctx, out, len, 0) != 1) {
		ERR_pop_to_mark();
		return err_set(err, -EIO, "NTLM: OpenSSL has no random bytes");
	}
	ERR_pop_to_mark();
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

/* ---- NTOWFv2 and the responses (MS-NLMP 3.3.2) ---- */

/* NTOWFv2 from the UTF-16LE password and UPPER(user) + domain. */
static int ntowfv2_utf16(const struct ews_ntlm_crypto *cr, const uint8_t *pw16, size_t pw16_len,
                         const uint8_t *ud16, size_t ud16_len, uint8_t out[16], struct err *err)
{
	uint8_t nt_hash[EVP_MAX_MD_SIZE];
	unsigned int nt_len = 0;
	int rc = crypto_ready(cr, err);

	if (rc == 0)
		rc = digest(cr->md4, pw16, pw16_len, nt_hash, &nt_len, err);
	if (rc == 0)
		rc = ews_ntlm_hmac_md5(cr, nt_hash, 16, &(struct ews_ntlm_part){ud16, ud16_len}, 1,
		                       out, err);
	OPENSSL_cleanse(nt_hash, sizeof(nt_hash));
	return rc;
}

/* The user is uppercased here. */
int ews_ntlm_ntowfv2(const struct ews_ntlm_crypto *cr, const char *password, const char *user,
                     const char *domain, uint8_t out[16], struct err *err)
{
	uint8_t *pw16 = NULL;
	uint8_t *u16 = NULL;
	uint8_t *d16 = NULL;
	uint8_t *ud16 = NULL;
	size_t pw16_len = 0;
	size_t u16_len = 0;
	size_t d16_len = 0;
	int rc;

	rc = ews_ntlm_utf16le(password, strlen(password), false, EWS_NTLM_PASSWORD_MAX_UNITS,
	                      "password", &pw16, &pw16_len, err);
	if (rc == 0)
		rc = ews_ntlm_utf16le(user, strlen(user), true, EWS_NTLM_NAME_MAX_UNITS,
		                      "user name", &u16, &u16_len, err);
	if (rc == 0)
		rc = ews_ntlm_utf16le(domain, strlen(domain), false, EWS_NTLM_NAME_MAX_UNITS,
		                      "domain", &d16, &d16_len, err);
	if (rc == 0) {
		ud16 = xmalloc(u16_len + d16_len + 1);
		memcpy(ud16, u16, u16_len);
		memcpy(ud16 + u16_len, d16, d16_len);
		rc = ntowfv2_utf16(cr, pw16, pw16_len, ud16, u16_len + d16_len, out, err);
	}
	if (pw16 != NULL)
		OPENSSL_cleanse(pw16, pw16_len);
	free(pw16);
	free(u16);
	free(d16);
	free(ud16);
	return rc;
}

int ews_ntlm_v2_response(const struct ews_ntlm_crypto *cr, const uint8_t key[16],
                         const uint8_t server_challenge[8], const uint8_t client_challenge[8],
                         uint64_t timestamp, const uint8_t *av, size_t av_len, uint8_t *out,
                         size_t out_cap, uint8_t session_base_key[16], struct err *err)
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
	ews_ntlm_put64(temp + 8, timestamp);
	memcpy(temp + 16, client_challenge, 8);
	memcpy(temp + 28, av, av_len);

	/* NTProofStr = HMAC_MD5(key, ServerChallenge + temp) goes before temp. */
	rc = ews_ntlm_hmac_md5(
		cr, key, 16,
		(const struct ews_ntlm_part[]){{server_challenge, 8}, {temp, temp_len}}, 2, out,
		err);
	if (rc == 0)
		rc = ews_ntlm_hmac_md5(cr, key, 16, &(struct ews_ntlm_part){out, 16}, 1,
		                       session_base_key, err);
	return rc;
}

int ews_ntlm_lmv2_response(const struct ews_ntlm_crypto *cr, const uint8_t key[16],
                           const uint8_t server_challenge[8], const uint8_t client_challenge[8],
                           uint8_t out[24], struct err *err)
{
	int rc = ews_ntlm_hmac_md5(
		cr, key, 16,
		(const struct ews_ntlm_part[]){{server_challenge, 8}, {client_challenge, 8}}, 2,
		out, err);

	if (rc == 0)
		memcpy(out + 16, client_challenge, 8);
	return rc;
}

/* ---- channel bindings (RFC 5929, MS-NLMP 3.1.5.1.2 via GSS-API RFC 2744) ---- */

int ews_channel_bindings_md5(const struct ews_ntlm_crypto *cr, const uint8_t *cert_der,
                             size_t cert_len, uint8_t out[16], struct err *err)
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
	int rc = crypto_ready(cr, err);

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
	md = EVP_MD_fetch(cr->ctx, OBJ_nid2sn(mdnid), NULL);
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
	ews_ntlm_put32(bindings + 16, (uint32_t)app_len);
	rc = digest(cr->md5, bindings, 20 + app_len, md5, &md5_len, err);
	if (rc == 0)
		memcpy(out, md5, 16);
out:
	EVP_MD_free(md);
	X509_free(x);
	ERR_pop_to_mark();
	return rc;
}
