/* SPDX-License-Identifier: MIT */
/*
 * fuzz-ews-ntlm.c: libFuzzer target for the NTLM CHALLENGE parser. The input is a CHALLENGE
 * message. It is parsed raw, then answered through ews_ntlm_authenticate_header as "NTLM
 * <base64>", and last given to that function as the header text itself. Both ways must agree,
 * fail only with -EPROTO (or -EMSGSIZE for an answer too large) and a message, and succeed only
 * with an answer that fits EWS_NTLM_MAX_MESSAGE.
 */
#include <errno.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "ews/ews-ntlm-int.h"
#include "ews/ews-ntlm.h"

#define FUZZ_MAX_INPUT (EWS_NTLM_MAX_MESSAGE + 64) /* a little over, to reach the limit */
#define B64_MAX        ((EWS_NTLM_MAX_MESSAGE + 2) / 3 * 4)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t cbt[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static void check(int rc, const struct err *err, char *header)
{
	if (rc == 0 &&
	    (header == NULL || strncmp(header, "NTLM ", 5) != 0 || strlen(header) > 5 + B64_MAX))
		abort();
	if (rc != 0 && (rc != err->code || err->msg[0] == '\0' || header != NULL ||
	                (rc != -EPROTO && rc != -EMSGSIZE)))
		abort();
	free(header);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Made once and kept: the fuzzer's inputs share one context and one NEGOTIATE. */
	static struct ews_ntlm_crypto *crypto;
	static struct ews_ntlm *n;
	struct ews_ntlm_challenge c;
	struct err raw_err = {0}, err = {0};
	char *www, *text, *header = NULL;
	int raw, rc;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	if (n == NULL) {
		crypto = ews_ntlm_crypto_new();
		n = ews_ntlm_new(crypto, "CONTOSO\\svc", "Passw0rd!", NULL);
		if (n == NULL || ews_ntlm_negotiate_header(n, &header, NULL) != 0)
			abort();
		free(header);
		header = NULL;
	}
	raw = ews_ntlm_parse_challenge(data, size, &c, &raw_err);
	if (raw != 0 && (raw != -EPROTO || raw_err.code != raw || raw_err.msg[0] == '\0'))
		abort();
	if (raw == 0 && (c.target_info < data || c.target_info_len < 4 ||
	                 c.target_info_len > size - (size_t)(c.target_info - data)))
		abort();

	www = xmalloc(5 + (size + 2) / 3 * 4 + 1);
	memcpy(www, "NTLM ", 5);
	(void)EVP_EncodeBlock((unsigned char *)www + 5, data, (int)size);
	rc = ews_ntlm_authenticate_header(n, www, cbt, "HTTP/mail.contoso.example", &header, &err);
	/* An empty input makes a header with no token, which is refused before parsing. */
	if (size > 0 && (raw == 0 ? rc != 0 && rc != -EMSGSIZE : rc != raw))
		abort();
	if (size > 0 && size <= EWS_NTLM_MAX_MESSAGE && raw != 0 &&
	    strcmp(err.msg, raw_err.msg) != 0)
		abort();
	check(rc, &err, header);
	free(www);

	header = NULL;
	err = (struct err){0};
	text = xmemdup(data, size);
	rc = ews_ntlm_authenticate_header(n, text, NULL, NULL, &header, &err);
	check(rc, &err, header);
	free(text);
	return 0;
}
