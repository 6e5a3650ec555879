/* SPDX-License-Identifier: MIT */
/* test-clock.c: the injected calendar clock defaults to real time and otherwise asks its owner. */
#include "base/clock.h"

#include "harness.h"

struct fake {
	int64_t ms;
	bool still;
	int calls;
};

static int64_t fake_now_ms(void *ctx)
{
	struct fake *f = ctx;

	f->calls++;
	return f->ms;
}

static bool fake_frozen(void *ctx)
{
	const struct fake *f = ctx;

	return f->still;
}

TEST(default_is_the_real_clock)
{
	struct cs_clock zero = {0};
	int64_t before = clock_now_utc();
	int64_t a = clock_now_ms(NULL);
	int64_t b = clock_now_ms(&zero);
	int64_t after = clock_now_utc();

	CHECK(a / 1000 >= before && a / 1000 <= after);
	CHECK(b >= a && b / 1000 <= after);
	CHECK(!clock_frozen(NULL));
	CHECK(!clock_frozen(&zero));
}

TEST(injected_clock_is_asked)
{
	struct fake f = {.ms = INT64_C(1700000000123), .still = true};
	struct cs_clock c = {.now_ms = fake_now_ms, .frozen = fake_frozen, .ctx = &f};
	struct cs_clock no_frozen = {.now_ms = fake_now_ms, .ctx = &f};

	CHECK_EQ(clock_now_ms(&c), INT64_C(1700000000123));
	CHECK_EQ(f.calls, 1);
	CHECK(clock_frozen(&c));
	f.still = false;
	f.ms = -5;
	CHECK(!clock_frozen(&c));
	CHECK_EQ(clock_now_ms(&c), -5);
	/* Without a frozen function a clock is never frozen, whatever it reads. */
	CHECK(!clock_frozen(&no_frozen));
	CHECK_EQ(clock_now_ms(&no_frozen), -5);
}

int main(void)
{
	RUN(default_is_the_real_clock);
	RUN(injected_clock_is_asked);
	return harness_done();
}
