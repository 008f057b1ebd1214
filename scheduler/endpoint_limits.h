#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/token_bucket.h"

namespace herald {

class Database;
class Session;
struct EndpointLoad;

// How many deliveries each endpoint may start now, so that its concurrency cap and its
// throttleRate hold. In each round the scheduler
//   1. sizes its claims of parked deliveries with room(),
//   2. calls begin_round() with every endpoint it claimed deliveries for,
//   3. asks admit() for each delivery (false: park it),
//   4. calls end_round() in the same transaction, and, once the round committed,
//   5. started() for each request handed to the sender;
// finished() comes when a request ends, recorded() when the round that records its result
// takes it (before that round's begin_round()). Two implementations: LocalLimits keeps everything
// in this process's memory (a database one process owns), SharedLimits keeps it in the store, so
// the limits hold across every process sharing the database.
class EndpointLimits {
 public:
  virtual ~EndpointLimits() = default;

  // How many more deliveries to the endpoint could start now, as far as this process knows
  // (for sizing claims; admit() decides).
  virtual int room(const std::string& endpoint_id, TimeMs now) = 0;
  // Reads what the round's decisions need. REQUIRES: a transaction on `s`.
  virtual void begin_round(Session& s, const std::vector<std::string>& endpoint_ids,
                           TimeMs now) = 0;
  // True if one more delivery to the endpoint, throttled at `rate` a second if set, may start
  // now; counts it (and takes its token).
  virtual bool admit(const std::string& endpoint_id, std::optional<int> rate, TimeMs now) = 0;
  // Writes what the round took. REQUIRES: the transaction begin_round() saw.
  virtual void end_round(Session& s) = 0;
  // A request admitted in a committed round was handed to the sender / has ended (its slot is
  // free again, before its result is recorded). Thread-safe.
  virtual void started(const std::string& endpoint_id) = 0;
  virtual void finished(const std::string& endpoint_id) = 0;
  // The result of a request that finished() is being recorded by the current round: once that
  // round's transaction holds it, the store no longer counts the request as in flight.
  virtual void recorded(const std::string& endpoint_id) = 0;
  // When a throttled endpoint out of tokens gets its next one; nullopt if it is not throttled
  // or has a token.
  virtual std::optional<TimeMs> next_token_at(const std::string& endpoint_id, TimeMs now) = 0;
  // True if the endpoint was at its cap when last seen, so that others sharing the store may
  // have parked deliveries for it: a slot of it freeing here is worth a claim of them.
  virtual bool saturated(const std::string& endpoint_id) = 0;
};

// Limits of a database one process owns: in-flight counts and token buckets in memory.
class LocalLimits final : public EndpointLimits {
 public:
  explicit LocalLimits(int concurrency) : concurrency_(concurrency) {}
  int room(const std::string& endpoint_id, TimeMs now) override;
  void begin_round(Session& s, const std::vector<std::string>& endpoint_ids, TimeMs now) override;
  bool admit(const std::string& endpoint_id, std::optional<int> rate, TimeMs now) override;
  void end_round(Session&) override {}
  void started(const std::string& endpoint_id) override;
  void finished(const std::string& endpoint_id) override;
  void recorded(const std::string&) override {}
  std::optional<TimeMs> next_token_at(const std::string& endpoint_id, TimeMs now) override;
  // This process parks every delivery of its store itself, and knows which.
  bool saturated(const std::string&) override { return false; }

 private:
  struct Throttle {
    double rate = 0;
    TokenBucket bucket;
  };
  const int concurrency_;
  std::mutex mu_;
  std::unordered_map<std::string, int> in_flight_;  // REQUIRES: mu_ held
  // Only the scheduler thread:
  std::unordered_map<std::string, int> busy_;  // this round: in flight plus admitted
  std::unordered_map<std::string, Throttle> buckets_;
};

// Limits of a database several processes share: the deliveries in flight to an endpoint are
// counted in the store (claimed under a live lease, by anyone), and its token bucket lives
// there, both read and written under a lock on the endpoint's limits for the length of the
// round's transaction. A process that dies holds nothing: its leases lapse, and a bucket
// only ever under-admits.
class SharedLimits final : public EndpointLimits {
 public:
  explicit SharedLimits(int concurrency) : concurrency_(concurrency) {}
  int room(const std::string& endpoint_id, TimeMs now) override;
  void begin_round(Session& s, const std::vector<std::string>& endpoint_ids, TimeMs now) override;
  bool admit(const std::string& endpoint_id, std::optional<int> rate, TimeMs now) override;
  void end_round(Session& s) override;
  void started(const std::string&) override {}
  void finished(const std::string& endpoint_id) override;
  void recorded(const std::string& endpoint_id) override;
  std::optional<TimeMs> next_token_at(const std::string& endpoint_id, TimeMs now) override;
  bool saturated(const std::string& endpoint_id) override;

 private:
  // What was read is trusted for sizing claims this long; after it, room() assumes there is
  // room, so an endpoint whose slots another process freed is tried again.
  static constexpr int64_t kSeenForMs = 1000;
  struct Seen {
    TimeMs read_at = 0;
    int in_flight = 0;  // everyone's, when last read, plus what this process admitted since
    double rate = 0;    // 0: not throttled
    std::optional<TokenBucket> bucket;
    bool bucket_taken = false;  // this round took a token: write the bucket back
  };
  const int concurrency_;
  // Requests of this process that ended since their endpoint was last read, or before it but
  // unrecorded then (the read counted them in flight): room() counts them free at once
  // instead of after kSeenForMs.
  std::mutex mu_;
  std::unordered_map<std::string, int> finished_;  // REQUIRES: mu_ held
  // Requests of this process that ended and whose results no round has taken yet: the store
  // still counts them in flight.
  std::unordered_map<std::string, int> unrecorded_;  // REQUIRES: mu_ held
  // Only the scheduler thread.
  std::unordered_map<std::string, Seen> seen_;
};

// The limits for `db`: shared when several processes may share it.
std::unique_ptr<EndpointLimits> make_endpoint_limits(const Database& db, int concurrency);

}  // namespace herald
