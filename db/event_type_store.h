#pragma once

#include <optional>
#include <string>

#include "core/types.h"
#include "db/list.h"

namespace herald {

class Connection;

// The event_types table. Event types are global (not per application), keyed by name.
class EventTypeStore {
 public:
  explicit EventTypeStore(Connection& c) : c_(c) {}

  // Throws DbError (is_constraint) when the name exists.
  void insert(const EventType& et);
  std::optional<EventType> get(const std::string& name);
  // By name; archived ones only when `include_archived`.
  ListPage<EventType> list(const ListParams& p, bool include_archived);
  bool update(const EventType& et);
  bool remove(const std::string& name);

 private:
  Connection& c_;
};

}  // namespace herald
