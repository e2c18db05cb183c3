// Storage faults provoked for real in forked children: disk full (RLIMIT_FSIZE),
// read-only media, a process killed mid-write, garbage in the ledger file.
#include <catch2/catch.hpp>

#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "base/status.hpp"
#include "fixture.hpp"
#include "storage/terminal.hpp"

using namespace storage_test;
using loy::Code;

namespace {

constexpr int64_t wal_frame_bytes = 24 + 4096; // frame header + SQLite's default page

int64_t size_of(const std::string &path)
{
	struct stat st;
	return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : -1;
}

void set_file_limit(rlim_t bytes)
{
	// The soft limit only: the child can lift it again, as freeing space would.
	struct rlimit rl;
	::getrlimit(RLIMIT_FSIZE, &rl);
	rl.rlim_cur = bytes;
	if (::setrlimit(RLIMIT_FSIZE, &rl) != 0)
		throw std::runtime_error(std::string("setrlimit: ") + std::strerror(errno));
}

template <class T> std::string code_of(const loy::Result<T> &r)
{
	return r ? "ok" : loy::code_name(r.status().code());
}

std::string code_of(const loy::Status &s) { return s.is_ok() ? "ok" : loy::code_name(s.code()); }

// key=value lines from a child's report.
std::string field(const std::string &out, const std::string &key)
{
	std::istringstream in(out);
	std::string line;
	while (std::getline(in, line))
		if (line.rfind(key + "=", 0) == 0)
			return line.substr(key.size() + 1);
	return "";
}

// In a forked child: opens `dir` and reports how (open=, open_message=);
// null when it did not open.
std::unique_ptr<loy::Terminal> open_reported(const Report &rep, const std::string &dir)
{
	auto t = loy::Terminal::open(dir);
	rep.line("open=" + code_of(t.status()));
	rep.line("open_message=" + t.status().message());
	if (!t)
		return nullptr;
	return std::move(t).value();
}

// What verify() answered, as a child reports it: ok, bad or the error's code.
std::string verdict_of(const loy::Result<loy::Ledger::Verdict> &v)
{
	return v ? (v->ok ? "ok" : "bad") : loy::code_name(v.status().code());
}

// A terminal with A enrolled and one checkout, closed: the start of each
// fault row.
void prepare(const std::string &dir)
{
	auto t = make_terminal(dir);
	ok_json(t->enroll(card_a, utc_of(day_at(0))));
	ok_json(t->checkout(card_a, basket("R-0", day_at(0), {beans, coffee, pastry}), loy::Redemption::none(),
			    utc_of(day_at(0))));
}

} // namespace

TEST_CASE("disk full during a write: Code::storage, nothing half-written, the next write works")
{
	enum class Op { checkout, refund, enroll, program_load };
	struct Row {
		const char *name;
		Op op;
		int64_t room; // bytes the WAL may still grow by
		bool retry_in_child; // lift the limit and retry on the same handle
	};
	const Row rows[] = {
		{"checkout, no room at all", Op::checkout, 0, false},
		{"checkout, room for one page", Op::checkout, wal_frame_bytes + 10, false},
		{"checkout, room for two pages", Op::checkout, 2 * wal_frame_bytes + 10, false},
		{"checkout, then space freed: the same handle retries", Op::checkout, wal_frame_bytes + 10, true},
		{"refund, no room at all", Op::refund, 0, false},
		{"refund, room for one page", Op::refund, wal_frame_bytes + 10, false},
		{"enroll, no room at all", Op::enroll, 0, false},
		{"enroll, room for one page", Op::enroll, wal_frame_bytes + 10, true},
		{"program load, no room at all", Op::program_load, 0, false},
		{"program load, then space freed: the same handle retries", Op::program_load, 0, true},
	};
	Json v8 = Json::parse(program_json());
	v8["version"] = 8;
	v8["earn"]["points"] = 2;
	const std::string program_v8 = v8.dump();
	for (const Row &row : rows) {
		CAPTURE(row.name);
		TempDir tmp;
		prepare(tmp.data());
		const int64_t entries_before = static_cast<int64_t>(journal_seqs(tmp.data()).size());
		const std::string at = day_at(1);
		const int64_t now = utc_of(at);
		auto op = [&](loy::Terminal &t) -> loy::Result<std::string> {
			switch (row.op) {
			case Op::checkout:
				return as_text(t.checkout(card_a, basket("R-2", at, {beans, coffee}),
							  loy::Redemption::none(), now));
			case Op::refund: return as_text(t.refund("R-0", {{"COF-01", 1}}, now));
			case Op::enroll: return as_text(t.enroll(card_b, now));
			case Op::program_load: return as_text(t.program_load(program_v8, now));
			}
			return loy::Status(Code::internal, "?");
		};
		ChildResult child = run_child([&](const Report &rep) {
			std::signal(SIGXFSZ, SIG_IGN);
			auto t = loy::Terminal::open(tmp.data());
			if (!t)
				throw std::runtime_error("open: " + t.status().message());
			// A first write, so that the WAL exists and holds frames.
			must(t.value()->checkout(card_a, basket("R-1", at, {coffee}), loy::Redemption::none(), now));
			const int64_t wal = size_of(tmp.data() + "/ledger.db-wal");
			rep.line(fmt::format("wal={}", wal));
			set_file_limit(static_cast<rlim_t>(wal + row.room));
			auto r = op(*t.value());
			rep.line("op=" + code_of(r));
			rep.line("message=" + r.status().message());
			rep.line(fmt::format("wal_after={}", size_of(tmp.data() + "/ledger.db-wal")));
			// Still full: another write fails the same way; reads still work.
			rep.line("second=" + code_of(t.value()->checkout(card_a, basket("R-3", at, {pastry}),
									 loy::Redemption::none(), now)));
			rep.line("balance=" + code_of(t.value()->balance(card_a, now)));
			if (row.retry_in_child) {
				set_file_limit(RLIM_INFINITY);
				rep.line("retry=" + code_of(op(*t.value())));
				auto v = t.value()->verify();
				rep.line(std::string("retry_verify=") + (v && v->ok ? "ok" : "bad"));
			}
			// The terminal closes with the limit still in place (when not
			// lifted): its checkpoint may fail too.
			return 0;
		});
		INFO(child.describe());
		REQUIRE(child.exited);
		REQUIRE(child.code == 0);
		CHECK(field(child.out, "op") == "storage");
		CHECK(field(child.out, "second") == "storage");
		CHECK(field(child.out, "balance") == "ok");
		if (row.retry_in_child) {
			CHECK(field(child.out, "retry") == "ok");
			CHECK(field(child.out, "retry_verify") == "ok");
		}

		// Space back: the ledger verifies, holds the first write and, unless
		// the child retried, nothing of the failed one.
		auto t = open_terminal(tmp.data());
		const auto v = verified(*t);
		INFO(v.problem);
		// A program version is a setting, not a journal entry.
		const bool journaled_retry = row.retry_in_child && row.op != Op::program_load;
		const int64_t expect = entries_before + 1 + (journaled_retry ? 1 : 0);
		CHECK(v.entries == expect);
		CHECK(static_cast<int64_t>(journal_seqs(tmp.data()).size()) == expect);
		RawDb db(ledger_path(tmp.data()));
		CHECK(db.integer("SELECT count(*) FROM receipts WHERE receipt_id IN ('R-2', 'R-3')") ==
		      (row.retry_in_child && row.op == Op::checkout ? 1 : 0));
		CHECK(ok_json(t->status())["program"]["version"] ==
		      (row.op == Op::program_load && row.retry_in_child ? 8 : 7));
		// The write that failed now works (or replays, when the child retried).
		Json again = ok_json(op(*t));
		if (row.op == Op::program_load)
			CHECK(again["loaded"] == !row.retry_in_child);
		if (row.op == Op::checkout)
			CHECK(again["replayed"] == row.retry_in_child);
		if (row.op == Op::enroll)
			CHECK(again["enrolled"] == !row.retry_in_child);
		ok_json(t->checkout(card_a, basket("R-4", day_at(2), {coffee}), loy::Redemption::none(),
				    utc_of(day_at(2))));
		verified(*t);
	}
}

TEST_CASE("disk full during init: an init that failed can be run again")
{
	// Below the 32 KiB of the WAL index nothing can open; above it, one row
	// per WAL frame, so that init runs out of room at each of its writes in
	// turn, until one limit is enough.
	std::vector<rlim_t> limits = {0, 64, 4096};
	for (rlim_t k = 0; k < 24; k++)
		limits.push_back(32768 + k * static_cast<rlim_t>(wal_frame_bytes));
	bool succeeded = false;
	for (rlim_t limit : limits) {
		if (succeeded)
			break;
		CAPTURE(limit);
		TempDir tmp;
		ChildResult child = run_child([&](const Report &rep) {
			std::signal(SIGXFSZ, SIG_IGN);
			set_file_limit(limit);
			loy::TerminalSetup s;
			s.terminal_id = "T1";
			s.store = "S1";
			rep.line("init=" + code_of(loy::Terminal::init(tmp.data(), s, utc_of(day_at(0)))));
			return 0;
		});
		INFO(child.describe());
		REQUIRE(child.exited);
		REQUIRE(child.code == 0);
		const std::string init = field(child.out, "init");
		CHECK((init == "ok" || init == "storage"));
		succeeded = init == "ok";
		auto t = loy::Terminal::open(tmp.data());
		if (init == "ok") {
			INFO(t.status().message());
			CHECK(t);
		} else {
			// Not a terminal yet (or a storage error), never half of one.
			INFO(t.status().message());
			CHECK_FALSE(t);
		}
		t = loy::Result<std::unique_ptr<loy::Terminal>>(loy::Status(Code::internal, "closed"));
		auto made = make_terminal(tmp.data());
		ok_json(made->checkout(card_a, basket("R-1", day_at(0), {coffee}), loy::Redemption::none(),
				       utc_of(day_at(0))));
		verified(*made);
	}
	CHECK(succeeded);
}

TEST_CASE("read-only media: reads work or fail as storage, writes fail as storage")
{
	TempDir tmp;
	prepare(tmp.data());
	const auto before = RawDb(ledger_path(tmp.data())).rows("SELECT seq, hash FROM journal ORDER BY seq");
	ChildResult child = run_child([&](const Report &rep) {
		// A private mount namespace: the read-only bind mount of the data
		// dir is seen by this child alone and goes away with it.
		if (::unshare(CLONE_NEWNS) != 0) {
			rep.line(std::string("skip=unshare: ") + std::strerror(errno));
			return 0;
		}
		if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
		    ::mount(tmp.data().c_str(), tmp.data().c_str(), nullptr, MS_BIND, nullptr) != 0 ||
		    ::mount(nullptr, tmp.data().c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0) {
			rep.line(std::string("skip=mount: ") + std::strerror(errno));
			return 0;
		}
		if (::access((tmp.data() + "/ledger.db").c_str(), W_OK) == 0 || errno != EROFS) {
			rep.line("skip=the bind mount is not read-only");
			return 0;
		}
		auto t = open_reported(rep, tmp.data());
		if (!t)
			return 0;
		loy::Terminal &term = *t;
		const int64_t now = utc_of(day_at(1));
		rep.line("balance=" + code_of(term.balance(card_a, now)));
		rep.line("status=" + code_of(term.status()));
		auto v = term.verify();
		rep.line("verify=" + verdict_of(v));
		auto c = term.checkout(card_a, basket("R-1", day_at(1), {coffee}), loy::Redemption::none(), now);
		rep.line("checkout=" + code_of(c));
		rep.line("checkout_message=" + c.status().message());
		rep.line("enroll=" + code_of(term.enroll(card_b, now)));
		rep.line("refund=" + code_of(term.refund("R-0", {}, now)));
		return 0;
	});
	INFO(child.describe());
	REQUIRE(child.exited);
	REQUIRE(child.code == 0);
	if (!field(child.out, "skip").empty()) {
		WARN("read-only media not tested: " << field(child.out, "skip"));
		return;
	}
	const std::string open = field(child.out, "open");
	CHECK((open == "ok" || open == "storage"));
	if (open == "ok") {
		for (const char *read : {"balance", "status"}) {
			CAPTURE(read);
			const std::string got = field(child.out, read);
			CHECK((got == "ok" || got == "storage"));
		}
		for (const char *write : {"checkout", "enroll", "refund"}) {
			CAPTURE(write);
			CHECK(field(child.out, write) == "storage");
		}
	}
	// Back on writable media, nothing changed and everything works.
	auto t = open_terminal(tmp.data());
	CHECK(RawDb(ledger_path(tmp.data())).rows("SELECT seq, hash FROM journal ORDER BY seq") == before);
	ok_json(t->checkout(card_a, basket("R-1", day_at(1), {coffee}), loy::Redemption::none(),
			    utc_of(day_at(1))));
	verified(*t);
}

TEST_CASE("a process killed mid-write loses nothing it acknowledged")
{
	std::mt19937 rng(20261124);
	for (int round = 0; round < 4; round++) {
		CAPTURE(round);
		TempDir tmp;
		prepare(tmp.data());
		const int64_t entries_before = static_cast<int64_t>(journal_seqs(tmp.data()).size());
		int started[2];
		REQUIRE(::pipe(started) == 0);
		Child child = start_child([&](const Report &rep) {
			auto t = loy::Terminal::open(tmp.data());
			if (!t)
				throw std::runtime_error("open: " + t.status().message());
			for (int i = 1; i < 10000; i++) {
				must(t.value()->checkout(card_a, basket(fmt::format("K-{}", i), day_at(i % 20), {coffee}),
							 loy::Redemption::none(), utc_of(day_at(i % 20))));
				rep.line(fmt::format("done={}", i));
				if (i == 1 && ::write(started[1], "x", 1) != 1)
					return 2;
			}
			return 0;
		});
		// Killed at a random moment after its first acknowledged checkout.
		char c;
		CHECK(::read(started[0], &c, 1) == 1);
		::close(started[0]);
		::close(started[1]);
		const auto delay = std::chrono::milliseconds(5 + static_cast<int>(rng() % 150));
		std::this_thread::sleep_for(delay);
		::kill(child.pid, SIGKILL);
		ChildResult res = finish_child(child);
		INFO(res.describe().substr(0, 300));
		CHECK(res.signal == SIGKILL);
		int acknowledged = 0;
		std::istringstream in(res.out);
		for (std::string line; std::getline(in, line);)
			if (line.rfind("done=", 0) == 0)
				acknowledged = std::stoi(line.substr(5));
		REQUIRE(acknowledged > 0);

		auto t = open_terminal(tmp.data());
		const auto v = verified(*t);
		INFO(v.problem);
		// Every acknowledged checkout is there; the one in flight may be.
		const int64_t recorded = count_kind(tmp.data(), "checkout") - 1;
		CHECK(recorded >= acknowledged);
		CHECK(recorded <= acknowledged + 1);
		CHECK(v.entries == entries_before + recorded);
		for (int i = 1; i <= acknowledged; i++) {
			Json r = ok_json(t->checkout(card_a, basket(fmt::format("K-{}", i), day_at(i % 20), {coffee}),
						     loy::Redemption::none(), utc_of(day_at(i % 20))));
			if (r["replayed"] != true) {
				FAIL_CHECK("acknowledged checkout K-" << i << " was lost");
				break;
			}
		}
	}
}

TEST_CASE("garbage in the ledger: Code::storage or a failed verification, never a crash")
{
	TempDir base;
	{
		auto t = make_terminal(base.data());
		build_mixed_ledger(*t, 36);
	}
	int64_t page_size = 0, pages = 0;
	std::vector<int64_t> journal_leaves;
	{
		RawDb db(ledger_path(base.data()));
		page_size = db.integer("PRAGMA page_size");
		pages = db.integer("PRAGMA page_count");
		REQUIRE(db.integer("PRAGMA freelist_count") == 0);
		try {
			for (const auto &r : db.rows("SELECT pageno FROM dbstat WHERE name = 'journal' AND "
						     "pagetype = 'leaf' ORDER BY pageno"))
				journal_leaves.push_back(std::stoll(r[0]));
		} catch (const std::exception &) {
			// No dbstat in this SQLite: that row falls back to the middle page.
		}
	}
	REQUIRE(pages > 8);
	REQUIRE(size_of(ledger_path(base.data())) == pages * page_size);
	const int64_t mid_page = pages / 2; // 0-based page index
	const int64_t journal_leaf =
		journal_leaves.empty() ? mid_page : journal_leaves[journal_leaves.size() / 2] - 1;

	std::mt19937 rng(4242);
	auto random_bytes = [&](size_t n) {
		std::string s(n, '\0');
		for (auto &c : s)
			c = static_cast<char>(rng() & 0xff);
		return s;
	};
	auto overwrite = [](const std::string &dir, int64_t offset, const std::string &bytes) {
		std::string file = read_file(ledger_path(dir));
		REQUIRE(offset + static_cast<int64_t>(bytes.size()) <= static_cast<int64_t>(file.size()));
		file.replace(static_cast<size_t>(offset), bytes.size(), bytes);
		write_file(ledger_path(dir), file);
	};
	// Damage done by an SQL statement on the ledger.
	auto sql = [](const char *statement) {
		return [statement](const std::string &dir) { RawDb(ledger_path(dir)).exec(statement); };
	};
	struct Row {
		const char *name;
		std::function<void(const std::string &dir)> damage;
		// The library may also refuse to open the dir as not a terminal.
		bool bad_argument_ok;
	};
	const Row rows[] = {
		{"a page in the middle: random bytes",
		 [&](const std::string &d) {
			 overwrite(d, mid_page * page_size, random_bytes(static_cast<size_t>(page_size)));
		 },
		 false},
		{"a page in the middle: zeros",
		 [&](const std::string &d) {
			 overwrite(d, mid_page * page_size, std::string(static_cast<size_t>(page_size), '\0'));
		 },
		 false},
		{"64 random bytes at the end of a journal page (cell payload)",
		 [&](const std::string &d) {
			 overwrite(d, (journal_leaf + 1) * page_size - 64, random_bytes(64));
		 },
		 false},
		// (Within a page's cells: 16 random bytes in a page's unused gap
		// change nothing that anyone reads, and nothing can find them.)
		{"16 bytes among the journal's cells in the middle of the file",
		 [&](const std::string &d) { overwrite(d, journal_leaf * page_size + page_size - 300, random_bytes(16)); },
		 false},
		{"the database header", [&](const std::string &d) { overwrite(d, 16, random_bytes(84)); }, false},
		{"the schema page", [&](const std::string &d) { overwrite(d, 100, random_bytes(static_cast<size_t>(page_size) - 100)); },
		 false},
		{"the file cut in half",
		 [&](const std::string &d) {
			 REQUIRE(::truncate(ledger_path(d).c_str(), pages / 2 * page_size) == 0);
		 },
		 false},
		{"the file emptied (0 bytes) while the keys remain",
		 [&](const std::string &d) { REQUIRE(::truncate(ledger_path(d).c_str(), 0) == 0); }, false},
		{"meta acked_through not a number",
		 sql("UPDATE meta SET value = 'x' WHERE key = 'acked_through'"), false},
		{"meta program_version not a number",
		 sql("UPDATE meta SET value = 'seven' WHERE key = 'program_version'"), false},
		{"the stored program document",
		 sql("UPDATE programs SET document = '{\"program\":'"), false},
		{"a receipt naming an entry that does not exist",
		 sql("UPDATE receipts SET seq = 9999, last_seq = 9999 WHERE receipt_id = 'R-4'"), false},
		{"a journal text column holding a blob",
		 sql("UPDATE journal SET kind = X'00FF00' WHERE seq = 10"), false},
	};
	for (const Row &row : rows) {
		CAPTURE(row.name);
		TempDir tmp;
		std::filesystem::copy(base.data(), tmp.data(), std::filesystem::copy_options::recursive);
		row.damage(tmp.data());
		ChildResult child = run_child([&](const Report &rep) {
			auto t = open_reported(rep, tmp.data());
			if (!t)
				return 0;
			loy::Terminal &term = *t;
			auto v = term.verify();
			rep.line("verify=" + verdict_of(v));
			if (v)
				rep.line("problem=" + v->problem);
			else
				rep.line("problem=" + v.status().message());
			// The other operations on the damaged ledger must not crash
			// either; what they return is not checked.
			const int64_t now = utc_of(day_at(50));
			rep.line("balance=" + code_of(term.balance(card_a, now)));
			rep.line("checkout=" + code_of(term.checkout(card_a, basket("R-new", day_at(50), {coffee}),
								     loy::Redemption::none(), now)));
			rep.line("refund=" + code_of(term.refund("R-4", {}, now)));
			rep.line("status=" + code_of(term.status()));
			return 0;
		});
		INFO(child.describe());
		CHECK(child.exited);
		if (!child.exited)
			continue;
		CHECK(child.code == 0);
		const std::string open = field(child.out, "open"), verify = field(child.out, "verify");
		if (open == "ok")
			CHECK((verify == "bad" || verify == "storage"));
		else if (row.bad_argument_ok)
			CHECK((open == "storage" || open == "bad_argument"));
		else
			CHECK(open == "storage");
	}
}

// A busy terminal's ledger passes 2 GiB (~1 M entries at today's entry
// size). On a 32-bit terminal (armhf) stat(2) and open(2) of such a file
// fail with EOVERFLOW unless the program is built with large-file support
// (_FILE_OFFSET_BITS=64, set for every target in CMakeLists.txt). The file
// is made sparse: SQLite reads its size from the database header, so the
// tail past it is never read, and the test takes no disk space.
TEST_CASE("a ledger file past 2 GiB opens, takes a checkout and verifies (large files on 32-bit)")
{
	static_assert(sizeof(off_t) == 8, "build with _FILE_OFFSET_BITS=64");
	TempDir tmp;
	const int64_t now = utc_of(day_at(1));
	{
		auto t = make_terminal(tmp.data());
		ok_json(t->checkout(card_a, basket("R-1", day_at(1), {coffee}), loy::Redemption::none(), now));
	}
	const off_t past_2gib = (off_t{1} << 31) + 4096;
	REQUIRE(::truncate(ledger_path(tmp.data()).c_str(), past_2gib) == 0);
	REQUIRE(size_of(ledger_path(tmp.data())) == past_2gib);

	auto t = open_terminal(tmp.data());
	Json r = ok_json(t->checkout(card_a, basket("R-2", day_at(2), {beans}), loy::Redemption::none(), now));
	CHECK(r["earned"].get<int64_t>() > 0);
	auto v = t->verify();
	REQUIRE(v);
	CHECK(v->ok);
	CHECK(v->entries == 2);
}
