#pragma once

#include <cstdint>

#include "core/clock.h"

namespace herald {

// A token bucket for an endpoint's throttleRate: `rate` tokens a second, holding at most one
// second's worth. A new bucket is full. Plain data, so a store can keep it between processes.
struct TokenBucket {
  double tokens = 0;
  TimeMs refilled_at = 0;

  // A full bucket at `now`.
  static TokenBucket full(double rate, TimeMs now) { return TokenBucket{rate, now}; }
  // Adds what `rate` earned since refilled_at (never beyond one second's worth).
  void refill(double rate, TimeMs now);
  // Refills, then takes one token if there is one.
  bool take(double rate, TimeMs now);
  // Whole tokens after a refill.
  int whole(double rate, TimeMs now);
  // When the next whole token arrives (now or later), without refilling.
  TimeMs next_token_at(double rate, TimeMs now) const;
};

}  // namespace herald
