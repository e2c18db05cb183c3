// Helpers shared by the HAL tests: a temporary directory, and a scan read
// through a reader's table as a string.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "loyalty/hal.h"
#include "support/tmpdir.hpp"

namespace hal_test {

// A temporary directory (tests/support/tmpdir.hpp).
struct TempDir : test_support::TempDir {
	TempDir() : test_support::TempDir("loy-hal") {}
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
