/* SPDX-License-Identifier: MIT */
/*
 * config-api.c: <api>, the HTTP API's settings: enabled, the listen address, the token, TLS
 * and the readiness threshold.
 */
#include "config/config-int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "base/xalloc.h"

/* listen="HOST:PORT" (or attribute a): a numeric IPv4 address or a bracketed IPv6 one, and a port 0..65535. */
int cfgp_get_listen(struct parser *p, xmlNode *n, const char *a, char **host_out,
                    unsigned *port_out)
{
	static const char accepted[] =
		"HOST:PORT with a numeric address, e.g. 127.0.0.1:8745 or [::1]:8745 (port 0: any "
		"free port)";
	const char *v = cfgp_attr(p, n, a);
	const char *colon, *host;
	size_t host_len;
	char *end;
	unsigned long port;
	unsigned char addr[16];
	char buf[64];

	if (v == NULL)
		return 0;
	colon = strrchr(v, ':');
	if (colon == NULL || colon == v || colon[1] == '\0')
		return cfgp_fail_attr(p, n, a, v, "not accepted; accepted: %s", accepted);
	host = v;
	host_len = (size_t)(colon - v);
	if (host[0] == '[') {
		if (host_len < 3 || host[host_len - 1] != ']')
			return cfgp_fail_attr(p, n, a, v, "not accepted; accepted: %s", accepted);
		host++;
		host_len -= 2;
	}
	if (host_len >= sizeof(buf))
		return cfgp_fail_attr(p, n, a, v, "not accepted; accepted: %s", accepted);
	memcpy(buf, host, host_len);
	buf[host_len] = '\0';
	if (inet_pton(AF_INET, buf, addr) != 1 && inet_pton(AF_INET6, buf, addr) != 1)
		return cfgp_fail_attr(p, n, a, v, "not accepted; accepted: %s", accepted);
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || errno != 0 || port > 65535 || !isdigit((unsigned char)colon[1]))
		return cfgp_fail_attr(p, n, a, v, "not accepted; accepted: %s", accepted);
	free(*host_out);
	*host_out = xstrdup(buf);
	*port_out = (unsigned)port;
	return 0;
}

int cfgp_el_api(struct parser *p, xmlNode *n)
{
	static const char *const known[] = {"enabled",   "listen",     "token_file",
	                                    "token_env", "token",      "tls_cert",
	                                    "tls_key",   "ready_live", NULL};
	int rc;

	cfgp_check_attrs(p, n, known);
	p->api = n;
	rc = cfgp_get_bool(p, n, "enabled", &p->cfg->api_enabled);
	if (rc == 0)
		rc = cfgp_get_listen(p, n, "listen", &p->cfg->api_host, &p->cfg->api_port);
	if (rc == 0)
		rc = cfgp_get_secret(p, n, "token", "token_file", "token_env", &p->api_token_src);
	if (rc == 0)
		rc = cfgp_get_path(p, n, "tls_cert", &p->cfg->api_tls_cert);
	if (rc == 0)
		rc = cfgp_get_path(p, n, "tls_key", &p->cfg->api_tls_key);
	if (rc == 0 && (p->cfg->api_tls_cert == NULL) != (p->cfg->api_tls_key == NULL))
		rc = cfgp_fail(p, n, "give both tls_cert and tls_key, or neither");
	if (rc == 0)
		rc = cfgp_get_nums(p, n);
	return rc;
}

/* Reads the API token, after the whole document was checked. */
int cfgp_api_finish(struct parser *p)
{
	const struct secret_src *src = &p->api_token_src;
	char **dst = &p->cfg->api_token;

	if (p->api == NULL || src->attr == NULL || p->offline)
		return 0;
	return src->is_file ? cfgp_read_secret_file(p, p->api, src->attr, src->value, dst)
	                    : cfgp_read_secret_env(p, p->api, src->attr, src->value, dst);
}
