#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace herald {

class AddressPolicy;

// One HTTP POST to make. `tag` is the caller's handle and comes back in the result.
// A client certificate presented to TLS servers that ask for one (mTLS): PEM texts.
struct TlsIdentity {
  std::string cert_pem;  // the certificate, then any intermediates
  std::string key_pem;   // its private key, unencrypted
};

struct DeliveryJob {
  uint64_t tag = 0;
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;  // sent as given, in order
  std::shared_ptr<const std::string> body;                   // shared, never copied
  int64_t timeout_ms = 15000;                                // whole transfer
  int64_t connect_timeout_ms = 5000;
  std::shared_ptr<const TlsIdentity> tls;  // none: no client certificate
};

// What came of a DeliveryJob. A failure is data, never an exception.
struct DeliveryResult {
  uint64_t tag = 0;
  int status_code = 0;  // HTTP status; 0 when no response arrived (timeout, refused, DNS...)
  std::string body;     // first Options::max_response_bytes of the response body
  std::string error;    // why, when status_code == 0 (curl's text or the SSRF guard's)
  int64_t duration_ms = 0;
  std::optional<int64_t> retry_after_s;  // parsed Retry-After (delta-seconds or HTTP date)
  bool aborted = false;                  // never sent, or cut short by stop(): not a real attempt
  bool success() const { return status_code >= 200 && status_code < 300; }
};

// One libcurl-multi event loop on its own thread. Jobs go in through submit(); results come
// out in batches through the sink, called on the sender's thread (the sink must not block
// for long and must not call back into the Sender). Connections are reused across jobs to
// the same host; redirects are never followed; proxies (and their environment variables)
// are never used.
class Sender {
 public:
  struct Options {
    size_t max_response_bytes = 20 * 1024;
    long max_connections_per_host = 0;  // 0: no cap (the scheduler caps per endpoint)
    long max_total_connections = 0;     // 0: no cap
    long connection_cache_size = 1024;  // idle connections kept for reuse
    // The SSRF guard: every address is checked as a connection to it is opened (after DNS,
    // so rebinding cannot slip through); a refused one fails the job with status 0 and the
    // policy's reason as the error. nullptr: no guard.
    std::shared_ptr<const AddressPolicy> address_policy;
    // https: the chain and the host name are always verified, over TLS 1.2 or newer. The PEM
    // bundle of the authorities trusted, in place of the system's; "": the system's.
    std::string ca_file;
  };
  using ResultSink = std::function<void(std::vector<DeliveryResult>&&)>;

  // Starts the loop thread.
  Sender(Options options, ResultSink sink);
  // Stops as stop(0) would, and joins the thread.
  ~Sender();

  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;

  // Queues jobs and wakes the loop. Thread-safe. Jobs submitted after stop() get a result
  // with status 0 and error "sender stopped".
  void submit(std::vector<DeliveryJob> jobs);

  // Stops taking jobs, lets transfers in flight finish for up to `drain_ms`, aborts the rest
  // (each gets a result with status 0 and error "aborted at shutdown"), then joins the loop.
  // Every submitted job gets exactly one result before stop() returns. Idempotent.
  void stop(int64_t drain_ms);

  // Jobs submitted whose result has not yet been handed to the sink.
  size_t in_flight() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald
