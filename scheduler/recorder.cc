#include "scheduler/recorder.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "core/ids.h"
#include "core/metrics.h"
#include "core/time_format.h"
#include "db/app_store.h"
#include "db/attempt_store.h"
#include "db/endpoint_store.h"
#include "db/message_store.h"
#include "db/operational_webhooks.h"
#include "db/queue_store.h"
#include "db/session.h"

namespace herald {
namespace {

// A delivery that keeps failing is reported to the operator after this many attempts.
constexpr int kFailingAfterAttempts = 4;

}  // namespace

ResultRecorder::ResultRecorder(Clock& clock, Options options)
    : options_(std::move(options)), enqueuer_(clock), rng_(std::random_device{}()) {}

void ResultRecorder::record(Session& s, std::vector<Finished> done, TimeMs now) {
  if (done.empty()) return;
  EndpointStore& endpoints = s.endpoints();
  // Operational webhooks about an app's deliveries (none about the reserved app's own), if
  // the reserved app exists; looked up once per batch, when the first event needs it.
  std::optional<std::optional<std::string>> operator_app;
  auto operator_app_id = [&]() -> const std::optional<std::string>& {
    if (!operator_app) {
      auto app = find_operator_app(s);
      operator_app = app ? std::optional(app->id) : std::nullopt;
    }
    return *operator_app;
  };
  auto reported = [&](const Delivery& d) {
    const auto& ops = operator_app_id();
    return ops && d.app_id != *ops;
  };
  auto report = [&](const Delivery& d, const std::string& type, nlohmann::json data) {
    if (!reported(d)) return;
    auto app = s.apps().get(d.app_id);
    data["appId"] = d.app_id;
    data["appUid"] = app && app->uid ? nlohmann::json(*app->uid) : nlohmann::json(nullptr);
    queue_operator_event(s, enqueuer_, *operator_app_id(), type, std::move(data), now);
  };
  auto report_attempt = [&](const Delivery& d, const Attempt& a, const std::string& type) {
    if (!reported(d)) return;  // before reading the message
    auto m = s.messages().get(d.app_id, d.msg_id);
    report(
        d, type,
        {{"msgId", d.msg_id},
         {"msgEventId", m && m->event_id ? nlohmann::json(*m->event_id) : nlohmann::json(nullptr)},
         {"endpointId", d.endpoint_id},
         {"lastAttempt",
          {{"id", a.id},
           {"timestamp", format_rfc3339(a.timestamp)},
           {"responseStatusCode", a.response_status_code}}}});
  };
  auto disable = [&](const Delivery& d, const std::string& reason, TimeMs fail_since) {
    if (!endpoints.disable(d.endpoint_id, reason, now)) return;
    spdlog::warn("endpoint {} disabled: {}", d.endpoint_id, reason);
    auto ep = endpoints.get(d.app_id, d.endpoint_id);
    report(d, "endpoint.disabled",
           {{"endpointId", d.endpoint_id},
            {"endpointUid", ep && ep->uid ? nlohmann::json(*ep->uid) : nlohmann::json(nullptr)},
            {"failSince", format_rfc3339(fail_since)},
            {"reason", reason},
            {"trigger", "automatic"}});
  };

  // Endpoint health, once per endpoint, as if the results were applied one by one: an
  // endpoint whose last result here is a success is healthy; one whose last is a failure is
  // failing since its first failure after its last success (or since earlier, if it already
  // was).
  std::map<std::string, std::optional<TimeMs>> last_run;  // nullopt: healthy at the end
  for (const auto& f : done) {
    if (f.result.aborted) continue;
    auto& run = last_run[f.delivery.endpoint_id];
    if (f.result.success()) {
      run.reset();
    } else if (!run) {
      run = f.sent_at;
    }
  }
  std::vector<std::string> healthy;
  std::map<std::string, TimeMs> fail_since;
  for (const auto& [endpoint_id, run] : last_run) {
    if (!run) {
      healthy.push_back(endpoint_id);
    } else {
      fail_since[endpoint_id] = endpoints.note_failure(endpoint_id, *run).value_or(*run);
    }
  }
  endpoints.note_successes(healthy);

  std::vector<Attempt> attempts;
  std::vector<DeliveryUpdate> updates;
  attempts.reserve(done.size());
  updates.reserve(done.size());
  for (auto& f : done) {
    const Delivery& d = f.delivery;
    const DeliveryResult& r = f.result;
    if (r.aborted) {
      // Never really tried: back to the queue as it was.
      updates.push_back({d.id, DeliveryStatus::kPending, d.attempts, now, d.claim});
      continue;
    }
    Attempt a;
    a.id = new_id(kAttemptPrefix, now);
    a.app_id = d.app_id;
    a.msg_id = d.msg_id;
    a.endpoint_id = d.endpoint_id;
    a.delivery_id = d.id;
    a.url = std::move(f.url);
    a.response_status_code = r.status_code;
    a.response = r.status_code == 0 ? r.error : r.body;
    a.response_duration_ms = r.duration_ms;
    a.status = r.success() ? DeliveryStatus::kSuccess : DeliveryStatus::kFail;
    a.trigger = d.trigger;
    a.request_headers_json = std::move(f.request_headers_json);
    a.timestamp = f.sent_at;

    DeliveryUpdate u{d.id, DeliveryStatus::kSuccess, d.attempts + 1, std::nullopt, d.claim};
    if (options_.metrics != nullptr) {
      options_.metrics->attempt(r.success()         ? Metrics::Outcome::kSuccess
                                : r.status_code > 0 ? Metrics::Outcome::kHttpError
                                                    : Metrics::Outcome::kNetworkError,
                                r.duration_ms);
    }
    if (r.success()) {
      if (d.attempts >= kFailingAfterAttempts) report_attempt(d, a, "message.attempt.recovered");
    } else if (r.status_code == 410) {
      // Gone: the receiver asks us to stop, so the endpoint is disabled at once.
      u.status = DeliveryStatus::kFail;
      disable(d, "the endpoint answered 410 Gone", f.sent_at);
    } else {
      // Manual attempts are tried once; scheduled ones follow the schedule while it lasts.
      const auto scheduled = d.trigger == TriggerType::kScheduled
                                 ? options_.retry.next_delay_ms(u.attempts, rng_)
                                 : std::nullopt;
      bool retry = scheduled.has_value();
      int64_t delay = scheduled.value_or(0);
      if (retry && r.retry_after_s && (r.status_code == 429 || r.status_code == 503)) {
        // Retry-After is a floor on the wait, within bounds; it costs no extra attempt.
        const int64_t cap_s = options_.max_retry_after_ms / 1000;
        const int64_t wanted_ms = std::max<int64_t>(0, *r.retry_after_s) > cap_s
                                      ? options_.max_retry_after_ms
                                      : std::max<int64_t>(0, *r.retry_after_s) * 1000;
        delay = std::max(delay, wanted_ms);
      }
      // A failure here with a success after it in this batch started no run.
      auto since = fail_since.find(d.endpoint_id);
      const TimeMs run_start = since != fail_since.end() ? since->second : f.sent_at;
      if (since != fail_since.end() && now - run_start >= options_.disable_after_ms) {
        retry = false;
        disable(d, "failing since " + format_rfc3339(run_start) + " without a single success",
                run_start);
      }
      if (retry) {
        u.status = DeliveryStatus::kPending;
        u.due_at = now + delay;
        if (u.attempts == kFailingAfterAttempts) report_attempt(d, a, "message.attempt.failing");
      } else {
        u.status = DeliveryStatus::kFail;
        if (d.trigger == TriggerType::kScheduled) report_attempt(d, a, "message.attempt.exhausted");
      }
    }
    // Failures at info, successes at debug: the attempt itself is recorded either way.
    spdlog::log(r.success() ? spdlog::level::debug : spdlog::level::info,
                "attempt msg={} endpoint={} status={} duration_ms={} outcome={}{}", d.msg_id,
                d.endpoint_id, r.status_code, r.duration_ms, status_text(u.status),
                r.status_code == 0 ? " error=\"" + r.error + "\"" : std::string());
    attempts.push_back(std::move(a));
    updates.push_back(std::move(u));
  }
  s.attempts().insert(attempts);
  s.queue().complete(updates, now);
}

}  // namespace herald
