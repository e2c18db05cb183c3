// Entries as a terminal (or a forged one) pushes them, through the centre's
// request handling on a real store: the harness wraps each input, taken as
// an entry's "data", in a correct envelope (kind from the first byte, the
// hash chain continued, a valid member token), so that what the centre
// applies is fuzzed, not just its chain check. Whatever the centre
// accepts, every terminal must still be able to read back: its members
// snapshot must parse (a poisoned snapshot stops the whole chain's syncs).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "fuzz_tmpdir.hpp"

#include "base/crypto.hpp"
#include "central/server.hpp"
#include "central/store.hpp"
#include "sync/client.hpp"

namespace {

using Json = nlohmann::json;

struct Centre {
	std::unique_ptr<loy::central::Store> store;
	std::string last_hash = std::string(64, '0');
	int64_t seq = 0;

	Centre()
	{
		const std::string dir = fuzz_tmpdir("entry");
		auto opened = loy::central::open_store(dir);
		if (!opened)
			std::abort();
		store = std::move(opened).value();
	}

	loy::net::Response ask(const std::string &method, const std::string &target, const std::string &body)
	{
		loy::net::Request req;
		req.method = method;
		req.target = target;
		req.headers = {{"X-Loyalty-Protocol", "1"}};
		req.body = body;
		return loy::central::handle_request(*store, req, "T1", 1'800'000'000);
	}
};

const char *const kinds[] = {"enroll", "checkout", "refund", "adjust"};
const char *const tokens[] = {"aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11",
			      "bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22"};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static Centre c;
	if (size < 1)
		return 0;
	Json payload = Json::parse(data + 1, data + size, nullptr, false);
	if (payload.is_discarded())
		return 0;
	Json body{{"prev", c.last_hash},        {"seq", c.seq + 1},
		  {"terminal", "T1"},           {"kind", kinds[data[0] % 4]},
		  {"token", tokens[(data[0] >> 2) % 2]}, {"receipt", fmt::format("F-{}", (data[0] >> 3) % 4)},
		  {"data", payload}};
	if ((data[0] & 0xc0) == 0xc0 && payload.is_object() && payload.contains("points"))
		body["points"] = payload["points"]; // an adjustment's points sit beside its data
	const std::string text = body.dump();
	const std::string hash = loy::crypto::to_hex(loy::crypto::sha256(text));
	Json push{{"terminal", "T1"}, {"store", "S1"}, {"entries", {{{"seq", c.seq + 1}, {"hash", hash}, {"body", text}}}}};
	loy::net::Response r = c.ask("POST", "/v1/push", push.dump());
	if (r.status >= 500) {
		std::fprintf(stderr, "push answered %d: %s\n", r.status, r.body.c_str());
		__builtin_trap(); // an entry the centre could not judge
	}
	if (r.status == 200) {
		c.seq++;
		c.last_hash = hash;
	}
	loy::net::Response m = c.ask("GET", "/v1/members?after=0&limit=1000", "");
	if (m.status != 200) {
		std::fprintf(stderr, "members answered %d: %s\n", m.status, m.body.c_str());
		__builtin_trap(); // one terminal's entries stopped the snapshot for all
	}
	auto page = loy::net::parse_members_page(m.body);
	if (!page) {
		std::fprintf(stderr, "the snapshot does not parse: %s\n", page.status().message().c_str());
		__builtin_trap(); // the chain's terminals could not take the snapshot
	}
	return 0;
}
