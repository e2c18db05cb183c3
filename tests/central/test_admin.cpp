// The back office's account secrets (central/admin.hpp): RFC 6238's TOTP
// test vectors, RFC 4648's base32 vectors, codes of the previous step
// accepted and spent codes refused, the password hash's round trip, and
// (the stored accounts: test_stores.cpp, on each store).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "central/admin.hpp"

using namespace loy::central;

namespace {

std::vector<uint8_t> bytes(const std::string &s) { return std::vector<uint8_t>(s.begin(), s.end()); }

} // namespace

TEST_CASE("admin: TOTP codes are RFC 6238's (SHA-1, 6 digits, 30 s)")
{
	const auto secret = bytes("12345678901234567890");
	// RFC 6238 appendix B, the last six of its eight digits.
	CHECK(totp_code(secret, 59 / 30) == 287082);
	CHECK(totp_code(secret, 1111111109 / 30) == 81804);
	CHECK(totp_code(secret, 1111111111 / 30) == 50471);
	CHECK(totp_code(secret, 1234567890 / 30) == 5924);
	CHECK(totp_code(secret, 2000000000 / 30) == 279037);
	CHECK(totp_code(secret, int64_t{20000000000} / 30) == 353130);
}

TEST_CASE("admin: a code of this step or the one before, once")
{
	const auto secret = bytes("12345678901234567890");
	const int64_t now = 1111111111; // step 37037037
	CHECK(totp_match(secret, "050471", now, -1) == int64_t{37037037});
	CHECK(totp_match(secret, "081804", now, -1) == int64_t{37037036}); // the previous step
	CHECK_FALSE(totp_match(secret, "050471", now + 60, -1));           // two steps later: too old
	CHECK_FALSE(totp_match(secret, "050471", now, 37037037));          // spent
	CHECK_FALSE(totp_match(secret, "081804", now, 37037036));
	CHECK_FALSE(totp_match(secret, "50471", now, -1));
	CHECK_FALSE(totp_match(secret, "05047a", now, -1));
	CHECK_FALSE(totp_match(secret, "0504711", now, -1));
	CHECK_FALSE(totp_match(secret, "123456", now, -1));
}

TEST_CASE("admin: base32 as RFC 4648 writes it, without padding")
{
	CHECK(base32_encode(bytes("")) == "");
	CHECK(base32_encode(bytes("f")) == "MY");
	CHECK(base32_encode(bytes("fo")) == "MZXQ");
	CHECK(base32_encode(bytes("foo")) == "MZXW6");
	CHECK(base32_encode(bytes("foob")) == "MZXW6YQ");
	CHECK(base32_encode(bytes("fooba")) == "MZXW6YTB");
	CHECK(base32_encode(bytes("foobar")) == "MZXW6YTBOI");
	CHECK(base32_decode("MZXW6YTBOI") == bytes("foobar"));
	CHECK(base32_decode("mzxw6ytboi======") == bytes("foobar"));
	CHECK_FALSE(base32_decode("MZXW1"));
	auto s = new_totp_secret();
	REQUIRE(s);
	CHECK(s->size() == totp_secret_bytes);
	CHECK(base32_decode(base32_encode(*s)) == *s);
	CHECK(totp_uri("loyalty", "anna", bytes("foobar")) ==
	      "otpauth://totp/loyalty:anna?secret=MZXW6YTBOI&issuer=loyalty&algorithm=SHA1&digits=6&period=30");
}

TEST_CASE("admin: passwords under a salted PBKDF2 hash")
{
	auto h = hash_password("correct horse battery", 1000);
	REQUIRE(h);
	CHECK(h->rfind("pbkdf2-sha256$1000$", 0) == 0);
	CHECK(password_matches("correct horse battery", *h));
	CHECK_FALSE(password_matches("correct horse batterz", *h));
	CHECK_FALSE(password_matches("", *h));
	auto again = hash_password("correct horse battery", 1000);
	REQUIRE(again);
	CHECK(*again != *h); // salted
	CHECK_FALSE(password_matches("correct horse battery", "plain"));
	CHECK_FALSE(password_matches("correct horse battery", h->substr(0, h->size() - 1)));
	CHECK(check_password_text("short").code() == loy::Code::bad_argument);
	CHECK(check_password_text("          ").code() == loy::Code::bad_argument);
	CHECK(check_password_text("long enough here"));
	CHECK(check_admin_name("anna.k@shop"));
	CHECK_FALSE(check_admin_name(""));
	CHECK_FALSE(check_admin_name("anna k"));
	CHECK_FALSE(check_admin_name(std::string(65, 'a')));
	CHECK(parse_role("manager").value() == Role::manager);
	CHECK_FALSE(parse_role("root"));
}
