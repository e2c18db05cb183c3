// SHA-256 and HMAC through mbedTLS; keys from getrandom(2); key files
// replaced through base/atomic_file.hpp.
#include "base/crypto.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <mbedtls/md.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

#include "base/atomic_file.hpp"

namespace loy::crypto {

Digest sha256(std::string_view data)
{
	Digest out;
	const auto *p = reinterpret_cast<const unsigned char *>(data.data());
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
	int rc = mbedtls_sha256(p, data.size(), out.data(), 0);
#else
	int rc = mbedtls_sha256_ret(p, data.size(), out.data(), 0);
#endif
	// Fails only for bad arguments or a hardware accelerator fault.
	assert(rc == 0);
	(void)rc;
	return out;
}

Digest hmac_sha256(const Key &key, std::string_view data)
{
	Digest out;
	const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
	int rc = mbedtls_md_hmac(md, key.data(), key.size(),
				 reinterpret_cast<const unsigned char *>(data.data()), data.size(),
				 out.data());
	assert(rc == 0);
	(void)rc;
	return out;
}

std::string to_hex(const uint8_t *data, size_t size)
{
	static const char digits[] = "0123456789abcdef";
	std::string s;
	s.reserve(size * 2);
	for (size_t i = 0; i < size; i++) {
		s += digits[data[i] >> 4];
		s += digits[data[i] & 15];
	}
	return s;
}

bool from_hex(std::string_view hex, uint8_t *out, size_t size)
{
	if (hex.size() != size * 2)
		return false;
	auto nibble = [](char c) -> int {
		if (c >= '0' && c <= '9')
			return c - '0';
		if (c >= 'a' && c <= 'f')
			return c - 'a' + 10;
		if (c >= 'A' && c <= 'F')
			return c - 'A' + 10;
		return -1;
	};
	for (size_t i = 0; i < size; i++) {
		int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = static_cast<uint8_t>(hi << 4 | lo);
	}
	return true;
}

Result<Key> random_key()
{
	Key k;
	size_t got = 0;
	while (got < k.size()) {
		ssize_t n = getrandom(k.data() + got, k.size() - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return Status(Code::storage,
				      fmt::format("cannot draw a random key: {}", std::strerror(errno)));
		}
		got += static_cast<size_t>(n);
	}
	return k;
}

bool equal(std::string_view a, std::string_view b)
{
	if (a.size() != b.size())
		return false;
	uint8_t diff = 0;
	for (size_t i = 0; i < a.size(); i++)
		diff = static_cast<uint8_t>(diff | (static_cast<uint8_t>(a[i]) ^ static_cast<uint8_t>(b[i])));
	return diff == 0;
}

bool equal(const Digest &a, const Digest &b)
{
	return equal(std::string_view(reinterpret_cast<const char *>(a.data()), a.size()),
		     std::string_view(reinterpret_cast<const char *>(b.data()), b.size()));
}

Result<Key> read_key_file(const std::string &path)
{
	int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return Status(errno == ENOENT ? Code::bad_argument : Code::storage,
			      fmt::format("key file {}: {}", path, std::strerror(errno)));
	char buf[256];
	ssize_t n = ::read(fd, buf, sizeof buf);
	int err = errno;
	::close(fd);
	if (n < 0)
		return Status(Code::storage, fmt::format("key file {}: {}", path, std::strerror(err)));
	std::string_view text(buf, static_cast<size_t>(n));
	while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
		text.remove_suffix(1);
	Key k;
	if (!from_hex(text, k.data(), k.size()))
		return Status(Code::bad_argument,
			      fmt::format("key file {}: expected {} hex digits", path, 2 * k.size()));
	return k;
}

Status write_key_file(const std::string &path, const Key &key)
{
	return base::write_file_atomic(path, to_hex(key.data(), key.size()) + "\n", 0600)
		.prefixed("key file ");
}

} // namespace loy::crypto
