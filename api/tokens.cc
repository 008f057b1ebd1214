#include "api/tokens.h"

#include "core/encoding.h"
#include "core/ids.h"
#include "db/database.h"
#include "db/errors.h"
#include "db/session.h"
#include "db/token_store.h"

namespace herald {

std::string new_token_text(const std::string& prefix) {
  return prefix + "_" + hex_encode(random_bytes(24));
}

void ensure_admin_token(Database& db, Clock& clock, const std::string& token) {
  auto session = db.session();
  TokenStore& tokens = session->tokens();
  std::string hash = sha256(token);
  if (tokens.find_by_hash(hash)) return;
  TimeMs now = clock.now_ms();
  try {
    tokens.insert(TokenRecord{new_id(kTokenPrefix, now), hash, std::nullopt, "HERALD_ADMIN_TOKEN",
                              now, std::nullopt, false, std::nullopt});
  } catch (const DbError& e) {
    if (!e.is_constraint()) throw;  // another process sharing the database stored it first
  }
}

std::optional<std::string> bootstrap_admin_token(Database& db, Clock& clock) {
  auto session = db.session();
  TokenStore& tokens = session->tokens();
  if (tokens.count_admin() > 0) return std::nullopt;
  std::string token = new_token_text("sk");
  TimeMs now = clock.now_ms();
  if (!tokens.insert_first_admin(TokenRecord{new_id(kTokenPrefix, now), sha256(token), std::nullopt,
                                             "generated", now, std::nullopt, false,
                                             std::nullopt})) {
    return std::nullopt;  // another process sharing the database made one first
  }
  return token;
}

NewToken create_token(Database& db, Clock& clock, const std::optional<std::string>& app_id,
                      const std::string& name, std::optional<TimeMs> expires_at, bool read_only,
                      std::optional<std::string> session_id,
                      std::vector<std::string> feature_flags) {
  NewToken t{new_id(kTokenPrefix, clock.now_ms()), new_token_text(app_id ? "ak" : "sk")};
  auto session = db.session();
  session->tokens().insert(TokenRecord{t.id, sha256(t.text), app_id, name, clock.now_ms(),
                                       expires_at, read_only, std::move(session_id),
                                       std::move(feature_flags)});
  return t;
}

}  // namespace herald
