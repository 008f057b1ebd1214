// Integration tests of the Scheduler: a real SQLite file, the system clock, the real curl
// Sender and a cpp-httplib receiver on loopback. Conditions are awaited by polling the
// database with a deadline; only the "nothing more happens" checks wait a fixed while.

#include "scheduler/scheduler.h"

#include <doctest/doctest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/encoding.h"
#include "core/ids.h"
#include "core/retry.h"
#include "core/signing.h"
#include "core/types.h"
#include "db/app_store.h"
#include "db/attempt_store.h"
#include "db/delivery_store.h"
#include "db/endpoint_store.h"
#include "db/message_store.h"
#include "db/pool.h"
#include "db/sqlite.h"

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
            ("herald_scheduler_test_" + std::to_string(rd()) + "_" + std::to_string(counter++));
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

// Lets handlers block until the test releases them or a cap elapses, so the receiver can
// always stop promptly.
class Gate {
 public:
  void wait_for(std::chrono::milliseconds cap) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, cap, [this] { return open_; });
  }
  void release() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
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
  size_t header_count(const std::string& name) const { return headers.count(name); }
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
    gate.release();
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
  size_t total() {
    std::lock_guard lock(mu_);
    return received_.size();
  }
  // The most requests ever being handled at once, overall and to one path.
  int peak() const { return peak_.load(); }
  int peak(const std::string& path) {
    std::lock_guard lock(mu_);
    auto it = path_peak_.find(path);
    return it == path_peak_.end() ? 0 : it->second;
  }
  // Requests whose handler has started.
  int entered() const { return entered_.load(); }

  Gate gate;

 private:
  void handle(const httplib::Request& req, httplib::Response& res) {
    const int now_active = ++active_;
    int seen = peak_.load();
    while (now_active > seen && !peak_.compare_exchange_weak(seen, now_active)) {
    }
    int n = 0;
    {
      std::lock_guard lock(mu_);
      received_.push_back(Received{req.path, req.headers, req.body, wall_now()});
      n = ++per_path_[req.path];
      int& top = path_peak_[req.path];
      top = std::max(top, ++path_active_[req.path]);
    }
    ++entered_;
    auto it = responders_.find(req.path);  // read-only once started
    if (it != responders_.end()) {
      it->second(n, req, res);
    } else {
      res.status = 200;
      res.set_content("ok", "text/plain");
    }
    {
      std::lock_guard lock(mu_);
      --path_active_[req.path];
    }
    --active_;
  }

  httplib::Server svr_;
  std::thread thread_;
  int port_ = -1;
  std::map<std::string, Responder> responders_;
  std::mutex mu_;
  std::vector<Received> received_;          // GUARDED_BY(mu_)
  std::map<std::string, int> per_path_;     // GUARDED_BY(mu_)
  std::map<std::string, int> path_active_;  // GUARDED_BY(mu_)
  std::map<std::string, int> path_peak_;    // GUARDED_BY(mu_)
  std::atomic<int> active_{0};
  std::atomic<int> peak_{0};
  std::atomic<int> entered_{0};
};

Receiver::Responder answer(int status, std::string body = "") {
  return [status, body](int, const httplib::Request&, httplib::Response& res) {
    res.status = status;
    res.set_content(body, "text/plain");
  };
}

std::vector<std::string> split_spaces(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string part; in >> part;) out.push_back(part);
  return out;
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
    app.name = "scheduler test";
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

  Endpoint add_endpoint(const std::string& url, const std::string& key,
                        std::map<std::string, std::string> headers = {}, bool disabled = false) {
    const TimeMs now = wall_now();
    Endpoint ep;
    ep.id = new_id(kEndpointPrefix, now);
    ep.app_id = app.id;
    ep.url = url;
    ep.headers = std::move(headers);
    ep.disabled = disabled;
    ep.created_at = ep.updated_at = now;
    auto c = db.acquire();
    EndpointStore(*c).insert(ep, key);
    return ep;
  }

  Message add_message(const std::string& payload, const std::string& event_type = "test.event") {
    const TimeMs now = wall_now();
    Message m;
    m.id = new_id(kMessagePrefix, now);
    m.app_id = app.id;
    m.event_type = event_type;
    m.payload = payload;
    m.timestamp = now;
    auto c = db.acquire();
    MessageStore(*c).insert(m);
    return m;
  }

  Delivery add_delivery(const Message& m, const Endpoint& ep,
                        DeliveryStatus status = DeliveryStatus::kPending,
                        std::optional<TimeMs> due = std::nullopt,
                        TriggerType trigger = TriggerType::kScheduled) {
    const TimeMs now = wall_now();
    Delivery d;
    d.id = new_id(kDeliveryPrefix, now);
    d.app_id = app.id;
    d.msg_id = m.id;
    d.endpoint_id = ep.id;
    d.status = status;
    d.next_attempt_at = due.value_or(now);
    d.trigger = trigger;
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
};

std::string random_key() {
  return random_bytes(32);
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

  Scheduler sched(f.db, f.clock, Fixture::options());
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess));
  const TimeMs done_at = wall_now();
  std::this_thread::sleep_for(200ms);  // a duplicate would show up meanwhile

  auto got = f.rx.requests("/hook");
  REQUIRE(got.size() == 1);
  CHECK(f.rx.total() == 1);
  const Received& r = got[0];
  CHECK(r.body == payload);  // the exact bytes
  CHECK(r.header("webhook-id") == m.id);
  CHECK(r.header("content-type") == "application/json");
  CHECK(r.header_count("content-type") == 1);
  CHECK(r.header("x-custom") == "hello there");
  const int64_t ts = parse_ts(r.header("webhook-timestamp"));
  CHECK(ts >= r.at / 1000 - 5);
  CHECK(ts <= done_at / 1000 + 1);
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
  CHECK(a.timestamp >= d.created_at);
  CHECK(a.timestamp <= done_at);
  auto headers = nlohmann::json::parse(a.request_headers_json);
  REQUIRE(headers.is_object());
  CHECK(headers.value("webhook-signature", "") == sig);
  CHECK(headers.value("webhook-id", "") == m.id);
  CHECK(headers.value("webhook-timestamp", "") == std::to_string(ts));
  CHECK(a.request_headers_json.find(base64_encode(key)) == std::string::npos);

  auto after = f.delivery(d.id);
  CHECK(after.status == DeliveryStatus::kSuccess);
  CHECK(after.attempts == 1);
  CHECK(sched.in_flight() == 0);
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

  Scheduler sched(f.db, f.clock, Fixture::options());
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess));
  std::this_thread::sleep_for(200ms);

  auto got = f.rx.requests("/flaky");
  REQUIRE(got.size() == 3);
  for (const auto& r : got) {
    CHECK(r.header("webhook-id") == m.id);  // the same id on every try
    CHECK(r.body == m.payload);
    const int64_t ts = parse_ts(r.header("webhook-timestamp"));
    CHECK(r.header("webhook-signature") == sign_v1(key, m.id, ts, m.payload));
  }
  // The schedule's waits (50 ms, then 100 ms) separate the tries.
  CHECK(got[1].at - got[0].at >= 45);
  CHECK(got[2].at - got[1].at >= 95);

  auto attempts = f.attempts(m);  // newest first
  REQUIRE(attempts.size() == 3);
  CHECK(attempts[0].status == DeliveryStatus::kSuccess);
  CHECK(attempts[0].response_status_code == 200);
  CHECK(attempts[0].response == "fine");
  CHECK(attempts[1].status == DeliveryStatus::kFail);
  CHECK(attempts[1].response_status_code == 500);
  CHECK(attempts[1].response == "broken 2");
  CHECK(attempts[2].status == DeliveryStatus::kFail);
  CHECK(attempts[2].response_status_code == 500);
  CHECK(attempts[2].response == "broken 1");

  auto after = f.delivery(d.id);
  CHECK(after.status == DeliveryStatus::kSuccess);
  CHECK(after.attempts == 3);
}

TEST_CASE("a delivery that always fails gets the first try plus one per schedule entry") {
  Fixture f;
  f.rx.on("/down", answer(500, "nope"));
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/down"), random_key());
  auto m = f.add_message(R"({"x":1})");
  auto d = f.add_delivery(m, ep);

  Scheduler sched(f.db, f.clock, Fixture::options());
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail));
  auto after = f.delivery(d.id);
  CHECK(after.attempts == 4);

  std::this_thread::sleep_for(500ms);  // no fifth try
  CHECK(f.rx.count("/down") == 4);
  auto attempts = f.attempts(m);
  CHECK(attempts.size() == 4);
  for (const auto& a : attempts) {
    CHECK(a.status == DeliveryStatus::kFail);
    CHECK(a.response_status_code == 500);
  }
  CHECK(f.delivery(d.id).status == DeliveryStatus::kFail);
  CHECK(f.delivery(d.id).attempts == 4);
}

TEST_CASE("a manual resend that fails is not retried") {
  Fixture f;
  f.rx.on("/manual", answer(503, "busy"));
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/manual"), random_key());
  auto m = f.add_message(R"({"manual":1})");
  auto d = f.add_delivery(m, ep, DeliveryStatus::kPending, std::nullopt, TriggerType::kManual);

  Scheduler sched(f.db, f.clock, Fixture::options());
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail));
  std::this_thread::sleep_for(400ms);  // longer than the whole retry schedule

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

  Scheduler sched(f.db, f.clock, Fixture::options());
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail));
  std::this_thread::sleep_for(200ms);
  CHECK(f.rx.total() == 0);
  CHECK(f.delivery(d.id).attempts == 0);
  CHECK(f.attempts(m).empty());
}

TEST_CASE("a refused connection is an attempt with status 0 and the error text") {
  // A bound socket that does not listen: connecting to it is refused.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t len = sizeof(addr);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const int port = ntohs(addr.sin_port);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};

  Fixture f;
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/refused";
  auto ep = f.add_endpoint(url, random_key());
  auto m = f.add_message(R"({"r":1})");
  auto d = f.add_delivery(m, ep);

  auto opts = Fixture::options();
  opts.retry = RetryPolicy({}, 0);  // one try only
  Scheduler sched(f.db, f.clock, opts);
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
  auto ep = f.add_endpoint(f.rx.url("/slow"), random_key());
  auto m = f.add_message(R"({"t":1})");
  auto d = f.add_delivery(m, ep);

  auto opts = Fixture::options();
  opts.retry = RetryPolicy({}, 0);
  opts.request_timeout_ms = 300;
  Scheduler sched(f.db, f.clock, opts);
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

TEST_CASE("after a rotation with grace both keys sign, current key first") {
  Fixture f;
  f.rx.start();
  const std::string old_key = random_key();
  const std::string new_key = random_key();
  auto ep = f.add_endpoint(f.rx.url("/rotated"), old_key);
  {
    auto c = f.db.acquire();
    EndpointStore(*c).rotate_key(ep.id, new_key, 3'600'000, wall_now());
  }
  auto m = f.add_message(R"({"rotated":true})");
  auto d = f.add_delivery(m, ep);

  Scheduler sched(f.db, f.clock, Fixture::options());
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess));
  auto got = f.rx.requests("/rotated");
  REQUIRE(got.size() == 1);
  const int64_t ts = parse_ts(got[0].header("webhook-timestamp"));
  auto sigs = split_spaces(got[0].header("webhook-signature"));
  REQUIRE(sigs.size() == 2);
  CHECK(sigs[0] == sign_v1(new_key, m.id, ts, m.payload));
  CHECK(sigs[1] == sign_v1(old_key, m.id, ts, m.payload));
  CHECK(sigs[0] != sigs[1]);
}

TEST_CASE("a sending delivery whose lease lapsed is claimed again and delivered") {
  Fixture f;
  f.rx.start();
  const std::string key = random_key();
  auto ep = f.add_endpoint(f.rx.url("/reclaimed"), key);
  auto held_ep = f.add_endpoint(f.rx.url("/held"), key);
  auto m = f.add_message(R"({"crashed":true})");
  const TimeMs now = wall_now();
  // Claimed by a process that crashed: its lease ran out a second ago.
  auto lapsed = f.add_delivery(m, ep, DeliveryStatus::kSending, now - 1000);
  // Claimed by a live process whose lease still runs for a minute.
  auto leased = f.add_delivery(m, held_ep, DeliveryStatus::kSending, now + 60'000);

  Scheduler sched(f.db, f.clock, Fixture::options());
  sched.wake();
  REQUIRE(f.wait_status(lapsed, DeliveryStatus::kSuccess));
  std::this_thread::sleep_for(300ms);
  CHECK(f.rx.count("/reclaimed") == 1);
  CHECK(f.delivery(lapsed.id).attempts == 1);
  CHECK(f.rx.count("/held") == 0);
  CHECK(f.delivery(leased.id).status == DeliveryStatus::kSending);
  CHECK(f.delivery(leased.id).attempts == 0);
}

TEST_CASE("stop(drain) waits for the delivery in flight and records it") {
  Fixture f;
  f.rx.on("/slow", [&f](int, const httplib::Request&, httplib::Response& res) {
    f.rx.gate.wait_for(1000ms);  // never released while the test runs: a 1 s handler
    res.status = 200;
    res.set_content("finally", "text/plain");
  });
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/slow"), random_key());
  auto m = f.add_message(R"({"drain":1})");
  auto d = f.add_delivery(m, ep);

  Scheduler sched(f.db, f.clock, Fixture::options());
  sched.wake();
  REQUIRE(wait_until([&] { return f.rx.entered() == 1; }));
  CHECK(sched.in_flight() == 1);
  const auto started = SteadyClock::now();
  sched.stop(3000);
  CHECK(ms_since(started) < 2500);  // returned when the work was done, not at the deadline

  // Recorded before stop() returned: no waiting here.
  auto attempts = f.attempts(m);
  REQUIRE(attempts.size() == 1);
  CHECK(attempts[0].status == DeliveryStatus::kSuccess);
  CHECK(attempts[0].response == "finally");
  auto after = f.delivery(d.id);
  CHECK(after.status == DeliveryStatus::kSuccess);
  CHECK(after.attempts == 1);
  CHECK(sched.in_flight() == 0);
  sched.stop(3000);  // idempotent
}

TEST_CASE("stop(0) aborts the delivery in flight back to the queue, not as an attempt") {
  Fixture f;
  f.rx.on("/stuck", [&f](int n, const httplib::Request&, httplib::Response& res) {
    if (n == 1) f.rx.gate.wait_for(5000ms);
    res.status = 200;
    res.set_content("ok", "text/plain");
  });
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/stuck"), random_key());
  auto m = f.add_message(R"({"abort":1})");
  auto d = f.add_delivery(m, ep);

  {
    Scheduler sched(f.db, f.clock, Fixture::options());
    sched.wake();
    REQUIRE(wait_until([&] { return f.rx.entered() == 1; }));
    const auto started = SteadyClock::now();
    sched.stop(0);
    CHECK(ms_since(started) < 1000);
    const TimeMs stopped_at = wall_now();

    auto after = f.delivery(d.id);
    CHECK(after.status == DeliveryStatus::kPending);
    CHECK(after.attempts == 0);
    CHECK(after.next_attempt_at <= stopped_at);  // due again at once
    CHECK(f.attempts(m).empty());
  }
  f.rx.gate.release();

  // The next scheduler picks it up: at least once, nothing lost.
  Scheduler again(f.db, f.clock, Fixture::options());
  again.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess));
  CHECK(f.delivery(d.id).attempts == 1);
  CHECK(f.attempts(m).size() == 1);
  CHECK(f.rx.count("/stuck") == 2);
}

TEST_CASE("max_in_flight bounds the requests in progress") {
  Fixture f;
  f.rx.on("/busy", [](int, const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(100ms);
    res.status = 204;
  });
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/busy"), random_key());
  std::vector<Delivery> ds;
  for (int i = 0; i < 30; ++i) {
    auto m = f.add_message(R"({"i":)" + std::to_string(i) + "}");
    ds.push_back(f.add_delivery(m, ep));
  }

  auto opts = Fixture::options();
  opts.max_in_flight = 5;
  Scheduler sched(f.db, f.clock, opts);
  sched.wake();
  const auto all_done = [&] {
    auto c = f.db.acquire();
    return DeliveryStore(*c).stats(ep.id).success == 30;
  };
  REQUIRE(wait_until(all_done, 10s));
  CHECK(f.rx.count("/busy") == 30);
  CHECK(f.rx.peak() <= 5);
  CHECK(f.rx.peak() >= 2);  // concurrent at all
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

  Scheduler sched(f.db, f.clock, Fixture::options());
  sched.wake();
  const auto all_done = [&] {
    auto c = f.db.acquire();
    auto ds = DeliveryStore(*c).for_message(m.id);
    return ds.size() == 3 && std::all_of(ds.begin(), ds.end(), [](const Delivery& x) {
             return x.status == DeliveryStatus::kSuccess;
           });
  };
  REQUIRE(wait_until(all_done));
  std::this_thread::sleep_for(100ms);

  for (size_t i = 0; i < paths.size(); ++i) {
    CAPTURE(paths[i]);
    auto got = f.rx.requests(paths[i]);
    REQUIRE(got.size() == 1);
    CHECK(got[0].header("webhook-id") == m.id);
    CHECK(got[0].body == m.payload);
    const int64_t ts = parse_ts(got[0].header("webhook-timestamp"));
    CHECK(got[0].header("webhook-signature") == sign_v1(keys[i], m.id, ts, m.payload));
  }
  CHECK(f.rx.total() == 3);
  auto attempts = f.attempts(m);
  REQUIRE(attempts.size() == 3);
  std::set<std::string> endpoint_ids;
  for (const auto& a : attempts) endpoint_ids.insert(a.endpoint_id);
  CHECK(endpoint_ids == std::set<std::string>{eps[0].id, eps[1].id, eps[2].id});
}

TEST_CASE("an endpoint at its concurrency cap holds back neither other endpoints nor the CPU") {
  Fixture f;
  f.rx.on("/capped", [&f](int, const httplib::Request&, httplib::Response& res) {
    f.rx.gate.wait_for(3000ms);
    res.status = 200;
  });
  f.rx.start();
  auto capped = f.add_endpoint(f.rx.url("/capped"), random_key());
  auto healthy = f.add_endpoint(f.rx.url("/healthy"), random_key());
  std::vector<Delivery> slow;
  for (int i = 0; i < 6; ++i) {
    auto m = f.add_message(R"({"capped":)" + std::to_string(i) + "}");
    slow.push_back(f.add_delivery(m, capped));
  }

  auto opts = Fixture::options();
  opts.endpoint_concurrency = 2;
  opts.max_in_flight = 50;
  Scheduler sched(f.db, f.clock, opts);
  sched.wake();
  REQUIRE(wait_until([&] { return f.rx.count("/capped") == 2; }));

  // A healthy endpoint's delivery goes out while the capped one is stuck.
  auto m = f.add_message(R"({"healthy":1})");
  auto fast = f.add_delivery(m, healthy);
  sched.wake();
  REQUIRE(f.wait_status(fast, DeliveryStatus::kSuccess, 2000ms));

  // Idle but for the stuck requests: the scheduler must sleep, not spin on the queue.
  const int64_t cpu_before = process_cpu_ms();
  std::this_thread::sleep_for(500ms);
  const int64_t cpu_used = process_cpu_ms() - cpu_before;
  CHECK(f.rx.count("/capped") == 2);  // the cap holds
  CHECK(sched.in_flight() == 2);
  CHECK_MESSAGE(cpu_used < 150, "the scheduler used " << cpu_used << " ms of CPU in 500 ms idle");

  f.rx.gate.release();
  const auto all_done = [&] {
    auto c = f.db.acquire();
    return DeliveryStore(*c).stats(capped.id).success == 6;
  };
  REQUIRE(wait_until(all_done));
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
  auto ep = f.add_endpoint(f.rx.url("/moved"), random_key());
  auto m = f.add_message(R"({"moved":1})");
  auto d = f.add_delivery(m, ep);

  auto opts = Fixture::options();
  opts.retry = RetryPolicy({}, 0);
  Scheduler sched(f.db, f.clock, opts);
  sched.wake();
  REQUIRE(f.wait_status(d, DeliveryStatus::kFail));
  auto attempts = f.attempts(m);
  REQUIRE(attempts.size() == 1);
  CHECK(attempts[0].response_status_code == 302);
  CHECK(attempts[0].status == DeliveryStatus::kFail);
  std::this_thread::sleep_for(100ms);
  CHECK(f.rx.count("/moved") == 1);
  CHECK(f.rx.count("/target") == 0);
}

// DESIGN.md: "410 Gone disables the endpoint at once."
TEST_CASE("410 Gone disables the endpoint at once, without retries") {
  Fixture f;
  f.rx.on("/gone", answer(410, "gone"));
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/gone"), random_key());
  auto m = f.add_message(R"({"gone":1})");
  auto d = f.add_delivery(m, ep);

  Scheduler sched(f.db, f.clock, Fixture::options());
  sched.wake();
  const auto disabled = [&] {
    auto c = f.db.acquire();
    auto e = EndpointStore(*c).get(f.app.id, ep.id);
    return e && e->disabled;
  };
  CHECK(wait_until(disabled, 2000ms));
  CHECK(f.wait_status(d, DeliveryStatus::kFail, 2000ms));
  CHECK(f.delivery(d.id).attempts == 1);
  {
    auto c = f.db.acquire();
    auto e = EndpointStore(*c).get(f.app.id, ep.id);
    REQUIRE(e);
    REQUIRE(e->disabled_reason);
    CHECK(e->disabled_reason->find("410") != std::string::npos);
  }
  auto attempts = f.attempts(m);
  REQUIRE(attempts.size() == 1);
  CHECK(attempts[0].response_status_code == 410);
  CHECK(attempts[0].status == DeliveryStatus::kFail);

  // Nothing more reaches the endpoint: no retry, and a new delivery fails unsent.
  auto m2 = f.add_message(R"({"gone":2})");
  auto d2 = f.add_delivery(m2, ep);
  sched.wake();
  CHECK(f.wait_status(d2, DeliveryStatus::kFail, 2000ms));
  std::this_thread::sleep_for(400ms);  // longer than the whole retry schedule
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
  for (int code : {429, 503}) {
    auto ep = f.add_endpoint(f.rx.url("/ra" + std::to_string(code)), random_key());
    auto m = f.add_message(R"({"ra":)" + std::to_string(code) + "}");
    ds.push_back(f.add_delivery(m, ep));
  }

  Scheduler sched(f.db, f.clock, Fixture::options());
  sched.wake();
  for (const auto& d : ds) REQUIRE(f.wait_status(d, DeliveryStatus::kSuccess));
  for (int code : {429, 503}) {
    CAPTURE(code);
    auto got = f.rx.requests("/ra" + std::to_string(code));
    REQUIRE(got.size() == 2);
    const TimeMs gap = got[1].at - got[0].at;
    CHECK(gap >= 900);
    CHECK(gap < 3000);
  }
}

// The fast path: deliveries written claimed and handed over are sent once, from memory; the
// room promised for them is bounded by max_in_flight and comes back once they are done.
TEST_CASE("handed-over deliveries are sent once and their room comes back") {
  Fixture f;
  f.rx.start();
  auto ep = f.add_endpoint(f.rx.url("/fresh"), random_key());
  auto opts = Fixture::options();
  opts.max_in_flight = 8;
  Scheduler sched(f.db, f.clock, opts);

  CHECK(sched.reserve_fresh(5) == 5);
  CHECK(sched.reserve_fresh(5) == 3);  // only 8 in all
  CHECK(sched.reserve_fresh(1) == 0);
  sched.release_fresh(3);  // the second writer's transaction failed

  auto m = f.add_message(R"({"fresh":true})");
  std::vector<Delivery> handed;
  for (int i = 0; i < 5; ++i) {
    // As the API writes them: sending, leased for a minute, so no claim takes them.
    handed.push_back(f.add_delivery(m, ep, DeliveryStatus::kSending, wall_now() + 60'000));
  }
  sched.dispatch_fresh(handed, std::make_shared<const std::string>(m.payload));
  for (const auto& d : handed) CHECK(f.wait_status(d, DeliveryStatus::kSuccess));
  CHECK(f.rx.count("/fresh") == 5);
  for (const auto& d : handed) CHECK(f.delivery(d.id).attempts == 1);
  // All the room is free again once they are recorded.
  REQUIRE(wait_until([&] { return sched.in_flight() == 0; }));
  CHECK(sched.reserve_fresh(8) == 8);
  sched.release_fresh(8);
}
