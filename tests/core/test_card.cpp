// Card scans (core/card.hpp): the digits of plain, track 2 and QR scans, the
// Luhn and GS1 check digits, the program's card rule, and masking.
#include <catch2/catch.hpp>

#include <string>

#include "core/card.hpp"

using loy::CardCheck;
using loy::CardRule;
using loy::Code;

namespace {

// 6280001234567897 fails Luhn (its digits sum to 62 under Luhn's doubling),
// so the format tests read it under a rule that checks nothing.
const CardRule no_check{CardCheck::none, 8, 19};

} // namespace

TEST_CASE("card scans yield their digits", "[card]")
{
	struct Row {
		const char *name;
		std::string scan;
		const char *digits; // nullptr: refused
		const char *why;    // part of the message when refused
	};
	const std::string pan = "6280001234567897";
	const Row rows[] = {
		{"plain digits", pan, "6280001234567897", ""},
		{"spaces", "6280 0012 3456 7897", "6280001234567897", ""},
		{"dashes", "6280-0012-3456-7897", "6280001234567897", ""},
		{"spaces around", " 6280001234567897 ", "6280001234567897", ""},
		{"trailing newline", pan + "\n", "6280001234567897", ""},
		{"trailing CR LF", pan + "\r\n", "6280001234567897", ""},
		{"a letter", "6280x001234567897", nullptr, "'x' is not a digit"},
		{"a dot", "6280.0012.3456.7897", nullptr, "'.' is not a digit"},
		{"only separators", "- -", nullptr, "no digits"},
		{"empty", "", nullptr, "empty"},
		{"only a newline", "\n", nullptr, "empty"},

		{"track 2", ";6280001234567897=2812?", "6280001234567897", ""},
		{"track 2 with discretionary data", ";6280001234567897=28121010000?",
		 "6280001234567897", ""},
		{"track 2 with an LRC after the sentinel", ";6280001234567897=2812?7",
		 "6280001234567897", ""},
		{"track 2 and a newline", ";6280001234567897=2812?\r\n", "6280001234567897", ""},
		{"track 2 without '='", ";6280001234567897?", nullptr, "no '='"},
		{"track 2 without '?'", ";6280001234567897=2812", nullptr, "end sentinel"},
		{"track 2 non-digit in the number", ";62800012345678A7=2812?", nullptr,
		 "card number holds a non-digit"},
		{"track 2 non-digit after '='", ";6280001234567897=28A2?", nullptr,
		 "discretionary data holds a non-digit"},
		{"track 2 two characters after '?'", ";6280001234567897=2812?77", nullptr,
		 "after its end sentinel"},
		{"track 2 without a number", ";=2812?", nullptr, "no digits"},

		{"QR", "LOYALTY:6280001234567897", "6280001234567897", ""},
		{"QR, lowercase prefix", "loyalty:6280001234567897", "6280001234567897", ""},
		{"QR, mixed-case prefix", "Loyalty:6280001234567897", "6280001234567897", ""},
		{"QR and a newline", "LOYALTY:6280001234567897\n", "6280001234567897", ""},
		{"QR with a space", "LOYALTY:6280 0012", nullptr, "QR payload"},
		{"QR without a number", "LOYALTY:", nullptr, "no digits"},
		{"QR with another prefix", "LOYAL:6280001234567897", nullptr, "'L' is not a digit"},

		// scan_chars_max = 128, counted before a line ending is taken off.
		{"128 characters", std::string(128, '1'), "", ""},
		{"129 characters", std::string(129, '1'), nullptr, "129 characters"},
		{"128 digits and a newline", std::string(128, '1') + "\n", nullptr, "129 characters"},
	};
	for (const Row &r : rows) {
		INFO(r.name);
		CAPTURE(r.scan);
		auto d = loy::card_digits(r.scan);
		REQUIRE(d.is_ok() == (r.digits != nullptr));
		if (!r.digits) {
			CHECK(d.status().code() == Code::bad_card);
			CHECK_THAT(d.status().message(), Catch::StartsWith("card: "));
			CHECK_THAT(d.status().message(), Catch::Contains(r.why));
			continue;
		}
		if (r.digits[0] != '\0')
			CHECK(*d == r.digits);
		else
			CHECK(*d == std::string(128, '1'));
		// The program's rule sees the same digits (a length 8 … 19 rule
		// refuses the 128-digit row on its length instead).
		auto p = loy::parse_card_scan(r.scan, no_check);
		if (d->size() <= 19) {
			REQUIRE(p);
			CHECK(*p == *d);
		} else {
			CHECK(p.status().code() == Code::bad_card);
		}
	}
}

TEST_CASE("Luhn and GS1 check digits", "[card]")
{
	struct Row {
		const char *digits;
		bool luhn, gs1;
	};
	const Row rows[] = {
		// Luhn: 7992739871 doubled from the right sums to 67; check digit 3.
		{"79927398713", true, false},
		{"4111111111111111", true, false},
		{"378282246310005", true, false},
		// 628000123456789 sums to 55 with a check digit weighing 1: 5 makes 60.
		{"6280001234567895", true, false},
		{"6280001234567897", false, false},
		// GS1: weights 1, 3, 1, … from the right; 4006381333931 sums to 90.
		{"4006381333931", false, true},
		{"5901234123457", true, true},
		{"036000291452", false, true},  // UPC-A
		{"96385074", false, true},      // EAN-8
		// A wrong EAN-13 check digit that happens to pass Luhn.
		{"4006381333932", true, false},
		// Leading zeros change neither sum.
		{"00000000", true, true},
		{"079927398713", true, false},
		{"0036000291452", false, true},
		{"", false, false},
	};
	for (const Row &r : rows) {
		CAPTURE(r.digits);
		CHECK(loy::luhn_valid(r.digits) == r.luhn);
		CHECK(loy::gs1_valid(r.digits) == r.gs1);
	}
}

TEST_CASE("changing any one digit breaks the check digit", "[card]")
{
	// Both schemes catch every single-digit error: Luhn's doubling and GS1's
	// weight 3 are one-to-one on 0 … 9 modulo 10.
	struct Row {
		const char *digits;
		bool (*valid)(std::string_view) noexcept;
		const char *scheme;
	};
	const Row rows[] = {
		{"79927398713", loy::luhn_valid, "luhn"},
		{"4111111111111111", loy::luhn_valid, "luhn"},
		{"5901234123457", loy::luhn_valid, "luhn"},
		{"4006381333931", loy::gs1_valid, "gs1"},
		{"5901234123457", loy::gs1_valid, "gs1"},
		{"96385074", loy::gs1_valid, "gs1"},
	};
	for (const Row &r : rows) {
		INFO(r.scheme);
		CAPTURE(r.digits);
		const std::string good = r.digits;
		REQUIRE(r.valid(good));
		int accepted = 0;
		std::string first;
		for (size_t i = 0; i < good.size(); i++) {
			for (char c = '0'; c <= '9'; c++) {
				if (c == good[i])
					continue;
				std::string bad = good;
				bad[i] = c;
				if (r.valid(bad) && accepted++ == 0)
					first = bad;
			}
		}
		INFO("first wrongly accepted: " << first);
		CHECK(accepted == 0);
	}
}

TEST_CASE("parse_card_scan applies the program's card rule", "[card]")
{
	struct Row {
		const char *name;
		CardRule rule;
		const char *scan;
		bool ok;
		const char *why; // part of the message when refused
	};
	const CardRule luhn_12_14{CardCheck::luhn, 12, 14};
	const CardRule ean13{CardCheck::ean13, 13, 13};
	const CardRule none_8_12{CardCheck::none, 8, 12};
	const Row rows[] = {
		{"luhn: valid", {CardCheck::luhn, 8, 19}, "6280001234567895", true, ""},
		{"luhn: check digit off by two", {CardCheck::luhn, 8, 19}, "6280001234567897", false,
		 "Luhn"},
		{"luhn: valid in track 2", {CardCheck::luhn, 8, 19}, ";6280001234567895=2812?", true,
		 ""},
		{"luhn: valid in a QR", {CardCheck::luhn, 8, 19}, "LOYALTY:6280001234567895", true, ""},
		{"luhn: an EAN-13 that fails Luhn", {CardCheck::luhn, 8, 19}, "4006381333931", false,
		 "Luhn"},
		// Length bounds 12 … 14, with zeros in front of 79927398713 to keep it valid.
		{"luhn: one digit below min", luhn_12_14, "79927398713", false, "11 digits"},
		{"luhn: at min", luhn_12_14, "079927398713", true, ""},
		{"luhn: at max", luhn_12_14, "00079927398713", true, ""},
		{"luhn: one digit above max", luhn_12_14, "000079927398713", false, "15 digits"},

		{"ean13: valid", ean13, "4006381333931", true, ""},
		{"ean13: valid, spaced", ean13, "400 6381 333 931", true, ""},
		{"ean13: wrong check digit", ean13, "4006381333932", false, "GS1"},
		{"ean13: a UPC-A padded to 13", ean13, "0036000291452", true, ""},
		{"ean13: one digit below min", ean13, "036000291452", false, "12 digits"},
		{"ean13: one digit above max", ean13, "04006381333931", false, "14 digits"},

		{"none: any digits", none_8_12, "12345678", true, ""},
		{"none: one digit below min", none_8_12, "1234567", false, "7 digits"},
		{"none: at max", none_8_12, "123456789012", true, ""},
		{"none: one digit above max", none_8_12, "1234567890123", false, "13 digits"},
		{"none: still refuses a non-digit", none_8_12, "1234567a", false, "not a digit"},
		{"none: still refuses an empty scan", none_8_12, "", false, "empty"},
	};
	for (const Row &r : rows) {
		INFO(r.name);
		CAPTURE(r.scan);
		auto p = loy::parse_card_scan(r.scan, r.rule);
		REQUIRE(p.is_ok() == r.ok);
		if (r.ok) {
			CHECK(*loy::card_digits(r.scan) == *p);
			continue;
		}
		CHECK(p.status().code() == Code::bad_card);
		CHECK_THAT(p.status().message(), Catch::Contains(r.why));
	}
}

TEST_CASE("a refused card's message never holds the whole number", "[card]")
{
	struct Row {
		CardRule rule;
		const char *number;
	};
	const Row rows[] = {
		{{CardCheck::luhn, 8, 19}, "6280001234567897"},     // fails Luhn
		{{CardCheck::ean13, 13, 13}, "4006381333932"},      // fails GS1
		{{CardCheck::none, 8, 12}, "1234567890123"},        // too long
	};
	for (const Row &r : rows) {
		CAPTURE(r.number);
		auto p = loy::parse_card_scan(r.number, r.rule);
		REQUIRE_FALSE(p);
		CHECK_THAT(p.status().message(), !Catch::Contains(r.number));
	}
}

TEST_CASE("mask_card shows at most four digits and at most half", "[card]")
{
	struct Row {
		const char *digits;
		const char *masked;
	};
	const Row rows[] = {
		{"6280001234567897", "****7897"},
		{"12345678", "****5678"}, // eight: the last four
		{"1234567", "****567"},   // seven: three shown, four hidden
		{"123456", "****456"},
		{"1234", "****34"},
		{"12", "****2"},
		{"1", "****"},
		{"", "****"},
	};
	for (const Row &r : rows) {
		CAPTURE(r.digits);
		CHECK(loy::mask_card(r.digits) == r.masked);
	}
}
