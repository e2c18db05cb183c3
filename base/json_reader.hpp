// Typed reads from a parsed JSON document that name the field on failure:
// `campaigns[2].multiplier_pct must be an integer, got "1.5"`. Shared by the
// program and basket parsers; internal to core.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/status.hpp"

namespace loy {

using Json = nlohmann::json;

// Deepest nesting json_parse() takes.
inline constexpr int json_depth_max = 64;
// A parse error quotes the text near it: at most this much, so that one
// 5,000-digit number makes a one-line message, not a page.
inline constexpr size_t json_error_bytes_max = 160;

// Parses text as JSON; the code on failure is `code` (bad_program, ...).
Result<Json> json_parse(std::string_view text, Code code, std::string_view what);

class JsonReader {
public:
	JsonReader(const Json &node, std::string path, Code code)
		: node_(node), path_(std::move(path)), code_(code)
	{
	}

	const Json &node() const { return node_; }
	const std::string &path() const { return path_; }

	Status expect_object() const;
	bool has(const char *key) const;
	JsonReader child(const char *key) const;
	JsonReader element(size_t i) const;

	// Required fields.
	Result<int64_t> integer(const char *key, int64_t min, int64_t max) const;
	Result<std::string> string(const char *key, size_t length_max) const;
	// Optional fields: nullopt when absent (null counts as absent).
	Result<std::optional<int64_t>> opt_integer(const char *key, int64_t min, int64_t max) const;
	Result<std::optional<std::string>> opt_string(const char *key, size_t length_max) const;

	// This node as a value.
	Result<int64_t> as_integer(int64_t min, int64_t max) const;
	Result<std::string> as_string(size_t length_max) const;
	// An array, possibly empty; size checked against `size_max`.
	Result<size_t> array_size(size_t size_max) const;

	Status error(const std::string &message) const;
	Status field_error(const char *key, const std::string &message) const;

private:
	std::string field_path(const char *key) const;

	const Json &node_;
	std::string path_;
	Code code_;
};

// What a nlohmann exception says, without its "[json.exception...] " tag
// and cut for a message: "key 'seq' not found".
std::string json_exception_text(const Json::exception &e);

// The JSON text of a value, shortened for an error message.
std::string json_excerpt(const Json &value);

} // namespace loy
