// The centre's SQL connection over PostgreSQL (libpq): statements prepared
// once per connection, values as text, parameters typed (bigint, text and
// their arrays) so that the server never has to guess; a batch's rows in
// one statement each: COPY for inserts, unnest() of arrays for the rest.
#include "central/sql.hpp"

#include <map>

#include <fmt/format.h>
#include <libpq-fe.h>

namespace loy::central::sql {

namespace {

// The types of pg_type a parameter is sent as.
constexpr Oid int8_oid = 20, text_oid = 25, int8_array_oid = 1016, text_array_oid = 1009;

Oid type_of(const Param &p)
{
	switch (p.kind == Param::Kind::null ? p.null_of : p.kind) {
	case Param::Kind::null:
		return 0; // the server infers it
	case Param::Kind::integer:
		return int8_oid;
	case Param::Kind::text:
		return text_oid;
	case Param::Kind::integers:
		return int8_array_oid;
	case Param::Kind::texts:
		return text_array_oid;
	}
	return 0;
}

// ?1, ?2 ... as $1, $2 ...; quoted literals left as they are.
std::string dollar_params(std::string_view sql)
{
	std::string out;
	out.reserve(sql.size());
	bool quoted = false;
	for (char ch : sql) {
		if (ch == '\'')
			quoted = !quoted;
		out.push_back(!quoted && ch == '?' ? '$' : ch);
	}
	return out;
}

// An array's element: NULL, a number, or quoted text.
void append_element(std::string &out, const Param &p)
{
	if (p.kind == Param::Kind::null) {
		out += "NULL";
	} else if (p.kind == Param::Kind::integer) {
		out += std::to_string(p.integer);
	} else {
		out.push_back('"');
		for (char ch : p.text) {
			if (ch == '"' || ch == '\\')
				out.push_back('\\');
			out.push_back(ch);
		}
		out.push_back('"');
	}
}

// A column of rows as one array parameter: its type and its literal.
std::pair<const char *, std::string> column_array(const std::vector<Params> &rows, size_t col)
{
	Param::Kind kind = Param::Kind::null;
	for (const auto &r : rows) {
		kind = r[col].kind == Param::Kind::null ? r[col].null_of : r[col].kind;
		if (kind != Param::Kind::null)
			break;
	}
	std::string out = "{";
	for (size_t i = 0; i < rows.size(); i++) {
		if (i)
			out.push_back(',');
		append_element(out, rows[i][col]);
	}
	out.push_back('}');
	return {kind == Param::Kind::integer ? "bigint[]" : "text[]", std::move(out)};
}

// An array literal: {1,2} or {"a","b"}.
std::string array_literal(const Param &p)
{
	std::string out = "{";
	if (p.kind == Param::Kind::integers) {
		for (size_t i = 0; i < p.integers.size(); i++)
			out += (i ? "," : "") + std::to_string(p.integers[i]);
	} else {
		for (size_t i = 0; i < p.texts.size(); i++) {
			out += i ? ",\"" : "\"";
			for (char ch : p.texts[i]) {
				if (ch == '"' || ch == '\\')
					out.push_back('\\');
				out.push_back(ch);
			}
			out.push_back('"');
		}
	}
	return out + "}";
}

struct Values {
	std::vector<std::string> text;
	std::vector<const char *> ptrs;
};

Values values_of(const Params &params)
{
	Values v;
	v.text.reserve(params.size());
	for (const auto &p : params) {
		switch (p.kind) {
		case Param::Kind::null:
			v.text.emplace_back();
			break;
		case Param::Kind::integer:
			v.text.push_back(std::to_string(p.integer));
			break;
		case Param::Kind::text:
			v.text.push_back(p.text);
			break;
		default:
			v.text.push_back(array_literal(p));
		}
	}
	for (size_t i = 0; i < params.size(); i++)
		v.ptrs.push_back(params[i].kind == Param::Kind::null ? nullptr : v.text[i].c_str());
	return v;
}

class PgConn final : public Conn {
public:
	~PgConn() override
	{
		if (pg_)
			PQfinish(pg_);
	}

	Status open(const std::string &uri)
	{
		pg_ = PQconnectdb(uri.c_str());
		if (!pg_ || PQstatus(pg_) != CONNECTION_OK)
			return failure("cannot connect");
		// Notices ("already exists, skipping") are not the program's output.
		PQsetNoticeProcessor(pg_, [](void *, const char *) {}, nullptr);
		return session();
	}

	// What every session of the centre's sets, again after a reconnect:
	// each statement planned with its values and the tables' statistics of
	// the moment (a generic plan made while the tables were small would
	// scan them whole for ever after).
	Status session() { return script("SET plan_cache_mode = force_custom_plan"); }

	Dialect dialect() const override { return Dialect::postgresql; }

	Result<Rows> query(std::string_view sql, const Params &params) override
	{
		auto name = prepared(sql, params);
		if (!name)
			return name.status();
		Values v = values_of(params);
		PGresult *r = PQexecPrepared(pg_, name->c_str(), static_cast<int>(params.size()), v.ptrs.data(),
					     nullptr, nullptr, 0);
		Status s = check(r, "query");
		if (!s) {
			PQclear(r);
			return s;
		}
		const int rows = PQntuples(r), cols = PQnfields(r);
		Rows out(static_cast<size_t>(cols));
		for (int i = 0; i < rows; i++)
			for (int c = 0; c < cols; c++)
				out.add(PQgetisnull(r, i, c) ? std::nullopt
							     : std::optional<std::string>(std::string(
								       PQgetvalue(r, i, c),
								       static_cast<size_t>(PQgetlength(r, i, c)))));
		PQclear(r);
		return out;
	}

	Status exec(std::string_view sql, const Params &params) override
	{
		auto rows = query(sql, params);
		return rows ? Status::ok() : rows.status();
	}

	Status insert_many(std::string_view table, const std::vector<std::string_view> &columns,
			   const std::vector<Params> &rows, std::string_view on_conflict) override
	{
		if (rows.empty())
			return Status::ok();
		if (on_conflict.empty())
			return copy_in(table, columns, rows);
		std::string names, arrays;
		Params params;
		for (size_t i = 0; i < columns.size(); i++) {
			auto [type, literal] = column_array(rows, i);
			names += fmt::format("{}{}", i ? ", " : "", columns[i]);
			arrays += fmt::format("{}CAST(?{} AS {})", i ? ", " : "", i + 1, type);
			params.emplace_back(std::move(literal));
		}
		return exec(fmt::format("INSERT INTO {} ({}) SELECT * FROM unnest({}) {}", table, names, arrays,
					on_conflict),
			    params);
	}

	Status update_many(std::string_view table, const std::vector<std::string_view> &keys,
			   const std::vector<std::string_view> &sets, const std::vector<Params> &rows) override
	{
		if (rows.empty())
			return Status::ok();
		std::string names, arrays, set, where;
		Params params;
		for (size_t i = 0; i < keys.size() + sets.size(); i++) {
			auto [type, literal] = column_array(rows, i);
			arrays += fmt::format("{}CAST(?{} AS {})", i ? ", " : "", i + 1, type);
			names += fmt::format("{}c{}", i ? ", " : "", i);
			params.emplace_back(std::move(literal));
		}
		for (size_t i = 0; i < keys.size(); i++)
			where += fmt::format("{}t.{} = v.c{}", i ? " AND " : "", keys[i], i);
		for (size_t i = 0; i < sets.size(); i++)
			set += fmt::format("{}{} = v.c{}", i ? ", " : "", sets[i], keys.size() + i);
		return exec(fmt::format("UPDATE {} AS t SET {} FROM unnest({}) AS v({}) WHERE {}", table, set, arrays,
					names, where),
			    params);
	}

	Status script(std::string_view sql) override
	{
		PGresult *r = PQexec(pg_, std::string(sql).c_str());
		Status s = check(r, "schema");
		PQclear(r);
		return s;
	}

	Status begin() override
	{
		// A connection the server dropped (restarted, cut) is made again
		// here, between transactions, never inside one.
		if (PQstatus(pg_) != CONNECTION_OK) {
			PQreset(pg_);
			if (PQstatus(pg_) != CONNECTION_OK)
				return failure("cannot reconnect");
			prepared_.clear();
			LOY_TRY(session());
		}
		return script("BEGIN");
	}
	Status commit() override { return script("COMMIT"); }
	void rollback() noexcept override
	{
		if (PQstatus(pg_) == CONNECTION_OK && PQtransactionStatus(pg_) != PQTRANS_IDLE)
			PQclear(PQexec(pg_, "ROLLBACK"));
	}

	bool retryable() const override { return sqlstate_ == "40001" || sqlstate_ == "40P01"; }

private:
	Status failure(const char *what)
	{
		std::string msg = pg_ ? PQerrorMessage(pg_) : "out of memory";
		while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' '))
			msg.pop_back();
		return Status(Code::storage, fmt::format("central: PostgreSQL: {}: {}", what, msg));
	}

	Status check(PGresult *r, const char *what)
	{
		sqlstate_.clear();
		const auto st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_PIPELINE_SYNC)
			return Status::ok();
		if (r && PQresultErrorField(r, PG_DIAG_SQLSTATE))
			sqlstate_ = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		std::string msg = r ? PQresultErrorMessage(r) : PQerrorMessage(pg_);
		while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' '))
			msg.pop_back();
		return Status(Code::storage, fmt::format("central: PostgreSQL: {}: {}", what, msg));
	}

	// The statement's name on this connection, prepared on first use for
	// these parameter types.
	Result<std::string> prepared(std::string_view sql, const Params &params)
	{
		std::string key(sql);
		std::vector<Oid> types;
		for (const auto &p : params) {
			types.push_back(type_of(p));
			key += fmt::format("\x1f{}", types.back());
		}
		if (auto it = prepared_.find(key); it != prepared_.end())
			return it->second;
		std::string name = fmt::format("s{}", prepared_.size() + 1);
		PGresult *r = PQprepare(pg_, name.c_str(), dollar_params(sql).c_str(), static_cast<int>(types.size()),
					types.data());
		Status s = check(r, "prepare");
		PQclear(r);
		if (!s)
			return s;
		prepared_.emplace(std::move(key), name);
		return name;
	}

	// Rows in COPY's text format: tab between columns, \N for NULL, and
	// backslash, tab, newline and carriage return escaped.
	Status copy_in(std::string_view table, const std::vector<std::string_view> &columns,
		       const std::vector<Params> &rows)
	{
		std::string names;
		for (size_t i = 0; i < columns.size(); i++)
			names += fmt::format("{}{}", i ? ", " : "", columns[i]);
		PGresult *r = PQexec(pg_, fmt::format("COPY {} ({}) FROM STDIN", table, names).c_str());
		const bool copying = r && PQresultStatus(r) == PGRES_COPY_IN;
		Status s = copying ? Status::ok() : check(r, "copy");
		PQclear(r);
		if (!s)
			return s;
		std::string data;
		for (const auto &row : rows) {
			for (size_t c = 0; c < row.size(); c++) {
				if (c)
					data.push_back('\t');
				const Param &p = row[c];
				if (p.kind == Param::Kind::null) {
					data += "\\N";
				} else if (p.kind == Param::Kind::integer) {
					data += std::to_string(p.integer);
				} else {
					for (char ch : p.text) {
						switch (ch) {
						case '\\': data += "\\\\"; break;
						case '\t': data += "\\t"; break;
						case '\n': data += "\\n"; break;
						case '\r': data += "\\r"; break;
						default: data.push_back(ch);
						}
					}
				}
			}
			data.push_back('\n');
		}
		Status sent = Status::ok();
		if (PQputCopyData(pg_, data.data(), static_cast<int>(data.size())) != 1)
			sent = failure("copy data");
		if (PQputCopyEnd(pg_, sent ? nullptr : "client failed") != 1 && sent)
			sent = failure("copy end");
		Status result = Status::ok();
		while (PGresult *end = PQgetResult(pg_)) {
			if (result)
				result = check(end, "copy");
			PQclear(end);
		}
		return sent ? result : sent;
	}

	PGconn *pg_ = nullptr;
	std::map<std::string, std::string> prepared_;
	std::string sqlstate_;
};

} // namespace

Result<std::unique_ptr<Conn>> open_postgresql(const std::string &uri)
{
	auto c = std::make_unique<PgConn>();
	LOY_TRY(c->open(uri));
	return std::unique_ptr<Conn>(std::move(c));
}

} // namespace loy::central::sql
