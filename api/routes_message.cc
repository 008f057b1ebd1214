// /api/v1/app/{app}/msg: publishing messages, reading them back, resending.
#include <algorithm>
#include <map>
#include <vector>

#include "api/errors.h"
#include "api/json_mapping.h"
#include "api/raw_json.h"
#include "api/server.h"
#include "core/ids.h"
#include "core/time_format.h"
#include "db/app_store.h"
#include "db/database.h"
#include "db/delivery_store.h"
#include "db/endpoint_store.h"
#include "db/enqueue.h"
#include "db/event_type_store.h"
#include "db/message_store.h"
#include "db/session.h"
#include "db/tasks.h"
#include "db/write_batcher.h"

namespace herald {
namespace {

using json = nlohmann::ordered_json;

constexpr size_t kMaxChannels = 10;
constexpr size_t kMaxTags = 10;
// How far ahead a message may be scheduled (deliverAt), as on Svix.
constexpr TimeMs kMaxScheduleAheadMs = 24LL * 3600 * 1000;
// Messages one bulk-expunge may name.
constexpr size_t kMaxBulkExpunge = 1000;

// Channels and tags: at most 128 characters each.
constexpr size_t kMaxLabelLength = 128;

// The required `eventType` of a request body.
std::string read_event_type(BodyReader& r) {
  std::string event_type = r.req_string("eventType");
  if (!event_type.empty() && !valid_name(event_type)) {
    r.error("eventType", "must be 1 to 256 of A-Z a-z 0-9 _ . -");
  }
  return event_type;
}

// `raw` is the request body as sent; the payload's own bytes are cut out of it. `now`: when
// the request came, for deliverAt.
Message read_message_body(const JsonIn& body, std::string_view raw, TimeMs now) {
  BodyReader r(body);
  Message m;
  m.event_type = read_event_type(r);
  m.event_id = r.opt_string("eventId");
  if (m.event_id && m.event_id->empty()) r.error("eventId", "must not be empty");
  m.channels = r.opt_name_list("channels", kMaxChannels, kMaxLabelLength);
  m.tags = r.opt_name_list("tags", kMaxTags, kMaxLabelLength);
  if (auto at = r.opt_string("deliverAt", 64)) {
    // A time already past is delivered at once: a clock a little behind the producer's must
    // not make a message fail.
    m.deliver_at = parse_rfc3339(*at);
    if (!m.deliver_at) {
      r.error("deliverAt", "must be an RFC 3339 date-time");
    } else if (*m.deliver_at > now + kMaxScheduleAheadMs) {
      r.error("deliverAt", "must be at most 24 hours ahead");
    }
  }
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
Application app_for_message(Session& c, ApiRequest& r, TimeMs now) {
  const std::string key = r.param(1);
  if (auto app = c.apps().get(key)) {
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
  c.apps().insert(app);
  return app;
}

// herald's extension of a message: its endpoints counted by their latest delivery's state,
// and the overall state that the list's `status` filter matches (null without deliveries).
void add_summary(json& j, const std::optional<DeliveryStats>& s) {
  DeliveryStats counts = s.value_or(DeliveryStats{});
  j["deliveries"] = json{{"success", counts.success},
                         {"pending", counts.pending},
                         {"sending", counts.sending},
                         {"fail", counts.fail}};
  auto overall = counts.overall();
  j["deliveryStatus"] = overall ? json(static_cast<int>(*overall)) : json(nullptr);
}

// A delivery's state as Svix shows it beside an endpoint or a message: status, statusText and
// nextAttempt (pending only).
void add_delivery_state(json& j, const Delivery& d, TimeMs now) {
  j["status"] = static_cast<int>(d.status);
  j["statusText"] = status_text(d.status);
  // A parked delivery (its endpoint has no room yet) has no time of its own: it goes as soon
  // as the endpoint has room, so it reads as due now.
  const TimeMs next = d.next_attempt_at > 0 ? d.next_attempt_at : now;
  j["nextAttempt"] =
      d.status == DeliveryStatus::kPending ? json(format_rfc3339(next)) : json(nullptr);
}

// The filters a message list reads from its query.
MessageFilter read_message_filter(const ApiRequest& r) {
  MessageFilter f;
  f.event_types = r.query_list("event_types");
  f.channel = r.query("channel");
  f.tag = r.query("tag");
  f.before = r.query_time("before");
  f.after = r.query_time("after");
  f.status = r.query_status("status");
  return f;
}

// The payload of a test event when none is given: the event type's first schema example if
// it has one (Svix's behaviour), else a small documented default.
std::string example_payload(Session& c, const std::string& event_type, TimeMs now) {
  if (auto et = c.event_types().get(event_type); et && et->schemas_json) {
    json schemas = json::parse(*et->schemas_json, nullptr, false);
    if (schemas.is_object()) {
      for (const auto& [version, schema] : schemas.items()) {
        if (schema.is_object() && schema.contains("examples") && schema["examples"].is_array() &&
            !schema["examples"].empty() && schema["examples"][0].is_object()) {
          return schema["examples"][0].dump();
        }
      }
    }
  }
  return json{{"type", event_type},
              {"test", true},
              {"message", "a test event sent by herald"},
              {"sentAt", format_rfc3339(now)}}
      .dump();
}

// The application's endpoint `key` (id or uid): 404 when there is none, 409 when disabled.
Endpoint enabled_endpoint(Session& c, const Application& app, const std::string& key) {
  auto ep = c.endpoints().get(app.id, key);
  if (!ep) throw not_found("endpoint");
  if (ep->disabled) throw conflict("the endpoint is disabled");
  return *ep;
}

}  // namespace

void register_message_routes(ApiServer& s) {
  const std::string base = "/api/v1/app/([^/]+)/msg";
  const std::string one = base + "/([^/]+)";

  s.route("POST", base + "/?", [&s](ApiRequest& r) {
    TimeMs now = s.clock().now_ms();
    Message m = read_message_body(r.body, r.http.body, now);
    if (auto refusal = s.intake_refusal()) return *refusal;
    const bool with_content = r.query_bool("with_content", true);
    // Group commit: this message and its deliveries share a transaction with other requests'
    // messages; the 202 goes out only once that transaction is durable.
    s.writer().run([&](Session& c) {
      Application app = app_for_message(c, r, now);
      if (m.event_id && c.messages().get(app.id, *m.event_id)) {
        throw conflict("a message with eventId '" + *m.event_id + "' exists");
      }
      m.id = new_id(kMessagePrefix, now);
      m.app_id = app.id;
      m.timestamp = now;
      s.enqueuer().publish(c, m, app.endpoints_version);
    });
    s.count_accepted();
    return ApiReply{202, to_json(m, with_content)};
  });

  // Svix's precheck: would a message of this event type (and channels) reach any endpoint?
  s.route("POST", base + "/precheck/active/?", [&s](ApiRequest& r) {
    BodyReader b(r.body);
    const std::string event_type = read_event_type(b);
    const auto channels = b.opt_name_list("channels", kMaxChannels, kMaxLabelLength);
    b.finish();
    auto session = s.db().session();
    const Application app = load_app(*session, r.caller, r.param(1));
    const bool active = s.enqueuer().would_deliver(*session, app.id, event_type, channels);
    return ApiReply{200, json{{"active", active}}};
  });

  s.route("GET", base + "/?", [&s](ApiRequest& r) {
    auto p = r.list_params(kMessagePrefix);
    const MessageFilter f = read_message_filter(r);
    const bool with_content = r.query_bool("with_content", true);
    auto session = s.db().session();
    Application app = load_app(*session, r.caller, r.param(1));
    auto page = session->messages().list(app.id, p, f);
    std::vector<std::string> ids;
    for (const auto& m : page.items) ids.push_back(m.id);
    auto summaries = session->deliveries().summaries(ids);
    json data = json::array();
    for (const auto& m : page.items) {
      json j = to_json(m, with_content);
      auto it = summaries.find(m.id);
      add_summary(j, it == summaries.end() ? std::nullopt : std::optional(it->second));
      data.push_back(std::move(j));
    }
    std::string first = page.items.empty() ? "" : page.items.front().id;
    std::string last = page.items.empty() ? "" : page.items.back().id;
    return ApiReply{200, list_json(std::move(data), first, last, page.done, p)};
  });

  s.route("GET", one + "/?", [&s](ApiRequest& r) {
    const bool with_content = r.query_bool("with_content", true);
    auto session = s.db().session();
    Application app = load_app(*session, r.caller, r.param(1));
    auto m = session->messages().get(app.id, r.param(2));
    if (!m) throw not_found("message");
    return ApiReply{200, to_json(*m, with_content)};
  });

  // The message's delivery state per endpoint.
  // Svix's listAttemptedMessages: the messages sent to an endpoint, newest first, each with the
  // state of its latest delivery there (which the status filter matches).
  s.route("GET", "/api/v1/app/([^/]+)/endpoint/([^/]+)/msg/?", [&s](ApiRequest& r) {
    const auto p = r.list_params(kMessagePrefix);
    MessageFilter f = read_message_filter(r);
    const bool with_content = r.query_bool("with_content", true);
    auto session = s.db().session();
    const Application app = load_app(*session, r.caller, r.param(1));
    const auto ep = session->endpoints().get(app.id, r.param(2));
    if (!ep) throw not_found("endpoint");
    f.endpoint_id = ep->id;
    const auto page = session->messages().list(app.id, p, f);
    const TimeMs now = s.clock().now_ms();
    json data = json::array();
    for (const auto& m : page.items) {
      json j = to_json(m, with_content);
      std::optional<Delivery> latest;
      for (auto& d : session->deliveries().for_message(m.id)) {
        if (d.endpoint_id == ep->id && (!latest || d.id > latest->id)) latest = std::move(d);
      }
      if (latest) add_delivery_state(j, *latest, now);
      data.push_back(std::move(j));
    }
    const std::string first = page.items.empty() ? "" : page.items.front().id;
    const std::string last = page.items.empty() ? "" : page.items.back().id;
    return ApiReply{200, list_json(std::move(data), first, last, page.done, p)};
  });

  // Svix's listAttemptedDestinations: each endpoint the message went to, with the state of
  // its latest delivery there (a resend supersedes what it repeats), by endpoint id.
  s.route("GET", one + "/endpoint/?", [&s](ApiRequest& r) {
    const auto p = r.list_params(kEndpointPrefix);
    auto session = s.db().session();
    Application app = load_app(*session, r.caller, r.param(1));
    auto m = session->messages().get(app.id, r.param(2));
    if (!m) throw not_found("message");
    std::map<std::string, Delivery> latest;  // by endpoint id
    for (auto& d : session->deliveries().for_message(m->id)) {
      auto [it, added] = latest.try_emplace(d.endpoint_id, d);
      if (!added && d.id > it->second.id) it->second = std::move(d);
    }
    std::vector<const Delivery*> page;
    for (const auto& [endpoint_id, d] : latest) {
      if (p.cursor && (p.backwards ? endpoint_id >= *p.cursor : endpoint_id <= *p.cursor)) {
        continue;
      }
      page.push_back(&d);
    }
    const bool done = static_cast<int>(page.size()) <= p.limit;
    if (!done) {
      // Backwards, the page is the `limit` just before the cursor.
      const auto cut = static_cast<std::ptrdiff_t>(page.size()) - p.limit;
      page.erase(p.backwards ? page.begin() : page.begin() + p.limit,
                 p.backwards ? page.begin() + cut : page.end());
    }
    EndpointStore& endpoints = session->endpoints();
    json data = json::array();
    for (const Delivery* dp : page) {
      const Delivery& d = *dp;
      auto ep = endpoints.get(app.id, d.endpoint_id);
      if (!ep) continue;
      json j = to_json(*ep);
      add_delivery_state(j, d, s.clock().now_ms());
      data.push_back(std::move(j));
    }
    const std::string first = page.empty() ? "" : page.front()->endpoint_id;
    const std::string last = page.empty() ? "" : page.back()->endpoint_id;
    return ApiReply{200, list_json(std::move(data), first, last, done, p)};
  });

  // Svix's expungeContent: the payload is deleted; the message reads as payloadExpired and
  // its deliveries not yet made end failed (DELIVERY.md#expunging).
  s.route("DELETE", one + "/content/?", [&s](ApiRequest& r) {
    auto session = s.db().begin();
    const Application app = load_app(*session, r.caller, r.param(1));
    if (session->messages().expunge(app.id, {r.param(2)}, s.clock().now_ms()).empty()) {
      throw not_found("message");
    }
    session->commit();
    return ApiReply{204, {}};
  });

  // Svix's bulkExpungeContent: expunges each of `ids` (ids or eventIds) at once, in one
  // transaction; each reads "expunged" or "not-found".
  s.route("POST", base + "/bulk-expunge/?", [&s](ApiRequest& r) {
    BodyReader body(r.body);
    const auto keys =
        body.opt_string_list("ids", kMaxBulkExpunge, 256).value_or(std::vector<std::string>{});
    body.finish();
    auto session = s.db().begin();
    const Application app = load_app(*session, r.caller, r.param(1));
    const auto found = session->messages().expunge(app.id, keys, s.clock().now_ms());
    session->commit();
    json results = json::object();
    for (const auto& key : keys) results[key] = found.contains(key) ? "expunged" : "not-found";
    return ApiReply{200, json{{"results", std::move(results)}}};
  });

  // Svix's expungeAllContents: a task that expunges every message of the application made
  // before it.
  s.route("POST", base + "/expunge-all-contents/?", [&s](ApiRequest& r) {
    std::string app_id;
    {
      auto session = s.db().session();
      app_id = load_app(*session, r.caller, r.param(1)).id;
    }
    return s.start_task(purge_content_task(app_id, s.clock().now_ms()));
  });

  s.route("POST", one + "/endpoint/([^/]+)/resend/?", [&s](ApiRequest& r) {
    if (auto refusal = s.intake_refusal()) return *refusal;
    {
      auto session = s.db().begin();
      Application app = load_app(*session, r.caller, r.param(1));
      auto m = session->messages().get(app.id, r.param(2));
      if (!m) throw not_found("message");
      Endpoint ep = enabled_endpoint(*session, app, r.param(3));
      s.enqueuer().redeliver(*session, *m, ep.id);
      session->commit();
    }
    return ApiReply{202, json::object()};
  });

  // Svix's send-example: a new message of `eventType` delivered to this one endpoint only,
  // whatever its filters. `payload` (herald's) replaces the example payload.
  s.route("POST", "/api/v1/app/([^/]+)/endpoint/([^/]+)/send-example/?", [&s](ApiRequest& r) {
    if (auto refusal = s.intake_refusal()) return *refusal;
    BodyReader body(r.body);
    Message m;
    m.event_type = read_event_type(body);
    body.opt_int("exampleIndex", 0, 1000);  // Svix's; only the first example is used
    if (const JsonIn* payload = body.raw("payload")) {
      if (!payload->is_object()) {
        body.error("payload", "must be a JSON object", "type_error.dict");
      } else {
        auto text = raw_member(r.http.body, "payload");
        m.payload = text ? std::string(*text) : payload->dump();
      }
    }
    body.finish();
    TimeMs now = s.clock().now_ms();
    {
      auto session = s.db().begin();
      Application app = load_app(*session, r.caller, r.param(1));
      Endpoint ep = enabled_endpoint(*session, app, r.param(2));
      if (m.payload.empty()) m.payload = example_payload(*session, m.event_type, now);
      m.id = new_id(kMessagePrefix, now);
      m.app_id = app.id;
      m.timestamp = now;
      s.enqueuer().publish_to(*session, m, ep.id);
      session->commit();  // the message and its one delivery are durable together
    }
    return ApiReply{202, to_json(m, true)};
  });
}

}  // namespace herald
