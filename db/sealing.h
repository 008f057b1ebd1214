#pragma once

#include <stdexcept>

namespace herald {

class Connection;
class SecretBox;

// Sealed data in the database does not open with the master key at hand (or none is at hand).
class MasterKeyMismatch : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Makes c's secret box the database's master key, in one transaction: checks that the key
// check (master_key_check), or failing that any sealed secret, opens with it, records the
// check if there is none, and seals every endpoint secret still in plaintext (databases from
// before sealing). Returns how many secrets it sealed; if any, the file is then scrubbed of
// their plaintext (VACUUM, WAL truncated). Throws MasterKeyMismatch.
// REQUIRES: c has a secret box; no transaction open on c; no other connection busy.
int adopt_master_key(Connection& c);

// True if a master key was adopted: there is a key check or a sealed secret.
bool is_sealed(Connection& c);

// Throws MasterKeyMismatch unless the key check opens with c's secret box (or there is none
// yet): a write sealed under a key the database no longer uses would be lost.
// REQUIRES: c has a secret box.
void require_master_key(Connection& c);

// Re-seals every endpoint secret and the key check under `to`, in one transaction. Returns
// how many secrets. Throws MasterKeyMismatch, changing nothing, if one does not open with
// c's box. Follow with scrub(): until then the file may keep values sealed with the old key.
// REQUIRES: c has a secret box; no transaction open on c.
int reseal_all(Connection& c, const SecretBox& to);

// Rewrites the database file with only its live content and truncates the WAL, so no page
// keeps the bytes of an overwritten or deleted value. Throws DbError.
// REQUIRES: no transaction open on c; no other connection busy.
void scrub(Connection& c);

}  // namespace herald
