// Terminal sync: push, pull, record.
#include "sync/client.hpp"


#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/json_reader.hpp"
#include "core/limits.hpp"
#include "core/program.hpp"
#include "core/timeutil.hpp"
#include "core/utf8.hpp"
#include "sync/http.hpp"

namespace loy::net {

using Json = nlohmann::json;

namespace {

Status net_error(std::string msg) { return Status(Code::network, "sync: " + std::move(msg)); }

// A member token is an HMAC-SHA-256 in hex; a masked card "****7895"; a
// date "2027-11-23".
constexpr size_t member_token_bytes_max = 64;
constexpr size_t masked_card_bytes_max = 32;
constexpr size_t date_bytes_max = 10;

// One request/response on the session; a non-2xx answer is an error naming
// what the server said.
Result<Json> call(TlsStream &s, const Endpoint &ep, const std::string &method, const std::string &target,
		  const std::string &body)
{
	Request req;
	req.method = method;
	req.target = target;
	req.headers = {{"Host", fmt::format("{}:{}", ep.host, ep.port)},
		       {"X-Loyalty-Protocol", "1"},
		       {"Connection", "keep-alive"}};
	if (!body.empty())
		req.headers.emplace_back("Content-Type", "application/json");
	req.body = body;
	LOY_TRY(write_request(s, req));
	auto resp = read_response(s);
	if (!resp)
		return resp.status();
	auto parsed = json_parse(resp->body, Code::network, "answer");
	const Json doc = parsed ? std::move(parsed).value() : Json();
	if (resp->status / 100 != 2) {
		std::string what = resp->reason;
		if (doc.is_object() && doc.contains("error") && doc["error"].is_object() &&
		    doc["error"].contains("message") && doc["error"]["message"].is_string())
			what = doc["error"]["message"].get<std::string>();
		return net_error(fmt::format("{} {}: server answered {}: {}", method, target, resp->status,
					     utf8_scrub(what)));
	}
	if (!doc.is_object())
		return net_error(fmt::format("{} {}: the answer is not a JSON object", method, target));
	return doc;
}

} // namespace

namespace {

Result<MembersPage> read_members_fields(const nlohmann::json &doc)
{
	const JsonReader root(doc, "members answer", Code::network);
	LOY_TRY(root.expect_object());
	auto boolean = [](const JsonReader &r, const char *key) -> Result<bool> {
		const JsonReader v = r.child(key);
		if (!v.node().is_boolean())
			return r.field_error(key, "must be true or false");
		return v.node().get<bool>();
	};
	// A text the centre may leave empty or null (a member's tier before
	// any program, a card never shown): "".
	auto text = [](const JsonReader &r, const char *key, size_t max) -> Result<std::string> {
		const Json &v = r.child(key).node();
		if (v.is_null())
			return std::string();
		if (!v.is_string())
			return r.field_error(key, "must be a string");
		if (v.get_ref<const std::string &>().size() > max)
			return r.field_error(key, fmt::format("must be at most {} bytes", max));
		return v.get<std::string>();
	};
	MembersPage page;
	const JsonReader list = root.child("members");
	auto n = list.array_size(static_cast<size_t>(pull_page_members));
	if (!n)
		return n.status();
	for (size_t i = 0; i < *n; i++) {
		const JsonReader m = list.element(i);
		LOY_TRY(m.expect_object());
		Terminal::ServerMember x;
		auto token = m.string("token", member_token_bytes_max);
		auto masked = text(m, "masked", masked_card_bytes_max);
		auto balance = m.integer("balance", -member_total_max, member_total_max);
		auto pending = m.opt_integer("pending", 0, member_total_max);
		auto spend = m.integer("qualifying_spend", -member_total_max, member_total_max);
		auto tier = text(m, "tier", name_length_max);
		auto blocked = boolean(m, "blocked");
		auto expiry = m.opt_string("next_expiry", date_bytes_max);
		for (const Status &st : {token.status(), masked.status(), balance.status(), pending.status(),
					 spend.status(), tier.status(), blocked.status(), expiry.status()})
			if (!st)
				return st;
		x.token = *token;
		x.masked = *masked;
		x.balance = *balance;
		x.pending = pending->value_or(0);
		x.qualifying_spend = *spend;
		x.tier = *tier;
		x.blocked = *blocked;
		x.next_expiry = expiry->value_or("");
		page.members.push_back(std::move(x));
	}
	auto watermark = root.integer("watermark", 0, INT64_MAX);
	auto more = boolean(root, "more");
	for (const Status &st : {watermark.status(), more.status()})
		if (!st)
			return st;
	page.watermark = *watermark;
	page.more = *more;
	return page;
}

} // namespace

Result<MembersPage> parse_members_page(std::string_view body)
{
	auto doc = json_parse(body, Code::network, "members");
	if (!doc)
		return doc.status();
	return read_members_page(*doc);
}

Result<MembersPage> read_members_page(const nlohmann::json &doc)
{
	auto page = read_members_fields(doc);
	// The reader names a number past 64 bits as an overflow: here it is
	// the server's fault like any other bad field.
	if (!page && page.status().code() != Code::network)
		return Status(Code::network, page.status().message());
	return page;
}

Result<Endpoint> parse_server_url(const std::string &url)
{
	const std::string scheme = "https://";
	auto bad = [&] {
		return Status(Code::bad_argument,
			      fmt::format("server \"{}\" is not https://HOST:PORT", url));
	};
	if (url.compare(0, scheme.size(), scheme) != 0)
		return bad();
	std::string rest = url.substr(scheme.size());
	if (!rest.empty() && rest.back() == '/')
		rest.pop_back();
	Endpoint ep;
	size_t colon;
	if (!rest.empty() && rest[0] == '[') {
		size_t close = rest.find(']');
		if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
			return bad();
		ep.host = rest.substr(1, close - 1);
		colon = close + 1;
	} else {
		colon = rest.rfind(':');
		if (colon == std::string::npos || colon == 0)
			return bad();
		ep.host = rest.substr(0, colon);
	}
	std::string port = rest.substr(colon + 1);
	if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
		return bad();
	int p = std::stoi(port);
	if (p < 1 || p > 65535)
		return bad();
	ep.port = static_cast<uint16_t>(p);
	return ep;
}

Result<SyncReport> sync_terminal(Terminal &t, const std::function<int64_t()> &clock, const Timeouts &timeouts,
				 const std::function<void(const std::string &)> &progress)
{
	auto settings = t.sync_settings();
	if (!settings)
		return settings.status();
	if (settings->server.empty())
		return Status(Code::bad_argument, "sync: this terminal has no server: init it with --server "
						  "https://HOST:PORT --ca --cert --key --token-key");
	auto ep = parse_server_url(settings->server);
	if (!ep)
		return ep.status();
	ClientIdentity id;
	for (auto [item, to] : {std::pair{tls_ca_item, &id.ca_pem}, std::pair{tls_cert_item, &id.cert_pem},
				std::pair{tls_key_item, &id.key_pem}}) {
		auto pem = t.keys().item(item);
		if (!pem)
			return pem.status();
		*to = *pem;
	}
	auto stream = tls_connect(ep->host, ep->port, id, timeouts);
	if (!stream)
		return stream.status();
	TlsStream &s = **stream;

	// Push: every entry past the acknowledged one, in order, in batches. A
	// terminal with nothing to push still pushes once, empty: the server
	// learns that it is alive and how far its clock is from the server's.
	int64_t acked = settings->acked_through;
	for (bool first = true;; first = false) {
		if (timeouts.cancel && timeouts.cancel->load())
			return net_error("cancelled: the terminal is stopping");
		auto batch = t.unacked(acked, push_batch_entries);
		if (!batch)
			return batch.status();
		if (batch->empty() && !first)
			break;
		Json entries = Json::array();
		for (const auto &e : *batch)
			entries.push_back(Json{{"seq", e.seq}, {"hash", e.hash}, {"body", e.body}});
		Json body{{"terminal", settings->terminal_id},
			  {"store", settings->store},
			  {"device_time", format_timestamp(Timestamp{clock(), 0})},
			  {"entries", entries}};
		auto answer = call(s, *ep, "POST", "/v1/push", body.dump());
		if (!answer)
			return answer.status();
		if (batch->empty())
			break;
		int64_t now_acked = answer->value("acked_through", int64_t{-1});
		if (now_acked < batch->back().seq)
			return net_error(fmt::format("the server acknowledged {} of a batch ending at {}",
						     now_acked, batch->back().seq));
		acked = now_acked;
		if (progress)
			progress(fmt::format("pushed through entry {}", acked));
	}

	// Pull the program, then the members changed since the last watermark.
	std::optional<std::string> program;
	{
		auto answer = call(s, *ep, "GET",
				   fmt::format("/v1/program?id={}&after={}", settings->program_id,
					       settings->program_version),
				   "");
		if (!answer)
			return answer.status();
		if (answer->contains("program") && !(*answer)["program"].is_null())
			program = (*answer)["program"].is_string() ? (*answer)["program"].get<std::string>()
								   : (*answer)["program"].dump();
	}
	std::vector<Terminal::ServerMember> members;
	int64_t watermark = settings->watermark;
	for (int page = 0;; page++) {
		if (page == pull_pages_max)
			return net_error("the server kept answering \"more\"");
		auto answer = call(s, *ep, "GET",
				   fmt::format("/v1/members?after={}&limit={}", watermark, pull_page_members), "");
		if (!answer)
			return answer.status();
		auto got = read_members_page(*answer);
		if (!got)
			return got.status();
		for (auto &m : got->members)
			members.push_back(std::move(m));
		watermark = got->watermark;
		if (progress)
			progress(fmt::format("pulled {} members", members.size()));
		if (!got->more)
			break;
	}
	s.close();

	LOY_TRY(t.record_sync(acked, members, watermark, program, clock()));
	auto after = t.sync_settings();
	if (!after)
		return after.status();
	SyncReport r;
	r.pushed = acked - settings->acked_through;
	r.acked_through = acked;
	r.members = static_cast<int64_t>(members.size());
	r.program_version = after->program_version;
	return r;
}

} // namespace loy::net
