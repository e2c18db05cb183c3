// JSON forms of the engine's results: a checkout for the cashier and the POS,
// and a receipt (what a refund needs) that can be stored and read back.
#pragma once

#include <string>
#include <string_view>

#include "core/engine.hpp"

namespace loy {

// {"tier", "earned", "redeemed", "discount", "member_discount", "eligible_spend",
// "breakdown"}
std::string checkout_json(const Checkout &c);

std::string receipt_to_json(const Receipt &r);
Result<Receipt> receipt_from_json(std::string_view text);

// The receipt an accepted checkout makes.
Receipt make_receipt(const Basket &b, const Checkout &c, const Member &m, const Redemption &r);

// A receipt after a refund: units returned and points moved so far.
void apply_refund(Receipt &r, const Refund &f);

} // namespace loy
