#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/types.h"

namespace herald {

class Database;
class Enqueuer;
class Session;

// Operational webhooks: herald tells an operator about endpoint.disabled and message.attempt.*
// events. They are messages of a reserved application (uid kOperatorAppUid), sent to its
// endpoints as their event-type filters choose: the endpoints /operational-webhook/endpoint
// manages, and the one HERALD_OPERATOR_URL names. So they are signed, retried and recorded
// like any other message.

// The uid of the reserved application.
inline constexpr std::string_view kOperatorAppUid = "herald-operator";

// The reserved application, if it was ever made.
std::optional<Application> find_operator_app(Session& s);
// The reserved application, made now if it was not. REQUIRES: a transaction on `s`.
Application ensure_operator_app(Session& s, TimeMs now);

// The reserved application and the endpoint HERALD_OPERATOR_URL names.
struct OperatorChannel {
  std::string app_id;
  std::string endpoint_id;
};

// Creates, or updates, the reserved application and its endpoint with uid "operator" so that
// operational webhooks go to `url`, signed in `scheme` with `key` (which fits the scheme).
// Other operational-webhook endpoints are left as they are. Safe when several processes
// sharing a database do it at once.
OperatorChannel ensure_operator_channel(Database& db, Clock& clock, const std::string& url,
                                        SignatureScheme scheme, const SigningKey& key);

// Queues one operational webhook {type, timestamp, data} as a message of the reserved app
// `operator_app_id`, with one delivery per enabled endpoint of it that takes `type`; writes
// nothing when none does. REQUIRES: a transaction on `s`.
void queue_operator_event(Session& s, Enqueuer& enqueuer, const std::string& operator_app_id,
                          const std::string& type, nlohmann::json data, TimeMs now);

}  // namespace herald
