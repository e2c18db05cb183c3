// Zone files (TZif) and POSIX TZ strings as a hostile file system or
// package might hand them over: a zone or a refusal, never a crash or an
// over-read, and every offset of a zone taken within +-25:59:59.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "storage/tzfile.hpp"

namespace {

constexpr int32_t offset_max_s = 93599; // RFC 8536: |UT offset| <= 25:59:59

void check(int32_t offset_s)
{
	if (offset_s < -offset_max_s || offset_s > offset_max_s)
		__builtin_trap();
}

// The ends of int64_t and of 32-bit time, 1900, today, 2100; and two of
// the input's own bytes, so that the fuzzer can steer an instant onto a
// transition it made.
template <class Z> void probe(const Z &z, std::string_view bytes)
{
	for (int64_t t : {INT64_MIN, INT64_MIN + 1, int64_t{INT32_MIN}, int64_t{-2208988800}, int64_t{0},
			  int64_t{1790000000}, int64_t{INT32_MAX}, int64_t{4102444800}, INT64_MAX - 1, INT64_MAX})
		check(z.offset_at(t));
	if (bytes.size() >= 8) {
		uint64_t v = 0;
		for (char c : bytes.substr(bytes.size() - 8))
			v = (v << 8) | static_cast<unsigned char>(c);
		check(z.offset_at(static_cast<int64_t>(v)));
		check(z.offset_at(static_cast<int64_t>(v >> 20) - (int64_t{1} << 43)));
	}
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const std::string_view bytes(reinterpret_cast<const char *>(data), size);
	if (auto zone = loy::parse_tzif(bytes))
		probe(*zone, bytes);
	// The footer's grammar on its own: most of a mutated file never gets
	// past the header to reach it.
	if (auto rule = loy::parse_tz_rule(bytes))
		probe(*rule, bytes);
	return 0;
}
