// Baskets through the engine as a till runs them: parsed, bounded, checked
// out for a member (known or not, any tier, with or without a redemption),
// then refunded whole. A full refund must give back exactly what the
// checkout moved (spec: "a full refund returns all of them").
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/basket.hpp"
#include "core/engine.hpp"
#include "core/limits.hpp"
#include "core/program.hpp"
#include "core/receipt_json.hpp"

namespace {

const char *const program_json = R"({
  "program": "fuzz", "version": 1, "currency": "EUR",
  "card": { "check": "none", "min_length": 1, "max_length": 19 },
  "earn": { "points": 3, "per": 100 },
  "exclude": { "categories": ["tobacco"], "skus": ["BAG-01"] },
  "tiers": [ { "name": "Member", "spend": 0, "multiplier_pct": 100 },
             { "name": "Gold", "spend": 50000, "multiplier_pct": 150 } ],
  "campaigns": [
    { "id": "tue", "kind": "multiplier", "multiplier_pct": 200, "days": ["tue"] },
    { "id": "pastry", "kind": "category_multiplier", "category": "pastry", "multiplier_pct": 300, "cap": 500 },
    { "id": "big", "kind": "spend_bonus", "min_spend": 3000, "points": 50 },
    { "id": "cof", "kind": "item_bonus", "sku": "COF-01", "points": 5, "tiers": ["Gold"] } ],
  "redeem": { "point_value": 1, "min_points": 10, "max_pct": 50, "offline_daily_cap": 100000 },
  "rewards": [ { "id": "free-coffee", "cost": 300, "sku": "COF-01" } ],
  "expiry_days": 365, "pending_days": 0 })";

const loy::Program &program()
{
	static const loy::Program p = *loy::parse_program(program_json);
	return p;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	// The first byte picks the member and the redemption; the rest is the basket.
	const uint8_t how = data[0];
	auto b = loy::parse_basket(std::string_view(reinterpret_cast<const char *>(data + 1), size - 1));
	if (!b || !loy::check_basket_limits(*b).is_ok())
		return 0;
	loy::Member m;
	m.known = how & 1;
	m.blocked = (how & 2) != 0;
	m.balance = (how & 4) ? 100000 : 50;
	m.qualifying_spend = (how & 8) ? 60000 : 0;
	loy::Redemption r = (how & 16)   ? loy::Redemption::of_points(10 + (how >> 5) * 40)
			    : (how & 32) ? loy::Redemption::of_reward("free-coffee")
					 : loy::Redemption::none();
	auto c = loy::checkout(program(), *b, m, r);
	if (!c)
		return 0;
	if (c->earned < 0 || c->redeemed < 0)
		__builtin_trap();
	loy::Receipt receipt = loy::make_receipt(*b, *c, m, r);
	auto back = loy::refund(program(), receipt, {});
	if (back && (back->points_reversed != c->earned || back->points_returned != c->redeemed))
		__builtin_trap(); // a full refund moves back exactly what the checkout moved
	return 0;
}
