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
	// $TMPDIR (run.sh puts it on a tmpfs, where a durable commit costs no
	// disk sync: the fuzzer's time goes to the code), else /tmp.
	const char *base = std::getenv("TMPDIR");
	std::string tmpl = std::string(base && *base ? base : "/tmp") + "/loy-fuzz-" + name + "-XXXXXX";
	if (!path.empty() || !::mkdtemp(tmpl.data()))
		std::abort(); // one per process, and the dir must be writable
	path = tmpl;
	std::atexit([] { std::filesystem::remove_all(path); });
	return path;
}
