#pragma once

#include <optional>
#include <string>

#include "core/clock.h"

namespace herald {

// What a request with an idempotency key finds when it arrives.
struct IdempotencyClaim {
  enum class State { kClaimed, kInProgress, kCompleted };
  State state = State::kClaimed;
  int status_code = 0;  // kCompleted: the stored response
  std::string body;
};

// The first 2xx response per (scope, key, path), for replay.
class IdempotencyStore {
 public:
  virtual ~IdempotencyStore() = default;

  // Claims the key for a request that is about to run, unless an earlier request holds it
  // (in progress) or completed it. Entries created before `expired_before` are ignored and
  // replaced. Atomic on its own. REQUIRES: no transaction open on the session.
  virtual IdempotencyClaim claim(const std::string& scope, const std::string& key,
                                 const std::string& path, TimeMs now, TimeMs expired_before) = 0;
  // Stores the response of a claimed key.
  virtual void complete(const std::string& scope, const std::string& key, const std::string& path,
                        int status_code, const std::string& body) = 0;
  // Releases a claimed key whose request did not succeed, so a retry runs afresh.
  virtual void release(const std::string& scope, const std::string& key,
                       const std::string& path) = 0;
  // Deletes entries created before `before`, at most `limit`; returns how many.
  virtual int64_t purge(TimeMs before, int limit) = 0;
};

}  // namespace herald
