// A temporary dir for a fuzz target's store or terminal, removed when the
// run ends (libFuzzer exits through exit(), which runs the handler).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include <stdlib.h>

inline std::string fuzz_tmpdir(const char *name)
{
	static std::string path;
	std::string tmpl = std::string("/tmp/loy-fuzz-") + name + "-XXXXXX";
	if (!path.empty() || !::mkdtemp(tmpl.data()))
		std::abort(); // one per process, and /tmp must be writable
	path = tmpl;
	std::atexit([] { std::filesystem::remove_all(path); });
	return path;
}
