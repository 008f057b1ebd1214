#include "core/ids.h"
#include "db/json_text.h"
#include "db/postgres/connection.h"
#include "db/postgres/stores.h"

namespace herald::pg {
namespace {

constexpr const char* kColumns =
    "SELECT id, app_id, event_id, event_type, payload, channels, tags, created_at, deliver_at "
    "FROM messages";

Message read_message(const Result& r, int row) {
  Message m;
  m.id = r.get_text(row, 0);
  m.app_id = r.get_text(row, 1);
  m.event_id = r.get_opt_text(row, 2);
  m.event_type = r.get_text(row, 3);
  m.payload = r.get_text(row, 4);
  m.payload_expired = r.is_null(row, 4);
  m.channels = opt_string_list_from_json(r.get_opt_text(row, 5));
  m.tags = opt_string_list_from_json(r.get_opt_text(row, 6));
  m.timestamp = r.get_int(row, 7);
  m.deliver_at = r.get_opt_int(row, 8);
  return m;
}

}  // namespace

void PgMessageStore::insert(const Message& m) {
  x_.conn.query(
      "INSERT INTO messages (id, app_id, event_id, event_type, payload, channels, tags, "
      "created_at, deliver_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
      Params()
          .add(m.id)
          .add(m.app_id)
          .add(m.event_id)
          .add(m.event_type)
          .add(m.payload_expired ? std::nullopt : std::optional<std::string>(m.payload))
          .add(to_json_text(m.channels))
          .add(to_json_text(m.tags))
          .add(m.timestamp)
          .add(m.deliver_at));
}

std::optional<Message> PgMessageStore::get(const std::string& app_id, const std::string& key) {
  if (is_id_with_prefix(key, kMessagePrefix)) {
    auto r = x_.conn.query(std::string(kColumns) + " WHERE id = $1 AND app_id = $2",
                           Params().add(key).add(app_id));
    if (r.rows() > 0) return read_message(r, 0);
  }
  auto r = x_.conn.query(std::string(kColumns) + " WHERE event_id = $1 AND app_id = $2",
                         Params().add(key).add(app_id));
  if (r.rows() == 0) return std::nullopt;
  return read_message(r, 0);
}

std::map<std::string, std::string> PgMessageStore::payloads(const std::vector<std::string>& ids) {
  std::map<std::string, std::string> out;
  if (ids.empty()) return out;
  auto r = x_.conn.query("SELECT id, payload FROM messages WHERE id = ANY($1::text[])",
                         Params().add_array(ids));
  for (int i = 0; i < r.rows(); ++i) out.emplace(r.get_text(i, 0), r.get_text(i, 1));
  return out;
}

int64_t PgMessageStore::expire_payloads(TimeMs before, const std::string& after_id, int limit,
                                        std::string* last_id) {
  // SKIP LOCKED: processes sharing the database share the work instead of waiting on it.
  auto r = x_.conn.query(
      "UPDATE messages SET payload = NULL WHERE id IN (SELECT id FROM messages WHERE id > $1 AND "
      "id < $2 AND payload IS NOT NULL ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING id",
      Params().add(after_id).add(id_lower_bound(kMessagePrefix, before)).add(limit));
  for (int i = 0; i < r.rows(); ++i) {
    std::string id = r.get_text(i, 0);
    if (id > *last_id) *last_id = std::move(id);
  }
  return r.rows();
}

namespace {

// Drops the payloads of messages `ids` and fails their deliveries still waiting to be made.
void drop_payloads(Connection& c, const std::vector<std::string>& ids, TimeMs now) {
  if (ids.empty()) return;
  c.query("UPDATE messages SET payload = NULL WHERE id = ANY($1::text[])", Params().add_array(ids));
  c.query(
      "UPDATE deliveries SET status = 2, due_at = NULL, updated_at = $2 WHERE msg_id = "
      "ANY($1::text[]) AND status = 1",
      Params().add_array(ids).add(now));
}

}  // namespace

std::map<std::string, std::string> PgMessageStore::expunge(const std::string& app_id,
                                                           const std::vector<std::string>& keys,
                                                           TimeMs now) {
  std::map<std::string, std::string> found;
  std::vector<std::string> ids;
  for (const auto& key : keys) {
    auto m = get(app_id, key);
    if (!m) continue;
    found.emplace(key, m->id);
    ids.push_back(m->id);
  }
  drop_payloads(x_.conn, ids, now);
  return found;
}

int64_t PgMessageStore::expunge_app(const std::string& app_id, TimeMs before,
                                    const std::string& after_id, int limit, std::string* last_id,
                                    TimeMs now) {
  auto r = x_.conn.query(
      "SELECT id FROM messages WHERE app_id = $1 AND id > $2 AND id < $3 AND payload IS NOT "
      "NULL ORDER BY id LIMIT $4",
      Params().add(app_id).add(after_id).add(id_lower_bound(kMessagePrefix, before)).add(limit));
  std::vector<std::string> ids;
  for (int i = 0; i < r.rows(); ++i) {
    ids.push_back(r.get_text(i, 0));
    if (ids.back() > *last_id) *last_id = ids.back();
  }
  drop_payloads(x_.conn, ids, now);
  return static_cast<int64_t>(ids.size());
}

MessageUsage PgMessageStore::usage(const std::string& app_id, TimeMs since, TimeMs until,
                                   const std::string& after_id, int limit) {
  auto r = x_.conn.query(
      "WITH m AS MATERIALIZED (SELECT id FROM messages WHERE app_id = $1 AND id > $2 AND id >= "
      "$3 AND id < $4 ORDER BY id LIMIT $5) SELECT (SELECT count(*) FROM m), (SELECT max(id) "
      "FROM m), (SELECT count(*) FROM (SELECT DISTINCT d.msg_id, d.endpoint_id FROM deliveries "
      "d WHERE d.msg_id IN (SELECT id FROM m)) p)",
      Params()
          .add(app_id)
          .add(after_id)
          .add(id_lower_bound(kMessagePrefix, since))
          .add(id_lower_bound(kMessagePrefix, until))
          .add(limit));
  MessageUsage u;
  u.messages = r.get_int(0, 0);
  u.last_id = r.get_opt_text(0, 1).value_or("");
  u.destinations = r.get_int(0, 2);
  return u;
}

int64_t PgMessageStore::purge(TimeMs before, int limit) {
  // The queue's tables keep no foreign keys here (migration 2): deliveries and attempts are
  // deleted with their messages in the same statement.
  auto r = x_.conn.query(
      "WITH m AS (DELETE FROM messages WHERE id IN (SELECT m.id FROM messages m WHERE m.id < $1 "
      "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_id = m.id AND d.status IN (1, 3)) "
      "ORDER BY m.id LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id), "
      "d AS (DELETE FROM deliveries WHERE msg_id IN (SELECT id FROM m)), "
      "a AS (DELETE FROM attempts WHERE msg_id IN (SELECT id FROM m)) "
      "SELECT count(*) FROM m",
      Params().add(id_lower_bound(kMessagePrefix, before)).add(limit));
  return r.get_int(0, 0);
}

ListPage<Message> PgMessageStore::list(const std::string& app_id, const ListParams& p,
                                       const MessageFilter& f) {
  Sql q;
  q.text = std::string(kColumns) + " WHERE app_id = " + q.arg(app_id);
  if (f.endpoint_id) {
    q.text +=
        " AND EXISTS (SELECT 1 FROM deliveries e WHERE e.msg_id = messages.id AND "
        "e.endpoint_id = " +
        q.arg(*f.endpoint_id) + ")";
  }
  if (f.missing_endpoint_id) {
    q.text +=
        " AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.msg_id = messages.id AND "
        "e.endpoint_id = " +
        q.arg(*f.missing_endpoint_id) + ")";
  }
  if (f.status_code_class && f.endpoint_id) {
    q.text +=
        " AND (SELECT a.response_status_code FROM attempts a WHERE a.msg_id = messages.id AND "
        "a.endpoint_id = " +
        q.arg(*f.endpoint_id) + " ORDER BY a.id DESC LIMIT 1) BETWEEN " +
        q.arg(*f.status_code_class) + " AND " + q.arg(*f.status_code_class + 99);
  }
  if (f.event_types && !f.event_types->empty()) {
    q.text += " AND event_type = ANY(" + q.array_arg(*f.event_types) + "::text[])";
  }
  if (f.channel) q.text += " AND channels::jsonb ? " + q.arg(*f.channel);
  if (f.tag) q.text += " AND tags::jsonb ? " + q.arg(*f.tag);
  if (f.before) q.text += " AND id < " + q.arg(id_lower_bound(kMessagePrefix, *f.before));
  if (f.after) q.text += " AND id >= " + q.arg(id_lower_bound(kMessagePrefix, *f.after + 1));
  if (f.status && f.endpoint_id) {
    q.text +=
        " AND (SELECT d.status FROM deliveries d WHERE d.msg_id = messages.id AND "
        "d.endpoint_id = " +
        q.arg(*f.endpoint_id) +
        " ORDER BY d.id DESC LIMIT 1) = " + q.arg(static_cast<int>(*f.status));
  } else if (f.status) {
    // DeliveryStats::overall, over the latest delivery to each endpoint (index deliveries_msg).
    q.text +=
        " AND (SELECT CASE WHEN count(*) FILTER (WHERE d.status = 2) > 0 THEN 2 WHEN count(*) "
        "FILTER (WHERE d.status = 3) > 0 THEN 3 WHEN count(*) FILTER (WHERE d.status = 1) > 0 "
        "THEN 1 WHEN count(*) > 0 THEN 0 END FROM deliveries d WHERE d.msg_id = messages.id AND "
        "d.id = (SELECT max(l.id) FROM deliveries l WHERE l.msg_id = d.msg_id AND l.endpoint_id "
        "= d.endpoint_id)) = " +
        q.arg(static_cast<int>(*f.status));
  }
  auto k = keyset_sql("id", true, p, p.cursor ? q.arg(*p.cursor) : std::string());
  q.text += k.where + k.order + " LIMIT " + q.arg(p.limit + 1);
  auto r = x_.conn.query(q.text, q.params);
  std::vector<Message> rows;
  for (int i = 0; i < r.rows(); ++i) rows.push_back(read_message(r, i));
  return finish_page(std::move(rows), p);
}

}  // namespace herald::pg
