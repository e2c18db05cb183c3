// Zone files read without TZ (storage/tzfile.hpp): offsets of real zones
// around their transitions, 1850 to 2100, against what `TZ=<zone> date -d
// @<utc> +%::z` printed for the same instants (tzdata 2025b, when the tests
// were written); POSIX footer rules; hostile and truncated files; zone names
// refused; and zone_offset leaving the environment alone. Fixed instants
// only: nothing here reads the clock.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "base/timeutil.hpp"
#include "storage/terminal.hpp"
#include "storage/tzfile.hpp"
#include "support/tmpdir.hpp"

namespace {

constexpr int64_t year400_s = 146097 * int64_t{86400}; // the Gregorian cycle

int64_t utc_of(const char *rfc3339)
{
	auto t = loy::parse_timestamp(rfc3339);
	REQUIRE(t);
	return t->utc_s;
}

// As `date +%::z` prints it.
std::string hms(int32_t offset_s)
{
	const int32_t a = offset_s < 0 ? -offset_s : offset_s;
	return fmt::format("{}{:02}:{:02}:{:02}", offset_s < 0 ? '-' : '+', a / 3600, a / 60 % 60, a % 60);
}

std::string read_file(const std::string &path)
{
	std::ifstream in(path, std::ios::binary);
	REQUIRE(in);
	return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string zone_bytes(const char *name) { return read_file(std::string("/usr/share/zoneinfo/") + name); }

struct ZoneRow {
	const char *zone;
	const char *utc;
	const char *date_says; // TZ=zone date -d @utc +%::z
};

// Each pair is the last second before a transition and the first after.
const ZoneRow zone_rows[] = {
	{"Europe/Budapest", "1850-06-01T00:00:00Z", "+01:16:20"}, // before the first transition: LMT
	{"Europe/Budapest", "1890-10-31T22:43:39Z", "+01:16:20"},
	{"Europe/Budapest", "1890-10-31T22:43:40Z", "+01:00:00"},
	{"Europe/Budapest", "1900-01-01T00:00:00Z", "+01:00:00"},
	{"Europe/Budapest", "2026-03-29T00:59:59Z", "+01:00:00"},
	{"Europe/Budapest", "2026-03-29T01:00:00Z", "+02:00:00"},
	{"Europe/Budapest", "2026-10-25T00:59:59Z", "+02:00:00"},
	{"Europe/Budapest", "2026-10-25T01:00:00Z", "+01:00:00"},
	{"Europe/Budapest", "2038-03-28T00:59:59Z", "+01:00:00"}, // the footer rule from here
	{"Europe/Budapest", "2038-03-28T01:00:00Z", "+02:00:00"},
	{"Europe/Budapest", "2100-01-01T00:00:00Z", "+01:00:00"},
	{"Europe/Budapest", "2100-03-28T00:59:59Z", "+01:00:00"},
	{"Europe/Budapest", "2100-03-28T01:00:00Z", "+02:00:00"},
	{"Europe/Budapest", "2100-10-31T00:59:59Z", "+02:00:00"},
	{"Europe/Budapest", "2100-10-31T01:00:00Z", "+01:00:00"},

	{"America/New_York", "1850-01-01T00:00:00Z", "-04:56:02"},
	{"America/New_York", "1883-11-18T16:59:59Z", "-04:56:02"},
	{"America/New_York", "1883-11-18T17:00:00Z", "-05:00:00"},
	{"America/New_York", "1900-01-01T00:00:00Z", "-05:00:00"},
	{"America/New_York", "2026-03-08T06:59:59Z", "-05:00:00"},
	{"America/New_York", "2026-03-08T07:00:00Z", "-04:00:00"},
	{"America/New_York", "2026-11-01T05:59:59Z", "-04:00:00"},
	{"America/New_York", "2026-11-01T06:00:00Z", "-05:00:00"},
	{"America/New_York", "2100-03-14T06:59:59Z", "-05:00:00"},
	{"America/New_York", "2100-03-14T07:00:00Z", "-04:00:00"},
	{"America/New_York", "2100-11-07T05:59:59Z", "-04:00:00"},
	{"America/New_York", "2100-11-07T06:00:00Z", "-05:00:00"},

	// Half an hour of daylight saving, in the southern summer.
	{"Australia/Lord_Howe", "1895-01-31T13:23:39Z", "+10:36:20"},
	{"Australia/Lord_Howe", "1895-01-31T13:23:40Z", "+10:00:00"},
	{"Australia/Lord_Howe", "1900-01-01T00:00:00Z", "+10:00:00"},
	{"Australia/Lord_Howe", "2026-04-04T14:59:59Z", "+11:00:00"},
	{"Australia/Lord_Howe", "2026-04-04T15:00:00Z", "+10:30:00"},
	{"Australia/Lord_Howe", "2026-10-03T15:29:59Z", "+10:30:00"},
	{"Australia/Lord_Howe", "2026-10-03T15:30:00Z", "+11:00:00"},
	{"Australia/Lord_Howe", "2100-01-01T00:00:00Z", "+11:00:00"},
	{"Australia/Lord_Howe", "2100-04-03T14:59:59Z", "+11:00:00"},
	{"Australia/Lord_Howe", "2100-04-03T15:00:00Z", "+10:30:00"},
	{"Australia/Lord_Howe", "2100-10-02T15:29:59Z", "+10:30:00"},
	{"Australia/Lord_Howe", "2100-10-02T15:30:00Z", "+11:00:00"},

	{"Asia/Kathmandu", "1900-01-01T00:00:00Z", "+05:41:16"},
	{"Asia/Kathmandu", "1919-12-31T18:18:43Z", "+05:41:16"},
	{"Asia/Kathmandu", "1919-12-31T18:18:44Z", "+05:30:00"},
	{"Asia/Kathmandu", "1985-12-31T18:29:59Z", "+05:30:00"},
	{"Asia/Kathmandu", "1985-12-31T18:30:00Z", "+05:45:00"},
	{"Asia/Kathmandu", "2026-06-01T00:00:00Z", "+05:45:00"},
	{"Asia/Kathmandu", "2100-01-01T00:00:00Z", "+05:45:00"},

	// Daylight saving until February 2019, none since.
	{"America/Sao_Paulo", "1900-01-01T00:00:00Z", "-03:06:28"},
	{"America/Sao_Paulo", "2018-11-04T02:59:59Z", "-03:00:00"},
	{"America/Sao_Paulo", "2018-11-04T03:00:00Z", "-02:00:00"},
	{"America/Sao_Paulo", "2019-02-17T01:59:59Z", "-02:00:00"},
	{"America/Sao_Paulo", "2019-02-17T02:00:00Z", "-03:00:00"},
	{"America/Sao_Paulo", "2026-01-15T12:00:00Z", "-03:00:00"},
	{"America/Sao_Paulo", "2100-01-15T12:00:00Z", "-03:00:00"},

	// Two date-line moves: 4 July 1892 lived twice, 30 December 2011 skipped.
	{"Pacific/Apia", "1892-07-04T11:26:55Z", "+12:33:04"},
	{"Pacific/Apia", "1892-07-04T11:26:56Z", "-11:26:56"},
	{"Pacific/Apia", "1900-01-01T00:00:00Z", "-11:26:56"},
	{"Pacific/Apia", "2011-12-30T09:59:59Z", "-10:00:00"},
	{"Pacific/Apia", "2011-12-30T10:00:00Z", "+14:00:00"},
	{"Pacific/Apia", "2021-04-03T13:59:59Z", "+14:00:00"},
	{"Pacific/Apia", "2021-04-03T14:00:00Z", "+13:00:00"},
	{"Pacific/Apia", "2026-01-01T00:00:00Z", "+13:00:00"},
	{"Pacific/Apia", "2100-01-01T00:00:00Z", "+13:00:00"},

	// TZif v3 footers: a change at -1:00 ("M3.5.0/-1") and at 26:00.
	{"America/Nuuk", "2100-03-28T00:59:59Z", "-02:00:00"},
	{"America/Nuuk", "2100-03-28T01:00:00Z", "-01:00:00"},
	{"America/Nuuk", "2100-10-31T00:59:59Z", "-01:00:00"},
	{"America/Nuuk", "2100-10-31T01:00:00Z", "-02:00:00"},
	{"Asia/Jerusalem", "2100-03-25T23:59:59Z", "+02:00:00"},
	{"Asia/Jerusalem", "2100-03-26T00:00:00Z", "+03:00:00"},
	{"Asia/Jerusalem", "2100-10-30T22:59:59Z", "+03:00:00"},
	{"Asia/Jerusalem", "2100-10-30T23:00:00Z", "+02:00:00"},
};

struct RuleRow {
	const char *rule;
	const char *utc;
	const char *date_says; // TZ='rule' date -d @utc +%::z
};

const RuleRow rule_rows[] = {
	// Jn never counts 29 February: J60 is 1 March in 2028 and 2027 alike.
	{"AAA3BBB,J60/2,J300/2", "2028-03-01T04:59:59Z", "-03:00:00"},
	{"AAA3BBB,J60/2,J300/2", "2028-03-01T05:00:00Z", "-02:00:00"},
	{"AAA3BBB,J60/2,J300/2", "2027-03-01T04:59:59Z", "-03:00:00"},
	{"AAA3BBB,J60/2,J300/2", "2027-03-01T05:00:00Z", "-02:00:00"},
	{"AAA3BBB,J60/2,J300/2", "2028-10-27T03:59:59Z", "-02:00:00"},
	{"AAA3BBB,J60/2,J300/2", "2028-10-27T04:00:00Z", "-03:00:00"},
	// n does: 59 is 29 February in 2028, 1 March in 2027.
	{"AAA3BBB,59/2,300/2", "2028-02-29T04:59:59Z", "-03:00:00"},
	{"AAA3BBB,59/2,300/2", "2028-02-29T05:00:00Z", "-02:00:00"},
	{"AAA3BBB,59/2,300/2", "2027-03-01T04:59:59Z", "-03:00:00"},
	{"AAA3BBB,59/2,300/2", "2027-03-01T05:00:00Z", "-02:00:00"},
	{"AAA3BBB,59/2,300/2", "2028-10-27T03:59:59Z", "-02:00:00"}, // day 300 is 27 October in 2028
	{"AAA3BBB,59/2,300/2", "2028-10-27T04:00:00Z", "-03:00:00"},
	{"AAA3BBB,59/2,300/2", "2027-10-28T03:59:59Z", "-02:00:00"}, // and 28 October in 2027
	{"AAA3BBB,59/2,300/2", "2027-10-28T04:00:00Z", "-03:00:00"},
	// Week 5 of a February with four Sundays is the fourth; -167 h is a week
	// less an hour before the day.
	{"AAA-1BBB,M2.5.0,M9.5.6/-167", "2026-02-22T00:59:59Z", "+01:00:00"},
	{"AAA-1BBB,M2.5.0,M9.5.6/-167", "2026-02-22T01:00:00Z", "+02:00:00"},
	{"AAA-1BBB,M2.5.0,M9.5.6/-167", "2026-09-18T22:59:59Z", "+02:00:00"},
	{"AAA-1BBB,M2.5.0,M9.5.6/-167", "2026-09-18T23:00:00Z", "+01:00:00"},
	// Seconds in an offset, an explicit daylight offset, 167 h.
	{"AAA+5:30:15BBB+4,M2.5.0/167,M9.5.6/-167", "2026-03-01T04:30:14Z", "-05:30:15"},
	{"AAA+5:30:15BBB+4,M2.5.0/167,M9.5.6/-167", "2026-03-01T04:30:15Z", "-04:00:00"},
	{"AAA+5:30:15BBB+4,M2.5.0/167,M9.5.6/-167", "2026-09-19T04:59:59Z", "-04:00:00"},
	{"AAA+5:30:15BBB+4,M2.5.0/167,M9.5.6/-167", "2026-09-19T05:00:00Z", "-05:30:15"},
	{"EST5EDT,0/0,J365/25", "2026-07-01T00:00:00Z", "-04:00:00"},
	// RFC 8536 section 3.3.1 gives this rule as daylight time all year. (glibc's
	// date says -05:00:00 for the first five hours of each year: it looks only
	// at the changes of the instant's own year.)
	{"EST5EDT,0/0,J365/25", "2026-01-01T03:00:00Z", "-04:00:00"},
};

// ---- A TZif writer for hand-made and broken files ----

void put32(std::string &s, uint32_t v)
{
	for (int shift = 24; shift >= 0; shift -= 8)
		s += static_cast<char>((v >> shift) & 0xff);
}

void put64(std::string &s, uint64_t v)
{
	put32(s, static_cast<uint32_t>(v >> 32));
	put32(s, static_cast<uint32_t>(v));
}

struct Tzif {
	char version = '2'; // 0 for version 1
	std::vector<int64_t> times;
	std::vector<uint8_t> types;
	std::vector<int32_t> offsets{3600};
	std::string footer = "CET-1"; // version 2 and later
};

std::string block(const Tzif &z, bool wide)
{
	std::string s = "TZif";
	s += z.version;
	s += std::string(15, '\0');
	for (uint32_t n : {0u, 0u, 0u, static_cast<uint32_t>(z.times.size()),
			   static_cast<uint32_t>(z.offsets.size()), 4u})
		put32(s, n);
	for (int64_t t : z.times)
		wide ? put64(s, static_cast<uint64_t>(t)) : put32(s, static_cast<uint32_t>(t));
	for (uint8_t i : z.types)
		s += static_cast<char>(i);
	for (int32_t off : z.offsets) {
		put32(s, static_cast<uint32_t>(off));
		s += '\0'; // isdst
		s += '\0'; // designation "ABC"
	}
	s += std::string("ABC\0", 4);
	return s;
}

std::string tzif(const Tzif &z)
{
	if (z.version == 0)
		return block(z, false);
	Tzif v1 = z; // what a version 1 reader would see: only the types
	v1.times.clear();
	v1.types.clear();
	return block(v1, false) + block(z, true) + "\n" + z.footer + "\n";
}

uint32_t get32(const std::string &s, size_t at)
{
	uint32_t v = 0;
	for (size_t i = 0; i < 4; i++)
		v = (v << 8) | static_cast<unsigned char>(s[at + i]);
	return v;
}

void set32(std::string &s, size_t at, uint32_t v)
{
	std::string b;
	put32(b, v);
	s.replace(at, 4, b);
}

// Where the second header starts in a version 2+ file.
size_t second_header(const std::string &s)
{
	const uint64_t isut = get32(s, 20), isstd = get32(s, 24), leap = get32(s, 28);
	const uint64_t time = get32(s, 32), type = get32(s, 36), chars = get32(s, 40);
	return static_cast<size_t>(44 + time * 5 + type * 6 + chars + leap * 8 + isstd + isut);
}

} // namespace

TEST_CASE("offsets of real zones around their transitions agree with date(1)")
{
	for (const auto &row : zone_rows) {
		INFO(row.zone << " at " << row.utc);
		auto zone = loy::load_zone(row.zone);
		INFO(zone.status().message());
		REQUIRE(zone);
		CHECK(hms(zone->offset_at(utc_of(row.utc))) == row.date_says);
		// And through the terminal's zone_offset, cached or not.
		auto off = loy::zone_offset(row.zone, utc_of(row.utc));
		REQUIRE(off);
		CHECK(hms(*off) == row.date_says);
	}
}

TEST_CASE("footer rules repeat every 400 years, and any int64_t instant has an offset")
{
	auto budapest = loy::load_zone("Europe/Budapest");
	REQUIRE(budapest);
	// 2100's changes, 400 and 4000 years on.
	for (const char *utc : {"2100-03-28T00:59:59Z", "2100-03-28T01:00:00Z", "2100-10-31T01:00:00Z"})
		for (int64_t cycles : {1, 10}) {
			INFO(utc << " + " << cycles << " x 400 years");
			CHECK(budapest->offset_at(utc_of(utc) + cycles * year400_s) ==
			      budapest->offset_at(utc_of(utc)));
		}
	CHECK(budapest->offset_at(INT64_MIN) == 4580); // LMT, before the first transition
	const int32_t last = budapest->offset_at(INT64_MAX);
	CHECK((last == 3600 || last == 7200));
	auto kathmandu = loy::load_zone("Asia/Kathmandu");
	REQUIRE(kathmandu);
	CHECK(kathmandu->offset_at(INT64_MAX) == 20700);
}

TEST_CASE("POSIX TZ rules: Jn, n and Mm.w.d, times beyond 0..24 h")
{
	for (const auto &row : rule_rows) {
		INFO(row.rule << " at " << row.utc);
		auto rule = loy::parse_tz_rule(row.rule);
		INFO(rule.status().message());
		REQUIRE(rule);
		CHECK(hms(rule->offset_at(utc_of(row.utc))) == row.date_says);
	}
	auto fixed = loy::parse_tz_rule("<+0545>-5:45");
	REQUIRE(fixed);
	CHECK(!fixed->has_dst);
	CHECK(fixed->offset_at(0) == 20700);
	auto dst_default = loy::parse_tz_rule("CET-1CEST,M3.5.0,M10.5.0/3");
	REQUIRE(dst_default);
	CHECK(dst_default->dst_offset_s == 7200); // one hour ahead when not given
	CHECK(dst_default->dst_start.time_s == 7200);
	CHECK(dst_default->dst_end.time_s == 3 * 3600);
}

TEST_CASE("malformed TZ rules are refused, naming the string")
{
	const char *bad[] = {
		"",                              // nothing
		"CET",                           // no offset
		"CE-1",                          // a name of two letters
		"<+1>-1",                        // a quoted name of two
		"<+0545-5:45",                   // unclosed
		"CET-25",                        // an offset beyond 24 h
		"CET-1:60",                      // minutes beyond 59
		"CET-1CEST",                     // daylight time with no dates
		"CET-1CEST,M3.5.0",              // no end
		"CET-1CEST,M13.5.0,M10.5.0",     // month 13
		"CET-1CEST,M3.6.0,M10.5.0",      // week 6
		"CET-1CEST,M3.0.0,M10.5.0",      // week 0
		"CET-1CEST,M3.5.7,M10.5.0",      // weekday 7
		"CET-1CEST,J0,J100",             // J counts from 1
		"CET-1CEST,J366,J100",           // and to 365
		"CET-1CEST,366,100",             // n to 365
		"CET-1CEST,M3.5.0/168,M10.5.0",  // beyond 167 h
		"CET-1CEST,M3.5.0/-168,M10.5.0", // and -167 h
		"CET-1CEST,M3.5.0,M10.5.0/3x",   // something after the rule
		"CET-1 ",                        // a space after
		"C\xc3\xa9T-1",                  // not ASCII letters
	};
	for (const char *text : bad) {
		INFO('"' << text << '"');
		auto r = loy::parse_tz_rule(text);
		REQUIRE(!r);
		CHECK(r.status().code() == loy::Code::bad_argument);
		CHECK(r.status().message().find("TZ string") != std::string::npos);
	}
	CHECK(!loy::parse_tz_rule(std::string(loy::tz_rule_length_max + 1, 'A') + "-1"));
}

TEST_CASE("hand-made TZif files of versions 1 to 4")
{
	Tzif z;
	z.times = {1000, 2000};
	z.types = {1, 0};
	z.offsets = {3600, 7200};
	for (char v : {'\0', '2', '3', '4'}) {
		INFO("version byte " << int{v});
		z.version = v;
		z.footer = "AAA-1";
		auto p = loy::parse_tzif(tzif(z));
		INFO(p.status().message());
		REQUIRE(p);
		CHECK(p->offset_at(999) == 3600); // type 0 before the first transition
		CHECK(p->offset_at(1000) == 7200);
		CHECK(p->offset_at(1999) == 7200);
		CHECK(p->offset_at(2000) == 3600);
		CHECK(p->offset_at(INT64_MAX) == 3600);
	}
	// An empty footer: the last transition's type stays.
	z.version = '2';
	z.types = {0, 1};
	z.footer = "";
	auto kept = loy::parse_tzif(tzif(z));
	REQUIRE(kept);
	CHECK(kept->offset_at(INT64_MAX) == 7200);
	// No transitions: the footer's rule at all times (RFC 8536 section 3.3).
	Tzif rule_only;
	rule_only.version = '3';
	rule_only.footer = "AAA-1BBB,M3.5.0,M10.5.0/3";
	auto r = loy::parse_tzif(tzif(rule_only));
	REQUIRE(r);
	CHECK(r->offset_at(utc_of("1900-07-01T00:00:00Z")) == 7200);
	CHECK(r->offset_at(utc_of("1900-01-01T00:00:00Z")) == 3600);
	// 64-bit times in version 2+: before 1901 and after 2038.
	Tzif wide;
	wide.times = {utc_of("1800-01-01T00:00:00Z"), utc_of("2200-01-01T00:00:00Z")};
	wide.types = {1, 0};
	wide.offsets = {0, -3600};
	wide.footer = "";
	auto w = loy::parse_tzif(tzif(wide));
	REQUIRE(w);
	CHECK(w->offset_at(utc_of("2000-01-01T00:00:00Z")) == -3600);
	CHECK(w->offset_at(utc_of("2300-01-01T00:00:00Z")) == 0);
}

TEST_CASE("a truncated zone file is an error at every length")
{
	for (const char *name : {"Europe/Budapest", "Asia/Kathmandu", "Pacific/Apia"}) {
		const std::string bytes = zone_bytes(name);
		REQUIRE(loy::parse_tzif(bytes));
		for (size_t n = 0; n < bytes.size(); n++) {
			auto p = loy::parse_tzif(std::string_view(bytes).substr(0, n));
			if (p) // a test that fails prints the length, not thousands of passes
				FAIL(name << " cut to " << n << " bytes was taken");
		}
	}
	Tzif v1;
	v1.version = 0;
	v1.times = {10};
	v1.types = {0};
	const std::string bytes = tzif(v1);
	for (size_t n = 0; n < bytes.size(); n++)
		if (loy::parse_tzif(std::string_view(bytes).substr(0, n)))
			FAIL("version 1 file cut to " << n << " bytes was taken");
}

TEST_CASE("header counts beyond the file, and broken data, are errors")
{
	const std::string good = zone_bytes("Europe/Budapest");
	const size_t second = second_header(good);
	SECTION("every count of either header, one more or at its maximum")
	{
		for (size_t header : {size_t{0}, second})
			for (size_t field = 0; field < 6; field++)
				for (bool huge : {false, true}) {
					const size_t at = header + 20 + 4 * field;
					std::string bytes = good;
					set32(bytes, at, huge ? 0xffffffffu : get32(good, at) + 1);
					INFO("header at " << header << ", count " << field << (huge ? " max" : " +1"));
					auto p = loy::parse_tzif(bytes);
					CHECK(!p);
				}
	}
	SECTION("empty input, wrong magic, unknown version")
	{
		CHECK(!loy::parse_tzif(""));
		std::string bytes = good;
		bytes[0] = 'X';
		CHECK(!loy::parse_tzif(bytes));
		bytes = good;
		bytes[4] = '5';
		CHECK(!loy::parse_tzif(bytes));
		bytes = good;
		bytes[second + 4] = '3'; // the second header disagrees with the first
		CHECK(!loy::parse_tzif(bytes));
	}
	SECTION("bad footers")
	{
		const size_t footer = good.rfind('\n', good.size() - 2);
		const std::string data = good.substr(0, footer);
		CHECK(loy::parse_tzif(data + "\nCET-1CEST,M3.5.0,M10.5.0/3\n"));
		const char *bad[] = {
			"",                                     // no footer at all
			"\n",                                   // no closing newline
			"\nCET-1CEST,M3.5.0,M10.5.0/3",         // the same
			"\nCET-1CEST\n",                        // daylight time with no dates
			"\nCET-1CEST,M3.5.0,M10.5.0/3\nX",      // bytes after it
			"\nCET-1CEST,M3.5.0,M10.5.0/3\n\n",     // a second footer
			"X\nCET-1\n",                           // no newline before it
		};
		for (const char *f : bad) {
			INFO("footer \"" << f << '"');
			CHECK(!loy::parse_tzif(data + f));
		}
		CHECK(!loy::parse_tzif(data + "\n" + std::string("CET\0-1", 6) + "\n"));
		auto p = loy::parse_tzif(data + "\nCET-1CEST\n");
		REQUIRE(!p);
		CHECK(p.status().message().find("footer") != std::string::npos);
	}
	SECTION("inconsistent data")
	{
		Tzif z;
		z.times = {2000, 1000};
		z.types = {0, 0};
		CHECK(!loy::parse_tzif(tzif(z))); // not ascending
		z.times = {1000, 1000};
		CHECK(!loy::parse_tzif(tzif(z))); // not strictly
		z.times = {1000};
		z.types = {1}; // of one type
		CHECK(!loy::parse_tzif(tzif(z)));
		z.types = {0};
		z.offsets = {INT32_MIN};
		CHECK(!loy::parse_tzif(tzif(z)));
		z.offsets = {26 * 3600};
		CHECK(!loy::parse_tzif(tzif(z)));
		z.offsets = {};
		z.times = {};
		z.types = {};
		CHECK(!loy::parse_tzif(tzif(z))); // no type at all
		Tzif v1;
		v1.version = 0;
		CHECK(loy::parse_tzif(tzif(v1)));
		CHECK(!loy::parse_tzif(tzif(v1) + "x")); // version 1 has no footer
	}
	SECTION("more than a megabyte")
	{
		std::string big = good;
		big.resize(loy::tzif_bytes_max + 1, '\n');
		auto p = loy::parse_tzif(big);
		REQUIRE(!p);
		CHECK(p.status().message().find("at most") != std::string::npos);
	}
}

TEST_CASE("zone names that are not plain IANA names are refused")
{
	const std::string bad[] = {
		"",
		"../../etc/passwd",
		"Europe/../../../etc/passwd",
		"/etc/localtime",
		"/usr/share/zoneinfo/Europe/Budapest",
		"Europe/Buda pest",
		"Europe\\Budapest",
		"Europe/Budapest\n",
		std::string("Europe/Budapest\0x", 17),
		"Europe/Budapest.bak",
		"Europe/Bud\xc3\xa1pest",
		std::string(loy::zone_name_length_max + 1, 'A'),
	};
	for (const auto &name : bad) {
		INFO('"' << name << '"');
		auto z = loy::load_zone(name);
		REQUIRE(!z);
		CHECK(z.status().code() == loy::Code::bad_argument);
		CHECK(!loy::zone_offset(name, 0));
	}
	// Allowed characters, but no zone file there.
	for (const char *name : {"Nowhere/Atlantis", "Europe", "Europe/", "Etc/GMT+99"}) {
		INFO(name);
		CHECK(!loy::load_zone(name));
		CHECK(!loy::zone_offset(name, 0));
	}
	CHECK(loy::load_zone("Etc/GMT+5")); // '+' and digits are in names
	CHECK(loy::load_zone("America/Argentina/Buenos_Aires"));
}

TEST_CASE("load_zone_file takes regular files of at most a megabyte")
{
	test_support::TempDir tmp;
	const std::string big = tmp / "big";
	{
		std::ofstream out(big, std::ios::binary);
		out << zone_bytes("Europe/Budapest") << std::string(loy::tzif_bytes_max, '\n');
	}
	auto z = loy::load_zone_file(big);
	REQUIRE(!z);
	CHECK(z.status().message().find("larger than") != std::string::npos);
	CHECK(!loy::load_zone_file("/dev/zero")); // would never end
	CHECK(!loy::load_zone_file(tmp.path()));  // a directory
	CHECK(!loy::load_zone_file(tmp / "missing"));
	const std::string copy = tmp / "copy";
	{
		std::ofstream out(copy, std::ios::binary);
		out << zone_bytes("Asia/Kathmandu");
	}
	auto k = loy::load_zone_file(copy);
	REQUIRE(k);
	CHECK(k->offset_at(utc_of("2026-06-01T00:00:00Z")) == 20700);
}

TEST_CASE("zone_offset keeps its fixed offsets and names")
{
	const int64_t t = utc_of("2026-07-01T12:00:00Z");
	CHECK(loy::zone_offset("UTC", t) == 0);
	CHECK(loy::zone_offset("Z", t) == 0);
	CHECK(loy::zone_offset("+05:30", t) == 19800);
	CHECK(loy::zone_offset("-03:00", t) == -10800);
	CHECK(!loy::zone_offset("+5:30", t));
	CHECK(!loy::zone_offset("", t));
	CHECK(loy::zone_offset("Europe/Budapest", t) == 7200);
	CHECK(loy::zone_offset("Etc/UTC", t) == 0);
}

TEST_CASE("zone_offset leaves TZ in the environment as it was")
{
	// The old code set TZ and put it back: the value was the same after,
	// but setenv had swapped the environment's string under any other
	// thread. A string of the test's own stays in place only if nothing
	// sets TZ at all.
	const char *was = std::getenv("TZ");
	const std::string saved = was ? was : "";
	static char sentinel[] = "TZ=<SENT>+7";
	REQUIRE(::putenv(sentinel) == 0);
	const int64_t t = utc_of("2026-07-01T12:00:00Z");
	// Zones read here for the first time (not cached by the other tests of
	// this file) and again from the cache.
	for (int round = 0; round < 2; round++) {
		CHECK(loy::zone_offset("Europe/Budapest", t) == 7200);
		CHECK(loy::zone_offset("Europe/Zurich", t) == 7200);
		CHECK(loy::zone_offset("Asia/Seoul", t) == 32400);
		const void *now = std::getenv("TZ");
		CHECK(now == static_cast<const void *>(sentinel + 3));
		CHECK(std::strcmp(std::getenv("TZ"), "<SENT>+7") == 0);
	}
	if (was)
		::setenv("TZ", saved.c_str(), 1);
	else
		::unsetenv("TZ");
}

TEST_CASE("zone_offset from many threads, with more zones than the cache holds")
{
	// 20 zones for a cache of 16: some are read again after being dropped.
	const char *zones[] = {
		"Europe/Budapest", "Europe/Vienna", "Europe/London", "Europe/Lisbon", "Europe/Helsinki",
		"America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
		"America/Sao_Paulo", "Asia/Tokyo", "Asia/Kolkata", "Asia/Kathmandu", "Asia/Shanghai",
		"Australia/Sydney", "Australia/Lord_Howe", "Pacific/Auckland", "Pacific/Apia",
		"Africa/Cairo", "Atlantic/Azores",
	};
	const int64_t t = utc_of("2026-01-15T12:00:00Z");
	std::vector<int32_t> expected;
	for (const char *z : zones) {
		auto zone = loy::load_zone(z);
		REQUIRE(zone);
		expected.push_back(zone->offset_at(t));
	}
	constexpr int threads_n = 4;
	std::vector<int> wrong(threads_n, 0);
	std::vector<std::thread> threads;
	for (int k = 0; k < threads_n; k++)
		threads.emplace_back([&, k] {
			for (int round = 0; round < 20; round++)
				for (size_t i = 0; i < std::size(zones); i++) {
					const size_t j = (i + static_cast<size_t>(k) * 5) % std::size(zones);
					auto off = loy::zone_offset(zones[j], t);
					if (!off || *off != expected[j])
						wrong[static_cast<size_t>(k)]++;
				}
		});
	for (auto &th : threads)
		th.join();
	for (int k = 0; k < threads_n; k++)
		CHECK(wrong[static_cast<size_t>(k)] == 0);
}
