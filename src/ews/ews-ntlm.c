/* SPDX-License-Identifier: MIT */
/*
 * ews-ntlm.c: NTLMv2 with channel binding (MS-NLMP), for Exchange's Extended Protection: the
 * handshake and the messages we build, NEGOTIATE and AUTHENTICATE. The CHALLENGE parser is in
 * ews-ntlm-challenge.c, OpenSSL and the hashes in ews-ntlm-crypto.c, UTF-16 in ews-ntlm-text.c;
 * libcurl carries the messages in HTTP headers. docs/ntlm.md explains the design;
 * test-ews-ntlm.c checks it against the spec's examples.
 *
 * Choices, each also in docs/ntlm.md:
 * - No key exchange, signing or sealing: HTTP authentication uses none of them, so the
 *   ExportedSessionKey is the SessionBaseKey and no EncryptedRandomSessionKey is sent.
 * - A MIC always, with MsvAvFlags bit 0x2, MsvAvChannelBindings always (zeros without TLS),
 *   MsvAvTargetName when the caller gives an SPN: what Windows sends to an EPA server.
 * - The only secret kept is NTOWFv2 (the password is hashed in ews_ntlm_new and wiped).
 */
#include "ews/ews-ntlm.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/xalloc.h"
#include "ews/ews-ntlm-int.h"

/* Longest SPN (MsvAvTargetName), in UTF-16 code units: "HTTP/" and a DNS name of 255. */
#define SPN_MAX_UNITS 300u

/* FILETIME of the Unix epoch, in 100 ns ticks since 1601-01-01. */
#define FILETIME_UNIX_EPOCH UINT64_C(116444736000000000)
#define FILETIME_PER_SEC    UINT64_C(10000000)

/*
 * The Version structure (MS-NLMP 2.2.2.10) we send: 10.0, build 0, NTLMSSP_REVISION_W2K3 (15).
 * It is "used for debugging purposes only"; build 0 says we are not a Windows release.
 */
static const uint8_t client_version[8] = {10, 0, 0, 0, 0, 0, 0, 15};

struct ews_ntlm {
	const struct ews_ntlm_crypto *crypto; /* borrowed */
	uint8_t response_key[16];             /* NTOWFv2: the one secret held, wiped at free */
	uint8_t *user16;                      /* UTF-16LE, as sent */
	size_t user16_len;
	uint8_t *domain16; /* UTF-16LE, maybe empty */
	size_t domain16_len;
	uint8_t negotiate[EWS_NTLM_NEGOTIATE_LEN]; /* kept for the MIC */
	bool negotiate_built;
};

/* A security buffer field (Len, MaxLen, Offset) at p. */
static void put_field(uint8_t *p, size_t len, size_t offset)
{
	ews_ntlm_put16(p, (uint32_t)len);
	ews_ntlm_put16(p + 2, (uint32_t)len);
	ews_ntlm_put32(p + 4, (uint32_t)offset);
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

struct ews_ntlm *ews_ntlm_new(const struct ews_ntlm_crypto *cr, const char *user,
                              const char *password, struct err *err)
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
	n->crypto = cr;
	rc = ews_ntlm_utf16le(name, strlen(name), false, EWS_NTLM_NAME_MAX_UNITS, "user name",
	                      &n->user16, &n->user16_len, err);
	if (rc == 0)
		rc = ews_ntlm_utf16le(domain, strlen(domain), false, EWS_NTLM_NAME_MAX_UNITS,
		                      "domain", &n->domain16, &n->domain16_len, err);
	if (rc == 0)
		rc = ews_ntlm_ntowfv2(cr, password, name, domain, n->response_key, err);
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
	memcpy(m, EWS_NTLM_SIGNATURE, 8);
	ews_ntlm_put32(m + 8, 1);
	ews_ntlm_put32(m + 12, EWS_NTLM_CLIENT_FLAGS);
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
	ews_ntlm_put16(p + *pos, id);
	ews_ntlm_put16(p + *pos + 2, (uint32_t)len);
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
		uint32_t id = ews_ntlm_get16(c->target_info + at);
		size_t vlen = ews_ntlm_get16(c->target_info + at + 2);

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
	ews_ntlm_put32(flags, c->av_flags | EWS_NTLM_AV_FLAG_MIC);
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
	memcpy(m, EWS_NTLM_SIGNATURE, 8);
	ews_ntlm_put32(m + 8, 3);
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
	ews_ntlm_put32(m + 60, c.flags & EWS_NTLM_CLIENT_FLAGS);
	if (c.flags & EWS_NTLM_NEGOTIATE_VERSION)
		memcpy(m + 64, client_version, 8);

	/* The blob's time is the server's when it sent one, so that clock skew cannot fail us. */
	rc = ews_ntlm_v2_response(n->crypto, n->response_key, c.server_challenge,
	                          opts->client_challenge,
	                          c.has_timestamp ? c.timestamp : opts->now_filetime, av, av_len,
	                          m + nt_off, nt_len, session_key, err);
	/* With MsvAvTimestamp the LmChallengeResponse is Z(24) (3.1.5.1.2); xcalloc zeroed it. */
	if (rc == 0 && !c.has_timestamp)
		rc = ews_ntlm_lmv2_response(n->crypto, n->response_key, c.server_challenge,
		                            opts->client_challenge, m + lm_off, err);
	/* MIC = HMAC_MD5(ExportedSessionKey, NEGOTIATE + CHALLENGE + AUTHENTICATE with a zero
	 * MIC); without key exchange the ExportedSessionKey is the SessionBaseKey. */
	if (rc == 0)
		rc = ews_ntlm_hmac_md5(n->crypto, session_key, 16,
		                       (const struct ews_ntlm_part[]){
					       {n->negotiate, EWS_NTLM_NEGOTIATE_LEN},
					       {msg, len},
					       {m, total},
				       },
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
	rc = ews_ntlm_random(n->crypto, client_challenge, sizeof(client_challenge), err);
	if (rc < 0)
		return rc;
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
