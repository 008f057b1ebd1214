#include "sender/sender.h"

#include <pthread.h>

#include <curl/curl.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdio>
#include <ctime>
#include <exception>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "core/address_policy.h"
#include "core/headers.h"

namespace herald {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr int kPollTimeoutMs = 1000;
// Idle easy handles kept for reuse; beyond this they are cleaned up when their transfer ends.
constexpr size_t kMaxIdleHandles = 256;
constexpr const char* kStoppedError = "sender stopped";
constexpr const char* kAbortedError = "aborted at shutdown";

struct EasyDeleter {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
struct MultiDeleter {
  void operator()(CURLM* multi) const { curl_multi_cleanup(multi); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using EasyPtr = std::unique_ptr<CURL, EasyDeleter>;
using MultiPtr = std::unique_ptr<CURLM, MultiDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

void global_init_once() {
  static std::once_flag flag;
  std::call_once(flag, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw std::runtime_error("curl_global_init failed");
    }
  });
}

// Typed wrappers keep curl's varargs setopt away from the call sites. A failed setopt (out of
// memory, a URL longer than curl accepts) means the job cannot be sent.
void check(CURLcode code) {
  if (code != CURLE_OK) throw std::runtime_error(curl_easy_strerror(code));
}
void set_long(CURL* easy, CURLoption option, long value) {
  check(curl_easy_setopt(easy, option, value));
}
void set_str(CURL* easy, CURLoption option, const char* value) {
  check(curl_easy_setopt(easy, option, value));
}
void set_ptr(CURL* easy, CURLoption option, void* value) {
  check(curl_easy_setopt(easy, option, value));
}
void set_off(CURL* easy, CURLoption option, curl_off_t value) {
  check(curl_easy_setopt(easy, option, value));
}
void set_callback(CURL* easy, CURLoption option, curl_write_callback value) {
  check(curl_easy_setopt(easy, option, value));
}
void set_opensocket(CURL* easy, curl_opensocket_callback value) {
  check(curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, value));
}
// A PEM blob option; null clears it. curl copies the bytes.
void set_blob(CURL* easy, CURLoption option, const std::string* text) {
  if (text == nullptr) {
    check(curl_easy_setopt(easy, option, static_cast<curl_blob*>(nullptr)));
    return;
  }
  curl_blob blob{const_cast<char*>(text->data()), text->size(), CURL_BLOB_COPY};
  check(curl_easy_setopt(easy, option, &blob));
}
void set_multi_long(CURLM* multi, CURLMoption option, long value) {
  curl_multi_setopt(multi, option, value);
}

long clamp_to_long(int64_t value) {
  return static_cast<long>(std::clamp<int64_t>(value, 0, LONG_MAX));
}

bool iequals_prefix(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

// Retry-After is delta-seconds or an HTTP-date; a date becomes seconds from now, at least 0.
std::optional<int64_t> parse_retry_after(std::string_view value) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; })) {
    int64_t seconds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec == std::errc::result_out_of_range) return INT64_MAX;
    if (ec != std::errc() || end != value.data() + value.size()) return std::nullopt;
    return seconds;
  }
  std::string date(value);
  time_t when = curl_getdate(date.c_str(), nullptr);
  if (when == -1) return std::nullopt;
  return std::max<int64_t>(0,
                           static_cast<int64_t>(when) - static_cast<int64_t>(std::time(nullptr)));
}

// One easy handle and everything its transfer points at. Pooled: the easy handle outlives
// individual jobs and is curl_easy_reset between them.
struct Transfer {
  EasyPtr easy;
  SlistPtr headers;
  std::shared_ptr<const std::string> body;  // CURLOPT_POSTFIELDS points into this
  DeliveryResult result;
  size_t max_response_bytes = 0;
  SteadyClock::time_point started;
  char error[CURL_ERROR_SIZE] = {};
  const AddressPolicy* address_policy = nullptr;  // the SSRF guard, if any
  bool refused = false;                           // the guard refused an address of this transfer
  bool opened = false;        // the guard let a socket be opened for this transfer
  std::string refuse_reason;  // the guard's reason for the first address it refused
  // The client certificate the handle is set up with, if any; held, so that a new identity
  // can never reuse its address and be taken for it.
  std::shared_ptr<const TlsIdentity> tls;
};

size_t on_write(char* data, size_t size, size_t nmemb, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  size_t total = size * nmemb;
  std::string& body = transfer->result.body;
  if (body.size() < transfer->max_response_bytes) {
    size_t room = transfer->max_response_bytes - body.size();
    try {
      body.append(data, std::min(room, total));
    } catch (...) {
      return CURL_WRITEFUNC_ERROR;
    }
  }
  return total;  // the rest is discarded, the transfer goes on
}

size_t on_header(char* data, size_t size, size_t nmemb, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  size_t total = size * nmemb;
  std::string_view line(data, total);
  if (iequals_prefix(line, "HTTP/")) {
    // A new response (e.g. after a 1xx) starts: forget what an earlier one said.
    transfer->result.retry_after_s.reset();
  } else if (iequals_prefix(line, "retry-after:")) {
    transfer->result.retry_after_s = parse_retry_after(line.substr(12));
  }
  return total;
}

// Opens every socket curl connects with, after DNS and for each address tried, so the SSRF
// guard judges the address actually connected to. A reused connection was judged when opened.
curl_socket_t on_open_socket(void* user, curlsocktype purpose, curl_sockaddr* address) {
  auto* transfer = static_cast<Transfer*>(user);
  if (purpose != CURLSOCKTYPE_IPCXN) {
    transfer->refused = true;
    return CURL_SOCKET_BAD;
  }
  try {
    auto reason = transfer->address_policy->refuse_reason(&address->addr, address->addrlen);
    if (reason) {
      if (!transfer->refused) transfer->refuse_reason = std::move(*reason);
      transfer->refused = true;
      return CURL_SOCKET_BAD;
    }
  } catch (...) {  // out of memory for the reason: refuse all the same
    transfer->refused = true;
    return CURL_SOCKET_BAD;
  }
  transfer->opened = true;
  return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

// A result without a response. `aborted`: never sent or cut short by stop(), so not an attempt.
DeliveryResult failed_result(uint64_t tag, const char* error, bool aborted) {
  DeliveryResult result;
  result.tag = tag;
  result.error = error;
  result.aborted = aborted;
  return result;
}

}  // namespace

struct Sender::Impl {
  Impl(Options options, ResultSink sink) : options_(options), sink_(std::move(sink)) {}
  ~Impl();

  void run();
  void loop_iteration(bool& done);
  void start_transfer(DeliveryJob&& job, std::vector<DeliveryResult>& results);
  std::unique_ptr<Transfer> acquire_transfer();
  void set_constant_options(Transfer& t);
  void release_transfer(std::unique_ptr<Transfer> transfer);
  void collect_completed(std::vector<DeliveryResult>& results);
  void abort_all(std::vector<DeliveryResult>& results, const char* error);
  void deliver(std::vector<DeliveryResult>&& results);

  const Options options_;
  const ResultSink sink_;

  // Declared before the transfers so that it is destroyed after them.
  MultiPtr multi_;
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> active_;  // loop thread only
  std::vector<std::unique_ptr<Transfer>> idle_;                  // loop thread only

  std::mutex mu_;
  std::vector<DeliveryJob> pending_;        // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  bool exited_ = false;                     // guarded by mu_; the loop takes no more jobs
  SteadyClock::time_point drain_deadline_;  // guarded by mu_; valid when stopping_

  std::mutex sink_mu_;  // the sink is never called concurrently
  std::atomic<size_t> in_flight_{0};

  std::mutex join_mu_;
  std::thread thread_;
};

Sender::Impl::~Impl() {
  // The loop leaves nothing in the multi when it ends normally; this covers the rest.
  for (auto& [easy, transfer] : active_) curl_multi_remove_handle(multi_.get(), easy);
  active_.clear();
  idle_.clear();
}

void Sender::Impl::run() {
  pthread_setname_np(pthread_self(), "herald-send");  // for top -H and perf
  bool done = false;
  while (!done) {
    try {
      loop_iteration(done);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "herald sender: loop error: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "herald sender: unknown loop error\n");
    }
  }
  std::vector<DeliveryJob> leftover;
  {
    std::lock_guard<std::mutex> lock(mu_);
    exited_ = true;
    leftover.swap(pending_);
  }
  std::vector<DeliveryResult> results;
  try {
    // Normally empty: only jobs queued between the last iteration and exited_ land here.
    abort_all(results, kAbortedError);
    for (const DeliveryJob& job : leftover) {
      results.push_back(failed_result(job.tag, kStoppedError, true));
    }
  } catch (...) {
    std::fprintf(stderr, "herald sender: out of memory at shutdown, results lost\n");
  }
  deliver(std::move(results));
}

void Sender::Impl::loop_iteration(bool& done) {
  std::vector<DeliveryJob> incoming;
  bool stopping = false;
  SteadyClock::time_point deadline;
  {
    std::lock_guard<std::mutex> lock(mu_);
    incoming.swap(pending_);
    stopping = stopping_;
    deadline = drain_deadline_;
  }

  std::vector<DeliveryResult> results;
  results.reserve(incoming.size());
  for (DeliveryJob& job : incoming) {
    if (stopping) {
      results.push_back(failed_result(job.tag, kStoppedError, true));
    } else {
      start_transfer(std::move(job), results);
    }
  }

  int running = 0;
  curl_multi_perform(multi_.get(), &running);
  collect_completed(results);

  int timeout_ms = kPollTimeoutMs;
  if (stopping) {
    auto now = SteadyClock::now();
    if (active_.empty()) {
      done = true;
    } else if (now >= deadline) {
      abort_all(results, kAbortedError);
      done = true;
    } else {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
      timeout_ms = static_cast<int>(std::min<int64_t>(left, kPollTimeoutMs));
    }
  }
  deliver(std::move(results));
  if (!done) curl_multi_poll(multi_.get(), nullptr, 0, timeout_ms, nullptr);
}

std::unique_ptr<Transfer> Sender::Impl::acquire_transfer() {
  if (!idle_.empty()) {
    std::unique_ptr<Transfer> transfer = std::move(idle_.back());
    idle_.pop_back();
    return transfer;
  }
  auto transfer = std::make_unique<Transfer>();
  transfer->easy.reset(curl_easy_init());
  if (!transfer->easy) throw std::bad_alloc();
  set_constant_options(*transfer);
  return transfer;
}

void Sender::Impl::set_constant_options(Transfer& t) {
  // What every job shares is set once per handle: a pooled handle keeps its options (and its
  // pointers into `t`, which lives as long as the handle), so a job sets only its own.
  CURL* easy = t.easy.get();
  set_str(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  set_str(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  set_long(easy, CURLOPT_FOLLOWLOCATION, 0L);
  set_str(easy, CURLOPT_PROXY, "");  // not even from http_proxy & co: connect to the URL's host
  set_long(easy, CURLOPT_POST, 1L);
  set_str(easy, CURLOPT_USERAGENT, kUserAgent);
  set_long(easy, CURLOPT_NOSIGNAL, 1L);
  set_long(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  set_long(easy, CURLOPT_SSL_VERIFYPEER, 1L);
  set_long(easy, CURLOPT_SSL_VERIFYHOST, 2L);
  set_long(easy, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  if (!options_.ca_file.empty()) set_str(easy, CURLOPT_CAINFO, options_.ca_file.c_str());
  set_ptr(easy, CURLOPT_ERRORBUFFER, t.error);
  set_callback(easy, CURLOPT_WRITEFUNCTION, &on_write);
  set_ptr(easy, CURLOPT_WRITEDATA, &t);
  set_callback(easy, CURLOPT_HEADERFUNCTION, &on_header);
  set_ptr(easy, CURLOPT_HEADERDATA, &t);
  if (options_.address_policy != nullptr) {
    set_opensocket(easy, &on_open_socket);
    set_ptr(easy, CURLOPT_OPENSOCKETDATA, &t);
  }
}

void Sender::Impl::release_transfer(std::unique_ptr<Transfer> transfer) {
  // Not in the multi any more. The job's own options point at what is freed next: clear them.
  CURL* easy = transfer->easy.get();
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(easy, CURLOPT_POSTFIELDS, nullptr);
  curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(0));
  transfer->headers.reset();
  transfer->body.reset();
  transfer->result = DeliveryResult{};
  transfer->refused = transfer->opened = false;
  transfer->refuse_reason.clear();
  if (idle_.size() < kMaxIdleHandles) idle_.push_back(std::move(transfer));
}

void Sender::Impl::start_transfer(DeliveryJob&& job, std::vector<DeliveryResult>& results) {
  static const std::string kEmptyBody;
  std::unique_ptr<Transfer> transfer;
  try {
    transfer = acquire_transfer();
    Transfer& t = *transfer;
    CURL* easy = t.easy.get();
    t.result.tag = job.tag;
    t.max_response_bytes = options_.max_response_bytes;
    t.body = job.body;
    t.error[0] = '\0';
    t.address_policy = options_.address_policy.get();  // its callback is set per handle
    t.refused = t.opened = false;
    t.refuse_reason.clear();

    bool has_content_type = false;
    bool has_expect = false;
    auto append = [&t](const std::string& line) {
      curl_slist* head = curl_slist_append(t.headers.get(), line.c_str());
      if (!head) throw std::bad_alloc();
      if (!t.headers) t.headers.reset(head);  // later appends keep the same head
    };
    for (const auto& [name, value] : job.headers) {
      if (iequals_prefix(name, "content-type") && name.size() == 12) has_content_type = true;
      if (iequals_prefix(name, "expect") && name.size() == 6) has_expect = true;
      // "Name:" would tell curl to drop the header; "Name;" sends it with an empty value.
      append(value.empty() ? name + ";" : name + ": " + value);
    }
    if (!has_expect) append("Expect:");  // no 100-continue round trip
    // Without a caller's Content-Type curl would claim application/x-www-form-urlencoded.
    if (!has_content_type) append("Content-Type:");

    const std::string& body = t.body ? *t.body : kEmptyBody;
    set_str(easy, CURLOPT_URL, job.url.c_str());
    set_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    set_str(easy, CURLOPT_POSTFIELDS, body.data());  // not copied; t.body keeps it alive
    set_ptr(easy, CURLOPT_HTTPHEADER, t.headers.get());
    set_long(easy, CURLOPT_TIMEOUT_MS, clamp_to_long(job.timeout_ms));
    set_long(easy, CURLOPT_CONNECTTIMEOUT_MS, clamp_to_long(job.connect_timeout_ms));
    // The client certificate (mTLS) is the job's endpoint's; a pooled handle may hold the last
    // job's, which must not be presented to another server. (curl keeps connections made with
    // one certificate apart from those made with another or none.)
    if (job.tls != t.tls) {
      set_blob(easy, CURLOPT_SSLCERT_BLOB, job.tls ? &job.tls->cert_pem : nullptr);
      set_blob(easy, CURLOPT_SSLKEY_BLOB, job.tls ? &job.tls->key_pem : nullptr);
      t.tls = job.tls;
    }

    t.started = SteadyClock::now();
    auto it = active_.emplace(easy, std::move(transfer)).first;
    CURLMcode rc = curl_multi_add_handle(multi_.get(), easy);
    if (rc != CURLM_OK) {
      transfer = std::move(it->second);
      active_.erase(it);
      throw std::runtime_error(curl_multi_strerror(rc));
    }
  } catch (const std::exception& e) {
    if (transfer) release_transfer(std::move(transfer));
    results.push_back(failed_result(job.tag, "could not start transfer", false));
    results.back().error += std::string(": ") + e.what();
  } catch (...) {
    if (transfer) release_transfer(std::move(transfer));
    results.push_back(failed_result(job.tag, "could not start transfer", false));
  }
}

void Sender::Impl::collect_completed(std::vector<DeliveryResult>& results) {
  int queued = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_.get(), &queued)) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* easy = msg->easy_handle;
    CURLcode code = msg->data.result;  // read before remove_handle invalidates msg
    auto it = active_.find(easy);
    if (it == active_.end()) continue;
    std::unique_ptr<Transfer> transfer = std::move(it->second);
    active_.erase(it);
    curl_multi_remove_handle(multi_.get(), easy);

    DeliveryResult result = std::move(transfer->result);
    result.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() -
                                                                               transfer->started)
                             .count();
    long status = 0;
    if (code == CURLE_OK) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (code == CURLE_OK && status > 0) {
      result.status_code = static_cast<int>(status);
      result.error.clear();
    } else {
      // No complete response, even if a status line arrived (e.g. timeout mid-body).
      result.status_code = 0;
      result.body.clear();
      result.retry_after_s.reset();
      std::string curl_error;
      if (code == CURLE_OK) {
        curl_error = "no HTTP response";
      } else {
        curl_error = transfer->error[0] != '\0' ? transfer->error : curl_easy_strerror(code);
      }
      if (!transfer->refused) {
        result.error = std::move(curl_error);
      } else {
        result.error = transfer->refuse_reason.empty() ? "refused by the SSRF guard"
                                                       : std::move(transfer->refuse_reason);
        // Another address of the host was allowed, and then failed.
        if (transfer->opened) result.error += "; then: " + curl_error;
      }
    }
    release_transfer(std::move(transfer));
    results.push_back(std::move(result));
  }
}

void Sender::Impl::abort_all(std::vector<DeliveryResult>& results, const char* error) {
  auto now = SteadyClock::now();
  for (auto& [easy, transfer] : active_) {
    curl_multi_remove_handle(multi_.get(), easy);
    DeliveryResult result = failed_result(transfer->result.tag, error, true);
    result.duration_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - transfer->started).count();
    results.push_back(std::move(result));
  }
  active_.clear();  // removed from the multi above, so cleaning the easy handles is safe
}

void Sender::Impl::deliver(std::vector<DeliveryResult>&& results) {
  if (results.empty()) return;
  size_t count = results.size();
  {
    std::lock_guard<std::mutex> lock(sink_mu_);
    try {
      sink_(std::move(results));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "herald sender: result sink threw: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "herald sender: result sink threw\n");
    }
  }
  in_flight_.fetch_sub(count);
}

Sender::Sender(Options options, ResultSink sink)
    : impl_(std::make_unique<Impl>(options, std::move(sink))) {
  global_init_once();
  impl_->multi_.reset(curl_multi_init());
  if (!impl_->multi_) throw std::runtime_error("curl_multi_init failed");
  CURLM* multi = impl_->multi_.get();
  set_multi_long(multi, CURLMOPT_MAXCONNECTS, options.connection_cache_size);
  if (options.max_connections_per_host > 0) {
    set_multi_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, options.max_connections_per_host);
  }
  if (options.max_total_connections > 0) {
    set_multi_long(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, options.max_total_connections);
  }
  impl_->thread_ = std::thread([impl = impl_.get()] { impl->run(); });
}

Sender::~Sender() {
  stop(0);
}

void Sender::submit(std::vector<DeliveryJob> jobs) {
  if (jobs.empty()) return;
  impl_->in_flight_.fetch_add(jobs.size());
  bool queued = false;
  {
    std::lock_guard<std::mutex> lock(impl_->mu_);
    if (!impl_->exited_) {
      // While stopping, the loop still answers queued jobs ("sender stopped") on its thread.
      impl_->pending_.insert(impl_->pending_.end(), std::make_move_iterator(jobs.begin()),
                             std::make_move_iterator(jobs.end()));
      queued = true;
    }
  }
  if (queued) {
    curl_multi_wakeup(impl_->multi_.get());
    return;
  }
  // The loop has exited: answer here, so the sink runs on the caller's thread (still never
  // concurrently with another sink call).
  std::vector<DeliveryResult> results;
  results.reserve(jobs.size());
  for (const DeliveryJob& job : jobs) {
    results.push_back(failed_result(job.tag, kStoppedError, true));
  }
  impl_->deliver(std::move(results));
}

void Sender::stop(int64_t drain_ms) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu_);
    auto deadline = SteadyClock::now() + std::chrono::milliseconds(std::max<int64_t>(0, drain_ms));
    if (!impl_->stopping_ || deadline < impl_->drain_deadline_) {
      impl_->drain_deadline_ = deadline;  // a later, shorter stop() may tighten the bound
    }
    impl_->stopping_ = true;
  }
  curl_multi_wakeup(impl_->multi_.get());
  std::lock_guard<std::mutex> lock(impl_->join_mu_);
  if (impl_->thread_.joinable() && impl_->thread_.get_id() != std::this_thread::get_id()) {
    impl_->thread_.join();
  }
}

size_t Sender::in_flight() const {
  return impl_->in_flight_.load();
}

}  // namespace herald
