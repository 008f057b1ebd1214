// /api/v1/auth: links to the delivery portal, and what the calling token may see.
#include "api/errors.h"
#include "api/json_mapping.h"
#include "api/server.h"
#include "api/tokens.h"
#include "core/time_format.h"
#include "db/database.h"
#include "db/session.h"
#include "db/token_store.h"

namespace herald {
namespace {

using json = nlohmann::ordered_json;

// Svix's bounds for AppPortalAccessIn.expiry, in seconds.
constexpr int64_t kMinExpirySeconds = 3600;
constexpr int64_t kMaxExpirySeconds = 7 * 24 * 3600;
// Session ids: how long one may be, and how many one expire-all may name.
constexpr size_t kMaxSessionIdLength = 256;
constexpr size_t kMaxSessionIds = 100;
// How many event type feature flags one portal token may be granted.
constexpr size_t kMaxFeatureFlags = 100;

}  // namespace

void register_auth_routes(ApiServer& s) {
  // Svix's AppPortalAccessIn: {expiry?, readOnly?, featureFlags?, sessionId?, application?};
  // featureFlags: the token sees the event types that need no other flags (Caller::may_see).
  // application means nothing here. Answers {url, token}.
  s.route("POST", "/api/v1/auth/app-portal-access/([^/]+)/?", [&s](ApiRequest& r) {
    require_admin(r.caller);
    BodyReader body(r.body);
    auto expiry = body.opt_int("expiry", kMinExpirySeconds, kMaxExpirySeconds);
    bool read_only = body.opt_bool("readOnly").value_or(false);
    auto session_id = body.opt_string("sessionId", kMaxSessionIdLength);
    auto feature_flags = body.opt_name_list("featureFlags", kMaxFeatureFlags);
    body.finish();
    Application app;
    {
      auto session = s.db().session();
      app = load_app(*session, r.caller, r.param(1));
    }
    TimeMs expires_at = s.clock().now_ms() + expiry.value_or(kMaxExpirySeconds) * 1000;
    NewToken token = create_token(s.db(), s.clock(), app.id,
                                  read_only ? "portal access (read-only)" : "portal access",
                                  expires_at, read_only, std::move(session_id),
                                  feature_flags.value_or(std::vector<std::string>{}));
    // The token travels in the fragment, which browsers never send: it stays out of access logs.
    ApiReply reply{
        200, json{{"url", s.base_url() + "/portal/#key=" + token.text}, {"token", token.text}}};
    reply.replayable = false;
    return reply;
  });

  // Revokes the calling token. Only an application's token may log out (a portal session
  // ending); the admin token is managed with `herald token`. Read-only tokens may too.
  s.route("POST", "/api/v1/auth/logout/?", [&s](ApiRequest& r) {
    if (r.caller.is_admin()) {
      throw ApiError(403, "forbidden",
                     "only an application's token can log out; revoke others with herald token "
                     "revoke");
    }
    s.db().session()->tokens().remove(r.caller.token_id);
    return ApiReply{204, {}};
  });

  // Svix's ApplicationTokenExpireIn: {expiry?: seconds until they expire (default: now),
  // sessionIds?: only the tokens made for these portal sessions}.
  s.route("POST", "/api/v1/auth/app/([^/]+)/expire-all/?", [&s](ApiRequest& r) {
    require_admin(r.caller);
    BodyReader body(r.body);
    auto expiry = body.opt_int("expiry", 0, kMaxExpirySeconds);
    auto session_ids = body.opt_string_list("sessionIds", kMaxSessionIds, kMaxSessionIdLength);
    body.finish();
    auto session = s.db().session();
    const Application app = load_app(*session, r.caller, r.param(1));
    session->tokens().expire_app_tokens(app.id, s.clock().now_ms() + expiry.value_or(0) * 1000,
                                        session_ids.value_or(std::vector<std::string>{}));
    return ApiReply{204, {}};
  });

  // herald's own: what the calling token may see and do.
  s.route("GET", "/api/v1/auth/whoami/?", [](ApiRequest& r) {
    return ApiReply{
        200, json{{"appId", r.caller.app_id ? json(*r.caller.app_id) : json(nullptr)},
                  {"readOnly", r.caller.read_only},
                  {"expiresAt", r.caller.expires_at ? json(format_rfc3339(*r.caller.expires_at))
                                                    : json(nullptr)}}};
  });
}

}  // namespace herald
