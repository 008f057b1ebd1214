#include "core/metrics.h"

#include <cstdio>

namespace herald {

void Metrics::attempt(Outcome outcome, int64_t duration_ms) {
  attempts_[static_cast<size_t>(outcome)].fetch_add(1, std::memory_order_relaxed);
  size_t i = 0;
  while (i < kLatencyBucketsMs.size() && duration_ms > kLatencyBucketsMs[i]) ++i;
  latency_buckets_[i].fetch_add(1, std::memory_order_relaxed);
  latency_sum_ms_.fetch_add(static_cast<uint64_t>(duration_ms < 0 ? 0 : duration_ms),
                            std::memory_order_relaxed);
}

std::string Metrics::render(const Gauges& g) const {
  std::string out;
  char line[256];
  auto add = [&](const char* fmt, auto... args) {
    std::snprintf(line, sizeof line, fmt, args...);
    out += line;
  };
  add("# HELP herald_messages_accepted_total Messages accepted through the API (202).\n");
  add("# TYPE herald_messages_accepted_total counter\n");
  add("herald_messages_accepted_total %llu\n",
      static_cast<unsigned long long>(messages_accepted_.load()));

  add("# HELP herald_attempts_total Delivery attempts recorded, by outcome.\n");
  add("# TYPE herald_attempts_total counter\n");
  const char* names[] = {"success", "http_error", "network_error"};
  for (size_t i = 0; i < attempts_.size(); ++i) {
    add("herald_attempts_total{outcome=\"%s\"} %llu\n", names[i],
        static_cast<unsigned long long>(attempts_[i].load()));
  }

  add("# HELP herald_deliveries_pending Deliveries waiting to be sent (due, scheduled or "
      "parked).\n");
  add("# TYPE herald_deliveries_pending gauge\n");
  add("herald_deliveries_pending %lld\n", static_cast<long long>(g.pending));
  add("# HELP herald_deliveries_in_flight Deliveries handed to the sender, result not recorded.\n");
  add("# TYPE herald_deliveries_in_flight gauge\n");
  add("herald_deliveries_in_flight %lld\n", static_cast<long long>(g.in_flight));
  add("# HELP herald_queue_lag_seconds Age of the oldest delivery that is due and not sent.\n");
  add("# TYPE herald_queue_lag_seconds gauge\n");
  add("herald_queue_lag_seconds %.3f\n", g.queue_lag_s);
  if (g.sqlite_memory_bytes) {
    add("# HELP herald_sqlite_memory_bytes Memory SQLite holds in this process (page caches, "
        "statements), bounded by HERALD_SQLITE_MEMORY_BYTES.\n");
    add("# TYPE herald_sqlite_memory_bytes gauge\n");
    add("herald_sqlite_memory_bytes %lld\n", static_cast<long long>(*g.sqlite_memory_bytes));
  }
  if (g.heap_in_use_bytes && g.heap_free_bytes) {
    add("# HELP herald_heap_bytes The C allocator's heap: in use, and free for reuse.\n");
    add("# TYPE herald_heap_bytes gauge\n");
    add("herald_heap_bytes{state=\"in_use\"} %lld\n", static_cast<long long>(*g.heap_in_use_bytes));
    add("herald_heap_bytes{state=\"free\"} %lld\n", static_cast<long long>(*g.heap_free_bytes));
  }

  add("# HELP herald_attempt_duration_seconds Time from sending a request to its response.\n");
  add("# TYPE herald_attempt_duration_seconds histogram\n");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kLatencyBucketsMs.size(); ++i) {
    cumulative += latency_buckets_[i].load();
    add("herald_attempt_duration_seconds_bucket{le=\"%g\"} %llu\n",
        static_cast<double>(kLatencyBucketsMs[i]) / 1000.0,
        static_cast<unsigned long long>(cumulative));
  }
  cumulative += latency_buckets_.back().load();
  add("herald_attempt_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
      static_cast<unsigned long long>(cumulative));
  add("herald_attempt_duration_seconds_sum %.3f\n",
      static_cast<double>(latency_sum_ms_.load()) / 1000.0);
  add("herald_attempt_duration_seconds_count %llu\n", static_cast<unsigned long long>(cumulative));
  return out;
}

}  // namespace herald
