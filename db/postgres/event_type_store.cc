#include "db/json_text.h"
#include "db/postgres/connection.h"
#include "db/postgres/stores.h"

namespace herald::pg {
namespace {

constexpr const char* kColumns =
    "SELECT name, description, archived, deprecated, schemas, group_name, created_at, "
    "updated_at, feature_flags FROM event_types";

EventType read_event_type(const Result& r, int row) {
  EventType e;
  e.name = r.get_text(row, 0);
  e.description = r.get_text(row, 1);
  e.archived = r.get_bool(row, 2);
  e.deprecated = r.get_bool(row, 3);
  e.schemas_json = r.get_opt_text(row, 4);
  e.group_name = r.get_opt_text(row, 5);
  e.created_at = r.get_int(row, 6);
  e.updated_at = r.get_int(row, 7);
  e.feature_flags = opt_string_list_from_json(r.get_opt_text(row, 8));
  return e;
}

}  // namespace

void PgEventTypeStore::insert(const EventType& et) {
  x_.conn.query(
      "INSERT INTO event_types (name, description, archived, deprecated, schemas, group_name, "
      "created_at, updated_at, feature_flags) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
      Params()
          .add(et.name)
          .add(et.description)
          .add(et.archived)
          .add(et.deprecated)
          .add(et.schemas_json)
          .add(et.group_name)
          .add(et.created_at)
          .add(et.updated_at)
          .add(to_json_text(et.feature_flags)));
}

std::optional<EventType> PgEventTypeStore::get(const std::string& name) {
  auto r = x_.conn.query(std::string(kColumns) + " WHERE name = $1", Params().add(name));
  if (r.rows() == 0) return std::nullopt;
  return read_event_type(r, 0);
}

ListPage<EventType> PgEventTypeStore::list(const ListParams& p, bool include_archived) {
  auto k = keyset_sql("name", false, p, "$1");
  Params params;
  if (p.cursor) params.add(*p.cursor);
  params.add(p.limit + 1);
  const std::string where = include_archived ? " WHERE true" : " WHERE NOT archived";
  auto r = x_.conn.query(std::string(kColumns) + where + k.where + k.order + " LIMIT $" +
                             std::to_string(params.size()),
                         params);
  std::vector<EventType> rows;
  for (int i = 0; i < r.rows(); ++i) rows.push_back(read_event_type(r, i));
  return finish_page(std::move(rows), p);
}

bool PgEventTypeStore::update(const EventType& et) {
  return x_.conn
             .query(
                 "UPDATE event_types SET description = $1, archived = $2, deprecated = $3, "
                 "schemas = $4, group_name = $5, updated_at = $6, feature_flags = $7 WHERE name = "
                 "$8",
                 Params()
                     .add(et.description)
                     .add(et.archived)
                     .add(et.deprecated)
                     .add(et.schemas_json)
                     .add(et.group_name)
                     .add(et.updated_at)
                     .add(to_json_text(et.feature_flags))
                     .add(et.name))
             .affected() > 0;
}

bool PgEventTypeStore::remove(const std::string& name) {
  return x_.conn.query("DELETE FROM event_types WHERE name = $1", Params().add(name)).affected() >
         0;
}

}  // namespace herald::pg
