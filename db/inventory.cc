#include "db/inventory.h"

namespace herald {

std::string Inventory::describe() const {
  auto part = [](const char* name, int64_t n) {
    return std::string(name) + " " + std::to_string(n);
  };
  return part("applications", applications) + ", " + part("endpoints", endpoints) + ", " +
         part("endpoint keys", endpoint_keys) + ", " + part("event types", event_types) + ", " +
         part("tokens", tokens) + ", " + part("messages", messages) + ", " +
         part("deliveries", deliveries) + ", " + part("attempts", attempts);
}

}  // namespace herald
