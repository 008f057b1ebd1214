#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/types.h"

namespace herald {
class Session;
}  // namespace herald

namespace herald::test {

// An HMAC signing key of these bytes; and a list of them, for comparing with what a store
// returns.
inline SigningKey hmac_key(std::string bytes) {
  return SigningKey{KeyKind::kHmac, std::move(bytes)};
}
inline std::vector<SigningKey> hmac_keys(std::vector<std::string> bytes) {
  std::vector<SigningKey> out;
  for (auto& b : bytes) out.push_back(hmac_key(std::move(b)));
  return out;
}
inline std::optional<SigningKey> opt_hmac_key(std::optional<std::string> bytes) {
  if (!bytes) return std::nullopt;
  return hmac_key(std::move(*bytes));
}

// Rows written straight through the stores, for tests to start from. Each is made at `now`
// with a fresh id and returned as written.
Application add_app(Session& s, TimeMs now, const std::string& name = "test app",
                    std::optional<std::string> uid = std::nullopt);
Endpoint add_endpoint(Session& s, const std::string& app_id, const std::string& url,
                      const std::string& key, TimeMs now,
                      std::map<std::string, std::string> headers = {}, bool disabled = false);
Message add_message(Session& s, const std::string& app_id, const std::string& payload, TimeMs now,
                    const std::string& event_type = "test.event",
                    std::optional<std::string> event_id = std::nullopt);
// A delivery as given (status, due time), bypassing the queue's enqueue: due at `due`, or
// `now` when unset.
Delivery add_delivery(Session& s, const Message& m, const std::string& endpoint_id, TimeMs now,
                      DeliveryStatus status = DeliveryStatus::kPending,
                      std::optional<TimeMs> due = std::nullopt,
                      TriggerType trigger = TriggerType::kScheduled);

// An id with `prefix` made at `t`, the `n`th (n >= 1) of that millisecond. new_id() can't make
// it: it never hands out an id sorting before one it made earlier in this process.
std::string id_at(std::string_view prefix, TimeMs t, int n);

}  // namespace herald::test
