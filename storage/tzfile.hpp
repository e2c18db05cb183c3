// Time zones read from the compiled zone files (TZif, RFC 8536) under
// /usr/share/zoneinfo, without the C library's TZ machinery: tzset() and
// localtime() take the zone from the environment, and a library must not
// change that (setenv races every thread of the POS application that reads
// it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"

namespace loy {

// Zone files are a few kilobytes (the largest in tzdata is under 4 KiB); a
// megabyte leaves room and bounds what a hostile file costs to read.
constexpr size_t tzif_bytes_max = 1 << 20;
// IANA names are under 40 characters ("America/Argentina/ComodRivadavia").
constexpr size_t zone_name_length_max = 128;
// The footer's TZ strings are under 50 characters.
constexpr size_t tz_rule_length_max = 256;

// A POSIX TZ rule, as in a TZif footer ("CET-1CEST,M3.5.0,M10.5.0/3"): local
// time for the instants after the file's last transition. Offsets are
// seconds east of UTC (the TZ string writes them west, "CET-1" is +01:00).
struct TzRule {
	// A day of the year and a time of that day, in the local time in force
	// before the change.
	struct Change {
		enum class Form { julian, zero_based, month_week_day };
		Form form = Form::month_week_day;
		int day = 0;   // Jn: 1..365, 29 February never counted; n: 0..365; Mm.w.d: d, 0..6 (Sunday 0)
		int week = 0;  // Mm.w.d: 1..5, 5 the last such weekday of the month
		int month = 0; // Mm.w.d: 1..12
		int32_t time_s = 2 * 3600; // -167 h..167 h (TZif v3 allows beyond 0..24 h)
	};
	int32_t std_offset_s = 0;
	bool has_dst = false;
	int32_t dst_offset_s = 0;
	Change dst_start, dst_end;

	int32_t offset_at(int64_t utc) const;
};

// The rule of a TZ string; an error naming what is wrong. A daylight-time
// name without its start and end is refused (POSIX leaves the dates to the
// implementation).
Result<TzRule> parse_tz_rule(std::string_view text);

// One zone: its transitions and, after the last one, its footer rule.
class Zone {
public:
	// The UTC offset in seconds at `utc`, any int64_t: before the first
	// transition the first local time type's (RFC 8536 section 3.2).
	int32_t offset_at(int64_t utc) const;

private:
	friend Result<Zone> parse_tzif(std::string_view bytes);

	std::vector<int64_t> times_;   // transitions, strictly ascending
	std::vector<uint8_t> types_;   // the local time type from each transition on
	std::vector<int32_t> offsets_; // UTC offset of each type; at least one
	std::optional<TzRule> rule_;   // none: the last type stays in force
};

// A TZif file of version 1, 2, 3 or 4 (4 differs only in leap-second rules,
// and leap seconds are skipped: the offsets are those of POSIX time). From
// version 2 on, the 64-bit data block and the footer's rule are used. Every
// count is checked against the bytes before anything is read; a truncated
// or inconsistent file is an error.
Result<Zone> parse_tzif(std::string_view bytes);

// The zone file at `path`, at most tzif_bytes_max bytes.
Result<Zone> load_zone_file(const std::string &path);

// The zone of IANA name `name` ("Europe/Budapest") from /usr/share/zoneinfo.
// Only letters, digits and "_+-/" are taken, no "..", no absolute path.
Result<Zone> load_zone(const std::string &name);

} // namespace loy
