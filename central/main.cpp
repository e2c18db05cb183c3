// loyalty-central: the reference central server (spec/cli.md). It parses
// the command line, calls the central store and server, and prints their
// typed results: as JSON through central/views.hpp, or for people here.
#include <sys/resource.h>
#include <sys/stat.h>

#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/cli.hpp"
#include "base/crypto.hpp"
#include "base/timeutil.hpp"
#include "central/server.hpp"
#include "central/store.hpp"
#include "central/views.hpp"
#include "sync/http.hpp"
#include "central/pki.hpp"

namespace {

using loy::cli::Json;
using loy::cli::print_line;

const char usage[] =
	"usage: loyalty-central [--data-dir DIR] [--database postgresql://...] COMMAND [options] [--json]\n"
	"\n"
	"  Without --database the centre keeps its data in DIR/central.db (SQLite).\n"
	"\n"
	"  pki init --out DIR --terminals T1,T2,...\n"
	"  serve --listen HOST:PORT --cert S.pem --key S.key --client-ca CA.pem\n"
	"        [--workers N (16)] [--waiting N (64)]   past them: 503 + Retry-After\n"
	"        [--admin-listen HOST:PORT]   the back office's dashboard (HTTPS, sign-in with TOTP)\n"
	"  program publish FILE.json\n"
	"  enroll --card SCAN [--referrer SCAN]\n"
	"  block --card SCAN\n"
	"  balance --card SCAN\n"
	"  statement --card SCAN       the member's data: balance, history, lots\n"
	"  segment --card SCAN (--add NAME | --remove NAME)\n"
	"  report [--from DATE --until DATE] [--store S]   local dates, until exclusive\n"
	"  settlement --from DATE --until DATE\n"
	"  fraud                     the flags of the rules in DIR/central.json (or their defaults)\n"
	"  admin add --user NAME --role viewer|manager   the password on standard input\n"
	"  admin remove --user NAME\n"
	"\n"
	"Exit: 0 done, 2 bad input, 3 declined, 4 storage, 5 network, 1 other.\n";


struct Cli : loy::cli::Cli {
	int fail_status(const loy::Status &s) const
	{
		return fail(loy::code_name(s.code()), static_cast<int>(loy::kind_of(s.code())), s.message());
	}
};

loy::Status make_data_dir(const std::string &dir)
{
	if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
		return loy::Status(loy::Code::storage,
				   "cannot create data dir " + dir + ": " + std::strerror(errno));
	return loy::Status::ok();
}

std::vector<std::string> split(const std::string &s, char sep)
{
	std::vector<std::string> out;
	size_t pos = 0;
	for (;;) {
		size_t next = s.find(sep, pos);
		out.push_back(s.substr(pos, next == std::string::npos ? std::string::npos : next - pos));
		if (next == std::string::npos)
			return out;
		pos = next + 1;
	}
}

int cmd_pki(Cli &c, loy::central::Store &store)
{
	std::string bad;
	if (c.args.words.size() != 2 || c.args.words[1] != "init")
		return c.bad_args("usage: pki init --out DIR --terminals T1,T2,...");
	if (!c.only({"out", "terminals"}, &bad))
		return c.bad_args("pki init does not take " + bad);
	if (!c.opt("out") || !c.opt("terminals"))
		return c.bad_args("pki init needs --out DIR and --terminals T1,T2,...");
	auto terminals = split(*c.opt("terminals"), ',');
	for (const auto &t : terminals)
		if (!loy::net::valid_terminal_id(t))
			return c.bad_args("--terminals: \"" + t + "\" is not a terminal id (letters, digits, '-', "
				      "'_', '.')");
	const std::string out = *c.opt("out");
	if (auto s = loy::net::make_test_pki(out, terminals, static_cast<int64_t>(std::time(nullptr))); !s)
		return c.fail_status(s);
	// One token key for the chain: the one this centre already has, or the
	// new one, kept where the store keeps it (store.hpp).
	auto key = store.token_key();
	if (!key)
		return c.fail_status(key.status());
	if (auto s = loy::crypto::write_key_file(out + "/token.key", *key); !s)
		return c.fail_status(s);
	Json r{{"out", out}, {"ca", out + "/ca.pem"}, {"server", out + "/server.pem"},
	       {"terminals", terminals}, {"token_key", out + "/token.key"}};
	return loy::cli::print_result(c, r, [&](const Json &) {
		std::printf("Test PKI in %s: ca.pem, server.pem/.key (localhost, 127.0.0.1), token.key\n",
			    out.c_str());
		for (const auto &t : terminals)
			std::printf("  terminal %s: %s.pem, %s.key\n", t.c_str(), t.c_str(), t.c_str());
	});
}

// The centre's configuration (fraud.hpp): DIR/central.json when there is
// one, the defaults otherwise.
loy::Result<loy::central::FraudRules> fraud_rules(const Cli &c)
{
	std::string text, err;
	if (!c.args.data_dir.empty()) {
		const std::string path = c.args.data_dir + "/" + loy::central::central_config_file;
		struct stat st;
		if (::stat(path.c_str(), &st) == 0 && !loy::cli::read_input(path, &text, &err))
			return loy::Status(loy::Code::bad_argument, err);
	}
	return loy::central::parse_fraud_rules(text);
}

int cmd_statement(Cli &c, loy::central::Store &store)
{
	std::string bad;
	if (c.args.words.size() != 1 || !c.only({"card"}, &bad) || !c.opt("card"))
		return c.bad_args("usage: statement --card SCAN [--json]" + (bad.empty() ? "" : ": it does not take " + bad));
	auto s = store.statement(*c.opt("card"), c.now_utc());
	if (!s)
		return c.fail_status(s.status());
	return loy::cli::print_result(c, loy::central::statement_json(*s), [&](const Json &j) {
		if (!s->balance.member.known) {
			std::printf("Card %s: not a member\n", s->balance.card.c_str());
			return;
		}
		std::printf("Card %s  balance %lld  pending %lld\n", s->balance.card.c_str(),
			    static_cast<long long>(s->balance.member.balance),
			    static_cast<long long>(s->balance.member.pending));
		for (const auto &h : j["history"])
			std::printf("  %s  %-9s %-12s %-20s %+lld\n", h["at"].get<std::string>().c_str(),
				    h["kind"].get<std::string>().c_str(), h["terminal"].get<std::string>().c_str(),
				    h["receipt"].get<std::string>().c_str(), static_cast<long long>(h["points"].get<int64_t>()));
		for (const auto &l : s->lots)
			std::printf("  lot %lld points, expires %s\n", static_cast<long long>(l.points),
				    l.expires_at_utc ? loy::format_date(loy::Timestamp{*l.expires_at_utc, 0}.local_date()).c_str()
						     : "never");
	});
}

int cmd_admin(Cli &c, loy::central::Store &store)
{
	std::string bad;
	const auto &w = c.args.words;
	const bool add = w.size() == 2 && w[1] == "add", remove = w.size() == 2 && w[1] == "remove";
	if (!(add ? c.only({"user", "role"}, &bad) : c.only({"user"}, &bad)) || (!add && !remove) || !c.opt("user") ||
	    (add && !c.opt("role")))
		return c.bad_args("usage: admin add --user NAME --role viewer|manager (the password on standard input), "
				  "admin remove --user NAME" +
				  (bad.empty() ? std::string() : ": it does not take " + bad));
	const std::string user = *c.opt("user");
	if (auto s = loy::central::check_admin_name(user); !s)
		return c.bad_args(s.message());
	if (remove) {
		if (auto s = store.remove_admin(user, c.now_utc()); !s)
			return c.fail_status(s);
		return loy::cli::print_result(c, Json{{"user", user}, {"removed", true}},
					      [&](const Json &) { std::printf("User %s removed\n", user.c_str()); });
	}
	auto role = loy::central::parse_role(*c.opt("role"));
	if (!role)
		return c.bad_args(role.status().message());
	std::string password, err;
	if (!loy::cli::read_input("-", &password, &err))
		return c.bad_args(err);
	if (password.size() >= 1 && password.back() == '\n')
		password.pop_back();
	if (password.size() >= 1 && password.back() == '\r')
		password.pop_back();
	if (auto s = loy::central::check_password_text(password); !s)
		return c.bad_args(s.message());
	auto hash = loy::central::hash_password(password);
	if (!hash)
		return c.fail_status(hash.status());
	auto secret = loy::central::new_totp_secret();
	if (!secret)
		return c.fail_status(secret.status());
	loy::central::AdminAccount a{user, *role, *hash, loy::central::base32_encode(*secret), -1};
	if (auto s = store.add_admin(a, c.now_utc()); !s)
		return c.fail_status(s);
	const std::string uri = loy::central::totp_uri("loyalty", user, *secret);
	return loy::cli::print_result(c, Json{{"user", user}, {"role", loy::central::role_name(*role)}, {"totp_uri", uri}},
				      [&](const Json &) {
					      std::printf("User %s added as %s\n", user.c_str(), loy::central::role_name(*role));
					      std::printf("Two-factor secret (add it to an authenticator app now; it is not "
							  "shown again):\n  %s\n",
							  uri.c_str());
				      });
}

int cmd_serve(Cli &c)
{
	std::string bad;
	if (!c.only({"listen", "cert", "key", "client-ca", "workers", "waiting", "admin-listen"}, &bad))
		return c.bad_args("serve does not take " + bad);
	if (!c.opt("listen") || !c.opt("cert") || !c.opt("key") || !c.opt("client-ca"))
		return c.bad_args("serve needs --listen HOST:PORT --cert S.pem --key S.key --client-ca CA.pem");
	auto ep = loy::net::parse_server_url("https://" + *c.opt("listen"));
	if (!ep)
		return c.bad_args("--listen \"" + *c.opt("listen") + "\" is not HOST:PORT");
	loy::central::ServeOptions o;
	o.data_dir = c.args.data_dir;
	o.database = c.args.database;
	o.host = ep->host;
	o.port = ep->port;
	o.clock = [&c] { return c.now_utc(); };
	if (auto admin = c.opt("admin-listen")) {
		auto a = loy::net::parse_server_url("https://" + *admin);
		if (!a)
			return c.bad_args("--admin-listen \"" + *admin + "\" is not HOST:PORT");
		o.admin_host = a->host;
		o.admin_port = a->port;
		auto rules = fraud_rules(c);
		if (!rules)
			return c.bad_args(rules.status().message());
		o.dashboard.rules = *rules;
	}
	// How much work this server takes on (server.hpp): its workers (each a
	// database connection) and the connections that may wait for one.
	auto count = [&c](const char *name, int64_t lo, int64_t hi, int64_t *out) {
		auto v = c.opt(name);
		if (!v)
			return true;
		return loy::cli::parse_i64(*v, out) && *out >= lo && *out <= hi;
	};
	int64_t workers = o.workers, waiting = static_cast<int64_t>(o.waiting_max);
	if (!count("workers", 1, 256, &workers))
		return c.bad_args("--workers must be a whole number from 1 to 256");
	if (!count("waiting", 0, 100000, &waiting))
		return c.bad_args("--waiting must be a whole number from 0 to 100000");
	o.workers = static_cast<int>(workers);
	o.waiting_max = static_cast<size_t>(waiting);
	std::string err;
	if (!loy::cli::read_input(*c.opt("cert"), &o.identity.cert_pem, &err) ||
	    !loy::cli::read_input(*c.opt("key"), &o.identity.key_pem, &err) ||
	    !loy::cli::read_input(*c.opt("client-ca"), &o.identity.client_ca_pem, &err))
		return c.bad_args(err);

	// Each terminal syncing, and each connection still in its handshake,
	// holds a descriptor: take every one the system allows this process.
	if (struct rlimit rl; ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		::setrlimit(RLIMIT_NOFILE, &rl);
	}
	auto s = loy::central::serve(o, loy::cli::stop_on_signals(), [&](uint16_t port, uint16_t admin_port) {
		std::fprintf(stderr, "loyalty-central: serving on %s:%u\n", o.host.c_str(), port);
		if (admin_port)
			std::fprintf(stderr, "loyalty-central: dashboard on https://%s:%u/\n", o.admin_host.c_str(),
				     admin_port);
	});
	if (!s)
		return c.fail_status(s);
	std::fprintf(stderr, "loyalty-central: stopped\n");
	return 0;
}

int cmd_program(Cli &c, loy::central::Store &store)
{
	if (c.args.words.size() != 3 || c.args.words[1] != "publish")
		return c.bad_args("usage: program publish FILE.json");
	std::string bad, text, err;
	if (!c.only({}, &bad))
		return c.bad_args("program publish does not take " + bad);
	if (!loy::cli::read_input(c.args.words[2], &text, &err))
		return c.bad_args(err);
	auto r = store.publish_program(text, c.now_utc());
	if (!r)
		return c.fail_status(r.status());
	return loy::cli::print_result(c, loy::central::published_json(*r), [&](const Json &) {
		std::printf("Program %s v%lld %s\n", r->program.c_str(), static_cast<long long>(r->version),
			    r->published ? "published" : "already published");
	});
}

int cmd_card(Cli &c, loy::central::Store &store, const std::string &cmd)
{
	std::string bad;
	if (!c.only(cmd == "enroll" ? std::initializer_list<const char *>{"card", "referrer"}
				    : std::initializer_list<const char *>{"card"},
		    &bad))
		return c.bad_args(cmd + " does not take " + bad);
	if (!c.opt("card"))
		return c.bad_args(cmd + " needs --card SCAN");
	const std::string &scan = *c.opt("card");
	if (cmd == "enroll" || cmd == "block") {
		const std::string referrer = c.opt("referrer") ? *c.opt("referrer") : std::string();
		auto r = cmd == "enroll" ? store.enroll(scan, c.now_utc(), referrer) : store.block(scan, c.now_utc());
		if (!r)
			return c.fail_status(r.status());
		const Json out = cmd == "enroll" ? loy::central::enrolled_json(*r) : loy::central::blocked_json(*r);
		return loy::cli::print_result(c, out, [&](const Json &) {
			if (cmd == "enroll")
				std::printf("Card %s enrolled\n", r->card.c_str());
			else
				std::printf("Card %s blocked: it earns and redeems nothing from the next sync on\n",
					    r->card.c_str());
		});
	}
	auto r = store.balance(scan, c.now_utc());
	if (!r)
		return c.fail_status(r.status());
	return loy::cli::print_result(c, loy::central::balance_json(*r), [&](const Json &) {
		const loy::central::MemberInfo &m = r->member;
		std::printf("Card %s   tier %s%s\n", r->card.c_str(), m.tier.empty() ? "-" : m.tier.c_str(),
			    m.blocked ? "   BLOCKED" : "");
		print_line("Balance", std::to_string(m.balance) + " pts");
		if (m.pending > 0)
			print_line("Pending", std::to_string(m.pending) + " pts");
		print_line("Qualifying spend", std::to_string(m.qualifying_spend));
		if (m.next_expiry)
			print_line("Next expiry", *m.next_expiry);
		if (!m.segments.empty()) {
			std::string names;
			for (const auto &name : m.segments)
				names += (names.empty() ? "" : ", ") + name;
			print_line("Segments", names);
		}
		for (const auto &[card, n] : m.stamps)
			print_line(("Stamps " + card).c_str(), std::to_string(n));
		const loy::central::ViewJson j = loy::central::balance_json(*r);
		if (const auto &ms = j.at("membership"); ms.is_object())
			print_line(("Membership " + ms.at("id").get<std::string>()).c_str(),
				   "until " + ms.at("until").get<std::string>());
		if (m.referral)
			print_line(("Referred by " + m.referral->referrer).c_str(),
				   m.referral->status + ": " + m.referral->reason);
	});
}

// A member in or out of a segment: what the card's targeted campaigns
// follow at every till from its next sync.
int cmd_segment(Cli &c, loy::central::Store &store)
{
	std::string bad;
	if (!c.only({"card", "add", "remove"}, &bad))
		return c.bad_args("segment does not take " + bad);
	if (!c.opt("card"))
		return c.bad_args("segment needs --card SCAN");
	if (!c.opt("add") == !c.opt("remove"))
		return c.bad_args("segment needs one of --add NAME and --remove NAME");
	const bool add = c.opt("add") != nullptr;
	auto r = store.segment(*c.opt("card"), add ? *c.opt("add") : *c.opt("remove"), add, c.now_utc());
	if (!r)
		return c.fail_status(r.status());
	return loy::cli::print_result(c, loy::central::balance_json(*r), [&](const Json &) {
		std::string names;
		for (const auto &s : r->member.segments)
			names += (names.empty() ? "" : ", ") + s;
		std::printf("Card %s   segments: %s\n", r->card.c_str(), names.empty() ? "none" : names.c_str());
	});
}

// What each coalition partner owes and is owed for [--from, --until).
int cmd_settlement(Cli &c, loy::central::Store &store)
{
	std::string bad;
	if (!c.only({"from", "until"}, &bad))
		return c.bad_args("settlement does not take " + bad);
	if (!c.opt("from") || !c.opt("until"))
		return c.bad_args("settlement needs --from DATE and --until DATE (local dates, until exclusive)");
	auto from = loy::parse_date(*c.opt("from"));
	auto until = loy::parse_date(*c.opt("until"));
	if (!from)
		return c.bad_args("--from: " + from.status().message());
	if (!until)
		return c.bad_args("--until: " + until.status().message());
	if (*until <= *from)
		return c.bad_args("--until must be after --from (the range is [from, until))");
	auto r = store.settlement(*from, *until);
	if (!r)
		return c.fail_status(r.status());
	return loy::cli::print_result(c, loy::central::settlement_json(*r), [&](const Json &) {
		std::printf("Settlement %s to %s (until exclusive)\n", loy::format_date(r->from).c_str(),
			    loy::format_date(r->until).c_str());
		for (const auto &x : r->partners)
			std::printf("  %-16s issued %10lld  redeemed %10lld  owes %12lld  credit %12lld  net %+13lld\n",
				    x.partner.c_str(), static_cast<long long>(x.issued), static_cast<long long>(x.redeemed),
				    static_cast<long long>(x.owes), static_cast<long long>(x.credit),
				    static_cast<long long>(x.net));
	});
}

int cmd_fraud(Cli &c, loy::central::Store &store)
{
	std::string bad;
	if (c.args.words.size() != 1 || !c.only({}, &bad))
		return c.bad_args("usage: fraud [--json]" + (bad.empty() ? "" : ": it does not take " + bad));
	auto rules = fraud_rules(c);
	if (!rules)
		return c.bad_args(rules.status().message());
	auto flags = store.fraud(*rules);
	if (!flags)
		return c.fail_status(flags.status());
	return loy::cli::print_result(c, loy::central::fraud_json(*flags), [&](const Json &) {
		std::printf("Fraud flags %zu\n", flags->size());
		for (const auto &f : *flags)
			std::printf("  %s  %-16s %-16s %s\n", loy::format_timestamp(loy::Timestamp{f.first_seen, 0}).c_str(),
				    f.card.c_str(), f.rule.c_str(), f.detail.c_str());
	});
}

int cmd_report(Cli &c, loy::central::Store &store)
{
	std::string bad;
	if (!c.only({"from", "until", "store"}, &bad))
		return c.bad_args("report does not take " + bad);
	const auto text = [&](const char *name) {
		const std::string *v = c.opt(name);
		return v ? std::optional<std::string>(*v) : std::nullopt;
	};
	auto q = loy::central::report_query(text("from"), text("until"), text("store"));
	if (!q)
		return c.bad_args("report: " + q.status().message());
	auto r = store.report(*q, c.now_utc());
	if (!r)
		return c.fail_status(r.status());
	return loy::cli::print_result(c, loy::central::report_json(*r), [&](const Json &) {
		const auto n = [](int64_t v) { return std::to_string(v); };
		std::printf("Members %s\n", n(r->members).c_str());
		print_line("Points issued", n(r->points.issued));
		print_line("Points redeemed", n(r->points.redeemed));
		print_line("Points expired", n(r->points.expired));
		if (r->points.donated != 0)
			print_line("Points donated", n(r->points.donated));
		print_line("Points outstanding", n(r->points.outstanding()));
		print_line("Liability", n(r->liability));
		print_line("Active members", n(r->active_members));
		print_line("New members", n(r->new_members));
		print_line("Receipts", n(r->receipts));
		print_line("Average basket", n(r->average_basket));
		const auto pct = [](int64_t bp) { return fmt::format("{}.{:02d} %", bp / 100, bp % 100); };
		print_line("Redemption rate", pct(r->redemption_rate_bp));
		print_line("Breakage", pct(r->breakage_bp));
		print_line("Repeat rate", pct(r->repeat_rate_bp));
		for (const auto &x : r->campaigns)
			std::printf("  campaign %-16s %10s pts  on spend %s\n", x.id.c_str(), n(x.points).c_str(),
				    n(x.spend).c_str());
		for (const auto &d : r->donations)
			std::printf("  charity %-12s %10s pts  worth %s\n", d.charity.c_str(), n(d.points).c_str(),
				    n(d.value).c_str());
		for (const auto &s : r->stores)
			std::printf("  store %-14s issued %10s  redeemed %10s  outstanding %10s\n", s.store.c_str(),
				    n(s.points.issued).c_str(), n(s.points.redeemed).c_str(),
				    n(s.points.outstanding()).c_str());
		for (const auto &t : r->terminals) {
			std::string clock;
			if (t.clock_skew_s)
				clock = fmt::format("  clock {:+d} s", *t.clock_skew_s);
			for (const auto &f : loy::central::clock_flags(t))
				clock += " " + f;
			std::printf("  terminal %-11s store %-10s acked through %s%s\n", t.terminal_id.c_str(),
				    t.store.c_str(), n(t.acked_through).c_str(), clock.c_str());
		}
	});
}

int dispatch(Cli &c)
{
	const std::string &cmd = c.args.words[0];
	if (!c.args.data_dir.empty())
		if (auto s = make_data_dir(c.args.data_dir); !s)
			return c.fail_status(s);
	if (cmd == "serve")
		return cmd_serve(c);
	auto opened = loy::central::open_store(c.args.data_dir, c.args.database);
	if (!opened)
		return c.fail_status(opened.status());
	loy::central::Store &store = **opened;
	if (cmd == "pki")
		return cmd_pki(c, store);
	if (cmd == "program")
		return cmd_program(c, store);
	if (cmd == "enroll" || cmd == "block" || cmd == "balance")
		return cmd_card(c, store, cmd);
	if (cmd == "segment")
		return cmd_segment(c, store);
	if (cmd == "report")
		return cmd_report(c, store);
	if (cmd == "settlement")
		return cmd_settlement(c, store);
	if (cmd == "fraud")
		return cmd_fraud(c, store);
	if (cmd == "statement")
		return cmd_statement(c, store);
	if (cmd == "admin")
		return cmd_admin(c, store);
	return c.bad_args("unknown command \"" + cmd + "\"");
}

} // namespace

int main(int argc, char **argv)
{
	Cli c;
	if (int rc = loy::cli::check_command_line(c, argc, argv, usage, true); rc >= 0)
		return rc;
	try {
		return dispatch(c);
	} catch (const std::exception &e) {
		return c.internal(e.what());
	}
}
