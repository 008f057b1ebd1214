#include "db/postgres/connection.h"
#include "db/postgres/stores.h"

namespace herald::pg {
namespace {

constexpr const char* kFields =
    "id, app_id, kind, status, params, state, data, created_at, updated_at";

BackgroundTask read_task(const Result& r, int row) {
  BackgroundTask t;
  t.id = r.get_text(row, 0);
  t.app_id = r.get_opt_text(row, 1);
  t.kind = r.get_text(row, 2);
  t.status = static_cast<TaskStatus>(r.get_int(row, 3));
  t.params_json = r.get_text(row, 4);
  t.state_json = r.get_text(row, 5);
  t.data_json = r.get_text(row, 6);
  t.created_at = r.get_int(row, 7);
  t.updated_at = r.get_int(row, 8);
  return t;
}

}  // namespace

void PgTaskStore::insert(const BackgroundTask& t) {
  x_.conn.query(
      "INSERT INTO background_tasks (id, app_id, kind, status, params, state, data, created_at, "
      "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
      Params()
          .add(t.id)
          .add(t.app_id)
          .add(t.kind)
          .add(static_cast<int>(t.status))
          .add(t.params_json)
          .add(t.state_json)
          .add(t.data_json)
          .add(t.created_at)
          .add(t.updated_at));
}

std::optional<BackgroundTask> PgTaskStore::get(const std::string& id) {
  auto r = x_.conn.query(std::string("SELECT ") + kFields + " FROM background_tasks WHERE id = $1",
                         Params().add(id));
  if (r.rows() == 0) return std::nullopt;
  return read_task(r, 0);
}

ListPage<BackgroundTask> PgTaskStore::list(const ListParams& p, const TaskFilter& f) {
  Sql q;
  q.text = std::string("SELECT ") + kFields + " FROM background_tasks WHERE true";
  if (f.status) q.text += " AND status = " + q.arg(static_cast<int>(*f.status));
  if (f.kind) q.text += " AND kind = " + q.arg(*f.kind);
  if (f.app_id) q.text += " AND app_id = " + q.arg(*f.app_id);
  auto k = keyset_sql("id", p.descending.value_or(true), p, p.cursor ? q.arg(*p.cursor) : "");
  q.text += k.where + k.order + " LIMIT " + q.arg(p.limit + 1);
  auto r = x_.conn.query(q.text, q.params);
  std::vector<BackgroundTask> rows;
  for (int i = 0; i < r.rows(); ++i) rows.push_back(read_task(r, i));
  return finish_page(std::move(rows), p);
}

std::optional<BackgroundTask> PgTaskStore::claim(TimeMs now, int64_t lease_ms, int64_t claim) {
  // One short statement: a task another process is claiming or stepping (its row locked) is
  // skipped, never waited for.
  auto r = x_.conn.query(
      std::string("WITH c AS MATERIALIZED (SELECT id FROM background_tasks WHERE status = 0 AND "
                  "(lease_until IS NULL OR lease_until <= $1) ORDER BY id LIMIT 1 FOR UPDATE "
                  "SKIP LOCKED) UPDATE background_tasks t SET claim = $2, lease_until = $3 FROM "
                  "c WHERE t.id = c.id RETURNING ") +
          "t.id, t.app_id, t.kind, t.status, t.params, t.state, t.data, t.created_at, "
          "t.updated_at",
      Params().add(now).add(claim).add(now + lease_ms));
  if (r.rows() == 0) return std::nullopt;
  return read_task(r, 0);
}

bool PgTaskStore::hold(const std::string& id, int64_t claim, TimeMs lease_until) {
  // The row stays locked until the transaction ends: a process that took the task over after
  // a lapse waits here, then finds the claim is no longer its own.
  return x_.conn
             .query(
                 "UPDATE background_tasks SET lease_until = $1 WHERE id = $2 AND claim = $3 AND "
                 "status = 0",
                 Params().add(lease_until).add(id).add(claim))
             .affected() == 1;
}

void PgTaskStore::save(const BackgroundTask& t, int64_t claim) {
  x_.conn.query(
      "UPDATE background_tasks SET status = $1::smallint, state = $2, data = $3, updated_at = $4, "
      "lease_until = CASE WHEN $1::smallint = 0 THEN lease_until END WHERE id = $5 AND claim = $6",
      Params()
          .add(static_cast<int>(t.status))
          .add(t.state_json)
          .add(t.data_json)
          .add(t.updated_at)
          .add(t.id)
          .add(claim));
}

int64_t PgTaskStore::purge(TimeMs before, int limit) {
  return x_.conn
      .query(
          "DELETE FROM background_tasks WHERE id IN (SELECT id FROM background_tasks WHERE "
          "status <> 0 AND updated_at < $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)",
          Params().add(before).add(limit))
      .affected();
}

}  // namespace herald::pg
