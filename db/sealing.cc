#include "db/sealing.h"

#include <optional>
#include <string>

#include "core/secret_box.h"
#include "db/database.h"
#include "db/endpoint_store.h"
#include "db/errors.h"

namespace herald {
namespace {

// What the key check seals; the context keeps it from passing for anything else.
constexpr std::string_view kCheckText = "herald master key check";
constexpr std::string_view kCheckContext = "master_key_check";

bool check_opens(const std::string& sealed, const SecretBox& box) {
  return box.open(sealed, kCheckContext) == std::optional<std::string>(std::string(kCheckText));
}

const SecretBox& box_of(Database& db) {
  if (db.secret_box() == nullptr) throw MasterKeyMismatch("no master key to seal secrets with");
  return *db.secret_box();
}

[[noreturn]] void mismatch() {
  throw MasterKeyMismatch(
      "the master key does not match the database (it was sealed with another)");
}

}  // namespace

int adopt_master_key(Database& db) {
  const SecretBox& box = box_of(db);
  int sealed = 0;
  {
    auto s = db.begin();
    EndpointStore& endpoints = s->endpoints();
    if (auto check = endpoints.key_check()) {
      if (!check_opens(*check, box)) mismatch();
    } else {
      if (!endpoints.sealed_keys_open()) mismatch();
      endpoints.set_key_check(box.seal(kCheckText, kCheckContext));
    }
    sealed = endpoints.seal_plaintext_keys();
    s->commit();
  }
  if (sealed > 0) {
    try {
      db.scrub();
    } catch (const DbError& e) {
      throw DbError(e.kind(), "sealed " + std::to_string(sealed) +
                                  " endpoint secrets, but the store may still hold their "
                                  "plaintext (vacuum it): " +
                                  e.what());
    }
  }
  return sealed;
}

bool is_sealed(Session& s) {
  return s.endpoints().key_check().has_value() || s.endpoints().has_sealed_keys();
}

void require_master_key(Session& s, const SecretBox& box) {
  if (auto check = s.endpoints().key_check(); check && !check_opens(*check, box)) mismatch();
}

std::pair<std::string, bool> seal_endpoint_key(Session& s, const SecretBox* box,
                                               const std::string& endpoint_id,
                                               const std::string& key) {
  if (box == nullptr) return {key, false};
  require_master_key(s, *box);
  return {box->seal(key, endpoint_id), true};
}

std::string open_endpoint_key(const SecretBox* box, const std::string& endpoint_id,
                              const std::string& bytes, bool sealed) {
  if (!sealed) return bytes;
  if (box == nullptr) {
    throw MasterKeyMismatch("the secrets of endpoint " + endpoint_id +
                            " are sealed and no master key was given");
  }
  auto key = box->open(bytes, endpoint_id);
  if (!key) {
    throw MasterKeyMismatch("a secret of endpoint " + endpoint_id +
                            " does not open with the master key (the wrong key?)");
  }
  return std::move(*key);
}

int reseal_all(Database& db, const SecretBox& to) {
  const SecretBox& box = box_of(db);
  auto s = db.begin();
  require_master_key(*s, box);
  const int n = s->endpoints().reseal_keys(to);
  s->endpoints().set_key_check(to.seal(kCheckText, kCheckContext));
  s->commit();
  return n;
}

}  // namespace herald
