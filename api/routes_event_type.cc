// /api/v1/event-type: the event types producers declare.
#include <algorithm>

#include "api/errors.h"
#include "api/json_mapping.h"
#include "api/openapi_import.h"
#include "api/server.h"
#include "db/database.h"
#include "db/event_type_store.h"
#include "db/session.h"

namespace herald {
namespace {

using json = nlohmann::ordered_json;

// The event type `name` as `caller` may see it; throws 404.
EventType load_event_type(Session& c, const Caller& caller, const std::string& name) {
  auto et = c.event_types().get(name);
  if (!et || !caller.may_see(*et)) throw not_found("event type");
  return *et;
}

void read_event_type_body(const JsonIn& body, EventType& et, bool patch) {
  BodyReader r(body);
  read_event_type_fields(r, et, patch);
  r.finish();
}

// Svix's EventTypeFromOpenApi: what an import would make of a webhook.
json from_openapi_json(const EventType& e) {
  json j = to_json(e);
  return json{{"name", e.name},
              {"description", e.description},
              {"schemas", j["schemas"]},
              {"deprecated", e.deprecated},
              {"groupName", j["groupName"]},
              {"featureFlags", j["featureFlags"]}};
}

// Svix's EventTypeImportOpenApiIn: the document as `spec` (an object) or `specRaw` (its text).
// Answers EventTypeImportOpenApiOut: {data: {modified: the names written, to_modify (so spelled
// on the wire): on a dry run, what would be written}}. The document is checked whole before
// anything is written.
ApiReply import_openapi(ApiServer& s, ApiRequest& r) {
  require_admin(r.caller);
  BodyReader body(r.body);
  const bool dry_run = body.opt_bool("dryRun").value_or(false);
  const bool replace_all = body.opt_bool("replaceAll").value_or(false);
  const JsonIn* spec = body.raw("spec");
  const auto spec_raw = body.opt_string("specRaw", s.options().max_payload_bytes);
  std::optional<JsonIn> parsed;
  if ((spec != nullptr) == spec_raw.has_value()) {
    body.error("spec", "send the document as spec (an object) or specRaw (its text), one of them");
  } else if (spec_raw) {
    std::string problem;
    parsed = parse_client_json(*spec_raw, "specRaw", problem);
    if (!parsed) body.error("specRaw", problem + "; herald reads OpenAPI documents as JSON only");
  }
  std::vector<EventType> types;
  if (spec != nullptr) {
    types = event_types_from_openapi(*spec, body, json::array({"body", "spec"}));
  } else if (parsed) {
    types = event_types_from_openapi(*parsed, body, json::array({"body", "specRaw"}));
  }
  body.finish();

  const TimeMs now = s.clock().now_ms();
  if (dry_run) {
    json to_modify = json::array();
    for (auto& et : types) {
      et.created_at = et.updated_at = now;
      to_modify.push_back(from_openapi_json(et));
    }
    return ApiReply{
        200, json{{"data", {{"modified", json::array()}, {"to_modify", std::move(to_modify)}}}}};
  }
  json modified = json::array();
  auto session = s.db().begin();
  EventTypeStore& store = session->event_types();
  for (auto& et : types) {
    et.created_at = et.updated_at = now;  // an existing type keeps its createdAt
    upsert_event_type(store, et);
    modified.push_back(et.name);
  }
  if (replace_all) {
    for (auto& et : store.list_all(false)) {
      const bool listed = std::any_of(types.begin(), types.end(),
                                      [&](const EventType& t) { return t.name == et.name; });
      if (listed) continue;
      et.archived = true;
      et.updated_at = now;
      store.update(et);
    }
  }
  session->commit();
  return ApiReply{200, json{{"data", {{"modified", std::move(modified)}}}}};
}

}  // namespace

bool upsert_event_type(EventTypeStore& store, EventType& et) {
  auto existing = store.get(et.name);
  if (!existing) {
    store.insert(et);
    return false;
  }
  et.created_at = existing->created_at;
  store.update(et);
  return true;
}

void register_event_type_routes(ApiServer& s) {
  const std::string one = "/api/v1/event-type/([^/]+)/?";

  s.route("GET", "/api/v1/event-type/?", [&s](ApiRequest& r) {
    auto p = r.list_params("");
    bool archived = r.query_bool("include_archived", false);
    // Svix leaves schemas out of lists unless asked: they can be large.
    const bool with_content = r.query_bool("with_content", false);
    auto session = s.db().session();
    EventTypeStore& store = session->event_types();
    // An application's token sees only the types whose feature flags it was granted.
    auto page = filtered_page<EventType>(
        p, [&](const ListParams& q) { return store.list(q, archived); },
        [&](const EventType& e) { return r.caller.may_see(e); },
        [](const EventType& e) { return e.name; });
    json data = json::array();
    for (const auto& e : page.items) data.push_back(to_json(e, with_content));
    std::string first = page.items.empty() ? "" : page.items.front().name;
    std::string last = page.items.empty() ? "" : page.items.back().name;
    return ApiReply{200, list_json(std::move(data), first, last, page.done, p)};
  });

  s.route("POST", "/api/v1/event-type/?", [&s](ApiRequest& r) {
    require_admin(r.caller);
    EventType et;
    {
      BodyReader body(r.body);
      et.name = read_event_type_name(body);
      read_event_type_fields(body, et, false);
      body.finish();
    }
    et.created_at = et.updated_at = s.clock().now_ms();
    auto session = s.db().begin();
    EventTypeStore& store = session->event_types();
    if (auto existing = store.get(et.name)) {
      if (!existing->archived) throw conflict("event type '" + et.name + "' exists");
      et.created_at = existing->created_at;  // creating an archived type revives it
      store.update(et);
    } else {
      store.insert(et);
    }
    session->commit();
    return ApiReply{201, to_json(et)};
  });

  s.route("POST", "/api/v1/event-type/import/openapi/?",
          [&s](ApiRequest& r) { return import_openapi(s, r); });

  s.route("GET", one, [&s](ApiRequest& r) {
    auto session = s.db().session();
    return ApiReply{200, to_json(load_event_type(*session, r.caller, r.param(1)))};
  });

  auto update = [&s](ApiRequest& r, bool patch) {
    require_admin(r.caller);
    auto session = s.db().begin();
    EventTypeStore& store = session->event_types();
    TimeMs now = s.clock().now_ms();
    auto existing = store.get(r.param(1));
    if (!existing) {
      // PUT creates (Svix's upsert); PATCH needs an existing type.
      if (patch) throw not_found("event type");
      if (!valid_name(r.param(1)))
        throw invalid_field("name", "must be 1 to 256 of A-Z a-z 0-9 _ . -");
      EventType et;
      et.name = r.param(1);
      read_event_type_body(r.body, et, false);
      et.created_at = et.updated_at = now;
      store.insert(et);
      session->commit();
      return ApiReply{201, to_json(et)};
    }
    EventType et = *existing;
    read_event_type_body(r.body, et, patch);
    et.updated_at = now;
    store.update(et);
    session->commit();
    return ApiReply{200, to_json(et)};
  };
  s.route("PUT", one, [update](ApiRequest& r) { return update(r, false); });
  s.route("PATCH", one, [update](ApiRequest& r) { return update(r, true); });

  // Archives, as Svix does; ?expunge=true deletes for good.
  s.route("DELETE", one, [&s](ApiRequest& r) {
    require_admin(r.caller);
    bool expunge = r.query_bool("expunge", false);
    auto session = s.db().session();
    EventTypeStore& store = session->event_types();
    EventType et = load_event_type(*session, r.caller, r.param(1));
    if (expunge) {
      store.remove(et.name);
    } else {
      et.archived = true;
      et.updated_at = s.clock().now_ms();
      store.update(et);
    }
    return ApiReply{204, {}};
  });
}

}  // namespace herald
