// Card scans: what a reader delivers (plain digits, magnetic-stripe track 2,
// a LOYALTY: QR payload) turned into a checked card number, and masking for
// display. The ledger never keeps the number itself (see storage/).
#pragma once

#include <string>
#include <string_view>

#include "core/program.hpp"
#include "base/status.hpp"

namespace loy {

// Most characters a scan may hold: a track 2 is at most 40.
inline constexpr size_t scan_chars_max = 128;

// The card number in a scan, checked against the program's card rule.
Result<std::string> parse_card_scan(std::string_view scan, const CardRule &rule);

// The digits of a scan without any check (for callers with no program yet).
Result<std::string> card_digits(std::string_view scan);

bool luhn_valid(std::string_view digits) noexcept;
bool gs1_valid(std::string_view digits) noexcept;

// "****7897": the last four digits only (fewer when the number is shorter
// than eight, so that at least half of it stays hidden).
std::string mask_card(std::string_view digits);

} // namespace loy
