// The centre's SQL connection over SQLite, and what both dialects share.
#include "central/sql.hpp"

#include <charconv>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "storage/sqlite.hpp"

namespace loy::central::sql {

const std::string &Rows::text(size_t row, size_t col) const
{
	static const std::string none;
	const auto &cell = cells_[row * columns_ + col];
	return cell ? *cell : none;
}

int64_t Rows::int64(size_t row, size_t col) const
{
	const auto &cell = cells_[row * columns_ + col];
	if (!cell)
		return 0;
	int64_t v = 0;
	// PostgreSQL gives a sum of bigints as numeric: an integer all the same.
	std::from_chars(cell->data(), cell->data() + cell->size(), v);
	return v;
}

std::string in_list(Dialect d, int n)
{
	return d == Dialect::postgresql ? fmt::format("= ANY(?{})", n)
					: fmt::format("IN (SELECT value FROM json_each(?{}))", n);
}

std::string list_table(Dialect d, int n)
{
	return d == Dialect::postgresql ? fmt::format("unnest(?{}) AS list(value)", n)
					: fmt::format("json_each(?{}) AS list", n);
}

const char *for_update(Dialect d) { return d == Dialect::postgresql ? " FOR UPDATE" : ""; }

namespace {

class SqliteConn final : public Conn {
public:
	Status open(const std::string &path, int busy_ms) { return db_.open(path, true, busy_ms); }

	Dialect dialect() const override { return Dialect::sqlite; }

	Result<Rows> query(std::string_view sql, const Params &params) override
	{
		auto st = prepared(sql, params);
		if (!st)
			return st.status();
		auto &s = st.value();
		Rows rows(static_cast<size_t>(s.columns()));
		const int n = s.columns();
		LOY_TRY(s.each([&]() -> Status {
			for (int c = 0; c < n; c++)
				rows.add(s.is_null(c) ? std::nullopt : std::optional<std::string>(s.text(c)));
			return Status::ok();
		}));
		return rows;
	}

	Status exec(std::string_view sql, const Params &params) override
	{
		auto st = prepared(sql, params);
		if (!st)
			return st.status();
		return st.value().run();
	}


	Status insert_many(std::string_view table, const std::vector<std::string_view> &columns,
			   const std::vector<Params> &rows, std::string_view on_conflict) override
	{
		std::string names, values;
		for (size_t i = 0; i < columns.size(); i++) {
			names += fmt::format("{}{}", i ? ", " : "", columns[i]);
			values += fmt::format("{}?{}", i ? ", " : "", i + 1);
		}
		return each_row(fmt::format("INSERT INTO {} ({}) VALUES ({}) {}", table, names, values, on_conflict),
				rows);
	}

	Status update_many(std::string_view table, const std::vector<std::string_view> &keys,
			   const std::vector<std::string_view> &sets, const std::vector<Params> &rows) override
	{
		std::string set, where;
		for (size_t i = 0; i < sets.size(); i++)
			set += fmt::format("{}{} = ?{}", i ? ", " : "", sets[i], keys.size() + i + 1);
		for (size_t i = 0; i < keys.size(); i++)
			where += fmt::format("{}{} = ?{}", i ? " AND " : "", keys[i], i + 1);
		return each_row(fmt::format("UPDATE {} SET {} WHERE {}", table, set, where), rows);
	}

	Status script(std::string_view sql) override { return db_.exec(std::string(sql).c_str()); }
	Status begin() override { return db_.begin(); }
	Status commit() override { return db_.commit(); }
	void rollback() noexcept override { db_.rollback(); }

private:
	// One prepared statement run once a row: in-process, it costs what
	// one statement with every row would.
	Status each_row(std::string_view sql, const std::vector<Params> &rows)
	{
		for (const auto &p : rows)
			LOY_TRY(exec(sql, p));
		return Status::ok();
	}

	Result<db::Stmt> prepared(std::string_view sql, const Params &params)
	{
		auto st = db_.prepare(sql);
		if (!st)
			return st.status();
		int i = 1;
		for (const auto &p : params) {
			switch (p.kind) {
			case Param::Kind::null:
				st.value().bind_null(i);
				break;
			case Param::Kind::integer:
				st.value().bind(i, p.integer);
				break;
			case Param::Kind::text:
				st.value().bind(i, std::string_view(p.text));
				break;
			// A list goes in as a JSON array, read back by json_each().
			case Param::Kind::integers:
				st.value().bind(i, std::string_view(nlohmann::json(p.integers).dump()));
				break;
			case Param::Kind::texts:
				st.value().bind(i, std::string_view(nlohmann::json(p.texts).dump(
							     -1, ' ', false, nlohmann::json::error_handler_t::replace)));
				break;
			}
			i++;
		}
		return st;
	}

	db::Db db_;
};

} // namespace

Result<std::unique_ptr<Conn>> open_sqlite(const std::string &path, int busy_ms)
{
	auto c = std::make_unique<SqliteConn>();
	LOY_TRY(c->open(path, busy_ms));
	return std::unique_ptr<Conn>(std::move(c));
}

#ifndef LOYALTY_HAVE_POSTGRESQL
Result<std::unique_ptr<Conn>> open_postgresql(const std::string &)
{
	return Status(Code::bad_argument, "--database: this build of loyalty-central has no PostgreSQL store "
					  "(built without libpq: LOYALTY_POSTGRESQL=OFF)");
}
#endif

} // namespace loy::central::sql
