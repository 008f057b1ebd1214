#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/types.h"

namespace herald {

class Session;

// Creating messages and their deliveries: the one place every path that makes them goes
// through (message create, resend, send-example, operational webhooks). Everything is written
// in the caller's session; the queue hears of the new deliveries once it commits. Thread-safe.
class Enqueuer {
 public:
  // `clock` must outlive the Enqueuer.
  explicit Enqueuer(Clock& clock) : clock_(clock) {}
  Enqueuer(const Enqueuer&) = delete;
  Enqueuer& operator=(const Enqueuer&) = delete;

  // Writes `m` and one delivery per enabled endpoint of its app that accepts it (event type
  // and channel filters); returns how many. `endpoints_version`: the app's, when the caller
  // has just read it (saves reading it again). REQUIRES: a transaction on `s`.
  size_t publish(Session& s, const Message& m,
                 std::optional<int64_t> endpoints_version = std::nullopt);
  // Writes `m` with one delivery, to `endpoint_id` only, whatever its filters.
  // REQUIRES: a transaction on `s`.
  void publish_to(Session& s, const Message& m, const std::string& endpoint_id);
  // A new delivery of the existing message `m` to `endpoint_id`, tried once (a manual
  // resend). REQUIRES: a transaction on `s`.
  void redeliver(Session& s, const Message& m, const std::string& endpoint_id);

  // Whether a message of `event_type` on `channels` would reach an enabled endpoint of the
  // application (what publish() would deliver to), without writing anything.
  bool would_deliver(Session& s, const std::string& app_id, const std::string& event_type,
                     const std::optional<std::vector<std::string>>& channels);

  // The enabled endpoints of an application, oldest first: kept from an earlier call while
  // the application's endpoints_version (given, or read through `s`) is the one they were read
  // under, else read through `s`. Exact whichever process changed the endpoints.
  std::shared_ptr<const std::vector<Endpoint>> enabled_endpoints(
      Session& s, const std::string& app_id,
      std::optional<int64_t> endpoints_version = std::nullopt);

 private:
  void enqueue(Session& s, const Message& m, const std::vector<std::string>& endpoint_ids,
               TriggerType trigger);

  Clock& clock_;
  struct Cached {
    int64_t version = 0;
    std::shared_ptr<const std::vector<Endpoint>> endpoints;
  };
  std::mutex mu_;
  std::unordered_map<std::string, Cached> apps_;  // REQUIRES: mu_ held
};

}  // namespace herald
