// Shared helpers of the core tests (see fixture.hpp).
#include "fixture.hpp"

#include <catch2/catch.hpp>

namespace core_test {

std::string merge_patch(const std::string &doc, const std::string &patch)
{
	Json out = Json::parse(doc);
	out.merge_patch(Json::parse(patch));
	return out.dump();
}

loy::Program parse_program_ok(const std::string &text)
{
	auto p = loy::parse_program(text);
	INFO(p.status().message());
	REQUIRE(p);
	return *p;
}

loy::Basket parse_basket_ok(const std::string &text)
{
	auto b = loy::parse_basket(text);
	INFO(b.status().message());
	REQUIRE(b);
	return *b;
}

const char *const base_program = R"({
	"program": "test", "version": 1, "currency": "EUR",
	"card": { "check": "none", "min_length": 1, "max_length": 19 },
	"earn": { "points": 1, "per": 100 },
	"tiers": [ { "name": "Member", "spend": 0, "multiplier_pct": 100 } ],
	"redeem": { "point_value": 1, "min_points": 0, "max_pct": 100,
		    "offline_daily_cap": 1000000 }
})";

loy::Program program_from(const std::string &defaults, const std::string &patch)
{
	return parse_program_ok(merge_patch(merge_patch(base_program, defaults), patch));
}

std::string mutated(const char *doc, Mutation change, const char *literal)
{
	Json j = Json::parse(doc);
	change(j);
	std::string text = j.dump();
	if (literal) {
		auto at = text.find("\"@\"");
		REQUIRE(at != std::string::npos);
		text.replace(at, 3, literal);
	}
	return text;
}

void check_refused(const loy::Status &s, loy::Code code, const std::string &starts,
		   const char *holds)
{
	REQUIRE_FALSE(s.is_ok());
	CHECK(s.code() == code);
	CHECK_THAT(s.message(), Catch::StartsWith(starts));
	if (holds)
		CHECK_THAT(s.message(), Catch::Contains(holds));
}

Json line_json(const char *sku, int64_t qty, int64_t unit_price, int64_t discount)
{
	return {{"sku", sku}, {"qty", qty}, {"unit_price", unit_price}, {"discount", discount}};
}

loy::Basket make_basket(const std::vector<L> &lines, const char *at)
{
	Json doc = {{"receipt_id", "R-1"}, {"at", at}, {"lines", Json::array()}};
	for (const auto &l : lines) {
		Json line = line_json(l.sku, l.qty, l.unit_price, l.discount);
		if (l.category)
			line["category"] = l.category;
		doc["lines"].push_back(line);
	}
	return parse_basket_ok(doc.dump());
}

std::string describe(const std::vector<loy::Part> &parts)
{
	std::string s;
	for (const auto &p : parts) {
		if (!s.empty())
			s += ", ";
		s += p.rule + "=" + std::to_string(p.points);
	}
	return s;
}

loy::Checkout checkout_ok(const loy::Program &p, const loy::Basket &b, const loy::Member &m,
			  const loy::Redemption &r)
{
	auto c = loy::checkout(p, b, m, r);
	INFO(c.status().message());
	REQUIRE(c);
	return *c;
}

loy::Checkout accepted(const loy::Program &p, const loy::Basket &b, const loy::Member &m,
		       const loy::Redemption &r)
{
	loy::Checkout c = checkout_ok(p, b, m, r);
	REQUIRE_FALSE(c.breakdown.empty());
	CHECK(c.breakdown.front().rule == "base");
	int64_t sum = 0;
	for (const auto &part : c.breakdown)
		sum += part.points;
	CHECK(c.earned == sum);
	return c;
}

} // namespace core_test
