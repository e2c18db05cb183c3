// Terminal sync: push, pull, record.
#include "sync/client.hpp"


#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/timeutil.hpp"
#include "sync/http.hpp"

namespace loy::net {

using Json = nlohmann::json;

namespace {

Status net_error(std::string msg) { return Status(Code::network, "sync: " + std::move(msg)); }

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
	Json doc = Json::parse(resp->body, nullptr, false);
	if (resp->status / 100 != 2) {
		std::string what = resp->reason;
		if (!doc.is_discarded() && doc.contains("error"))
			what = doc["error"].value("message", what);
		return net_error(fmt::format("{} {}: server answered {}: {}", method, target, resp->status, what));
	}
	if (doc.is_discarded() || !doc.is_object())
		return net_error(fmt::format("{} {}: the answer is not a JSON object", method, target));
	return doc;
}

} // namespace

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
		try {
			for (const auto &m : answer->at("members")) {
				Terminal::ServerMember x;
				x.token = m.at("token").get<std::string>();
				x.masked = m.value("masked", "");
				x.balance = m.at("balance").get<int64_t>();
				x.pending = m.value("pending", int64_t{0});
				x.qualifying_spend = m.at("qualifying_spend").get<int64_t>();
				x.tier = m.value("tier", "");
				x.blocked = m.at("blocked").get<bool>();
				if (m.contains("next_expiry") && m["next_expiry"].is_string())
					x.next_expiry = m["next_expiry"].get<std::string>();
				members.push_back(std::move(x));
			}
			watermark = answer->at("watermark").get<int64_t>();
			if (progress)
				progress(fmt::format("pulled {} members", members.size()));
			if (!answer->at("more").get<bool>())
				break;
		} catch (const Json::exception &e) {
			return net_error(fmt::format("the members answer is malformed: {}", e.what()));
		}
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
