// A ledger behind the centre (storage/recovery.cpp): the terminal takes its
// own entries back from the centre's copies, and nothing else. The sync that
// drives it, against the real centre, is in tests/e2e (RestoredLedgerTest).
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "base/status.hpp"
#include "fixture.hpp"
#include "base/crypto.hpp"
#include "storage/terminal.hpp"

using namespace storage_test;
using loy::Code;

namespace {

// A terminal's data dir and a copy of it taken before any entry: the same
// terminal, keys and program, an empty journal.
struct Twins {
	TempDir a, b;
	std::vector<loy::Terminal::Pending> centre; // a's entries, as the centre holds them
	Twins()
	{
		make_terminal(a.data());
		std::filesystem::copy(a.data(), b.data(), std::filesystem::copy_options::recursive |
								std::filesystem::copy_options::overwrite_existing);
		auto t = open_terminal(a.data());
		build_mixed_ledger(*t, 12);
		auto e = t->unacked(0, 10000);
		REQUIRE(e);
		centre = *e;
		REQUIRE(centre.size() > 12);
	}
};

// The centre's copy of an entry changed: its body rewritten by `edit` and
// hashed again, as a centre could.
loy::Terminal::Pending forged(loy::Terminal::Pending e, const std::string &from, const std::string &to)
{
	const size_t at = e.body.find(from);
	REQUIRE(at != std::string::npos);
	e.body.replace(at, from.size(), to);
	e.hash = loy::crypto::to_hex(loy::crypto::sha256(e.body));
	return e;
}

loy::Terminal::ChainHead head_of(const std::vector<loy::Terminal::Pending> &centre)
{
	return loy::Terminal::ChainHead{centre.back().seq, centre.back().hash};
}

} // namespace

TEST_CASE("a terminal takes back its own entries from the centre's copies")
{
	Twins w;
	const int64_t now = utc_of(day_at(40));
	auto u = open_terminal(w.b.data());
	REQUIRE(u->stage_recovery(w.centre, true));
	auto r = u->recover(1, head_of(w.centre), now);
	INFO(r.status().message());
	REQUIRE(r);
	CHECK(r->recovered == static_cast<int64_t>(w.centre.size()));
	CHECK(r->rebased == 0);
	verified(*u);
	// The same journal, MACs included (the same key), and the receipts
	// derived from it: every receipt can be refunded here again.
	const char *journal = "SELECT * FROM journal ORDER BY seq";
	CHECK(RawDb(ledger_path(w.b.data())).rows(journal) == RawDb(ledger_path(w.a.data())).rows(journal));
	const char *receipts = "SELECT receipt_id, seq, last_seq, earned, redeemed, reversed, returned FROM receipts "
			       "ORDER BY receipt_id";
	CHECK(RawDb(ledger_path(w.b.data())).rows(receipts) == RawDb(ledger_path(w.a.data())).rows(receipts));
	// Not acknowledged until the sync records the centre's snapshot: until
	// then they count here as the terminal's own, each once.
	auto s = u->sync_settings();
	REQUIRE(s);
	CHECK(s->acked_through == 0);
	auto t = open_terminal(w.a.data());
	for (const char *card : {card_a, card_b, card_c})
		CHECK(balance_of(*u, card, now) == balance_of(*t, card, now));
}

TEST_CASE("the centre's copies are taken only as this terminal's own chain")
{
	Twins w;
	const int64_t now = utc_of(day_at(40));
	const size_t mid = w.centre.size() / 2;
	struct Row {
		const char *name;
		std::function<void(std::vector<loy::Terminal::Pending> &)> spoil;
	};
	const Row rows[] = {
		{"an entry's points raised and hashed again: the chain breaks at the next",
		 [&](auto &c) { c[mid] = forged(c[mid], "\"points\":", "\"points\":1000"); }},
		{"an entry of another terminal",
		 [&](auto &c) { c[0] = forged(c[0], "\"terminal\":\"T1\"", "\"terminal\":\"T2\""); }},
		{"a hash that is not its body's", [&](auto &c) { c[mid].hash = std::string(64, 'a'); }},
		{"an entry left out", [&](auto &c) { c.erase(c.begin() + static_cast<std::ptrdiff_t>(mid)); }},
		{"the last entries left out (the stage ends before the head)", [&](auto &c) { c.resize(mid); }},
		{"a body with a field the terminal never writes",
		 [&](auto &c) { c[mid] = forged(c[mid], "\"v\":1,", "\"v\":1,\"x\":0,"); }},
	};
	for (const Row &row : rows) {
		DYNAMIC_SECTION(row.name)
		{
			TempDir c;
			std::filesystem::copy(w.b.data(), c.data(), std::filesystem::copy_options::recursive |
									std::filesystem::copy_options::overwrite_existing);
			auto u = open_terminal(c.data());
			auto centre = w.centre;
			row.spoil(centre);
			REQUIRE(u->stage_recovery(centre, true));
			auto r = u->recover(1, head_of(w.centre), now);
			REQUIRE_FALSE(r);
			CHECK(r.status().code() == Code::network);
			INFO(r.status().message());
			CHECK(r.status().message().find("sync: the ") == 0);
			// Nothing recorded.
			CHECK(journal_seqs(c.data()).empty());
			verified(*u);
		}
	}
}

TEST_CASE("an anchor that is not SEQ HASH is a storage error, not a level ledger")
{
	TempDir tmp;
	make_terminal(tmp.data());
	write_file(tmp.data() + "/" + loy::ledger_anchor_item, "twelve " + std::string(64, '0') + "\n");
	auto t = open_terminal(tmp.data());
	auto st = t->check_anchor();
	REQUIRE_FALSE(st);
	CHECK(st.code() == Code::storage);
	CHECK_THAT(st.message(), Catch::Contains("is not \"SEQ HASH\""));
	// status says so rather than that the ledger is level or behind.
	auto s = t->status();
	REQUIRE_FALSE(s);
	CHECK(s.status().code() == Code::storage);
}
