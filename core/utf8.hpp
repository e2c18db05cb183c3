// UTF-8 text measured and cut between characters: a message cut to a
// buffer, a value quoted in an error, a receipt line cut to the paper must
// stay UTF-8, or the JSON or the printer that takes them refuses them.
#pragma once

#include <cstddef>
#include <string_view>

namespace loy {

// A byte that continues a character (10xxxxxx) rather than starting one.
inline bool utf8_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Characters in s (valid UTF-8 or not: each byte that starts one counts).
inline size_t utf8_chars(std::string_view s)
{
	size_t n = 0;
	for (char c : s)
		n += !utf8_continuation(c);
	return n;
}

// The length of the longest prefix of s of at most max_bytes that ends
// between two characters.
inline size_t utf8_prefix(std::string_view s, size_t max_bytes)
{
	if (s.size() <= max_bytes)
		return s.size();
	size_t n = max_bytes;
	while (n > 0 && utf8_continuation(s[n]))
		n--;
	return n;
}

// The length in bytes of the first `chars` characters of s.
inline size_t utf8_prefix_chars(std::string_view s, size_t chars)
{
	size_t seen = 0, i = 0;
	for (; i < s.size(); i++) {
		if (!utf8_continuation(s[i])) {
			if (seen == chars)
				break;
			seen++;
		}
	}
	return i;
}

} // namespace loy
