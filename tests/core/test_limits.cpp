// core/limits.hpp: the bounds that keep every later sum in 64 bits, checked
// by the terminal before it records and by the centre before it applies.
#include <catch2/catch.hpp>

#include <cstdint>

#include "core/limits.hpp"

using loy::Code;

namespace {

loy::Basket basket_of(std::vector<loy::Line> lines)
{
	loy::Basket b;
	b.receipt_id = "R-1";
	b.lines = std::move(lines);
	return b;
}

loy::Line line(int64_t qty, int64_t unit_price, int64_t discount = 0)
{
	return loy::Line{"A", "food", qty, unit_price, discount};
}

} // namespace

TEST_CASE("basket limits: each amount and the total within money_max", "[limits]")
{
	struct Row {
		const char *what;
		loy::Basket b;
		const char *problem; // nullptr: within the limits
	};
	const int64_t M = loy::money_max;
	const Row rows[] = {
		{"an ordinary basket", basket_of({line(2, 350), line(3, 250, 50)}), nullptr},
		{"a net of exactly money_max", basket_of({line(1, M)}), nullptr},
		{"lines summing to exactly money_max", basket_of({line(1, M - 1), line(1, 1)}), nullptr},
		{"a discount that brings the net to the limit", basket_of({line(2, M, M)}), nullptr},
		{"qty past qty_max", basket_of({line(loy::qty_max + 1, 1)}), "lines[0].qty is 1000000001"},
		{"unit_price past money_max", basket_of({line(1, M + 1)}), "lines[0].unit_price"},
		{"unit_price 5·10^18 (the till's old poison)", basket_of({line(1, 5'000'000'000'000'000'000)}),
		 "lines[0].unit_price"},
		{"discount past money_max", basket_of({line(2, M, M + 1)}), "lines[0].discount"},
		{"a net past money_max", basket_of({line(2, M)}), "lines[0].net"},
		{"lines summing past money_max", basket_of({line(1, M), line(1, 1)}), "sum to more than"},
	};
	for (const Row &r : rows) {
		INFO(r.what);
		loy::Status s = loy::check_basket_limits(r.b);
		if (!r.problem) {
			CHECK(s.is_ok());
			continue;
		}
		REQUIRE_FALSE(s.is_ok());
		CHECK(s.code() == Code::bad_basket);
		CHECK_THAT(s.message(), Catch::Contains(r.problem));
	}
}

TEST_CASE("points a receipt moves and a member holds stay bounded", "[limits]")
{
	const int64_t P = loy::receipt_points_max, T = loy::member_total_max;
	CHECK(loy::check_receipt_points(P, P).is_ok());
	CHECK_FALSE(loy::check_receipt_points(P + 1, 0).is_ok());
	CHECK_FALSE(loy::check_receipt_points(0, P + 1).is_ok());
	CHECK_THAT(loy::check_receipt_points(P + 1, 0).message(), Catch::Contains("earn"));

	CHECK(loy::check_member_total(T - 5, 5, "points").is_ok());
	CHECK(loy::check_member_total(-T, 0, "points").is_ok());
	CHECK(loy::check_member_total(5, -T, "points").is_ok());
	CHECK_FALSE(loy::check_member_total(T - 5, 6, "points").is_ok());
	CHECK_FALSE(loy::check_member_total(-T, -1, "points").is_ok());
	// Totals beyond the bound, however they came: refused, not summed.
	CHECK_FALSE(loy::check_member_total(INT64_MAX, INT64_MAX, "points").is_ok());
	CHECK_FALSE(loy::check_member_total(INT64_MIN, -1, "points").is_ok());
	CHECK_THAT(loy::check_member_total(T, 1, "qualifying spend").message(), Catch::Contains("qualifying spend"));
	// The bounds leave room: a hundred members at the limit sum exactly.
	STATIC_REQUIRE(loy::member_total_max <= INT64_MAX / 90);
	STATIC_REQUIRE(loy::money_max * 2 <= INT64_MAX);
}
