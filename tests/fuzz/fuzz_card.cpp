// Card scans as a reader delivers them (digits, track 2, QR), under each
// check a program may name: a number or a refusal, never a crash, and a
// number only of digits within the rule's lengths.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/card.hpp"
#include "core/program.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const std::string_view scan(reinterpret_cast<const char *>(data), size);
	for (loy::CardCheck check : {loy::CardCheck::none, loy::CardCheck::luhn, loy::CardCheck::ean13}) {
		loy::CardRule rule;
		rule.check = check;
		rule.min_length = 8;
		rule.max_length = 19;
		auto digits = loy::parse_card_scan(scan, rule);
		if (!digits)
			continue;
		if (digits->size() < 8 || digits->size() > 19 ||
		    digits->find_first_not_of("0123456789") != std::string::npos)
			__builtin_trap();
	}
	return 0;
}
