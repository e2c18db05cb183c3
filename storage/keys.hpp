// The terminal's secrets through the HAL key store (include/loyalty/hal.h):
// the ledger's MAC key, the chain's card-token key and the TLS identity.
// Without a store of its own the terminal keeps them as files in its data
// dir, through the Linux file key store, so that a data dir is the same
// whichever way it was opened.
#pragma once

#include <memory>
#include <string>

#include "base/status.hpp"
#include "loyalty/hal.h"
#include "base/crypto.hpp"

namespace loy {

// Names of the items (hal.h lists them too).
inline constexpr const char *ledger_key_item = "ledger.key";
inline constexpr const char *token_key_item = "token.key";
inline constexpr const char *tls_ca_item = "tls/ca.pem";
inline constexpr const char *tls_cert_item = "tls/cert.pem";
inline constexpr const char *tls_key_item = "tls/key.pem";
// The centre's head of this terminal's chain after the last sync: "SEQ HASH"
// (Terminal::put_anchor).
inline constexpr const char *ledger_anchor_item = "ledger.anchor";

class KeyStore {
public:
	// Over a table the caller keeps alive (a device, a simulator), or,
	// when `table` is NULL, over the files of `dir`.
	static Result<std::unique_ptr<KeyStore>> open(const loy_hal_keystore *table, const std::string &dir);
	~KeyStore();
	KeyStore(const KeyStore &) = delete;
	KeyStore &operator=(const KeyStore &) = delete;

	// Errors are storage errors that name the item: a terminal without its
	// keys cannot record anything, whatever the reason.
	Result<crypto::Key> key(const char *name) const;
	Status put_key(const char *name, const crypto::Key &key) const;
	Result<std::string> item(const char *name) const;
	Status put_item(const char *name, const std::string &data) const;
	// Whether an item exists (a get that finds nothing is not an error here).
	Result<bool> has(const char *name) const;

private:
	KeyStore() = default;
	const loy_hal_keystore *table_ = nullptr;
	loy_hal_keystore owned_{}; // the file store, when the caller gave none
};

} // namespace loy
