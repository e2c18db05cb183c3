// The cashier loop (firmware/till.hpp) end to end through the simulators:
// a card scanned at the simulated reader, baskets and refunds from a POS
// client on the real Unix socket, receipt lines captured by the simulated
// printer, and the sync thread started by the link and by the nightly
// schedule under a simulated clock, against a real central server (TLS on
// loopback, in this process). A stalled server shows that a checkout is
// answered while a sync waits on the network.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/timeutil.hpp"
#include "firmware/pos.hpp"
#include "firmware/till.hpp"
#include "hal/sim/sim.hpp"
#include "storage/terminal.hpp"
#include "central/server.hpp"
#include "central/store.hpp"
#include "central/views.hpp"
#include "central/pki.hpp"
#include "support/tmpdir.hpp"

namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;
namespace sim = loy::hal::sim;

const char *const anna = "6280001234567895";
const char *const bela = "4539578763621486";

// Generous: under an emulator or a sanitizer a step takes far longer than
// on the machine itself. A test that waits this long has failed anyway.
constexpr auto patience = 60s;

std::string slurp(const std::string &path)
{
	std::ifstream in(path);
	std::stringstream ss;
	ss << in.rdbuf();
	return ss.str();
}

int64_t utc_ms(const char *rfc3339)
{
	auto t = loy::parse_timestamp(rfc3339);
	REQUIRE(t);
	return t->utc_s * 1000;
}

using test_support::TempDir;

// A central server on 127.0.0.1, in this process, with the example program
// published and Anna enrolled. Its clock stands still at `now`, whatever day
// the test runs on.
class Central {
public:
	Central(const std::string &dir, const std::string &pki, int64_t now) : now_(now)
	{
		std::filesystem::create_directories(dir);
		auto store = loy::central::open_store(dir);
		REQUIRE(store);
		REQUIRE(store.value()->token_key().is_ok());
		REQUIRE(store.value()->publish_program(slurp(LOYALTY_EXAMPLES "/programs/cafe-rewards.json"), now));
		REQUIRE(store.value()->enroll(anna, now));
		loy::central::ServeOptions o;
		o.data_dir = dir;
		o.host = "127.0.0.1";
		o.identity.cert_pem = slurp(pki + "/server.pem");
		o.identity.key_pem = slurp(pki + "/server.key");
		o.identity.client_ca_pem = slurp(pki + "/ca.pem");
		o.clock = [now] { return now; };
		thread_ = std::thread([this, o] {
			auto s = loy::central::serve(o, stop_, [this](uint16_t p, uint16_t) { port_ = p; });
			failed_ = !s.is_ok();
		});
		auto until = std::chrono::steady_clock::now() + patience;
		while (port_ == 0 && !failed_ && std::chrono::steady_clock::now() < until)
			std::this_thread::sleep_for(10ms);
		REQUIRE(port_ != 0);
	}
	~Central()
	{
		stop_ = true;
		thread_.join();
	}
	std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
	int64_t now() const { return now_; }

private:
	const int64_t now_;
	std::atomic<bool> stop_{false}, failed_{false};
	std::atomic<uint16_t> port_{0};
	std::thread thread_;
};

// A server that accepts connections and never says a word: a sync to it
// waits until its time-out.
class Mute {
public:
	Mute()
	{
		fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
		sockaddr_in a{};
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		REQUIRE(::bind(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
		REQUIRE(::listen(fd_, 8) == 0);
		socklen_t len = sizeof a;
		REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr *>(&a), &len) == 0);
		port_ = ntohs(a.sin_port);
	}
	~Mute() { ::close(fd_); }
	std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }

private:
	int fd_ = -1;
	uint16_t port_ = 0;
};

// The POS application: JSON lines on the till's socket.
class Pos {
public:
	explicit Pos(const std::string &path)
	{
		sockaddr_un a{};
		a.sun_family = AF_UNIX;
		REQUIRE(path.size() < sizeof a.sun_path);
		std::copy(path.begin(), path.end(), a.sun_path);
		auto until = std::chrono::steady_clock::now() + patience;
		for (;;) {
			fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
			if (::connect(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0)
				break;
			::close(fd_);
			REQUIRE(std::chrono::steady_clock::now() < until);
			std::this_thread::sleep_for(10ms);
		}
		timeval tv{1, 0};
		::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	}
	~Pos() { ::close(fd_); }

	// Bytes without the end of line: a request that never completes. The
	// till may have closed this client already (busy): no SIGPIPE then.
	void send_partial(const std::string &bytes) { (void)!::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL); }

	void send_line(const std::string &line)
	{
		std::string l = line + "\n";
		REQUIRE(::write(fd_, l.data(), l.size()) == static_cast<ssize_t>(l.size()));
	}

	// The answer to a request; events met on the way are kept.
	Json ask(Json req)
	{
		req["id"] = next_id_++;
		send_line(req.dump());
		auto until = std::chrono::steady_clock::now() + patience;
		for (;;) {
			for (size_t i = 0; i < events_.size(); i++) {
				if (events_[i].contains("id") && events_[i]["id"] == req["id"]) {
					Json a = events_[i];
					events_.erase(events_.begin() + static_cast<std::ptrdiff_t>(i));
					return a;
				}
			}
			REQUIRE(std::chrono::steady_clock::now() < until);
			read_some();
		}
	}

	// The next event of `kind` that `pred` accepts.
	template <class P> Json event(const std::string &kind, P pred)
	{
		auto until = std::chrono::steady_clock::now() + patience;
		for (;;) {
			for (size_t i = 0; i < events_.size(); i++) {
				if (events_[i].value("event", "") == kind && pred(events_[i])) {
					Json e = events_[i];
					events_.erase(events_.begin() + static_cast<std::ptrdiff_t>(i));
					return e;
				}
			}
			INFO("waiting for a " << kind << " event");
			REQUIRE(std::chrono::steady_clock::now() < until);
			read_some();
		}
	}
	Json event(const std::string &kind)
	{
		return event(kind, [](const Json &) { return true; });
	}

	// Sends every line, then shuts its side for writing (a POS that sends a
	// batch and hangs up), and reads answers until the till closes.
	std::vector<Json> batch_and_hang_up(const std::vector<std::string> &lines)
	{
		std::string all;
		for (const auto &l : lines)
			all += l + "\n";
		REQUIRE(::write(fd_, all.data(), all.size()) == static_cast<ssize_t>(all.size()));
		REQUIRE(::shutdown(fd_, SHUT_WR) == 0);
		std::vector<Json> answers;
		std::string in;
		auto until = std::chrono::steady_clock::now() + patience;
		for (;;) {
			char buf[65536];
			ssize_t n = ::read(fd_, buf, sizeof buf);
			if (n == 0)
				break;
			REQUIRE(std::chrono::steady_clock::now() < until);
			if (n < 0)
				continue;
			in.append(buf, static_cast<size_t>(n));
		}
		std::istringstream ls(in);
		for (std::string l; std::getline(ls, l);) {
			Json j = Json::parse(l);
			if (!j.contains("event"))
				answers.push_back(j);
		}
		return answers;
	}

	// Lines of the raw answer to a raw line (for requests that are not JSON).
	Json raw(const std::string &line)
	{
		send_line(line);
		auto until = std::chrono::steady_clock::now() + patience;
		for (;;) {
			for (size_t i = 0; i < events_.size(); i++)
				if (!events_[i].contains("event")) {
					Json a = events_[i];
					events_.erase(events_.begin() + static_cast<std::ptrdiff_t>(i));
					return a;
				}
			REQUIRE(std::chrono::steady_clock::now() < until);
			read_some();
		}
	}

private:
	void read_some()
	{
		char buf[65536];
		ssize_t n = ::read(fd_, buf, sizeof buf);
		if (n <= 0)
			return; // the receive time-out: look again
		in_.append(buf, static_cast<size_t>(n));
		for (size_t nl; (nl = in_.find('\n')) != std::string::npos;) {
			events_.push_back(Json::parse(in_.substr(0, nl)));
			in_.erase(0, nl + 1);
		}
	}

	int fd_ = -1;
	int next_id_ = 1;
	std::string in_;
	std::vector<Json> events_;
};

// A terminal in a temporary dir on simulated devices, its till running on a
// thread of its own. The reader and the link run in real time (their waits
// sleep); the clock moves only when the test moves it.
struct Rig {
	TempDir tmp;
	sim::SimClock clock{utc_ms("2026-11-23T08:00:00+01:00")};
	sim::SimCardReader reader;
	sim::SimLink link{nullptr, true};
	sim::SimKeyStore keys;
	sim::SimPrinter printer;
	loy_hal hal{LOY_HAL_VERSION, clock.table(), reader.table(), link.table(), keys.table(), printer.table()};
	std::string data = tmp.path() + "/T1";
	std::string pki = tmp.path() + "/pki";
	std::unique_ptr<Central> central;
	std::unique_ptr<loy::fw::Till> till;
	std::atomic<bool> stop{false};
	std::thread runner;

	// server: "" for none, "central" for a real one, else a URL.
	explicit Rig(const std::string &server, loy::fw::SyncConfig sync = {}, const std::string &tz = "+01:00")
	{
		const int64_t now = clock.wall_ms() / 1000;
		// Certificates are judged at the real time (mbedTLS's), whatever
		// day the simulated clock shows.
		REQUIRE(loy::net::make_test_pki(pki, {"T1"}, static_cast<int64_t>(std::time(nullptr))).is_ok());
		loy::TerminalSetup s;
		s.terminal_id = "T1";
		s.store = "S1";
		s.tz = tz;
		if (!server.empty()) {
			if (server == "central") {
				central = std::make_unique<Central>(tmp.path() + "/central", pki, now);
				s.server = central->url();
				s.token_key = tmp.path() + "/central/token.key";
			} else {
				s.server = server;
			}
			s.ca = pki + "/ca.pem";
			s.cert = pki + "/T1.pem";
			s.key = pki + "/T1.key";
		}
		auto st = loy::Terminal::init(data, s, now, keys.table());
		INFO(st.message());
		REQUIRE(st.is_ok());
		if (server.empty()) {
			auto t = loy::Terminal::open(data, keys.table());
			REQUIRE(t);
			REQUIRE(t.value()->program_load(slurp(LOYALTY_EXAMPLES "/programs/cafe-rewards.json"), now));
		}
		loy::fw::TerminalConfig cfg;
		cfg.pos.socket = tmp.path() + "/pos.sock";
		cfg.sync = sync;
		cfg.display.width = 32;
		loy::fw::SimControls controls{&clock, &reader, &link, 1};
		till = std::make_unique<loy::fw::Till>(data, cfg, &hal, controls);
		auto opened = till->open();
		INFO(opened.message());
		REQUIRE(opened.is_ok());
		runner = std::thread([this] { till->run(stop); });
	}
	~Rig()
	{
		stop = true;
		runner.join();
	}
	std::string socket() const { return tmp.path() + "/pos.sock"; }
};

Json basket(const std::string &id, const std::string &at)
{
	return Json{{"receipt_id", id},
		    {"at", at},
		    {"lines",
		     {{{"sku", "COF-01"}, {"category", "coffee"}, {"qty", 2}, {"unit_price", 350}, {"discount", 0}},
		      {{"sku", "CRS-02"}, {"category", "pastry"}, {"qty", 3}, {"unit_price", 250}, {"discount", 50}},
		      {{"sku", "BNS-1KG"}, {"category", "grocery"}, {"qty", 6}, {"unit_price", 1890}, {"discount", 0}}}}};
}

bool contains_line(const std::vector<std::string> &lines, const std::string &start, const std::string &end)
{
	for (const auto &l : lines)
		if (l.rfind(start, 0) == 0 && l.size() >= end.size() && l.compare(l.size() - end.size(), end.size(), end) == 0)
			return true;
	return false;
}

} // namespace

TEST_CASE("a scan at the reader shows the member; the POS basket is recorded and its receipt printed")
{
	Rig rig("");
	Pos pos(rig.socket());
	REQUIRE(pos.ask({{"op", "enroll"}, {"scan", anna}})["ok"] == true);

	rig.reader.push(std::string(";") + anna + "=2812?");
	Json card = pos.event("card");
	INFO(card.dump());
	REQUIRE(card["ok"] == true);
	CHECK(card["result"]["card"] == "****7895");
	CHECK(card["result"]["known"] == true);
	CHECK(card["printed"] == true);
	auto shown = rig.printer.receipts().back();
	CHECK(contains_line(shown, "Loyalty ****7895", "Member"));
	CHECK(contains_line(shown, "Balance", "0 pts"));
	CHECK(contains_line(shown, "Redeemable today", "0 pts"));

	// The basket goes to the card just scanned.
	Json a = pos.ask({{"op", "checkout"}, {"basket", basket("R1", "2026-11-23T09:00:00+01:00")}});
	INFO(a.dump());
	REQUIRE(a["ok"] == true);
	const Json &r = a["result"];
	CHECK(r["card"] == "****7895");
	const int64_t earned = r["earned"];
	CHECK(earned > 0);
	CHECK(r["balance"] == earned);
	auto receipt = rig.printer.receipts().back();
	REQUIRE(receipt.size() >= 6);
	CHECK(contains_line(receipt, "Receipt", "R1"));
	CHECK(contains_line(receipt, "Earned", "+" + std::to_string(earned) + " pts"));
	int64_t parts = 0;
	for (const auto &p : r["breakdown"]) {
		CHECK(contains_line(receipt, "  " + p["rule"].get<std::string>(), std::to_string(p["points"].get<int64_t>())));
		parts += p["points"].get<int64_t>();
	}
	CHECK(parts == earned);
	CHECK(contains_line(receipt, "New balance", std::to_string(earned) + " pts"));
	CHECK(contains_line(receipt, "Points expire", r["expires_on"].get<std::string>()));
	for (const auto &l : receipt)
		CHECK(l.size() <= 32);

	SECTION("the card is used once: the next basket needs a scan")
	{
		Json b = pos.ask({{"op", "checkout"}, {"basket", basket("R2", "2026-11-23T09:05:00+01:00")}});
		CHECK(b["ok"] == false);
		CHECK(b["error"]["code"] == "bad_argument");
		CHECK_THAT(b["error"]["message"].get<std::string>(), Catch::Contains("no card"));
	}
	SECTION("a redemption is printed with its discount; a decline is an answer, and prints nothing")
	{
		const size_t printed = rig.printer.receipts().size();
		Json d = pos.ask({{"op", "checkout"},
				  {"scan", anna},
				  {"basket", basket("R3", "2026-11-23T09:10:00+01:00")},
				  {"redeem_points", earned + 1}});
		CHECK(d["ok"] == false);
		CHECK(d["error"]["kind"] == "declined");
		CHECK(d["error"]["exit"] == 3);
		CHECK(rig.printer.receipts().size() == printed);
		Json ok = pos.ask({{"op", "checkout"},
				   {"scan", anna},
				   {"basket", basket("R3", "2026-11-23T09:10:00+01:00")},
				   {"redeem_points", 100}});
		INFO(ok.dump());
		REQUIRE(ok["ok"] == true);
		CHECK(ok["result"]["redeemed"] == 100);
		auto rr = rig.printer.receipts().back();
		CHECK(contains_line(rr, "Redeemed", "-100 pts"));
		CHECK(contains_line(rr, "Discount", "1.00"));
	}
	SECTION("a refund through the POS takes the points back and prints it")
	{
		Json f = pos.ask({{"op", "refund"}, {"receipt_id", "R1"}});
		INFO(f.dump());
		REQUIRE(f["ok"] == true);
		CHECK(f["result"]["points_reversed"] == earned);
		auto rr = rig.printer.receipts().back();
		CHECK(contains_line(rr, "Refund of", "R1"));
		CHECK(contains_line(rr, "Points taken back", "-" + std::to_string(earned) + " pts"));
		CHECK(contains_line(rr, "New balance", "0 pts"));
		Json again = pos.ask({{"op", "refund"}, {"receipt_id", "R1"}});
		CHECK(again["ok"] == false);
		CHECK(again["error"]["kind"] == "declined");
	}
	SECTION("a retried checkout is a replay, printed as a copy, counted once")
	{
		Json b = pos.ask({{"op", "checkout"}, {"scan", anna}, {"basket", basket("R1", "2026-11-23T09:00:00+01:00")}});
		REQUIRE(b["ok"] == true);
		CHECK(b["result"]["replayed"] == true);
		CHECK(b["result"]["balance"] == earned);
		CHECK(rig.printer.receipts().back().back() == "(copy: this receipt was recorded before)");
	}
}

TEST_CASE("the POS channel names every bad request and goes on")
{
	Rig rig("");
	Pos pos(rig.socket());
	Json a = pos.raw("this is not json");
	CHECK(a["ok"] == false);
	CHECK(a["error"]["code"] == "bad_json");
	a = pos.ask({{"nop", 1}});
	CHECK(a["error"]["message"] == "request: \"op\" (a string) is missing");
	a = pos.ask({{"op", "dance"}});
	CHECK(a["error"]["message"] == "request: unknown op \"dance\"");
	a = pos.ask({{"op", "checkout"}, {"scan", anna}});
	CHECK_THAT(a["error"]["message"].get<std::string>(), Catch::Contains("\"basket\""));
	a = pos.ask({{"op", "checkout"}, {"scan", anna}, {"basket", basket("R1", "2026-11-23T09:00:00+01:00")},
		     {"redeem_points", 100}, {"reward", "free-coffee"}});
	CHECK_THAT(a["error"]["message"].get<std::string>(), Catch::Contains("exclude each other"));
	a = pos.ask({{"op", "checkout"}, {"scan", anna}, {"basket", basket("R1", "2026-11-23T09:00:00+01:00")},
		     {"stamp_card", "coffee-card"}, {"reward", "free-coffee"}});
	CHECK_THAT(a["error"]["message"].get<std::string>(), Catch::Contains("exclude each other"));
	a = pos.ask({{"op", "checkout"}, {"scan", anna}, {"basket", basket("R1", "2026-11-23T09:00:00+01:00")},
		     {"stamp_card", 5}});
	CHECK_THAT(a["error"]["message"].get<std::string>(), Catch::Contains("\"stamp_card\" must be"));
	a = pos.ask({{"op", "checkout"}, {"scan", anna}, {"basket", basket("R1", "2026-11-23T09:00:00+01:00")},
		     {"stamp_card", "coffee-card"}});
	CHECK(a["error"]["code"] == "unknown_stamp_card");
	CHECK(a["error"]["exit"] == 2);
	// Donations: the charity and the points named, the program's charities only.
	a = pos.ask({{"op", "donate"}, {"scan", anna}, {"points", 5}});
	CHECK_THAT(a["error"]["message"].get<std::string>(), Catch::Contains("\"charity\""));
	for (const Json &points : {Json(0), Json(-3), Json("5"), Json(1.5), Json(nullptr)}) {
		a = pos.ask({{"op", "donate"}, {"scan", anna}, {"charity", "red-cross"}, {"points", points}});
		CHECK_THAT(a["error"]["message"].get<std::string>(), Catch::Contains("\"points\" must be"));
	}
	a = pos.ask({{"op", "donate"}, {"scan", anna}, {"charity", "red-cross"}, {"points", 5}});
	CHECK(a["error"]["code"] == "unknown_charity");
	a = pos.ask({{"op", "checkout"}, {"scan", "1234"}, {"basket", basket("R1", "2026-11-23T09:00:00+01:00")}});
	CHECK(a["error"]["code"] == "bad_card");
	a = pos.ask({{"op", "refund"}, {"receipt_id", "NOPE"}});
	CHECK(a["error"]["code"] == "unknown_receipt");
	a = pos.ask({{"op", "sync"}});
	CHECK_THAT(a["error"]["message"].get<std::string>(), Catch::Contains("no server"));
	// An unreadable scan at the reader is reported, and the reader goes on.
	rig.reader.push_error(LOY_HAL_E_BAD_SCAN);
	CHECK(pos.event("reader")["error"] == "unreadable scan");
	rig.reader.push(bela);
	CHECK(pos.event("card")["result"]["card"] == "****1486");
	// Nothing above touched the ledger.
	Json st = pos.ask({{"op", "status"}});
	CHECK(st["result"]["entries"] == 0);
	CHECK(st["result"]["till"]["reader"] == "ok");
}

TEST_CASE("sync runs by itself: at start, when the link comes back, and at night")
{
	loy::fw::SyncConfig sync;
	sync.schedule.after_link_up_ms = 15'000;
	sync.schedule.jitter_pct = 0;
	sync.schedule.nightly_minute = 23 * 60 + 30;
	Rig rig("central", sync);
	Pos pos(rig.socket());
	auto done = [](const Json &e) { return e.value("state", "") == "done"; };
	auto syncs = [&] { return pos.ask({{"op", "status"}})["result"]["till"]["sync"]["syncs"].get<int>(); };
	auto wait_syncs = [&](int n) {
		auto until = std::chrono::steady_clock::now() + patience;
		while (syncs() < n) {
			REQUIRE(std::chrono::steady_clock::now() < until);
			std::this_thread::sleep_for(20ms);
		}
	};

	// A terminal that never synced does at once (the program comes with it).
	wait_syncs(1);
	CHECK(pos.event("sync", done)["reason"] == "nightly"); // a night missed: never synced
	Json st = pos.ask({{"op", "status"}})["result"];
	INFO(st.dump());
	CHECK(st["program"]["version"] == 7);
	CHECK(st["till"]["sync"]["last"]["ok"] == true);

	rig.reader.push(anna);
	REQUIRE(pos.event("card")["result"]["known"] == true);
	REQUIRE(pos.ask({{"op", "checkout"}, {"basket", basket("R1", "2026-11-23T10:00:00+01:00")}})["ok"] == true);

	// The link drops and comes back: a sync 15 s (of the clock) later.
	rig.link.drop();
	CHECK(pos.event("link")["up"] == false);
	rig.link.restore();
	CHECK(pos.event("link")["up"] == true);
	st = pos.ask({{"op", "status"}})["result"];
	CHECK(st["till"]["sync"]["syncs"] == 1);
	CHECK(st["unsynced"] == 1);
	rig.clock.advance_ms(15'000);
	Json e = pos.event("sync", done);
	INFO(e.dump());
	CHECK(e["reason"] == "link-up");
	REQUIRE(e["ok"] == true);
	CHECK(e["result"]["pushed"] == 1);
	CHECK(pos.ask({{"op", "status"}})["result"]["unsynced"] == 0);

	// The evening's sale goes at this terminal's minute of the night: 23:30
	// plus its own share of the 30-minute spread.
	REQUIRE(pos.ask({{"op", "checkout"}, {"scan", anna}, {"basket", basket("R2", "2026-11-23T20:00:00+01:00")}})["ok"] == true);
	st = pos.ask({{"op", "status"}})["result"];
	const std::string nightly = st["till"]["sync"]["nightly"];
	INFO("nightly " << nightly);
	REQUIRE(nightly.size() == 5);
	const int minute = std::stoi(nightly.substr(0, 2)) * 60 + std::stoi(nightly.substr(3, 2));
	CHECK(minute >= 23 * 60 + 30);
	CHECK(minute < 23 * 60 + 30 + 30);
	rig.clock.set_wall_ms(utc_ms("2026-11-23T00:00:00+01:00") + int64_t{minute - 1} * 60'000);
	st = pos.ask({{"op", "status"}})["result"];
	CHECK(st["till"]["sync"]["syncs"] == 2);
	rig.clock.advance_ms(61'000);
	e = pos.event("sync", done);
	CHECK(e["reason"] == "nightly");
	REQUIRE(e["ok"] == true);
	CHECK(e["result"]["pushed"] == 1);
	CHECK(e["at"].get<std::string>().rfind("2026-11-23T" + nightly, 0) == 0);
	// Once a night: a minute later, and after the syncer has looked again
	// (it looks every 200 ms), still three.
	rig.clock.advance_ms(60'000);
	std::this_thread::sleep_for(600ms);
	CHECK(syncs() == 3);

	// Clock trouble: the clock steps back an hour. The next entry keeps its
	// place in the sequence with the device time as it is, the ledger still
	// verifies, and the centre flags the step and the skew instead of
	// trusting it.
	REQUIRE(pos.ask({{"op", "checkout"}, {"scan", anna}, {"basket", basket("R3", "2026-11-23T23:31:00+01:00")}})["ok"] == true);
	rig.clock.jump_ms(-3'600'000);
	REQUIRE(pos.ask({{"op", "checkout"}, {"scan", anna}, {"basket", basket("R4", "2026-11-23T22:35:00+01:00")}})["ok"] == true);
	REQUIRE(pos.ask({{"op", "sync"}})["ok"] == true);
	e = pos.event("sync", done);
	REQUIRE(e["ok"] == true);
	CHECK(e["result"]["pushed"] == 2);
	// The centre's clock stands at the simulated day's 08:00: the till,
	// now at 22:35, is skewed by ~14.5 hours, and its evening entries are
	// stamped in the centre's future.
	const int64_t expected_skew = rig.clock.wall_ms() / 1000 - rig.central->now();
	REQUIRE(expected_skew > loy::central::clock_skew_flag_s);
	auto store = loy::central::open_store(rig.tmp.path() + "/central");
	REQUIRE(store);
	auto report = store.value()->report({}, rig.central->now());
	REQUIRE(report);
	Json t = Json::parse(loy::central::report_json(*report).dump())["terminals"][0];
	INFO(t.dump());
	CHECK(t["terminal_id"] == "T1");
	CHECK(t["entries_clock_back"] == 1);
	CHECK(t["entries_from_future"].get<int64_t>() >= 2); // R3, R4 at least
	CHECK(t["entries_from_future"].get<int64_t>() <= 4);
	CHECK(std::abs(t["clock_skew_s"].get<int64_t>() - expected_skew) <= 30);
	auto flagged = [&](const char *f) {
		for (const auto &x : t["clock_flags"])
			if (x == f)
				return true;
		return false;
	};
	CHECK(flagged("went_back"));
	CHECK(flagged("skewed"));
	CHECK(flagged("future_entries"));
	auto term = loy::Terminal::open(rig.data, rig.keys.table());
	REQUIRE(term);
	auto v = term.value()->verify();
	REQUIRE(v);
	CHECK(v->ok);
}

TEST_CASE("a checkout is answered while a sync waits on a server that does not answer")
{
	Mute mute;
	loy::fw::SyncConfig sync;
	sync.io_timeout_ms = 5'000;
	sync.connect_timeout_ms = 5'000;
	Rig rig(mute.url(), sync);
	// The program, which no sync will bring.
	{
		auto t = loy::Terminal::open(rig.data, rig.keys.table());
		REQUIRE(t);
		REQUIRE(t.value()->program_load(slurp(LOYALTY_EXAMPLES "/programs/cafe-rewards.json"), 0));
	}
	Pos pos(rig.socket());
	// Never synced: the first sync starts at once, and hangs on the mute server.
	auto running = [&] { return pos.ask({{"op", "status"}})["result"]["till"]["sync"]["running"] == true; };
	auto until = std::chrono::steady_clock::now() + patience;
	while (!running()) {
		REQUIRE(std::chrono::steady_clock::now() < until);
		std::this_thread::sleep_for(10ms);
	}
	Json a = pos.ask({{"op", "checkout"}, {"scan", anna}, {"basket", basket("R1", "2026-11-23T09:00:00+01:00")}});
	INFO(a.dump());
	REQUIRE(a["ok"] == true);
	CHECK(a["result"]["earned"].get<int64_t>() > 0);
	// Answered before the sync gave up.
	CHECK(running());
	Json e = pos.event("sync", [](const Json &ev) { return ev.value("state", "") == "done"; });
	CHECK(e["ok"] == false);
	CHECK(e["error"]["kind"] == "network");
	CHECK(e["failures"] == 1);
	CHECK(pos.ask({{"op", "status"}})["result"]["till"]["sync"]["reason"] == "retry");
}

TEST_CASE("hostile or careless requests are answered, and the till goes on")
{
	Rig rig("", {}, ""); // a terminal set up without --tz
	Pos pos(rig.socket());
	// Nested past any basket: refused before it is parsed (copying or
	// printing it would recurse that deep).
	Json a = pos.raw("{\"op\":\"status\",\"id\":" + std::string(100000, '[') + std::string(100000, ']') + "}");
	CHECK(a["error"]["code"] == "bad_json");
	CHECK_THAT(a["error"]["message"].get<std::string>(), Catch::Contains("nested deeper"));
	// Numbers past a double's range, used or not (the till aborted on them).
	for (const std::string &n : {std::string("1e400"), std::string("-1e400"), std::string(400, '9')}) {
		a = pos.raw("{\"op\":\"status\",\"id\":" + n + "}");
		CHECK(a["error"]["code"] == "bad_json");
		a = pos.raw("{\"op\":\"status\",\"unused\":[" + n + "]}");
		CHECK(a["error"]["code"] == "bad_json");
	}
	CHECK(pos.ask({{"op", "status"}})["ok"] == true);
	// An empty line is answered like any other.
	a = pos.raw("");
	CHECK(a["error"]["code"] == "bad_json");
	// A NUL inside a scan would cut it, in C, to the card before it.
	a = pos.ask({{"op", "scan"}, {"scan", std::string("6280001234567895\0junk", 21)}});
	CHECK(a["error"]["code"] == "bad_argument");
	a = pos.ask({{"op", "balance"}, {"scan", std::string("6280001234567895\0", 17)}});
	CHECK(a["error"]["code"] == "bad_argument");
	// 2^63 is no 64-bit quantity (it was shown as a negative number).
	a = pos.raw(R"({"op":"refund","receipt_id":"R1","lines":[{"sku":"COF-01","qty":9223372036854775808}]})");
	CHECK(a["error"]["code"] == "bad_argument");
	a = pos.raw(R"({"op":"checkout","redeem_points":9223372036854775808,"scan":"6280001234567895",)"
		    R"("basket":{"receipt_id":"R8","at":"2026-11-23T09:00:00+01:00","lines":[]}})");
	CHECK(a["error"]["code"] == "bad_argument");
	// A message cut to the error buffer stays UTF-8.
	std::string long_id;
	for (int i = 0; i < 300; i++)
		long_id += "\xc3\xa9";
	a = pos.ask({{"op", "refund"}, {"receipt_id", long_id}});
	CHECK(a["error"]["code"] == "unknown_receipt");
	// "scan" given but not the reader's text: refused, not the card before.
	rig.reader.push(bela);
	REQUIRE(pos.event("card")["ok"] == true);
	for (Json scan : {Json(6280001234567895), Json(nullptr), Json("")}) {
		a = pos.ask({{"op", "checkout"}, {"scan", scan}, {"basket", basket("R9", "2026-11-23T09:00:00+01:00")}});
		CHECK(a["ok"] == false);
		CHECK(a["error"]["code"] == "bad_argument");
	}
	// An empty list of returned lines is not "everything".
	REQUIRE(pos.ask({{"op", "checkout"}, {"basket", basket("R1", "2026-11-23T09:00:00+01:00")}})["ok"] == true);
	a = pos.ask({{"op", "refund"}, {"receipt_id", "R1"}, {"lines", Json::array()}});
	CHECK(a["error"]["code"] == "bad_argument");
	Json st = pos.ask({{"op", "status"}});
	REQUIRE(st["ok"] == true);
	CHECK(st["result"]["entries"] == 1);
	CHECK(st["result"]["tz"].is_null());
}

TEST_CASE("idle and slow POS clients cannot lock the POS out")
{
	Rig rig("");
	Pos pos(rig.socket());
	const Json status{{"op", "status"}};
	REQUIRE(pos.ask(status)["ok"] == true);
	// 100 connections that say nothing, or half a request, and stay.
	std::vector<std::unique_ptr<Pos>> idle;
	for (int i = 0; i < 100; i++) {
		idle.push_back(std::make_unique<Pos>(rig.socket()));
		if (i % 2)
			idle.back()->send_partial("{\"op\":\"sta");
		// The POS keeps asking meanwhile (however slowly this runs, under
		// qemu say): it is never the quietest.
		if (i % 8 == 0)
			REQUIRE(pos.ask(status)["ok"] == true);
	}
	REQUIRE(pos.ask(status)["ok"] == true);
	std::this_thread::sleep_for(std::chrono::milliseconds(loy::fw::PosChannel::quiet_ms_min + 200));
	// The POS that asks now and then keeps its place; a POS that connects
	// now (restarted, say) gets one from the silent ones.
	REQUIRE(pos.ask(status)["ok"] == true);
	Pos late(rig.socket());
	Json a = late.ask(status);
	INFO(a.dump());
	CHECK(a["ok"] == true);
	CHECK(pos.ask(status)["ok"] == true);
}

namespace {

// This process's resident memory (the till runs in it), in KiB.
int64_t rss_kib()
{
	std::ifstream f("/proc/self/status");
	std::string line;
	while (std::getline(f, line))
		if (line.rfind("VmRSS:", 0) == 0)
			return std::stoll(line.substr(6));
	return -1;
}

} // namespace

TEST_CASE("POS clients that never read, or never end a line, keep the till's memory bounded")
{
	Rig rig("");
	Pos pos(rig.socket());
	const Json status{{"op", "status"}};
	REQUIRE(pos.ask(status)["ok"] == true);
	const int64_t before = rss_kib();
	REQUIRE(before > 0);
	// 15 clients (the POS is the 16th) that ask and ask, with 60 KB ids
	// that come back in each answer, and never read one: 3.5 MB each,
	// under one client's backlog_max, 52 MB in all.
	std::vector<std::unique_ptr<Pos>> flood;
	const std::string big_id(60000, 'x');
	const std::string request = Json{{"op", "status"}, {"id", big_id}}.dump() + "\n";
	for (int i = 0; i < 15; i++) {
		flood.push_back(std::make_unique<Pos>(rig.socket()));
		for (int k = 0; k < 58; k++)
			flood.back()->send_partial(request);
		REQUIRE(pos.ask(status)["ok"] == true);
	}
	std::this_thread::sleep_for(300ms);
	REQUIRE(pos.ask(status)["ok"] == true);
	const int64_t flooded = rss_kib() - before; // while they are connected
	flood.clear();
	// Then 15 that send a line of a MiB less a byte, and stop there.
	std::vector<std::unique_ptr<Pos>> endless;
	const std::string almost(loy::fw::PosChannel::line_max - 1, ' ');
	for (int i = 0; i < 15; i++) {
		endless.push_back(std::make_unique<Pos>(rig.socket()));
		endless.back()->send_partial(almost);
		REQUIRE(pos.ask(status)["ok"] == true);
	}
	std::this_thread::sleep_for(200ms);
	REQUIRE(pos.ask(status)["ok"] == true);
	const int64_t held = rss_kib() - before;
	INFO("grew by " << flooded << " KiB with the flood, " << held << " KiB with the endless lines");
	// The channel's bound (pos.hpp): 16 MiB of output in all, a line of
	// 1 MiB in per client; strings may hold twice what they use. (Under
	// ASan freed memory stays in its quarantine: not a measure there.)
#if !defined(__SANITIZE_ADDRESS__)
	CHECK(flooded < 40 * 1024);
	CHECK(held < 64 * 1024);
#endif
}

TEST_CASE("a POS that sends a batch and hangs up gets every answer")
{
	Rig rig("");
	std::vector<std::string> lines;
	for (int i = 0; i < 300; i++)
		lines.push_back(Json{{"op", "checkout"}, {"id", i}, {"scan", anna},
				     {"basket", basket("B" + std::to_string(i), "2026-11-23T09:00:00+01:00")}}.dump());
	Pos pos(rig.socket());
	auto answers = pos.batch_and_hang_up(lines);
	REQUIRE(answers.size() == lines.size());
	for (size_t i = 0; i < answers.size(); i++) {
		CHECK(answers[i]["id"] == i);
		CHECK(answers[i]["ok"] == true);
	}
}

TEST_CASE("stopping the till ends a sync that waits on a silent server")
{
	Mute mute;
	loy::fw::SyncConfig sync;
	sync.io_timeout_ms = 600'000; // ten minutes: the stop must not wait them out
	auto rig = std::make_unique<Rig>(mute.url(), sync);
	{
		Pos pos(rig->socket());
		auto until = std::chrono::steady_clock::now() + patience;
		while (pos.ask({{"op", "status"}})["result"]["till"]["sync"]["running"] != true) {
			REQUIRE(std::chrono::steady_clock::now() < until);
			std::this_thread::sleep_for(10ms);
		}
	}
	// The stop, and the join of every thread, take well under the time-out
	// (200 ms here; the bound is only there so a regression fails rather
	// than hangs for ten minutes).
	auto t0 = std::chrono::steady_clock::now();
	rig.reset();
	CHECK(std::chrono::steady_clock::now() - t0 < patience);
}

TEST_CASE("the POS channel's enroll carries a referrer, checked as a card scan")
{
	Rig rig("");
	Pos pos(rig.socket());
	const std::string friend_card = "4539578763621486";
	Json a = pos.ask({{"op", "enroll"}, {"scan", anna}, {"referrer", friend_card}});
	INFO(a.dump());
	REQUIRE(a["ok"] == true);
	CHECK(a["result"]["enrolled"] == true);
	Json bad = pos.ask({{"op", "enroll"}, {"scan", anna}, {"referrer", "12"}});
	INFO(bad.dump());
	CHECK(bad["ok"] == false);
	CHECK(bad["error"]["code"] == "bad_card");
	Json wrong = pos.ask({{"op", "enroll"}, {"scan", anna}, {"referrer", 4539578763621486LL}});
	INFO(wrong.dump());
	CHECK(wrong["ok"] == false);
	CHECK(wrong["error"]["code"] == "bad_argument");
}
