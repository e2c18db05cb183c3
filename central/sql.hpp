// The centre's SQL connection: the one interface its store is written
// against, over SQLite (the embedded store, one file in the data dir) or
// PostgreSQL (a chain's database, shared by many servers). Statements are
// written once, in the SQL both understand, with parameters as ?1, ?2, ...;
// what differs is asked of the dialect (a list parameter, a row lock).
// Values come back as text or 64-bit integers, typed at the call.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"

namespace loy::central::sql {

enum class Dialect { sqlite, postgresql };

// One parameter: NULL, an integer, text, or a list of either (bound where
// the statement says `x` + in_list(n)).
struct Param {
	enum class Kind { null, integer, text, integers, texts };
	Kind kind = Kind::null;
	Kind null_of = Kind::null; // a NULL's type, when the caller knows it
	int64_t integer = 0;
	std::string text;
	std::vector<int64_t> integers;
	std::vector<std::string> texts;

	Param() = default;
	Param(int64_t v) : kind(Kind::integer), integer(v) {}
	Param(int v) : Param(int64_t{v}) {}
	Param(std::string v) : kind(Kind::text), text(std::move(v)) {}
	Param(std::string_view v) : Param(std::string(v)) {}
	Param(const char *v) : Param(std::string(v)) {}
	Param(const std::optional<int64_t> &v)
		: kind(v ? Kind::integer : Kind::null), null_of(Kind::integer), integer(v.value_or(0))
	{
	}
	Param(const std::optional<std::string> &v)
		: kind(v ? Kind::text : Kind::null), null_of(Kind::text), text(v.value_or(""))
	{
	}
	static Param list(std::vector<int64_t> v)
	{
		Param p;
		p.kind = Kind::integers;
		p.integers = std::move(v);
		return p;
	}
	static Param list(std::vector<std::string> v)
	{
		Param p;
		p.kind = Kind::texts;
		p.texts = std::move(v);
		return p;
	}
};
using Params = std::vector<Param>;

// A query's rows, read by row and column. An integer column reads as
// int64 (0 when NULL); a sum over no rows is NULL.
class Rows {
public:
	explicit Rows(size_t columns = 0) : columns_(columns) {}
	size_t size() const { return columns_ ? cells_.size() / columns_ : 0; }
	bool empty() const { return size() == 0; }
	bool is_null(size_t row, size_t col) const { return !cells_[row * columns_ + col]; }
	const std::string &text(size_t row, size_t col) const;
	int64_t int64(size_t row, size_t col) const;
	std::optional<int64_t> optional_int64(size_t row, size_t col) const
	{
		return is_null(row, col) ? std::nullopt : std::optional<int64_t>(int64(row, col));
	}

	// For the connections that fill it, a row at a time.
	void add(std::optional<std::string> cell) { cells_.push_back(std::move(cell)); }

private:
	size_t columns_;
	std::vector<std::optional<std::string>> cells_;
};

class Conn {
public:
	virtual ~Conn() = default;
	virtual Dialect dialect() const = 0;

	virtual Result<Rows> query(std::string_view sql, const Params &params = {}) = 0;
	virtual Status exec(std::string_view sql, const Params &params = {}) = 0;
	// Rows into `table`, each a value per column in order; `on_conflict`
	// ends the statement ("ON CONFLICT (token) DO NOTHING"), or "".
	// PostgreSQL takes them all in one statement (unnest of one array a
	// column); SQLite one prepared statement a row. A column's type is its
	// values' (Param's kind, or null_of for a NULL).
	virtual Status insert_many(std::string_view table, const std::vector<std::string_view> &columns,
				   const std::vector<Params> &rows, std::string_view on_conflict = "") = 0;
	// Rows of `table` changed by key: each row holds the key columns'
	// values, then the set columns'. The same statement shapes as above.
	virtual Status update_many(std::string_view table, const std::vector<std::string_view> &keys,
				   const std::vector<std::string_view> &sets, const std::vector<Params> &rows) = 0;
	// Several statements without parameters (the schema).
	virtual Status script(std::string_view sql) = 0;

	// A writing transaction: SQLite takes its write lock at once; PostgreSQL
	// reads committed, and its writers lock the rows they change (lock()).
	virtual Status begin() = 0;
	virtual Status commit() = 0;
	virtual void rollback() noexcept = 0;

	// Whether the last failure was the database's choice of a victim
	// (a deadlock or a serialisation failure): the transaction may be run
	// again as it was.
	virtual bool retryable() const { return false; }
};

// `column IN` the list bound at parameter n.
std::string in_list(Dialect d, int n);
// The list bound at parameter n as a table, `list`, of one column, `value`
// (FROM list_table(d, n)).
std::string list_table(Dialect d, int n);
// Row locks on what a SELECT reads, until the transaction ends (PostgreSQL;
// SQLite's writer holds the whole database already).
const char *for_update(Dialect d);

// Rolls back on scope exit unless committed.
class Transaction {
public:
	explicit Transaction(Conn &c) : c_(c) {}
	~Transaction()
	{
		if (open_)
			c_.rollback();
	}
	Transaction(const Transaction &) = delete;
	Transaction &operator=(const Transaction &) = delete;
	Status begin()
	{
		Status s = c_.begin();
		open_ = s.is_ok();
		return s;
	}
	Status commit()
	{
		Status s = c_.commit();
		open_ = false;
		return s;
	}

private:
	Conn &c_;
	bool open_ = false;
};

// The SQLite database at `path` (created when missing), WAL, synchronous
// FULL; a writer waits up to `busy_ms` for another process's transaction.
Result<std::unique_ptr<Conn>> open_sqlite(const std::string &path, int busy_ms);
// A PostgreSQL database by its connection URI (postgresql://...). Fails
// with a storage error naming the server's reason; in a build without
// libpq, says so.
Result<std::unique_ptr<Conn>> open_postgresql(const std::string &uri);

} // namespace loy::central::sql
