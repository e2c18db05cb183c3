// loyalty-terminal: the reference terminal program (spec/cli.md). It parses
// the command line, calls the library's public C API, and prints: every rule
// lives in the library.
#include <loyalty/loyalty.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/cli.hpp"
#include "firmware/config.hpp"
#include "firmware/devices.hpp"
#include "firmware/slip.hpp"
#include "firmware/till.hpp"

namespace {

using loy::cli::Json;
using loy::cli::parse_i64;
using loy::cli::print_line;
using loy::cli::read_input;

const char usage[] =
	"usage: loyalty-terminal --data-dir DIR COMMAND [options] [--json]\n"
	"\n"
	"  init --terminal-id T --store S [--tz ZONE]\n"
	"       [--server https://HOST:PORT --ca CA.pem --cert T.pem --key T.key --token-key TOKEN.key]\n"
	"  program load FILE.json\n"
	"  enroll --card SCAN [--referrer SCAN]\n"
	"  checkout --card SCAN --basket FILE.json|- [--redeem POINTS | --reward ID | --stamp-card ID]\n"
	"  donate --card SCAN --charity ID --points N\n"
	"  refund --receipt ID [--line SKU=QTY ...] [--refund-id ID]\n"
	"  balance --card SCAN\n"
	"  status\n"
	"  sync\n"
	"  verify\n"
	"  run [--config FILE] [--print-config]   the cashier loop (firmware/POS.md)\n"
	"\n"
	"Exit: 0 done, 2 bad input, 3 declined, 4 storage, 5 network, 1 other.\n";

// The terminal program's command line: the shared conventions and a handle.
struct Cli : loy::cli::Cli {
	loy_terminal *t = nullptr;

	using loy::cli::Cli::fail;
	// A status of the C API: its name and its kind's exit code.
	int fail(loy_status st, const std::string &message) const
	{
		return fail(loy_errstr(st), static_cast<int>(loy_status_kind(st)), message);
	}
	int fail_last(loy_status st) const { return fail(st, loy_terminal_errmsg(t)); }
	Json result() const { return Json::parse(loy_terminal_result_json(t)); }
};

std::string points_or_unknown(const Json &v)
{
	return v.is_null() ? "unknown (earns, cannot redeem)" : std::to_string(v.get<int64_t>()) + " pts";
}

int cmd_init(Cli &c)
{
	std::string bad;
	if (!c.only({"terminal-id", "store", "tz", "server", "ca", "cert", "key", "token-key"}, &bad))
		return c.bad_args("init does not take " + bad);
	auto get = [&](const char *n) { return c.opt(n) ? c.opt(n)->c_str() : nullptr; };
	if (!get("terminal-id") || !get("store"))
		return c.bad_args("init needs --terminal-id and --store");
	loy_terminal_setup s = LOY_INIT(loy_terminal_setup);
	s.terminal_id = get("terminal-id");
	s.store = get("store");
	s.tz = get("tz");
	s.server = get("server");
	s.ca = get("ca");
	s.cert = get("cert");
	s.key = get("key");
	s.token_key = get("token-key");
	loy_status st = loy_terminal_init(c.t, c.args.data_dir.c_str(), &s);
	if (st != LOY_OK)
		return c.fail_last(st);
	st = loy_terminal_status(c.t);
	if (st != LOY_OK)
		return c.fail_last(st);
	Json r = c.result();
	if (c.args.json) {
		std::printf("%s\n", r.dump().c_str());
	} else {
		std::printf("Terminal %s of store %s ready in %s\n", s.terminal_id, s.store,
			    c.args.data_dir.c_str());
		if (s.server)
			std::printf("  syncs with %s\n", s.server);
	}
	return 0;
}

int cmd_program(Cli &c)
{
	if (c.args.words.size() != 3 || c.args.words[1] != "load")
		return c.bad_args("usage: program load FILE.json");
	std::string bad;
	if (!c.only({}, &bad))
		return c.bad_args("program load does not take " + bad);
	std::string text, err;
	if (!read_input(c.args.words[2], &text, &err))
		return c.bad_args(err);
	loy_status st = loy_terminal_program_load(c.t, text.data(), text.size());
	if (st != LOY_OK)
		return c.fail_last(st);
	Json r = c.result();
	if (c.args.json)
		std::printf("%s\n", r.dump().c_str());
	else
		std::printf("Program %s v%lld %s\n", r["program"].get<std::string>().c_str(),
			    static_cast<long long>(r["version"].get<int64_t>()),
			    r["loaded"].get<bool>() ? "installed" : "already installed");
	return 0;
}

int cmd_enroll(Cli &c)
{
	std::string bad;
	if (!c.only({"card", "referrer"}, &bad))
		return c.bad_args("enroll does not take " + bad);
	if (!c.opt("card"))
		return c.bad_args("enroll needs --card SCAN");
	loy_status st = c.opt("referrer") ? loy_terminal_enroll_referred(c.t, c.opt("card")->c_str(),
									 c.opt("referrer")->c_str())
					  : loy_terminal_enroll(c.t, c.opt("card")->c_str());
	if (st != LOY_OK)
		return c.fail_last(st);
	Json r = c.result();
	if (c.args.json)
		std::printf("%s\n", r.dump().c_str());
	else
		std::printf("Card %s %s\n", r["card"].get<std::string>().c_str(),
			    r["enrolled"].get<bool>() ? "enrolled" : "was already known");
	return 0;
}

int cmd_checkout(Cli &c)
{
	std::string bad;
	if (!c.only({"card", "basket", "redeem", "reward", "stamp-card"}, &bad))
		return c.bad_args("checkout does not take " + bad);
	if (!c.opt("card") || !c.opt("basket"))
		return c.bad_args("checkout needs --card SCAN and --basket FILE.json (or - for stdin)");
	if ((c.opt("redeem") ? 1 : 0) + (c.opt("reward") ? 1 : 0) + (c.opt("stamp-card") ? 1 : 0) > 1)
		return c.bad_args("a checkout takes one of --redeem, --reward and --stamp-card");
	loy_redemption r = LOY_INIT(loy_redemption);
	if (const std::string *p = c.opt("redeem")) {
		if (!parse_i64(*p, &r.points) || r.points <= 0)
			return c.bad_args("--redeem wants a positive number of points, got \"" + *p + "\"");
		r.kind = LOY_REDEEM_POINTS;
	} else if (const std::string *id = c.opt("reward")) {
		r.kind = LOY_REDEEM_REWARD;
		r.reward = id->c_str();
	} else if (const std::string *card = c.opt("stamp-card")) {
		r.kind = LOY_REDEEM_STAMP_CARD;
		r.reward = card->c_str();
	}
	std::string basket, err;
	if (!read_input(*c.opt("basket"), &basket, &err))
		return c.bad_args(err);
	loy_status st = loy_terminal_checkout(c.t, c.opt("card")->c_str(), basket.data(), basket.size(), &r);
	if (st != LOY_OK)
		return c.fail_last(st);
	Json res = c.result();
	if (c.args.json) {
		std::printf("%s\n", res.dump().c_str());
		return 0;
	}
	std::printf("Receipt %s   card %s   tier %s%s\n", res["receipt_id"].get<std::string>().c_str(),
		    res["card"].get<std::string>().c_str(), res["tier"].get<std::string>().c_str(),
		    res["replayed"].get<bool>() ? "   (replayed: recorded before)" : "");
	if (res.value("blocked", false))
		std::printf("  card blocked: earns nothing\n");
	for (const auto &part : res["breakdown"])
		std::printf("    %-20s %8lld\n", part["rule"].get<std::string>().c_str(),
			    static_cast<long long>(part["points"].get<int64_t>()));
	if (res.value("member_discount", int64_t{0}) > 0)
		print_line("Member price", "-" + loy::fw::format_money(res.value("currency", ""),
								       res["member_discount"].get<int64_t>()));
	print_line("Earned", std::to_string(res["earned"].get<int64_t>()) + " pts");
	if (res["pending"].get<int64_t>() > 0)
		print_line("  pending until", res["available_on"].get<std::string>());
	if (res["redeemed"].get<int64_t>() > 0)
		print_line("Redeemed", std::to_string(res["redeemed"].get<int64_t>()) + " pts  (-" +
					       loy::fw::format_money(res.value("currency", ""), res["discount"].get<int64_t>()) + ")");
	print_line("Balance", points_or_unknown(res["balance"]));
	return 0;
}

int cmd_donate(Cli &c)
{
	std::string bad;
	if (!c.only({"card", "charity", "points"}, &bad))
		return c.bad_args("donate does not take " + bad);
	if (!c.opt("card") || !c.opt("charity") || !c.opt("points"))
		return c.bad_args("donate needs --card SCAN, --charity ID and --points N");
	int64_t points = 0;
	if (!parse_i64(*c.opt("points"), &points) || points <= 0)
		return c.bad_args("--points wants a positive number of points, got \"" + *c.opt("points") + "\"");
	loy_status st = loy_terminal_donate(c.t, c.opt("card")->c_str(), c.opt("charity")->c_str(), points);
	if (st != LOY_OK)
		return c.fail_last(st);
	Json r = c.result();
	if (c.args.json) {
		std::printf("%s\n", r.dump().c_str());
		return 0;
	}
	std::printf("Card %s gave %lld pts to %s\n", r["card"].get<std::string>().c_str(),
		    static_cast<long long>(r["points"].get<int64_t>()), r["charity"].get<std::string>().c_str());
	print_line("Balance", points_or_unknown(r["balance"]));
	return 0;
}

int cmd_refund(Cli &c)
{
	std::string bad;
	if (!c.only({"receipt", "line", "refund-id"}, &bad))
		return c.bad_args("refund does not take " + bad);
	if (!c.opt("receipt"))
		return c.bad_args("refund needs --receipt ID");
	std::vector<std::string> specs = c.all("line");
	std::vector<std::string> skus;
	std::vector<loy_return_line> lines;
	skus.reserve(specs.size());
	for (const auto &spec : specs) {
		auto eq = spec.rfind('=');
		int64_t qty = 0;
		if (eq == std::string::npos || eq == 0 || !parse_i64(spec.substr(eq + 1), &qty) || qty <= 0)
			return c.bad_args("--line wants SKU=QTY with a positive QTY, got \"" + spec + "\"");
		skus.push_back(spec.substr(0, eq));
		lines.push_back(loy_return_line{nullptr, qty});
	}
	for (size_t i = 0; i < lines.size(); i++)
		lines[i].sku = skus[i].c_str();
	const std::string *refund_id = c.opt("refund-id");
	loy_status st = loy_terminal_refund_keyed(c.t, c.opt("receipt")->c_str(),
						  refund_id ? refund_id->c_str() : nullptr, lines.data(), lines.size());
	if (st != LOY_OK)
		return c.fail_last(st);
	Json r = c.result();
	if (c.args.json) {
		std::printf("%s\n", r.dump().c_str());
		return 0;
	}
	std::printf("Refund of %s%s%s\n", r["receipt_id"].get<std::string>().c_str(),
		    r["complete"].get<bool>() ? " (complete)" : "",
		    r.value("replayed", false) ? " (recorded before: nothing moved again)" : "");
	print_line("Points taken back", std::to_string(r["points_reversed"].get<int64_t>()) + " pts");
	print_line("Points given back", std::to_string(r["points_returned"].get<int64_t>()) + " pts");
	print_line("Balance", points_or_unknown(r["balance"]));
	return 0;
}

int cmd_balance(Cli &c)
{
	std::string bad;
	if (!c.only({"card"}, &bad))
		return c.bad_args("balance does not take " + bad);
	if (!c.opt("card"))
		return c.bad_args("balance needs --card SCAN");
	loy_status st = loy_terminal_balance(c.t, c.opt("card")->c_str());
	if (st != LOY_OK)
		return c.fail_last(st);
	Json r = c.result();
	if (c.args.json) {
		std::printf("%s\n", r.dump().c_str());
		return 0;
	}
	std::printf("Card %s   tier %s%s\n", r["card"].get<std::string>().c_str(),
		    r["tier"].get<std::string>().c_str(), r["blocked"].get<bool>() ? "   BLOCKED" : "");
	print_line("Balance", points_or_unknown(r["balance"]));
	if (r["pending"].get<int64_t>() > 0)
		print_line("Pending", std::to_string(r["pending"].get<int64_t>()) + " pts");
	print_line("Redeemable today", std::to_string(r["redeemable_today"].get<int64_t>()) + " pts");
	if (!r["next_expiry"].is_null())
		print_line("Next expiry", r["next_expiry"].get<std::string>());
	if (r["unsynced"].get<int64_t>() != 0)
		print_line("Not yet synced", std::to_string(r["unsynced"].get<int64_t>()) + " pts");
	return 0;
}

int cmd_status(Cli &c)
{
	std::string bad;
	if (!c.only({}, &bad))
		return c.bad_args("status does not take " + bad);
	loy_status st = loy_terminal_status(c.t);
	if (st != LOY_OK)
		return c.fail_last(st);
	Json r = c.result();
	if (c.args.json) {
		std::printf("%s\n", r.dump().c_str());
		return 0;
	}
	std::printf("Terminal %s   store %s\n", r["terminal_id"].get<std::string>().c_str(),
		    r["store"].get<std::string>().c_str());
	print_line("Program", r["program"].is_null()
				      ? std::string("none installed")
				      : r["program"]["id"].get<std::string>() + " v" +
						std::to_string(r["program"]["version"].get<int64_t>()));
	print_line("Ledger entries", std::to_string(r["entries"].get<int64_t>()));
	print_line("Not yet synced", std::to_string(r["unsynced"].get<int64_t>()));
	print_line("Last sync", r["last_sync"].is_null() ? "never" : r["last_sync"].get<std::string>());
	return 0;
}

int cmd_verify(Cli &c)
{
	std::string bad;
	if (!c.only({}, &bad))
		return c.bad_args("verify does not take " + bad);
	int ok = 0;
	loy_status st = loy_terminal_verify(c.t, &ok);
	if (st != LOY_OK)
		return c.fail_last(st);
	Json r = c.result();
	if (ok) {
		if (c.args.json)
			std::printf("%s\n", r.dump().c_str());
		else
			std::printf("Ledger verified: %lld entries, chain, MACs and tables intact\n",
				    static_cast<long long>(r["entries"].get<int64_t>()));
		return 0;
	}
	// A ledger that fails is a storage failure: exit 4, with the verdict.
	std::string problem = r.value("problem", "verification failed");
	std::fprintf(stderr, "error: %s: %s\n", loy_errstr(LOY_E_STORAGE), problem.c_str());
	if (c.args.json) {
		r["error"] = {{"code", loy_errstr(LOY_E_STORAGE)}, {"message", problem}};
		std::printf("%s\n", r.dump().c_str());
	} else {
		std::printf("Ledger FAILED verification at entry %lld of %lld: %s\n",
			    static_cast<long long>(r["first_bad"].get<int64_t>()),
			    static_cast<long long>(r["entries"].get<int64_t>()), problem.c_str());
	}
	return static_cast<int>(loy_status_kind(LOY_E_STORAGE));
}

extern "C" void print_progress(const char *line, void *)
{
	std::fprintf(stderr, "\r\033[K  sync: %s", line);
	std::fflush(stderr);
}

int cmd_sync(Cli &c)
{
	std::string bad;
	if (!c.only({}, &bad))
		return c.bad_args("sync does not take " + bad);
	// Time-outs for a site with a slow link, or a test of a dead server.
	if (const char *ms = std::getenv("LOYALTY_SYNC_TIMEOUT_MS")) {
		int64_t v = 0;
		if (!parse_i64(ms, &v) || v <= 0 || v > 600000)
			return c.bad_args("LOYALTY_SYNC_TIMEOUT_MS must be 1 to 600000");
		loy_terminal_set_sync_timeouts(c.t, static_cast<int>(v), static_cast<int>(v));
	}
	// A progress line only for a person watching.
	bool tty = !c.args.json && isatty(STDERR_FILENO) && isatty(STDOUT_FILENO);
	loy_status st = loy_terminal_sync(c.t, tty ? print_progress : nullptr, nullptr);
	if (tty)
		std::fprintf(stderr, "\r\033[K");
	if (st != LOY_OK)
		return c.fail_last(st);
	Json r = c.result();
	return loy::cli::print_result(c, r, [](const Json &j) {
		std::printf("Synced: %lld entries pushed, acknowledged through %lld, %lld members updated",
			    static_cast<long long>(j["pushed"].get<int64_t>()),
			    static_cast<long long>(j["acked_through"].get<int64_t>()),
			    static_cast<long long>(j["members"].get<int64_t>()));
		if (!j["program_version"].is_null())
			std::printf(", program v%lld", static_cast<long long>(j["program_version"].get<int64_t>()));
		std::printf("\n");
	});
}

// The cashier loop: devices from the configuration file, the POS channel,
// the sync on its own thread, until SIGTERM or SIGINT.
int cmd_run(Cli &c)
{
	std::string bad;
	if (!c.only({"config", "print-config"}, &bad))
		return c.bad_args("run does not take " + bad);
	if (c.args.words.size() != 1)
		return c.bad_args("run takes no operand");
	const std::string *given = c.opt("config");
	const std::string path = given ? *given : c.args.data_dir + "/terminal.conf";
	auto cfg = loy::fw::load_config(path, !given, c.args.data_dir);
	if (!cfg)
		return c.fail(static_cast<loy_status>(cfg.status().code()), cfg.status().message());
	if (c.opt("print-config")) {
		std::printf("%s", loy::fw::format_config(*cfg).c_str());
		return 0;
	}
	auto devices = loy::fw::Devices::open(*cfg, c.args.data_dir, c.clock_offset_s);
	if (!devices)
		return c.fail(static_cast<loy_status>(devices.status().code()), devices.status().message());
	loy::fw::Till till(c.args.data_dir, *cfg, devices.value()->hal(), devices.value()->sim());
	if (auto st = till.open(); !st)
		return c.fail(static_cast<loy_status>(st.code()), st.message());
	till.run(loy::cli::stop_on_signals());
	return 0;
}

// A ledger that cannot even be opened (a broken seal, a damaged file) has
// failed verification: the verdict says so in verify's own shape.
int verify_failed_at_open(Cli &c, loy_status st)
{
	const std::string problem = loy_terminal_errmsg(c.t);
	std::fprintf(stderr, "error: %s: %s\n", loy_errstr(st), problem.c_str());
	if (c.args.json) {
		Json r{{"ok", false}, {"entries", nullptr}, {"first_bad", 0}, {"problem", problem},
		       {"error", {{"code", loy_errstr(st)}, {"message", problem}}}};
		std::printf("%s\n", r.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
	} else {
		std::printf("Ledger FAILED verification before its first entry: %s\n", problem.c_str());
	}
	return static_cast<int>(loy_status_kind(st));
}

int dispatch(Cli &c)
{
	const std::string &cmd = c.args.words[0];
	if (cmd == "init")
		return cmd_init(c);
	loy_status st = loy_terminal_open(c.t, c.args.data_dir.c_str());
	if (st != LOY_OK && cmd == "verify" && loy_status_kind(st) == LOY_KIND_STORAGE)
		return verify_failed_at_open(c, st);
	if (st != LOY_OK)
		return c.fail_last(st);
	if (cmd == "program")
		return cmd_program(c);
	if (cmd == "enroll")
		return cmd_enroll(c);
	if (cmd == "checkout")
		return cmd_checkout(c);
	if (cmd == "donate")
		return cmd_donate(c);
	if (cmd == "refund")
		return cmd_refund(c);
	if (cmd == "balance")
		return cmd_balance(c);
	if (cmd == "status")
		return cmd_status(c);
	if (cmd == "verify")
		return cmd_verify(c);
	if (cmd == "sync")
		return cmd_sync(c);
	if (cmd == "run")
		return cmd_run(c);
	return c.bad_args("unknown command \"" + cmd + "\"");
}

} // namespace

int main(int argc, char **argv)
{
	Cli c;
	if (int rc = loy::cli::check_command_line(c, argc, argv, usage); rc >= 0)
		return rc;
	if (loy_terminal_new(&c.t) != LOY_OK)
		return c.fail(LOY_E_INTERNAL, "out of memory");
	if (c.clock_offset_s != 0)
		loy_terminal_set_clock(c.t, [](void *ctx) { return static_cast<Cli *>(ctx)->now_utc(); }, &c);
	int rc;
	try {
		rc = dispatch(c);
	} catch (const std::exception &e) {
		// A result the library wrote that this program cannot read.
		rc = c.fail(LOY_E_INTERNAL, e.what());
	}
	loy_terminal_free(c.t);
	return rc;
}
