// Beast's string_view is std::string_view here, as in the rest of herald.
#define BOOST_BEAST_USE_STD_STRING_VIEW
#include "api/http/server.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <mutex>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

namespace herald::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

using std::chrono::milliseconds;

// A client that has been answered and is being closed is read, and what it sends thrown away,
// for at most this long: closing with its bytes unread would reset the connection and could
// destroy the answer before the client reads it.
constexpr auto kLingerTime = std::chrono::seconds(1);
constexpr size_t kLingerBytes = 1 << 20;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

struct Route {
  RouteInfo info;
  std::regex pattern;
  Handler handler;
};

Response plain_error(int status, std::string_view code, std::string_view detail) {
  Response r;
  r.status = status;
  r.set_content(std::string(code) + ": " + std::string(detail) + "\n", "text/plain");
  return r;
}

void raise_open_file_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// Why a request's framing is ambiguous, which is how requests are smuggled past a proxy that
// reads them differently; nullopt when it is not. Beast itself refuses Content-Length together
// with Transfer-Encoding, differing Content-Lengths and malformed chunks.
std::optional<std::string> framing_problem(const bhttp::request_parser<bhttp::string_body>& p) {
  const auto& req = p.get();
  auto lengths = req.equal_range(bhttp::field::content_length);
  if (std::distance(lengths.first, lengths.second) > 1) {
    return "more than one Content-Length header";
  }
  if (lengths.first != lengths.second) {
    const auto v = lengths.first->value();
    if (v.empty() || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return "Content-Length must be one decimal number";
  }
  auto codings = req.equal_range(bhttp::field::transfer_encoding);
  const auto count = std::distance(codings.first, codings.second);
  if (count > 0) {
    if (req.version() < 11) return "Transfer-Encoding in an HTTP/1.0 request";
    if (count > 1 || !beast::iequals(trim(codings.first->value()), "chunked")) {
      return "the only Transfer-Encoding accepted is chunked";
    }
  }
  return std::nullopt;
}

bool is_http_error(const error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category();
}

}  // namespace

class Connection;

struct Server::Impl {
  explicit Impl(Limits l) : limits(l), workers(static_cast<size_t>(std::max(1, l.workers))) {}

  void accept();
  void admit(tcp::socket socket);
  void begin_stop();
  void check_drained();
  Response handle(Request& req) const;

  Limits limits;
  std::vector<Route> routes;
  ErrorRenderer render = plain_error;
  std::atomic<bool> stopping{false};
  std::atomic<bool> running{false};
  std::mutex mu;  // guards the two below; connections end on whichever thread lets go last
  std::unordered_map<std::string, size_t> per_client;
  std::unordered_set<Connection*> connections;
  asio::thread_pool workers;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_pause{io};
  asio::steady_timer drain_timer{io};
  std::chrono::steady_clock::time_point drain_deadline;
};

// One client connection, driven by the event loop thread; its request runs on a worker.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server::Impl& s, tcp::socket socket, std::string client)
      : s_(s), stream_(std::move(socket)), client_(std::move(client)) {
    // Replies are small and written whole: none may wait on Nagle's algorithm.
    error_code ignored;
    stream_.socket().set_option(tcp::no_delay(true), ignored);
  }
  ~Connection() {
    std::lock_guard lock(s_.mu);
    s_.connections.erase(this);
    auto it = s_.per_client.find(client_);
    if (it != s_.per_client.end() && --it->second == 0) s_.per_client.erase(it);
  }

  void start() { wait_for_request(); }

  // At shutdown: a connection with no request being handled is closed now.
  void close_unless_busy() {
    if (phase_ == Phase::kWaiting || phase_ == Phase::kReading) close();
  }

 private:
  enum class Phase { kWaiting, kReading, kHandling, kWriting, kClosing };

  void wait_for_request() {
    phase_ = Phase::kWaiting;
    if (s_.stopping) return close();
    if (buffer_.size() > 0) return read_header();  // a pipelined request has begun
    stream_.expires_after(milliseconds(s_.limits.idle_timeout_ms));
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](error_code ec, size_t n) {
                              if (ec) return self->close();  // idle too long, gone, or stopping
                              self->buffer_.commit(n);
                              self->read_header();
                            });
  }

  // The request has begun: its line and headers must arrive within the header deadline.
  void read_header() {
    phase_ = Phase::kReading;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(s_.limits.max_header_bytes));
    parser_->body_limit(static_cast<std::uint64_t>(s_.limits.max_body_bytes));
    stream_.expires_after(milliseconds(s_.limits.header_timeout_ms));
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = shared_from_this()](error_code ec, size_t) {
                               if (ec) return self->fail(ec);
                               self->on_header();
                             });
  }

  void on_header() {
    if (auto problem = framing_problem(*parser_)) return refuse(400, "bad_request", *problem);
    const auto& req = parser_->get();
    if (static_cast<size_t>(std::distance(req.begin(), req.end())) > s_.limits.max_header_count) {
      return refuse(431, "headers_too_large",
                    "more than " + std::to_string(s_.limits.max_header_count) + " request headers");
    }
    if (auto n = parser_->content_length(); n && *n > s_.limits.max_body_bytes) {
      return refuse(413, "payload_too_large", too_large());
    }
    if (!parser_->is_done() && beast::iequals(req[bhttp::field::expect], "100-continue")) {
      stream_.expires_after(milliseconds(s_.limits.write_timeout_ms));
      asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                        [self = shared_from_this()](error_code ec, size_t) {
                          if (ec) return self->close();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    if (parser_->is_done()) return dispatch();
    stream_.expires_after(milliseconds(s_.limits.body_timeout_ms));
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](error_code ec, size_t) {
                        if (ec) return self->fail(ec);
                        self->dispatch();
                      });
  }

  std::string too_large() const {
    return "request body exceeds " + std::to_string(s_.limits.max_body_bytes) + " bytes";
  }

  // A read ended in error: the client left or ran out of time (Beast has closed the socket
  // then), or sent what HTTP does not allow, which is answered before closing.
  void fail(const error_code& ec) {
    if (!is_http_error(ec) || ec == bhttp::error::end_of_stream ||
        ec == bhttp::error::partial_message) {
      return close();
    }
    if (ec == bhttp::error::header_limit) {
      return refuse(431, "headers_too_large",
                    "the request line and headers exceed " +
                        std::to_string(s_.limits.max_header_bytes) + " bytes");
    }
    if (ec == bhttp::error::body_limit) return refuse(413, "payload_too_large", too_large());
    if (ec == bhttp::error::bad_content_length || ec == bhttp::error::bad_transfer_encoding) {
      return refuse(400, "bad_request",
                    "Content-Length and Transfer-Encoding together, or either malformed");
    }
    if (ec == bhttp::error::bad_chunk || ec == bhttp::error::bad_chunk_extension) {
      return refuse(400, "bad_request", "malformed chunked body");
    }
    refuse(400, "bad_request", "malformed HTTP request (" + ec.message() + ")");
  }

  void dispatch() {
    phase_ = Phase::kHandling;
    stream_.expires_never();
    auto msg = parser_->release();
    parser_.reset();
    keep_alive_ = msg.keep_alive();
    head_ = msg.method() == bhttp::verb::head;
    auto req = std::make_shared<Request>();
    req->method = std::string(msg.method_string());
    req->target = std::string(msg.target());
    const std::string_view target(req->target);
    const size_t q = target.find('?');
    req->path = percent_decode(target.substr(0, q), false);
    if (q != std::string_view::npos) req->query = parse_query(target.substr(q + 1));
    for (const auto& f : msg) req->headers.emplace_back(f.name_string(), f.value());
    req->body = std::move(msg.body());
    req->remote_address = client_;
    asio::post(s_.workers, [self = shared_from_this(), req] {
      Response res = self->s_.handle(*req);
      asio::post(self->stream_.get_executor(), [self, res = std::move(res)]() mutable {
        self->write(std::move(res), self->keep_alive_);
      });
    });
  }

  // Answers a request that will not be handled, then closes: what follows it on the
  // connection cannot be trusted to start where this one ends.
  void refuse(int status, std::string_view code, const std::string& detail) {
    head_ = false;
    write(s_.render(status, code, detail), false);
  }

  void write(Response r, bool keep) {
    phase_ = Phase::kWriting;
    keep = keep && !s_.stopping;
    res_ = {};
    res_.version(11);
    res_.result(static_cast<unsigned>(r.status));
    for (const auto& [name, value] : r.headers) res_.insert(name, value);
    const bool bodiless = r.status == 204 || r.status == 304 || (r.status >= 100 && r.status < 200);
    if (!bodiless) {
      if (!r.content_type.empty()) res_.set(bhttp::field::content_type, r.content_type);
      res_.body() = std::move(r.body);
    }
    res_.keep_alive(keep);
    if (keep) {
      res_.set(bhttp::field::keep_alive,
               "timeout=" + std::to_string(std::max(1, s_.limits.idle_timeout_ms / 1000)));
    }
    res_.prepare_payload();
    if (head_) res_.body().clear();  // Content-Length stays that of the GET
    stream_.expires_after(milliseconds(s_.limits.write_timeout_ms));
    bhttp::async_write(stream_, res_, [self = shared_from_this(), keep](error_code ec, size_t) {
      if (ec) return self->close();
      if (!keep) return self->linger_close();
      self->wait_for_request();
    });
  }

  void linger_close() {
    phase_ = Phase::kClosing;
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLingerTime);
    discard();
  }

  void discard() {
    buffer_.consume(buffer_.size());
    stream_.async_read_some(buffer_.prepare(16 * 1024),
                            [self = shared_from_this()](error_code ec, size_t n) {
                              self->discarded_ += n;
                              if (ec || self->discarded_ > kLingerBytes) return self->close();
                              self->buffer_.commit(n);
                              self->discard();
                            });
  }

  void close() {
    phase_ = Phase::kClosing;
    stream_.close();
  }

  Server::Impl& s_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> res_;
  std::string client_;
  Phase phase_ = Phase::kWaiting;
  bool keep_alive_ = false;
  bool head_ = false;
  size_t discarded_ = 0;
};

void Server::Impl::accept() {
  acceptor.async_accept([this](error_code ec, tcp::socket socket) {
    if (stopping) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      // Out of descriptors, say: wait a little rather than spin on the same error.
      spdlog::warn("http: cannot accept a connection: {}", ec.message());
      accept_pause.expires_after(milliseconds(100));
      accept_pause.async_wait([this](error_code e) {
        if (!e && !stopping) accept();
      });
      return;
    }
    admit(std::move(socket));
    accept();
  });
}

// Takes a new connection, or answers 503 and closes it when it is over a limit.
void Server::Impl::admit(tcp::socket socket) {
  error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  if (ec) return;
  std::string client = peer.address().to_string();
  std::string refusal;
  std::shared_ptr<Connection> conn;
  {
    std::lock_guard lock(mu);
    size_t& mine = per_client[client];
    if (connections.size() >= limits.max_connections) {
      refusal = "herald has " + std::to_string(connections.size()) +
                " connections open, as many as it takes; try again shortly";
    } else if (mine >= limits.max_connections_per_client) {
      refusal = "this address has " + std::to_string(mine) +
                " connections open, as many as herald takes from one client";
    } else {
      ++mine;
      conn = std::make_shared<Connection>(*this, std::move(socket), client);
      connections.insert(conn.get());
    }
    if (!conn && mine == 0) per_client.erase(client);
  }
  if (conn) {
    conn->start();
    return;
  }
  // Small enough for the socket's buffer: written at once, without waiting on the client.
  Response r = render(503, "too_many_connections", refusal);
  bhttp::response<bhttp::string_body> res{bhttp::status::service_unavailable, 11};
  res.set(bhttp::field::content_type, r.content_type);
  res.set(bhttp::field::retry_after, "1");
  res.keep_alive(false);
  res.body() = std::move(r.body);
  res.prepare_payload();
  std::ostringstream text;
  text << res;
  const std::string bytes = text.str();
  socket.non_blocking(true, ec);
  socket.write_some(asio::buffer(bytes), ec);
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

void Server::Impl::begin_stop() {
  error_code ec;
  acceptor.close(ec);
  accept_pause.cancel();
  std::vector<std::shared_ptr<Connection>> live;
  {
    std::lock_guard lock(mu);
    for (Connection* c : connections) {
      if (auto p = c->weak_from_this().lock()) live.push_back(std::move(p));
    }
  }
  for (auto& c : live) c->close_unless_busy();
  live.clear();
  drain_deadline = std::chrono::steady_clock::now() + milliseconds(limits.shutdown_grace_ms);
  check_drained();
}

void Server::Impl::check_drained() {
  bool empty = false;
  {
    std::lock_guard lock(mu);
    empty = connections.empty();
  }
  if (empty || std::chrono::steady_clock::now() >= drain_deadline) {
    io.stop();
    return;
  }
  drain_timer.expires_after(milliseconds(20));
  drain_timer.async_wait([this](error_code) { check_drained(); });
}

Response Server::Impl::handle(Request& req) const {
  const std::string& method = req.method == "HEAD" ? std::string("GET") : req.method;
  for (const auto& r : routes) {
    if (r.info.method != method || !std::regex_match(req.path, req.matches, r.pattern)) continue;
    Response res;
    try {
      r.handler(req, res);
    } catch (const std::exception& e) {
      spdlog::error("http {} {}: {}", req.method, req.path, e.what());
      return render(500, "internal", "internal server error");
    }
    return res;
  }
  return render(404, "not_found", "route not found");
}

Server::Server(Limits limits) : impl_(std::make_unique<Impl>(limits)) {}

Server::~Server() {
  stop();
}

void Server::route(const std::string& method, const std::string& pattern, Handler handler) {
  impl_->routes.push_back(
      Route{RouteInfo{method, pattern}, std::regex(pattern), std::move(handler)});
}

std::vector<RouteInfo> Server::routes() const {
  std::vector<RouteInfo> out;
  out.reserve(impl_->routes.size());
  for (const auto& r : impl_->routes) out.push_back(r.info);
  return out;
}

void Server::set_error_renderer(ErrorRenderer render) {
  impl_->render = std::move(render);
}

int Server::bind(const std::string& host, int port) {
  raise_open_file_limit();
  error_code ec;
  tcp::resolver resolver(impl_->io);
  auto found = resolver.resolve(host, std::to_string(port),
                                tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || found.empty()) return -1;
  const tcp::endpoint at = found.begin()->endpoint();
  auto& a = impl_->acceptor;
  a.open(at.protocol(), ec);
  if (ec) return -1;
  a.set_option(asio::socket_base::reuse_address(true), ec);
  a.bind(at, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    a.close(ec);
    return -1;
  }
  return a.local_endpoint().port();
}

bool Server::listen() {
  if (!impl_->acceptor.is_open()) return false;
  impl_->running = true;
  impl_->accept();
  impl_->io.run();
  impl_->running = false;
  impl_->workers.join();  // handlers still running hold the database: let them finish
  return true;
}

void Server::stop() {
  if (impl_->stopping.exchange(true)) return;
  // A plain pointer: a task kept by the loop must not keep the loop's owner alive.
  asio::post(impl_->io, [impl = impl_.get()] { impl->begin_stop(); });
}

bool Server::running() const {
  return impl_->running;
}

const Limits& Server::limits() const {
  return impl_->limits;
}

}  // namespace herald::http
