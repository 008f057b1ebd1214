#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/types.h"

namespace herald {

// True if `ep` subscribes to a message of `event_type` sent on `channels`: an endpoint with
// an event-type filter takes only those types; one with channels takes only messages that
// share at least one channel with it. Says nothing about whether the endpoint is disabled.
bool endpoint_accepts(const Endpoint& ep, const std::string& event_type,
                      const std::optional<std::vector<std::string>>& channels);

}  // namespace herald
