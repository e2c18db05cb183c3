// verify() against SQL tampering of the file, one row per kind of change with the
// entry it must name first; verify runs in a forked child so a crash fails a row.
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/status.hpp"
#include "fixture.hpp"
#include "base/crypto.hpp"
#include "storage/ledger.hpp"
#include "storage/terminal.hpp"

using namespace storage_test;
using loy::Code;

namespace {

std::string quote(const std::string &text)
{
	std::string out = "'";
	for (char c : text) {
		if (c == '\'')
			out += '\'';
		out += c;
	}
	return out + "'";
}

std::string hex_literal(const loy::crypto::Digest &d) { return "X'" + loy::crypto::to_hex(d) + "'"; }

loy::crypto::Digest digest_of(const std::string &blob)
{
	loy::crypto::Digest d{};
	REQUIRE(blob.size() == d.size());
	std::copy(blob.begin(), blob.end(), d.begin());
	return d;
}

loy::crypto::Key other_key()
{
	loy::crypto::Key k{};
	for (size_t i = 0; i < k.size(); i++)
		k[i] = static_cast<uint8_t>(0xA5 ^ i);
	return k;
}

// The kind-specific data of an entry, from its body, in its own key order.
std::string data_of(const std::string &body)
{
	return nlohmann::ordered_json::parse(body).at("data").dump();
}

// Rewrites entries seq ≥ from as a forger without the terminal's key would:
// `change` alters entry `from`, then every body, hash and MAC from there on
// is recomputed so that the chain links up, MACed under another key.
void rechain(RawDb &db, int64_t from, const std::function<void(loy::Entry &)> &change,
	     const loy::crypto::Key &key = other_key())
{
	auto prev_rows = db.rows(fmt::format("SELECT hash FROM journal WHERE seq = {}", from - 1));
	loy::crypto::Digest prev{};
	if (!prev_rows.empty())
		prev = digest_of(db.blob(fmt::format("SELECT hash FROM journal WHERE seq = {}", from - 1)));
	auto rows = db.rows(fmt::format("SELECT seq, kind, receipt_id, token, program_id, program_version, "
					"device_time, points, body FROM journal WHERE seq >= {} ORDER BY seq",
					from));
	for (const auto &r : rows) {
		loy::Entry e;
		e.seq = std::stoll(r[0]);
		e.kind = r[1];
		e.receipt_id = r[2] == "NULL" ? "" : r[2];
		e.token = r[3];
		e.program_id = r[4];
		e.program_version = std::stoll(r[5]);
		e.device_time = r[6];
		e.points = std::stoll(r[7]);
		e.data = data_of(r[8]);
		if (e.seq == from)
			change(e);
		const std::string body = loy::entry_body(e, "T1", prev);
		const auto hash = loy::crypto::sha256(body);
		const auto mac = loy::crypto::hmac_sha256(
			key, std::string_view(reinterpret_cast<const char *>(hash.data()), hash.size()));
		db.exec(fmt::format("UPDATE journal SET points = {}, body = {}, hash = {}, mac = {} WHERE seq = {}",
				    e.points, quote(body), hex_literal(hash), hex_literal(mac), e.seq));
		prev = hash;
	}
}

// The ledger every row starts from: ~50 entries of every kind.
struct Template {
	TempDir tmp;
	int64_t last = 0;          // seq of the last entry
	int64_t mid = 0;           // a checkout in the middle
	int64_t mid_refund = 0;    // a refund in the middle
	std::string mid_receipt;   // the receipt of `mid`
	std::string token_a, token_b;
	Template()
	{
		{
			auto t = make_terminal(tmp.data());
			build_mixed_ledger(*t, 36);
			// End on a checkout: deleting the last entry then leaves a
			// receipts row and member points that no entry explains.
			ok_json(t->checkout(card_a, basket("R-last", day_at(40), {beans}),
					    loy::Redemption::none(), utc_of(day_at(40))));
		}
		RawDb db(ledger_path(tmp.data()));
		last = db.integer("SELECT max(seq) FROM journal");
		mid = db.integer(fmt::format("SELECT min(seq) FROM journal WHERE kind = 'checkout' AND seq >= {}",
					     last / 2));
		mid_refund = db.integer(fmt::format(
			"SELECT min(seq) FROM journal WHERE kind = 'refund' AND seq >= {}", last / 2));
		mid_receipt = db.text(fmt::format("SELECT receipt_id FROM journal WHERE seq = {}", mid));
		token_a = db.text("SELECT token FROM journal WHERE seq = 1");
		token_b = db.text("SELECT token FROM journal WHERE seq = 2");
	}
	// A copy of the ledger in a new temporary dir.
	void copy_to(const std::string &dir) const
	{
		std::filesystem::copy(tmp.data(), dir, std::filesystem::copy_options::recursive);
	}
};

const Template &the_template()
{
	static const Template t;
	return t;
}

// verify() in a child; its verdict (or error) as JSON.
Json verify_in_child(const std::string &dir, ChildResult &child)
{
	child = run_child([&](const Report &rep) {
		auto t = loy::Terminal::open(dir);
		Json out;
		if (!t) {
			out["error"] = loy::code_name(t.status().code());
			out["message"] = t.status().message();
		} else {
			auto v = t.value()->verify();
			if (!v) {
				out["error"] = loy::code_name(v.status().code());
				out["message"] = v.status().message();
			} else {
				out["ok"] = v->ok;
				out["entries"] = v->entries;
				out["first_bad"] = v->first_bad;
				out["problem"] = v->problem;
			}
		}
		rep.line(out.dump(-1, ' ', false, Json::error_handler_t::replace));
		return 0;
	});
	if (!child.exited || child.code != 0)
		return Json();
	return Json::parse(child.out);
}

} // namespace

TEST_CASE("verify: an untampered ledger of ~50 mixed operations is ok")
{
	const Template &tpl = the_template();
	REQUIRE(tpl.last >= 48);
	TempDir tmp;
	tpl.copy_to(tmp.data());
	ChildResult child;
	Json v = verify_in_child(tmp.data(), child);
	INFO(child.describe());
	REQUIRE(v.is_object());
	CHECK(v["ok"] == true);
	CHECK(v["entries"] == tpl.last);
	CHECK(v["first_bad"] == 0);
	for (const char *kind : {"enroll", "checkout", "refund"})
		CHECK(count_kind(tmp.data(), kind) > 2);
	CHECK(RawDb(ledger_path(tmp.data())).integer("SELECT count(*) FROM receipts WHERE redeemed > 0") > 2);
}

TEST_CASE("verify names the first tampered entry")
{
	const Template &tpl = the_template();
	const int64_t N = tpl.last, M = tpl.mid, F = tpl.mid_refund;
	REQUIRE(M > 3);
	REQUIRE(M + 3 < N);
	struct Row {
		const char *name;
		std::function<void(RawDb &)> tamper;
		int64_t first_bad;
		int64_t entries;
	};
	const std::string m = std::to_string(M);
	// Tampering done by one SQL statement.
	auto sql = [](const std::string &statement) {
		return [statement](RawDb &db) { db.exec(statement); };
	};
	const Row rows[] = {
		{"points of a checkout", sql("UPDATE journal SET points = points + 1000 WHERE seq = " + m),
		 M, N},
		{"points of a refund",
		 sql(fmt::format("UPDATE journal SET points = points + 5 WHERE seq = {}", F)),
		 F, N},
		{"data inside the body (still JSON)",
		 [&](RawDb &db) {
			 db.exec("UPDATE journal SET body = replace(body, '\"earned\":', '\"earned\":9') WHERE seq = " + m);
			 REQUIRE(db.integer("SELECT json_valid(body) FROM journal WHERE seq = " + m) == 1);
		 },
		 M, N},
		{"body no longer JSON",
		 sql("UPDATE journal SET body = '{' WHERE seq = " + m), M, N},
		{"body's points",
		 sql("UPDATE journal SET body = replace(body, '\"points\":', '\"points\":1') WHERE seq = " + m),
		 M, N},
		{"body and points changed, hash recomputed (no key)",
		 [&](RawDb &db) {
			 db.exec("UPDATE journal SET points = points + 1000 WHERE seq = " + m);
			 auto r = db.rows("SELECT seq, kind, receipt_id, token, program_id, program_version, "
					  "device_time, points, body FROM journal WHERE seq = " + m);
			 loy::Entry e;
			 e.seq = M;
			 e.kind = r[0][1];
			 e.receipt_id = r[0][2];
			 e.token = r[0][3];
			 e.program_id = r[0][4];
			 e.program_version = std::stoll(r[0][5]);
			 e.device_time = r[0][6];
			 e.points = std::stoll(r[0][7]);
			 e.data = data_of(r[0][8]);
			 auto prev = digest_of(db.blob(fmt::format("SELECT hash FROM journal WHERE seq = {}", M - 1)));
			 const std::string body = loy::entry_body(e, "T1", prev);
			 db.exec("UPDATE journal SET body = " + quote(body) + ", hash = " +
				 hex_literal(loy::crypto::sha256(body)) + " WHERE seq = " + m);
		 },
		 M, N},
		{"kind of an entry", sql("UPDATE journal SET kind = 'adjust' WHERE seq = " + m), M, N},
		{"member token of an entry",
		 sql("UPDATE journal SET token = " + quote(tpl.token_b) + " WHERE seq = " + m), M, N},
		{"receipt id of an entry",
		 sql("UPDATE journal SET receipt_id = 'R-999' WHERE seq = " + m), M, N},
		{"device time of an entry",
		 sql("UPDATE journal SET device_time = '2020-01-01T00:00:00Z' WHERE seq = " + m),
		 M, N},
		{"device time of an entry, not UTF-8",
		 sql("UPDATE journal SET device_time = CAST(X'C328' AS TEXT) WHERE seq = " + m),
		 M, N},
		{"hash of an entry, random bytes",
		 sql("UPDATE journal SET hash = randomblob(32) WHERE seq = " + m), M, N},
		{"MAC of an entry, random bytes",
		 sql("UPDATE journal SET mac = randomblob(32) WHERE seq = " + m), M, N},
		{"MAC of an entry, one byte short",
		 sql("UPDATE journal SET mac = substr(mac, 1, 31) WHERE seq = " + m), M, N},
		{"MAC of an entry, empty",
		 sql("UPDATE journal SET mac = x'' WHERE seq = " + m), M, N},
		{"an entry re-MACed with another key",
		 [&](RawDb &db) {
			 auto hash = digest_of(db.blob("SELECT hash FROM journal WHERE seq = " + m));
			 auto mac = loy::crypto::hmac_sha256(
				 other_key(), std::string_view(reinterpret_cast<const char *>(hash.data()), hash.size()));
			 db.exec("UPDATE journal SET mac = " + hex_literal(mac) + " WHERE seq = " + m);
		 },
		 M, N},
		{"an entry rewritten and every later one re-chained under another key",
		 [&](RawDb &db) { rechain(db, M, [](loy::Entry &e) { e.points += 1000; }); }, M, N},
		// The control of the two rows above: the same rewriting under the
		// terminal's own key, changing nothing, verifies (so those rows fail
		// on the MAC alone, not on a mistake of the forger's).
		{"control: the journal re-chained unchanged under the terminal's key",
		 [&](RawDb &db) {
			 auto key = loy::crypto::read_key_file(tpl.tmp.data() + "/ledger.key");
			 REQUIRE(key);
			 rechain(db, 1, [](loy::Entry &) {}, *key);
		 },
		 0, N},
		{"the whole journal re-chained under another key",
		 [&](RawDb &db) { rechain(db, 1, [](loy::Entry &) {}); }, 1, N},
		{"a middle entry deleted", sql("DELETE FROM journal WHERE seq = " + m), M, N - 1},
		{"the first entry deleted", sql("DELETE FROM journal WHERE seq = 1"), 1, N - 1},
		{"the last entry deleted",
		 sql(fmt::format("DELETE FROM journal WHERE seq = {}", N)), N, N - 1},
		{"the last three entries deleted",
		 sql(fmt::format("DELETE FROM journal WHERE seq > {}", N - 3)), N - 2, N - 3},
		{"every entry deleted", sql("DELETE FROM journal"), 1, 0},
		{"two entries' seq swapped",
		 [&](RawDb &db) {
			 db.exec(fmt::format("UPDATE journal SET seq = -1 WHERE seq = {0}; "
					     "UPDATE journal SET seq = {0} WHERE seq = {1}; "
					     "UPDATE journal SET seq = {1} WHERE seq = -1;",
					     M, M + 3));
		 },
		 M, N},
		{"an entry copied to the end",
		 [&](RawDb &db) {
			 db.exec(fmt::format("INSERT INTO journal SELECT {}, kind, receipt_id, token, program_id, "
					     "program_version, device_time, points, body, hash, mac "
					     "FROM journal WHERE seq = {}",
					     N + 1, M - 1));
		 },
		 N + 1, N + 1},
		{"an entry moved to a later seq (gap)",
		 sql(fmt::format("UPDATE journal SET seq = {} WHERE seq = {}", N + 5, N)),
		 N, N},
		{"members: local points",
		 sql("UPDATE members SET local_points = local_points + 500 WHERE token = " + quote(tpl.token_a)),
		 N, N},
		{"members: local spend (a tier bought)",
		 sql("UPDATE members SET local_spend = 60000 WHERE token = " + quote(tpl.token_a)),
		 N, N},
		{"members: enrolled flag",
		 sql("UPDATE members SET enrolled = 0 WHERE token = " + quote(tpl.token_a)), N, N},
		{"members: a row deleted",
		 sql("DELETE FROM members WHERE token = " + quote(tpl.token_b)), N, N},
		{"members: a member no entry knows",
		 [&](RawDb &db) {
			 db.exec("INSERT INTO members (token, masked, enrolled, local_points) "
				 "VALUES ('ab', '****0000', 1, 5000)");
		 },
		 N, N},
		{"receipts: earned",
		 sql("UPDATE receipts SET earned = earned + 100 WHERE receipt_id = " + quote(tpl.mid_receipt)),
		 M, N},
		{"receipts: redeemed",
		 sql("UPDATE receipts SET redeemed = redeemed + 100 WHERE receipt_id = " + quote(tpl.mid_receipt)),
		 M, N},
		{"receipts: reversed (to refund twice)",
		 sql("UPDATE receipts SET reversed = 0 WHERE receipt_id = 'R-2'"),
		 RawDb(ledger_path(tpl.tmp.data())).integer("SELECT seq FROM receipts WHERE receipt_id = 'R-2'"), N},
		{"receipts: last_seq (refunds would read another entry)",
		 sql("UPDATE receipts SET last_seq = 1 WHERE receipt_id = " + quote(tpl.mid_receipt)),
		 M, N},
		{"receipts: request digest",
		 sql("UPDATE receipts SET request = 'x' WHERE receipt_id = " + quote(tpl.mid_receipt)),
		 M, N},
		{"receipts: a row deleted",
		 sql("DELETE FROM receipts WHERE receipt_id = " + quote(tpl.mid_receipt)), M, N},
	};
	for (const Row &row : rows) {
		CAPTURE(row.name);
		TempDir tmp;
		tpl.copy_to(tmp.data());
		{
			RawDb db(ledger_path(tmp.data()));
			row.tamper(db);
		}
		ChildResult child;
		Json v = verify_in_child(tmp.data(), child);
		INFO(child.describe());
		// A crash or an exception escaping verify() is a failed row.
		CHECK(child.exited);
		CHECK(child.code == 0);
		if (!v.is_object())
			continue;
		if (v.contains("error")) {
			// A tampered file may also be refused as a whole.
			CHECK(v["error"] == "storage");
			continue;
		}
		// first_bad 0: the row expects the ledger to verify.
		CHECK(v["ok"] == (row.first_bad == 0));
		CHECK(v["first_bad"] == row.first_bad);
		CHECK(v["entries"] == row.entries);
		CHECK(v["problem"].get<std::string>().empty() == (row.first_bad == 0));
	}
}

// Rows outside the journal that decide points or identity are sealed
// (Ledger::seal): an edit with write access to the data dir is named by
// verify, and refused where the row is read, before any point moves.
TEST_CASE("sealed rows: an edit of a setting, a program or the centre's snapshot is found")
{
	const Template &tpl = the_template();
	const int64_t now = utc_of(day_at(41));
	const std::string forged_member =
		"INSERT INTO server_members (token, masked, balance, pending, spend, tier, blocked) VALUES (" +
		quote(tpl.token_b) + ", '****1486', 1000000, 0, 0, 'Gold', 0)";
	struct Row {
		const char *name;
		std::string sql;
		const char *problem;                     // what verify names
		std::function<loy::Status(loy::Terminal &)> use; // the row read for real; nullptr: at open
	};
	const Row rows[] = {
		{"the stored program earns 100 times more",
		 "UPDATE programs SET document = replace(document, '\"points\": 1,', '\"points\": 100,')",
		 "program cafe-rewards v7 does not match its seal", nullptr},
		{"a snapshot row slipped in: a balance of a million", forged_member,
		 "the centre's snapshot of member ****1486 does not match its seal",
		 [&](loy::Terminal &t) {
			 return t.checkout(card_b, basket("S-2", day_at(41), {beans}), loy::Redemption::of_points(1000), now)
				 .status();
		 }},
		{"the store id", "UPDATE meta SET value = 'S9' WHERE key = 'store'", "setting store does not match", nullptr},
		{"the acknowledgement moved on", "UPDATE meta SET value = '9' WHERE key = 'acked_through'",
		 "setting acked_through does not match",
		 [&](loy::Terminal &t) { return t.status().status(); }},
		{"a seal deleted", "UPDATE meta SET mac = NULL WHERE key = 'program_version'",
		 "setting program_version does not match", nullptr},
	};
	for (const Row &row : rows) {
		CAPTURE(row.name);
		TempDir tmp;
		tpl.copy_to(tmp.data());
		RawDb(ledger_path(tmp.data())).exec(row.sql);
		auto t = loy::Terminal::open(tmp.data());
		if (!row.use) {
			// Read at open: the terminal does not start on it.
			REQUIRE_FALSE(t);
			CHECK(t.status().code() == loy::Code::storage);
			CHECK_THAT(t.status().message(), Catch::Contains(row.problem));
			continue;
		}
		REQUIRE(t);
		auto v = t.value()->verify();
		REQUIRE(v);
		CHECK_FALSE(v->ok);
		CHECK(v->first_bad == 0);
		CHECK_THAT(v->problem, Catch::Contains(row.problem));
		loy::Status used = row.use(*t.value());
		CHECK(used.code() == loy::Code::storage);
		CHECK_THAT(used.message(), Catch::Contains("does not match its seal"));
	}
}
