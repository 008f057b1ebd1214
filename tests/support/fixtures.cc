#include "tests/support/fixtures.h"

#include <doctest/doctest.h>

#include "core/ids.h"
#include "db/app_store.h"
#include "db/delivery_store.h"
#include "db/endpoint_store.h"
#include "db/message_store.h"
#include "db/session.h"

namespace herald::test {

Application add_app(Session& s, TimeMs now, const std::string& name,
                    std::optional<std::string> uid) {
  Application app;
  app.id = new_id(kAppPrefix, now);
  app.uid = std::move(uid);
  app.name = name;
  app.created_at = app.updated_at = now;
  s.apps().insert(app);
  return app;
}

Endpoint add_endpoint(Session& s, const std::string& app_id, const std::string& url,
                      const std::string& key, TimeMs now,
                      std::map<std::string, std::string> headers, bool disabled) {
  Endpoint ep;
  ep.id = new_id(kEndpointPrefix, now);
  ep.app_id = app_id;
  ep.url = url;
  ep.headers = std::move(headers);
  ep.disabled = disabled;
  ep.created_at = ep.updated_at = now;
  s.endpoints().insert(ep, SigningKey{KeyKind::kHmac, key});
  return ep;
}

Message add_message(Session& s, const std::string& app_id, const std::string& payload, TimeMs now,
                    const std::string& event_type, std::optional<std::string> event_id) {
  Message m;
  m.id = new_id(kMessagePrefix, now);
  m.app_id = app_id;
  m.event_id = std::move(event_id);
  m.event_type = event_type;
  m.payload = payload;
  m.timestamp = now;
  s.messages().insert(m);
  return m;
}

Delivery add_delivery(Session& s, const Message& m, const std::string& endpoint_id, TimeMs now,
                      DeliveryStatus status, std::optional<TimeMs> due, TriggerType trigger) {
  Delivery d;
  d.id = new_id(kDeliveryPrefix, now);
  d.app_id = m.app_id;
  d.msg_id = m.id;
  d.endpoint_id = endpoint_id;
  d.status = status;
  d.next_attempt_at = due.value_or(now);
  d.trigger = trigger;
  d.created_at = d.updated_at = now;
  s.deliveries().insert(d);
  return d;
}

std::string id_at(std::string_view prefix, TimeMs t, int n) {
  static constexpr std::string_view kDigits =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string id = id_lower_bound(prefix, t);
  int carry = n;
  for (size_t i = id.size(); carry > 0 && i-- > prefix.size() + 1;) {
    const int v = static_cast<int>(kDigits.find(id[i])) + carry;
    id[i] = kDigits[static_cast<size_t>(v % 62)];
    carry = v / 62;
  }
  REQUIRE(is_id_with_prefix(id, prefix));
  REQUIRE(id >= id_lower_bound(prefix, t));
  REQUIRE(id < id_lower_bound(prefix, t + 1));
  return id;
}

}  // namespace herald::test
