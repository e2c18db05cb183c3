// The terminal's configuration file (firmware/terminal.conf): parsed or
// refused naming its line, never a crash; what parses prints back and
// parses again to the same configuration.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "firmware/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	auto c = loy::fw::parse_config(std::string_view(reinterpret_cast<const char *>(data), size), "fuzz.conf");
	if (!c)
		return 0;
	auto again = loy::fw::parse_config(loy::fw::format_config(*c), "printed.conf");
	if (!again || !(*again == *c))
		__builtin_trap();
	return 0;
}
