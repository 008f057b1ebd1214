#include "core/ids.h"
#include "db/json_text.h"
#include "db/postgres/connection.h"
#include "db/postgres/stores.h"

namespace herald::pg {
namespace {

constexpr const char* kColumns =
    "SELECT id, uid, name, throttle_rate, metadata, created_at, updated_at, endpoints_version "
    "FROM applications";

Application read_app(const Result& r, int row) {
  Application a;
  a.id = r.get_text(row, 0);
  a.uid = r.get_opt_text(row, 1);
  a.name = r.get_text(row, 2);
  if (auto t = r.get_opt_int(row, 3)) a.throttle_rate = static_cast<int>(*t);
  a.metadata = string_map_from_json(r.get_text(row, 4));
  a.created_at = r.get_int(row, 5);
  a.updated_at = r.get_int(row, 6);
  a.endpoints_version = r.get_int(row, 7);
  return a;
}

std::optional<int64_t> opt_int(const std::optional<int>& v) {
  if (!v) return std::nullopt;
  return *v;
}

}  // namespace

void PgAppStore::insert(const Application& app) {
  x_.conn.query(
      "INSERT INTO applications (id, uid, name, throttle_rate, metadata, created_at, updated_at) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7)",
      Params()
          .add(app.id)
          .add(app.uid)
          .add(app.name)
          .add(opt_int(app.throttle_rate))
          .add(to_json_text(app.metadata))
          .add(app.created_at)
          .add(app.updated_at));
}

std::optional<Application> PgAppStore::get(const std::string& key) {
  if (!is_id_with_prefix(key, kAppPrefix)) return get_by_uid(key);
  auto r = x_.conn.query(std::string(kColumns) + " WHERE id = $1", Params().add(key));
  if (r.rows() == 0) return get_by_uid(key);  // a uid may look like an id
  return read_app(r, 0);
}

std::optional<Application> PgAppStore::get_by_uid(const std::string& uid) {
  auto r = x_.conn.query(std::string(kColumns) + " WHERE uid = $1", Params().add(uid));
  if (r.rows() == 0) return std::nullopt;
  return read_app(r, 0);
}

ListPage<Application> PgAppStore::list(const ListParams& p) {
  auto k = keyset_sql("id", p.descending.value_or(false), p, "$1");
  Params params;
  if (p.cursor) params.add(*p.cursor);
  params.add(p.limit + 1);
  auto r = x_.conn.query(std::string(kColumns) + " WHERE true" + k.where + k.order + " LIMIT $" +
                             std::to_string(params.size()),
                         params);
  std::vector<Application> rows;
  for (int i = 0; i < r.rows(); ++i) rows.push_back(read_app(r, i));
  return finish_page(std::move(rows), p);
}

bool PgAppStore::update(const Application& app) {
  return x_.conn
             .query(
                 "UPDATE applications SET uid = $1, name = $2, throttle_rate = $3, metadata = $4, "
                 "updated_at = $5 WHERE id = $6",
                 Params()
                     .add(app.uid)
                     .add(app.name)
                     .add(opt_int(app.throttle_rate))
                     .add(to_json_text(app.metadata))
                     .add(app.updated_at)
                     .add(app.id))
             .affected() > 0;
}

std::map<std::string, int64_t> PgAppStore::endpoint_versions(
    const std::vector<std::string>& app_ids) {
  std::map<std::string, int64_t> out;
  if (app_ids.empty()) return out;
  auto r =
      x_.conn.query("SELECT id, endpoints_version FROM applications WHERE id = ANY($1::text[])",
                    Params().add_array(app_ids));
  for (int i = 0; i < r.rows(); ++i) out.emplace(r.get_text(i, 0), r.get_int(i, 1));
  return out;
}

bool PgAppStore::remove(const std::string& id) {
  // Endpoints, their secrets and tokens go by their foreign keys; messages and the queue's
  // tables hold none (migrations 2 and 3): they go here, deliveries and attempts by message,
  // which also finds one whose endpoint was deleted while it was being written.
  return x_.conn
             .query(
                 "WITH a AS (DELETE FROM applications WHERE id = $1 RETURNING id), "
                 "m AS (DELETE FROM messages WHERE app_id IN (SELECT id FROM a) RETURNING id), "
                 "d AS (DELETE FROM deliveries WHERE msg_id IN (SELECT id FROM m)), "
                 "t AS (DELETE FROM attempts WHERE msg_id IN (SELECT id FROM m)), "
                 "b AS (DELETE FROM endpoint_buckets WHERE endpoint_id IN (SELECT id FROM "
                 "endpoints WHERE app_id IN (SELECT id FROM a))) "
                 "SELECT count(*) FROM a",
                 Params().add(id))
             .get_int(0, 0) > 0;
}

}  // namespace herald::pg
