// Key store names both stores must refuse or take: one table for the
// simulator and the file store, so that they cannot drift apart.
#pragma once

#include <string>
#include <vector>

namespace hal_test {

inline std::vector<std::string> bad_item_names()
{
	return {
		"",
		"/etc/passwd",
		"/ledger.key",
		"..",
		"../escape.key",
		"tls/../../escape.pem",
		"a/./b",
		"a//b",
		"tls/",
		".hidden",
		"tls/.cert.pem.123.tmp",
		"white space",
		"back\\slash",
		"tab\tname",
		"a/b/c/d/e", // five components
		std::string(64, 'a'), // LOY_HAL_KEY_NAME_MAX bytes without the NUL
		"caf\xc3\xa9",
	};
}

inline std::vector<std::string> good_item_names()
{
	return {
		"ledger.key", "token.key", "tls/ca.pem", "tls/cert.pem", "tls/key.pem",
		"a/b/c/d", "A-Z_0.9", std::string(63, 'a'),
	};
}

} // namespace hal_test
