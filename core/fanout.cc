#include "core/fanout.h"

#include <algorithm>

namespace herald {

bool endpoint_accepts(const Endpoint& ep, const std::string& event_type,
                      const std::optional<std::vector<std::string>>& channels) {
  if (ep.event_types && !ep.event_types->empty()) {
    const auto& types = *ep.event_types;
    if (std::find(types.begin(), types.end(), event_type) == types.end()) return false;
  }
  if (ep.channels && !ep.channels->empty()) {
    if (!channels) return false;
    bool shared = std::any_of(channels->begin(), channels->end(), [&](const std::string& c) {
      return std::find(ep.channels->begin(), ep.channels->end(), c) != ep.channels->end();
    });
    if (!shared) return false;
  }
  return true;
}

}  // namespace herald
