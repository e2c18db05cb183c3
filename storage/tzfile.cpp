// TZif parsing (RFC 8536) and POSIX TZ rules, in integers and without the C
// library's time-zone state.
#include "storage/tzfile.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cctype>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "base/timeutil.hpp"

namespace loy {

namespace {

constexpr const char *zoneinfo_dir = "/usr/share/zoneinfo";
constexpr int64_t day_s = 86400;
// The Gregorian calendar repeats every 400 years, weekdays included
// (146097 days is a whole number of weeks): a rule gives the same offset
// at t and at t plus any number of these.
constexpr int64_t cycle_s = 146097 * day_s;
// RFC 8536 section 3.2: a UT offset is within -25:59:59 and +25:59:59 (and
// never -2^31, which cannot be negated).
constexpr int32_t utoff_min_s = -89999;
constexpr int32_t utoff_max_s = 93599;
// POSIX: an offset's hours are 0..24; TZif v3: a change's time -167..167.
constexpr int offset_hours_max = 24;
constexpr int time_hours_max = 167;
constexpr size_t header_bytes = 44;

Status bad(std::string msg) { return Status(Code::bad_argument, std::move(msg)); }

// Text from a file or a caller, fit for a message: a message may end up in
// JSON, which takes only UTF-8, and in a log line.
std::string shown(std::string_view s)
{
	std::string out;
	for (char c : s.substr(0, tz_rule_length_max))
		out += c >= 0x20 && c < 0x7f ? c : '?';
	return out;
}

// ---- POSIX TZ rules ----

// Reads 1 to `digits_max` digits into `out`, at most `max`.
bool take_number(std::string_view &s, size_t digits_max, int max, int *out)
{
	size_t n = 0;
	int v = 0;
	while (n < s.size() && n < digits_max && s[n] >= '0' && s[n] <= '9')
		v = v * 10 + (s[n++] - '0');
	if (n == 0 || v > max)
		return false;
	s.remove_prefix(n);
	*out = v;
	return true;
}

bool take_char(std::string_view &s, char c)
{
	if (s.empty() || s[0] != c)
		return false;
	s.remove_prefix(1);
	return true;
}

// A zone abbreviation: three or more letters, or "<" three or more letters,
// digits, '+' or '-' ">".
bool take_name(std::string_view &s)
{
	size_t n = 0;
	if (take_char(s, '<')) {
		while (n < s.size() && (std::isalnum(static_cast<unsigned char>(s[n])) || s[n] == '+' ||
					s[n] == '-'))
			n++;
		if (n < 3 || n >= s.size() || s[n] != '>')
			return false;
		s.remove_prefix(n + 1);
		return true;
	}
	while (n < s.size() && std::isalpha(static_cast<unsigned char>(s[n])))
		n++;
	if (n < 3)
		return false;
	s.remove_prefix(n);
	return true;
}

// [+-]hh[:mm[:ss]] in seconds, hours at most `hours_max`.
bool take_hms(std::string_view &s, int hours_max, int32_t *out)
{
	int sign = 1;
	if (take_char(s, '-'))
		sign = -1;
	else
		take_char(s, '+');
	int h = 0, m = 0, sec = 0;
	if (!take_number(s, 3, hours_max, &h))
		return false;
	if (take_char(s, ':')) {
		if (!take_number(s, 2, 59, &m))
			return false;
		if (take_char(s, ':') && !take_number(s, 2, 59, &sec))
			return false;
	}
	*out = sign * (h * 3600 + m * 60 + sec);
	return true;
}

// A UTC offset as the TZ string writes it (west positive), returned east.
bool take_offset(std::string_view &s, int32_t *east)
{
	int32_t west = 0;
	if (!take_hms(s, offset_hours_max, &west))
		return false;
	*east = -west;
	return true;
}

// Jn, n or Mm.w.d, then an optional /time.
bool take_change(std::string_view &s, TzRule::Change *c)
{
	using Form = TzRule::Change::Form;
	if (take_char(s, 'J')) {
		c->form = Form::julian;
		if (!take_number(s, 3, 365, &c->day) || c->day < 1)
			return false;
	} else if (take_char(s, 'M')) {
		c->form = Form::month_week_day;
		if (!take_number(s, 2, 12, &c->month) || c->month < 1 || !take_char(s, '.') ||
		    !take_number(s, 1, 5, &c->week) || c->week < 1 || !take_char(s, '.') ||
		    !take_number(s, 1, 6, &c->day))
			return false;
	} else {
		c->form = Form::zero_based;
		if (!take_number(s, 3, 365, &c->day))
			return false;
	}
	if (take_char(s, '/'))
		return take_hms(s, time_hours_max, &c->time_s);
	return true;
}

// The first day (days since 1970-01-01) of the change in year `y`.
Days change_day(const TzRule::Change &c, int64_t y)
{
	using Form = TzRule::Change::Form;
	const Days jan1 = days_from_civil(y, 1, 1);
	const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (c.form == Form::julian)
		return jan1 + c.day - 1 + (leap && c.day >= 60 ? 1 : 0);
	if (c.form == Form::zero_based)
		return jan1 + c.day;
	const auto month = static_cast<unsigned>(c.month);
	const Days first = days_from_civil(y, month, 1);
	const Days next = month == 12 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, month + 1, 1);
	const int first_wday = (weekday_of(first) + 1) % 7; // Sunday 0, as in the rule
	Days d = first + (c.day - first_wday + 7) % 7 + 7 * (c.week - 1);
	while (d >= next) // week 5: the last one in the month
		d -= 7;
	return d;
}

// ---- TZif ----

// Big-endian reads over the file, each one bounded by what is left.
class Cursor {
public:
	explicit Cursor(std::string_view bytes) : s_(bytes) {}
	size_t left() const { return s_.size(); }
	std::string_view take(size_t n)
	{
		assert(n <= s_.size());
		std::string_view out = s_.substr(0, n);
		s_.remove_prefix(n);
		return out;
	}
	uint32_t u32()
	{
		std::string_view b = take(4);
		uint32_t v = 0;
		for (char c : b)
			v = (v << 8) | static_cast<unsigned char>(c);
		return v;
	}
	int64_t i64()
	{
		std::string_view b = take(8);
		uint64_t v = 0;
		for (char c : b)
			v = (v << 8) | static_cast<unsigned char>(c);
		return static_cast<int64_t>(v);
	}
	int64_t time(size_t width) { return width == 8 ? i64() : static_cast<int32_t>(u32()); }
	uint8_t u8() { return static_cast<unsigned char>(take(1)[0]); }

private:
	std::string_view s_;
};

struct Header {
	char version = 0; // 1, 2, 3, 4
	uint32_t isutcnt = 0, isstdcnt = 0, leapcnt = 0, timecnt = 0, typecnt = 0, charcnt = 0;

	// The data block's size: 64-bit sums of 32-bit counts cannot overflow.
	uint64_t block_bytes(size_t width) const
	{
		return uint64_t{timecnt} * (width + 1) + uint64_t{typecnt} * 6 + charcnt +
		       uint64_t{leapcnt} * (width + 4) + isstdcnt + isutcnt;
	}
};

// A header, and its data block (of `width`-byte times) checked to fit in
// what follows it.
Result<Header> read_header(Cursor &c, size_t width)
{
	if (c.left() < header_bytes)
		return bad(fmt::format("{} bytes left, a header needs {}", c.left(), header_bytes));
	if (c.take(4) != "TZif")
		return bad("not a TZif file (no \"TZif\" magic)");
	Header h;
	const char v = static_cast<char>(c.u8());
	if (v != 0 && v != '2' && v != '3' && v != '4')
		return bad(fmt::format("unknown TZif version byte 0x{:02x}", static_cast<unsigned char>(v)));
	h.version = v == 0 ? 1 : static_cast<char>(v - '0');
	c.take(15); // reserved
	h.isutcnt = c.u32();
	h.isstdcnt = c.u32();
	h.leapcnt = c.u32();
	h.timecnt = c.u32();
	h.typecnt = c.u32();
	h.charcnt = c.u32();
	if (h.block_bytes(width) > c.left())
		return bad(fmt::format("the header's counts (timecnt {}, typecnt {}, charcnt {}, leapcnt {}) "
				       "need {} bytes, {} left",
				       h.timecnt, h.typecnt, h.charcnt, h.leapcnt, h.block_bytes(width),
				       c.left()));
	return h;
}

// RFC 8536 section 3.1's conditions on the block that is used.
Status check_counts(const Header &h)
{
	if (h.typecnt == 0)
		return bad("typecnt is 0: a zone needs a local time type");
	if (h.charcnt == 0)
		return bad("charcnt is 0");
	if (h.isutcnt != 0 && h.isutcnt != h.typecnt)
		return bad(fmt::format("isutcnt {} is neither 0 nor typecnt {}", h.isutcnt, h.typecnt));
	if (h.isstdcnt != 0 && h.isstdcnt != h.typecnt)
		return bad(fmt::format("isstdcnt {} is neither 0 nor typecnt {}", h.isstdcnt, h.typecnt));
	return Status::ok();
}

// The footer: a newline, the TZ string, a newline, and the end of the file.
Result<std::optional<TzRule>> read_footer(Cursor &c)
{
	std::string_view rest = c.take(c.left());
	if (rest.empty() || rest[0] != '\n')
		return bad("the footer is missing (a newline after the data)");
	const size_t nl = rest.find('\n', 1);
	if (nl == std::string_view::npos)
		return bad("the footer's TZ string has no closing newline");
	if (nl + 1 != rest.size())
		return bad(fmt::format("{} bytes after the footer", rest.size() - nl - 1));
	std::string_view text = rest.substr(1, nl - 1);
	if (text.empty()) // no rule: the last type stays
		return std::optional<TzRule>();
	auto rule = parse_tz_rule(text);
	if (!rule)
		return rule.status().prefixed("footer: ");
	return std::optional<TzRule>(*rule);
}

// The whole of the open regular file `fd`, of at most tzif_bytes_max bytes.
Result<std::string> read_bounded(int fd, const std::string &path)
{
	struct stat st;
	if (::fstat(fd, &st) != 0)
		return bad(fmt::format("{}: {}", path, std::strerror(errno)));
	// A device or a FIFO may never end.
	if (!S_ISREG(st.st_mode))
		return bad(fmt::format("{} is not a zone file", path));
	if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) > tzif_bytes_max)
		return bad(fmt::format("{} is larger than {} bytes", path, tzif_bytes_max));
	// One byte more than its size, to see a file that grows meanwhile.
	const auto size = static_cast<size_t>(st.st_size);
	std::string bytes(size + 1, '\0');
	size_t got = 0;
	while (got < bytes.size()) {
		const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return bad(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
		if (n == 0)
			break;
		got += static_cast<size_t>(n);
	}
	if (got > size)
		return bad(fmt::format("{} changed while it was read", path));
	bytes.resize(got);
	return bytes;
}

Status check_name(const std::string &name)
{
	if (name.empty() || name.size() > zone_name_length_max)
		return bad(fmt::format("zone name of {} characters: use 1 to {}", name.size(),
				       zone_name_length_max));
	if (name[0] == '/')
		return bad(fmt::format("zone \"{}\": an absolute path is not a zone name", shown(name)));
	if (name.find("..") != std::string::npos)
		return bad(fmt::format("zone \"{}\": \"..\" is not allowed", shown(name)));
	for (char c : name)
		if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '+' || c == '-' ||
		      c == '/'))
			return bad(fmt::format("zone \"{}\": use letters, digits and \"_+-/\"", shown(name)));
	return Status::ok();
}

} // namespace

int32_t TzRule::offset_at(int64_t utc) const
{
	if (!has_dst)
		return std_offset_s;
	// In the first cycle after 1970, so that the year and the changes'
	// instants stay small whatever `utc` is.
	const int64_t t = (utc % cycle_s + cycle_s) % cycle_s;
	int64_t y;
	unsigned m, d;
	civil_from_days(t / day_s, &y, &m, &d);
	// A change may fall up to a week into the next or the previous year
	// (times of -167..167 h): the last change before `t` is among those of
	// the two years before and the next. At equal instants the later one in
	// year order wins (an end at 25:00 on day 365 meets the next start at
	// 0:00 on day 0: always daylight time).
	bool dst = false;
	int64_t last = INT64_MIN;
	for (int64_t yy = y - 2; yy <= y + 1; yy++) {
		const int64_t start = change_day(dst_start, yy) * day_s + dst_start.time_s - std_offset_s;
		const int64_t end = change_day(dst_end, yy) * day_s + dst_end.time_s - dst_offset_s;
		if (start <= t && start >= last) {
			last = start;
			dst = true;
		}
		if (end <= t && end >= last) {
			last = end;
			dst = false;
		}
	}
	return dst ? dst_offset_s : std_offset_s;
}

Result<TzRule> parse_tz_rule(std::string_view text)
{
	const std::string where = fmt::format("TZ string \"{}\": ", shown(text));
	if (text.size() > tz_rule_length_max)
		return bad(fmt::format("{}longer than {} characters", where, tz_rule_length_max));
	std::string_view s = text;
	TzRule r;
	if (!take_name(s) || !take_offset(s, &r.std_offset_s))
		return bad(where + "a standard-time name (3 or more letters, or <...>) and offset are required");
	if (s.empty())
		return r;
	if (!take_name(s))
		return bad(where + "the daylight-time name is not 3 or more letters, or <...>");
	r.has_dst = true;
	r.dst_offset_s = r.std_offset_s + 3600;
	if (!s.empty() && s[0] != ',' && !take_offset(s, &r.dst_offset_s))
		return bad(where + "the daylight-time offset is not [+-]hh[:mm[:ss]] with hh up to 24");
	if (!take_char(s, ',') || !take_change(s, &r.dst_start) || !take_char(s, ',') ||
	    !take_change(s, &r.dst_end))
		return bad(where + "daylight time needs ,start[/time],end[/time] (Jn, n or Mm.w.d)");
	if (!s.empty())
		return bad(fmt::format("{}\"{}\" after the rule", where, shown(s)));
	return r;
}

int32_t Zone::offset_at(int64_t utc) const
{
	assert(!offsets_.empty() && types_.size() == times_.size());
	if (times_.empty())
		return rule_ ? rule_->offset_at(utc) : offsets_[0];
	if (utc < times_.front())
		return offsets_[0];
	if (rule_ && utc >= times_.back())
		return rule_->offset_at(utc);
	const auto it = std::upper_bound(times_.begin(), times_.end(), utc);
	const uint8_t type = types_[static_cast<size_t>(it - times_.begin()) - 1];
	assert(type < offsets_.size());
	return offsets_[type];
}

Result<Zone> parse_tzif(std::string_view bytes)
{
	if (bytes.size() > tzif_bytes_max)
		return bad(fmt::format("{} bytes: a zone file is at most {}", bytes.size(), tzif_bytes_max));
	Cursor c(bytes);
	auto first = read_header(c, 4);
	if (!first)
		return first.status();
	Header h = *first;
	size_t width = 4;
	if (h.version >= 2) {
		// The 32-bit block is for version 1 readers.
		c.take(static_cast<size_t>(h.block_bytes(4)));
		auto second = read_header(c, 8);
		if (!second)
			return second.status().prefixed("second header: ");
		if (second->version != h.version)
			return bad(fmt::format("the second header says version {}, the first {}",
					       int{second->version}, int{h.version}));
		h = *second;
		width = 8;
	}
	LOY_TRY(check_counts(h));

	Zone z;
	z.times_.resize(h.timecnt);
	z.types_.resize(h.timecnt);
	for (uint32_t i = 0; i < h.timecnt; i++) {
		z.times_[i] = c.time(width);
		if (i > 0 && z.times_[i] <= z.times_[i - 1])
			return bad(fmt::format("transition {} is not after transition {}", i, i - 1));
	}
	for (uint32_t i = 0; i < h.timecnt; i++) {
		z.types_[i] = c.u8();
		if (z.types_[i] >= h.typecnt)
			return bad(fmt::format("transition {} names type {} of {}", i, z.types_[i], h.typecnt));
	}
	for (uint32_t i = 0; i < h.typecnt; i++) {
		const auto utoff = static_cast<int32_t>(c.u32());
		const uint8_t isdst = c.u8();
		const uint8_t desigidx = c.u8();
		if (utoff < utoff_min_s || utoff > utoff_max_s)
			return bad(fmt::format("type {}: UT offset {} s is beyond +-25:59:59", i, utoff));
		if (isdst > 1)
			return bad(fmt::format("type {}: isdst is {}, not 0 or 1", i, isdst));
		if (desigidx >= h.charcnt)
			return bad(fmt::format("type {}: designation index {} beyond charcnt {}", i, desigidx,
					       h.charcnt));
		// Types no transition names are unreachable except type 0, which
		// holds before the first transition.
		if (i < 256)
			z.offsets_.push_back(utoff);
	}
	// Designations, leap seconds and the std/wall and UT/local indicators
	// do not change the UTC offset of an instant.
	c.take(static_cast<size_t>(h.charcnt + uint64_t{h.leapcnt} * (width + 4) + h.isstdcnt + h.isutcnt));
	if (h.version == 1) {
		if (c.left() != 0)
			return bad(fmt::format("{} bytes after the version 1 data", c.left()));
		return z;
	}
	auto rule = read_footer(c);
	if (!rule)
		return rule.status();
	z.rule_ = *rule;
	return z;
}

Result<Zone> load_zone_file(const std::string &path)
{
	const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bad(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
	auto bytes = read_bounded(fd, path);
	::close(fd);
	if (!bytes)
		return bytes.status();
	auto zone = parse_tzif(*bytes);
	if (!zone)
		return zone.status().prefixed(path + ": ");
	return zone;
}

Result<Zone> load_zone(const std::string &name)
{
	LOY_TRY(check_name(name));
	return load_zone_file(std::string(zoneinfo_dir) + "/" + name);
}

} // namespace loy
