// Ledger basics: init (keys, modes, idempotence), opening a non-terminal, one
// gap-free entry per operation and none when refused, replays, member tokens.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <mbedtls/md.h>

#include "base/status.hpp"
#include "fixture.hpp"
#include "support/files.hpp"
#include "base/crypto.hpp"
#include "storage/ledger.hpp"
#include "storage/terminal.hpp"

using namespace storage_test;
using loy::Code;

namespace {

unsigned mode_of(const std::string &path)
{
	struct stat st;
	REQUIRE(::stat(path.c_str(), &st) == 0);
	return st.st_mode & 07777;
}

loy::TerminalSetup setup_of(const char *id, const char *store)
{
	loy::TerminalSetup s;
	s.terminal_id = id;
	s.store = store;
	return s;
}

// An independent HMAC-SHA-256 of the card digits under the key file's key,
// straight from mbedTLS, in lowercase hex.
std::string expected_token(const std::string &key_file, const std::string &digits)
{
	std::string hex = read_file(key_file);
	REQUIRE(hex.size() == 65);
	unsigned char key[32];
	for (size_t i = 0; i < 32; i++)
		key[i] = static_cast<unsigned char>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
	unsigned char mac[32];
	REQUIRE(mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, sizeof key,
				reinterpret_cast<const unsigned char *>(digits.data()), digits.size(),
				mac) == 0);
	std::string out;
	for (unsigned char b : mac)
		out += fmt::format("{:02x}", b);
	return out;
}

// What a refused operation must leave alone: the journal and the derived
// tables, row for row.
struct Snapshot {
	std::vector<std::vector<std::string>> journal, members, receipts, meta;
	bool operator==(const Snapshot &o) const
	{
		return journal == o.journal && members == o.members && receipts == o.receipts &&
		       meta == o.meta;
	}
};

Snapshot snapshot(const std::string &dir)
{
	RawDb db(ledger_path(dir));
	return {db.rows("SELECT seq, hash FROM journal ORDER BY seq"),
		db.rows("SELECT * FROM members ORDER BY token"),
		db.rows("SELECT * FROM receipts ORDER BY receipt_id"),
		db.rows("SELECT * FROM meta ORDER BY key")};
}

} // namespace

TEST_CASE("init makes the data dir 0700 and the key files 0600, whatever the umask")
{
	TempDir tmp;
	const mode_t old = ::umask(0);
	loy::Status s = loy::Terminal::init(tmp.data(), setup_of("T1", "S1"), utc_of(day_at(0)));
	::umask(old);
	INFO(s.message());
	REQUIRE(s.is_ok());
	CHECK(mode_of(tmp.data()) == 0700);
	CHECK(mode_of(tmp.data() + "/ledger.key") == 0600);
	CHECK(mode_of(tmp.data() + "/token.key") == 0600);
	const std::string mk = read_file(tmp.data() + "/ledger.key");
	const std::string tk = read_file(tmp.data() + "/token.key");
	CHECK(mk.size() == 65);
	CHECK(tk.size() == 65);
	CHECK(mk != tk);
	// No temporary file left behind, whatever the writer names them.
	for (const std::string &name : test_support::entries(tmp.data())) {
		INFO(name);
		CHECK(name.find(".tmp") == std::string::npos);
	}
	auto t = open_terminal(tmp.data());
	Json st = ok_json(t->status());
	CHECK(st["terminal_id"] == "T1");
	CHECK(st["store"] == "S1");
	CHECK(st["entries"] == 0);
	CHECK(st["program"].is_null());
}

TEST_CASE("init again: the same terminal is a no-op, another is refused")
{
	struct Row {
		const char *name;
		const char *id;
		const char *store;
		Code expect;
	};
	const Row rows[] = {
		{"same id and store", "T1", "S1", Code::ok},
		{"another terminal id", "T2", "S1", Code::bad_argument},
		{"same id, another store", "T1", "S2", Code::bad_argument},
		{"an id with a space", "T 1", "S1", Code::bad_argument},
		{"an empty store", "T1", "", Code::bad_argument},
	};
	for (const Row &row : rows) {
		CAPTURE(row.name);
		TempDir tmp;
		auto t = make_terminal(tmp.data());
		ok_json(t->enroll(card_a, utc_of(day_at(0))));
		t.reset();
		const std::string mk = read_file(tmp.data() + "/ledger.key");
		const std::string tk = read_file(tmp.data() + "/token.key");
		const Snapshot before = snapshot(tmp.data());

		loy::Status s = loy::Terminal::init(tmp.data(), setup_of(row.id, row.store), utc_of(day_at(5)));
		INFO(s.message());
		CHECK(s.code() == row.expect);
		CHECK(read_file(tmp.data() + "/ledger.key") == mk);
		CHECK(read_file(tmp.data() + "/token.key") == tk);
		CHECK(snapshot(tmp.data()) == before);
		auto again = open_terminal(tmp.data());
		Json st = ok_json(again->status());
		CHECK(st["terminal_id"] == "T1");
		CHECK(st["store"] == "S1");
		verified(*again);
	}
}

TEST_CASE("init refuses bad settings and leaves no terminal behind")
{
	struct Row {
		const char *name;
		loy::TerminalSetup setup;
	};
	loy::TerminalSetup long_id = setup_of("T1", "S1");
	long_id.terminal_id = std::string(65, 'x');
	loy::TerminalSetup bad_tz = setup_of("T1", "S1");
	bad_tz.tz = "Mars/Olympus";
	loy::TerminalSetup half_server = setup_of("T1", "S1");
	half_server.server = "https://127.0.0.1:8443";
	loy::TerminalSetup missing_token_key = setup_of("T1", "S1");
	missing_token_key.token_key = "/nonexistent/token.key";
	const Row rows[] = {
		{"terminal id of 65 characters", long_id},
		{"unknown time zone", bad_tz},
		{"--server without certificates", half_server},
		{"--token-key that does not exist", missing_token_key},
	};
	for (const Row &row : rows) {
		CAPTURE(row.name);
		TempDir tmp;
		loy::Status s = loy::Terminal::init(tmp.data(), row.setup, utc_of(day_at(0)));
		INFO(s.message());
		CHECK(s.code() == Code::bad_argument);
		CHECK_FALSE(file_exists(tmp.data() + "/ledger.key"));
		CHECK_FALSE(file_exists(tmp.data() + "/token.key"));
		// Whatever is left must not pass for a terminal.
		auto t = loy::Terminal::open(tmp.data());
		CHECK_FALSE(t);
	}
}

TEST_CASE("open of a dir that is not a terminal's")
{
	struct Row {
		const char *name;
		std::function<void(const std::string &dir)> prepare;
		Code expect;
	};
	const Row rows[] = {
		{"no such dir", [](const std::string &) {}, Code::bad_argument},
		{"an empty dir", [](const std::string &d) { REQUIRE(::mkdir(d.c_str(), 0700) == 0); },
		 Code::bad_argument},
		{"a ledger.db left by an init that stopped before its settings",
		 [](const std::string &d) {
			 REQUIRE(::mkdir(d.c_str(), 0700) == 0);
			 loy::Ledger l;
			 REQUIRE(l.open(d, true).is_ok());
		 },
		 Code::bad_argument},
		{"an initialised dir whose ledger.key is gone",
		 [](const std::string &d) {
			 make_terminal(d);
			 REQUIRE(::unlink((d + "/ledger.key").c_str()) == 0);
		 },
		 Code::storage},
		{"an initialised dir whose token.key is not hex",
		 [](const std::string &d) {
			 make_terminal(d);
			 write_file(d + "/token.key", std::string(64, 'z') + "\n");
		 },
		 Code::storage},
	};
	for (const Row &row : rows) {
		CAPTURE(row.name);
		TempDir tmp;
		row.prepare(tmp.data());
		auto t = loy::Terminal::open(tmp.data());
		INFO(t.status().message());
		CHECK(t.status().code() == row.expect);
	}
	SECTION("opening does not create the database")
	{
		TempDir tmp;
		auto t = loy::Terminal::open(tmp.path());
		CHECK(t.status().code() == Code::bad_argument);
		CHECK_FALSE(file_exists(tmp.path() + "/ledger.db"));
	}
}

TEST_CASE("the journal: one entry per recorded operation, seq gap-free from 1")
{
	TempDir tmp;
	auto t = make_terminal(tmp.data());
	const int64_t now = utc_of(day_at(1));
	struct Step {
		const char *name;
		std::function<void()> run;
		const char *kind; // the entry it adds; nullptr: none
	};
	const Step steps[] = {
		{"enroll A", [&] { CHECK(ok_json(t->enroll(card_a, now))["enrolled"] == true); }, "enroll"},
		{"enroll A again", [&] { CHECK(ok_json(t->enroll(card_a, now))["enrolled"] == false); },
		 nullptr},
		{"checkout of B, never seen",
		 [&] {
			 Json r = ok_json(t->checkout(card_b, basket("R-1", day_at(1), {coffee, pastry}),
						      loy::Redemption::none(), now));
			 CHECK(r["balance"].is_null());
		 },
		 "checkout"},
		{"enroll B, seen at a checkout only", [&] { ok_json(t->enroll(card_b, now)); }, "enroll"},
		{"checkout of A", [&] {
			 ok_json(t->checkout(card_a, basket("R-2", day_at(1), {beans, coffee, pastry}),
					     loy::Redemption::none(), now));
		 },
		 "checkout"},
		{"checkout of A with points",
		 [&] {
			 ok_json(t->checkout(card_a, basket("R-3", day_at(2), {beans, coffee}),
					     loy::Redemption::of_points(100), now + 86400));
		 },
		 "checkout"},
		{"partial refund", [&] { ok_json(t->refund("R-2", {{"COF-01", 1}}, now + 60)); }, "refund"},
		{"refund of the rest", [&] { ok_json(t->refund("R-2", {}, now + 120)); }, "refund"},
		{"balance", [&] { ok_json(t->balance(card_a, now)); }, nullptr},
		{"status", [&] { ok_json(t->status()); }, nullptr},
		{"verify", [&] { REQUIRE(t->verify()); }, nullptr},
		{"full refund of a receipt with a redemption",
		 [&] {
			 Json r = ok_json(t->refund("R-3", {}, now + 86400 + 60));
			 CHECK(r["points_returned"] == 100);
		 },
		 "refund"},
	};
	std::vector<std::string> kinds;
	for (const Step &step : steps) {
		CAPTURE(step.name);
		step.run();
		if (step.kind)
			kinds.push_back(step.kind);
		RawDb db(ledger_path(tmp.data()));
		std::vector<std::string> got;
		for (const auto &r : db.rows("SELECT kind FROM journal ORDER BY seq"))
			got.push_back(r[0]);
		CHECK(got == kinds);
		std::vector<int64_t> expect_seqs;
		for (size_t i = 1; i <= kinds.size(); i++)
			expect_seqs.push_back(static_cast<int64_t>(i));
		CHECK(journal_seqs(tmp.data()) == expect_seqs);
		CHECK(ok_json(t->status())["entries"] == kinds.size());
	}

	// Every point the terminal shows comes from the journal: a member's
	// balance is the sum of its entries' points.
	RawDb db(ledger_path(tmp.data()));
	for (const char *card : {card_a, card_b}) {
		CAPTURE(card);
		const std::string token = expected_token(tmp.data() + "/token.key", card);
		const int64_t sum = db.integer("SELECT coalesce(sum(points), 0) FROM journal WHERE token = '" +
					       token + "'");
		CHECK(balance_of(*t, card, now + 2 * 86400) == sum);
	}
	// A checkout's points are earned − redeemed; a refund's returned − reversed.
	for (const auto &r : db.rows("SELECT j.points, r.earned, r.redeemed FROM journal j "
				     "JOIN receipts r ON r.seq = j.seq")) {
		CHECK(std::stoll(r[0]) == std::stoll(r[1]) - std::stoll(r[2]));
	}
	for (const auto &r : db.rows("SELECT points, json_extract(body, '$.data.returned') - "
				     "json_extract(body, '$.data.reversed') FROM journal WHERE kind = 'refund'"))
		CHECK(r[0] == r[1]);
	const auto v = verified(*t);
	CHECK(v.entries == static_cast<int64_t>(kinds.size()));
}

TEST_CASE("a declined or refused operation writes nothing")
{
	TempDir tmp;
	auto t = make_terminal(tmp.data());
	// A has a balance well above the daily cap; B's balance is known but small;
	// R-full is refunded whole.
	ok_json(t->enroll(card_a, utc_of(day_at(0))));
	ok_json(t->enroll(card_b, utc_of(day_at(0))));
	const L beans_20{"BEAN-1K", "beans", 20, 1890, 0};
	for (int i = 0; i < 3; i++)
		ok_json(t->checkout(card_a, basket(fmt::format("R-A{}", i), day_at(i), {beans_20}),
				    loy::Redemption::none(), utc_of(day_at(i))));
	ok_json(t->checkout(card_b, basket("R-full", day_at(0), {coffee, pastry}), loy::Redemption::none(),
			    utc_of(day_at(0))));
	ok_json(t->refund("R-full", {}, utc_of(day_at(0), 120)));
	const int64_t now = utc_of(day_at(6));
	const int64_t balance_a = balance_of(*t, card_a, now);
	const int64_t balance_b = balance_of(*t, card_b, now);
	REQUIRE(balance_a > 1000);
	REQUIRE(balance_b < 100);
	const std::string day = day_at(6);
	const std::string big = basket("R-new", day, {beans_20, coffee});

	struct Row {
		const char *name;
		std::function<loy::Result<std::string>()> op;
		Code expect;
	};
	using R = loy::Redemption;
	const Row rows[] = {
		{"more points than the balance (B)",
		 [&] { return as_text(t->checkout(card_b, big, R::of_points(100), now)); },
		 Code::declined_insufficient_points},
		{"fewer points than min_points",
		 [&] { return as_text(t->checkout(card_a, big, R::of_points(99), now)); },
		 Code::declined_min_points},
		{"a card never seen redeems",
		 [&] { return as_text(t->checkout(card_c, big, R::of_points(100), now)); },
		 Code::declined_balance_unknown},
		{"more than max_pct of the basket",
		 [&] {
			 // S0 = 700: at most 350 points for money.
			 return as_text(
				 t->checkout(card_a, basket("R-new", day, {coffee}), R::of_points(351), now));
		 },
		 Code::declined_max_pct},
		{"over the offline daily cap",
		 [&] { return as_text(t->checkout(card_a, big, R::of_points(1001), now)); },
		 Code::declined_daily_cap},
		{"a reward whose sku is not in the basket",
		 [&] {
			 return as_text(t->checkout(card_a, basket("R-new", day, {beans}),
						    R::of_reward("free-coffee"), now));
		 },
		 Code::declined_reward_not_in_basket},
		{"an unknown reward",
		 [&] { return as_text(t->checkout(card_a, big, R::of_reward("free-cake"), now)); },
		 Code::unknown_reward},
		{"a card that fails Luhn",
		 [&] { return as_text(t->checkout("6280001234567896", big, R::none(), now)); },
		 Code::bad_card},
		{"a basket that is not JSON",
		 [&] { return as_text(t->checkout(card_a, "{\"receipt_id\":", R::none(), now)); },
		 Code::bad_basket},
		{"a basket line with qty 0",
		 [&] {
			 return as_text(t->checkout(card_a,
						    basket("R-new", day, {{"COF-01", "coffee", 0, 350, 0}}),
					    R::none(), now));
		 },
		 Code::bad_basket},
		{"a refund of an unknown receipt", [&] { return as_text(t->refund("R-nope", {}, now)); },
		 Code::unknown_receipt},
		{"a refund of more units than sold",
		 [&] { return as_text(t->refund("R-A0", {{"BEAN-1K", 21}}, now)); }, Code::bad_refund},
		{"a refund of a sku not on the receipt",
		 [&] { return as_text(t->refund("R-A0", {{"COF-01", 1}}, now)); }, Code::bad_refund},
		{"a refund of a receipt refunded whole", [&] { return as_text(t->refund("R-full", {}, now)); },
		 Code::declined_already_refunded},
		{"enrolling a card that fails Luhn",
		 [&] { return as_text(t->enroll("4539578763621487", now)); },
		 Code::bad_card},
	};
	for (const Row &row : rows) {
		CAPTURE(row.name);
		const Snapshot before = snapshot(tmp.data());
		auto r = row.op();
		INFO(r.status().message());
		CHECK(r.status().code() == row.expect);
		CHECK(snapshot(tmp.data()) == before);
	}
	CHECK(balance_of(*t, card_a, now) == balance_a);
	CHECK(balance_of(*t, card_b, now) == balance_b);
	verified(*t);
}

TEST_CASE("a retried checkout is a replay when it is the same, refused when not")
{
	TempDir tmp;
	auto t = make_terminal(tmp.data());
	ok_json(t->enroll(card_a, utc_of(day_at(0))));
	ok_json(t->checkout(card_a, basket("R-0", day_at(0), {beans, beans}), loy::Redemption::none(),
			    utc_of(day_at(0))));
	const std::string at = day_at(1);
	const int64_t now = utc_of(at);
	const std::string text = basket("R-1", at, {beans, coffee});
	Json first = ok_json(t->checkout(card_a, text, loy::Redemption::of_points(100), now));
	CHECK(first["replayed"] == false);
	const int64_t balance = balance_of(*t, card_a, now);

	struct Row {
		const char *name;
		const char *card;
		std::string basket;
		loy::Redemption redemption;
		Code expect; // ok: a replay
	};
	// The same basket written differently: other key order and spacing.
	const std::string reordered =
		R"({ "lines": [ {"discount":190,"unit_price":1890,"qty":2,"category":"beans","sku":"BEAN-1K"},
		   {"discount":0,"unit_price":350,"qty":2,"category":"coffee","sku":"COF-01"} ],
		   "at": ")" + at + R"(", "receipt_id": "R-1" })";
	const Row rows[] = {
		{"the same request", card_a, text, loy::Redemption::of_points(100), Code::ok},
		{"the same basket, written differently", card_a, reordered, loy::Redemption::of_points(100),
		 Code::ok},
		{"the same card scanned as a QR code", "LOYALTY:6280001234567895", text,
		 loy::Redemption::of_points(100), Code::ok},
		{"another quantity", card_a, basket("R-1", at, {beans, {"COF-01", "coffee", 3, 350, 0}}),
		 loy::Redemption::of_points(100), Code::receipt_conflict},
		{"another time", card_a, basket("R-1", day_at(2), {beans, coffee}),
		 loy::Redemption::of_points(100), Code::receipt_conflict},
		{"another card", card_b, text, loy::Redemption::of_points(100), Code::receipt_conflict},
		{"no redemption", card_a, text, loy::Redemption::none(), Code::receipt_conflict},
		{"another number of points", card_a, text, loy::Redemption::of_points(101),
		 Code::receipt_conflict},
		{"a reward instead", card_a, text, loy::Redemption::of_reward("free-coffee"),
		 Code::receipt_conflict},
	};
	for (const Row &row : rows) {
		CAPTURE(row.name);
		const Snapshot before = snapshot(tmp.data());
		// Later, as a retry after a lost answer would be.
		auto r = t->checkout(row.card, row.basket, row.redemption, now + 300);
		INFO(r.status().message());
		CHECK(r.status().code() == row.expect);
		if (r && row.expect == Code::ok) {
			Json again = ok_json(r);
			CHECK(again["replayed"] == true);
			again["replayed"] = false;
			CHECK(again == first);
		}
		CHECK(snapshot(tmp.data()) == before);
	}
	CHECK(balance_of(*t, card_a, now) == balance);
	CHECK(count_kind(tmp.data(), "checkout") == 2);
}

TEST_CASE("a member token is the card's HMAC under token.key; no card number is stored")
{
	struct Row {
		const char *name;
		bool own_token_key; // init with --token-key (the chain's key)
	};
	const Row rows[] = {{"a key made at init", false}, {"the chain's key given to init", true}};
	for (const Row &row : rows) {
		CAPTURE(row.name);
		TempDir tmp;
		loy::TerminalSetup setup = setup_of("T1", "S1");
		const std::string chain_key = tmp.path() + "/chain.key";
		if (row.own_token_key) {
			write_file(chain_key, std::string("00112233445566778899aabbccddeeff"
							  "ffeeddccbbaa99887766554433221100\n"));
			setup.token_key = chain_key;
		}
		REQUIRE(loy::Terminal::init(tmp.data(), setup, utc_of(day_at(0))).is_ok());
		if (row.own_token_key)
			CHECK(read_file(tmp.data() + "/token.key") == read_file(chain_key));
		auto t = open_terminal(tmp.data());
		ok_json(t->program_load(program_json(), utc_of(day_at(0))));
		const int64_t now = utc_of(day_at(1));
		// The same card through each kind of reader: one member.
		ok_json(t->enroll("6280 0012 3456 7895", now));
		ok_json(t->checkout(";6280001234567895=2812?", basket("R-1", day_at(1), {beans, coffee}),
				    loy::Redemption::none(), now));
		ok_json(t->checkout("LOYALTY:6280001234567895", basket("R-2", day_at(1), {pastry}),
				    loy::Redemption::none(), now));
		ok_json(t->enroll(card_b, now));
		Json c = ok_json(t->checkout(card_c, basket("R-3", day_at(1), {coffee}), loy::Redemption::none(),
					     now));
		CHECK(c["card"] == "****8713");
		ok_json(t->refund("R-1", {{"COF-01", 1}}, now + 60));

		RawDb db(ledger_path(tmp.data()));
		const std::string key_file = tmp.data() + "/token.key";
		const std::string token_a = expected_token(key_file, card_a);
		CHECK(db.integer("SELECT count(*) FROM journal WHERE token = '" + token_a + "'") == 4);
		CHECK(db.integer("SELECT count(DISTINCT token) FROM journal") == 3);
		CHECK(db.integer("SELECT count(*) FROM members WHERE token IN ('" + token_a + "', '" +
				 expected_token(key_file, card_b) + "', '" +
				 expected_token(key_file, card_c) + "')") == 3);
		CHECK(db.text("SELECT masked FROM members WHERE token = '" + token_a + "'") == "****7895");

		// The raw bytes, database and write-ahead log, while the terminal
		// is open (the WAL holds the recent pages) and after it closed.
		for (int pass = 0; pass < 2; pass++) {
			CAPTURE(pass);
			if (pass == 1)
				t.reset();
			for (const char *file : {"/ledger.db", "/ledger.db-wal", "/ledger.db-shm"}) {
				CAPTURE(file);
				const std::string path = tmp.data() + file;
				if (!file_exists(path))
					continue;
				const std::string bytes = read_file(path);
				for (const char *card : {card_a, card_b, card_c}) {
					CAPTURE(card);
					const std::string digits(card);
					CHECK(bytes.find(digits) == std::string::npos);
					// Nor the part a mask hides, nor the card spaced.
					CHECK(bytes.find(digits.substr(0, digits.size() - 4)) == std::string::npos);
				}
				CHECK(bytes.find("6280 0012 3456 7895") == std::string::npos);
			}
		}
	}
}

TEST_CASE("a refund named by the POS's id is recorded once, however often it is sent")
{
	TempDir tmp;
	auto t = make_terminal(tmp.data());
	const int64_t now = utc_of(day_at(0));
	ok_json(t->checkout(card_a, basket("R-1", day_at(0), {coffee, pastry}), {}, now));
	const int64_t entries = t->ledger().count_entries().value();

	Json first = ok_json(t->refund("R-1", {{"COF-01", 1}}, now + 60, "RET-1"));
	CHECK(first["refund_id"] == "RET-1");
	CHECK(first["replayed"] == false);
	CHECK(first["points_reversed"].get<int64_t>() > 0);
	// The answer was lost; the POS sends it again.
	Json again = ok_json(t->refund("R-1", {{"COF-01", 1}}, now + 120, "RET-1"));
	CHECK(again["replayed"] == true);
	CHECK(again["points_reversed"] == first["points_reversed"]);
	CHECK(again["balance"] == first["balance"]);
	CHECK(t->ledger().count_entries().value() == entries + 1);

	// The same id with other lines is a mistake; another id is another refund.
	auto other = t->refund("R-1", {{"COF-01", 2}}, now + 180, "RET-1");
	REQUIRE_FALSE(other);
	CHECK(other.status().code() == loy::Code::receipt_conflict);
	Json second = ok_json(t->refund("R-1", {{"COF-01", 1}}, now + 240, "RET-2"));
	CHECK(second["replayed"] == false);
	CHECK(t->ledger().count_entries().value() == entries + 2);
	// A refund without an id in between keeps the ids known.
	ok_json(t->refund("R-1", {{"CRS-02", 1}}, now + 300));
	CHECK(ok_json(t->refund("R-1", {{"COF-01", 1}}, now + 360, "RET-1"))["replayed"] == true);
	CHECK(t->ledger().count_entries().value() == entries + 3);

	auto bad_id = t->refund("R-1", {}, now, "not an id!");
	REQUIRE_FALSE(bad_id);
	CHECK(bad_id.status().code() == loy::Code::bad_argument);
	auto v = t->verify();
	REQUIRE(v);
	CHECK(v->ok);
}
