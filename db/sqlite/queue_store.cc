#include <algorithm>
#include <stdexcept>

#include "core/ids.h"
#include "db/database.h"
#include "db/session.h"
#include "db/sqlite/connection.h"
#include "db/sqlite/database.h"
#include "db/sqlite/delivery_rows.h"
#include "db/sqlite/stores.h"

namespace herald::sqlite {

void SqliteQueueStore::enqueue(std::vector<Delivery> deliveries,
                               std::shared_ptr<const std::string> payload) {
  if (deliveries.empty()) return;
  if (!x_.session.in_transaction()) throw std::logic_error("QueueStore::enqueue: no transaction");
  // The fast path: deliveries the scheduler has room for are written claimed and handed to it
  // once committed (no claim query, no payload read). Only this process consumes the file's
  // queue, so no other claimer can be bypassed. The rest wait in the queue to be claimed.
  // Deliveries due later (a scheduled message) wait in the queue like any other.
  QueueListener* listener = x_.db.queue_listener();
  const bool due_now = deliveries.front().next_attempt_at <= deliveries.front().created_at;
  const int granted =
      listener != nullptr && due_now ? listener->reserve(static_cast<int>(deliveries.size())) : 0;
  std::vector<Delivery> fresh;
  if (granted > 0) {
    // The room comes back if this work is undone; once committed it is the scheduler's.
    x_.session.on_outcome({}, [listener, granted] { listener->release(granted); });
  }
  const TimeMs lease_until = granted > 0 ? deliveries.front().created_at + listener->lease_ms() : 0;
  auto st = x_.conn.prepare(
      "INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempts, due_at, "
      "trigger, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  for (size_t i = 0; i < deliveries.size(); ++i) {
    Delivery& d = deliveries[i];
    if (static_cast<int>(i) < granted) {
      d.status = DeliveryStatus::kSending;
      d.next_attempt_at = lease_until;
    }
    st.bind(1, d.id)
        .bind(2, d.app_id)
        .bind(3, d.msg_id)
        .bind(4, d.endpoint_id)
        .bind(5, static_cast<int>(d.status))
        .bind(6, d.attempts)
        .bind(7, d.next_attempt_at)
        .bind(8, static_cast<int>(d.trigger))
        .bind(9, d.created_at)
        .bind(10, d.updated_at)
        .run();
    st.reset();
  }
  if (listener == nullptr) return;
  if (granted > 0) {
    deliveries.resize(static_cast<size_t>(granted));
    // Handing over wakes the scheduler, whose round also claims any delivery left pending.
    auto handed = std::make_shared<std::vector<Delivery>>(std::move(deliveries));
    x_.session.on_outcome(
        [listener, handed, payload = std::move(payload)] {
          listener->hand_over(std::move(*handed), payload);
        },
        {});
  } else {
    x_.session.on_outcome([listener] { listener->wake(); }, {});
  }
}

std::vector<Delivery> SqliteQueueStore::claim(TimeMs now, int64_t lease_ms, int limit) {
  auto st = x_.conn.prepare(
      std::string("UPDATE deliveries SET status = 3, due_at = ?, updated_at = ? WHERE id IN "
                  "(SELECT id FROM deliveries WHERE status IN (1, 3) AND due_at <= ? ORDER BY "
                  "due_at LIMIT ?) RETURNING ") +
      kDeliveryColumns);
  st.bind(1, now + lease_ms).bind(2, now).bind(3, now).bind(4, limit);
  return read_deliveries(st);
}

std::vector<Delivery> SqliteQueueStore::claim_parked(const std::string& endpoint_id, TimeMs now,
                                                     int64_t lease_ms, int limit) {
  auto st = x_.conn.prepare(
      std::string("UPDATE deliveries SET status = 3, due_at = ?, updated_at = ? WHERE id IN "
                  "(SELECT id FROM deliveries WHERE endpoint_id = ? AND status = 1 AND due_at IS "
                  "NULL ORDER BY id LIMIT ?) RETURNING ") +
      kDeliveryColumns);
  st.bind(1, now + lease_ms).bind(2, now).bind(3, endpoint_id).bind(4, limit);
  return read_deliveries(st);
}

void SqliteQueueStore::complete(const std::vector<DeliveryUpdate>& updates, TimeMs now) {
  auto st = x_.conn.prepare(
      "UPDATE deliveries SET status = ?, attempts = ?, due_at = ?, updated_at = ? WHERE id = ?");
  for (const auto& u : updates) {
    st.bind(1, static_cast<int>(u.status))
        .bind(2, u.attempts)
        .bind(3, u.due_at)
        .bind(4, now)
        .bind(5, u.id)
        .run();
    st.reset();
  }
}

std::vector<std::string> SqliteQueueStore::parked_endpoints() {
  // One index probe per endpoint (deliveries_parked), not a scan of every parked row.
  auto st = x_.conn.prepare(
      "WITH RECURSIVE e(id) AS (SELECT min(endpoint_id) FROM deliveries WHERE status = 1 AND "
      "due_at IS NULL UNION ALL SELECT (SELECT min(endpoint_id) FROM deliveries WHERE status = 1 "
      "AND due_at IS NULL AND endpoint_id > e.id) FROM e WHERE e.id IS NOT NULL) "
      "SELECT id FROM e WHERE id IS NOT NULL");
  std::vector<std::string> out;
  while (st.step()) out.push_back(st.get_text(0));
  return out;
}

QueueState SqliteQueueStore::state(TimeMs now) {
  // Both reads are scans of a partial index alone (no table rows): cheap enough per scrape.
  QueueState q;
  {
    auto st = x_.conn.prepare(
        "SELECT count(*), min(due_at) FROM deliveries WHERE status IN (1, 3) AND due_at IS NOT "
        "NULL");
    if (st.step()) {
      q.queued = st.get_int(0);
      if (!st.is_null(1) && st.get_int(1) <= now) q.oldest_due = st.get_int(1);
    }
  }
  {
    // A parked delivery fell due no later than it was made (its id's time).
    auto st = x_.conn.prepare(
        "SELECT count(*), min(id) FROM deliveries WHERE status = 1 AND due_at IS NULL");
    if (st.step()) {
      q.parked = st.get_int(0);
      if (auto t = id_time(st.get_text(1))) {
        q.oldest_due = q.oldest_due ? std::min(*q.oldest_due, *t) : *t;
      }
    }
  }
  return q;
}

std::optional<TimeMs> SqliteQueueStore::next_due() {
  auto st = x_.conn.prepare("SELECT min(due_at) FROM deliveries WHERE status IN (1, 3)");
  if (!st.step()) return std::nullopt;
  return st.get_opt_int(0);
}

int64_t SqliteQueueStore::recover(const std::string& endpoint_id, TimeMs since, TimeMs until,
                                  TimeMs now, const std::string& after_id, int limit,
                                  std::string* last_id) {
  auto st = x_.conn.prepare(
      "UPDATE deliveries SET status = 1, due_at = ?, trigger = 1, updated_at = ? WHERE id IN "
      "(SELECT d.id FROM deliveries d JOIN messages m ON m.id = d.msg_id WHERE d.endpoint_id = ? "
      "AND d.status = 2 AND d.created_at >= ? AND d.created_at < ? AND d.id > ? AND m.payload IS "
      "NOT NULL ORDER BY d.id LIMIT ?) RETURNING id");
  st.bind(1, now)
      .bind(2, now)
      .bind(3, endpoint_id)
      .bind(4, since)
      .bind(5, until)
      .bind(6, after_id)
      .bind(7, limit);
  int64_t n = 0;
  while (st.step()) {
    ++n;
    std::string id = st.get_text(0);
    if (id > *last_id) *last_id = std::move(id);
  }
  if (n > 0) {
    if (QueueListener* listener = x_.db.queue_listener()) {
      if (x_.session.in_transaction()) {
        x_.session.on_outcome([listener] { listener->wake(); }, {});
      } else {
        listener->wake();
      }
    }
  }
  return n;
}

}  // namespace herald::sqlite
