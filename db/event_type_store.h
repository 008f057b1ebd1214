#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/types.h"
#include "db/list.h"

namespace herald {

// Event types. They are global (not per application), keyed by name.
class EventTypeStore {
 public:
  virtual ~EventTypeStore() = default;

  // Throws DbError (is_constraint) when the name exists.
  virtual void insert(const EventType& et) = 0;
  virtual std::optional<EventType> get(const std::string& name) = 0;
  // By name; archived ones only when `include_archived`.
  virtual ListPage<EventType> list(const ListParams& p, bool include_archived) = 0;
  // Every one of them, by name, read page by page.
  std::vector<EventType> list_all(bool include_archived) {
    std::vector<EventType> out;
    ListParams p;
    p.limit = 250;
    for (;;) {
      auto page = list(p, include_archived);
      if (!page.items.empty()) p.cursor = page.items.back().name;
      for (auto& et : page.items) out.push_back(std::move(et));
      if (page.done || page.items.empty()) return out;
    }
  }
  virtual bool update(const EventType& et) = 0;
  virtual bool remove(const std::string& name) = 0;
};

}  // namespace herald
