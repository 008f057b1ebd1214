#include "scheduler/operator.h"

#include "core/ids.h"
#include "core/time_format.h"
#include "db/app_store.h"
#include "db/delivery_store.h"
#include "db/endpoint_store.h"
#include "db/message_store.h"
#include "db/pool.h"
#include "db/sqlite.h"

namespace herald {
namespace {

constexpr const char* kOperatorEndpointUid = "operator";

}  // namespace

OperatorChannel ensure_operator_channel(Database& db, Clock& clock, const std::string& url,
                                        const std::string& key) {
  auto conn = db.acquire();
  Transaction tx(*conn);
  const TimeMs now = clock.now_ms();
  AppStore apps(*conn);
  auto app = apps.get_by_uid(std::string(kOperatorAppUid));
  if (!app) {
    app = Application{};
    app->id = new_id(kAppPrefix, now);
    app->uid = std::string(kOperatorAppUid);
    app->name = "herald operational webhooks";
    app->created_at = app->updated_at = now;
    apps.insert(*app);
  }
  EndpointStore endpoints(*conn);
  auto ep = endpoints.get(app->id, kOperatorEndpointUid);
  if (!ep) {
    ep = Endpoint{};
    ep->id = new_id(kEndpointPrefix, now);
    ep->app_id = app->id;
    ep->uid = kOperatorEndpointUid;
    ep->url = url;
    ep->description = "operational webhooks (HERALD_OPERATOR_URL)";
    ep->created_at = ep->updated_at = now;
    endpoints.insert(*ep, key);
  } else {
    ep->url = url;
    ep->disabled = false;
    ep->disabled_reason.reset();
    ep->updated_at = now;
    endpoints.update(*ep);
    if (endpoints.current_key(ep->id) != key) endpoints.rotate_key(ep->id, key, 0, now);
  }
  tx.commit();
  return OperatorChannel{app->id, ep->id};
}

void queue_operator_event(Connection& c, const OperatorChannel& channel, const std::string& type,
                          nlohmann::json data, TimeMs now) {
  Message m;
  m.id = new_id(kMessagePrefix, now);
  m.app_id = channel.app_id;
  m.event_type = type;
  m.payload =
      nlohmann::json{{"type", type}, {"timestamp", format_rfc3339(now)}, {"data", data}}.dump();
  m.timestamp = now;
  MessageStore(c).insert(m);
  Delivery d;
  d.id = new_id(kDeliveryPrefix, now);
  d.app_id = channel.app_id;
  d.msg_id = m.id;
  d.endpoint_id = channel.endpoint_id;
  d.next_attempt_at = now;
  d.created_at = d.updated_at = now;
  DeliveryStore(c).insert(d);
}

}  // namespace herald
