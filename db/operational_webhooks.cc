#include "db/operational_webhooks.h"

#include "core/ids.h"
#include "core/time_format.h"
#include "db/app_store.h"
#include "db/database.h"
#include "db/endpoint_store.h"
#include "db/enqueue.h"
#include "db/errors.h"
#include "db/session.h"

namespace herald {
namespace {

constexpr const char* kOperatorEndpointUid = "operator";

OperatorChannel ensure_once(Database& db, Clock& clock, const std::string& url,
                            SignatureScheme scheme, const SigningKey& key) {
  auto s = db.begin();
  const TimeMs now = clock.now_ms();
  const Application app = ensure_operator_app(*s, now);
  EndpointStore& endpoints = s->endpoints();
  auto ep = endpoints.get(app.id, kOperatorEndpointUid);
  if (!ep) {
    ep = Endpoint{};
    ep->id = new_id(kEndpointPrefix, now);
    ep->app_id = app.id;
    ep->uid = kOperatorEndpointUid;
    ep->url = url;
    ep->description = "operational webhooks (HERALD_OPERATOR_URL)";
    ep->signature_scheme = scheme;
    ep->created_at = ep->updated_at = now;
    endpoints.insert(*ep, key);
  } else if (ep->url != url || ep->disabled || ep->signature_scheme != scheme ||
             endpoints.current_key(ep->id) != key) {
    ep->url = url;
    ep->disabled = false;
    ep->disabled_reason.reset();
    ep->signature_scheme = scheme;
    ep->updated_at = now;
    endpoints.update(*ep);
    if (endpoints.current_key(ep->id) != key) endpoints.rotate_key(ep->id, key, 0, now);
  }
  s->commit();
  return OperatorChannel{app.id, ep->id};
}

}  // namespace

std::optional<Application> find_operator_app(Session& s) {
  return s.apps().get_by_uid(std::string(kOperatorAppUid));
}

Application ensure_operator_app(Session& s, TimeMs now) {
  if (auto app = find_operator_app(s)) return *app;
  Application app;
  app.id = new_id(kAppPrefix, now);
  app.uid = std::string(kOperatorAppUid);
  app.name = "herald operational webhooks";
  app.created_at = app.updated_at = now;
  s.apps().insert(app);
  return app;
}

OperatorChannel ensure_operator_channel(Database& db, Clock& clock, const std::string& url,
                                        SignatureScheme scheme, const SigningKey& key) {
  try {
    return ensure_once(db, clock, url, scheme, key);
  } catch (const DbError& e) {
    // Another process created the channel between our read and our insert: use theirs.
    if (!e.is_constraint()) throw;
    return ensure_once(db, clock, url, scheme, key);
  }
}

void queue_operator_event(Session& s, Enqueuer& enqueuer, const std::string& operator_app_id,
                          const std::string& type, nlohmann::json data, TimeMs now) {
  if (!enqueuer.would_deliver(s, operator_app_id, type, std::nullopt)) return;
  Message m;
  m.id = new_id(kMessagePrefix, now);
  m.app_id = operator_app_id;
  m.event_type = type;
  m.payload =
      nlohmann::json{{"type", type}, {"timestamp", format_rfc3339(now)}, {"data", data}}.dump();
  m.timestamp = now;
  enqueuer.publish(s, m);
}

}  // namespace herald
