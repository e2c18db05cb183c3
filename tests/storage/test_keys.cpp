// The terminal's keys through a HAL key store (storage/keys.hpp): init puts
// them there and not in the data dir, open reads them from there, a store
// that lost them or fails is a storage error naming the item, and a newer
// program installed by a second handle is taken up by the first.
#include <catch2/catch.hpp>

#include "fixture.hpp"
#include "hal/sim/sim.hpp"

using namespace storage_test;

namespace {

loy::TerminalSetup setup_t1()
{
	loy::TerminalSetup s;
	s.terminal_id = "T1";
	s.store = "S1";
	return s;
}

} // namespace

TEST_CASE("init puts the keys in the given key store, and open reads them from there")
{
	TempDir tmp;
	loy::hal::sim::SimKeyStore keys;
	const int64_t now = utc_of(day_at(0));
	loy::Status s = loy::Terminal::init(tmp.data(), setup_t1(), now, keys.table());
	INFO(s.message());
	REQUIRE(s.is_ok());
	CHECK(keys.item("ledger.key").value().size() == 32);
	CHECK(keys.item("token.key").value().size() == 32);
	CHECK(keys.item("ledger.key") != keys.item("token.key"));
	CHECK_FALSE(file_exists(tmp.data() + "/ledger.key"));
	CHECK_FALSE(file_exists(tmp.data() + "/token.key"));

	auto t = loy::Terminal::open(tmp.data(), keys.table());
	INFO(t.status().message());
	REQUIRE(t);
	REQUIRE(t.value()->program_load(program_json(), now));
	auto c = t.value()->checkout(card_a, basket("R1", day_at(0), {coffee}), {}, now);
	INFO(c.status().message());
	REQUIRE(c);
	auto v = t.value()->verify();
	REQUIRE(v);
	CHECK(v->ok);

	SECTION("the data dir's files are not a key store of this terminal")
	{
		t.value().reset();
		auto other = loy::Terminal::open(tmp.data());
		REQUIRE_FALSE(other);
		CHECK(other.status().code() == loy::Code::storage);
		CHECK_THAT(other.status().message(), Catch::Contains("ledger.key is missing"));
	}
	SECTION("another key store's keys do not verify the ledger")
	{
		t.value().reset();
		loy::hal::sim::SimKeyStore stranger;
		auto key = keys.item("token.key").value();
		auto mac = keys.item("ledger.key").value();
		mac[0] = static_cast<unsigned char>(mac[0] ^ 1);
		REQUIRE(stranger.table()->put(stranger.table()->ctx, "token.key", key.data(), key.size()) == 0);
		REQUIRE(stranger.table()->put(stranger.table()->ctx, "ledger.key", mac.data(), mac.size()) == 0);
		// The settings' seals fail at once, before anything is read.
		auto t2 = loy::Terminal::open(tmp.data(), stranger.table());
		REQUIRE_FALSE(t2);
		CHECK(t2.status().code() == loy::Code::storage);
		CHECK_THAT(t2.status().message(), Catch::Contains("setting terminal_id does not match its seal"));
	}
	SECTION("a key store that fails to read is a storage error naming the item")
	{
		t.value().reset();
		keys.fail_gets(1);
		auto t2 = loy::Terminal::open(tmp.data(), keys.table());
		REQUIRE_FALSE(t2);
		CHECK(t2.status().code() == loy::Code::storage);
		CHECK_THAT(t2.status().message(), Catch::Contains("ledger.key") && Catch::Contains("io"));
	}
}

TEST_CASE("init with a key store that cannot write leaves no terminal behind")
{
	TempDir tmp;
	loy::hal::sim::SimKeyStore keys;
	keys.fail_puts(1);
	loy::Status s = loy::Terminal::init(tmp.data(), setup_t1(), utc_of(day_at(0)), keys.table());
	REQUIRE_FALSE(s.is_ok());
	CHECK(s.code() == loy::Code::storage);
	CHECK_THAT(s.message(), Catch::Contains("writing ledger.key"));
	auto t = loy::Terminal::open(tmp.data(), keys.table());
	REQUIRE_FALSE(t);
	// Init again, with the store working: a terminal as if the first had
	// never been tried.
	s = loy::Terminal::init(tmp.data(), setup_t1(), utc_of(day_at(0)), keys.table());
	INFO(s.message());
	REQUIRE(s.is_ok());
	CHECK(loy::Terminal::open(tmp.data(), keys.table()));
}

TEST_CASE("a program installed through one handle is in force on another")
{
	TempDir tmp;
	auto a = make_terminal(tmp.data());
	auto b = open_terminal(tmp.data());
	Json doc = Json::parse(program_json());
	doc["version"] = doc["version"].get<int64_t>() + 1;
	doc["earn"]["points"] = doc["earn"]["points"].get<int64_t>() * 2;
	const int64_t now = utc_of(day_at(0));
	auto before = a->checkout(card_a, basket("R1", day_at(0), {coffee}), {}, now);
	REQUIRE(before);
	REQUIRE(b->program_load(doc.dump(), now));
	auto after = a->checkout(card_a, basket("R2", day_at(0), {coffee}), {}, now);
	INFO(after.status().message());
	REQUIRE(after);
	CHECK(ok_json(after)["earned"].get<int64_t>() == 2 * ok_json(before)["earned"].get<int64_t>());
	auto status = a->status();
	REQUIRE(status);
	CHECK(ok_json(status)["program"]["version"] == doc["version"]);
	// The older version still refunds its own receipt.
	auto r = a->refund("R1", {}, now);
	INFO(r.status().message());
	REQUIRE(r);
	CHECK(ok_json(r)["points_reversed"] == ok_json(before)["earned"]);
}
