// Typed, path-naming reads from nlohmann::json.
#include "base/json_reader.hpp"

#include <string>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>

#include "base/utf8.hpp"

namespace loy {

namespace {

// How much of a bad value an error message quotes.
constexpr size_t excerpt_chars_max = 40;

// Whether a parsed number lies past int64_t; only used to name the error.
bool out_of_int64(Json::number_float_t v)
{
	const Json::number_float_t limit = 9223372036854775808.0; // 2^63
	return v >= limit || v < -limit;
}

const Json &null_json()
{
	static const Json null_value;
	return null_value;
}

} // namespace

std::string json_excerpt(const Json &value)
{
	std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
	if (text.size() > excerpt_chars_max)
		text = text.substr(0, excerpt_chars_max) + "...";
	return text;
}

namespace {

// The first key given twice in one object of `text` (which has one): the
// slow path of json_parse(), taken only for a document it refuses.
std::string duplicate_key(std::string_view text)
{
	std::vector<std::unordered_set<std::string>> keys; // one set per open object
	std::string found;
	struct Found {};
	auto check = [&](int, Json::parse_event_t event, Json &parsed) {
		if (event == Json::parse_event_t::object_start) {
			keys.emplace_back();
		} else if (event == Json::parse_event_t::object_end && !keys.empty()) {
			keys.pop_back();
		} else if (event == Json::parse_event_t::key && !keys.empty() &&
			   !keys.back().insert(parsed.get<std::string>()).second) {
			found = parsed.get<std::string>();
			throw Found{};
		}
		return true;
	};
	try {
		Json parsed = Json::parse(text.begin(), text.end(), check);
		(void)parsed;
	} catch (...) {
	}
	return found;
}

} // namespace

Result<Json> json_parse(std::string_view text, Code code, std::string_view what)
{
	// A raw NUL is never JSON (inside a string it must be escaped), and a
	// reader in C would stop at it: "{...}\0junk" is refused, not cut.
	if (auto nul = text.find('\0'); nul != std::string_view::npos)
		return Status(code, fmt::format("{}: not valid JSON: a NUL byte at offset {}", what, nul));
	// No document of the spec nests deeper than four levels. Far deeper
	// text is refused while it is parsed: printing it in a message, or
	// copying it, would recurse as deep as it nests and overflow the stack.
	// A key given twice in one object is refused too: which of the two a
	// reader takes is not agreed (this one would take the last, silently).
	struct TooDeep {};
	struct Duplicate {};
	// Keys are counted per open object, and an object that ends with fewer
	// members than keys had one twice; only then are its keys looked at
	// (again, by name) to say which: entries by the thousand parse without
	// a set of their keys each.
	std::vector<size_t> keys; // one count per open object
	auto check = [&keys](int depth, Json::parse_event_t event, Json &parsed) {
		// depth counts from 0 at the outermost value.
		if (depth >= json_depth_max)
			throw TooDeep{};
		if (event == Json::parse_event_t::object_start) {
			keys.push_back(0);
		} else if (event == Json::parse_event_t::key && !keys.empty()) {
			keys.back()++;
		} else if (event == Json::parse_event_t::object_end && !keys.empty()) {
			if (parsed.is_object() && parsed.size() != keys.back())
				throw Duplicate{};
			keys.pop_back();
		}
		return true;
	};
	try {
		return Json::parse(text.begin(), text.end(), check);
	} catch (const TooDeep &) {
		return Status(code, fmt::format("{}: nested deeper than {} levels", what, json_depth_max));
	} catch (const Duplicate &) {
		std::string key = utf8_scrub(duplicate_key(text));
		key.resize(utf8_prefix(key, json_error_bytes_max));
		return Status(code, fmt::format("{}: the key \"{}\" is given twice in one object", what, key));
	} catch (const Json::exception &e) {
		// A syntax error (parse_error) or a number beyond a double's range
		// (out_of_range 406: "1e400", a 400-digit integer). e.what() is
		// "[json.exception.parse_error.101] parse error at line 1, ...";
		// the text it quotes may be long.
		return Status(code, fmt::format("{}: not valid JSON: {}", what, json_exception_text(e)));
	}
}

std::string json_exception_text(const Json::exception &e)
{
	std::string msg = e.what();
	auto pos = msg.find("] ");
	if (pos != std::string::npos)
		msg = msg.substr(pos + 2);
	msg = utf8_scrub(msg);
	msg.resize(utf8_prefix(msg, json_error_bytes_max));
	return msg;
}

std::string JsonReader::field_path(const char *key) const
{
	return path_.empty() ? std::string(key) : path_ + "." + key;
}

Status JsonReader::error(const std::string &message) const
{
	return Status(code_, fmt::format("{} {}", path_.empty() ? "document" : path_, message));
}

Status JsonReader::field_error(const char *key, const std::string &message) const
{
	return Status(code_, fmt::format("{} {}", field_path(key), message));
}

Status JsonReader::expect_object() const
{
	if (node_.is_null() && !path_.empty())
		return error("is missing");
	if (!node_.is_object())
		return error(fmt::format("must be an object, got {}", json_excerpt(node_)));
	return Status::ok();
}

bool JsonReader::has(const char *key) const
{
	if (!node_.is_object())
		return false;
	auto it = node_.find(key);
	return it != node_.end() && !it->is_null();
}

JsonReader JsonReader::child(const char *key) const
{
	if (!node_.is_object())
		return JsonReader(null_json(), field_path(key), code_);
	auto it = node_.find(key);
	return JsonReader(it == node_.end() ? null_json() : *it, field_path(key), code_);
}

JsonReader JsonReader::element(size_t i) const
{
	return JsonReader(node_.at(i), fmt::format("{}[{}]", path_, i), code_);
}

Result<int64_t> JsonReader::as_integer(int64_t min, int64_t max) const
{
	if (node_.is_null())
		return error("is missing");
	int64_t v;
	// nlohmann keeps non-negative literals as unsigned: both forms are integers.
	if (node_.is_number_unsigned()) {
		auto u = node_.get<uint64_t>();
		if (u > static_cast<uint64_t>(INT64_MAX))
			return Status(Code::overflow,
				      fmt::format("{} is too large for 64 bits, got {}", path_, u));
		v = static_cast<int64_t>(u);
	} else if (node_.is_number_integer()) {
		v = node_.get<int64_t>();
	} else if (node_.is_number_float() && out_of_int64(node_.get<Json::number_float_t>())) {
		// nlohmann keeps integer literals past 64 bits as binary fractions.
		return Status(Code::overflow,
			      fmt::format("{} is too large for 64 bits, got {}", path_, json_excerpt(node_)));
	} else {
		return error(fmt::format("must be an integer, got {}", json_excerpt(node_)));
	}
	if (v < min) {
		if (min == 0)
			return error(fmt::format("must not be negative, got {}", v));
		return error(fmt::format("must be at least {}, got {}", min, v));
	}
	if (v > max)
		return error(fmt::format("must be at most {}, got {}", max, v));
	return v;
}

Result<std::string> JsonReader::as_string(size_t length_max) const
{
	if (node_.is_null())
		return error("is missing");
	if (!node_.is_string())
		return error(fmt::format("must be a string, got {}", json_excerpt(node_)));
	const auto &s = node_.get_ref<const std::string &>();
	if (s.empty())
		return error("must not be empty");
	if (s.size() > length_max)
		return error(fmt::format("must be at most {} bytes, got {}", length_max, s.size()));
	for (char ch : s)
		if (auto c = static_cast<unsigned char>(ch); c < 0x20 || c == 0x7f)
			return error("must not contain control characters");
	return s;
}

Result<size_t> JsonReader::array_size(size_t size_max) const
{
	if (node_.is_null())
		return error("is missing");
	if (!node_.is_array())
		return error(fmt::format("must be an array, got {}", json_excerpt(node_)));
	if (node_.size() > size_max)
		return error(fmt::format("has {} elements, at most {} allowed", node_.size(), size_max));
	return node_.size();
}

Result<int64_t> JsonReader::integer(const char *key, int64_t min, int64_t max) const
{
	return child(key).as_integer(min, max);
}

Result<std::string> JsonReader::string(const char *key, size_t length_max) const
{
	return child(key).as_string(length_max);
}

Result<std::optional<int64_t>> JsonReader::opt_integer(const char *key, int64_t min, int64_t max) const
{
	if (!has(key))
		return std::optional<int64_t>();
	auto v = integer(key, min, max);
	if (!v)
		return v.status();
	return std::optional<int64_t>(*v);
}

Result<std::optional<std::string>> JsonReader::opt_string(const char *key, size_t length_max) const
{
	if (!has(key))
		return std::optional<std::string>();
	auto v = string(key, length_max);
	if (!v)
		return v.status();
	return std::optional<std::string>(*v);
}

} // namespace loy
