// The fraud rules' configuration (central/fraud.hpp): the defaults cli.md
// gives, every setting read, and each bad one named.
#include <catch2/catch.hpp>

#include <string>

#include "central/fraud.hpp"

using loy::central::parse_fraud_rules;

TEST_CASE("fraud rules: no configuration gives cli.md's defaults")
{
	for (const char *text : {"", "{}", R"({"fraud": {}})"}) {
		auto r = parse_fraud_rules(text);
		REQUIRE(r);
		CHECK(r->till_receipts == 20);
		CHECK(r->till_minutes == 60);
		CHECK(r->spread_stores == 3);
		CHECK(r->loop_receipts == 3);
		CHECK(r->loop_days == 7);
		CHECK(r->burst_cards == 5);
		CHECK(r->burst_hours == 24);
		CHECK(r->block.empty());
	}
}

TEST_CASE("fraud rules: every threshold and block read")
{
	auto r = parse_fraud_rules(R"({"fraud": {
		"till_velocity": {"receipts": 10, "minutes": 30, "block": true},
		"redeem_spread": {"stores": 2},
		"refund_loop": {"receipts": 4, "days": 14, "block": false},
		"referral_burst": {"cards": 3, "hours": 1},
		"negative_balance": {"block": true}}})");
	INFO(r.status().message());
	REQUIRE(r);
	CHECK(r->till_receipts == 10);
	CHECK(r->till_minutes == 30);
	CHECK(r->spread_stores == 2);
	CHECK(r->loop_receipts == 4);
	CHECK(r->loop_days == 14);
	CHECK(r->burst_cards == 3);
	CHECK(r->burst_hours == 1);
	CHECK(r->block == std::set<std::string>{"negative_balance", "till_velocity"});
}

TEST_CASE("fraud rules: a bad configuration is refused, naming the setting")
{
	const auto refused = [](const std::string &text, const char *names) {
		auto r = parse_fraud_rules(text);
		REQUIRE_FALSE(r);
		CHECK(r.status().code() == loy::Code::bad_argument);
		CHECK_THAT(r.status().message(), Catch::Contains(names));
	};
	refused("{", "central.json");
	refused("[]", "central.json");
	refused(R"({"frauds": {}})", "frauds is not a setting");
	refused(R"({"fraud": {"till_speed": {}}})", "till_speed is not a setting");
	refused(R"({"fraud": {"till_velocity": {"receipt": 3}}})", "till_velocity.receipt is not a setting");
	refused(R"({"fraud": {"till_velocity": {"receipts": 0}}})", "till_velocity.receipts");
	refused(R"({"fraud": {"till_velocity": {"minutes": 1.5}}})", "till_velocity.minutes");
	refused(R"({"fraud": {"till_velocity": {"minutes": 99999999}}})", "till_velocity.minutes");
	refused(R"({"fraud": {"redeem_spread": {"stores": 1}}})", "redeem_spread.stores");
	refused(R"({"fraud": {"refund_loop": {"days": 367}}})", "refund_loop.days");
	refused(R"({"fraud": {"referral_burst": {"hours": -1}}})", "referral_burst.hours");
	refused(R"({"fraud": {"negative_balance": {"block": "yes"}}})", "negative_balance.block must be true or false");
	refused(R"({"fraud": {"negative_balance": []}})", "negative_balance");
	refused(std::string(70000, ' '), "bytes, at most");
}
