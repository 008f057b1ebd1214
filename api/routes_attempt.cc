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

#include <map>
#include <set>

namespace herald {
namespace {

using json = nlohmann::ordered_json;

AttemptFilter read_filter(const ApiRequest& r) {
  AttemptFilter f;
  f.status = r.query_status("status");
  f.before = r.query_time("before");
  f.after = r.query_time("after");
  if (auto cls = r.query("status_code_class")) {
    static const std::set<std::string> kClasses = {"0", "100", "200", "300", "400", "500"};
    if (kClasses.count(*cls) == 0) {
      throw invalid_query("status_code_class",
                          "must be 0 (no response), 100, 200, 300, 400 or 500");
    }
    f.status_code_class = std::stoi(*cls);
  }
  f.event_types = r.query_list("event_types");
  f.channel = r.query("channel");
  f.tag = r.query("tag");
  return f;
}

// With content, list items carry their request headers too (sensitive ones masked). With
// `messages` (Svix's with_msg), each carries its message as `msg`, payload included.
json page_json(const ListPage<Attempt>& page, const ListParams& p, bool with_content,
               const std::map<std::string, Message>* messages = nullptr) {
  json data = json::array();
  for (const auto& a : page.items) {
    json j = to_json(a, with_content);
    if (with_content) j["requestHeaders"] = masked_headers(a.request_headers_json);
    if (messages != nullptr) {
      auto it = messages->find(a.msg_id);
      j["msg"] = it == messages->end() ? json(nullptr) : to_json(it->second, true);
    }
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
    if (!r.query_bool("with_msg", false)) return ApiReply{200, page_json(page, p, with_content)};
    std::map<std::string, Message> messages;
    for (const auto& a : page.items) {
      if (messages.count(a.msg_id) > 0) continue;
      if (auto m = session->messages().get(app.id, a.msg_id)) messages.emplace(a.msg_id, *m);
    }
    return ApiReply{200, page_json(page, p, with_content, &messages)};
  });

  // Svix's expungeContent of an attempt: its recorded response is deleted.
  s.route("DELETE", "/api/v1/app/([^/]+)/msg/([^/]+)/attempt/([^/]+)/content/?",
          [&s](ApiRequest& r) {
            auto session = s.db().session();
            const Application app = load_app(*session, r.caller, r.param(1));
            auto a = session->attempts().get(app.id, r.param(3));
            auto m = session->messages().get(app.id, r.param(2));
            if (!a || !m || a->msg_id != m->id) throw not_found("attempt");
            session->attempts().expunge_response(app.id, a->id);
            return ApiReply{204, {}};
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
