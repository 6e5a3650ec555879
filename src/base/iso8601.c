/* SPDX-License-Identifier: MIT */
/* iso8601.c: strict xs:dateTime parser and formatter. */
#include "base/iso8601.h"

#include <errno.h>
#include <inttypes.h>

#include "base/cs-limits.h"
#include "base/err.h"

#define SECS_PER_DAY 86400

/* The parser's position in the input; pos never exceeds len. */
struct iso8601_cursor {
	const char *s;
	size_t len;
	size_t pos;
};

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Reads exactly n digits as a number; what names the field for the error message. */
static int read_digits(struct iso8601_cursor *c, unsigned n, const char *what, int *out,
                       struct err *err)
{
	int v = 0;

	for (unsigned i = 0; i < n; i++) {
		if (c->pos == c->len)
			return err_set(err, -EINVAL, "dateTime: ends after %zu bytes, in the %s",
			               c->len, what);
		if (!is_digit(c->s[c->pos]))
			return err_set(err, -EINVAL,
			               "dateTime: expected a digit of the %s at offset %zu", what,
			               c->pos);
		v = v * 10 + (c->s[c->pos] - '0');
		c->pos++;
	}
	*out = v;
	return 0;
}

static int expect_char(struct iso8601_cursor *c, char want, struct err *err)
{
	if (c->pos == c->len)
		return err_set(err, -EINVAL, "dateTime: ends after %zu bytes, expected '%c'",
		               c->len, want);
	if (c->s[c->pos] != want)
		return err_set(err, -EINVAL, "dateTime: expected '%c' at offset %zu", want, c->pos);
	c->pos++;
	return 0;
}

static bool is_leap_year(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && is_leap_year(y) ? 29 : days[m - 1];
}

/*
 * Days since 1970-01-01 of a proleptic Gregorian date, and back. These are Howard Hinnant's
 * days_from_civil and civil_from_days (http://howardhinnant.github.io/date_algorithms.html):
 * exact for every date, with no tables and no libc.
 */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era;
	int64_t yoe;
	int64_t doy;
	int64_t doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *out_y, int *out_m, int *out_d)
{
	int64_t era;
	int64_t doe;
	int64_t yoe;
	int64_t doy;
	int64_t mp;
	int m;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*out_y = yoe + era * 400 + (m <= 2);
	*out_m = m;
	*out_d = (int)(doy - (153 * mp + 2) / 5 + 1);
}

/* Reads the optional zone: nothing, 'Z', or +HH:MM / -HH:MM. Writes the offset east of UTC. */
static int read_zone(struct iso8601_cursor *c, int *out_offset, bool *out_no_zone, struct err *err)
{
	size_t at = c->pos;
	int sign;
	int hh = 0; /* initialised only for gcc -O3, which cannot see read_digits() set them */
	int mm = 0;
	int rc;

	if (c->pos == c->len) {
		*out_offset = 0;
		*out_no_zone = true;
		return 0;
	}
	if (c->s[c->pos] == 'Z') {
		c->pos++;
		*out_offset = 0;
		*out_no_zone = false;
		return 0;
	}
	if (c->s[c->pos] != '+' && c->s[c->pos] != '-')
		return err_set(err, -EINVAL, "dateTime: expected 'Z', '+' or '-' at offset %zu",
		               at);
	sign = c->s[c->pos] == '-' ? -1 : 1;
	c->pos++;
	rc = read_digits(c, 2, "zone hour", &hh, err);
	if (rc < 0)
		return rc;
	rc = expect_char(c, ':', err);
	if (rc < 0)
		return rc;
	rc = read_digits(c, 2, "zone minute", &mm, err);
	if (rc < 0)
		return rc;
	if (mm > 59 || hh > 14 || (hh == 14 && mm > 0))
		return err_set(err, -EINVAL,
		               "dateTime: zone offset %c%02d:%02d at offset %zu is %s",
		               sign < 0 ? '-' : '+', hh, mm, at, "out of range (at most 14:00)");
	*out_offset = sign * (hh * 3600 + mm * 60);
	*out_no_zone = false;
	return 0;
}

/* The fixed part, YYYY-MM-DDTHH:MM:SS: each field with the character before it (0 for none). */
enum {
	FIELD_YEAR,
	FIELD_MONTH,
	FIELD_DAY,
	FIELD_HOUR,
	FIELD_MINUTE,
	FIELD_SECOND,
	FIELD_COUNT
};

static const struct {
	char sep;
	unsigned digits;
	const char *what;
	int min;
	int max; /* the day is checked against its month afterwards */
} iso8601_fields[FIELD_COUNT] = {
	[FIELD_YEAR] = {.sep = 0, .digits = 4, .what = "year", .min = 1, .max = 9999},
	[FIELD_MONTH] = {.sep = '-', .digits = 2, .what = "month", .min = 1, .max = 12},
	[FIELD_DAY] = {.sep = '-', .digits = 2, .what = "day", .min = 1, .max = 31},
	[FIELD_HOUR] = {.sep = 'T', .digits = 2, .what = "hour", .min = 0, .max = 23},
	[FIELD_MINUTE] = {.sep = ':', .digits = 2, .what = "minute", .min = 0, .max = 59},
	[FIELD_SECOND] = {.sep = ':', .digits = 2, .what = "second", .min = 0, .max = 59},
};

int iso8601_parse(const char *s, size_t len, int64_t *out_utc, bool *out_no_zone, struct err *err)
{
	struct iso8601_cursor c = {.s = s, .len = len};
	int v[FIELD_COUNT] = {0}; /* initialised only for gcc -O3, as in read_zone() */
	int offset = 0;
	bool no_zone = false;
	int rc;

	if (len == 0)
		return err_set(err, -EINVAL, "dateTime: empty");
	if (len > ISO8601_MAX_LEN)
		return err_set(err, -EINVAL, "dateTime: %zu bytes, limit %u", len, ISO8601_MAX_LEN);

	for (int i = 0; i < FIELD_COUNT; i++) {
		int width = (int)iso8601_fields[i].digits;

		if (iso8601_fields[i].sep != 0) {
			rc = expect_char(&c, iso8601_fields[i].sep, err);
			if (rc < 0)
				return rc;
		}
		rc = read_digits(&c, iso8601_fields[i].digits, iso8601_fields[i].what, &v[i], err);
		if (rc < 0)
			return rc;
		if (v[i] < iso8601_fields[i].min || v[i] > iso8601_fields[i].max)
			return err_set(err, -EINVAL,
			               "dateTime: %s %0*d is out of range (%0*d-%0*d)",
			               iso8601_fields[i].what, width, v[i], width,
			               iso8601_fields[i].min, width, iso8601_fields[i].max);
	}
	if (v[FIELD_DAY] > days_in_month(v[FIELD_YEAR], v[FIELD_MONTH]))
		return err_set(err, -EINVAL, "dateTime: day %02d is out of range for %04d-%02d",
		               v[FIELD_DAY], v[FIELD_YEAR], v[FIELD_MONTH]);

	/* Fractional seconds: checked, then dropped, because calsync works in whole seconds. */
	if (c.pos < c.len && c.s[c.pos] == '.') {
		size_t first = c.pos + 1;

		c.pos = first;
		while (c.pos < c.len && is_digit(c.s[c.pos]))
			c.pos++;
		if (c.pos == first)
			return err_set(err, -EINVAL,
			               "dateTime: expected a digit after '.' at offset %zu", first);
		if (c.pos - first > ISO8601_MAX_FRACTION_DIGITS)
			return err_set(err, -EINVAL, "dateTime: %zu fraction digits, limit %u",
			               c.pos - first, ISO8601_MAX_FRACTION_DIGITS);
	}

	rc = read_zone(&c, &offset, &no_zone, err);
	if (rc < 0)
		return rc;
	if (c.pos != c.len)
		return err_set(err, -EINVAL, "dateTime: unexpected data at offset %zu", c.pos);

	*out_utc = days_from_civil(v[FIELD_YEAR], v[FIELD_MONTH], v[FIELD_DAY]) * SECS_PER_DAY +
	           v[FIELD_HOUR] * 3600 + v[FIELD_MINUTE] * 60 + v[FIELD_SECOND] - offset;
	if (out_no_zone != NULL)
		*out_no_zone = no_zone;
	return 0;
}

/* Writes v as exactly width decimal digits, zero-padded. */
static char *put_digits(char *p, int64_t v, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + width;
}

int iso8601_format(int64_t utc, char out[ISO8601_FORMAT_SIZE], struct err *err)
{
	int64_t days;
	int64_t secs;
	int64_t year;
	int month;
	int day;
	char *p = out;

	if (utc < ISO8601_MIN_UTC || utc > ISO8601_MAX_UTC)
		return err_set(err, -ERANGE, "timestamp %" PRId64 " is outside the years 0001-9999",
		               utc);
	/* Floor division: times before 1970 are negative. */
	days = utc / SECS_PER_DAY;
	secs = utc % SECS_PER_DAY;
	if (secs < 0) {
		secs += SECS_PER_DAY;
		days--;
	}
	civil_from_days(days, &year, &month, &day);

	p = put_digits(p, year, 4);
	*p++ = '-';
	p = put_digits(p, month, 2);
	*p++ = '-';
	p = put_digits(p, day, 2);
	*p++ = 'T';
	p = put_digits(p, secs / 3600, 2);
	*p++ = ':';
	p = put_digits(p, secs / 60 % 60, 2);
	*p++ = ':';
	p = put_digits(p, secs % 60, 2);
	*p++ = 'Z';
	*p = '\0';
	return 0;
}
