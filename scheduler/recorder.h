#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/retry.h"
#include "core/types.h"
#include "db/enqueue.h"
#include "sender/sender.h"

namespace herald {

class Metrics;
class Session;

// Writes down what came of requests: each attempt, its delivery's new state (done, due again
// on the retry schedule, or failed for good), the endpoint's health (its failing run, 410 Gone
// and the disable window), and the operational webhooks these call for. Only the scheduler
// thread.
class ResultRecorder {
 public:
  struct Options {
    RetryPolicy retry = RetryPolicy::standard();
    // An endpoint failing this long without a success is disabled.
    int64_t disable_after_ms = 5LL * 24 * 3600 * 1000;
    // Retry-After on 429/503 delays the next try up to this long (never less than the schedule).
    int64_t max_retry_after_ms = 6LL * 3600 * 1000;
    Metrics* metrics = nullptr;  // null: none
  };

  // A request that ended, with what it was made of.
  struct Finished {
    DeliveryResult result;
    Delivery delivery;
    std::string url;
    std::string request_headers_json;
    TimeMs sent_at = 0;
  };

  // `clock` must outlive the recorder.
  ResultRecorder(Clock& clock, Options options);

  // Records `done` in order. REQUIRES: a transaction on `s`.
  void record(Session& s, std::vector<Finished> done, TimeMs now);

 private:
  Options options_;
  Enqueuer enqueuer_;  // operational webhooks
  std::mt19937_64 rng_;
};

}  // namespace herald
