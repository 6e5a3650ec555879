/* SPDX-License-Identifier: MIT */
/*
 * check-auth.c: the authentication steps: auth-methods (what the unauthenticated probe was
 * offered against what is configured), authentication (GetFolder of the service account's
 * own calendar with the configured credentials, and with NTLM over HTTPS what Extended
 * Protection asks for), and ews-version (the ServerVersionInfo of that answer).
 */
#include "cli/check-int.h"

#include <errno.h>
#include <stdlib.h>

#include "base/cs-limits.h"
#include "base/xalloc.h"
#include "config/config.h"

/* Whether the configured authentication is NTLM over HTTPS, where Extended Protection binds
 * it to the TLS channel. */
bool check_ntlm_over_tls(const struct check *c, const char *url)
{
	struct url_parts u = {0};

	return c->cfg->auth == EWS_AUTH_NTLM && check_url_split(url, &u, NULL) == 0 && u.https;
}

/*
 * The configured NTLM got a 401 over HTTPS. Fills f; returns the step's detail (owned) when
 * the cause is certain (the binding), or NULL to keep the transport's message.
 */
char *check_explain_ntlm_401(const struct check *c, const char *url, long http, enum role role,
                             struct fix *f)
{
	struct cert cert;
	enum unbound u = check_ntlm_unbound_probe(c, url, &cert);

	if (u == UNBOUND_ACCEPTED) {
		check_fix_extended_protection(c, f, role, &cert, true);
		return check_strf(
			"Extended Protection refuses the channel binding calsync sends, but "
			"accepts NTLM without one: the certificate calsync sees (SHA-1 %s) is not "
			"the Exchange server's, so something in between terminates TLS",
			cert.sha1[0] ? cert.sha1 : "unknown");
	}
	check_fix_auth(c, f, http, role);
	if (u == UNBOUND_REFUSED)
		check_fix_extended_protection(c, f, role, &cert, false);
	return NULL;
}

/* After the configured NTLM worked over HTTPS: what Extended Protection asks for, as a
 * sentence for the step's detail ("" when the probe got no answer). Owned. */
static char *describe_extended_protection(const struct check *c, const char *url)
{
	struct cert cert;

	switch (check_ntlm_unbound_probe(c, url, &cert)) {
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

bool check_step_auth_methods(struct check *c, const char *url, const struct url_parts *u,
                             const struct probe *p, enum role role)
{
	struct fix f = {0};
	enum ews_auth a = c->cfg->auth;
	unsigned need = auth_needs(a);
	const char *noun = check_vdir_noun(role);

	if (p->res != CURLE_OK) {
		check_fix_cmd(&f, "curl -sv -o /dev/null %s", url);
		check_step_add(c, "auth-methods", NULL, ST_FAIL, &f, "no HTTP answer from %s: %s",
		               u->host, p->errbuf);
		return false;
	}
	if (p->http == 401) {
		if (p->offered_names[0] == '\0') {
			check_fix_cmd(&f, "Get-%s | fl *Authentication*", noun);
			check_step_add(
				c, "auth-methods", NULL, ST_FAIL, &f,
				"%s answers 401 without naming any method (WWW-Authenticate)",
				u->host);
			return true;
		}
		if (a == EWS_AUTH_NONE) {
			check_fix_say(
				&f,
				"Add the service account to the configuration: <account user=\"...\" "
				"auth=\"ntlm\" password_file=\"/etc/calsync/password\"/>.");
			check_step_add(c, "auth-methods", NULL, ST_FAIL, &f,
			               "%s offers %s, but the configuration has no <account>",
			               u->host, p->offered_names);
			return true;
		}
		if ((p->offered & need) == 0) {
			check_fix_say(
				&f,
				"Enable %s on the virtual directory, or set <account auth=\"...\"> to a "
				"method the server offers:",
				ews_auth_name(a));
			check_fix_cmd(&f, "Get-%s | fl *Authentication*", noun);
			check_fix_cmd(&f, "Get-%s | Set-%s %s", noun, noun, auth_switch(a));
			check_step_add(c, "auth-methods", NULL, ST_FAIL, &f,
			               "%s offers %s, not %s as configured", u->host,
			               p->offered_names, ews_auth_name(a));
			return true;
		}
		if (a == EWS_AUTH_NEGOTIATE && (p->offered & OFFER_NTLM) == 0) {
			check_step_add(
				c, "auth-methods", NULL, ST_WARN, NULL,
				"%s offers %s; negotiate needs a Kerberos ticket here, since without "
				"NTLM on offer it has no fallback",
				u->host, p->offered_names);
			return true;
		}
		check_step_add(c, "auth-methods", NULL, ST_OK, NULL, "%s offers %s; configured: %s",
		               u->host, p->offered_names, ews_auth_name(a));
		return true;
	}
	if (p->http == 200 || p->http == 500 || p->http == 400) {
		check_step_add(c, "auth-methods", NULL, ST_OK, NULL,
		               "%s answered without asking for credentials (HTTP %ld)", u->host,
		               p->http);
		return true;
	}
	if (p->http >= 300 && p->http < 400) {
		check_fix_say(
			&f,
			"calsync follows no redirect: configure the URL the server redirects to, "
			"or its own:");
		check_fix_cmd(&f, "Get-%s | fl Server,InternalUrl,ExternalUrl", noun);
		check_step_add(c, "auth-methods", NULL, ST_FAIL, &f,
		               "%s redirects (HTTP %ld) to '%s'", u->host, p->http, p->redirect);
		return false;
	}
	if (p->http == 503)
		c->thr.other++;
	if (p->http == 404) {
		check_fix_say(&f, "The URL names no %s endpoint; the server's URLs:",
		              role == ROLE_AUTODISCOVER ? "Autodiscover" : "EWS");
		check_fix_cmd(&f, "Get-%s | fl Server,InternalUrl,ExternalUrl", noun);
	}
	check_step_add(c, "auth-methods", NULL, ST_FAIL, &f, "%s answered HTTP %ld to %s", u->host,
	               p->http, url);
	return false;
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

	if (ews_verdict_is(&a->v, "ErrorInvalidServerVersion") ||
	    ews_verdict_is(&a->v, "ErrorIncorrectSchemaVersion") ||
	    ews_verdict_is(&a->v, "ErrorInvalidSchemaVersionForMailboxVersion")) {
		check_fix_version(&f);
		check_step_add(c, "ews-version", NULL, ST_FAIL, &f,
		               "%s refuses RequestServerVersion %s (%s)",
		               v != NULL ? v : "the server", c->version, a->v.code);
		return;
	}
	if (v == NULL) {
		check_step_add(
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
		check_step_add(c, "ews-version", NULL, ST_FAIL, NULL,
		               "%s (%s): calsync needs Exchange 2013 or later", name, v);
		return;
	}
	if (part[0] == 15 && part[1] == 0) {
		check_step_add(c, "ews-version", NULL, ST_WARN, NULL,
		               "%s (%s): out of support; its HangingConnectionLimit is 3, not 10",
		               name, v);
		return;
	}
	check_step_add(c, "ews-version", NULL, ST_OK, NULL,
	               "%s (%s); RequestServerVersion %s accepted", name, v, c->version);
}

bool check_authentication(struct check *c)
{
	struct ews_header h = check_header(c, NULL, false);
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
		check_step_add(c, "authentication", NULL, ST_FAIL, NULL, "%s", err.msg);
		check_skip(c, "ews-version", "no request could be written");
		return false;
	}
	check_call(c, "GetFolder", NULL, &o, &a);
	if (!a.answered && a.v.cls != EWS_ERR_THROTTLED) {
		char *why = NULL;

		if (ews_verdict_is_auth(&a.v) && a.v.http_status == 401 &&
		    check_ntlm_over_tls(c, c->ews_url))
			why = check_explain_ntlm_401(c, c->ews_url, a.v.http_status, ROLE_EWS, &f);
		else if (ews_verdict_is_auth(&a.v))
			check_fix_auth(c, &f, a.v.http_status, ROLE_EWS);
		check_step_add(c, "authentication", NULL, ST_FAIL, &f, "%s: %s", who,
		               why != NULL ? why : a.why);
		free(why);
		check_skip(c, "ews-version", "authentication failed");
		check_answer_clear(&a);
		return false;
	}
	if (!a.answered) {
		check_step_add(c, "authentication", NULL, ST_WARN, NULL,
		               "%s: not confirmed, the server is busy: %s", who, a.why);
	} else if (ews_verdict_is(&a.v, "ErrorNonExistentMailbox") ||
	           ews_verdict_is(&a.v, "ErrorMissingEmailAddress")) {
		char *q = check_ps_quote(c->cfg->user != NULL ? c->cfg->user : "svc-calsync");

		check_fix_say(&f, "The service account needs a mailbox of its own:");
		check_fix_cmd(&f, "Enable-Mailbox -Identity %s", q);
		free(q);
		check_step_add(c, "authentication", NULL, ST_WARN, &f,
		               "%s accepted by the server, but the account has no mailbox (%s)",
		               who, a.v.code);
	} else {
		char *ep = check_ntlm_over_tls(c, c->ews_url)
		                   ? describe_extended_protection(c, c->ews_url)
		                   : xstrdup("");

		check_step_add(c, "authentication", NULL, ST_OK, NULL,
		               "%s accepted by the server%s", who, ep);
		free(ep);
	}
	step_version(c, &a);
	check_answer_clear(&a);
	return true;
}
