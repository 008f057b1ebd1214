#pragma once

// The PostgreSQL implementations of the storage interfaces, one .cc each. They live only inside a
// PgSession and work on its connection.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "db/app_store.h"
#include "db/attempt_store.h"
#include "db/delivery_store.h"
#include "db/endpoint_store.h"
#include "db/event_type_store.h"
#include "db/idempotency_store.h"
#include "db/message_store.h"
#include "db/queue_store.h"
#include "db/task_store.h"
#include "db/token_store.h"

namespace herald {
class Session;
}  // namespace herald

namespace herald::pg {

class Connection;
class Result;
class PgDatabase;

// What every store of a session works with.
struct Context {
  Connection& conn;
  PgDatabase& db;
  Session& session;
  // The claim that claims made in the current transaction lease their rows with (fresh for
  // each transaction), so this transaction's own claims can be told from everyone else's.
  int64_t claim = 0;
  // Tells this process's QueueListener, and other processes, of new due deliveries once the
  // transaction commits (at once without one).
  void queue_changed();
};

class PgAppStore final : public AppStore {
 public:
  explicit PgAppStore(Context& x) : x_(x) {}
  void insert(const Application& app) override;
  std::optional<Application> get(const std::string& key) override;
  std::optional<Application> get_by_uid(const std::string& uid) override;
  ListPage<Application> list(const ListParams& p) override;
  bool update(const Application& app) override;
  std::map<std::string, int64_t> endpoint_versions(
      const std::vector<std::string>& app_ids) override;
  bool remove(const std::string& id) override;

 private:
  Context& x_;
};

class PgEndpointStore final : public EndpointStore {
 public:
  explicit PgEndpointStore(Context& x) : x_(x) {}
  void insert(const Endpoint& ep, const SigningKey& key) override;
  std::optional<Endpoint> get(const std::string& app_id, const std::string& key) override;
  ListPage<Endpoint> list(const std::string& app_id, const ListParams& p) override;
  std::vector<Endpoint> enabled_for_app(const std::string& app_id) override;
  bool update(const Endpoint& ep) override;
  bool remove(const std::string& app_id, const std::string& id) override;
  std::optional<TimeMs> note_failure(const std::string& endpoint_id, TimeMs at) override;
  void note_successes(const std::vector<std::string>& endpoint_ids) override;
  bool disable(const std::string& endpoint_id, const std::string& reason, TimeMs now) override;
  std::vector<SigningKey> signing_keys(const std::string& endpoint_id, TimeMs now) override;
  std::optional<SigningKey> current_key(const std::string& endpoint_id) override;
  std::optional<std::string> client_key(const std::string& endpoint_id) override;
  void set_client_key(const std::string& endpoint_id, const std::optional<std::string>& pem,
                      TimeMs now) override;
  void rotate_key(const std::string& endpoint_id, const SigningKey& key, int64_t grace_ms,
                  TimeMs now) override;
  int seal_plaintext_keys() override;
  int reseal_keys(const SecretBox& to) override;
  bool sealed_keys_open() override;
  bool has_sealed_keys() override;
  std::optional<std::string> key_check() override;
  void set_key_check(const std::string& sealed) override;
  std::vector<StoredKey> stored_keys(const std::string& endpoint_id) override;
  void insert_stored_key(const std::string& endpoint_id, const StoredKey& key) override;
  void import_endpoint(const Endpoint& ep, const std::vector<StoredKey>& keys) override;

 private:
  // A write to the endpoints of `app_id` / of the endpoint's app: bumps its endpoints_version.
  void changed_app(const std::string& app_id);
  void changed_endpoint(const std::string& endpoint_id);
  void insert_key_row(const std::string& endpoint_id, const StoredKey& key);
  // A signing key from row `row` of (key, sealed, kind).
  SigningKey read_key(const Result& r, int row, const std::string& endpoint_id);
  Context& x_;
};

class PgEventTypeStore final : public EventTypeStore {
 public:
  explicit PgEventTypeStore(Context& x) : x_(x) {}
  void insert(const EventType& et) override;
  std::optional<EventType> get(const std::string& name) override;
  ListPage<EventType> list(const ListParams& p, bool include_archived) override;
  bool update(const EventType& et) override;
  bool remove(const std::string& name) override;

 private:
  Context& x_;
};

class PgMessageStore final : public MessageStore {
 public:
  explicit PgMessageStore(Context& x) : x_(x) {}
  void insert(const Message& m) override;
  std::optional<Message> get(const std::string& app_id, const std::string& key) override;
  std::map<std::string, std::string> payloads(const std::vector<std::string>& ids) override;
  int64_t expire_payloads(TimeMs before, const std::string& after_id, int limit,
                          std::string* last_id) override;
  std::map<std::string, std::string> expunge(const std::string& app_id,
                                             const std::vector<std::string>& keys,
                                             TimeMs now) override;
  int64_t expunge_app(const std::string& app_id, TimeMs before, const std::string& after_id,
                      int limit, std::string* last_id, TimeMs now) override;
  MessageUsage usage(const std::string& app_id, TimeMs since, TimeMs until,
                     const std::string& after_id, int limit) override;
  int64_t purge(TimeMs before, int limit) override;
  ListPage<Message> list(const std::string& app_id, const ListParams& p,
                         const MessageFilter& f) override;

 private:
  Context& x_;
};

class PgDeliveryStore final : public DeliveryStore {
 public:
  explicit PgDeliveryStore(Context& x) : x_(x) {}
  void insert(const Delivery& d) override;
  std::optional<Delivery> get(const std::string& id) override;
  std::vector<Delivery> for_message(const std::string& msg_id) override;
  DeliveryStats stats_between(const std::string& endpoint_id, std::optional<TimeMs> since,
                              std::optional<TimeMs> until) override;
  std::map<std::string, DeliveryStats> summaries(const std::vector<std::string>& msg_ids) override;

 private:
  Context& x_;
};

// The queue every process sharing the database claims from: rows are leased by claims
// (FOR UPDATE SKIP LOCKED, the lease in the row), never held locked across a request.
class PgQueueStore final : public QueueStore {
 public:
  explicit PgQueueStore(Context& x) : x_(x) {}
  void enqueue(std::vector<Delivery> deliveries,
               std::shared_ptr<const std::string> payload) override;
  std::vector<Delivery> claim(TimeMs now, int64_t lease_ms, int limit) override;
  std::vector<Delivery> claim_parked(const std::string& endpoint_id, TimeMs now, int64_t lease_ms,
                                     int limit) override;
  void complete(const std::vector<DeliveryUpdate>& updates, TimeMs now) override;
  std::vector<std::string> parked_endpoints() override;
  std::optional<TimeMs> next_due() override;
  int64_t recover(const std::string& endpoint_id, TimeMs since, TimeMs until, TimeMs now,
                  const std::string& after_id, int limit, std::string* last_id) override;
  QueueState state(TimeMs now) override;

 private:
  Context& x_;
};

class PgSharedLimitStore final : public SharedLimitStore {
 public:
  explicit PgSharedLimitStore(Context& x) : x_(x) {}
  std::vector<EndpointLoad> lock(const std::vector<std::string>& endpoint_ids, TimeMs now) override;
  void save_buckets(const std::vector<std::pair<std::string, TokenBucket>>& buckets) override;

 private:
  Context& x_;
};

class PgAttemptStore final : public AttemptStore {
 public:
  explicit PgAttemptStore(Context& x) : x_(x) {}
  void insert(const std::vector<Attempt>& attempts) override;
  int64_t purge(TimeMs before, int limit) override;
  std::optional<Attempt> get(const std::string& app_id, const std::string& id) override;
  bool expunge_response(const std::string& app_id, const std::string& id) override;
  ListPage<Attempt> list_by_message(const std::string& app_id, const std::string& msg_id,
                                    const ListParams& p, const AttemptFilter& f) override;
  ListPage<Attempt> list_by_endpoint(const std::string& app_id, const std::string& endpoint_id,
                                     const ListParams& p, const AttemptFilter& f) override;
  std::vector<AttemptBucket> timeline(const std::string& endpoint_id, TimeMs start, TimeMs until,
                                      int64_t bucket_ms) override;
  std::optional<Attempt> latest(const std::string& endpoint_id) override;

 private:
  ListPage<Attempt> list(const std::string& app_id, const char* key_col, const std::string& key,
                         const ListParams& p, const AttemptFilter& f);
  Context& x_;
};

class PgTokenStore final : public TokenStore {
 public:
  explicit PgTokenStore(Context& x) : x_(x) {}
  void insert(const TokenRecord& t) override;
  bool insert_first_admin(const TokenRecord& t) override;
  std::optional<TokenRecord> find_by_hash(const std::string& hash) override;
  int64_t count_admin() override;
  std::vector<TokenRecord> list() override;
  bool remove(const std::string& id) override;
  int64_t expire_app_tokens(const std::string& app_id, TimeMs at,
                            const std::vector<std::string>& session_ids) override;
  void purge_expired(TimeMs now) override;

 private:
  Context& x_;
};

class PgIdempotencyStore final : public IdempotencyStore {
 public:
  explicit PgIdempotencyStore(Context& x) : x_(x) {}
  IdempotencyClaim claim(const std::string& scope, const std::string& key, const std::string& path,
                         TimeMs now, TimeMs expired_before) override;
  void complete(const std::string& scope, const std::string& key, const std::string& path,
                int status_code, const std::string& body) override;
  void release(const std::string& scope, const std::string& key, const std::string& path) override;
  int64_t purge(TimeMs before, int limit) override;

 private:
  Context& x_;
};

class PgTaskStore final : public TaskStore {
 public:
  explicit PgTaskStore(Context& x) : x_(x) {}
  void insert(const BackgroundTask& t) override;
  std::optional<BackgroundTask> get(const std::string& id) override;
  ListPage<BackgroundTask> list(const ListParams& p, const TaskFilter& f) override;
  std::optional<BackgroundTask> claim(TimeMs now, int64_t lease_ms, int64_t claim) override;
  bool hold(const std::string& id, int64_t claim, TimeMs lease_until) override;
  void save(const BackgroundTask& t, int64_t claim) override;
  int64_t purge(TimeMs before, int limit) override;

 private:
  Context& x_;
};

}  // namespace herald::pg
