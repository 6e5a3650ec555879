/* SPDX-License-Identifier: MIT */
/* test-iso8601.c: the xs:dateTime parser accepts exactly the documented form, at every length. */
#include "base/iso8601.h"

#include <errno.h>
#include <time.h>

#include "base/cs-limits.h"
#include "base/err.h"
#include "base/xalloc.h"
#include "harness.h"

/* Values the parser must never write on failure. */
#define SENTINEL_UTC INT64_C(0x5a5a5a5a)

struct parsed {
	int rc;
	int64_t utc;
	bool no_zone;
	struct err err;
};

/*
 * Parses len bytes from an exact-size heap copy, so that AddressSanitizer catches any read past
 * the end, and so that nothing can lean on a NUL that is not part of the input.
 */
static struct parsed parse_n(const char *s, size_t len)
{
	struct parsed p = {.utc = SENTINEL_UTC, .no_zone = true};
	char *copy = xmalloc(len);

	memcpy(copy, s, len);
	p.rc = iso8601_parse(copy, len, &p.utc, &p.no_zone, &p.err);
	free(copy);
	return p;
}

static struct parsed parse(const char *s)
{
	return parse_n(s, strlen(s));
}

static const struct {
	const char *in;
	int64_t utc;
	bool no_zone;
} valid[] = {
	{"1970-01-01T00:00:00Z", 0, false},
	{"2025-03-03T09:00:00Z", 1740992400, false},
	{"2025-03-03T09:00:00.1Z", 1740992400, false},
	{"2025-03-03T09:00:00.123Z", 1740992400, false},
	{"2025-03-03T09:00:00.9999999Z", 1740992400, false},
	{"2025-03-03T09:00:00.123456789Z", 1740992400, false},
	{"2025-03-03T10:00:00+01:00", 1740992400, false},
	{"2025-03-03T03:30:00-05:30", 1740992400, false},
	{"2025-03-03T09:00:00+00:00", 1740992400, false},
	{"2025-03-03T09:00:00-00:00", 1740992400, false},
	{"2025-03-03T09:00:00.5+00:00", 1740992400, false},
	{"2025-03-03T09:00:00", 1740992400, true},
	{"2025-03-03T09:00:00.250", 1740992400, true},
	{"2025-12-31T23:59:59+14:00", 1767175199, false},
	{"2025-03-02T19:00:00-14:00", 1740992400, false},
	{"2024-02-29T12:00:00Z", 1709208000, false},
	{"2000-02-29T00:00:00Z", 951782400, false},
	{"1969-12-31T23:59:59Z", -1, false},
	{"2038-01-19T03:14:08Z", INT64_C(2147483648), false},
	{"0001-01-01T00:00:00Z", ISO8601_MIN_UTC, false},
	{"9999-12-31T23:59:59Z", ISO8601_MAX_UTC, false},
	/* Valid input, but outside what iso8601_format() writes. */
	{"0001-01-01T00:00:00+14:00", ISO8601_MIN_UTC - 14 * 3600, false},
	{"9999-12-31T23:59:59-14:00", ISO8601_MAX_UTC + 14 * 3600, false},
};

TEST(valid_inputs)
{
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		struct parsed p = parse(valid[i].in);

		if (p.rc != 0)
			fprintf(stderr, "input '%s': %s\n", valid[i].in, p.err.msg);
		CHECK_EQ(p.rc, 0);
		CHECK_EQ(p.utc, valid[i].utc);
		CHECK_EQ(p.no_zone, valid[i].no_zone);
	}
}

TEST(no_zone_out_may_be_null)
{
	int64_t utc = 0;

	CHECK_EQ(iso8601_parse("2025-03-03T09:00:00Z", 20, &utc, NULL, NULL), 0);
	CHECK_EQ(utc, 1740992400);
}

static const struct {
	const char *in;
	size_t len;      /* 0: strlen(in); set for inputs with a NUL inside */
	const char *msg; /* a part of the error message */
} invalid[] = {
	{"", 0, "empty"},
	{"2025-13-01T00:00:00Z", 0, "month 13 is out of range"},
	{"2025-00-01T00:00:00Z", 0, "month 00 is out of range"},
	{"2025-04-31T00:00:00Z", 0, "day 31 is out of range for 2025-04"},
	{"2025-06-31T00:00:00Z", 0, "day 31 is out of range for 2025-06"},
	{"2023-02-29T00:00:00Z", 0, "day 29 is out of range for 2023-02"},
	{"1900-02-29T00:00:00Z", 0, "day 29 is out of range for 1900-02"},
	{"2024-02-30T00:00:00Z", 0, "day 30 is out of range for 2024-02"},
	{"2025-01-00T00:00:00Z", 0, "day 00 is out of range"},
	{"2025-01-32T00:00:00Z", 0, "day 32 is out of range"},
	{"0000-01-01T00:00:00Z", 0, "year 0000 is out of range"},
	{"2025-03-03T24:00:00Z", 0, "hour 24 is out of range"},
	{"2025-03-03T09:60:00Z", 0, "minute 60 is out of range"},
	{"2025-03-03T09:00:60Z", 0, "second 60 is out of range"},
	{"2025-03-03 09:00:00Z", 0, "expected 'T' at offset 10"},
	{"2025-03-03t09:00:00Z", 0, "expected 'T' at offset 10"},
	{"2025-03-03T09:00:00z", 0, "expected 'Z', '+' or '-' at offset 19"},
	{"2025-03-03T09:00:00 Z", 0, "expected 'Z', '+' or '-' at offset 19"},
	{"2025-03-03T09:00:00.Z", 0, "expected a digit after '.' at offset 20"},
	{"2025-03-03T09:00:00.", 0, "expected a digit after '.' at offset 20"},
	{"2025-03-03T09:00:00.1234567890Z", 0, "10 fraction digits, limit 9"},
	{"2025-03-03T09:00:00.12aZ", 0, "expected 'Z', '+' or '-' at offset 22"},
	{"2025-03-03T09:00:00,5Z", 0, "expected 'Z', '+' or '-' at offset 19"},
	{"2025-03-03T09:00:00+1:00", 0, "expected a digit of the zone hour at offset 21"},
	{"2025-03-03T09:00:00+01", 0, "ends after 22 bytes, expected ':'"},
	{"2025-03-03T09:00:00+0100", 0, "expected ':' at offset 22"},
	{"2025-03-03T09:00:00+15:00", 0, "zone offset +15:00 at offset 19 is out of range"},
	{"2025-03-03T09:00:00-14:01", 0, "zone offset -14:01 at offset 19 is out of range"},
	{"2025-03-03T09:00:00+01:60", 0, "zone offset +01:60 at offset 19 is out of range"},
	{"2025-03-03T09:00:00+01:00:00", 0, "unexpected data at offset 25"},
	{"2025-03-03T09:00:00ZZ", 0, "unexpected data at offset 20"},
	{"2025-03-03T09:00:00Z ", 0, "unexpected data at offset 20"},
	{"2025-03-03T09:00:00Zjunk", 0, "unexpected data at offset 20"},
	{" 2025-03-03T09:00:00Z", 0, "expected a digit of the year at offset 0"},
	{"-2025-03-03T09:00:00Z", 0, "expected a digit of the year at offset 0"},
	{"+2025-03-03T09:00:00Z", 0, "expected a digit of the year at offset 0"},
	{"12025-03-03T09:00:00Z", 0, "expected '-' at offset 4"},
	{"2025-3-03T09:00:00Z", 0, "expected a digit of the month at offset 6"},
	{"2025-03-03T9:00:00Z", 0, "expected a digit of the hour at offset 12"},
	{"2025-03-03T09:00Z", 0, "expected ':' at offset 16"},
	{"2025-03-03", 0, "ends after 10 bytes, expected 'T'"},
	{"2025", 0, "ends after 4 bytes, expected '-'"},
	{"202", 0, "ends after 3 bytes, in the year"},
	{"junk", 0, "expected a digit of the year at offset 0"},
	{"T", 0, "expected a digit of the year at offset 0"},
	{"Z", 0, "expected a digit of the year at offset 0"},
	{"\xef\xbc\x92\xef\xbc\x90\xef\xbc\x92\xef\xbc\x95", 0, "digit of the year at offset 0"},
	{"2025-03-03T09:00:00\xc2\xa0Z", 0, "expected 'Z', '+' or '-' at offset 19"},
	{"2025-03-03T09:00:00Z\0", 21, "unexpected data at offset 20"},
	{"2025-03-03\0T09:00:00Z", 21, "expected 'T' at offset 10"},
	{"2025-03-03T09:00:00\0", 20, "expected 'Z', '+' or '-' at offset 19"},
	{"\0", 1, "expected a digit of the year at offset 0"},
	{"2025-03-03T09:00:00.000000000000000000000000000000000000000000000Z", 0,
         "66 bytes, limit 64"},
};

TEST(invalid_inputs)
{
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		size_t len = invalid[i].len != 0 ? invalid[i].len : strlen(invalid[i].in);
		struct parsed p = parse_n(invalid[i].in, len);

		CHECK_EQ(p.rc, -EINVAL);
		CHECK_EQ(p.err.code, -EINVAL);
		if (strstr(p.err.msg, invalid[i].msg) == NULL)
			fprintf(stderr, "input %zu: message '%s' lacks '%s'\n", i, p.err.msg,
			        invalid[i].msg);
		CHECK(strstr(p.err.msg, invalid[i].msg) != NULL);
		CHECK_EQ(p.utc, SENTINEL_UTC);
		CHECK_EQ(p.no_zone, true);
	}
}

/*
 * Every prefix of every input either fails cleanly or parses. When in is valid, a prefix that
 * parses is the zoneless form: a valid timestamp cut short can only end after the seconds or
 * inside the fraction.
 */
static void check_prefixes(const char *in, bool in_is_valid)
{
	size_t n = strlen(in);

	for (size_t len = 0; len <= n; len++) {
		struct parsed p = parse_n(in, len);

		CHECK(p.rc == 0 || p.rc == -EINVAL);
		if (p.rc == 0 && len < n && in_is_valid) {
			struct parsed seconds = parse_n(in, 19);

			CHECK(len >= 19);
			CHECK_EQ(p.no_zone, true);
			CHECK_EQ(seconds.rc, 0);
			CHECK_EQ(p.utc, seconds.utc);
		}
		if (p.rc != 0) {
			CHECK(strncmp(p.err.msg, "dateTime: ", 10) == 0);
			CHECK_EQ(p.utc, SENTINEL_UTC);
		}
	}
}

TEST(every_prefix)
{
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
		check_prefixes(valid[i].in, true);
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		check_prefixes(invalid[i].in, false);
}

TEST(format)
{
	char out[ISO8601_FORMAT_SIZE];

	CHECK_EQ(iso8601_format(0, out, NULL), 0);
	CHECK_STREQ(out, "1970-01-01T00:00:00Z");
	CHECK_EQ(iso8601_format(-1, out, NULL), 0);
	CHECK_STREQ(out, "1969-12-31T23:59:59Z");
	CHECK_EQ(iso8601_format(1740992400, out, NULL), 0);
	CHECK_STREQ(out, "2025-03-03T09:00:00Z");
	CHECK_EQ(iso8601_format(1709208000, out, NULL), 0);
	CHECK_STREQ(out, "2024-02-29T12:00:00Z");
	CHECK_EQ(iso8601_format(ISO8601_MIN_UTC, out, NULL), 0);
	CHECK_STREQ(out, "0001-01-01T00:00:00Z");
	CHECK_EQ(iso8601_format(ISO8601_MAX_UTC, out, NULL), 0);
	CHECK_STREQ(out, "9999-12-31T23:59:59Z");
}

TEST(format_out_of_range)
{
	const int64_t bad[] = {ISO8601_MIN_UTC - 1, ISO8601_MAX_UTC + 1, INT64_MIN, INT64_MAX};
	char out[ISO8601_FORMAT_SIZE] = "untouched";

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct err err = {0};

		CHECK_EQ(iso8601_format(bad[i], out, &err), -ERANGE);
		CHECK_EQ(err.code, -ERANGE);
		CHECK(strstr(err.msg, "outside the years 0001-9999") != NULL);
		CHECK_STREQ(out, "untouched");
	}
}

/* Checks one instant against glibc's timegm(), an independent implementation, and round-trips it
 * through the formatter and the parser. Returns false on the first mismatch, to stop the loop. */
static bool check_instant(int64_t utc)
{
	char text[ISO8601_FORMAT_SIZE];
	struct tm tm = {0};
	struct parsed p;
	time_t expect;

	int rc = iso8601_format(utc, text, NULL);

	CHECK_EQ(rc, 0);
	if (rc != 0)
		return false;
	p = parse(text);
	tm.tm_year = (int)((text[0] - '0') * 1000 + (text[1] - '0') * 100 + (text[2] - '0') * 10 +
	                   (text[3] - '0') - 1900);
	tm.tm_mon = (text[5] - '0') * 10 + (text[6] - '0') - 1;
	tm.tm_mday = (text[8] - '0') * 10 + (text[9] - '0');
	tm.tm_hour = (text[11] - '0') * 10 + (text[12] - '0');
	tm.tm_min = (text[14] - '0') * 10 + (text[15] - '0');
	tm.tm_sec = (text[17] - '0') * 10 + (text[18] - '0');
	expect = timegm(&tm);
	CHECK_EQ(p.rc, 0);
	CHECK_EQ(p.utc, utc);
	CHECK_EQ(expect, utc);
	if (p.rc != 0 || p.utc != utc || expect != utc) {
		fprintf(stderr, "instant %" PRId64 " was written as '%s'\n", utc, text);
		return false;
	}
	return true;
}

/* Start of January 1st of year, from timegm(). */
static int64_t year_start(int year)
{
	struct tm tm = {.tm_year = year - 1900, .tm_mday = 1};

	return (int64_t)timegm(&tm);
}

TEST(round_trip_calendar)
{
	/* The edges of every year from 0001 to 9999, where the leap-year rules bite. */
	for (int year = 1; year <= 9999; year++) {
		int64_t jan1 = year_start(year);
		int64_t feb28 = jan1 + 58 * 86400;

		if (!check_instant(jan1) || !check_instant(feb28 + 43200) ||
		    !check_instant(feb28 + 86400) || !check_instant(feb28 + 2 * 86400 - 1) ||
		    !check_instant(year_start(year + 1) - 1))
			break;
	}
	/* Every day of the years calsync will actually see, at noon and at the last second. */
	for (int64_t day = year_start(1900); day < year_start(2200); day += 86400) {
		if (!check_instant(day + 43200) || !check_instant(day + 86399))
			break;
	}
	CHECK(check_instant(ISO8601_MAX_UTC));
}

int main(void)
{
	RUN(valid_inputs);
	RUN(no_zone_out_may_be_null);
	RUN(invalid_inputs);
	RUN(every_prefix);
	RUN(format);
	RUN(format_out_of_range);
	RUN(round_trip_calendar);
	return harness_done();
}
