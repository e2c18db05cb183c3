// Civil-date conversions (Howard Hinnant's days_from_civil algorithm) and
// RFC 3339 parsing.
#include "base/timeutil.hpp"

#include <fmt/format.h>

namespace loy {

Days days_from_civil(int64_t y, unsigned m, unsigned d) noexcept
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const auto yoe = static_cast<unsigned>(y - era * 400);
	const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civil_from_days(Days z, int64_t *y, unsigned *m, unsigned *d) noexcept
{
	z += 719468;
	const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	const auto doe = static_cast<unsigned>(z - era * 146097);
	const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

int weekday_of(Days z) noexcept
{
	// 1970-01-01 was a Thursday (3 when Monday is 0).
	int64_t w = (z + 3) % 7;
	return static_cast<int>(w < 0 ? w + 7 : w);
}

namespace {

bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in_month(int64_t y, unsigned m)
{
	static const unsigned n[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : n[m - 1];
}

// Reads exactly `width` digits at `pos`.
bool digits(std::string_view s, size_t pos, size_t width, unsigned *out)
{
	if (pos + width > s.size())
		return false;
	unsigned v = 0;
	for (size_t i = pos; i < pos + width; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + static_cast<unsigned>(s[i] - '0');
	}
	*out = v;
	return true;
}

bool parse_ymd(std::string_view s, Days *out)
{
	unsigned y, m, d;
	if (s.size() < 10 || !digits(s, 0, 4, &y) || s[4] != '-' || !digits(s, 5, 2, &m) ||
	    s[7] != '-' || !digits(s, 8, 2, &d))
		return false;
	if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
		return false;
	*out = days_from_civil(y, m, d);
	return true;
}

} // namespace

Result<Days> parse_date(std::string_view text)
{
	Days z;
	if (text.size() != 10 || !parse_ymd(text, &z))
		return Status(Code::bad_argument,
			      fmt::format("\"{}\" is not a date (YYYY-MM-DD)", text));
	return z;
}

std::string format_date(Days z)
{
	int64_t y;
	unsigned m, d;
	civil_from_days(z, &y, &m, &d);
	return fmt::format("{:04}-{:02}-{:02}", y, m, d);
}

Days Timestamp::local_date() const noexcept
{
	int64_t local = utc_s + offset_s;
	int64_t days = local / 86400;
	if (local % 86400 < 0)
		days--;
	return days;
}

Result<Timestamp> parse_timestamp(std::string_view s)
{
	auto bad = [&] {
		return Status(Code::bad_argument,
			      fmt::format("\"{}\" is not an RFC 3339 time with an offset "
					  "(2026-11-24T10:15:00+01:00)",
					  s));
	};
	Days day;
	unsigned hh, mm, ss;
	if (!parse_ymd(s, &day) || s.size() < 20 || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    !digits(s, 11, 2, &hh) || s[13] != ':' || !digits(s, 14, 2, &mm) || s[16] != ':' ||
	    !digits(s, 17, 2, &ss))
		return bad();
	// 60 is a leap second; it counts as the last second of the minute.
	if (hh > 23 || mm > 59 || ss > 60)
		return bad();
	if (ss == 60)
		ss = 59;
	size_t pos = 19;
	if (s[pos] == '.') {
		pos++;
		size_t start = pos;
		while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9')
			pos++;
		if (pos == start || pos - start > 9)
			return bad();
	}
	int32_t offset = 0;
	if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
		pos++;
	} else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
		unsigned oh, om;
		if (!digits(s, pos + 1, 2, &oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
		    !digits(s, pos + 4, 2, &om) || oh > 23 || om > 59)
			return bad();
		offset = static_cast<int32_t>(oh * 3600 + om * 60);
		if (s[pos] == '-')
			offset = -offset;
		pos += 6;
	} else {
		return bad();
	}
	if (pos != s.size())
		return bad();
	Timestamp t;
	t.offset_s = offset;
	t.utc_s = day * 86400 + hh * 3600 + mm * 60 + ss - offset;
	return t;
}

std::string format_timestamp(const Timestamp &t)
{
	int64_t local = t.utc_s + t.offset_s;
	Days z = t.local_date();
	int64_t sec = local - z * 86400;
	std::string out = fmt::format("{}T{:02}:{:02}:{:02}", format_date(z), sec / 3600,
				      (sec / 60) % 60, sec % 60);
	if (t.offset_s == 0)
		return out + "Z";
	int32_t off = t.offset_s < 0 ? -t.offset_s : t.offset_s;
	return out + fmt::format("{}{:02}:{:02}", t.offset_s < 0 ? '-' : '+', off / 3600,
				 (off / 60) % 60);
}

} // namespace loy
