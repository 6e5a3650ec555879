/* SPDX-License-Identifier: MIT */
/*
 * ews-transport-lane.c: connections live in lanes. A lane is a CURLSH that shares only its
 * connection cache, and the multi handle keeps at most one idle connection per cache
 * (CURLMOPT_MAXCONNECTS 1), so a lane holds at most one connection. A call checks a lane out for
 * its whole life (HTTP/1.1, one request per connection at a time; a stream holds its lane until
 * it ends) and gives it back when it finishes. No other transfer can be handed the lane's
 * connection meanwhile, which is what NTLM needs: its legs run on one connection, and a later
 * call on that lane reuses the authenticated connection without a handshake. The connection
 * caps are counted in lanes.
 *
 * The NTLM legs are here too: leg 1 goes out with "Authorization: NTLM <NEGOTIATE>" and an empty
 * body, and the 401 that carries the CHALLENGE also yields the server certificate of that same
 * connection, read from libcurl's SSL* in the header callback; leg 3 carries the AUTHENTICATE
 * with the channel binding token and the real body. Plain http:// binds to nothing (16 zero
 * bytes).
 */
#include "ews/ews-transport-int.h"

#include <assert.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <strings.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"

/* -- lanes ----------------------------------------------------------------------------------- */

/* A lane whose connection is authenticated and young enough for libcurl to reuse it. */
static bool lane_fresh(const struct lane *l, int64_t now)
{
	return l->authed && now - l->idle_since_usec < EWS_MAX_IDLE_SEC * USEC_PER_SEC;
}

static CURLSH *share_new(void)
{
	CURLSH *sh = curl_share_init();

	if (sh != NULL &&
	    curl_share_setopt(sh, CURLSHOPT_SHARE, (long)CURL_LOCK_DATA_CONNECT) != CURLSHE_OK) {
		(void)curl_share_cleanup(sh);
		sh = NULL;
	}
	return sh;
}

/*
 * A free lane for c, or NULL when c must wait. In order: a free lane whose connection goes to
 * c's origin (an authenticated one first, then the one used last); else, below the host cap, a
 * lane without a connection, a new lane below the total cap, or the free lane idle the longest,
 * whose connection to another origin is closed.
 */
struct lane *ews_transport_lane_pick(struct ews_transport *t, const struct ews_call *c)
{
	struct lane *best = NULL;
	struct lane *empty = NULL;
	struct lane *other = NULL;
	unsigned same = 0;
	int64_t now = clock_now_usec();

	for (unsigned i = 0; i < t->n_lanes; i++) {
		struct lane *l = &t->lanes[i];

		if (strcmp(l->origin, c->origin) == 0) {
			same++;
			if (l->call != NULL)
				continue;
			if (best == NULL || (lane_fresh(l, now) && !lane_fresh(best, now)) ||
			    (lane_fresh(l, now) == lane_fresh(best, now) &&
			     l->idle_since_usec > best->idle_since_usec))
				best = l;
		} else if (l->call == NULL && l->origin[0] == '\0') {
			if (empty == NULL)
				empty = l;
		} else if (l->call == NULL) {
			if (other == NULL || l->idle_since_usec < other->idle_since_usec)
				other = l;
		}
	}
	if (best != NULL)
		return best;
	if (same >= t->max_host)
		return NULL;
	if (empty != NULL)
		return empty;
	if (t->n_lanes < t->max_total) {
		struct lane *l = &t->lanes[t->n_lanes];
		l->share = share_new();
		if (l->share == NULL)
			return NULL;
		t->n_lanes++;
		return l;
	}
	if (other != NULL) {
		/* A free lane holds no easy handle (ews_transport_lane_release detached it), so
		 * its cache can go, closing the idle connection, and the cap stays a cap. */
		CURLSH *sh = share_new();
		if (sh == NULL || curl_share_cleanup(other->share) != CURLSHE_OK) {
			if (sh != NULL)
				(void)curl_share_cleanup(sh);
			return NULL;
		}
		other->share = sh;
		other->origin[0] = '\0';
		other->authed = false;
		return other;
	}
	return NULL;
}

/*
 * Gives c's lane back; c must not be in the multi handle. conn_ok false: the connection may be
 * gone or half-used (an error, a cancel), so it is no longer known to be authenticated.
 */
void ews_transport_lane_release(struct ews_call *c, bool conn_ok)
{
	struct lane *l = c->lane;

	assert(!c->added);
	(void)curl_easy_setopt(c->easy, CURLOPT_SHARE, NULL);
	if (!conn_ok)
		l->authed = false;
	l->call = NULL;
	l->idle_since_usec = clock_now_usec();
	c->lane = NULL;
	c->t->dispatch_needed = true;
}

/* -- the NTLM legs --------------------------------------------------------------------------- */

/*
 * The channel binding token of the connection the current response arrives on: its server
 * certificate, taken from libcurl's OpenSSL session while the connection is attached to this
 * transfer (here, in the header callback of the 401 that carries the CHALLENGE). Another TLS
 * backend gives no certificate: the token stays zeros, which a server that requires channel
 * binding refuses, and the 401's message says why.
 */
static void capture_cbt(struct ews_call *c)
{
	struct curl_tlssessioninfo *ti = NULL;
	X509 *cert;
	unsigned char *der = NULL;
	int len;

	c->cbt_kind = CBT_UNAVAILABLE;
	memset(c->cbt, 0, sizeof(c->cbt));
	if (curl_easy_getinfo(c->easy, CURLINFO_TLS_SSL_PTR, &ti) != CURLE_OK || ti == NULL ||
	    ti->backend != CURLSSLBACKEND_OPENSSL || ti->internals == NULL)
		return;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	cert = SSL_get1_peer_certificate((const SSL *)ti->internals);
#else
	cert = SSL_get_peer_certificate((const SSL *)ti->internals);
#endif
	if (cert == NULL)
		return;
	len = i2d_X509(cert, &der);
	if (len > 0 && ews_channel_bindings_md5(c->t->crypto, der, (size_t)len, c->cbt, NULL) == 0)
		c->cbt_kind = CBT_CERT;
	OPENSSL_free(der);
	X509_free(cert);
}

/* A WWW-Authenticate value: notes an NTLM offer, and on leg 1's 401 keeps the CHALLENGE. */
void ews_transport_capture_www_auth(struct ews_call *c, const char *v, size_t n)
{
	if (n < 4 || strncasecmp(v, "NTLM", 4) != 0 || (n > 4 && v[4] != ' '))
		return;
	c->offers_ntlm = true;
	if (c->leg != LEG_NEGOTIATE || c->status != 401 || n <= 5 || c->challenge != NULL ||
	    n >= EWS_MAX_NTLM_HEADER)
		return;
	c->challenge = xmalloc(n + 1);
	memcpy(c->challenge, v, n);
	c->challenge[n] = '\0';
	if (c->https)
		capture_cbt(c);
}

/* Leg 1 of an NTLM handshake on c's lane. */
static int ntlm_begin(struct ews_call *c, struct err *err)
{
	char *hdr = NULL;
	int rc;

	c->handshakes++;
	c->cbt_kind = c->https ? CBT_UNAVAILABLE : CBT_NONE;
	ews_ntlm_free(c->ntlm);
	c->ntlm = ews_ntlm_new(c->t->crypto, c->t->user, c->t->password, err);
	if (c->ntlm == NULL)
		return err->code < 0 ? err->code : -EINVAL;
	rc = ews_ntlm_negotiate_header(c->ntlm, &hdr, err);
	if (rc == 0)
		rc = ews_transport_leg_start(c, LEG_NEGOTIATE, hdr, err);
	ews_transport_wipe_free(hdr);
	return rc;
}

/* Leg 3: AUTHENTICATE for the CHALLENGE leg 1 brought, with the channel binding. */
static int ntlm_finish(struct ews_call *c, struct err *err)
{
	char *hdr = NULL;
	struct err e = {0};
	int rc;

	rc = ews_ntlm_authenticate_header(
		c->ntlm, c->challenge, c->cbt_kind == CBT_CERT ? c->cbt : NULL, c->spn, &hdr, &e);
	/* The keys derived from the password are needed no longer. */
	ews_ntlm_free(c->ntlm);
	c->ntlm = NULL;
	if (rc < 0)
		return err_set(err, rc, "POST to %s: the server's NTLM challenge: %s", c->host,
		               e.msg);
	rc = ews_transport_leg_start(c, LEG_AUTHENTICATE, hdr, err);
	ews_transport_wipe_free(hdr);
	return rc;
}

/*
 * After one request of c ended: whether another leg follows (then it is started), or c is
 * finished. Keeps the lane's idea of its connection current. Outside libcurl only.
 */
bool ews_transport_next_leg(struct ews_call *c, CURLcode res)
{
	struct ews_transport *t = c->t;
	struct lane *l = c->lane;
	long nc = 0;
	int rc = 1;

	(void)curl_easy_getinfo(c->easy, CURLINFO_NUM_CONNECTS, &nc);
	if (nc > 0)
		l->authed = false; /* a new connection: nothing authenticated it yet */
	if (res != CURLE_OK) {
		l->authed = false;
		return false;
	}
	switch (c->leg) {
	case LEG_PLAIN:
		if (c->status != 401)
			return false;
		l->authed = false;
		if (!c->offers_ntlm || c->handshakes > 0 || c->t->user == NULL ||
		    c->t->password == NULL)
			return false;
		if (!c->our_ntlm) {
			/* libcurl 7.88 does not fall back from Negotiate to NTLM when GSS-API
			 * cannot make a token (no Kerberos ticket): the call ends with the 401. */
			if (t->auth != EWS_AUTH_NEGOTIATE)
				return false;
			c->our_ntlm = true;
			c->ntlm_retry = true;
			log_debug("ews: POST to %s: Negotiate refused, trying NTLM", c->host);
		} else {
			log_debug(
				"ews: POST to %s: the connection is not authenticated (any more), "
				"NTLM handshake",
				c->host);
		}
		rc = ntlm_begin(c, &c->cb_err);
		break;
	case LEG_NEGOTIATE:
		if (c->status == 401 && c->challenge != NULL) {
			rc = ntlm_finish(c, &c->cb_err);
		} else if (c->status == 401) {
			rc = err_set(&c->cb_err, -EACCES,
			             "POST to %s: HTTP 401: the server did not answer NTLM's first "
			             "message with a challenge (NTLM not enabled, or a proxy in "
			             "between strips it)",
			             c->host);
		} else if (!c->plain_resend) {
			/* Not asked to authenticate: the request goes again as it is, once. */
			c->plain_resend = true;
			rc = ews_transport_leg_start(c, LEG_PLAIN, NULL, &c->cb_err);
		} else {
			return false;
		}
		break;
	case LEG_AUTHENTICATE:
		if (nc > 0)
			c->new_conn_leg3 = true;
		if (c->status != 401) {
			l->authed = true;
			if (c->ntlm_retry && !t->ntlm_fallback) {
				t->ntlm_fallback = true;
				log_debug(
					"ews: Negotiate failed and NTLM worked: using NTLM from now on");
			}
		}
		return false;
	}
	if (rc < 0) {
		c->cb_rc = rc;
		return false;
	}
	return true;
}

/* Starts c on lane l. On failure l is free again and err says why. */
int ews_transport_lane_checkout(struct ews_call *c, struct lane *l, struct err *err)
{
	struct ews_transport *t = c->t;
	int rc;

	l->call = c;
	c->lane = l;
	if (strcmp(l->origin, c->origin) != 0) {
		(void)snprintf(l->origin, sizeof(l->origin), "%s", c->origin);
		l->authed = false;
	}
	c->our_ntlm =
		t->auth == EWS_AUTH_NTLM || (t->auth == EWS_AUTH_NEGOTIATE && t->ntlm_fallback &&
	                                     t->user != NULL && t->password != NULL);
	(void)curl_easy_setopt(c->easy, CURLOPT_SHARE, l->share);
	if (c->our_ntlm && !lane_fresh(l, clock_now_usec()))
		rc = ntlm_begin(c, err);
	else
		rc = ews_transport_leg_start(c, LEG_PLAIN, NULL, err);
	if (rc < 0 && c->added) {
		(void)curl_multi_remove_handle(t->multi, c->easy);
		c->added = false;
	}
	if (rc < 0)
		ews_transport_lane_release(c, true);
	return rc;
}
