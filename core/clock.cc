#include "core/clock.h"

#include <algorithm>
#include <chrono>

namespace herald {

TimeMs SystemClock::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool SystemClock::wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                             TimeMs deadline, const std::function<bool()>& ready) const {
  const int64_t ms = std::max<int64_t>(0, deadline - now_ms());
  return cv.wait_for(lock, std::chrono::milliseconds(ms), ready);
}

void ManualClock::set(TimeMs t) {
  now_.store(t);
  tick();
}

void ManualClock::advance(TimeMs delta) {
  now_.fetch_add(delta);
  tick();
}

void ManualClock::tick() {
  // A waiter registers and leaves without holding its own mutex, so holding the list while
  // taking each waiter's mutex cannot deadlock, and no waiter leaves meanwhile.
  std::lock_guard guard(waiters_mu_);
  for (const Waiter& w : waiters_) {
    // Taking the waiter's mutex orders this after its last look at the time, so the
    // notification cannot fall between that look and its sleep.
    { std::lock_guard lock(*w.mu); }
    w.cv->notify_all();
  }
}

bool ManualClock::wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                             TimeMs deadline, const std::function<bool()>& ready) const {
  lock.unlock();
  {
    std::lock_guard guard(waiters_mu_);
    waiters_.push_back(Waiter{lock.mutex(), &cv});
  }
  lock.lock();
  cv.wait(lock, [&] { return ready() || now_ms() >= deadline; });
  lock.unlock();
  {
    std::lock_guard guard(waiters_mu_);
    for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
      if (it->cv == &cv && it->mu == lock.mutex()) {
        waiters_.erase(it);
        break;
      }
    }
  }
  lock.lock();
  return ready();
}

}  // namespace herald
