// A page of the terminal's own entries as the centre sends them back to a
// ledger behind it (GET /v1/entries): typed and bounded, or a network
// error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sync/client.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	auto page = loy::net::parse_entries_page(std::string_view(reinterpret_cast<const char *>(data), size));
	if (!page) {
		if (page.status().code() != loy::Code::network)
			__builtin_trap();
		return 0;
	}
	if (page->head.seq < 0 || (!page->head.hash.empty() && page->head.hash.size() != 64) ||
	    page->entries.size() > static_cast<size_t>(loy::net::recover_page_entries))
		__builtin_trap();
	for (const auto &e : page->entries)
		if (e.seq < 1 || e.hash.size() > 64)
			__builtin_trap();
	return 0;
}
