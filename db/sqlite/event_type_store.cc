#include "db/json_text.h"
#include "db/sqlite/connection.h"
#include "db/sqlite/stores.h"

namespace herald::sqlite {
namespace {

constexpr const char* kColumns =
    "SELECT name, description, archived, deprecated, schemas, group_name, created_at, "
    "updated_at, feature_flags FROM event_types";

EventType read_event_type(const Stmt& st) {
  EventType e;
  e.name = st.get_text(0);
  e.description = st.get_text(1);
  e.archived = st.get_int(2) != 0;
  e.deprecated = st.get_int(3) != 0;
  e.schemas_json = st.get_opt_text(4);
  e.group_name = st.get_opt_text(5);
  e.created_at = st.get_int(6);
  e.updated_at = st.get_int(7);
  e.feature_flags = opt_string_list_from_json(st.get_opt_text(8));
  return e;
}

}  // namespace

void SqliteEventTypeStore::insert(const EventType& et) {
  x_.conn
      .prepare(
          "INSERT INTO event_types (name, description, archived, deprecated, schemas, group_name, "
          "created_at, updated_at, feature_flags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .bind(1, et.name)
      .bind(2, et.description)
      .bind(3, et.archived ? 1 : 0)
      .bind(4, et.deprecated ? 1 : 0)
      .bind(5, et.schemas_json)
      .bind(6, et.group_name)
      .bind(7, et.created_at)
      .bind(8, et.updated_at)
      .bind(9, to_json_text(et.feature_flags))
      .run();
}

std::optional<EventType> SqliteEventTypeStore::get(const std::string& name) {
  auto st = x_.conn.prepare(std::string(kColumns) + " WHERE name = ?");
  st.bind(1, name);
  if (!st.step()) return std::nullopt;
  return read_event_type(st);
}

ListPage<EventType> SqliteEventTypeStore::list(const ListParams& p, bool include_archived) {
  auto k = keyset_sql("name", false, p);
  std::string where = include_archived ? " WHERE 1" : " WHERE archived = 0";
  auto st = x_.conn.prepare(std::string(kColumns) + where + k.where + k.order + " LIMIT ?");
  int i = 1;
  if (p.cursor) st.bind(i++, *p.cursor);
  st.bind(i, p.limit + 1);
  std::vector<EventType> rows;
  while (st.step()) rows.push_back(read_event_type(st));
  return finish_page(std::move(rows), p);
}

bool SqliteEventTypeStore::update(const EventType& et) {
  x_.conn
      .prepare(
          "UPDATE event_types SET description = ?, archived = ?, deprecated = ?, schemas = ?, "
          "group_name = ?, updated_at = ?, feature_flags = ? WHERE name = ?")
      .bind(1, et.description)
      .bind(2, et.archived ? 1 : 0)
      .bind(3, et.deprecated ? 1 : 0)
      .bind(4, et.schemas_json)
      .bind(5, et.group_name)
      .bind(6, et.updated_at)
      .bind(7, to_json_text(et.feature_flags))
      .bind(8, et.name)
      .run();
  return x_.conn.changes() > 0;
}

bool SqliteEventTypeStore::remove(const std::string& name) {
  x_.conn.prepare("DELETE FROM event_types WHERE name = ?").bind(1, name).run();
  return x_.conn.changes() > 0;
}

}  // namespace herald::sqlite
