#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/types.h"
#include "db/list.h"

namespace herald {

// Filters of a message listing; unset members don't filter.
struct MessageFilter {
  std::optional<std::vector<std::string>> event_types;
  std::optional<std::string> channel;
  std::optional<std::string> tag;
  std::optional<TimeMs> before;  // created strictly before
  std::optional<TimeMs> after;   // created strictly after
  // The message's overall delivery state (DeliveryStats::overall of its endpoints' latest
  // deliveries), or with endpoint_id the state of its latest delivery there; messages without
  // deliveries never match.
  std::optional<DeliveryStatus> status;
  // Only messages with a delivery to this endpoint.
  std::optional<std::string> endpoint_id;
  // With endpoint_id: only messages whose latest attempt there got a response status in
  // [status_code_class, status_code_class + 100) (0: no response).
  std::optional<int> status_code_class;
  // Only messages without any delivery to this endpoint.
  std::optional<std::string> missing_endpoint_id;
};

// What MessageStore::usage counted.
struct MessageUsage {
  int64_t messages = 0;
  int64_t destinations = 0;  // (message, endpoint) pairs with a delivery
  std::string last_id;       // the largest message id counted; "" when none
};

// Messages.
class MessageStore {
 public:
  virtual ~MessageStore() = default;

  // Throws DbError (is_constraint) when the app already has a message with its event_id. A
  // message marked payload_expired is written without its payload.
  virtual void insert(const Message& m) = 0;
  // By id, or by event id within the app.
  virtual std::optional<Message> get(const std::string& app_id, const std::string& key) = 0;
  // The payloads of the messages `ids` by id: "" once expired; absent when there is no such
  // message.
  virtual std::map<std::string, std::string> payloads(const std::vector<std::string>& ids) = 0;
  // Drops the payloads of up to `limit` messages created before `before` whose ids sort after
  // `after_id` (a watermark: pass "" first, then *last_id). Returns how many; *last_id becomes
  // the largest id touched.
  virtual int64_t expire_payloads(TimeMs before, const std::string& after_id, int limit,
                                  std::string* last_id) = 0;
  // Expunges the app's messages `keys` (ids or event ids): drops their payloads (they read
  // as payload_expired from then on) and ends their deliveries not yet made (pending ones
  // become fail as of `now`; one being sent finishes, and its retries then fail unsent).
  // Returns the id of each key found, by key.
  virtual std::map<std::string, std::string> expunge(const std::string& app_id,
                                                     const std::vector<std::string>& keys,
                                                     TimeMs now) = 0;
  // Expunges, as expunge() does, up to `limit` of the app's messages created before `before`
  // that still have their payloads and whose ids sort after `after_id`, in id order. Returns
  // how many; *last_id becomes the largest id touched.
  virtual int64_t expunge_app(const std::string& app_id, TimeMs before, const std::string& after_id,
                              int limit, std::string* last_id, TimeMs now) = 0;
  // Counts up to `limit` of the app's messages created in [since, until) whose ids sort after
  // `after_id`, oldest first, and the endpoints each went to.
  virtual MessageUsage usage(const std::string& app_id, TimeMs since, TimeMs until,
                             const std::string& after_id, int limit) = 0;
  // Deletes up to `limit` messages created before `before`, oldest first, with their deliveries
  // and attempts; a message with a delivery still pending or sending is skipped. Returns how
  // many.
  virtual int64_t purge(TimeMs before, int limit) = 0;
  // Newest first.
  virtual ListPage<Message> list(const std::string& app_id, const ListParams& p,
                                 const MessageFilter& f) = 0;
};

}  // namespace herald
