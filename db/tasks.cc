#include "db/tasks.h"

#include <nlohmann/json.hpp>
#include <set>

#include "core/fanout.h"
#include "core/ids.h"
#include "db/app_store.h"
#include "db/endpoint_store.h"
#include "db/enqueue.h"
#include "db/queue_store.h"
#include "db/session.h"

namespace herald {
namespace {

using json = nlohmann::json;

BackgroundTask make_task(std::optional<std::string> app_id, const char* kind, json params,
                         json data, TimeMs now) {
  BackgroundTask t;
  t.id = new_id(kTaskPrefix, now);
  t.app_id = std::move(app_id);
  t.kind = kind;
  t.params_json = params.dump();
  t.data_json = data.dump();
  t.created_at = t.updated_at = now;
  return t;
}

template <typename T>
json opt_json(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

template <typename T>
std::optional<T> opt_from(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  return j[key].get<T>();
}

// A step's view of its task: the parameters, and the state and data it updates.
struct Step {
  Session& s;
  Enqueuer& enqueuer;
  BackgroundTask& t;
  const json params;
  json state;
  json data;
  TimeMs now;
  int batch;

  void finish() { t.status = TaskStatus::kFinished; }
  std::string cursor() const { return state.value("cursor", std::string()); }
  void add(const char* counter, int64_t n) { data[counter] = data.value(counter, int64_t{0}) + n; }
  Endpoint endpoint() {
    auto ep = s.endpoints().get(t.app_id.value_or(""), params.at("endpointId").get<std::string>());
    if (!ep) throw TaskFailed("the endpoint was deleted");
    return *ep;
  }
};

void step_recover(Step& st) {
  const std::string after = st.cursor();
  std::string last = after;
  const int64_t n = st.s.queue().recover(
      st.params.at("endpointId").get<std::string>(), st.params.at("since").get<TimeMs>(),
      st.params.at("until").get<TimeMs>(), st.now, after, st.batch, &last);
  st.state["cursor"] = last;
  st.add("messagesSent", n);
  if (n < st.batch) st.finish();
}

// Replays (missing or bulk): pages through the messages the filter selects, newest first, and
// sends each that still has its payload to the endpoint once more (a manual delivery).
void step_replay(Step& st, bool missing) {
  const Endpoint ep = st.endpoint();
  MessageFilter f;
  f.after = st.params.at("since").get<TimeMs>() - 1;
  f.before = st.params.at("until").get<TimeMs>();
  if (missing) {
    f.missing_endpoint_id = ep.id;
    f.event_types = ep.event_types;  // the channels are checked below
  } else {
    f.endpoint_id = ep.id;
    f.event_types = opt_from<std::vector<std::string>>(st.params, "eventTypes");
    f.channel = opt_from<std::string>(st.params, "channel");
    f.tag = opt_from<std::string>(st.params, "tag");
    if (auto status = opt_from<int>(st.params, "status")) {
      f.status = static_cast<DeliveryStatus>(*status);
    }
    f.status_code_class = opt_from<int>(st.params, "statusCodeClass");
  }
  ListParams p;
  p.limit = st.batch;
  if (!st.cursor().empty()) p.cursor = st.cursor();
  const auto page = st.s.messages().list(ep.app_id, p, f);
  int64_t sent = 0;
  for (const auto& m : page.items) {
    st.state["cursor"] = m.id;
    if (m.payload_expired) continue;
    if (missing && !endpoint_accepts(ep, m.event_type, m.channels)) continue;
    st.enqueuer.redeliver(st.s, m, ep.id);
    ++sent;
  }
  st.add("messagesSent", sent);
  if (page.done) st.finish();
}

void step_purge_content(Step& st) {
  const std::string after = st.cursor();
  std::string last = after;
  const int64_t n =
      st.s.messages().expunge_app(st.t.app_id.value_or(""), st.params.at("before").get<TimeMs>(),
                                  after, st.batch, &last, st.now);
  st.state["cursor"] = last;
  st.add("messagesPurged", n);
  if (n < st.batch) st.finish();
}

// The application a per-application task is at: the `index`th of params.appIds when given,
// else the first after state.appCursor, oldest first. nullopt once past the last.
std::optional<Application> current_app(Step& st) {
  if (st.params.contains("appIds") && st.params["appIds"].is_array()) {
    const auto& ids = st.params["appIds"];
    for (size_t i = st.state.value("index", size_t{0}); i < ids.size(); ++i) {
      if (auto app = st.s.apps().get(ids[i].get<std::string>())) return app;
      st.state["index"] = i + 1;  // deleted since: skipped
    }
    return std::nullopt;
  }
  ListParams p;
  p.limit = 1;
  if (auto cursor = st.state.value("appCursor", std::string()); !cursor.empty()) p.cursor = cursor;
  auto page = st.s.apps().list(p);
  if (page.items.empty()) return std::nullopt;
  return page.items.front();
}

void next_app(Step& st, const Application& app) {
  st.state["index"] = st.state.value("index", size_t{0}) + 1;
  st.state["appCursor"] = app.id;
}

void step_app_stats(Step& st) {
  const TimeMs since = st.params.at("since").get<TimeMs>();
  const TimeMs until = st.params.at("until").get<TimeMs>();
  if (!st.data.contains("appStats")) st.data["appStats"] = json::array();
  // Each application costs one unit of the budget, and each message counted another.
  int budget = st.batch;
  while (budget > 0) {
    auto app = current_app(st);
    if (!app) {
      st.finish();
      return;
    }
    --budget;
    const std::string after = st.state.value("msgCursor", std::string());
    const int limit = std::max(budget, 1);
    const MessageUsage u = st.s.messages().usage(app->id, since, until, after, limit);
    budget -= static_cast<int>(u.messages);
    st.state["messages"] = st.state.value("messages", int64_t{0}) + u.messages;
    st.state["destinations"] = st.state.value("destinations", int64_t{0}) + u.destinations;
    if (u.messages == limit) {
      st.state["msgCursor"] = u.last_id;  // more of this application next time
      continue;
    }
    st.data["appStats"].push_back(json{{"messageDestinations", st.state["destinations"]},
                                       {"appId", app->id},
                                       {"appUid", opt_json(app->uid)},
                                       {"messages", st.state["messages"]}});
    st.state.erase("msgCursor");
    st.state.erase("messages");
    st.state.erase("destinations");
    next_app(st, *app);
  }
}

void step_event_type_aggregate(Step& st) {
  if (!st.data.contains("event_types")) st.data["event_types"] = json::array();
  for (int i = 0; i < std::min(st.batch, 100); ++i) {
    auto app = current_app(st);
    if (!app) {
      st.finish();
      return;
    }
    std::set<std::string> types;
    bool catch_all = false;
    for (const auto& ep : st.s.endpoints().enabled_for_app(app->id)) {
      if (!ep.event_types) catch_all = true;
      for (const auto& t : ep.event_types.value_or(std::vector<std::string>{})) types.insert(t);
    }
    st.data["event_types"].push_back(json{{"appId", app->id},
                                          {"explicitlySubscribedEventTypes", types},
                                          {"hasCatchAllEndpoint", catch_all}});
    next_app(st, *app);
  }
}

json endpoint_window(const Endpoint& ep, TimeMs since, TimeMs until) {
  return json{{"endpointId", ep.id}, {"since", since}, {"until", until}};
}

}  // namespace

BackgroundTask recover_task(const Endpoint& ep, TimeMs since, TimeMs until, TimeMs now) {
  return make_task(ep.app_id, kTaskRecover, endpoint_window(ep, since, until),
                   json{{"messagesSent", 0}}, now);
}

BackgroundTask replay_missing_task(const Endpoint& ep, TimeMs since, TimeMs until, TimeMs now) {
  return make_task(ep.app_id, kTaskReplayMissing, endpoint_window(ep, since, until),
                   json{{"messagesSent", 0}}, now);
}

BackgroundTask bulk_replay_task(const Endpoint& ep, const BulkReplayFilter& f, TimeMs now) {
  json params = endpoint_window(ep, f.since, f.until);
  params["eventTypes"] = opt_json(f.event_types);
  params["channel"] = opt_json(f.channel);
  params["tag"] = opt_json(f.tag);
  params["status"] = f.status ? json(static_cast<int>(*f.status)) : json(nullptr);
  params["statusCodeClass"] = opt_json(f.status_code_class);
  return make_task(ep.app_id, kTaskBulkReplay, std::move(params), json{{"messagesSent", 0}}, now);
}

BackgroundTask purge_content_task(const std::string& app_id, TimeMs now) {
  return make_task(app_id, kTaskPurgeContent, json{{"before", now + 1}},
                   json{{"messagesPurged", 0}}, now);
}

BackgroundTask app_stats_task(const std::optional<std::vector<std::string>>& app_ids, TimeMs since,
                              TimeMs until, TimeMs now) {
  json params{{"since", since}, {"until", until}};
  if (app_ids) params["appIds"] = *app_ids;
  return make_task(std::nullopt, kTaskAppStats, std::move(params),
                   json{{"appStats", json::array()}}, now);
}

BackgroundTask event_type_aggregate_task(TimeMs now) {
  return make_task(std::nullopt, kTaskEventTypeAggregate, json::object(),
                   json{{"event_types", json::array()}}, now);
}

void step_task(Session& s, Enqueuer& enqueuer, BackgroundTask& t, TimeMs now, int batch) {
  Step st{s,
          enqueuer,
          t,
          json::parse(t.params_json),
          json::parse(t.state_json),
          json::parse(t.data_json),
          now,
          std::max(batch, 1)};
  if (t.kind == kTaskRecover) {
    step_recover(st);
  } else if (t.kind == kTaskReplayMissing) {
    step_replay(st, true);
  } else if (t.kind == kTaskBulkReplay) {
    step_replay(st, false);
  } else if (t.kind == kTaskPurgeContent) {
    step_purge_content(st);
  } else if (t.kind == kTaskAppStats) {
    step_app_stats(st);
  } else if (t.kind == kTaskEventTypeAggregate) {
    step_event_type_aggregate(st);
  } else {
    throw TaskFailed("this version of herald does not know tasks of kind " + t.kind);
  }
  t.state_json = st.state.dump();
  t.data_json = st.data.dump();
  t.updated_at = now;
}

}  // namespace herald
