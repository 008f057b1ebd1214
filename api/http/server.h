#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/http/message.h"

namespace herald::http {

// What one client may cost the server. A connection costs a descriptor and a small buffer, never
// a thread: requests are read and replies written by one event loop, and only a request read
// whole reaches a worker thread.
struct Limits {
  size_t max_body_bytes = 1 << 20;      // larger bodies: 413, without reading them
  size_t max_header_bytes = 64 * 1024;  // request line and headers together; beyond: 431
  size_t max_header_count = 100;        // beyond: 431
  int header_timeout_ms = 10'000;       // from a request's first byte to its last header: closed
  int body_timeout_ms = 60'000;         // from the last header to the body's last byte: closed
  int idle_timeout_ms = 30'000;         // a connection waiting for a request is closed after
  int write_timeout_ms = 30'000;        // a reply the client does not read is dropped after
  size_t max_connections = 10'000;      // open at once, from everyone; beyond: 503
  size_t max_connections_per_client = 256;  // open at once from one address; beyond: 503
  int workers = 64;                         // threads running handlers (they may block on storage)
  int shutdown_grace_ms = 5'000;            // how long stop() lets requests being handled finish
};

// A registered route as it was registered: its method and its path pattern.
struct RouteInfo {
  std::string method;
  std::string pattern;
};

// The body and headers of a reply the server makes itself (a malformed request, a limit, no
// route): `code` is a short word, `detail` a sentence.
using ErrorRenderer =
    std::function<Response(int status, std::string_view code, std::string_view detail)>;

// An HTTP/1.1 server over Boost.Asio and Boost.Beast: one event loop thread owns every
// connection; handlers run on a pool of worker threads. A request reaches its handler only once
// it has been read whole, within its deadlines, and passed the checks against request smuggling
// (Content-Length with Transfer-Encoding, a repeated or list-valued Content-Length, a
// Transfer-Encoding other than chunked, malformed chunks: 400, and the connection is closed).
// Keep-alive and pipelining are served in order, one request of a connection at a time.
class Server {
 public:
  explicit Server(Limits limits);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Registers a handler. `pattern` is a regex over the whole decoded path; its captures are the
  // request's matches. HEAD is served by the GET handler, without the body. Routes are tried in
  // the order registered; register before listen().
  void route(const std::string& method, const std::string& pattern, Handler handler);
  void set_error_renderer(ErrorRenderer render);
  // Every route registered so far, in the order they are tried.
  std::vector<RouteInfo> routes() const;

  // Binds and listens (SO_REUSEADDR, never SO_REUSEPORT); port 0 picks a free port. Returns the
  // bound port, or -1. Raises the process's open-file limit to its hard limit, as each
  // connection holds a descriptor.
  int bind(const std::string& host, int port);
  // Serves until stop(); false if not bound. Returns once every connection is closed: requests
  // being handled get their replies (for up to shutdown_grace_ms), idle connections are closed.
  bool listen();
  // Stops accepting; safe from any thread, before or during listen().
  void stop();
  bool running() const;
  const Limits& limits() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::http
