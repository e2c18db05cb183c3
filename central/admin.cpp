// Back-office accounts' secrets (admin.hpp).
#include "central/admin.hpp"

#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>

#include <algorithm>

#include <fmt/format.h>

#include "base/crypto.hpp"

namespace loy::central {

namespace {

constexpr size_t salt_bytes = 16, hash_bytes = sizeof(crypto::Digest);
constexpr char base32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

Result<std::vector<uint8_t>> random_bytes(size_t n)
{
	auto k = crypto::random_key();
	if (!k)
		return k.status();
	return std::vector<uint8_t>(k->begin(), k->begin() + static_cast<std::ptrdiff_t>(std::min(n, k->size())));
}

bool pbkdf2(std::string_view password, const std::vector<uint8_t> &salt, int64_t iterations, uint8_t *out)
{
	mbedtls_md_context_t md;
	mbedtls_md_init(&md);
	int rc = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
	if (rc == 0)
		rc = mbedtls_pkcs5_pbkdf2_hmac(&md, reinterpret_cast<const unsigned char *>(password.data()),
					       password.size(), salt.data(), salt.size(),
					       static_cast<unsigned int>(iterations), static_cast<uint32_t>(hash_bytes), out);
	mbedtls_md_free(&md);
	return rc == 0;
}

} // namespace

const char *role_name(Role r) { return r == Role::manager ? "manager" : "viewer"; }

Result<Role> parse_role(std::string_view text)
{
	if (text == "viewer")
		return Role::viewer;
	if (text == "manager")
		return Role::manager;
	return Status(Code::bad_argument, "--role must be viewer or manager");
}

Status check_admin_name(std::string_view name)
{
	const bool ok = !name.empty() && name.size() <= admin_name_bytes_max &&
			std::all_of(name.begin(), name.end(), [](char c) {
				return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
				       c == '.' || c == '_' || c == '-' || c == '@';
			});
	if (!ok)
		return Status(Code::bad_argument, fmt::format("--user must be 1 to {} letters, digits or . _ - @",
							      admin_name_bytes_max));
	return Status::ok();
}

Status check_password_text(std::string_view password)
{
	if (password.size() < password_bytes_min || password.size() > password_bytes_max)
		return Status(Code::bad_argument, fmt::format("the password (on standard input) must be {} to {} bytes",
							      password_bytes_min, password_bytes_max));
	if (password.find_first_not_of(" \t\r\n") == std::string_view::npos)
		return Status(Code::bad_argument, "the password (on standard input) is blank");
	return Status::ok();
}

Result<std::string> hash_password(std::string_view password, int64_t iterations)
{
	auto salt = random_bytes(salt_bytes);
	if (!salt)
		return salt.status();
	uint8_t hash[hash_bytes];
	if (iterations < 1 || iterations > 100'000'000 || !pbkdf2(password, *salt, iterations, hash))
		return Status(Code::internal, "cannot hash the password (PBKDF2)");
	return fmt::format("pbkdf2-sha256${}${}${}", iterations, crypto::to_hex(salt->data(), salt->size()),
			   crypto::to_hex(hash, sizeof hash));
}

bool password_matches(std::string_view password, const std::string &stored)
{
	// pbkdf2-sha256$ITER$SALT$HASH
	const std::string prefix = "pbkdf2-sha256$";
	if (stored.rfind(prefix, 0) != 0)
		return false;
	const size_t a = prefix.size(), b = stored.find('$', a), c = b == std::string::npos ? b : stored.find('$', b + 1);
	if (b == std::string::npos || c == std::string::npos || b - a > 9 || stored.size() - c - 1 != 2 * hash_bytes ||
	    c - b - 1 != 2 * salt_bytes)
		return false;
	int64_t iterations = 0;
	for (size_t i = a; i < b; i++) {
		if (stored[i] < '0' || stored[i] > '9')
			return false;
		iterations = iterations * 10 + (stored[i] - '0');
	}
	std::vector<uint8_t> salt(salt_bytes);
	crypto::Digest want, got; // hash_bytes each
	if (iterations < 1 || !crypto::from_hex(std::string_view(stored).substr(b + 1, c - b - 1), salt.data(), salt.size()) ||
	    !crypto::from_hex(std::string_view(stored).substr(c + 1), want.data(), want.size()) ||
	    !pbkdf2(password, salt, iterations, got.data()))
		return false;
	return crypto::equal(want, got);
}

std::string base32_encode(const std::vector<uint8_t> &bytes)
{
	std::string out;
	uint32_t buffer = 0;
	int bits = 0;
	for (uint8_t byte : bytes) {
		buffer = (buffer << 8) | byte;
		bits += 8;
		while (bits >= 5) {
			out += base32_alphabet[(buffer >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		out += base32_alphabet[(buffer << (5 - bits)) & 31];
	return out; // no padding: what authenticator apps take
}

std::optional<std::vector<uint8_t>> base32_decode(std::string_view text)
{
	std::vector<uint8_t> out;
	uint32_t buffer = 0;
	int bits = 0;
	for (char ch : text) {
		if (ch == '=')
			break;
		const char up = (ch >= 'a' && ch <= 'z') ? static_cast<char>(ch - 'a' + 'A') : ch;
		const char *at = std::find(base32_alphabet, base32_alphabet + 32, up);
		if (at == base32_alphabet + 32)
			return std::nullopt;
		buffer = (buffer << 5) | static_cast<uint32_t>(at - base32_alphabet);
		bits += 5;
		if (bits >= 8) {
			out.push_back(static_cast<uint8_t>((buffer >> (bits - 8)) & 0xff));
			bits -= 8;
		}
	}
	return out;
}

Result<std::vector<uint8_t>> new_totp_secret() { return random_bytes(totp_secret_bytes); }

uint32_t totp_code(const std::vector<uint8_t> &secret, int64_t step)
{
	uint8_t counter[8];
	for (int i = 7; i >= 0; i--) {
		counter[i] = static_cast<uint8_t>(static_cast<uint64_t>(step) & 0xff);
		step = static_cast<int64_t>(static_cast<uint64_t>(step) >> 8);
	}
	uint8_t mac[20];
	if (mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA1), secret.data(), secret.size(), counter,
			    sizeof counter, mac) != 0)
		return UINT32_MAX; // never 6 digits: matches no code
	const unsigned offset = mac[19] & 0x0f;
	const uint32_t binary = (static_cast<uint32_t>(mac[offset] & 0x7f) << 24) |
				(static_cast<uint32_t>(mac[offset + 1]) << 16) |
				(static_cast<uint32_t>(mac[offset + 2]) << 8) | static_cast<uint32_t>(mac[offset + 3]);
	return binary % 1000000;
}

std::optional<int64_t> totp_match(const std::vector<uint8_t> &secret, std::string_view code, int64_t now_utc,
				  int64_t last_step)
{
	if (code.size() != 6 || code.find_first_not_of("0123456789") != std::string_view::npos || secret.empty())
		return std::nullopt;
	uint32_t want = 0;
	for (char ch : code)
		want = want * 10 + static_cast<uint32_t>(ch - '0');
	const int64_t now_step = now_utc >= 0 ? now_utc / totp_step_s : -1;
	for (int64_t step : {now_step, now_step - 1})
		if (step >= 0 && step > last_step && totp_code(secret, step) == want)
			return step;
	return std::nullopt;
}

std::string totp_uri(std::string_view issuer, std::string_view user, const std::vector<uint8_t> &secret)
{
	// Names are of URI-safe characters (check_admin_name); the issuer is ours.
	return fmt::format("otpauth://totp/{0}:{1}?secret={2}&issuer={0}&algorithm=SHA1&digits=6&period={3}", issuer,
			   user, base32_encode(secret), totp_step_s);
}

} // namespace loy::central
