#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "db/database.h"
#include "db/sqlite/connection.h"
#include "db/sqlite/disk_reserve.h"
#include "db/sqlite/file_lock.h"

namespace herald::sqlite {

// herald's embedded store: one SQLite file (WAL) that this process owns, and a bounded pool of
// connections to it. Every write transaction of the process queues on one fair lock, so writers
// wait in turn instead of polling SQLite's busy lock.
class SqliteDatabase final : public Database {
 public:
  // Opens `path` (creating it) and applies pending migrations; with options.box, adopts it.
  SqliteDatabase(std::string path, const DatabaseOptions& options);
  ~SqliteDatabase() override;

  std::unique_ptr<Session> session() override;
  std::unique_ptr<Session> dedicated_session(bool durable) override;
  bool shared() const override { return false; }
  std::string describe() const override { return path_; }
  void scrub() override;
  std::optional<std::string> intake_paused() const override;
  std::optional<int64_t> memory_used() const override;

  // A connection set up like the pool's, outside its count.
  std::unique_ptr<Connection> open_connection();
  // Gives a pooled connection back.
  void release(std::unique_ptr<Connection> c);

 private:
  std::unique_ptr<Connection> acquire();

  std::string path_;
  std::unique_ptr<FileLock> hold_;        // with DatabaseOptions::exclusive
  std::unique_ptr<DiskReserve> reserve_;  // with DatabaseOptions::disk_reserve_bytes
  int max_connections_;
  // The soft heap limit before this database set its own (options.sqlite_memory_bytes), put
  // back when it closes; nullopt: it set none.
  std::optional<int64_t> previous_heap_limit_;
  FairMutex write_mu_;  // held by every write transaction on this database's connections
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;  // REQUIRES: mu_ held
  int open_ = 0;                                   // REQUIRES: mu_ held
};

}  // namespace herald::sqlite
