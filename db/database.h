#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>

#include "core/config.h"
#include "db/session.h"

namespace herald {

class QueueListener;
class SecretBox;

struct DatabaseOptions {
  // Pooled connections open at once at most; session() waits for a free one.
  int max_connections = 8;
  // The master key that seals endpoint secrets; null: they are written in plaintext and
  // sealed ones cannot be read. Opening adopts it (see adopt_master_key in db/sealing.h).
  std::shared_ptr<const SecretBox> box;
  // SQLite: hold the file for this process alone (a second holder, in this process or another,
  // is refused with a DbError naming the holder's pid), and since no other process can be
  // using it, make every delivery still claimed in it (by a process that died sending it) due
  // at once rather than when its lease lapses. `herald serve` opens its store so. PostgreSQL,
  // shared by design, ignores it.
  bool exclusive = false;
  // SQLite: bytes kept back on the file's filesystem (a ballast file, <path>.reserve) so that
  // on a full disk the deliveries already accepted are still sent and recorded while new
  // messages are refused (see intake_paused). 0: none. PostgreSQL ignores it.
  uint64_t disk_reserve_bytes = 0;
  // SQLite: a bound on the memory SQLite holds in this process, over all its connections (a
  // soft heap limit: past it, page caches reuse their pages rather than grow). Process-wide
  // while the database is open; 0: none beyond each connection's cache_size. PostgreSQL
  // ignores it.
  uint64_t sqlite_memory_bytes = 0;
};

// herald's store: SQLite (a file one process owns) or PostgreSQL (shared by any number of
// processes). Opening it applies pending migrations. Everything above db/ reaches storage only
// through this and the sessions it hands out. Thread-safe.
class Database {
 public:
  virtual ~Database() = default;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // A session on a pooled connection, waiting for one to be free.
  virtual std::unique_ptr<Session> session() = 0;
  // A session on a connection of its own, outside the pool, for a long-lived user (the
  // scheduler, the write batcher). It must not outlive the Database. Not `durable`: a commit
  // survives a crash of the process but may be lost with the machine's power (fine for the
  // scheduler: a lost claim or result only means a delivery is tried again).
  virtual std::unique_ptr<Session> dedicated_session(bool durable = true) = 0;
  // A pooled session with a write transaction begun.
  std::unique_ptr<Session> begin() {
    auto s = session();
    s->begin();
    return s;
  }

  // True if several processes may share this database's queue (PostgreSQL): limits then live
  // in the store (Session::shared_limits) and other processes' writes arrive unannounced.
  virtual bool shared() const = 0;
  // Where the data is, for messages: a path, or a URI without its password.
  virtual std::string describe() const = 0;
  // Rewrites storage so that no overwritten or deleted value (an old sealed secret) remains in
  // it. Throws DbError. REQUIRES: no session of this database is busy.
  virtual void scrub() = 0;
  // Why new messages cannot be taken now, or nullopt when they can: the disk holding a SQLite
  // store is nearly full (DatabaseOptions::disk_reserve_bytes). Cheap; thread-safe.
  virtual std::optional<std::string> intake_paused() const { return std::nullopt; }
  // Bytes the store's library holds in this process (SQLite: page caches, statements), for
  // /metrics; nullopt where the store lives in another process (PostgreSQL).
  virtual std::optional<int64_t> memory_used() const { return std::nullopt; }
  // The master key the database seals secrets with; null without one.
  const SecretBox* secret_box() const { return box_.get(); }
  const std::shared_ptr<const SecretBox>& shared_secret_box() const { return box_; }

  // The process's consumer of the queue, told of new deliveries once they commit (see
  // QueueListener). Null: none. Setting it waits for wake_listener() calls under way, so once
  // it was set null (or replaced) the old one is no longer called from there; hand-over calls
  // on it are the caller's to end (a store's writers must stop before their listener dies).
  void set_queue_listener(QueueListener* l) {
    std::unique_lock lock(listener_mu_);
    listener_ = l;
  }
  QueueListener* queue_listener() const {
    std::shared_lock lock(listener_mu_);
    return listener_;
  }
  // Wakes the listener, if there is one. Thread-safe.
  void wake_listener() const;

 protected:
  explicit Database(std::shared_ptr<const SecretBox> box) : box_(std::move(box)) {}

 private:
  std::shared_ptr<const SecretBox> box_;
  mutable std::shared_mutex listener_mu_;
  QueueListener* listener_ = nullptr;  // REQUIRES: listener_mu_ held
};

// Opens the database at `location`: a postgresql:// or postgres:// URI (libpq syntax) selects
// PostgreSQL; anything else is the path of a SQLite file, created if missing. Throws DbError,
// or MasterKeyMismatch when options.box is not the key the database was sealed with.
std::unique_ptr<Database> open_database(const std::string& location,
                                        const DatabaseOptions& options);

}  // namespace herald
