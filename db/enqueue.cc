#include "db/enqueue.h"

#include <algorithm>

#include "core/fanout.h"
#include "core/ids.h"
#include "db/app_store.h"
#include "db/endpoint_store.h"
#include "db/message_store.h"
#include "db/queue_store.h"
#include "db/session.h"

namespace herald {
namespace {

// Beyond this many cached applications the cache starts over.
constexpr size_t kMaxCachedApps = 10000;

}  // namespace

size_t Enqueuer::publish(Session& s, const Message& m, std::optional<int64_t> endpoints_version) {
  std::vector<std::string> targets;
  // Held: the cache may drop its copy meanwhile.
  const auto endpoints = enabled_endpoints(s, m.app_id, endpoints_version);
  for (const auto& ep : *endpoints) {
    if (endpoint_accepts(ep, m.event_type, m.channels)) targets.push_back(ep.id);
  }
  s.messages().insert(m);
  enqueue(s, m, targets, TriggerType::kScheduled);
  return targets.size();
}

bool Enqueuer::would_deliver(Session& s, const std::string& app_id, const std::string& event_type,
                             const std::optional<std::vector<std::string>>& channels) {
  const auto endpoints = enabled_endpoints(s, app_id);
  return std::any_of(endpoints->begin(), endpoints->end(), [&](const Endpoint& ep) {
    return endpoint_accepts(ep, event_type, channels);
  });
}

void Enqueuer::publish_to(Session& s, const Message& m, const std::string& endpoint_id) {
  s.messages().insert(m);
  enqueue(s, m, {endpoint_id}, TriggerType::kScheduled);
}

void Enqueuer::redeliver(Session& s, const Message& m, const std::string& endpoint_id) {
  enqueue(s, m, {endpoint_id}, TriggerType::kManual);
}

void Enqueuer::enqueue(Session& s, const Message& m, const std::vector<std::string>& endpoint_ids,
                       TriggerType trigger) {
  if (endpoint_ids.empty()) return;
  const TimeMs now = clock_.now_ms();
  // A scheduled message's first tries wait for its time; a resend does not.
  const TimeMs due =
      trigger == TriggerType::kScheduled && m.deliver_at ? std::max(now, *m.deliver_at) : now;
  std::vector<Delivery> ds;
  ds.reserve(endpoint_ids.size());
  for (const auto& endpoint_id : endpoint_ids) {
    Delivery d;
    d.id = new_id(kDeliveryPrefix, now);
    d.app_id = m.app_id;
    d.msg_id = m.id;
    d.endpoint_id = endpoint_id;
    d.status = DeliveryStatus::kPending;
    d.next_attempt_at = due;
    d.trigger = trigger;
    d.created_at = d.updated_at = now;
    ds.push_back(std::move(d));
  }
  s.queue().enqueue(std::move(ds), std::make_shared<const std::string>(m.payload));
}

std::shared_ptr<const std::vector<Endpoint>> Enqueuer::enabled_endpoints(
    Session& s, const std::string& app_id, std::optional<int64_t> endpoints_version) {
  if (!endpoints_version) {
    auto versions = s.apps().endpoint_versions({app_id});
    auto it = versions.find(app_id);
    if (it == versions.end()) return std::make_shared<const std::vector<Endpoint>>();  // no app
    endpoints_version = it->second;
  }
  {
    std::lock_guard lock(mu_);
    if (auto it = apps_.find(app_id);
        it != apps_.end() && it->second.version == *endpoints_version) {
      return it->second.endpoints;
    }
  }
  // Read after the version: a list newer than its version is only read again sooner.
  auto list = std::make_shared<const std::vector<Endpoint>>(s.endpoints().enabled_for_app(app_id));
  std::lock_guard lock(mu_);
  if (apps_.size() >= kMaxCachedApps) apps_.clear();
  apps_[app_id] = Cached{*endpoints_version, list};
  return list;
}

}  // namespace herald
