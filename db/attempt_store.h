#pragma once

#include <optional>
#include <string>
#include <vector>

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

// Attempts in one bucket of a timeline.
struct AttemptBucket {
  int64_t index = 0;  // buckets after the timeline's start
  int64_t success = 0;
  int64_t fail = 0;
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
  // The endpoint's attempts made in [start, until), counted per bucket of `bucket_ms` from
  // `start`; buckets without attempts are absent. Index attempts_endpoint bounds the scan.
  std::vector<AttemptBucket> timeline(const std::string& endpoint_id, TimeMs start, TimeMs until,
                                      int64_t bucket_ms);
  // The endpoint's latest attempt.
  std::optional<Attempt> latest(const std::string& endpoint_id);

 private:
  ListPage<Attempt> list(const std::string& app_id, const char* key_col, const std::string& key,
                         const ListParams& p, const AttemptFilter& f);
  Connection& c_;
};

}  // namespace herald
