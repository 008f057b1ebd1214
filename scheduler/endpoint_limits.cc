#include "scheduler/endpoint_limits.h"

#include <algorithm>

#include "db/database.h"
#include "db/queue_store.h"
#include "db/session.h"

namespace herald {

int LocalLimits::room(const std::string& endpoint_id, TimeMs now) {
  int busy = 0;
  {
    std::lock_guard lock(mu_);
    if (auto it = in_flight_.find(endpoint_id); it != in_flight_.end()) busy = it->second;
  }
  int room = concurrency_ - busy;
  if (auto t = buckets_.find(endpoint_id); t != buckets_.end()) {
    room = std::min(room, t->second.bucket.whole(t->second.rate, now));
  }
  return std::max(0, room);
}

void LocalLimits::begin_round(Session&, const std::vector<std::string>&, TimeMs) {
  std::lock_guard lock(mu_);
  busy_ = in_flight_;
}

bool LocalLimits::admit(const std::string& endpoint_id, std::optional<int> rate, TimeMs now) {
  int& busy = busy_[endpoint_id];
  if (busy >= concurrency_) return false;
  if (!rate || *rate <= 0) {
    buckets_.erase(endpoint_id);  // not (or no longer) throttled
  } else {
    const double r = *rate;
    auto [it, fresh] = buckets_.try_emplace(endpoint_id, Throttle{r, TokenBucket::full(r, now)});
    it->second.rate = r;
    if (!it->second.bucket.take(r, now)) return false;
  }
  ++busy;
  return true;
}

void LocalLimits::started(const std::string& endpoint_id) {
  std::lock_guard lock(mu_);
  ++in_flight_[endpoint_id];
}

void LocalLimits::finished(const std::string& endpoint_id) {
  std::lock_guard lock(mu_);
  auto it = in_flight_.find(endpoint_id);
  if (it != in_flight_.end() && --it->second <= 0) in_flight_.erase(it);
}

std::optional<TimeMs> LocalLimits::next_token_at(const std::string& endpoint_id, TimeMs now) {
  auto it = buckets_.find(endpoint_id);
  if (it == buckets_.end()) return std::nullopt;
  it->second.bucket.refill(it->second.rate, now);
  if (it->second.bucket.tokens >= 1) return std::nullopt;
  return it->second.bucket.next_token_at(it->second.rate, now);
}

int SharedLimits::room(const std::string& endpoint_id, TimeMs now) {
  auto it = seen_.find(endpoint_id);
  if (it == seen_.end() || now - it->second.read_at >= kSeenForMs) {
    return concurrency_;  // unknown: begin_round() will read it and admit() tell
  }
  Seen& s = it->second;
  int ended = 0;
  {
    std::lock_guard lock(mu_);
    if (auto f = finished_.find(endpoint_id); f != finished_.end()) ended = f->second;
  }
  int room = concurrency_ - std::max(0, s.in_flight - ended);
  if (s.rate > 0 && s.bucket) room = std::min(room, s.bucket->whole(s.rate, now));
  return std::max(0, room);
}

void SharedLimits::finished(const std::string& endpoint_id) {
  std::lock_guard lock(mu_);
  if (finished_.size() > 10000) finished_.clear();  // bounded: at worst room() waits a read
  ++finished_[endpoint_id];
  ++unrecorded_[endpoint_id];
}

void SharedLimits::recorded(const std::string& endpoint_id) {
  std::lock_guard lock(mu_);
  auto it = unrecorded_.find(endpoint_id);
  if (it != unrecorded_.end() && --it->second <= 0) unrecorded_.erase(it);
}

void SharedLimits::begin_round(Session& s, const std::vector<std::string>& endpoint_ids,
                               TimeMs now) {
  SharedLimitStore* store = s.shared_limits();
  if (store == nullptr || endpoint_ids.empty()) return;
  auto loads = store->lock(endpoint_ids, now);
  {
    // What was read counts every request that ended and was recorded before the read as
    // free, and every one not recorded yet (its result came after this round took its
    // results) as in flight: those stay counted free here.
    std::lock_guard lock(mu_);
    for (const auto& load : loads) {
      if (auto u = unrecorded_.find(load.endpoint_id); u != unrecorded_.end()) {
        finished_[load.endpoint_id] = u->second;
      } else {
        finished_.erase(load.endpoint_id);
      }
    }
  }
  for (auto& load : loads) {
    Seen& seen = seen_[load.endpoint_id];
    seen.read_at = now;
    seen.in_flight = load.in_flight;
    seen.bucket = load.bucket;
    seen.bucket_taken = false;
  }
}

bool SharedLimits::admit(const std::string& endpoint_id, std::optional<int> rate, TimeMs now) {
  Seen& s = seen_[endpoint_id];
  if (s.in_flight >= concurrency_) return false;
  if (!rate || *rate <= 0) {
    s.rate = 0;
  } else {
    s.rate = *rate;
    if (!s.bucket) s.bucket = TokenBucket::full(s.rate, now);
    if (!s.bucket->take(s.rate, now)) return false;
    s.bucket_taken = true;
  }
  ++s.in_flight;
  return true;
}

void SharedLimits::end_round(Session& s) {
  SharedLimitStore* store = s.shared_limits();
  std::vector<std::pair<std::string, TokenBucket>> taken;
  for (auto& [id, seen] : seen_) {
    if (seen.bucket_taken && seen.bucket) taken.emplace_back(id, *seen.bucket);
    seen.bucket_taken = false;
  }
  if (store != nullptr && !taken.empty()) store->save_buckets(taken);
  // Only what the next rounds can use is kept.
  if (seen_.size() > 10000) seen_.clear();
}

std::optional<TimeMs> SharedLimits::next_token_at(const std::string& endpoint_id, TimeMs now) {
  auto it = seen_.find(endpoint_id);
  if (it == seen_.end() || it->second.rate <= 0 || !it->second.bucket) return std::nullopt;
  TokenBucket& b = *it->second.bucket;
  b.refill(it->second.rate, now);
  if (b.tokens >= 1) return std::nullopt;
  return b.next_token_at(it->second.rate, now);
}

bool SharedLimits::saturated(const std::string& endpoint_id) {
  auto it = seen_.find(endpoint_id);
  return it != seen_.end() && it->second.in_flight >= concurrency_;
}

std::unique_ptr<EndpointLimits> make_endpoint_limits(const Database& db, int concurrency) {
  if (db.shared()) return std::make_unique<SharedLimits>(concurrency);
  return std::make_unique<LocalLimits>(concurrency);
}

}  // namespace herald
