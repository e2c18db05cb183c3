// Baskets (core/basket.hpp): the spec's example, line nets and totals, one
// invalid basket per row with its code and field path, overflow, and the
// canonical JSON that decides whether a retried checkout is the same basket.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include "fixture.hpp"

using namespace core_test;
using loy::Basket;
using loy::Code;
using loy::Line;

namespace {

// The example basket of spec/program.md, as written there.
const char *const example = R"({ "receipt_id": "R-1001", "at": "2026-11-24T10:15:00+01:00",
  "lines": [ { "sku": "COF-01", "category": "coffee", "qty": 2,
               "unit_price": 350, "discount": 0 } ] })";

Json &line(Json &doc, size_t i) { return doc["lines"][i]; }

} // namespace

TEST_CASE("the spec's example basket parses as written", "[basket]")
{
	const Basket b = parse_basket_ok(example);
	CHECK(b.receipt_id == "R-1001");
	CHECK(b.at_text == "2026-11-24T10:15:00+01:00");
	// 2026-11-24 is day 20781; 09:15Z is 33300 s into it.
	CHECK(b.at.utc_s == 20781 * int64_t{86400} + 33300);
	CHECK(b.at.offset_s == 3600);
	CHECK(b.at.local_date() == 20781);
	CHECK(b.at.local_weekday() == 1); // a Tuesday
	REQUIRE(b.lines.size() == 1);
	const Line &l = b.lines[0];
	CHECK(l.sku == "COF-01");
	CHECK(l.category == "coffee");
	CHECK(l.qty == 2);
	CHECK(l.unit_price == 350);
	CHECK(l.discount == 0);
	CHECK(l.net() == 700); // 2 × 350 − 0
	CHECK(b.total() == 700);
}

TEST_CASE("a line's net is qty × unit_price − discount", "[basket]")
{
	struct Row {
		int64_t qty, unit_price, discount, net;
	};
	const Row rows[] = {
		{2, 350, 0, 700},
		{3, 199, 97, 500},   // 597 − 97
		{1, 0, 0, 0},
		{5, 100, 500, 0},    // discount of the whole line
		{5, 100, 499, 1},
		{7, INT64_MAX / 7, 0, INT64_MAX}, // INT64_MAX = 7 × 1317624576693539401
		{1, INT64_MAX, INT64_MAX, 0},
	};
	for (const Row &r : rows) {
		CAPTURE(r.qty, r.unit_price, r.discount);
		Line l;
		l.sku = "X";
		l.qty = r.qty;
		l.unit_price = r.unit_price;
		l.discount = r.discount;
		CHECK(l.net() == r.net);
	}
}

TEST_CASE("a basket's total is the sum of its lines' net", "[basket]")
{
	Json doc = Json::parse(example);
	doc["lines"].push_back(line_json("CRO-01", 3, 199, 97));
	doc["lines"].push_back(line_json("BAG-01", 1, 0, 0));
	doc["lines"].push_back(line_json("TAB-01", 5, 100, 500));
	const Basket b = parse_basket_ok(doc.dump());
	REQUIRE(b.lines.size() == 4);
	CHECK(b.lines[1].net() == 500);
	CHECK(b.total() == 1200); // 700 + 500 + 0 + 0
}

TEST_CASE("an invalid basket is refused with the field's path", "[basket]")
{
	struct Row {
		const char *name;
		Mutation change;
		Code code;
		const char *path;    // the message reads "basket: <path> ..."
		const char *why;     // and holds this
		const char *literal; // replaces the value "@" in the text
	};
	const Code bad = Code::bad_basket;
	const Row rows[] = {
		{"receipt_id missing", [](Json &d) { d.erase("receipt_id"); }, bad, "receipt_id", "is missing", nullptr},
		{"receipt_id empty", [](Json &d) { d["receipt_id"] = ""; }, bad, "receipt_id", "must not be empty", nullptr},
		// receipt_id_length_max = 64.
		{"receipt_id of 65 bytes", [](Json &d) { d["receipt_id"] = std::string(65, 'R'); }, bad, "receipt_id", "at most 64", nullptr},
		{"receipt_id a number", [](Json &d) { d["receipt_id"] = 1001; }, bad, "receipt_id", "must be a string", nullptr},
		{"receipt_id with a newline", [](Json &d) { d["receipt_id"] = "R-1001\n"; }, bad, "receipt_id", "control characters", nullptr},

		{"at missing", [](Json &d) { d.erase("at"); }, bad, "at", "is missing", nullptr},
		{"at without an offset", [](Json &d) { d["at"] = "2026-11-24T10:15:00"; }, bad, "at", "RFC 3339", nullptr},
		{"at a date only", [](Json &d) { d["at"] = "2026-11-24"; }, bad, "at", "RFC 3339", nullptr},
		{"at on a day that does not exist", [](Json &d) { d["at"] = "2026-02-29T10:15:00+01:00"; }, bad, "at", "RFC 3339", nullptr},
		{"at a number", [](Json &d) { d["at"] = 1795511700; }, bad, "at", "must be a string", nullptr},

		{"lines missing", [](Json &d) { d.erase("lines"); }, bad, "lines", "is missing", nullptr},
		{"lines empty", [](Json &d) { d["lines"] = Json::array(); }, bad, "lines", "at least one line", nullptr},
		{"lines an object", [](Json &d) { d["lines"] = line(d, 0); }, bad, "lines", "must be an array", nullptr},
		{"lines a string", [](Json &d) { d["lines"] = "COF-01"; }, bad, "lines", "must be an array", nullptr},
		{"a line not an object", [](Json &d) { line(d, 0) = "COF-01"; }, bad, "lines[0]", "must be an object", nullptr},

		{"qty 0", [](Json &d) { line(d, 0)["qty"] = 0; }, bad, "lines[0].qty", "at least 1", nullptr},
		{"qty -1", [](Json &d) { line(d, 0)["qty"] = -1; }, bad, "lines[0].qty", "at least 1", nullptr},
		{"qty 1.5", [](Json &d) { line(d, 0)["qty"] = "@"; }, bad, "lines[0].qty", "must be an integer", "1.5"},
		{"qty a string", [](Json &d) { line(d, 0)["qty"] = "2"; }, bad, "lines[0].qty", "must be an integer", nullptr},
		{"qty missing", [](Json &d) { line(d, 0).erase("qty"); }, bad, "lines[0].qty", "is missing", nullptr},
		{"unit_price negative", [](Json &d) { line(d, 0)["unit_price"] = -1; }, bad, "lines[0].unit_price", "must not be negative", nullptr},
		{"unit_price a float", [](Json &d) { line(d, 0)["unit_price"] = "@"; }, bad, "lines[0].unit_price", "must be an integer", "3.50"},
		{"unit_price missing", [](Json &d) { line(d, 0).erase("unit_price"); }, bad, "lines[0].unit_price", "is missing", nullptr},
		{"discount negative", [](Json &d) { line(d, 0)["discount"] = -1; }, bad, "lines[0].discount", "must not be negative", nullptr},
		// 2 × 350 = 700: one more makes the net negative.
		{"discount above qty × unit_price", [](Json &d) { line(d, 0)["discount"] = 701; }, bad, "lines[0].discount", "more than qty × unit_price", nullptr},
		{"sku missing", [](Json &d) { line(d, 0).erase("sku"); }, bad, "lines[0].sku", "is missing", nullptr},
		{"sku empty", [](Json &d) { line(d, 0)["sku"] = ""; }, bad, "lines[0].sku", "must not be empty", nullptr},
		{"sku of 65 bytes", [](Json &d) { line(d, 0)["sku"] = std::string(65, 'S'); }, bad, "lines[0].sku", "at most 64", nullptr},
		{"category a number", [](Json &d) { line(d, 0)["category"] = 7; }, bad, "lines[0].category", "must be a string", nullptr},
		{"an error on the second line names it",
		 [](Json &d) { d["lines"].push_back(line_json("CRO-01", 0, 199, 0)); }, bad, "lines[1].qty", "at least 1", nullptr},

		// Amounts that do not fit in 64 bits.
		{"qty × unit_price above INT64_MAX",
		 [](Json &d) { line(d, 0)["qty"] = 2; line(d, 0)["unit_price"] = INT64_MAX; }, Code::overflow, "lines[0]:", "too large", nullptr},
		// 3037000500² = 9223372037000250000 > 9223372036854775807.
		{"qty × unit_price just above INT64_MAX",
		 [](Json &d) { line(d, 0)["qty"] = 3037000500; line(d, 0)["unit_price"] = 3037000500; }, Code::overflow, "lines[0]:", "too large", nullptr},
		{"7 × (INT64_MAX / 7 + 1)",
		 [](Json &d) { line(d, 0)["qty"] = 7; line(d, 0)["unit_price"] = INT64_MAX / 7 + 1; }, Code::overflow, "lines[0]:", "too large", nullptr},
		{"sum of the lines above INT64_MAX",
		 [](Json &d) {
			 d["lines"] = {line_json("A", 1, INT64_MAX, 0), line_json("B", 1, 1, 0)};
		 }, Code::overflow, "the sum of the lines' net", "too large", nullptr},
		{"sum of three lines above INT64_MAX",
		 [](Json &d) {
			 const int64_t third = INT64_MAX / 3 + 1;
			 d["lines"] = {line_json("A", 1, third, 0), line_json("B", 1, third, 0), line_json("C", 1, third, 0)};
		 }, Code::overflow, "the sum of the lines' net", "too large", nullptr},
		{"unit_price 2^63", [](Json &d) { line(d, 0)["unit_price"] = "@"; }, Code::overflow, "lines[0].unit_price", "too large", "9223372036854775808"},
		{"qty 2^64 - 1", [](Json &d) { line(d, 0)["qty"] = "@"; }, Code::overflow, "lines[0].qty", "too large", "18446744073709551615"},
		{"discount 2^63", [](Json &d) { line(d, 0)["discount"] = "@"; }, Code::overflow, "lines[0].discount", "too large", "9223372036854775808"},
	};
	for (const Row &r : rows) {
		INFO(r.name);
		const std::string text = mutated(example, r.change, r.literal);
		CAPTURE(text);
		const char *sep = r.path[std::char_traits<char>::length(r.path) - 1] == ':' ? "" : " ";
		check_refused(loy::parse_basket(text).status(), r.code,
			      std::string("basket: ") + r.path + sep, r.why);
	}
}

TEST_CASE("text that is not a basket object is refused", "[basket]")
{
	struct Row {
		const char *name;
		std::string text;
		const char *why;
	};
	const std::string doc = example;
	const Row rows[] = {
		{"empty", "", "not valid JSON"},
		{"cut short", doc.substr(0, doc.size() - 1), "not valid JSON"},
		{"plain words", "R-1001", "not valid JSON"},
		{"an array", "[" + doc + "]", "document must be an object"},
		{"null", "null", "document must be an object"},
		// Deep enough to overflow the stack if it were printed in a message.
		{"nested 400,000 deep", "{\"x\":" + std::string(400000, '[') + std::string(400000, ']') + "}",
		 "nested deeper than 64 levels"},
		{"nested 65 deep", std::string(65, '[') + std::string(65, ']'), "nested deeper than 64 levels"},
		{"nested 64 deep", std::string(64, '[') + std::string(64, ']'), "document must be an object"},
		// basket_json_bytes_max = 1 MiB, checked before parsing.
		{"over 1 MiB", doc + std::string(loy::basket_json_bytes_max, ' '), "bytes, at most"},
	};
	for (const Row &r : rows) {
		INFO(r.name);
		check_refused(loy::parse_basket(r.text).status(), Code::bad_basket, "basket: ", r.why);
	}
}

TEST_CASE("valid edge cases of a basket", "[basket]")
{
	struct Row {
		const char *name;
		Mutation change;
		bool (*holds)(const Basket &);
	};
	const Row rows[] = {
		{"discount equal to qty × unit_price: net 0",
		 [](Json &d) { line(d, 0)["discount"] = 700; },
		 [](const Basket &b) { return b.lines[0].net() == 0 && b.total() == 0; }},
		{"discount one below qty × unit_price: net 1",
		 [](Json &d) { line(d, 0)["discount"] = 699; },
		 [](const Basket &b) { return b.lines[0].net() == 1; }},
		{"discount absent is 0",
		 [](Json &d) { line(d, 0).erase("discount"); },
		 [](const Basket &b) { return b.lines[0].discount == 0 && b.lines[0].net() == 700; }},
		{"category absent: no category",
		 [](Json &d) { line(d, 0).erase("category"); },
		 [](const Basket &b) { return b.lines[0].category.empty(); }},
		{"category null: no category",
		 [](Json &d) { line(d, 0)["category"] = nullptr; },
		 [](const Basket &b) { return b.lines[0].category.empty(); }},
		{"unit_price 0",
		 [](Json &d) { line(d, 0)["unit_price"] = 0; },
		 [](const Basket &b) { return b.lines[0].net() == 0; }},
		{"receipt_id of 64 bytes",
		 [](Json &d) { d["receipt_id"] = std::string(64, 'R'); },
		 [](const Basket &b) { return b.receipt_id.size() == 64; }},
		{"at in UTC",
		 [](Json &d) { d["at"] = "2026-11-24T09:15:00Z"; },
		 [](const Basket &b) { return b.at.offset_s == 0 && b.at.local_date() == 20781; }},
		{"at late in the evening west of UTC keeps its own date",
		 [](Json &d) { d["at"] = "2027-01-05T23:30:00-05:00"; },
		 [](const Basket &b) { return b.at.local_date() == 20823 && b.at.local_weekday() == 1; }},
		{"at with a fraction is kept as written",
		 [](Json &d) { d["at"] = "2026-11-24T10:15:00.250+01:00"; },
		 [](const Basket &b) { return b.at_text == "2026-11-24T10:15:00.250+01:00"; }},
		// INT64_MAX = 7 × 1317624576693539401.
		{"qty × unit_price exactly INT64_MAX",
		 [](Json &d) { line(d, 0)["qty"] = 7; line(d, 0)["unit_price"] = INT64_MAX / 7; },
		 [](const Basket &b) { return b.total() == INT64_MAX; }},
		// 3037000499² = 9223372030926249001 ≤ INT64_MAX.
		{"qty × unit_price just below INT64_MAX",
		 [](Json &d) { line(d, 0)["qty"] = 3037000499; line(d, 0)["unit_price"] = 3037000499; },
		 [](const Basket &b) { return b.total() == 9223372030926249001; }},
		{"lines summing to exactly INT64_MAX",
		 [](Json &d) { d["lines"] = {line_json("A", 1, INT64_MAX - 1, 0), line_json("B", 1, 1, 0)}; },
		 [](const Basket &b) { return b.total() == INT64_MAX; }},
		{"a discount keeping the sum within INT64_MAX",
		 [](Json &d) { d["lines"] = {line_json("A", 1, INT64_MAX, 0), line_json("B", 2, 1, 2)}; },
		 [](const Basket &b) { return b.total() == INT64_MAX; }},
		{"unknown keys ignored",
		 [](Json &d) { d["terminal"] = "T-7"; line(d, 0)["name"] = "Espresso"; },
		 [](const Basket &b) { return b.receipt_id == "R-1001" && b.lines[0].qty == 2; }},
	};
	for (const Row &r : rows) {
		INFO(r.name);
		const Basket b = parse_basket_ok(mutated(example, r.change));
		CHECK(r.holds(b));
	}

	// basket_lines_max = 1000 lines: the last one allowed, and one more.
	Json doc = Json::parse(example);
	for (int i = 1; i < 1000; i++)
		doc["lines"].push_back(line_json("TEA-01", 1, 1, 0));
	const Basket full = parse_basket_ok(doc.dump());
	CHECK(full.lines.size() == 1000);
	CHECK(full.total() == 1699); // 700 + 999 × 1
	doc["lines"].push_back(line_json("TEA-01", 1, 1, 0));
	auto over = loy::parse_basket(doc.dump());
	REQUIRE_FALSE(over);
	CHECK(over.status().code() == Code::bad_basket);
	CHECK_THAT(over.status().message(), Catch::StartsWith("basket: lines has 1001 elements"));
}

TEST_CASE("canonical JSON: the same basket however written", "[basket]")
{
	auto canonical = [](const std::string &text) {
		return loy::basket_canonical_json(parse_basket_ok(text));
	};
	const std::string base = canonical(example);

	// The form is pinned: a terminal compares a retry against what it recorded,
	// possibly under an earlier build. Keys sorted, no whitespace.
	CHECK(base == R"({"at":"2026-11-24T10:15:00+01:00","lines":[{"category":"coffee",)"
		      R"("discount":0,"qty":2,"sku":"COF-01","unit_price":350}],"receipt_id":"R-1001"})");

	struct Row {
		const char *name;
		std::string text;
		bool same;
	};
	const Row rows[] = {
		{"compact", R"({"receipt_id":"R-1001","at":"2026-11-24T10:15:00+01:00","lines":[{"sku":"COF-01","category":"coffee","qty":2,"unit_price":350,"discount":0}]})",
		 true},
		{"keys reordered, other whitespace",
		 "{\n\t\"lines\" : [ {\"discount\":0, \"unit_price\":350,\n \"qty\":2,\"category\":\"coffee\",\"sku\":\"COF-01\"} ],\r\n"
		 "  \"at\":\"2026-11-24T10:15:00+01:00\",  \"receipt_id\" : \"R-1001\"\n}\n",
		 true},
		{"discount absent (0)", mutated(example, [](Json &d) { line(d, 0).erase("discount"); }), true},
		{"qty changed", mutated(example, [](Json &d) { line(d, 0)["qty"] = 3; }), false},
		{"unit_price changed", mutated(example, [](Json &d) { line(d, 0)["unit_price"] = 351; }), false},
		{"discount changed", mutated(example, [](Json &d) { line(d, 0)["discount"] = 1; }), false},
		{"sku changed", mutated(example, [](Json &d) { line(d, 0)["sku"] = "COF-02"; }), false},
		{"category changed", mutated(example, [](Json &d) { line(d, 0)["category"] = "tea"; }), false},
		{"category absent", mutated(example, [](Json &d) { line(d, 0).erase("category"); }), false},
		{"receipt_id changed", mutated(example, [](Json &d) { d["receipt_id"] = "R-1002"; }), false},
		{"at changed by a second", mutated(example, [](Json &d) { d["at"] = "2026-11-24T10:15:01+01:00"; }), false},
		{"a line added", mutated(example, [](Json &d) { d["lines"].push_back(line_json("COF-01", 1, 350, 0)); }), false},
		{"a line split in two", mutated(example, [](Json &d) {
			 line(d, 0)["qty"] = 1;
			 const Json copy = line(d, 0);
			 d["lines"].push_back(copy);
		 }), false},
	};
	for (const Row &r : rows) {
		INFO(r.name);
		CHECK((canonical(r.text) == base) == r.same);
	}
}
