// /api/v1/app: applications.
#include "api/errors.h"
#include "api/json_mapping.h"
#include "api/server.h"
#include "core/ids.h"
#include "db/app_store.h"
#include "db/database.h"
#include "db/session.h"

namespace herald {
namespace {

using json = nlohmann::ordered_json;

constexpr size_t kMaxMetadataEntries = 64;
constexpr size_t kMaxMetadataLen = 1024;

// Applies the fields of an ApplicationIn body to `app`. With `patch`, absent fields keep
// their value; otherwise they reset to their default.
void read_app_body(const JsonIn& body, Application& app, bool patch) {
  BodyReader r(body);
  if (!patch || r.present("name")) app.name = r.req_string("name");
  if (!patch || r.present("uid")) {
    app.uid = r.opt_string("uid");
    if (app.uid && !valid_uid(*app.uid)) {
      r.error("uid", "must be 1 to 256 of A-Z a-z 0-9 _ . - and not look like an id");
    }
  }
  if (!patch || r.present("throttleRate")) {
    auto rate = r.opt_int("throttleRate", 1, 1000000);
    app.throttle_rate = rate ? std::optional<int>(static_cast<int>(*rate)) : std::nullopt;
  }
  if (!patch || r.present("metadata")) {
    app.metadata = r.opt_string_map("metadata", kMaxMetadataEntries, kMaxMetadataLen)
                       .value_or(std::map<std::string, std::string>{});
  }
  r.finish();
}

// An app-scoped token (a customer's portal link) manages what is inside its application, but
// may not rename, replace or delete the application itself: that is the operator's.
void require_app_owner(const Caller& caller) {
  if (!caller.is_admin()) {
    throw ApiError(403, "forbidden",
                   "an application-scoped token cannot change or delete its application");
  }
}

}  // namespace

void register_app_routes(ApiServer& s) {
  s.route("GET", "/api/v1/app/?", [&s](ApiRequest& r) {
    require_admin(r.caller);
    auto p = r.list_params(kAppPrefix);
    p.descending = r.query_descending();
    auto session = s.db().session();
    auto page = session->apps().list(p);
    json data = json::array();
    for (const auto& a : page.items) data.push_back(to_json(a));
    std::string first = page.items.empty() ? "" : page.items.front().id;
    std::string last = page.items.empty() ? "" : page.items.back().id;
    return ApiReply{200, list_json(std::move(data), first, last, page.done, p)};
  });

  s.route("POST", "/api/v1/app/?", [&s](ApiRequest& r) {
    require_admin(r.caller);
    Application app;
    read_app_body(r.body, app, false);
    const bool get_if_exists = r.query_bool("get_if_exists", false);
    auto session = s.db().begin();
    AppStore& apps = session->apps();
    if (app.uid) {
      if (auto existing = apps.get_by_uid(*app.uid)) {
        if (get_if_exists) return ApiReply{200, to_json(*existing)};
        throw conflict("an application with uid '" + *app.uid + "' exists");
      }
    }
    TimeMs now = s.clock().now_ms();
    app.id = new_id(kAppPrefix, now);
    app.created_at = app.updated_at = now;
    apps.insert(app);
    session->commit();
    return ApiReply{201, to_json(app)};
  });

  s.route("GET", "/api/v1/app/([^/]+)/?", [&s](ApiRequest& r) {
    auto session = s.db().session();
    return ApiReply{200, to_json(load_app(*session, r.caller, r.param(1)))};
  });

  s.route("PUT", "/api/v1/app/([^/]+)/?", [&s](ApiRequest& r) {
    auto session = s.db().begin();
    AppStore& apps = session->apps();
    TimeMs now = s.clock().now_ms();
    auto existing = apps.get(r.param(1));
    if (existing && (!r.caller.app_id || *r.caller.app_id == existing->id)) {
      require_app_owner(r.caller);
      Application app = *existing;
      read_app_body(r.body, app, false);
      // A PUT that leaves uid out keeps it (the application may be addressed by it); an
      // explicit null clears it.
      if (!r.body.contains("uid")) app.uid = existing->uid;
      app.updated_at = now;
      apps.update(app);
      session->commit();
      return ApiReply{200, to_json(app)};
    }
    // Upsert: PUT on an unknown uid creates the application under that uid.
    require_admin(r.caller);
    if (existing || !valid_uid(r.param(1))) throw not_found("application");
    Application app;
    read_app_body(r.body, app, false);
    app.uid = r.param(1);
    app.id = new_id(kAppPrefix, now);
    app.created_at = app.updated_at = now;
    apps.insert(app);
    session->commit();
    return ApiReply{201, to_json(app)};
  });

  s.route("PATCH", "/api/v1/app/([^/]+)/?", [&s](ApiRequest& r) {
    auto session = s.db().begin();
    Application app = load_app(*session, r.caller, r.param(1));
    require_app_owner(r.caller);
    read_app_body(r.body, app, true);
    app.updated_at = s.clock().now_ms();
    session->apps().update(app);
    session->commit();
    return ApiReply{200, to_json(app)};
  });

  s.route("DELETE", "/api/v1/app/([^/]+)/?", [&s](ApiRequest& r) {
    auto session = s.db().session();
    Application app = load_app(*session, r.caller, r.param(1));
    require_app_owner(r.caller);
    session->apps().remove(app.id);
    return ApiReply{204, {}};
  });
}

}  // namespace herald
