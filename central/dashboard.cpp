// The dashboard's API and page (dashboard.hpp).
#include "central/dashboard.hpp"

#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/crypto.hpp"
#include "base/json_reader.hpp"
#include "base/utf8.hpp"
#include "central/views.hpp"
#include "core/program.hpp"

namespace loy::central {

namespace {

using Json = nlohmann::json;

constexpr int64_t audit_shown_max = 200;
constexpr size_t field_bytes_max = 1024;

net::Response answer(int status, const std::string &content_type, std::string body)
{
	net::Response r;
	r.status = status;
	r.reason = status == 200 ? "OK" : status == 400 ? "Bad Request" : status == 401 ? "Unauthorized"
		 : status == 403 ? "Forbidden" : status == 404 ? "Not Found" : status == 405 ? "Method Not Allowed"
		 : status == 413 ? "Content Too Large" : status == 503 ? "Service Unavailable" : "Internal Server Error";
	r.headers = {{"Content-Type", content_type},
		     {"Cache-Control", "no-store"},
		     {"X-Content-Type-Options", "nosniff"},
		     {"X-Frame-Options", "DENY"},
		     {"Referrer-Policy", "no-referrer"},
		     {"Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'"},
		     {"Strict-Transport-Security", "max-age=31536000"}};
	r.body = std::move(body);
	return r;
}

net::Response json_answer(int status, const ViewJson &j) { return answer(status, "application/json", j.dump()); }

net::Response error(int status, const std::string &code, const std::string &message)
{
	return json_answer(status, ViewJson{{"error", {{"code", code}, {"message", utf8_scrub(message)}}}});
}

net::Response from_status(const Status &s)
{
	if (s.kind() == Kind::bad_input)
		return error(400, code_name(s.code()), s.message());
	if (s.kind() == Kind::storage)
		return error(503, code_name(s.code()), s.message());
	return error(500, code_name(s.code()), s.message());
}

// A query string's value of `key`, percent-decoded ('+' is a space);
// nullopt when absent or empty.
std::optional<std::string> query_value(const std::string &target, const std::string &key)
{
	const size_t q = target.find('?');
	if (q == std::string::npos)
		return std::nullopt;
	std::string_view rest(target);
	rest.remove_prefix(q + 1);
	while (!rest.empty()) {
		const size_t amp = rest.find('&');
		std::string_view pair = rest.substr(0, amp);
		rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
		const size_t eq = pair.find('=');
		if (pair.substr(0, eq) != key || eq == std::string_view::npos)
			continue;
		std::string out;
		for (size_t i = eq + 1; i < pair.size(); i++) {
			uint8_t byte = 0;
			if (pair[i] == '+') {
				out += ' ';
			} else if (pair[i] == '%' && i + 2 < pair.size() && crypto::from_hex(pair.substr(i + 1, 2), &byte, 1)) {
				out += static_cast<char>(byte);
				i += 2;
			} else {
				out += pair[i];
			}
		}
		if (out.empty())
			return std::nullopt;
		return out;
	}
	return std::nullopt;
}

std::string path_of(const std::string &target) { return target.substr(0, target.find('?')); }

// The session cookie's token from a Cookie header ("a=1; loyalty_session=T").
std::string cookie_token(const net::Request &req)
{
	const std::string header = req.header("Cookie");
	std::string_view rest(header);
	const std::string name = std::string(session_cookie) + "=";
	while (!rest.empty()) {
		while (!rest.empty() && (rest.front() == ' ' || rest.front() == ';'))
			rest.remove_prefix(1);
		const size_t end = rest.find(';');
		std::string_view item = rest.substr(0, end);
		if (item.substr(0, name.size()) == name)
			return std::string(item.substr(name.size()));
		rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
	}
	return {};
}

std::string hashed(const std::string &token) { return crypto::to_hex(crypto::sha256(token)); }

Result<std::string> random_hex()
{
	auto k = crypto::random_key();
	if (!k)
		return k.status();
	return crypto::to_hex(k->data(), k->size());
}

// A JSON object body's string field, at most field_bytes_max bytes.
Result<std::string> body_text(const Json &body, const char *key)
{
	auto it = body.find(key);
	if (it == body.end() || !it->is_string() || it->get_ref<const std::string &>().size() > field_bytes_max)
		return Status(Code::bad_argument, fmt::format("{} must be a string of at most {} bytes", key,
							      field_bytes_max));
	return it->get<std::string>();
}

// What every sign-in costs, for a name that is no account too: an
// attacker learns nothing from the time the answer takes.
const std::string &dummy_hash()
{
	static const std::string h = [] {
		auto made = hash_password("no such account", password_iterations);
		return made ? *made : std::string();
	}();
	return h;
}

net::Response login(Store &store, const Json &body, int64_t now)
{
	const net::Response refused = error(401, "unauthorized", "sign-in refused");
	auto user = body_text(body, "user"), password = body_text(body, "password"), code = body_text(body, "totp");
	if (!user || !password || !code || !check_admin_name(*user))
		return refused;
	auto allowed = store.sign_in_allowed(*user, now);
	auto account = store.admin(*user);
	if (!allowed || !account)
		return from_status(!allowed ? allowed.status() : account.status());
	if (!*account) {
		(void)password_matches(*password, dummy_hash());
		return refused;
	}
	const AdminAccount &a = **account;
	bool ok = password_matches(*password, a.password_hash) && *allowed;
	std::optional<int64_t> step;
	if (ok) {
		auto secret = base32_decode(a.totp_secret);
		step = secret ? totp_match(*secret, *code, now, a.totp_last_step) : std::nullopt;
		ok = step.has_value();
	}
	if (ok) {
		auto spent = store.spend_totp_step(a.name, *step);
		if (!spent)
			return from_status(spent.status());
		ok = *spent;
	}
	if (!ok) {
		if (auto s = store.sign_in_failed(a.name, now); !s)
			return from_status(s);
		(void)store.audit(AuditEntry{a.name, "sign-in refused", "", now});
		return refused;
	}
	auto token = random_hex(), csrf = random_hex();
	if (!token || !csrf)
		return from_status(!token ? token.status() : csrf.status());
	Session s{hashed(*token), a.name, a.role, *csrf, now + session_lifetime_s};
	if (auto st = store.open_session(s); !st)
		return from_status(st);
	(void)store.audit(AuditEntry{a.name, "sign in", role_name(a.role), now});
	net::Response r = json_answer(200, ViewJson{{"csrf", *csrf}, {"user", a.name}, {"role", role_name(a.role)}});
	r.headers.emplace_back("Set-Cookie", fmt::format("{}={}; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
							 session_cookie, *token, session_lifetime_s));
	return r;
}

net::Response static_file(const std::string &path, const char *type)
{
	std::ifstream in(path, std::ios::binary);
	if (!in)
		return error(404, "not_found", "the chart library is not installed (Debian's libjs-chart.js)");
	std::stringstream ss;
	ss << in.rdbuf();
	net::Response r = answer(200, type, ss.str());
	for (auto &h : r.headers)
		if (h.first == "Cache-Control")
			h.second = "max-age=3600";
	return r;
}

} // namespace

net::Response handle_admin_request(Store &store, const DashboardOptions &o, const net::Request &req, int64_t now)
{
	const std::string path = path_of(req.target);
	if (req.method == "GET" && (path == "/" || path == "/index.html"))
		return answer(200, "text/html; charset=utf-8", dashboard_html);
	if (req.method == "GET" && path == "/dashboard.js")
		return answer(200, "application/javascript; charset=utf-8", dashboard_js);
	if (req.method == "GET" && path == "/dashboard.css")
		return answer(200, "text/css; charset=utf-8", dashboard_css);
	if (req.method == "GET" && path == "/chart.js")
		return static_file(o.chart_js, "application/javascript; charset=utf-8");
	if (path.rfind("/api/", 0) != 0)
		return error(404, "not_found", "no such page");
	// A program's document may be large; every other body is a few fields.
	const size_t body_max = path == "/api/program" ? program_json_bytes_max + 1024 : admin_body_bytes_max;
	if (req.body.size() > body_max)
		return error(413, "too_large", fmt::format("a request body holds at most {} bytes", body_max));
	Json body = Json::object();
	if (req.method == "POST") {
		auto parsed = json_parse(req.body, Code::bad_argument, "request body");
		if (!parsed || !parsed->is_object())
			return path == "/api/login" ? error(401, "unauthorized", "sign-in refused")
						    : error(400, "bad_argument", "the body must be a JSON object");
		body = std::move(parsed).value();
	}
	if (path == "/api/login") {
		if (req.method != "POST")
			return error(405, "bad_method", "sign in with POST");
		return login(store, body, now);
	}
	// Everything else needs a session.
	const std::string token = cookie_token(req);
	if (token.empty() || token.size() > 128)
		return error(401, "unauthorized", "sign in first");
	auto session = store.session(hashed(token), now);
	if (!session)
		return from_status(session.status());
	if (!*session)
		return error(401, "unauthorized", "sign in first");
	const Session &s = **session;
	if (req.method == "GET") {
		if (path == "/api/report") {
			auto q = report_query(query_value(req.target, "from"), query_value(req.target, "until"),
					      query_value(req.target, "store"));
			if (!q)
				return from_status(q.status());
			auto r = store.report(*q, now);
			return r ? json_answer(200, report_json(*r)) : from_status(r.status());
		}
		if (path == "/api/member") {
			auto card = query_value(req.target, "card");
			if (!card)
				return error(400, "bad_argument", "card= is missing");
			auto st = store.statement(*card, now);
			return st ? json_answer(200, statement_json(*st)) : from_status(st.status());
		}
		if (path == "/api/fraud") {
			auto flags = store.fraud(o.rules);
			return flags ? json_answer(200, fraud_json(*flags)) : from_status(flags.status());
		}
		if (path == "/api/audit") {
			auto log = store.audit_log(audit_shown_max);
			if (!log)
				return from_status(log.status());
			ViewJson entries = ViewJson::array();
			for (const auto &e : *log)
				entries.push_back(ViewJson{{"user", e.user},
							   {"action", e.action},
							   {"at", format_timestamp(Timestamp{e.at_utc, 0})},
							   {"detail", e.detail}});
			return json_answer(200, ViewJson{{"entries", entries}});
		}
		if (path == "/api/session")
			return json_answer(200, ViewJson{{"user", s.user}, {"role", role_name(s.role)}, {"csrf", s.csrf}});
		return error(404, "not_found", "no such call");
	}
	if (req.method != "POST")
		return error(405, "bad_method", "GET or POST");
	if (!crypto::equal(req.header("X-CSRF-Token"), s.csrf))
		return error(403, "csrf", "the page's X-CSRF-Token is missing or wrong: reload the dashboard");
	if (path == "/api/logout") {
		if (auto st = store.close_session(s.id); !st)
			return from_status(st);
		(void)store.audit(AuditEntry{s.user, "sign out", "", now});
		net::Response r = json_answer(200, ViewJson{{"signed_out", true}});
		r.headers.emplace_back("Set-Cookie", fmt::format("{}=; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
								 session_cookie));
		return r;
	}
	if (path == "/api/block" || path == "/api/unblock") {
		if (s.role != Role::manager)
			return error(403, "forbidden", "blocking a card needs the manager role");
		auto card = body_text(body, "card");
		if (!card)
			return from_status(card.status());
		const bool blocking = path == "/api/block";
		auto done = blocking ? store.block(*card, now) : store.unblock(*card, now);
		if (!done)
			return from_status(done.status());
		(void)store.audit(AuditEntry{s.user, blocking ? "block" : "unblock", "card " + done->card, now});
		return json_answer(200, ViewJson{{"card", done->card}, {"blocked", blocking}});
	}
	if (path == "/api/segment") {
		if (s.role != Role::manager)
			return error(403, "forbidden", "segments need the manager role");
		auto card = body_text(body, "card"), name = body_text(body, "segment");
		if (!card || !name)
			return from_status(!card ? card.status() : name.status());
		const auto action = body.find("action");
		if (action == body.end() || !action->is_string() || (*action != "add" && *action != "remove"))
			return error(400, "bad_argument", "action must be \"add\" or \"remove\"");
		const bool add = *action == "add";
		auto done = store.segment(*card, *name, add, now);
		if (!done)
			return from_status(done.status());
		(void)store.audit(AuditEntry{s.user, add ? "segment add" : "segment remove",
					     fmt::format("card {} segment {}", done->card, *name), now});
		return json_answer(200, balance_json(*done));
	}
	if (path == "/api/program") {
		if (s.role != Role::manager)
			return error(403, "forbidden", "publishing a program needs the manager role");
		// The program document itself, validated as `program publish` does.
		auto document = body.find("document");
		if (document == body.end() || !document->is_object())
			return error(400, "bad_argument", "document must be the program's JSON object");
		auto done = store.publish_program(document->dump(), now);
		if (!done)
			return from_status(done.status());
		(void)store.audit(AuditEntry{s.user, "program publish",
					     fmt::format("{} version {}{}", done->program, done->version,
							 done->published ? "" : " (already published)"),
					     now});
		return json_answer(200, published_json(*done));
	}
	return error(404, "not_found", "no such call");
}

} // namespace loy::central
