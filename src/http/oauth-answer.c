/* SPDX-License-Identifier: MIT */
/*
 * oauth-answer.c: the token endpoint's answer. A 200 carries {"token_type":"Bearer",
 * "expires_in":3599,"access_token":"..."}; anything else is an error, classified by what it
 * takes to fix it. Entra ID answers errors as RFC 6749 5.2 says, with its own additions:
 * {"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret
 * provided. ...\r\nTrace ID: ...","error_codes":[7000215],...}. Errors an administrator must fix
 * (credentials, consent, scope, tenant) are permanent (-EACCES); a busy or failing endpoint is
 * transient (-EAGAIN).
 */
#include "http/oauth-int.h"

#include <errno.h>
#include <jansson.h>
#include <strings.h>

#include "base/xalloc.h"

/* The description's first line is cut here: the rest of the message must fit as well. */
#define DESCRIPTION_MAX 200u

/* What each OAuth error means for the operator. */
static const struct {
	const char *error;
	const char *hint;
} hints[] = {
	{"invalid_client", "the client secret or certificate was refused"},
	{"unauthorized_client", "the application is unknown in the tenant or may not do this"},
	{"invalid_scope", "the scope is not valid for the application"},
	{"invalid_request", "the request was refused (an unknown tenant, or a bad parameter)"},
	{"invalid_grant", "the grant was refused"},
	{"unsupported_grant_type", "the endpoint does not offer client credentials"},
	{"access_denied", "access denied (admin consent missing?)"},
	{"consent_required", "admin consent is missing"},
	{"interaction_required", "the tenant's policy requires an interactive sign-in"},
};

void oauth_answer_clear(struct oauth_answer *a)
{
	if (a->access_token != NULL) {
		explicit_bzero(a->access_token, strlen(a->access_token));
		free(a->access_token);
	}
	a->access_token = NULL;
	a->expires_in_sec = 0;
}

/* Wipes a string jansson owns (before its json_decref). */
static void wipe_json_string(json_t *s)
{
	if (json_is_string(s))
		explicit_bzero((char *)(uintptr_t)json_string_value(s), json_string_length(s));
}

/* RFC 6750 2.1 b64token: ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/", then "="s. */
static bool b64token_ok(const char *s, size_t n)
{
	size_t i = 0;

	if (n == 0 || n > OAUTH_MAX_TOKEN)
		return false;
	for (; i < n; i++) {
		char ch = s[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		             (ch >= '0' && ch <= '9');
		if (!alnum && strchr("-._~+/", ch) == NULL)
			break;
	}
	if (i == 0)
		return false;
	while (i < n && s[i] == '=')
		i++;
	return i == n;
}

/* expires_in: a JSON integer, or (as Entra's v1 endpoint wrote it) a string of digits. */
static int lifetime(json_t *v, int64_t *out)
{
	int64_t n = 0;

	if (v == NULL) {
		*out = OAUTH_DEFAULT_LIFETIME_SEC;
		return 0;
	}
	if (json_is_integer(v)) {
		n = json_integer_value(v);
	} else if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) < 12) {
		const char *s = json_string_value(v);
		for (size_t i = 0; i < json_string_length(v); i++) {
			if (s[i] < '0' || s[i] > '9')
				return -EPROTO;
			n = n * 10 + (s[i] - '0');
		}
	} else {
		return -EPROTO;
	}
	if (n <= 0)
		return -EPROTO;
	*out = n > OAUTH_MAX_LIFETIME_SEC ? OAUTH_MAX_LIFETIME_SEC : n;
	return 0;
}

static int parse_token(json_t *j, struct oauth_answer *out, struct err *err)
{
	json_t *type = json_object_get(j, "token_type");
	json_t *tok = json_object_get(j, "access_token");
	int64_t life = 0;

	if (!json_is_object(j))
		return err_set(err, -EPROTO, "HTTP 200 without a JSON object");
	if (!json_is_string(type) || strcasecmp(json_string_value(type), "Bearer") != 0)
		return err_set(err, -EPROTO, "HTTP 200: token_type is not Bearer");
	if (!json_is_string(tok))
		return err_set(err, -EPROTO, "HTTP 200 without an access_token");
	if (!b64token_ok(json_string_value(tok), json_string_length(tok)))
		return err_set(err, -EPROTO,
		               "HTTP 200: the access_token is empty, over %u bytes, or has "
		               "characters a bearer token cannot have",
		               OAUTH_MAX_TOKEN);
	if (lifetime(json_object_get(j, "expires_in"), &life) < 0)
		return err_set(err, -EPROTO, "HTTP 200: expires_in is not a positive number");
	out->access_token = xmemdup(json_string_value(tok), json_string_length(tok));
	out->expires_in_sec = life;
	return 0;
}

/* The first line of s, control characters as spaces, at most DESCRIPTION_MAX bytes. */
static void first_line(const char *s, size_t n, char *out, size_t size)
{
	size_t k = 0;

	for (size_t i = 0; i < n && k + 1 < size && k < DESCRIPTION_MAX; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '\r' || ch == '\n')
			break;
		out[k++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	while (k > 0 && out[k - 1] == ' ')
		k--;
	out[k] = '\0';
}

static bool transient(long status, const char *error)
{
	return status == 408 || status == 429 || status >= 500 ||
	       strcmp(error, "temporarily_unavailable") == 0 || strcmp(error, "server_error") == 0;
}

static int parse_error(long status, json_t *j, struct err *err)
{
	json_t *e = json_object_get(j, "error");
	json_t *d = json_object_get(j, "error_description");
	json_t *codes = json_object_get(j, "error_codes");
	char error[64] = "";
	char desc[DESCRIPTION_MAX + 1] = "";
	char code[24] = "";
	const char *hint = NULL;
	int rc;

	if (json_is_string(e))
		first_line(json_string_value(e), json_string_length(e), error, sizeof(error));
	if (json_is_string(d))
		first_line(json_string_value(d), json_string_length(d), desc, sizeof(desc));
	/* The AADSTS code, when the description does not start with it. */
	if (json_is_array(codes) && json_is_integer(json_array_get(codes, 0)) &&
	    strncmp(desc, "AADSTS", 6) != 0)
		(void)snprintf(code, sizeof(code), "AADSTS%" JSON_INTEGER_FORMAT ": ",
		               json_integer_value(json_array_get(codes, 0)));
	for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++) {
		if (strcmp(error, hints[i].error) == 0)
			hint = hints[i].hint;
	}
	if (transient(status, error))
		rc = -EAGAIN;
	else if (status >= 400 && status < 500)
		rc = -EACCES;
	else
		rc = -EPROTO; /* a redirect, or something else no token endpoint answers */
	if (error[0] == '\0')
		return err_set(err, rc, "HTTP %ld%s", status,
		               rc == -EACCES
		                       ? " (a wrong authority or tenant?): an administrator must "
		                         "fix it"
		               : rc == -EPROTO ? ": not a token endpoint's answer"
		                               : ": the endpoint is busy or failing; retrying");
	return err_set(err, rc, "HTTP %ld %s%s%s%s: %s%s%s", status, error, hint ? " (" : "",
	               hint ? hint : "", hint ? ")" : "",
	               rc == -EACCES ? "an administrator must fix it: " : "", code, desc);
}

int oauth_answer_parse(long status, const char *body, size_t len, struct oauth_answer *out,
                       struct err *err)
{
	json_t *j = NULL;
	int rc;

	if (body != NULL && len <= OAUTH_MAX_ANSWER)
		j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	if (status == 200 && j == NULL)
		return err_set(err, -EPROTO,
		               len > OAUTH_MAX_ANSWER
		                       ? "HTTP 200: answer over %u bytes"
		                       : "HTTP 200 without valid JSON (limit %u bytes)",
		               OAUTH_MAX_ANSWER);
	if (status == 200)
		rc = parse_token(j, out, err);
	else
		rc = parse_error(status, j, err);
	wipe_json_string(json_object_get(j, "access_token"));
	json_decref(j);
	return rc;
}
