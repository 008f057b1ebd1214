#include "db/sqlite/connection.h"
#include "db/sqlite/stores.h"

namespace herald::sqlite {
namespace {

constexpr int kInProgress = 0;
constexpr int kCompleted = 1;

}  // namespace

IdempotencyClaim SqliteIdempotencyStore::claim(const std::string& scope, const std::string& key,
                                               const std::string& path, TimeMs now,
                                               TimeMs expired_before) {
  Transaction tx(x_.conn);  // the session has none open (REQUIRES)
  x_.conn
      .prepare(
          "DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND path = ? AND created_at < "
          "?")
      .bind(1, scope)
      .bind(2, key)
      .bind(3, path)
      .bind(4, expired_before)
      .run();
  x_.conn
      .prepare(
          "INSERT INTO idempotency_keys (scope, key, path, state, created_at) VALUES (?, ?, ?, ?, "
          "?) "
          "ON CONFLICT DO NOTHING")
      .bind(1, scope)
      .bind(2, key)
      .bind(3, path)
      .bind(4, kInProgress)
      .bind(5, now)
      .run();
  IdempotencyClaim claim;
  if (x_.conn.changes() == 0) {
    auto st = x_.conn.prepare(
        "SELECT state, status_code, body FROM idempotency_keys WHERE scope = ? AND key = ? AND "
        "path = ?");
    st.bind(1, scope).bind(2, key).bind(3, path);
    if (st.step()) {
      if (st.get_int(0) == kCompleted) {
        claim.state = IdempotencyClaim::State::kCompleted;
        claim.status_code = static_cast<int>(st.get_int(1));
        claim.body = st.get_text(2);
      } else {
        claim.state = IdempotencyClaim::State::kInProgress;
      }
    }
  }
  tx.commit();
  return claim;
}

void SqliteIdempotencyStore::complete(const std::string& scope, const std::string& key,
                                      const std::string& path, int status_code,
                                      const std::string& body) {
  x_.conn
      .prepare(
          "UPDATE idempotency_keys SET state = ?, status_code = ?, body = ? WHERE scope = ? AND "
          "key = ? AND path = ?")
      .bind(1, kCompleted)
      .bind(2, status_code)
      .bind(3, body)
      .bind(4, scope)
      .bind(5, key)
      .bind(6, path)
      .run();
}

void SqliteIdempotencyStore::release(const std::string& scope, const std::string& key,
                                     const std::string& path) {
  x_.conn
      .prepare(
          "DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND path = ? AND state = ?")
      .bind(1, scope)
      .bind(2, key)
      .bind(3, path)
      .bind(4, kInProgress)
      .run();
}

int64_t SqliteIdempotencyStore::purge(TimeMs before, int limit) {
  x_.conn
      .prepare(
          "DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys WHERE "
          "created_at < ? LIMIT ?)")
      .bind(1, before)
      .bind(2, limit)
      .run();
  return x_.conn.changes();
}

}  // namespace herald::sqlite
