#include <limits>

#include "db/postgres/delivery_rows.h"
#include "db/postgres/stores.h"

namespace herald::pg {

std::vector<Delivery> read_deliveries(const Result& r) {
  std::vector<Delivery> out;
  out.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    Delivery d;
    d.id = r.get_text(i, 0);
    d.app_id = r.get_text(i, 1);
    d.msg_id = r.get_text(i, 2);
    d.endpoint_id = r.get_text(i, 3);
    d.status = static_cast<DeliveryStatus>(r.get_int(i, 4));
    d.attempts = static_cast<int>(r.get_int(i, 5));
    d.next_attempt_at = r.get_opt_int(i, 6).value_or(0);
    d.trigger = static_cast<TriggerType>(r.get_int(i, 7));
    d.created_at = r.get_int(i, 8);
    d.updated_at = r.get_int(i, 9);
    d.claim = r.get_opt_int(i, 10).value_or(0);
    out.push_back(std::move(d));
  }
  return out;
}

void PgDeliveryStore::insert(const Delivery& d) {
  x_.conn.query(
      "INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempts, due_at, "
      "trigger, created_at, updated_at, claim) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
      "$11)",
      Params()
          .add(d.id)
          .add(d.app_id)
          .add(d.msg_id)
          .add(d.endpoint_id)
          .add(static_cast<int>(d.status))
          .add(d.attempts)
          .add(d.next_attempt_at > 0 ? std::optional<int64_t>(d.next_attempt_at) : std::nullopt)
          .add(static_cast<int>(d.trigger))
          .add(d.created_at)
          .add(d.updated_at)
          .add(d.claim != 0 ? std::optional<int64_t>(d.claim) : std::nullopt));
}

std::optional<Delivery> PgDeliveryStore::get(const std::string& id) {
  auto ds = read_deliveries(
      x_.conn.query(std::string("SELECT ") + kDeliveryColumns + " FROM deliveries WHERE id = $1",
                    Params().add(id)));
  if (ds.empty()) return std::nullopt;
  return std::move(ds.front());
}

std::vector<Delivery> PgDeliveryStore::for_message(const std::string& msg_id) {
  return read_deliveries(x_.conn.query(std::string("SELECT ") + kDeliveryColumns +
                                           " FROM deliveries WHERE msg_id = $1 ORDER BY "
                                           "endpoint_id, id",
                                       Params().add(msg_id)));
}

DeliveryStats PgDeliveryStore::stats_between(const std::string& endpoint_id,
                                             std::optional<TimeMs> since,
                                             std::optional<TimeMs> until) {
  auto r = x_.conn.query(
      "SELECT status, count(*) FROM deliveries WHERE endpoint_id = $1 AND created_at >= $2 AND "
      "created_at < $3 GROUP BY status",
      Params()
          .add(endpoint_id)
          .add(since.value_or(std::numeric_limits<TimeMs>::min()))
          .add(until.value_or(std::numeric_limits<TimeMs>::max())));
  DeliveryStats s;
  for (int i = 0; i < r.rows(); ++i) {
    s.add(static_cast<DeliveryStatus>(r.get_int(i, 0)), r.get_int(i, 1));
  }
  return s;
}

std::map<std::string, DeliveryStats> PgDeliveryStore::summaries(
    const std::vector<std::string>& msg_ids) {
  std::map<std::string, DeliveryStats> out;
  if (msg_ids.empty()) return out;
  // deliveries_msg serves both the outer lookup and the latest-per-endpoint subquery.
  auto r = x_.conn.query(
      "SELECT d.msg_id, d.status, count(*) FROM deliveries d WHERE d.msg_id = ANY($1::text[]) "
      "AND d.id = (SELECT max(l.id) FROM deliveries l WHERE l.msg_id = d.msg_id AND "
      "l.endpoint_id = d.endpoint_id) GROUP BY d.msg_id, d.status",
      Params().add_array(msg_ids));
  for (int i = 0; i < r.rows(); ++i) {
    out[r.get_text(i, 0)].add(static_cast<DeliveryStatus>(r.get_int(i, 1)), r.get_int(i, 2));
  }
  return out;
}

}  // namespace herald::pg
