// The HTTP framing both ends use (sync/http.hpp), fed as a request and as
// a response, whole and in two pieces cut where the first byte says: the
// same verdict either way, and a refusal always has a status to answer.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sync/http.hpp"

namespace {

using loy::net::Parser;

// 1 done, 0 wants more, -1 refused.
int feed(Parser::Kind kind, std::string_view bytes, size_t cut)
{
	Parser p(kind);
	for (std::string_view piece : {bytes.substr(0, cut), bytes.substr(cut)}) {
		auto r = p.feed(piece);
		if (!r) {
			if (p.refusal() < 400 || p.refusal() > 599)
				__builtin_trap();
			return -1;
		}
		if (*r)
			return 1;
	}
	return 0;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const std::string_view bytes(reinterpret_cast<const char *>(data + 1), size - 1);
	const size_t cut = bytes.empty() ? 0 : data[0] % bytes.size();
	for (Parser::Kind kind : {Parser::Kind::request, Parser::Kind::response}) {
		int whole = feed(kind, bytes, bytes.size());
		int split = feed(kind, bytes, cut);
		if (whole != split)
			__builtin_trap(); // where the bytes were cut changed the message
	}
	return 0;
}
