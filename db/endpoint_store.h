#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/types.h"
#include "db/list.h"

namespace herald {

class Connection;
class SecretBox;

// The endpoints and endpoint_secrets tables.
class EndpointStore {
 public:
  // A number that changes whenever any endpoint of this process's databases is written (its
  // fields, keys, enabled state or existence; not its failing_since), so that caches of
  // endpoints can tell they are stale. It changes before the write is visible to others.
  static uint64_t generation();
  // Marks every cache of endpoints stale (for writes that reach endpoints from elsewhere,
  // such as an application's cascading delete).
  static void note_changed();

  explicit EndpointStore(Connection& c) : c_(c) {}

  // Inserts `ep` with its first signing key (raw bytes). Throws DbError (is_constraint) when
  // its uid is taken within the app.
  void insert(const Endpoint& ep, const std::string& key);
  // By id, or by uid within the app.
  std::optional<Endpoint> get(const std::string& app_id, const std::string& key);
  // Oldest first.
  ListPage<Endpoint> list(const std::string& app_id, const ListParams& p);
  // Every enabled endpoint of the app, oldest first.
  std::vector<Endpoint> enabled_for_app(const std::string& app_id);
  // Writes every field but id, app_id, created_at and failing_since; enabling a disabled
  // endpoint clears failing_since. False if no such endpoint.
  bool update(const Endpoint& ep);
  bool remove(const std::string& app_id, const std::string& id);

  // Records a failed attempt at `at`: starts the failing run unless one is under way.
  // Returns when the run began (nullopt if there is no such endpoint).
  std::optional<TimeMs> note_failure(const std::string& endpoint_id, TimeMs at);
  // Records a success: the endpoint is no longer failing.
  void note_success(const std::string& endpoint_id);
  // Disables an enabled endpoint with `reason`; false if it was already disabled or is gone.
  bool disable(const std::string& endpoint_id, const std::string& reason, TimeMs now);

  // The keys that sign right now: the current one first, then rotated-out keys still in
  // their grace period.
  std::vector<std::string> signing_keys(const std::string& endpoint_id, TimeMs now);
  // The current key.
  std::optional<std::string> current_key(const std::string& endpoint_id);
  // Makes `key` current; the previous current key keeps signing until now + grace_ms.
  // Keys whose grace has ended are dropped.
  void rotate_key(const std::string& endpoint_id, const std::string& key, int64_t grace_ms,
                  TimeMs now);

  // Keys are sealed with the connection's secret box when it has one (after a check that the
  // database still uses that key: MasterKeyMismatch otherwise), else stored as given. Reading
  // a sealed key that does not open, or without a box, throws MasterKeyMismatch.

  // Seals every key stored in plaintext; returns how many. REQUIRES: a secret box.
  int seal_plaintext_keys();
  // Re-seals every key under `to`; returns how many. REQUIRES: a transaction.
  int reseal_keys(const SecretBox& to);
  // True if no key is sealed, or a sealed one opens with the connection's secret box.
  bool sealed_keys_open();
  bool has_sealed_keys();

 private:
  // What to store for `key`: its bytes, sealed or not, and whether they are sealed.
  std::pair<std::string, int> stored(const std::string& endpoint_id, const std::string& key);
  std::string unsealed(const std::string& endpoint_id, const std::string& bytes, bool sealed);

  Connection& c_;
};

}  // namespace herald
