#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/signer.h"
#include "core/types.h"
#include "sender/sender.h"

namespace herald {

class Session;

// An endpoint as the scheduler signs and sends for it.
struct Target {
  Endpoint endpoint;
  Signer signer;                           // its scheme with the keys that sign now
  std::shared_ptr<const TlsIdentity> tls;  // its client certificate, if it has one
};

// Endpoints and their signing keys, kept between rounds. Each round first checks the
// endpoints_version of the applications it sends for (one read) and drops what changed, so a
// change is seen by the next round whichever process made it; an entry is also read again
// after kMaxAgeMs, so a rotated-out key stops signing at most that long after its grace period
// ends. Only the scheduler thread.
class TargetCache {
 public:
  static constexpr int64_t kMaxAgeMs = 1000;

  // Learns the current endpoints_version of `app_ids` (read through `s`).
  void check(Session& s, const std::vector<std::string>& app_ids);
  // The endpoint, read through `s` unless a fresh entry is kept; null if it no longer exists.
  // What it points to stays valid until the next check() (another get() of the same endpoint
  // may refresh it in place).
  // REQUIRES: check() covered its application this round.
  const Target* get(Session& s, const std::string& app_id, const std::string& endpoint_id,
                    TimeMs now);

 private:
  struct Entry {
    bool found = false;
    Target target;
    TimeMs loaded_at = 0;
    int64_t app_version = 0;  // its application's endpoints_version when read
  };
  std::unordered_map<std::string, int64_t> app_versions_;  // as check() last read them
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace herald
