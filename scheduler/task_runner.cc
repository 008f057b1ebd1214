#include "scheduler/task_runner.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/encoding.h"
#include "db/database.h"
#include "db/errors.h"
#include "db/session.h"
#include "db/task_store.h"
#include "db/tasks.h"

namespace herald {
namespace {

// A claim no other process will pick: 63 random bits, never 0.
int64_t new_claim() {
  const std::string bytes = random_bytes(sizeof(uint64_t));
  uint64_t v = 0;
  std::memcpy(&v, bytes.data(), sizeof v);
  v &= 0x7fffffffffffffffULL;
  return v == 0 ? 1 : static_cast<int64_t>(v);
}

}  // namespace

TaskRunner::TaskRunner(Database& db, Clock& clock, Options options)
    : db_(db), clock_(clock), options_(options), enqueuer_(clock) {
  thread_ = std::thread([this] { run(); });
}

TaskRunner::~TaskRunner() {
  stop();
}

void TaskRunner::wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_one();
}

void TaskRunner::stop() {
  if (stopped_.exchange(true)) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

bool TaskRunner::stopping() const {
  std::lock_guard lock(mu_);
  return stopping_;
}

void TaskRunner::run() {
  pthread_setname_np(pthread_self(), "herald-tasks");
  std::unique_ptr<Session> s;
  for (;;) {
    bool worked = false;
    try {
      if (!s) s = db_.dedicated_session();
      worked = run_one(*s);
    } catch (const std::exception& e) {
      // The lease makes this safe: the task is taken up again, from its last step, later.
      spdlog::error("background tasks: {}", e.what());
      if (s) s->rollback();
    }
    std::unique_lock lock(mu_);
    if (stopping_) return;
    if (worked) continue;
    clock_.wait_until(lock, cv_, clock_.now_ms() + options_.poll_ms,
                      [&] { return woken_ || stopping_; });
    woken_ = false;
    if (stopping_) return;
  }
}

bool TaskRunner::run_one(Session& s) {
  const int64_t claim = new_claim();
  s.begin();
  auto claimed = s.tasks().claim(clock_.now_ms(), options_.lease_ms, claim);
  s.commit();
  if (!claimed) return false;
  BackgroundTask t = std::move(*claimed);
  spdlog::info("background task {} ({}): running", t.id, t.kind);
  while (t.status == TaskStatus::kRunning) {
    if (stopping()) return true;
    const TimeMs now = clock_.now_ms();
    BackgroundTask next = t;
    s.begin();
    try {
      if (!s.tasks().hold(t.id, claim, now + options_.lease_ms)) {
        // Our lease lapsed and another process took the task over (or it was deleted).
        s.rollback();
        spdlog::warn("background task {}: lost its lease; left to whoever holds it", t.id);
        return true;
      }
      step_task(s, enqueuer_, next, now, options_.batch);
      s.tasks().save(next, claim);
      s.commit();
    } catch (const DbError&) {
      s.rollback();
      throw;
    } catch (const std::exception& e) {
      // Not the store's failure: the task cannot go on (TaskFailed, or state it cannot read).
      s.rollback();
      fail(s, t, claim, e.what());
      return true;
    }
    t = std::move(next);
  }
  spdlog::info("background task {} ({}): {}", t.id, t.kind, task_status_text(t.status));
  return true;
}

void TaskRunner::fail(Session& s, BackgroundTask& t, int64_t claim, const std::string& why) {
  spdlog::warn("background task {} ({}) failed: {}", t.id, t.kind, why);
  const TimeMs now = clock_.now_ms();
  s.begin();
  if (!s.tasks().hold(t.id, claim, now + options_.lease_ms)) {
    s.rollback();
    return;
  }
  nlohmann::json data = nlohmann::json::parse(t.data_json, nullptr, false);
  if (!data.is_object()) data = nlohmann::json::object();
  data["error"] = why;
  t.status = TaskStatus::kFailed;
  t.data_json = data.dump();
  t.updated_at = now;
  s.tasks().save(t, claim);
  s.commit();
}

}  // namespace herald
