#include "db/app_store.h"

#include "core/ids.h"
#include "db/endpoint_store.h"
#include "db/json_text.h"
#include "db/sqlite.h"

namespace herald {
namespace {

constexpr const char* kColumns =
    "SELECT id, uid, name, throttle_rate, metadata, created_at, updated_at FROM applications";

Application read_app(const Stmt& st) {
  Application a;
  a.id = st.get_text(0);
  a.uid = st.get_opt_text(1);
  a.name = st.get_text(2);
  if (auto t = st.get_opt_int(3)) a.throttle_rate = static_cast<int>(*t);
  a.metadata = string_map_from_json(st.get_text(4));
  a.created_at = st.get_int(5);
  a.updated_at = st.get_int(6);
  return a;
}

std::optional<int64_t> opt_int(const std::optional<int>& v) {
  if (!v) return std::nullopt;
  return *v;
}

}  // namespace

void AppStore::insert(const Application& app) {
  c_.prepare(
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

std::optional<Application> AppStore::get(const std::string& key) {
  if (!is_id_with_prefix(key, kAppPrefix)) return get_by_uid(key);
  auto st = c_.prepare(std::string(kColumns) + " WHERE id = ?");
  st.bind(1, key);
  if (!st.step()) return get_by_uid(key);  // a uid may look like an id
  return read_app(st);
}

std::optional<Application> AppStore::get_by_uid(const std::string& uid) {
  auto st = c_.prepare(std::string(kColumns) + " WHERE uid = ?");
  st.bind(1, uid);
  if (!st.step()) return std::nullopt;
  return read_app(st);
}

ListPage<Application> AppStore::list(const ListParams& p) {
  auto k = keyset_sql("id", false, p);
  auto st = c_.prepare(std::string(kColumns) + " WHERE 1" + k.where + k.order + " LIMIT ?");
  int i = 1;
  if (p.cursor) st.bind(i++, *p.cursor);
  st.bind(i, p.limit + 1);
  std::vector<Application> rows;
  while (st.step()) rows.push_back(read_app(st));
  return finish_page(std::move(rows), p);
}

bool AppStore::update(const Application& app) {
  c_.prepare(
        "UPDATE applications SET uid = ?, name = ?, throttle_rate = ?, metadata = ?, "
        "updated_at = ? WHERE id = ?")
      .bind(1, app.uid)
      .bind(2, app.name)
      .bind(3, opt_int(app.throttle_rate))
      .bind(4, to_json_text(app.metadata))
      .bind(5, app.updated_at)
      .bind(6, app.id)
      .run();
  return c_.changes() > 0;
}

bool AppStore::remove(const std::string& id) {
  EndpointStore::note_changed();  // its endpoints go with it
  c_.prepare("DELETE FROM applications WHERE id = ?").bind(1, id).run();
  return c_.changes() > 0;
}

}  // namespace herald
