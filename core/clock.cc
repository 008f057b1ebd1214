#include "core/clock.h"

#include <chrono>

namespace herald {

TimeMs SystemClock::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace herald
