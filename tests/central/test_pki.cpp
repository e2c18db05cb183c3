// make_test_pki (central/pki.hpp): the files, their modes, and what is inside
// each certificate (read back with mbedTLS's parser); terminal ids it refuses.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "sync/fixture.hpp"
#include "base/crypto.hpp"
#include "central/pki.hpp"

using namespace sync_test;
using loy::Code;

namespace {

// 2024-02-29 12:00:00 UTC: a leap day, so "10 years later" needs care.
constexpr int64_t leap_day_noon = 1709208000;

mode_t mode_of(const std::string &path)
{
	struct stat st{};
	REQUIRE(::stat(path.c_str(), &st) == 0);
	return st.st_mode & 07777;
}

struct Cert {
	mbedtls_x509_crt crt;
	explicit Cert(const std::string &pem)
	{
		mbedtls_x509_crt_init(&crt);
		int rc = mbedtls_x509_crt_parse(&crt, reinterpret_cast<const unsigned char *>(pem.c_str()),
						pem.size() + 1);
		REQUIRE(rc == 0);
	}
	~Cert() { mbedtls_x509_crt_free(&crt); }
	Cert(const Cert &) = delete;
	Cert &operator=(const Cert &) = delete;

	bool has_eku(const char *oid, size_t len) const
	{
		return mbedtls_x509_crt_check_extended_key_usage(&crt, oid, len) == 0;
	}
	// The SAN entries as "DNS:x" / "IP:a.b.c.d".
	std::vector<std::string> sans() const
	{
		std::vector<std::string> out;
		for (const mbedtls_x509_sequence *s = &crt.subject_alt_names; s && s->buf.p; s = s->next) {
			std::string v(reinterpret_cast<const char *>(s->buf.p), s->buf.len);
			if (s->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_DNS_NAME))
				out.push_back("DNS:" + v);
			else if (s->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_IP_ADDRESS) &&
				 v.size() == 4)
				out.push_back("IP:" + std::to_string(static_cast<unsigned char>(v[0])) + "." +
					      std::to_string(static_cast<unsigned char>(v[1])) + "." +
					      std::to_string(static_cast<unsigned char>(v[2])) + "." +
					      std::to_string(static_cast<unsigned char>(v[3])));
			else
				out.push_back("other");
		}
		return out;
	}
	std::string subject() const
	{
		char buf[256];
		REQUIRE(mbedtls_x509_dn_gets(buf, sizeof buf, &crt.subject) > 0);
		return buf;
	}
	std::string issuer() const
	{
		char buf[256];
		REQUIRE(mbedtls_x509_dn_gets(buf, sizeof buf, &crt.issuer) > 0);
		return buf;
	}
};

// Verifies `leaf` against `ca`; the flags (0: trusted). `cn` may be null.
uint32_t verify(const Cert &leaf, const Cert &ca, const char *cn)
{
	uint32_t flags = 0;
	mbedtls_x509_crt_verify(const_cast<mbedtls_x509_crt *>(&leaf.crt),
				const_cast<mbedtls_x509_crt *>(&ca.crt), nullptr, cn, &flags, nullptr,
				nullptr);
	return flags;
}

} // namespace

TEST_CASE("pki: make_test_pki writes the files with their modes", "[pki]")
{
	TempDir tmp;
	std::string dir = tmp.path() + "/new/pki"; // parents made too
	auto st = loy::net::make_test_pki(dir, {"T1", "store-2.till_9"}, leap_day_noon);
	INFO(st.message());
	REQUIRE(st);
	CHECK(mode_of(dir) == 0700);
	for (const char *key : {"ca.key", "server.key", "T1.key", "store-2.till_9.key", "token.key"}) {
		INFO(key);
		CHECK(mode_of(dir + "/" + key) == 0600);
	}
	for (const char *pem : {"ca.pem", "server.pem", "T1.pem", "store-2.till_9.pem"}) {
		INFO(pem);
		CHECK(mode_of(dir + "/" + pem) == 0644);
		CHECK(read_file(dir + "/" + pem).rfind("-----BEGIN CERTIFICATE-----\n", 0) == 0);
	}
	CHECK(read_file(dir + "/T1.key").rfind("-----BEGIN EC PRIVATE KEY-----\n", 0) == 0);
	// No temporary file left behind (whatever the writer names them).
	for (const auto &entry : std::filesystem::directory_iterator(dir)) {
		INFO(entry.path().filename().string());
		CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);
	}

	std::string token = read_file(dir + "/token.key");
	REQUIRE(token.size() == 65);
	CHECK(token.back() == '\n');
	CHECK(token.find_first_not_of("0123456789abcdef") == 64);
	CHECK(loy::crypto::read_key_file(dir + "/token.key"));

	// Again into the same dir: replaced, not refused; new keys.
	std::string old_key = read_file(dir + "/T1.key");
	REQUIRE(loy::net::make_test_pki(dir, {"T1"}, leap_day_noon));
	CHECK(read_file(dir + "/T1.key") != old_key);
}

TEST_CASE("pki: what each certificate says", "[pki]")
{
	TempDir tmp;
	std::string dir = tmp.path() + "/pki";
	REQUIRE(loy::net::make_test_pki(dir, {"T1"}, static_cast<int64_t>(std::time(nullptr))));
	Cert ca(read_file(dir + "/ca.pem"));
	Cert server(read_file(dir + "/server.pem"));
	Cert t1(read_file(dir + "/T1.pem"));

	for (const Cert *c : {&ca, &server, &t1}) {
		CHECK(c->crt.version == 3);
		CHECK(c->crt.sig_md == MBEDTLS_MD_SHA256);
		CHECK(mbedtls_pk_get_type(&c->crt.pk) == MBEDTLS_PK_ECKEY);
		CHECK(mbedtls_pk_get_bitlen(&c->crt.pk) == 256);
		CHECK(c->issuer() == ca.subject());
		CHECK(c->crt.serial.len == 16);
	}
	CHECK(ca.crt.ca_istrue == 1);
	CHECK(ca.crt.max_pathlen == 1); // mbedTLS counts one more than RFC 5280: pathlen 0
	CHECK(mbedtls_x509_crt_check_key_usage(&ca.crt, MBEDTLS_X509_KU_KEY_CERT_SIGN) == 0);
	CHECK(ca.subject().rfind("O=Loyalty test PKI, CN=Loyalty test CA ", 0) == 0);

	CHECK(server.crt.ca_istrue == 0);
	CHECK((server.crt.ext_types & MBEDTLS_X509_EXT_BASIC_CONSTRAINTS) != 0);
	CHECK(server.subject() == "O=Loyalty test PKI, CN=localhost");
	CHECK(server.sans() == std::vector<std::string>{"DNS:localhost", "IP:127.0.0.1"});
	CHECK(server.has_eku(MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)));
	CHECK(!server.has_eku(MBEDTLS_OID_CLIENT_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)));
	CHECK(mbedtls_x509_crt_check_key_usage(&server.crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE) == 0);
	CHECK(mbedtls_x509_crt_check_key_usage(&server.crt, MBEDTLS_X509_KU_KEY_CERT_SIGN) != 0);
	CHECK(verify(server, ca, "localhost") == 0);
	CHECK(verify(server, ca, "example.com") == MBEDTLS_X509_BADCERT_CN_MISMATCH);

	CHECK(t1.crt.ca_istrue == 0);
	CHECK(t1.subject() == "O=Loyalty test PKI, CN=T1");
	CHECK(t1.sans().empty());
	CHECK(t1.has_eku(MBEDTLS_OID_CLIENT_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)));
	CHECK(!t1.has_eku(MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)));
	CHECK(verify(t1, ca, nullptr) == 0);

	// A leaf cannot sign: a certificate "issued" by T1 does not chain.
	loy::net::CertSpec spec;
	spec.cn = "T9";
	spec.not_before_utc = static_cast<int64_t>(std::time(nullptr)) - 60;
	spec.not_after_utc = spec.not_before_utc + 86400;
	loy::net::Issued t1_issuer{read_file(dir + "/T1.pem"), read_file(dir + "/T1.key")};
	auto t9 = loy::net::issue_certificate(spec, &t1_issuer);
	REQUIRE(t9);
	Cert t9c(t9->cert_pem);
	uint32_t flags = 0;
	mbedtls_x509_crt chain;
	mbedtls_x509_crt_init(&chain);
	REQUIRE(mbedtls_x509_crt_parse(&chain, reinterpret_cast<const unsigned char *>(t9->cert_pem.c_str()),
				       t9->cert_pem.size() + 1) == 0);
	std::string t1_pem = read_file(dir + "/T1.pem");
	REQUIRE(mbedtls_x509_crt_parse(&chain, reinterpret_cast<const unsigned char *>(t1_pem.c_str()),
				       t1_pem.size() + 1) == 0);
	mbedtls_x509_crt_verify(&chain, &ca.crt, nullptr, nullptr, &flags, nullptr, nullptr);
	mbedtls_x509_crt_free(&chain);
	CHECK(flags != 0);
}

TEST_CASE("pki: validity from a day back to ten years on", "[pki]")
{
	TempDir tmp;
	std::string dir = tmp.path() + "/pki";
	REQUIRE(loy::net::make_test_pki(dir, {"T1"}, leap_day_noon));
	for (const char *name : {"ca.pem", "server.pem", "T1.pem"}) {
		INFO(name);
		Cert c(read_file(dir + "/" + name));
		const mbedtls_x509_time &f = c.crt.valid_from, &t = c.crt.valid_to;
		CHECK((f.year == 2024 && f.mon == 2 && f.day == 28 && f.hour == 12 && f.min == 0));
		CHECK((t.year == 2034 && t.mon == 2 && t.day == 28 && t.hour == 12 && t.min == 0));
	}
}

TEST_CASE("pki: terminal ids it refuses, before writing anything", "[pki]")
{
	struct Row {
		const char *name;
		std::vector<std::string> ids;
		const char *error;
	};
	const Row rows[] = {
		{"empty id", {""}, "terminal id \"\": use 1 to 64"},
		{"65 characters", {std::string(65, 'a')}, "use 1 to 64"},
		{"a space", {"T 1"}, "use 1 to 64"},
		{"a slash", {"a/b"}, "use 1 to 64"},
		{"a path", {"../T1"}, "use 1 to 64"},
		{"non-ASCII", {"T\xc3\xa9"}, "use 1 to 64"},
		{"a comma", {"T,1"}, "use 1 to 64"},
		{"the CA's name", {"ca"}, "is reserved"},
		{"the server's name", {"server"}, "is reserved"},
		{"the token key's name", {"token"}, "is reserved"},
		{"twice", {"T1", "T2", "T1"}, "given twice"},
		{"good then bad", {"T1", "bad id"}, "use 1 to 64"},
	};
	for (const Row &row : rows) {
		INFO(row.name);
		TempDir tmp;
		std::string dir = tmp.path() + "/pki";
		auto st = loy::net::make_test_pki(dir, row.ids, leap_day_noon);
		REQUIRE(!st);
		INFO(st.message());
		CHECK(st.code() == Code::bad_argument);
		CHECK(st.message().find(row.error) != std::string::npos);
		CHECK(::access(dir.c_str(), F_OK) != 0);
	}

	TempDir tmp;
	CHECK(loy::net::make_test_pki(tmp.path() + "/pki", {std::string(64, 'x'), "a-b_c.D9"},
				      leap_day_noon));
	CHECK(loy::net::valid_terminal_id("T1"));
	CHECK(!loy::net::valid_terminal_id(""));

	// The output path names a file.
	std::string file = tmp.path() + "/pki/ca.pem";
	auto st = loy::net::make_test_pki(file, {"T1"}, leap_day_noon);
	REQUIRE(!st);
	CHECK(st.code() == Code::bad_argument);
	CHECK(st.message().find("is not a directory") != std::string::npos);

	// A directory that cannot be made is a storage error.
	auto denied = loy::net::make_test_pki(file + "/sub", {"T1"}, leap_day_noon);
	REQUIRE(!denied);
	CHECK(denied.code() == Code::storage);
}
