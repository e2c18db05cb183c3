// Helpers shared by the HAL tests: a temporary directory, and a scan read
// through a reader's table as a string.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "loyalty/hal.h"

namespace hal_test {

// A fresh directory under $TMPDIR or /tmp, removed with its contents at scope
// exit.
class TempDir {
public:
	TempDir()
	{
		const char *base = std::getenv("TMPDIR");
		std::string tmpl = std::string(base && *base ? base : "/tmp") + "/loy-hal-XXXXXX";
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

private:
	std::string path_;
};

// What read_scan() returned, and the scan when it returned 1.
struct Scan {
	int rc;
	std::string text;
};

inline Scan read_scan(const loy_hal_card_reader *r, int timeout_ms, size_t size = LOY_HAL_SCAN_MAX)
{
	std::string buf(size, '\xff');
	int rc = r->read_scan(r->ctx, buf.data(), size, timeout_ms);
	return {rc, rc == 1 ? std::string(buf.c_str()) : std::string()};
}

} // namespace hal_test
