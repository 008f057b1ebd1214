#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace herald {

// When to try a failed delivery again.
class RetryPolicy {
 public:
  // Svix's default: 5s, 5m, 30m, 2h, 5h, 10h, 10h.
  static RetryPolicy standard();

  // `delays_ms[i]` is the wait after the (i+1)-th failed attempt; `jitter` is the fraction
  // (0.2 = ±20 %) by which each wait is randomly stretched or shrunk.
  RetryPolicy(std::vector<int64_t> delays_ms, double jitter);

  // Parses a comma list of durations like "5s,5m,30m,2h" (see parse_duration_ms). Returns
  // nullopt, with a one-line reason in *error, if any item is malformed or the list is empty.
  static std::optional<RetryPolicy> parse(std::string_view list, double jitter, std::string* error);

  // The wait before the next try after `failed_attempts` failed attempts (1 = the first try
  // failed), jitter applied with `rng`; nullopt when the schedule is exhausted.
  std::optional<int64_t> next_delay_ms(int failed_attempts, std::mt19937_64& rng) const;

  // Total attempts a delivery gets: the first try plus one per schedule entry.
  int max_attempts() const { return static_cast<int>(delays_ms_.size()) + 1; }
  const std::vector<int64_t>& delays_ms() const { return delays_ms_; }
  double jitter() const { return jitter_; }

 private:
  std::vector<int64_t> delays_ms_;
  double jitter_;
};

}  // namespace herald
