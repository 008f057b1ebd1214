#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/types.h"
#include "db/list.h"

namespace herald {

class SecretBox;

// A signing key as it lies in the store: sealed with the master key, or (databases from
// before sealing) in plaintext. For moving keys between stores without opening them.
struct StoredKey {
  std::string bytes;
  bool sealed = false;
  TimeMs created_at = 0;
  std::optional<TimeMs> expires_at;
  KeyKind kind = KeyKind::kHmac;
};

// Endpoints and their signing keys. Every write that changes what a delivery to an endpoint
// looks like (its fields, keys, enabled state or existence; not failing_since) bumps its
// application's endpoints_version in the same transaction, which is how caches of endpoints,
// in this process or another, tell they are stale.
class EndpointStore {
 public:
  virtual ~EndpointStore() = default;

  // Inserts `ep` with its first signing key. Throws DbError (is_constraint) when
  // its uid is taken within the app.
  virtual void insert(const Endpoint& ep, const SigningKey& key) = 0;
  // By id, or by uid within the app.
  virtual std::optional<Endpoint> get(const std::string& app_id, const std::string& key) = 0;
  // Oldest first.
  virtual ListPage<Endpoint> list(const std::string& app_id, const ListParams& p) = 0;
  // Every enabled endpoint of the app, oldest first.
  virtual std::vector<Endpoint> enabled_for_app(const std::string& app_id) = 0;
  // Writes every field but id, app_id, created_at and failing_since; enabling a disabled
  // endpoint clears failing_since. False if no such endpoint.
  virtual bool update(const Endpoint& ep) = 0;
  virtual bool remove(const std::string& app_id, const std::string& id) = 0;

  // Records a failed attempt at `at`: starts the failing run unless one is under way.
  // Returns when the run began (nullopt if there is no such endpoint).
  virtual std::optional<TimeMs> note_failure(const std::string& endpoint_id, TimeMs at) = 0;
  // Records successes: these endpoints are no longer failing. Writes only those that were.
  virtual void note_successes(const std::vector<std::string>& endpoint_ids) = 0;
  // Disables an enabled endpoint with `reason`; false if it was already disabled or is gone.
  virtual bool disable(const std::string& endpoint_id, const std::string& reason, TimeMs now) = 0;

  // The keys that sign right now: the current one first, then rotated-out keys still in
  // their grace period.
  virtual std::vector<SigningKey> signing_keys(const std::string& endpoint_id, TimeMs now) = 0;
  // The current key.
  virtual std::optional<SigningKey> current_key(const std::string& endpoint_id) = 0;
  // Makes `key` current; the previous current key keeps signing until now + grace_ms.
  // Keys whose grace has ended are dropped.
  virtual void rotate_key(const std::string& endpoint_id, const SigningKey& key, int64_t grace_ms,
                          TimeMs now) = 0;

  // The PEM private key of the endpoint's client certificate (Endpoint::client_cert), opened;
  // nullopt when it has none.
  virtual std::optional<std::string> client_key(const std::string& endpoint_id) = 0;
  // Replaces that key (nullopt: removes it), sealed like the signing keys.
  virtual void set_client_key(const std::string& endpoint_id, const std::optional<std::string>& pem,
                              TimeMs now) = 0;

  // Keys are sealed with the database's secret box when it has one (after a check that the
  // database still uses that key: MasterKeyMismatch otherwise), else stored as given. Reading
  // a sealed key that does not open, or without a box, throws MasterKeyMismatch.

  // Seals every key stored in plaintext; returns how many. REQUIRES: a secret box.
  virtual int seal_plaintext_keys() = 0;
  // Re-seals every key under `to`; returns how many. REQUIRES: a transaction.
  virtual int reseal_keys(const SecretBox& to) = 0;
  // True if no key is sealed, or a sealed one opens with the database's secret box.
  virtual bool sealed_keys_open() = 0;
  virtual bool has_sealed_keys() = 0;
  // The value sealed with the master key that tells a wrong key at start (see db/sealing.h).
  virtual std::optional<std::string> key_check() = 0;
  virtual void set_key_check(const std::string& sealed) = 0;

  // The endpoint's keys as stored, oldest first, and their insertion as they were: for
  // moving a database to another store. Neither seals nor opens anything.
  virtual std::vector<StoredKey> stored_keys(const std::string& endpoint_id) = 0;
  virtual void insert_stored_key(const std::string& endpoint_id, const StoredKey& key) = 0;
  // Inserts `ep` (failing_since included) with `keys` exactly as stored.
  virtual void import_endpoint(const Endpoint& ep, const std::vector<StoredKey>& keys) = 0;
};

}  // namespace herald
