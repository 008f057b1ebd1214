#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "db/list.h"

namespace herald {

// Svix's BackgroundTaskStatus.
enum class TaskStatus : int { kRunning = 0, kFinished = 1, kFailed = 2 };
// "running", "finished", "failed"; and back (nullopt for anything else).
const char* task_status_text(TaskStatus s);
std::optional<TaskStatus> parse_task_status(std::string_view text);

// A long job (Svix's background task) that runs in bounded steps, each committed together with
// the task's progress, so that whoever steps it next resumes where the last commit left it.
struct BackgroundTask {
  std::string id;                     // qtask_...
  std::optional<std::string> app_id;  // the application it works on; nullopt: all (admin only)
  std::string kind;                   // Svix's BackgroundTaskType, e.g. "endpoint.recover"
  TaskStatus status = TaskStatus::kRunning;
  std::string params_json = "{}";  // what it was asked to do, fixed when it was made
  std::string state_json = "{}";   // how far it got: what the next step resumes from
  std::string data_json = "{}";    // what it reports (Svix's `data`), kept up to date
  TimeMs created_at = 0;
  TimeMs updated_at = 0;
};

// Filters of a task listing; unset members don't filter.
struct TaskFilter {
  std::optional<TaskStatus> status;
  std::optional<std::string> kind;
  std::optional<std::string> app_id;  // only the tasks of this application
};

// Background tasks. A running task is stepped under a lease in its row: claim() takes one no
// live lease holds; each step's transaction first hold()s it (the step then runs alone, and
// not at all once the lease went to another process) and ends with save().
class TaskStore {
 public:
  virtual ~TaskStore() = default;

  virtual void insert(const BackgroundTask& t) = 0;
  virtual std::optional<BackgroundTask> get(const std::string& id) = 0;
  // Newest first (ListParams::descending false: oldest first).
  virtual ListPage<BackgroundTask> list(const ListParams& p, const TaskFilter& f) = 0;
  // Leases the oldest running task that no live lease holds (never leased, or lapsed by
  // `now`) to `claim` until now + lease_ms; rows another process is claiming are skipped.
  virtual std::optional<BackgroundTask> claim(TimeMs now, int64_t lease_ms, int64_t claim) = 0;
  // If the task is still running under `claim`: locks it until the transaction ends, extends
  // the lease to `lease_until` and returns true; else changes nothing and returns false.
  // REQUIRES: a transaction.
  virtual bool hold(const std::string& id, int64_t claim, TimeMs lease_until) = 0;
  // Writes t's status, state, data and updated_at; a task no longer running loses its lease.
  // REQUIRES: held by `claim` in this transaction.
  virtual void save(const BackgroundTask& t, int64_t claim) = 0;
  // Deletes up to `limit` tasks that ended (finished or failed) before `before`; returns how
  // many.
  virtual int64_t purge(TimeMs before, int limit) = 0;
};

}  // namespace herald
