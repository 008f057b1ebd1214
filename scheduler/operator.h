#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/types.h"

namespace herald {

class Database;
class Enqueuer;
class Session;

// The operational-webhook channel: a reserved application and endpoint through which herald
// tells an operator about endpoint.disabled and message.attempt.* events. Its messages go
// through the ordinary queue, so they are signed, retried and recorded like any other.
struct OperatorChannel {
  std::string app_id;
  std::string endpoint_id;
};

// The uid of the reserved application.
inline constexpr std::string_view kOperatorAppUid = "herald-operator";

// Creates, or updates, the reserved application and its one endpoint so that operational
// webhooks go to `url`, signed in `scheme` with `key` (which fits the scheme). Safe when
// several processes sharing a database do it at once.
OperatorChannel ensure_operator_channel(Database& db, Clock& clock, const std::string& url,
                                        SignatureScheme scheme, const SigningKey& key);

// Queues one operational webhook {type, timestamp, data} through `enqueuer`.
// REQUIRES: a transaction on `s`.
void queue_operator_event(Session& s, Enqueuer& enqueuer, const OperatorChannel& channel,
                          const std::string& type, nlohmann::json data, TimeMs now);

}  // namespace herald
