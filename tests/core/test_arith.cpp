// Exact arithmetic: checked int64 operations and the portable 128-bit
// mul_div, checked against the compiler's __int128 where there is one.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>

#include "core/arith.hpp"

using loy::mul_div;

TEST_CASE("checked int64 operations refuse overflow", "[arith]")
{
	struct Row {
		int64_t a, b;
		bool add_ok, sub_ok, mul_ok;
	};
	const Row rows[] = {
		{1, 2, true, true, true},
		{INT64_MAX, 1, false, true, true},
		{INT64_MAX, 0, true, true, true},
		{INT64_MIN, 1, true, false, true},
		{INT64_MAX / 2 + 1, 2, true, true, false},
		{INT64_MAX / 2, 2, true, true, true},
		{-1, INT64_MIN, false, true, false},
	};
	for (const auto &r : rows) {
		CAPTURE(r.a, r.b);
		CHECK(loy::add_checked(r.a, r.b).has_value() == r.add_ok);
		CHECK(loy::sub_checked(r.a, r.b).has_value() == r.sub_ok);
		CHECK(loy::mul_checked(r.a, r.b).has_value() == r.mul_ok);
	}
	CHECK(*loy::add_checked(40, 2) == 42);
	CHECK(*loy::sub_checked(40, 42) == -2);
	CHECK(*loy::mul_checked(-6, 7) == -42);
}

TEST_CASE("mul_div floors and keeps the remainder", "[arith]")
{
	struct Row {
		int64_t a, b, c, d, quot, rem;
	};
	const Row rows[] = {
		{0, 5, 7, 3, 0, 0},
		{7, 1, 1, 2, 3, 1},
		{1999, 1, 1, 100, 19, 99},
		{2000, 1, 1, 100, 20, 0},
		{INT64_MAX, 1, 1, 1, INT64_MAX, 0},
		{INT64_MAX, 2, 1, 2, INT64_MAX, 0},
		{INT64_MAX, INT64_MAX, 1, INT64_MAX, INT64_MAX, 0},
	};
	for (const Row &r : rows) {
		CAPTURE(r.a, r.b, r.c, r.d);
		auto q = mul_div(r.a, r.b, r.c, r.d);
		REQUIRE(q);
		CHECK(q->quot == r.quot);
		CHECK(q->rem == r.rem);
	}
	CHECK_FALSE(mul_div(INT64_MAX, INT64_MAX, 3, INT64_MAX));
	// a × b × c past 128 bits.
	CHECK_FALSE(mul_div(INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX));
	CHECK_FALSE(mul_div(INT64_MAX, 2, 1, 1));
}

#if defined(__SIZEOF_INT128__)
__extension__ typedef unsigned __int128 u128;

TEST_CASE("mul_div agrees with __int128 on random operands", "[arith]")
{
	const auto seed = Catch::rngSeed();
	std::mt19937_64 rng(seed);
	INFO("seed " << seed << " (replay with --rng-seed)");
	for (int i = 0; i < 20000; i++) {
		auto pick = [&](int bits) {
			return static_cast<int64_t>(rng() >> (64 - bits)) & INT64_MAX;
		};
		int64_t a = pick(1 + static_cast<int>(rng() % 63));
		int64_t b = pick(1 + static_cast<int>(rng() % 63));
		int64_t c = pick(1 + static_cast<int>(rng() % 20));
		int64_t d = pick(1 + static_cast<int>(rng() % 63));
		if (d == 0)
			d = 1;
		CAPTURE(a, b, c, d);
		u128 p = static_cast<u128>(a) * static_cast<u128>(b);
		bool fits3 = c == 0 || p <= (~static_cast<u128>(0)) / static_cast<u128>(c);
		auto got = mul_div(a, b, c, d);
		if (!fits3) {
			CHECK_FALSE(got);
			continue;
		}
		u128 n = p * static_cast<u128>(c);
		u128 q = n / static_cast<u128>(d);
		auto r = static_cast<int64_t>(n % static_cast<u128>(d));
		if (q > static_cast<u128>(INT64_MAX)) {
			CHECK_FALSE(got);
		} else {
			REQUIRE(got);
			CHECK(got->quot == static_cast<int64_t>(q));
			CHECK(got->rem == r);
		}
	}
}
#endif
