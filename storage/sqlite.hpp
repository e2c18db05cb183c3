// A thin RAII layer over SQLite: one connection, prepared statements, and
// every failure as a Status with Code::storage naming the operation and
// SQLite's own message. All SQL of the project goes through Stmt.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace loy::db {

// How long a writer waits for another process's transaction before giving
// up with a storage error: long enough for a sync's batch to commit, short
// enough that a cashier is not left waiting on a stuck process.
inline constexpr int busy_timeout_ms = 5000;

class Stmt;

class Db {
public:
	Db() = default;
	~Db();
	Db(const Db &) = delete;
	Db &operator=(const Db &) = delete;

	// Opens (creating when `create`) the database file in WAL mode with
	// synchronous=FULL: a commit that returned has reached the disk.
	Status open(const std::string &path, bool create, int busy_ms = busy_timeout_ms);
	void close();
	bool is_open() const { return db_ != nullptr; }

	Status exec(const char *sql);
	// Statements are prepared once per connection and kept: a checkout runs
	// the same dozen statements every time, and parsing them is not free.
	Result<Stmt> prepare(std::string_view sql);

	// BEGIN IMMEDIATE: takes the write lock at once, so two writers queue on
	// the busy timeout instead of deadlocking on an upgrade.
	Status begin();
	Status commit();
	void rollback() noexcept;

	int64_t last_insert_rowid() const;
	Status error(const char *what) const;
	Status error(const char *what, int rc) const;
	sqlite3 *handle() const { return db_; }

private:
	friend class Stmt;
	struct Cached {
		sqlite3_stmt *stmt = nullptr;
		bool in_use = false;
	};
	sqlite3 *db_ = nullptr;
	std::map<std::string, Cached, std::less<>> cache_;
};

// Rolls back on scope exit unless committed: all of a checkout or nothing.
class Transaction {
public:
	explicit Transaction(Db &db) : db_(db) {}
	~Transaction()
	{
		if (open_)
			db_.rollback();
	}
	Transaction(const Transaction &) = delete;
	Transaction &operator=(const Transaction &) = delete;

	Status begin()
	{
		Status s = db_.begin();
		open_ = s.is_ok();
		return s;
	}
	Status commit()
	{
		Status s = db_.commit();
		if (s.is_ok())
			open_ = false;
		return s;
	}

private:
	Db &db_;
	bool open_ = false;
};

// A read snapshot: every statement inside sees the same committed state,
// whatever other processes write meanwhile (WAL). Ends on scope exit.
class ReadTransaction {
public:
	explicit ReadTransaction(Db &db) : db_(db) {}
	~ReadTransaction() { db_.rollback(); }
	ReadTransaction(const ReadTransaction &) = delete;
	ReadTransaction &operator=(const ReadTransaction &) = delete;
	Status begin() { return db_.exec("BEGIN DEFERRED"); }

private:
	Db &db_;
};

class Stmt {
public:
	Stmt(Db *db, sqlite3_stmt *stmt, bool *in_use) : db_(db), stmt_(stmt), in_use_(in_use) {}
	~Stmt();
	Stmt(Stmt &&other) noexcept : db_(other.db_), stmt_(other.stmt_), in_use_(other.in_use_)
	{
		other.stmt_ = nullptr;
		other.in_use_ = nullptr;
	}
	Stmt &operator=(Stmt &&) = delete;
	Stmt(const Stmt &) = delete;

	// Parameters are 1-based, as in SQLite.
	Stmt &bind(int i, int64_t v);
	Stmt &bind(int i, std::string_view v);
	Stmt &bind_blob(int i, const void *data, size_t size);
	Stmt &bind_null(int i);
	Stmt &bind(int i, const std::optional<int64_t> &v)
	{
		return v ? bind(i, *v) : bind_null(i);
	}

	// true: a row is ready; false: done. Errors come back as Status.
	Result<bool> step();
	// Steps through every row, calling on_row() (which reads the columns
	// from this statement) for each; a failed step or a failed on_row()
	// ends it with that Status.
	template <class F> Status each(F &&on_row)
	{
		for (;;) {
			auto row = step();
			if (!row)
				return row.status();
			if (!*row)
				return Status::ok();
			Status s = on_row();
			if (!s)
				return s;
		}
	}
	// Runs a statement that returns no rows.
	Status run();
	void reset();

	int64_t int64(int col) const;
	std::string text(int col) const;
	std::string blob(int col) const;
	bool is_null(int col) const;
	int columns() const;

private:
	Status bind_status_ = Status::ok();
	Db *db_;
	sqlite3_stmt *stmt_;
	bool *in_use_; // the cache slot, or null for a statement of its own
};

} // namespace loy::db
