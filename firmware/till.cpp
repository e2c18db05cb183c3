#include "firmware/till.hpp"

#include <loyalty/loyalty.h>
#include <loyalty/schedule.h>

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/json_reader.hpp"
#include "base/timeutil.hpp"
#include "base/utf8.hpp"
#include "firmware/pos.hpp"
#include "firmware/slip.hpp"

namespace loy::fw {

namespace {

using Json = nlohmann::json;

// The longest a thread blocks before it looks at the stop flag again.
constexpr int poll_ms = 200;

// A reader or link that failed is asked again after this: long enough not
// to spin on a device that is gone, short enough to catch a USB reset.
constexpr int device_retry_ms = 1000;

// Sleeps `ms`, or less when `stop` is set meanwhile.
void pause(const std::atomic<bool> &stop, int ms)
{
	for (int slept = 0; slept < ms && !stop.load(); slept += poll_ms)
		std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
}

const char *kind_name(loy_kind k)
{
	switch (k) {
	case LOY_KIND_OK: return "ok";
	case LOY_KIND_BAD_INPUT: return "bad_input";
	case LOY_KIND_DECLINED: return "declined";
	case LOY_KIND_STORAGE: return "storage";
	case LOY_KIND_NETWORK: return "network";
	case LOY_KIND_OTHER: break;
	}
	return "other";
}

Json error_json(loy_status st, const std::string &message)
{
	loy_kind k = loy_status_kind(st);
	return Json{{"code", loy_errstr(st)}, {"kind", kind_name(k)}, {"exit", static_cast<int>(k)},
		    {"message", message}};
}

Json failure(loy_status st, const std::string &message) { return Json{{"ok", false}, {"error", error_json(st, message)}}; }

Json bad_request(const std::string &message) { return failure(LOY_E_BAD_ARGUMENT, message); }

// A JSON line out: text that is not UTF-8 (a device's garbage in a message)
// is replaced, never thrown on.
std::string line_of(const Json &j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// A JSON integer that fits int64_t: 2^63 and past are not (get<int64_t>
// would wrap them negative).
std::optional<int64_t> int64_of(const Json &v)
{
	if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX))
		return std::nullopt;
	return v.get<int64_t>();
}

// A string the library takes as C text: a NUL inside would cut it there
// (a scan "6280001234567895\u0000junk" read as the card before the NUL).
bool c_text(const Json &v) { return v.is_string() && v.get_ref<const std::string &>().find('\0') == std::string::npos; }

// A field for a log line, whatever its type.
std::string field(const Json &j, const char *key)
{
	auto it = j.find(key);
	if (it == j.end() || it->is_null())
		return "-";
	return it->is_string() ? it->get<std::string>() : line_of(*it);
}

// A terminal handle that frees itself.
struct Handle {
	loy_terminal *t = nullptr;
	~Handle() { loy_terminal_free(t); }
	Handle() { (void)loy_terminal_new(&t); } // NULL without memory: every call then fails
	Handle(const Handle &) = delete;
	Handle &operator=(const Handle &) = delete;
	Json result() const { return Json::parse(loy_terminal_result_json(t), nullptr, false); }
	Json answer(loy_status st) const
	{
		if (st != LOY_OK)
			return failure(st, loy_terminal_errmsg(t));
		return Json{{"ok", true}, {"result", result()}};
	}
};

// Messages from the reader, link and sync threads to the loop, with an
// eventfd that wakes the loop's poll.
struct Inbox {
	struct Message {
		std::string type;
		Json data;
	};
	std::mutex mu;
	std::deque<Message> q;
	int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	~Inbox()
	{
		if (fd >= 0)
			::close(fd);
	}
	void push(std::string type, Json data)
	{
		{
			std::lock_guard<std::mutex> lk(mu);
			q.push_back({std::move(type), std::move(data)});
		}
		uint64_t one = 1;
		(void)!::write(fd, &one, sizeof one);
	}
	std::deque<Message> drain()
	{
		uint64_t n;
		(void)!::read(fd, &n, sizeof n);
		std::lock_guard<std::mutex> lk(mu);
		std::deque<Message> out;
		out.swap(q);
		return out;
	}
};

// This terminal's minute of the nightly sync: `nightly_minute`, moved by a
// fixed share of the spread that its id picks (FNV-1a), so that a chain's
// terminals arrive over the window, each at the same time every night.
int nightly_minute_of(const SyncConfig &c, const std::string &terminal_id)
{
	const int64_t spread_min = c.nightly_spread_ms / 60'000;
	const int nightly = c.schedule.nightly_minute;
	if (nightly < 0 || spread_min <= 0)
		return nightly;
	uint64_t h = 0xcbf29ce484222325u;
	for (char ch : terminal_id) {
		h ^= static_cast<unsigned char>(ch);
		h *= 0x100000001b3u;
	}
	const int64_t offset = static_cast<int64_t>(h % static_cast<uint64_t>(spread_min));
	return static_cast<int>((nightly + offset) % (24 * 60));
}

// The library's schedule, its own handle freed with it.
struct ScheduleFree {
	void operator()(loy_schedule *s) const { loy_schedule_free(s); }
};
using Schedule = std::unique_ptr<loy_schedule, ScheduleFree>;

// A schedule of `c` for this terminal (its minute of the spread), or the
// library's refusal of the configuration.
Result<Schedule> schedule_of(const SyncConfig &c, const std::string &terminal_id, uint64_t seed)
{
	loy_schedule *raw = nullptr;
	if (loy_schedule_new(&raw) != LOY_OK)
		return Status(Code::internal, "till: out of memory");
	Schedule s(raw);
	loy_schedule_config sc = c.schedule;
	sc.nightly_minute = nightly_minute_of(c, terminal_id);
	if (loy_status st = loy_schedule_configure(s.get(), &sc, seed); st != LOY_OK)
		return Status(static_cast<Code>(st), loy_schedule_errmsg(s.get()));
	return s;
}

} // namespace

struct Till::Impl {
	Impl(std::string d, TerminalConfig c, const loy_hal *h, SimControls s)
		: dir(std::move(d)), cfg(std::move(c)), hal(h), sim(s)
	{
	}
	~Impl()
	{
		if (lock_fd >= 0)
			::close(lock_fd);
	}
	Impl(const Impl &) = delete;
	Impl &operator=(const Impl &) = delete;

	std::string dir;
	int lock_fd = -1; // DATA_DIR/till.lock, held while the till runs
	TerminalConfig cfg;
	const loy_hal *hal;
	SimControls sim;

	Handle main;  // the loop's
	Handle syncs; // the syncer's
	PosChannel pos;
	Inbox inbox;

	std::string server, terminal_id;
	int64_t last_sync_ms = 0;
	std::string card; // scanned, waiting for its basket
	bool reader_gone = false;

	// Shared with the syncer, under mu.
	std::mutex mu;
	std::condition_variable cv;
	std::deque<std::pair<bool, int64_t>> link_changes; // up, and the monotonic time it was seen
	bool link_up = true;
	int sync_requests = 0;
	Json sync_state = Json{{"running", false}, {"reason", "none"}, {"failures", 0}, {"syncs", 0}, {"last", nullptr}};

	int64_t wall_ms() const { return loy_hal_wall_ms(hal->clock); }
	int64_t mono_ms() const { return loy_hal_monotonic_ms(hal->clock); }
	// The terminal's UTC offset at `wall`: its zone, or the system's (the
	// library's, callable from any thread).
	int32_t offset_s(int64_t wall) const
	{
		int32_t offset = 0;
		if (loy_terminal_utc_offset(main.t, wall / 1000, &offset) != LOY_OK)
			return 0;
		return offset;
	}
	std::string now_text() const
	{
		const int64_t w = wall_ms();
		Timestamp t;
		t.utc_s = w >= 0 ? w / 1000 : -((-w + 999) / 1000);
		t.offset_s = offset_s(w);
		return format_timestamp(t);
	}
	void log(const std::string &line) const
	{
		std::fprintf(stderr, "%s loyalty-terminal: %s\n", now_text().c_str(), line.c_str());
		std::fflush(stderr);
	}

	Status open();
	void run(const std::atomic<bool> &stop);

	// Runs `f`; an exception is logged, not let out of a thread: a till
	// that stops on one bad request or event stops every sale after it.
	template <class F> bool guard(const char *what, F &&f) noexcept
	{
		try {
			f();
			return true;
		} catch (const std::exception &e) {
			log(fmt::format("{}: {}", what, e.what()));
		} catch (...) {
			log(fmt::format("{}: unknown exception", what));
		}
		return false;
	}

	// The loop.
	void on_line(int client, const std::string &line);
	// `guarded`: an exception inside becomes an internal-error answer.
	Json answer(const std::string &line, bool guarded);
	Json request(const Json &req);
	Json scan(const std::string &text);
	Json checkout(const Json &req, const std::string &scan);
	Json refund(const Json &req);
	Json donate(const Json &req, const std::string &scan);
	Json status();
	Json simulate(const std::string &op, const Json &req);
	Json print(const std::vector<std::string> &lines);
	void on_message(const Inbox::Message &m);

	// The other threads.
	void reader_loop(const std::atomic<bool> &stop);
	void link_loop(const std::atomic<bool> &stop);
	void sync_loop(const std::atomic<bool> &stop);
};

Status Till::Impl::open()
{
	if (!main.t || !syncs.t || inbox.fd < 0)
		return Status(Code::internal, "till: out of memory or file descriptors");
	// One till per data dir, whatever socket each is told to use: two would
	// each scan, print and sync for the same terminal. The kernel lets the
	// lock go when the process ends, even by kill -9.
	const std::string lock_path = dir + "/till.lock";
	lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock_fd < 0)
		return Status(Code::storage, fmt::format("till: cannot open {}: {}", lock_path, std::strerror(errno)));
	if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0)
		return Status(errno == EWOULDBLOCK ? Code::bad_argument : Code::storage,
			      fmt::format("till: another till runs on the data dir {} ({} is held): {}", dir, lock_path,
					  std::strerror(errno)));
	// The file's own checks are wider than the scheduler's (a week for any
	// duration): refuse here what the scheduler would clamp.
	if (auto sched = schedule_of(cfg.sync, "", 0); !sched)
		return sched.status().prefixed("configuration [sync]: ");
	for (Handle *h : {&main, &syncs})
		if (loy_status st = loy_terminal_open_hal(h->t, dir.c_str(), hal); st != LOY_OK)
			return Status(static_cast<Code>(st), loy_terminal_errmsg(h->t));
	loy_terminal_set_sync_timeouts(syncs.t, static_cast<int>(cfg.sync.connect_timeout_ms),
				       static_cast<int>(cfg.sync.io_timeout_ms));
	if (loy_status st = loy_terminal_status(main.t); st != LOY_OK)
		return Status(static_cast<Code>(st), loy_terminal_errmsg(main.t));
	Json s = main.result();
	terminal_id = s["terminal_id"].is_string() ? s["terminal_id"].get<std::string>() : "";
	const int nightly = nightly_minute_of(cfg.sync, terminal_id);
	sync_state["nightly"] = nightly < 0 ? Json("off") : Json(fmt::format("{:02d}:{:02d}", nightly / 60, nightly % 60));
	server = s["server"].is_string() ? s["server"].get<std::string>() : "";
	if (s["last_sync"].is_string())
		if (auto t = parse_timestamp(s["last_sync"].get<std::string>()))
			last_sync_ms = t->utc_s * 1000;
	if (hal->link) {
		int up = hal->link->is_up(hal->link->ctx);
		link_up = up != 0; // a link that cannot say is tried
	}
	return pos.listen(cfg.pos.socket, static_cast<mode_t>(cfg.pos.mode));
}

void Till::Impl::run(const std::atomic<bool> &stop)
{
	log(fmt::format("till open: POS channel {}, reader {}, printer {}, sync {}", pos.path(),
			type_name(cfg.reader.type), type_name(cfg.printer.type),
			server.empty() ? std::string("off (no server)") : server));
	std::vector<std::thread> threads;
	if (hal->reader)
		threads.emplace_back([&] { guard("reader", [&] { reader_loop(stop); }); });
	if (hal->link)
		threads.emplace_back([&] { guard("link", [&] { link_loop(stop); }); });
	if (!server.empty())
		threads.emplace_back([&] { guard("sync", [&] { sync_loop(stop); }); });

	while (!stop.load()) {
		pos.poll_once(poll_ms, inbox.fd, [&](int client, const std::string &line) { on_line(client, line); });
		for (const auto &m : inbox.drain())
			guard("event", [&] { on_message(m); });
	}
	// A sync waiting on the network gives up within 200 ms.
	loy_terminal_cancel_sync(syncs.t, 1);
	cv.notify_all();
	for (auto &t : threads)
		t.join();
	for (const auto &m : inbox.drain())
		guard("event", [&] { on_message(m); });
	log("till closed");
}

void Till::Impl::on_line(int client, const std::string &line) { pos.send(client, line_of(answer(line, true))); }

Json Till::Impl::answer(const std::string &line, bool guarded)
{
	// The library's parser: it refuses text nested deeper than any request
	// (copying or printing it would recurse as deep as it nests).
	auto parsed = json_parse(line, Code::bad_json, "request");
	Json req, out;
	if (!parsed)
		out = failure(LOY_E_BAD_JSON, parsed.status().message());
	else if (req = std::move(parsed).value(); !req.is_object())
		out = failure(LOY_E_BAD_JSON, "request: not a JSON object on one line");
	else if (!guarded)
		out = request(req);
	else if (!guard("request", [&] { out = request(req); }))
		out = failure(LOY_E_INTERNAL, "request: failed inside the till (see its log); nothing was recorded "
					      "unless status says so");
	if (req.is_object() && req.contains("id"))
		out["id"] = req["id"];
	return out;
}

Json Till::Impl::request(const Json &req)
{
	auto op_it = req.find("op");
	if (op_it == req.end() || !op_it->is_string())
		return bad_request("request: \"op\" (a string) is missing");
	const std::string op = *op_it;
	// "scan" when given must be the reader's text: a number or null is a
	// mistake, not a reason to use the card scanned before.
	auto scan_of = [&](std::string &to) -> bool {
		auto it = req.find("scan");
		if (it != req.end())
			to = c_text(*it) ? it->get<std::string>() : std::string();
		else
			to = card;
		return !to.empty();
	};
	if (op == "scan") {
		auto it = req.find("scan");
		if (it == req.end() || !c_text(*it))
			return bad_request("scan: \"scan\" (the reader's text, without NUL) is missing");
		return scan(*it);
	}
	if (op == "checkout") {
		std::string s;
		if (!scan_of(s))
			return bad_request("checkout: no card: scan one or send \"scan\" (the reader's text)");
		return checkout(req, s);
	}
	if (op == "refund")
		return refund(req);
	if (op == "donate") {
		std::string s;
		if (!scan_of(s))
			return bad_request("donate: no card: scan one or send \"scan\" (the reader's text)");
		return donate(req, s);
	}
	if (op == "enroll" || op == "balance") {
		std::string s;
		if (!scan_of(s))
			return bad_request(op + ": no card: scan one or send \"scan\" (the reader's text)");
		// An enrolment may name who referred the card (POS.md: "referrer").
		const auto referrer = req.find("referrer");
		if (op == "enroll" && referrer != req.end()) {
			if (!referrer->is_string())
				return bad_request("enroll: \"referrer\" must be the referrer's card scan (a string)");
			return main.answer(loy_terminal_enroll_referred(main.t, s.c_str(),
									referrer->get<std::string>().c_str()));
		}
		loy_status st = op == "enroll" ? loy_terminal_enroll(main.t, s.c_str())
					       : loy_terminal_balance(main.t, s.c_str());
		return main.answer(st);
	}
	if (op == "cancel") {
		card.clear();
		return Json{{"ok", true}, {"result", Json::object()}};
	}
	if (op == "status")
		return status();
	if (op == "sync") {
		if (server.empty())
			return bad_request("sync: this terminal has no server (init --server ...)");
		{
			std::lock_guard<std::mutex> lk(mu);
			sync_requests++;
		}
		cv.notify_all();
		return Json{{"ok", true}, {"result", {{"requested", true}}}};
	}
	if (op.rfind("sim.", 0) == 0)
		return simulate(op, req);
	return bad_request(fmt::format("request: unknown op \"{}\"", op));
}

// A card at the till: look the member up, show them, keep the card for the
// basket that follows.
Json Till::Impl::scan(const std::string &text)
{
	loy_status st = loy_terminal_balance(main.t, text.c_str());
	Json out = main.answer(st);
	if (st == LOY_OK) {
		card = text;
		out["printed"] = print(member_lines(out["result"], cfg.display.width));
	} else {
		// The card before it must not take this customer's basket.
		card.clear();
		print({fmt::format("Card not accepted: {}", loy_errstr(st))});
	}
	return out;
}

Json Till::Impl::checkout(const Json &req, const std::string &s)
{
	auto b = req.find("basket");
	std::string basket;
	if (b != req.end() && b->is_object())
		basket = line_of(*b);
	else if (b != req.end() && b->is_string())
		basket = *b;
	else
		return bad_request("checkout: \"basket\" (a basket object) is missing");
	loy_redemption r = LOY_INIT(loy_redemption);
	auto pts = req.find("redeem_points");
	auto reward = req.find("reward");
	auto stamp_card = req.find("stamp_card");
	if ((pts != req.end()) + (reward != req.end()) + (stamp_card != req.end()) > 1)
		return bad_request("checkout: \"redeem_points\", \"reward\" and \"stamp_card\" exclude each other");
	std::string reward_id;
	if (pts != req.end()) {
		auto points = int64_of(*pts);
		if (!points || *points <= 0)
			return bad_request("checkout: \"redeem_points\" must be a positive integer (64 bits)");
		r.kind = LOY_REDEEM_POINTS;
		r.points = *points;
	} else if (reward != req.end()) {
		if (!c_text(*reward) || reward->get<std::string>().empty())
			return bad_request("checkout: \"reward\" must be a reward id");
		reward_id = *reward;
		r.kind = LOY_REDEEM_REWARD;
		r.reward = reward_id.c_str();
	} else if (stamp_card != req.end()) {
		if (!c_text(*stamp_card) || stamp_card->get<std::string>().empty())
			return bad_request("checkout: \"stamp_card\" must be a stamp card id");
		reward_id = *stamp_card;
		r.kind = LOY_REDEEM_STAMP_CARD;
		r.reward = reward_id.c_str();
	}
	loy_status st = loy_terminal_checkout(main.t, s.c_str(), basket.data(), basket.size(), &r);
	Json out = main.answer(st);
	if (st == LOY_OK) {
		card.clear();
		out["printed"] = print(checkout_lines(out["result"], cfg.display.width));
	}
	return out;
}

Json Till::Impl::refund(const Json &req)
{
	auto id = req.find("receipt_id");
	if (id == req.end() || !c_text(*id))
		return bad_request("refund: \"receipt_id\" (a string without NUL) is missing");
	std::vector<std::string> skus;
	std::vector<loy_return_line> lines;
	if (auto l = req.find("lines"); l != req.end()) {
		if (!l->is_array() || l->empty())
			return bad_request("refund: \"lines\" must be a non-empty array of {\"sku\", \"qty\"} "
					   "(leave it out to return every unit left)");
		for (const auto &line : *l) {
			if (!line.is_object() || !line.contains("sku") || !c_text(line["sku"]) || !line.contains("qty") ||
			    !int64_of(line["qty"]))
				return bad_request("refund: each line needs \"sku\" (string) and \"qty\" (a 64-bit "
						   "integer)");
			skus.push_back(line["sku"]);
		}
		for (size_t i = 0; i < skus.size(); i++)
			lines.push_back({skus[i].c_str(), *int64_of((*l)[i]["qty"])});
	}
	std::string refund_id;
	if (auto r = req.find("refund_id"); r != req.end()) {
		if (!c_text(*r))
			return bad_request("refund: \"refund_id\" must be a string (the POS's id of the refund)");
		refund_id = *r;
	}
	const std::string rid = *id;
	loy_status st = loy_terminal_refund_keyed(main.t, rid.c_str(), refund_id.empty() ? nullptr : refund_id.c_str(),
						  lines.data(), lines.size());
	Json out = main.answer(st);
	if (st == LOY_OK) {
		auto lines_out = refund_lines(out["result"], cfg.display.width);
		if (out["result"].value("replayed", false))
			lines_out.push_back("(copy: this refund was recorded before)");
		out["printed"] = print(lines_out);
	}
	return out;
}

Json Till::Impl::donate(const Json &req, const std::string &s)
{
	auto charity = req.find("charity");
	if (charity == req.end() || !c_text(*charity) || charity->get<std::string>().empty())
		return bad_request("donate: \"charity\" (a charity id of the program) is missing");
	auto pts = req.find("points");
	auto points = pts == req.end() ? std::nullopt : int64_of(*pts);
	if (!points || *points <= 0)
		return bad_request("donate: \"points\" must be a positive integer (64 bits)");
	const std::string id = *charity;
	loy_status st = loy_terminal_donate(main.t, s.c_str(), id.c_str(), *points);
	Json out = main.answer(st);
	if (st == LOY_OK) {
		card.clear();
		out["printed"] = print(donation_lines(out["result"], cfg.display.width));
	}
	return out;
}

Json Till::Impl::status()
{
	loy_status st = loy_terminal_status(main.t);
	Json out = main.answer(st);
	if (st != LOY_OK)
		return out;
	Json till;
	till["now"] = now_text();
	till["card"] = card.empty() ? Json(nullptr) : Json(true);
	till["reader"] = !hal->reader ? "none" : reader_gone ? "gone" : "ok";
	{
		std::lock_guard<std::mutex> lk(mu);
		till["link_up"] = link_up;
		till["sync"] = server.empty() ? Json("off") : sync_state;
	}
	out["result"]["till"] = till;
	return out;
}

Json Till::Impl::simulate(const std::string &op, const Json &req)
{
	if (op == "sim.scan") {
		if (!sim.reader)
			return bad_request("sim.scan: the reader is not simulated ([reader] type = sim)");
		auto it = req.find("scan");
		if (it == req.end() || !it->is_string())
			return bad_request("sim.scan: \"scan\" is missing");
		sim.reader->push(*it);
		return Json{{"ok", true}, {"result", Json::object()}};
	}
	if (op == "sim.link") {
		if (!sim.link)
			return bad_request("sim.link: the link is not simulated ([link] type = sim)");
		auto it = req.find("up");
		if (it == req.end() || !it->is_boolean())
			return bad_request("sim.link: \"up\" (true or false) is missing");
		sim.link->set_up(*it);
		return Json{{"ok", true}, {"result", {{"up", it->get<bool>()}}}};
	}
	if (op == "sim.clock") {
		if (!sim.clock)
			return bad_request("sim.clock: the clock is not simulated ([clock] type = sim)");
		if (auto set = req.find("set"); set != req.end()) {
			auto t = set->is_string() ? parse_timestamp(set->get<std::string>())
						  : Result<Timestamp>(Status(Code::bad_argument, "not a string"));
			if (!t)
				return bad_request("sim.clock: \"set\" must be an RFC 3339 time with its offset");
			sim.clock->set_wall_ms(t->utc_s * 1000);
		} else if (auto adv = req.find("advance_ms"); adv != req.end()) {
			auto ms = int64_of(*adv);
			if (!ms || *ms < 0 || *ms > hal::sim::SimClock::step_ms_max)
				return bad_request("sim.clock: \"advance_ms\" must be 0 .. ten years");
			sim.clock->advance_ms(*ms);
		} else {
			return bad_request("sim.clock: give \"set\" (RFC 3339) or \"advance_ms\"");
		}
		cv.notify_all();
		return Json{{"ok", true}, {"result", {{"now", now_text()}}}};
	}
	return bad_request(fmt::format("request: unknown op \"{}\"", op));
}

// Prints a receipt. The checkout is recorded whatever the printer says: a
// printer out of paper is reported, never a reason to lose the sale.
Json Till::Impl::print(const std::vector<std::string> &lines)
{
	const loy_hal_printer *p = hal->printer;
	if (!p)
		return false;
	for (const auto &line : lines) {
		// The device's limit is in bytes; cut between characters.
		const std::string l = line.substr(0, utf8_prefix(line, LOY_HAL_LINE_MAX - 1));
		if (int rc = p->print_line(p->ctx, l.c_str()); rc < 0) {
			log(fmt::format("printer: {}", loy_hal_strerror(rc)));
			return false;
		}
	}
	if (int rc = p->flush(p->ctx); rc < 0) {
		log(fmt::format("printer: {}", loy_hal_strerror(rc)));
		return false;
	}
	return true;
}

void Till::Impl::on_message(const Inbox::Message &m)
{
	if (m.type == "scan") {
		Json out = scan(m.data.get<std::string>());
		out["event"] = "card";
		pos.broadcast(line_of(out));
	} else if (m.type == "reader") {
		reader_gone = m.data.value("gone", false);
		log(fmt::format("reader: {}", field(m.data, "error")));
		if (!reader_gone)
			print({"Card not read: please scan again"});
		pos.broadcast(line_of(Json{{"event", "reader"}, {"error", field(m.data, "error")}}));
	} else if (m.type == "link") {
		log(fmt::format("link {}", m.data.get<bool>() ? "up" : "down"));
		pos.broadcast(line_of(Json{{"event", "link"}, {"up", m.data}}));
	} else if (m.type == "sync") {
		Json ev = m.data;
		ev["event"] = "sync";
		if (ev["state"] == "started") {
			log(fmt::format("sync ({}) started", field(ev, "reason")));
		} else if (ev.value("ok", false)) {
			const Json &r = ev["result"];
			log(fmt::format("sync ({}) done: pushed {}, acknowledged through {}, {} members, program v{}",
					field(ev, "reason"), field(r, "pushed"), field(r, "acked_through"),
					field(r, "members"), field(r, "program_version")));
		} else {
			log(fmt::format("sync ({}) failed ({} in a row): {}", field(ev, "reason"),
					field(ev, "failures"), field(ev["error"], "message")));
		}
		pos.broadcast(line_of(ev));
	}
}

void Till::Impl::reader_loop(const std::atomic<bool> &stop)
{
	const loy_hal_card_reader *r = hal->reader;
	char buf[LOY_HAL_SCAN_MAX];
	while (!stop.load()) {
		int rc = r->read_scan(r->ctx, buf, sizeof buf, poll_ms);
		if (rc == 1) {
			inbox.push("scan", std::string(buf));
		} else if (rc == LOY_HAL_E_BAD_SCAN) {
			inbox.push("reader", Json{{"error", "unreadable scan"}, {"gone", false}});
		} else if (rc == LOY_HAL_E_GONE) {
			inbox.push("reader", Json{{"error", "the reader went away: restart the till to reopen it"},
						  {"gone", true}});
			return;
		} else if (rc < 0) {
			// A device error may pass (a USB reset): look again later.
			pause(stop, device_retry_ms);
		}
	}
}

void Till::Impl::link_loop(const std::atomic<bool> &stop)
{
	const loy_hal_link *l = hal->link;
	while (!stop.load()) {
		int rc = l->wait_change(l->ctx, poll_ms);
		if (rc < 0) {
			pause(stop, device_retry_ms);
			continue;
		}
		if (rc == 0)
			continue;
		int up = l->is_up(l->ctx);
		if (up < 0)
			continue;
		{
			std::lock_guard<std::mutex> lk(mu);
			if ((up == 1) == link_up && up == 0)
				continue; // down, and down again: nothing to do
			// Up and up again is a flap (or a spurious wake, which costs a
			// sync): connections made before it are broken, so it counts
			// as the link coming back.
			if (up == 1 && link_up)
				link_changes.emplace_back(false, mono_ms());
			link_up = up == 1;
			link_changes.emplace_back(link_up, mono_ms());
		}
		cv.notify_all();
		inbox.push("link", up == 1);
	}
}

void Till::Impl::sync_loop(const std::atomic<bool> &stop)
{
	// Terminals started at the same moment (a store's power coming back)
	// must not retry in step: the seed differs by terminal and start.
	const uint64_t seed = static_cast<uint64_t>(wall_ms()) * uint64_t{0x9E3779B97F4A7C15} ^
			      static_cast<uint64_t>(std::hash<std::string>{}(dir)) ^ static_cast<uint64_t>(::getpid());
	auto made = schedule_of(cfg.sync, terminal_id, seed);
	if (!made) { // checked at open
		log(made.status().message());
		return;
	}
	loy_schedule *sched = made.value().get();
	std::unique_lock<std::mutex> lk(mu);
	int64_t w = wall_ms();
	loy_schedule_start(sched, mono_ms(), w, offset_s(w), link_up, last_sync_ms);
	while (!stop.load()) {
		for (const auto &[up, at] : link_changes)
			loy_schedule_link_changed(sched, up, at);
		link_changes.clear();
		for (; sync_requests > 0; sync_requests--)
			loy_schedule_request(sched, mono_ms());
		w = wall_ms();
		const int64_t m = mono_ms();
		if (loy_schedule_due(sched, m, w, offset_s(w))) {
			const std::string reason = loy_schedule_reason(sched);
			sync_state["running"] = true;
			sync_state["reason"] = reason;
			lk.unlock();
			inbox.push("sync", Json{{"state", "started"}, {"reason", reason}});
			// The sync runs on its own handle: the loop's checkouts go on.
			loy_status st = loy_terminal_sync(syncs.t, nullptr, nullptr);
			Json done = syncs.answer(st);
			lk.lock();
			w = wall_ms();
			loy_schedule_finished(sched, st == LOY_OK, mono_ms(), w);
			// A busy centre said when to come back (sync/PROTOCOL.md, "Busy").
			if (st != LOY_OK)
				loy_schedule_busy(sched, loy_terminal_retry_after_ms(syncs.t), mono_ms());
			done["state"] = "done";
			done["reason"] = reason;
			done["failures"] = loy_schedule_failures(sched);
			done["at"] = now_text();
			sync_state["running"] = false;
			sync_state["reason"] = loy_schedule_reason(sched); // the next one's
			sync_state["failures"] = loy_schedule_failures(sched);
			sync_state["syncs"] = sync_state["syncs"].get<int64_t>() + 1;
			sync_state["last"] = done;
			inbox.push("sync", done);
			continue;
		}
		sync_state["reason"] = loy_schedule_reason(sched);
		// The scheduler's wait is in the clock's time, which a simulated
		// clock runs faster than real time: look again often.
		int64_t wait = std::min<int64_t>(loy_schedule_wait_ms(sched, m, w, offset_s(w)), poll_ms);
		cv.wait_for(lk, std::chrono::milliseconds(std::max<int64_t>(wait, 1)));
	}
}

Till::Till(std::string data_dir, TerminalConfig config, const loy_hal *hal, SimControls sim)
	: impl_(new Impl(std::move(data_dir), std::move(config), hal, sim))
{
}

Till::~Till() = default;

Status Till::open() { return impl_->open(); }

void Till::run(const std::atomic<bool> &stop) { impl_->run(stop); }

std::string Till::answer(const std::string &line) { return line_of(impl_->answer(line, false)); }

} // namespace loy::fw
