// The file key store: round trips, files of mode 0600 in directories of mode
// 0700, the key file format of base/crypto.hpp both ways, atomic replace
// (a rename that fails, a process killed between write and rename, a write or
// an fsync that fails: the old key stays), bad names refused before any file
// is touched, and files that are not what their names say.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "base/crypto.hpp"
#include "hal/linux/sys.hpp"
#include "loyalty/hal.h"
#include "names.hpp"
#include "support/files.hpp"
#include "tmp.hpp"

using hal_test::TempDir;
using Bytes = std::vector<unsigned char>;

namespace {

using test_support::entries;
using test_support::mode_of;
using test_support::slurp;
using test_support::spit;

Bytes key_of(unsigned char fill) { return Bytes(LOY_HAL_KEY_BYTES, fill); }
Bytes text_of(const std::string &s) { return Bytes(s.begin(), s.end()); }

int put(const loy_hal_keystore *k, const std::string &name, const Bytes &v)
{
	return k->put(k->ctx, name.c_str(), v.data(), v.size());
}

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

// A store over `dir` whose OS calls come from `sys`; closed at scope exit.
struct Store {
	loy_hal_keystore table{};
	Store(const std::string &dir, const loy::hal::Sys &sys = loy::hal::real_sys())
	{
		REQUIRE(loy::hal::keystore_open(&table, dir.c_str(), sys) == 0);
	}
	~Store() { loy_hal_linux_keystore_close(&table); }
	const loy_hal_keystore *operator->() const { return &table; }
	const loy_hal_keystore *get() const { return &table; }
};

} // namespace

TEST_CASE("linux key store: round trips, modes and the data dir's layout")
{
	TempDir dir;
	loy_hal_keystore k;
	REQUIRE(loy_hal_linux_keystore_open(&k, dir.path().c_str()) == 0);
	CHECK(k.version == LOY_HAL_KEYSTORE_VERSION);
	// The mode must not depend on the umask of the process.
	mode_t old_umask = ::umask(0);
	CHECK(put(&k, "ledger.key", key_of(0xa5)) == 0);
	CHECK(put(&k, "tls/cert.pem", text_of(pem)) == 0);
	::umask(old_umask);
	CHECK(mode_of(dir / "ledger.key") == 0600);
	CHECK(mode_of(dir / "tls") == 0700);
	CHECK(mode_of(dir / "tls/cert.pem") == 0600);
	std::string hex;
	for (int i = 0; i < 32; i++)
		hex += "a5";
	CHECK(slurp(dir / "ledger.key") == hex + "\n");
	CHECK(slurp(dir / "tls/cert.pem") == pem);
	Bytes got;
	CHECK(get(&k, "ledger.key", &got) == 0);
	CHECK(got == key_of(0xa5));
	CHECK(get(&k, "tls/cert.pem", &got) == 0);
	CHECK(got == text_of(pem));
	// No temporary file is left behind.
	CHECK(entries(dir.path()) == std::set<std::string>{"ledger.key", "tls"});
	CHECK(entries(dir / "tls") == std::set<std::string>{"cert.pem"});
	loy_hal_linux_keystore_close(&k);
	CHECK(k.ctx == nullptr);
	loy_hal_linux_keystore_close(&k);
}

TEST_CASE("linux key store: key files are base/crypto.hpp's, both ways")
{
	TempDir dir;
	Store k(dir.path());
	REQUIRE(put(k.get(), "ledger.key", key_of(7)) == 0);
	auto read = loy::crypto::read_key_file(dir / "ledger.key");
	REQUIRE(read.is_ok());
	CHECK(Bytes(read->begin(), read->end()) == key_of(7));

	loy::crypto::Key made{};
	for (size_t i = 0; i < made.size(); i++)
		made[i] = static_cast<uint8_t>(i * 7);
	REQUIRE(loy::crypto::write_key_file(dir / "token.key", made).is_ok());
	Bytes got;
	CHECK(get(k.get(), "token.key", &got) == 0);
	CHECK(got == Bytes(made.begin(), made.end()));
	// A hand-made key file with CR LF reads as crypto::read_key_file reads it.
	spit(dir / "hand.key", loy::crypto::to_hex(made.data(), made.size()) + "\r\n");
	CHECK(get(k.get(), "hand.key", &got) == 0);
	CHECK(got == Bytes(made.begin(), made.end()));
}

TEST_CASE("linux key store: size query, missing items, erase")
{
	TempDir dir;
	Store k(dir.path());
	REQUIRE(put(k.get(), "tls/cert.pem", text_of(pem)) == 0);
	size_t len = 0;
	CHECK(k->get(k->ctx, "tls/cert.pem", nullptr, 0, &len) == LOY_HAL_E_TOO_BIG);
	CHECK(len == sizeof pem - 1);
	unsigned char key[LOY_HAL_KEY_BYTES];
	CHECK(k->get(k->ctx, "ledger.key", key, sizeof key, &len) == LOY_HAL_E_NOT_FOUND);
	CHECK(k->get(k->ctx, "nodir/ledger.key", key, sizeof key, &len) == LOY_HAL_E_NOT_FOUND);
	CHECK(k->get(k->ctx, "tls/cert.pem/x", key, sizeof key, &len) == LOY_HAL_E_NOT_FOUND);
	CHECK(k->get(k->ctx, "tls/cert.pem", key, sizeof key, nullptr) == LOY_HAL_E_ARGUMENT);
	CHECK(k->erase(k->ctx, "tls/cert.pem") == 0);
	CHECK(k->erase(k->ctx, "tls/cert.pem") == LOY_HAL_E_NOT_FOUND);
	CHECK(entries(dir / "tls").empty());
	// Sizes: a key is 32 bytes; other items up to LOY_HAL_ITEM_MAX.
	CHECK(put(k.get(), "ledger.key", Bytes(31, 1)) == LOY_HAL_E_ARGUMENT);
	CHECK(put(k.get(), "big.pem", Bytes(LOY_HAL_ITEM_MAX, 'x')) == 0);
	Bytes got;
	CHECK(get(k.get(), "big.pem", &got) == 0);
	CHECK(got.size() == LOY_HAL_ITEM_MAX);
	CHECK(put(k.get(), "big.pem", Bytes(LOY_HAL_ITEM_MAX + 1, 'x')) == LOY_HAL_E_ARGUMENT);
}

TEST_CASE("linux key store: bad names are refused and touch no file")
{
	TempDir root;
	const std::string dir = root / "store";
	REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
	Store k(dir);
	for (const std::string &name : hal_test::bad_item_names()) {
		INFO("name \"" << name << "\"");
		Bytes v = name.size() >= 4 && name.substr(name.size() - 4) == ".key" ? key_of(1)
										     : text_of("x");
		size_t len;
		CHECK(put(k.get(), name, v) == LOY_HAL_E_ARGUMENT);
		CHECK(k->get(k->ctx, name.c_str(), nullptr, 0, &len) == LOY_HAL_E_ARGUMENT);
		CHECK(k->erase(k->ctx, name.c_str()) == LOY_HAL_E_ARGUMENT);
	}
	CHECK(entries(dir).empty());
	CHECK(entries(root.path()) == std::set<std::string>{"store"});
	for (const std::string &name : hal_test::good_item_names()) {
		INFO("name \"" << name << "\"");
		Bytes v = name.size() >= 4 && name.substr(name.size() - 4) == ".key" ? key_of(1)
										     : text_of("x");
		CHECK(put(k.get(), name, v) == 0);
		Bytes got;
		CHECK(get(k.get(), name, &got) == 0);
		CHECK(got == v);
	}
}

TEST_CASE("linux key store: a failed rename leaves the old key and no temporary file")
{
	TempDir dir;
	REQUIRE(loy_hal_linux_keystore_open(nullptr, dir.path().c_str()) == LOY_HAL_E_ARGUMENT);
	{
		Store k(dir.path());
		REQUIRE(put(k.get(), "ledger.key", key_of(1)) == 0);
	}
	struct Step {
		const char *name;
		void (*breakit)(loy::hal::Sys &);
	};
	const Step steps[] = {
		{"rename", [](loy::hal::Sys &s) {
			 s.rename = [](const char *, const char *) {
				 errno = EIO;
				 return -1;
			 };
		 }},
		{"write: disk full", [](loy::hal::Sys &s) {
			 s.write = [](int, const void *, size_t) -> ssize_t {
				 errno = ENOSPC;
				 return -1;
			 };
		 }},
		{"write: short, then disk full", [](loy::hal::Sys &s) {
			 s.write = [](int fd, const void *p, size_t) -> ssize_t {
				 static int calls;
				 if (calls++ % 2 == 0)
					 return ::write(fd, p, 10);
				 errno = ENOSPC;
				 return -1;
			 };
		 }},
		{"fsync", [](loy::hal::Sys &s) {
			 s.fsync = [](int) {
				 errno = EIO;
				 return -1;
			 };
		 }},
		{"fchmod", [](loy::hal::Sys &s) {
			 s.fchmod = [](int, mode_t) {
				 errno = EPERM;
				 return -1;
			 };
		 }},
		{"close", [](loy::hal::Sys &s) {
			 s.close = [](int fd) {
				 ::close(fd);
				 errno = EIO;
				 return -1;
			 };
		 }},
		{"open of the temporary file", [](loy::hal::Sys &s) {
			 s.open = [](const char *path, int flags, mode_t mode) {
				 if (std::strstr(path, ".tmp")) {
					 errno = EACCES;
					 return -1;
				 }
				 return ::open(path, flags, mode);
			 };
		 }},
	};
	for (const Step &step : steps) {
		INFO(step.name << " fails");
		loy::hal::Sys sys = loy::hal::real_sys();
		step.breakit(sys);
		Store k(dir.path(), sys);
		CHECK(put(k.get(), "ledger.key", key_of(2)) == LOY_HAL_E_IO);
		// Read with the real calls: what a restart would find.
		Store fresh(dir.path());
		Bytes got;
		CHECK(get(fresh.get(), "ledger.key", &got) == 0);
		CHECK(got == key_of(1));
		CHECK(entries(dir.path()) == std::set<std::string>{"ledger.key"});
	}
	Store k(dir.path());
	CHECK(put(k.get(), "ledger.key", key_of(2)) == 0);
	Bytes got;
	CHECK(get(k.get(), "ledger.key", &got) == 0);
	CHECK(got == key_of(2));
}

TEST_CASE("linux key store: a subdirectory that cannot be made")
{
	TempDir dir;
	loy::hal::Sys sys = loy::hal::real_sys();
	sys.mkdir = [](const char *, mode_t) {
		errno = EROFS;
		return -1;
	};
	Store k(dir.path(), sys);
	CHECK(put(k.get(), "tls/cert.pem", text_of(pem)) == LOY_HAL_E_IO);
	CHECK(put(k.get(), "ledger.key", key_of(1)) == 0); // needs no subdirectory
	CHECK(entries(dir.path()) == std::set<std::string>{"ledger.key"});
}

TEST_CASE("linux key store: a failed directory sync reports the put, which is done")
{
	TempDir dir;
	loy::hal::Sys sys = loy::hal::real_sys();
	// The second fsync of a put is the directory's.
	sys.fsync = [](int fd) {
		struct stat st;
		if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
			errno = EIO;
			return -1;
		}
		return ::fsync(fd);
	};
	Store k(dir.path(), sys);
	CHECK(put(k.get(), "ledger.key", key_of(3)) == LOY_HAL_E_IO);
	Bytes got;
	CHECK(get(k.get(), "ledger.key", &got) == 0);
	CHECK(got == key_of(3));
	CHECK(k->erase(k->ctx, "ledger.key") == LOY_HAL_E_IO);
}

TEST_CASE("linux key store: a process killed between write and rename leaves the old key")
{
	TempDir dir;
	{
		Store k(dir.path());
		REQUIRE(put(k.get(), "ledger.key", key_of(1)) == 0);
	}
	pid_t child = ::fork();
	REQUIRE(child >= 0);
	if (child == 0) {
		// No Catch in the child: its exit status is the result.
		loy::hal::Sys sys = loy::hal::real_sys();
		sys.rename = [](const char *, const char *) -> int { ::_exit(17); };
		loy_hal_keystore k;
		if (loy::hal::keystore_open(&k, dir.path().c_str(), sys) != 0)
			::_exit(1);
		Bytes v = key_of(2);
		k.put(k.ctx, "ledger.key", v.data(), v.size());
		::_exit(2); // the rename never returns
	}
	int status = 0;
	REQUIRE(::waitpid(child, &status, 0) == child);
	REQUIRE(WIFEXITED(status));
	REQUIRE(WEXITSTATUS(status) == 17);

	// The new key was written in full to a hidden temporary file...
	auto names = entries(dir.path());
	REQUIRE(names.size() == 2);
	std::string tmp;
	for (const auto &n : names)
		if (n != "ledger.key")
			tmp = n;
	CHECK(tmp[0] == '.');
	CHECK(slurp(dir / tmp) == loy::crypto::to_hex(key_of(2).data(), 32) + "\n");
	// ... and the key is the old one, whole.
	Store k(dir.path());
	Bytes got;
	CHECK(get(k.get(), "ledger.key", &got) == 0);
	CHECK(got == key_of(1));
	// The leftover is out of reach of names, and the next put works.
	size_t len;
	CHECK(k->get(k->ctx, tmp.c_str(), nullptr, 0, &len) == LOY_HAL_E_ARGUMENT);
	CHECK(put(k.get(), "ledger.key", key_of(3)) == 0);
	CHECK(get(k.get(), "ledger.key", &got) == 0);
	CHECK(got == key_of(3));
}

TEST_CASE("linux key store: files that are not what their names say")
{
	TempDir dir;
	Store k(dir.path());
	Bytes got;
	spit(dir / "short.key", "abcdef\n");
	CHECK(get(k.get(), "short.key", &got) == LOY_HAL_E_IO);
	spit(dir / "nothex.key", std::string(64, 'g') + "\n");
	CHECK(get(k.get(), "nothex.key", &got) == LOY_HAL_E_IO);
	spit(dir / "long.key", std::string(300, '0'));
	CHECK(get(k.get(), "long.key", &got) == LOY_HAL_E_IO);
	spit(dir / "huge.pem", std::string(LOY_HAL_ITEM_MAX + 1, 'x'));
	CHECK(get(k.get(), "huge.pem", &got) == LOY_HAL_E_IO);
	REQUIRE(::mkdir((dir / "adir.pem").c_str(), 0700) == 0);
	CHECK(get(k.get(), "adir.pem", &got) == LOY_HAL_E_IO);
	CHECK(put(k.get(), "adir.pem", text_of("x")) == LOY_HAL_E_IO);
	// A read that fails midway.
	loy::hal::Sys sys = loy::hal::real_sys();
	sys.read = [](int, void *, size_t) -> ssize_t {
		errno = EIO;
		return -1;
	};
	Store broken(dir.path(), sys);
	spit(dir / "ok.pem", "x");
	CHECK(get(broken.get(), "ok.pem", &got) == LOY_HAL_E_IO);
}

TEST_CASE("linux key store: open needs an existing directory")
{
	TempDir dir;
	loy_hal_keystore k;
	CHECK(loy_hal_linux_keystore_open(&k, (dir / "missing").c_str()) == LOY_HAL_E_IO);
	spit(dir / "file", "x");
	CHECK(loy_hal_linux_keystore_open(&k, (dir / "file").c_str()) == LOY_HAL_E_IO);
	CHECK(loy_hal_linux_keystore_open(&k, "") == LOY_HAL_E_ARGUMENT);
	CHECK(loy_hal_linux_keystore_open(&k, nullptr) == LOY_HAL_E_ARGUMENT);
	// A trailing slash is the same directory.
	REQUIRE(loy_hal_linux_keystore_open(&k, (dir.path() + "/").c_str()) == 0);
	Bytes v = key_of(9);
	CHECK(k.put(k.ctx, "ledger.key", v.data(), v.size()) == 0);
	loy_hal_linux_keystore_close(&k);
	CHECK(entries(dir.path()).count("ledger.key") == 1);
}
