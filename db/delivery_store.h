#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/types.h"

namespace herald {

class Connection;

// Counts of an endpoint's deliveries by status (Svix's EndpointStats).
struct DeliveryStats {
  int64_t success = 0;
  int64_t pending = 0;
  int64_t sending = 0;
  int64_t fail = 0;

  // The state of a message whose endpoints' latest deliveries are counted here: fail if any
  // failed, else sending if any is in flight, else pending if any waits, else success;
  // nullopt when there are none. MessageStore's status filter applies the same rule in SQL.
  std::optional<DeliveryStatus> overall() const;
};

// The new state of a delivery after an attempt.
struct DeliveryUpdate {
  std::string id;
  DeliveryStatus status = DeliveryStatus::kPending;
  int attempts = 0;
  std::optional<TimeMs> due_at;  // pending: next try
};

// The deliveries table: herald's queue.
class DeliveryStore {
 public:
  explicit DeliveryStore(Connection& c) : c_(c) {}

  void insert(const Delivery& d);

  // Claims up to `limit` due deliveries (pending and due, or sending with a lapsed lease),
  // oldest due first, marking them sending with a lease until now + lease_ms.
  // REQUIRES: called inside a Transaction.
  std::vector<Delivery> claim(TimeMs now, int64_t lease_ms, int limit);

  // Applies an attempt's outcome. A pending update without due_at parks the delivery.
  void update(const DeliveryUpdate& u, TimeMs now);

  // Parking: a pending delivery whose endpoint has no room (at its concurrency cap, or out of
  // throttleRate tokens) waits with no due time, out of the due index, until the scheduler
  // claims it for that endpoint. Parked deliveries count as pending everywhere else.

  // Claims up to `limit` parked deliveries of the endpoint, oldest first, as claim() does.
  // REQUIRES: called inside a Transaction.
  std::vector<Delivery> claim_parked(const std::string& endpoint_id, TimeMs now, int64_t lease_ms,
                                     int limit);
  // The endpoints that have parked deliveries.
  std::vector<std::string> parked_endpoints();
  // For metrics: deliveries queued (pending with a due time, or sending), parked, and when the
  // oldest due one fell due (nullopt when none is due).
  struct QueueState {
    int64_t queued = 0;
    int64_t parked = 0;
    std::optional<TimeMs> oldest_due;
  };
  QueueState queue_state(TimeMs now);

  // When the next pending delivery falls due; nullopt when nothing is queued.
  std::optional<TimeMs> next_due();

  // Puts the endpoint's failed deliveries created in [since, until) back in the queue, due
  // now, as manual (tried once). Returns how many.
  int64_t recover(const std::string& endpoint_id, TimeMs since, TimeMs until, TimeMs now);

  std::optional<Delivery> get(const std::string& id);
  // Every delivery of a message, by endpoint.
  std::vector<Delivery> for_message(const std::string& msg_id);
  DeliveryStats stats(const std::string& endpoint_id);
  // For each of `msg_ids`, its endpoints counted by the state of their latest delivery (a
  // resend supersedes what it repeats). Messages without deliveries are absent.
  std::map<std::string, DeliveryStats> summaries(const std::vector<std::string>& msg_ids);

 private:
  Connection& c_;
};

}  // namespace herald
