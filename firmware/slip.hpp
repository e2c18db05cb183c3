// What the cashier loop prints: the member shown when a card is scanned, and
// the loyalty part of a receipt (earned with its breakdown, redeemed, new
// balance, next expiry), as lines of at most `width` columns for the HAL
// printer or display. Built from the library's JSON results; no rule here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace loy::fw {

// Display columns of UTF-8 text (one per character), and its first `cols`
// columns, cut between characters.
size_t columns(const std::string &text);
std::string first_columns(const std::string &text, size_t cols);

// An amount in `currency` as the library formats it; the bare number when
// the currency is unknown or empty.
std::string format_money(const std::string &currency, int64_t amount);

// A balance result (a scan at the till).
std::vector<std::string> member_lines(const nlohmann::json &balance, int width);
// A checkout result.
std::vector<std::string> checkout_lines(const nlohmann::json &checkout, int width);
// A refund result.
std::vector<std::string> refund_lines(const nlohmann::json &refund, int width);
// A donation result.
std::vector<std::string> donation_lines(const nlohmann::json &donated, int width);

} // namespace loy::fw
