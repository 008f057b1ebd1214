#include "core/heap.h"

#include <pthread.h>

#if defined(__SANITIZE_ADDRESS__)
#include <cstddef>
// AddressSanitizer's allocator interface (its header is not always installed; libasan has these).
extern "C" size_t __sanitizer_get_current_allocated_bytes();
extern "C" size_t __sanitizer_get_free_bytes();
#elif defined(__GLIBC__)
#include <malloc.h>
#endif

namespace herald {

std::optional<HeapFigures> heap_figures() {
#if defined(__SANITIZE_ADDRESS__)
  // Under AddressSanitizer its allocator serves every malloc: ask it.
  return HeapFigures{static_cast<int64_t>(__sanitizer_get_current_allocated_bytes()),
                     static_cast<int64_t>(__sanitizer_get_free_bytes())};
#elif defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  const struct mallinfo2 m = mallinfo2();
  // Small blocks in use plus the large ones mmap'd on their own; free: the arenas' free chunks.
  return HeapFigures{static_cast<int64_t>(m.uordblks + m.hblkhd), static_cast<int64_t>(m.fordblks)};
#else
  return std::nullopt;
#endif
}

bool HeapTrimmer::trim() {
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)  // AddressSanitizer returns its own
  return malloc_trim(0) == 1;
#else
  return false;
#endif
}

HeapTrimmer::HeapTrimmer(std::chrono::milliseconds period) {
  thread_ = std::thread([this, period] {
    pthread_setname_np(pthread_self(), "herald-trim");  // for top -H and perf
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, period, [this] { return stopping_; })) {
      lock.unlock();
      trim();
      lock.lock();
    }
  });
}

HeapTrimmer::~HeapTrimmer() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

}  // namespace herald
