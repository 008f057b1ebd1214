// Integration tests of the Scheduler's delivery guarantees: Retry-After, the endpoint health
// window, throttleRate, parking, expired payloads, retention and operational webhooks. The
// store under test (HERALD_TEST_STORE), a ManualClock, the real curl Sender and a loopback
// receiver (tests/support/scheduler_fixture.h, shared with tests/scheduler_test.cc). Time
// moves only when a test moves it; real waiting is only for real I/O, through wait_until.

#include <doctest/doctest.h>
#include <httplib.h>

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/ids.h"
#include "core/retry.h"
#include "core/signing.h"
#include "core/time_format.h"
#include "core/types.h"
#include "db/app_store.h"
#include "db/attempt_store.h"
#include "db/delivery_store.h"
#include "db/endpoint_store.h"
#include "db/list.h"
#include "db/message_store.h"
#include "db/operational_webhooks.h"
#include "db/queue_store.h"
#include "db/session.h"
#include "scheduler/scheduler.h"
#include "tests/support/fixtures.h"
#include "tests/support/receiver.h"
#include "tests/support/scheduler_fixture.h"
#include "tests/support/store.h"
#include "tests/support/wait.h"

using namespace herald;
using namespace herald::test;

namespace {

using Fixture = SchedulerFixture;

// Answers `first` with a Retry-After header to the first request, 200 to the rest.
Receiver::Responder retry_after_once(int first, std::string retry_after) {
  return [first, retry_after](int n, const httplib::Request&, httplib::Response& res) {
    res.status = n == 1 ? first : 200;
    if (n == 1) res.set_header("Retry-After", retry_after);
  };
}

// The endpoint, throttled at `rate` deliveries a second.
Endpoint throttled(Fixture& f, Endpoint ep, int rate) {
  ep.throttle_rate = rate;
  REQUIRE(f.db->session()->endpoints().update(ep));
  return ep;
}

// Drives a retry schedule: waits for each of `d`'s attempts to be recorded, then moves the
// clock on by the wait that follows it.
void step_through(Fixture& f, Scheduler& sched, const Delivery& d,
                  const std::vector<int64_t>& waits) {
  int tries = 1;
  for (int64_t wait : waits) {
    REQUIRE(f.wait_attempts(d, tries++));
    f.advance(sched, wait);
  }
}

// An operational webhook as the operator's receiver got it.
struct OperatorEvent {
  std::string type;
  nlohmann::json data;
  Received request;
};

nlohmann::json last_attempt(const OperatorEvent& e) {
  return e.data.value("lastAttempt", nlohmann::json::object());
}

// A Fixture whose scheduler reports to an operator channel at "/ops" on the same receiver.
// Register responders on rx, then call start().
struct OperatorFixture : Fixture {
  std::string ops_key = random_key();
  OperatorChannel ops;

  void start() {
    rx.start();
    ops = ensure_operator_channel(*db, clock, rx.url("/ops"), SignatureScheme::kStandard,
                                  hmac_key(ops_key));
  }

  // The operational webhooks received so far, in arrival order, each checked to be signed
  // with the operator key and to be a message of the operator app.
  std::vector<OperatorEvent> events() {
    std::vector<OperatorEvent> out;
    for (const auto& r : rx.requests("/ops")) {
      const std::string id = r.header("webhook-id");
      const std::string ts = r.header("webhook-timestamp");
      REQUIRE_FALSE(ts.empty());
      CHECK(r.header("webhook-signature") == sign_v1(ops_key, id, std::stoll(ts), r.body));
      CHECK(db->session()->messages().get(ops.app_id, id).has_value());
      auto body = nlohmann::json::parse(r.body);
      REQUIRE(body.is_object());
      CHECK(body.contains("timestamp"));
      out.push_back(OperatorEvent{body.value("type", ""), body.value("data", nlohmann::json()), r});
    }
    return out;
  }

  std::vector<Message> operator_messages() {
    ListParams p;
    p.limit = 250;
    return db->session()->messages().list(ops.app_id, p, {}).items;
  }
  // The operator's deliveries, and how many of them failed for good.
  std::vector<Delivery> operator_deliveries() {
    std::vector<Delivery> out;
    auto s = db->session();
    for (const auto& m : operator_messages()) {
      for (auto& d : s->deliveries().for_message(m.id)) out.push_back(std::move(d));
    }
    return out;
  }
  size_t operator_failed() {
    auto ds = operator_deliveries();
    return static_cast<size_t>(std::count_if(
        ds.begin(), ds.end(), [](const Delivery& d) { return d.status == DeliveryStatus::kFail; }));
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Retry-After

TEST_CASE("Retry-After beyond max_retry_after_ms is capped at it") {
  Fixture f;
  f.rx.on("/capped", retry_after_once(503, "3600"));
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/capped"));
  auto m = f.add_message(R"({"ra":"cap"})");
  auto d = f.add_delivery(m, ep);
  const TimeMs t0 = f.clock.now_ms();

  auto opts = Fixture::options();
  opts.max_retry_after_ms = 300;
  Scheduler sched(*f.db, f.clock, opts);
  sched.wake();
  REQUIRE(f.wait_attempts(d, 1));
  // The cap, not an hour; and not the 50 ms schedule either.
  CHECK(f.delivery(d.id).next_attempt_at == t0 + 300);
  f.advance(sched, 299);
  REQUIRE(f.settle(sched));
  CHECK(f.rx.count("/capped") == 1);
  f.advance(sched, 1);
  REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess));
  auto attempts = f.attempts(m);
  REQUIRE(attempts.size() == 2);
  CHECK(attempts[0].timestamp == t0 + 300);
  CHECK(f.delivery(d.id).attempts == 2);  // waiting costs no attempt
}

// The recorder multiplies Retry-After seconds by 1000 before capping: a value past
// INT64_MAX / 1000 (the sender turns an out-of-range one into INT64_MAX) must not overflow
// (undefined behaviour; in practice a negative wait, and the retry on the 50 ms schedule).
TEST_CASE("Retry-After too large for milliseconds is capped, not wrapped") {
  Fixture f;
  f.rx.on("/huge", retry_after_once(429, "99999999999999999999"));
  f.rx.on("/big", retry_after_once(503, "9300000000000000"));
  f.rx.start();
  std::vector<Delivery> ds;
  for (const char* path : {"/huge", "/big"}) {
    auto ep = f.add_endpoint(f.rx.url(path));
    ds.push_back(f.add_delivery(f.add_message(R"({"ra":"huge"})"), ep));
  }
  const TimeMs t0 = f.clock.now_ms();

  auto opts = Fixture::options();
  opts.max_retry_after_ms = 300;
  Scheduler sched(*f.db, f.clock, opts);
  sched.wake();
  for (const auto& d : ds) {
    REQUIRE(f.wait_attempts(d, 1));
    CHECK(f.delivery(d.id).next_attempt_at == t0 + 300);
  }
  f.advance(sched, 300);
  for (const auto& d : ds) REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess));
  CHECK(f.rx.count("/huge") == 2);
  CHECK(f.rx.count("/big") == 2);
}

// Retry-After may lengthen the wait, never shorten it (docs/DELIVERY.md).
TEST_CASE("Retry-After shorter than the schedule's wait leaves the schedule's") {
  Fixture f;
  f.rx.on("/soon", retry_after_once(503, "1"));
  f.rx.on("/past", retry_after_once(429, "Wed, 21 Oct 2015 07:28:00 GMT"));
  f.rx.start();
  std::vector<Delivery> ds;
  for (const char* path : {"/soon", "/past"}) {
    auto ep = f.add_endpoint(f.rx.url(path));
    ds.push_back(f.add_delivery(f.add_message(R"({"ra":"short"})"), ep));
  }
  const TimeMs t0 = f.clock.now_ms();

  auto opts = Fixture::options();
  opts.retry = RetryPolicy({2000, 4000}, 0);
  Scheduler sched(*f.db, f.clock, opts);
  sched.wake();
  for (const auto& d : ds) {
    REQUIRE(f.wait_attempts(d, 1));
    CHECK(f.delivery(d.id).next_attempt_at == t0 + 2000);  // not 1 s, not at once
  }
  f.advance(sched, 1999);
  REQUIRE(f.settle(sched));
  CHECK(f.rx.count("/soon") == 1);
  CHECK(f.rx.count("/past") == 1);
  f.advance(sched, 1);
  for (const auto& d : ds) REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess));
}

TEST_CASE("Retry-After on a status other than 429 or 503 is ignored") {
  Fixture f;
  f.rx.on("/err", retry_after_once(500, "2"));
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/err"));
  auto m = f.add_message(R"({"ra":500})");
  auto d = f.add_delivery(m, ep);
  const TimeMs t0 = f.clock.now_ms();

  Scheduler sched(*f.db, f.clock, Fixture::options());
  sched.wake();
  REQUIRE(f.wait_attempts(d, 1));
  CHECK(f.delivery(d.id).next_attempt_at == t0 + 50);  // the schedule, not 2 s
  f.advance(sched, 50);
  REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess));
  CHECK(f.rx.count("/err") == 2);
}

// ---------------------------------------------------------------------------------------------
// Endpoint health

TEST_CASE("an endpoint failing for disable_after_ms without a success is disabled") {
  Fixture f;
  f.rx.on("/down", answer(500, "down"));
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/down"));
  auto m = f.add_message(R"({"health":1})");
  auto d = f.add_delivery(m, ep);
  const TimeMs t0 = f.clock.now_ms();
  // Queued for later; by then the endpoint is disabled.
  auto later =
      f.add_delivery(f.add_message(R"({"health":2})"), ep, DeliveryStatus::kPending, t0 + 700);

  auto opts = Fixture::options();
  opts.retry = RetryPolicy(std::vector<int64_t>(10, 100), 0);  // 11 tries over 1 s
  opts.disable_after_ms = 300;
  Scheduler sched(*f.db, f.clock, opts);
  sched.wake();
  // Failures at 0, 100, 200 ms; the one at 300 ms has been failing for disable_after_ms.
  step_through(f, sched, d, {100, 100, 100});
  REQUIRE(f.wait_disabled(ep));
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail));
  CHECK(f.rx.count("/down") == 4);  // far short of the 11 the schedule allows

  auto after = f.endpoint(ep);
  REQUIRE(after.disabled_reason);
  CHECK(after.disabled_reason->find("failing") != std::string::npos);
  auto attempts = f.attempts(m);
  REQUIRE(attempts.size() == 4);
  CHECK(attempts.front().timestamp == t0 + 300);
  CHECK(after.failing_since == std::optional<TimeMs>(t0));  // the first failure
  CHECK(f.delivery(d.id).attempts == 4);

  // Nothing more goes out: no retry, and the later delivery fails unsent.
  f.advance(sched, 400);
  REQUIRE(f.wait_status(later, DeliveryStatus::kFail));
  CHECK(f.delivery(later.id).attempts == 0);
  f.advance(sched, kPastSchedules);
  REQUIRE(f.settle(sched));
  CHECK(f.rx.count("/down") == 4);
}

TEST_CASE("a success resets the failing window") {
  Fixture f;
  // Requests 1-3 fail, 4 succeeds, every later one fails.
  f.rx.on("/flap", [](int n, const httplib::Request&, httplib::Response& res) {
    res.status = n == 4 ? 200 : 500;
  });
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/flap"));
  auto first = f.add_delivery(f.add_message(R"({"flap":1})"), ep);
  const TimeMs t0 = f.clock.now_ms();

  auto opts = Fixture::options();
  opts.retry = RetryPolicy(std::vector<int64_t>(10, 100), 0);
  opts.disable_after_ms = 400;
  Scheduler sched(*f.db, f.clock, opts);
  sched.wake();
  step_through(f, sched, first, {100, 100, 100});
  REQUIRE(f.wait_status(first, DeliveryStatus::kSuccess));
  auto healthy = f.endpoint(ep);
  CHECK_FALSE(healthy.disabled);
  CHECK_FALSE(healthy.failing_since.has_value());
  REQUIRE(f.rx.count("/flap") == 4);

  // 500 ms after the first failure: only a reset window lets the next delivery fail for
  // 400 ms (five tries on the 100 ms schedule) before the endpoint is disabled.
  f.clock.advance(200);
  const TimeMs second_at = f.clock.now_ms();
  REQUIRE(second_at == t0 + 500);
  auto m2 = f.add_message(R"({"flap":2})");
  auto second = f.add_delivery(m2, ep);
  sched.wake();
  step_through(f, sched, second, {100, 100, 100, 100});
  REQUIRE(f.wait_disabled(ep));
  REQUIRE(f.wait_status(second, DeliveryStatus::kFail));
  CHECK(f.rx.count("/flap") - 4 == 5);
  auto after = f.endpoint(ep);
  auto attempts = f.attempts(m2);
  REQUIRE(attempts.size() == 5);
  CHECK(after.failing_since == std::optional<TimeMs>(second_at));
  CHECK(attempts.back().timestamp == second_at);
}

// ---------------------------------------------------------------------------------------------
// throttleRate

TEST_CASE("throttleRate spaces an endpoint's deliveries; others go at full speed") {
  Fixture f;
  f.rx.start();
  auto slow = throttled(f, f.add_endpoint(f.rx.url("/throttled")), 5);
  auto fast = f.add_endpoint(f.rx.url("/free"));
  std::vector<Delivery> limited;
  for (int i = 0; i < 12; ++i) {
    auto m = f.add_message(R"({"i":)" + std::to_string(i) + "}");
    limited.push_back(f.add_delivery(m, slow));
    f.add_delivery(m, fast);
  }
  const TimeMs t0 = f.clock.now_ms();

  auto opts = Fixture::options();
  // Below the receiver's listen backlog (cpp-httplib's is 5): a burst past it stalls connects
  // for a second of SYN retransmission, whoever sends it.
  opts.max_in_flight = 4;
  Scheduler sched(*f.db, f.clock, opts);
  sched.wake();
  // The free endpoint gets everything without the clock moving; the throttled one a second's
  // worth of tokens (5), the rest parked.
  REQUIRE(wait_until([&] { return f.stats(fast).success == 12; }));
  REQUIRE(wait_until([&] { return f.stats(slow).success == 5 && f.parked() == 7; }));
  for (const auto& a : f.attempts(fast)) CHECK(a.timestamp == t0);
  REQUIRE(f.settle(sched));
  CHECK(f.rx.count("/throttled") == 5);

  // Then one every 200 ms.
  for (int64_t sent = 6; sent <= 12; ++sent) {
    CAPTURE(sent);
    f.advance(sched, 200);
    REQUIRE(wait_until([&] { return f.stats(slow).success >= sent; }));
    REQUIRE(f.settle(sched));
    CHECK(f.stats(slow).success == sent);
  }
  std::vector<TimeMs> at;
  for (const auto& a : f.attempts(slow)) at.push_back(a.timestamp);
  std::sort(at.begin(), at.end());
  CHECK(at == std::vector<TimeMs>{t0, t0, t0, t0, t0, t0 + 200, t0 + 400, t0 + 600, t0 + 800,
                                  t0 + 1000, t0 + 1200, t0 + 1400});
  // Waiting for a token costs no attempt.
  for (const auto& d : limited) CHECK(f.delivery(d.id).attempts == 1);
  CHECK(f.rx.count("/free") == 12);
  CHECK(f.rx.count("/throttled") == 12);
}

// A throttled endpoint's backlog is parked once, then left alone until its next token: claims
// never scan or rewrite it while it waits.
TEST_CASE("an endpoint with no token left is parked, not claimed again and again") {
  Fixture f;
  f.rx.start();
  auto ep = throttled(f, f.add_endpoint(f.rx.url("/one-per-second")), 1);
  const TimeMs queued_at = f.clock.now_ms() - 1000;
  std::vector<Delivery> queued;
  {
    auto s = f.db->begin();
    for (int i = 0; i < 200; ++i) {
      auto m = add_message(*s, f.app.id, R"({"i":)" + std::to_string(i) + "}", queued_at);
      queued.push_back(add_delivery(*s, m, ep.id, queued_at));
    }
    s->commit();
  }

  auto opts = Fixture::options();
  opts.claim_batch = 10;
  Scheduler sched(*f.db, f.clock, opts);
  sched.wake();
  REQUIRE(wait_until([&] { return f.rx.count("/one-per-second") == 1; }));
  REQUIRE(wait_until([&] { return f.parked() == 199; }));
  const auto last_written = [&] {
    TimeMs latest = 0;
    auto s = f.db->session();
    for (const auto& d : queued) {
      auto now = s->deliveries().get(d.id);
      REQUIRE(now);
      if (now->status == DeliveryStatus::kPending) latest = std::max(latest, now->updated_at);
    }
    return latest;
  };
  const TimeMs parked_at = last_written();
  CHECK(parked_at == f.clock.now_ms());

  // 600 ms on, the next token still 400 ms away: nothing sent, not one row rewritten.
  f.advance(sched, 600);
  REQUIRE(f.settle(sched));
  CHECK(f.rx.count("/one-per-second") == 1);
  CHECK(last_written() == parked_at);
  CHECK(f.parked() == 199);

  // The next token sends the next one, taken from the parked backlog.
  f.advance(sched, 400);
  REQUIRE(wait_until([&] { return f.rx.count("/one-per-second") == 2; }));
  REQUIRE(f.settle(sched));
  CHECK(f.rx.count("/one-per-second") == 2);
  CHECK(f.parked() == 198);
}

// Deliveries over an endpoint's concurrency cap are parked, not churned: each is sent exactly
// once as room frees up, and an endpoint at its cap does not hold back another.
TEST_CASE("deliveries over an endpoint's cap are parked and each is sent exactly once") {
  Fixture f;
  // The slow endpoint holds its slots until released, however long the rest takes (under the
  // sanitizers on PostgreSQL, seconds): its requests must not time out meanwhile.
  constexpr auto kHold = std::chrono::seconds(30);
  f.rx.on("/slow", [&f, kHold](int, const httplib::Request&, httplib::Response& res) {
    f.rx.gate.wait_for(kHold);
    res.status = 200;
  });
  f.rx.start();
  auto slow = f.add_endpoint(f.rx.url("/slow"));
  auto fast = f.add_endpoint(f.rx.url("/fast"));
  constexpr int kMessages = 30;
  std::vector<Delivery> to_slow;
  for (int i = 0; i < kMessages; ++i) {
    auto m = f.add_message(R"({"i":)" + std::to_string(i) + "}");
    to_slow.push_back(f.add_delivery(m, slow));
    f.add_delivery(m, fast);
  }
  auto opts = Fixture::options();
  opts.endpoint_concurrency = 4;
  opts.claim_batch = 8;
  opts.request_timeout_ms = std::chrono::milliseconds(kHold).count() + 5000;
  Scheduler sched(*f.db, f.clock, opts);
  sched.wake();
  // The fast endpoint gets everything while the slow one holds its 4 slots.
  REQUIRE(wait_until([&] { return f.stats(fast).success == kMessages; }, 3 * kDeadline));
  REQUIRE(wait_until([&] { return f.rx.count("/slow") == 4; }));
  // The rest of the slow endpoint's deliveries wait parked: pending, no due time.
  REQUIRE(wait_until([&] { return f.parked() == kMessages - 4; }));
  REQUIRE(f.settle(sched, 4));
  CHECK(f.rx.count("/slow") == 4);
  CHECK(f.rx.count("/fast") == kMessages);

  f.rx.gate.release();
  REQUIRE(f.wait_parked_sent(sched, [&] { return f.stats(slow).success == kMessages; }));
  REQUIRE(f.settle(sched));
  CHECK(f.rx.count("/slow") == kMessages);  // each exactly once
  CHECK(f.rx.peak("/slow") == 4);           // the cap held throughout
  CHECK(f.attempts(slow).size() == kMessages);
  for (const auto& d : to_slow) CHECK(f.delivery(d.id).attempts == 1);
  CHECK(f.parked() == 0);
}

TEST_CASE("parked deliveries left by an earlier process are sent after a restart") {
  Fixture f;
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/after-restart"));
  std::vector<Delivery> parked;
  for (int i = 0; i < 5; ++i) {
    auto m = f.add_message(R"({"i":)" + std::to_string(i) + "}");
    parked.push_back(f.add_delivery(m, ep));
  }
  {
    // As a scheduler that stopped with these parked would have left them.
    const TimeMs now = f.clock.now_ms();
    auto s = f.db->begin();
    auto claimed = s->queue().claim(now, 60'000, 10);
    REQUIRE(claimed.size() == parked.size());
    std::vector<DeliveryUpdate> park;
    for (const auto& d : claimed) {
      park.push_back({d.id, DeliveryStatus::kPending, 0, std::nullopt, d.claim});
    }
    s->queue().complete(park, now);
    s->commit();
  }
  REQUIRE(f.parked() == 5);

  Scheduler sched(*f.db, f.clock, Fixture::options());  // not woken: its first round finds them
  for (const auto& d : parked) REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess));
  CHECK(f.rx.count("/after-restart") == 5);
  CHECK(f.parked() == 0);
}

// ---------------------------------------------------------------------------------------------
// Expired payloads and retention

TEST_CASE("a delivery whose payload expired fails without an attempt") {
  Fixture f;
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/expired"));
  auto m = f.add_message(R"({"expired":true})");
  {
    std::string last;
    REQUIRE(f.db->session()->messages().expire_payloads(f.clock.now_ms() + 1, "", 10, &last) == 1);
    REQUIRE(last == m.id);
  }
  auto d = f.add_delivery(m, ep);
  auto kept = f.add_delivery(f.add_message(R"({"expired":false})"), ep);

  Scheduler sched(*f.db, f.clock, Fixture::options());
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail));
  REQUIRE(f.wait_status(kept, DeliveryStatus::kSuccess));
  REQUIRE(f.settle(sched));
  CHECK(f.delivery(d.id).attempts == 0);
  CHECK(f.attempts(m).empty());
  auto got = f.rx.requests("/expired");
  REQUIRE(got.size() == 1);
  CHECK(got[0].body == R"({"expired":false})");
}

TEST_CASE("retention purges old payloads and attempts in batches and keeps newer ones") {
  Fixture f;
  f.rx.start();
  auto ep = f.add_endpoint("http://127.0.0.1:9/unused");
  const TimeMs now = f.clock.now_ms();
  const TimeMs old = now - 600'000;  // retention below is one minute
  struct Row {
    Message m;
    Attempt a;
  };
  const auto add = [&](TimeMs at, int n) {
    Row r;
    r.m.id = id_at(kMessagePrefix, at, n);
    r.m.app_id = f.app.id;
    r.m.event_type = "test.event";
    r.m.payload = R"({"n":)" + std::to_string(n) + "}";
    r.m.timestamp = at;
    r.a.id = id_at(kAttemptPrefix, at, n);
    r.a.app_id = f.app.id;
    r.a.msg_id = r.m.id;
    r.a.endpoint_id = ep.id;
    r.a.delivery_id = id_at(kDeliveryPrefix, at, n);
    r.a.url = ep.url;
    r.a.response_status_code = 500;
    r.a.response = "old";
    r.a.timestamp = at;
    auto s = f.db->session();
    s->messages().insert(r.m);
    s->attempts().insert({r.a});
    return r;
  };
  std::vector<Row> expiring;
  for (int i = 1; i <= 5; ++i) expiring.push_back(add(old + i, i));
  std::vector<Row> kept = {add(now - 59'000, 1), add(now - 1000, 2), add(now, 3)};

  auto opts = Fixture::options();
  opts.retention_ms = 60'000;
  opts.purge_batch = 2;  // 5 rows: three batches
  Scheduler sched(*f.db, f.clock, opts);
  const auto message = [&](const Row& r) {
    auto m = f.db->session()->messages().get(f.app.id, r.m.id);
    REQUIRE(m);
    return *m;
  };
  const auto attempt_exists = [&](const Row& r) {
    return f.db->session()->attempts().get(f.app.id, r.a.id).has_value();
  };
  const auto purged = [&] {
    return std::count_if(expiring.begin(), expiring.end(), [&](const Row& r) {
      return message(r).payload_expired && !attempt_exists(r);
    });
  };
  // A batch runs after each scheduler round, back to back while there is more: the time does
  // not move, so the next pass (a quarter of the retention period later) is never reached.
  // Each settle() takes at least one round.
  for (int i = 0; i < 5 && purged() < 5; ++i) REQUIRE(f.settle(sched));
  CHECK(purged() == 5);
  CHECK(f.clock.now_ms() == now);
  for (const auto& r : kept) {
    CAPTURE(r.m.id);
    auto m = message(r);
    CHECK_FALSE(m.payload_expired);
    CHECK(m.payload == r.m.payload);
    CHECK(attempt_exists(r));
  }
  for (const auto& r : expiring) {
    CAPTURE(r.m.id);
    auto m = message(r);
    CHECK(m.payload.empty());
    CHECK(m.event_type == "test.event");  // the message itself stays
  }

  // What ages past the retention period later goes in a later pass (idle passes come at least
  // four times per retention period).
  f.advance(sched, 15'000);  // kept[0] is now 74 s old, kept[1] 16 s
  REQUIRE(wait_until([&] { return message(kept[0]).payload_expired; }));
  CHECK_FALSE(attempt_exists(kept[0]));
  CHECK_FALSE(message(kept[1]).payload_expired);
  CHECK(attempt_exists(kept[1]));
}

TEST_CASE("retention deletes messages past the message retention with their deliveries") {
  Fixture f;
  f.rx.start();
  auto ep = f.add_endpoint("http://127.0.0.1:9/unused");
  const TimeMs now = f.clock.now_ms();
  const TimeMs old = now - 600'000;  // the message retention below is two minutes
  struct Row {
    Message m;
    Delivery d;
    Attempt a;
  };
  int n = 0;
  // Ids made for a time in the past, as the rows' own would have been then.
  const auto add = [&](TimeMs at, DeliveryStatus status, std::optional<TimeMs> due = {}) {
    auto s = f.db->session();
    Row r;
    ++n;
    r.m.id = id_at(kMessagePrefix, at, n);
    r.m.app_id = f.app.id;
    r.m.event_type = "test.event";
    r.m.payload = R"({"n":)" + std::to_string(n) + "}";
    r.m.timestamp = at;
    s->messages().insert(r.m);
    r.d.id = id_at(kDeliveryPrefix, at, n);
    r.d.app_id = f.app.id;
    r.d.msg_id = r.m.id;
    r.d.endpoint_id = ep.id;
    r.d.status = status;
    r.d.next_attempt_at = due.value_or(0);
    r.d.created_at = r.d.updated_at = at;
    s->deliveries().insert(r.d);
    r.a.id = id_at(kAttemptPrefix, at, n);
    r.a.app_id = f.app.id;
    r.a.msg_id = r.m.id;
    r.a.endpoint_id = ep.id;
    r.a.delivery_id = r.d.id;
    r.a.url = ep.url;
    r.a.response_status_code = 500;
    r.a.response = "old";
    r.a.timestamp = at;
    s->attempts().insert({r.a});
    return r;
  };
  std::vector<Row> deleted;
  for (int i = 0; i < 5; ++i) {
    deleted.push_back(add(old + i, i % 2 ? DeliveryStatus::kSuccess : DeliveryStatus::kFail));
  }
  // Still pending (due in an hour): its message stays until the delivery ends.
  const Row waiting = add(old + 10, DeliveryStatus::kPending, now + 3'600'000);
  // Past the payload retention, not the message retention.
  const Row recent = add(now - 90'000, DeliveryStatus::kSuccess);

  auto opts = Fixture::options();
  opts.retention_ms = 60'000;
  opts.message_retention_ms = 120'000;
  opts.purge_batch = 2;  // 5 messages: three batches
  Scheduler sched(*f.db, f.clock, opts);
  const auto exists = [&](const Row& r) {
    return f.db->session()->messages().get(f.app.id, r.m.id).has_value();
  };
  const auto remaining = [&] { return std::count_if(deleted.begin(), deleted.end(), exists); };
  for (int i = 0; i < 6 && remaining() > 0; ++i) REQUIRE(f.settle(sched));
  CHECK(remaining() == 0);
  for (const auto& r : deleted) {
    CAPTURE(r.m.id);
    auto s = f.db->session();
    CHECK_FALSE(s->deliveries().get(r.d.id).has_value());
    CHECK_FALSE(s->attempts().get(f.app.id, r.a.id).has_value());
  }
  REQUIRE(exists(waiting));
  CHECK(f.delivery(waiting.d.id).status == DeliveryStatus::kPending);
  REQUIRE(exists(recent));
  // Payloads are expired in batches of their own, in id order: the newest message's may come a
  // pass after the last deletion.
  const auto expired = [&] {
    return f.db->session()->messages().get(f.app.id, recent.m.id)->payload_expired;
  };
  for (int i = 0; i < 6 && !expired(); ++i) REQUIRE(f.settle(sched));
  CHECK(expired());
  REQUIRE(exists(recent));
  CHECK(f.delivery(recent.d.id).status == DeliveryStatus::kSuccess);
}

// ---------------------------------------------------------------------------------------------
// Operational webhooks

TEST_CASE("ensure_operator_channel creates the channel once and follows url and key changes") {
  TestStore store;
  auto db = store.open(2);
  ManualClock clock(clock_start());
  auto a = ensure_operator_channel(*db, clock, "http://127.0.0.1:1/first",
                                   SignatureScheme::kStandard, hmac_key("key-one-0123456789"));
  auto b = ensure_operator_channel(*db, clock, "http://127.0.0.1:1/second",
                                   SignatureScheme::kStandard, hmac_key("key-two-0123456789"));
  CHECK(a.app_id == b.app_id);
  CHECK(a.endpoint_id == b.endpoint_id);
  auto s = db->session();
  auto app = s->apps().get_by_uid(std::string(kOperatorAppUid));
  REQUIRE(app);
  CHECK(app->id == a.app_id);
  EndpointStore& endpoints = s->endpoints();
  auto ep = endpoints.get(a.app_id, a.endpoint_id);
  REQUIRE(ep);
  CHECK(ep->url == "http://127.0.0.1:1/second");
  CHECK(endpoints.signing_keys(ep->id, clock.now_ms() + 1) == hmac_keys({"key-two-0123456789"}));

  // A disabled operator endpoint is enabled again, with a fresh health window.
  endpoints.note_failure(ep->id, clock.now_ms());
  REQUIRE(endpoints.disable(ep->id, "failing", clock.now_ms()));
  REQUIRE(endpoints.get(a.app_id, a.endpoint_id)->disabled);
  auto again = ensure_operator_channel(*db, clock, "http://127.0.0.1:1/second",
                                       SignatureScheme::kStandard, hmac_key("key-two-0123456789"));
  CHECK(again.endpoint_id == a.endpoint_id);
  ep = endpoints.get(a.app_id, a.endpoint_id);
  REQUIRE(ep);
  CHECK_FALSE(ep->disabled);
  CHECK_FALSE(ep->disabled_reason.has_value());
  CHECK_FALSE(ep->failing_since.has_value());
  CHECK(endpoints.list(a.app_id, ListParams{}).items.size() == 1);
}

TEST_CASE("operator: a 410 sends a signed endpoint.disabled") {
  OperatorFixture f;
  f.rx.on("/gone", answer(410, "gone"));
  f.start();
  auto ep = f.add_endpoint(f.rx.url("/gone"));
  auto d = f.add_delivery(f.add_message(R"({"gone":1})"), ep);
  const TimeMs t0 = f.clock.now_ms();

  Scheduler sched(*f.db, f.clock, f.options());
  sched.wake();
  REQUIRE(f.wait_disabled(ep));
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail));
  REQUIRE(wait_until([&] { return f.rx.count("/ops") >= 1; }));
  f.advance(sched, kPastSchedules);
  REQUIRE(f.settle(sched));
  CHECK(f.rx.count("/gone") == 1);
  auto after = f.endpoint(ep);
  REQUIRE(after.disabled_reason);
  CHECK(after.disabled_reason->find("410") != std::string::npos);

  auto events = f.events();
  REQUIRE(events.size() == 1);
  const auto& e = events[0];
  CHECK(e.type == "endpoint.disabled");
  CHECK(e.data.value("endpointId", "") == ep.id);
  CHECK(e.data.value("appId", "") == f.app.id);
  CHECK(e.data.value("reason", "") == *after.disabled_reason);
  CHECK(e.data.value("trigger", "") == "automatic");
  CHECK(e.data.value("failSince", "") == format_rfc3339(f.attempts(ep).front().timestamp));
  // The operator's key, not the app endpoint's.
  const int64_t ts = std::stoll(e.request.header("webhook-timestamp"));
  CHECK(e.request.header("webhook-signature") ==
        signature_header({f.ops_key}, e.request.header("webhook-id"), ts, e.request.body));
  CHECK(ts == t0 / 1000);  // sent as the 410 was recorded
}

TEST_CASE("operator: an endpoint disabled by the health window is reported with its failSince") {
  OperatorFixture f;
  f.rx.on("/down", answer(500));
  f.start();
  auto ep = f.add_endpoint(f.rx.url("/down"));
  auto m = f.add_message(R"({"down":1})");
  auto d = f.add_delivery(m, ep);
  const TimeMs t0 = f.clock.now_ms();

  auto opts = f.options();
  opts.retry = RetryPolicy(std::vector<int64_t>(10, 100), 0);
  opts.disable_after_ms = 250;
  Scheduler sched(*f.db, f.clock, opts);
  sched.wake();
  step_through(f, sched, d, {100, 100, 100});  // the 4th failure, at 300 ms, disables it
  REQUIRE(f.wait_disabled(ep));
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail));
  REQUIRE(wait_until([&] { return f.rx.count("/ops") >= 2; }));
  REQUIRE(f.settle(sched));

  auto attempts = f.attempts(m);
  REQUIRE(attempts.size() == 4);
  auto events = f.events();
  std::optional<OperatorEvent> disabled;
  for (const auto& e : events) {
    if (e.type == "endpoint.disabled") disabled = e;
  }
  REQUIRE(disabled);
  CHECK(disabled->data.value("endpointId", "") == ep.id);
  CHECK(disabled->data.value("reason", "").find("failing") != std::string::npos);
  CHECK(disabled->data.value("failSince", "") == format_rfc3339(t0));
  CHECK(attempts.back().timestamp == t0);
  // The delivery it stopped is exhausted as well; it never reached 4 failures with retries left.
  std::vector<std::string> types;
  for (const auto& e : events) types.push_back(e.type);
  std::sort(types.begin(), types.end());
  CHECK(types == std::vector<std::string>{"endpoint.disabled", "message.attempt.exhausted"});
}

TEST_CASE("operator: a delivery out of retries sends message.attempt.exhausted") {
  OperatorFixture f;
  f.rx.on("/down", answer(500, "still down"));
  f.start();
  auto ep = f.add_endpoint(f.rx.url("/down"));
  auto m = f.add_message(R"({"down":1})", "evt-exhausted");
  auto d = f.add_delivery(m, ep);

  Scheduler sched(*f.db, f.clock, f.options());  // 4 tries: none with retries left after it
  sched.wake();
  step_through(f, sched, d, {50, 100, 150});
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail));
  REQUIRE(wait_until([&] { return f.rx.count("/ops") >= 1; }));
  f.advance(sched, kPastSchedules);
  REQUIRE(f.settle(sched));
  CHECK(f.rx.count("/down") == 4);
  CHECK_FALSE(f.endpoint(ep).disabled);

  auto attempts = f.attempts(m);
  REQUIRE(attempts.size() == 4);
  auto events = f.events();
  REQUIRE(events.size() == 1);
  const auto& e = events[0];
  CHECK(e.type == "message.attempt.exhausted");
  CHECK(e.data.value("msgId", "") == m.id);
  CHECK(e.data.value("msgEventId", "") == "evt-exhausted");
  CHECK(e.data.value("endpointId", "") == ep.id);
  CHECK(e.data.value("appId", "") == f.app.id);
  REQUIRE(e.data.contains("appUid"));
  CHECK(e.data.at("appUid").is_null());
  CHECK(last_attempt(e).value("id", "") == attempts.front().id);
  CHECK(last_attempt(e).value("responseStatusCode", 0) == 500);
  CHECK(last_attempt(e).value("timestamp", "") == format_rfc3339(attempts.front().timestamp));
}

TEST_CASE("operator: four failures with retries left, then a success: failing, then recovered") {
  OperatorFixture f;
  f.rx.on("/flaky", [](int n, const httplib::Request&, httplib::Response& res) {
    res.status = n <= 4 ? 500 : 200;
  });
  f.start();
  auto ep = f.add_endpoint(f.rx.url("/flaky"));
  auto m = f.add_message(R"({"flaky":1})");
  auto d = f.add_delivery(m, ep);

  auto opts = f.options();
  opts.retry = RetryPolicy({30, 30, 30, 30, 30}, 0);
  Scheduler sched(*f.db, f.clock, opts);
  sched.wake();
  step_through(f, sched, d, {30, 30, 30, 30});
  REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess));
  REQUIRE(wait_until([&] { return f.rx.count("/ops") >= 2; }));
  f.advance(sched, kPastSchedules);
  REQUIRE(f.settle(sched));
  CHECK(f.rx.count("/flaky") == 5);

  auto attempts = f.attempts(m);
  REQUIRE(attempts.size() == 5);
  auto events = f.events();
  REQUIRE(events.size() == 2);
  CHECK(events[0].type == "message.attempt.failing");
  CHECK(events[0].data.value("msgId", "") == m.id);
  CHECK(last_attempt(events[0]).value("id", "") == attempts[1].id);  // the 4th
  CHECK(last_attempt(events[0]).value("responseStatusCode", 0) == 500);
  CHECK(events[1].type == "message.attempt.recovered");
  CHECK(events[1].data.value("msgId", "") == m.id);
  CHECK(events[1].data.value("endpointId", "") == ep.id);
  CHECK(last_attempt(events[1]).value("id", "") == attempts[0].id);
  CHECK(last_attempt(events[1]).value("responseStatusCode", 0) == 200);
}

TEST_CASE("operator: a success without a failing run sends nothing") {
  OperatorFixture f;
  f.rx.on("/flaky", [](int n, const httplib::Request&, httplib::Response& res) {
    res.status = n <= 3 ? 500 : 200;
  });
  f.start();
  auto ep = f.add_endpoint(f.rx.url("/flaky"));
  auto d = f.add_delivery(f.add_message(R"({"flaky":2})"), ep);
  auto ok = f.add_delivery(f.add_message(R"({"fine":1})"), f.add_endpoint(f.rx.url("/fine")));

  auto opts = f.options();
  opts.retry = RetryPolicy({30, 30, 30, 30, 30}, 0);
  Scheduler sched(*f.db, f.clock, opts);
  sched.wake();
  step_through(f, sched, d, {30, 30, 30});
  REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess));
  REQUIRE(f.wait_status(ok, DeliveryStatus::kSuccess));
  CHECK(f.delivery(d.id).attempts == 4);
  f.advance(sched, kPastSchedules);
  REQUIRE(f.settle(sched));
  CHECK(f.rx.count("/ops") == 0);
  CHECK(f.operator_messages().empty());
}

TEST_CASE("operator: no events about the operator's own failing deliveries") {
  OperatorFixture f;
  f.rx.on("/down", answer(500));
  f.rx.on("/ops", answer(500, "operator down too"));
  f.start();
  auto ep = f.add_endpoint(f.rx.url("/down"));
  auto d = f.add_delivery(f.add_message(R"({"down":1})"), ep);

  auto opts = f.options();
  opts.retry = RetryPolicy({20, 20, 20, 20, 20}, 0);  // 6 tries: failing at 4, exhausted at 6
  Scheduler sched(*f.db, f.clock, opts);
  sched.wake();
  step_through(f, sched, d, {20, 20, 20, 20, 20});
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail));
  // Both operator messages fail all 6 tries; about themselves they must report nothing. Step
  // through their schedules, letting the scheduler settle at each step.
  for (int step = 0; step < 30 && f.operator_failed() < 2; ++step) {
    f.advance(sched, 20);
    REQUIRE(f.settle(sched));
  }
  REQUIRE(f.operator_failed() == 2);
  f.advance(sched, kPastSchedules);
  REQUIRE(f.settle(sched));
  CHECK(f.operator_messages().size() == 2);
  CHECK(f.operator_deliveries().size() == 2);
  CHECK(f.rx.count("/ops") == 12);
  std::vector<std::string> types;
  for (const auto& r : f.rx.requests("/ops")) {
    types.push_back(nlohmann::json::parse(r.body).value("type", ""));
  }
  CHECK(std::count(types.begin(), types.end(), "message.attempt.failing") == 6);
  CHECK(std::count(types.begin(), types.end(), "message.attempt.exhausted") == 6);
}

TEST_CASE("operator: the operator endpoint answering 410 is disabled without an event") {
  OperatorFixture f;
  f.rx.on("/gone", answer(410));
  f.rx.on("/ops", answer(410));
  f.start();
  auto ep = f.add_endpoint(f.rx.url("/gone"));
  f.add_delivery(f.add_message(R"({"gone":1})"), ep);

  Scheduler sched(*f.db, f.clock, f.options());
  sched.wake();
  REQUIRE(f.wait_disabled(ep));
  const auto ops_disabled = [&] {
    auto e = f.db->session()->endpoints().get(f.ops.app_id, f.ops.endpoint_id);
    return e && e->disabled;
  };
  REQUIRE(wait_until(ops_disabled));
  f.advance(sched, kPastSchedules);
  REQUIRE(f.settle(sched));
  CHECK(f.operator_messages().size() == 1);  // about the app's endpoint only
  CHECK(f.rx.count("/ops") == 1);
}
