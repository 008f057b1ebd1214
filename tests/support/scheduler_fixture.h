#pragma once

// What tests/scheduler_test.cc and tests/guarantees_test.cc share: a Scheduler's world and the
// reads and waits they make of it. Header-only: only binaries that link herald_scheduler
// include it.

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/encoding.h"
#include "core/ids.h"
#include "core/retry.h"
#include "core/types.h"
#include "db/attempt_store.h"
#include "db/database.h"
#include "db/delivery_store.h"
#include "db/endpoint_store.h"
#include "db/list.h"
#include "db/queue_store.h"
#include "db/session.h"
#include "scheduler/scheduler.h"
#include "tests/support/fixtures.h"
#include "tests/support/receiver.h"
#include "tests/support/store.h"
#include "tests/support/wait.h"

namespace herald::test {

// A fresh signing key (raw bytes).
inline std::string random_key() {
  return random_bytes(32);
}

// Where a test's ManualClock starts: the real time (so webhook timestamps pass a receiver's
// freshness check), or just after every id this process has made if that is later. Ids carry
// the time they were made at and never sort before earlier ones, so after an earlier test moved
// its clock on, a clock at the real time would see its own new rows as made in its future.
inline TimeMs clock_start() {
  const TimeMs last = id_time(new_id(kMessagePrefix, 0)).value_or(0);
  return std::max(SystemClock().now_ms(), last + 1);
}

// Longer than any retry schedule these tests use, in clock time: after it, nothing is due.
inline constexpr int64_t kPastSchedules = 5'000;

// The room a scheduler could promise for up to `n` handed-over deliveries right now.
inline int room(Scheduler& sched, int n) {
  const int granted = sched.reserve(n);
  sched.release(granted);
  return granted;
}

// The store under test with one application in it, a ManualClock and a loopback receiver. The
// clock starts at clock_start() and moves only when the test moves it; every row is made at
// its time. A Scheduler built on it
// must be declared after it (the store and the clock outlive the scheduler).
struct SchedulerFixture {
  TestStore store;
  std::unique_ptr<Database> db = store.open();
  ManualClock clock{clock_start()};
  Receiver rx;
  Application app;

  SchedulerFixture() { app = add_app(*db->session(), clock.now_ms(), "scheduler test"); }

  // A short schedule (50, 100, 150 ms, no jitter) and a short idle poll, both in clock time.
  static Scheduler::Options options() {
    Scheduler::Options o;
    o.retry = RetryPolicy({50, 100, 150}, 0);
    o.idle_poll_ms = 50;
    o.request_timeout_ms = 3000;
    o.connect_timeout_ms = 2000;
    return o;
  }

  Endpoint add_endpoint(const std::string& url, const std::string& key = random_key(),
                        std::map<std::string, std::string> headers = {}, bool disabled = false) {
    return test::add_endpoint(*db->session(), app.id, url, key, clock.now_ms(), std::move(headers),
                              disabled);
  }
  Message add_message(const std::string& payload, std::optional<std::string> event_id = {}) {
    return test::add_message(*db->session(), app.id, payload, clock.now_ms(), "test.event",
                             std::move(event_id));
  }
  Delivery add_delivery(const Message& m, const Endpoint& ep,
                        DeliveryStatus status = DeliveryStatus::kPending,
                        std::optional<TimeMs> due = std::nullopt,
                        TriggerType trigger = TriggerType::kScheduled) {
    return test::add_delivery(*db->session(), m, ep.id, clock.now_ms(), status, due, trigger);
  }

  Delivery delivery(const std::string& id) {
    auto d = db->session()->deliveries().get(id);
    REQUIRE(d);
    return *d;
  }
  Endpoint endpoint(const Endpoint& ep) {
    auto e = db->session()->endpoints().get(ep.app_id, ep.id);
    REQUIRE(e);
    return *e;
  }
  // Newest first.
  std::vector<Attempt> attempts(const Message& m) {
    ListParams p;
    p.limit = 250;
    return db->session()->attempts().list_by_message(app.id, m.id, p, {}).items;
  }
  std::vector<Attempt> attempts(const Endpoint& ep) {
    ListParams p;
    p.limit = 250;
    return db->session()->attempts().list_by_endpoint(ep.app_id, ep.id, p, {}).items;
  }
  DeliveryStats stats(const Endpoint& ep) { return db->session()->deliveries().stats(ep.id); }
  // Deliveries parked (pending without a due time), all endpoints.
  int64_t parked() { return db->session()->queue().state(clock.now_ms()).parked; }

  bool wait_status(const Delivery& d, DeliveryStatus s) {
    return wait_until([&] { return delivery(d.id).status == s; });
  }
  // Until `n` attempts of `d` are recorded (with the delivery's new state).
  bool wait_attempts(const Delivery& d, int n) {
    return wait_until([&] { return delivery(d.id).attempts >= n; }) && delivery(d.id).attempts == n;
  }
  bool wait_disabled(const Endpoint& ep) {
    return wait_until([&] { return endpoint(ep).disabled; });
  }

  // Moves the clock on and wakes the scheduler, which then acts at the new time.
  void advance(Scheduler& sched, int64_t ms) {
    clock.advance(ms);
    sched.wake();
  }

  // Waits until the scheduler has acted on the clock's current time: a canary delivery, due
  // now, to an endpoint of its own ("/canary" on the receiver, which must be started), has
  // been sent and recorded, and `stuck` deliveries at most remain in flight. Whatever was due
  // by now has then been sent and recorded too, so this is how a test sees that nothing more
  // happens at this time. (Deliveries that the last results created, such as operational
  // webhooks, may still be on their way.)
  bool settle(Scheduler& sched, size_t stuck = 0) {
    if (!canary_) canary_ = add_endpoint(rx.url("/canary"));
    const Delivery d = add_delivery(add_message(R"({"canary":true})"), *canary_);
    sched.wake();
    return wait_until([&] {
      return delivery(d.id).status == DeliveryStatus::kSuccess && sched.in_flight() <= stuck;
    });
  }

  // Waits for `pred`. On a shared database the scheduler trusts what it read of an endpoint's
  // load for a second of the clock (SharedLimits) before it claims parked deliveries for it
  // again, so there the clock moves on by that second whenever nothing is in flight; on a
  // database one process owns, time stands still.
  template <typename Pred>
  bool wait_parked_sent(Scheduler& sched, Pred pred) {
    return wait_until([&] {
      if (pred()) return true;
      if (db->shared() && sched.in_flight() == 0) advance(sched, 1000);
      return false;
    });
  }

 private:
  std::optional<Endpoint> canary_;
};

}  // namespace herald::test
