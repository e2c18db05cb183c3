// Checked int64 arithmetic and a small unsigned 128-bit mul/div.
#include "core/arith.hpp"

#include <cassert>

namespace loy {

std::optional<int64_t> add_checked(int64_t a, int64_t b) noexcept
{
	int64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return std::nullopt;
	return r;
}

std::optional<int64_t> sub_checked(int64_t a, int64_t b) noexcept
{
	int64_t r;
	if (__builtin_sub_overflow(a, b, &r))
		return std::nullopt;
	return r;
}

std::optional<int64_t> mul_checked(int64_t a, int64_t b) noexcept
{
	int64_t r;
	if (__builtin_mul_overflow(a, b, &r))
		return std::nullopt;
	return r;
}

namespace {

struct U128 {
	uint64_t hi;
	uint64_t lo;
};

// Full 64 × 64 → 128 product by 32-bit halves.
U128 mul64(uint64_t a, uint64_t b) noexcept
{
	const uint64_t mask = 0xffffffffu;
	uint64_t a0 = a & mask, a1 = a >> 32;
	uint64_t b0 = b & mask, b1 = b >> 32;
	uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
	uint64_t mid = (p00 >> 32) + (p01 & mask) + (p10 & mask);
	U128 r;
	r.lo = (p00 & mask) | (mid << 32);
	r.hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
	return r;
}

// x × m, or nullopt past 128 bits.
std::optional<U128> mul128(U128 x, uint64_t m) noexcept
{
	U128 lo = mul64(x.lo, m);
	U128 hi = mul64(x.hi, m);
	if (hi.hi != 0)
		return std::nullopt;
	uint64_t top;
	if (__builtin_add_overflow(lo.hi, hi.lo, &top))
		return std::nullopt;
	return U128{top, lo.lo};
}

// Restoring long division, one bit at a time: 128 steps, only ever run on a
// handful of numbers per basket, and simple enough to be plainly right.
void divmod128(U128 n, uint64_t d, U128 *q, uint64_t *r) noexcept
{
	assert(d != 0);
	U128 quot{0, 0};
	uint64_t rem = 0;
	for (int i = 127; i >= 0; i--) {
		uint64_t bit = i >= 64 ? (n.hi >> (i - 64)) & 1u : (n.lo >> i) & 1u;
		bool carry = (rem >> 63) != 0;
		rem = (rem << 1) | bit;
		if (carry || rem >= d) {
			rem -= d;
			if (i >= 64)
				quot.hi |= uint64_t{1} << (i - 64);
			else
				quot.lo |= uint64_t{1} << i;
		}
	}
	*q = quot;
	*r = rem;
}

} // namespace

std::optional<QuotRem> mul_div(int64_t a, int64_t b, int64_t c, int64_t d) noexcept
{
	assert(a >= 0 && b >= 0 && c >= 0 && d > 0);
	if (a < 0 || b < 0 || c < 0 || d <= 0)
		return std::nullopt;
	U128 p = mul64(static_cast<uint64_t>(a), static_cast<uint64_t>(b));
	auto p3 = mul128(p, static_cast<uint64_t>(c));
	if (!p3)
		return std::nullopt;
	U128 q;
	uint64_t r;
	divmod128(*p3, static_cast<uint64_t>(d), &q, &r);
	if (q.hi != 0 || q.lo > static_cast<uint64_t>(INT64_MAX))
		return std::nullopt;
	return QuotRem{static_cast<int64_t>(q.lo), static_cast<int64_t>(r)};
}

} // namespace loy
