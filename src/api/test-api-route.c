/* SPDX-License-Identifier: MIT */
/* test-api-route.c: the HTTP API's routing, percent-decoding, address check and token check. */
#include "api/api-route.h"

#include <errno.h>
#include <string.h>

#include "base/err.h"
#include "harness.h"

static int route(const char *method, const char *path, struct api_route *r)
{
	memset(r, 0, sizeof(*r));
	return api_route(method, path, strlen(path), r, NULL);
}

TEST(routes_fixed_endpoints)
{
	struct api_route r;

	CHECK_EQ(route("GET", "/healthz", &r), 0);
	CHECK_EQ(r.ep, API_EP_HEALTHZ);
	CHECK_EQ(route("HEAD", "/readyz", &r), 0);
	CHECK_EQ(r.ep, API_EP_READYZ);
	CHECK_EQ(r.method, API_GET);
	CHECK_EQ(route("GET", "/metrics", &r), 0);
	CHECK_EQ(r.ep, API_EP_METRICS);
	CHECK_EQ(route("GET", "/v1/events", &r), 0);
	CHECK_EQ(r.ep, API_EP_EVENTS);
	CHECK_EQ(route("GET", "/v1/status", &r), 0);
	CHECK_EQ(r.ep, API_EP_STATUS);
	CHECK_EQ(route("HEAD", "/v1/status", &r), 0);
	CHECK_EQ(route("POST", "/v1/status", &r), -EOPNOTSUPP);
	CHECK_EQ(route("GET", "/v1/status/", &r), -ENOENT);
	CHECK_EQ(route("GET", "/v1/users", &r), 0);
	CHECK_EQ(r.ep, API_EP_USERS);
	CHECK(!api_route_changes(&r));
	CHECK_EQ(route("POST", "/v1/users", &r), 0);
	CHECK_EQ(r.ep, API_EP_USERS);
	CHECK(api_route_changes(&r));
	CHECK_STREQ(r.smtp, "");
}

TEST(routes_user_endpoints_and_decodes_the_address)
{
	struct api_route r;

	CHECK_EQ(route("GET", "/v1/users/a%40b.example/presence", &r), 0);
	CHECK_EQ(r.ep, API_EP_PRESENCE);
	CHECK_STREQ(r.smtp, "a@b.example");
	CHECK_EQ(route("GET", "/v1/users/a@b.example/agenda", &r), 0);
	CHECK_EQ(r.ep, API_EP_AGENDA);
	CHECK_EQ(route("POST", "/v1/users/a@b.example/resync", &r), 0);
	CHECK_EQ(r.ep, API_EP_RESYNC);
	CHECK(api_route_changes(&r));
	CHECK_EQ(route("DELETE", "/v1/users/a@b.example", &r), 0);
	CHECK_EQ(r.ep, API_EP_USER);
	CHECK_EQ(r.method, API_DELETE);
	CHECK_EQ(route("GET", "/v1/users/a@b.example", &r), 0);
	CHECK_EQ(r.ep, API_EP_USER);
	/* An encoded '/' is part of the address, not a separator; '+' stays '+'. */
	CHECK_EQ(route("GET", "/v1/users/a%2Fb+c@x.example/presence", &r), 0);
	CHECK_STREQ(r.smtp, "a/b+c@x.example");
	/* UTF-8 addresses pass through as bytes. */
	CHECK_EQ(route("GET", "/v1/users/j%C3%BCrgen@x.example", &r), 0);
	CHECK_STREQ(r.smtp, "j\xc3\xbcrgen@x.example");
}

TEST(unknown_paths_are_404)
{
	struct api_route r;

	CHECK_EQ(route("GET", "/", &r), -ENOENT);
	CHECK_EQ(route("GET", "", &r), -ENOENT);
	CHECK_EQ(route("GET", "/v1", &r), -ENOENT);
	CHECK_EQ(route("GET", "/v1/users/", &r), -ENOENT);
	CHECK_EQ(route("GET", "/v1/users//presence", &r), -ENOENT);
	CHECK_EQ(route("GET", "/v1/users/a@b/presence/", &r), -ENOENT);
	CHECK_EQ(route("GET", "/v1/users/a@b/other", &r), -ENOENT);
	CHECK_EQ(route("GET", "/v1/users/a@b/presence/x", &r), -ENOENT);
	CHECK_EQ(route("GET", "/healthz/", &r), -ENOENT);
	CHECK_EQ(route("GET", "/HEALTHZ", &r), -ENOENT);
	CHECK_EQ(route("GET", "/v1/eventsx", &r), -ENOENT);
}

TEST(wrong_methods_are_405_with_allow)
{
	struct api_route r;

	CHECK_EQ(route("PUT", "/v1/users", &r), -EOPNOTSUPP);
	CHECK_STREQ(r.allow, "GET, HEAD, POST");
	CHECK_EQ(route("POST", "/healthz", &r), -EOPNOTSUPP);
	CHECK_STREQ(r.allow, "GET, HEAD");
	CHECK_EQ(route("GET", "/v1/users/a@b/resync", &r), -EOPNOTSUPP);
	CHECK_STREQ(r.allow, "POST");
	CHECK_EQ(route("POST", "/v1/users/a@b", &r), -EOPNOTSUPP);
	CHECK_STREQ(r.allow, "GET, HEAD, DELETE");
	CHECK_EQ(route("DELETE", "/v1/users/a@b/presence", &r), -EOPNOTSUPP);
	CHECK_EQ(route("get", "/healthz", &r), -EOPNOTSUPP);
	CHECK_EQ(route("BREW", "/v1/events", &r), -EOPNOTSUPP);
	/* The method is checked before the address, so 405 wins over a bad encoding. */
	CHECK_EQ(route("PUT", "/v1/users/%zz/presence", &r), -EOPNOTSUPP);
}

TEST(bad_addresses_in_the_path_are_400)
{
	struct api_route r;
	char path[1200];
	struct err err = {0};

	CHECK_EQ(route("GET", "/v1/users/%zz/presence", &r), -EINVAL);
	CHECK_EQ(route("GET", "/v1/users/a%4/presence", &r), -EINVAL);
	CHECK_EQ(route("GET", "/v1/users/a%/presence", &r), -EINVAL);
	CHECK_EQ(route("GET", "/v1/users/a%00b/presence", &r), -EINVAL);
	CHECK_EQ(route("GET", "/v1/users/a%0Ab/presence", &r), -EINVAL);
	CHECK_EQ(route("GET", "/v1/users/a%7Fb/presence", &r), -EINVAL);
	/* 321 bytes: one over the limit. */
	memcpy(path, "/v1/users/", 10);
	memset(path + 10, 'a', 321);
	path[331] = '\0';
	CHECK_EQ(api_route("GET", path, strlen(path), &r, &err), -EMSGSIZE);
	CHECK(strstr(err.msg, "user address") != NULL);
	path[330] = '\0';
	CHECK_EQ(route("GET", path, &r), 0);
	CHECK_EQ(strlen(r.smtp), 320);
	/* A NUL inside the raw path (length-delimited input) is refused too. */
	CHECK_EQ(api_route("GET", "/v1/users/a\0b", 12, &r, NULL), -EINVAL);
}

TEST(every_prefix_of_a_path_routes_without_crashing)
{
	static const char *const paths[] = {
		"/v1/users/a%40b.example/presence",
		"/v1/users/x%2F%25/agenda",
		"/v1/events",
	};
	struct api_route r;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		for (size_t len = 0; len <= strlen(paths[i]); len++) {
			int rc = api_route("GET", paths[i], len, &r, NULL);

			CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL || rc == -EOPNOTSUPP);
		}
	}
}

TEST(url_decode)
{
	char out[8];
	size_t len = 99;

	CHECK_EQ(api_url_decode("a%41+", 5, out, sizeof(out), &len, NULL), 0);
	CHECK_STREQ(out, "aA+");
	CHECK_EQ(len, 3);
	CHECK_EQ(api_url_decode("", 0, out, sizeof(out), &len, NULL), 0);
	CHECK_STREQ(out, "");
	CHECK_EQ(api_url_decode("1234567", 7, out, sizeof(out), &len, NULL), 0);
	CHECK_EQ(api_url_decode("12345678", 8, out, sizeof(out), &len, NULL), -EMSGSIZE);
	CHECK_EQ(api_url_decode("%4", 2, out, sizeof(out), &len, NULL), -EINVAL);
	CHECK_EQ(api_url_decode("%g0", 3, out, sizeof(out), &len, NULL), -EINVAL);
	CHECK_EQ(api_url_decode("%00", 3, out, sizeof(out), &len, NULL), -EINVAL);
	CHECK_EQ(api_url_decode("%2f%2F", 6, out, sizeof(out), &len, NULL), 0);
	CHECK_STREQ(out, "//");
}

TEST(url_encode_round_trips)
{
	char enc[64], dec[64];
	size_t len;

	CHECK_EQ(api_url_encode("a/b c+d@x.example", enc, sizeof(enc)), 0);
	CHECK_STREQ(enc, "a%2Fb%20c%2Bd@x.example");
	CHECK_EQ(api_url_decode(enc, strlen(enc), dec, sizeof(dec), &len, NULL), 0);
	CHECK_STREQ(dec, "a/b c+d@x.example");
	CHECK_EQ(api_url_encode("abc", enc, 4), 0);
	CHECK_EQ(api_url_encode("abc", enc, 3), -EMSGSIZE);
	CHECK_EQ(api_url_encode("/", enc, 3), -EMSGSIZE);
}

TEST(smtp_check)
{
	CHECK_EQ(api_smtp_check("a@b", NULL), 0);
	CHECK_EQ(api_smtp_check("user00001@contoso.example", NULL), 0);
	CHECK_EQ(api_smtp_check("j\xc3\xbcrgen@x.example", NULL), 0);
	CHECK_EQ(api_smtp_check("", NULL), -EINVAL);
	CHECK_EQ(api_smtp_check("ab", NULL), -EINVAL);
	CHECK_EQ(api_smtp_check("abc", NULL), -EINVAL);
	CHECK_EQ(api_smtp_check("@bc", NULL), -EINVAL);
	CHECK_EQ(api_smtp_check("ab@", NULL), -EINVAL);
	CHECK_EQ(api_smtp_check("a b@c", NULL), -EINVAL);
	CHECK_EQ(api_smtp_check("a\tb@c", NULL), -EINVAL);
	CHECK_EQ(api_smtp_check("<a@b>", NULL), -EINVAL);
	CHECK_EQ(api_smtp_check("a@b,c@d", NULL), -EINVAL);
}

TEST(parse_int)
{
	int64_t v = 7;

	CHECK_EQ(api_parse_int("0", 0, 10, &v), 0);
	CHECK_EQ(v, 0);
	CHECK_EQ(api_parse_int("10", 0, 10, &v), 0);
	CHECK_EQ(v, 10);
	CHECK_EQ(api_parse_int("11", 0, 10, &v), -EINVAL);
	CHECK_EQ(api_parse_int("9223372036854775807", 0, INT64_MAX, &v), 0);
	CHECK_EQ(v, INT64_MAX);
	CHECK_EQ(api_parse_int("9223372036854775808", 0, INT64_MAX, &v), -EINVAL);
	CHECK_EQ(api_parse_int("-1", 0, 10, &v), -EINVAL);
	CHECK_EQ(api_parse_int("+1", 0, 10, &v), -EINVAL);
	CHECK_EQ(api_parse_int(" 1", 0, 10, &v), -EINVAL);
	CHECK_EQ(api_parse_int("1x", 0, 10, &v), -EINVAL);
	CHECK_EQ(api_parse_int("", 0, 10, &v), -EINVAL);
	CHECK_EQ(api_parse_int(NULL, 0, 10, &v), -EINVAL);
}

TEST(token_compare)
{
	CHECK(api_token_equal("secret", 6, "secret", 6));
	CHECK(!api_token_equal("secret", 6, "secreT", 6));
	CHECK(!api_token_equal("secret", 6, "secre", 5));
	CHECK(!api_token_equal("secret", 6, "secrets", 7));
	CHECK(!api_token_equal("secret", 6, "", 0));
	/* A NUL inside the received bytes never shortens the comparison. */
	CHECK(!api_token_equal("sec", 3, "sec\0", 4));
}

TEST(bearer_header)
{
	CHECK(api_bearer_ok("tok", 3, "Bearer tok"));
	CHECK(api_bearer_ok("tok", 3, "bearer tok"));
	CHECK(api_bearer_ok("tok", 3, "BEARER   tok"));
	CHECK(!api_bearer_ok("tok", 3, "Bearer tok "));
	CHECK(!api_bearer_ok("tok", 3, "Bearer"));
	CHECK(!api_bearer_ok("tok", 3, "Bearer "));
	CHECK(!api_bearer_ok("tok", 3, "Bearertok"));
	CHECK(!api_bearer_ok("tok", 3, "Basic dG9rOg=="));
	CHECK(!api_bearer_ok("tok", 3, "tok"));
	CHECK(!api_bearer_ok("tok", 3, ""));
	CHECK(!api_bearer_ok("tok", 3, NULL));
	/* No configured token never matches anything, not even an empty one. */
	CHECK(!api_bearer_ok("", 0, "Bearer "));
	CHECK(!api_bearer_ok(NULL, 0, "Bearer x"));
}

int main(void)
{
	RUN(routes_fixed_endpoints);
	RUN(routes_user_endpoints_and_decodes_the_address);
	RUN(unknown_paths_are_404);
	RUN(wrong_methods_are_405_with_allow);
	RUN(bad_addresses_in_the_path_are_400);
	RUN(every_prefix_of_a_path_routes_without_crashing);
	RUN(url_decode);
	RUN(url_encode_round_trips);
	RUN(smtp_check);
	RUN(parse_int);
	RUN(token_compare);
	RUN(bearer_header);
	return harness_done();
}
