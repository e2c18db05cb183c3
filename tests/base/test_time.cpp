// Calendar dates and RFC 3339 timestamps (base/timeutil.hpp): civil-date
// conversions, weekdays, parsing, a basket's local date, and formatting.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include "base/timeutil.hpp"

using loy::Code;
using loy::Days;

namespace {

bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// Written out again here, independently of the engine, to walk the calendar.
unsigned month_days(int64_t y, unsigned m)
{
	static const unsigned n[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : n[m - 1];
}

struct Civil {
	int64_t y;
	unsigned m, d;
	bool operator==(const Civil &o) const { return y == o.y && m == o.m && d == o.d; }
};

Civil next_day(Civil c)
{
	if (c.d < month_days(c.y, c.m))
		return {c.y, c.m, c.d + 1};
	if (c.m < 12)
		return {c.y, c.m + 1, 1};
	return {c.y + 1, 1, 1};
}

Civil prev_day(Civil c)
{
	if (c.d > 1)
		return {c.y, c.m, c.d - 1};
	if (c.m > 1)
		return {c.y, c.m - 1, month_days(c.y, c.m - 1)};
	return {c.y - 1, 12, 31};
}

Civil civil(Days z)
{
	Civil c{};
	loy::civil_from_days(z, &c.y, &c.m, &c.d);
	return c;
}

std::string show(const Civil &c)
{
	return std::to_string(c.y) + "-" + std::to_string(c.m) + "-" + std::to_string(c.d);
}

// 2026-11-24T09:15:00Z: 20781 days × 86400 + 9 h 15 min (33300 s).
constexpr int64_t nov24_0915z = 1795511700;

} // namespace

TEST_CASE("known dates convert both ways", "[time]")
{
	struct Row {
		const char *name;
		int64_t y;
		unsigned m, d;
		Days days;
		int weekday; // 0 = Monday … 6 = Sunday
	};
	// Day numbers: 2026-01-01 is 56 years after the epoch with 14 leap days
	// (1972 … 2024): 56 × 365 + 14 = 20454; the rest follow from it.
	const Row rows[] = {
		{"epoch, a Thursday", 1970, 1, 1, 0, 3},
		{"day before the epoch, a Wednesday", 1969, 12, 31, -1, 2},
		{"first Monday after the epoch", 1970, 1, 5, 4, 0},
		{"first Sunday after the epoch", 1970, 1, 11, 10, 6},
		// 1960 … 1969 hold 3 leap days: 10 × 365 + 3 = 3653.
		{"1960-01-01", 1960, 1, 1, -3653, 4},
		// 2000-01-01 = 30 × 365 + 7 leap days = 10957; + 31 + 28.
		{"2000-02-29, a leap day of a 400-year", 2000, 2, 29, 11016, 1},
		{"2000-03-01", 2000, 3, 1, 11017, 2},
		// 2016-01-01 = 20454 − 10 × 365 − 3 = 16801; + 365.
		{"2016-12-31", 2016, 12, 31, 17166, 5},
		// 2024-01-01 = 20454 − 365 − 366 = 19723 (a Monday); + 31 + 28.
		{"2024-02-29", 2024, 2, 29, 19782, 3},
		{"2026-01-01, a Thursday", 2026, 1, 1, 20454, 3},
		// 20454 + 304 (Jan … Oct) + 23.
		{"2026-11-24, a Tuesday", 2026, 11, 24, 20781, 1},
		{"2026-12-31", 2026, 12, 31, 20818, 3},
		{"2027-01-01", 2027, 1, 1, 20819, 4},
		{"2027-01-05, a Tuesday", 2027, 1, 5, 20823, 1},
		// 2^31 − 1 seconds / 86400 = 24855.1…
		{"2038-01-19", 2038, 1, 19, 24855, 1},
		{"2100-02-28, 2100 is no leap year", 2100, 2, 28, 47540, 6},
		{"2100-03-01", 2100, 3, 1, 47541, 0},
		// 253402300800 s (10000-01-01T00:00:00Z) / 86400 − 1.
		{"9999-12-31", 9999, 12, 31, 2932896, 4},
		{"0001-01-01, a Monday", 1, 1, 1, -719162, 0},
		{"0000-03-01, the algorithm's own epoch, a Wednesday", 0, 3, 1, -719468, 2},
		{"0000-02-29, year 0 is a leap year", 0, 2, 29, -719469, 1},
	};
	for (const Row &r : rows) {
		INFO(r.name);
		CHECK(loy::days_from_civil(r.y, r.m, r.d) == r.days);
		CHECK(civil(r.days) == Civil{r.y, r.m, r.d});
		CHECK(loy::weekday_of(r.days) == r.weekday);
	}
}

TEST_CASE("every day of ±2 million around the epoch round-trips and follows the calendar", "[time]")
{
	// Walk day by day from the epoch, 2 million days (about 5476 years) forwards and backwards,
	// stepping the calendar independently of the engine. Mismatches are counted
	// so the loop does not make millions of assertions.
	const Days span = 2000000;
	long mismatches = 0;
	std::string first;
	auto check = [&](Days z, const Civil &want) {
		Civil got = civil(z);
		Days back = loy::days_from_civil(want.y, want.m, want.d);
		int w = loy::weekday_of(z);
		// Independent weekday: 1970-01-01 is a Thursday (3).
		int64_t want_w = ((z % 7) + 7 + 3) % 7;
		if (!(got == want) || back != z || w != want_w) {
			if (mismatches++ == 0)
				first = "day " + std::to_string(z) + ": want " + show(want) + ", got " +
					show(got) + ", back " + std::to_string(back) + ", weekday " +
					std::to_string(w);
		}
	};
	Civil c{1970, 1, 1};
	for (Days z = 0; z <= span; z++, c = next_day(c))
		check(z, c);
	c = Civil{1970, 1, 1};
	for (Days z = 0; z >= -span; z--, c = prev_day(c))
		check(z, c);
	INFO(first);
	CHECK(mismatches == 0);
}

TEST_CASE("weekday_of never goes negative", "[time]")
{
	struct Row {
		Days days;
		int weekday;
	};
	const Row rows[] = {
		{-7, 3},          // a week before a Thursday
		{-8, 2},
		{-6, 4},
		{-719468, 2},     // 0000-03-01: 719465 = 7 × 102780 + 5, so −5 + 7 = 2
		{INT32_MAX, 4},   // 2147483647 + 3 = 7 × 306783378 + 4
		{INT32_MIN, 1},   // −2147483648 + 3 = −7 × 306783378 + 1
	};
	for (const Row &r : rows) {
		CAPTURE(r.days);
		CHECK(loy::weekday_of(r.days) == r.weekday);
	}
}

TEST_CASE("parse_date takes YYYY-MM-DD of real days only", "[time]")
{
	struct Row {
		const char *text;
		bool ok;
		Days days;
	};
	const Row rows[] = {
		{"1970-01-01", true, 0},
		{"2000-02-29", true, 11016},
		{"2024-02-29", true, 19782},
		{"2026-11-24", true, 20781},
		{"2026-12-31", true, 20818},
		{"9999-12-31", true, 2932896},
		{"0000-01-01", true, -719528}, // 0000-03-01 − 31 − 29
		// Days that do not exist.
		{"2026-02-29", false, 0},
		{"2100-02-29", false, 0},
		{"2026-02-30", false, 0},
		{"2026-04-31", false, 0},
		{"2026-13-01", false, 0},
		{"2026-00-10", false, 0},
		{"2026-01-00", false, 0},
		{"2026-01-32", false, 0},
		// Bad shapes.
		{"", false, 0},
		{"2026-1-01", false, 0},
		{"2026-01-1", false, 0},
		{"26-01-01", false, 0},
		{"2026/01/01", false, 0},
		{"20260101", false, 0},
		{"2026-01-0a", false, 0},
		{"+2026-01-01", false, 0},
		{"-001-01-01", false, 0},
		{" 2026-01-01", false, 0},
		{"2026-01-01 ", false, 0},
		{"2026-01-01T00:00:00Z", false, 0},
		{"2026-11-24\n", false, 0},
	};
	for (const Row &r : rows) {
		CAPTURE(r.text);
		auto d = loy::parse_date(r.text);
		REQUIRE(d.is_ok() == r.ok);
		if (r.ok) {
			CHECK(*d == r.days);
			CHECK(loy::format_date(*d) == r.text);
		} else {
			CHECK(d.status().code() == Code::bad_argument);
			CHECK_THAT(d.status().message(), Catch::Contains("is not a date"));
		}
	}
}

TEST_CASE("format_date writes four-digit years and two-digit months and days", "[time]")
{
	CHECK(loy::format_date(0) == "1970-01-01");
	CHECK(loy::format_date(-1) == "1969-12-31");
	CHECK(loy::format_date(20781) == "2026-11-24");
	CHECK(loy::format_date(-719162) == "0001-01-01");
}

TEST_CASE("parse_timestamp takes RFC 3339 with an offset", "[time]")
{
	struct Row {
		const char *text;
		bool ok;
		int64_t utc_s;
		int32_t offset_s;
	};
	const Row rows[] = {
		// All of these are 2026-11-24T09:15:00Z.
		{"2026-11-24T10:15:00+01:00", true, nov24_0915z, 3600},
		{"2026-11-24T09:15:00Z", true, nov24_0915z, 0},
		{"2026-11-24T09:15:00+00:00", true, nov24_0915z, 0},
		{"2026-11-24T04:15:00-05:00", true, nov24_0915z, -18000},
		{"2026-11-24T14:45:00+05:30", true, nov24_0915z, 19800},
		{"2026-11-23T23:15:00-10:00", true, nov24_0915z, -36000},
		{"2026-11-24t09:15:00z", true, nov24_0915z, 0},
		{"2026-11-24 09:15:00Z", true, nov24_0915z, 0}, // RFC 3339 allows a space
		// Fractions of a second are dropped, never rounded up.
		{"2026-11-24T10:15:00.5+01:00", true, nov24_0915z, 3600},
		{"2026-11-24T10:15:00.999999999+01:00", true, nov24_0915z, 3600},
		{"2026-11-24T09:15:00.123Z", true, nov24_0915z, 0},
		// A leap second counts as the minute's last second:
		// 2017-01-01T00:00:00Z is 1483228800.
		{"2016-12-31T23:59:60Z", true, 1483228799, 0},
		{"2016-12-31T23:59:59Z", true, 1483228799, 0},
		{"1970-01-01T00:00:00Z", true, 0, 0},
		{"1969-12-31T23:59:59Z", true, -1, 0},
		{"1970-01-01T00:30:00+01:00", true, -1800, 3600},
		{"1969-12-31T23:30:00-01:00", true, 1800, -3600},
		// The offset is required.
		{"2026-11-24T10:15:00", false, 0, 0},
		{"2026-11-24T10:15:00.5", false, 0, 0},
		{"2026-11-24", false, 0, 0},
		// Bad offsets.
		{"2026-11-24T10:15:00+01", false, 0, 0},
		{"2026-11-24T10:15:00+1:00", false, 0, 0},
		{"2026-11-24T10:15:00+0100", false, 0, 0},
		{"2026-11-24T10:15:00+24:00", false, 0, 0},
		{"2026-11-24T10:15:00+01:60", false, 0, 0},
		{"2026-11-24T10:15:00 +01:00", false, 0, 0},
		{"2026-11-24T10:15:00UTC", false, 0, 0},
		// Bad times and dates.
		{"2026-11-24T24:00:00Z", false, 0, 0},
		{"2026-11-24T10:60:00Z", false, 0, 0},
		{"2026-11-24T10:15:61Z", false, 0, 0},
		{"2026-11-24T10:15Z", false, 0, 0},
		{"2026-11-24T1:15:00Z", false, 0, 0},
		{"2026-02-29T10:15:00Z", false, 0, 0},
		{"2026-11-24X10:15:00Z", false, 0, 0},
		{"2026-11-24T10:15:00.Z", false, 0, 0},
		// Anything after the offset.
		{"2026-11-24T10:15:00Z ", false, 0, 0},
		{"2026-11-24T10:15:00+01:00Z", false, 0, 0},
		{"2026-11-24T10:15:00+01:00\n", false, 0, 0},
		{"", false, 0, 0},
	};
	for (const Row &r : rows) {
		CAPTURE(r.text);
		auto t = loy::parse_timestamp(r.text);
		REQUIRE(t.is_ok() == r.ok);
		if (r.ok) {
			CHECK(t->utc_s == r.utc_s);
			CHECK(t->offset_s == r.offset_s);
		} else {
			CHECK(t.status().code() == Code::bad_argument);
			CHECK_THAT(t.status().message(), Catch::Contains("RFC 3339"));
		}
	}
}

TEST_CASE("a timestamp's local date and weekday are those of its own offset", "[time]")
{
	struct Row {
		const char *text;
		Days local_date;
		int weekday;
	};
	const Row rows[] = {
		// 04:30Z on Wednesday 2027-01-06, but still Tuesday evening in New York.
		{"2027-01-05T23:30:00-05:00", 20823, 1},
		{"2027-01-05T23:59:59-12:00", 20823, 1},
		// 2027-01-04T10:00Z, already Tuesday in Kiribati.
		{"2027-01-05T00:00:00+14:00", 20823, 1},
		// 2027-01-05T23:30Z, already Wednesday in Paris.
		{"2027-01-06T00:30:00+01:00", 20824, 2},
		{"2027-01-06T00:00:00Z", 20824, 2},
		{"2027-01-05T23:59:59Z", 20823, 1},
		{"2026-11-24T10:15:00+01:00", 20781, 1},
		// Around the epoch: negative local seconds floor to the day before.
		{"1970-01-01T00:30:00+01:00", 0, 3},
		{"1969-12-31T23:30:00-01:00", -1, 2},
		{"1969-12-31T23:59:59Z", -1, 2},
		{"1969-12-31T00:00:00Z", -1, 2},
		{"1969-12-30T23:59:59Z", -2, 1},
	};
	for (const Row &r : rows) {
		CAPTURE(r.text);
		auto t = loy::parse_timestamp(r.text);
		REQUIRE(t);
		CHECK(t->local_date() == r.local_date);
		CHECK(t->local_weekday() == r.weekday);
	}
}

TEST_CASE("format_timestamp writes the time in its own offset", "[time]")
{
	struct Row {
		const char *text;
		const char *formatted;
	};
	const Row rows[] = {
		{"2026-11-24T10:15:00+01:00", "2026-11-24T10:15:00+01:00"},
		{"2027-01-05T23:30:00-05:00", "2027-01-05T23:30:00-05:00"},
		{"2026-06-01T12:00:00+05:30", "2026-06-01T12:00:00+05:30"},
		{"2026-06-01T12:00:00-09:30", "2026-06-01T12:00:00-09:30"},
		{"2027-01-05T00:00:00+14:00", "2027-01-05T00:00:00+14:00"},
		{"2026-11-24T09:15:00Z", "2026-11-24T09:15:00Z"},
		{"1969-12-31T23:59:59Z", "1969-12-31T23:59:59Z"},
		{"1969-12-31T23:30:00-01:00", "1969-12-31T23:30:00-01:00"},
		// A zero offset is written Z, the time case-normalised, fractions dropped.
		{"2026-11-24T09:15:00+00:00", "2026-11-24T09:15:00Z"},
		{"2026-11-24t09:15:00z", "2026-11-24T09:15:00Z"},
		{"2026-11-24T10:15:00.999+01:00", "2026-11-24T10:15:00+01:00"},
		{"2016-12-31T23:59:60Z", "2016-12-31T23:59:59Z"},
	};
	for (const Row &r : rows) {
		CAPTURE(r.text);
		auto t = loy::parse_timestamp(r.text);
		REQUIRE(t);
		const std::string out = loy::format_timestamp(*t);
		CHECK(out == r.formatted);
		auto again = loy::parse_timestamp(out);
		REQUIRE(again);
		CHECK(again->utc_s == t->utc_s);
		CHECK(again->offset_s == t->offset_s);
	}

	loy::Timestamp t;
	t.utc_s = 0;
	t.offset_s = -3600;
	CHECK(loy::format_timestamp(t) == "1969-12-31T23:00:00-01:00");
}
