#pragma once

#include <optional>
#include <string>

#include "core/types.h"
#include "db/list.h"

namespace herald {

class Connection;

// Filters of an attempt listing; unset members don't filter.
struct AttemptFilter {
  std::optional<DeliveryStatus> status;
  std::optional<std::string> endpoint_id;
  std::optional<TimeMs> before;
  std::optional<TimeMs> after;
};

// The attempts table: every HTTP try ever made.
class AttemptStore {
 public:
  explicit AttemptStore(Connection& c) : c_(c) {}

  void insert(const Attempt& a);
  // Deletes up to `limit` attempts made before `before`, oldest first; returns how many.
  int64_t purge(TimeMs before, int limit);
  std::optional<Attempt> get(const std::string& app_id, const std::string& id);
  // Newest first.
  ListPage<Attempt> list_by_message(const std::string& app_id, const std::string& msg_id,
                                    const ListParams& p, const AttemptFilter& f);
  ListPage<Attempt> list_by_endpoint(const std::string& app_id, const std::string& endpoint_id,
                                     const ListParams& p, const AttemptFilter& f);

 private:
  ListPage<Attempt> list(const std::string& app_id, const char* key_col, const std::string& key,
                         const ListParams& p, const AttemptFilter& f);
  Connection& c_;
};

}  // namespace herald
