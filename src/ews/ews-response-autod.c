/* SPDX-License-Identifier: MIT */
/*
 * ews-response-autod.c: reads an Autodiscover GetUserSettings answer: the request-level
 * ErrorCode, and per user its ErrorCode, RedirectTarget and the settings calsync asks for (the
 * EWS URLs, GroupingInformation, CasVersion, EwsSupportedSchemas). Elements are matched in both
 * spellings of the Autodiscover namespace (NS_AD, NS_AD_HTTPS).
 */
#include "ews/ews-response-int.h"

#include <stdlib.h>

static void user_clear(struct ews_user_settings *u)
{
	free(u->mailbox);
	free(u->error_code);
	free(u->error_message);
	free(u->redirect_target);
	free(u->internal_ews_url);
	free(u->external_ews_url);
	free(u->grouping_information);
	free(u->cas_version);
	free(u->ews_supported_schemas);
}

/* Where a UserSetting calsync keeps goes, or NULL for the many it does not. */
static char **setting_slot(struct ews_user_settings *u, const char *name)
{
	if (strcmp(name, "InternalEwsUrl") == 0)
		return &u->internal_ews_url;
	if (strcmp(name, "ExternalEwsUrl") == 0)
		return &u->external_ews_url;
	if (strcmp(name, "GroupingInformation") == 0)
		return &u->grouping_information;
	if (strcmp(name, "CasVersion") == 0)
		return &u->cas_version;
	if (strcmp(name, "EwsSupportedSchemas") == 0)
		return &u->ews_supported_schemas;
	return NULL;
}

static void parse_user_setting(const xmlNode *n, struct ews_user_settings *u)
{
	char *name = NULL;
	const xmlNode *value = NULL;
	char **slot;

	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		if (is_local(c, "Name") && is_ad_ns(c))
			ews_resp_set_text(&name, c);
		else if (is_local(c, "Value") && is_ad_ns(c))
			value = c;
	}
	slot = name != NULL && value != NULL ? setting_slot(u, name) : NULL;
	if (slot != NULL)
		ews_resp_set_text(slot, value);
	free(name);
}

static void parse_user_response(const xmlNode *n, struct ews_response *r)
{
	struct ews_user_settings *u;

	r->users = grow(r->users, r->n_users, sizeof(*r->users));
	u = &r->users[r->n_users++];
	*u = (struct ews_user_settings){0};
	for (const xmlNode *c = first_el(n); c != NULL; c = after_el(c)) {
		if (!is_ad_ns(c))
			continue;
		if (is_local(c, "ErrorCode")) {
			ews_resp_set_text(&u->error_code, c);
		} else if (is_local(c, "ErrorMessage")) {
			ews_resp_set_text(&u->error_message, c);
		} else if (is_local(c, "RedirectTarget")) {
			ews_resp_set_text(&u->redirect_target, c);
		} else if (is_local(c, "UserSettings")) {
			for (const xmlNode *s = first_el(c); s != NULL; s = after_el(s)) {
				if (is_local(s, "UserSetting") && is_ad_ns(s))
					parse_user_setting(s, u);
			}
		}
	}
}

/* a:GetUserSettingsResponseMessage/a:Response. */
void ews_resp_user_settings(const xmlNode *n, struct ews_response *r)
{
	for (const xmlNode *resp = first_el(n); resp != NULL; resp = after_el(resp)) {
		if (!is_local(resp, "Response") || !is_ad_ns(resp))
			continue;
		for (const xmlNode *c = first_el(resp); c != NULL; c = after_el(c)) {
			if (!is_ad_ns(c))
				continue;
			if (is_local(c, "ErrorCode")) {
				ews_resp_set_text(&r->autodiscover_error, c);
			} else if (is_local(c, "UserResponses")) {
				for (const xmlNode *u = first_el(c); u != NULL; u = after_el(u)) {
					if (is_local(u, "UserResponse") && is_ad_ns(u))
						parse_user_response(u, r);
				}
			}
		}
	}
}

void ews_resp_users_clear(struct ews_response *r)
{
	for (size_t i = 0; i < r->n_users; i++)
		user_clear(&r->users[i]);
	free(r->users);
}
