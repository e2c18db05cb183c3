// The centre's request handling (central/server.hpp handle_request) on
// a real SQLite store: the first line of the input is the request line, the
// rest its body, from terminal T1 (a push of either encoding, v1 or v2). Every answer is a status and a JSON
// body; 5xx means a bug; the store stays consistent for the next request.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz_tmpdir.hpp"

#include "central/server.hpp"
#include "central/store.hpp"

namespace {

loy::central::Store &store()
{
	static std::unique_ptr<loy::central::Store> s = [] {
		const std::string dir = fuzz_tmpdir("push");
		auto opened = loy::central::open_store(dir);
		if (!opened)
			std::abort();
		return std::move(opened).value();
	}();
	return *s;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const std::string text(reinterpret_cast<const char *>(data), size);
	const size_t nl = text.find('\n');
	const std::string first = text.substr(0, nl);
	loy::net::Request req;
	const size_t sp = first.find(' ');
	req.method = first.substr(0, sp);
	req.target = sp == std::string::npos ? "/" : first.substr(sp + 1);
	// A push of protocol 2 (its own encoding) under /v2/, version 1 else.
	req.headers = {{"X-Loyalty-Protocol", req.target.rfind("/v2/", 0) == 0 ? "2" : "1"}};
	req.body = nl == std::string::npos ? "" : text.substr(nl + 1);
	loy::net::Response r = loy::central::handle_request(store(), req, "T1", 1'800'000'000);
	if (r.status >= 500 || r.status < 200)
		__builtin_trap();
	if (!nlohmann::json::accept(r.body))
		__builtin_trap();
	return 0;
}
