// /api/v1/background-task: the long jobs herald runs in steps (db/tasks.h), and
// /api/v1/stats/usage: the ones that count usage.
#include <algorithm>
#include <array>

#include "api/errors.h"
#include "api/json_mapping.h"
#include "api/server.h"
#include "db/app_store.h"
#include "db/database.h"
#include "db/session.h"
#include "db/task_store.h"
#include "db/tasks.h"

namespace herald {
namespace {

using json = nlohmann::ordered_json;

constexpr std::array kKinds = {kTaskRecover,      kTaskReplayMissing, kTaskBulkReplay,
                               kTaskPurgeContent, kTaskAppStats,      kTaskEventTypeAggregate};
constexpr size_t kMaxStatsApps = 1000;

// An application's token sees its application's tasks only; tasks over every application
// (usage statistics) are the admin's.
bool may_see(const Caller& caller, const BackgroundTask& t) {
  return caller.is_admin() || (t.app_id && t.app_id == caller.app_id);
}

}  // namespace

void register_task_routes(ApiServer& s) {
  s.route("GET", "/api/v1/background-task/?", [&s](ApiRequest& r) {
    auto p = r.list_params(kTaskPrefix);
    p.descending = r.query_descending();
    TaskFilter f;
    if (auto status = r.query("status")) {
      f.status = parse_task_status(*status);
      if (!f.status) throw invalid_query("status", "must be running, finished or failed");
    }
    if (auto kind = r.query("task")) {
      if (std::find(kKinds.begin(), kKinds.end(), *kind) == kKinds.end()) {
        throw invalid_query("task", "is not a kind of background task herald runs");
      }
      f.kind = *kind;
    }
    f.app_id = r.caller.app_id;
    auto page = s.db().session()->tasks().list(p, f);
    json data = json::array();
    for (const auto& t : page.items) data.push_back(to_json(t));
    const std::string first = page.items.empty() ? "" : page.items.front().id;
    const std::string last = page.items.empty() ? "" : page.items.back().id;
    return ApiReply{200, list_json(std::move(data), first, last, page.done, p)};
  });

  s.route("GET", "/api/v1/background-task/([^/]+)/?", [&s](ApiRequest& r) {
    auto t = s.db().session()->tasks().get(r.param(1));
    if (!t || !may_see(r.caller, *t)) throw not_found("background task");
    return ApiReply{200, to_json(*t)};
  });

  // Svix's aggregateEventTypes: per application, the event types its endpoints take.
  s.route("PUT", "/api/v1/stats/usage/event-types/?", [&s](ApiRequest& r) {
    require_admin(r.caller);
    return s.start_task(event_type_aggregate_task(s.clock().now_ms()));
  });

  // Svix's aggregateAppStats: messages and their destinations per application in [since,
  // until), for the applications named (ids or uids) or for all.
  s.route("POST", "/api/v1/stats/usage/app/?", [&s](ApiRequest& r) {
    require_admin(r.caller);
    BodyReader body(r.body);
    const auto since = body.req_time("since");
    const auto until = body.req_time("until");
    const auto keys = body.opt_string_list("appIds", kMaxStatsApps, 256);
    if (since && until && *since >= *until) body.error("since", "must be before until");
    body.finish();
    std::optional<std::vector<std::string>> ids;
    json unresolved = json::array();
    if (keys) {
      ids.emplace();
      auto session = s.db().session();
      for (const auto& key : *keys) {
        if (auto app = session->apps().get(key)) {
          ids->push_back(app->id);
        } else {
          unresolved.push_back(key);
        }
      }
      if (ids->empty() && !keys->empty()) {
        throw invalid_field("appIds", "none of the applications given exists");
      }
    }
    ApiReply reply = s.start_task(app_stats_task(ids, *since, *until, s.clock().now_ms()));
    reply.body["unresolvedAppIds"] = std::move(unresolved);
    return reply;
  });
}

}  // namespace herald
