#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace herald {

class Database;
class Session;
class SecretBox;

// Sealed data in the database does not open with the master key at hand (or none is at hand).
class MasterKeyMismatch : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Makes the database's secret box its master key, in one transaction: checks that the key
// check, or failing that any sealed secret, opens with it, records the check if there is none,
// and seals every endpoint secret still in plaintext (databases from before sealing). Returns
// how many secrets it sealed; if any, the store is then scrubbed of their plaintext
// (Database::scrub). Throws MasterKeyMismatch.
// REQUIRES: the database has a secret box; no other session is busy.
int adopt_master_key(Database& db);

// True if a master key was adopted: there is a key check or a sealed secret.
bool is_sealed(Session& s);

// Throws MasterKeyMismatch unless the key check opens with `box` (or there is none yet): a
// write sealed under a key the database no longer uses would be lost.
void require_master_key(Session& s, const SecretBox& box);

// An endpoint's signing key as a store writes it: sealed with `box` (once the key check
// confirms the database still uses that key), or as given when there is no box. Returns the
// bytes to store and whether they are sealed. Throws MasterKeyMismatch.
std::pair<std::string, bool> seal_endpoint_key(Session& s, const SecretBox* box,
                                               const std::string& endpoint_id,
                                               const std::string& key);
// A stored key's raw bytes: opened with `box` when sealed. Throws MasterKeyMismatch when it is
// sealed and there is no box, or it does not open.
std::string open_endpoint_key(const SecretBox* box, const std::string& endpoint_id,
                              const std::string& bytes, bool sealed);

// Re-seals every endpoint secret and the key check under `to`, in one transaction. Returns
// how many secrets. Throws MasterKeyMismatch, changing nothing, if one does not open with
// the database's box. Follow with Database::scrub(): until then the store may keep values
// sealed with the old key. REQUIRES: the database has a secret box.
int reseal_all(Database& db, const SecretBox& to);

}  // namespace herald
