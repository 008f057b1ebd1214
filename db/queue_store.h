#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/token_bucket.h"
#include "core/types.h"

namespace herald {

// The new state of a claimed delivery: after an attempt, or set aside.
struct DeliveryUpdate {
  std::string id;
  DeliveryStatus status = DeliveryStatus::kPending;
  int attempts = 0;
  std::optional<TimeMs> due_at;  // pending: next try; nullopt: parked
  int64_t claim = 0;             // the claim this ends (Delivery::claim)
};

// For metrics: deliveries queued (pending with a due time, or sending), parked, and when the
// oldest due one fell due (nullopt when none is due).
struct QueueState {
  int64_t queued = 0;
  int64_t parked = 0;
  std::optional<TimeMs> oldest_due;
  // Of the queued, those being sent under a live lease by any process, where several share
  // the queue; nullopt where one process owns it (its own in-flight count says it).
  std::optional<int64_t> sending;
};

// The queue: one row per (message, endpoint) to deliver. A pending delivery is due at its due
// time; the scheduler claims due ones under a lease (status sending, due again when the lease
// lapses), sends them, and completes each claim with the delivery's new state.
//
// Parking: a pending delivery whose endpoint has no room (at its concurrency cap, or out of
// throttleRate tokens) waits with no due time, out of the due order, until a scheduler claims
// it for that endpoint. Parked deliveries count as pending everywhere else.
class QueueStore {
 public:
  virtual ~QueueStore() = default;

  // Adds the new pending deliveries of one message whose body is `payload`, due at their
  // next_attempt_at. Once the session's transaction commits, the database's QueueListener
  // hears of them (a store whose queue only this process consumes may write them claimed and
  // hand them over directly instead). REQUIRES: a transaction.
  virtual void enqueue(std::vector<Delivery> deliveries,
                       std::shared_ptr<const std::string> payload) = 0;

  // Claims up to `limit` due deliveries (pending and due, or sending with a lapsed lease),
  // oldest due first, marking them sending with a lease until now + lease_ms. Rows another
  // process is claiming are skipped, never waited for. REQUIRES: a transaction.
  virtual std::vector<Delivery> claim(TimeMs now, int64_t lease_ms, int limit) = 0;
  // Claims up to `limit` parked deliveries of the endpoint, oldest first, as claim() does.
  // REQUIRES: a transaction.
  virtual std::vector<Delivery> claim_parked(const std::string& endpoint_id, TimeMs now,
                                             int64_t lease_ms, int limit) = 0;
  // Ends claims with each delivery's new state (a pending update without due_at parks it).
  // An update whose claim no longer holds (it lapsed and another process took the delivery
  // over) changes nothing.
  virtual void complete(const std::vector<DeliveryUpdate>& updates, TimeMs now) = 0;

  // The endpoints that have parked deliveries.
  virtual std::vector<std::string> parked_endpoints() = 0;
  // When the next pending delivery falls due; nullopt when nothing is queued.
  virtual std::optional<TimeMs> next_due() = 0;
  // Puts up to `limit` of the endpoint's failed deliveries created in [since, until) whose ids
  // sort after `after_id` back in the queue, in id order, due now, as manual (tried once), and
  // tells the QueueListener once that is committed. Deliveries of messages whose payload is
  // gone (expired, expunged) are left as they are. Returns how many; *last_id becomes the
  // largest id touched.
  virtual int64_t recover(const std::string& endpoint_id, TimeMs since, TimeMs until, TimeMs now,
                          const std::string& after_id, int limit, std::string* last_id) = 0;
  virtual QueueState state(TimeMs now) = 0;
};

// The process's consumer of the queue (the scheduler), as a Database sees it.
class QueueListener {
 public:
  virtual ~QueueListener() = default;

  // New deliveries may be due now. Cheap; thread-safe.
  virtual void wake() = 0;

  // The hand-over, for a store whose queue only this process consumes: a writer asks room for
  // `n` new deliveries (granted: 0..n); it writes that many of them claimed (sending, due at
  // now + lease_ms()) and, once committed, hands them over, so they are sent without being
  // claimed from the store; what it does not use (its transaction failed) it releases.
  // Room is bounded, so memory stays bounded. Thread-safe.
  virtual int reserve(int n) = 0;
  virtual void release(int n) = 0;
  virtual void hand_over(std::vector<Delivery> deliveries,
                         std::shared_ptr<const std::string> payload) = 0;
  virtual int64_t lease_ms() const = 0;
};

// An endpoint's limit state as every process on a shared database sees it.
struct EndpointLoad {
  std::string endpoint_id;
  // Deliveries to it claimed under a live lease, by any process, not counting the claims of
  // the calling session's own transaction.
  int in_flight = 0;
  std::optional<TokenBucket> bucket;  // its throttleRate bucket; nullopt: none kept yet
};

// Per-endpoint limits held across every process on one database (PostgreSQL). A store whose
// queue one process owns has none: that process keeps its limits in memory.
class SharedLimitStore {
 public:
  virtual ~SharedLimitStore() = default;

  // Locks the limits of `endpoint_ids` until the transaction ends (other processes locking
  // any of them wait), then reads them. REQUIRES: a transaction.
  virtual std::vector<EndpointLoad> lock(const std::vector<std::string>& endpoint_ids,
                                         TimeMs now) = 0;
  // Writes token buckets. REQUIRES: the endpoints are locked by this transaction.
  virtual void save_buckets(const std::vector<std::pair<std::string, TokenBucket>>& buckets) = 0;
};

}  // namespace herald
