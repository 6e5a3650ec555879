/* SPDX-License-Identifier: MIT */
/*
 * check.c: `calsync check [-c FILE] [--mailbox SMTP ...] [--json]`. Tests, against the real
 * server and in this order, what calsync needs: the configuration; DNS, TCP and TLS to the
 * Autodiscover and EWS hosts; the authentication methods the server offers and whether the
 * configured one works; the server's version; for each sample mailbox a CalendarView read and
 * a Subscribe/Unsubscribe round trip, impersonating it; and what throttling answers were seen.
 * Every failure says what it means and prints the Exchange Management Shell commands that fix
 * it (docs/check.md). A person gets one line per step; --json gives tools one document.
 *
 * It is a command, not the daemon: it runs one call at a time on a private libuv loop (the
 * transport's callbacks set a flag the loop waits for), and probes the server with a plain
 * libcurl easy handle where it needs what the transport does not expose: the WWW-Authenticate
 * headers of an unauthenticated POST, the connect and handshake times, and the certificate.
 * The probe sends no credentials. Passwords and tokens are never printed.
 *
 * Extended Protection: with auth "ntlm" over HTTPS the transport binds its NTLM login to the
 * server certificate it sees. To tell what a 401 means, and whether the server requires the
 * binding at all, the check logs in once more with libcurl's own NTLM, which sends no channel
 * binding (curl 7.88): refused with the binding but accepted without it means the certificate
 * calsync sees is not the server's (TLS terminated in between); accepted with it and refused
 * without it means Extended Protection is on and calsync copes with it.
 */
#include "cli/check.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/cs-limits.h"
#include "base/err.h"
#include "base/iso8601.h"
#include "base/xalloc.h"
#include "calsync-config.h"
#include "config/config.h"
#include "ews/ews-errors.h"
#include "ews/ews-request.h"
#include "ews/ews-response.h"
#include "ews/ews-stream.h"
#include "ews/ews-transport.h"

#define EXIT_CHECK_FAILED 1
#define EXIT_CONFIG       2 /* a configuration error or a command line we do not understand */

/* Mailboxes checked when --mailbox is not given: enough to see impersonation and its scope
 * work, few enough to be quick on a 50,000-mailbox configuration. */
#define CHECK_SAMPLE 3u

/* From this many mailboxes on, progress goes to stderr. */
#define CHECK_PROGRESS_MIN 10u

/* Plain progress lines (stderr not a terminal): about this many over the whole run. */
#define CHECK_PROGRESS_LINES 10u

#define CHECK_CONNECT_TIMEOUT_USEC (15 * USEC_PER_SEC)
#define CHECK_CALL_TIMEOUT_USEC    (60 * USEC_PER_SEC)

/* A streaming connection must deliver its first envelope (Exchange sends ConnectionStatus OK at
 * once) within this time; else something on the path holds streamed answers back. */
#define CHECK_STREAM_IDLE_USEC (10 * USEC_PER_SEC)
#define CHECK_STREAM_CAP_USEC  (20 * USEC_PER_SEC)

/* A throttled answer is retried once, after its BackOffMilliseconds (capped), else after 1 s. */
#define CHECK_MAX_BACK_OFF_MS     10000
#define CHECK_DEFAULT_BACK_OFF_MS 1000

/* Pull subscriptions made by the check are unsubscribed at once; should that fail, they expire
 * after this many minutes without a GetEvents. */
#define CHECK_PULL_TIMEOUT_MIN 10u

/* A certificate that expires sooner than this is worth a warning. */
#define CHECK_CERT_WARN_DAYS 30

/* The largest request the check writes: GetUserSettings for 100 mailboxes is ~10 KB. */
#define CHECK_MAX_REQUEST (1u << 20)

/* Mailboxes per Autodiscover GetUserSettings (the request's own maximum). */
#define CHECK_AUTODISCOVER_BATCH 100u

/* Exchange's defaults for the throttling settings calsync meets (EWS-REFERENCE 1.7). */
#define EX_DEFAULT_MAX_CONCURRENCY   27
#define EX_DEFAULT_HANGING_LIMIT     10
#define EX_DEFAULT_MAX_SUBSCRIPTIONS 5000

/* SOAPAction of Autodiscover's GetUserSettings (WCF dispatches on it). */
#define GUS_ACTION \
	"http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings"

/* OpenSSL's X509 verify codes (x509_vfy.h), which libcurl reports as CURLINFO_SSL_VERIFYRESULT.
 * Spelled out here as the numbers libcurl hands over. */
#define X509_ERR_UNABLE_TO_GET_ISSUER_CERT  2
#define X509_ERR_CERT_NOT_YET_VALID         9
#define X509_ERR_CERT_HAS_EXPIRED           10
#define X509_ERR_DEPTH_ZERO_SELF_SIGNED     18
#define X509_ERR_SELF_SIGNED_IN_CHAIN       19
#define X509_ERR_UNABLE_TO_GET_ISSUER_LOCAL 20
#define X509_ERR_UNABLE_TO_VERIFY_LEAF      21
#define X509_ERR_HOSTNAME_MISMATCH          62

#define DAY_SEC INT64_C(86400)

enum status {
	ST_OK = 0,
	ST_WARN,
	ST_FAIL,
	ST_SKIP,
};

static const char *const status_text[] = {"ok", "warn", "FAIL", "skip"};
static const char *const status_json[] = {"ok", "warn", "fail", "skip"};

/* One line of a fix: a sentence, or a command to run exactly as it stands. */
struct fix_line {
	bool command;
	char *text;
};

struct fix {
	struct fix_line *lines;
	size_t n;
};

struct step {
	const char *name; /* static */
	char *mailbox;    /* NULL: not about one mailbox */
	enum status status;
	char *detail;
	struct fix fix;
};

/* Which virtual directory an endpoint is, for the right cmdlets in a fix. */
enum role {
	ROLE_EWS,
	ROLE_AUTODISCOVER,
};

/* One sample mailbox. */
struct mbx {
	const char *smtp; /* borrowed from argv or the cfg */
	char *url;        /* its EWS URL, NULL until known */
	char *ad_error;   /* Autodiscover's answer when it gave no URL */
};

/* Throttling answers seen during the run (EWS-REFERENCE 1.6, 1.7). */
struct throttle {
	unsigned server_busy;
	int64_t max_back_off_ms;
	unsigned concurrency; /* ErrorExceededConnectionCount outside streaming */
	int64_t concurrency_limit;
	unsigned hanging; /* ErrorExceededConnectionCount on GetStreamingEvents */
	int64_t hanging_limit;
	unsigned subscriptions; /* ErrorExceededSubscriptionCount */
	unsigned other;         /* ErrorTooManyObjectsOpened, HTTP 503 */
	char first[160];        /* the first one: "ErrorServerBusy on FindItem for a@b" */
};

struct check {
	const struct cfg *cfg;
	const char *cfg_path;
	bool json;
	bool tty;            /* stderr is a terminal: progress is one rewritten line */
	bool progress_shown; /* a progress line is on the terminal now */
	struct step *steps;
	size_t n_steps;
	char **printed_fixes; /* human output: fixes already printed in full */
	size_t n_printed_fixes;

	uv_loop_t loop;
	bool loop_ready;
	struct ews_transport *t;
	struct buf req;
	const char *version; /* RequestServerVersion */
	char *account;       /* the service account, quoted for PowerShell */
	char *dc;            /* "DC=contoso,DC=example" for the sample scope filter */
	char *ews_url;       /* the configured one, or the first Autodiscover gave */
	struct mbx *mbx;
	size_t n_mbx;
	unsigned answers; /* EWS calls that got past authentication */
	struct throttle thr;
};

/* ---- text ------------------------------------------------------------------------------------ */

ATTR_PRINTF(1, 0) static char *vfmt(const char *fmt, va_list ap)
{
	va_list ap2;
	int n;
	char *s;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return xstrdup("");
	s = xmalloc((size_t)n + 1);
	(void)vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

ATTR_PRINTF(1, 2) static char *strf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = vfmt(fmt, ap);
	va_end(ap);
	return s;
}

/* Control characters (from a server's message, a file name) become spaces: one step is one
 * line, and nothing can move a terminal's cursor. */
static void tame(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

/* s as a PowerShell single-quoted string: 'CONTOSO\svc', with ' doubled. Owned. */
static char *ps_quote(const char *s)
{
	char *out = xmalloc(2 * strlen(s) + 3);
	size_t n = 0;

	out[n++] = '\'';
	for (; *s != '\0'; s++) {
		if (*s == '\'')
			out[n++] = '\'';
		out[n++] = *s;
	}
	out[n++] = '\'';
	out[n] = '\0';
	return out;
}

static bool str_is(const char *a, const char *b)
{
	return a != NULL && strcmp(a, b) == 0;
}

/* ---- steps and fixes ------------------------------------------------------------------------- */

static void fix_add(struct fix *f, bool command, char *text_take)
{
	f->lines = xreallocarray(f->lines, f->n + 1, sizeof(*f->lines));
	tame(text_take);
	f->lines[f->n++] = (struct fix_line){.command = command, .text = text_take};
}

ATTR_PRINTF(2, 3) static void fix_say(struct fix *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fix_add(f, false, vfmt(fmt, ap));
	va_end(ap);
}

ATTR_PRINTF(2, 3) static void fix_cmd(struct fix *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fix_add(f, true, vfmt(fmt, ap));
	va_end(ap);
}

static void fix_clear(struct fix *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->lines[i].text);
	free(f->lines);
	f->lines = NULL;
	f->n = 0;
}

/* The fix as one text: sentences as they are, commands indented by two spaces. Owned. */
static char *fix_text(const struct fix *f)
{
	struct buf b;

	buf_init(&b, SIZE_MAX / 4);
	for (size_t i = 0; i < f->n; i++) {
		if (i > 0)
			(void)buf_append(&b, "\n", 1, NULL);
		if (f->lines[i].command)
			(void)buf_append(&b, "  ", 2, NULL);
		(void)buf_append(&b, f->lines[i].text, strlen(f->lines[i].text), NULL);
	}
	return buf_take(&b);
}

static void progress_clear(struct check *c)
{
	if (c->progress_shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		c->progress_shown = false;
	}
}

static void print_step(struct check *c, const struct step *s)
{
	char *key;
	bool seen = false;

	progress_clear(c);
	printf("%-5s %-14s %s%s%s\n", status_text[s->status], s->name,
	       s->mailbox != NULL ? s->mailbox : "", s->mailbox != NULL ? ": " : "", s->detail);
	if (s->fix.n > 0) {
		/* With many mailboxes failing alike, the same commands once are enough. */
		key = fix_text(&s->fix);
		for (size_t i = 0; i < c->n_printed_fixes && !seen; i++)
			seen = strcmp(c->printed_fixes[i], key) == 0;
		if (seen) {
			printf("      (fix: as above)\n");
			free(key);
		} else {
			c->printed_fixes = xreallocarray(c->printed_fixes, c->n_printed_fixes + 1,
			                                 sizeof(*c->printed_fixes));
			c->printed_fixes[c->n_printed_fixes++] = key;
			for (size_t i = 0; i < s->fix.n; i++)
				printf("%s%s\n", s->fix.lines[i].command ? "          " : "      ",
				       s->fix.lines[i].text);
		}
	}
	fflush(stdout);
}

/* Adds a step; takes f's lines (f is left empty; NULL for none). Printed at once for a person. */
ATTR_PRINTF(6, 7)

static void step_add(struct check *c, const char *name, const char *mailbox, enum status st,
                     struct fix *f, const char *fmt, ...)
{
	struct step *s;
	va_list ap;

	c->steps = xreallocarray(c->steps, c->n_steps + 1, sizeof(*c->steps));
	s = &c->steps[c->n_steps++];
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->mailbox = mailbox != NULL ? xstrdup(mailbox) : NULL;
	s->status = st;
	va_start(ap, fmt);
	s->detail = vfmt(fmt, ap);
	va_end(ap);
	tame(s->detail);
	if (f != NULL) {
		s->fix = *f;
		memset(f, 0, sizeof(*f));
	}
	if (!c->json)
		print_step(c, s);
}

static void skip(struct check *c, const char *name, const char *why)
{
	step_add(c, name, NULL, ST_SKIP, NULL, "not run: %s", why);
}

/* ---- progress -------------------------------------------------------------------------------- */

static void progress(struct check *c, size_t done, const char *next)
{
	size_t n = c->n_mbx;
	size_t every = n / CHECK_PROGRESS_LINES > 0 ? n / CHECK_PROGRESS_LINES : 1;

	if (n < CHECK_PROGRESS_MIN)
		return;
	if (c->tty) {
		if (next != NULL) {
			fprintf(stderr, "\r\033[Kchecking mailbox %zu of %zu: %s", done + 1, n,
			        next);
			c->progress_shown = true;
		} else {
			progress_clear(c);
		}
		fflush(stderr);
	} else if (next == NULL && (done % every == 0 || done == n)) {
		fprintf(stderr, "calsync check: %zu of %zu mailboxes checked\n", done, n);
	}
}

/* ---- URLs ------------------------------------------------------------------------------------ */

struct url_parts {
	bool https;
	char host[256]; /* without IPv6 brackets */
	long port;
};

static int url_split(const char *url, struct url_parts *out, struct err *err)
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

static bool same_endpoint(const char *a, const char *b)
{
	struct url_parts x = {0};
	struct url_parts y = {0};

	if (url_split(a, &x, NULL) < 0 || url_split(b, &y, NULL) < 0)
		return false;
	return x.https == y.https && x.port == y.port && strcasecmp(x.host, y.host) == 0;
}

/* ---- the unauthenticated probe --------------------------------------------------------------- */

enum {
	OFFER_NEGOTIATE = 1u << 0,
	OFFER_NTLM = 1u << 1,
	OFFER_BASIC = 1u << 2,
	OFFER_BEARER = 1u << 3,
};

struct cert {
	bool have;
	char subject[256];
	char issuer[256];
	char san[512];
	char expire[64];
	char sha1[41]; /* the thumbprint, as Get-ExchangeCertificate shows it; "" if unknown */
};

struct probe {
	CURLcode res;
	long http;
	char errbuf[CURL_ERROR_SIZE];
	unsigned offered;
	char offered_names[160]; /* "Negotiate, NTLM, Basic" as the server listed them */
	long verify_result;
	curl_off_t connect_us;
	curl_off_t appconnect_us;
	char ip[64];
	long port;
	char redirect[256];
	struct cert cert;
};

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
	tame(cert->subject);
	tame(cert->issuer);
	tame(cert->san);
	tame(cert->expire);
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
static void probe_run(const struct check *c, const char *url, bool verify, bool handshake_only,
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
	tame(p->errbuf);
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
	tame(p->redirect);
	probe_cert(e, &p->cert);
	curl_easy_cleanup(e);
	curl_slist_free_all(hdr);
}

enum unbound {
	UNBOUND_NO_ANSWER = -1, /* no HTTP answer: says nothing about Extended Protection */
	UNBOUND_REFUSED = 0,    /* HTTP 401 */
	UNBOUND_ACCEPTED = 1,   /* any other answer: IIS let the login through */
};

/*
 * Logs in with libcurl's own NTLM, which in curl 7.88 sends no channel binding, with the
 * configured credentials and c->req as the body, over TLS verified as the configuration says.
 * Whether IIS accepts NTLM without a binding tells Extended Protection's setting apart from
 * the credentials. cert gets the certificate this connection saw.
 */
static enum unbound ntlm_unbound_probe(const struct check *c, const char *url, struct cert *cert)
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
static bool cert_time(const char *s, int64_t *out_utc)
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

/* ---- fixes ----------------------------------------------------------------------------------- */

static const char *vdir_noun(enum role role)
{
	return role == ROLE_AUTODISCOVER ? "AutodiscoverVirtualDirectory"
	                                 : "WebServicesVirtualDirectory";
}

static void fix_impersonation(const struct check *c, struct fix *f)
{
	fix_say(f, "Give the service account the ApplicationImpersonation role over the synced "
	           "mailboxes (Exchange Management Shell):");
	fix_cmd(f,
	        "New-ManagementScope -Name \"calsync-users\" -RecipientRestrictionFilter "
	        "{MemberOfGroup -eq \"CN=calsync-users,CN=Users,%s\"}",
	        c->dc);
	fix_cmd(f,
	        "New-ManagementRoleAssignment -Name \"calsync-impersonation\" -Role "
	        "ApplicationImpersonation -User %s -CustomRecipientWriteScope \"calsync-users\"",
	        c->account);
	fix_say(f, "The scope's filter must match every synced mailbox (here: the members of the "
	           "group calsync-users); without -CustomRecipientWriteScope the role covers every "
	           "mailbox. The assignments that exist:");
	fix_cmd(f, "Get-ManagementRoleAssignment -Role ApplicationImpersonation | fl "
	           "Name,RoleAssigneeName,CustomRecipientWriteScope");
	fix_say(f, "The service account must not be a member of Domain Admins, Exchange Servers or "
	           "Organization Management.");
}

static void fix_mailbox(const struct check *c, struct fix *f, const char *smtp)
{
	char *q = ps_quote(smtp);

	fix_say(f, "Check the address, then correct it or remove it from <mailboxes>:");
	fix_cmd(f, "Get-Recipient -Identity %s | fl Name,RecipientTypeDetails,PrimarySmtpAddress",
	        q);
	fix_say(f, "If it is a mailbox, the ApplicationImpersonation scope may leave it out:");
	fix_cmd(f, "Get-ManagementRoleAssignment -Role ApplicationImpersonation | fl "
	           "Name,RoleAssigneeName,CustomRecipientWriteScope");
	free(q);
}

static void fix_primary(struct fix *f, const char *smtp)
{
	char *q = ps_quote(smtp);

	fix_say(f, "List the mailbox by its primary SMTP address in <mailboxes> (or use "
	           "<ews impersonation=\"SmtpAddress\">, which accepts other addresses too):");
	fix_cmd(f, "Get-Recipient -Identity %s | fl PrimarySmtpAddress", q);
	free(q);
}

static void fix_version(struct fix *f)
{
	fix_say(f, "Set <ews version=\"...\"> to a RequestServerVersion the server knows: "
	           "Exchange2013_SP1 (the default) for Exchange 2013 and later, Exchange2016 for "
	           "2016, 2019 and Subscription Edition.");
}

static void fix_throttling(const struct check *c, struct fix *f, bool hanging)
{
	fix_say(f, "Give the service account a throttling policy without limits (Exchange "
	           "Management Shell):");
	fix_cmd(f, "New-ThrottlingPolicy -Name \"calsync\" -EwsMaxConcurrency Unlimited "
	           "-EwsMaxSubscriptions Unlimited -EwsMaxBurst Unlimited -EwsRechargeRate "
	           "Unlimited -EwsCutoffBalance Unlimited -RcaMaxConcurrency Unlimited "
	           "-CpaMaxConcurrency Unlimited");
	fix_cmd(f, "Set-ThrottlingPolicyAssociation -Identity %s -ThrottlingPolicy \"calsync\"",
	        c->account);
	if (hanging)
		fix_say(f, "HangingConnectionLimit (open streaming connections per account or "
		           "impersonated mailbox) is not part of a throttling policy: it is the "
		           "appSettings key HangingConnectionLimit in the EWS web.config of every "
		           "Exchange server.");
}

/* For a refused authenticated request (the transport's -EACCES). */
static void fix_auth(const struct check *c, struct fix *f, long http, enum role role)
{
	const char *noun = vdir_noun(role);

	if (http == 403) {
		fix_say(f, "EWS may be blocked for the service account or the organisation:");
		fix_cmd(f, "Get-CASMailbox -Identity %s | fl EwsEnabled,EwsAllowList,EwsBlockList",
		        c->account);
		fix_cmd(f, "Set-CASMailbox -Identity %s -EwsEnabled $true", c->account);
		fix_cmd(f, "Get-OrganizationConfig | fl EwsEnabled,EwsApplicationAccessPolicy");
		return;
	}
	if (http == 456) {
		fix_say(f, "The service account is locked out: unlock it in Active Directory, and "
		           "find what locked it (an old password somewhere).");
		return;
	}
	if (c->cfg->auth == EWS_AUTH_BEARER) {
		fix_say(f, "The bearer token was refused: it expired, was issued for another "
		           "audience, or OAuth is not enabled on the virtual directory:");
		fix_cmd(f, "Get-%s | fl *Authentication*", noun);
		return;
	}
	fix_say(f,
	        "Check the account in <account user=\"...\"> (%s), the password calsync reads "
	        "from password_file or password_env, and that the account is not locked out, "
	        "disabled or expired. Check the methods the virtual directory accepts:",
	        c->account);
	fix_cmd(f, "Get-%s | fl *Authentication*", noun);
}

/*
 * Extended Protection refusing calsync's channel binding: what to compare, and the fixes on
 * Exchange's side and on calsync's. certain: NTLM without a binding was accepted, so the
 * binding is the problem; else it is one explanation beside the credentials.
 */
static void fix_extended_protection(const struct check *c, struct fix *f, enum role role,
                                    const struct cert *cert, bool certain)
{
	const char *noun = vdir_noun(role);

	if (!certain)
		fix_say(f,
		        "If the account and password are right: Extended Protection set to Require "
		        "refuses calsync's channel binding when something between calsync and "
		        "Exchange terminates TLS (a load balancer, a reverse proxy, TLS "
		        "inspection); NTLM without a binding was refused as well.");
	fix_say(f,
	        "calsync binds its NTLM login to the server certificate it sees: SHA-1 thumbprint "
	        "%s (%s, issued by %s). Compare it with the certificate IIS on Exchange uses; a "
	        "different one means TLS ends before Exchange:",
	        cert->sha1[0] ? cert->sha1 : "unknown", cert->subject[0] ? cert->subject : "?",
	        cert->issuer[0] ? cert->issuer : "?");
	fix_cmd(f, "Get-ExchangeCertificate | Where-Object {$_.Services -match 'IIS'} | fl "
	           "Thumbprint,Subject,CertificateDomains");
	fix_say(f,
	        "Fix it on that device: pass TLS through to Exchange, or re-encrypt to Exchange "
	        "(SSL bridging) with the same certificate as Exchange's; Extended Protection does "
	        "not work with SSL offloading. Or let calsync connect to the Exchange server "
	        "directly (%s).",
	        role == ROLE_AUTODISCOVER ? "<autodiscover url> and <ews url>" : "<ews url>");
	fix_say(f,
	        "Only as a last resort, turn the token check off on the virtual directory, which "
	        "gives up its protection against NTLM relaying (Allow is not enough: it still "
	        "refuses a binding that does not match):");
	fix_cmd(f, "Get-%s | fl Server,ExtendedProtectionTokenChecking,ExtendedProtectionFlags",
	        noun);
	fix_cmd(f, "Get-%s | Set-%s -ExtendedProtectionTokenChecking None", noun, noun);
	fix_say(f, "Or use a method Extended Protection does not bind: <account auth=\"basic\"> "
	           "over HTTPS, or auth=\"bearer\" (OAuth).");
	(void)c;
}

/* Whether the configured authentication is NTLM over HTTPS, where Extended Protection binds
 * it to the TLS channel. */
static bool ntlm_over_tls(const struct check *c, const char *url)
{
	struct url_parts u = {0};

	return c->cfg->auth == EWS_AUTH_NTLM && url_split(url, &u, NULL) == 0 && u.https;
}

/*
 * The configured NTLM got a 401 over HTTPS. Fills f; returns the step's detail (owned) when
 * the cause is certain (the binding), or NULL to keep the transport's message.
 */
static char *explain_ntlm_401(const struct check *c, const char *url, long http, enum role role,
                              struct fix *f)
{
	struct cert cert;
	enum unbound u = ntlm_unbound_probe(c, url, &cert);

	if (u == UNBOUND_ACCEPTED) {
		fix_extended_protection(c, f, role, &cert, true);
		return strf(
			"Extended Protection refuses the channel binding calsync sends, but "
			"accepts NTLM without one: the certificate calsync sees (SHA-1 %s) is not "
			"the Exchange server's, so something in between terminates TLS",
			cert.sha1[0] ? cert.sha1 : "unknown");
	}
	fix_auth(c, f, http, role);
	if (u == UNBOUND_REFUSED)
		fix_extended_protection(c, f, role, &cert, false);
	return NULL;
}

/* After the configured NTLM worked over HTTPS: what Extended Protection asks for, as a
 * sentence for the step's detail ("" when the probe got no answer). Owned. */
static char *describe_extended_protection(const struct check *c, const char *url)
{
	struct cert cert;

	switch (ntlm_unbound_probe(c, url, &cert)) {
	case UNBOUND_REFUSED:
		return xstrdup("; Extended Protection is on: the server requires channel binding, "
		               "which calsync sends");
	case UNBOUND_ACCEPTED:
		return xstrdup("; the server does not require channel binding (Extended Protection "
		               "off, or Allow)");
	case UNBOUND_NO_ANSWER:
	default:
		return xstrdup("");
	}
}

/* ---- EWS calls ------------------------------------------------------------------------------- */

/* What one call brought back. The pointers into resp are borrowed from it. */
struct answer {
	int rc;
	long http;
	struct err err;
	bool parsed;
	struct ews_response resp;
	const char *code;                 /* the fault's ResponseCode or the first message's */
	const char *text;                 /* its message */
	const struct ews_message_xml *mx; /* its MessageXml values */
	const struct ews_message *msg;    /* the first message, NULL for a fault */
	char *cookie;                     /* X-BackEndOverrideCookie */
	int64_t elapsed_usec;
	char retried[120]; /* "after ErrorServerBusy, retried after 200 ms" */
};

static void answer_clear(struct answer *a)
{
	ews_response_clear(&a->resp);
	free(a->cookie);
	memset(a, 0, sizeof(*a));
}

static void answer_index(struct answer *a)
{
	const struct ews_response *r = &a->resp;

	if (r->is_fault) {
		a->code = r->fault.response_code;
		if (a->code == NULL && r->fault.faultcode != NULL) {
			const char *colon = strchr(r->fault.faultcode, ':');

			a->code = colon != NULL ? colon + 1 : r->fault.faultcode;
		}
		a->text = r->fault.message != NULL ? r->fault.message : r->fault.faultstring;
		a->mx = &r->fault.mx;
	} else if (r->n_messages > 0) {
		a->msg = &r->messages[0];
		a->code = a->msg->code;
		a->text = a->msg->text;
		a->mx = &a->msg->mx;
	}
}

static void answer_parse(struct answer *a, const char *xml, size_t len)
{
	struct err perr = {0};

	if (ews_response_parse(xml, len, &a->resp, &perr) == 0) {
		a->parsed = true;
		answer_index(a);
	} else if (a->rc == 0) {
		a->rc = perr.code < 0 ? perr.code : -EPROTO;
		(void)err_set(&a->err, a->rc, "the answer cannot be read: %s", perr.msg);
	}
}

static void answer_fill(struct answer *a, const struct ews_result *r)
{
	a->rc = r->rc;
	a->http = r->http_status;
	a->err = r->err;
	a->elapsed_usec = r->elapsed_usec;
	if (r->backend_cookie != NULL)
		a->cookie = xstrdup(r->backend_cookie);
	if (r->rc == 0 ||
	    (r->body_len > 0 && r->content_type != NULL && strstr(r->content_type, "xml") != NULL))
		answer_parse(a, r->body, r->body_len);
}

struct pending {
	bool done;
	struct answer *a;
};

static void on_call_done(void *ctx, struct ews_call *call, const struct ews_result *r)
{
	struct pending *p = ctx;

	(void)call;
	answer_fill(p->a, r);
	p->done = true;
}

/* Runs the private loop until *done. false if the loop ran dry first (a transport bug). */
static bool wait_done(struct check *c, const bool *done)
{
	while (!*done)
		if (uv_run(&c->loop, UV_RUN_ONCE) == 0 && !*done)
			return false;
	return true;
}

/* POSTs c->req with o and waits for the answer. */
static void post(struct check *c, const struct ews_call_opts *o, struct answer *a)
{
	struct pending p = {.a = a};
	struct err err = {0};

	memset(a, 0, sizeof(*a));
	if (ews_transport_post(c->t, o, c->req.data, c->req.len, on_call_done, &p, NULL, &err) <
	    0) {
		a->rc = err.code < 0 ? err.code : -EIO;
		a->err = err;
		return;
	}
	if (!wait_done(c, &p.done)) {
		a->rc = -EIO;
		(void)err_set(&a->err, -EIO, "the transport stopped without an answer");
	}
}

static bool is_code(const struct answer *a, const char *code)
{
	return str_is(a->code, code) || (str_is(a->code, "ErrorInternalServerError") &&
	                                 a->mx != NULL && str_is(a->mx->inner_code, code));
}

/*
 * Notes a throttling answer, if a is one. Returns how long to wait before one retry, or -1
 * when a is not a throttling answer worth retrying.
 */
static int64_t throttle_note(struct check *c, const char *op, const char *mailbox,
                             const struct answer *a)
{
	struct throttle *t = &c->thr;
	int64_t back = -1;
	const char *what = NULL;
	int64_t limit = a->mx != NULL ? a->mx->max_concurrency_limit : -1;

	if (a->http != 0 && a->rc != -EACCES)
		c->answers++; /* Exchange, not IIS's 401, answered */
	if (a->rc == -EAGAIN) {
		t->other++;
		what = "HTTP 503";
		back = CHECK_DEFAULT_BACK_OFF_MS;
	} else if (is_code(a, "ErrorServerBusy")) {
		int64_t ms = a->mx != NULL ? a->mx->back_off_ms : -1;

		t->server_busy++;
		if (ms > t->max_back_off_ms)
			t->max_back_off_ms = ms;
		what = "ErrorServerBusy";
		back = ms < 0 ? CHECK_DEFAULT_BACK_OFF_MS : ms;
	} else if (is_code(a, "ErrorExceededConnectionCount")) {
		if (str_is(op, "GetStreamingEvents")) {
			t->hanging++;
			if (limit >= 0)
				t->hanging_limit = limit;
			what = "ErrorExceededConnectionCount (HangingConnectionLimit)";
		} else {
			t->concurrency++;
			if (limit >= 0)
				t->concurrency_limit = limit;
			what = "ErrorExceededConnectionCount (EWSMaxConcurrency)";
			back = CHECK_DEFAULT_BACK_OFF_MS;
		}
	} else if (is_code(a, "ErrorExceededSubscriptionCount")) {
		t->subscriptions++;
		what = "ErrorExceededSubscriptionCount (EWSMaxSubscriptions)";
	} else if (is_code(a, "ErrorTooManyObjectsOpened")) {
		t->other++;
		what = "ErrorTooManyObjectsOpened";
		back = CHECK_DEFAULT_BACK_OFF_MS;
	} else if (limit >= 0) {
		t->concurrency++;
		t->concurrency_limit = limit;
		what = "MaxConcurrencyLimit";
	}
	if (what != NULL && t->first[0] == '\0')
		(void)snprintf(t->first, sizeof(t->first), "%s on %s%s%s", what, op,
		               mailbox != NULL ? " for " : "", mailbox != NULL ? mailbox : "");
	if (back > CHECK_MAX_BACK_OFF_MS)
		back = CHECK_MAX_BACK_OFF_MS;
	return back;
}

/* post() and note throttling; a throttled answer is retried once after its back-off. */
static void ews_call(struct check *c, const char *op, const char *mailbox,
                     const struct ews_call_opts *o, struct answer *a)
{
	char first[64];
	int64_t back;

	post(c, o, a);
	back = throttle_note(c, op, mailbox, a);
	if (back < 0)
		return;
	(void)snprintf(first, sizeof(first), "%s",
	               a->code != NULL    ? a->code
	               : a->rc == -EAGAIN ? "HTTP 503"
	                                  : "?");
	answer_clear(a);
	uv_sleep((unsigned)back);
	post(c, o, a);
	(void)throttle_note(c, op, mailbox, a);
	(void)snprintf(a->retried, sizeof(a->retried), " (after %s, retried %" PRId64 " ms later)",
	               first, back);
}

static struct ews_header header(const struct check *c, const char *impersonate, bool tz_utc)
{
	return (struct ews_header){
		.version = c->version,
		.impersonate = impersonate,
		.id_type = c->cfg->id_type,
		.tz_utc = tz_utc,
	};
}

/* ---- what an EWS error means ----------------------------------------------------------------- */

enum fix_kind {
	FIX_NONE,
	FIX_IMPERSONATION,
	FIX_MAILBOX,
	FIX_PRIMARY,
	FIX_VERSION,
	FIX_THROTTLING,
};

static const struct code_help {
	const char *code;
	enum status status;
	enum fix_kind fix;
	const char *meaning;
} code_help[] = {
	{"ErrorAccessDenied", ST_FAIL, FIX_IMPERSONATION,
         "access denied: the service account lacks the rights for this mailbox"},
	{"ErrorExceededConnectionCount", ST_WARN, FIX_THROTTLING,
         "Exchange throttled the request: too many concurrent requests on this budget "
         "(EWSMaxConcurrency, or HangingConnectionLimit for a stream)"},
	{"ErrorExceededSubscriptionCount", ST_FAIL, FIX_THROTTLING,
         "the mailbox has reached EWSMaxSubscriptions (default 5000): stale subscriptions of "
         "another client, or of calsync under another account, must expire or be unsubscribed"},
	{"ErrorFolderNotFound", ST_FAIL, FIX_MAILBOX,
         "the mailbox has no calendar folder calsync may read"},
	{"ErrorImpersonateUserDenied", ST_FAIL, FIX_IMPERSONATION,
         "the service account may not impersonate this mailbox: it lacks the "
         "ApplicationImpersonation role, or the role's scope leaves this mailbox out"},
	{"ErrorImpersonationDenied", ST_FAIL, FIX_IMPERSONATION,
         "the service account may not impersonate anyone: it lacks the ApplicationImpersonation "
         "role (the ms-Exch-EPI-Impersonation right on the Client Access server)"},
	{"ErrorImpersonationFailed", ST_WARN, FIX_NONE,
         "Exchange failed while impersonating (EWS application pool, Active Directory or trust "
         "problems); check again, and alert if it stays"},
	{"ErrorIncorrectSchemaVersion", ST_FAIL, FIX_VERSION,
         "the server does not accept the configured RequestServerVersion"},
	{"ErrorInvalidExchangeImpersonationHeaderData", ST_FAIL, FIX_MAILBOX,
         "Exchange did not accept the mailbox's identifier in the impersonation header"},
	{"ErrorInvalidSchemaVersionForMailboxVersion", ST_FAIL, FIX_VERSION,
         "the mailbox's server does not accept the configured RequestServerVersion"},
	{"ErrorInvalidServerVersion", ST_FAIL, FIX_VERSION,
         "the server does not accept the configured RequestServerVersion"},
	{"ErrorMailboxMoveInProgress", ST_WARN, FIX_NONE,
         "the mailbox is being moved; check it again after the move"},
	{"ErrorNonExistentMailbox", ST_FAIL, FIX_MAILBOX,
         "Exchange has no mailbox with this address (a typing error, a removed mailbox, a user "
         "without a mailbox)"},
	{"ErrorNonPrimarySmtpAddress", ST_FAIL, FIX_PRIMARY,
         "this is not the mailbox's primary SMTP address"},
	{"ErrorServerBusy", ST_WARN, FIX_THROTTLING,
         "Exchange throttled the request (ErrorServerBusy), also after the back-off it asked for"},
	{"ErrorSyncFolderNotFound", ST_FAIL, FIX_MAILBOX,
         "the mailbox has no calendar folder calsync may read"},
	{"ErrorTooManyObjectsOpened", ST_WARN, FIX_THROTTLING,
         "Exchange throttled the request: too many objects open for this budget"},
};

/* Adds the step for an answer that is not NoError; meaning and fix from the code. */
static void step_error(struct check *c, const char *name, const char *mailbox, const char *op,
                       const struct answer *a)
{
	struct fix f = {0};
	const struct code_help *h = NULL;
	enum status st;
	const char *meaning;

	if (a->rc != 0) {
		if (a->rc == -EACCES)
			fix_auth(c, &f, a->http, ROLE_EWS);
		step_add(c, name, mailbox, a->rc == -EAGAIN ? ST_WARN : ST_FAIL, &f, "%s: %s%s", op,
		         a->err.msg, a->retried);
		return;
	}
	for (size_t i = 0; i < sizeof(code_help) / sizeof(code_help[0]) && h == NULL; i++)
		if (is_code(a, code_help[i].code))
			h = &code_help[i];
	if (h != NULL) {
		st = h->status;
		meaning = h->meaning;
		switch (h->fix) {
		case FIX_IMPERSONATION:
			fix_impersonation(c, &f);
			break;
		case FIX_MAILBOX:
			fix_mailbox(c, &f, mailbox != NULL ? mailbox : "");
			break;
		case FIX_PRIMARY:
			fix_primary(&f, mailbox != NULL ? mailbox : "");
			break;
		case FIX_VERSION:
			fix_version(&f);
			break;
		case FIX_THROTTLING:
			fix_throttling(c, &f, str_is(op, "GetStreamingEvents"));
			break;
		case FIX_NONE:
			break;
		}
	} else {
		const struct ews_error_info *e =
			a->code != NULL ? ews_error_lookup(a->code, strlen(a->code)) : NULL;
		enum ews_error_class cls = e != NULL ? e->cls : EWS_ERR_UNKNOWN;

		st = ST_WARN;
		switch (cls) {
		case EWS_ERR_TRANSIENT:
			meaning = "a transient server problem; check again later";
			break;
		case EWS_ERR_THROTTLED:
			meaning = "Exchange throttled the request";
			break;
		case EWS_ERR_SUBSCRIPTION_LOST:
			meaning = "the subscription was lost at once (the daemon would subscribe "
				  "again); check again later";
			break;
		case EWS_ERR_CLIENT_BUG:
			st = ST_FAIL;
			meaning =
				"Exchange refused calsync's request as invalid: a calsync bug or a "
				"server calsync does not support; please report it with this output";
			break;
		case EWS_ERR_MAILBOX_PERMANENT:
			st = ST_FAIL;
			meaning = "Exchange refuses this for the mailbox";
			break;
		case EWS_ERR_ACCOUNT_PERMANENT:
			st = ST_FAIL;
			meaning = "Exchange refuses this for the service account";
			break;
		case EWS_ERR_NONE:
		case EWS_ERR_UNKNOWN:
		default:
			meaning =
				"a code calsync does not expect here (the daemon treats unknown codes "
				"as transient)";
			break;
		}
	}
	step_add(c, name, mailbox, st, &f, "%s: %s: %s%s%s%s%s", op,
	         a->code != NULL ? a->code : "no ResponseCode", meaning,
	         a->text != NULL ? " (Exchange: \"" : "", a->text != NULL ? a->text : "",
	         a->text != NULL ? "\")" : "", a->retried);
}

static bool answer_ok(const struct answer *a)
{
	return a->rc == 0 && a->parsed && str_is(a->code, "NoError");
}

/* ---- config ---------------------------------------------------------------------------------- */

/* "DC=contoso,DC=example" from the service account's or the first mailbox's domain. */
static char *domain_dn(const struct check *c)
{
	const char *d = NULL;
	struct buf b;

	if (c->cfg->user != NULL && strchr(c->cfg->user, '@') != NULL)
		d = strchr(c->cfg->user, '@') + 1;
	else if (c->n_mbx > 0)
		d = strchr(c->mbx[0].smtp, '@') + 1;
	if (d == NULL || *d == '\0')
		d = "contoso.example";
	buf_init(&b, 4 * CFG_MAX_STRING);
	while (*d != '\0') {
		const char *dot = strchr(d, '.');
		size_t len = dot != NULL ? (size_t)(dot - d) : strlen(d);

		if (b.len > 0)
			(void)buf_append(&b, ",", 1, NULL);
		(void)buf_append(&b, "DC=", 3, NULL);
		(void)buf_append(&b, d, len, NULL);
		d += len;
		if (*d == '.')
			d++;
	}
	return buf_take(&b);
}

static void step_config(struct check *c, const struct cfg_warnings *w, bool given)
{
	const struct cfg *cfg = c->cfg;
	struct buf b;
	char *warns;
	char sample[96] = "";

	buf_init(&b, SIZE_MAX / 4);
	for (size_t i = 0; i < w->n; i++) {
		(void)buf_append(&b, i > 0 ? "; " : "", i > 0 ? 2 : 0, NULL);
		(void)buf_append(&b, w->lines[i], strlen(w->lines[i]), NULL);
	}
	if (w->dropped > 0) {
		char more[48];
		int n = snprintf(more, sizeof(more), "; and %zu more", w->dropped);

		(void)buf_append(&b, more, (size_t)n, NULL);
	}
	warns = buf_take(&b);
	if (given)
		(void)snprintf(sample, sizeof(sample), " (checking the %zu given with --mailbox)",
		               c->n_mbx);
	else if (cfg->n_mailboxes > c->n_mbx && c->n_mbx > 0)
		(void)snprintf(sample, sizeof(sample),
		               " (checking the first %zu; --mailbox to choose)", c->n_mbx);
	step_add(c, "config", NULL, w->n > 0 || w->dropped > 0 ? ST_WARN : ST_OK, NULL,
	         "%s: %s, %s %s, %s%s%s, RequestServerVersion %s, %zu mailbox%s%s%s%s", c->cfg_path,
	         cfg_notify_name(cfg->notify), cfg->ews_url != NULL ? "EWS" : "Autodiscover",
	         cfg->ews_url != NULL            ? cfg->ews_url
	         : cfg->autodiscover_url != NULL ? cfg->autodiscover_url
	                                         : "from the mail domain",
	         cfg->auth == EWS_AUTH_NONE ? "no <account>" : ews_auth_name(cfg->auth),
	         cfg->user != NULL ? " as " : "", cfg->user != NULL ? cfg->user : "", c->version,
	         cfg->n_mailboxes, cfg->n_mailboxes == 1 ? "" : "es", sample,
	         warns[0] != '\0' ? "; warnings: " : "", warns);
	free(warns);
}

/* ---- DNS, TCP, TLS, the methods offered ------------------------------------------------------ */

static bool step_dns(struct check *c, const struct url_parts *u, enum role role)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	unsigned char bin[16];
	char list[200] = "";
	size_t used = 0;
	unsigned n = 0;
	int rc;

	if (inet_pton(AF_INET, u->host, bin) == 1 || inet_pton(AF_INET6, u->host, bin) == 1) {
		step_add(c, "dns", NULL, ST_OK, NULL, "%s is an IP address: nothing to resolve",
		         u->host);
		return true;
	}
	rc = getaddrinfo(u->host, NULL, &hints, &res);
	if (rc != 0) {
		struct fix f = {0};

		if (role == ROLE_AUTODISCOVER && c->cfg->autodiscover_url == NULL)
			fix_say(&f,
			        "calsync derives the Autodiscover host from the mail domain. Publish "
			        "%s in DNS, or name the server in the configuration: <autodiscover "
			        "url=\"...\"> or <ews url=\"https://<server>/EWS/Exchange.asmx\">.",
			        u->host);
		else
			fix_say(&f,
			        "Check the host name in the configuration and this machine's DNS "
			        "(/etc/resolv.conf):");
		fix_cmd(&f, "getent hosts %s", u->host);
		step_add(c, "dns", NULL, ST_FAIL, &f, "cannot resolve %s: %s", u->host,
		         gai_strerror(rc));
		return false;
	}
	for (struct addrinfo *ai = res; ai != NULL && n < 4; ai = ai->ai_next) {
		char host[NI_MAXHOST];

		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), NULL, 0,
		                NI_NUMERICHOST) != 0 ||
		    strstr(list, host) != NULL)
			continue;
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
		                         n > 0 ? ", " : "", host);
		if (used >= sizeof(list))
			break;
		n++;
	}
	freeaddrinfo(res);
	step_add(c, "dns", NULL, ST_OK, NULL, "%s resolves to %s", u->host, list);
	return true;
}

static bool step_tcp(struct check *c, const char *url, const struct url_parts *u,
                     const struct probe *p)
{
	struct fix f = {0};

	if (p->res == CURLE_COULDNT_CONNECT || p->res == CURLE_COULDNT_RESOLVE_HOST ||
	    (p->res == CURLE_OPERATION_TIMEDOUT && p->connect_us == 0)) {
		fix_say(&f,
		        "Check that the server listens on port %ld and that no firewall between "
		        "this machine and it blocks the connection:",
		        u->port);
		fix_cmd(&f, "curl -sv -o /dev/null %s", url);
		step_add(c, "tcp", NULL, ST_FAIL, &f, "cannot connect to %s port %ld: %s%s",
		         u->host, u->port, p->errbuf,
		         p->res == CURLE_OPERATION_TIMEDOUT
		                 ? " (no answer: a firewall dropping packets, or a wrong address)"
		                 : " (refused: nothing listens there; unreachable: routing)");
		return false;
	}
	step_add(c, "tcp", NULL, ST_OK, NULL, "connected to %s port %ld in %" PRId64 " ms",
	         p->ip[0] ? p->ip : u->host, p->port ? p->port : u->port,
	         (int64_t)p->connect_us / 1000);
	return true;
}

static bool tls_failed(CURLcode r)
{
	switch (r) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		return true;
	default:
		return false;
	}
}

static void cert_commands(struct fix *f)
{
	fix_say(f, "On Exchange, the certificates and the one bound to IIS:");
	fix_cmd(f, "Get-ExchangeCertificate | fl "
	           "Thumbprint,Subject,Issuer,CertificateDomains,Services,NotAfter");
}

/* Says why verification failed, from OpenSSL's verify code and the certificate itself. */
static void explain_tls(const struct check *c, const char *url, const struct url_parts *u,
                        const struct probe *p, char *why, size_t why_size, struct fix *f)
{
	struct probe d;
	const struct cert *cert = &p->cert;
	const char *names;
	long v = p->verify_result;

	if (!cert->have) {
		/* The handshake was refused: read the certificate without verifying it. */
		probe_run(c, url, false, true, &d);
		cert = &d.cert;
	}
	names = cert->san[0] ? cert->san : cert->subject[0] ? cert->subject : "other names";
	if (p->res == CURLE_SSL_CACERT_BADFILE) {
		(void)snprintf(why, why_size, "cannot read the CA file <tls ca_file=\"%s\">: %s",
		               c->cfg->ca_file != NULL ? c->cfg->ca_file : "", p->errbuf);
		fix_say(f,
		        "Point <tls ca_file> at a readable PEM file holding the CA that issued the "
		        "server's certificate.");
	} else if (p->res == CURLE_PEER_FAILED_VERIFICATION && v == X509_ERR_CERT_HAS_EXPIRED) {
		(void)snprintf(why, why_size, "the certificate of %s (%s) expired on %s", u->host,
		               cert->subject, cert->expire[0] ? cert->expire : "an earlier date");
		fix_say(f, "Renew the certificate on Exchange and bind the new one to IIS:");
		fix_cmd(f, "Get-ExchangeCertificate | fl Thumbprint,Subject,CertificateDomains,"
		           "Services,NotAfter");
		fix_cmd(f, "Enable-ExchangeCertificate -Thumbprint <thumbprint of the new "
		           "certificate> -Services IIS");
	} else if (p->res == CURLE_PEER_FAILED_VERIFICATION && v == X509_ERR_CERT_NOT_YET_VALID) {
		(void)snprintf(
			why, why_size,
			"the certificate of %s is not valid yet: check the clock of this machine "
			"and of the server",
			u->host);
		fix_cmd(f, "timedatectl");
	} else if (p->res == CURLE_PEER_FAILED_VERIFICATION &&
	           (v == X509_ERR_UNABLE_TO_GET_ISSUER_CERT ||
	            v == X509_ERR_DEPTH_ZERO_SELF_SIGNED || v == X509_ERR_SELF_SIGNED_IN_CHAIN ||
	            v == X509_ERR_UNABLE_TO_GET_ISSUER_LOCAL ||
	            v == X509_ERR_UNABLE_TO_VERIFY_LEAF)) {
		(void)snprintf(why, why_size,
		               "the certificate of %s (%s, issued by %s) is not trusted: %s%s%s",
		               u->host, cert->subject[0] ? cert->subject : "?",
		               cert->issuer[0] ? cert->issuer : "?",
		               v == X509_ERR_DEPTH_ZERO_SELF_SIGNED ? "it is self-signed"
		                                                    : "its CA is unknown here",
		               c->cfg->ca_file != NULL ? "; the CA file does not hold its CA: "
		                                       : "; no <tls ca_file> is set: ",
		               p->errbuf);
		fix_say(f,
		        "Save the CA certificate that issued it (PEM) on this machine and name it "
		        "in the configuration: <tls ca_file=\"/etc/calsync/exchange-ca.pem\"/>. The "
		        "chain the server sends:");
		fix_cmd(f, "openssl s_client -connect %s:%ld -servername %s -showcerts </dev/null",
		        u->host, u->port, u->host);
		cert_commands(f);
	} else if (p->res == CURLE_PEER_FAILED_VERIFICATION &&
	           (v == X509_ERR_HOSTNAME_MISMATCH || strstr(p->errbuf, "subject name") != NULL)) {
		(void)snprintf(why, why_size, "the certificate names %s, not %s: %s", names,
		               u->host, p->errbuf);
		fix_say(f,
		        "Use a URL with a name the certificate holds (<ews url> or <autodiscover "
		        "url>), or give Exchange a certificate that names %s and bind it to IIS:",
		        u->host);
		cert_commands(f);
		fix_cmd(f, "Enable-ExchangeCertificate -Thumbprint <thumbprint> -Services IIS");
	} else if (p->res == CURLE_PEER_FAILED_VERIFICATION) {
		(void)snprintf(why, why_size,
		               "the certificate of %s was refused (OpenSSL verify code "
		               "%ld): %s",
		               u->host, v, p->errbuf);
		cert_commands(f);
	} else {
		(void)snprintf(why, why_size, "TLS handshake with %s failed: %s", u->host,
		               p->errbuf);
		fix_say(f,
		        "Check that port %ld speaks HTTPS and accepts TLS 1.2 or later:", u->port);
		fix_cmd(f, "openssl s_client -connect %s:%ld -servername %s </dev/null", u->host,
		        u->port, u->host);
	}
}

/* The TLS step. May replace *p by an unverified probe when the configuration turns
 * verification off. false when the endpoint cannot be used. */
static bool step_tls(struct check *c, const char *url, const struct url_parts *u, struct probe *p)
{
	struct fix f = {0};
	char why[600];
	int64_t expire_utc = 0;
	int64_t days;

	if (!u->https) {
		fix_say(&f, "Use the https:// URL of the virtual directory: over plain HTTP the "
		            "credentials (Basic: the password itself) and the calendars cross the "
		            "network readable.");
		fix_cmd(&f, "Get-WebServicesVirtualDirectory | fl Server,InternalUrl,ExternalUrl");
		step_add(c, "tls", NULL, ST_WARN, &f, "%s: plain HTTP, not encrypted", u->host);
		return true;
	}
	if (tls_failed(p->res) &&
	    !(p->appconnect_us > 0 && p->res != CURLE_PEER_FAILED_VERIFICATION)) {
		explain_tls(c, url, u, p, why, sizeof(why), &f);
		if (!c->cfg->insecure_skip_tls_verify) {
			step_add(c, "tls", NULL, ST_FAIL, &f, "%s", why);
			return false;
		}
		step_add(
			c, "tls", NULL, ST_WARN, &f,
			"%s; <tls insecure_skip_tls_verify=\"true\"> connects anyway, so anyone on "
			"the path can read the credentials",
			why);
		probe_run(c, url, false, false, p);
		return !tls_failed(p->res);
	}
	if (c->cfg->insecure_skip_tls_verify) {
		fix_say(&f,
		        "Remove insecure_skip_tls_verify from <tls>: the certificate is trusted.");
		step_add(
			c, "tls", NULL, ST_WARN, &f,
			"the certificate of %s is trusted, but <tls insecure_skip_tls_verify=\"true\"> "
			"turns checking off",
			u->host);
		return true;
	}
	days = p->cert.have && cert_time(p->cert.expire, &expire_utc)
	               ? (expire_utc - clock_now_utc()) / DAY_SEC
	               : INT64_MAX;
	if (days < CHECK_CERT_WARN_DAYS) {
		fix_say(&f, "Renew it on Exchange and bind the new one to IIS before it expires:");
		fix_cmd(&f, "Get-ExchangeCertificate | fl Thumbprint,Subject,CertificateDomains,"
		            "Services,NotAfter");
		fix_cmd(&f, "Enable-ExchangeCertificate -Thumbprint <thumbprint of the new "
		            "certificate> -Services IIS");
		step_add(c, "tls", NULL, ST_WARN, &f,
		         "the certificate of %s (%s) expires in %" PRId64 " day%s, on %s", u->host,
		         p->cert.subject, days, days == 1 ? "" : "s", p->cert.expire);
		return true;
	}
	step_add(c, "tls", NULL, ST_OK, NULL, "certificate of %s trusted%s%s%s%s%s%s%s%s%s",
	         u->host, p->cert.subject[0] ? ": " : "", p->cert.subject,
	         p->cert.san[0] ? " (" : "", p->cert.san, p->cert.san[0] ? ")" : "",
	         p->cert.issuer[0] ? ", issued by " : "", p->cert.issuer,
	         p->cert.expire[0] ? ", valid until " : "", p->cert.expire);
	return true;
}

static unsigned auth_needs(enum ews_auth a)
{
	switch (a) {
	case EWS_AUTH_BASIC:
		return OFFER_BASIC;
	case EWS_AUTH_NTLM:
		return OFFER_NTLM;
	case EWS_AUTH_NEGOTIATE:
		return OFFER_NEGOTIATE;
	case EWS_AUTH_BEARER:
		return OFFER_BEARER;
	case EWS_AUTH_NONE:
	default:
		return 0;
	}
}

static const char *auth_switch(enum ews_auth a)
{
	switch (a) {
	case EWS_AUTH_BASIC:
		return "-BasicAuthentication $true";
	case EWS_AUTH_BEARER:
		return "-OAuthAuthentication $true";
	case EWS_AUTH_NTLM:
	case EWS_AUTH_NEGOTIATE:
	case EWS_AUTH_NONE:
	default:
		return "-WindowsAuthentication $true";
	}
}

static bool step_auth_methods(struct check *c, const char *url, const struct url_parts *u,
                              const struct probe *p, enum role role)
{
	struct fix f = {0};
	enum ews_auth a = c->cfg->auth;
	unsigned need = auth_needs(a);
	const char *noun = vdir_noun(role);

	if (p->res != CURLE_OK) {
		fix_cmd(&f, "curl -sv -o /dev/null %s", url);
		step_add(c, "auth-methods", NULL, ST_FAIL, &f, "no HTTP answer from %s: %s",
		         u->host, p->errbuf);
		return false;
	}
	if (p->http == 401) {
		if (p->offered_names[0] == '\0') {
			fix_cmd(&f, "Get-%s | fl *Authentication*", noun);
			step_add(c, "auth-methods", NULL, ST_FAIL, &f,
			         "%s answers 401 without naming any method (WWW-Authenticate)",
			         u->host);
			return true;
		}
		if (a == EWS_AUTH_NONE) {
			fix_say(&f,
			        "Add the service account to the configuration: <account user=\"...\" "
			        "auth=\"ntlm\" password_file=\"/etc/calsync/password\"/>.");
			step_add(c, "auth-methods", NULL, ST_FAIL, &f,
			         "%s offers %s, but the configuration has no <account>", u->host,
			         p->offered_names);
			return true;
		}
		if ((p->offered & need) == 0) {
			fix_say(&f,
			        "Enable %s on the virtual directory, or set <account auth=\"...\"> to a "
			        "method the server offers:",
			        ews_auth_name(a));
			fix_cmd(&f, "Get-%s | fl *Authentication*", noun);
			fix_cmd(&f, "Get-%s | Set-%s %s", noun, noun, auth_switch(a));
			step_add(c, "auth-methods", NULL, ST_FAIL, &f,
			         "%s offers %s, not %s as configured", u->host, p->offered_names,
			         ews_auth_name(a));
			return true;
		}
		if (a == EWS_AUTH_NEGOTIATE && (p->offered & OFFER_NTLM) == 0) {
			step_add(
				c, "auth-methods", NULL, ST_WARN, NULL,
				"%s offers %s; negotiate needs a Kerberos ticket here, since without "
				"NTLM on offer it has no fallback",
				u->host, p->offered_names);
			return true;
		}
		step_add(c, "auth-methods", NULL, ST_OK, NULL, "%s offers %s; configured: %s",
		         u->host, p->offered_names, ews_auth_name(a));
		return true;
	}
	if (p->http == 200 || p->http == 500 || p->http == 400) {
		step_add(c, "auth-methods", NULL, ST_OK, NULL,
		         "%s answered without asking for credentials (HTTP %ld)", u->host, p->http);
		return true;
	}
	if (p->http >= 300 && p->http < 400) {
		fix_say(&f,
		        "calsync follows no redirect: configure the URL the server redirects to, "
		        "or its own:");
		fix_cmd(&f, "Get-%s | fl Server,InternalUrl,ExternalUrl", noun);
		step_add(c, "auth-methods", NULL, ST_FAIL, &f, "%s redirects (HTTP %ld) to '%s'",
		         u->host, p->http, p->redirect);
		return false;
	}
	if (p->http == 503)
		c->thr.other++;
	if (p->http == 404) {
		fix_say(&f, "The URL names no %s endpoint; the server's URLs:",
		        role == ROLE_AUTODISCOVER ? "Autodiscover" : "EWS");
		fix_cmd(&f, "Get-%s | fl Server,InternalUrl,ExternalUrl", noun);
	}
	step_add(c, "auth-methods", NULL, ST_FAIL, &f, "%s answered HTTP %ld to %s", u->host,
	         p->http, url);
	return false;
}

/* dns, tcp, tls and auth-methods of one endpoint. false when nothing more can be sent there. */
static bool check_endpoint(struct check *c, const char *url, enum role role)
{
	struct url_parts u = {0};
	struct probe p;
	struct err err = {0};

	if (url_split(url, &u, &err) < 0) {
		step_add(c, "dns", NULL, ST_FAIL, NULL, "%s", err.msg);
		return false;
	}
	if (!step_dns(c, &u, role)) {
		skip(c, "tcp", "the host name does not resolve");
		skip(c, "tls", "the host name does not resolve");
		skip(c, "auth-methods", "the host name does not resolve");
		return false;
	}
	probe_run(c, url, true, false, &p);
	if (!step_tcp(c, url, &u, &p)) {
		skip(c, "tls", "no connection");
		skip(c, "auth-methods", "no connection");
		return false;
	}
	if (!step_tls(c, url, &u, &p)) {
		skip(c, "auth-methods", "TLS failed");
		return false;
	}
	return step_auth_methods(c, url, &u, &p, role);
}

/* ---- Autodiscover ---------------------------------------------------------------------------- */

static bool check_autodiscover(struct check *c, const char *ad_url)
{
	const char *names[CHECK_AUTODISCOVER_BATCH];
	const char *self = NULL;
	size_t n_ok = 0;
	char first_url[256] = "";
	struct err err = {0};

	if (c->n_mbx == 0 && c->cfg->user != NULL && strchr(c->cfg->user, '@') != NULL)
		self = c->cfg->user; /* the service account has a mailbox (PRODUCT.md) */
	if (c->n_mbx == 0 && self == NULL) {
		struct fix f = {0};

		fix_say(&f, "Give a mailbox to look up (--mailbox SMTP), list mailboxes in "
		            "<mailboxes>, or configure <ews url=\"...\">.");
		step_add(c, "autodiscover", NULL, ST_FAIL, &f,
		         "no mailbox to ask Autodiscover about");
		return false;
	}
	for (size_t at = 0; at < (self != NULL ? 1 : c->n_mbx); at += CHECK_AUTODISCOVER_BATCH) {
		size_t n = self != NULL ? 1 : c->n_mbx - at;
		struct ews_call_opts o = {.url = ad_url, .soap_action = GUS_ACTION};
		struct answer a;

		if (n > CHECK_AUTODISCOVER_BATCH)
			n = CHECK_AUTODISCOVER_BATCH;
		for (size_t i = 0; i < n; i++)
			names[i] = self != NULL ? self : c->mbx[at + i].smtp;
		if (ews_req_get_user_settings(names, n, ad_url, NULL, &c->req, &err) < 0) {
			step_add(c, "autodiscover", NULL, ST_FAIL, NULL, "%s", err.msg);
			return false;
		}
		ews_call(c, "GetUserSettings", NULL, &o, &a);
		if (a.rc != 0 || !a.parsed) {
			struct fix f = {0};
			char *why = NULL;

			if (a.rc == -EACCES && a.http == 401 && ntlm_over_tls(c, ad_url))
				why = explain_ntlm_401(c, ad_url, a.http, ROLE_AUTODISCOVER, &f);
			else if (a.rc == -EACCES)
				fix_auth(c, &f, a.http, ROLE_AUTODISCOVER);
			step_add(c, "autodiscover", NULL, ST_FAIL, &f, "GetUserSettings: %s%s",
			         why != NULL ? why : a.err.msg, a.retried);
			free(why);
			answer_clear(&a);
			return false;
		}
		if (a.resp.autodiscover_error != NULL &&
		    strcmp(a.resp.autodiscover_error, "NoError") != 0) {
			step_add(c, "autodiscover", NULL, ST_FAIL, NULL,
			         "GetUserSettings: Autodiscover answered %s",
			         a.resp.autodiscover_error);
			answer_clear(&a);
			return false;
		}
		for (size_t i = 0; i < n; i++) {
			const struct ews_user_settings *us = NULL;
			const char *url;

			/* UserResponses come in the order of the request's Users. */
			if (a.resp.n_users == n)
				us = &a.resp.users[i];
			for (size_t k = 0; us == NULL && k < a.resp.n_users; k++)
				if (a.resp.users[k].mailbox != NULL &&
				    strcasecmp(a.resp.users[k].mailbox, names[i]) == 0)
					us = &a.resp.users[k];
			url = us == NULL                     ? NULL
			      : us->internal_ews_url != NULL ? us->internal_ews_url
			                                     : us->external_ews_url;
			if (us != NULL && us->error_code != NULL &&
			    strcmp(us->error_code, "NoError") != 0)
				url = NULL;
			if (url != NULL && first_url[0] == '\0')
				(void)snprintf(first_url, sizeof(first_url), "%s", url);
			if (self != NULL)
				continue;
			if (url != NULL) {
				c->mbx[at + i].url = xstrdup(url);
				n_ok++;
			} else {
				c->mbx[at + i].ad_error = strf(
					"%s%s%s",
					us != NULL && us->error_code ? us->error_code
								     : "no EWS URL",
					us != NULL && us->error_message ? ": " : "",
					us != NULL && us->error_message ? us->error_message : "");
			}
		}
		answer_clear(&a);
	}
	if (first_url[0] == '\0') {
		struct fix f = {0};

		fix_say(&f, "Check the mailboxes' addresses, or configure <ews url=\"...\">:");
		fix_cmd(&f, "Get-ClientAccessService | fl Name,AutoDiscoverServiceInternalUri");
		step_add(c, "autodiscover", NULL, ST_FAIL, &f, "%s gave no EWS URL for %s", ad_url,
		         self != NULL    ? self
		         : c->n_mbx == 1 ? c->mbx[0].smtp
		                         : "any sample mailbox");
		return false;
	}
	c->ews_url = xstrdup(first_url);
	if (self != NULL)
		step_add(c, "autodiscover", NULL, ST_OK, NULL,
		         "EWS URL %s (for the service account)", first_url);
	else
		step_add(c, "autodiscover", NULL, ST_OK, NULL,
		         "EWS URL %s for %zu of %zu mailbox%s", first_url, n_ok, c->n_mbx,
		         c->n_mbx == 1 ? "" : "es");
	return true;
}

/* ---- authentication and version -------------------------------------------------------------- */

static const char *product_name(long major, long minor, long build)
{
	if (major == 15 && minor == 2)
		return build >= 2562 ? "Exchange Server Subscription Edition" : "Exchange 2019";
	if (major == 15 && minor == 1)
		return "Exchange 2016";
	if (major == 15 && minor == 0)
		return "Exchange 2013";
	if (major == 14)
		return "Exchange 2010";
	if (major == 8)
		return "Exchange 2007";
	return "an unknown Exchange version";
}

static void step_version(struct check *c, const struct answer *a)
{
	struct fix f = {0};
	const char *v = a->resp.server_version;
	long part[3] = {0, 0, 0};
	const char *s = v;
	char *end;
	const char *name;

	if (is_code(a, "ErrorInvalidServerVersion") || is_code(a, "ErrorIncorrectSchemaVersion") ||
	    is_code(a, "ErrorInvalidSchemaVersionForMailboxVersion")) {
		fix_version(&f);
		step_add(c, "ews-version", NULL, ST_FAIL, &f,
		         "%s refuses RequestServerVersion %s (%s)", v != NULL ? v : "the server",
		         c->version, a->code);
		return;
	}
	if (v == NULL) {
		step_add(
			c, "ews-version", NULL, ST_WARN, NULL,
			"the answer carried no ServerVersionInfo: the server's version is unknown");
		return;
	}
	for (int i = 0; i < 3 && s != NULL && *s >= '0' && *s <= '9'; i++) {
		part[i] = strtol(s, &end, 10);
		s = *end == '.' ? end + 1 : NULL;
	}
	name = product_name(part[0], part[1], part[2]);
	if (part[0] < 15) {
		step_add(c, "ews-version", NULL, ST_FAIL, NULL,
		         "%s (%s): calsync needs Exchange 2013 or later", name, v);
		return;
	}
	if (part[0] == 15 && part[1] == 0) {
		step_add(c, "ews-version", NULL, ST_WARN, NULL,
		         "%s (%s): out of support; its HangingConnectionLimit is 3, not 10", name,
		         v);
		return;
	}
	step_add(c, "ews-version", NULL, ST_OK, NULL, "%s (%s); RequestServerVersion %s accepted",
	         name, v, c->version);
}

static bool check_authentication(struct check *c)
{
	struct ews_header h = header(c, NULL, false);
	struct ews_call_opts o = {.url = c->ews_url};
	struct answer a;
	struct err err = {0};
	struct fix f = {0};
	char who[CFG_MAX_STRING + 64];

	(void)snprintf(who, sizeof(who), "%s%s%s", ews_auth_name(c->cfg->auth),
	               c->cfg->user != NULL ? " as " : "",
	               c->cfg->user != NULL ? c->cfg->user : "");
	/* The service account's own calendar folder, without impersonation: an answer that is
	 * not 401 means the credentials work. */
	if (ews_req_get_folder(&h, false, &c->req, &err) < 0) {
		step_add(c, "authentication", NULL, ST_FAIL, NULL, "%s", err.msg);
		skip(c, "ews-version", "no request could be written");
		return false;
	}
	ews_call(c, "GetFolder", NULL, &o, &a);
	if (a.rc != 0 && !(a.rc == -EAGAIN && a.http == 503)) {
		char *why = NULL;

		if (a.rc == -EACCES && a.http == 401 && ntlm_over_tls(c, c->ews_url))
			why = explain_ntlm_401(c, c->ews_url, a.http, ROLE_EWS, &f);
		else if (a.rc == -EACCES)
			fix_auth(c, &f, a.http, ROLE_EWS);
		step_add(c, "authentication", NULL, ST_FAIL, &f, "%s: %s", who,
		         why != NULL ? why : a.err.msg);
		free(why);
		skip(c, "ews-version", "authentication failed");
		answer_clear(&a);
		return false;
	}
	if (a.rc != 0) {
		step_add(c, "authentication", NULL, ST_WARN, NULL,
		         "%s: not confirmed, the server is busy: %s", who, a.err.msg);
	} else if (is_code(&a, "ErrorNonExistentMailbox") ||
	           is_code(&a, "ErrorMissingEmailAddress")) {
		char *q = ps_quote(c->cfg->user != NULL ? c->cfg->user : "svc-calsync");

		fix_say(&f, "The service account needs a mailbox of its own:");
		fix_cmd(&f, "Enable-Mailbox -Identity %s", q);
		free(q);
		step_add(c, "authentication", NULL, ST_WARN, &f,
		         "%s accepted by the server, but the account has no mailbox (%s)", who,
		         a.code);
	} else {
		char *ep = ntlm_over_tls(c, c->ews_url)
		                   ? describe_extended_protection(c, c->ews_url)
		                   : xstrdup("");

		step_add(c, "authentication", NULL, ST_OK, NULL, "%s accepted by the server%s", who,
		         ep);
		free(ep);
	}
	step_version(c, &a);
	answer_clear(&a);
	return true;
}

/* ---- per mailbox ----------------------------------------------------------------------------- */

static void check_impersonation(struct check *c, const struct mbx *m, bool *out_ok)
{
	struct ews_header h = header(c, m->smtp, true);
	struct ews_call_opts o = {.url = m->url, .anchor_mailbox = m->smtp};
	int64_t now = clock_now_utc();
	int64_t midnight = now - ((now % DAY_SEC) + DAY_SEC) % DAY_SEC;
	struct ews_find_calendar fc = {
		.start_utc = midnight - c->cfg->window_past_days * DAY_SEC,
		.end_utc = now + c->cfg->window_ahead_days * DAY_SEC,
	};
	char from[ISO8601_FORMAT_SIZE] = "";
	char to[ISO8601_FORMAT_SIZE] = "";
	struct answer a;
	struct err err = {0};

	*out_ok = false;
	if (ews_req_find_calendar(&h, &fc, &c->req, &err) < 0) {
		step_add(c, "impersonation", m->smtp, ST_FAIL, NULL, "%s", err.msg);
		return;
	}
	ews_call(c, "FindItem", m->smtp, &o, &a);
	if (!answer_ok(&a)) {
		step_error(c, "impersonation", m->smtp, "FindItem", &a);
		answer_clear(&a);
		return;
	}
	(void)iso8601_format(fc.start_utc, from, NULL);
	(void)iso8601_format(fc.end_utc, to, NULL);
	step_add(c, "impersonation", m->smtp, ST_OK, NULL,
	         "CalendarView read %zu appointment%s from %.10s to %.10s%s", a.msg->n_items,
	         a.msg->n_items == 1 ? "" : "s", from, to, a.retried);
	*out_ok = true;
	answer_clear(&a);
}

/* GetStreamingEvents until its first envelope. */
struct stream_probe {
	struct ews_call *call;
	struct ews_stream *framer;
	bool done;
	bool got;
	struct answer first; /* the first envelope */
	struct answer end;   /* the done callback's, when the call ended without one */
	int64_t start_usec;
	int64_t first_usec;
};

static int sp_on_envelope(void *ctx, const char *xml, size_t len, size_t offset)
{
	struct stream_probe *sp = ctx;

	(void)offset;
	if (sp->got)
		return -ECANCELED; /* cancelled below: stop the framer too */
	sp->got = true;
	sp->first_usec = clock_now_usec();
	answer_parse(&sp->first, xml, len);
	/* Enough: cancelling inside the chunk callback is allowed; done then never fires. */
	ews_transport_cancel(sp->call);
	sp->call = NULL;
	sp->done = true;
	return 0;
}

static int sp_on_chunk(void *ctx, const char *data, size_t len, struct err *err)
{
	struct stream_probe *sp = ctx;

	return ews_stream_feed(sp->framer, data, len, err);
}

static void sp_on_done(void *ctx, struct ews_call *call, const struct ews_result *r)
{
	struct stream_probe *sp = ctx;

	(void)call;
	sp->call = NULL;
	sp->done = true;
	if (r->http_status == 200 && r->rc == 0) {
		/* The stream ended (Closed) before a whole envelope came: as good as none. */
		sp->end.rc = -EPROTO;
		sp->end.http = 200;
		(void)err_set(&sp->end.err, -EPROTO, "the stream ended without a whole envelope");
		return;
	}
	answer_fill(&sp->end, r);
}

/* The first envelope (or the failure) of a stream on sub_id, in *a. */
static void stream_first(struct check *c, const struct mbx *m, const struct ews_call_opts *base,
                         struct answer *a, int64_t *out_first_ms)
{
	struct stream_probe sp = {0};
	struct ews_call_opts o = *base;
	struct err err = {0};

	o.chunk_fn = sp_on_chunk;
	o.idle_timeout_usec = CHECK_STREAM_IDLE_USEC;
	o.timeout_usec = CHECK_STREAM_CAP_USEC;
	sp.framer = ews_stream_new(EWS_MAX_ENVELOPE, sp_on_envelope, &sp);
	sp.start_usec = clock_now_usec();
	memset(a, 0, sizeof(*a));
	if (ews_transport_post(c->t, &o, c->req.data, c->req.len, sp_on_done, &sp, &sp.call, &err) <
	    0) {
		a->rc = err.code < 0 ? err.code : -EIO;
		a->err = err;
	} else if (!wait_done(c, &sp.done)) {
		a->rc = -EIO;
		(void)err_set(&a->err, -EIO, "the transport stopped without an answer");
	} else if (sp.got) {
		*a = sp.first;
		memset(&sp.first, 0, sizeof(sp.first));
		a->http = 200;
		*out_first_ms = (sp.first_usec - sp.start_usec) / USEC_PER_MSEC;
	} else {
		*a = sp.end;
		memset(&sp.end, 0, sizeof(sp.end));
	}
	ews_stream_free(sp.framer);
	answer_clear(&sp.first);
	answer_clear(&sp.end);
	(void)throttle_note(c, "GetStreamingEvents", m->smtp, a);
}

static void check_subscription(struct check *c, const struct mbx *m)
{
	bool streaming = c->cfg->notify == CFG_NOTIFY_STREAM;
	const char *kind = streaming ? "streaming" : "pull";
	struct ews_header h = header(c, m->smtp, false);
	struct ews_subscribe s = {.streaming = streaming,
	                          .timeout_min = streaming ? 0 : CHECK_PULL_TIMEOUT_MIN};
	struct ews_call_opts o = {
		.url = m->url, .anchor_mailbox = m->smtp, .prefer_affinity = true};
	struct answer a;
	struct answer mid = {0};
	struct answer un;
	struct err err = {0};
	char *id = NULL;
	char *wm = NULL;
	char *cookie = NULL;
	int64_t first_ms = -1;
	char middle[200] = "";
	struct fix f = {0};

	if (ews_req_subscribe(&h, &s, &c->req, &err) < 0) {
		step_add(c, "subscription", m->smtp, ST_FAIL, NULL, "%s", err.msg);
		return;
	}
	ews_call(c, "Subscribe", m->smtp, &o, &a);
	if (!answer_ok(&a) || a.msg->subscription_id == NULL) {
		if (answer_ok(&a))
			step_add(c, "subscription", m->smtp, ST_FAIL, NULL,
			         "Subscribe (%s): NoError without a SubscriptionId", kind);
		else
			step_error(c, "subscription", m->smtp,
			           streaming ? "Subscribe (streaming)" : "Subscribe (pull)", &a);
		answer_clear(&a);
		return;
	}
	id = xstrdup(a.msg->subscription_id);
	wm = a.msg->watermark != NULL ? xstrdup(a.msg->watermark) : NULL;
	cookie = a.cookie != NULL ? xstrdup(a.cookie) : NULL;
	answer_clear(&a);
	/* The rest goes to the mailbox server that holds the subscription (EWS-REFERENCE 4.4). */
	o.backend_cookie = cookie;

	if (streaming) {
		const char *ids[1] = {id};

		if (ews_req_get_streaming_events(&h, ids, 1, 1, &c->req, &err) == 0) {
			stream_first(c, m, &o, &mid, &first_ms);
		} else {
			mid.rc = err.code;
			mid.err = err;
		}
	} else if (wm != NULL && ews_req_get_events(&h, id, wm, &c->req, &err) == 0) {
		ews_call(c, "GetEvents", m->smtp, &o, &mid);
	} else {
		mid.rc = -EPROTO;
		(void)err_set(&mid.err, -EPROTO, "%s",
		              wm == NULL ? "Subscribe gave no watermark" : err.msg);
	}

	/* Unsubscribe whatever happened in between. */
	memset(&un, 0, sizeof(un));
	if (ews_req_unsubscribe(&h, id, &c->req, &err) == 0) {
		ews_call(c, "Unsubscribe", m->smtp, &o, &un);
	} else {
		un.rc = err.code;
		un.err = err;
	}

	if (!answer_ok(&mid)) {
		const char *op = streaming ? "GetStreamingEvents" : "GetEvents";

		if (streaming && mid.rc == -ETIMEDOUT) {
			fix_say(&f,
			        "Exchange sends the first envelope of a stream at once. A proxy, "
			        "load balancer or TLS inspection between calsync and Exchange that "
			        "buffers answers holds it back: let /EWS/Exchange.asmx pass unbuffered, "
			        "or use <advise Object=\"EwsPull\">.");
			step_add(c, "subscription", m->smtp, ST_FAIL, &f,
			         "GetStreamingEvents: no envelope within %" PRId64 " s: %s",
			         CHECK_STREAM_IDLE_USEC / USEC_PER_SEC, mid.err.msg);
		} else {
			step_error(c, "subscription", m->smtp, op, &mid);
		}
	} else if (!answer_ok(&un)) {
		if (streaming)
			fix_say(&f, "No action needed: Exchange drops a streaming subscription "
			            "without a connection on its own (after about 30 minutes).");
		else
			fix_say(&f,
			        "No action needed: the pull subscription expires on its own after "
			        "%u minutes.",
			        CHECK_PULL_TIMEOUT_MIN);
		step_add(c, "subscription", m->smtp, ST_WARN, &f,
		         "Subscribe and %s worked, but Unsubscribe failed: %s%s%s",
		         streaming ? "GetStreamingEvents" : "GetEvents",
		         un.code != NULL ? un.code : un.err.msg, un.text != NULL ? ": " : "",
		         un.text != NULL ? un.text : "");
	} else {
		if (streaming)
			(void)snprintf(middle, sizeof(middle),
			               "GetStreamingEvents (first envelope after %" PRId64 " ms)",
			               first_ms);
		else
			(void)snprintf(middle, sizeof(middle), "GetEvents");
		step_add(c, "subscription", m->smtp, ST_OK, NULL,
		         "%s subscription: Subscribe, %s, Unsubscribe%s", kind, middle,
		         cookie != NULL ? " (with the affinity cookie Subscribe set)" : "");
	}
	answer_clear(&mid);
	answer_clear(&un);
	free(id);
	free(wm);
	free(cookie);
}

static void check_mailboxes(struct check *c)
{
	if (c->n_mbx == 0) {
		struct fix f = {0};

		fix_say(&f, "Give one with --mailbox SMTP, or list the mailboxes in <mailboxes>.");
		step_add(c, "impersonation", NULL, ST_WARN, &f,
		         "no mailbox to test impersonation with");
		skip(c, "subscription", "no mailbox");
		return;
	}
	for (size_t i = 0; i < c->n_mbx; i++) {
		struct mbx *m = &c->mbx[i];
		bool ok = false;

		progress(c, i, m->smtp);
		if (m->url == NULL) {
			struct fix f = {0};

			fix_mailbox(c, &f, m->smtp);
			step_add(c, "impersonation", m->smtp, ST_FAIL, &f,
			         "Autodiscover found no EWS URL: %s",
			         m->ad_error != NULL ? m->ad_error : "no answer");
		} else {
			check_impersonation(c, m, &ok);
		}
		if (ok)
			check_subscription(c, m);
		else
			step_add(c, "subscription", m->smtp, ST_SKIP, NULL,
			         "not run: the calendar cannot be read");
		progress(c, i + 1, NULL);
	}
}

/* ---- throttling ------------------------------------------------------------------------------ */

static void check_throttling(struct check *c)
{
	const struct throttle *t = &c->thr;
	struct fix f = {0};
	char conc[96];
	char hang[96];
	char subs[96];
	char busy[96] = "";
	bool seen = t->server_busy || t->concurrency || t->hanging || t->subscriptions || t->other;

	if (c->answers == 0) {
		skip(c, "throttling", "no EWS request was answered");
		return;
	}
	if (t->concurrency && t->concurrency_limit >= 0)
		(void)snprintf(
			conc, sizeof(conc),
			"EWSMaxConcurrency observed (%u answer%s, MaxConcurrencyLimit %" PRId64 ")",
			t->concurrency, t->concurrency == 1 ? "" : "s", t->concurrency_limit);
	else if (t->concurrency)
		(void)snprintf(conc, sizeof(conc), "EWSMaxConcurrency observed (%u answer%s)",
		               t->concurrency, t->concurrency == 1 ? "" : "s");
	else
		(void)snprintf(conc, sizeof(conc), "EWSMaxConcurrency not observed (default %d)",
		               EX_DEFAULT_MAX_CONCURRENCY);
	if (t->hanging && t->hanging_limit >= 0)
		(void)snprintf(hang, sizeof(hang),
		               "HangingConnectionLimit observed (%u answer%s, limit %" PRId64 ")",
		               t->hanging, t->hanging == 1 ? "" : "s", t->hanging_limit);
	else if (t->hanging)
		(void)snprintf(hang, sizeof(hang), "HangingConnectionLimit observed (%u answer%s)",
		               t->hanging, t->hanging == 1 ? "" : "s");
	else
		(void)snprintf(hang, sizeof(hang),
		               "HangingConnectionLimit not observed (default %d)",
		               EX_DEFAULT_HANGING_LIMIT);
	if (t->subscriptions)
		(void)snprintf(subs, sizeof(subs), "EWSMaxSubscriptions observed (%u answer%s)",
		               t->subscriptions, t->subscriptions == 1 ? "" : "s");
	else
		(void)snprintf(subs, sizeof(subs), "EWSMaxSubscriptions not observed (default %d)",
		               EX_DEFAULT_MAX_SUBSCRIPTIONS);
	if (t->server_busy && t->max_back_off_ms >= 0)
		(void)snprintf(busy, sizeof(busy),
		               "; ErrorServerBusy %u time%s (BackOffMilliseconds up to %" PRId64
		               ")",
		               t->server_busy, t->server_busy == 1 ? "" : "s", t->max_back_off_ms);
	else if (t->server_busy)
		(void)snprintf(busy, sizeof(busy), "; ErrorServerBusy %u time%s", t->server_busy,
		               t->server_busy == 1 ? "" : "s");
	if (t->other)
		(void)snprintf(busy + strlen(busy), sizeof(busy) - strlen(busy),
		               "; %u other busy answer%s", t->other, t->other == 1 ? "" : "s");
	if (!seen) {
		step_add(c, "throttling", NULL, ST_OK, NULL, "no throttling answer: %s; %s; %s",
		         conc, hang, subs);
		return;
	}
	fix_throttling(c, &f, t->hanging > 0);
	step_add(c, "throttling", NULL, ST_WARN, &f, "throttled (first: %s): %s; %s; %s%s",
	         t->first, conc, hang, subs, busy);
}

/* ---- output ---------------------------------------------------------------------------------- */

static json_t *j_str(const char *s)
{
	json_t *j;
	char *copy;

	if (s == NULL)
		return json_null();
	j = json_string(s);
	if (j != NULL)
		return j;
	/* Not UTF-8 (a file name in a config error): keep what is ASCII. */
	copy = xstrdup(s);
	for (char *p = copy; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j != NULL ? j : json_null();
}

static void count(const struct check *c, size_t out[4])
{
	memset(out, 0, 4 * sizeof(out[0]));
	for (size_t i = 0; i < c->n_steps; i++)
		out[c->steps[i].status]++;
}

static int print_json(const struct check *c, int status)
{
	json_t *root = json_object();
	json_t *counts = json_object();
	json_t *steps = json_array();
	size_t n[4];
	char *text;

	count(c, n);
	json_object_set_new(root, "config", j_str(c->cfg_path));
	json_object_set_new(root, "ok", json_boolean(status == 0));
	json_object_set_new(root, "exit_status", json_integer(status));
	for (int i = 0; i < 4; i++)
		json_object_set_new(counts, status_json[i], json_integer((json_int_t)n[i]));
	json_object_set_new(root, "counts", counts);
	for (size_t i = 0; i < c->n_steps; i++) {
		const struct step *s = &c->steps[i];
		json_t *o = json_object();
		json_t *cmds = json_array();

		json_object_set_new(o, "name", json_string(s->name));
		json_object_set_new(o, "mailbox", j_str(s->mailbox));
		json_object_set_new(o, "status", json_string(status_json[s->status]));
		json_object_set_new(o, "detail", j_str(s->detail));
		if (s->fix.n > 0) {
			char *t = fix_text(&s->fix);

			json_object_set_new(o, "fix", j_str(t));
			free(t);
		} else {
			json_object_set_new(o, "fix", json_null());
		}
		for (size_t k = 0; k < s->fix.n; k++)
			if (s->fix.lines[k].command)
				json_array_append_new(cmds, j_str(s->fix.lines[k].text));
		json_object_set_new(o, "commands", cmds);
		json_array_append_new(steps, o);
	}
	json_object_set_new(root, "steps", steps);
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (text == NULL) {
		fprintf(stderr, "calsync check: cannot encode the result as JSON\n");
		return EXIT_FAILURE;
	}
	printf("%s\n", text);
	free(text);
	return status;
}

static int finish(struct check *c, int status)
{
	size_t n[4];

	progress_clear(c);
	if (c->json)
		return print_json(c, status);
	count(c, n);
	printf("\n%zu ok, %zu warn, %zu FAIL, %zu skipped: %s\n", n[ST_OK], n[ST_WARN], n[ST_FAIL],
	       n[ST_SKIP],
	       status == 0             ? (n[ST_WARN] > 0 ? "passed, with warnings" : "passed")
	       : status == EXIT_CONFIG ? "the configuration must be fixed first"
	                               : "failed");
	return status;
}

/* ---- command line ---------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: calsync check [-c FILE] [--mailbox SMTP ...] [--json]\n"
	        "\n"
	        "Tests the configuration against the real Exchange server: DNS, TCP and TLS,\n"
	        "authentication, the server version, impersonation and subscriptions of sample\n"
	        "mailboxes, throttling. Prints the Exchange Management Shell commands that fix\n"
	        "what fails.\n"
	        "\n"
	        "  -c, --config FILE   the configuration (default %s)\n"
	        "  -m, --mailbox SMTP  a mailbox to check (repeatable; default: the first %u\n"
	        "                      configured ones)\n"
	        "  --json              one JSON document instead of lines\n"
	        "  -h, --help          this help\n"
	        "\n"
	        "Exit status: 0 nothing failed, 1 a check failed, 2 a configuration or usage error.\n",
	        CFG_DEFAULT_PATH, CHECK_SAMPLE);
}

static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr,
	        "calsync check: %s '%s'\nTry 'calsync check --help' for more information.\n", what,
	        arg);
	return EXIT_CONFIG;
}

/* Plain ASCII local@domain, as <mailboxes> accepts. */
static bool smtp_ok(const char *s)
{
	size_t len = strlen(s);
	const char *at = strchr(s, '@');

	if (len < 3 || len > 254 || at == NULL || at == s || at[1] == '\0' ||
	    strchr(at + 1, '@') != NULL)
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

struct args {
	const char *path;
	bool json;
	const char **mailboxes;
	size_t n_mailboxes;
};

/* 0, 1 for --help (printed), or EXIT_CONFIG. */
static int parse_args(int argc, char **argv, struct args *out)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = NULL;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 1;
		} else if (strcmp(a, "--json") == 0) {
			out->json = true;
			continue;
		} else if (strncmp(a, "--config=", 9) == 0) {
			out->path = a + 9;
			continue;
		} else if (strncmp(a, "--mailbox=", 10) == 0) {
			v = a + 10;
		} else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0 ||
		           strcmp(a, "-m") == 0 || strcmp(a, "--mailbox") == 0) {
			if (i + 1 >= argc)
				return usage_error("option needs an argument", a);
			if (a[1] == 'c' || a[2] == 'c') {
				out->path = argv[++i];
				continue;
			}
			v = argv[++i];
		} else {
			return usage_error(a[0] == '-' ? "unknown option" : "unexpected argument",
			                   a);
		}
		if (!smtp_ok(v))
			return usage_error("not a mailbox address (local@domain)", v);
		out->mailboxes[out->n_mailboxes++] = v;
	}
	if (out->path == NULL)
		out->path = CFG_DEFAULT_PATH;
	return 0;
}

static void run_checks(struct check *c)
{
	bool ad = c->cfg->ews_url == NULL;
	char *ad_url =
		ad ? cfg_autodiscover_url(c->cfg, c->n_mbx > 0 ? c->mbx[0].smtp : NULL) : NULL;
	const char *first = ad ? ad_url : c->cfg->ews_url;
	bool ok;

	if (ad && ad_url == NULL) {
		struct fix f = {0};

		fix_say(&f, "Configure <autodiscover url=\"...\"> or <ews url=\"...\">, or give "
		            "--mailbox SMTP.");
		step_add(c, "autodiscover", NULL, ST_FAIL, &f,
		         "no domain to find the Autodiscover host from (no <autodiscover>, no "
		         "account with a domain, no mailbox)");
		ok = false;
	} else {
		ok = check_endpoint(c, first, ad ? ROLE_AUTODISCOVER : ROLE_EWS);
		if (!ok && ad)
			skip(c, "autodiscover", "the Autodiscover host cannot be reached");
	}
	if (ok && ad) {
		ok = check_autodiscover(c, ad_url);
		if (ok && !same_endpoint(ad_url, c->ews_url))
			ok = check_endpoint(c, c->ews_url, ROLE_EWS);
	} else if (ok) {
		c->ews_url = xstrdup(c->cfg->ews_url);
		for (size_t i = 0; i < c->n_mbx; i++)
			c->mbx[i].url = xstrdup(c->ews_url);
	}
	if (!ok) {
		skip(c, "authentication", "the server cannot be reached");
		skip(c, "ews-version", "the server cannot be reached");
	}
	if (ok)
		ok = check_authentication(c);
	if (ok) {
		check_mailboxes(c);
	} else {
		skip(c, "impersonation", "an earlier check failed");
		skip(c, "subscription", "an earlier check failed");
	}
	check_throttling(c);
	free(ad_url);
}

int check_main(int argc, char **argv)
{
	struct check c = {0};
	struct args args = {0};
	struct cfg *cfg = NULL;
	struct cfg_warnings warnings = {0};
	struct ews_transport_opts topts = {0};
	struct err err = {0};
	int status = 0;
	int rc;

	args.mailboxes = xcalloc((size_t)argc, sizeof(*args.mailboxes));
	rc = parse_args(argc, argv, &args);
	if (rc != 0) {
		free(args.mailboxes);
		return rc == 1 ? EXIT_SUCCESS : rc;
	}
	c.json = args.json;
	c.cfg_path = args.path;
	c.tty = isatty(STDERR_FILENO) == 1;
	c.thr.max_back_off_ms = -1;
	c.thr.concurrency_limit = -1;
	c.thr.hanging_limit = -1;
	buf_init(&c.req, CHECK_MAX_REQUEST);
	if (!c.json)
		printf("calsync check: %s\n", c.cfg_path);

	rc = cfg_load(args.path, &cfg, &warnings, &err);
	if (rc == 0) {
		topts = (struct ews_transport_opts){
			.auth = cfg->auth,
			.user = cfg->user,
			.password = cfg->password,
			.token = cfg->token,
			.ca_file = cfg->ca_file,
			.insecure_skip_tls_verify = cfg->insecure_skip_tls_verify,
			.connect_timeout_usec = CHECK_CONNECT_TIMEOUT_USEC,
			.timeout_usec = CHECK_CALL_TIMEOUT_USEC,
			.max_host_connections = 4,
			.max_total_connections = 8,
		};
		(void)uv_loop_init(&c.loop);
		c.loop_ready = true;
		rc = ews_transport_new(&c.loop, &topts, &c.t, &err);
	}
	if (rc != 0) {
		struct fix f = {0};

		fix_say(&f, "Fix the file; `calsync run -c FILE --check-config` checks it alone. "
		            "docs/configuration.md describes every element.");
		step_add(&c, "config", NULL, ST_FAIL, &f, "%s", err.msg);
		status = finish(&c, EXIT_CONFIG);
		goto out;
	}
	c.cfg = cfg;
	c.version = cfg->server_version != NULL ? cfg->server_version : EWS_DEFAULT_VERSION;
	c.n_mbx = args.n_mailboxes > 0              ? args.n_mailboxes
	          : cfg->n_mailboxes < CHECK_SAMPLE ? cfg->n_mailboxes
	                                            : CHECK_SAMPLE;
	c.mbx = xcalloc(c.n_mbx > 0 ? c.n_mbx : 1, sizeof(*c.mbx));
	for (size_t i = 0; i < c.n_mbx; i++)
		c.mbx[i].smtp = args.n_mailboxes > 0 ? args.mailboxes[i] : cfg->mailboxes[i];
	c.account = ps_quote(cfg->user != NULL ? cfg->user : "svc-calsync");
	c.dc = domain_dn(&c);
	step_config(&c, &warnings, args.n_mailboxes > 0);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK) {
		run_checks(&c);
		curl_global_cleanup();
	} else {
		step_add(&c, "tcp", NULL, ST_FAIL, NULL, "libcurl failed to start");
	}
	for (size_t i = 0; i < c.n_steps; i++)
		if (c.steps[i].status == ST_FAIL)
			status = EXIT_CHECK_FAILED;
	status = finish(&c, status);
out:
	ews_transport_free(c.t);
	if (c.loop_ready) {
		(void)uv_run(&c.loop, UV_RUN_DEFAULT);
		(void)uv_loop_close(&c.loop);
	}
	for (size_t i = 0; i < c.n_steps; i++) {
		free(c.steps[i].mailbox);
		free(c.steps[i].detail);
		fix_clear(&c.steps[i].fix);
	}
	free(c.steps);
	for (size_t i = 0; i < c.n_printed_fixes; i++)
		free(c.printed_fixes[i]);
	free(c.printed_fixes);
	for (size_t i = 0; i < c.n_mbx; i++) {
		free(c.mbx[i].url);
		free(c.mbx[i].ad_error);
	}
	free(c.mbx);
	free(c.account);
	free(c.dc);
	free(c.ews_url);
	buf_free(&c.req);
	cfg_warnings_clear(&warnings);
	cfg_free(cfg);
	free(args.mailboxes);
	return status;
}
