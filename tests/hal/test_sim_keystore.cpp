// The in-memory key store through its C table: round trips, the size query,
// the names and sizes the file store takes (one table of names for both),
// and injected failures that leave the old value.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "hal/sim/sim.hpp"
#include "names.hpp"

using loy::hal::sim::SimKeyStore;
using Bytes = std::vector<unsigned char>;

namespace {

Bytes key_of(unsigned char fill) { return Bytes(LOY_HAL_KEY_BYTES, fill); }

Bytes text_of(const std::string &s) { return Bytes(s.begin(), s.end()); }

int put(const loy_hal_keystore *k, const std::string &name, const Bytes &v)
{
	return k->put(k->ctx, name.c_str(), v.data(), v.size());
}

// The item's bytes, or the failure as a one-byte vector holding -code.
int get(const loy_hal_keystore *k, const std::string &name, Bytes *out)
{
	size_t len = 0;
	int rc = k->get(k->ctx, name.c_str(), nullptr, 0, &len);
	if (rc != LOY_HAL_E_TOO_BIG && rc != 0)
		return rc;
	out->assign(len, 0);
	return k->get(k->ctx, name.c_str(), out->data(), out->size(), &len);
}

const char pem[] = "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n";

} // namespace

TEST_CASE("sim key store: round trips of keys and certificates")
{
	SimKeyStore store;
	const loy_hal_keystore *k = store.table();
	CHECK(k->version == LOY_HAL_KEYSTORE_VERSION);
	REQUIRE(put(k, "ledger.key", key_of(0xa5)) == 0);
	REQUIRE(put(k, "tls/cert.pem", text_of(pem)) == 0);
	Bytes got;
	CHECK(get(k, "ledger.key", &got) == 0);
	CHECK(got == key_of(0xa5));
	CHECK(get(k, "tls/cert.pem", &got) == 0);
	CHECK(got == text_of(pem));
	CHECK(put(k, "ledger.key", key_of(0x5a)) == 0); // replaced
	CHECK(get(k, "ledger.key", &got) == 0);
	CHECK(got == key_of(0x5a));
	CHECK(store.size() == 2);
	CHECK(store.puts() == 3);
	CHECK(store.item("ledger.key") == key_of(0x5a));
	CHECK_FALSE(store.item("token.key"));
	// An empty certificate is an item too.
	CHECK(put(k, "tls/ca.pem", Bytes()) == 0);
	CHECK(get(k, "tls/ca.pem", &got) == 0);
	CHECK(got.empty());
}

TEST_CASE("sim key store: size query, buffer too small, missing items, erase")
{
	SimKeyStore store;
	const loy_hal_keystore *k = store.table();
	REQUIRE(put(k, "tls/cert.pem", text_of(pem)) == 0);
	size_t len = 0;
	CHECK(k->get(k->ctx, "tls/cert.pem", nullptr, 0, &len) == LOY_HAL_E_TOO_BIG);
	CHECK(len == sizeof pem - 1);
	unsigned char small[8];
	len = 0;
	CHECK(k->get(k->ctx, "tls/cert.pem", small, sizeof small, &len) == LOY_HAL_E_TOO_BIG);
	CHECK(len == sizeof pem - 1);
	CHECK(k->get(k->ctx, "token.key", small, sizeof small, &len) == LOY_HAL_E_NOT_FOUND);
	CHECK(k->get(k->ctx, "tls/cert.pem", small, sizeof small, nullptr) == LOY_HAL_E_ARGUMENT);
	CHECK(k->get(k->ctx, "tls/cert.pem", nullptr, 8, &len) == LOY_HAL_E_ARGUMENT);
	CHECK(k->erase(k->ctx, "tls/cert.pem") == 0);
	CHECK(k->erase(k->ctx, "tls/cert.pem") == LOY_HAL_E_NOT_FOUND);
	CHECK(k->get(k->ctx, "tls/cert.pem", nullptr, 0, &len) == LOY_HAL_E_NOT_FOUND);
}

TEST_CASE("sim key store: the names and sizes of the file store")
{
	SimKeyStore store;
	const loy_hal_keystore *k = store.table();
	for (const std::string &name : hal_test::bad_item_names()) {
		INFO("name \"" << name << "\"");
		Bytes v = text_of("x");
		size_t len;
		CHECK(k->put(k->ctx, name.c_str(), v.data(), v.size()) == LOY_HAL_E_ARGUMENT);
		CHECK(k->get(k->ctx, name.c_str(), nullptr, 0, &len) == LOY_HAL_E_ARGUMENT);
		CHECK(k->erase(k->ctx, name.c_str()) == LOY_HAL_E_ARGUMENT);
	}
	CHECK(k->put(k->ctx, nullptr, nullptr, 0) == LOY_HAL_E_ARGUMENT);
	for (const std::string &name : hal_test::good_item_names()) {
		INFO("name \"" << name << "\"");
		CHECK(put(k, name, name.size() >= 4 && name.substr(name.size() - 4) == ".key"
					 ? key_of(1)
					 : text_of("x")) == 0);
	}
	CHECK(store.size() == store.puts());

	// A ".key" item is a key: exactly LOY_HAL_KEY_BYTES.
	CHECK(put(k, "ledger.key", Bytes(LOY_HAL_KEY_BYTES - 1, 1)) == LOY_HAL_E_ARGUMENT);
	CHECK(put(k, "ledger.key", Bytes(LOY_HAL_KEY_BYTES + 1, 1)) == LOY_HAL_E_ARGUMENT);
	CHECK(put(k, "big.pem", Bytes(LOY_HAL_ITEM_MAX, 'x')) == 0);
	CHECK(put(k, "big.pem", Bytes(LOY_HAL_ITEM_MAX + 1, 'x')) == LOY_HAL_E_ARGUMENT);
	CHECK(k->put(k->ctx, "tls/ca.pem", nullptr, 1) == LOY_HAL_E_ARGUMENT);
}

TEST_CASE("sim key store: a failed put or erase changes nothing")
{
	SimKeyStore store;
	const loy_hal_keystore *k = store.table();
	REQUIRE(put(k, "ledger.key", key_of(1)) == 0);
	store.fail_puts(2);
	CHECK(put(k, "ledger.key", key_of(2)) == LOY_HAL_E_IO);
	CHECK(k->erase(k->ctx, "ledger.key") == LOY_HAL_E_IO);
	CHECK(store.item("ledger.key") == key_of(1));
	CHECK(put(k, "ledger.key", key_of(2)) == 0);
	CHECK(store.item("ledger.key") == key_of(2));

	store.fail_gets(1, LOY_HAL_E_GONE);
	Bytes got;
	CHECK(get(k, "ledger.key", &got) == LOY_HAL_E_GONE);
	CHECK(get(k, "ledger.key", &got) == 0);
}

TEST_CASE("sim key store: it holds at most items_max items")
{
	SimKeyStore store;
	const loy_hal_keystore *k = store.table();
	for (size_t i = 0; i < SimKeyStore::items_max; i++)
		REQUIRE(put(k, "item" + std::to_string(i), text_of("x")) == 0);
	CHECK(put(k, "one-more", text_of("x")) == LOY_HAL_E_IO);
	CHECK(put(k, "item0", text_of("y")) == 0); // a replacement still fits
}
