// Program documents (spec/program.md), as `program load` and `program
// publish` read them: refused with a message or parsed, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/program.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	auto p = loy::parse_program(std::string_view(reinterpret_cast<const char *>(data), size));
	if (!p && p.status().message().empty())
		__builtin_trap(); // every refusal names its problem
	return 0;
}
