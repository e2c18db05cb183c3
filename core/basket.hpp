// Baskets (spec/program.md, "Basket"): parsed, validated, and checked so that
// every later sum of nets fits in 64 bits.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"
#include "base/timeutil.hpp"

namespace loy {

inline constexpr size_t basket_json_bytes_max = 1 << 20;
inline constexpr size_t basket_lines_max = 1000;
inline constexpr size_t receipt_id_length_max = 64;

struct Line {
	std::string sku;
	std::string category;
	int64_t qty = 0;
	int64_t unit_price = 0;
	int64_t discount = 0;

	// qty × unit_price − discount; the basket parser has checked it fits.
	int64_t net() const noexcept { return qty * unit_price - discount; }
};

struct Basket {
	std::string receipt_id;
	std::string at_text; // `at` as written, for the record
	Timestamp at;
	std::vector<Line> lines;

	// Sum of every line's net (what the till charges before loyalty).
	int64_t total() const noexcept;
};

Result<Basket> parse_basket(std::string_view json_text);

// The canonical JSON of a basket: same keys, same order, no whitespace. Two
// baskets are "the same" for a retried checkout when these are equal.
std::string basket_canonical_json(const Basket &b);

} // namespace loy
