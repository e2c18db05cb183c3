// Back-office accounts (cli.md, "The back office"): passwords kept under a
// slow salted hash (PBKDF2-HMAC-SHA-256 through mbedTLS, the iterations in
// the stored text so that they can grow), second factors by TOTP (RFC 6238:
// HMAC-SHA-1, 6 digits, 30-second steps) and their otpauth:// URIs for an
// authenticator app. No clock here: the caller gives the time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"

namespace loy::central {

inline constexpr size_t admin_name_bytes_max = 64;
inline constexpr size_t password_bytes_min = 10;
inline constexpr size_t password_bytes_max = 1024;
// OWASP's figure for PBKDF2-HMAC-SHA-256 (2023): about 0.3 s a sign-in on
// this project's VM, paid once per attempt.
inline constexpr int64_t password_iterations = 600000;
inline constexpr size_t totp_secret_bytes = 20; // RFC 4226's recommended 160 bits
inline constexpr int64_t totp_step_s = 30;

enum class Role { viewer, manager };
const char *role_name(Role r);
Result<Role> parse_role(std::string_view text);

// A user name: 1 to 64 bytes of letters, digits and . _ - @ (it appears in
// URIs and the audit log as it is).
Status check_admin_name(std::string_view name);
// 10 to 1,024 bytes, not all blank; its newline (stdin's) taken off first by
// the caller.
Status check_password_text(std::string_view password);

// "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>", from fresh salt.
Result<std::string> hash_password(std::string_view password, int64_t iterations = password_iterations);
// In constant time over the hash; false for a stored text of another form.
bool password_matches(std::string_view password, const std::string &stored);

std::string base32_encode(const std::vector<uint8_t> &bytes);
std::optional<std::vector<uint8_t>> base32_decode(std::string_view text);
Result<std::vector<uint8_t>> new_totp_secret();

// RFC 6238's code of `secret` at `step` (the Unix time / 30), 6 digits.
uint32_t totp_code(const std::vector<uint8_t> &secret, int64_t step);
// The step `code` (6 decimal digits) is the code of: now's step or the one
// before, and only if after `last_step` (a code is spent once).
std::optional<int64_t> totp_match(const std::vector<uint8_t> &secret, std::string_view code, int64_t now_utc,
				  int64_t last_step);
// otpauth://totp/<issuer>:<user>?secret=...&issuer=...&algorithm=SHA1&digits=6&period=30
std::string totp_uri(std::string_view issuer, std::string_view user, const std::vector<uint8_t> &secret);

} // namespace loy::central
