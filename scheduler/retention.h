#pragma once

#include <cstdint>
#include <string>

#include "core/clock.h"

namespace herald {

class Session;

// Retention: payloads and attempts older than the retention period are purged (and background
// tasks that ended that long ago), messages older than the message retention period deleted
// with their deliveries, and expired idempotency keys dropped, in small batches between rounds, so
// it never holds the queue up for long. Only the scheduler thread.
class Retention {
 public:
  struct Options {
    int64_t retention_ms = 90LL * 24 * 3600 * 1000;
    int64_t message_retention_ms = 180LL * 24 * 3600 * 1000;  // at least retention_ms
    int batch = 500;                                          // rows per kind per transaction
    int64_t idempotency_ttl_ms = 12LL * 3600 * 1000;
  };
  explicit Retention(Options options) : options_(options) {}

  // One batch, if one is due at `now`; true if more remains to purge right away.
  // REQUIRES: no transaction on `s`.
  bool run_if_due(Session& s, TimeMs now);

 private:
  // One batch; true if more remains.
  bool purge_once(Session& s, TimeMs now);

  Options options_;
  TimeMs next_at_ = 0;
  std::string watermark_;  // the largest message id whose payload was expired
};

}  // namespace herald
