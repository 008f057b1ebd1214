#include "scheduler/retention.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "db/attempt_store.h"
#include "db/idempotency_store.h"
#include "db/message_store.h"
#include "db/session.h"
#include "db/task_store.h"

namespace herald {
namespace {

// Retention work runs this often when there is nothing left to purge.
constexpr int64_t kIdleMs = 60000;

}  // namespace

bool Retention::run_if_due(Session& s, TimeMs now) {
  if (now < next_at_) return false;
  // Idle checks come at least four times per retention period.
  const int64_t idle = std::clamp<int64_t>(options_.retention_ms / 4, 50, kIdleMs);
  const bool more = purge_once(s, now);
  next_at_ = now + (more ? 0 : idle);
  return more;
}

bool Retention::purge_once(Session& s, TimeMs now) {
  const TimeMs cutoff = now - options_.retention_ms;
  s.begin();
  std::string last = watermark_;
  const int64_t payloads = s.messages().expire_payloads(cutoff, watermark_, options_.batch, &last);
  const int64_t attempts = s.attempts().purge(cutoff, options_.batch);
  const int64_t messages = s.messages().purge(now - options_.message_retention_ms, options_.batch);
  const int64_t keys = s.idempotency().purge(now - options_.idempotency_ttl_ms, options_.batch);
  const int64_t tasks = s.tasks().purge(cutoff, options_.batch);
  s.commit();
  watermark_ = last;
  if (payloads + attempts + messages > 0) {
    spdlog::debug("retention: purged {} payloads, {} attempts and {} messages", payloads, attempts,
                  messages);
  }
  return payloads == options_.batch || attempts == options_.batch || messages == options_.batch ||
         keys == options_.batch || tasks == options_.batch;
}

}  // namespace herald
