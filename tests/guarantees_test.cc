// Integration tests of the Scheduler's delivery guarantees: 410 Gone, Retry-After, the endpoint
// health window, throttleRate, expired payloads, retention and operational webhooks. A real
// SQLite file, the system clock, the real curl Sender and a cpp-httplib receiver on loopback;
// the fixture follows tests/scheduler_test.cc's. Conditions are awaited by polling with a
// deadline; only the "nothing more happens" checks wait a fixed while.

#include <doctest/doctest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/encoding.h"
#include "core/ids.h"
#include "core/retry.h"
#include "core/signing.h"
#include "core/time_format.h"
#include "core/types.h"
#include "db/app_store.h"
#include "db/attempt_store.h"
#include "db/delivery_store.h"
#include "db/endpoint_store.h"
#include "db/message_store.h"
#include "db/pool.h"
#include "db/sqlite.h"
#include "scheduler/operator.h"
#include "scheduler/scheduler.h"

using namespace herald;
using namespace std::chrono_literals;

namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kDeadline = 5s;  // generous: a broken scheduler fails the test, never hangs it

TimeMs wall_now() {
  return SystemClock().now_ms();
}

int64_t ms_since(SteadyClock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count();
}

// Polls `pred` every 10 ms until it holds or `limit` passes; returns its last value.
template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit = kDeadline) {
  const auto deadline = SteadyClock::now() + limit;
  while (SteadyClock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("herald_guarantees_test_" + std::to_string(rd()) + "_" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// One request as the receiver saw it.
struct Received {
  std::string path;
  httplib::Headers headers;
  std::string body;
  TimeMs at = 0;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// A loopback webhook receiver. Every POST is recorded; its answer comes from the responder
// registered for its path (default: 200 "ok"). Register responders before start().
class Receiver {
 public:
  // `n` is the 1-based number of this request among those to the same path.
  using Responder = std::function<void(int n, const httplib::Request&, httplib::Response&)>;

  Receiver() {
    svr_.new_task_queue = [] { return new httplib::ThreadPool(32); };
    svr_.set_tcp_nodelay(true);
    svr_.set_keep_alive_timeout(1);
    svr_.Post(R"(/.*)",
              [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); });
  }
  ~Receiver() {
    svr_.stop();
    if (thread_.joinable()) thread_.join();
  }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  void on(const std::string& path, Responder r) { responders_[path] = std::move(r); }

  void start() {
    port_ = svr_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
    REQUIRE(wait_until([this] { return svr_.is_running(); }));
  }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  std::vector<Received> requests(const std::string& path) {
    std::lock_guard lock(mu_);
    std::vector<Received> out;
    for (const auto& r : received_) {
      if (r.path == path) out.push_back(r);
    }
    return out;
  }
  size_t count(const std::string& path) { return requests(path).size(); }

 private:
  void handle(const httplib::Request& req, httplib::Response& res) {
    int n = 0;
    {
      std::lock_guard lock(mu_);
      received_.push_back(Received{req.path, req.headers, req.body, wall_now()});
      n = ++per_path_[req.path];
    }
    auto it = responders_.find(req.path);  // read-only once started
    if (it != responders_.end()) {
      it->second(n, req, res);
    } else {
      res.status = 200;
      res.set_content("ok", "text/plain");
    }
  }

  httplib::Server svr_;
  std::thread thread_;
  int port_ = -1;
  std::map<std::string, Responder> responders_;
  std::mutex mu_;
  std::vector<Received> received_;       // GUARDED_BY(mu_)
  std::map<std::string, int> per_path_;  // GUARDED_BY(mu_)
};

Receiver::Responder answer(int status, std::string body = "") {
  return [status, body](int, const httplib::Request&, httplib::Response& res) {
    res.status = status;
    res.set_content(body, "text/plain");
  };
}

// Answers `first` with a Retry-After header to the first request, 200 to the rest.
Receiver::Responder retry_after_once(int first, std::string retry_after) {
  return [first, retry_after](int n, const httplib::Request&, httplib::Response& res) {
    res.status = n == 1 ? first : 200;
    if (n == 1) res.set_header("Retry-After", retry_after);
  };
}

std::string random_key() {
  return random_bytes(32);
}

// An id with `prefix` made at `t`, the `n`th (n >= 1) of that millisecond. new_id() can't make
// it: it never hands out an id sorting before one it made earlier in this process.
std::string id_at(std::string_view prefix, TimeMs t, int n) {
  static constexpr std::string_view kDigits =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string id = id_lower_bound(prefix, t);
  int carry = n;
  for (size_t i = id.size(); carry > 0 && i-- > prefix.size() + 1;) {
    const int v = static_cast<int>(kDigits.find(id[i])) + carry;
    id[i] = kDigits[static_cast<size_t>(v % 62)];
    carry = v / 62;
  }
  REQUIRE(is_id_with_prefix(id, prefix));
  REQUIRE(id >= id_lower_bound(prefix, t));
  REQUIRE(id < id_lower_bound(prefix, t + 1));
  return id;
}

// A database with one application in it, a receiver, and helpers to seed the queue.
struct Fixture {
  TempDir dir;
  Database db{dir.file("herald.db"), 4};
  SystemClock clock;
  Receiver rx;
  Application app;

  Fixture() {
    const TimeMs now = wall_now();
    app.id = new_id(kAppPrefix, now);
    app.name = "guarantees test";
    app.created_at = app.updated_at = now;
    auto c = db.acquire();
    AppStore(*c).insert(app);
  }

  // A short schedule (50, 100, 150 ms, no jitter) and a fast idle poll.
  static Scheduler::Options options() {
    Scheduler::Options o;
    o.retry = RetryPolicy({50, 100, 150}, 0);
    o.idle_poll_ms = 50;
    o.request_timeout_ms = 3000;
    o.connect_timeout_ms = 2000;
    return o;
  }

  Endpoint add_endpoint(const std::string& url, std::optional<int> throttle_rate = std::nullopt) {
    const TimeMs now = wall_now();
    Endpoint ep;
    ep.id = new_id(kEndpointPrefix, now);
    ep.app_id = app.id;
    ep.url = url;
    ep.throttle_rate = throttle_rate;
    ep.created_at = ep.updated_at = now;
    auto c = db.acquire();
    EndpointStore(*c).insert(ep, random_key());
    return ep;
  }

  Message add_message(const std::string& payload,
                      std::optional<std::string> event_id = std::nullopt) {
    const TimeMs now = wall_now();
    Message m;
    m.id = new_id(kMessagePrefix, now);
    m.app_id = app.id;
    m.event_id = std::move(event_id);
    m.event_type = "test.event";
    m.payload = payload;
    m.timestamp = now;
    auto c = db.acquire();
    MessageStore(*c).insert(m);
    return m;
  }

  Delivery add_delivery(const Message& m, const Endpoint& ep,
                        std::optional<TimeMs> due = std::nullopt) {
    const TimeMs now = wall_now();
    Delivery d;
    d.id = new_id(kDeliveryPrefix, now);
    d.app_id = app.id;
    d.msg_id = m.id;
    d.endpoint_id = ep.id;
    d.next_attempt_at = due.value_or(now);
    d.created_at = d.updated_at = now;
    auto c = db.acquire();
    DeliveryStore(*c).insert(d);
    return d;
  }

  Delivery delivery(const std::string& id) {
    auto c = db.acquire();
    auto d = DeliveryStore(*c).get(id);
    REQUIRE(d);
    return *d;
  }

  Endpoint endpoint(const Endpoint& ep) {
    auto c = db.acquire();
    auto e = EndpointStore(*c).get(ep.app_id, ep.id);
    REQUIRE(e);
    return *e;
  }

  // Newest first.
  std::vector<Attempt> attempts(const Message& m) {
    auto c = db.acquire();
    ListParams p;
    p.limit = 250;
    return AttemptStore(*c).list_by_message(app.id, m.id, p, {}).items;
  }

  bool wait_status(const Delivery& d, DeliveryStatus s,
                   std::chrono::milliseconds limit = kDeadline) {
    return wait_until([&] { return delivery(d.id).status == s; }, limit);
  }

  bool wait_disabled(const Endpoint& ep, std::chrono::milliseconds limit = kDeadline) {
    return wait_until([&] { return endpoint(ep).disabled; }, limit);
  }

  int64_t count(const std::string& sql) {
    auto c = db.acquire();
    auto st = c->prepare(sql);
    REQUIRE(st.step());
    return st.get_int(0);
  }
};

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
    ops = ensure_operator_channel(db, clock, rx.url("/ops"), ops_key);
  }

  Scheduler::Options options() const {
    auto o = Fixture::options();
    o.operator_channel = ops;
    return o;
  }

  // The operational webhooks received so far, in arrival order, each checked to be signed
  // with the operator key and to be a message of the operator app.
  std::vector<OperatorEvent> events() {
    std::vector<OperatorEvent> out;
    for (const auto& r : rx.requests("/ops")) {
      const std::string id = r.header("webhook-id");
      const std::string ts = r.header("webhook-timestamp");
      CHECK_FALSE(ts.empty());
      CHECK(r.header("webhook-signature") == sign_v1(ops_key, id, std::stoll(ts), r.body));
      {
        auto c = db.acquire();
        CHECK(MessageStore(*c).get(ops.app_id, id).has_value());
      }
      auto body = nlohmann::json::parse(r.body);
      REQUIRE(body.is_object());
      CHECK(body.contains("timestamp"));
      out.push_back(OperatorEvent{body.value("type", ""), body.value("data", nlohmann::json()), r});
    }
    return out;
  }

  std::vector<std::string> event_types() {
    std::vector<std::string> out;
    for (const auto& e : events()) out.push_back(e.type);
    return out;
  }

  int64_t operator_messages() {
    return count("SELECT count(*) FROM messages WHERE app_id = '" + ops.app_id + "'");
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

  auto opts = Fixture::options();
  opts.max_retry_after_ms = 300;
  Scheduler sched(f.db, f.clock, opts);
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess, 3000ms));
  auto got = f.rx.requests("/capped");
  REQUIRE(got.size() == 2);
  const TimeMs gap = got[1].at - got[0].at;
  CHECK(gap >= 250);                      // the floor, capped, not the 50 ms schedule
  CHECK(gap < 1500);                      // not an hour
  CHECK(f.delivery(d.id).attempts == 2);  // waiting costs no attempt
}

// Scheduler::record() multiplies Retry-After seconds by 1000 before capping: a value past
// INT64_MAX / 1000 (the sender turns an out-of-range one into INT64_MAX) overflows (undefined
// behaviour; in practice a negative wait), and the retry comes on the 50 ms schedule.
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

  auto opts = Fixture::options();
  opts.max_retry_after_ms = 300;
  Scheduler sched(f.db, f.clock, opts);
  sched.wake();
  for (const auto& d : ds) REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess, 3000ms));
  for (const std::string path : {"/huge", "/big"}) {
    CAPTURE(path);
    auto got = f.rx.requests(path);
    REQUIRE(got.size() == 2);
    CHECK(got[1].at - got[0].at >= 250);
  }
}

TEST_CASE("Retry-After on a status other than 429 or 503 is ignored") {
  Fixture f;
  f.rx.on("/err", retry_after_once(500, "2"));
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/err"));
  auto m = f.add_message(R"({"ra":500})");
  auto d = f.add_delivery(m, ep);

  Scheduler sched(f.db, f.clock, Fixture::options());
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess, 3000ms));
  auto got = f.rx.requests("/err");
  REQUIRE(got.size() == 2);
  CHECK(got[1].at - got[0].at < 1000);  // the 50 ms schedule, not 2 s
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
  // Queued for later; by then the endpoint is disabled.
  auto later = f.add_delivery(f.add_message(R"({"health":2})"), ep, wall_now() + 700);

  auto opts = Fixture::options();
  opts.retry = RetryPolicy(std::vector<int64_t>(10, 100), 0);  // 11 tries over ~1 s
  opts.disable_after_ms = 300;
  Scheduler sched(f.db, f.clock, opts);
  sched.wake();
  REQUIRE(f.wait_disabled(ep, 3000ms));
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail, 1000ms));
  const size_t sent = f.rx.count("/down");
  CHECK(sent >= 3);  // 0, 100, 200 ms: not yet 300 ms failing
  CHECK(sent <= 6);  // far short of the 11 the schedule allows

  auto after = f.endpoint(ep);
  REQUIRE(after.disabled_reason);
  CHECK(after.disabled_reason->find("failing") != std::string::npos);
  auto attempts = f.attempts(m);
  REQUIRE(attempts.size() == sent);
  CHECK(after.failing_since == std::optional<TimeMs>(attempts.back().timestamp));  // the first
  CHECK(f.delivery(d.id).attempts == static_cast<int>(sent));

  // Nothing more goes out: no retry, and the later delivery fails unsent.
  REQUIRE(f.wait_status(later, DeliveryStatus::kFail, 2000ms));
  CHECK(f.delivery(later.id).attempts == 0);
  std::this_thread::sleep_for(200ms);
  CHECK(f.rx.count("/down") == sent);
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

  auto opts = Fixture::options();
  opts.retry = RetryPolicy(std::vector<int64_t>(10, 100), 0);
  opts.disable_after_ms = 400;
  Scheduler sched(f.db, f.clock, opts);
  sched.wake();
  REQUIRE(f.wait_status(first, DeliveryStatus::kSuccess, 3000ms));
  auto healthy = f.endpoint(ep);
  CHECK_FALSE(healthy.disabled);
  CHECK_FALSE(healthy.failing_since.has_value());
  REQUIRE(f.rx.count("/flap") == 4);

  // Well past 400 ms after the first failure: only a reset window lets the next delivery
  // fail a few times before the endpoint is disabled.
  std::this_thread::sleep_for(200ms);
  const TimeMs second_at = wall_now();
  auto m2 = f.add_message(R"({"flap":2})");
  auto second = f.add_delivery(m2, ep);
  sched.wake();
  REQUIRE(f.wait_disabled(ep, 3000ms));
  REQUIRE(f.wait_status(second, DeliveryStatus::kFail, 1000ms));
  const size_t failures = f.rx.count("/flap") - 4;
  CHECK(failures >= 4);  // 0..400 ms of failing: 5 tries on a 100 ms schedule
  CHECK(failures <= 7);
  auto after = f.endpoint(ep);
  auto attempts = f.attempts(m2);
  REQUIRE_FALSE(attempts.empty());
  CHECK(after.failing_since == std::optional<TimeMs>(attempts.back().timestamp));
  CHECK(*after.failing_since >= second_at);
}

// ---------------------------------------------------------------------------------------------
// throttleRate

TEST_CASE("throttleRate spaces an endpoint's deliveries; others go at full speed") {
  Fixture f;
  f.rx.start();
  auto slow = f.add_endpoint(f.rx.url("/throttled"), 5);
  auto fast = f.add_endpoint(f.rx.url("/free"));
  std::vector<Delivery> throttled;
  std::vector<Delivery> free;
  for (int i = 0; i < 12; ++i) {
    auto m = f.add_message(R"({"i":)" + std::to_string(i) + "}");
    throttled.push_back(f.add_delivery(m, slow));
    free.push_back(f.add_delivery(m, fast));
  }
  const auto all_sent = [&](const Endpoint& ep) {
    return [&f, &ep] {
      auto c = f.db.acquire();
      return DeliveryStore(*c).stats(ep.id).success == 12;
    };
  };

  auto opts = Fixture::options();
  // Below the receiver's listen backlog (cpp-httplib's is 5): a burst past it stalls connects
  // for a second of SYN retransmission, whoever sends it.
  opts.max_in_flight = 4;
  const auto started = SteadyClock::now();
  Scheduler sched(f.db, f.clock, opts);
  sched.wake();
  REQUIRE(wait_until(all_sent(fast), 3000ms));
  CHECK(ms_since(started) < 500);
  REQUIRE(wait_until(all_sent(slow), 5000ms));

  auto got = f.rx.requests("/throttled");
  REQUIRE(got.size() == 12);
  // 5 at once (a second's worth), then one every 200 ms: 1.4 s in all.
  const TimeMs span = got.back().at - got.front().at;
  CHECK(span >= 1000);
  CHECK(span < 3000);
  size_t most_in_a_second = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    size_t n = 0;
    for (size_t j = i; j < got.size() && got[j].at < got[i].at + 1000; ++j) ++n;
    most_in_a_second = std::max(most_in_a_second, n);
  }
  CHECK(most_in_a_second <= 10);  // the burst plus one second of refill
  // Waiting for a token costs no attempt.
  for (const auto& d : throttled) CHECK(f.delivery(d.id).attempts == 1);
  CHECK(f.rx.count("/free") == 12);
}

// A throttled endpoint's backlog is parked once, then left alone until its next token: claims
// never scan or rewrite it while it waits.
TEST_CASE("an endpoint with no token left is parked, not claimed again and again") {
  Fixture f;
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/one-per-second"), 1);
  const TimeMs queued_at = wall_now() - 1000;
  {
    auto c = f.db.acquire();
    Transaction tx(*c);
    for (int i = 0; i < 200; ++i) {
      Message m;
      m.id = new_id(kMessagePrefix, queued_at);
      m.app_id = f.app.id;
      m.event_type = "test.event";
      m.payload = R"({"i":)" + std::to_string(i) + "}";
      m.timestamp = queued_at;
      MessageStore(*c).insert(m);
      Delivery d;
      d.id = new_id(kDeliveryPrefix, queued_at);
      d.app_id = f.app.id;
      d.msg_id = m.id;
      d.endpoint_id = ep.id;
      d.next_attempt_at = queued_at;
      d.created_at = d.updated_at = queued_at;
      DeliveryStore(*c).insert(d);
    }
    tx.commit();
  }

  auto opts = Fixture::options();
  opts.claim_batch = 10;
  Scheduler sched(f.db, f.clock, opts);
  sched.wake();
  REQUIRE(wait_until([&] { return f.rx.count("/one-per-second") == 1; }));
  REQUIRE(wait_until([&] {
    return f.count("SELECT count(*) FROM deliveries WHERE status = 1 AND due_at IS NULL") == 199;
  }));
  const int64_t parked_at = f.count("SELECT max(updated_at) FROM deliveries WHERE status = 1");
  std::this_thread::sleep_for(600ms);  // the next token is a second away
  CHECK(f.rx.count("/one-per-second") == 1);
  // Parked once; not one row rewritten while waiting for the token.
  CHECK(f.count("SELECT count(*) FROM deliveries WHERE status = 1 AND updated_at > " +
                std::to_string(parked_at)) == 0);
  // The next token sends the next one, taken from the parked backlog.
  REQUIRE(wait_until([&] { return f.rx.count("/one-per-second") == 2; }));
  CHECK(f.count("SELECT count(*) FROM deliveries WHERE status = 1 AND due_at IS NULL") == 198);
}

// Deliveries over an endpoint's concurrency cap are parked, not churned: each is sent exactly
// once as room frees up, and an endpoint at its cap does not hold back another.
TEST_CASE("deliveries over an endpoint's cap are parked and each is sent exactly once") {
  Fixture f;
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool open = false;
  std::atomic<int> inside{0};
  std::atomic<int> most_inside{0};
  f.rx.on("/slow", [&](int, const httplib::Request&, httplib::Response& res) {
    const int now_inside = ++inside;
    int seen = most_inside.load();
    while (now_inside > seen && !most_inside.compare_exchange_weak(seen, now_inside)) {
    }
    std::unique_lock lock(gate_mu);
    gate_cv.wait_for(lock, 5s, [&] { return open; });
    --inside;
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
  Scheduler sched(f.db, f.clock, opts);
  sched.wake();
  // The fast endpoint gets everything while the slow one holds its 4 slots.
  REQUIRE(wait_until([&] { return f.rx.count("/fast") == kMessages; }));
  REQUIRE(wait_until([&] { return inside.load() == 4; }));
  // The rest of the slow endpoint's deliveries wait parked: pending, no due time.
  REQUIRE(wait_until([&] {
    return f.count("SELECT count(*) FROM deliveries WHERE endpoint_id = '" + slow.id +
                   "' AND status = 1 AND due_at IS NULL") == kMessages - 4;
  }));
  CHECK(f.rx.count("/slow") == 4);
  {
    std::lock_guard lock(gate_mu);
    open = true;
  }
  gate_cv.notify_all();
  for (const auto& d : to_slow) CHECK(f.wait_status(d, DeliveryStatus::kSuccess));
  CHECK(f.rx.count("/slow") == kMessages);  // each exactly once
  CHECK(most_inside.load() <= 4);           // the cap held throughout
  CHECK(f.count("SELECT count(*) FROM attempts WHERE endpoint_id = '" + slow.id + "'") ==
        kMessages);
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
    auto c = f.db.acquire();
    Transaction tx(*c);
    for (const auto& d : parked) {
      DeliveryStore(*c).update({d.id, DeliveryStatus::kPending, 0, std::nullopt}, wall_now());
    }
    tx.commit();
  }
  Scheduler sched(f.db, f.clock, Fixture::options());
  for (const auto& d : parked) CHECK(f.wait_status(d, DeliveryStatus::kSuccess));
  CHECK(f.rx.count("/after-restart") == 5);
}

// ---------------------------------------------------------------------------------------------
// Expired payloads and retention

TEST_CASE("a delivery whose payload expired fails without an attempt") {
  Fixture f;
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/expired"));
  auto m = f.add_message(R"({"expired":true})");
  {
    auto c = f.db.acquire();
    std::string last;
    REQUIRE(MessageStore(*c).expire_payloads(wall_now() + 1, "", 10, &last) == 1);
    REQUIRE(last == m.id);
  }
  auto d = f.add_delivery(m, ep);
  auto kept = f.add_delivery(f.add_message(R"({"expired":false})"), ep);

  Scheduler sched(f.db, f.clock, Fixture::options());
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail));
  REQUIRE(f.wait_status(kept, DeliveryStatus::kSuccess));
  std::this_thread::sleep_for(200ms);
  CHECK(f.delivery(d.id).attempts == 0);
  CHECK(f.attempts(m).empty());
  auto got = f.rx.requests("/expired");
  REQUIRE(got.size() == 1);
  CHECK(got[0].body == R"({"expired":false})");
}

TEST_CASE("retention purges old payloads and attempts in batches and keeps newer ones") {
  Fixture f;
  auto ep = f.add_endpoint("http://127.0.0.1:9/unused");
  const TimeMs now = wall_now();
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
    auto c = f.db.acquire();
    MessageStore(*c).insert(r.m);
    AttemptStore(*c).insert(r.a);
    return r;
  };
  std::vector<Row> expiring;
  for (int i = 1; i <= 5; ++i) expiring.push_back(add(old + i, i));
  std::vector<Row> kept = {add(now - 30'000, 1), add(now - 1000, 2), add(now, 3)};

  auto opts = Fixture::options();
  opts.retention_ms = 60'000;
  opts.purge_batch = 2;  // 5 rows: three batches, back to back
  Scheduler sched(f.db, f.clock, opts);
  const auto message = [&](const Row& r) {
    auto c = f.db.acquire();
    auto m = MessageStore(*c).get(f.app.id, r.m.id);
    REQUIRE(m);
    return *m;
  };
  const auto attempt_exists = [&](const Row& r) {
    auto c = f.db.acquire();
    return AttemptStore(*c).get(f.app.id, r.a.id).has_value();
  };
  const auto all_purged = [&] {
    return std::all_of(expiring.begin(), expiring.end(), [&](const Row& r) {
      return message(r).payload_expired && !attempt_exists(r);
    });
  };
  CHECK(wait_until(all_purged, 2000ms));  // well before the next pass a minute later
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
}

// ---------------------------------------------------------------------------------------------
// Operational webhooks

TEST_CASE("ensure_operator_channel creates the channel once and follows url and key changes") {
  TempDir dir;
  Database db(dir.file("ops.db"), 2);
  SystemClock clock;
  auto a = ensure_operator_channel(db, clock, "http://127.0.0.1:1/first", "key-one-0123456789");
  auto b = ensure_operator_channel(db, clock, "http://127.0.0.1:1/second", "key-two-0123456789");
  CHECK(a.app_id == b.app_id);
  CHECK(a.endpoint_id == b.endpoint_id);
  auto c = db.acquire();
  auto app = AppStore(*c).get_by_uid(std::string(kOperatorAppUid));
  REQUIRE(app);
  CHECK(app->id == a.app_id);
  EndpointStore endpoints(*c);
  auto ep = endpoints.get(a.app_id, a.endpoint_id);
  REQUIRE(ep);
  CHECK(ep->url == "http://127.0.0.1:1/second");
  CHECK(endpoints.signing_keys(ep->id, clock.now_ms() + 1) ==
        std::vector<std::string>{"key-two-0123456789"});

  // A disabled operator endpoint is enabled again, with a fresh health window.
  endpoints.note_failure(ep->id, clock.now_ms());
  REQUIRE(endpoints.disable(ep->id, "failing", clock.now_ms()));
  auto again =
      ensure_operator_channel(db, clock, "http://127.0.0.1:1/second", "key-two-0123456789");
  CHECK(again.endpoint_id == a.endpoint_id);
  ep = endpoints.get(a.app_id, a.endpoint_id);
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

  Scheduler sched(f.db, f.clock, f.options());
  sched.wake();
  REQUIRE(f.wait_disabled(ep));
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail));
  REQUIRE(wait_until([&] { return f.rx.count("/ops") >= 1; }));
  std::this_thread::sleep_for(200ms);
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
  CHECK(e.data.contains("failSince"));
  // The operator's key, not the app endpoint's.
  const int64_t ts = std::stoll(e.request.header("webhook-timestamp"));
  CHECK(e.request.header("webhook-signature") ==
        signature_header({f.ops_key}, e.request.header("webhook-id"), ts, e.request.body));
  CHECK(std::abs(ts - wall_now() / 1000) <= 5);
}

TEST_CASE("operator: an endpoint disabled by the health window is reported with its failSince") {
  OperatorFixture f;
  f.rx.on("/down", answer(500));
  f.start();
  auto ep = f.add_endpoint(f.rx.url("/down"));
  auto m = f.add_message(R"({"down":1})");
  auto d = f.add_delivery(m, ep);

  auto opts = f.options();
  opts.retry = RetryPolicy(std::vector<int64_t>(10, 100), 0);
  opts.disable_after_ms = 250;
  Scheduler sched(f.db, f.clock, opts);
  sched.wake();
  REQUIRE(f.wait_disabled(ep, 3000ms));
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail));
  REQUIRE(wait_until([&] { return f.rx.count("/ops") >= 2; }));
  std::this_thread::sleep_for(200ms);

  auto attempts = f.attempts(m);
  REQUIRE(attempts.size() >= 2);
  auto events = f.events();
  std::optional<OperatorEvent> disabled;
  for (const auto& e : events) {
    if (e.type == "endpoint.disabled") disabled = e;
  }
  REQUIRE(disabled);
  CHECK(disabled->data.value("endpointId", "") == ep.id);
  CHECK(disabled->data.value("reason", "").find("failing") != std::string::npos);
  CHECK(disabled->data.value("failSince", "") == format_rfc3339(attempts.back().timestamp));
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

  Scheduler sched(f.db, f.clock, f.options());  // 4 tries: none with retries left after it
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail));
  REQUIRE(wait_until([&] { return f.rx.count("/ops") >= 1; }));
  std::this_thread::sleep_for(200ms);
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
  Scheduler sched(f.db, f.clock, opts);
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess));
  REQUIRE(wait_until([&] { return f.rx.count("/ops") >= 2; }));
  std::this_thread::sleep_for(200ms);
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
  Scheduler sched(f.db, f.clock, opts);
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess));
  REQUIRE(f.wait_status(ok, DeliveryStatus::kSuccess));
  std::this_thread::sleep_for(300ms);
  CHECK(f.rx.count("/ops") == 0);
  CHECK(f.operator_messages() == 0);
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
  Scheduler sched(f.db, f.clock, opts);
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail));
  // Both operator messages fail all 6 tries; about themselves they must report nothing.
  const auto operator_done = [&] {
    return f.count("SELECT count(*) FROM deliveries WHERE app_id = '" + f.ops.app_id +
                   "' AND status = 2") == 2;
  };
  REQUIRE(wait_until(operator_done));
  std::this_thread::sleep_for(300ms);
  CHECK(f.operator_messages() == 2);
  CHECK(f.count("SELECT count(*) FROM deliveries WHERE app_id = '" + f.ops.app_id + "'") == 2);
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

  Scheduler sched(f.db, f.clock, f.options());
  sched.wake();
  REQUIRE(f.wait_disabled(ep));
  const auto ops_disabled = [&] {
    auto c = f.db.acquire();
    auto e = EndpointStore(*c).get(f.ops.app_id, f.ops.endpoint_id);
    return e && e->disabled;
  };
  REQUIRE(wait_until(ops_disabled));
  std::this_thread::sleep_for(300ms);
  CHECK(f.operator_messages() == 1);  // about the app's endpoint only
  CHECK(f.rx.count("/ops") == 1);
}
