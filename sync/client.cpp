// Terminal sync: push, pull, record.
#include "sync/client.hpp"

#include <algorithm>
#include <set>


#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/json_reader.hpp"
#include "core/limits.hpp"
#include "core/program.hpp"
#include "base/timeutil.hpp"
#include "base/utf8.hpp"
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

// A Retry-After in seconds (the delta form; the server sends no dates),
// bounded by the back-off's own ceiling: a day.
constexpr int64_t retry_after_s_max = 86400;

int64_t retry_after_ms(const Response &resp)
{
	const std::string v = resp.header("Retry-After");
	if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos)
		return 0;
	return std::min<int64_t>(std::stoll(v), retry_after_s_max) * 1000;
}

// One request/response on the session; a non-2xx answer is an error naming
// what the server said.
// `http`, when given, receives the answer's status; `busy_ms`, a busy
// server's Retry-After (503), in milliseconds.
// The encoding of a request's body: JSON, or a push of protocol 2.
enum class Encoding { json, batch };

Result<Json> call(TlsStream &s, const Endpoint &ep, const std::string &method, const std::string &target,
		  const std::string &body, int *http = nullptr, int64_t *busy_ms = nullptr,
		  Encoding encoding = Encoding::json)
{
	Request req;
	req.method = method;
	req.target = target;
	req.headers = {{"Host", fmt::format("{}:{}", ep.host, ep.port)},
		       {"X-Loyalty-Protocol", encoding == Encoding::batch ? "2" : "1"},
		       {"Connection", "keep-alive"}};
	if (!body.empty())
		req.headers.emplace_back("Content-Type", encoding == Encoding::batch ? "application/x-loyalty-batch"
										      : "application/json");
	req.body = body;
	LOY_TRY(write_request(s, req));
	auto resp = read_response(s);
	if (!resp)
		return resp.status();
	if (http)
		*http = resp->status;
	if (busy_ms && resp->status == 503)
		*busy_ms = retry_after_ms(*resp);
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
		// Segments (program types of spec 2): absent from an older centre.
		if (m.has("segments")) {
			const JsonReader segs = m.child("segments");
			auto count = segs.array_size(member_segments_max);
			if (!count)
				return count.status();
			for (size_t k = 0; k < *count; k++) {
				auto name = segs.element(k).as_string(segment_name_bytes_max);
				if (!name)
					return name.status();
				if (Status ok = check_segment_name(*name); !ok)
					return segs.element(k).error(ok.message());
				x.segments.push_back(*name);
			}
		}
		// Stamps per stamp card (spec 2): absent from an older centre, or
		// for a member holding none.
		if (m.has("stamps")) {
			const JsonReader stamps = m.child("stamps");
			LOY_TRY(stamps.expect_object());
			if (stamps.node().size() > member_stamp_cards_max)
				return stamps.error(fmt::format("must name at most {} stamp cards", member_stamp_cards_max));
			for (const auto &item : stamps.node().items()) {
				const std::string &card = item.key();
				if (card.empty() || card.size() > name_length_max)
					return stamps.error(fmt::format("a stamp card id must be 1 to {} bytes",
									name_length_max));
				auto count = stamps.integer(card.c_str(), -member_total_max, member_total_max);
				if (!count)
					return count.status();
				x.stamps[card] = *count;
			}
		}
		// Memberships (spec 2): id → {"from", "until"} local dates.
		if (m.has("memberships")) {
			const JsonReader runs = m.child("memberships");
			LOY_TRY(runs.expect_object());
			if (runs.node().size() > program_memberships_max)
				return runs.error(fmt::format("must name at most {} memberships", program_memberships_max));
			for (const auto &item : runs.node().items()) {
				const std::string &id = item.key();
				if (id.empty() || id.size() > name_length_max)
					return runs.error(fmt::format("a membership id must be 1 to {} bytes", name_length_max));
				const JsonReader run = runs.child(id.c_str());
				LOY_TRY(run.expect_object());
				auto from = run.string("from", date_bytes_max);
				auto until = run.string("until", date_bytes_max);
				for (const Status &st : {from.status(), until.status()})
					if (!st)
						return st;
				auto f = parse_date(*from), u = parse_date(*until);
				if (!f)
					return run.field_error("from", f.status().message());
				if (!u)
					return run.field_error("until", u.status().message());
				x.memberships[id] = MembershipRun{*f, *u};
			}
		}
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

// The centre's head of this terminal's chain in an answer (push, entries).
// A centre that does not say the hash (an older one) is taken at its seq.
Result<Terminal::ChainHead> read_head(const Json &answer, const char *what)
{
	const JsonReader root(answer, fmt::format("{} answer", what), Code::network);
	auto seq = root.integer("acked_through", 0, INT64_MAX);
	if (!seq)
		return Status(Code::network, "sync: " + seq.status().message());
	Terminal::ChainHead head{*seq, ""};
	if (auto it = answer.find("hash"); it != answer.end()) {
		if (!it->is_string() || it->get_ref<const std::string &>().size() != 64 ||
		    it->get_ref<const std::string &>().find_first_not_of("0123456789abcdef") != std::string::npos)
			return net_error(fmt::format("{} answer: hash must be 64 hex digits", what));
		head.hash = it->get<std::string>();
	}
	return head;
}

Result<EntriesPage> read_entries_page(const Json &answer)
{
	EntriesPage page;
	auto head = read_head(answer, "entries");
	if (!head)
		return head.status();
	page.head = *head;
	const JsonReader root(answer, "entries answer", Code::network);
	const JsonReader list = root.child("entries");
	auto n = list.array_size(static_cast<size_t>(recover_page_entries));
	if (!n)
		return Status(Code::network, "sync: " + n.status().message());
	for (size_t i = 0; i < *n; i++) {
		const JsonReader e = list.element(i);
		auto seq = e.integer("seq", 1, INT64_MAX);
		auto hash = e.string("hash", 64);
		auto body = e.string("body", http_body_bytes_max);
		for (const Status &st : {e.expect_object(), seq.status(), hash.status(), body.status()})
			if (!st)
				return Status(Code::network, "sync: " + st.message());
		page.entries.push_back(Terminal::Pending{*seq, *hash, *body});
	}
	const Json &more = root.child("more").node();
	if (!more.is_boolean())
		return net_error("entries answer: more must be true or false");
	page.more = more.get<bool>();
	return page;
}

Result<EntriesPage> parse_entries_page(std::string_view body)
{
	auto doc = json_parse(body, Code::network, "entries");
	if (!doc)
		return doc.status();
	return read_entries_page(*doc);
}

namespace {

// Whether this ledger holds the centre's head: its entry at that seq, with
// that hash.
Result<bool> level_with(Terminal &t, const Terminal::ChainHead &head)
{
	auto mine = t.entry_hash(head.seq);
	if (!mine)
		return mine.status();
	return !mine->empty() && (head.hash.empty() || *mine == head.hash);
}

// What reconcile reads of an entry's body, in one parse: the hash of the
// entry before it ("prev", "" when missing), and the program version it
// names (none when missing or out of range).
struct EntryLinks {
	std::string prev;
	std::optional<std::pair<std::string, int64_t>> program;
};

EntryLinks links_of(const std::string &body)
{
	EntryLinks l;
	auto doc = json_parse(body, Code::network, "entry");
	if (!doc || !doc->is_object())
		return l;
	if (auto it = doc->find("prev"); it != doc->end() && it->is_string())
		l.prev = it->get<std::string>();
	auto id = doc->find("program");
	auto v = doc->find("program_version");
	if (id != doc->end() && id->is_string() && !id->get_ref<const std::string &>().empty() && v != doc->end() &&
	    v->is_number_integer() && v->get<int64_t>() >= 1 && v->get<int64_t>() <= program_version_max)
		l.program = std::pair<std::string, int64_t>(id->get<std::string>(), v->get<int64_t>());
	return l;
}

// A ledger that is behind the centre, or went another way from an entry on
// (an old copy put back and sold on): the centre's copies of this
// terminal's entries are read back from the acknowledged one on, a page at
// a time, compared with the journal to find the first that differs, staged
// (each hashing to its hash and continuing the chain), and recorded in one
// transaction with what was recorded here since after them
// (Terminal::recover). Program versions they name that this ledger lost are
// fetched first. Returns the seq to push from. The anchor moves to the
// centre's head once the first differing entry is shown to be the centre's
// continuation of this chain: a recovery that fails after that leaves a
// terminal that refuses to sell on the old balances until it succeeds.
Result<int64_t> reconcile(TlsStream &s, const Endpoint &ep, Terminal &t, const Terminal::SyncSettings &settings,
			  const std::function<int64_t()> &clock, const std::function<void(const std::string &)> &progress,
			  const Timeouts &timeouts, Terminal::Recovery &recovery, int64_t *busy_ms)
{
	const int64_t acked = settings.acked_through;
	std::optional<Terminal::ChainHead> head;
	std::optional<int64_t> fork;
	std::string prev; // hash of the entry before the next one staged
	std::set<std::pair<std::string, int64_t>> programs;
	int64_t after = acked;
	for (;;) {
		if (timeouts.cancel && timeouts.cancel->load())
			return net_error("cancelled: the terminal is stopping");
		auto answer = call(s, ep, "GET",
				   fmt::format("/v1/entries?after={}&limit={}&ledger={}", after, recover_page_entries,
					       settings.ledger_id),
				   "", nullptr, busy_ms);
		if (!answer)
			return answer.status();
		auto page = read_entries_page(*answer);
		if (!page)
			return page.status();
		if (page->head.hash.empty())
			return net_error("entries answer: hash is missing");
		if (!head) {
			head = page->head;
			auto level = level_with(t, *head);
			if (!level)
				return level.status();
			if (*level)
				return head->seq; // the centre is not ahead: push from its head
			if (head->seq < acked)
				return net_error(fmt::format(
					"the centre holds this terminal's chain only through {}, and differently "
					"from this ledger, which it acknowledged through {}: is this data dir the "
					"terminal's?",
					head->seq, acked));
			if (head->seq - acked > recover_entries_max)
				return net_error(fmt::format("the centre holds {} entries of this terminal past the "
							     "acknowledged {}, more than the {} a recovery takes",
							     head->seq - acked, acked, recover_entries_max));
		} else if (page->head.seq != head->seq || page->head.hash != head->hash) {
			return net_error("the centre's copy of this terminal's chain moved during the recovery");
		}
		if (page->entries.empty())
			return net_error(fmt::format("the centre sent no entry after {} (its head: {})", after,
						     head->seq));
		std::vector<Terminal::Pending> staged;
		for (auto &e : page->entries) {
			if (e.seq != after + 1 || e.seq > head->seq)
				return net_error(fmt::format("the centre sent entry {} after {} (its head: {})", e.seq,
							     after, head->seq));
			after = e.seq;
			if (!fork) {
				auto mine = t.entry_hash(e.seq);
				if (!mine)
					return mine.status();
				if (*mine == e.hash)
					continue; // held here as the centre holds it
				auto before = t.entry_hash(e.seq - 1);
				if (!before)
					return before.status();
				prev = *before;
			}
			// Each staged entry is the centre's continuation of this chain.
			const EntryLinks links = links_of(e.body);
			if (crypto::to_hex(crypto::sha256(e.body)) != e.hash || links.prev != prev)
				return net_error(fmt::format("the centre's entry {} of this terminal does not continue "
							     "its hash chain",
							     e.seq));
			prev = e.hash;
			if (!fork) {
				fork = e.seq;
				LOY_TRY(t.put_anchor(*head));
				if (progress)
					progress(fmt::format("this ledger is behind the centre from entry {} (the centre "
							     "holds it through {}): taking its entries back",
							     *fork, head->seq));
			}
			if (links.program)
				programs.insert(*links.program);
			staged.push_back(std::move(e));
		}
		if (!staged.empty())
			LOY_TRY(t.stage_recovery(staged, *fork == staged.front().seq));
		if (after == head->seq)
			break;
		if (!page->more)
			return net_error(fmt::format("the centre's entries end at {}, before its head {}", after,
						     head->seq));
	}
	if (!fork)
		return net_error(fmt::format("the centre's entries through its head {} are all held here, yet the "
					     "head is not",
					     head->seq));
	if (prev != head->hash)
		return net_error(fmt::format("the centre's entries do not end in its head {}", head->seq));
	// Versions of the program the entries name and this ledger lost, for
	// refunds of their receipts. One the centre never had (loaded at the
	// terminal alone) is lost with the ledger: refunds of its receipts then
	// name it.
	for (const auto &[id, version] : programs) {
		auto held = t.has_program_version(id, version);
		if (!held)
			return held.status();
		if (*held)
			continue;
		auto answer = call(s, ep, "GET", fmt::format("/v1/program?id={}&version={}", id, version), "", nullptr,
				   busy_ms);
		if (!answer)
			return answer.status();
		if (answer->contains("program") && !(*answer)["program"].is_null()) {
			const Json &doc = (*answer)["program"];
			LOY_TRY(t.keep_program_version(doc.is_string() ? doc.get<std::string>() : doc.dump(), clock()));
		}
	}
	auto r = t.recover(*fork, *head, clock());
	if (!r)
		return r.status();
	recovery = *r;
	if (progress)
		progress(fmt::format("took back entries {} to {} from the centre; recorded {} entries again after "
				     "them, {} left out",
				     *fork, head->seq, r->rebased, r->dropped));
	return head->seq;
}

} // namespace

// A push's body, version 1: one JSON document, each entry's text a string
// in it (sync/PROTOCOL.md).
std::string push_v1(const Terminal::SyncSettings &settings, const std::vector<Terminal::Pending> &batch,
		    int64_t now)
{
	Json entries = Json::array();
	for (const auto &e : batch)
		entries.push_back(Json{{"seq", e.seq}, {"hash", e.hash}, {"body", e.body}});
	return Json{{"terminal", settings.terminal_id},
		    {"store", settings.store},
		    {"ledger", settings.ledger_id},
		    {"device_time", format_timestamp(Timestamp{now, 0})},
		    {"entries", entries}}
		.dump();
}

// Version 2: the envelope on a line, then "SEQ HASH BODY" a line, the body
// as it was hashed (canonical JSON never holds a raw newline).
std::string push_v2(const Terminal::SyncSettings &settings, const std::vector<Terminal::Pending> &batch,
		    int64_t now)
{
	std::string out = Json{{"terminal", settings.terminal_id},
			       {"store", settings.store},
			       {"ledger", settings.ledger_id},
			       {"device_time", format_timestamp(Timestamp{now, 0})},
			       {"entries", batch.size()}}
				  .dump();
	out.push_back('\n');
	for (const auto &e : batch) {
		out += std::to_string(e.seq);
		out.push_back(' ');
		out += e.hash;
		out.push_back(' ');
		out += e.body;
		out.push_back('\n');
	}
	return out;
}

Result<SyncReport> sync_terminal(Terminal &t, const std::function<int64_t()> &clock, const Timeouts &timeouts,
				 const std::function<void(const std::string &)> &progress, int64_t *busy_ms)
{
	int64_t busy_unused = 0;
	if (!busy_ms)
		busy_ms = &busy_unused;
	*busy_ms = 0;
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
	// Each answer says where the centre's copy of the chain stands; a
	// ledger behind it is brought level first (reconcile).
	int64_t acked = settings->acked_through;
	int64_t centre_head = acked; // as far as this sync knows
	int64_t pushed = 0;
	Terminal::Recovery recovery;
	bool reconciled = false;
	bool v2 = true, again = false;
	for (bool first = true;; first = false) {
		if (timeouts.cancel && timeouts.cancel->load())
			return net_error("cancelled: the terminal is stopping");
		auto batch = t.unacked(acked, push_batch_entries);
		if (!batch)
			return batch.status();
		if (batch->empty() && !first && !again)
			break;
		again = false;
		// Version 2 carries each body on a line: one with a raw newline
		// (none the terminal writes) goes in version 1.
		const bool lean = v2 && std::none_of(batch->begin(), batch->end(), [](const Terminal::Pending &e) {
			return e.body.find('\n') != std::string::npos;
		});
		int http = 0;
		auto answer = lean ? call(s, *ep, "POST", "/v2/push", push_v2(*settings, *batch, clock()), &http,
					  busy_ms, Encoding::batch)
				   : call(s, *ep, "POST", "/v1/push", push_v1(*settings, *batch, clock()), &http,
					  busy_ms);
		// A centre from before protocol 2 knows no /v2/push: this sync
		// goes on in version 1, this batch again.
		if (!answer && lean && http == 404) {
			v2 = false;
			again = true;
			continue;
		}
		std::optional<Terminal::ChainHead> head;
		if (answer) {
			auto h = read_head(*answer, "push");
			if (!h)
				return h.status();
			head = *h;
		} else if (http != 409 || reconciled) {
			return answer.status();
		}
		bool level = false;
		if (head) {
			auto l = level_with(t, *head);
			if (!l)
				return l.status();
			level = *l;
		}
		if (!reconciled && (!level || head->seq < acked)) {
			// A refused batch (409), a head this ledger does not hold, or
			// a centre behind what it acknowledged (put back from a
			// backup: it gets the entries it lacks again).
			auto from = level && head->seq < acked
					    ? Result<int64_t>(head->seq)
					    : reconcile(s, *ep, t, *settings, clock, progress, timeouts, recovery,
							busy_ms);
			if (!from)
				return from.status();
			acked = centre_head = *from;
			reconciled = true;
			continue;
		}
		if (!level)
			return net_error(fmt::format("the centre's copy of this terminal's chain (through {}) still "
						     "differs from this ledger after taking it back",
						     head->seq));
		if (batch->empty())
			break;
		if (head->seq < batch->back().seq)
			return net_error(fmt::format("the server acknowledged {} of a batch ending at {}", head->seq,
						     batch->back().seq));
		// Entries of this batch the centre did not hold before it.
		pushed += head->seq - std::max(centre_head, batch->front().seq - 1);
		acked = centre_head = head->seq;
		if (progress)
			progress(fmt::format("pushed through entry {}", acked));
	}

	// Pull the program, then the members changed since the last watermark.
	std::optional<std::string> program;
	{
		auto answer = call(s, *ep, "GET",
				   fmt::format("/v1/program?id={}&after={}", settings->program_id,
					       settings->program_version),
				   "", nullptr, busy_ms);
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
				   fmt::format("/v1/members?after={}&limit={}", watermark, pull_page_members), "",
				   nullptr, busy_ms);
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

	LOY_TRY(t.record_sync(std::max(acked, settings->acked_through), members, watermark, program, clock()));
	// The anchor outside the database: a ledger that later loses what the
	// centre now holds (an old copy put back, a lost WAL) is found offline.
	auto acked_hash = t.entry_hash(acked);
	if (!acked_hash)
		return acked_hash.status();
	LOY_TRY(t.put_anchor(Terminal::ChainHead{acked, *acked_hash}));
	auto after = t.sync_settings();
	if (!after)
		return after.status();
	SyncReport r;
	r.recovered = recovery.recovered;
	r.rebased = recovery.rebased;
	r.dropped = recovery.dropped;
	r.pushed = pushed;
	r.acked_through = acked;
	r.members = static_cast<int64_t>(members.size());
	r.program_version = after->program_version;
	return r;
}

} // namespace loy::net
