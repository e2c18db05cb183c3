// Two processes on one data dir, each with its own Terminal: concurrent writers
// all recorded gap-free, a receipt once, and readers (balance, verify) consistent.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/status.hpp"
#include "fixture.hpp"
#include "storage/terminal.hpp"

using namespace storage_test;
using loy::Code;

namespace {

// The i-th basket of a writer: varied lines, spread over days so that no
// daily cap or campaign window makes the runs differ in kind.
std::string nth_basket(const std::string &receipt_id, int i)
{
	switch (i % 4) {
	case 0: return basket(receipt_id, day_at(i % 20), {coffee, pastry});
	case 1: return basket(receipt_id, day_at(i % 20), {beans, coffee});
	case 2: return basket(receipt_id, day_at(i % 20), {coffee, pastry, tobacco});
	default: return basket(receipt_id, day_at(i % 20), {beans, pastry});
	}
}

// A one-shot signal from a child to its parent ("my terminal is open").
class Gate {
public:
	Gate()
	{
		if (::pipe(fd_) != 0)
			throw std::runtime_error("pipe");
	}
	~Gate()
	{
		::close(fd_[0]);
		::close(fd_[1]);
	}
	void open() const
	{
		char c = 1;
		if (::write(fd_[1], &c, 1) != 1)
			throw std::runtime_error("gate write");
	}
	void wait() const
	{
		char c;
		if (::read(fd_[0], &c, 1) != 1)
			throw std::runtime_error("gate read");
	}

private:
	int fd_[2];
};

// Runs `n` checkouts for `card` with ids prefix-0 … prefix-(n-1); returns
// the sum of points earned by fresh (not replayed) ones and their count.
struct Run {
	int64_t earned = 0;
	int fresh = 0;
	int replayed = 0;
	std::vector<std::string> errors;
};

Run run_checkouts(loy::Terminal &t, const std::string &prefix, int n)
{
	Run run;
	for (int i = 0; i < n; i++) {
		const std::string id = fmt::format("{}-{}", prefix, i);
		auto r = as_text(
			t.checkout(card_a, nth_basket(id, i), loy::Redemption::none(), utc_of(day_at(i % 20))));
		if (!r) {
			run.errors.push_back(fmt::format("{}: {}: {}", id, loy::code_name(r.status().code()),
							 r.status().message()));
			continue;
		}
		Json j = Json::parse(*r);
		if (j["replayed"] == true) {
			run.replayed++;
		} else {
			run.fresh++;
			run.earned += j["earned"].get<int64_t>();
		}
	}
	return run;
}

// The child's Run, as the lines it reported.
void report_run(const Report &rep, const Run &run)
{
	rep.line(fmt::format("earned {} fresh {} replayed {}", run.earned, run.fresh, run.replayed));
	for (const auto &e : run.errors)
		rep.line("error " + e);
}

Run parse_run(const std::string &out)
{
	Run run;
	std::istringstream in(out);
	std::string line;
	while (std::getline(in, line)) {
		if (line.rfind("earned ", 0) == 0) {
			std::istringstream l(line);
			std::string w;
			l >> w >> run.earned >> w >> run.fresh >> w >> run.replayed;
		} else if (line.rfind("error ", 0) == 0) {
			run.errors.push_back(line.substr(6));
		}
	}
	return run;
}

// A data dir with the program and card A enrolled, closed again: nothing of
// it is open across a fork.
void prepare(const std::string &dir)
{
	auto t = make_terminal(dir);
	ok_json(t->enroll(card_a, utc_of(day_at(0))));
}

constexpr int writes_n = 100;

// Starts a child that opens its own Terminal on `dir`, opens `ready` and
// reports the Run that `work` makes on that terminal.
Child start_writer(const std::string &dir, const Gate &ready,
		   const std::function<Run(loy::Terminal &)> &work)
{
	return start_child([&](const Report &rep) {
		auto t = loy::Terminal::open(dir);
		if (!t) {
			rep.line("error open: " + t.status().message());
			return 1;
		}
		ready.open();
		report_run(rep, work(*t.value()));
		return 0;
	});
}

// A child writing `writes_n` checkouts with ids prefix-0 … (run_checkouts).
Child start_checkouts(const std::string &dir, const Gate &ready, const char *prefix)
{
	return start_writer(dir, ready,
			    [prefix](loy::Terminal &t) { return run_checkouts(t, prefix, writes_n); });
}

// What became of `writes_n` checkouts run at once by a child (ids
// child_prefix-…) and by this process (parent_prefix-…) on a prepared dir.
struct Race {
	std::unique_ptr<loy::Terminal> t; // this process's terminal, still open
	Run mine, theirs;
	ChildResult child;
};

Race race_checkouts(const std::string &dir, const char *parent_prefix, const char *child_prefix)
{
	Gate ready;
	Child child = start_checkouts(dir, ready, child_prefix);
	Race race;
	race.t = open_terminal(dir);
	ready.wait();
	race.mine = run_checkouts(*race.t, parent_prefix, writes_n);
	race.child = finish_child(child);
	race.theirs = parse_run(race.child.out);
	return race;
}

} // namespace

TEST_CASE("two processes check out at once: every checkout recorded, gap-free")
{
	TempDir tmp;
	prepare(tmp.data());
	const Race race = race_checkouts(tmp.data(), "P", "C");
	const Run &mine = race.mine, &theirs = race.theirs;
	INFO(race.child.describe());
	REQUIRE(race.child.exited);
	CHECK(race.child.code == 0);
	CHECK(mine.errors.empty());
	for (const auto &e : mine.errors)
		UNSCOPED_INFO(e);
	CHECK(theirs.errors.empty());
	CHECK(mine.fresh == writes_n);
	CHECK(theirs.fresh == writes_n);

	CHECK(count_kind(tmp.data(), "checkout") == 2 * writes_n);
	const auto seqs = journal_seqs(tmp.data());
	REQUIRE(seqs.size() == 2 * writes_n + 1);
	for (size_t i = 0; i < seqs.size(); i++)
		CHECK(seqs[i] == static_cast<int64_t>(i + 1));
	CHECK(balance_of(*race.t, card_a, utc_of(day_at(30))) == mine.earned + theirs.earned);
	verified(*race.t);
}

TEST_CASE("two processes retry the same receipts: each recorded once")
{
	TempDir tmp;
	prepare(tmp.data());
	const Race race = race_checkouts(tmp.data(), "R", "R");
	const Run &mine = race.mine, &theirs = race.theirs;
	INFO(race.child.describe());
	REQUIRE(race.child.exited);
	CHECK(race.child.code == 0);
	CHECK(mine.errors.empty());
	CHECK(theirs.errors.empty());
	CHECK(mine.fresh + theirs.fresh == writes_n);
	CHECK(mine.replayed + theirs.replayed == writes_n);
	CHECK(count_kind(tmp.data(), "checkout") == writes_n);
	CHECK(balance_of(*race.t, card_a, utc_of(day_at(30))) == mine.earned + theirs.earned);
	verified(*race.t);
}

TEST_CASE("a balance read in one process while the other writes")
{
	TempDir tmp;
	prepare(tmp.data());
	Gate ready;
	Child child = start_checkouts(tmp.data(), ready, "W");
	auto t = open_terminal(tmp.data());
	ready.wait();
	int64_t last = 0;
	int reads = 0, errors = 0, backwards = 0;
	std::string first_error;
	const int64_t now = utc_of(day_at(30));
	while (child_running(child)) {
		auto r = as_text(t->balance(card_a, now));
		reads++;
		if (!r) {
			if (errors++ == 0)
				first_error = r.status().message();
			continue;
		}
		const int64_t b = Json::parse(*r)["balance"].get<int64_t>();
		// Only points are earned: a balance never goes back.
		if (b < last)
			backwards++;
		last = b;
	}
	ChildResult res = finish_child(child);
	INFO(res.describe());
	CHECK(res.code == 0);
	Run theirs = parse_run(res.out);
	CHECK(theirs.errors.empty());
	INFO(reads << " reads; first error: " << first_error);
	CHECK(reads > 1);
	CHECK(errors == 0);
	CHECK(backwards == 0);
	CHECK(balance_of(*t, card_a, now) == theirs.earned);
}

TEST_CASE("verify in one process while the other writes")
{
	TempDir tmp;
	{
		auto t = make_terminal(tmp.data());
		build_mixed_ledger(*t, 30);
	}
	Gate ready;
	Child child = start_checkouts(tmp.data(), ready, "W");
	auto t = open_terminal(tmp.data());
	ready.wait();
	int runs = 0, errors = 0, not_ok = 0;
	std::string first_problem;
	while (child_running(child)) {
		auto v = t->verify();
		runs++;
		if (!v) {
			if (errors++ == 0)
				first_problem = v.status().message();
		} else if (!v->ok) {
			if (not_ok++ == 0 && errors == 0)
				first_problem = fmt::format("first_bad {}: {}", v->first_bad, v->problem);
		}
	}
	ChildResult res = finish_child(child);
	INFO(res.describe());
	CHECK(res.code == 0);
	CHECK(parse_run(res.out).errors.empty());
	INFO(runs << " verifications; " << errors << " errors, " << not_ok
		  << " not ok; first: " << first_problem);
	CHECK(runs > 1);
	CHECK(errors == 0);
	CHECK(not_ok == 0);
	verified(*t);
}

TEST_CASE("a balance with pending points read while the other process writes")
{
	// With pending_days, each checkout adds its points to the member's
	// unsynced points and to its pending points alike: the available
	// balance of a member with nothing but pending points is 0 throughout,
	// and unsynced == pending in every answer read from one state.
	TempDir tmp;
	{
		auto t = make_terminal(tmp.data());
		Json doc = Json::parse(program_json());
		doc["version"] = 8;
		doc["pending_days"] = 3;
		ok_json(t->program_load(doc.dump(), utc_of(day_at(0))));
		ok_json(t->enroll(card_a, utc_of(day_at(0))));
	}
	const std::string at = day_at(5);
	const int64_t now = utc_of(at, 60);
	Gate ready;
	Child child = start_writer(tmp.data(), ready, [&](loy::Terminal &w) {
		Run run;
		for (int i = 0; i < writes_n; i++) {
			const std::string id = fmt::format("W-{}", i);
			auto r = as_text(
				w.checkout(card_a, basket(id, at, {beans, coffee}), loy::Redemption::none(), now));
			if (!r)
				run.errors.push_back(id + ": " + r.status().message());
			else
				run.earned += Json::parse(*r)["earned"].get<int64_t>();
		}
		return run;
	});
	auto t = open_terminal(tmp.data());
	ready.wait();
	int reads = 0, errors = 0, inconsistent = 0;
	std::string first;
	while (child_running(child)) {
		auto r = as_text(t->balance(card_a, now));
		reads++;
		if (!r) {
			errors++;
			continue;
		}
		Json b = Json::parse(*r);
		if (b["balance"] != 0 || b["pending"] != b["unsynced"]) {
			if (inconsistent++ == 0)
				first = *r;
		}
	}
	ChildResult res = finish_child(child);
	INFO(res.describe());
	CHECK(res.code == 0);
	Run theirs = parse_run(res.out);
	CHECK(theirs.errors.empty());
	INFO(reads << " reads; " << inconsistent << " inconsistent, first: " << first);
	CHECK(reads > 1);
	CHECK(errors == 0);
	CHECK(inconsistent == 0);
	Json last = ok_json(t->balance(card_a, now));
	CHECK(last["balance"] == 0);
	CHECK(last["pending"] == theirs.earned);
}
