#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "db/errors.h"

struct pg_conn;
struct pg_result;

// RAII over libpq, for db/postgres only. Failures throw DbError: kConstraint for integrity
// violations, kUnavailable when the server cannot be reached or cannot do the work now (a
// lost connection, a restart, a full disk, a deadlock), kOther otherwise.
namespace herald::pg {

// Parameters of one statement, all sent as text (bytea as its hex form).
class Params {
 public:
  Params& add(int64_t v);
  Params& add(int v) { return add(static_cast<int64_t>(v)); }
  Params& add(bool v);
  Params& add(double v);
  Params& add(std::string_view text);
  Params& add(const std::string& text) { return add(std::string_view(text)); }
  Params& add(const char* text) { return add(std::string_view(text)); }
  Params& add(const std::optional<std::string>& text);
  Params& add(const std::optional<int64_t>& v);
  Params& add_bytea(std::string_view bytes);
  Params& add_null();
  // Array parameters (PostgreSQL's text form, e.g. {"a","b"}): one statement for many rows.
  Params& add_array(const std::vector<std::string>& items);
  Params& add_array(const std::vector<int64_t>& items);
  Params& add_array(const std::vector<std::optional<int64_t>>& items);
  Params& add_array(const std::vector<std::optional<std::string>>& items);
  Params& add_array(const std::vector<double>& items);

  int size() const { return static_cast<int>(values_.size()); }
  // Pointers into the values; valid while this object lives and is not changed.
  std::vector<const char*> pointers() const;

 private:
  std::vector<std::optional<std::string>> values_;
};

// A statement built piece by piece, for SQL that depends on the request (filters, paging):
// arg() adds a parameter and returns its placeholder ($1, $2, ...).
struct Sql {
  std::string text;
  Params params;
  template <typename T>
  std::string arg(const T& v) {
    params.add(v);
    return "$" + std::to_string(params.size());
  }
  template <typename T>
  std::string array_arg(const T& items) {
    params.add_array(items);
    return "$" + std::to_string(params.size());
  }
};

// The rows of one statement's result, in text form. Row and column indexes start at 0.
class Result {
 public:
  explicit Result(pg_result* r) : r_(r) {}
  int rows() const;
  bool is_null(int row, int col) const;
  std::string_view text(int row, int col) const;  // "" for NULL
  std::string get_text(int row, int col) const { return std::string(text(row, col)); }
  std::optional<std::string> get_opt_text(int row, int col) const;
  int64_t get_int(int row, int col) const;
  std::optional<int64_t> get_opt_int(int row, int col) const;
  bool get_bool(int row, int col) const;
  double get_double(int row, int col) const;
  std::string get_bytea(int row, int col) const;  // decoded from the hex form
  // Rows changed by an INSERT, UPDATE or DELETE.
  int64_t affected() const;

 private:
  struct Clear {
    void operator()(pg_result* r) const;
  };
  std::unique_ptr<pg_result, Clear> r_;
};

// One connection to the server, with a cache of prepared statements. Not thread-safe: one
// thread at a time. A connection found broken is made again before the next statement, unless
// a transaction was open on it (then that statement fails, and the next one reconnects).
class Connection {
 public:
  // Connects to `uri` (libpq's URI or key=value syntax). Throws DbError (kUnavailable).
  explicit Connection(std::string uri);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one or more statements without parameters (simple protocol).
  void exec(std::string_view sql);
  // Runs one statement, prepared once per connection and reused.
  Result query(std::string_view sql, const Params& params = {});

  // Transactions. A connection lost inside one is not silently made again: every statement
  // fails until rollback() (the server rolled the transaction back already).
  void begin();
  void commit();
  void rollback() noexcept;
  bool in_transaction() const { return tx_open_; }
  // True if the connection is known broken (reconnected before the next use).
  bool broken() const;
  // Commits are not waited for on disk (synchronous_commit off): survives a server crash
  // only up to the last WAL flush, which PostgreSQL makes within a fraction of a second.
  void set_durable(bool durable);
  // The server process of this connection (for telling its own notifications apart).
  int backend_pid() const;
  // The socket to poll for notifications; -1 when not connected.
  int socket() const;
  // Reads what arrived on the socket and hands over each notification as (channel, pid).
  // Throws DbError when the connection is lost.
  std::vector<std::pair<std::string, int>> take_notifications();

 private:
  // Makes the connection (again). Throws DbError.
  void connect();
  // Reconnects first if the connection is broken and no transaction was open on it; throws
  // if one was.
  void ensure_connected();
  // The DbError for a failed result (or a lost connection when `r` is null).
  [[noreturn]] void fail(pg_result* r, std::string_view context);

  struct Finish {
    void operator()(pg_conn* c) const;
  };
  std::string uri_;
  std::unique_ptr<pg_conn, Finish> conn_;
  bool durable_ = true;
  bool tx_open_ = false;
  std::unordered_map<std::string, std::string> prepared_;  // sql -> statement name
  int next_statement_ = 0;
};

}  // namespace herald::pg
