// Shared fixtures of the storage tests: temporary data dirs, baskets, a raw
// SQLite handle for tampering, and forked children whose crashes are results.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/results.hpp"
#include "storage/terminal.hpp"
#include "support/tmpdir.hpp"

struct sqlite3;

namespace storage_test {

using Json = nlohmann::json;

// Valid Luhn numbers; the last one is short (11 digits) but within the
// program's 8..19.
inline const char *const card_a = "6280001234567895";
inline const char *const card_b = "4539578763621486";
inline const char *const card_c = "79927398713";

// `prefix` followed by the Luhn check digit that makes it valid.
std::string luhn_complete(const std::string &prefix);

// A fresh directory, removed with everything in it at scope exit; data()
// is the data dir inside it (tests/support/tmpdir.hpp).
using test_support::TempDir;

std::string read_file(const std::string &path);
void write_file(const std::string &path, const std::string &bytes);
bool file_exists(const std::string &path);

// The cafe-rewards example program (examples/programs/cafe-rewards.json).
const std::string &program_json();

struct L {
	const char *sku;
	const char *category;
	int64_t qty;
	int64_t unit_price;
	int64_t discount;
};
inline const L coffee{"COF-01", "coffee", 2, 350, 0};
inline const L pastry{"CRS-02", "pastry", 3, 250, 50};
inline const L beans{"BEAN-1K", "beans", 2, 1890, 190};
inline const L tobacco{"TAB-07", "tobacco", 1, 890, 0};

std::string basket(const std::string &receipt_id, const std::string &at, const std::vector<L> &lines);
// "2026-11-DD..." style local time of the i-th day after 2026-11-02 (a
// Monday), at 10:15 +01:00: spreads receipts over days so that the offline
// daily redemption cap does not interfere unless a test wants it to.
std::string day_at(int day);
// The UTC seconds of an RFC 3339 time, plus `later_s`: the terminal's clock.
int64_t utc_of(const std::string &at, int64_t later_s = 60);

// Initialises `dir` as terminal T1 of store S1 with the example program
// installed, and returns it open. REQUIREs success.
std::unique_ptr<loy::Terminal> make_terminal(const std::string &dir);
// Opens an initialised dir; REQUIREs success.
std::unique_ptr<loy::Terminal> open_terminal(const std::string &dir);

// A Terminal result as the JSON text the C API shows for it (cli.md's,
// api/results.hpp), or its failure.
template <class T> loy::Result<std::string> as_text(const loy::Result<T> &r)
{
	if (!r)
		return r.status();
	return loy::api::to_json(*r).dump();
}

// Unwraps a Terminal result as JSON, REQUIRE-ing success (message shown).
Json ok_json(const loy::Result<std::string> &r);
template <class T> Json ok_json(const loy::Result<T> &r) { return ok_json(as_text(r)); }

// The same for forked children, where a Catch assertion must not unwind:
// a failure throws std::runtime_error naming the code.
Json must(const loy::Result<std::string> &r);
template <class T> Json must(const loy::Result<T> &r) { return must(as_text(r)); }

// The terminal's verify(), REQUIRE-ing an answer and CHECK-ing that it is ok
// (the problem shown).
loy::Ledger::Verdict verified(loy::Terminal &t);

// A balance of `card` as the terminal reports it (0 when unknown/null).
int64_t balance_of(loy::Terminal &t, const char *card, int64_t now);

// About 50 journal entries of every kind: enrolments, checkouts with and
// without redemptions, a reward, partial and full refunds, over three cards.
void build_mixed_ledger(loy::Terminal &t, int checkouts);

// A raw connection to a ledger.db, for looking and tampering behind the
// library's back. Failures throw std::runtime_error, so that it can be used
// in forked children too.
class RawDb {
public:
	explicit RawDb(const std::string &path);
	~RawDb();
	RawDb(const RawDb &) = delete;
	RawDb &operator=(const RawDb &) = delete;
	void exec(const std::string &sql);
	int64_t integer(const std::string &sql);
	std::string text(const std::string &sql);
	std::string blob(const std::string &sql);
	// Every row, every column as text (blobs as hex), for whole-table
	// comparisons.
	std::vector<std::vector<std::string>> rows(const std::string &sql);
	sqlite3 *handle() const { return db_; }

private:
	sqlite3 *db_ = nullptr;
};

std::string ledger_path(const std::string &dir);
// seq of every journal entry, in order.
std::vector<int64_t> journal_seqs(const std::string &dir);
int64_t count_kind(const std::string &dir, const std::string &kind);

// What became of a forked child.
struct ChildResult {
	bool exited = false;
	int code = -1;     // exit status when exited
	int signal = 0;    // terminating signal otherwise
	std::string out;   // what it wrote to its report pipe
	std::string describe() const;
};

// Writes lines to the parent from a forked child.
class Report {
public:
	explicit Report(int fd) : fd_(fd) {}
	void line(const std::string &text) const;

private:
	int fd_;
};

// Runs `fn` in a forked child and waits for it. The child never returns into
// Catch: an exception becomes exit 98, a signal stays a signal. Open no
// SQLite connection to a file the child uses across the fork.
ChildResult run_child(const std::function<int(const Report &)> &fn);

// Starts `fn` in a forked child without waiting; `finish` collects it.
struct Child {
	int pid = -1;
	int fd = -1;
	bool reaped = false;
	int status = 0;
};
Child start_child(const std::function<int(const Report &)> &fn);
ChildResult finish_child(Child &c);
bool child_running(Child &c);

} // namespace storage_test
