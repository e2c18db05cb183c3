// Exact integer arithmetic for money and points: checked int64 operations and
// floor(a × b × c / d) through a 128-bit intermediate that is portable to
// 32-bit ARM (no __int128 there). Nothing here uses floating point.
#pragma once

#include <cstdint>
#include <optional>

namespace loy {

// nullopt when the exact result does not fit in int64_t.
std::optional<int64_t> add_checked(int64_t a, int64_t b) noexcept;
std::optional<int64_t> sub_checked(int64_t a, int64_t b) noexcept;
std::optional<int64_t> mul_checked(int64_t a, int64_t b) noexcept;

struct QuotRem {
	int64_t quot;
	int64_t rem;
};

// floor(a × b × c / d) and the remainder, for a, b, c ≥ 0 and d > 0.
// nullopt when a × b × c does not fit in 128 bits or the quotient does not
// fit in int64_t.
std::optional<QuotRem> mul_div(int64_t a, int64_t b, int64_t c, int64_t d) noexcept;

inline std::optional<int64_t> mul_div_floor(int64_t a, int64_t b, int64_t c, int64_t d) noexcept
{
	auto r = mul_div(a, b, c, d);
	if (!r)
		return std::nullopt;
	return r->quot;
}

} // namespace loy
