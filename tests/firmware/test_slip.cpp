// The lines the till prints (firmware/slip.hpp): width in characters, not
// bytes; never a character cut in two; the figure always whole.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "firmware/slip.hpp"

using loy::fw::columns;
using Json = nlohmann::json;

namespace {

bool valid_utf8_cut(const std::string &s)
{
	// A cut inside a character leaves a lead byte without its continuation.
	if (s.empty())
		return true;
	size_t i = s.size();
	size_t cont = 0;
	while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) {
		i--;
		cont++;
	}
	if (i == 0)
		return cont == 0;
	unsigned char lead = static_cast<unsigned char>(s[i - 1]);
	size_t need = lead < 0x80 ? 0 : lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : 1;
	return need == cont;
}

} // namespace

TEST_CASE("columns and cuts count characters, not bytes")
{
	CHECK(columns("") == 0);
	CHECK(columns("Gold") == 4);
	CHECK(columns("Ezüst") == 5);
	CHECK(columns("Золото") == 6);
	CHECK(loy::fw::first_columns("Золото", 3) == "Зол");
	CHECK(loy::fw::first_columns("Ezüst", 3) == "Ezü");
	CHECK(loy::fw::first_columns("Ezüst", 2) == "Ez");
	CHECK(loy::fw::first_columns("abc", 10) == "abc");
}

TEST_CASE("member and receipt lines fit the paper whatever the names")
{
	for (int width : {24, 32, 40, 80}) {
		for (const char *tier : {"Gold", "Ezüst", "Золото", "Platinum Plus Very Long Tier Name Ünïcödé"}) {
			Json b{{"card", "****7895"}, {"known", true},     {"tier", tier},
			       {"balance", 1234},    {"pending", 10},     {"redeemable_today", 1000},
			       {"blocked", false},   {"next_expiry", "2027-11-23"}};
			Json c{{"receipt_id", "Ρ-0001-ΠΑΡΑΓΓΕΛΙΑ"},
			       {"card", "****7895"},
			       {"tier", tier},
			       {"earned", 161},
			       {"redeemed", 100},
			       {"discount", 100},
			       {"currency", "EUR"},
			       {"breakdown", {{{"rule", "base"}, {"points", 63}}, {{"rule", "καμπάνια-χριστούγεννα"}, {"points", 98}}}},
			       {"balance", 1295},
			       {"expires_on", "2027-11-23"}};
			for (const auto &lines : {loy::fw::member_lines(b, width), loy::fw::checkout_lines(c, width)}) {
				for (const auto &l : lines) {
					INFO(width << " [" << l << "]");
					CHECK(columns(l) <= static_cast<size_t>(width));
					CHECK(valid_utf8_cut(l));
				}
			}
			auto lines = loy::fw::checkout_lines(c, width);
			// The figures show whole, right-aligned.
			bool earned = false;
			for (const auto &l : lines)
				earned = earned || (l.rfind("Earned", 0) == 0 && l.size() >= 8 &&
						    l.compare(l.size() - 8, 8, "+161 pts") == 0 && columns(l) == static_cast<size_t>(width));
			CHECK(earned);
		}
	}
}

TEST_CASE("a slip shows each stamp card's stamps, a stamp reward and its money off, the membership")
{
	Json c{{"receipt_id", "S-4"},
	       {"card", "****7895"},
	       {"tier", "Member"},
	       {"earned", 3},
	       {"redeemed", 0},
	       {"discount", 350},
	       {"currency", "EUR"},
	       {"breakdown", {{{"rule", "base"}, {"points", 3}}}},
	       {"stamps", Json::parse(R"([{"id":"coffee-card","earned":1,"used":3,"balance":1},
	                                  {"id":"bean-card","earned":2,"used":0,"balance":null}])")},
	       {"membership", {{"id", "plus"}, {"until", "2027-11-23"}}},
	       {"balance", 40}};
	auto lines = loy::fw::checkout_lines(c, 40);
	auto has = [&](const std::string &start, const std::string &end) {
		for (const auto &l : lines)
			if (l.rfind(start, 0) == 0 && l.size() >= end.size() && l.compare(l.size() - end.size(), end.size(), end) == 0)
				return true;
		return false;
	};
	CHECK(has("Stamp reward coffee-card", "-3 stamps"));
	CHECK(has("Stamps coffee-card", "+1 = 1"));
	CHECK(has("Stamps bean-card", "+2 = -")); // not known here: no count
	CHECK(has("Discount", "3.50"));
	CHECK(has("Membership plus", "until 2027-11-23")); // its end, exclusive as in cli.md
	Json b{{"card", "****7895"}, {"known", true}, {"tier", "Member"}, {"balance", 40}, {"pending", 0},
	       {"redeemable_today", 40}, {"stamps", {{"coffee-card", 7}}}};
	auto member = loy::fw::member_lines(b, 32);
	bool shown = false;
	for (const auto &l : member)
		shown = shown || (l.rfind("Stamps coffee-card", 0) == 0 && l.back() == '7');
	CHECK(shown);
}
