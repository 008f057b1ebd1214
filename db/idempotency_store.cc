#include "db/idempotency_store.h"

#include "db/sqlite.h"

namespace herald {
namespace {

constexpr int kInProgress = 0;
constexpr int kCompleted = 1;

}  // namespace

IdempotencyClaim IdempotencyStore::claim(const std::string& scope, const std::string& key,
                                         const std::string& path, TimeMs now,
                                         TimeMs expired_before) {
  Transaction tx(c_);
  c_.prepare(
        "DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND path = ? AND created_at < ?")
      .bind(1, scope)
      .bind(2, key)
      .bind(3, path)
      .bind(4, expired_before)
      .run();
  c_.prepare(
        "INSERT INTO idempotency_keys (scope, key, path, state, created_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING")
      .bind(1, scope)
      .bind(2, key)
      .bind(3, path)
      .bind(4, kInProgress)
      .bind(5, now)
      .run();
  IdempotencyClaim claim;
  if (c_.changes() == 0) {
    auto st = c_.prepare(
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

void IdempotencyStore::complete(const std::string& scope, const std::string& key,
                                const std::string& path, int status_code, const std::string& body) {
  c_.prepare(
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

void IdempotencyStore::release(const std::string& scope, const std::string& key,
                               const std::string& path) {
  c_.prepare("DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND path = ? AND state = ?")
      .bind(1, scope)
      .bind(2, key)
      .bind(3, path)
      .bind(4, kInProgress)
      .run();
}

int64_t IdempotencyStore::purge(TimeMs before, int limit) {
  c_.prepare(
        "DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys WHERE "
        "created_at < ? LIMIT ?)")
      .bind(1, before)
      .bind(2, limit)
      .run();
  return c_.changes();
}

}  // namespace herald
