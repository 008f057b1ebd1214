#include "core/ids.h"
#include "db/json_text.h"
#include "db/sqlite/connection.h"
#include "db/sqlite/stores.h"

namespace herald::sqlite {
namespace {

constexpr const char* kColumns =
    "SELECT id, uid, name, throttle_rate, metadata, created_at, updated_at, endpoints_version "
    "FROM applications";

Application read_app(const Stmt& st) {
  Application a;
  a.id = st.get_text(0);
  a.uid = st.get_opt_text(1);
  a.name = st.get_text(2);
  if (auto t = st.get_opt_int(3)) a.throttle_rate = static_cast<int>(*t);
  a.metadata = string_map_from_json(st.get_text(4));
  a.created_at = st.get_int(5);
  a.updated_at = st.get_int(6);
  a.endpoints_version = st.get_int(7);
  return a;
}

std::optional<int64_t> opt_int(const std::optional<int>& v) {
  if (!v) return std::nullopt;
  return *v;
}

}  // namespace

void SqliteAppStore::insert(const Application& app) {
  x_.conn
      .prepare(
          "INSERT INTO applications (id, uid, name, throttle_rate, metadata, created_at, "
          "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .bind(1, app.id)
      .bind(2, app.uid)
      .bind(3, app.name)
      .bind(4, opt_int(app.throttle_rate))
      .bind(5, to_json_text(app.metadata))
      .bind(6, app.created_at)
      .bind(7, app.updated_at)
      .run();
}

std::optional<Application> SqliteAppStore::get(const std::string& key) {
  if (!is_id_with_prefix(key, kAppPrefix)) return get_by_uid(key);
  auto st = x_.conn.prepare(std::string(kColumns) + " WHERE id = ?");
  st.bind(1, key);
  if (!st.step()) return get_by_uid(key);  // a uid may look like an id
  return read_app(st);
}

std::optional<Application> SqliteAppStore::get_by_uid(const std::string& uid) {
  auto st = x_.conn.prepare(std::string(kColumns) + " WHERE uid = ?");
  st.bind(1, uid);
  if (!st.step()) return std::nullopt;
  return read_app(st);
}

ListPage<Application> SqliteAppStore::list(const ListParams& p) {
  auto k = keyset_sql("id", p.descending.value_or(false), p);
  auto st = x_.conn.prepare(std::string(kColumns) + " WHERE 1" + k.where + k.order + " LIMIT ?");
  int i = 1;
  if (p.cursor) st.bind(i++, *p.cursor);
  st.bind(i, p.limit + 1);
  std::vector<Application> rows;
  while (st.step()) rows.push_back(read_app(st));
  return finish_page(std::move(rows), p);
}

bool SqliteAppStore::update(const Application& app) {
  x_.conn
      .prepare(
          "UPDATE applications SET uid = ?, name = ?, throttle_rate = ?, metadata = ?, "
          "updated_at = ? WHERE id = ?")
      .bind(1, app.uid)
      .bind(2, app.name)
      .bind(3, opt_int(app.throttle_rate))
      .bind(4, to_json_text(app.metadata))
      .bind(5, app.updated_at)
      .bind(6, app.id)
      .run();
  return x_.conn.changes() > 0;
}

std::map<std::string, int64_t> SqliteAppStore::endpoint_versions(
    const std::vector<std::string>& app_ids) {
  std::map<std::string, int64_t> out;
  if (app_ids.empty()) return out;
  auto st = x_.conn.prepare(
      "SELECT id, endpoints_version FROM applications WHERE id IN (SELECT value FROM "
      "json_each(?))");
  st.bind(1, to_json_text(app_ids));
  while (st.step()) out.emplace(st.get_text(0), st.get_int(1));
  return out;
}

bool SqliteAppStore::remove(const std::string& id) {
  x_.conn.prepare("DELETE FROM applications WHERE id = ?").bind(1, id).run();
  return x_.conn.changes() > 0;
}

}  // namespace herald::sqlite
