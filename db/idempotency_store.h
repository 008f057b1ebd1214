#pragma once

#include <optional>
#include <string>

#include "core/clock.h"

namespace herald {

class Connection;

// What a request with an idempotency key finds when it arrives.
struct IdempotencyClaim {
  enum class State { kClaimed, kInProgress, kCompleted };
  State state = State::kClaimed;
  int status_code = 0;  // kCompleted: the stored response
  std::string body;
};

// The idempotency_keys table: the first 2xx response per (scope, key, path), for replay.
class IdempotencyStore {
 public:
  explicit IdempotencyStore(Connection& c) : c_(c) {}

  // Claims the key for a request that is about to run, unless an earlier request holds it
  // (in progress) or completed it. Entries created before `expired_before` are ignored and
  // replaced.
  IdempotencyClaim claim(const std::string& scope, const std::string& key, const std::string& path,
                         TimeMs now, TimeMs expired_before);
  // Stores the response of a claimed key.
  void complete(const std::string& scope, const std::string& key, const std::string& path,
                int status_code, const std::string& body);
  // Releases a claimed key whose request did not succeed, so a retry runs afresh.
  void release(const std::string& scope, const std::string& key, const std::string& path);
  // Deletes entries created before `before`, at most `limit`; returns how many.
  int64_t purge(TimeMs before, int limit);

 private:
  Connection& c_;
};

}  // namespace herald
