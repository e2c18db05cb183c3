// The terminal's reading of the centre's members snapshot (GET /v1/members):
// typed, bounded, every bad field named; a hostile or faulty centre cannot
// put on the terminal a balance that would overflow its sums.
#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "core/limits.hpp"
#include "sync/client.hpp"

namespace {

const std::string good_member = R"({"token": "ab12", "masked": "****7895", "balance": 120, "pending": 10,
	"qualifying_spend": 25000, "tier": "Silver", "blocked": false, "next_expiry": "2027-11-23"})";

std::string page(const std::string &member, const std::string &tail = R"("watermark": 7, "more": false)")
{
	return "{\"members\": [" + member + "], " + tail + "}";
}

// The good member with one field set to the JSON text `value`.
std::string with(const char *key, const std::string &value)
{
	nlohmann::json m = nlohmann::json::parse(good_member);
	m[key] = nlohmann::json::parse(value);
	return m.dump();
}

} // namespace

TEST_CASE("members page: a good page is read whole", "[members]")
{
	auto p = loy::net::parse_members_page(page(good_member));
	REQUIRE(p);
	REQUIRE(p->members.size() == 1);
	const auto &m = p->members[0];
	CHECK(m.token == "ab12");
	CHECK(m.balance == 120);
	CHECK(m.pending == 10);
	CHECK(m.qualifying_spend == 25000);
	CHECK(m.tier == "Silver");
	CHECK_FALSE(m.blocked);
	CHECK(m.next_expiry == "2027-11-23");
	CHECK(p->watermark == 7);
	CHECK_FALSE(p->more);
	// Optional fields absent or null.
	auto q = loy::net::parse_members_page(
		page(R"({"token": "t", "balance": -5, "qualifying_spend": 0, "blocked": true, "next_expiry": null})"));
	REQUIRE(q);
	CHECK(q->members[0].balance == -5);
	CHECK(q->members[0].blocked);
	CHECK(q->members[0].next_expiry.empty());
	// As a centre with no program yet sends it: an empty tier, no card shown.
	auto r = loy::net::parse_members_page(page(with("tier", "\"\"")));
	REQUIRE(r);
	CHECK(r->members[0].tier.empty());
	auto e = loy::net::parse_members_page(page(with("masked", "null")));
	REQUIRE(e);
	CHECK(e->members[0].masked.empty());
}

TEST_CASE("members page: each bad field is named, and the sync fails as a network error", "[members]")
{
	const std::string past = std::to_string(loy::member_total_max + 1);
	struct Row {
		const char *what;
		std::string body;
		const char *problem;
	};
	const Row rows[] = {
		{"not JSON", "{\"members\": [", "not valid JSON"},
		{"not an object", "[]", "must be an object"},
		{"members missing", R"({"watermark": 1, "more": false})", "members"},
		{"a member not an object", page("7"), "members[0]"},
		{"balance past a member's bound", page(with("balance", past)), "balance must be at most"},
		{"balance 2^63", page(with("balance", "9223372036854775808")), "balance"},
		{"balance a float", page(with("balance", "1.5")), "balance must be an integer"},
		{"qualifying_spend below the bound", page(with("qualifying_spend", "-" + past)), "qualifying_spend"},
		{"pending negative", page(with("pending", "-1")), "pending must not be negative"},
		{"blocked a string", page(with("blocked", "\"no\"")), "blocked must be true or false"},
		{"token too long", page(with("token", "\"" + std::string(65, 'a') + "\"")), "token"},
		{"next_expiry a number", page(with("next_expiry", "20271123")), "next_expiry"},
		{"watermark negative", page(good_member, R"("watermark": -1, "more": false)"), "watermark"},
		{"more missing", page(good_member, R"("watermark": 1)"), "more"},
		{"nested too deep", "{\"members\": " + std::string(1000, '[') + std::string(1000, ']') + "}",
		 "nested deeper"},
	};
	for (const Row &r : rows) {
		INFO(r.what);
		auto p = loy::net::parse_members_page(r.body);
		REQUIRE_FALSE(p);
		CHECK(p.status().code() == loy::Code::network);
		CHECK_THAT(p.status().message(), Catch::Contains(r.problem));
	}
}
