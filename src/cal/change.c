/* SPDX-License-Identifier: MIT */
/* change.c: a presence change as its JSON object (jansson), keys in the documented order. */
#include "cal/change.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"
#include "base/iso8601.h"
#include "cal/presence.h"

/* Points *out at t formatted into buf as "YYYY-MM-DDTHH:MM:SSZ", or at NULL (written as JSON
 * null) when nullable and t is null_value. 0, or -ERANGE for an instant iso8601 cannot write. */
static int format_time(const char *field, int64_t t, int64_t null_value, bool nullable,
                       char buf[ISO8601_FORMAT_SIZE], const char **out, struct err *err)
{
	if (nullable && t == null_value) {
		*out = NULL;
		return 0;
	}
	if (iso8601_format(t, buf, NULL) != 0)
		return err_set(err, -ERANGE, "output: %s %lld is outside years 1 to 9999", field,
		               (long long)t);
	*out = buf;
	return 0;
}

/* json_pack refused the change: name the first string that is not UTF-8 if that is why. */
static int pack_error(const struct cal_change *c, const json_error_t *jerr, struct err *err)
{
	const struct {
		const char *name;
		const char *value;
	} fields[] = {
		{"user", c->user},       {"state", c->state},     {"profile", c->profile},
		{"forward", c->forward}, {"subject", c->subject}, {"reason", c->reason},
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		json_t *s;

		if (fields[i].value == NULL)
			continue;
		s = json_string(fields[i].value);
		if (s == NULL)
			return err_set(err, -EINVAL, "output: change %lld: %s is not valid UTF-8",
			               (long long)c->id, fields[i].name);
		json_decref(s);
	}
	return err_set(err, -EINVAL, "output: change %lld: %s", (long long)c->id, jerr->text);
}

int cal_change_json(const struct cal_change *c, json_t **out, struct err *err)
{
	char time_buf[ISO8601_FORMAT_SIZE];
	char since_buf[ISO8601_FORMAT_SIZE];
	char until_buf[ISO8601_FORMAT_SIZE];
	const char *time_s;
	const char *since_s;
	const char *until_s;
	json_error_t jerr;
	json_t *j;
	int rc;

	rc = format_time("time", c->time_utc, 0, false, time_buf, &time_s, err);
	if (rc == 0)
		rc = format_time("since", c->since_utc, PRESENCE_SINCE_ALWAYS, true, since_buf,
		                 &since_s, err);
	if (rc == 0)
		rc = format_time("until", c->until_utc, PRESENCE_NEVER, true, until_buf, &until_s,
		                 err);
	if (rc != 0)
		return rc;
	j = json_pack_ex(&jerr, 0, "{s:I, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?}",
	                 "id", (json_int_t)c->id, "time", time_s, "user", c->user, "state",
	                 c->state, "profile", c->profile, "forward", c->forward, "subject",
	                 c->subject, "since", since_s, "until", until_s, "reason", c->reason);
	if (j == NULL)
		return pack_error(c, &jerr, err);
	*out = j;
	return 0;
}
