/* SPDX-License-Identifier: MIT */
/* graph-zone.c: wall-clock times in named zones through ICU (graph-zone.h). */
#include "graph/graph-zone.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unicode/ucal.h>
#include <unicode/ustring.h>

/* Longest zone name taken (Windows names are under 40 characters, IANA ids under 32). */
#define ZONE_MAX 64

/* The IANA id of zone, Windows name or IANA id, into iana (ZONE_MAX UChars). */
static int iana_of(const char *zone, UChar *iana)
{
	UChar name[ZONE_MAX];
	UChar canon[ZONE_MAX];
	UBool system = 0;
	UErrorCode st = U_ZERO_ERROR;
	int32_t n;

	if (zone == NULL || strlen(zone) >= ZONE_MAX)
		return -ENOENT;
	u_uastrncpy(name, zone, ZONE_MAX);
	n = ucal_getTimeZoneIDForWindowsID(name, -1, NULL, iana, ZONE_MAX, &st);
	if (U_SUCCESS(st) && n > 0 && n < ZONE_MAX)
		return 0;
	st = U_ZERO_ERROR;
	n = ucal_getCanonicalTimeZoneID(name, -1, canon, ZONE_MAX, &system, &st);
	if (U_FAILURE(st) || n <= 0 || n >= ZONE_MAX || !system)
		return -ENOENT;
	memcpy(iana, canon, (size_t)(n + 1) * sizeof(UChar));
	return 0;
}

int graph_zone_wall_to_utc(const char *zone, int64_t wall, int64_t *out)
{
	UChar iana[ZONE_MAX];
	UErrorCode st = U_ZERO_ERROR;
	time_t t = (time_t)wall;
	struct tm tm;
	UCalendar *cal;
	UDate ms;
	int rc = iana_of(zone, iana);

	if (rc < 0)
		return rc;
	if (gmtime_r(&t, &tm) == NULL)
		return -EINVAL;
	cal = ucal_open(iana, -1, "en_US_POSIX", UCAL_GREGORIAN, &st);
	if (U_FAILURE(st))
		return -ENOENT;
	ucal_clear(cal);
	ucal_setDateTime(cal, tm.tm_year + 1900, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min,
	                 tm.tm_sec, &st);
	ms = ucal_getMillis(cal, &st);
	ucal_close(cal);
	if (U_FAILURE(st))
		return -EINVAL;
	*out = (int64_t)(ms / 1000.0);
	return 0;
}
