#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <thread>

namespace herald {

// The C allocator's own figures: bytes handed out and not freed, and bytes it holds free
// (freed by herald, kept for reuse); under AddressSanitizer, its allocator's. nullopt where
// the C library does not say (not glibc).
struct HeapFigures {
  int64_t in_use = 0;
  int64_t free = 0;
};
std::optional<HeapFigures> heap_figures();

// Gives the C allocator's free pages back to the system, every `period`, on a thread of its
// own. glibc keeps what a thread freed in that thread's arena for it to reuse; with dozens of
// threads that take turns (HTTP workers, database connections) the retained pages add up to a
// resident size that only grows, though little of it is in use. A no-op without glibc, and
// under AddressSanitizer, whose allocator returns memory by itself.
class HeapTrimmer {
 public:
  explicit HeapTrimmer(std::chrono::milliseconds period);
  ~HeapTrimmer();
  HeapTrimmer(const HeapTrimmer&) = delete;
  HeapTrimmer& operator=(const HeapTrimmer&) = delete;

  // Trims once, now; returns whether the allocator gave memory back.
  static bool trim();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace herald
