/* SPDX-License-Identifier: MIT */
/*
 * ews-request-autod.c: writes the Autodiscover SOAP GetUserSettings request (EWS-REFERENCE.md
 * 10): not an EWS schema document, with its own header (RequestedServerVersion, WS-Addressing).
 */
#include "ews/ews-request.h"

#include <errno.h>

#include "base/buf.h"
#include "base/err.h"
#include "ews/ews-request-int.h"

#define AD_ACTION_GET_USER_SETTINGS NS_A "/Autodiscover/GetUserSettings"
#define AD_DEFAULT_VERSION          "Exchange2013"

/* Most users in one GetUserSettings. No server maximum is documented; exchangelib sends at most
 * 100 per request, and the header promises 1..100. */
#define AD_MAX_USERS 100u

static const char *const ad_settings[] = {
	"InternalEwsUrl", "ExternalEwsUrl",      "GroupingInformation",
	"CasVersion",     "EwsSupportedSchemas",
};

int ews_req_get_user_settings(const char *const *mailboxes, size_t n_mailboxes, const char *to_url,
                              const char *version, struct buf *out, struct err *err)
{
	static const char op[] = "GetUserSettings";
	struct ews_req_writer w;
	int rc;

	buf_reset(out);
	if (n_mailboxes < 1 || n_mailboxes > AD_MAX_USERS || mailboxes == NULL)
		return err_set(err, -EINVAL, "%s: n_mailboxes %zu is outside 1..%u", op,
		               n_mailboxes, AD_MAX_USERS);
	for (size_t i = 0; i < n_mailboxes; i++) {
		rc = ews_req_check_text(op, mailboxes[i], false, err, "mailboxes[%zu]", i);
		if (rc < 0)
			return rc;
	}
	rc = ews_req_check_text(op, to_url, false, err, "to_url");
	if (rc < 0)
		return rc;
	if (version == NULL)
		version = AD_DEFAULT_VERSION;
	rc = ews_req_check_text(op, version, false, err, "version");
	if (rc < 0)
		return rc;

	ews_req_begin(&w, out, true);
	start(&w, "s", "Header");
	text_elem(&w, "a", "RequestedServerVersion", version);
	text_elem(&w, "wsa", "Action", AD_ACTION_GET_USER_SETTINGS);
	text_elem(&w, "wsa", "To", to_url);
	end(&w);
	start(&w, "s", "Body");
	start(&w, "a", "GetUserSettingsRequestMessage");
	start(&w, "a", "Request");
	start(&w, "a", "Users");
	for (size_t i = 0; i < n_mailboxes; i++) {
		start(&w, "a", "User");
		text_elem(&w, "a", "Mailbox", mailboxes[i]);
		end(&w);
	}
	end(&w);
	start(&w, "a", "RequestedSettings");
	for (size_t i = 0; i < sizeof(ad_settings) / sizeof(ad_settings[0]); i++)
		text_elem(&w, "a", "Setting", ad_settings[i]);
	return ews_req_finish(&w, op, err);
}
