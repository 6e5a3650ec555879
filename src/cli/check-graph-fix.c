/* SPDX-License-Identifier: MIT */
/*
 * check-graph-fix.c: what Entra ID's and Microsoft Graph's refusals mean for an administrator,
 * and what to do: a token request's AADSTS code (a wrong or expired secret, a certificate the
 * app registration does not hold, an unknown application or tenant, a scope), Graph's
 * permissions (Calendars.Read and User.Read.All as application permissions with admin consent,
 * and how to scope the application to the synced mailboxes in Exchange Online PowerShell, as
 * docs/graph.md gives it), a mailbox Graph does not know or serve, and the network path.
 */
#include "cli/check-int.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>

#include "config/config.h"

/* ---- the certificate ------------------------------------------------------------------------- */

bool check_cert_thumbprints(const char *pem, char sha1[41], char s256[44])
{
	static const char hex[] = "0123456789ABCDEF";
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	BIO *b = pem != NULL ? BIO_new_mem_buf(pem, -1) : NULL;
	X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	bool ok = false;

	sha1[0] = s256[0] = '\0';
	if (x != NULL && X509_digest(x, EVP_sha1(), md, &n) == 1 && n == 20) {
		for (unsigned int i = 0; i < n; i++) {
			sha1[2 * i] = hex[md[i] >> 4];
			sha1[2 * i + 1] = hex[md[i] & 15];
		}
		sha1[40] = '\0';
		ok = true;
	}
	if (ok && X509_digest(x, EVP_sha256(), md, &n) == 1 && n == 32) {
		size_t k = 0;
		uint32_t acc = 0;
		unsigned bits = 0;

		/* base64url without padding: 32 bytes are 43 characters. */
		for (unsigned int i = 0; i < n; i++) {
			acc = (acc << 8) | md[i];
			bits += 8;
			while (bits >= 6) {
				bits -= 6;
				s256[k++] = b64[(acc >> bits) & 63];
			}
		}
		if (bits > 0)
			s256[k++] = b64[(acc << (6 - bits)) & 63];
		s256[k] = '\0';
	}
	X509_free(x);
	BIO_free(b);
	return ok;
}

/* ---- the token ------------------------------------------------------------------------------- */

/* The AADSTS code in an oauth.h message ("... AADSTS7000215: Invalid client secret ..."), or 0. */
static long aadsts_code(const char *msg)
{
	const char *p = strstr(msg, "AADSTS");
	long code = 0;

	if (p == NULL)
		return 0;
	for (p += 6; *p >= '0' && *p <= '9' && code < 100000000; p++)
		code = code * 10 + (*p - '0');
	return code;
}

static void fix_secret(const struct check *c, struct fix *f, long code)
{
	const char *id = c->cfg->graph->client_id;

	check_fix_say(f,
	              "Entra ID refused the client secret (%s). Create a new client secret under "
	              "Certificates & secrets of the app registration %s (Entra admin center, App "
	              "registrations), and put its Value (not its Secret ID) on one line into the "
	              "file or environment variable that <secret file=\"...\"> or <secret "
	              "env=\"...\"> names. The app's credentials and when they expire:",
	              code == 7000222 ? "AADSTS7000222: it expired"
	                              : "AADSTS7000215: not the value of a secret of this app",
	              id);
	check_fix_cmd(f, "az ad app credential list --id %s", id);
}

static void fix_certificate(const struct check *c, struct fix *f, long code)
{
	const struct cfg_graph *g = c->cfg->graph;
	char sha1[41], s256[44];

	if (code == 700024) {
		check_fix_say(f,
		              "The client assertion's times are out of range (AADSTS700024): this "
		              "machine's clock is off. Check it and its time synchronisation:");
		check_fix_cmd(f, "timedatectl");
		return;
	}
	if (!check_cert_thumbprints(g->cert_pem, sha1, s256))
		(void)snprintf(sha1, sizeof(sha1), "(unreadable)");
	check_fix_say(
		f,
		"Entra ID refused the client assertion signed with the certificate (AADSTS%ld%s). "
		"Upload the certificate that <certificate cert=\"...\"> names under Certificates "
		"& secrets, Certificates, of the app registration %s (Entra admin center, App "
		"registrations). The admin center lists it by its thumbprint %s; the "
		"assertion names it as x5t#S256 %s. The app's credentials:",
		code,
		code == 700027 ? ": the app holds no certificate with this thumbprint, or the "
				 "signature does not verify"
			       : "",
		g->client_id, sha1, s256);
	check_fix_cmd(f, "az ad app credential list --id %s --cert", g->client_id);
}

static void fix_application(const struct check *c, struct fix *f)
{
	const struct cfg_graph *g = c->cfg->graph;

	check_fix_say(
		f,
		"Entra ID finds no application %s in tenant %s (AADSTS700016). Check <graph "
		"client_id=\"...\">: the app registration's Application (client) ID, not its "
		"Object ID nor a secret's ID; and <graph tenant=\"...\">: the tenant the app is "
		"registered in.",
		g->client_id, g->tenant);
}

static void fix_tenant(const struct check *c, struct fix *f)
{
	check_fix_say(
		f,
		"Entra ID knows no tenant '%s' (AADSTS90002). Set <graph tenant=\"...\"> to the "
		"Directory (tenant) ID (a GUID: Entra admin center, Overview) or a verified "
		"domain such as contoso.onmicrosoft.com; for a national cloud set <endpoints "
		"authority=\"...\" graph=\"...\"> too.",
		c->cfg->graph->tenant);
}

/* What an -EACCES from the token endpoint means, by its AADSTS code and OAuth error. */
static void fix_refused(const struct check *c, struct fix *f, const char *msg)
{
	const struct cfg_graph *g = c->cfg->graph;
	long code = aadsts_code(msg);

	if (code == 7000215 || code == 7000222 || code == 7000218)
		fix_secret(c, f, code);
	else if (code == 700016)
		fix_application(c, f);
	else if (code == 90002)
		fix_tenant(c, f);
	else if (code == 700027 || code == 700024 || code == 700021 || code == 50048 ||
	         code == 50027 || (g->cert_pem != NULL && strstr(msg, "invalid_client") != NULL))
		fix_certificate(c, f, code);
	else if (code == 1002012 || code == 500011 || code == 70011 ||
	         strstr(msg, "invalid_scope") != NULL || strstr(msg, "invalid_resource") != NULL)
		check_fix_say(f,
		              "Entra ID does not give the scope '%s' to this application: leave "
		              "<endpoints scope=\"...\"> out (the default is the Graph host + "
		              "/.default), or make it the Graph host of the same cloud.",
		              g->scope);
	else if (strstr(msg, "invalid_client") != NULL)
		fix_secret(c, f, code);
	else if (strstr(msg, "unauthorized_client") != NULL || code == 7000112)
		check_fix_say(
			f,
			"The application %s may not get a token in tenant %s: it is unknown "
			"there, disabled (Enterprise applications, its Properties, \"Enabled for "
			"users to sign-in\"), or not consented to. Check client_id and tenant, "
			"then grant admin consent:",
			g->client_id, g->tenant);
	else
		check_fix_say(f,
		              "Check <graph tenant=\"...\" client_id=\"...\"> and the credential "
		              "against the app registration in the Entra admin center.");
	if (strstr(msg, "unauthorized_client") != NULL && code != 700016)
		check_fix_cmd(f, "az ad app permission admin-consent --id %s", g->client_id);
}

enum status check_fix_graph_token(const struct check *c, struct fix *f, int rc, const char *msg)
{
	if (rc == -EACCES) {
		fix_refused(c, f, msg);
		return ST_FAIL;
	}
	if (rc == -EAGAIN) {
		check_fix_say(f,
		              "Entra ID is busy or failing for a moment (calsync run retries with "
		              "back-off). Check again later.");
		return ST_WARN;
	}
	if (rc == -EPROTO) {
		check_fix_say(f,
		              "The answer is not a token endpoint's: check <endpoints "
		              "authority=\"...\"> (default %s; it names the host, not the tenant).",
		              CFG_GRAPH_AUTHORITY);
		return ST_FAIL;
	}
	check_fix_graph_network(c, f, rc, c->cfg->graph->authority);
	return ST_FAIL;
}

/* ---- permissions and mailboxes --------------------------------------------------------------- */

/* A mailbox for the sample commands: the first of the Graph sample. */
static const char *sample_mailbox(const struct check *c)
{
	return c->g != NULL && c->g->n > 0 ? c->g->m[0].smtp : "alice@contoso.example";
}

static void fix_scope(const struct check *c, struct fix *f)
{
	const char *id = c->cfg->graph->client_id;
	const char *mbx = sample_mailbox(c);
	const char *at = strchr(mbx, '@');

	check_fix_say(
		f, "To limit the application to the synced mailboxes, in Exchange Online "
		   "PowerShell (Connect-ExchangeOnline), with RBAC for Applications (<enterprise "
		   "app object id>: Entra admin center, Enterprise applications, the app's Object "
		   "ID; <group DN>: Get-Group calsync-users | fl DistinguishedName):");
	check_fix_cmd(f,
	              "New-ServicePrincipal -AppId %s -ObjectId <enterprise app object id> "
	              "-DisplayName calsync",
	              id);
	check_fix_cmd(f, "New-ManagementScope -Name calsync-users -RecipientRestrictionFilter "
	                 "\"MemberOfGroup -eq '<group DN>'\"");
	check_fix_cmd(f,
	              "New-ManagementRoleAssignment -App %s -Role \"Application Calendars.Read\" "
	              "-CustomResourceScope calsync-users",
	              id);
	check_fix_cmd(f, "Test-ServicePrincipalAuthorization -Identity %s -Resource %s", id, mbx);
	check_fix_say(f,
	              "With RBAC for Applications, remove the tenant-wide Calendars.Read consent "
	              "in Entra ID, or the scope has no effect. Or with an application access "
	              "policy (older, still honoured):");
	check_fix_cmd(f,
	              "New-ApplicationAccessPolicy -AppId %s -PolicyScopeGroupId calsync-users@%s "
	              "-AccessRight RestrictAccess -Description \"calsync\"",
	              id, at != NULL ? at + 1 : "contoso.example");
	check_fix_cmd(f, "Test-ApplicationAccessPolicy -Identity %s -AppId %s", mbx, id);
}

void check_fix_graph_permission(const struct check *c, struct fix *f, bool user_lookup)
{
	const char *id = c->cfg->graph->client_id;

	if (user_lookup) {
		check_fix_say(
			f,
			"calsync looks each mailbox up in the directory (GET /users/{address}), "
			"which needs the Microsoft Graph application permission User.Read.All. "
			"In the Entra admin center, App registrations, %s, API permissions: Add "
			"a permission, Microsoft Graph, Application permissions, User.Read.All; "
			"then Grant admin consent for the tenant, or:",
			id);
		check_fix_cmd(f, "az ad app permission admin-consent --id %s", id);
		return;
	}
	check_fix_say(
		f,
		"The app registration %s needs the Microsoft Graph *application* permission "
		"Calendars.Read with admin consent, and this mailbox inside any RBAC for "
		"Applications scope or application access policy that limits it. In the Entra "
		"admin center, App registrations, %s, API permissions: Add a permission, "
		"Microsoft Graph, Application permissions, Calendars.Read; then Grant admin "
		"consent for the tenant, or:",
		id, id);
	check_fix_cmd(f, "az ad app permission admin-consent --id %s", id);
	fix_scope(c, f);
}

void check_fix_graph_mailbox(const struct check *c, struct fix *f, const struct gmbx *m,
                             const struct graph_verdict *v)
{
	char *q = check_ps_quote(m->smtp);

	if ((v->flags & GRAPH_VF_REHOME) && m->why == GWHY_PINNED) {
		check_fix_say(f,
		              "Remove backend=\"graph\" from its <mailbox> (Autodiscover then "
		              "finds where it lives), or move the mailbox to Exchange Online "
		              "first. Where it lives (Exchange Management Shell: UserMailbox is on "
		              "premises, RemoteUserMailbox in Exchange Online):");
		check_fix_cmd(f, "Get-Recipient -Identity %s | fl RecipientTypeDetails", q);
	} else if (v->flags & GRAPH_VF_REHOME) {
		check_fix_say(f, "%s. In Exchange Online PowerShell:", v->fix);
		check_fix_cmd(
			f,
			"Get-EXOMailbox -Identity %s | fl RecipientTypeDetails,IsInactiveMailbox",
			q);
	} else {
		check_fix_say(
			f,
			"Graph finds a user by its userPrincipalName (or object id): check that "
			"%s is the user's UPN in tenant %s, then correct or remove it in "
			"<mailboxes>. In Exchange Online PowerShell:",
			m->smtp, c->cfg->graph->tenant);
		check_fix_cmd(f,
		              "Get-EXORecipient -Identity %s | fl "
		              "RecipientTypeDetails,PrimarySmtpAddress,ExternalDirectoryObjectId",
		              q);
	}
	free(q);
}

void check_fix_graph_network(const struct check *c, struct fix *f, int rc, const char *url)
{
	struct url_parts u = {0};

	(void)c;
	if (check_url_split(url, &u, NULL) < 0)
		(void)snprintf(u.host, sizeof(u.host), "%s", url);
	if (rc == -EKEYREJECTED) {
		check_fix_say(
			f,
			"The certificate %s presented is not trusted or does not name it. "
			"Microsoft's hosts have certificates of public CAs in this machine's "
			"trust store (/etc/ssl/certs, the ca-certificates package); a proxy or "
			"firewall that inspects TLS replaces them with its own: exempt %s, or add "
			"its CA (update-ca-certificates). The chain it sends:",
			u.host, u.host);
		check_fix_cmd(
			f, "openssl s_client -connect %s:%ld -servername %s -showcerts </dev/null",
			u.host, u.port, u.host);
		return;
	}
	if (rc == -ENOENT) {
		check_fix_say(f,
		              "Point <tls ca_file=\"...\"> at a readable PEM file, or remove it.");
		return;
	}
	check_fix_say(f,
	              "This machine must reach %s on port %ld: outbound HTTPS through the firewall "
	              "(calsync connects directly; it uses no http_proxy or https_proxy). Check "
	              "from here:",
	              u.host, u.port);
	if (rc == -EHOSTUNREACH)
		check_fix_cmd(f, "getent hosts %s", u.host);
	check_fix_cmd(f, "curl -sv -o /dev/null %s://%s:%ld/", u.https ? "https" : "http", u.host,
	              u.port);
}
