#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/types.h"
#include "db/list.h"

namespace herald {

class Connection;

// Filters of a message listing; unset members don't filter.
struct MessageFilter {
  std::optional<std::vector<std::string>> event_types;
  std::optional<std::string> channel;
  std::optional<TimeMs> before;  // created strictly before
  std::optional<TimeMs> after;   // created strictly after
  // The message's overall delivery state (DeliveryStats::overall of its endpoints' latest
  // deliveries); messages without deliveries never match.
  std::optional<DeliveryStatus> status;
};

// The messages table.
class MessageStore {
 public:
  explicit MessageStore(Connection& c) : c_(c) {}

  // Throws DbError (is_constraint) when the app already has a message with its event_id.
  void insert(const Message& m);
  // By id, or by event id within the app.
  std::optional<Message> get(const std::string& app_id, const std::string& key);
  // The payload of message `id`: nullopt when there is no such message, "" once it expired.
  std::optional<std::string> payload(const std::string& id);
  // Drops the payloads of up to `limit` messages created before `before` whose ids sort after
  // `after_id` (a watermark: pass "" first, then *last_id). Returns how many; *last_id becomes
  // the largest id touched.
  int64_t expire_payloads(TimeMs before, const std::string& after_id, int limit,
                          std::string* last_id);
  // Newest first.
  ListPage<Message> list(const std::string& app_id, const ListParams& p, const MessageFilter& f);

 private:
  Connection& c_;
};

}  // namespace herald
