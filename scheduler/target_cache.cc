#include "scheduler/target_cache.h"

#include "db/app_store.h"
#include "db/endpoint_store.h"
#include "db/session.h"

namespace herald {
namespace {

// Beyond this many cached endpoints (or applications) the cache starts over.
constexpr size_t kMaxEntries = 10000;

}  // namespace

void TargetCache::check(Session& s, const std::vector<std::string>& app_ids) {
  // Starting over here, never in get(): what get() returned stays valid for the whole round.
  if (entries_.size() > kMaxEntries) entries_.clear();
  if (app_ids.empty()) return;
  if (app_versions_.size() > kMaxEntries) app_versions_.clear();
  auto versions = s.apps().endpoint_versions(app_ids);
  for (const auto& id : app_ids) {
    auto it = versions.find(id);
    app_versions_[id] = it == versions.end() ? -1 : it->second;  // -1: the app is gone
  }
}

const Target* TargetCache::get(Session& s, const std::string& app_id,
                               const std::string& endpoint_id, TimeMs now) {
  const int64_t version = app_versions_[app_id];
  auto it = entries_.find(endpoint_id);
  if (it == entries_.end() || it->second.app_version != version ||
      now - it->second.loaded_at >= kMaxAgeMs || now < it->second.loaded_at) {
    Entry e;
    e.loaded_at = now;
    e.app_version = version;
    if (auto ep = s.endpoints().get(app_id, endpoint_id)) {
      e.target.signer = Signer(ep->signature_scheme, ep->signature_header,
                               s.endpoints().signing_keys(ep->id, now));
      e.target.tls.reset();
      if (ep->client_cert) {
        if (auto key = s.endpoints().client_key(ep->id)) {
          e.target.tls = std::make_shared<const TlsIdentity>(TlsIdentity{*ep->client_cert, *key});
        }
      }
      e.target.endpoint = std::move(*ep);
      e.found = true;
    }
    it = entries_.insert_or_assign(endpoint_id, std::move(e)).first;
  }
  return it->second.found ? &it->second.target : nullptr;
}

}  // namespace herald
