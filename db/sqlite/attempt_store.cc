#include "core/ids.h"
#include "db/json_text.h"
#include "db/sqlite/connection.h"
#include "db/sqlite/stores.h"

namespace herald::sqlite {
namespace {

constexpr const char* kColumns =
    "SELECT id, app_id, msg_id, endpoint_id, delivery_id, url, response_status_code, response, "
    "response_duration_ms, status, trigger, request_headers, created_at, response_expunged FROM "
    "attempts";

Attempt read_attempt(const Stmt& st) {
  Attempt a;
  a.id = st.get_text(0);
  a.app_id = st.get_text(1);
  a.msg_id = st.get_text(2);
  a.endpoint_id = st.get_text(3);
  a.delivery_id = st.get_text(4);
  a.url = st.get_text(5);
  a.response_status_code = static_cast<int>(st.get_int(6));
  a.response = st.get_text(7);
  a.response_duration_ms = st.get_int(8);
  a.status = static_cast<DeliveryStatus>(st.get_int(9));
  a.trigger = static_cast<TriggerType>(st.get_int(10));
  a.request_headers_json = st.get_text(11);
  a.timestamp = st.get_int(12);
  a.response_expunged = st.get_int(13) != 0;
  return a;
}

}  // namespace

void SqliteAttemptStore::insert(const std::vector<Attempt>& attempts) {
  auto st = x_.conn.prepare(
      "INSERT INTO attempts (id, app_id, msg_id, endpoint_id, delivery_id, url, "
      "response_status_code, response, response_duration_ms, status, trigger, request_headers, "
      "created_at) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13 WHERE EXISTS "
      "(SELECT 1 FROM endpoints WHERE id = ?4)");
  for (const Attempt& a : attempts) {
    st.bind(1, a.id)
        .bind(2, a.app_id)
        .bind(3, a.msg_id)
        .bind(4, a.endpoint_id)
        .bind(5, a.delivery_id)
        .bind(6, a.url)
        .bind(7, a.response_status_code)
        .bind(8, a.response)
        .bind(9, a.response_duration_ms)
        .bind(10, static_cast<int>(a.status))
        .bind(11, static_cast<int>(a.trigger))
        .bind(12, a.request_headers_json)
        .bind(13, a.timestamp)
        .run();
    st.reset();
  }
}

int64_t SqliteAttemptStore::purge(TimeMs before, int limit) {
  x_.conn
      .prepare(
          "DELETE FROM attempts WHERE id IN (SELECT id FROM attempts WHERE id < ? ORDER BY id "
          "LIMIT ?)")
      .bind(1, id_lower_bound(kAttemptPrefix, before))
      .bind(2, limit)
      .run();
  return x_.conn.changes();
}

bool SqliteAttemptStore::expunge_response(const std::string& app_id, const std::string& id) {
  x_.conn
      .prepare(
          "UPDATE attempts SET response = '', response_expunged = 1 WHERE id = ? AND app_id = ?")
      .bind(1, id)
      .bind(2, app_id)
      .run();
  return x_.conn.changes() == 1;
}

std::optional<Attempt> SqliteAttemptStore::get(const std::string& app_id, const std::string& id) {
  auto st = x_.conn.prepare(std::string(kColumns) + " WHERE id = ? AND app_id = ?");
  st.bind(1, id).bind(2, app_id);
  if (!st.step()) return std::nullopt;
  return read_attempt(st);
}

ListPage<Attempt> SqliteAttemptStore::list_by_message(const std::string& app_id,
                                                      const std::string& msg_id,
                                                      const ListParams& p, const AttemptFilter& f) {
  return list(app_id, "msg_id", msg_id, p, f);
}

ListPage<Attempt> SqliteAttemptStore::list_by_endpoint(const std::string& app_id,
                                                       const std::string& endpoint_id,
                                                       const ListParams& p,
                                                       const AttemptFilter& f) {
  return list(app_id, "endpoint_id", endpoint_id, p, f);
}

std::vector<AttemptBucket> SqliteAttemptStore::timeline(const std::string& endpoint_id,
                                                        TimeMs start, TimeMs until,
                                                        int64_t bucket_ms) {
  auto st = x_.conn.prepare(
      "SELECT (created_at - ?) / ? AS b, sum(status = 0), sum(status <> 0) FROM attempts "
      "WHERE endpoint_id = ? AND id >= ? AND id < ? AND created_at >= ? AND created_at < ? "
      "GROUP BY b ORDER BY b");
  st.bind(1, start)
      .bind(2, bucket_ms)
      .bind(3, endpoint_id)
      .bind(4, id_lower_bound(kAttemptPrefix, start))
      .bind(5, id_lower_bound(kAttemptPrefix, until))
      .bind(6, start)
      .bind(7, until);
  std::vector<AttemptBucket> out;
  while (st.step()) out.push_back(AttemptBucket{st.get_int(0), st.get_int(1), st.get_int(2)});
  return out;
}

std::optional<Attempt> SqliteAttemptStore::latest(const std::string& endpoint_id) {
  auto st =
      x_.conn.prepare(std::string(kColumns) + " WHERE endpoint_id = ? ORDER BY id DESC LIMIT 1");
  st.bind(1, endpoint_id);
  if (!st.step()) return std::nullopt;
  return read_attempt(st);
}

ListPage<Attempt> SqliteAttemptStore::list(const std::string& app_id, const char* key_col,
                                           const std::string& key, const ListParams& p,
                                           const AttemptFilter& f) {
  auto k = keyset_sql("id", true, p);
  std::string sql = std::string(kColumns) + " WHERE app_id = ? AND " + key_col + " = ?";
  if (f.status) sql += " AND status = ?";
  if (f.endpoint_id) sql += " AND endpoint_id = ?";
  if (f.status_code_class) sql += " AND response_status_code >= ? AND response_status_code < ?";
  if (f.filters_messages()) {
    sql += " AND msg_id IN (SELECT m.id FROM messages m WHERE m.app_id = attempts.app_id";
    if (f.event_types && !f.event_types->empty()) {
      sql += " AND m.event_type IN (SELECT value FROM json_each(?))";
    }
    if (f.channel) sql += " AND EXISTS (SELECT 1 FROM json_each(m.channels) WHERE value = ?)";
    if (f.tag) sql += " AND EXISTS (SELECT 1 FROM json_each(m.tags) WHERE value = ?)";
    sql += ")";
  }
  if (f.before) sql += " AND id < ?";
  if (f.after) sql += " AND id >= ?";
  sql += k.where + k.order + " LIMIT ?";
  auto st = x_.conn.prepare(sql);
  int i = 1;
  st.bind(i++, app_id);
  st.bind(i++, key);
  if (f.status) st.bind(i++, static_cast<int>(*f.status));
  if (f.endpoint_id) st.bind(i++, *f.endpoint_id);
  if (f.status_code_class) {
    st.bind(i++, *f.status_code_class);
    st.bind(i++, *f.status_code_class + 100);
  }
  if (f.event_types && !f.event_types->empty()) st.bind(i++, to_json_text(*f.event_types));
  if (f.channel) st.bind(i++, *f.channel);
  if (f.tag) st.bind(i++, *f.tag);
  if (f.before) st.bind(i++, id_lower_bound(kAttemptPrefix, *f.before));
  if (f.after) st.bind(i++, id_lower_bound(kAttemptPrefix, *f.after + 1));
  if (p.cursor) st.bind(i++, *p.cursor);
  st.bind(i, p.limit + 1);
  std::vector<Attempt> rows;
  while (st.step()) rows.push_back(read_attempt(st));
  return finish_page(std::move(rows), p);
}

}  // namespace herald::sqlite
