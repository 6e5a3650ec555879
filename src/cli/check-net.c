/* SPDX-License-Identifier: MIT */
/*
 * check-net.c: the network steps of one endpoint: dns (getaddrinfo), tcp and tls (from the
 * unauthenticated probe of check-probe.c: connect time, certificate, why verification failed),
 * then auth-methods (check-auth.c) from the same probe.
 */
#include "cli/check-int.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <sys/socket.h>

#include "config/config.h"

/* A certificate that expires sooner than this is worth a warning. */
#define CHECK_CERT_WARN_DAYS 30

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
		check_step_add(c, "dns", NULL, ST_OK, NULL,
		               "%s is an IP address: nothing to resolve", u->host);
		return true;
	}
	rc = getaddrinfo(u->host, NULL, &hints, &res);
	if (rc != 0) {
		struct fix f = {0};

		if (role == ROLE_AUTODISCOVER && c->cfg->autodiscover_url == NULL)
			check_fix_say(
				&f,
				"calsync derives the Autodiscover host from the mail domain. Publish "
				"%s in DNS, or name the server in the configuration: <autodiscover "
				"url=\"...\"> or <ews url=\"https://<server>/EWS/Exchange.asmx\">.",
				u->host);
		else
			check_fix_say(
				&f,
				"Check the host name in the configuration and this machine's DNS "
				"(/etc/resolv.conf):");
		check_fix_cmd(&f, "getent hosts %s", u->host);
		check_step_add(c, "dns", NULL, ST_FAIL, &f, "cannot resolve %s: %s", u->host,
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
	check_step_add(c, "dns", NULL, ST_OK, NULL, "%s resolves to %s", u->host, list);
	return true;
}

static bool step_tcp(struct check *c, const char *url, const struct url_parts *u,
                     const struct probe *p)
{
	struct fix f = {0};

	if (p->res == CURLE_COULDNT_CONNECT || p->res == CURLE_COULDNT_RESOLVE_HOST ||
	    (p->res == CURLE_OPERATION_TIMEDOUT && p->connect_us == 0)) {
		check_fix_say(
			&f,
			"Check that the server listens on port %ld and that no firewall between "
			"this machine and it blocks the connection:",
			u->port);
		check_fix_cmd(&f, "curl -sv -o /dev/null %s", url);
		check_step_add(
			c, "tcp", NULL, ST_FAIL, &f, "cannot connect to %s port %ld: %s%s", u->host,
			u->port, p->errbuf,
			p->res == CURLE_OPERATION_TIMEDOUT
				? " (no answer: a firewall dropping packets, or a wrong address)"
				: " (refused: nothing listens there; unreachable: routing)");
		return false;
	}
	check_step_add(c, "tcp", NULL, ST_OK, NULL, "connected to %s port %ld in %" PRId64 " ms",
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
		check_probe_run(c, url, false, true, &d);
		cert = &d.cert;
	}
	names = cert->san[0] ? cert->san : cert->subject[0] ? cert->subject : "other names";
	if (p->res == CURLE_SSL_CACERT_BADFILE) {
		(void)snprintf(why, why_size, "cannot read the CA file <tls ca_file=\"%s\">: %s",
		               c->cfg->ca_file != NULL ? c->cfg->ca_file : "", p->errbuf);
		check_fix_say(
			f,
			"Point <tls ca_file> at a readable PEM file holding the CA that issued the "
			"server's certificate.");
	} else if (p->res == CURLE_PEER_FAILED_VERIFICATION && v == X509_ERR_CERT_HAS_EXPIRED) {
		(void)snprintf(why, why_size, "the certificate of %s (%s) expired on %s", u->host,
		               cert->subject, cert->expire[0] ? cert->expire : "an earlier date");
		check_fix_say(f, "Renew the certificate on Exchange and bind the new one to IIS:");
		check_fix_cmd(f,
		              "Get-ExchangeCertificate | fl Thumbprint,Subject,CertificateDomains,"
		              "Services,NotAfter");
		check_fix_cmd(f, "Enable-ExchangeCertificate -Thumbprint <thumbprint of the new "
		                 "certificate> -Services IIS");
	} else if (p->res == CURLE_PEER_FAILED_VERIFICATION && v == X509_ERR_CERT_NOT_YET_VALID) {
		(void)snprintf(
			why, why_size,
			"the certificate of %s is not valid yet: check the clock of this machine "
			"and of the server",
			u->host);
		check_fix_cmd(f, "timedatectl");
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
		check_fix_say(
			f,
			"Save the CA certificate that issued it (PEM) on this machine and name it "
			"in the configuration: <tls ca_file=\"/etc/calsync/exchange-ca.pem\"/>. The "
			"chain the server sends:");
		check_fix_cmd(
			f, "openssl s_client -connect %s:%ld -servername %s -showcerts </dev/null",
			u->host, u->port, u->host);
		check_cert_commands(f);
	} else if (p->res == CURLE_PEER_FAILED_VERIFICATION &&
	           (v == X509_ERR_HOSTNAME_MISMATCH || strstr(p->errbuf, "subject name") != NULL)) {
		(void)snprintf(why, why_size, "the certificate names %s, not %s: %s", names,
		               u->host, p->errbuf);
		check_fix_say(
			f,
			"Use a URL with a name the certificate holds (<ews url> or <autodiscover "
			"url>), or give Exchange a certificate that names %s and bind it to IIS:",
			u->host);
		check_cert_commands(f);
		check_fix_cmd(f,
		              "Enable-ExchangeCertificate -Thumbprint <thumbprint> -Services IIS");
	} else if (p->res == CURLE_PEER_FAILED_VERIFICATION) {
		(void)snprintf(why, why_size,
		               "the certificate of %s was refused (OpenSSL verify code "
		               "%ld): %s",
		               u->host, v, p->errbuf);
		check_cert_commands(f);
	} else {
		(void)snprintf(why, why_size, "TLS handshake with %s failed: %s", u->host,
		               p->errbuf);
		check_fix_say(f, "Check that port %ld speaks HTTPS and accepts TLS 1.2 or later:",
		              u->port);
		check_fix_cmd(f, "openssl s_client -connect %s:%ld -servername %s </dev/null",
		              u->host, u->port, u->host);
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
		check_fix_say(
			&f, "Use the https:// URL of the virtual directory: over plain HTTP the "
			    "credentials (Basic: the password itself) and the calendars cross the "
			    "network readable.");
		check_fix_cmd(
			&f, "Get-WebServicesVirtualDirectory | fl Server,InternalUrl,ExternalUrl");
		check_step_add(c, "tls", NULL, ST_WARN, &f, "%s: plain HTTP, not encrypted",
		               u->host);
		return true;
	}
	if (tls_failed(p->res) &&
	    !(p->appconnect_us > 0 && p->res != CURLE_PEER_FAILED_VERIFICATION)) {
		explain_tls(c, url, u, p, why, sizeof(why), &f);
		if (!c->cfg->insecure_skip_tls_verify) {
			check_step_add(c, "tls", NULL, ST_FAIL, &f, "%s", why);
			return false;
		}
		check_step_add(
			c, "tls", NULL, ST_WARN, &f,
			"%s; <tls insecure_skip_tls_verify=\"true\"> connects anyway, so anyone on "
			"the path can read the credentials",
			why);
		check_probe_run(c, url, false, false, p);
		return !tls_failed(p->res);
	}
	if (c->cfg->insecure_skip_tls_verify) {
		check_fix_say(
			&f,
			"Remove insecure_skip_tls_verify from <tls>: the certificate is trusted.");
		check_step_add(
			c, "tls", NULL, ST_WARN, &f,
			"the certificate of %s is trusted, but <tls insecure_skip_tls_verify=\"true\"> "
			"turns checking off",
			u->host);
		return true;
	}
	days = p->cert.have && check_cert_time(p->cert.expire, &expire_utc)
	               ? (expire_utc - clock_now_utc()) / DAY_SEC
	               : INT64_MAX;
	if (days < CHECK_CERT_WARN_DAYS) {
		check_fix_say(
			&f, "Renew it on Exchange and bind the new one to IIS before it expires:");
		check_fix_cmd(&f,
		              "Get-ExchangeCertificate | fl Thumbprint,Subject,CertificateDomains,"
		              "Services,NotAfter");
		check_fix_cmd(&f, "Enable-ExchangeCertificate -Thumbprint <thumbprint of the new "
		                  "certificate> -Services IIS");
		check_step_add(c, "tls", NULL, ST_WARN, &f,
		               "the certificate of %s (%s) expires in %" PRId64 " day%s, on %s",
		               u->host, p->cert.subject, days, days == 1 ? "" : "s",
		               p->cert.expire);
		return true;
	}
	check_step_add(c, "tls", NULL, ST_OK, NULL, "certificate of %s trusted%s%s%s%s%s%s%s%s%s",
	               u->host, p->cert.subject[0] ? ": " : "", p->cert.subject,
	               p->cert.san[0] ? " (" : "", p->cert.san, p->cert.san[0] ? ")" : "",
	               p->cert.issuer[0] ? ", issued by " : "", p->cert.issuer,
	               p->cert.expire[0] ? ", valid until " : "", p->cert.expire);
	return true;
}

/* dns, tcp, tls and auth-methods of one endpoint. false when nothing more can be sent there. */
bool check_endpoint(struct check *c, const char *url, enum role role)
{
	struct url_parts u = {0};
	struct probe p;
	struct err err = {0};

	if (check_url_split(url, &u, &err) < 0) {
		check_step_add(c, "dns", NULL, ST_FAIL, NULL, "%s", err.msg);
		return false;
	}
	if (!step_dns(c, &u, role)) {
		check_skip(c, "tcp", "the host name does not resolve");
		check_skip(c, "tls", "the host name does not resolve");
		check_skip(c, "auth-methods", "the host name does not resolve");
		return false;
	}
	check_probe_run(c, url, true, false, &p);
	if (!step_tcp(c, url, &u, &p)) {
		check_skip(c, "tls", "no connection");
		check_skip(c, "auth-methods", "no connection");
		return false;
	}
	if (!step_tls(c, url, &u, &p)) {
		check_skip(c, "auth-methods", "TLS failed");
		return false;
	}
	return check_step_auth_methods(c, url, &u, &p, role);
}
