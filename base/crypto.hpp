// Hashes, MACs and keys for the ledger: SHA-256 for the hash chain,
// HMAC-SHA-256 for entry MACs and member tokens (mbedTLS), key bytes from the
// kernel's random source, and key files written atomically with mode 0600.
// In base/ because the key store (hal/linux) and the ledger (storage/) both
// keep keys in this format.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.hpp"

namespace loy::crypto {

inline constexpr size_t key_bytes = 32;
using Digest = std::array<uint8_t, 32>;
using Key = std::array<uint8_t, key_bytes>;

Digest sha256(std::string_view data);
Digest hmac_sha256(const Key &key, std::string_view data);

std::string to_hex(const uint8_t *data, size_t size);
inline std::string to_hex(const Digest &d) { return to_hex(d.data(), d.size()); }
bool from_hex(std::string_view hex, uint8_t *out, size_t size);

Result<Key> random_key();

// Constant-time comparison: MAC checks must not leak where they differ
// (a length that differs returns at once: lengths are not the secret).
bool equal(const Digest &a, const Digest &b);
bool equal(std::string_view a, std::string_view b);

// A key file holds the key as 64 hex digits and a newline.
Result<Key> read_key_file(const std::string &path);
// Mode 0600, through base::write_file_atomic: a crash leaves the old key or
// the new one, never half of one, and the new one is durable once it returns.
Status write_key_file(const std::string &path, const Key &key);

} // namespace loy::crypto
