// SQLite connection and statements.
#include "storage/sqlite.hpp"

#include <sqlite3.h>

#include <fmt/format.h>

namespace loy::db {

Db::~Db() { close(); }

void Db::close()
{
	for (auto &[sql, c] : cache_)
		sqlite3_finalize(c.stmt);
	cache_.clear();
	if (db_) {
		sqlite3_close_v2(db_);
		db_ = nullptr;
	}
}

Status Db::error(const char *what) const { return error(what, db_ ? sqlite3_errcode(db_) : SQLITE_ERROR); }

Status Db::error(const char *what, int rc) const
{
	const char *msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
	return Status(Code::storage, fmt::format("ledger: {}: {} ({})", what, msg, sqlite3_errstr(rc)));
}

Status Db::open(const std::string &path, bool create, int busy_ms)
{
	close();
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
	int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
	if (rc != SQLITE_OK) {
		Status s = error(fmt::format("cannot open {}", path).c_str(), rc);
		close();
		return s;
	}
	sqlite3_extended_result_codes(db_, 1);
	sqlite3_busy_timeout(db_, busy_ms);
	// WAL: readers never block the writer and a commit is one append and one
	// sync. FULL: that sync happens on every commit, so an acknowledged
	// checkout survives a power cut.
	for (const char *pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
				   "PRAGMA foreign_keys=ON", "PRAGMA trusted_schema=OFF"}) {
		char *err = nullptr;
		rc = sqlite3_exec(db_, pragma, nullptr, nullptr, &err);
		if (rc != SQLITE_OK) {
			std::string msg = err ? err : sqlite3_errstr(rc);
			sqlite3_free(err);
			close();
			return Status(Code::storage, fmt::format("ledger: {}: {}", pragma, msg));
		}
	}
	return Status::ok();
}

Status Db::exec(const char *sql)
{
	char *err = nullptr;
	int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
	if (rc != SQLITE_OK) {
		std::string msg = err ? err : sqlite3_errstr(rc);
		sqlite3_free(err);
		return Status(Code::storage, fmt::format("ledger: {} ({})", msg, sqlite3_errstr(rc)));
	}
	return Status::ok();
}

Result<Stmt> Db::prepare(std::string_view sql)
{
	auto it = cache_.find(sql);
	if (it != cache_.end() && !it->second.in_use) {
		it->second.in_use = true;
		return Stmt(this, it->second.stmt, &it->second.in_use);
	}
	sqlite3_stmt *stmt = nullptr;
	int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
				    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
	if (rc != SQLITE_OK)
		return error("prepare", rc);
	if (it != cache_.end())
		return Stmt(this, stmt, nullptr); // the cached one is busy: a private copy
	auto &slot = cache_[std::string(sql)];
	slot.stmt = stmt;
	slot.in_use = true;
	return Stmt(this, stmt, &slot.in_use);
}

Status Db::begin() { return exec("BEGIN IMMEDIATE"); }

Status Db::commit() { return exec("COMMIT"); }

void Db::rollback() noexcept
{
	if (db_ && !sqlite3_get_autocommit(db_))
		sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

int64_t Db::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

Stmt::~Stmt()
{
	if (!stmt_)
		return;
	if (in_use_) {
		sqlite3_reset(stmt_);
		sqlite3_clear_bindings(stmt_);
		*in_use_ = false;
	} else {
		sqlite3_finalize(stmt_);
	}
}

Stmt &Stmt::bind(int i, int64_t v)
{
	int rc = sqlite3_bind_int64(stmt_, i, v);
	if (rc != SQLITE_OK && bind_status_.is_ok())
		bind_status_ = db_->error("bind", rc);
	return *this;
}

Stmt &Stmt::bind(int i, std::string_view v)
{
	int rc = sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
	if (rc != SQLITE_OK && bind_status_.is_ok())
		bind_status_ = db_->error("bind", rc);
	return *this;
}

Stmt &Stmt::bind_blob(int i, const void *data, size_t size)
{
	int rc = sqlite3_bind_blob64(stmt_, i, data, size, SQLITE_TRANSIENT);
	if (rc != SQLITE_OK && bind_status_.is_ok())
		bind_status_ = db_->error("bind", rc);
	return *this;
}

Stmt &Stmt::bind_null(int i)
{
	int rc = sqlite3_bind_null(stmt_, i);
	if (rc != SQLITE_OK && bind_status_.is_ok())
		bind_status_ = db_->error("bind", rc);
	return *this;
}

Result<bool> Stmt::step()
{
	if (!bind_status_.is_ok())
		return bind_status_;
	int rc = sqlite3_step(stmt_);
	if (rc == SQLITE_ROW)
		return true;
	if (rc == SQLITE_DONE)
		return false;
	Status s = db_->error("step", rc);
	sqlite3_reset(stmt_);
	return s;
}

Status Stmt::run()
{
	auto r = step();
	if (!r)
		return r.status();
	return Status::ok();
}

void Stmt::reset()
{
	sqlite3_reset(stmt_);
	sqlite3_clear_bindings(stmt_);
	bind_status_ = Status::ok();
}

int64_t Stmt::int64(int col) const { return sqlite3_column_int64(stmt_, col); }

std::string Stmt::text(int col) const
{
	const auto *p = sqlite3_column_text(stmt_, col);
	int n = sqlite3_column_bytes(stmt_, col);
	return p ? std::string(reinterpret_cast<const char *>(p), static_cast<size_t>(n)) : std::string();
}

std::string Stmt::blob(int col) const
{
	const void *p = sqlite3_column_blob(stmt_, col);
	int n = sqlite3_column_bytes(stmt_, col);
	return p ? std::string(static_cast<const char *>(p), static_cast<size_t>(n)) : std::string();
}

bool Stmt::is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

int Stmt::columns() const { return sqlite3_column_count(stmt_); }

} // namespace loy::db
