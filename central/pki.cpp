// Certificates with mbedTLS 2.28's x509write: it has no setter for
// subjectAltName or extKeyUsage, so those extensions are DER we write here.
#include "central/pki.hpp"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "base/atomic_file.hpp"
#include "base/crypto.hpp"

namespace loy::net {

namespace {

constexpr int64_t seconds_per_day = 86400;
// Valid from a day back: a terminal whose clock runs a little late still
// accepts a PKI made today.
constexpr int64_t not_before_back_s = seconds_per_day;
// Long enough that a test installation never meets an expiry.
constexpr int validity_years = 10;
// PEM of one P-256 key or certificate is under 1 KiB; room for long names.
constexpr size_t pem_bytes_max = 4096;
// Serial numbers: 128 random bits minus the sign bit (RFC 5280 4.1.2.2 allows
// up to 20 octets and asks for unpredictability).
constexpr size_t serial_bytes = 16;
// Subject attribute common to every certificate we issue.
constexpr const char *organization = "Loyalty test PKI";

std::string mbed_error(int rc)
{
	char buf[256];
	mbedtls_strerror(rc, buf, sizeof buf);
	return buf;
}

// A generator for one run: making a PKI is a one-off, so no shared state.
struct Drbg {
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	int rc = 0;

	Drbg()
	{
		mbedtls_entropy_init(&entropy);
		mbedtls_ctr_drbg_init(&drbg);
		static const char personal[] = "loyalty-test-pki";
		rc = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
					   reinterpret_cast<const unsigned char *>(personal),
					   sizeof personal - 1);
	}
	Drbg(const Drbg &) = delete;
	Drbg &operator=(const Drbg &) = delete;
	~Drbg()
	{
		mbedtls_ctr_drbg_free(&drbg);
		mbedtls_entropy_free(&entropy);
	}
};

// mbedTLS's DER writers fill a buffer from its end towards its start.
class Der {
public:
	// The bytes written since `mark` (a len() taken earlier) become the
	// contents of one TLV with `tag`.
	void wrap(size_t mark, unsigned char tag)
	{
		size_t inner = len() - mark;
		add(mbedtls_asn1_write_len(&p_, buf_, inner));
		add(mbedtls_asn1_write_tag(&p_, buf_, tag));
	}
	void raw(const void *data, size_t size)
	{
		add(mbedtls_asn1_write_raw_buffer(&p_, buf_, static_cast<const unsigned char *>(data),
						  size));
	}
	void oid(const char *oid, size_t size) { add(mbedtls_asn1_write_oid(&p_, buf_, oid, size)); }

	size_t len() const { return static_cast<size_t>(buf_ + sizeof buf_ - p_); }
	const unsigned char *data() const { return p_; }
	int error() const { return err_; }

private:
	void add(int rc)
	{
		if (rc < 0 && err_ == 0)
			err_ = rc;
	}

	unsigned char buf_[1024];
	unsigned char *p_ = buf_ + sizeof buf_;
	int err_ = 0;
};

constexpr unsigned char sequence_tag = MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE;
constexpr unsigned char dns_name_tag = MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_DNS_NAME;
constexpr unsigned char ip_address_tag = MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_IP_ADDRESS;

// "YYYYMMDDhhmmss" in UTC, as x509write wants it.
std::string x509_time(const std::tm &tm)
{
	return fmt::format("{:04}{:02}{:02}{:02}{:02}{:02}", tm.tm_year + 1900, tm.tm_mon + 1,
			   tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::tm utc(int64_t t)
{
	std::time_t tt = static_cast<std::time_t>(t);
	std::tm tm{};
	::gmtime_r(&tt, &tm);
	return tm;
}

// The issuer's subject as an x509write name string ("O=...,CN=..."), in the
// order of its DER, so that chains match byte for byte.
Result<std::string> subject_string(const mbedtls_x509_crt &crt)
{
	std::string out;
	for (const mbedtls_x509_name *n = &crt.subject; n != nullptr; n = n->next) {
		if (n->oid.p == nullptr)
			continue;
		const char *short_name = nullptr;
		if (mbedtls_oid_get_attr_short_name(&n->oid, &short_name) != 0)
			return Status(Code::bad_argument,
				      "pki: the issuer's subject has an attribute this tool cannot copy");
		if (!out.empty())
			out += ',';
		out += short_name;
		out += '=';
		for (size_t i = 0; i < n->val.len; i++) {
			char c = static_cast<char>(n->val.p[i]);
			if (c == ',')
				out += '\\';
			out += c;
		}
	}
	return out;
}

// Each file whole or not at all, in its mode whatever the umask or an old
// file's, and durable (base/atomic_file.hpp).
Status write_file(const std::string &path, std::string_view data, mode_t mode)
{
	return base::write_file_atomic(path, data, mode).prefixed("pki: ");
}

Status make_dir(const std::string &dir)
{
	struct stat st{};
	if (::stat(dir.c_str(), &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return Status(Code::bad_argument,
				      fmt::format("pki: --out {} exists and is not a directory", dir));
		return Status::ok();
	}
	std::error_code ec;
	std::filesystem::path p(dir);
	if (p.has_parent_path() && !p.parent_path().empty())
		std::filesystem::create_directories(p.parent_path(), ec);
	if (ec || ::mkdir(dir.c_str(), 0700) != 0)
		return Status(Code::storage, fmt::format("pki: cannot create {}: {}", dir,
							 ec ? ec.message() : std::strerror(errno)));
	// mkdir's mode passes through the umask: 0700 is the point.
	if (::chmod(dir.c_str(), 0700) != 0)
		return Status(Code::storage, fmt::format("pki: {}: {}", dir, std::strerror(errno)));
	return Status::ok();
}

struct Pk {
	mbedtls_pk_context pk;
	Pk() { mbedtls_pk_init(&pk); }
	Pk(const Pk &) = delete;
	Pk &operator=(const Pk &) = delete;
	~Pk() { mbedtls_pk_free(&pk); }
};

struct Crt {
	mbedtls_x509_crt crt;
	Crt() { mbedtls_x509_crt_init(&crt); }
	Crt(const Crt &) = delete;
	Crt &operator=(const Crt &) = delete;
	~Crt() { mbedtls_x509_crt_free(&crt); }
};

struct Writer {
	mbedtls_x509write_cert w;
	mbedtls_mpi serial;
	Writer()
	{
		mbedtls_x509write_crt_init(&w);
		mbedtls_mpi_init(&serial);
	}
	Writer(const Writer &) = delete;
	Writer &operator=(const Writer &) = delete;
	~Writer()
	{
		mbedtls_x509write_crt_free(&w);
		mbedtls_mpi_free(&serial);
	}
};

Result<Issued> issue(const CertSpec &spec, const Issued *issuer, Drbg &rng)
{
	auto fail = [&](const char *step, int rc) {
		return Status(Code::internal, fmt::format("pki: certificate for \"{}\": {}: {}", spec.cn,
							  step, mbed_error(rc)));
	};
	if (spec.cn.empty() || spec.cn.find_first_of(",=\\") != std::string::npos)
		return Status(Code::bad_argument,
			      fmt::format("pki: certificate CN \"{}\" must be non-empty, without ',' "
					  "'=' '\\'",
					  spec.cn));
	if (spec.not_after_utc <= spec.not_before_utc)
		return Status(Code::bad_argument, "pki: certificate validity ends before it starts");
	if (rng.rc != 0)
		return fail("seeding the random generator", rng.rc);

	Pk key;
	int rc = mbedtls_pk_setup(&key.pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
	if (rc == 0)
		rc = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key.pk),
					 mbedtls_ctr_drbg_random, &rng.drbg);
	if (rc != 0)
		return fail("key generation", rc);

	std::string subject = fmt::format("O={},CN={}", organization, spec.cn);
	std::string issuer_name = subject;
	Pk issuer_key_store;
	mbedtls_pk_context *issuer_key = &key.pk;
	if (issuer != nullptr) {
		Crt ca;
		rc = mbedtls_x509_crt_parse(&ca.crt,
					    reinterpret_cast<const unsigned char *>(issuer->cert_pem.c_str()),
					    issuer->cert_pem.size() + 1);
		if (rc != 0)
			return Status(Code::bad_argument,
				      fmt::format("pki: issuer certificate: {}", mbed_error(rc)));
		rc = mbedtls_pk_parse_key(&issuer_key_store.pk,
					  reinterpret_cast<const unsigned char *>(issuer->key_pem.c_str()),
					  issuer->key_pem.size() + 1, nullptr, 0);
		if (rc != 0)
			return Status(Code::bad_argument, fmt::format("pki: issuer key: {}", mbed_error(rc)));
		if ((rc = mbedtls_pk_check_pair(&ca.crt.pk, &issuer_key_store.pk)) != 0)
			return Status(Code::bad_argument,
				      fmt::format("pki: the issuer key does not belong to its "
						  "certificate: {}",
						  mbed_error(rc)));
		auto name = subject_string(ca.crt);
		LOY_TRY(name);
		issuer_name = *name;
		issuer_key = &issuer_key_store.pk;
	}

	Writer cw;
	mbedtls_x509write_cert *w = &cw.w;
	mbedtls_x509write_crt_set_version(w, MBEDTLS_X509_CRT_VERSION_3);
	mbedtls_x509write_crt_set_md_alg(w, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(w, &key.pk);
	mbedtls_x509write_crt_set_issuer_key(w, issuer_key);

	unsigned char serial[serial_bytes];
	if ((rc = mbedtls_ctr_drbg_random(&rng.drbg, serial, sizeof serial)) != 0)
		return fail("serial number", rc);
	serial[0] = static_cast<unsigned char>((serial[0] & 0x7f) | 0x01);
	if ((rc = mbedtls_mpi_read_binary(&cw.serial, serial, sizeof serial)) != 0 ||
	    (rc = mbedtls_x509write_crt_set_serial(w, &cw.serial)) != 0)
		return fail("serial number", rc);

	std::string not_before = x509_time(utc(spec.not_before_utc));
	std::string not_after = x509_time(utc(spec.not_after_utc));
	if ((rc = mbedtls_x509write_crt_set_validity(w, not_before.c_str(), not_after.c_str())) != 0)
		return fail("validity", rc);
	if ((rc = mbedtls_x509write_crt_set_subject_name(w, subject.c_str())) != 0)
		return fail("subject", rc);
	if ((rc = mbedtls_x509write_crt_set_issuer_name(w, issuer_name.c_str())) != 0)
		return fail("issuer", rc);

	bool ca = spec.role == CertRole::ca;
	// Path length 0: a test CA signs leaves only.
	if ((rc = mbedtls_x509write_crt_set_basic_constraints(w, ca ? 1 : 0, 0)) != 0)
		return fail("basicConstraints", rc);
	if ((rc = mbedtls_x509write_crt_set_subject_key_identifier(w)) != 0)
		return fail("subjectKeyIdentifier", rc);
	if ((rc = mbedtls_x509write_crt_set_authority_key_identifier(w)) != 0)
		return fail("authorityKeyIdentifier", rc);
	// ECDHE-ECDSA signs the handshake: digitalSignature is what a leaf needs.
	unsigned int usage = ca ? MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN |
					  MBEDTLS_X509_KU_DIGITAL_SIGNATURE
				: MBEDTLS_X509_KU_DIGITAL_SIGNATURE;
	if ((rc = mbedtls_x509write_crt_set_key_usage(w, usage)) != 0)
		return fail("keyUsage", rc);

	if (!ca) {
		// ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId
		Der eku;
		if (spec.role == CertRole::server)
			eku.oid(MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH));
		else
			eku.oid(MBEDTLS_OID_CLIENT_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH));
		eku.wrap(0, sequence_tag);
		if (eku.error() != 0 ||
		    (rc = mbedtls_x509write_crt_set_extension(
			     w, MBEDTLS_OID_EXTENDED_KEY_USAGE,
			     MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE), 0, eku.data(),
			     eku.len())) != 0)
			return fail("extKeyUsage", eku.error() != 0 ? eku.error() : rc);
	}

	if (!spec.dns_names.empty() || !spec.ip_addresses.empty()) {
		// GeneralNames ::= SEQUENCE OF GeneralName; dNSName [2] IA5String,
		// iPAddress [7] OCTET STRING (4 or 16 bytes, network order). Written
		// back to front, so the DER keeps the order given.
		Der san;
		for (auto it = spec.ip_addresses.rbegin(); it != spec.ip_addresses.rend(); ++it) {
			unsigned char addr[16];
			size_t size = 0;
			if (::inet_pton(AF_INET, it->c_str(), addr) == 1)
				size = 4;
			else if (::inet_pton(AF_INET6, it->c_str(), addr) == 1)
				size = 16;
			else
				return Status(Code::bad_argument,
					      fmt::format("pki: \"{}\" is not an IP address", *it));
			size_t mark = san.len();
			san.raw(addr, size);
			san.wrap(mark, ip_address_tag);
		}
		for (auto it = spec.dns_names.rbegin(); it != spec.dns_names.rend(); ++it) {
			if (it->empty())
				return Status(Code::bad_argument, "pki: empty DNS name");
			size_t mark = san.len();
			san.raw(it->data(), it->size());
			san.wrap(mark, dns_name_tag);
		}
		san.wrap(0, sequence_tag);
		if (san.error() != 0 ||
		    (rc = mbedtls_x509write_crt_set_extension(
			     w, MBEDTLS_OID_SUBJECT_ALT_NAME,
			     MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0, san.data(),
			     san.len())) != 0)
			return fail("subjectAltName", san.error() != 0 ? san.error() : rc);
	}

	Issued out;
	std::string pem(pem_bytes_max, '\0');
	rc = mbedtls_x509write_crt_pem(w, reinterpret_cast<unsigned char *>(pem.data()), pem.size(),
				       mbedtls_ctr_drbg_random, &rng.drbg);
	if (rc != 0)
		return fail("signing", rc);
	out.cert_pem = pem.c_str();
	std::fill(pem.begin(), pem.end(), '\0');
	rc = mbedtls_pk_write_key_pem(&key.pk, reinterpret_cast<unsigned char *>(pem.data()),
				      pem.size());
	if (rc != 0)
		return fail("writing the key", rc);
	out.key_pem = pem.c_str();
	std::fill(pem.begin(), pem.end(), '\0');
	return out;
}

} // namespace

bool valid_terminal_id(std::string_view id)
{
	if (id.empty() || id.size() > terminal_id_length_max)
		return false;
	for (char c : id)
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	return true;
}

Result<Issued> issue_certificate(const CertSpec &spec, const Issued *issuer)
{
	Drbg rng;
	return issue(spec, issuer, rng);
}

Status make_test_pki(const std::string &out_dir, const std::vector<std::string> &terminals,
		     int64_t now_utc)
{
	// Everything is checked before the first file is written.
	if (out_dir.empty())
		return Status(Code::bad_argument, "pki: no output directory given");
	std::set<std::string> seen;
	for (const auto &id : terminals) {
		if (!valid_terminal_id(id))
			return Status(Code::bad_argument,
				      fmt::format("pki: terminal id \"{}\": use 1 to {} letters, digits, "
						  "'-', '_' or '.'",
						  id, terminal_id_length_max));
		// Their files would overwrite the CA's, the server's or the token key.
		if (id == "ca" || id == "server" || id == "token")
			return Status(Code::bad_argument,
				      fmt::format("pki: terminal id \"{}\" is reserved (its files would "
						  "replace {}.pem / {}.key)",
						  id, id, id));
		if (!seen.insert(id).second)
			return Status(Code::bad_argument,
				      fmt::format("pki: terminal id \"{}\" is given twice", id));
	}

	std::tm end = utc(now_utc);
	end.tm_year += validity_years;
	if (end.tm_mon == 1 && end.tm_mday == 29)
		end.tm_mday = 28; // 10 years after a 29 February may not have one
	int64_t not_after = static_cast<int64_t>(::timegm(&end));
	int64_t not_before = now_utc - not_before_back_s;

	LOY_TRY(make_dir(out_dir));
	Drbg rng;
	auto path = [&](const std::string &name) { return out_dir + "/" + name; };

	// A CN of its own per CA: two test PKIs never look like one.
	unsigned char tag[4];
	if (rng.rc != 0 || mbedtls_ctr_drbg_random(&rng.drbg, tag, sizeof tag) != 0)
		return Status(Code::internal, "pki: cannot draw random bytes");
	CertSpec ca_spec;
	ca_spec.role = CertRole::ca;
	ca_spec.cn = "Loyalty test CA " + crypto::to_hex(tag, sizeof tag);
	ca_spec.not_before_utc = not_before;
	ca_spec.not_after_utc = not_after;
	auto ca = issue(ca_spec, nullptr, rng);
	LOY_TRY(ca);
	LOY_TRY(write_file(path("ca.key"), ca->key_pem, 0600));
	LOY_TRY(write_file(path("ca.pem"), ca->cert_pem, 0644));

	CertSpec server_spec;
	server_spec.role = CertRole::server;
	server_spec.cn = "localhost";
	server_spec.dns_names = {"localhost"};
	server_spec.ip_addresses = {"127.0.0.1"};
	server_spec.not_before_utc = not_before;
	server_spec.not_after_utc = not_after;
	auto server = issue(server_spec, &*ca, rng);
	LOY_TRY(server);
	LOY_TRY(write_file(path("server.key"), server->key_pem, 0600));
	LOY_TRY(write_file(path("server.pem"), server->cert_pem, 0644));

	for (const auto &id : terminals) {
		CertSpec spec;
		spec.role = CertRole::client;
		spec.cn = id;
		spec.not_before_utc = not_before;
		spec.not_after_utc = not_after;
		auto client = issue(spec, &*ca, rng);
		LOY_TRY(client);
		LOY_TRY(write_file(path(id + ".key"), client->key_pem, 0600));
		LOY_TRY(write_file(path(id + ".pem"), client->cert_pem, 0644));
	}

	auto token = crypto::random_key();
	LOY_TRY(token);
	// Each write synced the directory too.
	return crypto::write_key_file(path("token.key"), *token);
}

} // namespace loy::net
