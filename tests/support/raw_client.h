#pragma once

#include <string>
#include <string_view>

namespace herald::test {

// A TCP connection to a loopback port that writes exactly the bytes it is given: what a hostile
// or broken client sends, which an HTTP client library would refuse to. `source` is the local
// address to connect from (any of 127.0.0.0/8), so tests can stand in for many clients; tests
// that take many ports use 127.77.0.0/16, which no other test listens on.
class RawClient {
 public:
  explicit RawClient(int port, const std::string& source = "127.0.0.1");
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  // Writes all of `bytes`; false if the connection refused them (closed by the server, say).
  bool send(std::string_view bytes);
  // Reads until the server closes the connection or `timeout_ms` passes; returns what came.
  std::string read_all(int timeout_ms = 3000);
  // Reads until `text` has arrived, the connection closes or `timeout_ms` passes.
  std::string read_until(std::string_view text, int timeout_ms = 3000);
  // True if the server closes the connection within `timeout_ms` (what it sends is dropped).
  bool closed_within(int timeout_ms);

 private:
  int fd_ = -1;
};

// One request on a new connection from 127.0.0.1: writes `request`, returns all that comes back
// until the server closes or `timeout_ms` passes.
std::string raw_exchange(int port, std::string_view request, int timeout_ms = 3000);

// This process's open-file limit (the soft one). An http::Server raises it to the hard limit
// when it binds, so a test with the server in its own process sees that.
size_t open_file_limit();

}  // namespace herald::test
