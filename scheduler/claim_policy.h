#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/types.h"

namespace herald {

class EndpointLimits;
class Session;

// Which deliveries a round claims: first parked ones of endpoints that have room again,
// round-robin from where the last round stopped, then whatever else is due, oldest first;
// and whether a claim is worth its query at all. Knows the endpoints with parked deliveries:
// those this process parked, and those the store lists (other processes sharing it park
// too), reread every refresh period. Only the scheduler thread.
class ClaimPolicy {
 public:
  struct Options {
    int claim_batch = 256;      // deliveries claimed per round at most
    int max_in_flight = 512;    // room overall
    int64_t lease_ms = 60000;   // the lease claims take
    int64_t refresh_ms = 1000;  // how often the store's parked endpoints are reread
  };
  explicit ClaimPolicy(Options options) : options_(options) {}

  // Near the cap, a round waits for room for a real batch before claiming: each claim costs.
  bool worth_claiming(int capacity, size_t in_flight) const;

  // Claims up to `capacity` deliveries. *more: there may be more due right now.
  // REQUIRES: a transaction on `s`.
  std::vector<Delivery> claim(Session& s, EndpointLimits& limits, int capacity, TimeMs now,
                              bool* more);

  // A delivery to the endpoint was parked.
  void parked(const std::string& endpoint_id) { parked_.insert(endpoint_id); }
  const std::set<std::string>& parked_endpoints() const { return parked_; }
  // Rereads the store's parked endpoints if the refresh period has passed.
  void refresh(Session& s, TimeMs now);

 private:
  Options options_;
  std::set<std::string> parked_;
  std::string cursor_;  // the endpoint whose parked deliveries were claimed last
  TimeMs refreshed_at_ = 0;
  bool refreshed_ = false;
};

}  // namespace herald
