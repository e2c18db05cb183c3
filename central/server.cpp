// Serving the sync protocol (sync/PROTOCOL.md).
#include "central/server.hpp"

#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/json_reader.hpp"
#include "core/program.hpp"
#include "base/timeutil.hpp"
#include "base/utf8.hpp"

#include "central/store.hpp"
#include "central/tls_server.hpp"
#include "sync/http.hpp"

namespace loy::central {

using Json = nlohmann::json;

namespace {

// Terminal and store ids are at most what a terminal's init takes; an
// entry's hash is SHA-256 in hex.
constexpr size_t id_bytes_max = name_length_max;
constexpr size_t entry_hash_bytes_max = 64;
constexpr size_t ledger_id_bytes_max = 64;
// How long, and how much, a refused client may still send before the close.
// A terminal sends a sync's requests back to back, so a worker waits for
// the next one on a kept connection only this long (then closes it), and
// for one request whole no longer than the other: an authenticated peer,
// silent or slow, holds a worker for seconds, not for ever.
constexpr int keepalive_idle_ms = 5000;
constexpr int request_ms_max = 60000;
constexpr int linger_ms = 1000;
// A browser's requests are small and sent at once: a dashboard connection
// silent or slow holds one of its few workers for seconds, not a minute.
constexpr int admin_idle_ms = 5000;
constexpr int admin_request_ms = 10000;
constexpr size_t linger_bytes_max = 1 << 20;

net::Response json_response(int status, const std::string &body)
{
	net::Response r;
	r.status = status;
	r.reason = status == 200 ? "OK" : status == 400 ? "Bad Request" : status == 403 ? "Forbidden"
		 : status == 404 ? "Not Found" : status == 409 ? "Conflict" : status == 413 ? "Content Too Large"
		 : status == 431 ? "Request Header Fields Too Large" : status == 501 ? "Not Implemented"
		 : status == 503 ? "Service Unavailable" : "Internal Server Error";
	r.headers = {{"Content-Type", "application/json"}};
	r.body = body;
	return r;
}

// A message may quote the request (a path, a value) in bytes that are not
// UTF-8: scrubbed, or the JSON writer would throw.
net::Response error_response(int status, const std::string &code, const std::string &message)
{
	return json_response(status, Json{{"error", {{"code", code}, {"message", utf8_scrub(message)}}}}.dump());
}

net::Response from_status(const Status &s)
{
	int http = 500;
	switch (s.kind()) {
	case Kind::bad_input:
		http = s.code() == chain_conflict ? 409 : 400;
		break;
	case Kind::declined:
		http = 409;
		break;
	case Kind::storage:
		// The store cannot serve now (its database restarting, a link to
		// it cut): the terminal tries again later; nothing was applied.
		http = 503;
		break;
	default:
		http = 500;
	}
	net::Response r = error_response(http, code_name(s.code()), s.message());
	if (http == 503)
		r.headers.emplace_back("Retry-After", std::to_string(serve_retry_after_s));
	return r;
}

// The protocol's answers (sync/PROTOCOL.md), each built here only. Json,
// not ordered_json: the keys go out sorted, as they always have.
std::string push_answer(const ChainHead &head)
{
	return Json{{"acked_through", head.seq}, {"hash", head.hash}}.dump();
}

std::string entries_answer(const EntriesPage &page)
{
	Json list = Json::array();
	for (const auto &e : page.entries)
		list.push_back(Json{{"seq", e.seq}, {"hash", e.hash}, {"body", e.body}});
	return Json{{"acked_through", page.head.seq}, {"hash", page.head.hash}, {"entries", list}, {"more", page.more}}
		.dump();
}

// The document as published, inside the answer (not a string of it).
std::string program_answer(const std::optional<std::string> &document)
{
	Json out{{"program", nullptr}};
	if (document)
		out["program"] = Json::parse(*document);
	return out.dump();
}

std::string members_answer(const MembersPage &page)
{
	Json members = Json::array();
	for (const auto &m : page.members) {
		Json member{{"token", m.token},
			    {"masked", m.masked},
			    {"balance", m.balance},
			    {"pending", m.pending},
			    {"qualifying_spend", m.qualifying_spend},
			    {"tier", m.tier},
			    {"blocked", m.blocked},
			    {"next_expiry", m.next_expiry ? Json(*m.next_expiry) : Json(nullptr)}};
		// Since protocol 2's program types; absent, a terminal reads none.
		if (!m.segments.empty())
			member["segments"] = m.segments;
		if (!m.stamps.empty()) {
			Json stamps = Json::object();
			for (const auto &[card, n] : m.stamps)
				stamps[card] = n;
			member["stamps"] = std::move(stamps);
		}
		if (!m.memberships.empty()) {
			Json runs = Json::object();
			for (const auto &[id, run] : m.memberships)
				runs[id] = Json{{"from", format_date(run.from)}, {"until", format_date(run.until)}};
			member["memberships"] = std::move(runs);
		}
		members.push_back(std::move(member));
	}
	return Json{{"members", members}, {"watermark", page.watermark}, {"more", page.more}}.dump();
}

// The value of `key` in a query string "a=1&b=2".
std::string query_param(const std::string &target, const std::string &key)
{
	auto q = target.find('?');
	if (q == std::string::npos)
		return {};
	std::string rest = target.substr(q + 1);
	size_t pos = 0;
	while (pos <= rest.size()) {
		size_t amp = rest.find('&', pos);
		std::string pair = rest.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
		auto eq = pair.find('=');
		if (eq != std::string::npos && pair.substr(0, eq) == key)
			return pair.substr(eq + 1);
		if (amp == std::string::npos)
			break;
		pos = amp + 1;
	}
	return {};
}

// A query number: decimal digits only, within 0..INT64_MAX; anything else
// (a sign, a space, 2^63) is the client's error, never an exception.
bool to_int(const std::string &s, int64_t *out)
{
	if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos)
		return false;
	int64_t v = 0;
	auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
	if (ec != std::errc() || end != s.data() + s.size())
		return false;
	*out = v;
	return true;
}

class Queue {
public:
	explicit Queue(size_t max) : max_(max) {}
	// Takes `s` when there is room; leaves it with the caller when not.
	bool push(std::unique_ptr<net::TlsStream> &s)
	{
		std::lock_guard<std::mutex> lock(mu_);
		// A worker waiting takes the connection at once: only those
		// beyond the idle workers wait, at most max_ of them.
		if (q_.size() >= max_ + idle_)
			return false;
		q_.push_back(std::move(s));
		cv_.notify_one();
		return true;
	}
	// nullptr once closed and empty.
	std::unique_ptr<net::TlsStream> pop()
	{
		std::unique_lock<std::mutex> lock(mu_);
		idle_++;
		cv_.wait(lock, [&] { return closed_ || !q_.empty(); });
		idle_--;
		if (q_.empty())
			return nullptr;
		auto s = std::move(q_.front());
		q_.pop_front();
		return s;
	}
	void close()
	{
		std::lock_guard<std::mutex> lock(mu_);
		closed_ = true;
		cv_.notify_all();
	}

private:
	std::mutex mu_;
	std::condition_variable cv_;
	std::deque<std::unique_ptr<net::TlsStream>> q_;
	const size_t max_;
	size_t idle_ = 0; // callers of pop() waiting
	bool closed_ = false;
};

// After refusing a message whose rest is still coming (a body too large, a
// head too long): read and drop what follows for a moment, so that closing
// with unread bytes (a TCP reset) does not destroy the answer before the
// client reads it.
void linger(net::TlsStream &s)
{
	using Clock = std::chrono::steady_clock;
	const auto until = Clock::now() + std::chrono::milliseconds(linger_ms);
	char buf[16384];
	for (size_t dropped = 0; dropped < linger_bytes_max;) {
		// One deadline for the whole linger: a byte now and then does not
		// hold the worker longer.
		const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
		if (left <= 0)
			return;
		s.set_io_timeout(static_cast<int>(left));
		auto n = s.read_some(buf, sizeof buf);
		if (!n || *n == 0)
			return;
		dropped += *n;
	}
}

// How long the refuser waits for a busy connection's request, and for all
// of it: a terminal sends it at once; a silent client is closed unanswered.
constexpr int refuse_idle_ms = 2000;
constexpr int refuse_request_ms = 5000;

// A connection the server has no room for: its request read (so that the
// close is not a reset that destroys the answer), answered 503 with a
// Retry-After of `retry_after_s`, closed.
void refuse_busy(net::TlsStream &s, int retry_after_s)
{
	int refuse_with = 0;
	auto req = net::read_next_request(s, &refuse_with, net::RequestBounds{refuse_idle_ms, refuse_request_ms});
	if (req && *req) {
		net::Response resp = error_response(503, "busy", fmt::format("the server is busy: try again in {} s",
									      retry_after_s));
		resp.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
		resp.headers.emplace_back("Connection", "close");
		if (net::write_response(s, resp))
			linger(s);
	}
	s.close();
}

// What a worker does with one request: the sync protocol's, or the
// dashboard's.
using Handler = std::function<net::Response(Store &, const net::Request &, const std::string &cn, int64_t now)>;

void serve_connection(Store &store, net::TlsStream &s, const std::atomic<bool> &stop,
		      const std::function<int64_t()> &clock, const Handler &handle,
		      const net::RequestBounds &bounds = {keepalive_idle_ms, request_ms_max})
{
	const std::string cn = s.peer_cn();
	while (!stop.load()) {
		int refuse_with = 0;
		auto req = net::read_next_request(s, &refuse_with, bounds);
		if (!req && refuse_with != 0) {
			// A malformed message: its answer names the problem, then the
			// connection closes (where the next message starts is unknown).
			net::Response resp = error_response(refuse_with, "bad_request", req.status().message());
			resp.headers.emplace_back("Connection", "close");
			if (net::write_response(s, resp))
				linger(s);
			break;
		}
		if (!req || !*req)
			break; // closed by the terminal, or a broken or stalled connection
		net::Response resp;
		try {
			resp = handle(store, **req, cn, clock());
		} catch (const std::exception &e) {
			// A bug, not the client's fault: its request fails alone, the
			// worker and the server go on; the log says what it was.
			std::fprintf(stderr, "loyalty-central: internal error on %s %s from %s: %s\n",
				     (*req)->method.c_str(), (*req)->target.substr(0, 200).c_str(), cn.c_str(), e.what());
			resp = error_response(500, "internal", "internal error; the server's log has the details");
		}
		if (stop.load())
			resp.headers.emplace_back("Connection", "close");
		if (!net::write_response(s, resp))
			break;
	}
	s.close();
}

} // namespace

namespace {

// after= and limit= of a paged GET: after a number from 0, limit from 1
// (past `max` it is `max`). An answer when they are not.
struct PageQuery {
	int64_t after = 0;
	int limit = 0;
};

std::optional<net::Response> read_page_query(const net::Request &req, const char *what, int max, PageQuery *q)
{
	int64_t after = 0, limit = max;
	std::string a = query_param(req.target, "after"), l = query_param(req.target, "limit");
	if ((!a.empty() && !to_int(a, &after)) || (!l.empty() && !to_int(l, &limit)))
		return error_response(400, "bad_argument",
				      fmt::format("{}: after and limit must be numbers from 0 to {}", what, INT64_MAX));
	if (limit < 1)
		return error_response(400, "bad_argument", fmt::format("{}: limit must be at least 1", what));
	q->after = after;
	q->limit = static_cast<int>(std::min<int64_t>(limit, max));
	return std::nullopt;
}

// What a push carries besides its entries, in either encoding.
struct PushHead {
	std::string terminal, store, ledger;
	std::optional<int64_t> device_now;
};

Result<std::optional<int64_t>> read_device_time(const Json &body)
{
	auto d = body.find("device_time");
	if (d == body.end() || d->is_null())
		return std::optional<int64_t>();
	auto t = d->is_string() ? parse_timestamp(d->get<std::string>())
				: Result<Timestamp>(Status(Code::bad_argument, ""));
	if (!t)
		return Status(Code::bad_argument, "push: device_time is not an RFC 3339 time");
	return std::optional<int64_t>(t->utc_s);
}

// The envelope's fields, bounded; `what` names the encoding in errors.
Status read_push_head(const Json &body, const char *what, PushHead *head)
{
	const JsonReader root(body, what, Code::bad_argument);
	LOY_TRY(root.expect_object());
	auto terminal = root.string("terminal", id_bytes_max);
	auto store_id = root.string("store", id_bytes_max);
	auto ledger = root.opt_string("ledger", ledger_id_bytes_max);
	for (const Status &st : {terminal.status(), store_id.status(), ledger.status()})
		LOY_TRY(st);
	auto device = read_device_time(body);
	if (!device)
		return device.status();
	head->terminal = *terminal;
	head->store = *store_id;
	head->ledger = ledger->value_or("");
	head->device_now = *device;
	return Status::ok();
}

// Version 1: one JSON document, each entry's body a JSON string in it.
Status read_push_v1(std::string_view text, PushHead *head, std::vector<PushEntry> *entries)
{
	auto parsed = json_parse(text, Code::bad_argument, "push");
	if (!parsed)
		return parsed.status();
	const Json &body = *parsed;
	LOY_TRY(read_push_head(body, "push", head));
	const JsonReader root(body, "push", Code::bad_argument);
	auto count = root.child("entries").array_size(push_entries_max);
	if (!count)
		return count.status();
	const JsonReader list = root.child("entries");
	for (size_t i = 0; i < *count; i++) {
		const JsonReader e = list.element(i);
		auto seq = e.integer("seq", 1, INT64_MAX);
		auto hash = e.string("hash", entry_hash_bytes_max);
		auto body_text = e.string("body", net::http_body_bytes_max);
		for (const Status &st : {e.expect_object(), seq.status(), hash.status(), body_text.status()})
			LOY_TRY(st);
		entries->push_back(PushEntry{*seq, *hash, *body_text});
	}
	return Status::ok();
}

// Version 2 (sync/PROTOCOL.md): the envelope on the first line, then one
// line per entry, "SEQ HASH BODY", the body as the terminal hashed it: no
// JSON string around it to escape and parse again.
Status read_push_v2(std::string_view text, PushHead *head, std::vector<PushEntry> *entries)
{
	auto line_end = [&](size_t from) { return text.find('\n', from); };
	size_t end = line_end(0);
	if (end == std::string_view::npos)
		return Status(Code::bad_argument, "push v2: the first line (the envelope) has no end");
	auto parsed = json_parse(text.substr(0, end), Code::bad_argument, "push v2 envelope");
	if (!parsed)
		return parsed.status();
	LOY_TRY(read_push_head(*parsed, "push v2 envelope", head));
	auto count = JsonReader(*parsed, "push v2 envelope", Code::bad_argument).integer("entries", 0, push_entries_max);
	if (!count)
		return count.status();
	size_t at = end + 1;
	for (int64_t i = 0; i < *count; i++) {
		end = line_end(at);
		if (end == std::string_view::npos)
			return Status(Code::bad_argument,
				      fmt::format("push v2: {} entries announced, {} lines came", *count, i));
		const std::string_view line = text.substr(at, end - at);
		const size_t sp1 = line.find(' '), sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
		int64_t seq = 0;
		if (sp2 == std::string_view::npos || !to_int(std::string(line.substr(0, sp1)), &seq) || seq < 1 ||
		    sp2 - sp1 - 1 != entry_hash_bytes_max)
			return Status(Code::bad_argument,
				      fmt::format("push v2: line {} is not \"SEQ HASH BODY\" (a sequence from 1, 64 "
						  "hex digits, the entry)",
						  i + 2));
		entries->push_back(PushEntry{seq, std::string(line.substr(sp1 + 1, entry_hash_bytes_max)),
					     std::string(line.substr(sp2 + 1))});
		at = end + 1;
	}
	if (at != text.size())
		return Status(Code::bad_argument,
			      fmt::format("push v2: {} bytes after the {} entries announced", text.size() - at, *count));
	return Status::ok();
}

} // namespace

net::Response handle_request(Store &store, const net::Request &req, const std::string &cn, int64_t now)
{
	// Version 2 changes the push's encoding only; every other request is
	// the same under either.
	const std::string protocol = req.header("X-Loyalty-Protocol");
	if (protocol != "1" && protocol != "2")
		return error_response(400, "bad_argument", "X-Loyalty-Protocol: 1 or 2 is required");
	const std::string path = req.target.substr(0, req.target.find('?'));
	const bool push_v1 = path == "/v1/push", push_v2 = path == "/v2/push";
	if (req.method == "POST" && (push_v1 || push_v2)) {
		if (push_v2 && protocol != "2")
			return error_response(400, "bad_argument", "POST /v2/push needs X-Loyalty-Protocol: 2");
		PushHead head;
		std::vector<PushEntry> entries;
		Status read = push_v1 ? read_push_v1(req.body, &head, &entries) : read_push_v2(req.body, &head, &entries);
		if (!read)
			return from_status(read);
		if (head.terminal != cn)
			return error_response(403, "forbidden",
					      fmt::format("push: certificate of terminal {} cannot push the ledger of "
							  "\"{}\"",
							  cn, utf8_scrub(head.terminal)));
		auto pushed = store.push(cn, head.store, head.ledger, entries, now, head.device_now);
		if (!pushed)
			return from_status(pushed.status());
		return json_response(200, push_answer(*pushed));
	}
	if (req.method == "GET" && path == "/v1/entries") {
		// A terminal reads back only its own entries: the certificate's.
		PageQuery q;
		if (auto bad = read_page_query(req, "entries", entries_page_max, &q))
			return *bad;
		const std::string ledger = query_param(req.target, "ledger");
		if (ledger.size() > ledger_id_bytes_max)
			return error_response(400, "bad_argument",
					      fmt::format("entries: ledger must be at most {} bytes", ledger_id_bytes_max));
		auto page = store.entries_after(cn, ledger, q.after, q.limit);
		if (!page)
			return from_status(page.status());
		return json_response(200, entries_answer(*page));
	}
	if (req.method == "GET" && path == "/v1/program") {
		int64_t after = 0;
		std::string a = query_param(req.target, "after");
		if (!a.empty() && !to_int(a, &after))
			return error_response(400, "bad_argument",
					      fmt::format("program: after must be a number from 0 to {}", INT64_MAX));
		// version=V: that version exactly (a terminal taking back entries
		// of a version it no longer holds); else the newest above `after`.
		int64_t version = 0;
		std::string v = query_param(req.target, "version");
		if (!v.empty() && (!to_int(v, &version) || version < 1 || version > program_version_max))
			return error_response(400, "bad_argument",
					      fmt::format("program: version must be a number from 1 to {}",
							  program_version_max));
		auto doc = v.empty() ? store.program_after(query_param(req.target, "id"), after)
				     : store.program_version(query_param(req.target, "id"), version);
		if (!doc)
			return from_status(doc.status());
		return json_response(200, program_answer(*doc));
	}
	if (req.method == "GET" && path == "/v1/members") {
		PageQuery q;
		if (auto bad = read_page_query(req, "members", members_page_max, &q))
			return *bad;
		auto page = store.members_after(q.after, q.limit, now);
		if (!page)
			return from_status(page.status());
		return json_response(200, members_answer(*page));
	}
	return error_response(404, "not_found", fmt::format("no {} {}", req.method, path));
}

Status serve(const ServeOptions &o, const std::atomic<bool> &stop,
	     const std::function<void(uint16_t, uint16_t)> &listening)
{
	// Open the store once here so that a bad data dir fails before listening.
	{
		auto probe = open_store(o.data_dir, o.database);
		if (!probe)
			return probe.status();
	}
	const std::function<int64_t()> clock =
		o.clock ? o.clock : [] { return static_cast<int64_t>(std::time(nullptr)); };
	auto server = net::TlsServer::listen(o.host, o.port, o.identity);
	if (!server)
		return server.status();
	std::unique_ptr<net::TlsServer> admin;
	if (o.admin_port) {
		net::ServerIdentity id = o.identity;
		id.verify_clients = false;
		auto a = net::TlsServer::listen(o.admin_host, *o.admin_port, id);
		if (!a)
			return a.status();
		admin = std::move(a).value();
	}
	const Handler sync_handler = [](Store &st, const net::Request &r, const std::string &cn, int64_t now) {
		return handle_request(st, r, cn, now);
	};
	const Handler admin_handler = [&o](Store &st, const net::Request &r, const std::string &, int64_t now) {
		return handle_admin_request(st, o.dashboard, r, now);
	};
	const int worker_count = std::max(1, o.workers);
	Queue queue(o.waiting_max), refusing(serve_refusing_max);
	std::vector<std::thread> workers;
	std::atomic<int> failed_opens{0};
	std::thread refuser([&] {
		std::minstd_rand jitter(std::random_device{}());
		const int base = std::max(1, o.retry_after_s);
		while (auto s = refusing.pop())
			refuse_busy(*s, base + static_cast<int>(jitter() % static_cast<unsigned>(base + 1)));
	});
	for (int i = 0; i < worker_count; i++)
		workers.emplace_back([&] {
			auto store = open_store(o.data_dir, o.database);
			if (!store) {
				failed_opens++;
				return;
			}
			while (auto s = queue.pop())
				serve_connection(**store, *s, stop, clock, sync_handler);
		});
	// The dashboard: its own accept loop and workers; past them, closed.
	Queue admin_queue(4 * admin_workers);
	std::vector<std::thread> admin_threads;
	if (admin) {
		for (int i = 0; i < admin_workers; i++)
			admin_threads.emplace_back([&] {
				auto store = open_store(o.data_dir, o.database);
				if (!store) {
					std::fprintf(stderr, "loyalty-central: dashboard: %s\n",
						     store.status().message().c_str());
					return;
				}
				while (auto s = admin_queue.pop())
					serve_connection(**store, *s, stop, clock, admin_handler,
							 net::RequestBounds{admin_idle_ms, admin_request_ms});
			});
		admin_threads.emplace_back([&] {
			while (!stop.load()) {
				auto s = admin->accept(accept_poll_ms, o.timeouts);
				if (!s) {
					std::fprintf(stderr, "loyalty-central: dashboard: %s\n", s.status().message().c_str());
					continue;
				}
				std::unique_ptr<net::TlsStream> conn = std::move(s).value();
				if (conn && !admin_queue.push(conn))
					conn->close();
			}
		});
	}
	if (listening)
		listening((*server)->port(), admin ? admin->port() : 0);
	uint64_t busy = 0, busy_closed = 0;
	std::time_t busy_logged_at = 0;
	while (!stop.load()) {
		auto s = (*server)->accept(accept_poll_ms, o.timeouts);
		if (!s) {
			// A failed handshake (a foreign certificate, a port scan) ends
			// that connection, not the server.
			std::fprintf(stderr, "loyalty-central: %s\n", s.status().message().c_str());
			continue;
		}
		std::unique_ptr<net::TlsStream> conn = std::move(s).value();
		if (!conn)
			continue;
		if (queue.push(conn))
			continue;
		busy++;
		if (!refusing.push(conn))
			busy_closed++;
		// Once a second at most: a busy night would fill the log.
		if (auto t = std::time(nullptr); t != busy_logged_at) {
			std::fprintf(stderr, "loyalty-central: busy: %llu connections answered 503 so far (%llu closed "
					     "unanswered)\n",
				     static_cast<unsigned long long>(busy), static_cast<unsigned long long>(busy_closed));
			busy_logged_at = t;
		}
	}
	// Stop: no new connections; requests in hand finish, queued ones close.
	queue.close();
	refusing.close();
	admin_queue.close();
	for (auto &w : workers)
		w.join();
	refuser.join();
	for (auto &t : admin_threads)
		t.join();
	if (failed_opens.load() == worker_count)
		return Status(Code::storage, "central: no worker could open the store");
	return Status::ok();
}

} // namespace loy::central
