#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/types.h"
#include "db/list.h"

namespace herald {

// Filters of an attempt listing; unset members don't filter.
struct AttemptFilter {
  std::optional<DeliveryStatus> status;
  std::optional<std::string> endpoint_id;
  std::optional<TimeMs> before;
  std::optional<TimeMs> after;
  // The response's status code in [status_code_class, status_code_class + 100); 0: no
  // response (herald records status 0 for those).
  std::optional<int> status_code_class;
  // Of the attempt's message: an event type among these, a channel and a tag it carries.
  std::optional<std::vector<std::string>> event_types;
  std::optional<std::string> channel;
  std::optional<std::string> tag;
  bool filters_messages() const { return (event_types && !event_types->empty()) || channel || tag; }
};

// Attempts in one bucket of a timeline.
struct AttemptBucket {
  int64_t index = 0;  // buckets after the timeline's start
  int64_t success = 0;
  int64_t fail = 0;
};

// Every HTTP try ever made.
class AttemptStore {
 public:
  virtual ~AttemptStore() = default;

  // Appends attempts, in order.
  // An attempt whose endpoint no longer exists (it was deleted while the request was in
  // flight) is not recorded: it would outlive the endpoint's other attempts.
  virtual void insert(const std::vector<Attempt>& attempts) = 0;
  // Deletes up to `limit` attempts made before `before`, oldest first; returns how many.
  virtual int64_t purge(TimeMs before, int limit) = 0;
  virtual std::optional<Attempt> get(const std::string& app_id, const std::string& id) = 0;
  // Deletes the recorded response of the app's attempt `id` (it reads as "", with
  // response_expunged); false if there is no such attempt.
  virtual bool expunge_response(const std::string& app_id, const std::string& id) = 0;
  // Newest first.
  virtual ListPage<Attempt> list_by_message(const std::string& app_id, const std::string& msg_id,
                                            const ListParams& p, const AttemptFilter& f) = 0;
  virtual ListPage<Attempt> list_by_endpoint(const std::string& app_id,
                                             const std::string& endpoint_id, const ListParams& p,
                                             const AttemptFilter& f) = 0;
  // The endpoint's attempts made in [start, until), counted per bucket of `bucket_ms` from
  // `start`; buckets without attempts are absent.
  virtual std::vector<AttemptBucket> timeline(const std::string& endpoint_id, TimeMs start,
                                              TimeMs until, int64_t bucket_ms) = 0;
  // The endpoint's latest attempt.
  virtual std::optional<Attempt> latest(const std::string& endpoint_id) = 0;
};

}  // namespace herald
