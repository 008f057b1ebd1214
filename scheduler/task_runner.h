#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "core/clock.h"
#include "db/enqueue.h"

namespace herald {

class Database;
class Session;
struct BackgroundTask;

// Runs background tasks (db/tasks.h) on a thread of its own. It claims a running task that no
// live lease holds, then steps it to its end, each step one short transaction that first
// checks the lease is still its own (and extends it), then does the step's work and records
// the task's progress: no transaction is held across the task. A process that dies leaves its
// task leased; another process (PostgreSQL) takes it over once the lease lapses, and the next
// start of a SQLite herald at once; either resumes from the last committed step. Each process
// that shares a database runs one; exactly one of them steps a task at a time.
class TaskRunner {
 public:
  struct Options {
    int64_t lease_ms = 60000;  // a claim lapses after this long without a step
    int64_t poll_ms = 1000;    // looks for tasks this often when not woken
    int batch = 500;           // rows per step, about
  };

  // Starts the thread. `db` and `clock` must outlive the TaskRunner; waits are on `clock`.
  TaskRunner(Database& db, Clock& clock, Options options);
  // Stops as stop() does.
  ~TaskRunner();
  TaskRunner(const TaskRunner&) = delete;
  TaskRunner& operator=(const TaskRunner&) = delete;

  // A task may be waiting: look now. Cheap; thread-safe.
  void wake();
  // Ends the step under way, if any, and joins; the task it was at stays leased (and
  // resumes where it got to). Idempotent.
  void stop();

 private:
  void run();
  // Claims one task and steps it until it ends, the lease is lost or the runner stops.
  // Returns false if there was none to claim.
  bool run_one(Session& s);
  // Ends `t` failed, saying `why`, if `claim` still holds it.
  void fail(Session& s, BackgroundTask& t, int64_t claim, const std::string& why);
  bool stopping() const;

  Database& db_;
  Clock& clock_;
  Options options_;
  Enqueuer enqueuer_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;     // REQUIRES: mu_ held
  bool stopping_ = false;  // REQUIRES: mu_ held
  std::atomic<bool> stopped_{false};
  std::thread thread_;
};

}  // namespace herald
