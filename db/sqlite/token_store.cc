#include "db/json_text.h"
#include "db/sqlite/connection.h"
#include "db/sqlite/stores.h"

namespace herald::sqlite {
namespace {

constexpr const char* kColumns =
    "SELECT id, hash, app_id, name, created_at, expires_at, read_only, session_id, "
    "feature_flags FROM api_tokens";

TokenRecord read_token(const Stmt& st) {
  TokenRecord t;
  t.id = st.get_text(0);
  t.hash = st.get_text(1);
  t.app_id = st.get_opt_text(2);
  t.name = st.get_text(3);
  t.created_at = st.get_int(4);
  t.expires_at = st.get_opt_int(5);
  t.read_only = st.get_int(6) != 0;
  t.session_id = st.get_opt_text(7);
  t.feature_flags = string_list_from_json(st.get_text(8));
  return t;
}

}  // namespace

void SqliteTokenStore::insert(const TokenRecord& t) {
  x_.conn
      .prepare(
          "INSERT INTO api_tokens (id, hash, app_id, name, created_at, expires_at, read_only, "
          "session_id, feature_flags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .bind(1, t.id)
      .bind_blob(2, t.hash)
      .bind(3, t.app_id)
      .bind(4, t.name)
      .bind(5, t.created_at)
      .bind(6, t.expires_at)
      .bind(7, t.read_only ? 1 : 0)
      .bind(8, t.session_id)
      .bind(9, to_json_text(t.feature_flags))
      .run();
}

bool SqliteTokenStore::insert_first_admin(const TokenRecord& t) {
  Transaction tx(x_.conn);  // BEGIN IMMEDIATE: no other writer between the check and the insert
  if (count_admin() > 0) return false;
  insert(t);
  tx.commit();
  return true;
}

std::optional<TokenRecord> SqliteTokenStore::find_by_hash(const std::string& hash) {
  auto st = x_.conn.prepare(std::string(kColumns) + " WHERE hash = ?");
  st.bind_blob(1, hash);
  if (!st.step()) return std::nullopt;
  return read_token(st);
}

int64_t SqliteTokenStore::count_admin() {
  auto st = x_.conn.prepare("SELECT count(*) FROM api_tokens WHERE app_id IS NULL");
  st.step();
  return st.get_int(0);
}

std::vector<TokenRecord> SqliteTokenStore::list() {
  auto st = x_.conn.prepare(std::string(kColumns) + " ORDER BY created_at, id");
  std::vector<TokenRecord> out;
  while (st.step()) out.push_back(read_token(st));
  return out;
}

bool SqliteTokenStore::remove(const std::string& id) {
  x_.conn.prepare("DELETE FROM api_tokens WHERE id = ?").bind(1, id).run();
  return x_.conn.changes() > 0;
}

int64_t SqliteTokenStore::expire_app_tokens(const std::string& app_id, TimeMs at,
                                            const std::vector<std::string>& session_ids) {
  auto st = x_.conn.prepare(
      "UPDATE api_tokens SET expires_at = ? WHERE app_id = ? AND (expires_at IS NULL OR "
      "expires_at > ?) AND (? = 0 OR session_id IN (SELECT value FROM json_each(?)))");
  st.bind(1, at)
      .bind(2, app_id)
      .bind(3, at)
      .bind(4, static_cast<int64_t>(session_ids.size()))
      .bind(5, to_json_text(session_ids))
      .run();
  return x_.conn.changes();
}

void SqliteTokenStore::purge_expired(TimeMs now) {
  x_.conn.prepare("DELETE FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at <= ?")
      .bind(1, now)
      .run();
}

}  // namespace herald::sqlite
