// The centre's SQL connection over PostgreSQL (libpq): statements prepared
// once per connection, values as text, parameters typed (bigint, text and
// their arrays) so that the server never has to guess; exec_many() sends
// its statements in pipeline mode, one round trip for a batch's rows.
#include "central/sql.hpp"

#include <map>

#include <fmt/format.h>
#include <libpq-fe.h>

namespace loy::central::sql {

namespace {

// The types of pg_type a parameter is sent as.
constexpr Oid int8_oid = 20, text_oid = 25, int8_array_oid = 1016, text_array_oid = 1009;
// Statements sent in one pipeline before their results are read: the
// results of as many must fit the socket's buffers, or both ends would wait
// on each other (libpq's blocking mode).
constexpr size_t pipeline_chunk = 256;

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
		return Status::ok();
	}

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

	Status exec_many(std::string_view sql, const std::vector<Params> &rows) override
	{
		if (rows.empty())
			return Status::ok();
		auto name = prepared(sql, rows.front());
		if (!name)
			return name.status();
		for (size_t from = 0; from < rows.size(); from += pipeline_chunk)
			LOY_TRY(pipeline(*name, rows, from, std::min(rows.size(), from + pipeline_chunk)));
		return Status::ok();
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

	Status pipeline(const std::string &name, const std::vector<Params> &rows, size_t from, size_t to)
	{
		if (!PQenterPipelineMode(pg_))
			return failure("pipeline");
		Status first = Status::ok();
		for (size_t i = from; i < to; i++) {
			Values v = values_of(rows[i]);
			if (!PQsendQueryPrepared(pg_, name.c_str(), static_cast<int>(rows[i].size()), v.ptrs.data(),
						 nullptr, nullptr, 0)) {
				first = failure("pipeline send");
				break;
			}
		}
		if (!PQpipelineSync(pg_) && first)
			first = failure("pipeline sync");
		// Every result up to the sync is read, the first failure kept.
		for (bool synced = false; !synced;) {
			PGresult *r = PQgetResult(pg_);
			if (!r) {
				if (PQstatus(pg_) != CONNECTION_OK) {
					if (first)
						first = failure("pipeline");
					break;
				}
				continue; // the end of one statement's results
			}
			const auto st = PQresultStatus(r);
			if (st == PGRES_PIPELINE_SYNC)
				synced = true;
			else if (st != PGRES_PIPELINE_ABORTED && first)
				first = check(r, "pipeline");
			PQclear(r);
		}
		PQexitPipelineMode(pg_);
		return first;
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
