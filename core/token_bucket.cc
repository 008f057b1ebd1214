#include "core/token_bucket.h"

#include <algorithm>

namespace herald {

void TokenBucket::refill(double rate, TimeMs now) {
  if (now > refilled_at) {
    tokens = std::min(rate, tokens + static_cast<double>(now - refilled_at) * rate / 1000.0);
    refilled_at = now;
  }
  tokens = std::min(tokens, rate);  // a lowered rate shrinks the bucket at once
}

bool TokenBucket::take(double rate, TimeMs now) {
  refill(rate, now);
  if (tokens < 1) return false;
  tokens -= 1;
  return true;
}

int TokenBucket::whole(double rate, TimeMs now) {
  refill(rate, now);
  return tokens < 0 ? 0 : static_cast<int>(tokens);
}

TimeMs TokenBucket::next_token_at(double rate, TimeMs now) const {
  if (tokens >= 1 || rate <= 0) return now;
  return now + std::max<int64_t>(1, static_cast<int64_t>((1 - tokens) * 1000.0 / rate) + 1);
}

}  // namespace herald
