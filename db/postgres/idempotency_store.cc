#include "db/postgres/connection.h"
#include "db/postgres/stores.h"

namespace herald::pg {
namespace {

constexpr int kInProgress = 0;
constexpr int kCompleted = 1;

}  // namespace

IdempotencyClaim PgIdempotencyStore::claim(const std::string& scope, const std::string& key,
                                           const std::string& path, TimeMs now,
                                           TimeMs expired_before) {
  x_.conn.begin();  // the session has none open (REQUIRES)
  try {
    x_.conn.query(
        "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND path = $3 AND "
        "created_at < $4",
        Params().add(scope).add(key).add(path).add(expired_before));
    const int64_t inserted =
        x_.conn
            .query(
                "INSERT INTO idempotency_keys (scope, key, path, state, created_at) VALUES ($1, "
                "$2, $3, $4, $5) ON CONFLICT DO NOTHING",
                Params().add(scope).add(key).add(path).add(kInProgress).add(now))
            .affected();
    IdempotencyClaim claim;
    if (inserted == 0) {
      auto r = x_.conn.query(
          "SELECT state, status_code, body FROM idempotency_keys WHERE scope = $1 AND key = $2 "
          "AND path = $3",
          Params().add(scope).add(key).add(path));
      if (r.rows() > 0) {
        if (r.get_int(0, 0) == kCompleted) {
          claim.state = IdempotencyClaim::State::kCompleted;
          claim.status_code = static_cast<int>(r.get_int(0, 1));
          claim.body = r.get_text(0, 2);
        } else {
          claim.state = IdempotencyClaim::State::kInProgress;
        }
      } else {
        // Another process's in-progress claim was released between our insert and our read.
        claim.state = IdempotencyClaim::State::kInProgress;
      }
    }
    x_.conn.commit();
    return claim;
  } catch (...) {
    x_.conn.rollback();
    throw;
  }
}

void PgIdempotencyStore::complete(const std::string& scope, const std::string& key,
                                  const std::string& path, int status_code,
                                  const std::string& body) {
  x_.conn.query(
      "UPDATE idempotency_keys SET state = $1, status_code = $2, body = $3 WHERE scope = $4 AND "
      "key = $5 AND path = $6",
      Params().add(kCompleted).add(status_code).add(body).add(scope).add(key).add(path));
}

void PgIdempotencyStore::release(const std::string& scope, const std::string& key,
                                 const std::string& path) {
  x_.conn.query(
      "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND path = $3 AND state = $4",
      Params().add(scope).add(key).add(path).add(kInProgress));
}

int64_t PgIdempotencyStore::purge(TimeMs before, int limit) {
  return x_.conn
      .query(
          "DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys WHERE "
          "created_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
          Params().add(before).add(limit))
      .affected();
}

}  // namespace herald::pg
