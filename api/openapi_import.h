#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "api/json_mapping.h"
#include "core/types.h"

namespace herald {

// Svix's event type import: the event types an OpenAPI 3 document's `webhooks` (or
// `x-webhooks`) declare, in the document's order. Each webhook's key is the name; its
// operation's description (else summary) the description; the JSON schema of its request body
// (application/json, local $refs inlined) the schema of version "1"; `deprecated`,
// `x-svix-group-name` and `x-svix-feature-flags` as they say. Times are left at 0.
// Problems go to `r`, located under `loc` (where `spec` sits in the request body).
std::vector<EventType> event_types_from_openapi(const JsonIn& spec, BodyReader& r,
                                                const nlohmann::ordered_json& loc);

}  // namespace herald
