// Parsing and validating baskets.
#include "core/basket.hpp"

#include <fmt/format.h>

#include "core/arith.hpp"
#include "base/json_reader.hpp"

namespace loy {

namespace {

Result<Line> parse_line(const JsonReader &r)
{
	LOY_TRY(r.expect_object());
	Line l;
	auto sku = r.string("sku", 64);
	if (!sku)
		return sku.status();
	l.sku = *sku;
	// A line without a category is in no category: excluded or multiplied by
	// nothing that names one.
	// "" from a till that has no category for the item means the same.
	auto cat_node = r.child("category");
	if (!(cat_node.node().is_string() && cat_node.node().get_ref<const std::string &>().empty())) {
		auto cat = r.opt_string("category", 64);
		if (!cat)
			return cat.status();
		l.category = cat->value_or("");
	}
	auto qty = r.integer("qty", 1, INT64_MAX);
	if (!qty)
		return qty.status();
	l.qty = *qty;
	auto price = r.integer("unit_price", 0, INT64_MAX);
	if (!price)
		return price.status();
	l.unit_price = *price;
	auto discount = r.opt_integer("discount", 0, INT64_MAX);
	if (!discount)
		return discount.status();
	l.discount = discount->value_or(0);
	auto gross = mul_checked(l.qty, l.unit_price);
	if (!gross)
		return Status(Code::overflow,
			      fmt::format("{}: qty × unit_price ({} × {}) is too large", r.path(), l.qty,
					  l.unit_price));
	if (l.discount > *gross)
		return r.field_error("discount", fmt::format("({}) is more than qty × unit_price ({}): "
							     "net must not be negative",
							     l.discount, *gross));
	return l;
}

} // namespace

int64_t Basket::total() const noexcept
{
	int64_t sum = 0;
	for (const auto &l : lines)
		sum += l.net();
	return sum;
}

Result<Basket> parse_basket(std::string_view text)
{
	if (text.size() > basket_json_bytes_max)
		return Status(Code::bad_basket, fmt::format("basket: document is {} bytes, at most {} allowed",
							    text.size(), basket_json_bytes_max));
	auto doc = json_parse(text, Code::bad_basket, "basket");
	if (!doc)
		return doc.status();
	JsonReader root(*doc, "", Code::bad_basket);
	auto fail = [](const Status &s) { return s.prefixed("basket: "); };
	if (auto s = root.expect_object(); !s)
		return fail(s);
	Basket b;
	auto id = root.string("receipt_id", receipt_id_length_max);
	if (!id)
		return fail(id.status());
	b.receipt_id = *id;
	auto at = root.string("at", 64);
	if (!at)
		return fail(at.status());
	auto ts = parse_timestamp(*at);
	if (!ts)
		return fail(root.field_error("at", ts.status().message()));
	b.at_text = *at;
	b.at = *ts;
	auto lines = root.child("lines");
	auto n = lines.array_size(basket_lines_max);
	if (!n)
		return fail(n.status());
	if (*n == 0)
		return fail(lines.error("must hold at least one line"));
	int64_t total = 0;
	for (size_t i = 0; i < *n; i++) {
		auto l = parse_line(lines.element(i));
		if (!l)
			return fail(l.status());
		auto sum = add_checked(total, l->net());
		if (!sum)
			return Status(Code::overflow, "basket: the sum of the lines' net is too large");
		total = *sum;
		b.lines.push_back(std::move(*l));
	}
	return b;
}

std::string basket_canonical_json(const Basket &b)
{
	Json lines = Json::array();
	for (const auto &l : b.lines)
		lines.push_back(Json::object({{"sku", l.sku},
					      {"category", l.category},
					      {"qty", l.qty},
					      {"unit_price", l.unit_price},
					      {"discount", l.discount}}));
	Json doc = Json::object({{"receipt_id", b.receipt_id}, {"at", b.at_text}, {"lines", lines}});
	return doc.dump();
}

} // namespace loy
