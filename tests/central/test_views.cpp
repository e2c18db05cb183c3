// The commands' results as JSON (central/views.hpp), pinned byte for byte:
// spec/cli.md's keys, in its order, with its number formats, for every
// optional field present and absent.
#include <catch2/catch.hpp>

#include <string>

#include "central/views.hpp"

using loy::central::Balance;
using loy::central::CampaignReport;
using loy::central::CharityReport;
using loy::central::DayReport;
using loy::central::MarkedCard;
using loy::central::Published;
using loy::central::Refusal;
using loy::central::Report;
using loy::central::StoreReport;
using loy::central::TerminalReport;

TEST_CASE("views: program publish, enroll, block")
{
	CHECK(loy::central::published_json(Published{"cafe-rewards", 7, true}).dump() ==
	      R"({"program":"cafe-rewards","version":7,"published":true})");
	CHECK(loy::central::published_json(Published{"cafe-rewards", 7, false}).dump() ==
	      R"({"program":"cafe-rewards","version":7,"published":false})");
	CHECK(loy::central::enrolled_json(MarkedCard{"****7895"}).dump() == R"({"card":"****7895","known":true})");
	CHECK(loy::central::blocked_json(MarkedCard{"****7895"}).dump() == R"({"card":"****7895","blocked":true})");
}

TEST_CASE("views: balance, of a member known and of a card never seen")
{
	Balance b;
	b.card = "****7895";
	b.member.known = true;
	b.member.balance = -12;
	b.member.pending = 30;
	b.member.qualifying_spend = 123456;
	b.member.tier = "Gold";
	b.member.blocked = true;
	b.member.next_expiry = "2027-11-30";
	b.member.segments = {"lapsed", "vip"};
	CHECK(loy::central::balance_json(b).dump() ==
	      R"({"card":"****7895","known":true,"balance":-12,"pending":30,"tier":"Gold",)"
	      R"("qualifying_spend":123456,"blocked":true,"next_expiry":"2027-11-30",)"
	      R"("segments":["lapsed","vip"],"stamps":{},"membership":null,"referral":null})");
	Balance unknown;
	unknown.card = "****1111";
	CHECK(loy::central::balance_json(unknown).dump() ==
	      R"({"card":"****1111","known":false,"balance":0,"pending":0,"tier":null,)"
	      R"("qualifying_spend":0,"blocked":false,"next_expiry":null,"segments":[],"stamps":{},)"
	      R"("membership":null,"referral":null})");
}

TEST_CASE("views: the report, empty and with a terminal of every clock flag")
{
	CHECK(loy::central::report_json(Report{}).dump() ==
	      R"({"members":0,"points_issued":0,"points_redeemed":0,"points_expired":0,"points_donated":0,)"
	      R"("points_outstanding":0,"liability":0,"active_members":0,"new_members":0,"repeat_members":0,)"
	      R"("receipts":0,"spend":0,"average_basket":0,"redemption_rate_bp":0,"breakage_bp":0,)"
	      R"("repeat_rate_bp":0,"campaigns":[],"days":[],"terminals":[],"stores":[],"donations":[]})");

	Report r;
	r.members = 3;
	r.points = {100, 30, 5, 12};
	r.stores.push_back(StoreReport{"S1", {100, 30, 5, 12}});
	r.donations.push_back(CharityReport{"food-bank", 12, 24});
	r.liability = 106;
	r.active_members = 2;
	r.new_members = 1;
	r.repeat_members = 1;
	r.receipts = 3;
	r.spend = 4500;
	r.average_basket = 1500;
	r.redemption_rate_bp = 3000;
	r.breakage_bp = 500;
	r.repeat_rate_bp = 5000;
	r.campaigns.push_back(CampaignReport{"double-tuesday", 40, 2500});
	DayReport d;
	d.date = 20790; // 2026-12-03
	d.receipts = 3;
	d.members = 2;
	d.spend = 4500;
	d.points.issued = 100;
	d.points.redeemed = 30;
	r.days.push_back(d);
	TerminalReport quiet;
	quiet.terminal_id = "T0";
	quiet.store = "S1";
	r.terminals.push_back(quiet);
	TerminalReport t;
	t.terminal_id = "T1";
	t.store = "S1";
	t.acked_through = 42;
	t.last_push_utc = 1795000000;
	t.clock_skew_s = -(loy::central::clock_skew_flag_s + 1);
	t.max_clock_skew_s = 9000;
	t.entries_clock_back = 1;
	t.entries_from_future = 2;
	t.refused_pushes = 1;
	t.last_refusal = Refusal{1795000060, "push: entry 3 of T1 leaves a gap after 1"};
	r.terminals.push_back(t);
	CHECK(loy::central::report_json(r).dump() ==
	      R"({"members":3,"points_issued":100,"points_redeemed":30,"points_expired":5,"points_donated":12,)"
	      R"("points_outstanding":53,"liability":106,"active_members":2,"new_members":1,"repeat_members":1,)"
	      R"("receipts":3,"spend":4500,"average_basket":1500,"redemption_rate_bp":3000,"breakage_bp":500,)"
	      R"("repeat_rate_bp":5000,"campaigns":[{"id":"double-tuesday","points":40,"spend":2500}],)"
	      R"("days":[{"date":"2026-12-03","receipts":3,"members":2,"spend":4500,"points_issued":100,)"
	      R"("points_redeemed":30}],)"
	      R"("terminals":[)"
	      R"({"terminal_id":"T0","store":"S1","acked_through":0,"last_push":null,"clock_skew_s":null,)"
	      R"("max_clock_skew_s":0,"entries_clock_back":0,"entries_from_future":0,"clock_flags":[],)"
	      R"("refused_pushes":0,"last_refusal":null},)"
	      R"({"terminal_id":"T1","store":"S1","acked_through":42,"last_push":"2026-11-18T11:06:40Z",)"
	      R"("clock_skew_s":-301,"max_clock_skew_s":9000,"entries_clock_back":1,"entries_from_future":2,)"
	      R"("clock_flags":["skewed","went_back","future_entries"],"refused_pushes":1,)"
	      R"("last_refusal":{"at":"2026-11-18T11:07:40Z","message":"push: entry 3 of T1 leaves a gap after 1"}}],)"
	      R"("stores":[{"store":"S1","points_issued":100,"points_redeemed":30,"points_expired":5,)"
	      R"("points_donated":12,"points_outstanding":53}],)"
	      R"("donations":[{"charity":"food-bank","points":12,"value":24}]})");
	// At the bound exactly, a skew is not flagged.
	t.clock_skew_s = loy::central::clock_skew_flag_s;
	CHECK(loy::central::clock_flags(t) == std::vector<std::string>{"went_back", "future_entries"});
}

TEST_CASE("views: a report's query from its texts, each bad one named")
{
	auto q = loy::central::report_query(std::string("2026-12-01"), std::string("2026-12-03"), std::string("S1"));
	REQUIRE(q);
	CHECK(*q->from == 20788);
	CHECK(*q->until == 20790);
	CHECK(*q->store == "S1");
	auto open = loy::central::report_query(std::nullopt, std::string("2026-12-03"), std::nullopt);
	REQUIRE(open);
	CHECK_FALSE(open->from);
	CHECK_FALSE(open->store);
	const auto refused = [](std::optional<std::string> from, std::optional<std::string> until,
				std::optional<std::string> store, const char *names) {
		auto r = loy::central::report_query(from, until, store);
		REQUIRE_FALSE(r);
		CHECK(r.status().code() == loy::Code::bad_argument);
		CHECK_THAT(r.status().message(), Catch::StartsWith(names));
	};
	refused(std::string("2026-13-01"), std::nullopt, std::nullopt, "from:");
	refused(std::nullopt, std::string("yesterday"), std::nullopt, "until:");
	refused(std::string("2026-12-03"), std::string("2026-12-03"), std::nullopt, "until must be after from");
	refused(std::nullopt, std::nullopt, std::string(""), "store");
	refused(std::nullopt, std::nullopt, std::string(65, 's'), "store");
}
