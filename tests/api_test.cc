// Tests of herald's REST API: the JSON mapping and validation helpers on their own, then the
// routes over HTTP against a real ApiServer on a loopback port and the store under test
// (tests/support/store.h).
#include <doctest/doctest.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/errors.h"
#include "api/json_mapping.h"
#include "api/openapi_document.h"
#include "api/server.h"
#include "api/tokens.h"
#include "core/ascii.h"
#include "core/clock.h"
#include "core/encoding.h"
#include "core/headers.h"
#include "core/ids.h"
#include "core/metrics.h"
#include "core/signing.h"
#include "core/types.h"
#include "db/attempt_store.h"
#include "db/database.h"
#include "db/delivery_store.h"
#include "db/message_store.h"
#include "db/queue_store.h"
#include "db/session.h"
#include "db/token_store.h"
#include "tests/support/raw_client.h"
#include "tests/support/store.h"
#include "tests/support/wait.h"
#include "web/portal.h"

using namespace herald;
using nlohmann::json;

namespace {

constexpr const char* kAdminToken = "admin_test_token_0123456789";
constexpr TimeMs kStart = 1'700'000'000'000;  // 2023-11-14T22:13:20.000Z
constexpr const char* kStartText = "2023-11-14T22:13:20.000Z";
constexpr size_t kMaxPayload = 64 * 1024;

std::string bearer(const std::string& token) {
  return "Bearer " + token;
}

// What came back from one request.
struct Reply {
  int status = 0;
  std::string body;
  std::string content_type;
  json j;  // the parsed body; null when empty or not JSON
  bool is_json = false;
};

ApiOptions options_with_limit(size_t max_payload_bytes) {
  ApiOptions options;
  options.max_payload_bytes = max_payload_bytes;
  return options;
}

// A fresh database of the store under test, a manual clock at kStart, an admin token and an
// ApiServer serving on a free loopback port from its own thread. No queue listener: messages
// leave their deliveries pending. Stops and joins the server on destruction.
class ApiFixture {
 public:
  explicit ApiFixture(size_t max_payload_bytes = kMaxPayload)
      : ApiFixture(options_with_limit(max_payload_bytes)) {}
  // `with_portal`: the portal's routes are served too.
  explicit ApiFixture(const ApiOptions& options, bool with_portal = false)
      : clock(kStart), db(store_.open(8)) {
    ensure_admin_token(*db, clock, kAdminToken);
    api_ = std::make_unique<ApiServer>(*db, clock, options);
    if (with_portal) register_portal_routes(*api_);
    port_ = api_->bind("127.0.0.1", 0);
    REQUIRE(port_ > 0);
    // The socket listens once bound: requests wait in its backlog until listen() accepts them.
    thread_ = std::thread([this] { api_->listen(); });
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client_->set_read_timeout(10, 0);
  }
  ~ApiFixture() {
    // A stop() before listen() has begun would be missed (and the join would hang).
    CHECK_MESSAGE(test::wait_until([this] { return api_->running(); }),
                  "the API server did not start");
    api_->stop();
    if (thread_.joinable()) thread_.join();
  }
  ApiFixture(const ApiFixture&) = delete;
  ApiFixture& operator=(const ApiFixture&) = delete;

  // Sends one request. `auth` is the whole Authorization header value (none when nullopt);
  // a non-empty `body` goes out as application/json unless `extra` names a Content-Type.
  Reply call(const std::string& method, const std::string& path, const std::string& body = "",
             const std::optional<std::string>& auth = bearer(kAdminToken),
             const httplib::Headers& extra = {}) {
    httplib::Request req;
    req.method = method;
    req.path = path;
    req.headers = extra;
    if (auth) req.headers.emplace("Authorization", *auth);
    if (!body.empty()) {
      req.body = body;
      if (!req.has_header("Content-Type")) req.headers.emplace("Content-Type", "application/json");
    }
    auto res = client_->send(req);
    REQUIRE_MESSAGE(res, method << " " << path << ": " << httplib::to_string(res.error()));
    Reply r;
    r.status = res->status;
    r.body = res->body;
    r.content_type = res->get_header_value("Content-Type");
    if (!r.body.empty()) {
      r.j = json::parse(r.body, nullptr, false);
      r.is_json = !r.j.is_discarded();
      if (!r.is_json) r.j = json();
    }
    return r;
  }
  Reply get(const std::string& path) { return call("GET", path); }
  Reply post(const std::string& path, const json& body) { return call("POST", path, body.dump()); }
  Reply put(const std::string& path, const json& body) { return call("PUT", path, body.dump()); }
  Reply patch(const std::string& path, const json& body) {
    return call("PATCH", path, body.dump());
  }
  Reply del(const std::string& path) { return call("DELETE", path); }
  int port() const { return port_; }
  ApiServer& api() { return *api_; }

  // Creates an application and returns its JSON.
  json make_app(const std::string& name, const std::optional<std::string>& uid = std::nullopt) {
    json body{{"name", name}};
    if (uid) body["uid"] = *uid;
    Reply r = post("/api/v1/app", body);
    REQUIRE_MESSAGE(r.status == 201, r.body);
    return r.j;
  }
  // Creates an endpoint in `app` from `body` and returns its JSON.
  json make_endpoint(const std::string& app, const json& body) {
    Reply r = post("/api/v1/app/" + app + "/endpoint", body);
    REQUIRE_MESSAGE(r.status == 201, r.body);
    return r.j;
  }
  // Publishes a message to `app` and returns its JSON.
  json make_message(const std::string& app, const json& body) {
    Reply r = post("/api/v1/app/" + app + "/msg", body);
    REQUIRE_MESSAGE(r.status == 202, r.body);
    return r.j;
  }

  // The `data` of a list (limit 250: everything a test makes).
  json list(const std::string& path) {
    Reply r = get(path + (path.find('?') == std::string::npos ? "?" : "&") + "limit=250");
    REQUIRE_MESSAGE(r.status == 200, path << ": " << r.body);
    REQUIRE(r.j["data"].is_array());
    return r.j["data"];
  }
  size_t app_count() { return list("/api/v1/app").size(); }

  // Everything the API shows: apps, their endpoints (with secret and headers) and messages,
  // and the event types. Two equal snapshots mean nothing visible changed.
  json snapshot() {
    json out{{"apps", list("/api/v1/app")},
             {"eventTypes", list("/api/v1/event-type?include_archived=true")}};
    for (const auto& app : out["apps"]) {
      const std::string base = "/api/v1/app/" + app["id"].get<std::string>();
      json endpoints = list(base + "/endpoint");
      for (auto& ep : endpoints) {
        const std::string ep_path = base + "/endpoint/" + ep["id"].get<std::string>();
        ep["secret"] = get(ep_path + "/secret").j;
        ep["headers"] = get(ep_path + "/headers").j;
      }
      out["endpoints"][app["id"].get<std::string>()] = endpoints;
      out["messages"][app["id"].get<std::string>()] = list(base + "/msg");
    }
    return out;
  }

  // The delivery rows of a message, straight from the database.
  std::vector<Delivery> deliveries(const std::string& msg_id) {
    return db->session()->deliveries().for_message(msg_id);
  }

  // Stores a token scoped to `app_id` and returns its text.
  std::string add_app_token(const std::string& app_id, std::optional<TimeMs> expires_at) {
    std::string text = new_token_text("sk_app");
    TimeMs now = clock.now_ms();
    db->session()->tokens().insert(TokenRecord{new_id(kTokenPrefix, now), sha256(text), app_id,
                                               "scoped", now, expires_at, false, std::nullopt});
    return text;
  }

 private:
  test::TestStore store_;  // first: outlives the database that lives in it

 public:
  ManualClock clock;
  std::unique_ptr<Database> db;

 private:
  std::unique_ptr<ApiServer> api_;
  int port_ = -1;
  std::thread thread_;
  std::unique_ptr<httplib::Client> client_;
};

// Gives delivery `id` `status` as the scheduler would: claims what is due (it must be among
// it), ends its claim with `status` after one more attempt (kSending: leaves it claimed) and
// puts the rest back, due now.
void set_status(ApiFixture& f, const std::string& id, DeliveryStatus status) {
  constexpr int64_t kLeaseMs = 60'000;
  const TimeMs now = f.clock.now_ms();
  auto s = f.db->begin();
  std::vector<DeliveryUpdate> updates;
  bool found = false;
  for (const auto& d : s->queue().claim(now, kLeaseMs, 1000)) {
    if (d.id != id) {
      updates.push_back({d.id, DeliveryStatus::kPending, d.attempts, now, d.claim});
      continue;
    }
    found = true;
    if (status != DeliveryStatus::kSending) {
      updates.push_back({d.id, status, d.attempts + 1, std::nullopt, d.claim});
    }
  }
  REQUIRE_MESSAGE(found, "delivery " << id << " is not due");
  s->queue().complete(updates, now);
  s->commit();
}

bool is_rfc3339_utc(const json& v) {
  if (!v.is_string()) return false;
  const auto& s = v.get_ref<const std::string&>();
  return s.size() == 24 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' &&
         s[16] == ':' && s[19] == '.' && s.back() == 'Z';
}

// Checks a JSON error response: `status`, a JSON content type, `code`, a detail string.
void check_error(const Reply& r, int status, const std::string& code) {
  INFO("response: " << r.status << " " << r.body);
  CHECK(r.status == status);
  CHECK(r.content_type.find("application/json") == 0);
  REQUIRE(r.is_json);
  REQUIRE(r.j.is_object());
  CHECK(r.j["code"] == code);
  CHECK(r.j["detail"].is_string());
}

// Checks a 422 {detail: [{loc, msg, type}]} with one entry at `loc`.
void check_validation(const Reply& r, const json& loc) {
  INFO("response: " << r.status << " " << r.body);
  CHECK(r.status == 422);
  CHECK(r.content_type.find("application/json") == 0);
  REQUIRE(r.is_json);
  REQUIRE(r.j.is_object());
  REQUIRE(r.j["detail"].is_array());
  CHECK_FALSE(r.j["detail"].empty());
  bool found = false;
  for (const auto& d : r.j["detail"]) {
    CHECK(d["loc"].is_array());
    CHECK(d["msg"].is_string());
    CHECK(d["type"].is_string());
    if (d["loc"] == loc) found = true;
  }
  CHECK_MESSAGE(found, "no detail at " << loc.dump());
}

// The 422 details BodyReader produces for `body` after `read` ran; empty when it accepted.
json reader_errors(const json& body, const std::function<void(BodyReader&)>& read) {
  try {
    BodyReader r(body);
    read(r);
    r.finish();
  } catch (const ApiError& e) {
    CHECK(e.status() == 422);
    json b = e.body();
    REQUIRE(b["detail"].is_array());
    return b["detail"];
  }
  return json::array();
}

std::vector<json> locs(const json& details) {
  std::vector<json> out;
  for (const auto& d : details) out.push_back(d["loc"]);
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// JSON mapping

TEST_CASE("to_json(Application) uses Svix names, null uid and throttleRate only when set") {
  Application a;
  a.id = "app_2Uvq8dj3X1Rm6qLrTmC0bA";
  a.name = "Acme";
  a.metadata = {{"tier", "gold"}};
  a.created_at = kStart;
  a.updated_at = kStart + 1'500;

  json j = to_json(a);
  CHECK(j["id"] == a.id);
  CHECK(j["name"] == "Acme");
  CHECK(j.contains("uid"));
  CHECK(j["uid"].is_null());
  CHECK(j["metadata"] == json{{"tier", "gold"}});
  CHECK(j["createdAt"] == kStartText);
  CHECK(j["updatedAt"] == "2023-11-14T22:13:21.500Z");
  CHECK_FALSE(j.contains("throttleRate"));
  CHECK_FALSE(j.contains("created_at"));

  a.uid = "acme";
  a.throttle_rate = 25;
  j = to_json(a);
  CHECK(j["uid"] == "acme");
  CHECK(j["throttleRate"] == 25);
}

TEST_CASE("to_json(Endpoint) uses Svix names and leaves optional fields out or null") {
  Endpoint e;
  e.id = "ep_2Uvq8dj3X1Rm6qLrTmC0bA";
  e.app_id = "app_2Uvq8dj3X1Rm6qLrTmC0bA";
  e.url = "https://example.com/hook";
  e.description = "main";
  e.created_at = e.updated_at = kStart;

  json j = to_json(e);
  CHECK(j["id"] == e.id);
  CHECK(j["url"] == e.url);
  CHECK(j["description"] == "main");
  CHECK(j["disabled"] == false);
  CHECK(j["uid"].is_null());
  CHECK(j["eventTypes"].is_null());
  CHECK(j["filterTypes"].is_null());
  CHECK(j["channels"].is_null());
  CHECK(j["metadata"] == json::object());
  CHECK(j["createdAt"] == kStartText);
  CHECK(j["updatedAt"] == kStartText);
  CHECK(j["version"] == 1);
  CHECK_FALSE(j.contains("throttleRate"));
  CHECK_FALSE(j.contains("disabledReason"));
  CHECK_FALSE(j.contains("headers"));  // custom headers have their own route
  CHECK_FALSE(j.contains("secret"));

  e.uid = "main";
  e.event_types = std::vector<std::string>{"user.created", "user.deleted"};
  e.channels = std::vector<std::string>{"eu"};
  e.throttle_rate = 7;
  e.disabled = true;
  e.disabled_reason = "410 Gone";
  e.headers = {{"X-Secret", "hidden"}};
  j = to_json(e);
  CHECK(j["uid"] == "main");
  CHECK(j["eventTypes"] == json{"user.created", "user.deleted"});
  CHECK(j["filterTypes"] == json{"user.created", "user.deleted"});
  CHECK(j["channels"] == json{"eu"});
  CHECK(j["throttleRate"] == 7);
  CHECK(j["disabled"] == true);
  CHECK(j["disabledReason"] == "410 Gone");
  CHECK(j.dump().find("hidden") == std::string::npos);
}

TEST_CASE("to_json(EventType) parses schemas and uses Svix names") {
  EventType e;
  e.name = "user.created";
  e.description = "a user signed up";
  e.created_at = e.updated_at = kStart;
  json j = to_json(e);
  CHECK(j["name"] == "user.created");
  CHECK(j["description"] == "a user signed up");
  CHECK(j["archived"] == false);
  CHECK(j["deprecated"] == false);
  CHECK(j["schemas"].is_null());
  CHECK(j["groupName"].is_null());
  CHECK(j["createdAt"] == kStartText);

  e.schemas_json = R"({"1":{"type":"object"}})";
  e.group_name = "users";
  e.archived = true;
  j = to_json(e);
  CHECK(j["schemas"] == json{{"1", {{"type", "object"}}}});
  CHECK(j["groupName"] == "users");
  CHECK(j["archived"] == true);
  CHECK(j["featureFlags"].is_null());
  CHECK(j["featureFlag"].is_null());

  // The older single featureFlag names the flag when there is just one.
  e.feature_flags = std::vector<std::string>{"beta"};
  j = to_json(e);
  CHECK(j["featureFlags"] == json::array({"beta"}));
  CHECK(j["featureFlag"] == "beta");
  e.feature_flags->push_back("gamma");
  j = to_json(e);
  CHECK(j["featureFlags"] == json::array({"beta", "gamma"}));
  CHECK(j["featureFlag"].is_null());
}

TEST_CASE("read_event_type_fields: featureFlags, the older featureFlag, and both agreeing") {
  const auto read = [](const json& body, EventType et, bool patch) {
    BodyReader r(body);
    read_event_type_fields(r, et, patch);
    r.finish();
    return et;
  };
  using Flags = std::optional<std::vector<std::string>>;
  const auto flags = [](std::vector<std::string> v) { return Flags(std::move(v)); };
  CHECK(read({{"featureFlags", {"a", "b", "a"}}}, {}, false).feature_flags == flags({"a", "b"}));
  CHECK(read({{"featureFlags", json::array()}}, {}, false).feature_flags == std::nullopt);
  CHECK(read({{"featureFlag", "solo"}}, {}, false).feature_flags == flags({"solo"}));
  CHECK(read({{"featureFlag", "a"}, {"featureFlags", {"a"}}}, {}, false).feature_flags ==
        flags({"a"}));
  EventType flagged;
  flagged.feature_flags = flags({"keep"});
  CHECK(read({{"description", "x"}}, flagged, true).feature_flags == flags({"keep"}));
  CHECK(read({{"featureFlags", nullptr}}, flagged, true).feature_flags == std::nullopt);
  CHECK(read({{"description", "x"}}, flagged, false).feature_flags == std::nullopt);  // a PUT
  const auto problem = [&](const json& body) {
    try {
      read(body, {}, false);
    } catch (const ApiError& e) {
      json b = e.body();
      return b["detail"][0]["loc"];
    }
    return json();
  };
  CHECK(problem({{"featureFlag", "a"}, {"featureFlags", {"b"}}}) == json{"body", "featureFlag"});
  CHECK(problem({{"featureFlags", {"no spaces"}}}) == json{"body", "featureFlags"});
  CHECK(problem({{"featureFlags", "beta"}}) == json{"body", "featureFlags"});
  CHECK(problem({{"featureFlag", "a b"}}) == json{"body", "featureFlag"});
}

TEST_CASE("BodyReader of a nested object locates its problems there; absorb gathers them") {
  const JsonIn item = {{"name", 5}};
  const JsonIn body = {{"list", JsonIn::array({item})}};
  BodyReader outer(body);
  BodyReader inner(item, JsonIn{"body", "list", 0});
  inner.opt_string("name");
  CHECK(inner.failed());
  outer.absorb(inner);
  outer.error_at(JsonIn{"body", "list"}, "another");
  try {
    outer.finish();
    FAIL("finish() should throw");
  } catch (const ApiError& e) {
    json b = e.body();
    const json detail = b["detail"];
    REQUIRE(detail.size() == 2);
    CHECK(detail[0]["loc"] == json{"body", "list", 0, "name"});
    CHECK(detail[1]["loc"] == json{"body", "list"});
  }
  const JsonIn three = 3;
  CHECK_THROWS_AS(BodyReader(three, JsonIn{"body", "x"}), ApiError);
}

TEST_CASE("to_json(Message) uses timestamp/eventType/eventId and hides the payload on request") {
  Message m;
  m.id = "msg_2Uvq8dj3X1Rm6qLrTmC0bA";
  m.app_id = "app_2Uvq8dj3X1Rm6qLrTmC0bA";
  m.event_type = "user.created";
  m.payload = R"({"user":{"id":42},"tags":["a"]})";
  m.timestamp = kStart + 7;

  json j = to_json(m, true);
  CHECK(j["id"] == m.id);
  CHECK(j["eventType"] == "user.created");
  CHECK(j.contains("eventId"));
  CHECK(j["eventId"].is_null());
  CHECK(j["channels"].is_null());
  CHECK(j["tags"].is_null());
  CHECK(j["timestamp"] == "2023-11-14T22:13:20.007Z");
  REQUIRE(j["payload"].is_object());
  CHECK(j["payload"] == json::parse(m.payload));
  CHECK_FALSE(j.contains("event_type"));

  m.event_id = "evt-1";
  m.channels = std::vector<std::string>{"eu"};
  j = to_json(m, false);
  CHECK(j["eventId"] == "evt-1");
  CHECK(j["channels"] == json{"eu"});
  CHECK(j["payload"] == json::object());
}

TEST_CASE("to_json(Attempt) gives status, statusText and triggerType as Svix does") {
  Attempt a;
  a.id = "atmpt_2Uvq8dj3X1Rm6qLrTmC0bA";
  a.msg_id = "msg_2Uvq8dj3X1Rm6qLrTmC0bA";
  a.endpoint_id = "ep_2Uvq8dj3X1Rm6qLrTmC0bA";
  a.url = "https://example.com/hook";
  a.response_status_code = 503;
  a.response = "try later";
  a.response_duration_ms = 120;
  a.status = DeliveryStatus::kFail;
  a.trigger = TriggerType::kManual;
  a.timestamp = kStart;

  json j = to_json(a, true);
  CHECK(j["id"] == a.id);
  CHECK(j["msgId"] == a.msg_id);
  CHECK(j["endpointId"] == a.endpoint_id);
  CHECK(j["url"] == a.url);
  CHECK(j["response"] == "try later");
  CHECK(j["responseStatusCode"] == 503);
  CHECK(j["responseDurationMs"] == 120);
  CHECK(j["status"] == 2);
  CHECK(j["statusText"] == "fail");
  CHECK(j["triggerType"] == 1);
  CHECK(j["timestamp"] == kStartText);

  a.status = DeliveryStatus::kSuccess;
  a.trigger = TriggerType::kScheduled;
  j = to_json(a, false);
  CHECK(j["response"] == "");
  CHECK(j["status"] == 0);
  CHECK(j["statusText"] == "success");
  CHECK(j["triggerType"] == 0);
  CHECK(to_json(Attempt{}, true)["statusText"] == "fail");
}

TEST_CASE("to_json(DeliveryStats) gives the four counts as numbers") {
  DeliveryStats s;
  s.success = 3;
  s.pending = 2;
  s.sending = 1;
  s.fail = 4;
  json j = to_json(s);
  CHECK(j["success"] == 3);
  CHECK(j["pending"] == 2);
  CHECK(j["sending"] == 1);
  CHECK(j["fail"] == 4);
  CHECK(j["success"].is_number_integer());
}

// ---------------------------------------------------------------------------------------------
// BodyReader

TEST_CASE("BodyReader rejects a body that is not an object at loc [body]") {
  for (const json& body : {json::array({1, 2}), json("name"), json(5), json(nullptr)}) {
    INFO("body: " << body.dump());
    bool threw = false;
    try {
      BodyReader r(body);
    } catch (const ApiError& e) {
      threw = true;
      CHECK(e.status() == 422);
      json b = e.body();
      REQUIRE(b["detail"].is_array());
      REQUIRE(b["detail"].size() == 1);
      CHECK(b["detail"][0]["loc"] == json{"body"});
      CHECK(b["detail"][0]["msg"].is_string());
      CHECK(b["detail"][0]["type"].is_string());
    }
    CHECK(threw);
  }
}

TEST_CASE("BodyReader reads valid fields and treats null as absent") {
  json body{{"name", "Acme"},      {"n", 5},         {"flag", true}, {"list", {"a", "b", "a"}},
            {"map", {{"k", "v"}}}, {"gone", nullptr}};
  BodyReader r(body);
  CHECK(r.req_string("name") == "Acme");
  CHECK(r.opt_int("n", 1, 10) == 5);
  CHECK(r.opt_bool("flag") == true);
  CHECK(r.opt_string_list("list", 5, 10) == std::vector<std::string>{"a", "b"});
  CHECK(r.opt_string_map("map", 5, 10) == std::map<std::string, std::string>{{"k", "v"}});
  CHECK_FALSE(r.opt_string("gone").has_value());
  CHECK_FALSE(r.opt_string("absent").has_value());
  CHECK_FALSE(r.has("gone"));
  CHECK(r.present("gone"));
  CHECK_FALSE(r.present("absent"));
  CHECK(r.raw("gone") == nullptr);
  CHECK_NOTHROW(r.finish());
}

TEST_CASE("BodyReader reports each kind of problem at body.<field>") {
  SUBCASE("missing, null and empty required strings") {
    for (const json& body : {json::object(), json{{"name", nullptr}}, json{{"name", ""}}}) {
      json errors = reader_errors(body, [](BodyReader& r) { r.req_string("name"); });
      REQUIRE(errors.size() == 1);
      CHECK(errors[0]["loc"] == json{"body", "name"});
    }
    json errors = reader_errors(json::object(), [](BodyReader& r) { r.req_string("name"); });
    CHECK(errors[0]["type"] == "value_error.missing");
  }
  SUBCASE("wrong types") {
    json body{{"s", 5}, {"i", "5"}, {"f", 1.5}, {"b", "yes"}, {"l", "x"}, {"m", {1, 2}}};
    json errors = reader_errors(body, [](BodyReader& r) {
      r.opt_string("s");
      r.opt_int("i", 0, 10);
      r.opt_int("f", 0, 10);
      r.opt_bool("b");
      r.opt_string_list("l", 10, 10);
      r.opt_string_map("m", 10, 10);
    });
    CHECK(locs(errors) == std::vector<json>{json{"body", "s"}, json{"body", "i"}, json{"body", "f"},
                                            json{"body", "b"}, json{"body", "l"},
                                            json{"body", "m"}});
    CHECK(errors[0]["type"] == "type_error.str");
    CHECK(errors[1]["type"] == "type_error.integer");
    CHECK(errors[3]["type"] == "type_error.bool");
  }
  SUBCASE("too long strings") {
    json errors = reader_errors(json{{"s", std::string(11, 'x')}, {"ok", std::string(10, 'x')}},
                                [](BodyReader& r) {
                                  r.opt_string("s", 10);
                                  r.opt_string("ok", 10);
                                });
    REQUIRE(errors.size() == 1);
    CHECK(errors[0]["loc"] == json{"body", "s"});
    CHECK(errors[0]["type"] == "value_error.any_str.max_length");
    // The default limit is 256.
    errors =
        reader_errors(json{{"s", std::string(257, 'x')}}, [](BodyReader& r) { r.req_string("s"); });
    CHECK(errors.size() == 1);
    errors =
        reader_errors(json{{"s", std::string(256, 'x')}}, [](BodyReader& r) { r.req_string("s"); });
    CHECK(errors.empty());
  }
  SUBCASE("int ranges are inclusive") {
    auto check_range = [](int64_t v) {
      return reader_errors(json{{"n", v}}, [](BodyReader& r) { r.opt_int("n", 1, 100); }).empty();
    };
    CHECK(check_range(1));
    CHECK(check_range(100));
    CHECK_FALSE(check_range(0));
    CHECK_FALSE(check_range(101));
    CHECK_FALSE(check_range(-5));
  }
  SUBCASE("list and map limits") {
    auto list_ok = [](const json& v) {
      return reader_errors(json{{"l", v}}, [](BodyReader& r) { r.opt_string_list("l", 3, 4); })
          .empty();
    };
    CHECK(list_ok(json{"a", "b", "c"}));
    CHECK_FALSE(list_ok(json{"a", "b", "c", "d"}));
    CHECK_FALSE(list_ok(json{"a", "toolong"}));
    CHECK_FALSE(list_ok(json{"a", 1}));
    auto map_ok = [](const json& v) {
      return reader_errors(json{{"m", v}}, [](BodyReader& r) { r.opt_string_map("m", 2, 4); })
          .empty();
    };
    CHECK(map_ok(json{{"a", "1"}, {"b", "2"}}));
    CHECK_FALSE(map_ok(json{{"a", "1"}, {"b", "2"}, {"c", "3"}}));
    CHECK_FALSE(map_ok(json{{"a", 1}}));
    CHECK_FALSE(map_ok(json{{"toolong", "1"}}));
    CHECK_FALSE(map_ok(json{{"a", "toolong"}}));
  }
}

TEST_CASE("BodyReader collects every problem into one 422") {
  json body{{"name", 5}, {"uid", std::string(300, 'u')}, {"rate", 0}, {"disabled", "yes"}};
  json errors = reader_errors(body, [](BodyReader& r) {
    r.req_string("name");
    r.opt_string("uid");
    r.opt_int("rate", 1, 10);
    r.opt_bool("disabled");
    r.req_string("url");
    r.error("custom", "found by the caller");
  });
  CHECK(locs(errors) == std::vector<json>{json{"body", "name"}, json{"body", "uid"},
                                          json{"body", "rate"}, json{"body", "disabled"},
                                          json{"body", "url"}, json{"body", "custom"}});
  CHECK(errors[5]["msg"] == "found by the caller");
  CHECK(errors[5]["type"] == "value_error");
}

// ---------------------------------------------------------------------------------------------
// url_problem, header_problem, valid_uid, valid_name

TEST_CASE("url_problem accepts absolute http and https URLs") {
  const std::string long_ok = "https://example.com/" + std::string(2048 - 20, 'a');
  REQUIRE(long_ok.size() == 2048);
  for (const std::string& url :
       {std::string("http://example.com"), std::string("https://example.com/"),
        std::string("https://example.com:8443/path/to/hook?x=1&y=two#frag"),
        std::string("HTTPS://EXAMPLE.COM/Hook"), std::string("http://localhost:1"),
        std::string("http://127.0.0.1:65535/"), std::string("http://[::1]:8080/hook"),
        std::string("http://[2001:db8::1]/"), std::string("https://example.com/path@at"),
        std::string("https://sub.example.co.uk?q"), long_ok}) {
    INFO("url: " << url);
    CHECK_FALSE(url_problem(url).has_value());
  }
}

TEST_CASE("url_problem rejects other schemes, missing hosts, credentials, spaces, bad ports") {
  for (const std::string& url : {
           std::string("ftp://example.com"),
           std::string("file:///etc/passwd"),
           std::string("javascript:alert(1)"),
           std::string("example.com/hook"),
           std::string("//example.com/hook"),
           std::string("not a url"),
           std::string(""),
           std::string("http://"),
           std::string("https://"),
           std::string("http:///path"),
           std::string("http://?q=1"),
           std::string("http://:8080/"),
           std::string("http://user:pass@example.com/"),
           std::string("http://user@example.com"),
           std::string("http://example.com@evil.com/"),
           std::string("http://exa mple.com/"),
           std::string("http://example.com/a b"),
           std::string(" http://example.com"),
           std::string("http://example.com/\n"),
           std::string("http://example.com/\t"),
           std::string("http://example.com:0/"),
           std::string("http://example.com:70000/"),
           std::string("http://example.com:65536"),
           std::string("http://example.com:123456/"),
           std::string("http://example.com:abc/"),
           std::string("http://example.com:80a/"),
           std::string("http://example.com:-1/"),
           std::string("http://example.com:/"),
           std::string("http://[::1/"),
           std::string("http://[::1]x/"),
           "https://example.com/" + std::string(2048 - 19, 'a'),
       }) {
    INFO("url: " << url);
    auto problem = url_problem(url);
    REQUIRE(problem.has_value());
    CHECK_FALSE(problem->empty());
  }
}

TEST_CASE("header_problem rejects reserved names in any case, bad names and line breaks") {
  for (const char* name :
       {"webhook-signature", "Webhook-Signature", "WEBHOOK-ID", "webhook-timestamp", "Content-Type",
        "content-length", "Host", "User-Agent", "svix-signature", "Svix-Id", "Transfer-Encoding",
        "Connection", "EXPECT"}) {
    INFO("name: " << name);
    auto problem = header_problem(name, "value");
    REQUIRE(problem.has_value());
    CHECK(problem->find("set by herald") != std::string::npos);
  }
  for (const std::string& name :
       {std::string(""), std::string("X Bad"), std::string("X:Colon"), std::string("X(paren)"),
        std::string("X\"quote"), std::string("X/slash"), std::string("X-\xc3\xa9"),
        std::string("X\r\nInjected"), std::string(257, 'x')}) {
    INFO("name: " << name);
    CHECK(header_problem(name, "value").has_value());
  }
  for (const std::string& value : {std::string("a\r\nX-Injected: 1"), std::string("a\nb"),
                                   std::string("a\rb"), std::string("a\0b", 3)}) {
    INFO("value: " << json(value).dump());
    CHECK(header_problem("X-Custom", value).has_value());
  }
  CHECK_FALSE(header_problem("X-Custom", "plain value\twith tab").has_value());
  CHECK_FALSE(header_problem("Authorization", "Bearer abc").has_value());
  CHECK_FALSE(header_problem("x-api-key", "").has_value());
  CHECK_FALSE(header_problem("X-!#$%&'*+-.^_`|~", "v").has_value());
  CHECK_FALSE(header_problem(std::string(256, 'x'), "v").has_value());
}

TEST_CASE("valid_uid takes 1 to 256 name characters that do not look like an id") {
  CHECK(valid_uid("a"));
  CHECK(valid_uid("my-app.1_X"));
  CHECK(valid_uid(std::string(256, 'u')));
  CHECK(valid_uid("app_short"));  // the prefix alone does not make an id
  CHECK(valid_uid("atmpt_" + std::string(22, '1')));

  CHECK_FALSE(valid_uid(""));
  CHECK_FALSE(valid_uid(std::string(257, 'u')));
  for (const char* bad :
       {"has space", "slash/", "per%cent", "q?", "hash#", "colon:", "t\xc3\xa9"}) {
    INFO("uid: " << bad);
    CHECK_FALSE(valid_uid(bad));
  }
  // Shaped like herald's own ids: "<prefix>_" + 22 base62 characters.
  CHECK_FALSE(valid_uid("app_" + std::string(21, '0') + "1"));
  CHECK_FALSE(valid_uid(new_id(kAppPrefix, kStart)));
  CHECK_FALSE(valid_uid(new_id(kEndpointPrefix, kStart)));
  CHECK_FALSE(valid_uid(new_id(kMessagePrefix, kStart)));
  CHECK(valid_uid("app_" + std::string(21, '0') + "1x"));  // 23 characters: not an id

  CHECK(valid_name("user.created"));
  CHECK(valid_name("a-b_c.D9"));
  CHECK_FALSE(valid_name(""));
  CHECK_FALSE(valid_name("user created"));
  CHECK_FALSE(valid_name("user/created"));
  CHECK_FALSE(valid_name(std::string(257, 'n')));
}

// ---------------------------------------------------------------------------------------------
// Status codes and bodies over HTTP

TEST_CASE("http: a missing, malformed or wrong token gets 401 authentication_failed") {
  ApiFixture f;
  f.make_app("Acme", "acme");
  const std::optional<std::string> auths[] = {
      std::nullopt,
      std::string(""),
      std::string("Bearer"),
      std::string("Bearer "),
      std::string(kAdminToken),
      std::string("Basic YWRtaW46YWRtaW4="),
      std::string("Token ") + kAdminToken,
      bearer("wrong_token_0123456789"),
      bearer(std::string(kAdminToken) + "x"),
      bearer(std::string(kAdminToken).substr(1)),
  };
  for (const auto& auth : auths) {
    INFO("Authorization: " << (auth ? *auth : "(none)"));
    check_error(f.call("GET", "/api/v1/app", "", auth), 401, "authentication_failed");
    check_error(f.call("GET", "/api/v1/app/acme", "", auth), 401, "authentication_failed");
    check_error(f.call("POST", "/api/v1/app", R"({"name":"x"})", auth), 401,
                "authentication_failed");
    check_error(f.call("DELETE", "/api/v1/app/acme", "", auth), 401, "authentication_failed");
  }
  CHECK(f.app_count() == 1);
  CHECK(f.get("/api/v1/app").status == 200);
}

TEST_CASE("http: the bearer scheme is case-insensitive, as RFC 9110 has it") {
  ApiFixture f;
  for (const std::string scheme : {"Bearer ", "bearer ", "BEARER ", "bEaReR   "}) {
    INFO("Authorization: " << scheme << "<token>");
    CHECK(f.call("GET", "/api/v1/app", "", scheme + kAdminToken).status == 200);
  }
  for (const std::string& bad :
       {std::string("Bearer"), std::string("bearer    "), std::string("Bearerx ") + kAdminToken,
        std::string("Bearer ") + kAdminToken + " extra"}) {
    INFO("Authorization: " << bad);
    check_error(f.call("GET", "/api/v1/app", "", bad), 401, "authentication_failed");
  }
}

TEST_CASE("http: an iterator no page returned is a 422, on every list") {
  ApiFixture f;
  json app = f.make_app("Acme", "acme");
  json ep = f.make_endpoint("acme", {{"url", "https://example.com/hook"}});
  json msg = f.make_message("acme", {{"eventType", "e"}, {"payload", json::object()}});
  const std::string m = msg["id"], e = ep["id"];
  const std::string lists[] = {"/api/v1/app", "/api/v1/app/acme/endpoint", "/api/v1/app/acme/msg",
                               "/api/v1/app/acme/attempt/msg/" + m,
                               "/api/v1/app/acme/attempt/endpoint/" + e};
  for (const auto& list : lists) {
    INFO(list);
    for (const char* it : {"garbage", "-garbage", "app_", "msg_0358", "a%20b"}) {
      check_validation(f.get(list + "?iterator=" + it), json{"query", "iterator"});
    }
    // What a page hands out goes back in.
    Reply page = f.get(list + "?limit=1");
    REQUIRE(page.status == 200);
    if (page.j["iterator"].is_string()) {
      CHECK(f.get(list + "?iterator=" + page.j["iterator"].get<std::string>()).status == 200);
      CHECK(f.get(list + "?iterator=" + page.j["prevIterator"].get<std::string>()).status == 200);
    }
  }
  // An id of the wrong kind is no iterator of this list either.
  check_validation(f.get("/api/v1/app?iterator=" + m), json{"query", "iterator"});
  // Event types page by name: any name may be one, but not what no name can be.
  CHECK(f.get("/api/v1/event-type?iterator=garbage").status == 200);
  check_validation(f.get("/api/v1/event-type?iterator=a%20b"), json{"query", "iterator"});
  check_validation(f.get("/api/v1/event-type?iterator=-a%2Fb"), json{"query", "iterator"});
}

TEST_CASE("http: a body that is not JSON says where, without echoing its bytes") {
  ApiFixture f;
  Reply r = f.call("POST", "/api/v1/app", "{\"name\": \"caf\xC3\x28\"}");
  check_error(r, 400, "bad_request");
  CHECK(r.j["detail"].get<std::string>().find("not UTF-8 (byte 13") != std::string::npos);
  r = f.call("POST", "/api/v1/app", R"({"name": "x",})");
  check_error(r, 400, "bad_request");
  CHECK(r.j["detail"].get<std::string>().find("syntax error at byte 14") != std::string::npos);
  CHECK(f.app_count() == 0);
}

TEST_CASE("http: PUT of an application leaves out uid and keeps it") {
  ApiFixture f;
  f.make_app("Acme", "acme");
  Reply r = f.put("/api/v1/app/acme", {{"name", "Acme 2"}});
  REQUIRE(r.status == 200);
  CHECK(r.j["uid"] == "acme");
  CHECK(f.get("/api/v1/app/acme").j["name"] == "Acme 2");
  r = f.put("/api/v1/app/acme", {{"name", "Acme 3"}, {"uid", nullptr}});
  REQUIRE(r.status == 200);
  CHECK(r.j["uid"].is_null());
}

TEST_CASE("http: a POST, PUT or PATCH without a body is answered at once, as an empty body") {
  ApiFixture f;
  f.make_app("Acme", "acme");
  json ep = f.make_endpoint("acme", {{"url", "https://example.com/hook"}});
  const std::string secret_path =
      "/api/v1/app/acme/endpoint/" + ep["id"].get<std::string>() + "/secret";
  const std::string secret = f.get(secret_path).j["key"];
  // Neither Content-Length nor Transfer-Encoding: a request with no body (RFC 9112 6.3).
  auto bodiless = [&](const std::string& method, const std::string& path) {
    const auto t0 = std::chrono::steady_clock::now();
    std::string out = test::raw_exchange(
        f.port(), method + " " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                      kAdminToken + "\r\nConnection: close\r\n\r\n");
    CHECK_MESSAGE(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(1000),
                  method << " " << path << " waited for a body");
    return out;
  };
  std::string out = bodiless("POST", secret_path + "/rotate");
  CHECK_MESSAGE(out.rfind("HTTP/1.1 204", 0) == 0, out);  // {} is a valid rotate body
  CHECK(f.get(secret_path).j["key"] != secret);
  out = bodiless("POST", "/api/v1/app");
  CHECK_MESSAGE(out.rfind("HTTP/1.1 422", 0) == 0, out);  // an application needs a name
  CHECK(out.find("\"name\"") != std::string::npos);
  out = bodiless("PATCH", "/api/v1/app/acme");
  CHECK_MESSAGE(out.rfind("HTTP/1.1 200", 0) == 0, out);  // a PATCH of nothing changes nothing
  out = bodiless("PUT", "/api/v1/app/acme");
  CHECK_MESSAGE(out.rfind("HTTP/1.1 422", 0) == 0, out);
  out = bodiless("POST", "/api/v1/nothing");
  CHECK_MESSAGE(out.rfind("HTTP/1.1 404", 0) == 0, out);
  CHECK(f.app_count() == 1);
  CHECK(f.get("/api/v1/app/acme").j["name"] == "Acme");
}

TEST_CASE("http: a request smuggled behind another is refused and changes nothing") {
  ApiFixture f;
  // Content-Length says the body is the whole second request; chunked says it ends at once. A
  // proxy and herald reading it differently would let the second through unseen: it is refused.
  const std::string inner = "POST /api/v1/app HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                            std::string(kAdminToken) +
                            "\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n"
                            "{\"name\":\"evil\"}";
  const std::string outer = "POST /api/v1/app HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                            std::string(kAdminToken) +
                            "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked"
                            "\r\nContent-Length: " +
                            std::to_string(5 + inner.size()) + "\r\n\r\n0\r\n\r\n";
  const std::string out = test::raw_exchange(f.port(), outer + inner);
  CHECK_MESSAGE(out.rfind("HTTP/1.1 400", 0) == 0, out);
  CHECK(out.find("\"code\"") != std::string::npos);  // the API's error JSON
  CHECK(out.find("HTTP/1.1", 1) == std::string::npos);
  CHECK(f.app_count() == 0);
}

TEST_CASE("http: slow and idle clients by the thousand do not slow anyone else down") {
  ApiOptions options = options_with_limit(kMaxPayload);
  options.limits.header_timeout_ms = 2'000;
  ApiFixture f(options);
  REQUIRE(test::open_file_limit() > 5'000);  // both ends of every connection are in this process
  f.make_app("Acme", "acme");
  // 2000 connections that never send a byte and 200 that send a header line now and then, from
  // ten other addresses (no one address holds more than its share).
  std::vector<std::unique_ptr<test::RawClient>> idle, slow;
  for (int i = 0; i < 2000; ++i) {
    idle.push_back(
        std::make_unique<test::RawClient>(f.port(), "127.77.0." + std::to_string(1 + i % 10)));
    REQUIRE(idle.back()->connected());
  }
  for (int i = 0; i < 200; ++i) {
    slow.push_back(
        std::make_unique<test::RawClient>(f.port(), "127.77.0." + std::to_string(1 + i % 10)));
    REQUIRE(slow.back()->send("POST /api/v1/app HTTP/1.1\r\nHost: x\r\n"));
  }
  std::vector<int64_t> health_ms;
  for (int round = 0; round < 5; ++round) {
    for (auto& c : slow) c->send("X-Slow: " + std::to_string(round) + "\r\n");
    const auto t0 = test::SteadyClock::now();
    Reply r = f.call("GET", "/api/v1/health", "", std::nullopt);
    health_ms.push_back(test::ms_since(t0));
    CHECK(r.status == 204);
    CHECK(f.make_message("acme", {{"eventType", "e"}, {"payload", {{"round", round}}}})
              .contains("id"));
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  std::sort(health_ms.begin(), health_ms.end());
  MESSAGE("health with 2200 hostile connections open: median " << health_ms[2] << " ms, max "
                                                               << health_ms.back() << " ms");
  CHECK(health_ms[2] < 100);
  CHECK(health_ms.back() < 500);
  // The slow ones run out of time for their headers; none was ever handled.
  for (auto& c : slow) CHECK(c->closed_within(3'000));
  CHECK(f.app_count() == 1);
}

TEST_CASE("http: health answers without a token") {
  ApiFixture f;
  for (const char* path : {"/api/v1/health", "/api/v1/health/"}) {
    Reply r = f.call("GET", path, "", std::nullopt);
    CHECK(r.status == 204);
    CHECK(r.body.empty());
    CHECK(f.call("GET", path, "", bearer("bogus")).status == 204);
  }
}

TEST_CASE("http: the OpenAPI document is served without a token, as compiled in") {
  ApiFixture f;
  for (const std::optional<std::string>& auth :
       {std::optional<std::string>(), std::optional(bearer("bogus")),
        std::optional(bearer(kAdminToken))}) {
    Reply r = f.call("GET", "/api/v1/openapi.json", "", auth);
    CHECK(r.status == 200);
    CHECK(r.content_type == "application/json");
    CHECK(r.body == openapi_document());
    REQUIRE(r.is_json);
    CHECK(r.j["openapi"] == "3.1.0");
    CHECK(r.j["info"]["title"] == "herald");
  }
}

namespace {

// An OpenAPI path template made concrete, each {parameter} replaced by a sample value, so that
// the server's route patterns can be matched against it.
std::string sample_path(const std::string& path_template) {
  static const std::regex kParameter(R"(\{[^}/]+\})");
  return std::regex_replace(path_template, kParameter, "sample");
}

// The index of the route `method path` is served by (`method` in any case, as OpenAPI writes it
// in lower case): the first that matches, as http::Server tries them. nullopt when none does.
std::optional<size_t> serving_route(const std::vector<http::RouteInfo>& routes,
                                    const std::string& method, const std::string& path) {
  for (size_t i = 0; i < routes.size(); ++i) {
    if (equals_ascii_ci(routes[i].method, method) &&
        std::regex_match(path, std::regex(routes[i].pattern))) {
      return i;
    }
  }
  return std::nullopt;
}

}  // namespace

// Fails when a route is added without an operation in api/openapi.json, or an operation is
// documented that no route serves, or an operation's security says otherwise than the server.
TEST_CASE("http: api/openapi.json documents every route the server registers, and no other") {
  Metrics metrics;
  ApiOptions options = options_with_limit(kMaxPayload);
  options.metrics = &metrics;  // so that /metrics is registered too
  ApiFixture f(options);       // the portal's routes (web/) are not the API's: left out
  const std::vector<http::RouteInfo> routes = f.api().http().routes();
  REQUIRE(routes.size() > 10);
  const json doc = json::parse(openapi_document());
  REQUIRE(doc["paths"].is_object());
  REQUIRE(doc["security"] == json::parse(R"([{"bearerAuth": []}])"));  // unless an operation says
  static const std::set<std::string> kMethods = {"get", "put", "post", "delete", "patch"};

  std::vector<bool> documented(routes.size(), false);
  size_t operations = 0;
  for (const auto& [path, item] : doc["paths"].items()) {
    for (const auto& [method, operation] : item.items()) {
      if (kMethods.count(method) == 0) continue;
      ++operations;
      const std::string concrete = sample_path(path);
      INFO(method << " " << path << " (as " << concrete << ")");
      const auto at = serving_route(routes, method, concrete);
      CHECK_MESSAGE(at.has_value(), "documented in api/openapi.json, but no route serves it");
      if (!at) continue;
      documented[*at] = true;
      // Without a token: an operation that needs none is served, any other is refused.
      const bool needs_token = !operation.contains("security") || !operation["security"].empty();
      const Reply r = f.call(routes[*at].method, concrete, "", std::nullopt);
      if (needs_token) {
        CHECK(r.status == 401);
      } else {
        CHECK(r.status >= 200);
        CHECK(r.status < 300);
      }
    }
  }
  for (size_t i = 0; i < routes.size(); ++i) {
    CHECK_MESSAGE(documented[i], routes[i].method << " " << routes[i].pattern
                                                  << " is served, but api/openapi.json has no "
                                                     "operation for it");
  }
  CHECK(operations >= routes.size());
}

TEST_CASE("http: unknown resources and routes get 404 not_found") {
  ApiFixture f;
  json app = f.make_app("Acme", "acme");
  json ep = f.make_endpoint("acme", {{"url", "https://example.com/hook"}});
  json msg = f.make_message("acme", {{"eventType", "user.created"}, {"payload", json::object()}});
  const std::string ep_id = ep["id"];
  const std::string msg_id = msg["id"];

  for (const std::string& path : {
           std::string("/api/v1/app/nope"),
           "/api/v1/app/" + new_id(kAppPrefix, kStart),
           std::string("/api/v1/app/nope/endpoint"),
           std::string("/api/v1/app/acme/endpoint/nope"),
           "/api/v1/app/acme/endpoint/" + new_id(kEndpointPrefix, kStart),
           std::string("/api/v1/app/acme/endpoint/nope/secret"),
           std::string("/api/v1/app/acme/endpoint/nope/headers"),
           std::string("/api/v1/app/acme/endpoint/nope/stats"),
           std::string("/api/v1/app/nope/msg"),
           std::string("/api/v1/app/acme/msg/nope"),
           "/api/v1/app/acme/msg/" + new_id(kMessagePrefix, kStart),
           std::string("/api/v1/app/acme/attempt/msg/nope"),
           std::string("/api/v1/app/acme/attempt/endpoint/nope"),
           std::string("/api/v1/event-type/nope"),
           std::string("/api/v1/nope"),
           std::string("/api/v1/app/acme/bogus"),
           std::string("/nope"),
       }) {
    INFO("GET " << path);
    check_error(f.get(path), 404, "not_found");
  }
  check_error(f.del("/api/v1/app/nope"), 404, "not_found");
  check_error(f.del("/api/v1/app/acme/endpoint/nope"), 404, "not_found");
  check_error(f.patch("/api/v1/app/nope", {{"name", "x"}}), 404, "not_found");
  check_error(f.patch("/api/v1/event-type/nope", {{"description", "x"}}), 404, "not_found");
  check_error(f.post("/api/v1/app/acme/msg/nope/endpoint/" + ep_id + "/resend", json::object()),
              404, "not_found");
  check_error(f.post("/api/v1/app/acme/msg/" + msg_id + "/endpoint/nope/resend", json::object()),
              404, "not_found");
  // The endpoint and message exist, but not under another app.
  f.make_app("Other", "other");
  check_error(f.get("/api/v1/app/other/endpoint/" + ep_id), 404, "not_found");
  check_error(f.get("/api/v1/app/other/msg/" + msg_id), 404, "not_found");
  CHECK(f.get("/api/v1/app/acme/endpoint/" + ep_id).status == 200);
  CHECK(f.get("/api/v1/app/" + app["id"].get<std::string>() + "/msg/" + msg_id).status == 200);
}

TEST_CASE("http: application create, get, conflict, get_if_exists, PUT upsert, PATCH, delete") {
  ApiFixture f;
  Reply created = f.post(
      "/api/v1/app",
      {{"name", "Acme"}, {"uid", "acme"}, {"metadata", {{"tier", "gold"}}}, {"throttleRate", 10}});
  REQUIRE(created.status == 201);
  CHECK(created.content_type.find("application/json") == 0);
  const json app = created.j;
  const std::string id = app["id"];
  CHECK(is_id_with_prefix(id, kAppPrefix));
  CHECK(app["uid"] == "acme");
  CHECK(app["name"] == "Acme");
  CHECK(app["metadata"] == json{{"tier", "gold"}});
  CHECK(app["throttleRate"] == 10);
  CHECK(app["createdAt"] == kStartText);
  CHECK(app["updatedAt"] == kStartText);
  CHECK(is_rfc3339_utc(app["createdAt"]));

  SUBCASE("get by id and by uid") {
    Reply by_id = f.get("/api/v1/app/" + id);
    CHECK(by_id.status == 200);
    CHECK(by_id.j == app);
    Reply by_uid = f.get("/api/v1/app/acme");
    CHECK(by_uid.status == 200);
    CHECK(by_uid.j == app);
  }
  SUBCASE("a duplicate uid is a 409 and creates nothing") {
    check_error(f.post("/api/v1/app", {{"name", "Again"}, {"uid", "acme"}}), 409, "conflict");
    CHECK(f.app_count() == 1);
    CHECK(f.get("/api/v1/app/acme").j == app);
  }
  SUBCASE("get_if_exists returns the existing app with 200") {
    f.clock.advance(1000);
    Reply r = f.post("/api/v1/app?get_if_exists=true", {{"name", "Different"}, {"uid", "acme"}});
    CHECK(r.status == 200);
    CHECK(r.j == app);
    CHECK(f.app_count() == 1);
    Reply fresh = f.post("/api/v1/app?get_if_exists=true", {{"name", "New"}, {"uid", "new"}});
    CHECK(fresh.status == 201);
    CHECK(fresh.j["id"] != id);
    CHECK(f.app_count() == 2);
    check_validation(f.post("/api/v1/app?get_if_exists=maybe", {{"name", "x"}}),
                     json{"query", "get_if_exists"});
    CHECK(f.app_count() == 2);
  }
  SUBCASE("PUT on an unknown uid creates; PUT again replaces") {
    f.clock.advance(1000);
    Reply r = f.put("/api/v1/app/made-by-put", {{"name", "Put"}});
    CHECK(r.status == 201);
    CHECK(r.j["uid"] == "made-by-put");
    CHECK(r.j["name"] == "Put");
    const std::string put_id = r.j["id"];
    CHECK(put_id != id);
    CHECK(f.app_count() == 2);
    f.clock.advance(1000);
    Reply again = f.put("/api/v1/app/made-by-put",
                        {{"name", "Put 2"}, {"uid", "made-by-put"}, {"metadata", {{"a", "b"}}}});
    CHECK(again.status == 200);
    CHECK(again.j["id"] == put_id);
    CHECK(again.j["name"] == "Put 2");
    CHECK(again.j["metadata"] == json{{"a", "b"}});
    CHECK(again.j["createdAt"] == r.j["createdAt"]);
    CHECK(again.j["updatedAt"] != r.j["updatedAt"]);
    CHECK(f.app_count() == 2);
  }
  SUBCASE("PATCH changes only the fields given") {
    f.clock.advance(2000);
    Reply r = f.patch("/api/v1/app/acme", {{"name", "Acme 2"}});
    CHECK(r.status == 200);
    CHECK(r.j["name"] == "Acme 2");
    CHECK(r.j["id"] == id);
    CHECK(r.j["uid"] == "acme");
    CHECK(r.j["metadata"] == json{{"tier", "gold"}});
    CHECK(r.j["throttleRate"] == 10);
    CHECK(r.j["createdAt"] == kStartText);
    CHECK(r.j["updatedAt"] == "2023-11-14T22:13:22.000Z");
    CHECK(f.get("/api/v1/app/acme").j == r.j);

    r = f.patch("/api/v1/app/acme", {{"metadata", {{"tier", "silver"}}}});
    CHECK(r.status == 200);
    CHECK(r.j["name"] == "Acme 2");
    CHECK(r.j["metadata"] == json{{"tier", "silver"}});
    CHECK(r.j["throttleRate"] == 10);

    r = f.patch("/api/v1/app/acme", {{"throttleRate", nullptr}});
    CHECK(r.status == 200);
    CHECK_FALSE(r.j.contains("throttleRate"));
    CHECK(r.j["name"] == "Acme 2");
    CHECK(r.j["uid"] == "acme");
  }
  SUBCASE("delete answers 204 without a body, then the app is gone") {
    Reply r = f.del("/api/v1/app/acme");
    CHECK(r.status == 204);
    CHECK(r.body.empty());
    check_error(f.get("/api/v1/app/" + id), 404, "not_found");
    CHECK(f.app_count() == 0);
    check_error(f.del("/api/v1/app/acme"), 404, "not_found");
  }
}

TEST_CASE("http: endpoint and message create statuses and conflicts") {
  ApiFixture f;
  f.make_app("Acme", "acme");
  f.make_app("Other", "other");

  Reply ep = f.post("/api/v1/app/acme/endpoint",
                    {{"url", "https://example.com/hook"}, {"uid", "main"}, {"version", 1}});
  REQUIRE(ep.status == 201);
  CHECK(is_id_with_prefix(ep.j["id"].get<std::string>(), kEndpointPrefix));
  CHECK(ep.j["uid"] == "main");
  CHECK(ep.j["url"] == "https://example.com/hook");
  CHECK(ep.j["disabled"] == false);
  CHECK(ep.j["createdAt"] == kStartText);
  check_error(
      f.post("/api/v1/app/acme/endpoint", {{"url", "https://example.org/"}, {"uid", "main"}}), 409,
      "conflict");
  CHECK(f.list("/api/v1/app/acme/endpoint").size() == 1);
  // The same uid in another app is fine.
  CHECK(f.post("/api/v1/app/other/endpoint", {{"url", "https://example.org/"}, {"uid", "main"}})
            .status == 201);
  // Renaming a second endpoint onto a taken uid conflicts too.
  json second = f.make_endpoint("acme", {{"url", "https://example.net/"}, {"uid", "second"}});
  check_error(f.patch("/api/v1/app/acme/endpoint/second", {{"uid", "main"}}), 409, "conflict");
  CHECK(f.get("/api/v1/app/acme/endpoint/second").j == second);

  Reply msg =
      f.post("/api/v1/app/acme/msg",
             {{"eventType", "user.created"}, {"eventId", "evt-1"}, {"payload", {{"a", 1}}}});
  REQUIRE(msg.status == 202);
  CHECK(is_id_with_prefix(msg.j["id"].get<std::string>(), kMessagePrefix));
  CHECK(msg.j["eventType"] == "user.created");
  CHECK(msg.j["eventId"] == "evt-1");
  CHECK(msg.j["payload"] == json{{"a", 1}});
  CHECK(msg.j["timestamp"] == kStartText);
  check_error(
      f.post("/api/v1/app/acme/msg",
             {{"eventType", "user.created"}, {"eventId", "evt-1"}, {"payload", {{"a", 2}}}}),
      409, "conflict");
  CHECK(f.list("/api/v1/app/acme/msg").size() == 1);
  CHECK(f.post("/api/v1/app/other/msg",
               {{"eventType", "user.created"}, {"eventId", "evt-1"}, {"payload", {{"a", 3}}}})
            .status == 202);
  // Readable by id and by eventId.
  CHECK(f.get("/api/v1/app/acme/msg/" + msg.j["id"].get<std::string>()).j == msg.j);
  CHECK(f.get("/api/v1/app/acme/msg/evt-1").j == msg.j);
  // with_content=false leaves the payload out.
  Reply bare = f.post("/api/v1/app/acme/msg?with_content=false",
                      {{"eventType", "user.created"}, {"payload", {{"secret", "x"}}}});
  CHECK(bare.status == 202);
  CHECK(bare.j["payload"] == json::object());
  CHECK(f.get("/api/v1/app/acme/msg/" + bare.j["id"].get<std::string>()).j["payload"] ==
        json{{"secret", "x"}});

  Reply rotate = f.post("/api/v1/app/acme/endpoint/main/secret/rotate", json::object());
  CHECK(rotate.status == 204);
  CHECK(rotate.body.empty());
  Reply del = f.del("/api/v1/app/acme/endpoint/main");
  CHECK(del.status == 204);
  CHECK(del.body.empty());
  check_error(f.get("/api/v1/app/acme/endpoint/main"), 404, "not_found");
}

TEST_CASE("http: event types are created, conflict, upserted and archived") {
  ApiFixture f;
  Reply r = f.post("/api/v1/event-type", {{"name", "user.created"}, {"description", "signup"}});
  CHECK(r.status == 201);
  CHECK(r.j["name"] == "user.created");
  CHECK(r.j["archived"] == false);
  check_error(f.post("/api/v1/event-type", {{"name", "user.created"}}), 409, "conflict");
  check_validation(f.post("/api/v1/event-type", {{"name", "bad name"}}), json{"body", "name"});
  CHECK(f.put("/api/v1/event-type/user.deleted", {{"description", "gone"}}).status == 201);
  CHECK(f.list("/api/v1/event-type").size() == 2);
  CHECK(f.del("/api/v1/event-type/user.deleted").status == 204);
  CHECK(f.list("/api/v1/event-type").size() == 1);
  CHECK(f.get("/api/v1/event-type/user.deleted").j["archived"] == true);
}

// ---------------------------------------------------------------------------------------------
// Bad input changes nothing

TEST_CASE("http: bad input gets a clear 4xx and changes nothing") {
  ApiFixture f;
  f.make_app("Acme", "acme");
  f.make_endpoint("acme", {{"url", "https://example.com/hook"},
                           {"uid", "main"},
                           {"headers", {{"X-Custom", "1"}}},
                           {"secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}});
  f.make_message("acme", {{"eventType", "user.created"}, {"payload", {{"n", 1}}}});
  f.post("/api/v1/event-type", {{"name", "user.created"}});

  const std::string app_path = "/api/v1/app/acme";
  const std::string ep_path = app_path + "/endpoint/main";
  const std::string big_pad(70 * 1024, 'x');
  const std::string huge_pad(200 * 1024, 'x');

  struct BadCase {
    std::string method;
    std::string path;
    std::string body;
    int status;
    json loc;          // 422: where the detail points
    std::string code;  // otherwise: the error code
  };
  auto invalid = [](std::string method, std::string path, const json& body, json loc) {
    return BadCase{std::move(method), std::move(path), body.dump(), 422, std::move(loc), ""};
  };
  auto bad_query = [](std::string path) {
    return BadCase{"GET", std::move(path), "", 422, json{"query", "limit"}, ""};
  };
  auto failed = [](std::string method, std::string path, std::string body, int status,
                   std::string code) {
    return BadCase{std::move(method), std::move(path), std::move(body), status, json(),
                   std::move(code)};
  };
  const json ep_ok{{"url", "https://example.org/"}};
  const json msg_ok{{"eventType", "user.created"}, {"payload", json::object()}};
  const json body_loc{"body"};
  auto field = [](const char* name) { return json{"body", name}; };

  const std::vector<BadCase> cases = {
      // Malformed JSON.
      failed("POST", "/api/v1/app", "{\"name\": ", 400, "bad_request"),
      failed("POST", "/api/v1/app", "not json", 400, "bad_request"),
      failed("PUT", app_path, "{\"name\": \"x\",}", 400, "bad_request"),
      failed("PATCH", app_path, "{", 400, "bad_request"),
      failed("POST", app_path + "/endpoint", "{\"url\": https://x}", 400, "bad_request"),
      failed("PATCH", ep_path, "{'url': 'https://x'}", 400, "bad_request"),
      failed("POST", app_path + "/msg", "{\"eventType\": \"a\"", 400, "bad_request"),
      failed("PUT", ep_path + "/headers", "{\"headers\": {", 400, "bad_request"),
      failed("POST", ep_path + "/secret/rotate", "[", 400, "bad_request"),
      // JSON, but not an object.
      invalid("POST", "/api/v1/app", json::array({json{{"name", "x"}}}), body_loc),
      invalid("POST", "/api/v1/app", json("Acme"), body_loc),
      BadCase{"POST", "/api/v1/app", "null", 422, body_loc, ""},
      invalid("PUT", app_path, json::array(), body_loc),
      invalid("PATCH", app_path, json("x"), body_loc),
      invalid("POST", app_path + "/endpoint", json::array({ep_ok}), body_loc),
      invalid("PUT", ep_path, json("https://example.org/"), body_loc),
      invalid("PATCH", ep_path, json(42), body_loc),
      invalid("POST", app_path + "/msg", json::array({msg_ok}), body_loc),
      invalid("POST", app_path + "/msg", json("hello"), body_loc),
      invalid("PUT", ep_path + "/headers", json::array(), body_loc),
      invalid("PATCH", ep_path + "/headers", json("x"), body_loc),
      invalid("POST", ep_path + "/secret/rotate", json::array(), body_loc),
      invalid("POST", "/api/v1/event-type", json::array(), body_loc),
      // Wrong field types.
      invalid("POST", "/api/v1/app", {{"name", 5}}, field("name")),
      invalid("PUT", app_path, {{"name", 5}}, field("name")),
      invalid("PATCH", app_path, {{"name", 5}}, field("name")),
      invalid("PATCH", app_path, {{"metadata", {{"a", 1}}}}, field("metadata")),
      invalid("PATCH", app_path, {{"throttleRate", "fast"}}, field("throttleRate")),
      invalid("PATCH", app_path, {{"uid", "bad uid"}}, field("uid")),
      invalid("PATCH", app_path, {{"name", nullptr}}, field("name")),
      invalid("POST", app_path + "/endpoint",
              {{"url", "https://example.org/"}, {"disabled", "yes"}}, field("disabled")),
      invalid("PATCH", ep_path, {{"disabled", "yes"}}, field("disabled")),
      invalid("PATCH", ep_path, {{"eventTypes", "x"}}, field("eventTypes")),
      invalid("PATCH", ep_path, {{"filterTypes", {"ok", 5}}}, field("filterTypes")),
      invalid("PATCH", ep_path, {{"eventTypes", {"bad name"}}}, field("eventTypes")),
      invalid("PATCH", ep_path, {{"metadata", {{"a", 1}}}}, field("metadata")),
      invalid("PATCH", ep_path, {{"channels", json::object()}}, field("channels")),
      invalid("PUT", ep_path, {{"url", 5}}, field("url")),
      invalid("POST", "/api/v1/event-type", {{"name", "x"}, {"archived", "yes"}},
              field("archived")),
      // Unknown app or endpoint.
      failed("POST", "/api/v1/app/nope/endpoint", ep_ok.dump(), 404, "not_found"),
      failed("PATCH", app_path + "/endpoint/nope", ep_ok.dump(), 404, "not_found"),
      // A PUT on an unknown uid creates (an upsert), so only a bad body or a bad uid fails it.
      invalid("PUT", app_path + "/endpoint/nope", {{"url", "ftp://example.com"}}, field("url")),
      failed("PUT", app_path + "/endpoint/no%20pe", ep_ok.dump(), 404, "not_found"),
      failed("PUT", app_path + "/endpoint/nope/headers", R"({"headers":{}})", 404, "not_found"),
      failed("POST", app_path + "/endpoint/nope/secret/rotate", "{}", 404, "not_found"),
      failed("POST", "/api/v1/app/nope/msg", msg_ok.dump(), 404, "not_found"),
      failed("DELETE", "/api/v1/app/nope/endpoint/main", "", 404, "not_found"),
      // Bad endpoint URLs.
      invalid("POST", app_path + "/endpoint", {{"url", "ftp://example.com"}}, field("url")),
      invalid("POST", app_path + "/endpoint", {{"url", "not a url"}}, field("url")),
      invalid("POST", app_path + "/endpoint", {{"url", "http://"}}, field("url")),
      invalid("POST", app_path + "/endpoint", {{"url", "http://u:p@example.com/"}}, field("url")),
      invalid("POST", app_path + "/endpoint", {{"url", "http://example.com:0/"}}, field("url")),
      invalid("POST", app_path + "/endpoint", json::object(), field("url")),
      invalid("PATCH", ep_path, {{"url", "ftp://example.com"}}, field("url")),
      invalid("PUT", ep_path, {{"url", "not a url"}}, field("url")),
      // Bad messages.
      invalid("POST", app_path + "/msg", {{"eventType", "a"}, {"payload", {1, 2}}},
              field("payload")),
      invalid("POST", app_path + "/msg", {{"eventType", "a"}, {"payload", "text"}},
              field("payload")),
      invalid("POST", app_path + "/msg", {{"eventType", "a"}, {"payload", 5}}, field("payload")),
      invalid("POST", app_path + "/msg", {{"eventType", "a"}}, field("payload")),
      invalid("POST", app_path + "/msg", {{"payload", json::object()}}, field("eventType")),
      invalid("POST", app_path + "/msg", {{"eventType", ""}, {"payload", json::object()}},
              field("eventType")),
      invalid("POST", app_path + "/msg", {{"eventType", "a b"}, {"payload", json::object()}},
              field("eventType")),
      invalid("POST", app_path + "/msg",
              {{"eventType", "a"}, {"payload", json::object()}, {"channels", "eu"}},
              field("channels")),
      // Too large: just over the limit (our 413), and far over it (httplib's limit).
      failed("POST", "/api/v1/app", json{{"name", "big"}, {"pad", big_pad}}.dump(), 413,
             "payload_too_large"),
      failed("POST", app_path + "/msg",
             json{{"eventType", "a"}, {"payload", {{"pad", big_pad}}}}.dump(), 413,
             "payload_too_large"),
      failed("PATCH", app_path, json{{"name", "big"}, {"pad", big_pad}}.dump(), 413,
             "payload_too_large"),
      failed("POST", "/api/v1/app", json{{"name", "huge"}, {"pad", huge_pad}}.dump(), 413,
             "payload_too_large"),
      failed("POST", app_path + "/msg",
             json{{"eventType", "a"}, {"payload", {{"pad", huge_pad}}}}.dump(), 413,
             "payload_too_large"),
      // Bad list parameters.
      bad_query("/api/v1/app?limit=0"),
      bad_query("/api/v1/app?limit=300"),
      bad_query("/api/v1/app?limit=abc"),
      bad_query("/api/v1/app?limit=-1"),
      bad_query("/api/v1/app?limit=5x"),
      bad_query(app_path + "/endpoint?limit=0"),
      bad_query(app_path + "/msg?limit=251"),
      // Bad secrets.
      invalid("POST", app_path + "/endpoint",
              {{"url", "https://example.org/"}, {"secret", "whsec_short"}}, field("secret")),
      invalid("POST", app_path + "/endpoint",
              {{"url", "https://example.org/"}, {"secret", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
              field("secret")),
      invalid("PATCH", ep_path, {{"secret", "whsec_short"}}, field("secret")),
      invalid("POST", ep_path + "/secret/rotate", {{"key", "whsec_short"}}, field("key")),
      invalid("POST", ep_path + "/secret/rotate", {{"key", "whsec_!!!!"}}, field("key")),
      invalid("POST", ep_path + "/secret/rotate", {{"gracePeriodSeconds", -1}},
              field("gracePeriodSeconds")),
      // Bad custom headers.
      invalid("POST", app_path + "/endpoint",
              {{"url", "https://example.org/"}, {"headers", {{"webhook-signature", "v1,x"}}}},
              field("headers")),
      invalid("PUT", ep_path + "/headers", {{"headers", {{"Content-Type", "text/plain"}}}},
              field("headers")),
      invalid("PATCH", ep_path + "/headers", {{"headers", {{"X-Ok", "1"}, {"Host", "evil"}}}},
              field("headers")),
      invalid("PUT", ep_path + "/headers", {{"headers", {{"X-Bad", "a\r\nInjected: 1"}}}},
              field("headers")),
      invalid("PUT", ep_path + "/headers", {{"headers", {{"Bad Name", "1"}}}}, field("headers")),
      invalid("PUT", ep_path + "/headers", json::object(), field("headers")),
      invalid("PATCH", ep_path, {{"headers", {{"svix-id", "x"}}}}, field("headers")),
  };

  const json before = f.snapshot();
  REQUIRE(before["apps"].size() == 1);
  REQUIRE(before["endpoints"].at(before["apps"][0]["id"].get<std::string>()).size() == 1);
  for (const auto& c : cases) {
    INFO(c.method << " " << c.path << " " << c.body.substr(0, 120));
    f.clock.advance(1000);  // any write would now show in an updatedAt
    Reply r = f.call(c.method, c.path, c.body);
    if (c.status == 422) {
      check_validation(r, c.loc);
    } else {
      check_error(r, c.status, c.code);
    }
    CHECK(f.snapshot() == before);
  }
}

TEST_CASE("http: a 422 lists every problem of the body") {
  ApiFixture f;
  Reply r =
      f.post("/api/v1/app",
             {{"name", 5}, {"uid", "bad uid"}, {"throttleRate", 0}, {"metadata", json::array()}});
  check_validation(r, json{"body", "name"});
  CHECK(locs(r.j["detail"]) == std::vector<json>{json{"body", "name"}, json{"body", "uid"},
                                                 json{"body", "throttleRate"},
                                                 json{"body", "metadata"}});
  f.make_app("Acme", "acme");
  r = f.post("/api/v1/app/acme/endpoint", {{"url", "ftp://x"},
                                           {"disabled", "no"},
                                           {"secret", "whsec_short"},
                                           {"headers", {{"Host", "x"}}}});
  CHECK(locs(r.j["detail"]) == std::vector<json>{json{"body", "url"}, json{"body", "disabled"},
                                                 json{"body", "headers"}, json{"body", "secret"}});
  CHECK(f.app_count() == 1);
  CHECK(f.list("/api/v1/app/acme/endpoint").empty());
}

TEST_CASE("http: unknown fields in bodies are ignored") {
  ApiFixture f;
  Reply app = f.post("/api/v1/app", {{"name", "Acme"}, {"uid", "acme"}, {"bogus", {1, 2}}});
  CHECK(app.status == 201);
  CHECK_FALSE(app.j.contains("bogus"));
  Reply ep = f.post("/api/v1/app/acme/endpoint",
                    {{"url", "https://example.com/"}, {"uid", "main"}, {"futureField", true}});
  CHECK(ep.status == 201);
  CHECK(f.patch("/api/v1/app/acme", {{"name", "Acme 2"}, {"whatever", nullptr}}).status == 200);
  CHECK(f.patch("/api/v1/app/acme/endpoint/main", {{"nope", "x"}}).status == 200);
  Reply msg = f.post("/api/v1/app/acme/msg", {{"eventType", "user.created"},
                                              {"payload", json::object()},
                                              {"payloadRetentionPeriod", 90},
                                              {"extra", {{"a", 1}}}});
  CHECK(msg.status == 202);
  CHECK(f.post("/api/v1/event-type", {{"name", "user.created"}, {"featureFlag", "x"}}).status ==
        201);
  CHECK(f.get("/api/v1/app/acme").j["name"] == "Acme 2");
}

// ---------------------------------------------------------------------------------------------
// Idempotency

TEST_CASE("http: idempotency-key replays the first success per token, key and path") {
  ApiFixture f;
  auto post_app = [&](const json& body, const std::string& key,
                      const std::string& token = kAdminToken) {
    return f.call("POST", "/api/v1/app", body.dump(), bearer(token), {{"idempotency-key", key}});
  };

  Reply first = post_app({{"name", "one"}}, "K");
  REQUIRE(first.status == 201);
  Reply replay = post_app({{"name", "one"}}, "K");
  CHECK(replay.status == 201);
  CHECK(replay.j == first.j);
  // The replay is the stored response, whatever the new body says.
  f.clock.advance(1000);
  CHECK(post_app({{"name", "changed"}}, "K").j == first.j);
  CHECK(f.app_count() == 1);

  SUBCASE("the same key on another path is independent") {
    Reply et = f.call("POST", "/api/v1/event-type", json{{"name", "user.created"}}.dump(),
                      bearer(kAdminToken), {{"idempotency-key", "K"}});
    CHECK(et.status == 201);
    CHECK(et.j["name"] == "user.created");
    CHECK(f.list("/api/v1/event-type").size() == 1);
    CHECK(f.app_count() == 1);
  }
  SUBCASE("a failed request does not poison its key") {
    check_validation(post_app({{"name", 5}}, "K2"), json{"body", "name"});
    CHECK(f.app_count() == 1);
    Reply ok = post_app({{"name", "two"}}, "K2");
    CHECK(ok.status == 201);
    CHECK(ok.j["name"] == "two");
    CHECK(ok.j["id"] != first.j["id"]);
    CHECK(f.app_count() == 2);
    CHECK(post_app({{"name", "two"}}, "K2").j == ok.j);
    CHECK(f.app_count() == 2);
    // A conflict is not stored either.
    f.make_app("Taken", "taken");
    check_error(post_app({{"name", "x"}, {"uid", "taken"}}, "K3"), 409, "conflict");
    CHECK(post_app({{"name", "x"}, {"uid", "free"}}, "K3").status == 201);
    CHECK(f.app_count() == 4);
  }
  SUBCASE("another token with the same key is independent") {
    const std::string other = "second_admin_token_abcdefghij";
    ensure_admin_token(*f.db, f.clock, other);
    Reply mine = post_app({{"name", "one"}}, "K", other);
    CHECK(mine.status == 201);
    CHECK(mine.j["id"] != first.j["id"]);
    CHECK(f.app_count() == 2);
    CHECK(post_app({{"name", "one"}}, "K", other).j == mine.j);
    CHECK(post_app({{"name", "one"}}, "K").j == first.j);
    CHECK(f.app_count() == 2);
  }
  SUBCASE("a stored response expires after 12 hours") {
    f.clock.advance(12LL * 3600 * 1000 + 1);
    Reply later = post_app({{"name", "one"}}, "K");
    CHECK(later.status == 201);
    CHECK(later.j["id"] != first.j["id"]);
    CHECK(f.app_count() == 2);
  }
  SUBCASE("a replayed message create keeps its id and adds no deliveries") {
    f.make_app("Acme", "acme");
    f.make_endpoint("acme", {{"url", "https://example.com/"}});
    const json body{{"eventType", "user.created"}, {"payload", {{"n", 1}}}};
    const httplib::Headers key{{"idempotency-key", "M"}};
    Reply m1 = f.call("POST", "/api/v1/app/acme/msg", body.dump(), bearer(kAdminToken), key);
    Reply m2 = f.call("POST", "/api/v1/app/acme/msg", body.dump(), bearer(kAdminToken), key);
    CHECK(m1.status == 202);
    CHECK(m2.status == 202);
    CHECK(m2.j == m1.j);
    CHECK(f.list("/api/v1/app/acme/msg").size() == 1);
    CHECK(f.deliveries(m1.j["id"]).size() == 1);
  }
  SUBCASE("concurrent requests with one key create one app") {
    std::vector<std::thread> threads;
    std::vector<std::string> ids(6);
    std::vector<int> statuses(6, 0);
    for (size_t i = 0; i < ids.size(); ++i) {
      threads.emplace_back([&, i] {
        httplib::Client c("127.0.0.1", f.port());
        auto res = c.Post("/api/v1/app",
                          {{"Authorization", bearer(kAdminToken)}, {"idempotency-key", "C"}},
                          R"({"name":"concurrent"})", "application/json");
        if (!res) return;
        statuses[i] = res->status;
        json j = json::parse(res->body, nullptr, false);
        if (j.is_object() && j["id"].is_string()) ids[i] = j["id"].get<std::string>();
      });
    }
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < ids.size(); ++i) {
      CHECK(statuses[i] == 201);
      CHECK(ids[i] == ids[0]);
    }
    CHECK_FALSE(ids[0].empty());
    CHECK(f.app_count() == 2);
  }
  SUBCASE("without a key, each POST creates") {
    f.post("/api/v1/app", {{"name", "one"}});
    f.post("/api/v1/app", {{"name", "one"}});
    CHECK(f.app_count() == 3);
  }
}

// ---------------------------------------------------------------------------------------------
// Pagination

TEST_CASE("http: lists page with iterator, done and prevIterator") {
  ApiFixture f;
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    ids.push_back(f.make_app("app " + std::to_string(i))["id"].get<std::string>());
    f.clock.advance(i % 2);  // some share a millisecond
  }

  std::vector<json> pages;
  std::string path = "/api/v1/app?limit=3";
  for (int guard = 0; guard < 10; ++guard) {
    Reply r = f.get(path);
    REQUIRE(r.status == 200);
    pages.push_back(r.j);
    if (r.j["done"] == true) break;
    REQUIRE(r.j["iterator"].is_string());
    path = "/api/v1/app?limit=3&iterator=" + r.j["iterator"].get<std::string>();
  }
  REQUIRE(pages.size() == 3);
  CHECK(pages[0]["data"].size() == 3);
  CHECK(pages[1]["data"].size() == 3);
  CHECK(pages[2]["data"].size() == 1);
  CHECK(pages[0]["done"] == false);
  CHECK(pages[1]["done"] == false);
  CHECK(pages[2]["done"] == true);

  std::vector<std::string> seen;
  for (const auto& page : pages) {
    for (const auto& app : page["data"]) seen.push_back(app["id"].get<std::string>());
    CHECK(page["iterator"] == page["data"].back()["id"]);
  }
  CHECK(seen == ids);  // every app once, oldest first
  CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == 7);

  const json prev = pages[1]["prevIterator"];
  REQUIRE(prev.is_string());
  CHECK(prev.get<std::string>().front() == '-');
  Reply back = f.get("/api/v1/app?limit=3&iterator=" + prev.get<std::string>());
  REQUIRE(back.status == 200);
  CHECK(back.j["data"] == pages[0]["data"]);

  // The default limit takes all seven at once.
  Reply all = f.get("/api/v1/app");
  CHECK(all.j["data"].size() == 7);
  CHECK(all.j["done"] == true);
}

TEST_CASE("http: message and endpoint lists page in their own order") {
  ApiFixture f;
  f.make_app("Acme", "acme");
  std::vector<std::string> msgs;
  std::vector<std::string> eps;
  for (int i = 0; i < 5; ++i) {
    json m = f.make_message("acme", {{"eventType", "e"}, {"payload", {{"i", i}}}});
    msgs.push_back(m["id"].get<std::string>());
    json e = f.make_endpoint("acme", {{"url", "https://example.com/" + std::to_string(i)}});
    eps.push_back(e["id"].get<std::string>());
  }
  auto ids_of = [](const json& page) {
    std::vector<std::string> out;
    for (const auto& item : page["data"]) out.push_back(item["id"].get<std::string>());
    return out;
  };

  // Messages: newest first.
  Reply p1 = f.get("/api/v1/app/acme/msg?limit=2");
  REQUIRE(p1.status == 200);
  CHECK(ids_of(p1.j) == std::vector<std::string>{msgs[4], msgs[3]});
  CHECK(p1.j["done"] == false);
  Reply p2 = f.get("/api/v1/app/acme/msg?limit=2&iterator=" + p1.j["iterator"].get<std::string>());
  CHECK(ids_of(p2.j) == std::vector<std::string>{msgs[2], msgs[1]});
  CHECK(p2.j["done"] == false);
  Reply p3 = f.get("/api/v1/app/acme/msg?limit=2&iterator=" + p2.j["iterator"].get<std::string>());
  CHECK(ids_of(p3.j) == std::vector<std::string>{msgs[0]});
  CHECK(p3.j["done"] == true);
  Reply back =
      f.get("/api/v1/app/acme/msg?limit=2&iterator=" + p2.j["prevIterator"].get<std::string>());
  CHECK(ids_of(back.j) == ids_of(p1.j));

  // Endpoints: newest first, as Svix; oldest first when asked.
  Reply e1 = f.get("/api/v1/app/acme/endpoint?limit=4");
  CHECK(ids_of(e1.j) == std::vector<std::string>{eps[4], eps[3], eps[2], eps[1]});
  CHECK(e1.j["done"] == false);
  Reply e2 =
      f.get("/api/v1/app/acme/endpoint?limit=4&iterator=" + e1.j["iterator"].get<std::string>());
  CHECK(ids_of(e2.j) == std::vector<std::string>{eps[0]});
  CHECK(e2.j["done"] == true);
  Reply a1 = f.get("/api/v1/app/acme/endpoint?limit=4&order=ascending");
  CHECK(ids_of(a1.j) == std::vector<std::string>{eps[0], eps[1], eps[2], eps[3]});
}

// ---------------------------------------------------------------------------------------------
// App-scoped tokens

TEST_CASE("http: an app-scoped token sees only its own app") {
  ApiFixture f;
  json mine = f.make_app("Mine", "mine");
  json other = f.make_app("Other", "other");
  json my_ep = f.make_endpoint("mine", {{"url", "https://example.com/mine"}});
  f.make_endpoint("other", {{"url", "https://example.com/other"}});
  const std::string token = f.add_app_token(mine["id"], std::nullopt);
  auto as_app = [&](const std::string& method, const std::string& path,
                    const std::string& body = "") {
    return f.call(method, path, body, bearer(token));
  };

  Reply r = as_app("GET", "/api/v1/app/" + mine["id"].get<std::string>());
  CHECK(r.status == 200);
  CHECK(r.j == mine);
  CHECK(as_app("GET", "/api/v1/app/mine").status == 200);
  r = as_app("GET", "/api/v1/app/mine/endpoint");
  CHECK(r.status == 200);
  REQUIRE(r.j["data"].size() == 1);
  CHECK(r.j["data"][0]["id"] == my_ep["id"]);
  CHECK(as_app("GET", "/api/v1/app/mine/endpoint/" + my_ep["id"].get<std::string>()).status == 200);
  CHECK(as_app("POST", "/api/v1/app/mine/msg", R"({"eventType":"user.created","payload":{}})")
            .status == 202);

  check_error(as_app("GET", "/api/v1/app/other"), 404, "not_found");
  check_error(as_app("GET", "/api/v1/app/" + other["id"].get<std::string>()), 404, "not_found");
  check_error(as_app("GET", "/api/v1/app/other/endpoint"), 404, "not_found");
  check_error(as_app("GET", "/api/v1/app"), 404, "not_found");
  check_error(as_app("POST", "/api/v1/app", R"({"name":"Sneaky"})"), 404, "not_found");
  check_error(as_app("PATCH", "/api/v1/app/other", R"({"name":"Hijacked"})"), 404, "not_found");
  check_error(as_app("PUT", "/api/v1/app/other", R"({"name":"Hijacked"})"), 404, "not_found");
  check_error(as_app("PUT", "/api/v1/app/brand-new", R"({"name":"Sneaky"})"), 404, "not_found");
  check_error(as_app("DELETE", "/api/v1/app/other"), 404, "not_found");
  check_error(as_app("POST", "/api/v1/app/other/msg", R"({"eventType":"a","payload":{}})"), 404,
              "not_found");
  check_error(as_app("POST", "/api/v1/event-type", R"({"name":"user.created"})"), 404, "not_found");
  // Its own application it may read, not rename, replace or delete.
  check_error(as_app("PATCH", "/api/v1/app/mine", R"({"name":"Renamed"})"), 403, "forbidden");
  check_error(as_app("PUT", "/api/v1/app/mine", R"({"name":"Replaced"})"), 403, "forbidden");
  check_error(as_app("DELETE", "/api/v1/app/mine"), 403, "forbidden");
  CHECK(f.get("/api/v1/app/mine").j == mine);
  CHECK(f.app_count() == 2);
  CHECK(f.get("/api/v1/app/other").j == other);
  CHECK(f.list("/api/v1/app/other/msg").empty());

  SUBCASE("an expired scoped token gets 401") {
    const std::string expired = f.add_app_token(mine["id"], f.clock.now_ms() - 1);
    check_error(f.call("GET", "/api/v1/app/mine", "", bearer(expired)), 401,
                "authentication_failed");
    const std::string soon = f.add_app_token(mine["id"], f.clock.now_ms() + 60'000);
    CHECK(f.call("GET", "/api/v1/app/mine", "", bearer(soon)).status == 200);
    f.clock.advance(60'000);
    check_error(f.call("GET", "/api/v1/app/mine", "", bearer(soon)), 401, "authentication_failed");
  }
}

// ---------------------------------------------------------------------------------------------
// Message create writes deliveries; resend

TEST_CASE("http: a message gets one delivery per matching enabled endpoint; resend adds one") {
  ApiFixture f;
  f.make_app("Acme", "acme");
  json disabled = f.make_endpoint("acme", {{"url", "https://example.com/off"}, {"disabled", true}});
  CHECK(disabled["disabled"] == true);
  json filtered = f.make_endpoint(
      "acme", {{"url", "https://example.com/inv"}, {"eventTypes", {"invoice.paid"}}});
  json matching = f.make_endpoint(
      "acme", {{"url", "https://example.com/users"}, {"filterTypes", {"user.created", "x.y"}}});
  CHECK(matching["eventTypes"] == json{"user.created", "x.y"});

  f.clock.advance(5000);
  const TimeMs accepted_at = f.clock.now_ms();
  json msg = f.make_message("acme", {{"eventType", "user.created"}, {"payload", {{"id", 1}}}});
  const std::string msg_id = msg["id"];

  auto ds = f.deliveries(msg_id);
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].endpoint_id == matching["id"]);
  CHECK(ds[0].msg_id == msg_id);
  CHECK(ds[0].status == DeliveryStatus::kPending);
  CHECK(ds[0].next_attempt_at == accepted_at);
  CHECK(ds[0].attempts == 0);
  CHECK(ds[0].trigger == TriggerType::kScheduled);

  // The per-endpoint view agrees.
  Reply per_ep = f.get("/api/v1/app/acme/msg/" + msg_id + "/endpoint");
  REQUIRE(per_ep.status == 200);
  REQUIRE(per_ep.j["data"].size() == 1);
  CHECK(per_ep.j["data"][0]["id"] == matching["id"]);
  CHECK(per_ep.j["data"][0]["statusText"] == "pending");

  // An event type nobody subscribes to (other than unfiltered endpoints) gets no delivery.
  json lonely =
      f.make_message("acme", {{"eventType", "nobody.cares"}, {"payload", json::object()}});
  CHECK(f.deliveries(lonely["id"]).empty());

  f.clock.advance(60'000);
  const std::string resend_base = "/api/v1/app/acme/msg/" + msg_id + "/endpoint/";
  Reply r = f.post(resend_base + matching["id"].get<std::string>() + "/resend", json::object());
  CHECK(r.status == 202);
  CHECK(r.j == json::object());
  ds = f.deliveries(msg_id);
  REQUIRE(ds.size() == 2);
  int manual = 0;
  for (const auto& d : ds) {
    CHECK(d.endpoint_id == matching["id"]);
    if (d.trigger == TriggerType::kManual) {
      ++manual;
      CHECK(d.status == DeliveryStatus::kPending);
      CHECK(d.next_attempt_at == f.clock.now_ms());
    }
  }
  CHECK(manual == 1);

  // Resending to an endpoint that does not subscribe is allowed (it is asked for by hand).
  CHECK(
      f.post(resend_base + filtered["id"].get<std::string>() + "/resend", json::object()).status ==
      202);
  CHECK(f.deliveries(msg_id).size() == 3);

  check_error(f.post(resend_base + disabled["id"].get<std::string>() + "/resend", json::object()),
              409, "conflict");
  check_error(f.post(resend_base + "nope/resend", json::object()), 404, "not_found");
  CHECK(f.deliveries(msg_id).size() == 3);
}

TEST_CASE("http: a message to an unknown uid creates the app only when the body says how") {
  ApiFixture f;
  const json msg{{"eventType", "user.created"}, {"payload", json::object()}};
  check_error(f.post("/api/v1/app/fresh/msg", msg), 404, "not_found");
  CHECK(f.app_count() == 0);

  json with_app = msg;
  with_app["application"] = json::object();  // no name
  check_validation(f.post("/api/v1/app/fresh/msg", with_app), json{"body", "name"});
  CHECK(f.app_count() == 0);

  with_app["application"] = {{"name", "Fresh"}};
  Reply r = f.post("/api/v1/app/fresh/msg", with_app);
  CHECK(r.status == 202);
  Reply app = f.get("/api/v1/app/fresh");
  CHECK(app.status == 200);
  CHECK(app.j["name"] == "Fresh");
  CHECK(f.list("/api/v1/app/fresh/msg").size() == 1);

  // A bad message body creates no app either.
  json bad = with_app;
  bad.erase("payload");
  check_validation(f.post("/api/v1/app/other/msg", bad), json{"body", "payload"});
  CHECK(f.app_count() == 1);
}

// ---------------------------------------------------------------------------------------------
// Endpoint secret, headers and stats

TEST_CASE("http: endpoint secrets are shown, kept when given, and rotated") {
  ApiFixture f;
  f.make_app("Acme", "acme");
  f.make_endpoint("acme", {{"url", "https://example.com/a"}, {"uid", "gen"}});
  const std::string given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  f.make_endpoint("acme", {{"url", "https://example.com/b"}, {"uid", "given"}, {"secret", given}});
  auto secret_of = [&](const std::string& ep) {
    Reply r = f.get("/api/v1/app/acme/endpoint/" + ep + "/secret");
    REQUIRE(r.status == 200);
    REQUIRE(r.j["key"].is_string());
    return r.j["key"].get<std::string>();
  };

  const std::string generated = secret_of("gen");
  CHECK(generated.rfind("whsec_", 0) == 0);
  auto raw = decode_secret(generated);
  REQUIRE(raw.has_value());
  CHECK(raw->size() >= 24);
  CHECK(secret_of("given") == given);
  CHECK(f.get("/api/v1/app/acme/endpoint/given").body.find(given) == std::string::npos);

  const std::string next = generate_secret();
  Reply rotate = f.post("/api/v1/app/acme/endpoint/given/secret/rotate", {{"key", next}});
  CHECK(rotate.status == 204);
  CHECK(rotate.body.empty());
  CHECK(secret_of("given") == next);

  // Without a key, rotation makes a fresh one.
  CHECK(f.post("/api/v1/app/acme/endpoint/given/secret/rotate", json::object()).status == 204);
  const std::string fresh = secret_of("given");
  CHECK(fresh != next);
  CHECK(decode_secret(fresh).has_value());
  // An empty body works the same.
  CHECK(f.call("POST", "/api/v1/app/acme/endpoint/given/secret/rotate").status == 204);
  CHECK(secret_of("given") != fresh);

  // A PATCH with a secret sets it.
  const std::string patched = generate_secret();
  CHECK(f.patch("/api/v1/app/acme/endpoint/gen", {{"secret", patched}}).status == 200);
  CHECK(secret_of("gen") == patched);
}

TEST_CASE("http: endpoint headers are replaced, patched and never echo sensitive values") {
  ApiFixture f;
  f.make_app("Acme", "acme");
  f.make_endpoint("acme", {{"url", "https://example.com/a"}, {"uid", "main"}});
  const std::string path = "/api/v1/app/acme/endpoint/main/headers";

  Reply empty = f.get(path);
  REQUIRE(empty.status == 200);
  CHECK(empty.j["headers"] == json::object());
  CHECK(empty.j["sensitive"] == json::array());

  Reply put = f.put(path, {{"headers",
                            {{"X-Custom", "a"},
                             {"Authorization", "Bearer s3cr3t-value"},
                             {"X-Api-Key", "k3y-value"}}}});
  CHECK(put.status == 204);
  CHECK(put.body.empty());
  Reply got = f.get(path);
  REQUIRE(got.status == 200);
  CHECK(got.j["headers"] == json{{"X-Custom", "a"}});
  std::vector<std::string> sensitive = got.j["sensitive"];
  CHECK(std::set<std::string>(sensitive.begin(), sensitive.end()) ==
        std::set<std::string>{"Authorization", "X-Api-Key"});
  CHECK(got.body.find("s3cr3t-value") == std::string::npos);
  CHECK(got.body.find("k3y-value") == std::string::npos);
  CHECK(f.get("/api/v1/app/acme/endpoint/main").body.find("s3cr3t") == std::string::npos);

  // PATCH: null removes, others are added or replaced, the rest stay.
  Reply patched =
      f.patch(path, {{"headers", {{"X-Custom", nullptr}, {"X-Other", "b"}, {"X-Api-Key", "new"}}}});
  CHECK(patched.status == 204);
  got = f.get(path);
  CHECK(got.j["headers"] == json{{"X-Other", "b"}});
  sensitive = got.j["sensitive"].get<std::vector<std::string>>();
  CHECK(std::set<std::string>(sensitive.begin(), sensitive.end()) ==
        std::set<std::string>{"Authorization", "X-Api-Key"});

  // PUT replaces the whole set.
  CHECK(f.put(path, {{"headers", {{"X-Only", "1"}}}}).status == 204);
  got = f.get(path);
  CHECK(got.j["headers"] == json{{"X-Only", "1"}});
  CHECK(got.j["sensitive"] == json::array());

  // A rejected header leaves the set alone.
  check_validation(f.put(path, {{"headers", {{"X-Fine", "1"}, {"webhook-id", "x"}}}}),
                   json{"body", "headers"});
  CHECK(f.get(path).j == got.j);
}

TEST_CASE("http: endpoint stats count deliveries by status") {
  ApiFixture f;
  f.make_app("Acme", "acme");
  json ep = f.make_endpoint("acme", {{"url", "https://example.com/a"}, {"uid", "main"}});
  const std::string path = "/api/v1/app/acme/endpoint/main/stats";

  Reply r = f.get(path);
  REQUIRE(r.status == 200);
  CHECK(r.j["success"] == 0);
  CHECK(r.j["pending"] == 0);
  CHECK(r.j["fail"] == 0);
  CHECK(r.j["sending"] == 0);

  std::vector<std::string> msgs;
  for (int i = 0; i < 3; ++i) {
    json m = f.make_message("acme", {{"eventType", "e"}, {"payload", {{"i", i}}}});
    msgs.push_back(m["id"].get<std::string>());
  }
  auto first = f.deliveries(msgs[0]);
  auto second = f.deliveries(msgs[1]);
  REQUIRE(first.size() == 1);
  REQUIRE(second.size() == 1);
  set_status(f, first[0].id, DeliveryStatus::kSuccess);
  set_status(f, second[0].id, DeliveryStatus::kFail);
  r = f.get(path);
  REQUIRE(r.status == 200);
  CHECK(r.j["success"] == 1);
  CHECK(r.j["fail"] == 1);
  CHECK(r.j["pending"] == 1);
  CHECK(r.j["sending"] == 0);
  CHECK(f.get("/api/v1/app/acme/endpoint/" + ep["id"].get<std::string>() + "/stats").j == r.j);
}

// ---------------------------------------------------------------------------------------------
// Path parameters, raw payloads, nesting, https-only

// httplib URL-decodes the path before matching, so a capture must not be decoded again:
// "%2541" on the wire is "%41", not "A".
TEST_CASE("http: a percent-encoded path parameter is decoded once") {
  ApiFixture f;
  f.make_app("Acme", "acme");
  json plain = f.make_message(
      "acme", {{"eventType", "e"}, {"eventId", "evtA"}, {"payload", json::object()}});
  json percent = f.make_message(
      "acme", {{"eventType", "e"}, {"eventId", "evt%41"}, {"payload", json::object()}});
  // What an SDK sends for eventId "evt%41": encodeURIComponent gives "evt%2541".
  Reply r = f.get("/api/v1/app/acme/msg/evt%2541");
  CHECK(r.status == 200);
  CHECK(r.j["id"] == percent["id"]);
  CHECK(r.j["id"] != plain["id"]);
  r = f.get("/api/v1/app/acme/msg/evtA");
  CHECK(r.j["id"] == plain["id"]);
}

TEST_CASE("http: the payload is stored byte for byte as sent") {
  ApiFixture f;
  json app = f.make_app("Acme", "acme");
  const std::string payload = R"({"z": 1, "a": [1.50, 2e3, 1e-7], "s": "x \"payload\": {}"})";
  const std::string bodies[] = {
      R"({"eventType": "e", "payload": )" + payload + "}",
      // A decoy "payload" inside a string before the real one, and an escaped key.
      R"({"eventId": "x \"payload\": {\"no\": 1}", "eventType": "e", "pay\u006coad": )" + payload +
          "}",
      // A repeated key: the last one wins, as in the parsed body.
      R"({"eventType": "e", "payload": {"old": true}, "payload": )" + payload + "}",
  };
  for (const auto& body : bodies) {
    INFO("body: " << body);
    Reply r = f.call("POST", "/api/v1/app/acme/msg", body);
    REQUIRE(r.status == 202);
    CHECK(r.j["payload"] == json::parse(payload));
    auto m =
        f.db->session()->messages().get(app["id"].get<std::string>(), r.j["id"].get<std::string>());
    REQUIRE(m.has_value());
    CHECK(m->payload == payload);
  }
}

// cpp-httplib parses form-encoded bodies (refusing one over 8 KB) and multipart ones itself.
TEST_CASE("http: a body is read as JSON whatever its Content-Type, with one limit for all") {
  ApiFixture f;
  json app = f.make_app("Acme", "acme");
  const std::string payload = json{{"pad", std::string(20 * 1024, 'x')}}.dump();  // over 8 KB
  const std::string body = R"({"eventType": "e", "payload": )" + payload + "}";
  const std::string types[] = {
      "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8",
      "multipart/form-data; boundary=xyz", "Multipart/Form-Data",
      "text/plain;charset=UTF-8",          "application/octet-stream"};
  for (const std::string& type : types) {
    INFO("Content-Type: " << type);
    Reply r =
        f.call("POST", "/api/v1/app/acme/msg", body, bearer(kAdminToken), {{"Content-Type", type}});
    REQUIRE_MESSAGE(r.status == 202, r.body);
    auto m =
        f.db->session()->messages().get(app["id"].get<std::string>(), r.j["id"].get<std::string>());
    REQUIRE(m.has_value());
    CHECK(m->payload == payload);
    // Over the limit, it is our 413 at every type; a form-encoded body that is not JSON is a 400.
    const std::string big = json{{"name", "big"}, {"pad", std::string(kMaxPayload, 'x')}}.dump();
    check_error(f.call("POST", "/api/v1/app", big, bearer(kAdminToken), {{"Content-Type", type}}),
                413, "payload_too_large");
    Reply bad = f.call("POST", "/api/v1/app", "name=Acme&uid=form", bearer(kAdminToken),
                       {{"Content-Type", type}});
    check_error(bad, 400, "bad_request");
    CHECK(bad.j["detail"].get<std::string>().find("not valid JSON") != std::string::npos);
  }
  CHECK(f.app_count() == 1);
}

// Printing JSON is recursive: a body nested ~150,000 deep (300 KB, under the default 1 MiB
// limit) once overflowed a worker's stack and killed the process.
TEST_CASE("http: deeply nested JSON gets a 400 and stores nothing") {
  ApiFixture f(1 << 20);
  f.make_app("Acme", "acme");
  auto nested = [](size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  const std::string msg = R"({"eventType":"a","payload":{"a":)" + nested(150'000) + "}}";
  const std::string event_type = R"({"name":"deep","schemas":{"a":)" + nested(150'000) + "}}";
  REQUIRE(msg.size() < (1 << 20));

  check_error(f.call("POST", "/api/v1/app/acme/msg", msg), 400, "bad_request");
  check_error(f.call("POST", "/api/v1/event-type", event_type), 400, "bad_request");
  // Brackets inside strings do not count, escaped quotes included.
  const std::string in_string =
      R"({"eventType":"a","payload":{"a":"\\\")" + std::string(1000, '[') + R"("}})";
  CHECK(f.call("POST", "/api/v1/app/acme/msg", in_string).status == 202);
  // The limit is 64 levels of the whole body (docs/SECURITY.md): the body and its payload are
  // two of them, so 62 more are fine and 63 are one too many.
  CHECK(f.call("POST", "/api/v1/app/acme/msg",
               R"({"eventType":"a","payload":{"a":)" + nested(62) + "}}")
            .status == 202);
  check_error(f.call("POST", "/api/v1/app/acme/msg",
                     R"({"eventType":"a","payload":{"a":)" + nested(63) + "}}"),
              400, "bad_request");
  CHECK(f.call("GET", "/api/v1/health", "", std::nullopt).status == 204);
  CHECK(f.list("/api/v1/app/acme/msg").size() == 2);
  // An OpenAPI document given as text is held to the same bound, as a 422 at specRaw.
  const std::string deep_spec = R"({"openapi":"3.1.0","webhooks":{"a":)" + nested(100) + "}}";
  check_validation(f.post("/api/v1/event-type/import/openapi", {{"specRaw", deep_spec}}),
                   json{"body", "specRaw"});
  CHECK(f.list("/api/v1/event-type?include_archived=true").empty());
}

TEST_CASE("http: an https-only server refuses http:// endpoint URLs") {
  ApiOptions options;
  options.max_payload_bytes = kMaxPayload;
  options.https_only = true;
  ApiFixture f(options);
  f.make_app("Acme", "acme");
  check_validation(f.post("/api/v1/app/acme/endpoint", {{"url", "http://example.com/"}}),
                   json{"body", "url"});
  CHECK(f.list("/api/v1/app/acme/endpoint").empty());
  json ep = f.make_endpoint("acme", {{"url", "HTTPS://example.com/"}, {"uid", "main"}});
  check_validation(f.patch("/api/v1/app/acme/endpoint/main", {{"url", "http://example.com/"}}),
                   json{"body", "url"});
  CHECK(f.get("/api/v1/app/acme/endpoint/main").j == ep);
}

TEST_CASE("http: more than 100 request headers get a 431 and change nothing") {
  ApiFixture f;
  httplib::Client cli("127.0.0.1", f.port());
  httplib::Headers many{{"Authorization", std::string("Bearer ") + kAdminToken}};
  for (int i = 0; i < 120; ++i) many.emplace("X-Extra-" + std::to_string(i), "v");
  auto res = cli.Post("/api/v1/app", many, R"({"name":"Acme"})", "application/json");
  REQUIRE(res);
  CHECK(res->status == 431);
  CHECK(json::parse(res->body)["code"] == "headers_too_large");
  CHECK(f.list("/api/v1/app").empty());
  httplib::Headers few{{"Authorization", std::string("Bearer ") + kAdminToken}};
  for (int i = 0; i < 50; ++i) few.emplace("X-Extra-" + std::to_string(i), "v");
  res = cli.Post("/api/v1/app", few, R"({"name":"Acme"})", "application/json");
  REQUIRE(res);
  CHECK(res->status == 201);
}

// ---------------------------------------------------------------------------------------------
// The delivery portal: access links, whoami, the API extensions it reads, its static files

namespace {

// Stores an attempt of `msg_id` at `endpoint_id` made at `t`, with `headers` as sent.
Attempt add_attempt(ApiFixture& f, const std::string& app_id, const std::string& msg_id,
                    const std::string& endpoint_id, TimeMs t, DeliveryStatus status,
                    const std::string& headers = "{}") {
  Attempt a;
  a.id = new_id(kAttemptPrefix, t);
  a.app_id = app_id;
  a.msg_id = msg_id;
  a.endpoint_id = endpoint_id;
  a.delivery_id = "dlv_test";
  a.url = "https://example.com/hook";
  a.response_status_code = status == DeliveryStatus::kSuccess ? 200 : 500;
  a.response = "{}";
  a.response_duration_ms = 12;
  a.status = status;
  a.request_headers_json = headers;
  a.timestamp = t;
  f.db->session()->attempts().insert({a});
  return a;
}

}  // namespace

TEST_CASE("http: app portal access hands out a link with a token scoped to the app") {
  ApiOptions options;
  options.public_url = "https://hooks.example.com";
  ApiFixture f(options);
  json mine = f.make_app("Mine", "mine");
  json other = f.make_app("Other", "other");
  const std::string path = "/api/v1/auth/app-portal-access/";

  Reply r = f.post(path + "mine", json::object());
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const std::string token = r.j["token"];
  CHECK(r.j["url"] == "https://hooks.example.com/portal/#key=" + token);
  CHECK(f.call("GET", "/api/v1/app/mine", "", bearer(token)).status == 200);
  check_error(f.call("GET", "/api/v1/app/other", "", bearer(token)), 404, "not_found");
  check_error(f.call("GET", "/api/v1/app", "", bearer(token)), 404, "not_found");
  // By id too, and unknown fields (Svix's featureFlags, sessionId, application) are ignored.
  r = f.post(path + mine["id"].get<std::string>(),
             {{"featureFlags", {"x"}}, {"sessionId", "s1"}, {"application", {{"name", "n"}}}});
  CHECK(r.status == 200);
  check_error(f.post(path + "nope", json::object()), 404, "not_found");

  SUBCASE("the token expires after `expiry` seconds, 7 days by default") {
    Reply who = f.call("GET", "/api/v1/auth/whoami", "", bearer(token));
    REQUIRE(who.status == 200);
    CHECK(who.j["appId"] == mine["id"]);
    CHECK(who.j["readOnly"] == false);
    CHECK(who.j["expiresAt"] == "2023-11-21T22:13:20.000Z");
    Reply hour = f.post(path + "mine", {{"expiry", 3600}});
    REQUIRE(hour.status == 200);
    const std::string short_lived = hour.j["token"];
    f.clock.advance(3600 * 1000 - 1);
    CHECK(f.call("GET", "/api/v1/app/mine", "", bearer(short_lived)).status == 200);
    f.clock.advance(1);
    check_error(f.call("GET", "/api/v1/app/mine", "", bearer(short_lived)), 401,
                "authentication_failed");
    CHECK(f.call("GET", "/api/v1/app/mine", "", bearer(token)).status == 200);
  }

  SUBCASE("expiry outside 1 hour to 7 days is a 422 and makes no token") {
    const size_t before = f.db->session()->tokens().list().size();
    check_validation(f.post(path + "mine", {{"expiry", 3599}}), json{"body", "expiry"});
    check_validation(f.post(path + "mine", {{"expiry", 7 * 24 * 3600 + 1}}),
                     json{"body", "expiry"});
    check_validation(f.post(path + "mine", {{"expiry", "1h"}}), json{"body", "expiry"});
    check_validation(f.post(path + "mine", {{"readOnly", "yes"}}), json{"body", "readOnly"});
    CHECK(f.db->session()->tokens().list().size() == before);
  }

  SUBCASE("only admins hand out links") {
    check_error(f.call("POST", path + "mine", "{}", bearer(token)), 404, "not_found");
    check_error(f.call("POST", path + "other", "{}", bearer(token)), 404, "not_found");
  }

  SUBCASE("a read-only token may only GET") {
    Reply ro = f.post(path + "mine", {{"readOnly", true}});
    REQUIRE(ro.status == 200);
    const std::string read_only = ro.j["token"];
    Reply who = f.call("GET", "/api/v1/auth/whoami", "", bearer(read_only));
    CHECK(who.j["readOnly"] == true);
    CHECK(f.call("GET", "/api/v1/app/mine/msg", "", bearer(read_only)).status == 200);
    Reply denied = f.call("POST", "/api/v1/app/mine/msg", R"({"eventType":"a.b","payload":{}})",
                          bearer(read_only));
    check_error(denied, 403, "forbidden");
    check_error(f.call("PATCH", "/api/v1/app/mine", R"({"name":"x"})", bearer(read_only)), 403,
                "forbidden");
    check_error(f.call("DELETE", "/api/v1/app/mine", "", bearer(read_only)), 403, "forbidden");
    CHECK(f.list("/api/v1/app/mine/msg").empty());
    CHECK(f.get("/api/v1/app/mine").j["name"] == "Mine");
    // It does not get what signs deliveries; a public key it does.
    json ep = f.make_endpoint("mine", {{"url", "https://example.com/ro"}});
    const std::string secret_path =
        "/api/v1/app/mine/endpoint/" + ep["id"].get<std::string>() + "/secret";
    check_error(f.call("GET", secret_path, "", bearer(read_only)), 403, "forbidden");
    CHECK(f.patch("/api/v1/app/mine/endpoint/" + ep["id"].get<std::string>(),
                  {{"signatureScheme", "ed25519"}})
              .status == 200);
    Reply pk = f.call("GET", secret_path, "", bearer(read_only));
    REQUIRE(pk.status == 200);
    CHECK(pk.j["key"].get<std::string>().rfind("whpk_", 0) == 0);
  }

  SUBCASE("a response holding a token is never replayed from the idempotency store") {
    httplib::Headers key{{"idempotency-key", "portal-key-1"}};
    Reply a = f.call("POST", path + "mine", "{}", bearer(kAdminToken), key);
    Reply b = f.call("POST", path + "mine", "{}", bearer(kAdminToken), key);
    REQUIRE(a.status == 200);
    REQUIRE(b.status == 200);
    CHECK(a.j["token"] != b.j["token"]);
  }
}

TEST_CASE("http: whoami tells an admin token from a scoped one") {
  ApiFixture f;
  json app = f.make_app("Acme", "acme");
  Reply r = f.get("/api/v1/auth/whoami");
  REQUIRE(r.status == 200);
  CHECK(r.j == json{{"appId", nullptr}, {"readOnly", false}, {"expiresAt", nullptr}});
  const std::string scoped = f.add_app_token(app["id"], kStart + 5000);
  r = f.call("GET", "/api/v1/auth/whoami", "", bearer(scoped));
  CHECK(r.j["appId"] == app["id"]);
  CHECK(r.j["expiresAt"] == "2023-11-14T22:13:25.000Z");
  check_error(f.call("GET", "/api/v1/auth/whoami", "", std::nullopt), 401, "authentication_failed");
}

TEST_CASE("http: messages carry a delivery summary and filter by their overall status") {
  ApiFixture f;
  f.make_app("Acme", "acme");
  json a = f.make_endpoint("acme", {{"url", "https://example.com/a"}});
  json b = f.make_endpoint("acme", {{"url", "https://example.com/b"}});
  const json body{{"eventType", "e"}, {"payload", json::object()}};
  const std::string ok = f.make_message("acme", body)["id"];
  const std::string failed = f.make_message("acme", body)["id"];
  const std::string sending = f.make_message("acme", body)["id"];
  const std::string pending = f.make_message("acme", body)["id"];
  for (const auto& d : f.deliveries(ok)) set_status(f, d.id, DeliveryStatus::kSuccess);
  auto fd = f.deliveries(failed);
  set_status(f, fd[0].id, DeliveryStatus::kSuccess);
  set_status(f, fd[1].id, DeliveryStatus::kFail);
  auto sd = f.deliveries(sending);
  set_status(f, sd[0].id, DeliveryStatus::kSending);
  set_status(f, sd[1].id, DeliveryStatus::kFail);  // fail wins over sending
  auto ids_of = [&](const std::string& query) {
    std::vector<std::string> ids;
    for (const auto& m : f.list("/api/v1/app/acme/msg" + query)) ids.push_back(m["id"]);
    return ids;
  };
  CHECK(ids_of("?status=0") == std::vector<std::string>{ok});
  CHECK(ids_of("?status=2") == std::vector<std::string>{sending, failed});
  CHECK(ids_of("?status=1") == std::vector<std::string>{pending});
  CHECK(ids_of("?status=3").empty());
  auto item = [&](const std::string& id) {
    for (const auto& m : f.list("/api/v1/app/acme/msg")) {
      if (m["id"] == id) return m;
    }
    FAIL("message " << id << " is not listed");
    return json();
  };
  json m = item(failed);
  CHECK(m["deliveryStatus"] == 2);
  CHECK(m["deliveries"] == json{{"success", 1}, {"pending", 0}, {"sending", 0}, {"fail", 1}});

  // A resend supersedes the failed delivery it repeats: pending now, success once it lands.
  const std::string failed_ep = fd[1].endpoint_id;
  REQUIRE(f.post("/api/v1/app/acme/msg/" + failed + "/endpoint/" + failed_ep + "/resend",
                 json::object())
              .status == 202);
  m = item(failed);
  CHECK(m["deliveryStatus"] == 1);
  CHECK(m["deliveries"] == json{{"success", 1}, {"pending", 1}, {"sending", 0}, {"fail", 0}});
  for (const auto& d : f.deliveries(failed)) {
    if (d.trigger == TriggerType::kManual) set_status(f, d.id, DeliveryStatus::kSuccess);
  }
  CHECK(item(failed)["deliveryStatus"] == 0);
  CHECK(ids_of("?status=0") == std::vector<std::string>{failed, ok});
  // A message no endpoint subscribes to has no state and matches no status.
  for (const json* ep : {&a, &b}) {
    REQUIRE(f.patch("/api/v1/app/acme/endpoint/" + (*ep)["id"].get<std::string>(),
                    {{"eventTypes", {"e"}}})
                .status == 200);
  }
  const std::string lonely =
      f.make_message("acme", {{"eventType", "not.e"}, {"payload", json::object()}})["id"];
  CHECK(f.deliveries(lonely).empty());
  json first = f.list("/api/v1/app/acme/msg")[0];
  CHECK(first["id"] == lonely);
  CHECK(first["deliveryStatus"].is_null());
  CHECK(first["deliveries"] == json{{"success", 0}, {"pending", 0}, {"sending", 0}, {"fail", 0}});
  for (const char* st : {"0", "1", "2", "3"}) {
    auto ids = ids_of(std::string("?status=") + st);
    CHECK(std::find(ids.begin(), ids.end(), lonely) == ids.end());
  }
  // 4 (canceled) is a status herald never gives a message: a valid filter that matches none.
  CHECK(ids_of("?status=4").empty());
  check_validation(f.get("/api/v1/app/acme/msg?status=5"), json{"query", "status"});
  check_validation(f.get("/api/v1/app/acme/msg?status=fail"), json{"query", "status"});
  // Combined with the other filters and paging.
  CHECK(ids_of("?status=0&event_types=nope").empty());
  Reply page = f.get("/api/v1/app/acme/msg?status=0&limit=1");
  REQUIRE(page.j["data"].size() == 1);
  CHECK(page.j["data"][0]["id"] == failed);
  CHECK(page.j["done"] == false);
  page = f.get("/api/v1/app/acme/msg?status=0&limit=1&iterator=" +
               page.j["iterator"].get<std::string>());
  REQUIRE(page.j["data"].size() == 1);
  CHECK(page.j["data"][0]["id"] == ok);
  (void)a;
  (void)b;
}

TEST_CASE("http: an endpoint's timeline counts attempts per bucket") {
  ApiFixture f;
  f.clock.set(1'735'689'600'000 - 48 * 3600 * 1000);
  json app = f.make_app("Acme", "acme");
  json ep = f.make_endpoint("acme", {{"url", "https://example.com/a"}, {"uid", "main"}});
  json other = f.make_endpoint("acme", {{"url", "https://example.com/b"}});
  json msg = f.make_message("acme", {{"eventType", "e"}, {"payload", json::object()}});
  const std::string app_id = app["id"], ep_id = ep["id"], msg_id = msg["id"];
  const TimeMs hour = 3600 * 1000;
  // Ids sort by time only for ids made in time order (new_id never goes back): this test's
  // attempts are made in order, later than anything earlier tests made.
  const TimeMs day_start = 1'735'689'600'000;  // 2025-01-01T00:00:00Z
  add_attempt(f, app_id, msg_id, ep_id, day_start - 1, DeliveryStatus::kFail);  // before since
  add_attempt(f, app_id, msg_id, other["id"], day_start + hour, DeliveryStatus::kFail);
  add_attempt(f, app_id, msg_id, ep_id, day_start + 1 * hour + 5, DeliveryStatus::kSuccess);
  add_attempt(f, app_id, msg_id, ep_id, day_start + 1 * hour + 9, DeliveryStatus::kFail);
  add_attempt(f, app_id, msg_id, ep_id, day_start + 3 * hour, DeliveryStatus::kSuccess);
  add_attempt(f, app_id, msg_id, ep_id, day_start + 3 * hour + 1, DeliveryStatus::kSuccess);
  f.clock.set(day_start + 4 * hour);

  Reply r = f.get(
      "/api/v1/app/acme/endpoint/main/stats/timeline?since=2025-01-01T00:30:00Z&until=2025-01-01T"
      "04:00:00Z&bucket=hour");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(r.j["bucket"] == "hour");
  CHECK(r.j["since"] == "2025-01-01T00:00:00.000Z");  // aligned down to the bucket
  CHECK(r.j["until"] == "2025-01-01T04:00:00.000Z");
  REQUIRE(r.j["data"].size() == 4);
  CHECK(r.j["data"][0] == json{{"start", "2025-01-01T00:00:00.000Z"}, {"success", 0}, {"fail", 0}});
  CHECK(r.j["data"][1] == json{{"start", "2025-01-01T01:00:00.000Z"}, {"success", 1}, {"fail", 1}});
  CHECK(r.j["data"][2] == json{{"start", "2025-01-01T02:00:00.000Z"}, {"success", 0}, {"fail", 0}});
  CHECK(r.j["data"][3] == json{{"start", "2025-01-01T03:00:00.000Z"}, {"success", 2}, {"fail", 0}});

  r = f.get(
      "/api/v1/app/acme/endpoint/main/stats/timeline?since=2024-12-31T00:00:00Z&until=2025-"
      "01-02T00:00:00Z&bucket=day");
  REQUIRE(r.j["data"].size() == 2);
  CHECK(r.j["data"][0]["fail"] == 1);
  CHECK(r.j["data"][1] == json{{"start", "2025-01-01T00:00:00.000Z"}, {"success", 3}, {"fail", 1}});

  // Defaults: the last 24 hours by the hour.
  r = f.get("/api/v1/app/acme/endpoint/main/stats/timeline");
  REQUIRE(r.status == 200);
  CHECK(r.j["data"].size() == 24);  // until is on the hour: no partial bucket

  const std::string base = "/api/v1/app/acme/endpoint/main/stats/timeline";
  check_validation(f.get(base + "?bucket=week"), json{"query", "bucket"});
  check_validation(f.get(base + "?since=2024-01-01T00:00:00Z&bucket=minute"),
                   json{"query", "bucket"});  // far more than 1000 buckets
  check_validation(f.get(base + "?since=2025-01-01T05:00:00Z&until=2025-01-01T04:00:00Z"),
                   json{"query", "since"});
  check_validation(f.get(base + "?since=yesterday"), json{"query", "since"});
  check_error(f.get("/api/v1/app/acme/endpoint/nope/stats/timeline"), 404, "not_found");
}

TEST_CASE("http: endpoint lists carry health on request") {
  ApiFixture f;
  f.clock.set(1'748'736'000'000);  // 2025-06-01: after the timeline test's ids (see there)
  json app = f.make_app("Acme", "acme");
  json ep = f.make_endpoint("acme", {{"url", "https://example.com/a"}});
  json idle = f.make_endpoint("acme", {{"url", "https://example.com/idle"}});
  json msg = f.make_message("acme", {{"eventType", "e"}, {"payload", json::object()}});
  const TimeMs now = f.clock.now_ms();
  add_attempt(f, app["id"], msg["id"], ep["id"], now - 25 * 3600 * 1000, DeliveryStatus::kFail);
  add_attempt(f, app["id"], msg["id"], ep["id"], now - 3000, DeliveryStatus::kSuccess);
  add_attempt(f, app["id"], msg["id"], ep["id"], now - 2000, DeliveryStatus::kSuccess);
  add_attempt(f, app["id"], msg["id"], ep["id"], now - 1000, DeliveryStatus::kFail);
  add_attempt(f, app["id"], msg["id"], ep["id"], now - 500, DeliveryStatus::kSuccess);

  json plain = f.list("/api/v1/app/acme/endpoint");
  CHECK_FALSE(plain[0].contains("health"));
  json list = f.list("/api/v1/app/acme/endpoint?with_health=true&order=ascending");
  REQUIRE(list.size() == 2);
  const json& h = list[0]["health"];
  CHECK(h["windowHours"] == 24);
  CHECK(h["success"] == 3);
  CHECK(h["fail"] == 1);
  CHECK(h["successRate"].get<double>() == doctest::Approx(0.75));
  CHECK(h["lastAttempt"]["status"] == 0);
  CHECK(h["lastAttempt"]["responseStatusCode"] == 200);
  CHECK(h["lastAttempt"]["msgId"] == msg["id"]);
  CHECK(is_rfc3339_utc(h["lastAttempt"]["timestamp"]));
  CHECK(h["failingSince"].is_null());
  const json& none = list[1]["health"];
  CHECK(none["successRate"].is_null());
  CHECK(none["lastAttempt"].is_null());
  (void)idle;
}

TEST_CASE("http: send-example delivers a new message to that endpoint only") {
  ApiFixture f;
  f.make_app("Acme", "acme");
  json target = f.make_endpoint(
      "acme", {{"url", "https://example.com/t"}, {"uid", "t"}, {"eventTypes", {"only.this"}}});
  json bystander = f.make_endpoint("acme", {{"url", "https://example.com/all"}});
  json off = f.make_endpoint("acme", {{"url", "https://example.com/off"}, {"disabled", true}});

  Reply r = f.post("/api/v1/app/acme/endpoint/t/send-example", {{"eventType", "user.created"}});
  REQUIRE_MESSAGE(r.status == 202, r.body);
  CHECK(r.j["eventType"] == "user.created");
  CHECK(r.j["payload"]["test"] == true);
  CHECK(r.j["payload"]["type"] == "user.created");
  auto ds = f.deliveries(r.j["id"]);
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].endpoint_id == target["id"]);
  CHECK(ds[0].status == DeliveryStatus::kPending);
  CHECK(f.get("/api/v1/app/acme/msg/" + r.j["id"].get<std::string>()).status == 200);

  // A payload given is sent as written.
  r = f.call("POST", "/api/v1/app/acme/endpoint/t/send-example",
             R"({"eventType":"a.b","payload":{"z":1,"a":1.50}})");
  REQUIRE(r.status == 202);
  {
    const std::string app_id = f.get("/api/v1/app/acme").j["id"];
    auto stored = f.db->session()->messages().get(app_id, r.j["id"]);
    REQUIRE(stored);
    CHECK(stored->payload == R"({"z":1,"a":1.50})");
  }

  // An event type with a schema example uses it.
  REQUIRE(
      f.post("/api/v1/event-type", {{"name", "invoice.paid"},
                                    {"description", "paid"},
                                    {"schemas", {{"1", {{"examples", {{{"invoice", "in_1"}}}}}}}}})
          .status == 201);
  r = f.post("/api/v1/app/acme/endpoint/t/send-example", {{"eventType", "invoice.paid"}});
  REQUIRE(r.status == 202);
  CHECK(r.j["payload"] == json{{"invoice", "in_1"}});

  check_validation(f.post("/api/v1/app/acme/endpoint/t/send-example", json::object()),
                   json{"body", "eventType"});
  check_validation(
      f.post("/api/v1/app/acme/endpoint/t/send-example", {{"eventType", "a"}, {"payload", 3}}),
      json{"body", "payload"});
  check_error(f.post("/api/v1/app/acme/endpoint/" + off["id"].get<std::string>() + "/send-example",
                     {{"eventType", "a"}}),
              409, "conflict");
  check_error(f.post("/api/v1/app/acme/endpoint/nope/send-example", {{"eventType", "a"}}), 404,
              "not_found");
  CHECK(f.list("/api/v1/app/acme/msg").size() == 3);
  (void)bystander;
}

TEST_CASE("http: attempts show the request headers with sensitive values masked") {
  ApiFixture f;
  json app = f.make_app("Acme", "acme");
  json ep = f.make_endpoint("acme", {{"url", "https://example.com/a"}});
  json msg = f.make_message("acme", {{"eventType", "e"}, {"payload", json::object()}});
  const json sent{{"Authorization", "Bearer live-secret-1"}, {"X-Api-Key", "live-secret-2"},
                  {"X-Session-Token", "live-secret-3"},      {"Cookie", "sid=live-secret-4"},
                  {"X-Client-Secret", "live-secret-5"},      {"X-Team", "billing"},
                  {"webhook-signature", "v1,abc="},          {"webhook-id", msg["id"]}};
  Attempt a = add_attempt(f, app["id"], msg["id"], ep["id"], f.clock.now_ms(),
                          DeliveryStatus::kSuccess, sent.dump());
  const std::string msg_path = "/api/v1/app/acme/msg/" + msg["id"].get<std::string>();
  auto check_headers = [&](const json& headers) {
    INFO(headers.dump());
    CHECK(headers["Authorization"] == "********");
    CHECK(headers["X-Api-Key"] == "********");
    CHECK(headers["X-Session-Token"] == "********");
    CHECK(headers["Cookie"] == "********");
    CHECK(headers["X-Client-Secret"] == "********");
    CHECK(headers["X-Team"] == "billing");
    CHECK(headers["webhook-signature"] == "v1,abc=");
    CHECK(headers["webhook-id"] == msg["id"]);
  };
  Reply one = f.get(msg_path + "/attempt/" + a.id);
  REQUIRE(one.status == 200);
  check_headers(one.j["requestHeaders"]);
  CHECK(one.body.find("live-secret") == std::string::npos);
  Reply list = f.get("/api/v1/app/acme/attempt/msg/" + msg["id"].get<std::string>());
  REQUIRE(list.j["data"].size() == 1);
  check_headers(list.j["data"][0]["requestHeaders"]);
  Reply by_ep = f.get("/api/v1/app/acme/attempt/endpoint/" + ep["id"].get<std::string>());
  check_headers(by_ep.j["data"][0]["requestHeaders"]);
  CHECK(by_ep.body.find("live-secret") == std::string::npos);
  // Without content (the SDK's default), list items stay as Svix shapes them.
  list =
      f.get("/api/v1/app/acme/attempt/msg/" + msg["id"].get<std::string>() + "?with_content=false");
  CHECK_FALSE(list.j["data"][0].contains("requestHeaders"));

  CHECK(is_sensitive_header("PROXY-AUTHORIZATION"));
  CHECK(is_sensitive_header("x-db-password"));
  CHECK(is_sensitive_header("ApiKey"));
  CHECK_FALSE(is_sensitive_header("webhook-signature"));
  CHECK_FALSE(is_sensitive_header("content-type"));
  CHECK(masked_headers("not json") == json::object());
}

TEST_CASE("http: the portal's files are served without a token, with a strict policy") {
  ApiFixture f(ApiOptions{}, true);
  Reply index = f.call("GET", "/portal/", "", std::nullopt);
  REQUIRE(index.status == 200);
  CHECK(index.content_type == "text/html; charset=utf-8");
  CHECK(index.body.find("<script type=\"module\" src=\"portal.js\"></script>") !=
        std::string::npos);

  httplib::Client client("127.0.0.1", f.port());
  auto res = client.Get("/portal/");
  REQUIRE(res);
  CHECK(res->get_header_value("Content-Security-Policy")
            .find("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                  "connect-src 'self'; frame-ancestors 'none'") == 0);
  CHECK(res->get_header_value("X-Content-Type-Options") == "nosniff");
  CHECK(res->get_header_value("Referrer-Policy") == "no-referrer");
  CHECK(res->get_header_value("Cache-Control") == "no-cache");
  const std::string etag = res->get_header_value("ETag");
  CHECK(etag.size() > 2);
  auto again = client.Get("/portal/", httplib::Headers{{"If-None-Match", etag}});
  REQUIRE(again);
  CHECK(again->status == 304);
  CHECK(again->body.empty());

  // /portal sends the browser to /portal/ (relative, so a path prefix in front still works).
  auto bare = client.Get("/portal");
  REQUIRE(bare);
  CHECK(bare->status == 302);
  CHECK(bare->get_header_value("Location") == "portal/");
  CHECK(bare->get_header_value("Content-Security-Policy").find("default-src 'self'") == 0);

  const std::pair<const char*, const char*> files[] = {
      {"/portal/portal.js", "text/javascript; charset=utf-8"},
      {"/portal/api.js", "text/javascript; charset=utf-8"},
      {"/portal/views.js", "text/javascript; charset=utf-8"},
      {"/portal/portal.css", "text/css; charset=utf-8"},
      {"/portal/index.html", "text/html; charset=utf-8"}};
  for (const auto& [path, type] : files) {
    auto r = client.Get(path);
    REQUIRE(r);
    INFO(path);
    CHECK(r->status == 200);
    CHECK(r->get_header_value("Content-Type") == type);
    CHECK(r->get_header_value("X-Content-Type-Options") == "nosniff");
    CHECK_FALSE(r->body.empty());
  }
  // Nothing from elsewhere: the page and its style name no other origin, no script imports one.
  for (const char* path : {"/portal/index.html", "/portal/portal.css"}) {
    auto r = client.Get(path);
    CHECK(r->body.find("://") == std::string::npos);
    CHECK(r->body.find("@import") == std::string::npos);
  }
  for (const char* path : {"/portal/portal.js", "/portal/views.js", "/portal/api.js"}) {
    auto r = client.Get(path);
    CHECK(r->body.find("from \"http") == std::string::npos);
    CHECK(r->body.find("import(\"http") == std::string::npos);
  }
  for (const char* path : {"/portal/nope.js", "/portal/..%2Fapi", "/portal/sub/portal.js"}) {
    auto r = client.Get(path);
    REQUIRE(r);
    INFO(path);
    CHECK(r->status == 404);
  }
  // The API behind it still wants a token.
  check_error(f.call("GET", "/api/v1/app", "", std::nullopt), 401, "authentication_failed");
}

TEST_CASE("a second server cannot bind the port a running one listens on") {
  ApiFixture f;
  test::TestStore other_store;
  ManualClock clock(kStart);
  auto other_db = other_store.open(2);
  ApiServer second(*other_db, clock, ApiOptions{});
  // Without SO_REUSEPORT the kernel refuses: two heralds never share one port's traffic.
  CHECK(second.bind("127.0.0.1", f.port()) == -1);
  CHECK(f.call("GET", "/api/v1/health").status == 204);
}
