/* SPDX-License-Identifier: MIT */
/*
 * check-int.h: what the files of `calsync check` share (check.h is its public entry): the run's
 * state (struct check), the one finding type (struct step, with its struct fix), the endpoint
 * probe's results, one EWS call's answer, and each file's functions. The files:
 *
 *   check.c           the command line and the order of the steps (the driver)
 *   check-report.c    findings and fixes as data, and the one printer (text and JSON)
 *   check-fix.c       the fix texts, and what an EWS error code means for an operator
 *   check-config.c    the config step
 *   check-net.c       dns, tcp and tls of an endpoint (and auth-methods after them)
 *   check-auth.c      auth-methods, authentication, Extended Protection, ews-version
 *   check-mailbox.c   Autodiscover, impersonation (calendar read), subscription round trip
 *   check-throttle.c  throttling answers seen during the run, and the throttling step
 *   check-call.c      one EWS call on the daemon's transport and reader, and its verdict
 *   check-probe.c     the libcurl probes the transport cannot make (offers, certificate)
 *   check-graph.c     Microsoft Graph: the sample, the token, each mailbox's user and calendar
 *   check-graph-call.c  one Graph call on the daemon's HTTP client, its verdict, throttling
 *   check-graph-fix.c   what Entra ID's and Graph's refusals mean, and their fixes
 *   check-graph-notify.c  the notification endpoint: listener, URL, Graph's own validation
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include <curl/curl.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "ews/ews-request.h"
#include "ews/ews-response.h"
#include "ews/ews-transport.h"
#include "ews/ews-verdict.h"
#include "graph/graph-error.h"
#include "http/http-client.h"

struct cfg;
struct cfg_warnings;

#define EXIT_CHECK_FAILED 1
#define EXIT_CONFIG       2 /* a configuration error or a command line we do not understand */

#define CHECK_CONNECT_TIMEOUT_USEC (15 * USEC_PER_SEC)
#define CHECK_CALL_TIMEOUT_USEC    (60 * USEC_PER_SEC)
/* The longest check_wait(): a call's own timeout plus a margin. The transports end their calls
 * sooner; this deadline is for the wait itself, should an answer never be called back. */
#define CHECK_WAIT_USEC (CHECK_CALL_TIMEOUT_USEC + 5 * USEC_PER_SEC)

/* A streaming connection must deliver its first envelope (Exchange sends ConnectionStatus OK at
 * once) within this time; else something on the path holds streamed answers back. */
#define CHECK_STREAM_IDLE_USEC (10 * USEC_PER_SEC)
#define CHECK_STREAM_CAP_USEC  (20 * USEC_PER_SEC)

#define DAY_SEC INT64_C(86400)

/* A step's outcome; the exit status is 1 when one step is ST_FAIL. */
enum status {
	ST_OK = 0,
	ST_WARN,
	ST_FAIL,
	ST_SKIP,
};

/* One line of a fix: a sentence, or a command to run exactly as it stands. */
struct fix_line {
	bool command;
	char *text;
};

struct fix {
	struct fix_line *lines;
	size_t n;
};

/* The one finding type: every step of every file adds these (check_step_add), and
 * check-report.c alone prints them. */
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
	/* Autodiscover's RedirectAddress to an Exchange Online routing domain: the mailbox moved
	 * to the cloud, and Microsoft Graph serves it. NULL otherwise. */
	char *cloud;
	bool pinned; /* <mailbox backend="ews">: EWS serves it, whatever Graph says */
};

/* Why a mailbox is checked on Microsoft Graph. */
enum gwhy {
	GWHY_PINNED, /* <mailbox backend="graph">: Graph must serve it */
	GWHY_CLOUD,  /* Autodiscover said it moved to Exchange Online */
	GWHY_PROBE,  /* where it lives is unknown (<ews url>, or no Autodiscover answer) */
};

/* One mailbox of the Graph sample. */
struct gmbx {
	const char *smtp; /* borrowed */
	enum gwhy why;
	const char *cloud;     /* borrowed from its struct mbx; NULL unless GWHY_CLOUD */
	const struct mbx *ews; /* its EWS sample entry; NULL for a pinned one */
	char *id;              /* the user's directory object id, once looked up */
	bool served;           /* Graph read its calendar */
};

/* Graph's throttling answers seen (429, and a 5xx with Retry-After). */
struct gthrottle {
	unsigned n429;
	unsigned n5xx;
	int64_t max_retry_after_ms; /* -1: none named */
	char first[160];
};

/* One Graph (or Entra ID) call's answer. */
struct ganswer {
	int rc;      /* the HTTP client's: 0 when an HTTP answer arrived */
	long status; /* 0 when none */
	char *body;  /* owned, NUL-terminated; never NULL after a call */
	size_t body_len;
	char content_type[96];
	int64_t retry_after_ms;
	int64_t elapsed_usec;
	char why[300]; /* the transport's message when rc != 0 */
	struct graph_verdict v;
	char retried[160]; /* " (after ApplicationThrottled, retried 1000 ms later)" */
};

/* The Graph part of a run (check-graph*.c). */
struct graph_check {
	struct http_client *http;
	char *base;  /* Graph's base URL, normalised (graph_url_base) */
	char *token; /* the access token, NULL without one; wiped when freed */
	struct gmbx *m;
	size_t n;
	unsigned answers; /* calls Graph answered with HTTP */
	struct gthrottle thr;
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
	unsigned other;         /* ErrorTooManyObjectsOpened, other throttled codes, HTTP 503 */
	char first[160];        /* the first one: "ErrorServerBusy on FindItem for a@b" */
};

struct check {
	char *ews_token; /* <account oauth="graph">: the token every EWS call sends */
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
	/* check_wait()'s handles, unreferenced: they never keep the loop alive. */
	uv_prepare_t wait_wake;   /* stops the loop before it sleeps once the flag is set */
	uv_timer_t wait_deadline; /* ends the wait at its deadline */
	const bool *wait_flag;
	bool wait_expired;
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
	/* Configured mailboxes pinned to Graph (<mailbox backend="graph">) among the sample, or
	 * given with --mailbox; borrowed. The EWS sample (mbx) holds the others. */
	const char **gpinned;
	size_t n_gpinned;
	struct graph_check *g; /* NULL without <graph> */
};

/* An endpoint's URL, as the probes and the DNS step need it. */
struct url_parts {
	bool https;
	char host[256]; /* without IPv6 brackets */
	long port;
};

/* The methods a 401 offered (struct probe's offered). */
enum {
	OFFER_NEGOTIATE = 1u << 0,
	OFFER_NTLM = 1u << 1,
	OFFER_BASIC = 1u << 2,
	OFFER_BEARER = 1u << 3,
};

/* The server certificate a probe saw. */
struct cert {
	bool have;
	char subject[256];
	char issuer[256];
	char san[512];
	char expire[64];
	char sha1[41]; /* the thumbprint, as Get-ExchangeCertificate shows it; "" if unknown */
};

/* What the unauthenticated probe of an endpoint saw. */
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

/* What NTLM without a channel binding got (check_ntlm_unbound_probe). */
enum unbound {
	UNBOUND_NO_ANSWER = -1, /* no HTTP answer: says nothing about Extended Protection */
	UNBOUND_REFUSED = 0,    /* HTTP 401 */
	UNBOUND_ACCEPTED = 1,   /* any other answer: IIS let the login through */
};

/*
 * What one call brought back. What it means is the verdict (ews-verdict.h), the daemon's reading
 * of an EWS answer: check reads no answer of its own. msg points into resp.
 */
struct answer {
	struct ews_verdict v;
	struct ews_response resp; /* parsed when an answer could be read */
	bool answered;            /* an EWS answer was read: a fault, a message, Autodiscover */
	const struct ews_message *msg; /* the first ResponseMessage, NULL when none */
	char why[400];                 /* v.msg, or why the answer could not be read */
	char *cookie;                  /* X-BackEndOverrideCookie */
	int64_t elapsed_usec;
	char retried[160]; /* " (after ErrorServerBusy, retried 200 ms later)" */
};

static inline bool check_str_is(const char *a, const char *b)
{
	return a != NULL && strcmp(a, b) == 0;
}

/* ---- check-report.c: text, findings, the printer ---- */

ATTR_PRINTF(1, 0) char *check_vfmt(const char *fmt, va_list ap);
ATTR_PRINTF(1, 2) char *check_strf(const char *fmt, ...);
/* Control characters (from a server's message, a file name) become spaces: one step is one
 * line, and nothing can move a terminal's cursor. */
void check_tame(char *s);
/* s as a PowerShell single-quoted string: 'CONTOSO\svc', with ' doubled. Owned. */
char *check_ps_quote(const char *s);
ATTR_PRINTF(2, 3) void check_fix_say(struct fix *f, const char *fmt, ...);
ATTR_PRINTF(2, 3) void check_fix_cmd(struct fix *f, const char *fmt, ...);
void check_fix_clear(struct fix *f);
/* The fix as one text: sentences as they are, commands indented by two spaces. Owned. */
char *check_fix_text(const struct fix *f);
/* Adds a step; takes f's lines (f is left empty; NULL for none). Printed at once for a person. */
ATTR_PRINTF(6, 7)
void check_step_add(struct check *c, const char *name, const char *mailbox, enum status st,
                    struct fix *f, const char *fmt, ...);
void check_skip(struct check *c, const char *name, const char *why);
/* Progress on stderr: next is the mailbox about to be checked, NULL when done were done. */
void check_progress(struct check *c, size_t done, const char *next);
/* Prints the summary line, or the JSON document; returns status (EXIT_FAILURE when the JSON
 * cannot be written). */
int check_finish(struct check *c, int status);
/* Frees the steps and the record of printed fixes. */
void check_report_clear(struct check *c);

/* ---- check.c: the private loop ---- */

/* Runs c's loop until *done (set by an answer's callback) or until timeout_usec pass: 0,
 * -ETIMEDOUT, or -EIO when the loop ran dry first (a transport bug). On an error the caller
 * cancels the call, whose callback has not fired. */
int check_wait(struct check *c, const bool *done, int64_t timeout_usec);

/* ---- check-fix.c: fixes and what EWS codes mean ---- */

const char *check_vdir_noun(enum role role);
void check_fix_impersonation(const struct check *c, struct fix *f);
void check_fix_mailbox(const struct check *c, struct fix *f, const char *smtp);
void check_fix_primary(struct fix *f, const char *smtp);
void check_fix_version(struct fix *f);
void check_fix_throttling(const struct check *c, struct fix *f, bool hanging);
/* For a refused authenticated request (the transport's -EACCES). */
void check_fix_auth(const struct check *c, struct fix *f, long http, enum role role);
void check_fix_extended_protection(const struct check *c, struct fix *f, enum role role,
                                   const struct cert *cert, bool certain);
void check_cert_commands(struct fix *f);
/* Adds the step for an answer that is not NoError; meaning and fix from the code. */
void check_step_error(struct check *c, const char *name, const char *mailbox, const char *op,
                      const struct answer *a);

/* ---- check-config.c ---- */

/* "DC=contoso,DC=example" from the service account's or the first mailbox's domain. Owned. */
char *check_domain_dn(const struct check *c);
void check_step_config(struct check *c, const struct cfg_warnings *w, bool given);

/* ---- check-net.c ---- */

/* dns, tcp, tls and auth-methods of one endpoint. false when nothing more can be sent there. */
bool check_endpoint(struct check *c, const char *url, enum role role);

/* ---- check-auth.c ---- */

bool check_step_auth_methods(struct check *c, const char *url, const struct url_parts *u,
                             const struct probe *p, enum role role);
/* Whether the configured authentication is NTLM over HTTPS, where Extended Protection binds
 * it to the TLS channel. */
bool check_ntlm_over_tls(const struct check *c, const char *url);
/* The configured NTLM got a 401 over HTTPS. Fills f; returns the step's detail (owned) when
 * the cause is certain (the binding), or NULL to keep the transport's message. */
char *check_explain_ntlm_401(const struct check *c, const char *url, long http, enum role role,
                             struct fix *f);
/* authentication and ews-version; false when the server refused the credentials. */
bool check_authentication(struct check *c);

/* ---- check-mailbox.c ---- */

/* The autodiscover step: each sample mailbox's EWS URL, c->ews_url. false when none came. */
bool check_autodiscover(struct check *c, const char *ad_url);
/* impersonation and subscription of every sample mailbox. */
void check_mailboxes(struct check *c);

/* ---- check-throttle.c ---- */

/* Notes a throttling answer, if a is one. Returns how long to wait before one retry, or -1
 * when a is not a throttling answer worth retrying. */
int64_t check_throttle_note(struct check *c, const char *op, const char *mailbox,
                            const struct answer *a);
void check_throttling(struct check *c);

/* ---- check-call.c: EWS calls on the daemon's transport ---- */

void check_answer_clear(struct answer *a);
/* POSTs c->req with o, waits for the answer and notes throttling; a throttled answer is retried
 * once after its back-off. op and mailbox name the call in the throttling report. */
void check_call(struct check *c, const char *op, const char *mailbox, const struct ews_call_opts *o,
                struct answer *a);
struct ews_header check_header(const struct check *c, const char *impersonate, bool tz_utc);
/* Whether the call's first ResponseMessage is usable (the verdict's class NONE: NoError, or a
 * Warning whose payload the daemon uses too). */
bool check_answer_ok(const struct answer *a);
/* a as a call that got no EWS answer: rc (negative errno), the HTTP status if any, why. */
void check_answer_fail(struct answer *a, int rc, long http_status, const char *msg);
/* POSTs c->req (GetStreamingEvents) with base's options and waits for the stream's first
 * envelope, or its failure, in *a; *out_first_ms is how long the envelope took. */
void check_stream_first(struct check *c, const struct mbx *m, const struct ews_call_opts *base,
                        struct answer *a, int64_t *out_first_ms);

/* ---- check-graph*.c: Microsoft Graph ---- */

/* The Graph steps (graph-token, graph-mailbox, the notification endpoint, graph-throttle), when
 * the configuration has <graph>. After the EWS steps: Autodiscover tells which mailboxes are in
 * Exchange Online. */
void check_graph(struct check *c);
/* <account auth="bearer" oauth="graph">: a token for EWS from Entra ID with <graph>'s app and
 * the account's scope, kept in c->ews_token for every EWS call, and the "ews-token" step. */
void check_ews_token(struct check *c);
/* Frees the Graph part (its HTTP client closes on the next loop run). NULL-safe on c->g. */
void check_graph_clear(struct check *c);
/* Whether addr is a mailbox's address in Exchange Online (a tenant's routing domain,
 * alias@tenant.mail.onmicrosoft.com), as Autodiscover's RedirectAddress names it. */
bool check_is_cloud_address(const char *addr);

/* check-graph-call.c */
void check_ganswer_clear(struct ganswer *a);
/* One call to url on c->g->http (with the token when bearer), waited for on c's loop, its
 * verdict read for req, and throttling noted; a throttled answer is retried once after its
 * Retry-After. op and mailbox name it in the throttling report. */
void check_graph_call(struct check *c, const char *op, const char *mailbox, enum graph_req req,
                      enum http_method method, const char *url, const char *body,
                      const char *prefer, struct ganswer *a);
/* A busy token endpoint (oauth.h's -EAGAIN) counts as throttling too. */
void check_graph_note_token_busy(struct check *c, const char *msg);
/* The graph-throttle step. */
void check_graph_throttling(struct check *c);

/* check-graph-fix.c */
/* The fix for a failed token request (oauth.h's rc and message); the step's status. */
enum status check_fix_graph_token(const struct check *c, struct fix *f, int rc, const char *msg);
/* The fix for a Graph answer of class ACCOUNT: Calendars.Read (calendar) or User.Read.All (the
 * user lookup) with admin consent, and how to scope the application to the synced mailboxes. */
void check_fix_graph_permission(const struct check *c, struct fix *f, bool user_lookup);
/* A mailbox Graph does not know (404) or does not serve although it should. */
void check_fix_graph_mailbox(const struct check *c, struct fix *f, const struct gmbx *m,
                             const struct graph_verdict *v);
/* Cannot reach host (a Graph or Entra ID host) on the network. */
void check_fix_graph_network(const struct check *c, struct fix *f, int rc, const char *url);
/* The certificate credential's thumbprints: SHA-1 in hex (as the Entra admin center lists it)
 * and x5t#S256 (base64url of the SHA-256, as the client assertion names it). false when the
 * PEM cannot be read. */
bool check_cert_thumbprints(const char *pem, char sha1[41], char s256[44]);

/* check-graph-notify.c */
/* graph-listen, graph-endpoint and graph-validate (<notifications> only). served is a mailbox
 * whose calendar Graph read (to subscribe to), or NULL. */
void check_graph_notify(struct check *c, const struct gmbx *served);

/* ---- check-probe.c: libcurl probes ---- */

int check_url_split(const char *url, struct url_parts *out, struct err *err);
bool check_same_endpoint(const char *a, const char *b);
/* An unauthenticated POST to url (see check-probe.c). */
void check_probe_run(const struct check *c, const char *url, bool verify, bool handshake_only,
                     struct probe *p);
enum unbound check_ntlm_unbound_probe(const struct check *c, const char *url, struct cert *cert);
/* "Nov 29 07:39:20 2026 GMT", as OpenSSL prints a certificate time, to UTC seconds. */
bool check_cert_time(const char *s, int64_t *out_utc);
