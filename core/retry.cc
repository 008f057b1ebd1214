#include "core/retry.h"

#include <cmath>
#include <limits>
#include <utility>

#include "core/time_format.h"

namespace herald {
namespace {

constexpr int64_t kSecond = 1000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;
constexpr double kStandardJitter = 0.2;

std::string_view trim(std::string_view s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

RetryPolicy RetryPolicy::standard() {
  return RetryPolicy(
      {5 * kSecond, 5 * kMinute, 30 * kMinute, 2 * kHour, 5 * kHour, 10 * kHour, 10 * kHour},
      kStandardJitter);
}

RetryPolicy::RetryPolicy(std::vector<int64_t> delays_ms, double jitter)
    : delays_ms_(std::move(delays_ms)), jitter_(jitter) {}

std::optional<RetryPolicy> RetryPolicy::parse(std::string_view list, double jitter,
                                              std::string* error) {
  std::vector<int64_t> delays;
  if (trim(list).empty()) {
    if (error) *error = "the retry schedule is empty (use e.g. 5s,5m,30m,2h)";
    return std::nullopt;
  }
  while (true) {
    const size_t comma = list.find(',');
    const std::string_view item = trim(list.substr(0, comma));
    const auto ms = parse_duration_ms(item);
    if (!ms) {
      if (error) {
        *error = "'" + std::string(item) + "' is not a duration (use e.g. 5s, 5m, 2h)";
      }
      return std::nullopt;
    }
    delays.push_back(*ms);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return RetryPolicy(std::move(delays), jitter);
}

std::optional<int64_t> RetryPolicy::next_delay_ms(int failed_attempts, std::mt19937_64& rng) const {
  if (failed_attempts < 1) failed_attempts = 1;
  const auto index = static_cast<size_t>(failed_attempts - 1);
  if (index >= delays_ms_.size()) return std::nullopt;
  const int64_t base = delays_ms_[index];
  if (jitter_ <= 0 || base <= 0) return base;
  const auto d = static_cast<double>(base);
  std::uniform_real_distribution<double> dist(d * (1 - jitter_), d * (1 + jitter_));
  const double v = dist(rng);
  if (v <= 0) return 0;
  if (v >= static_cast<double>(std::numeric_limits<int64_t>::max())) {
    return std::numeric_limits<int64_t>::max();
  }
  return static_cast<int64_t>(std::llround(v));
}

}  // namespace herald
