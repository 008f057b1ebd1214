#include "scheduler/scheduler.h"

#include <pthread.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/metrics.h"
#include "db/database.h"
#include "db/message_store.h"
#include "db/session.h"
#include "scheduler/request_builder.h"

namespace herald {
namespace {

ResultRecorder::Options recorder_options(const Scheduler::Options& o) {
  ResultRecorder::Options r;
  r.retry = o.retry;
  r.disable_after_ms = o.disable_after_ms;
  r.max_retry_after_ms = o.max_retry_after_ms;
  r.metrics = o.metrics;
  return r;
}

}  // namespace

Scheduler::Scheduler(Database& db, Clock& clock, Options options)
    : db_(db),
      clock_(clock),
      options_(std::move(options)),
      session_(db.dedicated_session(false)),
      limits_(make_endpoint_limits(db, options_.endpoint_concurrency)),
      claims_(ClaimPolicy::Options{options_.claim_batch, options_.max_in_flight, options_.lease_ms,
                                   options_.idle_poll_ms}),
      recorder_(clock, recorder_options(options_)),
      retention_(Retention::Options{options_.retention_ms, options_.message_retention_ms,
                                    options_.purge_batch, options_.idempotency_ttl_ms}) {
  sender_ = std::make_unique<Sender>(
      options_.sender, [this](std::vector<DeliveryResult>&& r) { on_results(std::move(r)); });
  db_.set_queue_listener(this);
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
  // First: once this returns, no notification (another process's) calls into this scheduler.
  if (db_.queue_listener() == this) db_.set_queue_listener(nullptr);
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
      if (auto it = in_flight_.find(r.tag); it != in_flight_.end()) {
        release_endpoint_slot(it->second);
      }
      results_.push_back(std::move(r));
    }
  }
  cv_.notify_one();
}

void Scheduler::note_in_flight() {
  if (options_.metrics != nullptr) {
    options_.metrics->set_in_flight(static_cast<int64_t>(in_flight_.size()));
  }
}

void Scheduler::release_endpoint_slot(InFlight& f) {
  if (f.slot_released) return;
  f.slot_released = true;
  limits_->finished(f.delivery.endpoint_id);
}

void Scheduler::run() {
  pthread_setname_np(pthread_self(), "herald-sched");  // for top -H and perf
  TimeMs wake_at = clock_.now_ms();
  for (;;) {
    std::vector<DeliveryResult> batch;
    std::vector<Fresh> fresh;
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      clock_.wait_until(lock, cv_, wake_at, [&] {
        return !results_.empty() || !fresh_.empty() || woken_ || (stopping_ && in_flight_.empty());
      });
      batch.swap(results_);
      fresh.swap(fresh_);
      woken_ = false;
      stopping = stopping_;
      if (stopping && batch.empty() && fresh.empty() && in_flight_.empty()) return;
    }
    try {
      wake_at = round(std::move(batch), std::move(fresh), stopping);
      if (!stopping && retention_.run_if_due(*session_, clock_.now_ms())) {
        wake_at = clock_.now_ms();  // more to purge: the next batch goes between rounds
      }
    } catch (const std::exception& e) {
      // Leases make this safe: whatever was claimed and not recorded is claimed again later.
      spdlog::error("scheduler: {}", e.what());
      session_->rollback();
      wake_at = clock_.now_ms() + options_.idle_poll_ms;
    }
  }
}

int Scheduler::reserve(int n) {
  std::lock_guard lock(mu_);
  if (stopping_ || n <= 0) return 0;
  const int room = options_.max_in_flight - static_cast<int>(in_flight_.size()) - fresh_reserved_;
  const int granted = std::clamp(n, 0, std::max(0, room));
  fresh_reserved_ += granted;
  return granted;
}

void Scheduler::release(int n) {
  std::lock_guard lock(mu_);
  fresh_reserved_ -= n;
}

void Scheduler::hand_over(std::vector<Delivery> deliveries,
                          std::shared_ptr<const std::string> payload) {
  if (deliveries.empty()) return;
  {
    std::lock_guard lock(mu_);
    for (auto& d : deliveries) fresh_.push_back(Fresh{std::move(d), payload});
  }
  cv_.notify_one();
}

std::vector<ResultRecorder::Finished> Scheduler::take_finished(
    std::vector<DeliveryResult> results) {
  std::vector<ResultRecorder::Finished> done;
  done.reserve(results.size());
  std::lock_guard lock(mu_);
  for (auto& r : results) {
    auto it = in_flight_.find(r.tag);
    if (it == in_flight_.end()) continue;
    release_endpoint_slot(it->second);
    limits_->recorded(it->second.delivery.endpoint_id);
    InFlight& f = it->second;
    done.push_back(ResultRecorder::Finished{std::move(r), std::move(f.delivery), std::move(f.url),
                                            std::move(f.request_headers_json), f.sent_at});
    in_flight_.erase(it);
  }
  note_in_flight();
  return done;
}

TimeMs Scheduler::round(std::vector<DeliveryResult> results, std::vector<Fresh> fresh,
                        bool stopping) {
  // The room `fresh` was promised is given back exactly once, even if this round fails (its
  // deliveries are leased in the store and go again when the lease lapses).
  struct FreshRoom {
    Scheduler* s;
    int n;
    ~FreshRoom() {
      if (n > 0) s->release(n);
    }
  } fresh_room{this, static_cast<int>(fresh.size())};
  const TimeMs now = clock_.now_ms();
  Session& s = *session_;
  std::vector<DeliveryJob> jobs;
  std::vector<std::pair<uint64_t, InFlight>> sent;
  std::optional<TimeMs> next_due;
  bool more = false;  // there may be more to claim right now
  bool polled = false;

  // Out of the in-flight set first: if this round fails, these results are lost, but their
  // deliveries stay leased and go again when the leases lapse (the set must not keep them).
  auto finished = take_finished(std::move(results));
  for (const auto& f : finished) {
    // Another process may have parked deliveries for an endpoint whose slot just freed here.
    if (limits_->saturated(f.delivery.endpoint_id)) claims_.parked(f.delivery.endpoint_id);
  }
  s.begin();
  recorder_.record(s, std::move(finished), now);
  if (stopping) {
    // Handed over but never sent: back to the queue, due at once, for the next start.
    std::vector<DeliveryUpdate> back;
    for (const auto& f : fresh) {
      back.push_back({f.delivery.id, DeliveryStatus::kPending, 0, now, f.delivery.claim});
    }
    s.queue().complete(back, now);
    s.commit();
    return now + options_.idle_poll_ms;
  }

  int capacity;
  size_t in_flight_now;
  {
    std::lock_guard lock(mu_);
    in_flight_now = in_flight_.size() + static_cast<size_t>(fresh_reserved_);
    capacity = options_.max_in_flight - static_cast<int>(in_flight_now);
  }
  // New deliveries handed over are claimed already (leased when written).
  std::map<std::string, std::shared_ptr<const std::string>> bodies;
  std::vector<Delivery> claimed;
  claimed.reserve(fresh.size());
  for (auto& f : fresh) {
    bodies.emplace(f.delivery.msg_id, f.payload);
    claimed.push_back(std::move(f.delivery));
  }
  polled = claims_.worth_claiming(capacity, in_flight_now);
  if (polled) {
    claims_.refresh(s, now);
    auto got = claims_.claim(s, *limits_, capacity, now, &more);
    for (auto& d : got) claimed.push_back(std::move(d));
  }

  // The bodies not handed over, read in one go.
  {
    std::vector<std::string> missing;
    for (const auto& d : claimed) {
      if (!bodies.contains(d.msg_id)) missing.push_back(d.msg_id);
    }
    if (!missing.empty()) {
      for (auto& [id, payload] : s.messages().payloads(missing)) {
        bodies.emplace(id, std::make_shared<const std::string>(std::move(payload)));
      }
    }
  }
  {
    std::set<std::string> endpoint_set;
    std::set<std::string> app_set;
    for (const auto& d : claimed) {
      endpoint_set.insert(d.endpoint_id);
      app_set.insert(d.app_id);
    }
    targets_.check(s, std::vector<std::string>(app_set.begin(), app_set.end()));
    limits_->begin_round(s, std::vector<std::string>(endpoint_set.begin(), endpoint_set.end()),
                         now);
  }
  std::vector<DeliveryUpdate> set_aside;
  struct Admitted {
    Delivery delivery;
    const Target* target;
    std::shared_ptr<const std::string> body;
  };
  std::vector<Admitted> admitted;
  admitted.reserve(claimed.size());
  for (auto& d : claimed) {
    auto body_it = bodies.find(d.msg_id);
    const std::shared_ptr<const std::string> body =
        body_it != bodies.end() ? body_it->second : nullptr;
    const Target* target = targets_.get(s, d.app_id, d.endpoint_id, now);
    if (!body || body->empty() || !target || target->endpoint.disabled || target->signer.empty()) {
      // Nothing to send: the endpoint was disabled or deleted, or the payload expired.
      set_aside.push_back({d.id, DeliveryStatus::kFail, d.attempts, std::nullopt, d.claim});
      continue;
    }
    if (!limits_->admit(d.endpoint_id, target->endpoint.throttle_rate, now)) {
      // No room at the endpoint: park it. Its other due deliveries are parked as claims
      // meet them, each once: never scanned past again.
      set_aside.push_back({d.id, DeliveryStatus::kPending, d.attempts, std::nullopt, d.claim});
      claims_.parked(d.endpoint_id);
      continue;
    }
    admitted.push_back({std::move(d), target, body});
  }
  limits_->end_round(s);
  s.queue().complete(set_aside, now);
  if (polled && !more) next_due = s.queue().next_due();
  s.commit();

  // Signed after the commit: on a shared store the transaction holds every claimed endpoint's
  // lock (SharedLimits), which other processes' rounds wait for. The targets stay put: the
  // cache changes only in check() and get().
  const int64_t ts = now / 1000;
  jobs.reserve(admitted.size());
  for (auto& a : admitted) {
    BuiltRequest req = build_request(a.delivery, *a.target, a.body, ts, options_.request_timeout_ms,
                                     options_.connect_timeout_ms);
    req.job.tag = next_tag_++;
    sent.emplace_back(req.job.tag, InFlight{std::move(a.delivery), req.job.url,
                                            std::move(req.recorded_headers_json), now});
    jobs.push_back(std::move(req.job));
  }

  {
    std::lock_guard lock(mu_);
    fresh_reserved_ -= fresh_room.n;  // each is in flight now, or not at all
    fresh_room.n = 0;
    for (auto& [tag, f] : sent) {
      limits_->started(f.delivery.endpoint_id);
      in_flight_.emplace(tag, std::move(f));
    }
    note_in_flight();
  }
  if (!jobs.empty()) sender_->submit(std::move(jobs));
  if (more) return now;
  if (!polled) return now + options_.idle_poll_ms;  // results and new deliveries wake us
  int64_t wait = next_due ? std::max<int64_t>(0, *next_due - now) : options_.idle_poll_ms;
  // Parked endpoints at their cap are woken by their results; throttled ones by their next
  // token.
  for (const auto& ep : claims_.parked_endpoints()) {
    if (auto at = limits_->next_token_at(ep, now); at && *at > now) {
      wait = std::min(wait, *at - now);
    }
  }
  return now + std::min(options_.idle_poll_ms, wait);
}

}  // namespace herald
