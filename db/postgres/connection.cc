#include "db/postgres/connection.h"

#include <libpq-fe.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/encoding.h"

namespace herald::pg {
namespace {

// Appends `text` to a PostgreSQL array literal as one quoted element.
void append_element(std::string& out, std::string_view text) {
  out += '"';
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

template <typename T, typename F>
std::string array_literal(const std::vector<T>& items, F&& element) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    element(out, items[i]);
  }
  out += '}';
  return out;
}

// SQLSTATE classes that say "not now" rather than "never".
bool is_transient(std::string_view state) {
  return state.starts_with("08") ||   // connection exception
         state.starts_with("53") ||   // insufficient resources (disk full, out of memory)
         state.starts_with("57P") ||  // the server is shutting down or starting
         state == "40001" ||          // serialization failure
         state == "40P01" ||          // deadlock detected
         state == "55P03" ||          // lock not available
         state == "57014";            // statement cancelled (statement_timeout)
}

}  // namespace

Params& Params::add(int64_t v) {
  values_.emplace_back(std::to_string(v));
  return *this;
}

Params& Params::add(bool v) {
  values_.emplace_back(v ? "t" : "f");
  return *this;
}

Params& Params::add(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  values_.emplace_back(buf);
  return *this;
}

Params& Params::add(std::string_view text) {
  values_.emplace_back(std::string(text));
  return *this;
}

Params& Params::add(const std::optional<std::string>& text) {
  return text ? add(std::string_view(*text)) : add_null();
}

Params& Params::add(const std::optional<int64_t>& v) {
  return v ? add(*v) : add_null();
}

Params& Params::add_bytea(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\\x";
  out.reserve(2 + bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
  values_.emplace_back(std::move(out));
  return *this;
}

Params& Params::add_null() {
  values_.emplace_back(std::nullopt);
  return *this;
}

Params& Params::add_array(const std::vector<std::string>& items) {
  values_.emplace_back(
      array_literal(items, [](std::string& out, const std::string& s) { append_element(out, s); }));
  return *this;
}

Params& Params::add_array(const std::vector<int64_t>& items) {
  values_.emplace_back(
      array_literal(items, [](std::string& out, int64_t v) { out += std::to_string(v); }));
  return *this;
}

Params& Params::add_array(const std::vector<std::optional<int64_t>>& items) {
  values_.emplace_back(array_literal(items, [](std::string& out, const std::optional<int64_t>& v) {
    out += v ? std::to_string(*v) : std::string("NULL");
  }));
  return *this;
}

Params& Params::add_array(const std::vector<std::optional<std::string>>& items) {
  values_.emplace_back(
      array_literal(items, [](std::string& out, const std::optional<std::string>& v) {
        if (v) {
          append_element(out, *v);
        } else {
          out += "NULL";
        }
      }));
  return *this;
}

Params& Params::add_array(const std::vector<double>& items) {
  values_.emplace_back(array_literal(items, [](std::string& out, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    out += buf;
  }));
  return *this;
}

std::vector<const char*> Params::pointers() const {
  std::vector<const char*> out;
  out.reserve(values_.size());
  for (const auto& v : values_) out.push_back(v ? v->c_str() : nullptr);
  return out;
}

void Result::Clear::operator()(pg_result* r) const {
  PQclear(r);
}

int Result::rows() const {
  return PQntuples(r_.get());
}

bool Result::is_null(int row, int col) const {
  return PQgetisnull(r_.get(), row, col) != 0;
}

std::string_view Result::text(int row, int col) const {
  if (is_null(row, col)) return {};
  return std::string_view(PQgetvalue(r_.get(), row, col),
                          static_cast<size_t>(PQgetlength(r_.get(), row, col)));
}

std::optional<std::string> Result::get_opt_text(int row, int col) const {
  if (is_null(row, col)) return std::nullopt;
  return get_text(row, col);
}

int64_t Result::get_int(int row, int col) const {
  if (is_null(row, col)) return 0;
  return std::strtoll(PQgetvalue(r_.get(), row, col), nullptr, 10);
}

std::optional<int64_t> Result::get_opt_int(int row, int col) const {
  if (is_null(row, col)) return std::nullopt;
  return get_int(row, col);
}

bool Result::get_bool(int row, int col) const {
  return !is_null(row, col) && PQgetvalue(r_.get(), row, col)[0] == 't';
}

double Result::get_double(int row, int col) const {
  if (is_null(row, col)) return 0;
  return std::strtod(PQgetvalue(r_.get(), row, col), nullptr);
}

std::string Result::get_bytea(int row, int col) const {
  std::string_view hex = text(row, col);
  std::string out;
  if (!hex.starts_with("\\x")) return std::string(hex);  // not the hex form: as is
  out.reserve((hex.size() - 2) / 2);
  for (size_t i = 2; i + 1 < hex.size(); i += 2) {
    const int hi = hex_digit_value(hex[i]);
    const int lo = hex_digit_value(hex[i + 1]);
    if (hi < 0 || lo < 0) break;
    out += static_cast<char>(hi << 4 | lo);
  }
  return out;
}

int64_t Result::affected() const {
  const char* n = PQcmdTuples(r_.get());
  return n != nullptr && *n != '\0' ? std::strtoll(n, nullptr, 10) : 0;
}

void Connection::Finish::operator()(pg_conn* c) const {
  PQfinish(c);
}

Connection::Connection(std::string uri) : uri_(std::move(uri)) {
  connect();
}

Connection::~Connection() = default;

void Connection::connect() {
  prepared_.clear();
  // Defaults first: anything the URI says wins (libpq keeps the last value of a keyword).
  const char* keys[] = {"connect_timeout",
                        "application_name",
                        "keepalives",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "tcp_user_timeout",
                        "dbname",
                        nullptr};
  const char* values[] = {"5", "herald", "1", "10", "5", "3", "30000", uri_.c_str(), nullptr};
  conn_.reset(PQconnectdbParams(keys, values, 1));
  if (PQstatus(conn_.get()) != CONNECTION_OK) {
    std::string msg = conn_ ? PQerrorMessage(conn_.get()) : "out of memory";
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    throw DbError(DbError::Kind::kUnavailable, "cannot connect to PostgreSQL: " + msg);
  }
  PQsetNoticeProcessor(
      conn_.get(), [](void*, const char*) {}, nullptr);  // no stderr noise
  // Every execution is planned for its own parameters and the tables as they are then: a plan
  // cached while the queue was empty (a scan of a few rows) would stay as it grew to millions.
  exec("SET plan_cache_mode = force_custom_plan");
  if (!durable_) exec("SET synchronous_commit = off");
}

bool Connection::broken() const {
  return !conn_ || PQstatus(conn_.get()) != CONNECTION_OK;
}

void Connection::ensure_connected() {
  if (!broken()) return;
  if (tx_open_) {
    throw DbError(DbError::Kind::kUnavailable,
                  "the connection to PostgreSQL was lost during a transaction (rolled back)");
  }
  connect();
}

void Connection::begin() {
  exec("BEGIN");
  tx_open_ = true;
}

void Connection::commit() {
  // Whatever happens, the transaction is over: committed, or rolled back by the server.
  try {
    exec("COMMIT");
  } catch (...) {
    tx_open_ = false;
    throw;
  }
  tx_open_ = false;
}

void Connection::rollback() noexcept {
  const bool lost = broken();
  tx_open_ = false;
  if (lost) return;  // the server ended the transaction with the connection
  try {
    exec("ROLLBACK");
  } catch (...) {
  }
}

void Connection::fail(pg_result* r, std::string_view context) {
  std::string msg(context);
  msg += ": ";
  const char* state = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string text = r != nullptr ? PQresultErrorMessage(r) : "";
  if (text.empty() && conn_) text = PQerrorMessage(conn_.get());
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  msg += text;
  const std::string sqlstate = state != nullptr ? state : "";
  PQclear(r);
  if (sqlstate.starts_with("23")) throw DbError(DbError::Kind::kConstraint, msg);
  if (broken() || is_transient(sqlstate)) throw DbError(DbError::Kind::kUnavailable, msg);
  throw DbError(DbError::Kind::kOther, msg);
}

void Connection::exec(std::string_view sql) {
  ensure_connected();
  const std::string s(sql);
  PGresult* r = PQexec(conn_.get(), s.c_str());
  const auto status = PQresultStatus(r);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail(r, s.substr(0, 120));
  PQclear(r);
}

Result Connection::query(std::string_view sql, const Params& params) {
  ensure_connected();
  std::string key(sql);
  auto it = prepared_.find(key);
  if (it == prepared_.end()) {
    std::string name = "h" + std::to_string(next_statement_++);
    PGresult* r = PQprepare(conn_.get(), name.c_str(), key.c_str(), 0, nullptr);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail(r, "prepare " + key.substr(0, 200));
    PQclear(r);
    it = prepared_.emplace(std::move(key), std::move(name)).first;
  }
  const auto values = params.pointers();
  PGresult* r = PQexecPrepared(conn_.get(), it->second.c_str(), params.size(), values.data(),
                               nullptr, nullptr, 0);
  const auto status = PQresultStatus(r);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail(r, it->first.substr(0, 200));
  return Result(r);
}

void Connection::set_durable(bool durable) {
  durable_ = durable;
  exec(durable ? "SET synchronous_commit = on" : "SET synchronous_commit = off");
}

int Connection::backend_pid() const {
  return broken() ? 0 : PQbackendPID(conn_.get());
}

int Connection::socket() const {
  return broken() ? -1 : PQsocket(conn_.get());
}

std::vector<std::pair<std::string, int>> Connection::take_notifications() {
  std::vector<std::pair<std::string, int>> out;
  if (broken() || PQconsumeInput(conn_.get()) == 0) fail(nullptr, "listening");
  while (PGnotify* n = PQnotifies(conn_.get())) {
    out.emplace_back(n->relname, n->be_pid);
    PQfreemem(n);
  }
  return out;
}

}  // namespace herald::pg
