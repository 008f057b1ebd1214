// Tests of the API's HTTP server (api/http) on its own: a real server on a loopback port, driven
// over raw sockets by clients that send what an HTTP library would refuse to — smuggling
// attempts, malformed chunks, slow and idle connections, too many connections.
#include "api/http/server.h"

#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/raw_client.h"
#include "tests/support/wait.h"

using namespace herald;
using namespace herald::test;

namespace {

// A server with small limits and two routes: POST /things counts its calls and echoes the body
// it was given; GET /health answers 204.
struct Fixture {
  explicit Fixture(http::Limits limits = small_limits()) : server(limits) {
    server.route("POST", "/things", [this](const http::Request& req, http::Response& res) {
      ++handled;
      res.set_content("got:" + req.body, "text/plain");
    });
    server.route("GET", "/health",
                 [](const http::Request&, http::Response& res) { res.status = 204; });
    server.route("GET", "/items/([a-z]+)", [](const http::Request& req, http::Response& res) {
      res.set_content(req.matches[1].str() + "|" + req.param("q"), "text/plain");
    });
    port = server.bind("127.0.0.1", 0);
    REQUIRE(port > 0);
    thread = std::thread([this] { server.listen(); });
    REQUIRE(wait_until([this] { return server.running(); }));
  }
  ~Fixture() {
    server.stop();
    thread.join();
  }

  static http::Limits small_limits() {
    http::Limits l;
    l.max_body_bytes = 1024;
    l.max_header_bytes = 2048;
    l.max_header_count = 20;
    l.header_timeout_ms = 400;
    l.body_timeout_ms = 400;
    l.idle_timeout_ms = 400;
    l.max_connections = 50;
    l.max_connections_per_client = 10;
    l.workers = 4;
    return l;
  }

  std::string exchange(const std::string& request) { return raw_exchange(port, request, 2000); }

  http::Server server;
  int port = -1;
  std::atomic<int> handled{0};
  std::thread thread;
};

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

size_t count_of(const std::string& s, std::string_view what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("a well-formed request reaches its route, with its captures and query decoded") {
  Fixture f;
  const auto out =
      f.exchange("GET /items/abc?q=a%20b+c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(starts_with(out, "HTTP/1.1 200"));
  CHECK(out.find("abc|a b c") != std::string::npos);
  CHECK(starts_with(f.exchange("GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
                    "HTTP/1.1 404"));
}

TEST_CASE("requests whose framing two readers could disagree on are refused, unhandled") {
  Fixture f;
  const std::vector<std::pair<std::string, std::string>> smuggling = {
      {"Content-Length with Transfer-Encoding",
       "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"two Content-Lengths", "Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd"},
      {"two differing Content-Lengths", "Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"},
      {"a list-valued Content-Length", "Content-Length: 4, 4\r\n\r\nabcd"},
      {"a signed Content-Length", "Content-Length: +4\r\n\r\nabcd"},
      {"Transfer-Encoding gzip", "Transfer-Encoding: gzip\r\n\r\nabcd"},
      {"chunked twice", "Transfer-Encoding: chunked, chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"},
      {"two Transfer-Encodings",
       "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"a chunk size that is not hex", "Transfer-Encoding: chunked\r\n\r\nzz\r\nabcd\r\n0\r\n\r\n"},
      {"a chunk without its CRLF", "Transfer-Encoding: chunked\r\n\r\n4\r\nabcdXY0\r\n\r\n"},
  };
  for (const auto& [what, rest] : smuggling) {
    CAPTURE(what);
    // A second request follows on the same connection: it must not be read as one.
    const auto out = f.exchange("POST /things HTTP/1.1\r\nHost: x\r\n" + rest +
                                "POST /things HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    CHECK(starts_with(out, "HTTP/1.1 400"));
    CHECK(count_of(out, "HTTP/1.1 ") == 1);
  }
  const auto old = f.exchange(
      "POST /things HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n");
  CHECK(starts_with(old, "HTTP/1.1 400"));
  CHECK(f.handled == 0);
}

TEST_CASE("a chunked body reaches the handler de-chunked") {
  Fixture f;
  const auto out = f.exchange(
      "POST /things HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
      "3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n");
  CHECK(starts_with(out, "HTTP/1.1 200"));
  CHECK(out.find("got:abcde") != std::string::npos);
  CHECK(f.handled == 1);
}

TEST_CASE("pipelined requests are answered in order on one connection") {
  Fixture f;
  RawClient c(f.port);
  REQUIRE(c.connected());
  std::string batch;
  for (int i = 0; i < 5; ++i) {
    batch += "POST /things HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n" + std::to_string(i);
  }
  batch += "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  REQUIRE(c.send(batch));
  const auto out = c.read_all(2000);
  size_t at = 0;
  for (int i = 0; i < 5; ++i) {
    CAPTURE(i);
    const size_t next = out.find("got:" + std::to_string(i), at);
    REQUIRE(next != std::string::npos);
    at = next;
  }
  CHECK(out.find("HTTP/1.1 204", at) != std::string::npos);
  CHECK(f.handled == 5);
}

TEST_CASE("limits on a request's size are answered without reading the rest") {
  Fixture f;
  // 413 on the declared length alone: the body is never sent.
  const auto big = f.exchange("POST /things HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
  CHECK(starts_with(big, "HTTP/1.1 413"));
  // A chunked body that grows past the limit.
  const auto chunks = f.exchange(
      "POST /things HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
      "\r\n\r\n800\r\n" +
      std::string(0x800, 'a') + "\r\n0\r\n\r\n");
  CHECK(starts_with(chunks, "HTTP/1.1 413"));
  std::string many = "GET /health HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 30; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  CHECK(starts_with(f.exchange(many + "\r\n"), "HTTP/1.1 431"));
  const auto large = f.exchange(
      "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'b') + "\r\n\r\n");
  CHECK(starts_with(large, "HTTP/1.1 431"));
  CHECK(f.handled == 0);
}

TEST_CASE("Expect: 100-continue is answered before the body is sent") {
  Fixture f;
  RawClient c(f.port);
  REQUIRE(c.send(
      "POST /things HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"));
  CHECK(starts_with(c.read_until("\r\n\r\n", 2000), "HTTP/1.1 100 Continue"));
  REQUIRE(c.send("xyz"));
  CHECK(c.read_until("got:xyz", 2000).find("got:xyz") != std::string::npos);
}

TEST_CASE("slow and idle clients are closed by their deadlines, never handled") {
  Fixture f;
  SUBCASE("headers that never end") {
    RawClient c(f.port);
    REQUIRE(c.send("POST /things HTTP/1.1\r\nHost: x\r\n"));
    const auto start = SteadyClock::now();
    // One more header line every 100 ms keeps the connection busy but not the deadline away.
    bool closed = false;
    for (int i = 0; i < 20 && !closed; ++i) {
      if (!c.send("X-Slow" + std::to_string(i) + ": 1\r\n")) break;
      closed = c.closed_within(100);
    }
    CHECK((closed || c.closed_within(1000)));
    CHECK(ms_since(start) < 1500);
  }
  SUBCASE("a body that never ends") {
    RawClient c(f.port);
    REQUIRE(c.send("POST /things HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"));
    CHECK(c.closed_within(1500));
  }
  SUBCASE("a connection that sends nothing") {
    RawClient c(f.port);
    CHECK(c.closed_within(1500));
  }
  SUBCASE("a kept-alive connection that sends nothing more") {
    RawClient c(f.port);
    REQUIRE(c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
    CHECK(starts_with(c.read_until("\r\n\r\n", 2000), "HTTP/1.1 204"));
    CHECK(c.closed_within(1500));
  }
  CHECK(f.handled == 0);
}

TEST_CASE("connections beyond a client's share or the total are refused with 503") {
  http::Limits limits = Fixture::small_limits();
  limits.idle_timeout_ms = 30'000;  // the connections held must stay open throughout
  Fixture f(limits);
  std::vector<std::unique_ptr<RawClient>> held;
  for (int i = 0; i < 10; ++i) {
    held.push_back(std::make_unique<RawClient>(f.port));
    REQUIRE(held.back()->connected());
  }
  // The server counts a connection once it has accepted it: let it take all ten.
  RawClient probe(f.port);
  const auto refused = probe.read_all(2000);
  CHECK(starts_with(refused, "HTTP/1.1 503"));
  CHECK(refused.find("Retry-After: 1") != std::string::npos);
  // Another address is served meanwhile.
  RawClient other(f.port, "127.77.1.1");
  REQUIRE(other.send("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  CHECK(starts_with(other.read_all(2000), "HTTP/1.1 204"));
  // One of the ten leaves: that address may connect again.
  held.pop_back();
  CHECK(wait_until([&] {
    RawClient again(f.port);
    again.send("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    return starts_with(again.read_all(2000), "HTTP/1.1 204");
  }));

  // The total: 50, from addresses with fewer than ten each.
  for (int i = 0; held.size() < 50; ++i) {
    held.push_back(std::make_unique<RawClient>(f.port, "127.77.2." + std::to_string(1 + i / 8)));
    REQUIRE(held.back()->connected());
  }
  RawClient over(f.port, "127.77.3.1");
  CHECK(starts_with(over.read_all(2000), "HTTP/1.1 503"));
}

TEST_CASE("stop() returns promptly with idle connections open, and answers requests in flight") {
  http::Limits limits = Fixture::small_limits();
  limits.idle_timeout_ms = 60'000;
  auto f = std::make_unique<Fixture>(limits);
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; i < 5; ++i) idle.push_back(std::make_unique<RawClient>(f->port));
  RawClient kept(f->port);
  REQUIRE(kept.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(starts_with(kept.read_until("\r\n\r\n", 2000), "HTTP/1.1 204"));
  const auto start = SteadyClock::now();
  f.reset();
  CHECK(ms_since(start) < 1000);
  for (auto& c : idle) CHECK(c->closed_within(1000));
  CHECK(kept.closed_within(1000));
}
