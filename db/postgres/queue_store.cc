#include <stdexcept>

#include "core/ids.h"
#include "db/postgres/connection.h"
#include "db/postgres/delivery_rows.h"
#include "db/postgres/stores.h"
#include "db/session.h"

namespace herald::pg {
namespace {

// What a claim returns: the rows it leased (the CTE's own column is id, hence the prefix).
constexpr const char* kReturning =
    " RETURNING d.id, d.app_id, d.msg_id, d.endpoint_id, d.status, d.attempts, d.due_at, "
    "d.trigger, d.created_at, d.updated_at, d.claim";

// Claims are one short statement each: lock the candidates, skipping rows another process is
// claiming, then lease them. MATERIALIZED keeps the LIMIT where it is (the planner may not
// push the outer update into it and lock more rows than asked for).
constexpr const char* kClaimDue =
    "WITH c AS MATERIALIZED (SELECT id FROM deliveries WHERE status IN (1, 3) AND due_at <= $1 "
    "ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED) UPDATE deliveries d SET status = 3, "
    "due_at = $3, claim = $4, updated_at = $1 FROM c WHERE d.id = c.id";

constexpr const char* kClaimParked =
    "WITH c AS MATERIALIZED (SELECT id FROM deliveries WHERE endpoint_id = $5 AND status = 1 AND "
    "due_at IS NULL ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED) UPDATE deliveries d SET "
    "status = 3, due_at = $3, claim = $4, updated_at = $1 FROM c WHERE d.id = c.id";

}  // namespace

void PgQueueStore::enqueue(std::vector<Delivery> deliveries,
                           std::shared_ptr<const std::string> /*payload*/) {
  if (deliveries.empty()) return;
  if (!x_.session.in_transaction()) throw std::logic_error("QueueStore::enqueue: no transaction");
  // One statement for all of a message's deliveries; they share everything but id and
  // endpoint.
  std::vector<std::string> ids;
  std::vector<std::string> endpoints;
  ids.reserve(deliveries.size());
  endpoints.reserve(deliveries.size());
  for (const auto& d : deliveries) {
    ids.push_back(d.id);
    endpoints.push_back(d.endpoint_id);
  }
  const Delivery& first = deliveries.front();
  x_.conn.query(
      "INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempts, due_at, "
      "trigger, created_at, updated_at) SELECT u.id, $3, $4, u.endpoint_id, 1, 0, $5, $6, $7, $7 "
      "FROM unnest($1::text[], $2::text[]) AS u(id, endpoint_id)",
      Params()
          .add_array(ids)
          .add_array(endpoints)
          .add(first.app_id)
          .add(first.msg_id)
          .add(first.next_attempt_at)
          .add(static_cast<int>(first.trigger))
          .add(first.created_at));
  x_.queue_changed();
}

std::vector<Delivery> PgQueueStore::claim(TimeMs now, int64_t lease_ms, int limit) {
  return read_deliveries(
      x_.conn.query(std::string(kClaimDue) + kReturning,
                    Params().add(now).add(limit).add(now + lease_ms).add(x_.claim)));
}

std::vector<Delivery> PgQueueStore::claim_parked(const std::string& endpoint_id, TimeMs now,
                                                 int64_t lease_ms, int limit) {
  return read_deliveries(x_.conn.query(
      std::string(kClaimParked) + kReturning,
      Params().add(now).add(limit).add(now + lease_ms).add(x_.claim).add(endpoint_id)));
}

void PgQueueStore::complete(const std::vector<DeliveryUpdate>& updates, TimeMs now) {
  if (updates.empty()) return;
  std::vector<std::string> ids;
  std::vector<int64_t> statuses;
  std::vector<int64_t> attempts;
  std::vector<std::optional<int64_t>> dues;
  std::vector<std::optional<int64_t>> claims;
  for (const auto& u : updates) {
    ids.push_back(u.id);
    statuses.push_back(static_cast<int64_t>(u.status));
    attempts.push_back(u.attempts);
    dues.push_back(u.due_at);
    claims.push_back(u.claim != 0 ? std::optional<int64_t>(u.claim) : std::nullopt);
  }
  // A claim that no longer holds (it lapsed and another process took the row) changes nothing.
  x_.conn.query(
      "UPDATE deliveries d SET status = u.status, attempts = u.attempts, due_at = u.due_at, "
      "claim = NULL, updated_at = $6 FROM unnest($1::text[], $2::smallint[], $3::int[], "
      "$4::bigint[], $5::bigint[]) AS u(id, status, attempts, due_at, claim) WHERE d.id = u.id "
      "AND (u.claim IS NULL OR d.claim = u.claim)",
      Params()
          .add_array(ids)
          .add_array(statuses)
          .add_array(attempts)
          .add_array(dues)
          .add_array(claims)
          .add(now));
  // Retries due now (an aborted attempt) are news for the other processes too.
  for (const auto& u : updates) {
    if (u.status == DeliveryStatus::kPending && u.due_at && *u.due_at <= now) {
      x_.queue_changed();
      break;
    }
  }
}

std::vector<std::string> PgQueueStore::parked_endpoints() {
  // One index probe per endpoint (deliveries_parked), not a scan of every parked row.
  auto r = x_.conn.query(
      "WITH RECURSIVE e(id) AS ((SELECT endpoint_id FROM deliveries WHERE status = 1 AND due_at "
      "IS NULL ORDER BY endpoint_id LIMIT 1) UNION ALL SELECT (SELECT endpoint_id FROM "
      "deliveries WHERE status = 1 AND due_at IS NULL AND endpoint_id > e.id ORDER BY "
      "endpoint_id LIMIT 1) FROM e WHERE e.id IS NOT NULL) SELECT id FROM e WHERE id IS NOT "
      "NULL");
  std::vector<std::string> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(r.get_text(i, 0));
  return out;
}

std::optional<TimeMs> PgQueueStore::next_due() {
  return x_.conn.query("SELECT min(due_at) FROM deliveries WHERE status IN (1, 3)")
      .get_opt_int(0, 0);
}

int64_t PgQueueStore::recover(const std::string& endpoint_id, TimeMs since, TimeMs until,
                              TimeMs now, const std::string& after_id, int limit,
                              std::string* last_id) {
  auto r = x_.conn.query(
      "UPDATE deliveries SET status = 1, due_at = $1, trigger = 1, updated_at = $1 WHERE id IN "
      "(SELECT d.id FROM deliveries d JOIN messages m ON m.id = d.msg_id WHERE d.endpoint_id = $2 "
      "AND d.status = 2 AND d.created_at >= $3 AND d.created_at < $4 AND d.id > $5 AND m.payload "
      "IS NOT NULL ORDER BY d.id LIMIT $6) RETURNING id",
      Params().add(now).add(endpoint_id).add(since).add(until).add(after_id).add(limit));
  const int64_t n = r.rows();
  for (int i = 0; i < r.rows(); ++i) {
    std::string id = r.get_text(i, 0);
    if (id > *last_id) *last_id = std::move(id);
  }
  if (n > 0) x_.queue_changed();
  return n;
}

QueueState PgQueueStore::state(TimeMs now) {
  QueueState q;
  auto r = x_.conn.query(
      "SELECT (SELECT count(*) FROM deliveries WHERE status IN (1, 3) AND due_at IS NOT NULL), "
      "(SELECT min(due_at) FROM deliveries WHERE status IN (1, 3) AND due_at IS NOT NULL), "
      "(SELECT count(*) FROM deliveries WHERE status = 1 AND due_at IS NULL), "
      "(SELECT min(id) FROM deliveries WHERE status = 1 AND due_at IS NULL), "
      "(SELECT count(*) FROM deliveries WHERE status = 3 AND due_at > $1)",
      Params().add(now));
  q.queued = r.get_int(0, 0);
  if (auto due = r.get_opt_int(0, 1); due && *due <= now) q.oldest_due = *due;
  q.parked = r.get_int(0, 2);
  q.sending = r.get_int(0, 4);
  // A parked delivery fell due no later than it was made (its id's time).
  if (auto t = id_time(r.get_text(0, 3))) {
    q.oldest_due = q.oldest_due ? std::min(*q.oldest_due, *t) : *t;
  }
  return q;
}

std::vector<EndpointLoad> PgSharedLimitStore::lock(const std::vector<std::string>& endpoint_ids,
                                                   TimeMs now) {
  std::vector<EndpointLoad> out;
  if (endpoint_ids.empty()) return out;
  // In a fixed order, so two processes locking overlapping sets cannot deadlock; held to the
  // end of the transaction. The read is a statement of its own, so its snapshot is taken
  // after the locks are held and sees what the previous holder committed.
  x_.conn.query(
      "SELECT count(pg_advisory_xact_lock(7252316, hashtext(e))) FROM (SELECT DISTINCT e FROM "
      "unnest($1::text[]) AS t(e) ORDER BY e) s",
      Params().add_array(endpoint_ids));
  auto r = x_.conn.query(
      "SELECT e.id, (SELECT count(*) FROM deliveries d WHERE d.endpoint_id = e.id AND d.status = "
      "3 AND d.due_at > $2 AND d.claim IS DISTINCT FROM $3), b.tokens, b.refilled_at FROM "
      "unnest($1::text[]) AS e(id) LEFT JOIN endpoint_buckets b ON b.endpoint_id = e.id",
      Params().add_array(endpoint_ids).add(now).add(x_.claim));
  out.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    EndpointLoad load;
    load.endpoint_id = r.get_text(i, 0);
    load.in_flight = static_cast<int>(r.get_int(i, 1));
    if (!r.is_null(i, 2)) load.bucket = TokenBucket{r.get_double(i, 2), r.get_int(i, 3)};
    out.push_back(std::move(load));
  }
  return out;
}

void PgSharedLimitStore::save_buckets(
    const std::vector<std::pair<std::string, TokenBucket>>& buckets) {
  if (buckets.empty()) return;
  std::vector<std::string> ids;
  std::vector<double> tokens;
  std::vector<int64_t> refilled;
  for (const auto& [id, b] : buckets) {
    ids.push_back(id);
    tokens.push_back(b.tokens);
    refilled.push_back(b.refilled_at);
  }
  x_.conn.query(
      "INSERT INTO endpoint_buckets (endpoint_id, tokens, refilled_at) SELECT * FROM "
      "unnest($1::text[], $2::float8[], $3::bigint[]) ON CONFLICT (endpoint_id) DO UPDATE SET "
      "tokens = excluded.tokens, refilled_at = excluded.refilled_at",
      Params().add_array(ids).add_array(tokens).add_array(refilled));
}

}  // namespace herald::pg
