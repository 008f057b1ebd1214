#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"

namespace herald {

class Database;

// A new random API token: "<prefix>_" + 48 hex characters.
std::string new_token_text(const std::string& prefix);

// Makes sure `token` is a valid admin token (stores its hash if it is new).
void ensure_admin_token(Database& db, Clock& clock, const std::string& token);

// If no admin token exists yet, creates one and returns its text (the only time it is ever
// visible); otherwise nullopt.
std::optional<std::string> bootstrap_admin_token(Database& db, Clock& clock);

// A token just created: its text is visible only now; only its hash is stored.
struct NewToken {
  std::string id;
  std::string text;
};

// Creates a token: an admin token without `app_id`, else one that reaches only that
// application (an application id). Expires at `expires_at` if set; a `read_only` token may
// only make GET requests. `session_id`: the portal session it is made for (see
// TokenStore::expire_app_tokens). `feature_flags`: the event types' flags it may see.
NewToken create_token(Database& db, Clock& clock, const std::optional<std::string>& app_id,
                      const std::string& name, std::optional<TimeMs> expires_at,
                      bool read_only = false, std::optional<std::string> session_id = std::nullopt,
                      std::vector<std::string> feature_flags = {});

}  // namespace herald
