// /api/v1/environment: an environment's configuration as one document, to carry it to
// another herald or bring it from Svix. herald's configuration is its event types: Svix's
// organization settings and connectors have no counterpart here.
#include <algorithm>

#include "api/errors.h"
#include "api/json_mapping.h"
#include "api/server.h"
#include "core/time_format.h"
#include "db/database.h"
#include "db/event_type_store.h"
#include "db/session.h"

namespace herald {
namespace {

using json = nlohmann::ordered_json;

// EnvironmentOut.version: the shape of the document.
constexpr int kEnvironmentVersion = 1;

}  // namespace

void register_environment_routes(ApiServer& s) {
  // Svix's EnvironmentOut: {version, createdAt, eventTypes (archived ones included, with their
  // schemas), settings: null, connectors: []}.
  s.route("POST", "/api/v1/environment/export/?", [&s](ApiRequest& r) {
    require_admin(r.caller);
    auto session = s.db().session();
    json types = json::array();
    for (const auto& et : session->event_types().list_all(true)) types.push_back(to_json(et));
    return ApiReply{200, json{{"version", kEnvironmentVersion},
                              {"createdAt", format_rfc3339(s.clock().now_ms())},
                              {"eventTypes", std::move(types)},
                              {"settings", nullptr},
                              {"connectors", json::array()}}};
  });

  // Svix's EnvironmentIn: {eventTypes?: EventTypeIn[], settings?, connectors?}. Each event type
  // is created, or replaces the one of its name (keeping its createdAt); nothing is deleted.
  // The whole document is checked first: one bad entry and nothing is written. `settings` is
  // accepted and not applied (herald has none); connectors are refused.
  s.route("POST", "/api/v1/environment/import/?", [&s](ApiRequest& r) {
    require_admin(r.caller);
    BodyReader body(r.body);
    std::vector<EventType> types;
    if (const JsonIn* list = body.raw("eventTypes")) {
      if (!list->is_array()) {
        body.error("eventTypes", "must be a list of event types", "type_error.list");
      } else {
        for (size_t i = 0; i < list->size(); ++i) {
          const json loc = json::array({"body", "eventTypes", i});
          const JsonIn& item = (*list)[i];
          if (!item.is_object()) {
            body.error_at(loc, "must be an event type (an object)", "type_error.dict");
            continue;
          }
          BodyReader in(item, loc);
          EventType et;
          et.name = read_event_type_name(in);
          read_event_type_fields(in, et, false);
          const bool repeated = std::any_of(types.begin(), types.end(),
                                            [&](const EventType& t) { return t.name == et.name; });
          if (repeated) in.error("name", "'" + et.name + "' is in the document more than once");
          body.absorb(in);
          types.push_back(std::move(et));
        }
      }
    }
    if (const JsonIn* connectors = body.raw("connectors");
        connectors != nullptr && !(connectors->is_array() && connectors->empty())) {
      body.error("connectors", "connectors are a Svix Cloud feature that herald does not have");
    }
    body.finish();

    const TimeMs now = s.clock().now_ms();
    auto session = s.db().begin();
    EventTypeStore& store = session->event_types();
    for (auto& et : types) {
      et.created_at = et.updated_at = now;
      upsert_event_type(store, et);
    }
    session->commit();
    return ApiReply{204, {}};
  });
}

}  // namespace herald
