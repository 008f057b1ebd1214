#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "db/database.h"
#include "db/postgres/connection.h"

namespace herald::pg {

// herald's shared store: a PostgreSQL database that any number of herald processes use at once.
// A bounded pool of connections serves sessions; one more connection, on a thread of its own,
// carries the wake-ups between processes (LISTEN/NOTIFY): after a commit that queued
// deliveries, the other processes are told, at most once per kNotifyEveryMs, never from inside
// the transaction. They are hints: every process also polls.
class PgDatabase final : public Database {
 public:
  // Connects to `uri`, applies pending migrations, and starts the notification thread; with
  // options.box, adopts it. Throws DbError, or MasterKeyMismatch.
  PgDatabase(std::string uri, const DatabaseOptions& options);
  // Stops the notification thread. Every session must be gone.
  ~PgDatabase() override;

  std::unique_ptr<Session> session() override;
  std::unique_ptr<Session> dedicated_session(bool durable) override;
  bool shared() const override { return true; }
  std::string describe() const override;
  void scrub() override;

  // Gives a pooled connection back.
  void release(std::unique_ptr<Connection> c);
  // After a commit that made deliveries due: other processes are told.
  void signal_queue();

  // At most one notification per this many milliseconds per process.
  static constexpr int64_t kNotifyEveryMs = 10;

 private:
  std::unique_ptr<Connection> acquire();
  // The notification thread: sends what was signalled, hands on what others sent, and
  // reconnects (then assumes it missed something) when the connection is lost.
  void notify_loop();
  // Wakes the notification thread.
  void poke();

  std::string uri_;
  int max_connections_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;  // REQUIRES: mu_ held
  int open_ = 0;                                   // REQUIRES: mu_ held

  std::atomic<bool> queue_signalled_{false};
  std::atomic<bool> stopping_{false};
  int wake_fd_ = -1;  // an eventfd that interrupts the notification thread's poll
  std::thread notifier_;
};

}  // namespace herald::pg
