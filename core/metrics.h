#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

namespace herald {

// Process-wide counters for /metrics. Updated lock-free from any thread; read for rendering.
class Metrics {
 public:
  // Upper bounds (ms) of the attempt latency histogram's buckets; +Inf is implied.
  static constexpr std::array<int64_t, 14> kLatencyBucketsMs = {
      1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000};

  // How an attempt ended, for herald_attempts_total{outcome=...}.
  enum class Outcome { kSuccess = 0, kHttpError = 1, kNetworkError = 2 };

  void message_accepted() { messages_accepted_.fetch_add(1, std::memory_order_relaxed); }
  // Deliveries this process has handed to its sender and not yet recorded (the scheduler sets
  // it as that changes).
  void set_in_flight(int64_t n) { in_flight_.store(n, std::memory_order_relaxed); }
  int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  // One recorded attempt: its outcome and how long the HTTP exchange took.
  void attempt(Outcome outcome, int64_t duration_ms);

  // Queue figures read at scrape time.
  struct Gauges {
    int64_t pending = 0;     // deliveries waiting (due, scheduled for later, or parked)
    int64_t in_flight = 0;   // handed to the sender, result not yet recorded
    double queue_lag_s = 0;  // age of the oldest due delivery
    std::optional<int64_t> sqlite_memory_bytes;  // SQLite's heap in this process (not on PG)
    std::optional<int64_t> heap_in_use_bytes;    // the C allocator's, where it says
    std::optional<int64_t> heap_free_bytes;
  };
  // The Prometheus text exposition (version 0.0.4) of the counters and `g`.
  std::string render(const Gauges& g) const;

  uint64_t messages_accepted() const { return messages_accepted_.load(); }
  uint64_t attempts(Outcome o) const { return attempts_[static_cast<size_t>(o)].load(); }

 private:
  std::atomic<uint64_t> messages_accepted_{0};
  std::atomic<int64_t> in_flight_{0};
  std::array<std::atomic<uint64_t>, 3> attempts_{};
  std::array<std::atomic<uint64_t>, kLatencyBucketsMs.size() + 1> latency_buckets_{};
  std::atomic<uint64_t> latency_sum_ms_{0};
};

}  // namespace herald
