// base::write_file_atomic: the mode applied whatever the umask and the old
// file's, the target replaced, the calls in their durable order (file fsync
// before the rename, directory fsync after), and every failing call through
// the injected table: the old file stays, the temporary is removed, the
// error names the path and the step.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "base/atomic_file.hpp"
#include "base/crypto.hpp"
#include "support/files.hpp"
#include "support/tmpdir.hpp"

using loy::base::FileCalls;
using loy::base::write_file_atomic;

namespace {

using test_support::entries;
using test_support::mode_of;
using test_support::slurp;

struct TempDir : test_support::TempDir {
	TempDir() : test_support::TempDir("loy-base") {}
};

void spit(const std::string &path, const std::string &text, mode_t mode)
{
	test_support::spit(path, text);
	REQUIRE(::chmod(path.c_str(), mode) == 0);
}

bool is_dir(int fd)
{
	struct stat st;
	return ::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

// The calls a write made, in order: "fsync file", "rename", "fsync dir"...
std::vector<std::string> &log()
{
	static std::vector<std::string> calls;
	return calls;
}

// The real calls, each one logged.
FileCalls logging_calls()
{
	FileCalls c = loy::base::real_file_calls();
	c.open = [](const char *path, int flags, mode_t mode) {
		int fd = ::open(path, flags, mode);
		log().push_back(fd >= 0 && is_dir(fd) ? "open dir" : "open file");
		return fd;
	};
	c.write = [](int fd, const void *p, size_t n) {
		log().push_back("write");
		return ::write(fd, p, n);
	};
	c.fchmod = [](int fd, mode_t mode) {
		log().push_back("fchmod");
		return ::fchmod(fd, mode);
	};
	c.fsync = [](int fd) {
		log().push_back(is_dir(fd) ? "fsync dir" : "fsync file");
		return ::fsync(fd);
	};
	c.rename = [](const char *from, const char *to) {
		log().push_back("rename");
		return ::rename(from, to);
	};
	return c;
}

} // namespace

TEST_CASE("atomic file: a new file in its mode, whatever the umask, and no temporary left")
{
	TempDir dir;
	const mode_t old_umask = ::umask(0077);
	CHECK(write_file_atomic(dir / "ca.pem", "cert\n", 0644).is_ok());
	::umask(0);
	CHECK(write_file_atomic(dir / "ca.key", "key\n", 0600).is_ok());
	::umask(old_umask);
	CHECK(mode_of(dir / "ca.pem") == 0644);
	CHECK(mode_of(dir / "ca.key") == 0600);
	CHECK(slurp(dir / "ca.pem") == "cert\n");
	CHECK(slurp(dir / "ca.key") == "key\n");
	CHECK(entries(dir.path()) == std::set<std::string>{"ca.key", "ca.pem"});
	// Empty content is a file too.
	CHECK(write_file_atomic(dir / "empty", "", 0600).is_ok());
	CHECK(slurp(dir / "empty").empty());
}

TEST_CASE("atomic file: the target replaced, its old mode not kept")
{
	TempDir dir;
	spit(dir / "token.key", "old old old old\n", 0666);
	CHECK(write_file_atomic(dir / "token.key", "new\n", 0600).is_ok());
	CHECK(slurp(dir / "token.key") == "new\n");
	CHECK(mode_of(dir / "token.key") == 0600);
	CHECK(entries(dir.path()) == std::set<std::string>{"token.key"});
}

TEST_CASE("atomic file: file fsync before the rename, directory fsync after it")
{
	TempDir dir;
	log().clear();
	REQUIRE(write_file_atomic(dir / "a.pem", "x", 0600, logging_calls()).is_ok());
	CHECK(log() == std::vector<std::string>{"open file", "write", "fchmod", "fsync file", "rename",
						 "open dir", "fsync dir"});
}

TEST_CASE("atomic file: the temporary is hidden, in the same directory, per process")
{
	const std::string pid = std::to_string(::getpid());
	CHECK(loy::base::temporary_of("/d/ledger.key") == "/d/.ledger.key." + pid + ".tmp");
	CHECK(loy::base::temporary_of("/ledger.key") == "/.ledger.key." + pid + ".tmp");
	CHECK(loy::base::temporary_of("ledger.key") == ".ledger.key." + pid + ".tmp");
	CHECK(loy::base::temporary_of("d/tls/cert.pem") == "d/tls/.cert.pem." + pid + ".tmp");

	// A leftover of a crashed process of the same pid does not stop a write.
	TempDir dir;
	spit(loy::base::temporary_of(dir / "a.pem"), "leftover", 0600);
	CHECK(write_file_atomic(dir / "a.pem", "x", 0600).is_ok());
	CHECK(entries(dir.path()) == std::set<std::string>{"a.pem"});
}

TEST_CASE("atomic file: a bare name is written in the working directory, which is synced")
{
	TempDir dir;
	char cwd[4096];
	REQUIRE(::getcwd(cwd, sizeof cwd));
	REQUIRE(::chdir(dir.path().c_str()) == 0);
	log().clear();
	loy::Status s = write_file_atomic("bare.key", "x", 0600, logging_calls());
	REQUIRE(::chdir(cwd) == 0);
	CHECK(s.is_ok());
	CHECK(slurp(dir / "bare.key") == "x");
	CHECK(log().back() == "fsync dir");
}

TEST_CASE("atomic file: a failing call leaves the old file and no temporary")
{
	struct Step {
		const char *name;  // the step the error names
		void (*breakit)(FileCalls &);
	};
	const Step steps[] = {
		{"cannot create the temporary file", [](FileCalls &c) {
			 c.open = [](const char *, int, mode_t) {
				 errno = EACCES;
				 return -1;
			 };
		 }},
		{"write", [](FileCalls &c) {
			 c.write = [](int, const void *, size_t) -> ssize_t {
				 errno = ENOSPC;
				 return -1;
			 };
		 }},
		{"write", [](FileCalls &c) { // short, then disk full
			 c.write = [](int fd, const void *p, size_t n) -> ssize_t {
				 static int calls;
				 if (calls++ % 2 == 0)
					 return ::write(fd, p, n / 2);
				 errno = ENOSPC;
				 return -1;
			 };
		 }},
		{"write", [](FileCalls &c) { // no progress at all
			 c.write = [](int, const void *, size_t) -> ssize_t { return 0; };
		 }},
		{"fchmod", [](FileCalls &c) {
			 c.fchmod = [](int, mode_t) {
				 errno = EPERM;
				 return -1;
			 };
		 }},
		{"fsync", [](FileCalls &c) {
			 c.fsync = [](int) {
				 errno = EIO;
				 return -1;
			 };
		 }},
		{"close", [](FileCalls &c) {
			 c.close = [](int fd) {
				 ::close(fd);
				 errno = EIO;
				 return -1;
			 };
		 }},
		{"rename", [](FileCalls &c) {
			 c.rename = [](const char *, const char *) {
				 errno = EXDEV;
				 return -1;
			 };
		 }},
	};
	TempDir dir;
	const std::string path = dir / "ledger.key";
	spit(path, "old\n", 0600);
	for (const Step &step : steps) {
		INFO(step.name << " fails");
		FileCalls calls = loy::base::real_file_calls();
		step.breakit(calls);
		loy::Status s = write_file_atomic(path, std::string(100, 'n'), 0644, calls);
		REQUIRE_FALSE(s.is_ok());
		CHECK(s.code() == loy::Code::storage);
		CHECK(s.message().rfind(path + ": " + step.name, 0) == 0);
		CHECK(slurp(path) == "old\n");
		CHECK(mode_of(path) == 0600);
		CHECK(entries(dir.path()) == std::set<std::string>{"ledger.key"});
	}
}

TEST_CASE("atomic file: a failed directory fsync is reported, the file already replaced")
{
	TempDir dir;
	FileCalls calls = loy::base::real_file_calls();
	calls.fsync = [](int fd) {
		if (is_dir(fd)) {
			errno = EIO;
			return -1;
		}
		return ::fsync(fd);
	};
	loy::Status s = write_file_atomic(dir / "a.pem", "new", 0600, calls);
	REQUIRE_FALSE(s.is_ok());
	CHECK(s.code() == loy::Code::storage);
	CHECK(s.message().find(dir / "a.pem") != std::string::npos);
	CHECK(s.message().find("replaced") != std::string::npos);
	CHECK(s.message().find(std::strerror(EIO)) != std::string::npos);
	CHECK(slurp(dir / "a.pem") == "new");
	CHECK(entries(dir.path()) == std::set<std::string>{"a.pem"});

	// A directory that cannot be opened again, the same.
	calls = loy::base::real_file_calls();
	calls.open = [](const char *path, int flags, mode_t mode) {
		if (flags & O_DIRECTORY) {
			errno = EMFILE;
			return -1;
		}
		return ::open(path, flags, mode);
	};
	s = write_file_atomic(dir / "a.pem", "newer", 0600, calls);
	REQUIRE_FALSE(s.is_ok());
	CHECK(s.message().find("replaced") != std::string::npos);
	CHECK(slurp(dir / "a.pem") == "newer");
}

TEST_CASE("atomic file: a missing directory is named in the error")
{
	TempDir dir;
	loy::Status s = write_file_atomic(dir / "nodir/a.pem", "x", 0600);
	REQUIRE_FALSE(s.is_ok());
	CHECK(s.message().rfind(dir / "nodir/a.pem: cannot create the temporary file", 0) == 0);
	CHECK(s.message().find(std::strerror(ENOENT)) != std::string::npos);
}

TEST_CASE("atomic file: key files go through it, mode 0600 and errors named as key files")
{
	TempDir dir;
	loy::crypto::Key key{};
	key[0] = 0xab;
	spit(dir / "token.key", "old\n", 0644);
	REQUIRE(loy::crypto::write_key_file(dir / "token.key", key).is_ok());
	CHECK(mode_of(dir / "token.key") == 0600);
	auto back = loy::crypto::read_key_file(dir / "token.key");
	REQUIRE(back.is_ok());
	CHECK(*back == key);
	CHECK(entries(dir.path()) == std::set<std::string>{"token.key"});

	loy::Status s = loy::crypto::write_key_file(dir / "nodir/token.key", key);
	REQUIRE_FALSE(s.is_ok());
	CHECK(s.message().rfind("key file " + (dir / "nodir/token.key") + ": ", 0) == 0);
}
