#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "db/sqlite.h"

namespace herald {

class SecretBox;

// herald's database: a file path and a bounded pool of connections to it. Opening it applies
// the migrations. Thread-safe.
class Database {
 public:
  // Opens `path` (creating it), applies pending migrations. At most `max_connections` are
  // open at once; acquire() waits for a free one. With `box`, every connection seals endpoint
  // secrets with it, and opening adopts it (see adopt_master_key in db/sealing.h): throws
  // MasterKeyMismatch if the database was sealed with another key.
  Database(std::string path, int max_connections, std::shared_ptr<const SecretBox> box = nullptr);
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // A connection held exclusively until the handle is destroyed.
  class Handle {
   public:
    Handle(Database* db, std::unique_ptr<Connection> c) : db_(db), conn_(std::move(c)) {}
    Handle(Handle&&) = default;
    ~Handle();
    Connection& operator*() { return *conn_; }
    Connection* operator->() { return conn_.get(); }

   private:
    Database* db_;
    std::unique_ptr<Connection> conn_;
  };

  Handle acquire();
  // A connection of its own for a long-lived user (the scheduler, the write batcher), outside
  // the pool's count, set up like the pool's. It must not outlive the Database.
  std::unique_ptr<Connection> open_connection();
  const std::string& path() const { return path_; }

 private:
  void release(std::unique_ptr<Connection> c);

  std::string path_;
  int max_connections_;
  std::shared_ptr<const SecretBox> box_;
  FairMutex write_mu_;  // held by every Transaction on this database's connections
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;  // REQUIRES: mu_ held
  int open_ = 0;                                   // REQUIRES: mu_ held
};

}  // namespace herald
