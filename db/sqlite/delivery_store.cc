#include <limits>

#include "core/ids.h"
#include "db/json_text.h"
#include "db/sqlite/connection.h"
#include "db/sqlite/delivery_rows.h"
#include "db/sqlite/stores.h"

namespace herald::sqlite {

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

std::vector<Delivery> read_deliveries(Stmt& st) {
  std::vector<Delivery> out;
  while (st.step()) out.push_back(read_delivery(st));
  return out;
}

void SqliteDeliveryStore::insert(const Delivery& d) {
  x_.conn
      .prepare(
          "INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempts, due_at, "
          "trigger, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .bind(1, d.id)
      .bind(2, d.app_id)
      .bind(3, d.msg_id)
      .bind(4, d.endpoint_id)
      .bind(5, static_cast<int>(d.status))
      .bind(6, d.attempts)
      .bind(7, d.next_attempt_at > 0 ? std::optional<int64_t>(d.next_attempt_at) : std::nullopt)
      .bind(8, static_cast<int>(d.trigger))
      .bind(9, d.created_at)
      .bind(10, d.updated_at)
      .run();
}

std::optional<Delivery> SqliteDeliveryStore::get(const std::string& id) {
  auto st =
      x_.conn.prepare(std::string("SELECT ") + kDeliveryColumns + " FROM deliveries WHERE id = ?");
  st.bind(1, id);
  if (!st.step()) return std::nullopt;
  return read_delivery(st);
}

std::vector<Delivery> SqliteDeliveryStore::for_message(const std::string& msg_id) {
  auto st = x_.conn.prepare(std::string("SELECT ") + kDeliveryColumns +
                            " FROM deliveries WHERE msg_id = ? ORDER BY endpoint_id, id");
  st.bind(1, msg_id);
  return read_deliveries(st);
}

DeliveryStats SqliteDeliveryStore::stats_between(const std::string& endpoint_id,
                                                 std::optional<TimeMs> since,
                                                 std::optional<TimeMs> until) {
  auto st = x_.conn.prepare(
      "SELECT status, count(*) FROM deliveries WHERE endpoint_id = ? AND created_at >= ? AND "
      "created_at < ? GROUP BY status");
  st.bind(1, endpoint_id)
      .bind(2, since.value_or(std::numeric_limits<TimeMs>::min()))
      .bind(3, until.value_or(std::numeric_limits<TimeMs>::max()));
  DeliveryStats s;
  while (st.step()) s.add(static_cast<DeliveryStatus>(st.get_int(0)), st.get_int(1));
  return s;
}

std::map<std::string, DeliveryStats> SqliteDeliveryStore::summaries(
    const std::vector<std::string>& msg_ids) {
  std::map<std::string, DeliveryStats> out;
  if (msg_ids.empty()) return out;
  // deliveries_msg serves both the outer lookup and the latest-per-endpoint subquery.
  auto st = x_.conn.prepare(
      "SELECT d.msg_id, d.status, count(*) FROM deliveries d "
      "WHERE d.msg_id IN (SELECT value FROM json_each(?)) AND d.id = (SELECT max(l.id) FROM "
      "deliveries l WHERE l.msg_id = d.msg_id AND l.endpoint_id = d.endpoint_id) "
      "GROUP BY d.msg_id, d.status");
  st.bind(1, to_json_text(msg_ids));
  while (st.step())
    out[st.get_text(0)].add(static_cast<DeliveryStatus>(st.get_int(1)), st.get_int(2));
  return out;
}

}  // namespace herald::sqlite
