/* SPDX-License-Identifier: MIT */
/*
 * config-ews.c: the server calsync talks to and how it logs in. <ews> (URL,
 * RequestServerVersion, impersonation), <autodiscover> and the Autodiscover URL derived from it,
 * <account> (user, authentication, where the password or token comes from) with the checks
 * of which secrets the authentication needs, and <tls>.
 */
#include "config/config-int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "ews/ews-request.h"
#include "ews/ews-transport.h"

/* -- <ews>, <autodiscover> ---------------------------------------------------------------- */

int cfgp_el_ews(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"url", "version", "impersonation", NULL};
	static const char *const id_types[] = {"SmtpAddress", "PrimarySmtpAddress", "PrincipalName",
	                                       NULL};
	const char *v;
	int id = (int)p->cfg->id_type;
	int rc;

	cfgp_check_attrs(p, n, known);
	rc = cfgp_get_url(p, n, "url", &p->cfg->ews_url);
	if (rc != 0)
		return rc;
	p->ews_url_set = p->cfg->ews_url != NULL;
	v = cfgp_attr(p, n, "version");
	if (v != NULL) {
		/* The writer's table decides; before Exchange2010_SP1 there are no streaming
		 * notifications and no FreeBusyChangedEvent, so calsync does not accept those. */
		const char *version = ews_version_known(v);

		if (version == NULL || !ews_version_streams(version))
			return cfgp_fail_attr(
				p, n, "version", v,
				"unknown RequestServerVersion; accepted: Exchange2010_SP1, "
				"Exchange2010_SP2, Exchange2013, Exchange2013_SP1, "
				"Exchange2016, V2015_10_05 ... V2017_07_11");
		free(p->cfg->server_version);
		p->cfg->server_version = xstrdup(version);
	}
	rc = cfgp_get_enum(p, n, "impersonation", id_types,
	                   "SmtpAddress, PrimarySmtpAddress, PrincipalName", &id);
	if (rc != 0)
		return rc;
	p->cfg->id_type = (enum ews_id_type)id;
	return 0;
}

int cfgp_el_autodiscover(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"url", "domain", NULL};
	int rc;

	cfgp_check_attrs(p, n, known);
	p->autodiscover_line = line_of(n);
	rc = cfgp_get_url(p, n, "url", &p->cfg->autodiscover_url);
	if (rc == 0)
		rc = cfgp_get_text(p, n, "domain", false, &p->cfg->autodiscover_domain);
	if (rc == 0 && p->cfg->autodiscover_domain != NULL &&
	    strpbrk(p->cfg->autodiscover_domain, " /@:") != NULL)
		return cfgp_fail_attr(p, n, "domain", p->cfg->autodiscover_domain,
		                      "not a domain; accepted: e.g. contoso.example");
	return rc;
}

/* -- <account>, <tls> ---------------------------------------------------------------------- */

/* An OAuth scope for EWS: "https://host[:port]/.default", no spaces or control characters. */
static bool valid_scope(const char *s)
{
	size_t n = strlen(s);

	if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			return false;
	return n > 9 && strcmp(s + n - 9, "/.default") == 0;
}

/* The default scope of EWS tokens: the EWS (else the Autodiscover) URL's scheme and host (with
 * its port) + "/.default"; NULL when neither is known. */
static char *default_ews_scope(const struct parser *p)
{
	const struct cfg *c = p->cfg;
	char *url = c->ews_url != NULL
	                    ? xstrdup(c->ews_url)
	                    : cfg_autodiscover_url(c, p->n_mbx > 0 ? p->mbx[0].smtp : NULL);
	const char *host = url != NULL ? strstr(url, "://") : NULL;
	char *end;
	char *scope;
	size_t n;

	if (host == NULL) {
		free(url);
		return NULL;
	}
	end = strchr(host + 3, '/');
	n = end != NULL ? (size_t)(end - url) : strlen(url);
	scope = xmalloc(n + sizeof("/.default"));
	memcpy(scope, url, n);
	memcpy(scope + n, "/.default", sizeof("/.default"));
	free(url);
	return scope;
}

/* oauth="graph": the provider needs <graph>, and no static token beside it. */
static int oauth_finish(struct parser *p)
{
	struct cfg *c = p->cfg;

	if (!c->token_oauth) {
		if (c->token_scope != NULL)
			return err_set(p->err, -EINVAL,
			               "%s:%ld: <account scope>: only used with oauth=\"graph\"",
			               p->name, line_of(p->account));
		return 0;
	}
	if (c->auth != EWS_AUTH_BEARER)
		return err_set(p->err, -EINVAL,
		               "%s:%ld: <account oauth=\"graph\">: needs auth=\"bearer\"", p->name,
		               line_of(p->account));
	if (p->token_src.attr != NULL)
		return err_set(p->err, -EINVAL,
		               "%s:%ld: <account oauth=\"graph\">: give either oauth or %s, not "
		               "both",
		               p->name, line_of(p->account), p->token_src.attr);
	if (c->graph == NULL)
		return err_set(p->err, -EINVAL,
		               "%s:%ld: <account oauth=\"graph\">: needs a <graph> section (its "
		               "tenant, client_id and secret or certificate get the tokens)",
		               p->name, line_of(p->account));
	if (c->token_scope == NULL)
		c->token_scope = default_ews_scope(p);
	if (c->token_scope == NULL)
		return err_set(
			p->err, -EINVAL,
			"%s:%ld: <account oauth=\"graph\">: no EWS or Autodiscover URL to "
			"take the token's scope from; set scope=\"https://<EWS host>/.default\"",
			p->name, line_of(p->account));
	return 0;
}

int cfgp_el_account(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {
		"user",     "auth",  "password_file", "password_env", "token_file", "token_env",
		"password", "token", "oauth",         "scope",        NULL};
	const char *v;
	int rc;

	cfgp_check_attrs(p, n, known);
	p->account = n;
	rc = cfgp_get_text(p, n, "user", false, &p->cfg->user);
	if (rc != 0)
		return rc;
	/* With an <account>, NTLM is the default; without one, calsync sends no credentials. */
	p->cfg->auth = EWS_AUTH_NTLM;
	v = cfgp_attr(p, n, "auth");
	if (v != NULL) {
		/* ews_auth_from_name() wants lower case; the file may say "NTLM". */
		char lower[16];
		size_t len = strlen(v);

		for (size_t i = 0; i < len && i < sizeof(lower); i++)
			lower[i] = (char)tolower((unsigned char)v[i]);
		if (len >= sizeof(lower) ||
		    ews_auth_from_name(lower, len, &p->cfg->auth, NULL) != 0)
			return cfgp_fail_attr(
				p, n, "auth", v,
				"unknown authentication; accepted: basic, ntlm, negotiate, "
				"bearer, none (any case)");
	}
	v = cfgp_attr(p, n, "oauth");
	if (v != NULL && strcmp(v, "graph") != 0)
		return cfgp_fail_attr(
			p, n, "oauth", v,
			"unknown token provider; accepted: graph (the app registration "
			"of <graph>)");
	p->cfg->token_oauth = v != NULL;
	rc = cfgp_get_text(p, n, "scope", false, &p->cfg->token_scope);
	if (rc == 0 && p->cfg->token_scope != NULL && !valid_scope(p->cfg->token_scope))
		return cfgp_fail_attr(
			p, n, "scope", p->cfg->token_scope,
			"not a scope; accepted: e.g. https://mail.contoso.com/.default");
	if (rc == 0)
		rc = cfgp_get_secret(p, n, "password", "password_file", "password_env",
		                     &p->password_src);
	if (rc == 0)
		rc = cfgp_get_secret(p, n, "token", "token_file", "token_env", &p->token_src);
	return rc;
}

int cfgp_el_tls(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"ca_file", "insecure_skip_tls_verify", NULL};
	int rc;

	cfgp_check_attrs(p, n, known);
	rc = cfgp_get_path(p, n, "ca_file", &p->cfg->ca_file);
	if (rc == 0)
		rc = cfgp_get_bool(p, n, "insecure_skip_tls_verify",
		                   &p->cfg->insecure_skip_tls_verify);
	if (rc == 0 && p->cfg->insecure_skip_tls_verify)
		cfgp_warn(
			p,
			"%s:%ld: <tls insecure_skip_tls_verify=\"true\">: TLS certificates are NOT "
			"verified; anyone on the path can read the credentials",
			p->name, line_of(n));
	return rc;
}

/* Which secrets the authentication method needs, once the whole document was read; then
 * reads them. */
int cfgp_account_finish(struct parser *p)
{
	struct cfg *c = p->cfg;
	const char *auth = ews_auth_name(c->auth);
	int rc;

	if (p->account == NULL)
		return 0;
	rc = oauth_finish(p);
	if (rc < 0)
		return rc;
	if ((c->auth == EWS_AUTH_BASIC || c->auth == EWS_AUTH_NTLM) &&
	    (c->user == NULL || !(p->password_src.attr != NULL)))
		return err_set(p->err, -EINVAL,
		               "%s:%ld: <account auth=\"%s\">: needs user and one of password_file "
		               "and password_env",
		               p->name, line_of(p->account), auth);
	if (c->auth == EWS_AUTH_BEARER && !c->token_oauth && !(p->token_src.attr != NULL))
		return err_set(p->err, -EINVAL,
		               "%s:%ld: <account auth=\"bearer\">: needs one of token_file, "
		               "token_env and oauth=\"graph\"",
		               p->name, line_of(p->account));
	if (c->auth != EWS_AUTH_BEARER && (p->token_src.attr != NULL))
		return err_set(p->err, -EINVAL,
		               "%s:%ld: <account auth=\"%s\">: a token is only used with "
		               "auth=\"bearer\"",
		               p->name, line_of(p->account), auth);
	if ((c->auth == EWS_AUTH_BEARER || c->auth == EWS_AUTH_NONE) &&
	    (p->password_src.attr != NULL))
		return err_set(p->err, -EINVAL,
		               "%s:%ld: <account auth=\"%s\">: a password is not used with this "
		               "authentication",
		               p->name, line_of(p->account), auth);
	rc = cfgp_read_secret(p, &p->password_src, &c->password);
	if (rc == 0)
		rc = cfgp_read_secret(p, &p->token_src, &c->token);
	return rc;
}

/* -- the Autodiscover URL ------------------------------------------------------------------ */

char *cfg_autodiscover_url(const struct cfg *cfg, const char *smtp)
{
	const char *domain = cfg->autodiscover_domain;
	size_t n;
	char *url;

	if (cfg->autodiscover_url != NULL)
		return xstrdup(cfg->autodiscover_url);
	if (domain == NULL && cfg->user != NULL && strchr(cfg->user, '@') != NULL)
		domain = strchr(cfg->user, '@') + 1;
	if (domain == NULL && smtp != NULL && strchr(smtp, '@') != NULL)
		domain = strchr(smtp, '@') + 1;
	if (domain == NULL || *domain == '\0')
		return NULL;
	n = strlen(domain) + sizeof("https://autodiscover./autodiscover/autodiscover.svc");
	url = xmalloc(n);
	snprintf(url, n, "https://autodiscover.%s/autodiscover/autodiscover.svc", domain);
	return url;
}
