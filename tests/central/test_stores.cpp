// The centre's store on each of its databases: SQLite always, PostgreSQL
// when LOYALTY_TEST_POSTGRESQL names a server (the ctest entry
// central.stores.postgresql starts one: tests/support/postgresql.py), each
// test case on a database of its own. What is checked is what a chain of
// many servers relies on: a terminal's batches retried to two servers at
// once are applied once; terminals pushing side by side on shared members
// end with the balances the entries say; change numbers are unique and the
// members' totals agree with their lots; both push encodings agree.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/crypto.hpp"
#include "base/timeutil.hpp"
#include "central/server.hpp"
#include "central/sql.hpp"
#include "central/store.hpp"
#include "support/tmpdir.hpp"

namespace {

using Json = nlohmann::json;
using loy::central::PushEntry;
using loy::central::Store;
constexpr int64_t now = 1795000000;

std::vector<std::string> kinds()
{
	std::vector<std::string> k{"sqlite"};
	if (const char *uri = std::getenv("LOYALTY_TEST_POSTGRESQL"); uri && *uri)
		k.push_back("postgresql");
	return k;
}

// Where a test case's stores live: a data dir and, on PostgreSQL, a
// database made for it.
struct Place {
	test_support::TempDir dir;
	std::string database;

	explicit Place(const std::string &kind)
	{
		if (kind != "postgresql")
			return;
		static int n = 0;
		const std::string uri = std::getenv("LOYALTY_TEST_POSTGRESQL");
		auto admin = loy::central::sql::open_postgresql(uri);
		REQUIRE(admin);
		const std::string name = fmt::format("stores_{}_{}", ::getpid(), ++n);
		REQUIRE((*admin)->exec("CREATE DATABASE " + name));
		database = uri.substr(0, uri.rfind('/') + 1) + name;
	}

	std::unique_ptr<Store> open() const
	{
		auto s = loy::central::open_store(dir.path(), database);
		INFO(s.status().message());
		REQUIRE(s);
		return std::move(s).value();
	}
};

std::string token_of(int member) { return loy::crypto::to_hex(loy::crypto::sha256(fmt::format("m{}", member))); }

// A terminal's chain of entries as it would push them: each body names its
// terminal, sequence and the hash before it.
struct Chain {
	explicit Chain(std::string id) : terminal(std::move(id)) {}
	std::string terminal;
	std::vector<PushEntry> entries;
	std::string prev = std::string(64, '0');
	std::string device_time = "2026-11-23T09:00:00Z"; // of the entries added next

	void add(const std::string &kind, const std::string &token, const std::string &receipt, Json data,
		 int64_t points)
	{
		const int64_t seq = static_cast<int64_t>(entries.size()) + 1;
		Json body{{"v", 1},          {"terminal", terminal}, {"seq", seq},   {"kind", kind},
			  {"device_time", device_time},              {"token", token}, {"receipt", receipt},
			  {"program", "p"},  {"program_version", 1}, {"points", points}, {"data", std::move(data)},
			  {"prev", prev}};
		const std::string text = body.dump();
		prev = loy::crypto::to_hex(loy::crypto::sha256(text));
		entries.push_back(PushEntry{seq, prev, text});
	}
	void checkout(int member, const std::string &receipt, int64_t earned, int64_t redeemed)
	{
		add("checkout", token_of(member), receipt,
		    Json{{"at_utc", now - 3600},
			 {"available_at", now - 3600},
			 {"expires_at", nullptr},
			 {"receipt", {{"eligible", earned * 10}, {"earned", earned}, {"redeemed", redeemed}}}},
		    earned - redeemed);
	}
	// A sale on local day `day` with its breakdown's campaign parts.
	void sale(int member, const std::string &receipt, int64_t day, int64_t eligible, int64_t earned,
		  int64_t redeemed, const std::map<std::string, int64_t> &campaigns = {})
	{
		Json breakdown = Json::array({Json{{"rule", "base"}, {"points", earned}}});
		for (const auto &[id, points] : campaigns) {
			breakdown[0]["points"] = breakdown[0]["points"].get<int64_t>() - points;
			breakdown.push_back(Json{{"rule", id}, {"points", points}});
		}
		const int64_t at = day * 86400 + 11 * 3600;
		add("checkout", token_of(member), receipt,
		    Json{{"at_utc", at},
			 {"available_at", at},
			 {"expires_at", nullptr},
			 {"local_date", day},
			 {"receipt", {{"eligible", eligible}, {"earned", earned}, {"redeemed", redeemed}}},
			 {"result", {{"breakdown", breakdown}}}},
		    earned - redeemed);
	}
	void refund(int member, const std::string &receipt, int64_t reversed, int64_t returned, int64_t spend,
		    bool complete = false)
	{
		add("refund", token_of(member), receipt,
		    Json{{"reversed", reversed}, {"returned", returned}, {"spend_reversed", spend}, {"complete", complete}},
		    returned - reversed);
	}
	// A sale at `at` (UTC) of a card shown as ****NNNN, on its UTC day.
	void sale_at(int member, const std::string &receipt, int64_t at, int64_t earned, int64_t redeemed)
	{
		add("checkout", token_of(member), receipt,
		    Json{{"at_utc", at},
			 {"available_at", at},
			 {"expires_at", nullptr},
			 {"local_date", at / 86400},
			 {"masked", fmt::format("****{:04d}", member)},
			 {"receipt", {{"eligible", earned * 100}, {"earned", earned}, {"redeemed", redeemed}}}},
		    earned - redeemed);
	}
	void enroll_referred(int member, int referrer)
	{
		add("enroll", token_of(member), "",
		    Json{{"masked", fmt::format("****{:04d}", member)},
			 {"referrer", token_of(referrer)},
			 {"referrer_masked", fmt::format("****{:04d}", referrer)},
			 {"local_date", 20790}},
		    0);
	}
	std::vector<PushEntry> slice(size_t from, size_t to) const
	{
		return {entries.begin() + static_cast<std::ptrdiff_t>(from),
			entries.begin() + static_cast<std::ptrdiff_t>(std::min(to, entries.size()))};
	}
};

int64_t balance(Store &s, int member)
{
	auto page = s.members_after(0, loy::central::members_page_max, now);
	REQUIRE(page);
	for (const auto &m : page->members)
		if (m.token == token_of(member))
			return m.balance;
	return 0;
}

} // namespace

TEST_CASE("stores: one terminal's batches retried to two servers at once are applied once")
{
	for (const auto &kind : kinds()) {
		SECTION(kind)
		{
			Place p(kind);
			Chain c{"T1"};
			for (int i = 0; i < 600; i++)
				c.checkout(i % 7, fmt::format("R-{}", i), 10, i % 5 == 0 ? 3 : 0);
			// Two servers, each pushing every batch of the chain (overlapping
			// windows, as a terminal whose answer was lost retries), at once.
			// Catch's macros are for the main thread: the stores are opened
			// here, the threads only count what failed.
			std::atomic<int> failures{0};
			auto server = [&](Store *s, size_t step) {
				for (size_t from = 0; from < c.entries.size(); from += step) {
					auto head = s->push("T1", "S1", "", c.slice(from > 50 ? from - 50 : 0, from + step), now,
							    now);
					// A batch may land after the other server's: then it only
					// repeats what is held (never a conflict, never twice).
					if (!head)
						failures++;
				}
			};
			auto sa = p.open(), sb = p.open();
			std::thread a(server, sa.get(), 200), b(server, sb.get(), 150);
			a.join();
			b.join();
			CHECK(failures.load() == 0);
			auto s = p.open();
			auto head = s->push("T1", "S1", "", {}, now, now);
			REQUIRE(head);
			CHECK(head->seq == 600);
			// Member m: 10 points a receipt, less 3 on every fifth receipt.
			std::map<int, int64_t> want;
			for (int i = 0; i < 600; i++)
				want[i % 7] += 10 - (i % 5 == 0 ? 3 : 0);
			for (const auto &[m, points] : want)
				CHECK(balance(*s, m) == points);
			auto report = s->report({}, now);
			REQUIRE(report);
			CHECK(report->points.issued == 6000);
			CHECK(report->points.redeemed == 120 * 3);
		}
	}
}

TEST_CASE("stores: terminals side by side on shared members end with the balances their entries say")
{
	for (const auto &kind : kinds()) {
		SECTION(kind)
		{
			Place p(kind);
			constexpr int terminals = 6, receipts = 300, members = 5;
			std::vector<Chain> chains;
			std::map<int, int64_t> want;
			for (int t = 0; t < terminals; t++) {
				Chain c{fmt::format("T{}", t)};
				for (int i = 0; i < receipts; i++) {
					const int m = (i * 7 + t) % members;
					// Redemptions beyond what the centre holds at the time
					// become debt, paid back by later points: the net is the
					// same in every order.
					const int64_t earned = 5 + (i % 3), redeemed = i % 4 == 0 ? 9 : 0;
					c.checkout(m, fmt::format("R-{}", i), earned, redeemed);
					want[m] += earned - redeemed;
				}
				chains.push_back(std::move(c));
			}
			std::atomic<int> failures{0};
			std::vector<std::unique_ptr<Store>> stores;
			for (int t = 0; t < terminals; t++)
				stores.push_back(p.open());
			std::vector<std::thread> threads;
			for (int t = 0; t < terminals; t++)
				threads.emplace_back([&, t] {
					Store *s = stores[static_cast<size_t>(t)].get();
					const Chain &c = chains[static_cast<size_t>(t)];
					for (size_t from = 0; from < c.entries.size(); from += 40)
						if (auto head = s->push(c.terminal, "S1", "", c.slice(from, from + 40), now, now);
						    !head)
							failures++;
				});
			for (auto &th : threads)
				th.join();
			CHECK(failures.load() == 0);
			auto s = p.open();
			for (const auto &[m, points] : want)
				CHECK(balance(*s, m) == points);
			// Each member once in the snapshot, its change number its own.
			auto page = s->members_after(0, loy::central::members_page_max, now);
			REQUIRE(page);
			CHECK(page->members.size() == static_cast<size_t>(members));
			std::set<int64_t> changes;
			for (const auto &m : page->members)
				changes.insert(m.change);
			CHECK(changes.size() == page->members.size());
			CHECK(page->watermark == *changes.rbegin());
			// Nothing after it: a terminal at that watermark is up to date.
			auto after = s->members_after(page->watermark, 10, now);
			REQUIRE(after);
			CHECK(after->members.empty());
		}
	}
}

TEST_CASE("stores: a push in either encoding is the same push; version 2's lines are checked")
{
	for (const auto &kind : kinds()) {
		SECTION(kind)
		{
			Place p(kind);
			auto s = p.open();
			Chain c{"T1"};
			for (int i = 0; i < 4; i++)
				c.checkout(1, fmt::format("R-{}", i), 10, 0);
			auto request = [](const char *protocol, const char *target, std::string body) {
				loy::net::Request r;
				r.method = "POST";
				r.target = target;
				r.headers = {{"X-Loyalty-Protocol", protocol}};
				r.body = std::move(body);
				return r;
			};
			// Entries 1-2 in version 1, 1-4 (a retry overlapping it) in 2.
			Json v1{{"terminal", "T1"}, {"store", "S1"}, {"entries", Json::array()}};
			for (const auto &e : c.slice(0, 2))
				v1["entries"].push_back(Json{{"seq", e.seq}, {"hash", e.hash}, {"body", e.body}});
			auto r = loy::central::handle_request(*s, request("1", "/v1/push", v1.dump()), "T1", now);
			CHECK(r.status == 200);
			CHECK(Json::parse(r.body)["acked_through"] == 2);
			std::string v2 = R"({"terminal":"T1","store":"S1","entries":4})"
					 "\n";
			for (const auto &e : c.entries)
				v2 += fmt::format("{} {} {}\n", e.seq, e.hash, e.body);
			r = loy::central::handle_request(*s, request("2", "/v2/push", v2), "T1", now);
			INFO(r.body);
			CHECK(r.status == 200);
			CHECK(Json::parse(r.body)["acked_through"] == 4);
			CHECK(Json::parse(r.body)["hash"] == c.entries.back().hash);
			CHECK(balance(*s, 1) == 40);

			auto refused = [&](const char *protocol, const char *target, const std::string &body,
					   const std::string &says) {
				auto a = loy::central::handle_request(*s, request(protocol, target, body), "T1", now);
				INFO(a.body);
				CHECK(a.status == 400);
				CHECK_THAT(a.body, Catch::Contains(says));
			};
			refused("1", "/v2/push", v2, "needs X-Loyalty-Protocol: 2");
			refused("3", "/v2/push", v2, "X-Loyalty-Protocol: 1 or 2");
			refused("2", "/v2/push", "{\"terminal\":\"T1\"", "the first line");
			refused("2", "/v2/push", R"({"terminal":"T1","store":"S1","entries":2})"
						 "\n1 abc {}\n",
				"line 2 is not");
			refused("2", "/v2/push", R"({"terminal":"T1","store":"S1","entries":2})"
						 "\n" +
							 fmt::format("1 {} {}\n", c.entries[0].hash, c.entries[0].body),
				"2 entries announced, 1 lines came");
			refused("2", "/v2/push", R"({"terminal":"T1","store":"S1","entries":0})"
						 "\nmore\n",
				"bytes after the 0 entries");
			refused("2", "/v2/push", R"({"terminal":"T1","store":"S1","entries":501})"
						 "\n",
				"entries");
			CHECK(balance(*s, 1) == 40);
		}
	}
}

// A checkout of `eligible` spend at `at`, its points available and expiring
// as given.
void checkout_at(Chain &c, const std::string &token, const std::string &receipt, int64_t at, int64_t available,
		 std::optional<int64_t> expires, int64_t eligible, int64_t earned)
{
	c.add("checkout", token, receipt,
	      Json{{"at_utc", at},
		   {"available_at", available},
		   {"expires_at", expires ? Json(*expires) : Json(nullptr)},
		   {"receipt", {{"eligible", eligible}, {"earned", earned}, {"redeemed", 0}}}},
	      earned);
}

TEST_CASE("stores: a member's figures at their edges: the qualifying window's first second, pending and "
	  "expiring points, swept or not")
{
	const int64_t day = 86400, window = loy::central::qualifying_window_days * day;
	const int64_t from = now - window; // the window is (from, now]
	const int64_t next_day = (from / day + 1) * day;
	REQUIRE(from % day != 0); // the window starts inside a day: both parts are read
	for (const auto &kind : kinds()) {
		INFO(kind);
		Place p(kind);
		auto s = p.open();
		auto key = s->token_key();
		REQUIRE(key);
		const std::string card = "4111111111111111";
		const std::string token = loy::crypto::to_hex(loy::crypto::hmac_sha256(*key, card));
		Chain c{"T1"};
		checkout_at(c, token, "R-day-before", from - day, 0, std::nullopt, 10000, 1);
		checkout_at(c, token, "R-window-start", from, 0, std::nullopt, 1000, 2);
		checkout_at(c, token, "R-first-second", from + 1, 0, std::nullopt, 200, 3);
		checkout_at(c, token, "R-next-day", next_day, 0, std::nullopt, 30, 4);
		checkout_at(c, token, "R-pending", now - 3600, now + day, now + 10 * day, 4, 7);
		checkout_at(c, token, "R-expiring", now - 7200, 0, now + 100, 0, 5);
		c.add("refund", token, "R-first-second",
		      Json{{"reversed", 1}, {"returned", 0}, {"spend_reversed", 50}}, -1);
		REQUIRE(s->push("T1", "S1", "", c.entries, now, now));

		auto member = [&](int64_t at) {
			auto page = s->members_after(0, loy::central::members_page_max, at);
			REQUIRE(page);
			REQUIRE(page->members.size() == 1);
			return page->members[0];
		};
		auto m = member(now);
		CHECK(m.qualifying_spend == 150 + 30 + 4);
		CHECK(m.balance == 1 + 2 + 3 - 1 + 4 + 5);
		CHECK(m.pending == 7);
		CHECK(m.next_expiry == std::optional<std::string>("2026-11-18"));
		// Past R-expiring's last second, before any sweep: the balance
		// leaves its points out already.
		auto b = s->balance(card, now + 100);
		REQUIRE(b);
		CHECK(b->member.balance == 1 + 2 + 3 - 1 + 4);
		// A second past the window's start, R-first-second is out of it.
		m = member(now + 1);
		CHECK(m.qualifying_spend == 30 + 4);
		// Swept (a pull sweeps first): the same figures.
		m = member(now + 100);
		CHECK(m.balance == 1 + 2 + 3 - 1 + 4);
		CHECK(m.next_expiry == std::optional<std::string>("2026-11-28"));
		// The pending points come in a day later, and go 10 days after.
		m = member(now + day);
		CHECK(m.pending == 0);
		CHECK(m.balance == 1 + 2 + 3 - 1 + 4 + 7);
		m = member(now + 10 * day);
		CHECK(m.balance == 1 + 2 + 3 - 1 + 4);
		CHECK(!m.next_expiry);
	}
}

TEST_CASE("stores: PostgreSQL's schema migrates forward, once, and a newer one is refused")
{
	for (const auto &kind : kinds()) {
		if (kind != "postgresql")
			continue;
		Place p(kind);
		{
			auto s = p.open();
			Chain c{"T1"};
			c.checkout(1, "R-1", 10, 0);
			c.checkout(1, "R-2", 5, 0);
			REQUIRE(s->push("T1", "S1", "", c.entries, now, now));
		}
		auto conn = loy::central::sql::open_postgresql(p.database);
		REQUIRE(conn);
		auto &db = **conn;
		auto scalar = [&](const std::string &sql) {
			auto rows = db.query(sql);
			REQUIRE(rows);
			REQUIRE(rows->size() == 1);
			return rows->int64(0, 0);
		};
		CHECK(scalar("SELECT CAST(value AS BIGINT) FROM meta WHERE key = 'schema_version'") == 12);
		// What version 1 had: no members' totals.
		REQUIRE(db.script("ALTER TABLE members DROP COLUMN points; ALTER TABLE members DROP COLUMN spend; "
				  "DROP TABLE spend_days; DROP INDEX lots_pending; "
				  "CREATE INDEX lots_by_receipt ON lots (terminal_id, receipt_id); "
				  "DROP TABLE member_segments; DROP TABLE donations; DROP TABLE stamp_lots; "
				  "DROP TABLE stamp_debts; DROP TABLE memberships; DROP TABLE referrals; DROP TABLE bonuses; "
				  "DROP INDEX receipts_by_member_day; DROP INDEX receipts_by_day; "
				  "ALTER TABLE receipts DROP COLUMN local_date; ALTER TABLE receipts DROP COLUMN refunded_at; "
				  "DROP TABLE receipt_categories; DROP TABLE challenge_awards; DROP TABLE receipt_campaigns; "
				  "DROP TABLE fraud_flags; DROP TABLE admins; DROP TABLE audit; DROP TABLE sessions; "
				  "UPDATE meta SET value = '1' WHERE key = 'schema_version'"));
		{
			auto s = p.open(); // migrates, back-filling the totals from lots and receipts
			CHECK(balance(*s, 1) == 15);
			// Two more programs opening it find it current.
			auto again = p.open();
			auto third = p.open();
		}
		CHECK(scalar("SELECT CAST(value AS BIGINT) FROM meta WHERE key = 'schema_version'") == 12);
		CHECK(scalar("SELECT points FROM members") == 15);
		CHECK(scalar("SELECT spend FROM members") == 150);
		CHECK(scalar("SELECT sum(eligible) FROM spend_days") == 150);
		// A database of a newer program is left alone.
		REQUIRE(db.script("UPDATE meta SET value = '99' WHERE key = 'schema_version'"));
		auto refused = loy::central::open_store(p.dir.path(), p.database);
		REQUIRE_FALSE(refused);
		CHECK(refused.status().code() == loy::Code::storage);
		CHECK_THAT(refused.status().message(), Catch::Contains("schema version 99 is newer"));
		CHECK(scalar("SELECT CAST(value AS BIGINT) FROM meta WHERE key = 'schema_version'") == 99);
	}
}

TEST_CASE("stores: the report's KPIs over dates and a store, computed by hand")
{
	constexpr int64_t d0 = 20790; // 2026-12-03
	for (const auto &kind : kinds()) {
		SECTION(kind)
		{
			Place p(kind);
			auto s = p.open();
			std::ifstream in(LOYALTY_EXAMPLES "/programs/cafe-rewards.json"); // point_value 1
			std::stringstream doc;
			doc << in.rdbuf();
			REQUIRE(s->publish_program(doc.str(), now));
			Chain t1{"T1"}, t2{"T2"};
			t1.sale(1, "R1", d0, 1000, 10, 0, {{"double", 2}});
			t1.sale(1, "R2", d0 + 1, 2000, 20, 5, {{"double", 4}});
			t1.sale(2, "R3", d0 + 1, 500, 5, 0);
			t1.refund(1, "R2", 4, 0, 400); // counts on R2's day
			t2.sale(3, "R4", d0 + 2, 3000, 30, 10, {{"big-spend", 6}});
			REQUIRE(s->push("T1", "S1", "", t1.entries, now, now));
			REQUIRE(s->push("T2", "S2", "", t2.entries, now, now));

			auto all = s->report({}, now);
			INFO(all.status().message());
			REQUIRE(all);
			CHECK(all->members == 3);
			CHECK(all->points.issued == 61); // 10 + 20 - 4 + 5 + 30
			CHECK(all->points.redeemed == 15);
			CHECK(all->points.outstanding() == 46);
			CHECK(all->liability == 46);
			CHECK(all->receipts == 4);
			CHECK(all->spend == 6100); // 1000 + 1600 + 500 + 3000
			CHECK(all->average_basket == 1525);
			CHECK(all->active_members == 3);
			CHECK(all->repeat_members == 1);
			CHECK(all->new_members == 3);
			CHECK(all->redemption_rate_bp == 2459); // floor(15 × 10000 / 61)
			CHECK(all->breakage_bp == 0);
			CHECK(all->repeat_rate_bp == 3333);
			REQUIRE(all->campaigns.size() == 2);
			CHECK((all->campaigns[0].id == "big-spend" && all->campaigns[0].points == 6 &&
			       all->campaigns[0].spend == 3000));
			CHECK((all->campaigns[1].id == "double" && all->campaigns[1].points == 6 &&
			       all->campaigns[1].spend == 3000));
			REQUIRE(all->days.size() == 3);
			CHECK((all->days[1].date == d0 + 1 && all->days[1].receipts == 2 && all->days[1].members == 2 &&
			       all->days[1].spend == 2100 && all->days[1].points.issued == 21 &&
			       all->days[1].points.redeemed == 5));

			// [d0 + 1, d0 + 2): R2 and its refund, R3.
			auto mid = s->report(loy::central::ReportQuery{d0 + 1, d0 + 2, std::nullopt}, now);
			REQUIRE(mid);
			CHECK(mid->points.issued == 21);
			CHECK(mid->points.redeemed == 5);
			CHECK(mid->active_members == 2);
			CHECK(mid->repeat_members == 0);
			CHECK(mid->new_members == 1); // member 1's first receipt was on d0
			CHECK(mid->repeat_rate_bp == 0);
			REQUIRE(mid->campaigns.size() == 1);
			CHECK((mid->campaigns[0].id == "double" && mid->campaigns[0].points == 4));
			REQUIRE(mid->stores.size() == 1);
			CHECK(mid->stores[0].store == "S1");
			CHECK(mid->members == 3); // every member, whatever the range

			// One store, every date.
			auto s2 = s->report(loy::central::ReportQuery{std::nullopt, std::nullopt, std::string("S2")}, now);
			REQUIRE(s2);
			CHECK(s2->points.issued == 30);
			CHECK(s2->points.redeemed == 10);
			CHECK(s2->redemption_rate_bp == 3333);
			CHECK(s2->active_members == 1);
			REQUIRE(s2->campaigns.size() == 1);
			CHECK(s2->campaigns[0].id == "big-spend");
			REQUIRE(s2->stores.size() == 1);

			// A range with nothing in it.
			auto none = s->report(loy::central::ReportQuery{d0 + 10, d0 + 11, std::nullopt}, now);
			REQUIRE(none);
			CHECK((none->points.issued == 0 && none->receipts == 0 && none->average_basket == 0 &&
			       none->redemption_rate_bp == 0 && none->days.empty() && none->stores.empty()));
		}
	}
}

TEST_CASE("stores: fraud rules on histories that trigger each, and on clean ones")
{
	using loy::central::FraudFlag;
	constexpr int64_t t0 = 20790 * 86400 + 9 * 3600; // 2026-12-03T09:00:00Z
	const auto stamp = [](int64_t utc) { return loy::format_timestamp(loy::Timestamp{utc, 0}); };
	for (const auto &kind : kinds()) {
		SECTION(kind)
		{
			Place p(kind);
			auto s = p.open();
			Chain t1{"T1"}, t2{"T2"}, t3{"T3"};
			// Enough points for every redemption below but member 11's.
			for (int m : {4, 5, 9, 10})
				t1.sale_at(m, fmt::format("SEED-{}", m), t0 - 86400, 1000, 0);
			// till_velocity: 21 receipts in 40 minutes (flagged at the 21st);
			// 20 in 60 minutes; 21 over 3 hours and a half.
			for (int i = 0; i < 21; i++)
				t1.sale_at(1, fmt::format("V1-{}", i), t0 + i * 120, 1, 0);
			for (int i = 0; i < 20; i++)
				t1.sale_at(2, fmt::format("V2-{}", i), t0 + i * 180, 1, 0);
			for (int i = 0; i < 21; i++)
				t1.sale_at(3, fmt::format("V3-{}", i), t0 + i * 600, 1, 0);
			// redeem_spread: member 4 at three stores in a day; member 5 at two,
			// the third the next day.
			t1.sale_at(4, "S4-1", t0 + 3600, 0, 10);
			t2.sale_at(4, "S4-2", t0 + 7200, 0, 10);
			t3.sale_at(4, "S4-3", t0 + 10800, 0, 10);
			t1.sale_at(5, "S5-1", t0 + 3600, 0, 10);
			t2.sale_at(5, "S5-2", t0 + 7200, 0, 10);
			t3.sale_at(5, "S5-3", t0 + 86400, 0, 10);
			// refund_loop: three receipts refunded in full within 7 days; two;
			// three refunded after 8 days.
			for (int m : {6, 7, 8})
				for (int i = 0; i < (m == 7 ? 2 : 3); i++) {
					const std::string r = fmt::format("L{}-{}", m, i);
					t2.sale_at(m, r, t0 + i * 60, 10, 0);
					t2.device_time = stamp(t0 + i * 60 + (m == 8 ? 8 * 86400 : 1800));
					t2.refund(m, r, 10, 0, 1000, true);
					t2.device_time = "2026-11-23T09:00:00Z";
				}
			// referral_burst: five new cards of member 9 within a day; four of 10.
			for (int i = 0; i < 5; i++) {
				t3.device_time = stamp(t0 + i * 3600);
				t3.enroll_referred(100 + i, 9);
			}
			for (int i = 0; i < 4; i++) {
				t3.device_time = stamp(t0 + i * 3600);
				t3.enroll_referred(200 + i, 10);
			}
			t3.device_time = "2026-11-23T09:00:00Z";
			// negative_balance: member 11 redeems what it does not have.
			t1.sale_at(11, "N-1", t0 + 600, 0, 50);
			REQUIRE(s->push("T1", "S1", "", t1.entries, now, now));
			REQUIRE(s->push("T2", "S2", "", t2.entries, now, now));
			REQUIRE(s->push("T3", "S3", "", t3.entries, now, now));

			loy::central::FraudRules rules;
			rules.block.insert("till_velocity");
			auto flags = s->fraud(rules);
			INFO(flags.status().message());
			REQUIRE(flags);
			std::map<std::string, FraudFlag> by;
			for (const auto &f : *flags)
				by.emplace(f.card + " " + f.rule, f);
			std::vector<std::string> got;
			for (const auto &[key, f] : by)
				got.push_back(key);
			CHECK(got == std::vector<std::string>{"****0001 till_velocity", "****0004 redeem_spread",
							       "****0006 refund_loop", "****0009 referral_burst",
							       "****0011 negative_balance"});
			CHECK(by["****0001 till_velocity"].first_seen == t0 + 20 * 120);
			CHECK_THAT(by["****0001 till_velocity"].detail, Catch::Contains("terminal T1"));
			CHECK(by["****0004 redeem_spread"].first_seen == t0 + 10800);
			CHECK(by["****0006 refund_loop"].first_seen == t0 + 2 * 60 + 1800);
			CHECK(by["****0009 referral_burst"].first_seen == t0 + 4 * 3600);
			CHECK(by["****0011 negative_balance"].first_seen == t0 + 600);
			// In first_seen order.
			for (size_t i = 1; i < flags->size(); i++)
				CHECK((*flags)[i - 1].first_seen <= (*flags)[i].first_seen);
			// The till_velocity card is blocked, and the terminals learn it.
			auto blocked = s->members_after(0, loy::central::members_page_max, now);
			REQUIRE(blocked);
			for (const auto &m : blocked->members)
				CHECK(m.blocked == (m.token == token_of(1)));
			// Run again: the same flags, first seen as before.
			auto again = s->fraud(loy::central::FraudRules{});
			REQUIRE(again);
			CHECK(again->size() == flags->size());

			// Thresholds from the configuration: 20 receipts in 60 minutes
			// are more than 19.
			loy::central::FraudRules strict;
			strict.till_receipts = 19;
			auto more = s->fraud(strict);
			REQUIRE(more);
			CHECK(more->size() == flags->size() + 1);
		}
	}
}

TEST_CASE("stores: admin accounts, a TOTP step spent once, each change audited")
{
	using namespace loy::central;
	for (const auto &kind : kinds()) {
		SECTION(kind)
		{
			Place p(kind);
			auto opened = p.open();
			Store &s = *opened;
			AdminAccount a{"anna", Role::manager, "pbkdf2-sha256$1$00$00", "MZXW6YTBOI", -1};
			REQUIRE(s.add_admin(a, 1000));
			CHECK(s.add_admin(a, 1001).code() == loy::Code::bad_argument);
			auto got = s.admin("anna");
			REQUIRE(got);
			REQUIRE(*got);
			CHECK((*got)->role == Role::manager);
			CHECK((*got)->totp_last_step == -1);
			CHECK(s.spend_totp_step("anna", 10).value());
			CHECK_FALSE(s.spend_totp_step("anna", 10).value());
			CHECK_FALSE(s.spend_totp_step("anna", 9).value());
			CHECK(s.spend_totp_step("anna", 11).value());
			CHECK_FALSE(s.spend_totp_step("bela", 11).value());
			REQUIRE(s.audit(AuditEntry{"anna", "block", "card ****7895", 1002}));
			REQUIRE(s.remove_admin("anna", 1003));
			CHECK(s.remove_admin("anna", 1004).code() == loy::Code::bad_argument);
			CHECK_FALSE(s.admin("anna").value());
			auto log = s.audit_log(10);
			REQUIRE(log);
			REQUIRE(log->size() == 3);
			CHECK((*log)[0].action == "admin remove");
			CHECK((*log)[1].user == "anna");
			CHECK((*log)[1].action == "block");
			CHECK((*log)[2].action == "admin add");
			CHECK((*log)[2].at_utc == 1000);
		}
	}
}

TEST_CASE("stores: a settlement past 64 bits is refused, naming the partner")
{
	constexpr int64_t d0 = 20790;
	for (const auto &kind : kinds()) {
		SECTION(kind)
		{
			Place p(kind);
			auto s = p.open();
			std::ifstream in(LOYALTY_EXAMPLES "/programs/cafe-rewards.json");
			std::stringstream text;
			text << in.rdbuf();
			Json doc = Json::parse(text.str());
			doc["spec"] = 2;
			doc["version"] = 8;
			doc["partners"] = Json::array({{{"id", "big-partner"},
							{"name", "Big"},
							{"stores", {"S1"}},
							{"issue_cost", 1000000},
							{"redeem_credit", 1}}});
			auto published = s->publish_program(doc.dump(), now);
			INFO(published.status().message());
			REQUIRE(published);
			Chain t1{"T1"};
			// 10^13 points each: their sum × 10^6 minor units is past 2^63.
			for (int i = 0; i < 3; i++)
				t1.sale(1, fmt::format("BIG-{}", i), d0, 1'000'000'000'000'000, 10'000'000'000'000, 0);
			REQUIRE(s->push("T1", "S1", "", t1.entries, now, now));
			auto r = s->settlement(d0, d0 + 1);
			REQUIRE_FALSE(r);
			CHECK(r.status().code() == loy::Code::overflow);
			CHECK_THAT(r.status().message(), Catch::Contains("big-partner"));
			// A range without those receipts settles.
			CHECK(s->settlement(d0 + 1, d0 + 2));
		}
	}
}
