#include "tests/support/receiver.h"

#include <doctest/doctest.h>

#include <algorithm>

#include "tests/support/wait.h"

namespace herald::test {

Receiver::Receiver() {
  svr_.new_task_queue = [] { return new httplib::ThreadPool(32); };
  svr_.set_tcp_nodelay(true);
  svr_.set_keep_alive_timeout(1);
  svr_.Post(R"(/.*)",
            [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); });
}

Receiver::~Receiver() {
  gate.release();
  svr_.stop();
  if (thread_.joinable()) thread_.join();
}

void Receiver::start() {
  port_ = svr_.bind_to_any_port("127.0.0.1");
  REQUIRE(port_ > 0);
  thread_ = std::thread([this] { svr_.listen_after_bind(); });
  REQUIRE(wait_until([this] { return svr_.is_running(); }));
}

std::string Receiver::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

std::vector<Received> Receiver::requests(const std::string& path) {
  std::lock_guard lock(mu_);
  std::vector<Received> out;
  for (const auto& r : received_) {
    if (r.path == path) out.push_back(r);
  }
  return out;
}

size_t Receiver::total() {
  std::lock_guard lock(mu_);
  return received_.size();
}

int Receiver::peak(const std::string& path) {
  std::lock_guard lock(mu_);
  auto it = path_peak_.find(path);
  return it == path_peak_.end() ? 0 : it->second;
}

void Receiver::handle(const httplib::Request& req, httplib::Response& res) {
  const int now_active = ++active_;
  int seen = peak_.load();
  while (now_active > seen && !peak_.compare_exchange_weak(seen, now_active)) {
  }
  int n = 0;
  {
    std::lock_guard lock(mu_);
    received_.push_back(Received{req.path, req.headers, req.body, SystemClock().now_ms()});
    n = ++per_path_[req.path];
    int& top = path_peak_[req.path];
    top = std::max(top, ++path_active_[req.path]);
  }
  ++entered_;
  auto it = responders_.find(req.path);
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

Receiver::Responder answer(int status, std::string body) {
  return [status, body](int, const httplib::Request&, httplib::Response& res) {
    res.status = status;
    res.set_content(body, "text/plain");
  };
}

}  // namespace herald::test
