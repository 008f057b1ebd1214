#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/retry.h"
#include "core/types.h"
#include "scheduler/operator.h"
#include "sender/sender.h"

namespace herald {

class Connection;
class Database;
class Metrics;

// Moves the queue: claims due deliveries under a lease, signs them, hands them to the
// Sender, and records each attempt together with its delivery's new state in one
// transaction per batch of results. Runs one thread of its own; the Sender runs another.
// Its writes go through a connection of its own with synchronous=NORMAL: a claim or a result
// lost with the machine's power only means a delivery is tried again (at least once).
// Deliveries to an endpoint with no room (at its concurrency cap, or out of throttleRate
// tokens) are parked and claimed for that endpoint when it has room again, so a slow or dead
// endpoint's backlog is never scanned past by everyone else's claims.
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
    // An endpoint failing this long without a success is disabled.
    int64_t disable_after_ms = 5LL * 24 * 3600 * 1000;
    // Retry-After on 429/503 delays the next try up to this long (never less than the schedule).
    int64_t max_retry_after_ms = 6LL * 3600 * 1000;
    // Payloads and attempts older than this are purged, `purge_batch` rows per transaction.
    int64_t retention_ms = 90LL * 24 * 3600 * 1000;
    int purge_batch = 500;
    // Where operational webhooks go, if anywhere.
    std::optional<OperatorChannel> operator_channel;
    // Counters for /metrics; null: none. Must outlive the Scheduler.
    Metrics* metrics = nullptr;
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

  // The fast path for new deliveries. A writer asks room for `n`; it may write that many of
  // them already claimed (status sending, due at now + lease_ms()) and, once committed, hand
  // them over with dispatch_fresh() so they are sent without being claimed from the table.
  // What it does not use (its transaction failed) goes back with release_fresh(). Room is
  // counted against max_in_flight, so memory stays bounded: when there is none (0 returned),
  // the writer leaves its deliveries pending for the scheduler to claim. Thread-safe.
  int reserve_fresh(int n);
  void release_fresh(int n);
  // `deliveries` were reserved and committed claimed; `payload` is their message's body.
  void dispatch_fresh(std::vector<Delivery> deliveries, std::shared_ptr<const std::string> payload);
  int64_t lease_ms() const { return options_.lease_ms; }

 private:
  // An endpoint as the scheduler signs and sends for it, cached between claims.
  struct Target {
    bool found = false;  // false: no such endpoint (deleted)
    Endpoint endpoint;
    std::vector<std::string> keys;  // the keys that sign, current first
    TimeMs loaded_at = 0;
  };
  // A delivery handed to the sender, kept until its result is recorded.
  struct InFlight {
    Delivery delivery;
    std::string url;
    std::string request_headers_json;
    TimeMs sent_at = 0;
    bool slot_released = false;  // its endpoint's concurrency slot is free again
  };
  // New deliveries handed over by the API, claimed already.
  struct Fresh {
    Delivery delivery;
    std::shared_ptr<const std::string> payload;
  };
  void run();
  // One round, in one transaction: records `results`, sends `fresh` and claims and sends
  // what else is due (or, when `stopping`, puts `fresh` back in the queue). Returns how long
  // the loop may sleep.
  int64_t round(std::vector<DeliveryResult> results, std::vector<Fresh> fresh, bool stopping);
  // Records attempts and their deliveries' new state. REQUIRES: a transaction on `c`.
  void record(Connection& c, std::vector<DeliveryResult> results);
  // One batch of retention work; returns true if more remains.
  bool purge_once();
  // True if the endpoint's token bucket (throttleRate per second) has a token now; takes it.
  bool take_token(const Endpoint& ep, TimeMs now);
  // Whole tokens the endpoint's bucket holds now; nullopt if it has no bucket (not throttled
  // as far as the scheduler knows).
  std::optional<int> peek_tokens(const std::string& endpoint_id, TimeMs now);
  void on_results(std::vector<DeliveryResult>&& results);
  // Frees the endpoint concurrency slot `f` holds, once. REQUIRES: mu_ held.
  void release_endpoint_slot(InFlight& f);

  Database& db_;
  Clock& clock_;
  Options options_;
  std::mt19937_64 rng_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;                   // REQUIRES: mu_ held
  bool stopping_ = false;                // REQUIRES: mu_ held
  std::vector<DeliveryResult> results_;  // REQUIRES: mu_ held
  std::vector<Fresh> fresh_;             // REQUIRES: mu_ held
  int fresh_reserved_ = 0;  // REQUIRES: mu_ held; reserved, handed over, not yet in flight
  std::unordered_map<uint64_t, InFlight> in_flight_;         // REQUIRES: mu_ held
  std::unordered_map<std::string, int> endpoint_in_flight_;  // REQUIRES: mu_ held
  uint64_t next_tag_ = 1;                                    // only the scheduler thread
  struct Bucket {
    double rate = 0;  // tokens per second; the bucket holds one second's worth
    double tokens = 0;
    TimeMs refilled_at = 0;
    TimeMs next_token_at = 0;  // when empty: when the next token arrives
  };
  std::unordered_map<std::string, Bucket> buckets_;  // only the scheduler thread
  // Endpoints with parked deliveries, and where the last round of claiming them stopped.
  std::set<std::string> parked_;  // only the scheduler thread
  std::string parked_cursor_;     // only the scheduler thread
  // Endpoints known to be failing (failing_since set), so a success costs no write otherwise.
  std::unordered_map<std::string, bool> failing_;         // only the scheduler thread
  std::unique_ptr<Connection> conn_;                      // only the scheduler thread
  std::unordered_map<std::string, Target> target_cache_;  // only the scheduler thread
  uint64_t target_generation_ = 0;                        // only the scheduler thread
  TimeMs next_purge_at_ = 0;                              // only the scheduler thread
  std::string purge_watermark_;                           // only the scheduler thread

  std::unique_ptr<Sender> sender_;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

}  // namespace herald
