// A temporary dir for a fuzz target's store or terminal, removed when the
// run ends (libFuzzer exits through exit(), which destroys it): the tests'
// one TempDir, under $TMPDIR (run.sh puts it on a tmpfs, where a durable
// commit costs no disk sync: the fuzzer's time goes to the code).
#pragma once

#include <string>

#include "tests/support/tmpdir.hpp"

inline std::string fuzz_tmpdir(const char *name)
{
	static const test_support::TempDir dir(std::string("loy-fuzz-") + name);
	return dir.path();
}
