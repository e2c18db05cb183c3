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
