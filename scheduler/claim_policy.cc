#include "scheduler/claim_policy.h"

#include <algorithm>

#include "db/queue_store.h"
#include "db/session.h"
#include "scheduler/endpoint_limits.h"

namespace herald {

bool ClaimPolicy::worth_claiming(int capacity, size_t in_flight) const {
  const int min_claim = std::max(1, std::min(options_.claim_batch, options_.max_in_flight) / 8);
  return capacity > 0 && (in_flight == 0 || capacity >= min_claim);
}

void ClaimPolicy::refresh(Session& s, TimeMs now) {
  if (refreshed_ && now - refreshed_at_ < options_.refresh_ms && now >= refreshed_at_) return;
  for (auto& ep : s.queue().parked_endpoints()) parked_.insert(std::move(ep));
  refreshed_at_ = now;
  refreshed_ = true;
}

std::vector<Delivery> ClaimPolicy::claim(Session& s, EndpointLimits& limits, int capacity,
                                         TimeMs now, bool* more) {
  QueueStore& queue = s.queue();
  std::vector<Delivery> claimed;
  int limit = std::min(capacity, options_.claim_batch);
  *more = false;
  if (!parked_.empty()) {
    std::vector<std::string> order;
    order.reserve(parked_.size());
    for (auto it = parked_.upper_bound(cursor_); it != parked_.end(); ++it) order.push_back(*it);
    for (auto it = parked_.begin(); it != parked_.end() && *it <= cursor_; ++it) {
      order.push_back(*it);
    }
    for (const auto& ep : order) {
      if (limit <= 0) {
        *more = true;
        break;
      }
      const int room = limits.room(ep, now);
      if (room <= 0) continue;
      const int ask = std::min(room, limit);
      auto got = queue.claim_parked(ep, now, options_.lease_ms, ask);
      limit -= static_cast<int>(got.size());
      cursor_ = ep;
      if (static_cast<int>(got.size()) < ask) parked_.erase(ep);  // none left parked
      for (auto& d : got) claimed.push_back(std::move(d));
    }
  }
  if (limit > 0) {
    auto due = queue.claim(now, options_.lease_ms, limit);
    *more = *more || static_cast<int>(due.size()) == limit;
    for (auto& d : due) claimed.push_back(std::move(d));
  }
  return claimed;
}

}  // namespace herald
