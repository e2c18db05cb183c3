// Program documents (core/program.hpp): the spec's example parsed field by
// field, one invalid document per row with its code and field path, the valid
// edge cases, and the Program lookups (tier_for, excluded, find_reward).
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include "fixture.hpp"

using core_test::check_refused;
using core_test::Json;
using core_test::Mutation;
using core_test::parse_program_ok;
using core_test::mutated;
using loy::CampaignKind;
using loy::CardCheck;
using loy::Code;
using loy::Program;

namespace {

// The example document of spec/program.md, as written there.
const char *const example = R"({
  "program": "cafe-rewards",
  "version": 7,
  "currency": "EUR",
  "card": { "check": "luhn", "min_length": 8, "max_length": 19 },
  "earn": { "points": 1, "per": 100 },
  "exclude": { "categories": ["tobacco", "giftcard"], "skus": ["BAG-01"] },
  "tiers": [
    { "name": "Member", "spend": 0,     "multiplier_pct": 100 },
    { "name": "Silver", "spend": 20000, "multiplier_pct": 125 },
    { "name": "Gold",   "spend": 50000, "multiplier_pct": 150 }
  ],
  "campaigns": [
    { "id": "double-tuesday", "kind": "multiplier", "multiplier_pct": 200,
      "days": ["tue"], "from": "2026-01-01", "until": "2027-01-01" },
    { "id": "pastry-x3", "kind": "category_multiplier", "category": "pastry",
      "multiplier_pct": 300, "cap": 500 },
    { "id": "big-basket", "kind": "spend_bonus", "min_spend": 3000, "points": 50 },
    { "id": "coffee-stamp", "kind": "item_bonus", "sku": "COF-01", "points": 5,
      "tiers": ["Silver", "Gold"] }
  ],
  "redeem": { "point_value": 1, "min_points": 100, "max_pct": 50,
              "offline_daily_cap": 1000 },
  "rewards": [ { "id": "free-coffee", "cost": 300, "sku": "COF-01" } ],
  "expiry_days": 365,
  "pending_days": 0
})";

// 2026-01-01 = 56 × 365 + 14 leap days since 1970; 2027-01-01 = + 365.
constexpr loy::Days jan1_2026 = 20454;
constexpr loy::Days jan1_2027 = 20819;

constexpr uint8_t tuesday = 1u << 1; // bit 0 = Monday

Json &campaign(Json &doc, size_t i) { return doc["campaigns"][i]; }

} // namespace

TEST_CASE("the spec's example program parses as written", "[program]")
{
	const Program p = parse_program_ok(example);

	CHECK(p.id == "cafe-rewards");
	CHECK(p.version == 7);
	CHECK(p.currency == "EUR");
	CHECK(p.card.check == CardCheck::luhn);
	CHECK(p.card.min_length == 8);
	CHECK(p.card.max_length == 19);
	CHECK(p.earn.points == 1);
	CHECK(p.earn.per == 100);
	CHECK(p.exclude_categories == std::vector<std::string>{"tobacco", "giftcard"});
	CHECK(p.exclude_skus == std::vector<std::string>{"BAG-01"});

	REQUIRE(p.tiers.size() == 3);
	CHECK(p.tiers[0].name == "Member");
	CHECK(p.tiers[0].spend == 0);
	CHECK(p.tiers[0].multiplier_pct == 100);
	CHECK(p.tiers[1].name == "Silver");
	CHECK(p.tiers[1].spend == 20000);
	CHECK(p.tiers[1].multiplier_pct == 125);
	CHECK(p.tiers[2].name == "Gold");
	CHECK(p.tiers[2].spend == 50000);
	CHECK(p.tiers[2].multiplier_pct == 150);

	REQUIRE(p.campaigns.size() == 4);
	const auto &dt = p.campaigns[0];
	CHECK(dt.id == "double-tuesday");
	CHECK(dt.kind == CampaignKind::multiplier);
	CHECK(dt.multiplier_pct == 200);
	CHECK(dt.weekdays == tuesday);
	CHECK(dt.from == jan1_2026);
	CHECK(dt.until == jan1_2027);
	CHECK_FALSE(dt.tiers.has_value());
	CHECK_FALSE(dt.min_spend);
	CHECK_FALSE(dt.cap);

	const auto &px = p.campaigns[1];
	CHECK(px.id == "pastry-x3");
	CHECK(px.kind == CampaignKind::category_multiplier);
	CHECK(px.category == "pastry");
	CHECK(px.multiplier_pct == 300);
	CHECK(px.cap == 500);
	CHECK(px.weekdays == 0x7f);
	CHECK_FALSE(px.from);
	CHECK_FALSE(px.until);
	CHECK_FALSE(px.min_spend);

	const auto &bb = p.campaigns[2];
	CHECK(bb.id == "big-basket");
	CHECK(bb.kind == CampaignKind::spend_bonus);
	CHECK(bb.min_spend == 3000);
	CHECK(bb.points == 50);
	CHECK_FALSE(bb.cap);

	const auto &cs = p.campaigns[3];
	CHECK(cs.id == "coffee-stamp");
	CHECK(cs.kind == CampaignKind::item_bonus);
	CHECK(cs.sku == "COF-01");
	CHECK(cs.category.empty());
	CHECK(cs.points == 5);
	CHECK(cs.tiers == std::optional<std::vector<std::string>>(std::vector<std::string>{"Silver", "Gold"}));
	CHECK(cs.weekdays == 0x7f);

	CHECK(p.redeem.point_value == 1);
	CHECK(p.redeem.min_points == 100);
	CHECK(p.redeem.max_pct == 50);
	CHECK(p.redeem.offline_daily_cap == 1000);

	REQUIRE(p.rewards.size() == 1);
	CHECK(p.rewards[0].id == "free-coffee");
	CHECK(p.rewards[0].cost == 300);
	CHECK(p.rewards[0].sku == "COF-01");

	CHECK(p.expiry_days == 365);
	CHECK(p.pending_days == 0);
}

TEST_CASE("an invalid program is refused with the field's path", "[program]")
{
	struct Row {
		const char *name;
		Mutation change;
		Code code;
		const char *path;    // the message reads "program: <path> ..."
		const char *why;     // and holds this, when not nullptr
		const char *literal; // replaces the value "@" in the text
	};
	const Code bad = Code::bad_program;
	static const std::string long_key = std::string(64, 'k') + "...";
	const Row rows[] = {
		// Every required field missing.
		{"program missing", [](Json &d) { d.erase("program"); }, bad, "program", "is missing", nullptr},
		{"version missing", [](Json &d) { d.erase("version"); }, bad, "version", "is missing", nullptr},
		{"version null", [](Json &d) { d["version"] = nullptr; }, bad, "version", "is missing", nullptr},
		{"currency missing", [](Json &d) { d.erase("currency"); }, bad, "currency", "is missing", nullptr},
		{"card missing", [](Json &d) { d.erase("card"); }, bad, "card", nullptr, nullptr},
		{"card.check missing", [](Json &d) { d["card"].erase("check"); }, bad, "card.check", "is missing", nullptr},
		{"card.min_length missing", [](Json &d) { d["card"].erase("min_length"); }, bad, "card.min_length", "is missing", nullptr},
		{"card.max_length missing", [](Json &d) { d["card"].erase("max_length"); }, bad, "card.max_length", "is missing", nullptr},
		{"earn missing", [](Json &d) { d.erase("earn"); }, bad, "earn", nullptr, nullptr},
		{"earn.points missing", [](Json &d) { d["earn"].erase("points"); }, bad, "earn.points", "is missing", nullptr},
		{"earn.per missing", [](Json &d) { d["earn"].erase("per"); }, bad, "earn.per", "is missing", nullptr},
		{"tiers missing", [](Json &d) { d.erase("tiers"); }, bad, "tiers", "is missing", nullptr},
		{"tier name missing", [](Json &d) { d["tiers"][1].erase("name"); }, bad, "tiers[1].name", "is missing", nullptr},
		{"tier spend missing", [](Json &d) { d["tiers"][1].erase("spend"); }, bad, "tiers[1].spend", "is missing", nullptr},
		{"tier multiplier_pct missing", [](Json &d) { d["tiers"][1].erase("multiplier_pct"); }, bad, "tiers[1].multiplier_pct", "is missing", nullptr},
		{"redeem missing", [](Json &d) { d.erase("redeem"); }, bad, "redeem", nullptr, nullptr},
		{"redeem.point_value missing", [](Json &d) { d["redeem"].erase("point_value"); }, bad, "redeem.point_value", "is missing", nullptr},
		{"redeem.min_points missing", [](Json &d) { d["redeem"].erase("min_points"); }, bad, "redeem.min_points", "is missing", nullptr},
		{"redeem.max_pct missing", [](Json &d) { d["redeem"].erase("max_pct"); }, bad, "redeem.max_pct", "is missing", nullptr},
		{"redeem.offline_daily_cap missing", [](Json &d) { d["redeem"].erase("offline_daily_cap"); }, bad, "redeem.offline_daily_cap", "is missing", nullptr},
		{"campaign id missing", [](Json &d) { campaign(d, 0).erase("id"); }, bad, "campaigns[0].id", "is missing", nullptr},
		{"campaign kind missing", [](Json &d) { campaign(d, 0).erase("kind"); }, bad, "campaigns[0].kind", "is missing", nullptr},
		{"multiplier without multiplier_pct", [](Json &d) { campaign(d, 0).erase("multiplier_pct"); }, bad, "campaigns[0].multiplier_pct", "is missing", nullptr},
		{"category_multiplier without category", [](Json &d) { campaign(d, 1).erase("category"); }, bad, "campaigns[1].category", "is missing", nullptr},
		{"category_multiplier without multiplier_pct", [](Json &d) { campaign(d, 1).erase("multiplier_pct"); }, bad, "campaigns[1].multiplier_pct", "is missing", nullptr},
		{"spend_bonus without points", [](Json &d) { campaign(d, 2).erase("points"); }, bad, "campaigns[2].points", "is missing", nullptr},
		{"spend_bonus without min_spend", [](Json &d) { campaign(d, 2).erase("min_spend"); }, bad, "campaigns[2].min_spend", "is missing", nullptr},
		{"item_bonus without points", [](Json &d) { campaign(d, 3).erase("points"); }, bad, "campaigns[3].points", "is missing", nullptr},
		{"item_bonus with neither sku nor category", [](Json &d) { campaign(d, 3).erase("sku"); }, bad, "campaigns[3].sku", "is missing", nullptr},
		{"reward id missing", [](Json &d) { d["rewards"][0].erase("id"); }, bad, "rewards[0].id", "is missing", nullptr},
		{"reward cost missing", [](Json &d) { d["rewards"][0].erase("cost"); }, bad, "rewards[0].cost", "is missing", nullptr},
		{"reward sku missing", [](Json &d) { d["rewards"][0].erase("sku"); }, bad, "rewards[0].sku", "is missing", nullptr},

		// Negative amounts and other values below their minimum.
		{"version 0", [](Json &d) { d["version"] = 0; }, bad, "version", "at least 1", nullptr},
		{"version 2^53, past the limit", [](Json &d) { d["version"] = int64_t{1} << 53; }, bad, "version",
		 "at most 9007199254740991", nullptr},
		{"version 10^18", [](Json &d) { d["version"] = int64_t{1000000000000000000}; }, bad, "version",
		 "at most 9007199254740991", nullptr},
		{"earn.points negative", [](Json &d) { d["earn"]["points"] = -1; }, bad, "earn.points", "must not be negative", nullptr},
		{"earn.per 0", [](Json &d) { d["earn"]["per"] = 0; }, bad, "earn.per", "at least 1", nullptr},
		{"earn.per negative", [](Json &d) { d["earn"]["per"] = -100; }, bad, "earn.per", "at least 1", nullptr},
		{"tier spend negative", [](Json &d) { d["tiers"][0]["spend"] = -1; }, bad, "tiers[0].spend", "must not be negative", nullptr},
		{"redeem.point_value 0", [](Json &d) { d["redeem"]["point_value"] = 0; }, bad, "redeem.point_value", "at least 1", nullptr},
		{"redeem.min_points negative", [](Json &d) { d["redeem"]["min_points"] = -1; }, bad, "redeem.min_points", "must not be negative", nullptr},
		{"redeem.max_pct negative", [](Json &d) { d["redeem"]["max_pct"] = -1; }, bad, "redeem.max_pct", "must not be negative", nullptr},
		{"redeem.offline_daily_cap negative", [](Json &d) { d["redeem"]["offline_daily_cap"] = -1; }, bad, "redeem.offline_daily_cap", "must not be negative", nullptr},
		{"campaign cap negative", [](Json &d) { campaign(d, 1)["cap"] = -1; }, bad, "campaigns[1].cap", "must not be negative", nullptr},
		{"spend_bonus min_spend negative", [](Json &d) { campaign(d, 2)["min_spend"] = -1; }, bad, "campaigns[2].min_spend", "must not be negative", nullptr},
		{"min_spend filter negative", [](Json &d) { campaign(d, 0)["min_spend"] = -1; }, bad, "campaigns[0].min_spend", "must not be negative", nullptr},
		{"spend_bonus points negative", [](Json &d) { campaign(d, 2)["points"] = -50; }, bad, "campaigns[2].points", "must not be negative", nullptr},
		{"item_bonus points negative", [](Json &d) { campaign(d, 3)["points"] = -5; }, bad, "campaigns[3].points", "must not be negative", nullptr},
		{"reward cost 0", [](Json &d) { d["rewards"][0]["cost"] = 0; }, bad, "rewards[0].cost", "at least 1", nullptr},
		{"reward cost negative", [](Json &d) { d["rewards"][0]["cost"] = -300; }, bad, "rewards[0].cost", "at least 1", nullptr},
		{"expiry_days negative", [](Json &d) { d["expiry_days"] = -1; }, bad, "expiry_days", "must not be negative", nullptr},
		{"pending_days negative", [](Json &d) { d["pending_days"] = -1; }, bad, "pending_days", "must not be negative", nullptr},

		// Values above their maximum (days_max 36600, pct_max 100000, card lengths 1 … 32).
		{"redeem.max_pct 101", [](Json &d) { d["redeem"]["max_pct"] = 101; }, bad, "redeem.max_pct", "at most 100", nullptr},
		{"expiry_days 36601", [](Json &d) { d["expiry_days"] = 36601; }, bad, "expiry_days", "at most 36600", nullptr},
		{"pending_days 36601", [](Json &d) { d["pending_days"] = 36601; }, bad, "pending_days", "at most 36600", nullptr},
		{"tier multiplier_pct 100001", [](Json &d) { d["tiers"][2]["multiplier_pct"] = 100001; }, bad, "tiers[2].multiplier_pct", "at most 100000", nullptr},
		{"card.min_length 0", [](Json &d) { d["card"]["min_length"] = 0; }, bad, "card.min_length", "at least 1", nullptr},
		{"card.max_length 33", [](Json &d) { d["card"]["max_length"] = 33; }, bad, "card.max_length", "at most 32", nullptr},
		{"card.max_length below min_length", [](Json &d) { d["card"]["max_length"] = 7; }, bad, "card.max_length", "min_length", nullptr},

		// Multipliers below ×1.
		{"tier multiplier_pct 99", [](Json &d) { d["tiers"][0]["multiplier_pct"] = 99; }, bad, "tiers[0].multiplier_pct", "at least 100", nullptr},
		{"campaign multiplier_pct 99", [](Json &d) { campaign(d, 0)["multiplier_pct"] = 99; }, bad, "campaigns[0].multiplier_pct", "at least 100", nullptr},
		{"category multiplier_pct 0", [](Json &d) { campaign(d, 1)["multiplier_pct"] = 0; }, bad, "campaigns[1].multiplier_pct", "at least 100", nullptr},

		// Unknown names.
		{"unknown kind", [](Json &d) { campaign(d, 0)["kind"] = "teleport"; }, bad, "campaigns[0].kind", "\"teleport\" is unknown", nullptr},
		{"unknown card check", [](Json &d) { d["card"]["check"] = "crc32"; }, bad, "card.check", "\"crc32\" is unknown", nullptr},
		{"currency in lowercase", [](Json &d) { d["currency"] = "eur"; }, bad, "currency", "ISO 4217", nullptr},
		{"currency with a digit", [](Json &d) { d["currency"] = "E1R"; }, bad, "currency", "ISO 4217", nullptr},
		{"currency of two letters", [](Json &d) { d["currency"] = "EU"; }, bad, "currency", "ISO 4217", nullptr},
		{"currency of four letters", [](Json &d) { d["currency"] = "EURO"; }, bad, "currency", nullptr, nullptr},
		{"reserved campaign id base", [](Json &d) { campaign(d, 0)["id"] = "base"; }, bad, "campaigns[0].id", "reserved", nullptr},
		{"reserved campaign id tier:Gold", [](Json &d) { campaign(d, 1)["id"] = "tier:Gold"; }, bad, "campaigns[1].id", "reserved", nullptr},

		// Duplicates and order.
		{"duplicate campaign id", [](Json &d) { campaign(d, 1)["id"] = "double-tuesday"; }, bad, "campaigns[1].id", "duplicate", nullptr},
		{"duplicate reward id", [](Json &d) { d["rewards"].push_back({{"id", "free-coffee"}, {"cost", 100}, {"sku", "TEA-01"}}); }, bad, "rewards[1].id", "duplicate", nullptr},
		{"duplicate tier name", [](Json &d) { d["tiers"][1]["name"] = "Member"; }, bad, "tiers[1].name", "duplicate", nullptr},
		{"tiers not sorted: first above second", [](Json &d) { d["tiers"][0]["spend"] = 30000; }, bad, "tiers[1].spend", "above the previous tier", nullptr},
		{"tiers not sorted: Gold before Silver", [](Json &d) { std::swap(d["tiers"][1], d["tiers"][2]); }, bad, "tiers[2].spend", "above the previous tier", nullptr},
		{"tiers with equal spend", [](Json &d) { d["tiers"][2]["spend"] = 20000; }, bad, "tiers[2].spend", "above the previous tier", nullptr},
		{"second tier at 0", [](Json &d) { d["tiers"][1]["spend"] = 0; }, bad, "tiers[1].spend", "above the previous tier", nullptr},
		{"no tiers", [](Json &d) { d["tiers"] = Json::array(); }, bad, "tiers", "at least one tier", nullptr},

		// Campaign filters.
		{"days with an unknown day", [](Json &d) { campaign(d, 0)["days"] = {"tue", "funday"}; }, bad, "campaigns[0].days[1]", "\"funday\" is not a day", nullptr},
		{"days not an array", [](Json &d) { campaign(d, 0)["days"] = "tue"; }, bad, "campaigns[0].days", "must be an array", nullptr},
		{"days holding a number", [](Json &d) { campaign(d, 0)["days"] = {2}; }, bad, "campaigns[0].days[0]", "must be a string", nullptr},
		{"from not a date", [](Json &d) { campaign(d, 0)["from"] = "2026-13-01"; }, bad, "campaigns[0].from", "must be a date", nullptr},
		{"from on a day that does not exist", [](Json &d) { campaign(d, 0)["from"] = "2026-02-29"; }, bad, "campaigns[0].from", "must be a date", nullptr},
		{"from a timestamp", [](Json &d) { campaign(d, 0)["from"] = "2026-01-01T00:00:00Z"; }, bad, "campaigns[0].from", "must be a date", nullptr},
		{"from a number", [](Json &d) { campaign(d, 0)["from"] = 20260101; }, bad, "campaigns[0].from", "must be a string", nullptr},
		{"until not a date", [](Json &d) { campaign(d, 0)["until"] = "next year"; }, bad, "campaigns[0].until", "must be a date", nullptr},
		{"until equal to from", [](Json &d) { campaign(d, 0)["until"] = "2026-01-01"; }, bad, "campaigns[0].until", "after from", nullptr},
		{"until before from", [](Json &d) { campaign(d, 0)["until"] = "2025-12-31"; }, bad, "campaigns[0].until", "after from", nullptr},
		{"tiers filter naming an unknown tier", [](Json &d) { campaign(d, 3)["tiers"] = {"Silver", "Platinum"}; }, bad, "campaigns[3].tiers[1]", "\"Platinum\" is not a tier", nullptr},
		{"tiers filter in the wrong case", [](Json &d) { campaign(d, 3)["tiers"] = {"gold"}; }, bad, "campaigns[3].tiers[0]", "is not a tier", nullptr},
		{"tiers filter not an array", [](Json &d) { campaign(d, 3)["tiers"] = "Gold"; }, bad, "campaigns[3].tiers", "must be an array", nullptr},

		// Floats, strings and booleans where integers belong.
		{"version a float", [](Json &d) { d["version"] = "@"; }, bad, "version", "must be an integer", "7.5"},
		{"version written 7.0", [](Json &d) { d["version"] = "@"; }, bad, "version", "must be an integer", "7.0"},
		{"earn.per a float", [](Json &d) { d["earn"]["per"] = "@"; }, bad, "earn.per", "must be an integer", "100.5"},
		{"tier spend in exponent form", [](Json &d) { d["tiers"][1]["spend"] = "@"; }, bad, "tiers[1].spend", "must be an integer", "2e4"},
		{"redeem.max_pct a float", [](Json &d) { d["redeem"]["max_pct"] = "@"; }, bad, "redeem.max_pct", "must be an integer", "50.5"},
		{"campaign cap a float", [](Json &d) { campaign(d, 1)["cap"] = "@"; }, bad, "campaigns[1].cap", "must be an integer", "500.5"},
		{"expiry_days a float", [](Json &d) { d["expiry_days"] = "@"; }, bad, "expiry_days", "must be an integer", "365.25"},
		{"version a string", [](Json &d) { d["version"] = "7"; }, bad, "version", "must be an integer", nullptr},
		{"earn.points a string", [](Json &d) { d["earn"]["points"] = "1"; }, bad, "earn.points", "must be an integer", nullptr},
		{"tier spend a string", [](Json &d) { d["tiers"][1]["spend"] = "20000"; }, bad, "tiers[1].spend", "must be an integer", nullptr},
		{"reward cost a string", [](Json &d) { d["rewards"][0]["cost"] = "300"; }, bad, "rewards[0].cost", "must be an integer", nullptr},
		{"redeem.min_points true", [](Json &d) { d["redeem"]["min_points"] = true; }, bad, "redeem.min_points", "must be an integer", nullptr},
		{"program id a number", [](Json &d) { d["program"] = 7; }, bad, "program", "must be a string", nullptr},

		// Strings out of shape.
		{"program id empty", [](Json &d) { d["program"] = ""; }, bad, "program", "must not be empty", nullptr},
		{"program id with a control character", [](Json &d) { d["program"] = "cafe\x01rewards"; }, bad, "program", "control characters", nullptr},
		{"campaign id of 65 bytes", [](Json &d) { campaign(d, 0)["id"] = std::string(65, 'x'); }, bad, "campaigns[0].id", "at most 64 bytes", nullptr},
		{"tier name of 65 bytes", [](Json &d) { d["tiers"][0]["name"] = std::string(65, 'x'); }, bad, "tiers[0].name", "at most 64 bytes", nullptr},

		// Sections of the wrong type.
		{"card a string", [](Json &d) { d["card"] = "luhn"; }, bad, "card", "must be an object", nullptr},
		{"earn an array", [](Json &d) { d["earn"] = {1, 100}; }, bad, "earn", "must be an object", nullptr},
		{"redeem a number", [](Json &d) { d["redeem"] = 1; }, bad, "redeem", "must be an object", nullptr},
		{"exclude a string", [](Json &d) { d["exclude"] = "tobacco"; }, bad, "exclude", "must be an object", nullptr},
		{"exclude.categories a string", [](Json &d) { d["exclude"]["categories"] = "tobacco"; }, bad, "exclude.categories", "must be an array", nullptr},
		{"exclude.skus holding a number", [](Json &d) { d["exclude"]["skus"] = {5}; }, bad, "exclude.skus[0]", "must be a string", nullptr},
		{"exclude.categories holding \"\"", [](Json &d) { d["exclude"]["categories"] = {"tobacco", ""}; }, bad, "exclude.categories[1]", "must not be empty", nullptr},
		{"tiers an object", [](Json &d) { d["tiers"] = Json::object(); }, bad, "tiers", "must be an array", nullptr},
		{"a tier not an object", [](Json &d) { d["tiers"][0] = "Member"; }, bad, "tiers[0]", "must be an object", nullptr},
		{"campaigns an object", [](Json &d) { d["campaigns"] = Json::object(); }, bad, "campaigns", "must be an array", nullptr},
		{"a campaign not an object", [](Json &d) { campaign(d, 2) = 5; }, bad, "campaigns[2]", "must be an object", nullptr},
		{"rewards a string", [](Json &d) { d["rewards"] = "free-coffee"; }, bad, "rewards", "must be an array", nullptr},
		{"a reward not an object", [](Json &d) { d["rewards"][0] = "free-coffee"; }, bad, "rewards[0]", "must be an object", nullptr},

		// A key no specification up to 2 defines, at every level: refused,
		// so that no till follows a program only in part.
		{"an unknown key at the root", [](Json &d) { d["comment"] = "spring"; }, bad, "comment", "is not a key of the program specification", nullptr},
		{"an unknown key in card", [](Json &d) { d["card"]["issuer"] = "acme"; }, bad, "card.issuer", "is not a key", nullptr},
		{"an unknown key in earn", [](Json &d) { d["earn"]["note"] = 1.5; }, bad, "earn.note", "is not a key", nullptr},
		{"an unknown key in exclude", [](Json &d) { d["exclude"]["brands"] = {"x"}; }, bad, "exclude.brands", "is not a key", nullptr},
		{"an unknown key in a tier", [](Json &d) { d["tiers"][0]["colour"] = "grey"; }, bad, "tiers[0].colour", "is not a key", nullptr},
		{"an unknown key in a campaign", [](Json &d) { campaign(d, 0)["segmnts"] = {"x"}; }, bad, "campaigns[0].segmnts", "is not a key", nullptr},
		{"an unknown key in redeem", [](Json &d) { d["redeem"]["future"] = true; }, bad, "redeem.future", "is not a key", nullptr},
		{"an unknown key in a reward", [](Json &d) { d["rewards"][0]["image"] = "c.png"; }, bad, "rewards[0].image", "is not a key", nullptr},
		{"a 200-byte unknown key, cut", [](Json &d) { d[std::string(200, 'k')] = 1; }, bad, long_key.c_str(), "is not a key", nullptr},
		// The specification a document needs.
		{"spec 3", [](Json &d) { d["spec"] = 3; }, bad, "spec", "is 3: this build follows the program specification up to version 2", nullptr},
		{"spec 0", [](Json &d) { d["spec"] = 0; }, bad, "spec", nullptr, nullptr},
		{"spec a string", [](Json &d) { d["spec"] = "2"; }, bad, "spec", nullptr, nullptr},
		{"discount_pct without spec 2", [](Json &d) { d["tiers"][1]["discount_pct"] = 5; }, bad, "tiers[1].discount_pct", "is a key of specification 2", nullptr},
		{"segments without spec 2", [](Json &d) { campaign(d, 0)["segments"] = {"x"}; }, bad, "campaigns[0].segments", "is a key of specification 2", nullptr},
		{"discount_pct 101", [](Json &d) { d["spec"] = 2; d["tiers"][1]["discount_pct"] = 101; }, bad, "tiers[1].discount_pct", nullptr, nullptr},
		{"discount_pct negative", [](Json &d) { d["spec"] = 2; d["tiers"][1]["discount_pct"] = -1; }, bad, "tiers[1].discount_pct", nullptr, nullptr},
		{"segments a string", [](Json &d) { d["spec"] = 2; campaign(d, 0)["segments"] = "lapsed"; }, bad, "campaigns[0].segments", "must be an array", nullptr},
		{"a segment not a string", [](Json &d) { d["spec"] = 2; campaign(d, 0)["segments"] = {"a", 7}; }, bad, "campaigns[0].segments[1]", nullptr, nullptr},
		{"a partner without stores", [](Json &d) { d["spec"] = 2; d["partners"] = Json::array({{{"id", "bk"}, {"name", "Bakery"}, {"issue_cost", 1}, {"redeem_credit", 1}}}); }, bad, "partners[0].stores", "is missing", nullptr},
		{"a partner named owner", [](Json &d) { d["spec"] = 2; d["partners"] = Json::array({{{"id", "owner"}, {"name", "Me"}, {"stores", {"S1"}}, {"issue_cost", 1}, {"redeem_credit", 1}}}); }, bad, "partners[0].id", "program owner", nullptr},
		{"a store of two partners", [](Json &d) { d["spec"] = 2; d["partners"] = Json::array({{{"id", "a"}, {"name", "A"}, {"stores", {"S1", "S2"}}, {"issue_cost", 1}, {"redeem_credit", 1}}, {{"id", "b"}, {"name", "B"}, {"stores", {"S2"}}, {"issue_cost", 1}, {"redeem_credit", 1}}}); }, bad, "partners[1].stores", "S2", nullptr},
		{"a partner's negative issue_cost", [](Json &d) { d["spec"] = 2; d["partners"] = Json::array({{{"id", "a"}, {"name", "A"}, {"stores", {"S1"}}, {"issue_cost", -1}, {"redeem_credit", 1}}}); }, bad, "partners[0].issue_cost", nullptr, nullptr},
		{"a partner with a campaign's id", [](Json &d) { d["spec"] = 2; d["partners"] = Json::array({{{"id", campaign(d, 0)["id"]}, {"name", "A"}, {"stores", {"S1"}}, {"issue_cost", 1}, {"redeem_credit", 1}}}); }, bad, "partners[0].id", "duplicate", nullptr},
		{"an unknown key in a partner", [](Json &d) { d["spec"] = 2; d["partners"] = Json::array({{{"id", "a"}, {"name", "A"}, {"stores", {"S1"}}, {"issue_cost", 1}, {"redeem_credit", 1}, {"iban", "x"}}}); }, bad, "partners[0].iban", "is not a key", nullptr},
		{"a challenge of an unknown kind", [](Json &d) { d["spec"] = 2; d["challenges"] = Json::array({{{"id", "c"}, {"kind", "streak"}, {"count", 3}, {"points", 100}, {"from", "2026-12-01"}, {"until", "2027-01-01"}}}); }, bad, "challenges[0].kind", "not a challenge kind", nullptr},
		{"a challenge without until", [](Json &d) { d["spec"] = 2; d["challenges"] = Json::array({{{"id", "c"}, {"kind", "visits"}, {"count", 3}, {"points", 100}, {"from", "2026-12-01"}}}); }, bad, "challenges[0].until", "is missing", nullptr},
		{"a challenge ending before it starts", [](Json &d) { d["spec"] = 2; d["challenges"] = Json::array({{{"id", "c"}, {"kind", "visits"}, {"count", 3}, {"points", 100}, {"from", "2026-12-01"}, {"until", "2026-12-01"}}}); }, bad, "challenges[0].until", "must be after from", nullptr},
		{"a challenge of count 0", [](Json &d) { d["spec"] = 2; d["challenges"] = Json::array({{{"id", "c"}, {"kind", "spend"}, {"count", 0}, {"points", 100}, {"from", "2026-12-01"}, {"until", "2027-01-01"}}}); }, bad, "challenges[0].count", nullptr, nullptr},
		{"a challenge window of 0 days", [](Json &d) { d["spec"] = 2; d["challenges"] = Json::array({{{"id", "c"}, {"kind", "visits"}, {"count", 3}, {"points", 100}, {"from", "2026-12-01"}, {"until", "2027-01-01"}, {"window_days", 0}}}); }, bad, "challenges[0].window_days", nullptr, nullptr},
		{"a challenge with a charity's id", [](Json &d) { d["spec"] = 2; d["charities"] = Json::array({{{"id", "c"}, {"name", "C"}}}); d["challenges"] = Json::array({{{"id", "c"}, {"kind", "visits"}, {"count", 3}, {"points", 100}, {"from", "2026-12-01"}, {"until", "2027-01-01"}}}); }, bad, "challenges[0].id", "duplicate", nullptr},
		{"a referral without referrer_points", [](Json &d) { d["spec"] = 2; d["referral"] = Json{{"referee_points", 100}, {"window_days", 30}}; }, bad, "referral.referrer_points", "is missing", nullptr},
		{"a referral of a negative bonus", [](Json &d) { d["spec"] = 2; d["referral"] = Json{{"referrer_points", -1}, {"referee_points", 100}, {"window_days", 30}}; }, bad, "referral.referrer_points", nullptr, nullptr},
		{"a referral window of 0 days", [](Json &d) { d["spec"] = 2; d["referral"] = Json{{"referrer_points", 1}, {"referee_points", 1}, {"window_days", 0}}; }, bad, "referral.window_days", nullptr, nullptr},
		{"a referral's negative min_spend", [](Json &d) { d["spec"] = 2; d["referral"] = Json{{"referrer_points", 1}, {"referee_points", 1}, {"window_days", 3}, {"min_spend", -5}}; }, bad, "referral.min_spend", nullptr, nullptr},
		{"an unknown key in the referral", [](Json &d) { d["spec"] = 2; d["referral"] = Json{{"referrer_points", 1}, {"referee_points", 1}, {"window_days", 3}, {"bonus", 5}}; }, bad, "referral.bonus", "is not a key", nullptr},
		{"a referral that is a list", [](Json &d) { d["spec"] = 2; d["referral"] = Json::array(); }, bad, "referral", nullptr, nullptr},
		{"a membership without a sku", [](Json &d) { d["spec"] = 2; d["memberships"] = Json::array({{{"id", "plus"}, {"days", 365}, {"multiplier_pct", 200}}}); }, bad, "memberships[0].sku", "is missing", nullptr},
		{"a membership of 0 days", [](Json &d) { d["spec"] = 2; d["memberships"] = Json::array({{{"id", "plus"}, {"sku", "MEM-PLUS"}, {"days", 0}, {"multiplier_pct", 200}}}); }, bad, "memberships[0].days", nullptr, nullptr},
		{"a membership past a century of days", [](Json &d) { d["spec"] = 2; d["memberships"] = Json::array({{{"id", "plus"}, {"sku", "MEM-PLUS"}, {"days", 36601}, {"multiplier_pct", 200}}}); }, bad, "memberships[0].days", nullptr, nullptr},
		{"a membership's multiplier below 100", [](Json &d) { d["spec"] = 2; d["memberships"] = Json::array({{{"id", "plus"}, {"sku", "MEM-PLUS"}, {"days", 365}, {"multiplier_pct", 99}}}); }, bad, "memberships[0].multiplier_pct", nullptr, nullptr},
		{"a membership without multiplier_pct", [](Json &d) { d["spec"] = 2; d["memberships"] = Json::array({{{"id", "plus"}, {"sku", "MEM-PLUS"}, {"days", 365}}}); }, bad, "memberships[0].multiplier_pct", "is missing", nullptr},
		{"an unknown key in a membership", [](Json &d) { d["spec"] = 2; d["memberships"] = Json::array({{{"id", "plus"}, {"sku", "MEM-PLUS"}, {"days", 365}, {"multiplier_pct", 200}, {"price", 4900}}}); }, bad, "memberships[0].price", "is not a key", nullptr},
		{"a membership with a campaign's id", [](Json &d) { d["spec"] = 2; d["memberships"] = Json::array({{{"id", campaign(d, 0)["id"]}, {"sku", "MEM-PLUS"}, {"days", 365}, {"multiplier_pct", 200}}}); }, bad, "memberships[0].id", "duplicate", nullptr},
		{"two memberships of one sku", [](Json &d) { d["spec"] = 2; d["memberships"] = Json::array({{{"id", "plus"}, {"sku", "MEM"}, {"days", 365}, {"multiplier_pct", 200}}, {{"id", "max"}, {"sku", "MEM"}, {"days", 30}, {"multiplier_pct", 300}}}); }, bad, "memberships[1].sku", "another membership's", nullptr},
		{"a membership sold as a reward's sku", [](Json &d) { d["spec"] = 2; d["memberships"] = Json::array({{{"id", "plus"}, {"sku", d["rewards"][0]["sku"]}, {"days", 365}, {"multiplier_pct", 200}}}); }, bad, "memberships[0].sku", "a reward's", nullptr},
		{"memberships without spec 2", [](Json &d) { d["memberships"] = Json::array(); }, bad, "memberships", "is a key of specification 2", nullptr},
		{"stamp_cards an object", [](Json &d) { d["spec"] = 2; d["stamp_cards"] = Json::object(); }, bad, "stamp_cards", "must be an array", nullptr},
		{"a stamp card without sku or category", [](Json &d) { d["spec"] = 2; d["stamp_cards"] = Json::array({{{"id", "c"}, {"stamps", 5}, {"reward_sku", "COF-01"}}}); }, bad, "stamp_cards[0].sku", "is missing", nullptr},
		{"a stamp card with sku and category", [](Json &d) { d["spec"] = 2; d["stamp_cards"] = Json::array({{{"id", "c"}, {"sku", "COF-01"}, {"category", "coffee"}, {"stamps", 5}, {"reward_sku", "COF-01"}}}); }, bad, "stamp_cards[0].category", "cannot be given with sku", nullptr},
		{"a stamp card of 0 stamps", [](Json &d) { d["spec"] = 2; d["stamp_cards"] = Json::array({{{"id", "c"}, {"sku", "COF-01"}, {"stamps", 0}, {"reward_sku", "COF-01"}}}); }, bad, "stamp_cards[0].stamps", nullptr, nullptr},
		{"a stamp card of 1.5 stamps", [](Json &d) { d["spec"] = 2; d["stamp_cards"] = Json::array({{{"id", "c"}, {"sku", "COF-01"}, {"stamps", 1.5}, {"reward_sku", "COF-01"}}}); }, bad, "stamp_cards[0].stamps", "must be an integer", nullptr},
		{"a stamp card without reward_sku", [](Json &d) { d["spec"] = 2; d["stamp_cards"] = Json::array({{{"id", "c"}, {"sku", "COF-01"}, {"stamps", 5}}}); }, bad, "stamp_cards[0].reward_sku", nullptr, nullptr},
		{"a stamp card's expiry_days 0", [](Json &d) { d["spec"] = 2; d["stamp_cards"] = Json::array({{{"id", "c"}, {"sku", "COF-01"}, {"stamps", 5}, {"reward_sku", "COF-01"}, {"expiry_days", 0}}}); }, bad, "stamp_cards[0].expiry_days", nullptr, nullptr},
		{"an unknown key in a stamp card", [](Json &d) { d["spec"] = 2; d["stamp_cards"] = Json::array({{{"id", "c"}, {"sku", "COF-01"}, {"stamps", 5}, {"reward_sku", "COF-01"}, {"colour", "red"}}}); }, bad, "stamp_cards[0].colour", "is not a key", nullptr},
		{"a stamp card with a campaign's id", [](Json &d) { d["spec"] = 2; d["stamp_cards"] = Json::array({{{"id", campaign(d, 0)["id"]}, {"sku", "COF-01"}, {"stamps", 5}, {"reward_sku", "COF-01"}}}); }, bad, "stamp_cards[0].id", "duplicate", nullptr},
		{"a charity with a stamp card's id", [](Json &d) { d["spec"] = 2; d["stamp_cards"] = Json::array({{{"id", "c"}, {"sku", "COF-01"}, {"stamps", 5}, {"reward_sku", "COF-01"}}}); d["charities"] = Json::array({{{"id", "c"}, {"name", "C"}}}); }, bad, "charities[0].id", "duplicate", nullptr},
		{"charities without spec 2", [](Json &d) { d["charities"] = Json::array({{{"id", "rc"}, {"name", "Red Cross"}}}); }, bad, "charities", "is a key of specification 2", nullptr},
		{"charities an object", [](Json &d) { d["spec"] = 2; d["charities"] = Json::object(); }, bad, "charities", "must be an array", nullptr},
		{"a charity without a name", [](Json &d) { d["spec"] = 2; d["charities"] = Json::array({{{"id", "rc"}}}); }, bad, "charities[0].name", nullptr, nullptr},
		{"a charity with an empty name", [](Json &d) { d["spec"] = 2; d["charities"] = Json::array({{{"id", "rc"}, {"name", ""}}}); }, bad, "charities[0].name", "must not be empty", nullptr},
		{"a charity name of 201 bytes", [](Json &d) { d["spec"] = 2; d["charities"] = Json::array({{{"id", "rc"}, {"name", std::string(201, 'n')}}}); }, bad, "charities[0].name", "at most 200 bytes", nullptr},
		{"a charity with an empty id", [](Json &d) { d["spec"] = 2; d["charities"] = Json::array({{{"id", ""}, {"name", "Red Cross"}}}); }, bad, "charities[0].id", nullptr, nullptr},
		{"an unknown key in a charity", [](Json &d) { d["spec"] = 2; d["charities"] = Json::array({{{"id", "rc"}, {"name", "Red Cross"}, {"iban", "x"}}}); }, bad, "charities[0].iban", "is not a key", nullptr},
		{"two charities of one id", [](Json &d) { d["spec"] = 2; d["charities"] = Json::array({{{"id", "rc"}, {"name", "A"}}, {{"id", "rc"}, {"name", "B"}}}); }, bad, "charities[1].id", "duplicate", nullptr},
		{"a charity with a campaign's id", [](Json &d) { d["spec"] = 2; d["charities"] = Json::array({{{"id", campaign(d, 0)["id"]}, {"name", "A"}}}); }, bad, "charities[0].id", "duplicate", nullptr},
		{"stamp cards without spec 2", [](Json &d) { d["stamp_cards"] = Json::array(); }, bad, "stamp_cards", "is a key of specification 2", nullptr},

		// Numbers past 64 bits: overflow, not a shape error.
		{"version 2^63", [](Json &d) { d["version"] = "@"; }, Code::overflow, "version", "too large", "9223372036854775808"},
		{"earn.per 2^64 - 1", [](Json &d) { d["earn"]["per"] = "@"; }, Code::overflow, "earn.per", "too large", "18446744073709551615"},
		{"tier spend 2^63", [](Json &d) { d["tiers"][2]["spend"] = "@"; }, Code::overflow, "tiers[2].spend", "too large", "9223372036854775808"},
		{"reward cost 2^63", [](Json &d) { d["rewards"][0]["cost"] = "@"; }, Code::overflow, "rewards[0].cost", "too large", "9223372036854775808"},
		// Past uint64 too: still an integer literal larger than INT64_MAX.
		{"redeem.offline_daily_cap 10^20", [](Json &d) { d["redeem"]["offline_daily_cap"] = "@"; }, Code::overflow, "redeem.offline_daily_cap", "too large", "100000000000000000000"},
		// Below INT64_MIN is negative first of all.
		{"earn.points -2^63 - 1", [](Json &d) { d["earn"]["points"] = "@"; }, bad, "earn.points", nullptr, "-9223372036854775809"},
	};
	for (const Row &r : rows) {
		INFO(r.name);
		const std::string text = mutated(example, r.change, r.literal);
		CAPTURE(text);
		check_refused(loy::parse_program(text).status(), r.code,
			      std::string("program: ") + r.path + " ", r.why);
	}
}

TEST_CASE("text that is not a program object is refused as a whole", "[program]")
{
	struct Row {
		const char *name;
		std::string text;
		const char *why;
	};
	const std::string doc = example;
	const Row rows[] = {
		{"empty", "", "not valid JSON"},
		{"plain words", "cafe-rewards v7", "not valid JSON"},
		{"cut short", doc.substr(0, doc.size() - 1), "not valid JSON"},
		{"a trailing comma", doc.substr(0, doc.rfind('}')) + ",}", "not valid JSON"},
		{"two documents", doc + doc, "not valid JSON"},
		{"an array", "[" + doc + "]", "document must be an object"},
		{"a number", "7", "document must be an object"},
		{"a string", "\"cafe-rewards\"", "document must be an object"},
		{"null", "null", "document must be an object"},
		// Deep enough to overflow the stack if it were printed in a message.
		{"nested 400,000 deep", "{\"x\":" + std::string(400000, '[') + std::string(400000, ']') + "}",
		 "nested deeper than 64 levels"},
		{"nested 65 deep", std::string(65, '[') + std::string(65, ']'), "nested deeper than 64 levels"},
		{"nested 64 deep", std::string(64, '[') + std::string(64, ']'), "document must be an object"},
		// program_json_bytes_max = 1 MiB, checked before parsing.
		{"over 1 MiB", doc + std::string(loy::program_json_bytes_max, ' '), "bytes, at most"},
	};
	for (const Row &r : rows) {
		INFO(r.name);
		check_refused(loy::parse_program(r.text).status(), Code::bad_program, "program: ", r.why);
	}
}

TEST_CASE("optional sections may be absent", "[program]")
{
	const Program p = parse_program_ok(mutated(example, [](Json &d) {
		for (const char *key : {"exclude", "campaigns", "rewards", "expiry_days", "pending_days"})
			d.erase(key);
	}));
	CHECK(p.exclude_categories.empty());
	CHECK(p.exclude_skus.empty());
	CHECK(p.campaigns.empty());
	CHECK(p.rewards.empty());
	CHECK_FALSE(p.expiry_days);
	CHECK(p.pending_days == 0);
	CHECK(p.tiers.size() == 3);
	CHECK(p.redeem.max_pct == 50);

	const Program empty = parse_program_ok(mutated(example, [](Json &d) {
		d["exclude"] = Json::object();
		d["campaigns"] = Json::array();
		d["rewards"] = Json::array();
		d["expiry_days"] = nullptr;
		d["pending_days"] = nullptr;
	}));
	CHECK(empty.exclude_categories.empty());
	CHECK(empty.exclude_skus.empty());
	CHECK(empty.campaigns.empty());
	CHECK(empty.rewards.empty());
	CHECK_FALSE(empty.expiry_days);
	CHECK(empty.pending_days == 0);
}

TEST_CASE("valid edge cases of a program", "[program]")
{
	struct Row {
		const char *name;
		Mutation change;
		bool (*holds)(const Program &);
		const char *literal;
	};
	const Row rows[] = {
		{"expiry_days 0 means never",
		 [](Json &d) { d["expiry_days"] = 0; },
		 [](const Program &p) { return !p.expiry_days; }, nullptr},
		{"expiry_days and pending_days at days_max 36600",
		 [](Json &d) { d["expiry_days"] = 36600; d["pending_days"] = 36600; },
		 [](const Program &p) { return p.expiry_days == 36600 && p.pending_days == 36600; }, nullptr},
		{"spec 1 said outright",
		 [](Json &d) { d["spec"] = 1; },
		 [](const Program &p) { return p.spec == 1 && p.tiers[0].discount_pct == 0; }, nullptr},
		{"spec 2: a member price and segment filters",
		 [](Json &d) {
			 d["spec"] = 2;
			 d["tiers"][2]["discount_pct"] = 5;
			 d["tiers"][1]["discount_pct"] = 100;
			 campaign(d, 2)["segments"] = {"lapsed", "coffee-lovers"};
			 campaign(d, 3)["segments"] = Json::array();
		 },
		 [](const Program &p) {
			 return p.spec == 2 && p.tiers[0].discount_pct == 0 && p.tiers[1].discount_pct == 100 &&
				p.tiers[2].discount_pct == 5 && !p.campaigns[0].segments &&
				p.campaigns[2].segments == std::vector<std::string>{"lapsed", "coffee-lovers"} &&
				p.campaigns[3].segments && p.campaigns[3].segments->empty();
		 }, nullptr},
		{"a null optional field is absent",
		 [](Json &d) { campaign(d, 1)["cap"] = nullptr; campaign(d, 0)["from"] = nullptr; },
		 [](const Program &p) { return !p.campaigns[1].cap && !p.campaigns[0].from; }, nullptr},
		{"item_bonus on a category",
		 [](Json &d) { campaign(d, 3).erase("sku"); campaign(d, 3)["category"] = "coffee"; },
		 [](const Program &p) { return p.campaigns[3].category == "coffee" && p.campaigns[3].sku.empty(); }, nullptr},
		{"item_bonus naming both: the category decides",
		 [](Json &d) { campaign(d, 3)["category"] = "coffee"; },
		 [](const Program &p) { return p.campaigns[3].category == "coffee" && p.campaigns[3].sku.empty(); }, nullptr},
		{"every day",
		 [](Json &d) { campaign(d, 0)["days"] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}; },
		 [](const Program &p) { return p.campaigns[0].weekdays == 0x7f; }, nullptr},
		{"Monday and Sunday",
		 [](Json &d) { campaign(d, 0)["days"] = {"sun", "mon"}; },
		 [](const Program &p) { return p.campaigns[0].weekdays == 0x41; }, nullptr},
		{"no day: the campaign never applies",
		 [](Json &d) { campaign(d, 0)["days"] = Json::array(); },
		 [](const Program &p) { return p.campaigns[0].weekdays == 0; }, nullptr},
		{"no tier: the campaign applies to no one",
		 [](Json &d) { campaign(d, 3)["tiers"] = Json::array(); },
		 [](const Program &p) { return p.campaigns[3].tiers && p.campaigns[3].tiers->empty(); }, nullptr},
		{"a day twice",
		 [](Json &d) { campaign(d, 0)["days"] = {"tue", "tue"}; },
		 [](const Program &p) { return p.campaigns[0].weekdays == tuesday; }, nullptr},
		{"until one day after from",
		 [](Json &d) { campaign(d, 0)["until"] = "2026-01-02"; },
		 [](const Program &p) { return p.campaigns[0].until == jan1_2026 + 1; }, nullptr},
		{"until without from",
		 [](Json &d) { campaign(d, 0).erase("from"); },
		 [](const Program &p) { return !p.campaigns[0].from && p.campaigns[0].until == jan1_2027; }, nullptr},
		{"min_spend and cap as filters of a multiplier",
		 [](Json &d) { campaign(d, 0)["min_spend"] = 0; campaign(d, 0)["cap"] = 0; },
		 [](const Program &p) { return p.campaigns[0].min_spend == 0 && p.campaigns[0].cap == 0; }, nullptr},
		{"a single tier",
		 [](Json &d) { d["tiers"].erase(1); d["tiers"].erase(1); campaign(d, 3).erase("tiers"); },
		 [](const Program &p) { return p.tiers.size() == 1 && p.tiers[0].name == "Member"; }, nullptr},
		{"the last tier at INT64_MAX",
		 [](Json &d) { d["tiers"][2]["spend"] = INT64_MAX; },
		 [](const Program &p) { return p.tiers[2].spend == INT64_MAX; }, nullptr},
		{"version 2^53 - 1, the most",
		 [](Json &d) { d["version"] = "@"; },
		 [](const Program &p) { return p.version == loy::program_version_max; }, "9007199254740991"},
		{"names of 64 bytes",
		 [](Json &d) { campaign(d, 0)["id"] = std::string(64, 'c'); d["program"] = std::string(64, 'p'); },
		 [](const Program &p) { return p.campaigns[0].id.size() == 64 && p.id.size() == 64; }, nullptr},
		{"multiplier_pct at 100 and at pct_max 100000",
		 [](Json &d) { campaign(d, 0)["multiplier_pct"] = 100; d["tiers"][2]["multiplier_pct"] = 100000; },
		 [](const Program &p) { return p.campaigns[0].multiplier_pct == 100 && p.tiers[2].multiplier_pct == 100000; }, nullptr},
		{"max_pct 0 and min_points 0",
		 [](Json &d) { d["redeem"]["max_pct"] = 0; d["redeem"]["min_points"] = 0; },
		 [](const Program &p) { return p.redeem.max_pct == 0 && p.redeem.min_points == 0; }, nullptr},
		{"max_pct 100",
		 [](Json &d) { d["redeem"]["max_pct"] = 100; },
		 [](const Program &p) { return p.redeem.max_pct == 100; }, nullptr},
		{"earn.points 0 and per 1",
		 [](Json &d) { d["earn"]["points"] = 0; d["earn"]["per"] = 1; },
		 [](const Program &p) { return p.earn.points == 0 && p.earn.per == 1; }, nullptr},
		{"card ean13 13 … 13",
		 [](Json &d) { d["card"] = {{"check", "ean13"}, {"min_length", 13}, {"max_length", 13}}; },
		 [](const Program &p) { return p.card.check == CardCheck::ean13 && p.card.min_length == 13 && p.card.max_length == 13; }, nullptr},
		{"card none 1 … 32",
		 [](Json &d) { d["card"] = {{"check", "none"}, {"min_length", 1}, {"max_length", 32}}; },
		 [](const Program &p) { return p.card.check == CardCheck::none && p.card.min_length == 1 && p.card.max_length == 32; }, nullptr},
		{"reward cost 1",
		 [](Json &d) { d["rewards"][0]["cost"] = 1; },
		 [](const Program &p) { return p.rewards[0].cost == 1; }, nullptr},
		{"a campaign id merely containing tier:",
		 [](Json &d) { campaign(d, 0)["id"] = "my-tier:promo"; },
		 [](const Program &p) { return p.campaigns[0].id == "my-tier:promo"; }, nullptr},
	};
	for (const Row &r : rows) {
		INFO(r.name);
		const Program p = parse_program_ok(mutated(example, r.change, r.literal));
		CHECK(r.holds(p));
	}
}

TEST_CASE("tier_for picks the highest tier reached", "[program]")
{
	const Program p = parse_program_ok(example);
	struct Row {
		int64_t spend;
		const char *tier;
	};
	const Row rows[] = {
		{0, "Member"},
		{19999, "Member"}, // one cent below Silver
		{20000, "Silver"},
		{49999, "Silver"},
		{50000, "Gold"},
		{INT64_MAX, "Gold"},
		{-1, "Member"}, // refunds can leave a member below zero
	};
	for (const Row &r : rows) {
		CAPTURE(r.spend);
		CHECK(p.tier_for(r.spend).name == r.tier);
	}

	// Below a lowest tier that does not start at 0: still the lowest tier.
	const Program q = parse_program_ok(mutated(example, [](Json &d) { d["tiers"][0]["spend"] = 1000; }));
	CHECK(q.tier_for(0).name == "Member");
	CHECK(q.tier_for(999).name == "Member");
	CHECK(q.tier_for(20000).name == "Silver");
}

TEST_CASE("excluded, find_tier and find_reward look up by exact name", "[program]")
{
	const Program p = parse_program_ok(example);
	struct Row {
		const char *sku, *category;
		bool excluded;
	};
	const Row rows[] = {
		{"BAG-01", "", true},
		{"BAG-01", "coffee", true},
		{"MARL-20", "tobacco", true},
		{"GIFT-50", "giftcard", true},
		{"COF-01", "coffee", false},
		{"COF-01", "", false},
		{"BAG-02", "bags", false},
		{"tobacco", "coffee", false}, // a sku named like a category is not the category
	};
	for (const Row &r : rows) {
		CAPTURE(r.sku, r.category);
		CHECK(p.excluded(r.sku, r.category) == r.excluded);
	}

	const auto *w = p.find_reward("free-coffee");
	REQUIRE(w);
	CHECK(w->cost == 300);
	CHECK(w->sku == "COF-01");
	CHECK_FALSE(p.find_reward("free-tea"));
	CHECK_FALSE(p.find_reward(""));
	CHECK_FALSE(p.find_reward("coffee-stamp")); // a campaign, not a reward

	const auto *t = p.find_tier("Silver");
	REQUIRE(t);
	CHECK(t->spend == 20000);
	CHECK_FALSE(p.find_tier("Platinum"));
}

TEST_CASE("currency_exponent of ISO 4217 codes", "[program]")
{
	struct Row {
		const char *currency;
		int exponent;
	};
	const Row rows[] = {
		{"EUR", 2}, {"USD", 2}, {"HUF", 2}, {"JPY", 0}, {"VND", 0},
		{"KRW", 0}, {"BHD", 3}, {"KWD", 3}, {"TND", 3},
		{"XYZ", 2}, // unknown: the common case
	};
	for (const Row &r : rows) {
		CAPTURE(r.currency);
		CHECK(loy::currency_exponent(r.currency) == r.exponent);
	}
}
