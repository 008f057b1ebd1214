// /api/v1/app/{app}/msg: publishing messages, reading them back, resending.
#include "api/errors.h"
#include "api/json_mapping.h"
#include "api/raw_json.h"
#include "api/server.h"
#include "core/fanout.h"
#include "core/ids.h"
#include "core/time_format.h"
#include "db/app_store.h"
#include "db/delivery_store.h"
#include "db/endpoint_store.h"
#include "db/message_store.h"
#include "db/pool.h"
#include "db/sqlite.h"
#include "db/write_batcher.h"

#include <httplib.h>

namespace herald {
namespace {

using json = nlohmann::ordered_json;

constexpr size_t kMaxChannels = 10;
constexpr size_t kMaxTags = 10;

std::optional<std::vector<std::string>> read_names(BodyReader& r, const char* field,
                                                   size_t max_items) {
  auto names = r.opt_string_list(field, max_items, 128);
  if (names) {
    for (const auto& n : *names) {
      if (!valid_name(n)) {
        r.error(field, "'" + n + "' is not a valid name (A-Z a-z 0-9 _ . -)");
        break;
      }
    }
    if (names->empty()) names.reset();
  }
  return names;
}

// `raw` is the request body as sent; the payload's own bytes are cut out of it.
Message read_message_body(const JsonIn& body, std::string_view raw) {
  BodyReader r(body);
  Message m;
  m.event_type = r.req_string("eventType");
  if (!m.event_type.empty() && !valid_name(m.event_type)) {
    r.error("eventType", "must be 1 to 256 of A-Z a-z 0-9 _ . -");
  }
  m.event_id = r.opt_string("eventId");
  if (m.event_id && m.event_id->empty()) r.error("eventId", "must not be empty");
  m.channels = read_names(r, "channels", kMaxChannels);
  m.tags = read_names(r, "tags", kMaxTags);
  if (!r.present("payload")) {
    r.error("payload", "field required", "value_error.missing");
  } else if (!body["payload"].is_object()) {
    r.error("payload", "must be a JSON object", "type_error.dict");
  } else {
    // The payload is stored, signed and delivered byte for byte as the producer sent it: no
    // re-formatted numbers, no lost precision.
    auto text = raw_member(raw, "payload");
    m.payload = text ? std::string(*text) : body["payload"].dump();
  }
  r.finish();
  return m;
}

// Resolves the app of a message create; creates it when the body carries an `application`
// and the path names a uid that does not exist yet (Svix's behaviour).
Application app_for_message(Connection& c, ApiRequest& r, TimeMs now) {
  const std::string key = r.param(1);
  if (auto app = AppStore(c).get(key)) {
    if (r.caller.app_id && *r.caller.app_id != app->id) throw not_found("application");
    return *app;
  }
  const JsonIn* in =
      r.body.is_object() && r.body.contains("application") && r.body["application"].is_object()
          ? &r.body["application"]
          : nullptr;
  if (in == nullptr || !r.caller.is_admin() || !valid_uid(key)) throw not_found("application");
  BodyReader ar(*in);
  Application app;
  app.name = ar.req_string("name");
  ar.finish();
  app.uid = key;
  app.id = new_id(kAppPrefix, now);
  app.created_at = app.updated_at = now;
  AppStore(c).insert(app);
  return app;
}

std::optional<std::vector<std::string>> comma_list(const std::optional<std::string>& v) {
  if (!v || v->empty()) return std::nullopt;
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= v->size()) {
    size_t comma = v->find(',', start);
    std::string item =
        v->substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

void register_message_routes(ApiServer& s) {
  const std::string base = "/api/v1/app/([^/]+)/msg";
  const std::string one = base + "/([^/]+)";

  s.route("POST", base + "/?", [&s](ApiRequest& r) {
    Message m = read_message_body(r.body, r.http.body);
    const bool with_content = r.query_bool("with_content", true);
    TimeMs now = s.clock().now_ms();
    // Group commit: this message and its deliveries share a transaction with other requests'
    // messages; the 202 goes out only once that transaction is durable.
    s.writer().run([&](Connection& c) {
      Application app = app_for_message(c, r, now);
      MessageStore messages(c);
      if (m.event_id && messages.get(app.id, *m.event_id)) {
        throw conflict("a message with eventId '" + *m.event_id + "' exists");
      }
      m.id = new_id(kMessagePrefix, now);
      m.app_id = app.id;
      m.timestamp = now;
      messages.insert(m);
      DeliveryStore deliveries(c);
      for (const auto& ep : EndpointStore(c).enabled_for_app(app.id)) {
        if (!endpoint_accepts(ep, m.event_type, m.channels)) continue;
        Delivery d;
        d.id = new_id(kDeliveryPrefix, now);
        d.app_id = app.id;
        d.msg_id = m.id;
        d.endpoint_id = ep.id;
        d.status = DeliveryStatus::kPending;
        d.next_attempt_at = now;
        d.created_at = d.updated_at = now;
        deliveries.insert(d);
      }
    });
    s.count_accepted();
    s.wake_scheduler();
    return ApiReply{202, to_json(m, with_content)};
  });

  s.route("GET", base + "/?", [&s](ApiRequest& r) {
    auto p = r.list_params();
    MessageFilter f;
    f.event_types = comma_list(r.query("event_types"));
    f.channel = r.query("channel");
    f.before = r.query_time("before");
    f.after = r.query_time("after");
    const bool with_content = r.query_bool("with_content", true);
    auto conn = s.db().acquire();
    Application app = load_app(*conn, r.caller, r.param(1));
    auto page = MessageStore(*conn).list(app.id, p, f);
    json data = json::array();
    for (const auto& m : page.items) data.push_back(to_json(m, with_content));
    std::string first = page.items.empty() ? "" : page.items.front().id;
    std::string last = page.items.empty() ? "" : page.items.back().id;
    return ApiReply{200, list_json(std::move(data), first, last, page.done, p)};
  });

  s.route("GET", one + "/?", [&s](ApiRequest& r) {
    const bool with_content = r.query_bool("with_content", true);
    auto conn = s.db().acquire();
    Application app = load_app(*conn, r.caller, r.param(1));
    auto m = MessageStore(*conn).get(app.id, r.param(2));
    if (!m) throw not_found("message");
    return ApiReply{200, to_json(*m, with_content)};
  });

  // The message's delivery state per endpoint.
  s.route("GET", one + "/endpoint/?", [&s](ApiRequest& r) {
    auto conn = s.db().acquire();
    Application app = load_app(*conn, r.caller, r.param(1));
    auto m = MessageStore(*conn).get(app.id, r.param(2));
    if (!m) throw not_found("message");
    EndpointStore endpoints(*conn);
    json data = json::array();
    for (const auto& d : DeliveryStore(*conn).for_message(m->id)) {
      auto ep = endpoints.get(app.id, d.endpoint_id);
      if (!ep) continue;
      json j = to_json(*ep);
      j["status"] = static_cast<int>(d.status);
      j["statusText"] = status_text(d.status);
      j["nextAttempt"] = d.status == DeliveryStatus::kPending
                             ? json(format_rfc3339(d.next_attempt_at))
                             : json(nullptr);
      data.push_back(std::move(j));
    }
    return ApiReply{
        200,
        json{{"data", data}, {"iterator", nullptr}, {"prevIterator", nullptr}, {"done", true}}};
  });

  s.route("POST", one + "/endpoint/([^/]+)/resend/?", [&s](ApiRequest& r) {
    TimeMs now = s.clock().now_ms();
    {
      auto conn = s.db().acquire();
      Transaction tx(*conn);
      Application app = load_app(*conn, r.caller, r.param(1));
      auto m = MessageStore(*conn).get(app.id, r.param(2));
      if (!m) throw not_found("message");
      auto ep = EndpointStore(*conn).get(app.id, r.param(3));
      if (!ep) throw not_found("endpoint");
      if (ep->disabled) throw conflict("the endpoint is disabled");
      Delivery d;
      d.id = new_id(kDeliveryPrefix, now);
      d.app_id = app.id;
      d.msg_id = m->id;
      d.endpoint_id = ep->id;
      d.status = DeliveryStatus::kPending;
      d.next_attempt_at = now;
      d.trigger = TriggerType::kManual;
      d.created_at = d.updated_at = now;
      DeliveryStore(*conn).insert(d);
      tx.commit();
    }
    s.wake_scheduler();
    return ApiReply{202, json::object()};
  });
}

}  // namespace herald
