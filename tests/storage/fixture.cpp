// Shared fixtures of the storage tests (see fixture.hpp).
#include "fixture.hpp"

#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "base/timeutil.hpp"

namespace storage_test {

std::string luhn_complete(const std::string &prefix)
{
	// The check digit makes the sum of the whole number, doubling every
	// second digit from the right, a multiple of 10.
	int sum = 0;
	bool dbl = true;
	for (size_t i = prefix.size(); i-- > 0;) {
		int d = prefix[i] - '0';
		if (dbl) {
			d *= 2;
			if (d > 9)
				d -= 9;
		}
		sum += d;
		dbl = !dbl;
	}
	return prefix + static_cast<char>('0' + (10 - sum % 10) % 10);
}

std::string read_file(const std::string &path)
{
	std::ifstream in(path, std::ios::binary);
	if (!in)
		throw std::runtime_error("cannot read " + path);
	std::ostringstream ss;
	ss << in.rdbuf();
	return ss.str();
}

void write_file(const std::string &path, const std::string &bytes)
{
	std::ofstream out(path, std::ios::binary | std::ios::trunc);
	out << bytes;
	if (!out)
		throw std::runtime_error("cannot write " + path);
}

bool file_exists(const std::string &path)
{
	struct stat st;
	return ::stat(path.c_str(), &st) == 0;
}

const std::string &program_json()
{
	static const std::string text = read_file(LOYALTY_EXAMPLES "/programs/cafe-rewards.json");
	return text;
}

std::string basket(const std::string &receipt_id, const std::string &at, const std::vector<L> &lines)
{
	Json doc;
	doc["receipt_id"] = receipt_id;
	doc["at"] = at;
	doc["lines"] = Json::array();
	for (const auto &l : lines)
		doc["lines"].push_back(Json{{"sku", l.sku},
					    {"category", l.category},
					    {"qty", l.qty},
					    {"unit_price", l.unit_price},
					    {"discount", l.discount}});
	return doc.dump();
}

std::string day_at(int day)
{
	return loy::format_date(loy::days_from_civil(2026, 11, 2) + day) + "T10:15:00+01:00";
}

int64_t utc_of(const std::string &at, int64_t later_s)
{
	auto t = loy::parse_timestamp(at);
	if (!t)
		throw std::runtime_error("bad timestamp " + at);
	return t->utc_s + later_s;
}

std::unique_ptr<loy::Terminal> open_terminal(const std::string &dir)
{
	auto t = loy::Terminal::open(dir);
	INFO(t.status().message());
	REQUIRE(t);
	return std::move(t).value();
}

std::unique_ptr<loy::Terminal> make_terminal(const std::string &dir)
{
	loy::TerminalSetup setup;
	setup.terminal_id = "T1";
	setup.store = "S1";
	const int64_t now = utc_of(day_at(0), -3600);
	loy::Status s = loy::Terminal::init(dir, setup, now);
	INFO(s.message());
	REQUIRE(s.is_ok());
	auto t = open_terminal(dir);
	auto loaded = t->program_load(program_json(), now);
	INFO(loaded.status().message());
	REQUIRE(loaded);
	return t;
}

Json ok_json(const loy::Result<std::string> &r)
{
	INFO(loy::code_name(r.status().code()) << ": " << r.status().message());
	REQUIRE(r);
	return Json::parse(*r);
}

Json must(const loy::Result<std::string> &r)
{
	if (!r)
		throw std::runtime_error(std::string(loy::code_name(r.status().code())) + ": " +
					 r.status().message());
	return Json::parse(*r);
}

loy::Ledger::Verdict verified(loy::Terminal &t)
{
	auto v = t.verify();
	REQUIRE(v);
	INFO(v->problem);
	CHECK(v->ok);
	return *v;
}

int64_t balance_of(loy::Terminal &t, const char *card, int64_t now)
{
	Json b = ok_json(t.balance(card, now));
	return b["balance"].is_null() ? 0 : b["balance"].get<int64_t>();
}

void build_mixed_ledger(loy::Terminal &t, int checkouts)
{
	const char *const cards[] = {card_a, card_b, card_c};
	for (const char *card : cards)
		ok_json(t.enroll(card, utc_of(day_at(0))));
	for (int i = 0; i < checkouts; i++) {
		const char *card = cards[i % 3];
		const std::string at = day_at(i);
		std::vector<L> lines;
		switch (i % 4) {
		case 0: lines = {coffee, pastry}; break;
		case 1: lines = {beans, coffee}; break;
		case 2: lines = {coffee, pastry, tobacco}; break;
		default: lines = {beans, pastry}; break;
		}
		const bool has_coffee = i % 4 != 3;
		const int64_t now = utc_of(at);
		const int64_t balance = balance_of(t, card, now);
		loy::Redemption r;
		if (i % 5 == 3 && balance >= 100)
			r = loy::Redemption::of_points(100);
		else if (i % 7 == 6 && has_coffee && balance >= 300)
			r = loy::Redemption::of_reward("free-coffee");
		const std::string id = fmt::format("R-{}", i);
		ok_json(t.checkout(card, basket(id, at, lines), r, now));
		if (i % 6 == 2)
			ok_json(t.refund(id, {{"COF-01", 1}}, now + 60));
		if (i % 9 == 8)
			ok_json(t.refund(fmt::format("R-{}", i - 1), {}, now + 120));
	}
}

RawDb::RawDb(const std::string &path)
{
	int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr);
	if (rc != SQLITE_OK) {
		std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
		sqlite3_close_v2(db_);
		db_ = nullptr;
		throw std::runtime_error("open " + path + ": " + msg);
	}
	sqlite3_busy_timeout(db_, 5000);
}

RawDb::~RawDb() { sqlite3_close_v2(db_); }

void RawDb::exec(const std::string &sql)
{
	char *err = nullptr;
	if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
		std::string msg = err ? err : "?";
		sqlite3_free(err);
		throw std::runtime_error(sql + ": " + msg);
	}
}

std::vector<std::vector<std::string>> RawDb::rows(const std::string &sql)
{
	sqlite3_stmt *st = nullptr;
	if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
		throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
	std::vector<std::vector<std::string>> out;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		std::vector<std::string> row;
		for (int c = 0; c < sqlite3_column_count(st); c++) {
			if (sqlite3_column_type(st, c) == SQLITE_BLOB) {
				const auto *p = static_cast<const uint8_t *>(sqlite3_column_blob(st, c));
				std::string hex;
				for (int i = 0; i < sqlite3_column_bytes(st, c); i++)
					hex += fmt::format("{:02x}", p[i]);
				row.push_back("x'" + hex + "'");
			} else if (sqlite3_column_type(st, c) == SQLITE_NULL) {
				row.push_back("NULL");
			} else {
				const auto *p = sqlite3_column_text(st, c);
				row.emplace_back(reinterpret_cast<const char *>(p),
						 static_cast<size_t>(sqlite3_column_bytes(st, c)));
			}
		}
		out.push_back(std::move(row));
	}
	std::string msg = sqlite3_errmsg(db_);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		throw std::runtime_error(sql + ": " + msg);
	return out;
}

int64_t RawDb::integer(const std::string &sql)
{
	auto r = rows(sql);
	if (r.size() != 1 || r[0].empty())
		throw std::runtime_error(sql + ": expected one value");
	return std::stoll(r[0][0]);
}

std::string RawDb::text(const std::string &sql)
{
	auto r = rows(sql);
	if (r.size() != 1 || r[0].empty())
		throw std::runtime_error(sql + ": expected one value");
	return r[0][0];
}

std::string RawDb::blob(const std::string &sql)
{
	sqlite3_stmt *st = nullptr;
	if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
		throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
	std::string out;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		throw std::runtime_error(sql + ": no row");
	}
	const auto *p = static_cast<const char *>(sqlite3_column_blob(st, 0));
	out.assign(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(st, 0)));
	sqlite3_finalize(st);
	return out;
}

std::string ledger_path(const std::string &dir) { return dir + "/ledger.db"; }

std::vector<int64_t> journal_seqs(const std::string &dir)
{
	RawDb db(ledger_path(dir));
	std::vector<int64_t> seqs;
	for (const auto &r : db.rows("SELECT seq FROM journal ORDER BY seq"))
		seqs.push_back(std::stoll(r[0]));
	return seqs;
}

int64_t count_kind(const std::string &dir, const std::string &kind)
{
	RawDb db(ledger_path(dir));
	return db.integer("SELECT count(*) FROM journal WHERE kind = '" + kind + "'");
}

std::string ChildResult::describe() const
{
	std::string how = exited ? fmt::format("child exited {}", code)
				 : fmt::format("child killed by signal {} ({})", signal, strsignal(signal));
	return how + (out.empty() ? "" : "; it reported:\n" + out);
}

void Report::line(const std::string &text) const
{
	std::string l = text + "\n";
	const char *p = l.data();
	size_t left = l.size();
	while (left > 0) {
		ssize_t n = ::write(fd_, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		left -= static_cast<size_t>(n);
	}
}

Child start_child(const std::function<int(const Report &)> &fn)
{
	int fds[2];
	if (::pipe(fds) != 0)
		throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
	// Nothing buffered in the parent may be written twice.
	std::fflush(nullptr);
	pid_t pid = ::fork();
	if (pid < 0)
		throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
	if (pid == 0) {
		::close(fds[0]);
		Report rep(fds[1]);
		int code = 97;
		try {
			code = fn(rep);
		} catch (const std::exception &e) {
			rep.line(std::string("exception: ") + e.what());
			code = 98;
		} catch (...) {
			rep.line("exception of unknown type (a Catch assertion in the child?)");
			code = 98;
		}
		::close(fds[1]);
		::_exit(code);
	}
	::close(fds[1]);
	Child c;
	c.pid = pid;
	c.fd = fds[0];
	return c;
}

bool child_running(Child &c)
{
	if (c.reaped)
		return false;
	pid_t r = ::waitpid(c.pid, &c.status, WNOHANG);
	if (r == c.pid)
		c.reaped = true;
	return !c.reaped;
}

ChildResult finish_child(Child &c)
{
	ChildResult res;
	char buf[4096];
	for (;;) {
		ssize_t n = ::read(c.fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		res.out.append(buf, static_cast<size_t>(n));
	}
	::close(c.fd);
	if (!c.reaped) {
		while (::waitpid(c.pid, &c.status, 0) < 0 && errno == EINTR) {
		}
		c.reaped = true;
	}
	if (WIFEXITED(c.status)) {
		res.exited = true;
		res.code = WEXITSTATUS(c.status);
	} else if (WIFSIGNALED(c.status)) {
		res.signal = WTERMSIG(c.status);
	}
	return res;
}

ChildResult run_child(const std::function<int(const Report &)> &fn)
{
	Child c = start_child(fn);
	return finish_child(c);
}

} // namespace storage_test
