// The central store's schema migrations (sync/central/store.cpp): a centre
// made by version 1 of the schema opens under this program, keeps every
// member and entry, and gains the clock columns of version 2; a schema newer
// than the program is refused, and nothing is changed.
#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "fixture.hpp"
#include "sync/central/store.hpp"

namespace {

using Json = nlohmann::json;

void exec(const std::string &db, const char *sql)
{
	sqlite3 *h = nullptr;
	REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
	char *err = nullptr;
	int rc = sqlite3_exec(h, sql, nullptr, nullptr, &err);
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

TEST_CASE("a version 1 centre migrates to version 2 and keeps its data")
{
	sync_test::TempDir tmp;
	const int64_t now = 1795000000;
	{
		auto s = loy::central::open_store(tmp.path());
		REQUIRE(s);
		REQUIRE(s.value()->publish_program(program(), now));
		REQUIRE(s.value()->enroll("6280001234567895", now));
		REQUIRE(s.value()->push("T1", "S1", {}, now, now + 7200));
	}
	// What version 1 had: the terminals table without the clock columns.
	exec(tmp.path() + "/central.db", "ALTER TABLE terminals DROP COLUMN clock_skew_s;"
					  "ALTER TABLE terminals DROP COLUMN entries_back;"
					  "ALTER TABLE terminals DROP COLUMN entries_future;"
					  "ALTER TABLE terminals DROP COLUMN last_device_time;"
					  "PRAGMA user_version = 1;");

	auto s = loy::central::open_store(tmp.path());
	INFO(s.status().message());
	REQUIRE(s);
	auto r = s.value()->report(now);
	REQUIRE(r);
	Json rep = Json::parse(*r);
	CHECK(rep["members"] == 1);
	REQUIRE(rep["terminals"].size() == 1);
	CHECK(rep["terminals"][0]["terminal_id"] == "T1");
	CHECK(rep["terminals"][0]["clock_skew_s"].is_null()); // not measured since
	CHECK(rep["terminals"][0]["clock_flags"].empty());
	// The new columns work: a push measures the skew again.
	REQUIRE(s.value()->push("T1", "S1", {}, now, now - 600));
	rep = Json::parse(*s.value()->report(now));
	CHECK(rep["terminals"][0]["clock_skew_s"] == -600);
	CHECK(rep["terminals"][0]["clock_flags"] == Json::array({"skewed"}));
	auto b = s.value()->balance("6280001234567895", now);
	REQUIRE(b);
	CHECK(Json::parse(*b)["balance"] == 0);
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
