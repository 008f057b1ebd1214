#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace herald {

class Database;
class Session;

// Group commit: runs the writes of many callers in one transaction on a thread of its own,
// so that one durable commit (one fsync) acknowledges all of them. Each caller's work runs in a
// savepoint of its own: when it throws, only its changes are undone and the exception reaches that
// caller. The commit is durable before any caller returns. Thread-safe.
class WriteBatcher {
 public:
  // Starts the writer thread with a session of its own. `db` must outlive the batcher.
  // At most `max_batch` works share one transaction.
  explicit WriteBatcher(Database& db, size_t max_batch = 512);
  // Runs what is queued, then joins the thread.
  ~WriteBatcher();
  WriteBatcher(const WriteBatcher&) = delete;
  WriteBatcher& operator=(const WriteBatcher&) = delete;

  // Runs `work` inside a shared write transaction and returns once that transaction is
  // committed. Rethrows what `work` threw (its changes undone), or a DbError when the commit
  // failed (nothing of the batch was written). `work` must not start a transaction itself.
  void run(const std::function<void(Session&)>& work);

  // Transactions committed so far (for tests and metrics).
  uint64_t commits() const;

 private:
  struct Job {
    const std::function<void(Session&)>* work;
    std::exception_ptr error;
    bool done = false;                // REQUIRES: mu_ held
    std::condition_variable done_cv;  // wakes this job's caller alone
  };
  void loop();

  std::unique_ptr<Session> session_;
  const size_t max_batch_;
  mutable std::mutex mu_;
  std::condition_variable cv_;  // wakes the writer
  std::vector<Job*> queue_;     // REQUIRES: mu_ held
  bool stopping_ = false;       // REQUIRES: mu_ held
  uint64_t commits_ = 0;        // REQUIRES: mu_ held
  std::thread thread_;
};

}  // namespace herald
