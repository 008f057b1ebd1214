#include "core/ids.h"
#include "db/json_text.h"
#include "db/sqlite/connection.h"
#include "db/sqlite/stores.h"

namespace herald::sqlite {
namespace {

constexpr const char* kColumns =
    "SELECT id, app_id, event_id, event_type, payload, channels, tags, created_at, deliver_at "
    "FROM messages";

Message read_message(const Stmt& st) {
  Message m;
  m.id = st.get_text(0);
  m.app_id = st.get_text(1);
  m.event_id = st.get_opt_text(2);
  m.event_type = st.get_text(3);
  m.payload = st.get_text(4);
  m.payload_expired = st.is_null(4);
  m.channels = opt_string_list_from_json(st.get_opt_text(5));
  m.tags = opt_string_list_from_json(st.get_opt_text(6));
  m.timestamp = st.get_int(7);
  m.deliver_at = st.get_opt_int(8);
  return m;
}

}  // namespace

void SqliteMessageStore::insert(const Message& m) {
  x_.conn
      .prepare(
          "INSERT INTO messages (id, app_id, event_id, event_type, payload, channels, tags, "
          "created_at, deliver_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .bind(1, m.id)
      .bind(2, m.app_id)
      .bind(3, m.event_id)
      .bind(4, m.event_type)
      .bind(5, m.payload_expired ? std::nullopt : std::optional<std::string>(m.payload))
      .bind(6, to_json_text(m.channels))
      .bind(7, to_json_text(m.tags))
      .bind(8, m.timestamp)
      .bind(9, m.deliver_at)
      .run();
}

std::optional<Message> SqliteMessageStore::get(const std::string& app_id, const std::string& key) {
  if (is_id_with_prefix(key, kMessagePrefix)) {
    auto st = x_.conn.prepare(std::string(kColumns) + " WHERE id = ? AND app_id = ?");
    st.bind(1, key).bind(2, app_id);
    if (st.step()) return read_message(st);
  }
  auto st = x_.conn.prepare(std::string(kColumns) + " WHERE event_id = ? AND app_id = ?");
  st.bind(1, key).bind(2, app_id);
  if (!st.step()) return std::nullopt;
  return read_message(st);
}

std::map<std::string, std::string> SqliteMessageStore::payloads(
    const std::vector<std::string>& ids) {
  std::map<std::string, std::string> out;
  auto st = x_.conn.prepare("SELECT payload FROM messages WHERE id = ?");
  for (const auto& id : ids) {
    st.bind(1, id);
    if (st.step()) out.emplace(id, st.get_text(0));
    st.reset();
  }
  return out;
}

int64_t SqliteMessageStore::expire_payloads(TimeMs before, const std::string& after_id, int limit,
                                            std::string* last_id) {
  auto st = x_.conn.prepare(
      "UPDATE messages SET payload = NULL WHERE id IN (SELECT id FROM messages WHERE id > ? AND "
      "id < ? AND payload IS NOT NULL ORDER BY id LIMIT ?) RETURNING id");
  st.bind(1, after_id).bind(2, id_lower_bound(kMessagePrefix, before)).bind(3, limit);
  int64_t n = 0;
  while (st.step()) {
    ++n;
    std::string id = st.get_text(0);
    if (id > *last_id) *last_id = id;
  }
  return n;
}

namespace {

// Drops the payload of message `id` and fails its deliveries still waiting to be made.
void drop_payload(Connection& c, const std::string& id, TimeMs now) {
  c.prepare("UPDATE messages SET payload = NULL WHERE id = ?").bind(1, id).run();
  c.prepare(
       "UPDATE deliveries SET status = 2, due_at = NULL, updated_at = ? WHERE msg_id = ? AND "
       "status = 1")
      .bind(1, now)
      .bind(2, id)
      .run();
}

}  // namespace

std::map<std::string, std::string> SqliteMessageStore::expunge(const std::string& app_id,
                                                               const std::vector<std::string>& keys,
                                                               TimeMs now) {
  std::map<std::string, std::string> found;
  for (const auto& key : keys) {
    auto m = get(app_id, key);
    if (!m) continue;
    drop_payload(x_.conn, m->id, now);
    found.emplace(key, m->id);
  }
  return found;
}

int64_t SqliteMessageStore::expunge_app(const std::string& app_id, TimeMs before,
                                        const std::string& after_id, int limit,
                                        std::string* last_id, TimeMs now) {
  std::vector<std::string> ids;
  {
    auto st = x_.conn.prepare(
        "SELECT id FROM messages WHERE app_id = ? AND id > ? AND id < ? AND payload IS NOT NULL "
        "ORDER BY id LIMIT ?");
    st.bind(1, app_id)
        .bind(2, after_id)
        .bind(3, id_lower_bound(kMessagePrefix, before))
        .bind(4, limit);
    while (st.step()) ids.push_back(st.get_text(0));
  }
  for (const auto& id : ids) {
    drop_payload(x_.conn, id, now);
    if (id > *last_id) *last_id = id;
  }
  return static_cast<int64_t>(ids.size());
}

MessageUsage SqliteMessageStore::usage(const std::string& app_id, TimeMs since, TimeMs until,
                                       const std::string& after_id, int limit) {
  auto st = x_.conn.prepare(
      "WITH m AS (SELECT id FROM messages WHERE app_id = ? AND id > ? AND id >= ? AND id < ? "
      "ORDER BY id LIMIT ?) SELECT (SELECT count(*) FROM m), (SELECT max(id) FROM m), (SELECT "
      "count(*) FROM (SELECT DISTINCT d.msg_id, d.endpoint_id FROM deliveries d WHERE d.msg_id "
      "IN (SELECT id FROM m)))");
  st.bind(1, app_id)
      .bind(2, after_id)
      .bind(3, id_lower_bound(kMessagePrefix, since))
      .bind(4, id_lower_bound(kMessagePrefix, until))
      .bind(5, limit);
  MessageUsage u;
  if (st.step()) {
    u.messages = st.get_int(0);
    u.last_id = st.get_opt_text(1).value_or("");
    u.destinations = st.get_int(2);
  }
  return u;
}

int64_t SqliteMessageStore::purge(TimeMs before, int limit) {
  // Deliveries and attempts go with their message (ON DELETE CASCADE).
  x_.conn
      .prepare(
          "DELETE FROM messages WHERE id IN (SELECT m.id FROM messages m WHERE m.id < ? AND NOT "
          "EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_id = m.id AND d.status IN (1, 3)) "
          "ORDER BY m.id LIMIT ?)")
      .bind(1, id_lower_bound(kMessagePrefix, before))
      .bind(2, limit)
      .run();
  return x_.conn.changes();
}

ListPage<Message> SqliteMessageStore::list(const std::string& app_id, const ListParams& p,
                                           const MessageFilter& f) {
  auto k = keyset_sql("id", true, p);
  std::string sql = std::string(kColumns) + " WHERE app_id = ?";
  if (f.endpoint_id) {
    sql +=
        " AND EXISTS (SELECT 1 FROM deliveries e WHERE e.msg_id = messages.id AND "
        "e.endpoint_id = ?)";
  }
  if (f.missing_endpoint_id) {
    sql +=
        " AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.msg_id = messages.id AND "
        "e.endpoint_id = ?)";
  }
  if (f.status_code_class && f.endpoint_id) {
    sql +=
        " AND (SELECT a.response_status_code FROM attempts a WHERE a.msg_id = messages.id AND "
        "a.endpoint_id = ? ORDER BY a.id DESC LIMIT 1) BETWEEN ? AND ?";
  }
  if (f.event_types && !f.event_types->empty()) {
    sql += " AND event_type IN (SELECT value FROM json_each(?))";
  }
  if (f.channel) sql += " AND EXISTS (SELECT 1 FROM json_each(channels) WHERE value = ?)";
  if (f.tag) sql += " AND EXISTS (SELECT 1 FROM json_each(tags) WHERE value = ?)";
  if (f.before) sql += " AND id < ?";
  if (f.after) sql += " AND id >= ?";
  if (f.status && f.endpoint_id) {
    sql +=
        " AND (SELECT d.status FROM deliveries d WHERE d.msg_id = messages.id AND d.endpoint_id = "
        "? ORDER BY d.id DESC LIMIT 1) = ?";
  } else if (f.status) {
    // DeliveryStats::overall, over the latest delivery to each endpoint (index deliveries_msg).
    sql +=
        " AND (SELECT CASE WHEN sum(d.status = 2) > 0 THEN 2 WHEN sum(d.status = 3) > 0 THEN 3 "
        "WHEN sum(d.status = 1) > 0 THEN 1 WHEN count(*) > 0 THEN 0 END FROM deliveries d "
        "WHERE d.msg_id = messages.id AND d.id = (SELECT max(l.id) FROM deliveries l WHERE "
        "l.msg_id = d.msg_id AND l.endpoint_id = d.endpoint_id)) = ?";
  }
  sql += k.where + k.order + " LIMIT ?";
  auto st = x_.conn.prepare(sql);
  int i = 1;
  st.bind(i++, app_id);
  if (f.endpoint_id) st.bind(i++, *f.endpoint_id);
  if (f.missing_endpoint_id) st.bind(i++, *f.missing_endpoint_id);
  if (f.status_code_class && f.endpoint_id) {
    st.bind(i++, *f.endpoint_id);
    st.bind(i++, *f.status_code_class);
    st.bind(i++, *f.status_code_class + 99);
  }
  if (f.event_types && !f.event_types->empty()) st.bind(i++, to_json_text(*f.event_types));
  if (f.channel) st.bind(i++, *f.channel);
  if (f.tag) st.bind(i++, *f.tag);
  if (f.before) st.bind(i++, id_lower_bound(kMessagePrefix, *f.before));
  if (f.after) st.bind(i++, id_lower_bound(kMessagePrefix, *f.after + 1));
  if (f.status && f.endpoint_id) st.bind(i++, *f.endpoint_id);
  if (f.status) st.bind(i++, static_cast<int>(*f.status));
  if (p.cursor) st.bind(i++, *p.cursor);
  st.bind(i, p.limit + 1);
  std::vector<Message> rows;
  while (st.step()) rows.push_back(read_message(st));
  return finish_page(std::move(rows), p);
}

}  // namespace herald::sqlite
