// The central store's schema migrations (central/store.cpp): a centre
// made by version 1 of the schema opens under this program, keeps every
// member and entry, and gains the clock columns of version 2; a schema newer
// than the program is refused, and nothing is changed.
#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sync/fixture.hpp"
#include "base/crypto.hpp"
#include "central/store.hpp"
#include "central/views.hpp"

namespace {

using Json = nlohmann::json;

// A command's result as `loyalty-central --json` prints it, read back.
// What a current centre has that versions before 6 had not (and had
// instead), versions 6 to 15: run on it, it looks older in that respect too.
const std::string before_v6 = "DROP TABLE spend_days; DROP INDEX lots_pending; "
			      "CREATE INDEX lots_by_receipt ON lots (terminal_id, receipt_id); "
			      "DROP TABLE member_segments; DROP TABLE donations; DROP TABLE stamp_lots; "
			      "DROP TABLE stamp_debts; DROP TABLE memberships; DROP TABLE referrals; DROP TABLE bonuses; "
			      "DROP INDEX receipts_by_member_day; DROP INDEX receipts_by_day; "
			      "ALTER TABLE receipts DROP COLUMN refunded_at; ALTER TABLE receipts DROP COLUMN local_date; "
			      "DROP TABLE receipt_categories; DROP TABLE challenge_awards; "
			      "DROP TABLE receipt_campaigns; DROP TABLE fraud_flags; DROP TABLE admins; "
			      "DROP TABLE audit; DROP TABLE sessions; ";

Json printed(const loy::central::ViewJson &view) { return Json::parse(view.dump()); }

void exec(const std::string &db, const std::string &sql)
{
	sqlite3 *h = nullptr;
	REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
	char *err = nullptr;
	int rc = sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err);
	INFO((err ? err : ""));
	sqlite3_free(err);
	sqlite3_close(h);
	REQUIRE(rc == SQLITE_OK);
}

std::string program()
{
	std::ifstream in(LOYALTY_EXAMPLES "/programs/cafe-rewards.json");
	std::stringstream ss;
	ss << in.rdbuf();
	return ss.str();
}

} // namespace

TEST_CASE("a version 1 centre migrates to the current schema and keeps its data")
{
	sync_test::TempDir tmp;
	const int64_t now = 1795000000;
	{
		auto s = loy::central::open_store(tmp.path());
		REQUIRE(s);
		REQUIRE(s.value()->publish_program(program(), now));
		REQUIRE(s.value()->enroll("6280001234567895", now));
		REQUIRE(s.value()->push("T1", "S1", "", {}, now, now + 7200));
	}
	// What version 1 had: the terminals table without the clock columns.
	exec(tmp.path() + "/central.db", "ALTER TABLE terminals DROP COLUMN ledger;"
					  "ALTER TABLE terminals DROP COLUMN refused_pushes;"
					  "ALTER TABLE terminals DROP COLUMN last_refusal;"
					  "ALTER TABLE terminals DROP COLUMN last_refusal_at;"
					  "ALTER TABLE terminals DROP COLUMN clock_skew_s;"
					  "ALTER TABLE terminals DROP COLUMN entries_back;"
					  "ALTER TABLE terminals DROP COLUMN entries_future;"
					  "ALTER TABLE terminals DROP COLUMN last_device_time;"
					  "DROP TABLE counters;"
					  "ALTER TABLE members DROP COLUMN points;"
					  "ALTER TABLE members DROP COLUMN spend;"
					  + before_v6 + "PRAGMA user_version = 1;");

	auto s = loy::central::open_store(tmp.path());
	INFO(s.status().message());
	REQUIRE(s);
	auto r = s.value()->report({}, now);
	REQUIRE(r);
	Json rep = printed(loy::central::report_json(*r));
	CHECK(rep["members"] == 1);
	REQUIRE(rep["terminals"].size() == 1);
	CHECK(rep["terminals"][0]["terminal_id"] == "T1");
	CHECK(rep["terminals"][0]["clock_skew_s"].is_null()); // not measured since
	CHECK(rep["terminals"][0]["clock_flags"].empty());
	// The new columns work: a push measures the skew again.
	REQUIRE(s.value()->push("T1", "S1", "", {}, now, now - 600));
	rep = printed(loy::central::report_json(*s.value()->report({}, now)));
	CHECK(rep["terminals"][0]["clock_skew_s"] == -600);
	CHECK(rep["terminals"][0]["clock_flags"] == Json::array({"skewed"}));
	auto b = s.value()->balance("6280001234567895", now);
	REQUIRE(b);
	CHECK(printed(loy::central::balance_json(*b))["balance"] == 0);
}

TEST_CASE("a version 2 centre gains the terminals' ledgers: the first one pushed is the terminal's")
{
	sync_test::TempDir tmp;
	const int64_t now = 1795000000;
	const std::string mine(32, 'a'), clone(32, 'b');
	{
		auto s = loy::central::open_store(tmp.path());
		REQUIRE(s);
		REQUIRE(s.value()->push("T1", "S1", "", {}, now, now));
	}
	exec(tmp.path() + "/central.db", "ALTER TABLE terminals DROP COLUMN ledger; "
					  "ALTER TABLE terminals DROP COLUMN refused_pushes; "
					  "ALTER TABLE terminals DROP COLUMN last_refusal; "
					  "ALTER TABLE terminals DROP COLUMN last_refusal_at; DROP TABLE counters; "
					  "ALTER TABLE members DROP COLUMN points; ALTER TABLE members DROP COLUMN spend; "
					  + before_v6 + "PRAGMA user_version = 2;");
	auto s = loy::central::open_store(tmp.path());
	INFO(s.status().message());
	REQUIRE(s);
	loy::central::Store &store = **s;
	// T1 was known before ledger ids: an empty push fixes none (the data
	// dir may be made again after init), its first entry does.
	auto head = store.push("T1", "S1", mine, {}, now, now);
	REQUIRE(head);
	CHECK(head->seq == 0);
	CHECK(head->hash == std::string(64, '0'));
	REQUIRE(store.push("T1", "S1", clone, {}, now, now));
	const std::string token(64, 'c');
	auto enrolment = [&](const std::string &terminal) {
		const std::string body = Json{{"v", 1}, {"terminal", terminal}, {"seq", 1}, {"kind", "enroll"},
					      {"device_time", "2026-11-23T09:00:00Z"}, {"token", token},
					      {"receipt", ""}, {"program", "cafe-rewards"}, {"program_version", 7},
					      {"points", 0}, {"data", {{"masked", "****7895"}}},
					      {"prev", std::string(64, '0')}}
						 .dump();
		return std::vector<loy::central::PushEntry>{
			{1, loy::crypto::to_hex(loy::crypto::sha256(body)), body}};
	};
	head = store.push("T1", "S1", mine, enrolment("T1"), now, now);
	INFO(head.status().message());
	REQUIRE(head);
	CHECK(head->seq == 1);
	auto other = store.push("T1", "S1", clone, {}, now, now);
	REQUIRE_FALSE(other);
	CHECK(other.status().code() == loy::central::chain_conflict);
	CHECK_THAT(other.status().message(), Catch::Contains("another ledger"));
	CHECK_FALSE(store.entries_after("T1", clone, 0, 10));
	CHECK(store.entries_after("T1", mine, 0, 10));
	CHECK(store.push("T1", "S1", mine, {}, now, now));
	CHECK(store.push("T1", "S1", "", {}, now, now)); // an older terminal's software: not checked
	// A terminal new to the centre takes the ledger of its first entries.
	CHECK(store.push("T2", "S1", clone, enrolment("T2"), now, now));
	CHECK_FALSE(store.push("T2", "S1", mine, {}, now, now));
	// Each refusal is flagged in the report.
	Json rep = printed(loy::central::report_json(*store.report({}, now)));
	REQUIRE(rep["terminals"].size() == 2);
	for (const auto &t : rep["terminals"]) {
		CHECK(t["refused_pushes"] == 1);
		CHECK_THAT(t["last_refusal"]["message"].get<std::string>(), Catch::Contains("another ledger"));
	}
}

TEST_CASE("a version 3 centre gains counters that go on from its members' and lots' numbers, and "
	  "members' totals")
{
	sync_test::TempDir tmp;
	const int64_t now = 1795000000;
	{
		auto s = loy::central::open_store(tmp.path());
		REQUIRE(s);
		REQUIRE(s.value()->enroll("6280001234567895", now));
	}
	// Version 3 numbered changes and lots by max() + 1: a member at 41, a
	// lot at 7, and no counters.
	exec(tmp.path() + "/central.db", "UPDATE members SET change = 41; DROP TABLE counters; "
					  "ALTER TABLE members DROP COLUMN points; ALTER TABLE members DROP COLUMN spend; "
					  "INSERT INTO lots (id, token, store, available_at, points, remaining) "
					  "SELECT 7, token, 'S1', 0, 5, 5 FROM members; "
					  + before_v6 + "PRAGMA user_version = 3;");
	auto s = loy::central::open_store(tmp.path());
	INFO(s.status().message());
	REQUIRE(s);
	auto page = s.value()->members_after(0, 10, now);
	REQUIRE(page);
	REQUIRE(page->members.size() == 1);
	CHECK(page->watermark == 41);
	CHECK(page->members[0].balance == 5);
	// The next change comes after 41, so a terminal at watermark 41 sees it.
	REQUIRE(s.value()->enroll("4111111111111111", now));
	page = s.value()->members_after(41, 10, now);
	REQUIRE(page);
	REQUIRE(page->members.size() == 1);
	CHECK(page->watermark == 42);
	sqlite3 *h = nullptr;
	REQUIRE(sqlite3_open((tmp.path() + "/central.db").c_str(), &h) == SQLITE_OK);
	sqlite3_stmt *st = nullptr;
	REQUIRE(sqlite3_prepare_v2(h, "SELECT value FROM counters WHERE name = 'lot_id'", -1, &st, nullptr) ==
		SQLITE_OK);
	REQUIRE(sqlite3_step(st) == SQLITE_ROW);
	CHECK(sqlite3_column_int64(st, 0) == 7);
	sqlite3_finalize(st);
	// Version 5: the member's points summed from its lots onto its row.
	REQUIRE(sqlite3_prepare_v2(h, "SELECT points, spend FROM members WHERE change = 41", -1, &st, nullptr) ==
		SQLITE_OK);
	REQUIRE(sqlite3_step(st) == SQLITE_ROW);
	CHECK(sqlite3_column_int64(st, 0) == 5);
	CHECK(sqlite3_column_int64(st, 1) == 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
}

TEST_CASE("a version 5 centre gains each member's spend a day from its receipts")
{
	sync_test::TempDir tmp;
	const int64_t now = 1795000000, day = 86400;
	const std::string card = "6280001234567895";
	{
		auto s = loy::central::open_store(tmp.path());
		REQUIRE(s);
		REQUIRE(s.value()->publish_program(program(), now));
		REQUIRE(s.value()->enroll(card, now));
	}
	// Receipts of version 5: two on one day inside the window, one a year
	// and more before it.
	exec(tmp.path() + "/central.db",
	     before_v6 + fmt::format("INSERT INTO receipts (terminal_id, receipt_id, token, store, at_utc, eligible, "
				     "earned, redeemed) SELECT 'T1', 'R-' || x.n, token, 'S1', x.at, x.eligible, 0, 0 "
				     "FROM members, (SELECT 1 AS n, {} AS at, 120 AS eligible UNION ALL SELECT 2, {}, 30 "
				     "UNION ALL SELECT 3, {}, 5000) AS x; PRAGMA user_version = 5;",
				     now - 100, now - 200, now - 400 * day));
	auto s = loy::central::open_store(tmp.path());
	INFO(s.status().message());
	REQUIRE(s);
	auto b = s.value()->balance(card, now);
	REQUIRE(b);
	CHECK(b->member.qualifying_spend == 150);
	sqlite3 *h = nullptr;
	REQUIRE(sqlite3_open((tmp.path() + "/central.db").c_str(), &h) == SQLITE_OK);
	sqlite3_stmt *st = nullptr;
	REQUIRE(sqlite3_prepare_v2(h, "SELECT count(*), sum(eligible) FROM spend_days", -1, &st, nullptr) == SQLITE_OK);
	REQUIRE(sqlite3_step(st) == SQLITE_ROW);
	CHECK(sqlite3_column_int64(st, 0) == 2);
	CHECK(sqlite3_column_int64(st, 1) == 5150);
	sqlite3_finalize(st);
	sqlite3_close(h);
}

TEST_CASE("a centre of a newer schema is refused and left as it is")
{
	sync_test::TempDir tmp;
	{
		auto s = loy::central::open_store(tmp.path());
		REQUIRE(s);
	}
	exec(tmp.path() + "/central.db", "PRAGMA user_version = 99;");
	auto s = loy::central::open_store(tmp.path());
	REQUIRE_FALSE(s);
	CHECK(s.status().code() == loy::Code::storage);
	CHECK_THAT(s.status().message(), Catch::Contains("schema version 99 is newer"));
}
