// The bounds on money, quantities and points that keep every later sum in
// 64 bits: a receipt's, a member's over years of receipts, the centre's over
// a chain. Each is far past any real till, so that no honest basket meets
// it, and low enough that what passes at the till cannot overflow anywhere
// downstream (spec/program.md, "Units": reject inputs that would overflow).
// The engine alone computes exactly up to 64 bits; the terminal checks
// these before it records a receipt, and the centre before it applies one.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/basket.hpp"
#include "base/status.hpp"

namespace loy {

// A unit price, a discount, a line's net, a basket's total, in minor units:
// 10^15 is ten trillion euros, or forty billion dollars in whole dong.
inline constexpr int64_t money_max = 1'000'000'000'000'000;
// Units on one line: a billion (grams of coffee by the gram, say).
inline constexpr int64_t qty_max = 1'000'000'000;
// Points one receipt may earn or redeem.
inline constexpr int64_t receipt_points_max = 1'000'000'000'000'000;
// A member's points and qualifying spend, at a terminal and at the centre:
// a hundred receipts at the receipt limit, and still 92 times below
// INT64_MAX, so that sums over members stay exact in a report.
inline constexpr int64_t member_total_max = 100'000'000'000'000'000;
// Times as RFC 3339 writes them, years 0001 to 9999, in seconds from 1970.
inline constexpr int64_t time_min_s = -62'135'596'800;
inline constexpr int64_t time_max_s = 253'402'300'799;

// The segments one member is in (spec/program.md, "Segments"), and a
// segment's name: 1 to 64 bytes of UTF-8 without control characters.
inline constexpr size_t member_segments_max = 64;
inline constexpr size_t segment_name_bytes_max = 64;
// Stamp cards a member of the centre's snapshot may hold stamps on (those
// of the program in force and of earlier versions).
inline constexpr size_t member_stamp_cards_max = 256;

// Each line's qty, unit price, discount and net, and the basket's total,
// within the bounds above; Code::bad_basket naming the line otherwise.
Status check_basket_limits(const Basket &b);
// What a checkout earns and redeems, within receipt_points_max.
Status check_receipt_points(int64_t earned, int64_t redeemed);
// A member's running total (points or spend) after adding `delta`, within
// ±member_total_max; `what` names it: "points", "qualifying spend".
Status check_member_total(int64_t total, int64_t delta, const char *what);
// A segment's name as above; Code::bad_argument saying why otherwise.
Status check_segment_name(std::string_view name);

} // namespace loy
