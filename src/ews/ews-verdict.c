/* SPDX-License-Identifier: MIT */
/*
 * ews-verdict.c: reads what an EWS answer means, in the order ews-verdict.h gives and
 * explains: the transport's failure, an unreadable answer, a SOAP fault, the first
 * ResponseMessage, an Autodiscover answer; then the code's entry in the error table.
 */
#include "ews/ews-verdict.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "ews/ews-response.h"
#include "ews/ews-transport.h"

/* Copies s (NULL: "") into a fixed array, truncating. */
#define COPY(dst, s) (void)snprintf((dst), sizeof(dst), "%s", (s) != NULL ? (s) : "")

/* Retry-After in delta-seconds (RFC 9110 10.2.3) as ms, at most EWS_VERDICT_MAX_RETRY_AFTER_MS;
 * -1 when absent or an HTTP-date, which would need a clock and no Exchange server sends. */
static int64_t retry_after_ms(const char *s)
{
	const int64_t max_sec = EWS_VERDICT_MAX_RETRY_AFTER_MS / 1000;
	int64_t sec = 0;
	size_t i = 0;

	if (s == NULL)
		return -1;
	while (s[i] == ' ' || s[i] == '\t')
		i++;
	if (s[i] < '0' || s[i] > '9')
		return -1;
	/* Digits past the cap no longer count, so that no length of input can overflow. */
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		if (sec <= max_sec)
			sec = sec * 10 + (s[i] - '0');
	}
	while (s[i] == ' ' || s[i] == '\t')
		i++;
	if (s[i] != '\0')
		return -1;
	return sec > max_sec ? EWS_VERDICT_MAX_RETRY_AFTER_MS : sec * 1000;
}

static void set_class(struct ews_verdict *v, enum ews_error_class cls, const char *code)
{
	v->cls = cls;
	v->flags = 0;
	COPY(v->code, code);
}

/* No EWS answer: the transport's rc decides (ews-transport.h lists them). */
static void read_transport(const struct ews_verdict_in *in, struct ews_verdict *v)
{
	v->origin = EWS_VERDICT_TRANSPORT;
	if (in->rc == -EACCES)
		set_class(v, EWS_ERR_ACCOUNT_PERMANENT, "access-denied");
	else if (in->rc == -EAGAIN)
		set_class(v, EWS_ERR_THROTTLED, "http-503");
	else
		set_class(v, EWS_ERR_TRANSIENT, "transport");
	COPY(v->msg, in->transport_msg != NULL && in->transport_msg[0] != '\0' ? in->transport_msg
	                                                                       : v->code);
}

/* An answer without a code to act on. */
static void no_code(struct ews_verdict *v, const char *why)
{
	set_class(v, EWS_ERR_TRANSIENT, "bad-response");
	COPY(v->msg, why);
}

/* The code of an answer, its text and MessageXml (NULL when it has none): the table's class and
 * flags, the inner code under a USE_INNER code, the back-off hint. */
static void read_code(struct ews_verdict *v, const char *code, const char *text,
                      const struct ews_message_xml *mx)
{
	const struct ews_error_info *info = ews_error_lookup(code, strlen(code));

	COPY(v->response_code, code);
	if (info != NULL && (info->flags & EWS_ERRF_USE_INNER) != 0 && mx != NULL &&
	    mx->inner_code != NULL) {
		const struct ews_error_info *inner =
			ews_error_lookup(mx->inner_code, strlen(mx->inner_code));

		COPY(v->inner_code, mx->inner_code);
		if (inner != NULL) {
			info = inner;
			code = mx->inner_code;
		}
	}
	v->cls = info != NULL ? info->cls : EWS_ERR_UNKNOWN;
	v->flags = info != NULL ? info->flags : 0;
	COPY(v->code, code);
	COPY(v->text, text);
	(void)snprintf(v->msg, sizeof(v->msg), "%s%s%s", code, text != NULL ? ": " : "",
	               text != NULL ? text : "");
	if (mx != NULL) {
		v->back_off_ms = mx->back_off_ms;
		v->max_concurrency_limit = mx->max_concurrency_limit;
	}
}

/* The EWS code of a fault: the detail's, else an EWS faultcode's local part, else NULL. */
static const char *fault_code(const struct ews_fault *f)
{
	const char *local;

	if (f->response_code != NULL)
		return f->response_code;
	if (f->faultcode == NULL)
		return NULL;
	local = strchr(f->faultcode, ':');
	local = local != NULL ? local + 1 : f->faultcode;
	return strncmp(local, "Error", 5) == 0 ? local : NULL;
}

static void read_fault(const struct ews_verdict_in *in, const struct ews_fault *f,
                       struct ews_verdict *v)
{
	const char *code = fault_code(f);
	const char *text = f->message != NULL ? f->message : f->faultstring;
	char why[sizeof(v->msg)];

	v->origin = EWS_VERDICT_FAULT;
	if (code != NULL) {
		read_code(v, code, text, &f->mx);
		return;
	}
	(void)snprintf(why, sizeof(why), "HTTP %ld without a response code (SOAP fault %s%s%s)",
	               in->http_status, f->faultcode != NULL ? f->faultcode : "without a faultcode",
	               text != NULL ? ": " : "", text != NULL ? text : "");
	no_code(v, why);
	COPY(v->text, text);
}

static void read_message(const struct ews_message *m, long http_status, struct ews_verdict *v)
{
	const char *code = m->code;
	char why[64];

	v->origin = EWS_VERDICT_MESSAGE;
	if (code == NULL && m->cls != EWS_CLASS_ERROR)
		code = "NoError";
	if (code == NULL) {
		(void)snprintf(why, sizeof(why), "HTTP %ld without a response code", http_status);
		no_code(v, why);
		return;
	}
	read_code(v, code, m->text, &m->mx);
	if (m->cls == EWS_CLASS_WARNING) {
		v->cls = EWS_ERR_NONE;
		v->warning = true;
	}
}

/* A GetUserSettings answer: its request-level ErrorCode. */
static void read_autodiscover(const struct ews_response *r, struct ews_verdict *v)
{
	const char *ad = r->autodiscover_error;

	v->origin = EWS_VERDICT_AUTODISCOVER;
	if (ad == NULL || strcmp(ad, "NoError") == 0) {
		read_code(v, "NoError", NULL, NULL);
		return;
	}
	set_class(v, EWS_ERR_TRANSIENT, ad);
	COPY(v->response_code, ad);
	(void)snprintf(v->msg, sizeof(v->msg), "Autodiscover: %s", ad);
}

static void blank(struct ews_verdict *v, int rc, long http_status)
{
	*v = (struct ews_verdict){
		.rc = rc,
		.http_status = http_status,
		.back_off_ms = -1,
		.max_concurrency_limit = -1,
	};
}

void ews_verdict_read(const struct ews_verdict_in *in, struct ews_verdict *out)
{
	const struct ews_response *r = in->resp;
	char why[sizeof(out->msg)];

	blank(out, in->rc, in->http_status);
	if (in->rc < 0) {
		read_transport(in, out);
	} else if (r == NULL) {
		(void)snprintf(why, sizeof(why), "HTTP %ld: %s", in->http_status,
		               in->parse_msg != NULL ? in->parse_msg : "no answer to read");
		no_code(out, why);
		out->origin = EWS_VERDICT_UNREADABLE;
	} else if (r->is_fault) {
		read_fault(in, &r->fault, out);
	} else if (r->n_messages > 0) {
		read_message(&r->messages[0], in->http_status, out);
	} else if (r->operation != NULL && strcmp(r->operation, "GetUserSettings") == 0) {
		read_autodiscover(r, out);
	} else {
		(void)snprintf(why, sizeof(why), "HTTP %ld without a response code",
		               in->http_status);
		no_code(out, why);
		out->origin = EWS_VERDICT_MESSAGE;
	}
	if (out->back_off_ms < 0)
		out->back_off_ms = retry_after_ms(in->retry_after);
}

void ews_verdict_of_result(const struct ews_result *r, const char *retry_after,
                           struct ews_response *resp, struct ews_verdict *out)
{
	struct err perr = {0};
	struct ews_verdict_in in = {
		.rc = r->rc,
		.http_status = r->http_status,
		.transport_msg = r->err.msg,
		.retry_after = retry_after != NULL ? retry_after : r->retry_after,
	};

	*resp = (struct ews_response){0};
	if (r->rc == 0) {
		if (ews_response_parse(r->body, r->body_len, resp, &perr) == 0)
			in.resp = resp;
		else
			in.parse_msg = perr.msg;
	}
	ews_verdict_read(&in, out);
}

void ews_verdict_of_message(const struct ews_message *m, struct ews_verdict *out)
{
	blank(out, 0, 0);
	read_message(m, 0, out);
}

bool ews_verdict_is(const struct ews_verdict *v, const char *code)
{
	return code != NULL && code[0] != '\0' &&
	       (strcmp(v->code, code) == 0 || strcmp(v->response_code, code) == 0 ||
	        strcmp(v->inner_code, code) == 0);
}

bool ews_verdict_is_auth(const struct ews_verdict *v)
{
	return v->origin == EWS_VERDICT_TRANSPORT && v->rc == -EACCES;
}

const char *ews_verdict_origin_name(enum ews_verdict_origin o)
{
	switch (o) {
	case EWS_VERDICT_TRANSPORT:
		return "transport";
	case EWS_VERDICT_UNREADABLE:
		return "unreadable";
	case EWS_VERDICT_FAULT:
		return "fault";
	case EWS_VERDICT_MESSAGE:
		return "message";
	case EWS_VERDICT_AUTODISCOVER:
		return "autodiscover";
	}
	return "unknown";
}
