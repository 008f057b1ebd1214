#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"

namespace herald {

class Connection;

// An API token as stored: only the SHA-256 of the token text is kept.
struct TokenRecord {
  std::string id;
  std::string hash;                   // SHA-256 of the token, raw bytes
  std::optional<std::string> app_id;  // set: scoped to one application
  std::string name;
  TimeMs created_at = 0;
  std::optional<TimeMs> expires_at;
  bool read_only = false;  // may only make GET requests
};

// The api_tokens table.
class TokenStore {
 public:
  explicit TokenStore(Connection& c) : c_(c) {}

  void insert(const TokenRecord& t);
  std::optional<TokenRecord> find_by_hash(const std::string& hash);
  // Tokens that are not scoped to an application.
  int64_t count_admin();
  std::vector<TokenRecord> list();
  bool remove(const std::string& id);
  // Drops tokens whose expiry has passed.
  void purge_expired(TimeMs now);

 private:
  Connection& c_;
};

}  // namespace herald
