#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/types.h"

namespace herald {

// Counts of an endpoint's deliveries by status (Svix's EndpointStats).
struct DeliveryStats {
  int64_t success = 0;
  int64_t pending = 0;
  int64_t sending = 0;
  int64_t fail = 0;

  // Adds `n` deliveries in `status`.
  void add(DeliveryStatus status, int64_t n);
  // The state of a message whose endpoints' latest deliveries are counted here: fail if any
  // failed, else sending if any is in flight, else pending if any waits, else success;
  // nullopt when there are none. MessageStore's status filter applies the same rule.
  std::optional<DeliveryStatus> overall() const;
};

// Deliveries as the API reads them. The queue's own operations are QueueStore's.
class DeliveryStore {
 public:
  virtual ~DeliveryStore() = default;

  // Writes `d` as given (status, due time and all): for tests, seeding and moving a database
  // to another store. New deliveries go through QueueStore::enqueue.
  virtual void insert(const Delivery& d) = 0;
  virtual std::optional<Delivery> get(const std::string& id) = 0;
  // Every delivery of a message, by endpoint.
  virtual std::vector<Delivery> for_message(const std::string& msg_id) = 0;
  // The endpoint's deliveries by status: those created in [since, until), either end open
  // when unset.
  virtual DeliveryStats stats_between(const std::string& endpoint_id, std::optional<TimeMs> since,
                                      std::optional<TimeMs> until) = 0;
  DeliveryStats stats(const std::string& endpoint_id) {
    return stats_between(endpoint_id, std::nullopt, std::nullopt);
  }
  // For each of `msg_ids`, its endpoints counted by the state of their latest delivery (a
  // resend supersedes what it repeats). Messages without deliveries are absent.
  virtual std::map<std::string, DeliveryStats> summaries(
      const std::vector<std::string>& msg_ids) = 0;
};

}  // namespace herald
