#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/retry.h"
#include "core/types.h"
#include "db/queue_store.h"
#include "scheduler/claim_policy.h"
#include "scheduler/endpoint_limits.h"
#include "scheduler/recorder.h"
#include "scheduler/retention.h"
#include "scheduler/target_cache.h"
#include "sender/sender.h"

namespace herald {

class Database;
class Metrics;
class Session;

// Moves the queue. Each round, in one transaction: records the results that came in
// (ResultRecorder), claims due deliveries under a lease (ClaimPolicy), admits each within its
// endpoint's limits (EndpointLimits; the rest are parked), and builds the signed requests
// (TargetCache, build_request) that go to the Sender once the round commits. Between rounds,
// retention work (Retention). Runs one thread of its own; the Sender runs another.
// Its session is not durable (a claim or a result lost with the machine's power only means a
// delivery is tried again: at least once). It is the Database's QueueListener while it runs.
class Scheduler final : public QueueListener {
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
    // An endpoint failing this long without a success is disabled.
    int64_t disable_after_ms = 5LL * 24 * 3600 * 1000;
    // Retry-After on 429/503 delays the next try up to this long (never less than the schedule).
    int64_t max_retry_after_ms = 6LL * 3600 * 1000;
    // Payloads and attempts older than this are purged, `purge_batch` rows per transaction.
    int64_t retention_ms = 90LL * 24 * 3600 * 1000;
    // Messages older than this are deleted with their deliveries (at least retention_ms).
    int64_t message_retention_ms = 180LL * 24 * 3600 * 1000;
    int purge_batch = 500;
    // Idempotency keys older than this are dropped (the API keeps replies this long).
    int64_t idempotency_ttl_ms = 12LL * 3600 * 1000;
    // Counters for /metrics; null: none. Must outlive the Scheduler.
    Metrics* metrics = nullptr;
    Sender::Options sender;
  };

  // Starts the scheduler thread and its Sender, and listens to `db`'s queue. `db` and `clock`
  // must outlive the Scheduler. The clock drives every decision and every wait (a ManualClock
  // in tests moves time; waits are also cut short by wake()).
  Scheduler(Database& db, Clock& clock, Options options);
  // Stops as stop(0) would.
  ~Scheduler() override;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Stops claiming, lets deliveries in flight finish for up to `drain_ms`, records every
  // result (aborted ones go back to the queue unchanged), stops listening to the database and
  // joins. Idempotent.
  void stop(int64_t drain_ms);

  // Deliveries handed to the sender whose result is not yet recorded.
  size_t in_flight() const;

  // QueueListener: wake() tells the scheduler new deliveries may be due now (also what a
  // test calls after moving a ManualClock). The rest is the hand-over (see QueueListener):
  // room is counted against max_in_flight.
  void wake() override;
  int reserve(int n) override;
  void release(int n) override;
  void hand_over(std::vector<Delivery> deliveries,
                 std::shared_ptr<const std::string> payload) override;
  int64_t lease_ms() const override { return options_.lease_ms; }

 private:
  // A delivery handed to the sender, kept until its result is recorded.
  struct InFlight {
    Delivery delivery;
    std::string url;
    std::string request_headers_json;
    TimeMs sent_at = 0;
    bool slot_released = false;  // its endpoint's concurrency slot is free again
  };
  // New deliveries handed over, claimed already.
  struct Fresh {
    Delivery delivery;
    std::shared_ptr<const std::string> payload;
  };
  void run();
  // One round, in one transaction: records `results`, sends `fresh` and claims and sends
  // what else is due (or, when `stopping`, puts `fresh` back in the queue). Returns when the
  // loop should run again unless woken first (by the clock the round started at).
  TimeMs round(std::vector<DeliveryResult> results, std::vector<Fresh> fresh, bool stopping);
  // The requests whose results are in, taken out of in_flight_.
  std::vector<ResultRecorder::Finished> take_finished(std::vector<DeliveryResult> results);
  void on_results(std::vector<DeliveryResult>&& results);
  // Publishes the in-flight count to the metrics. REQUIRES: mu_ held.
  void note_in_flight();
  // Frees the endpoint concurrency slot `f` holds, once. REQUIRES: mu_ held.
  void release_endpoint_slot(InFlight& f);

  Database& db_;
  Clock& clock_;
  Options options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;                   // REQUIRES: mu_ held
  bool stopping_ = false;                // REQUIRES: mu_ held
  std::vector<DeliveryResult> results_;  // REQUIRES: mu_ held
  std::vector<Fresh> fresh_;             // REQUIRES: mu_ held
  int fresh_reserved_ = 0;  // REQUIRES: mu_ held; reserved, handed over, not yet in flight
  std::unordered_map<uint64_t, InFlight> in_flight_;  // REQUIRES: mu_ held
  uint64_t next_tag_ = 1;                             // only the scheduler thread

  // Only the scheduler thread.
  std::unique_ptr<Session> session_;
  std::unique_ptr<EndpointLimits> limits_;  // thread-safe for started()/finished()
  ClaimPolicy claims_;
  TargetCache targets_;
  ResultRecorder recorder_;
  Retention retention_;

  std::unique_ptr<Sender> sender_;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

}  // namespace herald
