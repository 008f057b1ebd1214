#include "db/json_text.h"
#include "db/postgres/connection.h"
#include "db/postgres/stores.h"

namespace herald::pg {
namespace {

constexpr const char* kColumns =
    "SELECT id, hash, app_id, name, created_at, expires_at, read_only, session_id, "
    "feature_flags FROM api_tokens";

// Serializes the check-then-insert of the first admin token across processes.
constexpr const char* kFirstAdminLock = "SELECT pg_advisory_xact_lock(7252315, 2)";

std::vector<TokenRecord> read_tokens(const Result& r) {
  std::vector<TokenRecord> out;
  for (int i = 0; i < r.rows(); ++i) {
    TokenRecord t;
    t.id = r.get_text(i, 0);
    t.hash = r.get_bytea(i, 1);
    t.app_id = r.get_opt_text(i, 2);
    t.name = r.get_text(i, 3);
    t.created_at = r.get_int(i, 4);
    t.expires_at = r.get_opt_int(i, 5);
    t.read_only = r.get_bool(i, 6);
    t.session_id = r.get_opt_text(i, 7);
    t.feature_flags = string_list_from_json(r.get_text(i, 8));
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

void PgTokenStore::insert(const TokenRecord& t) {
  x_.conn.query(
      "INSERT INTO api_tokens (id, hash, app_id, name, created_at, expires_at, read_only, "
      "session_id, feature_flags) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
      Params()
          .add(t.id)
          .add_bytea(t.hash)
          .add(t.app_id)
          .add(t.name)
          .add(t.created_at)
          .add(t.expires_at)
          .add(t.read_only)
          .add(t.session_id)
          .add(to_json_text(t.feature_flags)));
}

bool PgTokenStore::insert_first_admin(const TokenRecord& t) {
  x_.conn.begin();
  try {
    x_.conn.exec(kFirstAdminLock);
    if (count_admin() > 0) {
      x_.conn.rollback();
      return false;
    }
    insert(t);
    x_.conn.commit();
    return true;
  } catch (...) {
    x_.conn.rollback();
    throw;
  }
}

std::optional<TokenRecord> PgTokenStore::find_by_hash(const std::string& hash) {
  auto ts = read_tokens(
      x_.conn.query(std::string(kColumns) + " WHERE hash = $1", Params().add_bytea(hash)));
  if (ts.empty()) return std::nullopt;
  return std::move(ts.front());
}

int64_t PgTokenStore::count_admin() {
  return x_.conn.query("SELECT count(*) FROM api_tokens WHERE app_id IS NULL").get_int(0, 0);
}

std::vector<TokenRecord> PgTokenStore::list() {
  return read_tokens(x_.conn.query(std::string(kColumns) + " ORDER BY created_at, id"));
}

bool PgTokenStore::remove(const std::string& id) {
  return x_.conn.query("DELETE FROM api_tokens WHERE id = $1", Params().add(id)).affected() > 0;
}

int64_t PgTokenStore::expire_app_tokens(const std::string& app_id, TimeMs at,
                                        const std::vector<std::string>& session_ids) {
  return x_.conn
      .query(
          "UPDATE api_tokens SET expires_at = $1 WHERE app_id = $2 AND (expires_at IS NULL OR "
          "expires_at > $1) AND (cardinality($3::text[]) = 0 OR session_id = ANY($3::text[]))",
          Params().add(at).add(app_id).add_array(session_ids))
      .affected();
}

void PgTokenStore::purge_expired(TimeMs now) {
  x_.conn.query("DELETE FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at <= $1",
                Params().add(now));
}

}  // namespace herald::pg
