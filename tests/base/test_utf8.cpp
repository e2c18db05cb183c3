// base/utf8.hpp: the edge's check of UTF-8 (arguments, POS strings) and the
// scrub of messages that quote bad input.
#include <catch2/catch.hpp>

#include <string>

#include "base/utf8.hpp"

TEST_CASE("utf8_valid accepts RFC 3629 and nothing else", "[utf8]")
{
	struct Row {
		const char *what;
		std::string text;
		bool valid;
	};
	const Row rows[] = {
		{"empty", "", true},
		{"ASCII", "R-1001", true},
		{"two bytes (é)", "caf\xc3\xa9", true},
		{"three bytes (€)", "\xe2\x82\xac", true},
		{"four bytes (U+1F600)", "\xf0\x9f\x98\x80", true},
		{"U+10FFFF, the last", "\xf4\x8f\xbf\xbf", true},
		{"a NUL is a character", std::string("a\0b", 3), true},
		{"latin-1 é", "caf\xe9", false},
		{"a stray continuation byte", "\x80", false},
		{"0xff", "R-\xff", false},
		{"overlong '/' (C0 AF)", "\xc0\xaf", false},
		{"overlong three-byte NUL", "\xe0\x80\x80", false},
		{"a surrogate (U+D800)", "\xed\xa0\x80", false},
		{"past U+10FFFF", "\xf4\x90\x80\x80", false},
		{"a five-byte lead", "\xf8\x88\x80\x80\x80", false},
		{"cut at the end", "\xe2\x82", false},
		{"cut by ASCII", "\xe2\x82x", false},
	};
	for (const Row &r : rows) {
		INFO(r.what);
		CHECK(loy::utf8_valid(r.text) == r.valid);
		// What the scrub gives back is always valid, and equal to the input
		// exactly when that was valid.
		std::string scrubbed = loy::utf8_scrub(r.text);
		CHECK(loy::utf8_valid(scrubbed));
		CHECK((scrubbed == r.text) == r.valid);
	}
}

TEST_CASE("utf8_scrub replaces each bad byte with '?' and keeps good characters", "[utf8]")
{
	CHECK(loy::utf8_scrub("R-\xff") == "R-?");
	CHECK(loy::utf8_scrub("\xe2\x82") == "??");
	CHECK(loy::utf8_scrub("caf\xc3\xa9 \xc0\xaf.") == "caf\xc3\xa9 ??.");
}
