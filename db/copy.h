#pragma once

#include <functional>
#include <string>

#include "db/inventory.h"

namespace herald {

class Database;

struct CopyResult {
  Inventory source;
  Inventory target;
  int64_t messages_copied = 0;
  int64_t messages_present = 0;  // already in the target (an earlier copy got that far)
  bool verified() const { return source == target; }
};

// Copies what a stopped herald keeps, from `from` into `to`: event types, applications,
// endpoints with their signing keys (as sealed: `to` must be used with the same master key),
// tokens, and every message with its deliveries (pending ones included, as they stand) and
// attempts. What `to` already holds (by id) is skipped, so a copy cut short can simply be run
// again; each message travels in one transaction with its deliveries and attempts.
// Idempotency keys (kept hours, for replays) and token buckets are not copied. `progress` hears
// a line now and then. Throws DbError.
CopyResult copy_store(Database& from, Database& to,
                      const std::function<void(const std::string&)>& progress);

}  // namespace herald
