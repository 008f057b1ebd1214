// /api/v1/app/{app}/attempt: the record of every delivery attempt.
#include "api/errors.h"
#include "api/json_mapping.h"
#include "api/server.h"
#include "core/ids.h"
#include "db/attempt_store.h"
#include "db/database.h"
#include "db/endpoint_store.h"
#include "db/message_store.h"
#include "db/session.h"

namespace herald {
namespace {

using json = nlohmann::ordered_json;

AttemptFilter read_filter(const ApiRequest& r) {
  AttemptFilter f;
  if (auto status = r.query("status")) {
    if (*status != "0" && *status != "1" && *status != "2" && *status != "3") {
      throw invalid_query("status", "must be 0 (success), 1 (pending), 2 (fail) or 3 (sending)");
    }
    f.status = static_cast<DeliveryStatus>(std::stoi(*status));
  }
  f.before = r.query_time("before");
  f.after = r.query_time("after");
  return f;
}

// With content, list items carry their request headers too (sensitive ones masked).
json page_json(const ListPage<Attempt>& page, const ListParams& p, bool with_content) {
  json data = json::array();
  for (const auto& a : page.items) {
    json j = to_json(a, with_content);
    if (with_content) j["requestHeaders"] = masked_headers(a.request_headers_json);
    data.push_back(std::move(j));
  }
  std::string first = page.items.empty() ? "" : page.items.front().id;
  std::string last = page.items.empty() ? "" : page.items.back().id;
  return list_json(std::move(data), first, last, page.done, p);
}

}  // namespace

void register_attempt_routes(ApiServer& s) {
  auto by_message = [&s](ApiRequest& r) {
    auto p = r.list_params(kAttemptPrefix);
    AttemptFilter f = read_filter(r);
    const bool with_content = r.query_bool("with_content", true);
    auto session = s.db().session();
    Application app = load_app(*session, r.caller, r.param(1));
    auto m = session->messages().get(app.id, r.param(2));
    if (!m) throw not_found("message");
    if (auto ep_key = r.query("endpoint_id")) {
      auto ep = session->endpoints().get(app.id, *ep_key);
      if (!ep) throw not_found("endpoint");
      f.endpoint_id = ep->id;
    }
    auto page = session->attempts().list_by_message(app.id, m->id, p, f);
    return ApiReply{200, page_json(page, p, with_content)};
  };
  s.route("GET", "/api/v1/app/([^/]+)/attempt/msg/([^/]+)/?", by_message);
  s.route("GET", "/api/v1/app/([^/]+)/msg/([^/]+)/attempt/?", by_message);

  s.route("GET", "/api/v1/app/([^/]+)/attempt/endpoint/([^/]+)/?", [&s](ApiRequest& r) {
    auto p = r.list_params(kAttemptPrefix);
    AttemptFilter f = read_filter(r);
    const bool with_content = r.query_bool("with_content", true);
    auto session = s.db().session();
    Application app = load_app(*session, r.caller, r.param(1));
    auto ep = session->endpoints().get(app.id, r.param(2));
    if (!ep) throw not_found("endpoint");
    auto page = session->attempts().list_by_endpoint(app.id, ep->id, p, f);
    return ApiReply{200, page_json(page, p, with_content)};
  });

  s.route("GET", "/api/v1/app/([^/]+)/msg/([^/]+)/attempt/([^/]+)/?", [&s](ApiRequest& r) {
    auto session = s.db().session();
    Application app = load_app(*session, r.caller, r.param(1));
    auto a = session->attempts().get(app.id, r.param(3));
    auto m = session->messages().get(app.id, r.param(2));
    if (!a || !m || a->msg_id != m->id) throw not_found("attempt");
    json j = to_json(*a, true);
    j["requestHeaders"] = masked_headers(a->request_headers_json);
    return ApiReply{200, j};
  });
}

}  // namespace herald
