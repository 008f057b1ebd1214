// herald_loadgen: the benchmark's client. Publishes messages to a running herald through its
// REST API, as fast as it can or at a fixed rate, and writes when each was acknowledged.
//
//   herald_loadgen publish --url http://127.0.0.1:8071 --token T --app APP
//       [--rate N (messages/s; 0 = as fast as possible)] [--duration SECONDS]
//       [--connections N] [--accept-log FILE] [--payload-bytes N]
//   herald_loadgen blackhole --port P [--seconds S]
//       a TCP listener that accepts connections and never answers (a dead endpoint)
//
// publish prints one JSON line: {"sent":n,"accepted":n,"errors":n,"seconds":s,"rate":r}.
// With --accept-log, each acknowledged message adds "<msg id> <unix ms with 3 decimals>".
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using SteadyClock = std::chrono::steady_clock;

int usage(const std::string& why) {
  std::cerr << "herald_loadgen: " << why << " (see the comment at the top of bench/loadgen.cc)\n";
  return 2;
}

std::map<std::string, std::string> parse_flags(const std::vector<std::string>& args, size_t from,
                                               std::string* error) {
  std::map<std::string, std::string> flags;
  for (size_t i = from; i < args.size(); ++i) {
    if (args[i].rfind("--", 0) != 0 || i + 1 >= args.size()) {
      *error = "bad argument '" + args[i] + "'";
      return {};
    }
    flags[args[i].substr(2)] = args[i + 1];
    ++i;
  }
  return flags;
}

double unix_ms_now() {
  using namespace std::chrono;
  return static_cast<double>(
             duration_cast<microseconds>(system_clock::now().time_since_epoch()).count()) /
         1000.0;
}

// The message id in a message-create reply: the value of the first "id" member.
std::string reply_id(const std::string& body) {
  auto key = body.find("\"id\":\"");
  if (key == std::string::npos) return {};
  auto start = key + 6;
  auto end = body.find('"', start);
  return end == std::string::npos ? std::string() : body.substr(start, end - start);
}

int publish(const std::map<std::string, std::string>& flags) {
  auto get = [&](const char* name, const std::string& fallback) {
    auto it = flags.find(name);
    return it == flags.end() ? fallback : it->second;
  };
  const std::string url = get("url", "");
  const std::string token = get("token", "");
  const std::string app = get("app", "");
  if (url.empty() || token.empty() || app.empty())
    return usage("publish needs --url, --token, --app");
  const double rate = std::stod(get("rate", "0"));
  const double duration_s = std::stod(get("duration", "10"));
  const int connections = std::max(1, std::stoi(get("connections", "8")));
  const size_t payload_bytes = std::stoul(get("payload-bytes", "256"));
  const std::string accept_log = get("accept-log", "");

  // A payload of about the asked size: an invoice event with padding.
  std::string padding(payload_bytes > 120 ? payload_bytes - 120 : 0, 'x');
  const std::string body_prefix =
      R"({"eventType":"invoice.paid","payload":{"type":"invoice.paid","data":{"id":"in_)";
  const std::string body_suffix =
      R"(","amount":4200,"currency":"usd","note":")" + padding + R"("}}})";

  std::atomic<long> sent{0}, accepted{0}, errors{0};
  std::mutex log_mu;
  std::vector<std::string> log_lines;
  const auto start = SteadyClock::now();
  const auto deadline = start + std::chrono::microseconds(static_cast<int64_t>(duration_s * 1e6));
  std::vector<std::thread> threads;
  for (int t = 0; t < connections; ++t) {
    threads.emplace_back([&, t] {
      httplib::Client client(url);
      client.set_keep_alive(true);
      client.set_tcp_nodelay(true);
      client.set_connection_timeout(5);
      client.set_read_timeout(30);
      httplib::Headers headers{{"Authorization", "Bearer " + token}};
      const std::string path = "/api/v1/app/" + app + "/msg?with_content=false";
      std::vector<std::string> lines;
      // Open loop per thread at rate / connections: message k is due at start + k / rate.
      const double per_thread = rate / connections;
      long k = 0;
      for (;;) {
        auto now = SteadyClock::now();
        if (now >= deadline) break;
        if (per_thread > 0) {
          auto due = start + std::chrono::microseconds(static_cast<int64_t>(
                                 (static_cast<double>(k) + static_cast<double>(t) / connections) *
                                 1e6 / per_thread));
          if (due >= deadline) break;
          if (due > now) std::this_thread::sleep_until(due);
        }
        ++k;
        std::string body = body_prefix + std::to_string(t) + "_" + std::to_string(k) + body_suffix;
        sent.fetch_add(1);
        auto res = client.Post(path, headers, body, "application/json");
        if (!res || res->status != 202) {
          errors.fetch_add(1);
          if (errors.load() <= 3) {
            std::cerr << "herald_loadgen: "
                      << (res ? "status " + std::to_string(res->status) + " " + res->body
                              : httplib::to_string(res.error()))
                      << "\n";
          }
          continue;
        }
        accepted.fetch_add(1);
        if (!accept_log.empty()) {
          char stamp[32];
          std::snprintf(stamp, sizeof stamp, "%.3f", unix_ms_now());
          lines.push_back(reply_id(res->body) + " " + stamp);
        }
      }
      std::lock_guard lock(log_mu);
      for (auto& l : lines) log_lines.push_back(std::move(l));
    });
  }
  for (auto& th : threads) th.join();
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  if (!accept_log.empty()) {
    std::ofstream out(accept_log);
    for (const auto& l : log_lines) out << l << "\n";
  }
  std::printf("{\"sent\":%ld,\"accepted\":%ld,\"errors\":%ld,\"seconds\":%.3f,\"rate\":%.1f}\n",
              sent.load(), accepted.load(), errors.load(), seconds,
              static_cast<double>(accepted.load()) / seconds);
  return errors.load() == 0 ? 0 : 1;
}

// Accepts connections and reads whatever arrives, never answering, until `seconds` pass.
int blackhole(const std::map<std::string, std::string>& flags) {
  auto it = flags.find("port");
  if (it == flags.end()) return usage("blackhole needs --port");
  const int port = std::stoi(it->second);
  const double seconds = flags.count("seconds") ? std::stod(flags.at("seconds")) : 3600;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4096) != 0) {
    std::perror("herald_loadgen blackhole");
    return 1;
  }
  std::printf("blackhole listening on 127.0.0.1:%d\n", port);
  std::fflush(stdout);
  std::vector<pollfd> fds{{fd, POLLIN, 0}};
  const auto deadline =
      SteadyClock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  char buf[65536];
  while (SteadyClock::now() < deadline) {
    if (::poll(fds.data(), fds.size(), 200) <= 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      if (i == 0) {
        int c = ::accept(fd, nullptr, nullptr);
        if (c >= 0) fds.push_back({c, POLLIN, 0});
      } else if (::read(fds[i].fd, buf, sizeof buf) <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
      }
    }
    std::erase_if(fds, [](const pollfd& p) { return p.fd < 0; });
    for (auto& p : fds) p.revents = 0;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return usage("a command is needed: publish or blackhole");
  std::string error;
  auto flags = parse_flags(args, 1, &error);
  if (!error.empty()) return usage(error);
  try {
    if (args[0] == "publish") return publish(flags);
    if (args[0] == "blackhole") return blackhole(flags);
  } catch (const std::exception& e) {
    return usage(e.what());
  }
  return usage("unknown command '" + args[0] + "'");
}
