// The product's bounds on money, quantities and points (core/limits.hpp).
#include "core/limits.hpp"

#include <fmt/format.h>

#include "base/utf8.hpp"

namespace loy {

Status check_basket_limits(const Basket &b)
{
	int64_t total = 0;
	for (size_t i = 0; i < b.lines.size(); i++) {
		const Line &l = b.lines[i];
		auto too_much = [&](const char *what, int64_t v, int64_t max) {
			return Status(Code::bad_basket, fmt::format("basket: lines[{}].{} is {}, at most {} allowed", i,
								    what, v, max));
		};
		if (l.qty > qty_max)
			return too_much("qty", l.qty, qty_max);
		if (l.unit_price > money_max)
			return too_much("unit_price", l.unit_price, money_max);
		if (l.discount > money_max)
			return too_much("discount", l.discount, money_max);
		// The parser has checked that net() fits in 64 bits.
		if (l.net() > money_max)
			return too_much("net (qty × unit_price − discount)", l.net(), money_max);
		total += l.net(); // at most 2 × money_max before the check below
		if (total > money_max)
			return Status(Code::bad_basket, fmt::format("basket: the lines' net sum to more than {}, the most "
								    "one receipt may hold",
								    money_max));
	}
	return Status::ok();
}

Status check_receipt_points(int64_t earned, int64_t redeemed)
{
	if (earned > receipt_points_max || redeemed > receipt_points_max)
		return Status(Code::bad_basket,
			      fmt::format("the checkout would {} {} points, at most {} a receipt may move",
					  earned > receipt_points_max ? "earn" : "redeem",
					  earned > receipt_points_max ? earned : redeemed, receipt_points_max));
	return Status::ok();
}

Status check_member_total(int64_t total, int64_t delta, const char *what)
{
	// Both within bounds that leave room: no overflow in the sum.
	if (total < -member_total_max || total > member_total_max || delta < -member_total_max ||
	    delta > member_total_max || total + delta < -member_total_max || total + delta > member_total_max)
		return Status(Code::bad_basket,
			      fmt::format("the member's {} would reach {} + {}, past the {} a member may hold", what,
					  total, delta, member_total_max));
	return Status::ok();
}

Status check_segment_name(std::string_view name)
{
	if (name.empty() || name.size() > segment_name_bytes_max)
		return Status(Code::bad_argument, fmt::format("a segment's name is 1 to {} bytes, got {}",
							      segment_name_bytes_max, name.size()));
	if (!utf8_valid(name))
		return Status(Code::bad_argument, "a segment's name must be UTF-8");
	for (char c : name)
		if (const auto ch = static_cast<unsigned char>(c); ch < 0x20 || ch == 0x7f)
			return Status(Code::bad_argument, "a segment's name holds a control character");
	return Status::ok();
}

} // namespace loy
