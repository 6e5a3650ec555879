/* SPDX-License-Identifier: MIT */
/*
 * check-probe.c: the probes `calsync check` makes with a plain libcurl easy handle, because
 * they are what the daemon's transport (ews-transport.h) does not do and must not expose: an
 * unauthenticated POST, to read the WWW-Authenticate methods a 401 offers, the connect and TLS
 * handshake times, and the certificate chain (also of a handshake that failed to verify); and
 * a login with libcurl's own NTLM, which sends no channel binding, to tell what Extended
 * Protection asks for. No EWS answer is read here: every EWS request goes through check-call.c.
 * The unauthenticated probe sends no credentials. URL parsing for the steps is here too.
 */
#include "cli/check-int.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <strings.h>

#include "calsync-config.h"
#include "config/config.h"

int check_url_split(const char *url, struct url_parts *out, struct err *err)
{
	CURLU *u = curl_url();
	char *scheme = NULL;
	char *host = NULL;
	char *port = NULL;
	int rc = 0;
	size_t len;

	if (u == NULL)
		return err_set(err, -ENOMEM, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		rc = err_set(err, -EINVAL, "'%.200s' is not a URL calsync can use", url);
		goto out;
	}
	out->https = strcasecmp(scheme, "https") == 0;
	len = strlen(host);
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		memmove(host, host + 1, len - 2);
		host[len - 2] = '\0';
	}
	(void)snprintf(out->host, sizeof(out->host), "%s", host);
	out->port = strtol(port, NULL, 10);
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

bool check_same_endpoint(const char *a, const char *b)
{
	struct url_parts x = {0};
	struct url_parts y = {0};

	if (check_url_split(a, &x, NULL) < 0 || check_url_split(b, &y, NULL) < 0)
		return false;
	return x.https == y.https && x.port == y.port && strcasecmp(x.host, y.host) == 0;
}

static void offer_add(struct probe *p, const char *name, size_t len)
{
	static const struct {
		const char *name;
		unsigned bit;
	} known[] = {
		{"Negotiate", OFFER_NEGOTIATE},
		{"NTLM", OFFER_NTLM},
		{"Basic", OFFER_BASIC},
		{"Bearer", OFFER_BEARER},
	};

	size_t used = strlen(p->offered_names);
	char token[40];

	if (len == 0 || len >= sizeof(token))
		return;
	for (size_t i = 0; i < len; i++)
		if (name[i] <= 0x20 || name[i] >= 0x7f)
			return;
	memcpy(token, name, len);
	token[len] = '\0';
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strcasecmp(token, known[i].name) == 0) {
			if (p->offered & known[i].bit)
				return;
			p->offered |= known[i].bit;
		}
	}
	(void)snprintf(p->offered_names + used, sizeof(p->offered_names) - used, "%s%s",
	               used > 0 ? ", " : "", token);
}

/* Headers of every response the probe sees; each status line starts afresh. */
static size_t probe_on_header(char *data, size_t size, size_t nitems, void *ctx)
{
	static const char wa[] = "WWW-Authenticate:";
	struct probe *p = ctx;
	size_t len = size * nitems;
	size_t i = sizeof(wa) - 1;
	size_t start;

	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		p->offered = 0;
		p->offered_names[0] = '\0';
	} else if (len > i && strncasecmp(data, wa, i) == 0) {
		while (i < len && (data[i] == ' ' || data[i] == '\t'))
			i++;
		start = i;
		while (i < len && data[i] != ' ' && data[i] != ',' && data[i] != '\r' &&
		       data[i] != '\n')
			i++;
		offer_add(p, data + start, i - start);
	}
	return len;
}

static size_t probe_on_body(char *data, size_t size, size_t nitems, void *ctx)
{
	(void)data;
	(void)ctx;
	return size * nitems; /* the error page says nothing the status and headers do not */
}

static void cert_field(const char *line, const char *name, char *out, size_t n)
{
	size_t len = strlen(name);

	if (strncmp(line, name, len) == 0 && line[len] == ':')
		(void)snprintf(out, n, "%s", line + len + 1);
}

/* The SHA-1 thumbprint of a PEM certificate (libcurl's "Cert:" field), in upper-case hex. */
static void cert_thumbprint(const char *pem, char out[41])
{
	static const char hex[] = "0123456789ABCDEF";
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	out[0] = '\0';
	if (x != NULL && X509_digest(x, EVP_sha1(), md, &n) == 1 && n == 20) {
		for (unsigned int i = 0; i < n; i++) {
			out[2 * i] = hex[md[i] >> 4];
			out[2 * i + 1] = hex[md[i] & 15];
		}
		out[40] = '\0';
	}
	X509_free(x);
	BIO_free(b);
}

static void probe_cert(CURL *e, struct cert *cert)
{
	struct curl_certinfo *ci = NULL;

	if (curl_easy_getinfo(e, CURLINFO_CERTINFO, &ci) != CURLE_OK || ci == NULL ||
	    ci->num_of_certs < 1)
		return;
	cert->have = true;
	for (struct curl_slist *l = ci->certinfo[0]; l != NULL; l = l->next) {
		if (strncmp(l->data, "Cert:", 5) == 0)
			cert_thumbprint(l->data + 5, cert->sha1);
		cert_field(l->data, "Subject", cert->subject, sizeof(cert->subject));
		cert_field(l->data, "Issuer", cert->issuer, sizeof(cert->issuer));
		cert_field(l->data, "X509v3 Subject Alternative Name", cert->san,
		           sizeof(cert->san));
		cert_field(l->data, "Expire date", cert->expire, sizeof(cert->expire));
	}
	check_tame(cert->subject);
	check_tame(cert->issuer);
	check_tame(cert->san);
	check_tame(cert->expire);
}

/*
 * What every probe request shares: a POST of text/xml to url over HTTP/1.1, TLS 1.2 or later
 * (verified unless verify is false, with <tls ca_file>), no proxy from the environment, no
 * redirect, check's timeouts, and the answer's headers and certificate collected into p.
 * Returns the header list, which the caller frees after the transfer.
 */
static struct curl_slist *probe_setup(const struct check *c, CURL *e, const char *url, bool verify,
                                      struct probe *p)
{
	struct curl_slist *hdr = NULL;
	struct curl_slist *l;
	char ua[64];

	l = curl_slist_append(hdr, "Content-Type: text/xml; charset=utf-8");
	if (l != NULL)
		hdr = l;
	l = curl_slist_append(hdr, "Expect:");
	if (l != NULL)
		hdr = l;
	(void)snprintf(ua, sizeof(ua), "calsync/%s", CALSYNC_VERSION);
	(void)curl_easy_setopt(e, CURLOPT_URL, url);
	(void)curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	(void)curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(e, CURLOPT_PROXY, ""); /* as the transport: no proxy from the env */
	(void)curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	(void)curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	(void)curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	(void)curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	                       (long)(CHECK_CONNECT_TIMEOUT_USEC / USEC_PER_MSEC));
	(void)curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
	                       (long)(CHECK_CALL_TIMEOUT_USEC / USEC_PER_MSEC));
	(void)curl_easy_setopt(e, CURLOPT_ERRORBUFFER, p->errbuf);
	(void)curl_easy_setopt(e, CURLOPT_USERAGENT, ua); /* libcurl copies it */
	(void)curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr);
	(void)curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, probe_on_header);
	(void)curl_easy_setopt(e, CURLOPT_HEADERDATA, p);
	(void)curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, probe_on_body);
	(void)curl_easy_setopt(e, CURLOPT_CERTINFO, 1L);
	if (!verify) {
		(void)curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		(void)curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (c->cfg->ca_file != NULL) {
		(void)curl_easy_setopt(e, CURLOPT_CAINFO, c->cfg->ca_file);
	}
	return hdr;
}

/*
 * An unauthenticated POST to url, as any client's first request: DNS, TCP, TLS (verified
 * unless verify is false, with <tls ca_file>), and the 401 with the methods the server offers.
 * handshake_only stops after the TLS handshake (to read a certificate that failed to verify).
 * It sends no credentials, so it may run unverified.
 */
void check_probe_run(const struct check *c, const char *url, bool verify, bool handshake_only,
                     struct probe *p)
{
	CURL *e = curl_easy_init();
	struct curl_slist *hdr = NULL;
	char *ip = NULL;

	memset(p, 0, sizeof(*p));
	if (e == NULL) {
		p->res = CURLE_OUT_OF_MEMORY;
		(void)snprintf(p->errbuf, sizeof(p->errbuf), "curl_easy_init failed");
		return;
	}
	hdr = probe_setup(c, e, url, verify, p);
	(void)curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
	(void)curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
	if (handshake_only)
		(void)curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
	p->res = curl_easy_perform(e);
	if (p->errbuf[0] == '\0')
		(void)snprintf(p->errbuf, sizeof(p->errbuf), "%s", curl_easy_strerror(p->res));
	check_tame(p->errbuf);
	(void)curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &p->http);
	(void)curl_easy_getinfo(e, CURLINFO_SSL_VERIFYRESULT, &p->verify_result);
	(void)curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &p->connect_us);
	(void)curl_easy_getinfo(e, CURLINFO_APPCONNECT_TIME_T, &p->appconnect_us);
	(void)curl_easy_getinfo(e, CURLINFO_PRIMARY_PORT, &p->port);
	if (curl_easy_getinfo(e, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip != NULL)
		(void)snprintf(p->ip, sizeof(p->ip), "%s", ip);
	ip = NULL;
	if (curl_easy_getinfo(e, CURLINFO_REDIRECT_URL, &ip) == CURLE_OK && ip != NULL)
		(void)snprintf(p->redirect, sizeof(p->redirect), "%s", ip);
	check_tame(p->redirect);
	probe_cert(e, &p->cert);
	curl_easy_cleanup(e);
	curl_slist_free_all(hdr);
}

/*
 * Logs in with libcurl's own NTLM, which in curl 7.88 sends no channel binding, with the
 * configured credentials and c->req as the body, over TLS verified as the configuration says.
 * Whether IIS accepts NTLM without a binding tells Extended Protection's setting apart from
 * the credentials. cert gets the certificate this connection saw.
 */
enum unbound check_ntlm_unbound_probe(const struct check *c, const char *url, struct cert *cert)
{
	CURL *e = curl_easy_init();
	struct curl_slist *hdr = NULL;
	struct probe p;
	CURLcode res;
	long http = 0;

	memset(cert, 0, sizeof(*cert));
	if (e == NULL || c->cfg->user == NULL || c->cfg->password == NULL) {
		curl_easy_cleanup(e);
		return UNBOUND_NO_ANSWER;
	}
	memset(&p, 0, sizeof(p));
	hdr = probe_setup(c, e, url, !c->cfg->insecure_skip_tls_verify, &p);
	(void)curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->req.data != NULL ? c->req.data : "");
	(void)curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->req.len);
	(void)curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_NTLM);
	(void)curl_easy_setopt(e, CURLOPT_USERNAME, c->cfg->user);
	(void)curl_easy_setopt(e, CURLOPT_PASSWORD, c->cfg->password);
	res = curl_easy_perform(e);
	(void)curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &http);
	probe_cert(e, cert);
	curl_easy_cleanup(e);
	curl_slist_free_all(hdr);
	if (res != CURLE_OK || http == 0)
		return UNBOUND_NO_ANSWER;
	return http == 401 ? UNBOUND_REFUSED : UNBOUND_ACCEPTED;
}

/* "Nov 29 07:39:20 2026 GMT", as OpenSSL prints a certificate time, to UTC seconds. */
bool check_cert_time(const char *s, int64_t *out_utc)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	long v[5]; /* day, hour, minute, second, year */
	const char *m;
	int64_t y, mo, era, yoe, doy, doe;
	char *end;

	if (strlen(s) < 20)
		return false;
	m = strstr(months, (char[4]){s[0], s[1], s[2], '\0'});
	if (m == NULL || (m - months) % 3 != 0)
		return false;
	mo = (m - months) / 3 + 1;
	s += 3;
	for (int i = 0; i < 5; i++) {
		while (*s == ' ' || *s == ':')
			s++;
		if (*s < '0' || *s > '9')
			return false;
		v[i] = strtol(s, &end, 10);
		s = end;
	}
	/* Days from civil (Howard Hinnant's algorithm): no time zone database needed. */
	y = v[4] - (mo <= 2);
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + v[0] - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	*out_utc = (era * 146097 + doe - 719468) * DAY_SEC + v[1] * 3600 + v[2] * 60 + v[3];
	return true;
}
