#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace herald::test {

// Lets handlers block until the test releases them or a cap elapses, so a server can always
// stop promptly and no test sleeps longer than it must.
class Gate {
 public:
  void wait_for(std::chrono::milliseconds cap) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, cap, [this] { return open_; });
  }
  void release() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

}  // namespace herald::test
