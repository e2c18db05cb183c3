// UTF-8 text measured and cut between characters: a message cut to a
// buffer, a value quoted in an error, a receipt line cut to the paper must
// stay UTF-8, or the JSON or the printer that takes them refuses them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
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

// The length of the well-formed UTF-8 character (RFC 3629) starting at
// s[i], or 0 when it is not one: a stray continuation byte, an overlong
// form, a surrogate, a code point past U+10FFFF, a cut sequence.
inline size_t utf8_char_bytes(std::string_view s, size_t i)
{
	const auto b = static_cast<unsigned char>(s[i]);
	size_t n;
	uint32_t cp, min;
	if (b < 0x80)
		return 1;
	if ((b & 0xE0) == 0xC0)
		n = 1, cp = b & 0x1Fu, min = 0x80;
	else if ((b & 0xF0) == 0xE0)
		n = 2, cp = b & 0x0Fu, min = 0x800;
	else if ((b & 0xF8) == 0xF0)
		n = 3, cp = b & 0x07u, min = 0x10000;
	else
		return 0;
	if (s.size() - i <= n)
		return 0;
	for (size_t k = 1; k <= n; k++) {
		if (!utf8_continuation(s[i + k]))
			return 0;
		cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3Fu);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n + 1;
}

// Whether s is well-formed UTF-8. JSON output needs it: an argument or a
// POS string that is not is refused at the edge.
inline bool utf8_valid(std::string_view s)
{
	for (size_t i = 0, n; i < s.size(); i += n)
		if ((n = utf8_char_bytes(s, i)) == 0)
			return false;
	return true;
}

// s with each byte that is not part of a well-formed character replaced by
// '?': a message that quotes bad input stays printable and JSON-safe.
inline std::string utf8_scrub(std::string_view s)
{
	std::string out;
	out.reserve(s.size());
	for (size_t i = 0; i < s.size();) {
		size_t n = utf8_char_bytes(s, i);
		if (n == 0) {
			out += '?';
			i++;
		} else {
			out.append(s.data() + i, n);
			i += n;
		}
	}
	return out;
}

} // namespace loy
