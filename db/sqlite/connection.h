#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "db/errors.h"

struct sqlite3;
struct sqlite3_stmt;

// RAII over the SQLite C API, for db/sqlite only. Failures throw DbError.
namespace herald::sqlite {

// The DbError for SQLite result code `rc` (constraint, unavailable or other).
DbError error_for(int rc, const std::string& what);

// A mutex that hands itself out in the order it was asked for (a ticket lock), so that a
// writer that commits in a loop (the write batcher) cannot starve another (the scheduler).
class FairMutex {
 public:
  void lock();
  void unlock();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_ = 0;     // REQUIRES: mu_ held; the next ticket to hand out
  uint64_t serving_ = 0;  // REQUIRES: mu_ held; the ticket that holds the lock
};

// A prepared statement borrowed from a Connection's cache. Resets itself and clears its
// bindings when destroyed, so it can be handed out again. Bind indexes start at 1, column
// indexes at 0. Must not outlive its Connection.
class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* s) : stmt_(s) {}
  ~Stmt();
  Stmt(Stmt&& other) noexcept : stmt_(other.stmt_) { other.stmt_ = nullptr; }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt& operator=(Stmt&&) = delete;

  Stmt& bind(int i, int64_t v);
  Stmt& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
  Stmt& bind(int i, std::string_view text);
  Stmt& bind(int i, const std::string& text) { return bind(i, std::string_view(text)); }
  Stmt& bind(int i, const char* text) { return bind(i, std::string_view(text)); }
  Stmt& bind(int i, const std::optional<std::string>& text);
  Stmt& bind(int i, const std::optional<int64_t>& v);
  Stmt& bind_blob(int i, std::string_view bytes);
  Stmt& bind_null(int i);

  // Advances; true while a row is available.
  bool step();
  // Steps until done; for statements that return no rows.
  void run();
  // Makes the statement ready to run again, with no bindings.
  void reset();

  bool is_null(int col) const;
  int64_t get_int(int col) const;
  std::string get_text(int col) const;  // blob or text bytes; "" for NULL
  std::optional<std::string> get_opt_text(int col) const;
  std::optional<int64_t> get_opt_int(int col) const;

 private:
  sqlite3_stmt* stmt_;
};

// One sqlite3 connection with a cache of prepared statements. Not thread-safe: one thread
// at a time (the pool hands connections out exclusively).
class Connection {
 public:
  // Opens (creating if needed) the database file and applies herald's pragmas: WAL journal,
  // foreign keys on, synchronous FULL, busy timeout.
  explicit Connection(const std::string& path);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one or more statements that return no rows.
  void exec(std::string_view sql);
  // A cached prepared statement for `sql` (a single statement).
  Stmt prepare(std::string_view sql);
  // Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t changes() const;

  // synchronous=FULL (true, the default: a commit is on disk when it returns) or NORMAL (a
  // commit survives a crash of the process but may be lost with the machine's power; in WAL
  // mode the next FULL commit makes it durable too).
  void set_durable(bool durable);

  // The mutex every Transaction on this connection holds, so that writers in one process
  // queue on it instead of polling SQLite's busy lock. Null: none. Must outlive the connection.
  void set_write_lock(FairMutex* m) { write_lock_ = m; }
  FairMutex* write_lock() const { return write_lock_; }

 private:
  struct Closer {
    void operator()(sqlite3* db) const;
  };
  struct Finalizer {
    void operator()(sqlite3_stmt* s) const;
  };
  std::unique_ptr<sqlite3, Closer> db_;
  std::unordered_map<std::string, std::unique_ptr<sqlite3_stmt, Finalizer>> cache_;
  FairMutex* write_lock_ = nullptr;
};

// BEGIN IMMEDIATE on construction (after taking the connection's write lock, if any);
// ROLLBACK on destruction unless commit() ran. The destructor never throws.
class Transaction {
 public:
  explicit Transaction(Connection& c);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Connection& conn_;
  std::unique_lock<FairMutex> lock_;
  bool done_ = false;
};

}  // namespace herald::sqlite
