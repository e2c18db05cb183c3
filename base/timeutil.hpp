// Calendar dates and RFC 3339 timestamps, in integers. A basket's local date
// and weekday are those of its `at` in its own UTC offset, so no time-zone
// database is needed to apply a campaign's date and weekday windows.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.hpp"

namespace loy {

// Days since 1970-01-01 in the proleptic Gregorian calendar.
using Days = int64_t;

Days days_from_civil(int64_t y, unsigned m, unsigned d) noexcept;
void civil_from_days(Days z, int64_t *y, unsigned *m, unsigned *d) noexcept;

// 0 = Monday … 6 = Sunday.
int weekday_of(Days z) noexcept;

// "2026-11-24"
Result<Days> parse_date(std::string_view text);
std::string format_date(Days z);

struct Timestamp {
	int64_t utc_s = 0;        // seconds since the epoch
	int32_t offset_s = 0;     // the UTC offset the timestamp was written in
	Days local_date() const noexcept;
	int local_weekday() const noexcept { return weekday_of(local_date()); }
};

// "2026-11-24T10:15:00+01:00", "2026-11-24T09:15:00Z", fractions of a second
// allowed (and dropped). The offset is required: a receipt's day must not
// depend on the terminal's zone settings.
Result<Timestamp> parse_timestamp(std::string_view text);

// RFC 3339 in the timestamp's own offset.
std::string format_timestamp(const Timestamp &t);

} // namespace loy
