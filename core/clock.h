#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

namespace herald {

// Milliseconds since the Unix epoch.
using TimeMs = int64_t;

// A source of wall-clock time. Everything that depends on time takes a Clock&, and a thread
// that waits for a time waits through it, so tests move time forward instead of sleeping.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimeMs now_ms() const = 0;

  // Waits on `cv`, whose mutex `lock` holds, until `ready()` is true or this clock reads
  // `deadline` or later; returns ready()'s last value. Whoever makes ready() true notifies
  // `cv` while holding the mutex or after changing the state under it.
  virtual bool wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                          TimeMs deadline, const std::function<bool()>& ready) const = 0;
};

// The real clock (std::chrono::system_clock).
class SystemClock final : public Clock {
 public:
  TimeMs now_ms() const override;
  bool wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, TimeMs deadline,
                  const std::function<bool()>& ready) const override;
};

// A clock that only moves when told to; a wait ends when set() or advance() reaches its
// deadline. Thread-safe. Must outlive its waiters.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimeMs start) : now_(start) {}
  TimeMs now_ms() const override { return now_.load(); }
  void set(TimeMs t);
  void advance(TimeMs delta);
  bool wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, TimeMs deadline,
                  const std::function<bool()>& ready) const override;

 private:
  // Wakes every waiter so it looks at the time again.
  void tick();

  std::atomic<TimeMs> now_;
  struct Waiter {
    std::mutex* mu;
    std::condition_variable* cv;
  };
  mutable std::mutex waiters_mu_;
  mutable std::vector<Waiter> waiters_;  // REQUIRES: waiters_mu_ held
};

}  // namespace herald
