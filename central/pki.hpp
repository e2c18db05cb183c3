// A test PKI for `loyalty-central pki init` (cli.md): a CA, a server
// certificate for localhost and 127.0.0.1, one client certificate per
// terminal (subject CN = terminal id) and the chain's card-token key. ECDSA
// P-256 keys, SHA-256 signatures. Real deployments bring their own PKI.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"

namespace loy::net {

// The same rule as the terminal's --terminal-id: 1 to 64 letters, digits,
// '-', '_' or '.'.
inline constexpr size_t terminal_id_length_max = 64;
bool valid_terminal_id(std::string_view id);

// Writes into out_dir (made 0700 when missing): ca.pem, ca.key, server.pem,
// server.key, <id>.pem and <id>.key per terminal, token.key. Keys are mode
// 0600; every file is written atomically (temporary file, fsync, rename).
// Certificates are valid from now_utc - 1 day to now_utc + 10 years.
// Existing files of those names are replaced.
Status make_test_pki(const std::string &out_dir, const std::vector<std::string> &terminals,
		     int64_t now_utc);

// The building block, for tests that need certificates make_test_pki does
// not make (another name, no IP address, expired, a foreign CA).
enum class CertRole {
	ca,     // basicConstraints CA:true (path length 0), keyCertSign
	server, // CA:false, digitalSignature, extKeyUsage serverAuth
	client, // CA:false, digitalSignature, extKeyUsage clientAuth
};

struct CertSpec {
	CertRole role = CertRole::client;
	std::string cn;                        // subject "O=Loyalty test PKI,CN=<cn>"
	std::vector<std::string> dns_names;    // subjectAltName dNSName entries
	std::vector<std::string> ip_addresses; // subjectAltName iPAddress: "127.0.0.1", "::1"
	int64_t not_before_utc = 0;
	int64_t not_after_utc = 0;
};

struct Issued {
	std::string cert_pem;
	std::string key_pem;
};

// A fresh P-256 key and a certificate for it, signed by `issuer` (a CA's
// certificate and key), or self-signed when `issuer` is null.
Result<Issued> issue_certificate(const CertSpec &spec, const Issued *issuer);

} // namespace loy::net
