#include "db/sqlite/database.h"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include "core/clock.h"
#include "db/inventory.h"
#include "db/sealing.h"
#include "db/sqlite/migrations.h"
#include "db/sqlite/stores.h"

namespace herald::sqlite {
namespace {

// A unit of work on one connection: pooled (given back when the session ends) or dedicated.
class SqliteSession final : public Session {
 public:
  SqliteSession(SqliteDatabase& db, std::unique_ptr<Connection> conn, bool pooled)
      : db_(db),
        conn_(std::move(conn)),
        pooled_(pooled),
        x_{*conn_, db_, *this},
        apps_(x_),
        endpoints_(x_),
        event_types_(x_),
        messages_(x_),
        deliveries_(x_),
        attempts_(x_),
        tokens_(x_),
        idempotency_(x_),
        queue_(x_),
        tasks_(x_) {}
  ~SqliteSession() override {
    end_session();
    if (pooled_) db_.release(std::move(conn_));
  }

  AppStore& apps() override { return apps_; }
  EndpointStore& endpoints() override { return endpoints_; }
  EventTypeStore& event_types() override { return event_types_; }
  MessageStore& messages() override { return messages_; }
  DeliveryStore& deliveries() override { return deliveries_; }
  AttemptStore& attempts() override { return attempts_; }
  TokenStore& tokens() override { return tokens_; }
  IdempotencyStore& idempotency() override { return idempotency_; }
  QueueStore& queue() override { return queue_; }
  TaskStore& tasks() override { return tasks_; }
  SharedLimitStore* shared_limits() override { return nullptr; }
  Inventory inventory() override {
    auto st = conn_->prepare(
        "SELECT (SELECT count(*) FROM applications), (SELECT count(*) FROM endpoints), (SELECT "
        "count(*) FROM endpoint_secrets), (SELECT count(*) FROM event_types), (SELECT count(*) "
        "FROM api_tokens), (SELECT count(*) FROM messages), (SELECT count(*) FROM deliveries), "
        "(SELECT count(*) FROM attempts)");
    st.step();
    return Inventory{st.get_int(0), st.get_int(1), st.get_int(2), st.get_int(3),
                     st.get_int(4), st.get_int(5), st.get_int(6), st.get_int(7)};
  }

 protected:
  void do_begin() override {
    if (FairMutex* m = conn_->write_lock()) lock_ = std::unique_lock(*m);
    try {
      conn_->exec("BEGIN IMMEDIATE");
    } catch (...) {
      if (lock_.owns_lock()) lock_.unlock();
      throw;
    }
  }
  void do_commit() override {
    conn_->exec("COMMIT");
    if (lock_.owns_lock()) lock_.unlock();
  }
  void do_rollback() noexcept override {
    try {
      conn_->exec("ROLLBACK");
    } catch (...) {
    }
    if (lock_.owns_lock()) lock_.unlock();
  }
  void do_savepoint(size_t depth) override { conn_->exec("SAVEPOINT sp" + std::to_string(depth)); }
  void do_release_savepoint(size_t depth) override {
    conn_->exec("RELEASE sp" + std::to_string(depth));
  }
  void do_rollback_to_savepoint(size_t depth) override {
    const std::string name = "sp" + std::to_string(depth);
    conn_->exec("ROLLBACK TO " + name);
    conn_->exec("RELEASE " + name);
  }

 private:
  SqliteDatabase& db_;
  std::unique_ptr<Connection> conn_;
  bool pooled_;
  std::unique_lock<FairMutex> lock_;
  Context x_;
  SqliteAppStore apps_;
  SqliteEndpointStore endpoints_;
  SqliteEventTypeStore event_types_;
  SqliteMessageStore messages_;
  SqliteDeliveryStore deliveries_;
  SqliteAttemptStore attempts_;
  SqliteTokenStore tokens_;
  SqliteIdempotencyStore idempotency_;
  SqliteQueueStore queue_;
  SqliteTaskStore tasks_;
};

}  // namespace

SqliteDatabase::SqliteDatabase(std::string path, const DatabaseOptions& options)
    : Database(options.box),
      path_(std::move(path)),
      hold_(options.exclusive ? std::make_unique<FileLock>(path_) : nullptr),
      max_connections_(options.max_connections < 1 ? 1 : options.max_connections) {
  auto first = open_connection();
  migrate(*first);
  if (hold_) {
    // The file is ours alone, so whatever is claimed in it was claimed by a process that died
    // (kill -9, a crash, the machine's power): those deliveries are due now.
    const TimeMs now = SystemClock().now_ms();
    first->prepare("UPDATE deliveries SET status = 1, due_at = ?, updated_at = ? WHERE status = 3")
        .bind(1, now)
        .bind(2, now)
        .step();
    if (const int64_t n = first->changes(); n > 0) {
      spdlog::info("deliveries that were being sent when the last process stopped, due again: {}",
                   n);
    }
    // Likewise the background tasks it was stepping: the next start resumes them at once.
    first->exec("UPDATE background_tasks SET lease_until = NULL WHERE status = 0");
  }
  idle_.push_back(std::move(first));
  open_ = 1;
  if (secret_box() != nullptr) adopt_master_key(*this);
  if (options.disk_reserve_bytes > 0) {
    reserve_ = std::make_unique<DiskReserve>(path_ + ".reserve", options.disk_reserve_bytes);
  }
  if (options.sqlite_memory_bytes > 0) {
    // One budget for every connection's page cache: 32 connections at cache_size each would
    // otherwise fill to a gigabyte over a large file, slowly, as an unbounded-looking RSS.
    previous_heap_limit_ =
        sqlite3_soft_heap_limit64(static_cast<sqlite3_int64>(options.sqlite_memory_bytes));
  }
}

SqliteDatabase::~SqliteDatabase() {
  idle_.clear();  // the connections close before the limit they ran under goes
  if (previous_heap_limit_) sqlite3_soft_heap_limit64(*previous_heap_limit_);
}

std::optional<int64_t> SqliteDatabase::memory_used() const {
  return sqlite3_memory_used();
}

std::optional<std::string> SqliteDatabase::intake_paused() const {
  if (!reserve_ || !reserve_->paused()) return std::nullopt;
  return "the disk holding " + path_ + " is nearly full: new messages wait until space is freed";
}

std::unique_ptr<Connection> SqliteDatabase::acquire() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !idle_.empty() || open_ < max_connections_; });
  if (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    return c;
  }
  ++open_;
  lock.unlock();
  try {
    return open_connection();
  } catch (...) {
    std::lock_guard relock(mu_);
    --open_;
    cv_.notify_one();
    throw;
  }
}

std::unique_ptr<Session> SqliteDatabase::session() {
  return std::make_unique<SqliteSession>(*this, acquire(), true);
}

std::unique_ptr<Session> SqliteDatabase::dedicated_session(bool durable) {
  auto c = open_connection();
  c->set_durable(durable);
  return std::make_unique<SqliteSession>(*this, std::move(c), false);
}

std::unique_ptr<Connection> SqliteDatabase::open_connection() {
  auto c = std::make_unique<Connection>(path_);
  c->set_write_lock(&write_mu_);
  return c;
}

void SqliteDatabase::release(std::unique_ptr<Connection> c) {
  std::lock_guard lock(mu_);
  idle_.push_back(std::move(c));
  cv_.notify_one();
}

void SqliteDatabase::scrub() {
  auto c = acquire();
  std::unique_lock lock(write_mu_);
  try {
    c->exec("VACUUM");
    c->exec("PRAGMA wal_checkpoint(TRUNCATE)");
  } catch (...) {
    lock.unlock();
    release(std::move(c));
    throw;
  }
  lock.unlock();
  release(std::move(c));
}

}  // namespace herald::sqlite
