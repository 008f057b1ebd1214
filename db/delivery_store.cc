#include "db/delivery_store.h"

#include <algorithm>

#include "core/ids.h"
#include "db/json_text.h"
#include "db/sqlite.h"

namespace herald {
namespace {

constexpr const char* kColumns =
    "SELECT id, app_id, msg_id, endpoint_id, status, attempts, due_at, trigger, created_at, "
    "updated_at FROM deliveries";

Delivery read_delivery(const Stmt& st) {
  Delivery d;
  d.id = st.get_text(0);
  d.app_id = st.get_text(1);
  d.msg_id = st.get_text(2);
  d.endpoint_id = st.get_text(3);
  d.status = static_cast<DeliveryStatus>(st.get_int(4));
  d.attempts = static_cast<int>(st.get_int(5));
  d.next_attempt_at = st.get_opt_int(6).value_or(0);
  d.trigger = static_cast<TriggerType>(st.get_int(7));
  d.created_at = st.get_int(8);
  d.updated_at = st.get_int(9);
  return d;
}

// Every row `st` yields.
std::vector<Delivery> read_all(Stmt& st) {
  std::vector<Delivery> out;
  while (st.step()) out.push_back(read_delivery(st));
  return out;
}

}  // namespace

void DeliveryStore::insert(const Delivery& d) {
  c_.prepare(
        "INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempts, due_at, "
        "trigger, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .bind(1, d.id)
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
}

std::vector<Delivery> DeliveryStore::claim(TimeMs now, int64_t lease_ms, int limit) {
  auto st = c_.prepare(
      "UPDATE deliveries SET status = 3, due_at = ?, updated_at = ? WHERE id IN (SELECT id FROM "
      "deliveries WHERE status IN (1, 3) AND due_at <= ? ORDER BY due_at LIMIT ?) RETURNING id, "
      "app_id, msg_id, endpoint_id, status, attempts, due_at, trigger, created_at, updated_at");
  st.bind(1, now + lease_ms).bind(2, now).bind(3, now).bind(4, limit);
  return read_all(st);
}

void DeliveryStore::update(const DeliveryUpdate& u, TimeMs now) {
  c_.prepare(
        "UPDATE deliveries SET status = ?, attempts = ?, due_at = ?, updated_at = ? WHERE id = ?")
      .bind(1, static_cast<int>(u.status))
      .bind(2, u.attempts)
      .bind(3, u.due_at)
      .bind(4, now)
      .bind(5, u.id)
      .run();
}

std::vector<Delivery> DeliveryStore::claim_parked(const std::string& endpoint_id, TimeMs now,
                                                  int64_t lease_ms, int limit) {
  auto st = c_.prepare(
      "UPDATE deliveries SET status = 3, due_at = ?, updated_at = ? WHERE id IN (SELECT id FROM "
      "deliveries WHERE endpoint_id = ? AND status = 1 AND due_at IS NULL ORDER BY id LIMIT ?) "
      "RETURNING id, app_id, msg_id, endpoint_id, status, attempts, due_at, trigger, created_at, "
      "updated_at");
  st.bind(1, now + lease_ms).bind(2, now).bind(3, endpoint_id).bind(4, limit);
  return read_all(st);
}

std::vector<std::string> DeliveryStore::parked_endpoints() {
  auto st =
      c_.prepare("SELECT DISTINCT endpoint_id FROM deliveries WHERE status = 1 AND due_at IS NULL");
  std::vector<std::string> out;
  while (st.step()) out.push_back(st.get_text(0));
  return out;
}

DeliveryStore::QueueState DeliveryStore::queue_state(TimeMs now) {
  // Both reads are scans of a partial index alone (no table rows): cheap enough per scrape.
  QueueState q;
  {
    auto st = c_.prepare(
        "SELECT count(*), min(due_at) FROM deliveries WHERE status IN (1, 3) AND due_at IS NOT "
        "NULL");
    if (st.step()) {
      q.queued = st.get_int(0);
      if (!st.is_null(1) && st.get_int(1) <= now) q.oldest_due = st.get_int(1);
    }
  }
  {
    // A parked delivery fell due no later than it was made (its id's time).
    auto st =
        c_.prepare("SELECT count(*), min(id) FROM deliveries WHERE status = 1 AND due_at IS NULL");
    if (st.step()) {
      q.parked = st.get_int(0);
      if (auto t = id_time(st.get_text(1))) {
        q.oldest_due = q.oldest_due ? std::min(*q.oldest_due, *t) : *t;
      }
    }
  }
  return q;
}

std::optional<TimeMs> DeliveryStore::next_due() {
  auto st = c_.prepare("SELECT min(due_at) FROM deliveries WHERE status IN (1, 3)");
  if (!st.step()) return std::nullopt;
  return st.get_opt_int(0);
}

int64_t DeliveryStore::recover(const std::string& endpoint_id, TimeMs since, TimeMs until,
                               TimeMs now) {
  c_.prepare(
        "UPDATE deliveries SET status = 1, due_at = ?, trigger = 1, updated_at = ? WHERE "
        "endpoint_id = ? AND status = 2 AND created_at >= ? AND created_at < ?")
      .bind(1, now)
      .bind(2, now)
      .bind(3, endpoint_id)
      .bind(4, since)
      .bind(5, until)
      .run();
  return c_.changes();
}

std::optional<Delivery> DeliveryStore::get(const std::string& id) {
  auto st = c_.prepare(std::string(kColumns) + " WHERE id = ?");
  st.bind(1, id);
  if (!st.step()) return std::nullopt;
  return read_delivery(st);
}

std::vector<Delivery> DeliveryStore::for_message(const std::string& msg_id) {
  auto st = c_.prepare(std::string(kColumns) + " WHERE msg_id = ? ORDER BY endpoint_id, id");
  st.bind(1, msg_id);
  return read_all(st);
}

namespace {

void add_count(DeliveryStats& s, int64_t status, int64_t n) {
  switch (static_cast<DeliveryStatus>(status)) {
    case DeliveryStatus::kSuccess:
      s.success += n;
      break;
    case DeliveryStatus::kPending:
      s.pending += n;
      break;
    case DeliveryStatus::kFail:
      s.fail += n;
      break;
    case DeliveryStatus::kSending:
      s.sending += n;
      break;
  }
}

}  // namespace

std::optional<DeliveryStatus> DeliveryStats::overall() const {
  if (fail > 0) return DeliveryStatus::kFail;
  if (sending > 0) return DeliveryStatus::kSending;
  if (pending > 0) return DeliveryStatus::kPending;
  if (success > 0) return DeliveryStatus::kSuccess;
  return std::nullopt;
}

DeliveryStats DeliveryStore::stats(const std::string& endpoint_id) {
  auto st =
      c_.prepare("SELECT status, count(*) FROM deliveries WHERE endpoint_id = ? GROUP BY status");
  st.bind(1, endpoint_id);
  DeliveryStats s;
  while (st.step()) add_count(s, st.get_int(0), st.get_int(1));
  return s;
}

std::map<std::string, DeliveryStats> DeliveryStore::summaries(
    const std::vector<std::string>& msg_ids) {
  std::map<std::string, DeliveryStats> out;
  if (msg_ids.empty()) return out;
  // deliveries_msg serves both the outer lookup and the latest-per-endpoint subquery.
  auto st = c_.prepare(
      "SELECT d.msg_id, d.status, count(*) FROM deliveries d "
      "WHERE d.msg_id IN (SELECT value FROM json_each(?)) AND d.id = (SELECT max(l.id) FROM "
      "deliveries l WHERE l.msg_id = d.msg_id AND l.endpoint_id = d.endpoint_id) "
      "GROUP BY d.msg_id, d.status");
  st.bind(1, to_json_text(msg_ids));
  while (st.step()) add_count(out[st.get_text(0)], st.get_int(1), st.get_int(2));
  return out;
}

}  // namespace herald
