// The centre's members snapshot as the terminal reads it: a page within
// the bounds a member may hold, or a network error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/limits.hpp"
#include "sync/client.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	auto page = loy::net::parse_members_page(std::string_view(reinterpret_cast<const char *>(data), size));
	if (!page) {
		if (page.status().code() != loy::Code::network)
			__builtin_trap();
		return 0;
	}
	for (const auto &m : page->members)
		if (m.balance > loy::member_total_max || m.balance < -loy::member_total_max)
			__builtin_trap();
	return 0;
}
