/* SPDX-License-Identifier: MIT */
/*
 * ews-types.h: the two EWS enums that the configuration names (how impersonation names a mailbox,
 * how the transport authenticates), apart from the request and transport headers so that
 * config.h needs neither.
 */
#pragma once

/* How ExchangeImpersonation names the mailbox (t:ConnectingSID child). */
enum ews_id_type {
	EWS_ID_SMTP = 0,     /* t:SmtpAddress: what the Managed API sends for 2010+ (default) */
	EWS_ID_PRIMARY_SMTP, /* t:PrimarySmtpAddress */
	EWS_ID_PRINCIPAL,    /* t:PrincipalName (the UPN) */
};

enum ews_auth {
	EWS_AUTH_NONE = 0,
	EWS_AUTH_BASIC,     /* per request; only over TLS in production */
	EWS_AUTH_NTLM,      /* per connection: the keep-alive pool matters. NTLMv2 with channel
	                     * binding over HTTPS (Extended Protection), 16 zero bytes over HTTP */
	EWS_AUTH_NEGOTIATE, /* SPNEGO via GSS-API (a Kerberos ticket from the process's ccache or
	                     * keytab; libcurl 7.88 binds it to no channel); when that ends in a 401
	                     * that offers NTLM, the call goes on with our NTLM and user/password on
	                     * the same connection, and the transport stays on NTLM */
	EWS_AUTH_BEARER,    /* Authorization: Bearer <token> */
};
