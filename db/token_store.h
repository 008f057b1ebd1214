#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"

namespace herald {

// An API token as stored: only the SHA-256 of the token text is kept.
struct TokenRecord {
  std::string id;
  std::string hash;                   // SHA-256 of the token, raw bytes
  std::optional<std::string> app_id;  // set: scoped to one application
  std::string name;
  TimeMs created_at = 0;
  std::optional<TimeMs> expires_at;
  bool read_only = false;  // may only make GET requests
  // The portal session it was made for (AppPortalAccessIn.sessionId), for expiring one
  // user's sessions.
  std::optional<std::string> session_id;
  // The event types' feature flags this token was granted (AppPortalAccessIn.featureFlags).
  std::vector<std::string> feature_flags = {};
};

// API tokens.
class TokenStore {
 public:
  virtual ~TokenStore() = default;

  virtual void insert(const TokenRecord& t) = 0;
  // Inserts the admin token `t` unless an admin token exists, atomically even when other
  // processes share the database; true if it did. REQUIRES: no transaction open on the session.
  virtual bool insert_first_admin(const TokenRecord& t) = 0;
  virtual std::optional<TokenRecord> find_by_hash(const std::string& hash) = 0;
  // Tokens that are not scoped to an application.
  virtual int64_t count_admin() = 0;
  // Oldest first.
  virtual std::vector<TokenRecord> list() = 0;
  virtual bool remove(const std::string& id) = 0;
  // Makes the tokens scoped to `app_id` that would work beyond `at` expire at `at`; with
  // `session_ids`, only those made for one of them. Returns how many changed.
  virtual int64_t expire_app_tokens(const std::string& app_id, TimeMs at,
                                    const std::vector<std::string>& session_ids) = 0;
  // Drops tokens whose expiry has passed.
  virtual void purge_expired(TimeMs now) = 0;
};

}  // namespace herald
