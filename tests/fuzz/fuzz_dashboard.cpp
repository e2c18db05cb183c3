// The dashboard's API (central/dashboard.hpp handle_admin_request) on a
// real SQLite store with one manager account: the input's first byte picks
// the client (no cookie, a signed-in one with its CSRF token, a signed-in
// one without it), its first line is the request line (the query string's
// decoding, the paths), the rest the body (JSON, sign-in's fields). Every
// /api/ answer is JSON with a 2xx or 4xx status; 5xx means a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "fuzz_tmpdir.hpp"

#include "base/crypto.hpp"
#include "central/dashboard.hpp"
#include "central/store.hpp"

namespace {

constexpr int64_t now = 1'800'000'000;
const std::string token = "fuzz-session-token";
const std::string csrf = "fuzz-csrf";

loy::central::Store &store()
{
	static std::unique_ptr<loy::central::Store> s = [] {
		auto opened = loy::central::open_store(fuzz_tmpdir("dashboard"));
		if (!opened)
			std::abort();
		auto &st = **opened;
		// One iteration: sign-ins the fuzzer makes cost nothing (the format
		// keeps the count; the real ones are 600,000).
		auto hash = loy::central::hash_password("fuzz password", 1);
		if (!hash ||
		    !st.add_admin(loy::central::AdminAccount{"anna", loy::central::Role::manager, *hash,
							     "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", -1},
				  now) ||
		    !st.open_session(loy::central::Session{loy::crypto::to_hex(loy::crypto::sha256(token)), "anna",
							   loy::central::Role::manager, csrf, now + 3600}))
			std::abort();
		return std::move(opened).value();
	}();
	return *s;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const std::string text(reinterpret_cast<const char *>(data + 1), size - 1);
	const size_t nl = text.find('\n');
	const std::string first = text.substr(0, nl);
	loy::net::Request req;
	const size_t sp = first.find(' ');
	req.method = first.substr(0, sp);
	req.target = sp == std::string::npos ? "/" : first.substr(sp + 1);
	req.body = nl == std::string::npos ? "" : text.substr(nl + 1);
	if (data[0] % 3 != 0)
		req.headers.emplace_back("Cookie", std::string(loy::central::session_cookie) + "=" + token);
	if (data[0] % 3 == 1)
		req.headers.emplace_back("X-CSRF-Token", csrf);
	loy::central::DashboardOptions o;
	loy::net::Response r = loy::central::handle_admin_request(store(), o, req, now);
	if (r.status >= 500 || r.status < 200)
		__builtin_trap();
	if (req.target.rfind("/api/", 0) == 0 && !nlohmann::json::accept(r.body))
		__builtin_trap();
	return 0;
}
