#include "db/sqlite/connection.h"
#include "db/sqlite/stores.h"

namespace herald::sqlite {
namespace {

constexpr const char* kColumns =
    "SELECT id, app_id, kind, status, params, state, data, created_at, updated_at FROM "
    "background_tasks";

BackgroundTask read_task(const Stmt& st) {
  BackgroundTask t;
  t.id = st.get_text(0);
  t.app_id = st.get_opt_text(1);
  t.kind = st.get_text(2);
  t.status = static_cast<TaskStatus>(st.get_int(3));
  t.params_json = st.get_text(4);
  t.state_json = st.get_text(5);
  t.data_json = st.get_text(6);
  t.created_at = st.get_int(7);
  t.updated_at = st.get_int(8);
  return t;
}

}  // namespace

void SqliteTaskStore::insert(const BackgroundTask& t) {
  x_.conn
      .prepare(
          "INSERT INTO background_tasks (id, app_id, kind, status, params, state, data, "
          "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .bind(1, t.id)
      .bind(2, t.app_id)
      .bind(3, t.kind)
      .bind(4, static_cast<int>(t.status))
      .bind(5, t.params_json)
      .bind(6, t.state_json)
      .bind(7, t.data_json)
      .bind(8, t.created_at)
      .bind(9, t.updated_at)
      .run();
}

std::optional<BackgroundTask> SqliteTaskStore::get(const std::string& id) {
  auto st = x_.conn.prepare(std::string(kColumns) + " WHERE id = ?");
  st.bind(1, id);
  if (!st.step()) return std::nullopt;
  return read_task(st);
}

ListPage<BackgroundTask> SqliteTaskStore::list(const ListParams& p, const TaskFilter& f) {
  auto k = keyset_sql("id", p.descending.value_or(true), p);
  std::string sql = std::string(kColumns) + " WHERE 1 = 1";
  if (f.status) sql += " AND status = ?";
  if (f.kind) sql += " AND kind = ?";
  if (f.app_id) sql += " AND app_id = ?";
  sql += k.where + k.order + " LIMIT ?";
  auto st = x_.conn.prepare(sql);
  int i = 1;
  if (f.status) st.bind(i++, static_cast<int>(*f.status));
  if (f.kind) st.bind(i++, *f.kind);
  if (f.app_id) st.bind(i++, *f.app_id);
  if (p.cursor) st.bind(i++, *p.cursor);
  st.bind(i, p.limit + 1);
  std::vector<BackgroundTask> rows;
  while (st.step()) rows.push_back(read_task(st));
  return finish_page(std::move(rows), p);
}

std::optional<BackgroundTask> SqliteTaskStore::claim(TimeMs now, int64_t lease_ms, int64_t claim) {
  auto st = x_.conn.prepare(
      "UPDATE background_tasks SET claim = ?, lease_until = ? WHERE id = (SELECT id FROM "
      "background_tasks WHERE status = 0 AND (lease_until IS NULL OR lease_until <= ?) ORDER BY "
      "id LIMIT 1) RETURNING id, app_id, kind, status, params, state, data, created_at, "
      "updated_at");
  st.bind(1, claim).bind(2, now + lease_ms).bind(3, now);
  if (!st.step()) return std::nullopt;
  return read_task(st);
}

bool SqliteTaskStore::hold(const std::string& id, int64_t claim, TimeMs lease_until) {
  // The transaction holds the file's write lock: nobody else steps anything meanwhile.
  x_.conn
      .prepare(
          "UPDATE background_tasks SET lease_until = ? WHERE id = ? AND claim = ? AND status = 0")
      .bind(1, lease_until)
      .bind(2, id)
      .bind(3, claim)
      .run();
  return x_.conn.changes() == 1;
}

void SqliteTaskStore::save(const BackgroundTask& t, int64_t claim) {
  x_.conn
      .prepare(
          "UPDATE background_tasks SET status = ?, state = ?, data = ?, updated_at = ?, "
          "lease_until = CASE WHEN ? = 0 THEN lease_until END WHERE id = ? AND claim = ?")
      .bind(1, static_cast<int>(t.status))
      .bind(2, t.state_json)
      .bind(3, t.data_json)
      .bind(4, t.updated_at)
      .bind(5, static_cast<int>(t.status))
      .bind(6, t.id)
      .bind(7, claim)
      .run();
}

int64_t SqliteTaskStore::purge(TimeMs before, int limit) {
  x_.conn
      .prepare(
          "DELETE FROM background_tasks WHERE id IN (SELECT id FROM background_tasks WHERE "
          "status <> 0 AND updated_at < ? ORDER BY id LIMIT ?)")
      .bind(1, before)
      .bind(2, limit)
      .run();
  return x_.conn.changes();
}

}  // namespace herald::sqlite
