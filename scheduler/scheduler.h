#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/retry.h"
#include "core/types.h"
#include "sender/sender.h"

namespace herald {

class Database;

// Moves the queue: claims due deliveries under a lease, signs them, hands them to the
// Sender, and records each attempt together with its delivery's new state in one
// transaction per batch of results. Runs one thread of its own; the Sender runs another.
class Scheduler {
 public:
  struct Options {
    RetryPolicy retry = RetryPolicy::standard();
    int max_in_flight = 512;        // deliveries handed to the sender and not yet recorded
    int endpoint_concurrency = 32;  // of those, at most this many to one endpoint
    int claim_batch = 256;          // deliveries claimed per transaction at most
    int64_t lease_ms = 60000;       // a claim lapses after this long without a result
    int64_t request_timeout_ms = 15000;
    int64_t connect_timeout_ms = 5000;
    int64_t idle_poll_ms = 1000;  // longest sleep when nothing is due
    Sender::Options sender;
  };

  // Starts the scheduler thread and its Sender. `db` and `clock` must outlive the Scheduler.
  Scheduler(Database& db, Clock& clock, Options options);
  // Stops as stop(0) would.
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Tells the scheduler new deliveries may be due now. Cheap; thread-safe.
  void wake();

  // Stops claiming, lets deliveries in flight finish for up to `drain_ms`, records every
  // result (aborted ones go back to the queue unchanged), and joins. Idempotent.
  void stop(int64_t drain_ms);

  // Deliveries handed to the sender whose result is not yet recorded.
  size_t in_flight() const;

 private:
  // A delivery handed to the sender, kept until its result is recorded.
  struct InFlight {
    Delivery delivery;
    std::string url;
    std::string request_headers_json;
    TimeMs sent_at = 0;
  };
  void run();
  // Claims and submits what is due; returns how long the loop may sleep.
  int64_t claim_and_send();
  void record(std::vector<DeliveryResult> results);
  void on_results(std::vector<DeliveryResult>&& results);

  Database& db_;
  Clock& clock_;
  Options options_;
  std::mt19937_64 rng_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;                                       // REQUIRES: mu_ held
  bool stopping_ = false;                                    // REQUIRES: mu_ held
  std::vector<DeliveryResult> results_;                      // REQUIRES: mu_ held
  std::unordered_map<uint64_t, InFlight> in_flight_;         // REQUIRES: mu_ held
  std::unordered_map<std::string, int> endpoint_in_flight_;  // REQUIRES: mu_ held
  uint64_t next_tag_ = 1;                                    // only the scheduler thread

  std::unique_ptr<Sender> sender_;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

}  // namespace herald
