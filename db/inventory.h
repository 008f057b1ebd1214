#pragma once

#include <cstdint>
#include <string>

namespace herald {

// How many rows of each kind a store holds (for verifying a copy between stores).
struct Inventory {
  int64_t applications = 0;
  int64_t endpoints = 0;
  int64_t endpoint_keys = 0;
  int64_t event_types = 0;
  int64_t tokens = 0;
  int64_t messages = 0;
  int64_t deliveries = 0;
  int64_t attempts = 0;

  bool operator==(const Inventory&) const = default;
  // "applications 2, endpoints 5, ...".
  std::string describe() const;
};

}  // namespace herald
