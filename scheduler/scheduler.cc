#include "scheduler/scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/ids.h"
#include "core/signing.h"
#include "core/time_format.h"
#include "db/app_store.h"
#include "db/attempt_store.h"
#include "db/delivery_store.h"
#include "db/endpoint_store.h"
#include "db/message_store.h"
#include "db/pool.h"
#include "db/sqlite.h"

namespace herald {
namespace {

// What a claimed delivery needs from its message and endpoint, loaded once per batch.
struct Target {
  Endpoint endpoint;
  std::vector<std::string> keys;
};

// A delivery that keeps failing is reported to the operator after this many attempts.
constexpr int kFailingAfterAttempts = 4;
// Retention work runs this often when there is nothing left to purge.
constexpr int64_t kPurgeIdleMs = 60000;

std::optional<int64_t> due_in(std::optional<TimeMs> due, TimeMs now) {
  if (!due) return std::nullopt;
  return std::max<int64_t>(0, *due - now);
}

}  // namespace

Scheduler::Scheduler(Database& db, Clock& clock, Options options)
    : db_(db), clock_(clock), options_(std::move(options)), rng_(std::random_device{}()) {
  sender_ = std::make_unique<Sender>(
      options_.sender, [this](std::vector<DeliveryResult>&& r) { on_results(std::move(r)); });
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  stop(0);
}

void Scheduler::wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_one();
}

void Scheduler::stop(int64_t drain_ms) {
  if (stopped_.exchange(true)) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  sender_->stop(drain_ms);  // every job's result is in results_ once this returns
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

size_t Scheduler::in_flight() const {
  std::lock_guard lock(mu_);
  return in_flight_.size();
}

void Scheduler::on_results(std::vector<DeliveryResult>&& results) {
  {
    std::lock_guard lock(mu_);
    for (auto& r : results) results_.push_back(std::move(r));
  }
  cv_.notify_one();
}

void Scheduler::run() {
  int64_t wait_ms = 0;
  for (;;) {
    std::vector<DeliveryResult> batch;
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(wait_ms),
                   [&] { return !results_.empty() || woken_ || stopping_; });
      batch.swap(results_);
      woken_ = false;
      stopping = stopping_;
      if (stopping && batch.empty() && in_flight_.empty()) return;
    }
    try {
      if (!batch.empty()) record(std::move(batch));
      wait_ms = stopping ? options_.idle_poll_ms : claim_and_send();
      if (!stopping && clock_.now_ms() >= next_purge_at_) {
        // Small batches between deliveries: retention never holds the queue up for long.
        // Idle checks come at least four times per retention period.
        const int64_t idle = std::clamp<int64_t>(options_.retention_ms / 4, 50, kPurgeIdleMs);
        next_purge_at_ = clock_.now_ms() + (purge_once() ? 0 : idle);
      }
    } catch (const std::exception& e) {
      // Leases make this safe: whatever was claimed and not recorded is claimed again later.
      spdlog::error("scheduler: {}", e.what());
      wait_ms = options_.idle_poll_ms;
    }
  }
}

int64_t Scheduler::claim_and_send() {
  int capacity;
  std::vector<std::string> saturated;  // endpoints at their concurrency cap
  std::unordered_map<std::string, int> per_endpoint;
  {
    std::lock_guard lock(mu_);
    capacity = options_.max_in_flight - static_cast<int>(in_flight_.size());
    per_endpoint = endpoint_in_flight_;
  }
  for (const auto& [ep, n] : per_endpoint) {
    if (n >= options_.endpoint_concurrency) saturated.push_back(ep);
  }
  const TimeMs now = clock_.now_ms();
  for (const auto& [ep, bucket] : buckets_) {
    if (now < bucket.next_token_at) saturated.push_back(ep);  // throttled until then
  }
  if (capacity <= 0) return options_.idle_poll_ms;  // a result will wake us
  const int limit = std::min(capacity, options_.claim_batch);

  std::vector<DeliveryJob> jobs;
  std::vector<std::pair<uint64_t, InFlight>> sent;
  std::optional<TimeMs> next_due;
  size_t claimed_count = 0;
  int held_back = 0;  // claimed over an endpoint's cap and put back
  {
    auto conn = db_.acquire();
    Transaction tx(*conn);
    DeliveryStore deliveries(*conn);
    MessageStore messages(*conn);
    EndpointStore endpoints(*conn);
    auto claimed = deliveries.claim(now, options_.lease_ms, limit, saturated);
    claimed_count = claimed.size();

    std::map<std::string, std::shared_ptr<const std::string>> bodies;
    std::map<std::string, std::optional<Target>> targets;
    const int64_t ts = now / 1000;
    for (auto& d : claimed) {
      int& busy = per_endpoint[d.endpoint_id];
      if (busy >= options_.endpoint_concurrency) {
        // Over the endpoint's cap: back to the queue, due now, untouched.
        deliveries.update({d.id, DeliveryStatus::kPending, d.attempts, now}, now);
        ++held_back;
        continue;
      }
      auto body_it = bodies.find(d.msg_id);
      if (body_it == bodies.end()) {
        auto m = messages.get(d.app_id, d.msg_id);
        body_it =
            bodies.emplace(d.msg_id, m ? std::make_shared<const std::string>(m->payload) : nullptr)
                .first;
      }
      auto target_it = targets.find(d.endpoint_id);
      if (target_it == targets.end()) {
        std::optional<Target> t;
        if (auto ep = endpoints.get(d.app_id, d.endpoint_id)) {
          t = Target{*ep, endpoints.signing_keys(ep->id, now)};
        }
        target_it = targets.emplace(d.endpoint_id, std::move(t)).first;
      }
      const auto& body = body_it->second;
      const auto& target = target_it->second;
      if (!body || body->empty() || !target || target->endpoint.disabled || target->keys.empty()) {
        // Nothing to send: the endpoint was disabled, or the payload expired.
        deliveries.update({d.id, DeliveryStatus::kFail, d.attempts, std::nullopt}, now);
        continue;
      }
      const Endpoint& ep = target->endpoint;
      if (int64_t wait = 0; !take_token(ep, now, &wait)) {
        // Over the endpoint's throttleRate: back to the queue until its next token.
        deliveries.update({d.id, DeliveryStatus::kPending, d.attempts, now + wait}, now);
        continue;
      }
      DeliveryJob job;
      job.tag = next_tag_++;
      job.url = ep.url;
      job.body = body;
      job.timeout_ms = options_.request_timeout_ms;
      job.connect_timeout_ms = options_.connect_timeout_ms;
      for (const auto& [name, value] : ep.headers) job.headers.emplace_back(name, value);
      std::string signature = signature_header(target->keys, d.msg_id, ts, *body);
      std::string ts_text = std::to_string(ts);
      job.headers.emplace_back("content-type", "application/json");
      job.headers.emplace_back("webhook-id", d.msg_id);
      job.headers.emplace_back("webhook-timestamp", ts_text);
      job.headers.emplace_back("webhook-signature", signature);
      job.headers.emplace_back("svix-id", d.msg_id);
      job.headers.emplace_back("svix-timestamp", ts_text);
      job.headers.emplace_back("svix-signature", signature);
      nlohmann::json sent_headers = nlohmann::json::object();
      for (const auto& [name, value] : job.headers) sent_headers[name] = value;
      sent.emplace_back(job.tag, InFlight{d, ep.url, sent_headers.dump(), now});
      ++busy;
      jobs.push_back(std::move(job));
    }
    if (static_cast<int>(claimed_count) < limit) next_due = deliveries.next_due();
    tx.commit();
  }
  if (!jobs.empty()) {
    {
      std::lock_guard lock(mu_);
      for (auto& [tag, f] : sent) {
        ++endpoint_in_flight_[f.delivery.endpoint_id];
        in_flight_.emplace(tag, std::move(f));
      }
    }
    sender_->submit(std::move(jobs));
  }
  if (static_cast<int>(claimed_count) == limit) return 0;  // more may be due right now
  int64_t wait = due_in(next_due, now).value_or(options_.idle_poll_ms);
  // What is due now but was not taken waits for a capped endpoint: a result wakes us.
  if (wait == 0 && (!saturated.empty() || held_back > 0)) {
    // Capped endpoints are woken by their results; throttled ones by their next token.
    wait = options_.idle_poll_ms;
    for (const auto& [ep, bucket] : buckets_) {
      if (bucket.next_token_at > now) wait = std::min(wait, bucket.next_token_at - now);
    }
  }
  return std::min(options_.idle_poll_ms, wait);
}

void Scheduler::record(std::vector<DeliveryResult> results) {
  std::vector<std::pair<DeliveryResult, InFlight>> done;
  {
    std::lock_guard lock(mu_);
    for (auto& r : results) {
      auto it = in_flight_.find(r.tag);
      if (it == in_flight_.end()) continue;
      auto ep = endpoint_in_flight_.find(it->second.delivery.endpoint_id);
      if (ep != endpoint_in_flight_.end() && --ep->second <= 0) endpoint_in_flight_.erase(ep);
      done.emplace_back(std::move(r), std::move(it->second));
      in_flight_.erase(it);
    }
  }
  const TimeMs now = clock_.now_ms();
  auto conn = db_.acquire();
  Transaction tx(*conn);
  DeliveryStore deliveries(*conn);
  AttemptStore attempts(*conn);
  EndpointStore endpoints(*conn);
  const auto& ops = options_.operator_channel;
  // Operational webhooks about an app's deliveries; none about the operator's own.
  auto report = [&](const Delivery& d, const std::string& type, nlohmann::json data) {
    if (!ops || d.app_id == ops->app_id) return;
    auto app = AppStore(*conn).get(d.app_id);
    data["appId"] = d.app_id;
    data["appUid"] = app && app->uid ? nlohmann::json(*app->uid) : nlohmann::json(nullptr);
    queue_operator_event(*conn, *ops, type, std::move(data), now);
  };
  auto report_attempt = [&](const Delivery& d, const Attempt& a, const std::string& type) {
    if (!ops || d.app_id == ops->app_id) return;
    auto m = MessageStore(*conn).get(d.app_id, d.msg_id);
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

  for (auto& [r, f] : done) {
    const Delivery& d = f.delivery;
    if (r.aborted) {
      // Never really tried: back to the queue as it was.
      deliveries.update({d.id, DeliveryStatus::kPending, d.attempts, now}, now);
      continue;
    }
    Attempt a;
    a.id = new_id(kAttemptPrefix, now);
    a.app_id = d.app_id;
    a.msg_id = d.msg_id;
    a.endpoint_id = d.endpoint_id;
    a.delivery_id = d.id;
    a.url = f.url;
    a.response_status_code = r.status_code;
    a.response = r.status_code == 0 ? r.error : r.body;
    a.response_duration_ms = r.duration_ms;
    a.status = r.success() ? DeliveryStatus::kSuccess : DeliveryStatus::kFail;
    a.trigger = d.trigger;
    a.request_headers_json = f.request_headers_json;
    a.timestamp = f.sent_at;
    attempts.insert(a);

    DeliveryUpdate u{d.id, DeliveryStatus::kSuccess, d.attempts + 1, std::nullopt};
    if (r.success()) {
      endpoints.note_success(d.endpoint_id);
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
      TimeMs fail_since = endpoints.note_failure(d.endpoint_id, f.sent_at).value_or(f.sent_at);
      if (now - fail_since >= options_.disable_after_ms) {
        retry = false;
        disable(d, "failing since " + format_rfc3339(fail_since) + " without a single success",
                fail_since);
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
    deliveries.update(u, now);
    spdlog::info("attempt msg={} endpoint={} status={} duration_ms={} outcome={}{}", d.msg_id,
                 d.endpoint_id, r.status_code, r.duration_ms, status_text(u.status),
                 r.status_code == 0 ? " error=\"" + r.error + "\"" : std::string());
  }
  tx.commit();
}

bool Scheduler::purge_once() {
  const TimeMs cutoff = clock_.now_ms() - options_.retention_ms;
  auto conn = db_.acquire();
  Transaction tx(*conn);
  std::string last = purge_watermark_;
  int64_t payloads =
      MessageStore(*conn).expire_payloads(cutoff, purge_watermark_, options_.purge_batch, &last);
  int64_t old_attempts = AttemptStore(*conn).purge(cutoff, options_.purge_batch);
  tx.commit();
  purge_watermark_ = last;
  if (payloads + old_attempts > 0) {
    spdlog::debug("retention: purged {} payloads and {} attempts", payloads, old_attempts);
  }
  return payloads == options_.purge_batch || old_attempts == options_.purge_batch;
}

bool Scheduler::take_token(const Endpoint& ep, TimeMs now, int64_t* wait_ms) {
  if (!ep.throttle_rate || *ep.throttle_rate <= 0) return true;
  const double rate = *ep.throttle_rate;  // per second; the bucket holds one second's worth
  auto [it, fresh] = buckets_.try_emplace(ep.id, Bucket{rate, now});
  Bucket& b = it->second;
  if (!fresh && now > b.refilled_at) {
    b.tokens = std::min(rate, b.tokens + static_cast<double>(now - b.refilled_at) * rate / 1000.0);
    b.refilled_at = now;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return true;
  }
  *wait_ms = std::max<int64_t>(1, static_cast<int64_t>((1 - b.tokens) * 1000.0 / rate) + 1);
  b.next_token_at = now + *wait_ms;
  return false;
}

}  // namespace herald
