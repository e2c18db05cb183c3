// Shared helpers of the core tests: programs and baskets built from JSON with
// merge patches and parsed, refusals checked, and breakdowns written as text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/basket.hpp"
#include "core/engine.hpp"
#include "core/program.hpp"
#include "base/status.hpp"

namespace core_test {

using Json = nlohmann::json;

// `doc` with `patch` merged over it, as text (RFC 7386: objects merge key by
// key, arrays and other values are replaced whole, null removes a key).
std::string merge_patch(const std::string &doc, const std::string &patch);

// The parsed document; REQUIREs success (the message shown).
loy::Program parse_program_ok(const std::string &text);
loy::Basket parse_basket_ok(const std::string &text);

// The program the engine tests start from: one tier, 1 point per 100, and
// redemption without limits.
extern const char *const base_program;

// base_program with what a test file's programs share (`defaults`) and then a
// test's own changes (`patch`) merged over it, parsed; REQUIREs success.
loy::Program program_from(const std::string &defaults, const std::string &patch);

// A change to a JSON document, for tables of one change per row.
using Mutation = void (*)(Json &);

// `doc` with one change, as text. A value "@" is replaced by `literal` in the
// text, for numbers nlohmann::json would not write as wanted.
std::string mutated(const char *doc, Mutation change, const char *literal = nullptr);

// Checks a refusal: REQUIREs that `s` is not ok, then checks its code, how its
// message starts and, unless `holds` is null, what the message holds.
void check_refused(const loy::Status &s, loy::Code code, const std::string &starts,
		   const char *holds);

// One basket line; a null category leaves the field out.
struct L {
	const char *sku;
	const char *category;
	int64_t qty;
	int64_t unit_price;
	int64_t discount;
};

// A basket line's JSON, without a category.
Json line_json(const char *sku, int64_t qty, int64_t unit_price, int64_t discount);

// 2026-11-24 is a Tuesday.
inline const char *const tuesday = "2026-11-24T10:15:00+01:00";

// Receipt R-1 of `lines` at `at`, parsed; REQUIREs success.
loy::Basket make_basket(const std::vector<L> &lines, const char *at = tuesday);

// A breakdown as text: "base=10, tier:Silver=2, big=50".
std::string describe(const std::vector<loy::Part> &parts);

// A checkout that must be accepted; REQUIREs it (the message shown).
loy::Checkout checkout_ok(const loy::Program &p, const loy::Basket &b, const loy::Member &m,
			  const loy::Redemption &r);

// The same, with the invariants every accepted checkout keeps: `base` first
// in the breakdown, `earned` the sum of its parts.
loy::Checkout accepted(const loy::Program &p, const loy::Basket &b, const loy::Member &m,
		       const loy::Redemption &r);

} // namespace core_test
