// The centre's configuration (central.json: the fraud rules' thresholds):
// rules or a refusal that names the problem, never a crash; whatever it
// takes is within the bounds the store's window queries rely on.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "central/fraud.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const std::string_view text(reinterpret_cast<const char *>(data), size);
	auto r = loy::central::parse_fraud_rules(text);
	if (!r) {
		if (r.status().message().empty())
			__builtin_trap();
		return 0;
	}
	if (r->till_receipts < 1 || r->till_minutes < 1 || r->till_minutes > 7 * 24 * 60 || r->spread_stores < 2 ||
	    r->loop_receipts < 1 || r->loop_days < 1 || r->loop_days > 366 || r->burst_cards < 1 ||
	    r->burst_hours < 1 || r->burst_hours > 24 * 366 || r->block.size() > 5)
		__builtin_trap();
	return 0;
}
