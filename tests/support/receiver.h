#pragma once

#include <httplib.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "tests/support/gate.h"

namespace herald::test {

// One request as the receiver saw it.
struct Received {
  std::string path;
  httplib::Headers headers;
  std::string body;
  TimeMs at = 0;  // wall-clock time of arrival
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  size_t header_count(const std::string& name) const { return headers.count(name); }
};

// A loopback webhook receiver (cpp-httplib on 127.0.0.1, a free port). Every POST is
// recorded; its answer comes from the responder registered for its path (default: 200 "ok").
// Register responders before start(). Tracks how many requests run at once.
class Receiver {
 public:
  // `n` is the 1-based number of this request among those to the same path.
  using Responder = std::function<void(int n, const httplib::Request&, httplib::Response&)>;

  Receiver();
  // Releases the gate, stops the server and joins it.
  ~Receiver();
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  void on(const std::string& path, Responder r) { responders_[path] = std::move(r); }
  void start();
  std::string url(const std::string& path) const;

  std::vector<Received> requests(const std::string& path);
  size_t count(const std::string& path) { return requests(path).size(); }
  size_t total();
  // The most requests ever being handled at once, overall and to one path.
  int peak() const { return peak_.load(); }
  int peak(const std::string& path);
  // Requests whose handler has started.
  int entered() const { return entered_.load(); }

  // Responders may wait on it; the destructor releases it.
  Gate gate;

 private:
  void handle(const httplib::Request& req, httplib::Response& res);

  httplib::Server svr_;
  std::thread thread_;
  int port_ = -1;
  std::map<std::string, Responder> responders_;  // read-only once started
  std::mutex mu_;
  std::vector<Received> received_;          // REQUIRES: mu_ held
  std::map<std::string, int> per_path_;     // REQUIRES: mu_ held
  std::map<std::string, int> path_active_;  // REQUIRES: mu_ held
  std::map<std::string, int> path_peak_;    // REQUIRES: mu_ held
  std::atomic<int> active_{0};
  std::atomic<int> peak_{0};
  std::atomic<int> entered_{0};
};

// Answers every request with `status` and `body`.
Receiver::Responder answer(int status, std::string body = "");

}  // namespace herald::test
