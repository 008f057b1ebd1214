#include "db/postgres/database.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "core/encoding.h"
#include "db/inventory.h"
#include "db/postgres/migrations.h"
#include "db/postgres/stores.h"
#include "db/queue_store.h"
#include "db/sealing.h"

namespace herald::pg {
namespace {

constexpr const char* kQueueChannel = "herald_queue";

// A fresh claim id for a transaction: random, positive, never 0.
int64_t new_claim() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  int64_t v = 0;
  while (v == 0) v = static_cast<int64_t>(rng() >> 1);
  return v;
}

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A unit of work on one connection: pooled (given back when the session ends) or dedicated.
class PgSession final : public Session {
 public:
  PgSession(PgDatabase& db, std::unique_ptr<Connection> conn, bool pooled)
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
        tasks_(x_),
        limits_(x_) {}
  ~PgSession() override {
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
  SharedLimitStore* shared_limits() override { return &limits_; }
  Inventory inventory() override {
    auto r = conn_->query(
        "SELECT (SELECT count(*) FROM applications), (SELECT count(*) FROM endpoints), (SELECT "
        "count(*) FROM endpoint_secrets), (SELECT count(*) FROM event_types), (SELECT count(*) "
        "FROM api_tokens), (SELECT count(*) FROM messages), (SELECT count(*) FROM deliveries), "
        "(SELECT count(*) FROM attempts)");
    return Inventory{r.get_int(0, 0), r.get_int(0, 1), r.get_int(0, 2), r.get_int(0, 3),
                     r.get_int(0, 4), r.get_int(0, 5), r.get_int(0, 6), r.get_int(0, 7)};
  }

 protected:
  void do_begin() override {
    conn_->begin();
    x_.claim = new_claim();
  }
  void do_commit() override { conn_->commit(); }
  void do_rollback() noexcept override { conn_->rollback(); }
  void do_savepoint(size_t depth) override { conn_->exec("SAVEPOINT sp" + std::to_string(depth)); }
  void do_release_savepoint(size_t depth) override {
    conn_->exec("RELEASE SAVEPOINT sp" + std::to_string(depth));
  }
  void do_rollback_to_savepoint(size_t depth) override {
    const std::string name = "sp" + std::to_string(depth);
    conn_->exec("ROLLBACK TO SAVEPOINT " + name + "; RELEASE SAVEPOINT " + name);
  }

 private:
  PgDatabase& db_;
  std::unique_ptr<Connection> conn_;
  bool pooled_;
  Context x_;
  PgAppStore apps_;
  PgEndpointStore endpoints_;
  PgEventTypeStore event_types_;
  PgMessageStore messages_;
  PgDeliveryStore deliveries_;
  PgAttemptStore attempts_;
  PgTokenStore tokens_;
  PgIdempotencyStore idempotency_;
  PgQueueStore queue_;
  PgTaskStore tasks_;
  PgSharedLimitStore limits_;
};

}  // namespace

void Context::queue_changed() {
  PgDatabase* d = &db;
  auto tell = [d] {
    d->wake_listener();
    d->signal_queue();
  };
  if (session.in_transaction()) {
    session.on_outcome(tell, {});
  } else {
    tell();
  }
}

PgDatabase::PgDatabase(std::string uri, const DatabaseOptions& options)
    : Database(options.box),
      uri_(std::move(uri)),
      max_connections_(options.max_connections < 1 ? 1 : options.max_connections) {
  auto first = std::make_unique<Connection>(uri_);
  migrate(*first);
  idle_.push_back(std::move(first));
  open_ = 1;
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  notifier_ = std::thread([this] { notify_loop(); });
  try {
    if (secret_box() != nullptr) adopt_master_key(*this);
  } catch (...) {
    stopping_ = true;
    poke();
    notifier_.join();
    ::close(wake_fd_);
    throw;
  }
}

PgDatabase::~PgDatabase() {
  stopping_ = true;
  poke();
  if (notifier_.joinable()) notifier_.join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

std::unique_ptr<Connection> PgDatabase::acquire() {
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
    return std::make_unique<Connection>(uri_);
  } catch (...) {
    std::lock_guard relock(mu_);
    --open_;
    cv_.notify_one();
    throw;
  }
}

void PgDatabase::release(std::unique_ptr<Connection> c) {
  std::lock_guard lock(mu_);
  idle_.push_back(std::move(c));
  cv_.notify_one();
}

std::unique_ptr<Session> PgDatabase::session() {
  return std::make_unique<PgSession>(*this, acquire(), true);
}

std::unique_ptr<Session> PgDatabase::dedicated_session(bool durable) {
  auto c = std::make_unique<Connection>(uri_);
  if (!durable) c->set_durable(false);
  return std::make_unique<PgSession>(*this, std::move(c), false);
}

std::string PgDatabase::describe() const {
  return describe_location(uri_);
}

void PgDatabase::scrub() {
  auto c = acquire();
  try {
    // Rewrites the tables, leaving no dead row versions behind (WAL already written is
    // recycled by the server in time: see docs/SECURITY.md).
    c->exec("VACUUM FULL endpoint_secrets");
    c->exec("VACUUM FULL master_key_check");
  } catch (...) {
    release(std::move(c));
    throw;
  }
  release(std::move(c));
}

void PgDatabase::signal_queue() {
  if (!queue_signalled_.exchange(true)) poke();
}

void PgDatabase::poke() {
  if (wake_fd_ < 0) return;
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void PgDatabase::notify_loop() {
  pthread_setname_np(pthread_self(), "herald-notify");
  std::unique_ptr<Connection> conn;
  int64_t retry_ms = 100;
  int64_t next_connect_at = 0;
  int64_t sent_at = 0;
  int own_pid = 0;
  while (!stopping_) {
    const int64_t now = steady_ms();
    if (!conn && now >= next_connect_at) {
      try {
        conn = std::make_unique<Connection>(uri_);
        conn->exec(std::string("LISTEN ") + kQueueChannel);
        own_pid = conn->backend_pid();
        retry_ms = 100;
        // Whatever was said while we were not listening is lost: look now.
        wake_listener();
      } catch (const std::exception& e) {
        conn.reset();
        spdlog::warn("postgres notifications: {} (again in {} ms)", e.what(), retry_ms);
        next_connect_at = now + retry_ms;
        retry_ms = std::min<int64_t>(retry_ms * 2, 2000);
      }
    }
    try {
      if (conn) {
        if (now - sent_at >= kNotifyEveryMs && queue_signalled_.exchange(false)) {
          conn->exec(std::string("NOTIFY ") + kQueueChannel);
          sent_at = steady_ms();
        }
        for (const auto& [channel, pid] : conn->take_notifications()) {
          if (pid == own_pid || channel != kQueueChannel) continue;  // ours: acted on already
          wake_listener();
        }
      }
    } catch (const std::exception& e) {
      spdlog::warn("postgres notifications: {}", e.what());
      conn.reset();
      next_connect_at = steady_ms() + retry_ms;
      continue;
    }
    // Sleep until something arrives, something is signalled, a debounced send falls due, or
    // a reconnect is due.
    int timeout = 1000;
    const int64_t t = steady_ms();
    if (!conn) timeout = static_cast<int>(std::clamp<int64_t>(next_connect_at - t, 0, 1000));
    if (conn && queue_signalled_) {
      timeout = static_cast<int>(std::clamp<int64_t>(sent_at + kNotifyEveryMs - t, 0, 1000));
    }
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {conn ? conn->socket() : -1, POLLIN, 0}};
    ::poll(fds, conn ? 2 : 1, timeout);
    if (fds[0].revents & POLLIN) {
      uint64_t v = 0;
      [[maybe_unused]] ssize_t n = ::read(wake_fd_, &v, sizeof v);
    }
  }
}

}  // namespace herald::pg
