#include "scheduler/scheduler.h"

#include <pthread.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/headers.h"
#include "core/ids.h"
#include "core/metrics.h"
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

// How long a cached endpoint (and its signing keys) is used before it is read again, at most:
// a rotated-out key stops signing at most this long after its grace period ends. Any write to
// an endpoint drops the cache at once (EndpointStore::generation()).
constexpr int64_t kTargetCacheMs = 1000;
// Beyond this many cached endpoints the cache starts over.
constexpr size_t kTargetCacheMax = 10000;

// A delivery that keeps failing is reported to the operator after this many attempts.
constexpr int kFailingAfterAttempts = 4;
// Retention work runs this often when there is nothing left to purge.
constexpr int64_t kPurgeIdleMs = 60000;

// Appends `text` as a JSON string.
void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char esc[8];
          std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(c));
          out += esc;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

// The headers of a request as recorded with its attempt: a JSON object, sensitive values
// masked (the signature is not a secret and stays).
std::string recorded_headers(const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string out = "{";
  for (const auto& [name, value] : headers) {
    if (out.size() > 1) out += ',';
    append_json_string(out, name);
    out += ':';
    append_json_string(out, is_sensitive_header(name) ? kMaskedHeaderValue : value);
  }
  out += '}';
  return out;
}

std::optional<int64_t> due_in(std::optional<TimeMs> due, TimeMs now) {
  if (!due) return std::nullopt;
  return std::max<int64_t>(0, *due - now);
}

}  // namespace

Scheduler::Scheduler(Database& db, Clock& clock, Options options)
    : db_(db), clock_(clock), options_(std::move(options)), rng_(std::random_device{}()) {
  conn_ = db_.open_connection();
  conn_->set_durable(false);
  for (auto& ep : DeliveryStore(*conn_).parked_endpoints()) parked_.insert(std::move(ep));
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
    for (auto& r : results) {
      // The request is over: its endpoint has a free slot now, before the result is recorded.
      // (The global in-flight count, which bounds memory, drops only when it is recorded.)
      if (auto it = in_flight_.find(r.tag); it != in_flight_.end())
        release_endpoint_slot(it->second);
      results_.push_back(std::move(r));
    }
  }
  cv_.notify_one();
}

void Scheduler::release_endpoint_slot(InFlight& f) {
  if (f.slot_released) return;
  f.slot_released = true;
  auto ep = endpoint_in_flight_.find(f.delivery.endpoint_id);
  if (ep != endpoint_in_flight_.end() && --ep->second <= 0) endpoint_in_flight_.erase(ep);
}

void Scheduler::run() {
  pthread_setname_np(pthread_self(), "herald-sched");  // for top -H and perf
  int64_t wait_ms = 0;
  for (;;) {
    std::vector<DeliveryResult> batch;
    std::vector<Fresh> fresh;
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(wait_ms),
                   [&] { return !results_.empty() || !fresh_.empty() || woken_ || stopping_; });
      batch.swap(results_);
      fresh.swap(fresh_);
      woken_ = false;
      stopping = stopping_;
      if (stopping && batch.empty() && fresh.empty() && in_flight_.empty()) return;
    }
    try {
      wait_ms = round(std::move(batch), std::move(fresh), stopping);
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

int Scheduler::reserve_fresh(int n) {
  std::lock_guard lock(mu_);
  if (stopping_ || n <= 0) return 0;
  const int room = options_.max_in_flight - static_cast<int>(in_flight_.size()) - fresh_reserved_;
  const int granted = std::clamp(n, 0, std::max(0, room));
  fresh_reserved_ += granted;
  return granted;
}

void Scheduler::release_fresh(int n) {
  std::lock_guard lock(mu_);
  fresh_reserved_ -= n;
}

void Scheduler::dispatch_fresh(std::vector<Delivery> deliveries,
                               std::shared_ptr<const std::string> payload) {
  if (deliveries.empty()) return;
  {
    std::lock_guard lock(mu_);
    for (auto& d : deliveries) fresh_.push_back(Fresh{std::move(d), payload});
  }
  cv_.notify_one();
}

int64_t Scheduler::round(std::vector<DeliveryResult> results, std::vector<Fresh> fresh,
                         bool stopping) {
  // The room `fresh` was promised is given back exactly once, even if this round fails (its
  // deliveries are leased in the table and go again when the lease lapses).
  struct FreshRoom {
    Scheduler* s;
    int n;
    ~FreshRoom() {
      if (n > 0) s->release_fresh(n);
    }
  } fresh_room{this, static_cast<int>(fresh.size())};
  const TimeMs now = clock_.now_ms();
  std::vector<DeliveryJob> jobs;
  std::vector<std::pair<uint64_t, InFlight>> sent;
  std::optional<TimeMs> next_due;
  bool more = false;  // there may be more to claim right now
  bool polled = false;
  {
    Connection& c = *conn_;
    Transaction tx(c);
    if (!results.empty()) record(c, std::move(results));
    DeliveryStore deliveries(c);
    if (stopping) {
      // Handed over but never sent: back to the queue, due at once, for the next start.
      for (const auto& f : fresh) {
        deliveries.update({f.delivery.id, DeliveryStatus::kPending, 0, now}, now);
      }
      tx.commit();
      return options_.idle_poll_ms;
    }
    MessageStore messages(c);
    EndpointStore endpoints(c);

    int capacity;
    size_t in_flight_now;
    std::unordered_map<std::string, int> per_endpoint;
    {
      std::lock_guard lock(mu_);
      in_flight_now = in_flight_.size() + static_cast<size_t>(fresh_reserved_);
      capacity = options_.max_in_flight - static_cast<int>(in_flight_now);
      per_endpoint = endpoint_in_flight_;
    }
    // New deliveries handed over by the API are claimed already (leased when written).
    std::map<std::string, std::shared_ptr<const std::string>> bodies;
    std::vector<Delivery> claimed;
    claimed.reserve(fresh.size());
    for (auto& f : fresh) {
      bodies.emplace(f.delivery.msg_id, f.payload);
      claimed.push_back(std::move(f.delivery));
    }
    // Near the cap, wait for room for a real batch before polling: each claim costs.
    const int min_claim = std::max(1, std::min(options_.claim_batch, options_.max_in_flight) / 8);
    int limit = std::min(capacity, options_.claim_batch);
    polled = capacity > 0 && (in_flight_now == 0 || capacity >= min_claim);
    if (polled) {
      // First the parked endpoints that have room again, round-robin from where the last
      // round stopped; then whatever else is due, oldest first.
      if (!parked_.empty()) {
        std::vector<std::string> order;
        order.reserve(parked_.size());
        for (auto it = parked_.upper_bound(parked_cursor_); it != parked_.end(); ++it) {
          order.push_back(*it);
        }
        for (auto it = parked_.begin(); it != parked_.end() && *it <= parked_cursor_; ++it) {
          order.push_back(*it);
        }
        for (const auto& ep : order) {
          if (limit <= 0) {
            more = true;
            break;
          }
          int room = options_.endpoint_concurrency - per_endpoint[ep];
          if (auto tokens = peek_tokens(ep, now)) room = std::min(room, *tokens);
          if (room <= 0) continue;
          const int ask = std::min(room, limit);
          auto got = deliveries.claim_parked(ep, now, options_.lease_ms, ask);
          limit -= static_cast<int>(got.size());
          parked_cursor_ = ep;
          if (static_cast<int>(got.size()) < ask) parked_.erase(ep);  // none left parked
          for (auto& d : got) claimed.push_back(std::move(d));
        }
      }
      if (limit > 0) {
        auto due = deliveries.claim(now, options_.lease_ms, limit);
        more = more || static_cast<int>(due.size()) == limit;
        for (auto& d : due) claimed.push_back(std::move(d));
      }
    }

    if (const uint64_t gen = EndpointStore::generation();
        gen != target_generation_ || target_cache_.size() > kTargetCacheMax) {
      target_cache_.clear();
      target_generation_ = gen;
    }
    const int64_t ts = now / 1000;
    const std::string ts_text = std::to_string(ts);
    for (auto& d : claimed) {
      auto body_it = bodies.find(d.msg_id);
      if (body_it == bodies.end()) {
        auto payload = messages.payload(d.msg_id);
        body_it = bodies
                      .emplace(d.msg_id,
                               payload ? std::make_shared<const std::string>(std::move(*payload))
                                       : nullptr)
                      .first;
      }
      auto target_it = target_cache_.find(d.endpoint_id);
      if (target_it == target_cache_.end() || now - target_it->second.loaded_at >= kTargetCacheMs) {
        Target t;
        t.loaded_at = now;
        if (auto ep = endpoints.get(d.app_id, d.endpoint_id)) {
          failing_[ep->id] = ep->failing_since.has_value();
          t.keys = endpoints.signing_keys(ep->id, now);
          t.endpoint = std::move(*ep);
          t.found = true;
        }
        target_it = target_cache_.insert_or_assign(d.endpoint_id, std::move(t)).first;
      }
      const auto& body = body_it->second;
      const Target* target = target_it->second.found ? &target_it->second : nullptr;
      if (!body || body->empty() || !target || target->endpoint.disabled || target->keys.empty()) {
        // Nothing to send: the endpoint was disabled, or the payload expired.
        deliveries.update({d.id, DeliveryStatus::kFail, d.attempts, std::nullopt}, now);
        continue;
      }
      const Endpoint& ep = target->endpoint;
      int& busy = per_endpoint[d.endpoint_id];
      if (busy >= options_.endpoint_concurrency || !take_token(ep, now)) {
        // No room at the endpoint: park it. Its other due deliveries are parked as claims
        // meet them, each once: never scanned past again.
        deliveries.update({d.id, DeliveryStatus::kPending, d.attempts, std::nullopt}, now);
        parked_.insert(d.endpoint_id);
        continue;
      }
      DeliveryJob job;
      job.tag = next_tag_++;
      job.url = ep.url;
      job.body = body;
      job.timeout_ms = options_.request_timeout_ms;
      job.connect_timeout_ms = options_.connect_timeout_ms;
      job.headers.reserve(ep.headers.size() + 7);
      for (const auto& [name, value] : ep.headers) job.headers.emplace_back(name, value);
      std::string signature = signature_header(target->keys, d.msg_id, ts, *body);
      job.headers.emplace_back("content-type", "application/json");
      job.headers.emplace_back("webhook-id", d.msg_id);
      job.headers.emplace_back("webhook-timestamp", ts_text);
      job.headers.emplace_back("webhook-signature", signature);
      job.headers.emplace_back("svix-id", d.msg_id);
      job.headers.emplace_back("svix-timestamp", ts_text);
      job.headers.emplace_back("svix-signature", std::move(signature));
      sent.emplace_back(job.tag, InFlight{d, ep.url, recorded_headers(job.headers), now});
      ++busy;
      jobs.push_back(std::move(job));
    }
    if (polled && !more) next_due = deliveries.next_due();
    tx.commit();
  }
  {
    std::lock_guard lock(mu_);
    fresh_reserved_ -= fresh_room.n;  // each is in flight now, or not at all
    fresh_room.n = 0;
    for (auto& [tag, f] : sent) {
      ++endpoint_in_flight_[f.delivery.endpoint_id];
      in_flight_.emplace(tag, std::move(f));
    }
  }
  if (!jobs.empty()) sender_->submit(std::move(jobs));
  if (more) return 0;
  if (!polled) return options_.idle_poll_ms;  // results and new deliveries wake us
  int64_t wait = due_in(next_due, now).value_or(options_.idle_poll_ms);
  // Parked endpoints at their cap are woken by their results; throttled ones by their next
  // token.
  for (const auto& ep : parked_) {
    auto b = buckets_.find(ep);
    if (b != buckets_.end() && b->second.next_token_at > now) {
      wait = std::min(wait, b->second.next_token_at - now);
    }
  }
  return std::min(options_.idle_poll_ms, wait);
}

void Scheduler::record(Connection& c, std::vector<DeliveryResult> results) {
  std::vector<std::pair<DeliveryResult, InFlight>> done;
  {
    std::lock_guard lock(mu_);
    for (auto& r : results) {
      auto it = in_flight_.find(r.tag);
      if (it == in_flight_.end()) continue;
      release_endpoint_slot(it->second);
      done.emplace_back(std::move(r), std::move(it->second));
      in_flight_.erase(it);
    }
  }
  const TimeMs now = clock_.now_ms();
  Connection* conn = &c;
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
    if (options_.metrics != nullptr) {
      options_.metrics->attempt(r.success()         ? Metrics::Outcome::kSuccess
                                : r.status_code > 0 ? Metrics::Outcome::kHttpError
                                                    : Metrics::Outcome::kNetworkError,
                                r.duration_ms);
    }
    if (r.success()) {
      // Only a failing endpoint (or one not seen since this process started) needs a write.
      auto known = failing_.find(d.endpoint_id);
      if (known == failing_.end() || known->second) {
        endpoints.note_success(d.endpoint_id);
        failing_[d.endpoint_id] = false;
      }
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
      failing_[d.endpoint_id] = true;
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
    // Failures at info, successes at debug: the attempt itself is recorded either way.
    spdlog::log(r.success() ? spdlog::level::debug : spdlog::level::info,
                "attempt msg={} endpoint={} status={} duration_ms={} outcome={}{}", d.msg_id,
                d.endpoint_id, r.status_code, r.duration_ms, status_text(u.status),
                r.status_code == 0 ? " error=\"" + r.error + "\"" : std::string());
  }
}

bool Scheduler::purge_once() {
  const TimeMs cutoff = clock_.now_ms() - options_.retention_ms;
  Connection* conn = conn_.get();
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

bool Scheduler::take_token(const Endpoint& ep, TimeMs now) {
  if (!ep.throttle_rate || *ep.throttle_rate <= 0) {
    buckets_.erase(ep.id);  // no longer throttled
    return true;
  }
  const double rate = *ep.throttle_rate;
  auto [it, fresh] = buckets_.try_emplace(ep.id, Bucket{rate, rate, now, 0});
  Bucket& b = it->second;
  b.rate = rate;
  if (!fresh && now > b.refilled_at) {
    b.tokens = std::min(rate, b.tokens + static_cast<double>(now - b.refilled_at) * rate / 1000.0);
    b.refilled_at = now;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return true;
  }
  b.next_token_at =
      now + std::max<int64_t>(1, static_cast<int64_t>((1 - b.tokens) * 1000.0 / rate) + 1);
  return false;
}

std::optional<int> Scheduler::peek_tokens(const std::string& endpoint_id, TimeMs now) {
  auto it = buckets_.find(endpoint_id);
  if (it == buckets_.end()) return std::nullopt;
  Bucket& b = it->second;
  if (now > b.refilled_at) {
    b.tokens =
        std::min(b.rate, b.tokens + static_cast<double>(now - b.refilled_at) * b.rate / 1000.0);
    b.refilled_at = now;
  }
  if (b.tokens < 1) {
    b.next_token_at =
        now + std::max<int64_t>(1, static_cast<int64_t>((1 - b.tokens) * 1000.0 / b.rate) + 1);
  }
  return static_cast<int>(b.tokens);
}

}  // namespace herald
