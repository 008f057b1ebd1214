#include "db/sqlite/connection.h"

#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>

namespace herald::sqlite {

DbError error_for(int rc, const std::string& what) {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      return DbError(DbError::Kind::kConstraint, what);
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
      return DbError(DbError::Kind::kUnavailable, what);
    default:
      return DbError(DbError::Kind::kOther, what);
  }
}

namespace {

[[noreturn]] void fail(sqlite3* db, int rc, std::string_view context) {
  std::string msg(context);
  msg += ": ";
  msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  throw error_for(db ? sqlite3_extended_errcode(db) : rc, msg);
}

}  // namespace

Stmt::~Stmt() {
  if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

Stmt& Stmt::bind(int i, int64_t v) {
  int rc = sqlite3_bind_int64(stmt_, i, v);
  if (rc != SQLITE_OK) fail(sqlite3_db_handle(stmt_), rc, "bind");
  return *this;
}

Stmt& Stmt::bind(int i, std::string_view text) {
  int rc = sqlite3_bind_text64(stmt_, i, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) fail(sqlite3_db_handle(stmt_), rc, "bind");
  return *this;
}

Stmt& Stmt::bind(int i, const std::optional<std::string>& text) {
  return text ? bind(i, std::string_view(*text)) : bind_null(i);
}

Stmt& Stmt::bind(int i, const std::optional<int64_t>& v) {
  return v ? bind(i, *v) : bind_null(i);
}

Stmt& Stmt::bind_blob(int i, std::string_view bytes) {
  int rc = sqlite3_bind_blob64(stmt_, i, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) fail(sqlite3_db_handle(stmt_), rc, "bind");
  return *this;
}

Stmt& Stmt::bind_null(int i) {
  int rc = sqlite3_bind_null(stmt_, i);
  if (rc != SQLITE_OK) fail(sqlite3_db_handle(stmt_), rc, "bind");
  return *this;
}

bool Stmt::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(sqlite3_db_handle(stmt_), rc, sqlite3_sql(stmt_));
}

void Stmt::run() {
  while (step()) {
  }
}

void Stmt::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

bool Stmt::is_null(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

int64_t Stmt::get_int(int col) const {
  return sqlite3_column_int64(stmt_, col);
}

std::string Stmt::get_text(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  if (p == nullptr) return {};
  return std::string(static_cast<const char*>(p), static_cast<size_t>(n));
}

std::optional<std::string> Stmt::get_opt_text(int col) const {
  if (is_null(col)) return std::nullopt;
  return get_text(col);
}

std::optional<int64_t> Stmt::get_opt_int(int col) const {
  if (is_null(col)) return std::nullopt;
  return get_int(col);
}

void Connection::Closer::operator()(sqlite3* db) const {
  sqlite3_close_v2(db);
}
void Connection::Finalizer::operator()(sqlite3_stmt* s) const {
  sqlite3_finalize(s);
}

Connection::Connection(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  db_.reset(raw);  // owned even if open failed
  if (rc != SQLITE_OK) fail(raw, rc, "cannot open database " + path);
  sqlite3_busy_timeout(raw, 10000);
  exec(
      "PRAGMA journal_mode=WAL;"
      "PRAGMA synchronous=FULL;"
      "PRAGMA foreign_keys=ON;"
      "PRAGMA temp_store=MEMORY;"
      "PRAGMA cache_size=-32768;");
}

Connection::~Connection() {
  // HERALD_SQL_STATS=1: how much work each cached statement did (for profiling).
  if (const char* env = std::getenv("HERALD_SQL_STATS"); env != nullptr && env[0] == '1') {
    for (const auto& [sql, st] : cache_) {
      const int runs = sqlite3_stmt_status(st.get(), SQLITE_STMTSTATUS_RUN, 0);
      if (runs == 0) continue;
      std::fprintf(stderr, "sql runs=%d vm_steps=%d fullscan_steps=%d sorts=%d: %.160s\n", runs,
                   sqlite3_stmt_status(st.get(), SQLITE_STMTSTATUS_VM_STEP, 0),
                   sqlite3_stmt_status(st.get(), SQLITE_STMTSTATUS_FULLSCAN_STEP, 0),
                   sqlite3_stmt_status(st.get(), SQLITE_STMTSTATUS_SORT, 0), sql.c_str());
    }
  }
  cache_.clear();  // statements are finalized before the connection closes
}

void Connection::exec(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_.get(), s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    throw error_for(rc, msg);
  }
}

Stmt Connection::prepare(std::string_view sql) {
  auto it = cache_.find(std::string(sql));
  if (it == cache_.end()) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    std::unique_ptr<sqlite3_stmt, Finalizer> owned(raw);
    if (rc != SQLITE_OK) fail(db_.get(), rc, "prepare " + std::string(sql));
    it = cache_.emplace(std::string(sql), std::move(owned)).first;
  }
  return Stmt(it->second.get());
}

int64_t Connection::changes() const {
  return sqlite3_changes64(db_.get());
}

void Connection::set_durable(bool durable) {
  exec(durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
}

void FairMutex::lock() {
  std::unique_lock lock(mu_);
  const uint64_t ticket = next_++;
  cv_.wait(lock, [&] { return serving_ == ticket; });
}

void FairMutex::unlock() {
  {
    std::lock_guard lock(mu_);
    ++serving_;
  }
  cv_.notify_all();
}

Transaction::Transaction(Connection& c) : conn_(c) {
  if (FairMutex* m = conn_.write_lock()) lock_ = std::unique_lock(*m);
  conn_.exec("BEGIN IMMEDIATE");
}

Transaction::~Transaction() {
  if (!done_) {
    try {
      conn_.exec("ROLLBACK");
    } catch (...) {
    }
  }
}

void Transaction::commit() {
  conn_.exec("COMMIT");
  done_ = true;
  if (lock_.owns_lock()) lock_.unlock();
}

}  // namespace herald::sqlite
