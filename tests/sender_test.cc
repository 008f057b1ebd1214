#include "sender/sender.h"

#include <doctest/doctest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/address_policy.h"
#include "tests/support/gate.h"
#include "tests/support/wait.h"

using herald::AddressPolicy;
using herald::DeliveryJob;
using herald::DeliveryResult;
using herald::Sender;
using herald::test::Gate;
using herald::test::ms_since;
using herald::test::SteadyClock;
using herald::test::wait_until;
using namespace std::chrono_literals;

namespace {

constexpr auto kWait = 10s;  // generous: a broken sender fails the test instead of hanging it

// A loopback receiver on a free port. Register handlers on `svr` before start().
struct TestServer {
  httplib::Server svr;
  std::thread thread;
  int port = -1;

  TestServer() {
    svr.new_task_queue = [] { return new httplib::ThreadPool(64); };
    svr.set_keep_alive_max_count(1000);
    svr.set_tcp_nodelay(true);  // else Nagle + delayed ACK adds 40 ms per reused request
    svr.set_keep_alive_timeout(1);
  }
  ~TestServer() { shutdown(); }

  void start() {
    port = svr.bind_to_any_port("127.0.0.1");
    REQUIRE(port > 0);
    thread = std::thread([this] { svr.listen_after_bind(); });
    REQUIRE(wait_until([this] { return svr.is_running(); }, kWait));
  }
  void shutdown() {
    svr.stop();
    if (thread.joinable()) thread.join();
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port) + path;
  }
};

// Collects what the sink receives.
struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<DeliveryResult> results;
  size_t batches = 0;

  Sender::ResultSink sink() {
    return [this](std::vector<DeliveryResult>&& batch) {
      {
        std::lock_guard<std::mutex> lock(mu);
        ++batches;
        for (auto& r : batch) results.push_back(std::move(r));
      }
      cv.notify_all();
    };
  }
  // Waits until at least n results arrived; returns a copy of all of them.
  std::vector<DeliveryResult> wait_for(size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    bool ok = cv.wait_for(lock, kWait, [&] { return results.size() >= n; });
    REQUIRE_MESSAGE(ok, "only " << results.size() << " of " << n << " results arrived");
    return results;
  }
  std::vector<DeliveryResult> snapshot() {
    std::lock_guard<std::mutex> lock(mu);
    return results;
  }
};

DeliveryJob make_job(uint64_t tag, std::string url, std::string body = "{}") {
  DeliveryJob job;
  job.tag = tag;
  job.url = std::move(url);
  job.headers = {{"Content-Type", "application/json"}};
  job.body = std::make_shared<const std::string>(std::move(body));
  return job;
}

DeliveryResult send_one(const DeliveryJob& job, Sender::Options options = {}) {
  Collector collector;
  Sender sender(options, collector.sink());
  sender.submit({job});
  auto results = collector.wait_for(1);
  REQUIRE(results.size() == 1);
  CHECK(results[0].tag == job.tag);
  return results[0];
}

std::map<uint64_t, int> count_tags(const std::vector<DeliveryResult>& results) {
  std::map<uint64_t, int> counts;
  for (const auto& r : results) ++counts[r.tag];
  return counts;
}

}  // namespace

TEST_CASE("2xx: exact body bytes and headers reach the receiver") {
  TestServer server;
  std::mutex mu;
  httplib::Request seen;
  int hits = 0;
  server.svr.Post("/hook", [&](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard<std::mutex> lock(mu);
      seen = req;
      ++hits;
    }
    res.status = 200;
    res.set_content("thanks", "text/plain");
  });
  server.start();

  const char raw[] = "{\"a\":1,\"bin\":\"\x01\x00\xff\"}\r\n";  // NUL and 0xff inside
  const std::string body(raw, sizeof raw - 1);
  DeliveryJob job = make_job(42, server.url("/hook"), body);
  job.headers = {{"Content-Type", "application/vnd.custom+json; charset=utf-8"},
                 {"webhook-id", "msg_123"}};
  DeliveryResult r = send_one(job);

  CHECK(r.status_code == 200);
  CHECK(r.success());
  CHECK(r.body == "thanks");
  CHECK(r.error.empty());
  CHECK_FALSE(r.retry_after_s.has_value());
  CHECK(r.duration_ms >= 0);

  std::lock_guard<std::mutex> lock(mu);
  REQUIRE(hits == 1);
  CHECK(seen.method == "POST");
  CHECK(seen.body == body);
  CHECK(seen.body.size() == 21);
  CHECK(seen.get_header_value("Content-Type") == "application/vnd.custom+json; charset=utf-8");
  CHECK(seen.get_header_value_count("Content-Type") == 1);
  CHECK(seen.get_header_value("webhook-id") == "msg_123");
  CHECK(seen.get_header_value("User-Agent") == "herald/0.1");
  CHECK_FALSE(seen.has_header("Expect"));
}

TEST_CASE("headers go out as given, in order, empty values included (raw wire bytes)") {
  // httplib's parser drops empty header values, so read the request off a plain socket.
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(listener >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), len) == 0);
  REQUIRE(::listen(listener, 4) == 0);
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const int port = ntohs(addr.sin_port);

  std::string wire;
  std::thread receiver([&] {
    int conn = ::accept(listener, nullptr, nullptr);
    if (conn < 0) return;
    char buf[4096];
    while (wire.find("\r\n\r\nhello") == std::string::npos) {
      ssize_t n = ::recv(conn, buf, sizeof buf, 0);
      if (n <= 0) break;
      wire.append(buf, static_cast<size_t>(n));
    }
    const char reply[] = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
    (void)::send(conn, reply, sizeof reply - 1, MSG_NOSIGNAL);
    ::close(conn);
  });

  DeliveryJob job = make_job(8, "http://127.0.0.1:" + std::to_string(port) + "/raw", "hello");
  job.headers = {{"webhook-id", "msg_1"},
                 {"X-Empty", ""},
                 {"Content-Type", "application/json"},
                 {"webhook-signature", "v1,abc"}};
  DeliveryResult r = send_one(job);
  receiver.join();
  ::close(listener);

  CHECK(r.status_code == 204);
  CHECK(wire.rfind("POST /raw HTTP/1.1\r\n", 0) == 0);
  CHECK(wire.find("\r\nwebhook-id: msg_1\r\nX-Empty:\r\nContent-Type: application/json\r\n"
                  "webhook-signature: v1,abc\r\n") != std::string::npos);
  CHECK(wire.find("\r\nContent-Length: 5\r\n") != std::string::npos);
  CHECK(wire.find("Expect") == std::string::npos);
  CHECK(wire.find("urlencoded") == std::string::npos);
  CHECK(wire.size() >= 5);
  CHECK(wire.substr(wire.size() - 9) == "\r\n\r\nhello");
}

TEST_CASE("no Content-Type given: curl's form default is not sent; null body is empty") {
  TestServer server;
  std::mutex mu;
  httplib::Request seen;
  server.svr.Post("/hook", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu);
    seen = req;
    res.status = 204;
  });
  server.start();

  DeliveryJob job = make_job(1, server.url("/hook"));
  job.headers.clear();
  job.body = nullptr;
  DeliveryResult r = send_one(job);
  CHECK(r.status_code == 204);
  CHECK(r.body.empty());
  std::lock_guard<std::mutex> lock(mu);
  CHECK(seen.method == "POST");
  CHECK(seen.body.empty());
  CHECK_FALSE(seen.has_header("Content-Type"));
}

TEST_CASE("500: status and body captured, no error text") {
  TestServer server;
  server.svr.Post("/hook", [](const httplib::Request&, httplib::Response& res) {
    res.status = 500;
    res.set_content("boom", "text/plain");
  });
  server.start();

  DeliveryResult r = send_one(make_job(7, server.url("/hook")));
  CHECK(r.status_code == 500);
  CHECK_FALSE(r.success());
  CHECK(r.body == "boom");
  CHECK(r.error.empty());
  CHECK_FALSE(r.aborted);
}

TEST_CASE("Retry-After: delta seconds and HTTP date") {
  TestServer server;
  server.svr.Post("/delta", [](const httplib::Request&, httplib::Response& res) {
    res.status = 503;
    res.set_header("Retry-After", "7");
  });
  server.svr.Post("/date", [](const httplib::Request&, httplib::Response& res) {
    std::time_t when = std::time(nullptr) + 120;
    std::tm tm{};
    gmtime_r(&when, &tm);
    char date[64];
    std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    res.status = 429;
    res.set_header("Retry-After", date);
  });
  server.svr.Post("/past", [](const httplib::Request&, httplib::Response& res) {
    res.status = 503;
    res.set_header("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT");
  });
  server.svr.Post("/junk", [](const httplib::Request&, httplib::Response& res) {
    res.status = 503;
    res.set_header("Retry-After", "soon");
  });
  server.start();

  DeliveryResult delta = send_one(make_job(1, server.url("/delta")));
  CHECK(delta.status_code == 503);
  REQUIRE(delta.retry_after_s.has_value());
  CHECK(*delta.retry_after_s == 7);

  DeliveryResult date = send_one(make_job(2, server.url("/date")));
  CHECK(date.status_code == 429);
  REQUIRE(date.retry_after_s.has_value());
  CHECK(*date.retry_after_s >= 115);
  CHECK(*date.retry_after_s <= 121);

  DeliveryResult past = send_one(make_job(3, server.url("/past")));
  REQUIRE(past.retry_after_s.has_value());
  CHECK(*past.retry_after_s == 0);

  DeliveryResult junk = send_one(make_job(4, server.url("/junk")));
  CHECK(junk.status_code == 503);
  CHECK_FALSE(junk.retry_after_s.has_value());
}

TEST_CASE("302 is reported as is and the redirect is not followed") {
  TestServer server;
  std::atomic<int> target_hits{0};
  server.svr.Post("/moved", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 302;
    res.set_header("Location", server.url("/target"));
  });
  auto target = [&](const httplib::Request&, httplib::Response& res) {
    ++target_hits;
    res.status = 200;
  };
  server.svr.Post("/target", target);
  server.svr.Get("/target", target);
  server.start();

  DeliveryResult r = send_one(make_job(9, server.url("/moved")));
  CHECK(r.status_code == 302);
  CHECK_FALSE(r.success());
  CHECK(r.error.empty());
  CHECK(target_hits.load() == 0);
}

TEST_CASE("response body is truncated to max_response_bytes") {
  TestServer server;
  std::string big;
  for (int i = 0; i < 50 * 1024; ++i) big.push_back(static_cast<char>('a' + i % 26));
  server.svr.Post("/big", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 200;
    res.set_content(big, "text/plain");
  });
  server.start();

  DeliveryResult r = send_one(make_job(1, server.url("/big")));
  CHECK(r.status_code == 200);
  REQUIRE(r.body.size() == 20 * 1024);
  CHECK(r.body == big.substr(0, 20 * 1024));

  Sender::Options small;
  small.max_response_bytes = 10;
  DeliveryResult s = send_one(make_job(2, server.url("/big")), small);
  CHECK(s.status_code == 200);
  CHECK(s.body == big.substr(0, 10));
}

TEST_CASE("timeout: status 0 with curl's error text, bounded duration") {
  TestServer server;
  Gate gate;
  server.svr.Post("/slow", [&](const httplib::Request&, httplib::Response& res) {
    gate.wait_for(1500ms);
    res.status = 200;
  });
  // Headers and part of the body arrive, then the receiver stalls.
  server.svr.Post("/stall", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 200;
    res.set_header("Retry-After", "5");
    res.set_chunked_content_provider("text/plain", [&](size_t offset, httplib::DataSink& sink) {
      if (offset == 0) {
        sink.write("partial", 7);
        return true;
      }
      gate.wait_for(1500ms);
      sink.done();
      return true;
    });
  });
  server.start();

  DeliveryJob job = make_job(5, server.url("/slow"));
  job.timeout_ms = 300;
  DeliveryResult r = send_one(job);
  CHECK(r.status_code == 0);
  CHECK(r.error.find("timed out") != std::string::npos);
  CHECK(r.duration_ms >= 250);
  CHECK(r.duration_ms < 1200);
  CHECK_FALSE(r.aborted);  // a real attempt that failed
  MESSAGE("timeout error: " << r.error);

  DeliveryJob stall = make_job(6, server.url("/stall"));
  stall.timeout_ms = 300;
  DeliveryResult s = send_one(stall);
  CHECK(s.status_code == 0);
  CHECK(s.error.find("timed out") != std::string::npos);
  CHECK(s.body.empty());
  CHECK_FALSE(s.retry_after_s.has_value());
  CHECK(s.duration_ms < 1200);
  gate.release();
}

TEST_CASE("connection refused: status 0 with error text") {
  std::string url;
  {
    TestServer server;
    server.start();
    url = server.url("/hook");
    server.shutdown();
  }
  DeliveryResult r = send_one(make_job(3, url));
  CHECK(r.status_code == 0);
  CHECK_FALSE(r.error.empty());
  CHECK(r.error.find("onnect") != std::string::npos);
  CHECK(r.body.empty());
  MESSAGE("refused error: " << r.error);
}

TEST_CASE("only http and https URLs are attempted") {
  for (const char* url : {"file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1/"}) {
    DeliveryResult r = send_one(make_job(11, url));
    CHECK(r.status_code == 0);
    CHECK_FALSE(r.error.empty());
    CHECK(r.body.empty());
  }
}

TEST_CASE("a job curl refuses to start fails alone with the reason") {
  TestServer server;
  server.svr.Post("/hook",
                  [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
  server.start();

  Collector collector;
  Sender sender({}, collector.sink());
  // curl rejects URLs over 8 MB at setopt time.
  sender.submit({make_job(1, server.url("/hook?") + std::string(9'000'000, 'a')),
                 make_job(2, server.url("/hook"))});
  auto results = collector.wait_for(2);
  for (const auto& r : results) {
    if (r.tag == 1) {
      CHECK(r.status_code == 0);
      CHECK(r.error.rfind("could not start transfer: ", 0) == 0);
      CHECK_FALSE(r.aborted);  // a persistent fault: must not be requeued as unsent
    } else {
      CHECK(r.status_code == 204);
    }
  }
  CHECK(count_tags(results).size() == 2);
}

TEST_CASE("many concurrent jobs: each result arrives exactly once") {
  TestServer server;
  std::atomic<int> hits{0};
  server.svr.Post(R"(/job/(\d+))", [&](const httplib::Request& req, httplib::Response& res) {
    ++hits;
    res.status = 200;
    res.set_content("job " + req.matches[1].str() + " " + req.body, "text/plain");
  });
  server.start();

  Collector collector;
  Sender::Options options;
  // httplib listens with a backlog of 5: a burst of connects beyond that waits for SYN
  // retransmits. 200 jobs over 4 connections also exercises curl's own queueing.
  options.max_connections_per_host = 4;
  Sender sender(options, collector.sink());
  constexpr uint64_t kJobs = 200;
  for (uint64_t batch = 0; batch < kJobs; batch += 50) {
    std::vector<DeliveryJob> jobs;
    for (uint64_t tag = batch; tag < batch + 50; ++tag) {
      jobs.push_back(make_job(tag, server.url("/job/" + std::to_string(tag)), std::to_string(tag)));
    }
    sender.submit(std::move(jobs));
  }
  auto results = collector.wait_for(kJobs);
  std::this_thread::sleep_for(50ms);  // would catch duplicates arriving late
  results = collector.snapshot();
  CHECK(results.size() == kJobs);
  auto counts = count_tags(results);
  CHECK(counts.size() == kJobs);
  for (const auto& r : results) {
    CHECK(counts[r.tag] == 1);
    CHECK(r.status_code == 200);
    CHECK(r.body == "job " + std::to_string(r.tag) + " " + std::to_string(r.tag));
  }
  CHECK(hits.load() == static_cast<int>(kJobs));
}

TEST_CASE("slow receivers are served concurrently") {
  TestServer server;
  std::atomic<int> arrived{0};
  server.svr.Post("/slow", [&](const httplib::Request&, httplib::Response& res) {
    ++arrived;
    std::this_thread::sleep_for(300ms);
    res.status = 200;
  });
  server.start();

  Collector collector;
  Sender sender({}, collector.sink());
  auto start = SteadyClock::now();
  // Groups of 4, each let in before the next: httplib's listen backlog is only 5.
  for (uint64_t group = 0; group < 5; ++group) {
    std::vector<DeliveryJob> jobs;
    for (uint64_t tag = group * 4; tag < group * 4 + 4; ++tag) {
      jobs.push_back(make_job(tag, server.url("/slow")));
    }
    sender.submit(std::move(jobs));
    REQUIRE(wait_until([&] { return arrived.load() == static_cast<int>(group * 4 + 4); }, kWait));
  }
  auto results = collector.wait_for(20);
  int64_t elapsed = ms_since(start);
  CHECK(elapsed < 1500);  // sequential would take 6000 ms
  CHECK(count_tags(results).size() == 20);
  for (const auto& r : results) CHECK(r.status_code == 200);
}

TEST_CASE("connections to the same host are reused") {
  TestServer server;
  std::mutex mu;
  std::set<int> ports;
  int hits = 0;
  server.svr.Post("/hook", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu);
    ports.insert(req.remote_port);
    ++hits;
    res.status = 204;
  });
  server.start();

  Collector collector;
  Sender sender({}, collector.sink());
  constexpr int kBatches = 10;
  constexpr int kPerBatch = 5;
  for (int b = 0; b < kBatches; ++b) {
    std::vector<DeliveryJob> jobs;
    for (int i = 0; i < kPerBatch; ++i) {
      jobs.push_back(make_job(static_cast<uint64_t>(b * kPerBatch + i), server.url("/hook")));
    }
    sender.submit(std::move(jobs));
    collector.wait_for(static_cast<size_t>((b + 1) * kPerBatch));
  }
  std::lock_guard<std::mutex> lock(mu);
  CHECK(hits == kBatches * kPerBatch);
  MESSAGE("distinct client ports for " << hits << " requests: " << ports.size());
  CHECK(ports.size() <= static_cast<size_t>(2 * kPerBatch));
}

TEST_CASE("max_connections_per_host caps parallel connections") {
  TestServer server;
  std::atomic<int> concurrent{0};
  std::atomic<int> peak{0};
  server.svr.Post("/hook", [&](const httplib::Request&, httplib::Response& res) {
    int now = ++concurrent;
    int prev = peak.load();
    while (now > prev && !peak.compare_exchange_weak(prev, now)) {
    }
    std::this_thread::sleep_for(50ms);
    --concurrent;
    res.status = 204;
  });
  server.start();

  Collector collector;
  Sender::Options options;
  options.max_connections_per_host = 2;
  Sender sender(options, collector.sink());
  std::vector<DeliveryJob> jobs;
  for (uint64_t tag = 0; tag < 8; ++tag) jobs.push_back(make_job(tag, server.url("/hook")));
  sender.submit(std::move(jobs));
  auto results = collector.wait_for(8);
  for (const auto& r : results) CHECK(r.status_code == 204);
  CHECK(peak.load() <= 2);
}

TEST_CASE("stop(): in-flight transfers are aborted at the drain bound, one result each") {
  TestServer server;
  Gate gate;
  std::atomic<int> arrived{0};
  server.svr.Post("/hang", [&](const httplib::Request&, httplib::Response& res) {
    ++arrived;
    gate.wait_for(5000ms);
    res.status = 200;
  });
  server.start();

  Collector collector;
  Sender sender({}, collector.sink());
  std::vector<DeliveryJob> jobs;
  for (uint64_t tag = 0; tag < 5; ++tag) jobs.push_back(make_job(tag, server.url("/hang")));
  sender.submit(std::move(jobs));
  REQUIRE(wait_until([&] { return arrived.load() == 5; }, kWait));
  CHECK(sender.in_flight() == 5);

  auto start = SteadyClock::now();
  sender.stop(300);
  int64_t elapsed = ms_since(start);
  CHECK(elapsed >= 250);
  CHECK(elapsed < 1000);

  auto results = collector.snapshot();  // stop() returns only after every result was delivered
  CHECK(results.size() == 5);
  CHECK(count_tags(results).size() == 5);
  for (const auto& r : results) {
    CHECK(r.status_code == 0);
    CHECK(r.error == "aborted at shutdown");
    CHECK(r.aborted);
  }
  CHECK(sender.in_flight() == 0);
  sender.stop(0);  // idempotent
  CHECK(collector.snapshot().size() == 5);
  gate.release();
}

TEST_CASE("stop(): transfers that finish within the drain bound succeed") {
  TestServer server;
  std::atomic<int> arrived{0};
  server.svr.Post("/slowish", [&](const httplib::Request&, httplib::Response& res) {
    ++arrived;
    std::this_thread::sleep_for(200ms);
    res.status = 200;
  });
  server.start();

  Collector collector;
  Sender sender({}, collector.sink());
  std::vector<DeliveryJob> jobs;
  for (uint64_t tag = 0; tag < 5; ++tag) jobs.push_back(make_job(tag, server.url("/slowish")));
  sender.submit(std::move(jobs));
  REQUIRE(wait_until([&] { return arrived.load() == 5; }, kWait));

  auto start = SteadyClock::now();
  sender.stop(5000);
  CHECK(ms_since(start) < 1000);  // returns once the transfers are done, not at the bound
  auto results = collector.snapshot();
  CHECK(results.size() == 5);
  for (const auto& r : results) {
    CHECK(r.status_code == 200);
    CHECK_FALSE(r.aborted);  // finished within the bound: real attempts
  }
  CHECK(sender.in_flight() == 0);
}

TEST_CASE("stop(0) right after submit: every job gets exactly one result") {
  TestServer server;
  server.svr.Post("/hook",
                  [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
  server.start();

  Collector collector;
  Sender sender({}, collector.sink());
  std::vector<DeliveryJob> jobs;
  for (uint64_t tag = 0; tag < 100; ++tag) jobs.push_back(make_job(tag, server.url("/hook")));
  sender.submit(std::move(jobs));
  sender.stop(0);
  auto results = collector.snapshot();
  REQUIRE(results.size() == 100);
  auto counts = count_tags(results);
  CHECK(counts.size() == 100);
  for (const auto& r : results) {
    bool ok =
        r.status_code == 204 ||
        (r.status_code == 0 && (r.error == "sender stopped" || r.error == "aborted at shutdown"));
    CHECK_MESSAGE(ok, "tag " << r.tag << ": " << r.status_code << " " << r.error);
    CHECK(r.aborted == (r.status_code == 0));
  }
  CHECK(sender.in_flight() == 0);
}

TEST_CASE("submit after stop: immediate 'sender stopped' results") {
  Collector collector;
  Sender sender({}, collector.sink());
  sender.stop(0);
  sender.submit({make_job(1, "http://127.0.0.1:1/"), make_job(2, "http://127.0.0.1:1/")});
  auto results = collector.snapshot();  // delivered before submit() returned
  REQUIRE(results.size() == 2);
  for (const auto& r : results) {
    CHECK(r.status_code == 0);
    CHECK(r.error == "sender stopped");
    CHECK(r.aborted);
  }
  CHECK(count_tags(results).size() == 2);
  CHECK(sender.in_flight() == 0);
}

TEST_CASE("destructor aborts in-flight transfers promptly") {
  TestServer server;
  Gate gate;
  std::atomic<int> arrived{0};
  server.svr.Post("/hang", [&](const httplib::Request&, httplib::Response& res) {
    ++arrived;
    gate.wait_for(5000ms);
    res.status = 200;
  });
  server.start();

  Collector collector;
  auto start = SteadyClock::now();
  {
    Sender sender({}, collector.sink());
    sender.submit({make_job(1, server.url("/hang")), make_job(2, server.url("/hang"))});
    REQUIRE(wait_until([&] { return arrived.load() == 2; }, kWait));
  }
  CHECK(ms_since(start) < 1000);
  auto results = collector.snapshot();
  REQUIRE(results.size() == 2);
  for (const auto& r : results) {
    CHECK(r.error == "aborted at shutdown");
    CHECK(r.aborted);
  }
  gate.release();
}

TEST_CASE("a throwing sink does not stop the loop") {
  TestServer server;
  server.svr.Post("/hook",
                  [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
  server.start();

  std::mutex mu;
  std::condition_variable cv;
  std::vector<uint64_t> tags;
  Sender sender({}, [&](std::vector<DeliveryResult>&& batch) {
    {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& r : batch) tags.push_back(r.tag);
    }
    cv.notify_all();
    throw std::runtime_error("sink failure");
  });
  for (uint64_t tag = 1; tag <= 2; ++tag) {
    sender.submit({make_job(tag, server.url("/hook"))});
    std::unique_lock<std::mutex> lock(mu);
    REQUIRE(cv.wait_for(lock, kWait, [&] { return tags.size() == tag; }));
  }
  CHECK(tags == std::vector<uint64_t>{1, 2});
}

// ---------------------------------------------------------------------------------------------
// The SSRF guard

namespace {

constexpr const char* kRefused = "refused by the SSRF guard: ";

std::shared_ptr<const AddressPolicy> policy(const std::vector<std::string>& allow) {
  std::string error;
  auto p = AddressPolicy::parse(allow, &error);
  REQUIRE_MESSAGE(p.has_value(), error);
  return std::make_shared<const AddressPolicy>(std::move(*p));
}

Sender::Options guarded(const std::vector<std::string>& allow) {
  Sender::Options options;
  options.address_policy = policy(allow);
  return options;
}

// A receiver on `host` (127.0.0.1 or ::1) that counts every request it sees, on any path.
struct CountingServer {
  httplib::Server svr;
  std::thread thread;
  std::atomic<int> requests{0};
  int port = -1;

  // Returns false if `host` cannot be bound (no IPv6 on this machine).
  bool start(const std::string& host) {
    svr.set_pre_routing_handler([this](const httplib::Request&, httplib::Response& res) {
      ++requests;
      res.status = 204;
      return httplib::Server::HandlerResponse::Handled;
    });
    port = svr.bind_to_any_port(host);
    if (port <= 0) return false;
    thread = std::thread([this] { svr.listen_after_bind(); });
    REQUIRE(wait_until([this] { return svr.is_running(); }, kWait));
    return true;
  }
  ~CountingServer() {
    svr.stop();
    if (thread.joinable()) thread.join();
  }
  std::string url(const std::string& host) const {
    return "http://" + host + ":" + std::to_string(port) + "/hook";
  }
};

// Every spelling of IPv4 loopback curl accepts, with the one address each is connected to.
const std::vector<std::string> kLoopbackV4Spellings = {
    "127.0.0.1",
    "localhost",
    "LOCALHOST",
    "LocalHost",
    "127.1",
    "127.0.1",
    "2130706433",
    "0x7f000001",
    "0X7F000001",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "017700000001",
    "127.000.000.001",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[0:0:0:0:0:ffff:127.0.0.1]",
    "[::FFFF:127.0.0.1]",
};

}  // namespace

TEST_CASE("SSRF guard: every spelling of IPv4 loopback is refused before any request") {
  CountingServer server;
  REQUIRE(server.start("127.0.0.1"));
  for (const std::string& host : kLoopbackV4Spellings) {
    CAPTURE(host);
    DeliveryResult r = send_one(make_job(1, server.url(host)), guarded({}));
    CHECK(r.status_code == 0);
    CHECK(r.error.starts_with(kRefused));
    CHECK(r.error.find("loopback") != std::string::npos);
    CHECK(r.body.empty());
    CHECK_FALSE(r.aborted);  // a real, failed attempt
  }
  CHECK(server.requests == 0);

  // The same spellings reach the receiver once loopback is allowed: the refusals above were
  // the guard's doing, not curl failing to read the URL.
  for (const std::string& host : kLoopbackV4Spellings) {
    CAPTURE(host);
    DeliveryResult r = send_one(make_job(2, server.url(host)), guarded({"127.0.0.0/8"}));
    CHECK(r.status_code == 204);
    CHECK(r.error.empty());
  }
  CHECK(server.requests == static_cast<int>(kLoopbackV4Spellings.size()));
}

TEST_CASE("SSRF guard: the rest of 127/8 and *.localhost are loopback too") {
  CountingServer server;
  REQUIRE(server.start("127.0.0.1"));
  for (const std::string host :
       {"127.0.0.2", "127.255.255.254", "2130706434", "app.localhost", "[::127.0.0.1]"}) {
    CAPTURE(host);
    DeliveryResult r = send_one(make_job(1, server.url(host)), guarded({"10.0.0.0/8"}));
    CHECK(r.status_code == 0);
    CHECK(r.error.starts_with(kRefused));
    CHECK(r.error.find("loopback") != std::string::npos);
  }
  CHECK(server.requests == 0);
}

TEST_CASE("SSRF guard: the refusal names the address connected to and its range") {
  CountingServer server;
  REQUIRE(server.start("127.0.0.1"));
  DeliveryResult r = send_one(make_job(1, server.url("2130706433")), guarded({"10.0.0.0/8"}));
  CHECK(r.error ==
        "refused by the SSRF guard: 127.0.0.1 is a loopback address "
        "(HERALD_ALLOW_PRIVATE_CIDRS can allow it)");
  r = send_one(make_job(2, server.url("[::ffff:127.0.0.1]")), guarded({}));
  CHECK(r.error ==
        "refused by the SSRF guard: ::ffff:127.0.0.1 is the IPv4-mapped form of 127.0.0.1, a "
        "loopback address (HERALD_ALLOW_PRIVATE_CIDRS can allow it)");
  CHECK(server.requests == 0);
}

TEST_CASE("SSRF guard: allowed CIDRs are exact") {
  CountingServer server;
  REQUIRE(server.start("127.0.0.1"));
  // Blocks that do not contain 127.0.0.1 open nothing for it.
  for (const auto& allow : std::vector<std::vector<std::string>>{
           {"10.0.0.0/8"}, {"127.0.0.2/32"}, {"::1/128"}, {"::/0"}, {"128.0.0.0/1"}}) {
    CAPTURE(allow.front());
    DeliveryResult r = send_one(make_job(1, server.url("127.0.0.1")), guarded(allow));
    CHECK(r.error.starts_with(kRefused));
  }
  CHECK(server.requests == 0);
  for (const auto& allow : std::vector<std::vector<std::string>>{
           {"127.0.0.1/32"}, {"127.0.0.0/8"}, {"10.0.0.0/8", "127.0.0.0/31"}, {"0.0.0.0/0"}}) {
    CAPTURE(allow.front());
    DeliveryResult r = send_one(make_job(2, server.url("127.0.0.1")), guarded(allow));
    CHECK(r.status_code == 204);
  }
  CHECK(server.requests == 4);
}

TEST_CASE("SSRF guard: IPv6 loopback and unspecified addresses are refused") {
  CountingServer server;
  if (!server.start("::1")) {
    MESSAGE("no IPv6 loopback on this machine: [::1] spellings not tested");
    return;
  }
  const std::vector<std::string> spellings = {"[::1]", "[0:0:0:0:0:0:0:1]", "[::0001]", "[::]"};
  for (const std::string& host : spellings) {
    CAPTURE(host);
    DeliveryResult r = send_one(make_job(1, server.url(host)), guarded({"127.0.0.0/8"}));
    CHECK(r.status_code == 0);
    CHECK(r.error.starts_with(kRefused));
    CHECK_FALSE(r.aborted);
  }
  CHECK(server.requests == 0);

  DeliveryResult r = send_one(make_job(2, server.url("[::1]")), guarded({"::1/128"}));
  CHECK(r.status_code == 204);
  CHECK(server.requests == 1);
}

TEST_CASE("SSRF guard: unspecified 0.0.0.0 (which Linux connects to loopback) is refused") {
  CountingServer server;
  REQUIRE(server.start("127.0.0.1"));
  for (const std::string host : {"0.0.0.0", "0", "0x0", "[::ffff:0.0.0.0]"}) {
    CAPTURE(host);
    DeliveryResult r = send_one(make_job(1, server.url(host)), guarded({"127.0.0.0/8"}));
    CHECK(r.status_code == 0);
    CHECK(r.error.starts_with(kRefused));
    CHECK(r.error.find("unspecified") != std::string::npos);
  }
  CHECK(server.requests == 0);
}

TEST_CASE("SSRF guard: link-local metadata and private addresses fail at once, unconnected") {
  // No listener needed: the guard refuses before connecting, so there is no timeout to wait.
  for (const std::string host :
       {"169.254.169.254", "10.0.0.1", "192.168.1.1", "172.16.0.1", "100.64.0.1", "[fd00::1]",
        "[fe80::1]", "[ff02::1]", "224.0.0.1", "[::ffff:169.254.169.254]", "2852039166"}) {
    CAPTURE(host);
    DeliveryJob job = make_job(1, "http://" + host + "/latest/meta-data/");
    job.connect_timeout_ms = 5000;
    const auto start = SteadyClock::now();
    DeliveryResult r = send_one(job, guarded({"127.0.0.0/8"}));
    CHECK(r.status_code == 0);
    CHECK(r.error.starts_with(kRefused));
    CHECK(ms_since(start) < 1000);
  }
  DeliveryResult r = send_one(make_job(2, "http://169.254.169.254/"), guarded({}));
  CHECK(r.error.find("169.254.169.254 is the link-local cloud metadata address") !=
        std::string::npos);
}

TEST_CASE("SSRF guard: no TCP connection is even opened to a refused address") {
  // A bare listening socket: a connection would complete into its backlog without accept().
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  REQUIRE(listener >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(::listen(listener, 16) == 0);
  socklen_t len = sizeof(addr);
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const std::string port = std::to_string(ntohs(addr.sin_port));

  DeliveryResult r = send_one(make_job(1, "http://localhost:" + port + "/"), guarded({}));
  CHECK(r.error.starts_with(kRefused));
  CHECK(::accept(listener, nullptr, nullptr) < 0);
  CHECK((errno == EAGAIN || errno == EWOULDBLOCK));

  // Control: with loopback allowed the same listener does see a connection (the transfer then
  // times out, as nobody answers).
  DeliveryJob job = make_job(2, "http://127.0.0.1:" + port + "/");
  job.timeout_ms = 300;
  r = send_one(job, guarded({"127.0.0.0/8"}));
  CHECK(r.status_code == 0);
  int accepted = ::accept(listener, nullptr, nullptr);
  CHECK(accepted >= 0);
  if (accepted >= 0) ::close(accepted);
  ::close(listener);
}

TEST_CASE("SSRF guard: a refused address, then an allowed one that fails, reports both") {
  std::string port;
  {
    CountingServer server;
    REQUIRE(server.start("127.0.0.1"));
    port = std::to_string(server.port);
  }
  // curl resolves localhost to ::1 and 127.0.0.1 itself; only the latter is allowed, and
  // nothing listens there any more.
  DeliveryResult r =
      send_one(make_job(1, "http://localhost:" + port + "/"), guarded({"127.0.0.0/8"}));
  CHECK(r.status_code == 0);
  MESSAGE("error: " << r.error);
  CHECK(r.error.starts_with("refused by the SSRF guard: ::1 is a loopback address"));
  CHECK(r.error.find("; then: ") != std::string::npos);
}

TEST_CASE("SSRF guard: proxies from the environment are not used") {
  CountingServer target;
  REQUIRE(target.start("127.0.0.1"));
  CountingServer proxy;
  REQUIRE(proxy.start("127.0.0.1"));
  const std::string proxy_url = "http://127.0.0.1:" + std::to_string(proxy.port);
  ::setenv("http_proxy", proxy_url.c_str(), 1);
  ::setenv("ALL_PROXY", proxy_url.c_str(), 1);
  DeliveryResult r = send_one(make_job(1, target.url("127.0.0.1")), guarded({"127.0.0.0/8"}));
  DeliveryResult unguarded = send_one(make_job(2, target.url("127.0.0.1")));
  ::unsetenv("http_proxy");
  ::unsetenv("ALL_PROXY");
  CHECK(r.status_code == 204);
  CHECK(unguarded.status_code == 204);
  CHECK(target.requests == 2);
  CHECK(proxy.requests == 0);
}

TEST_CASE("SSRF guard: redirects to loopback are not followed") {
  CountingServer inner;
  REQUIRE(inner.start("127.0.0.1"));
  TestServer outer;
  outer.svr.Post("/hook", [&](const httplib::Request&, httplib::Response& res) {
    res.set_redirect(inner.url("127.0.0.1"), 307);
  });
  outer.start();
  DeliveryResult r = send_one(make_job(1, outer.url("/hook")), guarded({"127.0.0.0/8"}));
  CHECK(r.status_code == 307);
  CHECK(inner.requests == 0);
}
