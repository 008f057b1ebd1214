#pragma once

#include <chrono>
#include <thread>

namespace herald::test {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

// Generous: a broken component fails a test by this deadline, never hangs it.
inline constexpr auto kDeadline = 5s;

// Polls `pred` every 5 ms until it holds or `limit` passes; returns its last value.
template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit = kDeadline) {
  const auto deadline = SteadyClock::now() + limit;
  while (SteadyClock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

inline int64_t ms_since(SteadyClock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count();
}

}  // namespace herald::test
