#include "db/sealing.h"

#include <optional>
#include <string>

#include "core/secret_box.h"
#include "db/endpoint_store.h"
#include "db/sqlite.h"

namespace herald {
namespace {

// What the key check seals; the context keeps it from passing for anything else.
constexpr std::string_view kCheckText = "herald master key check";
constexpr std::string_view kCheckContext = "master_key_check";

std::optional<std::string> read_check(Connection& c) {
  auto st = c.prepare("SELECT sealed FROM master_key_check WHERE id = 1");
  if (!st.step()) return std::nullopt;
  return st.get_text(0);
}

void write_check(Connection& c, const SecretBox& box) {
  c.prepare("INSERT OR REPLACE INTO master_key_check (id, sealed) VALUES (1, ?)")
      .bind_blob(1, box.seal(kCheckText, kCheckContext))
      .run();
}

bool check_opens(const std::string& sealed, const SecretBox& box) {
  return box.open(sealed, kCheckContext) == std::optional<std::string>(std::string(kCheckText));
}

const SecretBox& box_of(Connection& c) {
  if (c.secret_box() == nullptr) throw MasterKeyMismatch("no master key to seal secrets with");
  return *c.secret_box();
}

// Zeroes what is overwritten or deleted while it lives, then restores the setting.
class SecureDelete {
 public:
  explicit SecureDelete(Connection& c) : c_(c) {
    auto st = c_.prepare("PRAGMA secure_delete");
    was_ = st.step() ? st.get_int(0) : 0;
    c_.exec("PRAGMA secure_delete = ON");
  }
  ~SecureDelete() {
    try {
      c_.exec("PRAGMA secure_delete = " + std::to_string(was_));
    } catch (...) {
    }
  }
  SecureDelete(const SecureDelete&) = delete;
  SecureDelete& operator=(const SecureDelete&) = delete;

 private:
  Connection& c_;
  int64_t was_ = 0;
};

[[noreturn]] void mismatch() {
  throw MasterKeyMismatch(
      "the master key does not match the database (it was sealed with another)");
}

}  // namespace

int adopt_master_key(Connection& c) {
  const SecretBox& box = box_of(c);
  SecureDelete secure(c);
  Transaction tx(c);
  EndpointStore endpoints(c);
  if (auto check = read_check(c)) {
    if (!check_opens(*check, box)) mismatch();
  } else {
    if (!endpoints.sealed_keys_open()) mismatch();
    write_check(c, box);
  }
  const int sealed = endpoints.seal_plaintext_keys();
  tx.commit();
  if (sealed > 0) {
    try {
      scrub(c);
    } catch (const DbError& e) {
      throw DbError(e.code(), "sealed " + std::to_string(sealed) +
                                  " endpoint secrets, but the file may still hold their plaintext "
                                  "(run VACUUM on it): " +
                                  e.what());
    }
  }
  return sealed;
}

bool is_sealed(Connection& c) {
  return read_check(c).has_value() || EndpointStore(c).has_sealed_keys();
}

void require_master_key(Connection& c) {
  const SecretBox& box = box_of(c);
  if (auto check = read_check(c); check && !check_opens(*check, box)) mismatch();
}

int reseal_all(Connection& c, const SecretBox& to) {
  SecureDelete secure(c);
  Transaction tx(c);
  require_master_key(c);
  const int n = EndpointStore(c).reseal_keys(to);
  write_check(c, to);
  tx.commit();
  return n;
}

void scrub(Connection& c) {
  c.exec("VACUUM");
  c.exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

}  // namespace herald
