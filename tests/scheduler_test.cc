// Integration tests of the Scheduler: the store under test (HERALD_TEST_STORE), a ManualClock,
// the real curl Sender and a loopback receiver. Time moves only when a test moves it, so no
// test sleeps through a backoff or a lease; real waiting is only for real I/O, through
// wait_until with a deadline. Tests in the "sqlite" suite reach into SQLite itself.

#include "scheduler/scheduler.h"

#include <doctest/doctest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api/server.h"
#include "api/tokens.h"
#include "core/clock.h"
#include "core/encoding.h"
#include "core/headers.h"
#include "core/ids.h"
#include "core/retry.h"
#include "core/signing.h"
#include "core/types.h"
#include "db/database.h"
#include "db/endpoint_store.h"
#include "db/enqueue.h"
#include "db/session.h"
#include "db/sqlite/connection.h"
#include "db/task_store.h"
#include "db/tasks.h"
#include "scheduler/endpoint_limits.h"
#include "scheduler/task_runner.h"
#include "tests/support/receiver.h"
#include "tests/support/scheduler_fixture.h"
#include "tests/support/store.h"
#include "tests/support/wait.h"

using namespace herald;
using namespace herald::test;

namespace {

using Fixture = SchedulerFixture;

std::vector<std::string> split_spaces(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string part; in >> part;) out.push_back(part);
  return out;
}

// CPU time this process has used, all threads, in milliseconds.
int64_t process_cpu_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

int64_t parse_ts(const std::string& s) {
  REQUIRE_FALSE(s.empty());
  return std::stoll(s);
}

// A handler held until the receiver's gate opens (the receiver opens it when it stops).
Receiver::Responder held(Receiver& rx, int status, std::string body = "") {
  return [&rx, status, body](int, const httplib::Request&, httplib::Response& res) {
    rx.gate.wait_for(kDeadline);
    res.status = status;
    res.set_content(body, "text/plain");
  };
}

// Deliveries as the API writes those it hands over: sending, leased for the scheduler's lease,
// so that no claim takes them.
std::vector<Delivery> handed_rows(Fixture& f, const Message& m, const Endpoint& ep, int n,
                                  const Scheduler& sched) {
  std::vector<Delivery> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(
        f.add_delivery(m, ep, DeliveryStatus::kSending, f.clock.now_ms() + sched.lease_ms()));
  }
  return out;
}

}  // namespace

TEST_CASE("a due delivery is sent once, signed, and recorded as one successful attempt") {
  Fixture f;
  f.rx.on("/hook", answer(202, "thanks, got it"));
  f.rx.start();
  const std::string key = random_key();
  auto ep = f.add_endpoint(f.rx.url("/hook"), key, {{"x-custom", "hello there"}});
  const std::string payload =
      "{\"type\": \"invoice.paid\",\n  \"amount\": 12.50, \"note\": \"h\xc3\xa9llo \\\"q\\\"\"}";
  auto m = f.add_message(payload);
  auto d = f.add_delivery(m, ep);
  const TimeMs now = f.clock.now_ms();

  Scheduler sched(*f.db, f.clock, Fixture::options());
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess));
  REQUIRE(f.settle(sched));  // a duplicate would have been sent by now

  auto got = f.rx.requests("/hook");
  REQUIRE(got.size() == 1);
  const Received& r = got[0];
  CHECK(r.body == payload);  // the exact bytes
  CHECK(r.header("webhook-id") == m.id);
  CHECK(r.header("content-type") == "application/json");
  CHECK(r.header_count("content-type") == 1);
  CHECK(r.header("x-custom") == "hello there");
  const int64_t ts = parse_ts(r.header("webhook-timestamp"));
  CHECK(ts == now / 1000);  // signed at the scheduler's time
  // Fresh for a real receiver (Standard Webhooks allows 5 minutes; the clock starts at the real
  // time, plus what earlier tests in this process moved theirs on).
  CHECK(std::abs(ts - SystemClock().now_ms() / 1000) <= 300);
  const std::string sig = r.header("webhook-signature");
  CHECK(sig == signature_header({key}, m.id, ts, payload));
  CHECK(sig == sign_v1(key, m.id, ts, payload));  // a single key: a single signature

  auto attempts = f.attempts(m);
  REQUIRE(attempts.size() == 1);
  const Attempt& a = attempts[0];
  CHECK(a.status == DeliveryStatus::kSuccess);
  CHECK(a.response_status_code == 202);
  CHECK(a.url == f.rx.url("/hook"));
  CHECK(a.response == "thanks, got it");
  CHECK(a.endpoint_id == ep.id);
  CHECK(a.delivery_id == d.id);
  CHECK(a.trigger == TriggerType::kScheduled);
  CHECK(a.response_duration_ms >= 0);
  CHECK(a.response_duration_ms < 3000);
  CHECK(a.timestamp == now);
  auto headers = nlohmann::json::parse(a.request_headers_json);
  REQUIRE(headers.is_object());
  CHECK(headers.value("webhook-signature", "") == sig);
  CHECK(headers.value("webhook-id", "") == m.id);
  CHECK(headers.value("webhook-timestamp", "") == std::to_string(ts));
  // Every header the receiver got is recorded as it got it, the user agent included.
  CHECK(r.header("user-agent") == kUserAgent);
  CHECK(r.header_count("user-agent") == 1);
  CHECK(headers.value("user-agent", "") == kUserAgent);
  CHECK(a.request_headers_json.find(base64_encode(key)) == std::string::npos);

  auto after = f.delivery(d.id);
  CHECK(after.status == DeliveryStatus::kSuccess);
  CHECK(after.attempts == 1);
  CHECK(sched.in_flight() == 0);
}

// Sensitive header values go to the receiver but are masked in the attempt as the store keeps
// it, not only when the API shows it (docs/API.md, "Masked headers").
TEST_CASE("sensitive custom headers are sent as given and stored masked") {
  Fixture f;
  f.rx.on("/masked", answer(200, "ok"));
  f.rx.start();
  const std::map<std::string, std::string> headers = {
      {"Authorization", "Bearer auth-value-1"}, {"X-Api-Key", "api-key-value-2"},
      {"X-Session-Token", "token-value-3"},     {"X-Client-Secret", "secret-value-4"},
      {"Cookie", "sid=cookie-value-5"},         {"X-Plain", "plain-value"}};
  auto ep = f.add_endpoint(f.rx.url("/masked"), random_key(), headers);
  auto m = f.add_message(R"({"masked":true})");
  auto d = f.add_delivery(m, ep);
  Scheduler sched(*f.db, f.clock, Fixture::options());
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess));

  auto got = f.rx.requests("/masked");
  REQUIRE(got.size() == 1);
  auto attempts = f.attempts(m);
  REQUIRE(attempts.size() == 1);
  const std::string& stored = attempts[0].request_headers_json;
  auto recorded = nlohmann::json::parse(stored);
  for (const auto& [name, value] : headers) {
    CHECK(got[0].header(name) == value);
    REQUIRE(recorded.contains(name));  // as sent
    if (name == "X-Plain") {
      CHECK(recorded[name] == value);
    } else {
      CHECK(recorded[name] == std::string(kMaskedHeaderValue));
      CHECK(stored.find(value) == std::string::npos);
    }
  }
}

TEST_CASE("failures are retried on the schedule until a success") {
  Fixture f;
  f.rx.on("/flaky", [](int n, const httplib::Request&, httplib::Response& res) {
    res.status = n <= 2 ? 500 : 200;
    res.set_content(n <= 2 ? "broken " + std::to_string(n) : "fine", "text/plain");
  });
  f.rx.start();
  const std::string key = random_key();
  auto ep = f.add_endpoint(f.rx.url("/flaky"), key);
  auto m = f.add_message(R"({"retry":true})");
  auto d = f.add_delivery(m, ep);
  const TimeMs t0 = f.clock.now_ms();

  Scheduler sched(*f.db, f.clock, Fixture::options());
  sched.wake();
  REQUIRE(f.wait_attempts(d, 1));
  auto after = f.delivery(d.id);
  CHECK(after.status == DeliveryStatus::kPending);
  CHECK(after.next_attempt_at == t0 + 50);  // the schedule's first wait
  f.advance(sched, 49);
  REQUIRE(f.settle(sched));
  CHECK(f.rx.count("/flaky") == 1);  // not before its time
  f.advance(sched, 1);
  REQUIRE(f.wait_attempts(d, 2));
  CHECK(f.delivery(d.id).next_attempt_at == t0 + 150);  // then 100 ms
  f.advance(sched, 100);
  REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess));
  REQUIRE(f.settle(sched));

  auto got = f.rx.requests("/flaky");
  REQUIRE(got.size() == 3);
  for (const auto& r : got) {
    CHECK(r.header("webhook-id") == m.id);  // the same id on every try
    CHECK(r.body == m.payload);
    const int64_t ts = parse_ts(r.header("webhook-timestamp"));
    CHECK(r.header("webhook-signature") == sign_v1(key, m.id, ts, m.payload));
  }

  auto attempts = f.attempts(m);  // newest first
  REQUIRE(attempts.size() == 3);
  CHECK(attempts[0].status == DeliveryStatus::kSuccess);
  CHECK(attempts[0].response_status_code == 200);
  CHECK(attempts[0].response == "fine");
  CHECK(attempts[0].timestamp == t0 + 150);
  CHECK(attempts[1].status == DeliveryStatus::kFail);
  CHECK(attempts[1].response_status_code == 500);
  CHECK(attempts[1].response == "broken 2");
  CHECK(attempts[1].timestamp == t0 + 50);
  CHECK(attempts[2].status == DeliveryStatus::kFail);
  CHECK(attempts[2].response_status_code == 500);
  CHECK(attempts[2].response == "broken 1");
  CHECK(attempts[2].timestamp == t0);

  after = f.delivery(d.id);
  CHECK(after.status == DeliveryStatus::kSuccess);
  CHECK(after.attempts == 3);
}

TEST_CASE("a delivery that always fails gets the first try plus one per schedule entry") {
  Fixture f;
  f.rx.on("/down", answer(500, "nope"));
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/down"));
  auto m = f.add_message(R"({"x":1})");
  auto d = f.add_delivery(m, ep);
  const TimeMs t0 = f.clock.now_ms();

  Scheduler sched(*f.db, f.clock, Fixture::options());
  sched.wake();
  int tries = 1;
  for (int64_t wait : {50, 100, 150}) {
    REQUIRE(f.wait_attempts(d, tries++));
    f.advance(sched, wait);
  }
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail));
  CHECK(f.delivery(d.id).attempts == 4);

  f.advance(sched, kPastSchedules);  // no fifth try
  REQUIRE(f.settle(sched));
  CHECK(f.rx.count("/down") == 4);
  auto attempts = f.attempts(m);  // newest first
  REQUIRE(attempts.size() == 4);
  for (const auto& a : attempts) {
    CHECK(a.status == DeliveryStatus::kFail);
    CHECK(a.response_status_code == 500);
  }
  CHECK(attempts[3].timestamp == t0);
  CHECK(attempts[2].timestamp == t0 + 50);
  CHECK(attempts[1].timestamp == t0 + 150);
  CHECK(attempts[0].timestamp == t0 + 300);
  CHECK(f.delivery(d.id).status == DeliveryStatus::kFail);
  CHECK(f.delivery(d.id).attempts == 4);
}

TEST_CASE("a manual resend that fails is not retried") {
  Fixture f;
  f.rx.on("/manual", answer(503, "busy"));
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/manual"));
  auto m = f.add_message(R"({"manual":1})");
  auto d = f.add_delivery(m, ep, DeliveryStatus::kPending, std::nullopt, TriggerType::kManual);

  Scheduler sched(*f.db, f.clock, Fixture::options());
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail));
  f.advance(sched, kPastSchedules);
  REQUIRE(f.settle(sched));

  CHECK(f.rx.count("/manual") == 1);
  auto after = f.delivery(d.id);
  CHECK(after.status == DeliveryStatus::kFail);
  CHECK(after.attempts == 1);
  auto attempts = f.attempts(m);
  REQUIRE(attempts.size() == 1);
  CHECK(attempts[0].trigger == TriggerType::kManual);
  CHECK(attempts[0].response_status_code == 503);
}

TEST_CASE("a delivery to a disabled endpoint fails without a request") {
  Fixture f;
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/disabled"), random_key(), {}, true);
  auto m = f.add_message(R"({"d":1})");
  auto d = f.add_delivery(m, ep);

  Scheduler sched(*f.db, f.clock, Fixture::options());
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail));
  REQUIRE(f.settle(sched));
  CHECK(f.rx.total() == f.rx.count("/canary"));
  CHECK(f.delivery(d.id).attempts == 0);
  CHECK(f.attempts(m).empty());
}

TEST_CASE("a refused connection is an attempt with status 0 and the error text") {
  // A bound socket that does not listen: connecting to it is refused.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t len = sizeof(addr);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const int port = ntohs(addr.sin_port);

  Fixture f;
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/refused";
  auto ep = f.add_endpoint(url);
  auto m = f.add_message(R"({"r":1})");
  auto d = f.add_delivery(m, ep);

  auto opts = Fixture::options();
  opts.retry = RetryPolicy({}, 0);  // one try only
  Scheduler sched(*f.db, f.clock, opts);
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail));
  auto attempts = f.attempts(m);
  REQUIRE(attempts.size() == 1);
  CHECK(attempts[0].response_status_code == 0);
  CHECK(attempts[0].status == DeliveryStatus::kFail);
  CHECK_FALSE(attempts[0].response.empty());
  CHECK(attempts[0].url == url);
  CHECK(f.delivery(d.id).attempts == 1);
}

TEST_CASE("a request that outlives request_timeout_ms is an attempt with status 0") {
  Fixture f;
  f.rx.on("/slow", [&f](int, const httplib::Request&, httplib::Response& res) {
    f.rx.gate.wait_for(1500ms);
    res.status = 200;
    res.set_content("too late", "text/plain");
  });
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/slow"));
  auto m = f.add_message(R"({"t":1})");
  auto d = f.add_delivery(m, ep);

  auto opts = Fixture::options();
  opts.retry = RetryPolicy({}, 0);
  opts.request_timeout_ms = 300;  // curl's timeout: real time
  Scheduler sched(*f.db, f.clock, opts);
  const auto started = SteadyClock::now();
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail));
  CHECK(ms_since(started) < 1400);  // gave up before the handler answered
  auto attempts = f.attempts(m);
  REQUIRE(attempts.size() == 1);
  CHECK(attempts[0].response_status_code == 0);
  CHECK_FALSE(attempts[0].response.empty());
  CHECK(attempts[0].response.find("too late") == std::string::npos);
  CHECK(attempts[0].response_duration_ms >= 250);
  CHECK(attempts[0].response_duration_ms < 1400);
  CHECK(f.rx.count("/slow") == 1);
}

TEST_CASE("after a rotation both keys sign, current key first, until the grace period ends") {
  Fixture f;
  f.rx.start();
  const std::string old_key = random_key();
  const std::string new_key = random_key();
  auto ep = f.add_endpoint(f.rx.url("/rotated"), old_key);
  constexpr int64_t kGraceMs = 10'000;
  f.db->session()->endpoints().rotate_key(ep.id, hmac_key(new_key), kGraceMs, f.clock.now_ms());
  auto m = f.add_message(R"({"rotated":true})");
  auto d = f.add_delivery(m, ep);

  Scheduler sched(*f.db, f.clock, Fixture::options());
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess));
  auto got = f.rx.requests("/rotated");
  REQUIRE(got.size() == 1);
  int64_t ts = parse_ts(got[0].header("webhook-timestamp"));
  auto sigs = split_spaces(got[0].header("webhook-signature"));
  REQUIRE(sigs.size() == 2);
  CHECK(sigs[0] == sign_v1(new_key, m.id, ts, m.payload));
  CHECK(sigs[1] == sign_v1(old_key, m.id, ts, m.payload));
  CHECK(sigs[0] != sigs[1]);

  // Once the grace period is over (and the scheduler's endpoint cache has expired), the old
  // key signs no more.
  f.clock.advance(kGraceMs + TargetCache::kMaxAgeMs);
  auto m2 = f.add_message(R"({"rotated":"later"})");
  auto d2 = f.add_delivery(m2, ep);
  sched.wake();
  REQUIRE(f.wait_status(d2, DeliveryStatus::kSuccess));
  got = f.rx.requests("/rotated");
  REQUIRE(got.size() == 2);
  ts = parse_ts(got[1].header("webhook-timestamp"));
  CHECK(ts == f.clock.now_ms() / 1000);
  CHECK(got[1].header("webhook-signature") == sign_v1(new_key, m2.id, ts, m2.payload));
}

TEST_CASE("a change to an endpoint made by another process is used by the next round") {
  Fixture f;
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/before"));
  Scheduler sched(*f.db, f.clock, Fixture::options());
  auto d1 = f.add_delivery(f.add_message(R"({"n":1})"), ep);
  sched.wake();
  REQUIRE(f.wait_status(d1, DeliveryStatus::kSuccess));  // the endpoint is cached now

  // Another process (another Database on the same store) moves the endpoint, with no
  // notification this process could hear and without the clock moving: the next delivery
  // goes to the new URL all the same.
  auto other = f.store.open();
  Endpoint moved = ep;
  moved.url = f.rx.url("/after");
  REQUIRE(other->session()->endpoints().update(moved));
  auto d2 = f.add_delivery(f.add_message(R"({"n":2})"), ep);
  sched.wake();
  REQUIRE(f.wait_status(d2, DeliveryStatus::kSuccess));
  CHECK(f.rx.count("/before") == 1);
  CHECK(f.rx.count("/after") == 1);

  // Disabled by the other process: the next delivery fails without a request.
  REQUIRE(other->session()->endpoints().disable(ep.id, "by the other process", f.clock.now_ms()));
  auto d3 = f.add_delivery(f.add_message(R"({"n":3})"), ep);
  sched.wake();
  REQUIRE(f.wait_status(d3, DeliveryStatus::kFail));
  CHECK(f.delivery(d3.id).attempts == 0);
  CHECK(f.rx.count("/after") == 1);
}

TEST_CASE("a sending delivery whose lease lapsed is claimed again and delivered") {
  Fixture f;
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/reclaimed"));
  auto held_ep = f.add_endpoint(f.rx.url("/held"));
  auto m = f.add_message(R"({"crashed":true})");
  const TimeMs now = f.clock.now_ms();
  // Claimed by a process that crashed: its lease ran out a second ago.
  auto lapsed = f.add_delivery(m, ep, DeliveryStatus::kSending, now - 1000);
  // Claimed by a live process whose lease still runs for five seconds.
  auto leased = f.add_delivery(m, held_ep, DeliveryStatus::kSending, now + 5000);

  Scheduler sched(*f.db, f.clock, Fixture::options());
  sched.wake();
  REQUIRE(f.wait_status(lapsed, DeliveryStatus::kSuccess));
  f.advance(sched, 4999);
  REQUIRE(f.settle(sched));
  CHECK(f.rx.count("/reclaimed") == 1);
  CHECK(f.delivery(lapsed.id).attempts == 1);
  CHECK(f.rx.count("/held") == 0);
  CHECK(f.delivery(leased.id).status == DeliveryStatus::kSending);
  CHECK(f.delivery(leased.id).attempts == 0);

  // That process never reports back: once its lease lapses, the delivery is this one's.
  f.advance(sched, 1);
  REQUIRE(f.wait_status(leased, DeliveryStatus::kSuccess));
  CHECK(f.rx.count("/held") == 1);
  CHECK(f.delivery(leased.id).attempts == 1);
}

TEST_CASE("stop(drain) waits for the delivery in flight and records it, without spinning") {
  Fixture f;
  f.rx.on("/slow", held(f.rx, 200, "finally"));
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/slow"));
  auto m = f.add_message(R"({"drain":1})");
  auto d = f.add_delivery(m, ep);

  Scheduler sched(*f.db, f.clock, Fixture::options());
  sched.wake();
  REQUIRE(wait_until([&] { return f.rx.entered() == 1; }));
  CHECK(sched.in_flight() == 1);
  // The receiver answers a while after the drain began.
  bool draining = false;
  int64_t cpu_used = -1;
  std::jthread receiver([&] {
    draining = wait_until([&] { return room(sched, 1) == 0; });  // stopping: no room any more
    const int64_t cpu_before = process_cpu_ms();
    std::this_thread::sleep_for(200ms);
    cpu_used = process_cpu_ms() - cpu_before;
    f.rx.gate.release();
  });
  const auto started = SteadyClock::now();
  sched.stop(3000);
  CHECK(ms_since(started) < 2500);  // returned when the work was done, not at the deadline
  receiver.join();
  REQUIRE(draining);
  // Draining is waiting: no scheduler loop spins meanwhile.
  CHECK_MESSAGE(cpu_used < 60, "the process used " << cpu_used << " ms of CPU in 200 ms of drain");

  // Recorded before stop() returned: no waiting here.
  auto attempts = f.attempts(m);
  REQUIRE(attempts.size() == 1);
  CHECK(attempts[0].status == DeliveryStatus::kSuccess);
  CHECK(attempts[0].response == "finally");
  auto after = f.delivery(d.id);
  CHECK(after.status == DeliveryStatus::kSuccess);
  CHECK(after.attempts == 1);
  CHECK(sched.in_flight() == 0);
  CHECK(f.db->queue_listener() == nullptr);  // it no longer listens
  sched.stop(3000);                          // idempotent
}

TEST_CASE("an endpoint deleted while its request is in flight: the round's results are kept") {
  Fixture f;
  f.rx.on("/doomed", held(f.rx, 200, "doomed"));
  f.rx.on("/kept", held(f.rx, 200, "kept"));
  f.rx.start();
  auto doomed = f.add_endpoint(f.rx.url("/doomed"));
  auto kept = f.add_endpoint(f.rx.url("/kept"));
  auto m = f.add_message(R"({"deleted":1})");
  auto d = f.add_delivery(m, doomed);
  auto k = f.add_delivery(m, kept);

  Scheduler sched(*f.db, f.clock, Fixture::options());
  sched.wake();
  REQUIRE(wait_until([&] { return f.rx.entered() == 2; }));
  REQUIRE(f.db->session()->endpoints().remove(f.app.id, doomed.id));
  f.rx.gate.release();  // both answer together: their results are recorded together

  CHECK(f.wait_status(k, DeliveryStatus::kSuccess));
  REQUIRE(f.attempts(kept).size() == 1);
  CHECK(f.attempts(kept)[0].response == "kept");
  CHECK_FALSE(f.db->session()->deliveries().get(d.id));
  CHECK(f.settle(sched));  // and it goes on
  CHECK(f.rx.count("/doomed") == 1);
  CHECK(f.attempts(m).size() == 1);  // the deleted endpoint's attempt is not recorded
  sched.stop(3000);
}

TEST_CASE("stop(0) aborts the delivery in flight back to the queue, not as an attempt") {
  Fixture f;
  f.rx.on("/stuck", [&f](int n, const httplib::Request&, httplib::Response& res) {
    if (n == 1) f.rx.gate.wait_for(kDeadline);
    res.status = 200;
    res.set_content("ok", "text/plain");
  });
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/stuck"));
  auto m = f.add_message(R"({"abort":1})");
  auto d = f.add_delivery(m, ep);

  {
    Scheduler sched(*f.db, f.clock, Fixture::options());
    sched.wake();
    REQUIRE(wait_until([&] { return f.rx.entered() == 1; }));
    const auto started = SteadyClock::now();
    sched.stop(0);
    CHECK(ms_since(started) < 1000);

    auto after = f.delivery(d.id);
    CHECK(after.status == DeliveryStatus::kPending);
    CHECK(after.attempts == 0);
    CHECK(after.next_attempt_at == f.clock.now_ms());  // due again at once
    CHECK(f.attempts(m).empty());
  }
  f.rx.gate.release();

  // The next scheduler picks it up: at least once, nothing lost.
  Scheduler again(*f.db, f.clock, Fixture::options());
  again.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess));
  CHECK(f.delivery(d.id).attempts == 1);
  CHECK(f.attempts(m).size() == 1);
  CHECK(f.rx.count("/stuck") == 2);
}

TEST_CASE("max_in_flight bounds the requests in progress") {
  Fixture f;
  f.rx.on("/busy", held(f.rx, 204));
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/busy"));
  std::vector<Delivery> ds;
  for (int i = 0; i < 30; ++i) {
    auto m = f.add_message(R"({"i":)" + std::to_string(i) + "}");
    ds.push_back(f.add_delivery(m, ep));
  }

  auto opts = Fixture::options();
  opts.max_in_flight = 5;
  Scheduler sched(*f.db, f.clock, opts);
  sched.wake();
  REQUIRE(wait_until([&] { return f.rx.entered() == 5; }));
  CHECK(sched.in_flight() == 5);
  CHECK(room(sched, 5) == 0);  // nor is room promised beyond it
  // Nothing can be awaited here: a sixth request would be a bug.
  std::this_thread::sleep_for(100ms);
  CHECK(f.rx.entered() == 5);

  f.rx.gate.release();
  REQUIRE(wait_until([&] { return f.stats(ep).success == 30; }));
  CHECK(f.rx.count("/busy") == 30);
  CHECK(f.rx.peak() == 5);  // reached, never passed
  for (const auto& d : ds) CHECK(f.delivery(d.id).attempts == 1);
}

TEST_CASE("one message fans out to every endpoint it has a delivery for") {
  Fixture f;
  f.rx.start();
  const std::vector<std::string> paths = {"/one", "/two", "/three"};
  std::vector<std::string> keys;
  std::vector<Endpoint> eps;
  for (const auto& p : paths) {
    keys.push_back(random_key());
    eps.push_back(f.add_endpoint(f.rx.url(p), keys.back()));
  }
  auto m = f.add_message(R"({"fan":"out"})");
  for (const auto& ep : eps) f.add_delivery(m, ep);

  Scheduler sched(*f.db, f.clock, Fixture::options());
  sched.wake();
  const auto all_done = [&] {
    auto ds = f.db->session()->deliveries().for_message(m.id);
    return ds.size() == 3 && std::all_of(ds.begin(), ds.end(), [](const Delivery& x) {
             return x.status == DeliveryStatus::kSuccess;
           });
  };
  REQUIRE(wait_until(all_done));
  REQUIRE(f.settle(sched));

  for (size_t i = 0; i < paths.size(); ++i) {
    CAPTURE(paths[i]);
    auto got = f.rx.requests(paths[i]);
    REQUIRE(got.size() == 1);
    CHECK(got[0].header("webhook-id") == m.id);
    CHECK(got[0].body == m.payload);
    const int64_t ts = parse_ts(got[0].header("webhook-timestamp"));
    CHECK(got[0].header("webhook-signature") == sign_v1(keys[i], m.id, ts, m.payload));
  }
  CHECK(f.rx.total() - f.rx.count("/canary") == 3);
  auto attempts = f.attempts(m);
  REQUIRE(attempts.size() == 3);
  std::set<std::string> endpoint_ids;
  for (const auto& a : attempts) endpoint_ids.insert(a.endpoint_id);
  CHECK(endpoint_ids == std::set<std::string>{eps[0].id, eps[1].id, eps[2].id});
}

TEST_CASE("an endpoint at its concurrency cap holds back neither other endpoints nor the CPU") {
  Fixture f;
  f.rx.on("/capped", held(f.rx, 200));
  f.rx.start();
  auto capped = f.add_endpoint(f.rx.url("/capped"));
  auto healthy = f.add_endpoint(f.rx.url("/healthy"));
  std::vector<Delivery> slow;
  for (int i = 0; i < 6; ++i) {
    auto m = f.add_message(R"({"capped":)" + std::to_string(i) + "}");
    slow.push_back(f.add_delivery(m, capped));
  }

  auto opts = Fixture::options();
  opts.endpoint_concurrency = 2;
  opts.max_in_flight = 50;
  Scheduler sched(*f.db, f.clock, opts);
  sched.wake();
  REQUIRE(wait_until([&] { return f.rx.count("/capped") == 2; }));

  // A healthy endpoint's delivery goes out while the capped one is stuck.
  auto m = f.add_message(R"({"healthy":1})");
  auto fast = f.add_delivery(m, healthy);
  sched.wake();
  REQUIRE(f.wait_status(fast, DeliveryStatus::kSuccess));
  REQUIRE(f.settle(sched, 2));

  // Idle but for the stuck requests: the scheduler must sleep, not spin on the queue.
  const int64_t cpu_before = process_cpu_ms();
  std::this_thread::sleep_for(200ms);
  const int64_t cpu_used = process_cpu_ms() - cpu_before;
  CHECK(f.rx.count("/capped") == 2);  // the cap holds
  CHECK(sched.in_flight() == 2);
  CHECK_MESSAGE(cpu_used < 60, "the process used " << cpu_used << " ms of CPU in 200 ms idle");

  f.rx.gate.release();
  REQUIRE(f.wait_parked_sent(sched, [&] { return f.stats(capped).success == 6; }));
  CHECK(f.rx.count("/capped") == 6);
  CHECK(f.rx.peak("/capped") == 2);
  for (const auto& d : slow) CHECK(f.delivery(d.id).attempts == 1);
}

TEST_CASE("a redirect is a failed attempt and is not followed") {
  Fixture f;
  f.rx.on("/moved", [&f](int, const httplib::Request&, httplib::Response& res) {
    res.set_redirect(f.rx.url("/target"), 302);
  });
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/moved"));
  auto m = f.add_message(R"({"moved":1})");
  auto d = f.add_delivery(m, ep);

  auto opts = Fixture::options();
  opts.retry = RetryPolicy({}, 0);
  Scheduler sched(*f.db, f.clock, opts);
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail));
  auto attempts = f.attempts(m);
  REQUIRE(attempts.size() == 1);
  CHECK(attempts[0].response_status_code == 302);
  CHECK(attempts[0].status == DeliveryStatus::kFail);
  REQUIRE(f.settle(sched));
  CHECK(f.rx.count("/moved") == 1);
  CHECK(f.rx.count("/target") == 0);
}

// DESIGN.md: "410 Gone disables the endpoint at once."
TEST_CASE("410 Gone disables the endpoint at once, without retries") {
  Fixture f;
  f.rx.on("/gone", answer(410, "gone"));
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/gone"));
  auto m = f.add_message(R"({"gone":1})");
  auto d = f.add_delivery(m, ep);

  Scheduler sched(*f.db, f.clock, Fixture::options());
  sched.wake();
  REQUIRE(f.wait_disabled(ep));
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail));
  CHECK(f.delivery(d.id).attempts == 1);
  auto e = f.endpoint(ep);
  REQUIRE(e.disabled_reason);
  CHECK(e.disabled_reason->find("410") != std::string::npos);
  auto attempts = f.attempts(m);
  REQUIRE(attempts.size() == 1);
  CHECK(attempts[0].response_status_code == 410);
  CHECK(attempts[0].status == DeliveryStatus::kFail);

  // Nothing more reaches the endpoint: no retry, and a new delivery fails unsent.
  auto m2 = f.add_message(R"({"gone":2})");
  auto d2 = f.add_delivery(m2, ep);
  sched.wake();
  REQUIRE(f.wait_status(d2, DeliveryStatus::kFail));
  CHECK(f.delivery(d2.id).attempts == 0);
  f.advance(sched, kPastSchedules);
  REQUIRE(f.settle(sched));
  CHECK(f.rx.count("/gone") == 1);
}

// DESIGN.md: "Retry-After on 429/503 is honoured within bounds."
TEST_CASE("Retry-After on 429 and 503 delays the next try") {
  Fixture f;
  for (int code : {429, 503}) {
    f.rx.on("/ra" + std::to_string(code),
            [code](int n, const httplib::Request&, httplib::Response& res) {
              res.status = n == 1 ? code : 200;
              if (n == 1) res.set_header("Retry-After", "1");
            });
  }
  f.rx.start();
  std::vector<Delivery> ds;
  std::vector<Message> ms;
  for (int code : {429, 503}) {
    auto ep = f.add_endpoint(f.rx.url("/ra" + std::to_string(code)));
    ms.push_back(f.add_message(R"({"ra":)" + std::to_string(code) + "}"));
    ds.push_back(f.add_delivery(ms.back(), ep));
  }
  const TimeMs t0 = f.clock.now_ms();

  Scheduler sched(*f.db, f.clock, Fixture::options());
  sched.wake();
  for (const auto& d : ds) {
    REQUIRE(f.wait_attempts(d, 1));
    CHECK(f.delivery(d.id).next_attempt_at == t0 + 1000);  // not the 50 ms schedule
  }
  f.advance(sched, 999);
  REQUIRE(f.settle(sched));
  CHECK(f.rx.count("/ra429") == 1);
  CHECK(f.rx.count("/ra503") == 1);
  f.advance(sched, 1);
  for (size_t i = 0; i < ds.size(); ++i) {
    REQUIRE(f.wait_status(ds[i], DeliveryStatus::kSuccess));
    auto attempts = f.attempts(ms[i]);
    REQUIRE(attempts.size() == 2);
    CHECK(attempts[0].timestamp == t0 + 1000);
    CHECK(f.delivery(ds[i].id).attempts == 2);
  }
}

// ---------------------------------------------------------------------------------------------
// The hand-over (QueueListener): deliveries written claimed and handed over are sent once, from
// memory; the room promised for them is bounded by max_in_flight and always comes back.

TEST_CASE("handed-over deliveries are sent once and their room comes back") {
  Fixture f;
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/fresh"));
  auto opts = Fixture::options();
  opts.max_in_flight = 8;
  Scheduler sched(*f.db, f.clock, opts);
  CHECK(f.db->queue_listener() == &sched);
  CHECK(sched.lease_ms() == opts.lease_ms);

  CHECK(sched.reserve(5) == 5);
  CHECK(sched.reserve(5) == 3);  // only 8 in all
  CHECK(sched.reserve(1) == 0);
  CHECK(sched.reserve(0) == 0);
  sched.release(3);  // the second writer's transaction failed
  CHECK(room(sched, 8) == 3);

  auto m = f.add_message(R"({"fresh":true})");
  auto handed = handed_rows(f, m, ep, 5, sched);
  sched.hand_over(handed, std::make_shared<const std::string>(m.payload));
  for (const auto& d : handed) REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess));
  REQUIRE(f.settle(sched));
  CHECK(f.rx.count("/fresh") == 5);
  for (const auto& d : handed) CHECK(f.delivery(d.id).attempts == 1);
  for (const auto& r : f.rx.requests("/fresh")) CHECK(r.body == m.payload);
  // All the room is free again once they are recorded.
  CHECK(sched.in_flight() == 0);
  CHECK(room(sched, 8) == 8);
  sched.hand_over({}, nullptr);  // nothing to hand over: a no-op
  CHECK(room(sched, 8) == 8);
}

TEST_CASE("deliveries in flight take room from the hand-over; stopping promises none") {
  Fixture f;
  f.rx.on("/slow", held(f.rx, 200));
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/slow"));
  auto fresh_ep = f.add_endpoint(f.rx.url("/fresh"));
  auto d = f.add_delivery(f.add_message(R"({"slow":1})"), ep);
  auto opts = Fixture::options();
  opts.max_in_flight = 8;
  Scheduler sched(*f.db, f.clock, opts);
  sched.wake();
  REQUIRE(wait_until([&] { return f.rx.entered() == 1; }));
  CHECK(room(sched, 8) == 7);

  // A writer was promised room for three, then the scheduler began to stop (draining the one
  // in flight) before the writer's transaction committed and it handed them over.
  REQUIRE(sched.reserve(3) == 3);
  auto m = f.add_message(R"({"fresh":"late"})");
  auto handed = handed_rows(f, m, fresh_ep, 3, sched);
  std::jthread stopper([&] { sched.stop(std::chrono::milliseconds(kDeadline).count()); });
  REQUIRE(wait_until([&] { return room(sched, 1) == 0; }));  // stopping: no room any more
  sched.hand_over(handed, std::make_shared<const std::string>(m.payload));
  f.rx.gate.release();
  stopper.join();

  // Never sent: back in the queue, due at once, untried.
  CHECK(f.rx.count("/fresh") == 0);
  for (const auto& h : handed) {
    auto after = f.delivery(h.id);
    CHECK(after.status == DeliveryStatus::kPending);
    CHECK(after.attempts == 0);
    CHECK(after.next_attempt_at == f.clock.now_ms());
  }
  CHECK(f.delivery(d.id).status == DeliveryStatus::kSuccess);  // the drained one is recorded
  CHECK(f.attempts(m).empty());

  // The next scheduler sends them.
  Scheduler again(*f.db, f.clock, opts);
  for (const auto& h : handed) REQUIRE(f.wait_status(h, DeliveryStatus::kSuccess));
  CHECK(f.rx.count("/fresh") == 3);
  for (const auto& h : handed) CHECK(f.delivery(h.id).attempts == 1);
}

TEST_CASE("the room promised for handed-over deliveries comes back when their round fails" *
          doctest::test_suite("sqlite")) {
  REQUIRE_MESSAGE(store_kind() == StoreKind::kSqlite,
                  "the sqlite suite runs on SQLite only (exclude it with -tse=sqlite)");
  Fixture f;
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/fresh"));
  auto opts = Fixture::options();
  opts.max_in_flight = 8;
  opts.lease_ms = 5000;
  Scheduler sched(*f.db, f.clock, opts);
  REQUIRE(sched.reserve(5) == 5);
  auto m = f.add_message(R"({"fresh":"doomed"})");
  auto handed = handed_rows(f, m, ep, 5, sched);

  // The queue's table is gone from under the scheduler: the round that takes the hand-over
  // throws (claims read that table) and rolls back.
  sqlite::Connection raw(f.store.location());
  raw.exec("ALTER TABLE deliveries RENAME TO deliveries_away");
  sched.hand_over(handed, std::make_shared<const std::string>(m.payload));
  REQUIRE(wait_until([&] { return room(sched, 8) == 8; }));
  // Room came back without a request: the round failed before sending anything (had it sent
  // them, the room would have come back only after the receiver got them).
  CHECK(f.rx.total() == 0);
  CHECK(sched.in_flight() == 0);

  // Leases make the failure safe: with the table back, once their lease lapses they are
  // claimed again and each is sent once.
  raw.exec("ALTER TABLE deliveries_away RENAME TO deliveries");
  f.advance(sched, sched.lease_ms());
  for (const auto& d : handed) REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess));
  REQUIRE(f.settle(sched));
  CHECK(f.rx.count("/fresh") == 5);
  for (const auto& d : handed) CHECK(f.delivery(d.id).attempts == 1);
  CHECK(room(sched, 8) == 8);
}

TEST_CASE("the scheduler hears of deliveries created while it runs, once they commit") {
  Fixture f;
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/published"));
  auto opts = Fixture::options();
  opts.max_in_flight = 8;
  Scheduler sched(*f.db, f.clock, opts);
  REQUIRE(f.db->queue_listener() == &sched);
  Enqueuer enqueuer(f.clock);
  const auto message = [&](const std::string& payload) {
    Message m;
    m.id = new_id(kMessagePrefix, f.clock.now_ms());
    m.app_id = f.app.id;
    m.event_type = "test.event";
    m.payload = payload;
    m.timestamp = f.clock.now_ms();
    return m;
  };

  // Rolled back: nothing is sent, and any room the writer was promised comes back.
  {
    auto s = f.db->begin();
    CHECK(enqueuer.publish(*s, message(R"({"published":"never"})")) == 1);
    s->rollback();
  }
  CHECK(room(sched, 8) == 8);

  // Committed: sent without anyone waking the scheduler, with the time standing still.
  const Message m = message(R"({"published":true})");
  {
    auto s = f.db->begin();
    REQUIRE(enqueuer.publish(*s, m) == 1);
    s->commit();
  }
  auto ds = f.db->session()->deliveries().for_message(m.id);
  REQUIRE(ds.size() == 1);
  REQUIRE(f.wait_status(ds[0], DeliveryStatus::kSuccess));
  REQUIRE(f.settle(sched));
  auto got = f.rx.requests("/published");
  REQUIRE(got.size() == 1);
  CHECK(got[0].body == m.payload);
  CHECK(f.delivery(ds[0].id).attempts == 1);
  CHECK(room(sched, 8) == 8);

  sched.stop(0);
  CHECK(f.db->queue_listener() == nullptr);
}

// Forwards to the scheduler and counts what the store's writers asked of it; puts the
// scheduler back as the database's listener when it goes.
class CountingListener final : public QueueListener {
 public:
  CountingListener(Database& db, Scheduler& sched) : db_(db), sched_(sched) {
    db_.set_queue_listener(this);
  }
  ~CountingListener() override { db_.set_queue_listener(&sched_); }
  CountingListener(const CountingListener&) = delete;
  CountingListener& operator=(const CountingListener&) = delete;

  void wake() override { sched_.wake(); }
  int reserve(int n) override {
    const int granted = sched_.reserve(n);
    granted_ += granted;
    return granted;
  }
  void release(int n) override {
    released_ += n;
    sched_.release(n);
  }
  void hand_over(std::vector<Delivery> deliveries,
                 std::shared_ptr<const std::string> payload) override {
    handed_ += static_cast<int>(deliveries.size());
    sched_.hand_over(std::move(deliveries), std::move(payload));
  }
  int64_t lease_ms() const override { return sched_.lease_ms(); }

  int granted() const { return granted_; }
  int released() const { return released_; }
  int handed() const { return handed_; }

 private:
  Database& db_;
  Scheduler& sched_;
  std::atomic<int> granted_{0}, released_{0}, handed_{0};
};

// The path a published message takes, from the HTTP request on: on a store whose queue this
// process owns (SQLite), the API's writes are handed over while the scheduler has room and
// queued beyond it; on a shared store (PostgreSQL) every delivery is queued and claimed.
TEST_CASE("messages published over the API are handed over while there is room, queued beyond") {
  Fixture f;
  f.rx.on("/api", held(f.rx, 200));
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/api"));
  auto opts = Fixture::options();
  opts.max_in_flight = 3;
  Scheduler sched(*f.db, f.clock, opts);
  CountingListener counting(*f.db, sched);
  const std::string admin = "sk_admin_scheduler_test";
  ensure_admin_token(*f.db, f.clock, admin);
  ApiServer api(*f.db, f.clock, ApiOptions{});
  const int port = api.bind("127.0.0.1", 0);
  REQUIRE(port > 0);
  std::jthread serving([&] { api.listen(); });
  httplib::Client client("127.0.0.1", port);
  client.set_bearer_token_auth(admin);

  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    const std::string body =
        nlohmann::json{{"eventType", "test.event"}, {"payload", {{"n", i}}}}.dump();
    auto res = client.Post("/api/v1/app/" + f.app.id + "/msg", body, "application/json");
    REQUIRE(res);
    REQUIRE_MESSAGE(res->status == 202, res->body);
    ids.push_back(nlohmann::json::parse(res->body)["id"]);
  }
  // Three are at the receiver, held; the other two wait in the queue.
  REQUIRE(wait_until([&] { return f.rx.entered() == 3; }));
  CHECK(sched.in_flight() == 3);
  CHECK(room(sched, 3) == 0);
  if (f.db->shared()) {
    CHECK(counting.granted() == 0);  // another process may claim them: never handed over
    CHECK(counting.handed() == 0);
  } else {
    CHECK(counting.granted() == 3);
    CHECK(counting.handed() == 3);
  }
  CHECK(counting.released() == 0);

  f.rx.gate.release();
  std::vector<Delivery> all;
  for (const auto& id : ids) {
    auto ds = f.db->session()->deliveries().for_message(id);
    REQUIRE(ds.size() == 1);
    all.push_back(ds[0]);
  }
  for (const auto& d : all) REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess));
  REQUIRE(f.settle(sched));
  CHECK(f.rx.count("/api") == 5);
  for (const auto& d : all) CHECK(f.delivery(d.id).attempts == 1);
  std::set<std::string> bodies;
  for (const auto& r : f.rx.requests("/api")) bodies.insert(r.body);
  CHECK(bodies.size() == 5);  // each message once
  CHECK(room(sched, 3) == 3);
  api.stop();
}

// On a shared store an endpoint's load is read under its lock each round. A request that ends
// after the round took its results but before that read is still leased in the store, so the
// read counts it in flight: its slot must stay counted free, or a parked endpoint whose load is
// not read again (nothing of it claimed) waits for a reread that no round makes.
TEST_CASE("shared limits: a request that ends while a round records others keeps its slot free") {
  Fixture f;
  if (!f.db->shared()) return;  // LocalLimits counts in memory only (the test of it is above)
  auto ep = f.add_endpoint(f.rx.url("/"));
  for (int i = 0; i < 4; ++i) f.add_delivery(f.add_message(R"({"n":1})"), ep);
  const TimeMs now = f.clock.now_ms();
  SharedLimits limits(4);
  auto s = f.db->session();

  s->begin();  // the round that claims and starts all four
  auto got = s->queue().claim(now, 60'000, 4);
  REQUIRE(got.size() == 4);
  limits.begin_round(*s, {ep.id}, now);
  for (int i = 0; i < 4; ++i) CHECK(limits.admit(ep.id, std::nullopt, now));
  CHECK_FALSE(limits.admit(ep.id, std::nullopt, now));
  limits.end_round(*s);
  s->commit();
  for (int i = 0; i < 4; ++i) limits.started(ep.id);
  CHECK(limits.room(ep.id, now) == 0);
  CHECK(limits.saturated(ep.id));

  limits.finished(ep.id);  // request 0 ends
  CHECK(limits.room(ep.id, now) == 1);

  s->begin();  // a round records request 0; request 1 ends before it reads the load
  limits.recorded(ep.id);
  s->queue().complete({{got[0].id, DeliveryStatus::kSuccess, 1, std::nullopt, got[0].claim}}, now);
  limits.finished(ep.id);
  limits.begin_round(*s, {ep.id}, now);  // three leases live: 1 (ended), 2 and 3
  limits.end_round(*s);
  s->commit();
  CHECK(limits.room(ep.id, now) == 2);

  s->begin();  // the next round records request 1 and reads nothing of the endpoint
  limits.recorded(ep.id);
  s->queue().complete({{got[1].id, DeliveryStatus::kSuccess, 1, std::nullopt, got[1].claim}}, now);
  s->commit();
  CHECK(limits.room(ep.id, now) == 2);

  s->begin();  // nor does a read after it count anything twice
  limits.begin_round(*s, {ep.id}, now);
  limits.end_round(*s);
  s->commit();
  CHECK(limits.room(ep.id, now) == 2);
}

// Background tasks (scheduler/task_runner.h): a runner of their own, no Scheduler; the clock
// only moves when a test moves it.
TEST_SUITE("tasks") {
  struct TaskWorld {
    TestStore store;
    std::unique_ptr<Database> db = store.open();
    ManualClock clock{clock_start()};
    std::unique_ptr<Session> s = db->session();
    Application app = add_app(*s, clock.now_ms());
    Endpoint ep =
        add_endpoint(*s, app.id, "https://example.com/hook", random_key(), clock.now_ms());

    std::optional<BackgroundTask> task(const std::string& id) { return s->tasks().get(id); }
    // Waits for the runner's thread (never for clock time) to end task `id`.
    BackgroundTask ended(const std::string& id) {
      CHECK(wait_until([&] { return task(id)->status != TaskStatus::kRunning; }));
      return *task(id);
    }
    // Failed deliveries to `ep`, made now.
    std::vector<Delivery> failed(int n) {
      std::vector<Delivery> out;
      for (int i = 0; i < n; ++i) {
        const auto m =
            add_message(*s, app.id, R"({"n":)" + std::to_string(i) + "}", clock.now_ms());
        out.push_back(add_delivery(*s, m, ep.id, clock.now_ms(), DeliveryStatus::kFail));
      }
      return out;
    }
  };

  TEST_CASE(
      "the runner steps a task to its end in bounded steps, each committed with its progress") {
    TaskWorld w;
    const TimeMs t0 = w.clock.now_ms();
    const auto ds = w.failed(5);
    auto t = recover_task(w.ep, t0 - 1000, t0 + 1, t0);
    w.s->tasks().insert(t);
    {
      // One step does at most `batch` rows' work and says how far it got.
      Enqueuer enqueuer(w.clock);
      BackgroundTask stepped = t;
      w.s->begin();
      step_task(*w.s, enqueuer, stepped, t0, 2);
      w.s->rollback();
      CHECK(stepped.status == TaskStatus::kRunning);
      CHECK(nlohmann::json::parse(stepped.data_json) == nlohmann::json{{"messagesSent", 2}});
      CHECK(nlohmann::json::parse(stepped.state_json)["cursor"] == ds[1].id);
    }
    TaskRunner::Options o;
    o.batch = 2;
    TaskRunner runner(*w.db, w.clock, o);
    runner.wake();
    const auto done = w.ended(t.id);
    CHECK(done.status == TaskStatus::kFinished);
    CHECK(nlohmann::json::parse(done.data_json) == nlohmann::json{{"messagesSent", 5}});
    // Three steps of at most two: the last one's watermark is the last delivery.
    CHECK(nlohmann::json::parse(done.state_json)["cursor"] == ds.back().id);
    for (const auto& d : ds) {
      const auto got = w.s->deliveries().get(d.id);
      CHECK(got->status == DeliveryStatus::kPending);
      CHECK(got->trigger == TriggerType::kManual);
    }
  }

  TEST_CASE("a task leased elsewhere is left alone until the lease lapses, then taken over") {
    TaskWorld w;
    const TimeMs t0 = w.clock.now_ms();
    w.failed(1);
    auto held = recover_task(w.ep, t0 - 1000, t0 + 1, t0);
    w.s->tasks().insert(held);
    // Another process claimed it a moment ago and is (for all anyone knows) stepping it.
    w.s->begin();
    REQUIRE(w.s->tasks().claim(t0, 10'000, 77));
    w.s->commit();
    TaskRunner::Options o;
    o.lease_ms = 10'000;
    TaskRunner runner(*w.db, w.clock, o);
    // A later task is run meanwhile: the runner has looked, and passed the held one by.
    auto other = event_type_aggregate_task(t0);
    w.s->tasks().insert(other);
    runner.wake();
    CHECK(w.ended(other.id).status == TaskStatus::kFinished);
    CHECK(w.task(held.id)->status == TaskStatus::kRunning);

    w.clock.advance(10'000);  // the lease lapses: the process that held it is gone
    runner.wake();
    const auto done = w.ended(held.id);
    CHECK(done.status == TaskStatus::kFinished);
    CHECK(nlohmann::json::parse(done.data_json) == nlohmann::json{{"messagesSent", 1}});
    // The old holder's next step finds the task is no longer its own.
    w.s->begin();
    CHECK_FALSE(w.s->tasks().hold(held.id, 77, w.clock.now_ms() + 10'000));
    w.s->rollback();
  }

  TEST_CASE("a task that cannot go on ends failed, saying why") {
    TaskWorld w;
    const TimeMs t0 = w.clock.now_ms();
    auto t = replay_missing_task(w.ep, t0 - 1000, t0 + 1, t0);
    w.s->tasks().insert(t);
    w.s->endpoints().remove(w.app.id, w.ep.id);
    TaskRunner runner(*w.db, w.clock, TaskRunner::Options{});
    runner.wake();
    const auto done = w.ended(t.id);
    CHECK(done.status == TaskStatus::kFailed);
    CHECK(nlohmann::json::parse(done.data_json)["error"] == "the endpoint was deleted");
  }

  TEST_CASE("the runner looks for tasks when its poll interval has passed on the clock") {
    TaskWorld w;
    TaskRunner::Options o;
    o.poll_ms = 60'000;
    TaskRunner runner(*w.db, w.clock, o);
    // Made behind the runner's back (by another process): no wake.
    auto t = event_type_aggregate_task(w.clock.now_ms());
    w.s->tasks().insert(t);
    w.clock.advance(60'000);
    CHECK(w.ended(t.id).status == TaskStatus::kFinished);
  }
}
