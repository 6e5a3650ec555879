/* SPDX-License-Identifier: MIT */
/*
 * check-fix.c: what an operator should do: the fix texts (Exchange Management Shell commands
 * and sentences) for impersonation, unknown mailboxes, versions, throttling, refused
 * credentials and Extended Protection, and, for an EWS error code, what it means and which fix
 * goes with it (check_step_error).
 */
#include "cli/check-int.h"

#include "config/config.h"

/* ---- fixes ----------------------------------------------------------------------------------- */

const char *check_vdir_noun(enum role role)
{
	return role == ROLE_AUTODISCOVER ? "AutodiscoverVirtualDirectory"
	                                 : "WebServicesVirtualDirectory";
}

void check_fix_impersonation(const struct check *c, struct fix *f)
{
	check_fix_say(f,
	              "Give the service account the ApplicationImpersonation role over the synced "
	              "mailboxes (Exchange Management Shell):");
	check_fix_cmd(f,
	              "New-ManagementScope -Name \"calsync-users\" -RecipientRestrictionFilter "
	              "{MemberOfGroup -eq \"CN=calsync-users,CN=Users,%s\"}",
	              c->dc);
	check_fix_cmd(
		f,
		"New-ManagementRoleAssignment -Name \"calsync-impersonation\" -Role "
		"ApplicationImpersonation -User %s -CustomRecipientWriteScope \"calsync-users\"",
		c->account);
	check_fix_say(
		f, "The scope's filter must match every synced mailbox (here: the members of the "
		   "group calsync-users); without -CustomRecipientWriteScope the role covers every "
		   "mailbox. The assignments that exist:");
	check_fix_cmd(f, "Get-ManagementRoleAssignment -Role ApplicationImpersonation | fl "
	                 "Name,RoleAssigneeName,CustomRecipientWriteScope");
	check_fix_say(
		f, "The service account must not be a member of Domain Admins, Exchange Servers or "
		   "Organization Management.");
}

void check_fix_mailbox(const struct check *c, struct fix *f, const char *smtp)
{
	char *q = check_ps_quote(smtp);

	check_fix_say(f, "Check the address, then correct it or remove it from <mailboxes>:");
	check_fix_cmd(
		f, "Get-Recipient -Identity %s | fl Name,RecipientTypeDetails,PrimarySmtpAddress",
		q);
	check_fix_say(f,
	              "If it is a mailbox, the ApplicationImpersonation scope may leave it out:");
	check_fix_cmd(f, "Get-ManagementRoleAssignment -Role ApplicationImpersonation | fl "
	                 "Name,RoleAssigneeName,CustomRecipientWriteScope");
	free(q);
}

void check_fix_primary(struct fix *f, const char *smtp)
{
	char *q = check_ps_quote(smtp);

	check_fix_say(f,
	              "List the mailbox by its primary SMTP address in <mailboxes> (or use "
	              "<ews impersonation=\"SmtpAddress\">, which accepts other addresses too):");
	check_fix_cmd(f, "Get-Recipient -Identity %s | fl PrimarySmtpAddress", q);
	free(q);
}

void check_fix_version(struct fix *f)
{
	check_fix_say(
		f, "Set <ews version=\"...\"> to a RequestServerVersion the server knows: "
		   "Exchange2013_SP1 (the default) for Exchange 2013 and later, Exchange2016 for "
		   "2016, 2019 and Subscription Edition.");
}

void check_fix_throttling(const struct check *c, struct fix *f, bool hanging)
{
	check_fix_say(f, "Give the service account a throttling policy without limits (Exchange "
	                 "Management Shell):");
	check_fix_cmd(f, "New-ThrottlingPolicy -Name \"calsync\" -EwsMaxConcurrency Unlimited "
	                 "-EwsMaxSubscriptions Unlimited -EwsMaxBurst Unlimited -EwsRechargeRate "
	                 "Unlimited -EwsCutoffBalance Unlimited -RcaMaxConcurrency Unlimited "
	                 "-CpaMaxConcurrency Unlimited");
	check_fix_cmd(f,
	              "Set-ThrottlingPolicyAssociation -Identity %s -ThrottlingPolicy \"calsync\"",
	              c->account);
	if (hanging)
		check_fix_say(
			f, "HangingConnectionLimit (open streaming connections per account or "
			   "impersonated mailbox) is not part of a throttling policy: it is the "
			   "appSettings key HangingConnectionLimit in the EWS web.config of every "
			   "Exchange server.");
}

/* For a refused authenticated request (the transport's -EACCES). */
void check_fix_auth(const struct check *c, struct fix *f, long http, enum role role)
{
	const char *noun = check_vdir_noun(role);

	if (http == 403) {
		check_fix_say(f, "EWS may be blocked for the service account or the organisation:");
		check_fix_cmd(
			f, "Get-CASMailbox -Identity %s | fl EwsEnabled,EwsAllowList,EwsBlockList",
			c->account);
		check_fix_cmd(f, "Set-CASMailbox -Identity %s -EwsEnabled $true", c->account);
		check_fix_cmd(f,
		              "Get-OrganizationConfig | fl EwsEnabled,EwsApplicationAccessPolicy");
		return;
	}
	if (http == 456) {
		check_fix_say(
			f, "The service account is locked out: unlock it in Active Directory, and "
			   "find what locked it (an old password somewhere).");
		return;
	}
	if (c->cfg->auth == EWS_AUTH_BEARER) {
		check_fix_say(f, "The bearer token was refused: it expired, was issued for another "
		                 "audience, or OAuth is not enabled on the virtual directory:");
		check_fix_cmd(f, "Get-%s | fl *Authentication*", noun);
		return;
	}
	check_fix_say(
		f,
		"Check the account in <account user=\"...\"> (%s), the password calsync reads "
		"from password_file or password_env, and that the account is not locked out, "
		"disabled or expired. Check the methods the virtual directory accepts:",
		c->account);
	check_fix_cmd(f, "Get-%s | fl *Authentication*", noun);
}

/*
 * Extended Protection refusing calsync's channel binding: what to compare, and the fixes on
 * Exchange's side and on calsync's. certain: NTLM without a binding was accepted, so the
 * binding is the problem; else it is one explanation beside the credentials.
 */
void check_fix_extended_protection(const struct check *c, struct fix *f, enum role role,
                                   const struct cert *cert, bool certain)
{
	const char *noun = check_vdir_noun(role);

	if (!certain)
		check_fix_say(
			f,
			"If the account and password are right: Extended Protection set to Require "
			"refuses calsync's channel binding when something between calsync and "
			"Exchange terminates TLS (a load balancer, a reverse proxy, TLS "
			"inspection); NTLM without a binding was refused as well.");
	check_fix_say(
		f,
		"calsync binds its NTLM login to the server certificate it sees: SHA-1 thumbprint "
		"%s (%s, issued by %s). Compare it with the certificate IIS on Exchange uses; a "
		"different one means TLS ends before Exchange:",
		cert->sha1[0] ? cert->sha1 : "unknown", cert->subject[0] ? cert->subject : "?",
		cert->issuer[0] ? cert->issuer : "?");
	check_fix_cmd(f, "Get-ExchangeCertificate | Where-Object {$_.Services -match 'IIS'} | fl "
	                 "Thumbprint,Subject,CertificateDomains");
	check_fix_say(
		f,
		"Fix it on that device: pass TLS through to Exchange, or re-encrypt to Exchange "
		"(SSL bridging) with the same certificate as Exchange's; Extended Protection does "
		"not work with SSL offloading. Or let calsync connect to the Exchange server "
		"directly (%s).",
		role == ROLE_AUTODISCOVER ? "<autodiscover url> and <ews url>" : "<ews url>");
	check_fix_say(
		f,
		"Only as a last resort, turn the token check off on the virtual directory, which "
		"gives up its protection against NTLM relaying (Allow is not enough: it still "
		"refuses a binding that does not match):");
	check_fix_cmd(f,
	              "Get-%s | fl Server,ExtendedProtectionTokenChecking,ExtendedProtectionFlags",
	              noun);
	check_fix_cmd(f, "Get-%s | Set-%s -ExtendedProtectionTokenChecking None", noun, noun);
	check_fix_say(f,
	              "Or use a method Extended Protection does not bind: <account auth=\"basic\"> "
	              "over HTTPS, or auth=\"bearer\" (OAuth).");
	(void)c;
}

void check_cert_commands(struct fix *f)
{
	check_fix_say(f, "On Exchange, the certificates and the one bound to IIS:");
	check_fix_cmd(f, "Get-ExchangeCertificate | fl "
	                 "Thumbprint,Subject,Issuer,CertificateDomains,Services,NotAfter");
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
	enum fix_kind fix;
	const char *meaning;
} code_help[] = {
	{"ErrorAccessDenied", FIX_IMPERSONATION,
         "access denied: the service account lacks the rights for this mailbox"},
	{"ErrorExceededConnectionCount", FIX_THROTTLING,
         "Exchange throttled the request: too many concurrent requests on this budget "
         "(EWSMaxConcurrency, or HangingConnectionLimit for a stream)"},
	{"ErrorExceededSubscriptionCount", FIX_THROTTLING,
         "the mailbox has reached EWSMaxSubscriptions (default 5000): stale subscriptions of "
         "another client, or of calsync under another account, must expire or be unsubscribed"},
	{"ErrorFolderNotFound", FIX_MAILBOX, "the mailbox has no calendar folder calsync may read"},
	{"ErrorImpersonateUserDenied", FIX_IMPERSONATION,
         "the service account may not impersonate this mailbox: it lacks the "
         "ApplicationImpersonation role, or the role's scope leaves this mailbox out"},
	{"ErrorImpersonationDenied", FIX_IMPERSONATION,
         "the service account may not impersonate anyone: it lacks the ApplicationImpersonation "
         "role (the ms-Exch-EPI-Impersonation right on the Client Access server)"},
	{"ErrorImpersonationFailed", FIX_NONE,
         "Exchange failed while impersonating (EWS application pool, Active Directory or trust "
         "problems); check again, and alert if it stays"},
	{"ErrorIncorrectSchemaVersion", FIX_VERSION,
         "the server does not accept the configured RequestServerVersion"},
	{"ErrorInvalidExchangeImpersonationHeaderData", FIX_MAILBOX,
         "Exchange did not accept the mailbox's identifier in the impersonation header"},
	{"ErrorInvalidSchemaVersionForMailboxVersion", FIX_VERSION,
         "the mailbox's server does not accept the configured RequestServerVersion"},
	{"ErrorInvalidServerVersion", FIX_VERSION,
         "the server does not accept the configured RequestServerVersion"},
	{"ErrorMailboxMoveInProgress", FIX_NONE,
         "the mailbox is being moved; check it again after the move"},
	{"ErrorNonExistentMailbox", FIX_MAILBOX,
         "Exchange has no mailbox with this address (a typing error, a removed mailbox, a user "
         "without a mailbox)"},
	{"ErrorNonPrimarySmtpAddress", FIX_PRIMARY,
         "this is not the mailbox's primary SMTP address"},
	{"ErrorServerBusy", FIX_THROTTLING,
         "Exchange throttled the request (ErrorServerBusy), also after the back-off it asked for"},
	{"ErrorSyncFolderNotFound", FIX_MAILBOX,
         "the mailbox has no calendar folder calsync may read"},
	{"ErrorTooManyObjectsOpened", FIX_THROTTLING,
         "Exchange throttled the request: too many objects open for this budget"},
};

/* How a step reports an answer of class cls: what the daemon retries or waits out is a warning,
 * what it parks a mailbox or the account for is a failure. */
static enum status status_of(enum ews_error_class cls)
{
	switch (cls) {
	case EWS_ERR_CLIENT_BUG:
	case EWS_ERR_MAILBOX_PERMANENT:
	case EWS_ERR_ACCOUNT_PERMANENT:
		return ST_FAIL;
	case EWS_ERR_NONE:
	case EWS_ERR_TRANSIENT:
	case EWS_ERR_THROTTLED:
	case EWS_ERR_SUBSCRIPTION_LOST:
	case EWS_ERR_UNKNOWN:
	default:
		return ST_WARN;
	}
}

/* What an answer of class cls means, for a code check_help knows nothing more about. */
static const char *meaning_of(enum ews_error_class cls)
{
	switch (cls) {
	case EWS_ERR_TRANSIENT:
		return "a transient server problem; check again later";
	case EWS_ERR_THROTTLED:
		return "Exchange throttled the request";
	case EWS_ERR_SUBSCRIPTION_LOST:
		return "the subscription was lost at once (the daemon would subscribe again); check "
		       "again later";
	case EWS_ERR_CLIENT_BUG:
		return "Exchange refused calsync's request as invalid: a calsync bug or a server "
		       "calsync does not support; please report it with this output";
	case EWS_ERR_MAILBOX_PERMANENT:
		return "Exchange refuses this for the mailbox";
	case EWS_ERR_ACCOUNT_PERMANENT:
		return "Exchange refuses this for the service account";
	case EWS_ERR_NONE:
	case EWS_ERR_UNKNOWN:
	default:
		return "a code calsync does not expect here (the daemon treats unknown codes as "
		       "transient)";
	}
}

static void help_fix(const struct check *c, enum fix_kind kind, const char *mailbox, const char *op,
                     struct fix *f)
{
	switch (kind) {
	case FIX_IMPERSONATION:
		check_fix_impersonation(c, f);
		break;
	case FIX_MAILBOX:
		check_fix_mailbox(c, f, mailbox != NULL ? mailbox : "");
		break;
	case FIX_PRIMARY:
		check_fix_primary(f, mailbox != NULL ? mailbox : "");
		break;
	case FIX_VERSION:
		check_fix_version(f);
		break;
	case FIX_THROTTLING:
		check_fix_throttling(c, f, check_str_is(op, "GetStreamingEvents"));
		break;
	case FIX_NONE:
		break;
	}
}

/*
 * Adds the step for an answer that is not usable. The verdict decides: its class gives the
 * status (throttling is a warning), its code the meaning and fix when check_help has them.
 */
void check_step_error(struct check *c, const char *name, const char *mailbox, const char *op,
                      const struct answer *a)
{
	const struct ews_verdict *v = &a->v;
	struct fix f = {0};
	const struct code_help *h = NULL;
	const char *meaning;

	if (!a->answered) {
		if (ews_verdict_is_auth(v))
			check_fix_auth(c, &f, v->http_status, ROLE_EWS);
		check_step_add(c, name, mailbox, v->cls == EWS_ERR_THROTTLED ? ST_WARN : ST_FAIL,
		               &f, "%s: %s%s", op, a->why, a->retried);
		return;
	}
	for (size_t i = 0; i < sizeof(code_help) / sizeof(code_help[0]) && h == NULL; i++)
		if (ews_verdict_is(v, code_help[i].code))
			h = &code_help[i];
	meaning = h != NULL ? h->meaning : meaning_of(v->cls);
	if (h != NULL)
		help_fix(c, h->fix, mailbox, op, &f);
	if (ews_verdict_is(v, "bad-response")) /* no code: the verdict's message says so */
		check_step_add(c, name, mailbox, status_of(v->cls), &f, "%s: %s: %s%s", op, v->msg,
		               meaning, a->retried);
	else
		check_step_add(c, name, mailbox, status_of(v->cls), &f, "%s: %s: %s%s%s%s%s", op,
		               v->code, meaning, v->text[0] != '\0' ? " (Exchange: \"" : "",
		               v->text, v->text[0] != '\0' ? "\")" : "", a->retried);
}
