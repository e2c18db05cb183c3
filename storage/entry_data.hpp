// The kind-specific data of journal entries that more than one operation
// writes (a refund at the till, a refund recorded again after a recovery).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/engine.hpp"

namespace loy {

// A refund's data: the receipt after it, the points it moved, the spend it
// took back, and the named refunds of the receipt so far (`ids`, an object;
// left out when empty).
std::string refund_entry_data(const Receipt &after, const Refund &f, int64_t spend_reversed,
			      const nlohmann::ordered_json &ids);

} // namespace loy
