/* SPDX-License-Identifier: MIT */
/* http-date.c: HTTP-dates and Retry-After (http-date.h). */
#include "http/http-date.h"

#include <errno.h>
#include <stdbool.h>

#define SECS_PER_DAY INT64_C(86400)

static const char *const wkday[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const weekday[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                       "Thursday", "Friday", "Saturday"};
static const char *const month[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* The parser's position; pos never exceeds len. */
struct cur {
	const char *s;
	size_t len;
	size_t pos;
};

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int mdays(int64_t y, int m)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Howard Hinnant's days_from_civil and civil_from_days (proleptic Gregorian, exact). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static bool lit(struct cur *c, const char *want)
{
	size_t n = strlen(want);

	if (c->len - c->pos < n || memcmp(c->s + c->pos, want, n) != 0)
		return false;
	c->pos += n;
	return true;
}

/* One of the n names (case-sensitive, as RFC 9110 says); its index, or -1. */
static int name(struct cur *c, const char *const *names, int n)
{
	for (int i = 0; i < n; i++) {
		if (lit(c, names[i]))
			return i;
	}
	return -1;
}

/* Exactly n digits. */
static bool digits(struct cur *c, unsigned n, int *out)
{
	int v = 0;

	if (c->len - c->pos < n)
		return false;
	for (unsigned i = 0; i < n; i++) {
		char ch = c->s[c->pos + i];
		if (ch < '0' || ch > '9')
			return false;
		v = v * 10 + (ch - '0');
	}
	c->pos += n;
	*out = v;
	return true;
}

/* "HH:MM:SS" */
static bool time_of_day(struct cur *c, int *h, int *mi, int *s)
{
	return digits(c, 2, h) && lit(c, ":") && digits(c, 2, mi) && lit(c, ":") && digits(c, 2, s);
}

static int64_t year_from_two_digits(int yy, int64_t now_utc)
{
	int64_t y, year;
	int m, day;

	civil_from_days(now_utc / SECS_PER_DAY - (now_utc % SECS_PER_DAY < 0), &y, &m, &day);
	year = y - y % 100 + yy;
	if (year > y + 50)
		year -= 100;
	return year;
}

int http_date_parse(const char *s, size_t len, int64_t now_utc, int64_t *out_utc)
{
	struct cur c = {.s = s, .len = len};
	int64_t year;
	int y4 = 0, mon = -1, day = 0, h = 0, mi = 0, sec = 0, wd;

	if (s == NULL)
		return -EINVAL;
	wd = name(&c, weekday, 7); /* the long names first: "Sunday" starts with "Sun" */
	if (wd >= 0) {
		/* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
		int yy = 0;
		if (!lit(&c, ", ") || !digits(&c, 2, &day) || !lit(&c, "-") ||
		    (mon = name(&c, month, 12)) < 0 || !lit(&c, "-") || !digits(&c, 2, &yy) ||
		    !lit(&c, " ") || !time_of_day(&c, &h, &mi, &sec) || !lit(&c, " GMT"))
			return -EINVAL;
		year = year_from_two_digits(yy, now_utc);
	} else if ((wd = name(&c, wkday, 7)) >= 0 && lit(&c, ", ")) {
		/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
		if (!digits(&c, 2, &day) || !lit(&c, " ") || (mon = name(&c, month, 12)) < 0 ||
		    !lit(&c, " ") || !digits(&c, 4, &y4) || !lit(&c, " ") ||
		    !time_of_day(&c, &h, &mi, &sec) || !lit(&c, " GMT"))
			return -EINVAL;
		year = y4;
	} else if (wd >= 0 && lit(&c, " ")) {
		/* asctime: "Sun Nov  6 08:49:37 1994" */
		if ((mon = name(&c, month, 12)) < 0 || !lit(&c, " "))
			return -EINVAL;
		/* The day is two digits, or a space and one digit. */
		if (lit(&c, " ") ? !digits(&c, 1, &day) : !digits(&c, 2, &day))
			return -EINVAL;
		if (!lit(&c, " ") || !time_of_day(&c, &h, &mi, &sec) || !lit(&c, " ") ||
		    !digits(&c, 4, &y4))
			return -EINVAL;
		year = y4;
	} else {
		return -EINVAL;
	}
	if (c.pos != c.len)
		return -EINVAL;
	/* 60 is a leap second, which a POSIX timestamp folds into the next minute. */
	if (day < 1 || day > mdays(year, mon + 1) || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	*out_utc = days_from_civil(year, mon + 1, day) * SECS_PER_DAY + h * 3600 + mi * 60 + sec;
	return 0;
}

void http_date_format(int64_t utc, char out[HTTP_DATE_SIZE])
{
	const int64_t min = days_from_civil(0, 1, 1) * SECS_PER_DAY;
	const int64_t max = days_from_civil(9999, 12, 31) * SECS_PER_DAY + SECS_PER_DAY - 1;
	int64_t days, rem, y;
	int m, d;

	if (utc < min)
		utc = min;
	if (utc > max)
		utc = max;
	days = utc / SECS_PER_DAY;
	rem = utc % SECS_PER_DAY;
	if (rem < 0) {
		rem += SECS_PER_DAY;
		days--;
	}
	civil_from_days(days, &y, &m, &d);
	/* 1970-01-01 was a Thursday. */
	(void)snprintf(out, HTTP_DATE_SIZE, "%s, %02d %s %04d %02d:%02d:%02d GMT",
	               wkday[((days % 7) + 11) % 7], d, month[m - 1], (int)y, (int)(rem / 3600),
	               (int)(rem / 60 % 60), (int)(rem % 60));
}

int64_t http_retry_after_ms(const char *v, size_t len, int64_t now_ms)
{
	int64_t sec = 0;
	int64_t utc;
	size_t i = 0;

	if (v == NULL)
		return -1;
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	while (i < len && (v[i] == ' ' || v[i] == '\t'))
		i++;
	if (i == len)
		return -1;
	if (v[i] >= '0' && v[i] <= '9') {
		for (; i < len; i++) {
			if (v[i] < '0' || v[i] > '9')
				return -1;
			if (sec <= HTTP_MAX_RETRY_AFTER_MS / 1000)
				sec = sec * 10 + (v[i] - '0');
		}
		return sec > HTTP_MAX_RETRY_AFTER_MS / 1000 ? HTTP_MAX_RETRY_AFTER_MS : sec * 1000;
	}
	if (http_date_parse(v + i, len - i, now_ms / 1000, &utc) < 0)
		return -1;
	if (utc * 1000 <= now_ms)
		return 0;
	if (utc * 1000 - now_ms > HTTP_MAX_RETRY_AFTER_MS)
		return HTTP_MAX_RETRY_AFTER_MS;
	return utc * 1000 - now_ms;
}
