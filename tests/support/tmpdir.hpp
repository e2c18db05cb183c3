// A temporary directory for tests: made fresh under $TMPDIR or /tmp, removed
// with its contents at scope exit. The one copy every folder's tests use
// (tests/hal, tests/storage, tests/sync and tests/central by their own names).
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace test_support {

class TempDir {
public:
	explicit TempDir(const std::string &prefix = "loy-test")
	{
		const char *base = std::getenv("TMPDIR");
		std::string tmpl = std::string(base && *base ? base : "/tmp") + "/" + prefix + "-XXXXXX";
		if (!::mkdtemp(tmpl.data()))
			throw std::runtime_error("mkdtemp failed");
		path_ = tmpl;
	}
	~TempDir()
	{
		std::error_code ec;
		std::filesystem::remove_all(path_, ec);
	}
	TempDir(const TempDir &) = delete;
	TempDir &operator=(const TempDir &) = delete;
	const std::string &path() const { return path_; }
	std::string operator/(const std::string &name) const { return path_ + "/" + name; }
	// The data dir the terminal tests use: a child of the temporary dir, so
	// that init is the one that creates it.
	std::string data() const { return path_ + "/data"; }

private:
	std::string path_;
};

} // namespace test_support
