/* SPDX-License-Identifier: MIT */
/*
 * test-ews-verdict.c: the one reading of an EWS answer, class by class: the transport's
 * failures (401, 503 with and without Retry-After, the network), unreadable answers, SOAP
 * faults with and without a ResponseCode, HTTP 200 messages (ErrorInternalServerError with a
 * known and an unknown inner code, Warning, no code), Autodiscover, and a message on its own.
 * Answers are parsed from XML, as they arrive, through ews_verdict_of_result().
 */
#include "ews/ews-verdict.h"

#include <errno.h>
#include <string.h>

#include "base/err.h"
#include "ews/ews-response.h"
#include "ews/ews-transport.h"

#include "harness.h"

#define ENV_OPEN                                                                    \
	"<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\""         \
	" xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\"" \
	" xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\">"
#define BODY(x) ENV_OPEN "<s:Body>" x "</s:Body></s:Envelope>"

/* An operation's response with one message of class cls and payload (its code included). */
#define MESSAGE(op, cls, payload)                                                                  \
	BODY("<m:" op "Response><m:ResponseMessages><m:" op "ResponseMessage ResponseClass=\"" cls \
	     "\">" payload "</m:" op "ResponseMessage></m:ResponseMessages></m:" op "Response>")
#define CODE(c) "<m:ResponseCode>" c "</m:ResponseCode>"

#define NS_E " xmlns:e=\"http://schemas.microsoft.com/exchange/services/2006/errors\""

/* A fault: faultcode, faultstring and what its detail holds. */
#define FAULT(faultcode, faultstring, detail)                                                     \
	BODY("<s:Fault><faultcode xmlns:a=\"http://schemas.microsoft.com/exchange/services/2006/" \
	     "types\">" faultcode "</faultcode><faultstring xml:lang=\"en-US\">" faultstring      \
	     "</faultstring><detail>" detail "</detail></s:Fault>")

/* The verdict of one finished call; *resp is cleared before returning. */
static struct ews_verdict verdict(int rc, long http, const char *body, const char *retry_after,
                                  const char *transport_msg)
{
	struct ews_result r = {
		.rc = rc, .http_status = http, .body = body, .body_len = strlen(body)};
	struct ews_response resp;
	struct ews_verdict v;

	if (transport_msg != NULL)
		(void)err_set(&r.err, rc, "%s", transport_msg);
	ews_verdict_of_result(&r, retry_after, &resp, &v);
	ews_response_clear(&resp);
	return v;
}

static struct ews_verdict answer(long http, const char *body)
{
	return verdict(0, http, body, NULL, NULL);
}

/* --- the transport ----------------------------------------------------------------------- */

TEST(http_401_is_auth)
{
	struct ews_verdict v = verdict(-EACCES, 401, "", NULL,
	                               "POST to mail: HTTP 401: authentication (ntlm) failed");

	CHECK_EQ(v.cls, EWS_ERR_ACCOUNT_PERMANENT);
	CHECK_EQ(v.origin, EWS_VERDICT_TRANSPORT);
	CHECK(ews_verdict_is_auth(&v));
	CHECK_STREQ(v.code, "access-denied");
	CHECK_STREQ(v.msg, "POST to mail: HTTP 401: authentication (ntlm) failed");
	CHECK_EQ(v.http_status, 401);
	CHECK_EQ(v.rc, -EACCES);
	CHECK_EQ(v.back_off_ms, -1);
	CHECK_EQ(v.flags, 0);
	/* 403 and 456 come as -EACCES too. */
	v = verdict(-EACCES, 456, "", NULL, "locked");
	CHECK(ews_verdict_is_auth(&v));
}

TEST(http_503_without_retry_after)
{
	struct ews_verdict v = verdict(-EAGAIN, 503, "", NULL, "HTTP 503: the server is busy");

	CHECK_EQ(v.cls, EWS_ERR_THROTTLED);
	CHECK_STREQ(v.code, "http-503");
	CHECK_STREQ(v.msg, "HTTP 503: the server is busy");
	CHECK_EQ(v.back_off_ms, -1);
	CHECK(!ews_verdict_is_auth(&v));
}

TEST(http_503_with_retry_after)
{
	static const struct {
		const char *header;
		int64_t ms;
	} cases[] = {
		{"120", 120000},
		{" 5 ", 5000},
		{"0", 0},
		{"900", EWS_VERDICT_MAX_RETRY_AFTER_MS},
		{"901", EWS_VERDICT_MAX_RETRY_AFTER_MS},
		{"99999999999999999999999999", EWS_VERDICT_MAX_RETRY_AFTER_MS},
		/* An HTTP-date, or anything else, names no pause we can read. */
		{"Wed, 21 Oct 2015 07:28:00 GMT", -1},
		{"12a", -1},
		{"-5", -1},
		{"", -1},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ews_verdict v = verdict(-EAGAIN, 503, "", cases[i].header, "busy");

		CHECK_EQ(v.cls, EWS_ERR_THROTTLED);
		if (v.back_off_ms != cases[i].ms)
			harness_fail(__FILE__, __LINE__, "Retry-After '%s': %lld ms, not %lld",
			             cases[i].header, (long long)v.back_off_ms,
			             (long long)cases[i].ms);
	}
}

TEST(other_transport_failures_are_transient)
{
	static const int rcs[] = {-ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, -ECONNRESET,
	                          -EPROTO,    -EIO,          -EKEYREJECTED, -EMSGSIZE};

	for (size_t i = 0; i < sizeof(rcs) / sizeof(rcs[0]); i++) {
		struct ews_verdict v = verdict(rcs[i], 0, "", "30", "cannot connect");

		CHECK_EQ(v.cls, EWS_ERR_TRANSIENT);
		CHECK_STREQ(v.code, "transport");
		CHECK_STREQ(v.msg, "cannot connect");
		CHECK_EQ(v.origin, EWS_VERDICT_TRANSPORT);
		CHECK(!ews_verdict_is_auth(&v));
	}
	/* Without the transport's message, the code says what happened. */
	{
		struct ews_verdict_in in = {.rc = -EIO};
		struct ews_verdict v;

		ews_verdict_read(&in, &v);
		CHECK_STREQ(v.msg, "transport");
	}
}

TEST(a_body_after_a_transport_failure_is_not_read)
{
	/* A 503 page in XML, with an EWS code in it: the status decides. */
	struct ews_verdict v =
		verdict(-EAGAIN, 503, MESSAGE("GetFolder", "Error", CODE("ErrorAccessDenied")),
	                NULL, "busy");

	CHECK_EQ(v.cls, EWS_ERR_THROTTLED);
	CHECK_STREQ(v.response_code, "");
}

/* --- unreadable answers ------------------------------------------------------------------ */

TEST(unreadable_answers)
{
	struct ews_verdict v = answer(200, "<html>It works</html>");

	CHECK_EQ(v.cls, EWS_ERR_TRANSIENT);
	CHECK_EQ(v.origin, EWS_VERDICT_UNREADABLE);
	CHECK_STREQ(v.code, "bad-response");
	CHECK(strncmp(v.msg, "HTTP 200: ", 10) == 0);

	v = answer(200, "");
	CHECK_EQ(v.origin, EWS_VERDICT_UNREADABLE);
	CHECK_STREQ(v.msg, "HTTP 200: empty response");

	/* A response without a message to read. */
	v = answer(200, BODY("<m:FindItemResponse><m:ResponseMessages/></m:FindItemResponse>"));
	CHECK_EQ(v.cls, EWS_ERR_TRANSIENT);
	CHECK_STREQ(v.code, "bad-response");
	CHECK_STREQ(v.msg, "HTTP 200 without a response code");
}

/* --- SOAP faults -------------------------------------------------------------------------- */

TEST(http_500_fault_with_response_code)
{
	struct ews_verdict v = answer(
		500, FAULT("a:ErrorServerBusy", "The server cannot service this request right now.",
	                   "<e:ResponseCode" NS_E ">ErrorServerBusy</e:ResponseCode>"
	                   "<e:Message" NS_E ">The server is busy.</e:Message>"
	                   "<t:MessageXml><t:Value Name=\"BackOffMilliseconds\">30000</t:Value>"
	                   "</t:MessageXml>"));

	CHECK_EQ(v.origin, EWS_VERDICT_FAULT);
	CHECK_EQ(v.cls, EWS_ERR_THROTTLED);
	CHECK_STREQ(v.code, "ErrorServerBusy");
	CHECK_STREQ(v.text, "The server is busy.");
	CHECK_STREQ(v.msg, "ErrorServerBusy: The server is busy.");
	CHECK_EQ(v.back_off_ms, 30000);
	CHECK_EQ(v.http_status, 500);
}

TEST(fault_with_concurrency_policy)
{
	struct ews_verdict v =
		answer(500, FAULT("a:ErrorExceededConnectionCount", "You have exceeded ...",
	                          "<e:ResponseCode" NS_E ">ErrorExceededConnectionCount"
	                          "</e:ResponseCode><t:MessageXml>"
	                          "<t:Value Name=\"Policy\">MaxConcurrency</t:Value>"
	                          "<t:Value Name=\"MaxConcurrencyLimit\">27</t:Value>"
	                          "</t:MessageXml>"));

	CHECK_EQ(v.cls, EWS_ERR_THROTTLED);
	CHECK_EQ(v.flags, 0); /* back off; calsync has no fewer requests to send */
	CHECK_EQ(v.max_concurrency_limit, 27);
	CHECK_EQ(v.back_off_ms, -1);
	/* No message in the detail: the faultstring is the text. */
	CHECK_STREQ(v.text, "You have exceeded ...");
}

TEST(fault_without_response_code_uses_an_ews_faultcode)
{
	struct ews_verdict v = answer(500, FAULT("a:ErrorInvalidServerVersion",
	                                         "The specified server version is invalid.", ""));

	CHECK_EQ(v.origin, EWS_VERDICT_FAULT);
	CHECK_EQ(v.cls, EWS_ERR_CLIENT_BUG);
	CHECK(v.flags & EWS_ERRF_FIX_VERSION);
	CHECK_STREQ(v.code, "ErrorInvalidServerVersion");
	CHECK_STREQ(v.msg, "ErrorInvalidServerVersion: The specified server version is invalid.");

	/* Unprefixed works as well; an EWS code the table does not know is unknown. */
	v = answer(500, FAULT("ErrorSomethingNew", "new", ""));
	CHECK_EQ(v.cls, EWS_ERR_UNKNOWN);
	CHECK_STREQ(v.code, "ErrorSomethingNew");
}

TEST(fault_with_a_soap_faultcode_only)
{
	struct ews_verdict v = answer(500, FAULT("s:Server", "Object reference not set.", ""));

	CHECK_EQ(v.origin, EWS_VERDICT_FAULT);
	CHECK_EQ(v.cls, EWS_ERR_TRANSIENT);
	CHECK_STREQ(v.code, "bad-response");
	CHECK_STREQ(v.text, "Object reference not set.");
	CHECK_STREQ(v.msg, "HTTP 500 without a response code (SOAP fault s:Server: Object "
	                   "reference not set.)");
	v = answer(500, BODY("<s:Fault/>"));
	CHECK_EQ(v.cls, EWS_ERR_TRANSIENT);
	CHECK_STREQ(v.code, "bad-response");
}

TEST(fault_detail_wins_over_faultcode)
{
	struct ews_verdict v = answer(500, FAULT("a:ErrorSchemaValidation", "x",
	                                         "<e:ResponseCode" NS_E
	                                         ">ErrorImpersonateUserDenied</e:ResponseCode>"));

	CHECK_EQ(v.cls, EWS_ERR_MAILBOX_PERMANENT);
	CHECK_STREQ(v.code, "ErrorImpersonateUserDenied");
	/* The Availability service's e:ErrorCode counts as the ResponseCode. */
	v = answer(500, FAULT("s:Client", "x",
	                      "<e:ErrorCode" NS_E ">ErrorNoFreeBusyAccess"
	                      "</e:ErrorCode>"));
	CHECK_EQ(v.cls, EWS_ERR_MAILBOX_PERMANENT);
	CHECK_STREQ(v.code, "ErrorNoFreeBusyAccess");
}

TEST(fault_internal_error_with_inner_code)
{
	struct ews_verdict v = answer(
		500, FAULT("a:ErrorInternalServerError", "x",
	                   "<e:ResponseCode" NS_E ">ErrorInternalServerError</e:ResponseCode>"
	                   "<t:MessageXml><t:Value Name=\"InnerErrorResponseCode\">"
	                   "ErrorMailboxStoreUnavailable</t:Value></t:MessageXml>"));

	CHECK_EQ(v.cls, EWS_ERR_TRANSIENT);
	CHECK_STREQ(v.code, "ErrorMailboxStoreUnavailable");
	CHECK_STREQ(v.response_code, "ErrorInternalServerError");
}

/* --- HTTP 200 messages ------------------------------------------------------------------- */

TEST(internal_error_with_a_known_inner_code)
{
	struct ews_verdict v = answer(
		200,
		MESSAGE("FindItem", "Error",
	                "<m:MessageText>An internal server error occurred.</m:MessageText>" CODE(
				"ErrorInternalServerError") "<m:MessageXml><t:Value Name=\"InnerErrorResponseCode\">ErrorServerBusy"
	                                                    "</t:Value><t:Value Name=\"BackOffMilliseconds\">5000</t:Value>"
	                                                    "</m:MessageXml>"));

	CHECK_EQ(v.origin, EWS_VERDICT_MESSAGE);
	CHECK_EQ(v.cls, EWS_ERR_THROTTLED);
	CHECK_EQ(v.flags, 0); /* ErrorServerBusy's, not USE_INNER */
	CHECK_STREQ(v.code, "ErrorServerBusy");
	CHECK_STREQ(v.response_code, "ErrorInternalServerError");
	CHECK_STREQ(v.inner_code, "ErrorServerBusy");
	CHECK_EQ(v.back_off_ms, 5000);
	CHECK(ews_verdict_is(&v, "ErrorServerBusy"));
	CHECK(ews_verdict_is(&v, "ErrorInternalServerError"));
	CHECK(!ews_verdict_is(&v, "ErrorAccessDenied"));
	CHECK(!ews_verdict_is(&v, ""));
	CHECK(!ews_verdict_is(&v, NULL));
	CHECK_STREQ(v.msg, "ErrorServerBusy: An internal server error occurred.");
}

TEST(internal_error_with_an_unknown_or_no_inner_code)
{
	struct ews_verdict v = answer(
		200,
		MESSAGE("GetFolder", "Error",
	                CODE("ErrorInternalServerError") "<m:MessageXml><t:Value Name=\"InnerErrorResponseCode\">"
	                                                 "ErrorMissingEmailAddress</t:Value></m:MessageXml>"));

	CHECK_EQ(v.cls, EWS_ERR_TRANSIENT);
	CHECK(v.flags & EWS_ERRF_USE_INNER);
	CHECK_STREQ(v.code, "ErrorInternalServerError");
	CHECK_STREQ(v.inner_code, "ErrorMissingEmailAddress");
	CHECK(ews_verdict_is(&v, "ErrorMissingEmailAddress"));

	v = answer(200, MESSAGE("GetFolder", "Error", CODE("ErrorInternalServerError")));
	CHECK_EQ(v.cls, EWS_ERR_TRANSIENT);
	CHECK_STREQ(v.code, "ErrorInternalServerError");
	CHECK_STREQ(v.inner_code, "");

	/* Only a USE_INNER code is replaced by its inner one. */
	v = answer(
		200,
		MESSAGE("GetFolder", "Error",
	                CODE("ErrorAccessDenied") "<m:MessageXml><t:Value Name=\"InnerErrorResponseCode\">"
	                                          "ErrorServerBusy</t:Value></m:MessageXml>"));
	CHECK_EQ(v.cls, EWS_ERR_MAILBOX_PERMANENT);
	CHECK_STREQ(v.code, "ErrorAccessDenied");
	CHECK_STREQ(v.inner_code, "");
}

TEST(success_warning_and_missing_codes)
{
	struct ews_verdict v = answer(200, MESSAGE("GetFolder", "Success", CODE("NoError")));

	CHECK_EQ(v.cls, EWS_ERR_NONE);
	CHECK_STREQ(v.code, "NoError");
	CHECK_STREQ(v.msg, "NoError");
	CHECK(!v.warning);

	v = answer(200, MESSAGE("GetFolder", "Success", ""));
	CHECK_EQ(v.cls, EWS_ERR_NONE);
	CHECK_STREQ(v.code, "NoError");

	v = answer(200, MESSAGE("GetItem", "Warning", CODE("ErrorBatchProcessingStopped")));
	CHECK_EQ(v.cls, EWS_ERR_NONE);
	CHECK(v.warning);
	CHECK_STREQ(v.code, "ErrorBatchProcessingStopped");

	v = answer(200, MESSAGE("GetFolder", "Error", "<m:MessageText>?</m:MessageText>"));
	CHECK_EQ(v.cls, EWS_ERR_TRANSIENT);
	CHECK_STREQ(v.code, "bad-response");
	CHECK_STREQ(v.msg, "HTTP 200 without a response code");
}

TEST(every_class_of_the_table)
{
	static const struct {
		const char *code;
		enum ews_error_class cls;
		unsigned flag;
	} cases[] = {
		{"ErrorMailboxStoreUnavailable", EWS_ERR_TRANSIENT, 0},
		{"ErrorMailboxMoveInProgress", EWS_ERR_TRANSIENT, EWS_ERRF_REDISCOVER},
		{"ErrorServerBusy", EWS_ERR_THROTTLED, 0},
		{"ErrorInvalidWatermark", EWS_ERR_SUBSCRIPTION_LOST, EWS_ERRF_DROP_WATERMARK},
		{"ErrorMissedNotificationEvents", EWS_ERR_SUBSCRIPTION_LOST,
	         EWS_ERRF_KEEP_SUBSCRIPTION},
		{"ErrorSubscriptionNotFound", EWS_ERR_SUBSCRIPTION_LOST, EWS_ERRF_ALREADY_GONE},
		{"ErrorImpersonateUserDenied", EWS_ERR_MAILBOX_PERMANENT, 0},
		{"ErrorImpersonationDenied", EWS_ERR_ACCOUNT_PERMANENT, 0},
		{"ErrorIncorrectSchemaVersion", EWS_ERR_CLIENT_BUG, EWS_ERRF_FIX_VERSION},
		{"ErrorInvalidSyncStateData", EWS_ERR_CLIENT_BUG, EWS_ERRF_RESYNC},
		{"ErrorExceededFindCountLimit", EWS_ERR_THROTTLED, EWS_ERRF_SHRINK},
		{"ErrorTimeoutExpired", EWS_ERR_TRANSIENT, EWS_ERRF_SHRINK},
		{"ErrorItemNotFound", EWS_ERR_NONE, EWS_ERRF_RESYNC},
		{"ErrorNobodyHasSeenThis", EWS_ERR_UNKNOWN, 0},
	};

	char body[1024];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ews_verdict v;
		char msg[128];

		(void)snprintf(body, sizeof(body),
		               MESSAGE("GetEvents", "Error",
		                       "<m:MessageText>why</m:MessageText>"
		                       "<m:ResponseCode>%s</m:ResponseCode>"),
		               cases[i].code);
		v = answer(200, body);
		(void)snprintf(msg, sizeof(msg), "%s: why", cases[i].code);
		if (v.cls != cases[i].cls)
			harness_fail(__FILE__, __LINE__, "%s: class %s", cases[i].code,
			             ews_error_class_name(v.cls));
		if (cases[i].flag != 0 && (v.flags & cases[i].flag) == 0)
			harness_fail(__FILE__, __LINE__, "%s: flags 0x%x", cases[i].code, v.flags);
		CHECK_STREQ(v.code, cases[i].code);
		CHECK_STREQ(v.text, "why");
		CHECK_STREQ(v.msg, msg);
		CHECK_EQ(v.back_off_ms, -1);
	}
}

TEST(back_off_milliseconds_wins_over_retry_after)
{
	const char *busy = MESSAGE(
		"GetEvents", "Error",
		CODE("ErrorServerBusy") "<m:MessageXml><t:Value Name=\"BackOffMilliseconds\">"
					"250</t:Value></m:MessageXml>");
	struct ews_verdict v = verdict(0, 200, busy, "60", NULL);

	CHECK_EQ(v.back_off_ms, 250);
	/* Without the server's own hint, a Retry-After on an EWS answer counts. */
	v = verdict(0, 200, MESSAGE("GetEvents", "Error", CODE("ErrorServerBusy")), "60", NULL);
	CHECK_EQ(v.back_off_ms, 60000);
}

/* --- Autodiscover and single messages ---------------------------------------------------- */

#define AUTODISCOVER(code)                                                                  \
	"<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "                \
	"xmlns:a=\"http://schemas.microsoft.com/exchange/2010/Autodiscover\"><s:Body>"      \
	"<a:GetUserSettingsResponseMessage><a:Response><a:ErrorCode>" code "</a:ErrorCode>" \
	"<a:UserResponses/></a:Response></a:GetUserSettingsResponseMessage></s:Body>"       \
	"</s:Envelope>"

TEST(autodiscover_answers)
{
	struct ews_verdict v = answer(200, AUTODISCOVER("NoError"));

	CHECK_EQ(v.origin, EWS_VERDICT_AUTODISCOVER);
	CHECK_EQ(v.cls, EWS_ERR_NONE);
	CHECK_STREQ(v.code, "NoError");

	v = answer(200, AUTODISCOVER("ServerBusy"));
	CHECK_EQ(v.origin, EWS_VERDICT_AUTODISCOVER);
	CHECK_EQ(v.cls, EWS_ERR_TRANSIENT);
	CHECK_STREQ(v.code, "ServerBusy");
	CHECK_STREQ(v.msg, "Autodiscover: ServerBusy");
}

TEST(one_message_on_its_own)
{
	char code[] = "ErrorInternalServerError";
	char inner[] = "ErrorSubscriptionNotFound";
	struct ews_message m = {
		.cls = EWS_CLASS_ERROR,
		.code = code,
		.mx = {.back_off_ms = -1, .max_concurrency_limit = -1, .inner_code = inner},
	};
	struct ews_verdict v;

	ews_verdict_of_message(&m, &v);
	CHECK_EQ(v.origin, EWS_VERDICT_MESSAGE);
	CHECK_EQ(v.cls, EWS_ERR_SUBSCRIPTION_LOST);
	CHECK_EQ(v.flags, EWS_ERRF_RESYNC | EWS_ERRF_ALREADY_GONE);
	CHECK_STREQ(v.code, "ErrorSubscriptionNotFound");
	CHECK_EQ(v.http_status, 0);

	m = (struct ews_message){.cls = EWS_CLASS_ERROR, .mx = {.back_off_ms = -1}};
	ews_verdict_of_message(&m, &v);
	CHECK_EQ(v.cls, EWS_ERR_TRANSIENT);
	CHECK_STREQ(v.code, "bad-response");
}

TEST(origin_names)
{
	CHECK_STREQ(ews_verdict_origin_name(EWS_VERDICT_TRANSPORT), "transport");
	CHECK_STREQ(ews_verdict_origin_name(EWS_VERDICT_UNREADABLE), "unreadable");
	CHECK_STREQ(ews_verdict_origin_name(EWS_VERDICT_FAULT), "fault");
	CHECK_STREQ(ews_verdict_origin_name(EWS_VERDICT_MESSAGE), "message");
	CHECK_STREQ(ews_verdict_origin_name(EWS_VERDICT_AUTODISCOVER), "autodiscover");
	CHECK_STREQ(ews_verdict_origin_name((enum ews_verdict_origin)99), "unknown");
}

int main(void)
{
	RUN(http_401_is_auth);
	RUN(http_503_without_retry_after);
	RUN(http_503_with_retry_after);
	RUN(other_transport_failures_are_transient);
	RUN(a_body_after_a_transport_failure_is_not_read);
	RUN(unreadable_answers);
	RUN(http_500_fault_with_response_code);
	RUN(fault_with_concurrency_policy);
	RUN(fault_without_response_code_uses_an_ews_faultcode);
	RUN(fault_with_a_soap_faultcode_only);
	RUN(fault_detail_wins_over_faultcode);
	RUN(fault_internal_error_with_inner_code);
	RUN(internal_error_with_a_known_inner_code);
	RUN(internal_error_with_an_unknown_or_no_inner_code);
	RUN(success_warning_and_missing_codes);
	RUN(every_class_of_the_table);
	RUN(back_off_milliseconds_wins_over_retry_after);
	RUN(autodiscover_answers);
	RUN(one_message_on_its_own);
	RUN(origin_names);
	return harness_done();
}
