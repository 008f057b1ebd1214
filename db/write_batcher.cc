#include "db/write_batcher.h"

#include <pthread.h>

#include "db/database.h"

namespace herald {

WriteBatcher::WriteBatcher(Database& db, size_t max_batch)
    : session_(db.dedicated_session()), max_batch_(max_batch < 1 ? 1 : max_batch) {
  thread_ = std::thread([this] { loop(); });
}

WriteBatcher::~WriteBatcher() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void WriteBatcher::run(const std::function<void(Session&)>& work) {
  Job job;
  job.work = &work;
  {
    std::unique_lock lock(mu_);
    queue_.push_back(&job);
    cv_.notify_one();
    job.done_cv.wait(lock, [&] { return job.done; });
  }
  if (job.error) std::rethrow_exception(job.error);
}

uint64_t WriteBatcher::commits() const {
  std::lock_guard lock(mu_);
  return commits_;
}

void WriteBatcher::loop() {
  pthread_setname_np(pthread_self(), "herald-write");  // for top -H and perf
  for (;;) {
    std::vector<Job*> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return !queue_.empty() || stopping_; });
      if (queue_.empty()) return;  // stopping, and nothing left to write
      const size_t n = std::min(queue_.size(), max_batch_);
      batch.assign(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    }
    bool committed = false;
    std::exception_ptr commit_error;
    Session& s = *session_;
    try {
      s.begin();
      for (Job* job : batch) {
        s.savepoint();
        try {
          (*job->work)(s);
          s.release_savepoint();
        } catch (...) {
          job->error = std::current_exception();
          s.rollback_to_savepoint();
        }
      }
      s.commit();
      committed = true;
    } catch (...) {
      commit_error = std::current_exception();
      s.rollback();
    }
    std::lock_guard lock(mu_);
    if (committed) ++commits_;
    for (Job* job : batch) {
      if (!committed) job->error = commit_error;
      job->done = true;
      job->done_cv.notify_one();  // under mu_: the job lives until its caller sees done
    }
  }
}

}  // namespace herald
